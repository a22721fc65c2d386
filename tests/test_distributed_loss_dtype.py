"""``loss_dtype=`` of the class-parallel losses, on a real 2-rank gloo group.

The single-process :func:`softmaxkit.torch.linear_cross_entropy` returns the
loss in ``loss_dtype`` (default: the input dtype), so ``torch.float32`` keeps
a bf16 model's loss, and an upstream scale such as ``1 / num_items``, from
being rounded to 8 bits of mantissa. The class-parallel calls must give the
same dtype and value for the same arguments, keep the gradients in the input
dtype, and raise on every rank when the ranks disagree on the option.

One group of 2 CPU processes runs every case (spawning costs seconds) and
records what each rank returned or raised; the tests compare those records
with the single-process calls made here. The runner waits with a deadline and
kills the group, so a regression fails rather than hangs.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import softmaxkit.torch as skt  # noqa: E402
from softmaxkit.torch.distributed import (  # noqa: E402
    class_parallel_cross_entropy,
    class_parallel_linear_cross_entropy,
)

# The port helper of the main distributed tests (same process-spawning scheme).
from test_distributed import recorded_cases, returned  # noqa: E402

WORLD = 2
N, D, V = 16, 8, 24
WIDTHS = (10, 14)  # uneven on purpose
GLOO_TIMEOUT_S = 15
DEADLINE_S = 120
#: Relative tolerances: a float32 loss (against the single-process float32 loss;
#: far below bf16's rounding of it, which the problem is checked to exceed), a
#: bf16 loss (one bf16 step: the two calls may round to neighbours), bf16 gradients.
LOSS_F32_RTOL, LOSS_BF16_RTOL, GRAD_RTOL = 1e-3, 8e-3, 2e-2
#: An upstream scale that bf16 cannot hold (1/3 rounds to 0.333984 in bf16).
UPSTREAM = 1.0 / 3.0


def _problem():
    """The full bf16 problem, the same on every rank and in the test process."""
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(N, D, generator=g).bfloat16()
    weight = torch.randn(V, D, generator=g).bfloat16()
    logits = (torch.randn(N, V, generator=g) * 2.5).bfloat16()  # its float32 loss is far from a bf16 one
    target = torch.randint(0, V, (N,), generator=g)
    row_upstream = torch.randn(N, generator=g)  # float32, for reduction="none"
    return hidden, weight, logits, target, row_upstream


def _slice(rank: int) -> slice:
    start = sum(WIDTHS[:rank])
    return slice(start, start + WIDTHS[rank])


# --------------------------------------------------------------------------- the cases


def _backward(loss: torch.Tensor, upstream) -> None:
    if upstream == "rows":  # float32 per-row upstream gradient
        loss.backward(_problem()[4].to(loss.dtype))
    else:  # a scalar upstream: loss * 1/3 in the loss dtype
        (loss * UPSTREAM).backward()


def _linear(loss_dtype, upstream, **options):
    """Class-parallel linear loss: this rank's loss and its gradients (this rank's weight rows)."""

    def run(rank: int):
        hidden, weight, _, target, _ = _problem()
        h = hidden.clone().requires_grad_()
        w = weight[_slice(rank)].clone().requires_grad_()
        loss = class_parallel_linear_cross_entropy(h, w, target, loss_dtype=loss_dtype, **options)
        _backward(loss, upstream)
        return loss, {"hidden": h.grad, "weight": w.grad}

    return run


def _ce(loss_dtype, upstream, **options):
    def run(rank: int):
        _, _, logits, target, _ = _problem()
        x = logits[:, _slice(rank)].clone().requires_grad_()
        loss = class_parallel_cross_entropy(x, target, loss_dtype=loss_dtype, **options)
        _backward(loss, upstream)
        return loss, {"logits": x.grad}

    return run


def _mismatch(kind: str, **options):
    """Rank 0 asks for a float32 loss, rank 1 leaves the default (bf16)."""

    def run(rank: int):
        hidden, weight, logits, target, _ = _problem()
        loss_dtype = torch.float32 if rank == 0 else None
        if kind == "ce":
            return class_parallel_cross_entropy(
                logits[:, _slice(rank)], target, loss_dtype=loss_dtype, **options
            ), {}
        return class_parallel_linear_cross_entropy(
            hidden, weight[_slice(rank)], target, loss_dtype=loss_dtype, **options
        ), {}

    return run


CASES = {
    "linear-default": _linear(None, 1.0),
    "linear-float32": _linear(torch.float32, UPSTREAM),
    "linear-float32-chunks": _linear(torch.float32, UPSTREAM, chunk_size=5),
    "linear-float32-sum": _linear(torch.float32, UPSTREAM, reduction="sum"),
    "linear-float32-none": _linear(torch.float32, "rows", reduction="none"),
    "ce-default": _ce(None, 1.0),
    "ce-float32": _ce(torch.float32, UPSTREAM),
    "ce-float32-none": _ce(torch.float32, "rows", reduction="none"),
    # Last: a disagreement raises after the header all-reduce, which every rank completes.
    "mismatch-ce": _mismatch("ce"),
    "mismatch-linear": _mismatch("linear"),  # default chunks: the header travels alone
    "mismatch-linear-chunks": _mismatch("linear", chunk_size=4),  # it rides the first chunk
}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return recorded_cases("test_distributed_loss_dtype", tmp_path_factory.mktemp("loss_dtype"), world=WORLD, gloo_timeout_s=GLOO_TIMEOUT_S,
                          deadline_s=DEADLINE_S)


# --------------------------------------------------------------------------- references


def _reference(name: str):
    """The single-process result of a case: loss, and the full gradients."""
    hidden, weight, logits, target, _ = _problem()
    kind, mode, *rest = name.split("-")
    loss_dtype = torch.float32 if mode == "float32" else None
    options = {"reduction": rest[0]} if rest and rest[0] in ("sum", "none") else {}
    upstream = "rows" if options.get("reduction") == "none" else (1.0 if mode == "default" else UPSTREAM)
    if kind == "linear":
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        loss = skt.linear_cross_entropy(h, w, target, loss_dtype=loss_dtype, **options)
        _backward(loss, upstream)
        return loss, {"hidden": h.grad, "weight": w.grad}
    x = logits.clone().requires_grad_()
    if loss_dtype is None:
        loss = skt.cross_entropy(x, target, **options)
    else:  # softmaxkit.torch.cross_entropy has no loss_dtype: torch's float32 loss of the same logits
        loss = F.cross_entropy(x.float(), target, **options)
    _backward(loss, upstream)
    return loss, {"logits": x.grad}


def _rel_err(got, ref) -> float:
    got, ref = torch.as_tensor(got, dtype=torch.float64), ref.detach().double().reshape(-1)
    return float((got - ref).abs().max() / ref.abs().max())


RETURNING = [name for name in CASES if not name.startswith("mismatch")]


@pytest.mark.parametrize("name", RETURNING)
def test_loss_dtype_and_value_match_single_process(records, name):
    ref, _ = _reference(name)
    rtol = LOSS_F32_RTOL if ref.dtype == torch.float32 else LOSS_BF16_RTOL
    for rank, rec in enumerate(returned(records, name)):
        assert rec["dtype"] == str(ref.dtype), (name, rank, rec["dtype"])
        assert len(rec["loss"]) == ref.numel(), (name, rank)
        assert _rel_err(rec["loss"], ref) <= rtol, (name, rank, rec["loss"][:3], ref.reshape(-1)[:3])
    if ref.dtype == torch.float32 and ref.dim() == 0:
        # The tolerance must be able to tell a float32 loss from one rounded to bf16.
        assert _rel_err([float(ref.detach().bfloat16())], ref) > rtol


@pytest.mark.parametrize("name", RETURNING)
def test_gradients_stay_in_the_input_dtype(records, name):
    _, ref_grads = _reference(name)
    for rank, rec in enumerate(returned(records, name)):
        for key, ref in ref_grads.items():
            got = rec["grads"][key]
            assert got["dtype"] == str(torch.bfloat16), (name, rank, key, got["dtype"])
            if key != "hidden":  # this rank's class columns (logits) or weight rows
                ref = ref[:, _slice(rank)] if key == "logits" else ref[_slice(rank)]
            assert _rel_err(got["values"], ref) <= GRAD_RTOL, (name, rank, key)


def test_every_rank_returns_the_same_loss(records):
    for name in RETURNING:
        recs = returned(records, name)
        assert recs[0]["loss"] == recs[1]["loss"], name


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("mismatch")])
def test_ranks_disagreeing_on_loss_dtype_all_raise(records, name):
    recs = [r.get(name, {"raised": "no record"}) for r in records]
    for rank, rec in enumerate(recs):
        assert rec.get("raised") == "ValueError", (name, rank, rec)
        assert "ranks disagree on the loss dtype" in rec["message"], (name, rank, rec)
        assert "['torch.float32', 'torch.bfloat16']" in rec["message"], (name, rank, rec)


# --------------------------------------------------------------------------- one rank, no group


def _single_rank(fn, loss_dtype, dtype=torch.bfloat16):
    hidden, weight, logits, target, _ = _problem()
    if fn is class_parallel_cross_entropy:
        return fn(logits.to(dtype), target, loss_dtype=loss_dtype)
    return fn(hidden.to(dtype), weight.to(dtype), target, loss_dtype=loss_dtype)


FUNCTIONS = [class_parallel_cross_entropy, class_parallel_linear_cross_entropy]


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "loss_dtype, exc, match",
    [
        (torch.float16, ValueError, "loss_dtype must be at least as wide as the input dtype"),
        ("float32", TypeError, "loss_dtype must be a floating-point torch.dtype or None"),
        (torch.int64, TypeError, "loss_dtype must be a floating-point torch.dtype or None"),
    ],
)
def test_bad_loss_dtype_is_refused_as_in_the_single_process_call(fn, loss_dtype, exc, match):
    with pytest.raises(exc, match=match):
        _single_rank(fn, loss_dtype)
    hidden, weight, _, target, _ = _problem()
    with pytest.raises(exc, match=match):  # the same check, the same message
        skt.linear_cross_entropy(hidden, weight, target, loss_dtype=loss_dtype)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "dtype, loss_dtype, expected",
    [
        (torch.bfloat16, None, torch.bfloat16),
        (torch.bfloat16, torch.bfloat16, torch.bfloat16),
        (torch.bfloat16, torch.float32, torch.float32),
        (torch.float16, torch.float64, torch.float64),
        (torch.float32, None, torch.float32),
        (torch.float32, torch.float64, torch.float64),
    ],
)
def test_loss_dtype_without_a_group(fn, dtype, loss_dtype, expected):
    loss = _single_rank(fn, loss_dtype, dtype)
    assert loss.dtype == expected
