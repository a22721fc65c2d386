"""Row ids through ``apply``, and the join recorded in ``--json`` (follow-up of tests/test_cli_row_ids.py).

``predict`` copies its input's row ids into its output, but ``apply`` wrote the calibrated scores
alone: its output, evaluated against a labels file in another row order, was paired by position
(accuracy 0.3583 where the rows joined on ``id`` give 0.5667, exit 0, with only a warning). A scores
Parquet written by pandas with the id as its index (``df.set_index("id").to_parquet()``, ids
1000..1119 stored as a run in the metadata, no column) was paired by position too, with a warning
that it "has no column 'id'". And ``--json`` did not say whether the labels were joined.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import ANIMALS, call, fitted_animals
from softmaxkit.cli import main
from softmaxkit.data import read_columns, write_columns

pytest.importorskip("sklearn")

N = 120
CLASSES = np.array(ANIMALS)
IDS = np.arange(1000, 1000 + N)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("apply_row_ids")


@pytest.fixture(scope="module")
def chain(work):
    """A model, its logits and probabilities for a test file with an ``id`` column, a calibrator fitted
    on those logits, and a labels file sorted by class (another row order than the scores')."""
    fitted = fitted_animals(work, seed=5, ids=IDS)
    model, test, yt = fitted["model"], fitted["test"], fitted["y"]
    probs, logits = work / "p.csv", work / "z.csv"
    assert main(["predict", str(model), str(test), "--out", str(probs), "--logits-out", str(logits), "-q"]) == 0
    calibrator = work / "cal.npz"
    assert main(["calibrate", "--logits", str(logits), "--labels", str(test), "--label-column", "animal",
                 "--method", "vector", "--out", str(calibrator), "-q"]) == 0
    order = np.argsort(yt, kind="stable")
    labels = write_columns(work / "sorted.csv", {"id": IDS[order], "animal": yt[order]})
    return {"probs": probs, "logits": logits, "calibrator": calibrator, "labels": labels, "y": yt}


def _matrix(path, prefix="p_"):
    cols = read_columns(path)
    return np.column_stack([np.asarray(cols[f"{prefix}{c}"]) for c in CLASSES])


def _joined_accuracy(probs, y):
    """scikit-learn's accuracy of ``probs`` against labels ``y`` in the same row order."""
    from sklearn.metrics import accuracy_score

    return accuracy_score(np.searchsorted(CLASSES, y), probs.argmax(1))


def _evaluate(capsys, probs, labels, *extra):
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--label-column", "animal",
                        *extra, "--json")
    assert rc == 0, err
    return json.loads(out), err


# --------------------------------------------------------------------------- 1. apply keeps the row ids


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_apply_writes_the_scores_row_id_first(capsys, work, chain, suffix):
    logits = write_columns(work / f"z{suffix}", read_columns(chain["logits"]))
    out, logits_out = work / f"a{suffix}", work / f"az{suffix}"
    rc, text, err = call(capsys, "apply", chain["calibrator"], "--logits", logits, "--out", out,
                         "--logits-out", logits_out)
    assert rc == 0, err
    for path in (out, logits_out):
        cols = read_columns(path)
        assert list(cols)[0] == "id"
        np.testing.assert_array_equal(np.asarray(cols["id"]), IDS)
    assert "'id'" in text.splitlines()[-1]  # the line that says what was written
    assert "p_bird" in read_columns(out) and "logit_bird" in read_columns(logits_out)


def test_applys_output_is_joined_to_labels_in_another_order(capsys, work, chain):
    """The gap: accuracy 0.3583 for 0.5667 (paired by position), exit 0."""
    out = work / "applied.csv"
    rc, _, err = call(capsys, "apply", chain["calibrator"], "--logits", chain["logits"], "--out", out, "-q")
    assert rc == 0, err
    got, err = _evaluate(capsys, out, chain["labels"])
    assert got["metrics"]["accuracy"] == pytest.approx(_joined_accuracy(_matrix(out), chain["y"]), abs=1e-12)
    assert got["labels_matched_on"] == "id"
    assert "warning" not in err


def test_apply_to_npy_says_the_ids_are_left_out(capsys, work, chain):
    """A .npy is one matrix read back as the scores: an id there would be one more class. A .safetensors
    holds numbers only, which numeric ids are."""
    out = work / "a_ids.npy"
    rc, text, err = call(capsys, "apply", chain["calibrator"], "--logits", chain["logits"], "--out", out)
    assert rc == 0, err
    assert "not written" in text and "'id'" in text and str(out) in text
    assert np.load(out).shape == (N, 3)
    out = work / "a_ids.safetensors"
    rc, text, err = call(capsys, "apply", chain["calibrator"], "--logits", chain["logits"], "--out", out)
    assert rc == 0, err
    assert "not written" not in text
    assert list(read_columns(out))[0] == "id"


# --------------------------------------------------------------------------- 2. --json records the join


def test_json_says_which_column_joined_the_labels(capsys, work, chain):
    got, _ = _evaluate(capsys, chain["probs"], chain["labels"])
    assert got["labels_matched_on"] == "id"
    plain = write_columns(work / "plain.csv", {"animal": chain["y"]})
    got, _ = _evaluate(capsys, chain["probs"], plain)
    assert got["labels_matched_on"] is None
    for labels, expected in ((chain["labels"], "id"), (plain, None)):
        rc, out, err = call(capsys, "calibrate", "--probs", chain["probs"], "--labels", labels, "--label-column",
                            "animal", "--out", work / "c.npz", "--json")
        assert rc == 0, err
        assert json.loads(out)["labels_matched_on"] == expected


# --------------------------------------------------------------------------- 3. a Parquet pandas index on the scores


def test_scores_parquet_with_a_pandas_id_index_is_joined(capsys, work, chain):
    """ids 1000..1119 in order are stored as a run in the pandas metadata, not as a column: the labels were
    paired by position (accuracy 0.3583 for 0.5667) with a warning that the scores have no column 'id'."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({k: np.asarray(v) for k, v in read_columns(chain["probs"]).items()})
    path = work / "p_idx.parquet"
    frame.set_index("id").to_parquet(path)
    got, err = _evaluate(capsys, path, chain["labels"])
    assert got["metrics"]["accuracy"] == pytest.approx(_joined_accuracy(_matrix(chain["probs"]), chain["y"]),
                                                       abs=1e-12)
    assert got["labels_matched_on"] == "id"
    assert "warning" not in err
    # apply copies such an index too
    logits = work / "z_idx.parquet"
    pd.DataFrame({k: np.asarray(v) for k, v in read_columns(chain["logits"]).items()}).set_index("id").to_parquet(
        logits)
    out = work / "a_idx.csv"
    rc, _, err = call(capsys, "apply", chain["calibrator"], "--logits", logits, "--out", out, "-q")
    assert rc == 0, err
    cols = read_columns(out)
    assert list(cols)[0] == "id"
    np.testing.assert_array_equal(np.asarray(cols["id"]), IDS)
