"""softmaxkit.data (file readers and writers) and softmaxkit.datasets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmaxkit.data import (
    DataFileError,
    read_columns,
    read_features,
    read_labels,
    read_matrix,
    read_scores,
    write_columns,
)
from softmaxkit.datasets import class_rate_data, load_dataset

FORMATS = [".csv", ".tsv", ".parquet", ".npz", ".safetensors"]


def _write(path, text: str):
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_features_and_target(tmp_path, suffix):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 3))
    y = np.array([0, 1, 2, 0, 1, 2, 1])
    path = write_columns(tmp_path / f"d{suffix}", {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y})
    data = read_features(path, target="label")
    np.testing.assert_allclose(data.X, X, rtol=1e-15)
    np.testing.assert_array_equal(data.y, y)
    assert data.feature_names == ["a", "b", "c"] and data.target_name == "label"


def test_npy_columns_by_position(tmp_path):
    arr = np.column_stack([np.arange(5.0), np.arange(5.0) * 2, [0, 1, 0, 1, 1]])
    np.save(tmp_path / "d.npy", arr)
    data = read_features(tmp_path / "d.npy", target="-1")
    assert data.X.shape == (5, 2) and data.y.tolist() == [0, 1, 0, 1, 1]
    assert data.y.dtype.kind == "i"  # integral floats become class integers


def test_npz_with_X_and_y_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), y=np.array([0, 1, 1, 0]))
    data = read_features(tmp_path / "d.npz", target="y")
    assert data.X.shape == (4, 3) and data.feature_names == ["X[0]", "X[1]", "X[2]"]


def test_string_labels_are_kept(tmp_path):
    path = _write(tmp_path / "d.csv", "x,diagnosis\n1.5,benign\n2.5,malignant\n")
    data = read_features(path, target="diagnosis")
    assert data.y.tolist() == ["benign", "malignant"]


def test_optional_target_may_be_absent(tmp_path):
    path = _write(tmp_path / "d.csv", "x,z\n1,2\n3,4\n")
    data = read_features(path, target="label", require_target=False)
    assert data.y is None and data.X.shape == (2, 2)


def test_read_matrix_and_labels(tmp_path):
    logits = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "z.npy", logits)
    write_columns(tmp_path / "y.csv", {"label": np.array([0, 2, 1, 0])})
    np.testing.assert_array_equal(read_matrix(tmp_path / "z.npy"), logits)
    assert read_labels(tmp_path / "y.csv", n_classes=3).tolist() == [0, 2, 1, 0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_writer_keeps_text_columns(tmp_path, suffix):
    path = write_columns(tmp_path / f"p{suffix}", {"p_a": np.array([0.25, 0.5]), "prediction": np.array(["a", "b"])})
    cols = read_columns(path)
    assert list(cols) == ["p_a", "prediction"]


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_numeric_only_formats_refuse_text(tmp_path, suffix):
    with pytest.raises(DataFileError, match=r"column 'prediction' holds text"):
        write_columns(tmp_path / f"p{suffix}", {"p": np.array([0.5]), "prediction": np.array(["a"])})


def test_writer_never_overwrites_an_input(tmp_path):
    src = write_columns(tmp_path / "in.csv", {"a": np.array([1.0])})
    with pytest.raises(ValueError, match="refusing to overwrite the input"):
        write_columns(src, {"a": np.array([2.0])}, inputs=(src,))
    assert read_matrix_first(src) == 1.0


def read_matrix_first(path) -> float:
    return float(read_features(path).X[0, 0])


# --------------------------------------------------------------------------- errors: one line naming file, row, column


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("a,b\n1,2\n3,abc\n", r"d\.csv: row 2 \(line 3\), column 'b': non-numeric value 'abc'"),
        ("a,b\n1,inf\n3,4\n", r"d\.csv: row 1 \(line 2\), column 'b': non-finite value inf"),
        ("a,b\n1,2\n,4\n", r"d\.csv: row 2 \(line 3\), column 'a': missing value"),
        ("a,b\n1,2\n3\n", r"d\.csv: row 2 \(line 3\): has 1 fields but the header has 2"),
        ("a,b\n", r"d\.csv: the file has no data rows"),
        ("", r"d\.csv: the file is empty"),
    ],
)
def test_bad_csv_messages(tmp_path, text, pattern):
    path = _write(tmp_path / "d.csv", text)
    with pytest.raises(DataFileError, match=pattern) as exc:
        read_features(path)
    assert "\n" not in str(exc.value)


def test_first_bad_cell_in_reading_order(tmp_path):
    path = _write(tmp_path / "d.csv", "a,b\n1,2\n3,x\ny,4\n")
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\), column 'b'"):
        read_features(path)


def test_missing_file_and_column(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.csv: no such file"):
        read_features(tmp_path / "nope.csv")
    path = _write(tmp_path / "d.csv", "a,b\n1,2\n")
    with pytest.raises(DataFileError, match=r"d\.csv: no column 'label' for --target \(columns: 'a', 'b'\)"):
        read_features(path, target="label")


def test_unsupported_extension(tmp_path):
    with pytest.raises(DataFileError, match=r"unsupported file type '\.xlsx'"):
        read_features(_write(tmp_path / "d.xlsx", "x"))


def test_pickled_npy_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    np.save(tmp_path / "evil.npy", np.array([_Evil(str(marker))], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="refused: the file holds pickled Python objects"):
        read_matrix(tmp_path / "evil.npy")
    assert not marker.exists()


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_corrupted_npz(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataFileError, match=r"d\.npz: not a valid \.npz file"):
        read_features(tmp_path / "d.npz")


def test_unequal_array_lengths(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), y=np.zeros(3))
    with pytest.raises(DataFileError, match=r"column 'X\[0\]' has 4 rows but column 'y' has 3"):
        read_features(tmp_path / "d.npz", target="y")


def test_three_dimensional_array(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((2, 2, 2)))
    with pytest.raises(DataFileError, match=r"shape \(2, 2, 2\); expected 1 or 2 dimensions"):
        read_matrix(tmp_path / "d.npy")


def test_label_errors(tmp_path):
    path = _write(tmp_path / "y.csv", "label\n0\n1\n7\n")
    with pytest.raises(DataFileError, match=r"y\.csv: row 3 \(line 4\), column 'label': label 7 is not a class"):
        read_labels(path, n_classes=3)
    path = _write(tmp_path / "s.csv", "label\n0\ncat\n")
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\), column 'label': label 'cat' is not an integer"):
        read_labels(path)
    path = _write(tmp_path / "two.csv", "a,b\n0,1\n1,1\n")  # not one-hot: row 2 has two 1s
    with pytest.raises(DataFileError, match=r"has 2 columns \(.a., .b.\); labels need exactly one"):
        read_labels(path)
    assert read_labels(path, column="b").tolist() == [1, 1]


def test_matrix_needs_two_columns(tmp_path):
    np.save(tmp_path / "z.npy", np.ones(5))
    with pytest.raises(DataFileError, match="need one column per class"):
        read_matrix(tmp_path / "z.npy")


# --------------------------------------------------------------------------- datasets


def test_bundled_datasets():
    bc = load_dataset("breast_cancer")
    assert bc.X.shape == (569, 30) and bc.class_names == ["malignant", "benign"] and bc.unit == "patient"
    digits = load_dataset("digits")
    assert digits.X.shape == (1797, 64) and len(digits.class_names) == 10
    with pytest.raises(ValueError, match="unknown dataset 'iris'"):
        load_dataset("iris")


def test_class_rate_data():
    rates = np.array([[0.2, 0.8], [0.9, 0.1]])
    X, y = class_rate_data(rates, repeats=5000, random_state=1)
    assert X.shape == (10000, 2) and y.shape == (10000,)
    np.testing.assert_allclose([y[:5000].mean(), y[5000:].mean()], [0.8, 0.1], atol=0.02)
    with pytest.raises(ValueError, match="rates row 0 sums to 1.1, not 1"):
        class_rate_data(np.array([[0.5, 0.6]]), repeats=2)
    with pytest.raises(ValueError, match="probability rows"):
        class_rate_data(np.array([[1.5, -0.5]]), repeats=2)
    # rows within 1e-5 of 1 passed the check and then failed inside NumPy (audit); repeats too
    X, y = class_rate_data(np.array([[0.333333] * 3]), repeats=10)
    assert X.shape == (10, 1) and set(y) <= {0, 1, 2}
    for bad in (2.5, -1, 0, True):
        with pytest.raises(ValueError, match="repeats must be a positive int"):
            class_rate_data(rates, repeats=bad)


def test_duplicate_column_names(tmp_path):
    path = _write(tmp_path / "d.csv", "a,a\n1,2\n")
    with pytest.raises(DataFileError, match="the column name 'a' appears twice"):
        read_features(path)


def test_header_made_of_data_is_refused_not_dropped(tmp_path):
    # Audit (issue 15 round): iris saved without a header lost its first row and named features '6.7', '3.3'.
    path = _write(tmp_path / "d.csv", "6.7,3.3,5.7,2.5,virginica\n5.1,3.5,1.4,0.2,setosa\n")
    with pytest.raises(DataFileError, match=r"d\.csv: line 1 looks like data, not a header \(column names "
                                             r"'6\.7', '3\.3', '5\.7', '2\.5' are numbers\)"):
        read_features(path, target="-1")
    labels = _write(tmp_path / "y.csv", "1\n0\n1\n")  # np.savetxt of labels: no header
    with pytest.raises(DataFileError, match=r"y\.csv: line 1 looks like data.*column name '1' is a number"):
        read_labels(labels)
    tsv = _write(tmp_path / "d.tsv", "0.5\t-1e-3\n1\t2\n")
    with pytest.raises(DataFileError, match=r"d\.tsv: line 1 looks like data.*\(tab-separated\)"):
        read_matrix(tsv)
    digits = _write(tmp_path / "g.csv", "0,0,5,13\n0,1,2,3\n")  # repeated numbers: not a 'column named twice'
    with pytest.raises(DataFileError, match="looks like data"):
        read_features(digits)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_logits_may_be_minus_inf_but_not_nan_plus_inf_or_all_minus_inf(tmp_path, suffix):
    def scores(rows, name="z"):
        values = np.array(rows, dtype=np.float64)
        if suffix == ".npy":
            np.save(tmp_path / f"{name}.npy", values)
            return tmp_path / f"{name}.npy"
        return write_columns(tmp_path / f"{name}{suffix}", {f"c{j}": values[:, j] for j in range(values.shape[1])})

    ok = read_scores(scores([[0.0, -np.inf], [-np.inf, 2.0]]), kind="logit").values
    np.testing.assert_array_equal(ok, [[0.0, -np.inf], [-np.inf, 2.0]])
    np.testing.assert_array_equal(read_scores(scores([[-np.inf]]), kind="logit").values, [[-np.inf]])  # P(1) = 0
    where = r"row 2(?: \(line 3\))?"
    with pytest.raises(DataFileError, match=where + r": every logit is -inf, so no class has any probability"):
        read_scores(scores([[0.0, 1.0], [-np.inf, -np.inf]]), kind="logit")
    for bad in (np.nan, np.inf):
        problem = r"(non-finite value (nan|inf)|missing value \(empty or NaN\))"  # arrow reads NaN as missing
        with pytest.raises(DataFileError, match=where + r", column '(c1|1)': " + problem + r"; logit "
                                                 r"values must be finite numbers or -inf \(probability 0\)"):
            read_scores(scores([[0.0, 1.0], [0.0, bad]]), kind="logit")
    # Probabilities and features stay finite.
    with pytest.raises(DataFileError, match=r"probability values must be finite numbers$"):
        read_scores(scores([[0.0, 1.0], [1.0, -np.inf]]), kind="probability")
    with pytest.raises(DataFileError, match=r"feature values must be finite numbers$"):
        read_features(scores([[0.0, 1.0], [1.0, -np.inf]]))


def test_labels_that_are_both_names_and_indices_warn(tmp_path):
    """Audit: with score columns p_1, p_2, p_3 the labels 1, 2 are names; as indices they would mean
    other classes. Names win (the predict -> evaluate chain), with a warning."""
    path = write_columns(tmp_path / "y.csv", {"y": np.array([2, 1, 2])})
    with pytest.warns(UserWarning, match=r"y\.csv: column 'y': the labels are read as class names; as class "
                                         r"indices 0\.\.2 they would name other classes \(label 2 is class index 1\)"):
        np.testing.assert_array_equal(read_labels(path, classes=["1", "2", "3"]), [1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a 3 is no index of 3 classes, and names 0, 1, 2 read the same either way: nothing to warn about
        read_labels(write_columns(tmp_path / "z.csv", {"y": np.array([3, 1])}), classes=["1", "2", "3"])
        read_labels(path, classes=["0", "1", "2"])


def test_integer_names_over_decimal_columns_are_a_header(tmp_path):
    # Spectra with wavelength names (or years): integer names over columns of decimals are names.
    path = _write(tmp_path / "s.csv", "400,410,420,y\n0.11,0.52,0.31,a\n0.12,0.50,0.33,b\n")
    data = read_features(path, target="y")
    assert data.feature_names == ["400", "410", "420"] and data.X.shape == (2, 3)
    # ... but an integer over a column of integers is a data cell: counts saved without a header
    with pytest.raises(DataFileError, match=r"c\.csv: line 1 looks like data.*names '3', '7', '0\.5' are numbers"):
        read_features(_write(tmp_path / "c.csv", "3,7,0.5\n2,9,0.25\n"))


def test_pandas_default_column_names_are_a_header(tmp_path):
    # pandas writes 0, 1, ..., m-1 as the header of an unnamed frame (and '0' for an unnamed series)
    path = _write(tmp_path / "d.csv", "0,1,2,label\n1.5,2,3,a\n4,5,6,b\n")
    data = read_features(path, target="label")
    assert data.feature_names == ["0", "1", "2"] and data.X.shape == (2, 3)
    np.testing.assert_array_equal(read_labels(_write(tmp_path / "y.csv", "0\n1\n2\n")), [1, 2])
    np.testing.assert_array_equal(read_matrix(_write(tmp_path / "z.csv", "nan,inf\n1,2\n")), [[1, 2]])


# --------------------------------------------------------------------------- issue 16: locations and names


def test_semicolon_csv_with_decimal_commas_names_the_line(tmp_path):
    path = _write(tmp_path / "d.csv", "a;b;y\n1,5;2,3;0\n2,5;1,0;1\n")
    with pytest.raises(DataFileError, match=r"d\.csv: row 1 \(line 2\): has 3 fields but the header has 1; "
                                             r"the file looks ';'-separated"):
        read_features(path, target="y")
    path = _write(tmp_path / "e.csv", "a;b;y\n1;2;0\n2;1;1\n")  # no decimal commas: one column 'a;b;y'
    with pytest.raises(DataFileError, match=r"e\.csv: line 1: the header 'a;b;y' is separated by ';'"):
        read_features(path)


def test_features_by_name_in_any_order(tmp_path):
    path = _write(tmp_path / "d.csv", "id,b,label,a\n7,2.0,x,1.0\n8,4.0,y,3.0\n")
    data = read_features(path, feature_names=["a", "b"])
    assert data.X.tolist() == [[1.0, 2.0], [3.0, 4.0]] and data.ignored == ("id", "label")
    with pytest.raises(DataFileError, match=r"no column 'c', which the model was trained on"):
        read_features(path, feature_names=["a", "c"])


def test_labels_as_class_names(tmp_path):
    from softmaxkit.data import read_scores

    path = write_columns(tmp_path / "p.csv", {"p_cat": np.array([0.9, 0.2]), "p_dog": np.array([0.1, 0.8]),
                                              "prediction": np.array(["cat", "dog"])})
    scores = read_scores(path, kind="probability")
    assert scores.classes == ["cat", "dog"] and scores.ignored == ("prediction",)
    y = _write(tmp_path / "y.csv", "label\ndog\ncat\n")
    assert read_labels(y, classes=scores.classes).tolist() == [1, 0]
    bad = _write(tmp_path / "bad.csv", "label\ndog\nDog\n")
    with pytest.warns(UserWarning, match="differ only in case"), pytest.raises(
        DataFileError, match=r"row 2 \(line 3\), column 'label': label 'Dog' is not a class \(cat, dog\); "
        r"did you mean 'dog'\?"
    ):
        read_labels(bad, classes=scores.classes)
    ints = _write(tmp_path / "i.csv", "label\n1\n0\n")  # integer indices still work when no name matches
    with pytest.warns(UserWarning, match=r"read as column positions \(0 = 'cat', 1 = 'dog'\)"):
        assert read_labels(ints, classes=scores.classes).tolist() == [1, 0]


def test_empty_label_is_an_error(tmp_path):
    path = _write(tmp_path / "d.csv", 'x,label\n1,cat\n2," "\n')
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\), column 'label': empty label"):
        read_features(path, target="label")


def test_blank_line_is_a_row_not_skipped(tmp_path):
    """A blank line inside a table is a row with every value missing, so the line numbers
    in errors stay true and a one-column label file's blank line is an empty label (not a
    silently shorter file). Blank lines at the end of the file are only the end."""
    labels = _write(tmp_path / "y.csv", "y\na\n\nb\n")
    with pytest.raises(DataFileError, match=r"y\.csv: row 2 \(line 3\), column 'y': empty label"):
        read_labels(labels, classes=["a", "b"])
    features = _write(tmp_path / "d.csv", "a,b\n1,2\n\n3,x\n")
    with pytest.raises(DataFileError, match=r"d\.csv: row 2 \(line 3\), column 'a': missing value"):
        read_features(features)
    trailing = _write(tmp_path / "t.csv", "a,b\n1,2\n3,4\n\n\n")
    np.testing.assert_array_equal(read_features(trailing).X, [[1, 2], [3, 4]])
    assert read_labels(_write(tmp_path / "t1.csv", "y\na\nb\n\n"), classes=["a", "b"]).tolist() == [0, 1]
    assert read_labels(_write(tmp_path / "t2.csv", "y\na\nb\n  \n"), classes=["a", "b"]).tolist() == [0, 1]
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"a,b\r\n1,2\r\n3,4\r\n\r\n")
    np.testing.assert_array_equal(read_features(crlf).X, [[1, 2], [3, 4]])
    # Audit: a last line of only delimiters is a row of missing values, not an editor's newline.
    for name, text in (("d.csv", "a,b\n1,2\n3,4\n,\n"), ("d.tsv", "a\tb\n1\t2\n3\t4\n\t\n")):
        with pytest.raises(DataFileError, match=r"row 3 \(line 4\), column 'a': missing value"):
            read_features(_write(tmp_path / name, text))


@pytest.mark.parametrize("index_name", ["", "Unnamed: 0", "__index_level_0__"])
def test_a_saved_row_index_is_not_a_feature(tmp_path, index_name):
    """Audit: pandas' to_csv (index=True, its default) adds an unnamed first column of row numbers, which
    fit took as a feature: digits trained on 65 features, the row order leaking into the model."""
    X = np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 2.5], [0.5, 1.5]])
    columns = {index_name: np.arange(4), "a": X[:, 0], "b": X[:, 1], "y": np.array(["x", "z", "x", "z"])}
    suffixes = [".csv", ".parquet"] if index_name.startswith("__") or not index_name else [".csv"]
    for suffix in suffixes:
        path = write_columns(tmp_path / f"d{suffix}", columns)
        data = read_features(path, target="y")
        assert data.feature_names == ["a", "b"] and data.ignored == (index_name,)
        np.testing.assert_array_equal(data.X, X)
    # a model trained on such a column (before) still finds it by name
    assert read_features(path, target="y", feature_names=[index_name, "a"]).feature_names == [index_name, "a"]


def test_scores_of_the_other_kind_are_refused_in_words(tmp_path):
    logits = _write(tmp_path / "z.csv", "logit_a,logit_b\n1,2\n3,4\n")
    with pytest.raises(DataFileError, match=r"z\.csv: its logit_<class> columns hold logits, not probabilities; "
                       r"pass the file with --logits"):
        read_scores(logits, kind="probability")
    probs = _write(tmp_path / "p.csv", "p_a,p_b\n0.5,0.5\n")
    with pytest.raises(DataFileError, match=r"hold probabilities, not logits; pass the file with --probs"):
        read_scores(probs, kind="logit")


def test_mapped_npy_scores_are_not_copied(tmp_path):
    from softmaxkit.data import read_scores

    np.save(tmp_path / "z.npy", np.arange(12.0, dtype=np.float32).reshape(4, 3))
    scores = read_scores(tmp_path / "z.npy", kind="logit")
    assert isinstance(scores.values, np.memmap) and scores.values.dtype == np.float32
    z = np.zeros((4, 3))
    z[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", z)
    with pytest.raises(DataFileError, match=r"nan\.npy: row 3, column '1': non-finite value nan"):
        read_scores(tmp_path / "nan.npy", kind="logit")


def test_parquet_features_by_name_in_pieces(tmp_path, monkeypatch):
    """The Parquet path reads only the selected columns, in pieces, into the same matrix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import softmaxkit.data as data

    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 3))
    table = pa.table({"c": X[:, 2], "label": np.array(["x", "y"] * 500), "a": X[:, 0], "b": X[:, 1]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=300)  # 4 row groups
    monkeypatch.setattr(data, "_BATCH_VALUES", 600)  # pieces of two columns at most
    got = read_features(tmp_path / "d.parquet", target="label", feature_names=["a", "b", "c"])
    np.testing.assert_array_equal(got.X, X)
    assert got.y.tolist() == ["x", "y"] * 500 and got.ignored == ()
    X[650, 1] = np.nan
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1]}), tmp_path / "n.parquet", row_group_size=300)
    with pytest.raises(DataFileError, match=r"n\.parquet: row 651, column 'b': non-finite value nan"):
        read_features(tmp_path / "n.parquet")


def test_the_wrong_delimiter_for_the_extension_is_named(tmp_path):
    """A tab-separated .csv read as one column: the error was "no column 'label' (columns: 'a\\tb\\t...')"."""
    with pytest.raises(DataFileError, match=r"separated by '\\t', not by the \.csv delimiter; name the file x\.tsv"):
        read_columns(_write(tmp_path / "x.csv", "a\tb\tlabel\n1\t2\t0\n"))
    with pytest.raises(DataFileError, match=r"separated by ',', not by the \.tsv delimiter; name the file y\.csv"):
        read_columns(_write(tmp_path / "y.tsv", "a,b\n1,2\n"))


def test_a_target_of_fractional_numbers_is_refused_naming_row_and_value(tmp_path):
    """A measurement taken for the target reached scikit-learn's "Unknown label type: continuous"."""
    path = _write(tmp_path / "wine.csv", "alcohol,ash\n13.2,2.43\n12.1,2.0\n")
    with pytest.raises(DataFileError, match=r"row 1 \(line 2\), column 'ash': label 2.43 is not a whole number"):
        read_features(path, target="ash")
    whole = _write(tmp_path / "whole.csv", "alcohol,cls\n13.2,1.0\n12.1,2.0\n")
    assert read_features(whole, target="cls").y.tolist() == [1, 2]


# --------------------------------------------------------------------------- .npz / .safetensors of several arrays


def _save_arrays(path, arrays):
    """``np.savez`` for ``.npz``; safetensors' own writer (which stores ``labels`` before ``logits``) otherwise."""
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    return path


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_the_scores_of_a_file_of_several_arrays_are_the_logits_array(tmp_path, suffix):
    """``np.savez(f, logits=L, labels=y)``: every array was read as columns, the labels as an 11th class
    (accuracy 0.91 for 0.97, exit 0), or as class 0 in a .safetensors, which stores ``labels`` first."""
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(8, 3)), np.array([0, 1, 2, 0, 1, 2, 1, 0])
    path = _save_arrays(tmp_path / f"val{suffix}", {"logits": z, "labels": y})
    got = read_scores(path, kind="logit")
    np.testing.assert_array_equal(got.values, z)
    assert got.ignored == ("labels",) and got.columns == ("logits[0]", "logits[1]", "logits[2]")
    # the same file gives the labels, without --label-column
    assert read_labels(path, n_classes=3).tolist() == y.tolist()
    assert read_labels(path, column="labels", n_classes=3).tolist() == y.tolist()
    # one 2-D array is the scores whatever its name; a labels array is never a score
    path = _save_arrays(tmp_path / f"out{suffix}", {"outputs": z, "target": y})
    np.testing.assert_array_equal(read_scores(path, kind="probability").values, z)
    assert read_labels(path).tolist() == y.tolist()
    # several candidates: the one named for the kind, else refused naming the arrays
    path = _save_arrays(tmp_path / f"both{suffix}", {"logits": z, "probs": z / 10, "labels": y})
    np.testing.assert_array_equal(read_scores(path, kind="logit").values, z)
    np.testing.assert_array_equal(read_scores(path, kind="probability").values, z / 10)
    path = _save_arrays(tmp_path / f"two{suffix}", {"a": z, "b": z, "labels": y})
    with pytest.raises(DataFileError, match=r"holds several arrays \(.*'labels' \(8,\).*\), so which one holds the "
                       r"logits is unclear: save them as the one array named 'logits'"):
        read_scores(path, kind="logit")


def test_arrays_named_for_the_other_kind_are_refused_in_words(tmp_path):
    np.savez(tmp_path / "p.npz", probs=np.full((2, 2), 0.5), labels=np.array([0, 1]))
    with pytest.raises(DataFileError, match=r"p\.npz: its array 'probs' holds probabilities, not logits; pass the "
                       r"file with --probs"):
        read_scores(tmp_path / "p.npz", kind="logit")


def test_a_file_of_one_dimensional_arrays_leaves_out_its_labels(tmp_path):
    """1-D arrays are a table stored column by column (as write_columns writes .npz): with names that do not say
    they are per-class columns they are refused (a binary model's `scores` and `preds` read as two classes),
    and once --classes names them each is a class, and the integer array named as labels is left out."""
    np.savez(tmp_path / "t.npz", a=np.array([0.1, 0.2]), b=np.array([0.3, 0.4]), y=np.array([1, 0]))
    with pytest.raises(DataFileError, match="whose names do not say"):
        read_scores(tmp_path / "t.npz", kind="logit")
    got = read_scores(tmp_path / "t.npz", kind="logit", classes=("a", "b"))
    assert got.columns == ("a", "b") and got.ignored == ("y",)
    np.testing.assert_array_equal(got.values, [[0.1, 0.3], [0.2, 0.4]])


def test_several_arrays_and_no_labels_array_is_refused_naming_them(tmp_path):
    np.savez(tmp_path / "v.npz", logits=np.ones((2, 3)), truth=np.array([0, 1]))
    with pytest.raises(DataFileError, match=r"v\.npz: holds 2 arrays \('logits' \(2, 3\), 'truth' \(2,\)\); name "
                       r"the labels' array with --label-column, or save it as 'labels'"):
        read_labels(tmp_path / "v.npz")
    assert read_labels(tmp_path / "v.npz", column="truth").tolist() == [0, 1]


# --------------------------------------------------------------------------- one-hot labels


def test_one_hot_labels_are_read_as_class_indices(tmp_path):
    """A (N, C) 0/1 matrix was refused as "has 10 columns ... (name it with --label-column)", and following
    that advice read column 0's 0/1 values as classes 0 and 1 (accuracy 0.0, exit 0)."""
    y = np.array([2, 0, 1, 2, 1])
    np.save(tmp_path / "y.npy", np.eye(3)[y])
    with pytest.warns(UserWarning, match=r"y\.npy: its 3 columns are read as one-hot labels .*\(column j is class j"):
        assert read_labels(tmp_path / "y.npy", n_classes=3).tolist() == y.tolist()
    with pytest.raises(DataFileError, match=r"y\.npy: column '0' is one of 3 one-hot label columns \(0 or 1, a "
                       r"single 1 per row\), not class indices; give the file without --label-column"):
        read_labels(tmp_path / "y.npy", column="0", n_classes=3)
    with pytest.raises(DataFileError, match=r"has 3 columns of one-hot labels but the scores have 4 classes"):
        read_labels(tmp_path / "y.npy", n_classes=4)
    # in an .npz beside the logits, as the labels array
    np.savez(tmp_path / "v.npz", logits=np.zeros((5, 3)), labels=np.eye(3, dtype=np.int64)[y])
    with pytest.warns(UserWarning, match="one-hot"):
        assert read_labels(tmp_path / "v.npz", n_classes=3).tolist() == y.tolist()


def test_one_hot_columns_named_for_classes_map_by_name(tmp_path):
    """pd.get_dummies(y).to_csv: columns named for the classes, in any order."""
    path = _write(tmp_path / "y.csv", "dog,cat\n1,0\n0,1\n0,1\n")
    with pytest.warns(UserWarning, match=r"\(by column name\)"):
        assert read_labels(path, classes=["cat", "dog"]).tolist() == [1, 0, 0]
    with pytest.raises(DataFileError, match=r"column 'dog' of its one-hot labels is not a class of the scores"):
        read_labels(path, classes=["cat", "bird"])


# --------------------------------------------------------------------------- .safetensors dtypes


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_sixteen_bit_safetensors_are_read_as_float(tmp_path, dtype):
    """bfloat16, the usual dtype of a language model's logits, was "not a valid .safetensors file
    (TypeError: data type 'bfloat16' not understood)"."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    z = np.random.default_rng(1).normal(scale=4, size=(6, 5))
    tensor = torch.tensor(z, dtype=getattr(torch, dtype))
    save_file({"logits": tensor, "labels": torch.tensor([0, 1, 2, 3, 4, 0])}, str(tmp_path / "z.safetensors"))
    got = read_scores(tmp_path / "z.safetensors", kind="logit")
    np.testing.assert_array_equal(got.values, tensor.float().numpy())  # the widening is exact
    np.testing.assert_allclose(got.values, z, rtol=2 ** -8 if dtype == "bfloat16" else 2 ** -11)
    assert read_labels(tmp_path / "z.safetensors").tolist() == [0, 1, 2, 3, 4, 0]


def test_malformed_safetensors_are_refused_in_words(tmp_path):
    import json
    import struct

    def write(name, header, data=b""):
        text = json.dumps(header).encode()
        (tmp_path / name).write_bytes(struct.pack("<Q", len(text)) + text + data)
        return tmp_path / name

    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(DataFileError, match=r"tiny\.safetensors: not a valid \.safetensors file \(shorter than"):
        read_columns(tmp_path / "tiny.safetensors")
    (tmp_path / "long.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(DataFileError, match=r"not a valid \.safetensors file \(header length 1099511627776 exceeds"):
        read_columns(tmp_path / "long.safetensors")
    (tmp_path / "text.safetensors").write_bytes(struct.pack("<Q", 3) + b"{x}")
    with pytest.raises(DataFileError, match=r"not a valid \.safetensors file \(the header is not JSON\)"):
        read_columns(tmp_path / "text.safetensors")
    cut = write("cut.safetensors", {"z": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 8)
    with pytest.raises(DataFileError, match=r"tensor 'z': data_offsets \[0, 16\] do not hold a F32 array of shape"):
        read_columns(cut)
    f8 = write("f8.safetensors", {"z": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2)
    with pytest.raises(DataFileError, match=r"f8\.safetensors: array 'z' has dtype F8_E4M3, which softmaxkit does "
                       r"not read; save it as float32"):
        read_columns(f8)
    ok = write("ok.safetensors", {"__metadata__": {"a": "b"}, "z": {"dtype": "F32", "shape": [2],
                                                                         "data_offsets": [0, 8]}},
               np.array([1.5, -2.0], dtype="<f4").tobytes())
    assert read_columns(ok)["z"].tolist() == [1.5, -2.0]


def test_safetensors_written_here_keep_their_column_order(tmp_path):
    """The format stores tensors sorted (class 10 before class 2, "apple" before "zebra");
    write_columns records the order and read_columns restores it (audit: one-hot labels and
    --by-position against softmaxkit's own .safetensors output paired the wrong classes:
    accuracy 0.13 for 0.47, T = 137.5 for 0.975)."""
    names = [f"p_{k}" for k in range(12)] + ["p_zebra", "p_apple"]
    columns = {name: np.full(3, float(j)) for j, name in enumerate(names)}
    write_columns(tmp_path / "o.safetensors", columns)
    read = read_columns(tmp_path / "o.safetensors")
    assert list(read) == names
    for j, name in enumerate(names):
        np.testing.assert_array_equal(read[name], j)
    # A file from elsewhere (no recorded order) keeps the file's own order.
    from safetensors.numpy import save_file

    save_file({"b": np.zeros(2), "a": np.ones(2)}, str(tmp_path / "x.safetensors"))
    assert list(read_columns(tmp_path / "x.safetensors")) == ["a", "b"]


# --------------------------------------------------------------------------- files as real tools write them (audit)


@pytest.mark.parametrize("marker", ["NA", "null", "NaN", "#N/A", "None"])
def test_missing_value_markers_as_labels_are_refused_not_a_class(tmp_path, marker):
    """``df.to_csv(na_rep="NA")`` with missing labels trained a model with an extra class "NA", exit 0."""
    rows = ["x1,x2,label"] + [f"{i},{i % 3},{'a' if i % 2 else 'b'}" for i in range(10)]
    rows[4] = f"3,0,{marker}"
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=f"row 4 \\(line 5\\), column 'label': missing label '{marker}' "
                                            "\\(1 row\\): pandas reads it as a missing value"):
        read_features(tmp_path / "d.csv", target="label")


def test_a_pandas_index_saved_in_parquet_is_not_a_feature(tmp_path):
    """``df.set_index("patient_id").to_parquet()`` made the id a fifth feature (pandas reads it as the index)."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"patient_id": [107, 103, 111, 105], "a": [0.1, 0.2, 0.3, 0.4], "y": ["u", "v", "u", "v"]})
    df.set_index("patient_id").to_parquet(tmp_path / "d.parquet")
    got = read_features(tmp_path / "d.parquet", target="y")
    assert got.feature_names == ["a"]


@pytest.mark.parametrize("cell", ["1_5", "\uff11\uff12", "\u0663"])
def test_numbers_python_reads_but_pandas_keeps_as_text_are_refused(tmp_path, cell):
    (tmp_path / "d.csv").write_text(f"x1,x2,label\n{cell},2,a\n3,4,b\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="column 'x1': non-numeric value"):
        read_features(tmp_path / "d.csv", target="label")


def test_a_label_too_large_for_an_integer_is_refused(tmp_path):
    """1e20 became -9223372036854775808 with only a NumPy RuntimeWarning."""
    (tmp_path / "d.csv").write_text("x1,label\n1,1e20\n2,0\n")
    with pytest.raises(DataFileError, match="label 1e\\+20 is too large to be a class number"):
        read_features(tmp_path / "d.csv", target="label")


def test_quoted_newlines_and_lines_longer_than_a_block_read_as_pandas_does(tmp_path):
    """pyarrow reads 1 MB blocks split at newlines: a quoted newline past the first block was refused
    ("Expected 4 columns, got 3") and a line longer than a block failed ("straddling object"; the
    process then hung at exit). Both are valid CSV."""
    pd = pytest.importorskip("pandas")
    n = 30000
    frame = pd.DataFrame({"x1": np.arange(n) * 0.5, "note": [f"line {i}\nsecond, with comma" for i in range(n)],
                          "label": np.where(np.arange(n) % 2, "a", "b")})
    frame.to_csv(tmp_path / "multi.csv", index=False)
    assert (tmp_path / "multi.csv").stat().st_size > 1 << 20
    got = read_features(tmp_path / "multi.csv", target="label", ignore=("note",))
    np.testing.assert_array_equal(got.X[:, 0], frame["x1"].to_numpy())
    long = pd.DataFrame({"x1": [1.0, 2.0, 3.0], "note": ["z" * (3 << 20), "short", "s"], "label": ["a", "b", "a"]})
    long.to_csv(tmp_path / "long.csv", index=False)
    got = read_features(tmp_path / "long.csv", target="label", ignore=("note",))
    np.testing.assert_array_equal(got.X[:, 0], [1.0, 2.0, 3.0])


def test_a_windows_1252_file_is_refused_naming_file_row_and_encoding(tmp_path):
    """Excel's plain "CSV (Comma delimited)" is Windows-1252: the error was "'ascii' codec can't decode
    byte 0xe9", naming neither the file nor the encoding (a header failed with a bare UnicodeDecodeError)."""
    (tmp_path / "labels.csv").write_bytes("x1,label\n1,s\xe9tosa\n2,b\n".encode("cp1252"))
    with pytest.raises(DataFileError, match="labels.csv: row 1 \\(line 2\\), column 'label': not UTF-8 text "
                                            "\\(byte 0xe9: Windows-1252"):
        read_features(tmp_path / "labels.csv", target="label")
    (tmp_path / "header.csv").write_bytes("L\xe4nge,label\n1,a\n2,b\n".encode("cp1252"))
    with pytest.raises(DataFileError, match="header.csv: line 1 \\(the header\\): not UTF-8 text \\(byte 0xe4"):
        read_features(tmp_path / "header.csv", target="label")


def test_utf16_and_a_header_without_a_newline_are_named(tmp_path):
    """A UTF-16 TSV (Excel's "Unicode Text") was refused as "has 1 fields but the header has 5", and a
    header-only file without a final newline as pyarrow's "Empty CSV file or block"."""
    (tmp_path / "u.tsv").write_bytes("x1\tlabel\n1\ta\n2\tb\n".encode("utf-16"))
    with pytest.raises(DataFileError, match="u.tsv: UTF-16 text"):
        read_features(tmp_path / "u.tsv", target="label")
    (tmp_path / "h.csv").write_text("x1,x2,label")
    with pytest.raises(DataFileError, match="h.csv: the file has no data rows$"):
        read_features(tmp_path / "h.csv", target="label")


# --------------------------------------------------------------------------- zero-padded labels


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_zero_padded_labels_are_class_names_as_in_parquet(tmp_path, suffix):
    """pyarrow (like pandas) reads "01" as 1: classes 01, 1, 2 of a CSV became two (audit: accuracy 0.475
    against 0.782 from the same table in Parquet, exit 0). They are text, as a Parquet string column."""
    sep = "\t" if suffix == ".tsv" else ","
    rows = [("0.5", "01"), ("1.5", "03"), ("2.5", "2"), ("3.5", "01")]
    text = _write(tmp_path / f"d{suffix}", f"a{sep}label\n" + "".join(f"{a}{sep}{y}\n" for a, y in rows))
    parquet = write_columns(tmp_path / "d.parquet", {"a": np.array([0.5, 1.5, 2.5, 3.5]),
                                                     "label": np.array(["01", "03", "2", "01"])})
    from_text, from_parquet = read_features(text, target="label").y, read_features(parquet, target="label").y
    np.testing.assert_array_equal(from_text, ["01", "03", "2", "01"])
    np.testing.assert_array_equal(from_text, from_parquet)
    assert len(np.unique(from_text)) == 3
    # "01" beside "1": one number written two ways, which pandas reads as one class (audit CJ F1)
    clash = _write(tmp_path / f"c{suffix}", f"a{sep}label\n0.5{sep}01\n1.5{sep}1\n2.5{sep}2\n")
    with pytest.raises(DataFileError, match="written 2 ways"):
        read_features(clash, target="label")


def test_labels_without_a_leading_zero_stay_numbers(tmp_path):
    path = _write(tmp_path / "d.csv", "a,label\n0.5,1\n1.5,0\n2.5,10\n3.5,1.0\n")
    y = read_features(path, target="label").y
    assert y.dtype.kind == "i"
    np.testing.assert_array_equal(y, [1, 0, 10, 1])


def test_a_zero_padded_label_matches_its_class_name_not_the_number(tmp_path):
    """Scores naming classes 01, 1, 2 and labels 01, 2: "01" read as 1 was scored as class "1"."""
    path = _write(tmp_path / "y.csv", "label\n01\n2\n01\n")
    np.testing.assert_array_equal(read_labels(path, classes=["01", "1", "2"]), [0, 2, 0])
    plain = _write(tmp_path / "y1.csv", "label\n1\n2\n")
    np.testing.assert_array_equal(read_labels(plain, classes=["01", "1", "2"]), [1, 2])


def test_zero_padded_class_indices_are_indices(tmp_path):
    path = _write(tmp_path / "y.csv", "label\n00\n01\n02\n01\n")
    np.testing.assert_array_equal(read_labels(path, n_classes=3), [0, 1, 2, 1])


def test_two_spellings_of_one_class_index_are_refused(tmp_path):
    path = _write(tmp_path / "y.csv", "label\n01\n1\n2\n")
    with pytest.raises(DataFileError, match=r"y.csv: column 'label': labels '01' and '1' are both class 1"):
        read_labels(path, n_classes=3)


def test_zero_padded_labels_match_integer_classes_by_value(tmp_path):
    """A model fitted on integer labels has classes 0, 1, 2: labels written 00, 01, 02 are those numbers
    (audit: refused as "label '02' is not a class (0, 1, 2)" once zero-padded labels were kept as text)."""
    path = _write(tmp_path / "y.csv", "label\n00\n02\n01\n")
    np.testing.assert_array_equal(read_labels(path, classes=np.array([0, 1, 2])), [0, 2, 1])
    np.testing.assert_array_equal(read_labels(path, classes=["0", "1", "2"]), [0, 2, 1])
    # Text class names are matched on the text: "01" is not the class "1" of ["01", "1", "2"] ...
    text_names = _write(tmp_path / "z.csv", "label\n01\n2\n")
    np.testing.assert_array_equal(read_labels(text_names, classes=["01", "1", "2"]), [0, 2])
    # ... and a zero-padded label of no integer class is still refused.
    with pytest.raises(DataFileError, match=r"label '03' is not a class"):
        read_labels(_write(tmp_path / "w.csv", "label\n00\n03\n"), classes=np.array([0, 1, 2]))
