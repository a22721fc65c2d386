"""Kernels: the math, with no validation and no policy.

:mod:`softmaxkit.kernels.reference` is the portable NumPy backend;
:mod:`softmaxkit.kernels.cpu` holds the multi-threaded numba kernels. Both
implement the same functions with the same contract (documented at the top of
``reference.py``); :func:`select` picks one per call, so the public ops in
:mod:`softmaxkit.functional` never change when a kernel is added.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from softmaxkit.kernels import reference

#: Inputs with at least this many logits go to the numba kernels. Below it a
#: call is microseconds in NumPy anyway, and a small array never waits for the
#: first-call JIT. (Tests monkeypatch this to force either backend.)
CPU_MIN_ELEMENTS = 1 << 15

_cpu: ModuleType | None = None
_cpu_failed = False


def _load_cpu() -> ModuleType | None:
    """Import :mod:`softmaxkit.kernels.cpu` once; ``None`` if numba is unusable."""
    global _cpu, _cpu_failed
    if _cpu is None and not _cpu_failed:
        try:
            _cpu = importlib.import_module("softmaxkit.kernels.cpu")
        except ImportError:  # numba missing or broken: the reference still works
            _cpu_failed = True
    return _cpu


def select(n_elements: int) -> ModuleType:
    """The kernel module to use for an input of ``n_elements`` logits.

    The numba kernels (imported, not compiled, on first use) for inputs of at
    least :data:`CPU_MIN_ELEMENTS` logits; the NumPy reference for smaller
    inputs, or when numba cannot be imported.
    """
    if n_elements >= CPU_MIN_ELEMENTS:
        cpu = _load_cpu()
        if cpu is not None:
            return cpu
    return reference
