"""``alpha="auto"``: choose :class:`~softmaxkit.SoftmaxClassifier`'s L2 penalty
by held-out log-loss over a warm-started regularisation path.

This module owns the policy (the grid, the folds, when to stop walking the
path, the small-data fallback); the estimator supplies two callables, one that
fits a fold at a given ``alpha`` from a starting point and one that scores a
fit on held-out rows, so the search knows nothing about networks or engines.

The path
--------
The grid runs from the strongest penalty down (:data:`ALPHA_GRID`). Strong
penalties are cheap to fit (the objective is well conditioned) and every fold
starts each fit from its own solution at the previous, stronger ``alpha``, so
each step of the path costs a few solver iterations. The walk stops once the
held-out log-loss has failed to improve on its best for :data:`PATIENCE`
consecutive grid points: past the minimum the loss of a penalised
maximum-likelihood fit rises as the penalty weakens (the fit starts to chase
noise), and the weakest penalties, the near-separable, slow fits that cost
most, are then never computed.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from softmaxkit._targets import Targets

#: Candidate penalties, strongest first: 10**4 down to 10**-4 in half-decade
#: steps (17 values). ``alpha`` counts in units of one sample's log-loss (the
#: objective is ``[sum_i s_i CE_i + alpha/2 ||W||^2] / S``), so ``alpha = 1``
#: is a Gaussian prior worth about one observation per weight and is the
#: multiclass ``LogisticRegression(C=1)``. The range is the one
#: ``LogisticRegressionCV`` searches by default (``Cs=10``: ``C`` in
#: ``[1e-4, 1e4]``, a step of 0.89 decade); the step here is finer because the
#: held-out log-loss near its minimum changes by about 1% per half decade on
#: the bundled data sets, which is the precision the default promises.
ALPHA_GRID: tuple[float, ...] = tuple(float(a) for a in 10.0 ** np.arange(4.0, -4.25, -0.5))

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

#: The penalty used when there are too few rows to hold any out: the smallest
#: class (by rows with positive weight) has a single member, or, for
#: probability / count targets, fewer than two rows carry weight. It is
#: ``LogisticRegression()``'s penalty (``C=1``) for three or more classes.
FALLBACK_ALPHA = 1.0


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
    """

    alpha: float
    path: np.ndarray
    loss: np.ndarray
    n_folds: int


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
    if targets.labels is not None:
        counts = np.bincount(targets.labels[positive], minlength=len(targets.classes))
        smallest = int(counts[counts > 0].min())
        k = min(wanted, smallest)
        if k < 2:
            return None
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        # Rows of weight 0 carry no information; they are split along with
        # the rest, but the class counts that bound k ignore them.
        return [(train, test) for train, test in splitter.split(rows.reshape(-1, 1), targets.labels)]
    k = min(wanted, int(np.sum(positive)))
    if k < 2:
        return None
    splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(rows.reshape(-1, 1)))


def search(
    folds: list[tuple[np.ndarray, np.ndarray]],
    *,
    fit: Callable[[np.ndarray, float, Any], Any],
    score: Callable[[Any, np.ndarray], tuple[float, float]],
    grid: tuple[float, ...] = ALPHA_GRID,
    patience: int = PATIENCE,
) -> AlphaSearch:
    """Walk ``grid`` in its order, scoring each ``alpha`` over ``folds``.

    Parameters
    ----------
    folds : list of (train, test) index arrays
    fit : callable ``(train_rows, alpha, start) -> fitted``
        Fits on ``train_rows`` from ``start`` (None at the first ``alpha``,
        afterwards the fold's previous ``fitted``).
    score : callable ``(fitted, test_rows) -> (loss_sum, weight_sum)``
        Sum of ``weight_i * CE_i`` over ``test_rows`` and the sum of their weights.
    grid : tuple of float, monotone with equal steps in ``log(alpha)``
    patience : int
        Stop after this many consecutive grid points that do not improve the
        best held-out loss.

    Returns
    -------
    AlphaSearch
        The ``alpha`` of least held-out loss (ties keep the one evaluated
        first), refined between its neighbours (:func:`_refine`).
    """
    starts: list[Any] = [None] * len(folds)
    path, losses = [], []
    best, best_alpha, stalled = np.inf, grid[0], 0
    for alpha in grid:
        loss_sum = weight_sum = 0.0
        for i, (train, test) in enumerate(folds):
            starts[i] = fit(train, alpha, starts[i])
            fold_loss, fold_weight = score(starts[i], test)
            loss_sum += fold_loss
            weight_sum += fold_weight
        loss = loss_sum / weight_sum if weight_sum > 0 else np.inf
        path.append(alpha)
        losses.append(loss)
        if loss < best:
            best, best_alpha, stalled = loss, alpha, 0
        else:
            stalled += 1
            if stalled >= patience:
                break
    return AlphaSearch(_refine(path, losses), np.asarray(path), np.asarray(losses), len(folds))


def _refine(path: list[float], losses: list[float]) -> float:
    """The best grid ``alpha``, moved to the vertex of the parabola through it
    and its two neighbours in ``log(alpha)`` when that is a minimum.

    The held-out loss is smooth in ``log(alpha)`` near its minimum, so the
    vertex locates it more finely than the grid at no extra fit; the move is
    capped at half a grid step each way, where the neighbours' own parabolas
    take over. At either end of the evaluated path (or with a flat or concave
    triple) the grid value stands.
    """
    best = int(np.argmin(losses))
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


def fallback() -> AlphaSearch:
    """The search result when the data are too small to hold rows out."""
    return AlphaSearch(FALLBACK_ALPHA, np.zeros(0), np.zeros(0), 0)


__all__ = [
    "ALPHA_GRID", "DEFAULT_FOLDS", "DEFAULT_FOLDS_MLP", "FALLBACK_ALPHA", "MLP_ALPHA_GRID", "PATIENCE",
    "AlphaSearch", "fallback", "make_folds", "search",
]  # fmt: skip
