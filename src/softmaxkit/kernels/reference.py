"""Plain vectorised NumPy kernels: the portable backend and the one every
other backend must agree with.

Kernel contract (shared by :mod:`softmaxkit.kernels.cpu` and any later
backend): inputs are already validated by :mod:`softmaxkit.functional`; ``x``
is a C-contiguous ``(N, C)`` float32 or float64 array with the classes on the
last axis; targets are ``(N,)`` int64 class indices or ``(N, C)``
probabilities in ``x``'s dtype. Kernels apply no policy (no reduction, no
dtype promotion beyond their accumulators, no checks).

Stability (see Notes of :func:`softmaxkit.softmax`):

* every row is shifted by its max before ``exp``, so no ``exp`` overflows;
* a row whose max is ``-inf`` (all entries masked) uses a shift of 0, so the
  shift never produces ``(-inf) - (-inf) = NaN``;
* row sums of ``exp`` are accumulated in float64;
* the loss is assembled per row in float64 as ``(max - x_y) + log(sum)``
  rather than ``lse - x_y``, which avoids cancelling two large numbers.
"""

from __future__ import annotations

import numpy as np

from softmaxkit._options import CrossEntropyOptions

#: Rows processed per block, so temporaries stay near ``_BLOCK_ELEMENTS`` items.
_BLOCK_ELEMENTS = 1 << 22


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _safe_row_max(x: np.ndarray) -> np.ndarray:
    """Row max as a ``(n, 1)`` column, with 0 in place of ``-inf``.

    A row of all ``-inf`` would otherwise give ``x - max = NaN``.
    """
    m = np.max(x, axis=1, keepdims=True)
    return np.where(m == -np.inf, np.zeros((), m.dtype), m)


def _shifted_exp(x: np.ndarray, inv_temperature: float = 1.0):
    """Return ``(m, z, e, s, log_s)``: max shift, ``z = x - m``, ``e = exp(z)``,
    the float64 row sums ``s`` of ``e`` and ``log(s)``, all rows ``(n,)``.

    ``log_s`` is ``log1p`` of the sum without the max's own ``exp(0) = 1``, so
    a confident row (``s = 1 + tiny``) keeps full relative precision in
    ``log p_max = -log_s``.
    """
    m = _safe_row_max(x)
    z = x - m  # (n, C); NaN where x is NaN or where m is +inf, by design
    if inv_temperature != 1.0:
        # scale after the shift: (x - m) / T is exact-ish, x / T would round large x first
        z = z * x.dtype.type(inv_temperature)
        m = m * x.dtype.type(inv_temperature)
    e = np.exp(z)
    s = np.sum(e, axis=1, dtype=np.float64)
    at_max = z == 0
    rest = np.sum(np.where(at_max, 0, e), axis=1, dtype=np.float64)
    rest += np.maximum(np.count_nonzero(at_max, axis=1) - 1, 0)  # ties beyond the first max
    log_s = np.where(s == 0.0, -np.inf, np.log1p(rest))
    log_s = np.where(np.isnan(s), np.nan, log_s)
    return m, z, e, s, log_s


def _safe_reciprocal(s: np.ndarray) -> np.ndarray:
    """``1 / s`` with 0 for ``s == 0`` (all -inf rows) and NaN kept for NaN sums."""
    return np.where(s == 0.0, 0.0, 1.0 / np.where(s == 0.0, 1.0, s))


def softmax_2d(
    x: np.ndarray, out: np.ndarray, *, inv_temperature: float = 1.0, log: bool = False
) -> np.ndarray:
    """Row-wise (log-)softmax of ``x * inv_temperature`` written into ``out``.

    Rows of all ``-inf`` give 0 (softmax) or ``-inf`` (log-softmax).
    """
    n, c = x.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for rows in _row_blocks(n, c):
            m, z, e, s, log_s = _shifted_exp(x[rows], inv_temperature)
            if log:
                res = z - log_s.astype(x.dtype)[:, None]
                # all -inf rows: z = -inf - 0 = -inf and log_s = -inf -> NaN; define -inf
                res = np.where((s == 0.0)[:, None], -np.inf, res)
            else:
                inv_s = _safe_reciprocal(s)
                res = e * inv_s.astype(x.dtype)[:, None]
            out[rows] = res
    return out


def logsumexp_2d(x: np.ndarray) -> np.ndarray:
    """Row-wise ``log(sum(exp(x)))`` in float64, shape ``(N,)``."""
    n, c = x.shape
    res = np.empty(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for rows in _row_blocks(n, c):
            m, _, _, _, log_s = _shifted_exp(x[rows])
            res[rows] = m[:, 0].astype(np.float64) + log_s
    return res


def cross_entropy_2d(
    x: np.ndarray,
    target: np.ndarray,
    options: CrossEntropyOptions,
    *,
    row_scale: np.ndarray | None = None,
    grad_out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-row cross-entropy, and optionally its gradient, in one pass per block.

    Parameters
    ----------
    x : ndarray of shape (N, C), float32 or float64, C-contiguous
    target : ndarray of shape (N,) int64, or (N, C) probabilities
    options : CrossEntropyOptions
        ``reduction`` is ignored here; the caller reduces.
    row_scale : ndarray of shape (N,) float64, optional
        ``grad_out[i] = row_scale[i] * d loss[i] / d x[i]``. Required with ``grad_out``.
    grad_out : ndarray of shape (N, C), optional
        Receives the gradient (may alias ``x``).

    Returns
    -------
    loss : ndarray of shape (N,), float64
        Per-row loss exactly as torch's ``reduction="none"`` (class weight of
        the target included), plus ``z_loss * w_y * lse**2``. Ignored rows are 0.

    Notes
    -----
    With ``p = softmax(x')``, ``x' = softcap(x)``, ``lse = logsumexp(x')``,
    smoothing ``eps``, ``C`` classes, weights ``w`` (all ones if None),
    ``W = sum(w)`` and ``zeta = z_loss``:

    hard target ``y``::

        loss = (1-eps) w_y (lse - x'_y) + eps/C * sum_c w_c (lse - x'_c) + zeta w_y lse^2
        dloss/dx'_j = p_j [(1-eps) w_y + eps W / C + 2 zeta w_y lse] - (1-eps) w_y [j=y] - eps w_j / C

    soft target ``t`` (smoothed ``t' = (1-eps) t + eps/C``)::

        loss = sum_c w_c t'_c (lse - x'_c) + zeta lse^2
        dloss/dx'_j = p_j [sum_c w_c t'_c + 2 zeta lse] - w_j t'_j

    and ``dx'/dx = sech(x/cap)^2 = 1 / cosh(x/cap)^2`` under a softcap (not
    ``1 - tanh^2``, which cancels where tanh saturates). Terms with a zero
    target weight contribute exactly 0 even where ``x'_c = -inf``.
    """
    n, c = x.shape
    dtype = x.dtype
    eps = options.label_smoothing
    zeta = options.z_loss
    cap = options.softcap
    weight = options.weight  # float64 (C,) or None
    soft = target.ndim == 2
    loss = np.zeros(n, dtype=np.float64)
    w_dtype = None if weight is None else weight.astype(dtype)
    w_sum = float(c) if weight is None else float(np.sum(weight))

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for rows in _row_blocks(n, c):
            xb = x[rows]
            if cap is not None:
                u = xb / dtype.type(cap)
                # cosh^2 overflows to inf, and the slope to its right 0, past |u| ~ 44.
                slope = None if grad_out is None else 1 / np.square(np.cosh(u))
                xb = dtype.type(cap) * np.tanh(u)
            m, z, e, s, log_s = _shifted_exp(xb)  # z = x' - m, (b, C); log_s -inf on all -inf rows
            lse = m[:, 0].astype(np.float64) + log_s
            # neg_z = m - x'_c >= 0: the loss terms are sums of non-negatives.
            if soft:
                tb = target[rows]
                t = tb if eps == 0.0 else (1.0 - eps) * tb + dtype.type(eps / c)
                wt = t if weight is None else t * w_dtype  # (b, C) w_c t'_c
                # 0 * inf := 0 for classes with zero target mass.
                terms = np.where(wt == 0, 0.0, wt.astype(np.float64) * (-z))
                wt_sum = np.sum(wt, axis=1, dtype=np.float64)
                row_loss = np.sum(terms, axis=1) + wt_sum * log_s + zeta * lse**2
                row_w = np.ones(len(tb))
                active = np.ones(len(tb), dtype=bool)
            else:
                tb = target[rows]
                active = tb != options.ignore_index
                y = np.where(active, tb, 0)
                w_y = np.ones(len(tb)) if weight is None else weight[y]
                w_y = np.where(active, w_y, 0.0)
                z_y = np.take_along_axis(z, y[:, None], axis=1)[:, 0].astype(np.float64)
                row_loss = (1.0 - eps) * w_y * (log_s - z_y) if eps < 1.0 else np.zeros(len(tb))
                if eps > 0.0:
                    wz = -z if weight is None else w_dtype * (-z)
                    wz = wz if weight is None else np.where(w_dtype == 0, 0.0, wz)
                    smooth = np.sum(wz, axis=1, dtype=np.float64) + w_sum * log_s
                    row_loss = row_loss + (eps / c) * smooth
                if zeta > 0.0:
                    row_loss = row_loss + zeta * w_y * lse**2
                row_w = w_y
            # A row of all -inf (s == 0) has lse = -inf: any target there is impossible.
            row_loss = np.where(s == 0.0, np.inf, row_loss)
            if not soft:
                row_loss = np.where(active, row_loss, 0.0)
            loss[rows] = row_loss

            if grad_out is None:
                continue
            inv_s = _safe_reciprocal(s)
            p = e * inv_s.astype(dtype)[:, None]  # (b, C)
            # lse term of the z-loss only where p > 0 (all -inf rows have p = 0).
            lse_term = np.where(np.isfinite(lse), 2.0 * zeta * lse, 0.0)
            if soft:
                coef = (wt_sum + lse_term).astype(dtype)
                g = p * coef[:, None] - wt
            else:
                coef = ((1.0 - eps) * w_y + eps * w_sum / c + lse_term * w_y).astype(dtype)
                g = p * coef[:, None]
                if eps > 0.0:
                    g -= dtype.type(eps / c) * (1.0 if weight is None else w_dtype)
                # (p_y - 1)-style correction computed in the compute dtype (>= float32).
                rr = np.arange(len(tb))
                g[rr, y] -= ((1.0 - eps) * w_y).astype(dtype)
            if cap is not None:
                g *= slope
            g *= row_scale[rows].astype(dtype)[:, None]
            # Ignored rows are zeroed last: the softcap slope of a NaN logit is NaN, and zeroing before
            # multiplying by it left NaN in an ignored row (the numba kernel gives 0; audit).
            g[~active] = 0.0
            grad_out[rows] = g
    return loss


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow: ``exp(-|x|)`` never exceeds 1."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)
