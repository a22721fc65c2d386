"""Audit AN: class-parallel cross-entropy on a real 2-rank gloo group.

* an empty batch (N = 0) with label smoothing and no class weight gave an
  IndexError (backward of the logits loss; forward of the linear loss), where
  torch and the single-process losses give 0 and a zero gradient;
* ``torch.autocast`` was ignored: bf16 logits gave a bf16 loss (39.25 for
  torch's float32 39.355495), and bf16 hidden with a float32 head weight was
  refused where torch and :func:`softmaxkit.torch.linear_cross_entropy` run;
* a bias of another dtype than the weight's was silently cast (float64 bias,
  bf16 weight: 3.9827 for the dense 3.9811) where the single-process loss
  refuses it;
* ranks with different hard targets whose position-weighted sum collides
  (``[0, 6]`` and ``[6, 3]``: both 15) returned a loss of neither.

One group of 2 CPU processes runs every case (each spawn costs seconds) and
records what each rank returned or raised; the tests compare the records with
a dense float64 torch oracle computed here. The runner waits with a deadline
and kills the group, so a regression fails rather than hangs.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from softmaxkit.torch import distributed  # noqa: E402
from softmaxkit.torch.distributed import (  # noqa: E402
    class_parallel_cross_entropy,
    class_parallel_linear_cross_entropy,
)

# The helpers of the main distributed tests (same process-spawning scheme).
from test_distributed import recorded_cases, returned  # noqa: E402

WORLD = 2
N, D, V = 6, 8, 10
WIDTHS = (4, 6)  # uneven on purpose
GLOO_TIMEOUT_S = 15
DEADLINE_S = 120
#: The loss of float32 computation from the same bf16 values (its bf16 rounding is ~3e-3 off).
LOSS_F32_RTOL = 1e-5
#: bf16 logits (the autocast GEMM rounds them) and bf16 gradients, relative to the largest entry.
BF16_RTOL = 2e-2
#: The audit's colliding targets: sum((t + 1) * position) is 15 for both.
COLLIDING = ([0, 6], [6, 3])


def _problem():
    """The full problem, the same on every rank and in the test process."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(N, V, generator=g) * 3).bfloat16()
    hidden = torch.randn(N, D, generator=g).bfloat16()
    weight = torch.randn(V, D, generator=g)  # float32: a head weight beside bf16 activations
    bias = torch.randn(V, generator=g, dtype=torch.float64)
    target = torch.randint(0, V, (N,), generator=g)
    return logits, hidden, weight, bias, target


def _slice(rank: int) -> slice:
    start = sum(WIDTHS[:rank])
    return slice(start, start + WIDTHS[rank])


# --------------------------------------------------------------------------- the cases


def _empty(kind: str, reduction: str):
    def run(rank: int):
        y = torch.zeros(0, dtype=torch.int64)
        if kind == "ce":
            x = torch.zeros(0, WIDTHS[rank], requires_grad=True)
            loss = class_parallel_cross_entropy(x, y, label_smoothing=0.1, reduction=reduction)
            loss.sum().backward()  # "none": an empty loss
            return loss, {"logits": x.grad}
        h = torch.zeros(0, D, requires_grad=True)
        w = torch.randn(WIDTHS[rank], D).requires_grad_()
        loss = class_parallel_linear_cross_entropy(h, w, y, label_smoothing=0.1, reduction=reduction)
        loss.sum().backward()
        return loss, {"hidden": h.grad, "weight": w.grad}

    return run


def _autocast_ce(rank: int):
    logits, _, _, _, target = _problem()
    x = logits[:, _slice(rank)].clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = class_parallel_cross_entropy(x, target, reduction="sum")
    loss.backward()
    return loss, {"logits": x.grad}


def _autocast_linear(rank: int):
    _, hidden, weight, _, target = _problem()
    h = hidden.clone().requires_grad_()
    w = weight[_slice(rank)].clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = class_parallel_linear_cross_entropy(h, w, target)
    loss.backward()
    return loss, {"hidden": h.grad, "weight": w.grad}


def _wide_bias(ranks: tuple[int, ...]):
    """bf16 hidden and weight; a float64 bias on ``ranks``, a bf16 one elsewhere."""

    def run(rank: int):
        _, hidden, weight, bias, target = _problem()
        b = bias[_slice(rank)]
        b = b if rank in ranks else b.bfloat16()
        return class_parallel_linear_cross_entropy(
            hidden, weight[_slice(rank)].bfloat16(), target, local_bias=b, loss_dtype=torch.float32
        ), {}

    return run


def _colliding(kind: str):
    def run(rank: int):
        full = torch.randn(2, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        y = torch.tensor(COLLIDING[rank])
        if kind == "ce":
            return class_parallel_cross_entropy(full[:, 4 * rank:4 * rank + 4], y, reduction="sum"), {}
        h = torch.eye(2, dtype=torch.float64)  # so the logits are hidden @ full.T[slice].T = full[:, slice]
        return class_parallel_linear_cross_entropy(h, full.T[4 * rank:4 * rank + 4], y), {}

    return run


CASES = {
    "empty-ce-mean": _empty("ce", "mean"),
    "empty-ce-sum": _empty("ce", "sum"),
    "empty-linear-mean": _empty("linear", "mean"),
    "empty-linear-none": _empty("linear", "none"),
    "autocast-ce": _autocast_ce,
    "autocast-linear": _autocast_linear,
    # Last: each raises on every rank after the first all-reduce, which every rank completes.
    "wide-bias-everywhere": _wide_bias((0, 1)),
    "wide-bias-rank0": _wide_bias((0,)),
    "colliding-targets-ce": _colliding("ce"),
    "colliding-targets-linear": _colliding("linear"),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return recorded_cases("test_distributed_round_an", tmp_path_factory.mktemp("round_an"), world=WORLD, gloo_timeout_s=GLOO_TIMEOUT_S,
                          deadline_s=DEADLINE_S)


def _raised(records: list[dict], name: str) -> list[dict]:
    recs = [r.get(name, {"raised": "no record"}) for r in records]
    for rank, rec in enumerate(recs):
        assert "raised" in rec, (name, rank, "returned instead of raising", rec.get("loss"))
    return recs


def _rel_err(got, ref: torch.Tensor) -> float:
    got, ref = torch.as_tensor(got, dtype=torch.float64), ref.detach().double().reshape(-1)
    return float((got - ref).abs().max() / ref.abs().max())


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("empty")])
def test_empty_batch_with_label_smoothing_gives_zero_loss_and_gradient(records, name):
    kind = name.split("-")[1]
    reduction = name.split("-")[2]
    # The float64 oracle of "sum" and "none"; "mean" of no rows is 0 in softmaxkit (torch: NaN).
    ref = F.cross_entropy(torch.zeros(0, V, dtype=torch.float64), torch.zeros(0, dtype=torch.int64),
                          label_smoothing=0.1, reduction="sum")
    for rank, rec in enumerate(returned(records, name)):
        assert rec["dtype"] == "torch.float32", (name, rank)
        assert rec["loss"] == ([] if reduction == "none" else [float(ref)]), (name, rank)
        shapes = {"logits": [0, WIDTHS[rank]], "hidden": [0, D], "weight": [WIDTHS[rank], D]}
        for key, got in rec["grads"].items():
            assert got["shape"] == shapes[key], (name, rank, key)
            assert not any(got["values"]), (name, rank, key)
        assert set(rec["grads"]) == ({"logits"} if kind == "ce" else {"hidden", "weight"})


def test_autocast_ce_gives_the_float32_loss_of_torch(records):
    logits, _, _, _, target = _problem()
    full = logits.double().requires_grad_()  # the bf16 values, in float64
    ref = F.cross_entropy(full, target, reduction="sum")
    ref.backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what torch itself returns here
        assert F.cross_entropy(logits, target, reduction="sum").dtype == torch.float32
    for rank, rec in enumerate(returned(records, "autocast-ce")):
        assert rec["dtype"] == "torch.float32", rank  # was torch.bfloat16
        assert _rel_err(rec["loss"], ref) <= LOSS_F32_RTOL, (rank, rec["loss"], float(ref))
        got = rec["grads"]["logits"]
        assert got["dtype"] == "torch.bfloat16", rank  # the gradient stays in the logits' dtype
        assert _rel_err(got["values"], full.grad[:, _slice(rank)]) <= BF16_RTOL, rank
    # The tolerance tells a float32 loss from its bf16 rounding (the old result).
    assert _rel_err([float(ref.detach().bfloat16())], ref) > LOSS_F32_RTOL


def test_autocast_linear_takes_a_float32_weight_beside_bf16_hidden(records):
    _, hidden, weight, _, target = _problem()
    h = hidden.double().requires_grad_()
    w = weight.bfloat16().double().requires_grad_()  # autocast runs F.linear on bf16 operands
    ref = F.cross_entropy(h @ w.T, target)
    ref.backward()
    for rank, rec in enumerate(returned(records, "autocast-linear")):
        assert rec["dtype"] == "torch.float32", rank  # as torch's and linear_cross_entropy's
        assert _rel_err(rec["loss"], ref) <= BF16_RTOL, (rank, rec["loss"], float(ref))
        grads = rec["grads"]
        # Each gradient in its own input's dtype, through autocast's differentiable cast.
        assert grads["hidden"]["dtype"] == "torch.bfloat16", rank
        assert grads["weight"]["dtype"] == "torch.float32", rank
        assert _rel_err(grads["hidden"]["values"], h.grad) <= BF16_RTOL, rank
        assert _rel_err(grads["weight"]["values"], w.grad[_slice(rank)]) <= BF16_RTOL, rank


def test_a_bias_of_another_dtype_is_refused_on_every_rank(records):
    for rank, rec in enumerate(_raised(records, "wide-bias-everywhere")):
        assert rec["raised"] == "TypeError", (rank, rec)
        assert "local_bias must have local_weight's dtype bfloat16, got float64" in rec["message"], (rank, rec)
    own, other = _raised(records, "wide-bias-rank0")
    assert own["raised"] == "TypeError" and "got float64" in own["message"], own
    assert other["raised"] == "ValueError" and "rank(s) [0] failed" in other["message"], other


@pytest.mark.parametrize("name", ["colliding-targets-ce", "colliding-targets-linear"])
def test_targets_with_a_colliding_weighted_sum_raise_on_every_rank(records, name):
    for rank, rec in enumerate(_raised(records, name)):
        assert rec["raised"] == "ValueError", (name, rank, rec)
        assert "ranks disagree on the hard targets" in rec["message"], (name, rank, rec)


def test_the_header_tells_apart_targets_of_equal_weighted_sum():
    """No group: the header columns of target pairs with the same ``sum((t + 1) * position)``
    differ (two labels moved in opposite directions, at positions in the ratio of the moves)."""
    options = distributed.cross_entropy_options(n_classes=V)
    g = torch.Generator().manual_seed(1)
    pairs = [(torch.tensor(COLLIDING[0]), torch.tensor(COLLIDING[1]))]
    for _ in range(200):
        t = torch.randint(2, V - 2, (12,), generator=g)
        u = t.clone()
        i, j = torch.randperm(6, generator=g)[:2].tolist()
        u[i] += 2 * (j + 1)  # + 2 (j + 1) (i + 1) ...
        u[j] -= 2 * (i + 1)  # ... - 2 (i + 1) (j + 1): the same weighted sum
        pairs.append((t, u))
    for t, u in pairs:
        cols = [
            distributed._header_column(
                target=x, opts=options, has_weight=False, width=V, class_start=None, loss_dtype=torch.float32
            )
            for x in (t, u)
        ]
        assert not torch.equal(cols[0], cols[1]), (t.tolist(), u.tolist())


# --------------------------------------------------------------------------- one rank, no group


def test_probability_targets_promote_the_loss_as_in_the_single_process_call():
    """float32 logits with float64 probabilities: torch and softmaxkit.torch.cross_entropy give
    (and compute) a float64 loss; the class-parallel call gave float32."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, V, generator=g) * 4
    t = torch.softmax(torch.randn(5, V, generator=g, dtype=torch.float64), dim=1)
    ref = F.cross_entropy(x.double(), t, reduction="sum")
    loss = class_parallel_cross_entropy(x, t, reduction="sum")
    assert loss.dtype == F.cross_entropy(x, t).dtype == torch.float64
    assert abs(float(loss) - float(ref)) <= 1e-12 * abs(float(ref))  # computed in float64


def test_autocast_without_a_group():
    logits, hidden, weight, _, target = _problem()
    ref = F.cross_entropy(logits.double(), target, reduction="sum")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ce = class_parallel_cross_entropy(logits, target, reduction="sum")
        lce = class_parallel_linear_cross_entropy(hidden, weight, target)
        kept = class_parallel_cross_entropy(logits, target, loss_dtype=torch.bfloat16)  # one given is kept
    assert ce.dtype == lce.dtype == torch.float32 and kept.dtype == torch.bfloat16
    assert _rel_err([float(ce)], ref) <= LOSS_F32_RTOL
    # Outside autocast a float32 weight beside bf16 hidden is still refused.
    with pytest.raises(TypeError, match="same dtype"):
        class_parallel_linear_cross_entropy(hidden, weight, target)
