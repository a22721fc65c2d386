"""Turn a classifier's ``y`` (labels, probabilities or counts) and
``sample_weight`` into what the loss needs: targets and row weights.

The three accepted forms of ``y`` and what they become:

=====================  =============================  ==========================
``y``                  target row                     row weight
=====================  =============================  ==========================
labels, shape (n,)     class index                    ``sample_weight``
probabilities (n, K)   the row (rows sum to 1)        ``sample_weight``
counts (n, K), opt-in  ``row / row.sum()``            ``sample_weight * row.sum()``
=====================  =============================  ==========================

The rule that tells probabilities from counts: a non-negative (n, K) matrix
whose every row sums to 1 (within ``sqrt(eps)`` of its dtype) holds
probabilities; otherwise every entry must be a whole number and the rows are
counts (a row of zeros is an input never observed: weight 0). Anything else,
a fractional row that does not sum to 1, is refused: it is neither a
distribution nor a count, and guessing would silently reweight the data. For
weighted probabilities pass the probabilities and ``sample_weight``.

Counts are read only on request (``counts=True``, the classifier's
``count_targets=True``). A whole-number matrix is also what scikit-learn
calls a multi-output or multilabel ``y`` (``np.c_[y1, y2]``, an indicator
matrix): K separate targets, which ``LogisticRegression`` refuses. Read as
counts it was fitted without a word, as a different model (audit: iris
``np.c_[y, (y + 1) % 3]`` gave classes ``[0, 1]`` and a score of 0.797).
Probabilities need no opt-in: rows summing to 1 (one-hot rows too) are one
target either way.

An (n, K) DataFrame's column names are its classes (DESIGN: columns are
matched by name wherever names exist): ``pd.get_dummies(y)`` fits as ``y``,
with ``classes_`` its labels. Before, the names were dropped (``classes_ =
[0, 1, 2]``) and the same one-hot in another column order gave a permuted
model whose predictions, read against the names, were wrong (audit CH). The
names must be in sorted order, the order of ``classes_`` and of
``predict_proba``'s columns, which scikit-learn's scorers read a 2-D ``y``
against by position (review R21); an unsorted frame is refused with the
remedy. Columns named ``0..K-1`` in order (pandas' default for a frame made
from an array) keep labelling by position, as an array's.

Why counts are weights: ``m`` observations of one input with class counts
``c`` contribute ``-sum_c c_c log p_c = m * CE(c / m, p)`` to the
log-likelihood, which is exactly ``m`` repeated rows or one row of
``sample_weight=m``. The objective divides by the total weight, so all three
forms give the same objective, not just proportional ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from softmaxkit._validation import as_numpy, check_sample_weight


@dataclass(frozen=True)
class Targets:
    """Encoded targets.

    Attributes
    ----------
    classes : ndarray of shape (K,)
        Sorted class labels; column ``k`` of the model is ``classes[k]``.
    target : ndarray of shape (n,) int64 or (n, K) float64
        Class indices, or probabilities whose rows sum to 1.
    weight : ndarray of shape (n,) float64
        Non-negative row weights (sample weight times count total).
    labels : ndarray of shape (n,) or None
        Class indices for stratified splitting; None for soft targets.
    totals : ndarray of shape (n,) or None
        With ``counts`` (the classifier's ``count_targets``): each row's count
        total, the observations it holds (1 for a ``y`` of probabilities), so
        that ``target * totals`` are ``y``'s counts and ``weight / totals`` the
        ``sample_weight``; None for labels and for probabilities read without
        ``counts``. Early stopping splits the counts apart from the weight
        (``softmaxkit._alpha_search.count_cells``).
    """

    classes: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    labels: np.ndarray | None
    totals: np.ndarray | None = None

    def subset(self, rows: np.ndarray) -> "Targets":
        labels = None if self.labels is None else self.labels[rows]
        totals = None if self.totals is None else self.totals[rows]
        return Targets(self.classes, self.target[rows], self.weight[rows], labels, totals)


def _show(value: Any) -> str:
    """``repr`` of a value, without NumPy's scalar wrapper (``2``, not ``np.int64(2)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def label_indices(y: np.ndarray, classes: np.ndarray, *, name: str = "y") -> np.ndarray:
    """Index of each label of ``y`` in the sorted ``classes``.

    Raises
    ------
    ValueError
        A label not in ``classes``; the message gives the first one and its position.
    """
    idx = np.searchsorted(classes, y)
    idx_clipped = np.minimum(idx, len(classes) - 1)
    unseen = classes[idx_clipped] != y
    if np.any(unseen):
        pos = int(np.argmax(unseen))
        raise ValueError(
            f"{name} contains a label not among the classes {classes.tolist()}: "
            f"{_show(y[pos])} at position {pos}"
        )
    return idx_clipped.astype(np.int64)


#: How to opt in to counts, for :func:`soft_targets`' refusal: ``fit``'s wording by default.
FIT_OPT_IN = "pass SoftmaxClassifier(count_targets=True)"


def soft_targets(
    y: np.ndarray, classes: Any, *, counts: bool = False, opt_in: str = FIT_OPT_IN
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classes, probabilities and count totals of an (n, K) soft or count ``y``.

    Parameters
    ----------
    y : ndarray of shape (n, K)
    classes : array_like of shape (K,) or None
        The labels of the columns (default ``0..K-1``).
    counts : bool, default=False
        Read a whole-number ``y`` whose rows do not all sum to 1 as counts;
        False refuses it (see the module docstring).
    opt_in : str
        What the refusal tells the user to do to have counts read.

    Raises
    ------
    ValueError
        Negative or non-finite entries, a fractional row not summing to 1,
        probability rows mixed with count rows, or counts when ``counts`` is False.
    TypeError
        ``y`` does not hold numbers.
    """
    n_classes = y.shape[1]
    if classes is None:
        classes = np.arange(n_classes)
    else:
        classes = as_numpy(classes, "classes")
        if classes.shape != (n_classes,) or len(np.unique(classes)) != n_classes:
            raise _not_distinct(classes, n_classes)
        if np.any(classes[:-1] > classes[1:]):
            raise ValueError(f"classes must be sorted to label the columns of y, got {classes.tolist()}")
    if y.dtype.kind not in "fiub":
        raise TypeError(
            f"a 2-D y must hold probabilities or counts, got dtype {y.dtype}; SoftmaxClassifier fits one "
            "target, so labels go in a y of shape (n,), not one column per target"
        )
    t = y.astype(np.float64)
    bad = ~np.isfinite(t) | (t < 0)
    if np.any(bad):
        row, col = np.unravel_index(int(np.argmax(bad)), t.shape)
        raise ValueError(
            "y probabilities/counts must be finite and non-negative; "
            f"found {_show(t[row, col])} at ({row}, {col})"
        )
    totals = t.sum(axis=1)
    eps = np.finfo(y.dtype).eps if y.dtype.kind == "f" else np.finfo(np.float64).eps
    probability_row = np.abs(totals - 1.0) <= np.sqrt(eps)
    if np.all(probability_row):
        return classes, t / totals[:, None], np.ones(len(t))
    count_row = np.all(t == np.round(t), axis=1)
    if not np.all(count_row):
        _refuse_mixed_targets(totals, probability_row, count_row, np.sqrt(eps), y.dtype)
    if not counts:
        _refuse_counts(y.shape, totals, probability_row, opt_in)
    # Counts: a row of zeros (never observed) gets weight 0; give it a valid
    # distribution so that nothing divides by zero.
    safe = np.where(totals > 0, totals, 1.0)
    probs = np.where(totals[:, None] > 0, t / safe[:, None], 1.0 / n_classes)
    return classes, probs, totals


def _not_distinct(classes: np.ndarray, n_classes: int) -> ValueError:
    """The error for ``classes`` that do not list ``n_classes`` distinct labels (one per column of y)."""
    return ValueError(f"classes must list {n_classes} distinct labels, one per column of y; got {classes.tolist()}")


def _refuse_mixed_targets(totals, probability_row, count_row, tol, dtype) -> None:
    """Say which row makes an (n, K) ``y`` neither all probabilities nor all counts.

    The first row that is neither (fractions, not summing to 1), else the
    first of each kind: the message used to name the first row not summing
    to 1, often a valid count or a row of zeros, with its sum rounded to 1.
    """
    neither = np.flatnonzero(~probability_row & ~count_row)
    hint = "For weighted probabilities pass the probabilities and sample_weight."
    if neither.size:
        row = int(neither[0])
        raise ValueError(
            "y given as an (n, K) matrix must hold probabilities (every row sums to 1 within "
            f"{tol:.2g}, the {np.dtype(dtype).name} tolerance) or whole-number counts (count_targets=True); "
            f"row {row} holds "
            f"fractions summing to {totals[row]:.10g}. {hint}"
        )
    p_row, c_row = int(np.flatnonzero(~count_row)[0]), int(np.flatnonzero(~probability_row)[0])
    zeros = "; a row of zeros counts nothing" if totals[c_row] == 0 else ""
    raise ValueError(
        f"y given as an (n, K) matrix mixes probability rows (row {p_row}) and count rows (row {c_row}, "
        f"summing to {totals[c_row]:.10g}{zeros}): give one kind. {hint}"
    )


def _refuse_counts(shape: tuple[int, int], totals: np.ndarray, probability_row: np.ndarray, opt_in: str) -> None:
    """Refuse a whole-number (n, K) ``y`` that is not all probabilities, when counts were not asked for.

    It may be counts or K separate targets (scikit-learn's reading of a
    2-D ``y``); only the caller knows, so the message names both.
    """
    row = int(np.flatnonzero(~probability_row)[0])
    raise ValueError(
        f"y of shape {shape} holds whole numbers and its rows do not all sum to 1 (row {row} sums to "
        f"{totals[row]:.10g}), so it is not a matrix of class probabilities. scikit-learn reads such a y as "
        f"{shape[1]} separate targets (multi-output labels, or a multilabel indicator), which SoftmaxClassifier "
        "does not fit: it fits one target, so pass its labels as a y of shape (n,) (one model per target for "
        f"several). If the rows are class counts (row i: how often input i was seen with each class), {opt_in}."
    )


def _is_missing(value: Any) -> bool:
    """None, pandas' ``NA``/``NaT`` (checked by type name: pandas is not imported here), or a value
    unequal to itself (NaN of any float type, NumPy's NaT)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # an object whose comparison is not a plain bool
        return False


def _refuse_missing_labels(y: np.ndarray) -> None:
    """Refuse missing labels in an object ``y`` (pandas' nullable ``boolean``/``string`` with NA,
    None, NaN), naming the rows: scikit-learn's check said "Unknown label type: unknown ... a
    regression target", which points the wrong way (audit)."""
    if y.dtype.kind != "O":
        return
    missing = np.flatnonzero([_is_missing(v) for v in y])
    if missing.size:
        shown = ", ".join(str(int(i)) for i in missing[:5]) + (", ..." if missing.size > 5 else "")
        raise ValueError(f"y holds {missing.size} missing label{'s' if missing.size > 1 else ''} (NA/None/NaN) "
                         f"at row{'s' if missing.size > 1 else ''} {shown}; drop those rows or fill in their labels")


def _class_names(y: Any, n_columns: int) -> np.ndarray | None:
    """The names of a 2-D ``y``'s columns, which say the class each holds; None when it has none.

    A DataFrame's column labels (anything with a ``columns`` of one scalar per column) name classes,
    except ``0..K-1`` in order: a frame made from an array, whose names are its positions.
    """
    columns = getattr(y, "columns", None)
    if columns is None:
        return None
    names = np.asarray(columns)
    if names.shape != (n_columns,) or any(np.ndim(name) != 0 for name in names):
        return None  # not one label per column (a pyarrow Table's columns are its data)
    if names.dtype.kind in "iu" and np.array_equal(names, np.arange(n_columns)):
        return None
    return names


def _classes_from_names(names: np.ndarray, classes: Any) -> np.ndarray:
    """The classes a DataFrame ``y``'s column ``names`` give, checked.

    The names must be in sorted order: ``classes_`` and ``predict_proba``'s columns are sorted, and
    scikit-learn's scorers and metrics read a 2-D ``y`` by position against them. Columns put in
    sorted order here fitted the right model, but ``cross_val_score(..., scoring="neg_log_loss")``
    on the same frame then scored each column against another class's probability (review R21:
    iris, -4.8 for -0.16), so an unsorted frame is refused with the remedy instead. Given
    ``classes`` must be those names, in any order.

    Raises
    ------
    ValueError
        A missing or repeated column name, names of types that cannot be sorted together, names
        out of sorted order, a repeated label in ``classes``, or names that are not ``classes``.
    """
    listed = names.tolist()
    shown = f"y's columns are named {listed}"
    missing = [name for name in listed if _is_missing(name)]
    if missing or len(set(listed)) != len(listed):
        what = "a missing name (NA/None/NaN)" if missing else "a repeated name"
        raise ValueError(f"{shown}, with {what}: the column names of a DataFrame y are its classes, one per column")
    try:
        ordered = np.unique(names)  # sorted, as classes_ always are
    except TypeError as exc:  # names of several types: '<' not supported between 'int' and 'str'
        raise ValueError(f"{shown}, labels of several types that cannot be sorted into classes_ ({exc})") from None
    if ordered.tolist() != listed:
        raise ValueError(
            f"{shown}, not in sorted order: the column names of a DataFrame y are its classes, and classes_ and "
            "predict_proba's columns are sorted, which scikit-learn's scorers read a 2-D y against by position. "
            "Pass y[sorted(y.columns)]"
        )
    # classes given in any order, as for labels (classes_ is sorted either way)
    given = None if classes is None else _sorted_labels(classes)
    if given is not None and len(given) < np.size(classes):
        # a repeated class, which np.unique in _sorted_labels dropped: refused as for an ndarray y (review R24)
        raise _not_distinct(as_numpy(classes, "classes"), len(listed))
    if classes is not None and given != listed:
        raise ValueError(
            f"{shown}, which are not the classes {as_numpy(classes, 'classes').tolist()}: the column names of a "
            "DataFrame y are its classes. Rename the columns to the classes, leave classes=None, or pass "
            "y.to_numpy() for columns labelled by position by the sorted classes"
        )
    return ordered


def _sorted_labels(classes: Any) -> list | None:
    """``classes`` sorted, as a list; None when they cannot be sorted (labels of several types)."""
    try:
        return np.unique(as_numpy(classes, "classes")).tolist()
    except TypeError:
        return None


def columns_as_classes(y: Any, y_array: np.ndarray, classes: Any) -> tuple[np.ndarray, Any]:
    """An (n, K) ``y`` (``y_array``: its matrix) and the classes its column names give (checked: sorted,
    and ``classes`` if given); for a ``y`` without names, ``y_array`` and ``classes`` as they are.

    See the module docstring; :func:`_classes_from_names` for the ``classes`` given and the errors.
    """
    names = _class_names(y, y_array.shape[1])
    if names is None:
        return y_array, classes
    return y_array, _classes_from_names(names, classes)


def encode_targets(
    y: Any, *, classes: Any = None, sample_weight: Any = None, n_samples: int, counts: bool = False
) -> Targets:
    """Validate ``y`` and ``sample_weight`` and encode them (see the module docstring).

    Parameters
    ----------
    y : array_like of shape (n,), (n, 1) or (n, K)
    classes : array_like of shape (K,), optional
        The class labels. With label ``y`` they may include classes absent
        from ``y``; with an (n, K) ``y`` they name its columns (default 0..K-1),
        or for a DataFrame with column names, which must be in sorted order,
        those names in any order (the default: the names; :func:`columns_as_classes`).
    sample_weight : array_like of shape (n,), optional
    n_samples : int
        Rows of ``X``.
    counts : bool, default=False
        An (n, K) ``y`` may hold counts (:func:`soft_targets`); the classifier's ``count_targets``.

    Raises
    ------
    ValueError
        ``y`` is None, has the wrong length, holds continuous labels, labels
        outside ``classes``, a row that is neither probabilities nor counts,
        counts without ``counts=True``, column names of a DataFrame ``y`` that repeat, are
        out of sorted order or are not ``classes``, or fewer than two classes carry positive weight.
    """
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise ValueError("SoftmaxClassifier requires y to be passed, but the target y is None")
    given = y  # a DataFrame's column names, which as_numpy drops, name the classes
    y = as_numpy(y, "y")  # refuses a masked y: np.asarray read the labels under the mask
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be labels of shape (n,) or targets of shape (n, K), got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"X and y have different numbers of samples: {n_samples} and {y.shape[0]}")
    weight = check_sample_weight(sample_weight, n_samples, allow_scalar=True)

    if y.ndim == 1:
        _refuse_missing_labels(y)
        check_classification_targets(y)
        if classes is None:
            classes_ = np.unique(y)
        else:
            classes_ = np.unique(as_numpy(classes, "classes"))
        labels = label_indices(y, classes_)
        target, totals = labels, None
    else:
        y, classes = columns_as_classes(given, y, classes)
        classes_, target, totals = soft_targets(y, classes, counts=counts)
        labels = None
        weight = weight * totals
        if not counts:
            totals = None  # probabilities: no counts to keep

    mass = (
        np.bincount(labels, weights=weight, minlength=len(classes_))
        if labels is not None
        else weight @ target
    )
    present = classes_[mass > 0]
    if len(present) < 2:
        raise ValueError(
            "a classifier needs samples of at least 2 classes with positive weight; "
            f"got {len(present)} class{'es' if len(present) != 1 else ''}: {present.tolist()}"
        )
    return Targets(classes_, target, weight, labels, totals)
