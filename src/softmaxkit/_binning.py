"""Confidence binning for calibration metrics: edges, bin assignment, per-bin sums.

One convention everywhere (metrics, bootstrap, plots):

* bins are half-open on the right, ``[e_b, e_{b+1})``, except the last, which
  is closed, ``[e_{B-1}, 1]``: a confidence of exactly 1.0 is in the last bin
  and 0.0 in the first. (torchmetrics puts 1.0 in an extra, hidden bin; see
  :func:`softmaxkit.metrics.expected_calibration_error`.)
* ``edges[0] == 0`` and ``edges[-1] == 1`` always.
* ``"uniform"``: ``edges = linspace(0, 1, n_bins + 1)``.
* ``"quantile"``: interior edges are the weighted inverted-CDF quantiles of the
  confidences at ``b / n_bins`` (each one is an observed confidence), minus
  duplicates and minus any edge ``<= min(conf)``. Ties therefore merge bins
  instead of creating empty or zero-width ones, so there may be fewer than
  ``n_bins`` bins, and every bin holds at least one sample.
"""

from __future__ import annotations

import numpy as np

BINNINGS = ("uniform", "quantile")


def bin_edges(conf: np.ndarray, weight: np.ndarray, *, n_bins: int, binning: str) -> np.ndarray:
    """Bin edges for the confidences ``conf`` (1-D, in [0, 1]), float64, increasing.

    ``weight`` (same shape, >= 0) only matters for quantile binning; samples of
    weight 0 do not place edges.
    """
    if binning == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    keep = weight > 0
    c = conf[keep]
    if c.size == 0:
        return np.array([0.0, 1.0])
    order = np.argsort(c, kind="stable")
    c = c[order]
    cw = np.cumsum(weight[keep][order])
    # Inverted CDF: the smallest observed value whose cumulative weight reaches q.
    q = cw[-1] * np.arange(1, n_bins) / n_bins
    idx = np.minimum(np.searchsorted(cw, q, side="left"), c.size - 1)
    interior = np.unique(c[idx])
    # An edge at min(conf) would leave [0, min) empty; an edge at 1 duplicates the last.
    interior = interior[(interior > c[0]) & (interior < 1.0)]
    return np.concatenate(([0.0], interior, [1.0]))


def assign_bins(conf: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each confidence (int64, same shape), with 1.0 in the last bin."""
    n_bins = edges.size - 1
    idx = np.searchsorted(edges, conf, side="right") - 1
    return np.clip(idx, 0, n_bins - 1)


def bin_sums(
    bins: np.ndarray, conf: np.ndarray, hit: np.ndarray, weight: np.ndarray, n_bins: int
) -> np.ndarray:
    """``[sum w, sum w * conf, sum w * hit]`` per bin, shape ``(n_bins, 3)``, float64."""
    return np.stack(
        [
            np.bincount(bins, weights=weight, minlength=n_bins),
            np.bincount(bins, weights=weight * conf, minlength=n_bins),
            np.bincount(bins, weights=weight * hit, minlength=n_bins),
        ],
        axis=-1,
    )
