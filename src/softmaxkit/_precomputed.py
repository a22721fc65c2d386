"""A scikit-learn classifier whose features are its own scores, for tools that take an estimator.

Peers such as ``CalibratedClassifierCV`` (scikit-learn) and MAPIE's
``SplitConformalClassifier`` calibrate an *estimator*, while a softmaxkit user
(and our comparisons with those peers) starts from a network's logits or
probabilities. :class:`PrecomputedScores` bridges the two: its input ``X`` is
the ``(n, K)`` score matrix itself, returned unchanged by
``decision_function`` (``kind="logits"``) or ``predict_proba``
(``kind="probs"``). Only the method of its kind exists, because scikit-learn
prefers ``decision_function`` when both do.

Imports scikit-learn; load it only where a peer needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if


class PrecomputedScores(ClassifierMixin, BaseEstimator):
    """Classes ``0..K-1`` whose scores are the input columns.

    Parameters
    ----------
    kind : {"logits", "probs"}, default="logits"
        What the columns of ``X`` are.

    :meth:`fit` only reads the class count from ``X``'s width; call it before
    handing the estimator to a tool that treats it as prefit (MAPIE's
    ``prefit=True``, scikit-learn's ``FrozenEstimator``).
    """

    def __init__(self, kind: str = "logits"):
        self.kind = kind

    def fit(self, X: Any, y: Any = None) -> "PrecomputedScores":
        self.classes_ = np.arange(np.shape(X)[1])
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_")

    @available_if(lambda self: self.kind == "logits")
    def decision_function(self, X: Any) -> np.ndarray:
        """The logits, unchanged: shape (n, K)."""
        return np.asarray(X)

    @available_if(lambda self: self.kind == "probs")
    def predict_proba(self, X: Any) -> np.ndarray:
        """The probabilities, unchanged: shape (n, K)."""
        return np.asarray(X)

    def predict(self, X: Any) -> np.ndarray:
        return np.argmax(np.asarray(X), axis=1)
