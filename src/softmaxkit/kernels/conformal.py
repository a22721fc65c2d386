"""numba kernels for conformal prediction sets: APS/RAPS scores and set masks.

No policy here (see :mod:`softmaxkit.conformal`). Inputs are C-contiguous
``(n, C)`` probabilities (float32 or float64); every score is computed and
compared in float64. The values are not trusted: :func:`_row_checks` returns
each row's sum and whether it has an entry outside [0, 1], and the LAC kernels
return the same two arrays from the pass that computes their result (at
50,000 x 1000 one read of the matrix is most of a LAC fit, so a separate check
pass would nearly double it). The caller refuses bad rows; the adaptive
kernels run only on rows already checked.

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

Rounding convention (also shared): ``before(y)`` is summed in rank order, one
strictly rounded addition at a time, and ``s`` is formed by :func:`_score`, so
a class's score at prediction is bit for bit its score at calibration. The
threshold is one of the calibration scores; a test row equal to a calibration
row ties it exactly, and "ties count as inside" must not be decided by one ulp
of summation order (it was: deterministic APS dropped the true class of 0.45%
of such rows, coverage 0.8955 at a guaranteed 0.95).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from softmaxkit.kernels import parallel_regions_allowed, serial_twin, serialised
from softmaxkit.kernels._vecmath import LOOP_FASTMATH, inline_into_callers, strict_add, strict_mul

_JIT = dict(nogil=True, cache=True)

#: Below this many probabilities a kernel runs on the calling thread: starting
#: the thread pool costs more than the work (measured: 100 x 8 APS sets took
#: 4 ms in parallel on a loaded 2-core machine, 20 us serially).
PARALLEL_MIN_ELEMENTS = 1 << 16


def _score(before, u, p_y, rank, k_reg, lam):
    """``s(y) = before(y) + u p_y + lam max(0, rank(y) - k_reg)``, rounded the same in every kernel."""
    s = strict_add(before, strict_mul(u, p_y))
    if lam > 0.0 and rank > k_reg:
        s = strict_add(s, strict_mul(lam, np.float64(rank - k_reg)))
    return s


def _true_class_scores(p, y, u, k_reg, lam):
    """``s(y_i)`` of every row's true class, shape (n,).

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
    ``j < y``. Those classes are counted (a compare loop that vectorises), then
    only they are gathered and sorted, not the whole row: the true class
    usually ranks near the top. Their probabilities are summed largest first,
    with strict additions, as :func:`_adaptive_sets` sums them along its walk
    (equal probabilities are equal values, so their order among themselves
    does not change the sum). The sort is the price of that agreement: at
    50,000 x 1000 a fit took 0.44 s with the true class drawn from the row's
    own probabilities (0.09 s for the earlier vectorised sum in index order)
    and 1.7 s with true classes at random ranks, still less than the one
    argsort of the whole matrix that MAPIE's fit does.
    """
    n, c = p.shape
    out = np.empty(n, dtype=np.float64)
    for i in nb.prange(n):
        yi = y[i]
        py = np.float64(p[i, yi])
        ahead = 0
        for j in range(yi):
            ahead += np.int64(np.float64(p[i, j]) >= py)
        for j in range(yi + 1, c):
            ahead += np.int64(np.float64(p[i, j]) > py)
        neg = np.empty(ahead, dtype=np.float64)
        k = 0
        for j in range(c):
            v = np.float64(p[i, j])
            if v > py or (v == py and j < yi):
                neg[k] = -v
                k += 1
        neg.sort()  # largest probability first
        before = 0.0
        for r in range(ahead):
            before = strict_add(before, -neg[r])
        out[i] = _score(before, u[i], py, ahead + 1, k_reg, lam)
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
            s = _score(before, u[i], pj, r + 1, k_reg, lam)
            if s > top:
                break
            for a in range(n_levels):
                out[i, j, a] = s <= thresholds[j, a]
            before = strict_add(before, pj)


def _row_sum_and_top_bits(p, bits, i):
    """Row ``i``'s sum (float64) and the largest bit pattern of its entries.

    ``bits`` is ``p`` viewed as unsigned integers of the same width. A
    non-negative float orders like its bit pattern read as an unsigned integer,
    and every other value has a larger pattern: a negative number or ``-0.0``
    (the sign bit is the top bit), NaN and ``+inf`` (the exponent is all ones).
    So the row is in [0, 1] exactly when its largest pattern is at most the
    pattern of 1.0 (but for ``-0.0``, which the caller's slow path accepts).
    An unsigned max reduction vectorises to one instruction per vector, where
    a NaN-propagating float min and max cost several (measured at 50,000 x
    1000 float64 on 2 threads: check and sum 50 ms, 76 ms with the two float
    maxima, 42 ms for the sum alone). Inlined into each kernel
    (:func:`~softmaxkit.kernels._vecmath.inline_into_callers`), so a compiling
    and a cache-loading process sum in one order.
    """
    inline_into_callers()
    c = p.shape[1]
    total = 0.0
    top = bits[i, 0]
    for j in range(c):
        total += np.float64(p[i, j])
        w = bits[i, j]
        top = w if w > top else top
    return total, top


def _row_checks(p, bits, one):
    """Per row: the sum (float64) and whether an entry is outside [0, 1], NaN (or ``-0.0``). One pass.

    ``bits`` is ``p`` viewed as unsigned integers and ``one`` the pattern of
    1.0 in that width (see :func:`_row_sum_and_top_bits`). The outputs are
    ``np.empty`` (every entry is written): under ``parallel=True`` a
    ``np.zeros`` is one more parallel region, a fork and join of the threads.
    """
    n = p.shape[0]
    sums = np.empty(n, dtype=np.float64)
    bad = np.empty(n, dtype=np.bool_)
    for i in nb.prange(n):
        total, top = _row_sum_and_top_bits(p, bits, i)
        sums[i] = total
        bad[i] = top > one
    return sums, bad


def _lac_scores(p, bits, one, y):
    """The LAC score ``1 - p[i, y_i]`` (float64) of every row, with :func:`_row_checks` in the same pass.

    Returns ``(sums, bad, scores)``. Fitting LAC needs one entry per row, but
    the checks read the whole matrix; fused, the matrix is read once.
    """
    n = p.shape[0]
    sums = np.empty(n, dtype=np.float64)
    bad = np.empty(n, dtype=np.bool_)
    scores = np.empty(n, dtype=np.float64)
    for i in nb.prange(n):
        total, top = _row_sum_and_top_bits(p, bits, i)
        sums[i] = total
        bad[i] = top > one
        scores[i] = 1.0 - np.float64(p[i, y[i]])
    return sums, bad, scores


def _lac_sets(p, bits, one, thresholds, out):
    """Write ``out[a, i, y] = 1 - p[i, y] <= thresholds[a, y]`` (the LAC set) in float64, checking the rows.

    Returns ``(sums, bad)`` of :func:`_row_checks`, computed in the same pass:
    each row is checked, then compared while it is still in L1 cache, so the
    matrix is read from memory once. Level-major layout (``thresholds``
    (A, C), ``out`` (A, n, C)): the inner loop runs over classes with unit
    stride and vectorises; the caller returns the (n, C, A) view.
    """
    n, c = p.shape
    n_levels = thresholds.shape[0]
    sums = np.empty(n, dtype=np.float64)
    bad = np.empty(n, dtype=np.bool_)
    for i in nb.prange(n):
        total, top = _row_sum_and_top_bits(p, bits, i)
        sums[i] = total
        bad[i] = top > one
        for a in range(n_levels):
            for j in range(c):
                out[a, i, j] = 1.0 - np.float64(p[i, j]) <= thresholds[a, j]
    return sums, bad


# Each kernel is compiled twice from one body: parallel (prange) and serial (prange runs as
# range; :func:`softmaxkit.kernels.serial_twin`, which gives it its own disk-cache entry), and
# :func:`pick` chooses by size.
_FAST = dict(fastmath=set(LOOP_FASTMATH))  # reassociation for vectorised sums; no NaN/inf assumptions
# The row check shared by the kernels below (inlined into each: inline_into_callers).
_row_sum_and_top_bits = nb.njit(**_FAST, **_JIT)(_row_sum_and_top_bits)
_score = nb.njit(**_JIT)(_score)
_KERNELS = {
    name: nb.njit(parallel=True, **options, **_JIT)(fn)
    for name, fn, options in (("true_class_scores", _true_class_scores, _FAST),
                              ("adaptive_sets", _adaptive_sets, _FAST),
                              ("lac_scores", _lac_scores, _FAST),
                              ("lac_sets", _lac_sets, _FAST),
                              ("row_checks", _row_checks, _FAST))
}
_KERNELS = {name: (kernel, serial_twin(kernel)) for name, kernel in _KERNELS.items()}


def pick(name, n_elements):
    """The parallel kernel ``name`` for large inputs, the serial one for small (and in a process
    forked after numba's threads started: :func:`softmaxkit.kernels.parallel_regions_allowed`)."""
    parallel, serial = _KERNELS[name]
    return serialised(parallel) if n_elements >= PARALLEL_MIN_ELEMENTS and parallel_regions_allowed() else serial
