"""``softmaxkit bench``: run the benchmark scripts and show their tables.

Each script in ``benchmarks/`` makes one claim and prints a table with ratios
measured in the same run. They run here as subprocesses (a crash or a
``sys.exit`` in one cannot take the others down), one after another so they do
not compete for the cores they time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from softmaxkit.cli._common import add_output_options, positive_int

#: The benchmark scripts, in the order they run.
SCRIPTS = (
    "bench_ops.py", "bench_narrow_rows.py", "bench_linear_ce.py", "bench_torch_compile.py", "bench_classifier.py",
    "bench_defaults.py", "bench_cli_defaults.py", "bench_calibration.py", "bench_conformal.py", "bench_cli.py",
    "bench_transformers.py",
)


def default_dir() -> Path:
    """``benchmarks/`` of the source checkout this package was installed from (editable installs)."""
    import softmaxkit

    return Path(softmaxkit.__file__).resolve().parents[2] / "benchmarks"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmark scripts and print their tables",
        description="Run the scripts in benchmarks/ one at a time and print their tables. "
        f"Scripts: {', '.join(SCRIPTS)}.",
    )
    p.add_argument("--quick", action="store_true",
                   help="pass --quick to each script (small sizes: a smoke run, not a measurement)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this script (e.g. ops or bench_ops.py); repeatable")
    p.add_argument("--dir", type=Path, metavar="DIR",
                   help="where the scripts are (default: the checkout's benchmarks/)")
    p.add_argument("--timeout", type=positive_int, default=1800, metavar="S",
                   help="seconds before a script is stopped (default: %(default)s)")
    add_output_options(p)
    p.set_defaults(run=run)


def _selected(only: list[str] | None) -> list[str]:
    from softmaxkit.cli import CLIError

    if not only:
        return list(SCRIPTS)
    chosen = []
    for name in only:
        stem = name.removesuffix(".py").removeprefix("bench_")
        script = f"bench_{stem}.py"
        if script not in SCRIPTS:
            raise CLIError(f"--only {name}: no such benchmark; choose from {', '.join(SCRIPTS)}")
        chosen.append(script)
    return chosen


def _run_script(path: Path, *, quick: bool, timeout: int, echo: bool) -> dict:
    """Run one script, streaming its output when ``echo``; returns its record."""
    import subprocess
    import sys
    import time

    cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=path.parent.parent) as proc:
        try:
            assert proc.stdout is not None  # set by stdout=PIPE
            for line in proc.stdout:
                lines.append(line)
                if echo:
                    print("  " + line, end="", flush=True)
                if time.perf_counter() - start > timeout:
                    raise subprocess.TimeoutExpired(cmd, timeout)
            code = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    return {"script": path.name, "returncode": code, "seconds": time.perf_counter() - start,
            "output": "".join(lines), "timed_out": code is None}


def run(args: argparse.Namespace) -> int:
    from softmaxkit.cli import CLIError
    from softmaxkit.cli._common import Printer

    say = Printer(args)
    folder = args.dir or default_dir()
    if not folder.is_dir():
        raise CLIError(f"{folder}: no benchmarks folder (the scripts ship with the source checkout); pass --dir DIR")
    records = []
    for name in _selected(args.only):
        path = folder / name
        if not path.is_file():
            say(f"== {name}: skipped, not found in {folder}", "")
            records.append({"script": name, "skipped": True})
            continue
        say(f"== {name}{' --quick' if args.quick else ''}")
        record = _run_script(path, quick=args.quick, timeout=args.timeout, echo=say.text)
        records.append(record)
        status = ("timed out" if record["timed_out"] else
                  "ok" if record["returncode"] == 0 else f"failed (exit {record['returncode']})")
        say(f"== {name}: {status} in {record['seconds']:.1f} s", "")
    failed = [r["script"] for r in records if not r.get("skipped") and r["returncode"] != 0]
    say.result({"quick": args.quick, "dir": str(folder), "results": records})
    if failed:
        raise CLIError(f"benchmark(s) failed: {', '.join(failed)} (their output is above)")
    return 0
