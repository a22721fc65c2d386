"""A calibrator that changes rows' predicted classes says so when accuracy falls (review R20).

``calibrate --method isotonic --holdout 0.5`` on a breast-cancer model's scores took accuracy from 0.9766 to
0.9532 on the held-out rows; the table showed it, the verdict (what users act on) read only the ECE and the
log-loss. Isotonic, Platt, vector and matrix maps can change a row's argmax; temperature scaling cannot. The
comparison is paired: the exact McNemar test on the rows whose predicted class turned wrong or right
(:func:`softmaxkit.cli._evaluation.paired_accuracy_change`), in the verdict and in ``--json``/metrics.json as
``accuracy_change``.

The CLI data: two-class logits ``[0, z]`` whose positive rate is not monotone in ``z`` (half the rows at
``z < -5`` are positive), so Platt's log-loss-optimal sigmoid moves the 0.5 threshold into the rows with ``z`` in
[0, 5], 95% of them positive: many right predictions turn wrong, while the log-loss and the ECE improve.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from cli_helpers import call
from softmaxkit.data import write_columns


def _group(low: float, high: float, n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` evenly spaced scores in [low, high] and labels positive at ``rate``, spread evenly (no draws)."""
    return np.linspace(low, high, n), (np.arange(n) * rate) % 1 < rate


def _threshold_moving_scores() -> tuple[np.ndarray, np.ndarray]:
    """(700, 2) logits ``[0, z]`` and labels: z in [-10, -5] half positive, [-5, 0] 5%, [0, 5] 95%."""
    parts = [_group(-10, -5, 300, 0.5), _group(-5, 0, 200, 0.05), _group(0, 5, 200, 0.95)]
    z = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return np.column_stack([np.zeros_like(z), z]), y


@pytest.fixture
def threshold_moving(tmp_path):
    z, y = _threshold_moving_scores()
    logits, labels = tmp_path / "logits.csv", tmp_path / "labels.csv"
    write_columns(logits, {"no": z[:, 0], "yes": z[:, 1]})
    write_columns(labels, {"label": y})
    return logits, labels, z, y


def _oracle(method: str, z: np.ndarray, y: np.ndarray, *, holdout: float | None) -> tuple[int, int, float, float]:
    """Rows turned wrong and right by the ``method`` map on calibrate's measured rows, and both accuracies:
    the map fitted through the library on calibrate's own split, argmax compared row by row."""
    from softmaxkit.cli._adapters import calibrated_logits, fit_calibrator
    from softmaxkit.cli._common import holdout_rows

    fit_rows = eval_rows = np.arange(len(y))
    if holdout is not None:
        fit_rows, eval_rows = holdout_rows(y, holdout, 0)
    calibrator = fit_calibrator(method, z[fit_rows], y[fit_rows])
    raw, mapped = z[eval_rows], calibrated_logits(calibrator, z[eval_rows])
    before = np.argmax(raw, axis=1) == y[eval_rows]
    after = np.argmax(mapped, axis=1) == y[eval_rows]
    # rows whose true class ties another at the top on either side are left out of the counts (review R22; a tie
    # of wrong classes only is wrong either way, review R24)
    tied = np.zeros(len(eval_rows), dtype=bool)
    for scores in (raw, mapped):
        at_top = scores == scores.max(axis=1, keepdims=True)
        tied |= (np.count_nonzero(at_top, axis=1) > 1) & at_top[np.arange(len(eval_rows)), y[eval_rows]]
    counted = ~tied
    return (int(np.sum(before & ~after & counted)), int(np.sum(after & ~before & counted)), float(before.mean()),
            float(after.mean()))


def _calibrate(capsys, logits, labels, tmp_path, *options) -> dict:
    rc, out, _ = call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", tmp_path / "cal.npz",
                      "--json", *options)
    assert rc == 0
    return json.loads(out)


def test_calibrate_leads_with_a_held_out_accuracy_fall(capsys, tmp_path, threshold_moving):
    """Platt scaling lowers the log-loss and the ECE, and turns dozens of right predictions wrong: the verdict
    opens with the fall, its counts and the exact McNemar p, and what to do; --json holds the comparison."""
    logits, labels, z, y = threshold_moving
    result = _calibrate(capsys, logits, labels, tmp_path, "--method", "platt", "--holdout", "0.5")
    wrong, right, acc_before, acc_after = _oracle("platt", z, y, holdout=0.5)
    assert wrong > 10 * max(right, 1)  # the design: the threshold moved into the 95%-positive rows
    change = result["accuracy_change"]
    p = binomtest(wrong, wrong + right, 0.5).pvalue
    assert (change["turned_wrong"], change["turned_right"], change["n"]) == (wrong, right, len(y) // 2)
    assert change["p_value"] == pytest.approx(p, rel=1e-9)
    assert change["reading"] == "worse" and change["in_sample"] is False
    assert change["before"] == pytest.approx(acc_before, abs=1e-12)
    assert change["after"] == pytest.approx(acc_after, abs=1e-12)
    # the accuracies the table shows, from the same per-row predictions
    assert change["before"] == pytest.approx(result["metrics"]["uncalibrated"]["accuracy"], abs=1e-12)
    assert change["after"] == pytest.approx(result["metrics"]["calibrated"]["accuracy"], abs=1e-12)
    assert result["log_loss_change"]["reading"] == "better"  # what the verdict said alone before
    text = result["verdict"]
    assert text.startswith(f"Accuracy fell from {acc_before:.4f} to {acc_after:.4f}: {wrong} rows' predicted class "
                           f"turned wrong and {right} turned right (exact McNemar p = {p:.2g}). Keep the raw model's "
                           "class predictions"), text
    assert "or use temperature scaling, which never changes a row's predicted class." in text


def test_a_fall_on_the_fitting_rows_is_said_to_be_theirs(capsys, tmp_path, threshold_moving):
    """Without --holdout the rows measured are the map's fitting rows: the fall is "even on the rows it was fitted
    on", read "lower" in --json, as a log-loss change there is read lower or higher."""
    logits, labels, z, y = threshold_moving
    result = _calibrate(capsys, logits, labels, tmp_path, "--method", "platt")
    wrong, right, acc_before, acc_after = _oracle("platt", z, y, holdout=None)
    change = result["accuracy_change"]
    assert (change["turned_wrong"], change["turned_right"]) == (wrong, right)
    assert change["reading"] == "lower" and change["in_sample"] is True
    assert result["verdict"].startswith(f"Accuracy fell from {acc_before:.4f} to {acc_after:.4f} even on the rows "
                                        f"it was fitted on: {wrong} rows' predicted class turned wrong")
    assert result["verdict"].endswith("These numbers are measured on the rows it was fitted on, not a test; use "
                                      "--holdout.")


def test_temperature_scaling_changes_no_predicted_class(capsys, tmp_path, threshold_moving):
    """Guard: one positive scale of every logit keeps each row's argmax, so nothing is said of accuracy."""
    logits, labels, _, _ = threshold_moving
    result = _calibrate(capsys, logits, labels, tmp_path, "--method", "temperature", "--holdout", "0.5")
    change = result["accuracy_change"]
    assert (change["turned_wrong"], change["turned_right"], change["p_value"]) == (0, 0, 1.0)
    assert change["reading"] == "unchanged"
    assert "Accuracy fell" not in result["verdict"]


def test_a_fall_is_said_where_a_class_has_no_held_out_row(capsys, tmp_path):
    """A class whose one row was fitted on leaves the log-loss change unread ("Not measured"); the rows whose
    predicted class turned wrong are wrong whatever that class does, so the fall is still said."""
    z, y = _threshold_moving_scores()
    z3 = np.column_stack([z, np.full(len(y), -20.0)])
    z3[0, 2], y3 = 5.0, np.where(np.arange(len(y)) == 0, 2, y)
    logits, labels = tmp_path / "logits3.csv", tmp_path / "labels3.csv"
    write_columns(logits, {"no": z3[:, 0], "yes": z3[:, 1], "rare": z3[:, 2]})
    write_columns(labels, {"label": y3})
    result = _calibrate(capsys, logits, labels, tmp_path, "--method", "platt", "--holdout", "0.5")
    change = result["accuracy_change"]
    assert result["log_loss_change"]["reading"] == "a class has no held-out row"
    assert change["reading"] == "worse"
    text = result["verdict"]
    assert text.startswith("Not measured: no held-out row is of class 2"), text
    wrong, right = change["turned_wrong"], change["turned_right"]
    assert text.endswith(f"Accuracy fell from {change['before']:.4f} to {change['after']:.4f}: {wrong} rows' "
                         f"predicted class turned wrong and {right} turned right (exact McNemar p = "
                         f"{change['p_value']:.2g}). Keep the raw model's class predictions (use the calibrated "
                         "probabilities as probabilities), or use temperature scaling, which never changes a row's "
                         "predicted class."), text


def _boundary_flipping_map(logits):
    """A stand-in calibrated map of two-class logits (no labels): the 15 rows nearest the boundary get their two
    logits swapped, so their predicted class changes; the other rows are left as they are."""
    z = np.array(logits, dtype=np.float64)
    near = np.argsort(np.abs(z[:, 1] - z[:, 0]), kind="stable")[:15]
    z[near] = z[near][:, ::-1]
    return z


def _separable_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    data = tmp_path / "train.csv"
    write_columns(data, {"a": X[:, 0], "b": X[:, 1], "label": (X[:, 0] > 0).astype(int)})
    return data


def test_fit_calibrate_records_and_says_the_accuracy_change(capsys, tmp_path, monkeypatch):
    """``fit --calibrate`` pairs the held-out predictions with and without its calibrator as calibrate does: on a
    model right on every held-out row, a map that flips the 15 rows nearest the boundary is read worse by the
    exact test, in --json and in the verdict, after the log-loss's "keep the raw model"."""
    from softmaxkit.cli import _adapters

    data = _separable_data(tmp_path)
    monkeypatch.setattr(_adapters, "calibrated_logits", lambda calibrator, logits: _boundary_flipping_map(logits))
    rc, out, _ = call(capsys, "fit", data, "--target", "label", "--calibrate", "platt", "--out",
                      tmp_path / "model.npz", "--no-report", "--json")
    assert rc == 0
    result = json.loads(out)
    change, held = result["accuracy_change"], result["held_out"]
    assert change["in_sample"] is False and change["n"] == held["model"]["n"]
    assert change["before"] == pytest.approx(held["model"]["accuracy"], abs=1e-12)
    assert change["after"] == pytest.approx(held["calibrated"]["accuracy"], abs=1e-12)
    wrong, right = change["turned_wrong"], change["turned_right"]
    assert wrong + right == 15 and wrong >= 12  # the flipped rows, right before (nearly) all of them
    assert change["p_value"] == pytest.approx(binomtest(wrong, 15, 0.5).pvalue, rel=1e-12)
    assert change["reading"] == "worse"
    assert (f"keep the raw model. Accuracy fell from {change['before']:.4f} to {change['after']:.4f}: {wrong} rows' "
            f"predicted class turned wrong and {right} turned right (exact McNemar p = ") in result["verdict"]


def test_fit_advice_takes_class_predictions_from_the_model_alone(capsys, tmp_path, monkeypatch):
    """Under a log-loss not measured worse, the line under the calibrator's path that says to use it adds that
    class predictions come from the model alone when the accuracy fell measurably (the comparison stands in)."""
    from softmaxkit.cli import _evaluation

    fell = {"before": 0.99, "after": 0.90, "turned_wrong": 9, "turned_right": 0, "n": 100, "p_value": 0.0039,
            "reading": "worse", "in_sample": False}
    monkeypatch.setattr(_evaluation, "paired_accuracy_change", lambda before, after, **_: fell)
    data = _separable_data(tmp_path)
    rc, out, _ = call(capsys, "fit", data, "--target", "label", "--calibrate", "temperature", "--out",
                      tmp_path / "model.npz", "--no-report")
    assert rc == 0
    model = tmp_path / "model.npz"
    assert "measured worse on the held-out rows" not in out  # the log-loss: the advice is to use the calibrator
    assert (f"--calibrator {tmp_path / 'model.calibrator.npz'} --out PROBS for probabilities; class predictions from "
            f"predict {model} without --calibrator") in out, out


# --------------------------------------------------------------------------- unit level


def _scored(hits, key="k"):
    from softmaxkit.cli._evaluation import Scored

    return Scored(key=key, name=key, summary={}, png=None, row_hit=np.asarray(hits, dtype=bool))


def test_paired_accuracy_change_is_the_exact_mcnemar_test():
    from softmaxkit.cli._evaluation import paired_accuracy_change

    before = np.array([1] * 90 + [0] * 10, dtype=bool)
    after = before.copy()
    after[:12] = False  # 12 right rows turn wrong
    after[95:97] = True  # 2 wrong rows turn right
    change = paired_accuracy_change(_scored(before), _scored(after))
    assert (change["turned_wrong"], change["turned_right"], change["n"]) == (12, 2, 100)
    assert change["p_value"] == pytest.approx(binomtest(12, 14, 0.5).pvalue, rel=1e-12)  # 0.0129
    assert (change["before"], change["after"], change["reading"]) == (0.90, 0.80, "worse")
    rose = paired_accuracy_change(_scored(after), _scored(before), in_sample=True)
    assert rose["reading"] == "higher" and rose["in_sample"] is True
    few = paired_accuracy_change(_scored([1, 1, 1, 0]), _scored([0, 0, 1, 0]))  # 2 of 2 discordant: p = 0.5
    assert few["reading"] == "within the noise" and few["p_value"] == pytest.approx(0.5)
    assert paired_accuracy_change(_scored([1, 0]), _scored([1, 0]))["reading"] == "unchanged"
    from softmaxkit.cli._evaluation import Scored

    assert paired_accuracy_change(Scored("a", "a", {}, None), _scored([1, 0])) is None  # no per-row predictions


def _summary(ece, loss, accuracy, n=200):
    return {"n": n, "ece": ece, "ece_ci": [ece * 0.5, ece * 1.5], "ece_noise_floor": 0.01,
            "ece_noise_threshold": 0.02, "ece_p_calibrated": 0.5, "log_loss": loss, "accuracy": accuracy,
            "majority_rate": 0.5}


def _accuracy(before, after, wrong, right, reading, *, in_sample=False, n=200):
    return {"before": before, "after": after, "turned_wrong": wrong, "turned_right": right, "n": n,
            "p_value": binomtest(wrong, wrong + right, 0.5).pvalue, "reading": reading, "in_sample": in_sample}


def test_a_measured_fall_turns_good_news_into_a_warning():
    """The ECE fell into the noise and the log-loss is better (tone good before): a held-out fall measured by the
    exact test leads and warns; the raw model's class predictions or temperature scaling are advised."""
    from softmaxkit.cli._evaluation import verdict

    before, after = _summary(0.08, 0.40, 0.9766), _summary(0.015, 0.35, 0.9532)
    loss = {"reading": "better", "ci95": [-0.08, -0.02], "n": 200, "in_sample": False}
    text, tone = verdict(before, after, change="isotonic calibration", loss_change=loss)
    assert tone == "good" and "Accuracy" not in text  # without the comparison, as before
    fell = _accuracy(0.9766, 0.9532, 12, 2, "worse")
    text, tone = verdict(before, after, change="isotonic calibration", loss_change=loss, accuracy_change=fell,
                         params={"method": "IsotonicCalibration"})
    assert tone == "warn"
    assert text.startswith("Accuracy fell from 0.9766 to 0.9532: 12 rows' predicted class turned wrong and 2 turned "
                           "right (exact McNemar p = 0.013). Keep the raw model's class predictions (use the "
                           "calibrated probabilities as probabilities), or use temperature scaling, which never "
                           "changes a row's predicted class. Isotonic calibration brought"), text


def test_a_fall_within_the_noise_is_said_last_and_keeps_the_tone():
    from softmaxkit.cli._evaluation import verdict

    before, after = _summary(0.08, 0.40, 0.95), _summary(0.015, 0.35, 0.945)
    loss = {"reading": "better", "ci95": [-0.08, -0.02], "n": 200, "in_sample": False}
    noise = _accuracy(0.95, 0.945, 1, 0, "within the noise")
    text, tone = verdict(before, after, change="Platt scaling", loss_change=loss, accuracy_change=noise)
    assert tone == "good"
    assert text.endswith(" Accuracy fell from 0.9500 to 0.9450: 1 row's predicted class turned wrong and 0 turned "
                         "right (exact McNemar p = 1), within the noise."), text
    rose = _accuracy(0.945, 0.95, 0, 1, "within the noise")
    assert "Accuracy" not in verdict(before, after, change="Platt scaling", loss_change=loss, accuracy_change=rose)[0]


def test_after_keep_the_raw_model_only_temperature_scaling_is_added():
    """A log-loss measured worse already says to keep the raw model: the accuracy sentence follows it, without
    advising the calibrated probabilities."""
    from softmaxkit.cli._evaluation import verdict

    before, after = _summary(0.015, 0.30, 0.97), _summary(0.015, 0.40, 0.95)
    loss = {"reading": "worse", "ci95": [0.02, 0.18], "n": 200, "in_sample": False}
    fell = _accuracy(0.97, 0.95, 8, 0, "worse", n=400)
    text, tone = verdict(before, after, change="vector scaling", loss_change=loss, accuracy_change=fell,
                         params={"method": "VectorScaling"})
    assert tone == "warn"
    assert text.startswith("Vector scaling made it worse: keep the raw model. Accuracy fell from 0.9700 to 0.9500: 8 "
                           "rows' predicted class turned wrong and 0 turned right (exact McNemar p = 0.0078); "
                           "temperature scaling never changes a row's predicted class. "), text
    assert "calibrated probabilities as probabilities" not in text


def test_too_few_rows_for_the_log_loss_still_say_an_exact_fall():
    """Under the bootstrap's fewest rows the log-loss is not read, but the exact test holds at any count."""
    from softmaxkit.cli._evaluation import MIN_PAIRED_ROWS, verdict

    n = MIN_PAIRED_ROWS - 10
    before, after = _summary(0.05, 0.30, 0.9, n=n), _summary(0.05, 0.35, 0.55, n=n)
    loss = {"reading": "too few rows to tell", "ci95": [-0.1, 0.2], "n": n, "in_sample": False}
    fell = _accuracy(0.9, 0.55, 7, 0, "worse", n=n)
    text, tone = verdict(before, after, change="matrix scaling", loss_change=loss, accuracy_change=fell,
                         params={"method": "MatrixScaling"})
    assert text.startswith("Too few rows to tell") and tone == "warn"
    assert "Accuracy fell from 0.9000 to 0.5500: 7 rows' predicted class turned wrong and 0 turned right (exact " \
           "McNemar p = 0.016). Keep the raw model's class predictions" in text


def test_rows_whose_top_probabilities_tie_are_left_out_of_the_test():
    """Review R22: an isotonic map's flat pieces tie classes at the top, and the first tied class is the
    prediction; 5 of 13 rows "turned wrong" were such ties, and they decided a "measured worse" reading."""
    from softmaxkit.cli._evaluation import Scored, paired_accuracy_change

    n = 40
    before_hit = np.ones(n, dtype=bool)
    after_hit = np.ones(n, dtype=bool)
    after_hit[:12] = False  # 12 rows turned wrong ...
    after_tie = np.zeros(n, dtype=bool)
    after_tie[:9] = True  # ... 9 of them by a tie the map made
    before = Scored("b", "B", {}, None, row_hit=before_hit, row_tie=np.zeros(n, dtype=bool))
    after = Scored("a", "A", {}, None, row_hit=after_hit, row_tie=after_tie)
    change = paired_accuracy_change(before, after)
    assert (change["turned_wrong"], change["turned_right"], change["tied_changes"]) == (3, 0, 9)
    assert change["after"] == 28 / 40  # the accuracy counts them, as the table does
    assert change["reading"] == "within the noise"  # 3 of 3: p = 0.25; with the 9 ties, 12 of 12 read "worse"


def test_a_fall_made_of_ties_alone_says_so():
    """Review R23: where only tied rows moved, the sentence read "0 rows' predicted class turned wrong and 0
    turned right"."""
    from softmaxkit.cli._evaluation import accuracy_fall

    change = {"before": 0.9, "after": 0.85, "turned_wrong": 0, "turned_right": 0, "tied_changes": 2,
              "p_value": 1.0, "reading": "within the noise", "in_sample": False}
    text = accuracy_fall(change, params={"method": "IsotonicCalibration"})
    assert text == (" Accuracy fell from 0.9000 to 0.8500 only by 2 rows whose top probabilities tie, counted by "
                    "the first tied class: no change is measured.")


@pytest.mark.parametrize("reading, marked", [(None, False), ("within the noise", False), ("worse", True)])
def test_the_report_marks_accuracy_only_where_its_change_is_measured(monkeypatch, reading, marked):
    """The report table greened the better accuracy whenever it differed, under a caption promising marks
    only where a change is measured; accuracy is now marked where the McNemar test reads it."""
    import softmaxkit.report as report
    from softmaxkit.cli._evaluation import Scored, comparison_section

    seen = {}
    real = report.metrics_table

    def spy(rows, *, caption, mark):
        seen["mark"], seen["caption"] = mark, caption
        return real(rows, caption=caption, mark=mark)

    monkeypatch.setattr(report, "metrics_table", spy)
    summary = {"n": 100, "accuracy": 0.9, "log_loss": 0.3, "brier": 0.15, "ece": 0.05, "ece_ci": None}
    scored = [Scored("b", "Before", summary, None), Scored("a", "After", {**summary, "accuracy": 0.85}, None)]
    change = None if reading is None else {"reading": reading}
    comparison_section(scored, title="t", intro="i", accuracy_change=change)
    assert ("accuracy" in seen["mark"]) is marked
    assert "accuracy: the exact McNemar test" in seen["caption"]
