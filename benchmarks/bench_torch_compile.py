"""A ``torch.compile``-d training step: softmaxkit's losses vs torch's compiled dense loss.

Claim (issue 17): softmaxkit's cross-entropy and fused linear cross-entropy
compile with ``fullgraph=True`` (their CPU kernels are custom ops), and the
compiled step is not slower than torch's compiled dense loss.

The step is a small body (``tanh(Linear(x))``, a ``(N, D)`` hidden state)
followed by a ``(V, D)`` head and the loss, then ``backward``; every variant
is compiled with the same backend (Inductor by default) and ``fullgraph=True``
(a graph break would raise), and timed in the same process, round-robin (one
step of each variant per round), so drift on a shared machine hits all alike:

* ``torch_dense``  ``F.cross_entropy(head(h), y)``: torch's loss on the logits;
* ``sk_ce``        ``softmaxkit.torch.cross_entropy(head(h), y)``: same logits,
  our fused loss + gradient kernel;
* ``torch_lce``    torch's ``F.linear_cross_entropy`` (if this torch has it);
* ``sk_lce``       ``softmaxkit.torch.linear_cross_entropy(h, W, y)``: no ``(N, V)`` logits.

Each compiled step is checked against its eager twin (loss and head
gradient) before timing, and the eager step is timed in the same rounds
(``eager ms``). Times are medians over ``--repeats`` rounds after one
warm-up; compile time is reported apart (first call). ``--threads`` sets both
torch's and numba's thread counts (default: torch's own default, for both), so
torch's loss and softmaxkit's numba kernels run on the same number of cores;
both are set again after compiling, read back before timing (the run stops
if they differ) and after it, and the counts read are printed.

Usage::

    python benchmarks/bench_torch_compile.py            # N=2048, D=512, V=32768, 5 rounds
    python benchmarks/bench_torch_compile.py --quick    # N=512, D=64, V=4096, 3 rounds: checks it runs
    python benchmarks/bench_torch_compile.py --backend aot_eager
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numba
import torch
import torch.nn.functional as F

import softmaxkit.torch as skt

from _threads import capped_threads  # noqa: E402  (same folder: run as a script)


def _variants():
    out = {
        "torch_dense": lambda h, w, y: F.cross_entropy(F.linear(h, w), y),
        "sk_ce": lambda h, w, y: skt.cross_entropy(F.linear(h, w), y),
        "sk_lce": lambda h, w, y: skt.linear_cross_entropy(h, w, y),
    }
    if hasattr(F, "linear_cross_entropy"):
        out["torch_lce"] = lambda h, w, y: F.linear_cross_entropy(h, w, y)
    return out


def _make_step(loss_fn, body, head_w):
    def step(x, y):
        h = torch.tanh(body(x))
        return loss_fn(h, head_w, y)

    return step


def _run(step, x, y, params):
    for p in params:
        p.grad = None
    loss = step(x, y)
    loss.backward()
    return loss.detach()


def _set_threads(threads: int) -> None:
    """Set numba's and then torch's thread count to ``threads`` (:func:`_threads_differ` reads them back).

    numba's first: under its OpenMP threading layer, starting its pool (the first
    ``numba.set_num_threads``) sets OpenMP's default thread count, which is torch's, to the pool's
    size (audit: torch set to 1 and then numba to 1 printed "threads: torch 2, numba 1").
    """
    numba.set_num_threads(threads)
    torch.set_num_threads(threads)


def _threads_differ(threads: int, when: str) -> str | None:
    """A line saying how torch's and numba's thread counts differ from ``threads`` ``when``; None if they do not."""
    got = torch.get_num_threads(), numba.get_num_threads()
    if got == (threads, threads):
        return None
    return (f"bench_torch_compile.py: threads {when}: torch {got[0]}, numba {got[1]}, set to {threads} for both; "
            "the times would compare different core counts")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="2048,512,32768", help="N,D,V")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="inductor")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for torch and numba alike (default: torch's default, physical cores)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.shape, args.repeats = "512,64,4096", 3
    # Both libraries on the same count (audit: --threads set torch's only, and numba's kernels kept
    # every logical CPU; without --threads numba used all CPUs and torch the physical cores).
    if args.threads is not None and not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        ap.error(f"--threads {args.threads}: must be 1-{numba.config.NUMBA_NUM_THREADS} (numba's NUMBA_NUM_THREADS)")
    # The default, torch's physical-core count, can exceed numba's pool (NUMBA_NUM_THREADS=1): capped, and said.
    threads = args.threads or capped_threads([torch.get_num_threads()], script="bench_torch_compile.py")[0]
    _set_threads(threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    n, d, v = (int(s) for s in args.shape.split(","))
    torch.manual_seed(0)
    body = torch.nn.Linear(d, d)
    head_w = torch.nn.Parameter(torch.randn(v, d) * d**-0.5)
    params = [*body.parameters(), head_w]
    x = torch.randn(n, d)
    y = torch.randint(0, v, (n,))

    steps, eager_steps, compile_s = {}, {}, {}
    for name, loss_fn in _variants().items():
        eager = _make_step(loss_fn, body, head_w)
        ref_loss = _run(eager, x, y, params)
        ref_grad = head_w.grad.clone()
        compiled = torch.compile(eager, fullgraph=True, backend=args.backend)
        t0 = time.perf_counter()
        try:
            loss = _run(compiled, x, y, params)
        except Exception as exc:  # report, do not hide: a variant that cannot compile is skipped
            print(f"{name}: compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        compile_s[name] = time.perf_counter() - t0
        eager_steps[name] = eager
        torch.testing.assert_close(loss, ref_loss, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(head_w.grad, ref_grad, rtol=1e-3, atol=1e-6)
        steps[name] = compiled

    # Again after compiling, and read back: a count changed while compiling would time torch and numba
    # on different cores (refused rather than printed as like for like).
    _set_threads(threads)
    if problem := _threads_differ(threads, "before timing"):
        raise SystemExit(problem)
    times = {name: [] for name in steps}
    eager_times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            for fn, out in ((step, times), (eager_steps[name], eager_times)):
                t0 = time.perf_counter()
                _run(fn, x, y, params)
                out[name].append(time.perf_counter() - t0)

    base = statistics.median(times["torch_dense"]) if "torch_dense" in times else None
    print(f"compiled training step (fwd+bwd), backend={args.backend}, fullgraph=True, "
          f"N={n} D={d} V={v}, threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}, "
          f"median of {args.repeats}")
    print(f"{'variant':<12} {'step ms':>9} {'vs torch_dense':>15} {'eager ms':>9} {'compile s':>10}")
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = f"{med / base:.2f}x" if base else "-"
        eager = statistics.median(eager_times[name]) * 1e3
        print(f"{name:<12} {med * 1e3:9.1f} {ratio:>15} {eager:9.1f} {compile_s[name]:10.1f}")
    if problem := _threads_differ(threads, "after timing"):  # changed during the rounds: the table is suspect
        raise SystemExit(problem)


if __name__ == "__main__":
    main()
