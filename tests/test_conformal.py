"""softmaxkit.conformal: split-conformal prediction sets and their metrics.

The guarantee is tested as a statistical statement: over many random
calibration/test splits the mean coverage must equal its exact finite-sample
value ``k / (n + 1)``, ``k = ceil((n+1)(1-alpha))`` (which lies in
``[1 - alpha, 1 - alpha + 1/(n+1)]``), within a tolerance of 4 Monte-Carlo
standard errors computed from the splits themselves. An off-by-one in the
quantile moves the mean by ``1/(n+1)``, about 3 standard errors' worth here, so
these tests can fail.

Peer: MAPIE 1.6's ``SplitConformalClassifier`` (prefit) on the same
probabilities. Where the definitions agree the sets are compared exactly;
where they differ the test says how.
"""

from __future__ import annotations

import json
import re
import math
import warnings

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit.conformal import (
    ConformalClassifier,
    ConformalWarning,
    class_coverage,
    conformal_quantile,
    conformity_scores,
    coverage,
    coverage_by_set_size,
    mean_set_size,
    prediction_sets,
    set_labels,
    set_metrics,
    set_size_histogram,
    set_sizes,
)

Z_TOL = 4.0  # Monte-Carlo tolerance in standard errors (two-sided p ~ 6e-5 per check)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data(rng, n, c=8, scale=2.0):
    """Logits ``z`` and labels drawn from ``softmax(z)``: the model's probabilities are the true ones."""
    z = rng.standard_normal((n, c)) * scale
    y = (rng.random(n)[:, None] > np.cumsum(_softmax(z), axis=1)).sum(axis=1)
    return z, np.minimum(y, c - 1)


def _oracle_scores(p, u, k_reg, lam):
    """float64 APS/RAPS scores of every class, by a full sort (the definition, written plainly)."""
    n, c = p.shape
    out = np.empty((n, c))
    for i in range(n):
        order = sorted(range(c), key=lambda j: (-p[i, j], j))
        before = 0.0
        for r, j in enumerate(order):
            out[i, j] = before + u[i] * p[i, j] + lam * max(0, r + 1 - k_reg)
            before += p[i, j]
    return out


def _exact_expected_coverage(n, alpha):
    k = math.ceil((n + 1) * (1 - alpha))
    return k / (n + 1)


# --------------------------------------------------------------------------- the guarantee


@pytest.mark.parametrize(
    "options",
    [
        dict(score="lac"),
        dict(score="aps", randomized=True),
        dict(score="raps", randomized=True, k_reg=2, lambda_=0.05),
    ],
    ids=["lac", "aps", "raps"],
)
@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_mean_coverage_over_splits_is_the_exact_finite_sample_value(options, alpha):
    """E[coverage] = k/(n+1) in [1-alpha, 1-alpha+1/(n+1)] for continuous scores, any model.

    The model is deliberately over-confident (it reports 2.5 z for labels drawn
    from softmax(z)): the guarantee does not need calibrated probabilities.
    """
    rng = np.random.default_rng(20)
    n_cal, n_test, n_splits = 100, 100, 800
    z, y = _data(rng, 20_000)
    logits = 2.5 * z
    cov = np.empty(n_splits)
    for r in range(n_splits):
        rows = rng.choice(len(y), n_cal + n_test, replace=False)
        cal, test = rows[:n_cal], rows[n_cal:]
        cp = ConformalClassifier(**options, random_state=rng).fit(logits[cal], y[cal])
        cov[r] = coverage(y[test], cp.predict_sets(logits[test], alpha=alpha))
    mean, se = cov.mean(), cov.std(ddof=1) / math.sqrt(n_splits)
    exact = _exact_expected_coverage(n_cal, alpha)
    assert 1 - alpha <= exact <= 1 - alpha + 1 / (n_cal + 1)
    assert abs(mean - exact) <= Z_TOL * se, (mean, exact, se)
    assert mean >= 1 - alpha - Z_TOL * se
    assert mean <= 1 - alpha + 1 / (n_cal + 1) + Z_TOL * se
    # the test has the power to see an off-by-one in the quantile rank
    assert 1 / (n_cal + 1) > 2.5 * se


def test_non_randomized_adaptive_sets_keep_the_lower_bound():
    """u = 0: deterministic sets that always hold the top class; coverage >= 1 - alpha (only a lower bound)."""
    rng = np.random.default_rng(21)
    z, y = _data(rng, 20_000, scale=1.0)
    n_cal, n_splits, alpha = 100, 600, 0.1
    for score in ("aps", "raps"):
        cov = np.empty(n_splits)
        for r in range(n_splits):
            rows = rng.choice(len(y), 2 * n_cal, replace=False)
            cp = ConformalClassifier(score=score, randomized=False, k_reg=2).fit(z[rows[:n_cal]], y[rows[:n_cal]])
            sets = cp.predict_sets(z[rows[n_cal:]], alpha=alpha)
            assert sets[np.arange(n_cal), np.argmax(z[rows[n_cal:]], axis=1)].all()  # top class always in
            cov[r] = coverage(y[rows[n_cal:]], sets)
        assert cov.mean() >= 1 - alpha - Z_TOL * cov.std(ddof=1) / math.sqrt(n_splits)


def test_class_conditional_coverage_holds_for_every_class():
    """Mondrian: each class's coverage is k_c/(n_c+1) in expectation, with n_c that class's calibration rows."""
    rng = np.random.default_rng(22)
    c, alpha, n_cal, n_test, n_splits = 4, 0.1, 400, 400, 400
    # class 3 is rare (about 6% of rows) and hard (flat logits): marginal LAC under-covers it
    z = rng.standard_normal((40_000, c)) * 2.0
    z[:, 3] -= 2.0
    y = np.minimum((rng.random(len(z))[:, None] > np.cumsum(_softmax(z), axis=1)).sum(axis=1), c - 1)
    gap = {True: [], False: []}
    for r in range(n_splits):
        rows = rng.choice(len(y), n_cal + n_test, replace=False)
        cal, test = rows[:n_cal], rows[n_cal:]
        for mondrian in (True, False):
            cp = ConformalClassifier(class_conditional=mondrian).fit(z[cal], y[cal])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConformalWarning)
                per_class = class_coverage(y[test], cp.predict_sets(z[test], alpha=alpha))
            n_c = np.bincount(y[cal], minlength=c)
            expected = np.array([_exact_expected_coverage(k, alpha) if k else 1.0 for k in n_c])
            gap[mondrian].append(per_class - (expected if mondrian else 1 - alpha))
    g = np.array(gap[True])  # (splits, classes), NaN where a class had no test row
    for j in range(c):
        col = g[~np.isnan(g[:, j]), j]
        assert abs(col.mean()) <= Z_TOL * col.std(ddof=1) / math.sqrt(len(col)), (j, col.mean())
    # without Mondrian the rare, hard class is under-covered: the option is needed
    m = np.array(gap[False])[:, 3]
    m = m[~np.isnan(m)]
    assert m.mean() < -Z_TOL * m.std(ddof=1) / math.sqrt(len(m))


def test_ties_count_as_inside_so_coverage_holds_with_discrete_scores():
    """Probabilities on a coarse grid tie a lot; the set rule s <= q (ties in) keeps coverage >= 1 - alpha."""
    rng = np.random.default_rng(23)
    table = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.1, 0.3, 0.6]])
    p = table[rng.integers(0, len(table), 20_000)]  # the model's probabilities are the true ones
    y = np.minimum((rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1), 2)
    assert len(np.unique(1 - p[np.arange(len(y)), y])) <= 7  # heavy ties
    n_cal, n_splits, alpha = 50, 800, 0.1
    cov = np.empty(n_splits)
    for r in range(n_splits):
        rows = rng.choice(len(y), 2 * n_cal, replace=False)
        cp = ConformalClassifier(input="probs").fit(p[rows[:n_cal]], y[rows[:n_cal]])
        cov[r] = coverage(y[rows[n_cal:]], cp.predict_sets(p[rows[n_cal:]], alpha=alpha))
    assert cov.mean() >= 1 - alpha - Z_TOL * cov.std(ddof=1) / math.sqrt(n_splits)
    # the tie rule, directly: a test score equal to the threshold is in the set
    cp = ConformalClassifier(input="probs").fit([[0.8, 0.2]] * 3 + [[0.5, 0.5]], [0, 0, 0, 0])
    assert cp.threshold(0.2) == pytest.approx(0.5)  # k = ceil(5 * 0.8) = 4: the largest of 4 scores
    assert cp.predict_sets([[0.5, 0.5], [0.49, 0.51]], alpha=0.2).tolist() == [[True, True], [False, True]]


def test_lac_gives_the_smallest_sets_on_average():
    """With the true probabilities, LAC minimises the expected set size at a coverage (Sadinle et al. 2019).

    Compared on the same rows: the paired size differences are positive by
    many standard errors.
    """
    rng = np.random.default_rng(24)
    z, y = _data(rng, 30_000, c=10, scale=1.5)
    cal, test = np.arange(10_000), np.arange(10_000, 30_000)
    sizes = {}
    for name, options in {"lac": dict(score="lac"), "aps": dict(score="aps"),
                          "raps": dict(score="raps", k_reg=2, lambda_=0.02),
                          "aps_det": dict(score="aps", randomized=False)}.items():
        cp = ConformalClassifier(**options, random_state=0).fit(z[cal], y[cal])
        sets = cp.predict_sets(z[test], alpha=0.1)
        assert coverage(y[test], sets) >= 0.9 - 0.01
        sizes[name] = set_sizes(sets).astype(float)
    for other in ("aps", "raps", "aps_det"):
        d = sizes[other] - sizes["lac"]
        assert d.mean() > Z_TOL * d.std(ddof=1) / math.sqrt(len(d)), (other, d.mean())


def test_raps_with_lambda_zero_equals_aps():
    rng = np.random.default_rng(25)
    z, y = _data(rng, 3000, c=12)
    for randomized in (True, False):
        for mondrian in (True, False):
            kw = dict(randomized=randomized, class_conditional=mondrian, random_state=5)
            aps = ConformalClassifier(score="aps", **kw).fit(z[:2000], y[:2000])
            raps = ConformalClassifier(score="raps", k_reg=3, lambda_=0.0, **kw).fit(z[:2000], y[:2000])
            np.testing.assert_array_equal(aps.calibration_scores_, raps.calibration_scores_)
            np.testing.assert_array_equal(aps.predict_sets(z[2000:], [0.05, 0.1, 0.3]),
                                          raps.predict_sets(z[2000:], [0.05, 0.1, 0.3]))
    # and lambda > 0 does change them (the comparison above is not vacuous)
    raps = ConformalClassifier(score="raps", k_reg=1, lambda_=0.2, random_state=5).fit(z[:2000], y[:2000])
    assert not np.array_equal(raps.predict_sets(z[2000:]), aps.predict_sets(z[2000:]))


# --------------------------------------------------------------------------- definitions


def test_quantile_is_the_exact_order_statistic():
    s = np.arange(1.0, 10.0)  # n = 9
    assert conformal_quantile(s, 0.1) == 9.0  # k = ceil(10 * 0.9) = 9
    assert conformal_quantile(s, 0.5) == 5.0  # k = ceil(5) = 5
    assert conformal_quantile(s, 0.55) == 5.0  # ceil(4.5) = 5
    np.testing.assert_array_equal(conformal_quantile(s[::-1], [0.1, 0.5]), [9.0, 5.0])
    # rational arithmetic: (n+1)(1-alpha) = 207 exactly for n = 249, alpha = 0.172; the float product is
    # 207.00000000000003, whose ceiling (208) is one rank too conservative
    n = 249
    assert math.ceil((n + 1) * (1 - 0.172)) == 208
    assert conformal_quantile(np.arange(n, dtype=float), 0.172) == 206.0  # the 207th smallest


def test_alpha_too_small_for_n_gives_every_class_with_a_clear_warning():
    rng = np.random.default_rng(26)
    z, y = _data(rng, 5, c=3)
    cp = ConformalClassifier().fit(z, y)
    too_small = r"alpha=0\.1 is too small for n=5 calibration rows: .* = 6 > n, so every class is in every set"
    with pytest.warns(ConformalWarning, match=too_small):
        sets = cp.predict_sets(z, alpha=0.1)
    assert sets.all()
    with pytest.warns(ConformalWarning, match=r"alpha >= 1/\(n\+1\) = 0\.1667"):
        assert cp.threshold(0.1) == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isfinite(cp.threshold(0.2))  # ceil(6 * 0.8) = 5 <= 5: fine
    mondrian = ConformalClassifier(class_conditional=True).fit(z, np.array([0, 0, 0, 1, 2]))
    with pytest.warns(ConformalWarning) as caught:
        t = mondrian.threshold(0.3)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2 and "n=1 calibration rows of class 1: " in messages[0]
    assert "so class 1 is in every set" in messages[0] and "class 2" in messages[1]
    assert t.shape == (3,) and math.isfinite(t[0]) and math.isinf(t[1])


def test_kernels_match_the_plain_definition_including_ties():
    """Every class's APS/RAPS score from the sort-free kernel equals the oracle, and sets are {s <= q}."""
    rng = np.random.default_rng(27)
    p = rng.integers(0, 4, size=(300, 7)).astype(float) + 1e-3  # many ties
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(300)
    for k_reg, lam in ((1, 0.0), (2, 0.1), (0, 0.5)):
        score = "aps" if lam == 0 else "raps"
        oracle = _oracle_scores(p, u, k_reg, lam)
        for j in range(7):
            got = conformity_scores(p, np.full(300, j), score=score, u=u, k_reg=k_reg, lambda_=lam)
            np.testing.assert_allclose(got, oracle[:, j], rtol=0, atol=1e-12)
        t = np.quantile(oracle, [0.2, 0.5, 0.8])
        sets = prediction_sets(p, t, score=score, u=u, k_reg=k_reg, lambda_=lam)
        margin = np.abs(oracle[:, :, None] - t).min()
        assert margin > 1e-12  # no score on a threshold: the comparison is not decided by rounding
        np.testing.assert_array_equal(sets, oracle[:, :, None] <= t)
    lac = prediction_sets(p, 0.6, score="lac")
    np.testing.assert_array_equal(lac, 1 - p <= 0.6)


@pytest.mark.parametrize("n_classes", [4, 9, 300])
@pytest.mark.parametrize("randomized", [False, True])
def test_a_class_whose_score_equals_the_threshold_is_in_the_set(n_classes, randomized):
    """Fitting and predicting round a score alike, so a class tying the threshold exactly is inside.

    The threshold is one of the calibration scores, so a test row equal to a
    calibration row ties it exactly (tree leaves, rounded outputs). If the set
    kernel summed ``before(y)`` in another order than the score kernel, one ulp
    would decide: found by an audit, APS sets dropped the true class of 0.45% of
    rows that way and coverage fell to 0.8955 at a guaranteed 0.95.
    """
    rng = np.random.default_rng(41 + n_classes)
    p = _softmax(rng.standard_normal((120, n_classes)) * 2)
    p[:40] = np.round(p[:40], 2)  # ties between classes, and sums that are not exactly 1
    p[:40] /= p[:40].sum(axis=1, keepdims=True)
    u = rng.random(120) if randomized else np.zeros(120)
    for k_reg, lam in ((1, 0.0), (2, 0.2)):
        score = "aps" if lam == 0 else "raps"
        for j in range(min(n_classes, 12)):
            own = conformity_scores(p, np.full(120, j), score=score, u=u, k_reg=k_reg, lambda_=lam)
            t = own[rng.choice(120, 6, replace=False)]  # thresholds tied exactly by those rows
            sets = prediction_sets(p, t, score=score, u=u, k_reg=k_reg, lambda_=lam)
            np.testing.assert_array_equal(sets[:, j, :], own[:, None] <= t, err_msg=f"class {j}, {score}")


def test_deterministic_aps_covers_repeated_probability_rows():
    """The audit's case: four distinct classes' probabilities, every row the same; sets must hold all four."""
    rng = np.random.default_rng(0)
    p = np.tile([0.1, 0.1, 0.5, 0.3], (4000, 1))
    y = rng.choice(4, 4000, p=p[0])
    cp = ConformalClassifier(score="aps", randomized=False, input="probs").fit(p[:2000], y[:2000])
    sets = cp.predict_sets(p[2000:], alpha=0.05)
    assert sets.all()  # the threshold is the score of the last-ranked class: every class is in
    assert coverage(y[2000:], sets) == 1.0


def test_adaptive_sets_with_many_small_probabilities_match_the_definition():
    """At 300 classes most probabilities are tiny: the kernel sorts only the classes that can be in a set.

    Thresholds from below 1 to above 1 (RAPS) and +inf (alpha too small) take
    every branch of that shortcut; the sets must equal the plain definition.
    """
    rng = np.random.default_rng(35)
    z = rng.standard_normal((200, 300)) * 1.5
    z[np.arange(200), rng.integers(0, 300, 200)] += rng.uniform(0, 12, 200)
    p = _softmax(z)
    u = rng.random(200)
    for k_reg, lam in ((1, 0.0), (5, 0.01), (2, 0.3)):
        score = "aps" if lam == 0 else "raps"
        oracle = _oracle_scores(p, u, k_reg, lam)
        t = np.array([*np.quantile(oracle[np.arange(200), rng.integers(0, 300, 200)], [0.1, 0.5, 0.9]),
                      0.5, 0.999, 1.5, np.inf])
        sets = prediction_sets(p, t, score=score, u=u, k_reg=k_reg, lambda_=lam)
        np.testing.assert_array_equal(sets, oracle[:, :, None] <= t)
        assert 1 < set_sizes(sets[:, :, 4]).mean() < 299


def test_sets_are_nested_in_alpha_and_adaptive_sets_are_prefixes():
    rng = np.random.default_rng(28)
    z, y = _data(rng, 4000, c=10)
    alphas = [0.02, 0.05, 0.1, 0.2, 0.4]
    for score in ("lac", "aps", "raps"):
        for mondrian in (False, True):
            cp = ConformalClassifier(score=score, class_conditional=mondrian, random_state=1).fit(z[:2000], y[:2000])
            sets = cp.predict_sets(z[2000:], alphas)
            assert not np.any(sets[:, :, 1:] & ~sets[:, :, :-1])  # larger alpha -> subset
            single = cp.predict_sets(z[2000:], 0.1)
            np.testing.assert_array_equal(single, sets[:, :, 2])  # same uniforms for a list or a float
    cp = ConformalClassifier(score="aps", random_state=1).fit(z[:2000], y[:2000])
    sets = cp.predict_sets(z[2000:], 0.1)
    rank = np.argsort(np.argsort(-z[2000:], axis=1, kind="stable"), axis=1)
    assert np.array_equal(sets, rank < set_sizes(sets)[:, None])


def test_inputs_logits_probs_torch_and_estimators_agree():
    rng = np.random.default_rng(29)
    z, y = _data(rng, 1200, c=5)
    ref = ConformalClassifier(score="aps", random_state=3).fit(z[:800], y[:800]).predict_sets(z[800:], [0.1, 0.2])
    p = _softmax(z)
    via_probs = ConformalClassifier(score="aps", input="probs", random_state=3).fit(p[:800], y[:800])
    np.testing.assert_array_equal(via_probs.predict_sets(p[800:], [0.1, 0.2]), ref)
    torch = pytest.importorskip("torch")
    via_torch = ConformalClassifier(score="aps", random_state=3).fit(torch.from_numpy(z[:800]),
                                                                     torch.from_numpy(y[:800]))
    np.testing.assert_array_equal(via_torch.predict_sets(torch.from_numpy(z[800:]), [0.1, 0.2]), ref)
    f32 = ConformalClassifier(score="lac").fit(z[:800].astype(np.float32), y[:800])
    f64 = ConformalClassifier(score="lac").fit(z[:800], y[:800])
    np.testing.assert_allclose(f32.calibration_scores_, f64.calibration_scores_, atol=1e-6)


def test_wraps_a_fitted_sklearn_classifier_and_softmaxclassifier_with_text_labels():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y_idx = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y_idx]
    rng = np.random.default_rng(30)
    rows = rng.permutation(len(y_idx))
    tr, cal, te = rows[:60], rows[60:105], rows[105:]
    for model in (LogisticRegression(max_iter=1000), sk.SoftmaxClassifier(random_state=0, max_iter=300)):
        model.fit(X[tr], names[tr])
        cp = ConformalClassifier(estimator=model).fit(X[cal], names[cal])
        assert list(cp.classes_) == ["setosa", "versicolor", "virginica"]
        sets = cp.predict_sets(X[te], alpha=0.1)
        same = ConformalClassifier(input="probs").fit(model.predict_proba(X[cal]), y_idx[cal])
        np.testing.assert_array_equal(sets, same.predict_sets(model.predict_proba(X[te]), alpha=0.1))
        with pytest.raises(ValueError, match=r"y\[0\] = 'rose' is not one of the estimator's classes_"):
            ConformalClassifier(estimator=model).fit(X[:2], np.array(["rose", "setosa"]))
        with pytest.raises(TypeError, match="cannot be saved"):
            cp.save("unused.npz")


def test_save_load_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(31)
    z, y = _data(rng, 1000, c=6)
    for options in (dict(score="lac"), dict(score="raps", k_reg=2, lambda_=0.1, class_conditional=True)):
        cp = ConformalClassifier(**options, random_state=4).fit(z[:600], y[:600])
        for suffix in (".npz", ".safetensors"):
            if suffix == ".safetensors":
                pytest.importorskip("safetensors")
            path = cp.save(tmp_path / f"cp{suffix}")
            back = sk.load(path)
            assert isinstance(back, ConformalClassifier)
            assert back.get_params() == cp.get_params()
            np.testing.assert_array_equal(back.predict_sets(z[600:], [0.1, 0.3]), cp.predict_sets(z[600:], [0.1, 0.3]))
    with np.load(tmp_path / "cp.npz", allow_pickle=False) as data:  # loads with pickle disabled
        assert "calibration_scores" in data.files
    from softmaxkit.io import ModelFileError, save_state

    save_state(tmp_path / "bad.npz", kind="ConformalClassifier", meta={"params": {}, "n_classes": 6},
               arrays={"calibration_scores": np.ones(3), "class_counts": np.ones(6, dtype=np.int64)})
    with pytest.raises(ModelFileError, match="class_counts do not match"):
        sk.load(tmp_path / "bad.npz")


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(32)
    z, y = _data(rng, 50, c=3)
    with pytest.raises(ValueError, match="score must be one of"):
        ConformalClassifier(score="naive").fit(z, y)
    with pytest.raises(ValueError, match="k_reg must be an int >= 0"):
        ConformalClassifier(score="raps", k_reg=-1).fit(z, y)
    with pytest.raises(ValueError, match="lambda_ must be a finite float >= 0"):
        ConformalClassifier(score="raps", lambda_=-0.1).fit(z, y)
    with pytest.raises(ValueError, match="input must be one of"):
        ConformalClassifier(input="scores").fit(z, y)
    with pytest.raises(ValueError, match=r"y contains class index 3 at position \[1\]"):
        ConformalClassifier().fit(z[:2], [0, 3])
    with pytest.raises(ValueError, match="not fitted"):
        ConformalClassifier().predict_sets(z)
    cp = ConformalClassifier().fit(z, y)
    for bad in (0.0, 1.0, -0.1, 1.5, "0.1", [], [0.1, 2.0], True, None):
        with pytest.raises(ValueError, match="alpha"):
            cp.predict_sets(z, alpha=bad)
    with pytest.raises(ValueError, match="X has 4 classes but the conformal classifier was fitted on 3"):
        cp.predict_sets(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="X must be finite probabilities in"):
        ConformalClassifier(input="probs").fit(z, y)
    # [0.5, 0.5, ...] rows are exact bfloat16 values, so the bfloat16 tolerance was tried too.
    with pytest.raises(ValueError, match=r"rows of X must sum to 1 \(within [0-9.]+ for float64"
                       r"( holding bfloat16 values)?\); row 0"):
        ConformalClassifier(input="probs").fit(np.full((3, 3), 0.5), [0, 1, 2])
    with pytest.raises(ValueError, match=r"NaN or \+inf; found nan at position \(0, 1\)"):
        cp.predict_sets([[0.0, np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"u must hold numbers in \[0, 1\]; u\[1\] = 2.0"):
        conformity_scores(_softmax(z[:2]), y[:2], score="aps", u=[0.5, 2.0])


def test_zero_dimensional_array_alpha_is_a_scalar():
    """The issue: np.array(0.1) (a config value through np.asarray) gave a bare
    'iteration over a 0-d array' TypeError in predict_sets and conformal_quantile."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 3))
    y = rng.integers(0, 3, 50)
    cp = ConformalClassifier().fit(z, y)
    sets = cp.predict_sets(z, alpha=np.array(0.1))
    assert sets.shape == (50, 3)  # a scalar's shape, not one level's (50, 1, 3)
    np.testing.assert_array_equal(sets, cp.predict_sets(z, alpha=0.1))
    s = np.arange(10.0)
    assert conformal_quantile(s, alpha=np.array(0.1)) == conformal_quantile(s, alpha=0.1) == 9.0
    assert conformal_quantile(s, alpha=np.float32(0.5)) == 5.0
    for bad in (np.array(1.5), np.array(True), np.array("0.1")):
        with pytest.raises(ValueError, match="alpha"):
            cp.predict_sets(z, alpha=bad)


# --------------------------------------------------------------------------- metrics


def test_coverage_range_has_no_upper_end_where_scores_tie_at_the_threshold(capsys, tmp_path):
    """Audit: with 95% of rows at p_y = 1.0 (LAC score 0), the mean coverage over 200 calibration draws was
    0.954 while the range shown as guaranteed was [0.9, 0.905]: that upper end needs scores without ties."""
    rng = np.random.default_rng(0)

    def draw(n):
        y = rng.integers(0, 3, n)
        z = rng.normal(size=(n, 3))
        z[np.arange(n), y] += np.where(rng.random(n) < 0.95, 50.0, 0.0)  # saturated: p_y == 1.0 exactly
        return z, y

    covered = []
    for _ in range(200):
        z, y = draw(200)
        predictor = ConformalClassifier().fit(z, y)
        zt, yt = draw(200)
        covered.append(coverage(yt, predictor.predict_sets(zt, alpha=0.1)))
    assert np.mean(covered) > 0.93  # far above 0.9 + 1/201
    assert predictor.coverage_range(0.1) == (pytest.approx(0.9), None)
    # Distinct scores keep the upper end; class-conditional takes it from each class's rows.
    z = rng.normal(size=(300, 3))
    y = rng.integers(0, 3, 300)
    assert ConformalClassifier().fit(z, y).coverage_range(0.1) == pytest.approx((0.9, 0.9 + 1 / 301))
    mondrian = ConformalClassifier(class_conditional=True).fit(z, y)
    assert mondrian.coverage_range(0.1)[1] == pytest.approx(0.9 + 1 / (np.bincount(y).min() + 1))
    # The CLI's table and JSON say the same.
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    zs, ys = draw(300)
    np.save(tmp_path / "zs.npy", zs)
    np.save(tmp_path / "ys.npy", ys)
    for logits, labels, want in (("z", "y", 0.9 + 1 / 301), ("zs", "ys", None)):
        assert call(capsys, "calibrate", "--logits", str(tmp_path / f"{logits}.npy"), "--labels",
                    str(tmp_path / f"{labels}.npy"), "--out", str(tmp_path / f"{logits}.cal.npz"), "--conformal", "0.1",
                    "--quiet")[0] == 0
        rc, out, err = call(capsys, "evaluate", "--logits", str(tmp_path / f"{logits}.npy"), "--labels",
                            str(tmp_path / f"{labels}.npy"), "--conformal", str(tmp_path / f"{logits}.cal.conformal.npz"),
                            "--sets", "0.1", "--json")
        assert rc == 0, err
        assert json.loads(out)["conformal"]["levels"]["90%"]["guaranteed_range"] == [0.9, pytest.approx(want)]


def test_a_class_without_calibration_rows_asks_for_rows_not_an_impossible_alpha():
    z = np.random.default_rng(1).normal(size=(40, 3))
    with pytest.warns(ConformalWarning, match=r"class 2 is in every set\. Add calibration rows of class 2\.$"):
        ConformalClassifier(class_conditional=True).fit(z, np.arange(40) % 2).predict_sets(z, alpha=0.1)


def test_set_metrics_on_a_hand_computed_example():
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    y = np.array([0, 2, 1, 2, 0])
    assert coverage(y, sets) == pytest.approx(2 / 5)  # rows 0 and 3
    np.testing.assert_allclose(class_coverage(y, sets), [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(set_sizes(sets), [1, 2, 0, 3, 1])
    assert mean_set_size(sets) == pytest.approx(7 / 5)
    np.testing.assert_array_equal(set_size_histogram(sets), [1, 2, 1, 1])
    np.testing.assert_allclose(coverage_by_set_size(y, sets), [0.0, 0.5, 0.0, 1.0])
    assert set_labels(sets, ["a", "b", "c"]) == ["a", "a|b", "", "a|b|c", "b"]
    predictor = ConformalClassifier().fit(np.random.default_rng(0).normal(size=(99, 3)), np.arange(99) % 3)
    m = set_metrics(y, sets, alpha=0.1, conformal=predictor, classes=["a", "b", "c"])
    assert m["coverage"] == pytest.approx(0.4) and m["mean_size"] == pytest.approx(1.4)
    assert m["guaranteed_range"] == pytest.approx([0.9, 0.91])
    assert m["size_histogram"] == {"0": 1, "1": 2, "2": 1, "3": 1}
    assert m["coverage_by_class"] == {"a": 0.5, "b": 0.0, "c": 0.5}
    assert m["empty"] == pytest.approx(0.2) and m["singleton"] == pytest.approx(0.4)
    assert m["multiple"] == pytest.approx(0.4)
    # shares that sum to 1 in floating point print as 0.0%, not -0.0% (counted, not 1 - empty - singleton)
    seven_empty = np.zeros((100, 2), dtype=bool)
    seven_empty[7:, 0] = True  # 1 - 0.07 - 0.93 is -1.1e-16
    _, rows = conformal_table({"levels": {"90%": {**set_metrics(np.zeros(100, dtype=int), seven_empty, alpha=0.1),
                                                  "guaranteed_range": [0.9, 0.91]}}})
    assert rows[0][-3:] == ["7.0%", "93.0%", "0.0%"]
    lo, hi = m["coverage_ci"]
    assert lo < 0.4 < hi
    json.dumps(m)  # JSON-ready
    # a class with no rows has NaN coverage (None in the dict), not 0
    assert np.isnan(class_coverage([0, 0], sets[:2])[2])
    assert set_metrics([0, 0], sets[:2])["coverage_by_class"]["2"] is None
    # (n, C, A) masks give one value per level
    stacked = np.stack([sets, np.ones_like(sets)], axis=2)
    np.testing.assert_allclose(coverage(y, stacked), [0.4, 1.0])
    np.testing.assert_allclose(mean_set_size(stacked), [1.4, 3.0])
    assert set_size_histogram(stacked).shape == (4, 2)


# --------------------------------------------------------------------------- MAPIE


def _mapie(score, probs_cal, y_cal, alphas, seed, **predict):
    """MAPIE 1.6 SplitConformalClassifier on a prefit pass-through model whose features are the probabilities."""
    pytest.importorskip("mapie")
    from mapie.classification import SplitConformalClassifier

    from softmaxkit._precomputed import PrecomputedScores

    model = PrecomputedScores(kind="probs").fit(probs_cal)
    mp = SplitConformalClassifier(estimator=model, confidence_level=[1 - a for a in alphas],
                                  conformity_score=score, prefit=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.conformalize(probs_cal, y_cal)
    return mp


def _mapie_sets(mp, probs, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mp.predict_set(probs, conformity_score_params=params)[1]


def _mapie_quantiles(mp):
    """MAPIE's thresholds (set by its last ``predict_set``)."""
    return np.ravel(mp._mapie_classifier.conformity_score_function_.quantiles_)


@pytest.fixture(scope="module")
def mapie_data():
    rng = np.random.default_rng(33)
    z, y = _data(rng, 1500, c=6)
    p = _softmax(2.0 * z)  # over-confident model
    return p[:900], y[:900], p[900:], y[900:]


def test_lac_matches_mapie_exactly(mapie_data):
    pc, yc, pt, _ = mapie_data
    alphas = [0.05, 0.1, 0.2]
    mp = _mapie("lac", pc, yc, alphas, seed=0)
    ours = ConformalClassifier(input="probs").fit(pc, yc)
    np.testing.assert_array_equal(ours.predict_sets(pt, alphas), _mapie_sets(mp, pt))
    np.testing.assert_allclose(ours.threshold(alphas), _mapie_quantiles(mp))


def test_aps_matches_mapie_with_the_same_uniforms(mapie_data):
    """MAPIE always randomises the APS calibration score: ``cumsum_including_y - u p_y`` = ours with ``1 - u``.

    * ``include_last_label="randomized"`` keeps the label that crosses the
      threshold when ``cumsum - u' p <= q``: our randomised rule with ``1 - u'``.
      Equal sets.
    * ``include_last_label=True`` (MAPIE's default) always keeps it: our rule
      with ``u = 0`` at prediction. Equal sets, given MAPIE's (randomised)
      threshold. Our ``randomized=False`` also calibrates with ``u = 0``, so its
      threshold is smaller than MAPIE's and its sets are subsets: MAPIE's
      default mixes a randomised calibration with a deterministic set, which
      over-covers.
    * ``include_last_label=False`` drops the crossing label but keeps at least
      one; no score of ours defines that set.
    MAPIE draws ``u`` from ``RandomState(seed).uniform`` at calibration and
    again at prediction, so the test rebuilds the same draws.
    """
    pc, yc, pt, yt = mapie_data
    alphas, seed = [0.05, 0.1, 0.2], 11
    mp = _mapie("aps", pc, yc, alphas, seed)
    u_cal = 1 - np.random.RandomState(seed).uniform(size=len(yc))
    u_test = 1 - np.random.RandomState(seed).uniform(size=len(pt))
    scores = conformity_scores(pc, yc, score="aps", u=u_cal)
    np.testing.assert_allclose(scores, np.ravel(mp.conformity_scores), atol=1e-12)
    q = conformal_quantile(scores, alphas)
    np.testing.assert_array_equal(prediction_sets(pt, q, score="aps", u=u_test),
                                  _mapie_sets(mp, pt, include_last_label="randomized"))
    np.testing.assert_allclose(q, _mapie_quantiles(mp))
    mapie_default = _mapie_sets(mp, pt)
    np.testing.assert_array_equal(prediction_sets(pt, q, score="aps", u=None), mapie_default)
    ours_det = ConformalClassifier(score="aps", randomized=False, input="probs").fit(pc, yc).predict_sets(pt, alphas)
    assert not np.any(ours_det & ~mapie_default)
    assert ours_det.sum() < mapie_default.sum()


def test_raps_matches_mapie_given_its_k_lambda_and_split(mapie_data):
    """MAPIE's RAPS is not RAPS with given k_reg and lambda: it holds out part of the calibration rows
    (``StratifiedShuffleSplit`` with ``test_size=None``, i.e. 10%: the ``size_raps=0.2`` default is
    overwritten by ``None`` inside ``SplitConformalClassifier``) to pick ``k_star`` (the quantile of the
    true label's rank, + 1) and ``lambda_star`` (the value in {0.001, 0.01, 0.1, 0.2, 0.5} with the
    smallest sets). Given those choices and the same 90% of rows, the randomised sets agree.

    Two more differences: with ``include_last_label=True`` MAPIE adds the crossing label with the
    penalty of the rank before it (a score we do not define), and its randomised V divides by
    ``p_L - lambda (L - k)^+ + lambda [L > k]`` instead of the paper's ``p_L``, which matters only for
    sets longer than ``k_star + 1``, so those rows are left out of the comparison.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    pc, yc, pt, _ = mapie_data
    alphas, seed = [0.1, 0.2], 12
    mp = _mapie("raps", pc, yc, alphas, seed)
    mapie_sets = _mapie_sets(mp, pt, include_last_label="randomized")
    fn = mp._mapie_classifier.conformity_score_function_
    keep, _ = next(StratifiedShuffleSplit(n_splits=1, test_size=None, random_state=seed).split(pc, yc))
    assert len(np.ravel(mp.conformity_scores)) == len(keep)
    u_cal = 1 - np.random.RandomState(seed).uniform(size=len(keep))
    u_test = 1 - np.random.RandomState(seed).uniform(size=len(pt))
    k_star = np.broadcast_to(fn.k_star, len(alphas))
    lam_star = np.broadcast_to(fn.lambda_star, len(alphas))
    compared = 0
    for a, alpha in enumerate(alphas):
        kw = dict(score="raps", k_reg=int(k_star[a]), lambda_=float(lam_star[a]))
        q = conformal_quantile(conformity_scores(pc[keep], yc[keep], u=u_cal, **kw), alpha)
        assert q == pytest.approx(fn.quantiles_[a], abs=1e-12)
        ours = prediction_sets(pt, q, u=u_test, **kw)
        short = mapie_sets[:, :, a].sum(axis=1) <= k_star[a] + 1
        np.testing.assert_array_equal(ours[short], mapie_sets[short, :, a])
        compared += short.sum()
    assert compared > 0.8 * len(pt) * len(alphas)


def test_mapie_refuses_levels_we_answer_and_rounds_the_rank_up():
    """Where the quantile conventions differ.

    * MAPIE requires ``n >= 1/alpha``; n = 9, alpha = 0.1 is refused there, while
      ``ceil(10 * 0.9) = 9 <= 9`` is a valid (finite) threshold: the largest score.
    * MAPIE forms ``ceil((n+1)(1-alpha))`` in floating point; for n = 249, alpha =
      0.172 it takes the 208th smallest score where the exact rank is 207.
    """
    rng = np.random.default_rng(34)
    z, y = _data(rng, 300, c=3)
    p = _softmax(z)
    mp = _mapie("lac", p[:9], y[:9], [0.1], seed=0)
    with pytest.raises(ValueError, match="Number of samples of the score is too low"):
        _mapie_sets(mp, p[9:])
    ours = ConformalClassifier(input="probs").fit(p[:9], y[:9])
    assert ours.threshold(0.1) == pytest.approx(np.max(1 - p[np.arange(9), y[:9]]))
    mp = _mapie("lac", p[:249], y[:249], [0.172], seed=0)
    _mapie_sets(mp, p[249:])
    s = np.sort(1 - p[np.arange(249), y[:249]])
    assert _mapie_quantiles(mp)[0] == s[207]
    assert ConformalClassifier(input="probs").fit(p[:249], y[:249]).threshold(0.172) == s[206]


# --------------------------------------------------------------------------- CLI


from cli_helpers import call  # noqa: E402

from softmaxkit.cli._conformal import table as conformal_table  # noqa: E402


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    """Held-out logits and labels of a 5-class model (as a user's network would write them)."""
    d = tmp_path_factory.mktemp("conformal_cli")
    rng = np.random.default_rng(36)
    z, y = _data(rng, 1200, c=5)
    np.save(d / "logits.npy", (2 * z).astype(np.float32))
    np.save(d / "labels.npy", y)
    return d


def test_cli_calibrate_conformal_saves_a_predictor_and_reports_its_sets(capsys, cli_files, tmp_path):
    logits, labels = str(cli_files / "logits.npy"), str(cli_files / "labels.npy")
    rc, out, err = call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", str(tmp_path / "cal.npz"),
                        "--holdout", "0.5", "--conformal", "0.1,0.05", "--conformal-score", "aps",
                        "--report", str(tmp_path / "rep"), "--json")
    assert rc == 0, err
    result = json.loads(out)
    cp = sk.load(tmp_path / "cal.conformal.npz")  # the default path: next to --out
    assert isinstance(cp, ConformalClassifier) and cp.score == "aps" and cp.n_calibration_ == 600
    levels = result["conformal"]["levels"]
    assert set(levels) == {"90%", "95%"}
    # the reported numbers are the library's, on the held-out half (the rows not used for fitting)
    z, y = np.load(logits), np.load(labels)
    from softmaxkit.cli._common import holdout_rows

    fit_rows, eval_rows = holdout_rows(y, 0.5, 0)  # calibrate's own split (--seed 0)
    sets = cp.predict_sets(z[eval_rows], alpha=[0.1, 0.05])
    assert levels["90%"]["coverage"] == pytest.approx(coverage(y[eval_rows], sets[:, :, 0]))
    assert levels["95%"]["mean_size"] == pytest.approx(mean_set_size(sets[:, :, 1]))
    assert levels["90%"]["guaranteed_range"] == pytest.approx([0.9, 0.9 + 1 / 601])
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Prediction sets with guaranteed coverage" in page and "Size-stratified coverage" in page
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["conformal"]["score"] == "aps"


def test_cli_predict_writes_each_rows_set_and_evaluate_scores_them(capsys, cli_files, tmp_path):
    from sklearn.datasets import load_iris

    from softmaxkit.cli._adapters import class_logits
    from softmaxkit.data import read_columns, write_columns

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    rows = np.random.default_rng(37).permutation(len(y))
    feats = lambda r: {**{f"f{j}": X[r, j] for j in range(4)}, "species": names[r]}  # noqa: E731
    write_columns(tmp_path / "train.csv", feats(rows[:60]))
    write_columns(tmp_path / "test.csv", feats(rows[100:]))
    assert call(capsys, "fit", str(tmp_path / "train.csv"), "--target", "species", "--out",
                str(tmp_path / "model.npz"), "--quiet")[0] == 0
    model = sk.load(tmp_path / "model.npz")
    cal_logits = class_logits(model, X[rows[60:100]])
    cal_y = np.searchsorted(model.classes_, names[rows[60:100]])
    np.save(tmp_path / "cal_logits.npy", cal_logits)
    np.save(tmp_path / "cal_labels.npy", cal_y)
    assert call(capsys, "calibrate", "--logits", str(tmp_path / "cal_logits.npy"), "--labels",
                str(tmp_path / "cal_labels.npy"), "--out", str(tmp_path / "cal.npz"), "--conformal", "0.1",
                "--conformal-out", str(tmp_path / "sets.npz"), "--quiet")[0] == 0
    rc, out, err = call(capsys, "predict", str(tmp_path / "model.npz"), str(tmp_path / "test.csv"), "--target",
                        "species", "--conformal", str(tmp_path / "sets.npz"), "--sets", "0.1,0.2",
                        "--out", str(tmp_path / "pred.csv"), "--json")
    assert rc == 0, err
    cols = read_columns(tmp_path / "pred.csv")
    expected = sk.load(tmp_path / "sets.npz").predict_sets(class_logits(model, X[rows[100:]]), alpha=[0.1, 0.2])
    assert list(np.asarray(cols["set_90"], dtype=str)) == [
        "|".join(str(c) for c, keep in zip(model.classes_, row) if keep) for row in expected[:, :, 0]]
    np.testing.assert_array_equal(np.asarray(cols["set_size_80"]), expected[:, :, 1].sum(axis=1))
    assert json.loads(out)["conformal"]["levels"]["90%"]["n"] == 50
    # .npz holds the text column as a plain string array: it loads without pickle
    assert call(capsys, "predict", str(tmp_path / "model.npz"), str(tmp_path / "test.csv"), "--target", "species",
                "--conformal", str(tmp_path / "sets.npz"), "--sets", "0.1", "--out", str(tmp_path / "p.npz"),
                "--quiet")[0] == 0
    with np.load(tmp_path / "p.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["set_90"], cols["set_90"])
    # numbers-only output (.safetensors): one 0/1 column per class instead of the names
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    assert call(capsys, "predict", str(tmp_path / "model.npz"), str(tmp_path / "test.csv"), "--target", "species",
                "--conformal", str(tmp_path / "sets.npz"), "--sets", "0.1", "--out", str(tmp_path / "p.safetensors"),
                "--quiet")[0] == 0
    np.testing.assert_array_equal(load_file(tmp_path / "p.safetensors")["in_set_90_virginica"], expected[:, 2, 0])
    # evaluate: the sets of given logits, scored against labels
    rc, out, err = call(capsys, "evaluate", "--logits", str(tmp_path / "cal_logits.npy"), "--labels",
                        str(tmp_path / "cal_labels.npy"), "--conformal", str(tmp_path / "sets.npz"), "--sets", "0.1",
                        "--json")
    assert rc == 0, err
    m = json.loads(out)["conformal"]["levels"]["90%"]
    cal_sets = sk.load(tmp_path / "sets.npz").predict_sets(cal_logits, alpha=0.1)
    assert m == set_metrics(cal_y, cal_sets, alpha=0.1, conformal=sk.load(tmp_path / "sets.npz"), classes=range(3))


def test_cli_apply_writes_the_sets_of_new_logits(capsys, cli_files, tmp_path):
    """A network's own logits: calibrate --conformal on labelled rows, then apply --conformal writes the sets of
    new, unlabelled rows (from the raw scores, as fitted), next to the calibrated probabilities."""
    from softmaxkit.data import read_columns, write_columns

    z, y = np.load(cli_files / "logits.npy"), np.load(cli_files / "labels.npy")
    names = np.array(["a", "b", "c", "d", "e"])
    write_columns(tmp_path / "cal.csv", {f"logit_{c}": z[:600, j] for j, c in enumerate(names)})
    write_columns(tmp_path / "y.csv", {"y": names[y[:600]]})
    assert call(capsys, "calibrate", "--logits", str(tmp_path / "cal.csv"), "--labels", str(tmp_path / "y.csv"),
                "--out", str(tmp_path / "cal.npz"), "--conformal", "0.1", "--quiet")[0] == 0
    order = [3, 0, 4, 1, 2]  # the new file's columns in another order: matched by name
    write_columns(tmp_path / "new.csv", {f"logit_{names[j]}": z[600:, j] for j in order})
    rc, out, err = call(capsys, "apply", str(tmp_path / "cal.npz"), "--logits", str(tmp_path / "new.csv"),
                        "--conformal", str(tmp_path / "cal.conformal.npz"), "--sets", "0.1,0.05",
                        "--out", str(tmp_path / "p.csv"))
    assert rc == 0, err
    assert "with the prediction sets at 90%, 95%" in out
    cols = read_columns(tmp_path / "p.csv")
    expected = sk.load(tmp_path / "cal.conformal.npz").predict_sets(z[600:], alpha=[0.1, 0.05])
    # the set names its classes in the calibrator's class order, as apply writes the p_<class> columns
    assert list(np.asarray(cols["set_90"], dtype=str)) == [
        "|".join(names[j] for j in range(len(names)) if row[j]) for row in expected[:, :, 0]]
    np.testing.assert_array_equal(np.asarray(cols["set_size_95"]), expected[:, :, 1].sum(axis=1))
    new = read_columns(tmp_path / "new.csv")
    calibrated = sk.load(tmp_path / "cal.npz").predict_proba(np.column_stack([new[f"logit_{c}"] for c in names]))
    np.testing.assert_allclose(np.asarray(cols["p_c"]), calibrated[:, 2], rtol=1e-12)
    with pytest.raises(SystemExit) as exit_info:  # --sets alone: a usage error before any file is read
        call(capsys, "apply", str(tmp_path / "cal.npz"), "--logits", str(tmp_path / "new.csv"), "--sets", "0.1",
             "--out", str(tmp_path / "q.csv"))
    assert exit_info.value.code == 2 and "--sets needs --conformal FILE" in capsys.readouterr().err

    # evaluate on apply's output scores the sets written there. Audit: it rebuilt them from the calibrated
    # probabilities beside them, which the predictor was not fitted on: coverage 0.139 for 0.694, exit 0.
    write_columns(tmp_path / "y_new.csv", {"y": names[y[600:]]})
    want = {a: set_metrics(y[600:], expected[:, :, i], alpha=a, conformal=sk.load(tmp_path / "cal.conformal.npz"),
                           classes=names)
            for i, a in enumerate((0.1, 0.05))}
    assert call(capsys, "apply", str(tmp_path / "cal.npz"), "--logits", str(tmp_path / "new.csv"), "--conformal",
                str(tmp_path / "cal.conformal.npz"), "--sets", "0.1,0.05", "--out", str(tmp_path / "p.safetensors"),
                "-q")[0] == 0  # numbers only: in_set_90_<class> columns
    for out in ("p.csv", "p.safetensors"):
        rc, text, err = call(capsys, "evaluate", "--probs", str(tmp_path / out), "--labels",
                             str(tmp_path / "y_new.csv"), "--conformal", str(tmp_path / "cal.conformal.npz"),
                             "--sets", "0.1,0.05", "--json")
        assert rc == 0, err
        record = json.loads(text)["conformal"]
        assert record["levels"]["90%"] == want[0.1] and record["levels"]["95%"] == want[0.05], out
        assert record["sets_from"].startswith("at 90%, 95% the set columns of")
    rebuilt = sk.load(tmp_path / "cal.conformal.npz").predict_sets(calibrated, alpha=0.1)
    assert not np.array_equal(rebuilt, expected[:, :, 0])  # what evaluate used to score: other sets
    rc, text, err = call(capsys, "evaluate", "--probs", str(tmp_path / "p.csv"), "--labels",
                         str(tmp_path / "y_new.csv"), "--conformal", str(tmp_path / "cal.conformal.npz"),
                         "--sets", "0.2")  # a level not written: the sets are rebuilt
    assert rc == 0, err
    assert "Sets: at 80% rebuilt from the probabilities of" in text and "uncalibrated" in text
    # Audit: one level not written made evaluate rebuild every level, the written 90% too (coverage 1.000
    # for 0.907). Each level now comes from its own columns where the file has them.
    rc, text, err = call(capsys, "evaluate", "--probs", str(tmp_path / "p.csv"), "--labels",
                         str(tmp_path / "y_new.csv"), "--conformal", str(tmp_path / "cal.conformal.npz"),
                         "--sets", "0.1,0.2", "--json")
    assert rc == 0, err
    record = json.loads(text)["conformal"]
    assert record["levels"]["90%"] == want[0.1]
    assert record["sets_from"].startswith("at 90% the set columns of") and "at 80% rebuilt" in record["sets_from"]


def test_cli_evaluate_reads_set_columns_of_integer_classes(capsys, tmp_path):
    """Audit: with classes 0 and 1 and every set of at most one class, pyarrow reads set_70 back as numbers
    with empty sets missing ("'1.0' is not one of the classes 0, 1"). Read back, they are the written sets."""
    from softmaxkit.data import write_columns

    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 400)
    margin = 1.5 * rng.normal(size=400) + 2.0 * (y - 0.5)
    write_columns(tmp_path / "z.csv", {"logit_0": -margin / 2, "logit_1": margin / 2})
    write_columns(tmp_path / "y.csv", {"y": y})
    assert call(capsys, "calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                "--out", str(tmp_path / "cal.npz"), "--conformal", "0.3", "--quiet")[0] == 0
    assert call(capsys, "apply", str(tmp_path / "cal.npz"), "--logits", str(tmp_path / "z.csv"), "--conformal",
                str(tmp_path / "cal.conformal.npz"), "--sets", "0.3", "--out", str(tmp_path / "p.csv"), "-q")[0] == 0
    sets = sk.load(tmp_path / "cal.conformal.npz").predict_sets(np.column_stack([-margin / 2, margin / 2]), alpha=0.3)
    assert sets.sum(axis=1).max() == 1 and (sets.sum(axis=1) == 0).any()  # the case that reads back as numbers
    rc, out, err = call(capsys, "evaluate", "--probs", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "y.csv"),
                        "--conformal", str(tmp_path / "cal.conformal.npz"), "--sets", "0.3", "--json")
    assert rc == 0, err
    want = set_metrics(y, sets, alpha=0.3, conformal=sk.load(tmp_path / "cal.conformal.npz"), classes=["0", "1"])
    assert json.loads(out)["conformal"]["levels"]["70%"] == want


@pytest.mark.parametrize("names", [("01", "1", "2"), ("1.5", "1.0", "2.0")])
def test_cli_evaluate_reads_set_columns_of_number_like_class_names_exactly(capsys, tmp_path, names):
    """Audit: classes "01", "1", "2" with every set a singleton: pyarrow read set_80 back as numbers, so "01"
    became the class "1" and coverage fell from 0.80 to 0.61, exit 0; "1.0" became "1", not a class (exit 1)."""
    from softmaxkit.data import write_columns

    rng = np.random.default_rng(0)
    z = 4.0 * rng.normal(size=(600, 3))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    y = (p.cumsum(axis=1) / p.sum(axis=1, keepdims=True) < rng.random((600, 1))).sum(axis=1)
    write_columns(tmp_path / "z.csv", {f"logit_{k}": z[:, j] for j, k in enumerate(names)})
    write_columns(tmp_path / "y.parquet", {"label": np.array([names[i] for i in y])})
    assert call(capsys, "calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.parquet"),
                "--out", str(tmp_path / "cal.npz"), "--conformal", "0.2", "--quiet")[0] == 0
    assert call(capsys, "apply", str(tmp_path / "cal.npz"), "--logits", str(tmp_path / "z.csv"), "--conformal",
                str(tmp_path / "cal.conformal.npz"), "--sets", "0.2", "--out", str(tmp_path / "p.csv"), "-q")[0] == 0
    records = []
    for source in ("--logits", "--probs"):
        rc, out, err = call(capsys, "evaluate", source, str(tmp_path / ("z.csv" if source == "--logits" else "p.csv")),
                            "--labels", str(tmp_path / "y.parquet"), "--conformal", str(tmp_path / "cal.conformal.npz"),
                            "--sets", "0.2", "--json")
        assert rc == 0, err
        records.append(json.loads(out)["conformal"]["levels"]["80%"])
    assert records[1]["coverage"] == records[0]["coverage"] > 0.75


def test_cli_level_tags_are_exact_and_a_repeated_level_is_refused(capsys, cli_files, tmp_path):
    """Audit: --sets 0.1,0.1000001 wrote one set_90 pair (the second level's), said "90%, 90%", exit 0, and
    --sets 1e-8 wrote set_100. Tags are now the level as typed; only the same level twice is refused."""
    from softmaxkit.cli._conformal import level_tag
    from softmaxkit.data import read_columns

    common = {0.1: "90", 0.05: "95", 0.01: "99", 0.025: "97.5", 0.2: "80", 0.5: "50", 0.001: "99.9", 0.3333: "66.67"}
    assert {a: level_tag(a) for a in common} == common
    assert [level_tag(a) for a in (0.1000001, 1e-8, np.float64(0.999999))] == ["89.99999", "99.999999", "0.0001"]
    logits, labels = str(cli_files / "logits.npy"), str(cli_files / "labels.npy")
    assert call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", str(tmp_path / "cal.npz"),
                "--conformal", "0.1", "--quiet")[0] == 0
    rc, out, err = call(capsys, "apply", str(tmp_path / "cal.npz"), "--logits", logits, "--conformal",
                        str(tmp_path / "cal.conformal.npz"), "--sets", "0.1,0.1000001,1e-8", "--out",
                        str(tmp_path / "p.csv"))
    assert rc == 0 and "alpha=1e-08 is too small" in err, err
    assert "at 90%, 89.99999%, 99.999999%" in out
    assert {"set_90", "set_89.99999", "set_99.999999"} <= set(read_columns(tmp_path / "p.csv"))
    for text in ("0.1,0.1", "0.1,0.10", "0.05,0.1,1e-1"):
        with pytest.raises(SystemExit) as exit_info:
            call(capsys, "evaluate", "--logits", logits, "--labels", labels, "--sets", text)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "the level 90% more than once" in err and "give each level once" in err


def test_cli_set_options_fail_early_and_clearly(capsys, cli_files, tmp_path):
    logits, labels = str(cli_files / "logits.npy"), str(cli_files / "labels.npy")
    for command in (["evaluate", "--logits", logits, "--labels", labels], ["predict", "m.npz", "d.csv", "--out", "p.csv"]):
        with pytest.raises(SystemExit) as exit_info:  # a usage error: exit 2 before any file is read
            call(capsys, *command, "--sets", "0.1")
        assert exit_info.value.code == 2 and "--sets needs --conformal FILE" in capsys.readouterr().err
    # Audit: sets written into a .npy became extra columns that evaluate then read as 9 classes.
    for command in (["predict", "m.npz", "d.csv"], ["apply", "c.npz", "--logits", logits]):
        with pytest.raises(SystemExit) as exit_info:
            call(capsys, *command, "--conformal", "s.npz", "--sets", "0.1", "--out", str(tmp_path / "p.npy"))
        assert exit_info.value.code == 2 and "a .npy file holds one unnamed matrix" in capsys.readouterr().err
    assert call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", str(tmp_path / "c.npz"),
                "--quiet")[0] == 0
    rc, _, err = call(capsys, "evaluate", "--logits", logits, "--labels", labels, "--conformal",
                      str(tmp_path / "c.npz"), "--sets", "0.1")
    assert rc == 1 and "holds a TemperatureScaling, not a conformal predictor" in err
    with pytest.raises(SystemExit) as exit_info:
        call(capsys, "evaluate", "--logits", logits, "--labels", labels, "--sets", "0.1,1.5")
    assert exit_info.value.code == 2 and "strictly between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # a usage error, as calibrate --out's (it exited 1)
        call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out",
             str(tmp_path / "d.npz"), "--conformal", "0.1", "--conformal-out", logits)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--conformal-out" in err and "unsupported extension '.npy'" in err
    assert not (tmp_path / "d.npz").exists()  # nothing written before the check
    for extra, message in ((["--conformal", "0.1", "--conformal-out", str(tmp_path / "d.npz")], "is also --out"),
                           (["--conformal-out", str(tmp_path / "f.npz")], "--conformal-out needs --conformal ALPHA"),
                           # Accepted silently before, as if the sets had been asked for with that score.
                           (["--conformal-score", "aps"], "--conformal-score needs --conformal ALPHA")):
        with pytest.raises(SystemExit) as exit_info:
            call(capsys, "calibrate", "--logits", logits, "--labels", labels, "--out", str(tmp_path / "d.npz"), *extra)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "d.npz").exists()


def test_cli_demo_shows_the_90_and_95_percent_sets(capsys, tmp_path):
    rc, out, err = call(capsys, "demo", "--out", str(tmp_path / "demo"), "--json")
    assert rc == 0, err
    result = json.loads(out)
    sets = result["conformal"]
    assert set(sets["levels"]) == {"90%", "95%"} and sets["n_calibration"] == result["n_calibration"]
    for case in result["cases"]:
        assert set(case["sets"]) == {"90%", "95%"}
        for text in case["sets"].values():
            assert text in ("malignant", "benign", "both: cannot tell", "none: cannot tell")
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "Prediction sets: which answers can the model not rule out?" in page
    assert "set at 90%" in page and "set at 95%" in page
    assert "means &quot;we cannot tell&quot;" in page or 'means "we cannot tell"' in page
    # the demo's sets are the library's: LAC on the calibration rows' raw logits
    m = sets["levels"]["95%"]
    assert m["guaranteed_range"][0] == 0.95 and 0 <= m["coverage"] <= 1


def test_bfloat16_probabilities_are_accepted():
    """The row-sum tolerance follows the caller's dtype: softmaxkit's own bfloat16 softmax
    output fits and predicts (its rows sum to 1 only within bfloat16 rounding)."""
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 2, generator=gen).to(torch.bfloat16)
    probs = sk.softmax(logits)
    assert float((probs.float().sum(-1) - 1).abs().max()) > 1e-3  # the case the fixed 1e-3 refused
    y = torch.randint(0, 2, (400,), generator=gen).numpy()
    sets = ConformalClassifier(input="probs").fit(probs, y).predict_sets(probs, alpha=0.1)
    assert sets.shape == (400, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [30, 200])  # 200 x 400 runs the parallel kernels, 30 x 400 the serial ones
def test_fused_checks_refuse_every_bad_entry_and_accept_negative_zero(dtype, n_rows):
    """The kernels check the probabilities in the pass that computes the scores or the sets, by
    comparing bit patterns as unsigned integers: every out-of-range value must still be refused
    (first, inner and last column of a row, so the vector loop's head and tail), on each path
    (fit and predict of LAC and APS, and the functions), with check_probs' message; ``-0.0`` is a
    valid 0. Each bad row still sums to 1 within the tolerance, so only the range check can catch it."""
    c = 400
    rng = np.random.default_rng(0)
    p = _softmax(rng.standard_normal((n_rows, c)) * 3).astype(dtype)
    p[:, :3] = 0.0
    p[:, 0] = 1.0 - p[:, 3:].sum(axis=1, dtype=np.float64)  # columns 0-2 free to perturb, sums kept
    y = rng.integers(0, c, n_rows)
    one_up = np.nextafter(dtype(1), dtype(2))
    bad_values = [np.nan, -np.nan, np.inf, -np.inf, -1e-30, -0.5, one_up, 1.5]
    fitted = {s: ConformalClassifier(score=s, input="probs", random_state=0).fit(p, y) for s in ("lac", "aps")}
    for value in bad_values:
        for i, j in ((n_rows // 2, 0), (n_rows - 1, c // 2), (0, c - 1)):
            q = p.copy()
            if value == one_up:  # a row of one class with probability just above 1
                q[i] = 0.0
            q[i, j] = value
            pattern = rf"X must be finite probabilities in \[0, 1\]; found {re.escape(repr(float(q[i, j])))} " \
                      rf"at position \({i}, {j}\)"
            for score in ("lac", "aps"):
                with pytest.raises(ValueError, match=pattern):
                    ConformalClassifier(score=score, input="probs").fit(q, y)
                with pytest.raises(ValueError, match=pattern):
                    fitted[score].predict_sets(q, alpha=[0.1, 0.2])
                with pytest.raises(ValueError, match=pattern.replace("X must", "probs must")):
                    conformity_scores(q, y, score=score)
                with pytest.raises(ValueError, match=pattern.replace("X must", "probs must")):
                    prediction_sets(q, 0.5, score=score)
    # rows that do not sum to 1 are refused on the fused LAC paths too
    q = p.copy()
    q[n_rows - 1, 1] = 0.5
    for refused in (lambda: ConformalClassifier(input="probs").fit(q, y), lambda: fitted["lac"].predict_sets(q)):
        with pytest.raises(ValueError, match=rf"rows of X must sum to 1 .*; row {n_rows - 1} sums to"):
            refused()
    # -0.0 is 0: accepted, same scores and sets as +0.0
    q = p.copy()
    q[:, 1:3] = -0.0
    for score in ("lac", "aps"):
        np.testing.assert_array_equal(conformity_scores(q, y, score=score), conformity_scores(p, y, score=score))
        np.testing.assert_array_equal(fitted[score].predict_sets(q), fitted[score].predict_sets(p))


def test_cli_predict_refuses_a_conformal_predictor_of_another_class_count(capsys, cli_files, tmp_path):
    """A 5-class conformal predictor on a 3-class model: refused naming the file, before any output."""
    from sklearn.datasets import load_iris

    from softmaxkit.data import write_columns

    X, y = load_iris(return_X_y=True)
    write_columns(tmp_path / "iris.csv", {**{f"f{j}": X[:, j] for j in range(4)}, "species": y})
    assert call(capsys, "fit", str(tmp_path / "iris.csv"), "--target", "species", "--alpha", "1",
                "--out", str(tmp_path / "m.npz"), "--quiet")[0] == 0
    assert call(capsys, "calibrate", "--logits", str(cli_files / "logits.npy"), "--labels",
                str(cli_files / "labels.npy"), "--out", str(tmp_path / "c5.npz"), "--conformal", "0.1", "--quiet")[0] == 0
    rc, _, err = call(capsys, "predict", str(tmp_path / "m.npz"), str(tmp_path / "iris.csv"), "--conformal",
                      str(tmp_path / "c5.conformal.npz"), "--sets", "0.1", "--out", str(tmp_path / "p.csv"))
    assert rc == 1 and "c5.conformal.npz: the conformal predictor was fitted on 5 classes" in err
    assert "the model" in err and not (tmp_path / "p.csv").exists()


def test_cli_class_conditional_sets_match_columns_by_name(capsys, tmp_path):
    """Class-conditional thresholds are per class: a predictor saved with its columns' class names scores a
    file whose logit_<class> columns come in another order exactly as in the original order."""
    from softmaxkit.data import write_columns

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    z = rng.normal(size=(300, 3)) + 2.0 * np.eye(3)[y] * np.array([0.5, 1.5, 3.0])  # classes differ in difficulty
    conformal = ConformalClassifier(class_conditional=True).fit(z[:150], y[:150])
    conformal.class_names_ = ["a", "b", "c"]
    conformal.save(tmp_path / "sets.npz")
    names = np.array(["a", "b", "c"])
    write_columns(tmp_path / "y.csv", {"y": names[y[150:]]})
    results = []
    for order in ([0, 1, 2], [2, 0, 1]):
        path = write_columns(tmp_path / f"z{order[0]}.csv", {f"logit_{names[j]}": z[150:, j] for j in order})
        rc, out, err = call(capsys, "evaluate", "--logits", str(path), "--labels", str(tmp_path / "y.csv"),
                            "--conformal", str(tmp_path / "sets.npz"), "--sets", "0.1", "--json")
        assert rc == 0, err
        results.append(json.loads(out)["conformal"]["levels"]["90%"])
    assert results[1] == results[0]
    expected = set_metrics(y[150:], conformal.predict_sets(z[150:], alpha=0.1), alpha=0.1, conformal=conformal,
                           classes=names)  # the range from each class's rows
    assert results[0] == expected


@pytest.mark.parametrize("score", ["lac", "aps", "raps"])
def test_float32_logits_give_the_sets_of_the_same_values_in_float64(score):
    """Logits read from ``.npy``/Parquet stay float32, from CSV/``.npz`` they become float64: the
    same values must give the same scores and sets whatever the file (before: float32 softmax
    rounding moved boundary classes, 522.646 against 522.624 mean set size at 30k x 1000)."""
    rng = np.random.default_rng(5)
    z = (rng.standard_normal((3000, 400)) * 2).astype(np.float32)
    y = rng.integers(0, 400, 3000)
    as32 = ConformalClassifier(score=score, random_state=0).fit(z[:2000], y[:2000])
    as64 = ConformalClassifier(score=score, random_state=0).fit(z[:2000].astype(np.float64), y[:2000])
    np.testing.assert_array_equal(as32.calibration_scores_, as64.calibration_scores_)
    alphas = [0.1, 0.05]
    np.testing.assert_array_equal(as32.predict_sets(z[2000:], alphas),
                                  as64.predict_sets(z[2000:].astype(np.float64), alphas))


def test_cli_class_name_with_the_set_separator_writes_indicator_columns(capsys, tmp_path):
    """Audit: class 'a|b' was joined into set_80 as "a|b", which evaluate then read as two classes
    (with classes 'a', 'b' and 'a|b' it would have read another set silently)."""
    from sklearn.datasets import load_iris

    from softmaxkit.data import read_columns, write_columns

    X, y = load_iris(return_X_y=True)
    names = np.array(["a|b", "c", "d"])[y]
    rows = np.random.default_rng(3).permutation(len(y))
    feats = lambda r: {**{f"f{j}": X[r, j] for j in range(4)}, "label": names[r]}  # noqa: E731
    for name, part in (("train", rows[:60]), ("val", rows[60:105]), ("test", rows[105:])):
        write_columns(tmp_path / f"{name}.csv", feats(part))
    ok = lambda *argv: call(capsys, *map(str, argv))  # noqa: E731
    assert ok("fit", tmp_path / "train.csv", "--target", "label", "--out", tmp_path / "m.npz", "-q")[0] == 0
    assert ok("predict", tmp_path / "m.npz", tmp_path / "val.csv", "--out", tmp_path / "vp.csv",
              "--logits-out", tmp_path / "vl.csv", "-q")[0] == 0
    assert ok("calibrate", "--logits", tmp_path / "vl.csv", "--labels", tmp_path / "val.csv", "--label-column",
              "label", "--out", tmp_path / "cal.npz", "--conformal", "0.2", "-q")[0] == 0
    rc, _, err = ok("predict", tmp_path / "m.npz", tmp_path / "test.csv", "--out", tmp_path / "tp.csv",
                    "--conformal", tmp_path / "cal.conformal.npz", "--sets", "0.2")
    assert rc == 0, err
    assert "class 'a|b' holds '|'" in err
    written = read_columns(tmp_path / "tp.csv")
    assert "set_80" not in written and {"in_set_80_a|b", "in_set_80_c", "in_set_80_d"} <= set(written)
    rc, out, err = ok("evaluate", "--probs", tmp_path / "tp.csv", "--labels", tmp_path / "test.csv", "--label-column",
                      "label", "--conformal", tmp_path / "cal.conformal.npz", "--sets", "0.2", "--json")
    assert rc == 0, err
    got = json.loads(out)["conformal"]["levels"]["80%"]
    sets = np.column_stack([np.asarray(written[f"in_set_80_{c}"]) != 0 for c in ("a|b", "c", "d")])
    truth = np.searchsorted(["a|b", "c", "d"], names[rows[105:]])
    assert got["coverage"] == pytest.approx(coverage(truth, sets))


def test_set_metrics_takes_the_guaranteed_range_from_the_predictor():
    """Audit: set_metrics(n_calibration=) reported [1 - alpha, 1 - alpha + 1/(n+1)] from the row count alone.
    With 95% of calibration rows at p_y = 1.0 (LAC scores tied at 0) the mean coverage was 0.954 where that
    said 0.900-0.905. The predictor knows its scores: no upper end with a tie at the threshold, and each
    class's rows for a class-conditional one."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 200)
    z = rng.normal(size=(200, 3))
    z[np.arange(200), y] += np.where(rng.random(200) < 0.95, 50.0, 0.0)  # saturated: p_y == 1.0 exactly
    tied = ConformalClassifier().fit(z, y)
    m = set_metrics(y, tied.predict_sets(z, alpha=0.1), alpha=0.1, conformal=tied, classes=["a", "b", "c"])
    assert m["guaranteed_range"] == [pytest.approx(0.9), None] and m["n_calibration"] == 200
    json.dumps(m)  # None, not NaN: still JSON
    z = rng.normal(size=(300, 3))
    y = rng.integers(0, 3, 300)
    for predictor, upper in ((ConformalClassifier().fit(z, y), 0.9 + 1 / 301),
                             (ConformalClassifier(class_conditional=True).fit(z, y),
                              0.9 + 1 / (np.bincount(y).min() + 1))):
        m = set_metrics(y, predictor.predict_sets(z, alpha=0.1), alpha=0.1, conformal=predictor)
        assert m["guaranteed_range"] == pytest.approx([0.9, upper]) and m["n_calibration"] == 300
    # without the predictor: no range and no row count, the rest unchanged
    plain = set_metrics(y, predictor.predict_sets(z, alpha=0.1), alpha=0.1)
    assert "guaranteed_range" not in plain and "n_calibration" not in plain
    assert plain == {k: v for k, v in m.items() if k not in ("guaranteed_range", "n_calibration")}
    with pytest.raises(ValueError, match=r"conformal= needs alpha="):
        set_metrics(y, predictor.predict_sets(z, alpha=0.1), conformal=predictor)
    with pytest.raises(ValueError, match=r"sets have 2 classes but conformal was fitted on 3"):
        set_metrics(y % 2, predictor.predict_sets(z, alpha=0.1)[:, :2], alpha=0.1, conformal=predictor)
    with pytest.raises(TypeError, match=r"conformal must be a fitted ConformalClassifier"):
        set_metrics(y, predictor.predict_sets(z, alpha=0.1), alpha=0.1, conformal=(0.9, 0.91))


def test_set_metrics_refuses_n_calibration_and_names_the_replacement():
    sets = np.ones((10, 3), dtype=bool)
    with pytest.raises(TypeError, match=r"n_calibration=.* ties .* conformal=<the fitted ConformalClassifier>"):
        set_metrics(np.zeros(10, dtype=int), sets, alpha=0.1, n_calibration=99)
