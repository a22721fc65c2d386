"""numba's disk cache and the two compilations (parallel and serial) of each conformal kernel.

numba keys a cached compilation by the function's qualified name, source line, signature and
bytecode, not by its options: two dispatchers of one Python function, one ``parallel=True``, share
one cache entry, and whichever compiled first is what the other loads, in that process and in every
later one. The serial kernel for small inputs then ran the parallel code (starting numba's thread
pool, which ends a process forked later), or the parallel kernel ran serially.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

numba = pytest.importorskip("numba")

from softmaxkit import kernels  # noqa: E402
from softmaxkit.kernels import calibration as calibration_kernels  # noqa: E402
from softmaxkit.kernels import conformal as conformal_kernels  # noqa: E402

# Calls the named compilations of the row check in order, on a 4 x 4 input, and says for each
# whether it came from the disk cache and whether the call started numba's thread pool (only
# the parallel code does; numba.threading_layer() raises until the pool has started).
_PROBE = """
import json, sys
import numba, numpy as np
from softmaxkit.kernels import conformal

def pool_started():
    try:
        numba.threading_layer()
    except ValueError:
        return False
    return True

p = np.full((4, 4), 0.25)
args = (p, p.view(np.uint64), np.uint64(0x3FF0000000000000))
parallel, serial = conformal._KERNELS["row_checks"]
out = {}
for name in sys.argv[1:]:
    kernel = {"parallel": parallel, "serial": serial}[name]
    before = pool_started()
    kernel(*args)
    out[name] = {"loaded": bool(kernel.stats.cache_hits), "started_threads": pool_started() and not before}
print(json.dumps(out))
"""


def _probe(cache_dir, *names):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", _PROBE, *names], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_parallel_and_serial_compilations_have_their_own_disk_cache_entries(tmp_path):
    # a fresh cache: the parallel kernel compiles and is saved first, then the serial one
    first = _probe(tmp_path, "parallel", "serial")
    assert first["parallel"] == {"loaded": False, "started_threads": True}
    assert first["serial"]["loaded"] is False, "the serial kernel loaded the parallel kernel's cache entry"
    # a new process loads each from the cache: the serial one must still be serial and vice versa
    second = _probe(tmp_path, "serial", "parallel")
    assert second["serial"] == {"loaded": True, "started_threads": False}
    assert second["parallel"] == {"loaded": True, "started_threads": True}


def _index_path(dispatcher):
    cache = getattr(dispatcher._cache, "_cache_file", None)  # numba's NullCache (not cached) has none
    return None if cache is None else cache._index_path


@pytest.mark.parametrize("name", sorted(conformal_kernels._KERNELS))
def test_every_conformal_kernel_pair_is_cached_under_two_names(name):
    parallel, serial = conformal_kernels._KERNELS[name]
    assert parallel.targetoptions.get("parallel") is True and "parallel" not in serial.targetoptions
    assert None not in (_index_path(parallel), _index_path(serial))
    assert _index_path(parallel) != _index_path(serial)


def test_a_forked_child_gets_the_cached_serial_twin(monkeypatch):
    monkeypatch.setattr(kernels, "_FORKED_FROM_THREADS", True)
    # the conformal kernels: the same serial compilation as for small inputs, whatever the size
    parallel, serial = conformal_kernels._KERNELS["lac_sets"]
    assert conformal_kernels.pick("lac_sets", 1 << 30) is serial
    # the other parallel kernels: a serial twin, cached under its own name like the parallel kernel
    kernel = calibration_kernels.runner_up_and_min
    twin = kernels.fork_safe(kernel)
    assert twin is not kernel and "parallel" not in twin.targetoptions
    assert twin.targetoptions["nogil"] is True and kernels.fork_safe(kernel) is twin
    assert None not in (_index_path(kernel), _index_path(twin)) and _index_path(kernel) != _index_path(twin)
