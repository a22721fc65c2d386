"""A verdict never opens with good news over a measured worse, and never reads a change from a handful of rows.

Audits (breast cancer, digits; the numbers are theirs):

- ``calibrate --holdout 0.5`` on 10 rows of an MLP's logits: "Already calibrated: ECE 0.0072 before and 0.1179
  after ... Log-loss went from 0.0073 to 0.1307 (worse: [+0.0779, +0.2143])", warnings [], exit 0; ``fit
  --calibrate temperature`` printed "use it with: ... --calibrator" over a held-out log-loss read worse.
- ``fit --holdout 0.001`` held out 1 row: ci95 [1.57e-06, 1.57e-06] read "worse"; ``calibrate --holdout 0.02``
  read "worse" from 2 rows. A 15-row holdout read "better" for vector scaling's 20 parameters while unseen
  rows got worse: the rows-per-parameter warning now stands under --holdout too.
- ``demo --seed 33``: every calibration row ranked right, T set by the prior alone, unsaid; no "warnings" in
  metrics.json; 95% sets covering 0.904 (Wilson CI below 0.95) beside "the allowed 5% of misses".
- ``demo --out ""`` wrote into the current directory; ``demo --out DIR`` with a foreign file said "--report".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit.data import write_columns


def _warnings(err: str) -> list[str]:
    return [line.removeprefix("softmaxkit: warning: ") for line in err.splitlines()
            if line.startswith("softmaxkit: warning:")]


# --------------------------------------------------------------------------- verdict(), unit level


def _summary(ece, lo, hi, floor, loss, n=20):
    return {"n": n, "ece": ece, "ece_ci": [lo, hi], "ece_noise_floor": floor, "log_loss": loss,
            "accuracy": 1.0, "majority_rate": 0.6}


def test_measured_worse_leads_the_verdict():
    """The audit's numbers: both ECEs under their floors, the log-loss measured worse."""
    from softmaxkit.cli._evaluation import verdict

    before, after = _summary(0.0072, 0.0, 0.05, 0.20, 0.0073), _summary(0.1179, 0.0, 0.30, 0.20, 0.1307)
    change = {"reading": "worse", "ci95": [0.0779, 0.2143], "n": 20, "in_sample": False}
    text, tone = verdict(before, after, change="temperature scaling", loss_change=change)
    assert text.startswith("Temperature scaling made it worse: keep the raw model."), text
    assert "Already calibrated" not in text and tone == "warn"
    assert "(worse: paired bootstrap 95% CI of the mean per-row change [+0.0779, +0.2143])" in text
    higher = dict(change, reading="higher", in_sample=True)
    text, tone = verdict(before, after, change="temperature scaling", loss_change=higher, in_sample=True)
    assert text.startswith("Temperature scaling raised the log-loss even on the rows it was fitted on: keep the raw "
                           "model."), text
    assert "Already calibrated" not in text and tone == "warn"


def test_a_handful_of_rows_is_too_few_to_tell():
    from softmaxkit.cli._evaluation import MIN_PAIRED_ROWS, Scored, paired_loss_change, verdict

    def scored(losses, key):
        return Scored(key=key, name=key, summary=_summary(0.01, 0.0, 0.02, 0.3, float(np.mean(losses)),
                                                          n=len(losses)), png=None, row_loss=losses)

    rng = np.random.default_rng(0)
    for n in (1, 2, MIN_PAIRED_ROWS - 1):
        before = rng.exponential(0.1, n)
        b, a = scored(before, "b"), scored(before + 0.05, "a")
        change = paired_loss_change(b, a)
        assert change["reading"] == "too few rows to tell" and change["n"] == n
        text, tone = verdict(b.summary, a.summary, change="temperature scaling", loss_change=change)
        assert text.startswith(f"Too few rows to tell: temperature scaling was measured on {n} row"), text
        assert "Already calibrated" not in text and "(worse" not in text and tone != "good"
    before = rng.exponential(0.1, MIN_PAIRED_ROWS)
    assert paired_loss_change(scored(before, "b"), scored(before + 0.05, "a"))["reading"] == "worse"
    # A row given probability 0 after (and not before) is evidence however few the rows.
    after = before[:3].copy()
    after[0] = np.inf
    assert paired_loss_change(scored(before[:3], "b"), scored(after, "a"))["reading"] == "worse"


def test_rows_per_parameter_warning_stands_under_holdout():
    from softmaxkit.cli._evaluation import fit_warnings

    params = {"method": "VectorScaling", "n_parameters": 20, "at_bound": False}
    said = fit_warnings(params, change="vector scaling", n_fit=15, in_sample=False)
    assert len(said) == 1 and "fitted 20 parameters on 15 rows" in said[0] and "use --holdout" not in said[0]
    assert fit_warnings(params, change="vector scaling", n_fit=200, in_sample=False) == []


# --------------------------------------------------------------------------- calibrate


@pytest.fixture
def worse_case(tmp_path):
    """Logits whose fitting rows (the split calibrate makes with --holdout 0.5, seed 0) are a third wrong at
    high confidence, so any fitted temperature is large, while the held-out rows are all right: scaling
    them by that T raises their log-loss on every row."""
    from softmaxkit.cli._common import holdout_rows

    n = 60
    y = np.arange(n) % 2
    fit_rows, _ = holdout_rows(y, 0.5, 0)
    rng = np.random.default_rng(1)
    margin = rng.uniform(3.0, 5.0, n)
    z = np.column_stack([-margin / 2, margin / 2])
    z[y == 0] *= -1  # the truth has the larger logit ...
    flip = fit_rows[::3]
    z[flip] *= -1  # ... except on a third of the fitting rows
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


def _calibrate_worse(capsys, d, *extra):
    rc, out, err = call(capsys, "calibrate", "--logits", d / "z.npy", "--labels", d / "y.npy", "--holdout", "0.5",
                        "--out", d / "t.npz", "--report", d / "rep", "--json", *extra)
    assert rc == 0, err
    return json.loads(out), err


def test_calibrate_measured_worse_verdict(capsys, worse_case):
    metrics, _ = _calibrate_worse(capsys, worse_case)
    assert metrics["log_loss_change"]["reading"] == "worse"
    assert metrics["verdict"].startswith("Temperature scaling made it worse: keep the raw model."), metrics["verdict"]
    page = (worse_case / "rep" / "report.html").read_text()
    assert "made it worse: keep the raw model" in page and "Already calibrated" not in page


def test_calibrate_measured_worse_is_a_warning(capsys, worse_case):
    metrics, err = _calibrate_worse(capsys, worse_case)
    said = [w for w in metrics["warnings"] if "made the log-loss measurably worse" in w]
    assert len(said) == 1 and said[0] in _warnings(err)


def test_calibrate_on_two_rows_is_too_few_to_tell(capsys, worse_case):
    d = worse_case
    rc, out, err = call(capsys, "calibrate", "--logits", d / "z.npy", "--labels", d / "y.npy", "--holdout", "0.04",
                        "--out", d / "t.npz", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["n_evaluated"] == 2
    assert metrics["log_loss_change"]["reading"] == "too few rows to tell"
    assert metrics["verdict"].startswith("Too few rows to tell"), metrics["verdict"]


# --------------------------------------------------------------------------- fit --calibrate


@pytest.fixture
def blobs(tmp_path):
    rng = np.random.default_rng(3)
    y = np.arange(200) % 2
    X = rng.normal(size=(200, 2)) + 1.5 * y[:, None]
    write_columns(tmp_path / "blobs.csv", {"f0": X[:, 0], "f1": X[:, 1], "y": y})
    return tmp_path / "blobs.csv"


def test_fit_calibrate_measured_worse_drops_the_advice(capsys, tmp_path, blobs, monkeypatch):
    """A temperature of 10 on a fair logistic model: the held-out log-loss is measurably worse. fit must not
    advise using the calibrator, must lead its verdict with it, and list it under "warnings"."""
    from softmaxkit.cli import _adapters

    real = _adapters.cross_fit_calibrator

    def too_soft(*args, **kwargs):
        model, calibrator, folds = real(*args, **kwargs)
        calibrator.beta_ = 0.1  # T = 10
        return model, calibrator, folds

    monkeypatch.setattr(_adapters, "cross_fit_calibrator", too_soft)
    common = ("fit", blobs, "--target", "y", "--calibrate", "temperature", "--alpha", "0.1",
              "--out", tmp_path / "m.npz", "--report", tmp_path / "rep")
    rc, out, err = call(capsys, *common)
    assert rc == 0, err
    assert "use it with" not in out and "DATA --calibrator" not in out and "keep the raw model (predict" in out
    assert "made it worse: keep the raw model" in out
    rc, out, err = call(capsys, *common, "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["log_loss_change"]["reading"] == "worse"
    said = [w for w in metrics["warnings"] if "made the log-loss measurably worse" in w]
    assert len(said) == 1 and said[0] in _warnings(err)
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Temperature scaling made it worse: keep the raw model." in page and "Already calibrated" not in page


def test_fit_refuses_a_holdout_of_one_row(capsys, tmp_path, blobs):
    rc, _, err = call(capsys, "fit", blobs, "--target", "y", "--holdout", "0.001", "--out", tmp_path / "m.npz",
                      "--no-report")
    assert rc == 1
    assert "--holdout 0.001 of 200 rows leaves" in error_line(err) and "at least 2" in error_line(err)


def test_fit_on_a_few_held_out_rows_is_too_few_to_tell(capsys, tmp_path, blobs):
    rc, out, err = call(capsys, "fit", blobs, "--target", "y", "--holdout", "0.02", "--calibrate", "temperature",
                        "--alpha", "0.1", "--out", tmp_path / "m.npz", "--report", tmp_path / "rep", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["n_test"] == 4 and metrics["log_loss_change"]["reading"] == "too few rows to tell"
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Too few rows to tell" in page


# --------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo33(tmp_path_factory):
    """Breast cancer at seed 33: all 114 calibration rows ranked right; the 95% sets cover 0.904 of the test
    rows, Wilson 95% CI below 0.95."""
    import contextlib
    import io

    from softmaxkit.cli import main

    out = tmp_path_factory.mktemp("demo33") / "d"
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main(["demo", "--seed", "33", "--out", str(out)])
    assert rc == 0
    return {"stdout": buf.getvalue(), "stderr": err.getvalue(), "page": (out / "report.html").read_text(),
            "metrics": json.loads((out / "metrics.json").read_text())}


def test_demo_says_when_the_prior_alone_set_t(demo33):
    import html

    metrics, page = demo33["metrics"], html.unescape(demo33["page"])
    said = [w for w in metrics["warnings"] if "ranked right" in w and "prior alone" in w]
    assert len(said) == 1, metrics["warnings"]
    assert "looked about right" not in page
    assert "set by the prior alone" in page


def test_demo_coverage_short_of_its_level_is_said(demo33):
    import html

    level = demo33["metrics"]["conformal"]["levels"]["95%"]
    assert level["coverage_ci"][1] < level["target_coverage"]  # the case this test is about
    page = html.unescape(demo33["page"])
    assert "below the 95% level" in page and "on average over calibration draws" in page


def test_demo_measured_worse_is_a_warning(tmp_path, capsys):
    """Seed 1: T = 1.99 doubles the test log-loss (tests/test_cli_verdicts.py)."""
    rc, _, err = call(capsys, "demo", "--seed", "1", "--out", tmp_path / "d")
    assert rc == 0, err
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert metrics["log_loss_change"]["reading"] == "worse"
    assert [w for w in metrics["warnings"] if "made the log-loss measurably worse" in w]
    page = (tmp_path / "d" / "report.html").read_text()
    assert "Temperature scaling made it worse: keep the raw model." in page
    # Within the noise nothing is marked green; here the log-loss change is measured, so the better one is.
    table = page.split("Held-out performance", 1)[1].split("</table>", 1)[0]
    assert 'class="good num"' in table


def test_demo_table_marks_no_winner_within_the_noise(tmp_path, capsys):
    """Seed 0: log-loss 0.0927 -> 0.0810 within the noise, ECE intervals overlapping: no green cell."""
    rc, _, err = call(capsys, "demo", "--seed", "0", "--out", tmp_path / "d")
    assert rc == 0, err
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert metrics["log_loss_change"]["reading"] == "within the noise"
    page = (tmp_path / "d" / "report.html").read_text()
    table = page.split("Held-out performance", 1)[1].split("</table>", 1)[0]
    assert "good" not in table, table


def test_demo_out_is_checked_as_out(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:  # a usage error: argparse exits 2
        call(capsys, "demo", "--out", "", "-q")
    assert exit_.value.code == 2 and "--out: empty directory name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "report.html").write_text("mine")
    rc, _, err = call(capsys, "demo", "--out", tmp_path / "foreign", "-q")
    assert rc == 1 and error_line(err).startswith(f"softmaxkit: error: --out {tmp_path / 'foreign'}:"), err
    assert (tmp_path / "foreign" / "report.html").read_text() == "mine"
