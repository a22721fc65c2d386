"""The fused kernels as torch custom ops, so ``torch.compile`` traces through them.

A Python autograd Function that hands tensors to NumPy/numba is opaque to
Dynamo (``.numpy()`` on a fake tensor has no value), so it would break the
graph. Registered with :func:`torch.library.custom_op` and a fake (meta)
implementation that gives the output shapes, each kernel is one node of the
compiled graph instead: Dynamo and AOTAutograd see shapes, and the real
kernel runs at run time.

Eager code calls the same implementations directly (:mod:`._cross_entropy`,
:mod:`._linear`), which keeps their in-place buffer reuse; compiled code calls
the ops here, which return fresh tensors (a custom op's outputs may not alias
its inputs). The ops have no autograd formula (no ``register_autograd``):
under ``torch.compile`` the autograd Functions around them are traced by
Dynamo as usual, and AOTAutograd takes their backward from the Functions.
That holds for ``torch.compile`` only: ``torch.export`` records the ops below
autograd, so an exported graph of these ops could not be differentiated
("no autograd formula was registered", audit BP). Under export the entry
points run the composite torch ops instead
(:func:`._composite.needs_composite`), which export as aten ops.

Values that only exist at run time (labels in range, finite probabilities
and class weights) are checked inside the ops when ``check`` is set: under
``torch.compile`` the Python-side checks see fake tensors.

* ``softmaxkit::cross_entropy_rows(x, target, weight, ..., row_scale, want_grad, check, widen_to)
  -> (row_loss, grad)``: per-row float64 loss and ``row_scale * dloss/dx`` of
  ``(N, C)`` rows (``grad`` is ``(0,)`` without ``want_grad``); the compiled
  cross-entropy backward calls it again to recompute the gradient from the
  saved logits (see :class:`._cross_entropy.CrossEntropyFunction`);
* ``softmaxkit::linear_cross_entropy_rows(hidden, weight, bias, target, ...)
  -> (row_loss, grad_hidden, grad_weight, grad_bias)``: the chunked fused head
  (absent gradients are ``(0,)``);
* ``softmaxkit::tied_upstream(upstream, of) -> upstream`` (a copy): the
  compiled backwards' upstream gradient, tied to the input ``of`` (see there:
  it is what makes a double backward raise instead of losing a term).
"""

from __future__ import annotations

from typing import Optional

import torch

from softmaxkit._options import CrossEntropyOptions


def options_of(
    ignore_index: int, reduction: str, label_smoothing: float, z_loss: float, softcap: Optional[float]
) -> CrossEntropyOptions:
    return CrossEntropyOptions(
        weight=None, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
    )


def check_runtime_values(x_shape, target, weight, ignore_index, soft) -> None:
    """The value checks of :func:`softmaxkit._validation.prepare_target` on real tensors."""
    from softmaxkit._validation import check_class_weight, prepare_target

    if soft:
        prepare_target(target, tuple(x_shape), len(x_shape) - 1, ignore_index)
    else:
        prepare_target(target, tuple(target.shape) + (x_shape[-1],), target.ndim, ignore_index)
    if weight is not None:
        check_class_weight(weight, x_shape[-1])


@torch.library.custom_op("softmaxkit::cross_entropy_rows", mutates_args=())
def cross_entropy_rows(
    x: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor],
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    softcap: Optional[float],
    row_scale: Optional[torch.Tensor],
    want_grad: bool,
    check: bool,
    widen_to: Optional[torch.dtype] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``widen_to``: the compute dtype of a 16-bit ``x``, widened here rather than by the caller
    (the compiled backward's recompute: see ``loss_and_grad``'s ``recompute``)."""
    from softmaxkit.torch._cross_entropy import kernel_options
    from softmaxkit.torch import _backend

    soft = target.dim() == 2
    if check:
        check_runtime_values(x.shape, target, weight, ignore_index, soft)
    opts = kernel_options(options_of(ignore_index, "none", label_smoothing, z_loss, softcap), weight, x.device)
    x = (x if widen_to is None else x.to(widen_to)).contiguous()
    grad = torch.empty_like(x) if want_grad else None
    loss = _backend.cross_entropy_2d(x, target.contiguous(), opts, row_scale=row_scale, grad_out=grad)
    return loss.to(x.device), (grad if grad is not None else x.new_empty(0))


@cross_entropy_rows.register_fake
def _(x, target, weight, ignore_index, label_smoothing, z_loss, softcap, row_scale, want_grad, check, widen_to=None):
    loss = x.new_empty(x.shape[0], dtype=torch.float64)
    return loss, (torch.empty_like(x, dtype=widen_to or x.dtype) if want_grad else x.new_empty(0))


@torch.library.custom_op("softmaxkit::linear_cross_entropy_rows", mutates_args=())
def linear_cross_entropy_rows(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    target: torch.Tensor,
    class_weight: Optional[torch.Tensor],
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    softcap: Optional[float],
    row_scale: Optional[torch.Tensor],
    need_hidden: bool,
    need_weight: bool,
    need_bias: bool,
    chunk_size: Optional[int],
    check: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from softmaxkit.torch import _linear

    soft = target.dim() == 2
    if check:
        check_runtime_values((hidden.shape[0], weight.shape[0]), target, class_weight, ignore_index, soft)
    opts = options_of(ignore_index, "none", label_smoothing, z_loss, softcap)
    row_loss, gh, gw, gb = _linear.run_rows(
        hidden, weight, bias, target, opts, class_weight, soft=soft, row_scale=row_scale,
        needs=(need_hidden, need_weight, need_bias), chunk_size=chunk_size,
    )  # fmt: skip
    empty = hidden.new_empty(0)
    return (
        row_loss,
        empty if gh is None else gh,
        empty.clone() if gw is None else gw,
        empty.clone() if gb is None else gb,
    )


@linear_cross_entropy_rows.register_fake
def _(hidden, weight, bias, target, class_weight, ignore_index, label_smoothing, z_loss, softcap,
      row_scale, need_hidden, need_weight, need_bias, chunk_size, check):  # fmt: skip
    empty = hidden.new_empty(0)
    return (
        hidden.new_empty(hidden.shape[0], dtype=torch.float64),
        torch.empty_like(hidden) if need_hidden else empty,
        torch.empty_like(weight) if need_weight else hidden.new_empty(0),
        torch.empty_like(bias) if (need_bias and bias is not None) else hidden.new_empty(0),
    )


@torch.library.custom_op("softmaxkit::tied_upstream", mutates_args=())
def tied_upstream(upstream: torch.Tensor, of: torch.Tensor) -> torch.Tensor:
    """A copy of ``upstream`` (a backward's upstream gradient: a scalar, or one value per row),
    tied to the input ``of``, whose values are not read.

    The compiled backwards scale their gradients by it. ``of`` is an argument so that
    the compiled backward graph takes the input itself as a saved tensor: a gradient made under
    ``create_graph=True`` is then linked to it, and a double backward raises AOTAutograd's "does
    not currently support double backward" error, as for torch's own compiled losses. Without that
    link the saved gradient was a constant to autograd, and a gradient penalty through a compiled
    loss silently lost its second-order term (audit). An op, not torch ops, because the compiler
    drops an unused input; an op on the upstream, not the gradient, so the multiplication stays
    in the compiler's fused kernel (a scalar or ``(N,)`` copy is all it costs).
    """
    return upstream.clone()


@tied_upstream.register_fake
def _(upstream, of):
    return torch.empty_like(upstream)
