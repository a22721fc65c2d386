"""Running the CLI in tests: in-process (``call``) and as the installed console script (``run_cli``).

Imported by the CLI test files like ``oracle`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def sklearn_log_loss(z, y) -> float:
    """scikit-learn's log-loss of logits ``z`` (softmax by SciPy), the peer the CLI's numbers are checked against."""
    import numpy as np
    from scipy.special import softmax
    from sklearn.metrics import log_loss

    return log_loss(y, softmax(z, axis=1), labels=np.arange(z.shape[1]))
