"""The states of the exact per-class count test, in NumPy: layout, start, tails, and the row update.

Class ``k``'s count over the rows is a Poisson-binomial variable ``X_k``; its pmf is kept only over
``X = 0, ..., o_k`` and one absorbing state ``X >= o_k + 1`` (``o_k``: the observed count), classes
back to back in one flat float64 array (:func:`state_offsets`). :func:`add_rows` is the NumPy twin of
the numba kernel :func:`softmaxkit.kernels.poisson_binomial.add_rows` (same contract, same numbers to
rounding): one vectorised step per row, so it suits the few rows of a small command, which must not
wait for numba's import (about 2.4 s, and it imports SciPy). No validation and no policy here (see
:func:`softmaxkit.cli._adapters.summarize`).
"""

from __future__ import annotations

import numpy as np


def state_offsets(top: np.ndarray) -> np.ndarray:
    """Where each class's states start in the flat state array, shape ``(K + 1,)``.

    ``top[k]``: the observed count ``o_k`` whose tails are wanted, or ``-1`` for a class not tracked
    (no states). Class ``k`` holds ``o_k + 2`` states, ``offsets[k]:offsets[k + 1]``.
    """
    sizes = np.where(np.asarray(top) >= 0, np.asarray(top, dtype=np.int64) + 2, 0)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def initial_states(offsets: np.ndarray) -> np.ndarray:
    """The pmfs before any row: all mass on ``X = 0``."""
    pmf = np.zeros(offsets[-1])
    tracked = offsets[1:] > offsets[:-1]
    pmf[offsets[:-1][tracked]] = 1.0
    return pmf


def add_rows(pmf: np.ndarray, offsets: np.ndarray, p: np.ndarray) -> None:
    """Add the rows of ``p`` (``(n, K)`` probabilities) to every tracked class's truncated pmf, in place.

    Per row, with ``q`` the class's probability: ``f(j) <- f(j) (1 - q) + f(j - 1) q`` for the states
    ``j <= o``, and the absorbing state keeps its mass, ``f(>= o + 1) <- f(>= o + 1) + f(o) q``. The
    classes are padded to one width for the step; the mass shifted past a class's absorbing state is
    dropped (it is already counted there).
    """
    sizes = np.diff(offsets)
    tracked = np.flatnonzero(sizes)
    if not len(tracked) or not len(p):
        return
    m = sizes[tracked]
    width = int(m.max())
    valid = np.arange(width) < m[:, None]
    index = (offsets[tracked][:, None] + np.arange(width))[valid]
    f = np.zeros((len(tracked), width))
    f[valid] = pmf[index]
    rows, last = np.arange(len(tracked)), m - 1
    for q in np.asarray(p, dtype=np.float64)[:, tracked]:
        new = f * (1.0 - q)[:, None]
        new[:, 1:] += f[:, :-1] * q[:, None]
        new[rows, last] += f[rows, last] * q
        new[~valid] = 0.0
        f = new
    pmf[index] = f[valid]


def two_sided_p(pmf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``min(1, 2 min(P(X <= o), P(X >= o)))`` per class, shape ``(K,)``; NaN where not tracked."""
    k = len(offsets) - 1
    out = np.full(k, np.nan)
    for j in range(k):
        a, b = offsets[j], offsets[j + 1]
        if b > a:
            f = pmf[a:b]
            lower = f[:-1].sum()  # P(X <= o)
            upper = f[-2] + f[-1]  # P(X >= o)
            out[j] = min(1.0, 2.0 * min(lower, upper))
    return out
