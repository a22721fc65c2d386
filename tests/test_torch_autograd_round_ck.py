"""Audit CK: derivatives that softmaxkit.torch dropped silently, or crashed on, outside the eager backward.

* the derivative w.r.t. a soft target was 0 wherever the target was 0, on every composite path
  (``create_graph=True``, ``torch.func``, forward-mode AD, ``torch.export``, ``torch.jit.trace``):
  the composite loss masked ``log_p`` wherever the target was 0, not only where ``log_p`` is ``-inf``;
* forward-mode derivatives w.r.t. a ``temperature`` tensor were 0 (``jvp``, ``jacfwd``, a dual
  tensor: its ``requires_grad`` is False, so it was read as a float), and ``vmap`` over temperatures
  raised; a class ``weight`` with a tangent got a tangent of 0 instead of reverse mode's ValueError;
* the class-parallel losses gave ``.grad = None`` to a soft target or class weight that requires
  grad, where the one-device losses raise;
* batched backwards (``jacobian(vectorize=True)``, ``is_grads_batched=True``) crashed in the
  Functions' backward (``float(grad_output)``, in-place and ``out=`` ops under vmap).

Every check compares with ``torch.nn.functional`` in float64 (the oracle), or runs
``gradcheck``/``gradgradcheck`` (finite differences) in float64.
"""

from __future__ import annotations

import math
import re

import pytest

torch = pytest.importorskip("torch")
import torch.autograd.forward_ad as fwAD  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.autograd.functional import hessian, jacobian  # noqa: E402
from torch.func import grad, jacfwd, jacrev, jvp, vmap  # noqa: E402

import softmaxkit.torch as skt  # noqa: E402
from softmaxkit.torch.distributed import (  # noqa: E402
    class_parallel_cross_entropy,
    class_parallel_linear_cross_entropy,
)

F64 = torch.float64
N, C = 3, 5
CLOSE = dict(rtol=1e-12, atol=1e-14)


def _logits(seed: int = 0) -> torch.Tensor:
    return torch.randn(N, C, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _soft_target() -> torch.Tensor:
    """Probabilities with zeros: a one-hot row, a row with two zeros, a dense row."""
    return torch.tensor(
        [[0.0, 1.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.2, 0.0, 0.3], [0.1, 0.2, 0.3, 0.25, 0.15]], dtype=F64
    )


def _weight() -> torch.Tensor:
    return torch.tensor([1.0, 2.0, 0.5, 1.5, 0.75], dtype=F64)


#: Label smoothing makes every smoothed target > 0: those cases passed before (no target of 0 is left).
SOFT_OPTIONS = {
    "plain": dict(),
    "smoothing": dict(label_smoothing=0.1),
    "weight": dict(weight="w"),
    "weight-sum": dict(weight="w", reduction="sum"),
    "weight-smoothing-sum": dict(weight="w", label_smoothing=0.2, reduction="sum"),
    "none": dict(reduction="none"),
}


def _opts(kw: dict) -> dict:
    return {k: (_weight() if v == "w" else v) for k, v in kw.items()}


def _total(loss: torch.Tensor) -> torch.Tensor:
    return loss.sum()  # "none": the sum of the rows, so every reduction has a gradient


def _torch_target_grad(x: torch.Tensor, t: torch.Tensor, **kw) -> torch.Tensor:
    u = t.clone().requires_grad_()
    (g,) = torch.autograd.grad(_total(F.cross_entropy(x, u, **kw)), u)
    return g


# --------------------------------------------------------------------------- 1. soft target: every composite path


def _create_graph(x, t, kw):
    u = t.clone().requires_grad_()
    (g,) = torch.autograd.grad(_total(skt.cross_entropy(x, u, **kw)), u, create_graph=True)
    return g


def _forward_ad(x, t, kw):
    """The full gradient from forward mode: one dual pass per target entry (basis tangents)."""
    cols = []
    for k in range(t.numel()):
        with fwAD.dual_level():
            tangent = torch.zeros(t.numel(), dtype=F64)
            tangent[k] = 1.0
            out = _total(skt.cross_entropy(x, fwAD.make_dual(t, tangent.view_as(t)), **kw))
            cols.append(fwAD.unpack_dual(out).tangent)
    return torch.stack(cols).view_as(t)


def _export(x, t, kw):
    class Loss(torch.nn.Module):
        def forward(self, a, b):
            return _total(skt.cross_entropy(a, b, **kw))

    u = t.clone().requires_grad_()
    torch.export.export(Loss(), (x, t)).module()(x, u).backward()
    return u.grad


def _jit_trace(x, t, kw):
    traced = torch.jit.trace(lambda a, b: _total(skt.cross_entropy(a, b, **kw)), (x, t), check_trace=False)
    u = t.clone().requires_grad_()
    traced(x, u).backward()
    return u.grad


TARGET_GRAD_PATHS = {
    "create_graph": _create_graph,
    "func.grad": lambda x, t, kw: grad(lambda u: _total(skt.cross_entropy(x, u, **kw)))(t),
    "jacrev": lambda x, t, kw: jacrev(lambda u: _total(skt.cross_entropy(x, u, **kw)))(t),
    "jacfwd": lambda x, t, kw: jacfwd(lambda u: _total(skt.cross_entropy(x, u, **kw)))(t),
    "forward_ad": _forward_ad,
}


@pytest.mark.parametrize("options", SOFT_OPTIONS.values(), ids=SOFT_OPTIONS.keys())
@pytest.mark.parametrize("path", list(TARGET_GRAD_PATHS))
def test_soft_target_gradient_on_composite_paths_matches_torch(path, options):
    """dL/dt = -(1 - eps) w log p on every class, also where the target is 0 (it was 0 there)."""
    x, t, kw = _logits(), _soft_target(), _opts(options)
    want = _torch_target_grad(x, t, **kw)
    got = TARGET_GRAD_PATHS[path](x, t, kw)
    torch.testing.assert_close(got, want, **CLOSE)


@pytest.mark.parametrize("path", ["export", "jit.trace"])
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_soft_target_gradient_of_an_exported_or_traced_loss_matches_torch(path):
    x, t, kw = _logits(), _soft_target(), _opts(dict(weight="w", reduction="sum"))
    got = (_export if path == "export" else _jit_trace)(x, t, kw)
    torch.testing.assert_close(got, _torch_target_grad(x, t, **kw), **CLOSE)


def test_per_sample_soft_target_gradients_under_vmap_match_torch():
    """vmap(grad) over rows: the per-row dL_i/dt_i, zeros of the target included."""
    x, t = _logits(), _soft_target()
    got = vmap(grad(lambda xi, ti: skt.cross_entropy(xi, ti), argnums=1))(x, t)
    want = torch.stack([_torch_target_grad(xi, ti) for xi, ti in zip(x, t)])
    torch.testing.assert_close(got, want, **CLOSE)


@pytest.mark.parametrize("options", SOFT_OPTIONS.values(), ids=SOFT_OPTIONS.keys())
def test_soft_target_gradcheck_with_zeros_forward_and_double(options):
    """Finite differences of the loss and of its gradient, reverse and forward mode, in (logits, target)."""
    x, t, kw = _logits().requires_grad_(), _soft_target().requires_grad_(), _opts(options)

    def loss(a, u):
        return skt.cross_entropy(a, u, **kw)

    assert torch.autograd.gradcheck(loss, (x, t), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(loss, (x, t))


def _masked_problem():
    """Logits with -inf on classes whose target is 0 (and one with a finite logit and target 0)."""
    x = _logits()
    x[0, 3] = x[1, 1] = x[1, 3] = -math.inf
    return x, _soft_target()


@pytest.mark.parametrize("options", [dict(), dict(weight="w")], ids=["plain", "weight"])
def test_masked_classes_target_gradient_is_finite_and_right_elsewhere(options):
    """A target of 0 on a -inf logit contributes 0 (no NaN) and its entry of dL/dt is 0; every
    other entry is -w log p, as torch's (which is NaN for the loss there)."""
    x, t = _masked_problem()
    kw = _opts(options)
    masked = torch.isinf(x)
    want = _torch_target_grad(x, t, **kw)  # +inf on the masked entries
    for path in ("create_graph", "func.grad", "jacfwd", "forward_ad"):
        got = TARGET_GRAD_PATHS[path](x, t, kw)
        assert not got.isnan().any(), path
        torch.testing.assert_close(got[~masked], want[~masked], **CLOSE)
        assert (got[masked] == 0).all(), (path, got)


@pytest.mark.parametrize("options", [dict(), dict(weight="w"), dict(label_smoothing=0.1), dict(reduction="none")],
                         ids=["plain", "weight", "smoothing", "none"])
def test_masked_classes_logit_gradient_gradcheck(options):
    """Guard (passed before): the logits' derivatives, first and second order and forward mode, stay
    finite and right with -inf logits under targets of 0 (the masking that keeps 0 * -inf out)."""
    x, t = _masked_problem()
    kw = _opts(options)
    x = x.requires_grad_()

    def loss(a):
        out = skt.cross_entropy(a, t, **kw)
        return torch.where(torch.isinf(out), torch.zeros_like(out), out)  # label smoothing: +inf rows

    assert torch.autograd.gradcheck(loss, (x,), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(loss, (x,))
    (g,) = torch.autograd.grad(_total(skt.cross_entropy(x, t, **kw)), x, create_graph=True)
    assert torch.isfinite(g).all()


# --------------------------------------------------------------------------- 2. temperature and weight in forward mode


SIZES = {"small": (4, 5), "cpu-kernel": (40, 32)}  # 1280 elements: the numba kernels' size


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_temperature_tangent_matches_torch(op, size):
    """jvp, jacfwd and a dual temperature give torch's d/dT (they gave 0)."""
    x = torch.randn(*SIZES[size], dtype=F64, generator=torch.Generator().manual_seed(1))
    T0, one = torch.tensor(1.7, dtype=F64), torch.tensor(1.0, dtype=F64)

    def ours(T):
        return getattr(skt, op)(x, dim=-1, temperature=T)

    def theirs(T):
        return getattr(torch, op)(x / T, -1)

    want = jvp(theirs, (T0,), (one,))[1]
    torch.testing.assert_close(jvp(ours, (T0,), (one,))[1], want, **CLOSE)
    torch.testing.assert_close(jacfwd(ours)(T0), jacfwd(theirs)(T0), **CLOSE)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(ours(fwAD.make_dual(T0, one))).tangent
    assert tangent is not None
    torch.testing.assert_close(tangent, want, **CLOSE)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_vmap_over_temperatures_matches_torch(op):
    """It raised vmap's "calling .item()" error; a temperature that is not > 0 gives NaN there (its
    value cannot be read to raise), as under torch.compile."""
    x = _logits()
    temps = torch.tensor([0.5, 1.0, 2.0, -1.0], dtype=F64)
    got = vmap(lambda T: getattr(skt, op)(x, dim=-1, temperature=T))(temps)
    want = torch.stack([getattr(torch, op)(x / T, -1) for T in temps[:3]])
    torch.testing.assert_close(got[:3], want, **CLOSE)
    assert got[3].isnan().all()


def test_bad_dual_temperature_still_raises():
    """Guard (passed before): a dual temperature's value is read and checked."""
    with fwAD.dual_level():
        bad = fwAD.make_dual(torch.tensor(-1.0, dtype=F64), torch.tensor(1.0, dtype=F64))
        with pytest.raises(ValueError, match="temperature"):
            skt.softmax(_logits(), dim=-1, temperature=bad)


def _weight_tangents():
    x, y, p, w = _logits(), torch.tensor([0, 2, 4]), _soft_target(), _weight()
    dw = torch.ones(C, dtype=F64)

    def dual(target):
        with fwAD.dual_level():
            skt.cross_entropy(x, target, weight=fwAD.make_dual(w, dw))

    return {
        f"{kind}-{how}": call
        for kind, target in (("hard", y), ("soft", p))
        for how, call in (
            ("jvp", lambda target=target: jvp(lambda v: skt.cross_entropy(x, target, weight=v), (w,), (dw,))),
            ("jacfwd", lambda target=target: jacfwd(lambda v: skt.cross_entropy(x, target, weight=v))(w)),
            ("dual", lambda target=target: dual(target)),
        )
    }


@pytest.mark.parametrize("case", list(_weight_tangents()))
def test_class_weight_with_a_tangent_is_refused_as_in_reverse_mode(case):
    """Its tangent was silently dropped (the loss's tangent 0); reverse mode raises this ValueError."""
    with pytest.raises(ValueError, match=r"class weights are not differentiated: pass weight\.detach\(\)"):
        _weight_tangents()[case]()


def test_constant_weights_under_forward_mode_and_vmap_still_work():
    """Guard (passed before): a constant weight under jvp w.r.t. the logits, one made inside the
    transformed function, and vmap over a batch of weights are not differentiated, so not refused."""
    x, y, w = _logits(), torch.tensor([0, 2, 4]), _weight()
    dx = torch.randn(N, C, dtype=F64, generator=torch.Generator().manual_seed(5))
    got = jvp(lambda a: skt.cross_entropy(a, y, weight=w), (x,), (dx,))[1]
    want = jvp(lambda a: F.cross_entropy(a, y, weight=w), (x,), (dx,))[1]
    torch.testing.assert_close(got, want, **CLOSE)
    made_inside = jvp(lambda a: skt.cross_entropy(a, y, weight=torch.tensor(w.tolist(), dtype=F64)), (x,), (dx,))[1]
    torch.testing.assert_close(made_inside, want, **CLOSE)
    weights = torch.stack([w, w.flip(0), torch.ones(C, dtype=F64)])
    got = vmap(lambda v: skt.cross_entropy(x, y, weight=v))(weights)
    torch.testing.assert_close(got, torch.stack([F.cross_entropy(x, y, weight=v) for v in weights]), **CLOSE)


# --------------------------------------------------------------------------- 3. class-parallel losses


def _cp_inputs():
    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(N, 4, dtype=F64, generator=g)
    head = torch.randn(C, 4, dtype=F64, generator=g)
    return _logits(), _soft_target(), hidden, head


TARGET_REFUSED = r"is not differentiable with respect to target; pass target\.detach\(\)"
WEIGHT_REFUSED = r"class weights are not differentiated: pass weight\.detach\(\)"


def _cp_calls():
    """(name, call, message) of the class-parallel calls that must refuse a differentiated input."""
    x, p, h, W = _cp_inputs()
    y = torch.tensor([0, 2, 4])
    learn_p, learn_w = p.clone().requires_grad_(), _weight().requires_grad_()
    return [
        ("ce-target", lambda: class_parallel_cross_entropy(x, learn_p),
         "class_parallel_cross_entropy " + TARGET_REFUSED),
        ("ce-weight", lambda: class_parallel_cross_entropy(x, y, weight=learn_w), WEIGHT_REFUSED),
        ("ce-soft-weight", lambda: class_parallel_cross_entropy(x, p, weight=learn_w), WEIGHT_REFUSED),
        ("linear-target", lambda: class_parallel_linear_cross_entropy(h, W, learn_p),
         "class_parallel_linear_cross_entropy " + TARGET_REFUSED),
        ("linear-weight", lambda: class_parallel_linear_cross_entropy(h, W, y, weight=learn_w), WEIGHT_REFUSED),
    ]


@pytest.mark.parametrize("index", range(len(_cp_calls())), ids=[c[0] for c in _cp_calls()])
def test_class_parallel_refuses_a_differentiated_target_or_weight_without_a_group(index):
    """As the one-device losses; ``.grad`` stayed None with no error."""
    _, call, message = _cp_calls()[index]
    with pytest.raises(ValueError, match=message):
        call()


def test_class_parallel_target_and_weight_that_require_grad_pass_under_no_grad():
    """Guard: no gradient is asked for under no_grad, so nothing to refuse; the loss is the one-device loss."""
    x, p, _, _ = _cp_inputs()
    w = _weight().requires_grad_()
    with torch.no_grad():
        got = class_parallel_cross_entropy(x, p.clone().requires_grad_(), weight=w)
        want = skt.cross_entropy(x, p, weight=w.detach())
    torch.testing.assert_close(got, want, **CLOSE)


@pytest.fixture
def one_rank_group():
    dist = pytest.importorskip("torch.distributed")
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is unavailable")
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)  # in process: no port
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_class_parallel_refuses_them_on_a_one_rank_group_and_the_group_stays_usable(one_rank_group):
    """Raised after joining the first collective (as the other local errors), so the next call pairs up."""
    for name, call, message in _cp_calls():
        with pytest.raises(ValueError, match=message):
            call()
        x, p, _, _ = _cp_inputs()
        torch.testing.assert_close(class_parallel_cross_entropy(x, p), skt.cross_entropy(x, p), **CLOSE)


# Two gloo ranks, only rank 0's input requires grad: rank 0 raises the refusal, rank 1 the header's
# ValueError naming rank 0, and neither waits in a collective (the scheme of test_distributed.py).
WORLD, WIDTHS = 2, (2, 3)


def _two_rank_case(kind: str):
    def run(rank: int):
        x, p, h, W = _cp_inputs()
        cols = slice(sum(WIDTHS[:rank]), sum(WIDTHS[: rank + 1]))
        target, weight = p[:, cols].clone(), None
        if kind == "target" and rank == 0:
            target.requires_grad_()
        if kind == "weight":
            weight = _weight()[cols].clone().requires_grad_(rank == 0)
        loss = class_parallel_cross_entropy(x[:, cols].clone().requires_grad_(), target, weight=weight)
        return loss, {}

    return run


CASES = {"target": _two_rank_case("target"), "weight": _two_rank_case("weight")}


@pytest.fixture(scope="module")
def two_rank_records(tmp_path_factory):
    from test_distributed import recorded_cases

    return recorded_cases("test_torch_autograd_round_ck", tmp_path_factory.mktemp("round_ck"), world=WORLD,
                          gloo_timeout_s=15, deadline_s=120)


@pytest.mark.parametrize("kind", list(CASES))
def test_class_parallel_refusal_on_one_rank_raises_on_every_rank(two_rank_records, kind):
    rank0, rank1 = (r.get(kind, {"raised": "no record"}) for r in two_rank_records)
    assert rank0.get("raised") == "ValueError", rank0
    assert re.search(TARGET_REFUSED if kind == "target" else WEIGHT_REFUSED, rank0["message"]), rank0
    assert rank1.get("raised") == "ValueError", rank1
    assert "rank(s) [0] failed the checks of their own inputs" in rank1["message"], rank1


# --------------------------------------------------------------------------- 4. batched backwards


def _vectorized_jacobians_agree(ours, theirs, inputs):
    got = jacobian(ours, inputs, vectorize=True)
    want = jacobian(theirs, inputs, vectorize=True)
    torch.testing.assert_close(got, want, **CLOSE)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_cross_entropy_vectorized_jacobian_matches_torch(reduction, soft):
    """It raised "Batching rule not implemented for aten::item" (mean/sum) or vmap's in-place mul_ error (none)."""
    x = _logits()
    if soft:  # in the logits and the target, zeros of the target included
        _vectorized_jacobians_agree(lambda a, u: skt.cross_entropy(a, u, reduction=reduction, label_smoothing=0.1),
                                    lambda a, u: F.cross_entropy(a, u, reduction=reduction, label_smoothing=0.1),
                                    (x, _soft_target()))
    else:
        y = torch.tensor([0, 2, 4])
        _vectorized_jacobians_agree(lambda a: skt.cross_entropy(a, y, reduction=reduction, weight=_weight()),
                                    lambda a: F.cross_entropy(a, y, reduction=reduction, weight=_weight()), x)


def test_cross_entropy_is_grads_batched_matches_torch():
    x, y = _logits().requires_grad_(), torch.tensor([0, 2, 4])
    eye = torch.eye(N, dtype=F64)
    (got,) = torch.autograd.grad(skt.cross_entropy(x, y, reduction="none"), x, eye, is_grads_batched=True)
    (want,) = torch.autograd.grad(F.cross_entropy(x, y, reduction="none"), x, eye, is_grads_batched=True)
    torch.testing.assert_close(got, want, **CLOSE)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_vectorized_jacobian_on_the_cpu_kernels_matches_torch(op):
    """log_softmax raised "Batching rule not implemented for aten::addcmul.out" (the kernels' backward)."""
    x = torch.randn(*SIZES["cpu-kernel"], dtype=F64, generator=torch.Generator().manual_seed(4))
    got = jacobian(lambda a: getattr(skt, op)(a, dim=-1)[:2], x, vectorize=True)
    want = jacobian(lambda a: getattr(torch, op)(a, -1)[:2], x, vectorize=True)
    torch.testing.assert_close(got, want, **CLOSE)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_linear_cross_entropy_vectorized_jacobian_matches_torch(reduction):
    """It raised on aten::item (mean) and aten::detach (none, which recomputes with the upstream)."""
    _, _, h, W = _cp_inputs()
    b, y = torch.linspace(-1, 1, C, dtype=F64), torch.tensor([0, 2, 4])
    _vectorized_jacobians_agree(lambda a, v, c: skt.linear_cross_entropy(a, v, y, bias=c, reduction=reduction),
                                lambda a, v, c: F.cross_entropy(a @ v.T + c, y, reduction=reduction), (h, W, b))


def test_vectorized_hessian_matches_torch():
    """Guard (passed before): the double backward under vmap."""
    x, y = _logits(), torch.tensor([0, 2, 4])
    got = hessian(lambda a: skt.cross_entropy(a, y, label_smoothing=0.1), x, vectorize=True)
    want = hessian(lambda a: F.cross_entropy(a, y, label_smoothing=0.1), x, vectorize=True)
    torch.testing.assert_close(got, want, **CLOSE)
