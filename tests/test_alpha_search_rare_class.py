"""alpha="auto" with a class too small for the folds asked: the search says how many folds it used and why.

Audit AJ: 200 training rows holding 2 positives silently dropped the search
from 5 folds to 2 (one held-out positive per fold), and the penalty it chose
gave the test set's positives p = 6e-9 and 4e-8.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmaxkit import SoftmaxClassifier
from softmaxkit._targets import encode_targets

FEWER = "internal folds, not"


def _rare(n: int = 60, rare: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows, 3 features, the last ``rare`` of class 1 (shifted a little), the rest of class 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.zeros(n, dtype=int)
    y[-rare:] = 1
    X[-rare:] += 1.0
    return X, y


def _fewer_folds_messages(model: SoftmaxClassifier, X, y, **fit) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, **fit)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning) and FEWER in str(w.message)]


def test_two_rows_of_a_class_warn_with_the_class_its_rows_and_the_folds():
    X, y = _rare(rare=2)
    with pytest.warns(UserWarning, match=r"over 2 internal folds, not 5: class 1 has 2 rows, .*alpha_path_loss_"):
        model = SoftmaxClassifier(random_state=0).fit(X, y)
    assert len(model.alpha_path_) > 0  # it did search, over the 2 folds it could make


def test_an_int_cv_above_the_smallest_class_warns_with_the_folds_asked():
    X, y = _rare(rare=3)
    (message,) = _fewer_folds_messages(SoftmaxClassifier(cv=4, random_state=0), X, y)
    assert "over 3 internal folds, not 4: class 1 has 3 rows," in message


def test_rows_of_weight_zero_do_not_count():
    X, y = _rare(rare=4)
    weight = np.ones(len(y))
    weight[-1] = 0.0  # 3 of class 1's 4 rows carry weight: 3 folds
    (message,) = _fewer_folds_messages(SoftmaxClassifier(random_state=0), X, y, sample_weight=weight)
    assert "over 3 internal folds, not 5: class 1 has 3 rows with positive weight," in message


def test_no_warning_with_enough_rows_per_class_or_given_splits():
    X, y = _rare(rare=5)
    assert _fewer_folds_messages(SoftmaxClassifier(random_state=0), X, y) == []
    X, y = _rare(rare=2)
    halves = [(np.arange(0, 60, 2), np.arange(1, 60, 2)), (np.arange(1, 60, 2), np.arange(0, 60, 2))]
    # class 1 is rows 58 and 59: each half holds out one and trains on the other, as the user chose
    assert _fewer_folds_messages(SoftmaxClassifier(cv=halves, random_state=0), X, y) == []


def test_why_fewer_folds_names_every_smallest_class_and_probability_targets():
    from softmaxkit._alpha_search import why_fewer_folds

    y = np.array([0] * 20 + [1] * 3 + [2] * 3)
    targets = encode_targets(y, n_samples=len(y))
    assert why_fewer_folds(targets, 3, None) == "3 internal folds, not 5: classes 1, 2 have 3 rows each"
    assert why_fewer_folds(targets, 3, 3) is None
    probabilities = encode_targets(np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]]), n_samples=3)
    assert why_fewer_folds(probabilities, 3, None) == "3 internal folds, not 5: only 3 rows have positive weight"


# --- a weaker penalty than the reference needs 2 standard errors when a class is rare ------------------------


def _search_with_gain(gain_in_se: float, *, weaker: bool, weaker_se: float) -> float:
    """``search`` over a made-up path whose best value beats the reference by ``gain_in_se`` standard
    errors of the paired test; the best is one grid step weaker than the reference, or stronger."""
    from softmaxkit._alpha_search import search

    n = 20
    noise = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)  # mean 0, variance 1: the standard error is 1/sqrt(20)
    gain = gain_in_se / np.sqrt(n) + noise
    grid = (100.0, 10.0, 1.0, 0.1)  # strongest first, the reference is 10
    best = 1.0 if weaker else 100.0
    losses = {a: np.full(n, 2.0) for a in grid}
    losses[10.0] = np.full(n, 1.0)
    losses[best] = 1.0 - gain
    even, odd = np.arange(0, n, 2), np.arange(1, n, 2)
    chosen = search(
        [(even, odd), (odd, even)], np.ones(n), fit=lambda train, alpha, start: alpha,
        score=lambda alpha, test: losses[alpha][test], grid=grid, reference=10.0, weaker_se=weaker_se,
    )  # fmt: skip
    return chosen.alpha


def test_a_weaker_penalty_must_beat_the_reference_by_weaker_se_standard_errors():
    assert _search_with_gain(1.5, weaker=True, weaker_se=1.0) < 10.0  # one standard error: it leaves
    assert _search_with_gain(1.5, weaker=True, weaker_se=2.0) == 10.0  # two: the reference stays
    assert _search_with_gain(2.5, weaker=True, weaker_se=2.0) < 10.0  # a clear gain still leaves it
    # a stronger penalty, the cautious side, needs one standard error whatever weaker_se says
    assert _search_with_gain(1.5, weaker=False, weaker_se=2.0) > 10.0


def test_the_stricter_test_applies_below_rare_class_rows_only():
    from softmaxkit._alpha_search import RARE_CLASS_ROWS, RARE_CLASS_SE, rare_class_se

    def se(rows: int) -> float:
        y = np.r_[np.zeros(100, dtype=int), np.ones(rows, dtype=int)]
        return rare_class_se(encode_targets(y, n_samples=len(y)))

    assert se(RARE_CLASS_ROWS - 1) == RARE_CLASS_SE == 2.0
    assert se(RARE_CLASS_ROWS) == 1.0
    assert RARE_CLASS_ROWS <= 37  # the bundled data sets' smallest class (wine): their alpha_ must not move
    assert rare_class_se(encode_targets(np.array([[0.2, 0.8], [0.5, 0.5]]), n_samples=2)) == 1.0


def test_six_positives_keep_the_reference_penalty_and_no_positive_is_called_impossible():
    """Audit AJ3 (split 1 of 40, 6 training positives of 200 rows): one standard error took alpha_ = 3.6e-4,
    the weak end of the grid, and a test positive got p = 1.7e-14 (test log-loss 0.41; LogisticRegression()
    0.22)."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        n_samples=400, n_features=10, n_informative=4, weights=[0.97], flip_y=0.0, random_state=101
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=1)
    assert y_train.sum() == 6
    model = SoftmaxClassifier(random_state=0).fit(X_train, y_train)
    assert model.alpha_ >= 2.0  # LogisticRegression()'s penalty or stronger
    assert model.predict_proba(X_test)[y_test == 1, 1].min() > 1e-6
