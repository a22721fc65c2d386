"""Ranks that disagree must all raise one clear error, never hang or mispair collectives.

Each scenario spawns its own group of 2 CPU gloo processes (a failed scenario
may leave a group broken) with a short gloo timeout, and the test waits for
them with a deadline, killing them if it passes: a regression shows up as a
failure, never as a hung test run. Each rank records the error it raised (or
the loss it returned); the test asserts that every rank raised the expected
message.
"""

from __future__ import annotations

import datetime
import json
import os

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

from softmaxkit.torch.distributed import (  # noqa: E402
    class_parallel_cross_entropy,
    class_parallel_linear_cross_entropy,
)

# The port helper of the main distributed tests (same process-spawning scheme).
from test_distributed import _free_port, spawn_ranks  # noqa: E402

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is unavailable", allow_module_level=True)

WORLD = 2
#: gloo's own timeout: a collective that a peer never makes fails after this.
GLOO_TIMEOUT_S = 15
#: The test's deadline for the whole group (spawn, imports, the scenario).
DEADLINE_S = 120


def _scenario(name: str, rank: int):
    """One misuse, seen from ``rank``; returns what the call returned (if anything)."""
    torch.manual_seed(0)
    n, d, v = 6, 3, 6
    hidden = torch.randn(n, d, dtype=torch.float64)
    weight = torch.randn(v, d, dtype=torch.float64)[3 * rank : 3 * rank + 3]
    logits = torch.randn(n, v, dtype=torch.float64)[:, 3 * rank : 3 * rank + 3]
    target = torch.tensor([1, 4, 0, 5, 2, 3])
    if name.startswith("grad_hidden"):
        # Rank 1 evaluates (or froze the trunk): the grad_hidden all-reduce would
        # run on rank 0 only, and the next call's collectives would pair wrongly.
        chunk = None if name.endswith("default_chunks") else 2
        h = hidden.clone().requires_grad_(rank == 0)
        return [
            float(class_parallel_linear_cross_entropy(h, weight, target, chunk_size=chunk))
            for _ in range(2)
        ]
    if name == "rows_ce":  # rank 1 dropped its last row
        return class_parallel_cross_entropy(logits[: n - rank], target[: n - rank]).item()
    if name.startswith("rows_linear"):  # default chunks: the header travels alone
        chunk = 2 if name.endswith("chunk2") else None  # 2: same first-chunk size
        return class_parallel_linear_cross_entropy(
            hidden[: n - rank], weight, target[: n - rank], chunk_size=chunk
        ).item()
    if name == "smoothing":
        return class_parallel_cross_entropy(logits, target, label_smoothing=0.1 * (rank == 0)).item()
    if name == "target_one_rank":  # different labels, one out of range, on rank 1 only
        t = target.clone()
        t[2] = 6 + 4 * rank
        return class_parallel_cross_entropy(logits, t).item()
    if name == "bad_weight_one_rank":  # rank 1's weight slice is one too long
        return class_parallel_cross_entropy(logits, target, weight=torch.ones(3 + rank)).item()
    raise AssertionError(f"unknown scenario {name}")


def _worker(rank: int, port: int, out_dir: str, name: str) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
        timeout=datetime.timedelta(seconds=GLOO_TIMEOUT_S),
    )
    try:
        record = {"returned": repr(_scenario(name, rank))}
    except Exception as exc:  # recorded; the test asserts on it
        record = {"raised": type(exc).__name__, "message": str(exc)}
    # Written whole or not at all: a rank terminated by spawn (after the other one aborted in gloo)
    # mid-write left an empty file, which read as a broken record (seen once in CI).
    path = os.path.join(out_dir, f"rank{rank}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)
    # No destroy_process_group: after a failed collective it may block.


def _run(name: str, tmp_path) -> list[dict]:
    """Every rank's record; a rank that died or missed the deadline says so."""
    spawn_ranks(_worker, (_free_port(), str(tmp_path), name), nprocs=WORLD, deadline_s=DEADLINE_S)
    records = []
    for r in range(WORLD):
        path = tmp_path / f"rank{r}.json"
        records.append(json.loads(path.read_text()) if path.exists() else {"raised": "no record"})
    return records


def _assert_all_raise(records: list[dict], match: str, *, exc: str = "ValueError") -> None:
    for r, rec in enumerate(records):
        assert rec.get("raised") == exc and match in rec.get("message", ""), (r, records)


@pytest.mark.parametrize("chunks", ["chunk2", "default_chunks"])
def test_ranks_disagreeing_on_hidden_requires_grad_all_raise(tmp_path, chunks):
    records = _run(f"grad_hidden_{chunks}", tmp_path)
    _assert_all_raise(records, "whether hidden requires grad")
    assert "[True, False]" in records[0]["message"], records


@pytest.mark.parametrize("kind", ["linear", "linear_chunk2"])
def test_ranks_with_different_row_counts_all_raise(tmp_path, kind):
    records = _run(f"rows_{kind}", tmp_path)
    _assert_all_raise(records, "the row count N: [6, 5]")


def test_different_row_counts_in_the_plain_loss_never_return_a_loss(tmp_path):
    """The first all-reduce has sizes N + header on each rank: gloo aborts it
    (catching it would take one more collective per call). No rank may return."""
    for r, rec in enumerate(_run("rows_ce", tmp_path)):
        assert "returned" not in rec, (r, rec)


def test_ranks_with_different_label_smoothing_all_raise(tmp_path):
    _assert_all_raise(_run("smoothing", tmp_path), "label_smoothing: [0.1, 0.0]")


def test_ranks_with_different_targets_all_raise(tmp_path):
    _assert_all_raise(_run("target_one_rank", tmp_path), "the hard targets")


def test_a_local_input_error_raises_on_every_rank(tmp_path):
    records = _run("bad_weight_one_rank", tmp_path)
    assert records[1].get("raised") == "ValueError" and "weight" in records[1]["message"], records
    assert records[0].get("raised") == "ValueError", records
    assert "rank(s) [1] failed the checks of their own inputs" in records[0]["message"], records
