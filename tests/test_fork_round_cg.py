"""Audit CG: softmaxkit beside torch's OpenMP threads.

1. A child forked after the parent ran a multi-threaded torch op hung for good in its first parallel
   numba region (torch's intra-op pool and numba's ``omp`` layer share GNU libgomp): a distillation
   ``Dataset`` calling ``sk.softmax`` in ``DataLoader`` workers hung at its second epoch. Every forked
   child now keeps to code without parallel regions (``softmaxkit.kernels._note_fork``).
2. The first large kernel call started numba's OpenMP pool, which set torch's thread count:
   ``torch.set_num_threads(1)`` became ``NUMBA_NUM_THREADS``. It is put back.

Each case runs in a fresh interpreter (a forked pytest worker would carry the suite's own threads),
with two threads for both libraries, as on a 2-core machine by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

ENV = {**os.environ, "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}


def _run(script: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=ENV, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script hung for {timeout} s")


def test_a_fork_pool_after_a_torch_op_runs_the_kernels():
    done = _run(
        """
        import multiprocessing as mp
        import numpy as np, torch
        import softmaxkit as sk

        x = np.random.default_rng(0).normal(size=(1000, 100))
        torch.set_num_threads(2)
        torch.ones(512, 512) @ torch.ones(512, 512)  # torch's OpenMP threads start
        with mp.get_context("fork").Pool(1) as pool:  # before any softmaxkit kernel ran in the parent
            got = pool.apply_async(sk.softmax, (x,)).get(timeout=60)
        want = sk.softmax(x)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)  # within rounding of the parallel kernel
        print("ok")
        """,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_first_parallel_kernel_call_keeps_torchs_thread_count():
    done = _run(
        """
        import numpy as np, torch
        import softmaxkit as sk

        torch.set_num_threads(1)
        torch.ones(256, 256) @ torch.ones(256, 256)
        sk.softmax(np.random.default_rng(0).normal(size=(1000, 100)))  # 100,000 logits: a parallel region
        sk.cross_entropy(np.random.default_rng(1).normal(size=(1000, 100)), np.zeros(1000, dtype=np.int64))
        print(torch.get_num_threads())
        """,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"
