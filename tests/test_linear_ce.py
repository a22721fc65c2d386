"""linear_cross_entropy(_and_grad): loss and all three gradients against a
dense float64 reference for every option, in NumPy and torch; the memory
claim (no (N, V) array) in a fresh subprocess; low precision."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import oracle
import softmaxkit as sk
from softmaxkit import linear
from softmaxkit.linear import CHUNK_BYTES, chunk_rows, plan_pass

torch = pytest.importorskip("torch")

N, D, V = 23, 6, 17


def _inputs(seed=0, n=N, d=D, v=V, soft=False, ignored=(2, 9)):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, d))
    w = rng.standard_normal((v, d)) * 0.7
    b = rng.standard_normal(v)
    if soft:
        t = rng.random((n, v))
        t /= t.sum(1, keepdims=True)
    else:
        t = rng.integers(0, v, n)
        for i in ignored:
            if i < n:
                t[i] = -100
    return h, w, b, t


def dense_reference(h, w, b, t, *, class_weight=None, ignore_index=-100, reduction="mean",
                    label_smoothing=0.0, z_loss=0.0, softcap=None, upstream=None):
    """Loss and grads by torch autograd over the dense float64 logits and the
    DESIGN.md formulas (written here again; shares no code with softmaxkit)."""
    h_, w_ = torch.tensor(h, requires_grad=True), torch.tensor(w, requires_grad=True)
    b_ = None if b is None else torch.tensor(b, requires_grad=True)
    x = h_ @ w_.T + (0 if b_ is None else b_)
    if softcap is not None:
        x = softcap * torch.tanh(x / softcap)
    c = x.shape[1]
    cw = torch.ones(c, dtype=torch.float64) if class_weight is None else torch.tensor(class_weight)
    lse = torch.logsumexp(x, 1)
    nlp = lse[:, None] - x  # -log p, (N, V)
    eps = label_smoothing
    t = np.asarray(t)
    if t.ndim == 2:
        tt = (1 - eps) * torch.tensor(t) + eps / c
        rows = (tt * cw * nlp).sum(1) + z_loss * lse**2
        row_w = torch.ones(len(t), dtype=torch.float64)
    else:
        tt = torch.tensor(t)
        active = tt != ignore_index
        y = torch.where(active, tt, 0)
        w_y = torch.where(active, cw[y], 0.0)
        rows = (1 - eps) * w_y * nlp.gather(1, y[:, None])[:, 0] + eps / c * (cw * nlp).sum(1)
        rows = torch.where(active, rows + z_loss * w_y * lse**2, 0.0)
        row_w = w_y
    if reduction == "none":
        loss = rows
    elif reduction == "sum":
        loss = rows.sum()
    else:
        loss = rows.sum() / row_w.sum() if row_w.sum() > 0 else rows.sum() * 0
    u = torch.ones_like(loss) if upstream is None else torch.as_tensor(upstream, dtype=torch.float64)
    inputs = [h_, w_] + ([] if b_ is None else [b_])
    grads = torch.autograd.grad(loss, inputs, u)
    return loss.detach().numpy(), [g.numpy() for g in grads] + ([None] if b_ is None else [])


OPTION_GRID = [
    {},
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(label_smoothing=0.2),
    dict(label_smoothing=1.0, reduction="sum"),
    dict(z_loss=1e-2),
    dict(softcap=2.0),
    dict(class_weight=np.linspace(0.0, 2.0, V)),
    dict(class_weight=np.linspace(0.1, 2.0, V), label_smoothing=0.1, z_loss=1e-3, softcap=3.0),
    dict(ignore_index=5),
]


def _with_ignore_index(inputs, options):
    """Hard targets: mark the ignored rows with the option's ``ignore_index``.

    Soft targets: torch refuses an explicit ``ignore_index >= 0`` with
    probabilities, and so do we; that is checked here, and the remaining
    checks of the test run without it.
    """
    h, w, b, t = inputs
    if "ignore_index" in options and t.ndim == 2:
        with pytest.raises(ValueError, match="not supported with probability"):
            sk.linear_cross_entropy(h, w, t, bias=b, **options)
        options.pop("ignore_index")
    if "ignore_index" in options and t.ndim == 1:
        t = np.where(t == -100, options["ignore_index"], t)
    return h, w, b, t


def _close(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=rtol, atol=atol)


def _pass_kind(request, chunk_size):
    """``chunk_size`` for the call; "vocab-tiles" forces the tiled pass (see :func:`vocab_tiles`)."""
    if chunk_size == "vocab-tiles":
        request.getfixturevalue("vocab_tiles")
        return None
    return chunk_size


@pytest.mark.parametrize("options", OPTION_GRID)
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 7, None, "vocab-tiles"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_numpy_loss_and_grads_match_dense_reference(request, options, soft, chunk_size, with_bias):
    chunk_size = _pass_kind(request, chunk_size)
    options = dict(options)
    h, w, b, t = _with_ignore_index(_inputs(soft=soft), options)
    b = b if with_bias else None
    upstream = np.linspace(-1.0, 2.0, N) if options.get("reduction") == "none" else 1.3
    loss, gh, gw, gb = sk.linear_cross_entropy_and_grad(
        h, w, t, bias=b, chunk_size=chunk_size, grad_output=upstream, **options
    )
    ref_loss, (rh, rw, rb) = dense_reference(h, w, b, t, upstream=upstream, **options)
    _close(loss, ref_loss)
    _close(gh, rh)
    _close(gw, rw)
    if with_bias:
        _close(gb, rb)
    else:
        assert gb is None
    _close(sk.linear_cross_entropy(h, w, t, bias=b, chunk_size=chunk_size, **options), ref_loss)


@pytest.fixture(params=["reference", "numba"])
def cpu_kernel(request, monkeypatch):
    from softmaxkit import kernels

    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if request.param == "numba" else 1 << 62)
    return request.param


@pytest.mark.parametrize("options", OPTION_GRID)
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("chunk_size", [4, None, "vocab-tiles"])
def test_torch_autograd_matches_dense_reference(request, cpu_kernel, options, soft, chunk_size):
    chunk_size = _pass_kind(request, chunk_size)
    options = dict(options)
    h, w, b, t = _with_ignore_index(_inputs(soft=soft), options)
    ht, wt, bt = (torch.tensor(a, requires_grad=True) for a in (h, w, b))
    opts = dict(options)
    if "class_weight" in opts:
        opts["class_weight"] = torch.tensor(opts["class_weight"])
    loss = sk.linear_cross_entropy(ht, wt, torch.tensor(t), bias=bt, chunk_size=chunk_size, **opts)
    # a non-uniform upstream for "none" (peers get this wrong), a non-1 scalar otherwise
    upstream = np.linspace(-1.0, 2.0, N) if options.get("reduction") == "none" else 0.6
    loss.backward(torch.as_tensor(upstream, dtype=torch.float64))
    ref_loss, (rh, rw, rb) = dense_reference(h, w, b, t, upstream=upstream, **options)
    _close(loss.detach(), ref_loss)
    _close(ht.grad, rh)
    _close(wt.grad, rw)
    _close(bt.grad, rb)


@pytest.fixture
def vocab_tiles(monkeypatch):
    """Force vocabulary tiles at the test shapes: token blocks of 10 rows (3
    over N = 23) and a budget of 5 float64 classes for N rows, i.e. 11 classes
    per tile for 10 (2 tiles over V = 17, the last one partial); counts the
    calls of the tiled pass."""
    # Imported before linear.run_vocab_tiles is patched: a first import under
    # the patch would bind the counting wrapper for good.
    from softmaxkit.torch import _linear as torch_linear

    monkeypatch.setattr(linear, "CHUNK_BYTES", N * 8 * 5)
    monkeypatch.setattr(linear, "TILE_TOKENS", 10)
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return linear.run_vocab_tiles.__wrapped__(*args, **kwargs)

    counting.__wrapped__ = linear.run_vocab_tiles
    monkeypatch.setattr(linear, "run_vocab_tiles", counting)
    monkeypatch.setattr(torch_linear, "run_vocab_tiles", counting)
    assert plan_pass(N, V, 8) == linear.PassPlan(True, 10, 5 * N // 10)
    yield calls
    assert calls, "the test never took the vocabulary-tile pass"


def test_vocab_tiles_float32_keep_float32_accuracy(vocab_tiles):
    h, w, b, t = (a.astype(np.float32) if a.dtype.kind == "f" else a for a in _inputs())
    loss, gh, gw, gb = sk.linear_cross_entropy_and_grad(h, w, t, bias=b, label_smoothing=0.1)
    ref_loss, (rh, rw, rb) = dense_reference(
        *(a.astype(np.float64) if a.dtype.kind == "f" else a for a in (h, w, b, t)), label_smoothing=0.1
    )
    assert loss.dtype == gh.dtype == gw.dtype == gb.dtype == np.float32
    _close(loss, ref_loss, rtol=1e-6, atol=0)
    for got, want in ((gh, rh), (gw, rw), (gb, rb)):
        _close(got, want, rtol=1e-5, atol=1e-6)
    assert vocab_tiles


def test_vocab_tiles_none_backward_reuses_the_forward_statistics(vocab_tiles, monkeypatch):
    from softmaxkit.kernels import vocab_tiles as tile_kernels

    folds = []
    fold = tile_kernels.fold_tile
    monkeypatch.setattr(tile_kernels, "fold_tile", lambda *a, **k: (folds.append(1), fold(*a, **k)))
    h, w, b, t = _inputs()
    ht, wt = torch.tensor(h, requires_grad=True), torch.tensor(w, requires_grad=True)
    loss = sk.linear_cross_entropy(ht, wt, torch.tensor(t), reduction="none")
    n_folds = len(folds)  # 3 token blocks x 2 tiles
    assert n_folds == 6
    upstream = torch.linspace(-1.0, 2.0, N, dtype=torch.float64)
    loss.backward(upstream, retain_graph=True)
    first = (ht.grad.clone(), wt.grad.clone())
    assert len(folds) == n_folds  # the backward only recomputed the tiles for the gradient
    ht.grad = wt.grad = None
    loss.backward(upstream)  # a second backward: same cache, same gradients
    torch.testing.assert_close((ht.grad, wt.grad), first, rtol=0, atol=0)
    _, (rh, rw, _) = dense_reference(h, w, None, t, reduction="none", upstream=upstream.numpy())
    _close(first[0], rh)
    _close(first[1], rw)


def test_plan_pass_picks_token_chunks_or_vocab_tiles():
    chunk_32k = CHUNK_BYTES // (32768 * 4)
    assert plan_pass(4096, 32768, 4) == linear.PassPlan(False, chunk_32k)  # 416 rows: efficient GEMMs
    tiles = plan_pass(2048, 131072, 4)  # 104-row chunks would be too thin
    assert tiles == linear.PassPlan(True, 2048, CHUNK_BYTES // (2048 * 4))
    assert plan_pass(20000, 131072, 4).rows == linear.TILE_TOKENS  # token blocks
    assert plan_pass(64, 131072, 4) == linear.PassPlan(False, 64)  # one chunk holds every row
    assert plan_pass(2048, 131072, 4, chunk_size=50) == linear.PassPlan(False, 50)
    assert plan_pass(2048, 131072, 4, tiles_possible=False).vocab_tiles is False


def test_plan_upcast_tiles_leaves_the_float32_shadows_room_in_the_budget():
    shadows = 2 * 4096 * 1024 * 4  # float32 hidden and grad_hidden: 32 MiB
    classes = (CHUNK_BYTES - shadows) // ((4096 + 1024) * 4)
    assert linear.plan_upcast_tiles(4096, 32768, 1024) == linear.PassPlan(True, 4096, classes)
    # shadows beyond the budget: the tiles still get a quarter of it
    wide = linear.plan_upcast_tiles(16384, 131072, 4096)
    assert wide.rows == 16384 and wide.tile_classes == (CHUNK_BYTES // 4) // ((16384 + 4096) * 4)
    assert linear.plan_upcast_tiles(8, 5, 4).tile_classes == 5  # never wider than V
    # plan_pass takes them for 16-bit input with float32 GEMMs, where N <= V only
    assert plan_pass(4096, 32768, 4, upcast_features=1024) == linear.plan_upcast_tiles(4096, 32768, 1024)
    chunks = linear.PassPlan(False, chunk_rows(4096, 32768, 4))
    assert plan_pass(4096, 32768, 4, upcast_features=1024, tiles_possible=False) == chunks
    assert plan_pass(40000, 32768, 4, upcast_features=1024) == linear.PassPlan(False, chunk_rows(40000, 32768, 4))
    assert plan_pass(4096, 32768, 4, upcast_features=1024, chunk_size=16) == linear.PassPlan(False, 16)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_torch_gradcheck(reduction):
    h, w, b, t = _inputs(n=7, d=3, v=5, ignored=(1,))
    args = tuple(torch.tensor(a, requires_grad=True) for a in (h, w, b))
    t = torch.tensor(t)

    def f(h_, w_, b_):
        return sk.linear_cross_entropy(h_, w_, t, bias=b_, chunk_size=3, reduction=reduction,
                                       label_smoothing=0.1, z_loss=0.01, softcap=2.0)

    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("chunk_size", [7, "vocab-tiles"])
def test_torch_only_needed_grads_and_leading_dims(request, chunk_size):
    chunk_size = _pass_kind(request, chunk_size)
    h, w, b, t = _inputs()
    ht = torch.tensor(h).reshape(1, N, D).requires_grad_()
    wt = torch.tensor(w)  # frozen head: no weight gradient is computed
    bt = torch.tensor(b).requires_grad_()  # but a trainable bias
    loss = sk.linear_cross_entropy(
        ht, wt, torch.tensor(t).reshape(1, N), bias=bt, reduction="none", chunk_size=chunk_size
    )
    assert loss.shape == (1, N)
    loss.sum().backward()
    _, (rh, _, rb) = dense_reference(h, w, b, t, reduction="none")
    _close(ht.grad.reshape(N, D), rh)
    _close(bt.grad, rb)
    assert wt.grad is None


def test_torch_and_grad_api_and_retain_graph():
    h, w, b, t = _inputs()
    ht, wt, bt = (torch.tensor(a) for a in (h, w, b))
    loss, gh, gw, gb = sk.linear_cross_entropy_and_grad(ht, wt, torch.tensor(t), bias=bt, grad_output=2.0)
    ref_loss, (rh, rw, rb) = dense_reference(h, w, b, t, upstream=2.0)
    for a, r in [(loss, ref_loss), (gh, rh), (gw, rw), (gb, rb)]:
        _close(a, r)
    ht.requires_grad_()
    loss = sk.linear_cross_entropy(ht, wt, torch.tensor(t))
    (g1,) = torch.autograd.grad(loss, ht, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, ht, torch.tensor(3.0, dtype=torch.float64))
    torch.testing.assert_close(3 * g1, g2)


def test_torch_soft_target_requiring_grad_is_refused():
    h, w, b, t = _inputs(soft=True)
    with pytest.raises(ValueError, match="not differentiable with respect to target"):
        sk.linear_cross_entropy(torch.tensor(h), torch.tensor(w), torch.tensor(t, requires_grad=True))


def test_all_ignored_mean_is_zero_with_zero_grads():
    h, w, b, _ = _inputs()
    t = np.full(N, -100)
    loss, gh, gw, gb = sk.linear_cross_entropy_and_grad(h, w, t, bias=b)
    assert loss == 0.0 and not gh.any() and not gw.any() and not gb.any()


def test_loss_matches_oracle_through_dense_logits():
    h, w, b, t = _inputs()
    ref = oracle.cross_entropy(h @ w.T + b, t, label_smoothing=0.1)
    _close(sk.linear_cross_entropy(h, w, t, bias=b, label_smoothing=0.1), ref, rtol=1e-12)


# --------------------------------------------------------------------------- low precision


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("path", ["token-chunks", "upcast-tiles", "native-tiles"])
@pytest.mark.parametrize("native", [False, True], ids=["fp32-gemm", "bf16-gemm"])
def test_bfloat16_input(monkeypatch, native, path, reduction):
    from softmaxkit.torch import _linear

    monkeypatch.setattr(_linear, "NATIVE_BF16_GEMM", native)
    n, d, v = 64, 32, 300
    chunk_size = 16
    if path == "upcast-tiles":
        # float32 GEMMs: tiles of 70 classes over all 64 tokens (the float32
        # shadows of hidden and its gradient, 16 KiB, come off the budget);
        # native bf16 GEMMs: 24-row token chunks would be thin, so bf16 tiles.
        monkeypatch.setattr(linear, "CHUNK_BYTES", 2 * n * d * 4 + (n + d) * 4 * 70)
        chunk_size = None
    if path == "native-tiles":
        # native bf16 GEMMs: a budget of 16 token rows (6 bytes a logit) takes tiles of
        # 40 classes over all 64 tokens (the float32 grad_hidden accumulator, 8 KiB, comes off)
        monkeypatch.setattr(linear, "CHUNK_BYTES", n * d * 4 + n * 6 * 40)
        chunk_size = None
    h, w, b, t = _inputs(n=n, d=d, v=v)
    h, w, b = h.astype(np.float32) * 0.5, w.astype(np.float32) * 0.5, b.astype(np.float32)
    ht, wt, bt = (torch.tensor(a).bfloat16().requires_grad_() for a in (h, w, b))
    tt = torch.tensor(t)
    lp, *_ = _linear.prepare(ht, wt, bt, tt, chunk_size, {})
    want_tiles = path != "token-chunks"
    assert lp.plan.vocab_tiles == want_tiles
    if path == "upcast-tiles" and not native:
        assert lp.plan == linear.PassPlan(True, n, 70)  # 5 tiles, the last one of 20 classes
    if lp.plan.vocab_tiles and path == "native-tiles":
        # native: 8 tiles of 40 classes (the last of 20) with bf16 GEMMs; without bf16
        # GEMMs the same budget gives float32 upcast tiles
        want = linear.PassPlan(True, n, 40) if native else linear.plan_upcast_tiles(n, v, d)
        assert lp.plan == want
    upstream = torch.linspace(-1.0, 2.0, n) if reduction == "none" else torch.tensor(1.0)
    loss = sk.linear_cross_entropy(ht, wt, tt, bias=bt, chunk_size=chunk_size, reduction=reduction)
    loss.backward(upstream.to(loss.dtype))
    assert loss.dtype == ht.grad.dtype == wt.grad.dtype == bt.grad.dtype == torch.bfloat16
    # the reference: exact float64 math on the bf16-rounded inputs (and upstream)
    h64, w64, b64 = (a.detach().double().numpy() for a in (ht, wt, bt))
    u64 = upstream.bfloat16().double().numpy()
    ref_loss, (rh, rw, rb) = dense_reference(h64, w64, b64, t, reduction=reduction, upstream=u64)
    # torch's own dense bf16 error is the bar
    hb, wb, bb = (a.detach().clone().requires_grad_() for a in (ht, wt, bt))
    torch_loss = torch.nn.functional.cross_entropy(hb @ wb.T + bb, tt, reduction=reduction)
    torch_loss.backward(upstream.to(torch_loss.dtype))
    err = np.abs(loss.detach().double().numpy() - ref_loss).max()
    torch_err = np.abs(torch_loss.detach().double().numpy() - ref_loss).max()
    assert err <= max(torch_err, 2 ** -8 * np.abs(ref_loss).max())
    for ours, theirs, ref in [(ht.grad, hb.grad, rh), (wt.grad, wb.grad, rw), (bt.grad, bb.grad, rb)]:
        ours_err = np.abs(ours.double().numpy() - ref).max()
        torch_err = np.abs(theirs.double().numpy() - ref).max()
        assert ours_err <= max(1.5 * torch_err, 2 ** -8 * np.abs(ref).max())


def _bf16_problem(monkeypatch, native, path, n=64, d=32, v=300):
    """bfloat16 leaves on the token-chunk or upcast-tile path (see test_bfloat16_input)."""
    from softmaxkit.torch import _linear

    monkeypatch.setattr(_linear, "NATIVE_BF16_GEMM", native)
    chunk_size = 16
    if path == "upcast-tiles":
        monkeypatch.setattr(linear, "CHUNK_BYTES", 2 * n * d * 4 + (n + d) * 4 * 70)
        chunk_size = None
    h, w, b, t = _inputs(n=n, d=d, v=v)
    h, w, b = h.astype(np.float32) * 0.5, w.astype(np.float32) * 0.5, b.astype(np.float32)
    leaves = [torch.tensor(a).bfloat16() for a in (h, w, b)]
    return leaves, torch.tensor(t), chunk_size


def _fresh(leaves):
    return [a.detach().clone().requires_grad_() for a in leaves]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("path", ["token-chunks", "upcast-tiles"])
@pytest.mark.parametrize("native", [False, True], ids=["fp32-gemm", "bf16-gemm"])
def test_loss_dtype_float32_for_bfloat16(monkeypatch, native, path, reduction):
    """loss_dtype=torch.float32: the float64-accumulated loss rounded once to float32
    (the default bf16 loss is that value rounded again), close to the float64 oracle."""
    leaves, t, chunk_size = _bf16_problem(monkeypatch, native, path)
    ht, wt, bt = _fresh(leaves)
    kw = dict(bias=bt, chunk_size=chunk_size, reduction=reduction)
    loss32 = sk.linear_cross_entropy(ht, wt, t, loss_dtype=torch.float32, **kw)
    loss16 = sk.linear_cross_entropy(ht, wt, t, **kw)
    assert loss32.dtype == torch.float32 and loss16.dtype == torch.bfloat16
    torch.testing.assert_close(loss32.bfloat16(), loss16, rtol=0, atol=0)
    h64, w64, b64 = (a.double().numpy() for a in leaves)
    ref_loss, _ = dense_reference(h64, w64, b64, t.numpy(), reduction=reduction)
    err = np.abs(loss32.detach().double().numpy() - ref_loss).max()
    if native:  # bf16 GEMM outputs: torch's own dense bf16 logits are the bar
        hb, wb, bb = leaves
        dense = torch.nn.functional.cross_entropy((hb @ wb.T + bb).float(), t, reduction=reduction)
        assert err <= max(2 * np.abs(dense.double().numpy() - ref_loss).max(), 1e-6)
    else:  # float32 GEMMs on the bf16 inputs: float32 accuracy, far below bf16's 2**-9
        assert err <= 1e-5 * max(1.0, np.abs(ref_loss).max())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("path", ["token-chunks", "upcast-tiles"])
@pytest.mark.parametrize("native", [False, True], ids=["fp32-gemm", "bf16-gemm"])
def test_loss_dtype_float32_upstream_scale_is_not_rounded(monkeypatch, native, path, reduction):
    """``(loss / 60).backward()``: the float32 upstream 1/60 scales the bf16 gradients
    exactly (one rounding of g * 1/60), not 1/60 rounded to bf16 (0.34% too large)."""
    leaves, t, chunk_size = _bf16_problem(monkeypatch, native, path)
    grads = []
    for upstream in (None, 60):
        ts = _fresh(leaves)
        loss = sk.linear_cross_entropy(
            ts[0], ts[1], t, bias=ts[2], chunk_size=chunk_size, reduction=reduction, loss_dtype=torch.float32
        )
        (loss if upstream is None else loss / upstream).backward()
        grads.append([a.grad for a in ts])
    scale = torch.tensor(1.0, dtype=torch.float32) / 60
    for unit, scaled in zip(*grads):
        assert scaled.dtype == torch.bfloat16
        torch.testing.assert_close(scaled, (unit.float() * scale).bfloat16(), rtol=0, atol=0)


def test_loss_dtype_reduction_none_upstream_and_double_backward(monkeypatch):
    """"none" (gradients recomputed in backward with the float32 upstream) and
    create_graph=True (the composite path) honour loss_dtype too."""
    from softmaxkit.torch import _linear

    monkeypatch.setattr(_linear, "NATIVE_BF16_GEMM", False)  # float32 GEMMs: float32-accurate loss
    g = torch.Generator().manual_seed(0)
    h0, w0 = torch.randn(2, 5, 8, generator=g).bfloat16(), (0.5 * torch.randn(13, 8, generator=g)).bfloat16()
    y = torch.randint(0, 13, (2, 5), generator=g)
    up = torch.linspace(0.1, 1.0, 10, dtype=torch.float32).reshape(2, 5) / 60
    h, w = _fresh([h0, w0])
    loss = sk.linear_cross_entropy(h, w, y, reduction="none", loss_dtype=torch.float32)
    assert loss.dtype == torch.float32 and loss.shape == (2, 5)
    loss.backward(up)
    # float64 oracle on the bf16 inputs with the float32 upstream
    h64, w64 = (a.double().requires_grad_() for a in (h0, w0))
    ref = torch.nn.functional.cross_entropy((h64 @ w64.T).reshape(10, 13), y.reshape(10), reduction="none")
    ref.backward(up.double().reshape(10))
    torch.testing.assert_close(loss.double(), ref.detach().reshape(2, 5), rtol=1e-5, atol=1e-6)
    for ours, want in ((h.grad, h64.grad), (w.grad, w64.grad)):
        scale = float((ours.double() * want).sum() / (want * want).sum())
        assert abs(scale - 1.0) < 1e-3, scale  # no systematic 16-bit scale error
    # double backward: the composite path returns the float32 loss as well
    h, w = _fresh([h0, w0])
    loss = sk.linear_cross_entropy(h, w, y, reduction="sum", loss_dtype=torch.float32)
    (gh,) = torch.autograd.grad(loss / 60, h, create_graph=True)
    (gh_plain,) = torch.autograd.grad(
        sk.linear_cross_entropy(h, w, y, reduction="sum", loss_dtype=torch.float32) / 60, h
    )
    assert gh.requires_grad and gh.dtype == torch.bfloat16
    torch.testing.assert_close(gh, gh_plain, rtol=2**-7, atol=1e-6)
    (gh * gh.float()).sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad.float()).all()
    # forward-mode AD runs the composite ops: same dtype
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(h0, torch.ones_like(h0))
        out = sk.linear_cross_entropy(dual, w0, y, loss_dtype=torch.float32)
        assert out.dtype == torch.float32
        torch.testing.assert_close(torch.autograd.forward_ad.unpack_dual(out).primal, loss.detach() / 10, rtol=2**-7, atol=0)


def test_loss_dtype_numpy_and_errors():
    h, w, b, t = _inputs()
    h16, w16, b16 = (a.astype(np.float16) for a in (h, w, b))
    loss32 = sk.linear_cross_entropy(h16, w16, t, bias=b16, loss_dtype=np.float32)
    loss16 = sk.linear_cross_entropy(h16, w16, t, bias=b16)
    assert np.asarray(loss32).dtype == np.float32 and np.asarray(loss16).dtype == np.float16
    assert np.float16(loss32) == loss16
    ref, _ = dense_reference(*(a.astype(np.float64) for a in (h16, w16, b16)), t)
    assert abs(float(loss32) - ref) <= 1e-5 * abs(ref)
    out = sk.linear_cross_entropy_and_grad(h16, w16, t, bias=b16, loss_dtype="float64", reduction="none")
    assert out[0].dtype == np.float64 and out[1].dtype == np.float16
    with pytest.raises(ValueError, match="loss_dtype"):
        sk.linear_cross_entropy(h, w, t, loss_dtype=np.float32)  # narrower than float64
    with pytest.raises(TypeError, match="loss_dtype"):
        sk.linear_cross_entropy(h, w, t, loss_dtype=np.int64)
    ht, wt = torch.tensor(h).bfloat16(), torch.tensor(w).bfloat16()
    with pytest.raises(ValueError, match="loss_dtype"):
        sk.linear_cross_entropy(ht, wt, torch.tensor(t), loss_dtype=torch.float16)
    with pytest.raises(TypeError, match="loss_dtype"):
        sk.linear_cross_entropy(ht, wt, torch.tensor(t), loss_dtype=np.float32)


def test_numpy_float16_and_float32():
    h, w, b, t = _inputs()
    ref_loss, (rh, rw, rb) = dense_reference(h, w, b, t)
    for dtype, rtol in [(np.float32, 1e-5), (np.float16, 5e-3)]:
        loss, gh, gw, gb = sk.linear_cross_entropy_and_grad(
            h.astype(dtype), w.astype(dtype), t, bias=b.astype(dtype)
        )
        assert np.asarray(loss).dtype == gh.dtype == gw.dtype == gb.dtype == dtype
        # reference on the rounded inputs
        r_loss, (r_h, r_w, r_b) = dense_reference(*(a.astype(dtype).astype(np.float64) for a in (h, w, b)), t)
        _close(loss, r_loss, rtol=rtol, atol=rtol)
        _close(gw, r_w, rtol=rtol, atol=rtol * np.abs(r_w).max())


# --------------------------------------------------------------------------- validation and chunking


def test_errors():
    h, w, b, t = _inputs()
    with pytest.raises(ValueError, match=r"weight must have shape \(V, 6\)"):
        sk.linear_cross_entropy(h, w[:, :4], t)
    with pytest.raises(ValueError, match=r"bias must have shape \(17,\)"):
        sk.linear_cross_entropy(h, w, t, bias=b[:3])
    with pytest.raises(ValueError, match="class index 17 at position"):
        sk.linear_cross_entropy(h, w, np.full(N, 17))
    with pytest.raises(TypeError, match="same dtype"):
        sk.linear_cross_entropy(h.astype(np.float32), w, t)
    with pytest.raises(TypeError, match="class_weight"):
        sk.linear_cross_entropy(h, w, t, class_weights=np.ones(V))
    # class weights are named class_weight in messages: "weight" is the projection here
    for args in ((h, w, t), tuple(torch.tensor(a) for a in (h, w, t))):
        with pytest.raises(ValueError, match=r"^class_weight must have shape \(17,\)"):
            sk.linear_cross_entropy(*args, class_weight=np.ones(V + 1))
    with pytest.raises(ValueError, match=r"pass class_weight\.detach\(\)"):
        sk.linear_cross_entropy(*(torch.tensor(a) for a in (h, w, t)), class_weight=torch.ones(V, requires_grad=True))
    # torch.nn.functional.linear_cross_entropy's keyword names point to ours
    with pytest.raises(TypeError, match="linear_bias= is bias="):
        sk.linear_cross_entropy(h, w, t, linear_bias=b)
    with pytest.raises(ValueError, match="chunk_size"):
        sk.linear_cross_entropy(h, w, t, chunk_size=0)
    with pytest.raises(ValueError, match="target must have shape"):
        sk.linear_cross_entropy(h, w, t[:-1])


def test_chunk_rows_follows_the_memory_budget():
    assert chunk_rows(10**6, 32768, 4) == CHUNK_BYTES // (32768 * 4)
    assert chunk_rows(10**6, 32768, 4, budget=32 << 20) == 256
    assert chunk_rows(10**6, 131072, 4, budget=32 << 20) == 64
    assert chunk_rows(10, 32768, 4) == 10  # never more than N
    assert chunk_rows(10, 10**9, 4) == 1  # at least one row


# --------------------------------------------------------------------------- memory


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading, time
    import numpy as np
    backend, n, d, v = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import softmaxkit as sk

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    rng = np.random.default_rng(0)
    h = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((v, d), dtype=np.float32) * 0.1
    t = rng.integers(0, v, n)
    if backend == "numpy":
        def call(k):
            sk.linear_cross_entropy_and_grad(h[:k], w, t[:k])
    else:
        import torch
        dtype = torch.bfloat16 if backend == "torch-bf16" else torch.float32
        ht, wt = (torch.from_numpy(a).to(dtype).requires_grad_() for a in (h, w))
        tt = torch.from_numpy(t)
        def call(k):
            sk.linear_cross_entropy(ht[:k], wt, tt[:k]).backward()
            wt.grad = ht.grad = None
    # Warm up on a quarter of the rows (at least one full chunk): imports, JIT,
    # and the BLAS libraries' work buffers, whose pages are touched lazily.
    call(n // 4)
    # ru_maxrss would keep the JIT's transient peak; sample the current RSS instead.
    base, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    call(n)
    done.set()
    sampler.join()
    print(json.dumps({"peak": max(peak[0], rss()) - base}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.parametrize(
    "backend, v, d",
    [
        ("numpy", 32768, 16), ("torch", 32768, 16), ("numpy", 131072, 16), ("torch", 131072, 16),
        # bf16 with float32 GEMMs (this CPU: no AMX): token chunks would also
        # hold float32 copies of W and of its gradient, 2 x 32 MiB here.
        ("torch-bf16", 32768, 256),
        # bf16 with native bf16 GEMMs (AMX): 69-row token chunks would be thin,
        # so bf16 vocabulary tiles over all tokens (plan_native_low_tiles)
        ("torch-bf16", 131072, 256),
    ],
    ids=[
        "numpy-chunks", "torch-chunks", "numpy-tiles", "torch-tiles", "torch-bf16-upcast-tiles",
        "torch-bf16-native-tiles",
    ],
)
def test_no_n_by_v_allocation(backend, v, d):
    # (N, V) float32 logits would be 256 MiB (1 GiB); the budget is 52 MiB and the
    # outputs (grad_hidden, grad_weight) are 0.25 + 2 MiB (8 MiB; bf16: 1 + 16 MiB).
    n = 2048
    if backend == "torch-bf16":
        from softmaxkit.torch import _linear

        native = _linear._cpu_has_bf16_gemm()  # what the subprocess will detect
        if native != (v == 131072):
            pytest.skip(f"this CPU {'has' if native else 'lacks'} bf16 GEMMs: another bf16 plan runs")
        lp, *_ = _linear.prepare(
            torch.zeros(n, d, dtype=torch.bfloat16), torch.zeros(v, d, dtype=torch.bfloat16),
            None, torch.zeros(n, dtype=torch.int64), None, {},
        )
        assert lp.plan.vocab_tiles and lp.plan.rows == n
    else:
        assert plan_pass(n, v, 4).vocab_tiles == (v == 131072)
    dense = n * v * 4
    res = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, backend, str(n), str(d), str(v)],
        capture_output=True, text=True, timeout=600, check=True,
    )
    peak = json.loads(res.stdout.strip().splitlines()[-1])["peak"]
    outputs = (n * d + v * d) * (2 if backend == "torch-bf16" else 4)
    # A dense path needs >= 256 MiB more; the goal is <= 64 MiB beyond the outputs.
    assert peak - outputs <= dense / 4, f"peak extra memory {peak / 2**20:.1f} MiB"
