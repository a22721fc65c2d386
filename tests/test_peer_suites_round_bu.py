"""Found by running the peers' own test suites against softmaxkit (audit BU): scikit-learn's log_loss tests on
1-D float32 probabilities, torch's OpInfo samples of logsumexp (a one-element tuple dim) and of softmax on empty
tensors through the numba kernels."""

from __future__ import annotations

import numpy as np
import pytest

import softmaxkit.metrics as metrics


def test_one_column_float32_probabilities_lose_no_digits():
    """``1 - p`` was taken in float32: 1e-8 vanished (log-loss 0.0), and 3e-7 lost 5 digits."""
    p = np.float32([1e-8, 0.5, 3.1e-7])
    y = [1, 0, 1]
    exact = metrics.log_loss(y, probs=p.astype(np.float64))
    assert metrics.log_loss(y, probs=p) == pytest.approx(exact, rel=1e-15)
    assert metrics.log_loss([0], probs=np.float32([1e-8])) == pytest.approx(-np.log1p(-1e-8), rel=1e-6)
    assert metrics.brier_score(y, probs=p) == pytest.approx(metrics.brier_score(y, probs=p.astype(np.float64)),
                                                             rel=1e-15)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dim", [(1,), [1], (0,), (-1,)])
def test_logsumexp_takes_a_one_element_dim_tuple(dim):
    import softmaxkit.torch as skt

    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(skt.logsumexp(x, dim=dim), torch.logsumexp(x, dim=dim))
    torch.testing.assert_close(skt.logsumexp(x, dim, keepdim=True), torch.logsumexp(x, dim, keepdim=True))
    with pytest.raises(TypeError, match="axis must be an int"):
        skt.logsumexp(x, dim=(0, 1))


@pytest.mark.parametrize("shape, dim", [((5, 0, 0), 1), ((5, 0, 0), -1), ((0, 3), 1), ((0,), 0)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_empty_tensors_on_the_numba_path(monkeypatch, shape, dim, op):
    import softmaxkit.kernels as kernels
    import softmaxkit.torch as skt

    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0)
    x = torch.empty(shape)
    got = getattr(skt, op)(x, dim=dim)
    assert got.shape == x.shape and got.dtype == x.dtype
    leaf = torch.empty(shape, requires_grad=True)
    getattr(skt, op)(leaf, dim=dim).sum().backward()
    assert leaf.grad.shape == leaf.shape


def test_one_column_float32_probabilities_bin_as_two_columns():
    """Review R17: widened to float64 for the losses, 1-D float32 probabilities were binned in float64 too, where
    a float32 0.7 (0.69999998) falls one bin lower: ECE 0.0305 for torchmetrics' 0.0085."""
    from softmaxkit.calibration import TemperatureScaling

    rng = np.random.default_rng(0)
    p = (rng.integers(5, 11, 400) / 10).astype(np.float32)
    y = (rng.random(400) < p).astype(int)
    two = np.column_stack([1 - p, p]).astype(np.float32)
    one_d = metrics.expected_calibration_error(y, probs=p, n_bins=10)
    assert one_d.value == metrics.expected_calibration_error(y, probs=two, n_bins=10).value
    np.testing.assert_array_equal(one_d.curves[0].counts,
                                  metrics.expected_calibration_error(y, probs=two, n_bins=10).curves[0].counts)
    # a calibrator given float32 probabilities returns float32, as its transform promises
    assert TemperatureScaling(input="probs").fit(p, y).transform(p).dtype == np.float32
