"""Review R18 of this session's CLI commits: the conformal scores check must say nothing on correct input
(scipy's exact Kolmogorov-Smirnov method warned on tied samples), and a class is called measurably short of a
level only by an interval corrected for the number of classes tested."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmaxkit.cli import _conformal

pytest.importorskip("scipy")


def test_tied_top_probabilities_of_exchangeable_rows_say_nothing(monkeypatch):
    """A random forest's probabilities take a few values: equal samples of them made scipy's exact method fail
    with a RuntimeWarning, which the CLI printed as its own (3 of 200 splits of breast-cancer rows)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    probs = RandomForestClassifier(10, random_state=0).fit(X[:200], y[:200]).predict_proba(X[200:])
    record = {}
    monkeypatch.setattr(_conformal, "_saved_top_probabilities", lambda path: record)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(60):  # the exact method failed on a few draws only
            order = rng.permutation(len(probs))
            record.update(_conformal.top_probability_record(probs[order[:180]], probs=True))
            _conformal.check_scores_like_calibration("p.npz", probs[order[180:360]], probs=True, where="new.csv")


def test_a_tiny_p_value_prints_as_a_bound():
    assert _conformal._p_words(3e-321) == "p < 1e-12" and _conformal._p_words(2.5e-7) == "p = 2e-07"


def test_classes_built_alike_are_not_called_short_of_the_level():
    """100 classes covered alike (each class's true coverage is the whole's, 0.90): one uncorrected 95% interval
    per class flagged 2 of them "measurably below"; Bonferroni over the 100 classes flags none."""
    rng = np.random.default_rng(3)
    k, rows = 100, 190
    covered = rng.random((k, rows)) < 0.90
    m = {"target_coverage": 0.9,
         "coverage_by_class": {str(c): float(covered[c].mean()) for c in range(k)}}
    class_rows = np.full(k, rows)
    uncorrected = [c for c in range(k) if covered[c].mean() < 0.9 and _wilson_hi(covered[c].mean(), rows) < 0.9]
    assert uncorrected, "this seed's draw has a class an uncorrected interval calls short (the case under test)"
    flagged = [c for c, v, (lo, hi), n in _conformal.classes_under_level(m, class_rows) if hi < 0.9]
    assert flagged == []
    # a class truly short is still found: 150 of 190 rows covered (0.79)
    m["coverage_by_class"]["0"] = 150 / rows
    flagged = [c for c, v, (lo, hi), n in _conformal.classes_under_level(m, class_rows) if hi < 0.9]
    assert flagged == ["0"]
    assert _conformal.class_interval_words(class_rows) == "95% CI, Bonferroni over 100 classes"


def _wilson_hi(p: float, n: int) -> float:
    from softmaxkit.conformal import _wilson

    return _wilson(p, n)[1]


def test_the_top_probabilities_of_wide_rows_are_read_in_small_blocks():
    """Audit CE: blocks of 4096 rows whatever the width: at a 32k vocabulary 1 GB in float64 and as much again
    for the exp (calibrate --conformal peaked at 1920 MB for 347 MB of work). Now about 32 MiB a block."""
    from cli_helpers import traced_peak

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 400_000)).astype(np.float32)  # 64 MB; a 40-row block in float64 is 128 MB
    top, peak = traced_peak(lambda: _conformal.top_probabilities(logits, probs=False))
    assert peak < 110 * 2**20, peak
    z = logits.astype(np.float64)
    expect = np.sort(1 / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1))
    np.testing.assert_allclose(top, expect, rtol=1e-12)


def test_zero_probabilities_name_their_cause(capsys, tmp_path):
    """Review R19: predict without a calibrator warned that "an isotonic map gives 0" where huge logits
    underflowed; the cause is named as it is."""
    from cli_helpers import call

    z = np.array([[0.0, -5000.0, 1.0], [0.0, 1.0, 2.0]] * 30)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", np.array([0, 2] * 30))
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy", "--out",
                      tmp_path / "t.npz", "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", tmp_path / "t.npz", "--logits", tmp_path / "z.npy", "--out", tmp_path / "p.csv")
    assert rc == 0, err
    assert "30 of 60 rows" in err and "underflows to 0 in float64" in err and "isotonic" not in err
