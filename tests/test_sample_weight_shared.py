"""One sample-weight check serves the classifier, the metrics and the calibrators.

Before, the classifier had its own copy: weights whose sum overflows (each finite)
reached the solver, and a text weight was parsed as a number.
"""

import numpy as np
import pytest

from softmaxkit import SoftmaxClassifier
from softmaxkit.calibration import TemperatureScaling
from softmaxkit.metrics import log_loss

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = np.array([0, 0, 1, 1])
LOGITS = np.array([[1.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.0, 1.0]])

ENTRY_POINTS = {
    "SoftmaxClassifier.fit": lambda w: SoftmaxClassifier(alpha=1.0).fit(X, Y, sample_weight=w),
    "log_loss": lambda w: log_loss(Y, logits=LOGITS, sample_weight=w),
    "TemperatureScaling.fit": lambda w: TemperatureScaling().fit(LOGITS, Y, sample_weight=w),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        ([1e308, 1e308, 1e308, 1e308], ValueError, r"sums to inf \(overflow\)"),
        ([0, 0, 0, 0], ValueError, r"sums to 0 \(every weight is zero\)"),
        ([1, -1, 1, 1], ValueError, r"sample_weight\[1\] = -1\.0"),
        (["1", "1", "1", "1"], TypeError, "must be numeric"),
        ([1, 1, 1], ValueError, r"shape \(4,\), got \(3,\)"),
    ],
)
def test_every_entry_point_gives_the_same_message(entry, weights, error, match):
    with pytest.raises(error, match=match):
        ENTRY_POINTS[entry](weights)


def test_classifier_still_broadcasts_a_scalar_weight_as_scikit_learn_does():
    """Guard (passes before by design): a scalar weight is every row's weight."""
    scalar = SoftmaxClassifier(alpha=1.0).fit(X, Y, sample_weight=3.0)
    explicit = SoftmaxClassifier(alpha=1.0).fit(X, Y, sample_weight=np.full(4, 3.0))
    np.testing.assert_allclose(scalar.coef_, explicit.coef_, rtol=1e-12, atol=0)


def test_an_object_series_of_numbers_is_read_as_numbers():
    """A pandas Series of dtype object holding floats (review R4: refused as 'dtype object' after the merge)."""
    import pandas as pd

    w = pd.Series([1.0, 2.0, 0.5, 1.0], dtype=object)
    got = SoftmaxClassifier(alpha=1.0).fit(X, Y, sample_weight=w)
    expected = SoftmaxClassifier(alpha=1.0).fit(X, Y, sample_weight=w.astype(float).to_numpy())
    np.testing.assert_array_equal(got.coef_, expected.coef_)
    assert log_loss(Y, logits=LOGITS, sample_weight=w) == log_loss(Y, logits=LOGITS, sample_weight=[1, 2, 0.5, 1])
    with pytest.raises(TypeError, match="must be numeric"):
        log_loss(Y, logits=LOGITS, sample_weight=pd.Series(["a", "b", "c", "d"], dtype=object))
