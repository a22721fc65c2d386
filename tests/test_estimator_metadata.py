"""Estimator metadata and label errors found by the scikit-learn semantics audit:
a refit forgets the previous fit's feature names, missing labels are named as such,
and an estimator's own extra classes get advice that fits them."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sklearn.datasets import load_iris  # noqa: E402

from softmaxkit import SoftmaxClassifier  # noqa: E402
from softmaxkit.calibration import CalibratedClassifier  # noqa: E402


@pytest.fixture(scope="module")
def iris_frame():
    return load_iris(return_X_y=True, as_frame=True)


def test_calibrated_refit_on_numpy_forgets_feature_names(iris_frame):
    X, y = iris_frame
    model = CalibratedClassifier(SoftmaxClassifier(alpha=1.0), cv=3).fit(X, y)
    assert list(model.feature_names_in_) == list(X.columns)
    model.fit(X.to_numpy()[:, ::-1], y.to_numpy())
    assert not hasattr(model, "feature_names_in_")
    assert model.n_features_in_ == 4


@pytest.mark.parametrize("make_labels", [
    lambda y: (y == 1).astype("boolean"),
    lambda y: y.map({0: "a", 1: "b", 2: "c"}).astype("string"),
    lambda y: y.map({0: "a", 1: "b", 2: "c"}).astype(object),
], ids=["boolean", "string", "object"])
@pytest.mark.parametrize("missing", ["NA", "None", "nan"])
def test_missing_labels_are_named_with_their_rows(iris_frame, make_labels, missing):
    X, y = iris_frame
    labels = make_labels(y)
    if missing != "NA" and str(labels.dtype) != "object":
        pytest.skip("None/NaN become NA in a nullable dtype")
    labels.iloc[[3, 7]] = {"NA": pd.NA, "None": None, "nan": np.nan}[missing]
    with pytest.raises(ValueError, match=r"2 missing labels \(NA/None/NaN\) at rows 3, 7"):
        SoftmaxClassifier(alpha=1.0).fit(X, labels)


def test_estimator_classes_absent_from_y_get_classes_advice(iris_frame):
    X, y = iris_frame
    model = CalibratedClassifier(SoftmaxClassifier(alpha=1.0, classes=[0, 1, 2, 3]), cv=3)
    with pytest.raises(ValueError, match=r"predicts class\(es\) \[3\].*drop them from its classes") as info:
        model.fit(X, y)
    assert "stratified folds" not in str(info.value)


@pytest.mark.parametrize("missing", [np.float32("nan"), pd.NaT, np.datetime64("NaT")], ids=["float32-nan", "pd-NaT", "np-NaT"])
def test_missing_labels_of_other_types_are_named(iris_frame, missing):
    X, y = iris_frame
    labels = y.map({0: "a", 1: "b", 2: "c"}).to_numpy(dtype=object)
    labels[5] = missing
    with pytest.raises(ValueError, match=r"1 missing label \(NA/None/NaN\) at row 5"):
        SoftmaxClassifier(alpha=1.0).fit(X, labels)
