"""Probabilistic metrics: log-loss, Brier score, the ECE family and reliability curves.

Every function takes integer class labels ``y`` of shape (N,) and predictions
of shape (N, C): ``probs`` (rows summing to 1; a 1-D array is read as the
positive-class probability of a binary problem) or, for :func:`log_loss`,
``logits``. ``sample_weight``: every point estimate and per-bin number is
what repeating each row ``w`` times gives, except the debiasing term of the
``l2`` calibration error; that term and the calibration error's interval,
noise floor and test treat each row as one draw and the weights as relative
weights, so for counts of repeated rows repeat the rows instead (see
:func:`expected_calibration_error`).

This module imports NumPy and the numba kernels only; it never imports
scikit-learn or matplotlib, and SciPy only inside :func:`loss_interval` (its
Student-t quantile), on the first call.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from softmaxkit import _ece
from softmaxkit._binning import BINNINGS, assign_bins, bin_edges, bin_sums
from softmaxkit._calibration_inputs import (
    InputKindWarning,
    OneBasedLabelsWarning,
    _caller_stacklevel,
    check_choice,
    check_eps,
    check_labels,
    check_logits,
    check_n_bins,
    check_probs,
)
from softmaxkit._loss_interval import (
    MIN_CLASS_ROWS,
    SCORES,
    LossInterval,
    RowMoments,
    check_class_names,
    check_level,
    check_min_class_rows,
    interval_from_moments,
)
from softmaxkit._validation import check_sample_weight

__all__ = [
    "InputKindWarning",
    "OneBasedLabelsWarning",
    "log_loss",
    "brier_score",
    "loss_interval",
    "LossInterval",
    "expected_calibration_error",
    "reliability_curve",
    "ECEResult",
    "ReliabilityCurve",
]

MODES = ("top_label", "classwise")


# --------------------------------------------------------------------------- result bundles


#: Rounding a weighted mean of values in [0, 1] may leave it this far outside (far more than it can).
_MEAN_SLACK = 1e-9


def _refuse_bins(problem: str, bad: np.ndarray, values: np.ndarray, *, counts: np.ndarray | None = None) -> None:
    """``ValueError`` naming the first bad bin of a :class:`ReliabilityCurve` field and its value."""
    if not np.any(bad):
        return
    b = int(np.flatnonzero(bad)[0])
    held = f" and {int(counts[b])} rows" if counts is not None else ""
    raise ValueError(f"ReliabilityCurve: {problem}: bin {b} has {values[b].item()!r}{held} "
                     f"({int(np.count_nonzero(bad))} such bins in all)")


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin calibration data for one view (top-label, or one class vs rest).

    Attributes
    ----------
    edges : ndarray of shape (B + 1,)
        Increasing bin edges, ``edges[0] == 0`` and ``edges[-1] == 1``. Uniform
        bins are ``[e_b, e_{b+1})`` with the last closed (1.0 is in the last
        bin); quantile bins are ``(e_b, e_{b+1}]`` with the first closed (see
        :mod:`softmaxkit._binning`).
    counts : ndarray of shape (B,), int64
        Number of rows (of positive weight) in each bin, whatever their
        weights: with integer weights this is *not* what repeating the rows
        would give (``weights`` is).
    weights : ndarray of shape (B,)
        Sum of sample weights in each bin: the per-bin number that integer
        weights make equal to the counts of the repeated rows (equals
        ``counts`` without weights). The reliability diagram's histogram
        shows it when weights are given.
    mean_confidence : ndarray of shape (B,)
        Weighted mean predicted confidence per bin; NaN for empty bins.
    accuracy : ndarray of shape (B,)
        Weighted fraction of hits per bin (top-label: prediction correct; class
        ``k``: label is ``k``); NaN for empty bins.
    class_index : int or None
        None for the top-label view, else the class of this one-vs-rest view.
    """

    edges: np.ndarray
    counts: np.ndarray
    weights: np.ndarray
    mean_confidence: np.ndarray
    accuracy: np.ndarray
    class_index: int | None = None

    def __post_init__(self) -> None:
        # A curve built by hand (or read back) is drawn as given: one with 2 edges and 3 counts, an
        # accuracy of 2.0 and a NaN confidence in a full bin made a diagram without a word (audit).
        fields = {name: np.asarray(getattr(self, name)) for name in
                  ("edges", "counts", "weights", "mean_confidence", "accuracy")}
        for name, arr in fields.items():
            object.__setattr__(self, name, arr)  # lists are fine; arrays stay the same objects
        edges = fields["edges"]
        if edges.ndim != 1 or edges.size < 2:
            raise ValueError(f"ReliabilityCurve: edges must hold at least 2 values (1-D), got shape {edges.shape}")
        if not np.issubdtype(edges.dtype, np.number) or not (np.all(edges >= 0.0) and np.all(edges <= 1.0)):
            raise ValueError(f"ReliabilityCurve: edges must lie in [0, 1], got {edges.tolist()}")
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"ReliabilityCurve: edges must increase, got {edges.tolist()}")
        n_bins = edges.size - 1
        for name in ("counts", "weights", "mean_confidence", "accuracy"):
            arr = fields[name]
            if arr.shape != (n_bins,):
                raise ValueError(
                    f"ReliabilityCurve: {name} must have shape ({n_bins},) (one per bin: edges has {edges.size} "
                    f"values), got {arr.shape}"
                )
            if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)):
                raise ValueError(f"ReliabilityCurve: {name} must be real numbers, got dtype {arr.dtype}")
        counts, weights = fields["counts"], fields["weights"]
        if not np.issubdtype(counts.dtype, np.integer) and not np.all(np.mod(counts, 1) == 0):
            raise ValueError(f"ReliabilityCurve: counts must be integers, got {counts.tolist()}")
        _refuse_bins("counts must be >= 0", counts < 0, counts)
        _refuse_bins("weights must be finite and >= 0", ~(np.isfinite(weights) & (weights >= 0)), weights)
        for name in ("mean_confidence", "accuracy"):
            arr = fields[name]
            _refuse_bins(f"{name} must not be NaN in a bin that holds rows", np.isnan(arr) & (counts > 0), arr,
                         counts=counts)
            # weighted means of values in [0, 1]: allow their rounding, not a value off the scale
            _refuse_bins(f"{name} must be in [0, 1] (NaN only for empty bins)",
                         ~np.isnan(arr) & ((arr < -_MEAN_SLACK) | (arr > 1.0 + _MEAN_SLACK)), arr)

    @property
    def n_bins(self) -> int:
        return int(self.edges.size - 1)

    @property
    def nonempty(self) -> np.ndarray:
        """Boolean mask of bins holding positive weight."""
        return self.weights > 0

    @property
    def gap(self) -> np.ndarray:
        """``accuracy - mean_confidence`` per bin (negative: over-confident); NaN if empty."""
        return self.accuracy - self.mean_confidence

    @property
    def proportions(self) -> np.ndarray:
        """Fraction of the total weight in each bin."""
        total = float(np.sum(self.weights))
        return self.weights / total if total > 0 else np.zeros_like(self.weights)


@dataclass(frozen=True)
class ECEResult:
    """An expected calibration error with its uncertainty and per-bin data.

    Attributes
    ----------
    value : float
        The estimate (see :func:`expected_calibration_error` for the formula).
    ci_low, ci_high : float
        Interval at ``confidence_level`` for the population's binned error: a
        bias-corrected bootstrap interval within [0, 1]. ``ci_low`` is 0
        whenever perfect calibration is not rejected, but also when the bias
        correction takes it below 0 while the test rejects (audit: ECE 0.0246,
        interval [0, 0.059], 1% of perfectly calibrated worlds as high), so a
        0 there does not by itself mean perfect calibration is not ruled out:
        that is the test of ``p_calibrated`` (see
        :func:`expected_calibration_error`, Notes, for the interval's measured
        coverage, poor below about 100 rows; NaN if ``ci=None``).
    confidence_level : float or None
    noise_floor : float
        Mean estimate over data sets whose labels are drawn from the predicted
        probabilities themselves: what a *perfectly calibrated* model with these
        confidences scores *on average* at this ``n`` and binning (NaN if not
        computed). It describes the noise and is no test: a perfectly calibrated
        model scores above its floor in about 4 data sets of 10 (39% at 114 rows;
        :func:`softmaxkit._ece.calibration_test`).
    noise_threshold : float
        The 95th percentile of those simulated estimates: ``value`` above it is
        evidence of miscalibration at the 5% level; at or under it (above the
        floor or not) ``value`` is within what a perfectly calibrated model shows
        (NaN where ``noise_floor`` is).
    p_calibrated : float
        The Monte Carlo p-value of perfect calibration, ``(1 + #{simulated >=
        value}) / (1 + S)`` over the ``S`` simulated estimates (never 0): the
        share of perfectly calibrated data sets that score at least ``value``
        (NaN where ``noise_floor`` is).
    norm, mode, binning : str
    n_bins : int
        Bins requested (quantile binning may merge tied bins; see ``curves``).
    n_samples : int
        Rows of positive weight, whatever their weights (as ``curves[k].counts``
        counts them): rows of weight 0 are not counted, and count weights are
        not expanded.
    n_bootstrap : int
    curves : tuple of ReliabilityCurve
        One (top-label) or one per class (classwise).
    """

    value: float
    ci_low: float
    ci_high: float
    confidence_level: float | None
    noise_floor: float
    norm: str
    mode: str
    binning: str
    n_bins: int
    n_samples: int
    n_bootstrap: int
    curves: tuple[ReliabilityCurve, ...]
    noise_threshold: float = float("nan")
    p_calibrated: float = float("nan")

    def __float__(self) -> float:
        return float(self.value)

    @property
    def curve(self) -> ReliabilityCurve:
        """The single curve of a top-label result."""
        if len(self.curves) != 1:
            raise ValueError("a classwise result has one curve per class: use .curves[k]")
        return self.curves[0]

    @property
    def edges(self) -> np.ndarray:
        """Bin edges of the top-label curve (classwise: use ``curves[k].edges``)."""
        return self.curve.edges


# --------------------------------------------------------------------------- log-loss, Brier


def log_loss(
    y: Any,
    *scores: Any,
    logits: Any = None,
    probs: Any = None,
    sample_weight: Any = None,
    eps: float | None = None,
) -> float:
    r"""Mean negative log-likelihood of the true class (cross-entropy, log-loss).

    ``log_loss = sum_i w_i (-log p_i[y_i]) / sum_i w_i``.

    Parameters
    ----------
    y : array_like of shape (N,)
        Integer class indices.
    *scores
        Must be empty: a matrix passed by position (as to scikit-learn's
        ``log_loss(y_true, y_pred)``) is refused with a TypeError asking for
        ``probs=`` or ``logits=``.
    logits : array_like of shape (N, C), keyword-only
        Raw scores; ``-log p_y`` is computed exactly as ``logsumexp(x) - x_y``
        (via :func:`softmaxkit.cross_entropy`), so it never under- or overflows.
    probs : array_like of shape (N, C) or (N,), keyword-only
        Probabilities instead of logits (1-D: positive-class probability).
    sample_weight : array_like of shape (N,), optional
    eps : float in (0, 1), optional
        Only with ``probs``: clip the true-class probability to ``>= eps``.
        Without it nothing is clipped.

    Returns
    -------
    float
        In ``[0, inf]``. ``inf`` when a true class has probability 0 (from
        ``probs`` without ``eps``, or a ``-inf`` logit).

    Raises
    ------
    ValueError
        Both or neither of ``logits``/``probs``; bad shapes; labels out of range;
        NaN; probability rows not summing to 1; ``eps`` with ``logits``.

    Notes
    -----
    scikit-learn's ``log_loss`` silently clips probabilities to ``[eps, 1 -
    eps]`` (and in float32 uses float32's eps), which hides a model that puts
    zero probability on what happened and biases the loss. Here a zero gives
    ``inf`` unless the caller asks for clipping.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import log_loss
    >>> round(log_loss(np.array([1]), logits=np.array([[0.0, 2.0]])), 4)
    0.1269
    >>> log_loss(np.array([0]), probs=np.array([[0.0, 1.0]]))
    inf
    """
    if scores:
        # scikit-learn's log_loss(y_true, y_pred): a probability matrix is also a valid logit
        # matrix, so which one it is must be said, not guessed.
        raise TypeError("log_loss(y, scores): name the matrix, probs= for probabilities (what scikit-learn's "
                        "log_loss takes) or logits= for raw scores")
    rows = _log_loss_rows(y, logits=logits, probs=probs, eps=eps)
    w = check_sample_weight(sample_weight, rows.loss.shape[0])
    if rows.loss.size == 0:
        raise ValueError("log_loss needs at least one sample")
    with np.errstate(invalid="ignore"):
        # 0 * inf: a zero-weight row with an infinite loss contributes nothing.
        terms = np.where(w > 0, w * rows.loss, 0.0)
    return float(np.sum(terms) / np.sum(w))


def brier_score(y: Any, probs: Any, *, sample_weight: Any = None) -> float:
    r"""Multiclass Brier score: ``mean_i sum_k (p_ik - [y_i = k])^2``, in [0, 2].

    Parameters
    ----------
    y : array_like of shape (N,)
    probs : array_like of shape (N, C) or (N,)
    sample_weight : array_like of shape (N,), optional

    Returns
    -------
    float
        0 for a perfect, certain forecast; 2 for a certain, wrong one.

    Notes
    -----
    This is Brier's original (1950) definition, a sum over all classes. For a
    binary problem it is exactly twice scikit-learn's ``brier_score_loss``
    (which scores only the positive class, ``(p - y)^2``, in [0, 1]) and equals
    ``brier_score_loss(..., scale_by_half=False)``.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import brier_score
    >>> round(brier_score(np.array([1]), np.array([[0.2, 0.8]])), 6)
    0.08
    """
    rows = _brier_rows(y, probs)
    w = check_sample_weight(sample_weight, rows.loss.shape[0])
    if rows.loss.size == 0:
        raise ValueError("brier_score needs at least one sample")
    return float(np.sum(w * rows.loss) / np.sum(w))


def _given_logits(logits: Any, probs: Any) -> bool:
    """Whether the scores are ``logits`` (else ``probs``); exactly one must be given."""
    if (logits is None) == (probs is None):
        raise ValueError("pass exactly one of logits= or probs=")
    return logits is not None


class _Rows(NamedTuple):
    """Each row's loss (float64 (N,)), its validated label (int64 (N,)) and the class count."""

    loss: np.ndarray
    labels: np.ndarray
    n_classes: int


def _log_loss_rows(y: Any, *, logits: Any, probs: Any, eps: float | None) -> _Rows:
    """Validate, then ``-log p_i[y_i]`` per row: the terms of :func:`log_loss` (which see)."""
    if _given_logits(logits, probs):
        if eps is not None:
            raise ValueError("eps only applies to probs=; logits never need clipping")
        from softmaxkit.functional import cross_entropy

        x = check_logits(logits, min_classes=1)
        labels = check_labels(y, x.shape[1], x.shape[0], scores=x, scores_name="logits")
        # Per-row loss in the logits' precision (float64 accumulators inside), summed in float64.
        return _Rows(np.asarray(cross_entropy(x, labels, reduction="none"), dtype=np.float64), labels, x.shape[1])
    p = check_probs(probs, wide=True)
    labels = check_labels(y, p.shape[1], p.shape[0], scores=p, scores_name="probs")
    p_true = p[np.arange(p.shape[0]), labels].astype(np.float64)
    if eps is not None:
        p_true = np.maximum(p_true, check_eps(eps))
    with np.errstate(divide="ignore"):
        return _Rows(-np.log(p_true), labels, p.shape[1])


def _brier_rows(y: Any, probs: Any) -> _Rows:
    """Validate, then ``sum_k (p_ik - [y_i = k])^2`` per row: the terms of :func:`brier_score`."""
    p = check_probs(probs, wide=True)
    labels = check_labels(y, p.shape[1], p.shape[0], scores=p, scores_name="probs")
    p = p.astype(np.float64, copy=False)  # read only below: no copy of float64 probabilities
    # sum_k p_k^2 - 2 p_y + 1, without materialising the one-hot matrix.
    loss = np.einsum("ij,ij->i", p, p) - 2.0 * p[np.arange(p.shape[0]), labels] + 1.0
    return _Rows(loss, labels, p.shape[1])


def loss_interval(
    y: Any,
    *,
    logits: Any = None,
    probs: Any = None,
    score: str = "log_loss",
    level: float = 0.95,
    min_class_rows: int = MIN_CLASS_ROWS,
    class_names: Any = None,
) -> LossInterval:
    r"""The log-loss or Brier score with a confidence interval for its population value.

    Parameters
    ----------
    y : array_like of shape (N,)
        Integer class indices.
    logits : array_like of shape (N, C), keyword-only
        Raw scores (for ``score="brier"`` turned into probabilities by
        :func:`softmaxkit.softmax`).
    probs : array_like of shape (N, C) or (N,), keyword-only
        Probabilities instead of logits (1-D: positive-class probability).
    score : {"log_loss", "brier"}, default "log_loss"
        The per-row loss: ``-log p_i[y_i]`` (:func:`log_loss`) or
        ``sum_k (p_ik - [y_i = k])^2`` on the 0-2 scale (:func:`brier_score`).
    level : float in (0, 1), default 0.95
    min_class_rows : int, default 5
        Two classes: the rows each class needs before an interval is given.
        More classes: any value >= 1 asks for one row of every class. 0
        turns the rule off.
    class_names : sequence of C str, optional
        Names for the reason text (``"class 'malignant'"``; default the index).

    Returns
    -------
    LossInterval
        ``value`` (equal to :func:`log_loss` / :func:`brier_score` of the same
        rows), ``low``, ``high``, ``level``, ``n``, and ``withheld``: None, or
        the sentence saying why there is no interval (``low`` and ``high`` are
        then NaN).

    Raises
    ------
    ValueError
        Everything :func:`log_loss` and :func:`brier_score` refuse (both or
        neither of ``logits``/``probs``, shapes, labels, NaN, rows not summing
        to 1), no rows, an unknown ``score``, ``level`` outside (0, 1),
        ``min_class_rows`` not an int >= 0, ``class_names`` of the wrong length.
    TypeError
        ``class_names`` that is not a sequence.

    Notes
    -----
    With per-row losses :math:`L_i`, :math:`m = \bar L`, :math:`se =
    sd(L) / \sqrt{n}` (``ddof=1``) and :math:`t` the ``(1 + level) / 2``
    quantile of Student's t with :math:`n - 1` degrees of freedom, the
    interval is :math:`[m e^{-t\,se/m},\; m e^{+t\,se/m}]`: the t interval
    of :math:`\log m`, whose standard error is :math:`se / m` by the delta
    method, mapped back. A loss is positive and right-skewed, and the log
    scale gives the interval the same skew; it never reaches below 0. Cost
    O(N C) to read the scores (as :func:`log_loss`) and O(N) for the
    interval; SciPy is imported on the first call, for the t quantile.

    *Measured coverage* (simulated in this project; the true value from
    millions of rows). Two classes (logit ``a + 1.5 z``, ``z ~ N(0, 1)``,
    ``a`` set for a rarer-class prevalence of 1, 3, 10 or 50%; the model
    calibrated, or over-confident with its logits times 2.5; n = 100, 200,
    500, 2000; 1000 data sets per design), among the data sets with at least
    5 rows of the rarer class (designs where 300 or more had them): the 95%
    interval held the truth in 0.940 or more in every design for the Brier
    score (0.946 pooled) and 0.937 or more for the log-loss (0.945); the 90%
    interval 0.883 and 0.884 (0.896 and 0.892). With no row of that class
    the value lay below the truth in 99-100% of the data sets; accepting 3
    rows lowered the worst design to 0.867 and 0.900 at 95%. The plain t
    interval gave 0.928 and 0.916 under the same rule, and the bootstrap
    percentile and BCa intervals (Efron & Tibshirani 1993) also fell short
    below about 10 rows. The rule cannot make an unusual data set typical:
    where 5 rows of the rarer class are themselves rare (1% of 200 rows, 5%
    of data sets reach them; 3% of 100 rows, 17-19%), the intervals that are
    given come from data sets that over-represent it and sit too high: at
    95% they held the truth in 0.10-0.47 and 0.82-0.86 of those data sets
    (4000 per design).

    More classes: ten classes, one of 1% or 10% and the rest equal (both
    models, n = 100-2000, 1000 data sets each): 0.93-0.96 at 95%, even with
    a 1% class of about one row. Three classes with one of 1% or 3% (the
    others equal, or 9% and 90%) and ten with one of 1% or 3% (both models,
    n = 100, 200, 500, 2000 data sets each): over all data sets 0.916-0.959
    at 95% (0.860-0.918 at 90%), but among those with no row of the rare
    class 0.82-0.93 for the log-loss at three classes (0.66-0.86 at 90%). With
    one row of every class required the 95% interval held 0.940-0.963 of the
    data sets it was given for at three classes and 0.941-0.955 at ten
    (90%: 0.882-0.922 and 0.883-0.919). Requiring 5 rows there instead keeps
    only data sets that over-represent the rare class, whose intervals held
    0.86-0.88 at 95% (0.69-0.77 at 90%) in the worst three-class designs;
    so beyond two classes every class needs one row, and 1-4 rows do not
    withhold. With thousands of classes (a language model's vocabulary) most
    classes have no row and the interval is withheld; its rows, tokens of
    the same documents, are not independent draws anyway.

    *Withheld* (``withheld`` says which and why; ``value`` is still the
    score): too few rows of a class (above); one row; every row with the same
    loss (a uniform forecast, or every row certain and right: the rows show
    no spread, and ``[m, m]`` would claim a certainty that n rows cannot
    give). A true class with probability 0 (``probs``, or a ``-inf``
    logit) makes the log-loss ``inf`` and the interval ``[inf, inf]``, not
    withheld: a row happened that the model called impossible, so the
    population's expected log-loss is infinite too.

    Rows are the units: they must be independent draws (tokens of one
    document, or augmented copies of one image, are not; resample whole
    documents instead). There is no ``sample_weight`` yet, because the
    coverage of a weighted version has not been measured.

    References
    ----------
    The delta method for :math:`\log \bar L`: e.g. Casella & Berger,
    *Statistical Inference*, 2nd ed. 2002, section 5.5.4. Efron & Tibshirani,
    *An Introduction to the Bootstrap*, 1993 (the percentile, BCa and
    bootstrap-t intervals it was compared with).

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import loss_interval
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, size=400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> r = loss_interval(y, probs=p, score="brier")
    >>> r.withheld is None and r.low < r.value < r.high
    True
    >>> print(loss_interval(y[:40] * 0, probs=p[:40], class_names=["benign", "malignant"]).withheld)
    ... # doctest: +ELLIPSIS
    no interval: no row of class 'malignant'; at least 5 needed; the score leaves that class's losses out...
    """
    check_choice(score, SCORES, "score")
    level = check_level(level)
    min_class_rows = check_min_class_rows(min_class_rows)
    if score == "log_loss":
        rows = _log_loss_rows(y, logits=logits, probs=probs, eps=None)
    else:
        if _given_logits(logits, probs):
            from softmaxkit.functional import softmax

            probs = softmax(check_logits(logits, min_classes=1).astype(np.float64), axis=-1)
        rows = _brier_rows(y, probs)
    names = check_class_names(class_names, rows.n_classes)
    if rows.loss.size == 0:
        raise ValueError(f"loss_interval needs at least one sample (score={score!r})")
    counts = np.bincount(rows.labels, minlength=rows.n_classes)
    return interval_from_moments(RowMoments.of(rows.loss), counts, score=score, level=level,
                                 min_class_rows=min_class_rows, class_names=names)


# --------------------------------------------------------------------------- the ECE family


def _views(y: np.ndarray, p: np.ndarray, classes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Confidences and hits of each view, both (N, G) float64.

    top-label (``classes`` None, G = 1): confidence ``max_k p_k`` (on binary
    problems ``max(p, 1 - p)``), hit ``argmax_k p_k == y`` (ties resolve to the
    first class, as ``np.argmax``); one-vs-rest views of ``classes`` (G =
    len(classes)): confidence ``p_k``, hit ``y == k``.
    """
    if classes is None:
        pred = np.argmax(p, axis=1)
        conf = p[np.arange(p.shape[0]), pred].astype(np.float64)[:, None]
        hit = (pred == y).astype(np.float64)[:, None]
        return conf, hit
    conf = p[:, classes].astype(np.float64)
    hit = (y[:, None] == classes[None, :]).astype(np.float64)
    return conf, hit


def _curve(edges, bins, conf, hit, w, class_index) -> tuple[ReliabilityCurve, np.ndarray]:
    n_bins = edges.size - 1
    sums = bin_sums(bins, conf, hit, w, n_bins)  # (B, 4)
    counts = np.bincount(bins[w > 0], minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(sums[:, 0] > 0, sums[:, 1] / sums[:, 0], np.nan)
        acc = np.where(sums[:, 0] > 0, sums[:, 2] / sums[:, 0], np.nan)
    curve = ReliabilityCurve(edges, counts, sums[:, 0], mean_conf, acc, class_index)
    return curve, sums


@dataclass(frozen=True)
class _Binned:
    """Binned confidences and hits, shared by the ECE, its interval and its floor."""

    weight: np.ndarray  # (N,)
    conf: np.ndarray  # (N, G)
    hit: np.ndarray  # (N, G)
    bins: np.ndarray  # (N, G) int64
    sums: np.ndarray  # (G, n_bins, 4); views with merged quantile bins are zero-padded
    curves: tuple[ReliabilityCurve, ...]
    n_bins: int


def _binned(y, probs, *, n_bins, binning, sample_weight, classes="top_label") -> _Binned:
    """Validate and bin. ``classes``: "top_label", "all" (classwise) or one class index."""
    p = check_probs(probs)
    labels = check_labels(y, p.shape[1], p.shape[0], scores=p, scores_name="probs")
    w = check_sample_weight(sample_weight, p.shape[0])
    n_bins = check_n_bins(n_bins)
    check_choice(binning, BINNINGS, "binning")
    if p.shape[0] == 0:
        raise ValueError("a calibration error needs at least one sample")
    if classes == "top_label":
        ks = None
    elif classes == "all":
        ks = np.arange(p.shape[1])
    else:
        if not isinstance(classes, numbers.Integral) or isinstance(classes, bool) or not 0 <= classes < p.shape[1]:
            raise ValueError(f"class_index must be an int in [0, {p.shape[1]}), got {classes!r}")
        ks = np.array([int(classes)])
    conf, hit = _views(labels, p, ks)
    return _bin_views(conf, hit, w, n_bins=n_bins, binning=binning, precision=p.dtype, classes=ks)


def _bin_views(conf, hit, w, *, n_bins, binning, precision, classes) -> _Binned:
    """Bin each of the (N, G) views' confidences (edges compared in ``precision``, the probabilities'
    dtype) and sum each bin; ``classes``: the class of each view, None for the top label."""
    n, g = conf.shape
    curves, bins = [], np.empty((n, g), dtype=np.int64)  # C-contiguous, the layout the numba kernels compiled for
    sums = np.zeros((g, n_bins, 4))
    for j in range(g):
        edges = bin_edges(conf[:, j], w, n_bins=n_bins, binning=binning)
        bins[:, j] = assign_bins(conf[:, j], edges, binning=binning, precision=precision)
        curve, s = _curve(edges, bins[:, j], conf[:, j], hit[:, j], w, None if classes is None else int(classes[j]))
        curves.append(curve)
        sums[j, : s.shape[0]] = s
    return _Binned(w, conf, hit, bins, sums, tuple(curves), n_bins)


def _check_ci(ci: Any) -> float | None:
    return check_level(ci, name="ci", optional=True)


#: Simulated data sets behind ``noise_floor=True``: the floor is a mean, so its Monte
#: Carlo error shrinks like 1/sqrt(n) and 200 puts it near 1% of the floor itself.
DEFAULT_NOISE_SIMS = 200


def _bias_corrected_interval(
    value: float,
    boot: np.ndarray,
    calibrated: np.ndarray,
    *,
    level: float,
    lower_shifts: float,
    upper_shifts: float,
    tested: float | None = None,
) -> tuple[float, float]:
    """The ECE's interval at ``level`` from its bootstrap resamples ``boot`` and its values in perfectly
    calibrated worlds ``calibrated`` (see :func:`expected_calibration_error`, Notes, *Uncertainty*).

    The ends of the percentile interval are moved down by ``lower_shifts`` and ``upper_shifts``
    times the bootstrap's bias estimate ``mean(boot) - value`` (:func:`_interval_shifts` says how
    many for each statistic and why). The lower end is 0 whenever the estimate is within the
    ``level`` quantile of the calibrated worlds: the test of perfect calibration does not reject 0.
    Every norm lies in [0, 1], and so do the ends: a lower end the correction takes below 0 is 0 too,
    whatever the test says, so 0 alone is not the test's answer.

    ``tested``: the plain estimate that the calibrated worlds are compared with, when ``value`` and
    ``boot`` are a debiased statistic instead (the ``l1``, see
    :func:`softmaxkit._ece.debiased_l1_from_sums`). None: ``value`` itself.
    """
    alpha = (1.0 - level) / 2.0
    bias = float(np.mean(boot)) - value
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    lo, hi = lo - lower_shifts * bias, hi - upper_shifts * bias
    if (value if tested is None else tested) <= float(np.quantile(calibrated, 1.0 - alpha)):
        lo = 0.0
    return min(max(float(lo), 0.0), 1.0), min(max(float(hi), 0.0), 1.0)


def _interval_shifts(*, norm: str, mode: str, debias: bool) -> tuple[float, float]:
    """How many bootstrap bias estimates :func:`_bias_corrected_interval` moves the lower and the upper end down by.

    A biased statistic (``max``, the plain ``l2``): twice and once. Its resamples sit about one bias
    above the estimate and two above the true value, hence twice for the lower end (Efron &
    Tibshirani 1993, section 10.6); the bias of ``|x|`` shrinks as the gap grows, so the resamples
    of a data set whose gap is large carry less of it than the double shift removes, and moving
    the upper end twice too put the truth above the interval in nearly all misses (the top-label
    ``l1``, bootstrapped plain then, covered 0.87-0.92 at n = 50-200 with a gap of 0.12-0.14; 0.93-0.97 once).

    The debiased ``l2``: once and not at all. The ``l1`` is bootstrapped per-bin debiased
    (:func:`softmaxkit._ece.debiased_l1_from_sums`): the bootstrap's bias estimate is taken at the
    noisy gap, which lies above the true one, so it undercounts the noise of bins whose true gap is
    small (plain, shifted twice and once, the top-label ``l1`` of a yes/no model with a true ECE
    of 0.02-0.08 covered 0.87-0.92 at n = 100-300, every miss below the lower end; classwise, 0.80-0.88
    at 10 classes). The debiased statistic's resamples still sit above it near 0 (the debiased gap
    is cut at 0), so the top-label lower end moves down twice its bias estimate (once left
    0.92-0.945 at n = 100, 3 classes, true ECE 0.045), the classwise one once (measured there at
    0.91-0.98), and the upper end not at all.
    """
    if norm == "l1":
        return (2.0 if mode == "top_label" else 1.0), 0.0
    if norm == "l2" and debias:
        return 1.0, 0.0
    return 2.0, 1.0


def _n_sims(noise_floor: Any) -> int:
    if noise_floor is True:
        return DEFAULT_NOISE_SIMS
    if noise_floor is False or noise_floor is None:
        return 0
    if isinstance(noise_floor, numbers.Integral) and noise_floor >= 1:
        return int(noise_floor)
    raise ValueError(f"noise_floor must be a bool or a number of simulations >= 1, got {noise_floor!r}")


def _seed(random_state: Any) -> int:
    """A 63-bit seed from None, an int or a ``np.random.Generator``."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if random_state is None:
        return int(np.random.default_rng().integers(0, 2**63 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise ValueError(f"random_state must be None, a non-negative int or a numpy Generator, got {random_state!r}")


def expected_calibration_error(
    y: Any,
    probs: Any,
    *,
    n_bins: int = 15,
    binning: str = "uniform",
    norm: str = "l1",
    mode: str = "top_label",
    sample_weight: Any = None,
    debias: bool = True,
    ci: float | None = 0.95,
    n_bootstrap: int = 1000,
    noise_floor: bool | int = True,
    random_state: Any = 0,
) -> ECEResult:
    r"""Binned expected calibration error, with a bootstrap interval and a noise floor.

    Parameters
    ----------
    y : array_like of shape (N,)
        Integer class indices.
    probs : array_like of shape (N, C) or (N,)
        Predicted probabilities (1-D: positive-class probability of a binary problem).
    n_bins : int, default 15
    binning : {"uniform", "quantile"}
        Equal-width bins on [0, 1], or equal-mass bins (Nixon et al. 2019's
        adaptive ECE); see Notes for the edges.
    norm : {"l1", "l2", "max"}
        ``l1`` is the usual ECE, ``l2`` the (debiased) root-mean-square
        calibration error, ``max`` the maximum calibration error (MCE).
    mode : {"top_label", "classwise"}
        Calibration of the predicted class's probability (Guo et al. 2017), or
        of every class's probability, averaged over classes (Kull et al. 2019).
    sample_weight : array_like of shape (N,), optional
        ``value`` and the per-bin numbers are what repeating each row ``w``
        times would give (except the ``l2`` debiasing term, see ``debias``).
        The interval, ``noise_floor``, ``noise_threshold`` and
        ``p_calibrated`` are not: they treat each of the N rows as one
        independent draw and the weights as relative (importance) weights,
        so they do not change when every weight is multiplied by a constant,
        and a row of weight 40 is one draw, not 40. For counts of repeated
        rows (aggregated data), repeat the rows instead:
        ``i = np.repeat(np.arange(N), w)``, then ``y[i], probs[i]`` without
        weights; whole-number weights above 1 with ``ci`` or ``noise_floor``
        draw a ``UserWarning`` saying so.
    debias : bool, default True
        ``l2`` only: subtract each bin's sampling variance ``acc_b (1 - acc_b) /
        (n_b - 1)`` (Kumar et al. 2019), with ``n_b = (sum_b w)^2 / sum_b w^2``
        Kish's effective count of the bin. That is the row count for unit
        weights and does not change when all weights are multiplied by a
        constant, so here weights are relative (importance) weights, not
        repetition counts: a row of weight 2 counts as less than two rows,
        and the debiased ``l2`` with integer weights differs from that of the
        repeated rows (``debias=False`` gives the same value for both).
    ci : float in (0, 1) or None, default 0.95
        Level of the bootstrap interval (see Notes); None skips the bootstrap.
    n_bootstrap : int, default 1000
        Bootstrap resamples.
    noise_floor : bool or int, default True
        Compute :attr:`ECEResult.noise_floor`, ``noise_threshold`` and
        ``p_calibrated`` from 200 simulated data sets (an int: from that many,
        at least 200 when ``ci`` is given, whose lower end uses them; False:
        skip).
    random_state : None, int or numpy Generator, default 0
        Seeds the bootstrap and the simulation (results are reproducible and
        independent of the thread count).

    Returns
    -------
    ECEResult
        ``value``, ``ci_low``, ``ci_high``, ``noise_floor``, ``noise_threshold``,
        ``p_calibrated`` and per-bin ``curves``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, NaN or values outside [0, 1] in ``probs``, rows not summing
        to 1, labels out of range, negative weights, unknown options.

    Warns
    -----
    UserWarning
        ``sample_weight`` of whole numbers, some above 1 (zeros aside), with
        ``ci`` or ``noise_floor``: they look like counts of repeated rows, which
        the interval, floor and test do not expand (see ``sample_weight``).

    Notes
    -----
    With bins ``B_b``, weights ``w``, ``W = sum w``, the top-label view has
    confidence ``c_i = max_k p_ik`` and hit ``h_i = [argmax_k p_ik = y_i]``; on a
    binary problem the confidence is therefore ``max(p, 1 - p)`` (netcal's
    ``ECE`` and torchmetrics' ``binary_calibration_error`` use the
    positive-class probability instead, which measures something else: 0.192
    for both where this gives 0.180 on one audit case; ``mode="classwise"``
    bins the probabilities of both classes).
    Per bin ``acc_b = sum_{B_b} w h / W_b`` and ``conf_b = sum_{B_b} w c / W_b``,
    and ``ECE_l1 = sum_b (W_b / W) |acc_b - conf_b|``. See
    :func:`softmaxkit._ece.error_from_sums` for ``l2``, ``max`` and classwise.

    *Bin edges.* Uniform bins are ``[b / B, (b + 1) / B)`` with the last one
    closed: 0.0 falls in the first bin and 1.0 in the last, and a confidence
    of exactly 0.3 in ``[0.3, 0.4)``: the edges ``b / B`` are compared in the
    probabilities' own precision (``linspace``'s 0.30000000000000004, and a
    float32 0.7 against the float64 edge, each put a score one bin lower). Quantile (equal-mass) bins cut the sorted confidences
    into ``n_bins`` parts of equal weight with each edge midway between the
    neighbouring confidences, and are closed on the right: every sample lands
    where scikit-learn's ``calibration_curve(strategy="quantile")`` and Kumar
    et al.'s ``get_equal_bins`` put it when ``N`` is a multiple of ``n_bins``
    (see :mod:`softmaxkit._binning` for the exact weighted rule). Tied
    confidences merge bins instead of producing empty or zero-width ones:
    every quantile bin is non-empty, and there may be fewer than ``n_bins``.

    *Difference from torchmetrics.* torchmetrics' ``CalibrationError`` bins
    with ``bucketize(right=True)`` on float32 ``linspace`` edges, so it
    agrees with this function on float32 probabilities except that a
    confidence of exactly 1.0 lands in an extra (16th) bin of its own, and
    that a few of its edges round one float32 step away from ``b / B`` (at 15,
    20 or 100 bins), which moves a score lying exactly on such an edge.

    *Uncertainty.* The interval is meant to cover the binned calibration
    error of the population (the same bins, infinitely many rows). The
    estimate is biased upward by sampling noise (``l1``, ``max``; the debiased
    ``l2`` much less), so an interval around it would miss: a percentile
    bootstrap shifted to the estimate covered a perfectly calibrated model's
    0 in 0.5% of data sets. The bootstrap resamples rows with replacement
    (keeping each row's weight) with the bin edges fixed; the lower end of
    its percentile interval is moved down by twice its bias estimate and the
    upper end once (lower end once and upper end not at all for the debiased
    ``l2``; see :func:`_interval_shifts`). That estimate is taken at the
    noisy per-bin gaps, which lie above the true ones, so it falls short
    where the true gaps are small but not 0 (the classwise ``l1`` covered
    0.80-0.88 at 10 classes; the top-label ``l1`` of a yes/no model with a
    true ECE of 0.02-0.08 covered 0.87-0.92 at n = 100-300, every miss below
    the lower end). So for ``l1`` each bin's ``|acc_b - conf_b|`` is first
    debiased as a folded normal (:func:`softmaxkit._ece.debiased_l1_from_sums`)
    and the bootstrap is of that statistic: its lower end is moved down by
    twice its bias estimate (classwise once) and its upper end not at all.
    Both ends lie in [0, 1]. The lower end is 0
    whenever the estimate does not exceed
    the ``ci`` quantile of the estimates of perfectly calibrated data sets
    with these confidences (at least 200 of them; the same simulation gives
    the noise floor), and also when the bias correction takes it below 0
    while the estimate does exceed it: a lower end of 0 does not by itself
    mean perfect calibration is not ruled out. The noise floor re-draws the labels from ``probs``
    itself (top-label: hit ~ Bernoulli(confidence); classwise: y ~
    Categorical(p_i)) and averages the estimate over such perfectly
    calibrated data sets. It is a mean, so a perfectly calibrated model
    scores above it about 4 times in 10: an estimate above the floor is no
    evidence of miscalibration. The test is the same data sets' 95th
    percentile, ``noise_threshold``, and ``p_calibrated``, the share of them
    scoring at least the estimate (:func:`softmaxkit._ece.calibration_test`:
    a 5% test, where "above the floor" held for 39% of perfectly calibrated
    data sets of 114 two-class rows). Measured coverage of the 95% interval (3 classes,
    Dirichlet(1) probabilities tempered by T = 0.5, 1 or 2, 15 uniform bins,
    400 data sets each, 200 classwise; true value from expected hits on
    400,000-1,000,000 rows): top-label ``l1`` 0.96-0.97 calibrated and
    0.98-0.99 at n = 50, 0.955-0.985 at n = 100-1000 miscalibrated (true
    0.12, 0.14). Yes/no models (true logit ``a + 1.5 z``, 5%, 20% or 50%
    prevalence, logits scaled by T = 1, 1.3, 0.6 or 2, true ECE 0-0.10;
    n = 100, 300, 1000): 0.95-0.99; 3 and 10 classes (T = 0.5, 0.8, 1, 1.3,
    2, true 0-0.18): 0.945-0.99. Before the per-bin debiasing these were
    0.87-0.98 (yes/no) and 0.915-0.98, every shortfall with the truth below
    the lower end; the interval is 1-24% wider for it (2-14% for calibrated
    models, whose lower end is 0 either way: the upper end is higher) and over-covers (0.97-0.99)
    where the true ECE is 0.02-0.05. The debiased
    ``l2`` 0.94-0.98 at n = 50-1000 (was 0.87-0.92 at n = 50-200); classwise
    ``l1`` 0.92 at n = 50 and 0.95-0.98 at n = 200-1000 (true 0.08-0.09; 0.71
    at n = 50 before :func:`softmaxkit._ece._gap_variance`). In a one-bin
    world (confidence 0.75 or 0.85, accuracy 0.6 or 0.8) top-label ``l1``
    0.93-0.99 at n = 20-100, but 0.91-0.93 at confidence 0.95 and accuracy
    0.8 (n = 20-100, the truth above the upper end), and 0.32-0.61 at n = 2-5 (confidence
    0.95, accuracy 0.8): on fewer than about 100 rows the interval is not a
    95% one, and the command line gives no interval there. Classwise ``l1`` at
    10 classes (100 data sets each, T = 0.7 or 1.3, n = 1000, true value
    0.014-0.021): 0.91-0.93 (0.80-0.88 before the per-bin debiasing). Earlier
    measurements of ``max`` (0.89-0.96, n = 300-5000) predate the upper end's
    single shift, which only widens it. Both treat rows as the units, so unlike the point
    estimate they are not repetition-invariant; they are invariant to
    multiplying all weights by a constant.

    Cost: O(N C) to read ``probs`` and O(N log N) to bin, plus O(N G
    (n_bootstrap + 200)) for the interval and O(N G 200) for the floor, one
    simulation shared by both (G = 1 top-label, C classwise), in parallel numba loops: at N = 50,000 top-label
    the interval is a fraction of a second, but classwise over 1000 classes it
    is minutes, so pass ``ci=None, noise_floor=False`` (or fewer resamples)
    there.

    References
    ----------
    Naeini, Cooper & Hauskrecht, "Obtaining well calibrated probabilities using
    Bayesian binning", AAAI 2015. Guo, Pleiss, Sun & Weinberger, "On
    calibration of modern neural networks", ICML 2017. Kumar, Liang & Ma,
    "Verified uncertainty calibration", NeurIPS 2019. Kull et al., "Beyond
    temperature scaling", NeurIPS 2019. Nixon et al., "Measuring calibration
    in deep learning", CVPR Workshops 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import expected_calibration_error
    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> res = expected_calibration_error(np.array([0, 1, 1, 0]), p, ci=None, noise_floor=False)
    >>> round(res.value, 4)  # (|1 - 0.9| + |0 - 0.8| + |1 - 0.7| + |1 - 0.6|) / 4
    0.4
    """
    check_choice(norm, _ece.NORMS, "norm")
    check_choice(mode, MODES, "mode")
    level, n_bootstrap = _check_ci(ci), _check_n_bootstrap(n_bootstrap)
    b = _binned(
        y, probs, n_bins=n_bins, binning=binning, sample_weight=sample_weight,
        classes="top_label" if mode == "top_label" else "all",
    )
    return _ece_result(b, norm=norm, mode=mode, binning=binning, debias=debias, level=level,
                       n_bootstrap=n_bootstrap, noise_floor=noise_floor, random_state=random_state)


def _check_n_bootstrap(n_bootstrap: Any) -> int:
    if not isinstance(n_bootstrap, numbers.Integral) or isinstance(n_bootstrap, bool) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be an int >= 1, got {n_bootstrap!r}")
    return int(n_bootstrap)


def _ece_result(b: _Binned, *, norm: str, mode: str, binning: str, debias: bool, level: float | None,
                n_bootstrap: int, noise_floor: bool | int, random_state: Any) -> ECEResult:
    """:func:`expected_calibration_error`'s value, interval and noise floor from the binned views ``b``."""
    value = float(_ece.error_from_sums(b.sums, norm=norm, debias=debias))
    seed = _seed(random_state)
    ci_low = ci_high = floor = threshold = p_calibrated = float("nan")
    n_sims = _n_sims(noise_floor)
    if level is not None or n_sims:
        _warn_if_count_weights(b.weight, interval=level is not None, floor=bool(n_sims))
        # The interval's lower end needs the calibrated-world test whether or not the floor is asked for.
        calibrated = _ece.calibrated_errors(
            b.bins,
            b.conf,
            b.weight,
            b.sums,
            n_bins=b.n_bins,
            n_sims=max(n_sims, DEFAULT_NOISE_SIMS) if level is not None else n_sims,
            seed=seed ^ 0x5DEECE66D,  # a stream unrelated to the bootstrap's
            norm=norm,
            debias=debias,
            categorical=mode == "classwise",
        )
        if n_sims:
            test = _ece.calibration_test(value, calibrated)  # the worlds test the plain estimate, as below
            floor, threshold, p_calibrated = test["noise_floor"], test["threshold"], test["p_value"]
    if level is not None:
        # The l1 sums per-bin gaps whose noise the bootstrap's bias estimate undercounts where they are
        # small (classwise 0.80-0.88 coverage at 10 classes; top-label 0.87-0.92 at 100-300 rows, true
        # ECE 0.02-0.08): it is bootstrapped debiased per bin instead (see _interval_shifts).
        per_bin = norm == "l1"
        boot = _ece.bootstrap_errors(
            b.bins, b.conf, b.hit, b.weight,
            n_bins=b.n_bins, n_resamples=n_bootstrap, seed=seed, norm=norm, debias=debias,
            debiased_l1=per_bin,
        )
        centre = float(_ece.debiased_l1_from_sums(b.sums)) if per_bin else value
        lower_shifts, upper_shifts = _interval_shifts(norm=norm, mode=mode, debias=debias)
        ci_low, ci_high = _bias_corrected_interval(
            centre, boot, calibrated, level=level, lower_shifts=lower_shifts, upper_shifts=upper_shifts, tested=value
        )
    return ECEResult(
        value=value,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence_level=level,
        noise_floor=floor,
        norm=norm,
        mode=mode,
        binning=binning,
        n_bins=b.n_bins,
        n_samples=int(np.count_nonzero(b.weight > 0)),  # a row of weight 0 is not in the sample
        n_bootstrap=n_bootstrap,
        curves=b.curves,
        noise_threshold=threshold,
        p_calibrated=p_calibrated,
    )


def _warn_if_count_weights(w: np.ndarray, *, interval: bool, floor: bool) -> None:
    """A ``UserWarning`` when the weights ``w`` look like counts of repeated rows: whole numbers, some
    above 1 (zeros aside), read by the interval (``interval``) or the noise floor and test (``floor``).

    Those resample and redraw rows, each row one draw whatever its weight, while the value counts a
    weight ``k`` as ``k`` rows: 5000 rows collapsed into 20 unique rows with their counts kept the
    ECE (0.055) but took the interval from [0.041, 0.067] to [0, 0.249] and ``p_calibrated`` from
    0.005 to 0.995 (audit), without a word.
    """
    positive = w[w > 0]
    if not (positive.size and np.max(positive) > 1 and np.all(positive == np.round(positive))):
        return
    parts = (["the interval"] if interval else []) + (["the noise floor", "p_calibrated"] if floor else [])
    what, verb, pronoun = ((parts[0], "treats", "it describes") if len(parts) == 1 else
                           (", ".join(parts[:-1]) + " and " + parts[-1], "treat", "they describe"))
    warnings.warn(
        f"expected_calibration_error: sample_weight holds whole numbers up to {int(np.max(positive))}, which look "
        f"like counts of repeated rows. The value counts a row of weight k as k rows, but {what} {verb} each of the "
        f"{positive.size} rows of positive weight as one draw and the weights as relative weights: {pronoun} "
        f"{positive.size} rows, not the {int(np.sum(positive))} the counts add up to. For counts, repeat the rows: "
        "i = np.repeat(np.arange(len(w)), w.astype(int)) with w the weights, then pass y[i] and probs[i] without "
        "sample_weight. For importance weights that happen to be whole numbers, ignore this warning",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )


def top_label_ece_from_rows(
    conf: Any,
    hit: Any,
    *,
    precision: Any = np.float64,
    n_bins: int = 15,
    ci: float | None = 0.95,
    n_bootstrap: int = 1000,
    noise_floor: bool | int = True,
    random_state: Any = 0,
) -> ECEResult:
    """The top-label :func:`expected_calibration_error` (``l1``, uniform bins, unit weights) from each
    row's confidence and hit alone, without the (N, C) probabilities.

    Parameters
    ----------
    conf : array_like of shape (N,)
        Each row's top-label confidence ``max_k p_ik``, in [0, 1].
    hit : array_like of shape (N,)
        Whether the row's prediction ``argmax_k p_ik`` (first on ties) is its label.
    precision : dtype, default float64
        The dtype the probabilities came in; ``conf`` holds them exactly. The bin edges are compared in it,
        as :func:`expected_calibration_error` compares them in ``probs``' dtype.
    n_bins, ci, n_bootstrap, noise_floor, random_state
        As in :func:`expected_calibration_error`.

    Returns
    -------
    ECEResult
        The same value, interval, noise floor and curve that :func:`expected_calibration_error` gives on
        the probabilities these rows came from: the estimator, its bootstrap and its calibrated worlds
        (hit ~ Bernoulli(confidence)) see nothing else of them. Memory is O(N), where a probability
        matrix rebuilt to carry these confidences needs ``1 / min(conf) + 1`` columns (the command
        line's did: one near-uniform row of 32,000 classes made it N x 32,001 float64).
    """
    c = np.asarray(conf, dtype=np.float64).reshape(-1, 1)  # the (N, G = 1) views of _views
    h = np.asarray(hit, dtype=bool).astype(np.float64).reshape(-1, 1)
    if c.shape != h.shape or c.shape[0] == 0:
        raise ValueError(f"conf and hit must be two non-empty arrays of one length, got {c.shape[0]} and {h.shape[0]}")
    if not (np.min(c) >= 0 and np.max(c) <= 1):
        raise ValueError("conf must be finite probabilities in [0, 1]")
    level, n_bootstrap = _check_ci(ci), _check_n_bootstrap(n_bootstrap)
    b = _bin_views(c, h, np.ones(c.shape[0]), n_bins=check_n_bins(n_bins), binning="uniform",
                   precision=np.dtype(precision), classes=None)
    return _ece_result(b, norm="l1", mode="top_label", binning="uniform", debias=True, level=level,
                       n_bootstrap=n_bootstrap, noise_floor=noise_floor, random_state=random_state)


def reliability_curve(
    y: Any,
    probs: Any,
    *,
    n_bins: int = 15,
    binning: str = "uniform",
    class_index: int | None = None,
    sample_weight: Any = None,
) -> ReliabilityCurve:
    """Per-bin counts, mean confidence and accuracy: the data of a reliability diagram.

    Parameters
    ----------
    y : array_like of shape (N,)
    probs : array_like of shape (N, C) or (N,)
    n_bins : int, default 15
    binning : {"uniform", "quantile"}
        Edges as in :func:`expected_calibration_error`. Uniform bins are
        left-closed, ``[b / B, (b + 1) / B)`` (torchmetrics' convention; the
        last bin holds 1.0), where scikit-learn's ``calibration_curve`` is
        right-closed: a score exactly on an edge (``k / 10`` from a 10-tree
        forest) lands one bin higher here, so the curves and the ECE can differ.
    class_index : int, optional
        None: the top-label view (confidence of the predicted class, accuracy of
        the prediction). An int ``k``: class ``k`` against the rest (confidence
        ``p_k``, "accuracy" = fraction of rows whose label is ``k``).
    sample_weight : array_like of shape (N,), optional

    Returns
    -------
    ReliabilityCurve
        Empty bins have count 0 and NaN confidence and accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import reliability_curve
    >>> c = reliability_curve(np.array([0, 1]), np.array([[0.9, 0.1], [0.3, 0.7]]), n_bins=5)
    >>> c.counts
    array([0, 0, 0, 1, 1])
    """
    classes = "top_label" if class_index is None else class_index
    return _binned(y, probs, n_bins=n_bins, binning=binning, sample_weight=sample_weight, classes=classes).curves[0]
