"""softmaxkit.data on messy real-data files (audit A): a header cell left empty, bool labels, a
comment line, a near-miss column name, a blank line inside a table, and decimal commas in a TSV."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import DataFileError, read_features, read_labels, read_scores


def _write(path, text: str):
    path.write_text(text)
    return path


def _table(path, header: list[str], columns: list[np.ndarray]):
    rows = [",".join(header)] + [",".join(str(v) for v in row) for row in zip(*columns)]
    return _write(path, "\n".join(rows) + "\n")


# --------------------------------------------------------------------------- 1. a header cell left empty


@pytest.mark.parametrize("blank", ["", "Unnamed: 2"])
def test_a_nameless_column_after_a_named_one_is_a_feature(tmp_path, blank):
    """wine with the `proline` header cell blanked (column 13 of 14) was fitted on 12 features as if the
    column were pandas' saved row index: held-out log-loss 0.1021 for 0.0498, exit 0, no warning.
    pandas writes its index first, so only the leading nameless columns are one."""
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 20))
    y = (b > 0).astype(int)
    path = _table(tmp_path / "d.csv", ["a", "b", blank, "y"], [a, b, c, y])
    with pytest.warns(UserWarning, match=rf"column {blank!r} \(position 2\) has no header; read as a feature"):
        data = read_features(path, target="y")
    assert data.feature_names == ["a", "b", blank] and data.ignored == ()
    np.testing.assert_allclose(data.X[:, 2], c)
    # predict finds it by the same name, without a warning: the model was trained on it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = read_features(path, target="y", feature_names=["a", "b", blank])
    np.testing.assert_array_equal(again.X, data.X)


def test_fit_and_predict_use_a_feature_whose_header_is_empty(capsys, tmp_path):
    """End to end: the nameless column is one of the model's features, saved by its (empty) name,
    and predict on the same file matches it by that name."""
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, 80))
    y = (c > 0).astype(int)  # only the nameless column predicts the class
    path = _table(tmp_path / "d.csv", ["a", "b", "", "y"], [a, b, c, y])
    model = tmp_path / "m.npz"
    rc, out, err = call(capsys, "fit", path, "--target", "y", "--out", model, "--no-report", "--json")
    assert rc == 0, err
    assert "has no header; read as a feature" in err, err
    result = json.loads(out)
    assert result["ignored_columns"] == []
    # the reader's warning reaches --json too, not only stderr (a pipeline reads stdout alone)
    assert any("has no header; read as a feature" in line for line in result["warnings"]), result["warnings"]
    rc, _, err = call(capsys, "predict", model, path, "--target", "y", "--out", tmp_path / "p.csv")
    assert rc == 0, err


def test_leading_nameless_columns_are_the_saved_index(tmp_path):
    """A MultiIndex saved twice by pandas writes several leading nameless columns; all are the index."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 12))
    y = np.arange(12) % 2
    path = _table(tmp_path / "d.csv", ["Unnamed: 0", "Unnamed: 1", "a", "b", "y"],
                  [np.arange(12) // 4, np.arange(12) % 4, a, b, y])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a level of a MultiIndex repeats, as an index level may
        data = read_features(path, target="y")
    assert data.feature_names == ["a", "b"] and data.ignored == ("Unnamed: 0", "Unnamed: 1")


def test_a_leading_nameless_column_that_repeats_values_warns(tmp_path):
    """A first column whose header cell is empty holding whole numbers that repeat (wine's magnesium:
    127, 100, 101, ...) was dropped as a saved index without a word: a row index numbers each row once.
    A saved shuffled or filtered frame's index (distinct whole numbers in any order) stays silent."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=30)
    y = np.arange(30) % 2
    feature = _table(tmp_path / "f.csv", ["", "a", "y"], [rng.integers(90, 110, 30), a, y])
    with pytest.warns(UserWarning, match=r"column '' has no header and was left out as a saved row index, but "
                      r"its values repeat"):
        data = read_features(feature, target="y")
    assert data.feature_names == ["a"]
    for index in (rng.permutation(30), np.sort(rng.choice(100, 30, replace=False))):
        saved = _table(tmp_path / "s.csv", ["", "a", "y"], [index, a, y])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert read_features(saved, target="y").ignored == ("",)


def test_a_nameless_score_column_after_named_ones_is_a_class(tmp_path):
    """Only a leading nameless column is a saved index in a score file too; a later one is a class."""
    path = _write(tmp_path / "z.csv", "a,,b\n1.5,2.5,0.5\n0.1,0.2,3.0\n")
    scores = read_scores(path, kind="logit")
    assert scores.values.shape == (2, 3) and scores.columns == ("a", "", "b")
    indexed = _write(tmp_path / "zi.csv", ",a,b\n0,1.5,0.5\n1,0.2,3.0\n")
    assert read_scores(indexed, kind="logit").values.shape == (2, 2)


# --------------------------------------------------------------------------- 2-6. error messages


def test_bool_labels_read_as_zero_and_one(tmp_path):
    """float(True) == 1.0 once made the search for the first bad label name the last row; bool labels are now
    classes 0 (False) and 1 (True) in every format, as numpy and safetensors bool arrays are."""
    path = _write(tmp_path / "y.csv", "label\n" + "\n".join(["True", "False"] * 100) + "\n")
    assert read_labels(path).tolist() == [1, 0] * 100


def test_a_comment_line_before_the_header_is_named(tmp_path):
    path = _write(tmp_path / "c.csv", "# exported 2024\na,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataFileError) as info:
        read_features(path, target="y")
    message = str(info.value)
    assert "line 1 has one field and looks like a comment or title line" in message, message
    assert "decimal comma" not in message, message
    title = _write(tmp_path / "t.csv", "Wine measurements\na,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataFileError, match=r"line 1 has one field and looks like a comment or title line"):
        read_features(title, target="y")
    # one real column with a decimal comma on one row keeps the old hint
    labels = _write(tmp_path / "l.csv", "x\n1\n2,5\n3\n")
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\): has 2 fields but the header has 1 \(a decimal comma"):
        read_features(labels)


def test_a_near_miss_target_name_is_suggested(tmp_path):
    """The header 'target ' (trailing space) with --target target listed 8 of 14 columns, not the near miss."""
    names = [f"f{j}" for j in range(13)] + ["target "]
    path = _write(tmp_path / "d.csv", ",".join(names) + "\n" + ",".join(["1"] * 14) + "\n")
    with pytest.raises(DataFileError, match=r"no column 'target' for --target \(columns: .*\); did you mean "
                       r"'target '\?"):
        read_features(path, target="target")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_blank_line_inside_a_table_is_named(tmp_path, newline):
    """A blank line was reported as "missing value in column 'alcohol'". It is refused, not skipped as
    pandas does: a labels or scores file is paired with another by position, and a line skipped in one
    but not the other would shift every later row."""
    text = newline.join(["a,b,y", "1,2,x", "3,4,z", "", "5,6,x", "7,8,z"]) + newline
    path = _write(tmp_path / "d.csv", "")
    path.write_bytes(text.encode())
    with pytest.raises(DataFileError, match=r"d\.csv: row 3 \(line 4\), column 'a': missing value: line 4 is "
                       r"blank; delete it"):
        read_features(path, target="y")
    with pytest.raises(DataFileError, match=r"line 4 is blank"):
        read_scores(_write(tmp_path / "z.csv", "a,b\n1,2\n3,4\n\n5,6\n"), kind="logit")
    # a row of empty fields is a row of missing values, as before
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\), column 'a': missing value \(empty or NaN\)"):
        read_features(_write(tmp_path / "e.csv", "a,b\n1,2\n,\n3,4\n"))


def test_decimal_commas_in_a_tsv_get_the_decimal_point_hint(tmp_path):
    path = _write(tmp_path / "d.tsv", "a\tb\ty\n14,23\t1,71\t0\n13,2\t1,78\t1\n")
    with pytest.raises(DataFileError, match=r"row 1 \(line 2\), column 'a': non-numeric value '14,23' \(',' in a "
                       r"number: save the file with '\.' as the decimal point"):
        read_features(path, target="y")


# --------------------------------------------------------------------------- 7. a trailing delimiter on every line


def _trailing_comma(path, header: list[str], columns: list[np.ndarray]):
    """A table whose every line, the header's too, ends in ',' (some exporters write one): the last
    column has an empty name and no value on any row."""
    rows = [",".join(header)] + [",".join(str(v) for v in row) for row in zip(*columns)]
    return _write(path, "\n".join(row + "," for row in rows) + "\n")


@pytest.mark.parametrize("blank", ["", "Unnamed: 4"])
def test_an_empty_nameless_column_is_left_out_wherever_it_is(tmp_path, blank):
    """wine saved with ',' ending every line (header '...,target,', rows '...,0,') failed "row 1 (line 2),
    column '': missing value" once a nameless column after a named one became a feature; before, the
    empty column was left out and listed. Only a nameless column holding values is a feature."""
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(size=(3, 20))
    y = (a > 0).astype(int)
    path = _trailing_comma(tmp_path / "d.csv", ["a", "b", "c", "y"], [a, b, c, y])
    if blank:  # pandas' name for it once read and saved again: '...,y,Unnamed: 4' over '...,0,'
        path.write_text(path.read_text().replace("y,\n", f"y,{blank}\n", 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither "read as a feature" nor "its values repeat"
        data = read_features(path, target="y")
    assert data.feature_names == ["a", "b", "c"] and data.ignored == (blank,)
    np.testing.assert_allclose(data.X, np.column_stack([a, b, c]))
    # predict, reading the model's features by name, leaves it out without a word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = read_features(path, target="y", feature_names=["c", "a", "b"])
    assert again.ignored == (blank,)
    # in the middle, too, and with spaces in its cells
    middle = _table(tmp_path / "m.csv", ["a", "", "b", "y"], [a, [" "] * 20, b, y])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_features(middle, target="y").ignored == ("",)
    # a leading empty one is no saved index whose "values repeat"
    plain = _table(tmp_path / "p.csv", ["a", "b", "c", "y"], [a, b, c, y]).read_text()
    leading = _write(tmp_path / "l.csv", "".join("," + line + "\n" for line in plain.splitlines()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_features(leading, target="y").feature_names == ["a", "b", "c"]


def test_an_empty_nameless_parquet_column_is_left_out(tmp_path):
    """The same file read by pandas (an all-NaN 'Unnamed: 4') and saved as Parquet: the streamed reader
    leaves it out as the CSV reader does."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=20), "b": rng.normal(size=20), "y": np.arange(20) % 2,
                          "Unnamed: 3": np.nan})
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = read_features(path, target="y")
    assert data.feature_names == ["a", "b"] and data.ignored == ("Unnamed: 3",)
    scores = tmp_path / "p.parquet"
    pd.DataFrame({"0": [0.2, 0.7], "1": [0.8, 0.3], "": [None, None]}).to_parquet(scores, index=False)
    assert read_scores(scores, kind="probability").columns == ("0", "1")


def test_a_score_file_with_a_trailing_comma_has_no_extra_class(tmp_path):
    """A scores CSV with header '0,1,' read the empty column as a third class and failed "row 1 (line 2),
    column '': missing value"; before, it was scored as two classes."""
    path = _write(tmp_path / "p.csv", "0,1,\n0.2,0.8,\n0.7,0.3,\n0.1,0.9,\n")
    scores = read_scores(path, kind="probability")
    assert scores.values.shape == (3, 2) and scores.columns == ("0", "1") and scores.ignored == ("",)
    # a labels file ending each line in ',' is one column of labels
    np.testing.assert_array_equal(read_labels(_write(tmp_path / "y.csv", "y,\n1,\n0,\n1,\n")), [1, 0, 1])
    # a position that lands on the empty column is refused, naming it (not "missing value")
    with pytest.raises(DataFileError, match=r"--label-column -1 is column '', empty on every row"):
        read_scores(_write(tmp_path / "py.csv", "0,1,y,\n0.2,0.8,1,\n0.7,0.3,0,\n"), kind="probability",
                    exclude=("-1",))


def test_fit_evaluate_and_predict_on_trailing_comma_files(capsys, tmp_path):
    """End to end, as the review audit ran it: fit on a trailing-comma CSV lists the empty column as
    ignored, predict with that model reads the same file, and evaluate scores a '0,1,' file."""
    rng = np.random.default_rng(6)
    a, b, c = rng.normal(size=(3, 80))
    y = (a + b > 0).astype(int)
    path = _trailing_comma(tmp_path / "d.csv", ["a", "b", "c", "target"], [a, b, c, y])
    model = tmp_path / "m.npz"
    rc, out, err = call(capsys, "fit", path, "--target", "target", "--out", model, "--no-report", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["ignored_columns"] == [""], result
    assert not any("has no header" in line for line in result["warnings"]), result["warnings"]
    rc, _, err = call(capsys, "predict", model, path, "--target", "target", "--out", tmp_path / "p.csv")
    assert rc == 0, err
    # a model fitted with the warning's advice, --ignore on the empty column, predicts on the file too
    # (it raised ArrowNotImplementedError: 'count_distinct' has no kernel for the empty column's type)
    rc, _, err = call(capsys, "fit", path, "--target", "target", "--ignore", "-1", "--out", model, "--no-report")
    assert rc == 0, err
    rc, _, err = call(capsys, "predict", model, path, "--target", "target", "--out", tmp_path / "p.csv", "-q")
    assert rc == 0, err
    probs = _write(tmp_path / "s.csv", "0,1,\n0.2,0.8,\n0.7,0.3,\n0.1,0.9,\n")
    labels = _write(tmp_path / "y.csv", "y\n1\n0\n1\n")
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == 1.0 and json.loads(out)["n_classes"] == 2


def test_predict_copies_no_empty_leading_column_as_row_ids(capsys, tmp_path):
    """A ',' starting every line (',a,b,y' over ',0.1,2.3,0') made an empty leading column, copied by
    predict as pandas' saved index: every row's id was missing, and evaluate refused the output."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(2, 60))
    y = (a > 0).astype(int)
    plain = _table(tmp_path / "p.csv", ["a", "b", "y"], [a, b, y]).read_text()
    path = _write(tmp_path / "d.csv", "".join("," + line + "\n" for line in plain.splitlines()))
    model, out = tmp_path / "m.npz", tmp_path / "out.csv"
    rc, _, err = call(capsys, "fit", path, "--target", "y", "--out", model, "--no-report", "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "predict", model, path, "--target", "y", "--out", out, "-q")
    assert rc == 0, err
    assert out.read_text().splitlines()[0] == '"p_0","p_1","prediction"'
    rc, _, err = call(capsys, "evaluate", "--probs", out, "--labels", path, "--label-column", "y", "-q")
    assert rc == 0, err
