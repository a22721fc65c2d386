"""Split-conformal prediction sets with a finite-sample coverage guarantee.

A calibrated probability is right on average; a conformal *set* comes with a
guarantee for each prediction: the true class is in the set for at least
``1 - alpha`` of future rows. :class:`ConformalClassifier` learns one threshold
from held-out calibration rows (logits or probabilities from any model, or a
fitted scikit-learn classifier) and turns each new row's probabilities into
the set of classes that cannot be ruled out at that level.

The recipe (split conformal; Vovk et al. 2005, Papadopoulos et al. 2002):

1. A *score* ``s(x, y)`` says how badly class ``y`` fits row ``x`` (large =
   implausible). Compute it for each of the ``n`` calibration rows and its
   true class.
2. With ``k = ceil((n + 1)(1 - alpha))``, the threshold ``q`` is the ``k``-th
   smallest of those ``n`` scores (the empirical quantile at level ``k / n``).
3. The set of a new row is ``{y : s(x, y) <= q}``.

If the calibration rows and the new row are exchangeable (e.g. drawn from the
same distribution, independently of the model's training data), then
``P(y in set) >= 1 - alpha``, for any model and any ``n``. If the scores have
no ties (true for the randomised scores) the coverage is also at most
``1 - alpha + 1 / (n + 1)``. Both bounds are over the draw of the calibration
and the test rows together; one calibration set's coverage varies around them
(it follows a Beta distribution; Angelopoulos & Bates 2021, sec. 3.2).

Scores
------
Classes are ranked by decreasing probability (ties by class index);
``before(y)`` is the probability of the classes ranked before ``y`` and
``rank(y)`` is 1-based. ``u`` is one uniform draw per row (0 when not
randomised).

====  ============================================================  ===================================
lac   ``1 - p_y``                                                   smallest sets on average (Sadinle
                                                                    et al. 2019); sets can be empty
aps   ``before(y) + u p_y``                                         adaptive: wide where the model is
                                                                    unsure (Romano et al. 2020)
raps  ``before(y) + u p_y + lambda_ max(0, rank(y) - k_reg)``       APS with a penalty on long sets
                                                                    (Angelopoulos et al. 2021)
====  ============================================================  ===================================

The set is always exactly ``{y : s(x, y) <= q}`` with the same score at
calibration and prediction. For APS/RAPS the score never decreases down the
ranking, so a set is the top ``L`` classes. Without randomisation (``u = 0``)
the top class is always in the set and the coverage is only bounded below
(a right top-1 answer scores exactly 0, and ties loosen the upper bound);
with it, the guarantee is tight.

Mondrian (class-conditional) coverage, ``class_conditional=True``, applies
the same rule within each class: class ``c`` gets its own threshold from the
calibration rows labelled ``c``, and ``P(c in set | y = c) >= 1 - alpha`` holds
for every class, at the price of larger sets for rare classes.

Metrics of sets (coverage overall and per class, sizes, the size histogram,
coverage by set size) are the functions at the end of this module, collected
by :func:`set_metrics`.

References
----------
Angelopoulos & Bates, "A Gentle Introduction to Conformal Prediction and
Distribution-Free Uncertainty Quantification", 2021. arXiv:2107.07511.
Romano, Sesia & Candès, "Classification with Valid and Adaptive Coverage",
NeurIPS 2020. Angelopoulos, Bates, Malik & Jordan, "Uncertainty Sets for Image
Classifiers using Conformal Prediction", ICLR 2021. Sadinle, Lei & Wasserman,
"Least Ambiguous Set-Valued Classifiers with Bounded Error Levels", JASA 2019.
Vovk, Gammerman & Shafer, "Algorithmic Learning in a Random World", 2005.
"""

from __future__ import annotations

import math
import numbers
import warnings
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from softmaxkit._calibration_inputs import (
    INPUTS,
    check_choice,
    check_labels,
    check_logits,
    check_probs,
    row_sum_tolerance,
)
from softmaxkit._validation import to_numpy
from softmaxkit.io import Persistable

__all__ = [
    "ConformalClassifier",
    "ConformalWarning",
    "ThinClassWarning",
    "conformal_quantile",
    "conformity_scores",
    "prediction_sets",
    "coverage",
    "class_coverage",
    "set_sizes",
    "mean_set_size",
    "set_size_histogram",
    "coverage_by_set_size",
    "set_metrics",
    "set_labels",
    "SetCounts",
]

SCORES = ("lac", "aps", "raps")


class ConformalWarning(UserWarning):
    """A conformal result is weaker than asked.

    ``alpha`` is too small for the number of calibration rows (every class is
    in every set), a class has no calibration row (its coverage is not
    guaranteed), or a predictor whose ``random_state`` is a NumPy stream is
    saved (the stream is not saved, so the loaded predictor's randomised sets
    differ).
    """


class ThinClassWarning(ConformalWarning):
    """``alpha`` is too small for one class's calibration rows under ``class_conditional=True``: that
    class has no finite threshold and is in every set at that level. Its own class, so that a caller
    that says it otherwise (the CLI, once per level for all such classes) can silence it by category."""


class NotFittedError(ValueError, AttributeError):
    """A conformal classifier was used before ``fit``."""


# --------------------------------------------------------------------------- the functional layer


def _check_alpha(alpha: Any) -> tuple[np.ndarray, bool]:
    """``(levels as a float64 array, whether alpha was a scalar)``; each in the open interval (0, 1).

    A 0-d array (``np.asarray(0.1)``, a config value passed through NumPy) is a scalar.
    """
    if isinstance(alpha, np.ndarray) and alpha.ndim == 0:
        alpha = alpha.item()  # a Python scalar, checked below like any other (a 0-d bool stays a bool)
    scalar = isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)
    values = [alpha] if scalar else (list(alpha) if isinstance(alpha, (list, tuple, np.ndarray)) else None)
    if not values:
        raise ValueError(f"alpha must be a float in (0, 1) or a non-empty list of them, got {alpha!r}")
    for v in values:
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not 0.0 < float(v) < 1.0:
            raise ValueError(f"alpha must be in (0, 1) (the share of rows allowed to miss), got {v!r}")
    return np.asarray(values, dtype=np.float64), scalar


def _rank_needed(n: int, alpha: float) -> int:
    """``ceil((n + 1)(1 - alpha))``, exactly.

    ``alpha`` is read as the decimal it prints as (``0.1`` is 1/10, not the
    binary double just above it), and the product is formed in rational
    arithmetic, so no rounding can move the rank by one.
    """
    a = Fraction(repr(float(alpha)))
    return math.ceil((n + 1) * (1 - a))


def min_calibration_rows(alpha: float) -> int:
    """The fewest calibration rows whose threshold at ``alpha`` is finite (:func:`_rank_needed` ``<= n``):
    ``n >= 1/alpha - 1``, with ``alpha`` read as :func:`_rank_needed` reads it (9 rows at 0.1, 19 at 0.05)."""
    return max(0, math.ceil(1 / Fraction(repr(float(alpha)))) - 1)


#: How a seeded predictor draws the uniforms of randomised APS/RAPS (:meth:`ConformalClassifier._uniform_draws`),
#: recorded in saved files: a hash of the seed, the row's probabilities and its position. Change it
#: whenever a seed would draw other uniforms, so that files of the old scheme warn when loaded.
UNIFORMS_SCHEME = "row-hash-1"


def _decimal_at_least(m: int) -> str:
    """``1/m`` rounded *up* to 4 significant digits: a level that is enough (``1/41`` is 0.02439024..., and
    alpha=0.02439, its nearest 4 digits, is still too small)."""
    from decimal import ROUND_CEILING, Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec, ctx.rounding = 4, ROUND_CEILING
        return f"{(Decimal(1) / Decimal(m)).normalize():f}"


def _rounding_note(alpha: float, n: int) -> str:
    """Where ``alpha`` is ``1/(n+1)`` up to float rounding but its value lies below it (``1/21`` as a float is
    0.047619047619047616 < 1/21), a sentence saying so: the advice "alpha >= 1/(n+1)" reads like what the
    user typed (audit AI)."""
    if Fraction(repr(alpha)) < Fraction(1, n + 1) and math.isclose(alpha, 1 / (n + 1), rel_tol=1e-9):
        return (f"{alpha!r} is below 1/(n+1) = 1/{n + 1} only by float rounding (1/{n + 1} has no exact binary "
                "value, and alpha is read as the decimal it prints as). ")
    return ""


def _quantiles(sorted_scores: np.ndarray, alphas: np.ndarray, *, label: Any = None) -> np.ndarray:
    """Thresholds (A,) from ascending scores; ``+inf`` (with a warning) where alpha is too small.

    ``label`` names the class of a class-conditional block (None: marginal).
    """
    n = len(sorted_scores)
    out = np.empty(len(alphas))
    for i, a in enumerate(alphas):
        k = _rank_needed(n, a)
        if k > n:
            out[i] = np.inf
            rows, outcome = "calibration rows", "every class is in every set"
            if label is not None:
                rows, outcome = f"calibration rows of class {label!r}", f"class {label!r} is in every set"
            warnings.warn(
                f"alpha={float(a)!r} is too small for n={n} {rows}: the guarantee needs the k-th smallest of the "
                f"n scores with k = ceil((n+1)(1-alpha)) = {k} > n, so {outcome}. "
                + (f"{_rounding_note(float(a), n)}Use alpha >= 1/(n+1) = {_decimal_at_least(n + 1)} (1/{n + 1}, "
                   f"rounded up), or more {rows}." if n else f"Add {rows}."),
                ConformalWarning if label is None else ThinClassWarning,
                stacklevel=4,
            )
        else:
            out[i] = sorted_scores[k - 1]
    return out


def conformal_quantile(scores: Any, alpha: Any = 0.1) -> Any:
    """The split-conformal threshold: the ``ceil((n+1)(1-alpha))``-th smallest score.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Calibration scores (larger = the true class fits worse).
    alpha : float or list of float
        Miss rates in (0, 1).

    Returns
    -------
    float, or ndarray of shape (len(alpha),)
        ``+inf`` for a level with ``ceil((n+1)(1-alpha)) > n`` (too few rows
        for that level: the set must hold every class), with a
        :class:`ConformalWarning`.

    Notes
    -----
    This is ``np.quantile(scores, k / n, method="lower")`` with
    ``k = ceil((n+1)(1-alpha))``, computed by an exact rank (see
    :func:`_rank_needed`) rather than a floating-point level. With the set
    rule ``s <= q`` (ties included) the coverage is at least ``1 - alpha``
    even when scores tie.
    """
    s = np.asarray(to_numpy(scores, "scores"), dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        i = int(np.argmax(~np.isfinite(s)))
        raise ValueError(f"scores must be finite; scores[{i}] = {float(s[i])!r}")
    alphas, scalar = _check_alpha(alpha)
    q = _quantiles(np.sort(s), alphas)
    return float(q[0]) if scalar else q


def _probs_array(X: Any, name: str) -> np.ndarray:
    """Contiguous float32/float64 (n, C) probabilities; shape and dtype checked, values NOT yet.

    The values are checked in the pass of the kernel that reads them (see
    :func:`_refuse_bad_probs`): at 50,000 x 1000 one read of the matrix is
    most of the LAC fit, so the check must not add a second one. Inputs that
    need converting (1-D binary probabilities, float16, an empty array) go
    through :func:`~softmaxkit._calibration_inputs.check_probs` here, which
    checks them in full.
    """
    p = to_numpy(X, name)
    if p.ndim != 2 or p.dtype not in (np.float32, np.float64) or p.shape[1] == 0 or p.size == 0:
        p = check_probs(X, name)
        if p.dtype not in (np.float32, np.float64):
            p = p.astype(np.float32)  # float16: exact in float32, which the kernels take
    if p.shape[1] < 2:
        # One column sums to 1 in every row, so every set would hold it: refused as logits are (check_logits).
        raise ValueError(f"{name} must have at least 2 classes (columns), got shape {p.shape}")
    return np.ascontiguousarray(p)  # free when already contiguous


def _bit_pattern(p: np.ndarray) -> tuple[np.ndarray, Any]:
    """``p`` viewed as unsigned integers of its width, and the pattern of 1.0: the kernels' range check."""
    if p.dtype == np.float64:
        return p.view(np.uint64), np.uint64(0x3FF0000000000000)
    return p.view(np.uint32), np.uint32(0x3F800000)


def _refuse_bad_probs(source: tuple[Any, str] | None, sums: np.ndarray, bad: np.ndarray, dtype: Any) -> None:
    """Raise if a kernel's row checks (``sums`` and ``bad`` per row) found rows that are not probabilities.

    ``source`` is ``(the caller's array, its name)``, or None for probabilities
    that softmaxkit computed itself (a softmax of checked logits). Same rules
    as :func:`~softmaxkit._calibration_inputs.check_probs` (entries in [0, 1],
    rows summing to 1 within the tolerance of the caller's dtype), which runs
    only to word the error: it names the first bad entry or row. (It returns
    for a ``-0.0``, which the kernels' bit test flags but is a valid 0.)
    """
    if source is None or sums.size == 0:
        return
    X, name = source
    # the tolerance follows the caller's dtype (a bfloat16 tensor arrives here as float32)
    tolerance = row_sum_tolerance(getattr(X, "dtype", dtype))
    if bad.any() or not np.abs(sums - 1.0).max() <= tolerance:
        check_probs(X, name)


def _check_rows(p: np.ndarray, source: tuple[Any, str] | None) -> None:
    """The probability checks of :func:`_refuse_bad_probs` on their own pass (for kernels that do not fuse them)."""
    if source is not None:
        from softmaxkit.kernels import conformal as kernels

        sums, bad = kernels.pick("row_checks", p.size)(p, *_bit_pattern(p))
        _refuse_bad_probs(source, sums, bad, p.dtype)


def _check_score_options(score: Any, k_reg: Any, lambda_: Any) -> tuple[str, int, float]:
    score = check_choice(score, SCORES, "score")
    if not isinstance(k_reg, numbers.Integral) or isinstance(k_reg, bool) or k_reg < 0:
        raise ValueError(f"k_reg must be an int >= 0 (set sizes up to k_reg are not penalised), got {k_reg!r}")
    if not isinstance(lambda_, numbers.Real) or isinstance(lambda_, bool) or not 0.0 <= float(lambda_) < math.inf:
        raise ValueError(f"lambda_ must be a finite float >= 0, got {lambda_!r}")
    if score != "raps":
        lambda_ = 0.0  # APS is RAPS without the penalty; LAC ignores both
    return score, int(k_reg), float(lambda_)


def _check_u(u: Any, n: int) -> np.ndarray:
    if u is None:
        return np.zeros(n)
    arr = np.ascontiguousarray(to_numpy(u, "u"), dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"u must have shape ({n},) (one uniform per row), got {arr.shape}")
    if not np.all((arr >= 0) & (arr <= 1)):
        i = int(np.argmax(~((arr >= 0) & (arr <= 1))))
        raise ValueError(f"u must hold numbers in [0, 1]; u[{i}] = {float(arr[i])!r}")
    return arr


def conformity_scores(
    probs: Any, y: Any, *, score: str = "lac", u: Any = None, k_reg: int = 1, lambda_: float = 0.0
) -> np.ndarray:
    """Scores ``s(x_i, y_i)`` of each row's true class (see the module docstring for the formulas).

    Parameters
    ----------
    probs : array-like of shape (n, C)
        Probabilities (rows sum to 1).
    y : array-like of int, shape (n,)
        True classes, 0..C-1.
    score : {"lac", "aps", "raps"}
    u : array-like of shape (n,), optional
        Uniforms in [0, 1] for the randomised APS/RAPS score; None means 0
        (not randomised). Ignored by LAC.
    k_reg, lambda_ : RAPS penalty ``lambda_ * max(0, rank - k_reg)``.

    Returns
    -------
    ndarray of shape (n,), float64
    """
    p = _probs_array(probs, "probs")
    labels = check_labels(y, p.shape[1], p.shape[0])
    score, k_reg, lambda_ = _check_score_options(score, k_reg, lambda_)
    return _true_class_scores(p, labels, score, _check_u(u, p.shape[0]), k_reg, lambda_, source=(probs, "probs"))


def _true_class_scores(p: np.ndarray, y: np.ndarray, score: str, u: np.ndarray, k_reg: int, lam: float, *,
                       source: tuple[Any, str] | None) -> np.ndarray:
    """Scores (n,) of the true classes; ``p`` from :func:`_probs_array`, checked here against ``source``."""
    from softmaxkit.kernels import conformal as kernels

    if score == "lac":  # the check and the score in one pass
        sums, bad, scores = kernels.pick("lac_scores", p.size)(p, *_bit_pattern(p), y)
        _refuse_bad_probs(source, sums, bad, p.dtype)
        return scores
    _check_rows(p, source)
    return kernels.pick("true_class_scores", p.size)(p, y, u, k_reg, lam)


def prediction_sets(
    probs: Any, thresholds: Any, *, score: str = "lac", u: Any = None, k_reg: int = 1, lambda_: float = 0.0
) -> np.ndarray:
    """The sets ``{y : s(x, y) <= threshold}`` as a boolean mask.

    Parameters
    ----------
    probs : array-like of shape (n, C), C >= 2
    thresholds : float or array of shape (A,), (1, A) or (C, A)
        One threshold for every class, or thresholds broadcast to (C, A):
        ``A`` levels shared by every class ((A,) or (1, A), as from
        :func:`conformal_quantile` or a marginal
        :meth:`ConformalClassifier.threshold` with a list of levels), or one
        per class and level (a class-conditional
        :meth:`ConformalClassifier.threshold` with a list of levels). A
        class-conditional ``threshold(alpha)`` for one level has shape (C,):
        pass it as ``t[:, None]``, shape (C, 1). A 1-D array of length C is
        refused as ambiguous (per class, or C levels?): write ``t[:, None]``
        for per-class thresholds or ``t[None, :]`` for C levels.
    score, u, k_reg, lambda_ : as in :func:`conformity_scores`; ``u`` has one
        uniform per row, shared by its classes and levels (so the sets are
        nested in the level).

    Returns
    -------
    ndarray of bool, shape (n, C) for a scalar threshold, else (n, C, A)

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.conformal import ConformalClassifier, prediction_sets
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), 400)
    >>> y = rng.integers(0, 3, 400)
    >>> cp = ConformalClassifier(input="probs", class_conditional=True).fit(p[:300], y[:300])
    >>> t = cp.threshold(0.1)                      # one per class
    >>> t.shape
    (3,)
    >>> sets = prediction_sets(p[300:], t[:, None])  # (n, C, 1): one level
    >>> bool((sets[:, :, 0] == cp.predict_sets(p[300:], 0.1)).all())
    True
    """
    p = _probs_array(probs, "probs")
    score, k_reg, lambda_ = _check_score_options(score, k_reg, lambda_)
    t = np.asarray(to_numpy(thresholds, "thresholds"), dtype=np.float64)
    scalar = t.ndim == 0
    c = p.shape[1]
    if t.ndim == 1 and t.size == c:
        # A class-conditional threshold(alpha) has this shape too: read as levels, its sets came back
        # (n, C, C) and their coverage per "level", without a word (audit).
        raise ValueError(
            f"thresholds of shape ({c},) with {c} classes is ambiguous: one threshold per class (what a "
            f"class-conditional ConformalClassifier.threshold(alpha) returns) or {c} levels? Pass t[:, None] "
            f"(shape ({c}, 1)) for one threshold per class, or t[None, :] (shape (1, {c})) for {c} levels "
            "shared by every class"
        )
    if t.ndim <= 1:
        t = np.broadcast_to(t.reshape(1, -1), (c, t.size))
    elif t.ndim == 2 and t.shape[0] == 1:
        t = np.broadcast_to(t, (c, t.shape[1]))
    elif t.ndim != 2 or t.shape[0] != c:
        raise ValueError(f"thresholds must be a float, or of shape (A,), (1, A) or ({c}, A) (one per class and "
                         f"level), got shape {t.shape}")
    if np.isnan(t).any():
        raise ValueError("thresholds must not be NaN")
    out = _sets(p, np.ascontiguousarray(t), score, _check_u(u, p.shape[0]), k_reg, lambda_, source=(probs, "probs"))
    return out[:, :, 0] if scalar else out


def _sets(p: np.ndarray, thresholds: np.ndarray, score: str, u: np.ndarray, k_reg: int, lam: float, *,
          source: tuple[Any, str] | None) -> np.ndarray:
    """(n, C, A) mask; ``p`` from :func:`_probs_array`, checked here against ``source``; ``thresholds`` is (C, A)."""
    from softmaxkit.kernels import conformal as kernels

    out = _empty_sets(score, *p.shape, thresholds.shape[1])
    if score == "lac":  # the check and the sets in one pass
        sums, bad = kernels.pick("lac_sets", p.size)(p, *_bit_pattern(p), np.ascontiguousarray(thresholds.T),
                                                     out.transpose(2, 0, 1))
        _refuse_bad_probs(source, sums, bad, p.dtype)
        return out
    _check_rows(p, source)
    kernels.pick("adaptive_sets", p.size)(p, u, k_reg, lam, thresholds, out)
    return out


def _empty_sets(score: str, n: int, c: int, levels: int) -> np.ndarray:
    """An uninitialised (n, C, A) mask in the layout ``score``'s kernel writes: level-major (A, n, C)
    memory for LAC (its (n, C, A) view is contiguous for one level), (n, C, A) for APS/RAPS."""
    if score == "lac":
        return np.empty((levels, n, c), dtype=bool).transpose(1, 2, 0)
    return np.empty((n, c, levels), dtype=bool)


#: Probabilities per row block of a float64 softmax (32 MB): fits, sets and set counts of logits never
#: hold the softmax of the whole matrix (at 200,000 x 1000 it was 1.6 GB per call; audit AC). Not
#: smaller: each block is one fork and join of the kernels' threads (at 8 MB blocks a 50,000 x 1000
#: LAC fit took 1.2 s for 0.4 s on a loaded 2-core machine; 0.54 s at 32 MB).
BLOCK_ELEMENTS = 1 << 22


def _row_blocks(n: int, c: int) -> list[tuple[int, int]]:
    """``(start, stop)`` row blocks of about :data:`BLOCK_ELEMENTS` values (at least one block, possibly empty).

    A last block smaller than the kernels' size thresholds (NumPy vs numba softmax,
    serial vs parallel) is merged into the one before it, so every block runs the
    kernels the whole matrix would: the same probabilities to the last bit, and so
    the same sets and uniforms whatever the blocking.
    """
    from softmaxkit.kernels import CPU_MIN_ELEMENTS
    from softmaxkit.kernels.conformal import PARALLEL_MIN_ELEMENTS

    rows = max(1, BLOCK_ELEMENTS // max(c, 1))
    starts = list(range(0, n, rows)) or [0]
    if len(starts) > 1 and (n - starts[-1]) * c < max(CPU_MIN_ELEMENTS, PARALLEL_MIN_ELEMENTS):
        starts.pop()
    return list(zip(starts, [*starts[1:], n]))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: splitmix64's increment


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (a bijection; every input bit flips ~half the output)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _row_uniforms(p: np.ndarray, key: np.uint64, *, first_row: int = 0) -> np.ndarray:
    """A uniform in [0, 1) per row: a hash of the row's probabilities, its position and ``key`` (the seed).

    ``first_row`` is the position of ``p``'s first row in the call's rows (``p`` a block of them).

    The uniform must not depend on the row's position alone: with
    ``default_rng(seed).random(n)``, rows predicted one per call (serving,
    the CLI on one-row files) all got the first draw, one ``u`` for every row,
    and the coverage was the coverage given that ``u`` (0.874 at 90% for seed
    0), not ``1 - alpha``. A hash of the row gives rows of different
    probabilities independent-looking uniforms in any batching, and the same
    rows in the same call the same uniforms (reproducible sets); the position
    separates equal rows within one call.

    Each probability is cut to 21 significant bits (the top half of its
    float64 pattern) before hashing, so the float64 softmax of logits and
    float64 probabilities computed from them elsewhere, a few ulp apart, hash
    alike unless a value lies within those ulp of a cut (about 1e-9 per
    value). (The same probabilities rounded to float32 are other inputs: they
    hash alike only for most rows.)

    Costs about 0.2 ns per value: 21 ms at 100,000 x 100, where the whole
    :meth:`~ConformalClassifier.predict_sets` takes 200-240 ms (2 cores).
    """
    n, c = p.shape
    # A distinct, well-mixed key per column, so equal values in two columns do not cancel in the xor.
    columns = _mix64(np.arange(1, c + 1, dtype=np.uint64) * _GOLDEN)
    rows = max(1, (1 << 15) // c)  # blocks of ~256 KB: each pass below stays in cache (2x faster than whole)
    values = np.empty((min(rows, n), c))
    bits, spare = values.view(np.uint64), np.empty((min(rows, n), c), dtype=np.uint64)
    h = np.empty(n, dtype=np.uint64)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        b, t = bits[:m], spare[:m]
        np.add(p[start:start + m], 0.0, out=values[:m])  # float32 widens exactly; -0.0 + 0.0 is +0.0, a valid 0
        b >>= np.uint64(32)
        # One multiply-xorshift per value (a bijection for each column) is enough before the xor over the
        # row: the full mix of the row's hash below spreads every bit. (The full mix per value costs 2x.)
        b ^= columns
        b *= np.uint64(0xBF58476D1CE4E5B9)
        np.right_shift(b, np.uint64(29), out=t)
        b ^= t
        np.bitwise_xor.reduce(b, axis=1, out=h[start:start + m])
    h ^= key
    h += np.arange(first_row, first_row + n, dtype=np.uint64) * _GOLDEN
    return (_mix64(_mix64(h)) >> np.uint64(11)) * 2.0**-53


class _Probabilities:
    """An (n, C) probability matrix served in row blocks (:func:`_row_blocks`): iterate for
    ``(start, stop, p)``, ``p`` C-contiguous float32/float64.

    From logits (``logits=True``, checked by ``check_logits`` and kept in their
    dtype, so float16 ones are widened a block at a time), each block is
    their float64 softmax, computed as the block is reached in one buffer that
    the next block overwrites (use each block before asking for the next):
    float64 whatever the logits' dtype, because the kernels compare in float64
    and float32 softmax rounding (a few ulp) would move boundary classes, so
    the same logits read from a float32 .npy and from a CSV would get
    different sets. Probabilities given are sliced (``source`` names them for
    the checks).
    """

    def __init__(self, values: np.ndarray, *, logits: bool, source: tuple[Any, str] | None) -> None:
        self.values, self.logits, self.source = values, logits, source
        self.shape = values.shape

    def __iter__(self) -> Any:
        from softmaxkit.functional import softmax

        bounds = _row_blocks(*self.shape)
        if not self.logits:
            yield from ((start, stop, self.values[start:stop]) for start, stop in bounds)
            return
        buffer = np.empty((max(stop - start for start, stop in bounds), self.shape[1]))
        for start, stop in bounds:
            p = buffer[: stop - start]
            np.copyto(p, self.values[start:stop])  # float16/32 widen exactly: softmax(..., dtype=float64)'s input
            yield start, stop, softmax(p, axis=-1, out=p)

    def whole(self) -> np.ndarray:
        """All the rows at once (a float64 softmax of all the logits)."""
        from softmaxkit.functional import softmax

        if not self.logits:
            return self.values
        return np.ascontiguousarray(softmax(self.values, axis=-1, dtype=np.float64))


# --------------------------------------------------------------------------- the estimator


class ConformalClassifier(Persistable):
    """Prediction sets that contain the true class for at least ``1 - alpha`` of rows.

    Split conformal prediction on a model's probabilities: :meth:`fit` learns
    the calibration scores from held-out rows, :meth:`predict_sets` returns,
    for each new row, the classes that cannot be ruled out at level ``alpha``.
    One fit serves every ``alpha``.

    Parameters
    ----------
    score : {"lac", "aps", "raps"}, default="lac"
        The conformity score (see the module docstring). ``"lac"`` gives the
        smallest sets on average; ``"aps"`` and ``"raps"`` adapt the set size
        to how unsure the model is about each row.
    randomized : bool, default=True
        APS/RAPS only: draw one uniform ``u`` per row (calibration and
        prediction alike), which makes the coverage exactly ``1 - alpha`` up
        to ``1 / (n + 1)``. With False, ``u = 0``: sets are deterministic and
        always hold the top class, and the coverage is only bounded below.
        Ignored by LAC, whose sets are deterministic.
    k_reg : int, default=1
        RAPS only: sets up to this size are not penalised.
    lambda_ : float, default=0.01
        RAPS only: the penalty per class beyond ``k_reg`` (``lambda_=0`` is
        APS). Angelopoulos et al. (2021) use ``k_reg`` near the typical rank
        of the true class and ``lambda_`` in 0.001-0.5.
    class_conditional : bool, default=False
        Mondrian conformal prediction: one threshold per class from that
        class's calibration rows, so every class has coverage ``>= 1 - alpha``
        (not only on average over classes).
    input : {"logits", "probs"}, default="logits"
        What :meth:`fit` and :meth:`predict_sets` are given without
        ``estimator``: logits (softmax is applied) or probabilities (rows
        summing to 1). NumPy arrays or torch tensors. Named explicitly rather
        than guessed: a probability matrix is also a valid logit matrix.
    estimator : fitted classifier, optional
        A fitted scikit-learn classifier with ``predict_proba`` (or a
        :class:`~softmaxkit.SoftmaxClassifier`). Then :meth:`fit` and
        :meth:`predict_sets` take features ``X``, and labels are the
        estimator's ``classes_``. It must not have seen the calibration rows.
    random_state : int, numpy Generator or None, default=None
        Seed of the uniforms of the randomised scores. With an int, a row's
        uniform is a hash of the seed, the row's probabilities and its
        position in the call: the same rows in the same call give the same
        sets (also after save and load), and rows of different probabilities
        predicted one per call get independent-looking uniforms. Rows with
        equal probabilities predicted one per call share one uniform, so a
        model with few distinct outputs (categorical features, a class-prior
        model) served one row at a time covers 1 - alpha only on average over
        seeds (one seed: 0.79-0.95 at 90%, review audit); serve such a model
        in batches, or with ``random_state=None``. A Generator (or
        RandomState) is drawn from at each call: its sets are not reproducible
        and it is not saved.

    Attributes
    ----------
    classes_ : ndarray of shape (C,)
        Class labels (``0..C-1`` without an estimator).
    n_classes_ : int
    n_calibration_ : int
        Number of calibration rows.
    calibration_scores_ : ndarray of shape (n_calibration_,)
        The calibration rows' scores, ascending (within each class, classes
        in order, when ``class_conditional``).
    class_counts_ : ndarray of shape (C,)
        Calibration rows per class.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.conformal import ConformalClassifier
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(500, 4)) * 3
    >>> y = np.array([rng.choice(4, p=np.exp(z) / np.exp(z).sum()) for z in logits])
    >>> cp = ConformalClassifier(score="lac").fit(logits[:400], y[:400])
    >>> sets = cp.predict_sets(logits[400:], alpha=0.1)      # (100, 4) bool
    >>> sets.shape, sets.dtype
    ((100, 4), dtype('bool'))
    >>> cp.predict_sets(logits[400:], alpha=[0.1, 0.05]).shape
    (100, 4, 2)
    """

    _param_names = ("score", "randomized", "k_reg", "lambda_", "class_conditional", "input", "random_state")

    def __init__(
        self,
        *,
        score: str = "lac",
        randomized: bool = True,
        k_reg: int = 1,
        lambda_: float = 0.01,
        class_conditional: bool = False,
        input: str = "logits",
        estimator: Any = None,
        random_state: Any = None,
    ) -> None:
        self.score = score
        self.randomized = randomized
        self.k_reg = k_reg
        self.lambda_ = lambda_
        self.class_conditional = class_conditional
        self.input = input
        self.estimator = estimator
        self.random_state = random_state

    # ---- inputs

    def _options(self) -> tuple[str, int, float]:
        for name in ("randomized", "class_conditional"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        return _check_score_options(self.score, self.k_reg, self.lambda_)

    def _probs(self, X: Any, name: str) -> tuple[np.ndarray, tuple[Any, str] | None]:
        """``(p, source)``: the whole (n, C) probabilities of :meth:`_blocks` in one array (and their source)."""
        probs = self._blocks(X, name)
        return probs.whole(), probs.source

    def _blocks(self, X: Any, name: str) -> "_Probabilities":
        """(n, C) probabilities from logits, probabilities or the estimator's features, served in row blocks.

        The values are checked by the kernel that reads them
        (:func:`_true_class_scores`, :func:`_sets`) against the result's
        ``source``, ``(the array given, its name)``; None for softmaxkit's own
        softmax of checked logits, which is computed one block at a time.
        """
        if self.estimator is not None:
            if self.input != "logits":
                raise ValueError("input= applies only without an estimator (the estimator gives probabilities)")
            if not hasattr(self.estimator, "predict_proba"):
                raise TypeError(f"estimator {type(self.estimator).__name__} has no predict_proba")
            name = f"{type(self.estimator).__name__}.predict_proba({name})"
            X = self.estimator.predict_proba(X)
        elif check_choice(self.input, INPUTS, "input") == "logits":
            # Not widened: each block is copied into float64 anyway (_Probabilities), so float16 logits
            # are never held as a whole float32 copy.
            return _Probabilities(check_logits(X, name, widen=False), logits=True, source=None)
        return _Probabilities(_probs_array(X, name), logits=False, source=(X, name))

    def _label_indices(self, y: Any, n_classes: int, n_rows: int) -> np.ndarray:
        if self.estimator is None:
            return check_labels(y, n_classes, n_rows)
        labels = np.asarray(to_numpy(y, "y"))
        if labels.shape != (n_rows,):
            raise ValueError(f"y must have shape ({n_rows},), got {labels.shape}")
        classes = np.asarray(self.estimator.classes_)
        order = np.argsort(classes, kind="stable")
        try:
            pos = np.clip(np.searchsorted(classes[order], labels), 0, len(classes) - 1)
        except TypeError:  # e.g. integer labels for text classes: numpy cannot order them together
            raise ValueError(f"y holds {labels.dtype} labels but the estimator's classes_ are "
                             f"{classes.dtype}: {classes.tolist()[:20]}") from None
        bad = classes[order][pos] != labels
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(
                f"y[{i}] = {labels[i].item()!r} is not one of the estimator's classes_ {classes.tolist()[:20]}"
            )
        return order[pos].astype(np.int64)

    def _uniforms(self, p: np.ndarray, stream: int) -> np.ndarray:
        """The uniforms of :meth:`_uniform_draws` for all the rows of ``p`` at once."""
        return self._uniform_draws(len(p), stream)(0, p)

    def _uniform_draws(self, n: int, stream: int) -> Any:
        """``uniforms(start, p)``: one uniform per row of the block ``p`` (rows ``start`` on of ``n``) for the
        randomised scores (zeros when not randomised).

        With an int ``random_state`` each row's uniform is :func:`_row_uniforms`
        of its probabilities, its position and the seed; ``stream`` (0 for
        calibration, 1 for prediction) separates the two uses of one seed.
        A stream draws all ``n`` at once, so blocks get the draws one call would.
        """
        if self.score == "lac" or not self.randomized:
            return lambda start, p: np.zeros(len(p))
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):  # a fresh seed from the caller's stream at each call
            drawn = np.random.default_rng([int(rs.randint(2**63 - 1, dtype=np.int64)), stream]).random(n)
        elif isinstance(rs, np.random.Generator):
            drawn = rs.random(n)
        elif rs is None:
            drawn = np.random.default_rng().random(n)
        else:
            if not isinstance(rs, numbers.Integral) or isinstance(rs, bool) or rs < 0:
                raise ValueError(f"random_state must be an int >= 0, a numpy Generator or None, got {rs!r}")
            key = np.random.default_rng([int(rs), stream]).integers(0, 2**64, dtype=np.uint64, endpoint=False)
            return lambda start, p: _row_uniforms(p, key, first_row=start)
        return lambda start, p: drawn[start:start + len(p)]

    # ---- fit / predict

    def fit(self, X: Any, y: Any) -> "ConformalClassifier":
        """Learn the calibration scores.

        Parameters
        ----------
        X : array-like of shape (n, C)
            Logits or probabilities of held-out rows (see ``input``), or their
            features when an ``estimator`` is given.
        y : array-like of shape (n,)
            True classes: indices 0..C-1, or the estimator's labels.

        Returns
        -------
        self
        """
        score, k_reg, lam = self._options()
        probs = self._blocks(X, "X")
        n, c = probs.shape
        if n == 0:
            raise ValueError("cannot fit a conformal classifier on 0 calibration rows")
        labels = self._label_indices(y, c, n)
        uniforms = self._uniform_draws(n, 0)
        scores = np.empty(n)
        for start, stop, p in probs:
            scores[start:stop] = _true_class_scores(p, labels[start:stop], score, uniforms(start, p), k_reg, lam,
                                                    source=probs.source)
        counts = np.bincount(labels, minlength=c)
        self.classes_ = np.asarray(self.estimator.classes_) if self.estimator is not None else np.arange(c)
        self._warn_absent_classes(counts)
        if self.class_conditional:
            scores = scores[np.lexsort((scores, labels))]  # by class, then score
        else:
            scores = np.sort(scores)
        self.calibration_scores_ = np.ascontiguousarray(scores)
        self.class_counts_ = counts.astype(np.int64)
        self.n_calibration_ = int(n)
        self.n_classes_ = int(c)
        return self

    def _warn_absent_classes(self, counts: np.ndarray) -> None:
        """A :class:`ConformalWarning` naming the classes no calibration row holds, and what that does to
        their coverage (audit AI: labels of one class of 10 gave sets of 8.98 classes without a word;
        MAPIE warns). Named by ``classes_`` with an estimator, else by ``class_names_`` where the caller
        set them before the fit (the CLI does), else by column index."""
        missing = np.flatnonzero(counts == 0)
        if not len(missing):
            return
        names = getattr(self, "class_names_", None) if self.estimator is None else self.classes_.tolist()
        if names is None or len(names) != len(counts):
            names = self.classes_.tolist()
        shown = [repr(names[j]) if isinstance(names[j], str) else str(names[j]) for j in missing]
        from softmaxkit._loss_interval import name_list

        # the first few and a count: 30,000 absent classes of a 32k vocabulary made a 250 KB line (audit CE)
        which = f"class {shown[0]} has" if len(shown) == 1 else f"classes {name_list(shown, noun='classes')} have"
        them = "it" if len(shown) == 1 else "them"
        if self.class_conditional:
            outcome = (f"no threshold can be learnt for {them}, so {them} will be in every set (with a "
                       "ConformalWarning at each level)")
        else:
            outcome = (f"the threshold is learnt without {them}, so the coverage guarantee, which is for rows like "
                       f"the calibration rows, says nothing about new rows of {them}: such a row is in its set only "
                       "when its score passes a threshold the other classes set, and its coverage can be far below "
                       "the level")
        warnings.warn(f"{which} no row among the {int(counts.sum())} calibration rows: {outcome}. Calibrate on "
                      "rows that hold every class the model predicts", ConformalWarning, stacklevel=3)

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibration_scores_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def threshold(self, alpha: Any = 0.1) -> Any:
        """The score threshold ``q`` at each level: a class is in a set when its score is ``<= q``.

        Returns
        -------
        float, ndarray (A,), ndarray (C,) or ndarray (C, A)
            Scalar ``alpha`` without / with ``class_conditional``, then a list
            of levels without / with it. ``+inf`` (with a
            :class:`ConformalWarning`) where the level needs more calibration
            rows than there are. For LAC, a class is in the set when its
            probability is at least ``1 - q``. Give the class-conditional
            (C,) to :func:`prediction_sets` as ``t[:, None]``: it reads a 1-D
            array as levels (and refuses one of length C as ambiguous).
        """
        self._check_fitted()
        alphas, scalar = _check_alpha(alpha)
        t = self._thresholds(alphas)
        if not self.class_conditional:
            t = t[0]
        return (t[..., 0] if t.ndim == 2 else float(t[0])) if scalar else t

    def _thresholds(self, alphas: np.ndarray) -> np.ndarray:
        """(C, A) thresholds; the same row for every class unless class-conditional."""
        c = self.n_classes_
        if not self.class_conditional:
            q = _quantiles(self.calibration_scores_, alphas)
            return np.ascontiguousarray(np.broadcast_to(q, (c, len(alphas))))
        out = np.empty((c, len(alphas)))
        for j, block in enumerate(self._class_blocks()):
            out[j] = _quantiles(block, alphas, label=self.classes_[j].item())
        return out

    def _class_blocks(self) -> list[np.ndarray]:
        """Each class's ascending calibration scores (class-conditional fits)."""
        stops = np.cumsum(self.class_counts_)
        return [self.calibration_scores_[stop - count: stop] for stop, count in zip(stops, self.class_counts_)]

    def coverage_range(self, alpha: float) -> tuple[float, float | None]:
        """What split conformal guarantees for the expected coverage at ``alpha``.

        The coverage averaged over calibration draws is at least ``1 - alpha``,
        and at most ``1 - alpha + 1/(n + 1)`` when the scores cannot tie (a
        continuous score distribution), ``n`` the rows the threshold came from
        (each class's rows when ``class_conditional``; the largest of the class
        bounds then bounds the mixture) [1]_.

        Returns
        -------
        (lower, upper) : (float, float or None)
            ``upper`` is None where that bound does not hold: two equal
            calibration scores anywhere (in one class's rows when
            ``class_conditional``), the sign of a discrete score (LAC on
            saturated probabilities or on a model with few distinct
            probabilities, non-randomised APS/RAPS, whose right top-1 rows all
            score 0), or too few rows for ``alpha`` (every class in every set).
            Coverage can then be well above ``1 - alpha`` (audit: 0.954 at 90%,
            200 rows, where the bound said 0.905). A tie away from the
            threshold counts too: in other calibration draws the threshold
            lands on it (audit: probabilities on a 5-point grid, 20 rows, mean
            coverage 0.891 where the bound said 0.848).

        References
        ----------
        .. [1] Angelopoulos & Bates, "A Gentle Introduction to Conformal Prediction and
           Distribution-Free Uncertainty Quantification", 2021, Theorem D.1 and D.2.
        """
        self._check_fitted()
        (a,), _ = _check_alpha(alpha)
        blocks = self._class_blocks() if self.class_conditional else [self.calibration_scores_]
        upper = 0.0
        for block in blocks:
            m = len(block)
            k = _rank_needed(m, a)
            # Blocks are sorted, so equal scores are neighbours. Any tie, not only one at rank k: the bound
            # is over calibration draws, and a tie elsewhere in this draw means the scores have atoms.
            if k > m or np.any(block[1:] == block[:-1]):
                return 1.0 - float(a), None
            upper = max(upper, 1.0 - float(a) + 1.0 / (m + 1))
        return 1.0 - float(a), min(1.0, upper)

    def predict_sets(self, X: Any, alpha: Any = 0.1, *, calibration_rows: bool = False) -> np.ndarray:
        """The prediction set of each row as a boolean mask.

        Parameters
        ----------
        X : array-like of shape (n, C)
            Logits or probabilities (see ``input``), or features with an ``estimator``.
        alpha : float or list of float, default=0.1
            Allowed miss rate: the set holds the true class for at least
            ``1 - alpha`` of rows. A list gives one set per level from the
            same calibration.
        calibration_rows : bool, default=False
            ``X`` is what :meth:`fit` was given, in the same order: see :meth:`set_counts`.

        Returns
        -------
        ndarray of bool
            Shape (n, C) for a float ``alpha``; (n, C, len(alpha)) for a list
            (MAPIE's layout). Column ``j`` is class ``classes_[j]``. Sets are
            nested: a smaller ``alpha`` never gives a smaller set.

        Warns
        -----
        ConformalWarning
            ``ceil((n+1)(1-alpha)) > n``: too few calibration rows for that
            level, so its sets hold every class.
        """
        alphas, scalar = _check_alpha(alpha)
        n, _, blocks = self._block_sets(X, alphas, calibration_rows=calibration_rows)
        out = None
        for start, stop, part in blocks:
            if stop - start == n:  # one block: the whole mask
                out = part
            else:
                if out is None:
                    out = _empty_sets(self.score, n, *part.shape[1:])
                out[start:stop] = part
        return out[:, :, 0] if scalar else out

    def set_counts(self, X: Any, y: Any, alpha: Any = 0.1, *, calibration_rows: bool = False) -> "SetCounts":
        """Whether each row's set holds its true class, and the set's size, without keeping the sets.

        The sets are those of :meth:`predict_sets`, made and reduced one block of
        rows at a time: memory for (n, A) counts, not an (n, C, A) mask (nor a
        float64 softmax of all the logits). :func:`set_metrics` takes one level of
        them (:meth:`SetCounts.level`) in place of the sets.

        Parameters
        ----------
        X : array-like of shape (n, C)
            As for :meth:`predict_sets`.
        y : array-like of shape (n,)
            True classes: indices 0..C-1, or the estimator's labels.
        alpha : float or list of float, default=0.1
        calibration_rows : bool, default=False
            ``X`` (and ``y``) are the rows :meth:`fit` was given, in the same
            order: the randomised APS/RAPS scores reuse the uniforms of the fit,
            so a row's set holds its true class exactly when its calibration
            score is at most the threshold, and the coverage of these rows is
            at least ``ceil((n+1)(1-alpha)) / n`` (above ``1 - alpha``) by
            construction. By default every call draws the uniforms of new rows:
            the calibration rows' coverage is then about ``1 - alpha``, and
            can be below it (audit: 0.892 at 90% on 1000 rows, APS). Needs an
            int ``random_state`` for randomised scores (a stream's draws are
            not kept). LAC and non-randomised sets are the same either way.

        Returns
        -------
        SetCounts
            ``covered`` and ``sizes`` of shape (n, A), one column per level.
        """
        alphas, _ = _check_alpha(alpha)
        n, labels, blocks = self._block_sets(X, alphas, y=y, calibration_rows=calibration_rows)
        covered = np.empty((n, len(alphas)), dtype=bool)
        sizes = np.empty((n, len(alphas)), dtype=np.int64)
        for start, stop, part in blocks:
            block = SetCounts.of(labels[start:stop], part)
            covered[start:stop], sizes[start:stop] = block.covered, block.sizes
        return SetCounts(covered, sizes, int(self.n_classes_))

    def _block_sets(self, X: Any, alphas: np.ndarray, *, y: Any = None,
                    calibration_rows: bool = False) -> tuple[int, Any, Any]:
        """``(n, class indices of y or None, blocks)``, ``blocks`` yielding ``(start, stop, sets (m, C, A))``
        for each row block of ``X``. ``X``, ``y`` and the options are checked here, before any block.
        ``calibration_rows``: ``X`` is the fit's rows, whose uniforms (stream 0) are drawn again."""
        self._check_fitted()
        score, k_reg, lam = self._options()
        probs = self._blocks(X, "X")
        n, c = probs.shape
        if c != self.n_classes_:
            raise ValueError(f"X has {c} classes but the conformal classifier was fitted on {self.n_classes_}")
        labels = None if y is None else self._label_indices(y, c, n)
        if calibration_rows:
            self._check_calibration_rows(n)
        thresholds = self._thresholds(alphas)
        uniforms = self._uniform_draws(n, 0 if calibration_rows else 1)

        def blocks() -> Any:
            for start, stop, p in probs:
                yield start, stop, _sets(p, thresholds, score, uniforms(start, p), k_reg, lam, source=probs.source)

        return n, labels, blocks()

    def _check_calibration_rows(self, n: int) -> None:
        """Refuse ``calibration_rows=True`` where the fit's uniforms cannot be drawn again for ``n`` rows."""
        if n != self.n_calibration_:
            raise ValueError(f"calibration_rows=True: X has {n} rows but the conformal classifier was fitted on "
                             f"{self.n_calibration_}; pass the rows fit was given, in the same order")
        rs = self.random_state
        seeded = isinstance(rs, numbers.Integral) and not isinstance(rs, bool)
        if self.score != "lac" and self.randomized and not seeded:
            raise ValueError(f"calibration_rows=True needs an int random_state for randomised {self.score.upper()} "
                             f"scores: with random_state={rs!r} the fit's uniforms were not kept")

    # ---- persistence (no pickle: JSON params + arrays)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self._param_names}, "estimator": self.estimator}

    def set_params(self, **params: Any) -> "ConformalClassifier":
        for k, v in params.items():
            if k not in self._param_names and k != "estimator":
                raise ValueError(f"unknown parameter {k!r} for {type(self).__name__}")
            setattr(self, k, v)
        return self

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        if self.estimator is not None:
            raise TypeError(
                "a ConformalClassifier that wraps an estimator cannot be saved (the estimator is not part of "
                "the file); save the estimator on its own, and fit the conformal classifier on its "
                "probabilities with input='probs' to get a savable one"
            )
        params = {k: getattr(self, k) for k in self._param_names}
        rs = params["random_state"]
        seeded = isinstance(rs, numbers.Integral) and not isinstance(rs, bool)
        if not seeded and rs is not None and self.score != "lac" and self.randomized:
            # A stream has no JSON form: the loaded predictor draws fresh uniforms (random_state=None),
            # so its randomised sets differ from this one's. LAC and non-randomised sets do not draw.
            warnings.warn(
                f"random_state is a {type(rs).__name__}, which cannot be saved: the loaded predictor has "
                f"random_state=None and its randomised {self.score.upper()} sets will differ from this one's. "
                "Use an int random_state for reproducible sets",
                ConformalWarning,
                stacklevel=3,
            )
        params["random_state"] = int(rs) if seeded else None
        params["randomized"] = bool(params["randomized"])
        params["class_conditional"] = bool(params["class_conditional"])
        meta = {"params": params, "n_classes": self.n_classes_, "uniforms": UNIFORMS_SCHEME}
        arrays = {"calibration_scores": self.calibration_scores_, "class_counts": self.class_counts_}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "ConformalClassifier":
        obj = cls(**meta["params"])
        obj._options()
        scores = np.asarray(arrays["calibration_scores"], dtype=np.float64)
        counts = np.asarray(arrays["class_counts"])
        c = int(meta["n_classes"])
        if counts.shape != (c,) or counts.dtype.kind not in "iu" or np.any(counts < 0) or counts.sum() != len(scores):
            raise ValueError("class_counts do not match the calibration scores")
        if scores.ndim != 1 or not np.all(np.isfinite(scores)):
            raise ValueError("calibration_scores must be finite and 1-D")
        obj.calibration_scores_ = np.ascontiguousarray(scores)
        obj.class_counts_ = counts.astype(np.int64)
        obj.n_calibration_ = int(len(scores))
        obj.n_classes_ = c
        obj.classes_ = np.arange(c)
        rs = obj.random_state
        seeded = isinstance(rs, numbers.Integral) and not isinstance(rs, bool)
        if meta.get("uniforms") != UNIFORMS_SCHEME and seeded and obj.score != "lac" and obj.randomized:
            # Files without the record predate it, and some predate the row-hash uniforms: the same
            # seed then drew other uniforms (audit AX: 26 of 103 sets at 90% differed, exit 0).
            warnings.warn(
                f"this {obj.score.upper()} predictor was saved before softmaxkit recorded how its "
                f"random_state={rs} draws the randomised scores; if it was saved before the row-hash draws "
                "(commit 23e727b), its sets for new rows differ from the sets it gave then (the coverage "
                "guarantee still holds: the saved calibration scores set the threshold). Save it again to "
                "drop this warning",
                ConformalWarning,
                stacklevel=4,
            )
        return obj

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names)
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- metrics of sets


def _check_sets(y: Any, sets: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(labels (n,), sets (n, C, A) bool)``; a 2-D mask gets a level axis of 1."""
    s = np.asarray(to_numpy(sets, "sets"))
    if s.dtype != bool:
        raise TypeError(f"sets must be a boolean mask, got dtype {s.dtype}")
    if s.ndim not in (2, 3):
        raise ValueError(f"sets must have shape (n, C) or (n, C, A), got {s.shape}")
    labels = check_labels(y, s.shape[1], s.shape[0])
    return labels, (s[:, :, None] if s.ndim == 2 else s)


class SetCounts(NamedTuple):
    """What the metrics of sets read from them, per row and level: whether the set holds the
    true class (``covered``, bool (n, A)) and its size (``sizes``, int64 (n, A)).

    From :meth:`ConformalClassifier.set_counts`, which makes them block by block
    without holding the (n, C, A) sets, or from a mask with :meth:`of`.
    :func:`set_metrics` takes one level of them (:meth:`level`) in place of the sets.
    """

    covered: np.ndarray
    sizes: np.ndarray
    n_classes: int

    @classmethod
    def of(cls, labels: np.ndarray, sets: np.ndarray) -> "SetCounts":
        """The counts of an (n, C, A) mask ``sets`` for class indices ``labels`` (n,)."""
        return cls(sets[np.arange(len(labels)), labels], sets.sum(axis=1), int(sets.shape[1]))

    def level(self, i: int) -> "SetCounts":
        """The counts of level ``i`` alone (shape (n, 1))."""
        return SetCounts(self.covered[:, i : i + 1], self.sizes[:, i : i + 1], self.n_classes)


def _coverage(covered: np.ndarray) -> np.ndarray:
    """Share of rows covered per level (A,); NaN for no rows."""
    return covered.mean(axis=0) if len(covered) else np.full(covered.shape[1], np.nan)


def _class_coverage(labels: np.ndarray, covered: np.ndarray, c: int) -> np.ndarray:
    """Coverage among each true class's rows, (C, A); NaN for a class with no rows."""
    counts = np.bincount(labels, minlength=c).astype(np.float64)
    sums = np.stack([np.bincount(labels, weights=covered[:, a].astype(np.float64), minlength=c)
                     for a in range(covered.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def _size_histogram(sizes: np.ndarray, c: int) -> np.ndarray:
    """Rows with a set of size 0..C per level, (C + 1, A)."""
    return np.stack([np.bincount(sizes[:, a], minlength=c + 1) for a in range(sizes.shape[1])], axis=1)


def _coverage_by_size(covered: np.ndarray, sizes: np.ndarray, c: int) -> np.ndarray:
    """Coverage among the rows of each set size 0..C per level, (C + 1, A); NaN for a size no row has."""
    out = np.empty((c + 1, sizes.shape[1]))
    for a in range(sizes.shape[1]):
        counts = np.bincount(sizes[:, a], minlength=c + 1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, a] = np.bincount(sizes[:, a], weights=covered[:, a].astype(np.float64), minlength=c + 1) / counts
    return out


def _squeeze(value: np.ndarray, sets: Any) -> Any:
    """Drop the level axis again for a 2-D ``sets``: a float for a scalar result."""
    if np.ndim(sets) == 2:
        value = value[..., 0]
        return float(value) if value.ndim == 0 else value
    return value


def coverage(y: Any, sets: Any) -> Any:
    """Share of rows whose set holds the true class.

    Parameters
    ----------
    y : array-like of int, shape (n,)
    sets : bool array of shape (n, C) or (n, C, A)

    Returns
    -------
    float, or ndarray of shape (A,)
    """
    labels, s = _check_sets(y, sets)
    return _squeeze(_coverage(SetCounts.of(labels, s).covered), sets)


def class_coverage(y: Any, sets: Any) -> np.ndarray:
    """Coverage among the rows of each true class: shape (C,) or (C, A); NaN for a class with no rows."""
    labels, s = _check_sets(y, sets)
    return _squeeze(_class_coverage(labels, SetCounts.of(labels, s).covered, s.shape[1]), sets)


def set_sizes(sets: Any) -> np.ndarray:
    """Number of classes in each set: shape (n,) or (n, A)."""
    s = np.asarray(to_numpy(sets, "sets"))
    if s.dtype != bool or s.ndim not in (2, 3):
        raise ValueError(f"sets must be a boolean mask of shape (n, C) or (n, C, A), got {s.dtype} {s.shape}")
    return s.sum(axis=1)


def mean_set_size(sets: Any) -> Any:
    """Average number of classes per set: float, or (A,) for (n, C, A) sets."""
    sizes = set_sizes(sets)
    m = sizes.mean(axis=0)
    return float(m) if np.ndim(m) == 0 else m


def set_size_histogram(sets: Any) -> np.ndarray:
    """Rows with a set of size 0, 1, ..., C: int array of shape (C + 1,) or (C + 1, A)."""
    sizes = set_sizes(sets)
    hist = _size_histogram(sizes.reshape(len(sizes), -1), np.shape(sets)[1])
    return hist[:, 0] if sizes.ndim == 1 else hist


def coverage_by_set_size(y: Any, sets: Any) -> np.ndarray:
    """Coverage among the rows whose set has size 0, 1, ..., C: shape (C + 1,) or (C + 1, A).

    Size-stratified coverage (Angelopoulos et al. 2021, sec. 4): a set method
    can reach 90% overall by over-covering easy rows (singletons right 99% of
    the time) while under-covering hard ones. Coverage that stays near
    ``1 - alpha`` in every size stratum is a sign of adaptive sets. NaN for a
    size no row has; size 0 always has coverage 0.
    """
    labels, s = _check_sets(y, sets)
    counts = SetCounts.of(labels, s)
    return _squeeze(_coverage_by_size(counts.covered, counts.sizes, s.shape[1]), sets)


def set_metrics(y: Any, sets: Any, *, alpha: float | None = None, conformal: ConformalClassifier | None = None,
                classes: Any = None, n_calibration: Any = None) -> dict[str, Any]:
    """All metrics of one level's sets as a JSON-ready dict.

    Parameters
    ----------
    y : array-like of shape (n,)
        True classes as indices 0..C-1; or, with ``conformal=`` that wraps an
        estimator, as the estimator's labels (``conformal.classes_``, e.g.
        text names), which integer indices are not read as.
    sets : bool array of shape (n, C), or SetCounts of one level
        The sets, or their counts (:meth:`ConformalClassifier.set_counts`, then
        :meth:`SetCounts.level`): the same metrics without holding the sets.
    alpha : float, optional
        The level the sets were made for: adds ``target_coverage = 1 - alpha``.
    conformal : ConformalClassifier, optional
        The fitted predictor that made the sets (needs ``alpha``): adds
        ``n_calibration`` and ``guaranteed_range``, its
        :meth:`~ConformalClassifier.coverage_range` at ``alpha`` as a list
        ``[lower, upper]`` for the expected coverage, ``upper`` None where two
        calibration scores are equal or the rows are too few.
    classes : sequence, optional
        Class names for the per-class coverage (default: ``conformal.classes_``
        where it wraps an estimator, else ``0..C-1``).
    n_calibration : None
        Removed: a range from the row count alone assumed untied scores and one
        marginal threshold (with tied LAC scores it said 0.900-0.905 where the
        coverage was 0.954). Pass ``conformal=`` instead; a value raises TypeError.

    Returns
    -------
    dict
        ``n``, ``coverage`` with a Wilson 95% interval (``coverage_ci``: the
        spread of this test set's coverage), ``mean_size``, ``empty``,
        ``singleton`` and ``multiple`` (shares of rows whose set holds 0, 1
        and 2 or more classes), ``size_histogram`` and
        ``coverage_by_size`` (keyed by size, sizes that occur), and
        ``coverage_by_class`` (keyed by class name).
    """
    if n_calibration is not None:
        raise TypeError(
            "set_metrics no longer takes n_calibration=: the range 1 - alpha + 1/(n+1) it gave needs calibration "
            "scores without ties at the threshold (and one marginal threshold), which the row count cannot tell. "
            "Pass conformal=<the fitted ConformalClassifier> (with alpha=) for its coverage_range(alpha)"
        )
    if isinstance(sets, SetCounts):
        if sets.covered.ndim != 2 or sets.covered.shape[1] != 1:
            raise ValueError(f"set_metrics takes one level's counts (SetCounts.level(i)); got {sets.covered.shape[1]} "
                             "levels")
    elif np.ndim(sets) != 2:
        raise ValueError(f"set_metrics takes one level's sets, shape (n, C); got shape {np.shape(sets)}")
    if alpha is not None:
        # checked like every other entry point's: alpha=2.0 reported target_coverage -1.0 (audit)
        levels, scalar = _check_alpha(alpha)
        if not scalar:
            raise ValueError(f"set_metrics takes one level's sets, so one alpha; got {levels.tolist()}")
        alpha = float(levels[0])
    if conformal is not None:
        if not isinstance(conformal, ConformalClassifier):
            raise TypeError(f"conformal must be a fitted ConformalClassifier (the one that made the sets), got "
                            f"{type(conformal).__name__}")
        conformal._check_fitted()
        if alpha is None:
            raise ValueError("conformal= needs alpha=: the predictor's guaranteed range depends on the level")
    named = conformal is not None and conformal.estimator is not None
    if named and np.asarray(to_numpy(y)).dtype.kind not in "iub":
        # the estimator's labels (audit AI: names were refused although conformal.classes_ holds them)
        y = conformal._label_indices(y, conformal.n_classes_, len(to_numpy(y)))
    if isinstance(sets, SetCounts):
        counts, c = sets, sets.n_classes
        labels = check_labels(y, c, len(counts.covered))
    else:
        labels, s = _check_sets(y, sets)
        counts, c = SetCounts.of(labels, s), s.shape[1]
    n = len(labels)
    if conformal is not None and conformal.n_classes_ != c:
        raise ValueError(f"sets have {c} classes but conformal was fitted on {conformal.n_classes_}")
    names = _class_names(classes if classes is not None or not named else conformal.classes_.tolist(), c)
    cov = float(_coverage(counts.covered)[0])
    hist = _size_histogram(counts.sizes, c)[:, 0]
    by_size = _coverage_by_size(counts.covered, counts.sizes, c)[:, 0]
    by_class = _class_coverage(labels, counts.covered, c)[:, 0]
    out: dict[str, Any] = {"n": int(n)}
    if alpha is not None:
        out["alpha"] = float(alpha)
        out["target_coverage"] = 1.0 - float(alpha)
        if conformal is not None:
            out["n_calibration"] = int(conformal.n_calibration_)
            out["guaranteed_range"] = list(conformal.coverage_range(alpha))
    out.update({
        "coverage": cov,
        "coverage_ci": list(_wilson(cov, n)),
        "mean_size": float(counts.sizes.mean()),
        "empty": float(hist[0] / n) if n else math.nan,
        "singleton": float(hist[1] / n) if n else math.nan,
        "multiple": float(hist[2:].sum() / n) if n else math.nan,  # counted, not 1 - empty - singleton (-0.0%)
        "size_histogram": {str(k): int(v) for k, v in enumerate(hist) if v},
        "coverage_by_size": {str(k): float(by_size[k]) for k, v in enumerate(hist) if v},
        "coverage_by_class": {names[j]: (None if math.isnan(by_class[j]) else float(by_class[j])) for j in range(c)},
    })
    return out


def _class_names(classes: Any, n_classes: int) -> list[str]:
    """``classes`` as strings (default ``0..C-1``), one per column of the sets."""
    names = [str(v) for v in (classes if classes is not None else range(n_classes))]
    if len(names) != n_classes:
        raise ValueError(f"classes has {len(names)} names but the sets have {n_classes} classes")
    return names


def _wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (good near 0 and 1, unlike p +- z se)."""
    if n == 0:
        return math.nan, math.nan
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def set_labels(sets: Any, classes: Any = None, *, sep: str = "|") -> list[str]:
    """Each row's set as text: the class names in the set joined by ``sep`` ("" for an empty set).

    Classes are listed in column order.
    """
    s = np.asarray(to_numpy(sets, "sets"))
    if s.dtype != bool or s.ndim != 2:
        raise ValueError(f"sets must be a boolean mask of shape (n, C), got {s.dtype} {s.shape}")
    if not isinstance(sep, str):
        raise TypeError(f"sep must be a str, got {type(sep).__name__}")
    names = _class_names(classes, s.shape[1])
    return [sep.join(names[j] for j in np.flatnonzero(row)) for row in s]
