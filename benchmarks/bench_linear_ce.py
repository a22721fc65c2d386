"""Fused linear + cross-entropy: time and peak extra memory, forward + backward.

Claim (issue 4): softmaxkit's chunked linear cross-entropy runs within 1.05x
of the three GEMMs a dense forward + backward needs, with at most 64 MiB of
memory beyond the gradient outputs, and bfloat16 is >= 3x faster than
float32 with a loss error no worse than torch's dense bfloat16 error.

Every variant runs in a fresh subprocess (so one variant's allocator state or
thread pools cannot affect another, and peak memory is that variant's own),
in the same run, on the same inputs (seeded):

* ``floor``      the three dense GEMMs (logits, grad_hidden, grad_weight) into
  preallocated outputs, no CE;
* ``floor_chunks`` the same three GEMMs over token chunks of the rows
  softmaxkit's memory budget allows (``softmaxkit.linear.chunk_rows``), no CE:
  what any exact token-chunked pass within the budget pays at least (each
  chunk's GEMMs stream all of ``W`` and ``grad_weight`` again);
* ``dense``      ``F.cross_entropy(F.linear(h, W), y)`` + backward;
* ``torch_lce``  torch's ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``
  (skipped if this torch lacks it);
* ``cce``        ``cut_cross_entropy.linear_cross_entropy(..., impl="torch_compile")``
  (skipped if not installed or if it fails on this machine);
* ``sk``         ``softmaxkit.linear_cross_entropy`` (float32): token chunks, or
  vocabulary tiles where chunks would be thin (``softmaxkit.linear.plan_pass``);
* ``sk_chunks``  the same forced to token chunks (``chunk_size=`` the budget's
  rows), to compare the two passes;
* ``sk_bf16``    the same on bfloat16 inputs (on a CPU without bf16 GEMMs:
  float32 GEMMs over vocabulary tiles, ``softmaxkit.linear.plan_upcast_tiles``);
  ``sk_bf16_chunks`` forced to token chunks, which upcast all of ``W`` and
  accumulate its gradient in float32; ``dense_bf16`` is torch dense in
  bfloat16, the error bar for both;
* ``dense_eval`` / ``sk_eval``  the loss alone under ``torch.no_grad()`` with
  inputs that require grad (an evaluation loop over a model's parameters):
  torch dense, and softmaxkit, which makes no gradient there (it made the
  "mean" gradients eagerly and threw them away: 3.9 s for 1.0 s at
  N=4096, D=256, V=32000 before).

Time is the median over ``--repeats`` runs after one warm-up. Peak extra
memory is the largest resident-set growth seen by a 0.5 ms sampler during
the timed runs, minus the gradient outputs (``grad_hidden`` + ``grad_weight``
in the input dtype) for the variants that call backward and so must produce
them (:func:`makes_gradients`); the ``*_eval`` variants make none, so their
figure is the whole growth (audit: it was subtracted from them too, and
``sk_eval`` printed 16.7 MiB where the RSS grew 51.9 MiB). Loss error is
relative to a float64 reference computed by softmaxkit's chunked NumPy path.

Goals checked per shape, for the variants that ran (``goals met: N/M`` last,
read by ``softmaxkit bench``; no such line when ``--variants`` allows none): ``sk`` within :data:`GOAL_FLOOR` x ``floor``;
``sk`` and ``sk_bf16`` at most :data:`GOAL_EXTRA_MIB` MiB of peak extra
memory; ``sk_bf16`` at least :data:`GOAL_BF16_SPEEDUP` x faster than ``sk``,
with a loss error no larger than ``dense_bf16``'s.

Usage::

    python benchmarks/bench_linear_ce.py            # N=4096,D=1024,V=32768 and N=2048,D=1024,V=131072
    python benchmarks/bench_linear_ce.py --quick    # small shapes, 1 repeat: checks that it runs
    python benchmarks/bench_linear_ce.py --threads 2 --variants floor,sk
    python benchmarks/bench_linear_ce.py --variants floor,sk --chunk-mib 48   # tune the budget

``--interleaved`` times the variants in one process instead, alternating
them round by round (no memory column): on a machine whose speed drifts, the
drift then hits every variant alike::

    python benchmarks/bench_linear_ce.py --interleaved --variants floor,sk,sk_chunks,cce --shape 2048,1024,131072

Caveats: on a shared machine the times are noisy; compare ratios from one run.
Whether bf16 is fast depends on the CPU: with AMX or AVX512-BF16 the GEMMs
run in bf16, otherwise softmaxkit runs them in float32 (see
``softmaxkit.torch._linear``) and bf16 cannot be faster than float32.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

SHAPES = [(4096, 1024, 32768), (2048, 1024, 131072)]
QUICK_SHAPES = [(512, 256, 8192), (256, 256, 32768)]
VARIANTS = [
    "floor", "floor_chunks", "dense", "torch_lce", "cce", "sk", "sk_chunks", "dense_bf16", "sk_bf16",
    "sk_bf16_chunks", "dense_eval", "sk_eval",
]
MiB = 1 << 20

#: The claim's goals (module docstring).
GOAL_FLOOR, GOAL_EXTRA_MIB, GOAL_BF16_SPEEDUP = 1.05, 64.0, 3.0


def makes_gradients(variant: str) -> bool:
    """Whether ``variant`` calls backward, so that its RSS growth holds the gradient outputs.

    The floors write into preallocated outputs and the ``*_eval`` variants run under
    ``torch.no_grad()``: nothing is subtracted from theirs.
    """
    return not (variant.startswith("floor") or variant.endswith("_eval"))


# --------------------------------------------------------------------------- worker side


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """Largest RSS seen while active (a thread reading /proc/self/statm every 0.5 ms)."""

    def __enter__(self):
        self.peak = _rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.0005)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _inputs(n, d, v, dtype):
    import torch

    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, d, generator=g)
    w = torch.randn(v, d, generator=g) / d**0.5  # logits of unit scale
    y = torch.randint(0, v, (n,), generator=g)
    return h.to(dtype), w.to(dtype), y


def _gemm_floor_step(h, w, rows):
    """The three GEMMs of a forward + backward over token chunks of ``rows``
    (all ``N`` tokens: the dense floor), into outputs preallocated so that the
    floor is the GEMM arithmetic, not page faults. The logits stand in for
    their gradient; ``grad_weight`` accumulates over chunks as every chunked
    pass must."""
    import torch

    n = h.shape[0]
    logits = torch.empty(rows, w.shape[0], dtype=h.dtype)
    gh, gw = torch.empty_like(h), torch.empty_like(w)

    def step():
        for start in range(0, n, rows):
            hc = h[start : start + rows]
            lc = logits[: hc.shape[0]]
            torch.mm(hc, w.T, out=lc)  # GEMM 1: logits
            torch.mm(lc, w, out=gh[start : start + rows])  # GEMM 2: grad_hidden
            if start == 0:
                torch.mm(lc.T, hc, out=gw)  # GEMM 3: grad_weight
            else:
                gw.addmm_(lc.T, hc)
        return float("nan")
    return step


def _step_fn(variant, h, w, y):
    """A callable running forward + backward and returning the loss (a float)."""
    import torch
    import torch.nn.functional as F

    if variant in ("floor", "floor_chunks"):
        from softmaxkit.linear import chunk_rows

        n = h.shape[0]
        rows = n if variant == "floor" else chunk_rows(n, w.shape[0], h.element_size())
        return _gemm_floor_step(h.detach(), w.detach(), rows)
    if variant in ("dense", "dense_bf16"):
        def step():
            loss = F.cross_entropy(F.linear(h, w), y)
            loss.backward()
            return float(loss)
        return step
    if variant == "torch_lce":
        if not hasattr(F, "linear_cross_entropy") or not hasattr(torch.nn, "LinearCrossEntropyOptions"):
            raise RuntimeError(f"torch {torch.__version__} has no F.linear_cross_entropy")
        opts = torch.nn.LinearCrossEntropyOptions()

        def step():
            loss = F.linear_cross_entropy(h, w, y, options=opts)
            loss.backward()
            return float(loss)
        return step
    if variant == "cce":
        from cut_cross_entropy import linear_cross_entropy as cce

        def step():
            loss = cce(h, w, y, impl="torch_compile")
            loss.backward()
            return float(loss)
        return step
    if variant in ("dense_eval", "sk_eval"):
        import softmaxkit.torch as skt

        def step():
            with torch.no_grad():  # evaluation: the loss alone, though h and w require grad
                if variant == "dense_eval":
                    return float(F.cross_entropy(F.linear(h, w), y))
                return float(skt.linear_cross_entropy(h, w, y))
        return step
    if variant in ("sk", "sk_bf16", "sk_chunks", "sk_bf16_chunks"):
        import softmaxkit.torch as skt
        from softmaxkit.linear import chunk_rows

        # *_chunks: token chunks even where softmaxkit would pick vocabulary
        # tiles, of the rows the budget allows for float32 logits
        chunk = chunk_rows(h.shape[0], w.shape[0], 4) if variant.endswith("_chunks") else None

        def step():
            loss = skt.linear_cross_entropy(h, w, y, chunk_size=chunk)
            loss.backward()
            return float(loss)
        return step
    raise ValueError(f"unknown variant {variant!r}")


def _variant_step(variant, n, d, v):
    """``(h, w, step)``: the variant's seeded inputs (bf16 for ``*_bf16``; ``h``
    and ``w`` require grad except for the floor) and its forward+backward."""
    import torch

    dtype = torch.bfloat16 if "bf16" in variant else torch.float32
    h, w, y = _inputs(n, d, v, dtype)
    if not variant.startswith("floor"):
        h.requires_grad_()
        w.requires_grad_()
    return h, w, _step_fn(variant, h, w, y)


def worker(variant, n, d, v, repeats, threads):
    import torch

    import softmaxkit.linear

    torch.set_num_threads(threads)
    if os.environ.get("SK_CHUNK_MIB"):
        softmaxkit.linear.CHUNK_BYTES = int(float(os.environ["SK_CHUNK_MIB"]) * MiB)
    h, w, step = _variant_step(variant, n, d, v)
    loss = step()  # warm-up: JIT / compile, thread pools, allocator
    h.grad = w.grad = None
    outputs = (n * d + v * d) * h.element_size()
    base = _rss()
    times = []
    with PeakSampler() as sampler:
        for _ in range(repeats):
            h.grad = w.grad = None
            t0 = time.perf_counter()
            loss = step()
            times.append(time.perf_counter() - t0)
    extra = sampler.peak - base - (outputs if makes_gradients(variant) else 0)
    return {"time": statistics.median(times), "times": times, "peak_extra": extra, "loss": loss}


def interleaved(variants, n, d, v, rounds, threads):
    """Median seconds per variant, all in this process: one call of each per round, in turn."""
    import torch

    torch.set_num_threads(threads)
    steps = {}
    for variant in variants:
        h, w, step = _variant_step(variant, n, d, v)

        def call(step=step, h=h, w=w):
            h.grad = w.grad = None
            step()

        try:
            call()  # warm-up
        except Exception as exc:  # a peer missing or failing here: report, keep the rest
            print(f"({variant} skipped: {exc})")
            continue
        steps[variant] = call
    times = {k: [] for k in steps}
    for _ in range(rounds):
        for k, call in steps.items():
            t0 = time.perf_counter()
            call()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(t) for k, t in times.items()}


def reference_loss(n, d, v, threads):
    """float64 loss of the same inputs (softmaxkit's chunked NumPy path: no (N, V) array)."""
    import torch

    import softmaxkit as sk

    torch.set_num_threads(threads)
    h, w, y = _inputs(n, d, v, torch.float32)
    return {"loss": float(sk.linear_cross_entropy(h.double().numpy(), w.double().numpy(), y.numpy()))}


def reference_loss_bf16(n, d, v, threads):
    """float64 loss of the bf16-rounded inputs: the target for the bf16 variants."""
    import torch

    import softmaxkit as sk

    torch.set_num_threads(threads)
    h, w, y = _inputs(n, d, v, torch.bfloat16)
    return {"loss": float(sk.linear_cross_entropy(h.double().numpy(), w.double().numpy(), y.numpy()))}


# --------------------------------------------------------------------------- driver side


def run_subprocess(args, kind, n, d, v, timeout):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    if args.chunk_mib:
        env["SK_CHUNK_MIB"] = str(args.chunk_mib)
    cmd = [sys.executable, __file__, "--worker", kind, str(n), str(d), str(v), str(args.repeats), str(args.threads)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:120]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _rel_err(r: dict, target: dict) -> float | None:
    """``r``'s loss error relative to ``target``'s loss; None where either is missing."""
    if "loss" not in r or "loss" not in target:
        return None
    return abs(r["loss"] - target["loss"]) / abs(target["loss"])


def speed_words(t: float, ref: float) -> str:
    """``"1.50x faster"`` or ``"1.12x slower"``: a time ``t`` against ``ref``, the ratio always >= 1
    (audit: ``"0.89x faster than sk fp32"`` was printed for a bf16 run slower than float32)."""
    return f"{ref / t:.2f}x faster" if t <= ref else f"{t / ref:.2f}x slower"


def shape_goals(results: dict, ref: dict, ref_bf16: dict) -> list[tuple[bool, str]]:
    """``(met, text)`` for each goal that the variants run at one shape allow checking."""
    ok = {k: r for k, r in results.items() if "error" not in r}
    checks = []
    if "sk" in ok and "floor" in ok:
        ratio = ok["sk"]["time"] / ok["floor"]["time"]
        checks.append((ratio <= GOAL_FLOOR, f"sk {ratio:.2f}x floor <= {GOAL_FLOOR}x"))
    for k in ("sk", "sk_bf16"):
        if k in ok:
            mib = ok[k]["peak_extra"] / MiB
            checks.append((mib <= GOAL_EXTRA_MIB, f"{k} peak extra {mib:.1f} MiB <= {GOAL_EXTRA_MIB:.0f} MiB"))
    if "sk" in ok and "sk_bf16" in ok:
        speedup = ok["sk"]["time"] / ok["sk_bf16"]["time"]
        checks.append((speedup >= GOAL_BF16_SPEEDUP, f"sk_bf16 speed-up over sk (sk time / sk_bf16 time) "
                       f"{speedup:.2f}x >= {GOAL_BF16_SPEEDUP}x"))
    if "sk_bf16" in ok and "dense_bf16" in ok:
        ours, torch_err = _rel_err(ok["sk_bf16"], ref_bf16), _rel_err(ok["dense_bf16"], ref_bf16)
        if ours is not None and torch_err is not None:
            checks.append((ours <= torch_err, f"sk_bf16 loss error {ours:.3e} <= dense_bf16's {torch_err:.3e}"))
    return checks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes, 1 repeat")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--shape", action="append", default=None, help="N,D,V (repeatable)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per variant")
    p.add_argument("--chunk-mib", type=float, default=None,
                   help="softmaxkit chunk budget in MiB (default: softmaxkit.linear.CHUNK_BYTES)")
    p.add_argument("--interleaved", action="store_true",
                   help="time all variants in one process, alternating (no memory figures)")
    p.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        kind, n, d, v, repeats, threads = args.worker
        n, d, v, repeats, threads = int(n), int(d), int(v), int(repeats), int(threads)
        if kind == "reference":
            out = reference_loss(n, d, v, threads)
        elif kind == "reference_bf16":
            out = reference_loss_bf16(n, d, v, threads)
        else:
            out = worker(kind, n, d, v, repeats, threads)
        print(json.dumps(out))
        return

    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    shapes = [tuple(int(s) for s in sh.split(",")) for sh in args.shape] if args.shape else (
        QUICK_SHAPES if args.quick else SHAPES
    )
    variants = [v for v in args.variants.split(",") if v]
    if args.interleaved:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ.setdefault(var, str(args.threads))
        print(f"linear cross-entropy, forward + backward, {args.threads} threads, interleaved, "
              f"median of {args.repeats} rounds")
        for n, d, v in shapes:
            times = interleaved(variants, n, d, v, args.repeats, args.threads)
            floor = times.get("floor")
            print(f"\nN={n} D={d} V={v}\n{'variant':<14}{'time s':>9}{'x floor':>9}")
            for k, t in times.items():
                print(f"{k:<14}{t:>9.3f}{(f'{t / floor:.2f}' if floor else '-'):>9}")
        return
    print(f"linear cross-entropy, forward + backward, {args.threads} threads, median of {args.repeats}")
    goals = []
    for n, d, v in shapes:
        ref = run_subprocess(args, "reference", n, d, v, args.timeout)
        ref_bf16 = run_subprocess(args, "reference_bf16", n, d, v, args.timeout) if any(
            "bf16" in x for x in variants) else {}
        results = {k: run_subprocess(args, k, n, d, v, args.timeout) for k in variants}
        for name, r in (("reference", ref), ("reference_bf16", ref_bf16)):
            if "error" in r:
                print(f"({name} loss failed: {r['error']}; no loss errors for it)")
        floor = results.get("floor", {}).get("time")
        sk32 = results.get("sk", {}).get("time")
        print(f"\nN={n} D={d} V={v}   (dense float32 logits: {n * v * 4 / MiB:.0f} MiB)")
        print(f"{'variant':<14}{'time s':>9}{'x floor':>9}{'peak extra MiB':>16}{'loss rel err':>14}  note")
        for k in variants:
            r = results[k]
            if "error" in r:
                print(f"{k:<14}{'-':>9}{'-':>9}{'-':>16}{'-':>14}  skipped: {r['error']}")
                continue
            ratio = f"{r['time'] / floor:.2f}" if floor else "-"
            target = ref_bf16 if "bf16" in k else ref
            rel = None if k.startswith("floor") else _rel_err(r, target)
            err = "-" if rel is None else f"{rel:.1e}"
            note = ""
            if k == "sk_bf16" and sk32:
                note = f"{speed_words(r['time'], sk32)} than sk fp32"
            if k.startswith("floor"):
                note = "outputs preallocated before measuring; memory not comparable"
            elif k.endswith("_eval"):
                note = "no gradients: whole RSS growth"
            print(f"{k:<14}{r['time']:>9.3f}{ratio:>9}{r['peak_extra'] / MiB:>16.1f}{err:>14}  {note}")
        goals += [(met, f"N={n} D={d} V={v}: {text}") for met, text in shape_goals(results, ref, ref_bf16)]
    print("\npeak extra = RSS growth beyond the gradient outputs (grad_hidden + grad_weight) for the variants")
    print("that call backward; the whole RSS growth for the *_eval variants, which make no gradients.")
    print("bf16 loss errors are against float64 on the bf16-rounded inputs.")
    print()
    if not goals:
        # No goals line: `softmaxkit bench` would count "0/0" as every goal met.
        print("(no goal checked: they need floor, sk, sk_bf16 and dense_bf16 among --variants)")
        return
    for met, text in goals:
        print(f"[{'ok' if met else 'MISS'}] {text}")
    # The line `softmaxkit bench` reads into its summary (a goal not met is a result, not a crash).
    print(f"goals met: {sum(met for met, _ in goals)}/{len(goals)}")


if __name__ == "__main__":
    main()
