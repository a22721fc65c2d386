"""Below ``MIN_ECE_CI_ROWS`` scored rows the ECE has no interval, and nothing reads one.

Audit: with the interval forced to [0, 1] below 100 rows, ``calibrate`` on 90 rows of overconfident logits
said "changed the calibration error from 0.3781 to 0.0977, within the bootstrap uncertainty (95% CIs
0.0000-1.0000 before and 0.0000-1.0000 after overlap): no measurable change on 90 cases", exit 0, where
the noise floor alone reads the drop (0.38, above its floor, to 0.10, under its floor 0.12); fit's report
printed "ECE 0.036 / 95% CI 0.000-1.000" under "Brackets: bootstrap 95% confidence interval". Now the
summary holds ``ece_ci: None`` and an ``ece_ci_note`` saying why, verdicts fall back to the noise floor,
and tables and headlines print "no CI: 90 rows".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns


def _overconfident(n: int, *, seed: int = 0, k: int = 10, scale: float = 6.0):
    """Labels drawn from softmax(z) and the logits 6 z: overconfident, so temperature scaling helps."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.2, size=(n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z * scale, y


@pytest.fixture
def small_case(tmp_path):
    def make(n):
        logits, y = _overconfident(n)
        np.save(tmp_path / f"z{n}.npy", logits)
        np.save(tmp_path / f"y{n}.npy", y)
        return tmp_path / f"z{n}.npy", tmp_path / f"y{n}.npy"
    return make


def _calibrate(capsys, tmp_path, z, y, *extra):
    rc, out, err = call(capsys, "calibrate", "--logits", z, "--labels", y, "--out", tmp_path / "t.npz", *extra)
    assert rc == 0, err
    return out


def test_calibrate_on_90_rows_reads_the_noise_floor_not_a_whole_range_interval(capsys, tmp_path, small_case):
    z, y = small_case(90)
    metrics = json.loads(_calibrate(capsys, tmp_path, z, y, "--json"))
    before, after = metrics["metrics"]["uncalibrated"], metrics["metrics"]["calibrated"]
    for side in (before, after):
        assert side["n"] == 90 and side["ece_ci"] is None
        assert "fewer than 100 rows" in side["ece_ci_note"]
        assert side["ece_noise_floor"] > 0  # the floor is a separate simulation: still measured
    assert before["ece"] > before["ece_noise_floor"] and after["ece"] <= after["ece_noise_floor"]
    text = metrics["verdict"]
    assert "within the bootstrap uncertainty" not in text and "no measurable change" not in text, text
    assert "0.0000-1.0000" not in text
    # Beyond the noise before by the test (its 95th percentile), not by the floor, a mean (F6). Fitted and
    # measured on the same rows, the after side is shown but not tested (audit BK-4).
    # p at the least 200 simulated worlds give, 1/201, reads "p <= 0.005" (audit BT)
    p = before["ece_p_calibrated"]
    p = "p <= 0.005" if p == pytest.approx(1 / 201) else f"p = {p:.2g}"
    assert (f"the ECE is {before['ece']:.4f}, above its noise floor {before['ece_noise_floor']:.4f} and the "
            f"{before['ece_noise_threshold']:.4f} that perfectly calibrated models stay under 95% of the time, "
            f"{p}: miscalibrated") in text, text
    assert f"After it the ECE is {after['ece']:.4f}, not tested" in text, text


def test_calibrate_on_90_rows_prints_no_interval(capsys, tmp_path, small_case):
    z, y = small_case(90)
    out = _calibrate(capsys, tmp_path, z, y, "--report", tmp_path / "rep")
    assert "[0.0000, 1.0000]" not in out
    ece_row = next(line for line in out.splitlines() if line.lstrip().startswith("ECE [95% CI]"))
    assert ece_row.count("(no CI: 90 rows)") == 2, ece_row
    assert "fewer than 100 rows" in out  # the legend says why
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "0.000-1.000" not in page and "[0.0000, 1.0000]" not in page
    assert page.count("(no CI: 90 rows)") == 2  # the table's two ECE cells
    assert "no CI: 90 rows" in page.split("<table", 1)[0]  # the headlines, above the table
    assert "fewer than 100 rows" in page  # the caption says why


def test_calibrate_on_150_rows_keeps_a_real_interval(capsys, tmp_path, small_case):
    z, y = small_case(150)
    metrics = json.loads(_calibrate(capsys, tmp_path, z, y, "--json"))
    for side in metrics["metrics"].values():
        lo, hi = side["ece_ci"]
        assert 0.0 <= lo < hi <= 1.0 and [lo, hi] != [0.0, 1.0]
        assert side["ece_ci_note"] is None
    out = _calibrate(capsys, tmp_path, z, y)
    assert "no CI" not in out and "fewer than 100 rows" not in out


def test_fit_report_below_100_held_out_rows_has_no_interval(capsys, tmp_path):
    rng = np.random.default_rng(3)
    y = np.arange(200) % 2
    X = rng.normal(size=(200, 2)) + 1.5 * y[:, None]
    write_columns(tmp_path / "blobs.csv", {"f0": X[:, 0], "f1": X[:, 1], "y": y})
    rc, out, err = call(capsys, "fit", tmp_path / "blobs.csv", "--target", "y", "--out", tmp_path / "m.npz",
                        "--report", tmp_path / "rep")
    assert rc == 0, err
    assert "(no CI: 50 rows)" in out and "[0.0000, 1.0000]" not in out
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "0.000-1.000" not in page and "(no CI: 50 rows)" in page and "fewer than 100 rows" in page


def test_evaluate_report_below_100_rows_has_no_interval(capsys, tmp_path, small_case):
    z, y = small_case(90)
    rc, out, err = call(capsys, "evaluate", "--logits", z, "--labels", y, "--report", tmp_path / "rep")
    assert rc == 0, err
    assert "(no CI: 90 rows)" in out and "[0.0000, 1.0000]" not in out
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "0.000-1.000" not in page and "no CI: 90 rows" in page


def test_summary_without_interval_asked_is_distinguishable():
    """``ci=False`` (no interval asked for) has no note; too few rows has one; the text differs."""
    from softmaxkit.cli._adapters import MIN_ECE_CI_ROWS, summarize
    from softmaxkit.report import ece_ci_text, ece_text

    logits, y = _overconfident(MIN_ECE_CI_ROWS - 10)
    few, _ = summarize(y, logits=logits)
    unasked, _ = summarize(y, logits=logits, ci=False)
    assert few["ece_ci"] is None and few["ece_ci_note"] and few["ece_noise_floor"] > 0
    assert unasked["ece_ci"] is None and unasked["ece_ci_note"] is None and unasked["ece_noise_floor"] is None
    assert ece_text(few) == f"{few['ece']:.4f} (no CI: 90 rows)" and ece_ci_text(few, digits=3) == "no CI: 90 rows"
    assert ece_text(unasked) == f"{unasked['ece']:.4f}" and ece_ci_text(unasked) == ""
    logits, y = _overconfident(MIN_ECE_CI_ROWS)
    enough, _ = summarize(y, logits=logits)
    lo, hi = enough["ece_ci"]
    assert ece_text(enough) == f"{enough['ece']:.4f} [{lo:.4f}, {hi:.4f}]"
    assert ece_ci_text(enough, digits=3) == f"95% CI {lo:.3f}-{hi:.3f}"


def test_verdict_and_outcome_without_interval():
    """No interval: the verdict reads the noise floor and says no interval was made for a change it cannot
    place; held_out_outcome credits no ECE change it cannot measure and leaves it to the log-loss."""
    from softmaxkit.cli._evaluation import held_out_outcome, verdict

    def summary(ece, floor):
        # the test's 95th percentile beside the floor: without it nothing is inferred from an ECE above the floor
        return {"n": 60, "ece": ece, "ece_ci": None, "ece_ci_note": "fewer than 100 rows", "ece_noise_floor": floor,
                "ece_noise_threshold": 1.5 * floor,
                "log_loss": 0.5, "accuracy": 0.9, "majority_rate": 0.5}

    text, _ = verdict(summary(0.30, 0.10), summary(0.20, 0.10), change="temperature scaling")
    assert "lowered" not in text and "no bootstrap interval" in text and "stays above its noise floor" in text, text
    text, _ = verdict(summary(0.05, 0.10), summary(0.20, 0.10), change="temperature scaling")
    assert "raised" not in text and "some miscalibration may have come in" in text, text
    better = {"reading": "better", "ci95": [-0.2, -0.1], "n": 60, "in_sample": False}
    assert held_out_outcome(summary(0.30, 0.10), summary(0.05, 0.10), None) == "none"
    assert held_out_outcome(summary(0.30, 0.10), summary(0.05, 0.10), better) == "gain"
