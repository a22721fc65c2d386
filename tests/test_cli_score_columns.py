"""Which columns of a file the CLI reads as class scores, and in which order.

Each case is one a helper's audit (round of 2026-12-05) found giving a wrong
answer with exit 0, or a traceback: a pandas row index read as one more class,
the label column of the same file read as a logit, a header that names the
classes in another order than ``--classes``, a ``.npy`` output with one column
too many, an unnamed calibrator applied by position to named columns, and
Parquet files with a column name twice. The numbers are checked against
scikit-learn's ``log_loss`` on the same scores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, sklearn_log_loss
from softmaxkit.data import write_columns

pytest.importorskip("sklearn")

N, K = 90, 3


@pytest.fixture(scope="module")
def scores():
    """Logits of a decent 3-class model, and their labels."""
    return decent_logits(N, K, seed=5)


def _evaluate(capsys, *argv):
    rc, out, err = call(capsys, "evaluate", *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def test_a_saved_row_index_is_not_a_class(capsys, tmp_path, scores):
    """``pd.DataFrame(z).to_csv(path)`` writes an unnamed index column first; Parquet names it
    ``__index_level_0__``. Both were read as a 4th class (accuracy 0.30, log-loss 19, exit 0)."""
    z, y = scores
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    expected = sklearn_log_loss(z, y)
    for index_name, suffix in (("", ".csv"), ("Unnamed: 0", ".csv"), ("__index_level_0__", ".parquet")):
        path = write_columns(tmp_path / f"z{suffix}",
                             {index_name: np.arange(N), **{str(j): z[:, j] for j in range(K)}})
        got = _evaluate(capsys, "--logits", path, "--labels", labels)
        assert got["n_classes"] == K, index_name
        assert got["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-12)
        assert got["ignored_columns"] == [index_name]


def test_the_label_column_of_the_scores_file_is_not_a_score(capsys, tmp_path, scores):
    """``--logits F --labels F --label-column y``: the labels' column was read as a 4th logit."""
    z, y = scores
    path = write_columns(tmp_path / "z.csv", {**{f"class_{j}": z[:, j] for j in range(K)}, "y": y})
    got = _evaluate(capsys, "--logits", path, "--labels", path, "--label-column", "y")
    assert got["n_classes"] == K
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", path, "--label-column", "y",
                      "--out", tmp_path / "cal.npz", "-q")
    assert rc == 0, err


def test_a_header_naming_the_classes_is_held_to_classes(capsys, tmp_path, scores):
    """Plain names that are classes name them in the file's order: ``--classes`` in another order was
    applied by position (accuracy 0.019 for 0.98, exit 0); it was then refused, and is now matched to
    the columns by name (``--classes`` gives the labels' order), as for p_ columns."""
    z, y = scores
    names = ["b", "c", "a"]  # the file's columns hold classes b, c, a
    classes = np.array(["a", "b", "c"])
    path = write_columns(tmp_path / "z.csv", {"b": z[:, 1], "c": z[:, 2], "a": z[:, 0]})
    labels = write_columns(tmp_path / "y.csv", {"label": classes[y]})
    got = _evaluate(capsys, "--logits", path, "--labels", labels, "--classes", "a,b,c")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    got = _evaluate(capsys, "--logits", path, "--labels", labels, "--classes", ",".join(names))
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    # Plain names that are not classes stay positional, as before.
    plain = write_columns(tmp_path / "plain.csv", {f"s{j}": z[:, j] for j in range(K)})
    got = _evaluate(capsys, "--logits", plain, "--labels", labels, "--classes", "a,b,c")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    # One plain column named for a class scores that class, like p_<class>.
    single = write_columns(tmp_path / "single.csv", {"a": z[:60, 0] - z[:60, 1]})
    two = write_columns(tmp_path / "y2.csv", {"label": classes[y[:60]]})
    got = _evaluate(capsys, "--logits", single, "--labels", two, "--classes", "a,b")
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z[:60, :2], y[:60]), rel=1e-9)


def test_predict_npy_output_holds_the_probabilities_alone(capsys, tmp_path):
    """With integer classes the numeric ``prediction`` column went into the .npy as a (K+1)-th column,
    which ``evaluate --probs`` refused and ``evaluate --logits`` scored as 11 classes (exit 0)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    data = write_columns(tmp_path / "iris.csv", {**{f"x{j}": X[:, j] for j in range(4)}, "label": y})
    model = tmp_path / "m.npz"
    assert call(capsys, "fit", data, "--target", "label", "--out", model, "--no-report", "-q")[0] == 0
    for out in ("p.npy", "p.csv"):
        rc, _, err = call(capsys, "predict", model, data, "--out", tmp_path / out, "-q")
        assert rc == 0, err
    assert np.load(tmp_path / "p.npy").shape == (150, 3)
    from_npy = _evaluate(capsys, "--probs", tmp_path / "p.npy", "--labels", data, "--label-column", "label")
    from_csv = _evaluate(capsys, "--probs", tmp_path / "p.csv", "--labels", data, "--label-column", "label")
    assert from_npy["metrics"]["log_loss"] == pytest.approx(from_csv["metrics"]["log_loss"], rel=1e-12)


def test_an_unnamed_per_class_calibrator_needs_by_position_for_named_columns(capsys, tmp_path, scores):
    """A vector calibrator fitted on a .npy applied to named, reordered columns took them by position:
    probabilities moved by 0.25 (exit 0). Now refused unless --by-position; temperature (one T) is
    order-free and still applies."""
    z, y = scores
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    named = write_columns(tmp_path / "z.csv", {f"logit_{j}": z[:, j] for j in range(K)})
    for method in ("vector", "temperature"):
        cal = tmp_path / f"{method}.npz"
        assert call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                    "--method", method, "--out", cal, "-q")[0] == 0
        rc, _, err = call(capsys, "apply", cal, "--logits", named, "--out", tmp_path / f"{method}.csv", "-q")
        if method == "temperature":
            assert rc == 0, err
            continue
        assert rc == 1 and "--by-position" in error_line(err)
        assert call(capsys, "apply", cal, "--logits", named, "--out", tmp_path / "named.csv", "--by-position",
                    "-q")[0] == 0
        assert call(capsys, "apply", cal, "--logits", tmp_path / "z.npy", "--out", tmp_path / "plain.csv",
                    "-q")[0] == 0
        from softmaxkit.data import read_columns

        a, b = read_columns(tmp_path / "named.csv"), read_columns(tmp_path / "plain.csv")
        for j in range(K):
            np.testing.assert_array_equal(np.asarray(a[f"p_{j}"]), np.asarray(b[f"p_{j}"]))


def test_parquet_with_a_column_name_twice_is_refused(capsys, tmp_path):
    """The streaming Parquet readers skipped the CSV reader's check: a second ``label`` column was
    silently ignored (accuracy 0.33 for 0.96, exit 0), a doubled feature gave a KeyError traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), np.arange(60) % 2
    twice_label = tmp_path / "twice_label.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(np.zeros(60, dtype=np.int64)), pa.array(X[:, 0]),
                                         pa.array(X[:, 1]), pa.array(y)], names=["label", "a", "b", "label"]),
                   twice_label)
    twice_feature = tmp_path / "twice_feature.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(X[:, 0]), pa.array(X[:, 1]), pa.array(X[:, 0]), pa.array(y)],
                                        names=["a", "b", "a", "label"]), twice_feature)
    twice_scores = tmp_path / "twice_scores.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(X[:, 0]), pa.array(X[:, 1]), pa.array(X[:, 1])],
                                        names=["logit_0", "logit_1", "logit_1"]), twice_scores)
    for argv in (("fit", twice_label, "--target", "label", "--out", tmp_path / "m.npz", "--no-report"),
                 ("fit", twice_feature, "--target", "label", "--out", tmp_path / "m.npz", "--no-report"),
                 ("evaluate", "--logits", twice_scores, "--labels", twice_label, "--label-column", "label")):
        rc, _, err = call(capsys, *argv)
        assert rc == 1, argv
        assert "appears twice" in error_line(err)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_logits_and_labels_saved_in_one_file(capsys, tmp_path, scores, suffix):
    """``np.savez(f, logits=L, labels=y)``, as torch users save a validation run: the labels array was read
    as one more class (accuracy 0.91 for 0.97, exit 0; from a .safetensors, which stores ``labels`` first,
    0.004). The scores are the ``logits`` array; the labels come from a file of their own or the same one."""
    z, y = scores
    path = tmp_path / f"val{suffix}"
    if suffix == ".npz":
        np.savez(path, logits=z, labels=y)
    else:
        pytest.importorskip("safetensors")
        from safetensors.numpy import save_file

        save_file({"logits": z, "labels": y}, str(path))
    np.save(tmp_path / "y.npy", y)
    expected = sklearn_log_loss(z, y)
    for labels in (("--labels", tmp_path / "y.npy"), ("--labels", path),
                   ("--labels", path, "--label-column", "labels")):
        got = _evaluate(capsys, "--logits", path, *labels)
        assert got["n_classes"] == K and got["ignored_columns"] == ["labels"], labels
        assert got["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-12)
    rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", path, "--out", tmp_path / "cal.npz", "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", tmp_path / "cal.npz", "--logits", path, "--out", tmp_path / "p.csv", "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", path)
    assert rc == 1 and "its array 'logits' holds logits, not probabilities; pass the file with --logits" in (
        error_line(err))


def test_one_hot_labels(capsys, tmp_path, scores):
    """One-hot labels were refused with "name it with --label-column", and ``--label-column 0`` then read
    class 0's 0/1 indicator as class indices (accuracy 0.0, exit 0). Now the rows are read as classes, with
    a warning, and a column of them is refused."""
    z, y = scores
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "onehot.npy", np.eye(K)[y])
    rc, out, err = call(capsys, "evaluate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "onehot.npy",
                        "--json")
    assert rc == 0, err
    assert "softmaxkit: warning:" in err and "read as one-hot labels" in err
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-12)
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "onehot.npy",
                      "--label-column", "0")
    assert rc == 1
    assert "column '0' is one of 3 one-hot label columns" in error_line(err)
    # get_dummies columns named for the classes of p_<class> scores, in another order
    probs = write_columns(tmp_path / "p.csv", {f"p_{c}": p for c, p in zip("abc", np.eye(K)[y].T * 0.8 + 0.2 / K)})
    dummies = write_columns(tmp_path / "y.csv", {c: np.eye(K)[y][:, j] for j, c in reversed(list(enumerate("abc")))})
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", dummies, "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == 1.0


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_sixteen_bit_safetensors_logits(capsys, tmp_path, scores, dtype):
    """bfloat16 logits (a language model's) were "not a valid .safetensors file (TypeError: data type
    'bfloat16' not understood)". They are read widened to float32, exactly."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    z, y = scores
    tensor = torch.tensor(z, dtype=getattr(torch, dtype))
    save_file({"logits": tensor}, str(tmp_path / "z.safetensors"))
    np.save(tmp_path / "y.npy", y)
    got = _evaluate(capsys, "--logits", tmp_path / "z.safetensors", "--labels", tmp_path / "y.npy")
    widened = tensor.float().numpy().astype(np.float64)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(widened, y), rel=1e-12)
    assert got["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=0.02)
    cal = tmp_path / "cal.npz"
    for argv in (("calibrate", "--logits", tmp_path / "z.safetensors", "--labels", tmp_path / "y.npy",
                  "--out", cal),
                 ("apply", cal, "--logits", tmp_path / "z.safetensors", "--out", tmp_path / "p.csv")):
        rc, _, err = call(capsys, *argv, "-q")
        assert rc == 0, err


def test_classes_counting_up_over_unnamed_columns_warn(tmp_path, capsys):
    """A predict .npy has its columns in sorted class order (c0, c1, c10, c2, ...); --classes counted
    up as a person would gave classes c2.. their neighbours' scores (audit: accuracy 0.07, exit 0)."""
    names = [f"c{j}" for j in range(11)]
    ordered = sorted(names)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 11, 200)
    probs = np.full((200, 11), 0.01)
    probs[np.arange(200), y] = 0.9  # column j scores the class ordered[j]
    np.save(tmp_path / "p.npy", probs)
    (tmp_path / "y.csv").write_text("label\n" + "".join(f"{ordered[v]}\n" for v in y))
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.npy", "--labels", tmp_path / "y.csv",
                        "--classes", ",".join(names))
    assert rc == 0
    assert "softmaxkit: warning: --classes counts up" in err and "c0,c1,c10,c2" in err
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.npy", "--labels", tmp_path / "y.csv",
                        "--classes", ",".join(ordered), "--json")
    assert rc == 0 and "warning" not in err
    assert json.loads(out)["metrics"]["accuracy"] == pytest.approx(1.0)
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.npy", "--labels", tmp_path / "y.csv",
                        "--classes", "high,low,medium,a1,a2,a3,a4,a5,a6,a7,b")
    assert "warning" not in err  # an order of its own, not a count
    # Integer classes are ordered as numbers by softmaxkit and scikit-learn (1, 2, 10): counting up is
    # their order, and the advice to pass 1,10,2 was wrong (audit: accuracy 0.415 for 0.670).
    (tmp_path / "yi.csv").write_text("label\n" + "".join(f"{v}\n" for v in y))
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.npy", "--labels", tmp_path / "yi.csv",
                        "--classes", ",".join(str(j) for j in range(11)))
    assert rc == 0 and "warning" not in err
