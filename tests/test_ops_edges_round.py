"""Edge cases of the softmax family and cross-entropy found by an audit round.

0-dim inputs agree with the 1-element row, ignored rows get a zero gradient on
both kernel backends, a temperature whose reciprocal overflows is refused, and
floating dtypes narrower than float16 (float8/float6/float4) are refused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit import kernels

SPECIAL_VALUES = [2.5, -3.0, 0.0, -np.inf, np.inf, np.nan]


@pytest.fixture(params=["reference", "cpu"])
def backend(request, monkeypatch):
    """Force the NumPy reference kernels or the numba kernels, whatever the input size."""
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if request.param == "cpu" else 10**12)
    return request.param


# --------------------------------------------------------------------------- 0-dim inputs


@pytest.mark.parametrize("value", SPECIAL_VALUES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_zero_dim_matches_the_one_element_row(op, dtype, value):
    fn = getattr(sk, op)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 * -inf warned "invalid value encountered in multiply"
        got = fn(np.array(value, dtype=dtype))
    expected = fn(np.array([value], dtype=dtype))
    assert got.shape == () and got.dtype == dtype
    np.testing.assert_array_equal(got, expected.reshape(()))


@pytest.mark.parametrize(
    ("value", "prob", "log_prob"),
    [(1.5, 1.0, 0.0), (-np.inf, 0.0, -np.inf), (np.inf, np.nan, np.nan), (np.nan, np.nan, np.nan)],
)
def test_zero_dim_values_follow_the_design(value, prob, log_prob):
    # DESIGN: an all -inf row has softmax 0 and log_softmax -inf; NaN or +inf gives NaN.
    np.testing.assert_array_equal(sk.softmax(np.float32(value)), np.float32(prob))
    np.testing.assert_array_equal(sk.log_softmax(np.float32(value)), np.float32(log_prob))


def test_zero_dim_writes_into_out():
    out = np.full((), 7.0)
    assert sk.log_softmax(np.array(-np.inf), out=out) is out
    assert out == -np.inf


@pytest.mark.parametrize("value", SPECIAL_VALUES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_torch_zero_dim_matches_the_one_element_row(op, value):
    torch = pytest.importorskip("torch")
    fn = getattr(sk, op)
    got = fn(torch.tensor(value, dtype=torch.float32))
    expected = fn(torch.tensor([value], dtype=torch.float32))
    assert got.shape == ()
    torch.testing.assert_close(got, expected.reshape(()), equal_nan=True, rtol=0, atol=0)


def test_torch_zero_dim_keeps_a_zero_gradient():
    torch = pytest.importorskip("torch")
    x = torch.tensor(0.75, requires_grad=True)
    sk.log_softmax(x).backward()
    assert x.grad is not None and x.grad.item() == 0.0


# --------------------------------------------------------------------------- ignored rows under a softcap


@pytest.mark.parametrize("options", [{}, {"softcap": 5.0}, {"softcap": 5.0, "label_smoothing": 0.1}])
def test_ignored_row_with_nan_has_zero_gradient_on_both_backends(backend, options):
    x = np.array([[np.nan, 0.0, 0.0], [0.0, 1.0, 2.0]], np.float32)
    y = np.array([-100, 2])
    loss, grad = sk.cross_entropy_and_grad(x, y, **options)
    assert np.isfinite(loss)
    np.testing.assert_array_equal(grad[0], np.zeros(3, np.float32))
    assert np.all(np.isfinite(grad[1]))


def test_backends_agree_on_ignored_rows_under_a_softcap(monkeypatch):
    x = np.array([[np.nan, 0.0, 0.0], [0.0, 1.0, 2.0], [np.inf, -1.0, 3.0]], np.float32)
    y = np.array([-100, 2, -100])
    results = {}
    for name, threshold in [("reference", 10**12), ("cpu", 0)]:
        monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", threshold)
        results[name] = sk.cross_entropy_and_grad(x, y, softcap=5.0)
    np.testing.assert_allclose(results["reference"][0], results["cpu"][0], rtol=1e-6)
    np.testing.assert_allclose(results["reference"][1], results["cpu"][1], rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- tiny temperatures


@pytest.mark.parametrize(("dtype", "temperature"), [(np.float32, 1e-39), (np.float64, 1e-310)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_temperature_whose_reciprocal_overflows_is_refused(backend, op, dtype, temperature):
    x = np.array([[1.0, 2.0, 3.0]], dtype)
    with pytest.raises(ValueError, match=r"temperature=.*smallest allowed") as info:
        getattr(sk, op)(x, temperature=temperature)
    assert np.dtype(dtype).name in str(info.value)


def test_small_but_valid_temperature_gives_a_one_hot(backend):
    # 1/T = 1e30 is finite in float32: the row is (nearly) one-hot on the argmax, never NaN.
    got = sk.softmax(np.array([[1.0, 2.0, 3.0]], np.float32), temperature=1e-30)
    np.testing.assert_array_equal(got, [[0.0, 0.0, 1.0]])


def test_temperature_limit_depends_on_the_compute_dtype():
    # 1e-39 is fine for float64 (1/T = 1e39), refused for float32.
    got = sk.softmax(np.array([1.0, 2.0, 3.0]), temperature=1e-39)
    np.testing.assert_array_equal(got, [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="float32"):
        sk.softmax(np.array([1.0, 2.0, 3.0], np.float16), temperature=1e-39)


def test_torch_temperature_whose_reciprocal_overflows_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="smallest allowed"):
        sk.softmax(torch.tensor([[1.0, 2.0, 3.0]]), temperature=1e-39)


# --------------------------------------------------------------------------- narrow float dtypes


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float6_e2m3fn"])
def test_ml_dtypes_narrow_floats_are_refused(name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = getattr(ml_dtypes, name, None)
    if dtype is None:
        pytest.skip(f"ml_dtypes has no {name}")
    x = np.array([[3.1, -0.4, 1.7], [2.2, 2.9, -1.0]], np.float32).astype(dtype)
    with pytest.raises(TypeError, match=rf"{name}.*float32"):
        sk.cross_entropy(x, np.array([1, 0]))
    with pytest.raises(TypeError, match=rf"{name}.*float32"):
        sk.softmax(x)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2"])
def test_torch_float8_is_refused(name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, name, None)
    if dtype is None:
        pytest.skip(f"torch has no {name}")
    x = torch.tensor([[3.1, -0.4, 1.7]]).to(dtype)
    with pytest.raises(TypeError, match=rf"{name}.*float32 first \(x\.float\(\)\)"):  # tensors have no astype
        sk.softmax(x)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_supported_numpy_floats_are_accepted(dtype):
    got = sk.softmax(np.array([0.0, 0.0], dtype))
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), [0.5, 0.5])


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_supported_torch_floats_are_accepted(name):
    torch = pytest.importorskip("torch")
    got = sk.softmax(torch.zeros(2, dtype=getattr(torch, name)))
    assert got.dtype == getattr(torch, name)
    torch.testing.assert_close(got.double(), torch.full((2,), 0.5, dtype=torch.float64))


def test_torch_loss_modules_name_what_to_pass_for_other_libraries_options():
    """torch's CrossEntropyLoss(w), size_average=/reduce=, Liger's ce_weight=/lse_square_scale= and torch
    2.13's LinearCrossEntropyLoss(in, out) failed with bare Python errors (audit)."""
    torch = pytest.importorskip("torch")
    from softmaxkit.torch import CrossEntropyLoss, LinearCrossEntropyLoss

    with pytest.raises(TypeError, match=r"keyword options only: CrossEntropyLoss\(weight=w\)"):
        CrossEntropyLoss(torch.ones(3))
    with pytest.raises(TypeError, match=r"no option 'size_average'; pass reduction="):
        CrossEntropyLoss(size_average=False)
    with pytest.raises(TypeError, match=r"no option 'lse_square_scale'; pass z_loss="):
        LinearCrossEntropyLoss(lse_square_scale=1e-4)
    with pytest.raises(TypeError, match=r"holds no parameters .*head\.weight"):
        LinearCrossEntropyLoss(4, 8)


def test_linear_loss_module_refuses_liger_argument_order():
    """Liger's module takes (weight, hidden, target); with as many rows as classes the shapes fit either
    way and the loss was wrong, exit 0 (4.1399 for 3.7838)."""
    torch = pytest.importorskip("torch")
    from softmaxkit.torch import LinearCrossEntropyLoss

    head = torch.nn.Linear(4, 8, bias=False)
    hidden = torch.randn(8, 4)
    target = torch.arange(8)
    loss_fn = LinearCrossEntropyLoss()
    with pytest.raises(TypeError, match="Liger Kernel's order"):
        loss_fn(head.weight, hidden, target)
    want = torch.nn.functional.cross_entropy(hidden @ head.weight.T, target)
    torch.testing.assert_close(loss_fn(hidden, head.weight, target), want)


def test_check_temperature_takes_numpy_scalar_types_and_torch_dtypes():
    torch = pytest.importorskip("torch")
    from softmaxkit._validation import check_temperature

    for dtype in (np.float32, np.dtype(np.float32), torch.float32, torch.bfloat16):
        with pytest.raises(ValueError, match="too small"):
            check_temperature(1e-39, dtype=dtype)
    assert check_temperature(1e-39, dtype=np.float64) == 1e-39


def test_a_parameter_as_hidden_with_another_shape_is_not_liger_order():
    """Inputs optimised against a frozen head (hidden a Parameter, weight a plain tensor) were refused
    though the shapes already tell the order (review audit 3)."""
    torch = pytest.importorskip("torch")
    from softmaxkit.torch import CrossEntropyLoss, LinearCrossEntropyLoss

    hidden = torch.nn.Parameter(torch.randn(8, 16))
    weight = torch.randn(100, 16)
    target = torch.arange(8)
    got = LinearCrossEntropyLoss()(hidden, weight, target)
    torch.testing.assert_close(got, torch.nn.functional.cross_entropy(hidden @ weight.T, target))
    with pytest.raises(TypeError, match=r"no option 'ce_weight'; pass weight="):
        CrossEntropyLoss(ce_weight=torch.ones(3))
    with pytest.raises(TypeError, match=r"no option 'ce_weight'; pass class_weight="):
        LinearCrossEntropyLoss(ce_weight=torch.ones(3))
