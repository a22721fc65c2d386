"""Model files and the NumPy API's options, audit round BN.

* ``load()`` refused an unknown array but loaded unknown metadata entries silently, ignored: an
  ``output_scale`` in a classifier's record, a ``bias_`` among a calibrator's fitted values, an entry
  in a CalibratedClassifier's pair, a ``signature`` beside the record's ``meta``; a file of a newer
  softmaxkit that adds such entries would load as something other than what it holds.
* ``format_version`` 0, -5 or none at all loaded as the current format; every softmaxkit wrote 1.
* ``sk.cross_entropy(x, y, w)``, torch's positional class weight, raised Python's bare "takes 2
  positional arguments but 3 were given" (the torch layer already said which keyword to use).
"""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit import calibration
from softmaxkit.calibration import CalibratedClassifier
from softmaxkit.conformal import ConformalClassifier
from softmaxkit.io import _META_KEY, ModelFileError, load, read_state, save_state


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.argmax(X + rng.normal(scale=0.5, size=X.shape), axis=1)
    return X, y


def _fitted(kind):
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "SoftmaxClassifier":
            return sk.SoftmaxClassifier(alpha=1.0).fit(X, y)
        if kind == "CalibratedClassifier":
            return CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0, max_iter=30), cv=3).fit(X, y)
        if kind == "ConformalClassifier":
            return ConformalClassifier(random_state=0).fit(sk.softmax(X), y)
        return getattr(calibration, kind)().fit(X, y)


def _edit_record(src, dst, edit):
    """Copy the .npz at ``src`` to ``dst`` with its JSON record changed by ``edit(record)``, arrays kept."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != _META_KEY}
        record = json.loads(z[_META_KEY].tobytes().decode())
    edit(record)
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays, **{_META_KEY: np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)})
    return dst


# --------------------------------------------------------------------------- unknown metadata entries


def _pair(r, i, part):
    return r["meta"]["pairs"][i][part]


@pytest.mark.parametrize(
    "kind, edit, entry",
    [
        ("SoftmaxClassifier", lambda r: r["meta"].__setitem__("output_scale", 2.0), "output_scale"),
        ("TemperatureScaling", lambda r: r["meta"]["fitted"].__setitem__("bias_", [1.0, 0.0, 0.0]), "fitted.bias_"),
        ("VectorScaling", lambda r: r["meta"].__setitem__("prior", [0.2, 0.3, 0.5]), "prior"),
        ("ConformalClassifier", lambda r: r["meta"].__setitem__("offset", 0.1), "offset"),
        ("CalibratedClassifier", lambda r: r["meta"].__setitem__("weights", [0.1, 0.9]), "weights"),
        ("CalibratedClassifier", lambda r: _pair(r, 0, "calibrator").__setitem__("bias", 1.0),
         r"pairs\[0\].calibrator.bias"),
        ("CalibratedClassifier", lambda r: _pair(r, 2, "calibrator")["fitted"].__setitem__("bias_", 1.0),
         r"pairs\[2\].calibrator.fitted.bias_"),
        ("CalibratedClassifier", lambda r: _pair(r, 1, "estimator").__setitem__("output_scale", 1.0),
         r"pairs\[1\].estimator.output_scale"),
        ("CalibratedClassifier", lambda r: r["meta"]["pairs"][0].__setitem__("weight", 2.0), r"pairs\[0\].weight"),
    ],
)
def test_an_unknown_metadata_entry_is_refused(tmp_path, kind, edit, entry):
    """Each loaded, predicting as the file without it did (audit BN: tamper.py, meta_extra.py)."""
    path = _edit_record(_fitted(kind).save(tmp_path / "m.npz"), tmp_path / "edited.npz", edit)
    with pytest.raises(ModelFileError, match=rf"edited[.]npz: {kind} file holds unknown metadata entry '{entry}', "
                                             r"which this softmaxkit does not read \(a file of a newer softmaxkit, "
                                             r"or an edited one\); refused rather than loaded without it"):
        load(path)


def test_unknown_metadata_entries_are_all_named(tmp_path):
    def edit(r):
        r["meta"]["b"] = r["meta"]["a"] = 1

    path = _edit_record(_fitted("SoftmaxClassifier").save(tmp_path / "m.npz"), tmp_path / "e.npz", edit)
    with pytest.raises(ModelFileError, match=r"unknown metadata entries 'a', 'b', .*without them"):
        load(path)


def test_an_unknown_record_entry_is_refused(tmp_path):
    """``signature`` beside kind/format_version/meta loaded, ignored; read_state (the CLI's reader) refuses it."""
    path = _edit_record(_fitted("SoftmaxClassifier").save(tmp_path / "m.npz"), tmp_path / "e.npz",
                        lambda r: r.__setitem__("signature", "x"))
    for read in (load, read_state):
        with pytest.raises(ModelFileError, match=r"e[.]npz: SoftmaxClassifier file holds unknown record entry "
                                                 r"'signature', which this softmaxkit does not read"):
            read(path)


@pytest.mark.parametrize("kind", ["SoftmaxClassifier", "TemperatureScaling", "IsotonicCalibration", "PlattScaling",
                                  "MatrixScaling", "ConformalClassifier", "CalibratedClassifier"])
def test_a_file_that_lacks_optional_entries_loads(tmp_path, kind):
    """Guard: files of earlier versions lack entries added since; they load (and predict as before)."""
    optional = {"SoftmaxClassifier": ("alpha_at_bound", "solver", "best_validation_loss", "classes_param"),
                "ConformalClassifier": ("uniforms",), "CalibratedClassifier": ()}.get(kind, ())

    def edit(r):
        for key in optional:
            r["meta"].pop(key, None)
        if kind == "CalibratedClassifier":
            r["meta"]["params"].pop("calibrate_on")
            r["meta"]["params"].pop("estimator_default")

    obj = _fitted(kind)
    path = _edit_record(obj.save(tmp_path / "m.npz"), tmp_path / "old.npz", edit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conformal predictor's "saved before softmaxkit recorded ..."
        back = load(path)
    assert type(back) is type(obj)


# --------------------------------------------------------------------------- extra_meta and class_names


def test_entries_saved_with_extra_meta_are_named_in_the_file_and_load(tmp_path):
    obj = _fitted("TemperatureScaling")
    obj.class_names_ = ["a", "b", "c"]
    path = obj.save(tmp_path / "m.npz", extra_meta={"note": [1, None, "x"], "model_digest": "0123"})
    with np.load(path) as z:
        assert json.loads(z[_META_KEY].tobytes().decode())["extra_meta"] == ["model_digest", "note"]
    assert read_state(path)[1]["note"] == [1, None, "x"]
    assert load(path).class_names_ == ["a", "b", "c"]


def test_the_clis_digests_load_from_files_saved_before_extra_meta_was_named(tmp_path):
    """``fit --calibrate`` and ``calibrate --conformal`` saved these without the record's list: they load."""
    from softmaxkit.cli import _adapters

    for key in (_adapters.MODEL_DIGEST_KEY, _adapters.CALIBRATOR_DIGEST_KEY):
        def edit(r):
            r.pop("extra_meta")  # as files were written before the record named the caller's entries
            r["meta"][key] = "0123456789abcdef"

        path = _edit_record(_fitted("TemperatureScaling").save(tmp_path / "m.npz"), tmp_path / f"{key}.npz", edit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert isinstance(load(path), calibration.TemperatureScaling)


def test_a_file_without_the_list_warns_of_its_unknown_top_level_entries(tmp_path):
    """A file saved before records listed the caller's entries may hold a user's own save(extra_meta=...)
    entry at the top of meta: it loads, with a warning naming it (a refusal would lock them out of their
    model). A nested unknown entry was never the caller's: refused."""
    def old_style(entry):
        def edit(r):
            r.pop("extra_meta")
            entry(r)
        return edit

    saved = _fitted("TemperatureScaling").save(tmp_path / "m.npz")
    path = _edit_record(saved, tmp_path / "old.npz", old_style(lambda r: r["meta"].__setitem__("note", 1)))
    with pytest.warns(UserWarning, match=r"old[.]npz: TemperatureScaling file holds metadata entry 'note' that this "
                                         r"softmaxkit does not read, ignored"):
        assert isinstance(load(path), calibration.TemperatureScaling)
    path = _edit_record(saved, tmp_path / "nested.npz",
                        old_style(lambda r: r["meta"]["fitted"].__setitem__("bias_", [1.0, 0.0, 0.0])))
    with pytest.raises(ModelFileError, match=r"unknown metadata entry 'fitted.bias_'"):
        load(path)


def test_an_entry_the_file_does_not_name_as_extra_is_refused(tmp_path):
    kind, meta, arrays = read_state(_fitted("TemperatureScaling").save(tmp_path / "m.npz"))
    path = save_state(tmp_path / "e.npz", kind=kind, meta={**meta, "note": 1}, arrays=arrays)
    with pytest.raises(ModelFileError, match=r"unknown metadata entry 'note'"):
        load(path)


def test_a_malformed_extra_meta_list_is_refused(tmp_path):
    path = _edit_record(_fitted("TemperatureScaling").save(tmp_path / "m.npz"), tmp_path / "e.npz",
                        lambda r: r.__setitem__("extra_meta", "note"))
    with pytest.raises(ModelFileError, match=r"e[.]npz: corrupted TemperatureScaling state \(extra_meta is 'note', "
                                             r"not a list of entry names\)"):
        load(path)


# --------------------------------------------------------------------------- format_version


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.__setitem__("format_version", 0), r"format_version 0 is not one softmaxkit writes: its formats "
                                                       r"are 1 to 1"),
        (lambda r: r.__setitem__("format_version", -5), r"format_version -5 is not one softmaxkit writes"),
        (lambda r: r.pop("format_version"), r"its record has no format_version, which every softmaxkit writes"),
    ],
)
def test_a_format_version_no_softmaxkit_wrote_is_refused(tmp_path, edit, message):
    path = _edit_record(_fitted("SoftmaxClassifier").save(tmp_path / "m.npz"), tmp_path / "e.npz", edit)
    with pytest.raises(ModelFileError, match=rf"e[.]npz: corrupted softmaxkit model \({message}"):
        load(path)


def test_format_version_1_loads():
    """Guard: the only format any softmaxkit has written."""
    from softmaxkit.io import FORMAT_VERSION

    assert FORMAT_VERSION == 1


# --------------------------------------------------------------------------- positional options


X2, Y2 = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, 0.0]]), np.array([2, 1])

POSITIONAL = [
    (sk.cross_entropy, (X2, Y2, np.ones(3)), r"cross_entropy takes keyword options only: cross_entropy\(logits, "
                                             r"target, weight=w\) for torch's F.cross_entropy\(input, target, w\)"),
    (sk.cross_entropy_and_grad, (X2, Y2, np.ones(3)), r"cross_entropy_and_grad takes keyword options only: "
                                                      r"cross_entropy_and_grad\(logits, target, weight=w\)"),
    (sk.softmax, (X2, -1, np.float32), r"softmax takes keyword options only: softmax\(x, axis, dtype=d\) for "
                                       r"torch.softmax\(x, dim, d\)"),
    (sk.log_softmax, (X2, -1, np.float32), r"log_softmax takes keyword options only: log_softmax\(x, axis, "
                                           r"dtype=d\)"),
    (sk.logsumexp, (X2, -1, True), r"logsumexp takes keyword options only: logsumexp\(x, axis, keepdims=True\)"),
    (sk.binary_cross_entropy_with_logits, (X2, np.ones_like(X2), np.ones(3)),
     r"binary_cross_entropy_with_logits takes keyword options only: binary_cross_entropy_with_logits\(logits, "
     r"target, weight=w\)"),
]


@pytest.mark.parametrize("op, args, message", POSITIONAL, ids=[op.__name__ for op, _, _ in POSITIONAL])
def test_a_positional_option_says_which_keyword_to_use(op, args, message):
    with pytest.raises(TypeError, match=message):
        op(*args)


def test_a_positional_option_on_a_tensor_says_which_keyword_to_use():
    torch = pytest.importorskip("torch")
    x, y = torch.tensor(X2), torch.tensor(Y2)
    with pytest.raises(TypeError, match=r"cross_entropy takes keyword options only: cross_entropy\(logits, target, "
                                        r"weight=w\)"):
        sk.cross_entropy(x, y, torch.ones(3, dtype=x.dtype))


@pytest.mark.parametrize("op, args, message", POSITIONAL, ids=[op.__name__ for op, _, _ in POSITIONAL])
def test_options_by_keyword_still_work_and_the_signature_is_the_ops_own(op, args, message):
    """Guard: the same call with its option by name computes; help() shows the keyword-only options."""
    name = [p.name for p in inspect.signature(op).parameters.values() if p.kind is p.KEYWORD_ONLY]
    keyword = {"softmax": "dtype", "log_softmax": "dtype", "logsumexp": "keepdims"}.get(op.__name__, "weight")
    assert keyword in name
    op(*args[:-1], **{keyword: args[-1]})


def test_linear_cross_entropy_positional_bias_says_which_keyword_to_use():
    """Cut Cross-Entropy's linear_cross_entropy(e, c, targets, b) got Python's bare "takes 3 positional
    arguments but 4 were given"."""
    h, w, y, b = np.ones((2, 3)), np.ones((4, 3)), np.array([0, 1]), np.zeros(4)
    with pytest.raises(TypeError, match=r"linear_cross_entropy takes keyword options only: "
                                        r"linear_cross_entropy\(hidden, weight, target, bias=b\)"):
        sk.linear_cross_entropy(h, w, y, b)
    with pytest.raises(TypeError, match=r"linear_cross_entropy_and_grad takes keyword options only"):
        sk.linear_cross_entropy_and_grad(h, w, y, b)
    assert np.isfinite(sk.linear_cross_entropy(h, w, y, bias=b))
