"""What the CLI shows must be what its numbers support (audit of the printed and HTML wording).

- A paired log-loss change carried by a couple of rows: the symmetric bootstrap-t quantile reached 260
  (resamples missing those rows have a near-zero sd), and ``calibrate`` printed "[-2.6095, +2.5931],
  contains 0" for per-row changes lying in [-0.354, +0.057], where every mean of them lies.
- ``evaluate --report`` said a class's count was off on the terminal but not in report.html.
- "After it the predicted count ... is off" where the count was off before the calibrator too.
- ``explain -- -40 0 40`` printed a probability of 4e-18 as 0.0000 and its log-probability as -0.0000.
"""

from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import call
from test_calibration_in_the_large import _rare_positive_files


def _scored(loss):
    from softmaxkit.cli._evaluation import Scored

    return Scored(key="k", name="n", summary={}, png=None, row_loss=loss)


def _few_rows_carry_it(seed: int = 0):
    """The audit's shape: 36 held-out rows whose changes are ~1e-4 but for two, -0.3544 and +0.0569."""
    rng = np.random.default_rng(seed)
    before = rng.uniform(0.05, 1.0, 36)
    d = rng.normal(0.0, 2e-4, 36)
    d[3], d[17] = -0.3544, 0.0569
    return before, before + d


def test_change_carried_by_two_rows_is_not_measurable():
    """The interval never leaves [min d, max d]; where the bootstrap-t would (it gave [-2.44, +2.42]
    here), the reading says the change is not measurable instead of "within the noise"."""
    from softmaxkit.cli._evaluation import paired_loss_change

    before, after = _few_rows_carry_it()
    d = after - before
    change = paired_loss_change(_scored(before), _scored(after))
    lo, hi = change["ci95"]
    assert d.min() <= lo <= hi <= d.max(), (lo, hi)
    assert change["reading"] == "not measurable"
    assert change["carried_by"] == 2


def test_not_measurable_verdict_prints_no_fake_interval():
    """The sentence says why, gives the range of the per-row changes, and claims no 95% CI."""
    from softmaxkit.cli._evaluation import paired_loss_change, verdict

    before, after = _few_rows_carry_it()
    change = paired_loss_change(_scored(before), _scored(after))
    b = _summary(ece=0.05, floor=0.06, ci=[0.0, 0.1], log_loss=float(before.mean()))
    a = _summary(ece=0.04, floor=0.06, ci=[0.0, 0.09], log_loss=float(after.mean()))
    text, _ = verdict(b, a, change="temperature scaling", loss_change=change)
    assert "not measurable" in text and "2 of 36 rows" in text, text
    assert "[-0.3544, +0.0569]" in text, text
    assert "95% CI" not in text.split("Log-loss", 1)[1], text
    assert "within the noise" not in text


def test_same_sign_changes_keep_their_reading_within_the_range():
    """Every row better, one far more than the rest: every resampled mean is negative, so the clipped
    interval (all of it below 0) reads better, and its ends are rows' changes, not +-inf."""
    from softmaxkit.cli._evaluation import paired_loss_change

    rng = np.random.default_rng(1)
    before = rng.uniform(0.5, 1.0, 40)
    d = -rng.uniform(1e-4, 2e-4, 40)
    d[5] = -0.4
    after = before + d
    d = after - before  # as paired_loss_change computes it, to the last bit
    change = paired_loss_change(_scored(before), _scored(after))
    lo, hi = change["ci95"]
    assert d.min() <= lo <= hi <= d.max() < 0
    assert change["reading"] == "better"


def test_ordinary_change_stays_within_the_noise():
    """Spread-out changes around 0: the usual symmetric bootstrap-t interval and reading."""
    from softmaxkit.cli._evaluation import paired_loss_change

    rng = np.random.default_rng(2)
    before = rng.uniform(0.1, 2.0, 60)
    d = rng.normal(0.0, 0.1, 60)
    change = paired_loss_change(_scored(before), _scored(before + d))
    lo, hi = change["ci95"]
    assert change["reading"] == "within the noise" and d.min() < lo < 0 < hi < d.max()
    assert "carried_by" not in change


def _summary(*, ece, floor, ci, log_loss, n=1000, count=None):
    """A :func:`softmaxkit.cli._adapters.summarize`-like dict with what :func:`verdict` reads."""
    out = {"ece": ece, "ece_noise_floor": floor, "ece_ci": ci, "n": n, "log_loss": log_loss, "accuracy": 0.9,
           "majority_rate": 0.5, "class_count_test": None}
    if count is not None:
        expected, observed = count
        out["class_count_test"] = {"class": 1, "expected": expected, "observed": observed, "z": -3.0,
                                   "p": 0.002, "tests": 1, "p_adjusted": 0.002, "rejected": True}
    return out


@pytest.mark.parametrize("ece_after", [0.01, 0.08])  # under its floor (0.03), above it
def test_count_off_before_and_after_is_still_off(ece_after):
    """Off before the calibrator and after it: "still off", and the calibrator did not fix it; never
    "After it the predicted count ... is off", which reads as if calibrating caused it."""
    from softmaxkit.cli._evaluation import verdict

    b = _summary(ece=0.07, floor=0.03, ci=[0.04, 0.1], log_loss=0.3, count=(32.3, 20))
    a = _summary(ece=ece_after, floor=0.03, ci=[0.0, 0.09], log_loss=0.29, count=(30.1, 20))
    text, tone = verdict(b, a, change="temperature scaling")
    assert "After it the predicted count" not in text, text
    assert "still off after temperature scaling" in text and "did not fix" in text, text
    assert "30.1 expected, 20 observed" in text and tone == "warn"


def test_count_off_only_after_says_after_it():
    """Off after only: the calibrator's doing, said as before."""
    from softmaxkit.cli._evaluation import verdict

    b = _summary(ece=0.07, floor=0.03, ci=[0.04, 0.1], log_loss=0.3)
    a = _summary(ece=0.08, floor=0.03, ci=[0.05, 0.11], log_loss=0.31, count=(30.1, 20))
    text, _ = verdict(b, a, change="temperature scaling")
    assert "After it the predicted count of class 1 is off" in text and "still" not in text, text


def test_evaluate_report_says_when_a_class_count_is_off(capsys, tmp_path):
    """The terminal said it under the table; report.html left it out. A calibrated control says nothing."""
    probs, labels = _rare_positive_files(tmp_path, seed=11, overpredict=4)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--report", tmp_path / "rep")
    assert rc == 0, err
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "The predicted count of class" in out
    assert "The predicted count of class" in page and "32.3 expected, 20 observed" in page
    control = tmp_path / "control"
    control.mkdir()
    probs, labels = _rare_positive_files(control, seed=11, overpredict=1)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--report", control / "rep")
    assert rc == 0, err
    assert "predicted count of class" not in (control / "rep" / "report.html").read_text()


def test_explain_shows_tiny_probabilities():
    """exp(-40) = 4.2e-18 printed as 0.0000, its class's neighbour's log-probability as -0.0000."""
    import contextlib
    import io

    from softmaxkit.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["explain", "--", "-40", "0", "40"]) == 0
    out = buf.getvalue()
    assert "1.8e-35" in out and "4.2e-18" in out and "-4.2e-18" in out, out
    assert "-0.0000" not in out and "-80.0000" in out and "-40.0000" in out, out
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["explain", "--", "0", "-40"]) == 0
    assert "= 4.2e-18" in buf.getvalue(), buf.getvalue()  # the logistic line too
