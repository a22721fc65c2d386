"""Weights, precision and bin-edge details of the ECE family, its CLI summary and its diagram.

* The debiased ``l2`` subtracts each bin's sampling variance ``acc (1 - acc) / (n_eff - 1)``
  with Kish's effective count ``n_eff = W_b^2 / sum_b w^2``: multiplying every weight by a
  constant changes nothing (it used ``W_b``, so weights of ``1/n`` turned the debiasing off).
* ``cli._adapters.summarize`` bins float16/float32 probabilities in their own precision,
  as :func:`softmaxkit.metrics.expected_calibration_error` does.
* The diagram's histogram shows summed weights when weights are given.
* float32 arrays holding bfloat16/float16 values get that narrower type's row-sum tolerance.
* The bootstrap's bin sums are computed in chunks of resamples, bit-identically.
"""

from __future__ import annotations

import numpy as np
import pytest

from softmaxkit.metrics import expected_calibration_error, reliability_curve


def _overconfident(n=500, seed=7):
    """3-class probabilities whose labels come from a softer model (a positive ``l2``)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([2.0, 1.0, 1.0], size=n)
    t = p**0.5
    t /= t.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(t, axis=1)).sum(axis=1).clip(0, 2)
    return y, p


def _l2(y, p, w, mode):
    return expected_calibration_error(
        y, p, norm="l2", mode=mode, sample_weight=w, n_bootstrap=200, noise_floor=True, random_state=3
    )


# Computed by the code before the n_eff change (weights=None): unit weights must not move. The upper
# ends are those of the interval that no longer shifts its upper end by the bias (audit: it covered
# 0.87-0.92 at 50-200 rows); the value, lower end and noise floor are the original figures.
_BEFORE = {
    "top_label": (0.16151108350029647, 0.11823676204203201, 0.21897155956700612, 0.014364755248596834),
    "classwise": (0.10145418658780742, 0.07056642447611129, 0.1584391183996101, 0.018227491635349445),
}


@pytest.mark.parametrize("mode", ["top_label", "classwise"])
def test_l2_debias_unit_weights_unchanged(mode):
    y, p = _overconfident()
    for w in (None, np.ones(len(y))):
        r = _l2(y, p, w, mode)
        assert (r.value, r.ci_low, r.ci_high, r.noise_floor) == pytest.approx(_BEFORE[mode], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("mode", ["top_label", "classwise"])
@pytest.mark.parametrize("base", ["ones", "integers"])
def test_l2_debias_is_invariant_to_weight_scale(mode, base):
    y, p = _overconfident()
    n = len(y)
    w0 = np.ones(n) if base == "ones" else np.random.default_rng(1).integers(1, 5, n).astype(float)
    ref = _l2(y, p, w0, mode)
    assert ref.value > 0.05  # the debiasing is active and the value not clipped to 0
    for scale in (1.0 / n, 2.0, 10.0):
        r = _l2(y, p, scale * w0, mode)
        got = (r.value, r.ci_low, r.ci_high, r.noise_floor)
        assert got == pytest.approx((ref.value, ref.ci_low, ref.ci_high, ref.noise_floor), rel=1e-9, abs=1e-12), scale


def test_l2_debias_calibrated_model_stays_near_zero_at_any_scale():
    # The audit's case: a calibrated model scored 0.0000 unweighted but 0.0544 with weights 1/n.
    rng = np.random.default_rng(0)
    n = 500
    p = rng.dirichlet([2, 1, 1], size=n)
    y = np.array([rng.choice(3, p=q) for q in p])
    ref = expected_calibration_error(y, p, norm="l2", ci=None, noise_floor=False).value
    for scale in (1.0 / n, 1.0, 2.0, 10.0):
        got = expected_calibration_error(y, p, norm="l2", sample_weight=np.full(n, scale), ci=None, noise_floor=False)
        assert got.value == pytest.approx(ref, abs=1e-12), scale


# --------------------------------------------------------------------------- CLI summary precision


def test_cli_summary_bins_float16_probs_in_their_precision():
    # float16(8/15) = 0.5332 < 8/15: on the float16 edge it opens bin 8 (as the metric has it);
    # widened to float64 first it fell in bin 7, next to the 0.5 rows, at the CLI's 15 bins.
    from softmaxkit.cli._adapters import summarize

    c = np.float16(8 / 15)
    assert float(c) < 8 / 15
    p = np.array([[c, 1 - c]] * 50 + [[0.5, 0.5]] * 50, dtype=np.float16)
    y = np.array([0] * 50 + [1] * 50)  # the c rows right, the 0.5 rows wrong
    want = expected_calibration_error(y, p, n_bins=15, ci=None, noise_floor=False).value
    assert want != pytest.approx(
        expected_calibration_error(y, p.astype(np.float64), n_bins=15, ci=None, noise_floor=False).value
    )
    assert summarize(y, probs=p, ci=False)[0]["ece"] == pytest.approx(want, abs=1e-12)


def test_cli_summary_bins_float32_probs_in_their_precision():
    from softmaxkit.cli._adapters import summarize

    p = np.array([[0.7, 0.3]] * 50 + [[0.65, 0.35]] * 50, dtype=np.float32)
    y = np.array([0] * 50 + [1] * 50)
    want = expected_calibration_error(y, p, n_bins=10, ci=None, noise_floor=False).value
    assert want == pytest.approx(0.475, abs=1e-6)
    assert summarize(y, probs=p, n_bins=10, ci=False)[0]["ece"] == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------- diagram histogram


def test_histogram_shows_summed_weights():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    from softmaxkit.plot import ReliabilityDiagram

    rng = np.random.default_rng(1)
    p = rng.dirichlet([2, 1, 1], size=300)
    y = rng.integers(0, 3, 300)
    w = rng.integers(0, 3, 300)
    r = np.repeat(np.arange(300), w)
    try:
        a = ReliabilityDiagram.from_predictions(y, p, n_bins=5, ci=None, sample_weight=w)
        b = ReliabilityDiagram.from_predictions(y[r], p[r], n_bins=5, ci=None)
        heights = [x.get_height() for x in a.hist_ax_.patches]
        assert heights == [x.get_height() for x in b.hist_ax_.patches]
        assert a.hist_ax_.get_ylabel() == "weight" and b.hist_ax_.get_ylabel() == "count"
        half = ReliabilityDiagram.from_predictions(y, p, n_bins=5, ci=None, sample_weight=w / 2)
        assert [x.get_height() for x in half.hist_ax_.patches] == pytest.approx([h / 2 for h in heights])
    finally:
        plt.close("all")


# --------------------------------------------------------------------------- row-sum tolerance


def test_bfloat16_values_in_float32_get_the_bfloat16_tolerance():
    from softmaxkit._calibration_inputs import check_probs
    from softmaxkit.metrics import log_loss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    # bfloat16 rounding (to nearest even) of the float32 bit pattern, as torch's .float() gives it back
    bits = p.astype(np.float32).view(np.uint32)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & np.uint32(0xFFFF0000)
    bf = bits.view(np.float32)
    assert np.abs(bf.sum(axis=1, dtype=np.float64) - 1).max() > 1e-3  # beyond the float32 tolerance
    assert np.isfinite(log_loss(rng.integers(0, 4, 50), probs=bf))
    check_probs(bf.astype(np.float64))  # widened again: still exactly bfloat16 values
    half = p.astype(np.float16)
    check_probs(half.astype(np.float32))
    # Clearly unnormalised rows are still refused, even when their values are bfloat16-exact.
    for factor in (0.9, 1.05):
        bad = bf.copy()
        bad[3] *= np.float32(factor)
        bad = (bad.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)  # truncated to bfloat16
        with pytest.raises(ValueError, match="row 3 sums to"):
            check_probs(bad)
    # A float32 row off by 0.002 whose values are not 16-bit-exact keeps the float32 tolerance.
    off = p.astype(np.float32)
    off[5] *= np.float32(1.002)
    with pytest.raises(ValueError, match=r"within 0\.001 for float32.*row 5"):
        check_probs(off)


# --------------------------------------------------------------------------- bootstrap chunks


def test_bootstrap_chunks_are_bit_identical(monkeypatch):
    from softmaxkit import _ece

    y, p = _overconfident(n=300)
    w = np.random.default_rng(2).integers(1, 4, 300).astype(float)
    for mode in ("top_label", "classwise"):
        kw = dict(norm="l2", mode=mode, sample_weight=w, n_bootstrap=50, noise_floor=40, random_state=5)
        whole = expected_calibration_error(y, p, **kw)
        monkeypatch.setattr(_ece, "BOOTSTRAP_CHUNK_BYTES", 1)  # one resample (and one simulated world) per chunk
        chunked = expected_calibration_error(y, p, **kw)
        monkeypatch.undo()
        assert (chunked.ci_low, chunked.ci_high) == (whole.ci_low, whole.ci_high)
        assert chunked.noise_floor == whole.noise_floor


# --------------------------------------------------------------------------- edges


def test_uniform_bins_are_left_closed():
    # 0.7 exactly (a 10-tree forest's score) opens bin 7 here; scikit-learn's right-closed bins put it in 6.
    c = reliability_curve(np.array([0, 0]), np.array([[0.7, 0.3], [0.65, 0.35]]), n_bins=10)
    assert c.counts[7] == 1 and c.counts[6] == 1
