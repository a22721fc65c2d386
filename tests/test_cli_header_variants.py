"""Headers that differ from what softmaxkit writes by spaces, letter case or a ``#``, and numbers off
by a factor of 100: what the CLI reads from them, or how it refuses them.

Each case is one an audit found giving a wrong answer with exit 0, or an error that pointed the
wrong way: a score column `` logit_c`` (a space after the comma), ``Logit_c`` or np.savetxt's
``# logit_a`` dropped as "not scores" (a 3-class file scored as 2 classes), a trailing space kept in
the class name (``c ``), probabilities written as percentages sent to ``--logits`` (log-loss 0.3082
for 0.0737, exit 0), empty trailing Excel columns called a duplicate name, and a feature header with
a trailing space reported as missing without the near match. The numbers are checked against
scikit-learn's ``log_loss`` on the same scores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, fitted_animals, sklearn_log_loss
from softmaxkit.data import write_columns

pytest.importorskip("sklearn")

N, K = 90, 3


@pytest.fixture(scope="module")
def scores():
    """Logits of a decent 3-class model on the classes a, b, c, and their labels (0, 1, 2)."""
    return decent_logits(N, K, seed=11)


def _write(path, header: str, rows) -> str:
    """A CSV with ``header`` exactly as given (its spaces, case and ``#`` kept) over the rows of ``rows``."""
    lines = [header] + [",".join(repr(float(v)) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _evaluate(capsys, *argv):
    rc, out, err = call(capsys, "evaluate", *argv, "--json")
    assert rc == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("header", [
    "logit_a,logit_b, logit_c",       # a space after the comma
    "logit_a,logit_b,Logit_c",        # letter case
    "# logit_a,logit_b,logit_c",      # np.savetxt's default header
    "logit_a,logit_b,logit_c ",       # a trailing space
    " LOGIT_a , logit_b,logit_c",
])
def test_a_score_prefix_up_to_spaces_case_or_hash_names_a_class(capsys, tmp_path, scores, header):
    """Labels of classes a and b only, so a file misread as 2 classes is not caught by the labels:
    `` logit_c`` was ignored and the 3-class logits scored as 2 (log-loss 0.0557 for 0.0869, exit 0);
    ``logit_c `` gave the class ``'c '``, which the label ``c`` then did not match."""
    z, y = scores
    keep = y < 2
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["a", "b", "c"])[y[keep]]})
    path = _write(tmp_path / "z.csv", header, z[keep])
    got, _ = _evaluate(capsys, "--logits", path, "--labels", labels)
    assert got["classes"] == ["a", "b", "c"]
    assert got["ignored_columns"] == []
    from sklearn.metrics import log_loss
    from scipy.special import softmax

    expected = log_loss(y[keep], softmax(z[keep], axis=1), labels=[0, 1, 2])
    assert got["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-9)


def test_a_probability_prefix_up_to_spaces_and_case(capsys, tmp_path, scores):
    """The same for ``p_``: `` P_c`` is class c's probability column, not a column to ignore."""
    from scipy.special import softmax

    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["a", "b", "c"])[y]})
    path = _write(tmp_path / "p.csv", "p_a, p_b, P_c", softmax(z, axis=1))
    got, _ = _evaluate(capsys, "--probs", path, "--labels", labels)
    assert got["classes"] == ["a", "b", "c"]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


@pytest.mark.parametrize("odd", ["logit-c", "logits_c", "Logit c", "logit:c"])
def test_a_near_variant_of_the_prefix_is_refused(capsys, tmp_path, scores, odd):
    """A column that is almost ``logit_<class>`` beside ``logit_`` columns is refused, naming it, rather
    than dropped as one more column that is not a score (labels of a and b only: the 2 classes left would
    be scored without a word)."""
    z, y = scores
    keep = y < 2
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["a", "b"])[y[keep]]})
    path = _write(tmp_path / "z.csv", f"logit_a,logit_b,{odd}", z[keep])
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert rc != 0
    line = error_line(err)
    assert repr(odd) in line and "logit_<class>" in line


def test_two_columns_of_one_class_after_spaces_are_refused(capsys, tmp_path, scores):
    """``logit_a`` and `` logit_a`` name one class twice: which is its score would be a guess."""
    z, y = scores
    keep = y < 2
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["a", "b"])[y[keep]]})
    path = _write(tmp_path / "z.csv", "logit_a,logit_b, logit_a", z[keep])
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert rc != 0
    line = error_line(err)
    assert "'logit_a'" in line and "' logit_a'" in line and "class 'a'" in line


def test_a_file_written_as_predict_writes_it_is_read_as_before(capsys, tmp_path, scores):
    """Guard: exact ``logit_<class>`` columns with a prediction and an id column, class names in mixed
    case (kept as written), and unprefixed columns are read as they were."""
    z, y = scores
    names = np.array(["Cat", "dog", "Eel"])
    labels = write_columns(tmp_path / "y.csv", {"label": names[y]})
    path = write_columns(tmp_path / "z.csv", {"id": np.arange(N), **{f"logit_{c}": z[:, j] for j, c in
                                                                      enumerate(names)},
                                              "prediction": names[z.argmax(1)]})
    got, _ = _evaluate(capsys, "--logits", path, "--labels", labels)
    assert got["classes"] == ["Cat", "Eel", "dog"]  # sorted, as the labels' classes are
    assert sorted(got["ignored_columns"]) == ["id", "prediction"]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    # Unprefixed columns (no score prefix anywhere) keep their positional reading.
    plain = write_columns(tmp_path / "plain.csv", {str(j): z[:, j] for j in range(K)})
    labels = write_columns(tmp_path / "y2.csv", {"label": y})
    got, _ = _evaluate(capsys, "--logits", plain, "--labels", labels)
    assert got["n_classes"] == K
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


@pytest.fixture()
def percent(tmp_path, scores):
    """Probabilities written as percentages with 2 decimals (rows sum to 100), their labels, and the
    log-loss of the file divided by 100 (rows renormalised, as scikit-learn's log_loss does)."""
    from scipy.special import softmax
    from sklearn.metrics import log_loss

    z, y = scores
    p = np.round(100 * softmax(z, axis=1), 2)
    path = write_columns(tmp_path / "pc.csv", {c: p[:, j] for j, c in enumerate("abc")})
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    q = p / 100
    return path, labels, log_loss(y, q / q.sum(1, keepdims=True))


def test_percentages_given_as_probabilities_say_divide_by_100(capsys, percent):
    """The range error sent percentages to ``--logits``, which scored them as logits (log-loss 0.3082
    for 0.0737, exit 0)."""
    path, labels, _ = percent
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels)
    assert rc != 0
    line = error_line(err)
    assert "percentages" in line and "divide" in line and "100" in line
    assert "--logits" not in line


def test_percentages_given_as_logits_warn(capsys, percent):
    """Following the old advice, ``--logits`` on percentages: a warning, as for probabilities."""
    path, labels, _ = percent
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert rc == 0
    warning = [line for line in err.splitlines() if line.startswith("softmaxkit: warning:")]
    assert any("100" in line and "percentages" in line for line in warning), err


def test_raw_scores_out_of_range_still_point_to_logits(capsys, tmp_path, scores):
    """Guard: logits passed as ``--probs`` are still sent to ``--logits``, and logits get no warning."""
    z, y = scores
    path = write_columns(tmp_path / "z.csv", {c: z[:, j] for j, c in enumerate("abc")})
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels)
    assert rc != 0 and "--logits" in error_line(err) and "percentages" not in err
    got, err = _evaluate(capsys, "--logits", path, "--labels", labels)
    assert "softmaxkit: warning:" not in err


def test_empty_trailing_columns_are_named_as_such(capsys, tmp_path, scores):
    """``p_a,p_b,p_c,,`` (empty columns Excel kept) was "the column name '' appears twice"."""
    from scipy.special import softmax

    z, y = scores
    p = softmax(z, axis=1)
    path = tmp_path / "p.csv"
    path.write_text("p_a,p_b,p_c,,\n" + "".join(",".join(map(repr, map(float, row))) + ",,\n" for row in p))
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(list("abc"))[y]})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels)
    if rc == 0:  # left out, as one such column is: the numbers must be the file's
        got = json.loads(call(capsys, "evaluate", "--probs", path, "--labels", labels, "--json")[1])
        assert got["classes"] == ["a", "b", "c"]
        return
    line = error_line(err)
    assert "appears twice" not in line
    assert "empty" in line and "delete them" in line


def test_a_name_truly_twice_is_still_called_so(capsys, tmp_path, scores):
    """Guard: two columns ``p_a`` remain "appears twice"."""
    z, y = scores
    path = _write(tmp_path / "p.csv", "p_a,p_a,p_c", z)
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", labels)
    assert rc != 0 and "'p_a' appears twice" in error_line(err)


def test_a_feature_header_with_a_trailing_space_points_to_it(capsys, tmp_path):
    """``predict`` on a file headed ``f1 `` for a model trained on ``f1``: "no column 'f1'" alone, with
    the near match among a list of columns, left the space to be found by eye."""
    fitted = fitted_animals(tmp_path, seed=3, ids=np.arange(30))
    test = tmp_path / "test.csv"
    text = test.read_text().splitlines()
    assert text[0].replace('"', "") == "id,f1,f2,animal"
    test.write_text("\n".join(["id,f1 ,f2,animal", *text[1:]]) + "\n")
    rc, _, err = call(capsys, "predict", fitted["model"], test, "--out", tmp_path / "out.csv")
    assert rc != 0
    line = error_line(err)
    assert "no column 'f1'" in line and "did you mean 'f1 '?" in line
