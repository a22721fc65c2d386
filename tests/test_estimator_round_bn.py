"""Audit BN: SoftmaxClassifier used as a scikit-learn user of MLPClassifier would.

2. In a ``StandardScaler`` pipeline the MLP gets Adam (``solver="auto"`` picks L-BFGS only with
   ``standardize=True``) and did worse than ``MLPClassifier`` on iris, without a word of why.
3. MLPClassifier's parameter names (``learning_rate_init``, ``learning_rate="adaptive"``, ``warm_start``,
   ``shuffle``, ``beta_1``, ``momentum``, ``max_fun``) were refused without saying what to use instead.
4. ``random_state=np.random.RandomState(3)`` and ``3`` gave different MLPs under ``alpha="auto"``: the
   search consumed the instance before the refit drew its initialisation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxkit import SoftmaxClassifier

# --------------------------------------------------------------------------- 2. Adam in a StandardScaler pipeline


def _convergence_messages(model, X, y) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_adam_by_default_says_that_standardize_or_lbfgs_gives_lbfgs():
    X, y = load_iris(return_X_y=True)
    mlp = SoftmaxClassifier(hidden_layer_sizes=(8,), alpha=1e-4, max_iter=5, random_state=0)
    (message,) = _convergence_messages(make_pipeline(StandardScaler(), mlp), X, y)
    assert "adam reached max_iter=5" in message
    assert "unless standardize=True (a StandardScaler in front does not set it)" in message
    assert "solver='lbfgs'" in message
    # Adam asked for by name: no advice to leave it
    (message,) = _convergence_messages(
        SoftmaxClassifier(hidden_layer_sizes=(8,), solver="adam", alpha=1e-4, max_iter=5, random_state=0), X, y
    )
    assert "standardize" not in message


def test_standardize_and_solver_docstrings_mention_the_pipeline():
    doc = " ".join(SoftmaxClassifier.__doc__.split())
    assert "has standardised features but ``standardize=False``, so its MLP is trained by Adam" in doc
    assert "A ``StandardScaler`` in front does not count as ``standardize=True``" in doc


# --------------------------------------------------------------------------- 3. MLPClassifier's parameter names


@pytest.mark.parametrize(
    "name, value, advice",
    [
        ("learning_rate_init", 0.01, "softmaxkit's Adam step size is learning_rate"),
        ("warm_start", True, "every fit starts afresh"),
        ("shuffle", False, "Adam visits the rows in a fresh random order every epoch"),
        ("beta_1", 0.8, "beta_1=0.9, beta_2=0.999, epsilon=1e-8"),
        ("momentum", 0.9, "momentum is an option of MLPClassifier's SGD solver, which softmaxkit lacks"),
        ("max_fun", 100, "bounded by max_iter"),
    ],
)
def test_mlpclassifier_names_are_refused_with_what_to_use_instead(name, value, advice):
    with pytest.raises(TypeError, match=rf"unexpected parameter\(s\) '{name}': .*{advice}"):
        SoftmaxClassifier(**{name: value})
    with pytest.raises(ValueError, match=rf"unexpected parameter\(s\) '{name}': .*{advice}"):
        SoftmaxClassifier().set_params(**{name: value})


def test_a_learning_rate_schedule_name_says_what_learning_rate_is():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=r"learning_rate must be a real number > 0, got 'adaptive': softmaxkit's "
                                         r"learning_rate is Adam's step size.*learning_rate_init.*no learning-rate "
                                         r"schedules"):
        SoftmaxClassifier(learning_rate="adaptive").fit(X, y)
    with pytest.raises(ValueError, match=r"learning_rate must be a real number in \(0.0, inf\], got -1"):
        SoftmaxClassifier(learning_rate=-1).fit(X, y)  # numbers keep their plain message


# --------------------------------------------------------------------------- 4. a RandomState instance


def test_a_random_state_instance_fits_as_its_int_seed_under_auto_alpha():
    """Before: the MLPs were 0.41 apart (iris, 20 hidden units); the refit drew after the search's draws."""
    X, y = load_iris(return_X_y=True)

    def fit(random_state):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return SoftmaxClassifier(hidden_layer_sizes=(4,), max_iter=30, random_state=random_state).fit(X, y)

    seeded, instance = fit(3), fit(np.random.RandomState(3))
    assert instance.alpha_ == seeded.alpha_
    np.testing.assert_array_equal(instance.predict_proba(X), seeded.predict_proba(X))
