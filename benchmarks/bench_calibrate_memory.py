"""Peak memory and time of fitting the calibrators on large float32 logits.

What is measured: what fitting vector and matrix scaling adds to the memory
of a process holding float32 logits. By design (``_AffineBlocks`` in
``softmaxkit/calibration.py``) a fit on float32 logits holds one float64 copy
of them, plus two float64 row-block buffers (``z'`` and the soft targets) of
``min(N, _BLOCK_ELEMENTS // C)`` rows, 16 MiB each at most, reused across
L-BFGS iterations; before the row blocks a fit held about four copies
(``softmaxkit calibrate --method vector`` on 100k x 1000 float32: 3.09 GB peak
RSS, 92 s; temperature scaling 883 MB, 9.9 s).

So "at most one float64 copy" holds only where the logits dwarf the buffers:
at the sizes run here the buffers are a large share (audit: vector scaling at
10k x 1000 added 1.83 copies, matrix scaling 3.5 to 4.1). The table shows the
measured copies next to that design budget (``budget MB``: the copy plus the
buffers) and the rest (``other MB``: what the fit adds beyond the budget).

Each row runs in a fresh Python process, so its peak RSS is its own: the
process loads the logits from a ``.npy`` file (written by this script
beforehand, so that generating them leaves no high-water mark), fits
once on 500 rows (numba's compile, cached on disk after the first run), then
fits three times on all rows. Columns:

* ``fit s``: median of the three fits;
* ``peak MB``: the process's peak RSS (``VmHWM``; ``ru_maxrss`` off Linux);
* ``fit MB``: peak RSS minus the RSS before the timed fits (Python, NumPy,
  SciPy, numba and the float32 logits), i.e. what fitting adds. Before the
  fits, freed heap is returned to the OS (``malloc_trim``) and the high-water
  mark is reset to the current RSS (``echo 5 > /proc/self/clear_refs``, Linux),
  so the warm-up fit's own peak is not subtracted; off Linux the warm-up's
  peak is the baseline (an underestimate);
* ``f64 copies``: ``fit MB`` over the size of one float64 copy of the logits;
* ``budget MB``: one float64 copy plus the two row-block buffers (vector and
  matrix rows only); ``other MB``: ``fit MB`` minus that budget;
* ``x temp``: time over temperature scaling's on the same logits (the
  baseline: one pass-based 1-D fit, no (N, C) copy).

Logits are over-confident and class-distorted (labels drawn from
``softmax(z / 2.5)``), so vector and matrix scaling have work to do. Runs in
about a minute on 2 cores (mostly vector scaling at 20k x 1000); ``--quick``
halves the rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: (method, rows, classes): two sizes per method; matrix scaling has C^2 parameters, so fewer classes.
CASES = [
    ("temperature", 10_000, 1000),
    ("vector", 10_000, 1000),
    ("temperature", 20_000, 1000),
    ("vector", 20_000, 1000),
    ("matrix", 10_000, 100),
    ("matrix", 30_000, 100),
]

CHILD = r"""
import json, resource, statistics, sys, time
import numpy as np
from softmaxkit import calibration

def peak_kb():
    # VmHWM is this process's own high-water mark; ru_maxrss can carry the parent's over from
    # the fork (Linux), which here had just written the logits.
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def reset_peak_kb():
    # The RSS with freed heap returned and VmHWM reset to it (audit: the high-water mark of the
    # warm-up fit served as "before", which hid 10 MB of the vector fit's 71 at 5000 x 1000).
    import ctypes, gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):  # not Linux: the warm-up's peak is the best baseline there is
        return peak_kb()

method, path, labels = sys.argv[1:4]
z = np.load(path)
y = np.load(labels)
cls = getattr(calibration, calibration.METHODS[method])
cls().fit(z[:500], y[:500])  # numba compile (disk-cached afterwards), SciPy imports
before = reset_peak_kb()
times = []
for _ in range(3):
    t = time.perf_counter()
    cls().fit(z, y)
    times.append(time.perf_counter() - t)
peak = peak_kb()
print(json.dumps({"time": statistics.median(times), "peak_kb": peak, "before_kb": before}))
"""


def _write(folder: Path, n: int, c: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((n, c)) * 3.0).astype(np.float32)
    y = np.argmax(z / 2.5 + rng.gumbel(size=(n, c)), axis=1)
    paths = folder / f"z_{n}x{c}.npy", folder / f"y_{n}x{c}.npy"
    np.save(paths[0], z)
    np.save(paths[1], y)
    return paths


def design_budget_mib(n: int, c: int) -> tuple[float, float]:
    """``(copy, buffers)`` MiB that an affine (vector/matrix) fit on float32 ``(n, c)`` logits holds by design.

    The float64 copy of the logits, and ``_AffineBlocks``' two float64 buffers of a row block
    (its third, for scaled rows, is not made when it owns the copy).
    """
    from softmaxkit.calibration import _BLOCK_ELEMENTS

    rows = max(1, min(n, _BLOCK_ELEMENTS // c))
    return n * c * 8 / 2**20, 2 * rows * c * 8 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half the rows")
    args = parser.parse_args()
    rows = []
    baseline: dict[tuple[int, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method, n, c in CASES:
            n = n // 2 if args.quick else n
            z_path, y_path = Path(tmp) / f"z_{n}x{c}.npy", Path(tmp) / f"y_{n}x{c}.npy"
            if not z_path.exists():
                _write(Path(tmp), n, c)
            out = subprocess.run([sys.executable, "-c", CHILD, method, str(z_path), str(y_path)],
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            fit_mb = (r["peak_kb"] - r["before_kb"]) / 1024
            if method == "temperature":
                baseline[(n, c)] = r["time"]
            ratio = r["time"] / baseline[(n, c)] if (n, c) in baseline else float("nan")
            copy_mib, buffers_mib = design_budget_mib(n, c)
            budget = copy_mib + buffers_mib if method != "temperature" else float("nan")
            rows.append((method, f"{n} x {c}", r["time"], r["peak_kb"] / 1024, fit_mb, fit_mb / copy_mib,
                         budget, ratio))
    print(f"{'method':<12} {'size':<13} {'fit s':>7} {'peak MB':>8} {'fit MB':>7} {'f64 copies':>10} "
          f"{'budget MB':>9} {'other MB':>8} {'x temp':>7}")
    for method, size, t, peak, fit_mb, copies, budget, ratio in rows:
        shown = "" if ratio != ratio else f"{ratio:7.1f}"
        design = ("", "") if budget != budget else (f"{budget:9.0f}", f"{fit_mb - budget:8.0f}")
        print(f"{method:<12} {size:<13} {t:7.2f} {peak:8.0f} {fit_mb:7.0f} {copies:10.2f} "
              f"{design[0]:>9} {design[1]:>8} {shown:>7}")
    print("MB = MiB. f64 copies: what the fit adds, in float64 copies of the logits (1.00 would be the copy alone).")
    print("budget MB: one float64 copy + two float64 row-block buffers (design); other MB: the rest of fit MB.")
    print("x temp: matrix rows have other sizes than the temperature rows, so no ratio.")


if __name__ == "__main__":
    main()
