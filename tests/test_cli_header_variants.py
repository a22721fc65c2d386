"""Headers that differ from what softmaxkit writes by spaces, letter case or a ``#``, and numbers off
by a factor of 100: what the CLI reads from them, or how it refuses them.

Each case is one an audit found giving a wrong answer with exit 0, or an error that pointed the
wrong way: a score column `` logit_c`` (a space after the comma), ``Logit_c`` or np.savetxt's
``# logit_a`` dropped as "not scores" (a 3-class file scored as 2 classes), a trailing space kept in
the class name (``c ``), probabilities written as percentages sent to ``--logits`` (log-loss 0.3082
for 0.0737, exit 0), empty trailing Excel columns called a duplicate name, and a feature header with
a trailing space reported as missing without the near match. The numbers are checked against
scikit-learn's ``log_loss`` on the same scores.

Review audit R4 on that fix: ``Logit_margin`` beside ``logit_a,logit_b,logit_c`` was read as a 4th
class (accuracy 0.6583 for 0.9167, exit 0), so a prefix spelt in two letter cases is refused with both
ways out; and near variants beside the scores (``p-value``, ``p.adj``, ``logits.mean``), refused by it,
are left out again, now with a warning that names them.
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
    "Logit_a,Logit_b,Logit_c",        # letter case, one spelling for every column
    "# logit_a,logit_b,logit_c",      # np.savetxt's default header
    "logit_a,logit_b,logit_c ",       # a trailing space
    " LOGIT_a , LOGIT_b,LOGIT_c",
])
def test_a_score_prefix_up_to_spaces_case_or_hash_names_a_class(capsys, tmp_path, scores, header):
    """Labels of classes a and b only, so a file misread as 2 classes is not caught by the labels:
    `` logit_c`` was ignored and the 3-class logits scored as 2 (log-loss 0.0557 for 0.0869, exit 0);
    ``logit_c `` gave the class ``'c '``, which the label ``c`` then did not match. (``Logit_c`` beside
    ``logit_a,logit_b``, the prefix spelt two ways, is refused instead: a summary column ``Logit_margin``
    read as a fourth class gave accuracy 0.6583 for 0.9167, review audit R4;
    :func:`test_a_prefix_spelt_in_another_case_than_the_others_is_refused`.)"""
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
    """The same for ``p_``: `` P_c`` is class c's probability column, not a column to ignore (beside
    `` P_a, P_b``: one spelling of the prefix)."""
    from scipy.special import softmax

    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["a", "b", "c"])[y]})
    path = _write(tmp_path / "p.csv", " P_a, P_b, P_c", softmax(z, axis=1))
    got, _ = _evaluate(capsys, "--probs", path, "--labels", labels)
    assert got["classes"] == ["a", "b", "c"]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("softmaxkit: warning:")]


@pytest.mark.parametrize(("kind", "header", "odd"), [
    # Beside p_a,p_b,p_c: statistics columns, named with another separator or no separator at all.
    ("probs", "p_a,p_b,p_c", "p-value"),
    ("probs", "p_a,p_b,p_c", "p.adj"),
    ("probs", "p_a,p_b,p_c", "p value"),
    ("probs", "p_a,p_b,p_c", "P: adj"),
    ("probs", "p_a,p_b,p_c", "ps_score"),
    ("logits", "logit_a,logit_b,logit_c", "logits.mean"),
    # A class's logits under a near name: the labels (a and b only) name no class c, so c is lost,
    # with a warning that names the column (were c among the labels, the label check refuses).
    ("logits", "logit_a,logit_b", "logit-c"),
    ("logits", "logit_a,logit_b", "logits_c"),
    ("logits", "logit_a,logit_b", "Logit c"),
    ("logits", "logit_a,logit_b", "logit:c"),
])
def test_a_near_variant_of_the_prefix_is_left_out_with_a_warning(capsys, tmp_path, scores, kind, header, odd):
    """A column named almost ``<prefix><class>`` (another separator, a plural) beside prefixed columns is
    left out as other non-score columns are, with a warning that names it. Refusing it (as b23f83b did)
    stopped files that had worked, and a ``p-value`` or ``logits.mean`` column is common beside scores
    (review audit R4); the numbers are those of the prefixed columns alone."""
    from scipy.special import softmax

    z, y = scores
    n_classes = header.count(",") + 1
    keep = y < n_classes
    z, y = z[keep][:, :n_classes], y[keep]
    values = softmax(z, axis=1) if kind == "probs" else z
    extra = np.linspace(0.01, 0.99, len(y))[:, None]
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(list("abc"))[y]})
    path = _write(tmp_path / "s.csv", f"{header},{odd}", np.hstack([values, extra]))
    got, err = _evaluate(capsys, f"--{kind}", path, "--labels", labels)
    assert got["classes"] == list("abc")[:n_classes]
    assert odd in got["ignored_columns"]
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    prefix = "p_" if kind == "probs" else "logit_"
    assert any(repr(odd) in line and f"{prefix}<class>" in line for line in _warnings(err)), err
    # --ignore names it as no score: no warning then.
    _, err = _evaluate(capsys, f"--{kind}", path, "--labels", labels, "--ignore", odd)
    assert not _warnings(err), err


def _write_table(path, columns: dict) -> str:
    """A CSV headed by the keys of ``columns`` exactly as given (case kept), numbers written in full."""
    names = list(columns)
    rows = zip(*columns.values())
    path.write_text("\n".join([",".join(names)] + [",".join(v if isinstance(v, str) else repr(float(v))
                                                             for v in row) for row in rows]) + "\n")
    return str(path)


def _margin(z: np.ndarray) -> np.ndarray:
    top = np.sort(z, axis=1)
    return top[:, -1] - top[:, -2]


@pytest.mark.parametrize(("kind", "odd", "values"), [
    ("logits", "Logit_margin", "margin"),   # top-1 minus top-2 logit: read as a 4th class (exit 0)
    ("logits", "Logit_link", "text"),       # a text column: "non-numeric value" in a column not a score
    ("probs", "P_value", "pvalue"),         # a p-value: "probabilities sum to 1.316"
])
def test_a_prefix_spelt_in_another_case_than_the_others_is_refused(capsys, tmp_path, scores, kind, odd, values):
    """Beside lowercase ``logit_a,logit_b,logit_c`` a column ``Logit_margin`` is neither a class nor left
    out without a word: refused, naming it and both ways out. b23f83b read it as class 'margin' (review
    audit R4: accuracy 0.6583 / log-loss 0.7899 for 0.9167 / 0.3301, exit 0, and a class-count alarm);
    before it the column was ignored. Either way out gives the numbers of the three columns."""
    from scipy.special import softmax

    z, y = scores
    prefix = "p_" if kind == "probs" else "logit_"
    scores_ = softmax(z, axis=1) if kind == "probs" else z
    extra = {"margin": _margin(z), "text": ["identity"] * len(y),
             "pvalue": np.linspace(0.01, 0.99, len(y))}[values]
    columns = {f"{prefix}{c}": scores_[:, j] for j, c in enumerate("abc")}
    path = _write_table(tmp_path / "s.csv", {**columns, odd: extra})
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(list("abc"))[y]})
    rc, _, err = call(capsys, "evaluate", f"--{kind}", path, "--labels", labels)
    assert rc != 0, err
    line = error_line(err)
    cls = odd[len(prefix):]
    assert repr(odd) in line and f"rename it '{prefix}{cls}'" in line and f"--ignore '{odd}'" in line, line
    got, _ = _evaluate(capsys, f"--{kind}", path, "--labels", labels, "--ignore", odd)
    assert got["classes"] == list("abc")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_the_audit_case_spelt_logit_c_is_refused_not_dropped(capsys, tmp_path, scores):
    """``logit_a,logit_b,Logit_c`` with labels a and b only: ``Logit_c`` was dropped (3 classes scored
    as 2, log-loss 0.0557 for 0.0869, exit 0), then read as class c; with the prefix spelt two ways it
    is refused, and renamed it is read as class c."""
    from sklearn.metrics import log_loss
    from scipy.special import softmax

    z, y = scores
    keep = y < 2
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["a", "b"])[y[keep]]})
    path = _write(tmp_path / "z.csv", "logit_a,logit_b,Logit_c", z[keep])
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert rc != 0
    line = error_line(err)
    assert "'Logit_c'" in line and "rename it 'logit_c'" in line and "--ignore 'Logit_c'" in line
    renamed = _write(tmp_path / "z2.csv", "logit_a,logit_b,logit_c", z[keep])
    got, _ = _evaluate(capsys, "--logits", renamed, "--labels", labels)
    assert got["classes"] == ["a", "b", "c"]
    expected = log_loss(y[keep], softmax(z[keep], axis=1), labels=[0, 1, 2])
    assert got["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-9)


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
