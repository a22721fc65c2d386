"""Read user data files (features, logits, labels) and write tables of results.

The format follows the extension:

=================  =====================================================
``.csv``/``.tsv``   a table with a header row, read and written by pyarrow
``.parquet``        a table, read and written by pyarrow
``.npy``            one array (``allow_pickle=False``); a 2-D array's
                    columns are named ``"0"``, ``"1"``, ...
``.npz``            named arrays (``allow_pickle=False``); a 2-D array
                    ``X`` gives columns ``"X[0]"``, ``"X[1]"``, ...
``.safetensors``    named arrays, the same way as ``.npz``; read here, so
                    bfloat16 (widened to float32) and float16 too
=================  =====================================================

Every file is first turned into ordered named 1-D columns, so one set of
checks serves every format. Of an ``.npz`` or ``.safetensors`` holding several
arrays, scores and labels are whole arrays, chosen by name
(``np.savez(f, logits=L, labels=y)``: see :func:`read_scores` and
:func:`read_labels`). A bad file raises :class:`DataFileError` (a
``ValueError``) with one line naming the file, the row and column, and the
problem, e.g. ``train.csv: row 7 (line 8), column 'age': non-numeric value
'abc'``. Rows are counted from 1 over data rows; for text tables the line
number in the file is given too.

pyarrow and safetensors are the ``io`` extra; they are imported on first use
(safetensors to write only).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

import numpy as np

from softmaxkit.io import atomic_path

_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
_ARRAY_SUFFIXES = (".npy", ".npz", ".safetensors")
SUFFIXES = _TABLE_SUFFIXES + _ARRAY_SUFFIXES
#: Formats that hold several named arrays, of which the scores may be one (see :func:`read_scores`).
_CONTAINER_SUFFIXES = (".npz", ".safetensors")


class DataFileError(ValueError):
    """A data file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Features:
    """A feature matrix read from a file, with its optional target column.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64
        Finite feature values.
    y : ndarray of shape (n_samples,) or None
        The target column as read (integers or strings), or None without ``target``.
    feature_names : list of str
    target_name : str or None
    named : bool
        Whether the column names come from the file (a table's header, an
        ``.npz``'s 1-D arrays) rather than from positions (``.npy``, a 2-D array).
    ignored : list of str
        Columns left out because the model does not use them (``feature_names=``).
    ids : tuple of str
        Those of ``ignored`` left out as row ids (``read_features(ids=True)``).
    weights : ndarray of shape (n_samples,) or None
        The row weights of the ``weight`` column (``read_features(weight=...)``: finite, >= 0, not all
        0), or None; that column is one of ``ignored``.
    weight_name : str or None
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    named: bool = True
    ignored: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    weights: np.ndarray | None = None
    weight_name: str | None = None


# --------------------------------------------------------------------------- low level


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; use one of {', '.join(SUFFIXES)}"
        )
    return suffix


def location(path: Path, row: int | None = None, column: str | None = None) -> str:
    """``file: row R (line L), column 'c'`` with ``row`` 0-based over data rows."""
    parts = []
    if row is not None:
        lines = _row_lines(path, row) if path.suffix.lower() in (".csv", ".tsv") else None
        where = ("" if lines is None else f" (line {lines[0]})" if lines[0] == lines[1]
                 else f" (lines {lines[0]}-{lines[1]})")
        parts.append(f"row {row + 1}{where}")
    if column is not None:
        parts.append(f"column {column!r}")
    return f"{path}: " + (", ".join(parts) + ": " if parts else "")


def _row_lines(path: Path, row: int) -> tuple[int, int] | None:
    """The first and last line (1-based) of the data row ``row`` (0-based) of a CSV/TSV ``path``; None when
    the file cannot be read. Line 1 is the header and every row one line, unless a quoted cell holds a line
    break, which only a parse shows: row 6 of such a file was called line 7 for a cell on line 13 (audit
    BB M3). The parse runs only for a file with a quote in it, and only on the way to an error."""
    try:
        with open(path, "rb") as fh:
            quoted = any(b'"' in chunk for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return None
    if not quoted:
        return row + 2, row + 2
    import csv

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        end = 0  # the last line of the record before
        try:
            for record, _ in enumerate(reader):
                if record == row + 1:  # record 0 is the header
                    return end + 1, reader.line_num
                end = reader.line_num
        except csv.Error:
            return None
    return None


def _csv_parse_options(suffix: str) -> Any:
    """pyarrow's parse options for a ``.csv`` or ``.tsv``: the delimiter of the extension, and a blank
    line read as a row (every value missing), not skipped as pyarrow and pandas do by default:
    skipping shifts the line numbers errors name, and turns a missing label in a one-column file
    into a file one row short."""
    import pyarrow.csv as pcsv

    return pcsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",", ignore_empty_lines=False)


def _read_arrow(path: Path, suffix: str, text_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """A CSV/TSV/Parquet file's columns; ``text_columns`` of a CSV/TSV keep their text as written
    (no type inference: "01" stays "01", not the number 1)."""
    import pyarrow as pa

    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pcsv

            if _file_head(path)[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise DataFileError(f"{path}: UTF-16 text (Excel's \"Unicode Text\"); save it as \"CSV UTF-8\"")
            parse = _csv_parse_options(suffix)
            convert = pcsv.ConvertOptions(column_types={name: pa.string() for name in text_columns})
            source = _without_trailing_blank_lines(path, parse.delimiter)
            try:
                table = pcsv.read_csv(source, parse_options=parse, convert_options=convert)
            except pa.ArrowInvalid:
                table = _read_csv_whole(path, parse, convert)
    except pa.ArrowInvalid as exc:
        # pyarrow's messages are good but multi-line in places ("CSV parse error: Expected 3
        # columns, got 2: 1,2"); keep the first line.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "empty csv file" in message.lower():
            head = _file_head(path)
            if not head.strip():
                raise DataFileError(f"{path}: the file is empty") from None
            if b"\n" not in head.strip() and len(head) < _HEAD_BYTES:  # a header line without a newline
                raise DataFileError(f"{path}: the file has no data rows") from None
        if suffix != ".parquet":
            _locate_ragged_row(path, "\t" if suffix == ".tsv" else ",")
        raise DataFileError(f"{path}: cannot be read as {suffix[1:]}: {message}") from None
    if suffix != ".parquet":
        _refuse_bytes(path, table)
        _refuse_blank_lines(path, table, "\t" if suffix == ".tsv" else ",")
    if suffix == ".csv" and table.num_columns == 1 and ";" in table.column_names[0]:
        raise DataFileError(
            f"{path}: line 1: the header {table.column_names[0]!r} is separated by ';', not ','; "
            f"save the file as comma-separated CSV {_DECIMAL_POINT}"
        )
    if table.num_columns == 1:
        # The other common mix-up: tabs in a .csv, commas in a .tsv (the extension picks the delimiter).
        found, meant = ("\t", ".tsv") if suffix == ".csv" else (",", ".csv")
        if found in table.column_names[0]:
            raise DataFileError(
                f"{path}: line 1: the header is separated by {found!r}, not by the {suffix} delimiter; "
                f"name the file {path.stem}{meant}, or save it as {suffix[1:]}"
            )
    if suffix != ".parquet":
        _refuse_data_as_header(path, table.column_names, table.schema.types)
    _refuse_duplicate_names(path, table.column_names)
    # Chunked columns as read (no combine_chunks copy): numeric_matrix copies chunk by chunk.
    return {name: table.column(name) if table.num_rows else np.array([]) for name in table.column_names}


#: How much of a file :func:`_file_head` reads.
_HEAD_BYTES = 1 << 16


def _file_head(path: Path) -> bytes:
    """The first :data:`_HEAD_BYTES` of ``path`` (for sniffing a byte-order mark or an empty file)."""
    with open(path, "rb") as fh:
        return fh.read(_HEAD_BYTES)


def _not_utf8(byte: bytes) -> str:
    return (f"not UTF-8 text (byte 0x{byte.hex()}: Windows-1252 or Latin-1, as Excel's plain \"CSV\" saves); "
            "save it as \"CSV UTF-8\"")


def _refuse_bytes(path: Path, table: Any) -> None:
    """Refuse a text file column that is not UTF-8: pyarrow types it as binary, and the labels then
    failed deep inside NumPy ("'ascii' codec can't decode byte 0xe9"), naming neither file nor column."""
    import pyarrow as pa

    try:
        names = table.column_names  # decoded from the header's bytes on access
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: line 1 (the header): {_not_utf8(exc.object[exc.start:exc.start + 1])}") from None
    for name, column in zip(names, table.columns):
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            for row, value in enumerate(column.to_pylist()):
                try:
                    (value or b"").decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataFileError(location(path, row, name) + _not_utf8(value[exc.start:exc.start + 1])) from None


def _read_csv_whole(path: Path, parse: Any, convert: Any) -> Any:
    """The CSV read again as one block, with quoted newlines allowed: what pyarrow's fast read refuses
    in valid files (audit).

    pyarrow splits a file into 1 MB blocks at newlines, so a quoted field holding a newline past the
    first block ("Expected 4 columns, got 3"), or one line longer than a block ("straddling object"),
    fails; after the second, an unrecovered read also hung the process at exit. One block of the whole
    file, parsed with ``newlines_in_values``, reads both as pandas does; a file that is truly malformed
    fails here too and is reported by the caller.
    """
    import pyarrow.csv as pcsv

    block = min(max(path.stat().st_size + 1, 1 << 20), (1 << 31) - 1)
    whole = pcsv.ParseOptions(delimiter=parse.delimiter, ignore_empty_lines=False, newlines_in_values=True)
    return pcsv.read_csv(_without_trailing_blank_lines(path, parse.delimiter), parse_options=whole,
                         read_options=pcsv.ReadOptions(block_size=block), convert_options=convert)


def _refuse_duplicate_names(path: Path, names: list[str]) -> None:
    """Refuse a table with two columns of one name: which one a name selects would be a guess
    (a Parquet file with two ``label`` columns was scored against the first, exit 0)."""
    seen: set[str] = set()
    for name in names:
        if name in seen and not visible_name(name):
            raise DataFileError(_nameless_columns_message(path, names))
        if name in seen:
            raise DataFileError(f"{path}: the column name {name!r} appears twice; column names must be unique")
        seen.add(name)


def _nameless_columns_message(path: Path, names: list[str]) -> str:
    """The error for several columns without a name (each read as ``''``): a header ``p_a,p_b,p_c,,``,
    the empty columns Excel keeps after the last one, was "the column name '' appears twice"."""
    blank = [j for j, name in enumerate(names) if not visible_name(name)]
    where = ", ".join(str(j + 1) for j in blank)
    if blank == list(range(len(names) - len(blank), len(names))):
        return (f"{path}: its last {len(blank)} columns (columns {where} of {len(names)}) have no name: empty "
                "trailing columns (a header ending in ',,', as Excel saves columns once used); delete them, or "
                "name them if they hold data")
    return (f"{path}: columns {where} (of {len(names)}) have no name; name them (or delete them if they are "
            "empty): column names must be unique")


def _without_trailing_blank_lines(path: Path, delimiter: str) -> Any:
    """What pyarrow reads of the CSV/TSV ``path``: the file without the blank lines that end it (an editor's
    extra line ends, spaces only, in any line-end style), else ``path`` itself.

    A blank line inside the table is refused (:func:`_refuse_blank_lines`); at the end it is dropped, as
    pandas drops it. An empty last line read as a row of missing values, and was dropped, but a last line
    of spaces was refused ("line 62 is blank (spaces only)": a row of one field, which pyarrow does not
    parse), and so was an empty one after CR-only line ends, which a split on LF did not see (audit CJ F6).
    """
    end = _data_end(path, delimiter)
    if end == path.stat().st_size:
        return path
    import pyarrow as pa

    # A zero-copy view of the first ``end`` bytes: the mapping stays open while the view is alive.
    return pa.BufferReader(pa.memory_map(str(path)).read_buffer(end))


def _data_end(path: Path, delimiter: str, *, chunk_bytes: int = 1 << 16) -> int:
    """The byte offset where the blank lines at the end of the text file ``path`` begin: past the line end
    (LF, CRLF or CR) of the last line that holds more than whitespace, its own trailing spaces included. A
    line holding the ``delimiter`` is no blank line (a tab-separated line of empty fields is a row of
    missing values). The file's size when no blank line ends it; 0 when every line is blank."""
    blank = frozenset(b" \t\r\n\x0b\x0c") - frozenset(delimiter.encode())
    with open(path, "rb") as fh:
        size = stop = fh.seek(0, os.SEEK_END)
        while stop > 0:  # back over the file, a chunk at a time, to the last byte that is not blank
            start = max(0, stop - chunk_bytes)
            fh.seek(start)
            data = fh.read(stop - start)
            last = next((i for i in range(len(data) - 1, -1, -1) if data[i] not in blank), None)
            if last is not None:
                return _past_line_end(fh, start + last + 1, size)
            stop = start
    return 0


def _past_line_end(fh: Any, offset: int, size: int) -> int:
    """The offset past the first line end (LF, CRLF or CR) at or after ``offset`` in the binary file ``fh``
    (of ``size`` bytes, blank from ``offset`` on: :func:`_data_end`); ``size`` when there is none."""
    fh.seek(offset)
    while offset < size:
        data = fh.read(1 << 16)
        breaks = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
        if breaks:
            at = offset + min(breaks)
            fh.seek(at)
            return at + (2 if fh.read(2) == b"\r\n" else 1)
        offset += len(data)
    return size


def _refuse_blank_lines(path: Path, table: Any, delimiter: str) -> None:
    """Refuse a blank line inside a table of two or more columns, naming it.

    It reads as a row with every value missing, and was reported as "missing value in column
    'alcohol'" (audit). Skipping it, as pandas does, is not safe: a labels file and a scores file are
    paired by position, so a line skipped in one but not in the other would shift every later row.
    (In a one-column file a blank line is an empty value, reported as such; a line of delimiters
    only, ``,,``, is a row of missing values.) Clean files cost one null count: a numeric column
    with a value on every row proves that no line is blank.
    """
    import pyarrow.compute as pc

    if table.num_columns < 2 or not table.num_rows:
        return
    blank = None
    for column in table.columns:
        if not column.null_count and not _is_text(column):
            return
        empty = _blank_cells(column)
        blank = empty if blank is None else pc.and_kleene(blank, empty)
        if not pc.any(blank).as_py():
            return
    rows = set(np.flatnonzero(blank.to_numpy(zero_copy_only=False)).tolist())
    import csv

    # Only a line with nothing on it is blank; which rows those are, the text alone says.
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        for row, fields in enumerate(reader):
            if row > max(rows):
                return
            if row in rows and not fields:
                raise DataFileError(location(path, row, table.column_names[0])
                                    + f"missing value: line {reader.line_num} is blank; {_BLANK_LINE_FIX}")


def _is_text(column: Any) -> bool:
    """Whether the Arrow column ``column`` holds text."""
    import pyarrow as pa

    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def _blank_cells(column: Any) -> Any:
    """Which cells of the Arrow column ``column`` are blank: missing, or text of spaces only."""
    import pyarrow.compute as pc

    if _is_text(column):
        return pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_trim_whitespace(column), ""))
    return pc.is_null(column)


#: A column name that is a number literal (``6.7``, ``-1``, ``1e-3``), as a data row's cells are; also a
#: label written as a number (:func:`_written_as_number`). ``_INTEGER``: a whole number, unsigned.
#: ASCII digits only (``[0-9]``, not ``\d``, which matches any script's: "١٠" matched the class 10, where pandas
#: reads text; audit).
_NUMBER = re.compile(r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$")
_INTEGER = re.compile(r"^\s*[0-9]+\s*$")


def _refuse_data_as_header(path: Path, names: list[str], types: list[Any]) -> None:
    """Refuse a text table whose first line is data, which would silently lose that row.

    CSV has no marker for a header, so a file saved without one (``np.savetxt``)
    would have its first row taken as column names: one row fewer, and
    features called ``'6.7'``. A name reads as a data cell when it is a
    number other than a plain integer (``6.7``, ``-1``, ``1e-3``), or an
    integer heading a column of integers (``5`` over ``3, 7, 1``). An
    integer heading a column of decimals is a name (wavelengths ``400, 410``
    over a spectrum, years, class numbers over their scores), and so are
    pandas' names for an unnamed frame or series, ``0, 1, ..., m-1`` in
    order, whatever the column holds. Where no name is checked (columns taken
    by position), a first line of whole numbers is refused as well
    (:func:`_refuse_whole_number_row`).
    """
    import pyarrow as pa

    numbers = [name for name in names if _NUMBER.match(name)]
    if not numbers or numbers == [str(i) for i in range(len(numbers))]:
        return
    data_like = [name for name, kind in zip(names, types)
                 if _NUMBER.match(name) and (not _INTEGER.match(name) or pa.types.is_integer(kind))]
    if not data_like:
        return
    raise DataFileError(
        f"{path}: line 1 looks like data, not a header (column name{'s' if len(data_like) > 1 else ''} "
        f"{shown_names(data_like, 4)} "
        f"{'are numbers' if len(data_like) > 1 else 'is a number'}); the first line of a "
        f"{path.suffix[1:]} file must name the columns: add a header line such as "
        f"{_example_header(len(names))}" + (" (tab-separated)" if path.suffix.lower() == ".tsv" else "")
    )


def _refuse_whole_number_row(path: Path, columns: Mapping[str, Any]) -> None:
    """Refuse the CSV/TSV ``path`` (its ``columns`` as read) whose first line reads as a data row of whole
    numbers (:func:`_whole_number_row`), for a reader that takes the columns by position.

    There no name is matched to anything, so nothing else would notice a data row read as the header:
    np.savetxt(fmt="%g") writes 6.0 as ``6``, and iris without a header, its first row ``6,3,5,2``, lost
    that row under ``predict --by-position`` with a model that records no names (149 rows for 150, exit
    0; audit BQ). Where names are matched (fit, evaluate, predict by name), such names are left alone:
    class numbers over their scores (``1,3``) and features named by numbers (``1,2,4``) are headers
    (review R16), and a data row read as one fails the match.
    """
    if path.suffix.lower() not in (".csv", ".tsv"):
        return
    names = _whole_number_row(columns)
    if not names:
        return
    many = len(names) > 1
    raise DataFileError(
        f"{path}: line 1 looks like data (column name{'s' * many} {shown_names(names, 4)} "
        f"{'are whole numbers, each' if many else 'is a whole number'} inside the range of its column's values, "
        f"as a data row's {'cells are' if many else 'cell is'}), and the columns are taken by position, where no "
        "name is checked: add a header line naming the columns in training order, such as "
        f"{_example_header(len(names))}" + (" (tab-separated)" if path.suffix.lower() == ".tsv" else "")
        + "; or, if line 1 is a header, name the columns other than by numbers"
    )


def _whole_number_row(columns: Mapping[str, Any]) -> list[str]:
    """The names of a text table's ``columns`` (name -> values as read) when they read as a data row of
    whole numbers, else none: every name a whole number, each strictly inside the range of its column's
    values (min < v < max).

    np.savetxt(fmt="%g") writes 6.0 as ``6``: iris without a header, its first row ``6,3,5,2``, had that
    row read as the header, and ``predict --by-position`` wrote 149 rows for 150, exit 0 (audit BQ).
    Whole numbers that count the columns are names: pandas' ``0..d-1`` (``pd.DataFrame(X).to_csv(
    index=False)``, in any order: ``DataFrame(X)[[2, 0, 1]]``) and ``1..d``; so are three or more in
    a run, in order (``3,4,5,6``). A name outside its column's values (a wavelength ``400`` over
    intensities, a year) is a name, and a column of text or with no values says nothing.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = list(columns)
    if not names or not all(_INTEGER.match(name) for name in names):
        return []
    values = [int(name) for name in names]
    d = len(values)
    if sorted(values) in (list(range(d)), list(range(1, d + 1))):
        return []
    if d >= 3 and values == list(range(values[0], values[0] + d)):
        return []
    for value, column in zip(values, columns.values()):
        # an empty file's columns are empty ndarrays: no values, nothing to say
        if isinstance(column, np.ndarray) or not (pa.types.is_integer(column.type)
                                                  or pa.types.is_floating(column.type)):
            return []
        low, high = (pc.min_max(column)[key].as_py() for key in ("min", "max"))
        if low is None or not low < value < high:
            return []
    return names


def _example_header(n_columns: int) -> str:
    names = [f"x{j}" for j in range(min(n_columns, 3))]
    return ",".join(names) + (",...," + f"x{n_columns - 1}" if n_columns > 3 else "")


#: How to save a file whose numbers use ',' as the decimal point, for the messages that suspect it.
_DECIMAL_POINT = "with '.' as the decimal point"

#: What to do about a blank line inside a table (:func:`_refuse_blank_lines`).
_BLANK_LINE_FIX = ("delete it, or fill in the row (it is not skipped, as pandas does: a file paired with "
                   "another by position would have every later row shifted)")


def _locate_ragged_row(path: Path, delimiter: str) -> None:
    """Raise the error naming the first line whose field count differs from the header's.

    pyarrow's parse errors quote the offending text but give no line number;
    this second, slow pass runs only on the error path.
    """
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, [])
        comment = bool(header) and header[0].lstrip().startswith("#")
        for row, fields in enumerate(reader):
            if fields and len(fields) != len(header):
                if not "".join(fields).strip():
                    # A line of delimiters only (",", a trailing one after the last label) is no blank line.
                    what = "blank (spaces only)" if len(fields) == 1 else f"empty (only {delimiter!r}, no values)"
                    raise DataFileError(location(path, row) + f"line {reader.line_num} is {what}; "
                                        f"{_BLANK_LINE_FIX}")
                hint = ""
                if len(header) == 1 and ";" in header[0]:
                    hint = f"; the file looks ';'-separated: save it as comma-separated CSV {_DECIMAL_POINT}"
                elif len(fields) == len(header) + 1 and not fields[-1].strip():
                    # Data lines ending in a delimiter under a header that does not: an exporter's habit, not
                    # a decimal comma (audit BB M6). Tested before the title line: a one-column file's "0,"
                    # lines pass that test too, and were called a title to delete (review audit R10).
                    hint = (f"; the line ends in {delimiter!r} but the header does not: remove the trailing "
                            f"{delimiter!r} from the data lines, or end the header with {delimiter!r} too")
                elif row == 0 and (comment or len(header) == 1) and len(next(reader, fields)) == len(fields):
                    # A line above the header ("# exported 2024", a title): lines 2 and 3 agree on a field
                    # count that line 1 does not have. It read as "a decimal comma?" (audit).
                    hint = (f"; line 1 has {'one field' if len(header) == 1 else f'{len(header)} fields'} and "
                            "looks like a comment or title line, not the header: delete it, so that the first "
                            "line names the columns" + ("" if comment or delimiter != "," else
                                                        " (or, if it is the header, a decimal comma?)"))
                elif delimiter == "," and len(fields) > len(header):
                    hint = " (a decimal comma, or an unquoted ',' inside a value?)"
                raise DataFileError(
                    location(path, row)
                    + f"has {len(fields)} fields but the header has {len(header)}{hint}"
                )


def _array_columns(name: str | None, arr: np.ndarray, path: Path) -> dict[str, np.ndarray]:
    """Split one stored array into named 1-D columns."""
    if arr.ndim == 1:
        return {name if name is not None else "0": arr}
    if arr.ndim == 2:
        prefix = "" if name is None else name
        fmt = "{}" if name is None else prefix + "[{}]"
        return {fmt.format(j): arr[:, j] for j in range(arr.shape[1])}
    label = f"array {name!r}" if name else "the array"
    raise DataFileError(f"{path}: {label} has shape {arr.shape}; expected 1 or 2 dimensions")


#: safetensors dtype codes -> the NumPy dtype of their bytes (little-endian, as the format stores them).
#: ``BF16`` has none: its bytes are read as ``<u2`` and widened by :func:`_bfloat16_to_float32`.
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values (their 16 bits as ``uint16``) as float32: a bfloat16 is the high half of a float32,
    so the widening is exact."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.safetensors`` file, in the file's order, parsed here rather than by
    ``safetensors.numpy``, which cannot make bfloat16 arrays: the usual dtype of a language model's
    logits was refused as "not a valid .safetensors file". bfloat16 is widened to float32
    (:func:`stored_float_dtype` tells what a file stores).

    The format is an 8-byte little-endian header length, a JSON header mapping each name to its
    ``dtype``, ``shape`` and ``data_offsets`` (relative to the end of the header), then the bytes.
    """
    def invalid(problem: str) -> DataFileError:
        return DataFileError(f"{path}: not a valid .safetensors file ({problem})")

    size = path.stat().st_size
    with open(path, "rb") as fh:
        header, metadata, start = _safetensors_header(fh, size, invalid)
        names = _stored_column_order(metadata, list(header))
        return {name: _safetensors_array(path, fh, name, header[name], start=start, size=size, invalid=invalid)
                for name in names}


def _safetensors_header(fh: Any, size: int, invalid: Any) -> tuple[dict[str, Any], Any, int]:
    """The tensor entries of an open ``.safetensors`` file's header, its ``__metadata__`` (or None),
    and the offset at which the tensors' bytes begin; ``invalid(problem)`` makes the error raised."""
    import struct

    head = fh.read(8)
    if len(head) < 8:
        raise invalid("shorter than the 8-byte header length")
    (n_header,) = struct.unpack("<Q", head)
    if n_header > size - 8:
        raise invalid(f"header length {n_header} exceeds the file's {size} bytes")
    try:
        header = json.loads(fh.read(n_header))
    except (UnicodeDecodeError, ValueError):
        raise invalid("the header is not JSON") from None
    if not isinstance(header, dict):
        raise invalid("the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    return header, metadata, 8 + n_header


#: ``__metadata__`` key under which :func:`write_columns` keeps a ``.safetensors`` file's column order.
_COLUMN_ORDER_KEY = "softmaxkit.columns"


def _stored_column_order(metadata: Any, names: list[str]) -> list[str]:
    """The tensor names of a ``.safetensors`` file in the order :func:`write_columns` was given
    them, when its metadata records one that names exactly these tensors; else the file's order.

    Without it, a file softmaxkit wrote came back in the format's sorted order: positional uses
    (``--by-position``, one-hot labels by position) paired class 10 with class 2's parameters.
    """
    return _recorded_column_order(metadata, names) or names


def _recorded_column_order(metadata: Any, names: list[str]) -> list[str] | None:
    """The column order :func:`write_columns` recorded in a ``.safetensors`` file's ``metadata``, when it
    names exactly ``names``; else None: the file's own order is the format's sorted one, not the writer's."""
    recorded = metadata.get(_COLUMN_ORDER_KEY) if isinstance(metadata, dict) else None
    try:
        order = json.loads(recorded) if isinstance(recorded, str) else None
    except ValueError:
        order = None
    if isinstance(order, list) and sorted(map(str, order)) == sorted(names) and len(order) == len(names):
        return [str(n) for n in order]
    return None


def _order_is_known(path: Path) -> bool:
    """Whether the arrays of an ``.npz``/``.safetensors`` come back in the order they were saved in: an
    ``.npz`` keeps it; a ``.safetensors`` sorts its header, so only one softmaxkit wrote (which records
    the order, :func:`write_columns`) does. Reads the header only."""
    if path.suffix.lower() != ".safetensors":
        return True
    with open(path, "rb") as fh:
        header, metadata, _ = _safetensors_header(fh, path.stat().st_size, DataFileError)
    return _recorded_column_order(metadata, list(header)) is not None


def _safetensors_array(path: Path, fh: Any, name: str, info: Any, *, start: int, size: int, invalid: Any) -> np.ndarray:
    """One tensor of a ``.safetensors`` file from its header entry ``info``, checked against the file's size."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise invalid(f"tensor {name!r} lacks dtype, shape or data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _SAFETENSORS_DTYPES:
        raise DataFileError(
            f"{path}: array {name!r} has dtype {code}, which softmaxkit does not read; save it as float32, "
            "float16 or bfloat16 (or an integer type, for labels)"
        )
    if not (isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in [*shape, *offsets])):
        raise invalid(f"tensor {name!r} has a malformed shape or data_offsets")
    dtype = np.dtype(_SAFETENSORS_DTYPES[code])
    begin, end = offsets
    if end < begin or start + end > size or end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise invalid(f"tensor {name!r}: data_offsets {offsets} do not hold a {code} array of shape {shape}")
    if code != "BF16" and shape and end > begin and (start + begin) % dtype.itemsize == 0:
        # Memory-mapped, as a .npy is (read_scores): no copy of a large logits tensor; the OS pages it in.
        # Copy-on-write, so the array is writable like a read one. bfloat16 is widened (a copy anyway), and an
        # unaligned tensor is read: kernels compiled for aligned arrays would compile again for it.
        return np.memmap(path, dtype=dtype, mode="c", offset=start + begin, shape=tuple(shape))
    buf = bytearray(end - begin)
    fh.seek(start + begin)
    if fh.readinto(buf) != len(buf):
        raise invalid(f"tensor {name!r} is cut short")
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
    return _bfloat16_to_float32(arr) if code == "BF16" else arr


def _load_arrays(path: Path, suffix: str) -> np.ndarray | dict[str, np.ndarray]:
    """The array of a ``.npy``, or the named arrays of an ``.npz`` or ``.safetensors`` in the file's order."""
    try:
        if suffix == ".safetensors":
            return _read_safetensors(path)
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except DataFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataFileError(
                f"{path}: refused: the file holds pickled Python objects, which softmaxkit never loads"
            ) from None
        raise DataFileError(f"{path}: not a valid {suffix} file ({exc})") from None
    except Exception as exc:  # zipfile, EOFError, OSError
        raise DataFileError(f"{path}: not a valid {suffix} file ({type(exc).__name__}: {exc})") from None


def _read_arrays(path: Path, suffix: str, *, choose: Any = None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The columns of a ``.npy``/``.npz``/``.safetensors`` and the names of the arrays left out.

    ``choose(arrays)`` (optional) names the arrays to read of a file holding
    named arrays (it is not called on an empty one); by default all of them.
    """
    loaded = _load_arrays(path, suffix)
    if isinstance(loaded, np.ndarray):  # a .npy (also under another suffix: np.load reads the content)
        return _array_columns(None, loaded, path), ()
    chosen = list(loaded) if choose is None or not loaded else choose(loaded)
    columns: dict[str, np.ndarray] = {}
    for name in chosen:
        columns.update(_array_columns(name, loaded[name], path))
    return columns, tuple(name for name in loaded if name not in chosen)


#: Floating dtypes by name, least precise first (bfloat16 keeps 8 significant bits, float16 11).
_FLOAT_PRECISION = ("bfloat16", "float16", "float32", "float64")


def stored_float_dtype(path: str | os.PathLike, columns: tuple[str, ...] | list[str] = ()) -> str | None:
    """The least precise floating dtype (a name of :data:`_FLOAT_PRECISION`) in which a ``.npy``,
    ``.npz`` or ``.safetensors`` file stores ``columns``, read from its headers only; for a Parquet
    file, the one floating type all of ``columns`` have (:func:`_parquet_float_dtype`).

    The readers widen what they read (bfloat16 to float32, columns to a float64 matrix), so the
    array no longer tells how coarsely its values were rounded; a check that allows for that
    rounding (the CLI's probability rows) asks here. ``columns`` are names as :func:`_array_columns`
    gives them (``probs[3]`` is a column of the array ``probs``); none, or a ``.npy``, means every
    array of the file. None for a text table (CSV), a file without floating arrays, or one whose
    headers cannot be read.
    """
    import zipfile

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return _parquet_float_dtype(path, columns)
    try:
        dtypes = _stored_dtypes(path)
    except (OSError, ValueError, DataFileError, zipfile.BadZipFile):
        return None
    if columns and len(dtypes) > 1:
        arrays = {name if name in dtypes else re.sub(r"\[[0-9]+\]$", "", name) for name in columns}
        dtypes = {name: dtypes[name] for name in arrays if name in dtypes}
    floats = [name for name in dtypes.values() if name in _FLOAT_PRECISION]
    return min(floats, key=_FLOAT_PRECISION.index) if floats else None


def _parquet_float_dtype(path: Path, columns: tuple[str, ...] | list[str]) -> str | None:
    """The floating dtype name (``"float16"``) of the Parquet columns ``columns`` (none: every column),
    from the file's schema, when they all have that one Arrow type; else None.

    Read as a float64 matrix (:func:`_parquet_scores`), halffloat probabilities were scored in float64
    while the same values from a ``.npy`` or ``.npz`` were scored in float16 (review audit R1: ECE
    0.0989437 for 0.0991649).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError):
        return None
    names = list(columns) or list(schema.names)
    if not names or any(name not in schema.names for name in names):
        return None
    types = {schema.field(name).type for name in names}
    if len(types) != 1 or not pa.types.is_floating(next(iter(types))):
        return None
    return np.dtype(next(iter(types)).to_pandas_dtype()).name


def _stored_dtypes(path: Path) -> dict[str, str]:
    """Array name -> stored dtype name (``"bfloat16"`` for safetensors' BF16) of a ``.safetensors``,
    ``.npz`` or ``.npy`` (its one array named ``""``), from the headers; {} for any other file."""
    import zipfile

    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        with open(path, "rb") as fh:
            header, _, _ = _safetensors_header(fh, path.stat().st_size, DataFileError)
        return {name: _safetensors_dtype_name(info.get("dtype")) for name, info in header.items()
                if isinstance(info, dict)}
    if suffix not in (".npy", ".npz"):
        return {}
    # As np.load does (see _load_arrays), the content decides, not the suffix.
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            fh.seek(0)
            return {"": _npy_header_dtype(fh).name}
    with zipfile.ZipFile(path) as archive:
        dtypes = {}
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as fh:
                    dtypes[member[: -len(".npy")]] = _npy_header_dtype(fh).name
        return dtypes


def _safetensors_dtype_name(code: Any) -> str:
    """The dtype name of a safetensors dtype code (``BF16`` -> ``bfloat16``, ``F16`` -> ``float16``)."""
    if code == "BF16":  # read as <u2 bits (see _SAFETENSORS_DTYPES)
        return "bfloat16"
    return np.dtype(_SAFETENSORS_DTYPES[code]).name if code in _SAFETENSORS_DTYPES else str(code)


def _npy_header_dtype(fh: Any) -> np.dtype:
    """The dtype in the header of the ``.npy`` open in ``fh`` (positioned at its start)."""
    from numpy.lib import format as npy_format

    version = npy_format.read_magic(fh)
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    return read_header(fh)[2]


def _check_data_file(path: Path) -> str:
    """``path``'s suffix, once it is known to be a supported, existing, non-empty file."""
    suffix = _suffix(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory, not a data file")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: the file is empty")
    return suffix


def _check_columns(path: Path, columns: Mapping[str, Any]) -> None:
    """Refuse no columns, columns of unequal length, and no rows."""
    if not columns:
        raise DataFileError(f"{path}: the file has no columns")
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        first, *rest = lengths.items()
        other = next(item for item in rest if item[1] != first[1])
        raise DataFileError(
            f"{path}: column {first[0]!r} has {first[1]} rows but column {other[0]!r} has {other[1]}"
        )
    if next(iter(lengths.values())) == 0:
        raise DataFileError(f"{path}: the file has no data rows")


def read_columns(path: str | os.PathLike, *, text_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read any supported file as ordered named 1-D columns (arrow arrays or ndarrays).

    ``text_columns`` of a CSV/TSV file are read as the text written, with no type inference
    (set columns of class names such as "01" or "1.0", which would read back as 1).

    Raises
    ------
    DataFileError
        Missing, empty, unreadable or malformed file; columns of unequal length.
    """
    path = Path(path)
    suffix = _check_data_file(path)
    if suffix in _TABLE_SUFFIXES:
        columns = _read_arrow(path, suffix, text_columns)
    else:
        columns = _read_arrays(path, suffix)[0]
    _check_columns(path, columns)
    return columns


# --------------------------------------------------------------------------- checks


#: Values that may be infinite, by ``what`` a matrix holds: a logit of ``-inf`` is a probability of
#: exactly 0, as ``predict --logits-out`` writes after isotonic calibration; anything else must be finite.
_ALLOWED_INFINITY = {"logit": -np.inf}


def _unusable(values: np.ndarray, what: str) -> np.ndarray:
    """Mask of the entries of ``values`` that a ``what`` matrix may not hold: NaN, and any infinity
    but the one :data:`_ALLOWED_INFINITY` allows."""
    bad = ~np.isfinite(values)
    allowed = _ALLOWED_INFINITY.get(what)
    if allowed is not None:
        bad &= values != allowed
    return bad


def _value_rule(what: str) -> str:
    allowed = _ALLOWED_INFINITY.get(what)
    return "finite numbers" + ("" if allowed is None else f" or {allowed} (probability 0)")


def _fill_float(col: Any, dst: np.ndarray, what: str) -> tuple[int, str] | None:
    """Write column ``col`` into ``dst`` (float64, one column of the matrix); None, or ``(row, problem)``.

    Arrow columns are copied chunk by chunk straight into ``dst`` (a numeric
    chunk without nulls is viewed zero-copy first), so the matrix is the only
    full-size copy: no concatenated column and no stacking pass.
    """
    if not isinstance(col, np.ndarray):  # arrow Array or ChunkedArray
        if col.null_count:
            import pyarrow.compute as pc

            row = int(pc.index(pc.is_null(col), True).as_py())
            return row, "missing value (empty or NaN)"
        offset = 0
        for chunk in getattr(col, "chunks", [col]):
            values = chunk.to_numpy(zero_copy_only=False)
            problem = _fill_values(values, dst[offset : offset + len(values)])
            if problem is not None:
                return offset + problem[0], problem[1]
            offset += len(values)
    else:
        problem = _fill_values(col, dst)
        if problem is not None:
            return problem
    bad = _unusable(dst, what)
    if bad.any():
        row = int(np.argmax(bad))
        return row, f"non-finite value {float(dst[row])}"
    return None


def _fill_values(values: np.ndarray, dst: np.ndarray) -> tuple[int, str] | None:
    if values.dtype.kind in "biuf":
        dst[...] = values
        return None
    # Strings (or arrow's inferred string type): find the first cell that is not a number.
    for row, cell in enumerate(values):
        # Python's float() also reads "1_5" as 15 and full-width or Arabic-Indic digits; pandas keeps
        # those as text, and so do we (the CLI refuses "1_000" in its options for the same reason).
        if isinstance(cell, str) and (not cell.isascii() or "_" in cell):
            return row, f"non-numeric value {cell!r}"
        if isinstance(cell, str) and cell.strip().casefold() in _MISSING_MARKS:
            return row, f"missing value {cell!r}"
        try:
            dst[row] = float(cell)
        except (TypeError, ValueError):
            # "14,23" in a TSV (or quoted in a CSV) got no hint, unlike a ';'-separated CSV (audit).
            hint = (f" (',' in a number: save the file {_DECIMAL_POINT} and no thousands separator)"
                    if isinstance(cell, str) and _COMMA_NUMBER.match(cell) else "")
            return row, f"non-numeric value {str(cell)!r}{hint}"
    return None


#: A number written with ',' (a decimal comma, ``14,23``, or a thousands separator, ``1,234``, ``1,326.0``).
_COMMA_NUMBER = re.compile(r"^\s*[-+]?[0-9][0-9,]*,[0-9]+(\.[0-9]*)?\s*$")

#: Cells that mark a value as missing beyond those Arrow reads as null (``""``, ``NA``, ``NaN``, ...),
#: as the UCI files (``?``) and exports write them; compared case-insensitively, spaces stripped.
_MISSING_MARKS = frozenset({"?", "-", ".", "na", "n/a", "nan", "null", "none", "missing"})


def _bad_cell(path: Path, row: int, name: str, col: Any, problem: str, what: str, *,
              ignorable: bool = True) -> DataFileError:
    """The error for the first bad cell (``problem``, from :func:`_fill_float`) of column ``name`` (values
    ``col``) of ``path``: it says what softmaxkit does not do for the cell's kind, which a user coming from
    pandas or scikit-learn pipelines may expect (audit: "non-numeric value 'F'" for a ``sex`` column, with
    no word on encoding; a timestamp quoted as NumPy writes it, ``2020-08-07T10:30:00``, not as the file).
    ``ignorable``: whether ``--ignore`` may leave the column out; not a model's feature, which ``predict``
    must read (it has no ``--ignore``, and suggested it: audit BB M2)."""
    import pyarrow as pa

    hint = ""
    temporal = not isinstance(col, np.ndarray) and pa.types.is_temporal(col.type)
    leave_out = what == "feature" and ignorable
    if _is_list_column(col) and not problem.startswith("missing value"):
        return DataFileError(location(path, row, name) + _list_cell_problem(name, col, row, what, ignorable))
    if problem.startswith("missing value"):
        hint = ("; softmaxkit does not impute missing values: fill them in (or drop the rows that lack one"
                + (f", or the column with --ignore {name})" if leave_out else ")"))
    elif temporal:
        if path.suffix.lower() in (".csv", ".tsv"):
            written = _read_text_columns(path, path.suffix.lower(), [name])[name][row].as_py()
            problem = f"non-numeric value {written!r}"
        problem += " (a date or time)"
        hint = ("; convert it to a number (such as days since a start date)"
                + (f", or leave the column out with --ignore {name}" if ignorable else ""))
    elif problem.startswith("non-numeric value") and what == "feature" and "',' in a number" not in problem:
        hint = (f"; softmaxkit does not encode categorical columns: one-hot encode {name!r} (one 0/1 column per "
                f"category)" + (f", or leave it out with --ignore {name}" if ignorable else ""))
    return DataFileError(location(path, row, name) + f"{problem}; {what} values must be {_value_rule(what)}{hint}")


def _is_list_column(col: Any) -> bool:
    """Whether ``col`` is an Arrow column of lists (``list<float>``, ``fixed_size_list``): a row's vector
    in one cell."""
    import pyarrow as pa

    return not isinstance(col, np.ndarray) and (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
                                                or pa.types.is_fixed_size_list(col.type))


def _list_cell_problem(name: str, col: Any, row: int, what: str, ignorable: bool) -> str:
    """The error for the list cell ``row`` of column ``name`` (values ``col``: :func:`_is_list_column`),
    read as a ``what`` value: one number per cell is read, and how to spread the list over columns.

    A Parquet column of score vectors (``list<float>``, as ``df["logits"] = list(L)`` writes) was
    "non-numeric value '[-0.81 -2.33 -0.78]'", which did not say what to do (audit CJ F5).
    """
    value = col[row].as_py()
    width = "K" if value is None else str(len(value))
    if what in SCORE_PREFIXES:
        prefix = SCORE_PREFIXES[what]
        columns, names = f"one column per class ({prefix}<class>)", f"[f'{prefix}{{j}}' for j in range({width})]"
    elif what == "feature":
        columns, names = "one column per feature", f"[f'{name}_{{j}}' for j in range({width})]"
    else:
        columns, names = "one number per row", ""
    how = (f"; spread it over columns (pandas: df[{names}] = pd.DataFrame(df.pop({name!r}).tolist(), "
           "index=df.index))" if names else "")
    leave = f", or leave the column out with --ignore {name}" if what == "feature" and ignorable else ""
    size = "" if value is None else f" of {len(value)} values"
    return (f"a list{size} in one cell, not a number; {what} values are read one per cell, {columns}, and must "
            f"be {_value_rule(what)}{how}{leave}")


def numeric_matrix(
    path: str | os.PathLike, columns: Mapping[str, Any], *, what: str = "feature", dtype: Any = np.float64,
    ignorable: bool = True,
) -> np.ndarray:
    """Stack ``columns`` into a finite ``dtype`` (float64 unless told) matrix of shape (n_rows, n_columns).

    Logits (``what="logit"``) may also be ``-inf``; a row of all ``-inf``
    (no class with any probability) is refused.

    The matrix is Fortran-ordered: each column is filled with one contiguous
    copy (filling a C-ordered matrix column by column would touch a new cache
    line per value). ``ignorable``: whether an error may suggest ``--ignore`` (:func:`_bad_cell`).

    Raises
    ------
    DataFileError
        Naming the first offending row and column: a non-numeric, missing or non-finite value.
    """
    path = Path(path)
    n_rows = len(next(iter(columns.values()))) if columns else 0
    out = np.empty((n_rows, len(columns)), dtype=dtype, order="F")
    problems = []
    for index, (name, col) in enumerate(columns.items()):
        problem = _fill_float(col, out[:, index], what)
        if problem is not None:
            problems.append((problem[0], index, name, problem[1]))
    if problems:
        # Report the earliest bad cell in reading order, whichever column it is in.
        row, _, name, message = min(problems)
        raise _bad_cell(path, row, name, columns[name], message, what, ignorable=ignorable)
    _refuse_rows_without_probability(path, out, what)
    return out


#: The stored dtypes a score matrix keeps (:func:`_stored_score_dtype`); bfloat16 has no NumPy dtype.
_KEPT_SCORE_DTYPES = ("float16", "float32")


def _stored_score_dtype(path: str | os.PathLike, columns: Mapping[str, Any]) -> Any:
    """The dtype to read score ``columns`` of an ``.npz``/``.safetensors``/text table in: the one float16
    or float32 dtype that every column is and the file stores them in (:func:`stored_float_dtype`), else
    float64.

    What the metrics and calibrators do depends on it: the top-label ECE compares confidences with the bin
    edges in the scores' precision, and float16 probabilities' rows were divided by their sums only once
    widened. Widened to float64 as every other matrix, the same float16 probabilities read ECE 0.080460
    from an ``.npz`` and 0.079339 from a ``.npy`` (which is memory-mapped in its own dtype; review audit
    M). Reading them in their own dtype also keeps a float16 matrix a quarter of its float64 size. A
    bfloat16 array arrives widened to float32 but is stored coarser: it stays float64, as do columns of
    mixed dtypes and text tables.
    """
    dtypes = {col.dtype for col in columns.values() if isinstance(col, np.ndarray)}
    if len(dtypes) != 1 or len(columns) != sum(isinstance(col, np.ndarray) for col in columns.values()):
        return np.float64
    dtype = dtypes.pop()
    if dtype.name not in _KEPT_SCORE_DTYPES or stored_float_dtype(path, tuple(columns)) != dtype.name:
        return np.float64
    return dtype


def _label_column(path: Path, name: str, col: Any) -> np.ndarray:
    """A target column as a NumPy array of ints (when every value is integral) or strings.

    A CSV/TSV column is the text written unless it is plain decimal numbers (:func:`_written_labels`);
    dates and times of other files, which have no text as written, are refused.
    """
    if not isinstance(col, np.ndarray):
        if col.null_count:
            import pyarrow.compute as pc

            row = int(pc.index(pc.is_null(col), True).as_py())
            raise DataFileError(location(path, row, name) + "missing label")
        written = _written_labels(path, name, col)
        if written is not None:
            col = written
        else:
            _refuse_temporal_labels(path, name, col.type)
            col = col.to_numpy(zero_copy_only=False)
    if col.dtype.kind in "mM":
        _refuse_temporal_labels(path, name, col.dtype)
    if col.dtype.kind == "f":
        bad = ~np.isfinite(col)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFileError(location(path, row, name) + f"non-finite label {col[row]}")
        fractional = col != np.round(col)
        # Beyond exact integers: 1e20 became -9223372036854775808. Compared in float64: 2**53 as a float16
        # is inf, with an "overflow encountered in cast" warning for every float16 label column (audit CJ F4).
        huge = np.abs(col.astype(np.float64, copy=False)) >= 2.0**53
        if huge.any():
            row = int(np.argmax(huge))
            raise DataFileError(location(path, row, name) + f"label {_label_as_written(path, name, row, col[row])} "
                                "is too large to be a class number; labels are class names or integer class numbers")
        if fractional.any():
            # scikit-learn's own words here are "Unknown label type: continuous", naming nothing.
            row = int(np.argmax(fractional))
            raise DataFileError(location(path, row, name) + f"label {float(col[row])!r} is not a whole number; labels "
                                "are class names or integer class numbers (is this column a measurement, not "
                                "the class?)")
        col = col.astype(np.int64)
    elif col.dtype.kind == "O":
        col = col.astype(str)
    if col.dtype.kind == "U":
        _check_text_labels(path, name, col)
    return col


def _target_column(path: Path, name: str, col: Any, *, training: bool) -> np.ndarray:
    """The target column ``name`` (values ``col``) of the features file ``path`` (:func:`_label_column`);
    ``training``: no model's classes will match the labels, whose spellings become the classes, so one
    number written two ways is refused (:func:`_refuse_number_spellings`)."""
    labels = _label_column(path, name, col)
    if training:
        _refuse_number_spellings(path, name, labels)
    return labels


def _refuse_number_spellings(path: Path, name: str, labels: np.ndarray) -> None:
    """Refuse the training labels ``labels`` of column ``name`` of the CSV/TSV ``path`` when they are
    numbers kept as text for a zero-padded one (:func:`_written_labels`) and two of them write one number:
    ``1`` and ``01``, or ``1`` and ``1.0`` beside a ``03``.

    The wine data labelled ``1, 1.0, 2, 2.0, 3, 3.0`` with a single ``03`` trained 7 classes, accuracy
    0.455 where pandas and scikit-learn read 3 and score 1.000, exit 0 (audit CJ F1); ``1`` beside ``01``
    trained 6. As text they are several classes, as numbers one, and which was meant cannot be told;
    label files are read by the same rule (:func:`_zero_padded_indices`). A Parquet string column, or a
    CSV column holding words too, is text to pandas as well: its labels are the classes as written.
    """
    if labels.dtype.kind != "U" or path.suffix.lower() not in (".csv", ".tsv"):
        return
    unique, first_rows, row_counts = np.unique(labels, return_index=True, return_counts=True)
    spellings, first, counts = unique.tolist(), first_rows.tolist(), row_counts.tolist()
    if not all(_written_as_number(spelling) for spelling in spellings):
        return
    by_value: dict[Decimal, list[int]] = {}
    for j, spelling in enumerate(spellings):
        value = _numeric_value(spelling)
        if value is not None:
            by_value.setdefault(value, []).append(j)
    clashes = sorted((js for js in by_value.values() if len(js) > 1), key=lambda js: min(first[j] for j in js))
    if not clashes:
        return
    same = sorted(clashes[0], key=lambda j: (counts[j], first[j]))  # the rarest spelling, likely the slip, first
    shown = " and ".join(f"{spellings[j]!r} ({counts[j]} row{'s' * (counts[j] > 1)})" for j in same)
    number = _number_text(_numeric_value(spellings[same[0]]))
    others = [_number_text(_numeric_value(spellings[js[0]])) for js in clashes[1:]]
    more = (f" (so are the labels of {len(others)} more number{'s' * (len(others) > 1)}: "
            f"{', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" if others else "")
    raise DataFileError(
        location(path, first[same[0]], name) + f"labels {shown} are {'all ' * (len(same) > 2)}the number "
        f"{number} written {len(same)} ways{more}; the column is kept as the text written"
        f"{_zero_padded_reason(spellings, first)}, so they would be {len(same)} classes, where pandas reads one "
        "number, and which is meant cannot be told: write each class one way, or rename the labels if they "
        "are different classes"
    )


def _zero_padded_reason(spellings: list[str], first: list[int]) -> str:
    """``" because of the zero-padded label '03' on row 131"``: why a CSV column of the numbers ``spellings``
    (first on the rows ``first``, 0-based) is text (:func:`_written_labels`); empty when none is padded."""
    padded = [j for j, spelling in enumerate(spellings) if _ZERO_PADDED.match(spelling)]
    if not padded:
        return ""
    j = min(padded, key=lambda k: first[k])
    if len(padded) == 1:
        return f" because of the zero-padded label {spellings[j]!r} on row {first[j] + 1}"
    return f" because of its {len(padded)} zero-padded labels, {spellings[j]!r} first, on row {first[j] + 1}"


def _number_text(value: Decimal) -> str:
    """``3`` for the :class:`~decimal.Decimal` ``3.0``, ``0.5`` for ``5E-1``: a number as messages show it."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _label_as_written(path: Path, name: str, row: int, value: Any) -> str:
    """The number ``value`` read at ``row`` of column ``name``, as a CSV/TSV writes it when the float read
    is another number: 9007199254740993 reads as 9007199254740992.0, which the file does not hold (audit
    BB M5); ``1e20`` stays ``1e+20``."""
    shown = repr(float(value))
    if path.suffix.lower() in (".csv", ".tsv"):
        written = str(_read_text_columns(path, path.suffix.lower(), [name])[name][row].as_py()).strip()
        if _numeric_value(written) is not None and _numeric_value(written) != Decimal(float(value)):
            return written
    return shown


def _refuse_temporal_labels(path: Path, name: str, kind: Any) -> None:
    """Refuse a label column of dates or times (``kind``: its Arrow type or NumPy dtype) outside a CSV/TSV.

    A Parquet ``date32`` column of classes trained, then failed to save the model: "class labels must be
    str, int, float or bool to be saved, got datetime64[D]", naming no file (audit). Which text names such
    a class (``2020-01-01`` or ``2020-01-01 00:00:00``) the file does not say: the labels must be text.
    """
    import pyarrow as pa

    temporal = (pa.types.is_temporal(kind) if isinstance(kind, pa.DataType)
                else np.dtype(kind).kind in "mM")
    if temporal:
        raise DataFileError(f"{path}: column {name!r} holds dates or times ({kind}), which are no class names; "
                            f"store the labels as text (pandas: df[{name!r}] = df[{name!r}].astype(str))")


#: A number written with a leading zero ("01", "-007", "00"): a code such as a class "01", not the
#: number 1.
_ZERO_PADDED = re.compile(r"^\s*[-+]?0[0-9]")


def _written_as_number(text: str) -> bool:
    """Whether ``text`` is a number as pandas' read_csv reads one, in ASCII digits: ``1``, ``+2``, `` 10``,
    ``1.5e3``, ``.5``, ``inf`` (not ``0x10``, ``00:01``, ``2020-01-01``, which pandas keeps as text)."""
    return bool(_NUMBER.match(text)) or text.strip().lstrip("+-").casefold() in ("inf", "infinity")


def _written_labels(path: Path, name: str, col: Any) -> np.ndarray | None:
    """The label column ``col`` (Arrow, as pyarrow typed it) of a CSV/TSV ``path`` as the text written,
    when that is what the labels are; else None (the values as read).

    pyarrow guesses a CSV column's type where pandas keeps the text: ``0x10`` read as the integer 16,
    ``00:01`` as a time, ``2020-01-01`` as a date. As labels they renamed classes (``p_16``,
    ``p_00:01:00``), crashed saving a model, and were read as column positions: test labels ``0x0`` ..
    ``0x10`` against a model of those classes scored accuracy 0.0735 for 0.4191, exit 0 (audit). So a
    column is numbers only when every distinct value is a plain decimal number (:func:`_written_as_number`),
    and not even then when one is zero-padded: "01" is a code, and "01, 1, 2" were two classes, "01"
    matching a class "1" (audit: accuracy 0.475 for 0.782). true/false stay booleans (:func:`_bool_labels`).
    Only the label column is read again (about an eighth of the time of the whole read).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if path.suffix.lower() not in (".csv", ".tsv") or _is_text(col) or pa.types.is_boolean(col.type):
        return None
    # The first read dropped trailing blank lines; so does this one: the rows are the same.
    text = _read_text_columns(path, path.suffix.lower(), [name])[name]
    spellings = pc.unique(text).to_pylist()
    numbers = all(_written_as_number(value) for value in spellings)
    if numbers and not any(_ZERO_PADDED.match(value) for value in spellings):
        return None
    return text.to_numpy(zero_copy_only=False).astype(str)


#: Text that pandas' read_csv reads as a missing value (its default ``na_values``), which CSV readers
#: without that rule (pyarrow's text columns) keep as text: as labels they would become a class.
MISSING_MARKERS = frozenset({
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
})


def _check_text_labels(path: Path, name: str, labels: np.ndarray) -> None:
    """Empty labels, missing-value markers (``NA``, ``null``, ...) and labels that differ only by
    surrounding spaces or invisible characters (:func:`visible_name`) are errors; labels equal up to case,
    those and Unicode normalization (NFC), a warning.

    A marker as a label was a class of its own: ``df.to_csv(na_rep="NA")`` with 3 missing labels trained
    a 4-class model with a ``p_NA`` column, exit 0 (audit), where pandas and scikit-learn see NaN.
    ``' a'`` and ``'a'`` trained as two classes, whose columns ``p_ a`` and ``p_a`` every later command
    refused as one class named twice (score columns name their class as :func:`visible_name` has it);
    so did ``'cat'`` and ``'cat\u200b'``, and evaluate refused predict's own output (review R16).
    """
    stripped = np.char.strip(labels)
    # Empty once invisible characters are stripped too: a label of a zero-width space alone ('\u200b') was a
    # class of its own, its score column p_ named for no visible class (noted in review R16).
    spellings, where = np.unique(labels, return_inverse=True)
    empty = np.array([visible_name(value) == "" for value in spellings.tolist()], dtype=bool)[where.reshape(-1)]
    if empty.any():
        row = int(np.argmax(empty))
        codes = _format_codes(str(labels[row]))
        raise DataFileError(location(path, row, name) + f"empty label {str(labels[row])!r}"
                            f"{f' (invisible characters only: {codes})' if codes else ''}; every row needs a class")
    marked = np.isin(stripped, list(MISSING_MARKERS))
    if marked.any():
        raise DataFileError(_missing_markers_message(path, name, labels, marked))
    spellings = spellings.tolist()
    by_text: dict[str, list[str]] = {}
    for value in spellings:
        by_text.setdefault(visible_name(value), []).append(value)
    # Numbers in a column kept as text (a zero-padded "01" beside " 1" and "1") are one class up to spaces,
    # as pandas reads them: warned below, as before, not refused (review R7).
    spaced = next((values for values in by_text.values()
                   if len(values) > 1 and not all(_written_as_number(v) for v in values)), None)
    if spaced is not None:
        rows = {v: int(np.count_nonzero(labels == v)) for v in spaced}  # counted for the message only
        shown = " and ".join(f"{v!r} ({rows[v]} row{'s' * (rows[v] > 1)})" for v in spaced)
        codes = _format_codes("".join(spaced))  # what repr shows as escapes, named
        raise DataFileError(
            f"{path}: column {name!r}: labels {shown} differ only by surrounding spaces"
            f"{f' or invisible characters ({codes})' if codes else ''}; they cannot be two classes (a score column "
            f"p_<class> names its class without them): strip {'them' if codes else 'the spaces'} if they are one "
            "class, else rename one"
        )
    groups: dict[str, list[str]] = {}
    for value in spellings:
        groups.setdefault(unicodedata.normalize("NFC", visible_name(value)).casefold(), []).append(value)
    # Numbers written two ways ("1", " 1", "01") are matched as numbers later (one class, or refused as one
    # class written two ways; as training labels, refused: _refuse_number_spellings): "treated as different
    # classes" would be false for them (review R9).
    clashes = [values for values in groups.values()
               if len(values) > 1 and not all(_written_as_number(v) for v in values)]
    if clashes:
        import warnings

        first = clashes[0][:3]
        more = f" ({len(clashes)} such groups)" if len(clashes) > 1 else ""
        if len({visible_name(value).casefold() for value in first}) == 1:
            shown, how = " and ".join(repr(v) for v in first), "differ only in case or surrounding spaces"
        else:  # they may print alike: show the code points
            shown = " and ".join(ascii(v) for v in first)
            how = ("differ only in Unicode normalization (NFC/NFD: one accented letter or a letter and a combining "
                   "mark), case or surrounding spaces")
        warnings.warn(
            f"{path}: column {name!r}: labels {shown} {how} and are treated as different classes{more}; fix the "
            "file if they are the same class",
            stacklevel=3,
        )


def _missing_markers_message(path: Path, name: str, labels: np.ndarray, marked: np.ndarray) -> str:
    """The error for labels that are missing-value markers (``marked``): the first one's row, each
    marker's row count, and why it is no class in this kind of file.

    A CSV's marker is a missing value to pandas' read_csv; a Parquet or NumPy file's is text to pandas
    too, but a class so named reads back as missing from any CSV written of it (predict's output, a
    label file): "pandas reads it as a missing value" was false there (audit).
    """
    row = int(np.argmax(marked))
    markers, counts = np.unique(np.char.strip(labels[marked]), return_counts=True)
    first = str(np.char.strip(labels[row]))
    order = sorted(zip(markers.tolist(), counts.tolist()), key=lambda mc: (mc[0] != first, -mc[1], mc[0]))
    several = len(order) > 1
    if several:
        label = "missing labels " + ", ".join(f"{m!r} ({c} row{'s' * (c > 1)})" for m, c in order)
    else:
        label = f"missing label {str(labels[row])!r} ({order[0][1]} row{'s' * (order[0][1] > 1)})"
    it = "them" if several else "it"
    if path.suffix.lower() in (".csv", ".tsv"):
        why = f"pandas reads {it} as {'missing values' if several else 'a missing value'}"
    else:
        why = (f"{'they are' if several else 'it is a'} missing-value marker{'s' * several}: text in this file, but "
               "pandas' read_csv reads a CSV holding such a class (predict's output, a label file) as missing")
    return (location(path, row, name) + f"{label}: {why}; drop those rows, or name the class with a word that is "
            "not a missing-value marker")


def _resolve_column(path: str | os.PathLike, columns: Mapping[str, Any], target: str, *, option: str,
                    empty: Collection[str] = ()) -> str:
    """The column named ``target``; an integer such as ``-1`` also selects by position.

    A value that is the name of one column and the position of another (``0`` in the header
    ``,0,1`` that ``pd.DataFrame(logits).to_csv()`` writes) is refused, naming a spelling of each:
    read as the name, ``--ignore 0`` dropped class 0's column, not the saved index (audit: accuracy
    0.7333 for 0.8333, exit 0); ``--target`` and ``--label-column`` had the same trap.

    ``empty`` names the file's nameless columns that are blank on every row (:func:`_empty_nameless`): a
    position on one (``-1`` with a delimiter ending every line) is refused but for ``--ignore``, as
    it would fail as a missing value on row 1.
    """
    path = Path(path)
    names = list(columns)
    position = _position(names, target)
    if position is not None and names[position] in empty and target not in columns and option != "--ignore":
        raise DataFileError(f"{path}: {option} {target} is column {names[position]!r}, empty on every row (a "
                            "delimiter ending every line writes one), not data; name the column (columns: "
                            f"{shown_names(names)})")
    if position is not None and names[position] in _saved_index_names(names) and option != "--ignore":
        # A saved row index is never the target or the labels: `pd.Series(y).to_csv()` writes ",0", and
        # --label-column 0 means the column named '0'. (--ignore 0 may mean either, and read as the name
        # it drops a class: that stays refused below.)
        if target in columns:
            return target
        raise DataFileError(f"{path}: {option} {target} is column {names[position]!r}, a saved row index, not "
                            f"data; name the column (columns: {shown_names(names)})")
    if target in columns and position is not None and names[position] != target:
        named = names.index(target)
        spell = {j: _unambiguous_spelling(names, j) for j in (named, position)}
        how = (f"pass {option} {spell[named]} for the column named {target!r}, or {option} {spell[position]} "
               f"for position {position} (column {names[position]!r})" if None not in spell.values()
               else "rename the columns")
        raise DataFileError(f"{path}: {option} {target} is ambiguous: it names column {target!r} (position "
                            f"{named}) and is the position of column {names[position]!r}; {how}")
    if target in columns:
        return target
    if position is not None:
        return names[position]
    raise DataFileError(f"{path}: no column {target!r} for {option} (columns: {shown_names(names)})"
                        + _did_you_mean(target, names))


def _did_you_mean(value: Any, names: Collection[str]) -> str:
    """``"; did you mean 'target '?"``: the first of ``names`` that ``value`` (a label or a column name
    not found) matches but for case, what surrounds it (spaces, invisible characters:
    :func:`visible_name`) and Unicode normalization (NFC); empty when none does. A header ``target ``
    under ``--target target`` was listed as 8 of 14 columns without it (audit).

    Two spellings that differ only in normalization print alike: the label ``'café'`` (NFD: ``e`` and
    a combining accent) was "not a class (café, naïve, x)" (audit CJ F2), so both are shown as code
    points, as :func:`_check_text_labels` warns of them.
    """
    near = [n for n in names if _loose_text(str(n)) == _loose_text(str(value))]
    if not near:
        return ""
    name, text = str(near[0]), str(value)
    if visible_name(name).casefold() != visible_name(text).casefold():  # alike but for normalization
        nfc = [unicodedata.normalize("NFC", visible_name(t)) for t in (name, text)]
        case = "" if nfc[0] == nfc[1] else " and case"
        return (f"; did you mean {ascii(name)}? ({ascii(text)} and {ascii(name)} differ only in Unicode "
                f"normalization{case}, NFC/NFD: one accented letter or a letter and a combining mark, which print "
                "alike; write both in one form, such as NFC: unicodedata.normalize('NFC', text))")
    return f"; did you mean {near[0]!r}{_invisible_note(name)}?"


def _loose_text(text: str) -> str:
    """``text`` as :func:`_did_you_mean` compares names: without what surrounds it (:func:`visible_name`),
    in Unicode's composed form (NFC), case-folded."""
    return unicodedata.normalize("NFC", visible_name(text)).casefold()


def _position(names: list[str], target: str) -> int | None:
    """The position (0-based) that ``target`` spells as an integer (``-1``: the last), or None."""
    try:
        return range(len(names))[int(target)]
    except (ValueError, IndexError):
        return None


def _unambiguous_spelling(names: list[str], j: int) -> str | None:
    """A column option's value that selects column ``j`` and nothing else (:func:`_resolve_column`):
    its negative position, its position or its name, the first that is no other column's name or
    position; None when all three are."""
    for spelling in (str(j - len(names)), str(j), names[j]):
        named = spelling in names
        position = _position(names, spelling)
        if (named and names.index(spelling) == j and position in (None, j)) or (not named and position == j):
            return spelling
    return None


def _resolve_ignore(path: str | os.PathLike, names: list[str], ignore: tuple[str, ...]) -> set[str]:
    """The columns of ``names`` that ``--ignore`` (``ignore``: names or positions, each must select
    one column, unambiguously: :func:`_resolve_column`) selects."""
    columns = dict.fromkeys(names)
    return {_resolve_column(path, columns, value, option="--ignore") for value in ignore}


# --------------------------------------------------------------------------- public readers

#: Column names that stand for positions, not names: ``"3"`` (a 2-D ``.npy``) or ``"X[3]"`` (a 2-D array
#: in an ``.npz``/``.safetensors``).
_POSITIONAL = re.compile(r"^([0-9]+|.+\[[0-9]+\])$")


def has_column_names(path: str | os.PathLike, columns: Mapping[str, Any]) -> bool:
    """Whether ``columns`` carry real names (a table's header, named 1-D arrays), not positions."""
    if Path(path).suffix.lower() in _TABLE_SUFFIXES:
        return True
    return not any(_POSITIONAL.match(name) for name in columns)


def shown_names(names: list[str], limit: int = 8) -> str:
    """``'a', 'b', ... (12 in all)``: the first ``limit`` names quoted, for one-line messages."""
    return ", ".join(repr(n) for n in names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def read_features(
    path: str | os.PathLike,
    *,
    target: str | None = None,
    require_target: bool = True,
    n_features: int | None = None,
    feature_names: list[str] | None = None,
    ignore: tuple[str, ...] = (),
    ids: bool = False,
    weight: str | None = None,
    positional: bool = False,
) -> Features:
    """Read a feature matrix and (optionally) its target column from ``path``.

    Parameters
    ----------
    path : path-like
        Any supported file (see the module docstring).
    target : str, optional
        The label column: a name, or an integer position such as ``-1``.
    require_target : bool, default True
        If False, a ``target`` column that is absent is not an error (prediction on
        unlabelled data that may or may not carry the label column).
    n_features : int, optional
        The number of feature columns a model expects; checked before any value
        is parsed, so a left-in label column reads as such, not as a bad value.
    feature_names : list of str, optional
        The columns a model was trained on. When the file has column names,
        exactly these are read, in this order, wherever they sit in the file;
        the other columns are left out and listed in :attr:`Features.ignored`.
        A file without names (``.npy``) is read by position.
    ignore : tuple of str, default ()
        Columns (names or positions) that are not features, such as ids; each
        must exist. Without ``feature_names``, a saved row index (an unnamed
        column, ``Unnamed: 0``, ``__index_level_0__``) is left out as well, and
        so is a nameless column blank on every row (a trailing comma on each
        line). All are listed in :attr:`Features.ignored`.
    ids : bool, default False
        Without ``feature_names``, also leave out the row ids (:func:`id_columns`: named like an id,
        holding whole numbers or text), as ``fit`` does, listed in :attr:`Features.ids` too; unless
        every feature is one.
    weight : str, optional
        The column (a name or a position, as ``target``) of row weights, such as the counts of
        aggregated data (``fit --sample-weight``): no feature, listed in :attr:`Features.ignored`, read
        into :attr:`Features.weights` (:func:`_sample_weights`).
    positional : bool, default False
        The features will be taken by position, their names checked against nothing (``predict`` with a
        model that records no feature names): a CSV/TSV whose first line reads as a data row of whole
        numbers is refused (:func:`_refuse_whole_number_row`), as no name check would notice that row lost.

    Returns
    -------
    Features

    Raises
    ------
    DataFileError
        With the file, row, column and problem; a missing feature column by name.
    """
    path = Path(path)
    if not ignore and weight is None:
        mapped = _mapped_features(path, target=target, require_target=require_target, n_features=n_features)
        if mapped is not None:
            return mapped
    plan = dict(target=target, require_target=require_target, feature_names=feature_names, n_features=n_features,
                ignore=tuple(ignore), weight=weight)
    if path.suffix.lower() == ".parquet" and path.is_file() and path.stat().st_size:
        streamed = _parquet_features(path, ids=ids, **plan)
        if streamed is not None:
            return streamed
    columns = read_columns(path)
    if positional:
        _refuse_whole_number_row(path, columns)
    named = has_column_names(path, columns)
    empty = _empty_nameless(columns) if named else []
    target_name, selected, ignored, weight_name = _plan_features(path, list(columns), named, empty=empty, **plan)
    found: list[str] = []
    if ids and named and feature_names is None:
        selected, found = _features_without_ids(selected, columns)
        ignored += tuple(found)
    user_ignored = _resolve_ignore(path, list(columns), tuple(ignore))
    _warn_unlike_index(path, {n: columns[n] for n in ignored
                              if is_saved_index(n) and n not in user_ignored and n not in empty})
    # A model's features (n_features, feature_names: predict's) cannot be left out with --ignore; without
    # them the labels are training labels, whose spellings become the classes.
    ignorable = n_features is None and feature_names is None
    y = None if target_name is None else _target_column(path, target_name, columns[target_name],
                                                        training=ignorable)
    X = numeric_matrix(path, {n: columns[n] for n in selected}, ignorable=ignorable)
    weights = None if weight_name is None else _sample_weights(path, weight_name, columns[weight_name])
    return Features(X=X, y=y, feature_names=selected, target_name=target_name, named=named, ignored=ignored,
                    ids=tuple(found), weights=weights, weight_name=weight_name)


def _sample_weights(path: Path, name: str, col: Any) -> np.ndarray:
    """The values of the weight column ``name`` (values ``col``) of ``path``: finite numbers >= 0, not all 0,
    else an error naming the first bad row."""
    weights = numeric_matrix(path, {name: col}, what="sample weight", ignorable=False)[:, 0]
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        row = int(negative[0])
        raise DataFileError(location(path, row, name) + f"negative value {weights[row]:g}; sample weight values "
                            "must be finite numbers >= 0 (how many observations, or how much, each row counts)")
    if not np.any(weights > 0):
        raise DataFileError(f"{location(path, column=name)}every value is 0; sample weights must give some row a "
                            "weight above 0")
    return np.ascontiguousarray(weights)


def _features_without_ids(selected: list[str], columns: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The feature columns ``selected`` without the row ids among them (:func:`id_columns`; ``columns``:
    name -> values, of those named like an id at least), and those ids; all kept when all are ids."""
    found = id_columns({n: columns[n] for n in selected if is_row_id_name(n)})
    if len(found) == len(selected):
        return selected, []
    return [n for n in selected if n not in found], found


def _warn_unlike_index(path: Path, unnamed: Mapping[str, Any]) -> None:
    """Warn about a column left out as a saved row index (no header) whose values no row index of a
    single frame holds: fractional numbers, or values that repeat (an index numbers each row once,
    whatever the order: a shuffled or filtered frame saves a permutation or a subset of its rows).
    Maybe a real feature whose header cell is empty (wine's ``magnesium`` as the first column, 127,
    100, 101, ...), or an index of a ``pd.concat``, rightly left out. It was left out with only a
    note, which ``-q`` hides (audit).

    One level of a MultiIndex repeats by nature, so only a lone leading column is checked for repeats.
    """
    import warnings

    import pyarrow as pa
    import pyarrow.compute as pc

    for name, col in unnamed.items():
        values = col if isinstance(col, np.ndarray) else col.to_numpy(zero_copy_only=False)
        if _holds_fractions(values):
            why = "it holds fractional numbers"
        elif len(unnamed) == 1 and pc.count_distinct(pa.array(values) if isinstance(col, np.ndarray) else col,
                                                     mode="all").as_py() < len(values):
            why = "its values repeat"
        else:
            continue
        warnings.warn(f"{path}: column {name!r} has no header and was left out as a saved row index, but {why}; "
                      "if it is a feature, give it a header, else pass --ignore with its position to silence this",
                      stacklevel=3)


#: Column names of a saved row index rather than data: pandas' to_csv writes an empty header
#: for it, a second read-and-save names it "Unnamed: 0", and Parquet "__index_level_0__". An empty
#: header cell (or ``Unnamed: N``) is also what a feature gets whose header was left blank: only
#: :func:`_saved_index_names` tells the two apart, by position.
_ROW_INDEX = re.compile(r"^(\s*|Unnamed: [0-9]+|__index_level_[0-9]+__)$")
_PARQUET_INDEX = re.compile(r"^__index_level_[0-9]+__$")


def _saved_index_names(names: list[str]) -> list[str]:
    """The columns of ``names`` (all of a file's columns, in order) that are a row index saved with the
    data: the leading run of nameless columns (:data:`_ROW_INDEX`; pandas writes its index first, one
    column per level of a MultiIndex), and a Parquet ``__index_level_N__`` wherever it is (pandas puts
    it last).

    A nameless column after a named one is a header cell left empty over data, not an index: as one,
    wine's ``proline`` (column 13 of 14) was dropped and the model fitted on 12 features (audit:
    held-out log-loss 0.1021 for 0.0498, exit 0, no warning).
    """
    leading = next((j for j, n in enumerate(names) if not is_saved_index(n)), len(names))
    return names[:leading] + [n for n in names[leading:] if _PARQUET_INDEX.match(n)]


def _empty_nameless(columns: Mapping[str, Any]) -> list[str]:
    """The nameless columns (:data:`_ROW_INDEX`) of ``columns`` (name -> values) that are blank on every
    row, wherever they are: what a delimiter ending every line writes (a header ``a,b,target,`` over rows
    ``1,2,0,``; ``Unnamed: 3`` once pandas has read and saved it). They hold no data, so they are left
    out and listed as ignored (:func:`_plan_features`, :func:`score_columns`, :func:`read_labels`), as
    every nameless column was before one after a named column became a feature
    (:func:`_saved_index_names`): read as a feature or a class, they failed every row as a missing value
    (review audit: wine with a trailing comma, and a scores file headed ``0,1,``).
    """
    def blank(col: Any) -> bool:
        if isinstance(col, np.ndarray):  # an array's missing values: NaN, or text of spaces only
            if col.dtype.kind == "f":
                return bool(np.isnan(col).all())
            # the first value settles it for any real column, before a pass over all of them
            return (col.dtype.kind == "U" and not col[0].strip()
                    and bool((np.char.str_len(np.char.strip(col)) == 0).all()))
        # imported here, not above: a .npy file's arrays never need pyarrow (its import is ~50 MB of
        # resident memory, a third of evaluate's peak past the baseline's on a 125 MB .npy file)
        import pyarrow.compute as pc

        return bool(pc.all(_blank_cells(col)).as_py())

    return [name for name, col in columns.items() if is_saved_index(name) and len(col) and blank(col)]


def _parquet_empty_nameless(pf: Any) -> list[str]:
    """:func:`_empty_nameless` of a Parquet file, reading its nameless columns only (seldom any)."""
    nameless = [name for name in pf.schema_arrow.names if is_saved_index(name)]
    if not nameless:
        return []
    table = pf.read(columns=nameless)
    return _empty_nameless({name: table.column(name) for name in nameless})


def _pandas_index_columns(path: Path) -> set[str]:
    """The columns a Parquet file's pandas metadata names as its index (read by pandas as the index,
    not as data); empty for other files, or without such metadata."""
    if path.suffix.lower() != ".parquet":
        return set()
    import json

    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        index = json.loads(metadata.get(b"pandas", b"{}")).get("index_columns", [])
    except (OSError, ValueError, AttributeError):  # unreadable metadata: no index known, nothing left out
        return set()
    return {name for name in index if isinstance(name, str)}  # a RangeIndex is a record, not a column


def _plan_features(
    path: Path,
    names: list[str],
    named: bool,
    *,
    target: str | None,
    require_target: bool,
    feature_names: list[str] | None,
    n_features: int | None,
    ignore: tuple[str, ...] = (),
    empty: Collection[str] = (),
    weight: str | None = None,
) -> tuple[str | None, list[str], tuple[str, ...], str | None]:
    """Which columns are the target, the features and the row weights (``weight``: ``--sample-weight``),
    from the names alone (before any value is read) and ``empty``, the nameless columns blank on every
    row (:func:`_empty_nameless`).

    Returns ``(target name or None, feature columns in order, ignored columns, weight column or None)``;
    the weight column is one of the ignored ones.
    """
    target_name = None
    if target is not None:
        try:
            target_name = _resolve_column(path, dict.fromkeys(names), target, option="--target", empty=empty)
        except DataFileError:
            if require_target:
                raise
        if feature_names is not None and target_name in feature_names:
            # By position (-1): read on, it would be "no column X, which the model was trained on".
            raise DataFileError(f"--target {target} resolves to column {target_name!r} of {path}, a feature of "
                                "the model, not its target")
    rest = [n for n in names if n != target_name]
    left_out = _resolve_ignore(path, names, ignore)
    weight_name = None
    if weight is not None:
        weight_name = _resolve_column(path, dict.fromkeys(names), weight, option="--sample-weight", empty=empty)
        if weight_name == target_name:
            raise DataFileError(f"{path}: --sample-weight {weight} and --target {target} name one column, "
                                f"{weight_name!r}; the weights are a column of their own")
        left_out.add(weight_name)
    if feature_names is None and named:
        # A row index saved with the data (pandas' to_csv without index=False, or a Parquet file whose
        # pandas metadata names index columns: df.set_index("patient_id").to_parquet()) is not a
        # feature: as one, it leaks the row order into the model.
        index = _pandas_index_columns(path) | set(_saved_index_names(names)) | set(empty)
        left_out |= {n for n in rest if n in index}
    ignored = tuple(n for n in rest if n in left_out)
    rest = [n for n in rest if n not in left_out]
    if feature_names is None and named:
        _warn_nameless_features(path, names, rest)
    if feature_names is not None and named:
        missing = [n for n in feature_names if n not in rest]
        if missing:
            raise DataFileError(
                f"{path}: no column {missing[0]!r}, which the model was trained on"
                + (f" (missing {len(missing)} of {len(feature_names)}: {shown_names(missing)})"
                   if len(missing) > 1 else "")
                + f"; the file has {shown_names(rest)}"
                # A header "mean radius " (a trailing space) read as no column, the near match left to the eye.
                + _did_you_mean(missing[0], rest)
            )
        wanted = set(feature_names)
        ignored = tuple(n for n in rest if n not in wanted)
        rest = list(feature_names)
    if not rest:
        raise DataFileError(f"{path}: no feature columns besides the target {target_name!r}")
    if n_features is not None and len(rest) != n_features:
        hint = " (use --target COL to leave out a label column)" if len(rest) > n_features and target_name is None else ""
        raise DataFileError(f"{path}: has {len(rest)} feature columns but the model expects {n_features}{hint}")
    return target_name, rest, ignored, weight_name


def _warn_nameless_features(path: Path, names: list[str], features: list[str]) -> None:
    """Warn about each feature column (of ``features``, among the file's ``names``) without a header:
    read as a feature by its empty name (:func:`_saved_index_names`), which ``predict`` then needs to
    find it by; a column of notes left unnamed would be a feature too."""
    import warnings

    for name in features:
        if is_saved_index(name):
            warnings.warn(f"{path}: column {name!r} (position {names.index(name)}) has no header; read as a "
                          f"feature named {name!r} (only the leading nameless columns are a saved row index); "
                          "give it a header, or pass --ignore with its position if it is not a feature",
                          stacklevel=4)


def _parquet_features(path: Path, *, ids: bool = False, **plan: Any) -> Features | None:
    """Features from a Parquet file without an Arrow copy of the whole table (None: use the general reader).

    Only the selected columns are read, in pieces, straight into the feature
    matrix (:func:`_parquet_matrix`); the target column is read on its own.
    A non-numeric feature column goes to the general reader, whose messages
    name the first bad cell.
    """
    pf = _open_parquet(path)
    schema = pf.schema_arrow
    target_name, selected, ignored, weight_name = _plan_features(path, list(schema.names), True,
                                                                 empty=_parquet_empty_nameless(pf), **plan)
    found: list[str] = []
    maybe_ids = [n for n in selected if is_row_id_name(n)] if ids and plan.get("feature_names") is None else []
    if maybe_ids:  # read alone: the features are read below, in pieces
        table = pf.read(columns=maybe_ids)
        selected, found = _features_without_ids(selected, {n: table.column(n) for n in maybe_ids})
        ignored += tuple(found)
    if not all(_is_number_type(schema.field(n).type) for n in selected):
        return None
    training = plan.get("n_features") is None and plan.get("feature_names") is None  # no model's features
    y = None
    if target_name is not None:
        y = _target_column(path, target_name, pf.read(columns=[target_name]).column(0), training=training)
    X = _parquet_matrix(path, pf, selected, dtype=np.float64, order="F", what="feature", ignorable=training)
    weights = None if weight_name is None else _sample_weights(path, weight_name,
                                                               pf.read(columns=[weight_name]).column(0))
    return Features(X=X, y=y, feature_names=selected, target_name=target_name, named=True, ignored=ignored,
                    ids=tuple(found), weights=weights, weight_name=weight_name)


def _open_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"{path}: cannot be read as parquet: {str(exc).strip().splitlines()[0]}") from None
    _refuse_duplicate_names(path, list(pf.schema_arrow.names))
    return pf


def _is_number_type(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _parquet_matrix(path: Path, pf: Any, names: list[str], *, dtype: Any, order: str, what: str,
                    ignorable: bool = True) -> np.ndarray:
    """The numeric columns ``names`` of Parquet file ``pf`` as one finite (n, len(names)) matrix.

    Read in pieces of (row group) x (a few columns): a row group alone can be
    the whole file, and Parquet decodes a column chunk whole, so a piece is
    bounded by choosing its columns. The peak is the matrix plus one piece.
    """
    n_rows = pf.metadata.num_rows
    if n_rows == 0:
        raise DataFileError(f"{path}: the file has no data rows")
    out = np.empty((n_rows, len(names)), dtype=dtype, order=order)
    offset = 0
    for group in range(pf.metadata.num_row_groups):
        rows = pf.metadata.row_group(group).num_rows
        width = max(1, _BATCH_VALUES // max(rows, 1))
        for first in range(0, len(names), width):
            piece = pf.read_row_group(group, columns=names[first : first + width])
            for j, name in enumerate(piece.column_names):
                problem = _fill_float(piece.column(j), out[offset : offset + rows, first + j], what)
                if problem is not None:
                    raise _bad_cell(path, offset + problem[0], name, piece.column(j), problem[1], what,
                                    ignorable=ignorable)
            del piece
        offset += rows
    _refuse_rows_without_probability(path, out, what)
    return out


def _mapped_features(
    path: Path, *, target: str | None, require_target: bool, n_features: int | None
) -> Features | None:
    """A 2-D float ``.npy`` read by position from a read-only memory map, or None for other files.

    Without a target column the map is the feature matrix itself: no copy,
    and the blocked forward pass streams through it (2M x 50 float64 is 800
    MB that never needs to be resident at once).
    """
    if path.suffix.lower() != ".npy" or not path.is_file() or path.stat().st_size == 0:
        return None
    arr = _mapped_npy(path)
    if arr is None:
        return None
    names = [str(j) for j in range(arr.shape[1])]
    keep = list(range(arr.shape[1]))
    y, target_name = None, None
    if target is not None:
        try:
            target_name = _resolve_column(path, dict.fromkeys(names), target, option="--target")
        except DataFileError:
            if require_target:
                raise
        if target_name is not None:
            y = _label_column(path, target_name, np.asarray(arr[:, int(target_name)]))
            keep.remove(int(target_name))
    if not keep:
        raise DataFileError(f"{path}: no feature columns besides the target {target_name!r}")
    if n_features is not None and len(keep) != n_features:
        hint = " (use --target COL to leave out a label column)" if len(keep) > n_features and y is None else ""
        raise DataFileError(f"{path}: has {len(keep)} feature columns but the model expects {n_features}{hint}")
    X = arr if len(keep) == arr.shape[1] else np.asarray(arr[:, keep], dtype=np.float64)
    _check_finite_matrix(path, X, what="feature")
    return Features(X=X, y=y, feature_names=[names[k] for k in keep], target_name=target_name, named=False)


def read_matrix(path: str | os.PathLike, *, what: str = "logit", binary_column: bool = False) -> np.ndarray:
    """Read a 2-D score matrix (logits or probabilities), one column per class.

    With ``binary_column=True`` a single column is accepted too (a binary
    problem's positive-class score) and returned with shape (n, 1).
    """
    path = Path(path)
    columns = read_columns(path)
    if len(columns) < 2 and not binary_column:
        raise DataFileError(f"{path}: has {len(columns)} column; {what}s need one column per class (at least 2)")
    return numeric_matrix(path, columns, what=what)


#: Column-name prefixes of the score files softmaxkit writes (``predict``, ``apply``):
#: ``p_<class>`` probabilities and ``logit_<class>`` logits.
SCORE_PREFIXES = {"probability": "p_", "logit": "logit_"}


@dataclass(frozen=True)
class Scores:
    """A score matrix read by :func:`read_scores`.

    Attributes
    ----------
    values : ndarray of shape (n, K) (or (n, 1) for one binary column)
        float64, or the float16 or float32 the file stores every score column in
        (:func:`_stored_score_dtype`).
    classes : list of str or None
        Class names from ``p_<class>`` / ``logit_<class>`` column names, in column order.
    ignored : tuple of str
        Other columns of the file (``prediction``, ids) that were left out.
    columns : tuple of str
        The names of the score columns as the file has them (empty for a ``.npy`` matrix).
    ids : tuple of str
        The columns of :attr:`ignored` left out as row ids (:func:`id_columns`), which a class could be
        named like (``ID``): a label beyond the columns left names them (:func:`read_labels`).
    """

    values: np.ndarray
    classes: list[str] | None
    ignored: tuple[str, ...]
    columns: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()


#: ``kind`` of a score file -> its plural in messages.
_PLURAL = {"logit": "logits", "probability": "probabilities"}


#: Names of a column that numbers the rows (matched case-insensitively): an ``id`` saved with a
#: network's logits is not one more class (audit: digits read as 11 classes, accuracy 0.0975 for 0.9575).
_ROW_ID_NAME = re.compile(
    r"^((row|sample|example|image|record|item|obs|observation)[ _-]?(id|idx|index|no|num|number)"
    r"|id|idx|index|row|rowid|uid|uuid)$",
    re.IGNORECASE,
)


#: Names of a column that identifies a row beyond :data:`_ROW_ID_NAME`: ``patient_id``, ``user id``, ``userID``.
_ID_SUFFIX = re.compile(r"(^|[ _.-])[iI][dD]$|[a-z]ID$")


def is_row_id_name(name: str) -> bool:
    """Whether a column is named like a row id: ``id``, ``row_id``, ``index`` (:data:`_ROW_ID_NAME`) or
    ending in ``_id``/``ID`` (``patient_id``, ``sampleID``: :data:`_ID_SUFFIX`).

    The one name rule of row ids: rows are matched on such columns (:func:`row_id_names`), and they
    are neither score columns (:func:`id_columns`) nor features (``fit``). Two rules, one for each,
    read ``patient_id`` beside one column of log-odds as a second logit (audit: accuracy 0.65 and
    log-loss 1786 for 0.975 and 0.175, exit 0) while the same file's id matched the rows elsewhere.
    """
    name = visible_name(name)
    return bool(_ROW_ID_NAME.match(name) or _ID_SUFFIX.search(name))


def _holds_ids(col: Any) -> bool:
    """Whether the values of a column named like a row id are ids: text (``P00017``), or whole numbers,
    none negative, some above 1.

    Whole numbers with a negative one may be rounded logits, and 0/1 alone a class's one-hot
    probabilities (a class may be named ``ID``): those are not called ids. Fractions never are.
    """
    if not isinstance(col, np.ndarray):  # an Arrow column
        if _is_text(col):
            return True
        import pyarrow as pa

        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)) or col.null_count:
            return False
        col = col.to_numpy(zero_copy_only=False)
    if col.dtype.kind in "USO":
        return True
    if col.dtype.kind not in "iuf" or col.ndim != 1 or not len(col):
        return False
    low, high = np.min(col), np.max(col)
    return bool(np.isfinite(low) and np.isfinite(high) and low >= 0 and high > 1 and _whole_numbers(col))


def id_columns(columns: Mapping[str, Any], *, keep: Collection[str] = ()) -> list[str]:
    """The columns of ``columns`` (name -> values) that are row ids: named like one
    (:func:`is_row_id_name`) and holding ids (:func:`_holds_ids`); never those of ``keep`` (named as
    classes by ``--classes``). A column so named that holds fractions is left as it is: it may be a
    class's scores or a real measurement."""
    return [name for name, col in columns.items()
            if not _named_in(name, keep) and is_row_id_name(name) and _holds_ids(col)]


def _counts_rows(values: np.ndarray) -> bool:
    """Whether ``values`` is the run 0..n-1 or 1..n in row order (n >= 3): a row number, not data."""
    n = len(values)
    if n < 3 or values[0] not in (0, 1) or values[1] != values[0] + 1 or values[2] != values[0] + 2:
        return False  # the first three rows decide for almost every column, without reading the rest
    start = int(values[0])
    return all(np.array_equal(block, np.arange(start + first, start + first + len(block)))
               for first, block in iter_row_blocks(values))


def _whole_numbers(values: np.ndarray) -> bool:
    """Whether every value of the column ``values`` is a whole number (as ids are)."""
    return all(np.array_equal(block, np.floor(block)) for _, block in iter_row_blocks(values))


def row_id_columns(names: list[str], matrix: np.ndarray | None = None, *, keep: Collection[str] = ()) -> list[str]:
    """The columns that number the rows: named like a row id (:func:`is_row_id_name`: ``id``,
    ``row_id``, ``patient_id``, ...; any case) and, when ``matrix`` (one column per name) is given,
    holding whole numbers; or holding the whole numbers 0..n-1 or 1..n in row order (n >= 3).

    The values decide with the name because a class may carry such a name (logits of the
    classes ``index``, ``row``, ``uid``). ``keep`` names columns the user named as classes
    (``--classes``), never row ids.
    """
    return [name for j, name in enumerate(names) if not _named_in(name, keep) and (
        (is_row_id_name(name) and (matrix is None or _whole_numbers(matrix[:, j])))
        or (matrix is not None and _counts_rows(matrix[:, j])))]


def _refuse_row_ids(path: str | os.PathLike, names: list[str], matrix: np.ndarray, *, kind: str,
                    keep: Collection[str] = ()) -> None:
    """Refuse unprefixed score columns that number the rows (:func:`row_id_columns`), naming the first.

    Among probabilities only a column that also holds a value above 1 counts, which no probability
    is: a check by name alone refused real classes (country codes ``ID,IN,US``), and without it an
    ``id`` there was reported as "raw scores? pass them with --logits".
    """
    found = row_id_columns(names, matrix, keep=keep)
    if kind != "logit":
        found = [name for name in found if np.nanmax(matrix[:, names.index(name)], initial=0.0) > 1]
    if found:
        name = found[0]
        why = ("named like a row id, holds whole numbers" if is_row_id_name(name)
               else "holds the row numbers in order")
        raise DataFileError(
            f"{location(Path(path), column=name)}{why}, not {_PLURAL[kind]} (read as scores it would be one more "
            f"class); pass --ignore {name}, name the score columns {SCORE_PREFIXES[kind]}<class>, or, if it is a "
            "class, list the classes with --classes"
        )


def _class_numbers(column: np.ndarray, n_columns: int) -> int | None:
    """The largest value of ``column`` when it holds whole numbers 0..``n_columns - 1`` only, at least two
    distinct ones: class indices (labels, predicted classes), as no score column is; else None."""
    head = column[:64]
    if not len(head) or not (np.array_equal(head, np.floor(head)) and head.min() >= 0):
        return None
    low, high = float(np.min(column)), float(np.max(column))
    if low < 0 or high > n_columns - 1 or low == high or not _whole_numbers(column):
        return None
    return int(high)


def _check_class_index_columns(path: str | os.PathLike, names: list[str], values: np.ndarray, *, kind: str,
                            keep: Collection[str] = ()) -> None:
    """Warn when, of several unprefixed score columns, one holds only 0 and 1 while another holds
    fractions, and refuse one that holds only whole numbers 0..K-1 reaching 2 or more (K: the columns;
    ``keep``: classes of ``--classes``, never refused): class indices beside the scores (predicted
    classes ``scores,preds``, labels, a fold), not one more class's scores.

    A CSV or Parquet ``scores,preds`` read as the logits of two classes scored accuracy 0.2425 for 0.78
    (review audit R1, exit 0); wine logits beside their label column, 0.9438 for 0.9551 (audit BB). The
    ``.npz`` form is refused (:func:`_one_d_columns`), but a table's columns may be classes of any name,
    so a column named otherwise is warned of (one named so is refused, :func:`_refuse_non_score_names`).
    A column of zeros alone (a reference class's logit) is no prediction, and probabilities whose rows
    sum to 1 are a model's (a decision tree's 0/1 leaves).
    """
    if len(names) < 2:
        return
    highest = {j: _class_numbers(values[:, j], len(names)) for j in range(len(names))}
    found = [j for j, high in highest.items() if high is not None]
    if not found:  # the usual case, decided on each column's first rows
        return
    others = [names[j] for j in range(len(names)) if not _whole_numbers(values[:, j])]
    if not others:
        return
    if kind == "probability" and bool(np.all(np.abs(values.sum(axis=1) - 1.0) <= 1e-3)):
        return
    name = names[found[0]]
    held = "only 0 and 1" if highest[found[0]] == 1 else f"only whole numbers 0..{highest[found[0]]}"
    text = (f"{location(Path(path), column=name)}holds {held} beside {shown_names(others)}, which "
            f"{'does' if len(others) == 1 else 'do'} not")
    if highest[found[0]] > 1 and not _named_in(name, keep):
        # 0..2 beside fractions is a class index column (labels, predictions), which no model's logits are;
        # 0/1 may be a hard classifier's scores, so that one is warned of only.
        raise DataFileError(f"{text}: it looks like class indices (labels or predicted classes), which read as "
                            f"{_PLURAL[kind]} would be one more class; pass --ignore {name}, or, if it is a class, "
                            "list the classes with --classes")
    import warnings

    warnings.warn(f"{text}: read as the {_PLURAL[kind]} of one more class; if it is predicted classes, pass "
                  f"--ignore {name}", stacklevel=4)


def _score_class(name: str, prefix: str) -> str | None:
    """The class that the score column ``name`` names with ``prefix`` (``p_``, ``logit_``), else None.

    The prefix is matched on the name without surrounding spaces, invisible characters and a leading
    ``#`` (:func:`_bare_name`), in any letter case: a header ``logit_a,logit_b, logit_c`` (a space after
    the comma), ``LOGIT_a,...`` or np.savetxt's ``# logit_a,...`` dropped that column as no score, and a
    3-class file was scored as 2 classes (audit: log-loss 0.0557 for 0.0869, exit 0). Columns that
    spell the prefix in two letter cases are refused (:func:`_refuse_mixed_case_prefixes`). The class
    keeps its letters as written, without surrounding spaces and invisible characters (``logit_c `` gave
    the class ``'c '``, which the label ``c`` did not match).
    """
    bare = _bare_name(name)
    if bare[:len(prefix)].casefold() != prefix:
        return None
    return visible_name(bare[len(prefix):]) or None


def _bare_name(name: str) -> str:
    """``name`` without what surrounds it (:func:`visible_name`) and a leading ``#``: a space after a
    comma in the header, and np.savetxt's ``# `` before the first name, are how a file was written, not
    part of the name."""
    return visible_name(visible_name(name).lstrip("#"))


def visible_name(name: str) -> str:
    """``name`` without the whitespace and the invisible format characters (Unicode category Cf: a
    byte-order mark U+FEFF, a zero-width space U+200B, a direction mark U+200E; not the tag characters
    that end some flags, :func:`_format_char`) around it.

    The one rule by which header names are compared with the names softmaxkit looks for (score
    prefixes, ``--classes``, row ids, labels). A second byte-order mark stays in the first name when a
    file saved as "CSV UTF-8" is read as ``utf-8``, not ``utf-8-sig``, and saved so again: the column
    ``'\\ufefflogit_0'`` was dropped as no score, and the other one of two classes read as the log-odds
    (audit BQ: log-loss 0.5947 for 0.4177, exit 0).
    """
    start, end = 0, len(name)
    while start < end and _invisible(name[start]):
        start += 1
    while end > start and _invisible(name[end - 1]):
        end -= 1
    return name[start:end]


def _invisible(char: str) -> bool:
    """Whether ``char`` shows nothing in a header: whitespace, or a format character (:func:`_format_char`)."""
    return char.isspace() or _format_char(char)


def _format_char(char: str) -> bool:
    """Whether ``char`` is an invisible format character (Unicode Cf) that is no part of a name's text.

    Not the tag characters (U+E0000..U+E007F, Cf too): they end the flags of England, Scotland and
    Wales (U+1F3F4 then tags ``gbeng``, ``gbsct``, ``gbwls``), and stripped, the three read as one black
    flag (review R16). A joiner (U+200D) inside an emoji is kept, as any character inside a name is.
    """
    return unicodedata.category(char) == "Cf" and not 0xE0000 <= ord(char) <= 0xE007F


def _invisible_note(name: str) -> str:
    """``" (its name holds the invisible character U+200B)"`` for a name with format characters (Unicode
    Cf) in it, which its quoted spelling in a message shows as escapes; empty for other names."""
    codes = _format_codes(name)
    return f" (its name holds the invisible character{'s' * (',' in codes)} {codes})" if codes else ""


def _format_codes(text: str) -> str:
    """``"U+200B, U+FEFF"``: the format characters (:func:`_format_char`) in ``text``, each once."""
    return ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(c for c in text if _format_char(c)))


def _named_in(name: str, names: Collection[str]) -> bool:
    """Whether the column ``name`` is one of ``names`` (the classes of ``--classes``), the two compared
    as :func:`visible_name` has them: ``'\\ufeffID'`` is the class ``ID``."""
    return name in names or visible_name(name) in {visible_name(n) for n in names}


def _refuse_mixed_case_prefixes(path: str | os.PathLike, columns: list[str], *, own: str, kind: str) -> None:
    """Refuse score ``columns`` that spell the ``own`` prefix in two letter cases (``Logit_margin`` beside
    ``logit_a,logit_b,logit_c``), naming the columns of the rarer spelling and both ways out.

    Such a column may be a class's scores (``Logit_c``: dropped, 3 classes were scored as 2, exit 0) or
    not (a summary ``Logit_margin``, a ``P_value``: read as a class, accuracy 0.6583 for 0.9167, exit 0,
    or refused for the wrong reason, "sum to 1.316"; review audit R4); which one, only the user knows.
    A file whose prefixed columns share one spelling (``P_a,P_b`` or ``LOGIT_a,...``) passes.
    """
    spelt: dict[str, list[str]] = {}
    for name in columns:
        spelt.setdefault(_bare_name(name)[:len(own)], []).append(name)
    if len(spelt) < 2:
        return
    # The file's spelling is that of most columns; on a tie the one predict writes (lowercase).
    usual = max(spelt, key=lambda spelling: (len(spelt[spelling]), spelling == own))
    odd = [name for spelling, names in spelt.items() if spelling != usual for name in names]
    name, cls = odd[0], _score_class(odd[0], own)
    more = f" (so do {shown_names(odd[1:])}: the same for each)" if len(odd) > 1 else ""
    raise DataFileError(
        f"{path}: column {name!r} spells the score prefix {_bare_name(name)[:len(own)]!r}, where "
        f"{shown_names(spelt[usual])} spell it {usual!r}{more}: if it holds the {_PLURAL[kind]} of class "
        f"{cls!r}, rename it {usual + cls!r}; if it holds no class's {_PLURAL[kind]}, pass --ignore {name!r}"
    )


def _warn_near_prefixes(path: str | os.PathLike, others: list[str], mine: list[str], *, own: str,
                        kind: str) -> None:
    """Warn of the columns of ``others`` named almost like the ``own``-prefixed columns ``mine``, with
    another separator or a plural (``p-value``, ``p.adj``, ``P: adj``, ``ps_score``, ``logits.mean``,
    ``logit-c``): left out as no score, as other columns that are not scores (``prediction``, an id) are.

    They are not refused: a ``p-value`` or ``logits.mean`` column beside the scores is common, and
    refusing it (b23f83b) stopped files that were read right (review audit R4). Left out, a class's
    scores under such a name are lost only for a class absent from the labels, since the labels' check
    refuses a label whose class has no column; the warning names the column for that case.

    So is a column named ``own``<class> but for an invisible character inside the name (``lo\\u200bgit_0``):
    one around it is no part of the name (:func:`visible_name`), one inside it cannot be told from a
    letter, and dropped without a word it made the other of two classes read as the log-odds (audit BQ).
    """
    stem = re.escape(own.rstrip("_"))
    near = re.compile(rf"{stem}s?[\s._:-]+\S", re.IGNORECASE)
    odd = [n for n in others if near.match(_bare_name(n)) or _score_class(_without_format_chars(n), own)]
    if not odd:
        return
    import warnings

    which = f"column {odd[0]!r}" if len(odd) == 1 else f"columns {shown_names(odd)}"
    warnings.warn(f"{path}: {which} left out as no {_PLURAL[kind]}: named almost, but not, {own}<class> "
                  f"(as {shown_names(mine)}){_invisible_note(odd[0])}; a column that holds a class's "
                  f"{_PLURAL[kind]} must be named {own}<class> (--ignore {odd[0]!r} leaves it out without this "
                  "warning)", stacklevel=4)


def _without_format_chars(name: str) -> str:
    """``name`` without any format character (Unicode Cf) in it, wherever it is."""
    return "".join(c for c in name if not _format_char(c))


def _refuse_repeated_classes(path: str | os.PathLike, columns: list[str], classes: list[str]) -> None:
    """Refuse two score ``columns`` that name one class (``logit_a`` and `` logit_a``, once spaces and
    the prefix's letter case are set aside, :func:`_score_class`): which one holds its scores would be a
    guess."""
    first: dict[str, str] = {}
    for name, cls in zip(columns, classes):
        if cls in first:
            raise DataFileError(f"{path}: columns {first[cls]!r} and {name!r} both name class {cls!r}; "
                                "keep one of them (--ignore the other)")
        first[cls] = name


def score_columns(
    path: str | os.PathLike, names: list[str], *, kind: str, exclude: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (), empty: Collection[str] = (), keep: Collection[str] = (),
) -> tuple[list[str], list[str] | None]:
    """Which columns of a score file hold ``kind`` scores, and the class names they carry.

    A file with ``p_<class>`` (probabilities) or ``logit_<class>`` (logits)
    columns, as ``predict`` writes, contributes exactly those columns (the
    prefix in any letter case, up to spaces and a leading ``#``:
    :func:`_score_class`); the rest (``prediction``, an id) is ignored. Two
    columns of one class, and a prefix spelt in two letter cases
    (``Logit_margin`` beside ``logit_a``: :func:`_refuse_mixed_case_prefixes`)
    are refused; a column named almost so (``p-value``, ``logits.mean``,
    ``logit-c``) is ignored with a warning (:func:`_warn_near_prefixes`: a
    class's scores under such a name are lost only for a class that no label
    names, the labels' check refuses the others). Any other file contributes every
    column but a saved row index (``pd.DataFrame(logits).to_csv(path)`` writes
    one, an unnamed first column: read as one more class it gave 4 classes and
    accuracy 0.30 for 0.98), the ``empty`` ones (nameless and blank on every
    row, :func:`_empty_nameless`: a header ``0,1,`` is two classes) and the
    ``exclude``d ones (the label column, when the labels come from the same
    file); ``keep`` (``--classes``) names classes. ``ignore`` (``--ignore``: names or
    positions, each must exist; :func:`_resolve_ignore`) leaves out columns of
    either kind of file. Once the values are known, :func:`read_scores` leaves
    out the row ids among unprefixed columns (:func:`id_columns`), refuses
    one of the columns left named as no scores are (:func:`_refuse_non_score_names`)
    and another column that numbers the rows (:func:`_refuse_row_ids`).
    Probabilities given as logits, or the reverse, are refused.
    """
    left_out = _resolve_ignore(path, names, ignore)
    saved_index = set(_saved_index_names(names)) | set(empty)
    # The labels' column (--label-column, when the labels come from this file) by name or position, as
    # read_labels reads it: "-1" compared as a name kept the labels as one more class (audit, exit 0).
    exclude = tuple(_resolve_column(path, dict.fromkeys(names), name, option="--label-column", empty=empty)
                    for name in exclude)
    names = [n for n in names if n not in left_out]
    _require_a_column_left(path, names, ignore)
    own, other = SCORE_PREFIXES[kind], SCORE_PREFIXES["logit" if kind == "probability" else "probability"]
    # The labels' column is no class's scores even when prefixed (a label column "p_true").
    mine = [n for n in names if n not in exclude and _score_class(n, own) is not None]
    if not mine and any(_score_class(n, other) is not None for n in names if n not in exclude):
        option = "--probs" if kind == "logit" else "--logits"
        raise DataFileError(
            f"{path}: its {other}<class> columns hold {'probabilities' if kind == 'logit' else 'logits'}, "
            f"not {_PLURAL[kind]}; pass the file with {option}"
        )
    if not mine:
        rest = [n for n in names if n not in exclude]
        return [n for n in rest if n not in saved_index] or rest, None
    _refuse_mixed_case_prefixes(path, mine, own=own, kind=kind)
    _warn_near_prefixes(path, [n for n in names if n not in mine and n not in exclude], mine, own=own, kind=kind)
    classes = [_score_class(n, own) for n in mine]
    _refuse_repeated_classes(path, mine, classes)
    return mine, classes


def read_scores(
    path: str | os.PathLike, *, kind: str, binary_column: bool = True, exclude: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (), classes: Collection[str] = (), label_names: Collection[str] = (),
) -> Scores:
    """Read logits (``kind="logit"``) or probabilities (``"probability"``), one column per class.

    See :func:`score_columns` for which columns count (``exclude``: columns
    that are not scores, such as the labels; ``ignore``: the user's
    ``--ignore``, each of which must exist), and :func:`_score_arrays` for
    which arrays of an ``.npz`` or ``.safetensors`` (of several: the one named
    ``logits`` or ``probs``, else the one 2-D array). A ``.npy`` file is
    memory-mapped and used as it is, without a float64 copy, when it already
    holds a 2-D float array (large logit files: the OS pages it in as needed);
    ``--ignore`` keeps its dtype (:func:`_kept_columns`). So is the one 2-D
    float array of an ``.npz`` (loaded once) or ``.safetensors`` (memory-mapped
    when its dtype allows, :func:`_safetensors_array`): :func:`_whole_array`,
    not a second, column-by-column copy. Unprefixed columns
    that are row ids (:func:`id_columns`: ``patient_id`` of whole numbers or
    text) are left out and listed in :attr:`Scores.ignored`, where the commands
    match rows on them; other unprefixed columns that number the rows are
    refused (:func:`_refuse_row_ids`); never those named by ``classes`` (the
    user's ``--classes``). ``label_names``: the labels' column name in a separate labels file
    (:func:`label_column_name`), which is no score column here either.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy" and path.is_file() and path.stat().st_size:
        arr = _mapped_npy(path)
        if arr is not None:
            # Its names are positions, so --classes 0,1,2 names no column here.
            names = [str(j) for j in range(arr.shape[1])]
            left_out = _resolve_ignore(path, names, ignore)
            keep = [j for j, name in enumerate(names) if name not in left_out]
            _require_a_column_left(path, keep, ignore)
            arr = _kept_columns(arr, keep)
            _check_finite_matrix(path, arr, what=kind)
            if arr.shape[1] < 2 and not binary_column:
                raise DataFileError(f"{path}: has {arr.shape[1]} column; {_PLURAL[kind]} need one column per class "
                                    "(at least 2)")
            _refuse_row_ids(path, [names[j] for j in keep], arr, kind=kind)
            _refuse_derived_columns(path, [names[j] for j in keep], arr, kind=kind)
            return Scores(arr, None, tuple(name for name in names if name in left_out))
    if path.suffix.lower() == ".parquet" and path.is_file() and path.stat().st_size:
        return _parquet_scores(path, kind=kind, binary_column=binary_column, exclude=exclude, ignore=ignore,
                               classes=classes, label_names=label_names)
    if path.suffix.lower() in _CONTAINER_SUFFIXES:
        columns, left_out, arrays = _container_score_columns(path, kind=kind, exclude=exclude, ignore=ignore,
                                                             classes=classes)
        # Arrays already left out as no scores (the labels' array among them) need no resolving, and a
        # --label-column position counts over all the arrays (read_labels): resolved among the score
        # columns left, "-1" dropped the last class (review audit 3: accuracy 0.26 for 0.8825, exit 0).
        ignore = tuple(name for name in ignore if name not in left_out)
        if any(name not in columns for name in exclude):
            # A position (or an array's name): resolved over every array's columns, as read_labels
            # counts them (labels stored as the last column of the one 2-D array, or as an array).
            everything = dict.fromkeys(read_columns(path))
            exclude = tuple(_resolve_column(path, everything, name, option="--label-column") for name in exclude)
        exclude = tuple(name for name in exclude if name in columns)
    else:
        columns, left_out, arrays = read_columns(path), (), {}
    named = has_column_names(path, columns)
    use, found = score_columns(path, list(columns), kind=kind, exclude=exclude, ignore=ignore,
                               empty=_empty_nameless(columns) if named else (), keep=classes)
    ids: list[str] = []
    if found is None and named:
        use, ids = _without_ids(path, use, {n: columns[n] for n in use}, keep=classes)
    if found is None:
        _refuse_non_score_names(path, use, kind=kind, keep=classes, label_names=label_names if named else (),
                                values_of=columns.__getitem__)
    if len(use) < 2 and not binary_column:
        raise DataFileError(f"{path}: has {len(use)} column; {_PLURAL[kind]} need one column per class (at least 2)")
    wanted = set(use)
    picked = {n: columns[n] for n in use}
    dtype = _stored_score_dtype(path, picked)
    values = _whole_array(path, arrays, use, dtype)
    if values is None:
        values = numeric_matrix(path, picked, what=kind, dtype=dtype)
    else:
        _check_finite_matrix(path, values, what=kind, names=use)
    if found is None:
        _refuse_row_ids(path, use, values, kind=kind, keep=classes if named else ())
        if named:
            _check_class_index_columns(path, use, values, kind=kind, keep=classes)
        _refuse_derived_columns(path, use, values, kind=kind, keep=classes if named else ())
    return Scores(values, found, left_out + tuple(n for n in columns if n not in wanted), tuple(use), tuple(ids))


def _without_ids(path: str | os.PathLike, use: list[str], columns: Mapping[str, Any], *,
                 keep: Collection[str]) -> tuple[list[str], list[str]]:
    """The unprefixed score columns ``use`` without the row ids among them (:func:`id_columns`; ``keep``:
    the classes of ``--classes``), and those ids, which :class:`Scores` then lists with the columns left
    out, where the commands match rows on them. Refuses a file of ids alone.

    Each one left out is said, with how to keep it, unless the classes are listed (``keep``) without it (audit
    BV: ``apply --classes a,b,c`` warned to list 'id' as a class): a class may be named like an id (``ID``, Idaho) and
    hold whole numbers (vote counts, rounded logits), and left out without a word its file read as the
    other class's one log-odds column (review audit R1: accuracy 0.583 for 0.797 with ``--classes ID,NY``).
    """
    ids = id_columns(columns, keep=keep)
    if ids and len(ids) == len(use):
        raise DataFileError(f"{path}: its columns {shown_names(ids)} are row ids (named like one, holding whole "
                            "numbers or text), and no score column is left; if one holds scores, rename it")
    if ids and not keep:  # where the classes are listed and leave the id out, it is no class: nothing to say
        import warnings

        which = f"column {ids[0]!r}" if len(ids) == 1 else f"columns {shown_names(ids)}"
        warnings.warn(f"{path}: {which} left out of the scores as {'a row id' if len(ids) == 1 else 'row ids'} "
                      "(named like one, holding text or whole numbers >= 0); if it is a class, list every class "
                      "with --classes (naming it) to keep it as scores", stacklevel=4)
    return [n for n in use if n not in ids], ids


#: Names of the array holding the labels in an ``.npz`` or ``.safetensors`` of several arrays, as
#: PyTorch and NumPy users save a validation run: ``np.savez(f, logits=L, labels=y)``.
LABEL_ARRAY_NAMES = ("labels", "label", "y", "y_true", "target", "targets")

#: Names of a column of row weights (scikit-learn's ``sample_weight``), compared as :data:`NON_SCORE_NAMES` are.
WEIGHT_NAMES = ("weight", "weights", "sample_weight", "sample_weights")

#: Names of columns that hold no class's scores beside other columns (labels, predicted classes, a
#: cross-validation fold or split, sample weights), compared without letter case or surrounding spaces:
#: pandas' header ``0,1,2,label`` read ``label`` as a 4th class (audit BB: accuracy 0.9438 for 0.9551;
#: 0.0225 with ``target`` first), and ``0,1,2,sample_weight`` (``DataFrame(z).assign(sample_weight=w)``)
#: ``sample_weight`` (audit BH-F1: accuracy 0.9667 for 0.9833, exit 0). No single letter (``w``): a class
#: may be named so.
NON_SCORE_NAMES = (*LABEL_ARRAY_NAMES, "prediction", "predictions", "predicted", "pred", "preds", "y_pred",
                   "y_hat", "class", "true_class", "true_label", "fold", "folds", "cv_fold", "split", *WEIGHT_NAMES)

#: Names of a column that summarises a row's scores instead of scoring a class (the top probability, an
#: entropy, a margin), compared as :data:`NON_SCORE_NAMES` are but also without separators (``max_prob``,
#: ``max-prob``, ``Max Prob``): pandas' header ``0,1,2,3,confidence`` read ``confidence`` as a 5th class
#: (audit CO: log-loss 1.7284 for 1.1195, and a hint to recalibrate, exit 0).
DERIVED_SCORE_NAMES = ("confidence", "conf", "maxprob", "maxproba", "maxprobability", "probmax", "pmax",
                       "topprob", "top1prob", "top1", "predprob", "predproba", "predconf", "prob", "proba",
                       "probability", "score", "maxscore", "maxlogit", "entropy", "margin", "uncertainty")

#: Names of a column that counts the observations a row of aggregated data stands for (``count``: pandas'
#: ``value_counts().reset_index()``; ``n``, ``freq``: R's ``table``/``count``), compared as above.
COUNT_NAMES = ("count", "counts", "n", "freq", "frequency")


def is_weight_name(name: str) -> bool:
    """Whether the column ``name`` is named as row weights or counts are (:data:`WEIGHT_NAMES`,
    :data:`COUNT_NAMES`), in any letter case, up to what surrounds it (:func:`_bare_name`); but the
    single letter ``n`` only in lower case: ``N`` is a measurement too (nitrogen, in Kaggle's crop data),
    where R's ``count`` and ``table`` write ``n``."""
    bare = _bare_name(name)
    if bare.casefold() == "n":
        return bare == "n"
    return bare.casefold() in (*WEIGHT_NAMES, *COUNT_NAMES)


def is_derived_score_name(name: str) -> bool:
    """Whether the column ``name`` is named as a summary of a row's scores is (:data:`DERIVED_SCORE_NAMES`),
    in any letter case and up to spaces, ``_``, ``-`` and ``.`` (``max_prob``, ``Max Prob``)."""
    return re.sub(r"[\s_.-]+", "", _bare_name(name).casefold()) in DERIVED_SCORE_NAMES


def _refuse_derived_column(path: str | os.PathLike, name: str, others: list[str], *, kind: str,
                           keep: Collection[str], why: str) -> None:
    """Refuse the unprefixed column ``name`` beside the score columns ``others``: ``why`` it is no class's
    scores but a summary of them (by its name, or its values: :func:`_refuse_derived_columns`)."""
    classes_way = (", or add it to --classes if it is a class" if keep else
                   ", or, if it is a class, list the classes with --classes")
    raise DataFileError(
        f"{location(Path(path), column=name)}{why}, not the {_PLURAL[kind]} of a class, beside the score columns "
        f"{shown_names(others)} (read as scores it would be one more class, and every metric would change); "
        f"drop it or pass --ignore {name}{classes_way}"
    )


#: The fewest rows on which a column must equal a summary of the others before
#: :func:`_refuse_derived_columns` calls it one (three rows of real scores never do, ties aside).
_DERIVED_MIN_ROWS = 3


def _column_tolerance(values: np.ndarray) -> float:
    """Half the last printed digit of ``values`` (:func:`softmaxkit._calibration_inputs.printed_decimals`),
    or 0 for values printed in full: how far a value may be from the one it was computed as."""
    from softmaxkit._calibration_inputs import printed_decimals

    decimals = printed_decimals(np.asarray(values, dtype=np.float64))
    return 0.0 if decimals is None else 0.5 * 10.0**-decimals


def _summary_of_others(block: np.ndarray, j: int, *, softmax: bool) -> np.ndarray:
    """Per row of ``block``, the largest of the columns other than ``j``, or the largest of their softmax."""
    others = np.delete(block.astype(np.float64, copy=False), j, axis=1)
    top = others.max(axis=1)
    if not softmax:
        return top
    with np.errstate(invalid="ignore"):  # a row of the others all -inf: NaN, equal to nothing
        return 1.0 / np.exp(others - top[:, None]).sum(axis=1)


def _derived_column(values: np.ndarray, j: int, *, softmax: bool, tolerance: float) -> bool:
    """Whether column ``j`` of ``values`` equals :func:`_summary_of_others` on every row, within
    ``tolerance`` plus a relative 1e-6 (a summary computed in float32); read in row blocks."""
    return all(_close(block[:, j], _summary_of_others(block, j, softmax=softmax), tolerance)
               for _, block in iter_row_blocks(values))


def _close(values: np.ndarray, target: np.ndarray, tolerance: float) -> bool:
    """Whether every value is within ``tolerance`` of ``target`` (finite), plus a relative 1e-6 (float32
    rounding)."""
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(target) & (np.abs(values - target)
                                                  <= tolerance + 1e-6 * np.maximum(1.0, np.abs(target)))))


def _refuse_derived_columns(path: str | os.PathLike, names: list[str], values: np.ndarray, *, kind: str,
                            keep: Collection[str] = ()) -> None:
    """Refuse an unprefixed score column that holds, on every row, the largest of the other columns (a
    model's top score or top probability: ``max_prob`` beside probabilities) or the largest of their
    softmax (a confidence beside logits), whatever its name: read as one more class it changed every
    metric without a word (audit CO: log-loss 1.7284 for 1.1195, exit 0).

    Only with two or more other columns (the softmax of one is 1), at least :data:`_DERIVED_MIN_ROWS`
    rows, a column that is not constant, and rows that are not probabilities as they are (a probability
    file's columns are its classes, ties included); never a class of ``keep`` (``--classes``). "Equal"
    allows for the rounding of the column's printed digits, twice (the others' rounding moves the
    summary by as much when the file was written with one ``float_format``). Decided on the first 64
    rows for every column (the top two of each row give every column's "largest of the others"), the
    softmax form only for a column within [0, 1] beside others that are not (logits); the whole file is
    read only for a column that passes there.
    """
    n, k = values.shape
    if k < 3 or n < _DERIVED_MIN_ROWS:
        return
    head = np.asarray(values[:64], dtype=np.float64)
    top_col = np.argmax(head, axis=1)
    top = head[np.arange(len(head)), top_col]
    second = np.where(np.arange(k)[None, :] == top_col[:, None], -np.inf, head).max(axis=1)
    in_unit = (head >= 0).all(axis=0) & (head <= 1).all(axis=0)
    for j, name in enumerate(names):
        column = head[:, j]
        # a summary is finite and varies (a column of zeros is a reference class's logit)
        if _named_in(name, keep) or not np.isfinite(column).all() or column.min() == column.max():
            continue
        # its own rounding, and as much for the others' (a file written with one float_format)
        tolerance = 2 * _column_tolerance(column)
        largest = np.where(top_col == j, second, top)  # the largest of the other columns, per row
        forms = [False] if _close(column, largest, tolerance) else []
        if in_unit[j] and not np.delete(in_unit, j).all():
            forms.append(True)
        for softmax in forms:
            if _derived_column(head, j, softmax=softmax, tolerance=tolerance) and \
                    _not_by_chance(head, n, softmax=softmax, tolerance=tolerance) and \
                    not _probability_rows(values) and _derived_column(values, j, softmax=softmax, tolerance=tolerance):
                what = ("the largest softmax probability of the other columns" if softmax
                        else "the largest of the other columns")
                _refuse_derived_column(path, name, [m for m in names if m != name], kind=kind, keep=keep,
                                       why=f"holds {what} on every row (a model's confidence or top score)")


#: How unlikely genuine scores must make "this column equals the summary of the others on every row" before
#: :func:`_refuse_derived_columns` calls it one.
_DERIVED_CHANCE = 1e-3


def _not_by_chance(head: np.ndarray, n: int, *, softmax: bool, tolerance: float) -> bool:
    """Whether ``n`` rows of a column matching a summary of the others within ``tolerance`` (twice its
    printed rounding, :func:`_refuse_derived_columns`) is beyond chance: a row of genuine scores spread over
    the values' range (``head``'s; [0, 1] for the softmax form) falls so close with a chance of about
    ``2 * tolerance`` plus one printed step over that range, and every row doing so must be under
    :data:`_DERIVED_CHANCE`, as :func:`softmaxkit._calibration_inputs.score_kind` bounds rows summing to 1.
    Three rows of genuine one-decimal logits matched the softmax of the others by chance (review R26).
    """
    finite = head[np.isfinite(head)]
    spread = 1.0 if softmax else float(finite.max() - finite.min()) if finite.size else 0.0
    if spread <= 0:
        return True
    scale = 1.0 if softmax else max(1.0, float(np.abs(finite).max()))
    close = tolerance + 1e-6 * scale  # as _close allows
    chance = min(1.0, (2 * close + tolerance) / spread)  # tolerance is also one printed step (10**-d)
    return chance**n < _DERIVED_CHANCE


def _probability_rows(values: np.ndarray) -> bool:
    """Whether the rows of ``values`` are probabilities as they are
    (:func:`softmaxkit._calibration_inputs.score_kind`)."""
    from softmaxkit._calibration_inputs import score_kind

    return score_kind(values, row_blocks=iter_row_blocks) == "probabilities"


def _refuse_non_score_names(path: str | os.PathLike, names: list[str], *, kind: str, keep: Collection[str],
                            label_names: Collection[str], values_of: Callable[[str], Any]) -> None:
    """Refuse, of two or more unprefixed score columns ``names``, one named as no scores are
    (:data:`NON_SCORE_NAMES`) or as the labels' column of the labels file (``label_names``), unless
    ``keep`` (``--classes``) names it: read as one more class it shifts every metric without a word.

    ``names`` are the columns left once row ids and a saved index are out: one column alone is a
    binary problem's scores whatever its name (``pred``: P(class 1)), ``id,pred`` included. A labels'
    column named by a number says nothing of the scores: pandas names an unnamed column ``0``
    (``Series(y).to_csv``, beside scores ``0,1,2`` it refused class 0), and a labels file without a
    header has its first label read as the name (:func:`read_labels` says so). ``values_of`` gives a
    column's values (read only for a column named as the labels'): one holding fractions is a class's
    scores, not the labels (:func:`_refuse_class_named_as_labels`).
    """
    if len(names) < 2:
        return
    labels = {_bare_name(n).casefold() for n in label_names if _numeric_value(n) is None}
    for name in names:
        bare = _bare_name(name).casefold()
        # A column that completes rows of probabilities is a class whatever its name (a class "score").
        if (not _named_in(name, keep) and bare not in labels and is_derived_score_name(name)
                and not _rows_sum_to_one(names, values_of)):
            _refuse_derived_column(path, name, [n for n in names if n != name], kind=kind, keep=keep,
                                   why="named as a summary of a row's scores (a confidence, entropy or margin)")
        if _named_in(name, keep) or not (bare in NON_SCORE_NAMES or bare in labels):
            continue
        others = [n for n in names if n != name]
        if bare not in labels:
            # with --classes given (and not naming it), listing the classes is no way out (review R12)
            classes_way = (", or add it to --classes if it is a class" if keep else
                           ", or, if it is a class, list the classes with --classes")
            raise DataFileError(
                f"{location(Path(path), column=name)}named as labels, predicted classes, folds or sample weights "
                f"are, not as {_PLURAL[kind]}, beside the score columns {shown_names(others)} (read as scores it "
                f"would be one more class); pass --ignore {name}, name the score columns "
                f"{SCORE_PREFIXES[kind]}<class>{classes_way}"
            )
        # a labels file without a header has its first label read as its column's name (review R10)
        headerless = f"; if the labels file has no header line (its first label, {name!r}, read as one), add one"
        if _holds_fractions(values_of(name)) or (kind == "probability" and _rows_sum_to_one(names, values_of)):
            _refuse_class_named_as_labels(path, name, others, kind=kind, headerless=headerless)
        raise DataFileError(
            f"{location(Path(path), column=name)}named as the labels' column of the labels file, not as "
            f"{_PLURAL[kind]}, beside the score columns {shown_names(others)} (read as scores it would be one more "
            f"class); if it is a class, list the classes with --classes, else pass --ignore {name} or name the "
            f"score columns {SCORE_PREFIXES[kind]}<class>" + headerless
        )


def _refuse_class_named_as_labels(path: str | os.PathLike, name: str, others: list[str], *, kind: str,
                                  headerless: str) -> None:
    """Refuse the score column ``name``, which holds fractions as a class's scores do, named as the labels'
    column of the labels file: the labels are then of the classes the columns name (a 0/1 column
    ``malignant`` saying whether each row is), but which label is which class is written nowhere.

    scikit-learn's ``DataFrame(predict_proba(X), columns=classes_)`` (``benign,malignant``) beside 0/1
    labels saved as ``y.rename("malignant")`` was refused as holding the labels, with ``--ignore
    malignant`` first: followed, it scored the other class's probabilities (audit BL-F1: accuracy 0.0592
    for 0.9408, exit 0). ``--classes`` (the labels' order) is the one way out that drops nothing.
    """
    example = f" (0/1 labels that say whether a row is {name!r}: --classes {others[0]},{name})" \
        if len(others) == 1 else ""
    raise DataFileError(
        f"{location(Path(path), column=name)}holds {_PLURAL[kind]}, as the score columns {shown_names(others)} "
        f"do, and is named as the labels' column of the labels file: the labels are of the classes the columns "
        f"name, but which label is which class is written nowhere; list the classes in the labels' order with "
        f"--classes{example}" + headerless
    )


def _rows_sum_to_one(names: list[str], values_of: Callable[[str], Any]) -> bool:
    """Whether the columns ``names`` (``values_of`` gives each) hold probability rows, each summing to 1:
    then every one of them is a class's, whole-number 0/1 columns included (a decision tree's or 1-NN's
    ``predict_proba``, whose class column named as the labels' was refused as the labels with ``--ignore``
    advice: followed, accuracy 0.1078 for 0.8922, review R12)."""
    total, slack = None, 0.0
    for name in names:
        col = values_of(name)
        values = col if isinstance(col, np.ndarray) else col.to_numpy(zero_copy_only=False)
        if values.dtype.kind not in "fiub":  # bool: pandas' get_dummies one-hot columns (review R14)
            return False
        total = values.astype(np.float64) if total is None else total + values
        # each column's printed rounding (rounding_slack per column): probabilities written with %.3f
        # sum to 1 only within it, and a class named 'margin' among them was refused as a summary (review R26)
        slack += _column_tolerance(values) if values.dtype.kind == "f" else 0.0
    tolerance = max(1e-6, slack * (1 + 1e-9))  # a little over: the sum computed in binary floating point
    return total is not None and total.size > 0 and bool(np.all(np.abs(total - 1.0) <= tolerance))


def _holds_fractions(col: Any) -> bool:
    """Whether the column ``col`` (an Arrow column or a 1-D array) holds numbers, some of them not whole
    (missing values aside): scores or measurements, never labels, indices or counts."""
    values = col if isinstance(col, np.ndarray) else col.to_numpy(zero_copy_only=False)
    if values.dtype.kind != "f":
        return False
    return bool(np.any(np.isfinite(values) & (values != np.round(values))))


def label_column_name(path: str | os.PathLike, *, column: str | None = None) -> str | None:
    """The name of the labels' column in the table ``path`` (CSV, TSV, Parquet): ``column`` resolved, or
    the one column besides saved row indexes and a Parquet pandas index; None for arrays (whose names are
    positions) or when several columns leave it open. Read from the header or schema alone."""
    path = Path(path)
    if path.suffix.lower() not in _TABLE_SUFFIXES or not path.is_file():
        return None
    names = _column_names(path)
    if column is not None:
        try:
            return _resolve_column(path, dict.fromkeys(names), column, option="--label-column")
        except DataFileError:
            return None  # read_labels says what is wrong
    others = set(label_file_other_columns(path))
    rest = [name for name in names if name not in others]
    return rest[0] if len(rest) == 1 else None


#: Names of the array holding the scores of each ``kind`` in such a file.
SCORE_ARRAY_NAMES = {"logit": ("logits", "logit"), "probability": ("probs", "prob", "probabilities", "proba", "probas")}


def _shown_arrays(arrays: Mapping[str, np.ndarray], limit: int = 8) -> str:
    """``'logits' (450, 10), 'labels' (450,)``: names and shapes, for one-line messages."""
    shown = [f"{name!r} {tuple(arr.shape)}" for name, arr in list(arrays.items())[:limit]]
    return ", ".join(shown) + (f", ... ({len(arrays)} in all)" if len(arrays) > limit else "")


def _is_label_array(name: str, arr: np.ndarray) -> bool:
    """Whether a 1-D array is labels: named so (:data:`LABEL_ARRAY_NAMES`) and holding no fractions."""
    if name.lower() not in LABEL_ARRAY_NAMES or arr.ndim != 1:
        return False
    return arr.dtype.kind != "f" or bool(np.all(arr == np.round(arr)))


def _score_arrays(path: Path, arrays: Mapping[str, np.ndarray], *, kind: str, exclude: tuple[str, ...],
                  ignore: tuple[str, ...] = (), classes: Collection[str] = ()) -> list[str]:
    """Which arrays of an ``.npz`` or ``.safetensors`` hold ``kind`` scores.

    A single array does, whatever its name. Of several, the scores are the
    array named for ``kind`` (``logits``, ``probs``: :data:`SCORE_ARRAY_NAMES`),
    else the only 2-D array; the other arrays (labels, ids, embeddings) are
    not scores. Of a file of 1-D arrays only, every array but the labels
    (:func:`_is_label_array`) is a candidate, and :func:`_one_d_columns` says
    which are columns (``ignore``, ``classes``: the user's ``--ignore`` and
    ``--classes``). Every array used to be read as columns:
    ``np.savez(f, logits=L, labels=y)`` gave the labels as one more class
    (accuracy 0.91 for 0.97, exit 0), and 0.004 from a ``.safetensors``, which
    stores ``labels`` first.
    """
    if len(arrays) == 1:
        return list(arrays)
    other_kind = "logit" if kind == "probability" else "probability"
    candidates = {name: arr for name, arr in arrays.items()
                  if name not in exclude and name.lower() not in LABEL_ARRAY_NAMES}
    own = [name for name in candidates if name.lower() in SCORE_ARRAY_NAMES[kind]]
    if len(own) == 1:
        return own
    other = [name for name in candidates if name.lower() in SCORE_ARRAY_NAMES[other_kind]]
    matrices = [name for name, arr in candidates.items() if arr.ndim == 2]
    if not own and other and all(name in other for name in matrices):
        option = "--probs" if kind == "logit" else "--logits"
        raise DataFileError(f"{path}: its array {other[0]!r} holds {_PLURAL[other_kind]}, not {_PLURAL[kind]}; "
                            f"pass the file with {option}")
    if len(own) > 1 or len(matrices) > 1:
        name = SCORE_ARRAY_NAMES[kind][0]
        raise DataFileError(
            f"{path}: holds several arrays ({_shown_arrays(arrays)}), so which one holds the {_PLURAL[kind]} is "
            f"unclear: save them as the one array named {name!r} (np.savez(path, {name}=..., labels=...)), or "
            "alone in a .npy"
        )
    if matrices:
        return matrices
    chosen = [name for name, arr in arrays.items() if not _is_label_array(name, arr)]
    if not chosen:
        raise DataFileError(f"{path}: holds labels only ({_shown_arrays(arrays)}), no {_PLURAL[kind]}")
    # Row ids are no scores, as in a table (np.savez(f, patient_id=ids, score=s)); left out, and listed so.
    ids = id_columns({name: arrays[name] for name in chosen}, keep=classes)
    chosen = [name for name in chosen if name not in ids] or chosen
    # The label array may be named by position (--label-column -1): over 1-D arrays, a position among
    # the arrays is one among the columns, as read_labels counts them.
    exclude = tuple(name if name in arrays else _at_position(list(arrays), name) for name in exclude)
    ignore = tuple(name if name in chosen else _at_position(chosen, name) for name in ignore)
    return _one_d_columns(path, {name: arrays[name] for name in chosen}, kind=kind,
                          left_out=set(exclude) | set(ignore), ignored=bool(ignore), classes=classes)


def _at_position(names: list[str], target: str) -> str:
    """The name at the position ``target`` spells (:func:`_position`), else ``target`` itself."""
    position = _position(names, target)
    return target if position is None else names[position]


def number_order_key(name: str) -> list[Any]:
    """A sort key that orders names by the numbers in them: ``class2`` before ``class10``, where text
    order has ``class10`` first."""
    return [int(part) if part.isascii() and part.isdigit() else part for part in re.split(r"([0-9]+)", name)]


#: ``<prefix><integer>``: a name that numbers a class (``class3``, ``c3``, ``3``).
_NUMBERED = re.compile(r"^(.*?)([0-9]+)$")


def _numbered_names(names: list[str]) -> list[str] | None:
    """``names`` in number order when every one is the same prefix and a distinct integer (``class0`` ..
    ``class10``, ``c0`` ..); else None. ``arr_0, arr_1`` are NumPy's names for arrays saved without one
    (``np.savez(f, s, y)``), which number the arguments, not classes."""
    parts = [_NUMBERED.match(name) for name in names]
    if not all(parts) or len({m.group(1) for m in parts}) != 1 or parts[0].group(1) == "arr_":
        return None
    if len({int(m.group(2)) for m in parts}) != len(names):
        return None
    return sorted(names, key=number_order_key)


#: Names of a 1-D array that holds a binary problem's one score per row, as people save it.
_BINARY_SCORE_NAMES = ("scores", "score", "y_score", "y_scores", "output", "outputs",
                       *SCORE_ARRAY_NAMES["logit"], *SCORE_ARRAY_NAMES["probability"])


def _one_d_columns(path: Path, arrays: Mapping[str, np.ndarray], *, kind: str, left_out: set[str], ignored: bool,
                   classes: Collection[str]) -> list[str]:
    """Which of the 1-D ``arrays`` of an ``.npz``/``.safetensors`` (labels already left out) are ``kind``
    columns, in class order; ``left_out``: the arrays of ``--ignore`` and ``--label-column``.

    One array left is a binary problem's scores, whatever its name; ``p_<class>``/``logit_<class>``
    arrays name their classes (:func:`score_columns` takes them and leaves the rest). Any other names say
    nothing of classes: a binary model's ``np.savez(f, scores=s, preds=s > 0, labels=y)`` was read as
    2-class logits (accuracy 0.165 for 0.8725, exit 0; calibrate: T = 462.9). Several such arrays are
    columns only when ``classes`` (``--classes``) names them (in its order; the others are left out),
    when they are numbered (``class0`` .. ``class10``: :func:`_numbered_names`; a ``.safetensors``
    sorts its tensors, ``class10`` before ``class2``, so there they go in number order: accuracy 0.164
    for 0.799), or when ``--ignore`` left out the rest of a file whose order is known
    (:func:`_order_is_known`). Else they are refused. Which array is read as which class is said, in a
    warning.
    """
    names = list(arrays)
    left = [name for name in names if name not in left_out]
    if len(left) < 2 or any(name.startswith(prefix) and len(name) > len(prefix)
                            for name in left for prefix in SCORE_PREFIXES.values()):
        return names
    order_known = _order_is_known(path)
    named = [c for c in classes if c in left]
    numbered = _numbered_names(left)
    if classes and len(named) == len(classes):
        order, how = named, "as --classes names them"
    elif numbered is not None:
        order = left if order_known else numbered
        how = ("in the file's order" if order_known else
               "in number order (a .safetensors file keeps no order: its tensors come back sorted by name, "
               f"{', '.join(sorted(left)[:3])}, ...)")
    elif ignored and order_known:
        order, how = left, "in the file's order, those --ignore left"
    else:
        scores = next((name for name in left if name.lower() in _BINARY_SCORE_NAMES), left[0])
        others = ",".join(name for name in left if name != scores)
        unordered = ("" if order_known else "; a .safetensors file keeps no order (its tensors come back sorted "
                     "by name), so only --classes can give it")
        raise DataFileError(
            f"{path}: besides the labels it holds the 1-D arrays {_shown_arrays({n: arrays[n] for n in left})}, "
            f"whose names do not say they are one column of {_PLURAL[kind]} per class (read so, a binary "
            f"model's scores and predictions are 2 classes); for a binary problem's one array of scores, leave "
            f"the others out with --ignore {others}; if the arrays are the classes' columns, list them in class "
            f"order with --classes {','.join(left)}, or name them {SCORE_PREFIXES[kind]}<class>{unordered}"
        )
    given = list(classes) if len(classes) == len(order) else [str(j) for j in range(len(order))]
    shown = ", ".join(f"{name!r} as class {cls}" for name, cls in list(zip(order, given))[:12])
    import warnings

    warnings.warn(f"{path}: its 1-D arrays are read as the {_PLURAL[kind]} of {len(order)} classes, {how}: {shown}"
                  + (", ..." if len(order) > 12 else ""), stacklevel=4)
    return order  # the others are left out, and listed so


def _container_score_columns(
    path: Path, *, kind: str, exclude: tuple[str, ...], ignore: tuple[str, ...] = (), classes: Collection[str] = ()
) -> tuple[dict[str, Any], tuple[str, ...], dict[str, np.ndarray]]:
    """The columns of the score arrays of an ``.npz``/``.safetensors`` (:func:`_score_arrays`), the
    names of the arrays left out, and the file's arrays by name (for :func:`_whole_array`)."""
    arrays: dict[str, np.ndarray] = {}

    def choose(loaded: dict[str, np.ndarray]) -> list[str]:
        arrays.update(loaded)
        return _score_arrays(path, loaded, kind=kind, exclude=exclude, ignore=ignore, classes=classes)

    columns, left_out = _read_arrays(path, _check_data_file(path), choose=choose)
    _check_columns(path, columns)
    return columns, left_out, arrays


def _whole_array(path: Path, arrays: Mapping[str, np.ndarray], use: list[str], dtype: Any) -> np.ndarray | None:
    """The score matrix taken from one of ``arrays`` itself, when the columns ``use`` are columns of one 2-D
    float array in its order: all of them (the usual ``logits`` array) as it is, else as
    :func:`_kept_columns` keeps them; widened only if ``dtype`` differs. None for other columns (1-D
    arrays, several arrays), which :func:`numeric_matrix` stacks.

    :func:`numeric_matrix` copied the one array a second time, column by column into an F-ordered
    matrix: twice its size at the peak, and later row blocks were read with strides (audit AC: a 381 MB
    float32 ``.npz`` read in 3.29 s at +762 MB, the same ``.npy`` in 0.09 s).
    """
    for name, arr in arrays.items():
        if not (isinstance(arr, np.ndarray) and arr.ndim == 2 and arr.dtype.kind == "f"):
            continue
        position = {column: j for j, column in enumerate(_array_columns(name, arr, path))}
        keep = [position.get(column, -1) for column in use]
        if use and min(keep) >= 0 and keep == sorted(keep):
            matrix = _kept_columns(arr, keep)
            return matrix if matrix.dtype == dtype else matrix.astype(dtype)
    return None


#: Values per Parquet batch when streaming scores (a 32 MB float64 batch whatever the width).
_BATCH_VALUES = 1 << 22


def _parquet_scores(path: Path, *, kind: str, binary_column: bool, exclude: tuple[str, ...],
                    ignore: tuple[str, ...] = (), classes: Collection[str] = (),
                    label_names: Collection[str] = ()) -> Scores:
    """Scores from a Parquet file, read in pieces straight into one matrix (:func:`_parquet_matrix`).

    The matrix keeps the file's float32 when every score column is float32:
    the peak is the matrix plus one piece, not an Arrow table plus a float64
    copy of it.
    """
    import pyarrow as pa

    pf = _open_parquet(path)
    schema = pf.schema_arrow
    names = list(schema.names)
    use, found = score_columns(path, names, kind=kind, exclude=exclude, ignore=ignore,
                               empty=_parquet_empty_nameless(pf), keep=classes)
    maybe_ids = [n for n in use if is_row_id_name(n) and not _named_in(n, classes)] if found is None else []
    ids: list[str] = []
    if maybe_ids:  # read alone: a score column's values are read below, in pieces
        table = pf.read(columns=maybe_ids)
        use, ids = _without_ids(path, use, {n: table.column(n) for n in maybe_ids}, keep=classes)
    if found is None:
        _refuse_non_score_names(path, use, kind=kind, keep=classes, label_names=label_names,
                                values_of=lambda name: pf.read(columns=[name]).column(name))
    if len(use) < 2 and not binary_column:
        raise DataFileError(f"{path}: has {len(use)} column; {_PLURAL[kind]} need one column per class (at least 2)")
    ignored = tuple(n for n in names if n not in set(use))
    if not all(_is_number_type(schema.field(n).type) for n in use):
        # Text or other columns: the general reader names the first bad cell.
        columns = read_columns(path)
        values = numeric_matrix(path, {n: columns[n] for n in use}, what=kind)
    else:
        # scores in the one float type the file stores them in (as _stored_score_dtype for arrays)
        types = {schema.field(n).type for n in use}
        dtype = {pa.float32(): np.float32, pa.float16(): np.float16}.get(types.pop(), np.float64) \
            if len(types) == 1 else np.float64
        values = _parquet_matrix(path, pf, use, dtype=dtype, order="C", what=kind)
    if found is None:
        _refuse_row_ids(path, use, values, kind=kind, keep=classes)
        _check_class_index_columns(path, use, values, kind=kind, keep=classes)
        _refuse_derived_columns(path, use, values, kind=kind, keep=classes)
    return Scores(values, found, ignored, tuple(use), tuple(ids))


def _require_a_column_left(path: str | os.PathLike, kept: list[Any], ignore: tuple[str, ...]) -> None:
    """Refuse a ``--ignore`` that leaves out every column of a score file (it read as 0 rows)."""
    if ignore and not kept:
        raise DataFileError(f"{path}: --ignore {','.join(ignore)} leaves no score column")


def _kept_columns(arr: np.ndarray, keep: list[int]) -> np.ndarray:
    """The columns ``keep`` (ascending) of a memory-mapped (or loaded) matrix, in its own dtype: a view that stays
    mapped when they are adjacent (``--ignore 0``: an id in front), else a copy of those columns only.
    A float64 copy of a float16 file changed the metrics binned in its precision (audit: ECE 0.0175
    for 0.0202)."""
    if keep == list(range(arr.shape[1])):
        return arr
    if keep and keep == list(range(keep[0], keep[-1] + 1)):
        return arr[:, keep[0] : keep[-1] + 1]
    return arr[:, keep]


def _mapped_npy(path: Path) -> np.ndarray | None:
    """A 2-D float ``.npy`` memory-mapped read-only, or None for anything else (read normally).

    An ``.npz`` archive under the ``.npy`` name (``np.savez`` into an open ``x.npy``) is refused, and
    closed: it failed as "'NpzFile' object has no attribute 'ndim'". So is a matrix of no columns, whose
    first check failed as "zero-size array to reduction operation maximum", naming no file.
    """
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:  # the normal reader reports the problem with its own message
        return None
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise DataFileError(f"{path} holds an .npz archive; rename it to .npz")
    if arr.ndim != 2 or arr.dtype.kind != "f" or arr.shape[0] == 0:
        return None
    if arr.shape[1] == 0:
        raise DataFileError(f"{path}: has 0 columns (shape {arr.shape}), so it holds no values")
    return arr


#: Rows per block when scanning a memory-mapped matrix, so the check's temporaries stay small.
BLOCK_ROWS = 65536


def iter_row_blocks(arr: Any, rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, arr[start:start + rows])`` over ``arr``'s rows, for streaming large matrices.

    For a memory map, the pages of each block are handed back to the OS
    (``madvise(MADV_DONTNEED)``; they stay in the page cache) once the caller
    is done with it, so a pass over a file larger than memory keeps only a
    block resident, and the process's peak RSS does not grow with the file.
    """
    for start in range(0, len(arr), rows):
        yield start, arr[start : start + rows]
        release_pages(arr)


def release_pages(arr: Any) -> None:
    """Drop a memory-mapped array's resident pages from this process (no-op for other arrays).

    The data stays in the OS page cache, so reading it again is cheap; only
    the process's resident set (and peak RSS) shrinks.
    """
    mapping = getattr(arr, "_mmap", None)
    if getattr(arr, "mode", None) == "c":
        # A copy-on-write map (a .safetensors tensor, _safetensors_array): dropping its pages would drop
        # what was written into them, and the file's values would come back (review R5).
        return
    if mapping is not None and hasattr(mapping, "madvise"):
        import mmap

        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # not supported on this platform: the pages just stay mapped
            pass


def _check_finite_matrix(path: Path, arr: np.ndarray, *, what: str, names: Sequence[str] | None = None) -> None:
    """The first unusable entry of ``arr`` (:func:`_unusable`) as an error naming its row and column (its
    name in ``names``, else its position), block by block; then :func:`_refuse_rows_without_probability`."""
    for start, block in iter_row_blocks(arr):
        if np.isfinite(block.max()) and np.isfinite(block.min()):
            continue
        bad = _unusable(block, what)
        if bad.any():
            i, j = np.unravel_index(int(np.argmax(bad)), block.shape)
            raise DataFileError(
                location(path, start + int(i), str(j) if names is None else names[j])
                + f"non-finite value {float(block[i, j])}; "
                f"{what} values must be {_value_rule(what)}"
            )
        _refuse_rows_without_probability(path, block, what, first_row=start)


def _refuse_rows_without_probability(path: Path, matrix: np.ndarray, what: str, *, first_row: int = 0) -> None:
    """Refuse a row of logits that are all ``-inf``: its softmax is 0/0, no class has any probability.

    One binary column is the log-odds of class 1, where ``-inf`` is just
    ``P(1) = 0``.
    """
    if what not in _ALLOWED_INFINITY or matrix.shape[1] < 2 or len(matrix) == 0:
        return
    # Only rows whose first logit is -inf can be empty: one column is read, not the whole matrix again.
    candidates = np.flatnonzero(matrix[:, 0] == -np.inf)
    empty = candidates[np.max(matrix[candidates], axis=1) == -np.inf] if len(candidates) else candidates
    if len(empty):
        raise DataFileError(location(path, first_row + int(empty[0]))
                            + "every logit is -inf, so no class has any probability; each row needs a finite logit")


def encode_labels(
    labels: np.ndarray,
    classes: Any,
    *,
    path: str | os.PathLike,
    column: str | None = None,
    rows: Any = None,
    problem: str = "is not a class",
) -> np.ndarray:
    """Class indices of ``labels`` given as class names ``classes``.

    Names match on their text form, so a label read as the number ``1``
    matches a class stored as ``"1"`` and the reverse. ``path``, ``column``
    and ``rows`` (original row numbers, when ``labels`` is a subset of the
    file) place a label that is not a class in the message.
    """
    labels = np.asarray(labels)
    classes = np.asarray(classes)
    lookup = {str(c.item() if hasattr(c, "item") else c): i for i, c in enumerate(classes)}
    text = labels.astype(str)
    uniques, inverse = np.unique(text, return_inverse=True)
    index = np.array([lookup.get(u, -1) for u in uniques.tolist()], dtype=np.int64)
    if (index < 0).any():
        index = _as_class_numbers(uniques, lookup, index)
    if (index < 0).any():
        index = _as_class_values(uniques, lookup, index)
    out = index[inverse.reshape(-1)]
    bad = out < 0
    if bad.any():
        row = int(np.argmax(bad))
        file_row = int(rows[row]) if rows is not None else row
        names = [str(c) for c in classes.tolist()]
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        value = labels[row].item() if hasattr(labels[row], "item") else labels[row]
        raise DataFileError(location(Path(path), file_row, column) + f"label {value!r} {problem} ({shown})"
                            + _did_you_mean(value, names))
    return out


def _as_class_numbers(spellings: np.ndarray, lookup: Mapping[str, int], index: np.ndarray) -> np.ndarray:
    """``index`` with the zero-padded integer ``spellings`` (``"02"``, kept as text by
    :func:`_written_labels`) matched by value when every class is an integer written plainly.

    A model fitted on integer labels has classes 0, 1, 2; a label file written 00, 01, 02 means those
    numbers (audit: refused as "label '02' is not a class (0, 1, 2)" once such labels were kept as
    text). Classes with text names (``"01"``, ``"a"``) are matched on the text alone.
    """
    if not all(re.fullmatch(r"-?(0|[1-9][0-9]*)", name) for name in lookup):
        return index
    by_value = {int(name): i for name, i in lookup.items()}
    return np.array([i if i >= 0 or not _INTEGER.match(u) else by_value.get(int(u), -1)
                     for u, i in zip(spellings.tolist(), index.tolist())], dtype=np.int64)


def _numeric_value(text: str) -> Decimal | None:
    """The exact value of ``text`` when it is a finite plain decimal number (``1``, ``1.0``, ``1e1``), else
    None; :class:`decimal.Decimal` keeps integers beyond 2**53 exact, as a float would not."""
    if not _NUMBER.match(text):
        return None
    value = Decimal(text.strip())
    return value if value.is_finite() else None


def _as_class_values(spellings: np.ndarray, lookup: Mapping[str, int], index: np.ndarray) -> np.ndarray:
    """``index`` with the number ``spellings`` matched to the class names that write the same number
    another way (label ``1`` or ``1.0`` to a class ``1.0``), when every class name is a number and no
    two name one value.

    Float labels saved by pandas name their columns ``p_1.0, p_2.0``; the labels ``1, 2, 3`` (or
    ``10.0`` read back as the integer 10) matched none of them by text and were read as column positions,
    refused as "label 3 is not a class of the 3-class scores (0..2)" with advice that was refused in turn
    (audit BB M4).
    """
    values = [_numeric_value(name) for name in lookup]
    if any(v is None for v in values) or len(set(values)) != len(values):
        return index
    by_value = dict(zip(values, lookup.values()))
    out = []
    for spelling, i in zip(spellings.tolist(), index.tolist()):
        value = _numeric_value(spelling) if i < 0 else None
        out.append(by_value.get(value, -1) if value is not None else i)
    return np.array(out, dtype=np.int64)


def class_positions(wanted: Sequence[str], names: Sequence[str]) -> list[int] | None:
    """Where each of ``wanted`` sits among ``names`` (the same classes, in any order), matched by text, else
    as the same number written otherwise (``1`` and ``1.0``, :func:`_as_class_values`); None when they
    are not the same classes."""
    # Compared as header names are (:func:`visible_name`): a column '\ufeffcat' is the class cat.
    lookup = {visible_name(str(name)): j for j, name in enumerate(names)}
    spellings = np.array([visible_name(str(w)) for w in wanted])
    index = np.array([lookup.get(w, -1) for w in spellings.tolist()], dtype=np.int64)
    if (index < 0).any() and len(spellings):
        index = _as_class_values(spellings, lookup, index)
    if len(wanted) != len(names) or sorted(index.tolist()) != list(range(len(names))):
        return None
    return index.tolist()


def _names_a_class(labels: np.ndarray, classes: Any) -> bool:
    """Whether some label of ``labels`` is one of ``classes`` by name, as :func:`encode_labels` matches
    names (the text, a zero-padded integer, or the same number written otherwise)."""
    spellings = np.unique(labels.astype(str))
    lookup = {str(c): i for i, c in enumerate(np.asarray(classes).tolist())}
    index = np.array([lookup.get(u, -1) for u in spellings.tolist()], dtype=np.int64)
    if (index >= 0).any():
        return True
    return bool((_as_class_values(spellings, lookup, _as_class_numbers(spellings, lookup, index)) >= 0).any())


#: Where the ``classes`` of :func:`read_labels` come from: ``"columns"``, the score columns' own names
#: (``p_<class>``, a numbered header); ``"user"``, a list the user gave in the labels' order
#: (``--classes``). None: not said (the library's default).
CLASS_SOURCES = (None, "columns", "user")


def read_labels(
    path: str | os.PathLike,
    *,
    column: str | None = None,
    n_classes: int | None = None,
    classes: Any = None,
    ids_left_out: Collection[str] = (),
    classes_from: str | None = None,
) -> np.ndarray:
    """Read class labels (one per row) from ``path`` as class indices.

    Parameters
    ----------
    path : path-like
        A file with one column, or several with ``column`` naming the labels.
        Without ``column``, several columns that are one-hot labels (numbers 0
        or 1, a single 1 per row) give each row the class of the column
        holding its 1, with a warning; and of an ``.npz`` or ``.safetensors``
        holding several arrays, the labels are the array named
        :data:`LABEL_ARRAY_NAMES` (``labels``, ``y``, ...), so that a file
        saved as ``np.savez(f, logits=L, labels=y)`` gives both.
    column : str, optional
        The label column's name or position. A column of one-hot labels is
        refused: its 0/1 values are not class indices.
    n_classes : int, optional
        When given, every label must lie in ``0 .. n_classes - 1``.
    classes : sequence, optional
        Class names, in the order of the score columns. Labels are then read
        as names (``"setosa"``) and returned as their index. When no label is
        one of the names and every label is an integer index, they are read
        as indices (the usual integer labels of a logits file).
    ids_left_out : collection of str, optional
        The scores' columns left out as row ids (:attr:`Scores.ids`), named
        with ``--classes`` when a label lies beyond ``n_classes``: one of them
        may be a class named like an id.
    classes_from : {None, "columns", "user"}, optional
        Where ``classes`` come from (:data:`CLASS_SOURCES`), which decides
        how integer labels none of which names a class are read. ``"user"``
        (``--classes``, listed in the labels' order): as positions in
        ``classes``. ``"columns"`` (the score columns' names): refused when a
        name is no whole number (``p_bird, p_cat, p_dog`` over labels 0..2:
        which number is which class is written nowhere), and labels that name
        classes draw no warning that they might be indices. None: as
        positions, with a warning giving the mapping.

    Returns
    -------
    ndarray of shape (n_samples,), int64

    Raises
    ------
    DataFileError
        Naming the row of the first label that is missing, empty, not a class
        or out of range.
    """
    path = Path(path)
    if column is None:
        columns = _label_file_columns(path)
        index = _pandas_index_columns(path)
        if index and len(columns) > len(index):
            # A Parquet pandas index (df.set_index("id").to_parquet()) is the rows' ids, not a second
            # label column: refused as "has 2 columns ('animal', 'id')". It may join the labels to the
            # scores (softmaxkit.cli._common.read_predictions).
            columns = {name: col for name, col in columns.items() if name not in index}
        names = list(columns)
        saved = _saved_index_names(names) + _empty_nameless(columns)
        kept = [n for n in names if n not in saved]
        ids = _ids_beside_labels(path, kept)
        if (saved or ids) and len(kept) - len(ids) == 1:
            # Saved row indexes before the labels (`pd.Series(y).to_csv()`: ",0"; saved again: ",Unnamed:
            # 0,0"): the labels are the column after them. Only in front, where pandas writes them: "id,"
            # is ids and labels without a header. A nameless column blank on every row ("y," over "1,")
            # is no column at all, wherever it is. Row ids beside one column (patient_id,diagnosis) leave
            # it as the labels; the rows are matched on them (label_file_other_columns).
            label = next(n for n in kept if n not in ids)
            columns = {label: columns[label]}
        if len(columns) > 1:
            hot = _one_hot_index(columns)
            if hot is None:
                raise DataFileError(
                    f"{path}: has {len(columns)} columns ({shown_names(list(columns))}); labels need exactly one "
                    "(name it with --label-column)"
                )
            return _one_hot_labels(path, list(columns), hot, n_classes=n_classes, classes=classes)
        column = next(iter(columns))
    else:
        columns = read_columns(path)
    name = _resolve_column(path, columns, column, option="--label-column", empty=_empty_nameless(columns))
    if len(columns) > 1 and _one_hot_index(columns) is not None:
        # Its 0/1 values are class indices 0 and 1 to the code below (audit: accuracy 0.0, exit 0).
        raise DataFileError(
            f"{path}: column {name!r} is one of {len(columns)} one-hot label columns (0 or 1, a single 1 "
            "per row), not class indices; give the file without --label-column to read each row's class from "
            "the column holding its 1"
        )
    labels = _label_column(path, name, columns[name])
    if labels.dtype.kind == "b":
        labels = _bool_labels(path, name, labels, classes)
    if classes is not None and classes_from == "columns":
        labels = _integer_labels_as_bools(labels, classes)
    if classes is not None:
        names = {str(c) for c in np.asarray(classes).tolist()}
        if labels.dtype.kind not in "iu" or _names_a_class(labels, classes):
            encoded = encode_labels(labels, classes, path=path, column=name)
            if classes_from != "columns":
                # Columns that name their classes (logit_2, logit_0, logit_1) leave no doubt that the labels
                # are those names (audit BB M7: the warning was noise there).
                _warn_if_also_indices(path, name, labels, encoded, len(names))
            return encoded
        n_classes = len(names) if n_classes is None else n_classes
        _integer_labels_against_names(path, name, labels, classes, classes_from=classes_from)
    if labels.dtype.kind == "U":
        labels = _zero_padded_indices(path, name, labels)
    if labels.dtype.kind not in "iu":
        # The first label that is not a whole number; a bool is none (float(True) == 1.0 passed every
        # row, and the message named the last row, 200, for a first bad label on row 1: audit).
        row = next((row for row, value in enumerate(labels.tolist()) if not _is_whole_number(value)), 0)
        raise DataFileError(
            location(path, row, name) + f"label {labels[row].item()!r} is not an integer class index (0, 1, ...); "
            "give the class names with --classes (or name every score column, p_<class> or logit_<class>)"
        )
    labels = labels.astype(np.int64)
    if n_classes is not None:
        bad = (labels < 0) | (labels >= n_classes)
        if bad.any():
            row = int(np.argmax(bad))
            dropped = ""
            if ids_left_out:
                ids = list(ids_left_out)
                which = (f"column {ids[0]!r} was left out as a row id" if len(ids) == 1
                         else f"columns {shown_names(ids)} were left out as row ids")
                dropped = f"; the scores' {which}: if a class is named so, list every class with --classes to keep it"
            elif classes is not None:
                # Positions in named classes: say which (the classes 1.0, 2.0, 3.0 were shown as "0..2").
                dropped = f" ({_positions_text(classes)})"
            elif labels.min() == 1 and labels.max() == n_classes and n_classes > 1:
                one_to_k = ",".join(str(k) for k in range(1, n_classes + 1))
                dropped = (f"; the labels look 1-based (1..{n_classes}): pass --classes {one_to_k} if the columns are "
                           f"the classes 1..{n_classes}")
            elif n_classes == 2 and set(np.unique(labels).tolist()) <= {-1, 1}:
                # The SVM/libsvm convention: refused as "label -1" with no way out said (audit CN).
                dropped = ("; the labels look like -1/+1: pass --classes -1,1 if the score columns are the classes -1 "
                           "and 1 in that order (one column: the score of 1)")
            what = (f"a class of the {n_classes}-class scores (0..{n_classes - 1})" if classes is None
                    else f"a class name, nor a position 0..{n_classes - 1} in the classes")
            raise DataFileError(location(path, row, name) + f"label {labels[row]} is not {what}{dropped}")
    return labels


def _positions_text(classes: Any, limit: int = 4) -> str:
    """``0 = 'cat', 1 = 'dog', ...``: the class at each position of ``classes``, for messages."""
    names = [str(c) for c in np.asarray(classes).tolist()]
    shown = ", ".join(f"{j} = {c!r}" for j, c in enumerate(names[:limit]))
    return shown + (", ..." if len(names) > limit else "")


def _integer_labels_against_names(path: Path, name: str, labels: np.ndarray, classes: Any, *,
                                  classes_from: str | None) -> None:
    """Warn of, or refuse, integer ``labels`` none of which names a class of ``classes``, about to be read as
    positions in ``classes`` (``classes_from``: :data:`CLASS_SOURCES`; ``"user"`` listed them in the
    labels' order, so nothing is said).

    ``apply --classes cat,dog,bird`` writes ``p_bird, p_cat, p_dog`` (sorted); its integer labels 0..2
    (cat, dog, bird) read as those columns' positions scored accuracy 0.0 and log-loss 10.79 for 1.0 and
    0.035, exit 0, under a warning (audit BA). Nothing in the files says which number is which class, so
    with names that are no whole numbers this is refused; whole-number names (``10, 20, 30``) are refused
    by the CLI with their own message (``_refuse_positional_labels``).
    """
    if classes_from not in CLASS_SOURCES:
        raise ValueError(f"classes_from must be one of {CLASS_SOURCES}, got {classes_from!r}")
    if classes_from == "user":
        return
    names = [str(c) for c in np.asarray(classes).tolist()]
    values = np.unique(labels)
    shown_values = ", ".join(map(str, values[:6].tolist())) + (", ..." if len(values) > 6 else "")
    if classes_from == "columns" and not all(re.fullmatch(r"\s*[-+]?[0-9]+\s*", c) for c in names):
        raise DataFileError(
            f"{path}: column {name!r} holds integer labels ({shown_values}), but the score columns are named for "
            f"the classes {shown_names(names)}: which number is which class is not written anywhere (read as "
            f"the columns' positions, {_positions_text(classes)}); pass --classes with the class names in the "
            "labels' order (label 0's class first), or write the labels as class names"
        )
    import warnings

    # Integer labels against named classes: the mapping is the columns' order, which the file
    # cannot confirm (scikit-learn's breast cancer has 0 = malignant; a p_benign, p_malignant
    # file reads 0 as benign).
    warnings.warn(
        f"{path}: column {name!r} holds integer labels but the scores name their classes: read as column "
        f"positions ({_positions_text(classes)}); if the numbers mean other classes, give the labels as class "
        "names",
        stacklevel=3,
    )


#: The classes of False/True labels, in their order (False is class 0): the names bool labels match
#: (:func:`read_labels`).
BOOL_CLASSES = ("False", "True")


def bool_class_name(name: str) -> str | None:
    """``"False"``/``"True"`` for a column or class name that writes a bool in any letter case (``true``,
    ``FALSE``: the names bool labels match, :data:`BOOL_CLASSES`), else None."""
    return {"false": "False", "true": "True"}.get(name.strip().lower())


def _integer_labels_as_bools(labels: np.ndarray, classes: Any) -> np.ndarray:
    """Integer ``labels`` 0/1 as the names of ``classes`` when those are False and True (in any letter
    case and order: the score columns ``True,False``, ``p_True``), else ``labels`` unchanged.

    0 and 1 are False and True, as bool labels are the classes 0 and 1 (:func:`_bool_labels`) and as
    numpy and scikit-learn read them. Refused as positions in the columns' names, a single ``True`` column
    over 0/1 labels could not be read; read as positions, ``True,False`` over them swapped the classes
    (review R26: accuracy 0.045 for 0.955, exit 0).
    """
    if labels.dtype.kind not in "iu":
        return labels
    names = [str(c) for c in np.asarray(classes).tolist()]
    folded = [bool_class_name(c) for c in names]
    if sorted(folded, key=str) != list(BOOL_CLASSES) or not set(np.unique(labels).tolist()) <= {0, 1}:
        return labels
    by_class = dict(zip(folded, names))  # label 0 is the False class, 1 the True class
    return np.array([by_class[name] for name in BOOL_CLASSES])[labels]


def _bool_labels(path: Path, name: str, labels: np.ndarray, classes: Any) -> np.ndarray:
    """False/True ``labels`` as the classes 0/1 where the classes say which is which, else refused.

    False/True (a bool array, a CSV's true/false) are classes 0 and 1, as softmaxkit's library and
    scikit-learn read them, when the classes are unknown (``classes`` None: unnamed score columns) or are
    0 and 1 (matched by name, in whatever column order); against classes named False and True they stay
    those names. Against other names nothing says which class True is: read as column positions they
    scored ``p_spam,p_ham`` with True = spam as if True were ham (review audit R1: accuracy 0.2250 for
    0.7750, exit 0), and against the classes -1, 1 the message named "label 0", which the file does not
    hold. Refused there, naming the label as written.
    """
    if classes is None:
        return labels.astype(np.int64)
    names = {str(c) for c in np.asarray(classes).tolist()}
    if names & {"False", "True"}:
        return labels
    if names == {"0", "1"}:
        return labels.astype(np.int64)
    try:
        encode_labels(labels, classes, path=path, column=name)
    except DataFileError as error:
        raise DataFileError(
            f"{error}; True/False labels are classes 0/1 only when the classes are 0 and 1 (or False and True): "
            "write the labels as class names, or, if True and False are the classes, say so with --classes "
            "(False,True or True,False, in the score columns' order)"
        ) from None
    return labels  # not reached: no bool matches a class named other than 0, 1, False or True


def _is_whole_number(value: Any) -> bool:
    """Whether ``value`` (a label as read) is a whole number: an int, a float or a text such as ``"2.0"``,
    but no bool, NaN or infinity."""
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(number)) and number == int(number)


def _zero_padded_indices(path: Path, name: str, labels: np.ndarray) -> np.ndarray:
    """Text labels that are all whole numbers (``"00", "01", "02"``, kept as text by
    :func:`_written_labels`) as the class indices they write; other labels unchanged.

    Two spellings of one index (``"01"`` and ``"1"``) are refused: as names they are two classes, as
    indices one, and which was meant cannot be told.
    """
    spellings, inverse = np.unique(labels, return_inverse=True)
    if not all(_INTEGER.match(value) for value in spellings.tolist()):
        return labels
    numbers = np.array([int(value) for value in spellings.tolist()], dtype=np.int64)
    values, counts = np.unique(numbers, return_counts=True)
    if (counts > 1).any():
        number = int(values[np.argmax(counts > 1)])
        same = [repr(s) for s, v in zip(spellings.tolist(), numbers.tolist()) if v == number]
        raise DataFileError(
            f"{path}: column {name!r}: labels {' and '.join(same)} are both class {number}; write each class "
            "one way, or give the class names with --classes if they are different classes"
        )
    return numbers[inverse.reshape(-1)]


def _ids_beside_labels(path: Path, names: list[str]) -> list[str]:
    """Of the columns ``names`` of the labels table ``path`` (without its saved row indexes and Parquet
    pandas index), the row ids (:func:`id_columns`: named like one, holding text or whole numbers) when
    every column but one is one, and that one, the labels, has a name. Else none, and several columns
    need ``--label-column`` (``id,`` over ``2,1``: labels without a header, or a blank header cell).

    ``patient_id,diagnosis`` was refused as "labels need exactly one (name it with --label-column)",
    though the same file with ``--label-column diagnosis`` matched its rows to the scores' on
    ``patient_id`` (audit BL-F3a). Only the id-named columns are read; ``.npz`` labels are arrays
    chosen by name (:func:`_label_file_columns`).
    """
    named = [name for name in names if is_row_id_name(name)]
    if not named or path.suffix.lower() not in _TABLE_SUFFIXES:
        return []
    # A nameless column blank on every row (a delimiter ending each line) is no column, as read_labels has it.
    nameless = [name for name in names if is_saved_index(name)]
    blank = set(_empty_nameless(read_id_columns(path, nameless))) if nameless else set()
    rest = [name for name in names if name not in named and name not in blank]
    if len(rest) != 1 or is_saved_index(rest[0]):
        return []
    # Ids may repeat (several scans of one patient, rows in the scores' order: paired by position with a
    # note, review R14); a repeating class-code column (``cultivar_id``) is taken for ids as well, warned
    # about as unused, its numbers right (review R12), which the rules for ids cannot tell apart.
    ids = id_columns(read_id_columns(path, named))
    return ids if len(ids) == len(named) else []


def _label_file_columns(path: Path) -> dict[str, Any]:
    """The columns of a labels file given without a column: all of them, but of an ``.npz`` or
    ``.safetensors`` holding several arrays only the one named as labels (:data:`LABEL_ARRAY_NAMES`)."""
    if path.suffix.lower() not in _CONTAINER_SUFFIXES:
        return read_columns(path)

    def labels_array(arrays: Mapping[str, np.ndarray]) -> list[str]:
        if len(arrays) == 1:
            return list(arrays)
        chosen = [name for name in arrays if name.lower() in LABEL_ARRAY_NAMES]
        if len(chosen) != 1:
            raise DataFileError(
                f"{path}: holds {len(arrays)} arrays ({_shown_arrays(arrays)}); name the labels' array with "
                "--label-column, or save it as 'labels'"
            )
        return chosen

    columns, _ = _read_arrays(path, _check_data_file(path), choose=labels_array)
    _check_columns(path, columns)
    return columns


def _one_hot_index(columns: Mapping[str, Any]) -> np.ndarray | None:
    """Each row's position of its 1 when ``columns`` are one-hot labels (numbers 0 or 1, a single 1 per
    row); None otherwise. Reads the columns one at a time and stops at the first that is not 0/1."""
    n_rows = len(next(iter(columns.values())))
    index = np.zeros(n_rows, dtype=np.int64)
    ones = np.zeros(n_rows, dtype=np.int64)
    for j, col in enumerate(columns.values()):
        if not isinstance(col, np.ndarray):
            if col.null_count:
                return None
            col = col.to_numpy(zero_copy_only=False)
        if col.dtype.kind not in "biuf":
            return None
        hot = col == 1
        if not (hot | (col == 0)).all():
            return None
        index[hot] = j
        ones += hot
    return index if (ones == 1).all() else None


def _one_hot_labels(path: Path, names: list[str], index: np.ndarray, *, n_classes: int | None,
                    classes: Any) -> np.ndarray:
    """Class indices of one-hot labels whose 1s sit at ``index`` among the columns ``names``.

    Columns named for the scores' classes map by name, in any order; others
    (positions, ``0, 1, ...``) by position, and must be one per class.
    """
    import warnings

    by_position = all(_POSITIONAL.match(name) for name in names)
    if classes is not None and not by_position:
        class_names = [str(c) for c in np.asarray(classes).tolist()]
        unknown = [n for n in names if n not in class_names]
        if unknown:
            raise DataFileError(f"{path}: column {unknown[0]!r} of its one-hot labels is not a class of the scores "
                                f"({shown_names(class_names)})")
        index = np.array([class_names.index(n) for n in names], dtype=np.int64)[index]
        how = "by column name"
    else:
        n_classes = len(classes) if classes is not None else n_classes
        if n_classes is not None and len(names) != n_classes:
            raise DataFileError(f"{path}: has {len(names)} columns of one-hot labels but the scores have "
                                f"{n_classes} classes")
        how = "column j is class j"
    warnings.warn(
        f"{path}: its {len(names)} columns are read as one-hot labels (0 or 1, a single 1 per row): each row's "
        f"class is the column holding its 1 ({how})",
        stacklevel=3,
    )
    return index


def _warn_if_also_indices(path: Path, column: str, labels: np.ndarray, encoded: np.ndarray, n_classes: int) -> None:
    """Warn when integer labels read as class names (``1, 2`` with classes ``1, 2, 3``) would also be
    valid class indices meaning other classes: the file alone cannot say which was meant."""
    if labels.dtype.kind not in "iu" or np.array_equal(labels, encoded):
        return
    if labels.min() < 0 or labels.max() >= n_classes:
        return  # some label is no index: names it is
    import warnings

    warnings.warn(
        f"{path}: column {column!r}: the labels are read as class names; as class indices 0..{n_classes - 1} "
        f"they would name other classes (label {labels[0].item()} is class index {encoded[0].item()}); if they "
        "are indices, replace each by its class name",
        stacklevel=3,
    )


# --------------------------------------------------------------------------- row ids across files

def row_id_names(path: str | os.PathLike, names: Collection[str], *, saved_index: bool = False) -> list[str]:
    """The columns among ``names`` (columns of ``path``) that identify its rows, in order.

    Named like a row id (:func:`row_id_columns` by name: ``id``, ``row_id``, ...; or ending in ``_id``:
    ``patient_id``), or stored as the pandas index of a Parquet file
    (``df.set_index("id").to_parquet()``). pandas' unnamed saved index (``""``, ``Unnamed: 0``,
    ``__index_level_0__``) counts only with ``saved_index``: it numbers the rows of the frame it was
    saved from, which another file's may not share (a test split saved with its index 500..599). A
    nameless column after a named one is a feature whose header was left empty
    (:func:`_saved_index_names`), never an id; nor is one blank on every row (:func:`_empty_nameless`).
    """
    names = list(names)
    index = set(pandas_index_columns(path))
    # ``names`` may be a few of the file's columns; which nameless one is the index needs them all.
    saved = set(_saved_index_names(_column_names(Path(path)))) & set(names) if saved_index and any(
        is_saved_index(n) for n in names) else set()
    if saved:
        # A leading delimiter on every line (",a,b" over ",1,2") writes no index: copied as ids, it made
        # every row's id missing for the next command.
        saved -= set(_empty_nameless(read_id_columns(path, [n for n in names if n in saved])))
    return [n for n in names
            if n in saved
            or (not is_saved_index(n) and (n in index or is_row_id_name(n)))]


def pandas_index_columns(path: str | os.PathLike) -> list[str]:
    """The names of a Parquet file's pandas index (``df.set_index("id").to_parquet()``: ``["id"]``);
    empty for other files. The index is stored as a column or, when its values are a run such as
    1000..1099, as that run alone in the metadata (:func:`_pandas_range_indexes`), which no column
    list shows."""
    index = _pandas_index_columns(Path(path))
    ranges = _pandas_range_indexes(Path(path))
    if not index:
        return list(ranges)
    import pyarrow.parquet as pq

    return [name for name in pq.read_schema(path).names if name in index] + list(ranges)


def _pandas_range_indexes(path: Path) -> dict[str, np.ndarray]:
    """The named indexes that a Parquet file's pandas metadata records as a run (``{"kind": "range"}``:
    pandas stores an index of consecutive ids that way, with no column), as their values."""
    if path.suffix.lower() != ".parquet":
        return {}
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        index = json.loads((meta.metadata or {}).get(b"pandas", b"{}")).get("index_columns", [])
        runs = {entry["name"]: np.arange(entry["start"], entry["stop"], entry["step"]) for entry in index
                if isinstance(entry, dict) and entry.get("kind") == "range" and isinstance(entry.get("name"), str)}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):  # unreadable metadata: no index known
        return {}
    return {name: values for name, values in runs.items() if len(values) == meta.num_rows}


def label_file_row_ids(path: str | os.PathLike, *, column: str | None = None,
                       saved_index: bool = False) -> list[str]:
    """The columns of the labels file ``path`` that identify its rows (:func:`row_id_names`, pandas'
    unnamed saved index only with ``saved_index``) among those besides the labels' own column
    (:func:`label_file_other_columns`)."""
    return row_id_names(path, label_file_other_columns(path, column=column), saved_index=saved_index)


def label_file_other_columns(path: str | os.PathLike, *, column: str | None = None) -> list[str]:
    """The columns of the labels file ``path`` besides the labels' own, in file order, then a Parquet
    pandas index that is no column (:func:`pandas_index_columns`).

    With ``column`` (``--label-column``) that is every other column. Without it the labels are the
    file's one column besides its Parquet pandas index and saved row indexes (:func:`read_labels`), so
    those are the others: a CSV's saved index (``df.to_csv()``: ``,label``; R's ``write.csv``:
    ``"","y"``; ``Unnamed: 0``) was left out here while ``read_labels`` skipped it, and shuffled rows
    were paired by position (audit: accuracy 0.3596 for 0.9607, exit 0, no warning). A file whose one
    column is nameless holds the labels in it, not an index. Row ids that leave one column
    (:func:`_ids_beside_labels`: ``patient_id,diagnosis``) are others too, matched on as with
    ``--label-column``.
    """
    path = Path(path)
    index = pandas_index_columns(path)
    names = _column_names(path)
    if column is None:
        rest = [name for name in names if name not in index]
        saved = _saved_index_names(rest)
        others = [*index, *saved] if len(saved) < len(rest) else index
        ids = _ids_beside_labels(path, [name for name in rest if name not in saved])
        return list(dict.fromkeys([*others, *ids]))
    columns = dict.fromkeys(names)
    label = _resolve_column(path, columns, column, option="--label-column")
    return [name for name in columns if name != label] + [name for name in index if name not in columns]


def is_saved_index(name: str) -> bool:
    """Whether the column ``name`` is pandas' unnamed saved index (``""``, ``Unnamed: 0``,
    ``__index_level_0__``): it numbers the rows of the frame that was saved, whatever a file calls it.
    Compared as :func:`visible_name` has it: a second byte-order mark left in a "CSV UTF-8" file's
    empty first name (``'\ufeff'``) is no name either."""
    return bool(_ROW_INDEX.match(visible_name(name)))


def _column_names(path: Path) -> list[str]:
    """The column names of a file that was read whole before, from its header or schema alone where
    the format allows (a labels file may be a large table of features too)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if suffix in _TABLE_SUFFIXES:
            import pyarrow.csv as pcsv

            parse = _csv_parse_options(suffix)
            with pcsv.open_csv(_without_trailing_blank_lines(path, parse.delimiter), parse_options=parse) as reader:
                return list(reader.schema.names)
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError; the general reader says what is wrong
        pass
    return list(read_columns(path))


def read_id_columns(path: str | os.PathLike, names: list[str]) -> dict[str, np.ndarray]:
    """The columns ``names`` of ``path`` as NumPy arrays, without reading its other columns' values.

    A CSV/TSV column is read as the text written, then as integers when every value is one written
    plainly: pyarrow would read ``007`` as 7, and an id keeps its spelling. Missing text is ``""``;
    an integer column of a Parquet file with missing values reads as floats with NaN.
    """
    import pyarrow as pa

    path = Path(path)
    suffix = _check_data_file(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        runs = _pandas_range_indexes(path)
        table = pq.read_table(path, columns=[name for name in names if name not in runs])
        columns = {name: runs[name] if name in runs else table.column(name) for name in names}
    elif suffix in _TABLE_SUFFIXES:
        columns = _read_text_columns(path, suffix, names)
    else:
        every = read_columns(path)
        columns = {name: every[name] for name in names}
    out = {}
    for name, col in columns.items():
        if suffix in (".csv", ".tsv"):
            col = _plain_integers(col)
        if not isinstance(col, np.ndarray) and pa.types.is_string(col.type):
            # Arrow's text to NumPy text at once: a loop over a million ids took seconds (audit).
            values = col.fill_null("").to_numpy(zero_copy_only=False).astype(str)
        else:
            values = col if isinstance(col, np.ndarray) else col.to_numpy(zero_copy_only=False)
        if values.dtype.kind == "O":
            values = np.array(["" if v is None else str(v) for v in values.tolist()])
        out[name] = values
    return out


def _plain_integers(col: Any) -> Any:
    """The text column ``col`` (a pyarrow array) as int64 when every value is an integer written
    plainly: no leading zero, no sign but ``-`` (``007`` is an id's spelling, not 7), under 19 digits
    (int64 holds every 18-digit number); else as it is. Checked by Arrow over the whole column: a
    regular expression per distinct id in Python took seconds at a million rows (audit)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(col) == 0:
        return col
    plain = pc.and_(pc.match_substring_regex(col, r"^(0|-?[1-9][0-9]*)$"), pc.less(pc.utf8_length(col), 19))
    return pc.cast(col, pa.int64()) if pc.all(plain, skip_nulls=False).as_py() else col


def _read_text_columns(path: Path, suffix: str, names: list[str]) -> dict[str, Any]:
    """The columns ``names`` of the CSV/TSV ``path`` as text, the other columns skipped unparsed.

    The file was read whole before (by :func:`read_columns`), so its problems have been reported."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse = _csv_parse_options(suffix)
    convert = pcsv.ConvertOptions(include_columns=list(names), column_types={n: pa.string() for n in names})
    # The first read dropped trailing blank lines; so does this one: the rows are the same.
    try:
        table = pcsv.read_csv(_without_trailing_blank_lines(path, parse.delimiter), parse_options=parse,
                              convert_options=convert)
    except pa.ArrowInvalid:
        table = _read_csv_whole(path, parse, convert)
    return {name: table.column(name) for name in names}


def row_keys(path: str | os.PathLike, name: str) -> np.ndarray:
    """The ids in column ``name`` of ``path`` as keys that compare across files and formats: int64
    when every id is a whole number (``1000`` or ``1000.0``) that int64 holds, else text (:func:`comparable_keys`
    turns integer keys into text when the other file's are text).

    An id read as the number 1000 in one file and the text ``"1000"`` (or ``1000.0``) in another is
    one key; so are ``"007"`` and 7, as pyarrow and pandas read them. Surrounding spaces are dropped.

    Raises
    ------
    DataFileError
        Naming the row of a missing id: such a row cannot be matched.
    """
    path = Path(path)
    values = read_id_columns(path, [name])[name]
    if values.dtype.kind == "f":
        values = values.astype(np.float64, copy=False)  # 2**63 is inf as a float16 (an overflow warning)
        missing = ~np.isfinite(values)
        if missing.any():
            raise DataFileError(location(path, int(np.argmax(missing)), name) + "missing id")
        whole = (values == np.round(values)) & (np.abs(values) < 2.0**63)
        if whole.all():
            return values.astype(np.int64)
        return np.where(whole, np.char.mod("%d", np.where(whole, values, 0).astype(np.int64)),
                        values.astype(str))
    if values.dtype.kind in "iu":
        if values.dtype.kind == "u" and len(values) and values.max() > np.iinfo(np.int64).max:
            # uint64 ids from 2**63 on wrapped to negative int64 keys: they matched no CSV's ids (19 digits,
            # text there) and were named so, "id -9223372036854775808" for 9223372036854775808 (audit CJ F3).
            return values.astype(str)
        return values.astype(np.int64)
    if values.dtype.kind == "b":
        return values.astype(str)
    text = np.char.strip(values.astype(str))
    empty = np.char.str_len(text) == 0
    if empty.any():
        raise DataFileError(location(path, int(np.argmax(empty)), name) + "missing id")
    spellings, inverse = np.unique(text, return_inverse=True)
    canonical = [str(int(float(s))) if _WHOLE_NUMBER_TEXT.match(s) else s for s in spellings.tolist()]
    return np.array(canonical, dtype=str)[inverse.reshape(-1)]


#: A whole number as text (``1000``, ``007``, ``1000.0``): one id however a file typed it.
_WHOLE_NUMBER_TEXT = re.compile(r"^[-+]?[0-9]{1,15}(\.0*)?$")


def comparable_keys(keys: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two files' :func:`row_keys` of one column, of one type: integers stay integers (sorted and
    compared as int64, many times faster than text at a million rows), and go through text only
    when the other file's ids are text (``1000`` and ``"1000"`` are then one key)."""
    if keys.dtype.kind == other.dtype.kind == "i":
        return keys, other
    return keys.astype(str), other.astype(str)


def counts_rows(values: np.ndarray) -> bool:
    """Whether the column ``values`` is the run 0..n-1 or 1..n in row order (:func:`row_id_columns`)."""
    return values.dtype.kind in "iuf" and _counts_rows(values)


# --------------------------------------------------------------------------- writers


def check_writable_columns(path: str | os.PathLike, names_text: Mapping[str, bool]) -> None:
    """Fail before any work when ``path``'s format cannot hold the columns.

    ``names_text`` maps each column name to whether it holds text; ``.npy``
    and ``.safetensors`` store numbers only.
    """
    path = Path(path)
    suffix = _suffix(path)
    text = [name for name, is_text in names_text.items() if is_text]
    if text and suffix in (".npy", ".safetensors"):
        raise DataFileError(
            f"{path}: column {text[0]!r} holds text, which {suffix} cannot store; "
            "write .csv, .parquet or .npz instead"
        )


def write_columns(
    path: str | os.PathLike,
    columns: Mapping[str, np.ndarray],
    *,
    inputs: tuple[str | os.PathLike, ...] = (),
    outputs: Any = None,
) -> Path:
    """Write named 1-D columns to ``path`` atomically; the format follows the extension.

    Tables (``.csv``, ``.tsv``, ``.parquet``) get one column each, written by
    pyarrow's multithreaded writers; ``.npz`` and ``.safetensors`` one array
    each; ``.npy`` a 2-D float matrix of the columns in order (so every column
    must be numeric). ``inputs`` are never overwritten. With ``outputs`` (a
    :class:`softmaxkit.io.StagedOutputs`) the file is staged there and
    appears when the caller commits.
    """
    path = Path(path)
    suffix = _suffix(path)
    columns = {name: np.asarray(col) for name, col in columns.items()}
    check_writable_columns(path, {name: col.dtype.kind not in "biuf" for name, col in columns.items()})
    if outputs is not None:
        _write_to(outputs.stage(path), suffix, columns)
        return path
    with atomic_path(path, inputs=inputs) as tmp:
        _write_to(tmp, suffix, columns)
    return path


def _write_to(tmp: Path, suffix: str, columns: Mapping[str, np.ndarray]) -> None:
    if suffix in _TABLE_SUFFIXES:
        import pyarrow as pa

        table = pa.table({name: pa.array(col) for name, col in columns.items()})
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            import pyarrow.csv as pcsv

            delimiter = "\t" if suffix == ".tsv" else ","
            pcsv.write_csv(table, tmp, write_options=pcsv.WriteOptions(delimiter=delimiter))
    elif suffix == ".npy":
        with open(tmp, "wb") as fh:
            np.save(fh, np.column_stack(list(columns.values())).astype(np.float64))
    elif suffix == ".npz":
        with open(tmp, "wb") as fh:
            np.savez(fh, **columns)
    else:
        from safetensors.numpy import save_file

        # The format stores tensors sorted (by dtype, then name): class 10 before class 2,
        # "apple" before "zebra". The order is kept in the metadata, which the reader restores.
        order = {_COLUMN_ORDER_KEY: json.dumps(list(columns))}
        save_file({k: np.ascontiguousarray(v) for k, v in columns.items()}, str(tmp), metadata=order)
