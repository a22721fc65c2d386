"""``predict`` reads a model without building the estimator (no scikit-learn import), and let through a
metadata entry that ``softmaxkit.load`` refuses (a newer softmaxkit's, or an edited file's): the model then
predicted as something other than what the file holds, exit 0. It now checks the entries as load does, against
``softmaxkit._mlp.SAVED_META``, which these tests keep equal to what the estimator saves."""

from __future__ import annotations

import numpy as np
import pytest

import softmaxkit as sk
from cli_helpers import call, error_line, iris_model_without_names
from softmaxkit._mlp import SAVED_META
from softmaxkit.io import ModelFileError, read_state, save_state


def _entries(record, where=""):
    """Every entry name of a record, nested ones by path (records only: SAVED_META's values are None)."""
    out = []
    for key, value in record.items():
        name = f"{where}.{key}" if where else key
        out.append(name)
        if isinstance(value, dict) and isinstance(SAVED_META.get(key), dict):
            out += _entries(value, name)
    return sorted(out)


@pytest.mark.parametrize("params", [dict(alpha=1.0), dict(hidden_layer_sizes=(4,), alpha=1e-3, max_iter=30,
                                                          early_stopping=True, random_state=0)])
def test_saved_meta_is_what_the_estimator_saves(params):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 3
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sk.SoftmaxClassifier(**params).fit(X, y)
    meta, _ = model._get_state()
    assert _entries(meta) == _entries(SAVED_META)


def _edited(model, path, edit):
    np.save(path.parent / "new.npy", np.load(path.parent / "train.npz")["X"][:5])  # rows to predict
    kind, meta, arrays = read_state(model)
    edit(meta)
    save_state(path, kind=kind, meta=meta, arrays=arrays)
    return path


@pytest.mark.parametrize("edit, entry", [
    (lambda meta: meta.update(output_scale=2.0), "'output_scale'"),
    (lambda meta: meta["params"].update(temperature=2.0), "'params.temperature'"),
])
def test_predict_refuses_an_entry_load_refuses(capsys, tmp_path, edit, entry):
    model = _edited(iris_model_without_names(capsys, tmp_path), tmp_path / "edited.npz", edit)
    with pytest.raises(ModelFileError, match=entry.strip("'").split(".")[-1]):  # load names it in its words
        sk.load(model)
    rc, _, err = call(capsys, "predict", model, tmp_path / "new.npy", "--out", tmp_path / "p.csv", "-q")
    assert rc != 0
    assert "unknown metadata entry" in error_line(err) and entry in error_line(err)
    assert not (tmp_path / "p.csv").exists()


def test_predict_reads_entries_saved_with_extra_meta(capsys, tmp_path):
    model = iris_model_without_names(capsys, tmp_path)
    np.save(tmp_path / "new.npy", np.load(tmp_path / "train.npz")["X"][:5])
    kind, meta, arrays = read_state(model)
    save_state(tmp_path / "own.npz", kind=kind, meta={**meta, "run": "a7"}, arrays=arrays, extra_meta=["run"])
    rc, _, err = call(capsys, "predict", tmp_path / "own.npz", tmp_path / "new.npy", "--out", tmp_path / "p.csv",
                      "-q")
    assert rc == 0, err
