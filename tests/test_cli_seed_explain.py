"""``--seed`` out of NumPy's and scikit-learn's range is a usage error; ``explain`` says what its
numbers are without contradicting itself.

Audit: ``--seed -1`` and ``--seed 4294967296`` were parsed, then failed after data loading with exit 1
and scikit-learn's or NumPy's message, neither naming ``--seed``. ``explain 0.3 0.7`` printed "sum to 1:
not a probability distribution.", ``--temperature 2`` printed ``sigmoid(1 - 0 / T=2)`` (read as
1 - (0/2)), and ``--labels a,a`` was accepted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns
from softmaxkit.cli.demo import _small

pytest.importorskip("sklearn")


@pytest.fixture
def commands(tmp_path):
    """Each command that takes ``--seed``, with inputs it would run on (so a seed that got past the
    parser would fail later, with exit 1, instead of exit 2)."""
    rng = np.random.default_rng(0)
    n = 60
    y = np.repeat([0, 1], n // 2)
    table = write_columns(tmp_path / "d.csv", {"a": rng.normal(size=n) + y, "b": rng.normal(size=n), "y": y})
    z = rng.normal(size=(n, 2))
    z[np.arange(n), y] += 1.5
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    return {
        "demo": ["demo", "--out", tmp_path / "demo"],
        "fit": ["fit", table, "--target", "y", "--out", tmp_path / "m.npz", "--no-report"],
        "calibrate": ["calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                      "--out", tmp_path / "c.npz", "--holdout", "0.3"],
    }


@pytest.mark.parametrize("command", ["demo", "fit", "calibrate"])
@pytest.mark.parametrize("value", ["-1", "4294967296", "1e3"])
def test_seed_out_of_range_is_a_usage_error_naming_the_option(capsys, commands, command, value):
    with pytest.raises(SystemExit) as exc:
        call(capsys, *commands[command], "--seed", value, "-q")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --seed: expected an integer from 0 to 4294967295 (2**32 - 1), got '{value}'" in err
    assert "random_state" not in err and "Traceback" not in err


def test_seed_usage_error_in_json(capsys, commands):
    with pytest.raises(SystemExit) as exc:
        call(capsys, *commands["calibrate"], "--seed", "-1", "--json")
    assert exc.value.code == 2
    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == 2 and "--seed" in payload["error"] and "4294967295" in payload["error"]


@pytest.mark.parametrize("value", ["0", "4294967295"])
def test_seed_range_ends_are_accepted(capsys, commands, value):
    rc, out, err = call(capsys, *commands["calibrate"], "--seed", value, "-q")
    assert rc == 0, err


# --- explain ---------------------------------------------------------------------------------------

def _explain(capsys, *argv: str) -> list[str]:
    rc, out, err = call(capsys, "explain", *argv)
    assert rc == 0 and err == "", err
    return out.splitlines()


def test_logits_that_sum_to_one_are_not_called_no_distribution(capsys):
    from scipy.special import softmax

    first = _explain(capsys, "0.3", "0.7")[0]
    assert "not a probability distribution" not in first
    p = softmax([0.3, 0.7])
    assert "sum to 1, but softmax treats them as scores" in first
    assert f"[{p[0]:.4f}, {p[1]:.4f}]" in first  # [0.4013, 0.5987]
    # 0.1 + 0.2 + 0.7 is 0.9999999999999999 in floating point: still "sum to 1".
    assert "sum to 1, but softmax treats them as scores" in _explain(capsys, "0.1", "0.2", "0.7")[0]


@pytest.mark.parametrize(
    "logits, expected",
    [
        (["0.03", "1.92"], "sum to 1.95: not a probability distribution."),
        (["--", "-1", "2"], "sum to 1 but are not all in [0, 1]: not a probability distribution."),
        # 1.0000001 printed with 4 digits is "1": the line would say "sum to 1: not a probability distribution".
        (["0.5", "0.5000001"], "sum to 1.0000001: not a probability distribution."),
    ],
)
def test_logits_that_are_no_distribution_say_why(capsys, logits, expected):
    assert expected in _explain(capsys, *logits)[0]


def test_temperature_is_written_as_a_divisor_of_the_difference(capsys):
    from scipy.special import expit

    lines = _explain(capsys, "0", "1", "--temperature", "2")
    text = "\n".join(lines)
    assert "0 / T=2" not in text and "T=2)" not in text
    assert "softmax(x / T) = exp(x / T) / sum(exp(x / T)), T = 2:" in text
    assert f"P(1) = sigmoid((x[1] - x[0]) / T) = sigmoid((1 - 0) / 2) = sigmoid(0.5000) = {expit(0.5):.4f}" in text


def test_two_class_line_shows_the_logits_not_the_labels_as_numbers(capsys):
    """Default labels 0 and 1 made ``sigmoid(1 - 0) = sigmoid(1.8900)`` read as sigmoid(1) = sigmoid(1.89)."""
    text = "\n".join(_explain(capsys, "0.03", "1.92"))
    assert "sigmoid(1 - 0)" not in text
    assert "P(1) = sigmoid(x[1] - x[0]) = sigmoid(1.92 - 0.03) = sigmoid(1.8900) = 0.8688" in text
    text = "\n".join(_explain(capsys, "--labels", "yes,no", "--", "2", "-1"))
    assert "P(no) = sigmoid(x[no] - x[yes]) = sigmoid((-1) - 2) = sigmoid(-3.0000) = 0.0474" in text


@pytest.mark.parametrize(
    "labels, message",
    [
        ("a,a", "--labels names class 'a' more than once"),
        ("b,a,b,a", "--labels names classes 'b', 'a' more than once"),
        ("a,", "--labels has an empty class name (name 2 of 'a,')"),
    ],
)
def test_labels_must_be_distinct_and_not_empty(capsys, labels, message):
    n = len(labels.split(","))
    with pytest.raises(SystemExit) as exc:
        call(capsys, "explain", *[str(i) for i in range(n)], "--labels", labels)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "logits, temperature",
    [([0.03, 1.92], 1.0), ([0.3, 0.7], 1.0), ([0.0, 1.0], 2.0), ([-3.0, 0.5, 4.25, 1e-3], 0.37), ([700.0, -700.0], 1.0),
     ([5.0], 3.0)],
)
def test_explain_numbers_match_scipy(capsys, logits, temperature):
    """``--json`` and the printed table against scipy.special's softmax, log_softmax and expit."""
    from scipy.special import expit, log_softmax, softmax

    argv = ["--temperature", repr(temperature), "--", *map(repr, logits)]
    res = json.loads("\n".join(_explain(capsys, "--json", *argv)))
    x = np.asarray(logits) / temperature
    np.testing.assert_allclose(res["probabilities"], softmax(x), rtol=1e-12, atol=1e-300)
    # atol: near 0, SciPy's log_softmax is the less exact of the two (-4.99588291602356e-05 against
    # softmaxkit's -4.99588291601002e-05; 50-digit mpmath gives -4.99588291601002e-05).
    np.testing.assert_allclose(res["log_probabilities"], log_softmax(x), rtol=1e-12, atol=1e-15)
    assert res["probability_sum"] == pytest.approx(1.0, abs=1e-12)
    if len(logits) == 2:
        assert res["logistic"]["z"] == pytest.approx(x[1] - x[0], rel=1e-12)
        assert res["logistic"]["sigmoid_z"] == pytest.approx(expit(x[1] - x[0]), rel=1e-12, abs=1e-300)
    table = _explain(capsys, *argv)
    for name, p, lp in zip(range(len(logits)), softmax(x), log_softmax(x)):
        row = next(line.split() for line in table if line.split()[:1] == [str(name)])
        assert row[2] == _small(p)  # tiny probabilities in 2 significant figures, as the demo shows them
        assert float(row[3]) == pytest.approx(lp, abs=5e-5 + 1e-3 * abs(lp))
