"""Score columns are matched to classes by their names, never by where they happen to stand.

Each case is one the audit of 2026-12-06 found giving a wrong answer with exit 0:
``pd.DataFrame(z)[[2, 0, 1]].to_csv()`` (header ``,2,0,1``) read by position
(accuracy 0.085 for 0.785), ties broken by the file's column order (accuracy
0.5 or 1.0 for the same rows), and predict's own ``prediction`` column taken
as the true labels (accuracy 1.0). The numbers are checked against
scikit-learn's ``log_loss`` on the same scores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, sklearn_log_loss
from softmaxkit.data import read_columns, write_columns

pytest.importorskip("sklearn")

N, K = 90, 3
PERMUTED = [2, 0, 1]


@pytest.fixture(scope="module")
def scores():
    """Logits of a decent 3-class model, and their labels 0..2."""
    return decent_logits(N, K, seed=11)


def _json(capsys, *argv):
    rc, out, err = call(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out), err


def _integer_header(path, z, order, *, index=True):
    """Logits ``z`` with the columns ``order`` under their class numbers as names, as pandas'
    ``pd.DataFrame(z)[order].to_csv(path)`` writes them (an unnamed row index first)."""
    columns = {"": np.arange(len(z))} if index else {}
    return write_columns(path, {**columns, **{str(j): z[:, j] for j in order}})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_integer_header_in_another_order_is_read_by_name(capsys, tmp_path, scores, suffix):
    """Header ``,2,0,1`` over labels 0..2: read by position, column "2" was class 0 (log-loss 2.1 for 0.61)."""
    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    path = _integer_header(tmp_path / f"z201{suffix}", z, PERMUTED)
    got, err = _json(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean(z.argmax(1) == y))
    assert got["classes"] == ["0", "1", "2"]
    assert "matched to the classes by name" in err
    # 0..K-1 in order is the usual positional file: no note, no names.
    got, err = _json(capsys, "evaluate", "--logits", _integer_header(tmp_path / f"z012{suffix}", z, range(K)),
                     "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    assert got["classes"] is None and "by name" not in err


def test_one_based_integer_header_matches_one_based_labels(capsys, tmp_path, scores):
    """Classes 1..3 in the order 3,1,2 with labels 1..3: by name, as scikit-learn pairs them."""
    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"y": y + 1})
    path = write_columns(tmp_path / "z.csv", {str(j + 1): z[:, j] for j in PERMUTED})
    got, _ = _json(capsys, "evaluate", "--logits", path, "--labels", labels)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    assert got["classes"] == ["1", "2", "3"]


def test_an_integer_header_that_is_not_the_labels_is_refused(capsys, tmp_path, scores):
    """Header 30,10,20 over labels 0..2 (or over text labels): no name matches, so the columns' classes
    are unknown; refused, naming the header and --classes, rather than read by position."""
    z, y = scores
    path = write_columns(tmp_path / "z.csv", {str(10 * (j + 1)): z[:, j] for j in PERMUTED})
    for name, values in (("y.csv", y), ("t.csv", np.array(["a", "b", "c"])[y])):
        labels = write_columns(tmp_path / name, {"y": values})
        rc, out, err = call(capsys, "evaluate", "--logits", path, "--labels", labels)
        assert rc == 1 and out == "", err
        # The note names the header and --classes; the error, the labels no column is named for.
        assert "30, 10, 20" in err and "--classes" in err and error_line(err), err
    # --classes in the file's order says what they are.
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    got, _ = _json(capsys, "evaluate", "--logits", path, "--labels", labels, "--classes", "2,0,1")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)


def test_calibrate_and_apply_keep_the_names_of_an_integer_header(capsys, tmp_path, scores):
    """calibrate on header 2,0,1 saved no class names, and apply wrote column "2" out as p_0."""
    from softmaxkit.io import load

    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    z201 = _integer_header(tmp_path / "z201.csv", z, PERMUTED)
    z012 = _integer_header(tmp_path / "z012.csv", z, range(K), index=False)
    cal = tmp_path / "cal.npz"
    got, _ = _json(capsys, "calibrate", "--logits", z201, "--labels", labels, "--method", "vector", "--out", cal)
    assert got["metrics"]["uncalibrated"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    assert load(cal).class_names_ == ["0", "1", "2"]
    outs = []
    for i, source in enumerate((z201, z012)):
        out = tmp_path / f"p{i}.csv"
        _json(capsys, "apply", cal, "--logits", source, "--out", out)
        outs.append(read_columns(out))
    # pandas' saved index of the input is kept first (as predict keeps row ids), then the classes in order
    assert list(outs[0]) == ["", "p_0", "p_1", "p_2", "prediction"]
    for name in ("p_0", "p_1", "p_2"):
        np.testing.assert_array_equal(np.asarray(outs[0][name]), np.asarray(outs[1][name]))


TIES = {"p_bird": [0.0, 0.5, 0.2, 0.1], "p_cat": [0.5, 0.5, 0.6, 0.1], "p_dog": [0.5, 0.0, 0.2, 0.8]}


def test_ties_do_not_depend_on_the_column_order(capsys, tmp_path):
    """The same tied probabilities as p_bird,p_cat,p_dog and p_dog,p_cat,p_bird: accuracy 0.5 vs 1.0."""
    labels = write_columns(tmp_path / "y.csv", {"y": np.array(["dog", "cat", "cat", "dog"])})
    a = write_columns(tmp_path / "a.csv", {k: np.array(v) for k, v in TIES.items()})
    b = write_columns(tmp_path / "b.csv", {k: np.array(TIES[k]) for k in ("p_dog", "p_cat", "p_bird")})
    got = [_json(capsys, "evaluate", "--probs", path, "--labels", labels)[0] for path in (a, b)]
    assert got[0]["metrics"] == got[1]["metrics"]
    assert got[0]["classes"] == got[1]["classes"] == ["bird", "cat", "dog"]


def test_apply_writes_the_calibrators_order_whatever_the_files(capsys, tmp_path, scores):
    """Isotonic maps tie often; apply kept the input's column order, so the prediction column
    followed whichever order the file had (6 of 100 predictions changed)."""
    z, y = scores
    names = np.array(["bird", "cat", "dog"])
    labels = write_columns(tmp_path / "y.csv", {"y": names[y]})
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    a = write_columns(tmp_path / "a.csv", {f"p_{names[j]}": p[:, j] for j in range(K)})
    b = write_columns(tmp_path / "b.csv", {f"p_{names[j]}": p[:, j] for j in PERMUTED})
    cal = tmp_path / "iso.npz"
    _json(capsys, "calibrate", "--probs", b, "--labels", labels, "--method", "isotonic", "--out", cal)
    outs = []
    for i, source in enumerate((a, b)):
        out = tmp_path / f"out{i}.csv"
        _json(capsys, "apply", cal, "--probs", source, "--out", out)
        outs.append(read_columns(out))
    assert list(outs[0]) == list(outs[1]) == ["p_bird", "p_cat", "p_dog", "prediction"]
    for name in outs[0]:
        np.testing.assert_array_equal(np.asarray(outs[0][name]), np.asarray(outs[1][name]))


def test_predictions_as_labels_warn(capsys, tmp_path):
    """``--labels pp.csv --label-column prediction`` on predict's output scored its own argmax: accuracy 1.0."""
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    path = write_columns(tmp_path / "pp.csv", {"p_a": p[:, 0], "p_b": p[:, 1],
                                               "prediction": np.array(["a", "b", "a", "b"])})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", path, "--label-column", "prediction", "-q")
    assert rc == 0, err
    assert "softmaxkit: warning:" in err and "the scores' own predictions" in err
    # True labels in the same file: no such warning.
    path = write_columns(tmp_path / "pt.csv", {"p_a": p[:, 0], "p_b": p[:, 1], "y": np.array(["a", "a", "a", "b"])})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", path, "--label-column", "y", "-q")
    assert rc == 0 and "own predictions" not in err, err
