"""Read user data files (features, logits, labels) and write tables of results.

The format follows the extension:

=================  =====================================================
``.csv``/``.tsv``   a table with a header row, read and written by pyarrow
``.parquet``        a table, read and written by pyarrow
``.npy``            one array (``allow_pickle=False``); a 2-D array's
                    columns are named ``"0"``, ``"1"``, ...
``.npz``            named arrays (``allow_pickle=False``); a 2-D array
                    ``X`` gives columns ``"X[0]"``, ``"X[1]"``, ...
``.safetensors``    named arrays, the same way as ``.npz``
=================  =====================================================

Every file is first turned into ordered named 1-D columns, so one set of
checks serves every format. A bad file raises :class:`DataFileError` (a
``ValueError``) with one line naming the file, the row and column, and the
problem, e.g. ``train.csv: row 7 (line 8), column 'age': non-numeric value
'abc'``. Rows are counted from 1 over data rows; for text tables the line
number in the file is given too.

pyarrow and safetensors are the ``io`` extra; they are imported on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from softmaxkit.io import atomic_path

_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
_ARRAY_SUFFIXES = (".npy", ".npz", ".safetensors")
SUFFIXES = _TABLE_SUFFIXES + _ARRAY_SUFFIXES


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
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None


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
        text_table = path.suffix.lower() in (".csv", ".tsv")
        # +2: rows count from 1, and line 1 of a text table is its header.
        parts.append(f"row {row + 1}" + (f" (line {row + 2})" if text_table else ""))
    if column is not None:
        parts.append(f"column {column!r}")
    return f"{path}: " + (", ".join(parts) + ": " if parts else "")


def _read_arrow(path: Path, suffix: str) -> dict[str, Any]:
    import pyarrow as pa

    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pcsv

            parse = pcsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            table = pcsv.read_csv(path, parse_options=parse)
    except pa.ArrowInvalid as exc:
        # pyarrow's messages are good but multi-line in places ("CSV parse error: Expected 3
        # columns, got 2: 1,2"); keep the first line.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if message.lower().startswith("empty csv file"):
            raise DataFileError(f"{path}: the file is empty") from None
        raise DataFileError(f"{path}: cannot be read as {suffix[1:]}: {message}") from None
    table = table.combine_chunks()
    seen: set[str] = set()
    for name in table.column_names:
        if name in seen:
            raise DataFileError(f"{path}: the column name {name!r} appears twice; column names must be unique")
        seen.add(name)
    return {name: table.column(name).chunk(0) if table.num_rows else np.array([]) for name in table.column_names}


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


def _read_arrays(path: Path, suffix: str) -> dict[str, Any]:
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            named = dict(load_file(str(path)))
        else:
            loaded = np.load(path, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return _array_columns(None, loaded, path)
            with loaded:
                named = {k: loaded[k] for k in loaded.files}
    except DataFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataFileError(
                f"{path}: refused: the file holds pickled Python objects, which softmaxkit never loads"
            ) from None
        raise DataFileError(f"{path}: not a valid {suffix} file ({exc})") from None
    except Exception as exc:  # zipfile, EOFError, safetensors' own error types
        raise DataFileError(f"{path}: not a valid {suffix} file ({type(exc).__name__}: {exc})") from None
    columns: dict[str, np.ndarray] = {}
    for key, arr in named.items():
        columns.update(_array_columns(key, arr, path))
    return columns


def read_columns(path: str | os.PathLike) -> dict[str, Any]:
    """Read any supported file as ordered named 1-D columns (arrow arrays or ndarrays).

    Raises
    ------
    DataFileError
        Missing, empty, unreadable or malformed file; columns of unequal length.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory, not a data file")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: the file is empty")
    columns = _read_arrow(path, suffix) if suffix in _TABLE_SUFFIXES else _read_arrays(path, suffix)
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
    return columns


# --------------------------------------------------------------------------- checks


def _to_float(col: Any) -> tuple[np.ndarray | None, tuple[int, str] | None]:
    """``(values, None)`` for a finite numeric column, else ``(None, (row, problem))``."""
    if not isinstance(col, np.ndarray):  # arrow array
        if col.null_count:
            import pyarrow.compute as pc

            row = int(pc.index(pc.is_null(col), True).as_py())
            return None, (row, "missing value (empty or NaN)")
        values = col.to_numpy(zero_copy_only=False)
    else:
        values = col
    if values.dtype.kind in "biuf":
        values = values.astype(np.float64, copy=False)
    else:
        # Strings (or arrow's inferred string type): find the first cell that is not a number.
        parsed = np.empty(len(values), dtype=np.float64)
        for row, cell in enumerate(values):
            try:
                parsed[row] = float(cell)
            except (TypeError, ValueError):
                return None, (row, f"non-numeric value {str(cell)!r}")
        values = parsed
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        return None, (row, f"non-finite value {float(values[row])}")
    return values, None


def numeric_matrix(path: str | os.PathLike, columns: Mapping[str, Any], *, what: str = "feature") -> np.ndarray:
    """Stack ``columns`` into a finite float64 matrix of shape (n_rows, n_columns).

    Raises
    ------
    DataFileError
        Naming the first offending row and column: a non-numeric, missing or non-finite value.
    """
    path = Path(path)
    converted, problems = [], []
    for index, (name, col) in enumerate(columns.items()):
        values, problem = _to_float(col)
        converted.append(values)
        if problem is not None:
            problems.append((problem[0], index, name, problem[1]))
    if problems:
        # Report the earliest bad cell in reading order, whichever column it is in.
        row, _, name, message = min(problems)
        raise DataFileError(location(path, row, name) + f"{message}; {what} values must be finite numbers")
    return np.column_stack(converted)


def _label_column(path: Path, name: str, col: Any) -> np.ndarray:
    """A target column as a NumPy array of ints (when every value is integral) or strings."""
    if not isinstance(col, np.ndarray):
        if col.null_count:
            import pyarrow.compute as pc

            row = int(pc.index(pc.is_null(col), True).as_py())
            raise DataFileError(location(path, row, name) + "missing label")
        col = col.to_numpy(zero_copy_only=False)
    if col.dtype.kind == "f":
        bad = ~np.isfinite(col)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFileError(location(path, row, name) + f"non-finite label {col[row]}")
        if np.all(col == np.round(col)):
            col = col.astype(np.int64)
    elif col.dtype.kind == "O":
        col = col.astype(str)
    return col


def _resolve_column(path: Path, columns: Mapping[str, Any], target: str, *, option: str) -> str:
    """The column named ``target``; an integer such as ``-1`` also selects by position."""
    if target in columns:
        return target
    try:
        return list(columns)[int(target)]
    except (ValueError, IndexError):
        pass
    names = list(columns)
    shown = ", ".join(repr(n) for n in names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    raise DataFileError(f"{path}: no column {target!r} for {option} (columns: {shown})")


# --------------------------------------------------------------------------- public readers


def read_features(
    path: str | os.PathLike,
    *,
    target: str | None = None,
    require_target: bool = True,
    n_features: int | None = None,
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

    Returns
    -------
    Features

    Raises
    ------
    DataFileError
        With the file, row, column and problem.
    """
    path = Path(path)
    columns = read_columns(path)
    y = None
    target_name = None
    if target is not None:
        try:
            target_name = _resolve_column(path, columns, target, option="--target")
        except DataFileError:
            if require_target:
                raise
        if target_name is not None:
            y = _label_column(path, target_name, columns.pop(target_name))
    if not columns:
        raise DataFileError(f"{path}: no feature columns besides the target {target_name!r}")
    if n_features is not None and len(columns) != n_features:
        hint = " (use --target COL to leave out a label column)" if len(columns) > n_features and y is None else ""
        raise DataFileError(f"{path}: has {len(columns)} feature columns but the model expects {n_features}{hint}")
    X = numeric_matrix(path, columns)
    return Features(X=X, y=y, feature_names=list(columns), target_name=target_name)


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


def read_labels(path: str | os.PathLike, *, column: str | None = None, n_classes: int | None = None) -> np.ndarray:
    """Read integer class indices (one per row) from ``path``.

    Parameters
    ----------
    path : path-like
        A file with one column, or several with ``column`` naming the labels.
    column : str, optional
        The label column's name or position.
    n_classes : int, optional
        When given, every label must lie in ``0 .. n_classes - 1``.

    Returns
    -------
    ndarray of shape (n_samples,), int64

    Raises
    ------
    DataFileError
        Naming the row of the first label that is missing, not an integer or out of range.
    """
    path = Path(path)
    columns = read_columns(path)
    if column is None:
        if len(columns) != 1:
            raise DataFileError(
                f"{path}: has {len(columns)} columns; labels need exactly one (or name it with --label-column)"
            )
        column = next(iter(columns))
    name = _resolve_column(path, columns, column, option="--label-column")
    labels = _label_column(path, name, columns[name])
    if labels.dtype.kind not in "iu":
        row = 0
        for row, value in enumerate(labels):
            try:
                float_value = float(value)
            except (TypeError, ValueError):
                break
            if float_value != int(float_value):
                break
        raise DataFileError(
            location(path, row, name) + f"label {labels[row].item()!r} is not an integer class index (0, 1, ...)"
        )
    labels = labels.astype(np.int64)
    if n_classes is not None:
        bad = (labels < 0) | (labels >= n_classes)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFileError(
                location(path, row, name)
                + f"label {labels[row]} is not a class of the {n_classes}-class scores (0..{n_classes - 1})"
            )
    return labels


# --------------------------------------------------------------------------- writers


def write_columns(
    path: str | os.PathLike, columns: Mapping[str, np.ndarray], *, inputs: tuple[str | os.PathLike, ...] = ()
) -> Path:
    """Write named 1-D columns to ``path`` atomically; the format follows the extension.

    Tables (``.csv``, ``.tsv``, ``.parquet``) get one column each; ``.npz`` and
    ``.safetensors`` one array each; ``.npy`` a 2-D float matrix of the columns
    in order (so every column must be numeric). ``inputs`` are never overwritten.
    """
    path = Path(path)
    suffix = _suffix(path)
    columns = {name: np.asarray(col) for name, col in columns.items()}
    non_numeric = [name for name, col in columns.items() if col.dtype.kind not in "biuf"]
    if non_numeric and suffix in (".npy", ".safetensors"):
        raise DataFileError(
            f"{path}: column {non_numeric[0]!r} holds text, which {suffix} cannot store; "
            "write .csv, .parquet or .npz instead"
        )
    with atomic_path(path, inputs=inputs) as tmp:
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

            save_file({k: np.ascontiguousarray(v) for k, v in columns.items()}, str(tmp))
    return path
