"""Array-likes that ``np.asarray`` reads wrongly or that a dtype test mis-named (audit AW).

* NumPy masked arrays: ``np.asarray`` drops the mask, so a masked weight, label or score was used
  as if unmasked (log-loss 1.968 where scikit-learn gives 1.289). Refused at the shared conversion
  point with a message naming the argument; a masked array with no masked entry is its data.
* Object arrays of Python ints (a pandas object Series): labels raised a bare ``StopIteration``.
* Non-native byte order floats (``'>f8'``, from FITS files or ``np.load``): refused as "not a
  floating dtype"; now computed on as their native equivalent, as scipy and scikit-learn do.
"""

from __future__ import annotations

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit import calibration as C
from softmaxkit import conformal as CF
from softmaxkit import metrics as M

sklearn_metrics = pytest.importorskip("sklearn.metrics")
scipy_special = pytest.importorskip("scipy.special")

X = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0], [2.0, 0.0, 0.0]])
Y = np.array([2, 0, 1])
P = scipy_special.softmax(X, axis=1)
MASKED_W = np.ma.array([1.0, 1.0, 5.0], mask=[0, 0, 1])  # row 2's weight is masked out
# labels drawn from softmax(L_X / 2): enough rows for temperature scaling to find an interior optimum
_rng = np.random.RandomState(0)
L_X = _rng.randn(200, 3) * 2
L_Y = np.argmax(L_X / 2 + _rng.gumbel(size=L_X.shape), axis=1)


# --- masked arrays ------------------------------------------------------------------------------


def test_masked_sample_weight_is_refused_where_it_was_read_unmasked():
    # scikit-learn honours the mask (masked rows drop out): 1.2887; softmaxkit used the hidden 5.0: 1.9679
    assert sklearn_metrics.log_loss(Y, P, sample_weight=MASKED_W) == pytest.approx(1.2887259920003329)
    for call in (lambda: M.log_loss(Y, logits=X, sample_weight=MASKED_W),
                 lambda: M.log_loss(Y, probs=P, sample_weight=MASKED_W),
                 lambda: M.brier_score(Y, P, sample_weight=MASKED_W),
                 lambda: M.brier_score(np.array([1, 0, 1]), np.array([0.9, 0.2, 0.1]), sample_weight=MASKED_W),
                 lambda: C.TemperatureScaling().fit(X, Y, sample_weight=MASKED_W)):
        with pytest.raises(ValueError, match=r"sample_weight is a masked array with 1 masked entry.*"
                                             r"compressed\(\).*filled.*weight 0"):
            call()


def test_the_advised_filled_weight_gives_scikit_learns_number():
    got = M.log_loss(Y, logits=X, sample_weight=MASKED_W.filled(0))
    assert got == pytest.approx(sklearn_metrics.log_loss(Y, P, sample_weight=MASKED_W), rel=1e-12)


@pytest.mark.parametrize("name, call", [
    ("y", lambda ym: M.log_loss(ym, logits=X)),
    ("y", lambda ym: M.expected_calibration_error(ym, probs=P)),
    ("y", lambda ym: CF.conformity_scores(P, ym)),
    ("target", lambda ym: sk.cross_entropy(X, ym)),
    ("y", lambda ym: sk.SoftmaxClassifier().fit(X, ym)),
])
def test_masked_labels_are_refused(name, call):
    ym = np.ma.array(Y, mask=[0, 0, 1])  # was read as all three labels (1.6057, not rows 0-1's 1.2887)
    with pytest.raises(ValueError, match=rf"^{name} is a masked array"):
        call(ym)


def test_masked_class_weight_logits_probs_and_scores_are_refused():
    with pytest.raises(ValueError, match=r"^weight is a masked array"):
        sk.cross_entropy(X, Y, weight=np.ma.array([1.0, 1.0, 9.0], mask=[0, 0, 1]))
    with pytest.raises(ValueError, match=r"^logits is a masked array"):
        sk.cross_entropy(np.ma.array(X, mask=np.eye(3)), Y)
    with pytest.raises(ValueError, match=r"^logits is a masked array"):
        M.log_loss(Y, logits=np.ma.array(X, mask=np.eye(3)))
    with pytest.raises(ValueError, match=r"^probs is a masked array"):
        M.log_loss(Y, probs=np.ma.array(P, mask=np.eye(3)))
    # the largest score was masked; 0.3 (the hidden 9.0 counted) where the 3 unmasked give 0.2
    with pytest.raises(ValueError, match=r"masked array with 1 masked entry"):
        CF.conformal_quantile(np.ma.array([0.1, 0.2, 0.3, 9.0], mask=[0, 0, 0, 1]), 0.5)


def test_a_masked_array_with_nothing_masked_is_its_data():
    w = np.array([1.0, 2.0, 3.0])
    assert M.log_loss(np.ma.array(Y), logits=np.ma.array(X), sample_weight=np.ma.array(w)) == pytest.approx(
        sklearn_metrics.log_loss(Y, P, sample_weight=w), rel=1e-12)
    assert np.allclose(sk.softmax(np.ma.array(X, mask=False)), P)


# --- object-dtype integer labels ----------------------------------------------------------------


def test_object_integer_labels_are_class_indices():
    pd = pytest.importorskip("pandas")
    y_obj = np.array([2, 0, 1], dtype=object)
    want = sklearn_metrics.log_loss(Y, P, labels=[0, 1, 2])
    assert M.log_loss(y_obj, logits=X) == pytest.approx(want, rel=1e-12)
    assert M.log_loss(y_obj, probs=P) == pytest.approx(want, rel=1e-12)
    assert M.log_loss(pd.Series([2, 0, 1], dtype=object), logits=X) == pytest.approx(want, rel=1e-12)
    assert M.log_loss(np.array([2, np.int64(0), 1], dtype=object), logits=X) == pytest.approx(want, rel=1e-12)
    assert M.brier_score(y_obj, P) == M.brier_score(Y, P)
    assert float(M.expected_calibration_error(y_obj, probs=P)) == float(M.expected_calibration_error(Y, probs=P))
    assert (C.TemperatureScaling().fit(L_X, L_Y.astype(object)).temperature_
            == C.TemperatureScaling().fit(L_X, L_Y).temperature_)
    assert np.array_equal(CF.conformity_scores(P, y_obj), CF.conformity_scores(P, Y))


def test_object_labels_that_are_not_integers_keep_their_messages():
    with pytest.raises(TypeError, match="LabelEncoder"):
        M.log_loss(np.array(["b", "a", "c"], dtype=object), logits=X)
    with pytest.raises(TypeError, match="missing label"):
        M.log_loss(np.array([2, None, 1], dtype=object), logits=X)
    with pytest.raises(TypeError, match=r"found 0\.5 at position \[1\]"):
        M.log_loss(np.array([2, 0.5, 1], dtype=object), logits=X)
    with pytest.raises(ValueError, match=r"class index 7 at position \[1\]"):
        M.log_loss(np.array([2, 7, 1], dtype=object), logits=X)
    with pytest.raises(ValueError, match=r"class index 2\*\*70|class index 1180591620717411303424 at position \[1\]"):
        M.log_loss(np.array([2, 2**70, 1], dtype=object), logits=X)
    # Python bools are the classes False/True of a binary problem, as a bool array is
    with pytest.raises(ValueError, match="holds booleans"):
        M.log_loss(np.array([True, False, True], dtype=object), logits=X)
    pb = np.array([0.9, 0.2, 0.7])
    assert M.brier_score(np.array([True, False, True], dtype=object), pb) == M.brier_score(np.array([1, 0, 1]), pb)


# --- non-native byte order ----------------------------------------------------------------------


@pytest.mark.parametrize("order", [">f8", ">f4"])
def test_non_native_byte_order_floats_compute_as_native(order):
    be, native = X.astype(order), X.astype(order[1:])
    rtol = 1e-12 if order == ">f8" else 1e-6
    np.testing.assert_allclose(sk.softmax(be), scipy_special.softmax(native, axis=-1), rtol=rtol)
    np.testing.assert_allclose(sk.log_softmax(be), scipy_special.log_softmax(native, axis=-1), rtol=rtol)
    np.testing.assert_allclose(sk.sigmoid(be), scipy_special.expit(native), rtol=rtol)
    assert sk.cross_entropy(be, Y) == sk.cross_entropy(native, Y)
    pb = P.astype(order)
    assert M.log_loss(Y, probs=pb) == M.log_loss(Y, probs=P.astype(order[1:]))
    if order == ">f8":  # scikit-learn warns that float32 rows do not sum to 1 within its float64 tolerance
        assert M.log_loss(Y, probs=pb) == pytest.approx(sklearn_metrics.log_loss(Y, pb, labels=[0, 1, 2]), rel=rtol)
    assert M.log_loss(Y, logits=be) == M.log_loss(Y, logits=native)
    assert M.brier_score(Y, pb) == M.brier_score(Y, P.astype(order[1:]))
    assert (C.TemperatureScaling().fit(L_X.astype(order), L_Y).temperature_
            == C.TemperatureScaling().fit(L_X.astype(order[1:]), L_Y).temperature_)
    assert np.array_equal(CF.conformity_scores(pb, Y), CF.conformity_scores(P.astype(order[1:]), Y))
    scores = np.array([0.1, 0.2, 0.3])
    assert CF.conformal_quantile(scores.astype(order), 0.5) == CF.conformal_quantile(scores.astype(order[1:]), 0.5)
    # big-endian labels and weights were accepted already; still the same numbers
    assert M.log_loss(Y.astype(">i8"), logits=X, sample_weight=np.ones(3).astype(">f8")) == M.log_loss(Y, logits=X)


def test_a_non_native_out_buffer_is_refused_naming_byte_order():
    out = np.empty((3, 3), ">f8")
    with pytest.raises(TypeError, match=r"out has non-native byte order \(>f8\).*native float64"):
        sk.softmax(X, out=out)


def test_softmax_and_binary_cross_entropy_read_masks_and_byte_order():
    """The softmax family and the binary loss converted their inputs themselves, past the shared conversion:
    a masked x or target used the hidden values, and a '>f8' target was refused as "not numeric"."""
    import scipy.special

    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]])
    with pytest.raises(ValueError, match="x"):
        sk.softmax(np.ma.masked_array(x, mask=[[0, 0, 1], [0, 0, 0]]))
    np.testing.assert_allclose(sk.softmax(x.astype(">f8")), scipy.special.softmax(x, axis=-1), rtol=1e-15)
    target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="target"):
        sk.binary_cross_entropy_with_logits(x, np.ma.masked_array(target, mask=[[0, 1, 0], [0, 0, 0]]))
    assert sk.binary_cross_entropy_with_logits(x, target.astype(">f8")) == sk.binary_cross_entropy_with_logits(
        x, target)
