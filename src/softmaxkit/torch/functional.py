"""The public ops for torch tensors, with autograd.

:mod:`softmaxkit.functional` sends tensors here (same names, same
arguments), so ``sk.softmax(tensor)`` and ``softmaxkit.torch.softmax(tensor)``
are the same call. Semantics are those documented in
:mod:`softmaxkit.functional` (read the docstrings there); in short:

* float16/bfloat16 are computed in float32 and returned in the input dtype;
* a row of all ``-inf`` has softmax 0, log-softmax ``-inf``, logsumexp
  ``-inf``, and no NaN in the value or the gradient;
* NaN and ``+inf`` in a row make that row NaN;
* if every target is ignored the ``"mean"`` cross-entropy is 0 with zero
  gradient.

Cross-entropy runs through :class:`~softmaxkit.torch._cross_entropy.CrossEntropyFunction`
(fused loss + gradient; NumPy/numba kernels on CPU, torch ops elsewhere).
``softmax``/``log_softmax`` of a CPU tensor run on the same CPU kernels as the
NumPy API (:func:`_kernel_softmax`, differentiated by :class:`_KernelSoftmax`);
elsewhere, and under ``torch.compile``, ``torch.func`` transforms or forward-mode
AD, the softmax family is written in torch ops and differentiated by autograd.

Beyond a first-order backward (see :mod:`softmaxkit.torch._composite`):

* ``create_graph=True`` recomputes the gradient in differentiable ops, so
  double backward is exact on every eager path;
* under ``torch.func`` transforms (``vmap``, ``grad``, ``jvp``) and forward-mode
  AD the losses run as composite torch ops;
* under ``torch.compile`` the CPU kernels are custom ops
  (:mod:`softmaxkit.torch._custom_ops`): ``fullgraph=True`` traces them. A
  double backward through a compiled loss raises AOTAutograd's "does not
  currently support double backward", as torch's own compiled losses do
  (it returned the first-order gradient alone before, audit). Compiled
  ``softmax``/``log_softmax`` are plain torch ops there and share a limit of
  torch's own compiled ``torch.log_softmax``: AOTAutograd saves their output,
  and a double backward silently lacks the second-order term (take gradient
  penalties through them eagerly);
* under ``torch.export`` (strict or not), ``torch.jit.trace``, on meta tensors
  and on tensor subclasses (DTensor, ``FakeTensorMode``'s fake tensors) every
  op runs as composite torch ops (:func:`._composite.needs_composite`): an
  exported loss is aten ops and backpropagates;
* torch's argument names are accepted: ``dim=`` for ``axis``, ``input=`` for
  the tensor (:func:`accepts_input`); torch's options given by position
  (``F.cross_entropy(x, y, w)``) are refused with the keyword to pass
  (:func:`options_by_keyword`).

This module registers itself with :mod:`softmaxkit._dispatch` on import.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from typing import Any

import torch
import torch.nn.functional as F

from softmaxkit import _dispatch, kernels
from softmaxkit._options import options_by_keyword, refuse_positional_options  # noqa: F401 (the latter: nn.py)
from softmaxkit._validation import (
    check_broadcasts_to,
    check_floating,
    check_grad_out_dtype,
    check_reduction,
    check_temperature,
    normalize_axis,
)
from softmaxkit.linear import other_spelling_advice
from softmaxkit.torch import _composite, _triton
from softmaxkit.torch._cross_entropy import (
    CrossEntropyFunction,
    compiling,
    grads_wanted,
    kernel_options,
    loss_and_grad,
    loss_dtype,
    problem_for,
    refuse_jit_trace,
)
from softmaxkit.torch._tensors import LOW_PRECISION, compute_dtype

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "log_sigmoid",
    "cross_entropy",
    "cross_entropy_and_grad",
    "binary_cross_entropy_with_logits",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
]


# --------------------------------------------------------------------------- torch's argument names


def accepts_input(fn):
    """Let ``fn`` take its tensor (first argument, after ``self``) as ``input=`` too: torch's name.

    So ``F.cross_entropy(input=x, target=y)``, ``F.softmax(input=x, dim=1)`` and
    ``nn.CrossEntropyLoss()(input=x, target=y)`` port as they are (they raised "missing 1
    required positional argument" or "unexpected keyword argument 'input'", audit). The signature
    shown (``inspect.signature``, ``help``) stays ``fn``'s own; giving the tensor twice, by its
    name or position and as ``input=``, is a TypeError. One place for every op and module.
    """
    params = list(inspect.signature(fn).parameters)
    position = 1 if params[0] == "self" else 0
    name = params[position]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "input" in kwargs:
            if len(args) > position or name in kwargs:
                raise TypeError(
                    f"{fn.__qualname__}() got {name} twice: as {name} and as input= (torch's name for it); pass one"
                )
            kwargs[name] = kwargs.pop("input")
        return fn(*args, **kwargs)

    return wrapper


def refuses_linear_weight(fn):
    """Refuse torch's ``linear_weight=`` for ``fn``'s projection ``weight`` with what to pass instead.

    ``torch.nn.functional.linear_cross_entropy(input, linear_weight, target, *, linear_bias,
    weight)`` names the projection ``linear_weight`` and the class weights ``weight``. Taking
    ``linear_weight=`` as the projection would leave torch's ``weight=`` (class weights) to be
    taken for it, a silently wrong loss, so it is refused as ``linear_bias=`` is
    (:func:`softmaxkit.linear._ce_options`); Python's "missing 1 required positional argument:
    'weight'" said neither name (audit).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "linear_weight" in kwargs:
            raise TypeError(
                f"{fn.__name__}() has no argument 'linear_weight' (torch.nn.functional.linear_cross_entropy's "
                "name for the projection): pass the projection as weight=, the second argument; from torch, "
                "linear_bias= is bias= and weight= (class weights) is class_weight="
            )
        return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- softmax family


def _safe_sum(s: torch.Tensor) -> torch.Tensor:
    """``s`` with 1 where it is 0 (an all ``-inf`` row), so ``exp(z) / s`` gives 0 and ``log(s)`` 0 there.

    Only an exact 0 is replaced: a NaN sum (NaN or ``+inf`` in the row, whose
    shift ``inf - inf`` is NaN) stays NaN and makes the whole row NaN, as the
    NumPy kernels do. A ``where(s > 0, s, 1)`` turned it into 1 and left the
    row's other entries at 0 (softmax) or ``-inf`` (log-softmax).
    """
    return torch.where(s == 0, torch.ones_like(s), s)


def _shift(x: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(z, s, m)``: the shift ``m = max`` (0 for all ``-inf`` rows), ``z = x - m``
    and ``s = sum(exp(z))``, with ``axis`` kept.

    The shift is detached: it cancels in every result, so it carries no gradient.
    """
    m = x.detach().amax(dim=axis, keepdim=True)
    m = torch.where(m == -torch.inf, torch.zeros((), dtype=x.dtype, device=x.device), m)
    z = x - m
    return z, torch.exp(z).sum(dim=axis, keepdim=True), m


def _softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``exp(x - max) / sum``: 0 on all ``-inf`` rows (a safe sum of 1, not 0/0), NaN on rows with
    NaN or ``+inf``."""
    z, s, _ = _shift(x, axis)
    return torch.exp(z) / _safe_sum(s)


def _log_softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``(x - max) - log(sum)``: ``-inf`` on all ``-inf`` rows (log of a safe sum of 1), NaN on
    rows with NaN or ``+inf``."""
    z, s, _ = _shift(x, axis)
    return z - torch.log(_safe_sum(s))


def _prepare(x: Any, axis: int, temperature: float = 1.0, dtype: Any = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(x_in, x_compute, axis)``: ``x`` cast to ``dtype`` first (torch's
    ``dtype=``), then to the compute dtype and divided by the temperature.
    A 0-dim ``x`` is one class (``axis`` -1 or 0), as in torch."""
    if dtype is not None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        x = x.to(dtype)
    check_floating(x, "x")
    axis = normalize_axis(axis, x.ndim, allow_scalar=True)
    xc = x.to(compute_dtype(x.dtype)) if x.dtype in LOW_PRECISION else x
    if isinstance(temperature, torch.Tensor) and (compiling() or _composite.batched(temperature)):
        # traced, or one temperature of a vmapped batch: no host read (vmap refuses .item())
        return x, xc / _traced_temperature(temperature, xc.dtype), axis
    learnable = _tracked_temperature(temperature)
    t = check_temperature(temperature.detach() if learnable else temperature, dtype=xc.dtype)
    if learnable:
        # A learnable temperature (nn.Parameter) keeps its gradient: float(T) dropped it, and
        # T.grad stayed None while the loss matched torch's (audit).
        return x, xc / temperature.reshape(()).to(xc.dtype), axis
    return x, (xc / t if t != 1.0 else xc), axis


def _tracked_temperature(temperature: Any) -> bool:
    """Whether ``temperature`` is a tensor that autograd differentiates in either mode: it requires
    grad (a learnable ``nn.Parameter``, ``torch.func.grad``'s input) or carries a forward-mode
    tangent (``jvp``, ``jacfwd``, a dual tensor), whose ``requires_grad`` is False: read as a float,
    its tangent was silently dropped (audit CK)."""
    tensor = isinstance(temperature, torch.Tensor)
    return tensor and (temperature.requires_grad or _composite.has_tangent(temperature))


def _traced_temperature(temperature: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A temperature tensor under ``torch.compile``: 0-dim, in ``dtype``, NaN unless finite and > 0.

    While tracing its value cannot be read on the host (Dynamo refuses the data-dependent test
    of :func:`check_temperature`: "Could not guard on data-dependent expression", audit), so a
    bad value makes the result NaN instead of raising, rather than, say, silently reversing the
    softmax for a negative one. Eager calls keep the check and its ValueError. Its shape is static
    while tracing, so one that is not a single value gets eager's TypeError: ``reshape(())`` failed
    deep in Dynamo, 241 lines of traceback (audit).
    """
    if temperature.numel() != 1:
        raise TypeError(f"temperature must be a positive float, got a tensor of shape {tuple(temperature.shape)}")
    t = temperature.reshape(()).to(dtype)
    return torch.where((t > 0) & (t < torch.inf), t, torch.nan)


def _write(result: torch.Tensor, x: torch.Tensor, out: Any) -> torch.Tensor:
    """The result in ``x``'s dtype, or written into ``out`` as torch's ``out=``
    does: same dtype required; another shape is resized (with torch's warning)."""
    # C-contiguous, as torch's result whatever x's layout: the composite ops keep a transposed or
    # channels_last x's strides, and a following .view(-1) raised (audit CM). One copy at most: a cast
    # writes C-contiguously, and .to() of the same dtype returns result itself, whatever memory_format.
    result = result.to(x.dtype, memory_format=torch.contiguous_format).contiguous()
    if out is None:
        return result
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
    if out.dtype != result.dtype:
        raise TypeError(f"out must have dtype {result.dtype} (the result's), got {out.dtype}")
    if tuple(out.shape) != tuple(result.shape):
        if out.numel():
            warnings.warn(
                f"out of shape {tuple(out.shape)} was resized to the result's shape {tuple(result.shape)}, "
                "as torch does (torch deprecates resizing an out= tensor that has elements)",
                UserWarning,
                stacklevel=3,
            )
        out.resize_(result.shape)
    return out.copy_(result)


def _empty_or_scalar(xc: torch.Tensor, log: bool) -> torch.Tensor | None:
    """The (log-)softmax of an empty or 0-dim input (torch returns these), else None."""
    if xc.ndim == 0:
        # One class: the 1-element row's result (1 / log 0 when finite, 0 / -inf for -inf, NaN for
        # NaN or +inf), with its zero gradient. ``xc * 0 + 1`` gave NaN for -inf (audit).
        row = xc.reshape(1)
        return (_log_softmax(row, 0) if log else _softmax(row, 0)).reshape(())
    if xc.numel() == 0:
        # Nothing to normalise: an empty result on the graph, and its (empty) gradient too, 2 * xc * 0,
        # so create_graph differentiates it again as torch's. xc * 0.0 gave a constant gradient (audit CM)
        return xc * xc * 0.0
    return None


#: What the CPU kernels take: float32/float64 (plain tensors only: see _composite.needs_composite).
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _on_cpu_kernels(xc: torch.Tensor) -> bool:
    """Whether the (log-)softmax of ``xc`` runs on the numba kernels of :mod:`softmaxkit.kernels`.

    CPU float32/float64 tensors of at least :data:`softmaxkit.kernels.CPU_MIN_ELEMENTS` elements (the
    NumPy API's threshold: smaller ones would load numba, a one-time pause, for a few logits), outside
    ``torch.compile``/``torch.export``/``torch.jit`` tracing (which cannot see into NumPy), ``torch.func``
    transforms or forward-mode AD (whose batched or dual tensors a NumPy view drops) and tensor
    subclasses (:func:`._composite.needs_composite`); the rest run the composite torch ops.

    The kernels are the NumPy API's: one pass over each row in cache, sums in float64, so float32 rows
    sum to 1 within 1e-6 even at 262,144 classes. torch's own CPU kernel is as fast but sums in float32
    vector lanes, 1e-5 off at 32,000 classes; the composite ops are as exact but take 3x torch's time.
    """
    if compiling() or _composite.needs_composite(xc):  # first: Dynamo cannot trace the checks below
        return False
    return (
        # numel: an empty tensor has no row to run (audit BU: a (5, 0, 0) tensor failed a reshape in
        # the kernel's view where CPU_MIN_ELEMENTS is 0, as the test fixtures set it)
        xc.is_cpu and xc.dtype in _KERNEL_DTYPES and xc.numel() > 0
        and xc.layout == torch.strided and not xc.is_neg() and _numba_kernels(xc.numel()) is not None
    )  # fmt: skip


def _numba_kernels(n_elements: int) -> Any:
    """:mod:`softmaxkit.kernels.cpu` for ``n_elements`` logits, or None (fewer than
    ``CPU_MIN_ELEMENTS``, numba unusable, or a child forked after numba's threads started: see
    :func:`softmaxkit.kernels.parallel_regions_allowed`): the composite ops then."""
    k = kernels.select(n_elements)
    return None if k is kernels.reference else k


def _run_kernel(rows: torch.Tensor, res: torch.Tensor, log: bool) -> None:
    """The (log-)softmax of the C-contiguous ``(N, C)`` ``rows`` into ``res`` (which may be ``rows``)."""
    kernels.select(rows.numel()).softmax_2d(rows.numpy(), res.numpy(), log=log)


def _kernel_softmax(xc: torch.Tensor, axis: int, log: bool, *, private: bool = False) -> torch.Tensor:
    """(Log-)softmax of ``xc`` along ``axis`` on the CPU kernels, with no graph.

    All ``-inf`` rows give 0 (log: ``-inf``); NaN or ``+inf`` make the row NaN. The result is
    C-contiguous, as torch's (``torch.softmax`` of a transposed or channels_last tensor is too). When
    ``xc`` is C-contiguous with the class axis innermost it is a fresh tensor (``xc`` itself when
    ``private``: a copy the caller made, which the kernel then overwrites instead of allocating);
    otherwise the rows are read where they lie if contiguous there (else gathered into a contiguous
    copy), computed, and written out C-contiguously. ``xc`` is never written unless ``private``.
    """
    xd = xc.detach()
    moved = xd.movedim(axis, -1)
    c = moved.shape[-1]
    if xd.is_contiguous() and moved.is_contiguous():  # classes innermost of a C-contiguous tensor
        res = xd if private else torch.empty_like(xd)
        _run_kernel(moved.view(-1, c), res.movedim(axis, -1).view(-1, c), log)
        return res  # (not a view: a custom Function's output that is a view cannot be changed in place)
    if moved.is_contiguous():  # rows contiguous in memory (a transposed x, say): read where they lie
        src = moved.view(-1, c)
        rows = src if private else torch.empty_like(src)
        _run_kernel(src, rows, log)
    else:
        rows = xd.new_empty(moved.shape).copy_(moved).view(-1, c)  # always a copy: ours
        _run_kernel(rows, rows, log)
    # torch's result is C-contiguous whatever x's layout (transposed, channels_last, sliced): a following
    # .view(-1) works on it. x's strides raised there (audit CM)
    return xd.new_empty(xd.shape).copy_(rows.view(moved.shape).movedim(-1, axis))


def _softmax_grad(g: torch.Tensor, y: torch.Tensor, axis: int, log: bool) -> torch.Tensor:
    """``dL/dx`` of ``y = softmax(x)`` (``log_softmax`` when ``log``) from the upstream ``g``.

    ``g * y - y * sum(g * y)``, or ``g - exp(y) * sum(g)`` for log-softmax: on an all ``-inf`` row
    (``y = 0``, log ``-inf``) that is 0, and for log-softmax ``g`` itself, the values the composite
    ops give. Sums are torch's (pairwise), as exact as the composite's autograd. Under
    ``create_graph=True`` the ops are recorded: differentiable in ``g`` and in ``y``, whose own
    ``grad_fn`` is :class:`_KernelSoftmax`, so double backward is exact.
    """
    if log:
        s = g.sum(axis, keepdim=True)
        e = torch.exp(y)
        # create_graph: exp saved its result, so no in-place op on e; a batched backward: no out=
        if torch.is_grad_enabled() or _composite.batched_upstream(g):
            return torch.addcmul(g, e, s, value=-1)
        return torch.addcmul(g, e, s, value=-1, out=e)
    gy = g * y
    return gy.addcmul_(y, gy.sum(axis, keepdim=True), value=-1)  # (g * y saves g and y, not gy)


class _KernelSoftmax(torch.autograd.Function):
    """(Log-)softmax on the CPU kernels with autograd; saves only its result, as torch's softmax does.

    The input is not saved: changing it in place after the forward is allowed, as with the composite
    ops (the result is saved, so changing *that* in place before the backward raises torch's
    "modified by an inplace operation" error, as for ``torch.softmax``).
    """

    @staticmethod
    def forward(ctx, xc, axis, log):
        y = _kernel_softmax(xc, axis, log)
        ctx.save_for_backward(y)
        ctx.axis, ctx.log = axis, log
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return _softmax_grad(g, y, ctx.axis, ctx.log), None, None


def _cpu_softmax(x_in: torch.Tensor, xc: torch.Tensor, axis: int, log: bool) -> torch.Tensor:
    """:func:`_kernel_softmax` of ``xc`` (prepared from the caller's ``x_in``), on the graph if one is wanted.

    Without a graph, a ``xc`` that :func:`_prepare` copied (cast or divided by the temperature) is
    overwritten by the result rather than allocating another ``x``-sized tensor.
    """
    if torch.is_grad_enabled() and xc.requires_grad:
        return _KernelSoftmax.apply(xc, axis, log)
    private = xc is not x_in and xc.untyped_storage().data_ptr() != x_in.untyped_storage().data_ptr()
    return _kernel_softmax(xc, axis, log, private=private)


def _fast_cpu_softmax(x: Any, axis: Any, dim: Any, log: bool) -> torch.Tensor | None:
    """The common call, ``softmax(x)``/``softmax(x, dim)`` of a CPU tensor with no temperature,
    ``dtype`` or ``out``, in as few Python steps as the general path's result allows; None otherwise.

    Same kernel and result as the general path (which handles every other call and raises every
    error): at 64 x 1000 the checks of that path cost as much as the kernel itself.
    """
    if not _composite.is_plain(x):  # (also a non-tensor x: the general path raises its error)
        return None
    if dim is not None:
        if axis is not None:
            return None
        axis = dim
    elif axis is None:
        axis = -1
        if x.ndim >= 3:  # the general path raises: name the class axis
            return None
    ndim = x.ndim
    if type(axis) is not int or not -ndim <= axis < ndim or not _on_cpu_kernels(x):
        return None
    if x.requires_grad and torch.is_grad_enabled():
        return _KernelSoftmax.apply(x, axis % ndim, log)
    if (axis == -1 or axis == ndim - 1) and x.is_contiguous():  # classes innermost: no layout to restore
        res = torch.empty_like(x)
        c = x.shape[-1]
        _run_kernel(x.detach().view(-1, c), res.view(-1, c), log)
        return res
    return _kernel_softmax(x, axis % ndim, log)


def _softmax_dim(x: Any, axis: int | None, dim: int | None, op: str) -> int:
    """The class axis of ``op`` (softmax or log_softmax): ``axis`` or ``dim=``; without either, the
    last axis of ``(C,)`` and ``(N, C)``, which is also torch's implicit dim there.

    From 3 dimensions on torch's implicit (deprecated) dim is 0 for 3 dimensions and 1 for more
    (``torch.nn.functional._get_softmax_dim``), and softmaxkit's NumPy API's is the last: a
    ported ``F.softmax(x)`` would silently normalise another axis than the caller's, so the
    axis must be named, as for :func:`cross_entropy`.
    """
    ndim = getattr(x, "ndim", 0)
    if axis is None and dim is None and ndim >= 3:
        raise ValueError(
            f"x of shape {tuple(x.shape)} has {ndim} dimensions: name the class axis, dim=1 for (N, C, d1, ...) "
            f"or dim=-1 for (batch, time, classes); torch.nn.functional.{op} without dim uses "
            f"dim={0 if ndim == 3 else 1} here (deprecated) and softmaxkit's NumPy API the last, "
            "so a default would silently pick the wrong one for someone"
        )
    return _torch_dim(axis, dim)


def _torch_dim(axis: int | None, dim: int | None) -> int:
    """``axis``, or torch's spelling ``dim=`` of it (so ``F.softmax(x, dim=1)`` ports as is); -1 by default."""
    if dim is None:
        return -1 if axis is None else axis
    if axis is not None:
        raise TypeError("give the class axis once: axis= or dim= (torch's name), not both")
    return dim


def _use_triton(x: torch.Tensor, dtype: Any, out: Any, temperature: Any) -> bool:
    # the kernels take a float: not a learnable temperature, nor a tensor one while tracing or under
    # vmap (no host read)
    learnable_t = isinstance(temperature, torch.Tensor) and (
        _tracked_temperature(temperature) or compiling() or _composite.batched(temperature)
    )
    return (out is None and dtype is None and not learnable_t and _triton.use_for(x)
            and not _composite.needs_composite(x))


@accepts_input
@options_by_keyword("softmax(x, dim, dtype=d) for torch.softmax(x, dim, d) (F.softmax's third argument, "
                    "_stacklevel, has no counterpart: leave it out)")
def softmax(
    x: torch.Tensor, axis: int | None = None, *, dim: int | None = None, temperature: float = 1.0,
    dtype: Any = None, out: Any = None,
) -> torch.Tensor:
    """Softmax along ``axis`` (see :func:`softmaxkit.softmax`); all ``-inf`` rows give 0.

    ``axis`` may be given as ``axis`` or as torch's ``dim``. Left out, it is
    the last axis of ``(C,)`` and ``(N, C)`` (torch's implicit dim too); from
    3 dimensions on it must be given (``ValueError``): torch's implicit dim
    is then 0 or 1, the NumPy API's the last, and neither is guessed.
    ``sk.softmax(tensor)`` keeps the NumPy API's default, the last axis.
    A one-element ``temperature`` tensor that requires grad (a learnable
    ``nn.Parameter``) gets its gradient, one with a forward-mode tangent
    (``torch.func.jvp``, ``jacfwd``, a dual tensor) its tangent; under ``vmap``
    over temperatures a bad one gives NaN (its value cannot be read to raise). ``dtype`` casts ``x`` first
    (torch's ``dtype=``); ``out`` behaves as torch's ``out=``. Empty inputs give empty results; a 0-dim input gives 1.
    NaN or ``+inf`` in a row makes the row NaN.
    """
    if dtype is None and out is None and type(temperature) in (float, int) and temperature == 1.0:
        fast = _fast_cpu_softmax(x, axis, dim, log=False)
        if fast is not None:
            return fast
    axis = _softmax_dim(x, axis, dim, "softmax")
    if _use_triton(x, dtype, out, temperature):  # CUDA: Triton kernels (forward and backward)
        # The kernel scales by 1/T in float32.
        t = check_temperature(temperature, dtype=torch.float32)
        return _triton.softmax(x, normalize_axis(axis, x.ndim), temperature=t)
    x_in = x
    x, xc, axis = _prepare(x, axis, temperature, dtype)
    special = _empty_or_scalar(xc, log=False)
    if special is not None:
        return _write(special, x, out)
    if _on_cpu_kernels(xc):
        return _write(_cpu_softmax(x_in, xc, axis, log=False), x, out)
    return _write(_softmax(xc, axis), x, out)


@accepts_input
@options_by_keyword("log_softmax(x, dim, dtype=d) for torch.log_softmax(x, dim, d) (F.log_softmax's third "
                    "argument, _stacklevel, has no counterpart: leave it out)")
def log_softmax(
    x: torch.Tensor, axis: int | None = None, *, dim: int | None = None, temperature: float = 1.0,
    dtype: Any = None, out: Any = None,
) -> torch.Tensor:
    """Log-softmax along ``axis`` (see :func:`softmaxkit.log_softmax`); all ``-inf`` rows give ``-inf``.

    ``axis``/``dim`` (required from 3 dimensions on), ``dtype`` and ``out`` as
    :func:`softmax`; a 0-dim input gives 0. NaN or ``+inf`` in a row makes the row NaN.
    """
    if dtype is None and out is None and type(temperature) in (float, int) and temperature == 1.0:
        fast = _fast_cpu_softmax(x, axis, dim, log=True)
        if fast is not None:
            return fast
    axis = _softmax_dim(x, axis, dim, "log_softmax")
    if _use_triton(x, dtype, out, temperature):
        t = check_temperature(temperature, dtype=torch.float32)  # the kernel scales by 1/T in float32
        return _triton.softmax(x, normalize_axis(axis, x.ndim), temperature=t, log=True)
    x_in = x
    x, xc, axis = _prepare(x, axis, temperature, dtype)
    special = _empty_or_scalar(xc, log=True)
    if special is not None:
        return _write(special, x, out)
    if _on_cpu_kernels(xc):
        return _write(_cpu_softmax(x_in, xc, axis, log=True), x, out)
    return _write(_log_softmax(xc, axis), x, out)


@accepts_input
@options_by_keyword("logsumexp(x, dim, keepdim=True) for torch.logsumexp(x, dim, True)")
def logsumexp(
    x: torch.Tensor, axis: int | None = None, *, keepdims: bool = False, dim: int | None = None,
    keepdim: bool | None = None,
) -> torch.Tensor:
    """``log(sum(exp(x)))`` along ``axis``; ``-inf`` (zero gradient) for all ``-inf`` rows.

    ``axis`` as :func:`softmax` (torch's ``dim`` too); ``keepdim`` is torch's
    name for ``keepdims``. A 0-dim input is its own logsumexp; an empty class
    axis gives ``-inf``. One axis only: a one-element tuple or list (``dim=(1,)``,
    as torch's own samples pass it) is that axis.
    """
    axis, dim = (a[0] if isinstance(a, (tuple, list)) and len(a) == 1 else a for a in (axis, dim))
    axis = _torch_dim(axis, dim)
    keepdims = keepdims or bool(keepdim)
    x, xc, axis = _prepare(x, axis)
    if xc.ndim == 0:
        # One class: its own logsumexp (+inf too, as in torch and the NumPy API), computed as the 1-element
        # row's so that its gradient (1; 0 for -inf, as for any all -inf row) is on the graph and
        # create_graph differentiates it again, as torch's. xc itself had a constant gradient (audit CM)
        row = _logsumexp(xc.reshape(1), 0, keepdims=False)
        return torch.where(xc == torch.inf, xc, row).to(x.dtype)
    if xc.shape[axis] == 0:
        # -inf from a sum over the empty axis, so the result stays on the graph (x.grad is zeros, as torch's);
        # of xc * xc, so that the zero gradient is on the graph too and a double backward works (review R25)
        return ((xc * xc).sum(dim=axis, keepdim=keepdims) - torch.inf).to(x.dtype)
    if xc.numel() == 0:
        return (xc * xc * 0.0).sum(dim=axis, keepdim=keepdims).to(x.dtype)
    return _logsumexp(xc, axis, keepdims=keepdims).to(x.dtype)


def _logsumexp(xc: torch.Tensor, axis: int, *, keepdims: bool) -> torch.Tensor:
    """``log(sum(exp(xc)))`` along ``axis`` of a non-empty ``xc``: ``-inf`` for an all ``-inf`` row (sum 0,
    zero gradient); a NaN sum (NaN or ``+inf`` in the row) stays NaN."""
    z, s, m = _shift(xc, axis)
    res = m + torch.where(s == 0, -torch.inf, torch.log(_safe_sum(s)))
    return res if keepdims else res.squeeze(axis)


@accepts_input
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logistic function (torch's overflow-free kernel), 16-bit input computed in float32."""
    check_floating(x, "x")
    return torch.sigmoid(x.to(compute_dtype(x.dtype))).to(x.dtype)


@accepts_input
def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``min(x, 0) - log1p(exp(-|x|))`` (torch's ``logsigmoid``), exact for large ``|x|``."""
    check_floating(x, "x")
    return F.logsigmoid(x.to(compute_dtype(x.dtype))).to(x.dtype)


# --------------------------------------------------------------------------- cross-entropy


#: torch's deprecated options whose default, None, changes nothing there: accepted as None.
_TORCH_NO_OP_DEFAULTS = ("size_average", "reduce")


def refuse_other_spellings(op: str, unknown: dict[str, Any], *, weight: str) -> None:
    """Refuse other libraries' option names in ``unknown`` with what to pass instead.

    ``op`` names the function or module in the message; ``weight`` is its
    name for class weights. The advice is :data:`softmaxkit.linear.OTHER_SPELLINGS`'s,
    shared by the functional ops and the loss modules. ``size_average=None``
    and ``reduce=None`` are torch's defaults (no-ops) and pass.
    """
    for name, value in unknown.items():
        if name in _TORCH_NO_OP_DEFAULTS and value is None:
            continue
        hint = other_spelling_advice(name, weight=weight)
        raise TypeError(f"{op} has no option {name!r}" + (f"; {hint}" if hint else ""))


@accepts_input
@options_by_keyword("cross_entropy(logits, target, weight=w) for torch's F.cross_entropy(input, target, w); "
                    "name its other options too (ignore_index=, reduction=, label_smoothing=)")
def cross_entropy(
    logits: torch.Tensor,
    target: Any,
    *,
    axis: int | None = None,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    **unknown: Any,
) -> torch.Tensor:
    """Cross-entropy with autograd; options and semantics of :func:`softmaxkit.cross_entropy`.

    ``axis`` may be left out for ``(C,)`` and ``(N, C)`` logits. From 3
    dimensions on it must be given: torch's class dim is 1, ``(N, C, d1, ...)``,
    and softmaxkit's NumPy default is the last, ``(B, T, C)``; a target can
    fit both, so neither is guessed.

    Matches ``torch.nn.functional.cross_entropy`` (with ``logits`` moved so
    the class axis is 1) wherever torch is finite, in value and gradient. The
    gradient is computed in the forward pass by the fused kernel, so a
    backward costs one multiply by ``grad_output`` (nothing for ``1.0``);
    under ``torch.no_grad()`` / ``torch.inference_mode()`` none is made.

    Differentiable in ``logits``, and in soft (probability) targets, to any
    order (``create_graph=True`` recomputes the gradient in differentiable
    ops); a compiled loss is differentiable once (a double backward raises,
    as for torch's own compiled losses). Under ``torch.func`` transforms (``vmap``, ``grad``, ``jvp``) and
    forward-mode AD it runs as composite torch ops; under ``torch.compile``
    the kernel is a custom op, so the graph does not break. Under
    ``torch.export`` and ``torch.jit.trace``, on meta tensors and on tensor
    subclasses (DTensor, ``FakeTensorMode``) it runs as composite torch ops.

    torch's deprecated ``size_average``/``reduce`` are refused with the
    ``reduction=`` to pass instead (``None``, their default, is accepted).
    """
    refuse_other_spellings("cross_entropy", unknown, weight="weight")
    options = dict(
        weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
    )
    # export, transforms, jit tracing, meta tensors, subclasses: composite torch ops (see _composite.needs_composite)
    transformed = _composite.needs_composite(logits, target, weight)
    problem, t, w = problem_for(logits, target, axis, options, check_values=not (transformed or compiling()))
    if transformed:
        return _composite.cross_entropy(logits, t, problem.options, axis=problem.axis, soft=problem.soft, weight=w)
    if _triton.use_for(logits, t):  # CUDA: fused Triton kernel, 16-bit stays 16-bit
        opts = kernel_options(problem.options, w, logits.device)
        return _triton.cross_entropy_nd(logits, t, opts, axis=problem.axis, soft=problem.soft)
    if not any(grads_wanted(logits, t)):  # no_grad / inference_mode: the loss alone, no gradient made
        return loss_and_grad(logits, t, problem, w, want_grad=False)[0]
    return CrossEntropyFunction.apply(logits, t, w, problem)


def cross_entropy_and_grad(
    logits: torch.Tensor,
    target: Any,
    *,
    axis: int | None = None,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    grad_output: Any = None,
    grad_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and ``grad_output * dloss/dlogits`` as plain tensors (no autograd graph).

    See :func:`softmaxkit.cross_entropy_and_grad`; ``axis`` as in :func:`cross_entropy`. ``grad_out``, a tensor of
    the logits' shape, receives the gradient (and is returned).
    """
    options = dict(
        weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
    )
    refuse_jit_trace("cross_entropy_and_grad")
    problem, t, w = problem_for(logits, target, axis, options)
    if grad_out is not None and (
        not isinstance(grad_out, torch.Tensor) or tuple(grad_out.shape) != tuple(logits.shape)
    ):
        raise ValueError(
            f"grad_out must be a tensor of the logits' shape {tuple(logits.shape)}, got "
            f"{tuple(grad_out.shape) if hasattr(grad_out, 'shape') else type(grad_out).__name__}"
        )
    if grad_out is not None:
        # copy_ below would cast and move: an int64 buffer got an all-zero gradient (audit)
        check_grad_out_dtype(grad_out, logits, wider=_holds_exactly)
        if grad_out.device != logits.device:
            raise ValueError(f"grad_out must be on the logits' device {logits.device}, got {grad_out.device}")
    with torch.no_grad():
        loss, grad = loss_and_grad(logits.detach(), t, problem, w, want_grad=True, grad_output=grad_output)
        return loss, (grad if grad_out is None else grad_out.copy_(grad))


@accepts_input
@options_by_keyword("binary_cross_entropy_with_logits(logits, target, weight=w) for torch's "
                    "F.binary_cross_entropy_with_logits(input, target, w); name its other options too "
                    "(reduction=, pos_weight=)")
def binary_cross_entropy_with_logits(
    logits: torch.Tensor,
    target: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Elementwise binary cross-entropy on logits (torch's formula and gradient).

    See :func:`softmaxkit.binary_cross_entropy_with_logits`. ``"mean"`` of an
    empty input is 0, not NaN.
    """
    check_floating(logits, "logits")
    reduction = check_reduction(reduction)
    y = torch.as_tensor(target, device=logits.device)
    if tuple(y.shape) != tuple(logits.shape):
        raise ValueError(f"target must have the logits' shape {tuple(logits.shape)}, got {tuple(y.shape)}")
    # torch's result dtype: float32 under autocast for 16-bit logits, promoted by a wider target
    out_dtype = loss_dtype(logits, y, soft=y.is_floating_point())
    cdtype = compute_dtype(out_dtype)
    extra = {}
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        v = torch.as_tensor(value, device=logits.device).to(cdtype)
        check_broadcasts_to(tuple(v.shape), tuple(logits.shape), name)
        # any sign, as torch (the loss stays finite); inf/NaN are refused
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name} must be finite, got {v[~torch.isfinite(v)].flatten()[0].item()}")
        extra[name] = v
    loss = F.binary_cross_entropy_with_logits(logits.to(cdtype), y.to(cdtype), reduction="none", **extra)
    if reduction == "none":
        return loss.to(out_dtype)
    total = loss.sum(dtype=torch.float64)
    if reduction == "mean":
        total = total / loss.numel() if loss.numel() else total
    return total.to(out_dtype)


# --------------------------------------------------------------------------- linear cross-entropy


@accepts_input
@refuses_linear_weight
@options_by_keyword("linear_cross_entropy(hidden, weight, target, bias=b) for Cut Cross-Entropy's "
                    "linear_cross_entropy(e, c, targets, b); from torch's F.linear_cross_entropy, linear_bias= "
                    "is bias= and weight= is class_weight=")
def linear_cross_entropy(hidden, weight, target, *, bias=None, chunk_size=None, loss_dtype=None, **ce_options):
    """Fused ``cross_entropy(hidden @ weight.T + bias, target)`` with autograd.

    See :func:`softmaxkit.linear_cross_entropy` and
    :class:`softmaxkit.torch._linear.LinearCrossEntropyFunction`.
    ``loss_dtype=torch.float32`` returns a float32 loss for 16-bit input
    (default: the input dtype, as ``F.cross_entropy``).

    Under ``torch.autocast`` it computes as ``F.cross_entropy(F.linear(hidden,
    weight, bias), target)`` does there: the inputs (float64 aside) cast to the
    autocast dtype, so bf16 hidden states may meet a float32 head weight; the
    loss is float32 (default ``loss_dtype``), each gradient in its input's
    dtype. Outside autocast, ``hidden`` and ``weight`` of different dtypes are
    refused (TypeError), as by ``F.linear``.
    """
    from softmaxkit.torch._linear import linear_cross_entropy as impl

    return impl(hidden, weight, target, bias=bias, chunk_size=chunk_size, loss_dtype=loss_dtype, **ce_options)


@refuses_linear_weight
def linear_cross_entropy_and_grad(
    hidden, weight, target, *, bias=None, chunk_size=None, grad_output=None, loss_dtype=None, **ce_options
):
    """``(loss, grad_hidden, grad_weight, grad_bias)`` as plain tensors, one pass.

    See :func:`softmaxkit.linear_cross_entropy_and_grad`.
    """
    from softmaxkit.torch._linear import linear_cross_entropy_and_grad as impl

    return impl(
        hidden, weight, target, bias=bias, chunk_size=chunk_size, grad_output=grad_output,
        loss_dtype=loss_dtype, **ce_options,
    )  # fmt: skip


# softmaxkit.functional / softmaxkit.linear route tensors here (see softmaxkit._dispatch).
_dispatch.register("torch", sys.modules[__name__])


def _holds_exactly(dtype: torch.dtype, buffer: torch.dtype) -> bool:
    """Whether a ``buffer`` of floating dtype holds every ``dtype`` value exactly (bf16 into float32)."""
    return buffer.is_floating_point and torch.promote_types(dtype, buffer) == buffer
