"""GPU benchmark: softmaxkit's Triton kernels against torch and the peers.

Prints one table. Rows are (op, dtype, shape, implementation); columns are the
median time over CUDA events, the achieved bandwidth as a fraction of the
card's HBM bandwidth (memory-bound ops) or of the GEMM floor (linear CE), the
peak extra memory, and the loss error against float64.

Bytes counted (the fewest any implementation must move):

* softmax forward: read x, write y: ``2 N C b``;
* cross-entropy forward + backward: read the logits, write their gradient:
  ``2 N C b`` (targets and the loss are negligible);
* linear CE: GEMM-bound; the floor is the three GEMMs, ``6 N D V`` flops at
  the bf16 matmul rate measured in the same run.

Implementations (each skipped with a note when it cannot be imported or
fails): softmaxkit (``softmaxkit.torch.<op>``, the public API with its input
validation and device dispatch: what users call, and the row the goals of
issue 9 are read from), "sk _triton" (``softmaxkit.torch._triton``, the
kernels' private autograd entry points, to show the dispatch overhead;
"[two-pass]" forces the looping path on 32k-class rows, a tuning comparison),
torch eager,
``torch.compile``, Liger Kernel, cut-cross-entropy (linear CE only; it has no
plain CE or softmax), and torch's own ``F.linear_cross_entropy`` when present.

Run through ``run_all.sh`` (see README.md); ``--smoke`` runs tiny shapes on the
CPU through Triton's interpreter to check the plumbing without a GPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

CE_SHAPES = [(8192, 32768), (4096, 131072), (2048, 262144)]
LINEAR_SHAPE = (8192, 2304, 256000)  # tokens, hidden, classes (Gemma-2 2B head)
#: Datasheet HBM bandwidth (bytes/s) by device-name fragment, most specific first.
HBM = [("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100 NVL", 3.9e12), ("H100", 3.35e12),
       ("A100", 2.0e12)]


@dataclass
class Row:
    op: str
    dtype: str
    shape: str
    impl: str
    ms: float | None = None
    frac: float | None = None  # of HBM bandwidth, or of the GEMM floor
    gbps: float | None = None
    peak_mib: float | None = None
    err: float | None = None
    note: str = ""


@dataclass
class Bench:
    device: str
    deadline: float
    reps: int
    rows: list[Row] = field(default_factory=list)
    hbm: float = float("nan")
    gemm_tflops: float = float("nan")

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn, device, reps):
    """Median milliseconds of ``fn()`` over ``reps`` runs after two warm-ups."""
    for _ in range(2):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        if device == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_extra_mib(fn, device):
    """Peak memory allocated by one ``fn()`` beyond what was live before it
    (the inputs): temporaries plus the outputs and gradients it creates."""
    if device != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated() - base) / 2**20


# --------------------------------------------------------------------------- implementations


def _liger():
    from liger_kernel.transformers.functional import (
        liger_cross_entropy,
        liger_fused_linear_cross_entropy,
        liger_softmax,
    )

    return liger_cross_entropy, liger_softmax, liger_fused_linear_cross_entropy


def _cce():
    from cut_cross_entropy import linear_cross_entropy

    return linear_cross_entropy


def _public():
    """``softmaxkit.torch``: the public ops (validation, then the CUDA dispatch)."""
    import softmaxkit.torch

    return softmaxkit.torch


def _two_pass(fn):
    """``fn`` with the register-resident path switched off, so rows of up to
    32768 classes take the two-read looping path too: a tuning comparison
    for the first shape (the gradient is made in the forward, so this covers
    the backward as well)."""
    from softmaxkit.kernels.triton import _common

    def run(*args):
        old, _common.MAX_SINGLE_BLOCK = _common.MAX_SINGLE_BLOCK, 0
        try:
            return fn(*args)
        finally:
            _common.MAX_SINGLE_BLOCK = old

    return run


def softmax_impls():
    from softmaxkit.torch import _triton

    impls = {
        "softmaxkit": lambda x: _public().softmax(x, -1),
        "sk _triton": lambda x: _triton.softmax(x, -1),
        "sk _triton [two-pass]": _two_pass(lambda x: _triton.softmax(x, -1)),
        "torch eager": lambda x: torch.softmax(x, -1),
        "torch.compile": torch.compile(lambda x: torch.softmax(x, -1), dynamic=False),
    }
    try:
        impls["liger"] = _liger()[1]
    except Exception as e:  # noqa: BLE001
        impls["liger"] = f"not importable: {type(e).__name__}: {e}"[:80]
    return impls


def ce_impls():
    from softmaxkit._options import CrossEntropyOptions
    from softmaxkit.torch import _triton

    opts = CrossEntropyOptions()
    impls = {
        "softmaxkit": lambda x, y: _public().cross_entropy(x, y),
        "sk _triton": lambda x, y: _triton.cross_entropy(x, y, opts),
        "sk _triton [two-pass]": _two_pass(lambda x, y: _triton.cross_entropy(x, y, opts)),
        "torch eager": lambda x, y: F.cross_entropy(x, y),
        "torch.compile": torch.compile(lambda x, y: F.cross_entropy(x, y), dynamic=False),
    }
    try:
        impls["liger"] = _liger()[0]
    except Exception as e:  # noqa: BLE001
        impls["liger"] = f"not importable: {type(e).__name__}: {e}"[:80]
    impls["cut-cross-entropy"] = "n/a: linear CE only"
    return impls


def linear_impls():
    from softmaxkit._options import CrossEntropyOptions
    from softmaxkit.torch import _triton

    opts = CrossEntropyOptions()

    def dense(h, w, y):  # torch's own bf16 path: bf16 logits, bf16 loss
        return F.cross_entropy(F.linear(h, w), y)

    impls = {
        "softmaxkit": lambda h, w, y: _public().linear_cross_entropy(h, w, y),
        "sk _triton": lambda h, w, y: _triton.linear_cross_entropy(h, w, y, opts),
        "sk _triton [chunk 1024]": lambda h, w, y: _triton.linear_cross_entropy(h, w, y, opts, chunk_size=1024),
        "torch eager": dense,
        "torch.compile": torch.compile(dense, dynamic=False),
    }
    if hasattr(F, "linear_cross_entropy"):
        impls["torch F.linear_cross_entropy"] = lambda h, w, y: F.linear_cross_entropy(h, w, y)
    try:
        flce = _liger()[2]
        impls["liger"] = lambda h, w, y: flce(h, w, y)
    except Exception as e:  # noqa: BLE001
        impls["liger"] = f"not importable: {type(e).__name__}: {e}"[:80]
    try:
        cce = _cce()
        impls["cut-cross-entropy"] = lambda h, w, y: cce(h, w, y, impl="cce")
    except Exception as e:  # noqa: BLE001
        impls["cut-cross-entropy"] = f"not importable: {type(e).__name__}: {e}"[:80]
    return impls


# --------------------------------------------------------------------------- cells


def _run_cell(b: Bench, row: Row, make_step, nbytes=None, flops=None, ref=None, get_loss=None):
    """Time ``step = make_step()``, measure its peak memory and loss error; fill ``row``."""
    if b.out_of_time():
        row.note = "skipped: time budget spent"
        b.rows.append(row)
        return
    try:
        step = make_step()
        row.ms = time_ms(step, b.device, b.reps)
        row.peak_mib = peak_extra_mib(step, b.device)
        if nbytes is not None:
            row.gbps = nbytes / (row.ms * 1e-3) / 1e9
            row.frac = nbytes / (row.ms * 1e-3) / b.hbm
        if flops is not None and math.isfinite(b.gemm_tflops):
            row.frac = (flops / (b.gemm_tflops * 1e12)) / (row.ms * 1e-3)
        if ref is not None and get_loss is not None:
            loss = float(get_loss())
            row.err = abs(loss - ref) / abs(ref)
    except Exception as e:  # noqa: BLE001
        row.note = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:90]
        traceback.print_exc(limit=3, file=sys.stderr)
    finally:
        if b.device == "cuda":
            torch.cuda.empty_cache()
    b.rows.append(row)
    print(_fmt(row), flush=True)


def _runnable(b: Bench, impls: dict, op: str, dtype: str, shape: str, *, n_classes: int | None = None):
    """``(row, fn)`` for every implementation to time in one cell of the table.

    An implementation given as a string is unavailable: its row is recorded
    with that string as the note and not timed. "[two-pass]" variants are
    skipped above 32k classes, where the default path already loops.
    """
    for name, fn in impls.items():
        if "two-pass" in name and n_classes is not None and n_classes > 32768:
            continue
        row = Row(op, dtype, shape, name)
        if isinstance(fn, str):
            row.note = fn
            b.rows.append(row)
            continue
        yield row, fn


def bench_softmax(b: Bench, shapes, dtypes):
    impls = softmax_impls()
    for n, c in shapes:
        for dtype in dtypes:
            x = torch.randn(n, c, device=b.device, dtype=dtype) * 3
            nbytes = 2 * n * c * x.element_size()
            for row, fn in _runnable(b, impls, "softmax fwd", _dt(dtype), f"{n}x{c}", n_classes=c):
                _run_cell(b, row, lambda fn=fn, x=x: (lambda: fn(x)), nbytes=nbytes)
            del x


def bench_cross_entropy(b: Bench, shapes, dtypes):
    impls = ce_impls()
    for n, c in shapes:
        for dtype in dtypes:
            x0 = torch.randn(n, c, device=b.device, dtype=dtype) * 3
            y = torch.randint(0, c, (n,), device=b.device)
            # float64 reference on the rounded inputs, in row chunks to bound memory.
            ref = sum(
                F.cross_entropy(x0[i : i + 256].double(), y[i : i + 256], reduction="sum").item()
                for i in range(0, n, 256)
            ) / n
            nbytes = 2 * n * c * x0.element_size()
            for row, fn in _runnable(b, impls, "CE fwd+bwd", _dt(dtype), f"{n}x{c}", n_classes=c):
                x = x0.clone().requires_grad_()  # Liger overwrites its input with the gradient

                def make(fn=fn, x=x):
                    def step():  # drops the gradient at the end: peak counts it once
                        fn(x, y).backward()
                        x.grad = None

                    return step

                _run_cell(b, row, make, nbytes=nbytes, ref=ref,
                          get_loss=lambda fn=fn, x0=x0: fn(x0.clone().requires_grad_(), y))
                del x
            del x0


def bench_linear(b: Bench, shape):
    n, d, v = shape
    impls = linear_impls()
    dtype = torch.bfloat16
    h0 = (torch.randn(n, d, device=b.device) * d**-0.5 * 4).to(dtype)
    w0 = (torch.randn(v, d, device=b.device) * 0.5).to(dtype)
    y = torch.randint(0, v, (n,), device=b.device)
    ref = 0.0
    w64 = w0.double()
    for i in range(0, n, 1024):  # float64 reference, 1024 tokens at a time
        z = h0[i : i + 1024].double() @ w64.T
        ref += F.cross_entropy(z, y[i : i + 1024], reduction="sum").item()
        del z
    del w64
    ref /= n
    reps, b.reps = b.reps, max(3, b.reps // 4)  # ~0.1 s per step: fewer repetitions suffice
    flops = 6 * n * d * v
    for row, fn in _runnable(b, impls, "linear CE fwd+bwd", "bf16", f"{n}x{d}x{v}"):
        h = h0.clone().requires_grad_()
        w = w0.clone().requires_grad_()

        def make(fn=fn, h=h, w=w):
            def step():
                fn(h, w, y).backward()
                h.grad = w.grad = None

            return step

        _run_cell(b, row, make, flops=flops, ref=ref, get_loss=lambda fn=fn, h=h, w=w: fn(h, w, y))
        del h, w
    b.reps = reps


# --------------------------------------------------------------------------- ceilings and table


def hbm_bandwidth(device) -> tuple[float, str]:
    if device != "cuda":
        return 50e9, "CPU (smoke run; nominal 50 GB/s)"
    name = torch.cuda.get_device_name()
    for key, bw in HBM:
        if key in name:
            return bw, name
    return float("nan"), name


def measured_copy_gbps(device) -> float:
    if device != "cuda":
        return float("nan")
    x = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    ms = time_ms(lambda: y.copy_(x), device, 10)
    return 2 * x.numel() / (ms * 1e-3) / 1e9


def measured_gemm_tflops(device) -> float:
    if device != "cuda":
        return float("nan")
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    bm = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    ms = time_ms(lambda: a @ bm, device, 10)
    return 2 * 8192**3 / (ms * 1e-3) / 1e12


def _dt(dtype):
    return {torch.bfloat16: "bf16", torch.float32: "fp32", torch.float16: "fp16"}[dtype]


def _f(v, fmt):
    width = int(fmt.split(".")[0])
    return f"{'-':>{width}}" if v is None else format(v, fmt)


HEADER = f"{'op':<18} {'dtype':<5} {'shape':<18} {'impl':<28} {'ms':>9} {'GB/s':>7} {'frac':>6} {'peak MiB':>9} {'loss err':>9}  note"


def _fmt(r: Row) -> str:
    return (f"{r.op:<18} {r.dtype:<5} {r.shape:<18} {r.impl:<28} {_f(r.ms, '9.3f')} "
            f"{_f(r.gbps, '7.0f')} {_f(r.frac, '6.2f')} {_f(r.peak_mib, '9.0f')} {_f(r.err, '9.1e')}  {r.note}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=270.0, help="stop starting new cells after this")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU via the Triton interpreter")
    ap.add_argument("--only", choices=["softmax", "ce", "linear"], action="append")
    args = ap.parse_args(argv)

    if args.smoke:
        from softmaxkit.torch import _triton

        _triton.use_interpreter()
        device, ce_shapes, lin_shape, reps = "cpu", [(64, 300)], (64, 32, 500), 2
        torch._dynamo.config.suppress_errors = True
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: nothing to benchmark (use --smoke for a CPU plumbing check)")
            return 1
        device, ce_shapes, lin_shape, reps = "cuda", CE_SHAPES, LINEAR_SHAPE, args.reps

    b = Bench(device=device, deadline=time.monotonic() + args.budget_s, reps=reps)
    b.hbm, name = hbm_bandwidth(device)
    copy = measured_copy_gbps(device)
    b.gemm_tflops = measured_gemm_tflops(device)
    print(f"device: {name}; datasheet HBM {b.hbm / 1e9:.0f} GB/s; measured copy {copy:.0f} GB/s; "
          f"bf16 GEMM {b.gemm_tflops:.0f} TFLOP/s; torch {torch.__version__}", flush=True)
    print(HEADER, flush=True)
    only = set(args.only or ["ce", "softmax", "linear"])
    dtypes = [torch.bfloat16, torch.float32]
    # Most important first, so a spent budget drops the least important cells.
    if "ce" in only:
        bench_cross_entropy(b, ce_shapes, dtypes)
    if "linear" in only:
        bench_linear(b, lin_shape)
    if "softmax" in only:
        bench_softmax(b, ce_shapes, dtypes)

    print("\n=== softmaxkit GPU benchmark: median of CUDA-event timings; frac = achieved bytes/s over "
          "datasheet HBM bandwidth (memory-bound rows) or GEMM-floor time over measured time (linear CE); "
          "peak = max_memory_allocated beyond the live inputs; loss err = |loss - fp64| / fp64, where a "
          "bf16 loss returned in bf16 carries up to 2^-9 = 2e-3 of output rounding ===")
    from softmaxkit.kernels.triton import linear_cross_entropy as lce

    print(f"device: {name}; measured copy {copy:.0f} GB/s; bf16 GEMM {b.gemm_tflops:.0f} TFLOP/s; "
          f"softmaxkit grad_weight via addmm(out_dtype=float32): {lce.FP32_ADDMM}")
    print(HEADER)
    for r in b.rows:
        print(_fmt(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
