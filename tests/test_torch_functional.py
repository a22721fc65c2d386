"""softmaxkit.torch.functional: parity with torch, the float64 oracle, finite
differences, and the documented differences (all-ignored mean, all -inf rows)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import oracle

torch = pytest.importorskip("torch")
F = torch.nn.functional

import softmaxkit as sk  # noqa: E402
import softmaxkit.torch as skt  # noqa: E402
from softmaxkit.torch import _backend  # noqa: E402


@pytest.fixture(params=["reference", "numba", "torch_ops"])
def backend(request, monkeypatch):
    """Run a test with each CPU kernel (NumPy reference, numba) and with the
    torch-ops kernel (the CUDA fallback)."""
    from softmaxkit import kernels

    monkeypatch.setattr(_backend, "FORCE_TORCH_OPS", request.param == "torch_ops")
    # numba for every size (by default small inputs stay on the reference)
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if request.param == "numba" else 1 << 62)
    return request.param


def _logits(n=11, c=7, dtype=torch.float64, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, c, generator=g, dtype=torch.float64)).to(dtype)


def _hard_target(n, c, seed=1, ignored=()):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, c, (n,), generator=g)
    for i in ignored:
        t[i] = -100
    return t


def _grads(loss, inputs, upstream):
    return torch.autograd.grad(loss, inputs, upstream)


# --------------------------------------------------------------------------- parity with torch

GRID = list(
    itertools.product(
        ["mean", "sum", "none"],  # reduction
        [False, True],  # class weight (with a zero entry)
        [0.0, 0.1, 1.0],  # label smoothing
        [False, True],  # some targets ignored
    )
)


@pytest.mark.parametrize("reduction,weighted,smoothing,ignored", GRID)
def test_hard_targets_match_torch_forward_and_backward(backend, reduction, weighted, smoothing, ignored):
    n, c = 13, 6
    x = _logits(n, c).requires_grad_()
    t = _hard_target(n, c, ignored=(0, 5) if ignored else ())
    w = torch.tensor([0.5, 2.0, 0.0, 1.0, 3.0, 1.5], dtype=torch.float64) if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    ours, ref = skt.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(ref) if reduction == "none" else torch.tensor(1.7, dtype=torch.float64)
    (g,), (g_ref,) = _grads(ours, x, upstream), _grads(ref, x, upstream)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_soft_targets_match_torch_including_target_grad(backend, reduction, weighted, smoothing):
    n, c = 9, 5
    x = _logits(n, c).requires_grad_()
    t = torch.softmax(_logits(n, c, seed=3), dim=1).requires_grad_()
    w = torch.rand(c, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    ours, ref = skt.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(ref) if reduction == "none" else torch.tensor(0.3, dtype=torch.float64)
    g, g_ref = _grads(ours, (x, t), upstream), _grads(ref, (x, t), upstream)
    torch.testing.assert_close(g[0], g_ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g[1], g_ref[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("soft", [False, True])
def test_any_class_axis_matches_torch(axis, soft):
    x = _logits(4 * 5 * 6, 1).reshape(4, 5, 6).requires_grad_()
    moved = x.movedim(axis, 1)  # torch wants classes on dim 1
    c = x.shape[axis]
    batch = tuple(s for i, s in enumerate(x.shape) if i != axis % 3)
    if soft:
        t = torch.softmax(_logits(int(np.prod(batch)), c, seed=2).reshape(*batch, c), -1)
        t_ours, t_ref = t.movedim(-1, axis), t.movedim(-1, 1)
    else:
        t = torch.randint(0, c, batch, generator=torch.Generator().manual_seed(2))
        t_ours = t_ref = t
    ours = skt.cross_entropy(x, t_ours, axis=axis, reduction="none")
    ref = F.cross_entropy(moved, t_ref, reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    u = torch.randn_like(ref)
    torch.testing.assert_close(_grads(ours, x, u)[0], _grads(ref, x, u)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_z_loss_and_softcap_match_oracle(backend, reduction):
    x = _logits(8, 6)
    t = _hard_target(8, 6, ignored=(2,))
    w = np.array([1.0, 0.5, 2.0, 1.0, 0.0, 1.0])
    kw = dict(label_smoothing=0.1, z_loss=1e-2, softcap=4.0)
    ours = skt.cross_entropy(x, t, weight=torch.tensor(w), reduction=reduction, **kw)
    ref = oracle.cross_entropy(x.numpy(), t.numpy(), reduction=reduction, weight=w, **kw)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_float32_softcap_gradient_where_tanh_saturates(backend):
    # The slope is sech(x / cap)^2 from the raw logits; torch's own float32
    # composition (1 - tanh^2 in tanh's backward) has relative errors up to 1 here.
    x, y, want = oracle.saturated_softcap_case(np.random.default_rng(3))
    xt = torch.tensor(x, requires_grad=True)
    skt.cross_entropy(xt, torch.tensor(y), softcap=30.0, reduction="sum").backward()
    np.testing.assert_allclose(xt.grad.numpy(), want, rtol=1e-4, atol=0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        dict(label_smoothing=0.3, reduction="sum"),
        dict(z_loss=0.05, softcap=2.5, reduction="none"),
        dict(weight=torch.tensor([0.2, 1.0, 3.0, 0.7, 1.1], dtype=torch.float64), label_smoothing=0.2),
    ],
)
@pytest.mark.parametrize("soft", [False, True])
def test_gradcheck(backend, options, soft):
    x = _logits(6, 5, scale=1.0).requires_grad_()
    t = torch.softmax(_logits(6, 5, seed=9), 1) if soft else _hard_target(6, 5, ignored=(1,))
    assert torch.autograd.gradcheck(lambda z: skt.cross_entropy(z, t, **options), (x,))
    if soft:
        t = t.clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda z, p: skt.cross_entropy(z, p, **options), (x, t))


def test_repeated_backward_with_retain_graph_is_correct():
    x = _logits().requires_grad_()
    t = _hard_target(11, 7)
    loss = skt.cross_entropy(x, t)
    (g1,) = torch.autograd.grad(loss, x, torch.tensor(2.0, dtype=torch.float64), retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, torch.tensor(3.0, dtype=torch.float64))
    torch.testing.assert_close(g1 * 1.5, g2)


def test_backward_does_not_touch_inputs_or_earlier_grads():
    x = _logits().requires_grad_()
    t = _hard_target(11, 7)
    x_before = x.detach().clone()
    skt.cross_entropy(x, t).backward()
    first = x.grad.clone()
    skt.cross_entropy(x, t).backward()  # accumulates into x.grad
    torch.testing.assert_close(x.detach(), x_before, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, 2 * first)


# --------------------------------------------------------------------------- documented differences


@pytest.mark.parametrize("backend_name", ["kernels", "torch_ops"])
def test_all_ignored_mean_is_zero_with_zero_grad(monkeypatch, backend_name):
    monkeypatch.setattr(_backend, "FORCE_TORCH_OPS", backend_name == "torch_ops")
    x = _logits(4, 3).requires_grad_()
    loss = skt.cross_entropy(x, torch.full((4,), -100))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("backend_name", ["kernels", "torch_ops"])
def test_all_minus_inf_row(monkeypatch, backend_name):
    monkeypatch.setattr(_backend, "FORCE_TORCH_OPS", backend_name == "torch_ops")
    x = torch.tensor([[-torch.inf] * 3, [0.0, 1.0, -torch.inf]], dtype=torch.float64, requires_grad=True)
    p = skt.softmax(x)
    assert torch.equal(p[0], torch.zeros(3, dtype=torch.float64))
    assert torch.all(skt.log_softmax(x)[0] == -torch.inf)
    assert skt.logsumexp(x)[0] == -torch.inf
    (p.sum() + skt.logsumexp(x)[1] + skt.log_softmax(x)[1, :2].sum()).backward()
    assert not torch.isnan(x.grad).any()
    loss = skt.cross_entropy(x, torch.tensor([0, 1]), reduction="none")
    assert loss[0] == torch.inf and torch.isfinite(loss[1])
    ignored = skt.cross_entropy(x, torch.tensor([-100, 1]))
    ignored.backward()
    assert torch.isfinite(ignored) and not torch.isnan(x.grad).any()


def test_soft_target_zero_on_minus_inf_logit_contributes_zero(backend):
    x = torch.tensor([[0.0, -torch.inf, 1.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64)
    loss = skt.cross_entropy(x, t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_nan_propagates(backend):
    x = torch.tensor([[0.0, torch.nan, 1.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    loss = skt.cross_entropy(x, torch.tensor([0, 1]), reduction="none")
    assert torch.isnan(loss[0]) and torch.isfinite(loss[1])


# --------------------------------------------------------------------------- dtypes, dispatch, errors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_in_float32_out_in_input_dtype(dtype):
    x64 = _logits(16, 10)
    t = _hard_target(16, 10)
    x = x64.to(dtype).requires_grad_()
    loss = skt.cross_entropy(x, t)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    ref = F.cross_entropy(x.detach().double(), t)  # exact on the rounded logits
    assert abs(loss.double() - ref) <= 2 * torch.finfo(dtype).eps * abs(ref)
    xr = x.detach().double().requires_grad_()
    F.cross_entropy(xr, t).backward()
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=0, atol=2 * torch.finfo(dtype).eps / 16)


def test_class_axis_must_be_named_from_three_dimensions():
    """Audit: (N, C, C) logits gave a loss over the wrong axis with no error (torch's class dim is 1)."""
    x = _logits(4 * 5 * 5, 1).reshape(4, 5, 5)
    t = torch.randint(0, 5, (4, 5), generator=torch.Generator().manual_seed(3))
    soft = torch.softmax(_logits(4 * 5 * 5, 1, seed=4).reshape(4, 5, 5), 1)
    for target in (t, soft):  # both fit both axes; a probability target of 3+ dims always does
        for call in (lambda: skt.cross_entropy(x, target), lambda: skt.CrossEntropyLoss()(x, target),
                     lambda: skt.cross_entropy_and_grad(x, target)):
            with pytest.raises(ValueError, match=r"shape \(4, 5, 5\) have 3 dimensions: name the class axis, "
                                                 r"axis=1 as torch.nn.functional.cross_entropy's"):
                call()
        torch.testing.assert_close(skt.cross_entropy(x, target, axis=1), F.cross_entropy(x, target),
                                   rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(skt.CrossEntropyLoss(axis=1)(x, target), F.cross_entropy(x, target),
                                   rtol=1e-12, atol=1e-12)
    # (C,) and (N, C): classes last is torch's dim too, so no axis is needed.
    x2, t2 = _logits(6, 4), _hard_target(6, 4)
    torch.testing.assert_close(skt.cross_entropy(x2, t2), F.cross_entropy(x2, t2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(skt.cross_entropy(x2[0], t2[0]), F.cross_entropy(x2[0], t2[0]), rtol=1e-12, atol=1e-12)
    # The NumPy-style API keeps its documented default, the last axis.
    torch.testing.assert_close(sk.cross_entropy(x, t), F.cross_entropy(x.movedim(-1, 1), t), rtol=1e-12, atol=1e-12)


def test_softmax_family_takes_torch_dim_and_keepdim():
    """F.softmax(x, dim=1) ports as skt.softmax(x, dim=1) (it raised TypeError); axis and dim together is an error."""
    x = _logits(2 * 3 * 4, 1).reshape(2, 3, 4)
    for dim in (0, 1, -1):
        torch.testing.assert_close(skt.softmax(x, dim=dim), F.softmax(x, dim=dim), rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(skt.log_softmax(x, dim=dim), F.log_softmax(x, dim=dim), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(skt.logsumexp(x, dim=dim, keepdim=True), torch.logsumexp(x, dim=dim, keepdim=True),
                                   rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sk.softmax(x), F.softmax(x, dim=-1), rtol=1e-12, atol=1e-15)  # NumPy API: last
    with pytest.raises(TypeError, match="axis= or dim="):
        skt.softmax(x, 1, dim=1)


def test_softmax_family_needs_dim_from_three_dimensions():
    """Audit: skt.softmax(x) on a 3-D/4-D tensor normalised the last axis, where F.softmax(x) (implicit,
    deprecated dim) uses dim 0 for 3 dimensions and 1 for 4: a port gave other numbers with no error."""
    for shape, torch_dim in (((2, 3, 4), 0), ((2, 3, 4, 5), 1)):
        x = _logits(int(np.prod(shape)), 1).reshape(shape)
        for name in ("softmax", "log_softmax"):
            msg = (rf"x of shape {re.escape(str(shape))} has {len(shape)} dimensions: name the class axis, dim=1 "
                   rf".* torch.nn.functional.{name} without dim uses dim={torch_dim} here")
            with pytest.raises(ValueError, match=msg):
                getattr(skt, name)(x)
            for dim in (torch_dim, -1):  # named, either layout is torch's
                torch.testing.assert_close(getattr(skt, name)(x, dim=dim), getattr(F, name)(x, dim=dim),
                                           rtol=1e-12, atol=1e-12)
            # The NumPy-style API dispatches tensors here with its documented default, the last axis.
            torch.testing.assert_close(getattr(sk, name)(x), getattr(F, name)(x, dim=-1), rtol=1e-12, atol=1e-12)
    # (C,) and (N, C): the last axis is torch's implicit dim too, so none is needed.
    x2 = _logits(3, 4)
    for name in ("softmax", "log_softmax"):
        torch.testing.assert_close(getattr(skt, name)(x2), getattr(F, name)(x2, dim=1), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(getattr(skt, name)(x2[0]), getattr(F, name)(x2[0], dim=0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_plus_inf_makes_the_softmax_row_nan_as_on_numpy(dtype):
    """Audit: a row holding +inf gave softmax [0, nan, 0] and log-softmax [-inf, nan, -inf] on tensors
    (a where(s > 0, s, 1) made the NaN sum 1); the NumPy path and DESIGN.md give an all-NaN row."""
    inf = torch.inf
    x = torch.tensor([[0.0, inf, 1.0], [-inf, -inf, -inf], [0.0, 1.0, -inf], [inf, inf, 0.0], [0.0, torch.nan, 1.0]],
                     dtype=torch.float64).to(dtype)
    for name in ("softmax", "log_softmax", "logsumexp"):
        ours, theirs = getattr(skt, name)(x), getattr(sk, name)(x.double().numpy())
        np.testing.assert_array_equal(np.isnan(ours.double().numpy()), np.isnan(theirs))
        assert torch.isnan(ours[[0, 3, 4]]).all()
    # The all -inf row keeps its decided values: softmax 0, log-softmax and logsumexp -inf.
    assert torch.equal(skt.softmax(x)[1], torch.zeros(3, dtype=dtype))
    assert (skt.log_softmax(x)[1] == -inf).all() and skt.logsumexp(x)[1] == -inf
    # Gradients stay finite on the finite and all -inf rows (rows do not mix).
    xg = x.detach().clone().requires_grad_()
    (skt.softmax(xg)[1:3] * torch.arange(6.0).reshape(2, 3).to(dtype)).sum().backward()
    assert torch.isfinite(xg.grad[1:3]).all()
    xg.grad = None
    skt.log_softmax(xg)[1:3, :2].sum().backward()
    assert torch.isfinite(xg.grad[1:3]).all()
    xg.grad = None
    skt.logsumexp(xg)[1:3].sum().backward()
    assert torch.isfinite(xg.grad[1:3]).all()


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_16bit_gradient_is_rounded_once_when_the_loss_is_scaled(reduction):
    """Audit: with ``loss / n_items`` the bf16 gradient was rounded at scale 1 in the forward and again
    after scaling (30% of entries off the correctly rounded value; torch: 90%). It is now rounded once."""
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(64, 1000, generator=g, dtype=torch.float64)).to(torch.bfloat16)
    y = torch.randint(0, 1000, (64,), generator=g)
    upstream = (torch.rand(64, generator=g, dtype=torch.float64) + 0.5).to(torch.bfloat16) if reduction == "none" \
        else torch.tensor(1 / 11, dtype=torch.bfloat16)  # what `loss / 11` hands back, a bf16 scalar

    def scaled(loss):
        return (loss * upstream).sum()

    ours = x.clone().requires_grad_()
    scaled(skt.cross_entropy(ours, y, reduction=reduction)).backward()
    exact = x.double().requires_grad_()
    (F.cross_entropy(exact, y, reduction=reduction) * upstream.double()).sum().backward()
    correctly_rounded = exact.grad.to(torch.bfloat16)
    assert ours.grad.dtype == torch.bfloat16
    assert (ours.grad != correctly_rounded).double().mean() < 0.01  # float32 work: only near-ties may differ


def test_public_functional_dispatches_tensors():
    x = _logits().requires_grad_()
    t = _hard_target(11, 7)
    loss = sk.cross_entropy(x, t, label_smoothing=0.1)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad
    np_loss = sk.cross_entropy(x.detach().numpy(), t.numpy(), label_smoothing=0.1)
    assert float(loss.detach()) == pytest.approx(float(np_loss), rel=1e-14)
    for name in ("softmax", "log_softmax", "logsumexp", "sigmoid", "log_sigmoid"):
        res = getattr(sk, name)(x)
        np.testing.assert_allclose(res.detach().numpy(), getattr(sk, name)(x.detach().numpy()), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_grad_for_tensors_matches_numpy(reduction):
    x = _logits(10, 6)
    t = _hard_target(10, 6, ignored=(3,))
    go = np.linspace(0.5, 2.0, 10) if reduction == "none" else 0.7
    loss, grad = skt.cross_entropy_and_grad(x, t, reduction=reduction, label_smoothing=0.1, grad_output=go)
    ref_loss, ref_grad = sk.cross_entropy_and_grad(
        x.numpy(), t.numpy(), reduction=reduction, label_smoothing=0.1, grad_output=go
    )
    assert not grad.requires_grad
    buf = torch.empty_like(x)
    res = skt.cross_entropy_and_grad(x, t, reduction=reduction, label_smoothing=0.1, grad_output=go, grad_out=buf)
    assert res[1] is buf
    torch.testing.assert_close(buf, grad)
    np.testing.assert_allclose(loss.numpy(), ref_loss, rtol=1e-13)
    np.testing.assert_allclose(grad.numpy(), ref_grad, rtol=1e-12, atol=1e-15)


def test_grad_output_must_have_the_loss_shape():
    """Audit: a (5, 4) grad_output for a (4, 5) loss (reduction="none") was reshaped to 20 rows on the
    tensor path too: upstream values paired with the wrong rows, no error."""
    x = _logits(4 * 5, 3).reshape(4, 5, 3)
    t = _hard_target(4 * 5, 3).reshape(4, 5)
    up = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    xr = x.clone().requires_grad_()
    F.cross_entropy(xr.movedim(-1, 1), t, reduction="none").backward(up)
    _, g = skt.cross_entropy_and_grad(x, t, axis=-1, reduction="none", grad_output=up)
    torch.testing.assert_close(g, xr.grad, rtol=1e-12, atol=1e-15)
    h = torch.randn(4, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    w = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    calls = {
        "cross_entropy_and_grad": lambda **kw: skt.cross_entropy_and_grad(x, t, axis=-1, **kw),
        "sk.cross_entropy_and_grad": lambda **kw: sk.cross_entropy_and_grad(x, t, **kw),
        "linear_cross_entropy_and_grad": lambda **kw: skt.linear_cross_entropy_and_grad(h, w, t, **kw),
    }
    for name, call in calls.items():
        for bad in (up.T, up.T.numpy()):
            with pytest.raises(ValueError, match=r"grad_output must have the loss's shape \(4, 5\) for "
                                                 r"reduction='none', got shape \(5, 4\): the same 20 values"):
                call(reduction="none", grad_output=bad)
        with pytest.raises(ValueError, match=r"got shape \(19,\): 19 values for 20 losses"):
            call(reduction="none", grad_output=torch.ones(19, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"grad_output must be a scalar \(shape \(\)\) for reduction='mean'"):
            call(grad_output=torch.ones(1, dtype=torch.float64))
        with pytest.raises(TypeError, match=r"grad_output must be real numbers, got a tensor of dtype torch.complex"):
            call(reduction="none", grad_output=up.to(torch.complex128))
        with pytest.raises(TypeError, match=r"grad_output must be real numbers, got str"):
            call(grad_output="one")


def test_errors_name_argument_value_and_position():
    x = _logits(4, 3)
    with pytest.raises(ValueError, match=r"class index 7 at position \[2\]"):
        skt.cross_entropy(x, torch.tensor([0, 1, 7, 2]))
    with pytest.raises(TypeError, match="logits must have a floating dtype"):
        skt.cross_entropy(torch.ones(4, 3, dtype=torch.int64), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="reduction"):
        skt.cross_entropy(x, torch.tensor([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match=r"weight must be finite; weight\[1\] = nan"):
        skt.cross_entropy(x, torch.tensor([0, 1, 2, 0]), weight=torch.tensor([1.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        skt.cross_entropy(x, torch.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="same shape as logits"):
        skt.cross_entropy(x, torch.rand(4, 2, dtype=torch.float64))


# --------------------------------------------------------------------------- softmax family, BCE


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_softmax_family_matches_torch_with_grads(temperature):
    x = _logits(5, 9).requires_grad_()
    u = torch.randn(5, 9, dtype=torch.float64)
    pairs = [
        (skt.softmax(x, temperature=temperature), torch.softmax(x / temperature, -1)),
        (skt.log_softmax(x, temperature=temperature), torch.log_softmax(x / temperature, -1)),
    ]
    for ours, ref in pairs:
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(_grads(ours, x, u)[0], _grads(ref, x, u)[0], rtol=1e-12, atol=1e-14)
    ours, ref = skt.logsumexp(x, 0, keepdims=True), torch.logsumexp(x, 0, keepdim=True)
    torch.testing.assert_close(ours, ref)
    ones = torch.ones_like(ref)
    torch.testing.assert_close(_grads(ours, x, ones)[0], _grads(ref, x, ones)[0])
    for ours, ref in [(skt.sigmoid(x), torch.sigmoid(x)), (skt.log_sigmoid(x), F.logsigmoid(x))]:
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "sk.log_softmax"])
def test_a_learnable_temperature_gets_its_gradient(op):
    """A tensor temperature that requires grad (an nn.Parameter) was read with float(): the
    loss matched torch's and T.grad stayed None (audit), so T never trained."""
    x = _logits(6, 5).requires_grad_()
    t_ours = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))
    t_ref = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))
    fn = {"softmax": skt.softmax, "log_softmax": skt.log_softmax, "sk.log_softmax": sk.log_softmax}[op]
    ref_fn = torch.softmax if op == "softmax" else torch.log_softmax
    u = torch.randn(6, 5, dtype=torch.float64)
    ours, ref = fn(x, temperature=t_ours), ref_fn(x / t_ref, -1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)
    (ours * u).sum().backward()
    (ref * u).sum().backward()
    assert t_ours.grad is not None
    torch.testing.assert_close(t_ours.grad, t_ref.grad, rtol=1e-10, atol=1e-12)


def test_softmax_out_and_low_precision():
    x = _logits(3, 4, dtype=torch.bfloat16)
    out = torch.empty_like(x)
    res = skt.softmax(x, out=out)
    assert res is out and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), torch.softmax(x.float(), -1), rtol=1e-2, atol=1e-2)
    with pytest.raises(TypeError, match="out must have dtype torch.bfloat16"):
        skt.softmax(x, out=torch.empty(3, 4))
    # another shape is resized, as torch's out= does (with torch's deprecation warning)
    other = torch.empty(2, 2, dtype=torch.bfloat16)
    with pytest.warns(UserWarning, match="resized"):
        assert skt.softmax(x, out=other) is other
    assert other.shape == (3, 4)
    torch.testing.assert_close(other, out)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_torch(reduction):
    x = _logits(6, 4).requires_grad_()
    y = torch.rand(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    w = torch.rand(6, 4, dtype=torch.float64)
    pw = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    ours = skt.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    u = torch.randn_like(ref)
    torch.testing.assert_close(_grads(ours, x, u)[0], _grads(ref, x, u)[0])
    assert skt.binary_cross_entropy_with_logits(torch.zeros(0), torch.zeros(0)).item() == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_binary_cross_entropy_negative_weight_and_pos_weight_match_torch(reduction, dtype):
    """torch accepts negative weight / pos_weight (finite loss); so do we, on both paths,
    with torch's values and logits gradients (torch differentiates neither weight nor pos_weight)."""
    g = torch.Generator().manual_seed(7)
    x0 = 3 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.rand(6, 4, generator=g, dtype=torch.float64)
    w0 = torch.randn(6, 4, generator=g, dtype=torch.float64)  # both signs
    pw0 = torch.tensor([-1.5, 2.0, -0.25, 0.0], dtype=torch.float64)
    out = []
    for fn in (skt.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits):
        x, w, pw = x0.to(dtype).clone().requires_grad_(), w0.to(dtype), pw0.to(dtype)
        loss = fn(x, y.to(dtype), weight=w, pos_weight=pw, reduction=reduction)
        assert torch.isfinite(loss).all()
        u = torch.linspace(-1, 2, loss.numel(), dtype=dtype).reshape(loss.shape)
        out.append([loss.detach(), *torch.autograd.grad(loss, x, u)])
    for ours, ref in zip(*out):
        torch.testing.assert_close(ours, ref)
    # the NumPy path: torch's values too
    np_loss = sk.binary_cross_entropy_with_logits(
        x0.to(dtype).numpy(), y.to(dtype).numpy(), weight=w0.to(dtype).numpy(), pos_weight=pw0.to(dtype).numpy(),
        reduction=reduction,
    )
    torch.testing.assert_close(torch.as_tensor(np.asarray(np_loss)), out[1][0])
    # non-finite weights are still refused, naming the argument
    for name in ("weight", "pos_weight"):
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            sk.binary_cross_entropy_with_logits(x0.numpy(), y.numpy(), **{name: np.full(4, np.inf)})
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            skt.binary_cross_entropy_with_logits(x0, y, **{name: torch.full((4,), torch.nan, dtype=torch.float64)})


# --------------------------------------------------------------------------- softmax family: the CPU tensor path
# Shapes cover the NumPy reference kernel (under 1024 elements), the numba kernels (serial, parallel, narrow
# rows of <= 16 classes), a class axis that is not last, and 3-D input; `contiguous=False` leaves the class
# axis moved (a non-contiguous tensor).

_SOFTMAX_LAYOUTS = [
    ((7,), 5, -1), ((40,), 50, -1), ((300,), 7, -1), ((50,), 40, 0), ((6,), 6000, -1), ((6, 5), 80, 1),
]


def _rows_with_special_values(batch, c, dtype, dim, contiguous, seed=0):
    """``x`` whose rows along ``dim`` are: 0 all -inf, 1 finite, 2 partly -inf, 3 with NaN, 4 with +inf,
    the last all -inf; and ``as_rows`` mapping a result of ``x``'s shape back to ``(rows, c)``."""
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(batch))
    rows = 3.0 * torch.randn(n, c, generator=g, dtype=torch.float64)
    rows[0] = -torch.inf
    rows[2, ::2] = -torch.inf
    rows[3, c // 2] = torch.nan
    rows[4, c - 1] = torch.inf
    rows[-1] = -torch.inf
    x = rows.reshape(*batch, c).movedim(-1, dim).to(dtype)
    x = x.contiguous() if contiguous else x

    def as_rows(t):
        return t.movedim(dim, -1).reshape(n, c)

    return x, as_rows


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("batch,c,dim", _SOFTMAX_LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_tensor_softmax_special_rows_values_and_gradients(op, dtype, batch, c, dim, contiguous):
    """The decided values and gradients, at every size and layout: an all -inf row gives softmax 0 with
    gradient 0, log-softmax -inf with the upstream gradient passed through (d(x - lse)/dx with p = 0);
    NaN or +inf makes the row and its gradient NaN; every other row is torch's, value and gradient."""
    x, as_rows = _rows_with_special_values(batch, c, dtype, dim, contiguous)
    n = int(np.prod(batch))
    dead, bad = [0, n - 1], [3, 4]
    ok = [i for i in range(n) if i not in dead + bad]
    x = x.requires_grad_()
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    y = getattr(skt, op)(x, dim=dim)
    assert y.dtype == dtype and y.shape == x.shape
    (gx,) = torch.autograd.grad(y, x, u)
    yr, gr, ur = as_rows(y.detach()), as_rows(gx), as_rows(u)
    if op == "softmax":
        assert torch.equal(yr[dead], torch.zeros_like(yr[dead]))
        assert torch.equal(gr[dead], torch.zeros_like(gr[dead]))
    else:
        assert (yr[dead] == -torch.inf).all()
        assert torch.equal(gr[dead], ur[dead])
    assert torch.isnan(yr[bad]).all() and torch.isnan(gr[bad]).all()
    # the finite rows: torch's value and gradient (rows are independent, so the others are zeroed for torch)
    xs = as_rows(x.detach()).clone()
    xs[dead + bad] = 0.0
    xs.requires_grad_()
    ref = getattr(torch, op)(xs, -1)
    (g_ref,) = torch.autograd.grad(ref, xs, ur)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    torch.testing.assert_close(yr[ok], ref.detach()[ok], **tol)
    torch.testing.assert_close(gr[ok], g_ref[ok], **tol)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_tensor_softmax_float32_precision_at_many_classes(op):
    """float32 rows of 65,536 classes against float64: row sums within 1e-6 of 1 and entries within a few
    float32 ulps (torch's own float32 kernel, which sums in float32 lanes, is off by about 2e-5 here)."""
    x = 3.0 * torch.randn(4, 65536, generator=torch.Generator().manual_seed(2))
    ours = getattr(skt, op)(x).double()
    ref = getattr(torch, op)(x.double(), -1)
    p = ours.exp() if op == "log_softmax" else ours
    assert (p.sum(-1) - 1).abs().max() <= 1e-6
    if op == "softmax":
        assert ((ours - ref).abs() / ref).max() <= 3e-6
    else:
        assert ((ours - ref).abs() / ref.abs().clamp_min(1.0)).max() <= 1e-6


@pytest.mark.parametrize("batch,c,dim", [((6,), 5, -1), ((40,), 60, -1), ((30,), 50, 0)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_tensor_softmax_temperature_gradients_at_every_size(op, batch, c, dim):
    """A float temperature and a learnable one (T.grad) match torch's softmax(x / T), in x and T."""
    g = torch.Generator().manual_seed(3)
    x0 = 3.0 * torch.randn(*batch, c, generator=g, dtype=torch.float64).movedim(-1, dim)
    u = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for learnable in (False, True):
        x, xr = x0.clone().requires_grad_(), x0.clone().requires_grad_()
        t = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64)) if learnable else 0.7
        tr = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64)) if learnable else 0.7
        ours, ref = getattr(skt, op)(x, dim=dim, temperature=t), getattr(torch, op)(xr / tr, dim)
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)
        (ours * u).sum().backward()
        (ref * u).sum().backward()
        torch.testing.assert_close(x.grad, xr.grad, rtol=1e-10, atol=1e-13)
        if learnable:
            torch.testing.assert_close(t.grad, tr.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch,c,dim", [((5,), 7, -1), ((40,), 60, -1), ((30,), 50, 0), ((6,), 6000, -1)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_tensor_softmax_double_backward_at_every_size(op, batch, c, dim):
    """Hessian-vector products match torch's double backward; on all -inf rows the second derivative
    is 0 (the first one is constant there) and nothing is NaN."""
    g = torch.Generator().manual_seed(4)
    x0 = 2.0 * torch.randn(*batch, c, generator=g, dtype=torch.float64).movedim(-1, dim)
    u, v = (torch.randn(x0.shape, generator=g, dtype=torch.float64) for _ in range(2))
    hv = []
    for fn in (lambda x: getattr(skt, op)(x, dim=dim, temperature=1.3), lambda x: getattr(torch, op)(x / 1.3, dim)):
        x = x0.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(x), x, u, create_graph=True)
        hv.append(torch.autograd.grad(gx, x, v)[0])
    torch.testing.assert_close(hv[0], hv[1], rtol=1e-10, atol=1e-13)
    x = x0.clone().movedim(dim, -1)
    x[0] = -torch.inf
    x = x.movedim(-1, dim).requires_grad_()
    (gx,) = torch.autograd.grad(getattr(skt, op)(x, dim=dim), x, u, create_graph=True)
    (h,) = torch.autograd.grad(gx, x, v)
    assert torch.isfinite(gx).all() and torch.isfinite(h).all()
    assert torch.equal(h.movedim(dim, -1)[0], torch.zeros_like(h.movedim(dim, -1)[0]))


def test_tensor_softmax_gradgradcheck_with_temperature():
    x = torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    t = torch.tensor(1.4, dtype=torch.float64, requires_grad=True)
    for fn in (skt.softmax, skt.log_softmax):
        assert torch.autograd.gradcheck(lambda x, t: fn(x, dim=1, temperature=t), (x, t))
        assert torch.autograd.gradgradcheck(lambda x, t: fn(x, dim=1, temperature=t), (x, t))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_tensor_softmax_leaves_its_input_alone(op):
    """Whatever copy the computation works in (a cast, a temperature, a moved class axis), the
    caller's tensor is never written, with or without autograd."""
    g = torch.Generator().manual_seed(6)
    base = 3.0 * torch.randn(60, 70, generator=g)
    cases = [
        (base, dict(dim=-1, temperature=2.0)), (base, dict(dim=-1, dtype=torch.float64)), (base, dict(dim=0)),
        (base.t(), dict(dim=0)), (base.t(), dict(dim=1)), (base.bfloat16(), dict(dim=-1)),
        (base.double(), dict(dim=-1, dtype=torch.float32)), (base[:, ::2], dict(dim=-1)),
    ]
    for x, kw in cases:
        for grad in (False, True):
            xi = x.detach().clone().requires_grad_(grad) if grad else x
            before = xi.detach().clone()
            ours = getattr(skt, op)(xi, **kw)
            assert torch.equal(xi.detach(), before), kw
            xd = before.to(kw.get("dtype") or before.dtype)
            ref = getattr(torch, op)(xd.float() if xd.dtype == torch.bfloat16 else xd, kw["dim"])
            ref = (ref * 1.0 if "temperature" not in kw else getattr(torch, op)(xd / 2.0, kw["dim"])).to(xd.dtype)
            assert ours.dtype == xd.dtype and ours.requires_grad == grad
            tol = 1e-2 if xd.dtype == torch.bfloat16 else 2e-6
            torch.testing.assert_close(ours.detach().float(), ref.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_tensor_softmax_no_grad_inference_mode_and_input_changed_after_forward(op):
    x0 = 2.0 * torch.randn(50, 60, generator=torch.Generator().manual_seed(7))
    ref = getattr(torch, op)(x0, -1)
    x = x0.clone().requires_grad_()
    with torch.no_grad():
        y = getattr(skt, op)(x)
    assert not y.requires_grad
    torch.testing.assert_close(y, ref, rtol=2e-6, atol=2e-6)
    with torch.inference_mode():
        torch.testing.assert_close(getattr(skt, op)(x0), ref, rtol=2e-6, atol=2e-6)
    # the forward keeps no reference to its input's values: changing it in place afterwards is allowed
    x = x0.clone().requires_grad_()
    xm = x * 1.0
    u = torch.randn(x0.shape, generator=torch.Generator().manual_seed(8))
    y = getattr(skt, op)(xm)
    xm.add_(1.0)
    y.backward(u)
    xr = x0.clone().requires_grad_()
    getattr(torch, op)(xr, -1).backward(u)
    torch.testing.assert_close(x.grad, xr.grad, rtol=2e-5, atol=2e-6)


def test_tensor_softmax_under_torch_compile_fullgraph():
    """torch.compile(fullgraph=True) traces the softmax family (no graph break), all -inf rows included,
    with eager's values and gradients."""
    g = torch.Generator().manual_seed(9)
    x0 = 2.0 * torch.randn(6, 40, generator=g)
    x0[1] = -torch.inf
    u = torch.randn(6, 40, generator=g)

    def f(x):  # (a learnable temperature does not trace: its value check is a data-dependent branch)
        lp = skt.log_softmax(x, dim=-1, temperature=1.5)
        lp = torch.where(torch.isfinite(lp), lp, torch.zeros_like(lp))
        return (skt.softmax(x, dim=-1) * u).sum() + (lp * u).sum() + (skt.softmax(x.t(), dim=0) * u.t()).sum()

    torch._dynamo.reset()
    try:
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
        out = []
        for fn in (f, compiled):
            x = x0.clone().requires_grad_()
            loss = fn(x)
            loss.backward()
            out.append((loss.detach(), x.grad))
    finally:
        torch._dynamo.reset()
    torch.testing.assert_close(out[1], out[0])
    assert torch.isfinite(out[1][1]).all() and torch.equal(out[1][1][1], torch.zeros(40))  # the all -inf row


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_tensor_softmax_in_a_forked_worker_after_the_parent_used_it():
    """A DataLoader-style worker (forked, torch at one thread) computes the softmax after its parent
    did: numba's OpenMP threads would kill it ("fork() called from a process already using GNU
    OpenMP"), so a forked child keeps to the composite ops and exits normally."""
    import subprocess
    import sys

    script = r"""
import os, torch, softmaxkit.torch as skt
x = torch.randn(64, 1000, requires_grad=True)
(skt.softmax(x) + skt.log_softmax(x, dim=0)).sum().backward()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        torch.set_num_threads(1)
        y = skt.softmax(x)
        y.sum().backward()
        ok = torch.allclose(y, torch.softmax(x, -1)) and torch.allclose(skt.log_softmax(x.detach(), dim=0),
                                                                        torch.log_softmax(x.detach(), 0))
        code = 0 if ok else 2
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
print("child status", status)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "child status 0" in out.stdout, out.stdout + out.stderr[-2000:]
