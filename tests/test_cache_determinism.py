"""A process that JIT-compiles the numba kernels and one that loads them from the disk cache
must give the same bits (audit: callees were linked as weak copies, re-optimised under reassoc)."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

_CHILD = r"""
import sys, numba, numpy as np, softmaxkit as sk
numba.set_num_threads(1)
rng = np.random.default_rng(0)
x = (rng.standard_normal((64, 1000)) * 5).astype(np.float32)
y = rng.integers(0, 1000, 64)
loss, grad = sk.cross_entropy_and_grad(x, y)
# fused-Adam (its penalty sum) and the conformal row check: fast-math helpers called from other kernels
X = rng.standard_normal((200, 5))
clf = sk.SoftmaxClassifier(hidden_layer_sizes=(4,), solver="adam", alpha=1e-3, max_iter=15, random_state=0)
clf.fit(X, (X[:, 0] > 0).astype(int))
from softmaxkit.conformal import ConformalClassifier
cp = ConformalClassifier(score="aps", random_state=0).fit(x[:32], y[:32] % 1000)
sets = cp.predict_sets(x[32:], alpha=0.2)
np.savez(sys.argv[1], sm=sk.softmax(x), g=grad, l=loss, curve=np.asarray(clf.loss_curve_), sets=sets)
"""


def test_cold_and_cached_processes_agree_bitwise(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    outs = []
    for i in range(2):  # run 0 compiles (empty cache), run 1 loads from the cache
        f = tmp_path / f"r{i}.npz"
        subprocess.run([sys.executable, "-c", _CHILD, str(f)], env=env, check=True)
        outs.append(np.load(f))
    for k in ("sm", "g", "l", "curve", "sets"):
        assert outs[0][k].tobytes() == outs[1][k].tobytes(), k
