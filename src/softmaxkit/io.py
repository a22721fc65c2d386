"""Persistence without pickle, and atomic file writes.

Every saved softmaxkit object (classifier, calibrator) is one ``.npz`` file
(or ``.safetensors`` when that extension is asked for and the ``io`` extra is
installed) holding named NumPy arrays plus a JSON metadata record. Loading
uses ``np.load(allow_pickle=False)`` and ``json``, so a crafted file cannot
run code.

What :func:`load` guarantees beyond that, for a classifier, a calibrator
or a calibrated classifier: it returns a model that computes what the
file's parameters define, as the softmaxkit that wrote them did, or raises
:class:`ModelFileError` naming the file and the entry that does not fit. Each of them checks its whole state as it
loads it: parameter values this version knows (an activation, method or
input a later version added, or a typo, is refused, never read as another
one), finite real parameters of the shapes its class and feature counts
call for, 2 or more distinct sorted classes that keep their dtype, one
distinct name per feature, and for a
:class:`~softmaxkit.calibration.CalibratedClassifier` pairs whose
classifier and calibrator agree with each other and with the model. So a
damaged, hand-edited or newer file fails at load, not later with an error
that blames the data passed to ``predict``. An array or metadata entry that
the loaded object would not write itself is refused too, as is a format
version no softmaxkit wrote. What load cannot tell is
whether the numbers are the fitted ones: a file edited to other finite
values of the right shapes loads as the model those values define (files
are not signed; keep them where only you can write).

A class takes part by subclassing :class:`Persistable` and implementing
``_get_state`` / ``_from_state``, and by having its ``kind`` listed in
:data:`_REGISTRY` (a name -> "module:Class" table, so loading imports only the
class it needs and the registry has no import cycles).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import importlib
import json
import os
import re
import signal
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from softmaxkit._extras import import_optional

#: The format of the files this version writes. Every softmaxkit has written 1, from the first one on:
#: a record without it, or with 0 or less, is no softmaxkit file's.
FORMAT_VERSION = 1
_META_KEY = "__softmaxkit_metadata__"
#: The entries of a file's JSON record: the object's kind, the format, its state (``meta``), and the
#: names of the ``meta`` entries that ``save(extra_meta=...)`` added (:func:`save_state`), which load
#: lets through unread. Any other entry is refused: this version would ignore it (audit BN).
_RECORD_KEYS = ("kind", "format_version", "meta", "extra_meta")
#: The CLI's ``extra_meta`` entries (:data:`softmaxkit.cli._adapters.MODEL_DIGEST_KEY` and
#: ``CALIBRATOR_DIGEST_KEY``), which files saved before the record's ``extra_meta`` list existed hold
#: without naming them: load lets them through in any file.
_EXTRA_META_BEFORE_THE_LIST = ("model_digest", "calibrator_digest")
#: safetensors metadata entry: :func:`arrays_digest` of the arrays after the metadata record, checked on
#: load. An ``.npz`` needs none (zip's CRC covers every member); a ``.safetensors`` has no checksum, and a
#: flipped byte in its weights loaded without error (audit).
_CHECKSUM_KEY = "__softmaxkit_sha256__"

#: kind -> "module:Class" of every loadable object.
_REGISTRY: dict[str, str] = {
    "SoftmaxClassifier": "softmaxkit.classifier:SoftmaxClassifier",
    "TemperatureScaling": "softmaxkit.calibration:TemperatureScaling",
    "VectorScaling": "softmaxkit.calibration:VectorScaling",
    "MatrixScaling": "softmaxkit.calibration:MatrixScaling",
    "IsotonicCalibration": "softmaxkit.calibration:IsotonicCalibration",
    "PlattScaling": "softmaxkit.calibration:PlattScaling",
    "CalibratedClassifier": "softmaxkit.calibration:CalibratedClassifier",
    "ConformalClassifier": "softmaxkit.conformal:ConformalClassifier",
}


class ModelFileError(ValueError):
    """A model file is missing, corrupted, or not a softmaxkit file."""


# --------------------------------------------------------------------------- atomic writes


def default_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: ``0o666`` less the umask.

    ``tempfile.mkstemp`` creates its files ``0o600``; a temporary renamed onto
    the output would keep that, and a report or predictions file would be
    unreadable to a colleague or a web server despite ``umask 022``.
    """
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def file_key(path: str | os.PathLike) -> tuple[int, int, str]:
    """What identifies the file ``path`` names, however it is reached: compare keys, never paths.

    An existing file's key is its device and inode, ``(st_dev, st_ino, "")``,
    as :func:`os.path.samefile` compares them (a hard link of a file, or a
    symlink to it, has the file's key: the same contents); a path that does
    not exist yet gets its nearest existing folder's device and inode plus the
    rest of the path (:func:`_folder_key`). For inputs: two inputs with one
    key hold the same bytes. Outputs are compared by :func:`entry_key`.

    Parameters
    ----------
    path : str or os.PathLike
        A file that exists or is to be written.

    Returns
    -------
    tuple of (int, int, str)
        Equal for two paths exactly when they name one file (or one future file).
    """
    try:
        st = Path(path).stat()
    except OSError:
        return _folder_key(Path(path), [])
    return st.st_dev, st.st_ino, ""


def entry_key(path: str | os.PathLike) -> tuple[int, int, str]:
    """What identifies the directory entry that writing ``path`` replaces: its folder's device and
    inode plus its name (:func:`_folder_key`), after a symlink in the last component is followed (a
    directory: its own device and inode).

    An output is published by renaming a temporary over this entry (:func:`os.replace`), so two paths
    clobber each other exactly when their entries are one: the same folder reached by two paths
    (``Path.resolve()`` strings differed for one folder mounted at two places, a container volume
    mounted twice: ``predict ... data/test.csv --out alias/test.csv`` replaced its own input, audit
    AG), never a hard link of a file, whose other name keeps the old contents (review R6: hard-linked
    outputs, as ``cp -al`` snapshots leave them, were refused).
    """
    p = Path(path)
    if p.is_dir():
        st = p.stat()
        return st.st_dev, st.st_ino, ""
    if p.is_symlink():  # written through: os.replace over a symlink replaces the link, but we refuse that too
        p = Path(os.path.realpath(p))
    return _folder_key(p.parent, [p.name])


def _folder_key(path: Path, rest: list[str]) -> tuple[int, int, str]:
    """``path``'s nearest existing folder's (or file's) device and inode, plus the rest of the path below it
    and then ``rest``, normalised: the missing folders cannot be links, so ``new/../x`` is ``x``."""
    folder, rest = path, list(reversed(rest))
    while True:
        try:
            st = folder.stat()
            break
        except OSError:  # missing (or unreadable): identify it by a folder above it
            if folder == folder.parent:
                raise
            rest.append(folder.name)
            folder = folder.parent
    tail = os.path.normpath(os.path.join(*reversed(rest))) if rest else ""
    while tail.split(os.sep, 1)[0] == os.pardir:  # "new/../../x": ".." of the existing folder is a real one
        try:
            st = (folder / os.pardir).stat()
        except OSError:  # the "folder" is a file: such a path cannot be written anyway
            break
        folder, tail = folder / os.pardir, tail.partition(os.sep)[2]
    return st.st_dev, st.st_ino, tail


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether paths ``a`` and ``b`` name one file (see :func:`file_key`), reached by whatever paths."""
    return file_key(a) == file_key(b)


def same_entry(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether writing ``a`` and writing ``b`` replace one directory entry (see :func:`entry_key`)."""
    return entry_key(a) == entry_key(b)


def _refuse_inputs(target: Path, inputs: tuple[str | os.PathLike | None, ...]) -> None:
    for inp in inputs:
        if inp is not None and os.path.exists(inp) and same_entry(target, inp):
            raise ValueError(f"refusing to overwrite the input file {inp}; choose another output path")


def _new_temp(target: Path) -> Path:
    """An empty hidden temporary in ``target``'s directory, ending in ``target``'s extension
    (writers choose the format by extension); callers report errors by ``target``
    (:func:`_write_error`), never by the temporary."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    return Path(tmp)


#: errno -> what a failed write of an output says: the disk, not the data, is the problem.
#: Only these are blamed on an output when its writer fails (they cannot come from reading).
_DISK_ERRORS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    # EFBIG is the file system's size limit or the process's own (ulimit -f, RLIMIT_FSIZE): one errno for both.
    errno.EFBIG: "file too large: over the file system's size limit, or the process's file-size limit (ulimit -f)",
}


class OutputWriteError(OSError):
    """An output file could not be written: full disk, quota, read-only file system, permissions.

    Its message names the output (and the option that gave it), never the hidden
    temporary: pyarrow's "[Errno 28] Error writing bytes to file" named no file (audit).
    ``errno`` is the original error's.
    """

    def __str__(self) -> str:
        return str(self.strerror)


def _write_error(exc: OSError, target: Path, option: str | None = None) -> OSError:
    """``exc``, raised while writing ``target``, as "cannot write [OPTION ]TARGET: no space left on device"."""
    if isinstance(exc, OutputWriteError):
        return exc
    words = _DISK_ERRORS.get(exc.errno) or str(exc.strerror or exc).lower()
    return OutputWriteError(exc.errno, f"cannot write {option + ' ' if option else ''}{target}: {words}")


def _finish(tmp: Path, mode: int) -> None:
    """fsync ``tmp`` and give it ``mode``: everything but the rename that publishes it."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)


def _publish(tmp: Path, target: Path, mode: int) -> None:
    """fsync ``tmp``, give it ``mode`` and rename it onto ``target`` (atomic on POSIX)."""
    _finish(tmp, mode)
    os.replace(tmp, target)


#: The signals a commit holds back: Ctrl-C, SIGTERM, and SIGHUP (a closed terminal or ssh session),
#: both of which the CLI raises as exceptions. (Windows has no SIGHUP.)
_DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back for the block, then deliver them (each once) at its end.

    Why: the renames of a multi-output commit must all happen or none, and a
    Ctrl-C between two of them would leave a new output next to an old one.
    The Python-level handlers are swapped for one that only records the
    signal, rather than blocking it with ``signal.pthread_sigmask``: a mask
    in the main thread does not stop the kernel from handing a
    process-directed signal to another thread (numpy's BLAS pool, torch),
    whose C handler still makes the main thread run the Python handler at
    once. Handlers can only be changed in the main thread, so elsewhere this
    is a no-op (signals interrupt only the main thread anyway), as it is for
    a handler not installed from Python, which could not be put back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    # ExitStack: every handler is put back even if a signal arriving meanwhile raises in between;
    # the pending signals are raised last, once the real handlers are back.
    with contextlib.ExitStack() as stack:
        stack.callback(_raise_pending, pending)
        for sig in _DEFERRED_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is None:
                continue
            signal.signal(sig, lambda signum, _frame: pending.append(signum))
            stack.callback(signal.signal, sig, previous)
        yield


def _raise_pending(pending: list[int]) -> None:
    """Deliver the signals :func:`_signals_deferred` held back to the handlers now in place."""
    for sig in dict.fromkeys(pending):  # in arrival order, each once
        signal.raise_signal(sig)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    A crash or exception leaves any existing ``path`` untouched and removes the
    temporary file. ``inputs`` are files this command reads: writing onto one
    of them (by :func:`entry_key`) raises ``ValueError`` instead of destroying the
    user's data. The file gets the usual permissions of a new file
    (:func:`default_file_mode`). A full disk or read-only file system raises
    :class:`OutputWriteError` naming ``path``.
    """
    target = Path(path)
    _refuse_inputs(target, inputs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = _new_temp(target)
    except OSError as exc:
        raise _write_error(exc, target) from exc
    try:
        try:
            yield tmp_path
        except OSError as exc:  # the caller's writer: a full disk is blamed on the file, other errors are its own
            if exc.errno in _DISK_ERRORS:
                raise _write_error(exc, target) from exc
            raise
        try:
            _publish(tmp_path, target, default_file_mode())
        except OSError as exc:
            raise _write_error(exc, target) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# --------------------------------------------------------------------------- inputs that change under us


class InputChangedError(ValueError):
    """An input file was rewritten, truncated or replaced while a command was reading it."""


def _identity(path: Path) -> tuple[int, int, int, int]:
    """What changes when a file is rewritten in place or replaced: device, inode, size, mtime."""
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class InputWatch:
    """The identities of a command's input files, to detect that one changed while it ran.

    Large ``.npy`` inputs are memory-mapped and read several times (the checks,
    then the computation), and Parquet is streamed in batches; another process
    rewriting the file in between would make one result out of two files, with
    exit code 0. :meth:`verify` compares every file's device, inode, size and
    modification time with those taken at the start, and raises
    :class:`InputChangedError` naming the file. (A file truncated under a
    memory map can still end the process with SIGBUS before that check: the
    staged outputs are then never published.)
    """

    def __init__(self, paths: tuple[str | os.PathLike, ...]) -> None:
        self._before: dict[Path, tuple[int, int, int, int]] = {}
        for p in paths:
            path = Path(p)
            if path.is_file():
                self._before[path] = _identity(path)

    def verify(self) -> None:
        """Raise :class:`InputChangedError` if an input is gone or differs from when the watch began."""
        for path, before in self._before.items():
            try:
                now = _identity(path)
            except OSError:
                raise InputChangedError(f"{path} was removed while softmaxkit was running; run again") from None
            if now != before:
                what = (f"its size went from {before[2]} to {now[2]} bytes" if now[2] != before[2]
                        else "it was replaced" if now[:2] != before[:2] else "it was modified")
                raise InputChangedError(
                    f"{path} changed while softmaxkit was running ({what}); its results could mix two versions "
                    "of the file: run again once the file is complete"
                )


_active_watch: contextvars.ContextVar[InputWatch | None] = contextvars.ContextVar("softmaxkit_input_watch", default=None)


@contextlib.contextmanager
def watching_inputs(paths: tuple[str | os.PathLike, ...]) -> Iterator[InputWatch]:
    """Watch ``paths`` (the regular files among them) for the duration of the block.

    :meth:`StagedOutputs.commit` verifies the active watch before publishing
    anything, so outputs are never computed from a file that changed mid-read.
    """
    watch = InputWatch(paths)
    token = _active_watch.set(watch)
    try:
        yield watch
    finally:
        _active_watch.reset(token)


def verify_inputs_unchanged() -> None:
    """:meth:`InputWatch.verify` of the active watch (:func:`watching_inputs`); no-op outside one."""
    watch = _active_watch.get()
    if watch is not None:
        watch.verify()


class StagedOutputs:
    """Write several output files all or nothing.

    Each output is first written to a hidden temporary in its own directory
    (:meth:`stage`); :meth:`commit` renames them all onto their targets once
    every one is complete. Leaving the ``with`` block without a commit (an
    error, Ctrl-C, SIGTERM turned into an exception by the CLI) removes the
    temporaries and any directory this object created, so a failed command
    leaves no output and no debris. :meth:`check` runs the cheap checks up
    front, before a command reads its data or trains anything.

    Ctrl-C, SIGTERM or SIGHUP during :meth:`commit` waits until every rename
    is done (it is then raised as usual), so a signal never publishes some
    outputs and not others. The renames are still not jointly atomic against
    a crash (power loss, SIGKILL) or a rename that fails (disk gone).

    Files are told apart by identity (:func:`entry_key`), not by path: an input
    or another output reached through a second mount point, a symlinked folder
    or a hard link is still the same file. An ``OSError`` while staging or
    committing an output, and a full disk or read-only file system while the
    caller writes one (blamed on the output staged last), is raised as
    :class:`OutputWriteError` naming the output and, where ``options`` gives
    it, the option that named it.

    Parameters
    ----------
    inputs : tuple of path, keyword-only
        Files the command reads: never written or removed (``None`` entries are skipped).
    options : mapping of path to str, optional, keyword-only
        The option that names each output (``{"p.csv": "--out"}``), for error messages.

    Examples
    --------
    >>> with StagedOutputs(inputs=("data.csv",)) as out:  # doctest: +SKIP
    ...     out.stage("model.npz").write_bytes(b"...")
    ...     out.commit()
    """

    def __init__(
        self,
        *,
        inputs: tuple[str | os.PathLike | None, ...] = (),
        options: Mapping[str | os.PathLike | None, str] | None = None,
    ) -> None:
        self.inputs = tuple(i for i in inputs if i is not None)
        self._options = {Path(p): o for p, o in (options or {}).items() if p is not None}
        self._staged: dict[tuple[int, int, str], tuple[Path, Path]] = {}  # entry_key -> (target, temporary)
        self._removals: dict[tuple[int, int, str], Path] = {}  # entry_key -> target
        self._made_dirs: list[Path] = []
        self._last: Path | None = None  # the output the caller is writing now
        self.committed = False

    def check(self, path: str | os.PathLike, *, option: str = "--out") -> Path:
        """Fail now if ``path`` cannot be written: an input, a directory, or an unwritable directory."""
        target = Path(path)
        for inp in self.inputs:
            if target.exists() and os.path.exists(inp) and same_entry(target, inp):
                raise ValueError(f"{option} {path} is also an input file; refusing to overwrite it, choose another path")
        if target.is_dir():
            raise ValueError(f"{option} {path} is an existing directory; give a file name")
        parent = _existing_ancestor(target.parent)
        if not parent.is_dir():
            raise ValueError(f"{option} {path}: {parent} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            why = "read-only file system" if _read_only(parent) else "permission denied"
            raise ValueError(f"{option} {path}: cannot write in directory {parent} ({why})")
        return target

    def stage(self, path: str | os.PathLike) -> Path:
        """A fresh temporary for ``path`` (ending in its extension), to be written by the caller."""
        target = Path(path)
        _refuse_inputs(target, self.inputs)
        self._last = target
        try:
            self._mkdirs(target.parent)
            key = entry_key(target)  # once its folder exists: (folder, name)
            if key in self._staged or key in self._removals:
                first = self._staged[key][0] if key in self._staged else self._removals[key]
                also = "" if first == target else f" (also as {first})"
                raise ValueError(f"{target} is written{' twice' if key in self._staged else ' and removed'} "
                                 f"by one command{also}")
            tmp = _new_temp(target)
        except OSError as exc:
            raise _write_error(exc, target, self._options.get(target)) from exc
        self._staged[key] = (target, tmp)
        return tmp

    def remove(self, path: str | os.PathLike) -> None:
        """Delete ``path`` at :meth:`commit`, with the renames (an earlier run's file that the new
        outputs make stale, such as a calibrator saved for the model being replaced); nothing
        is deleted when the command fails before committing."""
        target = Path(path)
        _refuse_inputs(target, self.inputs)
        key = entry_key(target)
        if key in self._staged:
            raise ValueError(f"{target} is both written and removed by one command")
        self._removals[key] = target

    def commit(self) -> list[Path]:
        """Publish every staged file (permissions as for a new file); returns the targets.

        Raises :class:`InputChangedError`, publishing nothing, when an input
        watched by :func:`watching_inputs` changed since the command began.
        A SIGINT, SIGTERM or SIGHUP arriving during the renames is raised once
        all of them are done (main thread; see :func:`_signals_deferred`).
        """
        verify_inputs_unchanged()
        mode = default_file_mode()
        staged = list(self._staged.values())
        self._last = None  # from here on an error names the output it happened to
        for target, tmp in staged:  # the slow part (fsync) before signals are held back
            self._publishing(_finish, target, tmp, mode)
        with _signals_deferred():
            for target, tmp in staged:
                self._publishing(os.replace, target, tmp, target)
            for target in self._removals.values():
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
            # Inside the block: a signal raised at its end must not make __exit__ discard anything.
            self.committed = True
        return [target for target, _ in staged]

    def _publishing(self, step: Any, target: Path, *args: Any) -> None:
        """``step(*args)``, one step of publishing ``target``; an OSError names ``target``."""
        try:
            step(*args)
        except OSError as exc:
            raise _write_error(exc, target, self._options.get(target)) from exc

    def discard(self) -> None:
        """Remove every temporary (and the directories made for them, when left empty)."""
        for _, tmp in self._staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged.clear()
        for folder in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        self._made_dirs.clear()

    def _mkdirs(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for d in reversed(missing):
            if d.exists():  # "new/.." exists once "new" is made (as with mkdir -p new/..)
                continue
            d.mkdir()
            self._made_dirs.append(d)

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if not self.committed:
            self.discard()
            # The caller's writer failed on a full (or read-only) disk: name the file it was writing.
            if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS and self._last is not None:
                raise _write_error(exc, self._last, self._options.get(self._last)) from exc


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (``os.access`` says only "no")."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows)
        return False


def _existing_ancestor(folder: Path) -> Path:
    folder = folder if str(folder) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def write_text_atomic(path: str | os.PathLike, text: str, **kwargs: Any) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, **kwargs) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, **kwargs: Any) -> Path:
    with atomic_path(path, **kwargs) as tmp:
        tmp.write_bytes(data)
    return Path(path)


# --------------------------------------------------------------------------- save / load


class Persistable:
    """Mixin: ``save(path)`` for objects whose state is JSON metadata plus arrays."""

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:  # pragma: no cover
        raise NotImplementedError

    def save(self, path: str | os.PathLike, *, extra_meta: dict[str, Any] | None = None) -> Path:
        """Save to ``path`` (``.npz``, or ``.safetensors``) atomically, without pickle.

        Load it back with :func:`softmaxkit.load`. An object fitted on score
        columns (a calibrator, a conformal predictor) may carry
        ``class_names_``, the class of each column in order (the CLI sets it
        when the columns are named); it is saved too, so that the columns of
        another file can be matched by name. ``extra_meta`` entries (JSON
        values) are added to the saved metadata record, for the caller to read
        back with :func:`read_state` (the CLI's model digest of a calibrator);
        the file names them as the caller's, so :func:`load` lets them through
        unread (it refuses entries it does not know otherwise).
        """
        meta, arrays = self._get_state()
        names = getattr(self, "class_names_", None)
        if names is not None:
            meta = {**meta, "class_names": [str(n) for n in names]}
        if extra_meta is not None:
            _check_extra_meta(extra_meta, meta)
            meta = {**meta, **extra_meta}
        return save_state(path, kind=type(self).__name__, meta=meta, arrays=arrays, extra_meta=extra_meta or ())


def _check_extra_meta(extra_meta: Any, meta: dict[str, Any]) -> None:
    """Refuse ``save(extra_meta=...)`` entries that are no standard JSON or would replace the state's own.

    json's own errors named no argument ("Object of type object is not JSON serializable"), NaN was
    written as the non-standard token ``NaN``, and a key of the state (``classes``) silently replaced
    it in the file (audit).
    """
    if not isinstance(extra_meta, dict):
        raise TypeError(f"extra_meta must be a dict or None, got {type(extra_meta).__name__}")
    for key, value in extra_meta.items():
        if not isinstance(key, str):
            raise TypeError(f"extra_meta keys must be str, got {key!r}")
        if key in meta:
            raise ValueError(f"extra_meta key {key!r} would overwrite the saved state's own {key!r}; rename it")
        try:
            json.dumps(value, allow_nan=False)
        except ValueError as exc:  # NaN or infinity (or a circular reference)
            raise ValueError(
                f"extra_meta[{key!r}] is not standard JSON ({exc}); JSON has no NaN or infinity: write None "
                "or a string"
            ) from None
        except TypeError as exc:
            raise TypeError(f"extra_meta[{key!r}] is not a JSON value: {exc}") from None


def arrays_digest(arrays: Mapping[str, np.ndarray], *, header: bytes = b"") -> str:
    """sha256 (hex) of ``header`` and then each array's name, dtype, shape and bytes, in name order."""
    import hashlib

    digest = hashlib.sha256(header)
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def save_state(
    path: str | os.PathLike, *, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray],
    extra_meta: Iterable[str] = (),
) -> Path:
    """Write ``arrays`` and ``{"kind", "format_version", "meta"}`` to ``path`` atomically.

    ``extra_meta`` names the entries of ``meta`` that are the caller's, not the object's state; the
    record lists them (``"extra_meta"``, an empty list when there are none) for :func:`load` to let
    through. A record without the list is an earlier version's, whose caller's entries went unnamed
    (:func:`load` warns of its unknown top-level entries instead of refusing them).
    """
    if kind not in _REGISTRY:
        raise ValueError(f"{kind} is not a registered softmaxkit object kind")
    info: dict[str, Any] = {"kind": kind, "format_version": FORMAT_VERSION, "meta": meta}
    info["extra_meta"] = sorted(extra_meta)
    record = json.dumps(info)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for key, arr in arrays.items():
        if arr.dtype == object:
            raise TypeError(f"array {key!r} has dtype object, which cannot be saved without pickle")
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            save_file = import_optional("safetensors.numpy", needed_for="saving a .safetensors file").save_file
            checksum = arrays_digest(arrays, header=record.encode())
            save_file(arrays, str(tmp), metadata={_META_KEY: record, _CHECKSUM_KEY: checksum})
        else:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays, **{_META_KEY: np.frombuffer(record.encode(), dtype=np.uint8)})
    return path


def read_state(path: str | os.PathLike) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """Read ``(kind, meta, arrays)`` from a file written by :func:`save_state`.

    Raises
    ------
    ModelFileError
        Missing file, not a softmaxkit file, corrupted, a newer format, or a record entry
        that this version does not know.
    """
    kind, meta, arrays, _ = read_record(path)
    return kind, meta, arrays


def read_record(path: str | os.PathLike) -> tuple[str, dict[str, Any], dict[str, np.ndarray], list[str] | None]:
    """:func:`read_state`, and the names of the caller's ``meta`` entries (the record's ``extra_meta``;
    None for a file written before records listed them)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        if path.suffix == ".safetensors":
            safe_open = import_optional("safetensors", needed_for="loading a .safetensors file").safe_open
            with safe_open(str(path), framework="numpy") as fh:
                header = fh.metadata() or {}
                record = header.get(_META_KEY)
                arrays = {k: fh.get_tensor(k) for k in fh.keys()}
            if record is None:
                raise ModelFileError(f"{path}: not a softmaxkit model (no metadata record)")
            checksum = header.get(_CHECKSUM_KEY)  # absent in files saved before it existed: not checked
            if checksum is not None and checksum != arrays_digest(arrays, header=record.encode()):
                raise ModelFileError(f"{path}: corrupted: its contents do not match the checksum saved with them "
                                     "(the file was damaged or edited after it was saved)")
        else:
            if not zipfile.is_zipfile(path):
                raise ModelFileError(f"{path}: corrupted or not a softmaxkit model (not an .npz archive)")
            with np.load(path, allow_pickle=False) as data:
                if _META_KEY not in data.files:
                    raise ModelFileError(f"{path}: not a softmaxkit model (no metadata record)")
                arrays = {k: data[k] for k in data.files if k != _META_KEY}
                record = data[_META_KEY].tobytes().decode("utf-8")
        info = json.loads(record)
    except (ModelFileError, ImportError):  # ImportError: safetensors not installed, not a corrupted file
        raise
    except ValueError as exc:  # includes np.load's refusal of pickled object arrays
        if "pickle" in str(exc).lower():
            raise ModelFileError(
                f"{path}: refused: the file contains pickled objects, which softmaxkit never loads"
            ) from None
        raise ModelFileError(f"{path}: corrupted or not a softmaxkit model ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, UnicodeDecodeError, KeyError) as exc:
        raise ModelFileError(f"{path}: corrupted or not a softmaxkit model ({exc})") from None
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{path}: corrupted or not a softmaxkit model ({exc})") from None
    if not isinstance(info, dict) or info.get("kind") not in _REGISTRY:
        raise ModelFileError(f"{path}: unknown object kind {info.get('kind') if isinstance(info, dict) else info!r}")
    if "format_version" not in info:  # every softmaxkit wrote one (FORMAT_VERSION); a missing one loaded as 0
        raise ModelFileError(f"{path}: corrupted softmaxkit model (its record has no format_version, which every "
                             "softmaxkit writes)")
    version = info["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path}: corrupted softmaxkit model (format_version {version!r} is not a whole number)")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer softmaxkit (format {version}, this reads {FORMAT_VERSION})"
        )
    if version < 1:  # 0 and -5 loaded as the current format (audit BN)
        raise ModelFileError(f"{path}: corrupted softmaxkit model (format_version {version} is not one softmaxkit "
                             f"writes: its formats are 1 to {FORMAT_VERSION})")
    # After the version: a newer format's own entries are reported as a newer format.
    _refuse_unknown(path, info["kind"], ("record entry", "record entries"), set(info) - set(_RECORD_KEYS))
    meta = info.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelFileError(
            f"{path}: corrupted {info['kind']} state (its meta record is a {type(meta).__name__}, not an object)"
        )
    extra = info.get("extra_meta")
    if extra is not None and not (isinstance(extra, list) and all(isinstance(k, str) for k in extra)):
        raise ModelFileError(f"{path}: corrupted {info['kind']} state (extra_meta is {extra!r}, not a list of "
                             "entry names)")
    return info["kind"], meta, arrays, extra


#: What a ``_from_state`` raises for a state that does not fit its class (a missing
#: entry, a value of the wrong type or shape); :func:`invalid_state` reports them.
STATE_ERRORS = (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError)


def invalid_state(path: str | os.PathLike, kind: str, exc: BaseException) -> ModelFileError:
    """The :class:`ModelFileError` for ``exc``, one of :data:`STATE_ERRORS` raised while reading
    the ``kind`` state of ``path``: damaged, hand-edited, or from a softmaxkit that wrote what this
    one does not read. (The CLI's ``predict`` reports its own model checks through it too.)"""
    return ModelFileError(f"{path}: corrupted {kind} state ({state_error_detail(exc)})")


def state_error_detail(exc: BaseException) -> str:
    """The message of one of :data:`STATE_ERRORS` (a KeyError's is only the missing key).

    A parameter this version does not know (``__init__() got an unexpected keyword argument 'x'``) is
    most likely a file of a newer softmaxkit, whose records gain options without a new format number:
    said so, with what to do, rather than left as Python's words (audit AX)."""
    if isinstance(exc, KeyError):
        return f"missing entry {exc}"
    unknown = re.search(r"unexpected keyword argument '([^']+)'", str(exc)) if isinstance(exc, TypeError) else None
    if unknown:
        return (f"parameter {unknown.group(1)!r} is unknown to this softmaxkit: the file is probably from a newer "
                "version; upgrade softmaxkit to read it")
    return str(exc)


def load(path: str | os.PathLike) -> Any:
    """Load any saved softmaxkit object (classifier, calibrator), never via pickle.

    A file holding an array or a metadata entry that the loaded object would
    not save is refused (:class:`ModelFileError` naming it): this version
    would ignore it, so a file of a later softmaxkit that adds arrays or
    entries, or an edited one, would load as something other than what it
    holds. Files of earlier versions lack entries, and load. Let through: the
    ``class_names`` that :meth:`Persistable.save` adds, and the entries saved
    with ``save(extra_meta=...)``, which the file names as the caller's.

    Examples
    --------
    >>> import softmaxkit as sk  # doctest: +SKIP
    >>> model = sk.load("model.npz")  # doctest: +SKIP
    """
    kind, meta, arrays, extra = read_record(path)
    module_name, cls_name = _REGISTRY[kind].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    try:
        obj = cls._from_state(meta, arrays)
        if "class_names" in meta:
            obj.class_names_ = _class_names(meta["class_names"], getattr(obj, "n_classes_", None))
        # What the object itself saves is, for every kind and its optional arrays (alpha_path, ...) and
        # entries, exactly what its _from_state reads: one source of truth, no per-class list to keep in step.
        own_meta, own_arrays = obj._get_state()
    except STATE_ERRORS as exc:
        raise invalid_state(path, kind, exc) from None
    # An extra array (mean_) loaded silently, ignored (audit): a later version adding arrays under
    # format_version 1 would have been read wrongly, without a word.
    _refuse_unknown(path, kind, ("array", "arrays"), set(arrays) - set(own_arrays))
    # So did an extra metadata entry, at the top (output_scale) or nested (a calibrator's fitted.bias_,
    # a pair's estimator), audit BN.
    refuse_unknown_meta(path, kind, meta, own_meta, extra=extra)
    return obj


def refuse_unknown_meta(path: str | os.PathLike, kind: str, meta: dict[str, Any], own_meta: dict[str, Any], *,
                        extra: list[str] | None) -> None:
    """Raise :class:`ModelFileError` naming the entries of a file's ``meta`` (nested ones by path) that
    ``own_meta``, what the loaded object saves, lacks; the ``class_names`` that :meth:`Persistable.save`
    adds and the caller's ``extra`` entries (:func:`read_record`) are let through. A file written before
    records listed the caller's entries (``extra`` None) gets a warning for its unknown top-level entries
    instead, since they may be the caller's own.

    ``own_meta`` needs only the entries (values are not compared): a record of Nones serves where the
    object itself is not built (the CLI's :func:`softmaxkit.cli._adapters.load_model`).
    """
    # class_names and the caller's entries are load's and the caller's.
    allowed = dict.fromkeys(["class_names", *(extra or ()), *_EXTRA_META_BEFORE_THE_LIST])
    unknown = _unknown_entries(meta, {**allowed, **own_meta})
    if extra is None:
        # A file of an earlier version, whose save(extra_meta=...) entries went unnamed at the top of meta:
        # those are warned of, not refused (a user's own entries must not lock them out of their model).
        # Nested entries were never the caller's: refused as in any file.
        top = [name for name in unknown if name in meta]
        if top:
            import warnings

            warnings.warn(f"{path}: {kind} file holds metadata entr{'ies' if len(top) > 1 else 'y'} "
                          f"{', '.join(map(repr, sorted(top)))} that this softmaxkit does not read, ignored: a file "
                          "saved before files named the caller's save(extra_meta=...) entries, where such an "
                          "entry is the caller's own (read it with softmaxkit.io.read_state); if it is not, the "
                          "file was edited", stacklevel=3)
        unknown = [name for name in unknown if name not in meta]
    _refuse_unknown(path, kind, ("metadata entry", "metadata entries"), unknown)


def _refuse_unknown(path: str | os.PathLike, kind: str, what: tuple[str, str], unknown: Any) -> None:
    """Raise :class:`ModelFileError` naming the ``unknown`` (array names, entries) of ``path`` that this
    version does not read, if there are any; ``what`` says what they are, in the singular and plural."""
    if not unknown:
        return
    names = sorted(unknown)
    plural = len(names) > 1
    raise ModelFileError(
        f"{path}: {kind} file holds unknown {what[plural]} {', '.join(map(repr, names))}, which this softmaxkit does "
        f"not read (a file of a newer softmaxkit, or an edited one); refused rather than loaded without "
        f"{'them' if plural else 'it'}"
    )


def _unknown_entries(saved: Any, own: Any, where: str = "") -> list[str]:
    """The entries of the saved metadata ``saved`` that ``own``, what the loaded object writes, lacks.

    Named by path (``pairs[0].calibrator.fitted.bias_``). Records that both hold are compared entry by
    entry, and lists of one length item by item (a CalibratedClassifier's pairs); values themselves are
    its ``_from_state``'s to check.
    """
    if isinstance(saved, dict) and isinstance(own, dict):
        found = []
        for key, value in saved.items():
            name = f"{where}.{key}" if where else str(key)
            found += [name] if key not in own else _unknown_entries(value, own[key], name)
        return found
    if isinstance(saved, list) and isinstance(own, list) and len(saved) == len(own):
        return [e for i, (s, o) in enumerate(zip(saved, own)) for e in _unknown_entries(s, o, f"{where}[{i}]")]
    return []


def _class_names(names: Any, n_classes: int | None) -> list[str]:
    """A saved ``class_names`` record, checked: distinct strings, one per class."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ValueError("class_names must be distinct strings")
    if n_classes is not None and len(names) != n_classes:
        raise ValueError(f"{len(names)} class_names for {n_classes} classes")
    return names
