"""``softmaxkit explain``: the classic yes/no example."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from softmaxkit.cli import main


def test_explain_yes_no(capsys):
    assert main(["explain", "0.03", "1.92", "--labels", "yes,no"]) == 0
    out = capsys.readouterr().out
    assert "sum to 1.95" in out and "not a probability" in out
    assert "0.1312" in out and "0.8688" in out and "1.0000" in out
    assert "sigmoid" in out


def test_explain_json(capsys):
    assert main(["explain", "0.03", "1.92", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert abs(res["probabilities"][0] - 0.131) < 1e-3 and abs(res["probability_sum"] - 1) < 1e-12
    assert abs(res["logistic"]["sigmoid_z"] - 0.869) < 1e-3


def test_explain_errors(capsys):
    assert main(["explain", "1", "2", "--labels", "a"]) == 1
    assert "--labels names 1 classes but 2 logits" in capsys.readouterr().err
    assert main(["explain", "1", "2", "--temperature", "0"]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["explain", "abc"])
    assert exc.value.code == 2


def test_extreme_logits_print_short_and_without_warnings(capsys):
    assert main(["explain", "--", "-1e308", "1e308"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and max(len(line) for line in captured.out.splitlines()) < 120
    assert "1e+308" in captured.out and "sigmoid(inf) = 1.0000" in captured.out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "softmaxkit", "explain", "0.03", "1.92", "--labels", "yes,no"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0 and "0.8688" in out.stdout
