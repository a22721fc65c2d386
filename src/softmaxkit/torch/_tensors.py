"""Tensor plumbing: the compute dtype, the class axis, zero-copy NumPy views.

The torch counterpart of :mod:`softmaxkit._arrays`, kept apart so the
autograd Functions read as "rows in, kernel, rows out".
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: Low-precision dtypes: computed in float32, returned in the input dtype.
LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32, float16 and bfloat16 compute in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def to_rows(x: torch.Tensor, axis: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` as a contiguous ``(N, C)`` tensor with the class axis last.

    A view (no copy) when ``axis`` is last, ``x`` is contiguous and already in
    ``dtype``; the caller must then not write into it.
    """
    moved = x.movedim(axis, -1)
    rows = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])  # explicit: reshape(-1, 0) is ambiguous
    return rows.to(dtype or x.dtype).contiguous()


def from_rows(rows: torch.Tensor, shape: tuple[int, ...], axis: int) -> torch.Tensor:
    """Inverse of :func:`to_rows` (a view: the class axis moves back to ``axis``)."""
    moved_shape = tuple(s for i, s in enumerate(shape) if i != axis) + (shape[axis],)
    return rows.reshape(moved_shape).movedim(-1, axis)


def batch_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return tuple(s for i, s in enumerate(shape) if i != axis)


def numpy_view(x: torch.Tensor) -> np.ndarray:
    """Zero-copy NumPy view of a CPU tensor (float32, float64 or integer).

    The view shares memory: kernels that write into it write into ``x``.
    bfloat16 has no NumPy dtype, so callers convert to float32 first
    (:func:`to_rows` with :func:`compute_dtype` does).
    """
    return x.detach().numpy()
