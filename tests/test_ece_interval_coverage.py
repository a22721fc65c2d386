"""Coverage of the 95% interval of the classwise ECE (``mode="classwise"``, ``norm="l1"``).

The interval is meant to cover the population's binned error (the same 15 uniform bins,
infinitely many rows). With reported probabilities ``q = softmax(log p / T)`` and labels drawn
from ``p``, that target is known without label noise: per class and bin, the gap is the mean of
``p_k - q_k`` over the rows in the bin, computed here on 400,000 rows.
"""

import numpy as np
import pytest

from softmaxkit.metrics import expected_calibration_error

N_BINS = 15


def _draw(rng, n_classes, n, temperature):
    p = rng.dirichlet(np.ones(n_classes), size=n)
    logits = np.log(np.maximum(p, 1e-300)) / temperature
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1), n_classes - 1)
    return p, q, y


def _population_classwise_l1(n_classes, temperature, *, n_rows=400_000, seed=12345):
    p, q, _ = _draw(np.random.default_rng(seed), n_classes, n_rows, temperature)
    bins = np.minimum((q * N_BINS).astype(np.int64), N_BINS - 1)
    per_class = [
        np.abs(np.bincount(bins[:, k], weights=p[:, k] - q[:, k], minlength=N_BINS)).sum() / n_rows
        for k in range(n_classes)
    ]
    return float(np.mean(per_class))


def test_classwise_l1_interval_covers_the_population_error_at_10_classes():
    # Over- and underconfident (T = 0.7, 1.3). Before the per-bin debiasing this covered 0.80-0.81
    # (the lower end above the target in 1 of 5 data sets); it now covers about 0.90, still a
    # little below 0.95 (see expected_calibration_error's Notes).
    n_classes, n, reps = 10, 1000, 100
    rng = np.random.default_rng(2024)
    covered = []
    for temperature in (0.7, 1.3):
        target = _population_classwise_l1(n_classes, temperature)
        for rep in range(reps):
            _, q, y = _draw(rng, n_classes, n, temperature)
            res = expected_calibration_error(
                y, q, mode="classwise", norm="l1", n_bootstrap=300, noise_floor=False, random_state=rep
            )
            covered.append(res.ci_low <= target <= res.ci_high)
    assert np.mean(covered) >= 0.875, f"coverage {np.mean(covered):.3f} of the population classwise l1"


def test_classwise_l1_interval_still_covers_zero_for_a_calibrated_model():
    n_classes, n, reps = 10, 1000, 40
    rng = np.random.default_rng(7)
    covered = 0
    for rep in range(reps):
        _, q, y = _draw(rng, n_classes, n, 1.0)
        res = expected_calibration_error(
            y, q, mode="classwise", norm="l1", n_bootstrap=300, noise_floor=False, random_state=rep
        )
        covered += res.ci_low == 0.0
    assert covered / reps >= 0.85, f"the interval reached 0 in {covered / reps:.2f} of calibrated data sets"
