"""Targets found by review round R24 (F4).

``SoftmaxClassifier(classes=['a', 'a', 'b', 'c']).fit(X, Y)`` with ``Y`` a one-hot DataFrame whose
columns are named ``a, b, c`` fitted silently (the classes were compared after ``np.unique``), where
the same one-hot as an ndarray is refused with "classes must list 3 distinct labels". Both are
refused alike now.
"""

import numpy as np
import pandas as pd
import pytest

from softmaxkit import SoftmaxClassifier

REPEATED = r"classes must list 3 distinct labels, one per column of y; got \['a', 'a', 'b', 'c'\]"


def _one_hot():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    Y = pd.get_dummies(pd.Series(rng.choice(["a", "b", "c"], 60))).astype(float)
    return X, Y


@pytest.mark.parametrize("classes", [["a", "a", "b", "c"], ["c", "a", "b", "a"]])
def test_repeated_class_refused_for_a_dataframe_y_as_for_an_array(classes):
    X, Y = _one_hot()
    assert Y.columns.tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"classes must list 3 distinct labels, one per column of y"):
        SoftmaxClassifier(alpha=1.0, classes=classes).fit(X, Y)


def test_same_message_for_frame_and_array():
    X, Y = _one_hot()
    with pytest.raises(ValueError, match=REPEATED):
        SoftmaxClassifier(alpha=1.0, classes=["a", "a", "b", "c"]).fit(X, Y)
    with pytest.raises(ValueError, match=REPEATED):
        SoftmaxClassifier(alpha=1.0, classes=["a", "a", "b", "c"]).fit(X, Y.to_numpy())


def test_distinct_classes_in_any_order_still_fit():
    """Guard: the names in another order are the classes (review R22), and a wrong set keeps its message."""
    X, Y = _one_hot()
    model = SoftmaxClassifier(alpha=1.0, classes=["c", "a", "b"]).fit(X, Y)
    assert model.classes_.tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"y's columns are named \['a', 'b', 'c'\], which are not the classes"):
        SoftmaxClassifier(alpha=1.0, classes=["a", "b", "c", "d"]).fit(X, Y)
