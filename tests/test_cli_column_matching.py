"""Score columns matched to classes by name, never by position a file does not vouch for.

Audits BA and BB (2026-12-07) found wrong answers with exit 0 and misleading messages:

1. ``apply --classes cat,dog,bird`` writes ``p_bird, p_cat, p_dog`` (sorted); the same integer labels
   (0..2 meant as cat, dog, bird) were read as those columns' positions: accuracy 0.0, log-loss 10.79
   for 1.0 / 0.035. ``evaluate --classes cat,dog,bird`` was refused.
2. In a file of unprefixed score columns the label column (``target``, pandas' ``0,1,2,label``), a
   ``prediction`` or a ``fold`` column was read as one more class.
3. Class names written as floats (``p_1.0``) matched no integer label, and the hint that followed was
   refused in turn.
4. A per-class calibrator fitted on ``logit_0 .. logit_9`` was applied to an unnamed ``.npy`` by position
   without a word.
5. Messages: ``predict`` suggested ``--ignore`` (it has none); a quoted cell with a line break shifted
   the line number; ``1,326.0`` got the categorical hint; a big integer label was shown rounded; a
   trailing ``,`` on data lines was called a decimal comma, a ``,`` line "blank"; a needless warning
   for ``logit_2, logit_0, logit_1`` over labels 0..2.

Numbers are checked against scikit-learn's ``log_loss`` on the same scores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, evaluate_json, sklearn_log_loss, softmax_rows
from softmaxkit.data import write_columns

pytest.importorskip("sklearn")

N, K = 90, 3
NAMES = np.array(["cat", "dog", "bird"])  # the labels' order: 0 = cat, 1 = dog, 2 = bird


@pytest.fixture(scope="module")
def scores():
    """Logits of a decent 3-class model, and their integer labels 0..2."""
    return decent_logits(N, K, seed=11)


def _sorted_probs(tmp_path, z):
    """Probabilities of the classes cat, dog, bird (columns of ``z`` in that order) written as ``apply``
    writes them: ``p_bird, p_cat, p_dog``."""
    p = softmax_rows(z)
    return write_columns(tmp_path / "p.csv", {"p_bird": p[:, 2], "p_cat": p[:, 0], "p_dog": p[:, 1],
                                              "prediction": NAMES[p.argmax(axis=1)]})


# ------------------------------------------------------------------------------- 1: the labels' order

def test_integer_labels_against_named_columns_are_refused_without_classes(capsys, tmp_path, scores):
    """Audit BA: accuracy 0.0 and log-loss 10.79 with exit 0 (scored by position, ``p_bird`` as label 0)."""
    z, y = scores
    probs = _sorted_probs(tmp_path, z)
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    for command in ("evaluate", "calibrate"):
        extra = ("--out", tmp_path / "cal.npz") if command == "calibrate" else ()
        rc, _, err = call(capsys, command, "--probs", probs, "--labels", labels, *extra)
        line = error_line(err)
        assert rc == 1, (command, err)
        assert "holds integer labels (0, 1, 2)" in line and "'bird', 'cat', 'dog'" in line
        assert "pass --classes with the class names in the labels' order" in line


def test_classes_in_the_labels_order_match_named_columns_by_name(capsys, tmp_path, scores):
    """``--classes cat,dog,bird`` (the labels' order) over ``p_bird, p_cat, p_dog`` was refused; now integer
    label i is the i-th class of --classes and the columns go by name: scikit-learn's log-loss exactly."""
    z, y = scores
    probs = _sorted_probs(tmp_path, z)
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    got = evaluate_json(capsys, "--probs", probs, "--labels", labels, "--classes", "cat,dog,bird")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean(z.argmax(axis=1) == y))
    assert not [w for w in got["warnings"] if "integer labels" in w]
    # Two classes swapped (--classes a,c,b written sorted a,b,c) scored 0.333 by position.
    swapped = write_columns(tmp_path / "acb.csv", {"p_a": softmax_rows(z)[:, 0], "p_b": softmax_rows(z)[:, 2],
                                                   "p_c": softmax_rows(z)[:, 1]})
    got = evaluate_json(capsys, "--probs", swapped, "--labels", labels, "--classes", "a,c,b")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    rc, _, err = call(capsys, "calibrate", "--probs", probs, "--labels", labels, "--classes", "cat,dog,bird",
                      "--method", "temperature", "--out", tmp_path / "cal.npz", "-q")
    assert rc == 0, err


def test_apply_then_evaluate_chain_with_the_same_classes(capsys, tmp_path, scores):
    """The README chain: apply --classes cat,dog,bird, then evaluate its output with the same integer labels
    and --classes: the metrics of the calibrated logits themselves."""
    z, y = scores
    np.save(tmp_path / "val.npy", z)
    np.save(tmp_path / "y.npy", y)
    cal = tmp_path / "cal.npz"
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "val.npy", "--labels", tmp_path / "y.npy",
                        "--method", "temperature", "--out", cal, "--json")
    assert rc == 0, err
    temperature = json.loads(out)["calibrator"]["temperature"]
    out = tmp_path / "test_probs.csv"
    rc, _, err = call(capsys, "apply", cal, "--logits", tmp_path / "val.npy", "--classes", "cat,dog,bird",
                      "--out", out, "-q")
    assert rc == 0, err
    direct = evaluate_json(capsys, "--logits", tmp_path / "val.npy", "--labels", tmp_path / "y.npy")
    chained = evaluate_json(capsys, "--probs", out, "--labels", tmp_path / "y.npy", "--classes", "cat,dog,bird")
    assert chained["metrics"]["accuracy"] == direct["metrics"]["accuracy"]
    assert chained["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z / temperature, y), rel=1e-6)


def test_integer_class_names_still_match_labels_by_name(capsys, tmp_path, scores):
    """Guard (passes before too): ``p_0, p_1, p_2`` in another order are class names the labels match."""
    z, y = scores
    p = softmax_rows(z)
    path = write_columns(tmp_path / "p.csv", {"p_2": p[:, 2], "p_0": p[:, 0], "p_1": p[:, 1]})
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    got = evaluate_json(capsys, "--probs", path, "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


# ------------------------------------------------------------------------------- 2: non-score columns

@pytest.mark.parametrize("column,first", [("target", False), ("target", True), ("label", False),
                                          ("prediction", False), ("fold", False)])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_non_score_column_beside_plain_scores_is_refused(capsys, tmp_path, scores, column, first, suffix):
    """Audit BB: wine logits a, b, c beside 'target' scored 4 classes (0.9438 for 0.9551, 0.0225 with it
    first); calibrate fitted T on 4 classes. Refused, naming it; ``--ignore`` gives the right numbers."""
    z, y = scores
    values = {"fold": np.arange(N) % 5, "prediction": z.argmax(axis=1)}.get(column, y)
    columns = {"a": z[:, 0], "b": z[:, 1], "c": z[:, 2]}
    columns = {column: values, **columns} if first else {**columns, column: values}
    path = write_columns(tmp_path / f"s{suffix}", columns)
    labels = write_columns(tmp_path / "y.csv", {"target": y})
    for command in ("evaluate", "calibrate"):
        extra = ("--out", tmp_path / "cal.npz") if command == "calibrate" else ()
        rc, _, err = call(capsys, command, "--logits", path, "--labels", labels, *extra)
        assert rc == 1 and f"column {column!r}" in error_line(err) and f"--ignore {column}" in err, err
    got = evaluate_json(capsys, "--logits", path, "--labels", labels, "--ignore", column)
    assert got["n_classes"] == 3
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_the_labels_column_name_of_another_file_is_no_score(capsys, tmp_path, scores):
    """pandas' header 0,1,2 plus the labels' own column, named as in the labels file ('species')."""
    z, y = scores
    path = write_columns(tmp_path / "s.csv", {"0": z[:, 0], "1": z[:, 1], "2": z[:, 2], "Species": y})
    labels = write_columns(tmp_path / "y.csv", {"species": y})
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert rc == 1 and "named as the labels' column" in error_line(err)


def test_a_class_index_column_under_another_name_is_refused(capsys, tmp_path, scores):
    """Whole numbers 0..2 beside fractional logits, under a name that says nothing ('kls')."""
    z, y = scores
    path = write_columns(tmp_path / "s.csv", {"0": z[:, 0], "1": z[:, 1], "2": z[:, 2], "kls": y})
    labels = tmp_path / "y.npy"
    np.save(labels, y)
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert rc == 1 and "holds only whole numbers 0..2" in error_line(err) and "--ignore kls" in err


def test_a_binary_score_column_named_pred_alone_is_read(capsys, tmp_path, scores):
    """Guard (passes before too): one column is a binary problem's scores whatever its name."""
    z, y = scores
    keep = y < 2
    s = z[keep, 1] - z[keep, 0]
    path = write_columns(tmp_path / "s.csv", {"pred": s})
    labels = write_columns(tmp_path / "y.csv", {"y": y[keep]})
    got = evaluate_json(capsys, "--logits", path, "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(np.column_stack([-s / 2, s / 2]),
                                                                        y[keep]), rel=1e-9)


# ------------------------------------------------------------------------------- 3: float class names

def test_float_class_names_match_integer_labels_by_value(capsys, tmp_path, scores):
    """Audit BB M4: labels 1, 2, 3 against p_1.0, p_2.0, p_3.0 were refused ("not a class of (0..2)"), and
    the hint --classes 1,2,3 was refused in turn; labels 1.0, 2.0, 10.0 against p_10.0 likewise."""
    z, y = scores
    p = softmax_rows(z)
    path = write_columns(tmp_path / "p.csv", {"p_1.0": p[:, 0], "p_2.0": p[:, 1], "p_3.0": p[:, 2]})
    labels = write_columns(tmp_path / "y.csv", {"target": y + 1})
    expected = sklearn_log_loss(z, y)
    assert evaluate_json(capsys, "--probs", path, "--labels", labels)["metrics"]["log_loss"] == pytest.approx(expected)
    got = evaluate_json(capsys, "--probs", path, "--labels", labels, "--classes", "1,2,3")
    assert got["metrics"]["log_loss"] == pytest.approx(expected)
    ten = write_columns(tmp_path / "p10.csv", {"p_1.0": p[:, 0], "p_2.0": p[:, 1], "p_10.0": p[:, 2]})
    (tmp_path / "yf.csv").write_text("target\n" + "\n".join(f"{v}.0" for v in np.array([1, 2, 10])[y]) + "\n")
    got = evaluate_json(capsys, "--probs", ten, "--labels", tmp_path / "yf.csv")
    assert got["metrics"]["log_loss"] == pytest.approx(expected)


# ------------------------------------------------------------------------------- 4: unnamed .npy

def test_a_per_class_calibrator_on_an_unnamed_file_says_it_goes_by_position(capsys, tmp_path, scores):
    """Audit BB M8: vector scaling fitted on logit_0..logit_2 applied to a .npy: exit 0 without a word."""
    z, y = scores
    fit_on = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    cal = tmp_path / "vec.npz"
    assert call(capsys, "calibrate", "--logits", fit_on, "--labels", labels, "--method", "vector",
                "--out", cal, "-q")[0] == 0
    np.save(tmp_path / "z.npy", z)
    rc, _, err = call(capsys, "apply", cal, "--logits", tmp_path / "z.npy", "--out", tmp_path / "o.csv")
    assert rc == 0 and "per-class parameters are applied to them by position" in err
    rc, _, err = call(capsys, "apply", cal, "--logits", tmp_path / "z.npy", "--out", tmp_path / "o2.csv",
                      "--by-position")
    assert rc == 0 and "by position" not in err


# ------------------------------------------------------------------------------- 5: messages

def _features(capsys, tmp_path, rows: str):
    """A model fitted on features a, b, and a file of new rows ``rows`` for it."""
    train = tmp_path / "train.csv"
    train.write_text("a,b,y\n" + "".join(f"{i % 7}.5,{(i * 3) % 5}.25,{i % 2}\n" for i in range(40)))
    model = tmp_path / "m.npz"
    rc, _, err = call(capsys, "fit", train, "--target", "y", "--out", model, "--no-report", "-q")
    assert rc == 0, err
    new = tmp_path / "new.csv"
    new.write_text(rows)
    return model, new


def test_predict_does_not_suggest_ignore(capsys, tmp_path):
    """Audit BB M2: predict's missing-value error suggested --ignore, which predict does not accept."""
    model, new = _features(capsys, tmp_path, "a,b\n1.5,2.5\n1.5,\n")
    rc, _, err = call(capsys, "predict", model, new, "--out", tmp_path / "o.csv")
    assert rc == 1 and "missing value" in error_line(err) and "--ignore" not in err


def test_a_thousands_separator_gets_the_comma_hint(capsys, tmp_path):
    """Audit BB M1: '1,326.0' got "one-hot encode it" instead of the ',' in a number hint."""
    model, new = _features(capsys, tmp_path, 'a,b\n1.5,2.5\n"1,326.0",2.5\n')
    rc, _, err = call(capsys, "predict", model, new, "--out", tmp_path / "o.csv")
    assert rc == 1 and "no thousands separator" in error_line(err) and "one-hot" not in err


def test_a_line_break_in_a_quoted_cell_keeps_line_numbers_right(capsys, tmp_path):
    """Audit BB M3: row 2 spans lines 3 and 4 (its quoted cell holds a line break), so row 3 is line 5,
    which the message called line 4; the row that spans two lines is named so."""
    model, new = _features(capsys, tmp_path, 'a,b,note\n1.5,2.5,x\n1.5,2.5,"two\nlines"\n1.5,,x\n')
    rc, _, err = call(capsys, "predict", model, new, "--out", tmp_path / "o.csv")
    assert rc == 1 and "row 3 (line 5), column 'b'" in error_line(err)
    new.write_text('a,b,note\n1.5,2.5,x\n1.5,,"two\nlines"\n')
    rc, _, err = call(capsys, "predict", model, new, "--out", tmp_path / "o.csv")
    assert rc == 1 and "row 2 (lines 3-4), column 'b'" in error_line(err)


def test_a_big_integer_label_is_quoted_as_written(capsys, tmp_path, scores):
    """Audit BB M5: 9007199254740993 was shown as 9007199254740992.0, which the file does not hold."""
    z, y = scores
    scores_path = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    (tmp_path / "big.csv").write_text("y\n9007199254740993\n" + "".join(f"{v}.0\n" for v in y[1:]))
    rc, _, err = call(capsys, "evaluate", "--logits", scores_path, "--labels", tmp_path / "big.csv")
    assert rc == 1 and "label 9007199254740993 is too large" in error_line(err)


def test_a_line_of_one_comma_is_not_called_blank(capsys, tmp_path, scores):
    """Audit BB M6: a last line ',' in a labels file was "blank (spaces only)"."""
    z, y = scores
    scores_path = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    (tmp_path / "comma.csv").write_text("y\n" + "".join(f"{v}\n" for v in y[:-1]) + ",\n")
    rc, _, err = call(capsys, "evaluate", "--logits", scores_path, "--labels", tmp_path / "comma.csv")
    assert rc == 1 and "blank" not in error_line(err) and "only ','" in err


def test_data_lines_ending_in_a_comma_are_said_so(capsys, tmp_path, scores):
    """Audit BB M6: data lines ending in ',' under a header that does not got "a decimal comma?"."""
    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    (tmp_path / "trail.csv").write_text("a,b\n" + "".join(f"{v},{v},\n" for v in y))
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "trail.csv", "--labels", labels)
    assert rc == 1 and "the header does not" in error_line(err) and "decimal comma" not in err


def test_prefixed_columns_in_another_order_draw_no_index_warning(capsys, tmp_path, scores):
    """Audit BB M7: logit_2, logit_0, logit_1 over labels 0..2 warned that the labels "would name other
    classes" as indices: every column names its class, so there is no doubt."""
    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    reordered = write_columns(tmp_path / "r.csv", {"logit_2": z[:, 2], "logit_0": z[:, 0], "logit_1": z[:, 1]})
    got = evaluate_json(capsys, "--logits", reordered, "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    assert not [w for w in got["warnings"] if "read as class names" in w], got["warnings"]


# ------------------------------------------------------------------------------- review audit R10

@pytest.mark.parametrize("layout", ["csv_index", "csv", "parquet"])
def test_pandas_default_headers_are_scores_and_labels(capsys, tmp_path, scores, layout):
    """Review audit R10 1: ``pd.DataFrame(probs).to_csv`` (header ``0,1,2``) beside ``pd.Series(y).to_csv``
    (labels column ``0``) was refused: score column ``0`` "named as the labels' column", with a hint
    (``--ignore 0``) that drops a class. A labels' column named by a number says nothing."""
    pd = pytest.importorskip("pandas")
    z, y = scores
    suffix = ".parquet" if layout == "parquet" else ".csv"
    probs, logits, labels = (tmp_path / f"{name}{suffix}" for name in ("p", "z", "y"))
    frames = ((pd.DataFrame(softmax_rows(z)), probs), (pd.DataFrame(z), logits), (pd.Series(y).to_frame(), labels))
    for frame, path in frames:
        if layout == "parquet":
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=layout == "csv_index")
    got = evaluate_json(capsys, "--probs", probs, "--labels", labels)
    assert got["n_classes"] == K
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    rc, _, err = call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", tmp_path / "cal.npz", "-q")
    assert rc == 0, err


def test_pandas_default_binary_header_is_read(capsys, tmp_path, scores):
    """Review audit R10 1, binary: header ``0,1`` beside labels ``0`` was refused (old: log-loss as sklearn's)."""
    pd = pytest.importorskip("pandas")
    z, y = scores
    keep = y < 2
    z2, y2 = z[keep][:, :2], y[keep]
    pd.DataFrame(softmax_rows(z2)).to_csv(tmp_path / "p.csv", index=False)
    pd.Series(y2).to_csv(tmp_path / "y.csv", index=False)
    got = evaluate_json(capsys, "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z2, y2), rel=1e-9)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_row_id_beside_one_score_column_named_pred_is_read(capsys, tmp_path, scores, suffix):
    """Review audit R10 2: scores ``id,pred`` were refused ("column 'pred': named as labels, predicted
    classes or folds ... beside the score columns 'id'", advising ``--ignore pred``): the check ran before
    the row id was taken out, and one score column is a binary problem's whatever its name."""
    z, y = scores
    keep = y < 2
    s, yk = z[keep, 1] - z[keep, 0], y[keep]
    ids = np.arange(len(s))[::-1] + 1000  # not in row order: matched on, not a row count
    path = write_columns(tmp_path / f"s{suffix}", {"id": ids, "pred": s})
    labels = write_columns(tmp_path / "y.csv", {"id": ids, "label": yk})
    got = evaluate_json(capsys, "--logits", path, "--labels", labels, "--label-column", "label")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(np.column_stack([-s / 2, s / 2]), yk),
                                                       rel=1e-9)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_non_score_column_beside_a_row_id_and_plain_scores_is_refused(capsys, tmp_path, scores, suffix):
    """Guard (passes before too): with the check run after the row ids are out, ``prediction`` beside
    ``id, a, b, c`` is still refused."""
    z, y = scores
    path = write_columns(tmp_path / f"s{suffix}", {"id": np.arange(N) + 7, "a": z[:, 0], "b": z[:, 1],
                                                   "c": z[:, 2], "prediction": z.argmax(axis=1)})
    labels = write_columns(tmp_path / "y.csv", {"id": np.arange(N) + 7, "y": y})
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "--label-column", "y")
    assert rc == 1 and "column 'prediction'" in error_line(err) and "--ignore prediction" in err


def test_a_headerless_labels_file_beside_a_numbered_header_is_said_so(capsys, tmp_path, scores):
    """Review audit R10 3: ``np.savetxt(y, fmt='%d')`` (its first label read as the column name ``1``)
    beside scores ``0,1,2`` blamed score column ``1`` ("pass --ignore 1"); the labels file lacks a header."""
    z, y = scores
    y = np.roll(y, -N // K)  # the first label 1
    path = write_columns(tmp_path / "p.csv", {str(j): softmax_rows(z)[:, j] for j in range(K)})
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", tmp_path / "y.csv")
    line = error_line(err)
    assert rc == 1 and "y.csv: line 1 looks like data, not a header" in line and "--ignore" not in line


@pytest.mark.parametrize("command", ["evaluate", "calibrate", "apply"])
def test_classes_help_says_how_columns_are_matched(capsys, command):
    """Review audit R10 4: the help said "class names of the score columns, in order", but named columns
    are matched to --classes by name (``bird,cat,dog`` with ``--classes dog,bird,cat``)."""
    with pytest.raises(SystemExit):
        call(capsys, command, "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "class names of the score columns" not in text
    assert "matched to them by name, other columns take them in order" in text


def test_one_column_labels_ending_in_a_comma_are_said_so(capsys, tmp_path, scores):
    """Review audit R10 5: ``label`` over ``0,`` lines was called a comment or title line to delete."""
    z, y = scores
    scores_path = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    (tmp_path / "trail.csv").write_text("label\n" + "".join(f"{v},\n" for v in y))
    rc, _, err = call(capsys, "evaluate", "--logits", scores_path, "--labels", tmp_path / "trail.csv")
    line = error_line(err)
    assert rc == 1 and "the line ends in ','" in line and "title line" not in line


def test_a_headerless_text_labels_file_is_named_as_a_possible_cause(capsys, tmp_path, scores):
    """A labels file without a header whose first label is a class name ('cat') has that label read as its
    column's name, which the scores' column 'cat' then matches: the refusal said only "--ignore cat", which
    would drop a class (review R10). It now says to add a header line too."""
    z, y = scores
    names = np.array(["bird", "cat", "dog"])
    path = write_columns(tmp_path / "s.csv", {c: z[:, j] for j, c in enumerate(names)})
    first = np.flatnonzero(names[y] == "cat")[0]
    order = np.r_[first, np.delete(np.arange(len(y)), first)]
    (tmp_path / "y.csv").write_text("\n".join(names[y[order]]) + "\n")
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", tmp_path / "y.csv")
    assert rc == 1 and "no header line (its first label, 'cat', read as one), add one" in error_line(err), err
