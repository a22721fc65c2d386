"""One BLAS thread while a fit runs, safe when fits run in several threads at once.

Small fits run faster with BLAS on one thread (see
:func:`softmaxkit._optim._small_products_single_thread`), but a BLAS library's
thread count is one number for the whole process. threadpoolctl's
``limit`` context records the count when it is entered and puts that back
when it exits, so two fits overlapping in threads undo each other: the
second records the first's 1 and restores it after the first has restored
the user's 2, leaving every later NumPy product in the process on one
thread (audit CG: 6 threads fitting 12 models left OpenBLAS at 1 thread).

Here each library is held by a count under one lock: the first fit to
enter records the user's count and sets 1, the last to leave puts the
user's count back, whatever order the fits end in. The user's own limits
are left alone: a hold whose 1 did not take (another thread controls the
pool, below) is not counted, and the count is put back only if the
library still reads the 1 that the hold set.

threadpoolctl (3.8 and later) lets only one thread at a time set a shared
OpenBLAS pool, the "controlling thread", and ignores the others silently
until that thread lets go; :func:`_set_threads` lets go after each change
it made as the new controller, as threadpoolctl's own contexts do on exit,
and keeps a control the thread held before (a fit inside the user's
``threadpool_limits`` block). Without letting go, the first fit in the
main thread kept control, and fits in worker threads ran L-BFGS-B's vector
updates on two BLAS threads (a 569 x 30 fit 4x slower). That threadpoolctl
also sets an OpenBLAS built on OpenMP through OpenMP, whose limit is per
calling thread, so there each thread holds its own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

_lock = threading.Lock()
# a held library (see _hold_key) -> [fits holding it, the thread count to put back]
_held: dict[Any, list[int]] = {}


@functools.lru_cache(maxsize=1)
def _threadpool_controller() -> Any:
    """threadpoolctl's handle on every loaded thread pool.

    Cached: scanning the loaded libraries takes milliseconds, as long as a
    small fit.
    """
    import scipy.optimize  # noqa: F401  (loads SciPy's BLAS, so the scan can find it)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_libraries() -> list[Any]:
    """Every loaded BLAS (NumPy's and SciPy's, which may be two libraries)."""
    return [lib for lib in _threadpool_controller().lib_controllers if lib.user_api == "blas"]


def scipy_blas_libraries() -> list[Any]:
    """The BLAS bundled in ``scipy.libs`` (empty if SciPy uses NumPy's or a system one)."""
    import scipy

    scipy_libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    return [lib for lib in _threadpool_controller().lib_controllers if lib.filepath.startswith(scipy_libs)]


def _hold_key(lib: Any) -> Any:
    """What one hold covers: the process, or only this thread (OpenBLAS on OpenMP, set per thread by the
    threadpoolctl that has controlling threads; older ones set it process-wide)."""
    per_thread = (getattr(lib, "internal_api", None) == "openblas" and getattr(lib, "threading_layer", None) == "openmp"
                  and _release(lib) is not None)
    return (lib.filepath, threading.get_ident()) if per_thread else lib.filepath


def _release(lib: Any) -> Any:
    """threadpoolctl's ``clear_controlling_thread`` of ``lib``'s pool (None before threadpoolctl 3.8)."""
    return getattr(type(lib), "clear_controlling_thread", None)


def _set_threads(lib: Any, n_threads: int) -> bool:
    """Set ``lib``'s thread count; whether it took (another thread's control makes threadpoolctl ignore it)."""
    release = _release(lib)
    # threadpoolctl's (private) record of the controlling thread: if it goes, every change lets go
    state = getattr(type(lib), "_SHARED_STATE", None)
    held_before = getattr(state, "controlling_thread", None) is threading.current_thread()
    lib.set_num_threads(n_threads)
    if release is not None and not held_before:
        # Let other threads' holds set the pool later (see the module docstring): a no-op unless
        # this call made this thread the controller.
        release()
    return lib.num_threads == n_threads


@contextlib.contextmanager
def one_thread(libraries: Sequence[Any]) -> Iterator[None]:
    """Run ``libraries`` (threadpoolctl library controllers) on one thread inside the block.

    Re-entrant and safe across threads: the count found when the first
    holder entered is restored when the last holder leaves, if the library
    still reads 1 then (the user may have set it meanwhile).
    """
    held = []  # (lib, key) of the holds this block counts
    with _lock:
        for lib in libraries:
            key = _hold_key(lib)
            entry = _held.get(key)
            if entry is not None:
                entry[0] += 1
                held.append((lib, key))
                continue
            found = lib.num_threads
            if found == 1 or _set_threads(lib, 1):
                _held[key] = [1, found]
                held.append((lib, key))
    try:
        yield
    finally:
        with _lock:
            for lib, key in held:
                entry = _held[key]
                entry[0] -= 1
                if entry[0] == 0:
                    del _held[key]
                    if entry[1] != 1 and lib.num_threads == 1:
                        _set_threads(lib, entry[1])
