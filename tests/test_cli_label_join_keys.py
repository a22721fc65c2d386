"""Which columns pair a separate labels file with the scores' rows besides id-named ones (audit of the
``evaluate``/``calibrate`` label join, follow-up of tests/test_cli_row_id_join.py).

1. A labels file whose only column besides the labels is a saved row index (pandas ``df.to_csv()``:
   header ``,label``; R's ``write.csv``: ``"","y"``; a literal ``Unnamed: 0``), rows shuffled, was
   paired by position when ``--label-column`` was not given (wine: accuracy 0.3596 and log-loss 5.4818
   for 0.9607 and 0.0939, ``labels_matched_on`` null, no warning; calibrate T = 69.2), while with
   ``--label-column label`` it was joined on the index.
2. Two files sharing a unique key column not named like an id (``filename``, ``image``, ``path``,
   ``name``, ``key`` holding ``img_0001.png`` ...) were paired by position without a word (accuracy
   0.3258 and log-loss 3.9851 for 0.9831 and 0.0737); an ``id`` column was joined on. A column that
   both files share is now a join key as for :func:`pandas.merge`, and one that cannot be (its values
   repeat in another row order, or only some of the scores' values are in the labels) is refused.
3. Review audit R4 of those rules: a saved index that counts the rows 0..n-1 (a fresh index:
   ``pd.DataFrame(probs).to_csv()``) beside the same numbers shuffled (``df.sample(frac=1)`` keeps its
   index) was joined on while both files were in one order (accuracy 0.35 for 0.985, exit 0): the two
   readings cannot be told apart, so that is refused. A shared ``rank`` (1..n in each file, two meanings)
   was joined on (0.40 for 0.985): only text columns are keys, never numbers, nor ``--ignore``'s. A
   ``fold``/``day`` of another grouping and ``date`` ranges a month apart were refused where position was
   right: weak evidence now draws a warning naming ``--ignore``, which every refusal names too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line

pd = pytest.importorskip("pandas")

N = 120
CLASSES = np.array(["a", "b", "c"])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("label_join_keys")


@pytest.fixture(scope="module")
def truth():
    """Probabilities of a decent 3-class model (rows in class order, then shuffled), their labels, and a
    row order (``perm``) for the labels file, which puts almost every row elsewhere."""
    z, y = decent_logits(N, 3, seed=7)
    rng = np.random.default_rng(3)
    order = rng.permutation(N)
    z, y = z[order], y[order]
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return {"probs": probs, "y": CLASSES[y], "perm": rng.permutation(N)}


def _metrics(probs, y):
    idx = np.searchsorted(CLASSES, y)
    return (float(np.mean(probs.argmax(1) == idx)),
            float(-np.mean(np.log(probs[np.arange(len(idx)), idx]))))


def _scores_frame(truth):
    return pd.DataFrame(truth["probs"], columns=[f"p_{c}" for c in CLASSES])


def _evaluate(capsys, probs, labels, *extra):
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, *extra, "--json")
    assert rc == 0, err
    return json.loads(out), err


def _assert_joined(got, truth, name):
    accuracy, log_loss = _metrics(truth["probs"], truth["y"])
    assert got["labels_matched_on"] == name
    assert got["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert got["metrics"]["log_loss"] == pytest.approx(log_loss, rel=1e-6)


# --------------------------------------------------------------------------- 1. a saved index, no --label-column


def _write_r_csv(path, row_names, columns):
    """A CSV file as R's ``write.csv`` writes it: a header ``""`` over quoted row names."""
    names = ['""'] + [f'"{c}"' for c in columns]
    lines = [",".join(names)]
    for j, row in enumerate(row_names):
        cells = [f'"{row}"'] + [f'"{v}"' if isinstance(v, str) else repr(float(v))
                                for v in (columns[c][j] for c in columns)]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


#: The row numbers of the scores' frame: a test split of a larger frame keeps its rows' own numbers,
#: which say which row is which (a fresh 0..n-1 in row order says nothing: section 3).
SPLIT_INDEX = 500 + np.arange(N)


@pytest.mark.parametrize("style", ["pandas", "unnamed", "r"])
def test_a_shuffled_labels_file_joins_on_its_saved_index_without_label_column(capsys, work, truth, style):
    perm = truth["perm"]
    probs, labels = work / f"si_probs_{style}.csv", work / f"si_labels_{style}.csv"
    if style == "r":  # row names of a subset: 501..620
        _write_r_csv(probs, SPLIT_INDEX + 1, {f"p_{c}": truth["probs"][:, j] for j, c in enumerate(CLASSES)})
        _write_r_csv(labels, SPLIT_INDEX[perm] + 1, {"y": truth["y"][perm]})
    else:
        _scores_frame(truth).set_axis(SPLIT_INDEX).to_csv(probs)  # header ",p_a,p_b,p_c"
        frame = pd.DataFrame({"label": truth["y"][perm]}, index=SPLIT_INDEX[perm])
        frame.to_csv(labels)  # header ",label"
        if style == "unnamed":  # read and saved again: the index is a column "Unnamed: 0"
            pd.read_csv(labels).to_csv(labels, index=False)
            assert labels.read_text().startswith("Unnamed: 0,label")
    got, err = _evaluate(capsys, probs, labels)
    _assert_joined(got, truth, {"pandas": "", "unnamed": "Unnamed: 0", "r": ""}[style])
    assert "warning" not in err
    # calibrate reads the labels alike
    rc, out, err = call(capsys, "calibrate", "--probs", probs, "--labels", labels, "--out",
                        work / f"cal_{style}.npz", "--json")
    assert rc == 0, err
    fitted = json.loads(out)
    assert fitted["labels_matched_on"] == got["labels_matched_on"]
    assert fitted["metrics"]["uncalibrated"]["accuracy"] == pytest.approx(got["metrics"]["accuracy"])
    assert fitted["calibrator"]["temperature"] < 2  # paired by position, it was tens (69.2 on wine)


def test_a_saved_index_in_the_labels_alone_draws_a_warning_without_label_column(capsys, work, truth):
    """As with --label-column: the scores have no index to match, so the shuffled one is flagged."""
    perm = truth["perm"]
    _scores_frame(truth).to_csv(work / "plain_probs.csv", index=False)
    pd.DataFrame({"label": truth["y"][perm]}, index=perm).to_csv(work / "si_alone.csv")
    got, err = _evaluate(capsys, work / "plain_probs.csv", work / "si_alone.csv")
    assert got["labels_matched_on"] is None
    assert "softmaxkit: warning:" in err and "position" in err


def test_a_nameless_labels_column_alone_is_the_labels(capsys, work, truth):
    """A file whose one column has an empty header holds the labels, not a saved index."""
    (work / "nameless.csv").write_text("\n".join(["", *truth["y"]]) + "\n")
    _scores_frame(truth).to_csv(work / "plain_probs.csv", index=False)
    got, err = _evaluate(capsys, work / "plain_probs.csv", work / "nameless.csv")
    assert got["labels_matched_on"] is None
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])


# --------------------------------------------------------------------------- 2. a shared key column


def _files(work, truth, name, score_key, label_key, *, order=None):
    order = truth["perm"] if order is None else order
    probs = work / f"k_probs_{name}.csv"
    labels = work / f"k_labels_{name}.csv"
    _scores_frame(truth).assign(**{name: score_key})[[name, *(f"p_{c}" for c in CLASSES)]].to_csv(probs, index=False)
    pd.DataFrame({name: np.asarray(label_key)[order], "label": truth["y"][order]}).to_csv(labels, index=False)
    return probs, labels


FILENAMES = np.array([f"img_{i:04d}.png" for i in range(N)])


@pytest.mark.parametrize("name", ["filename", "image", "path", "name", "key"])
def test_a_shared_unique_key_joins_the_rows(capsys, work, truth, name):
    probs, labels = _files(work, truth, name, FILENAMES, FILENAMES)
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    _assert_joined(got, truth, name)
    assert got["scores_matched_on"] == name
    assert "warning" not in err
    # the plain output says so, as for an id column
    rc, text, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--label-column", "label")
    assert rc == 0 and f"by column {name!r}" in text


def test_a_shared_key_with_more_label_rows_joins_and_counts_them(capsys, work, truth):
    more = np.concatenate([FILENAMES, ["extra_1.png", "extra_2.png"]])
    probs, _ = _files(work, truth, "filename", FILENAMES, FILENAMES)
    labels = work / "k_labels_more.csv"
    order = np.random.default_rng(9).permutation(N + 2)
    pd.DataFrame({"filename": more[order],
                  "label": np.concatenate([truth["y"], ["a", "b"]])[order]}).to_csv(labels, index=False)
    got, _ = _evaluate(capsys, probs, labels, "--label-column", "label")
    _assert_joined(got, truth, "filename")


def test_a_shared_key_repeated_in_another_row_order_is_refused(capsys, work, truth):
    """Names of the rows, a few of them twice (an image listed twice), in another row order: the rows
    are shuffled, and the key cannot say how. ``--ignore`` (named in the message) pairs them by position."""
    names = FILENAMES.copy()
    names[1::40] = names[0::40]  # 3 names twice
    probs, labels = _files(work, truth, "image", names, names)
    rc, _, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--label-column", "label")
    line = error_line(err)
    assert rc == 1 and "'image'" in line and str(labels) in line and "position" in line
    assert "--ignore image" in line
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label", "--ignore", "image")
    assert got["labels_matched_on"] is None and "warning" not in err


def test_a_shared_key_missing_some_scores_values_is_refused(capsys, work, truth):
    edited = FILENAMES.copy()
    edited[:30] = [f"other_{i}.png" for i in range(30)]
    probs, labels = _files(work, truth, "filename", FILENAMES, edited)
    rc, _, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--label-column", "label")
    line = error_line(err)
    assert rc == 1 and "'filename'" in line and str(labels) in line and "--ignore filename" in line


def test_a_shared_key_edited_on_its_own_rows_is_no_key(capsys, work, truth):
    """Some values edited, the others on the scores' own rows: no sign of another row order."""
    edited = FILENAMES.copy()
    edited[:5] = [f"other_{i}.png" for i in range(5)]
    probs, labels = _files(work, truth, "filename", FILENAMES, edited, order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    assert "softmaxkit: warning:" in err and "'filename'" in err and "position" in err


def test_a_shared_column_with_no_common_value_is_no_key(capsys, work, truth):
    """``/data/img_0001.png`` beside ``img_0001.png``: not a key, so paired by position, with a warning."""
    probs, labels = _files(work, truth, "path", FILENAMES, np.char.add("/data/", FILENAMES),
                           order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    assert "softmaxkit: warning:" in err and "'path'" in err


# --------------------------------------------------------------------------- guards: what did not change


def test_same_order_files_without_a_key_pair_by_position(capsys, work, truth):
    _scores_frame(truth).to_csv(work / "plain_probs.csv", index=False)
    pd.DataFrame({"label": truth["y"]}).to_csv(work / "plain_labels.csv", index=False)
    got, err = _evaluate(capsys, work / "plain_probs.csv", work / "plain_labels.csv")
    assert got["labels_matched_on"] is None and "warning" not in err
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    # a saved index in both files, in row order, gives the same answer
    _scores_frame(truth).to_csv(work / "ordered_probs.csv")
    pd.DataFrame({"label": truth["y"]}).to_csv(work / "ordered_labels.csv")
    got, err = _evaluate(capsys, work / "ordered_probs.csv", work / "ordered_labels.csv")
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    assert "warning" not in err


def test_a_repeated_shared_column_in_row_order_pairs_by_position(capsys, work, truth):
    """A ``fold`` column both files have, the same row by row: the rows are in one order."""
    fold = np.arange(N) % 5
    probs, labels = _files(work, truth, "fold", fold, fold, order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None and "warning" not in err
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])


def test_a_repeated_shared_column_of_other_values_is_no_key(capsys, work, truth):
    """Two models' predicted classes under one name: repeated values that differ are no evidence."""
    mine = CLASSES[truth["probs"].argmax(1)]
    theirs = np.roll(mine, 1)
    theirs[0] = "c" if theirs[0] != "c" else "a"  # not the same values in another order
    assert sorted(mine) != sorted(theirs)
    probs, labels = _files(work, truth, "predicted", mine, theirs, order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None and "warning" not in err


def test_an_id_column_still_joins_first(capsys, work, truth):
    ids = 1000 + np.arange(N)
    probs, labels = _files(work, truth, "id", ids, ids)
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    _assert_joined(got, truth, "id")
    # beside a shared key: the id is used, whatever the key holds
    probs = work / "idkey_probs.csv"
    labels = work / "idkey_labels.csv"
    _scores_frame(truth).assign(id=ids, filename=FILENAMES).to_csv(probs, index=False)
    perm = truth["perm"]
    pd.DataFrame({"id": ids[perm], "filename": FILENAMES[perm][::-1], "label": truth["y"][perm]}).to_csv(
        labels, index=False)
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    _assert_joined(got, truth, "id")


def test_score_columns_are_no_keys(capsys, work, truth):
    """A labels file that also holds a score column's name: scores are never matched on."""
    probs = work / "sc_probs.csv"
    _scores_frame(truth).to_csv(probs, index=False)
    perm = truth["perm"]
    labels = work / "sc_labels.csv"
    pd.DataFrame({"p_a": truth["probs"][perm, 0], "label": truth["y"][perm]}).to_csv(labels, index=False)
    got, _ = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None


# --------------------------------------------------------------------------- 3. a fresh index: no key (review audit R4)
#
# ``df.sample(frac=1)`` keeps the frame's index; scored in that order and saved with
# ``pd.DataFrame(probs).to_csv()`` (a fresh index 0..n-1) beside ``df['label'].to_csv()`` (the old index,
# shuffled), both files are in one row order, yet the index join gave accuracy 0.35 and log-loss 2.21 for
# 0.985 and 0.1865 (exit 0). Scores saved in row order with 0..n-1 beside labels saved shuffled with their
# index need that join: the files cannot tell the two apart, so they are refused.


def _fresh_index_files(work, truth, *, fresh):
    """Both files in one row order; the ``fresh`` side's saved index counts the rows 0..n-1, the other's
    holds the frame's own row numbers ``perm`` (shuffled)."""
    perm = truth["perm"]
    probs, labels = work / f"fresh_{fresh}_probs.csv", work / f"fresh_{fresh}_labels.csv"
    _scores_frame(truth).set_axis(np.arange(N) if fresh == "scores" else perm).to_csv(probs)
    pd.DataFrame({"label": truth["y"]}, index=perm if fresh == "scores" else np.arange(N)).to_csv(labels)
    return probs, labels


@pytest.mark.parametrize("fresh", ["scores", "labels"])
@pytest.mark.parametrize("label_column", [(), ("--label-column", "label")])
def test_a_fresh_index_beside_a_shuffled_one_is_refused(capsys, work, truth, fresh, label_column):
    probs, labels = _fresh_index_files(work, truth, fresh=fresh)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, *label_column, "--json")
    line = error_line(err)
    assert rc == 1, out
    assert str(labels) in line and str(probs) in line and "0..119" in line
    # both readings, and the ways out of each
    assert "matched" in line and "position" in line
    assert "index=False" in line and "id column" in line
    rc, _, err = call(capsys, "calibrate", "--probs", probs, "--labels", labels, *label_column, "--out",
                      work / "fresh_cal.npz")
    assert rc == 1 and "index=False" in error_line(err)


def test_the_ways_out_of_a_fresh_index_pair_the_rows(capsys, work, truth):
    """Labels written without their index pair by position; an index that numbers the rows in both
    files joins them."""
    probs, _ = _fresh_index_files(work, truth, fresh="scores")
    pd.DataFrame({"label": truth["y"]}).to_csv(work / "fresh_noindex.csv", index=False)
    got, err = _evaluate(capsys, probs, work / "fresh_noindex.csv")
    assert got["labels_matched_on"] is None and "warning" not in err
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    perm = truth["perm"]
    _scores_frame(truth).set_axis(perm).to_csv(work / "fresh_own_probs.csv")  # pd.DataFrame(probs, index=df.index)
    order = np.random.default_rng(5).permutation(N)
    pd.DataFrame({"label": truth["y"][order]}, index=perm[order]).to_csv(work / "fresh_own_labels.csv")
    got, err = _evaluate(capsys, work / "fresh_own_probs.csv", work / "fresh_own_labels.csv")
    _assert_joined(got, truth, "")


# --------------------------------------------------------------------------- 4. numbers and --ignore are no keys


def test_a_shared_numeric_column_is_no_key(capsys, work, truth):
    """``rank`` in both files, a permutation of 1..n each (the model's confidence rank, the annotators'
    difficulty rank), rows in one order: joined on it, accuracy 0.40 for 0.985 (audit R4)."""
    rng = np.random.default_rng(11)
    probs = work / "rank_probs.csv"
    labels = work / "rank_labels.csv"
    _scores_frame(truth).assign(rank=(-truth["probs"].max(1)).argsort().argsort() + 1).to_csv(probs, index=False)
    pd.DataFrame({"label": truth["y"], "rank": rng.permutation(N) + 1}).to_csv(labels, index=False)
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None and "warning" not in err
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])


def test_a_fold_of_another_split_is_no_key(capsys, work, truth):
    """``fold`` 0..4 in both files from two CV seeds (the same counts, other rows): it was refused as
    the rows shuffled (audit R4); numbers are no key, so the rows pair by position, silently."""
    fold = np.arange(N) % 5
    probs, labels = _files(work, truth, "fold", fold, np.random.default_rng(2).permutation(fold),
                           order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None and "warning" not in err
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])


def test_an_ignored_column_is_no_key(capsys, work, truth):
    """A text column both files share that would join them, named by ``--ignore``: paired by position."""
    probs, labels = _files(work, truth, "note", FILENAMES, FILENAMES)  # labels shuffled: a key
    got, _ = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] == "note"
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label", "--ignore", "note")
    assert got["labels_matched_on"] is None and "warning" not in err


# --------------------------------------------------------------------------- 5. weak evidence is no refusal


def test_groups_in_another_row_order_pair_by_position_with_a_warning(capsys, work, truth):
    """``day`` (20 rows a day) in both files, another day on most rows (the labels' own batching): the
    same values in another row order may be the rows shuffled, or another grouping; refused (audit R4:
    0.985 before). Paired by position with a warning that names ``--ignore day``, which silences it."""
    day = np.repeat([f"2024-01-{d:02d}" for d in range(1, 7)], N // 6)
    probs, labels = _files(work, truth, "day", day, np.random.default_rng(4).permutation(day),
                           order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    assert "softmaxkit: warning:" in err and "'day'" in err and "--ignore day" in err
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label", "--ignore", "day")
    assert got["labels_matched_on"] is None and "warning" not in err


def test_a_unique_column_shifted_in_row_order_is_no_key(capsys, work, truth):
    """``date`` once a row in both files, the labels' a month later (31 of 120 values not shared, the
    others on other rows in the same order): refused as the rows shuffled (audit R4: 0.985 before)."""
    dates = pd.date_range("2024-01-01", periods=N + 31).astype(str).to_numpy()
    probs, labels = _files(work, truth, "date", dates[:N], dates[31:], order=np.arange(N))
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label")
    assert got["labels_matched_on"] is None
    assert got["metrics"]["accuracy"] == pytest.approx(_metrics(truth["probs"], truth["y"])[0])
    assert "'date'" in err and "--ignore date" in err  # a warning: not matched on it
    got, err = _evaluate(capsys, probs, labels, "--label-column", "label", "--ignore", "date")
    assert "warning" not in err
