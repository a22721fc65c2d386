"""``alpha="auto"``: choose :class:`~softmaxkit.SoftmaxClassifier`'s L2 penalty
by held-out log-loss over a warm-started regularisation path.

This module owns the policy (the grid, the folds, when to stop walking the
path, the small-data fallback); the estimator supplies two callables, one that
fits a fold at a given ``alpha`` from a starting point and one that scores a
fit on held-out rows, so the search knows nothing about networks or engines.

The path
--------
The grid runs from the strongest penalty down (:data:`ALPHA_GRID`); the linear
model's walk starts at :data:`PATH_START` and goes back up only if the
strongest value walked is the best. Strong penalties are cheap to fit (the
objective is well conditioned) and every fold starts each fit from its own
solution at the previous ``alpha``, so each step of the path costs a few
solver iterations. The walk stops once the
held-out log-loss has failed to improve on its best for :data:`PATIENCE`
consecutive grid points: past the minimum the loss of a penalised
maximum-likelihood fit rises as the penalty weakens (the fit starts to chase
noise), and the weakest penalties, the near-separable, slow fits that cost
most, are then never computed.

The choice
----------
The linear model keeps ``LogisticRegression()``'s penalty
(:func:`reference_alpha`) unless another grid value beats it on the held-out
rows by more than one standard error, and then takes the strongest penalty
that the best one does not clearly beat (:func:`search`); a best value taken
as is gets refined between its grid neighbours (:func:`_refine`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from softmaxkit._targets import Targets, _show

#: Candidate penalties relative to :func:`reference_alpha`, strongest first:
#: 10**4 down to 10**-4 in half-decade steps (17 values). ``alpha`` counts in
#: units of one sample's log-loss (the objective is ``[sum_i s_i CE_i +
#: alpha/2 ||W||^2] / S``), so ``alpha = 1`` is a Gaussian prior worth about
#: one observation per weight. The range is the one ``LogisticRegressionCV``
#: searches by default (``Cs=10``: ``C`` in ``[1e-4, 1e4]``, a step of 0.89
#: decade); the step here is finer, and the vertex refinement finer still,
#: because the held-out log-loss changes by several percent per decade near
#: its minimum on the bundled data sets, more than the 2% the default promises.
ALPHA_GRID: tuple[float, ...] = tuple(float(a) for a in 10.0 ** np.arange(4.0, -4.25, -0.5))

#: Index in :data:`ALPHA_GRID` where the linear path starts: ``10**2`` times
#: the reference. The four stronger values are walked (upwards, warm-started)
#: only when the held-out loss is least at the start, as it is on data with
#: little signal: on the bundled data sets the held-out minimum lies between
#: ``10**1.5`` and ``10**-4`` times the reference, and starting at ``10**4``
#: cost a quarter of the search's solver time (digits) for warm starts that a
#: cold fit at ``10**2``, well conditioned still, does not need.
PATH_START = 4

#: The MLP's candidates: 10**2 down to 10**-2 in decade steps (5 values),
#: every one evaluated. Each MLP fit on the path starts from the same fresh
#: initialisation instead of the previous solution: a network fitted under a
#: strong penalty has collapsed to (nearly) zero weights, a saddle that a warm
#: start does not leave, and a network warm-started from a weak penalty keeps
#: much of its over-fit under Adam's plateau stop (measured on a synthetic
#: tanh-teacher set: held-out log-loss rose from 0.61 to 0.67 along a warm
#: path between alpha=1e-3 and 1, where fresh fits improve). Cold minibatch fits
#: are the cost, hence decade steps and :data:`DEFAULT_FOLDS_MLP`; the vertex
#: refinement (:func:`_refine`) recovers some resolution.
MLP_ALPHA_GRID: tuple[float, ...] = tuple(float(a) for a in 10.0 ** np.arange(2.0, -2.5, -1.0))

#: Internal folds when ``cv=None``: scikit-learn's default for
#: ``LogisticRegressionCV`` and ``CalibratedClassifierCV``. Each fit sees 80%
#: of the rows, so the chosen penalty is close to the best for the full data,
#: and every row is scored exactly once.
DEFAULT_FOLDS = 5

#: Internal folds of an MLP when ``cv=None``: each fold fit is a minibatch
#: Adam run, so three folds keep the search at a few full fits' cost.
DEFAULT_FOLDS_MLP = 3

#: Grid points without improvement after which the path stops (one decade).
PATIENCE = 2

@dataclass(frozen=True)
class AlphaSearch:
    """Outcome of the search.

    Attributes
    ----------
    alpha : float
        The chosen penalty.
    path : ndarray of shape (m,)
        The penalties evaluated, strongest first (empty for the fallback).
    loss : ndarray of shape (m,)
        The held-out log-loss at each: the sample-weighted mean over all
        held-out rows of all folds.
    n_folds : int
        Folds used (0 for the fallback).
    fold_fits : tuple
        With warm starts (the linear model), each fold's fit at the grid
        value nearest ``alpha``: the refit starts from their average. Empty
        otherwise.
    """

    alpha: float
    path: np.ndarray
    loss: np.ndarray
    n_folds: int
    fold_fits: tuple = ()


def make_folds(
    targets: Targets, cv: Any, rng: np.random.RandomState, *, default: int = DEFAULT_FOLDS
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """``(train, test)`` row indices, or None when the data are too small to split.

    ``cv=None`` (``default`` folds) or an int ``k``: shuffled folds, stratified for labels
    (``StratifiedKFold``; ``KFold`` for probability or count targets), with
    ``min(k, smallest class count)`` folds so that every training part sees
    every class and every held-out part contains every class. Anything else
    is a scikit-learn splitter (its ``split(X, labels)`` is called) or an
    iterable of ``(train, test)`` index pairs, used as given.

    The default folds split the rows of positive weight only, exactly as if
    the rows of weight 0 were absent, and deal those rows out evenly over
    the held-out parts (where they score nothing). So weight 0 is the same
    as removing the row, ``alpha_`` included: stratifying over all rows put
    a class's few weighted rows unevenly over the folds (a held-out part
    without them), and the search could choose another penalty.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    n = targets.weight.shape[0]
    rows = np.arange(n)
    if cv is not None and not isinstance(cv, numbers.Integral):
        splits = cv.split(rows.reshape(-1, 1), targets.labels) if hasattr(cv, "split") else cv
        return [(np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)) for train, test in splits]
    wanted = default if cv is None else int(cv)
    positive = targets.weight > 0
    seed = rng.randint(np.iinfo(np.int32).max)
    kept = rows[positive]
    if targets.labels is not None:
        counts = np.bincount(targets.labels[positive], minlength=len(targets.classes))
        smallest = int(counts[counts > 0].min())
        k = min(wanted, smallest)
        if k < 2:
            return None
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        kept_folds = splitter.split(kept.reshape(-1, 1), targets.labels[positive])
    else:
        k = min(wanted, kept.size)
        if k < 2:
            return None
        kept_folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(kept.reshape(-1, 1))
    if kept.size == n:  # no weight-0 rows: the folds as scikit-learn makes them
        return list(kept_folds)
    spare = np.array_split(np.random.RandomState(seed).permutation(rows[~positive]), k)
    folds = []
    for (_, test), extra in zip(kept_folds, spare):
        held_out = np.sort(np.concatenate([kept[test], extra]))
        folds.append((np.setdiff1d(rows, held_out, assume_unique=True), held_out))
    return folds


def search(
    folds: list[tuple[np.ndarray, np.ndarray]],
    weight: np.ndarray,
    *,
    fit: Callable[[np.ndarray, float, Any], Any],
    score: Callable[[Any, np.ndarray], np.ndarray],
    grid: tuple[float, ...],
    patience: int = PATIENCE,
    reference: float | None = None,
    warm: bool = True,
    first: int = 0,
) -> AlphaSearch:
    """Walk ``grid`` in its order from ``grid[first]``, scoring each ``alpha`` over ``folds``.

    Parameters
    ----------
    folds : list of (train, test) index arrays
    weight : ndarray of shape (n,)
        Row weights; the held-out loss is their weighted mean.
    fit : callable ``(train_rows, alpha, start) -> fitted``
        Fits on ``train_rows`` from ``start`` (None at the first ``alpha``,
        afterwards the fold's previous ``fitted``).
    score : callable ``(fitted, test_rows) -> ndarray``
        The log-loss of each of ``test_rows``.
    grid : tuple of float, monotone with equal steps in ``log(alpha)``
    patience : int
        Stop after this many consecutive grid points that do not improve the
        best held-out loss (never before ``reference`` has been scored).
    reference : float, optional
        A grid value kept unless another beats it by more than one standard
        error of the paired per-row difference (see Notes).
    warm : bool, default True
        Whether ``fit`` uses ``start`` (then :attr:`AlphaSearch.fold_fits`
        returns the fold fits at the chosen value, for the refit's start).
    first : int, default 0
        Index of the grid value the walk starts from (the first fit of each
        fold starts from None). If the best held-out loss is then at
        ``grid[first]``, the walk continues the other way, ``grid[first - 1]``
        down to ``grid[0]``, warm-started from the fits at ``grid[first]`` and
        with the same ``patience``. :attr:`AlphaSearch.path` is in grid order
        either way.

    Returns
    -------
    AlphaSearch

    Notes
    -----
    The held-out loss of ``alpha`` is ``L(alpha) = sum_i w_i l_i(alpha) / sum_i w_i``
    over every held-out row ``i`` of every fold. Let ``b`` be its minimiser
    on the path (ties keep the one evaluated first). With a ``reference`` ``r``,
    the per-row differences ``d_i = l_i(r) - l_i(b)`` have the weighted mean
    ``L(r) - L(b)`` and standard error ``sqrt(var_w(d) / n_eff)``, ``n_eff =
    (sum w)^2 / sum w^2`` (Kish's effective sample size). ``b`` replaces
    ``r`` only when its improvement exceeds that standard error, and then,
    as in the one-standard-error rule of Hastie et al. (ESL, sec. 7.10), the
    strongest penalty between ``r`` and ``b`` that ``b`` does not beat by more
    than one standard error (same paired test) is taken instead of ``b``.
    The minimiser of a noisy held-out curve is itself noisy; on flat curves
    following it costs more test log-loss than it saves, and log-loss
    punishes the over-confidence of too weak a penalty more than the caution
    of too strong a one. When ``b`` itself is taken, it is moved to the
    vertex of the parabola through it and its neighbours (:func:`_refine`).
    Without a reference the choice is the refined ``b``.
    """
    rows = np.concatenate([test for _, test in folds])
    w = weight[rows]
    total = float(np.sum(w))
    # index -> (held-out loss, per-row losses, fold fits) of each grid value evaluated
    scored: dict[int, tuple[float, np.ndarray, tuple]] = {}

    def walk(order: range, starts: list[Any], must_reach: float | None) -> None:
        """Score ``grid[i]`` for ``i`` in ``order``, each fold from its previous fit,
        until ``patience`` values in a row fail to improve the best seen so far."""
        best = min((loss for loss, _, _ in scored.values()), default=np.inf)
        stalled, reached = 0, must_reach is None
        for i in order:
            alpha = grid[i]
            per_row = np.concatenate([_fit_and_score(fit, score, folds, k, alpha, starts) for k in range(len(folds))])
            loss = float(np.dot(per_row, w) / total) if total > 0 else np.inf
            scored[i] = (loss, per_row, tuple(starts))
            reached = reached or np.isclose(alpha, must_reach)
            if loss < best:
                best, stalled = loss, 0
            else:
                stalled += 1
                if stalled >= patience and reached:
                    return

    walk(range(first, len(grid)), [None] * len(folds), reference)
    if first > 0 and _argmin([scored[i][0] for i in sorted(scored)]) == 0:
        # The best is the strongest value walked: continue upwards, each fold
        # from its fit there (a weaker penalty's solution is a good start for a
        # stronger one too).
        walk(range(first - 1, -1, -1), list(scored[first][2]), None)
    evaluated = sorted(scored)
    path = [grid[i] for i in evaluated]
    losses = [scored[i][0] for i in evaluated]
    row_losses = [scored[i][1] for i in evaluated]
    history = [scored[i][2] for i in evaluated]
    best_index = _argmin(losses)
    chosen = _refine(path, losses)
    if reference is not None:
        ref_index = int(np.argmin(np.abs(np.log(path) - np.log(reference))))
        if not _significantly_better(row_losses[ref_index] - row_losses[best_index], w):
            chosen = path[ref_index]
        else:
            # From the best back towards the reference (stronger penalties) while the best is not
            # clearly better. A best stronger than the reference is itself the strongest value
            # between the two: no step (walking on, past it, cost synth_linear 0.3% of median test log-loss).
            k = best_index
            while k > ref_index and not _significantly_better(row_losses[k - 1] - row_losses[best_index], w):
                k -= 1
            if k != best_index:
                chosen = path[k]
    nearest = int(np.argmin(np.abs(np.log(path) - np.log(chosen))))
    fold_fits = history[nearest] if warm else ()
    return AlphaSearch(float(chosen), np.asarray(path), np.asarray(losses), len(folds), fold_fits)


def _fit_and_score(fit, score, folds, i: int, alpha: float, starts: list[Any]) -> np.ndarray:
    """Fit fold ``i`` at ``alpha`` from its previous solution; its held-out row losses."""
    train, test = folds[i]
    starts[i] = fit(train, alpha, starts[i])
    return np.asarray(score(starts[i], test), dtype=np.float64)


def _significantly_better(gain: np.ndarray, weight: np.ndarray) -> bool:
    """Whether the weighted mean of ``gain`` exceeds one standard error of it.

    An infinite loss (a held-out row given probability 0) makes the gain
    infinite: then the sign of the mean decides (NaN, from inf - inf, is no gain).
    """
    positive = weight > 0
    gain, weight = gain[positive], weight[positive]
    total = float(np.sum(weight))
    if total <= 0:
        return False
    with np.errstate(invalid="ignore"):
        mean = float(np.dot(gain, weight) / total)
        var = float(np.dot(weight, (gain - mean) ** 2) / total)
    if not np.isfinite(var):
        return mean > 0  # inf: clearly better; nan: undecided, keep what we have
    n_eff = total**2 / float(np.dot(weight, weight))
    return mean > np.sqrt(var / n_eff)


def _refine(path: list[float], losses: list[float]) -> float:
    """The best grid ``alpha``, moved to the vertex of the parabola through it
    and its two neighbours in ``log(alpha)`` when that is a minimum.

    The held-out loss is smooth in ``log(alpha)`` near its minimum, so the
    vertex locates it more finely than the grid at no extra fit; the move is
    capped at half a grid step each way, where the neighbours' own parabolas
    take over. At either end of the evaluated path (or with a flat or concave
    triple) the grid value stands.
    """
    best = _argmin(losses)
    if best == 0 or best == len(path) - 1 or not np.all(np.isfinite(losses[best - 1 : best + 2])):
        return float(path[best])
    x = np.log(path[best - 1 : best + 2])
    f = np.asarray(losses[best - 1 : best + 2])
    step = x[1] - x[0]  # equal steps on the grid (negative where the grid decreases)
    curvature = f[0] + f[2] - 2 * f[1]
    if curvature <= 0:
        return float(path[best])
    offset = 0.5 * step * (f[0] - f[2]) / curvature
    offset = float(np.clip(offset, -abs(step) / 2, abs(step) / 2))
    return float(np.exp(x[1] + offset))


def _argmin(losses: list[float]) -> int:
    """Index of the least loss; NaN (a diverged fit) counts as +inf, not as the least."""
    return int(np.argmin(np.where(np.isnan(losses), np.inf, losses)))


def fallback(n_classes: int) -> AlphaSearch:
    """The search result when the data are too small to hold rows out: the smallest class (by rows
    with positive weight) has a single member, or, for probability / count targets, fewer than two
    rows carry weight. The penalty is ``LogisticRegression()``'s, :func:`reference_alpha`."""
    return AlphaSearch(reference_alpha(n_classes), np.zeros(0), np.zeros(0), 0)


def why_too_small(targets: Targets) -> str:
    """Why :func:`make_folds` found nothing to hold out, in words, for the
    fallback's warning and ``softmaxkit fit``'s summary.

    ``"class 'setosa.' has 1 row"``, ``"classes 'a', 'b' have 1 row each"``
    (``"... 1 row with positive weight"`` when some rows weigh 0; at most
    three classes named), or for probability / count targets ``"only 1 row
    has positive weight"``. A single row of a class often is a typo in its
    label, which naming the class lets the user see.
    """
    positive = targets.weight > 0
    if targets.labels is None:
        return f"only {int(np.sum(positive))} row has positive weight"
    counts = np.bincount(targets.labels[positive], minlength=len(targets.classes))
    single = targets.classes[counts == 1]
    names = ", ".join(_show(c) for c in single[:3]) + (", ..." if len(single) > 3 else "")
    row = "row" if np.all(positive) else "row with positive weight"
    return f"class {names} has 1 {row}" if len(single) == 1 else f"classes {names} have 1 {row} each"


def reference_alpha(n_classes: int) -> float:
    """``LogisticRegression()``'s penalty (``C=1``) in ``alpha`` units: 2 for two classes, else 1.

    The linear path's grid is this value times :data:`ALPHA_GRID`, and the
    search keeps it unless held-out data show a clear improvement
    (:func:`search`). With standardised features it is a unit-variance
    Gaussian prior on each weight of ``LogisticRegression``'s parametrisation
    (two softmax columns carry half of the binary log-odds each, hence 2; see
    :class:`~softmaxkit.SoftmaxClassifier`'s Notes).
    """
    return 2.0 if n_classes == 2 else 1.0


__all__ = [
    "ALPHA_GRID", "DEFAULT_FOLDS", "DEFAULT_FOLDS_MLP", "MLP_ALPHA_GRID", "PATH_START", "PATIENCE",
    "AlphaSearch", "fallback", "make_folds", "reference_alpha", "search", "why_too_small",
]  # fmt: skip

