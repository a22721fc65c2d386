"""Running the CLI in tests: in-process (``call``) and as the installed console script (``run_cli``).

Imported by the CLI test files like ``oracle`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

from softmaxkit.cli import main

#: The environment of a CLI subprocess: warnings off, so stderr holds only the CLI's own lines.
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def console_script() -> list[str]:
    """The installed ``softmaxkit`` entry point next to this interpreter, else ``python -m softmaxkit``."""
    found = shutil.which("softmaxkit", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "softmaxkit"]


def run_cli(*argv, cwd=None, preexec_fn=None, env=None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process; arguments may be paths."""
    return subprocess.run([*console_script(), *map(str, argv)], capture_output=True, text=True, timeout=300,
                          cwd=cwd, preexec_fn=preexec_fn, env=env or ENV)


def call(capsys, *argv) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit code, stdout, stderr); arguments may be paths."""
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def error_line(err: str) -> str:
    """The single ``softmaxkit: error:`` line (library warnings, one line each, may precede it)."""
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("softmaxkit: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("softmaxkit: error: ")
    return lines[0]


def decent_logits(n: int, k: int, *, seed: int):
    """Logits of a decent ``k``-class model on ``n`` rows (the true class's logit raised by 2.5), and
    the labels: ``n // k`` rows of each class in order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += 2.5
    return z, y


#: The classes of :func:`noisy_animals`.
ANIMALS = ("bird", "cat", "dog")


def fitted_animals(work: Path, *, seed: int, ids) -> dict:
    """A noisy 3-class problem on two features (classes 1 and 2 each shift one feature by 1.2), class
    names :data:`ANIMALS`: ``train.csv`` (400 rows) in ``work``, the model ``softmaxkit fit`` trains on
    it, and ``test.csv``, whose ``id`` column holds ``ids`` (one row each). Returns the model's and
    test file's paths and the test labels ``y``; for the CLI's row-id tests."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 3, n)
        return rng.normal(size=(n, 2)) + 1.2 * np.column_stack([y == 1, y == 2]), np.asarray(ANIMALS)[y]

    from softmaxkit.data import write_columns

    X, y = draw(400)
    train = write_columns(work / "train.csv", {"f1": X[:, 0], "f2": X[:, 1], "animal": y})
    Xt, yt = draw(len(ids))
    test = write_columns(work / "test.csv", {"id": ids, "f1": Xt[:, 0], "f2": Xt[:, 1], "animal": yt})
    model = work / "m.npz"
    assert main(["fit", str(train), "--target", "animal", "--out", str(model), "--no-report", "-q"]) == 0
    return {"model": model, "test": test, "y": yt}


def sklearn_log_loss(z, y) -> float:
    """scikit-learn's log-loss of logits ``z`` (softmax by SciPy), the peer the CLI's numbers are checked against."""
    import numpy as np
    from scipy.special import softmax
    from sklearn.metrics import log_loss

    return log_loss(y, softmax(z, axis=1), labels=np.arange(z.shape[1]))


def traced_peak(fn):
    """``(fn(), the peak of traced Python/NumPy allocations during the call in bytes)``: the memory tests'
    measure (tracemalloc sees NumPy's buffers; a memory map's pages are not allocations)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def softmax_rows(z):
    """Row-wise softmax of a 2-D NumPy array, in float64 (the tests' reference)."""
    import numpy as np

    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def evaluate_json(capsys, *argv) -> dict:
    """``evaluate ARGV --json``, which must succeed: its parsed output."""
    import json

    rc, out, err = call(capsys, "evaluate", *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def iris_without_header(path: Path, first_row, *, columns=slice(None)) -> Path:
    """Iris's rows (shuffled) written headerless by np.savetxt(fmt="%g"), row 0 replaced by ``first_row``."""
    import numpy as np
    from sklearn.datasets import load_iris

    X = load_iris().data[np.random.default_rng(0).permutation(150)]
    X[0] = first_row
    np.savetxt(path, X[:, columns], fmt="%g", delimiter=",")
    return path


def iris_model_without_names(capsys, work: Path) -> Path:
    """A model fitted by ``fit`` on iris from an .npz, so it records no feature names (``work/m.npz``)."""
    import numpy as np
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    np.savez(work / "train.npz", X=X, y=y)
    model = work / "m.npz"
    assert call(capsys, "fit", work / "train.npz", "--target", "y", "--out", model, "--no-report", "-q", "--alpha",
                "1")[0] == 0
    return model


def rare_truth(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True P(yes) of a rare positive class (about 4%, most rows well under 1%) and labels drawn from it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-(-4.6 + 1.4 * rng.standard_normal(n))))
    return p, (rng.random(n) < p).astype(int)


def reversed_low_risks(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Audit BX's mk_anti.py: the true risks, their order reversed among those under 1/15 (same values)."""
    import numpy as np

    p, y = rare_truth(n, seed=seed)
    low = np.flatnonzero(p < 1 / 15)
    q = p.copy()
    q[low[np.argsort(p[low])]] = np.sort(p[low])[::-1]
    return q, y
