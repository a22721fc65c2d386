"""Higher-order and forward-mode derivatives, and vmap, of softmaxkit.torch.

Every check compares against ``torch.nn.functional`` under the same
transform, in float64 (the oracle), or runs ``gradgradcheck`` (finite
differences of the first derivative).
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.func import grad, jacrev, jvp, vmap

import softmaxkit.torch as skt
from softmaxkit.torch import _backend

OPTIONS = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight="rand"),
    dict(weight="randn", label_smoothing=0.2),
    dict(ignore_index=2),
    dict(label_smoothing=0.1, reduction="none", weight="rand"),
]
EXTRAS = [dict(z_loss=0.05), dict(softcap=2.0), dict(softcap=1.5, z_loss=0.01, label_smoothing=0.1)]


@pytest.fixture(params=["numpy", "torch_ops"])
def backend(request, monkeypatch):
    monkeypatch.setattr(_backend, "FORCE_TORCH_OPS", request.param == "torch_ops")
    return request.param


def _data(n=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, dtype=torch.float64, generator=g)
    y = torch.tensor([0, 2, 3, 1, 2][:n])
    p = torch.rand(n, c, dtype=torch.float64, generator=g)
    return x, y, p


def _options(opts, c=4):
    kw = dict(opts)
    if kw.get("weight") == "rand":
        kw["weight"] = torch.rand(c, dtype=torch.float64) + 0.1
    elif kw.get("weight") == "randn":
        kw["weight"] = torch.randn(c, dtype=torch.float64)
    return kw


def _reference(logits, target, **kw):
    """torch's loss plus our extras (z-loss, softcap) written in torch ops.

    The z-loss term here is unweighted: EXTRAS use neither class weights nor
    ignored rows, where it is weighted like the row's NLL term."""
    cap, zeta = kw.pop("softcap", None), kw.pop("z_loss", 0.0)
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    loss = F.cross_entropy(logits, target, **kw)
    if zeta:
        lse = torch.logsumexp(logits, -1)
        extra = zeta * lse**2
        reduction = kw.get("reduction", "mean")
        loss = loss + (extra if reduction == "none" else extra.sum() if reduction == "sum" else extra.mean())
    return loss


# --------------------------------------------------------------------------- double backward


def test_gradient_penalty_matches_torch():
    """The issue's example: ``loss + (g**2).sum()`` trained on the plain gradient before."""
    x0, y, _ = _data()
    grads = []
    for fn in (F.cross_entropy, skt.cross_entropy):
        x = x0.clone().requires_grad_()
        loss = fn(x, y)
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        (loss + (g**2).sum()).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0])
    # the penalty's own gradient is not zero: the second derivative really flows
    x = x0.clone().requires_grad_()
    (g,) = torch.autograd.grad(skt.cross_entropy(x, y), x, create_graph=True)
    (g**2).sum().backward()
    assert x.grad.abs().max() > 1e-3


@pytest.mark.parametrize("opts", OPTIONS + EXTRAS, ids=str)
@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
def test_gradgradcheck_cross_entropy(backend, opts, soft):
    x, y, p = _data()
    kw = _options(opts)
    if soft and "ignore_index" in kw:
        kw.pop("ignore_index")
    x.requires_grad_()
    if soft:
        p.requires_grad_()
        assert torch.autograd.gradgradcheck(lambda x, p: skt.cross_entropy(x, p, **kw), (x, p))
    else:
        assert torch.autograd.gradgradcheck(lambda x: skt.cross_entropy(x, y, **kw), (x,))


@pytest.mark.parametrize("opts", OPTIONS + EXTRAS, ids=str)
def test_hessian_matches_torch(opts):
    x, y, _ = _data()
    kw = _options(opts)
    if kw.get("reduction") == "none":
        kw["reduction"] = "sum"
    ours = torch.autograd.functional.hessian(lambda x: skt.cross_entropy(x, y, **kw), x)
    ref = torch.autograd.functional.hessian(lambda x: _reference(x, y, **kw), x)
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_linear_cross_entropy_double_backward(reduction, chunk_size):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(6, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.tensor([0, 1, 4, 3, 2, 0])
    kw = dict(reduction=reduction, label_smoothing=0.1, class_weight=torch.rand(5, dtype=torch.float64) + 0.5)
    assert torch.autograd.gradgradcheck(
        lambda h, w, b: skt.linear_cross_entropy(h, w, y, bias=b, chunk_size=chunk_size, **kw), (h, w, b)
    )


def test_softmax_family_double_backward():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    for fn in (skt.softmax, skt.log_softmax, skt.logsumexp):
        assert torch.autograd.gradgradcheck(lambda x: fn(x, 1), (x,))
    assert torch.autograd.gradgradcheck(lambda x: skt.softmax(x, 0, temperature=2.0), (x,))


def test_retain_graph_then_create_graph():
    """A plain backward (which hands the saved gradient out), then a create_graph one on the same graph."""
    x0, y, _ = _data()
    x = x0.clone().requires_grad_()
    loss = skt.cross_entropy(x, y)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, create_graph=True)
    torch.testing.assert_close(g1, g2.detach())
    assert g2.requires_grad


# --------------------------------------------------------------------------- forward mode and vmap


@pytest.mark.parametrize("opts", OPTIONS + EXTRAS, ids=str)
@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
def test_jvp_matches_torch(opts, soft):
    x, y, p = _data()
    kw = _options(opts)
    if soft:
        kw.pop("ignore_index", None)
    t = p if soft else y
    tx, tp = torch.randn_like(x), torch.randn_like(p)
    if soft:  # tangents in both the logits and the probabilities
        ours = jvp(lambda x, p: skt.cross_entropy(x, p, **kw), (x, p), (tx, tp))
        ref = jvp(lambda x, p: _reference(x, p, **kw), (x, p), (tx, tp))
    else:
        ours = jvp(lambda x: skt.cross_entropy(x, t, **kw), (x,), (tx,))
        ref = jvp(lambda x: _reference(x, t, **kw), (x,), (tx,))
    torch.testing.assert_close(ours, ref)


def test_forward_ad_dual_tensors():
    x, y, _ = _data()
    tangent = torch.randn_like(x)
    results = []
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, tangent)
        for fn in (skt.cross_entropy, F.cross_entropy):
            results.append(fwAD.unpack_dual(fn(dual, y)))
        softmaxes = [fwAD.unpack_dual(fn(dual, -1)).tangent for fn in (skt.log_softmax, torch.log_softmax)]
    torch.testing.assert_close(results[0].primal, results[1].primal)
    torch.testing.assert_close(results[0].tangent, results[1].tangent)
    torch.testing.assert_close(*softmaxes)


@pytest.mark.parametrize("opts", OPTIONS, ids=str)
def test_vmap_per_sample_loss_and_gradient(opts):
    """Per-sample gradients, the usual vmap(grad(...)) recipe (DP-SGD)."""
    x, y, _ = _data()
    kw = _options(opts)
    if kw.get("reduction") == "none":
        kw["reduction"] = "sum"
    xb, yb = x.reshape(5, 1, 4), y.reshape(5, 1)
    ours = vmap(grad(lambda x, y: skt.cross_entropy(x, y, **kw)))(xb, yb)
    # the reference loops over samples: torch's own CE cannot be vmapped with weights and smoothing
    ref = torch.stack([grad(lambda x: F.cross_entropy(x, yi, **kw))(xi) for xi, yi in zip(xb, yb)])
    torch.testing.assert_close(ours, ref)
    ref_loss = torch.stack([F.cross_entropy(xi, yi, **kw) for xi, yi in zip(xb, yb)])
    # a sample whose only row is ignored: "mean" is 0 here, NaN in torch (documented difference)
    all_ignored = (yb == kw.get("ignore_index", -100)).all(1)
    if kw.get("reduction", "mean") == "mean":
        assert bool(ref_loss[all_ignored].isnan().all())
        ref_loss = torch.where(all_ignored, 0.0, ref_loss)
    torch.testing.assert_close(vmap(lambda x, y: skt.cross_entropy(x, y, **kw))(xb, yb), ref_loss)


@pytest.mark.parametrize("opts", OPTIONS, ids=str)
def test_vmap_per_sample_gradient_of_unbatched_rows(opts):
    """vmap(grad(...)) over (C,) rows, each sample one unbatched row: with ``weight=`` the
    class weight was read with a 0-d index, which vmap turns into a refused ``.item()``."""
    x, y, _ = _data()
    kw = _options(opts)
    if kw.get("reduction") == "none":
        kw["reduction"] = "sum"
    ours = vmap(grad(lambda x, y: skt.cross_entropy(x, y, **kw)))(x, y)
    ref = torch.stack([grad(lambda x: F.cross_entropy(x, yi, **kw))(xi) for xi, yi in zip(x, y)])
    # an ignored row: zero gradient here, NaN in torch under "mean" (documented difference)
    ignored = y == kw.get("ignore_index", -100)
    torch.testing.assert_close(ours[~ignored], ref[~ignored])
    assert bool((ours[ignored] == 0).all())


def test_vmap_soft_targets_and_jacobian():
    x, _, p = _data()
    torch.testing.assert_close(
        vmap(skt.cross_entropy)(x, p), vmap(F.cross_entropy)(x, p)
    )
    torch.testing.assert_close(
        jacrev(lambda x: skt.cross_entropy(x, p, reduction="none"))(x),
        jacrev(lambda x: F.cross_entropy(x, p, reduction="none"))(x),
    )


def test_vmap_softmax_family():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(vmap(lambda r: skt.softmax(r, 0))(x), torch.softmax(x, 1))
    torch.testing.assert_close(vmap(lambda r: skt.log_softmax(r, -1))(x), torch.log_softmax(x, -1))
    torch.testing.assert_close(vmap(lambda r: skt.logsumexp(r, 0))(x), torch.logsumexp(x, 1))
    t = torch.randn_like(x)
    torch.testing.assert_close(
        jvp(lambda r: skt.softmax(r, 1), (x,), (t,)), jvp(lambda r: torch.softmax(r, 1), (x,), (t,))
    )


def test_vmap_linear_cross_entropy():
    g = torch.Generator().manual_seed(4)
    h = torch.randn(3, 4, 6, dtype=torch.float64, generator=g)
    w = torch.randn(7, 6, dtype=torch.float64, generator=g)
    y = torch.randint(0, 7, (3, 4), generator=g)
    ours = vmap(lambda h, y: skt.linear_cross_entropy(h, w, y))(h, y)
    ref = vmap(lambda h, y: F.cross_entropy(h @ w.T, y))(h, y)
    torch.testing.assert_close(ours, ref)
    gw = vmap(grad(lambda w, h, y: skt.linear_cross_entropy(h, w, y)), in_dims=(None, 0, 0))(w, h, y)
    gw_ref = vmap(grad(lambda w, h, y: F.cross_entropy(h @ w.T, y)), in_dims=(None, 0, 0))(w, h, y)
    torch.testing.assert_close(gw, gw_ref)
