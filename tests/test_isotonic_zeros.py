"""Isotonic maps that reach probability 0, and classes with too few calibration rows.

Audit: on 20-200 calibration rows ``IsotonicCalibration`` gave a class probability exactly 0 over a
range of scores (as scikit-learn does), silently, so fresh rows of that class got infinite
log-loss (93 of 96 small runs); a class with 1-2 calibration rows was accepted silently by the
isotonic and Platt maps. The numbers stay scikit-learn's; the fit now says so.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import oracle
import pytest

import softmaxkit as sk
from softmaxkit.calibration import CalibrationWarning, IsotonicCalibration, PlattScaling


def _three_class(seed: int = 0, n: int = 60):
    """Scores whose class-0 map cannot reach 0 (its lowest score is a class-0 row); the other
    two maps start at 0 (their lowest scores are rows of other classes)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    y = np.argmax(z + rng.gumbel(size=(n, 3)), axis=1)
    y[:3] = 0
    z[0] = [-10.0, 0.0, 0.0]  # class 0's lowest logit, on a class-0 row
    z[1] = [0.0, -10.0, 0.0]  # classes 1 and 2's lowest logits, on class-0 rows
    z[2] = [0.0, 0.0, -10.0]
    return z, y


def _probe(cal, n_classes: int, median: np.ndarray) -> np.ndarray:
    """Row k: every logit at the calibration median except logit k, far below every knot."""
    rows = np.tile(median, (n_classes, 1))
    rows[np.arange(n_classes), np.arange(n_classes)] = -1e3
    return cal.predict_proba(rows)


def test_zero_classes_are_the_classes_predict_proba_gives_zero():
    z, y = _three_class()
    with pytest.warns(CalibrationWarning, match="infinite log-loss") as record:
        iso = IsotonicCalibration().fit(z, y)
    p = _probe(iso, 3, np.median(z, axis=0))
    # Checked through predictions, not through the knots the attribute is read from.
    assert iso.zero_classes_.dtype.kind == "i"
    assert iso.zero_classes_.tolist() == [k for k in range(3) if p[k, k] == 0.0] == [1, 2]
    zero = [w for w in record if "infinite log-loss" in str(w.message)]
    assert len(zero) == 1  # one warning naming every class
    msg = str(zero[0].message)
    bound1 = iso.thresholds_[1][0][iso.thresholds_[1][1] == 0].max()
    # the maps read each class's log-odds, not its logit (audit CO), and the message says so
    assert re.search(rf"class 1 at log-odds <= {bound1:.4g}\b", msg), msg
    assert "class 2 at log-odds <=" in msg and "class 0" not in msg
    assert "the isotonic map (of each class's log-odds log(p_k / (1 - p_k)), p = softmax(logits)) gives" in msg
    assert "more calibration rows" in msg.lower() and "TemperatureScaling" in msg


def test_default_numbers_stay_scikit_learns():
    from sklearn.isotonic import IsotonicRegression

    z, y = _three_class(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        p = IsotonicCalibration().fit(z, y).predict_proba(z)
    # on each class's one-vs-rest log-odds z_k - logsumexp_{j != k} z_j (audit CO: not the raw logit)
    f = np.stack([z[:, k] - oracle.logsumexp(np.delete(z, k, axis=1)) for k in range(3)], axis=1)
    q = np.stack([IsotonicRegression(out_of_bounds="clip").fit(f[:, k], y == k).predict(f[:, k]) for k in range(3)], 1)
    np.testing.assert_allclose(p, q / q.sum(axis=1, keepdims=True), rtol=0, atol=1e-12)


def test_binary_map_names_both_ends():
    """One map on the margin: q = 0 below it zeroes class 1, q = 1 above it zeroes class 0."""
    rng = np.random.default_rng(1)
    m = np.sort(rng.normal(size=40))
    y = (m + rng.normal(scale=0.5, size=40) > 0).astype(int)
    y[:3], y[-3:] = 0, 1  # pure ends: the map is 0 at the bottom and 1 at the top
    z = np.stack([np.zeros(40), m], axis=1)
    with pytest.warns(CalibrationWarning, match="infinite log-loss") as record:
        iso = IsotonicCalibration().fit(z, y)
    p = iso.predict_proba(np.array([[0.0, -1e3], [0.0, 1e3]]))
    assert p[0, 1] == 0.0 and p[1, 0] == 0.0
    assert iso.zero_classes_.tolist() == [0, 1]
    msg = next(str(w.message) for w in record if "infinite log-loss" in str(w.message))
    assert "class 0 at margin z_1 - z_0 >=" in msg and "class 1 at margin z_1 - z_0 <=" in msg


def test_no_warning_and_empty_when_no_map_reaches_zero():
    z, y = _three_class(seed=2, n=90)
    for k in (1, 2):  # make each class's lowest logit one of its own rows
        z[np.flatnonzero(y == k)[0], k] = -20.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iso = IsotonicCalibration().fit(z, y)
    assert iso.zero_classes_.tolist() == [] and iso.zero_classes_.dtype.kind == "i"
    assert np.all(_probe(iso, 3, np.median(z, axis=0)) > 0)


def test_zero_classes_survive_save_and_load_and_are_not_stored(tmp_path):
    from softmaxkit.io import read_state

    z, y = _three_class()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        iso = IsotonicCalibration().fit(z, y)
    iso.save(tmp_path / "iso.npz")
    _, meta, arrays = read_state(tmp_path / "iso.npz")
    # Derived from the knots, so files written before the attribute existed load with it too.
    assert "zero_classes_" not in arrays and "zero_classes_" not in meta["fitted"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading refits nothing, so it says nothing
        loaded = sk.load(tmp_path / "iso.npz")
    assert loaded.zero_classes_.tolist() == iso.zero_classes_.tolist() == [1, 2]


def test_unfitted_calibrator_has_no_zero_classes():
    assert getattr(IsotonicCalibration(), "zero_classes_", None) is None


@pytest.mark.parametrize("cls", [IsotonicCalibration, PlattScaling])
def test_class_with_few_rows_warns_with_its_count(cls):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(60, 4))
    y = np.arange(60) % 3
    y[[5, 7]] = 3
    w = np.ones(60)
    w[7] = 0.0  # a row of zero weight tells the map nothing
    with pytest.warns(CalibrationWarning, match=r"class 3 has 1 calibration row \(of positive weight\)") as record:
        cls().fit(z, y, sample_weight=w)
    msg = next(str(r.message) for r in record if "class 3 has 1" in str(r.message))
    assert "rests on 1 row" in msg and cls.__name__ in msg
    y[[5, 7, 9, 11, 13]] = 3  # five rows: enough
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        warnings.filterwarnings("ignore", "IsotonicCalibration: the isotonic map", CalibrationWarning)
        cls().fit(z, y)


def test_cross_fitted_isotonic_warns_once_for_the_classes_every_fold_gives_zero():
    """CalibratedClassifier(method="isotonic") fits one map per fold: each fold's warning was about that
    fold alone (10 lines for cv=5); the average gives 0 only where every map does, so one warning names
    the classes common to all (its zero_classes_), and the fresh rows' zeros fall in those classes."""
    from sklearn.datasets import make_classification

    from softmaxkit.calibration import CalibratedClassifier, ZeroProbabilityWarning

    X, y = make_classification(n_samples=4080, n_features=6, n_informative=4, n_classes=3, random_state=0)
    model = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), method="isotonic", cv=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X[:80], y[:80])
    zero_warnings = [w for w in caught if issubclass(w.category, ZeroProbabilityWarning)]
    per_pair = [set(pair.calibrator.zero_classes_.tolist()) for pair in model.calibrated_classifiers_]
    common = sorted(set.intersection(*per_pair))
    np.testing.assert_array_equal(model.zero_classes_, common)
    assert common, "this seed's folds share zero classes (the case under test)"
    from softmaxkit._loss_interval import name_list

    assert len(zero_warnings) == 1 and f"index(es) {name_list(common)} over" in str(zero_warnings[0].message)
    fresh = model.predict_proba(X[80:])
    zero_rows, zero_cols = np.nonzero(fresh == 0.0)
    assert set(zero_cols.tolist()) <= set(common)
    # Methods without such ranges: empty, no warning.
    platt = CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0), method="temperature", cv=5).fit(X[:80], y[:80])
    assert platt.zero_classes_.size == 0
