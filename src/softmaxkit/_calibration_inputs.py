"""Input checks shared by :mod:`softmaxkit.metrics`, :mod:`softmaxkit.calibration`
and :mod:`softmaxkit.plot`: labels, probabilities, logits (sample weights:
:func:`softmaxkit._validation.check_sample_weight`).

Messages follow the project rule: name the argument, what was expected and
what arrived, and for labels the first offending value and its position.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from softmaxkit._arrays import compute_dtype, past_float64, to_compute_dtype
from softmaxkit._validation import as_numpy, check_floating, dtype_name, label_range_hint, to_numpy

#: How far a row of ``probs`` may sum from 1 at float32 and float64 (float32 rows at
#: 1000 classes drift ~1e-5). Narrower dtypes get :func:`row_sum_tolerance`.
ROW_SUM_ATOL = 1e-3

#: Machine epsilon of each probability dtype, by name (NumPy has no bfloat16, and a
#: bfloat16 torch tensor reaches NumPy as float32, so the name is read first).
_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10, "half": 2.0**-10, "float32": 2.0**-23, "float64": 2.0**-52}


#: Values per row block of :func:`compute_blocks` (32 MB in float64, 16 MB in float32): a pass over
#: 16-bit logits widens one block at a time, never the whole matrix (a 2048 x 32,000 float16 file,
#: 125 MB, was widened whole to float32 by each of calibrate --conformal's temperature fit, conformal
#: fit and set counts: 688 MB peak RSS against 347 MB for a NumPy script).
BLOCK_ELEMENTS = 1 << 22


def compute_blocks(x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` over the rows of a 2-D ``x`` in blocks of about :data:`BLOCK_ELEMENTS` values
    (at least one row each), each block in ``compute_dtype(x.dtype)``: a view when ``x`` has it
    already, else a widened (float16) or rounded (longdouble) copy of that block alone.

    Rows are independent in every per-row computation, so a block's rows get the values the whole
    widened array would; only sums over rows add in another order (rounding only).
    """
    dtype = compute_dtype(x.dtype)
    for start, block in _row_blocks(x):
        yield start, block.astype(dtype, copy=False)


def _row_blocks(x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` over the rows of ``x`` in blocks of about :data:`BLOCK_ELEMENTS` values, as they are."""
    rows = max(1, BLOCK_ELEMENTS // max(x.shape[1] if x.ndim == 2 else 1, 1))
    for start in range(0, len(x), rows):
        yield start, x[start:start + rows]


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


#: The most decimals :func:`printed_decimals` looks for (beyond, rounding explains less than
#: :data:`ROW_SUM_ATOL` below 2000 classes).
MAX_DECIMALS = 8


def printed_decimals(values: Any, *, scale: float = 1.0,
                     row_blocks: Callable[[Any], Iterable[tuple[int, np.ndarray]]] | None = None) -> int | None:
    """The fewest decimals ``d`` (1 to :data:`MAX_DECIMALS`) such that every value of ``values * scale``
    is a multiple of ``10**-d`` up to the rounding of its dtype, else None; read in row blocks
    (``row_blocks``: a function giving ``(start, block)`` pairs, the command line's releases the pages
    of a memory map; default: blocks of :data:`BLOCK_ELEMENTS` values). ``scale=0.01`` reads
    percentages (63.33 is 0.6333: 4 decimals).

    Only a ``d`` at which that rounding is under 1% of ``10**-d`` counts (float32: 4 decimals at
    most), so that values which merely carry no more digits than their dtype do not pass.
    """
    if values.dtype.kind != "f" or not values.size:
        return None
    eps = float(np.finfo(values.dtype).eps)
    usable = [d for d in range(1, MAX_DECIMALS + 1) if eps * 10.0**d < 0.01]
    need = 0  # index into usable
    for _, block in (row_blocks or _row_blocks)(values):
        block = np.asarray(block, dtype=np.float64) * scale
        while need < len(usable):
            scaled = block * 10.0 ** usable[need]
            with np.errstate(invalid="ignore"):  # -inf (a logit): no multiple of anything
                close = np.all(np.abs(scaled - np.rint(scaled)) <= eps * 10.0 ** usable[need])
            if close:
                break
            need += 1
        else:
            return None
    return usable[need] if need < len(usable) else None


def rounding_slack(n_columns: int, decimals: int) -> float:
    """How far a row of ``n_columns`` probabilities written with ``decimals`` decimals may sum from 1:
    each value is within ``0.5 * 10**-decimals`` of the one computed (3 classes at 3 decimals: 0.0015)."""
    return n_columns * 0.5 * 10.0**-decimals


class InputKindWarning(UserWarning):
    """Scores given as logits that look like probabilities or percentages (:func:`score_kind`)."""


#: Rows of logits that :func:`warn_if_not_logits` reads (evenly spaced): enough for the evidence,
#: cheap beside any fit or metric of a large array.
KIND_SAMPLE_ROWS = 4096

#: How unlikely rows of genuine logits must make "every row sums to 1 (or 100) this closely" before
#: :func:`score_kind` calls them probabilities (percentages).
_KIND_CHANCE = 0.01


@dataclass(frozen=True)
class _Sums:
    """One pass of :func:`score_kind`: the range of the values, and the largest distance of a row's sum
    from 1 and from 100."""

    low: float
    high: float
    off_1: float
    off_100: float


def _sums(values: Any, row_blocks: Callable[[Any], Iterable[tuple[int, np.ndarray]]]) -> _Sums | None:
    """:class:`_Sums` of ``values``, or None as soon as a value lies outside [0, 100] (logits)."""
    low, high, off_1, off_100 = np.inf, -np.inf, 0.0, 0.0
    for _, block in row_blocks(values):
        low, high = min(low, float(np.min(block))), max(high, float(np.max(block)))
        if not (low >= 0 and high <= 100):  # NaN too
            return None
        sums = np.sum(block, axis=1, dtype=np.float64)
        off_1 = max(off_1, float(np.max(np.abs(sums - 1.0))))
        off_100 = max(off_100, float(np.max(np.abs(sums - 100.0))))
    return _Sums(low, high, off_1, off_100)


def _sum_to_one(values: Any, off: float, *, scale: float, tolerance: float,
                row_blocks: Callable[[Any], Iterable[tuple[int, np.ndarray]]]) -> tuple[bool, bool]:
    """Whether the rows of ``values * scale``, the farthest ``off`` (in those units) from 1, sum to 1
    within ``tolerance`` or the rounding of their printed decimals (:func:`rounding_slack`); and whether
    that is evidence: the chance that every row of genuine logits spread over [0, 1] sums so close to 1
    is under :data:`_KIND_CHANCE` (a sum of two or more such values has a density of at most 1, so a row
    falls within ``t`` of 1 with a chance of at most ``2 t``, plus one step of ``d`` decimals). One row
    of logits ``[0.3, 0.7]`` sums to 1 by chance; twenty rows of them all doing so do not."""
    k = values.shape[1]
    # Read even when the rows sum to 1 as they are: one-decimal rows sum to exactly 1 by chance often.
    decimals = printed_decimals(values, scale=scale, row_blocks=row_blocks)
    step = 0.0 if decimals is None else 10.0**-decimals
    if off > tolerance:
        if decimals is None:
            return False, False
        # a little over the bound: the sum of K decimals computed in binary floating point
        slack = rounding_slack(k, decimals) * (1 + 1e-9) + k * float(np.finfo(values.dtype).eps)
        if off > slack:
            return False, False
        tolerance = max(tolerance, slack)
    chance = min(1.0, 2 * tolerance + step)
    return True, chance**len(values) <= _KIND_CHANCE


def score_kind(values: Any, *, tolerance: float | None = None,
               row_blocks: Callable[[Any], Iterable[tuple[int, np.ndarray]]] | None = None) -> str | None:
    """What a 2-D array of scores (two or more columns) looks like: ``"probabilities"`` (every value in
    [0, 1], every row summing to 1), ``"percentages"`` (every value in [0, 100], every row summing to
    100), ``"sigmoid"`` (every value in [0, 1], rows that do not sum to 1: per-class sigmoid outputs of a
    multi-label model), else None.

    A row sums to 1 within ``tolerance`` (default :func:`row_sum_tolerance` of the dtype) or the rounding
    of the values' printed decimals (:func:`printed_decimals`, :func:`rounding_slack`: probabilities
    written with 3 decimals sum to 1.001); percentages alike, divided by 100. Probabilities and
    percentages are said only when the rows are evidence of it (:func:`_sum_to_one`): the range alone is
    not, logits ``[0.3, 0.7]`` are logits. One pass over the values (``row_blocks``, as for
    :func:`printed_decimals`); a second, for the decimals, only when every value is in [0, 100].
    """
    row_blocks = row_blocks or _row_blocks
    if values.ndim != 2 or values.shape[1] < 2 or not len(values) or values.dtype.kind != "f":
        return None
    found = _sums(values, row_blocks)
    if found is None:
        return None
    tolerance = row_sum_tolerance(values.dtype) if tolerance is None else tolerance
    if found.high <= 1:
        sums, evidence = _sum_to_one(values, found.off_1, scale=1.0, tolerance=tolerance, row_blocks=row_blocks)
        if not sums:
            return "sigmoid"
        return "probabilities" if evidence else None
    sums, evidence = _sum_to_one(values, found.off_100 / 100, scale=0.01, tolerance=tolerance,
                                 row_blocks=row_blocks)
    return "percentages" if sums and evidence else None


def _sampled_rows(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` itself when it has at most ``n`` rows, else ``n`` of its rows evenly spaced (a copy of those)."""
    if len(x) <= n:
        return x
    return x[np.linspace(0, len(x) - 1, n).astype(np.intp)]


def warn_if_not_logits(x: np.ndarray, name: str = "logits") -> None:
    """Warn (:class:`InputKindWarning`) when the logits ``x`` (checked, 2-D) look like probabilities or
    percentages (:func:`score_kind`), judged on at most :data:`KIND_SAMPLE_ROWS` of their rows, evenly
    spaced.

    Softmax outputs given as logits are put through softmax again, flattened towards uniform:
    ``TemperatureScaling().fit(probs, y)`` fitted T = 0.41 and a worse log-loss, and ``log_loss(y,
    logits=100 * probs)`` was 20.7, without a word (audit CO), while the reverse mistake is refused.
    Logits may look so by chance, so this warns. Values in [0, 1] whose rows do not sum to 1 are not
    warned of here: logits may lie there (the command line warns of them on a file, where a model's
    sigmoid outputs are the likelier reading).
    """
    head = x[:64]
    if head.size and not (np.min(head) >= 0 and np.max(head) <= 100):
        return  # logits, almost always decided here without copying a sample (NaN is refused before)
    sample = _sampled_rows(x, KIND_SAMPLE_ROWS)
    kind = score_kind(sample)
    if kind not in ("probabilities", "percentages"):
        return
    rows = f" (of {len(sample)} rows read, evenly spaced)" if len(sample) < len(x) else ""
    if kind == "probabilities":
        what, advice = ("every value lies in [0, 1] and every row sums to 1", "pass them as probabilities")
    else:
        what, advice = ("every value lies in [0, 100] and every row sums to 100",
                        "divide them by 100 and pass them as probabilities")
    warnings.warn(
        f"{name} look like {kind}, not logits: {what}{rows}; read as logits they are put through softmax "
        f"(other probabilities than theirs, flattened towards uniform). If they are {kind}, {advice} (probs= "
        "for the metrics, input='probs' for a calibrator or conformal predictor); if they are logits, ignore "
        "this warning",
        InputKindWarning, stacklevel=_caller_stacklevel(),
    )


def check_n_rows(n: int, other: int, name: str, other_name: str) -> None:
    if n != other:
        raise ValueError(f"{name} has {n} rows and {other_name} {other}; they must match")


def absent_classes(labels: np.ndarray, weights: np.ndarray, n_classes: int) -> list[int]:
    """The classes in ``0..n_classes-1`` that no row of positive weight holds (sorted)."""
    present = np.zeros(n_classes, dtype=bool)
    present[labels[weights > 0]] = True
    return np.flatnonzero(~present).tolist()


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside softmaxkit, for a ``warnings.warn`` in the
    function that calls this: a check is reached through one to three of the package's frames
    (``log_loss``, ``_binned``, a calibrator's ``fit``), and the warning should name the user's line."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "softmaxkit":
        frame, level = frame.f_back, level + 1
    return level


#: How unlikely (one-sided exact sign test) the scores' top column must make "labels read as they
#: are" against "labels read as label - 1" before labels are said to be 1-based (:func:`one_based_evidence`).
ONE_BASED_P = 1e-4


class OneBasedLabelsWarning(UserWarning):
    """Labels that look like class values 1..K where column indices 0..C-1 are expected."""


@dataclass(frozen=True)
class OneBasedEvidence:
    """What :func:`one_based_evidence` found: of ``n`` rows, the scores' top column is the label's on
    ``as_is`` and the column of ``label - 1`` on ``shifted``; ``p_value`` of the one-sided sign test."""

    as_is: int
    shifted: int
    n: int
    p_value: float


def one_based_evidence(labels: Any, scores: Any, *,
                       row_blocks: Iterable[tuple[int, np.ndarray]] | None = None) -> OneBasedEvidence | None:
    """The evidence that integer ``labels`` are 1-based class values (1..K) and not column indices of
    ``scores`` (probabilities or logits, ``(N, C)``), or None when there is not enough of it.

    UCI-style labels 1..K in a subset without label K (or with a model whose ``classes_`` are 1..K)
    pass as indices and shift every class by one (audit: CLI accuracy 0.031 and log-loss 8.14 for
    scikit-learn's 0.9385 / 0.2382; ``log_loss`` 1.61 for scikit-learn's ``labels=`` 0.59). The
    evidence: no label is 0, and the scores' top column agrees with ``label - 1`` on more rows than
    with ``label``. No row can agree with both, so under "either reading is as good" the rows
    agreeing with one of them split like fair coin flips (McNemar's test on the discordant rows):
    evidence when the one-sided exact binomial p-value is below :data:`ONE_BASED_P`, which a real
    model's 0-based labels reach only if it is systematically one class off. At least two distinct
    labels must be present: with one (positives only, every label 1) a model biased against that
    class puts the top score on label - 1 just as 1-based labels would (audit: 0-based labels of a
    binary model with recall 0.24 refused at p = 3e-15). Small samples cannot reach the threshold.

    One pass of ``argmax`` over the rows, and only when no label is 0; scipy is imported only when
    the shifted reading wins. ``row_blocks``: ``(start, block)`` pairs covering ``scores`` (the CLI
    streams a memory map in blocks), else the whole array. Each is read in :func:`compute_blocks`:
    NumPy's ``argmax`` copies a read-only array (a memory map) whole, 125 MB for a 2048 x 32,000
    float16 file that the CLI gave as one block; a block at a time it copies a block.
    """
    labels = as_numpy(labels, "labels")
    if not len(labels) or labels.min() < 1 or labels.max() == labels.min():
        return None
    as_is = shifted = 0
    for first, scores_block in row_blocks if row_blocks is not None else ((0, to_numpy(scores)),):
        for offset, block in compute_blocks(scores_block):
            start = first + offset
            top = np.argmax(block, axis=1)
            y = labels[start:start + len(block)]
            as_is += int(np.count_nonzero(top == y))
            shifted += int(np.count_nonzero(top == y - 1))
    if shifted <= as_is:
        return None
    from scipy.stats import binom

    p_value = float(binom.sf(shifted - 1, as_is + shifted, 0.5))
    return OneBasedEvidence(as_is, shifted, len(labels), p_value) if p_value < ONE_BASED_P else None


def _warn_if_one_based(labels: np.ndarray, scores: np.ndarray, name: str, scores_name: str) -> None:
    """An :class:`OneBasedLabelsWarning` when :func:`one_based_evidence` finds ``labels`` 1-based."""
    found = one_based_evidence(labels, scores)
    if found is None:
        return
    k, n = scores.shape[1], found.n
    warnings.warn(
        f"{name} looks 1-based (class values, not column indices 0..{k - 1}): no label is 0, and the top "
        f"column of {scores_name} is the column of label - 1 on {found.shifted} of {n} rows "
        f"({found.shifted / n:.1%}) but of the label itself on {found.as_is} ({found.as_is / n:.1%}; one-sided "
        f"sign test p = {found.p_value:.1g}); labels are read as column indices, so if they are class values "
        f"1..{k} every class is one off: subtract 1, or map them with np.searchsorted(classes_, {name}). If they "
        "are column indices already, the model puts its top score one class below the label this often: it is "
        "one class off, not the labels",
        OneBasedLabelsWarning, stacklevel=_caller_stacklevel(),
    )


def check_labels(y: Any, n_classes: int, n_rows: int, name: str = "y", *, scores: np.ndarray | None = None,
                 scores_name: str = "the scores") -> np.ndarray:
    """Integer class indices of shape ``(n_rows,)`` in ``[0, n_classes)``, as int64.

    Integral floats and, for two classes, booleans (``False``/``True`` as 0/1) are taken; strings
    are refused with a pointer to ``LabelEncoder``, and a NaN or fractional value is named with its
    position. ``scores`` (the checked ``(N, C)`` probabilities or logits, called ``scores_name``):
    warn (:class:`OneBasedLabelsWarning`) when the labels look 1-based (:func:`one_based_evidence`).
    """
    arr = to_numpy(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices of shape ({n_rows},), got shape {arr.shape}")
    # integral floats, e.g. from a CSV reader; cast below, after the range check (1e20 overflowed int64)
    integral_floats = (
        arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    )
    big_ints = False
    if arr.dtype.kind == "O" and arr.size:
        arr, big_ints = _integer_objects(arr)
    if arr.dtype.kind == "b":
        if n_classes != 2:
            # y == k against C > 2 columns was read as classes 0/1 (log_loss 1.462; scikit-learn refuses)
            raise ValueError(
                f"{name} holds booleans, which are the classes False/True (0/1) of 2 classes, but the "
                f"predictions have {n_classes} classes; pass integer class indices 0..{n_classes - 1}"
            )
        arr = arr.astype(np.int64)  # False/True are classes 0/1, as scikit-learn reads them
    if arr.dtype.kind not in "iu" and not integral_floats and not big_ints:
        if arr.dtype.kind in "fO" and arr.size:
            _refuse_non_integral(arr, name)
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
        # labels 1..K reaching K, or -1/1 (the warning below covers 1-based labels not reaching K)
        raise ValueError(
            f"{name} contains class index {int(arr[i])} at position [{i}], but the predictions "
            f"have {n_classes} classes (valid: 0..{n_classes - 1}){label_range_hint(arr, n_classes, name)}"
        )  # int() of a NumPy float is exact, however large
    if scores is not None:
        _warn_if_one_based(arr, scores, name, scores_name)
    return arr.astype(np.int64, copy=False)


def _integer_objects(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """An object ``arr`` (1-D) whose every element is an integer (Python or NumPy; a pandas object
    Series of ints) as int64, or as bool when every element is a bool (the classes False/True);
    ``(arr, True)`` when they are integers past int64, which stay objects for the range check to name
    exactly; any other object array unchanged, ``(arr, False)``, for the checks that name it.

    Object arrays of ints raised a bare ``StopIteration`` (audit: log_loss, brier_score,
    TemperatureScaling.fit, conformity_scores)."""
    values = arr.tolist()
    if not all(isinstance(v, (numbers.Integral, np.bool_)) for v in values):
        return arr, False
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return arr.astype(bool), False
    try:
        return arr.astype(np.int64), False
    except OverflowError:
        return arr, True


def _refuse_non_integral(arr: np.ndarray, name: str) -> None:
    """TypeError naming the first NaN, missing or fractional label of a float or object ``arr`` (1-D);
    returns for an object array whose first non-integer is something else (a string: a category name)."""
    if arr.dtype.kind == "f":
        i = int(np.argmax(~np.isfinite(arr) | (arr != np.round(arr))))
    else:
        i = next((j for j, v in enumerate(arr.tolist()) if not isinstance(v, numbers.Integral)), None)
        if i is None:  # integers only: not this function's to refuse (check_labels reads them first)
            return
    value = float(arr[i]) if arr.dtype.kind == "f" else arr[i]
    # pandas' nullable Int64 <NA> reaches NumPy as NaN (float64) or pd.NA (object)
    missing = value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and value != value)
    if arr.dtype.kind == "O" and not missing and not isinstance(value, float):
        return
    hint = "; a missing label (NaN, None or pandas' <NA>)? drop or fill those rows first" if missing else ""
    raise TypeError(f"{name} must hold integer class indices 0..C-1; found {value!r} at position [{i}] "
                    f"(dtype {arr.dtype}){hint}")


#: What a calibrator or conformal predictor may be given: logits, or probabilities (chosen explicitly).
INPUTS = ("logits", "probs")


def input_name(input: str) -> str:
    """What a calibrator's ``input`` option calls its scores in messages (the argument is named
    ``logits`` either way): ``"probs"`` or ``"logits"``; ValueError for any other value."""
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
    return input


def _check_floating_input(given: Any, arr: np.ndarray, name: str) -> None:
    """:func:`~softmaxkit._validation.check_floating` of ``arr`` (``to_numpy(given)``), saying what to
    pass for a pandas object of nullable dtype (``Float64``), which NumPy reads as objects."""
    if arr.dtype.kind == "O" and type(given).__module__.partition(".")[0] == "pandas":
        dtypes = getattr(given, "dtypes", None)
        kinds = sorted({str(d) for d in dtypes}) if dtypes is not None and not isinstance(dtypes, np.dtype) else []
        got = ", ".join(kinds) if kinds else str(getattr(given, "dtype", "object"))
        raise TypeError(f"{name} is a pandas {type(given).__name__} of dtype {got}, which NumPy reads as objects; "
                        f"pass {name}.to_numpy(dtype=float) (a missing value <NA> becomes NaN, which is refused)")
    check_floating(arr, name)


def check_probs(probs: Any, name: str = "probs", *, wide: bool = False) -> np.ndarray:
    """Class probabilities as a float ``(N, C)`` array.

    A 1-D array is read as the positive-class probability of a binary problem
    and becomes ``[1 - p, p]``, in the input's dtype, or in float64 with
    ``wide`` (the losses: ``1 - p`` in float32 keeps none of a ``p`` below 6e-8,
    audit BU). Binning keeps the dtype: a float32 0.7 is 0.69999998 in float64,
    one bin lower (review R17: an ECE of 0.0305 for torchmetrics' 0.0085). Values must be finite and in [0, 1] and rows
    must sum to 1 within :func:`row_sum_tolerance` of the input's dtype, so
    bfloat16 and float16 probabilities (softmaxkit's own ``softmax`` of a
    bfloat16 tensor, say) are accepted, also once widened to float32 or
    float64: an array whose every value is a bfloat16 (float16) value gets that
    type's tolerance (:func:`narrow_values_dtype`; a row off by more than
    bfloat16's 0.0156 is refused whatever the dtype), with a warning when a row
    needs it: a float32/float64 row off by 0.0078 is as likely not probabilities
    (scikit-learn warns too), and a 16-bit array or tensor says it is 16-bit by
    its dtype. This is the one place that checks it.
    """
    given = getattr(probs, "dtype", None)  # read before a bfloat16 tensor becomes float32
    tolerance = row_sum_tolerance(given)
    p = to_numpy(probs, name)
    _check_floating_input(probs, p, name)
    if p.ndim == 1:
        # Checked before the [1 - p, p] expansion, so the message shows the value the caller gave.
        if p.size and not (np.min(p) >= 0 and np.max(p) <= 1):
            i = int(np.argmax(~((p >= 0) & (p <= 1))))
            raise ValueError(f"{name} must be finite probabilities in [0, 1]; found {float(p[i])!r} at {name}[{i}]")
        if wide:  # every float32 value is exact in float64
            p = p.astype(np.float64, copy=False)
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
            + _out_of_range_hint(p, float(p[i, j]))
        )
    dev = np.abs(np.sum(p, axis=1, dtype=np.float64) - 1.0)
    stored = dtype_name(given or p.dtype)
    if not (p.shape[0] and dev.max() > tolerance):
        return p
    i = int(np.argmax(dev))
    row_sum = float(np.sum(p[i], dtype=np.float64))
    # Only when the row check fails: widened 16-bit values may be off by their own rounding.
    narrow = narrow_values_dtype(p) if stored in ("float32", "float64") else None
    if narrow is not None and dev[i] <= row_sum_tolerance(narrow):
        warnings.warn(
            f"rows of {name} sum to 1 only within {narrow} rounding (row {i} sums to {row_sum:.5g}; {stored} rows "
            f"must be within {tolerance:g}); every value is a {narrow} value, so they are read as {narrow} "
            f"probabilities widened to {stored}: pass the {narrow} array or tensor itself, or renormalise the rows "
            f"({name} / {name}.sum(axis=1, keepdims=True)) if they are probabilities",
            UserWarning, stacklevel=_caller_stacklevel(),
        )
        return p
    if narrow is not None:
        tolerance, stored = row_sum_tolerance(narrow), f"{stored} holding {narrow} values"
    if p.shape[1] == 1:
        # An (N, 1) column of P(y = 1) is what scikit-learn takes; here one column is one class.
        hint = (f"{name} has one column: pass a 1-D vector of positive-class probabilities ({name}[:, 0]), "
                "which is read as [1 - p, p]")
    else:
        hint = _row_sum_hint(p, name, float(dev[i]))
    raise ValueError(
        f"rows of {name} must sum to 1 (within {tolerance:g} for {stored}); row {i} sums to {row_sum!r} ({hint})"
    )


def _out_of_range_hint(p: np.ndarray, value: float) -> str:
    """The end of :func:`check_probs`' message for ``value``, a value of ``p`` outside [0, 1]: percentages
    when every row is (:func:`score_kind`), logits for another finite value, nothing for NaN or inf."""
    if not np.isfinite(value):
        return ""
    if score_kind(p) == "percentages":
        return " (every value lies in [0, 100] and every row sums to 100: percentages? divide them by 100)"
    return " (logits? pass them as logits, or apply softmaxkit.softmax first)"


def _row_sum_hint(p: np.ndarray, name: str, off: float) -> str:
    """What :func:`check_probs` says of ``p`` (every value in [0, 1], two or more columns) whose farthest row
    is ``off`` from 1: rounded probabilities (within :func:`rounding_slack` of their printed decimals) to
    renormalise, else per-class sigmoid outputs. It said "logits? pass them as logits" of both, and
    following it scored 3-decimal probabilities as logits (audit CO: log-loss 1.1271 for 1.1195)."""
    decimals = printed_decimals(p)
    if decimals is not None and off <= rounding_slack(p.shape[1], decimals) * (1 + 1e-9) + p.shape[1] * float(
            np.finfo(p.dtype).eps):
        return (f"its values are written with {decimals} decimal{'s' if decimals > 1 else ''}, whose rounding moves "
                f"a row's sum by up to {rounding_slack(p.shape[1], decimals):.3g}: divide each row by its sum first, "
                f"{name} / {name}.sum(axis=1, keepdims=True)")
    return ("every value lies in [0, 1] but the rows do not sum to 1: per-class sigmoid outputs (multi-label)? "
            "they are no softmax distribution over exclusive classes, which this needs; pass softmax probabilities, "
            "or logits as logits")


def _to_compute_dtype_refusing_past_float64(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` in its compute dtype, refusing ``longdouble`` logits holding finite values past float64's
    range, the metrics' compute dtype: the cast made ``1e400`` inf, and the message said "found inf" of
    a finite value (audit)."""
    xc, wide = to_compute_dtype(x)
    if wide:
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(past_float64(x))), x.shape))
        raise ValueError(f"{name} holds {x[i, j]!s} at position ({i}, {j}), past float64's range (the compute "
                         "dtype of the metrics): subtract each row's max first (the probabilities do not change)")
    return xc


def check_logits(logits: Any, name: str = "logits", *, min_classes: int = 2, return_row_max: bool = False,
                 widen: bool = True, warn_kind: bool = True):
    """Floating logits of shape ``(N, C)`` with no NaN and no ``+inf``.

    ``-inf`` is allowed (a class with probability 0, e.g. from ``log(0)``), but
    not a whole row of it. With ``return_row_max`` also returns the row maxima
    (float64, finite), which the check computes anyway: NaN and ``+inf``
    propagate into the max and an all ``-inf`` row has max ``-inf``, so one pass
    over the logits finds every bad row.

    The logits come back in ``compute_dtype`` (float16 widened to float32,
    longdouble rounded to float64); with ``widen=False`` in their own dtype,
    for callers that convert them a row block at a time (:func:`compute_blocks`),
    so that a memory-mapped float16 file is not copied whole. The row maxima
    are the same either way (max commutes with the monotone conversion).

    With ``warn_kind`` (the default), logits that look like probabilities or percentages are warned of
    (:func:`warn_if_not_logits`, on a sample of rows): the one check of every path that takes logits
    (metrics, calibrators' fit and predict, conformal predictors).
    """
    x = to_numpy(logits, name)
    _check_floating_input(logits, x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes), got {x.shape}")
    if x.shape[1] < min_classes:
        raise ValueError(f"{name} must have at least {min_classes} classes (columns), got shape {x.shape}")
    # float16 computes in float32, longdouble in float64 (it was cut to float32: log-loss 0.6931 for 0.5032)
    if widen:
        x = _to_compute_dtype_refusing_past_float64(x, name)
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
    if warn_kind:
        warn_if_not_logits(x, name)
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
