"""Output found misleading by audit BX: a yes/no model with a rare positive class (2-5%).

BX-1: ``calibrate --probs --method platt`` (a sigmoid on the probability itself) cannot give a class less than
      its floor, sigmoid(b), and lifted the third of rows of true risk under 0.5% to about 1% without a word.
BX-2: with a rare class nine rows in ten share the ECE's top bin [14/15, 1]; a risk order reversed there
      (AUC 0.50) read the same ECE as the true probabilities, "within what a perfectly calibrated model shows".
BX-3: ``evaluate --ci`` did not print its own ECE test's rejection when no class count was off.
BX-4: a class count that is off was told "a calibrator may fix it", where the default (temperature scaling)
      cannot move a class's level; the advice also stood under "the scores may be in the other class order";
      calibrate printed two "Accuracy ... is no better than" lines and said neither's side.
BX-5: ``evaluate`` on rows whose true class has probability 0 printed "log-loss inf [inf, inf]" and no count.
"""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import call, rare_truth, reversed_low_risks

LEAST_P = 1 / 201  # the least p-value of the ECE's tests (200 simulated worlds)


def _write(tmp_path, name: str, p_yes: np.ndarray, y: np.ndarray | None = None):
    scores = tmp_path / f"{name}.csv"
    np.savetxt(scores, np.column_stack([1 - p_yes, p_yes]), delimiter=",", header="p_no,p_yes", comments="")
    if y is None:
        return scores
    labels = tmp_path / f"{name}_labels.csv"
    labels.write_text("y\n" + "\n".join("yes" if v else "no" for v in y) + "\n")
    return scores, labels


# --------------------------------------------------------------------------- BX-1


def test_platt_on_probabilities_says_its_floor_lifts_the_small_probabilities(capsys, tmp_path):
    p, y = rare_truth(1000, seed=1)
    scores, labels = _write(tmp_path, "risk", p, y)
    rc, out, err = call(capsys, "calibrate", "--probs", scores, "--labels", labels, "--method", "platt",
                        "--out", tmp_path / "cal.npz", "--json")
    assert rc == 0, err
    result = json.loads(out)
    (caution,) = [w for w in result["warnings"] if "never gives class 'yes' less than" in w]
    floor = next(f for f in result["calibrator"]["probability_floors"] if f["class"] == "yes")
    # the floor is the map's own, sigmoid(b): no row gets less, and most of the small true risks lie under it
    assert floor["floor"] > 0.004 and floor["raised_twofold"] > 0.2, floor
    assert f"less than {floor['floor']:.3g}" in caution and f"on {floor['raised_twofold']:.0%} of the 1000" in caution
    assert "--logits" in caution and "log(p/(1-p))" in caution and "--method temperature or isotonic" in caution
    assert caution in err


def test_platt_on_log_odds_has_no_floor_to_warn_of(capsys, tmp_path):
    p, y = rare_truth(1000, seed=1)
    logits = tmp_path / "logodds.csv"
    np.savetxt(logits, np.column_stack([np.zeros_like(p), np.log(p / (1 - p))]), delimiter=",",
               header="logit_no,logit_yes", comments="")
    labels = _write(tmp_path, "risk", p, y)[1]
    rc, out, err = call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--method", "platt",
                        "--out", tmp_path / "cal.npz", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert not any("never gives class" in w for w in result["warnings"]), result["warnings"]
    assert "probability_floors" not in result["calibrator"]


def test_floor_caution_is_said_only_for_a_material_share():
    from softmaxkit.cli._evaluation import FLOOR_SHARE, fit_warnings

    params = {"n_parameters": 2, "probability_floors": [
        {"class": "no", "floor": 1e-4, "raised_twofold": 0.0},
        {"class": "yes", "floor": 0.0135, "raised_twofold": FLOOR_SHARE / 2}]}
    assert fit_warnings(params, change="Platt scaling", n_fit=2500, in_sample=False) == []
    params["probability_floors"][1]["raised_twofold"] = 0.32
    (line,) = fit_warnings(params, change="Platt scaling", n_fit=2500, in_sample=False)
    assert line.startswith("Platt scaling: fitted on the probability itself, sigmoid(a p + b), it never gives "
                           "class 'yes' less than 0.0135, which raises that class's probability more than twofold "
                           "on 32% of the 2500 fitting rows"), line


# --------------------------------------------------------------------------- BX-2


def test_evaluate_says_one_bin_holds_most_rows_and_gives_the_equal_mass_ece(capsys, tmp_path):
    q, y = reversed_low_risks(3000, seed=2)
    scores, labels = _write(tmp_path, "anti", q, y)
    rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels, "--ci", "--json")
    assert rc == 0, err
    m = json.loads(out)["metrics"]
    assert m["largest_bin_share"] > 0.8 and m["largest_bin"] == [14 / 15, 1.0], m
    # the equal-mass bins split the crowded one: the reversal is seen, where the uniform ECE stays small
    assert m["ece_quantile"] > m["ece_quantile_noise_threshold"] > 0, m
    rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels, "--ci")
    assert (f"{m['largest_bin_share']:.0%} of the rows fall in one confidence bin [0.933, 1]: the ECE cannot see "
            "differences within that bin; the equal-mass ECE (bins of equal row counts) is ") in out, out
    assert ": miscalibrated)." in out.split("equal-mass ECE")[1], out


def test_no_crowded_bin_line_where_the_rows_spread(capsys, tmp_path):
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 400)
    scores, labels = _write(tmp_path, "spread", p, (rng.random(400) < p).astype(int))
    rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels)
    assert rc == 0, err
    assert "one confidence bin" not in out, out


def _crowded_side(*, share=0.9, ece=0.0073, q=0.0256, q_limit=0.0105, q_p=LEAST_P):
    return {"n": 2500, "ece": ece, "ece_ci": [0.0, 0.0137], "ece_noise_floor": 0.0056, "ece_noise_threshold": 0.0096,
            "ece_p_calibrated": 0.2, "log_loss": 0.14, "accuracy": 0.97, "majority_rate": 0.974,
            "largest_bin_share": share, "largest_bin": [14 / 15, 1.0], "ece_quantile": q,
            "ece_quantile_noise_threshold": q_limit, "ece_quantile_p_calibrated": q_p}


def test_verdict_says_the_ece_is_blind_inside_a_crowded_bin():
    from softmaxkit.cli._evaluation import verdict

    before, after = _crowded_side(), _crowded_side(share=0.84, ece=0.0070, q=0.0080, q_p=0.3)
    text, _ = verdict(before, after, change="temperature scaling")
    # the equal-mass ECE finds what the top-label one does not: no "No miscalibration detected" over it
    assert text.startswith("The top-label ECE detects no miscalibration on 2500 rows: ECE 0.0073 before"), text
    assert ("90% of the rows before and 84% after fall in one confidence bin [0.933, 1]: the ECE cannot see "
            "differences within that bin. The equal-mass ECE (bins of equal row counts) is 0.0256 before (p <= 0.005: "
            "miscalibrated) and 0.0080 after (p = 0.3: within what a perfectly calibrated model shows).") in text, text
    # on the map's fitting rows the after side is not tested
    text, _ = verdict(before, after, change="temperature scaling", in_sample=True)
    assert "0.0080 after (not tested: measured on the rows the map was fitted on)" in text, text


def test_a_good_tone_does_not_stand_over_an_equal_mass_ece_that_rejects():
    from softmaxkit.cli._evaluation import verdict

    before = _crowded_side(ece=0.05, q=0.06)
    before.update(ece_ci=[0.04, 0.06], ece_noise_threshold=0.0096, ece_p_calibrated=LEAST_P)
    after = _crowded_side(ece=0.004)
    after.update(ece_ci=[0.0, 0.008])
    text, tone = verdict(before, after, change="temperature scaling")
    assert "lowered the calibration error" in text or "brought the calibration error" in text, text
    assert tone == "neutral", (tone, text)


def test_calibrate_says_it_in_the_verdict_only(capsys, tmp_path):
    q, y = reversed_low_risks(1200, seed=4)
    scores, labels = _write(tmp_path, "anti", q, y)
    rc, out, err = call(capsys, "calibrate", "--probs", scores, "--labels", labels, "--holdout", "0.5",
                        "--out", tmp_path / "cal.npz")
    assert rc == 0, err
    # once, in the verdict, for both sides (review R19: a line per side under the table, then the verdict again)
    assert out.count("of the rows") == 1 and "\nBefore: " not in out, out
    verdict_line = out.strip().splitlines()[-1]
    assert "the ECE cannot see differences within that bin. The equal-mass ECE" in verdict_line, verdict_line
    assert not verdict_line.startswith("No miscalibration detected"), verdict_line


# --------------------------------------------------------------------------- BX-3


def _side(ece, *, floor, threshold, p, count=None):
    return {"n": 4000, "ece": ece, "ece_ci": [ece / 2, ece * 1.5], "ece_noise_floor": floor,
            "ece_noise_threshold": threshold, "ece_p_calibrated": p, "accuracy": 0.97, "majority_rate": 0.9745,
            **({"class_count_test": count} if count is not None else {})}


OFF = {"rejected": True, "class": 1, "expected": 264.9, "observed": 102, "tests": 1, "p_adjusted": 1e-30}


def test_evaluate_prints_its_ece_test_rejection():
    from softmaxkit.cli._evaluation import ece_test_legend

    (line,) = ece_test_legend(_side(0.0147, floor=0.0044, threshold=0.0071, p=LEAST_P), ["no", "yes"])
    assert line == ("ECE 0.0147 is above its noise floor 0.0044 and the 0.0071 that perfectly calibrated models stay "
                    "under 95% of the time, p <= 0.005: miscalibrated."), line
    # within the noise: nothing; the count note already gives the test's words when both fire
    assert ece_test_legend(_side(0.005, floor=0.0044, threshold=0.0071, p=0.2), ["no", "yes"]) == []
    assert ece_test_legend(_side(0.0147, floor=0.0044, threshold=0.0071, p=LEAST_P, count=OFF), ["no", "yes"]) == []


def test_evaluate_ci_prints_the_line(capsys, tmp_path):
    rng = np.random.default_rng(5)
    z = rng.normal(0, 1.5, 600)
    y = (rng.random(600) < 1 / (1 + np.exp(-z))).astype(int)
    scores, labels = _write(tmp_path, "overconf", 1 / (1 + np.exp(-3 * z)), y)  # overconfident, both ways alike
    rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels, "--ci")
    assert rc == 0, err
    assert "predicted count" not in out, out
    assert "that perfectly calibrated models stay under 95% of the time, p <= 0.005: miscalibrated." in out, out


# --------------------------------------------------------------------------- BX-4


def test_count_advice_names_a_calibrator_that_can_move_a_class_level():
    from softmaxkit.cli._evaluation import count_legend

    (line,) = count_legend(_side(0.005, floor=0.0044, threshold=0.0071, p=0.2, count=OFF), ["no", "yes"])
    assert "--method platt, or vector; temperature scaling, the default, cannot) may fix it." in line, line


def test_no_calibrator_advice_under_the_other_class_order_line():
    from softmaxkit.cli._evaluation import chance_legend, count_legend

    swapped = {**_side(0.005, floor=0.0044, threshold=0.0071, p=0.2, count=OFF), "accuracy": 0.03}
    assert "other class order" in chance_legend(swapped)[0]
    (line,) = count_legend(swapped, ["no", "yes"])
    assert "calibrat" not in line and line.endswith("check the class order first (above)."), line


def test_calibrate_names_the_side_of_each_accuracy_line():
    from softmaxkit.cli._evaluation import chance_legends

    before, after = {"accuracy": 0.9700, "majority_rate": 0.9745, "n": 2000}, \
        {"accuracy": 0.9740, "majority_rate": 0.9745, "n": 2000}
    first, second = chance_legends(before, after, change="Platt scaling")
    assert first.startswith("Accuracy 0.9700 before is no better than"), first
    assert second.startswith("Accuracy 0.9740 after Platt scaling is no better than"), second
    (one,) = chance_legends(before, before, change="Platt scaling")
    assert one.startswith("Accuracy 0.9700 before and after Platt scaling is no better than"), one


# --------------------------------------------------------------------------- BX-5


def test_evaluate_counts_the_rows_given_probability_0_on_their_true_class(capsys, tmp_path):
    rng = np.random.default_rng(6)
    p = rng.random(300)
    y = (rng.random(300) < p).astype(int)
    p[:3] = np.where(y[:3] == 1, 0.0, 1.0)
    scores, labels = _write(tmp_path, "zeros", p, y)
    for extra in ((), ("--ci",)):
        rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels, *extra)
        assert rc == 0, err
        assert "Log-loss inf: 3 of 300 rows get probability 0 on their true class." in out, out
    rc, out, err = call(capsys, "evaluate", "--probs", scores, "--labels", labels, "--json")
    assert json.loads(out)["metrics"]["rows_lost"] == 3
