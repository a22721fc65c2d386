"""linear_cross_entropy(_and_grad) with nothing to learn from: an empty batch
(N = 0) and a batch whose targets are all ignored. Every gradient must be
exact zeros, as a dense float64 torch oracle gives, on every pass plan (token
chunks, float32 vocabulary tiles, 16-bit tiles upcast to float32 GEMMs, 16-bit
tiles with native bf16 GEMMs), every dtype and reduction, in NumPy and torch.

Also: a bias whose dtype differs from the weight's is refused, as ``F.linear``
refuses it.
"""

from __future__ import annotations

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit import linear

torch = pytest.importorskip("torch")
F = torch.nn.functional
skt = pytest.importorskip("softmaxkit.torch")
from softmaxkit.torch import _linear  # noqa: E402

D, V = 8, 300
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
#: the bf16 GEMM policy on CPU: None as detected, False forces float32 GEMMs on upcast operands
#: (a CPU without AMX/AVX512-BF16), True forces native bf16 GEMMs
BF16_GEMMS = [False, True]
#: "default": CHUNK_BYTES as shipped; "tiny": a budget of a few logits, so that
#: float32/float64 and native-bf16 input take vocabulary tiles at these small shapes;
#: "chunk_size": an explicit chunk_size=2, always token chunks (16-bit: upcast weight)
BUDGETS = ["default", "tiny", "chunk_size"]
_SHIPPED_CHUNK_BYTES = linear.CHUNK_BYTES


@pytest.fixture(autouse=True)
def _uninitialised_memory_is_nan():
    """``torch.empty`` fills floats with NaN, so a gradient that nothing writes shows
    deterministically (instead of whatever the allocator hands back)."""
    import torch.utils.deterministic as det

    was_on, was_fill = torch.are_deterministic_algorithms_enabled(), det.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    det.fill_uninitialized_memory = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on)
        det.fill_uninitialized_memory = was_fill


def _configure(monkeypatch, budget, native_bf16):
    """Set the budget and bf16 GEMM policy; return the ``chunk_size`` to pass."""
    monkeypatch.setattr(linear, "CHUNK_BYTES", 256 if budget == "tiny" else _SHIPPED_CHUNK_BYTES)
    monkeypatch.setattr(_linear, "NATIVE_BF16_GEMM", native_bf16)
    return 2 if budget == "chunk_size" else None


def _problem(dtype, case, *, batch, soft=False, seed=0):
    """``hidden`` of shape ``batch + (D,)`` with its targets: ``case`` "empty"
    (``batch`` has a 0) or "ignored" (every target is ignore_index)."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(*batch, D, generator=g, dtype=torch.float64).to(dtype)
    w = (torch.randn(V, D, generator=g, dtype=torch.float64) * 0.5).to(dtype)
    b = torch.randn(V, generator=g, dtype=torch.float64).to(dtype)
    if soft:
        y = torch.softmax(torch.randn(*batch, V, generator=g, dtype=torch.float64), -1).to(dtype)
    elif case == "empty":
        y = torch.zeros(batch, dtype=torch.long)
    else:
        y = torch.full(batch, -100, dtype=torch.long)
    return h, w, b, y


def dense_oracle(h, w, b, y, *, reduction, **options):
    """Loss and gradients of ``F.cross_entropy(h @ w.T + b, y)`` in float64 torch
    autograd (upstream 1, ``loss.sum()`` for "none"). A "mean" over nothing is
    NaN there and 0.0 in softmaxkit (README, "mean" when every target is ignored),
    so it is 0.0 here; its gradient is zero either way."""
    leaves = [x.detach().double().requires_grad_() for x in (h, w, b)]
    logits = leaves[0].reshape(-1, D) @ leaves[1].T + leaves[2]
    target = y.reshape(-1, V).double() if y.is_floating_point() else y.reshape(-1)
    loss = F.cross_entropy(logits, target, reduction=reduction, **options)
    loss.sum().backward()
    if reduction == "none":
        loss = loss.reshape(y.shape[: h.dim() - 1])
    elif reduction == "mean" and bool(torch.isnan(loss)):  # finite inputs: NaN only for 0 / 0
        loss = torch.zeros((), dtype=torch.float64)
    return loss.detach(), [x.grad for x in leaves]


def _assert_exact(got, want, dtype, name):
    assert got.dtype == dtype, f"{name}: dtype {got.dtype}, want {dtype}"
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)}, want {tuple(want.shape)}"
    bad = ~(got.double() == want)
    assert not bool(bad.any()), (
        f"{name}: {int(bad.sum())} of {got.numel()} entries differ from the dense float64 oracle, "
        f"e.g. {got.double()[bad].flatten()[:4].tolist()} against {want[bad].flatten()[:4].tolist()}"
    )


OPTIONS = [{}, {"label_smoothing": 0.1, "class_weight": "random"}]


def _options(options):
    out = dict(options)
    if out.get("class_weight") == "random":
        out["class_weight"] = torch.rand(V, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    return out


#: (dtype, bf16 GEMM policy): bfloat16 under both policies, the others as detected
DTYPE_POLICIES = [(dt, None) for dt in DTYPES if dt != torch.bfloat16] + [(torch.bfloat16, p) for p in BF16_GEMMS]


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "smoothing+class_weight"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case,batch", [("empty", (0,)), ("empty", (2, 0)), ("ignored", (5,))])
@pytest.mark.parametrize("dtype,native_bf16", DTYPE_POLICIES, ids=lambda x: str(x).removeprefix("torch."))
def test_torch_grads_are_exact_zeros(monkeypatch, dtype, case, batch, reduction, with_bias, options, native_bf16,
                                     budget):  # fmt: skip
    """Autograd and linear_cross_entropy_and_grad against the dense float64 oracle."""
    chunk_size = _configure(monkeypatch, budget, native_bf16)
    h, w, b, y = _problem(dtype, case, batch=batch)
    b = b if with_bias else None
    opts = _options(options)
    oracle_opts = {("weight" if k == "class_weight" else k): v for k, v in opts.items()}
    want_loss, want = dense_oracle(h, w, b if b is not None else torch.zeros(V, dtype=dtype), y,
                                   reduction=reduction, **oracle_opts)  # fmt: skip

    leaves = [x.detach().clone().requires_grad_() for x in (h, w, b) if x is not None]
    loss = skt.linear_cross_entropy(leaves[0], leaves[1], y, bias=leaves[2] if b is not None else None,
                                    chunk_size=chunk_size, reduction=reduction, **opts)  # fmt: skip
    loss.sum().backward()
    _assert_exact(loss.detach(), want_loss, dtype, "loss")
    names = ("grad_hidden", "grad_weight", "grad_bias")
    for leaf, wg, name in zip(leaves, want, names):
        _assert_exact(leaf.grad, wg, dtype, f"autograd {name}")

    out = skt.linear_cross_entropy_and_grad(h, w, y, bias=b, chunk_size=chunk_size, reduction=reduction, **opts)
    _assert_exact(out[0], want_loss, dtype, "and_grad loss")
    for g, wg, name in zip(out[1:], want, names):
        if name == "grad_bias" and b is None:
            assert g is None
            continue
        _assert_exact(g, wg, dtype, f"and_grad {name}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_torch_empty_soft_targets(monkeypatch, dtype, reduction):
    """Probabilities of shape (0, V): zero gradients too."""
    _configure(monkeypatch, "default", False)
    h, w, b, y = _problem(dtype, "empty", batch=(0,), soft=True)
    want_loss, want = dense_oracle(h, w, b, y, reduction=reduction)
    out = skt.linear_cross_entropy_and_grad(h, w, y, bias=b, reduction=reduction)
    _assert_exact(out[0], want_loss, dtype, "loss")
    for g, wg, name in zip(out[1:], want, ("grad_hidden", "grad_weight", "grad_bias")):
        _assert_exact(g, wg, dtype, name)


def _plan_kind(h, y, budget, native_bf16, monkeypatch):
    chunk_size = _configure(monkeypatch, budget, native_bf16)
    plan = _linear._plan(y.numel(), V, h.reshape(-1, D), chunk_size)
    if not plan.vocab_tiles:
        return "token chunks"
    if h.dtype in (torch.float32, torch.float64):
        return "float tiles"
    return "native bf16 tiles" if _linear.gemm_dtype(h.dtype, h.device) == h.dtype else "upcast tiles"


def test_cases_cover_every_plan(monkeypatch):
    """The grid above reaches every pass plan, the 16-bit tiles with no rows among them."""
    if not linear.vocab_tiles_available():
        pytest.skip("vocabulary tiles need the numba kernels")
    seen = set()
    for dtype in DTYPES:
        for case, batch in [("empty", (0,)), ("ignored", (5,))]:
            for budget in BUDGETS:
                for native in BF16_GEMMS if dtype == torch.bfloat16 else [None]:
                    h, _, _, y = _problem(dtype, case, batch=batch)
                    seen.add((_plan_kind(h, y, budget, native, monkeypatch), case))
    for kind in ("token chunks", "float tiles", "upcast tiles", "native bf16 tiles"):
        assert (kind, "ignored") in seen, sorted(seen)
    assert {("upcast tiles", "empty"), ("token chunks", "empty")} <= seen, sorted(seen)


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case,batch", [("empty", (0,)), ("ignored", (5,))])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_numpy_grads_are_exact_zeros(monkeypatch, dtype, case, batch, reduction, budget):
    chunk_size = _configure(monkeypatch, budget, None)
    h, w, b, y = _problem(torch.float64, case, batch=batch)
    want_loss, want = dense_oracle(h, w, b, y, reduction=reduction)
    arrays = [x.numpy().astype(dtype) for x in (h, w, b)]
    loss, *grads = sk.linear_cross_entropy_and_grad(arrays[0], arrays[1], y.numpy(), bias=arrays[2],
                                                    chunk_size=chunk_size, reduction=reduction)  # fmt: skip
    assert np.asarray(loss).dtype == dtype
    np.testing.assert_array_equal(np.asarray(loss, dtype=np.float64), want_loss.numpy())
    for g, wg, name in zip(grads, want, ("grad_hidden", "grad_weight", "grad_bias")):
        assert g.dtype == dtype and g.shape == tuple(wg.shape), name
        np.testing.assert_array_equal(g.astype(np.float64), wg.numpy(), err_msg=name)


@pytest.mark.parametrize("bias_dtype", [torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_torch_bias_dtype_must_match_weight(bias_dtype):
    """``F.linear`` refuses a bias of another dtype; so does the fused loss (it silently
    computed in float64 and returned a float64 grad_bias)."""
    h, w, b, y = _problem(torch.float32, "ignored", batch=(4,))
    y = torch.tensor([0, 1, 2, 3])
    b = b.to(bias_dtype)
    with pytest.raises(RuntimeError):
        F.linear(h, w, b)
    msg = f"bias must have weight's dtype float32, got {str(bias_dtype).removeprefix('torch.')}"
    with pytest.raises(TypeError, match=msg):
        skt.linear_cross_entropy(h, w.requires_grad_(), y, bias=b.requires_grad_())
    with pytest.raises(TypeError, match=msg):
        skt.linear_cross_entropy_and_grad(h, w, y, bias=b)


def test_numpy_bias_dtype_must_match_weight():
    h, w, b, _ = _problem(torch.float64, "ignored", batch=(4,))
    y = np.array([0, 1, 2, 3])
    h32, w32 = h.numpy().astype(np.float32), w.numpy().astype(np.float32)
    with pytest.raises(TypeError, match="bias must have weight's dtype float32, got float64"):
        sk.linear_cross_entropy(h32, w32, y, bias=b.numpy())


def test_numpy_list_bias_takes_the_weights_dtype():
    """Review R8: a list bias (float64 once np.asarray'd) beside float32 weights was refused with a hint that
    does not work on lists; a list has no dtype of its own and takes the weight's, as before the check."""
    h, w, b, _ = _problem(torch.float64, "ignored", batch=(4,))
    y = np.array([0, 1, 2, 3])
    h32, w32 = h.numpy().astype(np.float32), w.numpy().astype(np.float32)
    from_list = sk.linear_cross_entropy(h32, w32, y, bias=b.numpy().tolist())
    from_array = sk.linear_cross_entropy(h32, w32, y, bias=b.numpy().astype(np.float32))
    assert np.asarray(from_list).dtype == np.float32
    np.testing.assert_array_equal(from_list, from_array)


def test_numpy_path_refuses_a_tensor_bias_of_another_dtype():
    """Review R9: the list rule cast every non-ndarray bias, so a float64 tensor beside float32 arrays was
    rounded silently; only lists and tuples take the weight's dtype."""
    h, w, b, _ = _problem(torch.float64, "ignored", batch=(4,))
    y = np.array([0, 1, 2, 3])
    h32, w32 = h.numpy().astype(np.float32), w.numpy().astype(np.float32)
    with pytest.raises(TypeError, match="bias must have weight's dtype float32, got float64"):
        sk.linear_cross_entropy(h32, w32, y, bias=b)
