"""Drop-in details of softmaxkit.torch found by audit round BP (torch works, softmaxkit raised).

* ``torch.export``: the exported loss ran forward, but its backward raised "no autograd
  formula was registered" (the custom ops of ``torch.compile`` ended up in the graph);
* DTensor logits and ``FakeTensorMode`` inputs: ".numpy() is not supported for tensor
  subclasses", from the value checks, before any composite decision;
* ``torch.jit.script`` of a loss module: TorchScript's "keyword-arg expansion is not
  supported" instead of what to use;
* torch's positional options (``F.cross_entropy(x, y, w)``): Python's bare "takes 2
  positional arguments but 3 were given";
* (found on the way) a traced float64 loss with label smoothing rounded ``eps / C`` to float32.

Each check compares against torch in float64. CPU only.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import softmaxkit.torch as skt
from softmaxkit.torch import _composite

F64 = torch.float64


def _grads_close(got, want):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- torch.export


class _CENet(nn.Module):
    def __init__(self, loss, **options):
        super().__init__()
        self.lin = nn.Linear(4, 5, dtype=F64)
        self.loss, self.options = loss, options

    def forward(self, x, y):
        return self.loss(self.lin(x), y, **self.options)


@pytest.mark.parametrize(
    "strict, options",
    [
        (False, {}),
        (True, {}),
        (False, {"label_smoothing": 0.1, "ignore_index": 1, "weight": torch.linspace(0.5, 2.0, 5, dtype=F64)}),
    ],
)
def test_exported_cross_entropy_backpropagates_as_torch(strict, options):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, dtype=F64, generator=g), torch.randint(0, 5, (8,), generator=g)
    net = _CENet(skt.cross_entropy, **options)
    ep = torch.export.export(net, (x, y), strict=strict)
    x2, y2 = 3 * torch.randn(8, 4, dtype=F64, generator=g), torch.randint(0, 5, (8,), generator=g)
    mod = ep.module()
    loss = mod(x2, y2)
    loss.backward()
    assert "softmaxkit" not in str(ep.graph)  # aten ops only: runs and differentiates without softmaxkit
    ref = _CENet(F.cross_entropy, **options)
    ref.load_state_dict(net.state_dict())
    want = ref(x2, y2)
    want.backward()
    torch.testing.assert_close(loss, want, rtol=1e-14, atol=0)
    _grads_close([mod.lin.weight.grad, mod.lin.bias.grad], [ref.lin.weight.grad, ref.lin.bias.grad])


def test_exported_soft_target_cross_entropy_backpropagates_as_torch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, dtype=F64, generator=g)
    p = torch.softmax(torch.randn(6, 5, dtype=F64, generator=g), 1)

    class Net(nn.Module):
        def forward(self, x, p):
            return skt.cross_entropy(x, p, label_smoothing=0.2)

    mod = torch.export.export(Net(), (x, p)).module()
    a, b = x.clone().requires_grad_(), p.clone().requires_grad_()
    a2, b2 = x.clone().requires_grad_(), p.clone().requires_grad_()
    mod(a, b).backward()
    F.cross_entropy(a2, b2, label_smoothing=0.2).backward()
    _grads_close([a.grad, b.grad], [a2.grad, b2.grad])


def test_exported_linear_cross_entropy_backpropagates_as_torch():
    g = torch.Generator().manual_seed(2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(16, 50, dtype=F64)

        def forward(self, h, y):
            return skt.linear_cross_entropy(h, self.head.weight, y, bias=self.head.bias)

    h, y = torch.randn(8, 16, dtype=F64, generator=g), torch.randint(0, 50, (8,), generator=g)
    net = Net()
    ep = torch.export.export(net, (h, y))
    mod = ep.module()
    hh, hr = h.clone().requires_grad_(), h.clone().requires_grad_()
    mod(hh, y).backward()
    assert "softmaxkit" not in str(ep.graph)
    head = nn.Linear(16, 50, dtype=F64)
    head.load_state_dict(net.head.state_dict())
    F.cross_entropy(head(hr), y).backward()
    _grads_close([hh.grad, mod.head.weight.grad, mod.head.bias.grad], [hr.grad, head.weight.grad, head.bias.grad])


def test_composite_decision_under_export_and_compile():
    # export is a compile too (both flags set): composite ops there, custom ops under torch.compile
    seen = {}

    class Probe(nn.Module):
        def forward(self, x):
            seen["export"] = _composite.needs_composite(x)
            return x * 2

    torch.export.export(Probe(), (torch.randn(3),))
    assert seen.pop("export") is True

    def compiled(x):
        return x + 1.0 if _composite.needs_composite(x) else x

    x = torch.zeros(3)
    assert torch.equal(torch.compile(compiled, backend="eager", fullgraph=True)(x), x)  # traced: custom ops


# --------------------------------------------------------------------------- tensor subclasses


@pytest.fixture(scope="module")
def mesh():
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    from torch.distributed.device_mesh import init_device_mesh

    created = not dist.is_initialized()
    if created:  # one rank, in process (a HashStore: no port)
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    elif dist.get_world_size() != 1:
        pytest.skip("a multi-rank process group is already initialised")
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        if created:
            dist.destroy_process_group()


@pytest.mark.parametrize("shard", [False, True])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"reduction": "none"}, {"reduction": "sum"}])
def test_dtensor_cross_entropy_matches_torch_on_the_dtensor(mesh, shard, soft, options):
    from torch.distributed.tensor import DTensor, Replicate, Shard

    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, dtype=F64, generator=g)
    if soft:
        t = torch.softmax(torch.randn(6, 5, dtype=F64, generator=g), 1)
    else:
        t = torch.randint(0, 5, (6,), generator=g)
        t[2] = -100
    placements = [Shard(0)] if shard else [Replicate()]
    dt = DTensor.from_local(t, mesh, placements)
    dx, dx_ref = (DTensor.from_local(x.clone(), mesh, placements).requires_grad_() for _ in range(2))
    got, want = skt.cross_entropy(dx, dt, **options), F.cross_entropy(dx_ref, dt, **options)
    assert isinstance(got, DTensor)
    torch.testing.assert_close(got.full_tensor(), want.full_tensor(), rtol=1e-14, atol=1e-15)
    got.sum().backward()
    want.sum().backward()
    _grads_close([dx.grad.full_tensor()], [dx_ref.grad.full_tensor()])


def test_dtensor_linear_cross_entropy_and_loss_module(mesh):
    from torch.distributed.tensor import DTensor, Replicate

    g = torch.Generator().manual_seed(4)
    h, w = torch.randn(6, 4, dtype=F64, generator=g), torch.randn(5, 4, dtype=F64, generator=g)
    y = torch.randint(0, 5, (6,), generator=g)
    dh, dw, dy = (DTensor.from_local(a, mesh, [Replicate()]) for a in (h, w, y))
    want = F.cross_entropy(h @ w.T, y)
    torch.testing.assert_close(skt.linear_cross_entropy(dh, dw, dy).full_tensor(), want, rtol=1e-14, atol=0)
    torch.testing.assert_close(skt.CrossEntropyLoss()(dh @ dw.T, dy).full_tensor(), want, rtol=1e-14, atol=0)


def test_fake_tensor_mode_gives_shapes_and_gradients():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.randn(8, 4, requires_grad=True)
        loss = skt.cross_entropy(x, torch.randint(0, 4, (8,)), label_smoothing=0.1)
        loss.backward()
        assert loss.shape == () and x.grad.shape == (8, 4)
        rows = skt.cross_entropy(x, torch.softmax(torch.randn(8, 4), 1), reduction="none")
        assert rows.shape == (8,)
        h, w = torch.randn(8, 16, requires_grad=True), torch.randn(50, 16, requires_grad=True)
        lin = skt.linear_cross_entropy(h, w, torch.randint(0, 50, (8,)), reduction="none")
        lin.sum().backward()
        assert lin.shape == (8,) and h.grad.shape == (8, 16) and w.grad.shape == (50, 16)


def test_plain_subclass_takes_the_composite_ops():
    class Tagged(torch.Tensor):
        pass

    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(6, 5, dtype=F64, generator=g), torch.randint(0, 5, (6,), generator=g)
    xs = x.as_subclass(Tagged)
    assert _composite.needs_composite(xs) and not _composite.needs_composite(x, nn.Parameter(x))
    torch.testing.assert_close(skt.cross_entropy(xs, y).as_subclass(torch.Tensor), F.cross_entropy(x, y),
                               rtol=1e-14, atol=0)  # fmt: skip


# --------------------------------------------------------------------------- torch.jit


_SCRIPT_DEPRECATED = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@_SCRIPT_DEPRECATED
@pytest.mark.parametrize("make", [skt.CrossEntropyLoss, skt.LinearCrossEntropyLoss])
def test_jit_script_of_a_loss_module_says_what_to_use(make):
    with pytest.raises(RuntimeError, match=rf"{make.__name__} cannot be compiled by torch.jit.script.*torch.jit.trace"):
        torch.jit.script(make())


@_SCRIPT_DEPRECATED
def test_jit_script_of_a_model_holding_the_loss_says_what_to_use():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.loss = nn.Linear(4, 5), skt.CrossEntropyLoss()

        def forward(self, x, y):
            return self.loss(self.lin(x), y)

    with pytest.raises(RuntimeError, match="torch.compile, torch.export or torch.jit.trace"):
        torch.jit.script(Net())


@pytest.mark.parametrize("soft", [False, True])
def test_traced_label_smoothing_is_float64_exact(soft):
    g = torch.Generator().manual_seed(6)
    x1, x2 = torch.randn(8, 5, dtype=F64, generator=g), 3 * torch.randn(8, 5, dtype=F64, generator=g)
    if soft:
        y1, y2 = (torch.softmax(torch.randn(8, 5, dtype=F64, generator=g), 1) for _ in range(2))
    else:
        y1, y2 = (torch.randint(0, 5, (8,), generator=g) for _ in range(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python-side shape checks
        traced = torch.jit.trace(lambda a, b: skt.cross_entropy(a, b, label_smoothing=0.1), (x1, y1))
    torch.testing.assert_close(traced(x2, y2), F.cross_entropy(x2, y2, label_smoothing=0.1), rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- torch's positional options


def _call_cases():
    x, y, w = torch.randn(3, 4), torch.tensor([0, 1, 2]), torch.rand(4)
    return [
        (skt.cross_entropy, (x, y, w), r"cross_entropy\(logits, target, weight=w\)"),
        (skt.binary_cross_entropy_with_logits, (x, x.sigmoid(), w), r"weight=w\)"),
        (skt.softmax, (x, 1, torch.float64), r"dtype=d\)"),
        (skt.log_softmax, (x, 1, torch.float64), r"dtype=d\)"),
        (skt.logsumexp, (x, 1, True), r"keepdim=True\)"),
        (skt.linear_cross_entropy, (x, torch.randn(5, 4), y, torch.randn(5)), r"bias=b\)"),
    ]


@pytest.mark.parametrize("case", range(len(_call_cases())))
def test_torch_positional_options_get_the_keyword_to_pass(case):
    fn, args, advice = _call_cases()[case]
    with pytest.raises(TypeError, match=rf"{fn.__name__} takes keyword options only: .*{advice}"):
        fn(*args)


def test_keyword_calls_and_signatures_unchanged():
    import inspect

    x, y, w = torch.randn(3, 4, dtype=F64), torch.tensor([0, 1, 2]), torch.rand(4, dtype=F64)
    torch.testing.assert_close(skt.cross_entropy(x, y, weight=w), F.cross_entropy(x, y, w), rtol=1e-14, atol=0)
    torch.testing.assert_close(skt.cross_entropy(input=x, target=y), F.cross_entropy(x, y), rtol=1e-14, atol=0)
    assert list(inspect.signature(skt.cross_entropy).parameters)[:3] == ["logits", "target", "axis"]
    with pytest.raises(TypeError, match=r"keyword options only: CrossEntropyLoss\(weight=w\)"):
        skt.CrossEntropyLoss(w)
