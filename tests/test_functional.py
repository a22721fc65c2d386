"""The public NumPy ops against the float64 oracle, torch, and finite differences.

Every semantic rule of DESIGN.md has a test here (or in test_validation.py /
test_properties.py); the test names say which rule.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import oracle
import softmaxkit as sk
from conftest import tol

torch = pytest.importorskip("torch")
F = torch.nn.functional

# --------------------------------------------------------------------------- oracle agreement


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_softmax_family_matches_oracle(rng, float_dtype, temperature):
    x = (rng.standard_normal((7, 11)) * 5).astype(float_dtype)
    np.testing.assert_allclose(sk.softmax(x, temperature=temperature), oracle.softmax(x, temperature=temperature), **tol(float_dtype))
    np.testing.assert_allclose(sk.log_softmax(x, temperature=temperature), oracle.log_softmax(x, temperature=temperature), **tol(float_dtype))
    np.testing.assert_allclose(sk.logsumexp(x), oracle.logsumexp(x), **tol(float_dtype))
    assert sk.softmax(x).dtype == float_dtype


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_any_class_axis(rng, axis):
    x = rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(sk.softmax(x, axis), oracle.softmax(x, axis), rtol=1e-12)
    np.testing.assert_allclose(sk.logsumexp(x, axis), oracle.logsumexp(x, axis), rtol=1e-12)
    assert sk.logsumexp(x, axis, keepdims=True).shape == tuple(1 if i == axis % 3 else s for i, s in enumerate(x.shape))
    c = x.shape[axis]
    target_shape = tuple(s for i, s in enumerate(x.shape) if i != axis % 3)
    y = rng.integers(0, c, size=target_shape)
    for reduction in ["mean", "sum", "none"]:
        got = sk.cross_entropy(x, y, axis=axis, reduction=reduction)
        want = oracle.cross_entropy(x, y, axis=axis, reduction=reduction)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    soft = oracle.softmax(rng.standard_normal(x.shape), axis)
    np.testing.assert_allclose(
        sk.cross_entropy(x, soft, axis=axis), oracle.cross_entropy(x, soft, axis=axis), rtol=1e-12
    )


def test_non_contiguous_input(rng):
    base = rng.standard_normal((12, 20)).astype(np.float32)
    x = base[::2, ::3]  # strided view
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(sk.softmax(x), oracle.softmax(x), **tol(np.float32))
    y = rng.integers(0, x.shape[1], size=x.shape[0])
    loss, grad = sk.cross_entropy_and_grad(x, y)
    np.testing.assert_allclose(loss, oracle.cross_entropy(x, y), rtol=1e-6)
    assert grad.shape == x.shape
    np.testing.assert_allclose(sk.softmax(base.T, axis=0), oracle.softmax(base.T, axis=0), **tol(np.float32))


def test_float16_computed_in_float32_and_returned_as_float16(rng):
    x = (rng.standard_normal((6, 9)) * 3).astype(np.float16)
    p = sk.softmax(x)
    assert p.dtype == np.float16
    # float16 output rounding is the only error: the computation itself is float32.
    want = oracle.softmax(x.astype(np.float64)).astype(np.float16)
    np.testing.assert_array_equal(p, want)
    y = rng.integers(0, 9, size=6)
    loss, grad = sk.cross_entropy_and_grad(x, y)
    assert loss.dtype == np.float16 and grad.dtype == np.float16
    np.testing.assert_allclose(float(loss), oracle.cross_entropy(x, y), rtol=1e-3)


def test_empty_batch():
    x = np.zeros((0, 5), np.float32)
    assert sk.softmax(x).shape == (0, 5)
    assert sk.logsumexp(x).shape == (0,)
    assert float(sk.cross_entropy(x, np.zeros(0, np.int64))) == 0.0
    assert sk.cross_entropy(x, np.zeros(0, np.int64), reduction="none").shape == (0,)
    loss, grad = sk.cross_entropy_and_grad(x, np.zeros(0, np.int64), reduction="sum")
    assert float(loss) == 0.0 and grad.shape == (0, 5)


def test_out_argument(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    out = np.empty_like(x)
    res = sk.softmax(x, out=out)
    assert res is out
    np.testing.assert_allclose(out, oracle.softmax(x), **tol(np.float32))
    out2 = np.empty_like(x)
    assert sk.log_softmax(x, out=out2) is out2


@pytest.mark.parametrize("n_classes", [131_072, 262_144])
def test_float32_row_sums_at_large_class_counts(rng, n_classes):
    x = (rng.standard_normal((2, n_classes)) * 4).astype(np.float32)
    p = sk.softmax(x)
    sums = np.sum(p.astype(np.float64), axis=1)
    assert np.max(np.abs(sums - 1.0)) < 1e-6
    y = rng.integers(0, n_classes, size=2)
    want = oracle.cross_entropy(x, y)
    assert abs(float(sk.cross_entropy(x, y)) - want) <= 1e-6 * abs(want)


# --------------------------------------------------------------------------- torch parity grid

OPTION_GRID = list(
    itertools.product(
        ["mean", "sum", "none"],  # reduction
        [None, "w", "signed"],  # weight: none, positive, from randn (torch accepts negative weights)
        [0.0, 0.25],  # label smoothing
        [False, True],  # with ignored rows
    )
)


@pytest.mark.parametrize("reduction,weight,smoothing,with_ignored", OPTION_GRID)
def test_hard_targets_match_torch_float64(rng, reduction, weight, smoothing, with_ignored):
    n, c = 9, 6
    x = rng.standard_normal((n, c)) * 2
    y = rng.integers(0, c, size=n)
    if with_ignored:
        y[[1, 4]] = -100
    w = _class_weight(rng, weight, c)
    upstream = rng.standard_normal(n) if reduction == "none" else 1.7
    xt = torch.tensor(x, requires_grad=True)
    want = F.cross_entropy(
        xt, torch.tensor(y), weight=None if w is None else torch.tensor(w),
        reduction=reduction, label_smoothing=smoothing,
    )
    want.backward(torch.as_tensor(upstream, dtype=torch.float64))
    loss, grad = sk.cross_entropy_and_grad(
        x, y, weight=w, reduction=reduction, label_smoothing=smoothing, grad_output=upstream
    )
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        sk.cross_entropy(x, y, weight=w, reduction=reduction, label_smoothing=smoothing), loss, rtol=1e-15
    )


def _class_weight(rng, kind, c):
    if kind is None:
        return None
    return rng.uniform(0.2, 2.0, size=c) if kind == "w" else rng.standard_normal(c)


@pytest.mark.parametrize("targets", ["dirichlet", "signed"])
@pytest.mark.parametrize("reduction,weight,smoothing", [(r, w, s) for r, w, s, _ in OPTION_GRID[::2]])
def test_soft_targets_match_torch_float64(rng, reduction, weight, smoothing, targets):
    n, c = 7, 5
    x = rng.standard_normal((n, c)) * 2
    # torch also takes negative, non-normalised "probabilities" (a linear functional of log p)
    t = rng.dirichlet(np.ones(c), size=n) if targets == "dirichlet" else rng.standard_normal((n, c))
    w = _class_weight(rng, weight, c)
    xt = torch.tensor(x, requires_grad=True)
    want = F.cross_entropy(
        xt, torch.tensor(t), weight=None if w is None else torch.tensor(w),
        reduction=reduction, label_smoothing=smoothing,
    )
    want.sum().backward()
    loss, grad = sk.cross_entropy_and_grad(x, t, weight=w, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_softmax_matches_torch_float64(rng):
    x = rng.standard_normal((5, 4, 3)) * 10
    for axis in range(3):
        # torch forms log(1 + tiny) without log1p, so near-zero log-probs differ in absolute 1e-16
        np.testing.assert_allclose(sk.softmax(x, axis), F.softmax(torch.tensor(x), dim=axis).numpy(), rtol=1e-13)
        np.testing.assert_allclose(
            sk.log_softmax(x, axis), F.log_softmax(torch.tensor(x), dim=axis).numpy(), rtol=1e-13, atol=1e-15
        )
        np.testing.assert_allclose(sk.log_softmax(x, axis), oracle.log_softmax(x, axis), rtol=1e-14)


def test_binary_cross_entropy_matches_torch(rng):
    x = rng.standard_normal((6, 3)) * 4
    y = rng.uniform(size=(6, 3))
    w = rng.uniform(0.5, 2, size=(6, 3))
    pw = rng.uniform(0.5, 3, size=3)
    for reduction in ["mean", "sum", "none"]:
        want = F.binary_cross_entropy_with_logits(
            torch.tensor(x), torch.tensor(y), weight=torch.tensor(w), pos_weight=torch.tensor(pw), reduction=reduction
        )
        got = sk.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction=reduction)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)


def test_binary_cross_entropy_weights_must_broadcast_to_the_logits(rng):
    """Broadcasting *with* the logits was accepted: a (2, 4, 3) weight on (4, 3) logits gave a
    (2, 4, 3) loss and half the mean (audit); torch refuses it. (4, 1) pos_weight is torch's too."""
    x, y = rng.standard_normal((4, 3)), rng.uniform(size=(4, 3))
    for name in ("weight", "pos_weight"):
        for shape in [(2, 4, 3), (1, 1, 3)]:
            for args in ((x, y), (torch.tensor(x), torch.tensor(y))):
                with pytest.raises(ValueError, match=rf"{name} of shape \({shape[0]}, .*cannot broadcast to \(4, 3\)"):
                    sk.binary_cross_entropy_with_logits(*args, **{name: np.ones(shape)})
    pw = rng.uniform(0.5, 3, size=(4, 1))
    want = F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y), pos_weight=torch.tensor(pw))
    np.testing.assert_allclose(sk.binary_cross_entropy_with_logits(x, y, pos_weight=pw), want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shift", [1, -1])
def test_out_and_grad_out_overlapping_the_input_by_a_row(rng, shift):
    """out= one row ahead of (or behind) x in one buffer: rows were overwritten before they were
    read (399 of 400 softmax rows wrong, audit); overlapping inputs are copied first, as NumPy does."""
    buf = rng.standard_normal((401, 7))
    x, out = (buf[:400], buf[1:]) if shift == 1 else (buf[1:], buf[:400])
    x_copy = x.copy()
    for fn in (sk.softmax, sk.log_softmax):
        want = fn(x_copy)
        np.testing.assert_allclose(fn(x, out=out), want, rtol=1e-12)
        buf[(0 if shift == 1 else 1):(400 if shift == 1 else 401)] = x_copy  # restore x
    y = rng.integers(0, 7, 400)
    want_loss, want_grad = sk.cross_entropy_and_grad(x_copy, y)
    loss, grad = sk.cross_entropy_and_grad(x, y, grad_out=out)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-15)


# --------------------------------------------------------------------------- extras beyond torch


def test_z_loss_adds_weighted_lse_squared(rng):
    x = rng.standard_normal((6, 4))
    y = np.array([0, 1, 2, 3, -100, 1])
    w = np.array([1.0, 2.0, 0.5, 1.5])
    base = sk.cross_entropy(x, y, weight=w, reduction="none")
    with_z = sk.cross_entropy(x, y, weight=w, reduction="none", z_loss=1e-2)
    lse = oracle.logsumexp(x)
    w_y = np.where(y >= 0, w[np.maximum(y, 0)], 0.0)
    np.testing.assert_allclose(with_z - base, 1e-2 * w_y * lse**2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        sk.cross_entropy(x, y, weight=w, z_loss=1e-2), np.sum(with_z) / np.sum(w_y), rtol=1e-12
    )


def test_softcap_applies_tanh_before_softmax(rng):
    x = rng.standard_normal((5, 7)) * 30
    y = rng.integers(0, 7, size=5)
    capped = 10.0 * np.tanh(x / 10.0)
    np.testing.assert_allclose(
        sk.cross_entropy(x, y, softcap=10.0), F.cross_entropy(torch.tensor(capped), torch.tensor(y)).item(), rtol=1e-12
    )


# --------------------------------------------------------------------------- finite differences


def _numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


FD_CASES = [
    dict(),
    dict(weight="w"),
    dict(label_smoothing=0.3),
    dict(label_smoothing=0.3, weight="w"),
    dict(z_loss=0.05),
    dict(z_loss=0.05, weight="w"),
    dict(softcap=2.0),
    dict(softcap=2.0, label_smoothing=0.1, z_loss=0.02, weight="w"),
    dict(ignore=True),
    dict(soft=True),
    dict(soft=True, weight="w", label_smoothing=0.2, z_loss=0.03, softcap=3.0),
]


@pytest.mark.parametrize("case", FD_CASES, ids=[str(c) for c in FD_CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_by_finite_differences(rng, case, reduction):
    case = dict(case)
    n, c = 4, 5
    x = rng.standard_normal((n, c)) * 1.5
    soft = case.pop("soft", False)
    ignore = case.pop("ignore", False)
    if case.get("weight") == "w":
        case["weight"] = rng.uniform(0.3, 2.0, size=c)
    y = rng.dirichlet(np.ones(c), size=n) if soft else rng.integers(0, c, size=n)
    if ignore:
        y[2] = -100
    upstream = rng.standard_normal(n) if reduction == "none" else 0.7
    _, grad = sk.cross_entropy_and_grad(x, y, reduction=reduction, grad_output=upstream, **case)

    def scalar_loss(z):
        return float(np.sum(np.asarray(sk.cross_entropy(z, y, reduction=reduction, **case)) * upstream))

    np.testing.assert_allclose(grad, _numeric_grad(scalar_loss, x), rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- decided differences from torch


def test_all_targets_ignored_mean_is_zero_with_zero_grad():
    x = np.random.default_rng(0).standard_normal((3, 4))
    y = np.full(3, -100)
    loss, grad = sk.cross_entropy_and_grad(x, y)
    assert float(loss) == 0.0
    assert np.all(grad == 0.0)
    assert np.isnan(F.cross_entropy(torch.tensor(x), torch.tensor(y)).item())  # torch differs


def test_soft_target_zero_on_minus_inf_logit_contributes_zero():
    x = np.array([[0.0, -np.inf, 1.0]])
    t = np.array([[0.5, 0.0, 0.5]])
    loss, grad = sk.cross_entropy_and_grad(x, t)
    want = oracle.cross_entropy(x, t)
    assert np.isfinite(loss) and abs(float(loss) - want) < 1e-12
    assert np.all(np.isfinite(grad)) and grad[0, 1] == 0.0
    assert np.isnan(F.cross_entropy(torch.tensor(x), torch.tensor(t)).item())  # torch differs


def test_all_minus_inf_row():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, 2.0]])
    p = sk.softmax(x)
    assert np.all(p[0] == 0.0) and not np.isnan(p).any()
    assert np.all(sk.log_softmax(x)[0] == -np.inf)
    assert sk.logsumexp(x)[0] == -np.inf
    losses = sk.cross_entropy(x, np.array([1, 2]), reduction="none")
    assert losses[0] == np.inf and np.isfinite(losses[1])
    # an ignored target on such a row is simply ignored
    assert np.isfinite(sk.cross_entropy(x, np.array([-100, 2])))


def test_minus_inf_mask_is_exact(rng):
    x = rng.standard_normal((4, 6))
    x[:, [1, 4]] = -np.inf
    p = sk.softmax(x)
    assert np.all(p[:, [1, 4]] == 0.0)
    np.testing.assert_allclose(p[:, [0, 2, 3, 5]], oracle.softmax(x[:, [0, 2, 3, 5]]), rtol=1e-13)
    y = np.array([0, 2, 3, 5])
    loss, grad = sk.cross_entropy_and_grad(x, y)
    np.testing.assert_allclose(loss, oracle.cross_entropy(x[:, [0, 2, 3, 5]], np.array([0, 1, 2, 3])), rtol=1e-13)
    assert np.all(grad[:, [1, 4]] == 0.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_plus_inf_make_the_row_nan(bad):
    x = np.array([[0.0, bad, 1.0], [0.0, 1.0, 2.0]])
    for op in (sk.softmax, sk.log_softmax):
        r = op(x)
        assert np.all(np.isnan(r[0])) and not np.isnan(r[1]).any()
    assert np.isnan(sk.logsumexp(x)[0])
    losses, grad = sk.cross_entropy_and_grad(x, np.array([0, 1]), reduction="none")
    assert np.isnan(losses[0]) and np.isfinite(losses[1])
    assert np.all(np.isnan(grad[0])) and np.all(np.isfinite(grad[1]))


def test_extreme_logits_stay_finite():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    p = sk.softmax(x)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    loss = sk.cross_entropy(x, np.array([1, 0]), reduction="none")
    np.testing.assert_allclose(loss, [2e4, np.log(3.0)], rtol=1e-6)
    assert np.all(np.isfinite(sk.log_softmax(x)))


def test_sigmoid_and_log_sigmoid_extremes():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    from scipy.special import expit

    np.testing.assert_allclose(sk.sigmoid(x), expit(x), rtol=1e-15)
    np.testing.assert_allclose(sk.log_sigmoid(x), [-1e4, -50.0, -np.log(2.0), -np.exp(-50.0), 0.0], rtol=1e-12)


def test_scalar_empty_and_dtype_inputs_as_torch():
    """torch returns these; NumPy input now does too (the torch path is tested in test_torch_ported)."""
    for shape, axis in [((5, 0, 0), -1), ((0, 10), 0), ((3, 0), 0)]:
        x = np.zeros(shape)
        for ours, ref in ((sk.softmax, F.softmax), (sk.log_softmax, F.log_softmax)):
            assert ours(x, axis).shape == tuple(ref(torch.zeros(shape), axis).shape)
        assert sk.logsumexp(x, axis).shape == tuple(torch.logsumexp(torch.zeros(shape), axis).shape)
    assert sk.softmax(np.array(3.0)) == 1.0 and sk.log_softmax(np.float32(3.0), 0) == 0.0
    assert sk.logsumexp(np.array(-2.5)) == -2.5
    with pytest.raises(ValueError, match="out of range for a 0-dim input"):
        sk.softmax(np.array(1.0), 1)
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    p = sk.softmax(x, dtype=np.float64)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, F.softmax(torch.tensor(x), -1, dtype=torch.float64).numpy(), rtol=1e-15)
    assert sk.log_softmax(torch.tensor(x), dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("given", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_dtype_cast_is_computed_in_place_of_the_copy_not_the_input(rng, given, axis):
    """With ``dtype=`` the kernels write into the cast's private copy: the caller's array is untouched."""
    x = (rng.standard_normal((37, 11)) * 4).astype(given)
    before = x.copy()
    for ours, ref in ((sk.softmax, oracle.softmax), (sk.log_softmax, oracle.log_softmax)):
        got = ours(x, axis, dtype=np.float64)
        assert got.dtype == np.float64 and not np.shares_memory(got, x)
        np.testing.assert_allclose(got, ref(x.astype(np.float64), axis), rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(x, before)


# --------------------------------------------------------------------------- read-only inputs


def _read_only(a, tmp_path=None):
    """``a`` as a read-only array: a memory map (np.load(mmap_mode="r")) or setflags(write=False)."""
    a = np.ascontiguousarray(a)
    if tmp_path is not None:
        path = tmp_path / f"a{len(list(tmp_path.iterdir()))}.npy"
        np.save(path, a)
        return np.load(path, mmap_mode="r")
    a = a.copy()
    a.setflags(write=False)
    return a


def _read_only_cases(dtype, soft_cap):
    """(name, call) for every public op; sizes above kernels.CPU_MIN_ELEMENTS (numba kernels)."""
    rng = np.random.default_rng(5)
    n, c, d = 300, 40, 8
    x = rng.standard_normal((n, c)).astype(dtype)
    y = rng.integers(0, c, n)
    y[::7] = -100
    p = rng.dirichlet(np.ones(c), n).astype(dtype)
    w = rng.uniform(0.5, 1.5, c)
    h = rng.standard_normal((n, d)).astype(dtype)
    lw = (0.5 * rng.standard_normal((c, d))).astype(dtype)
    lb = rng.standard_normal(c).astype(dtype)
    b = (x > 0).astype(dtype)
    ce = dict(weight=w, label_smoothing=0.1, z_loss=1e-3, softcap=soft_cap)
    lce = dict(class_weight=w, label_smoothing=0.1, z_loss=1e-3, softcap=soft_cap)
    return {
        "softmax": (lambda x: sk.softmax(x, temperature=2.0), [x]),
        "softmax_axis0": (lambda x: sk.softmax(x, axis=0), [x]),
        "log_softmax": (lambda x: sk.log_softmax(x), [x]),
        "logsumexp": (lambda x: sk.logsumexp(x), [x]),
        "sigmoid": (lambda x: sk.sigmoid(x), [x]),
        "log_sigmoid": (lambda x: sk.log_sigmoid(x), [x]),
        "cross_entropy": (lambda x, y: sk.cross_entropy(x, y), [x, y]),
        "cross_entropy_options": (lambda x, y, w: sk.cross_entropy(x, y, reduction="none", **{**ce, "weight": w}), [x, y, w]),
        "cross_entropy_soft": (lambda x, p: sk.cross_entropy(x, p, **ce), [x, p]),
        "cross_entropy_and_grad": (lambda x, y: sk.cross_entropy_and_grad(x, y, **ce), [x, y]),
        "cross_entropy_and_grad_soft": (
            lambda x, p, u: sk.cross_entropy_and_grad(x, p, reduction="none", grad_output=u, **ce),
            [x, p, np.linspace(0.5, 1.5, n)],
        ),
        "binary_cross_entropy_with_logits": (
            lambda x, b, w, pw: sk.binary_cross_entropy_with_logits(x, b, weight=w, pos_weight=pw),
            [x, b, np.ones(c), np.full(c, 2.0)],
        ),
        "linear_cross_entropy": (lambda h, lw, y, lb: sk.linear_cross_entropy(h, lw, y, bias=lb, **lce), [h, lw, y, lb]),
        "linear_cross_entropy_and_grad": (
            lambda h, lw, p, lb: sk.linear_cross_entropy_and_grad(h, lw, p, bias=lb, chunk_size=64, **lce),
            [h, lw, p, lb],
        ),
    }


_READ_ONLY_OPS = sorted(_read_only_cases(np.float32, None))


@pytest.mark.parametrize("how", ["setflags", "mmap"])
@pytest.mark.parametrize("soft_cap", [None, 3.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", _READ_ONLY_OPS)
def test_read_only_inputs(tmp_path, op, dtype, soft_cap, how):
    """Read-only logits, targets and weights (np.load(mmap_mode="r"), setflags(write=False))
    give the writeable inputs' results, and are left untouched."""
    fn, args = _read_only_cases(dtype, soft_cap)[op]
    want = fn(*[a.copy() for a in args])
    ro = [_read_only(a, tmp_path if how == "mmap" else None) for a in args]
    got = fn(*ro)
    # same values to rounding: numba compiles a separate specialisation for read-only arrays,
    # whose vectorised sums may be ordered differently
    eps = np.finfo(dtype).eps
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=16 * eps, atol=16 * eps)
    for r, a in zip(ro, args):
        assert not r.flags.writeable
        np.testing.assert_array_equal(r, a)


def test_read_only_out_and_grad_out_are_refused_up_front():
    x = np.ones((300, 40), np.float32)
    out = np.empty_like(x)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        sk.softmax(x, out=out)
    with pytest.raises(ValueError, match="grad_out is read-only"):
        sk.cross_entropy_and_grad(x, np.zeros(300, np.int64), grad_out=out)


def test_grad_out_may_not_overwrite_a_soft_target():
    """On the numba path the soft target is read block by block with the logits; written over as it was
    read, the gradient came out wrong by 0.016 with no error (audit)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 40)).astype(np.float32)
    t = rng.uniform(0, 1, (64, 40)).astype(np.float32)
    with pytest.raises(ValueError, match="grad_out shares memory with target"):
        sk.cross_entropy_and_grad(x, t, grad_out=t)
    both = rng.uniform(0, 1, (2, 64, 40)).astype(np.float32)  # target and buffer: views of one array
    with pytest.raises(ValueError, match="grad_out shares memory with target"):
        sk.cross_entropy_and_grad(x, both[0], grad_out=both[0][::-1])
    _, g = sk.cross_entropy_and_grad(x, t)
    y = x.copy()
    _, g_in_place = sk.cross_entropy_and_grad(y, t, grad_out=y)  # the logits themselves stay allowed
    np.testing.assert_array_equal(g_in_place, g)


def test_longdouble_logits_are_computed_in_float64():
    """``np.longdouble`` mapped to float32 compute: softmax off by 3e-8 where float64 gives 3e-17 (audit)."""
    x = np.array([[0.1, 0.2, 0.3], [5.0, -3.0, 0.25]], np.longdouble)
    wide = sk.softmax(x)
    assert wide.dtype == np.longdouble
    np.testing.assert_allclose(wide.astype(np.float64), oracle.softmax(x.astype(np.float64)), rtol=0, atol=1e-15)
    loss = sk.cross_entropy(x, np.array([0, 1]))
    assert float(loss) == pytest.approx(float(sk.cross_entropy(x.astype(np.float64), np.array([0, 1]))), rel=1e-15)


def test_grad_output_must_have_the_loss_shape(rng):
    """Audit: a (5, 4) grad_output for a (4, 5) loss (reduction="none") was reshaped to 20 rows,
    pairing upstream values with the wrong rows: wrong gradients with no error."""
    x = rng.standard_normal((4, 5, 3))
    y = rng.integers(0, 3, size=(4, 5))
    up = rng.standard_normal((4, 5))
    _, per_row = sk.cross_entropy_and_grad(x, y, reduction="none")  # upstream 1
    _, g = sk.cross_entropy_and_grad(x, y, reduction="none", grad_output=up)
    np.testing.assert_allclose(g, per_row * up[..., None], rtol=1e-14, atol=1e-16)
    h, w = rng.standard_normal((4, 5, 6)), rng.standard_normal((3, 6))
    calls = {
        "cross_entropy_and_grad": lambda **kw: sk.cross_entropy_and_grad(x, y, **kw),
        "linear_cross_entropy_and_grad": lambda **kw: sk.linear_cross_entropy_and_grad(h, w, y, **kw),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"grad_output must have the loss's shape \(4, 5\) for reduction='none', "
                                             r"got shape \(5, 4\): the same 20 values in another shape"):
            call(reduction="none", grad_output=up.T.copy())
        with pytest.raises(ValueError, match=r"got shape \(19,\): 19 values for 20 losses"):
            call(reduction="none", grad_output=np.ones(19))
        with pytest.raises(ValueError, match=r"grad_output must have the loss's shape \(4, 5\).*got shape \(\)"):
            call(reduction="none", grad_output=2.0)
        for reduction in ("mean", "sum"):
            with pytest.raises(ValueError, match=rf"grad_output must be a scalar \(shape \(\)\) for "
                                                 rf"reduction='{reduction}'.*got shape \(1,\)"):
                call(reduction=reduction, grad_output=[2.0])
        with pytest.raises(TypeError, match=r"grad_output must be real numbers, got str of dtype <U3"):
            call(grad_output="one")
        with pytest.raises(TypeError, match=r"grad_output must be real numbers, got ndarray of dtype complex128"):
            call(reduction="none", grad_output=up + 1j)
        with pytest.raises(ValueError, match="grad_output must be a number or an array of numbers"):
            call(reduction="none", grad_output=[[1.0, 2.0], [3.0]])
    # 1-D logits: the "none" loss is 0-dim, so a scalar upstream is its shape.
    loss, g1 = sk.cross_entropy_and_grad(x[0, 0], y[0, 0], reduction="none", grad_output=3.0)
    np.testing.assert_allclose(g1, 3.0 * per_row[0, 0], rtol=1e-14)
