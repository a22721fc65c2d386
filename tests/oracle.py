"""The float64 oracle every backend is compared against.

Written for clarity, not speed: one row at a time, ``math.fsum`` for every
sum, straight from the formulas in DESIGN.md. It shares no code with
``softmaxkit`` so a bug there cannot hide here.
"""

from __future__ import annotations

import math

import numpy as np


def _row_shift_and_log_sum(row: np.ndarray) -> tuple[float, float]:
    """``(m, log(sum(exp(row - m))))`` with ``m`` the row max; lse = m + second."""
    m = float(np.max(row))
    if m == -math.inf:
        return 0.0, -math.inf
    if math.isnan(m) or m == math.inf or np.isnan(row).any():
        return math.nan, math.nan
    values = row.tolist()
    values.remove(m)  # the max contributes exactly exp(0) = 1: log1p keeps confident rows exact
    return m, math.log1p(math.fsum(math.exp(v - m) for v in values))


def _row_lse(row: np.ndarray) -> float:
    m, log_sum = _row_shift_and_log_sum(row)
    return m + log_sum


def logsumexp(x, axis=-1) -> np.ndarray:
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    flat = x.reshape(-1, x.shape[-1])
    return np.array([_row_lse(r) for r in flat]).reshape(x.shape[:-1])


def log_softmax(x, axis=-1, temperature=1.0) -> np.ndarray:
    x = np.moveaxis(np.asarray(x, dtype=np.float64) / temperature, axis, -1)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    for i, r in enumerate(flat):
        m, log_sum = _row_shift_and_log_sum(r)
        # (x - m) - log_sum, never x - lse: m + log_sum would round away a tiny log_sum
        out[i] = -math.inf if log_sum == -math.inf else (r - m) - log_sum
    return np.moveaxis(out.reshape(x.shape), -1, axis)


def softmax(x, axis=-1, temperature=1.0) -> np.ndarray:
    return np.exp(log_softmax(x, axis, temperature))


def cross_entropy_rows(
    logits,
    target,
    *,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
):
    """Per-row loss and the mean denominator weight, for (N, C) logits."""
    x = np.asarray(logits, dtype=np.float64)
    n, c = x.shape
    if softcap is not None:
        x = softcap * np.tanh(x / softcap)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = label_smoothing
    target = np.asarray(target)
    soft = target.ndim == 2
    losses, row_w = [], []
    for i in range(n):
        m, log_sum = _row_shift_and_log_sum(x[i])
        lse = m + log_sum
        neg_logp = [(m - v) + log_sum if log_sum != -math.inf else math.inf for v in x[i]]
        if soft:
            t = (1 - eps) * target[i].astype(np.float64) + eps / c
            loss = math.fsum(w[j] * t[j] * neg_logp[j] for j in range(c) if w[j] * t[j] != 0)
            if z_loss:  # never 0 * inf on an all -inf row
                loss += z_loss * lse**2
            losses.append(loss)
            row_w.append(1.0)
            continue
        y = int(target[i])
        if y == ignore_index:
            losses.append(0.0)
            row_w.append(0.0)
            continue
        loss = (1 - eps) * w[y] * neg_logp[y] if eps < 1 else 0.0
        if eps > 0:
            loss += eps / c * math.fsum(w[j] * neg_logp[j] for j in range(c) if w[j] != 0)
        if z_loss:
            loss += z_loss * w[y] * lse**2
        losses.append(loss)
        row_w.append(w[y])
    return np.array(losses), np.array(row_w)


def cross_entropy(logits, target, *, reduction="mean", axis=-1, **options):
    """Reduced cross-entropy, class axis anywhere, as DESIGN.md defines it."""
    x = np.moveaxis(np.asarray(logits, dtype=np.float64), axis, -1)
    c = x.shape[-1]
    t = np.asarray(target)
    soft = np.issubdtype(t.dtype, np.floating)
    t_rows = np.moveaxis(t, axis, -1).reshape(-1, c) if soft else t.reshape(-1)
    losses, row_w = cross_entropy_rows(x.reshape(-1, c), t_rows, **options)
    if reduction == "none":
        return losses.reshape(x.shape[:-1])
    if reduction == "sum":
        return math.fsum(losses)
    denom = math.fsum(row_w)
    return math.fsum(losses) / denom if denom > 0 else 0.0


def saturated_softcap_case(rng, *, cap=30.0, n=16, c=200):
    """float32 logits reaching ``|x| / cap`` of about 12, where tanh saturates,
    hard targets, and the float64 gradient of the summed softcapped loss,
    ``(softmax(x') - onehot(y)) / cosh(x / cap)^2`` from the raw logits.

    The textbook slope ``1 - (x' / cap)^2`` computed from a float32 ``x'``
    has no correct digit here: a backend must reach rtol 1e-4 on every entry.
    """
    x = (rng.standard_normal((n, c)) * cap * 3).astype(np.float32)
    y = rng.integers(0, c, n)
    x64 = x.astype(np.float64)
    want = softmax(cap * np.tanh(x64 / cap))
    want[np.arange(n), y] -= 1.0
    want /= np.cosh(x64 / cap) ** 2
    assert np.abs(want).min() < 1e-12  # the case does reach saturation
    return x, y, want
