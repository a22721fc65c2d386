"""Peak memory and time of the command line on large logit files, against a NumPy/SciPy script.

What is measured: each command runs in a fresh process (``python -m softmaxkit ...``), which
writes its peak resident set (``VmHWM``) at exit; the wall time is measured around it. Beside it, in its own
process, a baseline script does the same work the way a careful NumPy user would: ``np.load``
the file (read whole, as such a script does), float64 row blocks for log-loss, accuracy and a
15-bin top-label ECE; for ``calibrate``, the temperature by ``scipy.optimize.minimize_scalar``
on the float64 NLL (one pass over the logits per evaluation) and the split-conformal LAC
threshold as MAPIE computes it (``np.quantile(..., (n + 1)(1 - alpha) / n, method="higher")``).

Files (written first, so that making them leaves no high-water mark in the measured processes):

* ``wide``: N x 1000 float32 logits, labels drawn from ``softmax(z / 1.5)`` (an over-confident
  image classifier's dump);
* ``vocab``: 2048 x 32,000 float16 logits (an LLM's next-token logits).

Columns: ``peak MB`` (the process's peak RSS, ``VmHWM``: Linux only), ``x file`` (over the logits file's size),
``x base`` (over the baseline's peak), ``s`` (wall seconds: on a shared 2-core machine a rough
figure). Goal: every command's peak stays within 1.5x the baseline's (what the blocked readers
promise: the file, memory-mapped, plus blocks of about 32 MB, beside the interpreter and its
imports, which weigh more than the file at ``--quick`` sizes).

Runs in about 2 minutes on 2 cores (``--quick``: smaller files, a smoke run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: The baseline of evaluate (argv: logits.npy labels.npy) and of calibrate (argv: ... "calibrate").
BASELINE = r"""
import math, sys
import numpy as np
x = np.load(sys.argv[1]); y = np.load(sys.argv[2]).astype(np.int64)
n, k = x.shape
rows = max(1, (32 << 20) // (8 * k))
nll = np.empty(n); conf = np.empty(n); hit = np.empty(n, bool); p_true = np.empty(n)
for s in range(0, n, rows):
    z = x[s:s + rows].astype(np.float64); yb = y[s:s + rows]; r = np.arange(len(z))
    m = z.max(1); lse = np.log(np.exp(z - m[:, None]).sum(1)) + m
    nll[s:s + rows] = lse - z[r, yb]; pred = z.argmax(1); hit[s:s + rows] = pred == yb
    conf[s:s + rows] = np.exp(z[r, pred] - lse); p_true[s:s + rows] = np.exp(z[r, yb] - lse)
bins = np.minimum((conf * 15).astype(np.int64), 14)
ece = sum(abs(hit[bins == b].mean() - conf[bins == b].mean()) * np.sum(bins == b) for b in range(15)
          if np.any(bins == b)) / n
print(f"log-loss {math.fsum(nll) / n:.6f} accuracy {hit.mean():.6f} ece {ece:.6f}")
if len(sys.argv) > 3:
    from scipy.optimize import minimize_scalar

    def mean_nll(t):
        total = 0.0
        for s in range(0, n, rows):
            z = x[s:s + rows].astype(np.float64) / t; m = z.max(1)
            total += np.sum(np.log(np.exp(z - m[:, None]).sum(1)) + m - z[np.arange(len(z)), y[s:s + rows]])
        return total / n

    t = minimize_scalar(mean_nll, bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-4}).x
    p = np.empty(n)
    for s in range(0, n, rows):
        z = x[s:s + rows].astype(np.float64) / t; m = z.max(1)
        lse = np.log(np.exp(z - m[:, None]).sum(1)) + m
        p[s:s + rows] = np.exp(z[np.arange(len(z)), y[s:s + rows]] - lse)
    q = np.quantile(1 - p, min(1.0, (n + 1) * 0.9 / n), method="higher")
    print(f"T {t:.4f} lac threshold {q:.6f}")
"""


#: Runs a script or module (argv: HWM_FILE, then ``-m MODULE ARGS`` or ``SCRIPT ARGS``) and writes its
#: peak RSS (``VmHWM``, KiB) at exit. Not ``wait4``'s ``ru_maxrss``: on Linux that keeps the parent's
#: memory from before the ``exec``, so every child read as large as this script (535 MB each).
MEASURE = r"""
import atexit, runpy, sys
out, sys.argv = sys.argv[1], sys.argv[2:]

def _report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(out, "w") as fh:
        fh.write(peak)

atexit.register(_report)
if sys.argv[0] == "-m":
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run(cmd: list[str], *, cwd: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of ``cmd`` (``-m MODULE ...`` or ``SCRIPT ...``), alone in a fresh
    process."""
    hwm = cwd / "hwm.txt"
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a full pipe would block the command
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(cwd / "measure.py"), str(hwm), *cmd], cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=err, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode(errors='replace')[-4000:]}")
    return int(hwm.read_text()) / 1024, seconds


FILES = ("wide", "vocab")


def write_files(work: Path, *, rows: int, vocab_rows: int, names: tuple[str, ...] = FILES
                ) -> dict[str, tuple[Path, Path]]:
    rng = np.random.default_rng(0)
    files = {}
    for name, (n, k, dtype, scale) in {"wide": (rows, 1000, np.float32, 3.0),
                                       "vocab": (vocab_rows, 32000, np.float16, 2.0)}.items():
        if name not in names:
            continue
        z = np.empty((n, k), dtype=dtype)
        y = np.empty(n, dtype=np.int64)
        for s in range(0, n, 4096):  # in blocks: no float64 copy of the whole matrix here either
            block = rng.standard_normal((min(4096, n - s), k)) * scale
            p = np.exp((block - block.max(1, keepdims=True)) / 1.5)
            p /= p.sum(1, keepdims=True)
            y[s:s + len(block)] = (p.cumsum(1) > rng.random((len(block), 1))).argmax(1)
            z[s:s + len(block)] = block
        logits, labels = work / f"{name}_logits.npy", work / f"{name}_labels.npy"
        np.save(logits, z)
        np.save(labels, y)
        files[name] = (logits, labels)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller files (a smoke run, not a measurement)")
    parser.add_argument("--file", choices=FILES, action="append", dest="files",
                        help="measure only this file (repeatable; default: all)")
    args = parser.parse_args()
    rows, vocab_rows = (20_000, 512) if args.quick else (100_000, 2048)
    if not Path("/proc/self/status").exists():
        raise SystemExit("bench_cli_memory.py reads peak memory from /proc (Linux)")
    cli = ["-m", "softmaxkit"]
    with tempfile.TemporaryDirectory(prefix="bench_cli_memory_") as tmp:
        work = Path(tmp)
        files = write_files(work, rows=rows, vocab_rows=vocab_rows, names=tuple(args.files or FILES))
        (work / "baseline.py").write_text(BASELINE)
        (work / "measure.py").write_text(MEASURE)
        cases = []
        for name, (logits, labels) in files.items():
            size_mb = logits.stat().st_size / (1 << 20)
            evaluate = cli + ["evaluate", "--logits", str(logits), "--labels", str(labels), "-q"]
            calibrate = cli + ["calibrate", "--logits", str(logits), "--labels", str(labels), "--out",
                               str(work / f"{name}_cal.npz"), "--conformal", "0.1", "-q"]
            base = run(["baseline.py", str(logits), str(labels)], cwd=work)
            base_cal = run(["baseline.py", str(logits), str(labels), "calibrate"], cwd=work)
            run(evaluate, cwd=work)  # numba's first compile (cached on disk) is not what is measured
            cases.append((name, "evaluate", size_mb, run(evaluate, cwd=work), base))
            cases.append((name, "calibrate --conformal 0.1", size_mb, run(calibrate, cwd=work), base_cal))

    print(f"softmaxkit CLI peak memory on large logit files (wide: {rows} x 1000 float32, "
          f"vocab: {vocab_rows} x 32000 float16)")
    print(f"{'file':7} {'command':27} {'file MB':>8} {'peak MB':>8} {'x file':>7} {'base MB':>8} {'x base':>7} "
          f"{'s':>6} {'base s':>7}")
    met = total = 0
    for name, command, size_mb, (peak, seconds), (base_peak, base_seconds) in cases:
        x_file, x_base = peak / size_mb, peak / base_peak
        ok = x_base <= 1.5
        met, total = met + ok, total + 1
        print(f"{name:7} {command:27} {size_mb:8.0f} {peak:8.0f} {x_file:7.2f} {base_peak:8.0f} {x_base:7.2f} "
              f"{seconds:6.1f} {base_seconds:7.1f}  {'ok' if ok else 'MISS'}")
    print(f"goals met: {met}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
