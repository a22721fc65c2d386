"""One answer whatever the file (review audit M of 2026-12-07).

1. The same float16 probabilities scored differently by container, exit 0: a memory-mapped ``.npy``
   read ECE 0.079339 and log-loss 0.7664584, an ``.npz`` or ``.safetensors`` 0.080460 and 0.7664479.
   The ``.npz``/``.safetensors`` reader widened them to float64, so the top-label confidences were
   compared with float64 bin edges (float16(14/15) = 0.9331 fell in bin 13, not 14), and their rows
   were divided by their sums, which a float16 ``.npy``'s were not. The scores now reach the metrics
   and calibrators in the dtype the file stores them, whatever the container.
2. ``metrics.json``'s ``class_counts[].class`` and ``class_count_test.class`` held column indices
   while the text named the class: each now also has ``name``.
3. A bad output extension exited 1 in ``fit --out``, ``predict --out``, ``apply --out`` and
   ``calibrate --conformal-out`` (``calibrate --out``: 2); a bad option value is a usage error, exit
   code 2, before any file is read.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns

# --------------------------------------------------------------------------- 1. containers


def _float16_probs(n: int = 600, k: int = 5, seed: int = 0):
    """The audit's float16 probabilities (rows off 1 by float16 rounding) and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), y] += 1.8
    z *= 2.5
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p.astype(np.float16), y


def _save_all(tmp_path, p, y) -> dict:
    """``p`` as a ``.npy`` (labels in ``y.npy``), an ``.npz`` and a ``.safetensors`` (labels inside)."""
    from safetensors.numpy import save_file

    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", p)
    np.savez(tmp_path / "p.npz", probs=p, labels=y)
    save_file({"probs": p, "labels": y}, str(tmp_path / "p.safetensors"))
    return {name: (tmp_path / name, tmp_path / ("y.npy" if name == "p.npy" else name))
            for name in ("p.npy", "p.npz", "p.safetensors")}


def _json(capsys, *argv) -> dict:
    rc, out, err = call(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


#: What evaluate reports that must not depend on the container.
_SAME = ("accuracy", "log_loss", "brier", "ece", "majority_rate")


def test_float16_probabilities_score_the_same_in_every_container(capsys, tmp_path):
    from softmaxkit.metrics import expected_calibration_error

    p, y = _float16_probs()
    # So the test can fail: float16 and float64 bin edges, and renormalised rows, give other numbers.
    ece16 = expected_calibration_error(y, p, n_bins=15, ci=None, noise_floor=False).value
    wide = p.astype(np.float64)
    assert ece16 != pytest.approx(expected_calibration_error(y, wide, n_bins=15, ci=None, noise_floor=False).value,
                                  abs=1e-6)
    assert np.abs(wide.sum(1) - 1).max() > 1e-4
    got = {name: _json(capsys, "evaluate", "--probs", scores, "--labels", labels)["metrics"]
           for name, (scores, labels) in _save_all(tmp_path, p, y).items()}
    for name, metrics in got.items():
        assert {k: metrics[k] for k in _SAME} == {k: got["p.npy"][k] for k in _SAME}, name
        assert metrics["class_counts"] == got["p.npy"]["class_counts"], name
    # the stored values as the library scores them: binned in float16, rows as stored
    assert got["p.npz"]["ece"] == pytest.approx(ece16, abs=1e-12)
    assert got["p.npz"]["log_loss"] == pytest.approx(-np.mean(np.log(wide[np.arange(len(y)), y])), rel=1e-12)


def test_float16_probabilities_calibrate_the_same_in_every_container(capsys, tmp_path):
    p, y = _float16_probs(n=400, seed=1)
    runs = {}
    for name, (scores, labels) in _save_all(tmp_path, p, y).items():
        out = tmp_path / f"cal_{name.replace('.', '_')}.npz"
        runs[name] = _json(capsys, "calibrate", "--probs", scores, "--labels", labels, "--out", out)
    first = runs["p.npy"]
    for name, run in runs.items():
        assert run["calibrator"]["temperature"] == first["calibrator"]["temperature"], name
        for key in ("uncalibrated", "calibrated"):
            assert {k: run["metrics"][key][k] for k in _SAME} == {k: first["metrics"][key][k] for k in _SAME}, \
                (name, key)


# --------------------------------------------------------------------------- 2. class names in metrics.json


def _overpredicted(n: int = 600, seed: int = 0):
    """Three classes with the last one's probabilities far too high: its count test rejects."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.48, 0.48, 0.04])
    p = np.full((n, 3), 0.1)
    p[np.arange(n), np.minimum(y, 1)] += 0.6  # classes 0 and 1 right at 0.7; class 2 predicted 0.2 a row
    p[:, 2] += 0.1
    p /= p.sum(1, keepdims=True)
    return p, y


def test_evaluate_names_the_class_it_counts(capsys, tmp_path):
    p, y = _overpredicted()
    names = ["cat", "dog", "emu"]
    write_columns(tmp_path / "p.csv", {f"p_{c}": p[:, j] for j, c in enumerate(names)})
    write_columns(tmp_path / "y.csv", {"label": np.array(names, dtype=object)[y]})
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv", "--json")
    assert rc == 0, err
    metrics = json.loads(out)["metrics"]
    assert [c["class"] for c in metrics["class_counts"]] == [0, 1, 2]  # kept: the column index
    assert [c["name"] for c in metrics["class_counts"]] == names
    test = metrics["class_count_test"]
    assert test["rejected"] and (test["class"], test["name"]) == (2, "emu")
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0 and "class 'emu'" in out  # the name the text gives


def test_without_names_the_name_is_the_index(capsys, tmp_path):
    p, y = _overpredicted()
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    metrics = _json(capsys, "evaluate", "--probs", tmp_path / "p.npy", "--labels", tmp_path / "y.npy")["metrics"]
    assert [(c["class"], c["name"]) for c in metrics["class_counts"]] == [(0, "0"), (1, "1"), (2, "2")]


def test_calibrate_names_the_class_it_counts(capsys, tmp_path):
    p, y = _overpredicted(seed=1)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    got = _json(capsys, "calibrate", "--probs", tmp_path / "p.npy", "--labels", tmp_path / "y.npy", "--classes",
                "cat,dog,emu", "--out", tmp_path / "cal.npz")
    for key in ("uncalibrated", "calibrated"):
        summary = got["metrics"][key]
        assert [c["name"] for c in summary["class_counts"]] == ["cat", "dog", "emu"], key
        test = summary["class_count_test"]
        assert test["name"] == ["cat", "dog", "emu"][test["class"]], key


@pytest.fixture()
def named_data(tmp_path):
    """A 3-class table whose target holds the words ``low``, ``mid`` and ``zzz`` (sorted: the column order)."""
    rng = np.random.default_rng(2)
    n = 240
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + y[:, None]
    words = np.array(["low", "mid", "zzz"], dtype=object)
    path = write_columns(tmp_path / "d.csv", {**{f"x{j}": X[:, j] for j in range(4)}, "target": words[y]})
    return path


def test_fit_and_predict_name_the_classes_they_count(capsys, tmp_path, named_data):
    model = tmp_path / "m.npz"
    got = _json(capsys, "fit", named_data, "--target", "target", "--alpha", "0.01", "--max-iter", "50",
                "--calibrate", "temperature", "--out", model, "--no-report")
    for key in ("model", "calibrated"):
        summary = got["held_out"][key]
        assert [c["name"] for c in summary["class_counts"]] == ["low", "mid", "zzz"], key
        assert summary["class_count_test"]["name"] == ["low", "mid", "zzz"][summary["class_count_test"]["class"]]
    got = _json(capsys, "predict", model, named_data, "--target", "target", "--out", tmp_path / "p.csv")
    assert [c["name"] for c in got["metrics"]["class_counts"]] == ["low", "mid", "zzz"]


def test_demo_names_the_classes_it_counts(capsys, tmp_path):
    got = _json(capsys, "demo", "--out", tmp_path / "demo")
    for key, summary in got["test"].items():
        assert [c["name"] for c in summary["class_counts"]] == [str(c) for c in got["classes"]], key


# --------------------------------------------------------------------------- 3. output extensions


@pytest.mark.parametrize("argv, option, suffix", [
    (["fit", "{d}/missing.csv", "--target", "y", "--out", "{d}/m.pkl"], "--out", ".pkl"),
    (["predict", "{d}/m.npz", "{d}/x.csv", "--out", "{d}/p.txt"], "--out", ".txt"),
    (["predict", "{d}/m.npz", "{d}/x.csv", "--out", "{d}/p.csv", "--logits-out", "{d}/z"], "--logits-out", "(none)"),
    (["apply", "{d}/c.npz", "--logits", "{d}/z.npy", "--out", "{d}/p.json"], "--out", ".json"),
    (["apply", "{d}/c.npz", "--logits", "{d}/z.npy", "--out", "{d}/p.csv", "--logits-out", "{d}/z.pkl"],
     "--logits-out", ".pkl"),
    (["calibrate", "--logits", "{d}/z.npy", "--labels", "{d}/y.npy", "--out", "{d}/c.pt"], "--out", ".pt"),
    (["calibrate", "--logits", "{d}/z.npy", "--labels", "{d}/y.npy", "--out", "{d}/c.npz", "--conformal", "0.1",
      "--conformal-out", "{d}/s.npy"], "--conformal-out", ".npy"),
])
def test_bad_output_extension_is_a_usage_error_before_any_file_is_read(capsys, tmp_path, argv, option, suffix):
    # None of the inputs exists: reading one would fail with exit code 1, "no such file".
    argv = [a.format(d=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        call(capsys, *argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert f"{option} " in err and f"unsupported extension {suffix!r}" in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written either
