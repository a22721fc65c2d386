"""The calibration-error estimator, its bootstrap interval and its calibrated-world simulations.

Everything works on per-bin sums ``S[..., g, b, :] = [sum w, sum w*conf,
sum w*hit, sum w^2]`` (see :func:`softmaxkit._binning.bin_sums`), so the point
estimate, each bootstrap resample and each simulated perfectly calibrated
data set go through the one function :func:`error_from_sums`.

Weights: an integer weight acts exactly like repeating the row in every
per-bin sum and in the ``l1``, ``max`` and plain ``l2`` errors. Everything
that models sampling noise treats the weights as relative (importance)
weights instead, each row one draw: the debiasing of ``l2`` and the per-bin
debiasing of the ``l1`` interval (a bin's sampling variance uses Kish's
effective count ``n_eff = (sum w)^2 / sum w^2``: scaling every weight by a
constant changes nothing, ``n_eff`` equals the row count for equal weights,
and a row of weight 2 counts less than two rows of weight 1), the bootstrap
(it resamples rows, each keeping its weight) and the calibrated worlds (one
label drawn per row). Counts of repeated rows must be expanded into the rows
for those (:func:`softmaxkit.metrics.expected_calibration_error` warns).
"""

from __future__ import annotations

import numpy as np

from softmaxkit.kernels import fork_safe

NORMS = ("l1", "l2", "max")

#: Bytes of bootstrap bin sums held at once: resamples are summed in chunks of about this size
#: (at 5000 classes x 15 bins a resample's sums are 2.4 MB; all 1000 at once were 2.4 GB).
BOOTSTRAP_CHUNK_BYTES = 64 * 2**20


def error_from_sums(sums: np.ndarray, *, norm: str, debias: bool) -> np.ndarray:
    """Calibration error from bin sums of shape ``(..., G, B, 4)``; returns shape ``(...)``.

    With ``W_b, C_b, H_b`` the bin sums of weight, weighted confidence and
    weighted hits, ``W`` their total per group, ``acc_b = H_b / W_b`` and
    ``conf_b = C_b / W_b``:

    * ``l1``:  ``sum_b (W_b / W) |acc_b - conf_b|`` (Naeini et al. 2015; Guo et al. 2017);
    * ``l2``:  ``sqrt(sum_b (W_b / W) [(acc_b - conf_b)^2 - d_b])`` with the
      Kumar et al. (2019) debiasing term ``d_b = acc_b (1 - acc_b) / (n_b - 1)``
      (0 when ``n_b <= 1`` or ``debias`` is false), ``n_b = W_b^2 / sum_b w^2``
      the bin's effective count (the row count for unit weights; see
      :func:`bin_variance`); a negative total gives 0;
    * ``max``: ``max_b |acc_b - conf_b|`` over non-empty bins (MCE).

    Groups (classes, in classwise mode) are averaged: ``l1`` and the squared
    ``l2`` are means over ``G`` (Kull et al. 2019's classwise-ECE; Kumar et al.'s
    marginal calibration error), ``max`` is the max over groups.
    """
    w = sums[..., 0]
    nonempty = w > 0
    safe_w = np.where(nonempty, w, 1.0)
    diff = (sums[..., 2] - sums[..., 1]) / safe_w  # acc_b - conf_b, (..., G, B)
    total = np.sum(w, axis=-1)  # (..., G)
    safe_total = np.where(total > 0, total, 1.0)
    if norm == "max":
        return np.max(np.where(nonempty, np.abs(diff), 0.0), axis=(-2, -1))
    if norm == "l1":
        per_group = np.sum(w * np.abs(diff), axis=-1) / safe_total
        return np.mean(per_group, axis=-1)
    sq = diff * diff
    if debias:
        sq = sq - bin_variance(sums)
    per_group = np.sum(w * sq, axis=-1) / safe_total
    return np.sqrt(np.maximum(np.mean(per_group, axis=-1), 0.0))


def bin_variance(sums: np.ndarray) -> np.ndarray:
    """Each bin's estimated variance of ``acc_b``, ``acc_b (1 - acc_b) / (n_b - 1)``; shape ``(..., G, B)``.

    ``n_b = W_b^2 / sum_b w^2`` is Kish's effective sample size: the row count
    for unit weights, and unchanged when every weight is scaled by a constant
    (``W_b - 1`` was neither: weights of ``1 / N`` switched the debiasing off
    and weights of 10 made it ten times weaker). 0 where ``n_b <= 1``. A weight
    is thereby a relative weight here, not a repetition count (see the module
    docstring).
    """
    w, w2 = sums[..., 0], sums[..., 3]
    n_eff = (w * w) / np.where(w2 > 0, w2, 1.0)  # n / n == n exactly for unit weights: old values kept
    big = n_eff > 1
    acc = sums[..., 2] / np.where(w > 0, w, 1.0)
    return np.where(big, acc * (1 - acc) / np.where(big, n_eff - 1, 1.0), 0.0)


_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))


def _folded_gap(x: np.ndarray, sd: np.ndarray, *, n_newton: int = 10) -> np.ndarray:
    """The gap ``g >= 0`` whose folded normal ``|g + sd Z|`` has mean ``x`` (0 when ``x <= sd sqrt(2/pi)``).

    ``E|g + sd Z| = sd sqrt(2/pi) exp(-g^2 / 2 sd^2) + g erf(g / (sd sqrt 2))`` rises in ``g`` with slope
    ``erf(g / (sd sqrt 2))``; Newton's method from ``sqrt(x^2 - sd^2)`` (the root-mean-square guess,
    which lies above the root) is within 1e-14 sd after 10 steps. ``sd == 0`` gives ``x`` itself.
    """
    from scipy.special import erf  # here, not at module level: `import softmaxkit.metrics` stays light

    noisy = sd > 0
    s = np.where(noisy, sd, 1.0)
    g = np.sqrt(np.maximum(x * x - s * s, 0.0))
    for _ in range(n_newton):
        z = g / (s * np.sqrt(2.0))
        excess = s * _SQRT_2_OVER_PI * np.exp(-z * z) + g * erf(z) - x
        g = np.maximum(g - excess / np.maximum(erf(z), 1e-3), 0.0)
    return np.where(noisy, np.where(x <= s * _SQRT_2_OVER_PI, 0.0, g), x)


def _gap_variance(sums: np.ndarray) -> np.ndarray:
    """Variance of each bin's ``acc_b - conf_b`` for :func:`debiased_l1_from_sums`; shape ``(..., G, B)``.

    The larger of :func:`bin_variance` (the sample's) and ``conf_b (1 - conf_b) / n_b``, the variance
    the bin would have were it calibrated. The sample's alone is 0 for a bin of one row or of all hits
    or all misses, which small classwise bins mostly are: their noise went uncorrected and the interval
    sat above the truth (coverage 0.71 at n = 50, 3 classes, 15 bins; 0.94 with the larger variance).
    """
    w = sums[..., 0]
    safe_w = np.where(w > 0, w, 1.0)
    conf = sums[..., 1] / safe_w
    n_eff = (w * w) / np.where(sums[..., 3] > 0, sums[..., 3], 1.0)
    calibrated = np.where(w > 0, conf * (1.0 - conf) / np.where(n_eff > 0, n_eff, 1.0), 0.0)
    return np.maximum(np.maximum(bin_variance(sums), calibrated), 0.0)  # acc (1 - acc) may round below 0


def debiased_l1_from_sums(sums: np.ndarray) -> np.ndarray:
    """``l1`` error from bin sums ``(..., G, B, 4)`` with each bin's ``|acc_b - conf_b|`` debiased; shape ``(...)``.

    The binned ``l1`` sums per-bin ``|acc_b - conf_b|``, each pushed up by its sampling noise (by
    ``sd_b sqrt(2/pi)`` where the true gap is 0, ``sd_b^2`` from :func:`_gap_variance`). A
    bootstrap estimates that push at the noisy gap rather than the true one, so it falls short for
    the many near-zero bins of a classwise error. Here each bin's gap is replaced by the gap whose
    folded normal has the observed mean (:func:`_folded_gap`), which removes most of it per bin.
    Used only for the interval (see :func:`softmaxkit.metrics._bias_corrected_interval`); the
    point estimate stays :func:`error_from_sums`.
    """
    w = sums[..., 0]
    safe_w = np.where(w > 0, w, 1.0)
    gap = np.abs(sums[..., 2] - sums[..., 1]) / safe_w
    sd = np.sqrt(_gap_variance(sums))
    total = np.sum(w, axis=-1)
    per_group = np.sum(w * _folded_gap(gap, sd), axis=-1) / np.where(total > 0, total, 1.0)
    return np.mean(per_group, axis=-1)


def bootstrap_errors(
    bins: np.ndarray,
    conf: np.ndarray,
    hit: np.ndarray,
    weight: np.ndarray,
    *,
    n_bins: int,
    n_resamples: int,
    seed: int,
    norm: str,
    debias: bool,
    debiased_l1: bool = False,
) -> np.ndarray:
    """The estimator on ``n_resamples`` bootstrap resamples of the rows, shape ``(R,)``.

    Bin edges stay those of the full sample (re-placing quantile edges per
    resample would cost a sort each and barely moves the interval).
    ``debiased_l1``: :func:`debiased_l1_from_sums` instead (``norm`` and ``debias`` unused).
    The resamples' bin sums are made and reduced in chunks of about
    :data:`BOOTSTRAP_CHUNK_BYTES`; each resample has its own random stream, so
    the result does not depend on the chunking.
    """
    from softmaxkit.kernels import calibration as kernels  # numba: loaded on first use

    # Each row is a hit in at most one group (top-label: the prediction; classwise: its label).
    hit_group = np.where(hit.any(axis=1), np.argmax(hit, axis=1), -1).astype(np.int64)
    small_bins = bins.astype(np.uint8 if n_bins <= 256 else np.int32)  # fewer bytes to stream
    kernel = fork_safe(kernels.bootstrap_bin_sums)
    per_resample = bins.shape[1] * n_bins * 4 * 8  # bytes of one resample's (G, B, 4) sums
    chunk = max(1, BOOTSTRAP_CHUNK_BYTES // per_resample)
    out = np.empty(n_resamples)
    for first in range(0, n_resamples, chunk):
        count = min(chunk, n_resamples - first)
        sums = kernel(small_bins, conf, hit_group, weight, n_bins, first, count, seed)
        out[first : first + count] = (
            debiased_l1_from_sums(sums) if debiased_l1 else error_from_sums(sums, norm=norm, debias=debias)
        )
    return out


def calibrated_errors(
    bins: np.ndarray,
    conf: np.ndarray,
    weight: np.ndarray,
    sums: np.ndarray,
    *,
    n_bins: int,
    n_sims: int,
    seed: int,
    norm: str,
    debias: bool,
    categorical: bool,
) -> np.ndarray:
    """The estimator in ``n_sims`` perfectly calibrated worlds with these confidences, shape ``(n_sims,)``.

    Labels are redrawn from the predicted probabilities themselves (so the
    model is calibrated by construction), the bins and their weight and
    confidence sums are kept, and only the hit sums change. Their mean is the
    noise floor; their upper quantile is the test of perfect calibration that
    decides whether the interval reaches 0. The worlds are simulated and
    reduced in chunks of about :data:`BOOTSTRAP_CHUNK_BYTES` of bin sums (200
    worlds at 5000 classes x 15 bins held 480 MB at once); each world has its
    own random stream, so the result does not depend on the chunking.
    """
    from softmaxkit.kernels import calibration as kernels

    kernel = fork_safe(kernels.simulated_hit_sums)
    chunk = max(1, BOOTSTRAP_CHUNK_BYTES // (sums[..., 0].size * 4 * 8))  # bytes of one world's (G, B, 4) sums
    out = np.empty(n_sims)
    for first in range(0, n_sims, chunk):
        count = min(chunk, n_sims - first)
        sim = np.broadcast_to(sums, (count,) + sums.shape).copy()  # (S, G, B, 4)
        sim[..., 2] = kernel(bins, conf, weight, n_bins, first, count, seed, categorical)
        out[first : first + count] = error_from_sums(sim, norm=norm, debias=debias)
    return out


#: One-sided level of :func:`calibration_test`: an estimate above the 95th percentile of the
#: calibrated worlds is evidence of miscalibration at the 5% level.
TEST_LEVEL = 0.95


def calibration_test(value: float, calibrated: np.ndarray, *, level: float = TEST_LEVEL) -> dict:
    """What the perfectly calibrated worlds of :func:`calibrated_errors` say about an estimate ``value``.

    The noise floor, their mean, is where a perfectly calibrated model's estimate lands *on
    average*: about 4 in 10 of them land above it (audit: 39% at the demo's 114 rows, and 24.5% at
    least as high as its ECE 0.0299, which was read "above the noise floor, so some miscalibration
    may remain"). So the floor describes the noise; an inference of miscalibration needs a test,
    here the Monte Carlo p-value ``(1 + #{worlds >= value}) / (1 + S)`` (Davison & Hinkley 1997,
    eq. 4.11), which is never 0, rejecting at ``p <= 1 - level``. The threshold is the world that
    rule puts at the edge: ``value > threshold`` exactly when ``p <= 1 - level``, so a printed "above
    the threshold" never comes with ``p > 0.05`` (review: with the interpolated 95% quantile of 200
    worlds, values between it and the 10th largest world were called miscalibrated at p = 0.055).

    Parameters
    ----------
    value : float
        The estimate on the real labels (the same norm, binning and debiasing as the worlds).
    calibrated : ndarray, shape (S,)
        The estimate in ``S >= 1`` perfectly calibrated worlds (:func:`calibrated_errors`).
    level : float, default 0.95
        One-sided level of the test, in (0, 1).

    Returns
    -------
    dict
        ``noise_floor`` (mean of ``calibrated``), ``threshold`` (its ``m + 1``-th largest value,
        ``m = floor((1 - level)(1 + S)) - 1``, about its ``level`` quantile; ``inf`` when ``S`` is
        too small for any estimate to reach ``p <= 1 - level``), ``p_value`` and ``miscalibrated``
        (``p_value <= 1 - level``, the same as ``value > threshold``: perfect calibration rejected
        at ``1 - level``; an estimate between the floor and the threshold is not evidence of it).

    Raises
    ------
    ValueError
        ``calibrated`` empty or not finite, or ``level`` outside (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> worlds = np.linspace(0.01, 0.05, 101)           # floor 0.03, 5th largest 0.0484
    >>> test = calibration_test(0.04, worlds)
    >>> round(test["noise_floor"], 3), round(test["threshold"], 3), test["miscalibrated"]
    (0.03, 0.048, False)
    >>> round(test["p_value"], 3)                        # 26 of 101 worlds at least 0.04
    0.265
    """
    worlds = np.asarray(calibrated, dtype=np.float64).ravel()
    if worlds.size == 0 or not np.all(np.isfinite(worlds)):
        raise ValueError(f"calibrated: need at least one finite simulated estimate, got {worlds.size} values "
                         f"({int(np.sum(~np.isfinite(worlds)))} not finite)")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1) (0.95: a 5% test), got {level!r}")
    # p <= alpha  <=>  #{worlds >= value} <= m  <=>  value > the (m + 1)-th largest world
    allowed = int(np.floor((1.0 - level) * (1 + worlds.size) + 1e-9)) - 1
    threshold = float(np.sort(worlds)[worlds.size - 1 - allowed]) if allowed >= 0 else np.inf
    p_value = float((1 + np.count_nonzero(worlds >= value)) / (1 + worlds.size))
    return {
        "noise_floor": float(np.mean(worlds)),
        "threshold": threshold,
        "p_value": p_value,
        "miscalibrated": bool(p_value <= 1.0 - level + 1e-12),
    }
