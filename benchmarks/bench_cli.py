"""The command line's wall time and peak memory, each command in a fresh process (issue 16).

Claims under test, measured in one run on this machine:

* ``predict`` and ``evaluate`` on 100 rows take under 1 s of wall time in a
  fresh process once numba's cache is warm (the first, warming run is not
  counted); ``python -c "import sklearn"`` is timed alongside as the
  reference, since importing scikit-learn and SciPy was most of the old cost;
* ``predict`` of 2M x 50 features to CSV takes at most 10 s (pyarrow's CSV
  writer), from .npy and from Parquet features;
* ``evaluate`` and ``calibrate`` on a large logits file (100k x 500 float32:
  200 MB as .npy) peak at no more than twice the input file's size in RSS.
  The same command on a 1000-row file gives the fixed cost (interpreter,
  NumPy, pyarrow, numba's compiled kernels), so the table also shows how much
  the input adds.

Every timing is the median of ``--repeats`` fresh processes; peak RSS is the
child's own ``ru_maxrss`` (``os.wait4``), so it includes file pages a memory
map holds resident, not the parent's memory.

Usage::

    python benchmarks/bench_cli.py            # full sizes (a few minutes; ~3 GB of temporary files)
    python benchmarks/bench_cli.py --quick    # small sizes, 3 repeats (about a minute)

The temporary directory is removed at the end unless ``--keep DIR`` names one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


#: Runs one command and prints its wall time and peak RSS. It runs in a small interpreter of its
#: own: Linux keeps a process's peak RSS across fork and exec, so a command forked straight from
#: this (large) benchmark process would report this process's memory as its own.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run(argv: list[str], *, cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the child's own ``ru_maxrss``) of one fresh process."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], cwd=cwd, capture_output=True, text=True)
    try:
        wall, rss_kb, code = proc.stdout.split()
    except ValueError:
        raise SystemExit(f"launcher failed: {' '.join(argv)}\n{proc.stderr}") from None
    if int(code) != 0:
        raise SystemExit(f"failed ({code}): {' '.join(argv)}\n{proc.stderr}")
    return float(wall), int(rss_kb) / 1024  # Linux reports KB


def measure(argv: list[str], *, cwd: Path, repeats: int) -> tuple[float, float]:
    """Median wall time and the largest peak RSS over ``repeats`` runs."""
    results = [run(argv, cwd=cwd) for _ in range(repeats)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def softmaxkit(*args: object) -> list[str]:
    return [sys.executable, "-m", "softmaxkit", *map(str, args), "-q"]


def make_small(folder: Path) -> None:
    """100 labelled rows with text classes (iris-sized), a model, and 100 x 3 logits."""
    from softmaxkit.data import write_columns

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    names = np.array(["setosa", "versicolor", "virginica"])
    y = names[np.argmax(X[:, :3] + rng.normal(scale=0.5, size=(100, 3)), axis=1)]
    write_columns(folder / "small.csv", {**{f"x{j}": X[:, j] for j in range(4)}, "species": y})
    write_columns(folder / "small_labels.csv", {"species": y})
    np.save(folder / "small_logits.npy", rng.normal(size=(100, 3)))
    write_columns(folder / "small_index.csv", {"y": rng.integers(0, 3, 100)})


def make_wide_features(folder: Path, n: int, d: int = 50) -> None:
    """n x d float64 features as .npy and .parquet, and a linear 3-class model with their names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from softmaxkit import SoftmaxClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    np.save(folder / "X.npy", X)
    pq.write_table(pa.table({f"f{j}": X[:, j] for j in range(d)}), folder / "X.parquet")
    head = X[:5000]
    y = (head[:, 0] + head[:, 1] > 0).astype(int) + (head[:, 2] > 0.5)
    model = SoftmaxClassifier(max_iter=30).fit(head, y)
    model.feature_names_in_ = np.array([f"f{j}" for j in range(d)], dtype=object)
    model.target_name_ = "y"
    model.save(folder / "wide.npz")


def make_logits(folder: Path, n: int, k: int = 500, name: str = "z") -> None:
    """n x k float32 logits with labels, as .npy and as .parquet (logit_<class> columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    y = rng.integers(0, k, n)
    z = rng.standard_normal((n, k), dtype=np.float32) * 2
    z[np.arange(n), y] += 4
    np.save(folder / f"{name}.npy", z)
    np.save(folder / f"{name}_y.npy", y)
    pq.write_table(pa.table({f"logit_{j}": z[:, j] for j in range(k)}), folder / f"{name}.parquet")
    pq.write_table(pa.table({"y": y.astype(str)}), folder / f"{name}_y.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (200k x 50 predict, 20k x 500 logits)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per small command (default 5; quick 3)")
    parser.add_argument("--keep", metavar="DIR", help="build the data in DIR and keep it")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    big_repeats = 1 if args.quick else 2
    n_predict = 200_000 if args.quick else 2_000_000
    n_logits = 20_000 if args.quick else 100_000

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_cli_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        make_small(folder)
        make_wide_features(folder, n_predict)
        make_logits(folder, n_logits)
        make_logits(folder, 1000, name="z_base")
        print(f"# data built in {time.perf_counter() - t0:.1f} s in {folder}", file=sys.stderr)
        run(softmaxkit("fit", "small.csv", "--target", "species", "--out", "small.npz", "--no-report"), cwd=folder)

        small = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ('python -c "import sklearn"  (reference)', [sys.executable, "-c", "import sklearn"]),
            ('python -c "import softmaxkit"', [sys.executable, "-c", "import softmaxkit"]),
            ("predict 100 rows (CSV, text classes)", softmaxkit("predict", "small.npz", "small.csv", "--out",
                                                                "small_p.csv")),
            ("evaluate --probs (predict's output, class names)",
             softmaxkit("evaluate", "--probs", "small_p.csv", "--labels", "small_labels.csv")),
            ("evaluate --logits 100 x 3 .npy", softmaxkit("evaluate", "--logits", "small_logits.npy", "--labels",
                                                          "small_index.csv")),
            ("evaluate --ci (bootstrap asked for)", softmaxkit("evaluate", "--logits", "small_logits.npy",
                                                               "--labels", "small_index.csv", "--ci")),
        ]
        for _, argv in small:  # warm numba's cache and the OS page cache; not counted
            run(argv, cwd=folder)
        rows = []
        sklearn_s = None
        for label, argv in small:
            wall, rss = measure(argv, cwd=folder, repeats=repeats)
            if "sklearn" in label:
                sklearn_s = wall
            rows.append((label, wall, rss, None))

        size = lambda name: (folder / name).stat().st_size / 2**20  # noqa: E731
        big = [
            # a .npy has no column names: the user vouches for the training order (--by-position)
            (f"predict {n_predict:,} x 50 .npy -> CSV",
             softmaxkit("predict", "wide.npz", "X.npy", "--by-position", "--out", "P.csv"), "X.npy"),
            (f"predict {n_predict:,} x 50 .parquet -> CSV",
             softmaxkit("predict", "wide.npz", "X.parquet", "--out", "P.csv"), "X.parquet"),
            (f"evaluate {n_logits:,} x 500 .npy", softmaxkit("evaluate", "--logits", "z.npy", "--labels", "z_y.npy"),
             "z.npy"),
            ("  same, 1,000 rows (fixed cost)", softmaxkit("evaluate", "--logits", "z_base.npy", "--labels",
                                                           "z_base_y.npy"), "z_base.npy"),
            (f"evaluate {n_logits:,} x 500 .parquet",
             softmaxkit("evaluate", "--logits", "z.parquet", "--labels", "z_y.parquet"), "z.parquet"),
            ("  same, 1,000 rows (fixed cost)", softmaxkit("evaluate", "--logits", "z_base.parquet", "--labels",
                                                           "z_base_y.parquet"), "z_base.parquet"),
            (f"calibrate {n_logits:,} x 500 .npy",
             softmaxkit("calibrate", "--logits", "z.npy", "--labels", "z_y.npy", "--out", "t.npz"), "z.npy"),
            ("  same, 1,000 rows (fixed cost)", softmaxkit("calibrate", "--logits", "z_base.npy", "--labels",
                                                           "z_base_y.npy", "--out", "t0.npz"), "z_base.npy"),
            (f"calibrate {n_logits:,} x 500 .parquet",
             softmaxkit("calibrate", "--logits", "z.parquet", "--labels", "z_y.parquet", "--out", "t.npz"),
             "z.parquet"),
            ("  same, 1,000 rows (fixed cost)", softmaxkit("calibrate", "--logits", "z_base.parquet", "--labels",
                                                           "z_base_y.parquet", "--out", "t0.npz"), "z_base.parquet"),
        ]
        run(big[2][1], cwd=folder)  # warm the 500-class kernels
        for label, argv, source in big:
            wall, rss = measure(argv, cwd=folder, repeats=big_repeats)
            rows.append((label, wall, rss, size(source)))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"softmaxkit CLI, fresh processes; median of {repeats} runs (small) / {big_repeats} (large); "
          f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print()
    header = f"{'command':<46} {'wall s':>7} {'/ sklearn':>9} {'peak RSS MB':>12} {'input MB':>9} {'RSS/input':>9}"
    print(header)
    print("-" * len(header))
    for label, wall, rss, input_mb in rows:
        ratio = f"{wall / sklearn_s:.2f}x" if sklearn_s else ""
        inp = f"{input_mb:.1f}" if input_mb is not None else ""
        per = f"{rss / input_mb:.2f}" if input_mb else ""
        print(f"{label:<46} {wall:>7.2f} {ratio:>9} {rss:>12.0f} {inp:>9} {per:>9}")


if __name__ == "__main__":
    main()
