"""Calibrating on imbalanced yes/no sets: the held-out split keeps every class, and a class missing from
the rows a map is fitted on or measured on is said, never read as a gain (audit G)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_helpers import call

pytest.importorskip("sklearn")

N = 300
WARN = "softmaxkit: warning: "


def _few_positives(tmp_path, positives: int, *, seed: int = 0):
    """A one-logit yes/no file of ``N`` rows, ``positives`` of them 'yes' (their logit raised by 2)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(N, dtype=int)
    y[rng.choice(N, positives, replace=False)] = 1
    margin = rng.normal(size=N) - 3.0 + 2.0 * y
    (tmp_path / "z.csv").write_text("logit_yes\n" + "".join(f"{m:.6f}\n" for m in margin))
    (tmp_path / "y.csv").write_text("label\n" + "".join(("yes" if v else "no") + "\n" for v in y))
    return y


def _calibrate(capsys, d, seed: int, method: str = "temperature"):
    return call(capsys, "calibrate", "--logits", d / "z.csv", "--labels", d / "y.csv", "--classes", "no,yes",
                "--method", method, "--holdout", "0.5", "--seed", str(seed), "--out", d / "c.npz", "--json")


# --------------------------------------------------------------------------- the split


@pytest.mark.parametrize("seed", [0, 8])
def test_calibrate_holdout_puts_the_few_positives_on_both_sides(capsys, tmp_path, seed):
    """Audit: 3 'yes' of 300, --holdout 0.5, split unstratified. Here seed 8 held out 150 'no' rows only (read
    "better": any map pulling p(yes) toward 0 looks better there); seed 0 left no 'yes' to fit ("every label is
    'no'")."""
    _few_positives(tmp_path, 3)
    rc, out, err = _calibrate(capsys, tmp_path, seed)
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["n_evaluated"] == 150
    assert metrics["metrics"]["uncalibrated"]["majority_rate"] < 1.0  # some held-out row is 'yes'
    assert not any("no held-out row" in w for w in metrics["warnings"])


def test_holdout_rows_keeps_every_class_of_two_or_more_rows_on_both_sides():
    from softmaxkit.cli._common import holdout_rows

    y = np.array([0] * 296 + [1] * 2 + [2] * 2)
    for fraction in (0.1, 0.5, 0.9):  # 0.1 and 0.9: stratified rounding alone gives a 2-row class to one side
        for seed in range(30):
            fit, held = holdout_rows(y, fraction, seed)
            assert sorted([*fit, *held]) == list(range(len(y)))
            assert len(held) == round(fraction * len(y))
            assert set(y[fit]) == set(y[held]) == {0, 1, 2}, (fraction, seed)
            assert list(fit) == sorted(fit) and list(held) == sorted(held)


def test_fit_split_is_the_shared_one_and_keeps_scikit_learns_split_when_it_holds_every_class():
    """fit's seeds give the split they gave before whenever scikit-learn's stratified split already has every
    class on both sides; calibrate's is the same split, sorted."""
    from sklearn.model_selection import train_test_split

    from softmaxkit.cli._common import holdout_rows
    from softmaxkit.cli.fit import _split

    y = np.repeat(["a", "b", "c"], [50, 30, 20])
    for seed in range(5):
        got = _split(y, 0.25, seed)
        want = train_test_split(np.arange(len(y)), test_size=25, stratify=y, random_state=seed)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        for g, h in zip(got, holdout_rows(y, 0.25, seed)):
            np.testing.assert_array_equal(np.sort(g), h)


def test_calibrate_holdout_says_a_class_missing_from_the_held_out_rows_and_reads_no_gain(capsys, tmp_path):
    """One 'yes' in 300 rows: it can be on one side only; it is fitted on, so the held-out rows are all 'no'.
    Before, seed 0 fitted on it and read the all-'no' held-out rows; now a warning names the class and nothing
    is read."""
    _few_positives(tmp_path, 1)
    for method in ("temperature", "platt"):
        rc, out, err = _calibrate(capsys, tmp_path, 0, method)
        assert rc == 0, err
        metrics = json.loads(out)
        said = [w for w in metrics["warnings"] if "no held-out row" in w]
        assert len(said) == 1 and "class 'yes'" in said[0] and "1 row" in said[0], metrics["warnings"]
        assert WARN + said[0] in err
        change = metrics["log_loss_change"]
        assert change["reading"] not in ("better", "worse") and change["missing_classes"] == ["yes"]
        assert metrics["verdict"].startswith("Not measured: no held-out row is of class 'yes'"), metrics["verdict"]
        assert "(better" not in metrics["verdict"] and "made it worse" not in metrics["verdict"]


def test_the_missing_class_warning_names_every_class_with_its_rows():
    from softmaxkit.cli.calibrate import _unmeasured_classes, _unmeasured_warning

    labels = np.array([0] * 10 + [1] + [2])
    fit, held = np.arange(12)[::2].tolist() + [11], np.arange(12)[1::2][:-1]
    unmeasured = _unmeasured_classes(labels, np.array(fit), held, classes=["a", "b", "c"])
    assert unmeasured == {"b": 1, "c": 1}
    line = _unmeasured_warning(unmeasured, n_held=len(held))
    assert line.startswith("--holdout: no held-out row is of classes 'b' and 'c' ('b' has 1 row, 'c' has 1 row, "
                           "fitted on), so the 5 held-out rows cannot show what the map does to them"), line
    assert _unmeasured_classes(labels, np.arange(12), np.arange(12), classes=None) == {}


# --------------------------------------------------------------------------- the library


def test_temperature_scaling_warns_when_a_class_has_no_row():
    """Audit: 300 rows, all negative: T = 0.33 fitted silently, and the prevalence was then under-stated 3x."""
    from softmaxkit.calibration import CalibrationWarning, TemperatureScaling

    rng = np.random.default_rng(1)
    z = np.column_stack([np.zeros(N), rng.normal(size=N) - 3.0])
    with pytest.warns(CalibrationWarning, match=r"^TemperatureScaling: class 1 has no row among the 300 "
                      r"calibration rows; "):
        TemperatureScaling().fit(z, np.zeros(N, dtype=int))
    z3 = rng.normal(size=(N, 4))
    with pytest.warns(CalibrationWarning, match=r"^TemperatureScaling: classes 1 and 3 have no row among the 300 "):
        TemperatureScaling().fit(z3, np.repeat([0, 2], N // 2))
    y = np.repeat([0, 1], N // 2)
    informative = np.column_stack([np.zeros(N), rng.normal(size=N) + 2.0 * y - 1.0])
    w = np.ones(N)
    w[y == 1] = 0.0  # rows of weight 0 are no rows
    with pytest.warns(CalibrationWarning, match=r"class 1 has no row among the 300 calibration rows \(of positive "
                      r"weight\)"):
        TemperatureScaling().fit(informative, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        TemperatureScaling().fit(informative, y)  # every class present: nothing said


def test_vector_scaling_says_every_missing_class_in_the_same_words():
    from softmaxkit.calibration import CalibrationWarning, VectorScaling

    z = np.random.default_rng(2).normal(size=(90, 4))
    with pytest.warns(CalibrationWarning, match=r"^VectorScaling: classes 1 and 3 have no row among the 90 "
                      r"calibration rows; their scales and biases are set by the priors alone"):
        VectorScaling().fit(z, np.repeat([0, 2], 45))
