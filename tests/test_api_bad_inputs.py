"""Bad inputs to the public API fail early, with messages that name the argument (audit V)."""

from __future__ import annotations

import numpy as np
import pytest

import softmaxkit as sk


# --- torch cross_entropy_and_grad(grad_out=...) -------------------------------------------------


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "int64"])
def test_torch_grad_out_must_have_the_logits_dtype(dtype_name):
    """An int64 buffer got an all-zero gradient and float16/bfloat16 ones a rounded one, silently
    (grad_out.copy_ casts); refused as the NumPy API refuses (a wider float buffer is accepted:
    tests/test_torch_dropin_details.py)."""
    torch = pytest.importorskip("torch")
    import softmaxkit.torch.functional as F

    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    buf = torch.zeros(6, 3, dtype=getattr(torch, dtype_name))
    with pytest.raises(TypeError, match=f"grad_out must have the logits' dtype float32 or a wider floating dtype, "
                       f"got {dtype_name}$"):
        F.cross_entropy_and_grad(logits, target, grad_out=buf)
    assert not buf.any()  # refused before anything was written


def test_torch_grad_out_of_the_right_dtype_still_receives_the_gradient():
    torch = pytest.importorskip("torch")
    import softmaxkit.torch.functional as F

    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    _, ref = F.cross_entropy_and_grad(logits, target)
    buf = torch.empty_like(logits)
    _, got = F.cross_entropy_and_grad(logits, target, grad_out=buf)
    assert got.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_numpy_grad_out_dtype_message_is_the_same():
    x = np.zeros((6, 3), np.float32)
    with pytest.raises(TypeError, match="grad_out must have the logits' dtype float32, got float64$"):
        sk.cross_entropy_and_grad(x, np.zeros(6, np.int64), grad_out=np.zeros((6, 3)))


# --- conformal ------------------------------------------------------------------------------------


def _sets_and_labels():
    from softmaxkit import conformal as CF

    rng = np.random.default_rng(0)
    probs = sk.softmax(rng.standard_normal((50, 4)) * 2)
    return CF, rng.integers(0, 4, 50), CF.prediction_sets(probs, 0.5)


@pytest.mark.parametrize("alpha", [2.0, -0.5, float("nan"), 0.0, 1.0, True, "0.1"])
def test_set_metrics_refuses_an_alpha_outside_0_1(alpha):
    """alpha=2.0 gave target_coverage -1.0 (and -0.5 gave 1.5) while the other entry points refuse."""
    CF, y, sets = _sets_and_labels()
    with pytest.raises(ValueError, match=r"alpha must be"):
        CF.set_metrics(y, sets, alpha=alpha)


def test_set_metrics_takes_one_alpha():
    CF, y, sets = _sets_and_labels()
    with pytest.raises(ValueError, match=r"set_metrics.*one alpha.*got \[0.1, 0.2\]"):
        CF.set_metrics(y, sets, alpha=[0.1, 0.2])
    m = CF.set_metrics(y, sets, alpha=np.float32(0.5))  # a NumPy scalar and a 0-d array stay fine
    assert m["alpha"] == 0.5 and m["target_coverage"] == 0.5
    assert CF.set_metrics(y, sets, alpha=np.asarray(0.25))["target_coverage"] == 0.75


@pytest.mark.parametrize("classes", [["a"], ["a", "b", "c", "d"]])
def test_set_labels_checks_the_number_of_class_names(classes):
    """['a'] for 3 classes raised IndexError from a generator; 4 names for 3 classes were accepted."""
    from softmaxkit import conformal as CF

    with pytest.raises(ValueError, match=f"classes has {len(classes)} names but the sets have 3 classes"):
        CF.set_labels(np.ones((2, 3), bool), classes)


def test_set_labels_sep_must_be_a_string():
    from softmaxkit import conformal as CF

    with pytest.raises(TypeError, match="sep must be a str, got int"):
        CF.set_labels(np.ones((2, 3), bool), sep=1)
    assert CF.set_labels(np.array([[True, False, True], [False] * 3]), ["a", "b", "c"], sep=",") == ["a,c", ""]


# --- metrics.ReliabilityCurve ---------------------------------------------------------------------


def _curve_fields(**changes):
    fields = dict(
        edges=np.array([0.0, 0.5, 1.0]),
        counts=np.array([2, 0]),
        weights=np.array([2.0, 0.0]),
        mean_confidence=np.array([0.4, np.nan]),
        accuracy=np.array([0.5, np.nan]),
    )
    fields.update(changes)
    return fields


def test_a_consistent_reliability_curve_is_accepted():
    from softmaxkit.metrics import ReliabilityCurve

    c = ReliabilityCurve(**_curve_fields())
    assert c.n_bins == 2 and c.nonempty.tolist() == [True, False]


@pytest.mark.parametrize(
    "changes, message",
    [
        # the audit's curve: 2 edges (1 bin) with 3 counts, accuracy 2.0, NaN confidence in a full bin
        (dict(edges=np.array([0.0, 1.0]), counts=np.array([1, 2, 3]), weights=np.array([1.0]),
              mean_confidence=np.array([np.nan]), accuracy=np.array([2.0])),
         r"counts must have shape \(1,\) \(one per bin: edges has 2 values\), got \(3,\)"),
        (dict(weights=np.array([1.0, 1.0, 1.0])), r"weights must have shape \(2,\)"),
        (dict(mean_confidence=np.array([0.4])), r"mean_confidence must have shape \(2,\)"),
        (dict(accuracy=np.zeros((2, 1))), r"accuracy must have shape \(2,\)"),
        (dict(edges=np.array([0.0])), r"edges must hold at least 2 values"),
        (dict(edges=np.array([0.0, 0.7, 0.5])), r"edges must increase"),
        (dict(edges=np.array([0.0, 0.5, 1.5])), r"edges must .*\[0, 1\]"),
        (dict(accuracy=np.array([2.0, np.nan])), r"accuracy must be in \[0, 1\].*bin 0.*2\.0"),
        (dict(mean_confidence=np.array([-0.1, np.nan])), r"mean_confidence must be in \[0, 1\].*bin 0"),
        (dict(mean_confidence=np.array([np.nan, np.nan])),
         r"mean_confidence must not be NaN in a bin that holds rows: bin 0 has nan and 2 rows"),
        (dict(accuracy=np.array([np.nan, np.nan])),
         r"accuracy must not be NaN in a bin that holds rows: bin 0 has nan and 2 rows"),
        (dict(counts=np.array([2, -1])), r"counts must be >= 0.*bin 1"),
        (dict(counts=np.array([2.5, 0.0])), r"counts must be integers"),
        (dict(weights=np.array([2.0, -1.0])), r"weights must be finite and >= 0.*bin 1"),
    ],
)
def test_an_inconsistent_reliability_curve_is_refused(changes, message):
    """The audit built one with 2 edges, 3 counts, accuracy 2.0 and a NaN confidence in a full bin, and
    ReliabilityDiagram drew it."""
    from softmaxkit.metrics import ReliabilityCurve

    with pytest.raises(ValueError, match=message):
        ReliabilityCurve(**_curve_fields(**changes))


def test_every_reliability_curve_the_library_builds_passes_the_check():
    from softmaxkit import metrics as M

    rng = np.random.default_rng(3)
    probs = sk.softmax(rng.standard_normal((200, 4)) * 3)
    y = rng.integers(0, 4, 200)
    w = rng.uniform(0.0, 2.0, 200) * (rng.random(200) < 0.8)  # zero weights: empty bins with counted rows
    for binning in ("uniform", "quantile"):
        for class_index in (None, 0, 3):
            c = M.reliability_curve(y, probs, n_bins=12, binning=binning, class_index=class_index, sample_weight=w)
            assert c.counts.shape == (c.n_bins,)


# --- plot.ReliabilityDiagram ----------------------------------------------------------------------


def _a_curve():
    from softmaxkit.metrics import reliability_curve

    rng = np.random.default_rng(0)
    return reliability_curve(rng.integers(0, 3, 30), sk.softmax(rng.standard_normal((30, 3))))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(curve=None), TypeError, r"curve must be a ReliabilityCurve .*got NoneType"),
        (dict(ece=42), TypeError, r"ece must be an ECEResult .*or None, got int"),
        (dict(name=3), TypeError, r"name must be a str or None, got int"),
    ],
)
def test_reliability_diagram_checks_its_arguments(kwargs, error, message):
    """curve=None and ece=42 raised AttributeError from inside plot()."""
    from softmaxkit.plot import ReliabilityDiagram

    with pytest.raises(error, match=message):
        ReliabilityDiagram(**{"curve": _a_curve(), **kwargs})


@pytest.mark.parametrize("dpi", [0, -5, float("nan"), True, "100"])
def test_to_png_bytes_checks_dpi(dpi):
    """dpi=0 failed inside matplotlib's Agg backend ("dpi must be positive"), after drawing."""
    pytest.importorskip("matplotlib")
    from softmaxkit.plot import ReliabilityDiagram

    d = ReliabilityDiagram(curve=_a_curve())
    with pytest.raises((TypeError, ValueError), match=r"to_png_bytes: dpi must be a number > 0"):
        d.to_png_bytes(dpi=dpi)
    assert not hasattr(d, "figure_")  # refused before drawing


# --- CalibratedClassifier(cv=...) -----------------------------------------------------------------


def _xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 2)), np.tile([0, 1, 2], 10)


@pytest.mark.parametrize("cv", [1, 0, -2, 1.5, True, "5"])
def test_calibrated_classifier_cv_is_checked_like_softmax_classifiers(cv):
    """cv=1 raised scikit-learn's KFold message ("n_splits=1"), where SoftmaxClassifier names cv."""
    from softmaxkit.calibration import CalibratedClassifier

    X, y = _xy()
    expected = r"cv must be None, an int >= 2, a splitter or an iterable of splits, got " + repr(cv).replace(".", r"\.")
    with pytest.raises(ValueError, match=expected):
        CalibratedClassifier(cv=cv).fit(X, y)
    with pytest.raises(ValueError, match=expected):  # the same words
        sk.SoftmaxClassifier(cv=cv).fit(X, y)


def test_calibrated_classifier_cv_prefit_says_what_to_use_instead():
    from softmaxkit.calibration import CalibratedClassifier

    X, y = _xy()
    with pytest.raises(ValueError, match=r"got 'prefit'.*FrozenEstimator"):
        CalibratedClassifier(cv="prefit").fit(X, y)


def test_calibrated_classifier_accepts_the_valid_cv_forms():
    from sklearn.model_selection import KFold

    from softmaxkit.calibration import CalibratedClassifier

    X, y = _xy()
    for cv in (None, 2, np.int64(3), KFold(3, shuffle=True, random_state=0), list(KFold(2).split(X))):
        assert CalibratedClassifier(cv=cv, ensemble=False).fit(X, y).predict_proba(X).shape == (30, 3)


# --- datasets.class_rate_data ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 2), (0, 0)])
def test_class_rate_data_needs_a_row(shape):
    """np.zeros((0, 2)) failed in np.concatenate ("need at least one array to concatenate")."""
    from softmaxkit.datasets import class_rate_data

    with pytest.raises(ValueError, match=r"rates must hold at least one row .*got shape \(0, "):
        class_rate_data(np.zeros(shape), repeats=2)


@pytest.mark.parametrize("seed", ["x", 1.5, -1, True, [0.5]])
def test_class_rate_data_names_a_bad_random_state(seed):
    """random_state='x' raised NumPy's "SeedSequence expects int or sequence of ints"."""
    from softmaxkit.datasets import class_rate_data

    with pytest.raises(ValueError, match=r"random_state must be None, a non-negative int or a numpy Generator"):
        class_rate_data(np.array([[0.3, 0.7]]), repeats=2, random_state=seed)


def test_class_rate_data_takes_a_generator():
    from softmaxkit.datasets import class_rate_data

    a = class_rate_data(np.array([[0.3, 0.7]]), repeats=50, random_state=np.random.default_rng(4))[1]
    b = class_rate_data(np.array([[0.3, 0.7]]), repeats=50, random_state=4)[1]
    np.testing.assert_array_equal(a, b)


# --- Persistable.save(extra_meta=...) -------------------------------------------------------------


@pytest.fixture
def fitted_model():
    X, y = _xy()
    return sk.SoftmaxClassifier(alpha=1.0).fit(X, y)


@pytest.mark.parametrize(
    "extra, error, message",
    [
        ({"a": object()}, TypeError, r"extra_meta\['a'\] is not a JSON value: Object of type object"),
        ({"a": {"b": [1, float("nan")]}}, ValueError,
         r"extra_meta\['a'\] is not standard JSON \(Out of range float.*no NaN or infinity"),
        ({"a": float("inf")}, ValueError, r"extra_meta\['a'\] is not standard JSON .*no NaN or infinity: write None"),
        ({1: "x"}, TypeError, r"extra_meta keys must be str, got 1"),
        (["a"], TypeError, r"extra_meta must be a dict or None, got list"),
    ],
)
def test_save_checks_extra_meta(fitted_model, tmp_path, extra, error, message):
    """object() raised json's "not JSON serializable" without naming extra_meta, and NaN was written
    as the non-standard token NaN (other JSON readers refuse the file's record)."""
    path = tmp_path / "m.npz"
    with pytest.raises(error, match=message):
        fitted_model.save(path, extra_meta=extra)
    assert not path.exists()


def test_save_extra_meta_may_not_overwrite_the_state(fitted_model, tmp_path):
    """An extra_meta key equal to one of the model's own silently replaced it in the file."""
    from softmaxkit.io import read_state

    own = next(iter(read_state(fitted_model.save(tmp_path / "ref.npz"))[1]))
    with pytest.raises(ValueError, match=f"extra_meta key '{own}' would overwrite"):
        fitted_model.save(tmp_path / "m.npz", extra_meta={own: 1})
    saved = fitted_model.save(tmp_path / "ok.npz", extra_meta={"note": [1, None, "x"]})
    assert read_state(saved)[1]["note"] == [1, None, "x"]
    assert sk.load(saved).predict_proba(_xy()[0]).shape == (30, 3)


# --- loose coercions ------------------------------------------------------------------------------


@pytest.mark.parametrize("t", ["2", b"2", True, np.bool_(True)])
def test_softmax_temperature_refuses_strings_and_bools(t):
    """temperature='2' was read as 2.0 and True as 1.0 (while n_bins=True is refused)."""
    with pytest.raises(TypeError, match=r"temperature must be a positive float, got"):
        sk.softmax(np.zeros((1, 3)), temperature=t)


def test_softmax_temperature_still_takes_numbers():
    x = np.array([[0.0, 1.0, 2.0]])
    for t in (2, 2.0, np.float32(2.0), np.asarray(2.0)):
        np.testing.assert_allclose(sk.softmax(x, temperature=t), sk.softmax(x / 2.0))


def _probs3():
    rng = np.random.default_rng(0)
    return sk.softmax(rng.standard_normal((40, 3))), rng.integers(0, 3, 40)


def test_bool_labels_need_two_columns():
    """log_loss(y == 1, probs=<3 columns>) returned 1.462 (as classes 0/1); scikit-learn refuses."""
    from softmaxkit import metrics as M

    P, y = _probs3()
    with pytest.raises(ValueError, match=r"y holds booleans.*2 classes.* but the predictions have 3 classes"):
        M.log_loss(y == 1, probs=P)
    P2 = np.stack([P[:, 0] + P[:, 2], P[:, 1]], axis=1)  # bool labels with 2 columns stay classes 0/1
    assert M.log_loss(y == 1, probs=P2) == pytest.approx(M.log_loss((y == 1).astype(int), probs=P2))


@pytest.mark.parametrize("big, shown", [(1e20, "100000000000000000000"), (-1e19, "-10000000000000000000"),
                                        (2.0**63, "9223372036854775808")])
def test_huge_float_label_is_reported_as_given(big, shown):
    """y=[1e20, ...] said "class index -9223372036854775808": the cast to int64 overflowed first."""
    from softmaxkit import metrics as M

    P, y = _probs3()
    labels = np.r_[big, y[1:].astype(float)]
    with pytest.raises(ValueError, match=rf"y contains class index {shown} at position \[0\]"):
        M.log_loss(labels, probs=P)
    with pytest.raises(ValueError, match=r"class index 3 at position \[1\]"):  # integral floats still read
        M.log_loss(np.r_[0.0, 3.0, y[2:]], probs=P)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_1d_float_target_hints_at_integer_class_indices(lib):
    """A 1-D float target was read as probabilities: "must have the same shape as logits" alone."""
    logits = np.random.default_rng(0).standard_normal((30, 3)).astype(np.float32)
    target = np.array([0.0, 1.0, 2.0] * 10)
    if lib == "torch":
        torch = pytest.importorskip("torch")
        import softmaxkit.torch.functional as F

        call = lambda: F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target))  # noqa: E731
    else:
        call = lambda: sk.cross_entropy(logits, target)  # noqa: E731
    with pytest.raises(ValueError, match=r"same shape as logits: expected \(30, 3\), got \(30,\); a 1-D floating "
                                         r"target: class indices must be integers \(y.astype\(int\)\)"):
        call()


def test_soft_target_shape_message_without_the_hint_for_2d():
    with pytest.raises(ValueError, match=r"got \(30, 2\)$"):
        sk.cross_entropy(np.zeros((30, 3), np.float32), np.full((30, 2), 0.5, np.float32))


def test_weights_whose_sum_overflows_are_refused_naming_sample_weight():
    """300 weights of 1e307 each are finite, but their sum is inf: the ECE was NaN, then an error about a
    ReliabilityCurve the user never built (review audit)."""
    from softmaxkit.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=300)
    y = rng.integers(0, 3, 300)
    with pytest.raises(ValueError, match=r"sample_weight sums to inf \(overflow\)"):
        expected_calibration_error(y, p, sample_weight=np.full(300, 1e307), ci=None)
