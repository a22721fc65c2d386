"""Cross-entropy as a ``torch.autograd.Function``: loss and gradient in one pass.

The forward runs the fused kernel (:mod:`._backend`), which produces the loss
*and* ``dloss/dlogits`` from one read of the logits; the gradient is kept and
the backward only multiplies it by the upstream gradient. That is exact for
every reduction: the loss is a sum of per-row terms, so an upstream gradient
(a scalar for ``"mean"``/``"sum"``, one value per row for ``"none"``) just
scales each row of the saved gradient.

Beyond first order the Function hands over to :mod:`._composite`: with
``create_graph=True`` the backward recomputes the gradient in differentiable
torch ops, so double backward is exact. Under ``torch.compile`` the kernel is
called through its custom op (:mod:`._custom_ops`), so the graph does not
break; AOTAutograd cannot differentiate a compiled backward, and a double
backward there raises its error (:func:`._custom_ops.tied_upstream` ties the
backward to the logits so that it does; the backward recomputes the gradient
from them rather than keeping a second ``(N, C)`` tensor: see
:class:`CrossEntropyFunction`). The reduction (the ``"mean"``
denominator, the gradient scale) is the rule of :mod:`softmaxkit._reduction`,
kept on the device.

Reusable pieces for other torch paths (the chunked linear loss, the
class-parallel loss in :mod:`softmaxkit.torch.distributed`):
:func:`problem_for`, :func:`kernel_options`, :func:`class_weight_tensor`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from softmaxkit import _reduction
from softmaxkit._options import CrossEntropyOptions
from softmaxkit._validation import (
    check_class_weight,
    check_floating,
    cross_entropy_options,
    normalize_axis,
    prepare_target,
    target_kind,
)
from softmaxkit.torch import _backend, _composite, _custom_ops
from softmaxkit.torch._tensors import batch_shape, compute_dtype, from_rows, to_rows


@dataclass(frozen=True)
class Problem:
    """A validated cross-entropy call: class axis, options, target kind.

    ``options.weight`` is None: the class weight travels as a tensor beside
    the problem (it may live on a device, or be a fake tensor while
    ``torch.compile`` traces).
    """

    axis: int
    options: CrossEntropyOptions
    soft: bool


def compiling() -> bool:
    """True while ``torch.compile`` or ``torch.export`` traces (Python-side host reads are not allowed then).

    Under export the entry points take the composite ops, not the custom ops
    (:func:`._composite.needs_composite` decides, before this is consulted).
    """
    return torch.compiler.is_compiling()


def refuse_jit_trace(op: str) -> None:
    """Refuse ``op`` (a no-graph ``*_and_grad`` function) under ``torch.jit.trace``.

    Those run the NumPy kernels, which the tracer records as constants: the
    traced function returned the example input's loss and gradient for every
    input, with no error (audit). The composite path cannot stand in for them:
    the tracer does not record ``torch.autograd.grad``.
    """
    if torch.jit.is_tracing():
        raise RuntimeError(
            f"{op} cannot be traced by torch.jit.trace (its loss and gradient would be recorded as constants "
            "of the example input): trace the loss function instead (cross_entropy / linear_cross_entropy, "
            "which trace as torch ops), or use torch.compile"
        )


def grads_wanted(*tensors: Any) -> tuple[bool, ...]:
    """Which of ``tensors`` autograd can ask a gradient of: those that require
    grad, and only while grad mode is on (None and non-tensors: False).

    Read before ``Function.apply``, not from ``ctx.needs_input_grad`` inside
    ``forward``: that looks at ``requires_grad`` alone (and ``forward`` always
    runs with grad mode off), so under ``torch.no_grad()`` or
    ``torch.inference_mode()`` (an evaluation loop, the first forward of a
    reentrant checkpoint) it still asks for every gradient, which the fused
    forwards then make eagerly and throw away. Under ``torch.compile`` Dynamo
    guards on grad mode, so each mode traces its own graph; a checkpoint's
    recomputation runs with grad mode on and gets its gradients.
    """
    enabled = torch.is_grad_enabled()
    return tuple(enabled and isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def class_weight_tensor(
    weight: Any, n_classes: int, device: torch.device, *, check_values: bool = True, name: str = "weight"
):
    """Class weights as a float64 tensor on ``device`` (or None), validated.

    Shape always; finiteness when ``check_values`` (a host read). ``name`` is
    the argument's name in messages (``class_weight`` where ``weight`` is the
    projection). A weight that autograd would differentiate is refused
    (:func:`refuse_differentiated_weight`).
    """
    if weight is None:
        return None
    refuse_differentiated_weight(weight, name)
    if not isinstance(weight, torch.Tensor) or check_values:
        w = check_class_weight(weight, n_classes, name)
        if not isinstance(weight, torch.Tensor):
            return torch.as_tensor(w, dtype=torch.float64, device=device)
    elif tuple(weight.shape) != (n_classes,):
        raise ValueError(f"{name} must have shape ({n_classes},) (one entry per class), got {tuple(weight.shape)}")
    return weight.detach().to(device=device, dtype=torch.float64)


def target_not_differentiable(op: str) -> ValueError:
    """The error for a soft target that requires grad where the loss ``op`` cannot differentiate it
    (the fused and class-parallel losses never hold the log-probabilities its gradient is made of)."""
    return ValueError(
        f"{op} is not differentiable with respect to target; pass target.detach() "
        "(softmaxkit.torch.cross_entropy on explicit logits does differentiate soft targets)"
    )


def refuse_differentiated_weight(weight: Any, name: str = "weight") -> None:
    """Raise a ValueError for class weights that autograd would differentiate, in either mode.

    Unlike torch, which differentiates a probability-target loss w.r.t. its class weight,
    softmaxkit treats class weights as constants; a silently missing gradient (or, in forward
    mode, a tangent of 0: ``jvp``, ``jacfwd``, a dual tensor, audit CK) would be worse. torch
    refuses it too for class indices. ``name`` is the argument's name in the message.
    """
    if _composite.differentiated(weight):
        raise ValueError(
            f"class weights are not differentiated: pass {name}.detach() (a weight that requires grad "
            "would get no gradient, one with a forward-mode tangent a tangent of 0)"
        )


def kernel_options(options: CrossEntropyOptions, weight: torch.Tensor | None, device) -> CrossEntropyOptions:
    """``options`` with the class weight in the form the device's kernel reads
    (float64 NumPy on CPU, a tensor elsewhere)."""
    if weight is None:
        return options
    w = weight.detach().to(torch.float64)
    return dataclasses.replace(options, weight=w.cpu().numpy() if torch.device(device).type == "cpu" else w)


def class_axis(axis: int | None, logits: torch.Tensor) -> int:
    """The class axis of a ``softmaxkit.torch`` cross-entropy call.

    ``axis`` when given. Without it, logits of up to 2 dimensions, ``(C,)`` and
    ``(N, C)``, have their classes last, which is also torch's dim. From 3
    dimensions on, torch's convention is dim 1, ``(N, C, d1, ...)``, and
    softmaxkit's NumPy API's is the last, ``(B, T, C)``. A target can fit both
    (``T == C``, or any probability target), so guessing either one would give
    some drop-in caller a wrong loss with no error: the axis must be named.
    """
    if axis is not None:
        return axis
    if logits.ndim <= 2:
        return -1
    raise ValueError(
        f"logits of shape {tuple(logits.shape)} have {logits.ndim} dimensions: name the class axis, axis=1 as "
        "torch.nn.functional.cross_entropy's (N, C, d1, ...) or axis=-1 for (batch, time, classes); "
        "a default would silently pick one of the two"
    )


def problem_for(
    logits: torch.Tensor, target: Any, axis: int | None, options: dict, *, check_values: bool | None = None
) -> tuple[Problem, torch.Tensor, torch.Tensor | None]:
    """Validate a call into ``(problem, target tensor on logits' device, class weight or None)``.

    ``axis`` None: see :func:`class_axis`.

    ``check_values`` (default: not while compiling, nor where
    :func:`._composite.needs_composite`) also reads the target on the host to
    check labels and probabilities; without it only dtypes and shapes are checked (the custom
    op checks values at run time under ``torch.compile``).
    """
    check_floating(logits, "logits")
    axis = normalize_axis(class_axis(axis, logits), logits.ndim)
    n_classes = logits.shape[axis]
    if n_classes == 0:
        raise ValueError(f"logits must have at least 1 class along axis {axis}, got shape {tuple(logits.shape)}")
    options = dict(options)
    weight = options.pop("weight", None)
    opts = cross_entropy_options(n_classes=n_classes, **options)
    if check_values is None:
        check_values = not compiling() and not _composite.needs_composite(logits, target)
    weight_t = class_weight_tensor(weight, n_classes, logits.device, check_values=check_values)
    t = target if isinstance(target, torch.Tensor) else torch.as_tensor(target)
    shape = tuple(logits.shape)
    if check_values:
        _, soft = prepare_target(t, shape, axis, opts.ignore_index)
    else:
        soft = target_kind(t, shape, axis, opts.ignore_index)
    # t itself where it is already there: under a torch.func transform even a no-op .to() wraps it,
    # and the composite path reads a plain target's values for its out-of-range message
    t = t if t.device == logits.device else t.to(logits.device)
    return Problem(axis, opts, soft), t, weight_t


def target_rows(target: torch.Tensor, problem: Problem, dtype: torch.dtype) -> torch.Tensor:
    """Targets as ``(N,)`` int64 or ``(N, C)`` probabilities in ``dtype``."""
    if problem.soft:
        return to_rows(target, problem.axis, dtype)
    return target.reshape(-1).to(torch.int64)


#: The loss dtype rule (see :func:`._composite.loss_dtype`), shared with the composite path.
loss_dtype = _composite.loss_dtype


def loss_and_grad(
    logits: torch.Tensor,
    target: torch.Tensor,
    problem: Problem,
    weight: torch.Tensor | None = None,
    *,
    want_grad: bool,
    grad_output: Any = None,
    grad_in_compute_dtype: bool = False,
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss (in :func:`loss_dtype`, ``logits``' layout) and ``grad_output * dloss/dlogits``.

    The gradient is in ``logits``' dtype, or with ``grad_in_compute_dtype``
    in the compute dtype (float32 for 16-bit logits), for a caller that
    scales it later and must round to 16 bits only once.

    ``recompute``: a backward's second computation of what the forward made.
    Compiled, the op then skips its run-time checks of the target and class
    weights (the forward's call made them) and widens 16-bit logits itself: a
    call unlike the forward's, whose inputs are the logits themselves, so that
    AOTAutograd keeps the logits for the backward, not the forward's gradient
    (merged with the forward's identical call) nor its float32 copy of them.
    """
    opts = problem.options
    out_dtype = loss_dtype(logits, target, soft=problem.soft)
    cdtype = compute_dtype(out_dtype)
    widen_in_op = recompute and compiling() and logits.dtype != cdtype
    x = to_rows(logits, problem.axis, None if widen_in_op else cdtype)  # (N, C); may share memory with logits
    t = target_rows(target, problem, cdtype)
    shape = batch_shape(tuple(logits.shape), problem.axis)
    scale = _reduction.loss_scale(opts.reduction, _reduction.row_weights(t, opts, problem.soft, weight=weight))
    rs = _reduction.gradient_row_scale(opts.reduction, scale, shape, grad_output) if want_grad else None
    if compiling():
        row_loss, grad = _custom_ops.cross_entropy_rows(
            x, t, weight, opts.ignore_index, opts.label_smoothing, opts.z_loss, opts.softcap, rs, want_grad,
            not recompute, cdtype if widen_in_op else None,
        )  # fmt: skip
        grad = grad if want_grad else None
    else:
        # If to_rows had to copy (class axis not last, non-contiguous, or a 16-bit
        # input), the gradient overwrites that copy instead of taking new memory.
        own_copy = x.data_ptr() != logits.data_ptr() or x.dtype != logits.dtype
        grad = (x if own_copy else torch.empty_like(x)) if want_grad else None
        row_loss = _backend.cross_entropy_2d(x, t, kernel_options(opts, weight, x.device), row_scale=rs, grad_out=grad)
    loss = _reduction.reduce(row_loss.to(scale.device), opts.reduction, scale, shape)
    if grad is not None:
        grad = from_rows(grad, tuple(logits.shape), problem.axis)
        grad = grad if grad_in_compute_dtype else grad.to(logits.dtype)
    return loss.to(out_dtype), grad


class CrossEntropyFunction(torch.autograd.Function):
    """``loss = cross_entropy(logits, target)``; the gradient is made in the forward.

    Backward multiplies the saved gradient by ``grad_output`` in place and
    hands it over (no second ``(N, C)`` allocation). For 16-bit logits the
    saved gradient is float32 and is rounded to 16 bits once, after the
    scaling (``loss / n_items`` would otherwise round it twice). The gradient
    w.r.t. a soft target that requires grad is made in the forward as well.

    The first backward reads only those gradients, not the saved logits, so
    (as with torch, which keeps its log-softmax output) the logits may be
    changed in place after the loss. If backward runs again on the same graph
    (``retain_graph=True``), the gradients are recomputed from the saved
    logits; with ``create_graph=True`` they are recomputed in differentiable
    ops (:mod:`._composite`), so second derivatives (in the logits, soft
    targets and ``grad_output``) are exact. Those two read the logits, and
    raise torch's "modified by an inplace operation" error if they changed.

    Under ``torch.compile`` a double backward raises AOTAutograd's error
    instead: the compiled backward is tied to the logits themselves
    (:func:`._custom_ops.tied_upstream`; a tensor the compiled forward made is
    a constant to autograd, and the second-order term was silently dropped,
    audit). As the logits are saved for that anyway, the forward's gradients
    are not kept: the compiled backward recomputes them from the logits, as
    torch's own compiled ``F.cross_entropy`` does under Inductor (one
    ``(N, C)`` tensor saved, not two: audit; one more kernel pass in the
    backward). Changing the logits in place before that backward raises
    torch's inplace error, as for torch's.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, problem):
        want = ctx.needs_input_grad[0]
        # A 16-bit gradient is kept in float32 until backward has scaled it: rounding it at scale 1
        # and again after ``loss / n_items`` would round twice. The float32 rows are the upcast copy
        # the kernel works in anyway (its peak), so this holds no more memory at the peak.
        # Traced, the gradient is made here too, and dropped (class docstring): the loss of the
        # kernel's loss-only pass can differ from eager's in the last bit.
        loss, grad = loss_and_grad(logits, target, problem, weight, want_grad=want, grad_in_compute_dtype=True)
        ctx.problem, ctx.logits_dtype, ctx.target_dtype = problem, logits.dtype, target.dtype
        ctx.save_for_backward(logits, target, weight)  # unpacked only to recompute (always, traced)
        if compiling():
            ctx.grads = None
            return loss
        grad_t = None
        if ctx.needs_input_grad[1] and problem.soft:  # rare (a learnable target): (N, C) more, as torch keeps
            grad_t = _soft_target_grad(logits, target, weight, problem)
        ctx.grads = (grad, grad_t)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        problem = ctx.problem
        needs = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled() and not compiling():  # create_graph=True
            ctx.grads = None
            logits, target, weight = ctx.saved_tensors
            return (*differentiable_backward(needs, logits, target, weight, problem, grad_output), None, None)
        # the forward's gradients are ours to scale in place, once (traced, there are none)
        (grad, grad_t), ctx.grads = ctx.grads or (None, None), None
        want_t = needs[1] and problem.soft
        if (needs[0] and grad is None) or (want_t and grad_t is None):
            # traced (class docstring), or a second backward (recompute rather than reuse handed-out
            # tensors): from the saved logits
            logits, target, weight = ctx.saved_tensors
            if needs[0] and grad is None:
                _, grad = loss_and_grad(
                    logits, target, problem, weight, want_grad=True, grad_in_compute_dtype=True, recompute=True
                )
            if want_t and grad_t is None:
                grad_t = _soft_target_grad(logits, target, weight, problem)
        # Traced, each gradient is tied to its input (see _custom_ops.tied_upstream), so that a
        # create_graph=True backward of the compiled loss leads to torch's double-backward error.
        inputs = ctx.saved_tensors[:2] if compiling() else (None, None)
        grad_logits = grad_target = None
        if needs[0]:
            grad_logits = _scale_by_upstream(grad, grad_output, problem, of=inputs[0]).to(ctx.logits_dtype)
        if want_t:
            grad_target = _scale_by_upstream(grad_t, grad_output, problem, of=inputs[1]).to(ctx.target_dtype)
        return grad_logits, grad_target, None, None


def differentiable_backward(needs, logits, target, weight, problem: Problem, grad_output):
    """Gradients of the loss as functions of (logits, target, grad_output), with a graph.

    Recomputes the loss in :mod:`._composite` ops and differentiates it with
    ``create_graph=True``: what a backward under ``create_graph=True`` owes.
    """
    inputs = [t for t, need in zip((logits, target), needs) if need]
    with torch.enable_grad():
        loss = _composite.cross_entropy(
            logits, target, problem.options, axis=problem.axis, soft=problem.soft, weight=weight
        )
        grads = iter(torch.autograd.grad(loss, inputs, grad_output, create_graph=True, allow_unused=True))
    return tuple(next(grads) if need else None for need in needs)


def _scale_by_upstream(grad: torch.Tensor, grad_output: torch.Tensor, problem: Problem, *, of=None):
    """``grad * grad_output``: in place (the saved gradient is ours to consume), or out of place:
    traced, with the upstream tied to the input ``of`` (:func:`._custom_ops.tied_upstream`), and in a
    batched backward (:func:`._composite.batched_upstream`)."""
    if of is not None:
        grad_output = _custom_ops.tied_upstream(grad_output, of)
    g = grad_output.unsqueeze(problem.axis) if problem.options.reduction == "none" else grad_output
    if of is not None or _composite.batched_upstream(grad_output):  # out of place under vmap too: see there
        return grad * g.to(grad.dtype)
    if problem.options.reduction != "none" and grad_output.device.type == "cpu" and float(grad_output) == 1.0:
        return grad  # the common loss.backward(): skip a pass over (N, C)
    return grad.mul_(g.to(grad.dtype))


def _soft_target_grad(logits, target, weight, problem: Problem) -> torch.Tensor:
    """``dloss/dt_c = -(1 - eps) w_c log p_c`` per row, times the row scale (upstream 1).

    Rare (distillation into a learnable target), so plain torch ops. Computed
    in :func:`loss_dtype`, as the loss (float64 for float64 probabilities on
    float32 logits), and returned in its compute dtype: backward rounds it to
    ``target``'s dtype once, after the upstream scaling (as the logits' gradient).
    """
    opts = problem.options
    x = logits.detach().to(compute_dtype(loss_dtype(logits, target, soft=True)))
    if opts.softcap is not None:
        x = opts.softcap * torch.tanh(x / opts.softcap)
    log_p, _, _ = _composite.log_softmax_rows(x, problem.axis)
    g = -(1.0 - opts.label_smoothing) * log_p
    if weight is not None:
        shape = [1] * x.ndim
        shape[problem.axis] = -1
        g = g * weight.to(x.dtype).reshape(shape)
    t = target_rows(target, problem, x.dtype)
    scale = _reduction.loss_scale(opts.reduction, _reduction.row_weights(t, opts, problem.soft, weight=weight))
    shape = batch_shape(tuple(logits.shape), problem.axis)
    rs = _reduction.gradient_row_scale(opts.reduction, scale, shape)
    rs = rs.reshape(shape).unsqueeze(problem.axis)
    return g * rs.to(g.dtype)
