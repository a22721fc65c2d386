"""numba kernels for calibration: temperature-scaling moments, the prior's runner-up class and resampled bin sums.

No validation and no policy here (see :mod:`softmaxkit.calibration` and
:mod:`softmaxkit._ece` for those). Inputs are C-contiguous and already checked.

Why kernels at all: fitting a temperature on 50,000 x 1000 logits touches
5e7 numbers per Newton step, and a 1000-resample bootstrap of an ECE at
n = 50,000 draws 5e7 indices. Done with NumPy temporaries either costs
several passes over memory per step; here each is one fused, parallel loop
(``exp`` is the vectorised polynomial of
:mod:`softmaxkit.kernels._vecmath`).

Random numbers come from a counter-based generator (SplitMix64 seeded with
``(seed, resample index)``), so results do not depend on the number of
threads or on how ``prange`` splits the work.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from softmaxkit.kernels._vecmath import LOOP_FASTMATH, like, vexp

_JIT = dict(nogil=True, cache=True)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(**_JIT)
def _splitmix64(state):
    """One SplitMix64 step (Steele, Lea & Flood 2014): returns (new_state, output)."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


@nb.njit(**_JIT)
def _stream_start(seed, index):
    """A well-mixed starting state for stream ``index`` of ``seed``."""
    state = np.uint64(seed) ^ (np.uint64(index) * _MIX2)
    state, out = _splitmix64(state)
    return out


# --------------------------------------------------------------------------- temperature


@nb.njit(parallel=True, fastmath=set(LOOP_FASTMATH), **_JIT)
def temperature_moments(x, row_max, weight, beta):
    """Weighted sums of the per-row cumulants of ``d = x - max`` under ``softmax(beta * x)``.

    Parameters
    ----------
    x : (N, C) float32 or float64
        Logits; ``-inf`` entries are classes of probability 0 and contribute nothing.
    row_max : (N,) float64
        ``max_j x[i, j]`` (finite).
    weight : (N,) float64
        Row weights; rows of weight 0 are skipped.
    beta : float > 0
        Inverse temperature.

    Returns
    -------
    (4,) float64
        ``sum_i w_i [log Z_i, E[d_i], Var[d_i], kappa3[d_i]]`` where ``Z_i = sum_j
        exp(beta d_ij)`` and the moments are under ``p_ij = exp(beta d_ij) / Z_i``.
        ``d(log Z)/d beta = E[d]``, ``d E[d] / d beta = Var[d]`` and ``d Var[d] /
        d beta = kappa3[d]``: the NLL and its first three beta-derivatives, from
        one read of ``x``.

    Notes
    -----
    ``d`` and ``exp`` are computed in the logits' dtype (the vectorised
    polynomial ``vexp``: within 2 ulp in float32, 1 in float64), the four
    sums in float64.
    The max entry has ``d = 0``, so ``Z_i >= 1`` and the variance
    ``E[d^2] - E[d]^2`` loses little to cancellation.
    """
    n, c = x.shape
    per_row = np.zeros((n, 4))
    for i in nb.prange(n):
        w = weight[i]
        if w == 0.0:
            continue
        m = like(x, row_max[i])
        b = like(x, beta)
        zero = like(x, 0.0)
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(c):
            d = x[i, j] - m  # <= 0
            e = vexp(b * d)  # exp(-inf) = 0
            d = d if d > -np.inf else zero  # so that 0 * -inf never makes NaN
            e64 = np.float64(e)
            d64 = np.float64(d)
            ed = e64 * d64
            edd = ed * d64
            s0 += e64
            s1 += ed
            s2 += edd
            s3 += edd * d64
        m1 = s1 / s0
        m2 = s2 / s0
        per_row[i, 0] = w * math.log(s0)
        per_row[i, 1] = w * m1
        per_row[i, 2] = w * max(m2 - m1 * m1, 0.0)
        per_row[i, 3] = w * (s3 / s0 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1)
    out = np.zeros(4)
    for i in range(n):
        for k in range(4):
            out[k] += per_row[i, k]
    return out


@nb.njit(parallel=True, **_JIT)
def runner_up_and_min(x, labels):
    """Per row: the column of the largest finite logit other than the label's, and the least finite logit.

    Parameters
    ----------
    x : (N, C) float32 or float64
        Logits; ``-inf`` entries (classes of probability 0) are skipped.
    labels : (N,) int64
        Each row's label column.

    Returns
    -------
    runner_up : (N,) int64
        ``argmax_{j != labels[i], x[i, j] > -inf} x[i, j]`` (the first on ties),
        ``-1`` where no other class is finite.
    row_min : (N,) float64
        ``min_j x[i, j]`` over the finite entries (``inf`` if none).
    """
    n, c = x.shape
    runner_up = np.full(n, -1, dtype=np.int64)
    row_min = np.empty(n)
    for i in nb.prange(n):
        label = labels[i]
        best = -np.inf
        low = np.inf
        for j in range(c):
            v = np.float64(x[i, j])
            if v == -np.inf:
                continue
            low = min(low, v)
            if j != label and (runner_up[i] < 0 or v > best):
                best = v
                runner_up[i] = j
        row_min[i] = low
    return runner_up, row_min


# --------------------------------------------------------------------------- resampled bin sums


@nb.njit(parallel=True, **_JIT)
def bootstrap_bin_sums(bins, conf, hit_group, weight, n_bins, first, n_resamples, seed):
    """Per-bin sums over bootstrap resamples ``first .. first + n_resamples - 1`` of the rows.

    Parameters
    ----------
    bins : (N, G) int
        Bin of each row in each of ``G`` groups (1 for top-label, C for classwise).
    conf : (N, G) float
        Confidence of each row in each group.
    hit_group : (N,) int64
        The one group in which the row is a hit (top-label: 0 if the prediction
        is right; classwise: the label), or -1 for none.
    weight : (N,) float64
        A resample draws N rows uniformly with replacement; each drawn row keeps
        its weight.
    first : int
        Index of the first resample: resample ``r`` draws from its own stream
        ``(seed, r)``, so chunks of resamples give the same sums as one call.

    Returns
    -------
    (R, G, n_bins, 4) float64
        ``[sum w, sum w * conf, sum w * hit, sum w^2]`` per resample, group and bin.

    Notes
    -----
    With one group the rows (a few bytes each) stay in cache, so each draw is
    accumulated directly. With many groups a row spans several cache lines, so
    the draws are first counted (multiplicities ``m_i``) and the rows are then
    streamed in order, adding ``m_i`` times each: sequential instead of random
    memory access.
    """
    n, g = bins.shape
    out = np.zeros((n_resamples, g, n_bins, 4))
    for r in nb.prange(n_resamples):
        acc = np.zeros((g, n_bins, 4))  # private to this resample: stays in L1
        state = _stream_start(seed, first + r)
        if g == 1:
            for _ in range(n):
                state, z = _splitmix64(state)
                # Lemire's multiply-shift maps 32 random bits onto [0, n) without a division.
                i = ((z >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)
                b = bins[i, 0]
                w = weight[i]
                acc[0, b, 0] += w
                acc[0, b, 1] += w * conf[i, 0]
                acc[0, b, 3] += w * w
                if hit_group[i] == 0:
                    acc[0, b, 2] += w
        else:
            mult = np.zeros(n, dtype=np.int32)
            for _ in range(n):
                state, z = _splitmix64(state)
                mult[((z >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)] += 1
            for i in range(n):
                if mult[i] == 0:
                    continue
                w = weight[i] * mult[i]
                w2 = weight[i] * weight[i] * mult[i]  # m draws of one row: m w^2, not (m w)^2
                for k in range(g):
                    b = bins[i, k]
                    acc[k, b, 0] += w
                    acc[k, b, 1] += w * conf[i, k]
                    acc[k, b, 3] += w2
                h = hit_group[i]
                if h >= 0:
                    acc[h, bins[i, h], 2] += w
        out[r] = acc
    return out


@nb.njit(parallel=True, **_JIT)
def simulated_hit_sums(bins, conf, weight, n_bins, first, n_sims, seed, categorical):
    """Per-bin ``sum w * hit`` when outcomes are drawn from the confidences themselves, for the
    simulated worlds ``first .. first + n_sims - 1`` (world ``r`` draws from its own stream
    ``(seed, r)``, so chunks of worlds give the same sums as one call).

    This is a perfectly calibrated world with the same confidences: for
    top-label (``categorical=False``, G = 1) ``hit ~ Bernoulli(conf)``; for
    classwise (``categorical=True``, ``conf`` rows are full probability vectors)
    one label ``y ~ Categorical(conf[i])`` is drawn per row and ``hit_k = [y == k]``.

    Returns
    -------
    (S, G, n_bins) float64
    """
    n, g = bins.shape
    out = np.zeros((n_sims, g, n_bins))
    for r in nb.prange(n_sims):
        acc = np.zeros((g, n_bins))
        state = _stream_start(seed, first + r)
        for i in range(n):
            state, z = _splitmix64(state)
            u = np.float64(z >> np.uint64(11)) * _TO_UNIT
            if categorical:
                cum = 0.0
                label = -1
                for k in range(g):
                    p = conf[i, k]
                    if p > 0.0:
                        label = k  # rounding: a u above the float sum lands on the last possible class
                        cum += p
                        if u < cum:
                            break
                if label >= 0:
                    acc[label, bins[i, label]] += weight[i]
            elif u < conf[i, 0]:
                acc[0, bins[i, 0]] += weight[i]
        out[r] = acc
    return out
