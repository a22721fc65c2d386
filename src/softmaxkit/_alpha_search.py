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
rows by more than one standard error (a weaker one by two while a class has
fewer than :data:`RARE_CLASS_ROWS` rows), and then takes the strongest penalty
that the best one does not clearly beat (:func:`search`); a best value taken
as is gets refined between its grid neighbours (:func:`_refine`).

The ends
--------
A choice at an end of the range searched is no optimum found: the held-out
loss may go on falling past it. :attr:`AlphaSearch.bound` says which end, and
the estimator reports it. At the strong end the weights are shrunk to almost
nothing: the model predicts about the class frequencies, which is right for
features without signal. The weak end counts only where the held-out loss is
still falling there (:data:`STILL_FALLING`): (nearly) separable classes where
that loss is small (:data:`SEPARABLE_SHARE`), else penalties all too strong for
the data (features at a small scale); where it has gone flat, a weaker penalty
fits the same model. The linear walk does not go past the grid: wine's held-out
minimum already lies at its weak end on some splits, and the small-scale case's
lay about four decades beyond it (``standardize=True`` fixes that at no cost). The
MLP's grid is short (cold fits are dear), so there the walk goes on past its
weakest value, a decade at a time while the loss keeps falling, down to
:data:`MLP_ALPHA_FLOOR`; those fits are made only when the grid's weakest
value scores best and is still falling, so the usual search costs nothing more.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

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

#: The MLP's values past the weak end of :data:`MLP_ALPHA_GRID`, walked (in
#: decade steps, so :func:`_refine` still sees equal steps) only while the
#: held-out loss keeps falling (``beyond`` of :func:`search`). Audit: two interleaved
#: half-moons, near separable, lost a factor ~9 of held-out log-loss per decade
#: at ``alpha=1e-2`` (test log-loss 1.3e-4 there against 9.7e-5 at 1e-3).
MLP_ALPHA_BEYOND: tuple[float, ...] = (1e-3, 1e-4)

#: The weakest MLP penalty searched: ``MLPClassifier``'s default ``alpha``
#: (the same units, see :class:`~softmaxkit.SoftmaxClassifier`'s Notes), and
#: 2-3 decades below the linear grid's weakest value for standardised data.
MLP_ALPHA_FLOOR: float = MLP_ALPHA_BEYOND[-1]

#: Internal folds when ``cv=None``: scikit-learn's default for
#: ``LogisticRegressionCV`` and ``CalibratedClassifierCV``. Each fit sees 80%
#: of the rows, so the chosen penalty is close to the best for the full data,
#: and every row is scored exactly once.
DEFAULT_FOLDS = 5

#: Internal folds of an MLP when ``cv=None``: each fold fit is a minibatch
#: Adam run, so three folds keep the search at a few full fits' cost.
DEFAULT_FOLDS_MLP = 3

#: Fewest rows (of positive weight; observations for counts with ``weights_are_counts=True``,
#: :func:`sample_count`) on which
#: ``solver="auto"`` fits an MLP with ``alpha="auto"`` on standardised features (``softmaxkit fit --hidden``) by
#: L-BFGS; on fewer, the search and the refit run Adam
#: (``SoftmaxClassifier._resolve_solver``). On the :data:`DEFAULT_FOLDS_MLP`
#: folds' training parts of a few dozen rows the chosen penalty is noisy, and
#: L-BFGS fits a too-weak one to its optimum, near-zero training loss. Held-out
#: log-loss, worst of 8-12 splits, L-BFGS against Adam (both standardised,
#: 100 hidden units): iris 21 rows 4.67 against 0.51 (15% of rows at p(true)
#: < 1e-3 against none), 30 rows 0.51 / 0.28; two overlapping blobs 40 rows
#: 0.31 / 0.17, 80 rows 0.24 / 0.14 (1.4% of rows at p < 1e-3 / none). From 100
#: rows L-BFGS's medians are lower (iris 112 rows 0.086 / 0.191; blobs 110 0.112
#: / 0.121) and its tails close to Adam's: blobs 110 and 130 rows worst 0.18
#: and 0.16 against 0.13 (at most 0.8% of rows at p < 1e-3), 150 rows none.
MLP_LBFGS_MIN_ROWS = 100

#: Grid points without improvement after which the path stops (one decade).
PATIENCE = 2

#: The least relative fall of the held-out loss over one grid step for which
#: a best value at the weak end counts as still falling: only then does the
#: walk go on into ``beyond`` (each further value must fall as much), and only
#: then is the weak end reported (:attr:`AlphaSearch.bound`). Under weak
#: penalties a fit is often limited by something else, and the held-out loss
#: goes flat: Adam's stop on the training-loss plateau (iris, 3 MLPs: a fall
#: of 3e-6 to 2e-5 per decade, won by chance, yet "significant" by the paired
#: test, the fits moving together), or L-BFGS's ``tol`` on separable classes
#: (a fall of 1e-16). There a weaker penalty fits the same model: searching on
#: would cost fits for nothing, and a warning would be noise. Near-separable
#: MLPs under L-BFGS fall 13-90% per decade there (make_moons).
STILL_FALLING = 0.01

#: Share of :func:`prior_log_loss` below which a held-out log-loss still falling at the weak end
#: counts as (nearly) separable classes (the estimator's warning says which). Separable classes
#: fall towards 0 there (make_moons under an MLP: 1e-4 against 0.69); a loss near the prior's
#: is no such thing, but every penalty searched being too strong: features at a small scale
#: (audit CP: 10 features at 1e-5 to 1e-2, 0.957 against 1.099, the Bayes floor 0.623, and
#: standardize=True reached 0.630), or fractional weights summing to far fewer than the rows.
SEPARABLE_SHARE = 0.1

#: Factor by which the total of fractional ``sample_weight`` may differ from its rows of positive
#: weight before ``alpha="auto"`` warns (:func:`weight_scale`): the penalty counts rows of weight 1,
#: so weights summing to ``k`` times the rows make every penalty on the grid act ``k`` times weaker
#: (audit CP: weights 1 and up to 1000, ``k`` about 126, kept ``LogisticRegression()``'s penalty
#: where one 100 times stronger was clearly better). A tenfold shift moves the grid by a decade.
WEIGHT_SCALE_FACTOR = 10.0

#: A class with fewer rows (of positive weight; observations for counts with ``weights_are_counts=True``,
#: :func:`splits_counts`) than this
#: makes the linear search stricter about penalties weaker than the reference: they must beat it
#: by :data:`RARE_CLASS_SE` standard errors, not one (:func:`rare_class_se`). The
#: held-out loss then rests on a few rows of that class (at most 2 per held-out
#: part at :data:`DEFAULT_FOLDS` folds), the paired test sees their sampling
#: noise in no other row, and a weaker penalty is the costly mistake: log-loss
#: punishes an over-confident miss of a rare row most. Not 25: with one class of
#: 20 training rows in iris or wine (review R8, 40 splits each) the rule cut the
#: worst split in every case (0.369 -> 0.245, 0.298 -> 0.155, ...) but raised
#: the mean test log-loss in 4 of 5 (wine, class 1 rare: 0.0763 -> 0.0809, paired
#: +0.0047 +- 0.0020); the gains below are all from classes of 2 to 6 rows. The
#: bundled data sets (iris, wine, breast_cancer, digits) have 37 or more rows per class.
RARE_CLASS_ROWS = 10

#: Standard errors by which a penalty weaker than the reference must beat it
#: when a class has fewer than :data:`RARE_CLASS_ROWS` rows (audit AJ3;
#: make_classification, 4 informative features, 40 splits each, test log-loss
#: mean / worst, test positives at p < 1e-4, one standard error against two):
#: 2 training positives of 200 rows 0.0517 / 0.107, 2 against 0.0507 / 0.107,
#: 1; 5 of 500 0.0452 / 0.090, 11 against 0.0448 / 0.090, 9; 6 of 200 (10
#: features) 0.1179 / 0.415, 5 against 0.1079 / 0.215, 1; 6 of 200 (25
#: features) 0.1277 / 0.262, 10 against 0.1256 / 0.262, 9. With 15 of 300 the
#: choices did not change. Three errors did a little better still (0.0506,
#: 0.0448, 0.1076, 0.1241) but no weaker value ever passed it, which is a ban,
#: not a test.
RARE_CLASS_SE = 2.0

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
    bound : {"strong", "weak"} or None
        ``alpha`` is the strongest (``"strong"``) or weakest (``"weak"``)
        value the search could reach (``grid[0]``, or the last of ``grid``
        and ``beyond``): the held-out optimum may lie past it. None inside
        the range, and for the fallback.
    """

    alpha: float
    path: np.ndarray
    loss: np.ndarray
    n_folds: int
    fold_fits: tuple = ()
    bound: str | None = None


class Fold(NamedTuple):
    """One fold of the search: the rows of its training and held-out parts, and what each row weighs there.

    A row split puts a row in one part with its own weight (the weights are None: the rows'
    ``sample_weight``, :meth:`weighted`). A count split (:func:`_count_folds`) shares a row's
    count between the parts: ``train_weight`` and ``test_weight`` then say how many of its
    observations each part holds, and a row may be in both.
    """

    train: np.ndarray
    test: np.ndarray
    train_weight: np.ndarray | None = None
    test_weight: np.ndarray | None = None

    def weighted(self, weight: np.ndarray) -> "Fold":
        """This fold with both parts' weights given, the rows' own ``weight`` where it had none."""
        return self._replace(
            train_weight=weight[self.train] if self.train_weight is None else self.train_weight,
            test_weight=weight[self.test] if self.test_weight is None else self.test_weight,
        )


#: Whole-number weights totalling this or more are split as rows, not as counts (:func:`splits_counts`):
#: past float64's exact integers they cannot be shared out in whole observations.
_MAX_COUNT = 2.0**53


def whole_number_weights(targets: Targets) -> bool:
    """Whether ``targets`` are labels whose positive weights are all whole numbers, some above 1 (and
    fewer than :data:`_MAX_COUNT` in all): weights that may be counts. Their values cannot say whether they
    are counts or importances (``np.where(y == 1, 5, 1)``), so only ``weights_are_counts`` makes them
    counts (:func:`splits_counts`)."""
    return targets.labels is not None and _whole_numbers(targets.weight)


def _whole_numbers(weight: np.ndarray) -> bool:
    """Whether the positive ``weight`` are all whole numbers, some above 1, fewer than :data:`_MAX_COUNT`
    in all (:func:`whole_number_weights`, :func:`count_cells`)."""
    w = weight[weight > 0]
    return bool(np.all(w == np.floor(w)) and np.any(w > 1) and np.sum(w) < _MAX_COUNT)


def row_sample_weight(targets: Targets) -> np.ndarray:
    """Each row's ``sample_weight``: ``targets.weight``, over the row's count total for count targets
    (:attr:`~softmaxkit._targets.Targets.totals`; 0 for a row that counts nothing)."""
    if targets.totals is None:
        return targets.weight
    return np.divide(targets.weight, targets.totals, out=np.zeros_like(targets.weight), where=targets.totals > 0)


def splits_counts(targets: Targets, *, weights_are_counts: bool = False) -> bool:
    """Whether the weights count observations: the caller says they are counts (``SoftmaxClassifier``'s
    ``weights_are_counts``) and they may be (:func:`whole_number_weights`). A count is ``w`` observations
    of one input with one class (deduplicated rows, ``np.unique(..., return_counts=True)``), and fits as
    ``w`` repeated rows; folds of the rows would hold all of them out together, so no fold would train on
    an (input, class) pair that it scores, and ``alpha="auto"`` chose a far stronger penalty than for the
    repeated rows (audit BM: 4000 rows deduplicated to 22, ``alpha_`` 1 -> 1e4, probabilities up to 0.14
    off). The default folds then split the observations (:func:`make_folds`), and the fold cap, the
    rare-class rule, the paired test and ``solver="auto"`` count them.

    Not by default: integer importance weights (``np.where(y == 1, 5, 1)``) are no observations, and
    split as counts every held-out row of weight 5 was also trained on in its fold (audit R15: weighted
    test log-loss 0.514 -> 0.584). Fractional weights are split whole as rows either way."""
    return bool(weights_are_counts) and whole_number_weights(targets)


def sample_count(targets: Targets, *, weights_are_counts: bool = False) -> int:
    """What the default folds split: the rows of positive weight, or for counts (:func:`splits_counts`) the
    observations they stand for, as many as the repeated rows."""
    positive = targets.weight > 0
    if splits_counts(targets, weights_are_counts=weights_are_counts):
        return int(np.sum(targets.weight[positive]))
    return int(np.count_nonzero(positive))


class Cells(NamedTuple):
    """The observations that early stopping's count split shares out (:func:`count_cells`): one cell per
    (row, class) observed, with its whole-number count (int64 arrays of equal length), and what one
    observation of each row weighs (``weight``, shape (n,), float64; None: 1, the count is the weight)."""

    rows: np.ndarray
    classes: np.ndarray
    counts: np.ndarray
    weight: np.ndarray | None = None


def count_cells(targets: Targets, *, weights_are_counts: bool = False) -> Cells | None:
    """The observations that early stopping's validation split shares out (:class:`Cells`), or None when
    rows are split whole.

    Labels: the rows of positive weight when their weights are counts (:func:`splits_counts`). Soft
    targets count observations in two ways. A ``sample_weight`` counts them when ``weights_are_counts``
    and the weights are whole numbers, some above 1 (:func:`splits_counts`' rule): each row holds
    ``target * weight`` observations of its classes (count targets: ``y``'s counts times the weight, which
    fit as that many repeated rows; probabilities: the class counts of the row's observations, as when
    ``y`` holds their frequencies), each weighing 1, and rows are split whole when those are not all
    whole numbers. Otherwise count targets (:attr:`~softmaxkit._targets.Targets.totals`) share out
    ``y``'s own counts, and each observation carries its row's ``sample_weight``, as a label row carries
    its weight (fractional, or not counting observations); probabilities are split as rows. One cell per
    (row, class) observed; None, too, when the counts total :data:`_MAX_COUNT` or more. The folds of the
    search split soft targets as rows (:func:`make_folds`).
    """
    if targets.labels is not None:
        if not splits_counts(targets, weights_are_counts=weights_are_counts):
            return None
        rows = np.flatnonzero(targets.weight > 0)
        return Cells(rows, targets.labels[rows], targets.weight[rows].astype(np.int64))
    sample_weight = row_sample_weight(targets)
    if weights_are_counts and _whole_numbers(sample_weight):
        observed, weight = targets.target * targets.weight[:, None], None
    elif targets.totals is not None:
        observed, weight = targets.target * targets.totals[:, None], sample_weight
    else:
        return None
    counts = np.rint(observed)
    # a count c comes back as (c / total) * total, a few ulp off c
    if not np.allclose(observed, counts, rtol=1e-9, atol=1e-9) or np.sum(counts) >= _MAX_COUNT:
        return None
    rows, classes = np.nonzero(counts > 0)
    return Cells(rows.astype(np.int64), classes.astype(np.int64), counts[rows, classes].astype(np.int64), weight)


def weights_held_whole(targets: Targets, *, weights_are_counts: bool = False) -> str | None:
    """How early stopping's validation split holds whole-number weights (some above 1: counts or
    importances) out together, for the estimator's warning; None when it shares them out as counts.

    ``"rows"``: rows are held out whole, each with its weight, where ``weights_are_counts`` would share
    out their observations (labels, or probabilities whose products with the weights are whole class
    counts); ``"counts"``: count targets' observations are shared out, each carrying its row's weight
    (without ``weights_are_counts``); ``"not counts"``: rows are held out whole, and would be with
    ``weights_are_counts`` too, the probabilities times the weights not being whole numbers
    (:func:`count_cells`).
    """
    if not _whole_numbers(row_sample_weight(targets)):
        return None
    cells = count_cells(targets, weights_are_counts=weights_are_counts)
    if cells is not None:
        return "counts" if cells.weight is not None else None
    if not weights_are_counts and count_cells(targets, weights_are_counts=True) is not None:
        return "rows"
    return "not counts"


def make_folds(
    targets: Targets, cv: Any, rng: np.random.RandomState, *, default: int = DEFAULT_FOLDS,
    weights_are_counts: bool = False,
) -> list[Fold] | None:
    """The folds of the search (:class:`Fold`), or None when the data are too small to split.

    ``cv=None`` (``default`` folds) or an int ``k``: shuffled folds, stratified for labels
    (``StratifiedKFold``; ``KFold`` for probability or count targets), with
    ``min(k, smallest class count)`` folds so that every training part sees
    every class and every held-out part contains every class. Anything else
    is a scikit-learn splitter (its ``split(X, labels)`` is called) or an
    iterable of ``(train, test)`` index pairs, used as given
    (:func:`_given_folds`).

    The default folds split the rows of positive weight only, exactly as if
    the rows of weight 0 were absent, and deal those rows out evenly over
    the held-out parts (where they score nothing). So weight 0 is the same
    as removing the row, ``alpha_`` included: stratifying over all rows put
    a class's few weighted rows unevenly over the folds (a held-out part
    without them), and the search could choose another penalty. Counts
    (``weights_are_counts``, :func:`splits_counts`) are split as the repeated
    rows would be: each row's count is shared between the folds
    (:func:`_count_folds`), and the class counts that cap ``k`` count
    observations. Other weights, whole numbers included, are split with their
    rows, as scikit-learn's splitters do.

    Raises
    ------
    ValueError
        Given splits that cannot be used (:func:`_given_folds`).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    n = targets.weight.shape[0]
    rows = np.arange(n)
    if cv is not None and not isinstance(cv, numbers.Integral):
        return _given_folds(cv, targets)
    wanted = default if cv is None else int(cv)
    positive = targets.weight > 0
    seed = rng.randint(np.iinfo(np.int32).max)
    kept = rows[positive]
    if targets.labels is not None:
        counts = _class_counts(targets, weights_are_counts=weights_are_counts)
        smallest = int(counts[counts > 0].min())
        k = min(wanted, smallest)
        if k < 2:
            return None
        if splits_counts(targets, weights_are_counts=weights_are_counts):
            return _count_folds(targets, k, seed)
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        kept_folds = splitter.split(kept.reshape(-1, 1), targets.labels[positive])
    else:
        k = min(wanted, kept.size)
        if k < 2:
            return None
        kept_folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(kept.reshape(-1, 1))
    if kept.size == n:  # no weight-0 rows: the folds as scikit-learn makes them
        return [Fold(train, test) for train, test in kept_folds]
    spare = np.array_split(np.random.RandomState(seed).permutation(rows[~positive]), k)
    folds = []
    for (_, test), extra in zip(kept_folds, spare):
        held_out = np.sort(np.concatenate([kept[test], extra]))
        folds.append(Fold(np.setdiff1d(rows, held_out, assume_unique=True), held_out))
    return folds


#: A class of this many observations or more has its counts dealt out with replacement (:func:`deal_counts`):
#: NumPy draws without replacement from fewer only.
_HYPERGEOMETRIC_LIMIT = 10**9


def _count_folds(targets: Targets, k: int, seed: int) -> list[Fold]:
    """``k`` folds that share each row's count (:func:`splits_counts`) between the held-out parts, as
    shuffled stratified folds of the repeated rows would.

    Lay each class's observations end to end, the classes one after another, and give position ``p`` to
    held-out part ``p % k``: each class is spread evenly over the parts (sizes within one of each other,
    the larger parts rotating from class to class), as ``StratifiedKFold`` deals out the repeated rows.
    Which of a class's observations fill a part is drawn by :func:`deal_counts`, so a row of count 5 may
    put 2 observations in one part and none in another, as its 5 copies could fall.

    Fold ``j`` holds out the rows with observations in part ``j``, weighted by their number, and trains on
    the rest of each row's count. Rows of weight 0 are in no part: the folds are those of the data
    without them.
    """
    rows = np.flatnonzero(targets.weight > 0)
    counts = targets.weight[rows].astype(np.int64)
    labels = targets.labels[rows]
    sizes = []
    start = 0  # position of the class's first observation
    for c in np.unique(labels):
        total = int(counts[labels == c].sum())
        sizes.append(total // k + ((np.arange(k) - start) % k < total % k))
        start += total
    held_out = deal_counts(counts, labels, np.array(sizes, dtype=np.int64), np.random.default_rng(seed))
    trained = counts[:, None] - held_out
    return [
        Fold(rows[trained[:, j] > 0], rows[held_out[:, j] > 0],
             trained[trained[:, j] > 0, j].astype(np.float64), held_out[held_out[:, j] > 0, j].astype(np.float64))
        for j in range(k)
    ]  # fmt: skip


def deal_counts(
    counts: np.ndarray, labels: np.ndarray, sizes: np.ndarray, generator: np.random.Generator
) -> np.ndarray:
    """Share whole-number ``counts`` (one per row or cell, int64) between ``k`` parts of the given sizes,
    class by class, as a shuffle of the observations they count would: an (m, k) int64 array of each
    count's observations in each part.

    ``sizes[i]`` (shape (k,)) are the part sizes of the ``i``-th class of ``np.unique(labels)``, summing
    to its observations. Which observations fill a part is a draw without replacement from the class's
    counts (the multivariate hypergeometric distribution of a shuffle), part after part, the last part
    taking the rest. A class of :data:`_HYPERGEOMETRIC_LIMIT` observations or more is dealt out with
    replacement (multinomial): its parts' sizes then vary, by about 1e-4 of a part at that size. Shared
    by ``alpha="auto"``'s count folds (:func:`_count_folds`) and early stopping's count split
    (``softmaxkit.classifier._count_validation_split``).
    """
    k = sizes.shape[1]
    held_out = np.zeros((counts.size, k), dtype=np.int64)  # observations of each count in each part
    for c, part_sizes in zip(np.unique(labels), sizes):
        members = np.flatnonzero(labels == c)
        total = int(counts[members].sum())
        if total >= _HYPERGEOMETRIC_LIMIT:
            held_out[members] = generator.multinomial(counts[members], part_sizes / total)
            continue
        left = counts[members].copy()
        for j in range(k - 1):
            held_out[members, j] = generator.multivariate_hypergeometric(left, int(part_sizes[j]))
            left -= held_out[members, j]
        held_out[members, k - 1] = left
    return held_out


def _given_folds(cv: Any, targets: Targets) -> list[Fold]:
    """The ``(train, test)`` index pairs of a splitter or an iterable of splits, read once into a list.

    Raises
    ------
    ValueError
        No split at all (an empty list, or a generator that an earlier fit
        used up: ``cv`` is read again at every fit); a split with an empty
        part, a boolean mask or an index outside the rows; a splitter that
        needs ``groups`` (``GroupKFold``), which ``fit`` cannot pass it.
    """
    n = targets.weight.shape[0]
    if hasattr(cv, "split"):
        try:
            splits = list(cv.split(np.zeros((n, 1)), targets.labels))
        except ValueError as error:
            if "'groups'" not in str(error):
                raise
            raise ValueError(
                f"cv={cv!r} needs groups, which SoftmaxClassifier.fit cannot pass it ({error}); give the splits "
                f"themselves: cv=list({cv!r}.split(X, y, groups))"
            ) from None
    else:
        used_up = is_iterator(cv)
        splits = list(cv)
        require_splits(len(splits), used_up=used_up)
    return [Fold(*_checked_split(k, train, test, n)) for k, (train, test) in enumerate(splits)]


def is_iterator(cv: Any) -> bool:
    """Whether ``cv`` is an iterator (a generator of splits): reading it empties it, so the next
    fit finds nothing. Ask before the fit reads it."""
    return not hasattr(cv, "split") and hasattr(cv, "__iter__") and iter(cv) is cv


def require_splits(n_splits: int, *, used_up: bool) -> None:
    """Raise ValueError, saying why and what to do, when a ``cv`` gave no ``(train, test)`` split.

    Shared by ``SoftmaxClassifier`` (``alpha="auto"``) and ``CalibratedClassifier``, where
    a generator that an earlier fit used up failed deep in NumPy ("need at least one array to
    concatenate"). ``used_up``: :func:`is_iterator` of the ``cv`` before it was read.
    """
    if n_splits == 0:
        hint = (
            "it is an iterator with nothing left, such as a StratifiedKFold(...).split(X, y) generator that "
            "an earlier fit used up; pass list(...) of it, which every fit can read again"
            if used_up
            else "pass at least one (train, test) pair of row indices"
        )
        raise ValueError(f"cv gave no (train, test) splits: {hint}")


def _checked_split(k: int, train: Any, test: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``k`` of a given ``cv`` as int64 row indices, or ValueError naming the split and its part."""
    parts = {"training": np.asarray(train), "held-out": np.asarray(test)}
    for name, part in parts.items():
        if part.size == 0:
            raise ValueError(f"cv split {k} has an empty {name} part; every split needs rows in both parts")
        if part.dtype.kind not in "iu":  # a boolean mask cast to int would silently pick rows 0 and 1
            raise ValueError(
                f"cv split {k}: the {name} part has dtype {part.dtype}, not row indices "
                "(for a boolean mask pass np.flatnonzero(mask))"
            )
        outside = part[(part < 0) | (part >= n)]
        if outside.size:
            raise ValueError(f"cv split {k}: the {name} part has row index {outside[0]}, outside the {n} rows")
    return parts["training"].astype(np.int64), parts["held-out"].astype(np.int64)


def search(
    folds: list[Fold] | list[tuple[np.ndarray, np.ndarray]],
    weight: np.ndarray,
    *,
    fit: Callable[[tuple[np.ndarray, np.ndarray], float, Any], Any],
    score: Callable[[Any, np.ndarray], np.ndarray],
    grid: tuple[float, ...],
    patience: int = PATIENCE,
    reference: float | None = None,
    warm: bool = True,
    first: int = 0,
    beyond: tuple[float, ...] = (),
    weaker_se: float = 1.0,
    counts: bool = False,
) -> AlphaSearch:
    """Walk ``grid`` in its order from ``grid[first]``, scoring each ``alpha`` over ``folds``.

    Parameters
    ----------
    folds : list of Fold, or of (train, test) index arrays
        The folds (:func:`make_folds`); a plain index pair is a row split.
    weight : ndarray of shape (n,)
        Row weights, of the rows of folds that do not give their own
        (:meth:`Fold.weighted`); the held-out loss is the mean of the
        held-out rows' losses weighted by what they weigh in their fold.
    fit : callable ``((train_rows, train_weight), alpha, start) -> fitted``
        Fits on ``train_rows``, weighted by ``train_weight``, from ``start``
        (None at the first ``alpha``, afterwards the fold's previous ``fitted``).
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
    beyond : tuple of float, default ()
        Weaker values past ``grid[-1]``, continuing its steps. Walked only
        when ``grid[-1]`` has the best held-out loss and it is still falling
        there (by :data:`STILL_FALLING` of ``grid[-2]``'s), each fold from its
        fit at ``grid[-1]``, and only while each value falls as much below the
        best: the first that does not ends the walk.
    weaker_se : float, default 1.0
        Standard errors of the paired test (see Notes) when the best value is
        a weaker penalty than ``reference``: :func:`rare_class_se` of the targets.
    counts : bool, default False
        The weights are counts of observations (:func:`splits_counts`, with
        the estimator's ``weights_are_counts``): the paired test's standard
        error counts ``sum w`` of them, as it would for the repeated rows,
        instead of Kish's effective sample size.

    Returns
    -------
    AlphaSearch

    Notes
    -----
    The held-out loss of ``alpha`` is ``L(alpha) = sum_i w_i l_i(alpha) / sum_i w_i``
    over every held-out row ``i`` of every fold, ``w_i`` its weight there. Let ``b`` be its minimiser
    on the path (ties keep the one evaluated first). With a ``reference`` ``r``,
    the per-row differences ``d_i = l_i(r) - l_i(b)`` have the weighted mean
    ``L(r) - L(b)`` and standard error ``sqrt(var_w(d) / n_eff)``, ``n_eff =
    (sum w)^2 / sum w^2`` (Kish's effective sample size; ``sum w`` for
    ``counts``, whose held-out row of weight 3 is 3 observations, as 3
    repeated rows would be: Kish's count made the test stricter than for the
    repeated rows, and ``alpha_`` stronger). ``b`` replaces
    ``r`` only when its improvement exceeds that standard error, and then,
    as in the one-standard-error rule of Hastie et al. (ESL, sec. 7.10), the
    strongest penalty between ``r`` and ``b`` that ``b`` does not beat by more
    than one standard error (same paired test) is taken instead of ``b``.
    When ``b`` is a weaker penalty than ``r``, both tests count ``weaker_se``
    standard errors instead of one (:data:`RARE_CLASS_SE` for a rare class).
    The minimiser of a noisy held-out curve is itself noisy; on flat curves
    following it costs more test log-loss than it saves, and log-loss
    punishes the over-confidence of too weak a penalty more than the caution
    of too strong a one. When ``b`` itself is taken, it is moved to the
    vertex of the parabola through it and its neighbours (:func:`_refine`).
    Without a reference the choice is the refined ``b``.

    :attr:`AlphaSearch.bound` is ``"strong"`` when the choice is ``grid[0]``
    (the features do not help the held-out rows), ``"weak"`` when it is the
    last value of ``beyond`` (of ``grid`` without it) and the held-out loss
    was still falling there (:data:`STILL_FALLING`).
    """
    full = (*grid, *beyond)
    folds = [Fold(*fold).weighted(weight) for fold in folds]
    w = np.concatenate([fold.test_weight for fold in folds])
    total = float(np.sum(w))
    # index -> (held-out loss, per-row losses, fold fits) of each grid value evaluated
    scored: dict[int, tuple[float, np.ndarray, tuple]] = {}

    def walk(
        order: range, starts: list[Any], must_reach: float | None, patience: int = patience, fall: float = 0.0
    ) -> None:
        """Score ``full[i]`` for ``i`` in ``order``, each fold from its previous fit, until ``patience``
        values in a row fail to improve the best seen so far (by the share ``fall`` of it)."""
        best = min((loss for loss, _, _ in scored.values()), default=np.inf)
        stalled, reached = 0, must_reach is None
        for i in order:
            alpha = full[i]
            per_row = np.concatenate([_fit_and_score(fit, score, folds, k, alpha, starts) for k in range(len(folds))])
            loss = float(np.dot(per_row, w) / total) if total > 0 else np.inf
            scored[i] = (loss, per_row, tuple(starts))
            reached = reached or np.isclose(alpha, must_reach)
            if loss < best * (1.0 - fall):
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

    def still_falling(i: int) -> bool:
        """Whether the held-out loss at ``full[i]``, the best, fell by STILL_FALLING from ``full[i - 1]``."""
        losses = [scored[j][0] for j in sorted(scored)]
        return (
            i in scored and i - 1 in scored and _argmin(losses) == sorted(scored).index(i)
            and scored[i][0] < scored[i - 1][0] * (1.0 - STILL_FALLING)
        )  # fmt: skip

    last = len(grid) - 1
    if beyond and last in scored and still_falling(last):
        # The optimum may lie past the grid: walk on while the loss keeps falling (a
        # near-separable MLP under L-BFGS loses a constant share per decade).
        walk(range(last + 1, len(full)), list(scored[last][2]), None, patience=1, fall=STILL_FALLING)
    evaluated = sorted(scored)
    path = [full[i] for i in evaluated]
    losses = [scored[i][0] for i in evaluated]
    row_losses = [scored[i][1] for i in evaluated]
    history = [scored[i][2] for i in evaluated]
    best_index = _argmin(losses)
    chosen = _refine(path, losses)
    if reference is not None:
        ref_index = int(np.argmin(np.abs(np.log(path) - np.log(reference))))
        # path runs strongest first: a best past the reference is a weaker penalty
        se = weaker_se if best_index > ref_index else 1.0

        def beaten(gain: np.ndarray) -> bool:
            return _significantly_better(gain, w, se=se, counts=counts)

        if not beaten(row_losses[ref_index] - row_losses[best_index]):
            chosen = path[ref_index]
        else:
            # From the best back towards the reference (stronger penalties) while the best is not
            # clearly better. A best stronger than the reference is itself the strongest value
            # between the two: no step (walking on, past it, cost synth_linear 0.3% of median test log-loss).
            k = best_index
            while k > ref_index and not beaten(row_losses[k - 1] - row_losses[best_index]):
                k -= 1
            if k != best_index:
                chosen = path[k]
    nearest = int(np.argmin(np.abs(np.log(path) - np.log(chosen))))
    fold_fits = history[nearest] if warm else ()
    # At either end the choice is the grid value itself (_refine moves interior ones only).
    weakest = len(full) - 1
    bound = "strong" if chosen == full[0] else "weak" if chosen == full[-1] and still_falling(weakest) else None
    return AlphaSearch(float(chosen), np.asarray(path), np.asarray(losses), len(folds), fold_fits, bound)


def _fit_and_score(fit, score, folds: list[Fold], i: int, alpha: float, starts: list[Any]) -> np.ndarray:
    """Fit fold ``i`` at ``alpha`` from its previous solution; its held-out row losses."""
    fold = folds[i]
    starts[i] = fit((fold.train, fold.train_weight), alpha, starts[i])
    return np.asarray(score(starts[i], fold.test), dtype=np.float64)


def _significantly_better(gain: np.ndarray, weight: np.ndarray, *, se: float = 1.0, counts: bool = False) -> bool:
    """Whether the weighted mean of ``gain`` exceeds ``se`` standard errors of it (``counts``: the weights
    count observations, see :func:`search`).

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
    n_eff = total if counts else total**2 / float(np.dot(weight, weight))
    return mean > se * np.sqrt(var / n_eff)


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
    with positive weight, or observations for counts: :func:`splits_counts`) has a single member, or,
    for probability / count targets, fewer than two rows carry weight. The penalty is
    ``LogisticRegression()``'s, :func:`reference_alpha`."""
    return AlphaSearch(reference_alpha(n_classes), np.zeros(0), np.zeros(0), 0)


def why_too_small(targets: Targets, *, weights_are_counts: bool = False) -> str:
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
    counts = _class_counts(targets, weights_are_counts=weights_are_counts)
    return _few_rows(targets, counts == 1, 1, weights_are_counts=weights_are_counts)


def rare_class_se(targets: Targets, *, weights_are_counts: bool = False) -> float:
    """Standard errors by which a penalty weaker than the reference must beat it (``search``'s
    ``weaker_se``): :data:`RARE_CLASS_SE` when some class has fewer than :data:`RARE_CLASS_ROWS` rows
    of positive weight (observations, for counts: :func:`splits_counts`), else 1. Probability and count
    targets have no class to count: 1."""
    if targets.labels is None:
        return 1.0
    counts = _class_counts(targets, weights_are_counts=weights_are_counts)
    return RARE_CLASS_SE if int(counts[counts > 0].min()) < RARE_CLASS_ROWS else 1.0


def why_fewer_folds(
    targets: Targets, n_folds: int, cv: Any, *, default: int = DEFAULT_FOLDS, weights_are_counts: bool = False
) -> str | None:
    """Why :func:`make_folds` made ``n_folds`` folds, fewer than ``cv`` asked for, in words; None when it
    made as many (or ``cv`` gave the splits themselves), for the estimator's warning.

    ``"2 internal folds, not 5: class 'b' has 2 rows"`` (``"classes 'a', 'b' have 3 rows each"``;
    ``"... rows with positive weight"`` when some rows weigh 0): the classes of fewest rows, which set
    ``n_folds``; for probability or count targets ``"only 3 rows have positive weight"``. Silent, the
    reduction hid how few held-out rows of a class chose ``alpha``: 2 of 200 rows (audit AJ) let it pick
    a 10 times weaker penalty than ``LogisticRegression()``'s and give the test set's two positives
    p = 6e-9 and 4e-8.
    """
    if cv is not None and not isinstance(cv, numbers.Integral):
        return None
    wanted = default if cv is None else int(cv)
    if n_folds >= wanted:
        return None
    positive = targets.weight > 0
    if targets.labels is None:
        reason = f"only {int(np.sum(positive))} rows have positive weight"
    else:
        counts = _class_counts(targets, weights_are_counts=weights_are_counts)
        reason = _few_rows(targets, counts == n_folds, n_folds, weights_are_counts=weights_are_counts)
    return f"{n_folds} internal folds, not {wanted}: {reason}"


def _class_counts(targets: Targets, *, weights_are_counts: bool = False) -> np.ndarray:
    """Rows of positive weight in each class of ``targets.classes`` (the counts the default folds stratify),
    or for counts (:func:`splits_counts`) the observations, as many as the repeated rows."""
    positive = targets.weight > 0
    counts = targets.weight[positive] if splits_counts(targets, weights_are_counts=weights_are_counts) else None
    return np.rint(np.bincount(targets.labels[positive], counts, minlength=len(targets.classes))).astype(np.int64)


def _few_rows(targets: Targets, which: np.ndarray, count: int, *, weights_are_counts: bool = False) -> str:
    """``"class 'x' has 2 rows"`` / ``"classes 'a', 'b' have 1 row each"`` for the classes ``which`` (at most
    three named), ``"... with positive weight"`` when some rows weigh 0, ``"..., counting sample_weight as
    repeated rows"`` for counts (:func:`splits_counts`)."""
    few = targets.classes[which]
    names = ", ".join(_show(c) for c in few[:3]) + (", ..." if len(few) > 3 else "")
    row = "row" if count == 1 else "rows"
    counted = splits_counts(targets, weights_are_counts=weights_are_counts)
    row += "" if counted or np.all(targets.weight > 0) else " with positive weight"
    text = f"class {names} has {count} {row}" if len(few) == 1 else f"classes {names} have {count} {row} each"
    return text + (", counting sample_weight as repeated rows" if counted else "")


def prior_log_loss(targets: Targets) -> float:
    """The log-loss of predicting the weighted class frequencies on the rows that gave them: their
    entropy, what the held-out log-loss of a model that learnt nothing is close to, and the yardstick
    of :data:`SEPARABLE_SHARE`."""
    total = float(np.sum(targets.weight))
    if targets.labels is not None:
        frequencies = np.bincount(targets.labels, targets.weight, minlength=len(targets.classes)) / total
    else:
        frequencies = targets.weight @ targets.target / total
    present = frequencies[frequencies > 0]
    return float(-np.dot(present, np.log(present)))


def weight_scale(targets: Targets) -> float | None:
    """The total of ``sample_weight`` (:func:`row_sample_weight`) over its rows of positive weight, when
    it differs from their count by :data:`WEIGHT_SCALE_FACTOR` or more and the weights are not all whole
    numbers; else None.

    The penalty counts rows of weight 1, so such weights shift the grid against the rows' information
    (see :class:`~softmaxkit.SoftmaxClassifier`'s Notes, *Weights are repetitions*). Whole numbers count
    repetitions, whose total is the observations' number; weights scaled to mean 1 and
    ``compute_sample_weight("balanced", y)`` sum to the rows exactly.
    """
    weight = row_sample_weight(targets)
    positive = weight[weight > 0]
    if positive.size == 0 or np.all(positive == np.floor(positive)):
        return None
    total = float(np.sum(positive))
    ratio = total / positive.size
    return total if max(ratio, 1.0 / ratio) >= WEIGHT_SCALE_FACTOR else None


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
    "ALPHA_GRID", "DEFAULT_FOLDS", "DEFAULT_FOLDS_MLP", "MLP_ALPHA_BEYOND", "MLP_ALPHA_FLOOR", "MLP_ALPHA_GRID",
    "PATH_START", "PATIENCE", "RARE_CLASS_ROWS", "RARE_CLASS_SE", "SEPARABLE_SHARE", "STILL_FALLING",
    "WEIGHT_SCALE_FACTOR",
    "AlphaSearch", "Cells", "Fold", "count_cells", "deal_counts", "fallback", "make_folds", "prior_log_loss",
    "reference_alpha", "rare_class_se", "row_sample_weight", "sample_count", "search",
    "splits_counts", "weight_scale", "weights_held_whole", "whole_number_weights", "why_fewer_folds",
    "why_too_small",
]  # fmt: skip

