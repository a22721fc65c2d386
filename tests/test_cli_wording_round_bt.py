"""Wording found by audit BT: right numbers, words that misread them.

BT-1: a class-count note said the top-label ECE "cannot see" a miss beside an ECE its own test rejected.
BT-2: figures compared in words printed equal ("0.0375, above its noise floor 0.0375").
BT-3: an infinite log-loss (isotonic, read "worse") was left unmarked, which the caption reads as within the noise.
BT-4: "Log-loss 0.608 ... was 0.608" on a card, beside a verdict of "better".
BT-5: ``calibrate --conformal`` did not say a class measurably under-covered (the demo's card does).
BT-6: a Monte Carlo p-value at its least, 1/201, printed "p = 0.005".
BT-7: one column under "Best value per row in green.", nothing marked.
BT-8: ``fit --calibrate``'s cross-fit refusal named no class.
"""

from __future__ import annotations

import html
import json
import math

import numpy as np
import pytest

from cli_helpers import call, decent_logits

#: The least p-value the ECE's test gives (200 simulated worlds): (1 + 0) / (1 + 200).
LEAST_P = 1 / 201


def _side(ece, *, floor, threshold, p, lo=None, hi=None, n=540, loss=0.2, count=None):
    return {"n": n, "ece": ece, "ece_ci": [ece / 2 if lo is None else lo, ece * 1.5 if hi is None else hi],
            "ece_noise_floor": floor, "ece_noise_threshold": threshold, "ece_p_calibrated": p, "log_loss": loss,
            "accuracy": 0.96, "majority_rate": 0.11,
            **({"class_count_test": count} if count is not None else {})}


#: A class's predicted count off (digits logits x3 of the audit: 49.2 expected, 55 observed).
OFF = {"rejected": True, "class": 3, "expected": 49.2, "observed": 55, "tests": 10, "p_adjusted": 0.00014}
CLASSES = ["10", "9", "b", "B", "a", "Ä", "é", "Z", "<x&y>", "q"]


# --------------------------------------------------------------------------- BT-1


def test_count_note_does_not_say_the_ece_cannot_see_what_its_test_rejects():
    """evaluate on the digits logits x3: ECE 0.0300 over its threshold 0.0139 (p at its least), and the note
    under the table said the top-label ECE "cannot see" the miscount. It now says the ECE's test finds
    miscalibration too, with that test's figures (nothing else under evaluate's table gives them)."""
    from softmaxkit.cli._evaluation import count_legend

    flagged = _side(0.0300, floor=0.0100, threshold=0.0139, p=LEAST_P, count=OFF)
    (line,) = count_legend(flagged, CLASSES)
    assert "cannot see" not in line, line
    assert "the top-label ECE finds miscalibration too (0.0300, above its noise floor 0.0100 and the 0.0139" in line
    assert line.startswith("The predicted count of class 'B' is off") and line.endswith("may fix it."), line

    within = _side(0.0120, floor=0.0100, threshold=0.0139, p=0.2, count=OFF)
    (line,) = count_legend(within, CLASSES)
    assert "which the top-label ECE, dominated by the confident rows, cannot see" in line, line


def test_calibrate_verdict_after_a_rejected_ece_says_the_test_agrees():
    """calibrate --method isotonic on the digits: "p = 0.01 after, so some miscalibration may have come in.
    After it the predicted count of class ... cannot see". On the map's fitting rows the after ECE is not
    tested, so the clause says nothing of it there."""
    from softmaxkit.cli._evaluation import verdict

    before = _side(0.0391, lo=0.0, hi=0.0593, floor=0.0304, threshold=0.0441, p=0.12, loss=0.1087)
    after = _side(0.0673, lo=0.0244, hi=0.0925, floor=0.0422, threshold=0.0612, p=0.00995, loss=0.1,
                  count={**OFF, "class": 8, "expected": 30.5, "observed": 21})
    text, tone = verdict(before, after, change="isotonic calibration", classes=CLASSES)
    assert "so some miscalibration may have come in" in text, text
    assert "After it the predicted count of class '<x&y>' is off" in text, text
    assert "cannot see" not in text and "the ECE's test finds miscalibration too" in text, text
    assert tone == "warn"

    text, _ = verdict(before, after, change="isotonic calibration", classes=CLASSES, in_sample=True)
    assert "not tested" in text and "the predicted count of class '<x&y>' is off" in text, text
    assert "cannot see" not in text and "finds miscalibration" not in text, text


# --------------------------------------------------------------------------- BT-2


def test_figures_compared_in_words_print_apart():
    """0.037496 "above its noise floor" 0.037469 printed "0.0375, above its noise floor 0.0375"."""
    from softmaxkit.cli._evaluation import _noise_words, verdict
    from softmaxkit.report import distinct

    assert distinct(0.037496, 0.037469) == ["0.03750", "0.03747"]
    assert distinct(0.6080, 0.6083, digits=3) == ["0.6080", "0.6083"]
    assert distinct(0.5, 0.5, None, math.inf) == ["0.5000", "0.5000", "n/a", "inf"]  # nothing to tell apart

    before = _side(0.1898, floor=0.0413, threshold=0.0566, p=LEAST_P, lo=0.17, hi=0.20, n=900, loss=2.9561)
    after = _side(0.037496, floor=0.037469, threshold=0.0511, p=0.47, lo=0.02, hi=0.05, n=900, loss=2.67)
    text, _ = verdict(before, after, change="temperature scaling")
    assert "to 0.03750, above its noise floor 0.03747 but within" in text, text

    # "the 0.0299 that perfectly calibrated models stay under" beside an ECE that prints 0.0299 too
    words = _noise_words(_side(0.029942, floor=0.02, threshold=0.029911, p=0.045))
    assert "the 0.02991 that perfectly calibrated models stay under" in words, words


# --------------------------------------------------------------------------- BT-3


def test_an_infinite_loss_is_the_worst_value_of_its_row():
    from softmaxkit.report import metrics_table

    table = metrics_table({"Before": {"log_loss": 0.1087, "brier": 0.06},
                           "After": {"log_loss": math.inf, "brier": 0.07}}, mark={"log_loss", "brier"})
    row = next(r for r in table.rows if r[0].text == "Log-loss")
    assert [c.tone for c in row[1:]] == ["good", ""], row
    both_lost = metrics_table({"Before": {"log_loss": math.inf}, "After": {"log_loss": math.inf}})
    row = next(r for r in both_lost.rows if r[0].text == "Log-loss")
    assert [c.tone for c in row[1:]] == ["", ""], row


# --------------------------------------------------------------------------- BT-4


def test_calibrate_card_tells_the_two_log_losses_apart_and_reads_the_change(tmp_path, capsys):
    """A temperature near 1 on 3,000 calibrated rows: the log-loss moves in the fifth decimal."""
    rng = np.random.default_rng(4)
    n, k = 3000, 3
    z = rng.normal(size=(n, k)) * 2.0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    np.save(tmp_path / "z.npy", z * 1.02)
    np.save(tmp_path / "y.npy", y)
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                        "--out", tmp_path / "c.npz", "--holdout", "0.5", "--report", tmp_path / "rep", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    before, after = (metrics["metrics"][k]["log_loss"] for k in ("uncalibrated", "calibrated"))
    assert f"{before:.4f}" == f"{after:.4f}" and before != after  # the case this test is about
    page = html.unescape((tmp_path / "rep" / "report.html").read_text(encoding="utf-8"))
    card = page[page.index('<div class="label">Log-loss</div>'):]
    card = card[:card.index("</div></div>")]
    shown, was = f"{after:.5f}", f"{before:.5f}"  # 4 decimals print these two alike too
    assert shown != was and f'<div class="value">{shown}</div>' in card and f"was {was}" in card, card
    assert f"change: {metrics['log_loss_change']['reading']}" in card, card


def test_fit_card_tells_the_two_log_losses_apart():
    from softmaxkit.cli._evaluation import Scored
    from softmaxkit.cli.fit import _headlines

    model = {**_side(0.02, floor=0.01, threshold=0.03, p=0.3, loss=0.60831), "accuracy": 0.7}
    calibrated = {**model, "log_loss": 0.60801}
    scored = [Scored("model", "Model", model, None), Scored("calibrated", "Calibrated", calibrated, None)]
    cards = _headlines(scored, calibration="temperature scaling", loss_change={"reading": "better"},
                       note=("...", "good"))
    card = next(c for c in cards if c.label == "Log-loss with temperature scaling")
    assert card.value == "0.6080" and "the model alone: 0.6083" in card.detail, card
    assert "change: better" in card.detail


# --------------------------------------------------------------------------- BT-5


def test_calibrate_conformal_names_a_class_measurably_under_covered(tmp_path, capsys):
    """The held-out rows of class 0 carry class 1's logits: the 90% sets rarely hold their class."""
    from softmaxkit.cli._common import holdout_rows

    z, y = decent_logits(600, 3, seed=3)
    _, held = holdout_rows(y, 0.5, 0)
    z = z.copy()
    zero, one = held[y[held] == 0], held[y[held] == 1]
    z[zero] = z[one[:len(zero)]]
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                        "--out", tmp_path / "c.npz", "--holdout", "0.5", "--conformal", "0.1",
                        "--report", tmp_path / "rep", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    under = metrics["conformal"]["classes_short_of_level"]["90%"]
    assert [u["class"] for u in under] == ["0"] and under[0]["rows"] == len(zero)
    assert under[0]["coverage_ci"][1] < 0.9
    said = [w for w in metrics["warnings"] if w.startswith("Class '0': the 90% sets")]
    assert len(said) == 1 and "measurably below the 90% level" in said[0], metrics["warnings"]
    assert f"softmaxkit: warning: {said[0]}" in err
    page = html.unescape((tmp_path / "rep" / "report.html").read_text(encoding="utf-8"))
    assert said[0] in page


def test_class_shortfalls_follow_the_least_covered_class():
    from softmaxkit.cli._conformal import class_shortfalls, classes_under_level

    m = {"target_coverage": 0.9, "coverage_by_class": {"a": 0.95, "b": 15 / 22, "c": 0.85, "d": 0.75}}
    rows = [100, 22, 400, 4]
    # by the interval's upper end: c (400 rows at 0.85) is measurably under, d (4 rows at 0.75) is not
    assert [u[0] for u in classes_under_level(m, rows)] == ["b", "c", "d"]
    summary = {"classes_short_of_level": {"90%": [
        {"class": "b", "rows": 22, "coverage": 15 / 22, "coverage_ci": [0.473, 0.836]},
        {"class": "c", "rows": 400, "coverage": 0.85, "coverage_ci": [0.812, 0.881]}]}}
    (line,) = class_shortfalls(summary)
    assert line.startswith("Class 'b': the 90% sets held the true class for 68.2% of its 22 rows "
                           "(95% CI 47.3-83.6%), measurably below the 90% level; so is class 'c':"), line


# --------------------------------------------------------------------------- BT-6


def test_a_p_value_at_its_least_is_not_printed_as_measured():
    from softmaxkit.cli._evaluation import _noise_words, _position

    at_least = _side(0.0300, floor=0.0100, threshold=0.0139, p=LEAST_P)
    for words in (_noise_words(at_least), _position(at_least)):
        assert "p <= 0.005" in words and "p = 0.005" not in words, words
    assert "p = 0.01" in _noise_words({**at_least, "ece_p_calibrated": 2 / 201})


# --------------------------------------------------------------------------- BT-7


def test_one_column_has_no_caption_promising_green():
    from softmaxkit.cli._evaluation import Scored, comparison_section
    from softmaxkit.report import Table

    s = _side(0.02, floor=0.01, threshold=0.03, p=0.3)
    one = comparison_section([Scored("predictions", "Predictions", s, None)], title="Scores", intro="...")
    (table,) = [b for b in one.blocks if isinstance(b, Table)]
    assert "green" not in table.caption and table.caption.startswith("Brackets:"), table.caption
    two = comparison_section([Scored("a", "A", s, None), Scored("b", "B", s, None)], title="Scores", intro="...")
    (table,) = [b for b in two.blocks if isinstance(b, Table)]
    assert "green" in table.caption


# --------------------------------------------------------------------------- BT-8


def test_cross_fit_refusal_names_the_classes_and_their_rows():
    from softmaxkit.cli import CLIError
    from softmaxkit.cli._adapters import cross_fit_calibrator

    X = np.zeros((7, 2))
    with pytest.raises(CLIError, match=r"every class; class 'rare' has 1$"):
        cross_fit_calibrator(None, "temperature", X, np.array(["a"] * 5 + ["b", "rare"])[[0, 1, 2, 3, 4, 4, 6]])
    with pytest.raises(CLIError, match=r"every class; classes 'b' and 'rare' have 1$"):
        cross_fit_calibrator(None, "temperature", X, np.array(["a"] * 5 + ["b", "rare"]))
