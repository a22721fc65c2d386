"""A level whose measured set coverage falls short of it is said by calibrate and evaluate, as by the demo.

Audit B: ``calibrate --holdout 0.5 --conformal-score aps --seed 0`` printed "90% coverage 0.826 [0.776,
0.866]" with no comment, where ``demo`` adds a sentence (its Wilson interval lies wholly below the level).
Here the measured rows' labels are shuffled against their logits (a shift the calibration rows did not
have), so the 90% sets cover about half of them: a shortfall far outside any noise.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits

pytest.importorskip("sklearn")

N, K = 600, 3
SAID = "At 90% the sets held the true class for"


def _shortfall_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("softmaxkit: warning: " + SAID)]


def test_calibrate_holdout_says_coverage_below_the_level(tmp_path, capsys):
    from softmaxkit.cli._common import holdout_rows

    z, y = decent_logits(N, K, seed=3)
    _, held = holdout_rows(y, 0.5, 0)
    z = z.copy()
    # the held-out rows no longer match their logits (the logits move: the split follows the labels)
    z[held] = z[np.random.default_rng(4).permutation(held)]
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                        "--out", tmp_path / "c.npz", "--holdout", "0.5", "--seed", "0", "--conformal", "0.1",
                        "--report", tmp_path / "rep", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    level = metrics["conformal"]["levels"]["90%"]
    assert level["coverage_ci"][1] < 0.9  # the case this test is about
    assert metrics["conformal"]["short_of_level"] == ["90%"]
    lines = _shortfall_lines(err)
    assert len(lines) == 1, err
    assert f"of the {len(held)} rows measured" in lines[0] and "below the 90% level" in lines[0]
    assert [w for w in metrics["warnings"] if w.startswith(SAID)] == [lines[0].removeprefix("softmaxkit: warning: ")]
    page = html.unescape((tmp_path / "rep" / "report.html").read_text())
    assert "below the 90% level" in page and "on average over calibration draws" in page


def test_evaluate_says_coverage_below_the_level_and_not_when_it_holds(tmp_path, capsys):
    from softmaxkit.conformal import ConformalClassifier

    z, y = decent_logits(2 * N, K, seed=5)
    rng = np.random.default_rng(6)
    order = rng.permutation(2 * N)
    cal, test = order[:N], order[N:]
    ConformalClassifier(random_state=0).fit(z[cal], y[cal]).save(tmp_path / "cp.npz")
    np.save(tmp_path / "z.npy", z[test])
    np.save(tmp_path / "y.npy", y[test])
    np.save(tmp_path / "shuffled.npy", rng.permutation(y[test]))
    common = ["evaluate", "--logits", tmp_path / "z.npy", "--conformal", tmp_path / "cp.npz", "--sets", "0.1,0.05"]

    rc, out, err = call(capsys, *common, "--labels", tmp_path / "y.npy", "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["conformal"]["levels"]["90%"]["coverage_ci"][1] >= 0.9  # exchangeable rows: no shortfall
    assert metrics["conformal"]["short_of_level"] == [] and not _shortfall_lines(err), err

    rc, out, err = call(capsys, *common, "--labels", tmp_path / "shuffled.npy", "--json",
                        "--report", tmp_path / "rep")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["conformal"]["short_of_level"] == ["90%", "95%"]
    lines = _shortfall_lines(err)
    assert len(lines) == 1 and f"of the {N} rows measured" in lines[0], err
    assert any(line.startswith("softmaxkit: warning: At 95% the sets") for line in err.splitlines()), err
    page = html.unescape((tmp_path / "rep" / "report.html").read_text())
    assert "below the 90% level" in page and "below the 95% level" in page
