"""Equal-mass (quantile) bins: each sample lands where the peers put it.

Peers: scikit-learn's ``calibration_curve(strategy="quantile")`` and netcal's
``ECE(equal_intervals=False)``, both run here when installed, and Kumar et
al.'s ``get_equal_bins`` (github.com/p-lambda/verified_calibration,
calibration/utils.py): not on PyPI, so :func:`_kumar_counts` restates its
rule (cut the sorted values into chunks of ``ceil(n / B)``, put each edge
midway between neighbouring chunks, assign with ``bisect_left``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from softmaxkit._binning import assign_bins, bin_edges
from softmaxkit.metrics import expected_calibration_error, reliability_curve


def _kumar_counts(values, n_bins):
    v = np.sort(np.asarray(values, dtype=np.float64))
    size = math.ceil(v.size / n_bins)
    chunks = [v[i : i + size] for i in range(0, v.size, size)]
    edges = sorted({0.5 * (a[-1] + b[0]) for a, b in zip(chunks, chunks[1:])} | {1.0})
    bins = np.searchsorted(edges, v, side="left")
    return np.bincount(bins, minlength=len(edges))


def _sklearn_curve(y, p1, n_bins):
    from sklearn.calibration import calibration_curve

    return calibration_curve(y, p1, n_bins=n_bins, strategy="quantile")


def _counts(y, p1, n_bins):
    c = reliability_curve(y, p1, n_bins=n_bins, binning="quantile", class_index=1)
    return c, c.counts[c.nonempty]


# --------------------------------------------------------------------------- the issue's cases


def test_issue_six_samples_two_bins():
    """The issue: counts were [2, 4]; scikit-learn, netcal and Kumar et al. give 3 / 3."""
    y = np.array([0, 0, 0, 0, 1, 1])
    p1 = np.array([0.0, 0.1, 0.2, 0.5, 0.9, 1.0])
    c, counts = _counts(y, p1, 2)
    np.testing.assert_array_equal(counts, [3, 3])
    np.testing.assert_allclose(c.edges, [0.0, 0.35, 1.0])
    # By hand: bin 1 holds 0, .1, .2 (no positives), bin 2 holds .5, .9, 1 (two positives).
    np.testing.assert_allclose(c.accuracy, [0.0, 2 / 3])
    np.testing.assert_allclose(c.mean_confidence, [0.1, 0.8])
    np.testing.assert_array_equal(_kumar_counts(p1, 2), [3, 3])


def test_issue_six_samples_two_bins_match_sklearn():
    pytest.importorskip("sklearn")
    y = np.array([0, 0, 0, 0, 1, 1])
    p1 = np.array([0.0, 0.1, 0.2, 0.5, 0.9, 1.0])
    prob_true, prob_pred = _sklearn_curve(y, p1, 2)
    c, _ = _counts(y, p1, 2)
    np.testing.assert_allclose(c.accuracy, prob_true, atol=1e-12)
    np.testing.assert_allclose(c.mean_confidence, prob_pred, atol=1e-12)


def test_hundred_samples_ten_bins_hold_ten_each(rng):
    """The issue: 100 samples in 10 bins gave [9, 10, ..., 11]."""
    p1 = rng.uniform(0.0, 1.0, 100)
    y = (rng.random(100) < p1).astype(np.int64)
    c, counts = _counts(y, p1, 10)
    np.testing.assert_array_equal(counts, np.full(10, 10))
    np.testing.assert_array_equal(_kumar_counts(p1, 10), np.full(10, 10))


def test_two_distinct_values_in_two_bins_stay_two_bins():
    """The issue: two values, two samples each, collapsed into one bin."""
    y = np.array([0, 1, 1, 1])
    p1 = np.array([0.3, 0.3, 0.7, 0.7])
    c, counts = _counts(y, p1, 2)
    np.testing.assert_array_equal(counts, [2, 2])
    np.testing.assert_allclose(c.edges, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(c.accuracy, [0.5, 1.0])


# --------------------------------------------------------------------------- peers, computed live


@pytest.mark.parametrize("n, n_bins", [(6, 2), (7, 2), (9, 2), (12, 3), (20, 4), (50, 5), (100, 10), (300, 15)])
def test_matches_sklearn_calibration_curve(rng, n, n_bins):
    """Same bins (so the same per-bin means) wherever n is a multiple of n_bins, and at 2 bins."""
    pytest.importorskip("sklearn")
    p1 = rng.uniform(0.0, 1.0, n)
    y = (rng.random(n) < p1).astype(np.int64)
    y[:2] = [0, 1]  # both classes present (calibration_curve needs a binary y)
    prob_true, prob_pred = _sklearn_curve(y, p1, n_bins)
    c, counts = _counts(y, p1, n_bins)
    np.testing.assert_allclose(c.accuracy[c.nonempty], prob_true, atol=1e-12)
    np.testing.assert_allclose(c.mean_confidence[c.nonempty], prob_pred, atol=1e-12)
    np.testing.assert_array_equal(counts, _kumar_counts(p1, n_bins))


@pytest.mark.parametrize("n, n_bins", [(6, 2), (100, 10), (300, 15), (1000, 20)])
def test_quantile_ece_matches_netcal(rng, n, n_bins):
    """netcal's equal-mass ECE, multiclass top-label and binary (its positive-class view)."""
    netcal_metrics = pytest.importorskip("netcal.metrics")
    k = 4
    z = rng.standard_normal((n, k)) * 2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, k, n)
    ece = netcal_metrics.ECE(bins=n_bins, equal_intervals=False)
    ours = expected_calibration_error(y, p, n_bins=n_bins, binning="quantile", ci=None, noise_floor=False)
    assert ours.value == pytest.approx(float(ece.measure(p, y)), abs=1e-9)
    p1 = rng.uniform(0.01, 0.99, n)
    y1 = (rng.random(n) < p1).astype(np.int64)
    curve = reliability_curve(y1, p1, n_bins=n_bins, binning="quantile", class_index=1)
    positive_class = float(np.nansum(curve.proportions * np.abs(curve.gap)))
    assert positive_class == pytest.approx(float(ece.measure(p1, y1)), abs=1e-9)


# --------------------------------------------------------------------------- ties and weights


def test_ties_at_a_cut_go_to_the_lower_bin_like_sklearn_and_kumar():
    p1 = np.array([0.1, 0.2, 0.4, 0.4, 0.4, 0.8])  # the cut at 3 samples runs through the 0.4s
    y = np.array([0, 0, 1, 0, 1, 1])
    c, counts = _counts(y, p1, 2)
    np.testing.assert_array_equal(counts, [5, 1])
    np.testing.assert_array_equal(_kumar_counts(p1, 2), [5, 1])
    pytest.importorskip("sklearn")
    prob_true, prob_pred = _sklearn_curve(y, p1, 2)
    np.testing.assert_allclose(c.accuracy, prob_true)
    np.testing.assert_allclose(c.mean_confidence, prob_pred)


def test_a_tie_that_would_empty_a_bin_merges_it():
    conf = np.array([0.1, 0.5, 0.5, 0.5, 0.9])
    edges = bin_edges(conf, np.ones(5), n_bins=5, binning="quantile")
    bins = assign_bins(conf, edges, binning="quantile")
    counts = np.bincount(bins, minlength=edges.size - 1)
    assert np.all(counts > 0) and counts.sum() == 5
    np.testing.assert_array_equal(counts, [1, 3, 1])


def test_integer_weights_place_the_same_edges_as_repeated_rows(rng):
    conf = np.round(rng.uniform(0, 1, 40), 2)
    w = rng.integers(0, 5, 40)
    rep = np.repeat(conf, w)
    for n_bins in (2, 3, 7, 10):
        a = bin_edges(conf, w.astype(float), n_bins=n_bins, binning="quantile")
        b = bin_edges(rep, np.ones(rep.size), n_bins=n_bins, binning="quantile")
        np.testing.assert_array_equal(a, b)


def test_zero_and_one_confidences():
    conf = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    edges = bin_edges(conf, np.ones(6), n_bins=2, binning="quantile")
    np.testing.assert_allclose(edges, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(assign_bins(conf, edges, binning="quantile"), [0, 0, 0, 1, 1, 1])
    # All at 1.0: one bin.
    assert bin_edges(np.ones(4), np.ones(4), n_bins=3, binning="quantile").tolist() == [0.0, 1.0]


def test_uniform_bins_hold_their_decimal_edges():
    """Audit: linspace(0, 1, 11)[3] is 0.30000000000000004, so a confidence of exactly 0.3 (0.6, 0.7)
    fell in the bin below; 0.5 and 0.6 merged and their gaps cancelled: ECE 1.8e-16 instead of 0.1."""
    for n_bins in (10, 20, 15, 100):
        for dtype in (np.float64, np.float32):
            edges = np.array([b / n_bins for b in range(n_bins)])  # the decimals a user (or a kNN's vote) writes
            given = edges.astype(dtype).astype(np.float64)  # scores as they arrive, widened exactly
            bins = assign_bins(given, np.linspace(0, 1, n_bins + 1), precision=np.dtype(dtype))
            np.testing.assert_array_equal(bins, np.arange(n_bins), err_msg=f"{n_bins} bins, {dtype.__name__}")
    for dtype, value in ((np.float64, 1.8e-16), (np.float32, 1.8e-8)):  # the merged bins' old values
        p = np.array([[0.5, 0.5]] * 10 + [[0.4, 0.6]] * 10 + [[0.3, 0.7]] * 10, dtype=dtype)
        y = np.array([0] * 6 + [1] * 4 + [1] * 5 + [0] * 5 + [1] * 8 + [0] * 2)
        result = expected_calibration_error(y, p, n_bins=10, ci=None, noise_floor=False)
        # bins 5, 6, 7: |0.5 - 0.6|, |0.6 - 0.5|, |0.7 - 0.8| each 0.1, whatever the dtype
        assert result.value == pytest.approx(0.1, abs=1e-6) and result.value > 100 * value, dtype
        assert result.curve.counts[5] == result.curve.counts[6] == result.curve.counts[7] == 10
    assert assign_bins(np.array([1.0, 0.0]), np.linspace(0, 1, 11)).tolist() == [9, 0]


def _kumar_top_label_l2(y, p, n_bins):
    """Kumar et al.'s ``lower_bound_scaling_ce(p=2, debias=True, mode="top-label")``, restated:
    equal-mass bins (:func:`_kumar_counts`' rule), per bin ``(conf - acc)^2 - acc (1 - acc) / (n_b - 1)``
    (0 for a bin of fewer than 2), weighted by the bin's share, then ``sqrt(max(total, 0))``."""
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(float)
    v = np.sort(conf)
    size = math.ceil(v.size / n_bins)
    chunks = [v[i : i + size] for i in range(0, v.size, size)]
    edges = sorted({0.5 * (a[-1] + b[0]) for a, b in zip(chunks, chunks[1:])} | {1.0})
    bins = np.searchsorted(edges, conf, side="left")
    total = 0.0
    for b in range(len(edges)):
        m = bins == b
        if m.sum() < 2:
            continue
        acc = hit[m].mean()
        total += m.mean() * ((conf[m].mean() - acc) ** 2 - acc * (1 - acc) / (m.sum() - 1))
    return math.sqrt(max(total, 0.0))


@pytest.mark.parametrize("n, n_bins", [(200, 10), (300, 15), (1000, 20)])
def test_quantile_debiased_l2_matches_kumar_et_al(rng, n, n_bins):
    """The issue: the equal-mass ECE differed from Kumar et al.'s reference code."""
    z = rng.standard_normal((n, 4)) * 2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in np.sqrt(p) / np.sqrt(p).sum(axis=1, keepdims=True)])
    ours = expected_calibration_error(y, p, n_bins=n_bins, binning="quantile", norm="l2", ci=None, noise_floor=False)
    assert ours.value == pytest.approx(_kumar_top_label_l2(y, p, n_bins), abs=1e-12)
