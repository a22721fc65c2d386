"""Edges of the NumPy ops found by an audit: longdouble logits past float64's range, numba's
workqueue threading layer, overlap tests of ``grad_out=``, the ``out=`` dtype rule, argument names
in messages, and the float32 accuracy bounds the README states (against a float64 oracle)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.special as ss

import oracle
import softmaxkit as sk
from softmaxkit import kernels

BACKENDS = ["cpu", "reference"]

wide_longdouble = pytest.mark.skipif(
    np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="longdouble is float64 here"
)


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Route every op to the numba kernels or to the NumPy reference, whatever the size."""
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0 if request.param == "cpu" else 10**12)
    return request.param


def _past_float64_logits() -> np.ndarray:
    """(3, 3) longdouble logits: a row past float64's range, an ordinary row, an all -inf row."""
    big = np.longdouble("1e400")
    return np.array([[big, big, 0], [1, 2, 3], [-np.inf] * 3], dtype=np.longdouble)


# --------------------------------------------------------------------------- 1. longdouble past float64


@wide_longdouble
@pytest.mark.parametrize("axis", [-1, 0])
def test_longdouble_past_float64_softmax_family_matches_scipy(backend, axis):
    """softmax / log_softmax / logsumexp of [1e400, 1e400, 0] were NaN (the cast to float64 made inf)."""
    x = _past_float64_logits()
    x = x if axis == -1 else x.T.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "overflow encountered in cast" was the only sign
        p, logp, lse = sk.softmax(x, axis=axis), sk.log_softmax(x, axis=axis), sk.logsumexp(x, axis=axis)
        logp_t = sk.log_softmax(x, axis=axis, temperature=2.0)
    for got in (p, logp, lse, logp_t):
        assert got.dtype == np.longdouble
    with np.errstate(invalid="ignore"):  # scipy on the all -inf row
        want_p, want_logp = ss.softmax(x, axis=axis), ss.log_softmax(x, axis=axis)
        want_logp_t = ss.log_softmax(x / 2, axis=axis)
    finite = np.isfinite(want_logp)
    np.testing.assert_allclose(p[finite].astype(float), want_p[finite].astype(float), rtol=1e-12)
    # -1e400 stays -1e400 (longdouble), not -inf
    assert np.all(np.abs(logp[finite] - want_logp[finite]) <= 1e-12 * np.maximum(1, np.abs(want_logp[finite])))
    assert np.all(np.abs(logp_t[finite] - want_logp_t[finite]) <= 1e-12 * np.maximum(1, np.abs(want_logp_t[finite])))
    first = (0, slice(None)) if axis == -1 else (slice(None), 0)
    assert logp[first][2] == np.longdouble("-1e400")
    # the all -inf row keeps its documented values
    third = (2, slice(None)) if axis == -1 else (slice(None), 2)
    assert np.all(p[third] == 0) and np.all(logp[third] == -np.inf) and lse[2] == -np.inf
    assert lse[0] == np.longdouble("1e400") and abs(float(lse[1]) - float(ss.logsumexp([1.0, 2, 3]))) < 1e-12


@wide_longdouble
def test_longdouble_past_float64_cross_entropy_and_gradient(backend):
    """The loss and gradient of logits past float64's range, where no loss term reads a lost gap."""
    x = _past_float64_logits()[:2]
    y = np.array([1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = sk.cross_entropy_and_grad(x, y, reduction="none")
        soft_loss, soft_grad = sk.cross_entropy_and_grad(x[:1], np.array([[0.5, 0.5, 0.0]]))
        cap_loss, cap_grad = sk.cross_entropy_and_grad(x, np.array([2, 0]), softcap=5.0, reduction="none")
    want = -ss.log_softmax(x, axis=1)[np.arange(2), y]
    np.testing.assert_allclose(loss.astype(float), want.astype(float), rtol=1e-12)
    p = ss.softmax(x, axis=1)
    p[np.arange(2), y] -= 1
    np.testing.assert_allclose(grad.astype(float), p.astype(float), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(float(soft_loss), np.log(2), rtol=1e-12)
    assert np.all(soft_grad == 0)
    # softcap: 5 * tanh(1e400 / 5) = 5 exactly, and its slope 0
    xc = 5.0 * np.tanh(np.array([[np.inf, np.inf, 0], [1, 2, 3]]) / 5.0)
    np.testing.assert_allclose(cap_loss.astype(float), -ss.log_softmax(xc, axis=1)[[0, 1], [2, 0]], rtol=1e-12)
    assert np.all(cap_grad[0, :2] == 0) and np.all(np.isfinite(cap_grad.astype(float)))


@wide_longdouble
def test_longdouble_loss_past_float64_raises_naming_the_logit():
    """A loss of about 1e400 cannot be formed in float64: refused with the position and value (was NaN)."""
    x = _past_float64_logits()
    with pytest.raises(ValueError, match=r"logits hold 0\.0 at position \(0, 2\), 1e\+400 below its row's max"):
        sk.cross_entropy(x, np.array([2, 0, 0]))
    with pytest.raises(ValueError, match=r"at position \(2, 0\)"):  # the logits' own layout, axis=0
        sk.cross_entropy(x[:2].T.copy(), np.array([2, 0]), axis=0)
    with pytest.raises(ValueError, match=r"at position \(0, 2\)"):  # smoothing reads every class
        sk.cross_entropy(x[:2], np.array([1, 0]), label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"logits hold 1e\+400 at position \(0, 0\).*z_loss"):
        sk.cross_entropy(x[:2], np.array([1, 0]), z_loss=1e-4)


@wide_longdouble
def test_longdouble_past_float64_elementwise_ops():
    """log_sigmoid(-1e400) was -inf and binary cross-entropy NaN (the cast to float64 made inf)."""
    x = np.array([np.longdouble("1e400"), np.longdouble("-1e400"), 0], dtype=np.longdouble)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(sk.log_sigmoid(x)[1:]) == [np.longdouble("-1e400"), -np.log(np.longdouble(2))]
        np.testing.assert_array_equal(sk.sigmoid(x).astype(float), [1.0, 0.0, 0.5])
        bce = sk.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(bce.astype(float), [0.0, 0.0, np.log(2)], rtol=1e-15)


def _longdouble_ops(*, metrics: bool = True):
    """``(name, op)`` of every NumPy op with a path for longdouble values past float64's range (with
    ``metrics``, also ``metrics.log_loss``, which refuses them)."""
    from softmaxkit.metrics import log_loss

    y = np.array([0, 2, 1, 3])
    return [
        ("softmax", sk.softmax),
        ("log_softmax", sk.log_softmax),
        ("logsumexp", sk.logsumexp),
        ("cross_entropy", lambda x: sk.cross_entropy(x, y, reduction="none")),
        ("cross_entropy_and_grad", lambda x: sk.cross_entropy_and_grad(x, y)[1]),
        ("sigmoid", sk.sigmoid),
        ("log_sigmoid", sk.log_sigmoid),
        ("bce", lambda x: sk.binary_cross_entropy_with_logits(x, np.full(x.shape, 0.25), reduction="none")),
    ] + [("log_loss", lambda x: np.asarray(log_loss(y, logits=x)))] * metrics


@wide_longdouble
@pytest.mark.parametrize("name, op", _longdouble_ops())
def test_ordinary_longdouble_inputs_are_not_scanned_for_values_past_float64(monkeypatch, name, op):
    """Fails before the fix: every longdouble input was scanned elementwise for finite values past
    float64's range (isfinite & abs > max), 2 to 8 times the op's own cost (softmax of 1000 x 1000:
    8.7 to 25 ms). The cast to float64, made anyway, shows them as inf: only then are the longdouble
    values read. The results are float64's of the same values."""
    import softmaxkit._arrays as arrays

    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.longdouble) * 50
    want = op(x.astype(np.float64))

    def scan(_):
        raise AssertionError("an ordinary longdouble input was scanned for values past float64's range")

    monkeypatch.setattr(arrays, "past_float64", scan)
    got = op(x)
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=1e-13, atol=0)


@wide_longdouble
@pytest.mark.parametrize("name, op", _longdouble_ops(metrics=False))  # log_loss refuses inf
def test_longdouble_inf_without_values_past_float64_keeps_float64_results(name, op):
    """Guard (passes before the fix): an inf or NaN in a longdouble input is inf in the cast too, and
    only then are the values scanned; with none past float64's range the result is float64's, NaN
    rows included (``+inf`` and NaN make a softmax row NaN, ``-inf`` is probability 0)."""
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.longdouble)
    x[0, 1], x[1, 2], x[2, 0] = np.inf, -np.inf, np.nan
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.asarray(op(x.astype(np.float64)), dtype=float)
        got = np.asarray(op(x), dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0, equal_nan=True)


@wide_longdouble
def test_longdouble_past_float64_found_beside_an_inf():
    """Guard (passes before the fix): a value past float64's range in one row and ``+inf`` in
    another: the cast's inf leads to the scan, which finds 1e400 (softmax ``[0.5, 0.5, 0]``, not NaN)."""
    big = np.longdouble("1e400")
    x = np.array([[big, big, 0], [np.inf, 0, 0], [1, 2, 3]], dtype=np.longdouble)
    with np.errstate(invalid="ignore"):
        p = sk.softmax(x)
    np.testing.assert_array_equal(p[0].astype(float), [0.5, 0.5, 0.0])
    assert np.isnan(p[1].astype(float)).all()
    np.testing.assert_allclose(p[2].astype(float), ss.softmax([1.0, 2, 3]), rtol=1e-13)
    assert sk.logsumexp(x)[0] == np.longdouble("1e400") + np.log(np.longdouble(2))


# --------------------------------------------------------------------------- 2. workqueue threading layer


def test_workqueue_layer_concurrent_threads_do_not_abort():
    """Two Python threads in a parallel kernel under workqueue aborted the process (SIGABRT), from the
    first calls on (before numba has picked its layer) and after."""
    script = textwrap.dedent(
        """
        import numpy as np, numba, softmaxkit as sk
        from concurrent.futures import ThreadPoolExecutor
        x = np.random.default_rng(0).normal(size=(100, 100)).astype(np.float32)
        big = np.random.default_rng(1).normal(size=(64, 1024)).astype(np.float32)
        y = np.zeros(64, dtype=np.int64)
        def work(i):
            return sk.softmax(x) if i % 2 else sk.cross_entropy_and_grad(big, y)[1]
        with ThreadPoolExecutor(4) as ex:  # cold: the layer is not known yet
            first = list(ex.map(work, range(16)))
        assert numba.threading_layer() == "workqueue", numba.threading_layer()
        with ThreadPoolExecutor(4) as ex:
            again = list(ex.map(work, range(40)))
        ref = [sk.softmax(x), sk.cross_entropy_and_grad(big, y)[1]]
        assert all(np.array_equal(r, ref[i % 2 == 0]) for i, r in enumerate(first + again))
        print("ok")
        """
    )
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------- 3. grad_out overlap test


def test_grad_out_accepts_a_soft_target_beside_the_logits_in_one_buffer(rng):
    """Logits and soft targets side by side in one (N, 2C) buffer: no element overlaps, so
    grad_out=logits is accepted (np.may_share_memory's range test refused it)."""
    n, c = 4, 3
    buf = np.concatenate([rng.normal(size=(n, c)), rng.dirichlet(np.ones(c), n)], axis=1)
    logits, target = buf[:, :c], buf[:, c:]
    want_loss, want_grad = sk.cross_entropy_and_grad(logits.copy(), target.copy())
    loss, grad = sk.cross_entropy_and_grad(logits, target, grad_out=logits)
    assert grad is logits
    np.testing.assert_array_equal(grad, want_grad)
    assert loss == want_loss


def test_grad_out_overlapping_the_target_is_still_refused(rng):
    """Guard (passes before the fix too): elements really shared with the target stay refused."""
    buf = rng.normal(size=(4, 4))
    with pytest.raises(ValueError, match="grad_out shares memory with target"):
        sk.cross_entropy_and_grad(buf[:, :3], buf[:, 1:], grad_out=buf[:, :3])


# --------------------------------------------------------------------------- 4. out= dtype


@pytest.mark.parametrize("op", [sk.softmax, sk.log_softmax])
def test_out_of_another_dtype_is_refused_like_grad_out(rng, op):
    """A float16 out= for float32 logits was filled with a rounded result without a word."""
    x = rng.normal(size=(4, 50)).astype(np.float32)
    with pytest.raises(TypeError, match=r"out must have the result's dtype float32, got float16"):
        op(x, out=np.empty(x.shape, np.float16))
    with pytest.raises(TypeError, match=r"out must have the result's dtype float64, got float32"):
        op(x, dtype=np.float64, out=np.empty(x.shape, np.float32))
    out = np.empty(x.shape, np.float32)
    assert op(x, out=out) is out
    np.testing.assert_array_equal(out, op(x))


# --------------------------------------------------------------------------- 5. messages


X = np.array([[0.5, 1.0, 2.0]])


def test_message_blames_dtype_not_x():
    """softmax(x, dtype=int) said "x must have a floating dtype"."""
    with pytest.raises(TypeError, match=r"^dtype must be a floating dtype .*longdouble\), got int64"):
        sk.softmax(X, dtype=int)


def test_message_axis_names_the_array_argument():
    """softmax's array is x: "out of range for logits" named an argument softmax does not have."""
    with pytest.raises(ValueError, match=r"axis=5 is out of range for x with 2 dimension"):
        sk.softmax(X, axis=5)
    with pytest.raises(ValueError, match=r"axis=5 is out of range for x with 2 dimension"):
        sk.logsumexp(X, axis=5)
    with pytest.raises(ValueError, match=r"axis=5 is out of range for logits with 2 dimension"):
        sk.cross_entropy(X, np.array([0]), axis=5)


def test_message_integer_logits_hints_the_cast_and_lists_longdouble():
    """Integer logits stay refused (documented), now with the cast to make and longdouble listed."""
    with pytest.raises(TypeError, match=r"float64 or longdouble\), got int64; .*x\.astype\(np\.float32\)"):
        sk.softmax([1, 2, 3])
    with pytest.raises(TypeError, match=r"logits must .*got int64; .*logits\.astype\(np\.float32\)"):
        sk.cross_entropy(np.array([[1, 2]]), np.array([0]))


# --------------------------------------------------------------------------- 6. float32 accuracy bounds


def _grad_oracle(x: np.ndarray, y: np.ndarray, cap: float | None) -> np.ndarray:
    """float64 d(sum of row losses)/dx; the target entry as -(sum of the other e_j) / s, no cancellation."""
    x64 = x.astype(np.float64)
    xc = x64 if cap is None else cap * np.tanh(x64 / cap)
    e = np.exp(xc - xc.max(axis=1, keepdims=True))
    s = e.sum(axis=1)
    rows = np.arange(len(y))
    others = e.copy()
    others[rows, y] = 0.0
    g = e / s[:, None]
    g[rows, y] = -others.sum(axis=1) / s
    return g if cap is None else g / np.cosh(x64 / cap) ** 2


@pytest.mark.parametrize("cap, n_classes", [(30.0, 5), (30.0, 200), (5.0, 3)])
def test_softcap_gradient_bound_on_confident_rows(backend, cap, n_classes):
    """The README's bound at |x| / c up to 12, confident rows (target = argmax) included: entries other
    than the target's within 1.1e-5 relative of float64 (where float32 holds them as normal numbers);
    the target's entry, p_y - 1 formed in float32, within 5e-7 absolute per unit of row scale (it
    cancels: relative error up to 100% once 1 - p_y < 6e-8, as in torch). A guard of the documented
    bound: the code did not change, the README's "every entry" did."""
    rng = np.random.default_rng(0)
    x = np.clip(rng.standard_normal((2000, n_classes)) * cap * 3, -12 * cap, 12 * cap).astype(np.float32)
    y = x.argmax(axis=1)
    _, grad = sk.cross_entropy_and_grad(x, y, softcap=cap, reduction="sum")
    want = _grad_oracle(x, y, cap)
    err = np.abs(grad.astype(np.float64) - want)
    target = np.zeros(x.shape, dtype=bool)
    target[np.arange(len(y)), y] = True
    normal = np.abs(want) >= np.finfo(np.float32).tiny
    assert np.max(err[~target & normal] / np.abs(want[~target & normal])) <= 1.1e-5
    assert np.max(err[target]) <= 5e-7


@pytest.mark.parametrize("cap, n_classes, spread", [(None, 2, 40.0), (None, 3, 30.0), (None, 300, 8.0), (30.0, 5, 90.0)])
def test_float32_loss_bound_on_confident_rows(backend, cap, n_classes, spread):
    """The README's loss bound against the float64 oracle: within 1e-6 relative, except that a confident
    row's loss (about the sum of the other probabilities) carries float32's rounding of each x_j - max:
    within 1e-6 + 1.2e-7 * (max - x_j) relative, and 3e-7 * c under a softcap c. Rows whose other terms
    underflow float32's exp (a gap over 87) are left out. A guard of the documented bound: the code did
    not change, the README's "within 1e-6 relative" did (the audit measured 2.35e-6)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, n_classes)) * spread
    if cap is not None:
        x = np.clip(x, -12 * cap, 12 * cap)
    x = x.astype(np.float32)
    y = x.argmax(axis=1)
    y[::3] = rng.integers(0, n_classes, len(y[::3]))  # a third need not be confident
    xc = x.astype(np.float64) if cap is None else cap * np.tanh(x.astype(np.float64) / cap)
    gap = xc.max(axis=1) - xc.min(axis=1)
    keep = gap < 87.0
    want, _ = oracle.cross_entropy_rows(xc[keep], y[keep])
    got = sk.cross_entropy(x, y, softcap=cap, reduction="none")[keep].astype(np.float64)
    assert np.all(want > 0)
    rel = np.abs(got - want) / want
    bound = 1e-6 + (1.2e-7 * gap[keep] if cap is None else 3e-7 * cap)
    assert np.all(rel <= bound), float(np.max(rel / bound))
    confident = y[keep] == x[keep].argmax(axis=1)
    if cap is None:  # the 1e-6 bound holds where the target is not the argmax
        assert np.max(rel[~confident]) <= 1e-6


@wide_longdouble
def test_metrics_refuse_longdouble_past_float64_naming_the_finite_value():
    """metrics.log_loss said "found inf at position (0, 0)" of the finite 1e400 (the cast came first)."""
    from softmaxkit.metrics import log_loss

    with pytest.raises(ValueError, match=r"logits holds 1e\+400 at position \(0, 0\), past float64's range"):
        log_loss(np.array([0, 1]), logits=_past_float64_logits()[:2])
