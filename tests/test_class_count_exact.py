"""The class-count test's p-value is the exact Poisson-binomial tail, not a normal approximation.

Audit: on 1000 classes and 300 rows, labels drawn from the probabilities themselves (perfectly
calibrated), ``evaluate`` printed "The predicted count of class 385 is off: 0.2 expected, 3 observed
(p = 1.1e-05, Bonferroni over 1000 classes)": the normal z-test (continuity-corrected) on the
Poisson-binomial count, whose tail is far too thin when the expected count is small. The exact
P(X >= 3) there is 5.8e-4, Bonferroni p = 1; the normal test rejected 65% of such calibrated data sets.
``summarize`` now accumulates each class's count pmf (up to its observed count) in its block loop and
takes ``p = min(1, 2 min(P(X <= o), P(X >= o)))``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from softmaxkit.cli import _adapters


def _two_sided(pmf: np.ndarray, o: int) -> float:
    """min(1, 2 min(P(X <= o), P(X >= o))) from a full pmf."""
    return min(1.0, 2.0 * min(pmf[: o + 1].sum(), pmf[o:].sum()))


def _draw(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One label per row, drawn from that row's probabilities (a calibrated model)."""
    return (rng.random(len(p))[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(max=p.shape[1] - 1)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_equal_probabilities_give_the_binomial_tails():
    """All rows give class 1 the same q: X_1 ~ Binomial(n, q), tails from scipy."""
    n, q = 40, 0.05
    p = np.tile([1 - q, q], (n, 1))
    for o in (0, 1, 2, 6, 9):
        y = np.r_[np.ones(o, int), np.zeros(n - o, int)]
        test = _adapters.summarize(y, probs=p, ci=False)[0]["class_count_test"]
        want = min(1.0, 2 * min(stats.binom.cdf(o, n, q), stats.binom.sf(o - 1, n, q)))
        assert test["class"] == 1 and test["observed"] == o
        assert test["p"] == pytest.approx(want, rel=1e-9), o


def test_unequal_probabilities_match_brute_force():
    """10 rows, unequal p for each of 3 classes: every outcome of the 2^10 Bernoulli draws enumerated."""
    rng = np.random.default_rng(3)
    n, k = 10, 3
    p = _softmax(rng.normal(0, 1.5, (n, k)))
    y = np.array([0, 0, 0, 0, 0, 0, 0, 2, 2, 2])  # class 1 never seen, class 2 three times
    counts = _adapters.summarize(y, probs=p, ci=False)[0]["class_counts"]
    for c in range(k):
        pmf = np.zeros(n + 1)
        for hits in itertools.product((0, 1), repeat=n):
            h = np.array(hits, bool)
            pmf[h.sum()] += np.prod(np.where(h, p[:, c], 1 - p[:, c]))
        o = int((y == c).sum())
        assert counts[c]["exact"] is True
        assert counts[c]["p"] == pytest.approx(_two_sided(pmf, o), rel=1e-10, abs=1e-15), c


def test_calibrated_many_classes_are_not_called_off():
    """The audit's design (1000 classes, 300 rows, labels drawn from the probabilities). Seed 0 is one
    where the normal test rejects (the first of the audit's seeds): the exact test does not, and no
    reported p is below the exact tail of its class."""
    rng = np.random.default_rng(0)
    n, k = 300, 1000
    z = rng.normal(0, 3.0, (n, k))
    p = _softmax(z)
    y = _draw(rng, p)
    observed = np.bincount(y, minlength=k)
    normal = _adapters.class_count_test(observed, p.sum(0), (p * (1 - p)).sum(0))["class_count_test"]
    assert normal["rejected"]  # the approximation this replaces: the design still shows the bug
    summary, _ = _adapters.summarize(y, logits=z, ci=False)
    test = summary["class_count_test"]
    assert test["rejected"] is False and test["p_adjusted"] > 0.05, test
    j = normal["class"]  # the class the normal test called off: its exact tail, by convolution
    pmf = np.array([1.0])
    for q in p[:, j]:
        pmf = np.convolve(pmf, [1 - q, q])
    assert summary["class_counts"][j]["p"] == pytest.approx(_two_sided(pmf, int(observed[j])), rel=1e-8)


def test_overpredicted_rare_class_is_still_rejected():
    """A miscalibrated rare class: predicted at 4x its true rate (0.04 for 0.01) on 2000 rows of 20 classes."""
    rng = np.random.default_rng(5)
    n, k = 2000, 20
    rest = _softmax(rng.normal(0, 1.0, (n, k - 1)))
    p = np.c_[np.full(n, 0.04), 0.96 * rest]
    truth = np.c_[np.full(n, 0.01), 0.99 * rest]
    y = _draw(rng, truth)
    test = _adapters.summarize(y, probs=p, ci=False)[0]["class_count_test"]
    assert test["class"] == 0 and test["rejected"] is True
    assert test["observed"] <= _adapters.COUNT_EXACT_MAX  # so its p is the exact tail


def test_rare_class_overpredicted_exact_and_rejected():
    """Small counts: a class given 0.02 on 500 rows (E = 10) but seen once; the exact lower tail."""
    n = 500
    p = np.tile([0.98, 0.02], (n, 1))
    y = np.zeros(n, int)
    y[0] = 1
    test = _adapters.summarize(y, probs=p, ci=False)[0]["class_count_test"]
    want = 2 * stats.binom.cdf(1, n, 0.02)
    assert test["p"] == pytest.approx(want, rel=1e-9) and test["rejected"] is True


def test_blocks_give_the_one_block_answer(monkeypatch):
    """The pmfs carried across score blocks (odd block sizes too) equal one block's."""
    rng = np.random.default_rng(7)
    n, k = 301, 40
    z = rng.normal(0, 2.0, (n, k))
    y = _draw(rng, _softmax(z))
    whole = _adapters.summarize(y, logits=z, ci=False)[0]["class_counts"]
    for rows in (1, 7, 64):
        monkeypatch.setattr(_adapters, "SCORE_BLOCK_ROWS", rows)
        blocks = _adapters.summarize(y, logits=z, ci=False)[0]["class_counts"]
        np.testing.assert_allclose([c["p"] for c in blocks], [c["p"] for c in whole], rtol=1e-9, atol=1e-15)
        assert all(c["exact"] for c in blocks)


def test_counts_over_the_budget_keep_the_normal_test():
    """Classes seen at most COUNT_EXACT_MAX times are always exact; more frequent ones while the states
    (O_k + 2 each) fit (COUNT_EXACT_MAX + 2) K, rarest first; the rest keep the normal p."""
    assert _adapters.COUNT_EXACT_MAX == 64  # the counts below are chosen around it
    n = 400
    p = np.tile([0.5, 0.3, 0.2], (n, 1))
    y = np.r_[np.zeros(200, int), np.ones(120, int), np.full(80, 2)]  # budget 198 states: 82 fit, +122 not
    counts = _adapters.summarize(y, probs=p, ci=False)[0]["class_counts"]
    assert [c["exact"] for c in counts] == [False, False, True]
    z = (abs(200 - 200) - 0.5) / np.sqrt(n * 0.25)
    assert counts[0]["p"] == pytest.approx(min(1.0, 2 * stats.norm.sf(max(z, 0.0))))
    small = np.r_[np.zeros(30, int), np.ones(20, int), np.full(10, 2)]
    counts = _adapters.summarize(small, probs=p[:60], ci=False)[0]["class_counts"]
    assert [c["exact"] for c in counts] == [True, True, True]


def test_numpy_and_numba_count_updates_agree():
    """The NumPy twin (small commands: no numba import) and the numba kernel give the same pmfs, also for
    classes not tracked, tracked with no count (two states) and rows of exact zeros."""
    from softmaxkit.kernels import count_states, poisson_binomial

    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.full(9, 0.3), size=203)
    p[:5, 2] = 0.0
    top = np.array([3, -1, 0, 7, 1, 12, -1, 2, 5])
    offsets = count_states.state_offsets(top)
    by_numpy, by_numba = count_states.initial_states(offsets), count_states.initial_states(offsets)
    for start in range(0, len(p), 50):  # blockwise, as summarize feeds them
        count_states.add_rows(by_numpy, offsets, p[start:start + 50])
        poisson_binomial.add_rows(by_numba, offsets, np.ascontiguousarray(p[start:start + 50]))
    np.testing.assert_allclose(by_numpy, by_numba, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(count_states.two_sided_p(by_numpy, offsets),
                               count_states.two_sided_p(by_numba, offsets), rtol=1e-12)


def test_summarize_takes_numba_past_the_numpy_rows_with_the_same_p(monkeypatch):
    rng = np.random.default_rng(8)
    p = rng.dirichlet(np.ones(6), size=300)
    y = np.array([rng.choice(6, p=row) for row in p])
    small, _ = _adapters.summarize(y, probs=p, ci=False)
    monkeypatch.setattr(_adapters, "COUNT_NUMPY_MAX_ROWS", 10)
    large, _ = _adapters.summarize(y, probs=p, ci=False)
    assert [c["p"] for c in small["class_counts"]] == pytest.approx([c["p"] for c in large["class_counts"]], rel=1e-10)
