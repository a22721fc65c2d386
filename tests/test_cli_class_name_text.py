"""Class names in a CSV are the text written, as pandas reads them, never pyarrow's guess at a type.

Each case is one the audit of 2026-12-07 (AK) found: a CSV label column of hex-like names
(``0x0`` .. ``0x10``) was read by pyarrow as the integers 0..16 and then as column positions of
text-sorted classes (accuracy 0.0735 and log-loss 4.66 where the same labels from Parquet give 0.4191
and 1.7134, exit 0); ``fit`` renamed classes ``0x10`` -> ``16`` and ``00:01`` -> ``00:01:00``, and
crashed on dates after training; ``' a'`` and ``'a'`` were two classes no later command could read;
Arabic-Indic digits matched integer classes; NFC and NFD spellings of one name were two classes with
no warning. Figures are checked against pandas' reading of the same file.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

from cli_helpers import call, error_line

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def _table(names, *, n=240, seed=0):
    """Two features that separate ``names`` (class k shifts the features by 2k) and the class column."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(names), n)
    k[:len(names)] = np.arange(len(names))  # every class present
    X = rng.normal(size=(n, 2)) + 2.0 * np.column_stack([k, -k])
    return pd.DataFrame({"f0": X[:, 0], "f1": X[:, 1], "y": np.asarray(names, dtype=object)[k]})


def _fit(capsys, train, model):
    rc, out, err = call(capsys, "fit", train, "--target", "y", "--out", model, "--no-report", "--json")
    return rc, (json.loads(out) if rc == 0 else None), err


@pytest.mark.parametrize("names", [["0x1", "0x2", "0x10"], ["00:01", "00:02", "00:10"],
                                   ["2020-01-01", "2020-02-01", "2021-01-01"],
                                   ["2020-01-01 10:00", "2020-01-01 11:00", "2020-01-02 10:00"]])
def test_csv_class_names_are_the_text_written(capsys, tmp_path, names):
    """``fit`` on a CSV keeps the class names pandas reads (hex, times and dates were renamed or
    crashed: ``0x10`` -> ``p_16``; ``00:01`` -> ``p_00:01:00``; dates: "got datetime64[D]")."""
    _table(names).to_csv(tmp_path / "train.csv", index=False)
    rc, got, err = _fit(capsys, tmp_path / "train.csv", tmp_path / "m.npz")
    assert rc == 0, err
    expected = sorted(pd.read_csv(tmp_path / "train.csv").y.unique())
    assert [str(c) for c in got["classes"]] == expected
    # predict writes p_<name as written>, and its predictions are the names pandas reads in the labels
    test = tmp_path / "test.csv"
    _table(names, n=90, seed=1).to_csv(test, index=False)
    rc, _, err = call(capsys, "predict", tmp_path / "m.npz", test, "--out", tmp_path / "pred.csv", "-q")
    assert rc == 0, err
    pred = pd.read_csv(tmp_path / "pred.csv", dtype=str)
    assert list(pred.columns) == [f"p_{c}" for c in expected] + ["prediction"]
    assert set(pred.prediction) <= set(expected)
    assert (pred.prediction == pd.read_csv(test).y).mean() > 0.5


def _hex_scores(tmp_path, n=340):
    """Probabilities over 17 classes named ``0x0`` .. ``0x10`` (columns in sorted text order, as predict
    writes them) as Parquet, and the labels as CSV and Parquet."""
    names = sorted(hex(i) for i in range(17))
    rng = np.random.default_rng(5)
    y = rng.integers(0, 17, n)
    z = rng.normal(size=(n, 17))
    z[np.arange(n), y] += 2.0
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    pd.DataFrame({f"p_{c}": p[:, j] for j, c in enumerate(names)}).to_parquet(tmp_path / "pred.parquet", index=False)
    labels = pd.DataFrame({"y": np.asarray(names)[y]})
    labels.to_csv(tmp_path / "y.csv", index=False)
    labels.to_parquet(tmp_path / "y.parquet", index=False)
    return names, p


def test_hex_labels_in_a_csv_are_names_not_positions(capsys, tmp_path):
    """The audit's repro: labels ``0x0`` .. ``0x10`` from CSV were read as positions 0..16 (accuracy 0.0735
    for 0.4191, exit 0). The CSV now gives what the Parquet labels and pandas give."""
    from sklearn.metrics import log_loss

    names, p = _hex_scores(tmp_path)
    truth = pd.read_csv(tmp_path / "y.csv").y  # pandas: the text '0x10', not 16
    accuracy = float((np.asarray(names)[p.argmax(1)] == truth).mean())
    loss = log_loss(truth, p, labels=names)
    for labels in ("y.csv", "y.parquet"):
        rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "pred.parquet", "--labels", tmp_path / labels,
                            "--label-column", "y", "--json")
        assert rc == 0, err
        assert "column positions" not in err
        metrics = json.loads(out)["metrics"]
        assert metrics["accuracy"] == pytest.approx(accuracy)
        assert metrics["log_loss"] == pytest.approx(loss, rel=1e-9)


def test_a_hex_label_never_matches_an_integer_class(capsys, tmp_path):
    """``0x0a`` was read as 10 and scored as class 10 of integer classes (1, 2, 10); pandas reads the text."""
    p = np.full((3, 3), 1 / 3)
    pd.DataFrame({"p_1": p[:, 0], "p_2": p[:, 1], "p_10": p[:, 2]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"y": ["1", "2", "0x0a"]}).to_csv(tmp_path / "y.csv", index=False)
    rc, _, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv",
                      "--label-column", "y")
    assert rc != 0
    assert "row 3" in error_line(err) and "'0x0a' is not a class" in error_line(err)


@pytest.mark.parametrize("digits", ["\u0661\u0660", "\uff11\uff10"])  # Arabic-Indic and fullwidth "10"
def test_non_ascii_digits_are_no_class_number(capsys, tmp_path, digits):
    """'١٠' matched the integer class 10 (``\\d`` matches any script's digits); pandas reads text."""
    p = np.full((3, 3), 1 / 3)
    pd.DataFrame({"p_1": p[:, 0], "p_2": p[:, 1], "p_10": p[:, 2]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"y": ["1", "2", digits]}).to_csv(tmp_path / "y.csv", index=False)
    rc, _, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv",
                      "--label-column", "y")
    assert rc != 0
    assert f"{digits!r} is not a class" in error_line(err)


def test_plain_numbers_in_a_csv_stay_numbers(capsys, tmp_path):
    """The text rule leaves plain decimal labels numbers, as pandas reads them: classes 1, 2, 10 (not
    the text order 1, 10, 2), ``+2`` and `` 10`` the same classes."""
    frame = _table([1, 2, 10])
    frame.to_csv(tmp_path / "train.csv", index=False)
    rc, got, err = _fit(capsys, tmp_path / "train.csv", tmp_path / "m.npz")
    assert rc == 0, err
    assert got["classes"] == sorted(pd.read_csv(tmp_path / "train.csv").y.unique().tolist()) == [1, 2, 10]
    (tmp_path / "y.csv").write_text("y\n1\n+2\n 10\n")
    assert pd.read_csv(tmp_path / "y.csv").y.tolist() == [1, 2, 10]
    pd.DataFrame({"p_1": [0.8, 0.1, 0.1], "p_2": [0.1, 0.8, 0.1], "p_10": [0.1, 0.1, 0.8]}).to_csv(
        tmp_path / "p.csv", index=False)
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv", "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == 1.0


def test_date_labels_outside_a_text_table_are_refused_before_training(capsys, tmp_path):
    """A Parquet date column has no text as written: refused naming file and column, not after training
    with "class labels must be str, int, float or bool to be saved, got datetime64[D]"."""
    import datetime

    frame = _table([datetime.date(2020, 1, 1), datetime.date(2020, 2, 1), datetime.date(2021, 1, 1)])
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    rc, _, err = _fit(capsys, tmp_path / "train.parquet", tmp_path / "m.npz")
    assert rc != 0
    line = error_line(err)
    assert "train.parquet" in line and "column 'y'" in line and "date" in line and "as text" in line
    assert not (tmp_path / "m.npz").exists()


def test_labels_that_differ_only_by_surrounding_spaces_are_refused_by_fit(capsys, tmp_path):
    """' a' and 'a' were two classes (a warning), whose p_ a / p_a columns every later command refused."""
    frame = _table([" a", "a", "b"])
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    counts = frame.y.value_counts()
    rc, _, err = _fit(capsys, tmp_path / "train.parquet", tmp_path / "m.npz")
    assert rc != 0
    line = error_line(err)
    assert f"' a' ({counts[' a']} rows)" in line and f"'a' ({counts['a']} rows)" in line
    assert "surrounding spaces" in line
    assert not (tmp_path / "m.npz").exists()


def test_nfc_and_nfd_spellings_of_one_name_warn(capsys, tmp_path):
    """'é' (NFC) and 'e' + U+0301 (NFD) print the same but are two classes: warned as case variants are."""
    nfc, nfd = "\u00e9", "e\u0301"
    assert unicodedata.normalize("NFC", nfd) == nfc
    _table([nfc, nfd, "x"]).to_csv(tmp_path / "train.csv", index=False)
    assert pd.read_csv(tmp_path / "train.csv").y.nunique() == 3  # pandas: three classes as well
    rc, got, err = _fit(capsys, tmp_path / "train.csv", tmp_path / "m.npz")
    assert rc == 0, err
    assert "softmaxkit: warning:" in err and "Unicode" in err and ascii(nfd) in err


def test_classes_in_another_order_are_matched_by_name(capsys, tmp_path):
    """``--classes 10,2,1`` on columns p_1, p_2, p_10 said only "does not match (1, 2, 10)"; then "same
    classes in another order" (refused); now the columns are matched to ``--classes`` by name."""
    pd.DataFrame({"p_1": [0.8, 0.1], "p_2": [0.1, 0.8], "p_10": [0.1, 0.1]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"y": [1, 2]}).to_csv(tmp_path / "y.csv", index=False)
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv",
                      "--classes", "10,2,1", "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(-np.log(0.8), rel=1e-12)  # labels 1, 2 by name


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_missing_value_markers_are_counted_each_and_explained_per_format(capsys, tmp_path, suffix):
    """A Parquet text 'NA' is no missing value to pandas: the message said it was; and 'nan', 'NA',
    'None' were counted as one."""
    y = ["a", "b"] * 20 + ["NA"] * 3 + ["nan"] * 2 + ["None"]
    frame = pd.DataFrame({"f0": np.arange(len(y), dtype=float), "y": y})
    path = tmp_path / f"train{suffix}"
    (frame.to_parquet(path, index=False) if suffix == ".parquet" else frame.to_csv(path, index=False))
    rc, _, err = _fit(capsys, path, tmp_path / "m.npz")
    assert rc != 0
    line = error_line(err)
    assert "'NA' (3 rows)" in line and "'nan' (2 rows)" in line and "'None' (1 row)" in line
    if suffix == ".parquet":
        assert pd.read_parquet(path).y.isna().sum() == 0  # pandas keeps the text from Parquet
        assert "pandas reads it as a missing value" not in line and "CSV" in line
    else:
        assert pd.read_csv(path).y.isna().sum() == 6
        assert "pandas reads" in line


def test_numbers_kept_as_text_that_differ_by_spaces_are_one_class(tmp_path):
    """Review R7: a zero-padded "01" keeps the column as text, and then " 1" beside "1" was refused as two
    classes differing by spaces; as numbers they are one class (pandas reads them so). Review R9: nor does a
    warning call them "treated as different classes" (they are not)."""
    import warnings

    from softmaxkit import data

    path = tmp_path / "labels.csv"
    path.write_text("y\n1\n 1\n0\n01\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert data.read_labels(path, classes=["0", "1"]).tolist() == [1, 1, 0, 1]
    assert not [w for w in caught if "treated as different classes" in str(w.message)]
