"""softmaxkit.metrics.loss_interval: the log-scale Student-t interval of the log-loss and Brier score.

Numbers are checked against a float64 oracle written here from the formula (tests/oracle.py for the
log-softmax of logits), never against the helpers the function uses.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import oracle
import pytest
from scipy import special, stats

from softmaxkit._loss_interval import RowMoments
from softmaxkit.metrics import brier_score, log_loss, loss_interval


def _oracle_interval(rows: np.ndarray, level: float) -> tuple[float, float, float]:
    """``m exp(+-t se / m)`` in float64, with math.fsum sums."""
    n = rows.size
    m = math.fsum(rows.tolist()) / n
    sd = math.sqrt(math.fsum(((rows - m) ** 2).tolist()) / (n - 1))
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    half = t * sd / math.sqrt(n) / m
    return m, m * math.exp(-half), m * math.exp(half)


def _three_class_case(rng, n=300):
    logits = rng.normal(size=(n, 3)) * 2.0
    y = rng.integers(0, 3, size=n)
    return y, logits


def _softmax64(x):
    return np.exp(oracle.log_softmax(x))


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_log_loss_interval_from_logits_matches_oracle(rng, level):
    y, logits = _three_class_case(rng)
    rows = -oracle.log_softmax(logits)[np.arange(y.size), y]
    m, lo, hi = _oracle_interval(rows, level)
    r = loss_interval(y, logits=logits, level=level)
    assert r.withheld is None and r.n == y.size and r.level == level and r.score == "log_loss"
    np.testing.assert_allclose([r.value, r.low, r.high], [m, lo, hi], rtol=1e-12)
    assert r.value == pytest.approx(log_loss(y, logits=logits), rel=1e-14)


def test_brier_interval_from_probs_and_logits_matches_oracle(rng):
    y, logits = _three_class_case(rng)
    p = _softmax64(logits)
    onehot = np.eye(3)[y]
    rows = ((p - onehot) ** 2).sum(axis=1)  # Brier's sum over classes, 0-2 scale
    m, lo, hi = _oracle_interval(rows, 0.95)
    for kwargs in ({"probs": p}, {"logits": logits}):
        r = loss_interval(y, score="brier", **kwargs)
        assert r.withheld is None
        np.testing.assert_allclose([r.value, r.low, r.high], [m, lo, hi], rtol=1e-12)
    assert loss_interval(y, probs=p, score="brier").value == pytest.approx(brier_score(y, p), rel=1e-14)


def test_binary_one_dimensional_probs(rng):
    p = rng.uniform(0.05, 0.95, size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    rows = -np.log(np.where(y == 1, p, 1 - p))
    m, lo, hi = _oracle_interval(rows, 0.95)
    r = loss_interval(y, probs=p)
    np.testing.assert_allclose([r.value, r.low, r.high], [m, lo, hi], rtol=1e-12)


# --------------------------------------------------------------------------- withholding


def _binary_with_minority(k, n=200, seed=0):
    """``n`` rows, ``k`` of class 1, probabilities that vary (no constant losses)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[:k] = 1
    p = rng.uniform(0.02, 0.3, size=n)
    return y, p


@pytest.mark.parametrize("score", ["log_loss", "brier"])
def test_no_row_of_a_binary_class_is_withheld_and_says_it_understates(score):
    y, p = _binary_with_minority(0)
    r = loss_interval(y, probs=p, score=score, class_names=["benign", "malignant"])
    assert r.withheld.startswith("no interval: no row of class 'malignant'; at least 5 needed")
    assert "understates" in r.withheld
    assert math.isnan(r.low) and math.isnan(r.high)
    expected = log_loss(y, probs=p) if score == "log_loss" else brier_score(y, p)
    assert r.value == pytest.approx(expected, rel=1e-14)  # the score itself is still there


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_one_to_four_rows_of_a_binary_class_are_withheld(k):
    y, p = _binary_with_minority(k)
    r = loss_interval(y, probs=p, class_names=["benign", "malignant"])
    rows = "1 row" if k == 1 else f"{k} rows"
    assert r.withheld == f"no interval: {rows} of class 'malignant'; at least 5 needed"
    assert math.isnan(r.low)


def test_five_rows_of_a_binary_class_give_an_interval():
    y, p = _binary_with_minority(5)
    r = loss_interval(y, probs=p)
    assert r.withheld is None and r.low < r.value < r.high


def test_min_class_rows_is_the_threshold_and_zero_turns_it_off():
    y, p = _binary_with_minority(3)
    assert loss_interval(y, probs=p, min_class_rows=3).withheld is None
    assert loss_interval(y, probs=p, min_class_rows=4).withheld == "no interval: 3 rows of class 1; at least 4 needed"
    assert loss_interval(_binary_with_minority(0)[0], probs=p, min_class_rows=0).withheld is None


def test_more_classes_need_one_row_of_each_class(rng):
    y, logits = _three_class_case(rng, n=100)
    y = np.where(y == 2, 0, y)
    y[:2] = 2  # class 2 has two rows: enough beyond two classes
    assert loss_interval(y, logits=logits).withheld is None
    y = np.where(y == 2, 0, y)  # class 2 has none
    r = loss_interval(y, logits=logits, class_names=["a", "b", "c"])
    assert r.withheld.startswith("no interval: no row of class 'c'; at least 1 needed")
    assert "understates" in r.withheld


def test_infinite_log_loss_gives_infinite_interval_not_withheld():
    p = np.array([[0.9, 0.1], [0.2, 0.8]] * 10 + [[1.0, 0.0]])
    y = np.array([0, 1] * 10 + [1])  # the last row's true class has probability 0
    r = loss_interval(y, probs=p)
    assert (r.value, r.low, r.high, r.withheld) == (math.inf, math.inf, math.inf, None)
    assert log_loss(y, probs=p) == math.inf


@pytest.mark.parametrize("score", ["log_loss", "brier"])
def test_constant_losses_are_withheld_without_dividing_by_zero(score):
    y = np.array([0, 1] * 20)
    uniform = np.full((40, 2), 0.5)  # every row the same loss whatever its label
    with np.errstate(all="raise"):
        r = loss_interval(y, probs=uniform, score=score)
    assert r.withheld.startswith("no interval: every row has the same loss")
    assert r.value == pytest.approx(math.log(2) if score == "log_loss" else 0.5, rel=1e-14)
    certain = np.eye(2)[y]  # every row certain and right: all losses 0
    with np.errstate(all="raise"):
        r0 = loss_interval(y, probs=certain, score=score)
    assert r0.value == 0.0 and r0.withheld.startswith("no interval: every row has the same loss (0)")


def test_one_row_is_withheld():
    r = loss_interval(np.array([0]), probs=np.array([[0.7, 0.3]]), min_class_rows=0)
    assert r.withheld == "no interval: 1 row; at least 2 needed" and r.n == 1


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"score": "ece"}, ValueError, "score must be one of"),
        ({"level": 1.0}, ValueError, r"level must be a confidence level in \(0, 1\), got 1.0"),
        ({"level": None}, ValueError, "level must be a confidence level"),
        ({"level": True}, ValueError, "level must be a confidence level"),
        ({"min_class_rows": -1}, ValueError, "min_class_rows must be an int >= 0"),
        ({"min_class_rows": 2.5}, ValueError, "min_class_rows must be an int >= 0"),
        ({"class_names": ["a"]}, ValueError, "class_names must name the 2 classes"),
        ({"class_names": "ab"}, TypeError, "class_names must be a sequence"),
    ],
)
def test_bad_options_are_refused(kwargs, error, match):
    y, p = _binary_with_minority(20)
    with pytest.raises(error, match=match):
        loss_interval(y, probs=p, **kwargs)


@pytest.mark.parametrize("score", ["log_loss", "brier"])
def test_bad_inputs_are_refused_as_the_scores_refuse_them(score):
    y, p = _binary_with_minority(20)
    with pytest.raises(ValueError, match="exactly one of logits= or probs="):
        loss_interval(y, score=score)
    with pytest.raises(ValueError, match="exactly one of logits= or probs="):
        loss_interval(y, probs=p, logits=np.stack([p, p], 1), score=score)
    with pytest.raises(ValueError, match="out of range|in \\[0, 2\\)|class"):
        loss_interval(np.r_[y[:-1], 7], probs=p, score=score)
    with pytest.raises(ValueError, match="at least one sample"):
        loss_interval(np.zeros(0, dtype=int), probs=np.zeros((0, 2)), score=score)
    with pytest.raises(TypeError):
        loss_interval(y, p)  # options are keyword-only


def test_import_of_metrics_does_not_import_scipy():
    code = "import sys, softmaxkit.metrics; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- merging blocks


def test_row_moments_merge_blocks_like_one_array(rng):
    rows = rng.exponential(size=1000) + 1e6  # far from 0, small spread: a naive sum of squares cancels
    rows[17] = np.inf
    whole = RowMoments.of(rows)
    merged = RowMoments.of(rows[:1]) + RowMoments.of(rows[1:400]) + RowMoments() + RowMoments.of(rows[400:])
    finite = rows[np.isfinite(rows)]
    m = math.fsum(finite.tolist()) / finite.size
    m2 = math.fsum(((finite - m) ** 2).tolist())
    for got in (whole, merged):
        assert got.n == 999 and got.n_inf == 1
        assert got.mean == pytest.approx(m, rel=1e-14)
        assert got.m2 == pytest.approx(m2, rel=1e-9)


# --------------------------------------------------------------------------- coverage


def test_coverage_of_the_90_percent_interval_calibrated_binary_model():
    """2000 data sets of 200 rows, p ~ Beta(1, 9) (prevalence 10%), y ~ Bernoulli(p): the model is
    calibrated, so the population losses are known in closed form; each interval must hold them in
    87-93% of the data sets (3 binomial SDs of 0.0067 either side of 0.90 is 0.88-0.92)."""
    a, b, n, reps, level = 1.0, 9.0, 200, 2000, 0.90
    mean_p = a / (a + b)
    e_p2 = mean_p ** 2 + a * b / ((a + b) ** 2 * (a + b + 1))
    true_brier = 2.0 * (mean_p - e_p2)  # E[2 p (1 - p)] on the 0-2 scale
    # E[-p log p - (1 - p) log(1 - p)] for p ~ Beta(a, b)
    true_ll = -(a / (a + b) * (special.digamma(a + 1) - special.digamma(a + b + 1))
                + b / (a + b) * (special.digamma(b + 1) - special.digamma(a + b + 1)))
    rng = np.random.default_rng(20261207)
    held = {"brier": 0, "log_loss": 0}
    given = 0
    for _ in range(reps):
        p = rng.beta(a, b, size=n)
        y = (rng.uniform(size=n) < p).astype(np.int64)
        probs = np.stack([1.0 - p, p], axis=1)
        res = {s: loss_interval(y, probs=probs, score=s, level=level) for s in held}
        if res["brier"].withheld is not None:
            continue
        given += 1
        held["brier"] += res["brier"].low <= true_brier <= res["brier"].high
        held["log_loss"] += res["log_loss"].low <= true_ll <= res["log_loss"].high
    assert given >= 0.99 * reps  # 20 expected positives: fewer than 5 almost never happens
    for score, count in held.items():
        assert 0.87 <= count / given <= 0.93, (score, count / given)
