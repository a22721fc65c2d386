"""One-vs-rest maps on logits read each class's log-odds (audit CO).

Logits are defined up to a constant per row, but ``PlattScaling`` and ``IsotonicCalibration`` fitted
each class's map on the raw logit ``z_k`` (as scikit-learn's ``CalibratedClassifierCV`` does with
``decision_function``): on 3000 x 4 overconfident logits with a random offset per row, test log-loss
1.1436 (Platt) and 1.2444 (isotonic) against 1.0923 uncalibrated, and a map fitted on ``log_softmax``
and applied to the same model's logits took accuracy from 0.6193 to 0.4513, silently. They now read
``f_k = log(p_k / (1 - p_k)) = z_k - logsumexp_{j != k} z_j``; files saved before keep their maps.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import oracle
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing

import softmaxkit as sk
from softmaxkit.calibration import CalibrationWarning, IsotonicCalibration, PlattScaling, TemperatureScaling
from softmaxkit.io import ModelFileError, save_state

CLASSES = (PlattScaling, IsotonicCalibration)


def _log_odds(z: np.ndarray) -> np.ndarray:
    """The float64 oracle: ``z_k - logsumexp_{j != k} z_j``, row by row with ``math.fsum``."""
    return np.stack([z[:, k] - oracle.logsumexp(np.delete(z, k, axis=1)) for k in range(z.shape[1])], axis=1)


class LogOddsScores(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """A classifier around ``estimator`` whose ``decision_function`` is the one-vs-rest log-odds of
    the estimator's (its margin as it is for 2 classes): the scores our one-vs-rest maps read, for
    scikit-learn's ``CalibratedClassifierCV`` to read too (other test files use it for their parity
    checks). Routes ``fit``'s metadata to the estimator as its requests say; a ``FrozenEstimator``
    inside is never refitted."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y, sample_weight=None, **params):
        if sample_weight is not None:
            params["sample_weight"] = sample_weight
        if sklearn.get_config()["enable_metadata_routing"]:
            params = process_routing(self, "fit", **params).estimator.fit
        self.estimator_ = clone(self.estimator).fit(X, y, **params)
        self.classes_ = self.estimator_.classes_
        return self

    def decision_function(self, X):
        z = np.asarray(self.estimator_.decision_function(X), dtype=np.float64)
        return z if z.ndim == 1 else _log_odds(z)

    def predict(self, X):
        return self.estimator_.predict(X)

    def get_metadata_routing(self):
        mapping = MethodMapping().add(caller="fit", callee="fit")
        return MetadataRouter(owner=type(self).__name__).add(estimator=self.estimator, method_mapping=mapping)


def _model(n: int = 4000, c: int = 4, *, scale: float = 1.5, seed: int = 0):
    """Logits with labels drawn from their own softmax (a calibrated model), split in halves."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * scale
    p = oracle.softmax(z)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    h = n // 2
    return z[:h], y[:h], z[h:], y[h:]


def _fit(cls, z, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # isotonic's probability-0 ranges
        return cls().fit(z, y, sample_weight=sample_weight)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_constant_added_to_each_row_changes_nothing(cls):
    z, y, zt, _ = _model()
    rng = np.random.default_rng(1)
    shift, shift_t = rng.normal(scale=30.0, size=(len(z), 1)), rng.normal(scale=30.0, size=(len(zt), 1))
    w = rng.uniform(0.5, 2.0, len(z))
    plain, shifted = _fit(cls, z, y, w), _fit(cls, z + shift, y, w)
    for cal in (plain, shifted):
        for rows in (zt, zt + shift_t):
            np.testing.assert_allclose(cal.predict_proba(rows), plain.predict_proba(zt), rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", CLASSES)
def test_fitted_on_log_softmax_it_maps_the_logits_the_same(cls):
    """The audit's silent accuracy drop: a map fitted on log-probabilities and applied to logits."""
    z, y, zt, yt = _model(seed=2)
    on_log_p = _fit(cls, sk.log_softmax(z, axis=-1), y)
    on_z = _fit(cls, z, y)
    np.testing.assert_allclose(on_log_p.predict_proba(zt), on_z.predict_proba(zt), rtol=0, atol=1e-10)
    np.testing.assert_allclose(on_z.predict_proba(sk.log_softmax(zt, axis=-1)), on_z.predict_proba(zt),
                               rtol=0, atol=1e-10)


def test_platt_keeps_a_calibrated_model_calibrated():
    """Labels drawn from softmax(z), logits with a per-row offset: held-out log-loss no worse than the
    model's own beyond noise (before: each sigmoid read z_k, offset and all, and lost 0.05 or more)."""
    z, y, zt, yt = _model(n=6000, seed=3)
    rng = np.random.default_rng(4)
    z, zt = z + rng.normal(scale=3.0, size=(len(z), 1)), zt + rng.normal(scale=3.0, size=(len(zt), 1))
    raw = oracle.cross_entropy(zt, yt)
    platt = sk.metrics.log_loss(yt, probs=_fit(PlattScaling, z, y).predict_proba(zt))
    assert platt <= raw + 0.01, (platt, raw)


def test_unit_sigmoids_give_back_the_softmax():
    """a = 1, b = 0 is the identity: sigmoid(f_k) = p_k, which sum to 1, even where p_k is within
    1e-16 of 1 (the log-odds 40 - log 2, not the inf of log(p / (1 - p)) in floating point)."""
    z, y, _, _ = _model(n=400, c=3, seed=5)
    z = np.concatenate([z, [[40.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e6, 1e6 - 1.0, 1e6 - 2.0]]])
    cal = _fit(PlattScaling, z[:200], y[:200])
    cal.coef_, cal.intercept_ = np.ones(3), np.zeros(3)
    np.testing.assert_allclose(cal.predict_proba(z), oracle.softmax(z), rtol=1e-12, atol=1e-300)


def test_log_odds_match_the_float64_oracle():
    """Rows where p_k -> 1, ties, large offsets, and a class far below the rest (its log-odds about
    -800, which 1 - p_k and log(p_k) underflow to 0 and -inf)."""
    from softmaxkit._one_vs_rest import one_vs_rest_log_odds

    rng = np.random.default_rng(6)
    z = np.concatenate([
        rng.normal(scale=3.0, size=(50, 5)),
        [[40.0, 0.0, 0.0, 0.0, 0.0], [800.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0],
         [-800.0, 0.0, 1.0, 2.0, 2.0], [1e6, 1e6 + 0.5, 1e6 - 3.0, 1e6, -1e6], [5.0, 5.0, -30.0, -60.0, 5.0]],
    ])
    f = one_vs_rest_log_odds(z)
    expected = _log_odds(z)
    assert np.all(np.isfinite(f))
    # relative, but for the rounding of z itself (rows near 1e6: 1e-9)
    tolerance = 1e-13 * np.abs(expected) + 4 * np.finfo(float).eps * np.abs(z).max(axis=1, keepdims=True)
    assert np.all(np.abs(f - expected) <= tolerance), np.abs(f - expected).max()


def test_two_classes_still_read_the_margin():
    """The margin z_1 - z_0 is class 1's log-odds: binary fits are bitwise those of before."""
    z, y, zt, _ = _model(c=2, seed=7)
    for cls in CLASSES:
        cal = _fit(cls, z, y)
        assert cal.score_ == "log_odds"
        margin = _fit(cls, np.stack([np.zeros(len(z)), z[:, 1] - z[:, 0]], axis=1), y)
        np.testing.assert_array_equal(cal.predict_proba(zt), margin.predict_proba(zt))


def test_isotonic_on_logits_fits_the_steps_isotonic_on_probabilities_fits():
    """The log-odds order rows as p_k does: on the calibration rows both maps give the same values."""
    z, y, _, _ = _model(n=1200, seed=8)
    on_logits = _fit(IsotonicCalibration, z, y)
    on_probs = IsotonicCalibration(input="probs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        on_probs.fit(oracle.softmax(z), y)
    np.testing.assert_allclose(on_logits.predict_proba(z), on_probs.predict_proba(oracle.softmax(z)),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls,method", [(PlattScaling, "sigmoid"), (IsotonicCalibration, "isotonic")])
def test_scikit_learn_parity_on_the_log_odds(cls, method):
    """scikit-learn's CalibratedClassifierCV around a frozen model whose decision_function returns the
    log-odds gives our probabilities from the logits to 1e-6 (Platt: L-BFGS to 1e-6 there)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    z, y, zt, _ = _model(n=1200, seed=9)

    class Logits(ClassifierMixin, BaseEstimator):
        """The model: row i of X (one column, its index) scores z[i]."""

        def fit(self, X, y):
            self.classes_ = np.arange(4)
            return self

        def decision_function(self, X):
            return np.concatenate([z, zt])[X[:, 0].astype(int)]

    rows = np.arange(len(z) + len(zt))[:, None]
    frozen = FrozenEstimator(LogOddsScores(FrozenEstimator(Logits().fit(None, None))).fit(None, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = CalibratedClassifierCV(frozen, method=method).fit(rows[:len(z)], y)
    ours = _fit(cls, z, y).predict_proba(zt)
    np.testing.assert_allclose(ours, peer.predict_proba(rows[len(z):]), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- saved files


def _saved_before_score(cal, path) -> None:
    """``cal`` saved as versions before ``score_`` wrote it."""
    meta, arrays = cal._get_state()
    del meta["fitted"]["score_"]
    save_state(path, kind=type(cal).__name__, meta=meta, arrays=arrays)


def _raw_logit_probs(cal, z: np.ndarray) -> np.ndarray:
    """What the versions before the log-odds predicted: each map on the raw logit, renormalised."""
    if isinstance(cal, PlattScaling):
        q = 1.0 / (1.0 + np.exp(-(z * cal.coef_ + cal.intercept_)))
    else:
        q = np.stack([np.interp(z[:, k], kx, ky) for k, (kx, ky) in enumerate(cal.thresholds_)], axis=1)
    return q / q.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_file_saved_before_the_log_odds_keeps_its_raw_logit_maps(tmp_path, cls):
    z, y, zt, _ = _model(n=600, c=3, seed=10)
    cal = _fit(cls, z, y)
    _saved_before_score(cal, tmp_path / "old.npz")
    with pytest.warns(CalibrationWarning, match=r"saved by an earlier softmaxkit, whose maps read each of the 3 "
                                                r"classes' raw logit.*Fitted again, it maps each class's log-odds"):
        old = sk.load(tmp_path / "old.npz")
    assert old.score_ == "raw_logit"
    np.testing.assert_allclose(old.predict_proba(zt), _raw_logit_probs(old, zt), rtol=0, atol=1e-12)
    old.save(tmp_path / "again.npz")  # saved again: still the old maps, and says so
    with pytest.warns(CalibrationWarning, match="raw logit"):
        assert sk.load(tmp_path / "again.npz").score_ == "raw_logit"
    refitted = _fit(cls, z, y)
    assert refitted.score_ == "log_odds"
    np.testing.assert_array_equal(refitted.predict_proba(zt), cal.predict_proba(zt))


@pytest.mark.parametrize("cls", CLASSES)
def test_files_whose_maps_read_what_they_read_now_load_quietly(tmp_path, cls):
    """Two classes (the margin) and probabilities meant the same before: no raw_logit, no warning."""
    z, y, zt, _ = _model(n=600, c=2, seed=11)
    probs = oracle.softmax(_model(n=600, c=3, seed=12)[0])
    cases = [(_fit(cls, z, y), zt), (cls(input="probs").fit(probs, np.arange(300) % 3), probs)]
    for i, (cal, rows) in enumerate(cases):
        _saved_before_score(cal, tmp_path / f"old{i}.npz")
        cal.save(tmp_path / f"new{i}.npz")
        with warnings.catch_warnings():
            warnings.simplefilter("error", CalibrationWarning)
            for name in (f"old{i}.npz", f"new{i}.npz"):
                loaded = sk.load(tmp_path / name)
                assert loaded.score_ == cal.score_
                np.testing.assert_array_equal(loaded.predict_proba(rows), cal.predict_proba(rows))
    assert cases[1][0].score_ == "probability"  # isotonic and Platt's default feature read p itself


def test_a_platt_file_from_before_feature_and_score_reads_log_odds_of_p(tmp_path):
    p = oracle.softmax(_model(n=600, c=3, seed=13)[0])
    cal = PlattScaling(input="probs", feature="log_odds").fit(p, np.arange(300) % 3)
    assert cal.score_ == "log_odds"
    meta, arrays = cal._get_state()
    del meta["fitted"]["score_"], meta["params"]["feature"]
    save_state(tmp_path / "old.npz", kind="PlattScaling", meta=meta, arrays=arrays)
    old = sk.load(tmp_path / "old.npz")
    assert (old.feature, old.score_) == ("log_odds", "log_odds")
    np.testing.assert_array_equal(old.predict_proba(p), cal.predict_proba(p))


@pytest.mark.parametrize("score,c,input", [("raw_logit", 2, "logits"), ("probability", 3, "logits"),
                                            ("raw_logit", 3, "probs"), ("logit", 3, "logits")])
def test_a_score_that_does_not_fit_the_calibrator_is_refused(tmp_path, score, c, input):
    z, y, _, _ = _model(n=600, c=c, seed=14)
    cal = PlattScaling(input=input).fit(z if input == "logits" else oracle.softmax(z), y)
    meta, arrays = cal._get_state()
    meta["fitted"]["score_"] = score
    save_state(tmp_path / "bad.npz", kind="PlattScaling", meta=meta, arrays=arrays)
    with pytest.raises(ModelFileError, match=rf"corrupted PlattScaling state \(score_ must be .* got '{score}'\)"):
        sk.load(tmp_path / "bad.npz")


# --------------------------------------------------------------------------- audit CO F7


def test_a_minus_inf_true_logit_gets_advice_that_works_for_logits():
    """The advice was "Pass eps= (with input='probs')", which logits refuse."""
    rng = np.random.default_rng(15)
    z, y = rng.normal(size=(200, 3)) * 2.0, np.arange(200) % 3
    z[7, y[7]] = -np.inf
    with pytest.raises(ValueError, match=r"row 7 gives probability 0 to its true class 1 \(its logit is -inf\).*"
                                         r"Leave the row out, replace -inf by a finite floor, or pass "
                                         r"softmax\(logits\) with input='probs' and eps="):
        TemperatureScaling().fit(z, y)
    # each piece of the advice fits
    floored = z.copy()
    floored[7, y[7]] = z[np.isfinite(z)].min() - 30.0
    for cal, rows, labels in [(TemperatureScaling(), np.delete(z, 7, axis=0), np.delete(y, 7)),
                              (TemperatureScaling(), floored, y),
                              (TemperatureScaling(input="probs", eps=1e-12), oracle.softmax(z), y)]:
        assert np.isfinite(cal.fit(rows, labels).temperature_)
    with pytest.raises(ValueError, match=r"row 7 gives probability 0 to its true class 1: .*Pass eps= to clip "
                                         r"probabilities\.$"):
        TemperatureScaling(input="probs").fit(oracle.softmax(z), y)


# --------------------------------------------------------------------------- apply --probs


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_apply_takes_probabilities_for_maps_of_the_log_odds(capsys, tmp_path, method):
    """The audit's F4: calibrate on log-probabilities, apply to the model's logits or probabilities: the
    same answer now. Refused before ("probabilities would give different, wrong results"), which was
    true of raw-logit maps: a file saved before the log-odds is still refused, as vector scaling is."""
    from cli_helpers import call, error_line

    from softmaxkit.data import read_columns, write_columns

    z, y, zt, _ = _model(n=1200, c=3, seed=16)
    zt = zt + np.random.default_rng(17).normal(scale=5.0, size=(len(zt), 1))
    cols = ("a", "b", "c")
    write_columns(tmp_path / "cal.csv", {k: v for k, v in zip(cols, sk.log_softmax(z, axis=-1).T)})
    write_columns(tmp_path / "y.csv", {"y": y})
    write_columns(tmp_path / "z.csv", {k: v for k, v in zip(cols, zt.T)})
    write_columns(tmp_path / "p.csv", {k: v for k, v in zip(cols, oracle.softmax(zt).T)})
    cal = tmp_path / "cal.npz"
    assert call(capsys, "calibrate", "--logits", tmp_path / "cal.csv", "--labels", tmp_path / "y.csv", "--method",
                method, "--out", cal, "-q")[0] == 0

    def applied(flag, scores, out, calibrator=cal):
        rc, _, err = call(capsys, "apply", calibrator, flag, scores, "--out", tmp_path / out, "-q")
        if rc:
            return rc, error_line(err)
        got = read_columns(tmp_path / out)
        return rc, np.column_stack([np.asarray(got[f"p_{k}"], dtype=float) for k in range(3)])

    expected = sk.load(cal).predict_proba(zt)
    for flag, scores in (("--logits", "z.csv"), ("--probs", "p.csv")):
        rc, got = applied(flag, tmp_path / scores, f"out_{scores}")
        assert rc == 0, got
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)

    # a probability of exactly 0: its log-odds are -inf, which the maps take nowhere; said with the row
    p = oracle.softmax(zt)
    p[4] = [0.5, 0.5, 0.0]
    write_columns(tmp_path / "p0.csv", {k: v for k, v in zip(cols, p.T)})
    rc, said = applied("--probs", tmp_path / "p0.csv", "never.csv")
    assert rc == 1 and re.search(r"p0\.csv: row 5 \(line 6\): class '2' has probability 0, whose log-odds are "
                                 r"-inf.*pass the model's logits \(--logits\)", said), said

    # a file saved before the log-odds keeps its raw-logit maps, which log p changes: still refused
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        _saved_before_score(sk.load(cal), tmp_path / "old.npz")
    rc, said = applied("--probs", tmp_path / "p.csv", "never.csv", calibrator=tmp_path / "old.npz")
    assert rc == 1 and "needs logits (--logits)" in said, said
