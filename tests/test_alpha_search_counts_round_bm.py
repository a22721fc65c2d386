"""Audit BM: counts, repeated rows and their folds.

1. ``alpha="auto"`` with counts as ``sample_weight`` (deduplicated rows) held each row out whole, so no
   fold trained on an (input, class) pair that it scored: 4000 rows deduplicated to 22 chose ``alpha_``
   1e4 against 1 for the repeated rows, one-hot designs came out 0.41-0.45 off the true frequencies.
   With ``weights_are_counts=True`` the default folds share each count between them, as they would the
   repeated copies.
4. Audit R15: that count split was the default for any whole-number weights, so integer importance
   weights (``np.where(y == 1, 5, 1)``) were split as counts and every fold trained on the rows it scored
   (weighted test log-loss 0.514 -> 0.584). Rows are split by default again, with a warning that names
   ``weights_are_counts``; the CLI's ``--sample-weight`` (counts) passes it.
2. ``CalibratedClassifier(cv=5)`` used unshuffled stratified folds (scikit-learn's): on rows sorted by
   input (``np.repeat``'s layout) every fold held out whole inputs, and a frequency of 0.01 came out 0.135.
3. The ``cv`` docstring advised grouping repeated inputs together, which breaks frequency recovery.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state

from softmaxkit import SoftmaxClassifier
from softmaxkit._alpha_search import make_folds, search
from softmaxkit._targets import encode_targets
from softmaxkit.calibration import CalibratedClassifier

#: Audit BM's e1 design: 4 categories (one-hot), 3 classes, 500 observations each, known frequencies.
TRUE = np.array([[0.70, 0.29, 0.01], [0.30, 0.60, 0.10], [0.05, 0.05, 0.90], [0.50, 0.49, 0.01]])
COUNTS = np.rint(TRUE * 500).astype(int)
INPUTS = np.eye(4)


def _repeated() -> tuple[np.ndarray, np.ndarray]:
    """The observations as repeated rows, sorted by input then class (``np.repeat``'s layout)."""
    X = np.repeat(np.repeat(INPUTS, 3, axis=0), COUNTS.ravel(), axis=0)
    y = np.repeat(np.tile(np.arange(3), 4), COUNTS.ravel())
    return X, y


def _deduplicated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same observations as one row per (input, class) with its count as ``sample_weight``."""
    return np.repeat(INPUTS, 3, axis=0), np.tile(np.arange(3), 4), COUNTS.ravel().astype(float)


def _fit(*args, **kw) -> tuple[SoftmaxClassifier, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SoftmaxClassifier(**kw).fit(*args)
    return model, [str(w.message) for w in caught]


# --------------------------------------------------------------------------- 1. counts split like repeated rows


@pytest.mark.parametrize("standardize", [False, True])
def test_counts_recover_the_frequencies_as_repeated_rows_do(standardize):
    """Before: alpha_ 267.6 (1e4 standardised) and probabilities 0.41 (0.60) off the truth."""
    rep, rep_warnings = _fit(*_repeated(), standardize=standardize, random_state=0)
    X, y, w = _deduplicated()
    counts, count_warnings = _fit(X, y, w, standardize=standardize, random_state=0, weights_are_counts=True)
    assert counts.alpha_ == pytest.approx(rep.alpha_, rel=0.5) and not counts.alpha_at_bound_
    assert count_warnings == rep_warnings == []  # no "strongest penalty" warning, no capped folds
    np.testing.assert_allclose(counts.predict_proba(INPUTS), rep.predict_proba(INPUTS), atol=2e-3)
    np.testing.assert_allclose(counts.predict_proba(INPUTS), TRUE, atol=0.01)
    if not standardize:  # LogisticRegression() penalises the raw weights: alpha_ keeps its penalty here
        lr = LogisticRegression().fit(X, y, sample_weight=w)
        np.testing.assert_allclose(counts.predict_proba(INPUTS), lr.predict_proba(INPUTS), atol=2e-3)


def test_deduplicating_with_np_unique_keeps_the_choice():
    """Audit BM's f1_dedup: 4000 rows on 3 binary features deduplicated to 22 rows plus counts.
    Before: alpha_ 1e4 (the strong bound, with its warning) against 1, probabilities 0.141 apart."""
    rng = np.random.RandomState(0)
    table = rng.dirichlet([2, 2, 0.3], size=8)
    cells = rng.randint(0, 8, 4000)
    y = np.array([rng.choice(3, p=table[c]) for c in cells])
    X = ((cells[:, None] >> np.arange(3)) & 1).astype(float)
    unique, count = np.unique(np.c_[X, y], axis=0, return_counts=True)
    rep, _ = _fit(X, y)
    dedup, dedup_warnings = _fit(unique[:, :-1], unique[:, -1].astype(int), count.astype(float),
                                 weights_are_counts=True)
    assert dedup.alpha_ == pytest.approx(rep.alpha_, rel=0.5) and dedup_warnings == []
    query = ((np.arange(8)[:, None] >> np.arange(3)) & 1).astype(float)
    np.testing.assert_allclose(dedup.predict_proba(query), rep.predict_proba(query), atol=2e-3)


def test_count_folds_share_each_count_and_spread_each_class_evenly():
    """Fold k trains on w - w_k and scores w_k; each class's observations are spread over the held-out
    parts as StratifiedKFold spreads the repeated rows (part sizes within one of each other)."""
    X, y, w = _deduplicated()
    w[5] = 0.0  # a row of weight 0 is in no part
    targets = encode_targets(y, sample_weight=w, n_samples=len(y))
    folds = make_folds(targets, None, check_random_state(0), weights_are_counts=True)
    assert len(folds) == 5
    held = np.zeros((len(y), 5))
    for k, fold in enumerate(folds):
        assert 5 not in fold.train and 5 not in fold.test
        assert np.all(fold.train_weight > 0) and np.all(fold.test_weight > 0)
        trained = np.zeros(len(y))
        trained[fold.train] = fold.train_weight
        held[fold.test, k] = fold.test_weight
        np.testing.assert_array_equal(trained + held[:, k], w)  # the rest of each count trains
    for c in range(3):
        per_part = held[y == c].sum(axis=0)
        assert per_part.sum() == w[y == c].sum() and per_part.max() - per_part.min() <= 1
    # as many rows held out as for the repeated rows: 2000 / 5 per part, each part within one class row
    assert np.all(np.abs(held.sum(axis=0) - w.sum() / 5) <= 3)


def test_count_folds_are_the_repeated_rows_folds_in_distribution():
    """How often row 2's 2 copies fall in one held-out part: the count split against StratifiedKFold of
    the repeated rows (600 draws each; both about 0.067 for this layout)."""
    y = np.array([0, 0, 0, 1, 1, 2])
    w = np.array([3.0, 1.0, 2.0, 4.0, 1.0, 5.0])
    targets = encode_targets(y, sample_weight=w, n_samples=6)
    copies = np.repeat(np.arange(6), w.astype(int))
    ours, theirs = [], []
    for seed in range(600):
        folds = make_folds(targets, None, np.random.RandomState(seed), weights_are_counts=True)
        ours.append(max(fold.test_weight[fold.test == 2].sum() for fold in folds) == 2)
        parts = StratifiedKFold(5, shuffle=True, random_state=seed).split(copies[:, None], y[copies])
        theirs.append(max(np.sum(copies[test] == 2) for _, test in parts) == 2)
    assert np.mean(ours) == pytest.approx(np.mean(theirs), abs=0.04)
    assert 0.035 < np.mean(ours) < 0.1


def test_given_the_same_folds_counts_and_repeated_rows_choose_the_same_alpha():
    """The count split's folds, laid out over the repeated rows as an explicit cv: the same path, the
    same held-out losses and the same alpha_, so the paired test counts the observations too."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + rng.normal(size=120) > 0).astype(int) + (X[:, 1] > 1)
    w = rng.integers(0, 4, 120).astype(float)
    targets = encode_targets(y, sample_weight=w, n_samples=len(y))
    folds = make_folds(targets, None, check_random_state(1), weights_are_counts=True)
    first = np.r_[0, np.cumsum(w.astype(int))]  # where each row's copies start among the repeated rows
    part = np.full(int(w.sum()), -1)
    for k, fold in enumerate(folds):
        for row, count in zip(fold.test, fold.test_weight.astype(int)):
            free = first[row] + np.flatnonzero(part[first[row]:first[row + 1]] == -1)[:count]
            part[free] = k
    assert np.all(part >= 0)
    copies = np.repeat(np.arange(len(y)), w.astype(int))
    cv = [(np.flatnonzero(part != k), np.flatnonzero(part == k)) for k in range(len(folds))]
    counts, _ = _fit(X, y, w, random_state=1, weights_are_counts=True)
    repeated, _ = _fit(X[copies], y[copies], cv=cv, random_state=1)
    np.testing.assert_allclose(counts.alpha_path_, repeated.alpha_path_)
    np.testing.assert_allclose(counts.alpha_path_loss_, repeated.alpha_path_loss_, rtol=1e-8)
    assert counts.alpha_ == pytest.approx(repeated.alpha_, rel=1e-6)


def test_the_paired_test_counts_observations_for_counts():
    """A held-out row of weight 3 is 3 observations, as 3 repeated rows: Kish's effective size (here 2.6
    of 6 observations) made a gain that the repeated rows call significant look like noise."""
    from softmaxkit._alpha_search import _significantly_better

    gain, w = np.array([0.4, -0.3, 0.5]), np.array([3.0, 2.0, 1.0])
    expanded = np.repeat(gain, w.astype(int))
    assert _significantly_better(expanded, np.ones(6))
    assert _significantly_better(gain, w, counts=True)
    assert not _significantly_better(gain, w)  # importance weights: Kish's count stands


def test_the_smallest_class_counts_observations_and_the_warnings_say_so():
    """A class of one row of weight 3 is 3 observations: 3 folds, not the fallback for a class of one row."""
    X, y, w = _deduplicated()
    keep = ~((y == 2) & (np.arange(12) != 2))  # class 2: only input 0's row, 5 observations
    w = w.copy()
    w[2] = 3.0
    model, messages = _fit(X[keep], y[keep], w[keep], weights_are_counts=True)
    assert len(model.alpha_path_) > 0
    assert [m for m in messages if "internal folds" in m] == [
        m for m in messages if "over 3 internal folds, not 5: class 2 has 3 rows, counting sample_weight as "
        "repeated rows, and every fold" in m
    ] != []
    w[2] = 1.0  # a single observation: nothing to hold out, and the warning names it
    with pytest.warns(UserWarning, match=r"searched no penalty: class 2 has 1 row, counting sample_weight as "
                                         r"repeated rows, which no internal fold"):
        SoftmaxClassifier(weights_are_counts=True).fit(X[keep], y[keep], w[keep])


@pytest.mark.parametrize("weights_are_counts", [True, False])
def test_weight_zero_is_still_removing_the_row_under_the_count_split(weights_are_counts):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=90) > 0).astype(int)
    w = rng.integers(0, 4, 90).astype(float)
    assert np.any(w == 0) and np.any(w > 1)
    keep = w > 0
    weighted, _ = _fit(X, y, w, random_state=4, weights_are_counts=weights_are_counts)
    dropped, _ = _fit(X[keep], y[keep], w[keep], random_state=4, weights_are_counts=weights_are_counts)
    np.testing.assert_allclose(weighted.alpha_path_loss_, dropped.alpha_path_loss_, rtol=1e-9)
    assert weighted.alpha_ == pytest.approx(dropped.alpha_, rel=1e-9)


def test_fractional_weights_and_given_folds_keep_row_splits():
    X, y, w = _deduplicated()
    importance = encode_targets(y, sample_weight=w + 0.5, n_samples=len(y))
    folds = make_folds(importance, None, check_random_state(0), weights_are_counts=True)
    assert all(fold.test_weight is None for fold in folds)
    counts = encode_targets(y, sample_weight=w, n_samples=len(y))
    given = [(np.arange(6, 12), np.arange(6)), (np.arange(6), np.arange(6, 12))]
    folds = make_folds(counts, given, check_random_state(0), weights_are_counts=True)
    assert all(fold.test_weight is None for fold in folds)


def test_search_takes_plain_index_pairs_and_weighted_folds_alike():
    """A plain (train, test) pair is a row split carrying the rows' own weights; a Fold's weights are its own."""
    from softmaxkit._alpha_search import Fold

    weight = np.array([1.0, 2.0, 3.0, 4.0])
    seen = []

    def fit(train, alpha, start):
        seen.append(train)
        return alpha

    def score(alpha, test):
        return np.full(len(test), 1.0 / alpha)

    plain = [(np.array([0, 1]), np.array([2, 3])), (np.array([2, 3]), np.array([0, 1]))]
    search(plain, weight, fit=fit, score=score, grid=(1.0, 0.1), warm=False)
    np.testing.assert_array_equal(seen[0][1], [1.0, 2.0])
    shared = [Fold(np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0]), np.array([1.0, 3.0]))] * 2
    seen.clear()
    search(shared, weight, fit=fit, score=score, grid=(1.0, 0.1), warm=False)
    np.testing.assert_array_equal(seen[0][1], [1.0, 1.0])


def test_counts_count_as_observations_for_the_mlp_solver():
    """solver="auto" picks L-BFGS for a standardised MLP from 100 rows: 22 deduplicated rows standing for
    2000 observations are trained as the repeated rows are (before: Adam, and alpha_ 100)."""
    X, y, w = _deduplicated()
    model = SoftmaxClassifier(hidden_layer_sizes=(4,), standardize=True, random_state=0)
    assert model._resolve_solver(int(w.sum())) == "lbfgs"
    from softmaxkit._alpha_search import sample_count

    targets = encode_targets(y, sample_weight=w, n_samples=len(y))
    assert sample_count(targets, weights_are_counts=True) == 2000
    assert sample_count(targets) == 12  # by default the weights are no observations: rows
    # fractional weights are never counts
    assert sample_count(encode_targets(y, sample_weight=w / 3, n_samples=len(y)), weights_are_counts=True) == 12


# --------------------------------------------------------------------------- 2. CalibratedClassifier's folds


def test_calibrated_classifier_shuffles_its_int_folds():
    """Rows sorted by input: unshuffled folds held out whole inputs, and p(class 2 | input 0), truly 0.01,
    came out 0.135 (max error 0.288); shuffled, within 0.005 of the truth."""
    X, y = _repeated()
    model = CalibratedClassifier(LogisticRegression()).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(INPUTS), TRUE, atol=0.005)


def test_calibrated_classifier_folds_are_seeded_by_the_estimators_random_state():
    X, y = _repeated()
    order = np.random.default_rng(0).permutation(len(y))[:600]
    X, y = X[order], y[order]
    for seed, estimator in [(3, SoftmaxClassifier(alpha=1.0, random_state=3)), (0, SoftmaxClassifier(alpha=1.0))]:
        ours = CalibratedClassifier(estimator, cv=3).fit(X, y)
        explicit = CalibratedClassifier(estimator, cv=StratifiedKFold(3, shuffle=True, random_state=seed)).fit(X, y)
        np.testing.assert_array_equal(ours.predict_proba(INPUTS), explicit.predict_proba(INPUTS))


# --------------------------------------------------------------------------- 3. the cv docstring's grouping advice


def test_cv_docstring_does_not_advise_grouping_identical_inputs():
    doc = " ".join(SoftmaxClassifier.__doc__.split())
    assert "keeps the repeated copies of an input in one fold" not in doc
    assert "keeps related rows (the same patient's) in one fold" in doc
    assert "Do not group identical inputs seen with different labels" in doc


def test_per_fold_calibrator_warnings_with_their_own_numbers_come_once_at_the_callers_line():
    """Audit R15: Platt's light-weight warning holds each fold's own sum, so calibrate_on="own_fold" gave
    one warning per fold, and stacklevel=4 named a line outside the caller's file ("sys")."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    w = np.full(len(y), 1 / len(y))  # sums to 1: the pseudo-counts dominate every fold's fit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CalibratedClassifier(LogisticRegression(), method="platt", cv=5, ensemble=True,
                             calibrate_on="own_fold").fit(X, y, sample_weight=w)
    light = [w for w in caught if "sample_weight sums to" in str(w.message)]
    assert len(light) == 1, [str(w.message) for w in light]
    assert "alike in 4 more folds, with their own numbers" in str(light[0].message)
    assert light[0].filename == __file__


# --------------------------------------------------------------------------- 4. counts are opt-in (audit R15)


def _importance_data(seed: int = 4, n: int = 300):
    """R15's imp_warn: imbalanced classes, the rare class weighted 5 (an importance, not a count)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=30, n_informative=5, weights=[0.9, 0.1], flip_y=0.05,
                               random_state=seed)
    return X, y, np.where(y == 1, 5.0, 1.0)


def test_integer_importance_weights_are_split_with_their_rows_by_default():
    """The default folds are scikit-learn's StratifiedKFold of the rows, each held out with its whole weight,
    and the fit is the one with those folds given: no held-out row is trained on in its fold. Under the
    count split, each held-out row of weight 5 was also in its fold's training part (R15: weighted test
    log-loss 0.514 -> 0.584)."""
    X, y, w = _importance_data()
    targets = encode_targets(y, sample_weight=w, n_samples=len(y))
    for fold in make_folds(targets, None, check_random_state(0)):
        assert fold.test_weight is None and np.intersect1d(fold.train, fold.test).size == 0
    seed = check_random_state(0).randint(np.iinfo(np.int32).max)  # make_folds' draw for random_state=None
    rows = StratifiedKFold(5, shuffle=True, random_state=seed)
    default, said = _fit(X, y, w)
    given, _ = _fit(X, y, w, cv=rows)
    np.testing.assert_allclose(default.alpha_path_loss_, given.alpha_path_loss_, rtol=1e-12)
    assert default.alpha_ == given.alpha_
    np.testing.assert_array_equal(default.predict_proba(X), given.predict_proba(X))
    assert sum("weights_are_counts=True" in m for m in said) == 1
    counted, _ = _fit(X, y, w, weights_are_counts=True)  # what it did: another search, another alpha_
    assert counted.alpha_ != default.alpha_


def test_the_warning_names_weights_are_counts_once_and_only_where_it_applies():
    X, y, w = _importance_data(n=120)
    with pytest.warns(UserWarning, match=r"folds split rows, each held out with its whole weight.*"
                                         r"weights_are_counts=True") as record:
        SoftmaxClassifier().fit(X, y, sample_weight=w)
    named = [r for r in record if "weights_are_counts" in str(r.message)]
    assert len(named) == 1 and named[0].filename == __file__  # the caller's line
    quiet = [
        dict(weights_are_counts=True),
        dict(cv=StratifiedKFold(3, shuffle=True, random_state=0)),  # given folds always split rows
        dict(alpha=1.0),  # no search
    ]
    zero_one = (np.arange(len(y)) % 4 > 0).astype(float)  # whole numbers, none above 1
    for params, weight in [(kw, w) for kw in quiet] + [({}, w + 0.5), ({}, zero_one), ({}, None)]:
        _, said = _fit(X, y, weight, **params)
        assert not any("weights_are_counts" in m for m in said), params


def test_an_mlp_on_30_rows_with_integer_weights_keeps_adam_by_default():
    """R15's mlp_counts: 30 iris rows weighted 2-7 counted as ~135 observations got L-BFGS, alpha_ at the
    floor and test log-loss up to 1.77; as rows they are 30, fewer than MLP_LBFGS_MIN_ROWS: Adam."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.permutation(150)[:30]
    w = rng.integers(2, 8, size=30).astype(float)
    kw = dict(hidden_layer_sizes=(4,), standardize=True, random_state=0, max_iter=20)
    model, _ = _fit(X[rows], y[rows], w, **kw)
    assert model.solver_ == "adam"
    counted, _ = _fit(X[rows], y[rows], w, weights_are_counts=True, **kw)
    assert counted.solver_ == "lbfgs"


def test_weights_are_counts_is_a_saved_validated_parameter(tmp_path):
    from sklearn.base import clone

    import softmaxkit
    from softmaxkit import io

    X, y, w = _deduplicated()
    model = SoftmaxClassifier(alpha=1.0, weights_are_counts=True).fit(X, y, w)
    assert model.get_params()["weights_are_counts"] is True and clone(model).weights_are_counts is True
    loaded = softmaxkit.load(model.save(tmp_path / "m.npz"))
    assert loaded.get_params() == model.get_params()
    kind, meta, arrays = io.read_state(tmp_path / "m.npz")
    meta["params"].pop("weights_are_counts")  # a file written before the parameter existed
    old = softmaxkit.load(io.save_state(tmp_path / "old.npz", kind=kind, meta=meta, arrays=arrays))
    assert old.weights_are_counts is False
    np.testing.assert_array_equal(old.predict_proba(X), model.predict_proba(X))
    with pytest.raises(ValueError, match=r"weights_are_counts must be True or False, got 'yes'"):
        SoftmaxClassifier(weights_are_counts="yes").fit(X, y, w)
