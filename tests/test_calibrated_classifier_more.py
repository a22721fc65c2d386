"""CalibratedClassifier: one-vs-one SVC scores, calibrator instances as ``method``, boolean labels.

Peers: scikit-learn 1.9's ``CalibratedClassifierCV(method="temperature")``, matched by
``method=TemperatureScaling(prior_scale=None)`` on the same folds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_wine, make_blobs, make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC, LinearSVC  # noqa: E402

import softmaxkit as sk  # noqa: E402
from softmaxkit.calibration import (  # noqa: E402
    CalibratedClassifier,
    IsotonicCalibration,
    MatrixScaling,
    PlattScaling,
    TemperatureScaling,
    VectorScaling,
)
from softmaxkit.metrics import log_loss  # noqa: E402

CALIBRATORS = [TemperatureScaling, VectorScaling, MatrixScaling, IsotonicCalibration, PlattScaling]


def _standardized(loader):
    X, y = loader(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="module")
def wine():
    X, y = _standardized(load_wine)
    return train_test_split(X, y, random_state=0, stratify=y)


# --------------------------------------------------------------------------- one-vs-one SVC


# SVC(probability=True) is deprecated in scikit-learn 1.9; here it is just a model with predict_proba.
@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
def test_three_class_ovo_margins_are_not_read_as_class_logits(wine):
    """Audit: SVC(decision_function_shape="ovo") on 3 classes gives 3 pairwise margins, as many
    as classes, so they were calibrated as class logits: test log-loss 1.0994 (uniform), accuracy
    0.267, silently. Without predict_proba this must be refused, saying what to do."""
    Xtr, Xte, ytr, yte = wine
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    with pytest.raises(ValueError, match=r"decision_function_shape='ovo'.*3 pairwise.*decision_function_shape='ovr'"):
        CalibratedClassifier(SVC(decision_function_shape="ovo"), cv=cv, ensemble=False).fit(Xtr, ytr)
    # With probability=True the calibrator reads predict_proba instead, and calibrates well.
    cal = CalibratedClassifier(SVC(decision_function_shape="ovo", probability=True, random_state=0), cv=cv,
                               ensemble=False).fit(Xtr, ytr)
    assert cal.calibrated_classifiers_[0].response == "predict_proba"
    p = cal.predict_proba(Xte)
    assert np.mean(p.argmax(1) == yte) > 0.9
    assert log_loss(yte, probs=p) < 0.3


@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
@pytest.mark.parametrize("wrap", ["bare", "pipeline", "frozen", "frozen_pipeline"])
def test_four_class_ovo_falls_back_to_predict_proba_or_says_why(wrap):
    """4 classes give 6 pairwise margins: the column count check caught it, but said only
    "decision_function returned 6 columns for 4 classes"; with probability=True predict_proba works."""
    X, y = make_blobs(n_samples=240, centers=4, cluster_std=1.5, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0, stratify=y)

    def build(**svc):
        est = SVC(decision_function_shape="ovo", random_state=0, **svc)
        if wrap in ("pipeline", "frozen_pipeline"):
            est = make_pipeline(StandardScaler(), est)
        return FrozenEstimator(est.fit(Xtr, ytr)) if wrap.startswith("frozen") else est

    with pytest.raises(ValueError, match=r"6 pairwise.*probability=True"):
        CalibratedClassifier(build(), cv=3).fit(Xtr, ytr)
    cal = CalibratedClassifier(build(probability=True), cv=3).fit(Xtr, ytr)
    assert all(pair.response == "predict_proba" for pair in cal.calibrated_classifiers_)
    # As accurate as the SVC itself (the pairwise margins read as logits scored 0.27 on wine).
    assert np.mean(cal.predict(Xte) == yte) >= np.mean(SVC().fit(Xtr, ytr).predict(Xte) == yte) - 0.1


def test_binary_ovo_keeps_its_margin():
    """With 2 classes one-vs-one is the one margin of one-vs-rest: nothing changes."""
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    ovo = CalibratedClassifier(SVC(decision_function_shape="ovo"), cv=3).fit(X, y)
    ovr = CalibratedClassifier(SVC(), cv=3).fit(X, y)
    assert ovo.calibrated_classifiers_[0].response == "decision_function"
    np.testing.assert_array_equal(ovo.predict_proba(X), ovr.predict_proba(X))


# --------------------------------------------------------------------------- calibrator instances


# Without a prior some wine folds are separable: beta runs to its bound, as scikit-learn's does.
@pytest.mark.filterwarnings("ignore:the calibration set is separable")
@pytest.mark.parametrize("loader, est", [(load_breast_cancer, LinearSVC()), (load_wine, LinearSVC()),
                                         (load_wine, RandomForestClassifier(n_estimators=20, random_state=0))])
@pytest.mark.parametrize("ensemble", [True, False])
def test_temperature_without_prior_matches_sklearn(loader, est, ensemble):
    """scikit-learn's temperature method has no prior: TemperatureScaling(prior_scale=None) matches it
    (each fold's own calibrator with ensemble=True, as calibrate_on="own_fold" does)."""
    pytest.importorskip("sklearn", minversion="1.8")  # its temperature method (Python 3.11+)
    X, y = _standardized(loader)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    theirs = CalibratedClassifierCV(est, method="temperature", cv=cv, ensemble=ensemble).fit(X, y)
    ours = CalibratedClassifier(est, method=TemperatureScaling(prior_scale=None), cv=cv, ensemble=ensemble,
                                calibrate_on="own_fold" if ensemble else "auto").fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X[:80]), theirs.predict_proba(X[:80]), atol=1e-6)
    # The default prior is what keeps "temperature" apart from scikit-learn (audit: up to 0.12).
    default = CalibratedClassifier(est, method="temperature", cv=cv, ensemble=ensemble,
                                   calibrate_on="own_fold" if ensemble else "auto").fit(X, y)
    assert np.abs(default.predict_proba(X[:80]) - theirs.predict_proba(X[:80])).max() > 1e-3


@pytest.mark.parametrize("cls", CALIBRATORS)
@pytest.mark.parametrize("est", [LogisticRegression(C=0.1), RandomForestClassifier(n_estimators=10, random_state=0)])
def test_a_default_instance_fits_as_its_method_name(cls, est):
    """method=TemperatureScaling() is method="temperature" (and so on): same input, eps, calibrate_on."""
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    name = {"TemperatureScaling": "temperature", "VectorScaling": "vector", "MatrixScaling": "matrix",
            "IsotonicCalibration": "isotonic", "PlattScaling": "platt"}[cls.__name__]
    template = cls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isotonic zero-probability warnings: the same for both
        by_name = CalibratedClassifier(est, method=name, cv=3).fit(X, y)
        by_instance = CalibratedClassifier(est, method=template, cv=3).fit(X, y)
    np.testing.assert_array_equal(by_instance.predict_proba(X), by_name.predict_proba(X))
    assert not hasattr(template, "n_classes_")  # the given instance is a template, never fitted
    assert [type(p.calibrator) for p in by_instance.calibrated_classifiers_] == [cls] * 3
    assert len({id(p.calibrator) for p in by_instance.calibrated_classifiers_}) == (
        3 if cls is IsotonicCalibration else 1)  # calibrate_on="auto" as for the name


def test_instance_settings_are_used_and_input_follows_the_estimator():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    rf = RandomForestClassifier(n_estimators=10, random_state=0)
    cal = CalibratedClassifier(rf, method=PlattScaling(eps=1e-3, max_iter=7), cv=3).fit(X, y)
    fitted = cal.calibrated_classifiers_[0].calibrator
    assert (fitted.input, fitted.eps, fitted.max_iter) == ("probs", 1e-3, 7)
    cal = CalibratedClassifier(LogisticRegression(), method=TemperatureScaling(input="probs", prior_scale=None),
                               cv=3).fit(X, y)
    fitted = cal.calibrated_classifiers_[0].calibrator
    assert (fitted.input, fitted.eps, fitted.pseudo_count) == ("logits", None, 0.0)


def test_bad_calibrator_instances_are_refused(wine):
    Xtr, _, ytr, _ = wine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pure-noise logits: the fit says beta is at its bound
        fitted = TemperatureScaling().fit(np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3)
    with pytest.raises(ValueError, match=r"method is a fitted TemperatureScaling.*unfitted"):
        CalibratedClassifier(LogisticRegression(), method=fitted).fit(Xtr, ytr)
    for bad in (LogisticRegression(), TemperatureScaling, 3):
        with pytest.raises(ValueError, match=r"method must be one of .* or an unfitted calibrator instance"):
            CalibratedClassifier(LogisticRegression(), method=bad).fit(Xtr, ytr)


def test_an_instance_method_survives_clone_save_and_load(tmp_path):
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    template = TemperatureScaling(prior_scale=None, beta_bounds=(1e-3, 1e3))
    cal = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), method=template, cv=3).fit(X, y)
    again = clone(cal).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), cal.predict_proba(X))
    back = sk.load(cal.save(tmp_path / "cc.npz"))
    np.testing.assert_array_equal(back.predict_proba(X), cal.predict_proba(X))
    assert type(back.method) is TemperatureScaling and back.method.get_params() == template.get_params()
    assert not hasattr(back.method, "n_classes_")
    refit = clone(back).set_params(cv=3).fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), cal.predict_proba(X))


@pytest.mark.parametrize("record, match", [
    ({"calibrator": "Foo", "params": {}}, r"params\.method is .*Foo.*not a method name"),
    ({"calibrator": "TemperatureScaling", "params": {"alpha": 1}}, r"params\.method\.params: .*alpha"),
    ({"calibrator": "IsotonicCalibration", "params": {}},
     r"pair 0 holds a 'TemperatureScaling'.*fits IsotonicCalibration"),
])
def test_load_refuses_a_bad_method_record(tmp_path, record, match):
    from softmaxkit.io import ModelFileError, read_state, save_state

    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    cal = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), method=TemperatureScaling(prior_scale=None), cv=3)
    kind, meta, arrays = read_state(cal.fit(X, y).save(tmp_path / "cc.npz"))
    assert meta["params"]["method"]["calibrator"] == "TemperatureScaling"
    meta["params"]["method"] = record
    with pytest.raises(ModelFileError, match=match):
        sk.load(save_state(tmp_path / "edited.npz", kind=kind, meta=meta, arrays=arrays))


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("cls", CALIBRATORS)
def test_calibrators_take_boolean_labels_as_zero_and_one(cls):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(80, 2)) * 2
    y = rng.random(80) < 1 / (1 + np.exp(z[:, 0] - z[:, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_bool = cls().fit(z, y).predict_proba(z)
        by_int = cls().fit(z, y.astype(int)).predict_proba(z)
    np.testing.assert_array_equal(by_bool, by_int)


@pytest.mark.parametrize("cls", CALIBRATORS)
def test_string_labels_are_refused_with_a_way_out(cls):
    z = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(TypeError, match=r"got dtype <U1.*LabelEncoder.*CalibratedClassifier"):
        cls().fit(z, np.array(list("abc"))[np.arange(30) % 3])
