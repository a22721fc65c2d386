"""L-BFGS at the default ``tol`` reaches the optimum's coefficients, not only its
predictions, whatever the weights' total or the binary parametrisation; and
``class_weight`` is refused with advice."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from softmaxkit import SoftmaxClassifier


def _imbalanced_redundant():
    # Two redundant (collinear) features: along them only the penalty curves the objective.
    X, y = make_classification(n_samples=2000, n_features=10, n_informative=4, weights=[0.95], random_state=3)
    return X, y


def _rel_error(model, reference):
    a = np.c_[model.coef_, model.intercept_]
    b = np.c_[reference.coef_, reference.intercept_]
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("weight_scale", [None, 1.0, 0.01])
def test_default_tol_coefficients_match_converged_logistic_regression(weight_scale):
    # Audit: with sample_weight 10 on positives, 7 iterations left coef_[0] at -0.218
    # against -0.293 (25% off) at the default tol; unweighted 11% off.
    X, y = _imbalanced_redundant()
    sw = None if weight_scale is None else weight_scale * np.where(y == 1, 10.0, 1.0)
    C = 1.0 if weight_scale is None else weight_scale  # the same penalty per unit of weight
    exact = LogisticRegression(C=C, tol=1e-10, max_iter=100000).fit(X, y, sample_weight=sw)
    model = SoftmaxClassifier(alpha=2.0 / C).fit(X, y, sample_weight=sw)
    assert _rel_error(model, exact) < 1e-3
    np.testing.assert_allclose(model.predict_proba(X), exact.predict_proba(X), atol=1e-5)


def test_default_tol_multiclass_coefficients_match():
    X, y = make_classification(
        n_samples=600, n_features=8, n_informative=3, n_redundant=3, n_classes=3, random_state=0
    )
    exact = LogisticRegression(C=1.0, tol=1e-10, max_iter=100000).fit(X, y)
    model = SoftmaxClassifier(alpha=1.0).fit(X, y)
    assert _rel_error(model, exact) < 1e-3


def test_class_weight_refused_with_advice():
    with pytest.raises(TypeError, match=r"no class_weight.*compute_sample_weight\('balanced', y\).*predict_proba"):
        SoftmaxClassifier(class_weight="balanced")
    with pytest.raises(ValueError, match="no class_weight"):
        SoftmaxClassifier().set_params(class_weight="balanced")
    with pytest.raises(TypeError, match="'foo'"):
        SoftmaxClassifier(foo=1)
    # **kwargs must not leak into scikit-learn's parameter handling.
    model = SoftmaxClassifier(alpha=1.0)
    assert "unknown" not in model.get_params()
    assert clone(model).get_params() == model.get_params()


def _iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_refinement_keeps_curvature_and_reaches_the_optimum():
    # Audit J: at alpha=1e-4 scikit-learn's gradient test (22 iterations) leaves iris'
    # coefficients 65% off; restarting L-BFGS at every refinement step took 172 iterations.
    X, y = _iris()
    exact = LogisticRegression(C=1e4, tol=1e-12, max_iter=100000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = SoftmaxClassifier(alpha=1e-4).fit(X, y)
    assert _rel_error(model, exact) < 1e-3
    assert model.n_iter_ < 130  # one continued run (91 with SciPy 1.17), not restarts (172)


def test_refinement_cut_short_by_max_iter_warns_about_the_coefficients():
    X, y = _iris()
    with pytest.warns(ConvergenceWarning, match=r"met the gradient test.*coefficients.*raise max_iter") as record:
        model = SoftmaxClassifier(alpha=1e-4, max_iter=40).fit(X, y)
    assert model.n_iter_ == 40
    assert len(record) == 1
    # Cut short before the gradient test: the usual message, not the coefficients' one.
    with pytest.warns(ConvergenceWarning, match="before converging") as record:
        SoftmaxClassifier(alpha=1e-4, max_iter=10).fit(X, y)
    assert not any("gradient test" in str(w.message) for w in record)


def test_auto_alpha_refit_stops_where_its_path_fits_did():
    """alpha="auto" chose its penalty for fits stopped at the gradient test, so its refit stops there
    too (refined, digits' default fit ran into max_iter); a float alpha is refined."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning from a refinement cut short
        auto = SoftmaxClassifier().fit(X, y)
    assert auto.n_iter_ < auto.max_iter
