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

from softmaxkit.kernels._vecmath import LOOP_FASTMATH, nan_max

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

    Notes
    -----
    A class ``j`` ranks before ``y`` when ``p_j > p_y``, or ``p_j == p_y`` and
    ``j < y``: so ``>=`` left of ``y`` and ``>`` right of it, loops of selects
    and sums that LLVM vectorises (with ``reassoc``; the inputs are checked
    finite, so no NaN-sensitive flag is set). The rank is counted in separate
    loops, only for RAPS: a count in the same loop as the sum stops the
    vectorisation (measured 4x slower).
    """
    n, c = p.shape
    out = np.empty(n, dtype=np.float64)
    for i in nb.prange(n):
        yi = y[i]
        py = np.float64(p[i, yi])
        before = 0.0
        for j in range(yi):
            v = np.float64(p[i, j])
            before += v if v >= py else 0.0
        for j in range(yi + 1, c):
            v = np.float64(p[i, j])
            before += v if v > py else 0.0
        penalty = 0.0
        if lam > 0.0:
            ahead = 0
            for j in range(yi):
                ahead += np.int64(np.float64(p[i, j]) >= py)
            for j in range(yi + 1, c):
                ahead += np.int64(np.float64(p[i, j]) > py)
            if ahead + 1 > k_reg:
                penalty = lam * (ahead + 1 - k_reg)
        out[i] = before + u[i] * py + penalty
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
    Only the classes that can be in a set are sorted. Let ``top`` be the
    largest threshold. The ``m`` classes with ``p >= tau`` rank before every
    other class, so each other class has ``before >= mass`` (their total
    probability) and rank ``> m``, hence a score of at least
    ``mass + lam * max(0, m + 1 - k_reg)`` (``u p`` is >= 0). If that exceeds
    ``top``, no other class is in any set. ``tau`` tries 1e-2, 1e-3, ..., 1e-9;
    if none qualifies, the whole row is sorted. The candidates are sorted
    (stable, so ties keep index order) and walked in rank order until the score
    passes ``top`` (the score never decreases along the ranking). At 1000
    classes this sorts tens of classes per row, not 1000.
    """
    n, c = p.shape
    n_levels = thresholds.shape[1]
    top = -np.inf
    for j in range(c):
        for a in range(n_levels):
            if thresholds[j, a] > top:
                top = thresholds[j, a]
    for i in nb.prange(n):
        row = p[i]
        for j in range(c):
            for a in range(n_levels):
                out[i, j, a] = False
        tau = -1.0  # every class
        t = 0.01
        for _ in range(8):
            mass = 0.0
            for j in range(c):
                v = np.float64(row[j])
                mass += v if v >= t else 0.0
            bound = mass
            if lam > 0.0:
                count = 0
                for j in range(c):
                    count += np.int64(np.float64(row[j]) >= t)
                if count + 1 > k_reg:
                    bound += lam * (count + 1 - k_reg)
            if bound > top + 1e-9:  # a margin: mass is summed in another order than the walk's `before`
                tau = t
                break
            t *= 0.1
        m = 0
        for j in range(c):
            m += np.int64(np.float64(row[j]) >= tau)
        idx = np.empty(m, dtype=np.int64)
        neg = np.empty(m, dtype=np.float64)
        k = 0
        for j in range(c):
            if np.float64(row[j]) >= tau:
                idx[k] = j
                neg[k] = -np.float64(row[j])
                k += 1
        order = np.argsort(neg, kind="mergesort")  # stable: ties in index order
        before = 0.0
        for r in range(m):
            j = idx[order[r]]
            pj = -neg[order[r]]
            penalty = r + 1 - k_reg
            s = before + u[i] * pj + (lam * penalty if penalty > 0 else 0.0)
            if s > top:
                break
            for a in range(n_levels):
                out[i, j, a] = s <= thresholds[j, a]
            before += pj


def _row_checks(p):
    """Per row: the sum (float64) and whether any entry is outside [0, 1] or NaN. One vectorised pass.

    The range check keeps the largest ``v`` and ``-v`` with IEEE ``maximum``
    (:func:`nan_max`), which propagates NaN, so a NaN fails ``max <= 1``.
    (``|v - 0.5| <= 0.5`` would need one maximum, but rounds -1e-300 into range.)
    """
    n, c = p.shape
    sums = np.empty(n, dtype=np.float64)
    bad = np.zeros(n, dtype=np.bool_)
    for i in nb.prange(n):
        total = 0.0
        hi = -np.inf
        neg_lo = -np.inf
        for j in range(c):
            v = np.float64(p[i, j])
            total += v
            hi = nan_max(hi, v)
            neg_lo = nan_max(neg_lo, -v)
        sums[i] = total
        bad[i] = not (hi <= 1.0 and neg_lo <= 0.0)
    return sums, bad


def _lac_sets(p, thresholds, out):
    """Write ``out[a, i, y] = 1 - p[i, y] <= thresholds[a, y]`` (the LAC set), in float64.

    Level-major layout (``thresholds`` (A, C), ``out`` (A, n, C)): the inner
    loop runs over classes with unit stride and vectorises; the caller returns
    the (n, C, A) view.
    """
    n, c = p.shape
    n_levels = thresholds.shape[0]
    for i in nb.prange(n):
        for a in range(n_levels):
            for j in range(c):
                out[a, i, j] = 1.0 - np.float64(p[i, j]) <= thresholds[a, j]


# Each kernel is compiled twice from one body: parallel (prange) and serial
# (prange runs as range), and :func:`pick` chooses by size.
_FAST = dict(fastmath=set(LOOP_FASTMATH))  # reassociation for vectorised sums; no NaN/inf assumptions
_KERNELS = {
    name: (nb.njit(parallel=True, **options, **_JIT)(fn), nb.njit(**options, **_JIT)(fn))
    for name, fn, options in (("true_class_scores", _true_class_scores, _FAST),
                              ("adaptive_sets", _adaptive_sets, _FAST),
                              ("lac_sets", _lac_sets, _FAST),
                              ("row_checks", _row_checks, _FAST))
}


def pick(name, n_elements):
    """The parallel kernel ``name`` for large inputs, the serial one for small."""
    parallel, serial = _KERNELS[name]
    return parallel if n_elements >= PARALLEL_MIN_ELEMENTS else serial
