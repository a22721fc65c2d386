"""Triton kernels (softmaxkit.kernels.triton) against the float64 oracle.

Without a GPU the kernels run on CPU tensors through Triton's interpreter
(``TRITON_INTERPRET=1``, switched on by ``_triton.use_interpreter()`` before
the kernels are imported), on tiny shapes; with CUDA the same tests run the
compiled kernels on the GPU, and the tests marked ``gpu`` add LLM-sized
shapes. The whole module is skipped when triton is not installed.

Tiny ``block_size`` values force the looping (online softmax) path, so that a
few dozen classes cover leading all ``-inf`` blocks, partial last blocks and
the running-max rescale.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

from softmaxkit._options import CrossEntropyOptions  # noqa: E402
from softmaxkit.torch import _triton  # noqa: E402

CUDA = torch.cuda.is_available()
if not CUDA:
    _triton.use_interpreter()  # before the kernels are imported (see its docstring)

import oracle  # noqa: E402
import softmaxkit as sk  # noqa: E402
from conftest import tol  # noqa: E402

try:
    from softmaxkit.kernels import triton as tk
except ImportError as exc:  # installed but unusable on this platform
    pytest.skip(f"triton is not importable: {exc}", allow_module_level=True)

DEVICE = "cuda" if CUDA else "cpu"
INF = float("inf")

@pytest.fixture(scope="module", autouse=True)
def _cpu_routing_off_afterwards():
    """Other test modules in this process must not see CPU tensors routed to Triton."""
    yield
    _triton._INTERPRET_ON_CPU = False


# The interpreter evaluates masked lanes too (exp(-inf - -inf) etc.); numpy
# warns about them although the results are discarded.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: Loss/gradient tolerance of 16-bit inputs against the float64 oracle on the
#: *rounded* inputs: one rounding of the output, as torch's own 16-bit kernels.
LOW = {torch.bfloat16: dict(rtol=1e-2, atol=1e-2), torch.float16: dict(rtol=2e-3, atol=2e-3)}


def _tol(dtype):
    return tol(np.float32) if dtype == torch.float32 else LOW[dtype]


def _adversarial(rng, n, c, *, scale=3.0):
    """(n, c) float32 rows: random, all -inf, a leading -inf block, NaN, +inf, +-1e4."""
    x = rng.standard_normal((n, c)).astype(np.float32) * scale
    x[1] = -INF
    x[2, : c // 2] = -INF  # leading all -inf blocks on the looping path
    x[3, c // 3] = np.nan
    x[4, c - 1] = INF
    x[5] = np.where(np.arange(c) % 2 == 0, 1e4, -1e4)
    x[6, : c - 1] = -INF  # one finite class, at the very end
    return x


def _t(a, dtype=None):
    t = torch.as_tensor(a)
    return t.to(device=DEVICE, dtype=dtype or t.dtype)


def _np(t):
    return t.detach().to("cpu", torch.float64).numpy()


# --------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("block_size", [None, 16], ids=["single", "loop"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_softmax_forward_matches_oracle(rng, log, block_size, temperature):
    x = _adversarial(rng, 8, 45)
    y = tk.softmax_forward(_t(x), inv_temperature=1 / temperature, log=log, block_size=block_size)
    ref = (oracle.log_softmax if log else oracle.softmax)(x, temperature=temperature)
    np.testing.assert_allclose(_np(y), ref, **tol(np.float32))
    if not log:
        assert _np(y)[1].tolist() == [0.0] * 45  # all -inf row: zeros, no NaN
    else:
        assert np.all(_np(y)[1] == -INF)
    assert np.all(np.isnan(_np(y)[3])) and np.all(np.isnan(_np(y)[4]))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_softmax_low_precision_in_and_out(rng, dtype):
    x = _t(rng.standard_normal((4, 300)) * 4, dtype)
    y = tk.softmax_forward(x)
    assert y.dtype == dtype
    ref = oracle.softmax(_np(x))  # oracle on the rounded input: only the output rounding remains
    np.testing.assert_allclose(_np(y), ref, rtol=LOW[dtype]["rtol"], atol=1e-4)


def test_softmax_row_sums_stay_within_1e6(rng):
    c = 1 << 16 if not CUDA else 262144
    x = _t(rng.standard_normal((2, c)).astype(np.float32) * 2)
    for block_size in (None, 4096):
        y = tk.softmax_forward(x, block_size=block_size)
        sums = y.double().sum(dim=1).cpu().numpy()
        np.testing.assert_allclose(sums, 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("block_size", [None, 16], ids=["single", "loop"])
def test_softmax_backward_matches_float64_formula(rng, log, block_size):
    x = rng.standard_normal((5, 37)).astype(np.float32)
    x[1, :20] = -INF
    dy = rng.standard_normal((5, 37)).astype(np.float32)
    inv_t = 1 / 0.8
    y = tk.softmax_forward(_t(x), inv_temperature=inv_t, log=log, block_size=block_size)
    dx = tk.softmax_backward(y, _t(dy), inv_temperature=inv_t, log=log, block_size=block_size)
    p = oracle.softmax(x, temperature=0.8)
    dy64 = dy.astype(np.float64)
    if log:
        ref = (dy64 - p * dy64.sum(1, keepdims=True)) * inv_t
    else:
        ref = p * (dy64 - (dy64 * p).sum(1, keepdims=True)) * inv_t
    np.testing.assert_allclose(_np(dx), ref, rtol=1e-5, atol=1e-6)


def test_softmax_autograd_wrapper_any_dim(rng):
    x64 = torch.tensor(rng.standard_normal((3, 11, 4)))
    x = x64.float().to(DEVICE).requires_grad_()
    for log in (False, True):
        y = _triton.softmax(x, dim=1, temperature=1.5, log=log)
        ref_fn = torch.log_softmax if log else torch.softmax
        ref = ref_fn(x64 / 1.5, dim=1)
        np.testing.assert_allclose(_np(y), ref.numpy(), **tol(np.float32))
        w = torch.tensor(rng.standard_normal((3, 11, 4)))
        (gx,) = torch.autograd.grad((y * w.float().to(DEVICE)).sum(), x)
        x64_ = x64.clone().requires_grad_()
        (gref,) = torch.autograd.grad((ref_fn(x64_ / 1.5, dim=1) * w).sum(), x64_)
        np.testing.assert_allclose(_np(gx), gref.numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- cross-entropy

OPTION_GRID = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2},
    {"softcap": 5.0},
    {"weight": "w"},
    {"weight": "w", "label_smoothing": 0.2},
    {"weight": "w", "label_smoothing": 0.3, "z_loss": 0.1, "softcap": 3.0},
    {"label_smoothing": 1.0},
]


def _options(spec, c, rng):
    opts = dict(spec)
    if opts.get("weight") == "w":
        w = rng.uniform(0.5, 2.0, c)
        w[3] = 0.0  # a zero class weight
        opts["weight"] = w
    return opts


def _targets(rng, n, c, soft):
    if soft:
        t = rng.dirichlet(np.ones(c), n).astype(np.float32)
        t[2, : c // 2] = 0.0  # zero target mass on the -inf logits: contributes 0
        t[6, : c - 1] = 0.0
        t[6, c - 1] = 1.0
        return t
    y = rng.integers(0, c, n)
    y[0] = -100  # ignored
    y[2] = c - 2  # a finite logit in the half-masked row
    y[6] = c - 1
    return y


def _oracle_rows(x, t, opts):
    loss, _ = oracle.cross_entropy_rows(x, t, **opts)
    # The decided value of an impossible target (all -inf row; DESIGN.md):
    # +inf. The oracle adds z_loss * lse**2 = 0 * inf = NaN there.
    if opts.get("softcap") is None:
        active = t.ndim == 2 or t[1] != -100
        loss[1] = np.inf if active else 0.0
    return loss


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("block_size", [None, 16], ids=["single", "loop"])
@pytest.mark.parametrize("spec", OPTION_GRID, ids=lambda s: "-".join(s) or "plain")
def test_cross_entropy_rows_match_oracle_and_reference_grad(rng, soft, block_size, spec):
    n, c = 8, 37
    x = _adversarial(rng, n, c)
    t = _targets(rng, n, c, soft)
    opts = _options(spec, c, rng)
    o = CrossEntropyOptions(**opts)
    weight = None if o.weight is None else _t(o.weight, torch.float32)
    scale = rng.uniform(0.5, 2.0, n)  # a non-uniform per-row scale ("none" upstream grad)
    grad = torch.full((n, c), 12345.0, device=DEVICE)  # poisoned: every element must be written
    loss = tk.cross_entropy_rows(
        _t(x), _t(t), o, weight=weight, row_scale=_t(scale, torch.float32), grad_out=grad,
        block_size=block_size,
    )
    np.testing.assert_allclose(_np(loss), _oracle_rows(x, t, opts), **tol(np.float32))
    _, ref_grad = sk.cross_entropy_and_grad(x, t, reduction="none", **opts)
    np.testing.assert_allclose(_np(grad), ref_grad * scale[:, None], rtol=1e-5, atol=1e-6)
    if not soft:
        assert np.all(_np(grad)[0] == 0.0)  # ignored row: zero gradient


@pytest.mark.parametrize("block_size", [None, 64], ids=["single", "loop"])
def test_float32_softcap_gradient_where_tanh_saturates(rng, block_size):
    x, y, want = oracle.saturated_softcap_case(rng)
    grad = torch.empty(x.shape, dtype=torch.float32, device=DEVICE)
    tk.cross_entropy_rows(_t(x), _t(y), CrossEntropyOptions(softcap=30.0),
                          row_scale=_t(np.ones(1), torch.float32), grad_out=grad, block_size=block_size)
    np.testing.assert_allclose(_np(grad), want, rtol=1e-4, atol=0)


@pytest.mark.parametrize("spec", [{}, {"label_smoothing": 0.2, "z_loss": 0.05, "softcap": 4.0, "weight": "w"}],
                         ids=["plain", "all"])
def test_cross_entropy_grad_matches_finite_differences_of_oracle(rng, spec):
    n, c = 3, 7
    x = rng.standard_normal((n, c))
    y = np.array([1, 4, 6])
    opts = _options(spec, c, rng)
    grad = torch.empty((n, c), dtype=torch.float32, device=DEVICE)
    tk.cross_entropy_rows(_t(x, torch.float32), _t(y), CrossEntropyOptions(**opts),
                          weight=None if "weight" not in opts else _t(opts["weight"], torch.float32),
                          row_scale=_t(np.ones(1), torch.float32), grad_out=grad, block_size=4)
    h = 1e-6
    fd = np.zeros_like(x)
    for i in range(n):
        for j in range(c):
            xp, xm = x.copy(), x.copy()
            xp[i, j] += h
            xm[i, j] -= h
            lp, _ = oracle.cross_entropy_rows(xp, y, **opts)
            lm, _ = oracle.cross_entropy_rows(xm, y, **opts)
            fd[i, j] = (lp.sum() - lm.sum()) / (2 * h)
    # x is rounded to float32 in the kernel: compare at float32 resolution.
    np.testing.assert_allclose(_np(grad), fd, rtol=1e-4, atol=1e-5)


def test_ignored_rows_do_not_read_logits(rng):
    # NaN in an ignored row must not leak: its loads are masked off.
    x = rng.standard_normal((3, 20)).astype(np.float32)
    x[1] = np.nan
    y = np.array([2, -100, 5])
    grad = torch.empty((3, 20), device=DEVICE)
    loss = tk.cross_entropy_rows(_t(x), _t(y), CrossEntropyOptions(), row_scale=_t(np.ones(1), torch.float32),
                                 grad_out=grad, block_size=8)
    assert _np(loss)[1] == 0.0 and np.all(_np(grad)[1] == 0.0)
    assert np.isfinite(_np(loss)).all()


def test_cross_entropy_rows_in_place_gradient(rng):
    x = rng.standard_normal((4, 50)).astype(np.float32)
    y = np.array([0, 10, 20, 49])
    buf = _t(x.copy())
    loss = tk.cross_entropy_rows(buf, _t(y), CrossEntropyOptions(), row_scale=_t(np.ones(1), torch.float32),
                                 grad_out=buf, block_size=16)
    _, ref = sk.cross_entropy_and_grad(x, y, reduction="sum")
    np.testing.assert_allclose(_np(buf), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(loss), oracle.cross_entropy_rows(x, y)[0], **tol(np.float32))


def test_bf16_true_class_gradient_is_formed_in_float32():
    # p_y = 0.999: in bf16, p_y rounds to 1.0 and p_y - 1 to 0. The kernel must
    # give -0.001 to bf16 precision.
    c = 64
    x = np.zeros((2, c), dtype=np.float32)
    x[:, 5] = np.log(0.999 * (c - 1) / 0.001)  # softmax(x)[5] = 0.999
    xb = _t(x, torch.bfloat16)
    y = np.array([5, 5])
    grad = torch.empty((2, c), dtype=torch.bfloat16, device=DEVICE)
    tk.cross_entropy_rows(xb, _t(y), CrossEntropyOptions(), row_scale=_t(np.ones(1), torch.float32),
                          grad_out=grad)
    p = oracle.softmax(_np(xb))
    exact = p[:, 5] - 1.0
    got = _np(grad)[:, 5]
    assert np.all(got != 0.0)
    np.testing.assert_allclose(got, exact, rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_loss_no_worse_than_torch(rng, dtype):
    x64 = torch.tensor(rng.standard_normal((16, 500)) * 3)
    xl = x64.to(dtype)
    y = torch.tensor(rng.integers(0, 500, 16))
    exact = oracle.cross_entropy_rows(xl.double().numpy(), y.numpy())[0]
    ours = _np(tk.cross_entropy_rows(xl.to(DEVICE), y.to(DEVICE), CrossEntropyOptions()))
    theirs = torch.nn.functional.cross_entropy(xl, y, reduction="none").double().numpy()
    assert np.max(np.abs(ours - exact)) <= np.max(np.abs(theirs - exact)) + 1e-6


# --------------------------------------------------------------------------- autograd wrappers


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cross_entropy_autograd_matches_torch(rng, reduction, dtype):
    n, c = 6, 23
    x64 = torch.tensor(rng.standard_normal((n, c)) * 2).to(dtype).double()
    y = torch.tensor(rng.integers(0, c, n))
    y[2] = -100
    w = torch.tensor(rng.uniform(0.5, 2, c))
    opts = CrossEntropyOptions(weight=w.numpy(), reduction=reduction, label_smoothing=0.1)
    x = x64.to(dtype).to(DEVICE).requires_grad_()
    loss = _triton.cross_entropy(x, y.to(DEVICE), opts)
    assert loss.dtype == dtype
    up = torch.tensor(rng.uniform(-2, 2, n)) if reduction == "none" else torch.tensor(1.7)
    (gx,) = torch.autograd.grad(loss, x, up.to(dtype).to(DEVICE))
    xr = x64.clone().requires_grad_()
    ref = torch.nn.functional.cross_entropy(xr, y, weight=w, reduction=reduction, label_smoothing=0.1)
    (gref,) = torch.autograd.grad(ref, xr, up.to(dtype).double())
    t = _tol(dtype)
    np.testing.assert_allclose(_np(loss), ref.detach().numpy(), **t)
    np.testing.assert_allclose(_np(gx), gref.numpy(), rtol=t["rtol"] * 10, atol=t["atol"])


def test_cross_entropy_all_ignored_mean_is_zero_with_zero_grad():
    x = torch.randn(3, 9, device=DEVICE, requires_grad=True)
    y = torch.full((3,), -100, device=DEVICE)
    loss = _triton.cross_entropy(x, y, CrossEntropyOptions())
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.all(x.grad == 0)


def test_cross_entropy_second_backward_recomputes(rng):
    x = torch.tensor(rng.standard_normal((4, 10)), dtype=torch.float32, device=DEVICE, requires_grad=True)
    y = torch.tensor([1, 2, 3, 4], device=DEVICE)
    loss = _triton.cross_entropy(x, y, CrossEntropyOptions(reduction="sum"))
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, torch.tensor(2.0, device=DEVICE))
    np.testing.assert_allclose(_np(g2), 2 * _np(g1), rtol=1e-6)


def _penalty_grad(loss_fn, inputs):
    """d/dinputs of ``loss + sum(grad**2)``: needs the second derivative (create_graph=True)."""
    loss = loss_fn(*inputs)
    grads = torch.autograd.grad(loss, inputs, create_graph=True)
    total = loss + sum((g**2).sum() for g in grads)
    return [g.detach().double().cpu() for g in torch.autograd.grad(total, inputs)]


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_double_backward_matches_torch(rng, reduction):
    """create_graph=True through the Triton Functions: differentiable recomputation, not a detached gradient."""
    n, c, d = 5, 7, 3
    x64 = torch.tensor(rng.standard_normal((n, c)))
    y = torch.tensor([0, 3, -100, 6, 1])
    w = torch.tensor(rng.uniform(0.5, 2, c))
    opts = CrossEntropyOptions(weight=w.numpy(), reduction=reduction, label_smoothing=0.1)
    red = (lambda l: l.sum()) if reduction == "none" else (lambda l: l)
    ours = _penalty_grad(lambda x: red(_triton.cross_entropy(x, y.to(DEVICE), opts)),
                         [x64.float().to(DEVICE).requires_grad_()])
    ref = _penalty_grad(lambda x: red(torch.nn.functional.cross_entropy(
        x, y, weight=w, reduction=reduction, label_smoothing=0.1)), [x64.clone().requires_grad_()])
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-4, atol=1e-5)

    for log in (False, True):
        ours = _penalty_grad(lambda x: (_triton.softmax(x, 1, temperature=1.5, log=log) ** 3).sum(),
                             [x64.float().to(DEVICE).requires_grad_()])
        f = torch.log_softmax if log else torch.softmax
        ref = _penalty_grad(lambda x: (f(x / 1.5, 1) ** 3).sum(), [x64.clone().requires_grad_()])
        torch.testing.assert_close(ours[0], ref[0], rtol=1e-4, atol=1e-5)

    h64, wt64 = torch.tensor(rng.standard_normal((n, d))), torch.tensor(rng.standard_normal((c, d)))
    ours = _penalty_grad(lambda h, wt: red(_triton.linear_cross_entropy(h, wt, y.to(DEVICE), opts, chunk_size=2)),
                         [h64.float().to(DEVICE).requires_grad_(), wt64.float().to(DEVICE).requires_grad_()])
    ref = _penalty_grad(lambda h, wt: red(torch.nn.functional.cross_entropy(
        h @ wt.T, y, weight=w, reduction=reduction, label_smoothing=0.1)),
        [h64.clone().requires_grad_(), wt64.clone().requires_grad_()])
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_backend_contract_adapter_matches_torch_ops(rng):
    from softmaxkit.torch import _ops

    x = _t(_adversarial(rng, 8, 33))
    t = _t(_targets(rng, 8, 33, False))
    o = CrossEntropyOptions(label_smoothing=0.1, z_loss=0.01)
    scale = _t(rng.uniform(0.5, 2, 8), torch.float64)
    g1, g2 = torch.empty_like(x), torch.empty_like(x)
    l1 = _triton.cross_entropy_2d(x, t, o, row_scale=scale, grad_out=g1)
    l2 = _ops.cross_entropy_2d(x, t, o, row_scale=scale, grad_out=g2)
    assert l1.dtype == torch.float64
    np.testing.assert_allclose(_np(l1), _np(l2), **tol(np.float32))
    np.testing.assert_allclose(_np(g1), _np(g2), rtol=1e-5, atol=1e-6)


def test_available_rules():
    assert not _triton.available()
    assert not _triton.available(torch.zeros(2, dtype=torch.float64, device=DEVICE))
    assert _triton.available(torch.zeros(2, device=DEVICE), torch.zeros(2, dtype=torch.int64, device=DEVICE))


# --------------------------------------------------------------------------- linear + cross-entropy


def _dense_reference(h, w, b, y, opts, upstream):
    """Loss and the three gradients in float64 through dense torch autograd."""
    h = h.double().cpu().requires_grad_()
    w = w.double().cpu().requires_grad_()
    b = None if b is None else b.double().cpu().requires_grad_()
    z = h @ w.T + (0 if b is None else b)
    if opts.softcap is not None:
        z = opts.softcap * torch.tanh(z / opts.softcap)
    cw = None if opts.weight is None else torch.tensor(opts.weight)
    loss = torch.nn.functional.cross_entropy(z, y.cpu(), weight=cw, reduction=opts.reduction,
                                             label_smoothing=opts.label_smoothing,
                                             ignore_index=opts.ignore_index)
    if opts.z_loss:
        lse = torch.logsumexp(z, dim=1)
        active = (y.cpu() != opts.ignore_index).double()
        wy = active if cw is None else torch.where(y.cpu() >= 0, cw[y.cpu().clamp_min(0)], 0.0)
        zl = opts.z_loss * wy * lse**2
        denom = wy.sum()
        loss = loss + (zl if opts.reduction == "none" else zl.sum() / (denom if opts.reduction == "mean" else 1))
    inputs = [h, w] + ([] if b is None else [b])
    grads = torch.autograd.grad(loss, inputs, upstream.double().cpu())
    return loss.detach(), grads


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_linear_cross_entropy_matches_dense_float64(rng, reduction, with_bias):
    n, d, v = 10, 6, 19
    h = torch.tensor(rng.standard_normal((n, d)), dtype=torch.float32)
    w = torch.tensor(rng.standard_normal((v, d)) * 0.5, dtype=torch.float32)
    b = torch.tensor(rng.standard_normal(v), dtype=torch.float32) if with_bias else None
    y = torch.tensor(rng.integers(0, v, n))
    y[3] = -100
    opts = CrossEntropyOptions(reduction=reduction, label_smoothing=0.1, z_loss=0.01,
                               weight=rng.uniform(0.5, 2, v))
    hd, wd = h.to(DEVICE).requires_grad_(), w.to(DEVICE).requires_grad_()
    bd = None if b is None else b.to(DEVICE).requires_grad_()
    loss = _triton.linear_cross_entropy(hd, wd, y.to(DEVICE), opts, bias=bd, chunk_size=4)
    up = torch.tensor(rng.uniform(-2, 2, n)) if reduction == "none" else torch.tensor(0.75)
    inputs = [hd, wd] + ([] if bd is None else [bd])
    grads = torch.autograd.grad(loss, inputs, up.float().to(DEVICE))
    ref_loss, ref_grads = _dense_reference(h, w, b, y, opts, up)
    np.testing.assert_allclose(_np(loss), ref_loss.numpy(), rtol=1e-5, atol=1e-5)
    for got, ref in zip(grads, ref_grads):
        assert got.dtype == torch.float32
        np.testing.assert_allclose(_np(got), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_linear_cross_entropy_bf16_accumulates_weight_grad_in_float32(rng):
    n, d, v = 12, 8, 16
    h = torch.tensor(rng.standard_normal((n, d))).to(torch.bfloat16)
    w = torch.tensor(rng.standard_normal((v, d)) * 0.3).to(torch.bfloat16)
    y = torch.tensor(rng.integers(0, v, n))
    opts = CrossEntropyOptions()
    loss, gh, gw, _ = tk.linear_cross_entropy_rows(
        h.to(DEVICE), w.to(DEVICE), y.to(DEVICE), opts, row_scale=_t(np.ones(1), torch.float32), chunk_size=3
    )
    assert gw.dtype == torch.float32 and gh.dtype == torch.bfloat16
    ref_loss, (rh, rw) = _dense_reference(h, w, None, y, CrossEntropyOptions(reduction="sum"), torch.tensor(1.0))
    # bf16 logits (one rounding, as torch's dense bf16 path) then float32 math.
    np.testing.assert_allclose(_np(loss).sum(), ref_loss.numpy(), rtol=2e-2)
    np.testing.assert_allclose(_np(gw), rw.numpy(), rtol=5e-2, atol=3e-2)
    np.testing.assert_allclose(_np(gh), rh.numpy(), rtol=5e-2, atol=3e-2)


def test_chunk_rows_from_budget():
    from softmaxkit.kernels.triton.linear_cross_entropy import chunk_rows

    assert chunk_rows(8192, 256000, 2) == 2048  # 1 GiB of bf16 logits
    assert chunk_rows(10, 256000, 2) == 10
    assert chunk_rows(8192, 1 << 40, 4) == 1


# --------------------------------------------------------------------------- GPU only


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_gpu_int64_offsets_past_2_31_elements():
    # 8200 x 262144 = 2.15e9 elements > 2**31: the last rows live past int32 offsets.
    n, c = 8200, 262144
    x = torch.randn(n, c, device="cuda", dtype=torch.bfloat16)
    y = torch.randint(0, c, (n,), device="cuda")
    loss = tk.cross_entropy_rows(x, y, CrossEntropyOptions())
    tail = slice(n - 4, n)
    ref = torch.nn.functional.cross_entropy(x[tail].float(), y[tail], reduction="none")
    torch.testing.assert_close(loss[tail], ref, rtol=1e-5, atol=1e-5)
    del x


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("c", [32768, 131072])
def test_gpu_large_rows_match_float64(c):
    x = torch.randn(64, c, device="cuda") * 4
    x[1] = -INF
    x[2, : c // 2] = -INF
    y = torch.randint(c // 2, c, (64,), device="cuda")
    g = torch.empty_like(x)
    loss = tk.cross_entropy_rows(x, y, CrossEntropyOptions(label_smoothing=0.1), row_scale=torch.ones(1, device="cuda"),
                                 grad_out=g)
    x64 = x.double()
    mask = torch.arange(64, device="cuda") != 1
    ref = torch.nn.functional.cross_entropy(x64[mask], y[mask], reduction="none", label_smoothing=0.1)
    torch.testing.assert_close(loss[mask].double(), ref, rtol=2e-6, atol=2e-6)
    assert loss[1].item() == INF
    p = tk.softmax_forward(x)
    sums = p[mask].double().sum(1)
    torch.testing.assert_close(sums, torch.ones_like(sums), rtol=0, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr = x64[mask].clone().requires_grad_()
        lr = torch.nn.functional.cross_entropy(xr, y[mask], reduction="sum", label_smoothing=0.1)
        (gr,) = torch.autograd.grad(lr, xr)
    torch.testing.assert_close(g[mask].double(), gr, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_cross_entropy_nd_class_axis_1(rng, soft):
    # (B, C, T) logits as torch lays them out; class axis 1.
    b, c, t = 2, 9, 3
    x64 = torch.tensor(rng.standard_normal((b, c, t)))
    if soft:
        y = torch.tensor(rng.dirichlet(np.ones(c), (b, t))).movedim(-1, 1)
    else:
        y = torch.tensor(rng.integers(0, c, (b, t)))
    for reduction in ("mean", "none"):
        x = x64.float().to(DEVICE).requires_grad_()
        opts = CrossEntropyOptions(reduction=reduction)
        loss = _triton.cross_entropy_nd(x, y.to(DEVICE), opts, axis=1, soft=soft)
        xr = x64.clone().requires_grad_()
        ref = torch.nn.functional.cross_entropy(xr, y, reduction=reduction)
        assert loss.shape == ref.shape
        np.testing.assert_allclose(_np(loss), ref.detach().numpy(), **tol(np.float32))
        up = torch.tensor(rng.uniform(-1, 1, ref.shape))
        (g,) = torch.autograd.grad(loss, x, up.float().to(DEVICE))
        (gr,) = torch.autograd.grad(ref, xr, up)
        np.testing.assert_allclose(_np(g), gr.numpy(), rtol=1e-5, atol=1e-6)


def test_use_for_never_routes_cpu_tensors():
    assert not _triton.use_for(torch.zeros(2, 3))


def test_linear_cross_entropy_soft_targets_softcap(rng):
    n, d, v = 7, 5, 13
    h = torch.tensor(rng.standard_normal((n, d)), dtype=torch.float32)
    w = torch.tensor(rng.standard_normal((v, d)), dtype=torch.float32)
    t = torch.tensor(rng.dirichlet(np.ones(v), n), dtype=torch.float32)
    opts = CrossEntropyOptions(softcap=2.0, label_smoothing=0.1)
    hd, wd = h.to(DEVICE).requires_grad_(), w.to(DEVICE).requires_grad_()
    loss = _triton.linear_cross_entropy(hd, wd, t.to(DEVICE), opts, chunk_size=3)
    gh, gw = torch.autograd.grad(loss, [hd, wd])
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    z = 2.0 * torch.tanh((h64 @ w64.T) / 2.0)
    ref = torch.nn.functional.cross_entropy(z, t.double(), label_smoothing=0.1)
    rh, rw = torch.autograd.grad(ref, [h64, w64])
    np.testing.assert_allclose(_np(loss), ref.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(_np(gh), rh.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_np(gw), rw.numpy(), rtol=1e-4, atol=1e-6)


def test_public_ops_route_to_triton(monkeypatch, rng):
    """softmaxkit.torch's cross_entropy / softmax / log_softmax call these kernels on CUDA
    (on CPU the routing is forced here, through the interpreter)."""
    import softmaxkit.torch as skt

    calls = []
    monkeypatch.setattr(_triton, "use_for", lambda x, target=None: _triton.available(x))
    for name in ("cross_entropy_nd", "softmax"):
        real = getattr(_triton, name)
        monkeypatch.setattr(_triton, name, lambda *a, real=real, name=name, **k: calls.append(name) or real(*a, **k))
    x64 = torch.tensor(rng.standard_normal((3, 6, 4)))
    y = torch.tensor(rng.integers(0, 6, (3, 4)))
    x = x64.float().to(DEVICE).requires_grad_()
    loss = skt.cross_entropy(x, y.to(DEVICE), axis=1, label_smoothing=0.1)
    ref = torch.nn.functional.cross_entropy(x64, y, label_smoothing=0.1)
    np.testing.assert_allclose(_np(loss), ref.numpy(), **tol(np.float32))
    p = skt.softmax(x, axis=1, temperature=2.0)
    np.testing.assert_allclose(_np(p), torch.softmax(x64 / 2, dim=1).numpy(), **tol(np.float32))
    lp = skt.log_softmax(x, axis=1)
    np.testing.assert_allclose(_np(lp), torch.log_softmax(x64, dim=1).numpy(), **tol(np.float32))
    assert calls == ["cross_entropy_nd", "softmax", "softmax"]
