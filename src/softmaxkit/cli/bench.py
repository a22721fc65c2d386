"""``softmaxkit bench``: run the benchmark scripts and show their tables.

Each script in ``benchmarks/`` makes one claim and prints a table with ratios
measured in the same run. They run here as subprocesses (a crash or a
``sys.exit`` in one cannot take the others down), one after another so they do
not compete for the cores they time.

A script that checks goals ends with a line ``goals met: N/M``
(:data:`GOALS_LINE`); it is collected into the script's status line, the
summary and the ``--json`` record (``"goals": {"met": N, "total": M}``). A goal
not met is a measurement, not a failure: it does not change the exit status,
which says only whether every script ran.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import IO, Any, Iterator

from softmaxkit.cli._common import add_output_options, positive_int, recording_warnings

#: The benchmark scripts, in the order they run.
SCRIPTS = (
    "bench_ops.py", "bench_narrow_rows.py", "bench_linear_ce.py", "bench_torch_compile.py", "bench_classifier.py",
    "bench_defaults.py", "bench_cli_defaults.py", "bench_calibration.py", "bench_calibrate_memory.py",
    "bench_conformal.py", "bench_cli.py", "bench_cli_memory.py", "bench_transformers.py", "bench_calibration_prior.py",
)


#: The line a script prints after checking its goals; the last one in its output counts.
GOALS_LINE = re.compile(r"^goals met: (\d+)/(\d+)\s*$", re.MULTILINE)


def _goals(output: str) -> dict | None:
    """``{"met": N, "total": M}`` from the last :data:`GOALS_LINE` of ``output``; None if it has none."""
    found = GOALS_LINE.findall(output)
    if not found:
        return None
    met, total = (int(v) for v in found[-1])
    return {"met": met, "total": total}


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
                   help="pass --quick to each script (smaller sizes or fewer repeats: a smoke run, not a measurement)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this script (e.g. ops or bench_ops.py); repeatable")
    p.add_argument("--dir", type=Path, metavar="DIR",
                   help="where the scripts are (default: the checkout's benchmarks/)")
    p.add_argument("--timeout", type=positive_int, default=1800, metavar="S",
                   help="seconds before a script is stopped (default: %(default)s)")
    add_output_options(p)
    p.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Usage errors (exit code 2) before any script runs: an ``--only`` naming no benchmark."""
    _selected(args.only)


def _selected(only: list[str] | None) -> list[str]:
    """The scripts to run, in ``--only``'s order, each once; a name matching none is a :class:`UsageError`
    (exit code 2)."""
    from softmaxkit.cli import UsageError

    if not only:
        return list(SCRIPTS)
    chosen = []
    for name in only:
        stem = name.removesuffix(".py").removeprefix("bench_")
        script = f"bench_{stem}.py"
        if script not in SCRIPTS:
            raise UsageError(f"--only {name}: no such benchmark; choose from {', '.join(SCRIPTS)}")
        chosen.append(script)
    # Each once, first mention's place (audit: ``--only ops --only bench_ops.py`` ran bench_ops.py twice).
    return list(dict.fromkeys(chosen))


def _run_script(path: Path, *, quick: bool, timeout: int, echo: bool) -> dict:
    """Run one script, streaming its output when ``echo``; returns its record.

    ``timeout`` is wall-clock time from the start: the output is read by a
    thread, so a script that hangs without printing is stopped too (audit: the
    limit was checked only when a line arrived, so a silent script ran on). The
    script runs in a process group of its own, stopped whole on a timeout,
    Ctrl-C or SIGTERM, so that processes it started do not outlive it and
    compete with the next script for the cores.
    """
    import subprocess
    import sys
    import time

    cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    deadline = start + timeout
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", cwd=path.parent.parent, start_new_session=True) as proc:
        try:
            assert proc.stdout is not None  # set by stdout=PIPE
            for line in _lines_until(proc.stdout, deadline, exited=lambda: proc.poll() is not None):
                lines.append(line)
                if echo:
                    print("  " + line, end="", flush=True)
            code = proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
        except (TimeoutError, subprocess.TimeoutExpired):
            code = None
        finally:
            _stop_group(proc)
    output = "".join(lines)
    return {"script": path.name, "returncode": code, "seconds": time.perf_counter() - start,
            "output": output, "timed_out": code is None, "goals": _goals(output)}


#: Seconds of silence after the script has exited before its output counts as ended: a process
#: it left behind may hold the pipe open, and the script's result must not wait for it.
_EXIT_GRACE = 2.0


def _lines_until(stream: IO[str], deadline: float, *, exited: Any) -> Iterator[str]:
    """The lines of ``stream`` as they come, until its end; :class:`TimeoutError` at ``deadline``
    (a :func:`time.perf_counter` time) even when no line comes.

    A daemon thread does the blocking reads, so the wait for the next line can
    have a time limit. Once ``exited()`` is true the output also ends after
    :data:`_EXIT_GRACE` seconds without a line (audit: a child that kept the
    pipe open made a script that exited 0 read as "timed out").
    """
    import queue
    import threading
    import time

    pending: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        try:
            for line in stream:
                pending.put(line)
        except (OSError, ValueError):  # the pipe was closed under it: the script was stopped
            pass
        finally:
            pending.put(None)  # end of output

    threading.Thread(target=read, name="bench-output", daemon=True).start()
    silent_since = None
    while True:
        now = time.perf_counter()
        if now >= deadline:  # checked before each line too: a script that never stops printing
            raise TimeoutError
        try:
            line = pending.get(timeout=min(deadline - now, _EXIT_GRACE / 4))
        except queue.Empty:
            if exited():
                silent_since = now if silent_since is None else silent_since
                if time.perf_counter() - silent_since >= _EXIT_GRACE:
                    return
            continue
        if line is None:
            return
        silent_since = None
        yield line


def _stop_group(proc: Any) -> None:
    """Kill ``proc``'s process group (the script and what it started) if any of it still runs, and reap it."""
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the script and its children have all exited
        pass
    proc.wait()


@recording_warnings  # --json "warnings": every warning said, as the other commands list them
def run(args: argparse.Namespace, warned: list[str]) -> int:
    from softmaxkit.cli import CLIError
    from softmaxkit.cli._common import Printer

    say = Printer(args)
    # Absolute: each script runs with the checkout as its working directory, where a relative path
    # would name another file (audit: --dir fakebench/benchmarks ran fakebench/fakebench/...).
    folder = (args.dir or default_dir()).resolve()
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
        goals = record["goals"]
        met = f"; goals met {goals['met']}/{goals['total']}" if goals else ""
        say(f"== {name}: {status} in {record['seconds']:.1f} s{met}", "")
    failed = [r["script"] + (f" (timed out after {args.timeout} s)" if r["timed_out"] else "")
              for r in records if not r.get("skipped") and r["returncode"] != 0]
    checked = [r for r in records if r.get("goals")]
    all_met = all(r["goals"]["met"] == r["goals"]["total"] for r in checked) if checked else None
    if failed and all_met:
        all_met = False  # a script that crashed or timed out may not have reached its goals line
    if checked:
        say("goals met: " + ", ".join(f"{r['script']} {r['goals']['met']}/{r['goals']['total']}" for r in checked)
            + ("" if all_met else " (not all met)"))
    error = None
    if all(r.get("skipped") for r in records):
        # Nothing was measured: exit 0 here would hide a wrong --dir from a script or a CI job.
        error = (f"no benchmark ran: {folder} holds none of {_script_list([r['script'] for r in records])}; "
                 "pass --dir with the benchmarks/ folder of a source checkout")
    elif failed:
        # The output is above only when text was printed (--quiet hides it; --json holds it in "results").
        error = f"benchmark(s) failed: {', '.join(failed)}" + (" (their output is above)" if say.text else "")
    # A failure's "error" and "exit_code" go into the one JSON document, as the README says a failure prints
    # them: printed after it, they would make stdout two documents, so they were left out (audit BJ).
    say.result({"quick": args.quick, "dir": str(folder), "results": records, "goals_all_met": all_met,
                "warnings": warned, **({"error": error, "exit_code": 1} if error else {})})
    if error:
        raise CLIError(error)
    return 0


def _script_list(names: list[str]) -> str:
    """``names`` for an error line: in full when few, else counted (all 11 would not fit one line)."""
    return ", ".join(names) if len(names) <= 3 else f"the {len(names)} benchmark scripts (bench_*.py)"
