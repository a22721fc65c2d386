"""Outputs never destroy an input, never hold NaN, never leave debris, and a write error names its file.

Audit findings these tests pin down:

* the same folder reached by two paths (a container volume mounted twice) defeated the
  ``Path.resolve()`` comparisons: ``predict ... data/test.csv --out alias/test.csv`` replaced the
  input, and ``--out data/o.csv --logits-out alias/o.csv`` kept the logits alone, exit 0. Tests
  cannot mount, so they reach one file by two paths with a symlinked directory and a hard link,
  which go through the same file-identity check (:func:`softmaxkit.io.file_key`);
* a hand-edited TemperatureScaling with ``beta_ = 1e308`` loaded, and ``apply`` wrote NaN
  probabilities with exit 0;
* SIGHUP (a closed terminal) killed ``apply`` and left a full-size hidden temporary behind;
* a full disk said ``[Errno 28] Error writing bytes to file`` without naming the file.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit import io
from softmaxkit.calibration import TemperatureScaling
from softmaxkit.cli import CLIError, main

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symlinks, hard links and SIGHUP are POSIX")


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*tmp*"))


@pytest.fixture
def aliased(tmp_path, monkeypatch):
    """``data/`` with a model and its data file, and ``alias -> data``: one folder, two paths."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    sk.SoftmaxClassifier(alpha=1e-3, max_iter=50, random_state=0).fit(X, y).save(data / "model.npz")
    np.save(data / "test.npy", X)
    (tmp_path / "alias").symlink_to(data, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- 1. one file, two paths


@posix_only
def test_an_output_staged_through_a_symlinked_folder_and_directly_is_written_twice(aliased):
    with io.StagedOutputs() as out:
        out.stage("data/o.csv")
        with pytest.raises(ValueError, match="written twice"):
            out.stage("alias/o.csv")
    assert _debris(aliased) == []


@posix_only
def test_a_hard_link_is_another_entry_so_writing_it_keeps_the_other_name(aliased, capsys):
    """An output is published by renaming over its directory entry, so a hard link of the input (or of
    the other output) can be written without touching the other name. Review R6: they were refused
    ("--logits-out and --out name the same file") where earlier versions wrote both correctly."""
    os.link("data/test.npy", "data/link.npy")
    before = Path("data/test.npy").read_bytes()
    assert main(["predict", "data/model.npz", "data/test.npy", "--out", "data/link.npy", "-q"]) == 0
    assert Path("data/test.npy").read_bytes() == before
    assert Path("data/link.npy").read_bytes() != before
    Path("data/p.csv").write_text("x\n")
    os.link("data/p.csv", "data/l.csv")
    assert main(["predict", "data/model.npz", "data/test.npy", "--out", "data/p.csv", "--logits-out", "data/l.csv",
                 "-q"]) == 0
    assert Path("data/p.csv").read_text().startswith('"p_0"') and Path("data/l.csv").read_text().startswith('"logit_0"')


@posix_only
def test_predict_refuses_an_input_or_the_other_output_reached_through_an_alias(aliased, capsys):
    before = Path("data/test.npy").read_bytes()
    assert main(["predict", "data/model.npz", "data/test.npy", "--out", "alias/test.npy", "-q"]) == 1
    assert "is also an input file" in capsys.readouterr().err
    assert Path("data/test.npy").read_bytes() == before
    Path("data/o.npz").write_bytes(b"old")
    assert main(["predict", "data/model.npz", "data/test.npy", "--out", "data/o.npz",
                 "--logits-out", "alias/o.npz", "-q"]) == 1
    assert "name the same file" in capsys.readouterr().err
    assert Path("data/o.npz").read_bytes() == b"old"


@posix_only
def test_paths_not_made_yet_are_one_file_when_they_land_on_one_entry(aliased):
    # Neither exists: the identity is the nearest existing folder's plus the rest of the path.
    assert io.file_key("data/new/o.csv") == io.file_key("alias/new/o.csv")
    assert io.file_key("data/new/../o.csv") == io.file_key("alias/o.csv")
    assert io.file_key("data/new/o.csv") != io.file_key("data/new/p.csv")
    assert io.same_file("alias/model.npz", "data/model.npz")
    assert not io.same_file("data/model.npz", "data/test.npy")


# --------------------------------------------------------------------------- 2. no NaN probabilities


def _temperature_file(path: Path, *, beta: float, bounds: tuple[float, float] | None = None) -> Path:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 3)) * 2
    cal = TemperatureScaling().fit(z, np.argmax(z + rng.normal(size=z.shape), axis=1))
    cal.save(path)
    kind, meta, arrays = io.read_state(path)  # hand-edited, as the audit did
    meta["fitted"]["beta_"] = beta
    if bounds is not None:
        meta["params"]["beta_bounds"] = list(bounds)
    io.save_state(path, kind=kind, meta=meta, arrays=arrays)
    return path


def test_a_temperature_outside_its_beta_bounds_is_refused_at_load(tmp_path):
    path = _temperature_file(tmp_path / "cal.npz", beta=1e308)
    with pytest.raises(io.ModelFileError, match=r"beta_ .*beta_bounds"):
        sk.load(path)


def test_the_neutral_temperature_of_uninformative_logits_loads_whatever_the_bounds(tmp_path):
    # fit keeps beta = 1 (the model as it is) when no row's logits differ, even outside beta_bounds.
    cal = TemperatureScaling(beta_bounds=(2.0, 10.0)).fit(np.zeros((10, 3)), np.arange(10) % 3)
    assert cal.beta_ == 1.0
    cal.save(tmp_path / "flat.npz")
    assert sk.load(tmp_path / "flat.npz").beta_ == 1.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warning, the cause
def test_apply_refuses_to_write_non_finite_probabilities_naming_the_row(tmp_path, capsys):
    # A temperature within (wide) bounds that still overflows the logits: NaN after softmax.
    cal = _temperature_file(tmp_path / "cal.npz", beta=1e308, bounds=(1e-10, 1.5e308))
    logits = np.zeros((5, 3))
    logits[3] = [4.0, 1.0, -2.0]  # row 4: 4e308 overflows
    np.save(tmp_path / "z.npy", logits)
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    assert main(["apply", str(cal), "--logits", str(tmp_path / "z.npy"), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "not finite" in err and "row 4" in err and str(out) in err, err
    assert out.read_text() == "previous\n"
    assert _debris(tmp_path) == []


def test_the_finite_check_finds_the_first_bad_row_past_the_first_block():
    from softmaxkit.cli._common import refuse_non_finite

    probs = np.full((200_001, 2), 0.5)
    refuse_non_finite(probs, out="p.csv", source="z.npy")  # finite: nothing to say
    probs[150_000, 1] = np.nan
    probs[190_000, 0] = np.inf
    with pytest.raises(CLIError, match=r"row 150001 .*2 of 200001 rows"):
        refuse_non_finite(probs, out="p.csv", source="z.npy")


# --------------------------------------------------------------------------- 3. SIGHUP


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signal")
def test_sighup_during_a_command_exits_129_and_leaves_no_temporary(tmp_path):
    # In a child: before the fix SIGHUP's default action kills the process (and would kill pytest).
    script = textwrap.dedent("""
        import os, signal, sys
        import softmaxkit.cli.apply as command
        from softmaxkit.cli import main
        from softmaxkit.io import StagedOutputs

        def run(args):
            with StagedOutputs() as out:
                out.stage(args.out).write_bytes(b"x" * 100_000)
                signal.raise_signal(signal.SIGHUP)  # the terminal closes mid-write
                out.commit()
            return 0

        command.run = run
        sys.exit(main(["apply", "cal.npz", "--logits", "z.npy", "--out", "big.parquet"]))
    """)
    (tmp_path / "big.parquet").write_bytes(b"previous")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(sk.__file__).parents[1])})
    assert done.returncode == 129, (done.returncode, done.stderr)
    assert "hangup" in done.stderr.lower()
    assert (tmp_path / "big.parquet").read_bytes() == b"previous"
    assert _debris(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signal")
def test_an_ignored_sighup_stays_ignored(monkeypatch):
    # `nohup softmaxkit ...` asks the command to outlive the terminal: the CLI must not catch SIGHUP then.
    import softmaxkit.cli.apply as command

    def run(args):  # noqa: ANN001, ANN202
        signal.raise_signal(signal.SIGHUP)
        return 0

    monkeypatch.setattr(command, "run", run)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert main(["apply", "cal.npz", "--logits", "z.npy", "--out", "o.csv", "-q"]) == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signal")
def test_sighup_is_held_back_during_a_commit():
    seen: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: seen.append(signum))
    try:
        with io._signals_deferred():
            signal.raise_signal(signal.SIGHUP)
            assert seen == []  # not between two renames
        assert seen == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)


# --------------------------------------------------------------------------- 4. disk errors name the output


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "no space left on device"),
                                              (errno.EROFS, "read-only file system")])
def test_a_full_or_read_only_disk_names_the_output(tmp_path, monkeypatch, capsys, code, words):
    from softmaxkit import data

    def full_disk(tmp, suffix, columns):  # noqa: ANN001, ANN202 - pyarrow's error on a full tmpfs
        Path(tmp).write_bytes(b"partial")
        raise OSError(code, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(data, "_write_to", full_disk)
    cal = _temperature_file(tmp_path / "cal.npz", beta=1.5)
    np.save(tmp_path / "z.npy", 3 * np.eye(3))
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    assert main(["apply", str(cal), "--logits", str(tmp_path / "z.npy"), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write --out {out}: {words}" in err, err
    assert out.read_text() == "previous\n"
    assert _debris(tmp_path) == []


def test_a_disk_error_at_commit_names_the_output(tmp_path, monkeypatch):
    def full_disk(tmp, mode):  # noqa: ANN001, ANN202 - fsync is where a full NFS or quota reports it
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(io, "_finish", full_disk)
    with io.StagedOutputs() as out:
        out.stage(tmp_path / "a.csv").write_text("x")
        with pytest.raises(OSError, match=f"cannot write {tmp_path / 'a.csv'}: disk quota exceeded"):
            out.commit()
    assert _debris(tmp_path) == []
