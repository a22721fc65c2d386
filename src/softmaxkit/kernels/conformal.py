"""numba kernels for conformal prediction sets: APS/RAPS scores and set masks.

No validation and no policy here (see :mod:`softmaxkit.conformal`). Inputs are
C-contiguous ``(n, C)`` probabilities (float32 or float64) and already checked;
every score is computed and compared in float64.

Why kernels: the adaptive scores (APS, RAPS) rank the classes of every row.
With NumPy that is an ``argsort`` of the whole ``(n, C)`` array plus a cumsum,
a gather and a scatter, each a full-size temporary (MAPIE keeps several per
level ``alpha``): at 50,000 x 1000 that is gigabytes of traffic. Here each row
is handled once, in parallel, and the set mask is written directly.

Ranking convention (shared by every kernel, so calibration and prediction
agree): classes are ordered by decreasing probability, ties by increasing class
index. ``before(y)`` is the total probability of the classes ranked before
``y`` and ``rank(y)`` is 1-based. The score of class ``y`` with uniform ``u`` is

    s(y) = before(y) + u * p_y + lambda * max(0, rank(y) - k_reg)

(APS is ``lambda = 0``). Along the ranking ``s`` never decreases, because
``before(next) = before(y) + p_y >= before(y) + u * p_y``, so a set
``{y : s(y) <= t}`` with one ``t`` for all classes is a prefix of the ranking.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True)

#: Below this many probabilities a kernel runs on the calling thread: starting
#: the thread pool costs more than the work (measured: 100 x 8 APS sets took
#: 4 ms in parallel on a loaded 2-core machine, 20 us serially).
PARALLEL_MIN_ELEMENTS = 1 << 16


def _true_class_scores(p, y, u, k_reg, lam):
    """``s(y_i)`` of every row's true class, shape (n,), in one O(C) pass per row (no sort).

    Parameters
    ----------
    p : (n, C) float array
    y : (n,) int64 true classes
    u : (n,) float64 uniforms (zeros for the non-randomised score)
    k_reg : int
    lam : float
    """
    n, c = p.shape
    out = np.empty(n, dtype=np.float64)
    for i in nb.prange(n):
        yi = y[i]
        py = np.float64(p[i, yi])
        before = 0.0
        ahead = 0
        for j in range(c):
            pj = np.float64(p[i, j])
            if pj > py or (pj == py and j < yi):
                before += pj
                ahead += 1
        penalty = ahead + 1 - k_reg
        out[i] = before + u[i] * py + (lam * penalty if penalty > 0 else 0.0)
    return out


def _adaptive_sets(p, u, k_reg, lam, thresholds, out):
    """Write ``out[i, y, a] = s_i(y) <= thresholds[y, a]`` for every row, class and level.

    Parameters
    ----------
    p : (n, C) float array
    u : (n,) float64 uniforms, one per row (shared by all classes and levels, so
        the sets are nested in the level)
    k_reg, lam : RAPS regularisation (``lam = 0`` for APS)
    thresholds : (C, A) float64; the same row for every class unless class-conditional
    out : (n, C, A) bool, overwritten

    Notes
    -----
    The walk down the ranking stops once the score passes the largest threshold
    (the score never decreases along the ranking), so only the classes that
    make it into some set, plus one, cost more than the sort.
    """
    n, c = p.shape
    n_levels = thresholds.shape[1]
    top = -np.inf
    for j in range(c):
        for a in range(n_levels):
            if thresholds[j, a] > top:
                top = thresholds[j, a]
    for i in nb.prange(n):
        for j in range(c):
            for a in range(n_levels):
                out[i, j, a] = False
        neg = np.empty(c, dtype=np.float64)
        for j in range(c):
            neg[j] = -np.float64(p[i, j])
        order = np.argsort(neg, kind="mergesort")  # stable: ties by class index
        before = 0.0
        for r in range(c):
            j = order[r]
            pj = -neg[j]
            penalty = r + 1 - k_reg
            s = before + u[i] * pj + (lam * penalty if penalty > 0 else 0.0)
            if s > top:
                break
            for a in range(n_levels):
                out[i, j, a] = s <= thresholds[j, a]
            before += pj


def _lac_sets(p, thresholds, out):
    """Write ``out[i, y, a] = 1 - p[i, y] <= thresholds[y, a]`` (the LAC set), in float64."""
    n, c = p.shape
    n_levels = thresholds.shape[1]
    for i in nb.prange(n):
        for j in range(c):
            s = 1.0 - np.float64(p[i, j])
            for a in range(n_levels):
                out[i, j, a] = s <= thresholds[j, a]


# Each kernel is compiled twice from one body: parallel (prange) and serial
# (prange runs as range), and :func:`pick` chooses by size.
_KERNELS = {
    name: (nb.njit(parallel=True, **_JIT)(fn), nb.njit(**_JIT)(fn))
    for name, fn in (("true_class_scores", _true_class_scores), ("adaptive_sets", _adaptive_sets),
                     ("lac_sets", _lac_sets))
}


def pick(name, n_elements):
    """The parallel kernel ``name`` for large inputs, the serial one for small."""
    parallel, serial = _KERNELS[name]
    return parallel if n_elements >= PARALLEL_MIN_ELEMENTS else serial
