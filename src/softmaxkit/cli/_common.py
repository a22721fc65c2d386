"""What every command shares: ``--json``/``--quiet``, printing, progress bars, option types.

Kept free of heavy imports (rich loads only when a bar is shown) so that
``softmaxkit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple

from softmaxkit.cli import CLIError


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--json`` and ``--quiet``, the same on every command."""
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of text")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


class Printer:
    """Text for humans on stdout, unless ``--quiet`` or ``--json`` asked otherwise."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = bool(getattr(args, "json", False))
        self.quiet = bool(getattr(args, "quiet", False))

    @property
    def text(self) -> bool:
        return not (self.json or self.quiet)

    def __call__(self, *lines: str) -> None:
        if self.text:
            for line in lines:
                print(line)

    def result(self, payload: Any) -> None:
        """The command's ``--json`` document (no-op otherwise; ``--quiet`` does not hide it)."""
        if self.json:
            from softmaxkit.report import metrics_json

            sys.stdout.write(metrics_json(payload))


def progress(printer: Printer, description: str, total: int | None = None) -> Any:
    """The library's rich progress bar (stderr), shown only on a terminal and without ``--quiet``.

    In a pipe or a log a bar is noise, and stderr must stay clean for the
    one-line errors. Yields a tracker: ``advance(steps, **stats)``.
    """
    from softmaxkit._progress import progress as _progress

    enabled = not printer.quiet and sys.stderr.isatty()
    return _progress(total, description=description, enabled=enabled, transient=True)


def hidden_sizes(text: str) -> tuple[int, ...]:
    """argparse type for ``--hidden 128,64`` (an empty string or ``none`` means linear)."""
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 128,64, got {text!r}")
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def fraction(text: str) -> float:
    """argparse type for a fraction in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def check_same_length(a_name: str, a_len: int, b_name: str, b_len: int) -> None:
    """One-line error when two inputs that pair up row by row do not."""
    if a_len != b_len:
        raise CLIError(f"{a_name} has {a_len} rows but {b_name} has {b_len}; they must pair up row by row")


def text_table(columns: list[str], rows: list[list[Any]], *, indent: str = "  ") -> list[str]:
    """Lines of a plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[j]) for r in cells)) if cells else len(h) for j, h in enumerate(columns)]
    numeric = [bool(cells) and all(_is_number(r[j]) for r in cells) for j in range(len(columns))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(columns)), *(line(r) for r in cells)]


def _is_number(text: str) -> bool:
    try:
        float(text.split(" ")[0].replace(",", "").rstrip("%"))
    except ValueError:
        return text in ("n/a", "inf", "-inf")
    return True


def check_output(
    out: str, *, inputs: tuple[str, ...] = (), suffixes: tuple[str, ...] | None = None, option: str = "--out"
) -> None:
    """Fail before any work when ``out`` has an unusable extension or is one of the inputs.

    (The atomic writers check the inputs again at write time; checking first saves a
    long training run that could never be saved.)
    """
    path = Path(out)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise CLIError(f"{option} {out}: unsupported extension {path.suffix or '(none)'!r}; use {', '.join(suffixes)}")
    for inp in inputs:
        if inp is not None and path.exists() and Path(inp).exists() and path.resolve() == Path(inp).resolve():
            raise CLIError(f"{option} {out} is also an input file; refusing to overwrite it, choose another path")
    if path.is_dir():
        raise CLIError(f"{option} {out} is a directory; give a file name")


#: How far a row of --probs may sum from 1 (float32 files round at about 1e-7 per entry).
PROB_SUM_TOL = 1e-4


def check_probabilities(path: str, probs) -> None:
    """Rows of probabilities: entries in [0, 1] summing to 1; else a line naming the first bad row."""
    import numpy as np

    bad = (probs < 0).any(axis=1) | (probs > 1).any(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise CLIError(f"{path}: row {row + 1}: probabilities must lie in [0, 1], got {probs[row].tolist()} "
                       "(raw scores? pass them with --logits)")
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_TOL
    if off.any():
        row = int(np.argmax(off))
        raise CLIError(f"{path}: row {row + 1}: probabilities sum to {sums[row]:.6g}, not 1 "
                       "(raw scores? pass them with --logits)")


def two_class_scores(scores: Any, *, kind: str) -> Any:
    """Expand a single score column of a binary problem to two columns; others pass through.

    One probability column is P(class 1): ``[1 - p, p]``. One logit column is the
    log-odds ``z``: ``[-z/2, z/2]``, whose softmax is ``[1 - sigmoid(z), sigmoid(z)]``.
    """
    import numpy as np

    if scores.shape[1] != 1:
        return scores
    s = scores[:, 0]
    return np.column_stack([1.0 - s, s] if kind == "probability" else [-s / 2, s / 2])


def add_prediction_inputs(p: argparse.ArgumentParser, *, probs_help: str) -> None:
    """``--logits FILE`` or ``--probs FILE`` (exactly one), ``--labels FILE`` and
    ``--label-column``: the inputs of the commands that score a network's predictions."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--logits", metavar="FILE",
                        help="logits, one column per class (or one column: a binary problem's log-odds)")
    source.add_argument("--probs", metavar="FILE", help=probs_help)
    p.add_argument("--labels", required=True, metavar="FILE", help="class indices 0..K-1, one per row")
    p.add_argument("--label-column", metavar="COL", help="the labels' column when FILE has several")


class Predictions(NamedTuple):
    """What :func:`read_predictions` read: ``scores`` (n, K) logits or probabilities
    (a single binary column expanded by :func:`two_class_scores`) and ``labels`` (n,)."""

    source: str  # the --logits or --probs file
    kind: str  # "logit" or "probability"
    scores: Any
    labels: Any


def read_predictions(args: argparse.Namespace) -> Predictions:
    """Read and check the inputs of :func:`add_prediction_inputs`: probabilities
    must be rows that sum to 1, labels must lie in 0..K-1, and both files must
    have the same number of rows (each failure is a one-line error naming the file)."""
    from softmaxkit.data import read_labels, read_matrix

    source = args.logits or args.probs
    kind = "logit" if args.logits else "probability"
    scores = two_class_scores(read_matrix(source, what=kind, binary_column=True), kind=kind)
    if args.probs:
        check_probabilities(source, scores)
    labels = read_labels(args.labels, column=args.label_column, n_classes=scores.shape[1])
    check_same_length(source, len(scores), args.labels, len(labels))
    return Predictions(source, kind, scores, labels)


def encode_labels(y: Any, classes: Any, *, path: str, column: str | None = None, rows: Any = None) -> Any:
    """Class indices of labels ``y`` in ``classes``; a label not among them is a one-line error.

    Labels read from text files may come back as ``1`` where the model stored
    ``"1"`` (or the reverse), so a second match is tried on the string forms.
    ``path``, ``column`` and ``rows`` (original row numbers, when ``y`` is a
    subset of the file) locate a bad label in the message.
    """
    from softmaxkit.data import location

    import numpy as np

    y, classes = np.asarray(y), np.asarray(classes)
    lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    by_text = {str(c): i for c, i in lookup.items()}
    out = np.empty(len(y), dtype=np.int64)
    for row, label in enumerate(y):
        key = label.item() if hasattr(label, "item") else label
        index = lookup.get(key, by_text.get(str(key)))
        if index is None:
            shown = ", ".join(str(c) for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
            file_row = int(rows[row]) if rows is not None else row
            raise CLIError(
                location(Path(path), file_row, column) + f"label {key!r} was not seen in training (classes: {shown})"
            )
        out[row] = index
    return out


def require_two_classes(y: Any, *, where: str) -> None:
    """A classifier (or a calibrator) needs at least two distinct labels."""
    import numpy as np

    values = np.unique(np.asarray(y))
    if len(values) < 2:
        only = values[0].item() if len(values) else None
        raise CLIError(f"{where}: every label is {only!r}; at least 2 classes are needed")
