"""The ``softmaxkit`` command line.

One module per command in this package; each defines ``add_parser(subparsers)``
and ``run(args) -> int`` and keeps heavy imports inside ``run``, so
``softmaxkit --help`` stays instant.

Exit codes: 0 success, 1 failure (a one-line ``softmaxkit: error: ...``, no
traceback), 2 usage error (argparse, or a command's ``check(args)`` hook, which
runs before any file is read), 130 on Ctrl-C, 143 on SIGTERM and 129 on SIGHUP
(the terminal or ssh session closed; left alone when ignored, as under ``nohup``);
temporary files are removed in each case. With ``--json`` a failure prints
``{"error": "...", "exit_code": N}`` on stdout as well. Warnings print as one
line (``softmaxkit: warning: ...``). Set ``SOFTMAXKIT_DEBUG=1`` to get the
traceback of a failure instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import signal
import sys
import warnings
from typing import Sequence

from softmaxkit._extras import EXTRAS, install_hint

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "fit", "predict", "apply", "calibrate", "evaluate", "explain", "bench")


class CLIError(Exception):
    """A failure to report as one line and exit code 1."""


class UsageError(Exception):
    """A bad option value found by a command's ``check(args)`` hook: exit code 2, before any work."""


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that ``finally`` blocks remove temporary files."""


class HungUp(Terminated):
    """SIGHUP (the terminal or ssh session closed), raised as :class:`Terminated` is: its default
    action killed the process at once and left a full-size hidden temporary behind (audit)."""


class _Parser(argparse.ArgumentParser):
    """argparse, plus ``{"error": ...}`` on stdout for a usage error when ``--json`` was asked for."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        if getattr(self, "_json_requested", False):  # set by main() from its argv
            _print_json_error(f"{self.prog}: {message}", 2)
        super().error(message)


#: Set once a command has printed its ``--json`` document; a later failure then adds none
#: (stdout must stay one JSON document).
json_printed = False


#: Warnings already shown by this command: each is printed once. Library code that enters
#: ``warnings.catch_warnings()`` resets Python's own once-per-place memory, so a warning raised in
#: every fold of a cross-fit (the model and 5 calibration folds) would otherwise print 6 times.
warnings_shown: set[str] = set()


def _print_json_error(message: str, code: int) -> None:
    if json_printed:
        return
    sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
    sys.stdout.flush()


def _terminate(signum, frame) -> None:  # noqa: ANN001
    raise HungUp() if signum == getattr(signal, "SIGHUP", None) else Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="softmaxkit",
        description="Turn logits into probabilities you can trust: exact, fast, calibrated.",
    )
    from softmaxkit import __version__

    parser.add_argument("--version", action="version", version=f"softmaxkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"softmaxkit.cli.{name}").add_parser(sub)
    return parser


#: Options whose value may start with '-' followed by a digit (class names -5,-4,...).
_NEGATIVE_VALUE_OPTIONS = ("--classes",)


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--classes -5,-4`` as ``--classes=-5,-4``: argparse takes a value that starts with '-' for an
    option (it accepts only a lone negative number such as ``-5``), and fails with "expected one argument".
    No option of this CLI starts with '-' and a digit, so nothing else is read differently."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":  # the rest are operands
            return out + argv[i:]
        if argv[i] in _NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv) and re.match(r"^-\.?\d", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    global json_printed
    json_printed = False
    warnings_shown.clear()
    parser = build_parser()
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    for p in (parser, *_subparsers(parser)):
        p._json_requested = "--json" in argv
    args = parser.parse_args(argv)
    want_json = bool(getattr(args, "json", False))
    previous = _install_signal_handlers()
    try:
        # Inside the try: a check may import scikit-learn (seconds), and Ctrl-C then is an interruption too.
        _check_options(parser, args)
        from softmaxkit.io import watching_inputs

        with warnings.catch_warnings(), watching_inputs(_input_files(args)) as watch:
            warnings.showwarning = _show_warning
            try:
                code = int(args.run(args) or 0)
            except (CLIError, ValueError, TypeError, OSError):
                watch.verify()  # an input rewritten mid-read explains a failure better than its symptom does
                raise
            watch.verify()  # printed figures from a file that changed meanwhile are not a result
            return code
    except BrokenPipeError:
        # `softmaxkit ... | head`: the reader left; stop quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ImportError as exc:
        if os.environ.get("SOFTMAXKIT_DEBUG"):
            raise
        return _fail(_missing_dependency(exc), 1, want_json)
    except (CLIError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("SOFTMAXKIT_DEBUG"):
            raise
        return _fail(_one_line(exc), 1, want_json)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, want_json, prefix="softmaxkit: ")
    except HungUp:
        return _fail("hangup (SIGHUP: the terminal or session closed)", 129, want_json, prefix="softmaxkit: ")
    except Terminated:
        return _fail("terminated (SIGTERM)", 143, want_json, prefix="softmaxkit: ")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Run the command's ``check(args)`` hook: option values the parser cannot judge alone
    (nothing has been read yet); a :class:`UsageError` exits 2 with the command's usage."""
    check = getattr(args, "check", None)
    if check is None:
        return
    try:
        check(args)
    except UsageError as exc:
        sub = next((p for p in _subparsers(parser) if p.prog.endswith(f" {args.command}")), parser)
        sub.error(str(exc))


#: Parsed options that name files a command reads (explain's ``logits`` and ``labels`` are values, not files).
_INPUT_OPTIONS = ("data", "model", "calibrator", "logits", "probs", "labels", "conformal")


def _input_files(args: argparse.Namespace) -> tuple[str, ...]:
    """The command's input paths, for :func:`~softmaxkit.io.watching_inputs` (non-files are skipped there)."""
    return tuple(value for name in _INPUT_OPTIONS if isinstance(value := getattr(args, name, None), str))


def _fail(message: str, code: int, want_json: bool, *, prefix: str = "softmaxkit: error: ") -> int:
    print(f"{prefix}{message}", file=sys.stderr)
    if want_json:
        _print_json_error(message, code)
    return code


def _install_signal_handlers() -> dict:
    """Turn SIGTERM into :class:`Terminated` and SIGHUP into :class:`HungUp` (main thread only).

    Returns the previous handlers, to put back. A SIGHUP already ignored (``nohup``) stays
    ignored: that is how the user asked the command to outlive the terminal.
    """
    wanted = [signal.SIGTERM]
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        wanted.append(signal.SIGHUP)
    previous = {}
    try:
        for sig in wanted:
            previous[sig] = signal.signal(sig, _terminate)
    except ValueError:  # not the main thread (a test runner's worker): leave signals alone
        pass
    return {sig: handler for sig, handler in previous.items() if handler is not None}


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [p for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for p in action.choices.values()]


def _one_line(exc: BaseException) -> str:
    """The first line of an error's message (library messages can run to several)."""
    lines = str(exc).strip().splitlines()
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # "[Errno 2] No such file..." reads worse
    return lines[0] if lines else type(exc).__name__


#: Optional dependency -> the extra that installs it (pyproject's optional-dependencies).
def _missing_dependency(exc: ImportError) -> str:
    """'needs X: pip install softmaxkit[extra]' for an optional package that is not installed."""
    name = (exc.name or "").split(".")[0]
    if name in EXTRAS:
        return f"this command needs {name}, which is not installed: {install_hint(name)}"
    return _one_line(exc)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Replacement for ``warnings.showwarning``: one line, no source excerpt, once per command."""
    text = str(message).strip().splitlines()
    line = f"softmaxkit: warning: {text[0] if text else category.__name__}"
    if line not in warnings_shown:
        warnings_shown.add(line)
        print(line, file=sys.stderr)
