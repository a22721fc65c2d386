"""Review R24: the accuracy change's reading follows the accuracy, ties count only where the truth is tied, and
sets that leave out the prediction name the cause that applies.

- F1: tied rows (decided by the first tied class) and untied rows (the exact McNemar test) moving opposite ways
  read "worse" beside a rise in accuracy (0.6497 -> 0.8280, 14 untied rows turned wrong, 42 tied rows turned
  right): the verdict warned with no accuracy sentence and a leading space, report.html greened the higher
  accuracy, and the mirror case read "0 rows ... turned wrong and 10 turned right (p = 0.002), within the noise".
  One reading (``paired_accuracy_change``) now drives them all, and never goes against the accuracy.
- F2: a row whose largest probability is shared by two wrong classes is wrong whichever comes first; it was
  counted as a tie and left out of the test.
- F3: with one threshold per class a set can leave out the most probable class; the warning blamed the
  calibrated probabilities, even after temperature scaling, which never changes the predicted class.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns


def _scored(hits, ties, key="k"):
    from softmaxkit.cli._evaluation import Scored

    return Scored(key=key, name=key, summary={}, png=None, row_hit=np.asarray(hits, dtype=bool),
                  row_tie=np.asarray(ties, dtype=bool))


def _against_ties(*, rise: bool) -> tuple:
    """200 rows: 10 untied rows turn wrong (p = 0.002) and 20 rows tied before turn right (``rise``), or 10
    untied rows turn right and 20 rows tied after turn wrong."""
    n = 200
    b, a = np.ones(n, bool), np.ones(n, bool)
    tb, ta = np.zeros(n, bool), np.zeros(n, bool)
    (a if rise else b)[:10] = False
    if rise:
        b[10:30], tb[10:30] = False, True
    else:
        a[10:30], ta[10:30] = False, True
    return _scored(b, tb, "b"), _scored(a, ta, "a")


def test_untied_rows_against_a_rise_read_no_measured_change():
    from softmaxkit.cli._evaluation import accuracy_fall, paired_accuracy_change

    change = paired_accuracy_change(*_against_ties(rise=True))
    assert (change["before"], change["after"]) == (0.9, 0.95)
    assert (change["turned_wrong"], change["turned_right"], change["tied_changes"]) == (10, 0, 20)
    assert change["reading"] == "within the noise" and change["ties_decide"] is True  # was "worse"
    # each tied row (a two-way tie) at its chance of being right: 0.95 before and after (review R25)
    assert accuracy_fall(change, params={"method": "IsotonicCalibration"}) == (
        " With each of the 20 rows whose top probabilities tie counted at its chance of being right, one in the "
        "classes it ties, accuracy stays at 0.9500 (0.9000 to 0.9500 counted by the first tied class), but the rows "
        "without a tie changed: 10 rows' predicted class turned wrong and 0 turned right (exact McNemar p = 0.002). "
        "The tied rows decide the accuracy: no change in it is measured.")
    in_sample = paired_accuracy_change(*_against_ties(rise=True), in_sample=True)
    assert in_sample["reading"] == "within the noise"  # was "lower" beside a rise


def test_untied_rows_against_a_fall_say_so_rather_than_within_the_noise():
    from softmaxkit.cli._evaluation import accuracy_fall, paired_accuracy_change

    change = paired_accuracy_change(*_against_ties(rise=False))
    assert change["after"] < change["before"]
    assert (change["turned_wrong"], change["turned_right"]) == (0, 10)
    assert change["reading"] == "within the noise" and change["ties_decide"] is True  # was "better" beside a fall
    text = accuracy_fall(change, params={"method": "IsotonicCalibration"})
    assert "(0.9500 to 0.9000 counted by the first tied class), but the rows without a tie changed: 0 rows' " \
        "predicted class turned wrong and 10 turned right (exact McNemar p = 0.002)." in text, text
    assert "decide the accuracy: no change in it is measured." in text


def test_untied_rows_with_the_accuracy_are_read_as_before():
    """Guard (passes before): ties that move with the untied rows leave the reading measured."""
    from softmaxkit.cli._evaluation import paired_accuracy_change

    n = 200
    b, a, tied = np.ones(n, bool), np.ones(n, bool), np.zeros(n, bool)
    a[:15] = False  # 10 untied and 5 tied rows turn wrong
    tied[10:15] = True
    change = paired_accuracy_change(_scored(b, np.zeros(n, bool)), _scored(a, tied))
    assert change["reading"] == "worse" and not change.get("ties_decide")


def _summary(ece, loss, accuracy, n=200):
    return {"n": n, "ece": ece, "ece_ci": [ece * 0.5, ece * 1.5], "ece_noise_floor": 0.01,
            "ece_noise_threshold": 0.02, "ece_p_calibrated": 0.5, "log_loss": loss, "accuracy": accuracy,
            "majority_rate": 0.5}


@pytest.mark.parametrize("in_sample", [False, True])
def test_the_verdict_says_the_ties_decide_and_keeps_its_tone(in_sample):
    """Was: the warning tone with no accuracy sentence, and text starting with a space."""
    from softmaxkit.cli._evaluation import paired_accuracy_change, verdict

    change = paired_accuracy_change(*_against_ties(rise=True), in_sample=in_sample)
    before, after = _summary(0.08, 0.40, 0.90), _summary(0.015, 0.35, 0.95)
    loss = {"reading": "lower" if in_sample else "better", "ci95": [-0.08, -0.02], "n": 200, "in_sample": in_sample}
    text, tone = verdict(before, after, change="isotonic calibration", loss_change=loss, accuracy_change=change,
                         params={"method": "IsotonicCalibration"}, in_sample=in_sample)
    assert not text.startswith(" "), text
    assert tone != "warn"
    assert "the rows without a tie changed" in text and "decide the accuracy" in text
    assert "Keep the raw model's class predictions" not in text


def test_a_lower_reading_with_no_sentence_leaves_no_leading_space():
    """However the reading and the accuracies meet, the verdict never starts with a space."""
    from softmaxkit.cli._evaluation import verdict

    change = {"before": 0.9, "after": 0.95, "turned_wrong": 10, "turned_right": 0, "tied_changes": 20,
              "p_value": 0.002, "reading": "lower", "in_sample": True}
    text, _ = verdict(_summary(0.08, 0.40, 0.9), _summary(0.015, 0.35, 0.95), change="isotonic calibration",
                      accuracy_change=change, in_sample=True)
    assert not text.startswith(" ") and "  " not in text, text


def _tie_data(tmp_path):
    """R24's reproducer: rows [1, 1, 0] of class 1 (wrong before by the tie, right after vector scaling) and rows
    [1, 0.9, 0] of class 0 (right before, wrong after), among clean rows."""
    rows, ys = [], []

    def add(z, y, n):
        rows.extend([z] * n)
        ys.extend([y] * n)

    add([1, 1, 0], 1, 80)
    add([1, 0.9, 0], 0, 30)
    for k in range(3):
        z = [0, 0, 0]
        z[k] = 3
        add(z, k, 60)
        z2 = [0.5, 0.5, 0.5]
        z2[k] = 2
        add(z2, (k + 1) % 3, 8)
    np.save(tmp_path / "z.npy", np.array(rows, float))
    np.save(tmp_path / "y.npy", np.array(ys))
    return tmp_path / "z.npy", tmp_path / "y.npy"


def test_calibrate_reads_json_verdict_and_report_from_one_decision(capsys, tmp_path):
    z, y = _tie_data(tmp_path)
    rc, out, err = call(capsys, "calibrate", "--logits", z, "--labels", y, "--method", "vector", "--holdout", "0.5",
                        "--out", tmp_path / "c.npz", "--json", "--report", tmp_path / "rep")
    assert rc == 0, err
    got = json.loads(out)
    change = got["accuracy_change"]
    assert change["after"] > change["before"] and change["turned_wrong"] > change["turned_right"]
    assert change["p_value"] < 0.05
    assert change["reading"] == "within the noise" and change["ties_decide"] is True  # was "worse"
    assert not got["verdict"].startswith(" ")
    assert "the rows without a tie point the other way" in got["verdict"]
    html = (tmp_path / "rep" / "report.html").read_text()
    row = re.search(r'<tr><td class="strong">Accuracy</td>(.*?)</tr>', html).group(1)
    assert "good" not in row, row  # the higher accuracy was green under "marked where the change is measured"


# --------------------------------------------------------------------------- F2: ties among wrong classes


def test_a_tie_counts_only_where_the_true_class_is_tied():
    from softmaxkit.cli._evaluation import _row_outcomes

    probs = np.array([[0.4, 0.4, 0.2]] * 3 + [[0.2, 0.5, 0.3]])
    y = np.array([0, 1, 2, 1])
    _, hit, tied = _row_outcomes(y, logits=None, probs=probs, transform=None)
    assert hit.tolist() == [True, False, False, True]
    assert tied.tolist() == [2, 2, 0, 0]  # row 3: the tie is between two wrong classes


def test_rows_turned_wrong_by_a_tie_of_wrong_classes_are_tested():
    """R24's r7: 12 rows right before and tied between two wrong classes after were left out as ties, and a fall
    of 12 of 12 (p = 0.0005) read "within the noise"."""
    from softmaxkit.cli._evaluation import paired_accuracy_change, score

    y = np.r_[np.zeros(12, int), np.arange(200) % 3]
    before = np.r_[np.tile([0.6, 0.2, 0.2], (12, 1)), np.eye(3)[np.arange(200) % 3] * 0.5 + 0.5 / 3]
    after = before.copy()
    after[:12] = [0.1, 0.45, 0.45]
    scored = [score(y, probs=p, key=k, name=k, plot=False, ci=False) for k, p in (("b", before), ("a", after))]
    change = paired_accuracy_change(*scored)
    assert (change["turned_wrong"], change["tied_changes"]) == (12, 0)
    assert change["reading"] == "worse"


# --------------------------------------------------------------------------- F3: sets without the prediction


@pytest.fixture
def by_class_predictor(tmp_path, capsys):
    """A model, a temperature scaling and a class-conditional conformal predictor fitted on its validation
    logits, three classes at 60/30/10%."""
    def part(n, seed):
        rng = np.random.default_rng(seed)
        y = rng.choice(3, n, p=[0.6, 0.3, 0.1])
        x = rng.normal(size=(n, 3)) + 2 * np.eye(3)[y]
        return {**{f"f{j}": x[:, j] for j in range(3)}, "label": np.array(["zebra", "apple", "mango"])[y]}

    for name, n, seed in (("train", 300, 1), ("val", 400, 2), ("test", 400, 3)):
        write_columns(tmp_path / f"{name}.csv", part(n, seed))
    ok = lambda *argv: call(capsys, *map(str, argv))  # noqa: E731
    assert ok("fit", tmp_path / "train.csv", "--target", "label", "--out", tmp_path / "m.npz", "-q",
              "--no-report")[0] == 0
    assert ok("predict", tmp_path / "m.npz", tmp_path / "val.csv", "--target", "label", "--out",
              tmp_path / "vp.csv", "--logits-out", tmp_path / "vl.csv", "-q")[0] == 0
    assert ok("calibrate", "--logits", tmp_path / "vl.csv", "--labels", tmp_path / "val.csv", "--label-column",
              "label", "--out", tmp_path / "cal.npz", "--conformal", "0.2", "--conformal-by-class", "-q")[0] == 0
    return ok, tmp_path


def test_per_class_thresholds_not_temperature_scaling_are_named(by_class_predictor):
    ok, d = by_class_predictor
    rc, _, err = ok("predict", d / "m.npz", d / "test.csv", "--target", "label", "--out", d / "tp.csv",
                    "--calibrator", d / "cal.npz", "--conformal", d / "cal.conformal.npz", "--sets", "0.2")
    assert rc == 0, err
    note = next(line for line in err.splitlines() if "leaves out the prediction" in line)
    assert "one threshold per class (--conformal-by-class)" in note, note
    assert "calibrated probabilities" not in note, note  # temperature scaling never changes the prediction


def test_per_class_thresholds_are_named_without_a_calibrator(by_class_predictor):
    """Not said at all before: the raw prediction can fall outside a set with per-class thresholds."""
    ok, d = by_class_predictor
    rc, _, err = ok("predict", d / "m.npz", d / "test.csv", "--target", "label", "--out", d / "tp.csv",
                    "--conformal", d / "cal.conformal.npz", "--sets", "0.2")
    assert rc == 0, err
    assert "leaves out the prediction" in err and "one threshold per class" in err, err


def test_both_causes_are_named_for_a_map_that_can_reorder_classes():
    from softmaxkit.calibration import IsotonicCalibration, TemperatureScaling
    from softmaxkit.cli.predict import reorders_classes, warn_sets_without_prediction

    assert reorders_classes(IsotonicCalibration()) and not reorders_classes(TemperatureScaling())
    assert not reorders_classes(None)
    mask = np.zeros((2, 3, 1), dtype=bool)
    mask[:, 1, 0] = True
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    with pytest.warns(UserWarning) as seen:
        warn_sets_without_prediction(mask, probs, (0.1,), scores="the logits", by_class=True, reorders=True)
    text = str(seen[0].message)
    assert "in 1 of 2 rows (the first: row 1)" in text
    assert "one threshold per class" in text and "calibrated probabilities" in text


def test_the_reading_does_not_depend_on_the_column_order_of_tied_classes():
    """Review R25: 8 untied rows turn wrong (p = 0.0078) and 8 rows whose truth ties class 0 before turn right.
    Counted by the first tied class, the order 0,1,2 read "no change" (ties_decide) and 1,0,2 "worse". Each tied
    row now counts at its chance of being right (1/2), and both orders read "worse", with a sentence."""
    from softmaxkit.cli._evaluation import accuracy_fall, paired_accuracy_change

    n = 200
    # order 0,1,2: the tied rows' truth is class 1, second of the tie, so they count wrong before
    b, a = np.ones(n, bool), np.ones(n, bool)
    a[:8] = False
    b[8:16] = False
    ties_before = np.zeros(n, int)
    ties_before[8:16] = 2
    first = paired_accuracy_change(
        _scored_sizes(b, ties_before), _scored_sizes(a, np.zeros(n, int)))
    # order 1,0,2: the same rows count right before
    b2 = np.ones(n, bool)
    second = paired_accuracy_change(_scored_sizes(b2, ties_before), _scored_sizes(a, np.zeros(n, int)))
    assert first["reading"] == second["reading"] == "worse"
    assert not first["ties_decide"] and not second["ties_decide"]
    assert first["ties_at_chance"] == second["ties_at_chance"] == {"before": 0.98, "after": 0.96}
    text = accuracy_fall(first, params={"method": "IsotonicCalibration"})
    assert text.startswith(" Accuracy fell from 0.9800 to 0.9600 with each of the 8 rows whose top probabilities tie")
    assert "(0.9600 to 0.9600 counted by the first tied class)" in text and "Keep the raw model's" in text


def _scored_sizes(hits, tie_sizes):
    from softmaxkit.cli._evaluation import Scored

    return Scored(key="k", name="k", summary={}, png=None, row_hit=np.asarray(hits, dtype=bool),
                  row_tie=np.asarray(tie_sizes))
