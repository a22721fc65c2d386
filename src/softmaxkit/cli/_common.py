"""What every command shares: ``--json``/``--quiet``, printing, progress bars, option types.

Kept free of heavy imports (rich loads only when a bar is shown) so that
``softmaxkit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from softmaxkit.cli import CLIError


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """The lines of the warnings the command shows on stderr while inside, in order, each once,
    as the command's ``--json`` ``"warnings"`` list.

    Wraps the ``warnings.showwarning`` that :func:`softmaxkit.cli.main` installs, so every warning
    the user sees (id pairing, coverage shortfalls, the library's own) is recorded by the one place
    that prints it, in its one-line form, and no command keeps a list of its own.
    """
    import warnings

    lines: list[str] = []
    shown = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        text = str(message).strip().splitlines()
        first = text[0] if text else category.__name__
        if first not in lines:
            lines.append(first)
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = record
    try:
        yield lines
    finally:
        warnings.showwarning = shown


def recording_warnings(body: Callable[[argparse.Namespace, list[str]], int]) -> Callable[[argparse.Namespace], int]:
    """A command's ``run(args)`` from ``body(args, warned)``, which runs inside :func:`recorded_warnings`
    and puts ``warned`` into its ``--json`` ``"warnings"``: every warning shown on stderr (id pairing,
    coverage shortfalls, the reader's, the library's) reaches a pipeline that reads stdout alone (audit:
    a labels file paired by position was said on stderr only)."""
    import functools

    @functools.wraps(body)
    def run(args: argparse.Namespace) -> int:
        with recorded_warnings() as warned:
            return body(args, warned)

    return run


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
            import softmaxkit.cli as cli
            from softmaxkit.report import metrics_json

            sys.stdout.write(metrics_json(payload))
            cli.json_printed = True


def progress(printer: Printer, description: str, total: int | None = None) -> Any:
    """The library's rich progress bar (stderr), shown only on a terminal and without ``--quiet``.

    In a pipe or a log a bar is noise, and stderr must stay clean for the
    one-line errors. Yields a tracker: ``advance(steps, **stats)``.
    """
    from softmaxkit._progress import progress as _progress

    enabled = not printer.quiet and sys.stderr.isatty()
    return _progress(total, description=description, enabled=enabled, transient=True)


def hidden_sizes(text: str) -> tuple[int, ...]:
    """argparse type for ``--hidden 128,64`` (``none`` means linear).

    ``0`` is refused like every other non-positive size, as the estimator
    refuses it: a layer of 0 units is not "no layer". So is an empty string: ``--hidden "$H"`` with an
    unset variable trained a linear model without a word (audit BW).
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give layer sizes such as 128,64, or 'none' for no hidden layer")
    if text.strip().lower() == "none":
        return ()
    try:
        sizes = tuple(parse_number(part, int) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 128,64, got {text!r}")
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"layer sizes must be positive, got {text!r} (use 'none' for no hidden layer)"
        )
    return sizes


def class_names(text: str) -> list[str]:
    """argparse type for ``--classes a,b,c``: distinct, non-empty names in score-column order."""
    names = [part.strip() for part in text.split(",")]
    if len(names) < 2 or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected at least two comma-separated class names such as a,b,c, got {text!r}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise argparse.ArgumentTypeError(f"class {dup!r} is listed twice in {text!r}")
    return names


def column_list(text: str) -> list[str]:
    """argparse type for ``--ignore id,date``: one or more comma-separated column names."""
    names = [part.strip() for part in text.split(",")]
    if any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names such as id,date, got {text!r}")
    return names


def add_ignore_option(p: argparse.ArgumentParser, *, what: str) -> None:
    """``--ignore COL[,COL]`` (repeatable), the same on every command that reads a table: columns
    that are not ``what`` (``features``, ``scores``); read back with :func:`ignored_columns`."""
    p.add_argument("--ignore", type=column_list, action="append", default=[], metavar="COL[,COL]",
                   help=f"columns that are not {what} (ids, dates); repeatable. A saved row index (pandas' "
                   "unnamed index column) is always left out")


def ignored_columns(args: argparse.Namespace) -> tuple[str, ...]:
    """The columns of every ``--ignore`` (:func:`add_ignore_option`), in order."""
    return tuple(c for group in getattr(args, "ignore", None) or () for c in group)


def parse_number(text: str, kind: type = float) -> Any:
    """``kind(text)`` (``float`` or ``int``) for an option value, refusing ``_`` between digits.

    Python's own parsers read ``1_000`` as 1000 but also ``0_5`` as 5, where
    0.5 was most likely meant; a command line has no need for digit grouping,
    so an underscore is refused rather than guessed at.

    Raises
    ------
    argparse.ArgumentTypeError
        When ``text`` holds an underscore (argparse prints it as the option's error, exit code 2).
    ValueError
        When ``text`` is not a number at all (the caller says what it expected).
    """
    if "_" in text:
        raise argparse.ArgumentTypeError(f"write numbers without '_' (Python reads 1_000 as 1000 but also 0_5 as 5), "
                                         f"got {text!r}")
    return kind(text)


def _number_option(text: str, *, kind: type, accept: Any, expected: str) -> Any:
    """``text`` parsed by :func:`parse_number` as ``kind``, or an argparse error saying
    ``expected`` when it is no number or ``accept(value)`` is false."""
    try:
        value = parse_number(text, kind)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type for any finite number (``nan`` and ``inf`` are refused)."""
    import math

    return _number_option(text, kind=float, accept=math.isfinite, expected="a finite number")


def positive_float(text: str) -> float:
    """argparse type for a finite number > 0."""
    import math

    return _number_option(text, kind=float, accept=lambda v: math.isfinite(v) and v > 0,
                          expected="a finite number > 0")


def fraction(text: str) -> float:
    """argparse type for a fraction in (0, 1)."""
    return _number_option(text, kind=float, accept=lambda v: 0.0 < v < 1.0,
                          expected="a number strictly between 0 and 1")


def positive_int(text: str) -> int:
    """argparse type for an integer > 0."""
    return _number_option(text, kind=int, accept=lambda v: v > 0, expected="a positive integer")


def integer(text: str) -> int:
    """argparse type for any integer (``--seed``)."""
    return _number_option(text, kind=int, accept=lambda v: True, expected="an integer")


#: The seeds every consumer of ``--seed`` takes: scikit-learn's ``random_state`` and NumPy's legacy
#: ``RandomState`` accept 0 to 2**32 - 1 only (``default_rng`` takes more, but one option has one range).
SEED_LIMIT = 2**32


def random_seed(text: str) -> int:
    """argparse type for ``--seed``: an integer from 0 to 2**32 - 1.

    A seed outside that range used to pass the parser and fail after the data
    were read, with exit code 1 and scikit-learn's "The 'random_state'
    parameter of train_test_split must be an int in the range [0, 4294967295]"
    or NumPy's "expected non-negative integer", neither naming ``--seed``.
    """
    return _number_option(text, kind=int, accept=lambda v: 0 <= v < SEED_LIMIT,
                          expected=f"an integer from 0 to {SEED_LIMIT - 1} (2**32 - 1)")


#: Letters whose names start with a vowel sound ("an F32 array", "an MLPClassifier", "an SVC").
_VOWEL_SOUNDING_LETTERS = frozenset("AEFHILMNORSX")
#: Word starts with a vowel letter read as a consonant ("a OneVsRestClassifier", "a UniformScaler").
_CONSONANT_SOUNDING_STARTS = ("one", "once", "uni", "usa", "use", "usu", "eu")


def calibration_name(method: str) -> str:
    """The name of a ``--method``/``--calibrate`` value in prose: "temperature scaling",
    "isotonic calibration", "Platt scaling" (``f"{method} scaling"`` gave "isotonic scaling")."""
    return {"isotonic": "isotonic calibration", "platt": "Platt scaling"}.get(method, f"{method} scaling")


def with_article(word: str) -> str:
    """``word`` after "a" or "an", chosen by how it is read aloud, for messages naming a type or a format.

    ``f"a {name}"`` gave "a IsotonicCalibration". A name that starts like an
    acronym (two capitals, or a capital and a digit: ``MLPClassifier``,
    ``F32``, ``X``) is read letter by letter, so its first letter's name decides;
    otherwise its first letter does, with the usual exceptions (``one``,
    ``uni``, ``use``: "a OneVsRestClassifier").

    Examples
    --------
    >>> with_article("IsotonicCalibration"), with_article("TemperatureScaling"), with_article("MLPClassifier")
    ('an IsotonicCalibration', 'a TemperatureScaling', 'an MLPClassifier')
    """
    if word[:1].isupper() and (len(word) == 1 or word[1].isupper() or word[1].isdigit()):
        vowel = word[0] in _VOWEL_SOUNDING_LETTERS
    else:
        vowel = bool(word) and word[0].lower() in "aeiou" and not word.lower().startswith(_CONSONANT_SOUNDING_STARTS)
    return f"{'an' if vowel else 'a'} {word}"


def check_same_length(a_name: str, a_len: int, b_name: str, b_len: int) -> None:
    """One-line error when two inputs that pair up row by row do not."""
    if a_len != b_len:
        shorter = a_name if a_len < b_len else b_name
        # One row short in a text table: most likely a file saved without a header whose first row
        # became the column names (a header of pandas' 0, 1, ... cannot be told from data).
        hint = ""
        if abs(a_len - b_len) == 1 and shorter.lower().endswith((".csv", ".tsv")):
            hint = (f" ({shorter} is one row short: if it has no header line, its first row was read as the "
                    "column names; add a header)")
        raise CLIError(f"{a_name} has {a_len} rows but {b_name} has {b_len}; they must pair up row by row{hint}")


def brier_legend(n_classes: int) -> list[str]:
    """A line under a metrics table of a binary problem: which Brier score it shows.

    softmaxkit's Brier score sums over the classes (Brier's definition, 0 to 2,
    :func:`softmaxkit.metrics.brier_score`); for two classes that is twice
    scikit-learn's ``brier_score_loss``, which scores the positive class only.
    """
    if n_classes != 2:
        return []
    return ["Brier sums over both classes (0 to 2): twice scikit-learn's binary brier_score_loss."]


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


def check_extension(out: str | None, suffixes: tuple[str, ...], *, option: str = "--out") -> None:
    """A usage error (:class:`~softmaxkit.cli.UsageError`: exit code 2) when ``out`` does not end in one of
    ``suffixes`` (lower case, with the dot); nothing for ``out`` None (an option not given).

    Called by the commands' ``check`` hooks, which run before any file is read, for every output path whose
    format its extension chooses (``fit --out``, ``predict``/``apply --out`` and ``--logits-out``,
    ``calibrate --out`` and ``--conformal-out``): a bad option value is a usage error, as the README says.
    Only ``calibrate --out`` was one; the others exited 1 from :func:`check_output` (review audit M).
    """
    from softmaxkit.cli import UsageError

    # An existing directory is named as such later (check_output), not as a missing extension.
    suffix = Path(out).suffix if out is not None and not Path(out).is_dir() else None
    if suffix is not None and suffix.lower() not in suffixes:
        raise UsageError(f"{option} {out}: unsupported extension {suffix or '(none)'!r}; use {', '.join(suffixes)}")


def check_table_outputs(args: argparse.Namespace) -> None:
    """``predict``'s and ``apply``'s :func:`check_extension`: ``--out`` and ``--logits-out`` name files whose
    format their extension chooses (:data:`softmaxkit.data.SUFFIXES`)."""
    from softmaxkit.data import SUFFIXES

    check_extension(args.out, SUFFIXES)
    check_extension(args.logits_out, SUFFIXES, option="--logits-out")


def check_output(out: str, *, inputs: tuple[str, ...] = (), option: str = "--out") -> None:
    """Fail before any work when ``out`` is an existing directory or one of the inputs.

    (The atomic writers check the inputs again at write time; checking first saves a
    long training run that could never be saved.) Its extension was checked before, in the
    command's ``check`` hook (:func:`check_extension`).
    """
    from softmaxkit.io import StagedOutputs

    path = Path(out)
    if path.is_dir():
        raise CLIError(f"{option} {out} is an existing directory; give a file name")
    StagedOutputs(inputs=inputs).check(out, option=option)


#: How far a row of --probs may sum from 1 (float32 files round at about 1e-7 per entry). A file
#: stored in bfloat16 or float16 gets the library's tolerance for its dtype (:func:`probability_tolerance`).
PROB_SUM_TOL = 1e-4

#: Stored dtypes whose rounding alone moves a row's sum past :data:`PROB_SUM_TOL`.
_LOW_PRECISION = ("bfloat16", "float16")


def probability_tolerance(stored: str | None) -> float:
    """How far a row of a --probs file whose values are stored in ``stored`` may sum from 1.

    Rounding each probability to bfloat16 or float16 moves a row's sum by up to half the type's
    epsilon (``torch.softmax`` of bfloat16 logits: rows at 0.998 and 1.002), so such a file gets
    the library's tolerance for its dtype (:func:`softmaxkit._calibration_inputs.row_sum_tolerance`:
    bfloat16 0.0156, float16 0.00195). Any other file (float32, float64, text) keeps
    :data:`PROB_SUM_TOL`: a row at 1.003 there is not probabilities, unless every value is a
    bfloat16 or float16 one (:func:`check_probabilities`).
    """
    from softmaxkit._calibration_inputs import row_sum_tolerance

    return row_sum_tolerance(stored) if stored in _LOW_PRECISION else PROB_SUM_TOL


def check_probabilities(path: str, probs, *, stored: str | None = None):
    """Rows of probabilities: entries in [0, 1] summing to 1 within :func:`probability_tolerance`
    of the ``stored`` dtype; else a line naming the first bad row.

    Checked in row blocks, so a memory-mapped file is not copied whole. When a row is off and the
    file is not stored in a 16-bit type, the values may still be bfloat16 or float16 ones widened
    (``np.save(p, t.bfloat16().float().numpy())``, which the library accepts): they get that type's
    tolerance as the library gives it (:func:`softmaxkit._calibration_inputs.narrow_values_dtype`).

    Likewise a file whose every value is written with ``d`` decimals (``float_format="%.3f"``: a row
    at 0.999) is held to what that rounding explains, ``K * 0.5 * 10**-d`` for ``K`` columns, and its
    rows are divided by their sums, with a warning (:func:`_rounded_rows`); it was refused as "raw
    scores?" (audit).

    Returns
    -------
    probs, or its rows divided by their sums when the file's tolerance is wider than the one the
    library holds an array of ``probs.dtype`` to (a bfloat16 file read as float64), or its values
    are rounded to decimals, so that the metrics and calibrators downstream accept what was accepted here.
    """
    return _probabilities(path, probs, stored=stored)[0]


def _probabilities(path: str, probs: Any, *, stored: str | None,
                   columns: tuple[str, ...] = ()) -> tuple[Any, int | None]:
    """:func:`check_probabilities`' probabilities, and the decimals its values were rounded to when its
    rows were renormalised for that rounding (:func:`_rounded_rows`), else None. ``columns``: the file's
    names of the columns of ``probs``, when it has them, for the range error (:func:`_checked_rows`)."""
    from softmaxkit._calibration_inputs import narrow_values_dtype

    tolerance = probability_tolerance(stored)
    try:
        try:
            return _checked_rows(path, probs, tolerance=tolerance, values_of=stored, columns=columns), None
        except _RowSumOff as off:
            narrow = None if stored in _LOW_PRECISION else narrow_values_dtype(probs)
            if narrow is None:
                return _rounded_rows(path, probs, tolerance=tolerance, off=off)
        # Only now: the bit test reads the whole array, which a file within the float32 rule never needs.
        return _checked_rows(path, probs, tolerance=probability_tolerance(narrow), values_of=narrow), None
    except _RowSumOff as off:
        raise CLIError(str(off).replace(_RAW_SCORES_HINT, _row_sum_hint(probs, tolerance=tolerance,
                                                                         columns=columns))) from None


def _row_sum_hint(probs: Any, *, tolerance: float, columns: tuple[str, ...]) -> str:
    """The end of the message of ``--probs`` whose rows do not sum to 1 (nor within the rounding of their
    decimals): a column without which every row does (:func:`_extra_column`), to leave out; else, when
    every value lies in [0, 1], per-class sigmoid outputs (:func:`_looks_like`); else :data:`_RAW_SCORES_HINT`.

    Both were sent to ``--logits``, which read the extra column as one more class and sigmoid outputs as
    logits without a word (audit CO)."""
    j = _extra_column(probs, tolerance=tolerance)
    if j is not None:
        name = columns[j] if columns else str(j)
        return (f"(without column {name!r} every row sums to 1: it is no class's probability, a confidence or "
                f"other summary? drop it or pass --ignore {name})")
    if _looks_like(probs, tolerance=tolerance) == "sigmoid":
        return ("(every value lies in [0, 1] but the rows do not sum to 1: per-class sigmoid outputs (multi-label)? "
                "they are no softmax distribution over exclusive classes, which the metrics and calibrators need, "
                "and read as logits they would be scored as something else; pass the model's softmax probabilities, "
                "or its logits with --logits)")
    return _RAW_SCORES_HINT


def _extra_column(probs: Any, *, tolerance: float) -> int | None:
    """The first column of ``probs`` (three or more columns, every value in [0, 1]) without which every row
    sums to 1, within ``tolerance`` or the rounding of the values' decimals (:func:`printed_decimals`),
    else None; read in row blocks, stopping once no column is left."""
    import numpy as np

    from softmaxkit._calibration_inputs import rounding_slack
    from softmaxkit.data import iter_row_blocks

    k = probs.shape[1] if probs.ndim == 2 else 0
    if k < 3 or not len(probs):
        return None
    decimals = printed_decimals(probs)
    if decimals is not None:
        tolerance = max(tolerance, rounding_slack(k - 1, decimals) * (1 + 1e-9) + k * float(np.finfo(probs.dtype).eps))
    left = np.ones(k, dtype=bool)
    for _, block in iter_row_blocks(probs):
        if block.min() < 0 or block.max() > 1:
            return None
        sums = block.sum(axis=1, dtype=np.float64)
        left &= np.all(np.abs(sums[:, None] - block - 1.0) <= tolerance, axis=0)
        if not left.any():
            return None
    return int(np.argmax(left))


#: The end of the message of a row of probabilities that does not sum to 1 (:func:`_checked_rows`).
_RAW_SCORES_HINT = "(raw scores? pass them with --logits)"


def _out_of_range_hint(probs: Any, row: int, columns: tuple[str, ...]) -> str:
    """The end of the message of row ``row`` of ``probs`` with a value outside [0, 1]: the columns named
    like a row id (:func:`softmaxkit.data.is_row_id_name`) that hold one, to leave out with ``--ignore``;
    else, when every row is percentages (:func:`_looks_like`), to divide by 100; else
    :data:`_RAW_SCORES_HINT`.

    Percentages sent to ``--logits`` by that hint were scored as logits without a word (audit: log-loss
    0.3082 for 0.0737 on the file divided by 100, exit 0)."""
    from softmaxkit.data import is_row_id_name

    ids = [name for name, value in zip(columns, probs[row].tolist())
           if not 0 <= value <= 1 and is_row_id_name(name)]
    if not ids:
        if _looks_like(probs, tolerance=PROB_SUM_TOL) == "percentages":
            return "(every row sums to 100: percentages? divide every value by 100)"
        return _RAW_SCORES_HINT
    # Such a column holding ids (whole numbers, text) is left out before; this one holds other values.
    return f"(column {ids[0]!r} is named like a row id: if it is one, pass --ignore {','.join(ids)})"


class _RowSumOff(CLIError):
    """A row of probabilities off by more than the tolerance tried (:func:`check_probabilities`
    tries a second one for widened 16-bit values; else it is the command's error)."""


def printed_decimals(probs: Any) -> int | None:
    """:func:`softmaxkit._calibration_inputs.printed_decimals` of ``probs``, read in row blocks that release
    the pages of a memory map (:func:`softmaxkit.data.iter_row_blocks`)."""
    from softmaxkit import _calibration_inputs, data

    return _calibration_inputs.printed_decimals(probs, row_blocks=data.iter_row_blocks)


def _looks_like(values: Any, *, tolerance: float) -> str | None:
    """:func:`softmaxkit._calibration_inputs.score_kind` of ``values`` (what they look like: probabilities,
    percentages, per-class sigmoid outputs), read in row blocks (:func:`softmaxkit.data.iter_row_blocks`)."""
    from softmaxkit import data
    from softmaxkit._calibration_inputs import score_kind

    return score_kind(values, tolerance=tolerance, row_blocks=lambda v: data.iter_row_blocks(v))


def _rounded_rows(path: str, probs: Any, *, tolerance: float, off: _RowSumOff) -> tuple[Any, int]:
    """``probs`` held to the rounding of its decimals, rows divided by their sums (a warning says so),
    when that explains more than ``tolerance``; else ``off``, the error of the row found off. Returns
    the probabilities and their decimals.

    Each of a row's ``K`` values written with ``d`` decimals is within ``0.5 * 10**-d`` of the value
    computed, so its sum is within ``K * 0.5 * 10**-d`` of 1 (3 classes at 3 decimals: 0.0015). The
    library's own row-sum rule (:func:`softmaxkit._calibration_inputs.row_sum_tolerance`) is the same
    idea for the rounding of a dtype; rows are renormalised, as scikit-learn's ``log_loss`` does, so
    that every command (evaluate, calibrate, apply) scores the same probabilities. Rounding that
    explains more than the widest tolerance the library grants any dtype (bfloat16's 0.0156: 2 decimals
    over 3 classes pass, over 4 do not) is refused, saying so: rows at 0.9 are no probabilities to score
    without a word. Few decimals alone are not refused (2 decimals over 3 classes gave a log-loss of
    0.6844 for 0.6841 exact, audit); a probability under half the last digit is written as 0, and
    :func:`read_predictions` warns when a row's true class is one (its log-loss is infinite).
    """
    import warnings

    import numpy as np

    from softmaxkit._calibration_inputs import rounding_slack, row_sum_tolerance

    decimals = printed_decimals(probs)
    if decimals is None:
        raise off
    k = probs.shape[1]
    rounding = rounding_slack(k, decimals)
    if rounding <= tolerance:
        raise off
    widest = row_sum_tolerance("bfloat16")
    written = f"its values are written with {decimals} decimal{'s' if decimals > 1 else ''}"
    if rounding > widest:
        raise CLIError(str(off).replace(_RAW_SCORES_HINT, (
            f"({written}, whose rounding moves a row's sum by up to {rounding:.3g}, more than the {widest:.3g} "
            "accepted: write more digits, or divide each row by its sum)")))
    # A little over the bound: the sum of K decimals computed in binary floating point.
    probs = _checked_rows(path, probs, tolerance=rounding * (1 + 1e-9) + k * float(np.finfo(probs.dtype).eps),
                          values_of=f"{decimals}-decimal", rounded=True)
    warnings.warn(f"{path}: its probabilities are written with {decimals} decimals, so its rows sum to 1 only "
                  f"within {k} x {0.5 * 10.0**-decimals:g} = {rounding:.3g}; each row was divided by its sum (as "
                  "scikit-learn's log_loss does). Write more digits for the metrics of the probabilities as "
                  "computed", stacklevel=4)
    return probs, decimals


def _checked_rows(path: str, probs, *, tolerance: float, values_of: str | None, rounded: bool = False,
                  columns: tuple[str, ...] = ()):
    """:func:`check_probabilities` at ``tolerance``, for values that are ``values_of`` ones (a dtype name,
    or ``"3-decimal"`` with ``rounded``: values rounded to decimals, whose rows are always renormalised).
    ``columns`` (one name per column of ``probs``, or none) lets a value out of [0, 1] in a column named
    like a row id be named as such, rather than sent to ``--logits``, which reads it as one more class."""
    import numpy as np

    from softmaxkit._calibration_inputs import row_sum_tolerance
    from softmaxkit.data import iter_row_blocks

    rescale = rounded or tolerance > row_sum_tolerance(probs.dtype)
    if rescale and not probs.flags.writeable:
        probs = np.array(probs)
    for start, block in iter_row_blocks(probs):
        bad = (block < 0).any(axis=1) | (block > 1).any(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            raise CLIError(f"{path}: row {row + 1}: probabilities must lie in [0, 1], got {probs[row].tolist()} "
                           + _out_of_range_hint(probs, row, columns))
        sums = block.sum(axis=1, dtype=np.float64)
        off = np.abs(sums - 1.0) > tolerance
        if off.any():
            row = start + int(np.argmax(off))
            within = (f" within {tolerance:.3g}, the rounding of its {values_of} values"
                      if rounded or values_of in _LOW_PRECISION else "")
            raise _RowSumOff(f"{path}: row {row + 1}: probabilities sum to {sums[row - start]:.6g}, not 1{within} "
                             + _RAW_SCORES_HINT)
        if rescale:
            block /= sums[:, None]
    return probs


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
                        help="logits, one column per class (or one column: a binary problem's log-odds of "
                        "class 1, or of the class its name gives, logit_<class>)")
    source.add_argument("--probs", metavar="FILE", help=probs_help)
    p.add_argument("--labels", required=True, metavar="FILE",
                   help="the true class of each row: a class name where names are known (from p_<class> or "
                   "logit_<class> columns, --classes, or a plain header of the labels' own class names, such as "
                   "True,False), else an index 0..K-1")
    p.add_argument("--label-column", metavar="COL", help="the labels' column when FILE has several")
    add_ignore_option(p, what="scores")
    p.add_argument("--classes", type=class_names, metavar="A,B,...",
                   help="the class names in the labels' order (integer label i is the i-th), so that "
                   "--labels may hold names; score columns named by class (p_<class>, logit_<class>, or a "
                   "header of these names) are matched to them by name, other columns take them in order "
                   "(split on commas, spaces around each name dropped; for names with commas, name the "
                   "score columns p_<class> or logit_<class> instead; names that start with '-', such as "
                   "-1,0,1, are read as such)")


class Predictions(NamedTuple):
    """What :func:`read_predictions` read: ``scores`` (n, K) logits or probabilities
    (a single binary column expanded by :func:`two_class_scores`), ``labels`` (n,)
    class indices, the class names when known (``classes``), the columns of
    the scores file that were left out (``ignored``: ``prediction``, an id) and
    the id columns on which a separate labels file was matched to the scores'
    rows: the labels' (``matched_on``) and the scores' (``scores_matched_on``,
    which may differ in letter case or surrounding spaces only); None: paired by
    position, :func:`labels_by_row_id`."""

    source: str  # the --logits or --probs file
    kind: str  # "logit" or "probability"
    scores: Any
    labels: Any
    classes: list[str] | None = None
    ignored: tuple[str, ...] = ()
    matched_on: str | None = None
    scores_matched_on: str | None = None
    columns: tuple[str, ...] = ()  # the score columns as the file names them (ScoreFile.columns)
    labels_left_out: int = 0  # label rows matched on ids that no scores row has (said, and in --json)


def read_predictions(args: argparse.Namespace) -> Predictions:
    """Read and check the inputs of :func:`add_prediction_inputs`.

    The scores file may be ``predict``'s output: its ``p_<class>`` (or
    ``logit_<class>``) columns are the scores and name the classes, and its
    other columns are ignored. Labels are class names where names are known
    (those columns, or ``--classes``; a plain header of which every label names a column,
    :func:`_labels_by_header`), else indices. Probabilities must be rows
    that sum to 1, and both files must have the same number of rows; each
    failure is a one-line error naming the file (and row, column). A labels
    file other than the scores file that shares a row id column with it is
    matched to the scores' rows on it (:func:`labels_by_row_id`).
    """
    from softmaxkit.data import label_column_name, read_labels

    source = args.logits or args.probs
    kind = "logit" if args.logits else "probability"
    # Labels kept in the scores file: their column is not one more class (audit: a 4th "logit").
    same_file = args.label_column is not None and _same_file(args.labels, source)
    # Nor is a column of the scores named as the labels' column of another file (audit BB: 'target'
    # beside logits a, b, c read as a 4th class, accuracy 0.0225 for 0.9551, exit 0).
    label_name = None if _same_file(args.labels, source) else label_column_name(args.labels, column=args.label_column)
    given_classes = getattr(args, "classes", None)
    read = read_score_file(source, kind=kind, given_classes=given_classes,
                           exclude=(args.label_column,) if same_file else (), ignore=ignored_columns(args),
                           label_names=(label_name,) if label_name is not None else ())
    named = None if given_classes is not None or read.classes is not None else \
        _labels_by_header(read, args.labels, column=args.label_column)
    if named is not None:
        read, labels = named
    else:
        # --classes lists the classes in the labels' order; the columns' own names say nothing of it, so
        # integer labels against them are refused (softmaxkit.data.read_labels).
        labels = read_labels(args.labels, column=args.label_column, n_classes=read.scores.shape[1],
                             classes=read.classes, ids_left_out=read.ids,
                             classes_from="user" if given_classes is not None else "columns")
    matched_on = scores_matched_on = None
    n_label_rows = len(labels)
    if not _same_file(args.labels, source):
        labels, matched_on, scores_matched_on = labels_by_row_id(labels, args.labels, source,
                                                                 column=args.label_column, ignored=read.ignored,
                                                                 ignore=ignored_columns(args), say=Printer(args))
    # matched on ids, label rows without a scores row are left out: said in the text, counted for --json
    # (audit BJ: evaluate --json had no trace of 5 such rows)
    labels_left_out = n_label_rows - len(labels) if matched_on is not None else 0
    if _same_file(args.labels, source):
        # One file on both sides: "r.npz has 600 rows but r.npz has 500" named neither array.
        check_same_length(f"{source}: {_array_names(read.columns)}", len(read.scores),
                          _label_array_name(args.label_column, read.ignored), len(labels))
    check_same_length(source, len(read.scores), args.labels, len(labels))
    if read.classes is None:
        _refuse_one_based_labels(read.scores, labels, labels_path=args.labels, source=source)
        if given_classes is None:
            _refuse_class_zero_read_as_one(read, labels, source=source, labels_path=args.labels, kind=kind)
    else:
        import warnings

        from softmaxkit._calibration_inputs import OneBasedLabelsWarning

        # Named classes (--classes 0,1,2 included) say how labels read: the library's 1-based warning would
        # second-guess them. Scoped to this command by the catch_warnings() around it (cli.main).
        warnings.filterwarnings("ignore", category=OneBasedLabelsWarning)
    if kind == "probability":
        _warn_true_class_rounded_to_zero(source, read.scores, labels, decimals=read.decimals, classes=read.classes)
    return Predictions(source, kind, read.scores, labels, read.classes, read.ignored, matched_on, scores_matched_on,
                       read.columns, labels_left_out)


def _labels_by_header(read: ScoreFile, labels_path: str, *, column: str | None) -> tuple[ScoreFile, Any] | None:
    """``read`` with its plain header as the class names, and the labels read by those names, when every
    label names one of its score columns (:func:`header_classes`: text labels ``dog, cat`` under the header
    ``dog,cat``; False/True labels under ``True,False`` in any letter case); else None, and the labels are
    read as before (integer labels as column positions, text labels refused).

    A header without the ``p_`` prefix was read by position whatever it said: ``True,False`` (positive
    class first, ``pd.DataFrame(proba, columns=clf.classes_).iloc[:, ::-1]``) over True/False labels
    swapped the classes (audit CN: accuracy 0.4733 for 0.5267, exit 0), while ``p_True,p_False`` was
    matched by name. The labels are read once per class list tried; the warnings of a reading that is
    not kept are dropped, so that the one kept (or the fallback) says its own.
    """
    import warnings

    from softmaxkit.data import DataFileError, read_labels

    for classes in header_classes(read.columns, read.scores.shape[1]):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            try:
                labels = read_labels(labels_path, column=column, n_classes=len(classes), classes=classes,
                                     ids_left_out=read.ids, classes_from="columns")
            except DataFileError:
                continue
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return read._replace(classes=classes), labels
    return None


def _refuse_class_zero_read_as_one(read: ScoreFile, labels: Any, *, source: str, labels_path: str,
                                   kind: str) -> None:
    """Refuse a binary problem's one plain column headed ``0`` read as P(class 1) (or its log-odds) when the
    labels show it is class 0's: read as class 1's, it ranks the rows of class 1 below those of class 0
    beyond chance (:func:`_ranks_reversed`), and its accuracy is far below always naming the most
    frequent class (:func:`softmaxkit.cli._evaluation.chance_legend`'s test). The message gives both
    readings' log-losses (:func:`_swapped_log_losses`).

    pandas writes the header ``0`` both over an unnamed column (``pd.Series(proba[:, 1]).to_csv()``,
    P(class 1), as it is read) and over ``pd.DataFrame(proba)[[0]]`` (P(class 0): audit CN, accuracy 0.05
    for 0.95, exit 0). The name cannot tell them apart; the labels can, when the scores are not noise.
    Low accuracy alone is no sign: a ``class_weight="balanced"`` model's P(class 1) on 95/5 data names
    class 1 often, and scored 0.718 for a majority rate of 0.942 while its log-loss read so was 0.5615, and
    1.30 swapped (review R26: refused, and the advised --classes 0,1 swapped it, exit 0). Nor is a lower
    log-loss swapped: a model fitted at a prevalence of 1/2 and scored at 5% fits the labels badly both
    ways, and over 3000 rows the swapped reading was "10^4 times likelier" (review R28). The ranking
    decides (:func:`_ranks_reversed`): rows of class 1 scored lower than those of class 0 beyond chance,
    which no shift of prevalence or calibration makes.
    """
    if read.classes is not None or read.columns != ("0",) or not len(labels):
        return
    import numpy as np

    from softmaxkit.cli._evaluation import _far_below_chance
    from softmaxkit.data import SCORE_PREFIXES

    accuracy = float(np.mean(np.argmax(read.scores, axis=1) == labels))
    majority = float(np.bincount(labels, minlength=2).max() / len(labels))
    if not _far_below_chance(accuracy, majority, len(labels)):
        return
    if not _ranks_reversed(read.scores, labels):
        return
    as_read, swapped = _swapped_log_losses(read.scores, labels, kind=kind)
    what = "P(class {})" if kind == "probability" else "the log-odds of class {}"
    raise CLIError(f"{source}: its one column is headed '0', which pandas writes over an unnamed column "
                   f"(pd.Series(p).to_csv(): read so, as {what.format(1)}) and over DataFrame(proba)[[0]] "
                   f"({what.format(0)}); read as {what.format(1)} against {labels_path}, its accuracy is "
                   f"{accuracy:.4f}, far below always naming the most frequent class ({majority:.4f}), and its "
                   f"log-loss is {as_read:.4f}, where read as {what.format(0)} it is {swapped:.4f}: it looks "
                   f"like {what.format(0)}; pass --classes 0,1 to read it as class 0's, as its name says, or name "
                   f"the column {SCORE_PREFIXES[kind]}0 (or {SCORE_PREFIXES[kind]}1 if it is class 1's)")


def _ranks_reversed(scores: Any, labels: Any) -> bool:
    """Whether a binary problem's two-column ``scores`` (:func:`two_class_scores`) rank the rows of class 1
    below those of class 0 beyond chance: the one-sided Mann-Whitney test of class 1's margin (column 1
    minus column 0, which orders rows as P(class 1) and its log-odds do) at ``p < _SWAPPED_P``, an AUC
    far below 1/2."""
    import numpy as np
    from scipy.stats import mannwhitneyu

    from softmaxkit.cli._evaluation import _SWAPPED_P

    margin = np.asarray(scores[:, 1], dtype=np.float64) - np.asarray(scores[:, 0], dtype=np.float64)
    labels = np.asarray(labels)
    ones, zeros = margin[labels == 1], margin[labels == 0]
    if not len(ones) or not len(zeros):
        return False
    return bool(mannwhitneyu(ones, zeros, alternative="less").pvalue < _SWAPPED_P)


def _swapped_log_losses(scores: Any, labels: Any, *, kind: str) -> tuple[float, float]:
    """The mean log-loss of a binary problem's two-column ``scores`` (:func:`two_class_scores`) against
    ``labels`` as read and with the columns swapped (p against 1 - p; logits z against -z), for the
    message of :func:`_refuse_class_zero_read_as_one`. Probabilities are clipped at 1e-15, as
    scikit-learn's ``log_loss`` does.
    """
    import numpy as np

    from softmaxkit.data import iter_row_blocks

    as_read = swapped = 0.0
    for start, block in iter_row_blocks(scores):
        block = np.asarray(block, dtype=np.float64)
        y = np.asarray(labels[start:start + len(block)])
        if kind == "probability":
            logp = np.log(np.clip(block, 1e-15, 1.0))
        else:
            # [-z/2, z/2]: log-softmax of each column is -log(1 + exp(other - own))
            logp = -np.logaddexp(0.0, block[:, ::-1] - block)
        rows = np.arange(len(block))
        as_read -= float(logp[rows, y].sum())
        swapped -= float(logp[rows, 1 - y].sum())
    return as_read / len(labels), swapped / len(labels)


def _array_names(columns: tuple[str, ...]) -> str:
    """``'logits'``: the arrays or columns that ``columns`` come from (``logits[3]`` is a column of the
    array ``logits``), quoted, for messages."""
    import re

    arrays = list(dict.fromkeys(re.sub(r"\[\d+\]$", "", name) for name in columns))
    return ", ".join(map(repr, arrays[:4])) + (", ..." if len(arrays) > 4 else "") if arrays else "its matrix"


def _label_array_name(label_column: str | None, ignored: tuple[str, ...]) -> str:
    """The labels' array or column of a file that also holds the scores: ``--label-column``, else the
    one of the file's other arrays named as labels are (:data:`softmaxkit.data.LABEL_ARRAY_NAMES`)."""
    from softmaxkit.data import LABEL_ARRAY_NAMES

    if label_column is not None:
        return repr(label_column)
    return next((repr(name) for name in ignored if name.lower() in LABEL_ARRAY_NAMES), "the label column")


def _warn_true_class_rounded_to_zero(source: str, probs: Any, labels: Any, *, decimals: int | None,
                                     classes: list[str] | None) -> None:
    """Warn, naming the first such row, when a row's true class (``labels``: column indices) is written as
    probability 0 in ``source`` and its probabilities look rounded to decimals: ``decimals`` when its rows
    were renormalised for them (:func:`_rounded_rows`), else :func:`printed_decimals` of ``probs``.

    A probability under half the last digit is written as 0, and no renormalisation brings it back: that
    row's log-loss is infinite because of the rounding, not the model (scikit-learn's ``log_loss`` clips
    it to a finite number that is neither). Rows that sum to 1 as written are not renormalised, so the
    decimals are looked for here too, and only once a true class is 0 (a binary file at 2 decimals gave
    log-loss inf without a word, audit). Values that are all 0 or 1 (a hard classifier's) are no rounding.
    """
    import warnings

    import numpy as np

    from softmaxkit.data import iter_row_blocks

    zero = np.asarray(probs[np.arange(len(labels)), labels]) == 0
    if not zero.any():
        return
    if decimals is None:
        decimals = printed_decimals(probs)
        if decimals is None or not any(((block > 0) & (block < 1)).any() for _, block in iter_row_blocks(probs)):
            return
    row = int(np.argmax(zero))
    label = int(labels[row])
    count = int(zero.sum())
    more = f" (so is it on {count - 1} more row{'s' if count > 2 else ''})" if count > 1 else ""
    warnings.warn(f"{source}: row {row + 1}: its true class {classes[label] if classes else label!r} is written as "
                  f"probability 0{more}: its values are written with {decimals} decimal{'s' if decimals > 1 else ''}, "
                  f"which write a probability under {0.5 * 10.0**-decimals:g} as 0, so its log-loss is infinite "
                  "because of the rounding; write more digits", stacklevel=4)


def _refuse_one_based_labels(scores: Any, labels: Any, *, labels_path: str, source: str) -> None:
    """Refuse labels 1..K read as the indices of unnamed score columns when they are clearly 1-based.

    Without class names (a ``.npy``, pandas' header ``0,1,2``) integer labels are column indices.
    UCI-style labels 1..K in a subset without label K pass as indices and shift every class by one
    (audit: accuracy 0.031 and log-loss 8.14 for scikit-learn's 0.9385 / 0.2382, calibrate T = 165,
    exit 0). The evidence, and when it suffices, is the library's
    (:func:`softmaxkit._calibration_inputs.one_based_evidence`, which the metrics and calibrators
    warn on), taken here in row blocks so that a memory-mapped file is not read whole. ``--classes``
    (which names the columns, so that labels are read by name) skips this check.
    """
    from softmaxkit._calibration_inputs import one_based_evidence
    from softmaxkit.data import iter_row_blocks

    found = one_based_evidence(labels, scores, row_blocks=iter_row_blocks(scores))
    if found is None:
        return
    as_is, shifted, n, p_value = found.as_is, found.shifted, found.n, found.p_value
    k = scores.shape[1]
    one_based = ",".join(str(j) for j in range(1, k + 1))
    indices = ",".join(str(j) for j in range(k))
    raise CLIError(f"{labels_path}: its labels look 1-based (1..{k}): none is 0, and the top score column of "
                   f"{source} is the column of label - 1 on {shifted} of {n} rows ({shifted / n:.1%}) but of the "
                   f"label itself on {as_is} ({as_is / n:.1%}; one-sided sign test p = {p_value:.1g}); the score "
                   f"columns have no class names, so labels are read as column indices 0..{k - 1}; pass "
                   f"--classes {one_based} if the columns are the classes 1..{k} (labels then read by name), or "
                   f"--classes {indices} to read the labels as column indices all the same")


def labels_by_row_id(labels: Any, labels_path: str, source: str, *, column: str | None,
                     ignored: tuple[str, ...], say: Printer, ignore: tuple[str, ...] = ()
                     ) -> tuple[Any, str | None, str | None]:
    """``labels`` (read from ``labels_path``) in the row order of the scores file ``source``, matched
    on a row id column that both files have; else as they are, paired by position. Returns the
    labels and the names of that column in the labels file and in ``source`` (None, None when paired
    by position), which ``--json`` reports as ``labels_matched_on`` and ``scores_matched_on``.

    The id columns are those the labels file has besides its labels, named like an id, stored as a
    Parquet pandas index or pandas' unnamed saved index (:func:`softmaxkit.data.label_file_row_ids`),
    that are also among the columns of ``source`` that are not scores (``ignored``, where ``predict``
    and ``apply`` copy their input's ids, or a Parquet pandas index of ``source``:
    :func:`unread_columns`). A labels file exported in another row order was paired by position, the
    id dropped without a word (audit: accuracy 0.4300 for 0.7500, exit 0). Column names that differ
    only in letter case or surrounding spaces (``id``, ``ID``, `` Id``) are one name
    (:func:`_same_column`): ``ID`` beside ``predict``'s ``id`` was paired by position with a warning
    (audit: accuracy 0.375 for 1.000, calibrate T = 33.1 for 0.573, exit 0). The rows are matched on:

    1. the first shared id column whose ids appear once in each file; every scores row needs a
       label, and label rows without a scores row are left out and counted;
    2. else pandas' saved index of both files (whatever each calls it), when its values appear once
       in each and are the same set: a test split saved with ``df.to_csv()`` and a shuffled copy of
       it (audit: paired by position, accuracy 0.31 for 0.97, exit 0, no warning). Not when one of
       them counts the rows (0..n-1 or 1..n in row order, as a fresh index does) and the other holds
       those numbers in another order: that is refused (:func:`_refuse_fresh_index`), and two that
       both count the rows say nothing that the position does not;
    3. else, when a shared id column is the same in both files row by row (``patient_id`` repeated
       over visits, and the labels are the data file the scores were predicted from), by position,
       with a note: refusing it broke that everyday chain (audit: exit 1 for accuracy 0.97);
    4. else a shared id column that repeats ids is refused, naming it and an id;
    5. else, when no id column name is shared, id columns of the two files named differently
       (``patient_id``, ``id``), which are never joined on (:func:`_pair_on_other_names`): the same
       in both files row by row, by position with a note; the same ids once each in another row
       order (one side may count the rows 0..n-1 while the other holds them shuffled), or at least
       :data:`SAME_ROWS_SHARE` of the scores' ids once each in another row order, refused, saying to
       rename one column to the other's name or to write the labels in the scores' order;
    6. else a column of text both files have under one name (up to case and spaces) that is neither an
       id, a saved index, the labels, a score nor named by ``ignore`` (``--ignore``): ``filename``,
       ``image``, ``path``: the rows are matched on it as on an id column, as :func:`pandas.merge` does
       on the columns two frames share (:func:`_pair_on_shared_columns`). Named like no id, such a
       column was passed over and shuffled rows paired by position (audit: accuracy 0.3258 for 0.9831,
       exit 0, no warning).

    Otherwise the rows are paired by position, and an id column of the labels that cannot be checked
    draws a warning unless it counts the rows (0..n-1, 1..n): one in the labels alone (saying how many
    of the scores' ids it shares when the scores have an id column of another name), or a saved index
    that is not the scores'.
    """
    import numpy as np

    from softmaxkit.data import counts_rows, is_saved_index, label_file_other_columns, read_id_columns, row_id_names

    others = label_file_other_columns(labels_path, column=column)
    ids = row_id_names(labels_path, others, saved_index=True)
    # The labels' other columns that may be a key the scores share (rule 6); a column the user called no
    # data (--ignore, which names the scores' columns) is no key in either file.
    key_columns = [n for n in others
                   if n not in ids and not is_saved_index(n) and _same_column(n, list(ignore)) is None]
    not_scores = unread_columns(source, ignored) if ids or key_columns else []
    # Each id column of the labels with its column in the scores (the same name, up to case and spaces).
    shared = {n: other for n in ids if not is_saved_index(n)
              and (other := _same_column(n, not_scores)) is not None and not is_saved_index(other)}
    repeated = None  # the first shared column that repeats ids: (file, column, keys, rows)
    in_order = None  # the first shared column that is the same in both files, row by row
    for name, other in shared.items():
        keys, wanted = _join_keys(labels_path, name, source, other)
        join = _match_ids(keys, wanted)
        if join.repeat is None:
            return _joined(labels, labels_path, source, (name, other), keys, wanted, join, say), name, other
        repeated = repeated or (labels_path if join.in_labels else source, name if join.in_labels else other,
                                keys if join.in_labels else wanted, join.repeat)
        if in_order is None and len(keys) == len(wanted) and np.array_equal(keys, wanted):
            in_order = name
    saved = [n for n in ids if is_saved_index(n)][:1]
    saved_source = [n for n in not_scores if is_saved_index(n)][:1]
    if saved and saved_source:
        keys, wanted = _join_keys(labels_path, saved[0], source, saved_source[0])
        join = _match_ids(keys, wanted)
        # Only the same rows, renumbered nowhere: another frame's index (a split saved after
        # reset_index) numbers other rows, and matching on it would pair the wrong ones.
        # Nor on one that counts the rows (0..n-1, 1..n in row order: a fresh index, or a frame never
        # reordered): beside the same numbers shuffled it is ambiguous, refused; in both files it is the
        # position itself, and the other rules decide.
        same_rows = join.repeat is None and len(keys) == len(wanted) and join.found.all()
        counting = [(path, values) for path, values in ((labels_path, keys), (source, wanted)) if counts_rows(values)]
        if same_rows and counting and not np.array_equal(keys, wanted):
            path, values = counting[0]
            _refuse_fresh_index(labels_path, (saved[0], saved_source[0]), source, path, int(values[0]), len(values))
        if same_rows and not counting:
            return (_joined(labels, labels_path, source, (saved[0], saved_source[0]), keys, wanted, join, say),
                    saved[0], saved_source[0])
    overlaps: dict[str, tuple[str, int, int]] = {}
    if not shared:
        paired = _pair_on_other_names(labels, labels_path, source, [n for n in ids if not is_saved_index(n)],
                                      not_scores, say=say)
        if isinstance(paired, tuple):
            return paired
        overlaps = paired
    if in_order is not None:
        say(f"Labels of {labels_path} paired with the rows of {source} by position: their column {in_order!r} "
            "repeats ids but is the same in both files, row by row")
        return labels, None, None
    if repeated is not None:
        _refuse_repeated_ids(*repeated)
    keyed = _pair_on_shared_columns(labels, labels_path, source, key_columns, not_scores, say=say)
    if keyed is not None:
        return keyed
    unchecked = [n for n in ids if n not in shared]
    if unchecked:
        _warn_ids_unused(labels_path, source, unchecked, read_id_columns(labels_path, unchecked),
                         saved_source=saved_source[0] if saved_source else None, overlaps=overlaps)
    return labels, None, None


#: The share of the scores' values that a text column both files have must hold before its values in
#: another row order are taken as the rows shuffled, and refused (:func:`_pair_on_shared_columns`): for
#: values once each, the share found in the labels; for repeated values, the share of distinct ones (a
#: name listed twice). Dates a month apart shared 169 of 200 in one order, and a ``day`` or ``fold`` of
#: another batching holds the same few values in another order: both were refused where position was right
#: (audit R4: exit 1 for accuracy 0.985).
SHARED_KEY_SHARE = 0.5


def _pair_on_shared_columns(labels: Any, labels_path: str, source: str, names: list[str], not_scores: list[str],
                            *, say: Printer) -> tuple[Any, str, str] | None:
    """``labels`` matched to the scores' rows on a column of text that both files have though it is
    named like no id (the labels' ``names`` that have a same-named column among the scores'
    ``not_scores``: :func:`_same_column`), as :func:`labels_by_row_id` returns them; None when no such
    column matches the rows, which are then paired by position; a refusal when one shows that they are
    in different orders but cannot match them.

    Only text that names things is a key (:func:`_holds_text`: ``img_0001.png``, ``/data/a.png``,
    ``2024-01-05``): a number both files carry may mean something else in each (a ``rank`` of the
    model's confidence beside one of the annotators' difficulty, both 1..n, was joined on: accuracy
    0.40 for 0.985, exit 0, audit R4), so numbers are passed over, as they were before such keys.

    Such a column is a key, as for :func:`pandas.merge`, when its values appear once in each file and
    every value of the scores is in the labels (label rows beyond them are left out and counted, as for
    an id column: :func:`_joined`); the first key is used. Otherwise, checked in this order:

    * a column whose values repeat but are the same in both files, row by row: the rows are in one
      order, paired by position;
    * strong evidence of the rows shuffled, refused, naming the column, since it cannot say which label
      row is which: at least :data:`SHARED_KEY_SHARE` of the scores' values once each, not all, either
      in another relative order or in files of other lengths; or the same values in another row order,
      repeated, at least that share of them distinct (a few names listed twice);
    * weaker signs: a warning that the rows are paired by position without the column. It holds each
      value once but none of the scores' (``/data/a.png`` beside ``a.png``), or the ones shared in the
      scores' relative order (dates a month apart, values edited), or fewer than that share; or it holds
      the same few values in another row order, as groups of another split or batching do (a ``day``).

    Repeated values that differ (two models' predicted classes) and columns with a missing value say
    nothing about the row order and are passed over. Every refusal and warning names ``--ignore`` for
    the column, which :func:`labels_by_row_id` keeps out of ``names``.
    """
    import warnings

    import numpy as np

    from softmaxkit.data import DataFileError, is_saved_index

    in_order = False
    refusal = unmatched = None
    for name in names:
        other = _same_column(name, not_scores)
        if (other is None or is_saved_index(other)
                or not (_holds_text(labels_path, name) and _holds_text(source, other))):
            continue
        try:
            keys, wanted = _join_keys(labels_path, name, source, other)
        except DataFileError:  # a missing value: no key, and no evidence of the row order
            continue
        called = f" ({other!r} in {source})" if other != name else ""
        join = _match_ids(keys, wanted)
        if join.repeat is None and join.found.all():
            return _joined(labels, labels_path, source, (name, other), keys, wanted, join, say), name, other
        if join.repeat is None:
            found = np.flatnonzero(join.found)
            row = int(np.argmax(~join.found))
            held = (f"only {len(found)} of the {len(wanted)} values of {source} (not {str(wanted[row])!r}, its row "
                    f"{row + 1})")
            # In the scores' relative order (rows of the labels ascending): values edited, or a range shifted.
            kept_order = bool(np.all(np.diff(join.rows[found]) > 0))
            if len(found) >= SHARED_KEY_SHARE * len(wanted) and (len(keys) != len(wanted) or not kept_order):
                order = ("some of them in another row order: the rows are not in one order"
                         if len(keys) == len(wanted) else "in files of other lengths: they hold different rows")
                refusal = refusal or (
                    other, f"{labels_path}: column {name!r}, which {source} has too{called}, holds each value once, "
                    f"but {held}, {order}; a column that both files share matches their rows (as pandas' merge "
                    "does), so every scores row needs its value in the labels")
            elif len(keys) == len(wanted):  # other lengths: pairing by position is refused as it is
                what = ("shares no value with it" if not len(found) else
                        f"holds {held}, those in the same row order" if kept_order else f"holds {held}")
                unmatched = unmatched or (name, other, called, what)
        elif len(keys) == len(wanted) and np.array_equal(keys, wanted):
            in_order = True
        elif len(keys) == len(wanted) and np.array_equal(np.sort(keys), np.sort(wanted)):
            first, second = join.repeat
            where = labels_path if join.in_labels else source
            value = (keys if join.in_labels else wanted)[second]
            repeats = f"its values repeat ({str(value)!r} on rows {first + 1} and {second + 1} of {where})"
            distinct = len(np.unique(keys))
            if distinct >= SHARED_KEY_SHARE * len(keys):
                refusal = refusal or (
                    other, f"{labels_path}: column {name!r}, which {source} has too{called}, holds the same values "
                    "in another row order, so the rows are not in one order and pairing them by position would be "
                    f"wrong; but {repeats}, so it cannot match them either")
            else:
                unmatched = unmatched or (name, other, called, (
                    f"holds the same values in another row order, but only {distinct} distinct ones for "
                    f"{len(keys)} rows ({str(value)!r} on rows {first + 1} and {second + 1} of {where}), as the "
                    "groups of another split or batching may"))
    if in_order:
        return None
    if refusal is not None:
        other, text = refusal
        raise CLIError(f"{text}; write the labels in the row order of {source}, or give both files a column that "
                       f"names each row once; if the column is not the same thing in both files, pass "
                       f"--ignore {other} (or rename it in one file) to pair the rows by position")
    if unmatched is not None:
        name, other, called, what = unmatched
        warnings.warn(f"{labels_path}: column {name!r}, which {source} has too{called}, {what}, so it does not "
                      "match the rows and the labels are paired with the scores by position; if the "
                      f"two files are in different row orders the results are wrong (write the labels in the row "
                      f"order of {source}, or give both files a column that names each row once; if the column is "
                      f"not the same thing in both, pass --ignore {other} or rename it in one file)", stacklevel=4)
    return None


def _holds_text(path: str, name: str) -> bool:
    """Whether the column ``name`` of ``path`` holds text that names things (``img_0001.png``,
    ``2024-01-05``, missing values aside), the only kind of column that both files sharing it makes a
    key (:func:`_pair_on_shared_columns`): not numbers (``rank``, ``fold``, ``score``, also as CSV
    text) nor ``true``/``false``."""
    import numpy as np

    from softmaxkit.data import read_id_columns

    values = read_id_columns(path, [name])[name]
    if values.dtype.kind not in "US":
        return False
    text = np.char.strip(values.astype(str))
    if np.isin(np.char.lower(text), ["true", "false"]).all():
        return False
    try:
        text.astype(np.float64)
    except ValueError:
        return True
    return False


def _refuse_fresh_index(labels_path: str, names: tuple[str, str], source: str, counting: str, start: int,
                        n: int) -> None:
    """Refuse the saved row indexes ``names`` (the labels', the scores') that hold the same numbers in
    other row orders, the one of ``counting`` (one of the two files) ``start``..``start + n - 1`` in row
    order: :func:`labels_by_row_id`'s rule 2.

    That is what a fresh index looks like (``pd.DataFrame(probs).to_csv()``), which says nothing about
    the rows, and also the index of a frame never reordered, which says which row is which. A frame
    shuffled with ``df.sample(frac=1)`` (which keeps its index), scored in that order and saved as
    ``pd.DataFrame(probs).to_csv()`` beside ``df["label"].to_csv()``, was joined on the index: accuracy
    0.35 and log-loss 2.21 for 0.985 and 0.1865, exit 0 (audit R4); scores saved in row order beside
    labels saved shuffled with their index need that join (audit AA: 0.36 for 0.96 by position). As for
    id columns of other names (:func:`_pair_on_other_names`), one side counting the rows while the other
    holds them shuffled is not paired by position either.
    """
    label_name, score_name = names
    other = source if counting == labels_path else labels_path
    raise CLIError(
        f"{labels_path}: its saved row index ({label_name!r}) and that of {source} ({score_name!r}) hold the same "
        f"numbers in different row orders, and {counting}'s is {start}..{start + n - 1} in row order, as a fresh "
        "index is (pd.DataFrame(probs).to_csv()): either the files are in one row order and it merely counts the "
        f"rows, so that the labels pair with the scores by position, or its numbers name the same rows as "
        f"{other}'s, so that the labels are matched to the scores on the index; the files cannot tell which, and "
        "the two give different results. If the rows are in one order, write the labels without their index "
        "(to_csv(index=False)); if not, write the scores with their frame's own index "
        "(pd.DataFrame(probs, index=df.index).to_csv()) or give both files an id column of one name, which "
        "matches the rows")


def _same_column(name: str, columns: list[str]) -> str | None:
    """The column of ``columns`` called ``name``, else the one column whose name differs from it only
    in letter case or what surrounds it (spaces, invisible characters: :func:`softmaxkit.data.visible_name`;
    ``ID``, `` Id ``, ``\ufeffid`` for ``id``); None when there is none, or several such (``id`` and ``Id``
    both): then no column is the same. A byte-order mark left in a scores file's ``id`` was refused
    against the labels' ``id``, with advice to rename the labels' column to ``'\ufeffid'`` (audit BQ)."""
    from softmaxkit.data import visible_name

    if name in columns:
        return name
    key = visible_name(name).casefold()
    found = [c for c in columns if visible_name(c).casefold() == key]
    return found[0] if len(found) == 1 else None


#: The share of the scores' ids that an id column of the labels named differently must hold, once each,
#: in another row order, for the two files to be refused as the same rows shuffled
#: (:func:`_pair_on_other_names`): 149 of 150 was paired by position (audit: accuracy 0.5533 for
#: 0.9133, exit 0), while a ``site_id`` sharing 140 of 228 (61%) by chance, where position was right,
#: was refused at one half.
SAME_ROWS_SHARE = 0.9


def _pair_on_other_names(labels: Any, labels_path: str, source: str, label_ids: list[str],
                         not_scores: list[str], *, say: Printer
                         ) -> tuple[Any, None, None] | dict[str, tuple[str, int, int]]:
    """The labels paired with the scores by position when id columns named differently in the two files
    (the labels' ``label_ids``, the scores' id-named columns among ``not_scores``:
    :func:`softmaxkit.data.row_id_names`) show that the rows are in one order; a refusal when they show
    the same rows in different orders; else, when they say neither, how many of the scores' ids each
    id column of the labels shares (``{labels' column: (scores' column, shared, scores' ids)}``, the
    scores' column sharing most), for the warning of :func:`labels_by_row_id` (:func:`_warn_ids_unused`).

    Rows are never joined on two names: a unique ``batch_id`` of a labels file in the scores' row order
    that happened to hold the scores' ids in another order was joined on (audit: accuracy 0.5439 for
    0.9649, exit 0). Each pair of such columns, unless both count the rows (0..n-1, 1..n in row order:
    the position itself, which two files number alike whatever their rows), is:

    * the same in both files, row by row: the rows are in one order; paired by position, with a note,
      whatever another pair holds;
    * unique in both files, the labels' holding at least :data:`SAME_ROWS_SHARE` of the scores' ids,
      one of them on another row than the scores' (a column that counts the rows included: scores
      saved from a shuffled loader with their dataset index 0..n-1 beside labels numbered 0..n-1 in
      dataset order were paired by position without a word, audit: accuracy 0.6283 for 0.9480; 149
      of 150 ids, one edited, gave 0.5533 for 0.9133), or every one of them and more rows: refused,
      naming both files and columns and the ids shared; renaming one column to the other's name joins
      on it.

    Pairs that share fewer ids (a ``site_id`` sharing 140 of 228), repeat them, or hold the shared
    ones on the scores' rows are taken as other ids: the rows are paired by position, and the labels'
    id column draws the warning that its ids were not used, saying how many it shares.
    """
    import numpy as np

    from softmaxkit.data import DataFileError, counts_rows, read_id_columns, row_id_names

    score_ids = row_id_names(source, not_scores)
    if not label_ids or not score_ids:
        return {}
    label_counts = {n: counts_rows(v) for n, v in read_id_columns(labels_path, label_ids).items()}
    score_counts = {n: counts_rows(v) for n, v in read_id_columns(source, score_ids).items()}
    clash = None  # the first pair refused: (labels' column, scores' column, ids shared, scores' ids, label rows more)
    overlaps: dict[str, tuple[str, int, int]] = {}
    for name in label_ids:
        for other in (n for n in score_ids if not (label_counts[name] and score_counts[n])):
            try:
                keys, wanted = _join_keys(labels_path, name, source, other)
            except DataFileError:  # a missing id: this column pairs no rows
                continue
            if len(keys) == len(wanted) and np.array_equal(keys, wanted):
                say(f"Labels of {labels_path} paired with the rows of {source} by position: its column {name!r} "
                    f"holds the ids of {source}'s {other!r} in the same row order")
                return labels, None, None
            if not len(wanted):
                continue
            join = _match_ids(keys, wanted)
            if join.repeat is None:  # each id once in each file: the found ones are the ids shared
                shared, total = int(join.found.sum()), len(wanted)
                found = np.flatnonzero(join.found)
                elsewhere = len(keys) != len(wanted) or bool(np.any(join.rows[found] != found))
                if clash is None and elsewhere and shared >= SAME_ROWS_SHARE * total:
                    clash = (name, other, shared, total, len(keys) - len(wanted))
            else:
                shared, total = len(np.intersect1d(keys, wanted)), len(np.unique(wanted))
            if name not in overlaps or shared > overlaps[name][1]:
                overlaps[name] = (other, shared, total)
    if clash is None:
        return overlaps
    name, other, shared, total, more = clash
    if shared < total:
        held = (f"{shared} of the {total} ids of the id column {other!r} of {source}, once each, in another row "
                "order: the rows look to be in different orders (the other ids edited or missing), so pairing "
                "them by position would be wrong")
    elif not more:
        held = (f"the same ids as the id column {other!r} of {source}, once each, in another row order: the rows "
                "look to be in different orders, so pairing them by position would be wrong")
    else:
        held = (f"every id of the id column {other!r} of {source}, once each, and {more} more: the files hold "
                "different rows, which cannot be paired by position")
    lacking = f" (then every id of {source} needs a label: {total - shared} have none)" if shared < total else ""
    raise CLIError(f"{labels_path}: its id column {name!r} holds {held}, and columns named differently are not "
                   f"joined on; if both name the same rows, rename {name!r} to {other!r} (or {other!r} to {name!r}) "
                   f"so that the rows are matched on it{lacking}; else write the labels in the row order of "
                   f"{source}, without {name!r} (or with it under a name that is not an id's, such as no '_id' "
                   "ending)")


class _IdMatch(NamedTuple):
    """How the ids of a labels file (``keys``) meet the scores' (``wanted``): :func:`_match_ids`."""

    rows: Any  # for each scores row, the labels row with its id (meaningful where ``found``)
    found: Any  # for each scores row, whether the labels have its id
    repeat: tuple[int, int] | None  # two rows (0-based) of one file that hold one id, else None
    in_labels: bool  # whether ``repeat`` is in the labels file (else in the scores file)


def _join_keys(labels_path: str, name: str, source: str, source_name: str) -> tuple[Any, Any]:
    """The keys of column ``name`` of the labels and ``source_name`` of the scores, of one type."""
    from softmaxkit.data import comparable_keys, row_keys

    return comparable_keys(row_keys(labels_path, name), row_keys(source, source_name))


def _match_ids(keys: Any, wanted: Any) -> _IdMatch:
    """Match the scores' ids ``wanted`` to the labels' ``keys`` with one sort of ``keys``, which also
    tells whether they repeat; the scores' ids repeat when two of them find one label row (no second
    sort: that and a text sort of both files took most of a million-row join, audit)."""
    import numpy as np

    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    at = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(keys) - 1, 0))
    found = sorted_keys[at] == wanted if len(keys) else np.zeros(len(wanted), bool)
    rows = order[at] if len(keys) else at
    repeat = _first_repeat(sorted_keys, order)
    if repeat is not None:
        return _IdMatch(rows, found, repeat, True)
    if found.all() and np.bincount(rows, minlength=len(keys)).max(initial=0) <= 1:
        return _IdMatch(rows, found, None, False)
    # A scores id repeated, or one with no label: sorted here only, off the common path.
    order = np.argsort(wanted, kind="stable")
    return _IdMatch(rows, found, _first_repeat(wanted[order], order), False)


def _first_repeat(sorted_keys: Any, order: Any) -> tuple[int, int] | None:
    """The rows (0-based, in file order) of the first id that ``sorted_keys`` (the keys sorted stably
    by ``order``) holds twice, else None."""
    import numpy as np

    same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if not len(same):
        return None
    first, second = order[same[0]:same[0] + 2].tolist()
    return first, second


def _joined(labels: Any, labels_path: str, source: str, names: tuple[str, str], keys: Any, wanted: Any,
            join: _IdMatch, say: Printer) -> Any:
    """``labels`` in the scores' row order (:func:`_match_ids` found no id twice), matched on the
    columns ``names`` (the labels', the scores'); refuses a scores row with no label and counts the
    label rows left out."""
    import numpy as np

    name, other = names
    if not join.found.all():
        row = int(np.argmax(~join.found))
        raise CLIError(f"{labels_path}: no label for row {row + 1} of {source} (id {wanted[row]} in column "
                       f"{other!r}); the labels are matched to the scores by this column, which both files have, "
                       "so every scores row needs one")
    unused = len(keys) - len(wanted)
    called = f" ({other!r} in {source})" if other != name else ""
    say(f"Labels of {labels_path} matched to the rows of {source} by column {name!r}{called}"
        + (f"; {unused} rows of {labels_path} have no scores row and were left out" if unused else ""))
    return labels[join.rows]


def _refuse_repeated_ids(path: str, name: str, keys: Any, rows: tuple[int, int]) -> None:
    """Refuse the id column ``name`` of ``path`` that holds one id on two ``rows``: no column both
    files share pairs the rows (:func:`labels_by_row_id`)."""
    from softmaxkit.data import location

    first, second = rows
    raise CLIError(location(Path(path), second, name)
                   + f"id {keys[second]} is also on row {first + 1}; the labels are matched to the scores by a row "
                   "id column that both files have, so each id must appear once in it, or the column must be the "
                   "same in both files, row by row (rename the column in one file to pair the rows by position "
                   "instead)")


def _warn_ids_unused(labels_path: str, source: str, ids: list[str], values: dict[str, Any], *,
                     saved_source: str | None = None, overlaps: dict[str, tuple[str, int, int]] | None = None
                     ) -> None:
    """Warn that the id columns of the labels file (``values``) were not used to pair its rows with the
    scores: ``source`` has no such column, or (pandas' saved index) another one, ``saved_source``;
    ``overlaps`` gives, for a column, the id column of ``source`` named differently that shares most of
    its ids, how many, and of how many (:func:`_pair_on_other_names`), which the warning states.
    Ids that count the rows (0..n-1, 1..n) say nothing that the position does not."""
    import warnings

    from softmaxkit.data import counts_rows, is_saved_index

    for name in ids:
        if counts_rows(values[name]):
            continue
        hint = ("softmaxkit predict writes its input's id columns with the scores, and a scores file with the "
                "labels' id column is matched on it")
        if name in (overlaps or {}):
            other, shared, total = overlaps[name]
            what = (f"shares {shared} of {total} ids with the id column {other!r} of {source} (another name: columns "
                    "named differently are not joined on)")
            hint = f"if both name the same rows, rename {name!r} to {other!r} so that the rows are matched on it"
        elif not is_saved_index(name):
            what = f"looks like a row id, but {source} has no column {name!r}"
        elif saved_source is None:
            what = f"is pandas' saved index, not 0..n-1 in row order, and {source} has none"
        else:
            what = (f"is pandas' saved index, not 0..n-1 in row order, and {source}'s ({saved_source!r}) numbers "
                    "other rows")
        warnings.warn(
            f"{labels_path}: column {name!r} {what}, so the labels are paired with the scores by position and the "
            f"ids are not used; if the two files are in different row orders the results are wrong ({hint})",
            stacklevel=3,
        )
        return


class ScoreFile(NamedTuple):
    """A scores file as every command uses it (:func:`read_score_file`)."""

    scores: Any  # (n, K) logits or probabilities, K >= 2
    classes: list[str] | None  # from p_<class> / logit_<class> columns or --classes
    ignored: tuple[str, ...]  # other columns of the file
    decimals: int | None = None  # probabilities renormalised for their rounding to this many decimals
    columns: tuple[str, ...] = ()  # the score columns as the file names them (none for a .npy matrix)
    ids: tuple[str, ...] = ()  # columns of `ignored` left out as row ids (softmaxkit.data.Scores.ids)


def read_score_file(source: str, *, kind: str, given_classes: list[str] | None,
                    exclude: tuple[str, ...] = (), ignore: tuple[str, ...] = (),
                    label_names: tuple[str, ...] = (), fitted_classes: Sequence[str] | None = None) -> ScoreFile:
    """Read logits (``kind="logit"``) or probabilities from ``source`` as ``evaluate``, ``calibrate``
    and ``apply`` all do.

    A single column is a binary problem's log-odds or P(class 1), expanded by
    :func:`two_class_scores`; when it is named (``p_<class>``, ``logit_<class>``)
    for the first class (listed first by ``--classes``, or ``0`` without it),
    it is that class's score and the pair is swapped. So is one named ``False`` or ``True``
    (``p_False``, or a plain ``False`` in any letter case, as pandas writes
    ``DataFrame(proba, columns=clf.classes_)[[False]]``): False/True labels are the classes
    False and True, in that order (:func:`softmaxkit.data.read_labels`). Another name needs
    ``--classes``. A plain ``0`` is pandas' header of an unnamed column (``pd.Series(p).to_csv()``),
    read as P(class 1) with a warning. The class names come
    from ``p_<class>`` or ``logit_<class>`` columns, or ``given_classes``
    (``--classes``), which must name the same classes; so must plain column
    names (no prefix) of which one is a class of ``given_classes``. Named
    columns are matched to ``given_classes`` by name (``1`` matches ``p_1.0``,
    :func:`softmaxkit.data.class_positions`) and come back in its order, the
    labels' order: integer label i is its i-th class. Without
    ``given_classes``, plain column names that are distinct whole numbers
    other than ``0..K-1`` in order (pandas' header of ``DataFrame(z)[[2, 0, 1]]``)
    are the class names (:func:`numbered_header`): the columns come back in
    their numeric order, with a warning that they are matched by name. A plain header that names
    exactly ``fitted_classes`` (a calibrator's class names; ``true,false`` names False and True) names
    the classes, as :func:`read_predictions` takes one that names the labels' classes
    (:func:`header_classes`). Probabilities must be rows that sum to 1. ``exclude`` names columns that are not scores
    (the labels' column, when the labels come from the same file); ``ignore``
    those of ``--ignore``, each of which must exist; ``label_names`` the labels' column name in a
    separate labels file, refused as a score column (:func:`softmaxkit.data.read_scores`).
    """
    from softmaxkit.data import BOOL_CLASSES, bool_class_name, class_positions, read_scores, stored_float_dtype

    read = read_scores(source, kind=kind, exclude=exclude, ignore=ignore, classes=given_classes or (),
                       label_names=label_names)
    stored = stored_float_dtype(source, read.columns)
    scores = two_class_scores(read.values, kind=kind)  # in the dtype the file stores them (read_scores)
    # One named column (p_yes) is P(class 1) of an unnamed pair: its name is not a class list.
    classes = read.classes if read.classes is not None and len(read.classes) == scores.shape[1] else None
    single = read.classes[0] if read.classes is not None and len(read.classes) == 1 and classes is None else None
    if given_classes is not None and read.classes is None and set(read.columns) & set(given_classes):
        # A header without p_/logit_ prefixes that names classes (class_2, class_0, class_1) names them
        # in its own order: --classes in another order would relabel the columns (audit: accuracy 0.019
        # for 0.98, exit 0). It is held to --classes as p_ columns are; one such column scores its class.
        if len(read.columns) == scores.shape[1]:
            classes = list(read.columns)
        else:
            single = read.columns[0]
    elif given_classes is None and read.classes is None and len(read.columns) == 1:
        # A plain False/True header is scikit-learn's class (`DataFrame(proba, columns=clf.classes_)[[False]]`),
        # read as it is named, as p_False is (audit CN: P(False) read as P(True), accuracy 0.05 for 0.95, exit 0).
        single = bool_class_name(read.columns[0])
    if given_classes is None and single is not None:
        single = bool_class_name(single) or single  # p_false names the class bool labels call False
    if classes is None and given_classes is None and fitted_classes is not None:
        classes = next((names for names in header_classes(read.columns, scores.shape[1])
                        if sorted(names) == sorted(map(str, fitted_classes))), None)
    numbered = None if given_classes is not None or classes is not None else numbered_header(read.columns)
    if numbered is not None and len(numbered) == scores.shape[1]:
        # pandas writes integer column names as the header (`pd.DataFrame(z)[[2, 0, 1]].to_csv()`: ",2,0,1");
        # read by position, column "2" scored class 0 (audit: accuracy 0.085 for 0.785, exit 0). They are
        # the classes, put in numeric order; labels are matched to them by name (read_labels).
        scores = scores[:, [list(read.columns).index(name) for name in numbered]]
        classes = numbered
        import warnings

        warnings.warn(f"{source}: its score columns are headed by the whole numbers {', '.join(read.columns)}, not "
                      f"0..{len(numbered) - 1} in order: they are matched to the classes by name, not by position; if "
                      "they are not the class names, pass --classes with the classes in the file's column order, or "
                      "rename the columns", stacklevel=2)
    if given_classes is not None:
        at = class_positions(given_classes, classes) if classes is not None else None
        if at is not None:
            # The same classes, maybe in another order or written as other numbers (1 for a column p_1.0):
            # the columns are matched by name, and --classes gives the labels' order (integer label i is
            # its i-th class). apply --classes cat,dog,bird writes p_bird, p_cat, p_dog, and the same integer
            # labels read by position there scored accuracy 0.0 (audit BA).
            scores = scores[:, at] if at != list(range(len(at))) else scores
            classes = list(given_classes)
        if classes is not None and list(classes) != list(given_classes):
            # names as repr shows them where one holds an invisible character (a zero-width space in 'c\u200bat'
            # showed as 'cat', no difference from --classes cat)
            shown = ", ".join(c if c.isprintable() else repr(c) for c in map(str, classes))
            raise CLIError(f"--classes {','.join(given_classes)} does not match the class columns of {source} "
                           f"({shown})")
        if len(given_classes) != scores.shape[1]:
            raise CLIError(f"--classes names {len(given_classes)} classes but {source} has {scores.shape[1]} "
                           "score columns")
        if single is not None:
            if single not in given_classes:
                raise CLIError(f"{source}: its one score column is named for the class {single!r}, which is not "
                               f"one of --classes {','.join(given_classes)}")
            if single == given_classes[0]:
                # The column scores the first class (P(first), or its log-odds): swap the expanded pair.
                scores = scores[:, ::-1].copy()
        if read.classes is None and classes is None:
            _warn_if_numbered_order(given_classes, source)
        classes = list(given_classes)
    elif single in BOOL_CLASSES:
        # p_False / p_True over False/True labels: no other name is needed, False is class 0 and True class 1
        # (the labels' own order, softmaxkit.data._bool_labels); p_False was refused (audit CN).
        classes = list(BOOL_CLASSES)
        if single == BOOL_CLASSES[0]:
            scores = scores[:, ::-1].copy()
    elif single == "0":
        # p_0 / logit_0 over integer labels: class 0's score, whatever position it has.
        scores = scores[:, ::-1].copy()
    elif single is not None and single != "1":
        # p_benign over labels 0/1: is benign class 0 or class 1? Not guessed (audit: read as class 1 while
        # benign was 0, accuracy 0.065, exit 0).
        raise CLIError(f"{source}: its one score column is named for the class {single!r}, but the other class "
                       f"has no name, so the labels' order is unknown; pass --classes {single},OTHER or "
                       f"--classes OTHER,{single} (the column's class and the other, in the labels' order)")
    if read.values.shape[1] == 1 and read.classes is None and single is None:
        _warn_unnamed_column_class(source, read.columns, kind=kind, given_classes=given_classes)
    decimals = None
    if kind == "probability":
        scores, decimals = _probabilities(source, scores, stored=stored,
                                          columns=read.columns if len(read.columns) == scores.shape[1] else ())
    else:
        _warn_if_probabilities(source, read.values, stored=stored)
    return ScoreFile(scores, classes, read.ignored, decimals, read.columns, read.ids)


def header_classes(columns: Sequence[str], n_classes: int) -> list[list[str]]:
    """The class lists that a plain header (score columns without ``p_``/``logit_``) may stand for, in
    the order to try them: the names as written, then, for ``true,false`` in another letter case, the
    names bool labels match (``True, False``); empty when the header cannot name ``n_classes`` classes.

    Whole numbers are left to :func:`numbered_header` (``0, 1, ...`` in order is pandas' positional
    header), and a header with a repeated name or one column per class short names no class list.
    """
    from softmaxkit.data import bool_class_name

    names = [str(c) for c in columns]
    if (n_classes < 2 or len(names) != n_classes or len(set(names)) != len(names)
            or all(_whole_number_name(name) for name in names)):
        return []
    folded = [bool_class_name(name) for name in names]
    as_bools = [folded] if None not in folded and len(set(folded)) == len(folded) and folded != names else []
    return [names, *as_bools]


def _warn_unnamed_column_class(source: str, columns: tuple[str, ...], *, kind: str,
                               given_classes: list[str] | None) -> None:
    """Say which class a binary problem's one score column, named for no class, is read as scoring: the
    second class (:func:`two_class_scores`), of ``--classes`` (``given_classes``) or of the labels.

    ``--classes yes,no`` with a column holding P(yes) (scikit-learn's ``predict_proba(X)[:, 1]`` for
    the classes no, yes) read every probability inverted without a word (audit: accuracy 0.025 for
    0.975, exit 0). A warning rather than a note: the reading is a guess the file cannot confirm.
    """
    import warnings

    from softmaxkit.data import SCORE_PREFIXES

    column = f"column {columns[0]!r}" if columns else "its one column"
    what = "P({})" if kind == "probability" else "the log-odds of {}"
    if given_classes is not None and len(given_classes) == 2:
        taken = what.format(repr(given_classes[1])) + ", the second class of --classes"
    else:
        # No class names without --classes: text labels are refused (audit BS: this promised a reading of
        # "the second of the two class names in sorted order" just before refusing them).
        taken = (what.format("class 1") + ", the second class (label 1, as scikit-learn's predict_proba(X)[:, 1]; "
                 "with --classes NEG,POS, of POS)")
    # pandas heads an unnamed column 0 and DataFrame(proba)[[0]] (class 0's) alike (audit CN)
    zero = (f" (pandas heads an unnamed column '0', and DataFrame(proba)[[0]], class 0's, alike: for the latter "
            "pass --classes 0,1)" if columns == ("0",) and given_classes is None else "")
    warnings.warn(f"{source}: {column} read as {taken}; name the column {SCORE_PREFIXES[kind]}<class> to say "
                  f"which{zero}", stacklevel=3)


def _warn_if_probabilities(source: str, values: Any, *, stored: str | None) -> None:
    """Warn when ``--logits`` look like probabilities: every value in [0, 1] and every row summing to 1
    within :func:`probability_tolerance` of the ``stored`` dtype, or within the rounding of the values'
    printed decimals (:func:`_looks_like`, as ``--probs`` allows for it: :func:`_rounded_rows`).

    Softmax outputs passed as logits are put through softmax again, flattened towards uniform (audit:
    log-loss 1.1997 for 0.7664, without a word), while the reverse mistake is refused; probabilities
    written with 3 decimals (rows at 1.001) got no warning (audit CO: log-loss 1.1271 for 1.1195). Logits
    that happen to look so are possible, so this warns rather than refuses. A memory-mapped file is read
    block by block (:func:`softmaxkit.data.iter_row_blocks`), never copied whole.

    Percentages (rows summing to 100) are warned about likewise: the range error of ``--probs`` once sent
    them here (audit: log-loss 0.3082 for 0.0737, exit 0). So are per-class sigmoid outputs (every value
    in [0, 1], rows that do not sum to 1) of at least :data:`_IN_UNIT_MIN_ROWS` rows: no softmax
    distribution, and read as logits no row's top probability can pass ``e / (e + K - 1)``.

    One column (a binary problem's log-odds) has no row sum to judge: it warns when all of at least
    :data:`_IN_UNIT_MIN_ROWS` values lie in [0, 1], which as log-odds put every row's P(class 1)
    between 0.5 and 0.73, so every row predicts class 1 (audit: P(yes) given as ``--logits``).

    The file's check is the command's: the library's own (:func:`softmaxkit._calibration_inputs.
    warn_if_not_logits`, on a sample of rows, without the file's name) is silenced for the command.
    """
    import math
    import warnings

    from softmaxkit import data
    from softmaxkit._calibration_inputs import InputKindWarning

    # Scoped to this command by the catch_warnings() around it (cli.main), as OneBasedLabelsWarning is.
    warnings.filterwarnings("ignore", category=InputKindWarning)
    one_column = values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)
    if one_column:
        if len(values) >= _IN_UNIT_MIN_ROWS and all(block.min() >= 0 and block.max() <= 1
                                                    for _, block in data.iter_row_blocks(values)):
            warnings.warn(f"{source}: every value of its one column lies in [0, 1]: these look like probabilities; "
                          "read as log-odds they give every row P(class 1) between 0.5 and 0.73, so every row "
                          "predicts class 1; if they are probabilities, pass the file with --probs", stacklevel=3)
        return
    kind = _looks_like(values, tolerance=probability_tolerance(stored))
    if kind == "percentages":
        warnings.warn(f"{source}: every value lies in [0, 100] and every row sums to 100: these look like "
                      "percentages, which read as logits are put through softmax (other probabilities "
                      "than theirs); if they are percentages, divide every value by 100 and pass the "
                      "file with --probs", stacklevel=3)
    elif kind == "probabilities":
        warnings.warn(f"{source}: every value lies in [0, 1] and every row sums to 1: these look like probabilities, "
                      "which read as logits are put through softmax again (flattened towards uniform); if they are "
                      "probabilities, pass the file with --probs", stacklevel=3)
    elif kind == "sigmoid" and len(values) >= _IN_UNIT_MIN_ROWS:
        k = values.shape[1]
        warnings.warn(f"{source}: every value lies in [0, 1] but the rows do not sum to 1: these look like per-class "
                      "sigmoid outputs (multi-label), which are no softmax distribution over exclusive classes; read "
                      f"as logits, no row's top probability can pass e/(e+{k - 1}) = {math.e / (math.e + k - 1):.3g}. "
                      "Pass the model's softmax probabilities (--probs) or its logits; if these are logits, ignore "
                      "this warning", stacklevel=3)


#: The fewest rows all in [0, 1] that :func:`_warn_if_probabilities` reads as probabilities given as
#: log-odds (one column) or as sigmoid outputs (several): a few logits may all lie there by chance.
_IN_UNIT_MIN_ROWS = 20


def _warn_if_numbered_order(given_classes: list[str], source: str) -> None:
    """Warn when ``--classes`` for unnamed score columns counts up (c0, c1, ..., c10) where a sorted
    class list, softmaxkit's ``fit`` and scikit-learn's ``classes_`` order, has c10 before c2.

    The columns of a ``predict`` ``.npy`` are in sorted order; numbering the classes as a person would
    gave every class from c2 on its neighbour's scores (audit: accuracy 0.07, exit 0). The order
    given may be right (a torch model's own), so this warns rather than refuses.
    """
    import re
    import warnings

    from softmaxkit.data import number_order_key as numbered

    if sorted(given_classes) == list(given_classes):
        return
    if all(re.fullmatch(r"[+-]?[0-9]+", name) for name in given_classes):
        # Integer labels: softmaxkit and scikit-learn order them as numbers (1, 2, 10), so a list
        # that counts up is their order (audit: the advice to pass 1,10,2 gave accuracy 0.415 for 0.670).
        return
    try:
        counts_up = sorted(given_classes, key=numbered) == list(given_classes)
    except TypeError:  # names mixing digits and text at the same place: no counting order
        return
    if counts_up:
        shown = ",".join(sorted(given_classes)[:6]) + (",..." if len(given_classes) > 6 else "")
        warnings.warn(
            f"--classes counts up ({','.join(given_classes[:4])},...) but the score columns of {source} are "
            f"unnamed: softmaxkit fit and scikit-learn order classes as sorted text ({shown}); if the scores "
            "come from them, pass --classes in that order",
            stacklevel=2,
        )


def _whole_number_name(name: str) -> bool:
    """Whether a column or class name is a whole number written in ASCII digits (``2``, ``-1``, ``02``)."""
    import re

    return re.fullmatch(r"[+-]?[0-9]+", name.strip()) is not None


def numbered_header(columns: tuple[str, ...] | list[str]) -> list[str] | None:
    """``columns`` in numeric order when they are two or more distinct whole numbers other than
    ``0..K-1`` in order (``2, 0, 1``; ``1, 2, 3``), which name classes rather than count columns;
    else None (``0..K-1`` in order is the positional header of ``pd.DataFrame(z).to_csv()``)."""
    if len(columns) < 2 or not all(_whole_number_name(name) for name in columns):
        return None
    values = [int(name) for name in columns]
    if len(set(values)) != len(values) or values == list(range(len(values))):
        return None
    return [name for _, name in sorted(zip(values, columns))]


def sorted_classes(classes: list[str]) -> list[str]:
    """``classes`` in the order softmaxkit ``fit`` and scikit-learn give labels: as numbers when every
    name is a whole number (1, 2, 10), else as text."""
    if all(_whole_number_name(name) for name in classes):
        return sorted(classes, key=lambda name: (int(name), name))
    return sorted(classes)


def read_named_predictions(args: argparse.Namespace, *, fitted: Any = None, by_position: bool = False) -> Predictions:
    """:func:`read_predictions`, checked and put in one class order, for ``evaluate`` and ``calibrate``.

    Three things the file's own column order must not decide:

    * integer labels against integer class names none of which they are (``30, 10, 20`` over labels
      0..2) were read as column positions; refused (:func:`_refuse_positional_labels`);
    * labels that are the scores' own top class (``--label-column prediction`` of ``predict``'s
      output, accuracy 1.0) draw a warning;
    * named score columns are put in one class order (:func:`in_canonical_order`: ``fitted``'s, a
      conformal predictor's, else sorted), with the labels renumbered to match: ``argmax`` breaks a
      tie to the first column, so the same rows as ``p_bird, p_cat, p_dog`` and ``p_dog, p_cat,
      p_bird`` gave accuracy 0.5 and 1.0 (audit, exit 0).
    """
    import numpy as np

    pred = read_predictions(args)
    if getattr(args, "classes", None) is None:
        _refuse_positional_labels(pred, args)
    _warn_if_labels_are_predictions(args)
    scores, classes, order = in_canonical_order(pred.scores, pred.classes, fitted, by_position=by_position)
    if order is None:
        return pred
    return pred._replace(scores=scores, labels=np.argsort(order)[pred.labels], classes=classes)


def in_canonical_order(scores: Any, classes: list[str] | None, fitted: Any = None, *,
                       by_position: bool = False) -> tuple[Any, list[str] | None, Any]:
    """``scores`` with its named columns in one class order, whatever the file's: ``fitted``'s
    ``class_names_`` (a calibrator or conformal predictor with the same classes), else
    :func:`sorted_classes`; a per-class ``fitted`` without names applied ``by_position`` keeps the
    file's order, which the user vouched is its own.

    ``argmax`` breaks a tie to the first column, so accuracy, ECE and ``apply``'s ``prediction``
    followed the file's column order (audit: 0.5 or 1.0 for the same rows). Returns the scores,
    their classes (None for unnamed columns, left as they are) and the permutation taken
    (``scores[:, order]``; None when none was needed).
    """
    import numpy as np

    if classes is None:
        return scores, None, None
    classes = [str(c) for c in classes]
    names = getattr(fitted, "class_names_", None)
    if names is not None and sorted(map(str, names)) == sorted(classes):
        target = [str(c) for c in names]
    elif names is None and fitted is not None and by_position and _applies_per_class(fitted):
        target = classes
    else:
        target = sorted_classes(classes)
    if target == classes:
        return scores, classes, None
    order = np.array([classes.index(name) for name in target])
    return scores[:, order], target, order


def _refuse_positional_labels(pred: Predictions, args: argparse.Namespace) -> None:
    """Refuse integer labels read as column positions against score columns whose names are other whole
    numbers (``10, 20, 30`` over labels 0..2): the names say which class each column is, and no label
    is one of them, so reading by position would be a guess (:func:`numbered_header`)."""
    from softmaxkit.data import DataFileError, read_labels

    if pred.classes is None or numbered_header(list(pred.classes)) is None:
        return
    try:  # the labels as written: read_predictions gave them as positions or by name, which it does not say
        raw = read_labels(args.labels, column=args.label_column)
    except DataFileError:
        return
    import numpy as np

    values = {int(v) for v in np.unique(raw).tolist()}
    if values & {int(name) for name in pred.classes}:
        return  # read by name (a label that is no class was refused there)
    shown = ", ".join(map(str, sorted(values)[:6])) + (", ..." if len(values) > 6 else "")
    raise CLIError(f"{pred.source}: its score columns are named for the classes {', '.join(pred.classes)}, but the "
                   f"labels of {args.labels} are {shown}, none of them: the columns' classes are unknown; pass "
                   "--classes with the classes in the file's column order (or name each column for its class)")


def _warn_if_labels_are_predictions(args: argparse.Namespace) -> None:
    """Warn when the labels are the ``prediction`` column of the scores file itself (``predict``'s or
    ``apply``'s output): scored against their own top class, scores look perfect (audit: accuracy 1.0)."""
    source = args.logits or args.probs
    if args.label_column == "prediction" and _same_file(args.labels, source):
        import warnings

        warnings.warn(f"{args.labels}: column 'prediction' is the top class of the scores beside it, not the true "
                      "labels: these labels are the scores' own predictions, so accuracy is 1 by construction; give "
                      "the true labels with --labels", stacklevel=3)


def _applies_per_class(fitted: Any) -> bool:
    """Whether ``fitted`` has parameters per class, so that the order of the columns it gets matters:
    all calibrators but temperature scaling (one T), and class-conditional conformal predictors."""
    from softmaxkit.calibration import TemperatureScaling
    from softmaxkit.conformal import ConformalClassifier

    if isinstance(fitted, ConformalClassifier):
        return bool(fitted.class_conditional)
    return not isinstance(fitted, TemperatureScaling)


def class_order(classes: list[str] | None, fitted: Any, *, source: str, fitted_as: str,
                by_position: bool = False, columns: Sequence[str] = ()) -> Any:
    """Where each class of ``fitted`` sits among ``source``'s score columns, or None if in place.

    ``fitted`` is a calibrator or conformal predictor; its ``class_names_``
    (saved by the CLI) give the class of each column it was fitted on. Per-class
    parameters (vector, matrix, isotonic, Platt, class-conditional sets) apply
    by position, so a file whose ``logit_<class>`` columns come in another order
    would get another class's parameters with no error. Returns the column
    permutation ``order`` with ``scores[:, order]`` in ``fitted``'s order, or
    None when no reordering is needed or possible. Different class sets, or a
    file without class names (unless ``fitted``'s are ``0..K-1`` in order, the
    classes unnamed columns stand for), are refused naming ``fitted_as`` (e.g.
    ``"CALIBRATOR cal.npz"``). So is the reverse, named columns and a
    per-class ``fitted`` without names (fitted on a ``.npy``), unless
    ``by_position`` (``--by-position``) says the columns are in its order:
    as with ``predict``'s features, one side's names cannot be checked
    against the other's order (audit: the same logits in another column order
    moved probabilities by 0.25, exit 0). ``columns``: the score columns as
    ``source`` names them (:attr:`ScoreFile.columns`), which the refusal of
    unnamed classes shows (:func:`_unnamed_columns_refusal`).
    """
    import numpy as np

    names = getattr(fitted, "class_names_", None)
    if names is None:
        if classes is not None and not by_position and _applies_per_class(fitted):
            raise CLIError(f"{fitted_as} was fitted on score columns without class names, so its per-class "
                           f"parameters cannot be matched to the columns of {source} ({', '.join(map(str, classes))}) "
                           "by name; pass --by-position if they are in the order it was fitted on, or refit it on a "
                           "file whose columns name the classes (p_<class>/logit_<class>, or --classes)")
        return None
    if classes is None:
        if list(map(str, names)) == [str(j) for j in range(len(names))]:
            # Unnamed columns are classes 0..K-1 everywhere (labels are their indices), and pandas' header
            # 0, 1, 2 names them so: the names of a fit on header 2, 0, 1 (numbered_header). Per-class
            # parameters then go by position, which nothing checks: a vector calibrator fitted on logit_0 ..
            # logit_9 applied to a .npy in reverse column order moved probabilities by up to 0.99999 without
            # a word (audit BB M8); said once, unless --by-position vouches for the order.
            if _applies_per_class(fitted) and not by_position:
                import warnings

                warnings.warn(f"{source}: its score columns have no class names: {fitted_as}'s per-class "
                              f"parameters are applied to them by position, as its classes 0..{len(names) - 1}; "
                              "if the columns are in another order, pass --classes with the file's column order "
                              "(--by-position says they are in its order, without this warning)", stacklevel=2)
            return None
        raise _unnamed_columns_refusal(source, [str(n) for n in names], fitted_as=fitted_as, columns=columns)
    classes = [str(c) for c in classes]
    if sorted(classes) != sorted(names):
        raise CLIError(f"{fitted_as} was fitted on the classes {', '.join(names)}, but {source} has "
                       f"{', '.join(classes)}")
    if classes == list(names):
        return None
    return np.array([classes.index(n) for n in names])


def _unnamed_columns_refusal(source: str, names: list[str], *, fitted_as: str, columns: Sequence[str]) -> CLIError:
    """The refusal of score columns of ``source`` that name no class (a ``.npy`` matrix, or a header
    without the ``p_``/``logit_`` prefix: ``columns``, when known) for ``fitted_as``, fitted on the
    classes ``names``.

    ``malignant,benign`` over a calibrator of ``benign, malignant`` was said to have "no class names"
    (audit BL-F3b), true of a ``.npy`` alone. Unprefixed names are class names only where ``--classes``,
    the labels or the fitted object name the same classes (:func:`read_score_file`), and then they are
    matched to them by name.
    """
    way = "pass --classes with the classes in the file's column order, or name the columns p_<class>/logit_<class>"
    if columns and set(columns) == set(names):
        what = f"its score columns {', '.join(map(repr, columns))} have no p_/logit_ prefix, which class names need"
        way = (f"pass --classes {','.join(names)} (columns named as the classes are then matched to them by name, "
               "in any order), or name the columns p_<class>/logit_<class>")
    elif columns:
        what = f"its score columns ({', '.join(map(repr, columns))}) are not named p_<class>/logit_<class>"
    elif Path(source).suffix.lower() == ".npy":
        what, way = "its score columns have no class names", "pass --classes with the file's column order"
    else:
        # The names unknown here, they may be the classes' without the prefix: say how --classes reads both.
        what = "its score columns are not named p_<class>/logit_<class>"
        way = ("pass --classes with the classes in the file's column order (columns named as the classes, without "
               "the prefix, are matched to them by name), or name the columns p_<class>/logit_<class>")
    return CLIError(f"{source}: {what}, so they cannot be matched to the classes {fitted_as} was fitted on "
                    f"({', '.join(names)}); {way}")


def in_fitted_order(apply: Any, scores: Any, order: Any) -> Any:
    """``apply(scores)`` with the columns put in a fitted object's class order first (``order`` from
    :func:`class_order`; None: already in it), and the class axis (axis 1) of the result put back in
    ``scores``' order: calibrated logits, or prediction sets."""
    import numpy as np

    if order is None:
        return apply(scores)
    return np.take(apply(scores[:, order]), np.argsort(order), axis=1)


def encode_labels(y: Any, classes: Any, *, path: str, column: str | None = None, rows: Any = None) -> Any:
    """Class indices of labels ``y`` in a model's ``classes`` (see :func:`softmaxkit.data.encode_labels`)."""
    from softmaxkit.data import encode_labels as encode

    return encode(y, classes, path=path, column=column, rows=rows, problem="was not seen in training")


def check_npy_keeps_classes(classes: Any, out: str | None, *, option: str, source: str) -> None:
    """Refuse a ``.npy`` output whose columns would be read back as other classes.

    A ``.npy`` holds one matrix without names: ``evaluate`` and ``calibrate``
    read its columns as classes 0..K-1 and integer labels as column indices.
    Classes that are themselves integers other than 0..K-1 (``1, 2, 3``) would
    be scored against the wrong columns with exit code 0 (audit: accuracy
    0.02 for 0.89 when the test labels held only 1 and 2). Text classes fail
    loudly at read time, and 0..K-1 reads back right, so only this case is refused.
    """
    if out is None or Path(out).suffix.lower() != ".npy":
        return
    names = [str(c) for c in list(classes)]
    if names == [str(j) for j in range(len(names))] or not all(_whole_number_name(n) for n in names):
        return
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    raise CLIError(
        f"{option} {out}: a .npy keeps no class names, and {source}'s classes are the integers {shown}: read back, "
        f"its columns would be taken as classes 0..{len(names) - 1}; use .npz, .safetensors, .parquet or .csv, "
        "which keep them"
    )


def score_columns(probs: Any, classes: Any, *, out: str) -> dict[str, Any]:
    """The columns ``predict`` and ``apply`` write to ``out``: ``p_<class>`` per class, then ``prediction``.

    ``evaluate``/``calibrate --probs`` read the ``p_`` columns back by name. A
    ``.npy`` file is one matrix without names, read back as the scores, so it
    holds the probabilities alone (a numeric ``prediction`` column there was
    read as one more class). ``.safetensors`` leaves out a ``prediction``
    column of text class names, which it cannot hold.
    """
    import numpy as np

    classes = np.asarray(classes)
    columns: dict[str, Any] = {f"p_{c}": probs[:, j] for j, c in enumerate(classes.tolist())}
    suffix = Path(out).suffix.lower()
    if suffix == ".npy":
        return columns
    predicted = classes[np.argmax(probs, axis=1)]
    if predicted.dtype.kind == "b" and suffix in (".csv", ".tsv"):
        # The class as the p_ columns and set_ columns name it ("True"), not the CSV writer's bool "true"
        # (audit CN). Only in text: a .parquet or .npz keeps the bool, which `prediction == y` compares
        # with bool labels (written as "True" there, that gave 0.0 for 0.7225: review R26).
        predicted = predicted.astype(str)
    if suffix != ".safetensors" or predicted.dtype.kind in "biuf":
        columns["prediction"] = predicted
    return columns


def logit_columns(logits: Any, classes: Any) -> dict[str, Any]:
    """``logit_<class>`` columns (``predict --logits-out``), read back by ``--logits`` with their names."""
    import numpy as np

    return {f"logit_{c}": logits[:, j] for j, c in enumerate(np.asarray(classes).tolist())}


def unread_columns(path: str, ignored: tuple[str, ...] | list[str]) -> list[str]:
    """The columns of ``path`` that a command did not read as data: ``ignored`` (as its reader listed
    them), then a Parquet pandas index that is no column.

    pandas stores an index of consecutive ids (``df.set_index("id")`` over 1000..1119) as a run in its
    metadata (:func:`softmaxkit.data.pandas_index_columns`), which no column list, and so no reader's
    ``ignored``, shows: a scores file written so was paired with its labels by position (audit:
    accuracy 0.3583 for 0.5667, exit 0).
    """
    from softmaxkit.data import pandas_index_columns

    index = pandas_index_columns(path)
    if not index:  # not a Parquet file, or one without a pandas index
        return list(ignored)
    import pyarrow.parquet as pq

    stored = set(pq.read_schema(path).names)
    return [*ignored, *(name for name in index if name not in stored and name not in ignored)]


def read_row_ids(path: str, ignored: tuple[str, ...] | list[str], *, n_rows: int) -> dict[str, Any]:
    """The columns of ``path`` that identify its rows, as stored, for ``predict`` and ``apply`` to write
    with the scores (:func:`with_row_ids`).

    They are the columns not read as data (:func:`unread_columns`: ``ignored``, and a Parquet pandas
    index, also one stored as a run 1000..1099, which is no column) that are named like a row id
    (``id``, ``sample_id``, ``patient_id``), a Parquet pandas index, or pandas' unnamed saved index
    (:func:`softmaxkit.data.row_id_names`). Without them the scores could only be paired with labels
    by position: a labels file in another row order was scored against the wrong rows (audit:
    accuracy 0.4300 for 0.7500 after ``predict``, 0.3583 for 0.5667 after ``apply``, exit 0).
    ``n_rows`` is the number of rows read from ``path``.
    """
    from softmaxkit.data import SCORE_PREFIXES, read_id_columns, row_id_names

    # A name with a score prefix would be read back as one more class.
    names = [n for n in row_id_names(path, unread_columns(path, ignored), saved_index=True)
             if not n.startswith(tuple(SCORE_PREFIXES.values()))]
    ids = read_id_columns(path, names) if names else {}
    for name, values in ids.items():
        if len(values) != n_rows:  # both readers see the same rows; a mismatch is a bug, not a file
            raise RuntimeError(f"{path}: column {name!r}: {len(values)} ids for {n_rows} rows")
    return ids


def with_row_ids(row_ids: dict[str, Any], columns: dict[str, Any], out: str) -> tuple[dict, list[str], list[str]]:
    """``columns`` after the ``row_ids`` that ``out``'s format can hold: (columns, written ids, ids left out).

    A ``.npy`` is one matrix read back as the scores, so it holds none (an id there was one more
    class); ``.safetensors`` holds numbers only. An id named as an output column is left out too.
    """
    suffix = out.lower().rsplit(".", 1)[-1]
    kept = [name for name, values in row_ids.items() if name not in columns and suffix != "npy"
            and (suffix != "safetensors" or values.dtype.kind in "biuf")]
    return ({**{name: row_ids[name] for name in kept}, **columns}, kept,
            [name for name in row_ids if name not in kept])


def row_ids_text(kept: list[str]) -> str:
    """``", after the row id column 'id'"``, for the line that says where the scores were written
    (empty when no id was written: :func:`with_row_ids`)."""
    if not kept:
        return ""
    return f", after the row id column{'s' if len(kept) > 1 else ''} {', '.join(map(repr, kept))}"


def say_ids_left_out(say: Printer, names: list[str], source: str, out: str) -> None:
    """A line naming the row id columns of ``source`` that ``out`` could not hold (:func:`with_row_ids`), and why."""
    if not names:
        return
    suffix = out.lower().rsplit(".", 1)[-1]
    why = {"npy": "a .npy holds the scores alone", "safetensors": ".safetensors holds numbers only"}.get(
        suffix, "an output column has the same name")
    say(f"Row id column{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))} of {source} not written to "
        f"{out}: {why}; to match labels to the rows by id, write .csv, .parquet or .npz")


def say_ignored(printer: Printer, path: str, ignored: tuple[str, ...] | list[str], why: str) -> None:
    """One line listing the columns of ``path`` that were left out, and why."""
    if ignored:
        shown = ", ".join(repr(n) for n in list(ignored)[:8]) + (f", ... ({len(ignored)} in all)"
                                                                  if len(ignored) > 8 else "")
        printer(f"Ignored column{'s' if len(ignored) > 1 else ''} of {path} ({why}): {shown}")


def require_two_classes(y: Any, *, where: str, classes: list[str] | None = None) -> None:
    """A classifier (or a calibrator) needs at least two distinct labels.

    ``y`` holds labels, or class indices into ``classes`` when given, so that the message names
    the class (``'barolo'``) rather than its index (audit: "every label is 1").
    """
    import numpy as np

    values = np.unique(np.asarray(y))
    if len(values) < 2:
        only = values[0].item() if len(values) else None
        if only is not None and classes is not None:
            only = classes[int(only)]
        raise CLIError(f"{where}: every label is {only!r}; at least 2 classes are needed")


def check_report(report_dir: str, *, option: str = "--report", files: dict[str, Any] | None = None) -> None:
    """Before any work: the report directory is writable and holds no file softmaxkit would overwrite
    without having written it (see :func:`softmaxkit.report.check_report_dir`: such a directory is refused),
    and is none of the command's output ``files`` (``{option or role: path or None}``)."""
    from softmaxkit.io import StagedOutputs, same_entry
    from softmaxkit.report import check_report_dir

    for role, path in (files or {}).items():
        # Else the commit fails late, on a temporary's name ("...tmp.npz: Is a directory").
        if path is not None and same_entry(path, report_dir):
            raise CLIError(f"{option} {report_dir} is also {role}; the report directory and that file need two paths")
    check_report_dir(report_dir, option=option)
    StagedOutputs().check(Path(report_dir) / "metrics.json", option=option)


def holdout_rows(labels: Any, fraction: float, seed: int, *, option: str = "--holdout") -> tuple[Any, Any]:
    """``calibrate --holdout``'s split: :func:`stratified_holdout`'s rows, each side in row order.

    Row order lets a memory-mapped file be read front to back; the rows are those of ``fit``'s split
    for the same labels, fraction and seed.
    """
    import numpy as np

    fit, held = stratified_holdout(labels, fraction, seed, option=option)
    return np.sort(fit), np.sort(held)


def stratified_holdout(labels: Any, fraction: float, seed: int, *, option: str = "--holdout") -> tuple[Any, Any]:
    """A seeded split of the rows of ``labels`` into (fit rows, held-out rows), stratified on the labels.

    ``fraction`` of the rows (rounded) are held out. A fraction that leaves fewer than two rows on either
    side is refused, naming ``option`` (``--holdout 0.999`` on 300 rows holds out all of them; audit: 1
    held-out row, its log-loss change read "worse" from an "interval" of one point). A class's only row
    always goes to the fit side: it cannot be on both, and held out it would be a class the map never saw
    (the library's warning names a class missing from a fit). The other rows are split by scikit-learn's
    stratified ``train_test_split`` when each side has room for every class; its rounding can still give
    all rows of a small class to one side (2 of 300 rows at 0.1 or 0.9), so such a class then swaps one
    row with a row of the side's largest class: every class of 2 or more rows is on both sides (audit: 3
    positives of 300, split unstratified, held out 150 negatives, where any map pulling p(yes) toward 0
    read "better"). Where scikit-learn's split already holds every class on both sides it is returned as
    it is, in its order (``fit``'s seeds keep their split). Without room for every class (fewer rows to
    hold out than classes), the split is plain.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels)
    n = len(y)
    n_held = int(round(fraction * n))
    n_fit = n - n_held
    if n_held < 2 or n_fit < 2:
        raise CLIError(f"{option} {fraction:g} of {n} rows leaves {n_fit} rows to fit and {n_held} to measure; "
                       "each side needs at least 2 (choose a fraction nearer 0.5, or use more rows)")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    idx = np.arange(n)
    single = counts[inverse] == 1
    rest = idx[~single]
    if len(rest) <= n_held:  # almost every class a single row: nothing sensible to stratify or keep back
        return train_test_split(idx, test_size=n_held, random_state=seed)
    n_classes = int(np.count_nonzero(counts >= 2))
    room = n_held >= n_classes and len(rest) - n_held >= n_classes
    fit, held = train_test_split(rest, test_size=n_held, stratify=inverse[rest] if room else None,
                                 random_state=seed)
    if room:
        _fill_missing_classes(fit, held, inverse, np.random.default_rng(seed))
        _fill_missing_classes(held, fit, inverse, np.random.default_rng(seed))
    if single.any():
        fit = np.sort(np.concatenate([fit, idx[single]]))
    return fit, held


def _fill_missing_classes(side: Any, other: Any, inverse: Any, rng: Any) -> None:
    """In place: for each class (code in ``inverse``) of ``other`` that ``side`` lacks, swap a random row
    of it from ``other`` with a random row of ``side``'s largest class, so the swap empties no class.

    ``side`` holds at least as many rows as there are classes, so a side lacking a class has a class of 2
    or more rows; each swap fills one missing class and leaves both sides their sizes and order.
    """
    import numpy as np

    for code in np.unique(inverse[other]):
        codes = inverse[side]
        if np.any(codes == code):
            continue
        largest = np.argmax(np.bincount(codes))
        give = rng.choice(np.flatnonzero(codes == largest))
        take = rng.choice(np.flatnonzero(inverse[other] == code))
        side[give], other[take] = other[take], side[give]


#: Rows checked per block by :func:`refuse_non_finite`: a boolean mask of one block, not of the file.
_FINITE_BLOCK_ROWS = 1 << 16


def refuse_non_finite(probs, *, out: str, source: str, option: str = "--out") -> None:  # noqa: ANN001
    """Raise :class:`~softmaxkit.cli.CLIError` naming the first row of ``probs`` that is not finite.

    Logits that overflow float64 (a calibrator with a huge temperature, huge scores) give NaN after
    the softmax; ``apply`` wrote them as probabilities, with prediction class 0 and exit 0 (audit:
    328 of 400 rows). Checked in blocks of rows, so no mask of the whole table is made.

    Parameters
    ----------
    probs : ndarray of shape (N, C)
        The probabilities about to be written.
    out : str
        The file they were to be written to.
    source : str
        The input file whose rows they are (rows are named 1-based, as its reader counts them).
    option : str, default "--out", keyword-only
        The option that named ``out``.
    """
    import numpy as np

    from softmaxkit.cli import CLIError

    for start in range(0, len(probs), _FINITE_BLOCK_ROWS):
        finite = np.isfinite(probs[start:start + _FINITE_BLOCK_ROWS]).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            n_bad = int(np.count_nonzero(~np.isfinite(probs[row:]).all(axis=1)))  # the error path only
            raise CLIError(f"{option} {out} not written: the probabilities of row {row + 1} of {source} are not "
                           f"finite ({n_bad} of {len(probs)} rows): the logits overflow float64 (check the "
                           "calibrator's temperature and the scale of the inputs)")


def warn_zero_probabilities(probs, classes, *, out: str, source: str, isotonic: bool = False) -> None:  # noqa: ANN001
    """Warn when rows about to be written give a class probability exactly 0, naming how many and which
    classes: a row of such a class has infinite log-loss, and a downstream ``log(p)`` is ``-inf``.

    ``calibrate`` and ``fit`` say it of the map when they fit it, but ``predict --calibrator`` and ``apply``
    then wrote the zeros without a word (audit BX: an isotonic calibrator of 7 positives gave 3,323 of 5,000
    rows P(yes) = 0, 25 of them true positives; ``evaluate`` then read log-loss inf). ``isotonic``: the
    probabilities come through an isotonic map, named as the cause; else it is float64 underflow. Counted in
    row blocks.
    """
    import warnings

    import numpy as np

    from softmaxkit._loss_interval import name_list

    per_class = np.zeros(probs.shape[1], dtype=np.int64)
    rows = 0
    for start in range(0, len(probs), _FINITE_BLOCK_ROWS):
        zero = probs[start:start + _FINITE_BLOCK_ROWS] == 0
        per_class += zero.sum(axis=0)
        rows += int(np.count_nonzero(zero.any(axis=1)))
    if not rows:
        return
    named = [f"{classes[j]!r} in {per_class[j]}" for j in np.flatnonzero(per_class)]
    # The cause named as it is (review R19: "an isotonic map" was blamed where no calibrator was given, and
    # where temperature scaling's logits underflowed): an isotonic map's ranges, else float64 underflow.
    why = ("the isotonic map gives 0 over ranges of scores (temperature and Platt scaling never do)" if isotonic
           else "a logit more than ~745 below the row's largest underflows to 0 in float64")
    warnings.warn(f"{out}: {rows} of {len(probs)} rows of {source} get probability exactly 0 for a class "
                  f"({name_list(named)} rows): in the file written, a row of such a class has infinite log-loss; "
                  f"{why}", stacklevel=2)


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (or folder), by identity: one folder may be reached by two paths
    (a second mount, a symlinked folder) (:func:`softmaxkit.io.same_file`)."""
    from softmaxkit.io import same_file

    return same_file(a, b)
