"""``import softmaxkit`` is fast and pulls in neither torch nor a JIT."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys, time
t = time.perf_counter()
import softmaxkit
elapsed = time.perf_counter() - t
heavy = [m for m in ("torch", "numba", "sklearn", "matplotlib", "scipy", "triton") if m in sys.modules]
print(json.dumps({"heavy": heavy, "elapsed": elapsed, "all": sorted(softmaxkit.__all__)}))
"""


def test_import_pulls_no_heavy_dependency():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    # Time is not asserted here (the machine is shared); what keeps import fast is
    # that nothing heavy is imported, and that is asserted.
    assert info["heavy"] == []
    assert {"softmax", "cross_entropy", "SoftmaxClassifier", "load", "linear_cross_entropy"} <= set(info["all"])


def test_public_names_resolve():
    import softmaxkit as sk

    for name in ("softmax", "log_softmax", "logsumexp", "sigmoid", "log_sigmoid", "cross_entropy",
                 "cross_entropy_and_grad", "binary_cross_entropy_with_logits", "load"):
        assert callable(getattr(sk, name))
