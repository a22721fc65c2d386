"""Calibration-in-the-large: a class's predicted count against its observed count.

Audit: on 1000 rows, 970 calibrated low-risk rows (p_yes 0.002-0.03) and 30 high-risk rows whose p_yes
(0.2-0.95) is 4 times their true rate, ``calibrate --method temperature`` printed "Already calibrated:
ECE 0.0066 before and 0.0048 after ..., each under its noise floor". The top-label ECE is dominated by
the ~970 rows at ~0.98 confidence and cannot see the 30, yet the model predicts 32.3 positives where
20 occurred (z = -2.69, p = 0.007). ``summarize`` now records each class's expected and observed count
(``class_counts``, ``class_count_test``), and the verdict never calls such a model calibrated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import call


def _rare_positive_files(folder: Path, *, seed: int, overpredict: float) -> tuple[Path, Path]:
    """The audit's probabilities and labels: 30 high-risk rows whose true rate is ``p / overpredict``
    (1: calibrated), 970 calibrated low-risk rows; written as ``p_no,p_yes`` and ``label`` CSVs."""
    rng = np.random.default_rng(seed)
    n = 1000
    high = np.arange(n) < 30
    p = np.where(high, rng.uniform(0.2, 0.95, n), rng.uniform(0.002, 0.03, n))
    y = rng.random(n) < np.where(high, p / overpredict, p)
    probs, labels = folder / "probs.csv", folder / "labels.csv"
    np.savetxt(probs, np.c_[1 - p, p], delimiter=",", header="p_no,p_yes", comments="")
    np.savetxt(labels, np.where(y, "yes", "no"), fmt="%s", header="label", comments="")
    return probs, labels


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_overpredicted_rare_class_is_not_called_calibrated(capsys, tmp_path, method):
    """The audit's scenario (seed 11): ECE under its floor before and after, but 32.3 positives predicted
    for 20 observed. The verdict names the class and its counts instead of "Already calibrated"."""
    probs, labels = _rare_positive_files(tmp_path, seed=11, overpredict=4)
    rc, out, err = call(capsys, "calibrate", "--probs", probs, "--labels", labels, "--method", method,
                        "--out", tmp_path / "cal.npz", "--report", tmp_path / "rep")
    assert rc == 0, err
    assert "Already calibrated" not in out
    assert "indistinguishable from perfectly calibrated" not in out
    assert "predicted count" in out and ("'yes'" in out or "class 1" in out), out
    assert "too high on average" in out, out
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    before = metrics["metrics"]["uncalibrated"]
    assert before["ece"] <= before["ece_noise_floor"]  # the ECE alone cannot see it
    test = before["class_count_test"]
    assert test["class"] == 1 and test["rejected"] is True
    assert test["expected"] == pytest.approx(32.3, abs=0.05) and test["observed"] == 20
    assert test["p_adjusted"] < 0.05 and test["tests"] == 1
    assert [c["class"] for c in before["class_counts"]] == [0, 1]
    assert sum(c["observed"] for c in before["class_counts"]) == 1000
    assert "class_count_test" in metrics["metrics"]["calibrated"]
    assert "Already calibrated" not in metrics["verdict"]


def test_calibrated_control_keeps_its_verdict(capsys, tmp_path):
    """The same design with the high-risk rows calibrated too: counts match, the usual reading stands."""
    probs, labels = _rare_positive_files(tmp_path, seed=11, overpredict=1)
    rc, out, err = call(capsys, "calibrate", "--probs", probs, "--labels", labels, "--method", "temperature",
                        "--out", tmp_path / "cal.npz", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    # in-sample (no --holdout): the before side is tested, the after side only shown (audit BK)
    assert metrics["verdict"].startswith("Before temperature scaling the ECE is"), metrics["verdict"]
    assert "no miscalibration detected on 1000 rows" in metrics["verdict"], metrics["verdict"]
    assert "predicted count" not in metrics["verdict"]
    assert metrics["metrics"]["uncalibrated"]["class_count_test"]["rejected"] is False


def test_summarize_counts_are_exact_sums():
    """E_k = sum_i p_ik, O_k, V_k = sum_i p_ik (1 - p_ik), read across score blocks; Bonferroni over K
    classes (one test for two classes)."""
    from softmaxkit.cli import _adapters

    rng = np.random.default_rng(0)
    n, k = 5000, 3  # more than one block of SCORE_BLOCK_ROWS
    z = rng.normal(size=(n, k))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    y[:40] = 0  # 40 extra rows of class 0: its count is off
    summary, _ = _adapters.summarize(y, logits=z, ci=False)
    counts = summary["class_counts"]
    assert [c["class"] for c in counts] == [0, 1, 2]
    np.testing.assert_allclose([c["expected"] for c in counts], p.sum(axis=0), rtol=1e-12)
    assert [c["observed"] for c in counts] == np.bincount(y, minlength=k).tolist()
    test = summary["class_count_test"]
    assert test["tests"] == 3
    worst = min(counts, key=lambda c: c["p"])
    assert test["class"] == worst["class"] and test["p_adjusted"] == pytest.approx(min(1.0, 3 * worst["p"]))


def test_evaluate_says_when_a_class_count_is_off(capsys, tmp_path):
    """evaluate has no verdict: it recorded the count test in JSON only. It now says it under the table,
    naming the class; a calibrated control says nothing."""
    probs, labels = _rare_positive_files(tmp_path, seed=11, overpredict=4)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels)
    assert rc == 0, err
    assert "The predicted count of class 'yes' is off: 32.3 expected, 20 observed" in out, out
    assert "too high on average" in out
    calibrated = tmp_path / "calibrated"
    calibrated.mkdir()
    probs, labels = _rare_positive_files(calibrated, seed=11, overpredict=1)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels)
    assert rc == 0, err
    assert "predicted count is off" not in out, out
