"""Metrics and calibrators as drop-ins for scipy/scikit-learn calls: inputs that those libraries read
one way and softmaxkit read another, silently (audit AE).

1. ``np.longdouble`` logits are computed in float64 (they were cut to float32: log-loss 0.6931 for 0.5032).
2. Labels that are class values 1..K (``model.classes_``), not column indices, are warned about with
   the evidence the CLI refuses them on (log-loss 1.61 where scikit-learn's ``labels=`` gives 0.59).
3. float32/float64 rows that sum to 1 only within bfloat16 (float16) rounding are accepted as such,
   with a warning unless the array really is 16-bit.
4. Errors that say what to pass: one probability column, NaN / ``<NA>`` labels, pandas nullable
   floats, ``axis=None``.

Expected numbers come from scipy / scikit-learn in the test, never from softmaxkit itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as ss
import sklearn.metrics as skm

import softmaxkit as sk
from softmaxkit.calibration import MatrixScaling, TemperatureScaling, VectorScaling
from softmaxkit.metrics import brier_score, expected_calibration_error, log_loss, reliability_curve


def _messages(record) -> list[str]:
    return [str(w.message) for w in record]


# --------------------------------------------------------------------------- 1. longdouble logits


def test_longdouble_logits_are_computed_in_float64():
    z = np.array([[1e8, 1e8 + 1.0], [0.1234567891, 0.1234567899]])
    y = np.array([1, 1])
    truth = float(np.mean(ss.logsumexp(z, axis=1) - z[[0, 1], y]))
    assert log_loss(y, logits=z.astype(np.longdouble)) == pytest.approx(truth, rel=1e-9)


def test_temperature_scaling_on_longdouble_logits_matches_float64():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3)) * 2 + 1e6  # float32 keeps only 1/16 of a unit at 1e6
    y = rng.integers(0, 3, 200)
    t64 = TemperatureScaling().fit(z, y).temperature_
    assert TemperatureScaling().fit(z.astype(np.longdouble), y).temperature_ == pytest.approx(t64, rel=1e-9)


def test_logits_keep_the_compute_dtype_rule():
    from softmaxkit._calibration_inputs import check_logits

    assert check_logits(np.zeros((2, 3), np.float16)).dtype == np.float32
    assert check_logits(np.zeros((2, 3), np.float32)).dtype == np.float32
    assert check_logits(np.zeros((2, 3), np.longdouble)).dtype == np.float64


# --------------------------------------------------------------------------- 2. 1-based class values


@pytest.fixture()
def one_based():
    """A good model with ``classes_ = [1, 2, 3]`` scored on rows of classes 1 and 2 only (so no label
    is out of range), and its labels as class values."""
    rng = np.random.default_rng(3)
    classes = np.array([1, 2, 3])
    col = rng.integers(0, 2, 200)
    probs = rng.dirichlet(np.ones(3), 200) * 0.3
    probs[np.arange(200), col] += 0.7
    y = classes[col]
    return {"classes": classes, "probs": probs, "y": y}


def _assert_one_based_warning(record, y, scores):
    top = np.argmax(scores, axis=1)
    shifted, as_is = int(np.sum(top == y - 1)), int(np.sum(top == y))
    said = [m for m in _messages(record) if "1-based" in m]
    assert len(said) == 1, _messages(record)
    assert f"on {shifted} of {len(y)} rows" in said[0] and f"itself on {as_is}" in said[0]
    assert "np.searchsorted(" in said[0] and "0..2" in said[0]
    # The sign test cannot tell 1-based labels from a model one class low (review R5: an ordinal model
    # under-predicting on an evaluation subset without class 0 was told to subtract 1): both are named.
    assert "one class off, not the labels" in said[0]


@pytest.mark.parametrize("metric", ["log_loss", "log_loss_logits", "brier", "ece", "reliability"])
def test_metrics_warn_on_one_based_labels(one_based, metric):
    y, p = one_based["y"], one_based["probs"]
    call = {
        "log_loss": lambda: log_loss(y, probs=p),
        "log_loss_logits": lambda: log_loss(y, logits=np.log(p)),
        "brier": lambda: brier_score(y, p),
        "ece": lambda: expected_calibration_error(y, p),
        "reliability": lambda: reliability_curve(y, p),
    }[metric]
    with pytest.warns(UserWarning, match="1-based") as record:
        call()
    _assert_one_based_warning(record, y, p)
    assert record[0].filename == __file__  # points at the caller's line, not into softmaxkit


def test_the_suggested_mapping_gives_scikit_learns_numbers(one_based):
    y, p, classes = one_based["y"], one_based["probs"], one_based["classes"]
    cols = np.searchsorted(classes, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mapped labels: no warning
        assert log_loss(cols, probs=p) == pytest.approx(skm.log_loss(y, p, labels=classes), rel=1e-12)
        onehot = (cols[:, None] == np.arange(3)).astype(float)
        assert brier_score(cols, p) == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)), rel=1e-12)


@pytest.mark.parametrize("cls", [TemperatureScaling, VectorScaling, MatrixScaling])
def test_calibrators_warn_on_one_based_labels(one_based, cls):
    y, z = one_based["y"], np.log(one_based["probs"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cls().fit(z, y)
    _assert_one_based_warning(record, y, z)


def test_zero_based_labels_without_class_0_are_not_warned(one_based):
    """Labels 1 and 2 that are indices, scored by a model right about them: no sign of a shift."""
    y, p = one_based["y"], np.roll(one_based["probs"], 1, axis=1)  # the top column is now the label
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        log_loss(y, probs=p)
        brier_score(y, p)
        expected_calibration_error(y, p)
        TemperatureScaling().fit(np.log(p), y)
    assert not [m for m in _messages(record) if "1-based" in m]


def test_cli_still_refuses_with_the_shared_evidence(one_based, tmp_path):
    from softmaxkit.cli import CLIError
    from softmaxkit.cli._common import _refuse_one_based_labels

    with pytest.raises(CLIError, match=r"look 1-based.*--classes 1,2,3"):
        _refuse_one_based_labels(one_based["probs"], one_based["y"], labels_path="lab.csv", source="p.npy")


# --------------------------------------------------------------------------- 3. 16-bit row sums


def test_bfloat16_exact_float64_rows_off_by_bfloat16_rounding_warn():
    p = np.array([[0.5, 0.5], [0.25, 0.7578125]])  # row 1 sums to 1.0078: beyond float64's 0.001
    y = np.array([0, 1])
    with pytest.warns(UserWarning, match=r"only within bfloat16 rounding \(row 1 sums to 1\.0078"):
        got = log_loss(y, probs=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got == pytest.approx(skm.log_loss(y, p), rel=1e-12)


def test_float16_exact_float32_rows_warn_and_float16_arrays_do_not():
    p16 = np.array([[0.5, 0.5], [0.25, 0.75146484375]], dtype=np.float16)  # row 1 off by 0.0015
    y = np.array([0, 1])
    with pytest.warns(UserWarning, match="only within float16 rounding"):
        log_loss(y, probs=p16.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, probs=p16)  # really float16: its own tolerance, nothing to say


def test_bfloat16_tensor_is_not_warned():
    torch = pytest.importorskip("torch")
    p = torch.tensor([[0.5, 0.5], [0.25, 0.7578125]], dtype=torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        brier_score(np.array([0, 1]), p)


# --------------------------------------------------------------------------- 4. errors that say what to pass


P = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
Y = np.array([0, 1, 1])


def test_one_probability_column_says_pass_a_vector():
    with pytest.raises(ValueError, match=r"one column.*1-D vector of positive-class probabilities"):
        log_loss(Y, probs=P[:, 1:])
    assert log_loss(Y, probs=P[:, 1]) == pytest.approx(skm.log_loss(Y, P[:, 1]), rel=1e-12)


def test_nan_label_is_named_with_its_position():
    with pytest.raises((TypeError, ValueError), match=r"nan at position \[2\]"):
        log_loss(np.array([0.0, 1.0, np.nan]), probs=P)


def test_pandas_missing_label_is_named_with_its_position():
    pd = pytest.importorskip("pandas")
    with pytest.raises((TypeError, ValueError), match=r"at position \[2\]"):
        log_loss(pd.Series([0, 1, None], dtype="Int64"), probs=P)


def test_pandas_nullable_float_probs_say_to_numpy():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(P, dtype="Float64")
    with pytest.raises(TypeError, match=r"Float64.*to_numpy\(dtype=float\)"):
        log_loss(Y, probs=frame)
    assert log_loss(Y, probs=frame.to_numpy(dtype=float)) == pytest.approx(skm.log_loss(Y, P), rel=1e-12)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("axis", [None, (0, 1)])
def test_axis_none_says_what_to_pass(op, axis):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"axis=None.*not supported.*axis=-1.*ravel\(\)"):
        getattr(sk, op)(x, axis=axis)
    # the suggested call gives scipy's default (all elements as one set of classes)
    assert np.allclose(np.reshape(getattr(sk, op)(x.ravel()), np.shape(getattr(ss, op)(x))), getattr(ss, op)(x))


def test_labels_reaching_k_get_the_one_based_hint_in_the_range_error(tmp_path, capsys):
    """Labels 1..K that reach K are out of range: the error now says they look 1-based (audit AH: the
    README's warning covers only labels that do not reach K; these got a bare range error)."""
    from cli_helpers import call

    from softmaxkit.metrics import OneBasedLabelsWarning, log_loss

    assert issubclass(OneBasedLabelsWarning, UserWarning)
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"labels 1\.\.3 look 1-based"):
        log_loss(np.array([1, 2, 3, 3]), probs=p)
    np.save(tmp_path / "s.npy", np.log(p))
    np.save(tmp_path / "y.npy", np.array([1, 2, 3, 3]))
    rc, _, err = call(capsys, "evaluate", "--logits", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy"))
    assert rc == 1 and "--classes 1,2,3" in err, err
