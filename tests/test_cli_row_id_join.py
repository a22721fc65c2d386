"""Which id column joins a labels file to the scores (review audit of 2026-12-06, follow-up of
tests/test_cli_row_ids.py).

1. A data file with ``patient_id`` repeated (3 visits each), fitted with ``--ignore patient_id``:
   ``predict`` copies ``patient_id`` into the scores, and ``evaluate --labels data.csv`` refused
   ("id np.str_('0') is also on row 1", exit 1; accuracy 0.97 before ids were joined). With ``id``
   unique beside it, the refusal came whenever ``patient_id`` came first.
2. Data saved with ``df.to_csv()`` (pandas' unnamed index 500..599): ``predict`` writes that index
   with the scores, and a labels file holding the same rows shuffled, saved with its index, was paired
   by position without a word (accuracy 0.31 for 0.97, exit 0, ``labels_matched_on`` null).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit.cli import main
from softmaxkit.data import read_columns, write_columns

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

N = 120
CLASSES = np.array(["bird", "cat", "dog"])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("row_id_join")


@pytest.fixture(scope="module")
def chain(work):
    """A model fitted with ``--ignore patient_id``, a data file ``data.csv`` (``patient_id`` repeated
    3 times, then ``id`` unique, features, label) and ``predict``'s probabilities for it."""
    rng = np.random.default_rng(11)

    def draw(n):
        y = rng.integers(0, 3, n)
        X = rng.normal(size=(n, 2)) + 1.2 * np.column_stack([y == 1, y == 2])
        return pd.DataFrame({"patient_id": np.arange(n) // 3, "id": 5000 + rng.permutation(n),
                             "f1": X[:, 0], "f2": X[:, 1], "animal": CLASSES[y]})

    train, data = draw(300), draw(N)
    train.to_csv(work / "train.csv", index=False)
    data.to_csv(work / "data.csv", index=False)
    model = work / "m.npz"
    assert main(["fit", str(work / "train.csv"), "--target", "animal", "--ignore", "patient_id,id",
                 "--out", str(model), "--no-report", "-q"]) == 0
    out = work / "p.csv"
    assert main(["predict", str(model), str(work / "data.csv"), "--out", str(out), "-q"]) == 0
    cols = read_columns(out)
    assert list(cols)[:2] == ["patient_id", "id"]
    probs = np.column_stack([cols[f"p_{c}"].to_numpy() for c in CLASSES])
    return {"model": model, "data": data, "out": out, "probs": probs}


def _accuracy(probs, y):
    return float(np.mean(CLASSES[probs.argmax(1)] == np.asarray(y)))


def _evaluate(capsys, probs, labels, *extra):
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--label-column", "animal",
                        *extra, "--json")
    assert rc == 0, err
    return json.loads(out), err


# --------------------------------------------------------------------------- 1. an id repeated in both files


def test_the_data_file_itself_with_a_repeated_patient_id(capsys, work, chain):
    """The everyday chain: the labels are the very file the scores were predicted from."""
    only_pid = chain["data"].drop(columns="id")
    only_pid.to_csv(work / "pid.csv", index=False)
    out = work / "p_pid.csv"
    rc, _, err = call(capsys, "predict", chain["model"], work / "pid.csv", "--out", out, "-q")
    assert rc == 0, err
    got, err = _evaluate(capsys, out, work / "pid.csv")
    assert got["metrics"]["accuracy"] == pytest.approx(_accuracy(chain["probs"], chain["data"]["animal"]))
    assert got["labels_matched_on"] is None
    assert "warning" not in err
    # the plain output names why the rows were paired by position
    rc, text, err = call(capsys, "evaluate", "--probs", out, "--labels", work / "pid.csv", "--label-column",
                         "animal")
    assert rc == 0 and "'patient_id'" in text and "position" in text and "warning" not in err


def test_a_unique_id_after_a_repeated_one_joins_the_rows(capsys, work, chain):
    shuffled = chain["data"].sample(frac=1, random_state=0)
    shuffled.to_csv(work / "shuffled.csv", index=False)
    got, err = _evaluate(capsys, chain["out"], work / "shuffled.csv")
    assert got["labels_matched_on"] == "id"
    assert got["metrics"]["accuracy"] == pytest.approx(_accuracy(chain["probs"], chain["data"]["animal"]))
    assert "warning" not in err
    # the data file itself, in the scores' order, is matched on the unique id as well
    got, err = _evaluate(capsys, chain["out"], work / "data.csv")
    assert got["labels_matched_on"] == "id" and "warning" not in err


def test_a_repeated_id_in_another_row_order_is_refused_by_name(capsys, work, chain):
    """No shared column is unique in both files nor the same row by row: no way to pair the rows."""
    chain["data"].drop(columns="id").to_csv(work / "pid.csv", index=False)
    out = work / "p_pid2.csv"
    assert main(["predict", str(chain["model"]), str(work / "pid.csv"), "--out", str(out), "-q"]) == 0
    shuffled = chain["data"].drop(columns="id").sample(frac=1, random_state=1)
    shuffled.to_csv(work / "pid_shuffled.csv", index=False)
    rc, _, err = call(capsys, "evaluate", "--probs", out, "--labels", work / "pid_shuffled.csv",
                      "--label-column", "animal")
    line = error_line(err)
    assert rc == 1 and "'patient_id'" in line and str(work / "pid_shuffled.csv") in line
    assert "np." not in line and "id 0 " in line.replace("'", "")


# --------------------------------------------------------------------------- 2. pandas' saved index


@pytest.fixture(scope="module")
def saved(work, chain):
    """The data saved with its pandas index 500..619 (no id column), and ``predict``'s output for it,
    which keeps that unnamed index."""
    frame = chain["data"].drop(columns=["patient_id", "id"])
    frame.index = frame.index + 500
    frame.to_csv(work / "dx.csv")
    frame.sample(frac=1, random_state=0).to_csv(work / "dx_shuf.csv")  # the same rows shuffled
    out = work / "px.csv"
    assert main(["predict", str(chain["model"]), str(work / "dx.csv"), "--out", str(out), "-q"]) == 0
    assert list(read_columns(out))[0] == ""
    return {"frame": frame, "out": out}


def test_a_shuffled_labels_file_joins_on_the_saved_index(capsys, work, chain, saved):
    got, err = _evaluate(capsys, saved["out"], work / "dx_shuf.csv")
    assert got["labels_matched_on"] == ""
    assert got["metrics"]["accuracy"] == pytest.approx(_accuracy(chain["probs"], chain["data"]["animal"]))
    assert "warning" not in err
    got, err = _evaluate(capsys, saved["out"], work / "dx.csv")  # the data file itself
    assert got["metrics"]["accuracy"] == pytest.approx(_accuracy(chain["probs"], chain["data"]["animal"]))
    assert "warning" not in err


def test_another_saved_index_out_of_order_draws_a_warning(capsys, work, chain, saved):
    """The labels' own index numbers other rows: paired by position, flagged when not in row order."""
    shuffled = saved["frame"].sample(frac=1, random_state=0).reset_index(drop=True)
    shuffled.iloc[np.random.default_rng(0).permutation(N)].to_csv(work / "renumbered_shuf.csv")
    got, err = _evaluate(capsys, saved["out"], work / "renumbered_shuf.csv")
    assert got["labels_matched_on"] is None
    assert "softmaxkit: warning:" in err and "position" in err
    # counting 0..n-1 in row order says nothing the position does not
    saved["frame"].reset_index(drop=True).to_csv(work / "renumbered.csv")
    got, err = _evaluate(capsys, saved["out"], work / "renumbered.csv")
    assert got["metrics"]["accuracy"] == pytest.approx(_accuracy(chain["probs"], chain["data"]["animal"]))
    assert "warning" not in err


def test_a_saved_index_in_the_labels_alone_draws_a_warning_when_shuffled(capsys, work, chain, saved):
    plain = write_columns(work / "plain_p.csv", {f"p_{c}": chain["probs"][:, j] for j, c in enumerate(CLASSES)})
    _, err = _evaluate(capsys, plain, work / "dx_shuf.csv")
    assert "softmaxkit: warning:" in err and "position" in err


# --------------------------------------------------------------------------- 3. ids typed differently


def test_integer_ids_match_whole_floats_and_text(capsys, work, chain):
    """The keys stay integers when both files hold integers, and compare as text only across types."""
    from softmaxkit.data import row_keys

    shuffled = chain["data"].sample(frac=1, random_state=2)[["id", "animal"]]
    floats = shuffled.assign(id=shuffled["id"].astype(float))
    floats.to_parquet(work / "float_ids.parquet")
    texts = shuffled.assign(id=shuffled["id"].astype(str).str.zfill(6))  # '005017': an id's spelling
    texts.to_parquet(work / "text_ids.parquet")
    for path in (work / "float_ids.parquet", work / "text_ids.parquet"):
        got, err = _evaluate(capsys, chain["out"], path)
        assert got["labels_matched_on"] == "id", path
        assert got["metrics"]["accuracy"] == pytest.approx(_accuracy(chain["probs"], chain["data"]["animal"]))
    assert row_keys(work / "float_ids.parquet", "id").dtype == np.int64
    assert row_keys(chain["out"], "id").dtype == np.int64
