"""Review R17: early stopping's count split (audit BW) missed three forms of counted data, silently.

(a) Probability targets with whole-number count weights and ``weights_are_counts=True`` (the form the
    ``count_targets`` error recommends: "pass the probabilities and sample_weight") were held out as whole
    rows: 0.43/0.63/0.11 off the frequencies (seeds 0-2) where the same data as count targets were
    0.025/0.008/0.029. Where the probabilities times the weights are whole class counts they are now shared
    out by observation, as count targets are.
(b) Count targets with a fractional ``sample_weight`` (even a uniform 0.5 or 1.5) fell back to whole rows:
    0.43/0.63/0.11 from the full fit. Now ``y``'s counts are shared out, each observation carrying its
    row's weight.
(c) Count targets took a whole-number ``sample_weight`` as counts even without ``weights_are_counts``,
    where label rows hold the same weights out with their rows. Now they follow the labels' rule: ``y``'s
    own counts are observations, and the weight multiplies them only with ``weights_are_counts=True``.
(d) Whole-number weights above 1 held out together (rows, or count targets' observations) warn.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmaxkit import SoftmaxClassifier
from softmaxkit._targets import encode_targets

# BW's data: 4 inputs, their class frequencies, 250 observations each (999 with the rounding)
FREQ = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5], [0.01, 0.04, 0.95]])
INPUTS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
COUNTS = (FREQ * 250).round().astype(int)
TOTALS = COUNTS.sum(axis=1).astype(float)
EMPIRICAL = COUNTS / TOTALS[:, None]  # the frequencies, whose products with TOTALS are COUNTS
MLP = dict(hidden_layer_sizes=(8,), solver="lbfgs", alpha=1e-4, early_stopping=True)


def _fit(X, y, w=None, **params):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = SoftmaxClassifier(**params).fit(X, y, sample_weight=w)
    return model, [str(r.message) for r in record if "sample_weight" in str(r.message)]


def _parts(model, y, w, *, counts, seed=0):
    """The (input, class) observations and the weight of one observation of each row, in the training and
    validation parts of ``model``'s split of ``y`` and ``w``."""
    targets = encode_targets(y, sample_weight=w, n_samples=4, counts=counts)
    train, train_targets, (valid, valid_targets) = model._split(targets, np.random.RandomState(seed))
    parts = []
    for rows, part in ((train, train_targets), (valid, valid_targets)):
        observed = np.zeros((4, 3))
        totals = getattr(part, "totals", None)  # count targets keep their counts apart from the weight
        totals = part.weight if totals is None else totals
        observed[rows] = np.rint(part.target * totals[:, None])
        per_observation = np.full(4, np.nan)
        per_observation[rows] = part.weight / observed[rows].sum(axis=1)
        parts.append((observed.astype(int), per_observation))
    return parts


def test_probabilities_with_counted_weights_are_split_by_observation():
    """(a) The frequencies with their totals as counted weights are the 999 observations: shared out as
    count targets would be, ceil(0.1 * 999) held out stratified by class, every large count keeping
    training observations. Before, whole rows went to validation (held + kept added up, but by row)."""
    model = SoftmaxClassifier(early_stopping=True, weights_are_counts=True)
    for seed in range(3):
        (kept, kept_w), (held, held_w) = _parts(model, EMPIRICAL, TOTALS, counts=False, seed=seed)
        np.testing.assert_array_equal(kept + held, COUNTS)
        assert held.sum() == int(np.ceil(0.1 * COUNTS.sum()))
        assert np.all(np.abs(held.sum(axis=0) - 0.1 * COUNTS.sum(axis=0)) <= 1)  # stratified
        assert np.all(kept[COUNTS > 10] > 0)
        np.testing.assert_allclose(kept_w[~np.isnan(kept_w)], 1.0)
        np.testing.assert_allclose(held_w[~np.isnan(held_w)], 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_probabilities_with_counted_weights_fit_as_count_targets(seed):
    """(a) R17: 0.43/0.63/0.11 off the frequencies for seeds 0-2, against 0.025/0.008/0.029 for the count
    targets; now the same split and the same fit, without a warning."""
    as_counts, _ = _fit(INPUTS, COUNTS, count_targets=True, random_state=seed, **MLP)
    weighted, said = _fit(INPUTS, EMPIRICAL, TOTALS, weights_are_counts=True, random_state=seed, **MLP)
    assert not said
    np.testing.assert_allclose(weighted.predict_proba(INPUTS), as_counts.predict_proba(INPUTS), atol=1e-8)
    assert np.abs(weighted.predict_proba(INPUTS) - EMPIRICAL).max() < 0.06


@pytest.mark.parametrize("weights_are_counts", [False, True])
@pytest.mark.parametrize("w", [np.full(4, 0.5), np.full(4, 1.5), np.array([0.5, 2.25, 1.0, 3.5])],
                         ids=["0.5", "1.5", "mixed"])
def test_count_targets_with_fractional_weights_share_their_counts(w, weights_are_counts):
    """(b) A fractional sample_weight counts nothing: y's counts are shared out, each observation
    weighing its row's weight. Before, the rows were held out whole."""
    model = SoftmaxClassifier(early_stopping=True, count_targets=True, weights_are_counts=weights_are_counts)
    (kept, kept_w), (held, held_w) = _parts(model, COUNTS, w, counts=True)
    np.testing.assert_array_equal(kept + held, COUNTS)
    assert held.sum() == int(np.ceil(0.1 * COUNTS.sum()))
    assert np.all(kept[COUNTS > 10] > 0)
    for per_observation in (kept_w, held_w):
        seen = ~np.isnan(per_observation)
        np.testing.assert_allclose(per_observation[seen], w[seen], rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_count_targets_early_stopped_alike_under_any_uniform_weight(seed):
    """(b) A uniform weight changes neither the objective nor the split: the early-stopped fit of the counts
    weighted 0.5 or 1.5 is the unweighted one (R17: 0.43/0.63/0.11 from the full fit, as whole rows)."""
    plain, _ = _fit(INPUTS, COUNTS, count_targets=True, random_state=seed, **MLP)
    for value in (0.5, 1.5):
        weighted, said = _fit(INPUTS, COUNTS, np.full(4, value), count_targets=True, random_state=seed, **MLP)
        assert not said
        np.testing.assert_allclose(weighted.predict_proba(INPUTS), plain.predict_proba(INPUTS), atol=1e-6)


def test_count_targets_count_whole_number_weights_only_when_told():
    """(c) As for labels: without weights_are_counts a whole-number weight stays each observation's weight
    (y's 999 observations shared out) and a warning says so; with it, the weight multiplies the counts
    (1998 observations of weight 1). Before, both took the weight as counts, silently."""
    w = np.full(4, 2.0)
    plain = SoftmaxClassifier(early_stopping=True, count_targets=True)
    (kept, kept_w), (held, held_w) = _parts(plain, COUNTS, w, counts=True)
    np.testing.assert_array_equal(kept + held, COUNTS)
    np.testing.assert_array_equal(held_w[~np.isnan(held_w)], 2.0)
    counted = SoftmaxClassifier(early_stopping=True, count_targets=True, weights_are_counts=True)
    (kept, kept_w), (held, held_w) = _parts(counted, COUNTS, w, counts=True)
    np.testing.assert_array_equal(kept + held, 2 * COUNTS)
    assert held.sum() == int(np.ceil(0.1 * 2 * COUNTS.sum()))
    np.testing.assert_array_equal(held_w[~np.isnan(held_w)], 1.0)
    _, said = _fit(INPUTS, COUNTS, w, count_targets=True, early_stopping=True, alpha=1e-2, max_iter=20)
    assert len(said) == 1 and "validation split shares out y's counts, each observation held out with its " \
                               "whole weight" in said[0] and "weights_are_counts=True" in said[0], said
    _, said = _fit(INPUTS, COUNTS, w, count_targets=True, weights_are_counts=True, early_stopping=True,
                   alpha=1e-2, max_iter=20)
    assert not said


def test_whole_number_weights_held_out_together_warn():
    """(d) No silent fallback to rows while whole-number weights above 1 may be counts: probabilities with
    count weights and no weights_are_counts (which would share them), and probabilities whose products with
    counted weights are no class counts, which even weights_are_counts cannot share. Count targets'
    fractional weights, counted weights and no weights say nothing."""
    soft = np.array([[0.37, 0.33, 0.30]] * 4)
    params = dict(early_stopping=True, alpha=1e-2, max_iter=20)
    _, said = _fit(INPUTS, EMPIRICAL, TOTALS, **params)
    assert len(said) == 1 and "early_stopping=True got whole-number sample_weight" in said[0]
    assert "validation split holds out rows" in said[0] and "pass weights_are_counts=True" in said[0]
    for counted in (False, True):
        _, said = _fit(INPUTS, soft, np.array([3.0, 5, 7, 9]), weights_are_counts=counted, **params)
        assert len(said) == 1 and "times the weights are not whole numbers" in said[0], said
        assert "pass the rows repeated" in said[0]
    for y, w, extra in [
        (EMPIRICAL, TOTALS, dict(weights_are_counts=True)),
        (COUNTS, np.full(4, 0.5), dict(count_targets=True)),
        (COUNTS, np.full(4, 3.0), dict(count_targets=True, weights_are_counts=True)),
        (COUNTS, None, dict(count_targets=True)),
        (EMPIRICAL, None, {}),
    ]:
        _, said = _fit(INPUTS, y, w, **params, **extra)
        assert not said, (w, extra)


def test_counted_probabilities_observed_once_per_class_have_nothing_to_hold_out():
    """Two observations of an input, one of each class, and one of a third: no class to hold out from."""
    with pytest.raises(ValueError, match=r"every class is observed once \(counting y's probabilities times "
                                         r"sample_weight\); set early_stopping=False$"):
        SoftmaxClassifier(early_stopping=True, weights_are_counts=True, alpha=1.0).fit(
            INPUTS[:2], np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]), sample_weight=[2.0, 1.0]
        )
