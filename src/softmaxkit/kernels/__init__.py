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

#: Inputs with at least this many logits go to the numba kernels.
#:
#: Measured (cross_entropy_2d with gradient, median per call, warm JIT cache,
#: shared 2-core Xeon under load, numba on the calling thread as it runs below
#: ``cpu.PARALLEL_MIN_ELEMENTS``): 2x3 NumPy 127 us / numba 9 us; 569x2 302 /
#: 84; 200x10 234 / 40; 200x50 float32 297 / 54; 500x50 501 / 121; 1000x100
#: 3510 / 324. numba wins at every size once loaded, but the first numba call
#: in a process imports numba and loads the cached kernels, about 2.4 s: that
#: is the "JIT pause" a toy array must not wait for. At 1024 elements the
#: saving is already ~200 us per call, so a loop over such arrays (L-BFGS on a
#: 569x2 problem, Adam on 200-row batches) recovers the one-time load quickly,
#: while one-off calls on small arrays stay on NumPy. (Tests monkeypatch this
#: to force either backend.)
CPU_MIN_ELEMENTS = 1 << 10

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
