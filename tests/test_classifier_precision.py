"""``dtype="float32"`` on float64 features: the centring is exact before the rounding.

Audit: float64 X = 1e6 + 0.01 z fitted with dtype="float32" was cast first, so the feature had one
distinct value in 400 and the model predicted the class prior (accuracy 0.537, exit 0).
"""

import numpy as np
import pytest

from softmaxkit import SoftmaxClassifier


@pytest.mark.parametrize("hidden", [(), (5,)], ids=["linear", "mlp"])
def test_float32_fit_keeps_a_feature_with_a_large_offset(hidden):
    rng = np.random.RandomState(0)
    Z = rng.randn(400, 2)
    y = (Z[:, 0] + Z[:, 1] > 0).astype(int)
    X = 1e6 + 0.01 * Z
    assert np.unique(X[:, 0].astype(np.float32)).size == 1  # the signal is below float32's resolution at 1e6
    fits = {dtype: SoftmaxClassifier(hidden_layer_sizes=hidden, solver="lbfgs", alpha=1e-3, dtype=dtype,
                                     max_iter=300, random_state=0).fit(X, y) for dtype in ("float64", "float32")}
    assert fits["float32"].score(X, y) >= 0.99
    np.testing.assert_allclose(fits["float32"].predict_proba(X), fits["float64"].predict_proba(X), atol=0.02)
