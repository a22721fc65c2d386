"""Constant and near-constant features under the preconditioning of SoftmaxClassifier.

Audit: the feature means were taken in X's dtype and were a few ulp off, so an exactly constant
column centred to a small bias, passed the constant test and was "standardised" by that bias
(coef_ 1.4e6 on a column of 0.1s, picked by SelectFromModel); columns constant up to rounding
changed predict_proba by up to 0.088 against the StandardScaler pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import softmaxkit as sk
from softmaxkit import SoftmaxClassifier
from softmaxkit.classifier import _precondition

TIGHT = dict(tol=1e-10, max_iter=3000)


def _with_constant_column(n=1000, value=0.1):
    rs = np.random.RandomState(0)
    X = np.c_[rs.randn(n, 3), np.full(n, value)]
    y = (X[:, 0] + rs.randn(n) > 0).astype(int)
    return X, y


def _pipeline(X, y):
    lr = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000)
    return make_pipeline(StandardScaler(), lr).fit(X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("standardize", [True, False])
def test_constant_column_gets_zero_coefficient(dtype, standardize):
    X, y = _with_constant_column()
    X = X.astype(dtype)
    clf = SoftmaxClassifier(alpha=2.0, standardize=standardize, **TIGHT).fit(X, y)
    assert clf.coef_[0, 3] == 0.0
    without = SoftmaxClassifier(alpha=2.0, standardize=standardize, **TIGHT).fit(X[:, :3], y)
    # The same problem up to an ulp in the other columns' moments (BLAS blocks by width), which
    # can move L-BFGS's stopping point by about its tolerance.
    np.testing.assert_allclose(clf.coef_[:, :3], without.coef_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(clf.predict_proba(X), without.predict_proba(X[:, :3]), rtol=0, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constant_column_is_centred_exactly_and_left_unscaled(dtype):
    X, _ = _with_constant_column()
    X = X.astype(dtype)
    Xs, mean, scale, r = _precondition(X, np.ones(len(X)), 2.0, np.dtype(np.float64), standardize=True)
    assert mean[3] == X[0, 3] and scale[3] == 1.0 and r[3] == 1.0
    assert not Xs[:, 3].any()


def _near_constant_columns():
    rs = np.random.RandomState(0)
    n = 150
    shares = rs.rand(n, 3000)
    # Both should be constant: 5 up to ~10 ulp of noise, and a sum of shares that should be 1.0.
    yield "5 + 1e-14 randn", 5 + 1e-14 * rs.randn(n)
    yield "row sums of 3000 shares", (shares / shares.sum(1, keepdims=True))[:, ::-1].cumsum(1)[:, -1]


@pytest.mark.parametrize("label, column", list(_near_constant_columns()), ids=lambda v: v if isinstance(v, str) else "")
def test_near_constant_column_matches_standard_scaler_pipeline(label, column):
    X, y = load_iris(return_X_y=True)
    assert 0 < column.std() < 1e-13, label
    Xn = np.c_[X, column]
    ours = SoftmaxClassifier(alpha=1.0, standardize=True, **TIGHT).fit(Xn, y)
    np.testing.assert_allclose(ours.predict_proba(Xn), _pipeline(Xn, y).predict_proba(Xn), rtol=0, atol=1e-5)
    assert np.abs(ours.coef_[:, -1]).max() < 1.0  # was +-7e13


def test_small_but_real_variance_is_still_standardised():
    """The constant test is relative to the feature's mean: 1e-8 units are a real feature."""
    X, y = load_iris(return_X_y=True)
    rs = np.random.RandomState(1)
    Xn = np.c_[X[:, :2], 1e-8 * X[:, 2], 1e-8 * rs.randn(len(X))]  # petal length informative, in tiny units
    _, _, scale, _ = _precondition(Xn, np.ones(len(X)), 1.0, np.dtype(np.float64), standardize=True)
    np.testing.assert_allclose(scale, StandardScaler().fit(Xn).scale_, rtol=1e-12)
    ours = SoftmaxClassifier(alpha=1.0, standardize=True, **TIGHT).fit(Xn, y)
    np.testing.assert_allclose(ours.predict_proba(Xn), _pipeline(Xn, y).predict_proba(Xn), rtol=0, atol=1e-5)
    assert np.abs(ours.coef_[:, 2]).min() > 1e6  # the informative tiny-unit column is used


def test_weight_zero_rows_do_not_decide_constancy(tmp_path):
    """Rows of weight 0 are absent: a column constant on the weighted rows is constant, whatever the
    others hold, and the fit is the one without those rows; the model saves and loads as fitted."""
    X, y = _with_constant_column(n=400)
    w = np.ones(len(y))
    w[::7] = 0.0
    X[::7, 3] = np.random.RandomState(2).randn(len(X[::7]))  # varies only where the weight is 0
    clf = SoftmaxClassifier(alpha=2.0, standardize=True, **TIGHT).fit(X, y, sample_weight=w)
    assert clf.coef_[0, 3] == 0.0
    kept = w > 0
    dropped = SoftmaxClassifier(alpha=2.0, standardize=True, **TIGHT).fit(X[kept], y[kept])
    np.testing.assert_allclose(clf.predict_proba(X), dropped.predict_proba(X), rtol=0, atol=1e-12)
    loaded = sk.load(clf.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.coef_, clf.coef_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
