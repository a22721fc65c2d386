"""Optional dependencies: which extra installs each, and imports that say so when it is missing.

softmaxkit's core needs numpy, scipy, numba, scikit-learn and rich; torch, matplotlib, pyarrow and
safetensors come with the extras ``[torch]``, ``[plot]`` and ``[io]`` (``pyproject.toml``). A bare
``ModuleNotFoundError: No module named 'matplotlib'`` from inside a library call does not say which
extra brings it (audit CI: ``ReliabilityDiagram(...).plot()``, ``save("m.safetensors")``); the CLI
says it for every command (``softmaxkit.cli._missing_dependency``), from the same table.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that installs each optional package (by its top-level import name).
EXTRAS = {"matplotlib": "plot", "pyarrow": "io", "safetensors": "io", "torch": "torch"}


def install_hint(package: str) -> str:
    """``pip install 'softmaxkit[extra]'`` for an optional ``package`` (a top-level import name)."""
    return f"pip install 'softmaxkit[{EXTRAS[package]}]'"


def import_optional(name: str, *, needed_for: str) -> ModuleType:
    """Import ``name`` (a module of an optional package), or raise ModuleNotFoundError naming the extra.

    Parameters
    ----------
    name : str
        Dotted module name, e.g. ``"matplotlib.pyplot"``; its top-level package must be in :data:`EXTRAS`.
    needed_for : str
        What needs it, for the message (``"drawing a reliability diagram"``).

    Raises
    ------
    ModuleNotFoundError
        The package is not installed: "``needed_for`` needs matplotlib, which is not installed: pip install
        'softmaxkit[plot]'", with ``.name`` the missing module, as Python's own (so the CLI's handler still
        recognises it). A module missing *inside* an installed package is Python's error, unchanged.
    """
    package = name.split(".")[0]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not _missing(package):
            raise  # the package is there: a module missing inside it is a broken install, Python's words
        raise ModuleNotFoundError(
            f"{needed_for} needs {package}, which is not installed: {install_hint(package)}", name=exc.name
        ) from None


def _missing(package: str) -> bool:
    """Whether the top-level ``package`` cannot be imported at all."""
    try:
        importlib.import_module(package)
    except ModuleNotFoundError:
        return True
    return False
