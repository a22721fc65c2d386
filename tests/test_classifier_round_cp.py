"""Audit CP: what the weak-end warning of ``alpha="auto"`` claims, and fractional weights far from their rows."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.utils.class_weight import compute_sample_weight

from softmaxkit import SoftmaxClassifier, _alpha_search
from softmaxkit._targets import encode_targets


def _small_scale_features(n=1000, d=10, seed=1):
    """The auditor's case: softmax P(y|x) over Gaussian features, then columns scaled to 1e-5 .. 1e-2."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    logits = Z @ (rng.standard_normal((d, 3)) * 0.7)
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, 1)).sum(1)
    return Z * np.logspace(-5, -2, d), y


def _user_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


def test_weak_end_on_small_scale_features_is_not_called_separable():
    """Audit CP: held-out 0.957 against 1.099 for the class frequencies was reported as "(nearly) separable ...
    probabilities near 0 and 1 are to be expected"; the probabilities were under-confident, and
    standardize=True (0.630) fixed it. The warning now gives both losses, says the penalty was too strong,
    and names the features' scale and the fix."""
    X, y = _small_scale_features()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = SoftmaxClassifier(random_state=0).fit(X, y)
    assert clf.alpha_at_bound_ and clf.alpha_ == clf.alpha_path_[-1]
    (message,) = [m for m in _user_warnings(record) if "weakest penalty" in m]
    assert "probabilities near 0 and 1" not in message and "too high for (nearly) separable classes" in message
    prior = _alpha_search.prior_log_loss(encode_targets(y, n_samples=len(y)))
    assert clf.alpha_path_loss_[-1] > _alpha_search.SEPARABLE_SHARE * prior
    assert f"at {clf.alpha_path_loss_[-1]:.3g} against {prior:.3g} for predicting the class frequencies" in message
    assert "too high for (nearly) separable classes" in message and "under-confident" in message
    assert "All 10 features have standard deviations below sqrt(alpha) = 0.01 (the smallest 1e-05" in message
    assert "standardize=True" in message
    # the fix it names: the same data standardised reach an inner optimum, without the warning
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fixed = SoftmaxClassifier(random_state=0, standardize=True).fit(X, y)
    assert not fixed.alpha_at_bound_ and not _user_warnings(record)


def _weak_end(loss_at_end, alpha=1e-4):
    return _alpha_search.AlphaSearch(alpha, np.array([1.0, 1e-2, alpha]), np.array([0.69, 0.3, loss_at_end]), 5)


def test_weak_end_reason_calls_separable_only_a_small_held_out_loss():
    """The criterion: below SEPARABLE_SHARE of the class frequencies' log-loss (here log 2), separable;
    above, too strong a penalty. Features at the usual scale get no scale hint, a smaller alpha instead."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), np.repeat([0, 1], 20)
    targets = encode_targets(y, n_samples=40)
    clf = SoftmaxClassifier()
    share = _alpha_search.SEPARABLE_SHARE * np.log(2)
    separable = clf._weak_end_reason(X, targets, _weak_end(0.99 * share))
    assert "as when the classes are (nearly) separable" in separable and "probabilities near 0 and 1" in separable
    assert separable.endswith("Check alpha_path_loss_, and pass a smaller float alpha.")
    strong = clf._weak_end_reason(X, targets, _weak_end(1.01 * share))
    assert "too high for (nearly) separable classes" in strong and "standard deviations" not in strong
    # standardize=True penalises standardised weights: the features' scale is no cause, and is not named
    small = SoftmaxClassifier(standardize=True)._weak_end_reason(X * 1e-6, targets, _weak_end(0.5))
    assert "standard deviations" not in small and "smaller float alpha" in small
    hint = clf._weak_end_reason(np.c_[X[:, :2], X[:, 2] * 1e-4], targets, _weak_end(0.5))
    assert "1 of the 3 features have standard deviations below sqrt(alpha) = 0.01" in hint and "feature 2" in hint


def test_prior_log_loss_is_the_weighted_class_entropy():
    y = np.array([0, 0, 1, 2])
    weight = np.array([1.0, 1.0, 2.0, 0.0])
    labels = encode_targets(y, sample_weight=weight, n_samples=4)
    assert _alpha_search.prior_log_loss(labels) == pytest.approx(np.log(2))  # classes 1:1, the third weighs 0
    soft = encode_targets(np.eye(3)[y], sample_weight=weight, n_samples=4)
    assert _alpha_search.prior_log_loss(soft) == pytest.approx(np.log(2))


def _weight_warnings(sample_weight, **params):
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        SoftmaxClassifier(random_state=0, **params).fit(X, y, sample_weight=sample_weight)
    return [m for m in _user_warnings(record) if "fractional sample_weight" in m]


def test_fractional_weights_far_from_their_rows_warn():
    """Audit CP: weights 1 and up to 1000 (sum ~126 times the rows) kept LogisticRegression()'s penalty where
    a stronger one was clearly better, without a word; weights summing to 1 make every penalty n times stronger."""
    rng = np.random.default_rng(0)
    heavy = np.where(rng.random(150) < 0.3, 1000 * rng.random(150), 1.0)
    heavy[::10] = 0.0
    (message,) = _weight_warnings(heavy)
    n = int(np.count_nonzero(heavy))
    ratio = heavy.sum() / n
    assert ratio > _alpha_search.WEIGHT_SCALE_FACTOR
    assert f"summing to {heavy.sum():.4g} over {n} rows of positive weight" in message
    assert f"acts {ratio:.3g} times weaker" in message and f"sample_weight * {n} / sample_weight.sum()" in message
    (message,) = _weight_warnings(np.full(150, 1 / 150))
    assert "acts 150 times stronger" in message


@pytest.mark.parametrize(
    "make",
    [
        lambda y, rng: (lambda w: w / w.mean())(rng.random(150) * 1000),  # scaled to mean 1
        lambda y, rng: compute_sample_weight("balanced", np.r_[y[:120], np.zeros(30, int)]),  # class_weight's
        lambda y, rng: np.full(150, 3.5),  # fractional, within the factor
        lambda y, rng: rng.integers(1, 1000, 150).astype(float),  # whole numbers: repetitions (another warning)
    ],
)
def test_weights_on_the_rows_scale_do_not_warn(make):
    _, y = load_iris(return_X_y=True)
    assert _weight_warnings(make(y, np.random.default_rng(0))) == []


def test_weight_scale_warning_is_for_alpha_auto_only():
    """A float alpha is the user's, in the documented units (as LogisticRegression's C): no warning."""
    assert _weight_warnings(np.full(150, 1 / 150), alpha=1.0) == []
