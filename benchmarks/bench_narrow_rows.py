"""Claim: on rows of few classes (tabular heads: 2 to a few dozen classes)
softmaxkit's narrow-row kernels beat its own row loops, torch and scipy.

The row loops of :mod:`softmaxkit.kernels.cpu` vectorise along a row, which
a row of a few classes does not fill; the narrow-row kernels (rows of at most
``NARROW_MAX_CLASSES`` = 16 classes) vectorise across a block of rows instead.
The 2-, 3- and 10-class shapes take the narrow-row kernels; the 32- and
64-class shapes are above the limit, where softmaxkit as shipped runs its row
loops (the ``sk kernel`` column says which ran): they show where the switch
lies. Measured in one run, on the same arrays, medians of repeats after
warm-up, every call allocating its result (audit: softmaxkit wrote into
``out=`` / ``grad_out=`` buffers while torch and scipy allocated):

* ``sk``: softmaxkit as shipped (``sk.softmax``, ``sk.cross_entropy_and_grad``);
* ``row loops``: the same calls with ``NARROW_MAX_CLASSES = 0``, i.e. the
  wide-row kernels on the same input;
* torch: ``torch.softmax`` and ``F.cross_entropy`` + ``backward()``;
* scipy: ``scipy.special.softmax`` (what scikit-learn's ``predict_proba``
  amounts to).

Both float32 and float64 (scikit-learn's data are float64, and so is
``SoftmaxClassifier``'s default compute dtype). The last column set is the
ratio of each peer's time to softmaxkit's (> 1: softmaxkit is faster).

Usage::

    python benchmarks/bench_narrow_rows.py            # 1 and 2 threads
    python benchmarks/bench_narrow_rows.py --quick    # 2 threads, fewer repeats

Every implementation's output is first checked against a float64 oracle on the
same data (the run fails if one is off), and the calls of one shape, dtype and
thread count are timed in rounds, each round timing every call once, so that a
change of load falls on all of them alike. Timings on a shared machine are
noisy; compare only rows of one run.
"""

from __future__ import annotations

import argparse

import numba
import numpy as np
import scipy.special
import torch
import torch.nn.functional as F

import softmaxkit as sk
from softmaxkit.kernels import cpu

from _threads import capped_threads  # noqa: E402  (same folder: run as a script)
from bench_ops import (  # noqa: E402
    FLOAT32_TOLERANCE, interleaved_medians, oracle_ce_and_grad, oracle_log_softmax, output_error, to_numpy,
)

SHAPES = ((100_000, 2), (100_000, 3), (100_000, 10), (50_000, 32), (25_000, 64))


def _row_loops(fn):
    """``fn`` run with the narrow-row kernels switched off (the wide-row loops)."""

    def call():
        saved = cpu.NARROW_MAX_CLASSES
        cpu.NARROW_MAX_CLASSES = 0
        try:
            return fn()
        finally:
            cpu.NARROW_MAX_CLASSES = saved

    return call


def _torch_ce(xt, yt):
    xt.grad = None
    loss = F.cross_entropy(xt, yt)
    loss.backward()
    return loss.item(), xt.grad


def _tolerance(dtype) -> float:
    """Largest relative error (:func:`bench_ops.relative_error`) of a result against the float64 oracle."""
    return FLOAT32_TOLERANCE if dtype == np.float32 else 1e-12


def measure(x: np.ndarray, y: np.ndarray, *, repeats: int, warmup: int) -> tuple[dict, list[str]]:
    """Median ms of each op's implementations (``{op: {impl: ms}}``), timed in interleaved rounds
    (:func:`bench_ops.interleaved_medians`), and the implementations whose output is off the float64
    oracle, in words (checked first, on the same data)."""
    xt = torch.from_numpy(x)
    xg = xt.clone().requires_grad_(True)
    yt = torch.from_numpy(y)
    softmax = lambda: sk.softmax(x)  # noqa: E731
    ce = lambda: sk.cross_entropy_and_grad(x, y)  # noqa: E731
    calls = {
        "softmax": {
            "sk": softmax,
            "row loops": _row_loops(softmax),
            "torch": lambda: torch.softmax(xt, -1),
            "scipy": lambda: scipy.special.softmax(x, axis=1),
        },
        "ce fwd+bwd": {
            "sk": ce,
            "row loops": _row_loops(ce),
            "torch": lambda: _torch_ce(xg, yt),
        },
    }
    oracles = {"softmax": np.exp(oracle_log_softmax(x)), "ce fwd+bwd": oracle_ce_and_grad(x, y)}
    wrong = []
    for op, impls in calls.items():
        for impl, fn in impls.items():
            error = output_error(to_numpy(fn()), oracles[op])
            if not error <= _tolerance(x.dtype):
                wrong.append(f"{op} / {impl} {x.shape[0]}x{x.shape[1]} {x.dtype}: relative error {error:.2e}")
    medians = interleaved_medians(
        {(op, impl): fn for op, impls in calls.items() for impl, fn in impls.items()}, repeats=repeats, warmup=warmup
    )
    times = {op: {impl: medians[op, impl] for impl in impls} for op, impls in calls.items()}
    return times, wrong


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 threads and fewer repeats")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1,2)")
    args = ap.parse_args(argv)
    if args.threads is None:
        args.threads = "2" if args.quick else "1,2"
    repeats, warmup = (5, 1) if args.quick else (21, 3)
    rng = np.random.default_rng(0)
    print(f"numba {numba.__version__}, torch {torch.__version__}, median of {repeats} after {warmup} warm-up; "
          f"NARROW_MAX_CLASSES = {cpu.NARROW_MAX_CLASSES}")
    print(f"{'op':<11} {'shape':>10} {'dtype':<8} {'thr':>3} {'sk kernel':<9} {'sk ms':>8} {'row loops':>10} "
          f"{'torch':>9} {'scipy':>9}   {'loops/sk':>8} {'torch/sk':>8} {'scipy/sk':>8}")
    wrong: list[str] = []
    for threads in capped_threads((int(t) for t in args.threads.split(",")), script="bench_narrow_rows.py"):
        numba.set_num_threads(threads)  # first: starting numba's OpenMP pool resets torch's count
        torch.set_num_threads(threads)
        for shape in SHAPES:
            kernel = "narrow" if shape[1] <= cpu.NARROW_MAX_CLASSES else "row loops"
            for dtype in (np.float32, np.float64):
                x = (3.0 * rng.standard_normal(shape)).astype(dtype)
                y = rng.integers(0, shape[1], shape[0])
                times, off = measure(x, y, repeats=repeats, warmup=warmup)
                wrong += off
                for op, ms in times.items():
                    sk_ms = ms["sk"]
                    cells = [f"{ms.get(k, float('nan')):>9.2f}" for k in ("torch", "scipy")]
                    ratios = [f"{ms[k] / sk_ms:>8.2f}" if k in ms else f"{'':>8}" for k in ("row loops", "torch", "scipy")]
                    print(f"{op:<11} {shape[0]:>6}x{shape[1]:<3} {np.dtype(dtype).name:<8} {threads:>3} "
                          f"{kernel:<9} {sk_ms:>8.2f} {ms['row loops']:>10.2f} {cells[0]} {cells[1]}   {' '.join(ratios)}")

    print(f"\nOutputs against the float64 oracle: {'all agree' if not wrong else f'{len(wrong)} off'}")
    for line in wrong:
        print(f"  [NOT MET] {line}")
    if wrong:
        raise SystemExit(1)  # a faster wrong answer is no result


if __name__ == "__main__":
    main()
