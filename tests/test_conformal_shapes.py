"""softmaxkit.conformal: the shapes of thresholds and probabilities that the functional layer accepts.

A class-conditional predictor's ``threshold(alpha)`` is one threshold per class, shape (C,); the
functional ``prediction_sets`` reads a 1-D array as one threshold per *level*. Given the one for the
other it returned (n, C, C) sets without a word (audit B: coverage read per "level" 0.917, 0.887,
0.933 where the predictor's sets covered 0.91). One class is no classification problem, as logits
and probabilities alike must say.
"""

from __future__ import annotations

import numpy as np
import pytest

from softmaxkit.conformal import ConformalClassifier, conformity_scores, prediction_sets


def _probs(seed, n=600, c=3):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(c), n)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return p, np.minimum(y, c - 1)


def test_class_conditional_threshold_given_as_levels_is_refused_naming_the_fix():
    p, y = _probs(0)
    cp = ConformalClassifier(score="lac", input="probs", class_conditional=True).fit(p[:300], y[:300])
    t = cp.threshold(0.1)
    assert t.shape == (3,)  # one per class, as before (sklearn's per-class shape)
    with pytest.raises(ValueError, match=r"shape \(3,\).*3 classes.*t\[:, None\].*t\[None, :\]"):
        prediction_sets(p[300:], t, score="lac")
    # the per-class form gives the predictor's own sets
    sets = prediction_sets(p[300:], t[:, None], score="lac")
    assert sets.shape == (300, 3, 1)
    np.testing.assert_array_equal(sets[:, :, 0], cp.predict_sets(p[300:], 0.1))


def test_levels_as_many_as_classes_are_given_as_one_row():
    """(1, A) is A levels shared by every class, as (A,) is, for the case A == C that (A,) cannot say."""
    p, y = _probs(1)
    cp = ConformalClassifier(score="aps", input="probs", randomized=False).fit(p[:300], y[:300])
    alphas = [0.3, 0.2, 0.1]
    t = cp.threshold(alphas)
    sets = prediction_sets(p[300:], t[None, :], score="aps")
    assert sets.shape == (300, 3, 3)
    np.testing.assert_array_equal(sets, cp.predict_sets(p[300:], alphas))
    # levels that are not as many as the classes stay unambiguous as (A,)
    two = prediction_sets(p[300:], t[:2], score="aps")
    np.testing.assert_array_equal(two, cp.predict_sets(p[300:], alphas[:2]))
    mondrian = ConformalClassifier(score="aps", input="probs", randomized=False, class_conditional=True)
    mondrian.fit(p[:300], y[:300])
    np.testing.assert_array_equal(prediction_sets(p[300:], mondrian.threshold(alphas), score="aps"),
                                  mondrian.predict_sets(p[300:], alphas))  # (C, A): per class and level
    with pytest.raises(ValueError, match=r"\(A,\), \(1, A\) or \(3, A\) .*got shape \(2, 3\)"):
        prediction_sets(p[300:], np.zeros((2, 3)), score="aps")


@pytest.mark.parametrize("input", ["logits", "probs"])
def test_one_class_is_refused_for_logits_and_probabilities_alike(input):
    one = np.ones((10, 1)) if input == "probs" else np.zeros((10, 1))
    with pytest.raises(ValueError, match=r"^X must have at least 2 classes \(columns\), got shape \(10, 1\)$"):
        ConformalClassifier(input=input).fit(one, np.zeros(10, dtype=int))


def test_one_class_is_refused_by_the_functional_layer():
    with pytest.raises(ValueError, match=r"probs must have at least 2 classes \(columns\), got shape \(4, 1\)"):
        prediction_sets(np.ones((4, 1)), 0.5)
    with pytest.raises(ValueError, match=r"probs must have at least 2 classes"):
        conformity_scores(np.ones((4, 1)), np.zeros(4, dtype=int))


def test_one_class_from_an_estimator_is_refused_naming_it():
    class OneClass:
        classes_ = np.array(["only"])

        def predict_proba(self, X):
            return np.ones((len(X), 1))

    with pytest.raises(ValueError, match=r"OneClass\.predict_proba\(X\) must have at least 2 classes"):
        ConformalClassifier(estimator=OneClass()).fit(np.zeros((5, 2)), np.array(["only"] * 5))
