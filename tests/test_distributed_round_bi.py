"""Audit BI: the class-parallel losses beside the one-device ones.

* ``torch.func`` transforms (``grad``, ``vmap``, ``jvp``) and forward-mode AD
  raised torch's internal "must override the setup_context staticmethod"
  error from both class-parallel losses, where the one-device losses run as
  composite ops; they now raise a softmaxkit error that says what to use;
* ``class_parallel_linear_cross_entropy`` refused ``(B, T, D)`` hidden
  ("hidden must be 2-D") where ``linear_cross_entropy`` and
  ``class_parallel_cross_entropy`` take leading dimensions; checked on a real
  2-rank gloo group against a dense float64 oracle, loss and gradients;
* ``linear_cross_entropy(input=h, linear_weight=W, target=y)``, torch 2.13's
  spelling, got Python's "missing 1 required positional argument: 'weight'"
  where ``linear_bias=`` gets advice naming both spellings.

The gloo cases run in one group of 2 CPU processes (the scheme and helpers of
``test_distributed.py``): each rank records what it returned, and the tests
compare the records with the oracle computed here.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch.autograd import forward_ad  # noqa: E402

import softmaxkit.torch as skt  # noqa: E402
from softmaxkit.torch.distributed import (  # noqa: E402
    class_parallel_cross_entropy,
    class_parallel_linear_cross_entropy,
)

# The helpers of the main distributed tests (same process-spawning scheme).
from test_distributed import recorded_cases, returned  # noqa: E402

WORLD = 2
BATCH, D, V = (2, 3), 4, 8
WIDTHS = (3, 5)  # uneven on purpose
GLOO_TIMEOUT_S = 15
DEADLINE_S = 120
#: float64 inputs are computed in float64: only summation order differs from the oracle.
RTOL = 1e-10
SMOOTHING = 0.1
IGNORED = -100


def _problem():
    """The full float64 problem, the same on every rank and in the test process."""
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(*BATCH, D, generator=g, dtype=torch.float64)
    weight = torch.randn(V, D, generator=g, dtype=torch.float64)
    bias = torch.randn(V, generator=g, dtype=torch.float64)
    target = torch.randint(0, V, BATCH, generator=g)
    target[0, 1] = IGNORED
    probs = torch.softmax(torch.randn(*BATCH, V, generator=g, dtype=torch.float64), dim=-1)
    upstream = torch.rand(BATCH, generator=g, dtype=torch.float64)  # for reduction="none"
    return hidden, weight, bias, target, probs, upstream


def _slice(rank: int) -> slice:
    start = sum(WIDTHS[:rank])
    return slice(start, start + WIDTHS[rank])


# --------------------------------------------------------------------------- the gloo cases


def _batched(reduction: str, *, soft: bool = False, chunk_size: int | None = None):
    """``(B, T, D)`` hidden with ``(B, T)`` labels (or ``(B, T, V_local)`` probabilities)."""

    def run(rank: int):
        hidden, weight, bias, target, probs, upstream = _problem()
        h = hidden.clone().requires_grad_()
        w = weight[_slice(rank)].clone().requires_grad_()
        b = bias[_slice(rank)].clone().requires_grad_()
        y = probs[..., _slice(rank)] if soft else target
        loss = class_parallel_linear_cross_entropy(
            h, w, y, local_bias=b, reduction=reduction, chunk_size=chunk_size, label_smoothing=SMOOTHING
        )
        expected = BATCH if reduction == "none" else ()
        if tuple(loss.shape) != expected:  # recorded as raised, which the tests report
            raise AssertionError(f"loss of shape {tuple(loss.shape)}, expected {expected}")
        (loss * upstream if reduction == "none" else loss).sum().backward()
        return loss, {"hidden": h.grad, "weight": w.grad, "bias": b.grad}

    return run


CASES = {
    "batched-mean": _batched("mean"),
    "batched-none": _batched("none"),
    "batched-sum-chunked": _batched("sum", chunk_size=4),  # 6 rows: a full chunk and a partial one
    "batched-soft-mean": _batched("mean", soft=True),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return recorded_cases("test_distributed_round_bi", tmp_path_factory.mktemp("round_bi"), world=WORLD,
                          gloo_timeout_s=GLOO_TIMEOUT_S, deadline_s=DEADLINE_S)


def _oracle(name: str):
    """The dense float64 loss of ``name`` (flattened) and its gradients of hidden, weight and bias."""
    hidden, weight, bias, target, probs, upstream = _problem()
    h, w, b = (t.clone().requires_grad_() for t in (hidden, weight, bias))
    reduction = name.split("-")[-2] if name.endswith("chunked") else name.split("-")[-1]
    y = probs.reshape(-1, V) if "soft" in name else target.reshape(-1)
    loss = F.cross_entropy(h.reshape(-1, D) @ w.T + b, y, reduction=reduction, label_smoothing=SMOOTHING,
                           ignore_index=IGNORED)
    (loss * upstream.reshape(-1) if reduction == "none" else loss).sum().backward()
    return loss.detach(), h.grad, w.grad, b.grad


def _rel_err(got, ref: torch.Tensor) -> float:
    got, ref = torch.as_tensor(got, dtype=torch.float64), ref.detach().double().reshape(-1)
    return float((got - ref).abs().max() / ref.abs().max())


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", list(CASES))
def test_batched_hidden_matches_the_dense_loss_on_two_ranks(records, name):
    loss, g_hidden, g_weight, g_bias = _oracle(name)
    for rank, rec in enumerate(returned(records, name)):  # raised "hidden must be 2-D" before
        assert _rel_err(rec["loss"], loss) <= RTOL, (name, rank, rec["loss"], loss.tolist())
        grads = rec["grads"]
        assert grads["hidden"]["shape"] == [*BATCH, D], (name, rank)  # the caller's shape, not (N, D)
        assert _rel_err(grads["hidden"]["values"], g_hidden) <= RTOL, (name, rank)
        assert _rel_err(grads["weight"]["values"], g_weight[_slice(rank)]) <= RTOL, (name, rank)
        assert _rel_err(grads["bias"]["values"], g_bias[_slice(rank)]) <= RTOL, (name, rank)


# --------------------------------------------------------------------------- one rank, no group


@pytest.mark.parametrize("shape", [(2, 3), (2, 1, 3), ()], ids=["BT", "BxT", "unbatched"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_leading_dimensions_as_in_linear_cross_entropy(shape, reduction):
    """Without a group: the same loss and shape as the one-device loss for ``(..., D)`` hidden,
    ``(D,)`` with a 0-dim target included."""
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(*shape, D, generator=g, dtype=torch.float64)
    weight = torch.randn(V, D, generator=g, dtype=torch.float64)
    target = torch.randint(0, V, shape, generator=g)
    ref = skt.linear_cross_entropy(hidden, weight, target, reduction=reduction)
    got = class_parallel_linear_cross_entropy(hidden, weight, target, reduction=reduction)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=0)


def test_target_of_another_leading_shape_is_refused():
    """Leading dimensions must match, as for the one-device loss; the error names both shapes."""
    hidden, weight = torch.randn(2, 3, D), torch.randn(V, D)
    with pytest.raises(ValueError, match=r"expected \(2, 3\), got \(6,\)"):
        class_parallel_linear_cross_entropy(hidden, weight, torch.zeros(6, dtype=torch.int64))


def _cp_linear(h, w, t):
    return class_parallel_linear_cross_entropy(h, w, t)


def _cp_logits(h, w, t):
    return class_parallel_cross_entropy(h @ w.T, t)


TRANSFORMS = {
    "grad": lambda loss, h, w, t: torch.func.grad(lambda x: loss(x, w, t))(h),
    "vmap": lambda loss, h, w, t: torch.func.vmap(lambda x, y: loss(x[None], w, y[None]))(h, t),
    "jvp": lambda loss, h, w, t: torch.func.jvp(lambda x: loss(x, w, t), (h,), (torch.ones_like(h),)),
}


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("loss", [_cp_linear, _cp_logits], ids=["linear", "logits"])
def test_torch_func_transforms_raise_a_clear_error(loss, transform):
    """Torch's internal "setup_context" error before; now ours, which says what to use instead."""
    h, w, t = torch.randn(4, 3), torch.randn(6, 3), torch.tensor([0, 5, 2, 1])
    with pytest.raises(RuntimeError, match="does not support torch.func transforms") as info:
        TRANSFORMS[transform](loss, h, w, t)
    assert "regular autograd" in str(info.value)


@pytest.mark.parametrize("loss", [_cp_linear, _cp_logits], ids=["linear", "logits"])
def test_forward_mode_ad_raises_a_clear_error(loss):
    h, w, t = torch.randn(4, 3), torch.randn(6, 3), torch.tensor([0, 5, 2, 1])
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(h, torch.ones_like(h))
        with pytest.raises(RuntimeError, match="does not support torch.func transforms"):
            loss(dual, w, t)


def test_regular_autograd_still_runs_after_the_transform_check():
    """Guard (passes before and after): the check does not touch plain autograd calls."""
    h = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w, t = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 5, 2, 1])
    class_parallel_linear_cross_entropy(h, w, t).backward()
    ref = torch.func.grad(lambda x: skt.linear_cross_entropy(x, w, t))(h.detach())
    torch.testing.assert_close(h.grad, ref, rtol=RTOL, atol=0)


@pytest.mark.parametrize("op", ["linear_cross_entropy", "linear_cross_entropy_and_grad"])
def test_torch_linear_weight_keyword_gets_advice(op):
    """``F.linear_cross_entropy``'s ``linear_weight=`` is refused with what to pass, as ``linear_bias=`` is."""
    h, w, t = torch.randn(4, 3), torch.randn(6, 3), torch.tensor([0, 5, 2, 1])
    kwargs = {"input": h} if op == "linear_cross_entropy" else {}
    args = () if kwargs else (h,)
    with pytest.raises(TypeError, match=r"has no argument 'linear_weight'.*pass the projection as weight="):
        getattr(skt, op)(*args, linear_weight=w, target=t, **kwargs)
