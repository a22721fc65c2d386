"""``--ignore`` and row-id columns in score files (review audit R of the round of 2026-12-06).

``--ignore 0`` on ``pd.DataFrame(binary_logits).to_csv()`` (header ``,0,1``) dropped the class-0
column *named* "0", not position 0, and read the other as log-odds (accuracy 0.7333 for 0.8333,
exit 0); probability columns ``ID,IN,US`` (country codes) and logit classes named ``index``/``uid``
were refused as row ids; ``--ignore`` on a float16 ``.npy`` widened it to float64 and changed the
ECE (0.0175 for 0.0202); bfloat16 probabilities widened to float32 were refused by the CLI though
the library accepts them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit.data import read_scores, write_columns

pd = pytest.importorskip("pandas")


def _evaluate(capsys, *args):
    rc, out, err = call(capsys, "evaluate", *map(str, args), "--json")
    assert rc == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------- 1. a name that is also a position


@pytest.fixture()
def binary_logits(tmp_path):
    """Binary logits saved by pandas with its index: header ``,0,1``."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2)) * 2
    p1 = np.exp(z[:, 1]) / np.exp(z).sum(1)
    y = (rng.random(300) < p1).astype(int)
    path = tmp_path / "bz.csv"
    pd.DataFrame(z).to_csv(path)
    labels = tmp_path / "y.npy"
    np.save(labels, y)
    return path, labels


def test_ignore_that_is_a_name_and_another_columns_position_is_refused(capsys, tmp_path, binary_logits):
    path, labels = binary_logits
    want = _evaluate(capsys, "--logits", path, "--labels", labels)["metrics"]
    rc, _, err = call(capsys, "evaluate", "--logits", str(path), "--labels", str(labels), "--ignore", "0", "-q")
    line = error_line(err)
    assert rc == 1, "--ignore 0 was read as the column named '0' (class 0), exit 0"
    assert str(path) in line and "ambiguous" in line and "'0'" in line
    assert "--ignore -3" in line and "--ignore -2" in line  # position 0 (the index), and the column named '0'
    # the spelling it offers for position 0 works and leaves the classes alone
    got = _evaluate(capsys, "--logits", path, "--labels", labels, "--ignore", "-3")["metrics"]
    assert got["accuracy"] == want["accuracy"] and got["log_loss"] == pytest.approx(want["log_loss"], rel=1e-12)


def test_fit_ignore_that_is_ambiguous_is_refused(capsys, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    frame = pd.DataFrame(X)
    frame["y"] = (X[:, 0] > 0).astype(int)
    data = tmp_path / "d.csv"
    frame.to_csv(data)  # header ",0,1,2,y"
    out = ["--out", str(tmp_path / "m.npz"), "--no-report", "-q"]
    rc, _, err = call(capsys, "fit", str(data), "--target", "y", "--ignore", "1", *out)
    line = error_line(err)
    assert rc == 1 and "ambiguous" in line
    assert "--ignore -3" in line and "--ignore -4" in line  # the column named '1', and position 1 (column '0')
    rc, _, err = call(capsys, "fit", str(data), "--target", "y", "--ignore", "-3", *out)
    assert rc == 0, err


def test_target_and_label_column_that_are_ambiguous_are_refused(capsys, tmp_path):
    """The same trap as --ignore: on the header ",0,1,2" (pandas' index, then columns 0, 1, 2) a value
    such as 1 names one column and is the position of another; each column option refuses it."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({0: rng.normal(size=60), 1: rng.normal(size=60), 2: np.tile([0, 1], 30)})
    data = tmp_path / "d.csv"
    frame.to_csv(data)  # header ",0,1,2"
    rc, _, err = call(capsys, "fit", str(data), "--target", "2", "--out", str(tmp_path / "m.npz"), "--no-report",
                      "-q")
    line = error_line(err)
    assert rc == 1 and "--target 2 is ambiguous" in line and "--target -1" in line, line
    rc, _, err = call(capsys, "fit", str(data), "--target", "-1", "--ignore", "-4", "--out", str(tmp_path / "m.npz"),
                      "--no-report", "-q")
    assert rc == 0, err
    logits = tmp_path / "z.npy"
    np.save(logits, rng.normal(size=(60, 2)))
    rc, _, err = call(capsys, "evaluate", "--logits", str(logits), "--labels", str(data), "--label-column", "1", "-q")
    line = error_line(err)
    assert rc == 1 and "--label-column 1 is ambiguous" in line, line


def test_npy_positions_are_never_ambiguous(capsys, tmp_path):
    """In a .npy the names are the positions: --ignore 0 is column 0."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(60, 3))
    path = tmp_path / "z.npy"
    np.save(path, np.column_stack([np.arange(60), z]))
    read = read_scores(path, kind="logit", ignore=("0",))
    np.testing.assert_array_equal(read.values, z)


# --------------------------------------------------------------------------- 2. classes named like ids


@pytest.mark.parametrize("classes", [["ID", "IN", "US"], ["index", "row", "uid"], ["Item_No", "b", "c"]])
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_classes_named_like_row_ids_are_read(capsys, tmp_path, kind, classes):
    """Probabilities are never refused as a row id (an id fails their range check); logits only when
    the column also holds whole numbers."""
    rng = np.random.default_rng(3)
    n = 60
    y = rng.integers(0, 3, n)
    z = rng.normal(size=(n, 3))
    z[np.arange(n), y] += 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    scores = p if kind == "probs" else z
    path = write_columns(tmp_path / "s.csv", {c: scores[:, j] for j, c in enumerate(classes)})
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(classes)[y]})
    got = _evaluate(capsys, f"--{kind}", path, "--labels", labels, "--classes", ",".join(classes))
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean(scores.argmax(1) == y))


def test_an_id_in_a_probability_file_fails_the_probability_check(capsys, tmp_path):
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(3), size=50)
    path = write_columns(tmp_path / "p.csv", {"id": np.arange(50) + 100, **{f"c{j}": p[:, j] for j in range(3)}})
    labels = write_columns(tmp_path / "y.csv", {"label": rng.integers(0, 3, 50)})
    rc, out, err = call(capsys, "evaluate", "--probs", str(path), "--labels", str(labels), "--json")
    # An id, never a class: left out (review audit 2: "probabilities must lie in [0, 1] ... pass them with
    # --logits" sent the user the wrong way; then it was refused, naming --ignore).
    assert rc == 0, err
    got = json.loads(out)
    assert got["ignored_columns"] == ["id"] and got["n_classes"] == 3


def test_whole_number_logits_that_classes_names_are_kept(capsys, tmp_path):
    """A logit column named like an id that holds whole numbers is refused, unless --classes names it."""
    rng = np.random.default_rng(5)
    z = np.round(rng.normal(size=(40, 3)) * 3)
    # the top class with ties broken in the sorted class order a, b, id, as evaluate breaks them
    y = np.array([1, 2, 0])[z[:, [1, 2, 0]].argmax(1)]
    path = write_columns(tmp_path / "z.csv", {"id": z[:, 0], "a": z[:, 1], "b": z[:, 2]})
    labels = write_columns(tmp_path / "y.csv", {"label": np.array(["id", "a", "b"])[y]})
    rc, _, err = call(capsys, "evaluate", "--logits", str(path), "--labels", str(labels), "-q")
    assert rc == 1 and "--ignore id" in error_line(err)
    assert _evaluate(capsys, "--logits", path, "--labels", labels, "--classes", "id,a,b")["metrics"]["accuracy"] == 1


# --------------------------------------------------------------------------- 3. --ignore on a 16-bit .npy


def test_ignore_on_a_float16_npy_keeps_its_precision(capsys, tmp_path):
    rng = np.random.default_rng(5)
    n, K = 400, 3
    c = np.maximum(rng.choice(np.arange(6, 16) / 15, size=n), 1 / K + 0.02).astype(np.float16)
    P = np.repeat(((1 - c.astype(np.float64)) / (K - 1)).astype(np.float16)[:, None], K, 1)
    P[:, 0] = c
    y = np.where(rng.random(n) < c.astype(float), 0, rng.integers(1, K, n))
    np.save(tmp_path / "h.npy", P)
    np.save(tmp_path / "h_id.npy", np.column_stack([np.arange(n).astype(np.float16), P]))
    np.save(tmp_path / "h_mid.npy", np.column_stack([P[:, :1], np.zeros(n, np.float16), P[:, 1:]]))
    np.save(tmp_path / "y.npy", y)
    read = read_scores(tmp_path / "h_id.npy", kind="probability", ignore=("0",))
    assert read.values.dtype == np.float16 and read.ignored == ("0",)
    np.testing.assert_array_equal(read.values, P)
    want = _evaluate(capsys, "--probs", tmp_path / "h.npy", "--labels", tmp_path / "y.npy")["metrics"]["ece"]
    for name, column in (("h_id.npy", "0"), ("h_mid.npy", "1")):
        got = _evaluate(capsys, "--probs", tmp_path / name, "--labels", tmp_path / "y.npy", "--ignore", column)
        assert got["metrics"]["ece"] == want, name


# --------------------------------------------------------------------------- 4. bfloat16 values in a float32 file


def _bfloat16_values(x):
    """``x`` rounded to bfloat16 (to nearest, ties to even) and widened back to float32, as
    ``t.bfloat16().float().numpy()`` gives it (without needing torch)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return rounded.view(np.float32)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_bfloat16_probabilities_widened_to_float32_are_accepted(capsys, tmp_path, suffix):
    from softmaxkit.metrics import log_loss

    rng = np.random.default_rng(6)
    n = 200
    y = rng.integers(0, 4, n)
    z = rng.normal(size=(n, 4)).astype(np.float32)
    z[np.arange(n), y] += 1.5
    p = _bfloat16_values(np.exp(z) / np.exp(z).sum(1, keepdims=True))
    assert np.abs(p.sum(1, dtype=np.float64) - 1).max() > 1e-3  # beyond the float32 rule
    path = tmp_path / f"p{suffix}"
    if suffix == ".npy":
        np.save(path, p)
    else:
        write_columns(path, {f"c{j}": p[:, j].astype(np.float64) for j in range(4)})
    labels = tmp_path / "y.npy"
    np.save(labels, y)
    got = _evaluate(capsys, "--probs", path, "--labels", labels)["metrics"]
    rows = p.astype(np.float64) / p.sum(1, dtype=np.float64, keepdims=True)
    assert got["log_loss"] == pytest.approx(log_loss(y, probs=rows), rel=1e-6)
    # a row off by more than bfloat16's rounding is still refused, naming it
    bad = p.copy()
    bad[3] = _bfloat16_values(bad[3] * 1.05)
    np.save(tmp_path / "bad.npy", bad)
    rc, _, err = call(capsys, "evaluate", "--probs", str(tmp_path / "bad.npy"), "--labels", str(labels), "-q")
    assert rc == 1 and "row 4: probabilities sum to 1.05" in error_line(err) and "bfloat16" in error_line(err)


def test_float32_rows_off_without_narrow_values_are_refused(capsys, tmp_path):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(3), size=30).astype(np.float32)
    p[2] *= np.float32(1.002)  # float32 values, not bfloat16 ones: 0.002 off is not rounding
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 30))
    rc, _, err = call(capsys, "evaluate", "--probs", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"))
    assert rc == 1 and "row 3: probabilities sum to 1.002" in error_line(err)


# --------------------------------------------------------------------------- review audit 2


def test_label_column_by_position_in_the_scores_file_is_not_a_class(capsys, tmp_path):
    """--label-column -1 / 3 with the labels in the logits file kept them as a fourth class (accuracy
    0.5175 for 0.73, exit 0): the position was compared as a name."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 3))
    y = z.argmax(1)
    frame = pd.DataFrame(z)
    frame["y"] = y
    path = tmp_path / "zy.csv"
    frame.to_csv(path, index=False)  # header "0,1,2,y"
    want = _evaluate(capsys, "--logits", path, "--labels", path, "--label-column", "y")
    for column in ("-1", "3"):
        got = _evaluate(capsys, "--logits", path, "--labels", path, "--label-column", column)
        assert got["n_classes"] == 3 and got["metrics"]["accuracy"] == want["metrics"]["accuracy"] == 1.0


def test_labels_saved_by_pandas_with_their_index_are_read(capsys, tmp_path):
    """pd.Series(y).to_csv() writes ",0": the index is never the labels, so --label-column 0 names the
    labels and no --label-column is needed at all."""
    rng = np.random.default_rng(4)
    z = rng.normal(size=(100, 3))
    logits, labels = tmp_path / "z.npy", tmp_path / "y.csv"
    np.save(logits, z)
    pd.Series(z.argmax(1)).to_csv(labels)
    for extra in ((), ("--label-column", "0"), ("--label-column", "-1")):
        got = _evaluate(capsys, "--logits", logits, "--labels", labels, *extra)
        assert got["metrics"]["accuracy"] == 1.0, extra


def test_a_feature_without_a_header_left_out_as_an_index_warns(capsys, tmp_path):
    """An empty header cell over real (fractional) values was left out as pandas' row index with only a
    note, which -q hid: the model silently lost a feature."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3))
    data = tmp_path / "d.csv"
    lines = [",a,b,y"] + [f"{r[0]},{r[1]},{r[2]},{int(r[0] > 0)}" for r in X]
    data.write_text("\n".join(lines) + "\n")
    rc, _, err = call(capsys, "fit", str(data), "--target", "y", "--alpha", "1", "--out", str(tmp_path / "m.npz"),
                      "--no-report", "-q")
    assert rc == 0 and "column '' has no header and was left out as a saved row index" in err, err
    rc, _, err = call(capsys, "fit", str(data), "--target", "y", "--alpha", "1", "--ignore", "0", "--out",
                      str(tmp_path / "m3.npz"), "--no-report", "-q")
    assert rc == 0 and "no header" not in err, err  # ignored by position: the user has said what it is
    frame_index = tmp_path / "i.csv"
    pd.DataFrame({"a": X[:, 1], "y": (X[:, 0] > 0).astype(int)}).to_csv(frame_index)  # a real saved index
    rc, _, err = call(capsys, "fit", str(frame_index), "--target", "y", "--alpha", "1", "--out",
                      str(tmp_path / "m2.npz"), "--no-report", "-q")
    assert rc == 0 and "no header" not in err, err


# --------------------------------------------------------------------------- review audit 3


def test_label_column_position_in_an_npz_counts_over_all_arrays(capsys, tmp_path):
    """np.savez(logits=L, labels=y) with --label-column -1: resolved among the score columns left, it
    dropped the last class (accuracy 0.26 for 0.8825, exit 0)."""
    rng = np.random.default_rng(6)
    z = rng.normal(size=(300, 2)) * 2
    y = z.argmax(1)
    path = tmp_path / "zy.npz"
    np.savez(path, logits=z, labels=y)
    want = _evaluate(capsys, "--logits", path, "--labels", path, "--label-column", "labels")
    got = _evaluate(capsys, "--logits", path, "--labels", path, "--label-column", "-1")
    assert got["metrics"] == want["metrics"] and want["metrics"]["accuracy"] == 1.0


def test_a_first_blank_column_is_the_index_but_a_last_one_is_not(capsys, tmp_path):
    """A labels file "id," (ids, then labels without a header) read the ids as labels, exit 0."""
    rng = np.random.default_rng(7)
    z = rng.normal(size=(90, 3))
    logits, labels = tmp_path / "z.npy", tmp_path / "y.csv"
    np.save(logits, z)
    labels.write_text("id,\n" + "\n".join(f"{i % 3},{k}" for i, k in enumerate(z.argmax(1))) + "\n")
    rc, _, err = call(capsys, "evaluate", "--logits", str(logits), "--labels", str(labels), "-q")
    assert rc == 1 and "--label-column" in error_line(err), err


def test_a_position_on_a_saved_index_is_refused(capsys, tmp_path):
    """to_parquet(index=True) puts __index_level_0__ last: --label-column -1 read the index as labels."""
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"label": rng.integers(0, 3, 50)}, index=pd.RangeIndex(50) * 2)
    labels = tmp_path / "y.parquet"
    frame.to_parquet(labels, index=True)
    logits = tmp_path / "z.npy"
    np.save(logits, rng.normal(size=(50, 3)))
    import pyarrow.parquet as pq

    if pq.read_schema(labels).names[-1] != "__index_level_0__":
        pytest.skip("this pyarrow stores the index otherwise")
    rc, _, err = call(capsys, "evaluate", "--logits", str(logits), "--labels", str(labels), "--label-column", "-1",
                      "-q")
    assert rc == 1 and "saved row index" in error_line(err), err


@pytest.mark.parametrize("first", [False, True], ids=["labels-last", "labels-first"])
def test_label_column_position_inside_the_one_logits_array(capsys, tmp_path, first):
    """np.savez(f, logits=np.column_stack([L, y])) with --label-column -1 (or 0 for labels first): the
    position was dropped, and the labels were scored as a fifth class (accuracy 0.6550 for 0.8825)."""
    rng = np.random.default_rng(9)
    z = rng.normal(size=(200, 4)) * 2
    y = z.argmax(1)
    path = tmp_path / "one.npz"
    np.savez(path, logits=np.column_stack([y, z]) if first else np.column_stack([z, y]))
    got = _evaluate(capsys, "--logits", path, "--labels", path, "--label-column", "0" if first else "-1")
    assert got["n_classes"] == 4 and got["metrics"]["accuracy"] == 1.0


def test_labels_saved_twice_by_pandas_are_read(capsys, tmp_path):
    """pd.read_csv(...).to_csv() of a labels Series adds a second index (",Unnamed: 0,0")."""
    rng = np.random.default_rng(10)
    z = rng.normal(size=(80, 3))
    logits, once, twice = tmp_path / "z.npy", tmp_path / "y1.csv", tmp_path / "y2.csv"
    np.save(logits, z)
    pd.Series(z.argmax(1)).to_csv(once)
    pd.read_csv(once).to_csv(twice)
    got = _evaluate(capsys, "--logits", logits, "--labels", twice)
    assert got["metrics"]["accuracy"] == 1.0
