"""torch.compile'd softmaxkit losses under double backward, learnable temperatures, torch's ``input=``.

* A ``create_graph=True`` gradient of a compiled loss (gradient penalty,
  Hessian product, MAML) cannot be differentiated again through
  AOTAutograd. torch's own compiled ``F.cross_entropy`` raises then; the
  compiled softmaxkit losses returned the first-order gradient alone, with
  the second-order term silently dropped (audit: 1.4e-2 off the float64
  oracle for cross-entropy, 0.33 for the linear head). They must raise too.
* A learnable temperature tensor under ``torch.compile(fullgraph=True)``
  failed in Dynamo (a host read of its value).
* torch's functional ops and ``nn.CrossEntropyLoss`` name the tensor
  ``input``; softmaxkit accepts that spelling.

Compiled with ``backend="aot_eager"`` (Dynamo + AOTAutograd, where the
double-backward guard lives), without Inductor's slow C++ code generation.
(Under aot_eager torch's own ``F.cross_entropy`` does not raise: its default
partitioner saves the log-softmax, not the input; Inductor's recomputes from
the input, and raises. softmaxkit raises under both.)
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import softmaxkit.torch as skt

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, C, D = 6, 7, 5


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _data():
    g = torch.Generator().manual_seed(0)
    return {
        "z": torch.randn(N, C, generator=g),
        "y": torch.randint(0, C, (N,), generator=g),
        "h": torch.randn(N, D, generator=g),
        "w": torch.randn(C, D, generator=g),
        "b": torch.randn(C, generator=g),
        "p": torch.softmax(torch.randn(N, C, generator=g), -1),
    }


#: name -> (loss of the inputs, names of the inputs that require grad)
CASES = {
    "cross_entropy": (lambda d, z: skt.cross_entropy(z, d["y"], label_smoothing=0.1), ("z",)),
    "CrossEntropyLoss": (lambda d, z: skt.CrossEntropyLoss()(z, d["y"]), ("z",)),
    "cross_entropy_none": (
        lambda d, z: (skt.cross_entropy(z, d["y"], reduction="none") * torch.arange(1.0, N + 1)).sum(), ("z",)
    ),
    "cross_entropy_learnable_soft_target": (lambda d, z, p: skt.cross_entropy(z, p), ("z", "p")),
    "linear_cross_entropy_bias": (
        lambda d, h, w, b: skt.linear_cross_entropy(h, w, d["y"], bias=b), ("h", "w", "b")
    ),
    "LinearCrossEntropyLoss_weight_only": (
        lambda d, w: skt.LinearCrossEntropyLoss()(d["h"], w, d["y"]), ("w",)
    ),
}


def _penalised_grads(loss_fn, d, names):
    """``d(loss + sum ||dloss/dx||^2)/dx``: the gradient-penalty pattern (needs double backward)."""
    xs = [d[n].clone().requires_grad_() for n in names]
    loss = loss_fn(d, *xs)
    grads = torch.autograd.grad(loss, xs, create_graph=True)
    return torch.autograd.grad(loss + sum((g**2).sum() for g in grads), xs)


@pytest.mark.parametrize("fullgraph", [False, True], ids=["default", "fullgraph"])
@pytest.mark.parametrize("case", ["cross_entropy", "linear_cross_entropy_bias"])
def test_double_backward_of_compiled_loss_raises_as_torch_does(case, fullgraph):
    """Fails before the fix: the compiled loss returned dl/dz without the penalty's second-order term."""
    loss_fn, names = CASES[case]
    compiled = torch.compile(loss_fn, backend="aot_eager", fullgraph=fullgraph)
    with pytest.raises(RuntimeError, match="does not currently support double backward"):
        _penalised_grads(compiled, _data(), names)


@pytest.mark.parametrize(
    "case", ["CrossEntropyLoss", "cross_entropy_none", "cross_entropy_learnable_soft_target",
             "LinearCrossEntropyLoss_weight_only"]
)  # fmt: skip
def test_double_backward_of_compiled_loss_raises_every_path(case):
    """Fails before the fix (all but the linear head's "none" reduction, which recomputes in its
    backward and raised already, so it is not listed)."""
    loss_fn, names = CASES[case]
    compiled = torch.compile(loss_fn, backend="aot_eager", fullgraph=True)
    with pytest.raises(RuntimeError, match="does not currently support double backward"):
        _penalised_grads(compiled, _data(), names)


@pytest.mark.parametrize("case", sorted(CASES))
def test_eager_double_backward_stays_exact(case):
    """Guard (passes before the fix): eager softmaxkit matches the float64 composition of torch ops."""
    loss_fn, names = CASES[case]
    d = _data()
    oracle = {
        "cross_entropy": lambda d, z: F.cross_entropy(z, d["y"], label_smoothing=0.1),
        "CrossEntropyLoss": lambda d, z: F.cross_entropy(z, d["y"]),
        "cross_entropy_none": lambda d, z: (
            F.cross_entropy(z, d["y"], reduction="none") * torch.arange(1.0, N + 1, dtype=z.dtype)
        ).sum(),
        "cross_entropy_learnable_soft_target": lambda d, z, p: F.cross_entropy(z, p),
        "linear_cross_entropy_bias": lambda d, h, w, b: F.cross_entropy(h @ w.T + b, d["y"]),
        "LinearCrossEntropyLoss_weight_only": lambda d, w: F.cross_entropy(d["h"] @ w.T, d["y"]),
    }[case]
    d64 = {k: (v.double() if v.is_floating_point() else v) for k, v in d.items()}
    expected = _penalised_grads(oracle, d64, names)
    got = _penalised_grads(loss_fn, d, names)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.double(), e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_first_order_unchanged(case):
    """Guard (passes before the fix): the compiled loss and its gradients equal eager's bit for bit,
    and a create_graph=True gradient (the first half of a penalty) still comes out, matching eager."""
    loss_fn, names = CASES[case]
    d = _data()
    compiled = torch.compile(loss_fn, backend="aot_eager", fullgraph=True)
    results = []
    for fn in (loss_fn, compiled):
        xs = [d[n].clone().requires_grad_() for n in names]
        loss = fn(d, *xs)
        grads = torch.autograd.grad(loss, xs, retain_graph=True)
        graph_grads = torch.autograd.grad(loss, xs, create_graph=True)
        results.append((loss.detach(), grads, graph_grads))
    (loss_e, grads_e, graph_e), (loss_c, grads_c, graph_c) = results
    assert torch.equal(loss_e, loss_c)
    for a, b in zip(grads_e, grads_c):
        assert torch.equal(a, b)
    for a, b in zip(graph_e, graph_c):  # eager recomputes these in composite ops: not bit for bit
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_tied_upstream_op_passes_torch_library_checks():
    """torch.library.opcheck of the op that ties a compiled backward to its input: schema and fake
    (meta) implementation agree with the real one (a scalar, a per-row and an expanded upstream)."""
    from softmaxkit.torch import _custom_ops

    x = torch.randn(4, 5)
    for upstream in (torch.tensor(0.5), torch.rand(4), torch.tensor(2.0).expand(4)):
        torch.library.opcheck(_custom_ops.tied_upstream, (upstream, x), test_utils=("test_schema", "test_faketensor"))
        assert torch.equal(_custom_ops.tied_upstream(upstream, x), upstream)


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves while ``fn`` runs (each saved tensor counted once)."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_compiled_cross_entropy_saves_the_logits_once(dtype, reduction):
    """Fails before the fix: tying the compiled backward to the logits saved them beside the
    forward-made gradient, 2x the logits' bytes (float32; 3x for bfloat16, whose gradient is
    float32), where torch's compiled F.cross_entropy saves 1x. The backward now recomputes the
    gradient from the saved logits, and a double backward still raises."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 500, generator=g).to(dtype).requires_grad_()
    y = torch.randint(0, 500, (64,), generator=g)
    compiled = torch.compile(lambda z: skt.cross_entropy(z, y, reduction=reduction).sum(), backend="aot_eager",
                             fullgraph=True)  # fmt: skip
    logits_bytes = z.numel() * z.element_size()
    assert _saved_bytes(lambda: compiled(z)) <= 1.05 * logits_bytes
    grad, = torch.autograd.grad(compiled(z), z, create_graph=True)
    with pytest.raises(RuntimeError, match="does not currently support double backward"):
        torch.autograd.grad((grad.float() ** 2).sum(), z)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_compiled_bfloat16_cross_entropy_equals_eager_bit_for_bit(reduction):
    """Guard (passes before the fix): the backward's recompute (16-bit logits widened inside the op)
    gives eager's loss and gradient bit for bit."""
    g = torch.Generator().manual_seed(1)
    z0 = (torch.randn(32, 300, generator=g) * 3).to(torch.bfloat16)
    y = torch.randint(0, 300, (32,), generator=g)
    upstream = torch.rand(32, generator=g) if reduction == "none" else torch.tensor(0.7)
    fn = lambda z: skt.cross_entropy(z, y, reduction=reduction, label_smoothing=0.1)  # noqa: E731
    results = []
    for f in (fn, torch.compile(fn, backend="aot_eager", fullgraph=True)):
        z = z0.clone().requires_grad_()
        loss = f(z)
        loss.backward(upstream.to(loss.dtype))
        results.append((loss.detach(), z.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_cross_entropy_rows_op_widening_16_bit_passes_torch_library_checks():
    """Fails before the fix (no ``widen_to``): the fake implementation of the backward's recompute,
    which widens 16-bit rows in the op, agrees with the real one (a float32 gradient)."""
    from softmaxkit.torch import _custom_ops

    x = torch.randn(4, 5).to(torch.bfloat16)
    args = (x, torch.tensor([0, 1, 2, 3]), None, -100, 0.0, 0.0, None, torch.full((4,), 0.25), True, False,
            torch.float32)  # fmt: skip
    torch.library.opcheck(_custom_ops.cross_entropy_rows, args, test_utils=("test_schema", "test_faketensor"))
    assert _custom_ops.cross_entropy_rows(*args)[1].dtype == torch.float32


# --------------------------------------------------------------------------- temperature under compile


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_learnable_temperature_under_fullgraph_compile(op):
    """Fails before the fix: Dynamo refused the host read of the temperature's value."""
    x = torch.randn(4, 300, generator=torch.Generator().manual_seed(0))
    torch_op = getattr(torch, op)
    weights = torch.linspace(-1.0, 1.0, 300)
    results = []
    for fn in (
        lambda x, t: (torch_op(x.double() / t.double(), dim=1) * weights.double()).sum(),
        torch.compile(lambda x, t: (getattr(skt, op)(x, dim=1, temperature=t) * weights).sum(),
                      backend="aot_eager", fullgraph=True),
    ):  # fmt: skip
        t = torch.tensor(1.7, requires_grad=True)
        value = fn(x, t)
        value.backward()
        results.append((value.detach().double(), t.grad.double()))
    (v_ref, g_ref), (v, g) = results
    torch.testing.assert_close(v, v_ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


def test_bad_temperature_tensor_under_compile_gives_nan_not_a_number():
    """Fails before the fix (the call itself failed): while tracing the value cannot be checked on the
    host, so a temperature <= 0 makes the result NaN rather than a reversed softmax."""
    x = torch.randn(3, 40, generator=torch.Generator().manual_seed(0))
    f = torch.compile(lambda x, t: skt.softmax(x, dim=1, temperature=t), backend="aot_eager", fullgraph=True)
    assert torch.isnan(f(x, torch.tensor(-2.0))).all()
    torch.testing.assert_close(f(x, torch.tensor(2.0)), torch.softmax(x / 2.0, dim=1))


def test_bad_temperature_tensor_still_raises_in_eager():
    """Guard (passes before the fix): eager calls keep the host check and its ValueError."""
    x = torch.randn(3, 40)
    with pytest.raises(ValueError, match="temperature"):
        skt.log_softmax(x, dim=1, temperature=torch.tensor(-1.0, requires_grad=True))


@pytest.mark.parametrize("fullgraph", [False, True])
@pytest.mark.parametrize("shape", [(2,), (0,), (1, 2)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_badly_shaped_temperature_tensor_under_compile_raises_eagers_type_error(op, shape, fullgraph):
    """Fails before the fix: ``reshape(())`` of a temperature that is not one value failed deep in
    Dynamo (a 241-line TorchRuntimeError); eager raises "TypeError: temperature must be a positive
    float", and so must the compiled call (shapes are static while tracing)."""
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    t = torch.full(shape, 0.5)
    with pytest.raises(TypeError, match="temperature must be a positive float"):
        getattr(skt, op)(x, dim=1, temperature=t)
    f = torch.compile(lambda x, t: getattr(skt, op)(x, dim=1, temperature=t), backend="aot_eager",
                      fullgraph=fullgraph)  # fmt: skip
    # fullgraph=True: Dynamo reports every exception raised in the traced code as its own "Observed
    # exception" error (Unsupported), with the TypeError's message in it
    with pytest.raises(Exception if fullgraph else TypeError, match="temperature must be a positive float.*shape"):
        f(x, t)


def test_one_element_temperature_tensor_under_compile_still_works():
    """Guard (passes before the fix): a ``(1, 1)`` temperature is one value, accepted as in eager."""
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    f = torch.compile(lambda x, t: skt.softmax(x, dim=1, temperature=t), backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(f(x, torch.full((1, 1), 0.5)), skt.softmax(x, dim=1, temperature=0.5))


# --------------------------------------------------------------------------- torch's input= spelling


def test_torch_input_keyword_accepted():
    """Fails before the fix: every call below raised TypeError ("unexpected keyword argument 'input'"
    or "missing 1 required positional argument")."""
    d = _data()
    x, y, h, w = d["z"], d["y"], d["h"], d["w"]
    bce_t = torch.rand(N, C, generator=torch.Generator().manual_seed(2))
    pairs = [
        (skt.cross_entropy(input=x, target=y), F.cross_entropy(input=x, target=y)),
        (skt.CrossEntropyLoss()(input=x, target=y), torch.nn.CrossEntropyLoss()(input=x, target=y)),
        (skt.softmax(input=x, dim=1), F.softmax(input=x, dim=1)),
        (skt.log_softmax(input=x, dim=1), F.log_softmax(input=x, dim=1)),
        (skt.logsumexp(input=x, dim=1), torch.logsumexp(input=x, dim=1)),
        (skt.sigmoid(input=x), torch.sigmoid(input=x)),
        (skt.log_sigmoid(input=x), F.logsigmoid(input=x)),
        (skt.binary_cross_entropy_with_logits(input=x, target=bce_t),
         F.binary_cross_entropy_with_logits(input=x, target=bce_t)),
        (skt.linear_cross_entropy(input=h, weight=w, target=y), F.cross_entropy(h @ w.T, y)),
        (skt.LinearCrossEntropyLoss()(input=h, weight=w, target=y), F.cross_entropy(h @ w.T, y)),
    ]  # fmt: skip
    for got, expected in pairs:
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, y: skt.cross_entropy(x, input=x, target=y),
        lambda x, y: skt.cross_entropy(logits=x, input=x, target=y),
        lambda x, y: skt.softmax(x, input=x, dim=1),
        lambda x, y: skt.CrossEntropyLoss()(x, input=x, target=y),
    ],
    ids=["ce_positional", "ce_keyword", "softmax", "module"],
)
def test_tensor_given_twice_is_refused(call):
    """The tensor by its own name (or position) and as input= as well: a TypeError naming both."""
    d = _data()
    with pytest.raises(TypeError, match="twice.*input="):
        call(d["z"], d["y"])


def test_signature_still_shows_softmaxkit_names():
    """Guard (passes before the fix): help() and inspect show the documented argument names."""
    import inspect

    assert list(inspect.signature(skt.cross_entropy).parameters)[:2] == ["logits", "target"]
    assert list(inspect.signature(skt.CrossEntropyLoss.forward).parameters)[:3] == ["self", "logits", "target"]
