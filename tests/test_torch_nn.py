"""softmaxkit.torch.nn: the loss modules, and autograd through a small model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from softmaxkit.torch import CrossEntropyLoss, LinearCrossEntropyLoss  # noqa: E402


def _data(n=32, d=10, c=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    y[3] = -100
    return x, y


def _model(d=10, hidden=16, c=7, seed=1):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, c)
    ).double()


def test_cross_entropy_loss_module_trains_like_torch():
    x, y = _data()
    w = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    ours, ref = _model(), _model()
    ours_loss = CrossEntropyLoss(weight=w, label_smoothing=0.1)
    ref_loss = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_r = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        for model, loss_fn, opt in ((ours, ours_loss, opt_o), (ref, ref_loss, opt_r)):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_linear_cross_entropy_loss_module_matches_dense_head():
    x, y = _data()
    ours, ref = _model(), _model()
    body_o, head_o = ours[:2], ours[2]
    loss = LinearCrossEntropyLoss(reduction="sum", chunk_size=5, z_loss=1e-3)(
        body_o(x), head_o.weight, y, head_o.bias
    )
    loss.backward()
    logits = ref(x)
    lse = torch.logsumexp(logits, 1)
    active = y != -100
    ref_loss = F.cross_entropy(logits, y, reduction="sum") + 1e-3 * (lse[active] ** 2).sum()
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12)


def test_modules_validate_early_and_move_weight():
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        LinearCrossEntropyLoss(label_smoothing=2.0)
    with pytest.raises(TypeError):
        CrossEntropyLoss(None)  # options are keyword-only
    m = CrossEntropyLoss(weight=[1.0, 2.0])
    assert "weight" in dict(m.named_buffers())
    assert m.to(torch.float64).weight.dtype == torch.float64
    assert "reduction='mean'" in repr(m)
    lm = LinearCrossEntropyLoss(class_weight=[1.0, 2.0])
    assert "class_weight" in dict(lm.named_buffers())


def test_class_axis_option():
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    y = torch.randint(0, 5, (4, 3))
    torch.testing.assert_close(CrossEntropyLoss(axis=1)(x, y), F.cross_entropy(x, y))


def test_linear_loss_module_class_weight():
    x, y = _data()
    head = torch.nn.Linear(10, 7).double()
    cw = torch.linspace(0.1, 1.0, 7, dtype=torch.float64)
    loss = LinearCrossEntropyLoss(class_weight=cw, label_smoothing=0.2)(x, head.weight, y, head.bias)
    ref = F.cross_entropy(head(x), y, weight=cw, label_smoothing=0.2)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)


def test_linear_cross_entropy_loss_module_loss_dtype():
    g = torch.Generator().manual_seed(2)
    h = torch.randn(6, 4, generator=g).bfloat16()
    w = torch.randn(5, 4, generator=g).bfloat16().requires_grad_()
    y = torch.randint(0, 5, (6,), generator=g)
    loss = LinearCrossEntropyLoss(reduction="sum", loss_dtype=torch.float32)(h, w, y)
    plain = LinearCrossEntropyLoss(reduction="sum")(h, w, y)
    assert loss.dtype == torch.float32 and plain.dtype == torch.bfloat16
    assert loss.bfloat16() == plain
    loss.backward()
    assert w.grad.dtype == torch.bfloat16


def test_repr_shows_every_option():
    """Audit: the repr left out axis (which decides 3-D+ logits), chunk_size, loss_dtype and the class weights."""
    ce = repr(CrossEntropyLoss(axis=1, weight=torch.ones(3), label_smoothing=0.1))
    assert ce.startswith("CrossEntropyLoss(axis=1, ") and "label_smoothing=0.1" in ce
    assert "weight=<3 class weights>" in ce
    lce = repr(LinearCrossEntropyLoss(chunk_size=64, loss_dtype=torch.float32))
    assert lce.startswith("LinearCrossEntropyLoss(chunk_size=64, loss_dtype=torch.float32, ignore_index=-100")
