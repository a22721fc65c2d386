"""Cross-entropy over vocabulary tiles: the rows' classes arrive in slices.

The fused linear cross-entropy at a large vocabulary (:mod:`softmaxkit.linear`)
computes the logits ``(N, V)`` a tile of classes ``[v0, v1)`` at a time, for
all N tokens, so that every GEMM has large dimensions. A row's loss and
softmax need the whole row, so the tiles come twice:

1. :func:`fold_tile` folds each tile's per-row statistics into a running
   state (an online log-sum-exp, as in Milakov & Gimelshein 2018, plus the
   target logit and the smoothing / soft-target sums);
2. :func:`finish` turns the state into the per-row losses, and keeps ``s``
   and ``lse`` for
3. :func:`tile_grad`, which overwrites a recomputed tile with
   ``row_scale * dloss/dlogits``.

Per row the state holds ``m`` (max so far), ``n_max`` and ``rest`` (the sum of
``exp(x' - m)`` split as in :mod:`.cpu`: ``n_max`` exact ones from the maxima,
``rest`` the other terms, so ``log s = log1p(rest + n_max - 1)`` keeps full
precision for a confident row), ``dot = sum wt_c (m - x'_c)`` and
``wsum = sum wt_c`` over the classes seen so far (``wt`` is the class weight
for label smoothing, the weighted smoothed target for soft targets), and the
target's logit ``x'_y``. When a tile raises the max from ``m`` to ``m'``,
``n_max + rest`` becomes ``rest * exp(m - m')`` and ``dot`` gains
``(m' - m) wsum``. Each tile's own sums are those of the row kernels in
:mod:`.cpu` (float32 chunk sums added in float64, the max's exact 1 kept
apart), so losses and gradients agree with :func:`.cpu.cross_entropy_2d` to
float32 rounding, for every option. The per-row loss and gradient formulas
are the row kernels' own functions.

Compiled lazily and cached on disk like :mod:`.cpu`. numba keys the cache on
this file alone, while the kernels inline functions of ``cpu.py`` and
``_vecmath.py``: after editing those, touch this file.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from softmaxkit._options import CrossEntropyOptions
from softmaxkit.kernels._vecmath import like
from softmaxkit.kernels.cpu import (
    _exp_into,
    _exp_sum,
    _hard_row_grad,
    _hard_row_loss,
    _log_sum,
    _neg_shift_dot,
    _outer,
    _row_max,
    _run,
    _scalar,
    _shift_of,
    _soft_row_grad,
    _soft_row_loss,
    _soft_target_sums,
    _softcap_row,
    class_weights,
    option_scalars,
)

__all__ = ["new_state", "fold_tile", "finish", "tile_grad"]

# Columns of the per-row state.
_M, _N_MAX, _REST, _DOT, _WSUM, _Z_Y = range(6)
# After finish(): these columns hold s and lse for tile_grad.
_S, _LSE = _N_MAX, _REST
STATE_COLUMNS = 6


def new_state(n_rows: int) -> np.ndarray:
    """The empty running state, ``(n_rows, 6)`` float64 (max ``-inf``, sums 0)."""
    state = np.zeros((n_rows, STATE_COLUMNS))
    state[:, _M] = -np.inf
    state[:, _Z_Y] = np.nan
    return state


@_scalar
def _fold(st, m_t, s_t, rest_t, dot_t, wsum_t):
    """Fold one tile's ``(max, s, rest, dot, wsum)`` of a row into its state ``st``."""
    m = st[_M]
    n_max_t = np.round(s_t - rest_t)
    if m_t != m_t or m != m:  # NaN in the row
        st[_M] = np.nan
        st[_REST] = np.nan
    elif m_t > m:
        st[_REST] = (st[_N_MAX] + st[_REST]) * np.exp(m - m_t) + rest_t
        st[_N_MAX] = n_max_t
        if st[_WSUM] != 0.0:  # (m_t - -inf) * 0 would be NaN
            st[_DOT] += (m_t - m) * st[_WSUM]
        st[_DOT] += dot_t
        st[_M] = m_t
    elif m_t == m:
        st[_N_MAX] += n_max_t
        st[_REST] += rest_t
        st[_DOT] += dot_t
    else:
        st[_REST] += s_t * np.exp(m_t - m)
        st[_DOT] += dot_t
        if wsum_t != 0.0:
            st[_DOT] += (m - m_t) * wsum_t
    st[_WSUM] += wsum_t


@_outer
def _fold_rows(x, v0, n_classes, target, soft_t, soft, w, has_weight, tile_w_sum, ignore_index, eps, cap, state):
    n, c = x.shape
    for i in prange(n):
        if not soft and target[i] == ignore_index:
            continue
        src, _ = _softcap_row(x[i], cap, False)
        m = _row_max(src)
        shift = _shift_of(src, m)
        s_t, rest_t = _exp_sum(src, shift)
        dot_t = 0.0
        wsum_t = 0.0
        if soft:
            keep = like(src, 1.0 - eps)
            add = like(src, eps / n_classes)
            dot_t, wsum_t = _soft_target_sums(src, soft_t[i][v0 : v0 + c], w, has_weight, keep, add, shift)
        else:
            if eps > 0.0:
                dot_t = _neg_shift_dot(src, w, has_weight, shift)
                wsum_t = tile_w_sum
            y = target[i] - v0
            if 0 <= y < c:
                state[i, _Z_Y] = np.float64(src[y])
        _fold(state[i], np.float64(m), s_t, rest_t, dot_t, wsum_t)


@_outer
def _finish_rows(state, target, soft, w64, has_weight, w_sum, ignore_index, n_classes, eps, zeta, loss):
    for i in prange(state.shape[0]):
        st = state[i]
        if not soft and target[i] == ignore_index:
            loss[i] = 0.0
            continue
        m = st[_M]
        shift = 0.0 if m == -np.inf else m
        s = st[_N_MAX] + st[_REST]
        log_s = _log_sum(s, st[_REST])
        lse = shift + log_s
        if soft:
            loss[i] = _soft_row_loss(s, log_s, st[_DOT], st[_WSUM], zeta, lse)
        else:
            w_y = w64[target[i]] if has_weight else 1.0
            neg_z_y = shift - st[_Z_Y]
            loss[i] = _hard_row_loss(s, log_s, neg_z_y, st[_DOT], w_y, w_sum, n_classes, eps, zeta, lse)
        st[_S] = s
        st[_LSE] = lse


@_outer
def _grad_rows(
    x, v0, n_classes, target, soft_t, soft, w, w64, has_weight, w_sum, ignore_index, eps, zeta, cap,
    row_scale, state,
):  # fmt: skip
    for i in prange(x.shape[0]):
        xr = x[i]
        if not soft and target[i] == ignore_index:
            xr[:] = 0.0
            continue
        st = state[i]
        src, slope = _softcap_row(xr, cap, True)
        m = st[_M]
        shift = like(xr, 0.0 if m == -np.inf else m)
        _exp_into(src, xr, shift, None, False, False)  # e = exp(x' - m), over the logits
        s = st[_S]
        lse = st[_LSE]
        if soft:
            keep = like(src, 1.0 - eps)
            add = like(src, eps / n_classes)
            tr = soft_t[i][v0 : v0 + xr.shape[0]]  # this tile's classes of the row's targets
            _soft_row_grad(xr, src, tr, w, has_weight, keep, add, st[_WSUM], zeta, s, lse, row_scale[i], slope)
        else:
            y = target[i]
            w_y = w64[y] if has_weight else 1.0
            _hard_row_grad(
                xr, src, y - v0, w, has_weight, w_y, w_sum, n_classes, eps, zeta, s, lse, row_scale[i], slope
            )


# --------------------------------------------------------------------------- public functions


def _tile_args(x, v0, target, options, n_classes):
    """Arguments shared by the tile kernels: targets split by kind, weights of the tile."""
    v1 = v0 + x.shape[1]
    soft = target.ndim == 2
    if soft:
        hard_t = np.zeros(1, dtype=np.int64)
        # all classes (no copy when already contiguous): the kernels slice the tile's columns
        soft_t = np.ascontiguousarray(target, dtype=x.dtype)
    else:
        hard_t = np.ascontiguousarray(target, dtype=np.int64)
        soft_t = np.empty((0, 0), dtype=x.dtype)
    has_weight, w64, w, w_sum = class_weights(options, x.dtype, n_classes)
    w_tile = w[v0:v1] if has_weight else w
    tile_w_sum = float(np.sum(w64[v0:v1])) if has_weight else float(v1 - v0)
    return soft, hard_t, soft_t, has_weight, w64, w_tile, w_sum, tile_w_sum


def fold_tile(x: np.ndarray, v0: int, target: np.ndarray, options: CrossEntropyOptions,
              state: np.ndarray, *, n_classes: int) -> None:
    """Fold the statistics of the logits tile ``x`` = classes ``[v0, v0 + x.shape[1])``
    of every row into ``state`` (from :func:`new_state`).

    Parameters
    ----------
    x : ndarray of shape (N, V_tile), float32 or float64, C-contiguous
        Read only.
    target : ndarray
        Class indices ``(N,)`` or probabilities ``(N, n_classes)`` for all classes.
    options : CrossEntropyOptions
        Validated for ``n_classes`` classes.
    """
    soft, hard_t, soft_t, has_weight, _, w_tile, _, tile_w_sum = _tile_args(x, v0, target, options, n_classes)
    eps, _, cap = option_scalars(options)
    _run(
        _fold_rows, x.size, x, v0, n_classes, hard_t, soft_t, soft, w_tile, has_weight, tile_w_sum,
        int(options.ignore_index), eps, cap, state,
    )  # fmt: skip


def finish(state: np.ndarray, target: np.ndarray, options: CrossEntropyOptions, *, n_classes: int) -> np.ndarray:
    """Per-row losses, float64 ``(N,)``, once every tile was folded in; ``state``
    then holds what :func:`tile_grad` needs."""
    soft = target.ndim == 2
    hard_t = np.zeros(1, dtype=np.int64) if soft else np.ascontiguousarray(target, dtype=np.int64)
    has_weight, w64, _, w_sum = class_weights(options, np.float64, n_classes)
    eps, zeta, _ = option_scalars(options)
    loss = np.empty(state.shape[0])
    _run(
        _finish_rows, state.size, state, hard_t, soft, w64, has_weight, w_sum, int(options.ignore_index),
        n_classes, eps, zeta, loss,
    )  # fmt: skip
    return loss


def tile_grad(x: np.ndarray, v0: int, target: np.ndarray, options: CrossEntropyOptions,
              state: np.ndarray, row_scale: np.ndarray, *, n_classes: int) -> None:
    """Overwrite the recomputed logits tile ``x`` with ``row_scale * dloss/dx`` (in place).

    ``state`` comes from :func:`finish`; ``row_scale`` is float64 ``(N,)``.
    """
    soft, hard_t, soft_t, has_weight, w64, w_tile, w_sum, _ = _tile_args(x, v0, target, options, n_classes)
    eps, zeta, cap = option_scalars(options)
    scale = np.ascontiguousarray(row_scale, dtype=np.float64)
    _run(
        _grad_rows, x.size, x, v0, n_classes, hard_t, soft_t, soft, w_tile, w64, has_weight, w_sum,
        int(options.ignore_index), eps, zeta, cap, scale, state,
    )  # fmt: skip
