"""StagedOutputs.commit under Ctrl-C / SIGTERM: all outputs or none, never a mix, never debris.

A signal that arrives while a multi-output commit renames its files must
wait until every rename is done (``predict --out a.csv --logits-out b.npy``
must not leave a new ``a.csv`` next to an old ``b.npy``); one that arrives
before the commit must leave neither outputs nor temporaries.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from softmaxkit import io

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "pthread_kill"),
    reason="needs POSIX signals (os.kill delivering SIGINT/SIGTERM to this process)",
)


class _Terminated(BaseException):
    """What the CLI's SIGTERM handler raises (softmaxkit.cli.Terminated), without importing the CLI."""


def _raise_terminated(signum, frame):  # noqa: ANN001, ANN202
    raise _Terminated


@pytest.fixture
def other_thread():
    """A second thread, as numpy's BLAS pool or torch gives a real command: the kernel may then hand a
    process-directed signal to that thread, so blocking the signal in the main thread alone defers nothing."""
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    yield worker
    stop.set()
    worker.join()


@pytest.fixture(params=["SIGINT", "SIGTERM"])
def interruption(request):
    """(signal number, exception it raises): Ctrl-C, and SIGTERM as the CLI turns it into an exception."""
    if request.param == "SIGINT":
        yield signal.SIGINT, KeyboardInterrupt
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield signal.SIGTERM, _Terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


def _old_outputs(folder: Path) -> tuple[Path, Path]:
    a, b = folder / "a.csv", folder / "b.npy"
    a.write_text("old a")
    b.write_text("old b")
    return a, b


def _stage_new(out: io.StagedOutputs, a: Path, b: Path) -> None:
    out.stage(a).write_text("new a")
    out.stage(b).write_text("new b")


def test_signal_during_commit_waits_until_every_output_is_renamed(tmp_path, monkeypatch, other_thread, interruption):
    signum, raised = interruption
    handlers_before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    a, b = _old_outputs(tmp_path)
    renamed: list[str] = []
    real_replace = os.replace

    def replace_then_signal(src, dst):  # noqa: ANN001, ANN202
        real_replace(src, dst)
        renamed.append(Path(dst).name)
        if len(renamed) == 1:  # the signal lands between the first and the second rename
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(io.os, "replace", replace_then_signal)
    out = io.StagedOutputs()
    with pytest.raises(raised):
        with out:
            _stage_new(out, a, b)
            out.commit()
    # The signal was not lost: it was raised, but only once both outputs were in place.
    assert renamed == ["a.csv", "b.npy"]
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert out.committed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.npy"]  # no temporaries left
    assert {s: signal.getsignal(s) for s in handlers_before} == handlers_before  # handlers put back


def test_signal_before_commit_leaves_old_outputs_and_no_temporaries(tmp_path, interruption):
    signum, raised = interruption
    a, b = _old_outputs(tmp_path)
    new_dir = tmp_path / "new" / "deeper"
    with pytest.raises(raised):
        with io.StagedOutputs() as out:
            _stage_new(out, a, b)
            out.stage(new_dir / "c.json").write_text("{}")
            os.kill(os.getpid(), signum)  # Ctrl-C while the command still computes
            out.commit()
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.npy"]  # no temporaries, no new/


def test_commit_outside_the_main_thread_still_publishes(tmp_path):
    # Signal handlers can only be changed in the main thread; elsewhere commit must just work.
    a, b = _old_outputs(tmp_path)
    errors: list[BaseException] = []

    def run():  # noqa: ANN202
        try:
            with io.StagedOutputs() as out:
                _stage_new(out, a, b)
                out.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the main thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert errors == []
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
