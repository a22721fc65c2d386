"""The Triton path of :mod:`softmaxkit.torch`: availability, autograd, reductions.

The math lives in :mod:`softmaxkit.kernels.triton`; this module decides *when*
it runs and wires it into autograd:

* :func:`available` says whether tensors can take the Triton path (CUDA
  tensors, Triton importable, a 16/32-bit float dtype);
* :func:`cross_entropy_2d` is the kernel contract of
  :mod:`softmaxkit.torch._backend` (float64 row loss), the drop-in for
  ``_backend.device_kernel`` on CUDA;
* :func:`softmax`, :func:`cross_entropy` (and :func:`cross_entropy_nd` for
  any class axis) and :func:`linear_cross_entropy` are autograd entry points
  that keep 16-bit inputs 16-bit in memory (the kernels upcast in registers),
  which is what makes them run at memory speed; :func:`use_for` says when the
  public ops in :mod:`softmaxkit.torch.functional` should call them.

float64 tensors never take this path: the kernels accumulate in float32, and
the contract promises float64 results for float64 input.

Gradient strategy (why it is exact for every reduction): the loss is a sum of
per-row terms, so ``d(upstream . loss)/dx_i = upstream_i * dloss_i/dx_i``.

* ``"mean"``/``"sum"``: the forward runs the fused kernel and stores the
  gradient for an upstream gradient of 1 (one read of the logits, one write of
  the gradient); the backward multiplies by the upstream scalar, and skips
  that pass when it is exactly 1 (one host synchronisation).
* ``"none"``: the upstream gradient differs per row and is unknown in the
  forward, so the forward only computes the loss and the backward reruns the
  fused kernel with ``row_scale = grad_output``: the same bytes as a forward
  gradient followed by a per-row multiply, and one rounding instead of two.

Tests run everything on CPU tensors through Triton's interpreter: call
:func:`use_interpreter` before the first kernel is imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import torch

from softmaxkit import _reduction
from softmaxkit._options import CrossEntropyOptions
from softmaxkit.torch import _composite, _ops

#: dtypes the kernels take (float64 is routed to the torch-ops kernel instead).
SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)

_INTERPRET_ON_CPU = False
_IMPORTABLE: bool | None = None


def use_interpreter() -> None:
    """Run the Triton path on CPU tensors through Triton's interpreter.

    For tests without a GPU. ``triton.jit`` decides at decoration time
    whether a function is compiled or interpreted, so this sets
    ``TRITON_INTERPRET=1`` and, if triton or the kernels were imported without
    it, evicts them from ``sys.modules`` so that they are imported afresh.
    """
    global _INTERPRET_ON_CPU, _IMPORTABLE
    if os.environ.get("TRITON_INTERPRET") != "1":
        os.environ["TRITON_INTERPRET"] = "1"
        # triton.language's own helpers (tl.max, tl.sum, ...) are jitted when
        # triton is imported: if something imported it before (torch.compile
        # does), drop it so the next import builds interpreted versions.
        stale = [m for m in sys.modules if m.split(".")[0] == "triton" or m.startswith("softmaxkit.kernels.triton")]
        for name in stale:
            del sys.modules[name]
        _IMPORTABLE = None
    _INTERPRET_ON_CPU = True


def importable() -> bool:
    """True if :mod:`softmaxkit.kernels.triton` imports (Triton installed and
    working); checked once, then cached."""
    global _IMPORTABLE
    if _IMPORTABLE is None:
        _IMPORTABLE = importlib.util.find_spec("triton") is not None
        if _IMPORTABLE:
            try:
                import softmaxkit.kernels.triton  # noqa: F401
            except Exception:  # a broken triton install: fall back, do not crash
                _IMPORTABLE = False
    return _IMPORTABLE


def available(*tensors: torch.Tensor) -> bool:
    """True if these tensors can take the Triton path.

    Every floating tensor must be float16/bfloat16/float32, and all tensors
    must be on CUDA (or on CPU after :func:`use_interpreter`), with Triton
    importable. Costs no device synchronisation.
    """
    if not tensors:
        return False
    for t in tensors:
        if t.is_floating_point() and t.dtype not in SUPPORTED_DTYPES:
            return False
        if not (t.is_cuda or (_INTERPRET_ON_CPU and t.device.type == "cpu")):
            return False
    return importable()


def use_for(x: torch.Tensor, target: Any = None) -> bool:
    """Whether a public op on ``x`` should take the Triton path.

    CUDA tensors only (CPU behaviour never changes, interpreter or not), in a
    supported dtype, with Triton importable; and no gradient wanted for a
    soft ``target`` (these kernels differentiate the logits only).
    """
    if not (isinstance(x, torch.Tensor) and x.is_cuda and available(x)):
        return False
    return not (isinstance(target, torch.Tensor) and target.requires_grad)


def _kernels():
    import softmaxkit.kernels.triton as k

    return k


def _rows(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` as (N, C) with the class axis last and unit stride on it."""
    moved = x.movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    return rows if rows.stride(-1) == 1 else rows.contiguous()


def _unrows(rows: torch.Tensor, shape: torch.Size, dim: int) -> torch.Tensor:
    moved = list(shape)
    moved.append(moved.pop(dim))
    return rows.reshape(moved).movedim(-1, dim)


# --------------------------------------------------------------------------- softmax


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, inv_t, log):
        rows = _rows(x, dim)
        y = _kernels().softmax_forward(rows, inv_temperature=inv_t, log=log)
        # x too (a reference, no copy): a create_graph backward differentiates from it
        ctx.save_for_backward(y, x)
        ctx.meta = (x.shape, dim, inv_t, log)
        return _unrows(y, x.shape, dim)

    @staticmethod
    def backward(ctx, dy):
        y, x = ctx.saved_tensors
        shape, dim, inv_t, log = ctx.meta
        if torch.is_grad_enabled():  # create_graph=True: differentiate torch's ops on the saved input
            # (y is the kernel's buffer, of which the output is a view: it carries no graph)
            with torch.enable_grad():
                xs = x.float() * inv_t
                out = torch.log_softmax(xs, dim) if log else torch.softmax(xs, dim)
                (dx,) = torch.autograd.grad(out, x, dy.float(), create_graph=True)
            return dx, None, None, None
        dx = _kernels().softmax_backward(y, _rows(dy, dim), inv_temperature=inv_t, log=log)
        return _unrows(dx, shape, dim), None, None, None


def softmax(x: torch.Tensor, dim: int = -1, *, temperature: float = 1.0, log: bool = False) -> torch.Tensor:
    """(Log-)softmax of ``x / temperature`` along ``dim`` with the Triton kernels.

    Parameters
    ----------
    x : Tensor, float16/bfloat16/float32, on CUDA
    dim : int
    temperature : float > 0
    log : bool

    Returns
    -------
    Tensor of ``x``'s shape and dtype, differentiable.
    """
    return _Softmax.apply(x, dim, 1.0 / temperature, log)


# --------------------------------------------------------------------------- cross-entropy


def _class_weight(options: CrossEntropyOptions, device) -> torch.Tensor | None:
    return _ops.class_weight(options, device, torch.float32)


def _loss_scale(t_rows: torch.Tensor, options: CrossEntropyOptions, soft: bool, weight) -> torch.Tensor:
    """The :mod:`softmaxkit._reduction` factor as a float32 device scalar (no host sync)."""
    return _reduction.loss_scale(options.reduction, _reduction.row_weights(t_rows, options, soft, weight=weight))


def _reduce(row_loss: torch.Tensor, options: CrossEntropyOptions, scale: torch.Tensor):
    return _reduction.reduce(row_loss, options.reduction, scale.to(row_loss.dtype), tuple(row_loss.shape))


def _is_one(g: torch.Tensor) -> bool:
    """True if the upstream scalar is exactly 1 (one host sync, saves a pass over (N, C))."""
    return bool((g == 1).all())


def cross_entropy_2d(
    x: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    row_scale: torch.Tensor | None = None,
    grad_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The :mod:`softmaxkit.torch._backend` kernel contract on the Triton kernel.

    Same signature and results as :func:`softmaxkit.torch._ops.cross_entropy_2d`
    (per-row float64 loss; ``grad_out`` may alias ``x``). float64 input is
    handed to that torch-ops kernel, which computes in float64.
    """
    if x.dtype not in SUPPORTED_DTYPES:
        return _ops.cross_entropy_2d(x, target, options, row_scale=row_scale, grad_out=grad_out)
    if grad_out is not None and row_scale is None:
        row_scale = torch.ones(1, dtype=torch.float32, device=x.device)
    loss = _kernels().cross_entropy_rows(
        x, target, options, weight=_class_weight(options, x.device),
        row_scale=row_scale, grad_out=grad_out,
    )
    return loss.to(torch.float64)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, target, options):
        k = _kernels()
        soft = target.dim() == 2
        weight = _class_weight(options, x.device)
        scale = _loss_scale(target, options, soft, weight)
        fused = ctx.needs_input_grad[0] and options.reduction != "none"
        grad = torch.empty_like(x) if fused else None
        row_loss = k.cross_entropy_rows(
            x, target, options, weight=weight,
            row_scale=scale.to(torch.float32).reshape(1) if fused else None, grad_out=grad,
        )
        ctx.options, ctx.grad = options, grad
        ctx.save_for_backward(x, target, weight, scale)
        return _reduce(row_loss, options, scale).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        x, target, weight, loss_scale = ctx.saved_tensors
        options = ctx.options
        if torch.is_grad_enabled():  # create_graph=True: differentiate the composite ops instead
            ctx.grad = None
            with torch.enable_grad():
                loss = _composite.cross_entropy(x, target, options, axis=1, soft=target.dim() == 2, weight=weight)
                (grad,) = torch.autograd.grad(loss, x, grad_output, create_graph=True)
            return grad, None, None
        grad, ctx.grad = ctx.grad, None  # hand the buffer over once
        if grad is None:  # "none", or a second backward: rerun the fused kernel
            scale = (
                grad_output.reshape(-1).to(torch.float32)
                if options.reduction == "none"
                else (loss_scale * grad_output).to(torch.float32).reshape(1)
            )
            grad = torch.empty_like(x)
            _kernels().cross_entropy_rows(x, target, options, weight=weight, row_scale=scale, grad_out=grad)
        elif not _is_one(grad_output):
            grad.mul_(grad_output.to(grad.dtype))
        return grad, None, None


def cross_entropy(x: torch.Tensor, target: torch.Tensor, options: CrossEntropyOptions) -> torch.Tensor:
    """Cross-entropy of (N, C) logits with the fused Triton kernel, differentiable in ``x``.

    Parameters
    ----------
    x : Tensor of shape (N, C), float16/bfloat16/float32, last axis contiguous
    target : Tensor of shape (N,) int64, or (N, C) probabilities (no gradient
        flows to them on this path)
    options : CrossEntropyOptions
        Validated; ``reduction`` is applied here.

    Returns
    -------
    Tensor in ``x``'s dtype: a scalar, or (N,) for ``reduction="none"``.
    """
    if x.stride(-1) != 1:  # the kernels index classes with unit stride
        x = x.contiguous()
    if target.dim() == 2 and target.stride(-1) != 1:
        target = target.contiguous()
    return _CrossEntropy.apply(x, target, options)


def cross_entropy_nd(
    logits: torch.Tensor, target: torch.Tensor, options: CrossEntropyOptions, *, axis: int, soft: bool
) -> torch.Tensor:
    """:func:`cross_entropy` for any layout: the class axis is ``axis``.

    ``target`` is validated: class indices of the logits' shape without
    ``axis``, or probabilities of the logits' shape. Returns the loss in the
    logits' dtype, with the batch shape for ``reduction="none"``.
    """
    rows = _rows(logits, axis)  # (N, C); a view when the class axis is last
    if soft:
        t = _rows(target.detach(), axis)
        t = t if t.dtype in SUPPORTED_DTYPES else t.to(torch.float32)
    else:
        t = target.reshape(-1).to(torch.int64)
    loss = cross_entropy(rows, t, options)
    if options.reduction == "none":
        batch = [s for i, s in enumerate(logits.shape) if i != axis]
        loss = loss.reshape(batch)
    return loss


# --------------------------------------------------------------------------- linear + cross-entropy


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, target, options, chunk_size):
        k = _kernels()
        cweight = _class_weight(options, hidden.device)
        scale = _loss_scale(target, options, target.dim() == 2, cweight)
        need = any(ctx.needs_input_grad[:3])
        fused = need and options.reduction != "none"
        loss, gh, gw, gb = k.linear_cross_entropy_rows(
            hidden, weight, target, options, bias=bias, class_weight=cweight,
            row_scale=scale.to(torch.float32).reshape(1) if fused else None, chunk_size=chunk_size,
        )
        ctx.options, ctx.chunk_size = options, chunk_size
        ctx.grads = (gh, gw, gb) if fused else None
        ctx.save_for_backward(hidden, weight, bias, target, cweight, scale)
        return _reduce(loss, options, scale).to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        hidden, weight, bias, target, cweight, loss_scale = ctx.saved_tensors
        options = ctx.options
        if torch.is_grad_enabled():  # create_graph=True: differentiate the composite ops instead
            ctx.grads = None
            needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2] and bias is not None)
            inputs = [t for t, need in zip((hidden, weight, bias), needs) if need]
            with torch.enable_grad():
                loss = _composite.linear_cross_entropy(
                    hidden, weight, bias, target, options, soft=target.dim() == 2, class_weight=cweight
                )
                grads = iter(torch.autograd.grad(loss, inputs, grad_output, create_graph=True))
            return (*(next(grads) if need else None for need in needs), None, None, None)
        grads, ctx.grads = ctx.grads, None
        if grads is None:
            scale = (
                grad_output.reshape(-1).to(torch.float32)
                if options.reduction == "none"
                else (loss_scale * grad_output).to(torch.float32).reshape(1)
            )
            _, gh, gw, gb = _kernels().linear_cross_entropy_rows(
                hidden, weight, target, options, bias=bias, class_weight=cweight,
                row_scale=scale, chunk_size=ctx.chunk_size,
            )
        else:
            gh, gw, gb = grads
            if not _is_one(grad_output):
                g = grad_output.to(torch.float32)
                gh.mul_(g.to(gh.dtype))
                gw.mul_(g)
                if gb is not None:
                    gb.mul_(g)
        gw = gw.to(weight.dtype)
        gb = None if gb is None else gb.to(bias.dtype)
        return gh, gw, gb, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> Any:
    """``cross_entropy(hidden @ weight.T + bias, target)`` without the (N, V) logits.

    Parameters
    ----------
    hidden : Tensor of shape (N, D)
    weight : Tensor of shape (V, D)
    target : Tensor of shape (N,) int64 or (N, V) probabilities
    options : CrossEntropyOptions
    bias : Tensor of shape (V,), optional
    chunk_size : int, optional
        Tokens per chunk (default: from a 1 GiB budget for the chunk buffer).

    Returns
    -------
    Tensor in ``hidden``'s dtype: a scalar, or (N,) for ``reduction="none"``;
    differentiable in ``hidden``, ``weight`` and ``bias``.
    """
    return _LinearCrossEntropy.apply(hidden, weight, bias, target, options, chunk_size)
