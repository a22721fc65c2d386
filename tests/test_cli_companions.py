"""Companion files (``MODEL.calibrator.npz``, ``OUT.conformal.npz``) are removed only when they provably
belong to the file a run replaces (audit R: a re-fit deleted a calibrator it had never written, exit 0).

The legitimate removals (``fit --calibrate`` then ``fit`` on the same ``--out``; ``calibrate --conformal``
then ``calibrate`` on the same ``--out``) are tested in ``test_cli_round_ids.py``.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns

pytest.importorskip("sklearn")

N, K = 90, 3


def _logits(seed, shift):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), N // K)
    z = rng.normal(size=(N, K))
    z[np.arange(N), y] += shift
    return z, y


@pytest.fixture()
def scores(tmp_path):
    """Two logit files of different sharpness (so their temperatures differ) and their labels."""
    z, y = _logits(7, 2.5)
    z2, _ = _logits(8, 5.0)
    a = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    b = write_columns(tmp_path / "z2.csv", {f"logit_{j}": z2[:, j] for j in range(K)})
    return a, b, write_columns(tmp_path / "y.csv", {"label": y})


@pytest.fixture()
def wine(tmp_path):
    from sklearn.datasets import load_wine

    raw = load_wine()
    cols = {name: raw.data[:, j] for j, name in enumerate(raw.feature_names)}
    return write_columns(tmp_path / "wine.csv", {**cols, "target": raw.target})


def _fit(capsys, wine, out, *extra):
    rc, out_text, err = call(capsys, "fit", wine, "--target", "target", "--out", out, "--no-report", "--json",
                             *extra)
    assert rc == 0, err
    return json.loads(out_text), err


# --------------------------------------------------------------------------- fit


def test_fit_to_a_new_path_keeps_a_calibrator_it_did_not_write(capsys, tmp_path, scores, wine):
    """repro_fit_stale.sh: net.npz never existed, so net.calibrator.npz (from 'calibrate') is not its."""
    z, _, y = scores
    cal = tmp_path / "net.calibrator.npz"
    assert call(capsys, "calibrate", "--logits", z, "--labels", y, "--out", cal, "-q")[0] == 0
    before = cal.read_bytes()
    metrics, _ = _fit(capsys, wine, tmp_path / "net.npz")
    assert cal.read_bytes() == before and metrics["removed_stale_calibrator"] is None


def test_refit_keeps_a_calibrator_without_a_model_digest(capsys, tmp_path, scores, wine):
    """The model existed, but a calibrator made by 'calibrate' carries no digest: nothing proves it is its."""
    z, _, y = scores
    model, cal = tmp_path / "net.npz", tmp_path / "net.calibrator.npz"
    _fit(capsys, wine, model)
    assert call(capsys, "calibrate", "--logits", z, "--labels", y, "--out", cal, "-q")[0] == 0
    before = cal.read_bytes()
    metrics, _ = _fit(capsys, wine, model, "--alpha", "100")
    assert cal.read_bytes() == before and metrics["removed_stale_calibrator"] is None


@pytest.mark.parametrize("existed", [False, True])
def test_fit_keeps_a_calibrator_of_another_model_and_warns(capsys, tmp_path, wine, existed):
    other, cal = tmp_path / "other.npz", tmp_path / "net.calibrator.npz"
    _fit(capsys, wine, other, "--calibrate", "temperature")
    shutil.copyfile(tmp_path / "other.calibrator.npz", cal)  # fitted for other.npz, not for any net.npz
    if existed:
        _fit(capsys, wine, tmp_path / "net.npz", "--alpha", "100")
        assert cal.exists()
    before = cal.read_bytes()
    metrics, err = _fit(capsys, wine, tmp_path / "net.npz", "--alpha", "10")
    assert cal.read_bytes() == before and metrics["removed_stale_calibrator"] is None
    warned = [line for line in err.splitlines() if str(cal) in line]
    assert len(warned) == 1 and "another model" in warned[0] and "predict" in warned[0], err


# --------------------------------------------------------------------------- calibrate


def test_calibrate_to_a_new_path_keeps_another_calibrators_predictor(capsys, tmp_path, scores):
    """repro_conf_stale.sh: b.conformal.npz was saved for x.npz; calibrate --out b.npz (new) keeps it."""
    z, z2, y = scores
    x, b, conformal = tmp_path / "x.npz", tmp_path / "b.npz", tmp_path / "b.conformal.npz"
    rc, _, err = call(capsys, "calibrate", "--logits", z, "--labels", y, "--out", x, "--conformal", "0.1",
                      "--conformal-out", conformal, "-q")
    assert rc == 0 and conformal.exists(), err
    before = conformal.read_bytes()
    rc, out, err = call(capsys, "calibrate", "--logits", z2, "--labels", y, "--out", b, "--json", "-q")
    assert rc == 0, err
    assert conformal.read_bytes() == before and json.loads(out)["removed_stale_conformal"] is None
    # b.npz existed this time, but the predictor still belongs to x.npz: kept, with a warning.
    rc, out, err = call(capsys, "calibrate", "--logits", z2, "--labels", y, "--out", b, "--json", "-q")
    assert rc == 0, err
    assert conformal.read_bytes() == before and json.loads(out)["removed_stale_conformal"] is None
    assert any(str(conformal) in line and "another calibrator" in line for line in err.splitlines()), err


def test_calibrate_keeps_a_predictor_without_a_calibrator_digest(capsys, tmp_path, scores):
    """A predictor saved without the record (by the library, or before it existed) is not provably OUT's."""
    from softmaxkit.conformal import ConformalClassifier

    z, _, y = scores
    cal, conformal = tmp_path / "t.npz", tmp_path / "t.conformal.npz"
    assert call(capsys, "calibrate", "--logits", z, "--labels", y, "--out", cal, "-q")[0] == 0
    logits, labels = _logits(7, 2.5)
    ConformalClassifier().fit(logits, labels).save(conformal)
    before = conformal.read_bytes()
    assert call(capsys, "calibrate", "--logits", z, "--labels", y, "--out", cal, "-q")[0] == 0
    assert conformal.read_bytes() == before


def test_calibrate_keeps_the_predictor_of_an_identical_calibrator_of_another_name(capsys, tmp_path, scores):
    """Equal contents give equal digests: a predictor saved with e.npz was removed when x.npz, fitted on
    the same scores (so byte-equal), was replaced (review audit 2). The record holds the name too."""
    logits, _, labels = scores
    e, x, conformal = tmp_path / "e.npz", tmp_path / "x.npz", tmp_path / "x.conformal.npz"
    common = ["--logits", str(logits), "--labels", str(labels), "-q"]
    rc, _, err = call(capsys, "calibrate", *common, "--out", str(e), "--conformal", "0.1", "--conformal-out",
                      str(conformal))
    assert rc == 0, err
    rc, _, err = call(capsys, "calibrate", *common, "--out", str(x))
    assert rc == 0, err
    rc, _, err = call(capsys, "calibrate", *common, "--out", str(x), "--method", "vector")
    assert rc == 0, err
    assert conformal.exists()


def test_calibrate_keeps_the_predictor_of_a_same_named_calibrator_in_another_folder(capsys, tmp_path, scores):
    """a/cal.npz's predictor saved as b/cal.conformal.npz was removed when b/cal.npz, byte-equal to
    a/cal.npz, was replaced (review audit 3): the record holds the calibrator's path, not its name."""
    logits, _, labels = scores
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b, conformal = tmp_path / "a" / "cal.npz", tmp_path / "b" / "cal.npz", tmp_path / "b" / "cal.conformal.npz"
    common = ["--logits", str(logits), "--labels", str(labels), "-q"]
    rc, _, err = call(capsys, "calibrate", *common, "--out", str(a), "--conformal", "0.1", "--conformal-out",
                      str(conformal))
    assert rc == 0, err
    for _ in range(2):
        rc, _, err = call(capsys, "calibrate", *common, "--out", str(b))
        assert rc == 0, err
    assert conformal.exists()
