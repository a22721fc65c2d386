"""Header names and first lines as files come (audit BQ), and row weights in ``fit`` (audit BM).

1. BQ-1: an invisible format character (Unicode Cf) around a header name, a second byte-order mark left in
   the first name (a "CSV UTF-8" file read as ``utf-8`` and saved as ``utf-8-sig``) or a zero-width space,
   made ``logit_0`` no score column: with two classes the other one was read as the log-odds (log-loss
   0.5947 for 0.4177, exit 0). Names are compared without such characters around them wherever they are
   matched (prefixes, ``--classes``, labels' and row ids' names); one inside a prefixed name is warned of.
2. BQ-2: a CSV without a header whose first row is whole numbers over decimal columns (``np.savetxt(fmt=
   "%g")``: ``6,3,5,2``) had that row read as the header, and ``predict --by-position`` wrote 149 rows for
   150, exit 0. Class numbers heading score columns, and pandas' ``0..d-1`` heading features, stay names.
3. BQ-3: EFBIG is said as the file system's size limit or the process's (``ulimit -f``).
4. BM-4: ``fit`` used a ``count`` column of aggregated data as a feature without a word; ``--sample-weight
   COL`` passes it to the estimator as ``sample_weight``, and a feature so named is warned of.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import (call, decent_logits, error_line, evaluate_json, iris_model_without_names,
                         iris_without_header, run_cli, sklearn_log_loss, softmax_rows)
from softmaxkit.data import DataFileError, read_columns

pytest.importorskip("sklearn")


def _write_scores(path: Path, names: list[str], values: np.ndarray, *, encoding: str = "utf-8") -> Path:
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in values)
    path.write_text(",".join(names) + "\n" + rows + "\n", encoding=encoding)
    return path


def _write_labels(path: Path, y) -> Path:
    path.write_text("label\n" + "\n".join(map(str, y)) + "\n")
    return path


# --------------------------------------------------------------------------- 1. invisible characters in names


@pytest.mark.parametrize("name", ["\ufefflogit_0", "\u200blogit_0", "logit_0\u200b", "\u200e logit_0"],
                         ids=["second-bom", "zero-width-space", "zero-width-space-after", "direction-mark"])
def test_an_invisible_character_around_a_prefixed_name_keeps_the_column(capsys, tmp_path, name):
    z, y = decent_logits(120, 2, seed=5)
    # utf-8-sig writes one BOM of its own: pyarrow drops that one, as it does Excel's
    scores = _write_scores(tmp_path / "s.csv", [name, "logit_1"], z, encoding="utf-8-sig")
    got = evaluate_json(capsys, "--logits", scores, "--labels", _write_labels(tmp_path / "y.csv", y))
    assert got["ignored_columns"] == []
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_a_second_bom_before_a_probability_column_keeps_it(capsys, tmp_path):
    z, y = decent_logits(90, 3, seed=6)
    p = softmax_rows(z)
    scores = _write_scores(tmp_path / "p.csv", ["\ufeffp_0", "p_1", "p_2"], p, encoding="utf-8-sig")
    got = evaluate_json(capsys, "--probs", scores, "--labels", _write_labels(tmp_path / "y.csv", y))
    assert got["classes"] == ["0", "1", "2"]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


def test_an_invisible_character_inside_a_prefixed_name_is_warned_of_visibly(capsys, tmp_path):
    z, y = decent_logits(90, 3, seed=7)
    scores = _write_scores(tmp_path / "s.csv", ["logit_0", "lo\u200bgit_1", "logit_2"], z)
    # class 1 has no column left: the labels' check refuses the file, after the warning said why
    _, _, err = call(capsys, "evaluate", "--logits", scores, "--labels", _write_labels(tmp_path / "y.csv", y))
    said = [line for line in err.splitlines() if line.startswith("softmaxkit: warning:")]
    assert len(said) == 1 and "'lo\\u200bgit_1'" in said[0] and "U+200B" in said[0]


def test_classes_name_a_plain_column_whose_name_begins_with_a_bom(capsys, tmp_path):
    # Two classes named like ids (Idaho, New York): the BOM'd 'ID' is the class --classes names, not a row id.
    z, y = decent_logits(120, 2, seed=8)
    p = softmax_rows(z)
    scores = _write_scores(tmp_path / "p.csv", ["\ufeffID", "NY"], p, encoding="utf-8-sig")
    labels = tmp_path / "y.csv"
    labels.write_text("label\n" + "\n".join(np.array(["ID", "NY"])[y]) + "\n")
    got = evaluate_json(capsys, "--probs", scores, "--labels", labels, "--classes", "ID,NY")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


@pytest.mark.parametrize("labels_header", ["label", "truth"])
def test_a_labels_name_with_a_zero_width_space_is_no_fourth_class(capsys, tmp_path, labels_header):
    z, y = decent_logits(90, 3, seed=9)
    scores = tmp_path / "s.csv"
    scores.write_text("0,1,2,label\u200b\n" + "\n".join(
        ",".join([*(repr(float(v)) for v in row), str(label)]) for row, label in zip(z, y)) + "\n")
    labels = tmp_path / "y.csv"
    labels.write_text(labels_header + "\n" + "\n".join(map(str, y)) + "\n")
    rc, _, err = call(capsys, "evaluate", "--logits", scores, "--labels", labels)
    assert rc == 1
    # named as the labels file's column (label), or as labels are (truth)
    assert "column 'label\\u200b': named as" in error_line(err)


def test_a_row_id_whose_name_begins_with_a_bom_is_no_feature(capsys, tmp_path):
    rng = np.random.default_rng(0)
    n = 80
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + y[:, None]
    data = tmp_path / "train.csv"
    data.write_text("\ufeffid,x1,x2,target\n" + "\n".join(
        f"{1000 + i},{float(x[i, 0])!r},{float(x[i, 1])!r},{y[i]}" for i in range(n)) + "\n", encoding="utf-8-sig")
    rc, out, err = call(capsys, "fit", data, "--target", "target", "--out", tmp_path / "m.npz", "--no-report",
                        "--alpha", "1", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["n_features"] == 2 and got["ignored_columns"] == ["\ufeffid"]


def test_a_column_not_found_for_its_invisible_character_is_shown(capsys, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("\ufefflabel,x\n" + "\n".join(f"{i % 2},{i / 7!r}" for i in range(20)) + "\n",
                    encoding="utf-8-sig")
    rc, _, err = call(capsys, "fit", data, "--target", "label", "--out", tmp_path / "m.npz", "--no-report")
    assert rc == 1
    assert "did you mean '\\ufefflabel' (its name holds the invisible character U+FEFF)?" in error_line(err)


def test_a_scores_id_with_a_bom_pairs_with_the_labels_id(capsys, tmp_path):
    """The scores' '\ufeffid' and the labels' 'id' are one column: rows are matched on it (they were
    refused, with advice to rename the labels' column to '\ufeffid')."""
    z, y = decent_logits(100, 2, seed=12)
    ids = np.arange(500, 600)
    scores = tmp_path / "s.csv"
    scores.write_text("\ufeffid,logit_0,logit_1\n" + "\n".join(
        f"{i},{float(a)!r},{float(b)!r}" for i, (a, b) in zip(ids, z)) + "\n", encoding="utf-8-sig")
    order = np.random.default_rng(0).permutation(100)
    labels = tmp_path / "y.csv"
    labels.write_text("id,label\n" + "\n".join(f"{ids[k]},{y[k]}" for k in order) + "\n")
    got = evaluate_json(capsys, "--logits", scores, "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_classes_not_matching_show_an_invisible_character(capsys, tmp_path):
    z, y = decent_logits(60, 2, seed=13)
    scores = _write_scores(tmp_path / "p.csv", ["p_c\u200bat", "p_dog"], softmax_rows(z))
    rc, _, err = call(capsys, "evaluate", "--probs", scores, "--labels", _write_labels(tmp_path / "y.csv", y),
                      "--classes", "cat,dog")
    assert rc == 1
    # the class 'c\u200bat' is not cat, and the message shows why (it read "(cat, dog)")
    assert "does not match the class columns" in error_line(err), err
    assert "('c\\u200bat', dog)" in error_line(err), err


# --------------------------------------------------------------------------- 2. a first line of data


def test_a_headerless_first_row_of_whole_numbers_is_refused_as_data(capsys, tmp_path):
    model = iris_model_without_names(capsys, tmp_path)
    new = iris_without_header(tmp_path / "new.csv", [6, 3, 5, 2])
    rc, _, err = call(capsys, "predict", model, new, "--out", tmp_path / "p.csv", "--by-position")
    assert rc == 1
    line = error_line(err)
    assert "line 1 looks like data" in line and "'6', '3', '5', '2'" in line and "add a header line" in line
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("first_row", [[5, 3, 2, 1], [6, 3, 4, 1], [7, 3, 6, 2]])
def test_other_whole_number_first_rows_are_refused(tmp_path, first_row):
    from softmaxkit.data import read_features

    with pytest.raises(DataFileError, match="line 1 looks like data"):
        read_features(iris_without_header(tmp_path / "new.csv", first_row), positional=True)


def test_a_log_odds_column_headed_by_a_whole_number_is_a_name(tmp_path):
    """Review R16: one log-odds column named by its class (``2`` with --classes 1,2) is a header; only a
    positional read (read_features(positional=True)) refuses a first line of whole numbers."""
    path = tmp_path / "z.csv"
    np.savetxt(path, np.r_[3.0, np.random.default_rng(1).normal(scale=3, size=99)], fmt="%g")
    assert list(read_columns(path)) == ["3"]


@pytest.mark.parametrize("header", ["0,1,2", "2,0,1", "1,2,3", "3,4,5"])
def test_class_numbers_heading_logits_stay_names(tmp_path, header):
    z = np.random.default_rng(2).normal(scale=4, size=(200, 3))  # every column ranges over 0..5
    path = _write_scores(tmp_path / "z.csv", header.split(","), z)
    assert list(read_columns(path)) == header.split(",")


@pytest.mark.parametrize("header", ["0,1,2", "1,2,3"])
def test_class_numbers_heading_probabilities_stay_names(tmp_path, header):
    path = _write_scores(tmp_path / "p.csv", header.split(","), softmax_rows(decent_logits(60, 3, seed=3)[0]))
    assert list(read_columns(path)) == header.split(",")


def test_pandas_numbers_heading_features_and_wavelengths_stay_names(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(loc=5, scale=3, size=(50, 4))  # ranges over 0..3 and beyond
    assert list(read_columns(_write_scores(tmp_path / "f.csv", ["0", "1", "2", "3"], X))) == ["0", "1", "2", "3"]
    spectrum = rng.uniform(size=(50, 3))
    assert list(read_columns(_write_scores(tmp_path / "w.csv", ["400", "410", "420"], spectrum))) == [
        "400", "410", "420"]


# --------------------------------------------------------------------------- 3. EFBIG


def test_a_file_too_large_names_both_size_limits():
    from softmaxkit.io import _write_error

    message = str(_write_error(OSError(errno.EFBIG, "File too large"), Path("out.csv"), "--out"))
    assert message.startswith("cannot write --out out.csv: file too large")
    assert "file system" in message and "ulimit -f" in message


# --------------------------------------------------------------------------- 4. fit --sample-weight


def _aggregated(path: Path, *, weight: str = "count") -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """Aggregated data: 40 rows of two features, a class and how many observations each stands for."""
    rng = np.random.default_rng(11)
    n = 40
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) + y[:, None]
    w = rng.integers(1, 30, n).astype(float)
    path.write_text(f"x1,x2,label,{weight}\n" + "\n".join(
        f"{float(X[i, 0])!r},{float(X[i, 1])!r},{y[i]},{w[i]:g}" for i in range(n)) + "\n")
    return path, X, y, w


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_sample_weight_weighs_the_training_rows_and_is_no_feature(capsys, tmp_path):
    import softmaxkit
    from softmaxkit import SoftmaxClassifier
    from softmaxkit.cli._common import stratified_holdout

    data, X, y, w = _aggregated(tmp_path / "agg.csv")
    model = tmp_path / "m.npz"
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--sample-weight", "count", "--out", model,
                        "--no-report", "--alpha", "0.1", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["sample_weight"] == "count" and got["ignored_columns"] == ["count"] and got["n_features"] == 2
    assert not any("used as a feature" in line for line in got["warnings"])
    train, _ = stratified_holdout(y, 0.25, 0)
    cli_model = dict(alpha=0.1, random_state=0, standardize=True)  # fit's estimator (cli._adapters.new_classifier)
    weighted = SoftmaxClassifier(**cli_model).fit(X[train], y[train], sample_weight=w[train])
    plain = SoftmaxClassifier(**cli_model).fit(X[train], y[train])
    saved = softmaxkit.load(model).predict_proba(X)
    np.testing.assert_allclose(saved, weighted.predict_proba(X), atol=1e-6)
    # the column is counts: alpha="auto" splits their observations (audit R15: opt-in for the library)
    assert softmaxkit.load(model).weights_are_counts is True
    assert np.abs(saved - plain.predict_proba(X)).max() > 1e-3  # the weights changed the model
    # predict needs no weight column: it is not a feature
    new = tmp_path / "new.csv"
    new.write_text("x1,x2\n" + "\n".join(f"{a!r},{b!r}" for a, b in X[:5].tolist()) + "\n")
    assert call(capsys, "predict", model, new, "--out", tmp_path / "p.csv")[0] == 0


@pytest.mark.parametrize("weight", ["count", "n", "Weight", "sample_weight", "freq"])
def test_a_feature_named_as_counts_is_warned_of(capsys, tmp_path, weight):
    data, *_ = _aggregated(tmp_path / "agg.csv", weight=weight)
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--out", tmp_path / "m.npz", "--no-report",
                        "--alpha", "1", "--json")
    assert rc == 0, err
    said = [line for line in json.loads(out)["warnings"] if "used as a feature" in line]
    assert len(said) == 1 and f"--sample-weight {weight}" in said[0] and f"--ignore {weight}" in said[0]


def test_a_feature_named_weight_with_negative_values_is_not_warned_of(capsys, tmp_path):
    data, *_ = _aggregated(tmp_path / "agg.csv", weight="weight")
    text = data.read_text().splitlines()
    text[1] = text[1].rsplit(",", 1)[0] + ",-2"
    data.write_text("\n".join(text) + "\n")
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--out", tmp_path / "m.npz", "--no-report",
                        "--alpha", "1", "--json")
    assert rc == 0, err
    assert not any("used as a feature" in line for line in json.loads(out)["warnings"])


@pytest.mark.parametrize("value, problem", [("-2", "negative value -2"), ("x", "non-numeric value 'x'"),
                                            ("", "missing value")])
def test_a_bad_sample_weight_is_refused_naming_its_row(capsys, tmp_path, value, problem):
    data, *_ = _aggregated(tmp_path / "agg.csv")
    text = data.read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + "," + value
    data.write_text("\n".join(text) + "\n")
    rc, _, err = call(capsys, "fit", data, "--target", "label", "--sample-weight", "count", "--out",
                      tmp_path / "m.npz", "--no-report")
    assert rc == 1
    assert f"row 3 (line 4), column 'count': {problem}" in error_line(err)


def test_sample_weight_usage_errors(capsys, tmp_path):
    data, *_ = _aggregated(tmp_path / "agg.csv")
    rc, _, err = call(capsys, "fit", data, "--target", "label", "--sample-weight", "label", "--out",
                      tmp_path / "m.npz", "--no-report")
    assert rc == 1 and "name one column" in error_line(err)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_sample_weight_with_calibrate_weighs_the_calibrator_too(capsys, tmp_path):
    """--calibrate cross-fits the calibrator on the same weighted rows as the model (a calibrator fitted on
    the rows unweighted would be fitted to another data set)."""
    import softmaxkit
    from softmaxkit import SoftmaxClassifier
    from softmaxkit.calibration import CalibratedClassifier
    from softmaxkit.cli._common import stratified_holdout

    data, X, y, w = _aggregated(tmp_path / "agg.csv")
    model = tmp_path / "m.npz"
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--sample-weight", "count", "--calibrate",
                        "temperature", "--out", model, "--no-report", "--alpha", "0.1", "--json")
    assert rc == 0, err
    assert json.loads(out)["sample_weight"] == "count"
    train, _ = stratified_holdout(y, 0.25, 0)
    base = SoftmaxClassifier(alpha=0.1, random_state=0, standardize=True)
    folds = min(5, int(np.bincount(y[train]).min()))
    weighted = CalibratedClassifier(base, method="temperature", cv=folds, ensemble=False).fit(
        X[train], y[train], sample_weight=w[train])
    pair = weighted.calibrated_classifiers_[0]
    saved = softmaxkit.load(model)
    np.testing.assert_allclose(saved.predict_proba(X), pair.estimator.predict_proba(X), atol=1e-6)
    files = sorted(p.name for p in tmp_path.iterdir())
    calibrator = softmaxkit.load(tmp_path / next(f for f in files if f != "m.npz" and f.endswith(".npz")))
    assert abs(calibrator.temperature_ - pair.calibrator.temperature_) < 1e-6, files


def test_fit_help_describes_sample_weight():
    done = run_cli("fit", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--sample-weight COL" in done.stdout and "counts of aggregated data" in text
    assert "split a row's observations" in text and "For importance weights" in text and "weights_are_counts" in text


def test_fit_says_why_the_search_was_skipped_counting_the_weights(capsys, tmp_path):
    """fit's "auto search skipped" reason counts --sample-weight's observations, as the library's warning
    does (it re-derived the reason from the labels alone)."""
    rng = np.random.default_rng(0)
    rows = ["x,label,count"]
    rows += [f"{rng.normal():.4f},a,{1 + i % 3}" for i in range(30)]
    rows += [f"{rng.normal() + 1:.4f},b,{1 + i % 2}" for i in range(30)]
    rows += ["3.0,c,4", "3.1,c,1"]
    data = tmp_path / "agg.csv"
    data.write_text("\n".join(rows) + "\n")
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--sample-weight", "count", "--out",
                        tmp_path / "m.npz", "--no-report", "--json", "--holdout", "0.25")
    assert rc == 0, err
    got = json.loads(out)
    skipped = got["model"]["alpha_search_skipped"]
    assert skipped == "class 'c' has 1 row, counting sample_weight as repeated rows", skipped
    assert any(skipped in line for line in got["warnings"])
