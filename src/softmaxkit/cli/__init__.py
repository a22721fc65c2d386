"""The ``softmaxkit`` command line.

One module per command in this package; each defines ``add_parser(subparsers)``
and ``run(args) -> int`` and keeps heavy imports inside ``run``, so
``softmaxkit --help`` stays instant.

Exit codes: 0 success, 1 failure (a one-line ``softmaxkit: error: ...``, no
traceback), 2 usage error (argparse). Warnings print as one line too
(``softmaxkit: warning: ...``). Set ``SOFTMAXKIT_DEBUG=1`` to get the
traceback of a failure instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import Sequence

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "fit", "predict", "calibrate", "evaluate", "explain", "bench")


class CLIError(Exception):
    """A failure to report as one line and exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmaxkit",
        description="Turn logits into probabilities you can trust: exact, fast, calibrated.",
    )
    from softmaxkit import __version__

    parser.add_argument("--version", action="version", version=f"softmaxkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"softmaxkit.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.run(args) or 0)
    except BrokenPipeError:
        # `softmaxkit ... | head`: the reader left; stop quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ImportError as exc:
        if os.environ.get("SOFTMAXKIT_DEBUG"):
            raise
        print(f"softmaxkit: error: {_missing_dependency(exc)}", file=sys.stderr)
        return 1
    except (CLIError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("SOFTMAXKIT_DEBUG"):
            raise
        print(f"softmaxkit: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("softmaxkit: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    """The first line of an error's message (library messages can run to several)."""
    lines = str(exc).strip().splitlines()
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # "[Errno 2] No such file..." reads worse
    return lines[0] if lines else type(exc).__name__


#: Optional dependency -> the extra that installs it (pyproject's optional-dependencies).
_EXTRAS = {"matplotlib": "plot", "pyarrow": "io", "safetensors": "io", "torch": "torch"}


def _missing_dependency(exc: ImportError) -> str:
    """'needs X: pip install softmaxkit[extra]' for an optional package that is not installed."""
    name = (exc.name or "").split(".")[0]
    if name in _EXTRAS:
        return f"this command needs {name}, which is not installed: pip install 'softmaxkit[{_EXTRAS[name]}]'"
    return _one_line(exc)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Replacement for ``warnings.showwarning``: one line, no source excerpt."""
    text = str(message).strip().splitlines()
    print(f"softmaxkit: warning: {text[0] if text else category.__name__}", file=sys.stderr)
