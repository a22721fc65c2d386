"""Hypothesis properties of the softmax family (DESIGN.md, "Style")."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import softmaxkit as sk

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
rows = arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 40)), elements=finite)


@given(rows)
def test_rows_sum_to_one(x):
    np.testing.assert_allclose(sk.softmax(x).sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(sk.softmax(x.astype(np.float32)).astype(np.float64).sum(axis=-1), 1.0, rtol=1e-6)


@given(rows, st.floats(-1e3, 1e3))
def test_invariant_to_a_constant_shift(x, c):
    np.testing.assert_allclose(sk.softmax(x + c), sk.softmax(x), atol=1e-10)
    np.testing.assert_allclose(sk.log_softmax(x + c), sk.log_softmax(x), atol=1e-9)
    y = np.zeros(x.shape[0], np.int64)
    np.testing.assert_allclose(sk.cross_entropy(x + c, y), sk.cross_entropy(x, y), atol=1e-9)


@given(rows, st.floats(0.05, 20.0))
def test_temperature_keeps_the_argmax(x, t):
    p = sk.softmax(x, temperature=t)
    # near-ties may round to equal probabilities: the logits' argmax must hold the top probability
    top = np.argmax(x, axis=-1)
    np.testing.assert_array_equal(p[np.arange(len(x)), top], p.max(axis=-1))


@given(st.floats(-700, 700))
def test_two_class_softmax_is_the_logistic_function(z):
    np.testing.assert_allclose(sk.softmax(np.array([0.0, z]))[1], sk.sigmoid(np.array(z)), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(sk.log_softmax(np.array([0.0, z]))[1], sk.log_sigmoid(np.array(z)), rtol=1e-12)


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-50, 50)), st.data())
def test_binary_ce_equals_two_class_ce(z, data):
    y = data.draw(arrays(np.int64, z.shape, elements=st.integers(0, 1)))
    two_class = np.stack([np.zeros_like(z), z], axis=-1)
    np.testing.assert_allclose(
        sk.binary_cross_entropy_with_logits(z, y.astype(np.float64), reduction="none"),
        sk.cross_entropy(two_class, y, reduction="none"),
        rtol=1e-10, atol=1e-12,
    )


@given(rows)
def test_log_softmax_is_log_of_softmax(x):
    np.testing.assert_allclose(np.exp(sk.log_softmax(x)), sk.softmax(x), rtol=1e-10, atol=1e-300)
