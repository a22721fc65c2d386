"""Audit BW: early stopping on counts, and rows of weight 0.

1. ``early_stopping=True`` held out whole rows: on deduplicated data (``sample_weight`` = counts, or
   ``count_targets=True``) a held-out row took its whole count with it, so the network never trained on
   that (input, class) pair (4 inputs, 12 rows, 999 observations: probabilities 0.36 off the frequencies
   under L-BFGS, 0.04 for the repeated rows), whatever ``weights_are_counts`` said, without a word. With
   ``weights_are_counts=True`` (and for count targets) the validation split now shares each count between
   training and validation; whole-number weights above 1 held out with their rows warn.
2. Rows of weight 0 changed an L-BFGS MLP's fit (iris, probabilities 0.09 apart; scikit-learn's
   ``MLPClassifier`` gives exactly none): their exact zeros still changed the rounding of the products,
   which L-BFGS amplified. They are now left out of the optimisation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

from softmaxkit import SoftmaxClassifier
from softmaxkit._targets import encode_targets

# BW's data: 4 inputs, their class frequencies, 250 observations each (999 with the rounding)
FREQ = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5], [0.01, 0.04, 0.95]])
INPUTS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
COUNTS = (FREQ * 250).round().astype(int)  # (input, class) counts: the count-target matrix


def _deduplicated():
    """The (input, class) rows of COUNTS and their counts as weights (np.unique(..., return_counts=True))."""
    rows, classes = np.nonzero(COUNTS)
    return INPUTS[rows], classes, COUNTS[rows, classes].astype(float)


def _fit(X, y, w=None, **params):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = SoftmaxClassifier(**params).fit(X, y, sample_weight=w)
    return model, [str(r.message) for r in record if issubclass(r.category, UserWarning)]


@pytest.mark.parametrize("count_targets", [False, True])
def test_early_stopping_shares_each_count_between_training_and_validation(count_targets):
    """The split of the 999 observations: ceil(0.1 * 999) held out, stratified by class, every row's count
    shared between the parts (so every large (input, class) count keeps training observations), the parts'
    targets and weights adding back up to the counts. Before, 2 of the 12 rows went to validation whole."""
    X, y, w = _deduplicated()
    if count_targets:
        model = SoftmaxClassifier(early_stopping=True, count_targets=True)
        targets = encode_targets(COUNTS, n_samples=4, counts=True)
    else:
        model = SoftmaxClassifier(early_stopping=True, weights_are_counts=True)
        targets = encode_targets(y, sample_weight=w, n_samples=len(y))
    for seed in range(5):
        train, train_targets, (valid, valid_targets) = model._split(targets, np.random.RandomState(seed))

        def observed(rows, part):  # the (input, class) counts of a part
            out = np.zeros((4, 3))
            if count_targets:
                out[rows] = part.target * part.weight[:, None]
            else:
                np.add.at(out, (np.nonzero(COUNTS)[0][rows], part.target), part.weight)
            return np.rint(out).astype(int)

        held, kept = observed(valid, valid_targets), observed(train, train_targets)
        np.testing.assert_array_equal(held + kept, COUNTS)
        assert held.sum() == int(np.ceil(0.1 * COUNTS.sum()))
        per_class = held.sum(axis=0)
        assert np.all(np.abs(per_class - 0.1 * COUNTS.sum(axis=0)) <= 1), per_class  # stratified
        assert np.all(kept.sum(axis=0) > 0)
        assert np.all(kept[COUNTS > 10] > 0)  # no large count went to validation whole


@pytest.mark.parametrize("seed", range(3))
def test_early_stopping_on_counts_recovers_the_frequencies(seed):
    """BW: deduplicated rows with counts, early-stopped under L-BFGS, were up to 0.36 off the frequencies
    (0.22-0.37 over these seeds, weights_are_counts or not); the repeated rows 0.01-0.04. Now as the
    repeated rows, and count targets give the same fit as the counted weights."""
    X, y, w = _deduplicated()
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, solver="lbfgs", alpha=1e-4, random_state=seed)
    counted, said = _fit(X, y, w, weights_are_counts=True, **params)
    assert not said
    assert np.abs(counted.predict_proba(INPUTS) - FREQ).max() < 0.06
    as_targets, _ = _fit(INPUTS, COUNTS, count_targets=True, **params)
    np.testing.assert_allclose(as_targets.predict_proba(INPUTS), counted.predict_proba(INPUTS), atol=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_early_stopped_linear_model_on_counts_is_near_the_full_fit(seed):
    """The linear model's early-stopped fit of the counts, against its fit of all rows: 0.17-0.42 apart
    with whole rows held out, within 0.04 now."""
    X, y, w = _deduplicated()
    full = SoftmaxClassifier(alpha=1e-4).fit(X, y, sample_weight=w).predict_proba(INPUTS)
    early, _ = _fit(X, y, w, alpha=1e-4, early_stopping=True, weights_are_counts=True, random_state=seed)
    assert np.abs(early.predict_proba(INPUTS) - full).max() < 0.06


def test_count_targets_observed_once_per_class_have_nothing_to_hold_out():
    with pytest.raises(ValueError, match=r"no observations to hold out for validation: every class is observed "
                                         r"once \(counting y's counts\); set early_stopping=False$"):
        SoftmaxClassifier(early_stopping=True, count_targets=True, alpha=1.0).fit(
            INPUTS[:3], np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        )


def test_whole_number_weights_held_out_with_their_rows_warn_once():
    """Early stopping without weights_are_counts keeps whole rows (right for importance weights) and now
    says so, as alpha='auto' does; once per fit, naming both where both split rows."""
    X, y, w = _deduplicated()
    with pytest.warns(UserWarning, match=r"early_stopping=True got whole-number sample_weight.*validation "
                                         r"split holds out rows.*weights_are_counts=True") as record:
        SoftmaxClassifier(alpha=1e-2, early_stopping=True, max_iter=20).fit(X, y, sample_weight=w)
    named = [r for r in record if "weights_are_counts" in str(r.message)]
    assert len(named) == 1 and named[0].filename == __file__  # the caller's line
    _, said = _fit(X, y, w, early_stopping=True, max_iter=20)  # alpha="auto" too: one warning for both
    named = [m for m in said if "weights_are_counts" in m]
    assert len(named) == 1 and "alpha='auto' and early_stopping=True" in named[0], said
    for params, weight in [(dict(weights_are_counts=True), w), ({}, w + 0.5), ({}, None)]:
        _, said = _fit(X, y, weight, alpha=1e-2, early_stopping=True, max_iter=20, **params)
        assert not any("weights_are_counts" in m for m in said), params
    _, said = _fit(X, y, w, alpha=1e-2, max_iter=20)  # nothing held out
    assert not said


@pytest.mark.parametrize("params", [
    dict(hidden_layer_sizes=(5,), solver="lbfgs"),
    dict(hidden_layer_sizes=(5,), solver="adam", max_iter=30),
    dict(hidden_layer_sizes=(5,), solver="lbfgs", early_stopping=True),
    dict(),
    dict(standardize=True),
], ids=["mlp-lbfgs", "mlp-adam", "mlp-early-stopping", "linear", "linear-standardized"])
def test_rows_of_weight_zero_change_nothing(params):
    """BW: iris, integer weights 0..3, MLP(5) by L-BFGS: 0.09 apart with and without the weight-0 rows
    (the linear model 8e-14); scikit-learn's MLPClassifier exactly 0. They are left out of the fit, so the
    two fits are the same computation."""
    X, y = load_iris(return_X_y=True)
    w = np.random.RandomState(1).randint(0, 4, len(y)).astype(float)
    keep = w > 0
    kw = dict(alpha=1e-2, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = SoftmaxClassifier(**kw).fit(X, y, sample_weight=w)
        dropped = SoftmaxClassifier(**kw).fit(X[keep], y[keep], sample_weight=w[keep])
    np.testing.assert_array_equal(weighted.predict_proba(X), dropped.predict_proba(X))
    assert weighted.loss_curve_ == dropped.loss_curve_


def test_a_class_of_weight_zero_keeps_its_column():
    """classes_ still come from all of y: a class whose rows all weigh 0 keeps its column (near 0)."""
    X, y = load_iris(return_X_y=True)
    w = (y < 2).astype(float)
    model = SoftmaxClassifier(hidden_layer_sizes=(3,), solver="lbfgs", alpha=1.0, random_state=0).fit(X, y, w)
    assert model.classes_.tolist() == [0, 1, 2] and model.predict_proba(X).shape == (150, 3)
    assert model.predict_proba(X)[:, 2].max() < 0.05
