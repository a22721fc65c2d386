"""Round CN: a Platt map that reverses the model's ranking is said (audit CN), and a row of sample
weight 0 counts for nothing in the scalings, a true class of -inf included (helper FO: beta = 1.0
returned with only numpy's "invalid value in dot")."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.calibration import (
    CalibrationWarning,
    IsotonicCalibration,
    MatrixScaling,
    PlattScaling,
    TemperatureScaling,
    VectorScaling,
)
from softmaxkit.data import write_columns


def _informative(n: int, c: int, *, seed: int, signal: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    z = rng.normal(size=(n, c)) * 1.5
    z[np.arange(n), y] += signal
    return z, y


def _reversal_warnings(record) -> list[str]:
    return [str(r.message) for r in record if "reverses the model's ranking" in str(r.message)]


# ---- item 1: a negative Platt slope


def test_platt_binary_margin_of_the_other_class_warns_once():
    """The single margin scores class 0, not class 1: the slope comes out negative, said once, the fit unchanged."""
    z, y = _informative(600, 2, seed=3, signal=1.0)
    swapped = z[:, ::-1]
    with pytest.warns(CalibrationWarning) as record:
        cal = PlattScaling().fit(swapped, y)
    said = _reversal_warnings(record)
    assert len(said) == 1
    assert cal.coef_[0] < 0 and f"{cal.coef_[0]:.4g}" in said[0]
    assert "fix the input, not the calibrator" in said[0] and "class 0, not class 1" in said[0]
    # the fitted numbers are those of the fit itself: the warning changes nothing
    plain = PlattScaling().fit(z, y)
    np.testing.assert_allclose(cal.coef_, -plain.coef_, rtol=1e-9)
    np.testing.assert_allclose(cal.intercept_, plain.intercept_, rtol=1e-9, atol=1e-12)


def test_platt_multiclass_names_the_swapped_classes_and_their_slopes():
    z, y = _informative(800, 4, seed=5)
    cal = PlattScaling()
    cal.class_names_ = ["ant", "bee", "cat", "dog"]  # as the command line sets them
    with pytest.warns(CalibrationWarning) as record:
        cal.fit(z[:, [0, 2, 1, 3]], y)  # columns of bee and cat exchanged
    said = _reversal_warnings(record)
    assert len(said) == 1
    assert cal.coef_[1] < 0 and cal.coef_[2] < 0 and cal.coef_[0] > 0 and cal.coef_[3] > 0
    assert f"class 'bee' ({cal.coef_[1]:.4g}) and class 'cat' ({cal.coef_[2]:.4g})" in said[0]
    assert "'ant'" not in said[0] and "'dog'" not in said[0]


@pytest.mark.parametrize("c", [2, 3])
def test_platt_says_nothing_for_a_model_ranking_the_right_way_or_no_better_than_chance(c):
    """A slope a little below 0 by chance (scores that carry nothing) is no reversal: never said."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, c, 200)
        noise = rng.normal(size=(200, c))
        informative, y2 = _informative(300, c, seed=seed)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            PlattScaling().fit(noise, y)
            PlattScaling(input="probs").fit(np.exp(informative) / np.exp(informative).sum(1, keepdims=True), y2)
        assert not _reversal_warnings(record), seed


def test_platt_on_probabilities_in_the_other_order_warns():
    z, y = _informative(500, 3, seed=8)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    with pytest.warns(CalibrationWarning, match="reverses the model's ranking"):
        PlattScaling(input="probs").fit(p[:, [2, 1, 0]], y)


def test_calibrate_command_says_the_reversal_in_text_and_json(capsys, tmp_path):
    """Audit CN's reproducer: a weak model's log-odds of class 0 as one unnamed column."""
    z, y = _informative(600, 2, seed=7, signal=0.8)
    scores = write_columns(tmp_path / "s.csv", {"margin": z[:, 0] - z[:, 1]})  # class 0's log-odds
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    args = ["calibrate", "--logits", str(scores), "--labels", str(labels), "--method", "platt", "--holdout", "0.3"]
    rc, out, err = call(capsys, *args, "--out", str(tmp_path / "c.npz"), "--json")
    assert rc == 0, err
    said = [w for w in json.loads(out)["warnings"] if "reverses the model's ranking" in w]
    assert len(said) == 1 and said[0].startswith("PlattScaling: the fitted slope is -")
    rc, out, err = call(capsys, *args, "--out", str(tmp_path / "c2.npz"))
    assert rc == 0, err
    assert "softmaxkit: warning: PlattScaling: the fitted slope is -" in err


# ---- item 2: rows of weight 0 holding -inf


def _with_dead_rows(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z, y`` with two rows of weight 0 inserted: a true class of -inf, and another -inf."""
    c = z.shape[1]
    dead = np.zeros((2, c))
    dead[0, 0] = -np.inf  # its true class (0) has probability 0
    dead[1, c - 1] = -np.inf
    zz = np.vstack([z[:10], dead, z[10:]])
    yy = np.concatenate([y[:10], [0, 0], y[10:]])
    w = np.ones(len(yy))
    w[10:12] = 0.0
    return zz, yy, w


@pytest.mark.parametrize("kwargs", [{}, {"prior_scale": None}, {"prior_scale": None, "pseudo_count": 1.0}])
def test_temperature_row_of_weight_zero_with_true_class_neg_inf_does_not_count(kwargs):
    z, y = _informative(300, 4, seed=1)
    zz, yy, w = _with_dead_rows(z, y)
    oracle = TemperatureScaling(**kwargs).fit(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "invalid value in dot" was all that was said
        cal = TemperatureScaling(**kwargs).fit(zz, yy, sample_weight=w)
    assert oracle.beta_ != 1.0
    np.testing.assert_allclose(cal.beta_, oracle.beta_, rtol=1e-10)
    np.testing.assert_allclose(cal.nll_, oracle.nll_, rtol=1e-10)


def test_temperature_row_of_positive_weight_with_true_class_neg_inf_is_still_refused():
    z, y = _informative(50, 3, seed=2)
    zz, yy, w = _with_dead_rows(z, y)
    w[10] = 0.5
    with pytest.raises(ValueError, match="row 10 gives probability 0 to its true class 0"):
        TemperatureScaling().fit(zz, yy, sample_weight=w)


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
def test_affine_scalings_leave_rows_of_weight_zero_with_neg_inf_out(cls):
    z, y = _informative(300, 3, seed=4)
    zz, yy, w = _with_dead_rows(z, y)
    oracle = cls().fit(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        cal = cls().fit(zz, yy, sample_weight=w)
    np.testing.assert_allclose(cal.coef_, oracle.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cal.intercept_, oracle.intercept_, rtol=1e-10, atol=1e-12)
    w[11] = 1.0  # a row that counts: still refused, by its place in the input
    with pytest.raises(ValueError, match=r"row 11, class 2"):
        cls().fit(zz, yy, sample_weight=w)


@pytest.mark.parametrize("cls", [PlattScaling, IsotonicCalibration])
def test_one_vs_rest_refuse_neg_inf_whatever_its_weight_as_they_do_when_mapping(cls):
    """Their maps read finite log-odds: -inf is refused at fit (weight 0 or not) as at predict."""
    z, y = _informative(100, 3, seed=6)
    zz, yy, w = _with_dead_rows(z, y)
    with pytest.raises(ValueError, match=r"needs finite logits; logits has -inf at position \(10, 0\)"):
        cls().fit(zz, yy, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # isotonic's ranges of probability 0: not the point
        fitted = cls().fit(z, y)
    with pytest.raises(ValueError, match=r"needs finite logits"):
        fitted.predict_proba(zz)


def test_reversal_warning_holds_its_level_under_balanced_weights():
    """Review R27: with weights that are not repetitions (balanced class weights, importance weights of
    mean 1) the frequency-weight standard error was too small, and pure-noise scores were called
    reversed in 15-26% of fits. The sandwich standard error keeps them near the stated level."""
    from sklearn.utils.class_weight import compute_sample_weight

    warned = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        y = rng.choice(3, 300, p=[0.94, 0.03, 0.03])
        z = rng.normal(size=(300, 3))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            PlattScaling().fit(z, y, sample_weight=compute_sample_weight("balanced", y))
        warned += any("below 0" in str(w.message) for w in caught)
    assert warned <= 2, warned


def test_platt_ignores_zero_weight_rows_whatever_their_scores():
    """Review R27: scores of 1e300 in rows of weight 0 overflowed a product with the weight into NaN and
    moved the fit by 0.72; such rows now drop out before the fit."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 3)) * 2
    y = rng.integers(0, 3, 200)
    w = np.ones(200)
    w[:10] = 0.0
    far = z.copy()
    far[:10] = rng.choice([-1e300, 1e300], size=(10, 3))
    subset = PlattScaling().fit(z[10:], y[10:])
    weighted = PlattScaling().fit(far, y, sample_weight=w)
    np.testing.assert_allclose(weighted.predict_proba(z[10:]), subset.predict_proba(z[10:]), atol=1e-12)
