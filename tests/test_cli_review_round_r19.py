"""Output of the BX round that review R19 found noisy or self-contradicting.

R19-1: the Platt-on-probabilities floor caution fired for every class of every ordinary data set at K >= 3
       (digits: 10 lines), on loose K > 2 floors, and advised --logits for probabilities with exact zeros.
R19-2: without --holdout, the crowded-bin line under calibrate's table tested the after side on the fitting rows.
R19-3: the crowded-bin text said per side under the table and again in the verdict, fired on 3-row files, said
       "cannot see miscalibration among them" beside a test that rejected, and "no miscalibration detected"
       opened a verdict whose later sentence read "p = 0.01: miscalibrated".
R19-4: the count advice named Platt scaling for probabilities, where it has that floor.
"""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import call, reversed_low_risks

LEAST_P = 1 / 201


def _write(tmp_path, name, probs, y):
    scores = tmp_path / f"{name}.csv"
    k = probs.shape[1]
    np.savetxt(scores, probs, delimiter=",", header=",".join(f"p_{j}" for j in range(k)), comments="")
    labels = tmp_path / f"{name}_labels.csv"
    labels.write_text("y\n" + "\n".join(str(v) for v in y) + "\n")
    return scores, labels


def _three_classes(n, *, seed):
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal((n, 3))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return p, y


# --------------------------------------------------------------------------- R19-1


def test_no_floor_caution_for_more_than_two_classes(capsys, tmp_path):
    p, y = _three_classes(600, seed=0)
    scores, labels = _write(tmp_path, "three", p, y)
    rc, out, err = call(capsys, "calibrate", "--probs", scores, "--labels", labels, "--method", "platt",
                        "--holdout", "0.5", "--out", tmp_path / "cal.npz", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert not any("never gives class" in w for w in result["warnings"]), result["warnings"]
    assert "probability_floors" not in result["calibrator"], result["calibrator"]


def test_two_class_floor_caution_is_one_line_naming_each_class():
    from softmaxkit.cli._evaluation import fit_warnings

    params = {"n_parameters": 2, "probability_floors": [
        {"class": "no", "floor": 0.02, "raised_twofold": 0.4, "rows_at_zero": 0},
        {"class": "yes", "floor": 0.0135, "raised_twofold": 0.32, "rows_at_zero": 0}]}
    (line,) = fit_warnings(params, change="Platt scaling", n_fit=2500, in_sample=False)
    assert "class 'no' less than 0.02" in line and "nor class 'yes' less than 0.0135 (32% of them)" in line, line
    assert "--logits" in line, line


def test_floor_caution_does_not_advise_log_odds_of_exact_zeros(capsys, tmp_path):
    rng = np.random.default_rng(5)
    p = np.round(rng.beta(0.3, 3.0, 800), 2)  # a forest's votes: many exact 0s
    y = (rng.random(800) < p).astype(int)
    scores, labels = _write(tmp_path, "forest", np.column_stack([1 - p, p]), y)
    rc, out, err = call(capsys, "calibrate", "--probs", scores, "--labels", labels, "--method", "platt",
                        "--out", tmp_path / "cal.npz", "--json")
    assert rc == 0, err
    result = json.loads(out)
    (caution,) = [w for w in result["warnings"] if "never gives class" in w]
    zero = int((p == 0).sum() + (p == 1).sum())
    assert sum(f["rows_at_zero"] for f in result["calibrator"]["probability_floors"]) == zero > 0
    assert "log(p/(1-p))" not in caution and "pass log-odds" not in caution, caution
    assert caution.endswith(f"use --method temperature or isotonic (--logits cannot take the log-odds of the {zero} "
                            "fitting rows at probability exactly 0 or 1)"), caution


# --------------------------------------------------------------------------- R19-2/3


def test_in_sample_calibrate_does_not_test_the_after_side_under_its_table(capsys, tmp_path):
    q, y = reversed_low_risks(1200, seed=4)
    scores, labels = _write(tmp_path, "anti", np.column_stack([1 - q, q]), y)
    rc, out, err = call(capsys, "calibrate", "--probs", scores, "--labels", labels, "--out", tmp_path / "cal.npz")
    assert rc == 0, err
    # the after side's equal-mass ECE is untested on the fitting rows, in every line that gives it
    assert "After temperature scaling: " not in out, out
    assert out.count("equal-mass ECE") == 1 and "after (not tested: measured on the rows" in out, out


def test_crowded_bin_needs_thirty_rows():
    from softmaxkit.cli._evaluation import crowded_legend

    side = {"n": 3, "largest_bin_share": 2 / 3, "largest_bin": [14 / 15, 1.0], "ece_quantile": 0.1,
            "ece_quantile_noise_threshold": None, "ece_quantile_p_calibrated": None}
    assert crowded_legend({"": side}) == []
    side["n"] = 45  # 30 rows in the bin
    (line,) = crowded_legend({"": side})
    assert "67% of the rows fall in one confidence bin [0.933, 1]: the ECE cannot see differences within that " \
           "bin" in line, line


def test_demo_report_says_a_crowded_bin_once(capsys, tmp_path):
    from softmaxkit.cli._evaluation import Scored, comparison_section

    side = {"n": 2500, "accuracy": 0.97, "log_loss": 0.14, "brier": 0.05, "ece": 0.007, "ece_ci": [0.0, 0.01],
            "ece_noise_floor": 0.005, "ece_noise_threshold": 0.009, "ece_p_calibrated": 0.2,
            "largest_bin_share": 0.9, "largest_bin": [14 / 15, 1.0], "ece_quantile": 0.02,
            "ece_quantile_noise_threshold": 0.01, "ece_quantile_p_calibrated": LEAST_P}
    sides = [Scored(key=k, name=k, summary=side, png=None, row_loss=None) for k in ("before", "after")]
    section = comparison_section(sides, title="t", intro="i")
    assert "one confidence bin" not in repr(section), repr(section)
    one = comparison_section(sides[:1], title="t", intro="i")
    assert repr(one).count("one confidence bin") == 1, repr(one)


def _crowded_side(*, ece, q, q_p, p=0.2):
    return {"n": 1797, "ece": ece, "ece_ci": [0.0, 0.028], "ece_noise_floor": 0.0123,
            "ece_noise_threshold": 0.0178, "ece_p_calibrated": p, "log_loss": 0.25, "accuracy": 0.92,
            "majority_rate": 0.1, "largest_bin_share": 0.78, "largest_bin": [14 / 15, 1.0], "ece_quantile": q,
            "ece_quantile_noise_threshold": 0.0152, "ece_quantile_p_calibrated": q_p}


def test_in_sample_verdict_does_not_open_with_no_miscalibration_over_an_equal_mass_rejection():
    from softmaxkit.cli._evaluation import verdict

    before = _crowded_side(ece=0.0173, q=0.0193, q_p=0.01, p=0.065)
    after = _crowded_side(ece=0.0175, q=0.0144, q_p=0.26)
    text, _ = verdict(before, after, change="temperature scaling", in_sample=True)
    assert "the top-label ECE detects no miscalibration on 1797 rows" in text, text
    assert "no miscalibration detected" not in text.lower(), text
    assert "0.0193 before (p = 0.01: miscalibrated)" in text, text


def test_held_out_verdict_qualifies_indistinguishable_by_the_top_label_ece():
    from softmaxkit.cli._evaluation import verdict

    before = _crowded_side(ece=0.05, q=0.06, q_p=LEAST_P, p=LEAST_P)
    before["ece_ci"] = [0.04, 0.06]
    after = _crowded_side(ece=0.004, q=0.03, q_p=LEAST_P)
    after["ece_ci"] = [0.0, 0.008]
    text, tone = verdict(before, after, change="temperature scaling")
    assert "indistinguishable from perfectly calibrated by the top-label ECE" in text, text
    assert tone == "neutral"


# --------------------------------------------------------------------------- R19-4


def test_count_advice_on_probabilities_names_vector_or_isotonic(capsys, tmp_path):
    rng = np.random.default_rng(7)
    p = rng.uniform(0.0, 0.1, 3000)
    y = (rng.random(3000) < 3 * p).astype(int)  # the model says a third of the rate
    scores, labels = _write(tmp_path, "low", np.column_stack([1 - p, p]), y)
    rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels)
    assert rc == 0, err
    assert "--method vector on logits, or isotonic; temperature scaling, the default, cannot" in out, out
    assert "--method platt" not in out, out


def test_a_p_value_under_the_line_never_prints_as_the_line():
    """Review R20: 10/201 = 0.0498 printed "p = 0.05: miscalibrated"."""
    from softmaxkit.cli._evaluation import _p_text

    assert _p_text(10 / 201) == "p = 0.0498"
    assert _p_text(11 / 201) == "p = 0.055" and _p_text(0.34) == "p = 0.34"


def test_an_unsafe_reading_still_says_its_interval_holds_0():
    """Review R20: the isotonic --holdout verdict gave the CI [-0.0344, +0.0623] without saying it holds 0, as the
    other maps' sentences do."""
    from softmaxkit.cli._evaluation import _loss_reading

    change = {"ci95": [-0.0344, 0.0623], "reading": "unsafe", "n": 171}
    text = _loss_reading(0.0712, 0.0853, change, zero_classes=[1])
    assert "[-0.0344, +0.0623]), within the noise, but the calibrated map gives probability exactly 0" in text
    measured = _loss_reading(0.0712, 0.0853, {**change, "ci95": [0.004, 0.0623]}, zero_classes=[1])
    assert "within the noise" not in measured and "unsafe" in measured
