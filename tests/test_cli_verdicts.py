"""Verdicts that say only what their own numbers support (audit of the report/stdout wording).

- A log-loss change is called better or worse only when a paired bootstrap interval of the per-row
  change excludes 0; otherwise it is within the noise, with the interval printed and in metrics.json.
- ``calibrate`` without ``--holdout`` measures on the fitting rows: never the good tone, and it says so.
- The demo's temperature card says what T says about the calibration rows, and when the held-out test
  disagrees it says so instead of asserting the raw model was over-confident.
- The demo's case table names its columns (the last two are the 90%/95% prediction sets).
- A temperature on its upper bound with raw accuracy at or below chance: the logits look reversed or
  uninformative, not "calibrate on more data".
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns


# --------------------------------------------------------------------------- demo runs, once each


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory) -> dict:
    """Breast cancer at seed 0 (log-loss 0.0927 -> 0.08, paired 95% CI containing 0) and seed 1
    (T = 1.59 while the raw ECE is under its noise floor and scaling raises the test log-loss by half)."""
    from softmaxkit.cli import main

    work = tmp_path_factory.mktemp("verdict_demo")
    runs = {}
    for seed in (0, 1):
        out = work / f"seed{seed}"
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["demo", "--seed", str(seed), "--out", str(out)])
        assert rc == 0
        runs[seed] = {"stdout": buf.getvalue(), "page": (out / "report.html").read_text(),
                      "metrics": json.loads((out / "metrics.json").read_text())}
    return runs


def test_demo_log_loss_gain_within_the_noise_is_not_called_better(demo_runs):
    """Audit: "Log-loss went from 0.0927 to 0.0810 (better)" while the paired bootstrap CI of the per-row
    change contained 0."""
    run = demo_runs[0]
    test = run["metrics"]["test"]
    before, after = test["uncalibrated"]["log_loss"], test["temperature_scaled"]["log_loss"]
    assert after < before and f"{before:.4f}" in run["page"] and f"{after:.4f}" in run["page"]
    assert "(better" not in run["page"]
    assert "within the noise" in run["page"]
    change = run["metrics"]["log_loss_change"]
    lo, hi = change["ci95"]
    assert lo < 0 < hi
    assert change["after_minus_before"] == pytest.approx(
        run["metrics"]["test"]["temperature_scaled"]["log_loss"] - run["metrics"]["test"]["uncalibrated"]["log_loss"],
        abs=1e-12)
    assert f"[{lo:+.4f}, {hi:+.4f}]" in run["page"]


def test_demo_temperature_card_does_not_assert_what_the_test_rows_contradict(demo_runs):
    """Audit: "T = 1.99 — T > 1: the raw model was over-confident" on a page whose held-out verdict says the
    raw ECE was under its noise floor and scaling doubled the log-loss."""
    run = demo_runs[1]
    assert run["metrics"]["temperature"] > 1.5
    assert "the raw model was over-confident" not in run["page"]
    assert "on the calibration rows the raw model looked over-confident" in run["page"]
    assert "on the test" in run["page"] and "made the probabilities measurably worse" in run["page"]


def test_demo_case_table_names_its_columns(demo_runs):
    """Audit: "(last column: after temperature scaling)" while the last two columns are the 90%/95% sets."""
    for run in demo_runs.values():
        assert "last column" not in run["stdout"] and "last column" not in run["page"]
        assert "P(truth) after T" in run["stdout"]
        assert "\u201cP(truth) after T\u201d" in run["page"] and "\u201cset at\u201d columns" in run["page"]
        assert "set at 90%" in run["stdout"]


# --------------------------------------------------------------------------- verdict(), unit level


def _scored(losses: np.ndarray, key: str):
    from softmaxkit.cli._evaluation import Scored

    summary = {"n": len(losses), "ece": 0.03, "ece_ci": [0.01, 0.06], "ece_noise_floor": 0.02,
               "log_loss": float(np.mean(losses)), "accuracy": 0.9, "majority_rate": 0.5}
    return Scored(key=key, name=key, summary=summary, png=None, row_loss=losses)


def test_paired_interval_decides_better_worse_or_noise():
    from softmaxkit.cli._evaluation import paired_loss_change, verdict

    rng = np.random.default_rng(3)
    before = rng.exponential(0.3, 400)
    for shift, word in ((-0.1, "(better"), (0.1, "(worse"), (0.0, "within the noise")):
        after = np.maximum(before + shift + rng.normal(0, 0.02, 400), 0)
        b, a = _scored(before, "b"), _scored(after, "a")
        change = paired_loss_change(b, a)
        text, tone = verdict(b.summary, a.summary, change="temperature scaling", loss_change=change)
        assert word in text, text
        assert "[" in text and "]" in text
        if word == "(worse":
            assert "better" not in text and tone != "good"
    # deterministic: the same rows give the same interval
    assert paired_loss_change(b, a) == paired_loss_change(b, a)


def test_paired_interval_with_infinite_rows():
    """A row lost entirely (probability 0 on the truth) gives an infinite per-row loss: the interval still
    comes out, and a change that loses a row is never called better."""
    from softmaxkit.cli._evaluation import paired_loss_change, verdict

    rng = np.random.default_rng(4)
    before = rng.exponential(0.3, 200)
    after = before * 0.5
    after[7] = np.inf
    b, a = _scored(before, "b"), _scored(after, "a")
    change = paired_loss_change(b, a)
    assert change["ci95"][1] == np.inf
    text, tone = verdict(b.summary, a.summary, change="isotonic calibration", loss_change=change)
    assert "better" not in text and tone != "good"
    # The evidence named is the lost row, not the interval, which reaches +inf and may hold 0 (audit:
    # "worse: paired bootstrap 95% CI ... [-0.2812, +inf]").
    assert change["rows_lost"] == 1
    assert "(worse: 1 of 200 rows get probability 0 on their true class after, none before)" in text, text
    assert "CI" not in text.split("Log-loss")[1]
    # Audit: one lost row of 500 read "within the noise"; it shows the expected loss after is infinite.
    for n_rows in (500, 50_000):  # exact and count-based bootstrap
        before = rng.exponential(0.3, n_rows)
        after = before * 0.95
        after[0] = np.inf
        assert paired_loss_change(_scored(before, "b"), _scored(after, "a"))["reading"] == "worse"
        assert paired_loss_change(_scored(after, "b"), _scored(before, "a"))["reading"] == "better"
    before = rng.exponential(0.3, 200)
    after = before * 0.5
    both = before.copy()
    both[3] = after[3] = np.inf  # lost before and after: no change on that row, not NaN
    change = paired_loss_change(_scored(both, "b"), _scored(after, "a"))
    assert not np.isnan(change["ci95"]).any()
    # large n: the count-based bootstrap
    big_b = rng.exponential(0.3, 50_000)
    big_a = big_b - 0.01
    change = paired_loss_change(_scored(big_b, "b"), _scored(big_a, "a"))
    assert change["ci95"][1] < 0 and change["ci95"][0] == pytest.approx(-0.01, abs=1e-3)


# --------------------------------------------------------------------------- calibrate in-sample


@pytest.fixture(scope="module")
def already_calibrated(tmp_path_factory) -> Path:
    """The audit's case: 150 rows of 4-class logits whose labels are drawn from their own softmax."""
    from scipy.special import softmax

    work = tmp_path_factory.mktemp("verdict_cal")
    rng = np.random.default_rng(7)
    n, k = 150, 4
    z = rng.normal(0, 1.0, (n, k))
    y = np.array([rng.choice(k, p=r) for r in softmax(z, 1)])
    np.save(work / "logits.npy", z)
    np.save(work / "labels.npy", y)
    return work


def test_calibrate_in_sample_gain_is_not_called_better(capsys, already_calibrated):
    """Audit: matrix scaling, measured on its own fitting rows, 1.0933 -> 1.0582 "(better)"; with
    --holdout 0.5 it is worse."""
    d = already_calibrated
    rc, out, err = call(capsys, "calibrate", "--logits", d / "logits.npy", "--labels", d / "labels.npy",
                        "--method", "matrix", "--out", d / "m.npz", "--report", d / "rep")
    assert rc == 0, err
    assert "(better" not in out
    caveat = "measured on the rows it was fitted on, not a test; use --holdout"
    assert caveat in out
    page = (d / "rep" / "report.html").read_text()
    assert caveat in page and "(better" not in page
    assert '<div class="note good">' not in page and '<div class="card good"><div class="label">ECE after' not in page
    metrics = json.loads((d / "rep" / "metrics.json").read_text())
    assert "ci95" in metrics["log_loss_change"]


def test_calibrate_in_sample_is_never_the_good_tone():
    from softmaxkit.cli._evaluation import verdict

    before = {"n": 500, "ece": 0.20, "ece_ci": [0.15, 0.25], "ece_noise_floor": 0.02, "log_loss": 0.9}
    after = {"n": 500, "ece": 0.01, "ece_ci": [0.0, 0.03], "ece_noise_floor": 0.02, "log_loss": 0.5}
    text, tone = verdict(before, after, change="matrix scaling")
    assert tone == "good"
    text, tone = verdict(before, after, change="matrix scaling", in_sample=True)
    assert tone != "good" and "measured on the rows it was fitted on" in text


# --------------------------------------------------------------------------- reversed logits


def test_temperature_on_its_upper_bound_with_reversed_logits(capsys, tmp_path):
    """Labels that are the argmin of the logits: T runs to its upper bound and raw accuracy is below chance.
    More calibration data would not help: the logits are reversed (or say nothing about the labels)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 3))
    y = np.argmin(z, axis=1)
    write_columns(tmp_path / "z.csv", {f"z{k}": z[:, k] for k in range(3)})
    write_columns(tmp_path / "y.csv", {"y": y})
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "z.csv", "--labels", tmp_path / "y.csv",
                        "--out", tmp_path / "c.npz")
    assert rc == 0, err
    assert "on its bound" in out
    assert "more (or harder)" not in out
    assert "reversed" in out and "no information about the labels" in out


def test_temperature_on_its_lower_bound_still_asks_for_harder_data():
    from softmaxkit.cli._evaluation import verdict

    before = {"n": 15, "ece": 0.05, "ece_ci": [0.0, 0.1], "ece_noise_floor": 0.06, "log_loss": 0.30,
              "accuracy": 1.0, "majority_rate": 0.6}
    after = dict(before, log_loss=0.01)
    text, tone = verdict(before, after, change="temperature scaling", params={"temperature": 1e-10, "at_bound": True})
    assert tone == "warn" and "more (or harder)" in text and "reversed" not in text


def test_fit_calibrate_reads_its_log_loss_change_through_the_paired_interval(capsys, tmp_path):
    """fit --calibrate passes the paired interval to the verdict (it read "no paired interval") and
    writes it to metrics.json, as calibrate and demo do."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    write_columns(tmp_path / "iris.csv", {**{f"f{j}": X[:, j] for j in range(4)}, "species": y})
    rc, _, err = call(capsys, "fit", tmp_path / "iris.csv", "--target", "species", "--calibrate", "temperature",
                      "--out", tmp_path / "m.npz", "--report", tmp_path / "rep")
    assert rc == 0, err
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    change = metrics["log_loss_change"]
    assert change["n"] == metrics["n_test"] and change["ci95"][0] <= change["after_minus_before"] <= change["ci95"][1]
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Log-loss went from" in page and "no paired interval" not in page
