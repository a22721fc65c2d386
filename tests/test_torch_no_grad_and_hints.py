"""No gradients made where autograd will not ask for them, and hints for other libraries' options.

* Under ``torch.no_grad()`` / ``torch.inference_mode()`` (an evaluation
  loop, a reentrant checkpoint's first forward) the fused losses used to make
  every gradient in the forward, for inputs that require grad, and throw them
  away: a (V, D) weight gradient and 2.4x the time of the loss alone (audit).
  The spies below record which gradients each pass was asked for.
* Other libraries' spellings (Cut Cross-Entropy's ``shift``/``filter_eps``/
  ``impl``, Liger Kernel's ``return_z_loss``/``lse_square_scale``) get the
  same advice from the functional ops and the modules.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import softmaxkit as sk
import softmaxkit.torch as skt
from softmaxkit.torch import _backend, _linear, distributed

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, V, D = 12, 37, 8
NO_GRAD_MODES = [torch.no_grad, torch.inference_mode]


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, D, generator=g).requires_grad_()
    w = (torch.randn(V, D, generator=g) * 0.3).requires_grad_()
    b = (torch.randn(V, generator=g) * 0.1).requires_grad_()
    t = torch.randint(0, V, (N,), generator=g)
    return h, w, b, t


@pytest.fixture
def linear_needs(monkeypatch):
    """The ``needs`` of every fused linear pass (eager, or inside the custom op when compiled)."""
    calls = []
    orig = _linear.run_rows

    def spy(*args, **kwargs):
        calls.append(tuple(kwargs["needs"]))
        return orig(*args, **kwargs)

    monkeypatch.setattr(_linear, "run_rows", spy)
    return calls


@pytest.fixture
def ce_grad_outs(monkeypatch):
    """Whether each fused cross-entropy kernel call was given a gradient buffer."""
    calls = []
    orig = _backend.cross_entropy_2d

    def spy(*args, **kwargs):
        calls.append(kwargs.get("grad_out") is not None)
        return orig(*args, **kwargs)

    monkeypatch.setattr(_backend, "cross_entropy_2d", spy)
    return calls


# --------------------------------------------------------------------------- no gradients without grad mode


@pytest.mark.parametrize("mode", NO_GRAD_MODES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk_size", [None, 5])  # None: vocabulary tiles on CPU; 5: token chunks
def test_linear_ce_under_no_grad_makes_no_gradients(linear_needs, mode, reduction, chunk_size):
    h, w, b, t = _data()
    expected = skt.linear_cross_entropy(h.detach(), w.detach(), t, bias=b.detach(), reduction=reduction)
    linear_needs.clear()
    with mode():
        loss = skt.linear_cross_entropy(h, w, t, bias=b, reduction=reduction, chunk_size=chunk_size)
    assert linear_needs and all(needs == (False, False, False) for needs in linear_needs), linear_needs
    assert not loss.requires_grad
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)


def test_linear_ce_module_under_no_grad_makes_no_gradients(linear_needs):
    h, w, _, t = _data()
    with torch.no_grad():
        skt.LinearCrossEntropyLoss(z_loss=1e-3)(h, w, t)
    assert linear_needs == [(False, False, False)]


def test_linear_ce_with_grad_still_makes_them_in_the_forward(linear_needs):
    """The fix must not turn the eager "mean" gradients off where they are wanted."""
    h, w, b, t = _data()
    loss = skt.linear_cross_entropy(h, w, t, bias=b)
    assert linear_needs == [(True, True, True)]
    loss.backward()
    ref = F.cross_entropy(h.detach() @ w.detach().T + b.detach(), t)
    assert torch.isclose(loss.detach(), ref, rtol=1e-5)
    assert w.grad is not None and h.grad is not None and b.grad is not None


def test_linear_ce_reentrant_checkpoint_recomputes_with_gradients(linear_needs):
    """use_reentrant=True runs the first forward under no_grad, then recomputes with grad enabled."""
    from torch.utils.checkpoint import checkpoint

    h, w, b, t = _data()
    loss = checkpoint(lambda h_, w_: skt.linear_cross_entropy(h_, w_, t, bias=b), h, w, use_reentrant=True)
    assert linear_needs == [(False, False, False)]
    loss.backward()
    assert linear_needs[1:] == [(True, True, True)]
    h2, w2, b2 = (x.detach().clone().requires_grad_() for x in (h, w, b))
    F.cross_entropy(h2 @ w2.T + b2, t).backward()
    torch.testing.assert_close(h.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.grad, b2.grad, rtol=1e-5, atol=1e-6)


def test_linear_ce_compiled_under_no_grad_makes_no_gradients(linear_needs):
    torch._dynamo.reset()
    try:
        h, w, _, t = _data()
        fn = torch.compile(lambda h_, w_: skt.linear_cross_entropy(h_, w_, t), fullgraph=True, backend="aot_eager")
        with torch.no_grad():
            loss = fn(h, w)
        assert linear_needs and all(needs == (False, False, False) for needs in linear_needs), linear_needs
        linear_needs.clear()
        fn(h, w).backward()  # grad mode back on: a different graph, with gradients
        assert (True, True, False) in linear_needs
        torch.testing.assert_close(loss, F.cross_entropy(h.detach() @ w.detach().T, t), rtol=1e-5, atol=1e-6)
    finally:
        torch._dynamo.reset()


def test_torch_func_grad_under_no_grad_still_differentiates():
    """torch.func.grad ignores an enclosing no_grad; the no-grad shortcut must not shadow it."""
    h, w, _, t = _data()
    with torch.no_grad():
        g = torch.func.grad(lambda w_: skt.linear_cross_entropy(h.detach(), w_, t))(w.detach())
    w2 = w.detach().clone().requires_grad_()
    F.cross_entropy(h.detach() @ w2.T, t).backward()
    torch.testing.assert_close(g, w2.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", NO_GRAD_MODES)
def test_cross_entropy_under_no_grad_makes_no_gradient(ce_grad_outs, mode):
    logits = torch.randn(N, V).requires_grad_()
    t = torch.randint(0, V, (N,))
    with mode():
        loss = skt.cross_entropy(logits, t, label_smoothing=0.1)
    assert ce_grad_outs == [False]
    torch.testing.assert_close(loss, F.cross_entropy(logits.detach(), t, label_smoothing=0.1))
    ce_grad_outs.clear()
    skt.cross_entropy(logits, t).backward()  # with grad mode: made in the forward, as before
    assert ce_grad_outs == [True]
    torch.testing.assert_close(logits.grad, torch.func.grad(lambda x: F.cross_entropy(x, t))(logits.detach()))


def test_class_parallel_linear_under_no_grad_makes_no_gradients(monkeypatch):
    wanted = []
    orig = distributed._LinearPass

    class Spy(orig):
        def __init__(self, hidden, weight, bias, want):
            wanted.append(tuple(want))
            super().__init__(hidden, weight, bias, want)

    monkeypatch.setattr(distributed, "_LinearPass", Spy)
    h, w, b, t = _data()
    with torch.no_grad():
        loss = distributed.class_parallel_linear_cross_entropy(h, w, t, local_bias=b)
    assert wanted == []  # no gradient pass at all
    distributed.class_parallel_linear_cross_entropy(h, w, t, local_bias=b).backward()
    assert wanted == [(True, True, True)]
    torch.testing.assert_close(loss, F.cross_entropy(h.detach() @ w.detach().T + b.detach(), t), rtol=1e-5,
                               atol=1e-6)


# --------------------------------------------------------------------------- other libraries' option names

HINTS = {
    "shift": ("hidden[:, :-1]", "target[:, 1:]", "causal_lm_loss"),
    "filter_eps": ("exact",),
    "impl": ("device",),
    "return_z_loss": ("z_loss * logsumexp",),
    "lse_square_scale": ("z_loss=",),
    "ce_weight": ("class_weight=",),
}


def _message(fn, **kwargs) -> str:
    with pytest.raises(TypeError) as info:
        fn(**kwargs)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(HINTS))
def test_other_spellings_get_the_same_advice_from_functional_and_module(name):
    h, w, _, t = _data()
    value = 1 if name in ("shift", "lse_square_scale") else (True if name == "return_z_loss" else "x")
    messages = {
        "torch functional": _message(lambda **kw: skt.linear_cross_entropy(h, w, t, **kw), **{name: value}),
        "numpy functional": _message(
            lambda **kw: sk.linear_cross_entropy(h.detach().numpy(), w.detach().numpy(), t.numpy(), **kw),
            **{name: value},
        ),
        "module": _message(skt.LinearCrossEntropyLoss, **{name: value}),
    }
    for where, message in messages.items():
        assert repr(name) in message, (where, message)
        for piece in HINTS[name]:
            assert piece in message, (where, message)


def test_functional_still_lists_the_valid_options():
    h, w, _, t = _data()
    message = _message(lambda **kw: skt.linear_cross_entropy(h, w, t, **kw), shift=True, impl="cce")
    assert "valid:" in message and "'shift'" in message and "'impl'" in message


def test_shift_advice_is_right():
    """The slicing the hint gives equals the integration's causal_lm_loss (which it names)."""
    from softmaxkit.integrations.transformers import causal_lm_loss

    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 6, D, generator=g)
    head = torch.nn.Linear(D, V, bias=False)
    labels = torch.randint(0, V, (2, 6), generator=g)
    sliced = skt.linear_cross_entropy(hidden[:, :-1], head.weight, labels[:, 1:])
    torch.testing.assert_close(sliced, causal_lm_loss(hidden, head, labels), rtol=1e-6, atol=1e-6)


def test_numpy_input_hint_unaffected_by_torch_import():
    """The table lives in softmaxkit.linear, importable without torch's modules."""
    from softmaxkit import linear

    assert "shift" in linear.OTHER_SPELLINGS and "return_z_loss" in linear.OTHER_SPELLINGS
    x = np.ones((2, 3), np.float32)
    assert "causal_lm_loss" in _message(lambda **kw: sk.linear_cross_entropy(x, np.eye(4, 3, dtype=np.float32),
                                                                             np.array([0, 1]), **kw), shift=1)
