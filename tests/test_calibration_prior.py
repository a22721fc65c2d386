"""The temperature prior (``prior_scale``) must not make a model worse by accident.

The prior of earlier versions (``pseudo_count=0.5`` soft targets on every row) softened a
well-calibrated model fitted on a few rows: wine, a logistic regression, 10 calibration
rows: T = 1.54, unseen log-loss 0.054 -> 0.113 (no prior: T = 1.22, 0.077).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from softmaxkit.calibration import (
    CalibrationWarning,
    MatrixScaling,
    SeparableWarning,
    TemperatureScaling,
    VectorScaling,
)


def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _log_loss(y, z):
    return float(-np.mean(_log_softmax(z)[np.arange(len(y)), y]))


def _calibrated_draw(rng, n, k=4, scale=2.0):
    """Logits of a perfectly calibrated model: labels drawn from softmax(z) (true T = 1)."""
    z = rng.standard_normal((n, k)) * scale
    p = np.exp(_log_softmax(z))
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(max=k - 1)
    return z, y


@pytest.mark.parametrize("n", [10, 30, 60])
def test_well_calibrated_model_keeps_t_near_one_and_is_not_made_worse(n):
    """Calibrating an already perfectly calibrated model on 10-60 rows (seeded draws). Any T
    other than 1 costs unseen log-loss here, so the ratio after/before is >= 1 on every draw;
    the fit must keep it small: median at most 1.02, under 5% of draws more than 10% worse,
    median T near 1. The soft targets of pseudo_count=0.5 (the old default) softened every
    fit: median 1.035 at n=10, 13% of draws more than 10% worse."""
    rng = np.random.default_rng(12345 + n)
    z_test, y_test = _calibrated_draw(rng, 20000)
    before = _log_loss(y_test, z_test)
    ratios, temps = [], []
    for _ in range(60):
        z, y = _calibrated_draw(rng, n)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CalibrationWarning)
            ts = TemperatureScaling().fit(z, y)
        # A draw of 10-30 rows over 4 classes may miss one, which is said (its own warning, tested in
        # test_imbalanced_calibration); apart from it:
        caught = [m for m in caught if "no row among" not in str(m.message)]
        # no bound, no warning, but for a draw whose rows are all ranked right (it says so)
        assert [str(m.message).startswith("the calibration set is separable") for m in caught] == [ts.separable_] * (
            len(caught) if ts.separable_ else 0)
        assert len(caught) == ts.separable_
        temps.append(ts.temperature_)
        ratios.append(_log_loss(y_test, ts.transform(z_test)) / before)
    assert np.median(ratios) <= 1.02
    assert np.mean(np.asarray(ratios) > 1.1) < 0.05
    assert 0.85 < np.median(temps) < 1.15


def test_audit_wine_ten_rows_no_longer_softened():
    """The audit's repro: LogisticRegression on wine, 10 calibration rows."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X_tr, X_r, y_tr, y_r = train_test_split(X, y, train_size=0.4, stratify=y, random_state=0)
    X_c, X_te, y_c, y_te = train_test_split(X_r, y_r, train_size=0.5, stratify=y_r, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_tr, y_tr)
    z_c, z_te = (np.log(np.clip(model.predict_proba(v), 1e-4, None)) for v in (X_c, X_te))
    sel = np.random.default_rng(0).choice(len(y_c), size=10, replace=False)
    before = _log_loss(y_te, z_te)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        ts = TemperatureScaling().fit(z_c[sel], y_c[sel])
    after = _log_loss(y_te, ts.transform(z_te))
    old = TemperatureScaling(pseudo_count=0.5, prior_scale=None).fit(z_c[sel], y_c[sel])
    mle = TemperatureScaling(prior_scale=None).fit(z_c[sel], y_c[sel])
    assert old.temperature_ == pytest.approx(1.536, abs=2e-3)  # the audit's numbers, reproduced
    assert _log_loss(y_te, old.transform(z_te)) == pytest.approx(0.1133, abs=2e-4)
    assert after <= _log_loss(y_te, mle.transform(z_te)) + 1e-3  # no worse than no prior (0.0767)
    assert 1.0 <= ts.temperature_ < mle.temperature_  # pulled from the MLE towards T = 1
    assert after < 1.5 * before


def _prior(beta, s, nu=4.0):
    """The prior's negative log-density: a Student-t with ``nu`` degrees of freedom on ``log beta``,
    of curvature ``1 / s^2`` at ``beta = 1`` (the library's choice, written out independently)."""
    return (nu + 1) / 2 * math.log1p(math.log(beta) ** 2 / ((nu + 1) * s * s))


def _penalised(z, y, w, s):
    """``u -> sum_i w_i nll_i(exp(u)) + prior(exp(u))``, the objective in ``u = log beta``."""
    def obj(u):
        b = math.exp(u)
        return float(w @ -(_log_softmax(b * z)[np.arange(len(y)), y])) + _prior(b, s)

    return obj


def _oracle_beta(z, y, w, s):
    """The global argmin over beta: a grid of 0.01 in log beta over [-15, 15], then bounded Brent
    in the best grid cell."""
    from scipy.optimize import minimize_scalar

    from softmaxkit import calibration

    assert calibration._PRIOR_DOF == 4.0  # the oracle writes the prior out for nu = 4
    obj = _penalised(z, y, w, s)
    us = np.arange(-15.0, 15.0, 0.01)
    i = int(np.argmin([obj(u) for u in us]))
    res = minimize_scalar(obj, bounds=(us[max(i - 1, 0)], us[min(i + 1, us.size - 1)]), method="bounded",
                          options={"xatol": 1e-12})
    return math.exp(res.x)


@pytest.mark.parametrize("case", ["random", "separable", "over_confident", "weighted", "under_confident"])
@pytest.mark.parametrize("s", [0.25, 0.5, 2.0])
def test_map_fit_matches_a_brute_force_minimisation(rng, case, s):
    pytest.importorskip("scipy")
    z = rng.standard_normal((25, 3)) * 3.0
    y = np.argmax(z + rng.gumbel(size=z.shape), axis=1)  # labels drawn from softmax(z)
    w = np.ones(25)
    if case == "separable":
        y = z.argmax(axis=1)
    elif case == "over_confident":
        z = z * 10.0
        y = np.where(rng.random(25) < 0.7, z.argmax(axis=1), rng.integers(0, 3, 25))
    elif case == "weighted":
        w = rng.integers(0, 4, 25).astype(float)
    elif case == "under_confident":
        z = z / 30.0  # the labels follow softmax(30 z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # the separable case says so (tested below)
        ts = TemperatureScaling(prior_scale=s).fit(z, y, sample_weight=w)
    assert ts.converged_ and not ts.at_bound_
    assert ts.beta_ == pytest.approx(_oracle_beta(z, y, w, s), rel=1e-5)


def _two_basins():
    """An under-confident model (the labels follow softmax(50 z)) on 40 rows whose penalised
    objective has two minima: a local one at beta ~ 1.4, near the prior's centre, and the global
    one at beta ~ 45, 9 nats lower."""
    rng = np.random.default_rng(1)
    n = int(rng.choice([20, 40, 80]))
    z = rng.standard_normal((n, 3)) * 2.0
    y = np.argmax(z + rng.gumbel(size=z.shape), axis=1)
    return z / 50.0, y


def test_the_grid_finds_the_global_minimum_beyond_a_local_one():
    """The prior is not convex, so a local search from beta = 1 (the previous fit's start, or a
    Newton method on this objective) would stop in the basin near 1.4 and keep the model almost
    as under-confident as it is. The fit searches [1, beta_ml] and finds the global minimum."""
    z, y = _two_basins()
    w = np.ones(len(y))
    obj = _penalised(z, y, w, 0.5)
    du = lambda u, h=1e-5: (obj(u + h) - obj(u - h)) / (2 * h)  # noqa: E731
    # a local minimum between beta = 1.2 and 1.6, downhill from beta = 1 ...
    assert du(0.0) < 0 and du(math.log(1.2)) < 0 < du(math.log(1.6))
    local = math.exp(float(np.linspace(math.log(1.2), math.log(1.6), 401)[
        np.argmin([obj(u) for u in np.linspace(math.log(1.2), math.log(1.6), 401)])]))
    # ... and the global one far beyond it
    best = _oracle_beta(z, y, w, 0.5)
    assert best > 30 and obj(math.log(best)) < obj(math.log(local)) - 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        ts = TemperatureScaling().fit(z, y)
    assert ts.beta_ == pytest.approx(best, rel=1e-5)
    # and the same on the large-input path (the grid runs on a subsample, Halley on all rows)
    big_z, big_y = np.tile(z, (300, 1)), np.tile(y, 300)
    assert TemperatureScaling().fit(big_z, big_y).beta_ == pytest.approx(
        TemperatureScaling().fit(z, y, sample_weight=np.full(len(y), 300.0)).beta_, rel=1e-6)


@pytest.mark.parametrize("frac", [1.0, 0.9, 0.6, 0.0])
def test_every_minimum_lies_between_one_and_the_likelihoods_optimum(rng, frac):
    """Why the grid on [1, beta_ml] suffices: outside it the likelihood's slope (the NLL is convex
    in beta) and the prior's have the same sign, so the penalised objective has no minimum there.
    Checked on separable, nearly separable, noisy and label-ignoring sets over 8 decades of beta."""
    from softmaxkit.calibration import _log_prior

    z = rng.standard_normal((40, 3)) * 4.0
    y = np.where(rng.random(40) < frac, z.argmax(axis=1), rng.integers(0, 3, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        beta_ml = TemperatureScaling(prior_scale=None).fit(z, y).beta_
    lo_, hi_ = min(1.0, beta_ml), max(1.0, beta_ml)
    d = z - z.max(axis=1, keepdims=True)
    for b in np.geomspace(1e-4, 1e4, 400):
        p = np.exp(_log_softmax(b * z))
        nll1 = float(np.sum((p * d).sum(axis=1) - d[np.arange(40), y]))
        g = nll1 + _log_prior(b, 4.0)[1]
        if b < lo_ * (1 - 1e-6):
            assert g < 0
        elif b > hi_ * (1 + 1e-6):
            assert g > 0


def test_prior_fades_with_the_calibration_set(rng):
    """Large calibration sets give essentially the maximum-likelihood temperature."""
    z, y = _calibrated_draw(rng, 20000)
    z = z * 1.7  # over-confident: the MLE is T ~ 1.7
    mle = TemperatureScaling(prior_scale=None).fit(z, y)
    assert TemperatureScaling().fit(z, y).temperature_ == pytest.approx(mle.temperature_, rel=1e-3)


def test_uninformative_logits_still_warn_under_the_prior(rng):
    """Logits that point away from the labels: the likelihood alone sits at beta -> 0. The prior
    keeps beta positive and finite (near-uniform probabilities); the flag and the warning still
    say that this is no optimum of the likelihood."""
    z = rng.standard_normal((300, 3))
    y = np.argmin(z, axis=1)
    with pytest.warns(CalibrationWarning, match="no information"):
        ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ > 10 and ts.at_bound_ and not ts.converged_
    assert VectorScaling().fit(z, y).converged_  # anchored at T = 1, as on the bound (negative slopes)


def test_flat_likelihood_keeps_t_one_silently():
    z = np.zeros((5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in (TemperatureScaling, VectorScaling, MatrixScaling):
            cal = cls().fit(z, np.array([0, 1, 2, 0, 1]))
            if cls is TemperatureScaling:
                assert cal.beta_ == 1.0 and not cal.separable_ and not cal.at_bound_


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, "0.5", True])
def test_bad_prior_scale_is_refused_by_name(bad):
    for cls in (TemperatureScaling, VectorScaling):
        with pytest.raises(ValueError, match="prior_scale"):
            cls(prior_scale=bad).fit(np.eye(3), np.arange(3))


@pytest.mark.parametrize("cls", [TemperatureScaling, VectorScaling, MatrixScaling])
def test_files_saved_before_prior_scale_load_and_refit_as_before(tmp_path, cls, rng):
    """A file written by earlier versions (pseudo_count=0.5 in its params, no prior_scale) loads
    with its fitted state, and its settings mean what they meant: refitting gives the old fit."""
    from softmaxkit import load
    from softmaxkit.io import save_state

    z = rng.standard_normal((30, 3)) * 2
    y = rng.integers(0, 3, 30)
    old = cls(pseudo_count=0.5, prior_scale=None).fit(z, y)
    meta, arrays = old._get_state()
    del meta["params"]["prior_scale"]  # the old format
    path = save_state(tmp_path / "old.npz", kind=cls.__name__, meta=meta, arrays=arrays)
    back = load(path)
    assert back.prior_scale is None and back.pseudo_count == 0.5
    np.testing.assert_allclose(back.predict_proba(z), old.predict_proba(z), rtol=0, atol=1e-15)
    np.testing.assert_allclose(back.fit(z, y).predict_proba(z), old.predict_proba(z), atol=1e-12)
    new = cls().fit(z, y)
    back2 = load(new.save(tmp_path / "new.npz"))
    assert back2.get_params() == new.get_params()


def test_no_prior_is_scikit_learns_temperature(rng):
    """prior_scale=None, pseudo_count=0: the plain maximum-likelihood fit, scikit-learn's to 1e-6."""
    pytest.importorskip("sklearn", minversion="1.8")  # its temperature method (Python 3.11+)
    pytest.importorskip("sklearn")
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from softmaxkit._precomputed import PrecomputedScores

    z = rng.standard_normal((400, 4)) * 3
    y = np.where(rng.random(400) < 0.6, z.argmax(axis=1), rng.integers(0, 4, 400))
    theirs = CalibratedClassifierCV(FrozenEstimator(PrecomputedScores().fit(z, y)), method="temperature").fit(z, y)
    ours = TemperatureScaling(prior_scale=None, pseudo_count=0).fit(z, y)
    np.testing.assert_allclose(ours.predict_proba(z), theirs.predict_proba(z), atol=1e-6)
    assert TemperatureScaling(prior_scale=None).get_params()["pseudo_count"] == 0  # the default


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
def test_affine_scalings_on_a_few_rows_of_a_calibrated_model(cls):
    """Vector and matrix scaling on 10 rows of a calibrated model: the old default (soft targets)
    made the median unseen log-loss 1.4-1.5x worse in the audit. The prior's anchor and an identity
    prior as strong as the temperature's help vector scaling; here (4 classes): 1.15 -> 1.06. Matrix
    scaling's 20 parameters over-fit 10 rows whatever the anchor: 1.38 (old), 1.36 (the Gamma prior
    on T), 1.39 (the Student-t prior, whose tails let a separable 10-row draw sharpen T more)."""
    rng = np.random.default_rng(7)
    z_test, y_test = _calibrated_draw(rng, 5000)
    before = _log_loss(y_test, z_test)
    new, old = [], []
    for _ in range(15):
        z, y = _calibrated_draw(rng, 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)  # a class may be absent from 10 rows
            new.append(_log_loss(y_test, cls().fit(z, y).transform(z_test)) / before)
            old.append(_log_loss(y_test, cls(pseudo_count=0.5, prior_scale=None).fit(z, y).transform(z_test)) / before)
    assert np.median(new) < np.median(old) * (1.0 if cls is VectorScaling else 1.02)
    if cls is VectorScaling:  # matrix scaling's C^2 + C parameters still over-fit 10 rows (ODIR's part)
        assert np.median(new) < 1.1


def _digits_under_confident():
    """The audit's under-confident model: digits, LogisticRegression(C=1e-4) (needs T ~ 0.025)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_r, y_tr, y_r = train_test_split(X, y, train_size=0.4, stratify=y, random_state=0)
    X_c, X_te, y_c, y_te = train_test_split(X_r, y_r, train_size=0.5, stratify=y_r, random_state=0)
    m = make_pipeline(StandardScaler(), LogisticRegression(C=1e-4, max_iter=2000)).fit(X_tr, y_tr)
    return m.decision_function(X_c), y_c, m.decision_function(X_te), y_te


@pytest.mark.parametrize("n", [30, 60])
def test_under_confident_model_is_not_held_back_by_the_prior(n):
    """The Gamma prior on beta of the previous version grew linearly in beta (about 140 nats at
    T = 0.024) and held T at 0.24 on 30 rows and 0.08 on 60: unseen log-loss 1.80 and 1.10 for the
    likelihood's 0.56 (over 40 draws, 3.0x and 2.0x). A strongly supported temperature must cost
    the prior only a few nats: every draw within 10% of the maximum-likelihood fit's log-loss."""
    pytest.importorskip("sklearn")
    z_c, y_c, z_te, y_te = _digits_under_confident()
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(10):
        sel = rng.choice(len(y_c), size=n, replace=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CalibrationWarning)  # a clean fit: no bound, nothing to say
            # but for a digit that 30 rows may miss, which has its own warning
            warnings.filterwarnings("ignore", message=".*no row among", category=CalibrationWarning)
            ts = TemperatureScaling().fit(z_c[sel], y_c[sel])
        mle = TemperatureScaling(prior_scale=None).fit(z_c[sel], y_c[sel])
        assert ts.temperature_ < 0.05  # the data's T (~0.025), not the prior's 1
        ratios.append(_log_loss(y_te, ts.transform(z_te)) / _log_loss(y_te, mle.transform(z_te)))
    assert max(ratios) < 1.1


def test_separable_set_warns_that_the_prior_set_t():
    """Every row ranked right: the library says, as the CLI does, that the prior alone set T."""
    z = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.5, 4.0], [1.0, 0.0, 0.0]])
    y = np.array([0, 1, 2, 0])
    # its own category, so that callers who say it themselves (the CLI) can silence just this one
    with pytest.warns(SeparableWarning, match=r"separable .*prior \(prior_scale\) alone holds the temperature"):
        ts = TemperatureScaling().fit(z, y)
    assert ts.separable_ and ts.converged_ and not ts.at_bound_
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)  # one error among the rows: no such warning
        assert not TemperatureScaling().fit(z, np.array([0, 1, 2, 1])).separable_


@pytest.mark.parametrize("cls", [TemperatureScaling, VectorScaling, MatrixScaling])
def test_weights_summing_to_one_warn_by_name(cls, rng):
    """Normalised weights (sum 1 over 200 rows) make the priors weigh as much as 200 x 4 rows: the
    audit's over-confident set (T 4.39) fitted T 1.33. The fit says so and names sample_weight."""
    z, y = _calibrated_draw(rng, 200)
    z = z * 4.0
    with pytest.warns(CalibrationWarning, match=r"sample_weight sums to 1 over 200 weighted rows"):
        cls().fit(z, y, sample_weight=np.full(200, 1 / 200))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        cls().fit(z, y, sample_weight=np.ones(200))  # frequency weights: silent
        no_prior = {"prior_scale": None} if cls is TemperatureScaling else {"prior_scale": None, "identity_reg": 0.0}
        cls(**no_prior).fit(z, y, sample_weight=np.full(200, 1 / 200))  # no prior to dominate: silent
