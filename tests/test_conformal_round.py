"""Conformal audit round: per-row uniforms, the range's upper end for tied scores, saving a stream."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit.conformal import ConformalClassifier, ConformalWarning, coverage


def _data(rng, n, c=10, scale=1.5):
    """Logits and labels drawn from their softmax (the audit's model: probabilities are the true ones)."""
    z = rng.normal(size=(n, c)) * scale
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return z, (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)


def _one_row_calls(cp, x, alpha):
    return np.concatenate([cp.predict_sets(x[i:i + 1], alpha) for i in range(len(x))])


@pytest.mark.parametrize("score", ["aps", "raps"])
def test_rows_predicted_one_per_call_get_their_own_uniforms(score):
    """Audit: with an int seed the uniform was default_rng([seed, 1]).random(n), a function of the row's
    position alone, so every one-row call had u = 0.890 (seed 0) and coverage was 0.874 at 90%.
    Near-flat rows make the set size a readout of u: with 4 classes and q ~ 0.9 the set holds 4 classes
    when u <= ~0.6 and 3 otherwise, so one u for all rows covers 0.75 or 1.0, not 0.9."""
    rng = np.random.default_rng(1)
    c, m = 4, 2000

    def flat(n):
        p = 1.0 / c + rng.uniform(-1e-4, 1e-4, size=(n, c))
        return p / p.sum(axis=1, keepdims=True), rng.integers(0, c, n)

    p_cal, y_cal = flat(2000)
    p_test, y_test = flat(m)
    cp = ConformalClassifier(score=score, lambda_=0.0, input="probs", random_state=0).fit(p_cal, y_cal)
    one = _one_row_calls(cp, p_test, 0.1)
    sizes = one.sum(axis=1)
    assert set(np.unique(sizes)) == {3, 4}, np.unique(sizes)  # u varies from row to row
    se = math.sqrt(0.1 * 0.9 / m) + math.sqrt(0.1 * 0.9 / 2000)  # test rows + calibration draw
    assert abs(coverage(y_test, one) - 0.9) < 4 * se


def test_one_row_calls_cover_like_a_batch():
    """The audit's simulation, smaller: 10 classes, 2000 calibration rows, 2000 test rows at 90%. Before:
    one-row calls covered 0.874 (seed 0) against 0.899 for one batch."""
    rng = np.random.default_rng(3)
    z_cal, y_cal = _data(rng, 2000)
    z_test, y_test = _data(rng, 2000)
    cp = ConformalClassifier(score="aps", random_state=0).fit(z_cal, y_cal)
    batch, one = cp.predict_sets(z_test, 0.1), _one_row_calls(cp, z_test, 0.1)
    se = math.sqrt(0.1 * 0.9 / 2000)
    assert abs(coverage(y_test, one) - coverage(y_test, batch)) < 3 * se
    assert abs(coverage(y_test, one) - 0.9) < 3 * se * math.sqrt(2)  # test rows + calibration draw


def test_int_seed_sets_are_reproducible_and_a_generator_still_draws():
    rng = np.random.default_rng(4)
    z, y = _data(rng, 1500)
    fit = lambda rs: ConformalClassifier(score="raps", k_reg=2, random_state=rs).fit(z[:1000], y[:1000])  # noqa: E731
    a, b = fit(7), fit(7)
    np.testing.assert_array_equal(a.calibration_scores_, b.calibration_scores_)
    np.testing.assert_array_equal(a.predict_sets(z[1000:], [0.1, 0.2]), b.predict_sets(z[1000:], [0.1, 0.2]))
    np.testing.assert_array_equal(_one_row_calls(a, z[1000:1100], 0.1), _one_row_calls(b, z[1000:1100], 0.1))
    # Equal rows in one call get their own uniforms (the position is hashed too), and the stream of
    # calibration (fit) is not the one of prediction.
    same = a._uniforms(a._probs(np.repeat(z[1000:1001], 50, axis=0), "X")[0], 1)
    assert len(np.unique(same)) == 50 and np.all((same >= 0) & (same < 1))
    p = a._probs(z[:5], "X")[0]
    assert not np.any(a._uniforms(p, 0) == a._uniforms(p, 1))
    # Logits and float64 probabilities computed from them elsewhere (a few ulp apart) give the same sets.
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert not np.array_equal(p, a._probs(z, "X")[0])  # the case: not bit-equal
    via_probs = ConformalClassifier(score="raps", k_reg=2, input="probs", random_state=7).fit(p[:1000], y[:1000])
    np.testing.assert_array_equal(_one_row_calls(via_probs, p[1000:1100], 0.1), _one_row_calls(a, z[1000:1100], 0.1))
    # A Generator keeps drawing from the caller's stream: two calls differ.
    g = fit(np.random.default_rng(7))
    assert not np.array_equal(g.predict_sets(z[1000:], 0.1), g.predict_sets(z[1000:], 0.1))


def test_coverage_range_has_no_upper_end_for_any_tied_scores():
    """Audit: LAC on probabilities from a 5-point grid, n=20, alpha=0.2: a draw without a tie at ranks
    k-1..k+1 reported (0.8, 0.848) while the mean coverage over draws was 0.891; non-randomised APS
    (a right top-1 row scores 0) reported (0.9, 0.905) though the docstring said None."""
    # sorted scores 0.2 x7, 0.4 x9, 0.6, 0.8 x3: no tie around rank k = ceil(21 * 0.8) = 17
    rows, labels = [], []
    for score, count in ((0.2, 7), (0.4, 9), (0.6, 1), (0.8, 3)):
        rows += [[score, 1 - score]] * count
        labels += [1] * count  # LAC score 1 - p_1 = score
    cp = ConformalClassifier(input="probs").fit(np.array(rows), np.array(labels))
    assert cp.coverage_range(0.2) == (pytest.approx(0.8), None)
    rng = np.random.default_rng(0)
    z, y = _data(rng, 200, c=5)
    for score in ("aps", "raps"):
        assert ConformalClassifier(score=score, randomized=False).fit(z, y).coverage_range(0.1) == (0.9, None)
        # randomised scores do not tie: the upper end stays
        assert ConformalClassifier(score=score, random_state=0).fit(z, y).coverage_range(0.1) == pytest.approx(
            (0.9, 0.9 + 1 / 201))
    # class-conditional: a tie inside one class's rows removes it, a value shared across classes does not
    z = rng.normal(size=(300, 3))
    y = np.repeat([0, 1, 2], 100)
    pr = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    pr[100] = pr[0][[1, 0, 2]]  # class 1's row 100 has p_1 = class 0's row 0 p_0: the same score, other class
    mondrian = ConformalClassifier(input="probs", class_conditional=True).fit(pr, y)
    assert mondrian.coverage_range(0.1) == pytest.approx((0.9, 0.9 + 1 / 101))
    pr[1] = pr[0]  # two equal scores in class 0
    assert ConformalClassifier(input="probs", class_conditional=True).fit(pr, y).coverage_range(0.1)[1] is None


def test_saving_a_stream_random_state_warns(tmp_path):
    """Audit: a Generator/RandomState random_state was saved as None silently (165 of 3600 loaded set
    cells differed)."""
    rng = np.random.default_rng(5)
    z, y = _data(rng, 300, c=4)
    for rs in (np.random.default_rng(1), np.random.RandomState(1)):
        cp = ConformalClassifier(score="aps", random_state=rs).fit(z, y)
        with pytest.warns(ConformalWarning, match=rf"{type(rs).__name__}.*cannot be saved.*int random_state"):
            cp.save(tmp_path / "c.npz")
        assert sk.load(tmp_path / "c.npz").random_state is None
    # Nothing to warn about where the sets do not draw, or with an int or None seed.
    for kw in (dict(score="lac", random_state=np.random.default_rng(1)),
               dict(score="aps", randomized=False, random_state=np.random.default_rng(1)),
               dict(score="aps", random_state=3), dict(score="aps", random_state=None)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ConformalClassifier(**kw).fit(z, y).save(tmp_path / "c.npz")


def test_an_empty_two_class_set_reads_as_cannot_tell():
    """The README and the demo's note read an empty two-class set as "we cannot tell"; the demo printed "none"."""
    from softmaxkit.cli._conformal import set_text

    assert set_text(np.array([False, False]), ["benign", "malignant"]) == "none: cannot tell"
    assert set_text(np.array([True, True]), ["benign", "malignant"]) == "both: cannot tell"
    assert set_text(np.array([False, False, False]), ["a", "b", "c"]) == "none"
