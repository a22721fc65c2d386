"""Cross-entropy as a ``torch.autograd.Function``: loss and gradient in one pass.

The forward runs the fused kernel (:mod:`._backend`), which produces the loss
*and* ``dloss/dlogits`` from one read of the logits; the gradient is kept and
the backward only multiplies it by the upstream gradient. That is exact for
every reduction: the loss is a sum of per-row terms, so an upstream gradient
(a scalar for ``"mean"``/``"sum"``, one value per row for ``"none"``) just
scales each row of the saved gradient.

Reusable pieces for other torch paths (the chunked linear loss, the
class-parallel loss in :mod:`softmaxkit.torch.distributed`):
:func:`prepare_target`, :func:`row_scale`, :func:`cross_entropy_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from softmaxkit._options import CrossEntropyOptions
from softmaxkit._validation import check_floating, cross_entropy_options, normalize_axis, to_numpy
from softmaxkit.torch import _backend, _ops
from softmaxkit.torch._tensors import batch_shape, compute_dtype, from_rows, to_rows


@dataclass(frozen=True)
class Problem:
    """A validated cross-entropy call: class axis, options, target kind."""

    axis: int
    options: CrossEntropyOptions
    soft: bool


def prepare_target(target: Any, logits: torch.Tensor, axis: int, options: CrossEntropyOptions):
    """Validate ``target`` against ``logits``; return ``(target_tensor, is_soft)``.

    The checks (and their messages) are those of
    :func:`softmaxkit.functional.prepare_target`; they read the target on the
    host, which costs a device-to-host copy for CUDA tensors.
    """
    from softmaxkit.functional import prepare_target as check

    t = target if isinstance(target, torch.Tensor) else torch.as_tensor(target)
    _, soft = check(to_numpy(t), tuple(logits.shape), axis, options.ignore_index)
    return t.to(logits.device), soft


def problem_for(logits: torch.Tensor, target: Any, axis: int, options: dict) -> tuple[Problem, torch.Tensor]:
    """Validate a call (dtype, axis, options, target) into a :class:`Problem`."""
    check_floating(logits, "logits")
    axis = normalize_axis(axis, logits.ndim)
    n_classes = logits.shape[axis]
    if n_classes == 0:
        raise ValueError(f"logits must have at least 1 class along axis {axis}, got shape {tuple(logits.shape)}")
    opts = cross_entropy_options(n_classes=n_classes, **options)
    t, soft = prepare_target(target, logits, axis, opts)
    return Problem(axis, opts, soft), t


def target_rows(target: torch.Tensor, problem: Problem, dtype: torch.dtype) -> torch.Tensor:
    """Targets as ``(N,)`` int64 or ``(N, C)`` probabilities in ``dtype``."""
    if problem.soft:
        return to_rows(target, problem.axis, dtype)
    return target.reshape(-1).to(torch.int64)


def row_scale(
    t_rows: torch.Tensor, problem: Problem, grad_output: Any = None
) -> tuple[torch.Tensor, float]:
    """Per-row gradient multipliers (N,) float64 and the ``"mean"`` denominator.

    The torch form of :func:`softmaxkit.functional.gradient_row_scale`:
    ``"mean"`` scales by ``grad_output / sum(row weights)`` (0 when every target
    is ignored: loss 0, gradient 0, not NaN), ``"sum"`` by ``grad_output``,
    ``"none"`` by the per-row ``grad_output`` (1 by default).
    """
    row_w = _ops.row_weights(t_rows, problem.options, problem.soft)
    n, device = row_w.shape[0], row_w.device
    reduction = problem.options.reduction
    g = torch.ones((), dtype=torch.float64, device=device) if grad_output is None else (
        # float64 straight from Python floats/NumPy (torch.as_tensor(0.7) would round to float32)
        torch.as_tensor(np.asarray(grad_output, dtype=np.float64) if not isinstance(grad_output, torch.Tensor)
                        else grad_output, device=device).to(torch.float64)
    )
    if reduction == "none":
        return (g.expand(n) if g.ndim == 0 else g.reshape(n)), 1.0
    g = g.reshape(())
    if reduction == "sum":
        return g.expand(n), 1.0
    denom = float(row_w.sum())
    scale = g / denom if denom > 0 else torch.zeros_like(g)
    return scale.expand(n), denom


def cross_entropy_rows(
    x: torch.Tensor,
    t_rows: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    row_scale: torch.Tensor | None = None,
    want_grad: bool = True,
    grad_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row float64 loss and ``row_scale * dloss/dx`` for ``(N, C)`` rows.

    ``x`` must be contiguous float32/float64; the gradient goes into
    ``grad_out`` when given (it may be ``x`` itself, to reuse its memory) or
    into a new tensor. The building block every torch path shares.
    """
    grad = None
    if want_grad:
        grad = torch.empty_like(x) if grad_out is None else grad_out
    loss = _backend.cross_entropy_2d(x, t_rows, options, row_scale=row_scale, grad_out=grad)
    return loss, grad


def reduce_rows(row_loss: torch.Tensor, problem: Problem, denom: float, shape, dtype) -> torch.Tensor:
    """Apply the reduction to float64 per-row losses; the result is in ``dtype``."""
    reduction = problem.options.reduction
    if reduction == "none":
        return row_loss.reshape(shape).to(dtype)
    total = row_loss.sum()
    if reduction == "mean":
        total = total / denom if denom > 0 else torch.zeros_like(total)
    return total.to(dtype)


def loss_and_grad(
    logits: torch.Tensor,
    target: torch.Tensor,
    problem: Problem,
    *,
    want_grad: bool,
    grad_output: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss (in ``logits``' dtype and layout) and ``grad_output * dloss/dlogits``."""
    cdtype = compute_dtype(logits.dtype)
    x = to_rows(logits, problem.axis, cdtype)  # (N, C); may share memory with logits
    t = target_rows(target, problem, cdtype)
    scale, denom = row_scale(t, problem, grad_output)
    # If to_rows had to copy (class axis not last, non-contiguous, or a 16-bit
    # input), the gradient overwrites that copy instead of taking new memory.
    own_copy = x.data_ptr() != logits.data_ptr() or x.dtype != logits.dtype
    grad_out = x if (want_grad and own_copy) else None
    row_loss, grad = cross_entropy_rows(x, t, problem.options, row_scale=scale, want_grad=want_grad, grad_out=grad_out)
    loss = reduce_rows(row_loss, problem, denom, batch_shape(tuple(logits.shape), problem.axis), logits.dtype)
    if grad is not None:
        grad = from_rows(grad, tuple(logits.shape), problem.axis).to(logits.dtype)
    return loss, grad


class CrossEntropyFunction(torch.autograd.Function):
    """``loss = cross_entropy(logits, target)``; the gradient is made in the forward.

    Backward multiplies the saved gradient by ``grad_output`` in place and
    hands it over (no second ``(N, C)`` allocation). If backward runs again
    on the same graph (``retain_graph=True``), the gradient is recomputed
    from the saved logits, so repeated backward calls stay correct.
    """

    @staticmethod
    def forward(ctx, logits, target, problem):
        want = ctx.needs_input_grad[0]
        loss, grad = loss_and_grad(logits, target, problem, want_grad=want)
        ctx.problem = problem
        ctx.grad = grad
        ctx.save_for_backward(logits, target)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        logits, target = ctx.saved_tensors
        problem = ctx.problem
        grad_logits = grad_target = None
        if ctx.needs_input_grad[0]:
            grad, ctx.grad = ctx.grad, None
            if grad is None:  # second backward: recompute rather than reuse a handed-out tensor
                _, grad = loss_and_grad(logits, target, problem, want_grad=True)
            grad_logits = _scale_by_upstream(grad, grad_output, problem)
        if ctx.needs_input_grad[1] and problem.soft:
            grad_target = _soft_target_grad(logits, target, problem, grad_output)
        return grad_logits, grad_target, None


def _scale_by_upstream(grad: torch.Tensor, grad_output: torch.Tensor, problem: Problem) -> torch.Tensor:
    """``grad * grad_output`` in place (the saved gradient is ours to consume)."""
    if problem.options.reduction == "none":
        return grad.mul_(grad_output.unsqueeze(problem.axis).to(grad.dtype))
    if grad_output.device.type == "cpu" and float(grad_output) == 1.0:
        return grad  # the common loss.backward(): skip a pass over (N, C)
    return grad.mul_(grad_output.to(grad.dtype))


def _soft_target_grad(logits, target, problem: Problem, grad_output) -> torch.Tensor:
    """``dloss/dt_c = -(1 - eps) w_c log p_c`` per row, times the row scale.

    Rare (distillation into a learnable target), so plain torch ops: it
    re-runs a log-softmax rather than keeping one from the forward.
    """
    from softmaxkit.torch.functional import _log_softmax

    opts = problem.options
    x = logits.detach().to(compute_dtype(logits.dtype))
    if opts.softcap is not None:
        x = opts.softcap * torch.tanh(x / opts.softcap)
    log_p = _log_softmax(x, problem.axis)
    g = -(1.0 - opts.label_smoothing) * log_p
    w = _ops.class_weight(opts, x.device, x.dtype)
    if w is not None:
        shape = [1] * x.ndim
        shape[problem.axis] = -1
        g = g * w.reshape(shape)
    t = target_rows(target, problem, x.dtype)
    scale, _ = row_scale(t, problem, grad_output.detach())
    scale = scale.reshape(batch_shape(tuple(logits.shape), problem.axis)).unsqueeze(problem.axis)
    return (g * scale.to(g.dtype)).to(target.dtype)
