"""Platt scaling on probabilities (audit AQ), and temperature scaling's zero probabilities at predict time.

Audit AQ: ``PlattScaling(input="probs")`` fitted each sigmoid on the log-odds of probabilities clipped
at 1e-12, so a random forest's vote of 0 became log-odds -27.6 beside -3.9 for 0.02, and those
outliers flattened the slope: ``CalibratedClassifier(RandomForest, method="platt")`` scored median
test log-loss 0.1715 on wine against 0.1328 uncalibrated and scikit-learn's "sigmoid" 0.0618.
scikit-learn fits ``sigmoid(a p + b)`` on the probability itself for a predict_proba-only model; so
does ``feature="probability"`` now (the default), and ``feature="log_odds"`` keeps the old map, which
files saved before the option existed still load with.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from scipy.special import expit, logit  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.datasets import load_wine, make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.naive_bayes import GaussianNB  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

import softmaxkit as sk  # noqa: E402
from softmaxkit.calibration import (  # noqa: E402
    CalibratedClassifier,
    PlattScaling,
    TemperatureScaling,
    ZeroProbabilityWarning,
)
from softmaxkit.io import ModelFileError, save_state  # noqa: E402

ESTIMATORS = {
    "rf": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    "gnb": GaussianNB,
    "knn": lambda: KNeighborsClassifier(n_neighbors=5),
}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("ensemble", [True, False])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_platt_on_predict_proba_matches_sklearn_sigmoid(name, ensemble, n_classes):
    """RF / GaussianNB / KNN have predict_proba only: the same folds give scikit-learn's probabilities."""
    X, y = make_classification(n_samples=360, n_features=6, n_informative=4, n_classes=n_classes,
                               flip_y=0.05, random_state=4)
    Xtr, ytr, Xte = X[:240], y[:240], X[240:]
    cv = StratifiedKFold(3)  # the same folds: an int cv shuffles here, not in scikit-learn
    theirs = CalibratedClassifierCV(ESTIMATORS[name](), method="sigmoid", cv=cv, ensemble=ensemble).fit(Xtr, ytr)
    ours = CalibratedClassifier(ESTIMATORS[name](), method="platt", cv=cv, ensemble=ensemble, calibrate_on="own_fold")
    ours.fit(Xtr, ytr)
    np.testing.assert_allclose(ours.predict_proba(Xte), theirs.predict_proba(Xte), atol=1e-6)
    assert all(p.calibrator.feature == "probability" for p in ours.calibrated_classifiers_)


def test_raw_platt_on_probabilities_matches_sklearn_and_takes_zeros_without_eps():
    """The calibrator alone on a frozen forest's votes, which hold exact 0s and 1s: no eps is needed."""
    X, y = load_wine(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    tr, cal, te = order[:60], order[60:120], order[120:]
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X[tr], y[tr])
    p_cal, p_te = rf.predict_proba(X[cal]), rf.predict_proba(X[te])
    assert np.any(p_cal == 0.0) and np.any(p_cal == 1.0)
    theirs = CalibratedClassifierCV(FrozenEstimator(rf), method="sigmoid").fit(X[cal], y[cal])
    ours = PlattScaling(input="probs").fit(p_cal, y[cal])
    np.testing.assert_allclose(ours.predict_proba(p_te), theirs.predict_proba(X[te]), atol=1e-6)


def test_platt_on_probabilities_beats_log_odds_on_forest_votes():
    """The audit's case: on the log-odds of clipped votes Platt was worse than no calibration."""
    X, y = load_wine(return_X_y=True)
    order = np.random.default_rng(1).permutation(len(y))
    tr, te = order[:120], order[120:]
    uncal = RandomForestClassifier(n_estimators=50, random_state=0).fit(X[tr], y[tr]).predict_proba(X[te])
    losses = {}
    for feature in ("probability", "log_odds"):
        model = CalibratedClassifier(RandomForestClassifier(n_estimators=50, random_state=0),
                                     method=PlattScaling(feature=feature), ensemble=False).fit(X[tr], y[tr])
        losses[feature] = sk.metrics.log_loss(y[te], probs=model.predict_proba(X[te]))
    assert losses["probability"] < sk.metrics.log_loss(y[te], probs=uncal) < losses["log_odds"]


def _log_odds_oracle(coef, intercept, p, eps):
    """The pre-AQ map, written out: one sigmoid per class on the log-odds of clipped p, renormalised."""
    q = expit(coef * logit(np.clip(p, eps, 1 - eps)) + intercept)
    return q / q.sum(axis=1, keepdims=True)


@pytest.mark.filterwarnings("ignore:PlattScaling. class 0 has 2 calibration rows")  # 5 rows: the point is the map
def test_log_odds_feature_keeps_the_old_map():
    p1 = np.array([0.2, 0.7, 0.9, 0.4, 0.6])
    y = np.array([0, 1, 1, 0, 1])
    on_probs = PlattScaling(input="probs", feature="log_odds").fit(p1, y)
    on_logits = PlattScaling().fit(np.column_stack([-logit(p1) / 2, logit(p1) / 2]), y)
    np.testing.assert_allclose(on_probs.coef_, on_logits.coef_, rtol=1e-10)
    with pytest.raises(ValueError, match="strictly between 0 and 1.*eps"):
        PlattScaling(input="probs", feature="log_odds").fit(np.array([0.0, 0.7, 1.0]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="feature must be one of"):
        PlattScaling(input="probs", feature="logit").fit(p1, y)


def _old_state(tmp_path, p, y):
    """A PlattScaling file as the code before ``feature`` wrote it: no ``feature`` among the params,
    the maps fitted on log-odds."""
    fitted = PlattScaling(input="probs", eps=1e-12, feature="log_odds").fit(p, y)
    meta, arrays = fitted._get_state()
    del meta["params"]["feature"]
    return save_state(tmp_path / "old_platt.npz", kind="PlattScaling", meta=meta, arrays=arrays), fitted


def test_a_file_saved_before_feature_loads_and_predicts_on_log_odds(tmp_path):
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X[:150], y[:150])
    p_cal, p_te = rf.predict_proba(X[150:225]), rf.predict_proba(X[225:])
    path, fitted = _old_state(tmp_path, p_cal, y[150:225])
    loaded = sk.load(path)
    assert loaded.feature == "log_odds"
    oracle = _log_odds_oracle(fitted.coef_, fitted.intercept_, p_te, 1e-12)
    np.testing.assert_array_equal(loaded.predict_proba(p_te), fitted.predict_proba(p_te))
    np.testing.assert_allclose(loaded.predict_proba(p_te), oracle, rtol=1e-12)
    # What new code writes records the feature, and loads as written.
    new = PlattScaling(input="probs").fit(p_cal, y[150:225])
    again = sk.load(new.save(tmp_path / "new_platt.npz"))
    assert again.feature == "probability"
    np.testing.assert_array_equal(again.predict_proba(p_te), new.predict_proba(p_te))
    # A damaged record is named, not read as some map.
    meta, arrays = new._get_state()
    meta["params"]["feature"] = "logit"
    with pytest.raises(ModelFileError, match="feature must be one of"):
        sk.load(save_state(tmp_path / "bad_platt.npz", kind="PlattScaling", meta=meta, arrays=arrays))


def test_a_calibrated_classifier_saved_before_feature_keeps_its_method(tmp_path):
    """A saved CalibratedClassifier(method=PlattScaling(...)) records the instance's params; an old
    record (no feature) is read as the log-odds map it was, so a refit gives the old fit too."""
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3, n_classes=3, random_state=1)
    model = CalibratedClassifier(sk.SoftmaxClassifier(), method=PlattScaling(feature="log_odds"), cv=3,
                                 ensemble=False).fit(X, y)
    meta, arrays = model._get_state()
    del meta["params"]["method"]["params"]["feature"]
    del meta["pairs"][0]["calibrator"]["params"]["feature"]
    loaded = sk.load(save_state(tmp_path / "old_cc.npz", kind="CalibratedClassifier", meta=meta, arrays=arrays))
    assert loaded.method.feature == "log_odds"
    assert loaded.calibrated_classifiers_[0].calibrator.feature == "log_odds"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


# --------------------------------------------------------------------------- temperature: zeros at predict time


def _forest_probs():
    X, y = load_wine(return_X_y=True)
    order = np.random.default_rng(2).permutation(len(y))
    tr, cal, te = order[:60], order[60:120], order[120:]
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X[tr], y[tr])
    return np.clip(rf.predict_proba(X[cal]), 1e-3, 1), y[cal], rf.predict_proba(X[te])


def test_temperature_on_probabilities_warns_once_when_a_zero_stays_zero():
    """Audit: breast_cancer RF, TemperatureScaling(input="probs") left a test row's p = 0 at 0
    (log-loss inf) without a word; with eps=1e-12 it scored 0.3593."""
    p_cal, y_cal, p_te = _forest_probs()
    p_cal = p_cal / p_cal.sum(axis=1, keepdims=True)
    zero_rows = int(np.sum(np.any(p_te == 0, axis=1)))
    assert zero_rows > 1
    ts = TemperatureScaling(input="probs").fit(p_cal, y_cal)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = ts.predict_proba(p_te)
    said = [w for w in caught if issubclass(w.category, ZeroProbabilityWarning)]
    assert len(said) == 1, [str(w.message) for w in caught]
    text = str(said[0].message)
    assert f"{zero_rows} of the {len(p_te)} rows" in text and "eps=" in text
    assert "--method platt or isotonic" in text  # the CLI has no eps option: it names the calibrators that fit on p
    assert said[0].filename == __file__  # the user's line
    assert np.any(p == 0)
    # With eps, or without a zero, nothing to say.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroProbabilityWarning)
        TemperatureScaling(input="probs", eps=1e-12).fit(p_cal, y_cal).predict_proba(p_te)
        ts.predict_proba(p_cal)
