"""Vector and matrix scaling evaluate their objective in row blocks (``_AffineBlocks``).

The blocked fit must give the parameters of the one-block fit (the sums over
rows only add in another order), the float64 reference optimum, and the same
result for float32 logits, their float64 copy and a read-only memory map.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from softmaxkit import calibration
from softmaxkit.calibration import CalibrationWarning, MatrixScaling, TemperatureScaling, VectorScaling


def _data(n=600, k=4, seed=0):
    """Over-confident, class-distorted logits (temperature alone cannot fix them) and drawn labels."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k)) * 1.5
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1), k - 1)
    return z * 3.0 * np.linspace(0.5, 2.0, k) + np.linspace(-1.0, 1.0, k), y


def _fitted(cal):
    return cal.coef_, cal.intercept_, cal.nll_, cal.n_iter_, cal.at_bound_


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_fit_matches_the_one_block_fit(monkeypatch, cls, dtype):
    z, y = _data()
    z = z.astype(dtype)
    w = np.random.default_rng(1).integers(0, 3, size=len(y)).astype(float)
    whole = cls().fit(z, y, sample_weight=w)  # 600 x 4 logits: one block
    monkeypatch.setattr(calibration, "_BLOCK_ELEMENTS", 7 * z.shape[1])  # blocks of 7 rows, a short last one
    blocked = cls().fit(z, y, sample_weight=w)
    for a, b in zip(_fitted(whole)[:3], _fitted(blocked)[:3]):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert blocked.n_iter_ == whole.n_iter_ and blocked.converged_ and whole.converged_


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
def test_blocked_fit_finds_the_same_unbounded_likelihood(monkeypatch, cls):
    """pseudo_count=0 on a separable set: every block must rank its labels first for at_bound_."""
    z, _ = _data(n=60, k=3)
    y = np.argmax(z, axis=1)
    fits = []
    for block in (None, 2 * z.shape[1]):
        if block is not None:
            monkeypatch.setattr(calibration, "_BLOCK_ELEMENTS", block)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            fits.append(cls(prior_scale=None).fit(z, y))
    assert fits[0].at_bound_ and fits[1].at_bound_


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
def test_float32_logits_fit_as_their_float64_copy_and_as_a_memory_map(tmp_path, monkeypatch, cls):
    z, y = _data(n=300)
    z32 = z.astype(np.float32)
    monkeypatch.setattr(calibration, "_BLOCK_ELEMENTS", 50 * z.shape[1])
    path = tmp_path / "z.npy"
    np.save(path, z32)
    mapped = np.load(path, mmap_mode="r")
    ref = _fitted(cls().fit(z32.astype(np.float64), y))
    for given in (z32, mapped):
        got = _fitted(cls().fit(given, y))
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(b, a)  # float32 -> float64 is exact, and nothing else differs
    np.testing.assert_array_equal(np.load(path), z32)  # the input is never written


def _reference_objective(cls, z, y, w, cal, beta):
    """The documented objective in plain float64 NumPy, over ``theta`` = (coef / beta, b):
    weighted mean NLL with the runner-up soft targets, the identity prior and (matrix) ODIR."""
    n, k = z.shape
    total = w.sum()
    e = cal.pseudo_count / (total + 2 * cal.pseudo_count)
    other = z.copy()
    other[np.arange(n), y] = -np.inf
    t = np.zeros((n, k))
    t[np.arange(n), y] = 1 - e
    t[np.arange(n), np.argmax(other, axis=1)] += e
    x = beta * z
    lam = cal.identity_reg * (1 / cal.prior_scale**2 if cal.prior_scale else 1.0) / total

    def f(theta):
        if cls is VectorScaling:
            a, b = theta[:k], theta[k:]
            zz = x * a + b
        else:
            a, b = theta[: k * k].reshape(k, k), theta[k * k :]
            zz = x @ a.T + b
        m = zz.max(axis=1, keepdims=True)
        lse = np.log(np.exp(zz - m).sum(axis=1)) + m[:, 0]
        value = np.dot(w, lse - (t * zz).sum(axis=1)) / total
        if cls is VectorScaling:
            return value + 0.5 * lam * (np.sum((a - 1) ** 2) + b @ b)
        off = a - np.diag(np.diag(a))
        odir = cal.off_diagonal_reg / (k * (k - 1)) * np.sum(off**2) + cal.intercept_reg / k * (b @ b)
        return value + 0.5 * lam * np.sum((np.diag(a) - 1) ** 2) + odir

    return f


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
def test_blocked_fit_reaches_the_float64_reference_optimum(monkeypatch, cls):
    z, y = _data(n=500, k=3, seed=2)
    w = np.random.default_rng(3).random(len(y)) * 2
    monkeypatch.setattr(calibration, "_BLOCK_ELEMENTS", 11 * z.shape[1])
    with warnings.catch_warnings():  # tol=1e-12: compare optima, not stops; the line search ends on rounding
        warnings.simplefilter("ignore", CalibrationWarning)
        cal = cls(tol=1e-12).fit(z.astype(np.float32), y, sample_weight=w)
    z64 = z.astype(np.float32).astype(np.float64)
    beta = TemperatureScaling().fit(z64, y, sample_weight=w).beta_
    f = _reference_objective(cls, z64, y, w, cal, beta)
    ref = minimize(f, np.asarray(cal._init(1.0, z.shape[1])), method="BFGS", options={"gtol": 1e-10})
    got = np.concatenate([(cal.coef_ / beta).ravel(), cal.intercept_])
    np.testing.assert_allclose(got, ref.x, rtol=1e-5, atol=1e-6)
    assert f(got) <= ref.fun + 1e-12
