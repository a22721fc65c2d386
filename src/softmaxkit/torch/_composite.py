"""Cross-entropy as a composition of differentiable torch ops.

The fused kernels (:mod:`._backend`) compute the loss and its gradient in
one pass, and the autograd Functions around them differentiate once. This
module is the same math written so that torch differentiates it itself, to
any order and in any mode, which the fast path cannot offer:

* **double backward** (``create_graph=True``, gradient penalties, Hessian
  products): the Functions' backward recomputes the gradient from here when
  grad mode is on, so the returned gradient is part of the graph. CE's
  gradient is ``scale * (softmax - target)``; its derivative is the softmax
  Jacobian, which autograd builds from these ops exactly;
* **forward-mode AD** (``torch.func.jvp``, ``torch.autograd.forward_ad``)
  and **vmap** (``torch.func.vmap``, per-sample gradients): the public ops
  route to :func:`cross_entropy` whenever a functorch transform is active or
  a dual tensor arrives (:func:`transforms_active`);
* **torch.jit.trace**, **torch.export**, **meta tensors** and **tensor
  subclasses** (DTensor, ``FakeTensorMode``'s fake tensors), which NumPy
  cannot see into (:func:`needs_composite`, the test every entry point makes).

Semantics are those of the kernels (and of DESIGN.md): a row's shift is its
max (0 for an all ``-inf`` row); a soft target of 0 on a ``-inf`` logit
contributes 0, not NaN (the "double where": the masked factor is replaced
*before* it is multiplied, so no ``0 * inf`` appears in the backward
either); ``"mean"`` follows :mod:`softmaxkit._reduction`. Costs one
``(N, C)`` softmax graph: the price of higher-order derivatives.
"""

from __future__ import annotations

import re

import torch
from torch.autograd import forward_ad

from softmaxkit import _reduction
from softmaxkit._options import CrossEntropyOptions
from softmaxkit._validation import check_hard_target
from softmaxkit.torch._tensors import LOW_PRECISION, compute_dtype


def transforms_active(*tensors) -> bool:
    """True under a functorch transform (vmap, grad, jvp) or with a forward-AD dual tensor.

    The fused path hands tensors to NumPy/numba, which neither a batched
    nor a dual tensor survives; the composite ops do.
    """
    if torch._C._are_functorch_transforms_active():
        return True
    return any(has_tangent(t) for t in tensors)


def has_tangent(t) -> bool:
    """True when ``t`` carries a forward-mode tangent: a forward-AD dual tensor, or an input of
    ``torch.func.jvp`` / ``jacfwd`` (or a tensor made from one), also seen through ``vmap``.

    Such a tensor's ``requires_grad`` is False, so a check of that alone took it for a constant and
    silently dropped its tangent (audit CK: a temperature's, a class weight's).
    """
    if not isinstance(t, torch.Tensor) or forward_ad._current_level < 0:  # (module level: every CPU softmax call)
        return False
    while torch._C._functorch.is_batchedtensor(t):  # unpack_dual has no batching rule: look below vmap
        t = torch._C._functorch.get_unwrapped(t)
    return forward_ad.unpack_dual(t).tangent is not None


def batched_upstream(grad_output: torch.Tensor) -> bool:
    """True in a backward that runs under vmap: a ``torch.func`` transform, or autograd's own
    batched backward (``torch.autograd.grad(..., is_grads_batched=True)``, ``jacobian`` /
    ``hessian(vectorize=True)``), whose upstream ``grad_output`` is a (legacy) batched tensor.

    Such a backward must compute out of place (the batched upstream has more elements than a
    saved gradient it would scale in place; ``out=`` has no batching rule) and not read the
    upstream on the host (``float()`` is an ``.item()``, which vmap refuses; audit CK).
    """
    return torch._C._are_functorch_transforms_active() or torch._C._functorch.is_legacy_batchedtensor(grad_output)


def differentiated(t) -> bool:
    """True when autograd may ask for a derivative with respect to ``t``, in either mode: it
    requires grad with grad mode on, or it carries a forward-mode tangent (:func:`has_tangent`)."""
    return isinstance(t, torch.Tensor) and ((t.requires_grad and torch.is_grad_enabled()) or has_tangent(t))


def batched(t) -> bool:
    """True when ``vmap`` batches ``t`` at some level: its values cannot be read on the host then."""
    while torch._C._functorch.is_functorch_wrapped_tensor(t):
        if torch._C._functorch.is_batchedtensor(t):
            return True
        t = torch._C._functorch.get_unwrapped(t)
    return False


def needs_composite(*tensors) -> bool:
    """True where the fused NumPy/numba path must not run, so the composite torch ops take the call.

    The one test for every entry point of :mod:`softmaxkit.torch`:

    * under ``torch.compile``: False (that path has custom ops, :mod:`._custom_ops`),
      except under ``torch.export`` (which is a compile too, strict or not): True.
      Export records the ops below autograd, so the custom ops' graph had no
      backward ("no autograd formula was registered", audit BP); the composite
      ops export as aten ops, differentiable and runnable without softmaxkit;
    * a functorch transform or a forward-AD dual tensor (:func:`transforms_active`);
    * ``torch.jit.trace``, which records torch ops only: a loss computed in
      NumPy was recorded as a constant, so the traced model returned the
      example input's loss for every input, with no error (audit);
    * a meta tensor, which has no values to hand NumPy: torch ops give the
      result's shape and dtype, as torch's own losses do (FSDP meta init,
      shape inference);
    * a tensor subclass (:func:`is_plain`): a DTensor's memory is its local
      shard, a fake tensor has none, and ``.numpy()`` refuses both
      (audit BP); torch ops dispatch through the subclass, as torch's own
      losses do.
    """
    if torch.compiler.is_compiling():  # first: Dynamo cannot trace the checks below
        return torch.compiler.is_exporting()
    if torch.jit.is_tracing() or transforms_active(*tensors):
        return True
    return any(isinstance(t, torch.Tensor) and (t.is_meta or not is_plain(t)) for t in tensors)


#: The tensor types whose memory is their values, which the NumPy/numba kernels may read.
PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def is_plain(t: torch.Tensor) -> bool:
    """Whether ``t`` is a plain tensor (or Parameter), not a subclass (DTensor, FakeTensor, ...).

    The type itself, not ``isinstance``: every subclass is an instance of
    ``torch.Tensor``.
    """
    return type(t) in PLAIN_TENSORS


def values_readable(t) -> bool:
    """True when ``t``'s values can be read on the host even under a transform:
    a plain tensor, neither wrapped by functorch (vmap's batched, grad's
    tracking tensors) nor carrying a forward-AD tangent."""
    return not (torch._C._functorch.is_functorch_wrapped_tensor(t) or has_tangent(t))


def loss_dtype(logits: torch.Tensor, target: torch.Tensor, *, soft: bool) -> torch.dtype:
    """The dtype of torch's loss for these inputs, which the loss is also computed in (at least float32).

    The logits' dtype, except that 16-bit logits give float32 under
    ``torch.autocast`` for their device (autocast casts them up before the op:
    cross-entropy is on autocast's float32 list), and probability targets of a
    wider dtype promote it (float32 logits with float64 probabilities give a
    float64 loss, computed in float64). One rule for the fused path
    (:mod:`._cross_entropy`) and the composite one here.
    """
    dtype = logits.dtype
    # (meta tensors: no autocast state for that device type; torch.is_autocast_enabled raises on it)
    if dtype in LOW_PRECISION and logits.device.type != "meta" and torch.is_autocast_enabled(logits.device.type):
        dtype = torch.float32
    return torch.promote_types(dtype, target.dtype) if soft else dtype


def log_softmax_rows(x: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(log_p, lse, dead)`` along ``dim``, differentiable, NaN-free on all ``-inf`` rows.

    ``dead`` marks all ``-inf`` rows (``log_p = -inf``, ``lse = -inf`` there;
    their gradient is 0). ``lse`` and ``dead`` keep ``dim`` with size 1.
    """
    m = x.detach().amax(dim=dim, keepdim=True)  # the shift cancels: no gradient needed
    m = torch.where(m == -torch.inf, torch.zeros((), dtype=x.dtype, device=x.device), m)
    z = x - m
    s = torch.exp(z).sum(dim=dim, keepdim=True)
    dead = s == 0
    log_s = torch.log(torch.where(dead, torch.ones_like(s), s))
    lse = torch.where(dead, -torch.inf, m + log_s)
    return z - log_s, lse, dead


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    axis: int,
    soft: bool,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss of :func:`softmaxkit.torch.cross_entropy`, in differentiable torch ops.

    Parameters
    ----------
    logits : Tensor (..., C, ...), class axis ``axis``
    target : Tensor of class indices (the logits' shape without ``axis``) or
        probabilities (the logits' shape); validated by the caller
    options : CrossEntropyOptions (its ``weight`` is ignored: pass ``weight``)
    weight : Tensor of shape (C,), optional

    Returns
    -------
    Tensor in :func:`loss_dtype` (computed in it, as the fused path): a
    scalar, or the batch shape for ``"none"``.

    Raises
    ------
    ValueError
        A class index outside ``0..C-1`` (other than ``ignore_index``): the
        fused path's message, or, where the target's values cannot be read
        (vmap), the same wording without the index and its position.
    """
    out_dtype = loss_dtype(logits, target, soft=soft)
    cdtype = compute_dtype(out_dtype)
    x = logits.to(cdtype).movedim(axis, -1)  # (..., C)
    n_classes = x.shape[-1]
    eps, zeta, cap = options.label_smoothing, options.z_loss, options.softcap
    # Under torch.jit.trace a shape entry is a 0-d int64 tensor, whose reciprocal is float32: eps / C
    # was rounded to float32 in a traced float64 loss (1.5e-8 off, audit BP); divide in the compute dtype.
    per_class = eps / (n_classes.to(cdtype) if isinstance(n_classes, torch.Tensor) else n_classes)
    if cap is not None:
        x = cap * torch.tanh(x / cap)
    log_p, lse, dead = log_softmax_rows(x)
    lse_sq = torch.where(dead, torch.zeros_like(lse), lse).squeeze(-1) ** 2  # z-loss: 0 on dead rows
    w = None if weight is None else weight.to(device=x.device, dtype=cdtype)

    if soft:
        t = target.to(cdtype).movedim(axis, -1)
        if eps > 0.0:
            t = (1.0 - eps) * t + per_class
        wt = t if w is None else t * w
        row_loss = -_weighted_log_p(wt, log_p).sum(-1) + zeta * lse_sq
        t_rows = t.reshape(-1, n_classes)
    else:
        y = target.to(torch.int64)
        active = y != options.ignore_index
        y_safe = torch.where(active, y, torch.zeros_like(y))
        # The caller cannot check the labels under a transform (no host reads of batched values,
        # no data-dependent branch), so an out-of-range one surfaces here, as the indexing op's error.
        try:
            # index_select, not w[y_safe]: under vmap an unbatched row's 0-d index becomes an .item() call
            w_y = (
                active.to(cdtype)
                if w is None
                else torch.where(
                    active, w.index_select(0, y_safe.reshape(-1)).view_as(y_safe), torch.zeros((), dtype=cdtype)
                )
            )
            nll = -log_p.gather(-1, y_safe.unsqueeze(-1)).squeeze(-1)
        except (IndexError, RuntimeError) as err:
            # Only an index error is the target's ("index 5 is out of bounds ...", "index out of range in
            # self"); "CUDA out of memory" (torch.OutOfMemoryError, a RuntimeError) and anything else stays
            # as it is, else a batch-size finder catching OutOfMemoryError would see a bad label (audit).
            if isinstance(err, torch.OutOfMemoryError) or not _INDEX_ERROR.search(str(err)):
                raise
            bad_index = _class_index_error(target, n_classes, options.ignore_index)  # not y: see there
            if bad_index is None:  # the target's values are readable and in range: not its error
                raise
            raise bad_index from err
        # torch's formula: (1 - eps) w_y nll + eps / C sum_c w_c (-log p_c); z-loss weighted like nll.
        own = (1.0 - eps) * nll + zeta * lse_sq if eps < 1.0 else zeta * lse_sq
        own = torch.where(w_y == 0, torch.zeros_like(own), own)  # weight 0 (or ignored) times inf -> 0
        row = w_y * own
        if eps > 0.0:
            wl = log_p if w is None else w * torch.where(w == 0, torch.zeros_like(log_p), log_p)
            row = row - per_class * wl.sum(-1)
        row_loss = torch.where(active, row, torch.zeros_like(row))  # ignored rows: no loss, no gradient
        t_rows = y.reshape(-1)

    reduction = options.reduction
    if reduction == "none":
        return row_loss.to(out_dtype)
    scale = _reduction.loss_scale(reduction, _reduction.row_weights(t_rows, options, soft, weight=weight))
    return (row_loss.sum() * scale.to(cdtype)).to(out_dtype)


def _weighted_log_p(wt: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``wt * log_p`` with ``0 * -inf = 0`` (a target of 0 on a masked class), differentiable in both.

    Only where ``log_p`` is ``-inf`` *and* ``wt`` is 0 is ``log_p`` replaced, before the product, so
    no ``0 * inf`` appears in the backward either (the "double where"); there the derivative in
    ``wt`` is 0 (the entry is left out of the sum) and in the logits 0. Everywhere else the
    derivative in ``wt`` is ``log_p``: a mask of ``wt == 0`` alone also made it 0 on every class
    with a finite logit and a target of 0 (a one-hot soft target's ``dL/dt`` was 0 but for its
    class, on every composite path: audit CK).
    """
    masked = (wt == 0) & (log_p == -torch.inf)
    return wt * torch.where(masked, torch.zeros_like(log_p), log_p)


#: The messages of an index out of range from ``gather`` / ``index_select`` (CPU and CUDA).
_INDEX_ERROR = re.compile(r"index -?\d+ is out of bounds|index out of range|out of bounds for dimension")


def _class_index_error(y: torch.Tensor, n_classes: int, ignore_index: int) -> ValueError | None:
    """The eager check's ValueError for class indices ``y`` (batch shape), out of range somewhere.

    Word for word the fused path's (index and position) where ``y`` can be
    read, or None when they can be read and are all in range (the index error
    was not the target's); inside vmap its values cannot be, so the same
    wording without them. Pass the caller's tensor: under a transform any op on
    it (even a no-op ``.to``) returns a wrapped tensor, whose values cannot be read.
    """
    if values_readable(y):
        try:
            with torch._C._DisableFuncTorch():  # else .detach() / .numpy() on it wrap it too
                # int(): under torch.jit.trace a shape entry is a 0-d tensor, which NumPy cannot compare with
                check_hard_target(y.detach().cpu().numpy(), tuple(y.shape), int(n_classes), ignore_index)
        except ValueError as err:
            return err
        return None
    return ValueError(
        f"target contains a class index outside 0..{n_classes - 1}, but logits have {n_classes} classes "
        f"(valid: 0..{n_classes - 1} or ignore_index={ignore_index}); under a torch.func transform (vmap) "
        "its value and position cannot be read: check the target outside the transform"
    )


def linear_cross_entropy(hidden, weight, bias, target, options, *, soft, class_weight=None, loss_dtype=None):
    """``cross_entropy(hidden @ weight.T + bias, target)`` in differentiable ops.

    Builds the ``(N, V)`` logits the fused path avoids: used for double
    backward and functorch transforms only. The loss is returned in
    ``loss_dtype`` (default ``hidden.dtype``), cast from the compute dtype.
    """
    cdtype = compute_dtype(hidden.dtype)
    logits = hidden.to(cdtype) @ weight.to(cdtype).T
    if bias is not None:
        logits = logits + bias.to(cdtype)
    loss = cross_entropy(logits, target, options, axis=logits.ndim - 1, soft=soft, weight=class_weight)
    return loss.to(loss_dtype or hidden.dtype)

