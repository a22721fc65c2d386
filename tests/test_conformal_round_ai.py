"""Audit AI (conformal sets, library and CLI).

- ``calibrate --conformal 0.1 --conformal-score aps`` printed the fitting rows' coverage as 0.892 at 90%
  under "the rows that set the threshold: covered by construction": the fit drew the randomisation from
  one stream and the summary re-made the sets with another. By construction it is >= ceil((n+1)(1-a))/n.
- n = 20, alpha = 1/21 as a float (just below 1/21): the warning said "Use alpha >= 1/(n+1) = 0.04762",
  what the user typed.
- TemperatureScaling's absent-class warning named classes by column index where the CLI knows the names.
- ``ConformalClassifier.fit`` accepted calibration labels missing classes without a word (one class of
  10: sets of 8.98 classes).
- ``set_metrics(..., conformal=cp)`` refused the estimator's labels that ``cp.classes_`` holds.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from cli_helpers import call


def _data(n, k, *, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 1.5
    y = np.array([rng.choice(k, p=np.exp(r) / np.exp(r).sum()) for r in z])
    return z, y


# --------------------------------------------------------------------------- A1: covered by construction


@pytest.mark.parametrize("score", ["aps", "raps"])
def test_calibration_rows_reuse_the_fit_draws(score):
    """With calibration_rows=True a row is covered exactly when its calibration score is at most the
    threshold, so the coverage is at least k/n; the default (fresh draws, as for new rows) is not."""
    from softmaxkit.conformal import ConformalClassifier

    z, y = _data(1000, 12, seed=3)
    cp = ConformalClassifier(score=score, random_state=0).fit(z, y)
    alphas = [0.1, 0.05, 0.2]
    counts = cp.set_counts(z, y, alpha=alphas, calibration_rows=True)
    for i, a in enumerate(alphas):
        k = math.ceil(1001 * (1 - a) - 1e-9)
        by_scores = int(np.sum(cp.calibration_scores_ <= cp.threshold(a)))
        assert int(counts.covered[:, i].sum()) == by_scores >= k
    sets = cp.predict_sets(z, alpha=alphas, calibration_rows=True)
    assert (sets[np.arange(len(y)), y] == counts.covered).all()


def test_calibration_rows_need_the_fit_rows_and_an_int_seed():
    from softmaxkit.conformal import ConformalClassifier

    z, y = _data(200, 4, seed=1)
    cp = ConformalClassifier(score="aps", random_state=0).fit(z, y)
    with pytest.raises(ValueError, match="X has 100 rows but the conformal classifier was fitted on 200"):
        cp.set_counts(z[:100], y[:100], 0.1, calibration_rows=True)
    cp = ConformalClassifier(score="aps", random_state=np.random.default_rng(0)).fit(z, y)
    with pytest.raises(ValueError, match="needs an int random_state"):
        cp.set_counts(z, y, 0.1, calibration_rows=True)
    # LAC draws nothing: any random_state will do
    lac = ConformalClassifier(random_state=None).fit(z, y)
    assert lac.set_counts(z, y, 0.1, calibration_rows=True).covered.mean() >= 0.9


def test_cli_in_sample_aps_coverage_is_at_least_the_level(capsys, tmp_path):
    """The audit's command: the fitting rows' coverage is at least ceil((n+1)(1-a))/n at every level
    (fresh draws gave 0.892 at 90% on the audit's 1000 rows)."""
    z, y = _data(1000, 12, seed=5)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    for score in ("aps", "raps"):
        rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                            "--out", tmp_path / f"{score}.npz", "--conformal", "0.1,0.05,0.2,0.15",
                            "--conformal-score", score, "--json")
        assert rc == 0, err
        sets = json.loads(out)["conformal"]
        assert "covered by construction" in sets["evaluated_on"]
        for m in sets["levels"].values():
            assert m["coverage"] * 1000 >= math.ceil(1001 * m["target_coverage"] - 1e-9), (score, m)


# --------------------------------------------------------------------------- A2: alpha just below 1/(n+1)


def test_alpha_below_one_over_n_plus_one_by_rounding_says_so():
    from softmaxkit.conformal import ConformalClassifier, ConformalWarning

    z, y = _data(20, 4, seed=0)
    cp = ConformalClassifier().fit(z, y)
    with pytest.warns(ConformalWarning) as caught:
        assert cp.threshold(1 / 21) == np.inf
    text = str(caught[0].message)
    assert "alpha=0.047619047619047616" in text
    assert "below 1/(n+1) = 1/21 only by float rounding" in text
    assert "Use alpha >= 1/(n+1) = 0.04762 (1/21, rounded up)" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(cp.threshold(0.04762))


def test_suggested_alpha_is_rounded_up():
    """1/41 = 0.0243902...: the nearest 4 digits, 0.02439, is still too small; the advice says 0.0244."""
    from softmaxkit.conformal import ConformalWarning, conformal_quantile

    with pytest.warns(ConformalWarning, match=r"Use alpha >= 1/\(n\+1\) = 0\.0244 \(1/41") as caught:
        conformal_quantile(np.arange(40.0), 0.02439)
    assert "float rounding" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(conformal_quantile(np.arange(40.0), 0.0244))


# --------------------------------------------------------------------------- A3: names in the warning


def test_temperature_absent_class_warning_uses_class_names():
    from softmaxkit.calibration import CalibrationWarning, TemperatureScaling

    z, y = _data(60, 4, seed=2)
    y = np.where(y == 1, 0, y)
    ts = TemperatureScaling()
    ts.class_names_ = ["cat", "dog", "eel", "fox"]  # as the CLI gives a calibrator its columns' names
    with pytest.warns(CalibrationWarning, match=r"class 'dog' has no row among the 60 calibration rows"):
        ts.fit(z, y)
    with pytest.warns(CalibrationWarning, match=r"class 1 has no row"):  # no names: the column index
        TemperatureScaling().fit(z, y)


# --------------------------------------------------------------------------- A4: absent classes in fit


def test_fit_warns_on_classes_without_calibration_rows():
    from softmaxkit.conformal import ConformalClassifier, ConformalWarning

    z, y = _data(300, 5, seed=4)
    with pytest.warns(ConformalWarning, match=r"classes 1, 2, 3 and 4 have no row among the 300 calibration "
                      r"rows: the threshold is learnt without them.*coverage can be far below the level"):
        ConformalClassifier().fit(z, np.zeros(300, dtype=int))
    with pytest.warns(ConformalWarning, match=r"class 3 has no row.*it will be in every set"):
        ConformalClassifier(class_conditional=True).fit(z, np.where(y == 3, 0, y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConformalClassifier().fit(z, y)  # every class present: silent


def test_cli_conformal_absent_class_warning_names_the_class(capsys, tmp_path):
    import csv

    names = ["ant", "bee", "cow", "doe"]
    z, y = _data(120, 4, seed=6)
    y = np.where(y == 2, 0, y)  # no 'cow'
    with open(tmp_path / "s.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*(f"logit_{c}" for c in names), "label"])
        for row, label in zip(z, y):
            w.writerow([*row, names[label]])
    rc, out, err = call(capsys, "calibrate", "--logits", tmp_path / "s.csv", "--labels", tmp_path / "s.csv",
                        "--label-column", "label", "--out", tmp_path / "c.npz", "--conformal", "0.1")
    assert rc == 0, err
    assert "class 'cow' has no row among the 120 calibration rows: the threshold is learnt without it" in err


# --------------------------------------------------------------------------- A5: set_metrics and labels


def test_set_metrics_reads_the_estimators_labels():
    from sklearn.linear_model import LogisticRegression

    from softmaxkit.conformal import ConformalClassifier, set_metrics

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    names = np.array(["ant", "bee", "cow"])
    y = names[np.argmax(X + rng.normal(size=(600, 3)), axis=1)]
    est = LogisticRegression().fit(X[:200], y[:200])
    cp = ConformalClassifier(estimator=est).fit(X[200:400], y[200:400])
    sets = cp.predict_sets(X[400:], 0.1)
    by_name = set_metrics(y[400:], sets, alpha=0.1, conformal=cp)
    by_index = set_metrics(np.searchsorted(cp.classes_, y[400:]), sets, alpha=0.1, conformal=cp)
    assert by_name["coverage"] == by_index["coverage"]
    assert list(by_name["coverage_by_class"]) == ["ant", "bee", "cow"]
    with pytest.raises(ValueError, match="not one of the estimator's classes_"):
        set_metrics(np.where(y[400:] == "ant", "asp", y[400:]), sets, alpha=0.1, conformal=cp)
