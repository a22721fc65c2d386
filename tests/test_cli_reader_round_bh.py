"""Score and label files as pandas and scikit-learn users write them (audits BH and BL).

1. BH-F1: ``pd.DataFrame(z).assign(sample_weight=w).to_csv(index=False)`` (header ``0,1,2,sample_weight``)
   read the weights as a 4th class: accuracy 0.9667 and log-loss 0.0698 for 0.9833 and 0.0450, exit 0.
2. BL-F1: ``pd.DataFrame(predict_proba(X), columns=classes_).to_csv()`` (``,benign,malignant``) beside
   0/1 labels in a column ``malignant`` was refused as holding the labels, advising ``--ignore malignant``
   first, which scored the other class's probabilities (accuracy 0.0592, exit 0).
3. BL-F3a: a labels file ``patient_id,diagnosis`` was refused as "labels need exactly one", though with
   ``--label-column diagnosis`` its rows are matched to the scores' on ``patient_id``.
4. BL-F3b: ``apply`` of a calibrator fitted on ``benign, malignant`` to a file headed ``malignant,benign``
   said its columns "have no class names".

Numbers are checked against scikit-learn's ``log_loss`` on the same scores.
"""

from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, evaluate_json, sklearn_log_loss, softmax_rows
from softmaxkit.data import DataFileError, label_file_other_columns, read_labels, write_columns

pytest.importorskip("sklearn")

N, K = 90, 3


@pytest.fixture(scope="module")
def scores():
    """Logits of a decent 3-class model, and their integer labels 0..2."""
    return decent_logits(N, K, seed=23)


def _binary(scores):
    """Two classes of ``scores``: (logits of benign, malignant; labels 1 = malignant)."""
    z, y = scores
    keep = y < 2
    return z[keep][:, :2], y[keep]


# ------------------------------------------------------------------------------- 1: sample weights

@pytest.mark.parametrize("column", ["weight", "weights", "sample_weight", "sample_weights", "Sample_Weight",
                                    "split", "folds"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_sample_weight_column_beside_plain_scores_is_refused(capsys, tmp_path, scores, column, suffix):
    """BH-F1: weights (fractions 0.5..2, as logits are) beside pandas' header 0,1,2 were a 4th class."""
    z, y = scores
    extra = np.random.default_rng(3).uniform(0.5, 2.0, size=N) if "eight" in column else np.arange(N) % 5
    path = write_columns(tmp_path / f"s{suffix}", {"0": z[:, 0], "1": z[:, 1], "2": z[:, 2], column: extra})
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    for command in ("evaluate", "calibrate"):
        more = ("--out", tmp_path / "cal.npz") if command == "calibrate" else ()
        rc, _, err = call(capsys, command, "--logits", path, "--labels", labels, *more)
        line = error_line(err)
        assert rc == 1 and f"column {column!r}" in line and f"--ignore {column}" in line, err
    got = evaluate_json(capsys, "--logits", path, "--labels", labels, "--ignore", column)
    assert got["n_classes"] == 3
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_a_class_named_weight_is_kept_with_classes(capsys, tmp_path, scores):
    """Guard (passes before too): ``--classes`` naming a column ``weight`` keeps it as a class."""
    z, y = scores
    path = write_columns(tmp_path / "s.csv", {"light": z[:, 0], "medium": z[:, 1], "weight": z[:, 2]})
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    got = evaluate_json(capsys, "--logits", path, "--labels", labels, "--classes", "light,medium,weight")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


# ------------------------------------------------------------------------------- 2: a class named as the labels

def _sklearn_export(tmp_path, scores, suffix, *, order=("benign", "malignant")):
    """``DataFrame(predict_proba(X), columns=classes_).to_csv()`` and ``y.rename('malignant').to_csv()``
    (0/1: whether each row is malignant)."""
    pd = pytest.importorskip("pandas")
    z, y = _binary(scores)
    p = softmax_rows(z)
    frame = pd.DataFrame({"benign": p[:, 0], "malignant": p[:, 1]})[list(order)]
    path = tmp_path / f"probs{suffix}"
    frame.to_csv(path) if suffix == ".csv" else frame.to_parquet(path)
    labels = tmp_path / "labels.csv"
    pd.Series(y, name="malignant").to_csv(labels)
    return path, labels, z, y


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_score_column_named_as_the_labels_column_asks_for_classes(capsys, tmp_path, scores, suffix):
    """BL-F1: the refusal advised ``--ignore malignant`` first, which scored benign's probabilities as the
    positive class (accuracy 0.0592 for 0.9408). The column holds probabilities: it is a class; the refusal
    now says which --classes gives the labels' order, and no --ignore."""
    path, labels, z, y = _sklearn_export(tmp_path, scores, suffix)
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and "column 'malignant'" in line and "--classes benign,malignant" in line, err
    assert "--ignore" not in line
    got = evaluate_json(capsys, "--probs", path, "--labels", labels, "--classes", "benign,malignant")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


@pytest.mark.parametrize("suffix, dtype", [(".csv", float), (".parquet", float), (".parquet", bool)])
def test_a_class_column_of_whole_probabilities_named_as_the_labels_column_asks_for_classes(capsys, tmp_path,
                                                                                          suffix, dtype):
    """Review R12: a decision tree's ``predict_proba`` holds only 0s and 1s, so the fractions test missed
    its ``malignant`` column and the refusal advised ``--ignore malignant``: followed, accuracy 0.1078 for
    0.8922, exit 0. Rows summing to 1 with the column in make it a class's, as fractions do."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    y = (rng.random(120) < 0.4).astype(int)
    predicted = np.where(rng.random(120) < 0.9, y, 1 - y)  # a tree right 9 times in 10
    # bool: pandas' get_dummies one-hot columns (review R14)
    frame = pd.DataFrame({"benign": (1 - predicted).astype(dtype), "malignant": predicted.astype(dtype)})
    path = tmp_path / f"tree{suffix}"
    frame.to_csv(path) if suffix == ".csv" else frame.to_parquet(path)
    labels = tmp_path / "labels.csv"
    pd.Series(y, name="malignant").to_csv(labels)
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and "--classes benign,malignant" in line and "--ignore" not in line, err
    got = evaluate_json(capsys, "--probs", path, "--labels", labels, "--classes", "benign,malignant")
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean(predicted == y))


def test_the_advised_classes_match_columns_in_another_order_by_name(capsys, tmp_path, scores):
    """Guard (passes before too): the advice holds for a file whose columns come as ``malignant,benign``."""
    path, labels, z, y = _sklearn_export(tmp_path, scores, ".csv", order=("malignant", "benign"))
    got = evaluate_json(capsys, "--probs", path, "--labels", labels, "--classes", "benign,malignant")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


@pytest.mark.parametrize("held", ["numbers", "text"])
def test_the_labels_themselves_beside_scores_are_still_refused_classes_first(capsys, tmp_path, scores, held):
    """The purpose of the rule holds: a ``Species`` column holding the labels (whole numbers or text) beside
    score columns is refused. ``--classes`` now comes before ``--ignore``, which would drop a class that
    happened to share the labels' column name."""
    z, y = scores
    species = y if held == "numbers" else np.array(["cat", "dog", "bird"])[y]
    path = write_columns(tmp_path / "s.csv", {"0": z[:, 0], "1": z[:, 1], "2": z[:, 2], "Species": species})
    labels = write_columns(tmp_path / "y.csv", {"species": y})
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and "named as the labels' column" in line and "--ignore Species" in line, err
    assert line.index("--classes") < line.index("--ignore")


# ------------------------------------------------------------------------------- 3: row ids beside the labels

def _id_files(tmp_path, scores, *, label_ids=None):
    """Probabilities ``patient_id, p_benign, p_malignant`` and labels ``patient_id, diagnosis`` in a
    shuffled row order (text ids P1000..: matched on, not counted)."""
    z, y = _binary(scores)
    p = softmax_rows(z)
    ids = np.array([f"P{1000 + j}" for j in range(len(y))])
    path = write_columns(tmp_path / "pred.csv", {"patient_id": ids, "p_benign": p[:, 0], "p_malignant": p[:, 1]})
    order = np.random.default_rng(5).permutation(len(y))
    diagnosis = np.array(["benign", "malignant"])[y]
    labels = write_columns(tmp_path / "labels.csv", {"patient_id": ids[order] if label_ids is None else label_ids,
                                                     "diagnosis": diagnosis[order]})
    return path, labels, z, y


def test_a_labels_file_of_ids_and_one_column_is_matched_on_the_ids(capsys, tmp_path, scores):
    """BL-F3a: ``patient_id,diagnosis`` was refused ("labels need exactly one"); it now reads as
    ``--label-column diagnosis`` does, its rows matched to the scores' on ``patient_id``."""
    path, labels, z, y = _id_files(tmp_path, scores)
    got = evaluate_json(capsys, "--probs", path, "--labels", labels)
    assert got["labels_matched_on"] == "patient_id"
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)
    assert label_file_other_columns(labels) == ["patient_id"]
    assert read_labels(labels, classes=["benign", "malignant"]).tolist() == \
        read_labels(labels, column="diagnosis", classes=["benign", "malignant"]).tolist()


def test_a_saved_index_ids_and_one_column_read_the_one_column(tmp_path):
    """``df.to_csv()`` of ``patient_id, diagnosis`` (a saved index in front): the labels are ``diagnosis``."""
    path = tmp_path / "l.csv"
    path.write_text(",patient_id,diagnosis\n0,P7,b\n1,P3,a\n2,P9,b\n")
    assert read_labels(path, classes=["a", "b"]).tolist() == [1, 0, 1]
    assert label_file_other_columns(path) == ["", "patient_id"]


def test_ids_beside_labels_ending_in_a_comma_are_matched_on(capsys, tmp_path, scores):
    """A delimiter ending every line (``patient_id,diagnosis,``) adds a blank nameless column, no column at all:
    the labels reader and the row matcher must agree that ``diagnosis`` is the labels and ``patient_id`` the
    key, or shuffled rows would be paired by position without a word."""
    path, labels, z, y = _id_files(tmp_path, scores)
    lines = labels.read_text().splitlines()
    labels.write_text("".join(line + ",\n" for line in lines))
    assert label_file_other_columns(labels) == ["patient_id"]
    got = evaluate_json(capsys, "--probs", path, "--labels", labels)
    assert got["labels_matched_on"] == "patient_id"
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


@pytest.mark.parametrize("text", ["a,b\n0,1\n1,1\n2,0\n",  # no id column
                                  "patient_id,class_id\nP1,0\nP2,2\nP3,1\n",  # two ids, none left
                                  "id,label\n0,1\n1,0\n1,1\n",  # 'id' of 0/1: no ids, maybe one-hot
                                  "patient_id,a,b\nP1,0,1\nP2,1,1\nP3,2,0\n"])  # two columns beside the id
def test_other_labels_files_of_two_columns_still_need_a_label_column(tmp_path, text):
    """Guard (passes before too): only ids that leave exactly one column settle which is the labels."""
    path = tmp_path / "l.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match="labels need exactly one"):
        read_labels(path)


# ------------------------------------------------------------------------------- 4: apply, unprefixed header

def test_apply_to_unprefixed_class_names_matches_them(capsys, tmp_path, scores):
    """BL-F3b: ``malignant,benign`` (no ``logit_`` prefix) was said to have "no class names"; then it was
    refused with the --classes that matches them. A plain header that names the calibrator's classes is
    now matched by name (audit CN), as ``--classes`` matches it: both give what the prefixed file gives."""
    z, y = _binary(scores)
    named = write_columns(tmp_path / "z.csv", {"logit_benign": z[:, 0], "logit_malignant": z[:, 1]})
    labels = write_columns(tmp_path / "y.csv", {"diagnosis": np.array(["benign", "malignant"])[y]})
    cal = tmp_path / "cal.npz"
    rc, _, err = call(capsys, "calibrate", "--logits", named, "--labels", labels, "--method", "vector", "--out", cal)
    assert rc == 0, err
    bare = write_columns(tmp_path / "bare.csv", {"malignant": z[:, 1], "benign": z[:, 0]})
    rc, _, err = call(capsys, "apply", cal, "--logits", bare, "--out", tmp_path / "by_name.csv")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", cal, "--logits", bare, "--out", tmp_path / "o.csv",
                      "--classes", "benign,malignant")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", cal, "--logits", named, "--out", tmp_path / "want.csv")
    assert rc == 0, err
    assert (tmp_path / "o.csv").read_text() == (tmp_path / "want.csv").read_text()
    assert (tmp_path / "by_name.csv").read_text() == (tmp_path / "want.csv").read_text()


def test_class_order_names_unprefixed_columns_when_given():
    """BL-F3b: given the file's column names (``columns``), the refusal shows them and the --classes to
    pass; names that are not the classes get the column-order advice."""
    from types import SimpleNamespace

    from softmaxkit.cli._common import CLIError, class_order

    fitted = SimpleNamespace(class_names_=["benign", "malignant"])
    with pytest.raises(CLIError, match=r"'malignant', 'benign' have no p_/logit_ prefix.*--classes benign,malignant"):
        class_order(None, fitted, source="bare.csv", fitted_as="CALIBRATOR cal.npz", columns=("malignant", "benign"))
    with pytest.raises(CLIError, match=r"\('a', 'b'\) are not named .*file's column order"):
        class_order(None, fitted, source="bare.csv", fitted_as="CALIBRATOR cal.npz", columns=("a", "b"))


def test_a_weight_column_beside_the_classes_given_gets_advice_that_is_no_circle(capsys, tmp_path, scores):
    """Review R12: with ``--classes`` naming every score column, the refusal of a ``sample_weight`` column
    still advised "list the classes with --classes", which the user had done; it now says to add it there
    if it is a class, and ``--ignore`` (first) works."""
    z, y = scores
    p = softmax_rows(z)
    names = ["setosa", "versicolor", "virginica"]
    path = write_columns(tmp_path / "s.csv", {**{n: p[:, k] for k, n in enumerate(names)},
                                              "sample_weight": np.linspace(0.5, 1.5, len(y))})
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(names)[y]})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels, "--classes", ",".join(names))
    line = error_line(err)
    assert rc == 1 and "add it to --classes if it is a class" in line and "list the classes" not in line, line
    got = evaluate_json(capsys, "--probs", path, "--labels", labels, "--classes", ",".join(names),
                        "--ignore", "sample_weight")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(np.log(p), y), rel=1e-6)
