"""Audit round BK (and BJ-7, BH-F2): verdicts that read more than their rows support.

- BK-1: ``calibrate --holdout 0.3`` on 100 rows with 3% positives held out 30 rows with one positive; the
  paired change of log-loss read "worse: keep the raw model" (CI [+0.0066, +0.0443]) for a calibrator
  that cut the log-loss of 3,500 fresh rows from 0.1438 to 0.0884, while the table withheld each side's
  log-loss interval for the same reason ("1 row of class '1'; at least 5 needed").
- BK-2: "Already calibrated: ECE 0.2028 before ... (p = 0.055)" for SVC scores on 30 rows: a test that
  did not reject, read as a finding of calibration.
- BJ-7: overlapping ECE intervals, a before side the test rejected (p = 0.020) and an after side within the
  noise read "no measurable change ... indistinguishable from perfectly calibrated", never saying the
  before side was miscalibrated.
- BK-4: in-sample, the after side's ECE test ("indistinguishable from perfectly calibrated on 30 cases")
  for a map fitted on those very rows (matrix scaling, 110 parameters on 30 rows).
- BH-F2: a conformal predictor calibrated with no row of a class, used by ``evaluate``/``apply``: no word
  that rows of that class have no coverage guarantee (``warnings: []``).
"""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import call


def _binary_summary(n_positive: int, n: int) -> dict:
    """The part of a summary :func:`paired_loss_change` reads: the rows' class counts."""
    return {"n": n, "class_counts": [{"class": 0, "name": "0", "observed": n - n_positive},
                                     {"class": 1, "name": "1", "observed": n_positive}]}


def _scored(loss: np.ndarray, summary: dict):
    from softmaxkit.cli._evaluation import Scored

    return Scored(key="k", name="n", summary=summary, png=None, row_loss=loss)


def _one_positive_against(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """BK-1's shape: softening an accurate model costs each of the n - 1 negatives a little and helps the one
    positive (row 0), less than it helps a typical positive of new rows."""
    rng = np.random.default_rng(seed)
    before = rng.uniform(0.001, 0.01, n)
    before[0] = 2.0
    d = 0.03 + rng.normal(0.0, 0.003, n)
    d[0] = -0.05
    return before, before + d


def test_paired_change_is_not_measured_with_one_row_of_the_rare_class():
    """Before the fix this read "worse" ([+0.0095, +0.0359]) and "keep the raw model": the interval rests on
    one positive, which 36% of resamples miss."""
    from softmaxkit.cli._evaluation import NOT_MEASURABLE, fit_warnings, paired_loss_change, verdict

    before, after = _one_positive_against()
    summary = _binary_summary(1, len(before))
    change = paired_loss_change(_scored(before, summary), _scored(after, summary))
    assert change["reading"] == NOT_MEASURABLE, change
    assert change["withheld"].startswith("1 row of class '1'; at least 5 needed: the change on new rows"), change
    assert all(np.isnan(change["ci95"])) and "row_change_range" not in change
    side = {"n": 30, "ece": 0.01, "ece_ci": None, "ece_noise_floor": 0.02, "ece_noise_threshold": 0.04,
            "ece_p_calibrated": 0.7}
    text, tone = verdict({**side, "log_loss": float(before.mean())}, {**side, "log_loss": float(after.mean())},
                         change="temperature scaling", loss_change=change)
    assert "keep the raw model" not in text and "worse" not in text and tone != "warn", text
    assert "not measurable: 1 row of class '1'; at least 5 needed" in text, text
    assert not any("keep the raw model" in w for w in fit_warnings(
        {"n_parameters": 1}, change="temperature scaling", n_fit=70, in_sample=False, loss_change=change))


def test_paired_change_is_measured_once_the_rare_class_has_five_rows():
    """Guard (passes before the fix too): the same per-row changes with 5 positives counted keep their
    bootstrap reading; only the class counts decide the withholding."""
    from softmaxkit.cli._evaluation import NOT_MEASURABLE, paired_loss_change

    before, after = _one_positive_against(n=200)
    summary = _binary_summary(5, len(before))
    change = paired_loss_change(_scored(before, summary), _scored(after, summary))
    assert change["reading"] != NOT_MEASURABLE and "withheld" not in change, change


def test_paired_change_is_not_measured_when_a_class_of_several_has_no_row():
    """More than two classes: a class with no row withholds the change (the log-loss interval's rule)."""
    from softmaxkit.cli._evaluation import NOT_MEASURABLE, paired_loss_change

    rng = np.random.default_rng(1)
    before = rng.uniform(0.1, 1.0, 120)
    after = before - 0.05 + rng.normal(0.0, 0.01, 120)  # every row better: "better" before the fix
    summary = {"n": 120, "class_counts": [{"class": j, "name": name, "observed": count}
                                          for j, (name, count) in enumerate([("a", 60), ("b", 60), ("c", 0)])]}
    change = paired_loss_change(_scored(before, summary), _scored(after, summary))
    assert change["reading"] == NOT_MEASURABLE and change["withheld"].startswith("no row of class 'c'"), change


def test_calibrate_holdout_with_one_held_out_positive_does_not_read_the_change(capsys, tmp_path):
    """The audit's command on 100 rows with 3 positives (--holdout 0.3: one positive held out). Before the
    fix these rows read "better" [-0.0018, -0.0002]."""
    rng = np.random.default_rng(3)
    y = np.zeros(100, dtype=int)
    y[:3] = 1
    z = np.where(y == 1, rng.normal(3.0, 1.5, 100), rng.normal(-7.0, 1.5, 100))
    np.save(tmp_path / "z.npy", np.c_[np.zeros(100), z])
    np.save(tmp_path / "y.npy", y)
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                        "--holdout", "0.3", "--seed", "2", "--out", tmp_path / "cal.npz", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    change = metrics["log_loss_change"]
    assert change["reading"] == "not measurable" and change["ci95"] == [None, None], change
    assert change["withheld"].startswith("1 row of class '1'; at least 5 needed: the change on new rows"), change
    assert "not measurable: 1 row of class" in metrics["verdict"], metrics["verdict"]
    assert "(better" not in metrics["verdict"] and "(worse" not in metrics["verdict"]


def _side(ece, lo=None, hi=None, *, floor=0.02, threshold=0.05, p=0.3, n=500, loss=0.4):
    return {"n": n, "ece": ece, "ece_ci": None if lo is None else [lo, hi], "ece_noise_floor": floor,
            "ece_noise_threshold": threshold, "ece_p_calibrated": p, "log_loss": loss}


def test_a_test_that_does_not_reject_is_not_read_as_calibrated():
    """BK-2: both ECEs within the noise, no measured log-loss change: "No miscalibration detected on N rows"
    with the ECEs the test would have flagged, in the neutral tone (it read "Already calibrated", good)."""
    from softmaxkit.cli._evaluation import verdict

    before = _side(0.2028, floor=0.1370, threshold=0.2100, p=0.055, n=30, loss=0.27)
    after = _side(0.0588, floor=0.0500, threshold=0.0900, p=0.4, n=30, loss=0.13)
    text, tone = verdict(before, after, change="temperature scaling")
    assert "Already calibrated" not in text and tone == "neutral", (text, tone)
    assert text.startswith("No miscalibration detected on 30 rows: ECE 0.2028 before and 0.0588 after"), text
    assert "the test flags only an ECE above 0.2100 before and 0.0900 after" in text, text


def test_overlapping_intervals_still_say_a_before_side_the_test_rejected():
    """BJ-7 (224 held-out rows): before 0.0590 with p = 0.020, after 0.0299 with p = 0.31, intervals
    overlapping. The verdict said only "no measurable change ... indistinguishable from perfectly
    calibrated" after it."""
    from softmaxkit.cli._evaluation import verdict

    before = _side(0.0590, 0.030, 0.080, floor=0.030, threshold=0.0500, p=0.020, n=224)
    after = _side(0.0299, 0.010, 0.050, floor=0.025, threshold=0.0450, p=0.31, n=224, loss=0.39)
    text, _ = verdict(before, after, change="temperature scaling")
    assert "no measurable change on 224 cases" in text, text
    assert ("Before it the ECE was above its noise floor 0.0300 and the 0.0500 that perfectly calibrated models "
            "stay under 95% of the time, p = 0.02: miscalibrated. After it the ECE is") in text, text


def test_in_sample_after_side_is_not_tested():
    """BK-4: on the rows the map was fitted on, the after side's ECE is given and not read as
    "indistinguishable from perfectly calibrated"; the before side keeps its reading."""
    from softmaxkit.cli._evaluation import verdict

    before = _side(0.30, 0.2, 0.4, floor=0.10, threshold=0.15, p=0.005, n=30, loss=1.04)
    after = _side(0.02, 0.0, 0.1, floor=0.05, threshold=0.09, p=0.9, n=30, loss=0.82)
    text, tone = verdict(before, after, change="matrix scaling", in_sample=True)
    assert "indistinguishable" not in text and "within what a perfectly calibrated model" not in text, text
    assert "After it the ECE is 0.0200, not tested" in text and tone != "good", text
    assert text.startswith("Before matrix scaling the ECE is 0.3000") and ": miscalibrated." in text, text


def _conformal_without_class_two(tmp_path) -> tuple:
    """Logits of 3 classes; calibration labels without class 2, test labels with 20 rows of it; a conformal
    predictor saved by calibrate --conformal on the calibration rows."""
    rng = np.random.default_rng(0)
    y_cal = rng.integers(0, 2, 300)
    y_test = np.r_[rng.integers(0, 2, 100), np.full(20, 2)]
    for name, y in (("cal", y_cal), ("test", y_test)):
        z = rng.normal(0.0, 1.0, (len(y), 3))
        z[np.arange(len(y)), y] += 2.0
        np.save(tmp_path / f"{name}_z.npy", z)
        np.save(tmp_path / f"{name}_y.npy", y)
    return tmp_path / "cal.npz", tmp_path / "cal.conformal.npz"


def _calibrate_with_sets(capsys, tmp_path, cal) -> None:
    """``calibrate`` on the calibration files of :func:`_conformal_without_class_two`, with 90% sets."""
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "cal_z.npy", "--labels", tmp_path / "cal_y.npy",
                      "--out", cal, "--conformal", "0.1", "--quiet")
    assert rc == 0, err


def _evaluate_sets(capsys, tmp_path, conformal, *extra) -> str:
    """``evaluate`` of the test files with the 90% sets of ``conformal``: its stdout."""
    rc, out, err = call(capsys, "evaluate", "--logits", tmp_path / "test_z.npy", "--labels", tmp_path / "test_y.npy",
                        "--conformal", conformal, "--sets", "0.1", *extra)
    assert rc == 0, err
    return out


def test_evaluate_with_a_predictor_calibrated_without_a_class_warns(capsys, tmp_path):
    """BH-F2: the table printed "guaranteed (mean)" over 20 rows of a class no calibration row held,
    with ``warnings: []``."""
    cal, conformal = _conformal_without_class_two(tmp_path)
    _calibrate_with_sets(capsys, tmp_path, cal)
    metrics = json.loads(_evaluate_sets(capsys, tmp_path, conformal, "--json"))
    said = [w for w in metrics["warnings"] if w.startswith(f"--conformal {conformal}: class 2 has no row among")]
    assert said and "says nothing about new rows of it" in said[0], metrics["warnings"]
    assert metrics["conformal"]["classes_without_calibration_rows"] == {"2": 20}
    out = _evaluate_sets(capsys, tmp_path, conformal)
    assert "Class '2' had no calibration row" in out and "its 20 rows here" in out, out


def test_apply_with_a_predictor_calibrated_without_a_class_warns(capsys, tmp_path):
    """BH-F2: ``apply --conformal --sets`` (and ``predict``, through the same loading) was silent too."""
    cal, conformal = _conformal_without_class_two(tmp_path)
    _calibrate_with_sets(capsys, tmp_path, cal)
    rc, out, err = call(capsys, "apply", cal, "--logits", tmp_path / "test_z.npy", "--conformal", conformal,
                        "--sets", "0.1", "--out", tmp_path / "out.csv", "--json")
    assert rc == 0, err
    assert any("class 2 has no row among the 300 calibration rows" in w for w in json.loads(out)["warnings"]), out


def test_a_predictor_with_every_class_calibrated_says_nothing(capsys, tmp_path):
    """Guard (passes before the fix too): every class calibrated, no such warning or line."""
    cal, conformal = _conformal_without_class_two(tmp_path)
    y = np.load(tmp_path / "cal_y.npy")
    y[:10] = 2
    np.save(tmp_path / "cal_y.npy", y)
    _calibrate_with_sets(capsys, tmp_path, cal)
    metrics = json.loads(_evaluate_sets(capsys, tmp_path, conformal, "--json"))
    assert not any("has no row among" in w for w in metrics["warnings"]), metrics["warnings"]
    assert not metrics["conformal"].get("classes_without_calibration_rows")


def test_a_rare_class_withholds_the_change_whatever_the_misranked_rows():
    """Review R12 then R14: lifting the rule where 5 misranked rows of any class are held out read R12's
    4 positives of 400 (24 misranked) "better", correctly, but a model over-predicting a 1% class, its
    misranked rows mostly of the common class, "worse: keep the raw model" in 8 of 12 calls for a map
    that helped on 100,000 fresh rows. The class counts alone decide: a withheld correct reading is no
    wrong answer."""
    from softmaxkit.cli._evaluation import paired_loss_change

    rng = np.random.default_rng(0)
    before = rng.uniform(0.001, 0.05, 400)
    before[:24] = rng.uniform(3.0, 6.0, 24)
    d = rng.normal(0.0, 0.005, 400)
    d[:24] = -rng.uniform(1.0, 4.0, 24)
    summary = {**_binary_summary(4, 400), "accuracy": 1.0 - 24 / 400}
    change = paired_loss_change(_scored(before, summary), _scored(before + d, summary))
    assert change["reading"] == "not measurable", change
    assert change["withheld"].startswith("4 rows of class '1'; at least 5 needed"), change


def test_a_class_with_no_row_is_not_said_to_carry_the_change():
    """Review R12: with no row of a class, the reason said "that class's few rows carry most of the change";
    it now says what is not measured, and not the log-loss's own caveat (the score leaving the class out)."""
    from softmaxkit.cli._evaluation import _loss_evidence, paired_loss_change

    rng = np.random.default_rng(1)
    before = rng.uniform(0.1, 1.0, 200)
    after = before - 0.02 + rng.normal(0.0, 0.01, 200)
    counts = [{"class": k, "name": f"c{k}", "observed": o} for k, o in enumerate([100, 100, 0])]
    summary = {"n": 200, "accuracy": 0.99, "class_counts": counts}
    change = paired_loss_change(_scored(before, summary), _scored(after, summary))
    assert change["withheld"].startswith("no row of class 'c2'; at least 1 needed: the change on new rows"), change
    evidence = _loss_evidence(change)
    assert "carry most" not in evidence and "score leaves" not in evidence, evidence


def test_a_side_within_the_noise_names_its_own_threshold():
    """Review R12: the demo read "Before it the ECE was above ... the 0.0299 that perfectly calibrated models
    stay under 95% of the time ... After it the ECE is 0.0299 ... within what a perfectly calibrated model
    shows": each side has its own threshold (0.0380 after), which is now given."""
    from softmaxkit.cli._evaluation import _noise_words

    side = {"ece": 0.0299, "ece_noise_floor": 0.0272, "ece_noise_threshold": 0.0380, "ece_p_calibrated": 0.24}
    assert _noise_words(side) == ("above its noise floor 0.0272 but within what a perfectly calibrated model shows "
                                  "(p = 0.24; its threshold 0.0380)")
