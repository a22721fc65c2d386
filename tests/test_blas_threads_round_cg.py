"""Fits running in several threads leave the process's BLAS thread counts as they found them.

A BLAS library's thread count is one number for the whole process. Audit CG
(F2): after 4-8 fits overlapping in threads, OpenBLAS stayed at one thread,
slowing every later NumPy product, because each fit restored the count it had
found on entering, which could be another fit's limit of 1.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

import softmaxkit as sk


def _blas_controllers():
    import scipy.optimize  # noqa: F401  (loads SciPy's BLAS)

    return [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers if lib.user_api == "blas"]


def _set_from_this_thread(lib, n_threads):
    lib.set_num_threads(n_threads)
    release = getattr(type(lib), "clear_controlling_thread", None)
    if release is not None:
        release()


@pytest.fixture
def two_blas_threads():
    """Every BLAS at 2 threads during the test (a count of 1 could not show a leak)."""
    libs = _blas_controllers()
    if not libs:
        pytest.skip("no BLAS that threadpoolctl can control")
    found = [lib.num_threads for lib in libs]
    for lib in libs:
        _set_from_this_thread(lib, 2)
    if any(lib.num_threads != 2 for lib in libs):
        pytest.skip("this BLAS does not take a thread count of 2")
    yield libs
    for lib, n_threads in zip(libs, found):
        _set_from_this_thread(lib, n_threads)


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y = (X[:, 0] + X[:, 1] + rng.normal(size=300) > 0).astype(int) + (X[:, 2] > 1)
    return X, y


def test_fits_in_threads_leave_blas_thread_counts_as_found(two_blas_threads):
    X, y = _data()
    barrier = threading.Barrier(4)

    def fit(seed):
        barrier.wait()  # start together, so the fits' thread limits overlap
        return sk.SoftmaxClassifier(alpha="auto", random_state=seed).fit(X, y).alpha_

    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(fit, range(4)))
    assert [lib.num_threads for lib in two_blas_threads] == [2] * len(two_blas_threads)


def test_a_fit_in_a_worker_thread_after_one_in_the_main_thread_limits_blas(two_blas_threads, monkeypatch):
    """threadpoolctl lets one thread at a time set a shared OpenBLAS pool: a fit in the
    main thread must let go of it, or fits in workers run their L-BFGS-B updates on
    two BLAS threads (4x slower on a busy machine). A guard: threadpoolctl's own contexts
    let go on exit; the first draft of the counted limit did not."""
    import scipy.optimize

    X, y = _data()
    sk.SoftmaxClassifier(alpha=1.0).fit(X, y)
    seen = []
    original = scipy.optimize.minimize

    def spy(*args, **kwargs):
        seen.append([lib.num_threads for lib in two_blas_threads])
        return original(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", spy)  # softmaxkit imports it at each fit
    worker = threading.Thread(target=lambda: sk.SoftmaxClassifier(alpha=1.0).fit(X, y))
    worker.start()
    worker.join()
    assert seen, "the fit did not reach L-BFGS-B"
    assert all(counts == [1] * len(counts) for counts in seen)


def test_a_fit_inside_the_users_limit_leaves_the_user_in_control(two_blas_threads):
    """Review R25: a fit inside the user's ``threadpool_limits`` block let go of the user's control of
    the pool, so another thread's limit then changed the count under the user's block."""
    X, y = _data()
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        if [lib.num_threads for lib in two_blas_threads] != [3] * len(two_blas_threads):
            pytest.skip("this BLAS does not take a thread count of 3")
        sk.SoftmaxClassifier(alpha=1.0).fit(X, y)
        other = threading.Thread(target=lambda: threadpoolctl.threadpool_limits(limits=1, user_api="blas"))
        other.start()
        other.join()
        inside = [lib.num_threads for lib in two_blas_threads]
    assert inside == [3] * len(two_blas_threads)
    assert [lib.num_threads for lib in two_blas_threads] == [2] * len(two_blas_threads)
