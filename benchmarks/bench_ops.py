"""Claim: softmaxkit's CPU kernels run softmax, log-softmax and cross-entropy
forward+backward near memory speed, far ahead of torch, scipy and NumPy.

Measures, in one run and on the same arrays (float32, medians of repeats,
``time.perf_counter``, after warm-up; the calls of one shape and thread count
are timed in rounds, each round timing every call once, so that a change of
load falls on all of them alike), after checking every call's output against a
float64 oracle (a wrong output counts as a goal missed):

* copy bandwidth: ``torch.Tensor.copy_`` and a numba ``prange`` row copy on the
  same thread count (the faster is the "copy" reference), and the numba copy
  into a fresh ``np.empty`` array: the ceiling of any allocating op, whose
  output's pages the OS must fault in and zero on first touch;
* softmaxkit (allocating, and with ``out=`` / ``grad_out=``), and
  ``softmaxkit.torch.softmax``/``log_softmax`` of the same data as a CPU tensor
  ("sk tensor": the tensor path, on the same kernels). Its result is a torch
  allocation, faulted in 4 KiB pages where transparent huge pages are
  "madvise" (torch asks for huge pages only with ``THP_MEM_ALLOC_ENABLE=1``;
  NumPy asks for them): at large shapes that, not the kernel, is most of the
  gap to the NumPy row, and torch's allocating softmax pays it too;
* torch allocating and preallocated: ``torch.softmax``, ``F.log_softmax``,
  ``F.cross_entropy`` + ``backward()``; preallocated CE is the best torch can do
  with ``out=`` buffers (``log_softmax(out=)``, ``exp(out=)``, an in-place
  one-hot correction);
* ``scipy.special.softmax`` / ``log_softmax``;
* naive NumPy (``exp(x - max) / sum``);
* cross-entropy with a softcap of 30 (Gemma 2): softmaxkit's fused
  ``softcap=`` against torch's ``F.cross_entropy(30 * tanh(x / 30))`` +
  ``backward()`` (torch has no fused softcap).

Shapes (4096, 1000), (1024, 32768), (256, 131072) on 1 and 2 threads (set
with ``torch.set_num_threads`` and ``numba.set_num_threads``). Every op moves
at least ``2 * x.nbytes`` (read the logits, write the output or gradient); GB/s
is that over the median time, "copy" is the fraction of copy bandwidth, and
"sk x" is how many times faster softmaxkit is than that row (softmaxkit's
preallocated variant against preallocated peers, its allocating variant
against allocating ones; blank where softmaxkit has no row of that mode). The
goals of issue 3 are checked at the end, each on a like-for-like pair (the CE
speed goal: both allocating), followed by a ``goals met: N/M`` line.

Usage::

    python benchmarks/bench_ops.py            # full run (a few minutes)
    python benchmarks/bench_ops.py --quick    # one shape, 2 threads, fewer repeats: a smoke test
    python benchmarks/bench_ops.py --threads 2 --shapes 1024x32768

Timings on a shared or busy machine are noisy; compare only rows of one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numba
import numpy as np
import scipy.special
import torch
import torch.nn.functional as F

import softmaxkit as sk
import softmaxkit.torch as skt

from _threads import capped_threads  # noqa: E402  (same folder: run as a script)

SHAPES = ((4096, 1000), (1024, 32768), (256, 131072))


@numba.njit(parallel=True, cache=True)
def _numba_copy(src, dst):
    for i in numba.prange(src.shape[0]):
        dst[i, :] = src[i, :]


def _copy_into_fresh(src):
    dst = np.empty_like(src)
    _numba_copy(src, dst)
    return dst


def interleaved_medians(calls: dict, *, repeats: int, warmup: int) -> dict:
    """Median milliseconds of each of ``calls`` (a dict of zero-argument callables), timed in rounds.

    Each round times every call once, starting one further along the list than the round before, so a
    change of load on the shared machine falls on all of them alike. (Timing one call's repeats back to
    back, then the next call's, let a busy or quiet stretch land on one implementation only: the ratios of
    a single run then measured the machine as much as the code.)
    """
    keys = list(calls)
    for _ in range(warmup):
        for key in keys:
            calls[key]()
    times: dict = {key: [] for key in keys}
    for round_ in range(repeats):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            t0 = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - t0)
    return {key: 1e3 * statistics.median(t) for key, t in times.items()}


# --------------------------------------------------------------------------- output checks


def oracle_log_softmax(x: np.ndarray) -> np.ndarray:
    """``log_softmax`` of the rows of ``x`` in float64."""
    z = x.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def oracle_ce_and_grad(x: np.ndarray, y: np.ndarray, *, softcap: float | None = None) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits ``x`` (capped ``softcap * tanh(x / softcap)`` first, if given) and its
    gradient with respect to ``x``, in float64."""
    x64 = x.astype(np.float64)
    capped = x64 if softcap is None else softcap * np.tanh(x64 / softcap)
    log_p = oracle_log_softmax(capped)
    n = x.shape[0]
    rows = np.arange(n)
    grad = np.exp(log_p)
    grad[rows, y] -= 1.0
    grad /= n
    if softcap is not None:
        grad *= 1.0 - np.tanh(x64 / softcap) ** 2
    return float(-log_p[rows, y].mean()), grad


def relative_error(got, want) -> float:
    """``max |got - want| / max |want|`` over one array (or a scalar): a float32 result within a few
    ulps of the oracle reads about 1e-7."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), np.finfo(np.float64).tiny))


def output_error(result, want) -> float:
    """The larger :func:`relative_error` of a result against its oracle: one array, or ``(loss, grad)``."""
    if isinstance(want, tuple):
        return max(relative_error(g, w) for g, w in zip(result, want))
    return relative_error(result, want)


def to_numpy(value):
    """A result as NumPy: tensors detached, tuples element by element, scalars as floats."""
    if isinstance(value, tuple):
        return tuple(to_numpy(v) for v in value)
    if isinstance(value, torch.Tensor):
        value = value.detach()
        return value.item() if value.ndim == 0 else value.numpy()
    return value


@dataclass
class Row:
    op: str
    shape: tuple[int, int]
    threads: int
    impl: str
    ms: float
    prealloc: bool = False


# --------------------------------------------------------------------------- implementations


def _naive_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _naive_log_softmax(x):
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _naive_ce_and_grad(x, y):
    n = x.shape[0]
    lsm = _naive_log_softmax(x)
    rows = np.arange(n)
    loss = -lsm[rows, y].mean()
    grad = np.exp(lsm)
    grad[rows, y] -= 1.0
    grad /= n
    return loss, grad


def _torch_ce_alloc(xt, yt):
    xt.grad = None
    loss = F.cross_entropy(xt, yt)
    loss.backward()
    return loss


def _torch_ce_prealloc(xt, yt, lsm, grad, rows, inv_n):
    # The forward+backward of F.cross_entropy with every buffer preallocated.
    torch.log_softmax(xt, -1, out=lsm)
    loss = -lsm.gather(1, yt[:, None]).sum() * inv_n
    torch.exp(lsm, out=grad)
    grad.mul_(inv_n)
    grad.index_put_((rows, yt), torch.tensor(-inv_n), accumulate=True)
    return loss


SOFTCAP = 30.0


def _torch_ce_softcap(xt, yt):
    xt.grad = None
    loss = F.cross_entropy(SOFTCAP * torch.tanh(xt / SOFTCAP), yt)
    loss.backward()
    return loss


@dataclass
class Case:
    """One measured call: ``run()`` is what is timed; ``result(returned)`` turns what it returned into the
    output checked against the op's oracle (:func:`check_outputs`): an array, or ``(loss, grad)``.
    ``reset`` (optional) restores what ``run`` overwrites, before the check."""

    op: str
    impl: str
    prealloc: bool
    run: object
    result: object = None
    reset: object = None


def cases(x: np.ndarray, y: np.ndarray):
    """A :class:`Case` for every measured call on ``x``, ``y``."""
    out = np.empty_like(x)
    grad = np.empty_like(x)
    scratch = x.copy()
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    ot = torch.from_numpy(out)
    xg = xt.clone().requires_grad_(True)
    lsm_t = torch.empty_like(xt)
    grad_t = torch.empty_like(xt)
    rows_t = torch.arange(x.shape[0])
    inv_n = 1.0 / x.shape[0]
    same = to_numpy  # the call returns its output
    with_torch_grad = lambda loss: (loss.item(), xg.grad.numpy())  # noqa: E731
    with_prealloc_grad = lambda loss: (loss.item(), grad_t.numpy())  # noqa: E731

    def restore_scratch():
        scratch[...] = x

    yield Case("copy", "torch copy_", True, lambda: ot.copy_(xt), same)
    yield Case("copy", "numba prange", True, lambda: _numba_copy(x, out), lambda _: out)
    yield Case("copy", "numba prange", False, lambda: _copy_into_fresh(x), same)

    yield Case("softmax", "softmaxkit", False, lambda: sk.softmax(x), same)
    yield Case("softmax", "softmaxkit", True, lambda: sk.softmax(x, out=out), same)
    yield Case("softmax", "sk tensor", False, lambda: skt.softmax(xt, -1), same)
    yield Case("softmax", "torch", False, lambda: torch.softmax(xt, -1), same)
    yield Case("softmax", "torch", True, lambda: torch.softmax(xt, -1, out=ot), same)
    yield Case("softmax", "scipy.special", False, lambda: scipy.special.softmax(x, axis=1), same)
    yield Case("softmax", "naive numpy", False, lambda: _naive_softmax(x), same)

    yield Case("log_softmax", "softmaxkit", False, lambda: sk.log_softmax(x), same)
    yield Case("log_softmax", "softmaxkit", True, lambda: sk.log_softmax(x, out=out), same)
    yield Case("log_softmax", "sk tensor", False, lambda: skt.log_softmax(xt, -1), same)
    yield Case("log_softmax", "torch", False, lambda: F.log_softmax(xt, -1), same)
    yield Case("log_softmax", "torch", True, lambda: torch.log_softmax(xt, -1, out=ot), same)
    yield Case("log_softmax", "scipy.special", False, lambda: scipy.special.log_softmax(x, axis=1), same)
    yield Case("log_softmax", "naive numpy", False, lambda: _naive_log_softmax(x), same)

    yield Case("ce fwd+bwd", "softmaxkit", False, lambda: sk.cross_entropy_and_grad(x, y), same)
    yield Case("ce fwd+bwd", "softmaxkit", True, lambda: sk.cross_entropy_and_grad(x, y, grad_out=grad), same)
    # In place: the gradient overwrites the logits (here a scratch copy, so after
    # the first call it holds gradients; the work per call is the same).
    yield Case("ce fwd+bwd", "sk in-place", True,
               lambda: sk.cross_entropy_and_grad(scratch, y, grad_out=scratch), same, restore_scratch)
    yield Case("ce fwd+bwd", "torch", False, lambda: _torch_ce_alloc(xg, yt), with_torch_grad)
    yield Case("ce fwd+bwd", "torch", True,
               lambda: _torch_ce_prealloc(xt, yt, lsm_t, grad_t, rows_t, inv_n), with_prealloc_grad)
    yield Case("ce fwd+bwd", "naive numpy", False, lambda: _naive_ce_and_grad(x, y), same)

    yield Case("ce+softcap", "softmaxkit", False, lambda: sk.cross_entropy_and_grad(x, y, softcap=SOFTCAP), same)
    yield Case("ce+softcap", "softmaxkit", True,
               lambda: sk.cross_entropy_and_grad(x, y, grad_out=grad, softcap=SOFTCAP), same)
    yield Case("ce+softcap", "torch", False, lambda: _torch_ce_softcap(xg, yt), with_torch_grad)


#: Largest relative error (:func:`relative_error`) of a float32 result against the float64 oracle.
FLOAT32_TOLERANCE = 1e-5


def check_outputs(x: np.ndarray, y: np.ndarray) -> list[str]:
    """Run every case once on ``x``, ``y`` and compare its output with the float64 oracle of its op;
    the cases whose output is off, in words (empty when all agree). A faster wrong answer is no result."""
    log_p = oracle_log_softmax(x)
    oracles = {
        "copy": x,
        "softmax": np.exp(log_p),
        "log_softmax": log_p,
        "ce fwd+bwd": oracle_ce_and_grad(x, y),
        "ce+softcap": oracle_ce_and_grad(x, y, softcap=SOFTCAP),
    }
    off = []
    for case in cases(x, y):
        if case.reset is not None:
            case.reset()
        error = output_error(to_numpy(case.result(case.run())), oracles[case.op])
        if not error <= FLOAT32_TOLERANCE:
            off.append(f"{case.op} / {case.impl} ({'prealloc' if case.prealloc else 'alloc'}): relative error "
                       f"{error:.2e} > {FLOAT32_TOLERANCE:.0e}")
    return off


# --------------------------------------------------------------------------- reporting


def _sk_ms(rows: list[Row], r: Row) -> float | None:
    """softmaxkit's time for the same op/shape/threads and the same allocation mode, else None.

    Never another mode: an allocating peer over softmaxkit's ``out=`` time
    credits softmaxkit with the page faults it skipped (audit: the ce+softcap
    "sk x" was torch allocating over softmaxkit preallocated, 11.7x vs 9.2x).
    """
    same = [q for q in rows if (q.op, q.shape, q.threads, q.impl, q.prealloc)
            == (r.op, r.shape, r.threads, "softmaxkit", r.prealloc)]
    return same[0].ms if same else None


def _copy_ms(rows: list[Row], shape, threads, *, prealloc: bool = True) -> float:
    """The faster copy into a preallocated array (or, without ``prealloc``, a fresh one)."""
    return min(
        q.ms
        for q in rows
        if q.op == "copy" and q.shape == shape and q.threads == threads and q.prealloc == prealloc
    )


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'op':<12} {'shape':>12} {'thr':>3} {'impl':<15} {'alloc':<8} "
        f"{'ms':>9} {'GB/s':>7} {'copy':>5} {'sk x':>6}"
    )
    print(header)
    print("-" * len(header))
    last = None
    for r in rows:
        key = (r.shape, r.threads, r.op)
        if last is not None and key != last:
            print()
        last = key
        nbytes = 2 * r.shape[0] * r.shape[1] * 4  # read logits + write result, float32
        gbs = nbytes / (r.ms * 1e-3) / 1e9
        frac = _copy_ms(rows, r.shape, r.threads) / r.ms
        sk_ms = _sk_ms(rows, r)
        ours = r.impl in ("softmaxkit", "sk in-place", "sk tensor")
        speedup = "" if r.op == "copy" or ours or sk_ms is None else f"{r.ms / sk_ms:.1f}"
        shape = f"{r.shape[0]}x{r.shape[1]}"
        mode = "in-place" if r.impl == "sk in-place" else "prealloc" if r.prealloc else "alloc"
        print(
            f"{r.op:<12} {shape:>12} {r.threads:>3} {r.impl:<15} {mode:<8} "
            f"{r.ms:>9.2f} {gbs:>7.1f} {frac:>5.2f} {speedup:>6}"
        )


def check_goals(rows: list[Row], threads: int = 2) -> list[bool]:
    """Print whether each goal of issue 3 is met (float32, ``threads`` threads); returns one bool per goal."""
    rows = [r for r in rows if r.threads == threads]
    results: list[bool] = []
    if not rows:
        return results
    print(f"\nGoals of issue 3 ({threads} threads, this run):")

    def get(op, impl, shape, prealloc):
        hit = [r for r in rows if (r.op, r.impl, r.shape, r.prealloc) == (op, impl, shape, prealloc)]
        return hit[0].ms if hit else None

    def report(name, ok, detail):
        results.append(bool(ok))
        print(f"  [{'MET' if ok else 'NOT MET':>7}] {name}: {detail}")

    shapes = list(dict.fromkeys(r.shape for r in rows))
    for shape in shapes:
        s = f"{shape[0]}x{shape[1]}"
        copy = _copy_ms(rows, shape, threads)
        sk_ce = get("ce fwd+bwd", "softmaxkit", shape, True)  # gradient written to grad_out=
        sk_alloc = get("ce fwd+bwd", "softmaxkit", shape, False)  # a fresh gradient array
        torch_ce = get("ce fwd+bwd", "torch", shape, False)  # F.cross_entropy + backward()
        torch_pre = get("ce fwd+bwd", "torch", shape, True)  # hand-fused with out= buffers
        if sk_alloc and torch_ce:
            # Like for like: both allocate their gradient (audit: grad_out= against torch
            # allocating gave 7.6x where allocating against allocating gave 2.5x).
            report(f"CE fwd+bwd >= 5x F.cross_entropy+backward (both allocating) @ {s}",
                   torch_ce / sk_alloc >= 5, f"{torch_ce / sk_alloc:.1f}x")
        if sk_ce and torch_pre and torch_ce:
            print(f"  [   info] CE grad_out= vs torch hand-fused with out= buffers {torch_pre / sk_ce:.1f}x "
                  f"(both preallocated); grad_out= vs F.cross_entropy+backward {torch_ce / sk_ce:.1f}x "
                  f"(not like for like: only softmaxkit skips the allocation); ceiling: a plain copy "
                  f"is {torch_ce / copy:.1f}x F.cross_entropy+backward")
        if sk_ce and shape == (1024, 32768):
            report(f"CE fwd+bwd >= 0.5 copy @ {s}", copy / sk_ce >= 0.5, f"{copy / sk_ce:.2f}")
        for op in ("softmax", "log_softmax"):
            sk_p = get(op, "softmaxkit", shape, True)
            sk_a = get(op, "softmaxkit", shape, False)
            tp = get(op, "torch", shape, True)
            sp = get(op, "scipy.special", shape, False)
            if sk_p:
                report(f"{op} (out=) >= 0.6 copy @ {s}", copy / sk_p >= 0.6, f"{copy / sk_p:.2f}")
            if sk_p and tp:
                report(f"{op} (out=) not slower than torch out= @ {s}", sk_p <= tp, f"{tp / sk_p:.1f}x")
            sk_t, ta = get(op, "sk tensor", shape, False), get(op, "torch", shape, False)
            if sk_t and ta:
                report(f"softmaxkit.torch.{op} of a CPU tensor within 1.2x torch's @ {s}", sk_t <= 1.2 * ta,
                       f"{sk_t / ta:.2f}x torch's time")
            if op == "softmax" and sp and sk_a:
                report(f"softmax >= 8x scipy.special (both allocating) @ {s}", sp / sk_a >= 8, f"{sp / sk_a:.1f}x")
                fresh = _copy_ms(rows, shape, threads, prealloc=False)
                if sk_p:
                    print(f"  [   info] softmax out= vs scipy.special {sp / sk_p:.1f}x; ceiling: "
                          f"a plain copy into a fresh array is {sp / fresh:.1f}x scipy.special")
    return results


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: the first shape, 2 threads and fewer repeats, unless --shapes/--threads say")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1,2)")
    ap.add_argument("--shapes", default=None, help="e.g. 1024x32768,256x131072")
    args = ap.parse_args(argv)
    if args.threads is None:
        args.threads = "2" if args.quick else "1,2"

    shapes = SHAPES[:1] if args.quick else SHAPES
    if args.shapes:
        shapes = tuple(tuple(int(v) for v in s.split("x")) for s in args.shapes.split(","))
    threads = capped_threads((int(t) for t in args.threads.split(",")), script="bench_ops.py")
    repeats, warmup = (3, 1) if args.quick else (9, 2)

    rng = np.random.default_rng(0)
    rows: list[Row] = []
    wrong: list[str] = []
    for shape in shapes:
        x = (2.0 * rng.standard_normal(shape)).astype(np.float32)
        y = rng.integers(0, shape[1], shape[0])
        # Every call's output against the float64 oracle, on the data timed (this also compiles, or loads
        # from the cache, before anything is timed).
        wrong += [f"{shape[0]}x{shape[1]}: {line}" for line in check_outputs(x, y)]
        for k in threads:
            numba.set_num_threads(k)  # first: starting numba's OpenMP pool resets torch's count (bench_torch_compile)
            torch.set_num_threads(k)
            measured = list(cases(x, y))
            medians = interleaved_medians(dict(enumerate(c.run for c in measured)), repeats=repeats, warmup=warmup)
            rows += [Row(c.op, shape, k, c.impl, medians[i], c.prealloc) for i, c in enumerate(measured)]
    print(
        f"numba {numba.__version__} ({numba.threading_layer()} threading layer), "
        f"torch {torch.__version__}, float32, median of {repeats} after {warmup} warm-up; "
        "GB/s counts 2 * x.nbytes per call"
    )
    rows.sort(key=lambda r: (r.threads, shapes.index(r.shape), r.op != "copy", r.op))
    print_table(rows)
    met = [ok for k in threads for ok in check_goals(rows, k)]
    print(f"\nOutputs against the float64 oracle (relative error <= {FLOAT32_TOLERANCE:.0e}): "
          f"{'all agree' if not wrong else f'{len(wrong)} off'}")
    for line in wrong:
        print(f"  [NOT MET] {line}")
    met += [False] * len(wrong)  # a wrong output is a goal missed, whoever's it is: its timing compares nothing
    # The line `softmaxkit bench` reads into its summary (a goal not met is a result, not a crash).
    print(f"\ngoals met: {sum(met)}/{len(met)}")


if __name__ == "__main__":
    main()
