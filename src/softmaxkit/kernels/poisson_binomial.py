"""numba kernel for the exact per-class count test: Poisson-binomial pmfs, truncated, updated row by row.

No validation and no policy here (see :func:`softmaxkit.cli._adapters.class_count_test`). Under
calibration, class ``k``'s count over the rows is a sum of independent Bernoulli(``p_ik``) draws: a
Poisson-binomial variable ``X_k``. Its pmf is built by the recursive formula over the rows (one of
the exact methods compared by Hong 2013, "On computing the distribution function for the Poisson
binomial distribution", Comput. Stat. Data Anal. 59, 41-51): adding a row of probability ``p`` maps
``f(j) -> f(j) (1 - p) + f(j - 1) p``. Blockwise, so the scores are read once and never whole.

Only the states the test reads are kept: for an observed count ``o``, ``X = 0, ..., o`` and one
absorbing state ``X >= o + 1``. Both tails are then sums of non-negative terms,
``P(X <= o) = f(0) + ... + f(o)`` and ``P(X >= o) = f(o) + f(>= o + 1)``, so neither loses digits to
``1 - (...)`` when it is tiny. The cost is about ``o + 2`` multiply-adds per row and class.

The state layout, its NumPy helpers and the NumPy twin of :func:`add_rows` (for inputs too small to
pay numba's import) live in :mod:`softmaxkit.kernels.count_states`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True)

#: Classes per tile of the update: one 64-byte cache line of a float64 row of probabilities.
_TILE = 8
#: Rows folded into one factor before a pass over a class's states (see :func:`add_rows`).
_BATCH = 8


@nb.njit(parallel=True, **_JIT)
def add_rows(pmf, offsets, p):
    """Add the rows of ``p`` to every tracked class's truncated pmf, in place.

    Parameters
    ----------
    pmf : (S,) float64
        The classes' states, back to back (:func:`softmaxkit.kernels.count_states.state_offsets`): ``X = 0, ..., o_k`` then
        ``X >= o_k + 1``.
    offsets : (K + 1,) int64
        Class ``k``'s states are ``pmf[offsets[k]:offsets[k + 1]]``; an empty range is not tracked.
    p : (n, K) float64, C-contiguous
        Probabilities in [0, 1]. Entries of exactly 0 change nothing and are skipped.

    Notes
    -----
    Rows are added :data:`_BATCH` at a time: first the pmf ``c`` of the batch's own count (the same
    recursion, ``_BATCH + 1`` numbers), then one pass over the class's states,
    ``f(j) <- sum_d f(j - d) c(d)``, and into ``X >= o + 1`` each ``f(s)`` times ``P(batch >= o + 1 - s)``.
    One pass per 8 rows instead of one per row took less than half the time (50,000 x 1000, about 50
    states a class, one thread: 1.7-1.8 s per row, 0.76-1.1 s per 8 rows). Classes are split into tiles
    of :data:`_TILE`, one cache line of each row; the tiles run in parallel. Every number is a sum of
    non-negative products (the tails are suffix sums of ``c``, never ``1 - ...``): no cancellation.
    """
    n, k_all = p.shape
    longest = 0
    for k in range(k_all):
        longest = max(longest, offsets[k + 1] - offsets[k])
    for tile in nb.prange((k_all + _TILE - 1) // _TILE):
        k0 = tile * _TILE
        k1 = min(k0 + _TILE, k_all)
        old = np.zeros(_BATCH + longest)  # f(-_BATCH..-1) = 0, then a class's states before the batch
        c = np.empty(_BATCH + 1)  # pmf of the batch's count
        tail = np.empty(_BATCH + 1)  # tail[d] = P(batch count >= d)
        for i0 in range(0, n, _BATCH):
            for k in range(k0, k1):
                a = offsets[k]
                m = offsets[k + 1] - a  # states; the last is the absorbing X >= o + 1
                if m == 0:
                    continue
                c[0] = 1.0
                for d in range(1, _BATCH + 1):
                    c[d] = 0.0
                hits = 0
                for t in range(min(_BATCH, n - i0)):
                    q = p[i0 + t, k]
                    if q == 0.0:
                        continue
                    hits += 1
                    r = 1.0 - q
                    for d in range(hits, 0, -1):  # downwards: c(d - 1) is still the old value
                        c[d] = c[d] * r + c[d - 1] * q
                    c[0] *= r
                if hits == 0:
                    continue
                total = 0.0
                for d in range(_BATCH, 0, -1):
                    total += c[d]
                    tail[d] = total
                for j in range(m):
                    old[_BATCH + j] = pmf[a + j]
                for j in range(m - 1):
                    acc = 0.0
                    for d in range(_BATCH + 1):
                        acc += old[_BATCH + j - d] * c[d]
                    pmf[a + j] = acc
                acc = old[_BATCH + m - 1]
                for d in range(1, _BATCH + 1):
                    acc += old[_BATCH + m - 1 - d] * tail[d]
                pmf[a + m - 1] = acc
