"""scikit-learn ecosystem audit, round CH.

1. ``CalibratedClassifier(...).get_params(deep=True)`` lists ``method__prior_scale`` and the
   other calibrator parameters, but the calibrators had no ``set_params``: ``set_params`` and
   ``GridSearchCV`` over ``method__*`` failed with an AttributeError inside scikit-learn.
2. An (n, K) DataFrame ``y`` (``pd.get_dummies(y)``) lost its column names: ``classes_`` was
   ``[0, 1, 2]``, and the same one-hot with its columns in another order gave a permuted model
   whose predictions, read against the names, were wrong.
3. MLPClassifier's defaults that describe what softmaxkit does anyway (``warm_start=False``,
   ``shuffle=True``, Adam's ``beta_1``, ``beta_2``, ``epsilon``) were refused with a TypeError.
"""

import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxkit import SoftmaxClassifier, _optim
from softmaxkit._one_vs_rest import IsotonicCalibration, PlattScaling
from softmaxkit.calibration import CalibratedClassifier, MatrixScaling, TemperatureScaling, VectorScaling
from softmaxkit.io import load

CALIBRATORS = [TemperatureScaling, VectorScaling, MatrixScaling, IsotonicCalibration, PlattScaling]
NAMES = np.array(["setosa", "versicolor", "virginica"])


def _calibration_rows(n_classes: int = 3, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)) + 2.0 * np.eye(n_classes)[y]
    return logits, y


# --------------------------------------------------------------------------- 1. calibrators' set_params


@pytest.mark.parametrize("cls", CALIBRATORS, ids=lambda c: c.__name__)
def test_every_calibrator_sets_each_of_its_parameters_and_returns_itself(cls):
    cal = cls()
    changed = {name: ("probs" if name == "input" else f"value of {name}") for name in cal.get_params()}
    assert cal.set_params(**changed) is cal
    assert cal.get_params() == changed
    assert cal.set_params() is cal  # nothing to set, as scikit-learn's


@pytest.mark.parametrize("cls", CALIBRATORS, ids=lambda c: c.__name__)
def test_an_unknown_calibrator_parameter_is_refused_naming_the_valid_ones(cls):
    cal = cls()
    valid = sorted(cal.get_params())
    with pytest.raises(ValueError, match=rf"Invalid parameter 'prior' for estimator {cls.__name__}\(.*\)\. "
                                         rf"Valid parameters are: {re.escape(repr(valid))}\."):
        cal.set_params(eps=1e-6, prior=0.1)
    assert cal.eps is None  # nothing set when a name is refused


def test_a_fitted_calibrator_keeps_its_fit_until_refitted_as_in_scikit_learn():
    logits, y = _calibration_rows()
    cal = TemperatureScaling(prior_scale=None).fit(logits, y)
    beta, probs = cal.beta_, cal.predict_proba(logits)
    cal.set_params(prior_scale=1e-3)
    assert cal.beta_ == beta
    np.testing.assert_array_equal(cal.predict_proba(logits), probs)
    refitted = cal.fit(logits, y).beta_  # the new setting takes effect at fit
    assert refitted != beta
    assert refitted == TemperatureScaling(prior_scale=1e-3).fit(logits, y).beta_


@pytest.mark.parametrize("cls", CALIBRATORS, ids=lambda c: c.__name__)
def test_clone_of_a_calibrator_with_set_params_round_trips(cls):
    cal = cls().set_params(eps=1e-4, **({"prior_scale": 0.1} if "prior_scale" in cls().get_params() else {}))
    twin = clone(cal)
    assert twin is not cal and type(twin) is cls
    assert twin.get_params() == cal.get_params()
    twin.set_params(eps=1e-3)
    assert cal.eps == 1e-4


def test_set_params_reaches_the_calibrator_through_the_calibrated_classifier():
    cc = CalibratedClassifier(SoftmaxClassifier(alpha=1.0), method=TemperatureScaling(prior_scale=0.5), cv=3)
    twin = clone(cc)
    assert twin.set_params(method__prior_scale=0.1, method__max_iter=20) is twin
    assert (twin.method.prior_scale, twin.method.max_iter) == (0.1, 20)
    assert cc.method.prior_scale == 0.5  # clone copied the calibrator
    with pytest.raises(ValueError, match=r"Invalid parameter 'prior' for estimator TemperatureScaling"):
        twin.set_params(method__prior=0.1)


def test_grid_search_over_method_prior_scale_picks_as_a_grid_over_calibrator_instances():
    X, y = load_wine(return_X_y=True)
    cc = CalibratedClassifier(make_pipeline(StandardScaler(), SoftmaxClassifier(alpha=1.0)),
                              method=TemperatureScaling(prior_scale=0.5), cv=3)
    scales = [None, 0.1, 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_name = GridSearchCV(cc, {"method__prior_scale": scales}, scoring="neg_log_loss", cv=3).fit(X, y)
        by_instance = GridSearchCV(cc, {"method": [TemperatureScaling(prior_scale=s) for s in scales]},
                                   scoring="neg_log_loss", cv=3).fit(X, y)
    np.testing.assert_array_equal(by_name.cv_results_["mean_test_score"], by_instance.cv_results_["mean_test_score"])
    assert by_name.best_index_ == by_instance.best_index_
    assert by_name.best_estimator_.method.prior_scale == by_instance.best_estimator_.method.prior_scale
    np.testing.assert_array_equal(by_name.predict_proba(X), by_instance.predict_proba(X))


# --------------------------------------------------------------------------- 2. a DataFrame y's column names


def _iris_one_hot():
    X, y = load_iris(return_X_y=True)
    Y = pd.get_dummies(pd.Series(NAMES[y]))  # bool columns setosa, versicolor, virginica
    return X, y, Y, Y[["virginica", "setosa", "versicolor"]]


def test_one_hot_dataframe_columns_are_the_classes_as_the_labels_would_be():
    X, y, Y, _ = _iris_one_hot()
    model = SoftmaxClassifier(alpha=1.0).fit(X, Y)
    by_labels = SoftmaxClassifier(alpha=1.0).fit(X, NAMES[y])
    assert model.classes_.tolist() == NAMES.tolist()
    assert model.predict(X[[0, 60, 120]]).tolist() == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(model.predict_proba(X), by_labels.predict_proba(X), rtol=0, atol=1e-10)


UNSORTED = r"not in sorted order: .*scikit-learn's scorers read a 2-D y against by position\. Pass y\[sorted\(y\.columns\)\]"


def test_the_same_one_hot_in_another_column_order_is_refused_with_the_remedy():
    """Review R21: put in sorted order, the unsorted frame fitted the right model, but scikit-learn's scorers
    then read its columns by position against predict_proba's (neg_log_loss -4.8 for -0.16)."""
    X, _, Y, Y_reordered = _iris_one_hot()
    with pytest.raises(ValueError, match=UNSORTED):
        SoftmaxClassifier(alpha=1.0).fit(X, Y_reordered)
    remedied = SoftmaxClassifier(alpha=1.0).fit(X, Y_reordered[sorted(Y_reordered.columns)])
    np.testing.assert_array_equal(remedied.predict_proba(X), SoftmaxClassifier(alpha=1.0).fit(X, Y).predict_proba(X))


def test_count_targets_match_columns_by_name_too():
    X, _, Y, _ = _iris_one_hot()
    counts = Y.astype(int) * 3
    counts.iloc[0, 0] = 5
    counts.iloc[1] = [1, 2, 0]
    model = SoftmaxClassifier(alpha=1.0, count_targets=True).fit(X, counts)
    assert model.classes_.tolist() == NAMES.tolist()
    with pytest.raises(ValueError, match=UNSORTED):
        SoftmaxClassifier(alpha=1.0, count_targets=True).fit(X, counts[["virginica", "setosa", "versicolor"]])


def test_classes_given_must_be_the_column_names():
    X, _, Y, _ = _iris_one_hot()
    model = SoftmaxClassifier(alpha=1.0).fit(X, Y)
    for order in (NAMES.tolist(), ["virginica", "setosa", "versicolor"]):  # any order, as for labels (review R22)
        given = SoftmaxClassifier(alpha=1.0, classes=order).fit(X, Y)
        np.testing.assert_array_equal(given.classes_, model.classes_)
        np.testing.assert_array_equal(given.predict_proba(X), model.predict_proba(X))
    for classes in (["a", "b", "c"], [0, 1, 2], ["setosa", "versicolor"]):
        with pytest.raises(ValueError, match=r"y's columns are named \['setosa', 'versicolor', 'virginica'\], which "
                                             r"are not the classes .*Rename the columns to the classes, leave "
                                             r"classes=None, or pass y.to_numpy\(\)"):
            SoftmaxClassifier(alpha=1.0, classes=classes).fit(X, Y)


def test_columns_named_by_position_keep_labelling_by_position():
    """Guard (as before): a frame made from an array, columns 0..K-1, reads as the array."""
    X, y, Y, _ = _iris_one_hot()
    frame = pd.DataFrame(Y.to_numpy(dtype=float))
    assert SoftmaxClassifier(alpha=1.0).fit(X, frame).classes_.tolist() == [0, 1, 2]
    given = SoftmaxClassifier(alpha=1.0, classes=["a", "b", "c"]).fit(X, frame)
    assert given.predict(X[[0, 60, 120]]).tolist() == ["a", "b", "c"]


def test_integer_column_names_other_than_positions_are_classes():
    X, y, _, _ = _iris_one_hot()
    Y = pd.get_dummies(pd.Series(y + 1))  # columns 1, 2, 3
    model = SoftmaxClassifier(alpha=1.0).fit(X, Y)
    assert model.classes_.tolist() == [1, 2, 3]
    assert model.predict(X[[0, 60, 120]]).tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "columns, why",
    [
        (["a", "b", "a"], "with a repeated name"),
        (["a", "b", None], r"with a missing name \(NA/None/NaN\)"),
        (["a", 1, "b"], "labels of several types that cannot be sorted"),
    ],
)
def test_column_names_that_cannot_be_classes_are_refused(columns, why):
    X, _, Y, _ = _iris_one_hot()
    frame = pd.DataFrame(Y.to_numpy(dtype=float), columns=pd.Index(columns, dtype=object))
    with pytest.raises(ValueError, match=rf"y's columns are named .*, {why}"):
        SoftmaxClassifier(alpha=1.0).fit(X, frame)


def test_score_checks_a_dataframes_column_names_as_fit_does():
    X, y, Y, Y_reordered = _iris_one_hot()
    model = SoftmaxClassifier(alpha=1.0).fit(X, Y)
    assert model.score(X, Y) == model.score(X, NAMES[y])
    with pytest.raises(ValueError, match=UNSORTED):
        model.score(X, Y_reordered)


def test_log_loss_cross_validation_on_a_named_frame_is_the_labels():
    """Review R21: scikit-learn's scorers read a 2-D y by position against predict_proba's columns; the
    named frame (sorted) scores as its labels do, and LogisticRegression on the labels."""
    X, y, Y, _ = _iris_one_hot()
    cv = KFold(3, shuffle=True, random_state=0)
    by_frame = cross_val_score(SoftmaxClassifier(alpha=1.0), X, Y, cv=cv, scoring="neg_log_loss")
    by_labels = cross_val_score(SoftmaxClassifier(alpha=1.0), X, NAMES[y], cv=cv, scoring="neg_log_loss")
    np.testing.assert_allclose(by_frame, by_labels, rtol=1e-9)
    assert np.all(by_frame > -0.3)


def test_a_model_fitted_on_named_columns_saves_and_loads(tmp_path):
    X, _, Y, _ = _iris_one_hot()
    model = SoftmaxClassifier(alpha=1.0, classes=NAMES.tolist()).fit(X, Y)
    loaded = load(model.save(tmp_path / "model"))
    assert loaded.classes_.tolist() == NAMES.tolist()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


# --------------------------------------------------------------------------- 3. MLPClassifier's defaults as no-ops


def _adam_default(name):
    return inspect.signature(_optim.adam).parameters[name].default


NO_OPS = {
    "warm_start": False,
    "shuffle": True,
    "beta_1": _adam_default("beta1"),
    "beta_2": _adam_default("beta2"),
    "epsilon": _adam_default("epsilon"),
}


def test_the_no_ops_are_mlpclassifiers_defaults():
    """Guard: the values accepted are what MLPClassifier's defaults say (and softmaxkit's Adam uses)."""
    from sklearn.neural_network import MLPClassifier

    assert MLPClassifier().get_params() | NO_OPS == MLPClassifier().get_params()


@pytest.mark.parametrize("name", sorted(NO_OPS))
def test_mlpclassifier_defaults_that_softmaxkit_follows_are_accepted_and_not_kept(name, tmp_path):
    value = NO_OPS[name]
    model = SoftmaxClassifier(alpha=1.0, **{name: value})
    assert model.get_params() == SoftmaxClassifier(alpha=1.0).get_params()
    assert SoftmaxClassifier(alpha=1.0).set_params(**{name: value}).get_params() == model.get_params()
    assert clone(model).get_params() == model.get_params()
    X, y = load_iris(return_X_y=True)
    model.fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), SoftmaxClassifier(alpha=1.0).fit(X, y).predict_proba(X))
    assert load(model.save(tmp_path / "model")).get_params() == model.get_params()


def test_numpy_scalars_of_those_values_are_accepted():
    SoftmaxClassifier(warm_start=np.False_, shuffle=np.True_, beta_1=np.float64(0.9), epsilon=np.float64(1e-8))


@pytest.mark.parametrize(
    "name, value, advice",
    [
        ("warm_start", True, "every fit starts afresh"),
        ("warm_start", 0, "every fit starts afresh"),  # a number for a flag: not the flag
        ("shuffle", False, "Adam visits the rows in a fresh random order every epoch"),
        ("beta_1", 0.8, r"beta_1=0.9, beta_2=0.999, epsilon=1e-8"),
        ("beta_1", True, r"beta_1=0.9, beta_2=0.999, epsilon=1e-8"),
        ("beta_2", 0.99, r"beta_1=0.9, beta_2=0.999, epsilon=1e-8"),
        ("epsilon", 1e-7, r"beta_1=0.9, beta_2=0.999, epsilon=1e-8"),
        ("n_jobs", 1.0, "n_jobs=None or 1 is accepted"),
    ],
)
def test_other_values_are_still_refused_with_the_advice(name, value, advice):
    """Guard (as before), including values that compare equal to a no-op but are another type."""
    with pytest.raises(TypeError, match=rf"unexpected parameter\(s\) '{name}': .*{advice}"):
        SoftmaxClassifier(**{name: value})
    with pytest.raises(ValueError, match=rf"unexpected parameter\(s\) '{name}': .*{advice}"):
        SoftmaxClassifier().set_params(**{name: value})


@pytest.mark.parametrize(
    "make, params",
    [(TemperatureScaling, {"beta_bounds": (5.0, 1.0)}), (TemperatureScaling, {"input": "bogus"}),
     (PlattScaling, {"eps": -1.0})],
)
def test_a_calibrator_made_invalid_after_fitting_is_not_saved(tmp_path, make, params):
    """Review R21: save wrote the file, and load then refused it as "corrupted"."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(80, 3))
    calibrator = make().fit(logits, rng.integers(0, 3, 80)).set_params(**params)
    with pytest.raises(ValueError, match=r"cannot save this \w+: .*parameters set after fitting\? fit again"):
        calibrator.save(tmp_path / "c")
    assert not list(tmp_path.iterdir())
