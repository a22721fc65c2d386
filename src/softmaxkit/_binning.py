"""Confidence binning for calibration metrics: edges, bin assignment, per-bin sums.

One convention per binning, used everywhere (metrics, bootstrap, plots);
``edges[0] == 0`` and ``edges[-1] == 1`` always.

* ``"uniform"``: ``edges = b / n_bins``, ``b = 0 .. n_bins``; bins are half-open on
  the right (left-closed), ``[e_b, e_{b+1})``, except the last, which is closed, ``[e_{B-1},
  1]``: a confidence of exactly 1.0 is in the last bin and 0.0 in the first.
  scikit-learn's ``calibration_curve(strategy="uniform")`` is right-closed instead
  (``(e_b, e_{b+1}]``), so a score exactly on an edge (``k / 10`` from a 10-tree
  forest at 10 bins) lands one bin higher here than there, and the ECE can differ.
  The edges are ``b / n_bins`` rounded to the scores' precision, so a decimal
  edge such as 0.3 holds 0.3 itself (float64 or float32), where ``linspace``
  gives 0.30000000000000004.
  This is torchmetrics' convention except for 1.0, which torchmetrics puts in
  an extra, hidden bin (see :func:`softmaxkit.metrics.expected_calibration_error`).
* ``"quantile"`` (equal mass): the sorted confidences are cut into ``n_bins``
  parts of equal weight, and each interior edge lies *between* the last
  confidence of one part and the first of the next (their midpoint), so no
  sample sits on an edge unless tied values straddle a cut. Bins are closed on
  the right, ``[0, e_1], (e_1, e_2], ..., (e_{B-1}, 1]``, so tied values at a
  cut all go to the lower bin. This is where scikit-learn's
  ``calibration_curve(strategy="quantile")`` (``np.percentile`` edges,
  ``searchsorted(side="left")``) and Kumar et al.'s ``get_equal_bins``
  (midpoints, ``bisect_left``) put each sample whenever the number of samples
  is a multiple of ``n_bins`` (and for any number at ``n_bins=2``); netcal
  (``np.quantile`` edges, ``histogramdd``) agrees whenever no sample sits on
  its interpolated edge. Where the peers disagree among themselves (say 5
  samples in 3 bins: scikit-learn 2/1/2, Kumar et al. 2/2/1), this follows the
  weighted rule below. Ties merge bins instead of creating empty or
  zero-width ones, so there may be fewer than ``n_bins`` bins, and every bin
  holds at least one sample of positive weight.

The weighted cut: with the confidences sorted and ``before_i`` the weight of
the samples before sample ``i``, cut ``b`` (target mass ``t_b = W b / B``) puts
in the lower part every sample whose mass starts below the target, ``before_i
< t_b``. If the target falls strictly inside the last such sample's mass, the
cut goes through that sample (its integer weight would be repeated rows with
one value) and the edge is its confidence; otherwise the edge is the midpoint
between it and the next sample. So an integer weight behaves exactly like
repeating the row, edges included.
"""

from __future__ import annotations

import numpy as np

BINNINGS = ("uniform", "quantile")


def bin_edges(conf: np.ndarray, weight: np.ndarray, *, n_bins: int, binning: str) -> np.ndarray:
    """Bin edges for the confidences ``conf`` (1-D, in [0, 1]), float64, strictly increasing.

    ``weight`` (same shape, >= 0) only matters for quantile binning; samples of
    weight 0 do not place edges.
    """
    if binning == "uniform":
        return np.arange(n_bins + 1) / n_bins  # b / B correctly rounded (linspace's 0.30000000000000004 is not)
    keep = weight > 0
    c = conf[keep].astype(np.float64)
    if c.size == 0:
        return np.array([0.0, 1.0])
    order = np.argsort(c, kind="stable")
    c, w = c[order], weight[keep][order].astype(np.float64)
    after = np.cumsum(w)
    before = after - w
    targets = after[-1] * np.arange(1, n_bins) / n_bins
    last = np.searchsorted(before, targets, side="left") - 1  # last sample with before < target
    inside = after[last] > targets  # the cut runs through that sample's own mass
    first = np.where(inside, last, last + 1)  # first sample of the upper part
    valid = first < c.size
    interior = np.unique(0.5 * (c[last[valid]] + c[first[valid]]))
    # (e, 1] must hold something, and edges must increase past edges[0] = 0.
    interior = interior[(interior > 0.0) & (interior < c[-1])]
    edges = np.concatenate(([0.0], interior, [1.0]))
    # A tie group that straddles a cut lands below it (bins are closed on the right),
    # which can empty the bin above: drop the upper edge of each empty bin.
    counts = np.bincount(assign_bins(c, edges, binning="quantile"), minlength=edges.size - 1)
    drop = np.flatnonzero(counts[:-1] == 0) + 1
    return np.delete(edges, drop)


def assign_bins(
    conf: np.ndarray, edges: np.ndarray, *, binning: str = "uniform", precision: np.dtype = np.dtype(np.float64)
) -> np.ndarray:
    """Bin index of each confidence (int64, same shape).

    Uniform bins are ``[e_b, e_{b+1})`` (1.0 in the last); quantile bins are
    ``(e_b, e_{b+1}]`` (0.0 in the first). See the module docstring.
    ``precision``: the dtype the scores came in (``conf`` holds them exactly,
    widened to float64).
    """
    n_bins = edges.size - 1
    if binning == "uniform":
        # Compared in the scores' own precision with the edges b / B rounded to it: a float32 0.7
        # (0.699999988) is the float32 edge 7/10 and opens bin 7, as torch.bucketize on float32
        # edges has it; floor(c * B) in float64 put it in bin 6, and 0.58 * 100 is 57.99999999999999.
        decimal = (np.arange(n_bins + 1) / n_bins).astype(precision)
        idx = np.searchsorted(decimal, np.asarray(conf).astype(precision), side="right") - 1
    else:
        idx = np.searchsorted(edges, conf, side="left") - 1
    return np.clip(idx, 0, n_bins - 1)


def bin_sums(
    bins: np.ndarray, conf: np.ndarray, hit: np.ndarray, weight: np.ndarray, n_bins: int
) -> np.ndarray:
    """``[sum w, sum w * conf, sum w * hit, sum w^2]`` per bin, shape ``(n_bins, 4)``, float64.

    ``sum w^2`` gives each bin's effective count ``(sum w)^2 / sum w^2`` (Kish), which the
    debiased ``l2`` needs (see :func:`softmaxkit._ece.error_from_sums`).
    """
    return np.stack(
        [
            np.bincount(bins, weights=weight, minlength=n_bins),
            np.bincount(bins, weights=weight * conf, minlength=n_bins),
            np.bincount(bins, weights=weight * hit, minlength=n_bins),
            np.bincount(bins, weights=weight * weight, minlength=n_bins),
        ],
        axis=-1,
    )
