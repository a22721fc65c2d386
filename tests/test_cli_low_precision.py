"""Probability files stored in bfloat16 or float16: ``evaluate``, ``calibrate`` and ``apply --probs``.

Rounding each probability of a row to a 16-bit type moves the row's sum by up to
half that type's epsilon (bfloat16: 2^-8), so ``torch.softmax(logits.bfloat16())``
saved with safetensors has rows summing to 0.998 or 1.002. The CLI refused them
("row 1: probabilities sum to 0.999005, not 1"): it held every file to the float32
tolerance. A file is now held to the library's tolerance for the dtype it stores
(:func:`softmaxkit._calibration_inputs.row_sum_tolerance`), and a float32/float64
file still to the CLI's own 1e-4.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit._calibration_inputs import row_sum_tolerance

N, K = 600, 50


@pytest.fixture(scope="module")
def logits_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, K)) * 3.0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(K, p=row) for row in p])
    return z, y


def _bf16_probs(z):
    """``torch.softmax`` of bfloat16 logits, as a language model's evaluation loop saves them."""
    torch = pytest.importorskip("torch")
    return torch.softmax(torch.tensor(z).bfloat16(), dim=-1)


def _evaluate(capsys, *argv):
    rc, out, err = call(capsys, "evaluate", *argv, "--json")
    assert rc == 0, err
    return json.loads(out)["metrics"]


def _log_loss(p, y):
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def test_bf16_safetensors_probs_evaluate(capsys, tmp_path, logits_labels):
    """Rows of bfloat16 probabilities sum to 1 within 2^-8-ish, beyond the float32 tolerance."""
    from safetensors.torch import save_file

    z, y = logits_labels
    p = _bf16_probs(z)
    widened = p.float().numpy().astype(np.float64)
    off = np.abs(widened.sum(axis=1) - 1)
    assert off.max() > 1e-3  # so the test could fail: these rows are outside the float tolerances
    assert off.max() < row_sum_tolerance("bfloat16")
    save_file({"probs": p.contiguous()}, str(tmp_path / "p.safetensors"))
    np.save(tmp_path / "y.npy", y)
    got = _evaluate(capsys, "--probs", tmp_path / "p.safetensors", "--labels", tmp_path / "y.npy")
    # Scored on the stored probabilities, each row rescaled to sum to 1.
    renormalised = widened / widened.sum(axis=1, keepdims=True)
    assert got["log_loss"] == pytest.approx(_log_loss(renormalised, y), rel=1e-9)
    assert got["accuracy"] == pytest.approx(np.mean(renormalised.argmax(axis=1) == y))


@pytest.mark.parametrize("shape", ["matrix", "npz", "one_column"])
def test_float16_npy_probs_evaluate(capsys, tmp_path, logits_labels, shape):
    """float16 probabilities: a memory-mapped .npy (kept float16), an .npz (read as float64) and a
    binary problem's single P(class 1) column (expanded to [1 - p, p] in float16)."""
    z, y = logits_labels
    if shape == "one_column":
        z, y = z[:, :2] / 3, (y % 2)  # milder, so that no probability underflows float16 to 0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p16 = p.astype(np.float16)
    if shape == "matrix":
        path = tmp_path / "p.npy"
        np.save(path, p16)
        assert np.abs(p16.astype(np.float64).sum(axis=1) - 1).max() > 1e-4
    elif shape == "npz":
        path = tmp_path / "p.npz"
        np.savez(path, probs=p16, labels=y)
        assert np.abs(p16.astype(np.float64).sum(axis=1) - 1).max() > 1e-4
    else:
        path = tmp_path / "p.npy"
        np.save(path, p16[:, 1:])
    np.save(tmp_path / "y.npy", y)
    got = _evaluate(capsys, "--probs", path, "--labels", tmp_path / "y.npy")
    assert got["log_loss"] == pytest.approx(_log_loss(p, y), rel=1e-2)


def test_bf16_safetensors_probs_calibrate_and_apply(capsys, tmp_path, logits_labels):
    from safetensors.torch import save_file

    z, y = logits_labels
    save_file({"probs": _bf16_probs(z).contiguous()}, str(tmp_path / "p.safetensors"))
    np.save(tmp_path / "y.npy", y)
    for method in ("temperature", "vector"):
        cal = tmp_path / f"cal_{method}.npz"
        rc, _, err = call(capsys, "calibrate", "--probs", tmp_path / "p.safetensors", "--labels",
                          tmp_path / "y.npy", "--method", method, "--out", cal, "-q")
        assert rc == 0, err
        out = tmp_path / f"out_{method}.npy"
        rc, _, err = call(capsys, "apply", cal, "--probs", tmp_path / "p.safetensors", "--out", out, "-q")
        assert rc == 0, err
        calibrated = np.load(out)
        assert calibrated.shape == (N, K)
        np.testing.assert_allclose(calibrated.sum(axis=1), 1, atol=1e-9)


def test_bf16_safetensors_logits_still_read(capsys, tmp_path, logits_labels):
    """Logits are untouched by the probability rule: bfloat16 logits widen exactly and score as such."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    z, y = logits_labels
    t = torch.tensor(z).bfloat16()
    save_file({"logits": t}, str(tmp_path / "z.safetensors"))
    np.save(tmp_path / "y.npy", y)
    w = t.float().numpy().astype(np.float64)
    p = np.exp(w - w.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    got = _evaluate(capsys, "--logits", tmp_path / "z.safetensors", "--labels", tmp_path / "y.npy")
    assert got["log_loss"] == pytest.approx(_log_loss(p, y), rel=1e-9)


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_probs_off_by_3e3_still_refused(capsys, tmp_path, logits_labels, suffix, dtype):
    """Only the 16-bit types are loosened: a float32/float64 row summing to 1.003 is not probabilities."""
    z, y = logits_labels
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[7] *= 1.003
    p = p.astype(dtype)
    path = tmp_path / f"p{suffix}"
    if suffix == ".npy":
        np.save(path, p)
    else:
        from safetensors.numpy import save_file

        save_file({"probs": p}, str(path))
    np.save(tmp_path / "y.npy", y)
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", tmp_path / "y.npy")
    assert rc != 0
    line = error_line(err)
    assert f"{path}: row 8: probabilities sum to 1.003" in line


def test_bf16_probs_far_from_one_refused(capsys, tmp_path, logits_labels):
    """The bfloat16 tolerance (about 0.016) still refuses a row that is not probabilities, naming the dtype."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    z, y = logits_labels
    p = _bf16_probs(z).clone()
    p[3] = p[3] * 1.05
    save_file({"probs": p.contiguous()}, str(tmp_path / "p.safetensors"))
    np.save(tmp_path / "y.npy", y)
    rc, _, err = call(capsys, "evaluate", "--probs", tmp_path / "p.safetensors", "--labels", tmp_path / "y.npy")
    assert rc != 0
    line = error_line(err)
    assert "row 4: probabilities sum to 1.05" in line and "bfloat16" in line
