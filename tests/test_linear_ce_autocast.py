"""softmaxkit.torch.linear_cross_entropy under ``torch.autocast``: a drop-in for
``F.cross_entropy(F.linear(hidden, weight, bias), target)``, the mixed-precision
setup where bf16 hidden states meet a float32 head weight.

The dense reference runs under CPU bf16 autocast (F.linear on the lower-precision
list, cross_entropy on the float32 list); a float64 oracle on the bf16-rounded
inputs shows the fused path is at least as exact as the dense one.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import softmaxkit.torch as skt  # noqa: E402
from softmaxkit.torch import _linear  # noqa: E402

BF16 = torch.bfloat16
N, D, V = 24, 16, 40


def _problem(seed=0, *, hidden_dtype=BF16, weight_dtype=torch.float32, bias=True, ignore_index=-100):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(2, N // 2, D, generator=g).to(hidden_dtype)  # (..., D): the batch shape is kept
    w = (0.5 * torch.randn(V, D, generator=g)).to(weight_dtype)
    b = torch.randn(V, generator=g).to(weight_dtype) if bias else None
    y = torch.randint(0, V, (2, N // 2), generator=g)
    y[0, 1] = y[1, 5] = ignore_index
    return h, w, b, y


def _leaves(*tensors):
    return [None if t is None else t.detach().clone().requires_grad_() for t in tensors]


def _upstream(reduction):
    return torch.linspace(-1.0, 2.0, N).reshape(2, N // 2) if reduction == "none" else torch.tensor(1.0)


def _grads(loss, leaves, upstream):
    loss.backward(upstream.to(loss.dtype))
    return [None if t is None else t.grad for t in leaves]


def _dense(h, w, b, y, upstream, **options):
    """The torch code the fused loss replaces, under CPU bf16 autocast."""
    leaves = _leaves(h, w, b)
    with torch.autocast("cpu", dtype=BF16):
        loss = F.cross_entropy(F.linear(*leaves).movedim(-1, 1), y, **options)
    return loss, _grads(loss, leaves, upstream)


def _fused(h, w, b, y, upstream, **options):
    leaves = _leaves(h, w, b)
    with torch.autocast("cpu", dtype=BF16):
        loss = skt.linear_cross_entropy(leaves[0], leaves[1], y, bias=leaves[2], **options)
    return loss, _grads(loss, leaves, upstream)


def _oracle(h, w, b, y, upstream, **options):
    """Exact float64 math on the inputs as autocast rounds them (bf16)."""
    leaves = _leaves(*(None if t is None else t.to(BF16).double() for t in (h, w, b)))
    loss = F.cross_entropy(F.linear(*leaves).movedim(-1, 1), y, **options)
    return loss, _grads(loss, leaves, upstream.double())


def _err(a, ref):
    return float((a.double() - ref).detach().abs().max())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1}, {"ignore_index": 3}, {"bias": False, "chunk_size": 5}],
    ids=["plain", "label_smoothing", "ignore_index", "no-bias-chunks"],
)
@pytest.mark.parametrize("native", [False, True], ids=["fp32-gemm", "bf16-gemm"])
def test_bf16_hidden_float32_weight_matches_dense_autocast(monkeypatch, native, options, reduction):
    monkeypatch.setattr(_linear, "NATIVE_BF16_GEMM", native)
    options = dict(options, reduction=reduction)
    bias = options.pop("bias", True)
    chunk_size = options.pop("chunk_size", None)
    h, w, b, y = _problem(bias=bias, ignore_index=options.get("ignore_index", -100))
    up = _upstream(reduction)
    loss, grads = _fused(h, w, b, y, up, chunk_size=chunk_size, **options)
    dense_loss, dense_grads = _dense(h, w, b, y, up, **options)
    ref_loss, ref_grads = _oracle(h, w, b, y, up, **options)
    # dtypes as the dense code's: float32 loss (cross_entropy's autocast policy), each
    # gradient in its own input's dtype
    assert loss.dtype == dense_loss.dtype == torch.float32
    assert loss.shape == dense_loss.shape
    for g, t in zip(grads, (h, w, b)):
        assert (g is None) == (t is None) and (g is None or g.dtype == t.dtype)
    scale = float(ref_loss.detach().abs().max())
    torch.testing.assert_close(loss, dense_loss, rtol=2**-6, atol=2**-6 * scale)
    if not native:  # float32 GEMMs on the bf16 operands: logits not rounded, unlike the dense ones
        assert _err(loss, ref_loss) <= _err(dense_loss, ref_loss)
    else:  # bf16 GEMMs: logits rounded to bf16 as the dense ones
        assert _err(loss, ref_loss) <= max(1.5 * _err(dense_loss, ref_loss), 2**-8 * scale)
    for ours, dense, ref in zip(grads, dense_grads, ref_grads):
        if ref is None:
            continue
        scale = float(ref.abs().max())
        torch.testing.assert_close(ours.float(), dense.float(), rtol=2**-5, atol=2**-6 * scale)
        if not native:
            # float32 all through, one rounding at the end (to the bf16 operand autocast made):
            # at most half a bf16 unit; the dense path rounds dlogits and the GEMM output
            assert _err(ours, ref) <= min(1.5 * _err(dense, ref), 2**-8 * scale)
        else:
            # the dense path's two bf16 roundings (dlogits, the GEMM output), of different
            # operands: within one bf16 unit of the largest entry of each other
            assert _err(ours, ref) <= max(1.5 * _err(dense, ref), 2**-7 * scale)


@pytest.mark.parametrize("native", [False, True], ids=["fp32-gemm", "bf16-gemm"])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float32), (BF16, BF16), (torch.float32, BF16)])
def test_autocast_is_the_bf16_computation(monkeypatch, native, dtypes):
    """Under autocast, any float32/bf16 mix computes exactly as bf16 inputs outside autocast
    with a float32 loss (autocast's casts are the only difference; none leaks into the pass's
    own float32 GEMMs), and the gradients come back in each input's dtype."""
    monkeypatch.setattr(_linear, "NATIVE_BF16_GEMM", native)
    h, w, b, y = _problem(hidden_dtype=dtypes[0], weight_dtype=dtypes[1])
    up = _upstream("mean")
    for chunk_size in (None, 5):
        loss, grads = _fused(h, w, b, y, up, chunk_size=chunk_size, label_smoothing=0.05)
        leaves = _leaves(h.to(BF16), w.to(BF16), b.to(BF16))
        want = skt.linear_cross_entropy(
            leaves[0], leaves[1], y, bias=leaves[2], chunk_size=chunk_size, label_smoothing=0.05,
            loss_dtype=torch.float32,
        )  # fmt: skip
        want_grads = _grads(want, leaves, up)
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, want, rtol=0, atol=0)
        for g, t, wg in zip(grads, (h, w, b), want_grads):
            assert g.dtype == t.dtype
            torch.testing.assert_close(g, wg.to(t.dtype), rtol=0, atol=0)


def test_mismatch_outside_autocast_is_refused():
    h, w, b, y = _problem()
    with pytest.raises(TypeError, match="hidden and weight must have the same dtype, got bfloat16 and float32"):
        skt.linear_cross_entropy(h, w, y, bias=b)
    with torch.autocast("cpu", dtype=BF16, enabled=False):
        with pytest.raises(TypeError, match="same dtype"):
            skt.linear_cross_entropy(h, w, y, bias=b)
    with pytest.raises(TypeError, match="same dtype"):
        skt.linear_cross_entropy_and_grad(h, w, y, bias=b)


def test_float64_is_left_alone_under_autocast():
    """Autocast casts no float64 tensor: float64 stays float64 (and a float64/float32 mix stays refused)."""
    h, w, b, y = _problem(hidden_dtype=torch.float64, weight_dtype=torch.float64)
    with torch.autocast("cpu", dtype=BF16):
        loss = skt.linear_cross_entropy(h, w, y, bias=b)
        with pytest.raises(TypeError, match="same dtype"):
            skt.linear_cross_entropy(h, w.float(), y, bias=b)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, skt.linear_cross_entropy(h, w, y, bias=b), rtol=0, atol=0)


def test_explicit_loss_dtype_is_kept_under_autocast():
    h, w, b, y = _problem()
    with torch.autocast("cpu", dtype=BF16):
        assert skt.linear_cross_entropy(h, w, y, bias=b, loss_dtype=BF16).dtype == BF16
        assert skt.linear_cross_entropy(h, w, y, bias=b, loss_dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_and_grad_under_autocast(reduction):
    """linear_cross_entropy_and_grad: the autograd gradients, in each input's dtype."""
    h, w, b, y = _problem()
    up = _upstream(reduction)
    loss, grads = _fused(h, w, b, y, up, reduction=reduction)
    with torch.autocast("cpu", dtype=BF16):
        out = skt.linear_cross_entropy_and_grad(h, w, y, bias=b, reduction=reduction, grad_output=up)
    assert out[0].dtype == torch.float32
    torch.testing.assert_close(out[0], loss.detach(), rtol=0, atol=0)
    for g, t, want in zip(out[1:], (h, w, b), grads):
        assert g.dtype == t.dtype and not g.requires_grad
        torch.testing.assert_close(g, want, rtol=0, atol=0)


def test_module_under_autocast():
    h, w, b, y = _problem()
    loss_fn = skt.LinearCrossEntropyLoss(label_smoothing=0.1)
    up = _upstream("mean")
    leaves = _leaves(h, w, b)
    with torch.autocast("cpu", dtype=BF16):
        loss = loss_fn(leaves[0], leaves[1], y, leaves[2])
    grads = _grads(loss, leaves, up)
    want, want_grads = _fused(h, w, b, y, up, label_smoothing=0.1)
    torch.testing.assert_close(loss, want, rtol=0, atol=0)
    for g, t, wg in zip(grads, (h, w, b), want_grads):
        assert g.dtype == t.dtype
        torch.testing.assert_close(g, wg, rtol=0, atol=0)


def test_double_backward_under_autocast():
    """create_graph=True differentiates the composite path: the same first gradient."""
    h, w, b, y = _problem()
    hl, wl = _leaves(h, w)
    with torch.autocast("cpu", dtype=BF16):
        loss = skt.linear_cross_entropy(hl, wl, y, bias=b)
        gh, gw = torch.autograd.grad(loss, (hl, wl), create_graph=True)
    assert gh.dtype == BF16 and gw.dtype == torch.float32 and gw.requires_grad
    _, (want_h, want_w, _) = _fused(h, w, b, y, _upstream("mean"))
    torch.testing.assert_close(gh, want_h, rtol=2**-7, atol=2**-8 * float(want_h.abs().max()))
    torch.testing.assert_close(gw, want_w, rtol=2**-7, atol=2**-8 * float(want_w.abs().max()))


def test_compile_under_autocast():
    """torch.compile (fullgraph) of the autocast step: the eager loss and gradients."""
    h, w, b, y = _problem()

    def step(h, w, b):
        with torch.autocast("cpu", dtype=BF16):
            return skt.linear_cross_entropy(h, w, y, bias=b, reduction="sum") / 7

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    out = []
    for fn in (step, compiled):
        leaves = _leaves(h, w, b)
        loss = fn(*leaves)
        loss.backward()
        out.append([loss.detach(), *(t.grad for t in leaves)])
    assert out[1][0].dtype == torch.float32 and out[1][2].dtype == torch.float32
    for a, e in zip(out[1], out[0]):
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-6)
