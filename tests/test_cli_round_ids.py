"""Row ids read as scores, stale companion files, and option spellings (audit A, round of 2026-12-06).

An ``id`` column in a user's own logits file was scored as an 11th class
(digits: accuracy 0.0975 for 0.9575, exit 0); a re-fit without
``--calibrate`` left the old ``MODEL.calibrator.npz``, which ``predict``
then applied to the new model (log-loss 0.396 for 0.265, exit 0).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, sklearn_log_loss
from softmaxkit.data import write_columns

pytest.importorskip("sklearn")

N, K = 90, 3


@pytest.fixture(scope="module")
def scores():
    """Logits of a decent 3-class model, and their labels."""
    return decent_logits(N, K, seed=7)


def _logit_table(z, ids, id_name="id"):
    return {id_name: ids, **{f"c{j}": z[:, j] for j in range(z.shape[1])}}


# --------------------------------------------------------------------------- 1. an id column is not a class


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("id_name, ids", [("id", np.arange(N) + 1000), ("Sample_ID", np.arange(N) + 7)])
def test_a_row_id_in_unprefixed_scores_is_left_out(capsys, tmp_path, scores, suffix, id_name, ids):
    """Named like an id and holding whole numbers: an id, never a class (it used to be read as one more class,
    exit 0; then refused): left out, listed as ignored, and the scores are the other columns."""
    z, y = scores
    path = write_columns(tmp_path / f"z{suffix}", _logit_table(z, ids, id_name))
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, out, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["n_classes"] == K and got["ignored_columns"] == [id_name]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("id_name, ids", [("n", np.arange(N)), ("n", np.arange(1, N + 1))])
def test_a_row_counter_in_unprefixed_scores_is_refused(capsys, tmp_path, scores, suffix, id_name, ids):
    """Holding 0..n-1 / 1..n under a name that is no id's: one line naming file, column and --ignore; it used
    to be read as one more class, exit 0."""
    z, y = scores
    path = write_columns(tmp_path / f"z{suffix}", _logit_table(z, ids, id_name))
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    for command in (["evaluate"], ["calibrate", "--out", tmp_path / "t.npz"]):
        rc, _, err = call(capsys, *command, "--logits", path, "--labels", labels, "-q")
        line = error_line(err)
        assert rc == 1
        assert str(path) in line and repr(id_name) in line and f"--ignore {id_name}" in line
    assert not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ignore_leaves_the_id_out_of_evaluate_calibrate_and_apply(capsys, tmp_path, scores, suffix):
    z, y = scores
    path = write_columns(tmp_path / f"z{suffix}", _logit_table(z, np.arange(N)))
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, out, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--ignore", "id", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["n_classes"] == K and got["ignored_columns"] == ["id"]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    cal = tmp_path / "t.npz"
    rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", labels, "--ignore", "id", "--out", cal, "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", cal, "--logits", path, "--ignore", "id", "--out", tmp_path / "p.csv", "-q")
    assert rc == 0, err
    # a column --ignore names must exist
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--ignore", "idx", "-q")
    assert rc == 1 and "no column 'idx' for --ignore" in error_line(err)


def test_prefixed_scores_keep_their_id_column(capsys, tmp_path, scores):
    """predict-style files (logit_<class>) choose their columns by prefix: an id there is left out as before."""
    z, y = scores
    path = write_columns(tmp_path / "z.csv", {"id": np.arange(N), **{f"logit_{j}": z[:, j] for j in range(K)}})
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, out, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--json")
    assert rc == 0, err
    assert json.loads(out)["n_classes"] == K


def test_npy_scores_with_a_row_number_column_are_refused(capsys, tmp_path, scores):
    z, y = scores
    path = tmp_path / "z.npy"
    np.save(path, np.column_stack([np.arange(N), z]))
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "-q")
    assert rc == 1 and "--ignore 0" in error_line(err)
    rc, out, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--ignore", "0", "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_fit_warns_of_a_feature_that_is_a_row_id(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    # a column that counts the rows under a name that is no id's: a feature, with a warning
    data = write_columns(tmp_path / "d.csv", {"n": np.arange(60), "a": X[:, 0], "b": X[:, 1], "y": y})
    rc, _, err = call(capsys, "fit", data, "--target", "y", "--out", tmp_path / "m.npz", "--no-report", "-q")
    assert rc == 0, err
    assert "softmaxkit: warning:" in err and "'n'" in err and "--ignore n" in err
    rc, _, err = call(capsys, "fit", data, "--target", "y", "--out", tmp_path / "m.npz", "--no-report", "-q",
                      "--ignore", "n")
    assert rc == 0 and "row id" not in err
    # named as an id ('row'): an id, left out of the features, with a warning saying how to keep it
    data = write_columns(tmp_path / "e.csv", {"row": np.arange(60), "a": X[:, 0], "b": X[:, 1], "y": y})
    rc, out, err = call(capsys, "fit", data, "--target", "y", "--out", tmp_path / "m.npz", "--no-report", "--json")
    assert rc == 0, err
    assert "'row'" in err and "left out of the features" in err and "rename" in err
    assert "row" in json.loads(out)["ignored_columns"]


# --------------------------------------------------------------------------- 2. stale companion files


@pytest.fixture()
def wine(tmp_path):
    from sklearn.datasets import load_wine

    raw = load_wine()
    cols = {name: raw.data[:, j] for j, name in enumerate(raw.feature_names)}
    return write_columns(tmp_path / "wine.csv", {**cols, "target": raw.target})


def test_refit_without_calibrate_removes_the_old_calibrator(capsys, tmp_path, wine):
    model, cal = tmp_path / "m.npz", tmp_path / "m.calibrator.npz"
    rc, _, err = call(capsys, "fit", wine, "--target", "target", "--out", model, "--alpha", "1",
                      "--calibrate", "vector", "--no-report", "-q")
    assert rc == 0 and cal.exists(), err
    kept = tmp_path / "kept.npz"
    kept.write_bytes(cal.read_bytes())
    rc, out, err = call(capsys, "fit", wine, "--target", "target", "--out", model, "--alpha", "100", "--no-report")
    assert rc == 0, err
    assert not cal.exists() and f"Removed {cal}" in out
    # A calibrator saved for the first model is refused with the second, naming both files.
    rc, _, err = call(capsys, "predict", model, wine, "--target", "target", "--calibrator", kept,
                      "--out", tmp_path / "p.csv", "-q")
    line = error_line(err)
    assert rc == 1 and str(kept) in line and str(model) in line and "another model" in line
    assert not (tmp_path / "p.csv").exists()
    # Refitted with --calibrate, the pair works.
    rc, _, err = call(capsys, "fit", wine, "--target", "target", "--out", model, "--alpha", "100",
                      "--calibrate", "vector", "--no-report", "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "predict", model, wine, "--calibrator", cal, "--out", tmp_path / "p.csv", "-q")
    assert rc == 0, err


def test_a_calibrator_without_a_digest_is_accepted(capsys, tmp_path, wine):
    """calibrate on predict's logits writes no digest: predict takes it as before."""
    model = tmp_path / "m.npz"
    assert call(capsys, "fit", wine, "--target", "target", "--out", model, "--no-report", "-q")[0] == 0
    logits, labels = tmp_path / "z.csv", tmp_path / "y.csv"
    rc, _, err = call(capsys, "predict", model, wine, "--target", "target", "--out", tmp_path / "p.csv",
                      "--logits-out", logits, "-q")
    assert rc == 0, err
    from softmaxkit.data import read_columns

    write_columns(labels, {"target": np.asarray(read_columns(wine)["target"])})
    cal = tmp_path / "t.npz"
    assert call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", cal, "-q")[0] == 0
    rc, _, err = call(capsys, "predict", model, wine, "--calibrator", cal, "--out", tmp_path / "q.csv", "-q")
    assert rc == 0, err


def test_calibrate_again_without_conformal_removes_the_old_predictor(capsys, tmp_path, scores):
    z, y = scores
    path = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    cal, conformal = tmp_path / "t.npz", tmp_path / "t.conformal.npz"
    rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", labels, "--out", cal, "--conformal", "0.1",
                      "-q")
    assert rc == 0 and conformal.exists(), err
    rc, out, err = call(capsys, "calibrate", "--logits", path, "--labels", labels, "--out", cal)
    assert rc == 0, err
    assert not conformal.exists() and f"Removed {conformal}" in out
    # a file of the user's that happens to have that name is left alone
    conformal.write_text("mine")
    assert call(capsys, "calibrate", "--logits", path, "--labels", labels, "--out", cal, "-q")[0] == 0
    assert conformal.read_text() == "mine"


# --------------------------------------------------------------------------- 3-4. option spellings


def test_report_equal_to_out_is_refused_up_front(capsys, tmp_path, wine):
    for extra, role in (([], "--out"), (["--calibrate", "temperature"], "the calibrator file")):
        report = tmp_path / ("m.npz" if role == "--out" else "m.calibrator.npz")
        rc, _, err = call(capsys, "fit", wine, "--target", "target", "--out", tmp_path / "m.npz", "--report", report,
                          *extra, "-q")
        line = error_line(err)
        assert rc == 1 and f"--report {report} is also {role}" in line
        assert not (tmp_path / "m.npz").exists()


def test_negative_class_names_need_no_equals_sign(capsys, tmp_path, scores):
    z, y = scores
    path = tmp_path / "z.npy"
    np.save(path, z)
    labels = write_columns(tmp_path / "y.csv", {"label": y - 1})  # classes -1, 0, 1
    rc, out, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--classes", "-1,0,1", "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_predict_target_by_position_that_is_a_feature(capsys, tmp_path, wine):
    model = tmp_path / "m.npz"
    assert call(capsys, "fit", wine, "--target", "target", "--out", model, "--no-report", "-q")[0] == 0
    features = tmp_path / "x.csv"
    from softmaxkit.data import read_columns

    write_columns(features, {k: v for k, v in read_columns(wine).items() if k != "target"})
    rc, _, err = call(capsys, "predict", model, features, "--target", "-1", "--out", tmp_path / "p.csv", "-q")
    assert rc == 1 and "--target -1 resolves to column 'proline'" in error_line(err)


def test_staged_removal_happens_only_at_commit(tmp_path):
    from softmaxkit.io import StagedOutputs

    stale = tmp_path / "m.calibrator.npz"
    stale.write_bytes(b"old")
    with pytest.raises(RuntimeError), StagedOutputs() as outputs:
        outputs.stage(tmp_path / "m.npz").write_bytes(b"new")
        outputs.remove(stale)
        raise RuntimeError("the command fails before its commit")
    assert stale.read_bytes() == b"old" and not (tmp_path / "m.npz").exists()
    with StagedOutputs() as outputs:
        outputs.stage(tmp_path / "m.npz").write_bytes(b"new")
        outputs.remove(stale)
        outputs.commit()
    assert not stale.exists() and (tmp_path / "m.npz").read_bytes() == b"new"
