"""Memory of ``calibrate --conformal`` on float16 logits (an LLM's vocabulary): no whole widened copy.

On a 2048 x 32,000 float16 ``.npy`` (125 MB) ``calibrate --conformal 0.1`` peaked at 688 MB RSS, 1.98x
a NumPy/SciPy script (``benchmarks/bench_cli_memory.py``; goal 1.5x): the temperature fit, the
conformal fit and the set counts each widened the whole matrix to float32 (250 MB) in
``check_logits``, and the 1-based-label check's ``argmax`` copied it whole (NumPy's ``argmax`` copies
a read-only array, as a memory map is). They now read it a row block at a time
(:func:`softmaxkit._calibration_inputs.compute_blocks`). The peaks are measured with tracemalloc
(NumPy reports its buffers to it) on modest sizes with small blocks, never with timings; the
results are checked against the same logits widened first.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cli_helpers import traced_peak

import softmaxkit._calibration_inputs
import softmaxkit.conformal
from softmaxkit._calibration_inputs import one_based_evidence
from softmaxkit.calibration import TemperatureScaling
from softmaxkit.cli import _conformal

N, K = 8192, 1000
#: Row blocks of 256k values here (4M by default), so that modest sizes show a peak that follows the
#: block, not the matrix.
SMALL_BLOCKS = 1 << 18


@pytest.fixture(scope="module")
def half_logits():
    """(N, K) float16 logits and labels drawn from ``softmax(z / 1.5)`` (an over-confident model)."""
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((N, K), dtype=np.float32) * 2).astype(np.float16)
    y = np.argmax(z.astype(np.float32) / 1.5 + rng.gumbel(size=(N, K)).astype(np.float32), axis=1)
    return z, y


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(softmaxkit._calibration_inputs, "BLOCK_ELEMENTS", SMALL_BLOCKS, raising=False)
    monkeypatch.setattr(softmaxkit.conformal, "BLOCK_ELEMENTS", SMALL_BLOCKS)


def test_temperature_fit_widens_float16_a_block_at_a_time(half_logits, small_blocks):
    """The fit peaks well below the float16 matrix itself (before: its float32 copy, 2x), and finds
    the temperature of the same logits widened first (only sums over rows add in another order)."""
    z, y = half_logits
    with warnings.catch_warnings():  # 256 rows lack classes: said, and not what is tested
        warnings.simplefilter("ignore")
        TemperatureScaling().fit(z[:256], y[:256])  # compiles the kernels outside the measure
    fitted, peak = traced_peak(lambda: TemperatureScaling().fit(z, y))
    assert peak < 0.5 * z.nbytes, f"the fit peaked at {peak / z.nbytes:.2f}x the float16 logits"
    widened = TemperatureScaling().fit(z.astype(np.float32), y)
    assert fitted.beta_ == pytest.approx(widened.beta_, rel=1e-12)
    assert fitted.nll_ == pytest.approx(widened.nll_, rel=1e-12)


def test_conformal_fit_and_set_counts_widen_float16_a_block_at_a_time(half_logits, small_blocks):
    """The conformal fit and the set counts of calibrate peak well below the float16 matrix (before:
    its float32 copy in each), with the threshold and counts of the same logits widened first."""
    z, y = half_logits
    _conformal.fit(z[:256], y[:256], probs=False, score="lac")  # compiles the kernels outside the measure
    conformal, fit_peak = traced_peak(lambda: _conformal.fit(z, y, probs=False, score="lac", seed=0))
    assert fit_peak < 0.5 * z.nbytes, f"the fit peaked at {fit_peak / z.nbytes:.2f}x the float16 logits"

    def summary(cp, scores):
        return _conformal.summarize(cp, y, _conformal.predict_sets(cp, scores, (0.1,), probs=False, where="z.npy"),
                                    (0.1,), list(range(K)), evaluated_on=f"{N} rows")

    counts, sets_peak = traced_peak(lambda: summary(conformal, z))
    assert sets_peak < 0.5 * z.nbytes, f"the set counts peaked at {sets_peak / z.nbytes:.2f}x the float16 logits"
    widened = _conformal.fit(z.astype(np.float32), y, probs=False, score="lac", seed=0)
    assert conformal.threshold(0.1) == widened.threshold(0.1)
    assert counts == summary(widened, z.astype(np.float32))


def test_one_based_label_check_reads_float16_a_block_at_a_time(half_logits, small_blocks):
    """The 1-based-label evidence (labels with no 0, as 1..K labels have) on a read-only matrix (as the
    CLI's memory map is) peaks well below it (before: NumPy's argmax copied it whole) and counts as on
    the widened logits."""
    import scipy.stats  # noqa: F401 - imported by the check when the shifted reading wins: not measured

    z, y = half_logits
    z = z.view()
    z.flags.writeable = False
    labels = y + 1
    labels[labels == K] = 1  # within 0..K-1 and no 0: the evidence is computed, not skipped
    found, peak = traced_peak(lambda: one_based_evidence(labels, z))
    assert peak < 0.5 * z.nbytes, f"the check peaked at {peak / z.nbytes:.2f}x the float16 logits"
    assert found == one_based_evidence(labels, z.astype(np.float32))
    # and from row blocks (the CLI's memory map): the same evidence
    blocks = ((s, z[s:s + 3000]) for s in range(0, N, 3000))
    assert one_based_evidence(labels, z, row_blocks=blocks) == found
