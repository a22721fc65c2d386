"""Array plumbing shared by the public ops: backend detection, the class axis,
and the compute dtype.

Kept apart from :mod:`softmaxkit.functional` so the ops there read as
"validate, reshape, call a kernel, reduce" and nothing else.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from softmaxkit._validation import as_numpy, check_floating


def is_torch_tensor(x: Any) -> bool:
    """True if ``x`` is a ``torch.Tensor``, without importing torch.

    If torch was never imported, no object can be a tensor, so the check costs
    nothing for NumPy users.
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """float64 and wider (``np.longdouble``) compute in float64; everything narrower in float32.

    A ``longdouble`` computed in float32 lost 9 digits without a word (audit); float64 is the widest
    the kernels have, and the result keeps the input's dtype.
    """
    return _FLOAT64 if dtype.itemsize >= _FLOAT64.itemsize else _FLOAT32


def as_float_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` that refuses integer, bool and object input with a TypeError.

    Through :func:`~softmaxkit._validation.as_numpy`: a masked array with a masked entry is refused and
    a non-native byte order converted to native.
    """
    arr = as_numpy(x, name)
    check_floating(arr, name)
    return arr


def to_rows(x: np.ndarray, axis: int, dtype: np.dtype | None = None) -> np.ndarray:
    """View or copy ``x`` as a C-contiguous ``(N, C)`` array with the class axis last.

    No copy is made when ``axis`` is already last, ``x`` is C-contiguous and
    already in ``dtype``.
    """
    # moveaxis costs microseconds of Python even when it has nothing to move,
    # as much as a small op's whole kernel.
    moved = x if axis == x.ndim - 1 else np.moveaxis(x, axis, -1)
    n_classes = moved.shape[-1]
    # an explicit row count: reshape(-1, 0) is ambiguous when there are no classes
    n_rows = math.prod(moved.shape[:-1])
    return np.ascontiguousarray(moved.reshape(n_rows, n_classes), dtype=dtype or x.dtype)


def from_rows(rows: np.ndarray, shape: tuple[int, ...], axis: int, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`to_rows`: back to ``shape`` (the original layout) and ``dtype``."""
    if axis == len(shape) - 1:
        return rows.reshape(shape).astype(dtype, copy=False)
    moved_shape = tuple(s for i, s in enumerate(shape) if i != axis) + (shape[axis],)
    return np.moveaxis(rows.reshape(moved_shape), -1, axis).astype(dtype, copy=False)
