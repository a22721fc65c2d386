"""Binary score files as an ML engineer saves them (audit of 2027-01, round M).

Each case gave a wrong answer with exit 0, a traceback, or an error that did not say what to do:
an ``.npz`` of a binary model's 1-D ``scores``, ``preds`` and ``labels`` read as 2-class logits
(accuracy 0.165 for 0.8725), 1-D per-class tensors ``class0..class10`` in a ``.safetensors`` read
in the format's sorted order (accuracy 0.164 for 0.799), softmax outputs passed as ``--logits``
without a word (log-loss 1.1997 for 0.7664), ``.npz`` bytes under a ``.npy`` name (AttributeError),
and bool labels. The numbers are checked against scikit-learn on the same scores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line, sklearn_log_loss

pytest.importorskip("sklearn")


def _evaluate(capsys, *argv):
    """``evaluate ... --json``: (exit code, the JSON document or None, stderr)."""
    rc, out, err = call(capsys, "evaluate", *argv, "--json")
    return rc, json.loads(out) if out.strip() else None, err


def _binary_dump(n=400, seed=1):
    """A binary model's validation scores (log-odds of class 1) and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = (rng.normal(0, 1, n) + (2 * y - 1) * 1.2) * 2
    return s.astype(np.float32), y


# --------------------------------------------------------------------------- 1-D arrays beside binary scores


@pytest.mark.parametrize("extra", ["preds", "loss", "weight", "prediction", "margin", "confidence"])
def test_an_extra_per_row_array_beside_binary_scores_is_not_a_class(capsys, tmp_path, extra):
    """``np.savez(f, scores=s, preds=(s > 0), labels=y)`` was read as 2-class logits [scores, preds]:
    accuracy 0.165, log-loss 2.157 for 0.8725 / 0.2958, exit 0 (calibrate: T = 462.9)."""
    s, y = _binary_dump()
    path = tmp_path / "r.npz"
    np.savez(path, scores=s, **{extra: (s > 0).astype(np.int64)}, labels=y)
    rc, doc, err = _evaluate(capsys, "--logits", path, "--labels", path)
    assert rc == 1 and doc["exit_code"] == 1
    line = error_line(err)
    assert f"'scores' (400,), '{extra}' (400,)" in line and f"--ignore {extra}" in line and "--classes" in line
    rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", path, "--out", tmp_path / "c.npz")
    assert rc == 1 and "--ignore" in error_line(err) and not (tmp_path / "c.npz").exists()
    # --ignore settles it: the one array left is the binary log-odds, as the peer reads it
    rc, doc, _ = _evaluate(capsys, "--logits", path, "--labels", path, "--ignore", extra)
    assert rc == 0
    assert doc["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(np.column_stack([0 * s, s]), y), rel=1e-6)


def test_one_score_array_beside_labels_stays_binary(capsys, tmp_path):
    s, y = _binary_dump(seed=2)
    np.savez(tmp_path / "r.npz", scores=s, labels=y)
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "r.npz", "--labels", tmp_path / "r.npz")
    assert rc == 0 and doc["n_classes"] == 2
    assert doc["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(np.column_stack([0 * s, s]), y), rel=1e-6)


def test_one_d_arrays_named_by_classes_are_read_as_those_classes_and_said(capsys, tmp_path):
    """``--classes`` that names the arrays picks them, in its order, and leaves the rest out; which array
    is which class is said."""
    z, y = decent_logits(90, 3, seed=3)
    names = ["dog", "cat", "bird"]
    np.savez(tmp_path / "r.npz", **{name: z[:, j] for j, name in enumerate(names)}, preds=z.argmax(1), labels=y)
    rc, doc, err = _evaluate(capsys, "--logits", tmp_path / "r.npz", "--labels", tmp_path / "r.npz")
    assert rc == 1 and "--classes" in error_line(err)
    # labels as class names, in a file of their own
    np.save(tmp_path / "y.npy", np.asarray(names)[y])
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "r.npz", "--labels", tmp_path / "y.npy",
                           "--classes", "dog,cat,bird")
    assert rc == 0 and doc["n_classes"] == 3 and "preds" in doc["ignored_columns"]
    assert doc["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)
    assert any("'dog' as class dog" in w and "'bird' as class bird" in w for w in doc["warnings"])


def test_prefixed_one_d_arrays_are_per_class_columns(tmp_path):
    """``logit_<class>`` arrays (predict --logits-out .npz) stay columns named by their classes."""
    from softmaxkit.data import read_scores

    z, y = decent_logits(30, 3, seed=4)
    np.savez(tmp_path / "r.npz", logit_a=z[:, 0], logit_b=z[:, 1], logit_c=z[:, 2], prediction=z.argmax(1), labels=y)
    got = read_scores(tmp_path / "r.npz", kind="logit")
    assert got.classes == ["a", "b", "c"] and "prediction" in got.ignored
    np.testing.assert_array_equal(got.values, z)


# --------------------------------------------------------------------------- numbered per-class arrays


@pytest.mark.parametrize("prefix", ["class", "c"])
def test_numbered_safetensors_tensors_are_read_in_number_order(capsys, tmp_path, prefix):
    """safetensors sorts its header (class0, class1, class10, class2, ...): read in that order against
    index labels, accuracy 0.164, log-loss 2.99 for 0.799 / 0.930 (the same arrays in an .npz: right)."""
    from safetensors.numpy import save_file

    z, y = decent_logits(220, 11, seed=7)
    z = z.astype(np.float32)
    arrays = {f"{prefix}{j}": z[:, j].copy() for j in range(11)}
    arrays["labels"] = y
    save_file(arrays, str(tmp_path / "r.safetensors"))
    np.savez(tmp_path / "r.npz", **arrays)
    want = sklearn_log_loss(z.astype(np.float64), y)
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "r.safetensors", "--labels", tmp_path / "r.safetensors")
    assert rc == 0 and doc["n_classes"] == 11
    assert doc["metrics"]["log_loss"] == pytest.approx(want, rel=1e-5)
    assert any("number order" in w and f"'{prefix}10' as class 10" in w for w in doc["warnings"])
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "r.npz", "--labels", tmp_path / "r.npz")
    assert rc == 0 and doc["metrics"]["log_loss"] == pytest.approx(want, rel=1e-5)


def test_unnumbered_safetensors_tensors_need_classes_for_their_order(capsys, tmp_path):
    """Without softmaxkit's recorded order, ``dog, cat, bird`` come back sorted: their order is unknown."""
    from safetensors.numpy import save_file

    z, y = decent_logits(90, 3, seed=8)
    names = ["dog", "cat", "bird"]
    save_file({**{name: z[:, j].copy() for j, name in enumerate(names)}, "labels": y}, str(tmp_path / "r.safetensors"))
    rc, _, err = _evaluate(capsys, "--logits", tmp_path / "r.safetensors", "--labels", tmp_path / "r.safetensors")
    line = error_line(err)
    assert rc == 1 and "order" in line and "--classes" in line
    # --ignore alone does not give the order either
    rc, _, err = _evaluate(capsys, "--logits", tmp_path / "r.safetensors", "--labels", tmp_path / "r.safetensors",
                           "--ignore", "bird")
    assert rc == 1 and "--classes" in error_line(err)
    np.save(tmp_path / "y.npy", np.asarray(names)[y])
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "r.safetensors", "--labels", tmp_path / "y.npy",
                           "--classes", "dog,cat,bird")
    assert rc == 0 and doc["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-6)


# --------------------------------------------------------------------------- probabilities given as logits


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_probabilities_given_as_logits_draw_a_warning(capsys, tmp_path, dtype):
    """Softmax outputs in a .npy passed as --logits: log-loss 1.1997 for 0.7664, without a word."""
    z, y = decent_logits(90, 5, seed=9)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.save(tmp_path / "p.npy", p.astype(dtype))
    np.save(tmp_path / "z.npy", z.astype(dtype))
    np.save(tmp_path / "y.npy", y)
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "p.npy", "--labels", tmp_path / "y.npy")
    assert rc == 0 and any("--probs" in w and "sums to 1" in w for w in doc["warnings"])
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy")
    assert rc == 0 and not any("--probs" in w for w in doc["warnings"])


def test_the_probability_check_reads_a_mapped_file_in_blocks(tmp_path, monkeypatch):
    """A large memory-mapped --logits file is checked block by block, not copied whole."""
    from softmaxkit import data
    from softmaxkit.cli._common import read_score_file

    p = np.full((50, 4), 0.25)
    np.save(tmp_path / "p.npy", p)
    monkeypatch.setattr(data, "BLOCK_ROWS", 7)
    seen = []
    real = data.iter_row_blocks

    def spy(arr, rows=None):
        seen.append(len(arr))
        yield from real(arr, 7)

    monkeypatch.setattr(data, "iter_row_blocks", spy)
    with pytest.warns(UserWarning, match=r"p\.npy: every value lies in \[0, 1\] and every row sums to 1"):
        read_score_file(str(tmp_path / "p.npy"), kind="logit", given_classes=None)
    assert seen and all(n == 50 for n in seen)


# --------------------------------------------------------------------------- clear errors


def test_npz_bytes_under_a_npy_name_are_refused_in_words(capsys, tmp_path, monkeypatch):
    """np.savez into a file named .npy gave AttributeError: 'NpzFile' object has no attribute 'ndim'."""
    z, y = decent_logits(30, 3, seed=10)
    with open(tmp_path / "r.npy", "wb") as fh:
        np.savez(fh, logits=z, labels=y)
    np.save(tmp_path / "y.npy", y)
    closed = []
    real_close = np.lib.npyio.NpzFile.close

    def close(self):
        closed.append(True)
        real_close(self)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "close", close)
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "r.npy", "--labels", tmp_path / "y.npy")
    assert rc == 1 and error_line(err).endswith("r.npy holds an .npz archive; rename it to .npz")
    assert closed


def test_a_matrix_of_no_columns_is_named(capsys, tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((60, 0), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(60, np.int64))
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy")
    line = error_line(err)
    assert rc == 1 and "z.npy" in line and "0 columns" in line


def test_rows_that_differ_within_one_file_name_the_arrays(capsys, tmp_path):
    """Was: "r7.npz has 600 rows but r7.npz has 500"."""
    z, y = decent_logits(60, 3, seed=11)
    np.savez(tmp_path / "r.npz", logits=z, labels=y[:50])
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "r.npz", "--labels", tmp_path / "r.npz")
    line = error_line(err)
    assert rc == 1 and "'logits'" in line and "'labels'" in line and "60" in line and "50" in line


def test_calibrate_out_with_a_bad_extension_is_a_usage_error(capsys, tmp_path):
    """Exit 1 while the README says a bad option value exits 2 before any file is read."""
    with pytest.raises(SystemExit) as exit_info:
        call(capsys, "calibrate", "--logits", tmp_path / "missing.npy", "--labels", tmp_path / "missing.npy",
             "--out", tmp_path / "cal.json")
    assert exit_info.value.code == 2 and "unsupported extension '.json'" in capsys.readouterr().err


@pytest.mark.parametrize("store", ["npy", "safetensors", "csv"])
def test_bool_labels_are_classes_false_and_true(capsys, tmp_path, store):
    """Were refused with "give the class names with --classes", which did not help."""
    z, y = decent_logits(60, 2, seed=12)
    np.save(tmp_path / "z.npy", z)
    if store == "npy":
        labels = tmp_path / "y.npy"
        np.save(labels, y.astype(bool))
    elif store == "safetensors":
        from safetensors.numpy import save_file

        labels = tmp_path / "y.safetensors"
        save_file({"labels": y.astype(bool)}, str(labels))
    else:
        labels = tmp_path / "y.csv"
        labels.write_text("y\n" + "\n".join("true" if v else "false" for v in y) + "\n")
    rc, doc, err = _evaluate(capsys, "--logits", tmp_path / "z.npy", "--labels", labels)
    assert rc == 0, err
    assert doc["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)
    rc, doc, err = _evaluate(capsys, "--logits", tmp_path / "z.npy", "--labels", labels, "--classes", "False,True")
    assert rc == 0, err
    assert doc["metrics"]["log_loss"] == pytest.approx(sklearn_log_loss(z, y), rel=1e-9)


def test_one_column_of_probabilities_given_as_logits_warns(capsys, tmp_path):
    """P(yes) in one column passed with --logits: as log-odds every row's P(class 1) lies in [0.5, 0.73], so
    every row predicts class 1, without a word (audit); a column of real log-odds does not warn."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.02, 0.98, 60)
    y = (rng.uniform(size=60) < p).astype(int)
    labels = tmp_path / "y.npy"
    np.save(labels, y)
    for values, warned in ((p, True), (np.log(p / (1 - p)), False)):
        path = tmp_path / "s.npy"
        np.save(path, values)
        rc, _, err = call(capsys, "evaluate", "--logits", str(path), "--labels", str(labels), "-q")
        assert rc == 0, err
        assert ("every value of its one column lies in [0, 1]" in err) == warned, err
