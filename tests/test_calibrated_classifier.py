"""IsotonicCalibration, PlattScaling and the cross-fitted CalibratedClassifier.

Peers: scikit-learn 1.9's ``CalibratedClassifierCV`` (isotonic and sigmoid
match to 1e-6 on the same scores: with 3 or more classes' logits, each class's
log-odds, which our maps read and scikit-learn's read through
:class:`LogOddsScores`), and ports of its own tests
(sklearn/tests/test_calibration.py) with their expected numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.datasets import load_iris, load_wine, make_blobs, make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import softmaxkit as sk  # noqa: E402
from softmaxkit.calibration import (  # noqa: E402
    CalibratedClassifier,
    CalibrationWarning,
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
    ZeroProbabilityWarning,
)
from softmaxkit.metrics import brier_score, log_loss  # noqa: E402
from test_one_vs_rest_log_odds_round_co import LogOddsScores  # noqa: E402

METHODS = ["temperature", "vector", "matrix", "isotonic", "platt"]
SKLEARN_NAME = {"isotonic": "isotonic", "platt": "sigmoid"}


def _two_column(f):
    return np.column_stack([-f / 2, f / 2])


@pytest.fixture(scope="module")
def data():
    """scikit-learn's fixture: make_classification(n_samples=200, n_features=6, random_state=42)."""
    return make_classification(n_samples=200, n_features=6, random_state=42)


# --------------------------------------------------------------------------- parity with scikit-learn


@pytest.mark.parametrize("method", ["isotonic", "platt"])
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_vs_rest_maps_match_sklearn_on_logits(method, n_classes, weighted):
    X, y = make_classification(n_samples=900, n_features=8, n_informative=5, n_classes=n_classes, random_state=0)
    clf = LogisticRegression(C=0.5).fit(X[:300], y[:300])
    X_cal, y_cal, X_test = X[300:600], y[300:600], X[600:]
    w = np.random.default_rng(1).uniform(0.2, 3.0, 300) if weighted else None
    # scikit-learn on the log-odds our maps read (audit CO: not the raw logits, which a constant per
    # row changes); the margin itself when binary
    scores = FrozenEstimator(LogOddsScores(FrozenEstimator(clf)).fit(X_cal, y_cal))
    theirs = CalibratedClassifierCV(scores, method=SKLEARN_NAME[method])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # FrozenEstimator takes no sample_weight: calibrator only
        theirs.fit(X_cal, y_cal, sample_weight=w)
    z_cal, z_test = clf.decision_function(X_cal), clf.decision_function(X_test)
    if n_classes == 2:
        z_cal, z_test = _two_column(z_cal), _two_column(z_test)
    cls = IsotonicCalibration if method == "isotonic" else PlattScaling
    ours = cls().fit(z_cal, y_cal, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(z_test), theirs.predict_proba(X_test), atol=1e-6)
    # And through the meta-estimator.
    ours_cc = CalibratedClassifier(FrozenEstimator(clf), method=method).fit(X_cal, y_cal, sample_weight=w)
    np.testing.assert_allclose(ours_cc.predict_proba(X_test), theirs.predict_proba(X_test), atol=1e-6)


@pytest.mark.parametrize("ensemble", [True, False])
def test_isotonic_cross_fitted_matches_sklearn_on_a_probability_model(ensemble):
    """A random forest has predict_proba only: isotonic maps the probabilities themselves, as scikit-learn."""
    X, y = make_classification(n_samples=600, n_features=8, n_informative=5, n_classes=3, random_state=3)
    rf = RandomForestClassifier(n_estimators=20, random_state=0)
    cv = StratifiedKFold(3)  # the same folds: an int cv shuffles here, not in scikit-learn
    theirs = CalibratedClassifierCV(rf, method="isotonic", cv=cv, ensemble=ensemble).fit(X[:400], y[:400])
    ours = CalibratedClassifier(rf, method="isotonic", cv=cv, ensemble=ensemble, calibrate_on="own_fold")
    ours.fit(X[:400], y[:400])
    np.testing.assert_allclose(ours.predict_proba(X[400:]), theirs.predict_proba(X[400:]), atol=1e-6)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
@pytest.mark.parametrize("ensemble", [True, False])
def test_cross_fitted_matches_sklearn_on_a_decision_function_model(method, ensemble, data):
    X, y = data
    cv = StratifiedKFold(5)  # the same folds: an int cv shuffles here, not in scikit-learn
    theirs = CalibratedClassifierCV(LogisticRegression(), method=SKLEARN_NAME[method], cv=cv, ensemble=ensemble)
    ours = CalibratedClassifier(LogisticRegression(), method=method, cv=cv, ensemble=ensemble, calibrate_on="own_fold")
    np.testing.assert_allclose(ours.fit(X, y).predict_proba(X), theirs.fit(X, y).predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
@pytest.mark.parametrize("weighted", [False, True])
def test_frozen_estimator_with_ensemble_true_calibrates_per_fold_as_sklearn(method, weighted):
    """Audit: ensemble=True around a FrozenEstimator was silently ignored (one calibrator on all
    rows; isotonic probabilities 0.136 away from scikit-learn's). CalibratedClassifierCV fits one
    calibrator per fold of the calibration rows, all around the frozen model, and averages them."""
    X, y = make_classification(n_samples=600, n_features=6, flip_y=0.1, random_state=1)
    base = LogisticRegression().fit(X[:300], y[:300])
    w = np.random.default_rng(2).uniform(0.2, 3.0, 300) if weighted else None
    cv = StratifiedKFold(5)  # scikit-learn's default folds: an int cv (the default) shuffles here
    theirs = CalibratedClassifierCV(FrozenEstimator(base), method=SKLEARN_NAME[method], cv=cv, ensemble=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # FrozenEstimator takes no sample_weight: calibrator only
        theirs.fit(X[300:], y[300:], sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is refitted, so no warning about the estimator's weights
        warnings.simplefilter("ignore", ZeroProbabilityWarning)  # isotonic maps at 0: true, not about weights
        ours = CalibratedClassifier(FrozenEstimator(base), method=method, cv=cv, ensemble=True,
                                    calibrate_on="own_fold")
        ours.fit(X[300:], y[300:], sample_weight=w)
    assert len(ours.calibrated_classifiers_) == 5
    assert all(pair.estimator.estimator is base for pair in ours.calibrated_classifiers_)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    # The default stays one calibrator on all rows, as scikit-learn's "auto" does for a frozen model.
    single = CalibratedClassifier(FrozenEstimator(base), method=method).fit(X[300:], y[300:], sample_weight=w)
    assert len(single.calibrated_classifiers_) == 1
    # Sharing one calibrator across the folds of a frozen model is fitting it on all rows.
    shared = CalibratedClassifier(FrozenEstimator(base), method=method, ensemble=True, calibrate_on="all_folds")
    shared.fit(X[300:], y[300:], sample_weight=w)
    np.testing.assert_allclose(shared.predict_proba(X), single.predict_proba(X), atol=1e-6)


def test_frozen_estimator_with_ensemble_true_needs_rows_for_its_folds():
    """Its folds split the calibration rows, so, as for any cv, a class needs as many rows as folds."""
    X, y = load_iris(return_X_y=True)
    frozen = FrozenEstimator(LogisticRegression(max_iter=1000).fit(X, y))
    rows = np.r_[0:3, 50:100, 100:150]
    with pytest.raises(ValueError, match=r"cv=5 folds need at least 5 rows of every class, but class 0 has 3"):
        CalibratedClassifier(frozen, ensemble=True).fit(X[rows], y[rows])
    assert len(CalibratedClassifier(frozen).fit(X[rows], y[rows]).calibrated_classifiers_) == 1


@pytest.mark.parametrize("method", METHODS)
def test_one_shared_calibrator_is_fitted_on_every_fold_out_of_fold_scores(method, data):
    """calibrate_on="all_folds": the pairs share one calibrator, fitted on the
    out-of-fold scores of all rows, each from the fold model that did not see it."""
    X, y = data
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))
    cal = CalibratedClassifier(LogisticRegression(), method=method, cv=folds, calibrate_on="all_folds").fit(X, y)
    pairs = cal.calibrated_classifiers_
    assert len(pairs) == 4 and all(p.calibrator is pairs[0].calibrator for p in pairs)
    rows = np.concatenate([test for _, test in folds])
    scores = np.concatenate([_two_column(p.estimator.decision_function(X[test])) for p, (_, test) in zip(pairs, folds)])
    want = type(pairs[0].calibrator)().fit(scores, y[rows])
    z = _two_column(pairs[1].estimator.decision_function(X))
    np.testing.assert_allclose(pairs[0].calibrator.predict_proba(z), want.predict_proba(z), rtol=1e-12, atol=1e-15)
    own = CalibratedClassifier(LogisticRegression(), method=method, cv=folds, calibrate_on="own_fold").fit(X, y)
    assert own.calibrated_classifiers_[0].calibrator is not own.calibrated_classifiers_[1].calibrator
    # "auto" (the default) shares the parametric maps and keeps isotonic maps per fold.
    auto = CalibratedClassifier(LogisticRegression(), method=method, cv=folds).fit(X, y).calibrated_classifiers_
    assert (auto[0].calibrator is auto[1].calibrator) == (method != "isotonic")


def test_shared_temperature_beats_per_fold_temperatures_on_small_folds():
    """The reason for the default: wine's folds of ~27 rows are often separable for a
    logistic regression, and a temperature fitted on one of them is set by the prior
    alone; fitted on all 133 out-of-fold rows it is not. Median test log-loss over
    8 stratified splits, same folds for both."""
    X, y = load_wine(return_X_y=True)
    shared, own = [], []
    for seed in range(8):
        train, test = train_test_split(np.arange(len(y)), test_size=45, stratify=y, random_state=seed)
        folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(X[train], y[train]))
        model = make_pipeline(StandardScaler(), LogisticRegression())
        for where, out in (("all_folds", shared), ("own_fold", own)):
            cal = CalibratedClassifier(model, cv=folds, calibrate_on=where).fit(X[train], y[train])
            out.append(log_loss(y[test], probs=cal.predict_proba(X[test])))
    assert np.median(shared) < 0.9 * np.median(own)


def test_sigmoid_calibration_libsvm_numbers():
    """sklearn's test_sigmoid_calibration: Platt's (A, B) from LibSVM's C++ code, to 3 decimals."""
    F = np.array([5.0, -4.0, 1.0])
    y = np.array([1, 0, 0])
    platt = PlattScaling().fit(_two_column(F), y)
    a_libsvm, b_libsvm = -0.20261354391187855, 0.65236314980010512  # p = 1 / (1 + exp(A F + B))
    np.testing.assert_allclose(-platt.coef_[0], a_libsvm, atol=1e-3)
    np.testing.assert_allclose(-platt.intercept_[0], b_libsvm, atol=1e-3)
    expected = 1.0 / (1.0 + np.exp(a_libsvm * F + b_libsvm))
    np.testing.assert_allclose(platt.predict_proba(_two_column(F))[:, 1], expected, atol=1e-3)


def test_calibration_curve_uniform_numbers():
    """sklearn's test_calibration_curve (uniform part): prob_true [0, 1], prob_pred [0.1, 0.9]."""
    from softmaxkit.metrics import reliability_curve

    c = reliability_curve(np.array([0, 0, 0, 1, 1, 1]), np.array([0.0, 0.1, 0.2, 0.8, 0.9, 1.0]), n_bins=2,
                          class_index=1)
    np.testing.assert_allclose(c.accuracy, [0.0, 1.0])
    np.testing.assert_allclose(c.mean_confidence, [0.1, 0.9])


# --------------------------------------------------------------------------- sklearn's behavioural tests, ported


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ensemble", [True, False])
def test_calibration_multiclass(method, ensemble):
    """sklearn's test_calibration_multiclass: unbalanced blobs, LinearSVC and a random forest."""
    X, y = make_blobs(n_samples=500, n_features=100, random_state=0, centers=10, cluster_std=15.0)
    y[y > 2] = 2
    X_train, y_train, X_test, y_test = X[::2], y[::2], X[1::2], y[1::2]
    svc = LinearSVC(random_state=7).fit(X_train, y_train)
    assert 0.65 < svc.score(X_test, y_test) < 0.95
    cal = CalibratedClassifier(LinearSVC(random_state=7), method=method, cv=5, ensemble=ensemble).fit(X_train, y_train)
    probs = cal.predict_proba(X_test)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert cal.score(X_test, y_test) > 0.95 * svc.score(X_test, y_test)
    naive = sk.softmax(svc.decision_function(X_test))
    assert brier_score(y_test, probs) < 1.1 * brier_score(y_test, naive)
    rf = RandomForestClassifier(n_estimators=30, random_state=42).fit(X_train, y_train)
    cal_rf = CalibratedClassifier(RandomForestClassifier(n_estimators=30, random_state=42), method=method, cv=5,
                                  ensemble=ensemble).fit(X_train, y_train)
    assert brier_score(y_test, cal_rf.predict_proba(X_test)) < 1.1 * brier_score(y_test, rf.predict_proba(X_test))


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_temperature_scaling_properties(n_classes):
    """sklearn's test_temperature_scaling: accuracy and AUC unchanged, log-loss improved, beta = 1 on LR's own training set."""
    X, y = make_classification(n_samples=1000, n_features=10, n_informative=10, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, class_sep=2.0, random_state=42)
    X_train, X_cal, y_train, y_cal = train_test_split(X, y, random_state=42)
    clf = LogisticRegression(C=np.inf, tol=1e-8, max_iter=200, random_state=0).fit(X_train, y_train)
    cal = CalibratedClassifier(FrozenEstimator(clf), method="temperature").fit(X_cal, y_cal)
    assert len(cal.calibrated_classifiers_) == 1
    assert cal.calibrated_classifiers_[0].calibrator.beta_ > 0
    assert np.mean(cal.predict(X_cal) == y_cal) == np.mean(clf.predict(X_cal) == y_cal)
    before, after = clf.predict_proba(X_cal), cal.predict_proba(X_cal)
    assert log_loss(y_cal, probs=after) <= log_loss(y_cal, probs=before)
    if n_classes == 2:
        before, after = before[:, 1], after[:, 1]
    # Exact for two classes; with more, one-vs-rest ranks of p_k may move with T, and the
    # uncalibrated probabilities tie at exactly 1.0 where softer ones do not.
    np.testing.assert_allclose(roc_auc_score(y_cal, before, multi_class="ovr"),
                               roc_auc_score(y_cal, after, multi_class="ovr"), rtol=0 if n_classes == 2 else 1e-4)
    # An unpenalised maximum-likelihood fit is its own temperature on its training set.
    z_train = clf.decision_function(X_train)
    z_train = _two_column(z_train) if n_classes == 2 else z_train
    assert TemperatureScaling(prior_scale=None).fit(z_train, y_train).beta_ == pytest.approx(1.0, abs=1e-5)
    # The prior is centred on T = 1, so it leaves that fit where it is (the soft targets of
    # pseudo_count=0.5 made it a little softer, on every nearly separable set).
    assert TemperatureScaling().fit(z_train, y_train).beta_ == pytest.approx(1.0, abs=1e-5)
    assert 0.8 < TemperatureScaling(pseudo_count=0.5, prior_scale=None).fit(z_train, y_train).beta_ <= 1.0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ensemble", [True, False])
def test_double_sample_weights_equal_repeated_rows(method, ensemble):
    """sklearn's test_calibrated_classifier_cv_double_sample_weights_equivalence."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:100]
    y = y[:100]
    X_twice, y_twice = np.repeat(X, 2, axis=0), np.repeat(y, 2)  # interlaced: 2 folds see the same rows
    # unshuffled, as scikit-learn's int cv: each fold then holds one copy of every row (an int cv shuffles here)
    a = CalibratedClassifier(LogisticRegression(), method=method, cv=StratifiedKFold(2), ensemble=ensemble)
    b = clone(a)
    a.fit(X, y, sample_weight=np.full(100, 2.0))
    b.fit(X_twice, y_twice)
    for pa, pb in zip(a.calibrated_classifiers_, b.calibrated_classifiers_):
        np.testing.assert_allclose(pa.estimator.coef_, pb.estimator.coef_)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ensemble", [True, False])
def test_probabilities_sum_to_one_when_a_test_fold_has_one_class(method, ensemble):
    """sklearn's test_calibration_prob_sum (issue #7796). One difference: with ensemble=True, fold 1's
    held-out rows are all class 1, and scikit-learn fits an isotonic map on them that says class 0
    never occurs; softmaxkit refuses that, naming the fold. The other methods fit one calibrator on
    every fold's held-out rows (calibrate_on="auto"), which hold both classes."""
    X, _ = make_classification(n_samples=10, n_features=5, n_classes=2, random_state=0)
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    model = CalibratedClassifier(LinearSVC(C=1.0, random_state=7), method=method, cv=KFold(n_splits=3),
                                 ensemble=ensemble)
    if ensemble and method == "isotonic":
        with pytest.raises(ValueError, match="^the held-out rows of fold 1 of 3: .* class 0 has no row among the 4 "
                                             "calibration rows.*use stratified folds"):
            model.fit(X, y)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        cal = model.fit(X, y)
    np.testing.assert_allclose(cal.predict_proba(X).sum(axis=1), 1.0)


def test_large_confidence_scores_platt_ranks_like_isotonic():
    """sklearn's test_calibrated_classifier_cv_works_with_large_confidence_scores (issue #26766)."""
    y = np.array([1] * 134 + [0] * 66)
    X = 1e5 * y.reshape(-1, 1) + np.random.default_rng(0).normal(size=200)
    sgd = SGDClassifier(loss="squared_hinge", tol=1e-2, random_state=0)
    platt = cross_val_score(CalibratedClassifier(sgd, method="platt"), X, y, scoring="roc_auc")
    iso = cross_val_score(CalibratedClassifier(sgd, method="isotonic"), X, y, scoring="roc_auc")
    np.testing.assert_allclose(platt, iso)


def test_all_zero_maps_give_uniform_probabilities():
    """sklearn's test_calibration_zero_probability: every map says 0, so the row is uniform."""
    iso = IsotonicCalibration().fit(np.eye(3)[[0, 1, 2, 0]] * 2.0, np.array([0, 1, 2, 0]))
    iso.knots_y_ = np.zeros_like(iso.knots_y_)
    np.testing.assert_allclose(iso.predict_proba(np.zeros((4, 3))), 1 / 3)


def test_error_less_class_samples_than_folds():
    """sklearn's test_error_less_class_samples_than_folds."""
    X, y = np.ones((7, 2)), np.array([0, 0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="cv=5 folds need at least 5 rows of every class, but class 1 has 3"):
        CalibratedClassifier(LogisticRegression(), cv=5).fit(X, y)


# --------------------------------------------------------------------------- the case, cross-fitted


@pytest.mark.slow
def test_cross_fitted_temperature_on_wine_beats_t_one_and_t_zero():
    """What `softmaxkit fit --calibrate` now does on wine: cross-fitting instead of a 15-row hold-out.

    Over 8 stratified splits (SoftmaxClassifier(alpha=1e-4), 30 test rows) the
    cross-fitted temperature lowers the mean test log-loss below the
    uncalibrated model's (T = 1) and far below T -> 0.
    """
    X, y = load_wine(return_X_y=True)
    plain, calibrated, sharp = [], [], []
    for seed in range(8):
        train, test = train_test_split(np.arange(len(y)), test_size=30, stratify=y, random_state=seed)
        base = sk.SoftmaxClassifier(alpha=1e-4, random_state=seed)
        cal = CalibratedClassifier(base, method="temperature", ensemble=False).fit(X[train], y[train])
        model = cal.calibrated_classifiers_[0].estimator
        z = model.decision_function(X[test])
        plain.append(log_loss(y[test], logits=z))
        calibrated.append(log_loss(y[test], logits=cal.calibrated_classifiers_[0].calibrator.transform(z)))
        sharp.append(log_loss(y[test], logits=1e6 * z))
    assert np.mean(calibrated) < np.mean(plain) < np.mean(sharp)


# --------------------------------------------------------------------------- the estimator contract


def test_meta_estimator_contract(data):
    X, y = data
    cal = CalibratedClassifier(method="platt", cv=3)
    assert cal.get_params()["method"] == "platt" and cal.get_params()["estimator"] is None
    assert clone(cal).get_params() == cal.get_params()
    assert cal.fit(X, y) is cal
    assert isinstance(cal.calibrated_classifiers_[0].estimator, sk.SoftmaxClassifier)  # the default estimator
    assert len(cal.calibrated_classifiers_) == 3 and cal.n_features_in_ == 6
    labels = np.array(["no", "yes"])[y]
    cal = CalibratedClassifier(LogisticRegression(), cv=3).fit(X, labels)
    assert set(cal.predict(X)) <= {"no", "yes"} and list(cal.classes_) == ["no", "yes"]
    assert cal.score(X, labels) > 0.8


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(method="beta"), "method must be one of"), (dict(ensemble="yes"), "ensemble"),
     (dict(method="sigmoid"), "scikit-learn's 'sigmoid' is 'platt' here"),
     (dict(calibrate_on="fold"), "calibrate_on must be 'auto', 'all_folds' or 'own_fold'")],
)
def test_bad_parameters(data, kwargs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        CalibratedClassifier(LogisticRegression(), **kwargs).fit(X, y)
    with pytest.raises(ValueError, match="only one class"):
        CalibratedClassifier(LogisticRegression()).fit(X, np.zeros(len(y), int))


@pytest.mark.parametrize("n_weights", [30, 50])
def test_sample_weight_of_another_length_than_X_is_refused(data, n_weights):
    """Audit: 50 weights for 40 rows were cut to the first 40 silently; 30 gave an IndexError."""
    X, y = data[0][:40], data[1][:40]
    for ensemble in (True, False):
        with pytest.raises(ValueError, match=rf"sample_weight.shape == \({n_weights},\), expected \(40,\)"):
            CalibratedClassifier(LogisticRegression(), cv=3, ensemble=ensemble).fit(
                X, y, sample_weight=np.ones(n_weights)
            )


def test_empty_X_is_refused_with_a_value_error(data):
    """Audit: 0 rows gave an IndexError."""
    X, _ = data
    with pytest.raises(ValueError, match=r"X has 0 samples \(shape=\(0, 6\)\)"):
        CalibratedClassifier(LogisticRegression()).fit(X[:0], np.zeros(0, int))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba"])
def test_predicting_before_fit_raises_not_fitted_error(data, method):
    """Audit: predict before fit raised AttributeError ('no attribute classes_')."""
    X, _ = data
    with pytest.raises(NotFittedError, match="CalibratedClassifier instance is not fitted yet"):
        getattr(CalibratedClassifier(LogisticRegression()), method)(X)


def test_sparse_input_is_taken_exactly_when_the_estimator_takes_it(data):
    """Audit: sparse X was accepted although the tags said it could not be; the tag is now the estimator's."""
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = data
    for ensemble in (True, False):
        cal = CalibratedClassifier(LogisticRegression(), cv=3, ensemble=ensemble)
        assert get_tags(cal).input_tags.sparse  # LogisticRegression takes sparse X
        dense = clone(cal).fit(X, y).predict_proba(X)
        np.testing.assert_allclose(cal.fit(scipy_sparse.csr_matrix(X), y).predict_proba(scipy_sparse.csr_matrix(X)),
                                   dense, rtol=1e-6, atol=1e-8)
    frozen = CalibratedClassifier(FrozenEstimator(LogisticRegression().fit(X, y)))
    assert get_tags(frozen).input_tags.sparse
    frozen.fit(scipy_sparse.csr_matrix(X), y)
    # The default SoftmaxClassifier needs dense X: so does the meta-estimator, and says so.
    assert not get_tags(CalibratedClassifier()).input_tags.sparse
    with pytest.raises(TypeError, match="dense data is required"):
        CalibratedClassifier().fit(scipy_sparse.csr_matrix(X), y)


def test_scikit_learn_estimator_checks():
    """scikit-learn's common checks (cv=3, as its own test of CalibratedClassifierCV).

    Audit: sample_weight shape, empty data, predict before fit and the sparse
    tag failed; so did check_fit2d_1sample, whose one row of one class wants
    "1 sample" or "one class" in the error (ours said "y has a single class").
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and sample_weight warnings of the checks' tiny data
        results = check_estimator(CalibratedClassifier(LogisticRegression(), cv=3), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"])[:200] for r in results if r["status"] == "failed"}
    assert not failed, failed


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("method", METHODS)
def test_calibrators_save_and_load_without_pickle(tmp_path, method):
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    cal = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), method=method, cv=3).fit(X, y)
    back = sk.load(cal.save(tmp_path / "cc.npz"))
    assert type(back) is CalibratedClassifier and back.method == method
    np.testing.assert_array_equal(back.predict_proba(X), cal.predict_proba(X))
    calibrator = cal.calibrated_classifiers_[0].calibrator
    again = sk.load(calibrator.save(tmp_path / f"{method}.npz"))
    scores = cal.calibrated_classifiers_[0].estimator.decision_function(X)
    np.testing.assert_array_equal(again.predict_proba(scores), calibrator.predict_proba(scores))


def test_frozen_softmax_classifier_round_trips(tmp_path):
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    model = sk.SoftmaxClassifier(alpha=1.0).fit(X[:150], y[:150])
    cal = CalibratedClassifier(FrozenEstimator(model), method="isotonic").fit(X[150:], y[150:])
    back = sk.load(cal.save(tmp_path / "cc.npz"))
    assert isinstance(back.calibrated_classifiers_[0].estimator, FrozenEstimator)
    np.testing.assert_array_equal(back.predict_proba(X), cal.predict_proba(X))


def test_saving_a_foreign_estimator_says_why_not(tmp_path, data):
    X, y = data
    cal = CalibratedClassifier(LogisticRegression(), cv=3).fit(X, y)
    with pytest.raises(TypeError, match="LogisticRegression cannot be saved without pickle"):
        cal.save(tmp_path / "cc.npz")


def test_load_refuses_corrupt_isotonic_state(tmp_path):
    from softmaxkit.io import ModelFileError, save_state

    iso = IsotonicCalibration().fit(np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2]]), np.array([1, 0, 0]))
    meta, arrays = iso._get_state()
    arrays["knot_offsets_"] = np.array([0, 99])
    save_state(tmp_path / "bad.npz", kind="IsotonicCalibration", meta=meta, arrays=arrays)
    with pytest.raises(ModelFileError, match="knot_offsets_"):
        sk.load(tmp_path / "bad.npz")


# --------------------------------------------------------------------------- the one-vs-rest calibrators' inputs


def test_platt_on_probabilities_log_odds_feature_needs_eps():
    p1 = np.array([0.2, 0.7, 0.9, 0.4, 0.6])
    y = np.array([0, 1, 1, 0, 1])
    on_probs = PlattScaling(input="probs", feature="log_odds").fit(p1, y)
    on_logits = PlattScaling().fit(_two_column(np.log(p1 / (1 - p1))), y)
    np.testing.assert_allclose(on_probs.coef_, on_logits.coef_, rtol=1e-10)
    with pytest.raises(ValueError, match="strictly between 0 and 1.*eps"):
        PlattScaling(input="probs", feature="log_odds").fit(np.array([0.0, 0.7, 1.0]), np.array([0, 1, 1]))
    assert np.isfinite(PlattScaling(input="probs", eps=1e-6).fit(np.array([0.0, 0.7, 1.0]), np.array([0, 1, 1])).coef_).all()


def test_binary_platt_keeps_tiny_probabilities_and_finite_logits():
    """Audit: p_0 = 1 - sigmoid(u) rounded 1.2e-24 to 0, so predict --logits-out wrote -inf, which
    calibrate then refused. p_0 = sigmoid(-u) and log p = -softplus(-+u) are exact for any margin."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    margin = 2.0 * rng.normal(size=400) + 3.0 * (y - 0.5)
    platt = PlattScaling().fit(_two_column(margin), y)
    far = np.array([-800.0, -60.0, 0.0, 60.0, 800.0])
    u = platt.coef_[0] * far + platt.intercept_[0]
    oracle_log_p = -np.logaddexp(0.0, np.column_stack([u, -u]))  # float64 oracle of log sigmoid(-+u)
    np.testing.assert_allclose(platt.transform(_two_column(far)), oracle_log_p, rtol=1e-15)
    p = platt.predict_proba(_two_column(far))
    np.testing.assert_allclose(p[1:-1], np.exp(oracle_log_p[1:-1]), rtol=1e-13)
    assert p[1, 1] > 0 and p[3, 0] > 0  # about 1e-26: no longer rounded to 0
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=2.3e-16)


def test_class_mismatch_messages_name_the_class_and_the_side_it_is_missing_on():
    """Audit: a frozen estimator with a class the calibration rows lack said "missing []" and advised
    stratified folds, though it has no folds."""
    X, y = load_iris(return_X_y=True)
    frozen = FrozenEstimator(LogisticRegression(max_iter=1000).fit(X, y))
    with pytest.raises(ValueError, match=r"the frozen estimator \(classes \[0, 1, 2\]\) predicts class\(es\) \[2\] "
                       r"that y has no row of .*the calibration rows must hold every class"):
        CalibratedClassifier(frozen).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match=r"fold 1 of 3 .*never saw y's class\(es\) \[0\].*use stratified folds"):
        CalibratedClassifier(LogisticRegression(max_iter=1000), cv=KFold(3)).fit(X, y)  # iris is sorted by class


def test_isotonic_can_say_zero_and_transform_is_log():
    z = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, -1.0], [0.0, -2.0]])
    iso = IsotonicCalibration().fit(z, np.array([1, 1, 0, 0]))
    p = iso.predict_proba(z)
    np.testing.assert_allclose(p[:, 1], [1, 1, 0, 0])
    assert np.isneginf(iso.transform(z)[2, 1])
    with pytest.raises(ValueError, match="needs finite logits"):
        iso.predict_proba(np.array([[0.0, -np.inf]]))
    with pytest.raises(ValueError, match="not fitted"):
        PlattScaling().predict_proba(z)


# --------------------------------------------------------------------------- what load guarantees and keeps


@pytest.fixture(scope="module")
def saved_cc(tmp_path_factory):
    X, y = load_iris(return_X_y=True)
    cc = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), method="vector", cv=3).fit(X, y)
    return cc.save(tmp_path_factory.mktemp("cc") / "cc.npz")


def _edit_pair(i, part, fn):
    return lambda m, a: fn(m["pairs"][i][part])


#: Edits of a saved CalibratedClassifier that must be refused at load (audit: each loaded, then
#: predicted something else, or failed at predict with an error about y's classes or the logits).
CC_EDITS = {
    "response": (lambda m, a: m["pairs"][0].__setitem__("response", "predict_proba"), r"response"),
    "fewer classes": (lambda m, a: m["classes"].__setitem__("values", [0, 1]), r"classes"),
    "relabelled classes": (lambda m, a: m["classes"].__setitem__("values", [2, 1, 0]), r"classes"),
    "a pair's estimator classes": (_edit_pair(1, "estimator", lambda e: e["classes"].__setitem__("values", [5, 6, 7])),
                                   r"pair 1.*classes \[5, 6, 7\]"),
    "calibrator classes": (_edit_pair(0, "calibrator", lambda c: c["fitted"].__setitem__("n_classes_", 2)),
                           r"n_classes_"),
    "calibrator input": (_edit_pair(0, "calibrator", lambda c: c["params"].__setitem__("input", "probs")),
                         r"pair 0.*input='probs'"),
    "ensemble": (lambda m, a: m["params"].__setitem__("ensemble", "yes"), r"ensemble"),
    "method": (lambda m, a: m["params"].__setitem__("method", "sigmoid"), r"method"),
    "method and calibrator disagree": (lambda m, a: m["params"].__setitem__("method", "isotonic"),
                                       r"VectorScaling.*method='isotonic'"),
    "one pair without ensemble": (lambda m, a: m["params"].__setitem__("ensemble", False), r"3 pairs"),
}


@pytest.mark.parametrize("case", list(CC_EDITS))
def test_load_refuses_an_inconsistent_calibrated_classifier(tmp_path, saved_cc, case):
    from softmaxkit.io import ModelFileError, read_state, save_state

    edit, match = CC_EDITS[case]
    kind, meta, arrays = read_state(saved_cc)
    edit(meta, arrays)
    path = save_state(tmp_path / "edited.npz", kind=kind, meta=meta, arrays=arrays)
    with pytest.raises(ModelFileError, match=r"edited\.npz: .*" + match):
        sk.load(path)


def test_a_loaded_calibrated_classifier_keeps_its_parameters_and_feature_names(tmp_path):
    """Audit: feature_names_in_ was missing after load, cv=StratifiedKFold(3) came back as 5 and
    estimator=None as SoftmaxClassifier(), so clone(loaded).fit silently fitted another model."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    splitter = StratifiedKFold(3, shuffle=True, random_state=1)
    cc = CalibratedClassifier(cv=splitter, method="platt").fit(X, y)
    loaded = sk.load(cc.save(tmp_path / "cc.npz"))
    assert list(loaded.feature_names_in_) == list(X.columns) and loaded.n_features_in_ == 13
    assert loaded.estimator is None and loaded.method == "platt"
    np.testing.assert_array_equal(loaded.predict_proba(X), cc.predict_proba(X))
    # the splitter itself is not in the file: a refit must be told the folds again, not use 5 unsaid
    assert "StratifiedKFold(n_splits=3" in repr(loaded.cv)
    with pytest.raises(ValueError, match=r"cv=StratifiedKFold\(n_splits=3.*not saved.*set_params\(cv="):
        clone(loaded).fit(X, y)
    refit = clone(loaded).set_params(cv=splitter).fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), cc.predict_proba(X))
    for cv in (None, 4):
        again = sk.load(CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), cv=cv).fit(X, y).save(tmp_path / "b.npz"))
        assert again.cv == cv and isinstance(again.estimator, sk.SoftmaxClassifier)


def test_a_column_vector_y_is_raveled_with_a_warning_without_ensemble(data):
    """Audit: ensemble=False with y of shape (n, 1) raised a bare IndexError in cross_val_predict."""
    from sklearn.exceptions import DataConversionWarning

    X, y = data
    for ensemble in (False, True):
        flat = CalibratedClassifier(LogisticRegression(), cv=3, ensemble=ensemble).fit(X, y)
        with pytest.warns(DataConversionWarning):
            column = CalibratedClassifier(LogisticRegression(), cv=3, ensemble=ensemble).fit(X, y.reshape(-1, 1))
        np.testing.assert_array_equal(column.predict_proba(X), flat.predict_proba(X))


def test_one_class_is_refused_in_scikit_learns_words(data):
    X, y = data
    with pytest.raises(ValueError, match="needs samples of at least 2 classes.*only one class: 0"):
        CalibratedClassifier(LogisticRegression()).fit(X, np.zeros(len(y), int))


@pytest.mark.parametrize("ensemble", [True, False])
def test_dataframe_column_names_are_checked_before_and_after_save(tmp_path, ensemble):
    """Fitted on a DataFrame: reordered columns raise scikit-learn's feature-names error, also after load."""
    pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    cc = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), cv=3, ensemble=ensemble).fit(X, y)
    loaded = sk.load(cc.save(tmp_path / "cc.npz"))
    for model in (cc, loaded):
        assert list(model.feature_names_in_) == list(X.columns)
        np.testing.assert_array_equal(model.predict_proba(X), cc.predict_proba(X))
        with pytest.raises(ValueError, match="Feature names must be in the same order as they were in fit"):
            model.predict_proba(X[X.columns[::-1]])


def test_files_written_before_the_new_records_still_load(tmp_path):
    """Records added here (the classes' dtype, cv_unsaved, estimator_default) are optional: a file
    without them loads as before (NumPy's dtype for the labels, cv as stored, the estimator itself)."""
    from softmaxkit.io import read_state, save_state

    X, y = load_iris(return_X_y=True)
    cc = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), cv=3).fit(X, y.astype(np.uint8))
    kind, meta, arrays = read_state(cc.save(tmp_path / "new.npz"))
    for record in (meta, *(pair["estimator"] for pair in meta["pairs"])):
        record["classes"].pop("dtype")
        record.pop("cv_unsaved", None)
    for key in ("cv_unsaved", "estimator_default"):
        meta["params"].pop(key)
    old = sk.load(save_state(tmp_path / "old.npz", kind=kind, meta=meta, arrays=arrays))
    assert old.classes_.dtype == np.int64 and old.cv == 3 and isinstance(old.estimator, sk.SoftmaxClassifier)
    np.testing.assert_array_equal(old.predict_proba(X), cc.predict_proba(X))
