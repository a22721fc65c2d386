"""The ``softmaxkit`` command line.

One module per command in this package; each defines ``add_parser(subparsers)``
and ``run(args) -> int`` and keeps heavy imports inside ``run``, so
``softmaxkit --help`` stays instant.

Exit codes: 0 success, 1 failure (a one-line ``softmaxkit: error: ...``, no
traceback), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("explain",)


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
        return int(args.run(args) or 0)
    except (CLIError, ValueError, TypeError, OSError) as exc:
        message = str(exc) or type(exc).__name__
        print(f"softmaxkit: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("softmaxkit: interrupted", file=sys.stderr)
        return 130
