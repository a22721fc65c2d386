"""``calibrate --conformal ALPHA --conformal-by-class``: Mondrian (class-conditional) prediction sets from the CLI.

The library's ``ConformalClassifier(class_conditional=True)`` gives each class its own threshold, so every class
is covered at the level, a rare one included; the CLI could fit only the marginal predictor, which here covers
the rare, hard class at about 0.64 at 90%. The option fits the class-conditional one, saves it, and the commands
that rebuild sets from the saved file (``apply``, ``evaluate``) use its per-class thresholds. A class with too few
calibration rows for a level (fewer than ``1/alpha - 1``) has no finite threshold and is in every set: said once
per level, naming the class, its rows and the rows needed. The numbers are checked against the library and
against MAPIE's split-conformal quantile rule applied class by class (MAPIE 1.x has no Mondrian class).
"""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from cli_helpers import call

pytest.importorskip("sklearn")

K = 3
PRIOR = (0.6, 0.3, 0.1)
SCALE = np.array([1.5, 1.0, 0.5])  # class 2 is rare and hard: the marginal threshold undercovers it


def _logits(n: int, *, seed: int, prior=PRIOR) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(K, n, p=prior)
    z = rng.normal(size=(n, K)) + 2.0 * np.eye(K)[y] * SCALE
    return z, y


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _files(tmp_path, z, y, name):
    np.save(tmp_path / f"{name}_z.npy", z)
    np.save(tmp_path / f"{name}_y.npy", y)
    return tmp_path / f"{name}_z.npy", tmp_path / f"{name}_y.npy"


def _calibrate(capsys, tmp_path, z, y, *extra):
    zf, yf = _files(tmp_path, z, y, "cal")
    rc, out, err = call(capsys, "calibrate", "--logits", zf, "--labels", yf, "--out", tmp_path / "c.npz",
                        "--conformal", "0.1,0.05", "--json", *extra)
    assert rc == 0, err
    return json.loads(out), err


def _warning_lines(err: str, start: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("softmaxkit: warning: " + start)]


def test_by_class_fits_saves_and_reports_the_class_conditional_predictor(tmp_path, capsys):
    from softmaxkit.conformal import ConformalClassifier, set_metrics
    from softmaxkit.io import load

    z, y = _logits(1500, seed=1)
    metrics, err = _calibrate(capsys, tmp_path, z, y, "--conformal-by-class")
    saved = load(tmp_path / "c.conformal.npz")
    assert saved.class_conditional is True
    assert metrics["conformal"]["class_conditional"] is True
    assert metrics["conformal"]["classes_too_few_rows"] == {}
    oracle = ConformalClassifier(class_conditional=True, random_state=0).fit(z, y)
    np.testing.assert_array_equal(saved.threshold([0.1, 0.05]), oracle.threshold([0.1, 0.05]))
    sets = oracle.predict_sets(z, alpha=[0.1, 0.05])
    for i, (name, a) in enumerate((("90%", 0.1), ("95%", 0.05))):
        assert metrics["conformal"]["levels"][name] == set_metrics(y, sets[:, :, i], alpha=a, conformal=oracle,
                                                                  classes=[str(c) for c in range(K)])
    # each class covered at the level on its own calibration rows: every class's rows, by construction
    assert min(metrics["conformal"]["levels"]["90%"]["coverage_by_class"].values()) >= 0.9
    rc, out, _ = call(capsys, "calibrate", "--logits", tmp_path / "cal_z.npy", "--labels", tmp_path / "cal_y.npy",
                      "--out", tmp_path / "m.npz", "--conformal", "0.1")
    assert rc == 0 and "one threshold per class" not in out
    assert load(tmp_path / "m.conformal.npz").class_conditional is False  # guard: marginal stays the default


def test_text_summary_says_one_threshold_per_class(tmp_path, capsys):
    z, y = _logits(600, seed=2)
    zf, yf = _files(tmp_path, z, y, "cal")
    rc, out, err = call(capsys, "calibrate", "--logits", zf, "--labels", yf, "--out", tmp_path / "c.npz",
                        "--conformal", "0.1", "--conformal-by-class", "--holdout", "0.5")
    assert rc == 0, err
    assert "one threshold per class from its own calibration rows, 300 in all, so coverage guaranteed for each " \
           "class" in out


def test_apply_and_evaluate_rebuild_sets_with_the_saved_per_class_thresholds(tmp_path, capsys):
    from softmaxkit.conformal import ConformalClassifier, set_metrics
    from softmaxkit.data import read_columns

    z, y = _logits(1500, seed=3)
    _calibrate(capsys, tmp_path, z, y, "--conformal-by-class")
    zt, yt = _logits(1500, seed=4)
    ztf, ytf = _files(tmp_path, zt, yt, "test")
    mondrian = ConformalClassifier(class_conditional=True, random_state=0).fit(z, y).predict_sets(zt, alpha=0.1)
    marginal = ConformalClassifier(random_state=0).fit(z, y).predict_sets(zt, alpha=0.1)
    assert (mondrian != marginal).any()  # the test can tell them apart

    rc, _, err = call(capsys, "apply", tmp_path / "c.npz", "--logits", ztf, "--out", tmp_path / "p.csv",
                      "--conformal", tmp_path / "c.conformal.npz", "--sets", "0.1")
    assert rc == 0, err
    written = read_columns(tmp_path / "p.csv", text_columns=("set_90",))
    np.testing.assert_array_equal(np.asarray(written["set_size_90"]), mondrian.sum(axis=1))
    expected = ["|".join(str(j) for j in np.flatnonzero(row)) for row in mondrian]
    assert [("" if v is None else str(v)) for v in written["set_90"]] == expected

    rc, out, err = call(capsys, "evaluate", "--logits", ztf, "--labels", ytf, "--conformal",
                        tmp_path / "c.conformal.npz", "--sets", "0.1", "--json")
    assert rc == 0, err
    level = json.loads(out)["conformal"]["levels"]["90%"]
    oracle = ConformalClassifier(class_conditional=True, random_state=0).fit(z, y)
    assert level == set_metrics(yt, mondrian, alpha=0.1, conformal=oracle, classes=[str(c) for c in range(K)])


def test_matches_mapie_split_conformal_applied_class_by_class(tmp_path, capsys):
    """MAPIE's LAC quantile rule, ``ceil((n+1)(1-alpha))/n`` of each class's calibration rows: the same per-class
    coverage and mean set size, where the marginal sets cover the rare class far below the level."""
    pytest.importorskip("mapie")
    from sklearn.base import BaseEstimator, ClassifierMixin

    from mapie.classification import SplitConformalClassifier

    class GivenProbabilities(ClassifierMixin, BaseEstimator):
        """A prefit classifier whose features are its probabilities: MAPIE's sets of the scores as given."""

        def fit(self, X, y=None):
            self.classes_ = np.arange(K)
            return self

        def predict_proba(self, X):
            return np.asarray(X)

        def predict(self, X):
            return np.asarray(X).argmax(axis=1)

    z, y = _logits(1500, seed=1)
    _calibrate(capsys, tmp_path, z, y, "--conformal-by-class")
    zt, yt = _logits(1500, seed=5)
    ztf, ytf = _files(tmp_path, zt, yt, "test")
    p, pt = _softmax(z), _softmax(zt)
    estimator = GivenProbabilities().fit(p)
    sets = np.zeros((len(yt), K), dtype=bool)
    with pytest.warns(UserWarning):  # "conformalization dataset has less labels": one class at a time, by design
        for c in range(K):
            mapie = SplitConformalClassifier(estimator=estimator, confidence_level=0.9, conformity_score="lac",
                                             prefit=True).conformalize(p[y == c], y[y == c])
            sets[:, c] = mapie.predict_set(pt)[1][:, c, 0]
    rc, out, err = call(capsys, "evaluate", "--logits", ztf, "--labels", ytf, "--conformal",
                        tmp_path / "c.conformal.npz", "--sets", "0.1", "--json")
    assert rc == 0, err
    level = json.loads(out)["conformal"]["levels"]["90%"]
    theirs = [float(sets[yt == c, c].mean()) for c in range(K)]
    np.testing.assert_allclose(list(level["coverage_by_class"].values()), theirs, rtol=0, atol=1e-12)
    assert level["mean_size"] == pytest.approx(float(sets.sum(axis=1).mean()), abs=1e-12)
    assert min(theirs) > 0.85  # every class near the level ...
    from softmaxkit.conformal import ConformalClassifier, class_coverage

    marginal = ConformalClassifier().fit(z, y).predict_sets(zt, alpha=0.1)
    assert class_coverage(yt, marginal)[2] < 0.8  # ... where one threshold for all leaves the rare class short


def test_a_class_with_too_few_rows_is_said_once_per_level_with_the_rows_needed(tmp_path, capsys):
    from softmaxkit.cli._conformal import rows_needed
    from softmaxkit.conformal import _rank_needed

    z, y = _logits(400, seed=6, prior=(0.65, 0.33, 0.02))
    rows = int(np.count_nonzero(y == 2))
    assert 0 < rows < 9  # the case: enough for no level
    metrics, err = _calibrate(capsys, tmp_path, z, y, "--conformal-by-class", "--report", tmp_path / "rep")
    said = _warning_lines(err, "One threshold per class")
    assert len(said) == 2, err  # one line per level, not the library's one per class and level
    assert "at 90% a class needs at least 9 calibration rows" in said[0] and f"class '2' ({rows} rows)" in said[0]
    assert "at 95% a class needs at least 19 calibration rows" in said[1] and "in every 95% set" in said[1]
    assert "is too small for n=" not in err
    page = html.unescape((tmp_path / "rep" / "report.html").read_text())
    assert said[0].removeprefix("softmaxkit: warning: ") in page  # the report's sets section says it too
    # 9 and 19 are the library's own bounds: the fewest rows with a finite k-th smallest score (1/21: a float
    # just below 1/21, which the library reads as the decimal it prints as)
    for a in (0.1, 0.05, 0.07, 0.3, 0.333, 1 / 21, 0.5, 0.9):
        needed = rows_needed(a)
        assert _rank_needed(needed, a) <= needed and _rank_needed(needed - 1, a) > needed - 1, a
    assert (rows_needed(0.1), rows_needed(0.05)) == (9, 19)
    assert metrics["conformal"]["classes_too_few_rows"] == {
        "90%": [{"class": "2", "rows": rows, "needed": 9}], "95%": [{"class": "2", "rows": rows, "needed": 19}]}
    assert all(any(w.startswith(line.removeprefix("softmaxkit: warning: ")) for w in metrics["warnings"])
               for line in said)
    # evaluate rebuilding the sets from the saved predictor says it too
    zt, yt = _logits(300, seed=7)
    ztf, ytf = _files(tmp_path, zt, yt, "test")
    rc, out, err = call(capsys, "evaluate", "--logits", ztf, "--labels", ytf, "--conformal",
                        tmp_path / "c.conformal.npz", "--sets", "0.1", "--json")
    assert rc == 0, err
    assert len(_warning_lines(err, "One threshold per class")) == 1 and "is too small for n=" not in err
    assert json.loads(out)["conformal"]["levels"]["90%"]["coverage_by_class"]["2"] == 1.0  # in every set


def test_a_class_shortfall_speaks_of_each_class_guarantee_when_by_class():
    from softmaxkit.cli._conformal import class_shortfalls

    short = {"class": "rare", "rows": 40, "coverage": 0.7, "coverage_ci": [0.52, 0.84], "ci": "95% CI",
             "calibration_rows": 30}
    summary = {"class_conditional": True, "classes_short_of_level": {"90%": [short]}}
    (line,) = class_shortfalls(summary)
    assert "each class's coverage is guaranteed (one threshold per class)" in line
    assert "its 30 calibration rows" in line and "not for each class's" not in line
    (marginal,) = class_shortfalls({**summary, "class_conditional": False})
    assert marginal.endswith("the guarantee is for all rows together, not for each class's")  # guard


def test_by_class_without_conformal_is_a_usage_error(tmp_path, capsys):
    z, y = _logits(100, seed=8)
    zf, yf = _files(tmp_path, z, y, "cal")
    with pytest.raises(SystemExit) as exit_info:  # a usage error, as --conformal-out's
        call(capsys, "calibrate", "--logits", zf, "--labels", yf, "--out", tmp_path / "c.npz", "--conformal-by-class")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--conformal-by-class needs --conformal ALPHA" in err, err
    assert not (tmp_path / "c.npz").exists()
