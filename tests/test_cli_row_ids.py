"""Row ids through the chain ``predict`` -> labels file -> ``evaluate``/``calibrate`` (audit of 2026-12-06).

Test data with an ``id`` column went through ``predict``, whose output kept no id; a labels file
``id,animal`` exported in another row order was then paired with the scores by position: accuracy
0.4300 and log-loss 1.5805 where the rows joined on ``id`` give 0.7500 and 0.5960, exit 0, the
``id`` column dropped without a word. ``predict`` now copies the input's row ids into its output,
and ``evaluate``/``calibrate`` join a separate labels file to the scores on an id column both
have; an id column in the labels alone draws a warning that the rows are paired by position.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import ANIMALS, call, error_line, fitted_animals
from softmaxkit.cli import main
from softmaxkit.data import read_columns, write_columns

pytest.importorskip("sklearn")

N = 120
CLASSES = np.array(ANIMALS)
IDS = np.arange(1000, 1000 + N)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("row_ids")


@pytest.fixture(scope="module")
def data(work):
    """A noisy 3-class problem: training file, and test file with an ``id`` column first."""
    return fitted_animals(work, seed=3, ids=IDS)


@pytest.fixture(scope="module")
def predicted(work, data):
    """``predict``'s probabilities for the test file, and the row order of a labels file sorted by class."""
    out = work / "p.csv"
    assert main(["predict", str(data["model"]), str(data["test"]), "--out", str(out), "-q"]) == 0
    cols = read_columns(out)
    probs = np.column_stack([cols[f"p_{c}"].to_numpy() for c in CLASSES])
    return {"out": out, "probs": probs, "order": np.argsort(data["y"], kind="stable")}


def _joined_metrics(probs, y):
    """scikit-learn's accuracy and log-loss of ``probs`` against labels ``y`` in the same row order."""
    from sklearn.metrics import accuracy_score, log_loss

    yi = np.searchsorted(CLASSES, y)
    return accuracy_score(yi, probs.argmax(1)), log_loss(yi, probs, labels=[0, 1, 2])


def _evaluate(capsys, probs, labels, *extra):
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, *extra, "--json")
    assert rc == 0, err
    return json.loads(out)["metrics"], err


# --------------------------------------------------------------------------- 1. predict keeps the row ids


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_predict_writes_the_inputs_row_id_first(capsys, work, data, suffix):
    out = work / f"ids{suffix}"
    rc, text, err = call(capsys, "predict", data["model"], data["test"], "--out", out, "--logits-out",
                         work / f"z{suffix}")
    assert rc == 0, err
    for path in (out, work / f"z{suffix}"):
        cols = read_columns(path)
        assert list(cols)[0] == "id"
        np.testing.assert_array_equal(np.asarray(cols["id"]), IDS)
    assert "'id'" in text


def test_predict_keeps_a_saved_and_a_parquet_pandas_index(capsys, work, data):
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(data["test"])
    frame.set_index("id").to_parquet(work / "test_idx.parquet")  # the id as the pandas index
    frame.drop(columns="id").to_csv(work / "test_saved.csv")  # pandas' unnamed index 0..n-1
    rc, _, err = call(capsys, "predict", data["model"], work / "test_idx.parquet", "--out", work / "pi.csv", "-q")
    assert rc == 0, err
    cols = read_columns(work / "pi.csv")
    assert list(cols)[0] == "id"
    np.testing.assert_array_equal(np.asarray(cols["id"]), IDS)
    rc, _, err = call(capsys, "predict", data["model"], work / "test_saved.csv", "--out", work / "ps.csv", "-q")
    assert rc == 0, err
    cols = read_columns(work / "ps.csv")
    assert list(cols)[0] == ""
    np.testing.assert_array_equal(np.asarray(cols[""]), np.arange(N))


def test_npy_output_holds_the_probabilities_only(capsys, work, data):
    """A .npy is one matrix read back as the scores: an id there would be one more class."""
    out = work / "p.npy"
    rc, text, err = call(capsys, "predict", data["model"], data["test"], "--out", out)
    assert rc == 0, err
    assert np.load(out).shape == (N, 3)
    assert "not written" in text and "'id'" in text


# --------------------------------------------------------------------------- 2. evaluate/calibrate join on the id


def test_labels_in_another_row_order_are_joined_on_the_id(capsys, work, data, predicted):
    """The audit's chain: accuracy 0.4300 for 0.7500, exit 0."""
    order = predicted["order"]
    labels = write_columns(work / "sorted.csv", {"id": IDS[order], "animal": data["y"][order]})
    got, err = _evaluate(capsys, predicted["out"], labels, "--label-column", "animal")
    accuracy, loss = _joined_metrics(predicted["probs"], data["y"])
    assert got["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert got["log_loss"] == pytest.approx(loss, rel=1e-9)
    assert "warning" not in err
    # calibrate fits the same calibrator as on labels in the scores' order
    in_order = write_columns(work / "in_order.csv", {"id": IDS, "animal": data["y"]})
    fitted = []
    for i, path in enumerate((labels, in_order)):
        rc, out, err = call(capsys, "calibrate", "--probs", predicted["out"], "--labels", path, "--label-column",
                            "animal", "--out", work / f"cal{i}.npz", "--json")
        assert rc == 0, err
        fitted.append(json.loads(out)["metrics"])
    assert fitted[0] == fitted[1]


def test_extra_label_rows_are_left_out_and_counted(capsys, work, data, predicted):
    order = predicted["order"]
    extra = write_columns(work / "extra.csv", {"id": np.r_[IDS[order], [7, 8, 9]],
                                               "animal": np.r_[data["y"][order], ["cat", "dog", "cat"]]})
    rc, out, err = call(capsys, "evaluate", "--probs", predicted["out"], "--labels", extra, "--label-column",
                        "animal")
    assert rc == 0, err
    assert "3 rows of" in out and "'id'" in out
    got, _ = _evaluate(capsys, predicted["out"], extra, "--label-column", "animal")
    assert got["accuracy"] == pytest.approx(_joined_metrics(predicted["probs"], data["y"])[0], abs=1e-12)


def test_duplicated_or_missing_ids_are_refused(capsys, work, data, predicted):
    ids = IDS.copy()
    ids[5] = ids[9]
    dup = write_columns(work / "dup.csv", {"id": ids, "animal": data["y"]})
    rc, _, err = call(capsys, "evaluate", "--probs", predicted["out"], "--labels", dup, "--label-column", "animal")
    line = error_line(err)
    assert rc == 1 and str(dup) in line and "'id'" in line and str(IDS[9]) in line
    missing = write_columns(work / "missing.csv", {"id": IDS[1:], "animal": data["y"][1:]})
    rc, _, err = call(capsys, "calibrate", "--probs", predicted["out"], "--labels", missing, "--label-column",
                      "animal", "--out", work / "never.npz")
    line = error_line(err)
    assert rc == 1 and "'id'" in line and str(IDS[0]) in line and str(missing) in line
    assert not (work / "never.npz").exists()


# --------------------------------------------------------------------------- 3. ids in the labels alone


def test_an_id_in_the_labels_alone_draws_a_warning(capsys, work, data, predicted):
    probs = write_columns(work / "no_id.csv", {f"p_{c}": predicted["probs"][:, j] for j, c in enumerate(CLASSES)})
    order = predicted["order"]
    labels = write_columns(work / "sorted2.csv", {"id": IDS[order], "animal": data["y"][order]})
    _, err = _evaluate(capsys, probs, labels, "--label-column", "animal")
    assert "softmaxkit: warning:" in err and "'id'" in err and "position" in err
    # ids that count the rows say nothing the position does not
    counting = write_columns(work / "counting.csv", {"id": np.arange(N), "animal": data["y"]})
    _, err = _evaluate(capsys, probs, counting, "--label-column", "animal")
    assert "warning" not in err


def test_a_plain_labels_file_is_paired_by_position_as_before(capsys, work, data, predicted):
    plain = write_columns(work / "plain.csv", {"animal": data["y"]})
    got, err = _evaluate(capsys, predicted["out"], plain)
    assert got["accuracy"] == pytest.approx(_joined_metrics(predicted["probs"], data["y"])[0], abs=1e-12)
    assert "warning" not in err


# --------------------------------------------------------------------------- 4. a Parquet pandas index


def test_parquet_labels_with_a_pandas_index(capsys, work, data, predicted):
    """df.set_index('id').to_parquet(): refused as "has 2 columns ('animal', 'id')"; the index is the join id."""
    pd = pytest.importorskip("pandas")
    order = predicted["order"]
    path = work / "labels_idx.parquet"
    pd.DataFrame({"id": IDS[order], "animal": data["y"][order]}).set_index("id").to_parquet(path)
    got, err = _evaluate(capsys, predicted["out"], path)
    assert got["accuracy"] == pytest.approx(_joined_metrics(predicted["probs"], data["y"])[0], abs=1e-12)
    assert "warning" not in err
