"""A report directory's files are replaced or removed only while they are as softmaxkit wrote them, and
a model file's arrays are all ones its kind saves (audit FG2)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_helpers import call, decent_logits, error_line
from softmaxkit.io import ModelFileError, load, read_state, save_state
from softmaxkit.report import MANIFEST, Figure, Paragraph, Report, Section, check_report_dir, write_report

# --------------------------------------------------------------------------- report directories


def _report(*figures: str) -> Report:
    """A report with one figure per name (the bytes need not be a real PNG here)."""
    blocks = [Paragraph("text"), *(Figure(name, b"\x89PNG fake " + name.encode(), name) for name in figures)]
    return Report(title="t", sections=[Section("s", blocks)], metrics={"x": 1})


@pytest.mark.parametrize("name", ["report.html", "metrics.json", "reliability_after.png"])
def test_a_report_file_the_user_changed_is_neither_replaced_nor_removed(tmp_path, name):
    """The manifest recorded names only: a figure the user had overwritten with their own content was
    deleted as a stale file of the earlier report, and an edited report.html or metrics.json was silently
    replaced, exit 0 (audit)."""
    rep = tmp_path / "rep"
    write_report(rep, _report("reliability_before", "reliability_after"))
    (rep / name).write_bytes(b"the user's own content")
    before = sorted(p.name for p in rep.iterdir())
    with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')} was changed after softmaxkit wrote it"):
        write_report(rep, _report("reliability_before"))  # reliability_after.png would be removed
    with pytest.raises(ValueError, match="was changed after softmaxkit wrote it"):
        check_report_dir(rep)  # the CLI's check before any work
    assert (rep / name).read_bytes() == b"the user's own content"
    assert sorted(p.name for p in rep.iterdir()) == before


def test_cli_report_keeps_a_figure_the_user_overwrote(capsys, tmp_path):
    """`calibrate --report d2`, the user overwrites d2/reliability_calibrated.png, `evaluate --report d2`:
    exit 0 and the file was gone (audit). Now exit 1 naming it, and nothing in d2 changes."""
    z, y = decent_logits(300, 3, seed=0)
    np.savetxt(tmp_path / "lt.csv", z, delimiter=",", header="logit_0,logit_1,logit_2", comments="")
    np.savetxt(tmp_path / "labels.csv", y, delimiter=",", header="label", comments="", fmt="%d")
    d2 = tmp_path / "d2"
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "lt.csv", "--labels", tmp_path / "labels.csv",
                      "--out", tmp_path / "cal.npz", "--report", d2, "-q")
    assert rc == 0, err
    (d2 / "reliability_calibrated.png").write_text("USER EDITED")
    snapshot = {p.name: p.read_bytes() for p in d2.iterdir()}
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "lt.csv", "--labels", tmp_path / "labels.csv",
                      "--report", d2, "-q")
    assert rc == 1
    assert "reliability_calibrated.png was changed after softmaxkit wrote it" in error_line(err)
    assert {p.name: p.read_bytes() for p in d2.iterdir()} == snapshot


def test_a_report_rewritten_over_its_own_files_still_replaces_and_drops_them(tmp_path):
    """Guard: unchanged files of an earlier report stay softmaxkit's (replaced, or removed when the new
    report has no such figure), however many times the report is rewritten."""
    rep = tmp_path / "rep"
    (tmp_path / "rep").mkdir()
    (rep / "notes.txt").write_text("the user's")
    for _ in range(3):
        write_report(rep, _report("reliability_before", "reliability_after"))
    write_report(rep, _report("reliability_before"))
    assert not (rep / "reliability_after.png").exists() and (rep / "notes.txt").read_text() == "the user's"
    write_report(rep, _report("reliability_before", "reliability_after"))
    assert (rep / "reliability_after.png").read_bytes() == b"\x89PNG fake reliability_after"
    assert check_report_dir(rep) == rep


def test_a_manifest_of_names_only_from_earlier_versions_still_owns_its_files(tmp_path):
    """Guard: a manifest written before digests were recorded (``{"files": [...]}``) owns its files as it
    did then: they are replaced, and a figure the new report lacks is removed."""
    rep = tmp_path / "rep"
    write_report(rep, _report("reliability_before", "reliability_after"))
    names = json.loads((rep / MANIFEST).read_text())["files"]
    (rep / MANIFEST).write_text(json.dumps({"files": names}, indent=1) + "\n")
    write_report(rep, _report("reliability_before"))
    assert not (rep / "reliability_after.png").exists()
    assert "sha256" in json.loads((rep / MANIFEST).read_text())  # rewritten in the new form


def test_a_manifest_with_digests_owns_only_what_it_has_a_digest_for(tmp_path):
    """A name listed without its digest in a manifest of the new form is not softmaxkit's: refused."""
    rep = tmp_path / "rep"
    write_report(rep, _report("reliability_before"))
    record = json.loads((rep / MANIFEST).read_text())
    del record["sha256"]["report.html"]
    (rep / MANIFEST).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"report[.]html was not written by softmaxkit"):
        write_report(rep, _report("reliability_before"))


# --------------------------------------------------------------------------- model files


def _fitted(kind: str):
    """A fitted object of ``kind``, with its optional arrays where it has any."""
    import softmaxkit as sk
    from softmaxkit import calibration
    from softmaxkit.calibration import CalibratedClassifier
    from softmaxkit.conformal import ConformalClassifier

    z, y = decent_logits(90, 3, seed=1)
    X = z + np.random.default_rng(2).normal(size=z.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isotonic zero-probability and convergence notices
        if kind == "SoftmaxClassifier":
            return sk.SoftmaxClassifier(alpha=1.0, max_iter=30).fit(X, y)
        if kind == "SoftmaxClassifier/auto-alpha":  # alpha_path, alpha_path_loss
            return sk.SoftmaxClassifier(max_iter=30).fit(X, y)
        if kind == "SoftmaxClassifier/early-stopping":  # validation_loss_curve
            return sk.SoftmaxClassifier(alpha=1.0, hidden_layer_sizes=(4,), early_stopping=True, max_iter=20,
                                        random_state=0).fit(X, y)
        if kind == "ConformalClassifier":
            return ConformalClassifier(random_state=0).fit(z, y)
        if kind == "CalibratedClassifier":
            return CalibratedClassifier(sk.SoftmaxClassifier(alpha=1.0, max_iter=30), cv=3).fit(X, y)
        cal = getattr(calibration, kind)().fit(z, y)
        cal.class_names_ = ["a", "b", "c"]
        return cal


KINDS = ["SoftmaxClassifier", "SoftmaxClassifier/auto-alpha", "SoftmaxClassifier/early-stopping",
         "TemperatureScaling", "VectorScaling", "MatrixScaling", "IsotonicCalibration", "PlattScaling",
         "ConformalClassifier", "CalibratedClassifier"]


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_saved_kind_loads_back_with_all_its_arrays(tmp_path, kind, suffix):
    """Guard: each kind's own file, optional arrays included, is not refused as holding unknown arrays."""
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    obj = _fitted(kind)
    path = obj.save(tmp_path / f"m{suffix}")
    optional = {"auto-alpha": "alpha_path", "early-stopping": "validation_loss_curve"}.get(kind.partition("/")[2])
    if optional:
        assert optional in read_state(path)[2]
    back = load(path)
    assert sorted(back._get_state()[1]) == sorted(read_state(path)[2])


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_array_in_a_model_file_is_refused(tmp_path, kind):
    """An extra array (``mean_``) was ignored at load: a file of a later version that adds arrays under
    format_version 1 would have been read wrongly, without a word (audit)."""
    saved_kind, meta, arrays = read_state(_fitted(kind).save(tmp_path / "m.npz"))
    path = save_state(tmp_path / "extra.npz", kind=saved_kind, meta=meta, arrays={**arrays, "mean_": np.ones(4)})
    with pytest.raises(ModelFileError, match=r"extra[.]npz: .*unknown array 'mean_'"):
        load(path)


def test_an_unknown_array_in_a_safetensors_file_without_checksum_is_refused(tmp_path):
    """With its checksum entry deleted (as in files saved before it existed), a .safetensors with an
    extra array loaded silently (audit)."""
    pytest.importorskip("safetensors")
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from softmaxkit.io import _CHECKSUM_KEY

    src = _fitted("SoftmaxClassifier").save(tmp_path / "m.safetensors")
    with safe_open(str(src), "numpy") as fh:
        header = {k: v for k, v in fh.metadata().items() if k != _CHECKSUM_KEY}
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    save_file({**arrays, "mean_": np.ones(4), "scale_": np.ones(4)}, str(tmp_path / "x.safetensors"),
              metadata=header)
    with pytest.raises(ModelFileError, match=r"x[.]safetensors: .*unknown arrays 'mean_', 'scale_'"):
        load(tmp_path / "x.safetensors")


def test_predict_refuses_a_model_file_with_an_unknown_array(tmp_path, capsys):
    """The CLI reads models without softmaxkit.load; an extra array loaded silently there (FG2's note)."""
    from cli_helpers import call

    import softmaxkit as sk
    from softmaxkit.io import read_state, save_state

    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    path = sk.SoftmaxClassifier(alpha=1.0).fit(X, y).save(tmp_path / "m.npz")
    kind, meta, arrays = read_state(path)
    save_state(path, kind=kind, meta=meta, arrays={**arrays, "mean_": np.zeros(2)})
    data = tmp_path / "d.csv"
    np.savetxt(data, X, delimiter=",", header="a,b", comments="")
    rc, _, err = call(capsys, "predict", str(path), str(data), "--out", str(tmp_path / "o.csv"), "--by-position")
    assert rc == 1 and "unknown array 'mean_'" in err, err
