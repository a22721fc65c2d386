"""CalibratedClassifier under scikit-learn's metadata routing (``enable_metadata_routing=True``).

Peer: scikit-learn 1.9's ``CalibratedClassifierCV``, which routes ``fit``'s
metadata by the estimator's requests; on the same folds the two must agree to
1e-6, scikit-learn reading the log-odds that our one-vs-rest maps read
(:class:`LogOddsScores`, which routes as the estimator inside asks). Every
test enables routing in a ``config_context`` so nothing leaks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.exceptions import UnsetMetadataPassedError  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GroupKFold, ShuffleSplit, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from softmaxkit import SoftmaxClassifier  # noqa: E402
from softmaxkit.calibration import CalibratedClassifier, ZeroProbabilityWarning  # noqa: E402
from test_one_vs_rest_log_odds_round_co import LogOddsScores  # noqa: E402

SKLEARN_NAME = {"isotonic": "isotonic", "platt": "sigmoid"}


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    # Weights far apart (0.2 vs 5), so a fit that drops or adds them is far off.
    sw = np.random.RandomState(0).choice([0.2, 5.0], len(y))
    return X, y, sw


def _folds():
    return StratifiedKFold(3, shuffle=True, random_state=0)


def _weighted_pipeline():
    """Only the classifier asks for the weights: the pipeline's fit has no sample_weight argument."""
    return make_pipeline(
        StandardScaler().set_fit_request(sample_weight=False),
        LogisticRegression(max_iter=1000).set_fit_request(sample_weight=True),
    )


def _declining_softmax():
    """An estimator whose fit takes sample_weight but that asked not to get them."""
    return SoftmaxClassifier(alpha=1.0, standardize=True).set_fit_request(sample_weight=False)


def _pair(make_estimator, method, ensemble, X, y, sw):
    """CalibratedClassifierCV's and CalibratedClassifier's probabilities on X, same folds, routing on
    (set_fit_request exists only then, so the estimator is made inside)."""
    with sklearn.config_context(enable_metadata_routing=True):
        estimator = make_estimator()
        scores = LogOddsScores(estimator)  # wine's 3 classes: each one's log-odds (audit CO)
        theirs = CalibratedClassifierCV(scores, method=SKLEARN_NAME[method], cv=_folds(), ensemble=ensemble)
        theirs.fit(X, y, sample_weight=sw)
        # own_fold: CalibratedClassifierCV's per-fold calibrators (the default for isotonic only)
        ours = CalibratedClassifier(estimator, method=method, cv=_folds(), ensemble=ensemble, calibrate_on="own_fold")
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # "Pipeline.fit does not take sample_weight" was the bug
            warnings.simplefilter("ignore", ZeroProbabilityWarning)  # isotonic maps at 0: true, not the bug
            ours.fit(X, y, sample_weight=sw)
        return theirs.predict_proba(X), ours.predict_proba(X)


@pytest.mark.parametrize("make_estimator", [_weighted_pipeline, _declining_softmax], ids=["pipeline", "declining"])
@pytest.mark.parametrize("method", ["isotonic", "platt"])
@pytest.mark.parametrize("ensemble", [True, False])
def test_routed_weights_match_calibrated_classifier_cv(wine, make_estimator, method, ensemble):
    """Audit: the requests were ignored (the pipeline fitted unweighted: 0.248 / 0.601 off isotonic;
    the declining estimator weighted: 0.210 off Platt, ensemble=True; a TypeError with ensemble=False)."""
    X, y, sw = wine
    theirs, ours = _pair(make_estimator, method, ensemble, X, y, sw)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("ensemble", [True, False])
def test_unrequested_weights_raise_as_calibrated_classifier_cv(wine, ensemble):
    X, y, sw = wine
    with sklearn.config_context(enable_metadata_routing=True):
        # The classifier neither requested nor declined sample_weight (scaled: lbfgs converges on wine).
        lr = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), LogisticRegression())
        with pytest.raises(UnsetMetadataPassedError, match=r"sample_weight"):
            CalibratedClassifierCV(lr, method="isotonic", cv=_folds(), ensemble=ensemble).fit(X, y, sample_weight=sw)
        with pytest.raises(UnsetMetadataPassedError, match=r"\[sample_weight\] are passed but are not explicitly set"):
            CalibratedClassifier(lr, method="isotonic", cv=_folds(), ensemble=ensemble).fit(X, y, sample_weight=sw)
        # No weights: nothing to route, nothing to refuse.
        CalibratedClassifier(lr, method="isotonic", cv=_folds(), ensemble=ensemble).fit(X, y)


def test_default_estimator_and_frozen_estimator_under_routing(wine):
    """The default SoftmaxClassifier requests the weights (as CalibratedClassifierCV's default LinearSVC
    does); a frozen estimator needs no request: only the calibrator uses them."""
    X, y, sw = wine
    with sklearn.config_context(enable_metadata_routing=True):
        default = CalibratedClassifier(cv=_folds()).fit(X, y, sample_weight=sw)
        asked = SoftmaxClassifier().set_fit_request(sample_weight=True)
        explicit = CalibratedClassifier(asked, cv=_folds()).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(default.predict_proba(X), explicit.predict_proba(X), rtol=0, atol=1e-12)
        frozen = FrozenEstimator(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y))
        scores = FrozenEstimator(LogOddsScores(frozen).fit(X, y))
        theirs = CalibratedClassifierCV(scores, method="isotonic").fit(X, y, sample_weight=sw)
        ours = CalibratedClassifier(frozen, method="isotonic").fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("ensemble", [True, False])
def test_groups_reach_the_splitter_and_aliases_the_estimator(wine, ensemble):
    """Beyond CalibratedClassifierCV, whose ensemble=False re-routes the routed metadata through
    cross_val_predict: it drops groups ("The 'groups' parameter should not be None") and refuses
    a request under another name (set_fit_request(sample_weight="w"))."""
    X, y, sw = wine
    groups = np.arange(len(y)) % 5
    splits = list(GroupKFold(3).split(X, y, groups))
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = _weighted_pipeline()
        by_groups = CalibratedClassifier(pipe, method="platt", cv=GroupKFold(3), ensemble=ensemble)
        by_groups.fit(X, y, sample_weight=sw, groups=groups)
        by_splits = CalibratedClassifier(pipe, method="platt", cv=splits, ensemble=ensemble).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(by_groups.predict_proba(X), by_splits.predict_proba(X), rtol=0, atol=1e-12)

        scaler = StandardScaler().set_fit_request(sample_weight=False)
        aliased = make_pipeline(scaler, LogisticRegression(max_iter=1000).set_fit_request(sample_weight="w"))
        plain = make_pipeline(scaler, LogisticRegression(max_iter=1000).set_fit_request(sample_weight=True))
        # The calibrator reads fit's own sample_weight; the alias is the classifier's.
        by_alias = CalibratedClassifier(aliased, method="platt", cv=_folds(), ensemble=ensemble)
        by_alias.fit(X, y, sample_weight=sw, w=sw)
        by_name = CalibratedClassifier(plain, method="platt", cv=_folds(), ensemble=ensemble)
        by_name.fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(by_alias.predict_proba(X), by_name.predict_proba(X), rtol=0, atol=1e-12)


def test_ensemble_false_refuses_folds_that_are_not_a_partition(wine):
    """ensemble=False fits one calibrator on every row's out-of-fold score, so each row must be held
    out exactly once (cross_val_predict's "only works for partitions", said with the option)."""
    X, y, _ = wine
    with pytest.raises(ValueError, match=r"ensemble=False needs cv folds .* exactly once .*cv=ShuffleSplit"):
        CalibratedClassifier(SoftmaxClassifier(), cv=ShuffleSplit(3, random_state=0), ensemble=False).fit(X, y)
