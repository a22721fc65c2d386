"""Persistence without pickle, and atomic file writes.

Every saved softmaxkit object (classifier, calibrator) is one ``.npz`` file
(or ``.safetensors`` when that extension is asked for and the ``io`` extra is
installed) holding named NumPy arrays plus a JSON metadata record. Loading
uses ``np.load(allow_pickle=False)`` and ``json``, so a crafted file can at
worst fail to load: it can never run code.

A class takes part by subclassing :class:`Persistable` and implementing
``_get_state`` / ``_from_state``, and by having its ``kind`` listed in
:data:`_REGISTRY` (a name -> "module:Class" table, so loading imports only the
class it needs and the registry has no import cycles).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FORMAT_VERSION = 1
_META_KEY = "__softmaxkit_metadata__"

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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    A crash or exception leaves any existing ``path`` untouched and removes the
    temporary file. ``inputs`` are files this command reads: writing onto one
    of them raises ``ValueError`` instead of destroying the user's data.
    """
    target = Path(path)
    for inp in inputs:
        if Path(inp).exists() and target.exists() and target.resolve() == Path(inp).resolve():
            raise ValueError(f"refusing to overwrite the input file {inp}; choose another output path")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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

    def save(self, path: str | os.PathLike) -> Path:
        """Save to ``path`` (``.npz``, or ``.safetensors``) atomically, without pickle.

        Load it back with :func:`softmaxkit.load`.
        """
        meta, arrays = self._get_state()
        return save_state(path, kind=type(self).__name__, meta=meta, arrays=arrays)


def save_state(
    path: str | os.PathLike, *, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Path:
    """Write ``arrays`` and ``{"kind", "format_version", "meta"}`` to ``path`` atomically."""
    if kind not in _REGISTRY:
        raise ValueError(f"{kind} is not a registered softmaxkit object kind")
    record = json.dumps({"kind": kind, "format_version": FORMAT_VERSION, "meta": meta})
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for key, arr in arrays.items():
        if arr.dtype == object:
            raise TypeError(f"array {key!r} has dtype object, which cannot be saved without pickle")
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.numpy import save_file

            save_file(arrays, str(tmp), metadata={_META_KEY: record})
        else:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays, **{_META_KEY: np.frombuffer(record.encode(), dtype=np.uint8)})
    return path


def read_state(path: str | os.PathLike) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """Read ``(kind, meta, arrays)`` from a file written by :func:`save_state`.

    Raises
    ------
    ModelFileError
        Missing file, not a softmaxkit file, corrupted, or a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as fh:
                record = (fh.metadata() or {}).get(_META_KEY)
                arrays = {k: fh.get_tensor(k) for k in fh.keys()}
            if record is None:
                raise ModelFileError(f"{path}: not a softmaxkit model (no metadata record)")
        else:
            if not zipfile.is_zipfile(path):
                raise ModelFileError(f"{path}: corrupted or not a softmaxkit model (not an .npz archive)")
            with np.load(path, allow_pickle=False) as data:
                if _META_KEY not in data.files:
                    raise ModelFileError(f"{path}: not a softmaxkit model (no metadata record)")
                arrays = {k: data[k] for k in data.files if k != _META_KEY}
                record = data[_META_KEY].tobytes().decode("utf-8")
        info = json.loads(record)
    except ModelFileError:
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
    if int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer softmaxkit (format {info['format_version']}, this reads {FORMAT_VERSION})"
        )
    return info["kind"], info.get("meta", {}), arrays


def load(path: str | os.PathLike) -> Any:
    """Load any saved softmaxkit object (classifier, calibrator), never via pickle.

    Examples
    --------
    >>> import softmaxkit as sk  # doctest: +SKIP
    >>> model = sk.load("model.npz")  # doctest: +SKIP
    """
    kind, meta, arrays = read_state(path)
    module_name, cls_name = _REGISTRY[kind].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    try:
        return cls._from_state(meta, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupted {kind} state ({exc})") from None
