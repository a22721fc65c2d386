"""``torch.compile(fullgraph=True)`` over softmaxkit.torch: no graph breaks, same numbers.

``fullgraph=True`` turns any graph break into an error, so each test that
compiles is also the proof that the CPU kernels are traced as custom ops
(``softmaxkit::cross_entropy_rows``, ``softmaxkit::linear_cross_entropy_rows``).
Most tests use ``backend="aot_eager"`` (Dynamo + AOTAutograd, the full
tracing stack, without Inductor's C++ code generation, which takes about a
minute per graph on a 2-core machine); one test compiles with Inductor.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import softmaxkit.torch as skt

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


class TinyModel(torch.nn.Module):
    def __init__(self, d_in=8, d=16, v=11):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Linear(d_in, d)
        self.head = torch.nn.Linear(d, v, bias=False)
        self.ce = skt.CrossEntropyLoss(label_smoothing=0.1, weight=torch.rand(v) + 0.5)
        self.fused = skt.LinearCrossEntropyLoss(softcap=3.0, reduction="sum")

    def forward(self, x, y):
        h = torch.tanh(self.body(x))
        logits = self.head(h)
        return (
            self.ce(logits, y)
            + 0.01 * skt.cross_entropy(logits, y, reduction="sum", ignore_index=3, z_loss=1e-3)
            + skt.linear_cross_entropy(h, self.head.weight, y, z_loss=1e-3)
            + 0.1 * self.fused(h, self.head.weight, y)
            + skt.cross_entropy(logits, torch.softmax(logits.detach() * 0.5, -1))  # soft targets
        )


def _step(model, fn, x, y):
    """One training step's numbers: loss and every parameter's gradient."""
    model.zero_grad(set_to_none=True)
    loss = fn(x, y)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def _data(n=12, d_in=8, v=11):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d_in, generator=g)
    y = torch.randint(0, v, (n,), generator=g)
    y[2] = 3  # an ignored row for the ignore_index=3 term
    return x, y


def test_training_step_fullgraph_matches_eager():
    model = TinyModel()
    x, y = _data()
    loss_e, grads_e = _step(model, model, x, y)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    for _ in range(2):  # the second call runs the cached graph
        loss_c, grads_c = _step(model, compiled, x, y)
        torch.testing.assert_close(loss_c, loss_e)
        for a, b in zip(grads_c, grads_e):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_fullgraph_every_reduction(reduction):
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(6, 5, 3, dtype=torch.float64, generator=g)
    y = torch.randint(0, 5, (6, 3), generator=g)
    w = torch.rand(5, dtype=torch.float64) + 0.1

    def loss_fn(x, y):
        loss = skt.cross_entropy(x, y, axis=1, weight=w, reduction=reduction, label_smoothing=0.05)
        return loss if reduction != "none" else (loss * torch.linspace(-1, 2, loss.numel()).reshape(loss.shape)).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    results = []
    for fn in (loss_fn, compiled):
        x = x0.clone().requires_grad_()
        loss = fn(x, y)
        loss.backward()
        results.append((loss.detach(), x.grad))
    torch.testing.assert_close(results[1], results[0])
    ref = F.cross_entropy(x0, y, weight=w, reduction=reduction, label_smoothing=0.05)
    if reduction != "none":
        torch.testing.assert_close(results[1][0], ref)


def test_linear_cross_entropy_fullgraph_reduction_none_and_bias():
    g = torch.Generator().manual_seed(3)
    h0 = torch.randn(2, 5, 4, generator=g)
    w0 = torch.randn(9, 4, generator=g)
    b0 = torch.randn(9, generator=g)
    y = torch.randint(0, 9, (2, 5), generator=g)
    up = torch.linspace(-1, 1, 10).reshape(2, 5)

    def loss_fn(h, w, b):
        return (skt.linear_cross_entropy(h, w, y, bias=b, reduction="none", chunk_size=3) * up).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    out = []
    for fn in (loss_fn, compiled):
        ts = [t.clone().requires_grad_() for t in (h0, w0, b0)]
        loss = fn(*ts)
        loss.backward()
        out.append([loss.detach()] + [t.grad for t in ts])
    for a, b in zip(out[1], out[0]):
        torch.testing.assert_close(a, b)


def test_linear_cross_entropy_fullgraph_loss_dtype_float32_for_bfloat16():
    """loss_dtype=torch.float32 through the custom op: float32 loss and upstream, as eager."""
    g = torch.Generator().manual_seed(4)
    h0 = torch.randn(12, 8, generator=g).bfloat16()
    w0 = (0.5 * torch.randn(11, 8, generator=g)).bfloat16()
    y = torch.randint(0, 11, (12,), generator=g)

    def loss_fn(h, w):
        return skt.linear_cross_entropy(h, w, y, reduction="sum", loss_dtype=torch.float32) / 60

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    out = []
    for fn in (loss_fn, compiled):
        ts = [t.clone().requires_grad_() for t in (h0, w0)]
        loss = fn(*ts)
        assert loss.dtype == torch.float32
        loss.backward()
        out.append([loss.detach()] + [t.grad for t in ts])
    for a, b in zip(out[1], out[0]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_compiled_op_checks_labels_at_run_time():
    """Under torch.compile the Python-side checks see fake tensors; the op checks values."""
    fn = torch.compile(lambda x, y: skt.cross_entropy(x, y), fullgraph=True, backend="aot_eager")
    x = torch.randn(3, 4)
    fn(x, torch.tensor([0, 1, 2]))
    with pytest.raises(Exception, match=r"class index 7 at position \[1\]"):
        fn(x, torch.tensor([0, 7, 2]))


def test_custom_ops_pass_torch_library_checks():
    """torch.library.opcheck: schema, fake (meta) implementation and dispatch agree with the real one."""
    from softmaxkit.torch import _custom_ops

    x = torch.randn(4, 5)
    y = torch.tensor([0, 4, 2, -100])
    rs = torch.full((4,), 0.25, dtype=torch.float64)
    torch.library.opcheck(
        _custom_ops.cross_entropy_rows, (x, y, None, -100, 0.1, 0.0, None, rs, True, True),
        test_utils=("test_schema", "test_faketensor"),
    )  # fmt: skip
    h, w = torch.randn(4, 3), torch.randn(5, 3)
    torch.library.opcheck(
        _custom_ops.linear_cross_entropy_rows,
        (h, w, None, y, None, -100, 0.0, 0.0, None, rs, True, True, False, 2, True),
        test_utils=("test_schema", "test_faketensor"),
    )  # fmt: skip


def test_inductor_step_matches_eager():
    """One Inductor compile (C++ code generation; about half a minute here)."""
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(8, 6, generator=g)
    w0 = torch.randn(7, 6, generator=g)
    y = torch.randint(0, 7, (8,), generator=g)

    def step(x, w):
        h = torch.relu(x)
        return skt.linear_cross_entropy(h, w, y) + skt.cross_entropy(h @ w.T, y, label_smoothing=0.1)

    out = []
    for fn in (step, torch.compile(step, fullgraph=True, backend="inductor")):
        w = w0.clone().requires_grad_()
        loss = fn(x0, w)
        loss.backward()
        out.append((loss.detach(), w.grad))
    torch.testing.assert_close(out[1], out[0])


_FRESH_PROCESS_SCRIPT = r"""
import warnings, torch, softmaxkit.torch as skt
warnings.filterwarnings("ignore")
torch.manual_seed(0)
w = torch.randn(9, 4, requires_grad=True)
def f(h, y):
    return skt.linear_cross_entropy(h, w, y) + skt.cross_entropy(h @ w.T, y, reduction="sum")
c = torch.compile(f, fullgraph=True, backend="aot_eager")
for n in (5, 7, 11):  # the second size makes Dynamo trace with a symbolic batch
    h, y = torch.randn(n, 4), torch.randint(0, 9, (n,))
    a, b = c(h, y), f(h, y)
    (ga,), (gb,) = torch.autograd.grad(a, w), torch.autograd.grad(b, w)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)
print("ok")
"""


def test_fresh_process_and_dynamic_batch_size():
    """Nothing loaded beforehand (the numba kernels are imported lazily: Dynamo must not trace that
    import), and batch sizes that change between calls."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", _FRESH_PROCESS_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


_TOP_LEVEL_FIRST_USE_SCRIPT = r"""
import warnings, torch, softmaxkit as sk
warnings.filterwarnings("ignore")
h, w, y = torch.randn(4, 3, requires_grad=True), torch.randn(5, 3), torch.tensor([0, 1, 2, 4])
try:
    torch.compile(lambda h, w: sk.linear_cross_entropy(h, w, y), fullgraph=True, backend="aot_eager")(h, w)
except Exception as exc:
    print(repr(exc))
# Without fullgraph the frame falls back to eager, which does the import.
loss = torch.compile(lambda h, w: sk.cross_entropy(h @ w.T, y), backend="aot_eager")(h, w)
torch.testing.assert_close(loss, sk.cross_entropy(h @ w.T, y))
"""


def test_top_level_op_first_called_under_fullgraph_compile_says_what_to_import():
    """``sk.linear_cross_entropy`` on a tensor loads the torch layer lazily; Dynamo cannot
    trace that import, and fullgraph=True used to fail with "function marked as skipped"."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", _TOP_LEVEL_FIRST_USE_SCRIPT], capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "`import softmaxkit.torch` before compiling" in out.stdout, out.stdout[-3000:]
