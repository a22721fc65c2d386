"""Bad input gets a ValueError/TypeError naming the argument, expected and actual."""

from __future__ import annotations

import numpy as np
import pytest

import softmaxkit as sk

X = np.zeros((3, 4), np.float32)
Y = np.array([0, 1, 2])


def test_label_out_of_range_names_value_and_position():
    with pytest.raises(ValueError, match=r"class index 7 at position \[1\].*4 classes"):
        sk.cross_entropy(X, np.array([0, 7, 2]))


def test_negative_label_names_position_in_nd_target():
    x = np.zeros((2, 3, 5))
    y = np.zeros((2, 3), np.int64)
    y[1, 2] = -3
    with pytest.raises(ValueError, match=r"class index -3 at position \(1, 2\)"):
        sk.cross_entropy(x, y)


def test_ignore_index_is_not_out_of_range():
    sk.cross_entropy(X, np.array([0, -100, 2]))
    with pytest.raises(ValueError, match="class index -100"):
        sk.cross_entropy(X, np.array([0, -100, 2]), ignore_index=-1)


def test_non_finite_weight():
    # negative class weights are accepted (torch accepts them); non-finite ones are not
    with pytest.raises(ValueError, match=r"weight must be finite; weight\[2\] = inf"):
        sk.cross_entropy(X, Y, weight=[1.0, 1.0, np.inf, 1.0])


def test_weight_wrong_shape():
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\).*got \(3,\)"):
        sk.cross_entropy(X, Y, weight=[1.0, 1.0, 1.0])


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_smoothing_outside_unit_interval(value):
    with pytest.raises(ValueError, match=rf"label_smoothing must be in \[0, 1\], got {value}"):
        sk.cross_entropy(X, Y, label_smoothing=value)


def test_unknown_reduction():
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'avg'"):
        sk.cross_entropy(X, Y, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        sk.binary_cross_entropy_with_logits(X, X, reduction="avg")


def test_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"target of class indices.*expected \(3,\), got \(4,\)"):
        sk.cross_entropy(X, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"target of probabilities.*expected \(3, 4\), got \(3, 5\)"):
        sk.cross_entropy(X, np.full((3, 5), 0.2))


def test_integer_logits_rejected():
    for op in (sk.softmax, sk.log_softmax, sk.logsumexp, sk.sigmoid):
        with pytest.raises(TypeError, match=r"x must have a floating dtype.*got int64"):
            op(np.array([[1, 2]], dtype=np.int64))
    with pytest.raises(TypeError, match=r"logits must have a floating dtype.*got int"):
        sk.cross_entropy(np.array([[1, 2]]), np.array([0]))


def test_bad_target_dtype():
    with pytest.raises(TypeError, match="target must hold integer class indices or floating probabilities"):
        sk.cross_entropy(X, np.array(["a", "b", "c"]))


def test_soft_target_with_ignore_index_raises_like_torch():
    t = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"ignore_index=1 is not supported with probability"):
        sk.cross_entropy(X, t, ignore_index=1)
    sk.cross_entropy(X, t, ignore_index=-1)  # a negative one never matches a class: torch accepts it


def test_axis_out_of_range():
    with pytest.raises(ValueError, match=r"axis=2 is out of range for x with 2 dimension"):
        sk.softmax(X, 2)


@pytest.mark.parametrize("t", [0.0, -1.0, float("inf")])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match="temperature must be a finite value > 0"):
        sk.softmax(X, temperature=t)


def test_bad_z_loss_and_softcap():
    with pytest.raises(ValueError, match="z_loss must be a finite value >= 0"):
        sk.cross_entropy(X, Y, z_loss=-1)
    with pytest.raises(ValueError, match="softcap must be a finite value > 0"):
        sk.cross_entropy(X, Y, softcap=0.0)
    # past float32's range the cap is inf in a float32 kernel: NaN losses, exit 0 (audit)
    with pytest.raises(ValueError, match=r"softcap must be at most 3\.403e\+38"):
        sk.cross_entropy(X.astype(np.float32), Y, softcap=1e39)
    assert np.isfinite(sk.cross_entropy(X.astype(np.float32), Y, softcap=3e38))


def test_zero_classes():
    with pytest.raises(ValueError, match="at least 1 class"):
        sk.cross_entropy(np.zeros((2, 0)), np.zeros(2, np.int64))


def test_out_wrong_shape():
    with pytest.raises(ValueError, match=r"out must be a NumPy array of shape \(3, 4\)"):
        sk.softmax(X, out=np.empty((4, 3), np.float32))


def test_errors_are_not_assertions():
    # python -O strips asserts: every check must be a real exception.
    import inspect

    import softmaxkit._validation as v
    import softmaxkit.functional as f

    for mod in (v, f):
        assert "assert " not in inspect.getsource(mod)
