"""PyTorch's own cross-entropy / softmax test cases, run against softmaxkit.torch.

The cases follow torch's test suite (2.13): the OpInfo sample inputs of
``nn.functional.cross_entropy``, ``softmax``, ``log_softmax`` (with and
without ``dtype=``) and ``logsumexp`` in
``torch/testing/_internal/common_methods_invocations.py``, the
``CrossEntropyLoss`` module inputs in ``common_modules.py``, and the
cross-entropy checks of ``test/test_nn.py`` (class weights from ``randn``,
soft targets with weights and smoothing, unbatched input, empty inputs,
``ignore_index`` with probabilities raising). torch's generators cannot be
imported here (``torch.testing._internal`` needs ``expecttest``, a torch dev
dependency), so the case tables are restated; inputs come from the public
``torch.testing.make_tensor`` with its default ranges, as torch's do.

Reference: ``torch.nn.functional`` itself; tolerances: ``torch.testing.assert_close``
defaults for the dtype (what the OpInfo tests use). Values and gradients
(with a random upstream gradient) are compared; ``gradgradcheck`` runs on the
OpInfo CE samples as torch's ``test_fn_gradgrad`` does.

The deliberate differences (README, "Differences from torch") are not
sampled by these cases, except where a test says so and checks our value.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.testing import make_tensor

import softmaxkit.torch as skt

S, M = 5, 10  # torch's OpInfo sizes


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=["reference", "numba"])
def cpu_kernel(request, monkeypatch):
    """Both CPU kernels: the NumPy reference (small inputs) and numba (forced for any size)."""
    from softmaxkit import kernels

    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if request.param == "numba" else 1 << 62)
    return request.param


def _check(ours_fn, ref_fn, inputs, *, grad_wrt=None, atol=None, rtol=None):
    """Value and gradient (random upstream) of ``ours_fn`` vs ``ref_fn`` on ``inputs``."""
    grad_wrt = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad] if grad_wrt is None else grad_wrt
    ours, ref = ours_fn(*inputs), ref_fn(*inputs)
    kw = {} if atol is None else dict(atol=atol, rtol=rtol)
    torch.testing.assert_close(ours, ref, **kw)
    if grad_wrt and ref.numel():
        up = torch.randn_like(ref)
        g_ours = torch.autograd.grad(ours, grad_wrt, up, allow_unused=True)
        g_ref = torch.autograd.grad(ref, grad_wrt, up, allow_unused=True)
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b, **kw)


# --------------------------------------------------------------------------- OpInfo: nn.functional.cross_entropy

_CE_SHAPE = (2, 3)
_CE_CASES = [
    (_CE_SHAPE, {}),
    ((*_CE_SHAPE, 1), {}),
    ((*_CE_SHAPE, 1, 2), {}),
    ((*_CE_SHAPE, 1, 2, 3), {}),
    *[(_CE_SHAPE, dict(reduction=r)) for r in ("mean", "sum", "none")],
    *[(_CE_SHAPE, dict(weight="randn", reduction=r)) for r in ("mean", "sum", "none")],
    (_CE_SHAPE, dict(ignore_index=1)),
]


def _ce_sample(shape, kwargs, probabilities, dtype=torch.float64):
    x = make_tensor(shape, dtype=dtype, device="cpu", requires_grad=True)
    kwargs = dict(kwargs)
    if kwargs.get("weight") == "randn":
        kwargs["weight"] = make_tensor((shape[1],), dtype=dtype, device="cpu")  # in [-9, 9]: negative weights
    if probabilities:
        t = make_tensor(shape, dtype=dtype, device="cpu", low=0, high=1, requires_grad=True)  # not normalised
    else:
        t = make_tensor((shape[0], *shape[2:]), dtype=torch.long, device="cpu", low=0, high=shape[1])
        if "ignore_index" in kwargs and bool((t == kwargs["ignore_index"]).all()):
            t.view(-1)[0] = (kwargs["ignore_index"] + 1) % shape[1]  # torch keeps one row active too
    return x, t, kwargs


def _ce_ours(kwargs):
    return lambda x, t: skt.cross_entropy(x, t, axis=1, **kwargs)


def _ce_ref(kwargs):
    return lambda x, t: F.cross_entropy(x, t, **kwargs)


@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
@pytest.mark.parametrize(
    "shape,kwargs", _CE_CASES, ids=[f"{s}-{sorted(k)}-{k.get('reduction', '')}" for s, k in _CE_CASES]
)
def test_opinfo_cross_entropy(cpu_kernel, shape, kwargs, probabilities):
    if probabilities and "ignore_index" in kwargs:
        x, t, kw = _ce_sample(shape, kwargs, True)
        with pytest.raises(RuntimeError, match="ignore_index is not supported"):
            F.cross_entropy(x, t, **kw)
        with pytest.raises(ValueError, match="ignore_index=1 is not supported with probability"):
            skt.cross_entropy(x, t, axis=1, **kw)
        return
    x, t, kw = _ce_sample(shape, kwargs, probabilities)
    _check(_ce_ours(kw), _ce_ref(kw), (x, t))


@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
@pytest.mark.parametrize("shape,kwargs", _CE_CASES[::2], ids=[f"{s}-{sorted(k)}" for s, k in _CE_CASES[::2]])
def test_opinfo_cross_entropy_gradgrad(shape, kwargs, probabilities):
    """torch's test_fn_gradgrad: second derivatives by finite differences (float64)."""
    if probabilities and "ignore_index" in kwargs:
        return  # refused above
    x, t, kw = _ce_sample(shape, kwargs, probabilities)
    inputs = (x, t) if probabilities else (x,)  # probabilities are differentiated too
    assert torch.autograd.gradgradcheck(lambda x, t=t: skt.cross_entropy(x, t, axis=1, **kw), inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape,kwargs", _CE_CASES[:5] + _CE_CASES[7:], ids=lambda v: str(v))
def test_opinfo_cross_entropy_low_precision(shape, kwargs, dtype):
    """Other dtypes of the same samples. The reference is torch in float64 on the
    same (rounded) inputs; our error, value and gradient, must be no worse than
    torch's own in ``dtype``, plus one unit in the last place (DESIGN: a
    low-precision path is no worse than torch)."""
    x, t, kw = _ce_sample(shape, kwargs, False, dtype=dtype)
    if "weight" in kw:  # weights near 0 make the mean's denominator cancel: compare on a safe set
        kw["weight"] = kw["weight"].abs() + 1
    x64 = x.detach().double().requires_grad_()
    kw64 = {k: (v.double() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    oracle = F.cross_entropy(x64, t, **kw64)
    up = torch.randn_like(oracle)
    (g_oracle,) = torch.autograd.grad(oracle, x64, up)
    ulp = torch.finfo(dtype).eps
    for name in ("value", "grad"):
        ours_v, ref_v = skt.cross_entropy(x, t, axis=1, **kw), F.cross_entropy(x, t, **kw)
        if name == "value":
            ours_e, ref_e, scale = (ours_v.double() - oracle).abs(), (ref_v.double() - oracle).abs(), oracle.abs()
        else:
            (g_o,) = torch.autograd.grad(ours_v, x, up.to(dtype))
            (g_r,) = torch.autograd.grad(ref_v, x, up.to(dtype))
            ours_e, ref_e, scale = (g_o.double() - g_oracle).abs(), (g_r.double() - g_oracle).abs(), g_oracle.abs()
        # worst error over the tensor, relative to its largest entry (tiny entries have no own ulp to meet)
        assert ours_e.max() <= ref_e.max() + ulp * scale.max(), (name, ours_e.max(), ref_e.max())


# --------------------------------------------------------------------------- OpInfo: softmax, log_softmax, logsumexp

_SOFTMAX_CASES = [((S,), 0), ((S, S), 0), ((S, S), 1), ((S, S), -1), ((S, M, S), 2), ((S, 0, 0), -1), ((), 0)]


@pytest.mark.parametrize("with_dtype", [False, True], ids=["", "dtype=float64"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", _SOFTMAX_CASES, ids=[f"{s}-{d}" for s, d in _SOFTMAX_CASES])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opinfo_softmax_variants(shape, dim, log, with_dtype, dtype):
    x = make_tensor(shape, dtype=dtype, device="cpu", requires_grad=True)
    kw = dict(dtype=torch.float64) if with_dtype else {}
    ours = (lambda x: skt.log_softmax(x, dim, **kw)) if log else (lambda x: skt.softmax(x, dim, **kw))
    ref = (lambda x: F.log_softmax(x, dim, **kw)) if log else (lambda x: F.softmax(x, dim, **kw))
    _check(ours, ref, (x,))
    assert ours(x).dtype == ref(x).dtype
    if dtype == torch.float64 and x.numel():
        assert torch.autograd.gradgradcheck(ours, (x,))


_LOGSUMEXP_CASES = [((), 0, True), ((S, S), 1, True), ((S, S), 1, False), ((S, S), -2, False)]


@pytest.mark.parametrize("low", [None, 1e3, 1e6], ids=["default", "1e3", "1e6"])
@pytest.mark.parametrize("shape,dim,keepdim", _LOGSUMEXP_CASES, ids=[str(c) for c in _LOGSUMEXP_CASES])
def test_opinfo_logsumexp(shape, dim, keepdim, low):
    high = None if low is None else 2 * low
    x = make_tensor(shape, dtype=torch.float64, device="cpu", low=low, high=high, requires_grad=True)
    _check(lambda x: skt.logsumexp(x, dim, keepdims=keepdim), lambda x: torch.logsumexp(x, dim, keepdim), (x,))


def test_reference_logsumexp_cases():
    # torch's reference_inputs_logsumexp: issue 91843's values, and an empty vector (-inf)
    x = torch.tensor([20.0, 30.0, 100.0], dtype=torch.float64, requires_grad=True)
    _check(lambda x: skt.logsumexp(x, 0), lambda x: torch.logsumexp(x, 0), (x,))
    torch.testing.assert_close(skt.logsumexp(torch.tensor(()), 0), torch.logsumexp(torch.tensor(()), 0))


# --------------------------------------------------------------------------- common_modules: CrossEntropyLoss

_MODULE_CASES = [
    ("", {}),
    ("weights", {"weight": "make"}),
    ("ignore_index", {"ignore_index": 1}),
    ("label_smoothing", {"label_smoothing": 0.15}),
    ("ignore_index_label_smoothing", {"ignore_index": 1, "label_smoothing": 0.15}),
]
_MODULE_SHAPES = {
    "4d": ((2, 3, 5, 5), (2, 5, 5)),
    "3d": ((2, 3, 5), (2, 5)),
    "2d": ((2, 3), (2,)),
    "higher_dim": ((2, 3, 5, 5, 2, 2), (2, 5, 5, 2, 2)),
}
_PROB_SHAPES = {"4d_prob_target": (5, 3, 4, 2), "3d_prob_target": (5, 3, 4), "2d_prob_target": (5, 3)}


def _module_kwargs(case_kwargs):
    kw = dict(case_kwargs)
    if kw.get("weight") == "make":
        kw["weight"] = make_tensor((3,), dtype=torch.float64, device="cpu")
    return kw


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("desc,case_kwargs", _MODULE_CASES, ids=[d or "plain" for d, _ in _MODULE_CASES])
@pytest.mark.parametrize("layout", [*_MODULE_SHAPES, *_PROB_SHAPES])
def test_module_cross_entropy_loss(layout, desc, case_kwargs, reduction):
    kw = _module_kwargs(case_kwargs)
    if layout in _PROB_SHAPES:
        if "ignore_index" in kw:
            return  # torch's module_inputs skip these (torch raises; see test_opinfo_cross_entropy)
        shape = _PROB_SHAPES[layout]
        x = make_tensor(shape, dtype=torch.float64, device="cpu", requires_grad=True)
        t = make_tensor(shape, dtype=torch.float64, device="cpu").softmax(dim=1)
    else:
        x_shape, t_shape = _MODULE_SHAPES[layout]
        x = make_tensor(x_shape, dtype=torch.float64, device="cpu", requires_grad=True)
        t = make_tensor(t_shape, dtype=torch.long, device="cpu", low=0, high=3)
        if "ignore_index" in kw and reduction == "mean" and bool((t == 1).all()):
            t.view(-1)[0] = 0  # all ignored is a documented difference (0, not NaN)
    ours = skt.CrossEntropyLoss(axis=1, reduction=reduction, **kw)
    ref = torch.nn.CrossEntropyLoss(reduction=reduction, **kw)
    _check(lambda x, t: ours(x, t), lambda x, t: ref(x, t), (x, t))


# --------------------------------------------------------------------------- test_nn.py cross-entropy checks


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_nn_prob_target_with_weights_and_smoothing(reduction, smoothing):
    # test_cross_entropy_loss_prob_target_all_reductions / ..._label_smoothing_with_weight
    n, c = 5, 4
    x = torch.randn(n, c, dtype=torch.float64, requires_grad=True)
    t = torch.randn(n, c, dtype=torch.float64).softmax(dim=1)
    w = torch.randn(c, dtype=torch.float64).abs()
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    _check(lambda x, t: skt.cross_entropy(x, t, **kw), lambda x, t: F.cross_entropy(x, t, **kw), (x, t))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.05, 0.5])
def test_nn_class_index_label_smoothing_with_weights_and_ignore_index(reduction, smoothing):
    # test_cross_entropy_label_smoothing_weight_ignore_indices, over randn weights
    n, c = 7, 5
    x = torch.randn(n, c, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, c, (n, 3))
    t[0, 0] = t[3, 2] = 2
    w = torch.randn(c, dtype=torch.float64)
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing, ignore_index=2)
    _check(lambda x: skt.cross_entropy(x, t, axis=1, **kw), lambda x: F.cross_entropy(x, t, **kw), (x,))


def test_nn_unbatched_input():
    # test_cross_entropy_loss (unbatched): logits (C,), a 0-dim index or a (C,) probability target
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    _check(lambda x: skt.cross_entropy(x, torch.tensor(2)), lambda x: F.cross_entropy(x, torch.tensor(2)), (x,))
    p = torch.rand(4, dtype=torch.float64)
    _check(lambda x: skt.cross_entropy(x, p), lambda x: F.cross_entropy(x, p), (x,))


def test_nn_non_normalised_and_negative_soft_targets():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    for kw in (dict(), dict(label_smoothing=0.2), dict(reduction="none", weight=torch.randn(5, dtype=torch.float64))):
        _check(lambda x, t: skt.cross_entropy(x, t, **kw), lambda x, t: F.cross_entropy(x, t, **kw), (x, t))


def test_nn_empty_batches():
    # test_cross_entropy_loss_zero_div / empty inputs: "sum" and "none" match; the "mean" of
    # nothing is 0 here and NaN in torch (a documented difference)
    x = torch.zeros(0, 3, requires_grad=True)
    t = torch.zeros(0, dtype=torch.long)
    for reduction in ("sum", "none"):
        _check(
            lambda x: skt.cross_entropy(x, t, reduction=reduction),
            lambda x: F.cross_entropy(x, t, reduction=reduction),
            (x,),
        )
    assert torch.isnan(F.cross_entropy(x, t)) and skt.cross_entropy(x, t).item() == 0.0


def test_nn_softmax_empty_dims():
    # the crashes: both returned IndexError before
    for shape, dim in [((5, 0, 0), -1), ((0, 10), 0), ((0, 10), 1), ((3, 0), 0)]:
        x = torch.randn(shape, requires_grad=True)
        for ours, ref in ((skt.softmax, F.softmax), (skt.log_softmax, F.log_softmax)):
            res = ours(x, dim)
            assert res.shape == ref(x, dim).shape
            res.sum().backward()  # differentiable, like torch's


def test_nn_out_resizes_like_torch():
    x = torch.randn(3, 4)
    ours, ref = torch.empty(0), torch.empty(0)
    skt.log_softmax(x, 1, out=ours)
    torch.log_softmax(x, 1, out=ref)
    torch.testing.assert_close(ours, ref)
    with pytest.raises(TypeError, match="dtype"):
        skt.softmax(x, 1, out=torch.empty(3, 4, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_option_combination_against_torch(cpu_kernel, dtype):
    """A wide sweep of the option space torch defines, value and gradient, both CPU kernels."""
    n, c = 6, 4
    x = torch.randn(n, c, dtype=dtype, requires_grad=True)
    hard = torch.tensor([0, 1, 2, 3, 1, 2])
    soft = torch.randn(n, c, dtype=dtype)  # negative and not normalised, as torch allows
    weights = [None, torch.rand(c, dtype=dtype) + 0.1, torch.randn(c, dtype=dtype)]
    for w, eps, reduction, target, ignore in itertools.product(
        weights, (0.0, 0.1, 1.0), ("mean", "sum", "none"), (hard, soft), (-100, 1)
    ):
        if target is soft and ignore >= 0:
            continue
        kw = dict(weight=w, label_smoothing=eps, reduction=reduction, ignore_index=ignore)
        _check(lambda x: skt.cross_entropy(x, target, **kw), lambda x: F.cross_entropy(x, target, **kw), (x,))


def test_class_weight_requiring_grad_is_refused():
    """torch refuses a differentiable weight for class indices; we refuse it for every target kind
    (documented) rather than return no gradient for it."""
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.rand(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        F.cross_entropy(x, torch.tensor([0, 1, 2]), weight=w)
    for target in (torch.tensor([0, 1, 2]), torch.rand(3, 4)):
        with pytest.raises(ValueError, match=r"class weights are not differentiated: pass weight.detach\(\)"):
            skt.cross_entropy(x, target, weight=w)
    skt.cross_entropy(x, torch.tensor([0, 1, 2]), weight=w.detach())


# --------------------------------------------------------------------------- more test_nn.py checks


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nn_one_hot_probabilities_equal_class_indices(reduction, weighted):
    # test_cross_entropy_loss_one_hot_target: same loss and gradient from indices and their one-hot rows
    n, c = 5, 4
    x = torch.randn(n, c, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, c, (n, 3))
    onehot = F.one_hot(y, c).movedim(-1, 1).to(torch.float64)
    w = torch.rand(c, dtype=torch.float64) + 0.2 if weighted else None
    _check(
        lambda x: skt.cross_entropy(x, y, axis=1, weight=w, reduction=reduction),
        lambda x: skt.cross_entropy(x, onehot, axis=1, weight=w, reduction=reduction),
        (x,),
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.05, 0.15, 0.5])
def test_nn_label_smoothing_consistent_index_target_and_probs(reduction, smoothing):
    # test_cross_entropy_label_smoothing_consistent_index_target_and_probs
    n, c = 6, 5
    x = torch.randn(n, c, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, c, (n,))
    probs = F.one_hot(y, c).to(torch.float64) * (1 - smoothing) + smoothing / c
    _check(
        lambda x: skt.cross_entropy(x, y, label_smoothing=smoothing, reduction=reduction),
        lambda x: F.cross_entropy(x, probs, reduction=reduction),
        (x,),
    )


def test_nn_out_of_bounds_class_index_raises():
    # test_cross_entropy_loss_2d_out_of_bounds_class_index: torch raises; we name the value and position
    x = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 4, 4))
    y[1, 2, 3] = 5
    with pytest.raises((IndexError, RuntimeError)):
        F.cross_entropy(x, y)
    with pytest.raises(ValueError, match=r"class index 5 at position \(1, 2, 3\)"):
        skt.cross_entropy(x, y, axis=1)


def test_nn_precision_of_large_logits():
    # test_cross_entropy_loss_precision: float32 input with large spread, against float64
    x = torch.randn(128, 2, 768, 768 // 64, dtype=torch.float32) * 30
    y = torch.randint(0, 2, (128, 768, 768 // 64))
    ours = skt.cross_entropy(x, y, axis=1)
    ref = F.cross_entropy(x.double(), y)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1])
def test_nn_softmax_non_contiguous_any_dim(dim):
    # test_softmax_results / test_log_softmax_dim3: transposed (non-contiguous) input, every dim
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64).transpose(1, 3).requires_grad_()
    for ours, ref in ((skt.softmax, F.softmax), (skt.log_softmax, F.log_softmax)):
        _check(lambda x: ours(x, dim), lambda x: ref(x, dim), (x,))
    _check(lambda x: skt.logsumexp(x, dim), lambda x: torch.logsumexp(x, dim), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_nn_softmax_half_results(dtype):
    # test_softmax_results (half): against the float32 result, rounded once
    x = torch.randn(16, 33) * 4
    for ours, ref in ((skt.softmax, F.softmax), (skt.log_softmax, F.log_softmax)):
        want = ref(x.to(dtype).float(), 1)
        got = ours(x.to(dtype), 1)
        assert got.dtype == dtype
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(got.float(), want.to(dtype).float(), atol=eps, rtol=eps)


def test_nn_k_dimensional_weighted_ignore_index():
    # test_cross_entropy_loss (K-dim) with weights and ignore_index over a 5-D input
    x = torch.randn(2, 4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (2, 3, 2, 2))
    y[0, 1] = -1
    w = torch.randn(4, dtype=torch.float64).abs() + 0.1
    for reduction in ("mean", "sum", "none"):
        kw = dict(weight=w, ignore_index=-1, reduction=reduction, label_smoothing=0.1)
        _check(lambda x: skt.cross_entropy(x, y, axis=1, **kw), lambda x: F.cross_entropy(x, y, **kw), (x,))


# --------------------------------------------------------------------------- dtypes torch's result takes


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_loss_under_autocast_is_float32_as_torchs(half):
    """cross_entropy and BCE are on autocast's float32 list: torch returns a float32 loss from 16-bit
    logits. Before, softmaxkit rounded it to 16 bits (27.25 for torch's 27.2357 in bfloat16)."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(64, 32, generator=g), torch.randn(100, 32, generator=g) * 3
    y = torch.randint(0, 100, (64,), generator=g)
    yb = torch.rand(64, 100, generator=g).round()
    cases = [(skt.cross_entropy, F.cross_entropy, y), (skt.binary_cross_entropy_with_logits,
                                                       F.binary_cross_entropy_with_logits, yb)]
    for ours, theirs, target in cases:
        grads = []
        for fn in (ours, theirs):
            leaf = x.clone().requires_grad_()
            with torch.autocast("cpu", dtype=half):
                logits = leaf @ w.T
                assert logits.dtype == half
                loss = fn(logits, target)
            assert loss.dtype == torch.float32, fn
            loss.backward()
            grads.append((loss.detach(), leaf.grad))
        torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grads[0][1], grads[1][1])
    # outside autocast, 16-bit logits keep their dtype, as torch's do
    assert skt.cross_entropy(torch.randn(4, 3, dtype=half), torch.tensor([0, 1, 2, 0])).dtype == half


def test_probability_targets_of_a_wider_dtype_promote_the_loss_as_torch():
    """float32 logits with float64 probabilities: torch returns float64 (before: float32). We also compute
    in float64 and equal the float64 oracle; torch's value comes from a float32 log-softmax."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50, 7, generator=g, requires_grad=True)
    t = torch.softmax(torch.randn(50, 7, generator=g, dtype=torch.float64), -1)
    ours, theirs = skt.cross_entropy(z, t), F.cross_entropy(z, t)
    assert ours.dtype == theirs.dtype == torch.float64
    torch.testing.assert_close(ours, F.cross_entropy(z.double(), t), rtol=1e-13, atol=0)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)
    (gz,) = torch.autograd.grad(ours, z)
    (rz,) = torch.autograd.grad(theirs, z)
    assert gz.dtype == torch.float32
    torch.testing.assert_close(gz, rz)


@pytest.mark.parametrize("shape, axis", [((3, 0), 1), ((0,), 0), ((2, 0, 4), 1)])
def test_logsumexp_over_an_empty_axis_stays_on_the_graph(shape, axis):
    """torch's reference_inputs_logsumexp: -inf with a zero gradient. Before, the result had no grad_fn,
    so x.grad stayed None inside a larger loss."""
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    ours, theirs = skt.logsumexp(x, axis), torch.logsumexp(x, axis)
    torch.testing.assert_close(ours, theirs)
    assert ours.requires_grad
    (ours.sum() + x.sum()).backward()
    torch.testing.assert_close(x.grad, torch.ones(shape, dtype=torch.float64))
