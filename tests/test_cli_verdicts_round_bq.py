"""Verdict wording found by audit BQ (2026-12-07, sixth session)."""

from __future__ import annotations


def _side(ece, lo, hi, *, floor, threshold, p, n=114, loss=0.09):
    return {"n": n, "ece": ece, "ece_ci": [lo, hi], "ece_noise_floor": floor, "ece_noise_threshold": threshold,
            "ece_p_calibrated": p, "log_loss": loss}


def test_a_rejected_side_whose_interval_reaches_zero_says_why_both_hold():
    """BQ-3: the breast-cancer demo read "p = 0.02: miscalibrated" beside a 95% CI of [0.0000, 0.0573] and
    said nothing of it. The verdict now says the interval is wide at small ECEs and the test is the sharper
    check; a rejected side whose interval stays above 0 gets no such clause."""
    from softmaxkit.cli._evaluation import verdict

    before = _side(0.0316, 0.0, 0.0573, floor=0.0216, threshold=0.0299, p=0.02)
    after = _side(0.0299, 0.0, 0.0521, floor=0.0272, threshold=0.0380, p=0.24, loss=0.084)
    text, _ = verdict(before, after, change="temperature scaling")
    assert ("p = 0.02: miscalibrated. Its 95% CI reaches 0 because the interval is built wide at small ECEs, "
            "while the test, against perfectly calibrated models at the same confidences, is the sharper check. "
            "After it the ECE is") in text, text

    away_from_zero = _side(0.0590, 0.030, 0.080, floor=0.030, threshold=0.0500, p=0.020, n=224)
    text, _ = verdict(away_from_zero, after, change="temperature scaling")
    assert "p = 0.02: miscalibrated." in text and "reaches 0" not in text, text
