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


def _usage_error(capsys, *argv: str) -> tuple[str, str]:
    """Run ``explain`` expecting a usage error: exit code 2 (the README's code for bad option values)."""
    with pytest.raises(SystemExit) as exc:
        main(["explain", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["1", "2", "--labels", "a"], "--labels names 1 classes but 2 logits"),
        (["1", "2", "--temperature", "0"], "argument --temperature: expected a finite number > 0, got '0'"),
        (["1", "2", "--temperature", "-1"], "expected a finite number > 0, got '-1'"),
        (["1", "2", "--temperature", "inf"], "expected a finite number > 0, got 'inf'"),
        (["1", "nan"], "argument LOGIT: expected a finite number, got 'nan'"),
        (["abc"], "expected a finite number, got 'abc'"),
        # Python's float() reads 0_5 as 5: refused, not guessed.
        (["1", "2", "--temperature", "0_5"], "write numbers without '_'"),
        (["1_000", "2"], "write numbers without '_'"),
    ],
)
def test_explain_bad_values_are_usage_errors(capsys, argv, message):
    """Bad option values exit 2 like every command's (audit: --temperature 0 and a --labels count
    mismatch exited 1)."""
    _, err = _usage_error(capsys, *argv)
    assert message in err


def test_explain_usage_error_in_json(capsys):
    out, _ = _usage_error(capsys, "1", "2", "--temperature", "0", "--json")
    payload = json.loads(out)
    assert payload["exit_code"] == 2 and "--temperature" in payload["error"]
    out, _ = _usage_error(capsys, "1", "2", "--labels", "a", "--json")
    assert json.loads(out)["exit_code"] == 2


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
