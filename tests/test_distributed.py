"""Class-parallel cross-entropy (softmaxkit.torch.distributed) on real gloo groups.

One process group of 2 and one of 3 CPU processes is spawned per test session
(each spawn of a torch process costs seconds); every case below runs inside
that group, rank by rank in the same order, and records pass/fail. The pytest
items then only read those records, so each case still shows up by name.

The reference is the single-process softmaxkit result on the full ``(N, V)``
problem (:func:`softmaxkit.cross_entropy_and_grad`, itself tested against the
float64 oracle), computed in float64 from the very values each rank sees;
where ``torch.nn.functional.cross_entropy`` defines the case, it is checked
against that too. Linear cases compare the loss and all three gradients with
the dense ``hidden @ W.T + b`` of the full weight.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import traceback

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import softmaxkit as sk  # noqa: E402
from softmaxkit.torch import distributed  # noqa: E402
from softmaxkit.torch.distributed import (  # noqa: E402
    class_parallel_cross_entropy,
    class_parallel_linear_cross_entropy,
)

#: Tolerance per input dtype, relative and absolute (the issue's contract).
TOL = {torch.float64: 1e-6, torch.float32: 1e-5, torch.bfloat16: 2e-2}

#: Class widths per rank: uneven on purpose, one layout with an empty slice.
WIDTHS = {2: {"uneven": [4, 9], "even": [6, 6]}, 3: {"uneven": [2, 7, 4], "empty": [5, 0, 8]}}

N_ROWS, HIDDEN = 9, 6

# name -> options; weights are drawn per case, "weight": True marks "use them".
OPTION_SETS = {
    "plain": {},
    "weight": {"weight": True},
    "ignore": {"ignore_index": -100, "_ignore_rows": 3},
    "ignore_valid_class": {"ignore_index": 2, "_ignore_rows": 2},
    "smoothing": {"label_smoothing": 0.1},
    "smoothing_weight_ignore": {"label_smoothing": 0.2, "weight": True, "_ignore_rows": 2},
    "smoothing_one": {"label_smoothing": 1.0, "weight": True},
    "z_loss_weight": {"z_loss": 0.05, "weight": True},
    "softcap": {"softcap": 2.0},
    "everything": {
        "weight": True, "label_smoothing": 0.15, "z_loss": 0.02, "softcap": 3.0, "_ignore_rows": 2,
    },
    "sum": {"reduction": "sum", "weight": True, "label_smoothing": 0.1},
    "none": {"reduction": "none", "weight": True, "label_smoothing": 0.1, "_ignore_rows": 2},
    "all_ignored_mean": {"_ignore_rows": N_ROWS, "weight": True},
    "soft": {"_soft": True},
    "soft_everything": {
        "_soft": True, "weight": True, "label_smoothing": 0.1, "z_loss": 0.01, "softcap": 4.0,
    },
    "soft_none": {"_soft": True, "reduction": "none", "weight": True},
    "masked_logits": {"_mask": True, "weight": True},
}


def _layouts(world: int) -> list[str]:
    # "given" passes class_start explicitly, with the slices in reverse rank order.
    return [*WIDTHS[world], "given"]


def case_names(world: int) -> list[str]:
    names = []
    for kind in ("ce", "linear"):
        for opt in OPTION_SETS:
            for dt in ("f64", "f32"):
                names.append(f"{kind}-{opt}-{dt}-{_layouts(world)[0]}")
        for layout in _layouts(world)[1:]:
            names.append(f"{kind}-everything-f64-{layout}")
            names.append(f"{kind}-soft_everything-f32-{layout}")
        names.append(f"{kind}-everything-bf16-{_layouts(world)[0]}")
    names.append("linear-everything-f64-uneven-nohiddengrad")
    names.append("linear-everything-f64-uneven-defaultchunks")
    names += ["errors-bad_label", "errors-mixed_class_start", "errors-gap", "count"]
    return names


# --------------------------------------------------------------------------- one case


def _problem(name: str, world: int, rank: int):
    """The full problem of a case (same on every rank) and this rank's slice of it."""
    kind, opt, dt, layout, *extra = name.split("-")
    spec = dict(OPTION_SETS[opt])
    widths = WIDTHS[world]["uneven" if layout == "given" else layout]
    if layout == "given":
        widths = widths[::-1]  # rank r holds the (world-1-r)-th block
    v = sum(widths)
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
    slot = world - 1 - rank if layout == "given" else rank
    start, width = int(starts[slot]), widths[slot]

    rng = np.random.default_rng(_seed(name, world))  # same problem on every rank
    logits = rng.normal(scale=2.0, size=(N_ROWS, v))
    if spec.pop("_mask", False):
        logits[:, 1] = -np.inf  # a masked class: never a target, zero soft mass
    target = rng.integers(0, v, N_ROWS)
    if "masked_logits" in name:
        target = np.where(target == 1, 0, target)
    n_ignored = spec.pop("_ignore_rows", 0)
    ignore_index = spec.get("ignore_index", -100)
    if n_ignored:
        target[:n_ignored] = ignore_index
    soft = spec.pop("_soft", False)
    if soft:
        target = rng.dirichlet(np.ones(v), N_ROWS)
        target[0, : v // 2] = 0.0  # zero target mass on some classes
    weight = rng.uniform(0.2, 2.0, v) if spec.pop("weight", False) else None
    if weight is not None and ignore_index == 2:
        weight[2] = 0.0  # a zero class weight, and a valid class used as ignore_index
    hidden = rng.normal(size=(N_ROWS, HIDDEN))
    w_full = rng.normal(scale=0.7, size=(v, HIDDEN))
    b_full = rng.normal(size=v)
    grad_out = rng.normal(size=N_ROWS) if spec.get("reduction") == "none" else 1.3
    return dict(
        kind=kind, dtype={"f64": torch.float64, "f32": torch.float32, "bf16": torch.bfloat16}[dt],
        spec=spec, layout=layout, start=start, width=width, logits=logits, target=target,
        soft=soft, weight=weight, hidden=hidden, w_full=w_full, b_full=b_full,
        grad_out=grad_out, no_hidden_grad="nohiddengrad" in extra, default_chunks="defaultchunks" in extra,
    )


def _seed(name: str, world: int) -> int:
    # Not hash(): string hashing is salted per process.
    return sum(ord(c) * (i + 1) for i, c in enumerate(name)) * 7919 + world


def _round(a: np.ndarray, dtype) -> np.ndarray:
    """The float64 values of ``a`` after rounding to ``dtype`` (what the ranks see)."""
    return torch.tensor(a, dtype=dtype).to(torch.float64).numpy()


def _check(label, got, ref, tol, errors):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        errors.append(f"{label}: shape {got.shape} != {ref.shape}")
        return
    if not np.allclose(got, ref, rtol=tol, atol=tol, equal_nan=False):
        err = np.max(np.abs(got - ref) / (tol + tol * np.abs(ref)))
        errors.append(f"{label}: max error {err:.3g} x tolerance")


def _run_case(name: str, world: int, rank: int, group=None) -> None:
    p = _problem(name, world, rank)
    dtype, spec = p["dtype"], p["spec"]
    sl = slice(p["start"], p["start"] + p["width"])
    ref_opts = dict(spec, weight=p["weight"])
    local_opts = dict(spec)
    if p["weight"] is not None:
        local_opts["weight"] = torch.tensor(p["weight"][sl])  # this rank's slice
    if p["layout"] == "given":
        local_opts["class_start"] = p["start"]
    tgt = p["target"]
    if p["soft"]:
        tgt_ref = _round(tgt, dtype)
        tgt_local = torch.tensor(tgt[:, sl], dtype=dtype)
    else:
        tgt_ref, tgt_local = tgt, torch.tensor(tgt)
    grad_out = p["grad_out"]
    errors: list[str] = []
    tol = TOL[dtype]

    if p["kind"] == "ce":
        full = _round(p["logits"], dtype)
        ref_loss, ref_grad = sk.cross_entropy_and_grad(
            full, tgt_ref, grad_output=grad_out, **ref_opts
        )
        local = torch.tensor(p["logits"][:, sl], dtype=dtype, requires_grad=True)
        loss = class_parallel_cross_entropy(local, tgt_local, group=group, **local_opts)
        loss.backward(torch.as_tensor(grad_out, dtype=torch.float64).to(dtype).expand_as(loss))
        _check("loss", loss.detach().double().numpy(), ref_loss, tol, errors)
        _check("grad_logits", local.grad.double().numpy(), ref_grad[:, sl], tol, errors)
        if _torch_defines(name, spec):  # a second, independent reference
            t_loss, t_grad = _torch_reference(full, tgt_ref, p["weight"], spec, grad_out)
            _check("loss vs torch", loss.detach().double().numpy(), t_loss, tol, errors)
            _check("grad vs torch", local.grad.double().numpy(), t_grad[:, sl], tol, errors)
    else:
        h, w, b = (_round(p[k], dtype) for k in ("hidden", "w_full", "b_full"))
        ref_loss, g = sk.cross_entropy_and_grad(  # g: gradient of the full logits
            h @ w.T + b, tgt_ref, grad_output=grad_out, **ref_opts
        )
        ht = torch.tensor(h, dtype=dtype, requires_grad=not p["no_hidden_grad"])
        wt = torch.tensor(w[sl], dtype=dtype, requires_grad=True)
        bt = torch.tensor(b[sl], dtype=dtype, requires_grad=True)
        if p["default_chunks"]:
            # A budget of 3 rows of the widest slice: planned from the local width
            # alone, ranks of different widths ran different chunks and gloo
            # aborted on the mismatched all-reduce.
            budget = 3 * max(WIDTHS[world]["uneven"]) * 8 * distributed._LIVE_CHUNK_ARRAYS
            with _chunk_budget(budget):
                loss = class_parallel_linear_cross_entropy(ht, wt, tgt_local, local_bias=bt, group=group, **local_opts)
        else:
            loss = class_parallel_linear_cross_entropy(
                ht, wt, tgt_local, local_bias=bt, group=group, chunk_size=4, **local_opts
            )
        loss.backward(torch.as_tensor(grad_out, dtype=torch.float64).to(dtype).expand_as(loss))
        _check("loss", loss.detach().double().numpy(), ref_loss, tol, errors)
        if p["no_hidden_grad"]:
            if ht.grad is not None:
                errors.append("hidden.grad should be None")
        else:
            _check("grad_hidden", ht.grad.double().numpy(), g @ w, tol, errors)
        _check("grad_weight", wt.grad.double().numpy(), (g.T @ h)[sl], tol, errors)
        _check("grad_bias", bt.grad.double().numpy(), g.sum(0)[sl], tol, errors)
    if "all_ignored" in name and float(loss.detach()) != 0.0:
        errors.append(f"all-ignored mean loss is {float(loss.detach())}, expected 0")
    if errors:
        raise AssertionError("; ".join(errors))


@contextlib.contextmanager
def _chunk_budget(n_bytes: int):
    """Temporarily set the class-parallel loss's chunk budget (in a rank process)."""
    saved = distributed.CHUNK_BYTES
    distributed.CHUNK_BYTES = n_bytes
    try:
        yield
    finally:
        distributed.CHUNK_BYTES = saved


def _torch_defines(name: str, spec: dict) -> bool:
    """Whether ``F.cross_entropy`` covers the case (no extras, no NaN by design)."""
    return not ({"z_loss", "softcap"} & set(spec)) and "all_ignored" not in name


def _torch_reference(logits, target, weight, spec, grad_out):
    """Loss and logits gradient from ``torch.nn.functional.cross_entropy`` in float64."""
    x = torch.tensor(logits, requires_grad=True)
    t = torch.tensor(target)
    w = None if weight is None else torch.tensor(weight)
    loss = torch.nn.functional.cross_entropy(x, t, weight=w, **spec)
    loss.backward(torch.as_tensor(grad_out, dtype=torch.float64).expand_as(loss))
    return loss.detach().numpy(), x.grad.numpy()


def _run_errors(name: str, world: int, rank: int) -> None:
    """Misuse that must raise the same ValueError on every rank (no rank left waiting)."""
    x = torch.zeros(3, 2 + rank)
    v = sum(2 + r for r in range(world))
    try:
        if name == "errors-bad_label":
            class_parallel_cross_entropy(x, torch.tensor([0, v, 1]))
        elif name == "errors-mixed_class_start":
            start = 0 if rank else None
            class_parallel_cross_entropy(x, torch.tensor([0, 1, 1]), class_start=start)
        elif name == "errors-gap":
            starts = np.concatenate([[0], np.cumsum([2 + r for r in range(world)])[:-1]])
            start = int(starts[rank]) + (1 if rank == world - 1 else 0)
            class_parallel_cross_entropy(x, torch.tensor([0, 1, 1]), class_start=start)
    except ValueError as exc:
        msg = str(exc)
        expected = {"errors-bad_label": str(v), "errors-mixed_class_start": "every rank",
                    "errors-gap": "tile"}[name]
        if expected not in msg:
            raise AssertionError(f"message lacks {expected!r}: {msg}") from None
        return
    raise AssertionError("no ValueError raised")


def _count_collectives(world: int, rank: int) -> dict:
    """Collective calls per forward and backward, counted by wrapping torch.distributed."""
    names = ("all_reduce", "all_gather", "all_gather_into_tensor", "broadcast",
             "reduce_scatter", "reduce_scatter_tensor", "all_to_all", "send", "recv", "barrier")
    counts: dict[str, int] = {}
    originals = {n: getattr(dist, n) for n in names}

    def wrap(n):
        def counted(*args, **kwargs):
            counts[n] = counts.get(n, 0) + 1
            return originals[n](*args, **kwargs)
        return counted

    def measure(fn):
        counts.clear()
        out = fn()
        return dict(counts), out

    rng = np.random.default_rng(rank)
    width, n, d = 3 + rank, 10, 4
    res = {}
    for n_ in names:
        setattr(dist, n_, wrap(n_))
    try:
        x = torch.tensor(rng.normal(size=(n, width)), requires_grad=True)
        y = torch.arange(n) % (sum(3 + r for r in range(world)))
        opts = dict(weight=torch.ones(width), label_smoothing=0.1, z_loss=0.01, softcap=5.0)
        res["ce_forward"], loss = measure(lambda: class_parallel_cross_entropy(x, y, **opts))
        res["ce_backward"], _ = measure(lambda: loss.backward())
        h = torch.tensor(rng.normal(size=(n, d)), requires_grad=True)
        w = torch.tensor(rng.normal(size=(width, d)), requires_grad=True)
        for red in ("mean", "none"):
            res[f"linear_{red}_forward"], loss = measure(
                lambda: class_parallel_linear_cross_entropy(
                    h, w, y, chunk_size=4, reduction=red, **opts
                )
            )
            res[f"linear_{red}_backward"], _ = measure(lambda: loss.sum().backward())
        res["linear_eval_forward"], _ = measure(
            lambda: class_parallel_linear_cross_entropy(h.detach(), w.detach(), y, chunk_size=4)
        )
    finally:
        for n_, f in originals.items():
            setattr(dist, n_, f)
    return res


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    torch.set_num_threads(1)  # the test machine is shared
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    results = {}
    for name in case_names(world):
        try:
            if name == "count":
                results[name] = {"ok": True, "counts": _count_collectives(world, rank)}
                continue
            if name.startswith("errors-"):
                _run_errors(name, world, rank)
            else:
                _run_case(name, world, rank)
            results[name] = {"ok": True}
        except Exception as exc:  # recorded and reported by the pytest item
            results[name] = {"ok": False, "error": f"{exc!r}\n{traceback.format_exc()}"}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_ranks(worker, args: tuple, *, nprocs: int, deadline_s: float) -> None:
    """Run ``worker(rank, *args)`` on ``nprocs`` spawned processes; wait up to ``deadline_s`` seconds, then
    kill what is left (a hung collective must not hang the suite). The workers report through files: a
    rank that died or missed the deadline leaves none, which the caller's records show."""
    import time

    ctx = mp.start_processes(worker, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + deadline_s
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                break
    except mp.ProcessRaisedException as exc:  # a worker error outside the scenario
        pytest.fail(str(exc))
    except mp.ProcessExitedException:  # e.g. gloo's SIGABRT; the records say where
        pass
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join()


def record_result(result) -> dict:
    """A case's ``(loss, {name: gradient})`` as JSON: dtypes, shapes and float64 values."""
    loss, grads = result
    return {
        "dtype": str(loss.dtype),
        "loss": loss.detach().double().reshape(-1).tolist(),
        "grads": {
            k: {"dtype": str(g.dtype), "shape": list(g.shape), "values": g.double().reshape(-1).tolist()}
            for k, g in grads.items()
        },
    }


def _recording_worker(rank: int, port: int, out_dir: str, module: str, world: int, gloo_timeout_s: float) -> None:
    """Run every case of ``module``'s ``CASES`` (name -> ``case(rank) -> (loss, grads)``) on this rank and
    record each outcome, or what it raised, in ``rank<r>.json``."""
    import importlib

    cases = importlib.import_module(module).CASES
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=gloo_timeout_s),
    )
    records = {}
    path = os.path.join(out_dir, f"rank{rank}.json")
    for name, case in cases.items():
        try:
            records[name] = record_result(case(rank))
        except Exception as exc:  # recorded; the tests assert on it
            records[name] = {"raised": type(exc).__name__, "message": str(exc)}
        # Rewritten whole after every case: a rank killed later keeps what it recorded.
        with open(path + ".tmp", "w") as f:
            json.dump(records, f)
        os.replace(path + ".tmp", path)
    # No destroy_process_group: after a failed collective it may block.


def recorded_cases(module: str, out_dir, *, world: int, gloo_timeout_s: float, deadline_s: float) -> list[dict]:
    """Each rank's records of the cases of test module ``module`` (its ``CASES``), run on ``world`` gloo ranks;
    a rank that died or missed the deadline has an empty or partial record."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is unavailable")
    spawn_ranks(_recording_worker, (_free_port(), str(out_dir), module, world, gloo_timeout_s), nprocs=world,
                deadline_s=deadline_s)
    paths = [os.path.join(str(out_dir), f"rank{r}.json") for r in range(world)]
    return [json.loads(open(p).read()) if os.path.exists(p) else {} for p in paths]


def returned(records: list[dict], name: str) -> list[dict]:
    """Every rank's record of ``name``, which must have returned."""
    recs = [r.get(name, {"raised": "no record"}) for r in records]
    for rank, rec in enumerate(recs):
        assert "raised" not in rec, (name, rank, rec)
    return recs


@pytest.fixture(scope="module", params=[2, 3], ids=["world2", "world3"])
def group_results(request, tmp_path_factory):
    world = request.param
    out = tmp_path_factory.mktemp(f"world{world}")
    mp.start_processes(_worker, args=(world, _free_port(), str(out)), nprocs=world,
                       start_method="spawn")
    ranks = []
    for r in range(world):
        with open(out / f"rank{r}.json") as f:
            ranks.append(json.load(f))
    return world, ranks


ALL_CASES = sorted((set(case_names(2)) | set(case_names(3))) - {"count"})


@pytest.mark.parametrize("case", ALL_CASES)
def test_matches_single_process(group_results, case):
    world, ranks = group_results
    if case not in case_names(world):
        pytest.skip(f"layout not used with {world} ranks")
    failed = [f"rank {r}: {res[case]['error']}" for r, res in enumerate(ranks)
              if not res[case]["ok"]]
    assert not failed, "\n".join(failed)


def test_collective_count(group_results):
    """Forward: 2 all-reduces per row block; backward: none; linear: + 1 for grad_hidden."""
    world, ranks = group_results
    for r, res in enumerate(ranks):
        assert res["count"]["ok"], res["count"]
        c = res["count"]["counts"]
        chunks = 3  # 10 rows in chunks of 4
        assert c["ce_forward"] == {"all_reduce": 2}, (r, c)
        assert c["ce_backward"] == {}, (r, c)
        assert c["linear_mean_forward"] == {"all_reduce": 2 * chunks + 1}, (r, c)
        assert c["linear_mean_backward"] == {}, (r, c)
        assert c["linear_none_forward"] == {"all_reduce": 2 * chunks}, (r, c)
        assert c["linear_none_backward"] == {"all_reduce": 1}, (r, c)
        assert c["linear_eval_forward"] == {"all_reduce": 2 * chunks}, (r, c)


# --------------------------------------------------------------------------- single process


def test_without_process_group_is_the_full_loss():
    """No initialised group: one rank holding every class, no collectives."""
    assert not dist.is_initialized()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7))
    y = np.array([0, 6, -100, 3, 3])
    w = rng.uniform(0.5, 2, 7)
    ref_loss, ref_grad = sk.cross_entropy_and_grad(x, y, weight=w, label_smoothing=0.1)
    xt = torch.tensor(x, requires_grad=True)
    loss = class_parallel_cross_entropy(
        xt, torch.tensor(y), weight=torch.tensor(w), label_smoothing=0.1
    )
    loss.backward()
    np.testing.assert_allclose(float(loss.detach()), ref_loss, rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("linear", [False, True], ids=["logits", "linear"])
def test_float32_softcap_gradient_where_tanh_saturates(linear):
    import oracle

    x, y, want = oracle.saturated_softcap_case(np.random.default_rng(4))
    if linear:  # logits = hidden @ I.T = x exactly; dloss/dhidden = dloss/dlogits
        xt = torch.tensor(x, requires_grad=True)
        eye = torch.eye(x.shape[1], dtype=torch.float32)
        loss = class_parallel_linear_cross_entropy(xt, eye, torch.tensor(y), softcap=30.0, reduction="sum")
    else:
        xt = torch.tensor(x, requires_grad=True)
        loss = class_parallel_cross_entropy(xt, torch.tensor(y), softcap=30.0, reduction="sum")
    loss.backward()
    np.testing.assert_allclose(xt.grad.numpy(), want, rtol=1e-4, atol=0)


def test_batch_dims_and_dtype():
    x = torch.randn(2, 3, 5, dtype=torch.bfloat16, requires_grad=True)
    y = torch.randint(0, 5, (2, 3))
    loss = class_parallel_cross_entropy(x, y, reduction="none")
    assert loss.shape == (2, 3) and loss.dtype == torch.bfloat16
    loss.sum().backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.shape == x.shape


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"weight": torch.ones(3)}, ValueError, r"this rank's slice"),
        ({"reduction": "avg"}, ValueError, "reduction"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ({"class_start": -1}, ValueError, "class_start"),
        ({"class_start": 1.5}, TypeError, "class_start"),
        ({"axis": 0}, TypeError, "axis"),
    ],
)
def test_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        class_parallel_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 1]), **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"class index 9 at position \[1\]"):
        class_parallel_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 9]))
    with pytest.raises(TypeError, match="floating"):
        class_parallel_cross_entropy(torch.zeros(2, 4, dtype=torch.int64), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="ignore_index=1 is not supported with probability"):
        class_parallel_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), ignore_index=1)
    with pytest.raises(ValueError, match="share D"):
        class_parallel_linear_cross_entropy(
            torch.zeros(2, 3), torch.zeros(4, 5), torch.tensor([0, 1])
        )
    with pytest.raises(TypeError, match="same dtype"):
        class_parallel_linear_cross_entropy(
            torch.zeros(2, 3), torch.zeros(4, 3, dtype=torch.float64), torch.tensor([0, 1])
        )


def test_double_backward_raises_instead_of_a_wrong_second_derivative():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 1])
    cases = [
        (lambda: class_parallel_cross_entropy(x, y), (x,)),
        (lambda: class_parallel_linear_cross_entropy(h, w, y, reduction="none").sum(), (h, w)),
    ]
    for make_loss, inputs in cases:
        with pytest.raises(RuntimeError, match="does not support double backward"):
            torch.autograd.grad(make_loss(), inputs, create_graph=True)
        grads = torch.autograd.grad(make_loss(), inputs)  # a plain backward still works
        assert all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_single_rank_negative_weights_and_signed_soft_targets_match_torch(soft, smoothing):
    """torch accepts class weights from randn and targets that are not distributions; so does this path."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(5, dtype=torch.float64, generator=g)
    t = torch.randn(6, 5, dtype=torch.float64, generator=g) if soft else torch.tensor([0, 1, 2, 3, 4, 1])
    ours = class_parallel_cross_entropy(x, t, weight=w, label_smoothing=smoothing)
    ref = torch.nn.functional.cross_entropy(x, t, weight=w, label_smoothing=smoothing)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0])


# --------------------------------------------------------------------------- the README's example


EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "class_parallel.py")


def _example_losses(*launcher: str, single: bool = False) -> list[tuple[float, float]]:
    """(loss, mean of the last 5) at each printed step of examples/class_parallel.py, run small."""
    import re
    import subprocess
    import sys

    small = ["--classes", "3000", "--batch", "64", "--steps", "20", "--threads", "1", *(["--single"] if single else [])]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, *launcher, EXAMPLE, *small], capture_output=True, text=True,
                         timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    return [(float(a), float(b)) for a, b in re.findall(r"loss (\S+)  mean of last \d+ (\S+)", res.stdout)]


def test_readme_example_two_ranks_print_the_single_process_losses():
    """The README: both runs start from the same weights and see the same batches, so they print
    the same losses, and the loss falls (from about log V at the start)."""
    single = _example_losses(single=True)
    ranks = _example_losses("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")
    assert len(single) == len(ranks) == 5  # steps 1, 5, 10, 15, 20
    np.testing.assert_allclose(ranks, single, rtol=1e-4)
    assert abs(single[0][0] - np.log(3000)) < 0.5
    assert single[-1][1] < single[0][0] - 1.0
