"""The numba CPU kernels (:mod:`softmaxkit.kernels.cpu`) against the float64
oracle and the NumPy reference, directly and through the public ops.

Compile cost: each kernel is specialised once per dtype (float32, float64)
with C-contiguous arrays, int64 targets and float64 scalars; the tests keep to
those types so the whole file compiles eight parallel kernels (cached on disk
after the first run).
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

import oracle
import softmaxkit as sk
from conftest import tol
from softmaxkit import kernels
from softmaxkit._options import CrossEntropyOptions
from softmaxkit.kernels import reference

numba = pytest.importorskip("numba")
cpu = pytest.importorskip("softmaxkit.kernels.cpu")
from softmaxkit.kernels._vecmath import vexp, vtanh  # noqa: E402

DTYPES = [np.float32, np.float64]


@pytest.fixture
def use_cpu(monkeypatch):
    """Route every public-op call, however small, to the numba kernels."""
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0)
    return cpu


def adversarial(rng, dtype, n_classes=300) -> np.ndarray:
    """Rows that break naive kernels: huge, masked, all -inf, NaN, +inf, confident."""
    x = rng.standard_normal((10, n_classes)) * 3
    x[1] *= 1e4 / 3  # +-1e4: exp overflows without the max shift
    x[2, ::3] = -np.inf  # attention-style mask
    x[3] = -np.inf  # fully masked row
    x[4, 7] = np.nan
    x[5, 9] = np.inf
    x[6] = 0.0  # all ties
    x[7, 11] = 40.0  # confident row: log(sum) ~ 1e-15, needs log1p
    x[8] = -1e4 + rng.standard_normal(n_classes)  # far below 0, still exact
    return x.astype(dtype)


#: (classes, row repeats) of the adversarial rows: wide rows, and narrow rows
#: (at most cpu.NARROW_MAX_CLASSES classes) repeated over several row blocks.
ROW_SHAPES = {"wide": (300, 1), "narrow": (12, 30)}


def adversarial_rows(rng, dtype, shape):
    n_classes, repeats = ROW_SHAPES[shape]
    return np.tile(adversarial(rng, dtype, n_classes), (repeats, 1))


def assert_close(got, want, dtype):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) & (got > 0), np.isinf(want) & (want > 0))
    np.testing.assert_array_equal(np.isinf(got) & (got < 0), np.isinf(want) & (want < 0))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], **tol(dtype))


# --------------------------------------------------------------------------- exp


@numba.njit(cache=True)
def _vexp_array(x, out):
    for j in range(x.shape[0]):
        out[j] = vexp(x[j])


def test_float64_exp_is_within_one_ulp_and_handles_specials(rng):
    x = np.concatenate([
        np.linspace(-708.39, 0.0, 400_001),
        -rng.uniform(0.0, 1.0, 100_000),  # |r| < ln 2 / 2 around k = 0 and -1
        -rng.exponential(1e-9, 10_000),  # tiny arguments: exp = 1 - tiny
    ])  # fmt: skip
    got = np.empty_like(x)
    _vexp_array(x, got)
    want = np.exp(x)
    assert np.max(np.abs(got - want) / np.spacing(want)) <= 1.0
    special = np.array([0.0, -0.0, -np.inf, np.nan, -708.4, -745.2, -1e300])
    out = np.empty_like(special)
    _vexp_array(special, out)
    assert out[0] == 1.0 and out[1] == 1.0  # exact: the max of a row gives exactly 1
    assert out[2] == 0.0 and np.isnan(out[3])
    assert np.all(out[4:] == 0.0)  # flushed below DBL_MIN, never garbage


def test_float32_exp_is_within_two_ulp_and_handles_specials():
    x = np.linspace(-87.3, 0.0, 400_001, dtype=np.float32)
    got = np.empty_like(x)
    _vexp_array(x, got)
    want = np.exp(x.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - want) / ulp) <= 2.0
    special = np.array([0.0, -0.0, -np.inf, np.nan, -87.4, -100.0, -1e30], dtype=np.float32)
    out = np.empty_like(special)
    _vexp_array(special, out)
    assert out[0] == 1.0 and out[1] == 1.0  # exact: the max of a row gives exactly 1
    assert out[2] == 0.0 and np.isnan(out[3])
    assert np.all(out[4:] == 0.0)  # flushed below FLT_MIN, never garbage


@numba.njit(cache=True)
def _vtanh_array(x, out):
    for j in range(x.shape[0]):
        out[j] = vtanh(x[j])


def test_float32_tanh_is_within_two_ulp_and_handles_specials():
    # both branches (|x| < 0.625: polynomial; above: exp) and tiny arguments
    x = np.concatenate(
        [np.linspace(-20.0, 20.0, 400_001, dtype=np.float32), np.geomspace(1e-30, 2.0, 20_001).astype(np.float32)]
    )
    got = np.empty_like(x)
    _vtanh_array(x, got)
    want = np.tanh(x.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - want) / ulp) <= 2.0
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 60.0, -60.0, 1e-40], dtype=np.float32)
    out = np.empty_like(special)
    _vtanh_array(special, out)
    assert out[0] == 0.0 and not np.signbit(out[0]) and out[1] == 0.0 and np.signbit(out[1])
    assert out[2] == 1.0 and out[3] == -1.0 and np.isnan(out[4])
    assert out[5] == 1.0 and out[6] == -1.0 and out[7] == np.float32(1e-40)
    x64 = np.linspace(-5.0, 5.0, 1001)
    got64 = np.empty_like(x64)
    _vtanh_array(x64, got64)
    np.testing.assert_allclose(got64, np.tanh(x64), rtol=5e-16, atol=0)  # float64: libm tanh


# --------------------------------------------------------------------------- softmax family


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_softmax_and_log_softmax_match_oracle_and_reference(rng, dtype, temperature, shape):
    x = adversarial_rows(rng, dtype, shape)
    for log in (False, True):
        got = cpu.softmax_2d(x, np.empty_like(x), inv_temperature=1 / temperature, log=log)
        ref = reference.softmax_2d(x, np.empty_like(x), inv_temperature=1 / temperature, log=log)
        want = (oracle.log_softmax if log else oracle.softmax)(x, temperature=temperature)
        assert got.dtype == dtype
        assert_close(got, want, dtype)
        if temperature == 1.0:
            # (The reference rounds x / T before the shift, which costs float32
            # accuracy on the +-1e4 rows; the kernels scale x - max instead.)
            assert_close(got, ref, dtype)
    p = cpu.softmax_2d(x, np.empty_like(x))
    assert np.all(p[3] == 0.0)  # all -inf row: 0, not NaN
    assert np.all(np.isnan(p[4])) and np.all(np.isnan(p[5]))  # NaN / +inf: whole row NaN
    assert np.all(p[2, ::3] == 0.0)  # masked entries are exactly 0


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_matches_oracle(rng, dtype, shape):
    x = adversarial_rows(rng, dtype, shape)
    got = cpu.logsumexp_2d(x)
    assert got.dtype == np.float64
    assert_close(got, oracle.logsumexp(x), dtype)
    assert got[3] == -np.inf and np.isnan(got[4]) and np.isnan(got[5])


@pytest.mark.parametrize("shape", [(5, 700), (300, 7)], ids=["wide", "narrow"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_in_place(rng, dtype, shape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    want, want_log = oracle.softmax(x), oracle.log_softmax(x, temperature=0.5)
    y = x.copy()
    assert cpu.softmax_2d(x, x) is x
    assert_close(x, want, dtype)
    assert cpu.softmax_2d(y, y, inv_temperature=2.0, log=True) is y
    assert_close(y, want_log, dtype)


@pytest.mark.parametrize("n_classes", [1000, 16], ids=["wide", "narrow"])
@pytest.mark.parametrize("with_grad", [False, True], ids=["loss", "loss+grad"])
def test_confident_row_keeps_relative_precision(with_grad, n_classes):
    # Row 0: -log p_max = log1p(sum of the rest) ~ 1e-15 n_classes, log(1 + tiny)
    # would lose it all. Rows 1-3 have row sums just above 1, just below 2 and
    # above 2 (at 1000 classes), around the point where the wide gradient path
    # switches from an exact second pass for `rest` to log(s).
    x = np.zeros((4, n_classes), dtype=np.float32)
    x[0, 0] = 40.0
    x[1:, 0] = [12.0, 7.0, 6.0]
    target = np.zeros(4, dtype=np.int64)
    grad = np.empty_like(x) if with_grad else None
    loss = cpu.cross_entropy_2d(
        x, target, CrossEntropyOptions(), row_scale=np.ones(4), grad_out=grad
    )
    want, _ = oracle.cross_entropy_rows(x, target)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    if with_grad:  # d loss / dx = softmax(x) - onehot(target)
        want_grad = oracle.softmax(x)
        want_grad[np.arange(4), target] -= 1.0
        # float32 absolute precision near 1, also for p_y - 1 of a confident target
        np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(cpu.logsumexp_2d(x[:1]), oracle.logsumexp(x[:1]), rtol=1e-12)
    np.testing.assert_allclose(cpu.logsumexp_2d(x), oracle.logsumexp(x), rtol=1e-7)
    lsm = cpu.softmax_2d(x, np.empty_like(x), log=True)
    np.testing.assert_allclose(lsm[:, 0], oracle.log_softmax(x)[:, 0], rtol=1e-6)


# --------------------------------------------------------------------------- cross-entropy

OPTION_GRID = list(
    itertools.product(
        [False, True],  # class weights (some zero)
        [0.0, 0.1, 1.0],  # label smoothing
        [0.0, 1e-3],  # z-loss
        [None, 5.0],  # softcap
    )
)


def _options(n_classes, rng, weighted, eps, zeta, cap):
    w = None
    if weighted:
        w = rng.uniform(0.1, 2.0, n_classes)
        w[::5] = 0.0
    opts = CrossEntropyOptions(
        weight=w, ignore_index=-100, label_smoothing=eps, z_loss=zeta, softcap=cap
    )
    oracle_opts = dict(weight=w, ignore_index=-100, label_smoothing=eps, z_loss=zeta, softcap=cap)
    return opts, oracle_opts


def _by_tiles(x, target, opts, row_scale, tile):
    """Loss and gradient through softmaxkit.kernels.vocab_tiles, ``tile`` classes at a time."""
    from softmaxkit.kernels import vocab_tiles

    n, c = x.shape
    state = vocab_tiles.new_state(n)
    for v0 in range(0, c, tile):
        vocab_tiles.fold_tile(np.ascontiguousarray(x[:, v0 : v0 + tile]), v0, target, opts, state, n_classes=c)
    loss = vocab_tiles.finish(state, target, opts, n_classes=c)
    grad = np.empty_like(x)
    for v0 in range(0, c, tile):
        part = np.ascontiguousarray(x[:, v0 : v0 + tile])
        vocab_tiles.tile_grad(part, v0, target, opts, state, row_scale, n_classes=c)
        grad[:, v0 : v0 + tile] = part
    return loss, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("tile", [None, 1, 50], ids=["rows", "tiles-of-1", "tiles-of-50"])
def test_cross_entropy_option_grid(rng, dtype, soft, tile):
    """The row kernel against the oracle and the reference; with ``tile``, the
    vocabulary-tile kernels (linear CE at large V) against the row kernel."""
    n, c = 9, 257
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    x[2, ::4] = -np.inf  # masked logits (never the target below)
    x[5, 3] = 30.0  # a confident row
    x[6, 100:] = -np.inf  # whole tiles of -inf after the first ones
    x[7, :200] = -50.0  # the max arrives in a late tile
    if soft:
        target = rng.dirichlet(np.ones(c), n).astype(dtype)
        for row, masked in ((2, np.s_[::4]), (6, np.s_[100:])):
            target[row, masked] = 0.0  # zero mass on -inf logits contributes 0
            target[row] /= target[row].sum()
        target[:, 1] = 0.0
    else:
        target = rng.integers(1, 100, n)
        target[2] = 1  # 1 % 4 != 0: a finite logit
        target[4] = -100  # ignored
    row_scale = rng.uniform(0.5, 2.0, n)
    for weighted, eps, zeta, cap in OPTION_GRID:
        opts, oracle_opts = _options(c, rng, weighted, eps, zeta, cap)
        case = f"weighted={weighted} eps={eps} zeta={zeta} cap={cap}"
        grad = np.empty_like(x)
        loss = cpu.cross_entropy_2d(x, target, opts, row_scale=row_scale, grad_out=grad)
        if tile is not None:
            tile_loss, tile_grad = _by_tiles(x, target, opts, row_scale, tile)
            finite = np.isfinite(loss)  # label smoothing onto -inf logits: +inf in both
            np.testing.assert_array_equal(tile_loss[~finite], loss[~finite], err_msg=case)
            np.testing.assert_allclose(tile_loss[finite], loss[finite], **tol(dtype), err_msg=case)
            np.testing.assert_allclose(tile_grad, grad, **tol(dtype), err_msg=case)
            continue
        want_loss, _ = oracle.cross_entropy_rows(x, target, **oracle_opts)
        ref_grad = np.empty_like(x)
        ref_loss = reference.cross_entropy_2d(x, target, opts, row_scale=row_scale, grad_out=ref_grad)
        loss_only = cpu.cross_entropy_2d(x, target, opts)
        np.testing.assert_allclose(loss, want_loss, **tol(dtype), err_msg=case)
        np.testing.assert_allclose(loss, ref_loss, **tol(dtype), err_msg=case)
        np.testing.assert_allclose(loss_only, loss, rtol=1e-7, err_msg=case)
        np.testing.assert_allclose(grad, ref_grad, **tol(dtype), err_msg=case)
        if not soft:
            assert loss[4] == 0.0 and np.all(grad[4] == 0.0)  # ignored row


@pytest.mark.parametrize("n_classes", [3, 7, 16])
@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_rows_match_the_oracle_and_the_wide_rows(rng, monkeypatch, dtype, n_classes):
    """Rows of at most NARROW_MAX_CLASSES classes take their own kernel
    (blocks of rows, one flat exp loop): every option but the softcap,
    ignored rows, masked logits and a partial last block, against the
    oracle and against the wide-row kernel on the same inputs."""
    assert n_classes <= cpu.NARROW_MAX_CLASSES
    n = 2 * cpu._NARROW_BLOCK_ROWS + 37  # two full blocks and a partial one
    c = n_classes
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    target = rng.integers(0, c, n)
    masked = np.arange(0, n, 11)
    x[masked, (target[masked] + 1) % c] = -np.inf  # a masked logit beside the target
    x[5, target[5]] = 40.0  # a confident row
    target[::17] = -100  # ignored
    row_scale = rng.uniform(0.5, 2.0, n)
    for weighted, eps, zeta, _ in (g for g in OPTION_GRID if g[3] is None):
        opts, oracle_opts = _options(c, rng, weighted, eps, zeta, None)
        case = f"weighted={weighted} eps={eps} zeta={zeta}"
        grad = np.empty_like(x)
        loss = cpu.cross_entropy_2d(x, target, opts, row_scale=row_scale, grad_out=grad)
        loss_only = cpu.cross_entropy_2d(x, target, opts)
        in_place = x.copy()
        loss_in_place = cpu.cross_entropy_2d(in_place, target, opts, row_scale=row_scale, grad_out=in_place)
        want_loss, _ = oracle.cross_entropy_rows(x, target, **oracle_opts)
        finite = np.isfinite(want_loss)  # label smoothing onto a masked logit: +inf
        np.testing.assert_array_equal(loss[~finite], want_loss[~finite], err_msg=case)
        np.testing.assert_allclose(loss[finite], want_loss[finite], **tol(dtype), err_msg=case)
        np.testing.assert_array_equal(loss_only, loss, err_msg=case)
        np.testing.assert_array_equal(loss_in_place, loss, err_msg=case)
        np.testing.assert_array_equal(in_place, grad, err_msg=case)
        assert np.all(loss[::17] == 0.0) and np.all(grad[::17] == 0.0)
        with monkeypatch.context() as patch:
            patch.setattr(cpu, "NARROW_MAX_CLASSES", 0)  # the wide-row kernel
            wide_grad = np.empty_like(x)
            wide_loss = cpu.cross_entropy_2d(x, target, opts, row_scale=row_scale, grad_out=wide_grad)
        np.testing.assert_allclose(loss[finite], wide_loss[finite], **tol(dtype), err_msg=case)
        np.testing.assert_allclose(grad, wide_grad, **tol(dtype), err_msg=case)


@pytest.mark.parametrize("n_classes", [300, 12], ids=["wide", "narrow"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_cross_entropy_adversarial_rows(rng, dtype, soft, n_classes):
    x = adversarial(rng, dtype, n_classes)
    n, c = x.shape
    if soft:
        target = rng.dirichlet(np.ones(c), n).astype(dtype)
        target[2, ::3] = 0.0  # zero mass exactly on the masked logits
    else:
        target = np.full(n, 1, dtype=np.int64)  # 1 % 3 != 0: unmasked in row 2
    opts = CrossEntropyOptions(label_smoothing=0.0)
    grad = np.empty_like(x)
    loss = cpu.cross_entropy_2d(x, target, opts, row_scale=np.ones(n), grad_out=grad)
    with np.errstate(invalid="ignore"):
        want, _ = oracle.cross_entropy_rows(x, target)
    want[3] = np.inf  # DESIGN.md; the oracle gives NaN here (its z-loss term is 0 * inf)
    assert_close(loss, want, dtype)
    assert loss[3] == np.inf  # all -inf row: impossible target
    assert np.isnan(loss[4]) and np.isnan(loss[5])
    assert np.isfinite(loss[2])  # masked logits with zero target mass
    ref_grad = np.empty_like(x)
    reference.cross_entropy_2d(x, target, opts, row_scale=np.ones(n), grad_out=ref_grad)
    np.testing.assert_allclose(grad, ref_grad, **tol(dtype))  # NaN rows included


@pytest.mark.parametrize("dtype", DTYPES)
def test_vocab_tiles_adversarial_rows_and_confident_precision(rng, dtype):
    x = adversarial(rng, dtype)
    n, c = x.shape
    target = np.full(n, 1, dtype=np.int64)
    target[7] = 11  # the confident row's own max: loss ~ 1e-15 relative to 40
    opts = CrossEntropyOptions()
    row_grad = np.empty_like(x)
    row_loss = cpu.cross_entropy_2d(x, target, opts, row_scale=np.ones(n), grad_out=row_grad)
    loss, grad = _by_tiles(x, target, opts, np.ones(n), 64)
    assert loss[3] == np.inf and np.isnan(loss[4]) and np.isnan(loss[5])
    finite = np.isfinite(row_loss)
    np.testing.assert_allclose(loss[finite], row_loss[finite], **tol(dtype))
    np.testing.assert_allclose(grad, row_grad, **tol(dtype))  # NaN rows included
    with np.errstate(invalid="ignore"):
        want, _ = oracle.cross_entropy_rows(x, target)
    assert 0 < loss[7] and abs(loss[7] - want[7]) <= 1e-6 * want[7]  # log1p kept across tiles


def test_gradient_by_finite_differences(rng):
    x = rng.standard_normal((3, 40))
    y = np.array([0, 17, 39])
    opts = CrossEntropyOptions(weight=rng.uniform(0.5, 1.5, 40), label_smoothing=0.1, z_loss=0.01, softcap=2.0)
    grad = np.empty_like(x)
    cpu.cross_entropy_2d(x, y, opts, row_scale=np.ones(3), grad_out=grad)
    h = 1e-6
    num = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (cpu.cross_entropy_2d(xp, y, opts).sum() - cpu.cross_entropy_2d(xm, y, opts).sum()) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("path", ["rows", "vocab_tiles", "reference"])
def test_float32_softcap_gradient_keeps_relative_precision_where_tanh_saturates(rng, path):
    # 1 - (x'/cap)^2 from a float32 x' cancels: past |x| / cap ~ 4 it kept no
    # correct digit (relative errors up to 1, where torch's own float32
    # composition reaches 1 too); the slope now comes from the raw logits.
    cap = 30.0
    x, y, want = oracle.saturated_softcap_case(rng, cap=cap)
    opts = CrossEntropyOptions(softcap=cap)
    if path == "vocab_tiles":
        _, grad = _by_tiles(x, y, opts, np.ones(len(y)), 64)
    else:
        grad = np.empty_like(x)
        (cpu if path == "rows" else reference).cross_entropy_2d(x, y, opts, row_scale=np.ones(len(y)), grad_out=grad)
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=0)


@pytest.mark.parametrize("n_classes", [131_072, 262_144])
def test_float32_accuracy_at_large_class_counts(rng, n_classes):
    x = (rng.standard_normal((4, n_classes)) * 4).astype(np.float32)
    p = cpu.softmax_2d(x, np.empty_like(x))
    assert np.max(np.abs(p.astype(np.float64).sum(axis=1) - 1.0)) < 1e-6
    y = rng.integers(0, n_classes, 4)
    grad = np.empty_like(x)
    loss = cpu.cross_entropy_2d(x, y, CrossEntropyOptions(), row_scale=np.ones(4), grad_out=grad)
    x64 = x.astype(np.float64)
    m = x64.max(axis=1)
    want = m + np.log(np.exp(x64 - m[:, None]).sum(axis=1)) - x64[np.arange(4), y]
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    # The gradient rows sum to 0 (sum p = 1), to the same accuracy.
    assert np.max(np.abs(grad.astype(np.float64).sum(axis=1))) < 1e-6


@pytest.mark.parametrize("shape", [(16, 5000), (3000, 10)], ids=["wide", "narrow"])
def test_results_do_not_depend_on_the_thread_count(rng, shape):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    y = rng.integers(0, shape[1], shape[0])
    before = numba.get_num_threads()
    runs = []
    try:
        for k in sorted({1, before}):
            numba.set_num_threads(k)
            g = np.empty_like(x)
            loss = cpu.cross_entropy_2d(x, y, CrossEntropyOptions(), row_scale=np.ones(shape[0]), grad_out=g)
            runs.append((loss, g, cpu.softmax_2d(x, np.empty_like(x))))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(runs[0], runs[-1]):
        np.testing.assert_array_equal(a, b)  # rows are independent: bitwise equal


# --------------------------------------------------------------------------- public ops


def test_select_routes_by_size():
    assert kernels.select(6) is reference
    assert kernels.select(kernels.CPU_MIN_ELEMENTS) is cpu
    assert kernels.select(10**8) is cpu


def test_select_falls_back_without_numba(monkeypatch):
    monkeypatch.setattr(kernels, "_cpu", None)
    monkeypatch.setattr(kernels, "_cpu_failed", False)
    monkeypatch.setitem(sys.modules, "softmaxkit.kernels.cpu", None)  # import raises ImportError
    assert kernels.select(10**8) is reference


def test_small_inputs_never_load_numba():
    probe = (
        "import sys, softmaxkit as sk\n"
        "sk.softmax([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]); sk.cross_entropy([[1.0, 2.0]], [1])\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_the_kernels_compiles_nothing():
    probe = (
        "from softmaxkit.kernels import cpu\n"
        "fns = [cpu._softmax_rows, cpu._logsumexp_rows, cpu._ce_hard_rows, cpu._ce_soft_rows]\n"
        "print(sum(len(f.overloads) for f in fns))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_ops_through_numba_match_oracle(rng, use_cpu, dtype):
    x = adversarial(rng, dtype, n_classes=50).reshape(2, 5, 50)
    assert_close(sk.softmax(x), oracle.softmax(x), dtype)
    assert_close(sk.log_softmax(x, temperature=2.0), oracle.log_softmax(x, temperature=2.0), dtype)
    assert_close(sk.logsumexp(x), oracle.logsumexp(x), dtype)
    xt = np.ascontiguousarray(np.moveaxis(x, -1, 1))  # class axis in the middle
    assert_close(sk.softmax(xt, axis=1), oracle.softmax(xt, axis=1), dtype)
    # Rows the oracle defines (it gives NaN, not +inf, on an all -inf row).
    finite = x[~np.isnan(x).any(-1) & ~np.isposinf(x).any(-1) & ~np.isneginf(x).all(-1)]
    y = np.ones(finite.shape[0], dtype=np.int64)
    for reduction in ("mean", "sum", "none"):
        got = sk.cross_entropy(finite, y, reduction=reduction, label_smoothing=0.05)
        want = oracle.cross_entropy(finite, y, reduction=reduction, label_smoothing=0.05)
        assert_close(got, want, dtype)


def test_large_input_routes_to_numba_by_default(rng, monkeypatch):
    calls = []
    original = cpu.softmax_2d
    monkeypatch.setattr(cpu, "softmax_2d", lambda *a, **k: calls.append(1) or original(*a, **k))
    x = rng.standard_normal((4, kernels.CPU_MIN_ELEMENTS // 4)).astype(np.float32)
    np.testing.assert_allclose(sk.softmax(x), reference.softmax_2d(x, np.empty_like(x)), rtol=1e-6, atol=1e-9)
    assert calls == [1]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_out_is_written_without_a_copy(rng, monkeypatch, backend):
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if backend == "cpu" else 10**12)
    module = cpu if backend == "cpu" else reference
    seen = []
    original = module.softmax_2d
    monkeypatch.setattr(module, "softmax_2d", lambda x, out, **k: seen.append(out) or original(x, out, **k))
    x = rng.standard_normal((6, 300)).astype(np.float32)
    out = np.empty_like(x)
    assert sk.softmax(x, out=out) is out
    assert np.shares_memory(seen[-1], out)  # the kernel wrote into out itself
    np.testing.assert_allclose(out, oracle.softmax(x), **tol(np.float32))
    assert sk.log_softmax(x, out=out) is out
    np.testing.assert_allclose(out, oracle.log_softmax(x), **tol(np.float32))
    # An out= that cannot be written directly (not C-contiguous) still gets the result. (Another dtype,
    # which this used to show, is now refused, as grad_out= of another dtype is.)
    out_f = np.empty(x.shape, np.float32, order="F")
    assert sk.softmax(x, out=out_f) is out_f
    assert not np.shares_memory(seen[-1], out_f)
    np.testing.assert_allclose(out_f, oracle.softmax(x), **tol(np.float32))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_gradient_in_place_over_the_logits(rng, monkeypatch, backend, soft):
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if backend == "cpu" else 10**12)
    x = (rng.standard_normal((8, 200)) * 3).astype(np.float32)
    y = rng.dirichlet(np.ones(200), 8).astype(np.float32) if soft else rng.integers(0, 200, 8)
    options = dict(label_smoothing=0.1, z_loss=1e-3, softcap=4.0, weight=rng.uniform(0, 2, 200))
    want_loss, want_grad = sk.cross_entropy_and_grad(x, y, **options)
    logits = x.copy()
    loss, grad = sk.cross_entropy_and_grad(logits, y, grad_out=logits, **options)
    assert grad is logits  # the logits now hold the gradient
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-9)
    # A separate preallocated buffer, and one on a non-last class axis (copied back).
    buf = np.empty_like(x)
    assert sk.cross_entropy_and_grad(x, y, grad_out=buf, **options)[1] is buf
    np.testing.assert_allclose(buf, want_grad, rtol=1e-6, atol=1e-9)
    if not soft:
        xt = np.ascontiguousarray(x.T)
        buf_t = np.empty_like(xt)
        assert sk.cross_entropy_and_grad(xt, y, axis=0, grad_out=buf_t, **options)[1] is buf_t
        np.testing.assert_allclose(buf_t, want_grad.T, rtol=1e-6, atol=1e-9)


def test_grad_out_is_validated(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="grad_out"):
        sk.cross_entropy_and_grad(x, y, grad_out=np.empty((4, 3), np.float32))
    with pytest.raises(TypeError, match="grad_out"):
        sk.cross_entropy_and_grad(x, y, grad_out=np.empty((3, 4), np.float64))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_numpy_api_in_forked_workers_after_the_parent_started_numba_threads():
    """Audit: after the parent ran a kernel on numba's OpenMP threads, a forked ``multiprocessing.Pool`` (or
    ``DataLoader``) worker calling ``cross_entropy`` was ended by SIGTERM ("fork() called from a process
    already using GNU OpenMP") and the Pool waited forever. A forked child keeps to code without parallel
    regions (NumPy reference, serial compilations) and gives the parent's numbers."""
    script = r"""
import multiprocessing as mp, numpy as np, softmaxkit as sk
from softmaxkit.conformal import ConformalClassifier
rng = np.random.default_rng(0)
x = rng.normal(size=(4000, 100)); y = rng.integers(0, 100, 4000)
def work(_):
    p = sk.softmax(x)
    return (float(sk.cross_entropy(x, y)), float(sk.calibration.TemperatureScaling().fit(x, y).temperature_),
            float(sk.metrics.expected_calibration_error(y, p, n_bootstrap=50, random_state=0).ci_high),
            int(ConformalClassifier().fit(x, y).predict_sets(x, alpha=0.5).sum()))
parent = work(0)
with mp.get_context("fork").Pool(2) as pool:
    children = pool.map_async(work, range(2)).get(timeout=120)
print("same" if all(np.allclose(c, parent, rtol=1e-6) for c in children) else f"differ {parent} {children}")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "same", out.stdout + out.stderr[-2000:]
