"""Memory of ``softmaxkit evaluate``'s scoring (:func:`softmaxkit.cli._adapters.summarize`).

Audit: the top-label ECE was computed from an (n, 1 / min(conf) + 1) float64 matrix rebuilt from each
row's confidence, so one near-uniform row made it n x (K + 1) (381 MB at 50,000 x 1000); and the score
blocks were 2048 rows whatever K (512 MB of float64 a block at 32,000 classes). Peaks are measured with
tracemalloc (NumPy reports its buffers to it), never with time.
"""

import tracemalloc

import numpy as np
import pytest

from softmaxkit import metrics, softmax
from softmaxkit.cli import _adapters, _evaluation


def _peak(fn):
    """Peak bytes traced while ``fn()`` runs a second time, above what was allocated before it (the first
    run imports and compiles what it needs, which tracemalloc would count too)."""
    fn()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _logits(n, k, *, seed=0, dtype=np.float32):
    """(n, k) logits with a near-uniform row 0 (confidence 1/k) and a two-way tie at the top of row 1."""
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * 3).astype(dtype)
    z[0] = 0  # every class 1/k: the row that made the rebuilt matrix k + 1 columns wide
    z[1, :2] = z[1].max() + 1  # a tie: argmax takes the first
    y = rng.integers(0, k, n)
    y[:50] = np.argmax(z[:50], axis=1)  # some hits among the low-confidence rows too
    return z, y


def test_the_top_label_ece_needs_no_matrix_as_wide_as_the_smallest_confidence(monkeypatch):
    """4 MB of float32 logits, one row uniform over 250 classes: the ECE's memory is O(n), not n x 251."""
    n, k = 4000, 250
    z, y = _logits(n, k)
    monkeypatch.setattr(_adapters, "SCORE_BLOCK_ROWS", 64)  # blocks far below the input: what is left is the ECE
    peak = _peak(lambda: _adapters.summarize(y, logits=z, ci=False))
    # before: 8 MB for the (4000, 251) float64 matrix alone, 2.6x the input with its checks' temporaries
    assert peak < 0.5 * z.nbytes, f"summarize traced {peak / 2**20:.1f} MB on {z.nbytes / 2**20:.1f} MB of logits"


def test_blocks_stay_within_the_byte_budget_at_a_large_vocabulary():
    """At 32,000 classes a float64 block fits SCORE_BLOCK_BYTES (2048 rows were 512 MB); small K keeps 2048."""
    rows = _adapters.score_block_rows(32_000)
    assert 1 <= rows < _adapters.SCORE_BLOCK_ROWS
    assert rows * 32_000 * 8 <= _adapters.SCORE_BLOCK_BYTES < (rows + 1) * 32_000 * 8
    assert _adapters.score_block_rows(7) == _adapters.SCORE_BLOCK_ROWS
    assert _adapters.score_block_rows(10**12) == 1


def test_scoring_peak_follows_the_byte_budget_not_the_row_count(monkeypatch):
    """Many classes: the loops of summarize and of the per-row losses hold a block of the byte budget."""
    n, k = 300, 4000  # 4.8 MB of float32; one float64 block of 300 rows is 9.6 MB
    z, y = _logits(n, k, seed=1)
    monkeypatch.setattr(_adapters, "SCORE_BLOCK_BYTES", 2**18, raising=False)  # 8 rows of 4000 float64
    summary_peak = _peak(lambda: _adapters.summarize(y, logits=z, ci=False))
    loss_peak = _peak(lambda: _evaluation._row_losses(y, logits=z, probs=None, transform=None))
    # before: 2048-row blocks, i.e. the whole matrix widened to float64 with its temporaries (6x, 4x the input)
    assert summary_peak < 0.5 * z.nbytes, f"summarize traced {summary_peak / 2**20:.1f} MB"
    assert loss_peak < 0.5 * z.nbytes, f"_row_losses traced {loss_peak / 2**20:.1f} MB"


def test_both_block_loops_use_the_one_block_size(monkeypatch):
    """summarize and _row_losses read the scores in score_block_rows(K) rows, the same rows."""
    from softmaxkit import data

    seen = []
    real = data.iter_row_blocks

    def spy(arr, rows=data.BLOCK_ROWS):
        seen.append(rows)
        return real(arr, rows)

    monkeypatch.setattr(data, "iter_row_blocks", spy)
    z, y = _logits(50, 6000, seed=2)
    _adapters.summarize(y, logits=z, ci=False)
    _evaluation._row_losses(y, logits=z, probs=None, transform=None)
    assert seen == [_adapters.score_block_rows(6000)] * 2


@pytest.mark.parametrize("given", ["logits", "float64", "float32", "float16"])
@pytest.mark.parametrize("rows", [None, 37])
def test_metrics_equal_the_library_on_the_whole_matrix(monkeypatch, given, rows):
    """ECE, its interval, noise floor and curve, log-loss and Brier equal softmaxkit.metrics on the full
    (n, K) probabilities: near-uniform row, tie, float16/float32 edges, one block or many."""
    n, k = 400, 60
    z, y = _logits(n, k, seed=3, dtype=np.float64)
    p = softmax(z, axis=-1)
    if rows is not None:
        monkeypatch.setattr(_adapters, "SCORE_BLOCK_ROWS", rows)
    if given == "logits":
        summary, png = _adapters.summarize(y, logits=z, plot_title="t")
    else:
        p = p.astype(given)
        p /= p.sum(axis=1, keepdims=True, dtype=np.float64).astype(given)  # rows sum to 1 in their dtype
        summary, png = _adapters.summarize(y, probs=p, plot_title="t")
    ece = metrics.expected_calibration_error(y, p)
    assert summary["ece"] == pytest.approx(ece.value, rel=1e-12, abs=1e-15)
    assert summary["ece_ci"] == pytest.approx([ece.ci_low, ece.ci_high], rel=1e-12, abs=1e-15)
    assert summary["ece_noise_floor"] == pytest.approx(ece.noise_floor, rel=1e-12, abs=1e-15)
    pf = p.astype(np.float64)
    assert summary["accuracy"] == np.mean(np.argmax(pf, axis=1) == y)
    assert summary["brier"] == pytest.approx(metrics.brier_score(y, pf), rel=1e-12)
    loss = metrics.log_loss(y, logits=z) if given == "logits" else metrics.log_loss(y, probs=pf)
    assert summary["log_loss"] == pytest.approx(loss, rel=1e-12)
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_rows_give_the_ece_and_curve_of_the_probabilities(dtype):
    """top_label_ece_from_rows(conf, hit) is expected_calibration_error on the probabilities, bin for bin:
    with a row of confidence 1/K, confidences on bin edges (0.7 in float32) and ties."""
    rng = np.random.default_rng(4)
    n, k = 300, 10
    p = softmax(rng.standard_normal((n, k)) * 2, axis=-1)
    p[0] = 1 / k
    p[1] = [0.7, 0.3] + [0.0] * (k - 2)  # exactly on an edge of 10 bins
    p[2] = [0.4, 0.4, 0.2] + [0.0] * (k - 3)  # a tie
    p = p.astype(dtype)
    y = rng.integers(0, k, n)
    pred = np.argmax(p, axis=1)
    conf = p[np.arange(n), pred].astype(np.float64)
    for bins in (10, 15):
        want = metrics.expected_calibration_error(y, p, n_bins=bins, noise_floor=50, n_bootstrap=200, random_state=3)
        got = metrics.top_label_ece_from_rows(conf, pred == y, precision=p.dtype, n_bins=bins, noise_floor=50,
                                              n_bootstrap=200, random_state=3)
        assert (got.value, got.ci_low, got.ci_high, got.noise_floor) == pytest.approx(
            (want.value, want.ci_low, want.ci_high, want.noise_floor), rel=1e-12, abs=1e-15)
        curve = metrics.reliability_curve(y, p, n_bins=bins)
        np.testing.assert_array_equal(got.curve.counts, curve.counts)
        np.testing.assert_allclose(got.curve.mean_confidence, curve.mean_confidence, rtol=1e-12)
        np.testing.assert_allclose(got.curve.accuracy, curve.accuracy, rtol=1e-12)


def test_rows_refuse_bad_input():
    with pytest.raises(ValueError, match="one length"):
        metrics.top_label_ece_from_rows(np.array([0.5, 0.6]), np.array([True]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.top_label_ece_from_rows(np.array([0.5, np.nan]), np.array([True, False]))


def test_scoring_holds_two_float64_blocks_not_three(monkeypatch):
    """The softmax of a logit block is written over the block once the exact log-loss has read it: a second
    float64 block beside it made three with the Brier score's and the class sums' temporaries (a third of
    evaluate's peak over its blocks on 2048 x 32,000 float16 logits: 414 MB, 1.64x a NumPy script's)."""
    n, k = 512, 4000
    z, y = _logits(n, k, seed=3)
    block_bytes = 2**22  # 131 rows of 4000 float64: 4 blocks in all, each far above the O(n) arrays
    monkeypatch.setattr(_adapters, "SCORE_BLOCK_BYTES", block_bytes, raising=False)
    peak = _peak(lambda: _adapters.summarize(y, logits=z, ci=False))
    assert peak < 2.5 * block_bytes, f"summarize traced {peak / block_bytes:.2f} blocks of {block_bytes >> 20} MB"


def test_evaluate_of_npy_files_does_not_import_pyarrow(tmp_path):
    """Nothing in a .npy pair needs pyarrow; importing it for the labels' nameless-column check (which
    read NumPy arrays) cost evaluate ~55 MB of its peak on 2048 x 32,000 float16 logits."""
    import subprocess
    import sys

    z, y = _logits(40, 5, seed=4)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    code = ("import runpy, sys\n"
            "sys.argv = ['softmaxkit', 'evaluate', '--logits', 'z.npy', '--labels', 'y.npy', '-q']\n"
            "try:\n    runpy.run_module('softmaxkit', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('pyarrow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "False", "evaluate of two .npy files imported pyarrow"
