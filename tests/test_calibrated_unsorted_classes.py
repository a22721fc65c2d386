"""A fitted model whose ``classes_`` are not sorted (a user's wrapper, a frozen third-party model): its columns
are put in sorted order, and a binary margin negated where its positive class is the first sorted one (audit
CD: it was refused with advice on folds that did not apply; scikit-learn reorders 3 classes, fails on 2)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxkit.calibration import CalibratedClassifier


class Reversed(ClassifierMixin, BaseEstimator):
    """A scaled LogisticRegression whose classes_ (and columns, and binary margin) come in reverse order."""

    def fit(self, X, y):
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
        self.classes_ = self.model_.classes_[::-1].copy()
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)[:, ::-1]

    def decision_function(self, X):
        d = self.model_.decision_function(X)
        return -d if d.ndim == 1 else d[:, ::-1]

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class Sorted(Reversed):
    """The same model with its classes in sorted order."""

    def fit(self, X, y):
        super().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def decision_function(self, X):
        return self.model_.decision_function(X)


@pytest.mark.parametrize("load", [load_breast_cancer, load_wine])
@pytest.mark.parametrize("method", ["platt", "temperature", "isotonic"])
def test_a_model_with_unsorted_classes_calibrates_as_the_sorted_one(load, method):
    X, y = load(return_X_y=True)
    names = np.array(["zeta", "alpha", "mid"])[y]
    fitted = [CalibratedClassifier(model, method=method, cv=3).fit(X[::2], names[::2])
              for model in (Reversed(), Sorted())]
    assert fitted[0].classes_.tolist() == fitted[1].classes_.tolist() == sorted(set(names))
    np.testing.assert_allclose(fitted[0].predict_proba(X[1::2]), fitted[1].predict_proba(X[1::2]), atol=1e-12)
    assert np.mean(fitted[0].predict(X[1::2]) == names[1::2]) > 0.9
