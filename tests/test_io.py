"""Persistence without pickle, and atomic writes (softmaxkit.io)."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from softmaxkit import io


class _Marker:
    """Pickling this would create a file when unpickled: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_atomic_path_replaces_only_on_success(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(out) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash mid-write")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind
    io.write_text_atomic(out, "new")
    assert out.read_text() == "new"


def test_atomic_path_refuses_to_overwrite_an_input(tmp_path):
    inp = tmp_path / "data.csv"
    inp.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="refusing to overwrite the input file"):
        io.write_text_atomic(inp, "oops", inputs=(inp,))
    assert inp.read_text() == "a,b\n1,2\n"


def test_read_state_missing_and_corrupted(tmp_path):
    with pytest.raises(io.ModelFileError, match="no such model file"):
        io.read_state(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(io.ModelFileError, match="corrupted or not a softmaxkit model"):
        io.read_state(bad)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(io.ModelFileError, match="no metadata record"):
        io.read_state(plain)


def test_crafted_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Marker(str(marker))
    record = json.dumps({"kind": "TemperatureScaling", "format_version": 1, "meta": {}})
    path = tmp_path / "evil.npz"
    np.savez(path, weights=evil, **{io._META_KEY: np.frombuffer(record.encode(), np.uint8)})
    with pytest.raises(io.ModelFileError, match="pickled objects"):
        io.load(path)
    assert not marker.exists()
    # sanity: the same payload does run code under pickle, so the test can fail
    pickle.loads(pickle.dumps(_Marker(str(marker))))
    assert marker.exists()


def test_unknown_kind_and_newer_format(tmp_path):
    for record, msg in [
        ({"kind": "Trojan", "format_version": 1}, "unknown object kind"),
        ({"kind": "TemperatureScaling", "format_version": 99}, "newer softmaxkit"),
    ]:
        path = tmp_path / "m.npz"
        np.savez(path, **{io._META_KEY: np.frombuffer(json.dumps(record).encode(), np.uint8)})
        with pytest.raises(io.ModelFileError, match=msg):
            io.read_state(path)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_state_roundtrip(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    arrays = {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], np.int64)}
    path = io.save_state(tmp_path / f"m{suffix}", kind="TemperatureScaling", meta={"t": 1.5}, arrays=arrays)
    kind, meta, got = io.read_state(path)
    assert kind == "TemperatureScaling" and meta == {"t": 1.5}
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
    assert not any(p.name.endswith(".tmp" + suffix) for p in tmp_path.iterdir())
    assert os.path.getsize(path) > 0


def test_save_state_rejects_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="cannot be saved without pickle"):
        io.save_state(tmp_path / "m.npz", kind="TemperatureScaling", meta={}, arrays={"x": np.array([None])})


def test_staged_outputs_all_or_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with io.StagedOutputs() as out:
            out.stage(tmp_path / "a.txt").write_text("a")
            out.stage(tmp_path / "sub" / "b.txt").write_text("b")
            raise RuntimeError("the second output failed")
    assert os.listdir(tmp_path) == []  # no output, no temporary, no directory made for them
    with io.StagedOutputs() as out:
        out.stage(tmp_path / "a.txt").write_text("a")
        out.stage(tmp_path / "sub" / "b.txt").write_text("b")
        assert not (tmp_path / "a.txt").exists()  # nothing appears before the commit
        out.commit()
    assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "sub" / "b.txt").read_text() == "b"


def test_staged_output_through_a_new_directory_and_dotdot(tmp_path):
    """``new/../x`` (audit: "File exists", since new/.. exists once new is made); made as mkdir -p does."""
    with io.StagedOutputs() as out:
        out.stage(tmp_path / "new" / ".." / "x.txt").write_text("x")
        out.commit()
    assert (tmp_path / "x.txt").read_text() == "x"


def test_outputs_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        io.write_text_atomic(tmp_path / "x.txt", "x")
        with io.StagedOutputs() as out:
            out.stage(tmp_path / "y.txt").write_text("y")
            out.commit()
    finally:
        os.umask(old)
    for name in ("x.txt", "y.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640


def test_staged_outputs_check_names_the_problem(tmp_path):
    (tmp_path / "in.csv").write_text("a\n1\n")
    (tmp_path / "file").write_text("x")
    out = io.StagedOutputs(inputs=(tmp_path / "in.csv",))
    with pytest.raises(ValueError, match="is also an input file"):
        out.check(tmp_path / "in.csv")
    with pytest.raises(ValueError, match="is an existing directory"):
        out.check(tmp_path)
    with pytest.raises(ValueError, match="is not a directory"):
        out.check(tmp_path / "file" / "x.csv")


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_class_names_of_score_columns_round_trip(tmp_path, suffix):
    """A calibrator or conformal predictor fitted on named columns keeps their names (the CLI matches
    columns by them); a record that does not fit the object is refused as corrupted."""
    from softmaxkit.calibration import VectorScaling
    from softmaxkit.conformal import ConformalClassifier

    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(60, 3)), np.arange(60) % 3
    for fitted in (VectorScaling().fit(z, y), ConformalClassifier().fit(z, y)):
        path = tmp_path / f"{type(fitted).__name__}{suffix}"
        fitted.save(path)
        assert not hasattr(io.load(path), "class_names_")  # unnamed columns: nothing stored
        fitted.class_names_ = ["cat", "dog", "bird"]
        fitted.save(path)
        assert io.load(path).class_names_ == ["cat", "dog", "bird"]
        fitted.class_names_ = ["cat", "dog"]
        fitted.save(path)
        with pytest.raises(io.ModelFileError, match=r"corrupted .* state \(2 class_names for 3 classes\)"):
            io.load(path)
        del fitted.class_names_


def test_input_watch_names_a_replaced_grown_or_removed_file(tmp_path):
    from softmaxkit.io import InputChangedError, InputWatch

    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros(10))
    np.save(b, np.ones(10))
    stamp = os.stat(a).st_mtime_ns
    watch = InputWatch((a, tmp_path / "not-a-file", "explain's value"))
    watch.verify()
    os.replace(b, a)  # same size; another inode
    os.utime(a, ns=(stamp, stamp))
    with pytest.raises(InputChangedError, match="a.npy changed .*it was replaced"):
        watch.verify()
    watch = InputWatch((a,))
    np.save(a, np.zeros(20))
    with pytest.raises(InputChangedError, match="size went from"):
        watch.verify()
    watch = InputWatch((a,))
    a.unlink()
    with pytest.raises(InputChangedError, match="a.npy was removed"):
        watch.verify()


def _rewrite_record(src, dst, edit):
    """Copy the .npz ``src`` to ``dst`` with its JSON record changed by ``edit(record)``."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    record = json.loads(arrays.pop(io._META_KEY).tobytes())
    edit(record)
    np.savez(dst, **arrays, **{io._META_KEY: np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)})
    return dst


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda r: r.__setitem__("format_version", "x"), r"format_version 'x' is not a whole number"),
        (lambda r: r.__setitem__("format_version", 1.5), r"format_version 1.5 is not a whole number"),
        (lambda r: r.__setitem__("meta", [1]), r"its meta record is a list, not an object"),
    ],
)
def test_a_malformed_record_is_a_model_file_error_naming_the_file(tmp_path, edit, match):
    """Audit: format_version "x" raised a bare ValueError from int(), without the path."""
    good = io.save_state(tmp_path / "good.npz", kind="TemperatureScaling", meta={}, arrays={})
    path = _rewrite_record(good, tmp_path / "edited.npz", edit)
    with pytest.raises(io.ModelFileError, match=r"edited\.npz: .*" + match):
        io.read_state(path)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_cli_and_the_library_refuse_a_model_file_with_the_same_check(tmp_path):
    """One validator serves SoftmaxClassifier loading and the CLI's sklearn-free load_model."""
    from sklearn.datasets import load_iris

    import softmaxkit as sk
    from softmaxkit.cli._adapters import load_model

    X, y = load_iris(return_X_y=True)
    good = sk.SoftmaxClassifier(hidden_layer_sizes=(3,), alpha=1.0, max_iter=20, random_state=0).fit(X, y)
    good = good.save(tmp_path / "good.npz")
    edits = {
        "activation": lambda m, a: m["params"].__setitem__("activation", "gelu"),
        "nan": lambda m, a: a["coef_1"].__setitem__((0, 0), np.nan),
        "classes": lambda m, a: m["classes"].__setitem__("values", [0, 0, 1]),
        "names": lambda m, a: m.__setitem__("feature_names_in", ["a", "b"]),
    }
    for name, edit in edits.items():
        kind, meta, arrays = io.read_state(good)
        arrays = {k: v.copy() for k, v in arrays.items()}
        edit(meta, arrays)
        path = io.save_state(tmp_path / f"{name}.npz", kind=kind, meta=meta, arrays=arrays)
        with pytest.raises(io.ModelFileError) as library:
            sk.load(path)
        with pytest.raises(io.ModelFileError) as cli:
            load_model(str(path))
        assert str(cli.value) == str(library.value) and f"{name}.npz" in str(cli.value)
    saved = load_model(str(good))
    assert saved.activation == "relu" and saved.n_features == 4 and saved.classes.tolist() == [0, 1, 2]


def test_a_damaged_safetensors_file_is_refused(tmp_path):
    """A .safetensors has no checksum of its own: a flipped byte in the weights loaded without error
    (audit). The sha256 saved in its metadata catches it; an .npz has zip's CRC."""
    import softmaxkit as sk
    from softmaxkit.io import ModelFileError

    pytest.importorskip("safetensors")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.tile([0, 1, 2], 20)
    path = tmp_path / "m.safetensors"
    model = sk.SoftmaxClassifier(alpha=1.0).fit(X, y)
    model.save(path)
    np.testing.assert_array_equal(sk.load(path).predict_proba(X), model.predict_proba(X))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # the last array's bytes come last
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="do not match the checksum"):
        sk.load(path)
