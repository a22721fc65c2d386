"""Input checks shared by :mod:`softmaxkit.metrics`, :mod:`softmaxkit.calibration`
and :mod:`softmaxkit.plot`: labels, probabilities, logits (sample weights:
:func:`softmaxkit._validation.check_sample_weight`).

Messages follow the project rule: name the argument, what was expected and
what arrived, and for labels the first offending value and its position.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from softmaxkit._validation import check_floating, dtype_name, to_numpy

#: How far a row of ``probs`` may sum from 1 at float32 and float64 (float32 rows at
#: 1000 classes drift ~1e-5). Narrower dtypes get :func:`row_sum_tolerance`.
ROW_SUM_ATOL = 1e-3

#: Machine epsilon of each probability dtype, by name (NumPy has no bfloat16, and a
#: bfloat16 torch tensor reaches NumPy as float32, so the name is read first).
_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10, "half": 2.0**-10, "float32": 2.0**-23, "float64": 2.0**-52}


def row_sum_tolerance(dtype: Any) -> float:
    """How far a row of probabilities stored in ``dtype`` may sum from 1.

    Rounding each of a row's probabilities to ``dtype`` moves the sum by at
    most ``u * sum_k p_k = u`` (``u = eps / 2``, the unit roundoff), whatever
    the number of classes, so a correctly rounded row is within ``eps / 2``.
    The tolerance is ``max(ROW_SUM_ATOL, 2 * eps)``: four times that bound
    for the 16-bit types (bfloat16: 0.0156, float16: 0.00195), and 1e-3 for
    float32/float64. A row off by more (say 0.9 or 1.1) is not probabilities.
    """
    return max(ROW_SUM_ATOL, 2.0 * _EPS.get(dtype_name(dtype), 0.0))


#: Significand bits below those of bfloat16 (7) and float16 (10), per wide dtype's bit width.
_LOW_BITS = {
    np.dtype(np.float32): (np.uint32, (1 << 16) - 1, (1 << 13) - 1),
    np.dtype(np.float64): (np.uint64, (1 << 45) - 1, (1 << 42) - 1),
}


def narrow_values_dtype(p: np.ndarray) -> str | None:
    """``"bfloat16"`` or ``"float16"`` when every value of a float32/float64 array has no more
    significand bits than that type, else None.

    A bfloat16 tensor reaches NumPy only as float32 (``t.float().numpy()``), which hides its
    dtype but not its values: the low 16 bits of each float32 are zero. Such an array's rows
    are off by bfloat16 rounding, so :func:`check_probs` holds it to bfloat16's tolerance.
    bfloat16 is tried first: its values have 7 bits and so pass the float16 test as well.
    Reads the bit patterns in place (one integer and one boolean temporary).
    """
    if p.dtype not in _LOW_BITS or not p.size:
        return None
    uint, bf16_low, f16_low = _LOW_BITS[p.dtype]
    bits = np.ascontiguousarray(p).view(uint)
    if np.any(bits & uint(f16_low)):
        return None
    return "float16" if np.any(bits & uint(bf16_low)) else "bfloat16"


def check_n_rows(n: int, other: int, name: str, other_name: str) -> None:
    if n != other:
        raise ValueError(f"{name} has {n} rows and {other_name} {other}; they must match")


def absent_classes(labels: np.ndarray, weights: np.ndarray, n_classes: int) -> list[int]:
    """The classes in ``0..n_classes-1`` that no row of positive weight holds (sorted)."""
    present = np.zeros(n_classes, dtype=bool)
    present[labels[weights > 0]] = True
    return np.flatnonzero(~present).tolist()


def check_labels(y: Any, n_classes: int, n_rows: int, name: str = "y") -> np.ndarray:
    """Integer class indices of shape ``(n_rows,)`` in ``[0, n_classes)``, as int64.

    Integral floats and, for two classes, booleans (``False``/``True`` as 0/1) are taken; strings
    are refused with a pointer to ``LabelEncoder``.
    """
    arr = to_numpy(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices of shape ({n_rows},), got shape {arr.shape}")
    # integral floats, e.g. from a CSV reader; cast below, after the range check (1e20 overflowed int64)
    integral_floats = (
        arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    )
    if arr.dtype.kind == "b":
        if n_classes != 2:
            # y == k against C > 2 columns was read as classes 0/1 (log_loss 1.462; scikit-learn refuses)
            raise ValueError(
                f"{name} holds booleans, which are the classes False/True (0/1) of 2 classes, but the "
                f"predictions have {n_classes} classes; pass integer class indices 0..{n_classes - 1}"
            )
        arr = arr.astype(np.int64)  # False/True are classes 0/1, as scikit-learn reads them
    if arr.dtype.kind not in "iu" and not integral_floats:
        # Labels are not indices: say how to get indices (strings, objects: category names).
        hint = (
            "; map labels to indices first, e.g. sklearn.preprocessing.LabelEncoder().fit_transform(y) "
            "(softmaxkit.calibration.CalibratedClassifier takes the labels themselves)"
            if arr.dtype.kind in "USO" else ""
        )
        raise TypeError(f"{name} must hold integer class indices 0..C-1, got dtype {arr.dtype}{hint}")
    check_n_rows(arr.shape[0], n_rows, name, "the predictions")
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name} contains class index {int(arr[i])} at position [{i}], but the predictions "
            f"have {n_classes} classes (valid: 0..{n_classes - 1})"
        )  # int() of a NumPy float is exact, however large
    return arr.astype(np.int64, copy=False)


#: What a calibrator or conformal predictor may be given: logits, or probabilities (chosen explicitly).
INPUTS = ("logits", "probs")


def input_name(input: str) -> str:
    """What a calibrator's ``input`` option calls its scores in messages (the argument is named
    ``logits`` either way): ``"probs"`` or ``"logits"``; ValueError for any other value."""
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
    return input


def check_probs(probs: Any, name: str = "probs") -> np.ndarray:
    """Class probabilities as a float ``(N, C)`` array.

    A 1-D array is read as the positive-class probability of a binary problem
    and becomes ``[1 - p, p]``. Values must be finite and in [0, 1] and rows
    must sum to 1 within :func:`row_sum_tolerance` of the input's dtype, so
    bfloat16 and float16 probabilities (softmaxkit's own ``softmax`` of a
    bfloat16 tensor, say) are accepted, also once widened to float32 or
    float64: an array whose every value is a bfloat16 (float16) value gets that
    type's tolerance (:func:`narrow_values_dtype`; a row off by more than
    bfloat16's 0.0156 is refused whatever the dtype). This is the one place that checks it.
    """
    given = getattr(probs, "dtype", None)  # read before a bfloat16 tensor becomes float32
    tolerance = row_sum_tolerance(given)
    p = to_numpy(probs)
    check_floating(p, name)
    if p.ndim == 1:
        # Checked before the [1 - p, p] expansion, so the message shows the value the caller gave.
        if p.size and not (np.min(p) >= 0 and np.max(p) <= 1):
            i = int(np.argmax(~((p >= 0) & (p <= 1))))
            raise ValueError(f"{name} must be finite probabilities in [0, 1]; found {float(p[i])!r} at {name}[{i}]")
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes) or (n_samples,), got {p.shape}")
    if p.shape[1] == 0:
        raise ValueError(f"{name} must have at least 1 class, got shape {p.shape}")
    # Two reductions on the happy path (NaN propagates through min and max);
    # the elementwise search runs only to name the offending entry.
    if p.size and not (np.min(p) >= 0 and np.max(p) <= 1):
        bad = ~((p >= 0) & (p <= 1))
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(bad)), p.shape))
        raise ValueError(
            f"{name} must be finite probabilities in [0, 1]; found {float(p[i, j])!r} at position ({i}, {j})"
        )
    dev = np.abs(np.sum(p, axis=1, dtype=np.float64) - 1.0)
    stored = dtype_name(given or p.dtype)
    if p.shape[0] and dev.max() > tolerance:
        # Only when the row check fails: widened 16-bit values may be off by their own rounding.
        narrow = narrow_values_dtype(p) if stored in ("float32", "float64") else None
        if narrow is not None:
            tolerance, stored = row_sum_tolerance(narrow), f"{stored} holding {narrow} values"
    if p.shape[0] and dev.max() > tolerance:
        i = int(np.argmax(dev))
        raise ValueError(
            f"rows of {name} must sum to 1 (within {tolerance:g} for {stored}); row {i} sums to "
            f"{float(np.sum(p[i], dtype=np.float64))!r} (logits? pass them as logits, or apply softmaxkit.softmax "
            "first)"
        )
    return p


def check_logits(logits: Any, name: str = "logits", *, min_classes: int = 2, return_row_max: bool = False):
    """Floating logits of shape ``(N, C)`` with no NaN and no ``+inf``.

    ``-inf`` is allowed (a class with probability 0, e.g. from ``log(0)``), but
    not a whole row of it. With ``return_row_max`` also returns the row maxima
    (float64, finite), which the check computes anyway: NaN and ``+inf``
    propagate into the max and an all ``-inf`` row has max ``-inf``, so one pass
    over the logits finds every bad row.
    """
    x = to_numpy(logits)
    check_floating(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes), got {x.shape}")
    if x.shape[1] < min_classes:
        raise ValueError(f"{name} must have at least {min_classes} classes (columns), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    row_max = np.max(x, axis=1).astype(np.float64) if x.shape[0] else np.zeros(0)
    bad_rows = ~np.isfinite(row_max)
    if bad_rows.any():
        i = int(np.argmax(bad_rows))
        row = x[i]
        bad = np.isnan(row) | (row == np.inf)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"{name} must not contain NaN or +inf; found {float(row[j])!r} at position ({i}, {j})")
        raise ValueError(f"{name} row {i} is all -inf: it assigns no probability to any class")
    return (x, row_max) if return_row_max else x


def log_probs(probs: Any, *, eps: float | None, name: str = "probs") -> np.ndarray:
    """``log(p)`` for probability input (zeros give ``-inf`` unless ``eps`` is given).

    With ``eps``, probabilities are clipped to ``[eps, 1]`` first (not renormalised).
    """
    p = check_probs(probs, name)
    if eps is not None:
        eps = check_eps(eps)
        p = np.maximum(p, eps)
    with np.errstate(divide="ignore"):
        return np.log(p)


def check_eps(eps: Any) -> float:
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not 0.0 < float(eps) < 1.0:
        raise ValueError(f"eps must be a float in (0, 1) or None, got {eps!r}")
    return float(eps)


def check_n_bins(n_bins: Any) -> int:
    if not isinstance(n_bins, numbers.Integral) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")
    return int(n_bins)


def check_choice(value: Any, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
