"""Memory of the CLI's conformal sets and of the .npz/.safetensors score readers on large inputs (audit AC).

On a 200,000 x 1000 float32 logits file (800 MB) ``calibrate --conformal 0.1,0.05`` peaked at
2926 MB: the conformal fit and the set scoring each made a float64 softmax of the whole matrix
(1.6 GB) and the scoring an (n, K, A) mask. And an ``.npz``/``.safetensors`` score array was copied a
second time, column by column, into an F-ordered matrix (2x its size at the peak). The peaks are
measured here with tracemalloc (NumPy reports its buffers to it) on modest sizes, never with timings.
"""

from __future__ import annotations


import numpy as np
import pytest
from cli_helpers import traced_peak

from softmaxkit.cli import _conformal
from softmaxkit.data import read_scores

N, K = 20_000, 200
FLOAT64_MATRIX = N * K * 8  # one float64 (n, K) matrix: 32 MB
#: Row blocks of 2 MB here (32 MB by default), so that modest sizes show a peak that follows the block, not n.
SMALL_BLOCKS = 1 << 18


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(N, K)) * 3).astype(np.float32)
    y = rng.integers(0, K, N)
    return z, y


@pytest.mark.parametrize("score", ["lac", "aps"])
def test_conformal_fit_and_set_scoring_hold_no_whole_float64_softmax(logits, score, monkeypatch):
    """The fit and the scored sets of calibrate/evaluate are made block by block: each peaks well
    below one float64 (n, K) matrix (before: the whole softmax, 1x, plus the (n, K, A) mask)."""
    import softmaxkit.conformal

    monkeypatch.setattr(softmaxkit.conformal, "BLOCK_ELEMENTS", SMALL_BLOCKS, raising=False)
    z, y = logits
    alphas = (0.1, 0.05)
    # Compiles the fit's and the set scoring's kernels outside the measure: with numba's cache cold (a fresh
    # checkout), compiling the set scoring inside it traced 0.43x a float64 matrix of compiler objects.
    small = _conformal.fit(z[:500], y[:500], probs=False, score=score)
    _conformal.summarize(small, y[:500], _conformal.predict_sets(small, z[:500], alphas, probs=False, where="z.npy"),
                         alphas, list(range(K)), evaluated_on="500 rows")
    conformal, fit_peak = traced_peak(lambda: _conformal.fit(z, y, probs=False, score=score, seed=0))
    assert fit_peak < 0.3 * FLOAT64_MATRIX, f"fit peaked at {fit_peak / FLOAT64_MATRIX:.2f}x a float64 matrix"
    summary, sets_peak = traced_peak(lambda: _conformal.summarize(
        conformal, y, _conformal.predict_sets(conformal, z, alphas, probs=False, where="z.npy"), alphas,
        list(range(K)), evaluated_on=f"{N} rows"))
    assert sets_peak < 0.3 * FLOAT64_MATRIX, f"set scoring peaked at {sets_peak / FLOAT64_MATRIX:.2f}x"
    # the same numbers as the sets themselves give
    sets = conformal.predict_sets(z, list(alphas))
    whole = _conformal.summarize(conformal, y, sets, alphas, list(range(K)), evaluated_on=f"{N} rows")
    assert summary == whole
    assert summary["levels"]["90%"]["coverage"] == float(np.mean(sets[np.arange(N), y, 0]))


def test_set_counts_match_the_sets_across_blocks_and_class_orders(logits, monkeypatch):
    """Counts made block by block (several blocks here) equal those of the whole mask, for randomised
    APS (uniforms hashed by row position), a class-conditional LAC, and file columns in another order
    than the predictor's (``order``)."""
    import softmaxkit.conformal
    from softmaxkit.conformal import ConformalClassifier, SetCounts

    monkeypatch.setattr(softmaxkit.conformal, "BLOCK_ELEMENTS", SMALL_BLOCKS)
    z, y = logits
    z, y = z[:12_000], y[:12_000]
    assert len(z) * K > 2 * SMALL_BLOCKS
    for cp in (ConformalClassifier(score="aps", random_state=3), ConformalClassifier(class_conditional=True)):
        cp.fit(z[:6000], y[:6000])
        sets = cp.predict_sets(z[6000:], [0.1, 0.2])
        counts = cp.set_counts(z[6000:], y[6000:], [0.1, 0.2])
        whole = SetCounts.of(y[6000:], sets)
        np.testing.assert_array_equal(counts.covered, whole.covered)
        np.testing.assert_array_equal(counts.sizes, whole.sizes)
    order = np.random.default_rng(1).permutation(K)  # predictor class k is the file's column order[k]
    pending = _conformal.PendingSets(cp, z[6000:][:, np.argsort(order)], (0.1,), order=order)
    labels = order[y[6000:]]  # each row's label as a column of the file
    counts = pending.counts(labels)
    np.testing.assert_array_equal(counts.covered[:, 0], sets[np.arange(6000), y[6000:], 0])
    np.testing.assert_array_equal(counts.sizes[:, 0], sets[:, :, 0].sum(axis=1))
    np.testing.assert_array_equal(pending.mask()[:, :, 0], sets[:, np.argsort(order), 0])  # the file's columns


def _write(path, z):
    if path.suffix == ".npz":
        np.savez(path, logits=z, labels=np.arange(len(z)) % z.shape[1])
    elif path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({"logits": z}, str(path))
    else:
        np.save(path, z)


@pytest.mark.parametrize("suffix, limit", [(".npz", 1.7), (".safetensors", 1.2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_container_scores_are_read_without_a_second_copy(tmp_path, suffix, limit, dtype):
    """The one 2-D score array of an .npz is used as it is (one copy: the load), and a .safetensors
    one is memory-mapped: a peak below 2x the array (before: the array and its column-by-column
    F-ordered copy), C-ordered, and the values and dtype of the same matrix read from a .npy."""
    pytest.importorskip("safetensors")
    z = np.random.default_rng(2).normal(size=(20_000, 300)).astype(dtype)
    z[5, 7] = -np.inf  # a logit of probability 0 stays
    _write(tmp_path / "z.npy", z)
    _write(tmp_path / f"z{suffix}", z)
    read, peak = traced_peak(lambda: read_scores(tmp_path / f"z{suffix}", kind="logit"))
    assert peak < limit * z.nbytes, f"{suffix} read peaked at {peak / z.nbytes:.2f}x the array"
    values = read.values
    assert values.flags.c_contiguous
    reference = np.asarray(read_scores(tmp_path / "z.npy", kind="logit").values)
    assert values.dtype == reference.dtype == dtype
    np.testing.assert_array_equal(values, reference)
    assert read.columns == tuple(f"logits[{j}]" for j in range(300))


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_bad_value_in_a_container_is_named_by_its_column(tmp_path, suffix):
    """Without the column-by-column copy, the check still names the first bad cell by row and column name."""
    pytest.importorskip("safetensors")
    from softmaxkit.data import DataFileError

    z = np.zeros((50, 4), dtype=np.float32)
    z[30, 2], z[40, 1] = np.nan, np.inf
    _write(tmp_path / f"z{suffix}", z)
    with pytest.raises(DataFileError, match=r"row 31.*logits\[2\].*non-finite value nan"):
        read_scores(tmp_path / f"z{suffix}", kind="logit")
    z[30, 2] = z[40, 1] = 0.0
    z[10] = -np.inf
    _write(tmp_path / f"z{suffix}", z)
    with pytest.raises(DataFileError, match=r"row 11.*every logit is -inf"):
        read_scores(tmp_path / f"z{suffix}", kind="logit")


def test_a_subset_of_an_arrays_columns_is_kept_in_its_dtype(tmp_path):
    """``--ignore`` of a column of the 2-D array: the others in the stored dtype, as a .npy keeps them."""
    z = np.random.default_rng(3).normal(size=(100, 5)).astype(np.float32)
    np.savez(tmp_path / "z.npz", logits=z)
    read = read_scores(tmp_path / "z.npz", kind="logit", ignore=("logits[0]",))
    assert read.values.dtype == np.float32
    np.testing.assert_array_equal(read.values, z[:, 1:])


def test_a_write_into_a_memory_mapped_safetensors_matrix_is_kept(tmp_path):
    """The tensor is mapped copy-on-write, so writable; releasing its pages after a pass over the blocks
    threw the written pages away and the file's values came back (review R5: 99.0 read 0.1257 again)."""
    from safetensors.numpy import save_file

    from softmaxkit.data import iter_row_blocks, read_scores

    logits = np.random.default_rng(0).standard_normal((20000, 8)).astype(np.float32)
    path = tmp_path / "s.safetensors"
    save_file({"logits": logits}, str(path))
    read = read_scores(path, kind="logit")
    values = read.values if hasattr(read, "values") else read[0]
    values[0, 0] = 99.0
    for _ in iter_row_blocks(values):
        pass
    assert values[0, 0] == 99.0
