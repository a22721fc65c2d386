"""Concurrency/interrupt fixes from audit round CG."""

from __future__ import annotations

import pytest

from softmaxkit import cli
from softmaxkit.cli import fit as fit_command


def test_ctrl_c_during_option_check_is_one_line(monkeypatch, capsys, tmp_path):
    # Ctrl-C while a command's check imports scikit-learn (the first seconds) printed a traceback.
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_command, "check", interrupted)
    data = tmp_path / "train.csv"
    data.write_text("a,label\n1,0\n2,1\n")
    code = cli.main(["fit", str(data), "--target", "label", "--out", str(tmp_path / "m.npz")])
    assert code == 130
    assert capsys.readouterr().err == "softmaxkit: interrupted\n"
