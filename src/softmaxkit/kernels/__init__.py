"""Kernels: the math, with no validation and no policy.

:mod:`softmaxkit.kernels.reference` is the portable NumPy backend;
:mod:`softmaxkit.kernels.cpu` holds the multi-threaded numba kernels. Both
implement the same functions with the same contract (documented at the top of
``reference.py``); :func:`select` picks one per call, so the public ops in
:mod:`softmaxkit.functional` never change when a kernel is added.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import threading
from types import FunctionType, ModuleType
from typing import Any, Iterator

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


#: True in a forked child, unless numba's thread pool runs on TBB. A child forked from a process
#: whose GNU OpenMP runtime had started threads cannot use it: numba's ``omp`` layer ends it with
#: SIGTERM ("Terminating: fork() called from a process already using GNU OpenMP") when it enters a
#: parallel region, even on one thread, where numba's own pool had started (a ``multiprocessing.Pool``
#: or ``DataLoader`` worker calling ``cross_entropy`` died, and the Pool waited forever: audit), and
#: hangs there for good where another library had started the runtime: torch's intra-op threads are
#: the same libgomp (audit CG: a distillation ``Dataset`` calling ``sk.softmax`` in ``DataLoader``
#: workers hung at its second epoch after one torch op in the parent). Which library started it
#: cannot be seen from the child, so every forked child keeps to code without parallel regions:
#: the NumPy reference and serial compilations (:func:`fork_safe`), results within rounding of the
#: parallel kernels'. Its siblings run beside it, so threads would oversubscribe the cores anyway.
_FORKED_FROM_THREADS = False


def _note_fork() -> None:
    global _FORKED_FROM_THREADS
    pool = sys.modules.get("numba.np.ufunc.parallel")
    on_tbb = pool is not None and getattr(pool, "_is_initialized", False) and getattr(pool, "_threading_layer", None) == "tbb"
    _FORKED_FROM_THREADS = not on_tbb


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)


def parallel_regions_allowed() -> bool:
    """False in a process forked after numba's (not fork-safe) threads started; see :data:`_FORKED_FROM_THREADS`."""
    return not _FORKED_FROM_THREADS


_serial_twins: dict[Any, Any] = {}


def serial_twin(kernel: Any) -> Any:
    """The serial compilation of ``kernel``'s body (a ``parallel=True`` numba dispatcher), one per kernel.

    Same options but ``parallel`` (``prange`` runs as ``range``; the results are the same), and
    cached on disk when ``kernel`` is, under its own name: numba keys a cache entry by the
    function's qualified name and source line, not by its options, so a compilation of the same
    function object would share the parallel one's entry and load whichever was saved first (the
    serial kernel then ran the parallel code, or the reverse). The twin compiles a copy of the
    function named ``<qualname>.serial``.
    """
    twin = _serial_twins.get(kernel)
    if twin is None:
        import numba
        from numba.core.caching import NullCache

        fn = kernel.py_func
        body = FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        body.__qualname__ = f"{fn.__qualname__}.serial"
        body.__kwdefaults__ = fn.__kwdefaults__
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
        options["cache"] = not isinstance(kernel._cache, NullCache)
        twin = _serial_twins[kernel] = numba.njit(**options)(body)
    return twin


#: Whether calls of ``parallel=True`` kernels must take :data:`_PARALLEL_LOCK`: True under numba's
#: ``workqueue`` threading layer, False under ``omp``/``tbb``, None until numba has picked its layer
#: (when a parallel region first runs; ``numba.threading_layer()`` raises before that).
_SERIALISE_PARALLEL: bool | None = None
_PARALLEL_LOCK = threading.Lock()


def run_parallel(kernel: Any, *args: Any) -> Any:
    """``kernel(*args)`` for a ``parallel=True`` numba kernel, one call at a time where numba's
    threading layer is ``workqueue``.

    ``workqueue`` (numba's fallback without OpenMP or TBB, or ``NUMBA_THREADING_LAYER=workqueue``)
    is not thread-safe: two Python threads calling ``softmax`` at once aborted the process (SIGABRT,
    "Concurrent access has been detected"; audit). Calls hold a lock until the layer is known, and
    then only under ``workqueue``; under ``omp``/``tbb`` the cost is one global read, and where torch
    is imported, a read of its thread count before and after.
    """
    with torch_threads_kept():
        if _SERIALISE_PARALLEL is False:
            return kernel(*args)
        with _PARALLEL_LOCK:
            try:
                return kernel(*args)
            finally:
                _learn_threading_layer()


@contextlib.contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Put torch's intra-op thread count back after numba's thread pool is touched, where torch is imported.

    Starting numba's OpenMP pool (``numba.get_num_threads()``, or loading a parallel kernel) sets the
    calling thread's OpenMP thread count, which torch's intra-op pool reads too (one GNU libgomp):
    ``torch.set_num_threads(1)`` became ``NUMBA_NUM_THREADS`` after the first large softmax (audit CG).
    numba's regions keep their own count. Costs two reads of torch's count.
    """
    before = _torch_threads()
    try:
        yield
    finally:
        if before is not None and _torch_threads() != before:
            sys.modules["torch"].set_num_threads(before)


def _torch_threads() -> int | None:
    """torch's intra-op thread count where torch is imported (never imported here); None otherwise."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None


def _learn_threading_layer() -> None:
    global _SERIALISE_PARALLEL
    if _SERIALISE_PARALLEL is not None:
        return
    import numba  # imported already: the caller ran a numba kernel

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region ran yet (a serial twin, or the kernel raised first)
        return
    _SERIALISE_PARALLEL = layer == "workqueue"


_serialised: dict[Any, Any] = {}


def serialised(kernel: Any) -> Any:
    """``kernel`` (a ``parallel=True`` numba dispatcher) as a function that calls it through
    :func:`run_parallel`; one per kernel."""
    wrapper = _serialised.get(kernel)
    if wrapper is None:
        wrapper = _serialised[kernel] = functools.partial(run_parallel, kernel)
    return wrapper


#: Below this many elements a ``parallel=True`` kernel runs as its :func:`serial_twin`
#: (:func:`fork_safe` with ``n_elements``): a pass over them takes tens of microseconds, less than
#: starting the thread pool's region, and on a loaded machine each region waits for a worker that gets
#: no CPU time (audit CD: temperature scaling's ~25 calls on 1797 x 10 logits took 164 ms for
#: scikit-learn's 17.5 ms under load, 11.2 ms with one thread).
PARALLEL_MIN_ELEMENTS = 1 << 16


def fork_safe(kernel: Any, *, n_elements: int | None = None) -> Any:
    """``kernel`` (a ``parallel=True`` numba dispatcher, :func:`serialised`), or its :func:`serial_twin`
    where parallel regions are not allowed (:func:`parallel_regions_allowed`) or the call's
    ``n_elements`` are fewer than :data:`PARALLEL_MIN_ELEMENTS`."""
    small = n_elements is not None and n_elements < PARALLEL_MIN_ELEMENTS
    return serialised(kernel) if parallel_regions_allowed() and not small else serial_twin(kernel)


def select(n_elements: int) -> ModuleType:
    """The kernel module to use for an input of ``n_elements`` logits.

    The numba kernels (imported, not compiled, on first use) for inputs of at
    least :data:`CPU_MIN_ELEMENTS` logits; the NumPy reference for smaller
    inputs, when numba cannot be imported, or in a process forked after
    numba's threads started (:func:`parallel_regions_allowed`).
    """
    if n_elements >= CPU_MIN_ELEMENTS and parallel_regions_allowed():
        cpu = _load_cpu()
        if cpu is not None:
            return cpu
    return reference
