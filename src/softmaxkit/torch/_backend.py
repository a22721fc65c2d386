"""The one dispatch point from a tensor's device to a cross-entropy kernel.

Every torch path (the autograd Functions, the chunked linear cross-entropy,
the class-parallel loss) calls :func:`cross_entropy_2d` here, with the kernel
contract of :mod:`softmaxkit.kernels.reference` on tensors:

* CPU tensors run the NumPy/numba kernels (:func:`softmaxkit.kernels.select`)
  on zero-copy ``.numpy()`` views, so the gradient is written straight into
  the tensor's memory;
* CUDA tensors run the fused Triton kernel (:mod:`._triton`) when Triton is
  importable (float64 still goes to the torch ops, which compute in float64);
* any other device runs the torch-ops version (:mod:`._ops`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from softmaxkit import kernels
from softmaxkit._options import CrossEntropyOptions
from softmaxkit.torch import _ops, _triton
from softmaxkit.torch._tensors import numpy_view

#: Set to True (tests do) to run the torch-ops kernel on CPU tensors too.
FORCE_TORCH_OPS = False


def _numpy_cross_entropy_2d(x, target, options, *, row_scale=None, grad_out=None):
    """The NumPy kernels on views of CPU tensors; returns the row loss as a tensor."""
    x_np = numpy_view(x)
    t_np = numpy_view(target)
    if row_scale is None:
        rs = np.ones(x.shape[0])
    elif isinstance(row_scale, torch.Tensor):
        # contiguous: a "mean" scale arrives as an expanded (stride 0) tensor
        rs = np.ascontiguousarray(numpy_view(row_scale.to(torch.float64)))
    else:
        rs = np.asarray(row_scale, dtype=np.float64)
    g_np = None if grad_out is None else numpy_view(grad_out)
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64)
    loss = kernels.select(x_np.size).cross_entropy_2d(x_np, t_np, options, row_scale=rs, grad_out=g_np)
    return torch.from_numpy(np.ascontiguousarray(loss, dtype=np.float64))


def device_kernel(device: torch.device) -> Callable[..., torch.Tensor]:
    """The ``cross_entropy_2d`` implementation for tensors on ``device``.

    The hook for GPU kernels: CUDA gets the Triton implementation (same
    signature and contract) when Triton is importable.
    """
    if device.type == "cpu" and not FORCE_TORCH_OPS:
        return _numpy_cross_entropy_2d
    if device.type == "cuda" and _triton.importable():
        return _triton.cross_entropy_2d  # float64 input falls through to _ops inside
    return _ops.cross_entropy_2d


def cross_entropy_2d(
    x: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    row_scale: torch.Tensor | None = None,
    grad_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row float64 loss of contiguous ``(N, C)`` float32/float64 logits ``x``.

    ``target`` is ``(N,)`` int64 or ``(N, C)`` probabilities in ``x``'s dtype,
    on ``x``'s device; ``grad_out`` (may be ``x`` itself) receives
    ``row_scale[:, None] * dloss/dx``. The loss comes back on ``x``'s device.
    """
    return device_kernel(x.device)(x, target, options, row_scale=row_scale, grad_out=grad_out)
