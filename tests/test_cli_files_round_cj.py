"""Files as they come from other tools (audit CJ).

1. F1: one zero-padded label (``03``) keeps a CSV label column as the text written, and ``fit`` trained
   ``1``, ``1.0`` and ``03`` as classes of their own (7 for the wine data's 3: accuracy 0.455 for
   1.000, exit 0); ``1`` beside ``01`` likewise. Such training labels that write one number two ways are
   refused; labels matched against a model's classes (``predict --target``) are not, nor text that pandas
   reads as text (a Parquet string column, a CSV column holding words too).
2. F2: a label that differs from a class name only in Unicode normalization (NFD ``cafe\\u0301`` against
   the NFC class ``caf\\xe9``) was "not a class (café, naïve, x)", printed alike: the refusal names both
   as code points.
3. F3: uint64 ids from 2**63 on wrapped to negative keys, matched no CSV's ids and were named wrapped.
4. F4: float16 labels drew "overflow encountered in cast".
5. F5: a Parquet column of score vectors (``list<float>``) was "non-numeric value '[...]'" without a hint.
6. F6: a last line of spaces, or an empty last line after CR-only line ends, was refused where an empty
   last line after LF is dropped.
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, evaluate_json, sklearn_log_loss, softmax_rows
from softmaxkit.data import DataFileError, read_features, read_labels, row_keys

pytest.importorskip("sklearn")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _features_csv(path: Path, labels: list[str], *, seed: int = 0) -> Path:
    """Two informative features per row and the ``target`` column written as ``labels`` (text as is)."""
    rng = np.random.default_rng(seed)
    values = np.array([float(text) for text in labels])
    x = rng.normal(size=(len(labels), 2)) + values[:, None] * 2.0
    rows = [f"{a!r},{b!r},{label}" for (a, b), label in zip(x.tolist(), labels)]
    path.write_text("x0,x1,target\n" + "\n".join(rows) + "\n")
    return path


def _fit(capsys, data: Path, work: Path) -> tuple[int, str, str]:
    return call(capsys, "fit", data, "--target", "target", "--out", work / "m.npz", "--no-report", "--alpha", "1",
                "--json")


# --------------------------------------------------------------------------- 1. one number written two ways


def _wine_like_labels(n: int = 90) -> list[str]:
    """``1``, ``1.0``, ``2``, ``2.0``, ``3``, ``3.0`` in turn (a file merged from two exports), one ``03``."""
    labels = [f"{k % 3 + 1}{'.0' if k % 2 else ''}" for k in range(n)]
    labels[labels.index("3")] = "03"
    return labels


def test_fit_refuses_labels_that_write_one_number_two_ways_behind_one_zero_padded_label(capsys, tmp_path):
    data = _features_csv(tmp_path / "d.csv", _wine_like_labels())
    rc, out, err = _fit(capsys, data, tmp_path)
    assert rc == 1, out
    line = error_line(err)
    # The first pair in reading order, with its row counts, the other numbers, and why the column is text.
    assert "row 1 (line 2), column 'target': labels '1' (15 rows) and '1.0' (15 rows) are the number 1 written 2 " \
           "ways (so are the labels of 2 more numbers: 2, 3)" in line
    assert "zero-padded label '03' on row 3" in line
    assert "write each class one way" in line
    assert not (tmp_path / "m.npz").exists()


def test_fit_refuses_one_beside_zero_one(capsys, tmp_path):
    labels = [("0" if k % 3 == 0 else "") + str(k % 2 + 1) for k in range(60)]
    rc, out, err = _fit(capsys, _features_csv(tmp_path / "d.csv", labels), tmp_path)
    assert rc == 1, out
    line = error_line(err)
    # The rarer spelling first, the row named its first.
    assert "row 1 (line 2), column 'target': labels '01' (10 rows) and '1' (20 rows) are the number 1" in line
    assert "its 2 zero-padded labels, '01' first, on row 1" in line


def test_text_labels_that_pandas_reads_as_text_stay_the_classes_as_written(capsys, tmp_path):
    """Guard (passes before the fix too): a Parquet string column, or a CSV column holding words too, is
    text to pandas and scikit-learn as well; its labels are the classes as written."""
    labels = [("1" if k % 4 == 1 else "1.0") if k % 2 else "2" for k in range(40)]
    x = np.random.default_rng(1).normal(size=(40, 2)) + np.array([float(v) for v in labels])[:, None]
    pq.write_table(pa.table({"x0": x[:, 0], "x1": x[:, 1], "target": labels}), tmp_path / "d.parquet")
    rc, out, err = _fit(capsys, tmp_path / "d.parquet", tmp_path)
    assert rc == 0, err
    assert json.loads(out)["classes"] == ["1", "1.0", "2"]
    words = [["1", "01", "a"][k % 3] for k in range(45)]
    data = tmp_path / "w.csv"
    data.write_text("x0,target\n" + "\n".join(f"{k % 3 + 0.1 * (k % 5)},{w}" for k, w in enumerate(words)) + "\n")
    rc, out, err = _fit(capsys, data, tmp_path)
    assert rc == 0, err
    assert json.loads(out)["classes"] == ["01", "1", "a"]


def test_training_labels_are_refused_but_a_models_labels_are_matched(tmp_path):
    labels = [("0" if k % 3 == 0 else "") + str(k % 2 + 1) for k in range(30)]
    data = _features_csv(tmp_path / "d.csv", labels)
    with pytest.raises(DataFileError, match="the number 1 written 2 ways"):
        read_features(data, target="target")
    # Against a model's classes (predict --target) each label is matched by number: nothing to refuse.
    read = read_features(data, target="target", n_features=2)
    assert read.y.tolist() == labels


def test_predict_target_matches_zero_padded_labels_to_integer_classes(capsys, tmp_path):
    """Guard (passes before the fix too): the refusal is fit's alone."""
    train = _features_csv(tmp_path / "train.csv", [str(k % 2 + 1) for k in range(60)])
    assert _fit(capsys, train, tmp_path)[0] == 0
    padded = [("0" if k % 3 == 0 else "") + str(k % 2 + 1) for k in range(30)]
    test = _features_csv(tmp_path / "test.csv", padded, seed=2)
    rc, out, err = call(capsys, "predict", tmp_path / "m.npz", test, "--target", "target",
                        "--out", tmp_path / "p.csv", "--json")
    assert rc == 0, err
    assert json.loads(out)["classes"] == [1, 2]


def test_fit_keeps_distinct_zero_padded_labels_as_class_names(capsys, tmp_path):
    """Guard (passes before the fix too): codes 01, 02, 03, each one number, stay the classes as written."""
    labels = [f"0{k % 3 + 1}" for k in range(60)]
    rc, out, err = _fit(capsys, _features_csv(tmp_path / "d.csv", labels), tmp_path)
    assert rc == 0, err
    assert json.loads(out)["classes"] == ["01", "02", "03"]


# --------------------------------------------------------------------------- 2. Unicode normalization


def test_a_label_differing_only_in_unicode_normalization_is_named_in_code_points(capsys, tmp_path):
    classes = ["café", "naïve", "x"]
    z, y = decent_logits(60, 3, seed=3)
    p = softmax_rows(z)
    header = ",".join("p_" + unicodedata.normalize("NFC", c) for c in classes)
    (tmp_path / "p.csv").write_text(header + "\n" + "\n".join(",".join(map(repr, r)) for r in p.tolist()) + "\n")
    nfd = [unicodedata.normalize("NFD", classes[k]) for k in y]
    (tmp_path / "y.csv").write_text("y\n" + "\n".join(nfd) + "\n")
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv")
    assert rc == 1, out
    line = error_line(err)
    assert "did you mean 'caf\\xe9'?" in line
    assert "'cafe\\u0301' and 'caf\\xe9' differ only in Unicode normalization" in line


def test_a_column_name_differing_only_in_unicode_normalization_is_named_in_code_points(capsys, tmp_path):
    data = _features_csv(tmp_path / "d.csv", [str(k % 2) for k in range(20)])
    text = data.read_text().replace("target", unicodedata.normalize("NFD", "étiquette"), 1)
    data.write_text(text)
    rc, out, err = call(capsys, "fit", data, "--target", "étiquette", "--out", tmp_path / "m.npz", "--no-report")
    assert rc == 1, out
    assert "did you mean 'e\\u0301tiquette'?" in error_line(err)


# --------------------------------------------------------------------------- 3. uint64 ids


def _uint64_id_files(tmp_path: Path, *, drop_label_of_row: int | None = None) -> tuple[Path, Path, np.ndarray,
                                                                                    np.ndarray]:
    z, y = decent_logits(60, 3, seed=4)
    ids = np.uint64(2**63) + np.arange(60, dtype=np.uint64) * np.uint64(7)
    pq.write_table(pa.table({"sample_id": ids, **{f"logit_{j}": z[:, j] for j in range(3)}}),
                   tmp_path / "s.parquet")
    order = np.random.default_rng(5).permutation(60)
    if drop_label_of_row is not None:
        order = order[order != drop_label_of_row]
    rows = "\n".join(f"{ids[i]},{y[i]}" for i in order.tolist())
    (tmp_path / "y.csv").write_text("sample_id,y\n" + rows + "\n")
    return tmp_path / "s.parquet", tmp_path / "y.csv", z, y


def test_uint64_ids_beyond_int64_match_the_same_ids_in_a_csv(capsys, tmp_path):
    scores, labels, z, y = _uint64_id_files(tmp_path)
    got = evaluate_json(capsys, "--logits", scores, "--labels", labels, "--label-column", "y")
    assert got["metrics"]["n"] == 60
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    assert row_keys(scores, "sample_id")[0] == "9223372036854775808"


def test_a_missing_uint64_id_is_named_as_written(capsys, tmp_path):
    scores, labels, _, _ = _uint64_id_files(tmp_path, drop_label_of_row=2)
    rc, out, err = call(capsys, "evaluate", "--logits", scores, "--labels", labels, "--label-column", "y")
    assert rc == 1, out
    assert "no label for row 3 of" in err and "(id 9223372036854775822 in column 'sample_id')" in err


# --------------------------------------------------------------------------- 4. float16 labels and ids


def test_float16_labels_read_without_an_overflow_warning(tmp_path):
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 1], dtype=np.float16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_labels(tmp_path / "y.npy").tolist() == [0, 1, 2, 1]


def test_float16_ids_read_without_an_overflow_warning(tmp_path):
    np.savez(tmp_path / "ids.npz", id=np.array([3, 1, 2.5, 7], dtype=np.float16), y=np.arange(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert row_keys(tmp_path / "ids.npz", "id").tolist() == ["3", "1", "2.5", "7"]


# --------------------------------------------------------------------------- 5. a list column of scores


@pytest.mark.parametrize("kind, prefix, type_", [("--logits", "logit_", pa.list_(pa.float32())),
                                                 ("--probs", "p_", pa.list_(pa.float64(), 3))],
                         ids=["list-logits", "fixed-size-list-probs"])
def test_a_list_column_of_scores_is_refused_with_how_to_spread_it(capsys, tmp_path, kind, prefix, type_):
    z, y = decent_logits(30, 3, seed=6)
    scores = z if kind == "--logits" else softmax_rows(z)
    pq.write_table(pa.table({"scores": pa.array(list(scores), type=type_), "y": y}), tmp_path / "s.parquet")
    rc, out, err = call(capsys, "evaluate", kind, tmp_path / "s.parquet", "--labels", tmp_path / "s.parquet",
                        "--label-column", "y")
    assert rc == 1, out
    line = error_line(err)
    assert "row 1, column 'scores': a list of 3 values in one cell, not a number" in line
    assert f"one column per class ({prefix}<class>)" in line
    assert f"df[[f'{prefix}{{j}}' for j in range(3)]] = pd.DataFrame(df.pop('scores').tolist()" in line


def test_a_list_feature_column_is_refused_with_how_to_spread_it(capsys, tmp_path):
    x = np.random.default_rng(7).normal(size=(20, 2))
    pq.write_table(pa.table({"emb": pa.array(list(x), type=pa.list_(pa.float64())), "target": [0, 1] * 10}),
                   tmp_path / "d.parquet")
    rc, out, err = _fit(capsys, tmp_path / "d.parquet", tmp_path)
    assert rc == 1, out
    line = error_line(err)
    assert "a list of 2 values in one cell" in line and "one column per feature" in line
    assert "--ignore emb" in line


# --------------------------------------------------------------------------- 6. blank lines at the end


def _scores_and_labels_text(end: str, tail: str) -> tuple[str, np.ndarray, np.ndarray]:
    z, y = decent_logits(45, 3, seed=8)
    lines = ["p_0,p_1,p_2,y"] + [",".join(map(repr, row)) + f",{label}"
                                 for row, label in zip(softmax_rows(z).tolist(), y.tolist())]
    return end.join(lines) + end + tail, z, y


@pytest.mark.parametrize("end, tail", [("\n", "   \n"), ("\n", "  "), ("\r\n", " \t\r\n\r\n"), ("\r", "\r"),
                                       ("\r", "  \r  \r")],
                         ids=["spaces-lf", "spaces-no-line-end", "spaces-crlf", "cr-only", "spaces-cr-only"])
def test_blank_lines_ending_a_file_are_dropped_in_any_line_end_style(capsys, tmp_path, end, tail):
    text, z, y = _scores_and_labels_text(end, tail)
    (tmp_path / "s.csv").write_bytes(text.encode())
    got = evaluate_json(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "s.csv", "--label-column", "y")
    assert got["metrics"]["n"] == 45
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


def test_fit_reads_a_file_ending_in_a_line_of_spaces(capsys, tmp_path):
    data = _features_csv(tmp_path / "d.csv", [str(k % 2) for k in range(40)])
    data.write_text(data.read_text() + "    \n")
    rc, out, err = _fit(capsys, data, tmp_path)
    assert rc == 0, err
    assert json.loads(out)["n_train"] + json.loads(out)["n_test"] == 40


@pytest.mark.parametrize("end", ["\n", "\r"], ids=["lf", "cr-only"])
def test_a_blank_line_inside_the_table_is_still_refused(capsys, tmp_path, end):
    """Guard (passes before the fix too): only the blank lines that end the file are dropped."""
    text, _, _ = _scores_and_labels_text(end, "")
    lines = text.split(end)
    lines.insert(10, "   ")
    (tmp_path / "s.csv").write_bytes(end.join(lines).encode())
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "s.csv", "--labels", tmp_path / "s.csv",
                        "--label-column", "y")
    assert rc == 1, out
    assert "is blank (spaces only)" in error_line(err)


def test_a_tsv_line_of_tabs_ending_the_file_is_a_row_of_missing_values(capsys, tmp_path):
    """Guard (passes before the fix too): a line of delimiters is a row, not a blank line."""
    text, _, _ = _scores_and_labels_text("\n", "\t\t\t\n")
    (tmp_path / "s.tsv").write_text(text.replace(",", "\t"))
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "s.tsv", "--labels", tmp_path / "s.tsv",
                        "--label-column", "y")
    assert rc == 1, out
    assert "row 46" in error_line(err)
