"""Train a model whose 50,000-class output layer is split across ranks.

Each rank holds the same small trunk and a slice of the head's classes. The
loss is :func:`softmaxkit.torch.distributed.class_parallel_linear_cross_entropy`:
exactly the full-softmax loss, computed without any rank holding full-width
(or even ``(tokens, V_local)``) logits. Its gradient of the trunk output is
all-reduced inside the loss, so the replicated trunk stays identical on every
rank without DDP.

Run, on one machine with two processes::

    torchrun --nproc-per-node 2 examples/class_parallel.py

and the same model in a single process, for comparison::

    python examples/class_parallel.py --single

Both start from the same weights and see the same batches, so they print the
same losses (up to float32 rounding) and differ only in time. On GPUs
(``--device cuda``) the ranks talk over NCCL; that path is untested here.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import torch
import torch.distributed as dist

from softmaxkit.torch import linear_cross_entropy
from softmaxkit.torch.distributed import class_parallel_linear_cross_entropy


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--single", action="store_true", help="one process, the whole head")
    p.add_argument("--classes", type=int, default=50_000)
    p.add_argument("--features", type=int, default=32, help="input features")
    p.add_argument("--hidden", type=int, default=64, help="width of the head's input")
    p.add_argument("--batch", type=int, default=256, help="examples per step")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def class_slice(n_classes: int, rank: int, world: int) -> slice:
    """Rank ``r``'s classes: consecutive blocks, the first ``n % world`` one wider."""
    base, extra = divmod(n_classes, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


class Task:
    """A synthetic task with learnable structure: ``x = prototype[y] + noise``,
    with Zipf-distributed classes (as words are), so the loss first drops to
    the class frequencies' entropy and then further as the features help."""

    def __init__(self, args, device):
        g = torch.Generator().manual_seed(args.seed + 1)
        self.prototypes = torch.randn(args.classes, args.features, generator=g)
        freq = 1.0 / torch.arange(1, args.classes + 1, dtype=torch.float64) ** 1.1
        self.freq = freq / freq.sum()
        self.args, self.device = args, device

    def batch(self, step: int):
        # Same generator state on every rank: every rank sees the same batch.
        g = torch.Generator().manual_seed(10_000 + step)
        y = torch.multinomial(self.freq, self.args.batch, replacement=True, generator=g)
        x = self.prototypes[y] + 0.5 * torch.randn(self.args.batch, self.args.features, generator=g)
        return x.to(self.device), y.to(self.device)


def build(args, device, rows: slice):
    """The trunk, and rows ``rows`` of a head initialised as the full one would be."""
    torch.manual_seed(args.seed)
    trunk = torch.nn.Sequential(
        torch.nn.Linear(args.features, 128), torch.nn.GELU(), torch.nn.Linear(128, args.hidden)
    )
    g = torch.Generator().manual_seed(args.seed + 2)
    full_weight = torch.randn(args.classes, args.hidden, generator=g) / args.hidden**0.5
    # Parameters are made on the device: .to() of a Parameter is no longer a leaf.
    weight = torch.nn.Parameter(full_weight[rows].to(device))
    bias = torch.nn.Parameter(torch.zeros(weight.shape[0], device=device))
    return trunk.to(device), weight, bias


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed = not args.single
    device = torch.device(
        f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if args.device == "cuda" else "cpu"
    )
    if distributed and "RANK" not in os.environ:
        raise SystemExit("no ranks to join: start this under torchrun "
                         "(torchrun --nproc-per-node 2 examples/class_parallel.py), or pass --single")
    if distributed:
        # torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT.
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    rows = class_slice(args.classes, rank, world)
    trunk, weight, bias = build(args, device, rows)
    # Adam is elementwise, so Adam on each slice of the head is Adam on the whole head.
    opt = torch.optim.Adam([*trunk.parameters(), weight, bias], lr=args.lr)
    task = Task(args, device)
    if rank == 0:
        classes = range(args.classes)
        widths = [len(classes[class_slice(args.classes, r, world)]) for r in range(world)]
        mode = f"{world} ranks, classes split {widths}" if distributed else "single process"
        print(
            f"{args.classes} classes, batch {args.batch}, hidden {args.hidden}, {mode}, "
            f"{torch.get_num_threads()} thread(s) per process"
        )

    start = warm = time.perf_counter()
    cpu_start = time.process_time()
    losses = []
    for step in range(1, args.steps + 1):
        if step == 2:
            # Step 1 pays one-off costs (numba JIT in the single-process loss, allocator).
            warm, cpu_start = time.perf_counter(), time.process_time()
        x, y = task.batch(step)
        h = trunk(x)
        if distributed:
            loss = class_parallel_linear_cross_entropy(h, weight, y, local_bias=bias)
        else:
            loss = linear_cross_entropy(h, weight, y, bias=bias)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if rank == 0 and (step == 1 or step % 5 == 0 or step == args.steps):
            # One batch of 256 Zipf-distributed classes is a noisy estimate; the mean of the last
            # 5 steps shows the trend.
            recent = losses[-5:]
            print(f"step {step:4d}  loss {losses[-1]:.4f}  mean of last {len(recent)} {sum(recent) / len(recent):.4f}"
                  f"  {time.perf_counter() - start:7.2f} s")
    elapsed = time.perf_counter() - start
    per_step = (time.perf_counter() - warm) / max(args.steps - 1, 1)
    # CPU seconds of all ranks together: on a shared machine, wall time also
    # measures how much of the CPU each process was given.
    cpu = torch.tensor([time.process_time() - cpu_start], dtype=torch.float64, device=device)
    if distributed:
        dist.all_reduce(cpu)
    if rank == 0:
        print(
            f"{args.steps} steps in {elapsed:.2f} s; after step 1: {1000 * per_step:.0f} ms/step, "
            f"{cpu.item():.1f} CPU s summed over {world} process(es)"
        )
    if distributed:
        # Let go of the last step's graph (its tensors went through gloo) and wait for every rank before
        # tearing the group down: without this, 2 of 7 two-rank runs here ended in "terminate called
        # without an active exception" (SIGABRT) after their last line, a torch/gloo shutdown race;
        # with it, 0 of 20.
        del loss, h, opt
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
