"""Drop-in details of softmaxkit.torch beside torch.nn.functional.cross_entropy.

Found by comparing the two under ``torch.func`` transforms and autograd edge
cases: the loss dtype under vmap / forward-mode AD, changing the logits in
place after the loss, the message for an out-of-range class index under a
transform, and the precision of the gradient w.r.t. a float64 soft target.
Each check compares against torch, or against a float64 oracle. CPU only.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, jvp, vmap

import softmaxkit.torch as skt


def _soft_case(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 6, generator=g)  # float32 logits
    p = torch.softmax(torch.randn(3, 4, 6, dtype=torch.float64, generator=g), -1)  # float64 probabilities
    return x, p


def _oracle(x, p):
    return -(p * torch.log_softmax(x.double(), -1)).sum(-1).mean(-1)


@pytest.mark.parametrize("transform", ["vmap", "jvp"])
def test_f64_soft_target_loss_dtype_under_transforms(transform):
    # float32 logits + float64 probabilities: torch (and eager softmaxkit) give a float64 loss
    x, p = _soft_case()
    oracle = _oracle(x, p)
    assert skt.cross_entropy(x[0], p[0]).dtype == torch.float64
    if transform == "vmap":
        got = vmap(skt.cross_entropy)(x, p)
        ref = vmap(F.cross_entropy)(x, p)
    else:
        got = jvp(lambda a: skt.cross_entropy(a, p[0]), (x[0],), (torch.ones_like(x[0]),))[0][None]
        ref = jvp(lambda a: F.cross_entropy(a, p[0]), (x[0],), (torch.ones_like(x[0]),))[0][None]
        oracle = oracle[:1]
    assert got.dtype == ref.dtype == torch.float64
    # computed in float64, as eager: a float32 computation is off by ~1e-8 relative
    torch.testing.assert_close(got, oracle, rtol=1e-13, atol=0)


def test_f64_soft_target_gradient_is_float64_exact():
    # the gradient w.r.t. a float64 soft target on float32 logits: float64, computed in float64
    x, p = _soft_case(1)
    x, p = x[0], p[0].clone().requires_grad_()
    p2 = p.detach().clone().requires_grad_()
    w = torch.rand(6, generator=torch.Generator().manual_seed(0)) + 0.5
    (g,) = torch.autograd.grad(skt.cross_entropy(x, p, label_smoothing=0.1, weight=w), p)
    (ref,) = torch.autograd.grad(F.cross_entropy(x.double(), p2, label_smoothing=0.1, weight=w.double()), p2)
    assert g.dtype == torch.float64
    torch.testing.assert_close(g, ref, rtol=1e-12, atol=1e-15)


def test_inplace_change_of_logits_after_forward():
    # torch saves only its log-softmax output, so the logits may change after the loss
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 50)
    h, y = torch.randn(64, 8), torch.randint(0, 50, (64,))
    grads = {}
    for name, fn in [("torch", F.cross_entropy), ("softmaxkit", skt.cross_entropy)]:
        lin.zero_grad()
        logits = lin(h)
        loss = fn(logits, y) * 0.5  # an upstream other than 1
        logits.div_(2.0)
        loss.backward()
        grads[name] = lin.weight.grad.clone()
    torch.testing.assert_close(grads["softmaxkit"], grads["torch"], rtol=1e-5, atol=1e-7)


def test_inplace_change_of_logits_after_forward_soft_target_grad():
    # the soft target's gradient does not read the (changed) logits either
    x, p = _soft_case(2)
    x = x[0].double().requires_grad_()
    p = p[0].clone().requires_grad_()
    logits = x * 1.0
    skt.cross_entropy(logits, p, z_loss=0.01, softcap=3.0).backward()
    gx, gp = x.grad.clone(), p.grad.clone()
    x.grad = p.grad = None
    logits = x * 1.0
    loss = skt.cross_entropy(logits, p, z_loss=0.01, softcap=3.0)
    logits.mul_(3.0)
    loss.backward()
    torch.testing.assert_close(x.grad, gx, rtol=0, atol=0)
    torch.testing.assert_close(p.grad, gp, rtol=0, atol=0)


def test_inplace_change_then_second_backward_refuses():
    # a second backward (retain_graph) recomputes from the logits: changed ones must not give a wrong number
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    logits = x * 1.0
    loss = skt.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    logits.mul_(2.0)
    with pytest.raises(RuntimeError, match="inplace"):
        torch.autograd.grad(loss, x)


def test_double_backward_still_exact_without_inplace():
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    p = torch.softmax(torch.randn(4, 5, dtype=torch.float64), -1).requires_grad_()
    opts = dict(z_loss=0.02, softcap=2.5, label_smoothing=0.1)
    assert torch.autograd.gradgradcheck(lambda a, b: skt.cross_entropy(a, b, **opts), (x, p))
    y = torch.tensor([0, 4, -100, 2])
    assert torch.autograd.gradgradcheck(lambda a: skt.cross_entropy(a, y, reduction="none", **opts), (x,))


def _expect_clear(fn, n_classes=5):
    with pytest.raises(ValueError, match=rf"logits have {n_classes} classes \(valid: 0\.\.{n_classes - 1}"):
        fn()


BAD = torch.tensor([0, 1, 2, 3, 4, 5])


def test_out_of_range_target_under_transforms_message():
    x = torch.randn(6, 5)
    with pytest.raises(ValueError) as eager:
        skt.cross_entropy(x, BAD)
    # the target is a plain tensor under grad / jvp: the eager message, word for word
    for fn in (
        lambda: grad(lambda a: skt.cross_entropy(a, BAD))(x),
        lambda: jvp(lambda a: skt.cross_entropy(a, BAD), (x,), (torch.ones_like(x),)),
    ):
        with pytest.raises(ValueError) as got:
            fn()
        assert str(got.value) == str(eager.value)
    _expect_clear(lambda: grad(lambda a: skt.cross_entropy(a, BAD, weight=torch.ones(5), label_smoothing=0.1))(x))
    _expect_clear(lambda: grad(lambda a: skt.cross_entropy(a, -BAD - 1, weight=torch.ones(5)))(x))
    # under vmap the values cannot be read: the same wording without the index
    _expect_clear(lambda: vmap(skt.cross_entropy)(x[None], BAD[None]))
    _expect_clear(lambda: vmap(lambda a, b: skt.cross_entropy(a, b, weight=torch.ones(5)))(x[None], BAD[None]))


def test_out_of_range_target_linear_under_transforms_message():
    h, w = torch.randn(6, 3), torch.randn(5, 3)
    _expect_clear(lambda: grad(lambda a: skt.linear_cross_entropy(a, w, BAD))(h))
    _expect_clear(lambda: vmap(lambda a, b: skt.linear_cross_entropy(a, w, b))(h[None], BAD[None]))


def test_grad_out_may_be_a_wider_float_buffer_never_a_narrower_one():
    """bf16 logits into a float32 master-gradient buffer lose nothing (accepted, as before the dtype check);
    int64 (an all-zero gradient) and float16 under float32 logits (rounded) are refused."""
    from softmaxkit.torch.functional import cross_entropy_and_grad

    torch.manual_seed(0)
    x = torch.randn(6, 3, dtype=torch.bfloat16)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    _, want = cross_entropy_and_grad(x, y)
    buf = torch.empty(6, 3, dtype=torch.float32)
    _, got = cross_entropy_and_grad(x, y, grad_out=buf)
    assert got is buf and torch.equal(got, want.float())
    for bad in (torch.int64, torch.float16):
        with pytest.raises(TypeError, match="grad_out must have the logits' dtype"):
            cross_entropy_and_grad(x.float(), y, grad_out=torch.empty(6, 3, dtype=bad))


def test_an_out_of_memory_error_is_not_reported_as_a_bad_target(monkeypatch):
    """Under torch.func the composite loss turned any error containing 'out of' (CUDA out of memory) into
    'target contains a class index outside ...' (review audit): an OOM stays an OOM."""
    from softmaxkit.torch import functional as F

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch.Tensor, "gather", oom)
    x = torch.randn(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(torch.OutOfMemoryError):
        torch.func.grad(lambda z: F.cross_entropy(z, y))(x)
