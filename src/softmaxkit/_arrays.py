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


#: float64's largest finite value: a wider ``longdouble`` holds finite values past it (to ~1.2e4932).
_FLOAT64_MAX = float(np.finfo(np.float64).max)


def beyond_float64(x: np.ndarray, cast: np.ndarray) -> bool:
    """Whether ``x`` holds finite values that float64, the widest compute dtype, cannot represent.

    Only a ``longdouble`` wider than float64 can (float96/float128 on x86); every other dtype answers
    without looking at the values, so the common paths pay one comparison. Such values became inf in
    the cast to float64 and NaN after the max shift: softmax of ``[1e400, 1e400, 0]`` gave NaN where
    scipy gives ``[0.5, 0.5, 0]`` (audit).

    ``cast`` is ``x`` already cast to float64 (any layout; :func:`to_compute_dtype`): only an inf there
    makes the ``longdouble`` values be scanned. Scanning them for every ``longdouble`` input made
    ordinary ones 2 to 8 times slower (softmax of 1000 x 1000: 8.7 to 25 ms; audit).
    """
    if x.dtype.itemsize <= _FLOAT64.itemsize or x.dtype.kind != "f" or x.size == 0:
        return False
    return bool(np.isinf(cast).any()) and bool(np.any(past_float64(x)))


def to_compute_dtype(x: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, bool]:
    """``(xc, wide)``: ``x`` in :func:`compute_dtype` (no copy if it is already), as ``(N, C)`` rows
    (:func:`to_rows`) when the class ``axis`` is given, and :func:`beyond_float64` of ``x``.

    Where ``wide`` is True, ``xc`` holds inf for those finite values; the caller takes its
    ``longdouble`` path instead.
    """
    dtype = compute_dtype(x.dtype)
    with np.errstate(over="ignore"):  # only a longdouble past float64's range overflows: told apart below
        xc = x.astype(dtype, copy=False) if axis is None else to_rows(x, axis, dtype)
    return xc, beyond_float64(x, xc)


def past_float64(x: np.ndarray) -> np.ndarray:
    """Elementwise: finite and past float64's range (see :func:`beyond_float64`)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & (np.abs(x) > _FLOAT64_MAX)


def shifted_wide_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z64, z, shift)`` of ``(N, C)`` rows in a dtype wider than float64 (see :func:`beyond_float64`).

    ``z = rows - shift`` in the wide dtype, with ``shift`` each row's max (0 for a row whose max is
    ``-inf``, as the kernels do; ``(N,)``), and ``z64`` its float64 cast. softmax and log-softmax do
    not change under the shift, so the float64 kernels see values in range: every ``z <= 0``, and one
    below float64's range becomes ``-inf``, whose ``exp`` is 0 as the true one is in any float format.
    NaN and ``+inf`` still make the row NaN.
    """
    shift = np.max(rows, axis=1)
    shift = np.where(shift == -np.inf, np.zeros((), rows.dtype), shift)
    with np.errstate(invalid="ignore"):
        z = rows - shift[:, None]
    with np.errstate(over="ignore"):  # a gap past float64's range is -inf there, on purpose
        z64 = z.astype(np.float64)
    return z64, z, shift


def clipped_to_float64(rows: np.ndarray) -> np.ndarray:
    """``rows`` (wide dtype) in float64 with finite values past float64's range clipped to its
    largest: for the softcap, where ``tanh(x / cap)`` is 1 or -1 for both (and ``sech**2`` 0), but
    the cast's ``inf`` would read as a ``+inf`` logit (a NaN row)."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(rows)  # inf stays inf, NaN stays NaN
    return np.where(finite, np.clip(rows, -_FLOAT64_MAX, _FLOAT64_MAX), rows).astype(np.float64)


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
