"""A conformal predictor fitted on calibrated probabilities, then used where the sets are made from the model's
own scores (audit BV: ``predict --calibrator`` output given to ``calibrate --conformal``; ``predict --calibrator
--conformal`` then wrote 90% sets covering 0.669, exit 0, without a word). ``calibrate --conformal`` saves the
top-class probabilities of the rows it fits on, and predict, apply and evaluate test new rows' scores against
them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call

pytest.importorskip("scipy")
WARN = "softmaxkit: warning: "
K = 4
CLASSES = ("--classes", "a,b,c,d")


def _over_confident(n: int, seed: int):
    """Logits 2.5 times too sharp (temperature scaling fits T near 2.5) and labels drawn from the truth."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, K)) * 1.5
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    return 2.5 * z, np.minimum(y, K - 1)


def _ok(capsys, *argv) -> tuple[str, str]:
    """Run a command that must succeed: its (stdout, stderr)."""
    rc, out, err = call(capsys, *argv)
    assert rc == 0, err
    return out, err


def _save(tmp_path, name, z, y=None):
    np.save(tmp_path / f"{name}.npy", z)
    if y is not None:
        np.save(tmp_path / f"{name}_y.npy", y)
    return tmp_path / f"{name}.npy"


@pytest.fixture()
def chain(capsys, tmp_path):
    """A temperature calibrator, and a conformal predictor fitted on the probabilities it gives."""
    z_cal, y_cal = _over_confident(600, 0)
    z_new, y_new = _over_confident(600, 1)
    cal_logits, new_logits = _save(tmp_path, "cal", z_cal, y_cal), _save(tmp_path, "new", z_new, y_new)
    (tmp_path / "cal_y.csv").write_text("y\n" + "".join(f"{'abcd'[v]}\n" for v in y_cal))
    for argv in [("calibrate", "--logits", cal_logits, "--labels", tmp_path / "cal_y.npy", "--out", tmp_path / "t.npz"),
                 ("apply", tmp_path / "t.npz", "--logits", cal_logits, "--out", tmp_path / "calp.csv", *CLASSES),
                 ("calibrate", "--probs", tmp_path / "calp.csv", "--labels", tmp_path / "cal_y.csv", "--out",
                  tmp_path / "t2.npz", "--conformal", "0.1"),
                 ("calibrate", "--logits", cal_logits, "--labels", tmp_path / "cal_y.npy", "--out",
                  tmp_path / "raw.npz", "--conformal", "0.1")]:
        _ok(capsys, *argv, "-q")
    return tmp_path, new_logits, y_new


def _apply_with_sets(capsys, tmp_path, new_logits, predictor: str) -> str:
    """``apply`` of the temperature calibrator to new logits with 90% sets of ``predictor``: its stderr."""
    return _ok(capsys, "apply", tmp_path / "t.npz", "--logits", new_logits, "--conformal", tmp_path / predictor,
               "--sets", "0.1", "--out", tmp_path / "p.csv", *CLASSES, "-q")[1]


def test_apply_says_the_predictor_looks_fitted_on_calibrated_probabilities(capsys, chain):
    tmp_path, new_logits, y_new = chain
    err = _apply_with_sets(capsys, tmp_path, new_logits, "t2.conformal.npz")
    said = [line for line in err.splitlines() if "looks fitted on calibrated probabilities" in line]
    assert len(said) == 1 and said[0].startswith(WARN + f"--conformal {tmp_path / 't2.conformal.npz'}: ")
    # the sets written are indeed short of the level: the warning is about a real loss of coverage
    import pandas as pd

    sets = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)["set_90"]
    covered = np.mean([("abcd"[t] in s.split("|")) for t, s in zip(y_new, sets)])
    assert covered < 0.85


def test_nothing_is_said_where_the_scores_are_of_the_kind_fitted_on(capsys, chain):
    tmp_path, new_logits, _ = chain
    assert "Kolmogorov-Smirnov" not in _apply_with_sets(capsys, tmp_path, new_logits, "raw.conformal.npz")


def test_evaluate_warns_before_rebuilding_sets_from_unlike_scores(capsys, chain):
    tmp_path, new_logits, y_new = chain
    _ok(capsys, "apply", tmp_path / "t.npz", "--logits", new_logits, "--out", tmp_path / "newp.csv", *CLASSES, "-q")
    (tmp_path / "new_y.csv").write_text("y\n" + "".join(f"{'abcd'[v]}\n" for v in y_new))
    # calibrated probabilities against the predictor fitted on the raw ones: rebuilt sets are of another coverage
    out, err = _ok(capsys, "evaluate", "--probs", tmp_path / "newp.csv", "--labels", tmp_path / "new_y.csv",
                   "--conformal", tmp_path / "raw.conformal.npz", "--sets", "0.1", "--json")
    assert "are distributed unlike those of the 600 calibration rows it was fitted on" in err
    assert any("Kolmogorov-Smirnov" in w for w in json.loads(out)["warnings"])


def test_the_record_is_saved_with_the_predictor(chain):
    from softmaxkit.io import read_state

    tmp_path = chain[0]
    record = read_state(tmp_path / "raw.conformal.npz")[1]["calibration_top_probabilities"]
    assert record["n"] == 600 and len(record["top"]) == 600 and record["top"] == sorted(record["top"])
    import softmaxkit as sk

    sk.load(tmp_path / "raw.conformal.npz")  # an entry the file names as the caller's: load lets it through
