"""SoftmaxClassifier: the maximum-likelihood promise, the scikit-learn
contract, both engines, errors, persistence and the progress bar (issue 6)."""

from __future__ import annotations

import re

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import softmaxkit as sk
from softmaxkit import SoftmaxClassifier, _mlp
from softmaxkit._engine import NumpyEngine, make_engine
from softmaxkit.io import ModelFileError

# Many tests cap max_iter to stay fast; the warning itself is tested once below.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Settings that drive L-BFGS to the optimum, for tests that compare optima.
TIGHT = dict(dtype="float64", tol=1e-10, max_iter=5000)


def _counts_data(rng: np.random.Generator, n_inputs: int = 25, n_features: int = 4, n_classes: int = 3):
    X = rng.normal(size=(n_inputs, n_features))
    counts = rng.integers(0, 5, size=(n_inputs, n_classes))
    counts[3] = 0  # an input never observed: weight 0 / absent from the repeated data
    return X, counts


# --------------------------------------------------------------------------- the MLE promise


def test_frequency_recovery_one_hot_inputs():
    """K distinct inputs repeated many times: predict_proba -> the empirical class frequencies."""
    rng = np.random.default_rng(0)
    n_inputs, n_classes, reps = 6, 4, 3000
    rates = rng.dirichlet(np.full(n_classes, 3.0), size=n_inputs)
    X = np.repeat(np.eye(n_inputs), reps, axis=0)
    y = np.concatenate([rng.choice(n_classes, size=reps, p=p) for p in rates])
    per_input = y.reshape(n_inputs, reps)
    empirical = np.stack([np.bincount(row, minlength=n_classes) / reps for row in per_input])

    clf = SoftmaxClassifier(alpha=1e-8, **TIGHT).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(np.eye(n_inputs)), empirical, atol=2e-3)


@pytest.mark.parametrize("hidden, max_iter", [((), 5000), ((5,), 30)], ids=["linear", "mlp"])
def test_three_equivalent_data_forms(hidden, max_iter):
    """Repeated rows, integer sample_weight and count targets give the same probabilities.

    The three objectives are equal, so the linear (convex) fits reach the same
    optimum. An MLP is not convex: the same start gives the same L-BFGS path
    while rounding differences in row sums stay small (dozens of iterations
    here), after which the paths may reach different local optima; the MLP
    case therefore compares a fixed number of iterations.
    """
    X, counts = _counts_data(np.random.default_rng(1))
    n, k = counts.shape
    pair_x = np.repeat(X, k, axis=0)  # one row per (input, class) pair
    pair_y = np.tile(np.arange(k), n)
    pair_w = counts.reshape(-1)

    kw = dict(hidden_layer_sizes=hidden, alpha=1e-2, random_state=0, **{**TIGHT, "max_iter": max_iter})
    repeated = SoftmaxClassifier(**kw).fit(np.repeat(pair_x, pair_w, axis=0), np.repeat(pair_y, pair_w))
    weighted = SoftmaxClassifier(**kw).fit(pair_x, pair_y, sample_weight=pair_w)
    as_counts = SoftmaxClassifier(**kw, count_targets=True).fit(X, counts)
    p = repeated.predict_proba(X)
    np.testing.assert_allclose(weighted.predict_proba(X), p, atol=1e-6)
    np.testing.assert_allclose(as_counts.predict_proba(X), p, atol=1e-6)


def test_probabilities_with_weights_equal_counts():
    X, counts = _counts_data(np.random.default_rng(2))
    totals = counts.sum(axis=1)
    keep = totals > 0
    probs = counts[keep] / totals[keep, None]
    a = SoftmaxClassifier(alpha=1e-2, count_targets=True, **TIGHT).fit(X, counts)
    b = SoftmaxClassifier(alpha=1e-2, **TIGHT).fit(X[keep], probs, sample_weight=totals[keep])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


def test_binary_matches_logistic_regression():
    """Two classes: LogisticRegression(C) is alpha = 2 / C (see the class Notes)."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    C = 0.5
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    clf = SoftmaxClassifier(alpha=2.0 / C, **TIGHT).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), lr.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(clf.decision_function(X), lr.decision_function(X), atol=1e-3)


def test_multiclass_matches_logistic_regression():
    """Three or more classes: LogisticRegression(C) is alpha = 1 / C."""
    X, y = load_iris(return_X_y=True)
    C = 2.0
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    clf = SoftmaxClassifier(alpha=1.0 / C, **TIGHT).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), lr.predict_proba(X), atol=1e-4)


# --------------------------------------------------------------------------- scikit-learn contract


@parametrize_with_checks(
    [
        SoftmaxClassifier(),
        SoftmaxClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100, random_state=0),
        SoftmaxClassifier(hidden_layer_sizes=(8,), learning_rate=1e-2, max_iter=50, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_import_is_lazy():
    code = "import sys, softmaxkit; assert 'sklearn' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fitted_attributes_and_methods():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(hidden_layer_sizes=(6, 4), random_state=0).fit(X, y)
    assert clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert [w.shape for w in clf.coefs_] == [(4, 6), (6, 4), (4, 3)]
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.n_iter_ > 0
    assert clf.validation_loss_curve_ is None
    logits = clf.decision_function(X)
    np.testing.assert_allclose(clf.predict_proba(X), sk.softmax(logits, axis=1))
    np.testing.assert_allclose(clf.predict_log_proba(X), sk.log_softmax(logits, axis=1))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[logits.argmax(axis=1)])


def test_binary_decision_function_is_log_odds():
    X, y = load_breast_cancer(return_X_y=True)
    clf = SoftmaxClassifier(alpha=1.0).fit(X, y)
    d = clf.decision_function(X)
    assert d.shape == (len(X),)
    log_p = clf.predict_log_proba(X)
    np.testing.assert_allclose(d, log_p[:, 1] - log_p[:, 0], atol=1e-9)


def test_predict_log_proba_is_exact_where_proba_underflows():
    X = np.array([[-50.0], [-49.0], [49.0], [50.0]])
    y = np.array([0, 0, 1, 1])
    clf = SoftmaxClassifier(alpha=0.0, dtype="float64", max_iter=50).fit(X, y)
    far = np.array([[1e4]])
    assert clf.predict_proba(far)[0, 0] == 0.0
    log_p = clf.predict_log_proba(far)
    assert np.all(np.isfinite(log_p)) and log_p[0, 0] < -700


def test_random_state_reproducible():
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(10,), solver="adam", max_iter=30, learning_rate=1e-2)
    a = SoftmaxClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    b = SoftmaxClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    c = SoftmaxClassifier(random_state=4, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_early_stopping(solver):
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(
        hidden_layer_sizes=(10,), solver=solver, early_stopping=True, n_iter_no_change=3,
        learning_rate=1e-2, max_iter=500, random_state=0,
    ).fit(X, y)
    curve = clf.validation_loss_curve_
    assert len(curve) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_loss_ == pytest.approx(min(curve))


@pytest.mark.parametrize("seed", range(6))
def test_early_stopping_holds_out_only_rows_with_weight(seed):
    """Audit: with most rows of weight 0, the validation split could draw only such rows
    (ZeroDivisionError at seed 2) or a few weighted ones. It now splits the weighted rows:
    validation_fraction of them, stratified, every weight-0 row left in training."""
    from softmaxkit._targets import encode_targets
    from softmaxkit.classifier import _validation_split

    X, y = load_iris(return_X_y=True)
    sw = np.zeros(150)
    sw[[0, 1, 2, 3, 50, 51, 52, 53, 100, 101, 102, 103]] = 1.0
    clf = SoftmaxClassifier(alpha=0.01, early_stopping=True, random_state=seed).fit(X, y, sample_weight=sw)
    assert np.isfinite(clf.best_validation_loss_)
    targets = encode_targets(y, sample_weight=sw, n_samples=150)
    train, valid = _validation_split(targets, 0.1, np.random.RandomState(seed))
    assert len(valid) == 2 and np.all(sw[valid] > 0)  # ceil(0.1 * 12) rows
    assert sorted(set(y[train[sw[train] > 0]])) == [0, 1, 2]
    np.testing.assert_array_equal(np.sort(np.r_[train, valid]), np.arange(150))
    sw[np.r_[0:40, 50:90, 100:140]] = 1.0  # room to stratify: as train_test_split, among the weighted rows
    targets = encode_targets(y, sample_weight=sw, n_samples=150)
    train, valid = _validation_split(targets, 0.1, np.random.RandomState(seed))
    assert len(valid) == 12 and np.all(sw[valid] > 0) and np.all(np.bincount(y[valid]) == 4)


def test_early_stopping_keeps_a_class_of_one_row_in_training():
    """Audit: alpha="auto" with early_stopping and a class of 2 rows failed inside scikit-learn
    ("least populated class in y has only 1 member"): each internal fold's training part
    holds one of them. A class's only row now stays in training; the rest is split stratified."""
    from softmaxkit._targets import encode_targets
    from softmaxkit.classifier import _validation_split

    X, y = load_iris(return_X_y=True)
    rows = np.r_[0:50, 50:100, 100:102]
    clf = SoftmaxClassifier(early_stopping=True, random_state=0).fit(X[rows], y[rows])
    assert len(clf.alpha_path_) > 0 and clf.score(X[rows], y[rows]) > 0.9
    rows = np.r_[0:50, 50:100, 100]
    train, valid = _validation_split(encode_targets(y[rows], n_samples=101), 0.1, np.random.RandomState(0))
    assert 100 in train and sorted(set(y[rows][valid])) == [0, 1]
    # Too few rows to stratify: drawn at random, but never a class's last training row.
    rows = np.r_[0:2, 50:52, 100:102]
    for seed in range(20):
        train, valid = _validation_split(encode_targets(y[rows], n_samples=6), 0.1, np.random.RandomState(seed))
        assert len(valid) == 1 and sorted(set(y[rows][train])) == [0, 1, 2]


def test_early_stopping_with_nothing_to_hold_out_says_so():
    X, y = load_iris(return_X_y=True)
    rows = np.r_[0:2, 50:52, 100:102]  # alpha="auto": 2 folds, whose training parts have 1 row per class
    with pytest.raises(ValueError, match=r"no rows to hold out for validation: every class has a single row.*"
                       r"set early_stopping=False or pass a float alpha"):
        SoftmaxClassifier(early_stopping=True).fit(X[rows], y[rows])
    SoftmaxClassifier(early_stopping=True, alpha=1.0).fit(X[rows], y[rows])
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"1 row has positive sample_weight; set early_stopping=False$"):
        SoftmaxClassifier(early_stopping=True, alpha=1.0).fit(X[:2], probs, sample_weight=[1.0, 0.0])


def test_convergence_warning_at_max_iter():
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        SoftmaxClassifier(alpha=1e-3, max_iter=2).fit(X, y)


def test_solver_auto():
    assert SoftmaxClassifier(hidden_layer_sizes=(4,))._resolve_solver() == "adam"
    assert SoftmaxClassifier()._resolve_solver() == "lbfgs"
    assert SoftmaxClassifier(hidden_layer_sizes=(4,), solver="lbfgs")._resolve_solver() == "lbfgs"


def test_float32_training():
    X, y = load_iris(return_X_y=True)
    a = SoftmaxClassifier(alpha=1.0, dtype="float32", tol=1e-6).fit(X.astype(np.float32), y)
    b = SoftmaxClassifier(alpha=1.0, **TIGHT).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-3)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    net = _mlp.Network((3, 4, 2, 3), "tanh")
    xp = NumpyEngine(np.float64)
    X = rng.normal(size=(7, 3))
    target = rng.dirichlet(np.ones(3), size=7)
    scale = rng.uniform(0.5, 2.0, size=7) / 7
    penalty = net.penalty_weights(np.array([1.0, 2.0, 0.5]))
    theta = rng.normal(size=net.n_params)

    def f(t):
        return _mlp.loss_and_grad(net, xp, t, X, target, scale, penalty=penalty, alpha=0.3)

    _, grad = f(theta)
    h = 1e-6
    numeric = np.array([(f(theta + h * e)[0] - f(theta - h * e)[0]) / (2 * h) for e in np.eye(net.n_params)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- engines


def _torch_engine():
    pytest.importorskip("torch")
    return make_engine("cpu:torch", np.dtype(np.float64))


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_torch_engine_same_loss_and_grad(soft, activation):
    tx = _torch_engine()
    rng = np.random.default_rng(6)
    net = _mlp.Network((5, 7, 3), activation)
    X = rng.normal(size=(40, 5))
    target = rng.dirichlet(np.ones(3), size=40) if soft else rng.integers(0, 3, size=40)
    scale = np.full(40, 1 / 40)
    penalty = net.penalty_weights(np.ones(5))
    theta = net.init(np.random.RandomState(0)) + 0.1
    nx = NumpyEngine(np.float64)
    loss_np, g_np = _mlp.loss_and_grad(net, nx, theta, X, target, scale, penalty=penalty, alpha=0.1)
    loss_t, g_t = _mlp.loss_and_grad(
        net, tx, tx.asarray(theta), tx.asarray(X), tx.asarray(target), tx.asarray(scale),
        penalty=tx.asarray(penalty), alpha=0.1,
    )
    assert loss_t == pytest.approx(loss_np, rel=1e-12)
    np.testing.assert_allclose(tx.to_numpy(g_t), g_np, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "kw",
    [
        dict(alpha=1e-2, **TIGHT),
        dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=15, dtype="float64", random_state=0),
        dict(hidden_layer_sizes=(8,), solver="adam", max_iter=5, dtype="float64", random_state=0),
    ],
    ids=["linear", "mlp-lbfgs", "mlp-adam"],
)
@pytest.mark.parametrize("device", ["cpu:torch", "cuda"])
def test_torch_engine_same_fit(kw, device):
    _torch_engine()
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, y = load_iris(return_X_y=True)
    a = SoftmaxClassifier(**kw).fit(X, y)
    b = SoftmaxClassifier(device=device, **kw).fit(X, y)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-7)


def test_cuda_device_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    X, y = load_iris(return_X_y=True)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        SoftmaxClassifier(device="cuda").fit(X, y)


def test_unknown_device():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="device"):
        SoftmaxClassifier(device="tpu").fit(X, y)


# --------------------------------------------------------------------------- errors


def test_error_single_class():
    with pytest.raises(ValueError, match="at least 2 classes"):
        SoftmaxClassifier().fit(np.ones((5, 2)), np.zeros(5))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_error_non_finite_X(bad):
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        SoftmaxClassifier().fit(X, y)
    clf = SoftmaxClassifier().fit(*load_iris(return_X_y=True))
    with pytest.raises(ValueError, match="NaN|infinity"):
        clf.predict_proba(X)


def test_error_soft_targets_not_summing_to_one():
    X = np.random.default_rng(0).normal(size=(4, 2))
    y = np.array([[0.5, 0.5], [0.2, 0.7], [1.0, 0.0], [0.3, 0.7]])  # row 1 sums to 0.9
    with pytest.raises(ValueError, match="row 1 holds fractions summing to 0.9"):
        SoftmaxClassifier().fit(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        SoftmaxClassifier().fit(X, np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]))
    # The message named the first row not summing to 1, though it was a valid count row or a
    # row of zeros, and rounded a float32 round-off sum to "1" (audit).
    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    for bad_row, value, words in [([2, 1], 3.0, "mixes probability rows (row 0) and count rows (row 3, summing to 3)"),
                                  ([0, 0], 0.0, "count rows (row 3, summing to 0; a row of zeros counts nothing)"),
                                  ([0.6, 0.4000002], None, "row 3 holds fractions summing to 1.0000002")]:
        y = probs.copy()
        y[3] = bad_row
        with pytest.raises(ValueError, match=re.escape(words)):
            SoftmaxClassifier().fit(X, y)


def test_score_takes_the_probability_and_count_targets_fit_takes():
    """score(X, Y) with the (n, K) targets of fit raised scikit-learn's "mix of continuous-multioutput
    and multiclass targets" (audit). Counts score as the repeated rows they stand for."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    counts = rng.integers(0, 4, size=(30, 3))
    counts[counts.sum(axis=1) == 0, 0] = 1
    clf = SoftmaxClassifier(alpha=0.1, count_targets=True).fit(X, counts)
    rows = np.repeat(np.arange(30), counts.sum(axis=1))
    labels = np.concatenate([np.repeat(np.arange(3), c) for c in counts])
    assert clf.score(X, counts) == pytest.approx(clf.score(X[rows], labels), rel=1e-12)
    probs = counts / counts.sum(axis=1, keepdims=True)
    pred = clf.predict(X)
    assert clf.score(X, probs) == pytest.approx(np.mean(probs[np.arange(30), pred]), rel=1e-12)
    w = rng.uniform(0.5, 2, 30)
    assert clf.score(X, probs, sample_weight=w) == pytest.approx(
        np.dot(w, probs[np.arange(30), pred]) / w.sum(), rel=1e-12)


def test_count_targets_are_accepted():
    X = np.random.default_rng(0).normal(size=(4, 2))
    counts = np.array([[3, 1], [0, 2], [5, 5], [1, 0]])
    clf = SoftmaxClassifier(classes=["a", "b"], count_targets=True).fit(X, counts)
    np.testing.assert_array_equal(clf.classes_, ["a", "b"])


def test_error_unseen_labels():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=r"label not among the classes \[0, 1\]: 2 at position 100"):
        SoftmaxClassifier(classes=[0, 1]).fit(X, y)
    clf = SoftmaxClassifier().fit(X, y)
    y_bad = y.copy()
    y_bad[7] = 9
    # score counts a label absent from training as wrong, with a warning, as LogisticRegression.score does
    # (it raised: cross_val_score gave nan and GridSearchCV kept its first candidate; audit)
    with pytest.warns(UserWarning, match=r"1 of 150 rows of y have label\(s\) \[9\]"):
        assert clf.score(X, y_bad) == pytest.approx(np.mean(clf.predict(X) == y_bad))


def test_classes_may_include_absent_labels():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(classes=[0, 1, 2, 3], alpha=1.0).fit(X, y)
    assert clf.predict_proba(X).shape == (150, 4)
    assert clf.predict_proba(X)[:, 3].max() < 0.05


def test_error_mismatched_lengths():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="different numbers of samples"):
        SoftmaxClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="sample_weight"):
        SoftmaxClassifier().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="classes must list 3"):
        SoftmaxClassifier(classes=[0, 1]).fit(X[:3], np.eye(3))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(solver="sgd"), "solver"),
        (dict(alpha=-1.0), "alpha"),
        (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
        (dict(activation="gelu"), "activation"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(dtype="float16"), "dtype"),
        (dict(standardize="yes"), "standardize must be True or False"),
    ],
)
def test_error_bad_params(params, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        SoftmaxClassifier(**params).fit(X, y)


def test_error_unfitted():
    with pytest.raises(NotFittedError):
        SoftmaxClassifier().predict_proba(np.ones((2, 2)))


# --------------------------------------------------------------------------- persistence


def _has_safetensors() -> bool:
    try:
        import safetensors  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_load_roundtrip(tmp_path, suffix):
    if suffix == ".safetensors" and not _has_safetensors():
        pytest.skip("safetensors not installed")
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = SoftmaxClassifier(hidden_layer_sizes=(5,), early_stopping=True, random_state=0).fit(X, labels)
    path = clf.save(tmp_path / f"model{suffix}")
    loaded = sk.load(path)
    assert isinstance(loaded, SoftmaxClassifier)
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.loss_curve_ == clf.loss_curve_ and loaded.n_iter_ == clf.n_iter_
    assert loaded.validation_loss_curve_ == clf.validation_loss_curve_


class _Payload:
    """Unpickling this object would create the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_refuses_pickled_objects(tmp_path):
    X, y = load_iris(return_X_y=True)
    good = SoftmaxClassifier().fit(X, y).save(tmp_path / "good.npz")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npz"
    with np.load(good) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["classes"] = np.array([_Payload(marker)], dtype=object)  # saved with pickle
    np.savez(evil, **arrays)
    with pytest.raises(ModelFileError, match="pickle"):
        sk.load(evil)
    assert not marker.exists()


# --------------------------------------------------------------------------- progress bar


def test_progress_bar_when_verbose(capsys):
    X, y = load_iris(return_X_y=True)
    SoftmaxClassifier(verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "SoftmaxClassifier (lbfgs)" in err and "loss" in err
    SoftmaxClassifier(verbose=0).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_helper_is_generic(capsys):
    from softmaxkit._progress import progress

    with progress(4, description="batches", enabled=True) as bar:
        for i in range(4):
            bar.advance(loss=1.0 / (i + 1), rows=10)
    err = capsys.readouterr().err
    assert "batches" in err and "4/4" in err and "loss 0.25" in err and "rows 10" in err
    with progress(4, description="silent", enabled=False) as bar:
        bar.advance(loss=1.0)
        bar.finish()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_float32_fit_stays_float32(solver):
    """The engine dtype survives every update (a NumPy float64 scalar would promote it)."""
    from softmaxkit import _optim

    rng = np.random.default_rng(7)
    net = _mlp.Network((4, 5, 3))
    xp = NumpyEngine(np.float32)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, size=50)
    penalty = xp.asarray(net.penalty_weights(np.ones(4)))
    problem = _optim.Problem(net, xp, xp.asarray(X), xp.asarray(y), np.ones(50), penalty, 0.1)
    seen = []

    class Spy:
        stopped_early = False

        def __call__(self, theta, loss):
            seen.append(theta.dtype)
            return False

    theta0 = net.init(np.random.RandomState(0))
    if solver == "lbfgs":
        _optim.lbfgs(problem, theta0, max_iter=3, tol=0.0, monitor=Spy())
    else:
        _optim.adam(
            problem, theta0, max_iter=3, batch_size=16, learning_rate=1e-2,
            rng=np.random.RandomState(0), monitor=Spy(),
        )
    assert seen and set(seen) == {np.dtype(np.float32)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_update_matches_array_expressions(dtype, monkeypatch):
    """The compiled Adam step (NumPy engine) is the array-expression step, to rounding."""
    from softmaxkit import _optim

    pytest.importorskip("numba")
    rng = np.random.default_rng(8)
    n = 1000
    penalty = rng.uniform(0.0, 2.0, size=n).astype(dtype)
    state = [rng.normal(size=n).astype(dtype) for _ in range(3)] + [rng.uniform(size=n).astype(dtype)]
    kw = dict(penalty=penalty, alpha=0.3, lr=1e-2, beta1=0.9, beta2=0.999, epsilon=1e-8)
    xp = NumpyEngine(dtype)

    fused = [a.copy() for a in state]  # theta, grad, m, v
    value_fused = _optim.adam_update_(xp, *fused, **kw)
    monkeypatch.setattr(_optim, "_fused_adam_kernel", lambda: None)
    plain = [a.copy() for a in state]
    value_plain = _optim.adam_update_(xp, *plain, **kw)

    assert value_fused == pytest.approx(value_plain, rel=1e-12)
    for name, a, b in zip(["theta", "grad", "m", "v"], fused, plain):
        if name == "grad":
            continue  # scratch: the two forms leave different partial results in it
        assert a.dtype == dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)


def _row_scales_problem(weight: np.ndarray):
    from softmaxkit import _optim

    n = weight.shape[0]
    net = _mlp.Network((2, 2))
    xp = NumpyEngine(np.float64)
    return _optim.Problem(net, xp, np.zeros((n, 2)), np.zeros(n, dtype=np.int64), weight, np.zeros(6), 0.0)


def test_epoch_row_scales_make_every_batch_an_unbiased_estimate():
    """Row scale ``w_i * n / (m_b * S)``: over a uniformly drawn batch, the scaled batch
    sum of any per-row loss has the full weighted mean as its expectation (checked
    exactly over all 7! orders), the last smaller batch included; one epoch's
    batches, each counted by its share of the rows, add up to that mean exactly.
    The former per-batch weight fractions ``w_i / sum_b w`` failed both."""
    import itertools

    from softmaxkit import _optim

    weight = np.array([1.0, 3.0, 0.0, 0.0, 2.0, 2.0, 5.0])
    n, S = weight.shape[0], weight.sum()
    problem = _row_scales_problem(weight)
    order = np.array([6, 0, 2, 3, 1, 4, 5])
    scales, batch_rows = _optim._epoch_row_scales(problem, order, 3)
    assert batch_rows == [3.0, 3.0, 1.0]
    np.testing.assert_allclose(scales, weight[order] * n / (np.repeat(batch_rows, [3, 3, 1]) * S))

    losses = np.array([0.3, 2.0, 5.0, 1.0, 0.7, 1.5, 0.1])  # any per-row values
    full = np.dot(weight, losses) / S
    first, last = [], []
    for perm in itertools.permutations(range(n)):
        order = np.array(perm)
        scales, batch_rows = _optim._epoch_row_scales(problem, order, 3)
        estimates = np.add.reduceat(scales * losses[order], [0, 3, 6])
        first.append(estimates[0])
        last.append(estimates[2])
        assert np.dot(batch_rows, estimates) / n == pytest.approx(full, rel=1e-12)
    assert np.mean(first) == pytest.approx(full, rel=1e-12)
    assert np.mean(last) == pytest.approx(full, rel=1e-12)


def test_epoch_row_scales_unit_weights_are_exact_reciprocals():
    """Unweighted fits divide by the same numbers as before the unbiased scale (bit for bit)."""
    from softmaxkit import _optim

    problem = _row_scales_problem(np.ones(11))
    scales, batch_rows = _optim._epoch_row_scales(problem, np.arange(11), 4)
    assert batch_rows == [4.0, 4.0, 3.0]
    np.testing.assert_array_equal(scales, 1.0 / np.array([4.0] * 8 + [3.0] * 3))


@pytest.mark.parametrize("batch_size", [1, 2, 3, 10])
def test_adam_reaches_the_weighted_optimum_at_small_batches(batch_size):
    """Adam minimises the weighted objective L-BFGS does, whatever the batch size.

    X carries no information, so the optimum is the weighted class frequency:
    classes 50/50 with class-0 rows of weight 3 give P(y=0) = 0.75. Dividing
    each minibatch by its own weight sum gave 0.50 at batch 1 (a one-row batch
    always has scale 1), 0.62 at batch 2 and 0.73 at batch 10. Repeating the
    class-0 rows 3 times instead is the same objective, and Adam reaches it too.
    """
    n = 40
    X = np.zeros((n, 1))
    y = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    sw = np.where(y == 0, 3.0, 1.0)
    lbfgs = SoftmaxClassifier(alpha=1e-6, **TIGHT).fit(X, y, sample_weight=sw)
    assert lbfgs.predict_proba(X[:1])[0, 0] == pytest.approx(0.75, abs=1e-4)
    adam = dict(
        alpha=1e-6, solver="adam", batch_size=batch_size, learning_rate=3e-3, max_iter=150,
        tol=0.0, n_iter_no_change=10**6, random_state=0,
    )  # fmt: skip
    weighted = SoftmaxClassifier(**adam).fit(X, y, sample_weight=sw)
    assert weighted.predict_proba(X[:1])[0, 0] == pytest.approx(0.75, abs=6e-3)
    repeated = np.repeat(np.arange(n), sw.astype(int))
    copies = SoftmaxClassifier(**adam).fit(X[repeated], y[repeated])
    assert copies.predict_proba(X[:1])[0, 0] == pytest.approx(0.75, abs=6e-3)


# --------------------------------------------------------------------------- alpha="auto" (issue 15)


def _cv_log_loss(make, X, y) -> float:
    """Mean held-out log-loss of 5 fixed stratified folds."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    losses = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        model = make().fit(X[train], y[train])
        losses.append(log_loss(y[test], model.predict_proba(X[test]), labels=np.unique(y)))
    return float(np.mean(losses))


@pytest.mark.parametrize("load", [load_breast_cancer, load_digits], ids=["breast_cancer", "digits"])
def test_default_is_not_overconfident(load):
    """Issue 15: the old default alpha=1e-4 gave held-out log-loss far above
    LogisticRegression()'s on raw bundled data (measured with these folds:
    breast cancer 0.148 vs 0.124, digits 0.257 vs 0.131). The default must do
    no worse than LogisticRegression(), untuned, on the features as they come
    (the CLI does not standardise)."""
    X, y = load(return_X_y=True)
    assert SoftmaxClassifier().alpha == "auto"
    ours = _cv_log_loss(lambda: SoftmaxClassifier(random_state=0), X, y)
    theirs = _cv_log_loss(LogisticRegression, X, y)
    assert ours <= theirs


def test_standardize_penalises_standardised_weights(tmp_path):
    """standardize=True on raw features is the fit a StandardScaler pipeline makes (glmnet's default):
    the same probabilities, coefficients in raw units; integer weights still act as repeated rows."""
    X, y = load_breast_cancer(return_X_y=True)
    scaler = StandardScaler().fit(X)
    tight = dict(tol=1e-10, max_iter=10_000)
    for alpha in (2.0, "auto"):
        ours = SoftmaxClassifier(standardize=True, alpha=alpha, random_state=0, **tight).fit(X, y)
        piped = SoftmaxClassifier(alpha=alpha, random_state=0, **tight).fit(scaler.transform(X), y)
        assert ours.alpha_ == pytest.approx(piped.alpha_, rel=1e-6)
        np.testing.assert_allclose(ours.predict_proba(X), piped.predict_proba(scaler.transform(X)), atol=1e-6)
    fixed = SoftmaxClassifier(standardize=True, alpha=2.0, **tight).fit(X, y)
    raw = SoftmaxClassifier(alpha=2.0, **tight).fit(X, y)
    assert np.abs(raw.predict_proba(X) - fixed.predict_proba(X)).max() > 0.05  # a different model
    # Audit: features in 1e-15 units were taken for constant (an absolute threshold) and penalised raw.
    tiny_units = SoftmaxClassifier(standardize=True, alpha=2.0, **tight).fit(X * 1e-15, y)
    np.testing.assert_allclose(tiny_units.predict_proba(X * 1e-15), fixed.predict_proba(X), atol=1e-6)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 3, len(y))
    weighted = SoftmaxClassifier(standardize=True, alpha=2.0, **tight).fit(X, y, sample_weight=w)
    repeated = SoftmaxClassifier(standardize=True, alpha=2.0, **tight).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-7)
    loaded = sk.load(weighted.save(tmp_path / "m.npz"))
    assert loaded.get_params()["standardize"] is True
    np.testing.assert_array_equal(loaded.predict_proba(X), weighted.predict_proba(X))


def test_auto_alpha_attributes_and_refit():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(random_state=0).fit(X, y)
    path, loss = clf.alpha_path_, clf.alpha_path_loss_
    assert path.shape == loss.shape and len(path) >= 3 and np.all(np.diff(path) < 0)
    assert np.all(np.isfinite(loss)) and path[-1] <= clf.alpha_ <= path[0]
    # The choice lies between the reference (LogisticRegression()'s alpha=1) and the
    # path's minimum, each widened by the half-step vertex refinement.
    best = path[np.argmin(loss)]
    assert min(best, 1.0) / 10**0.25 <= clf.alpha_ <= max(best, 1.0) * 10**0.25
    # The refit (warm-started from the fold average) reaches the optimum at alpha_,
    # as a fit with a float alpha does, up to the solver tolerance; that one records itself.
    fixed = SoftmaxClassifier(alpha=clf.alpha_, random_state=0).fit(X, y)
    tight = dict(tol=1e-10, max_iter=5000)
    np.testing.assert_allclose(fixed.predict_proba(X), clf.predict_proba(X), atol=1e-2)
    np.testing.assert_allclose(
        SoftmaxClassifier(random_state=0, **tight).fit(X, y).predict_proba(X),
        SoftmaxClassifier(alpha=clf.alpha_, random_state=0, **tight).fit(X, y).predict_proba(X),
        atol=1e-6,
    )
    assert fixed.alpha_ == clf.alpha_ and fixed.alpha_path_ is None and fixed.alpha_path_loss_ is None


def test_auto_alpha_mlp():
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(5,), max_iter=40, learning_rate=1e-2, random_state=0)
    clf = SoftmaxClassifier(**kw).fit(X, y)
    assert len(clf.alpha_path_) == 5 and 1e-2 / 10**0.5 <= clf.alpha_ <= 1e2 * 10**0.5
    fixed = SoftmaxClassifier(**{**kw, "alpha": clf.alpha_}).fit(X, y)
    np.testing.assert_array_equal(fixed.predict_proba(X), clf.predict_proba(X))


def test_auto_alpha_prefers_strong_penalty_on_noise():
    """Labels independent of 20 noise features: any weight fits noise, so the
    held-out loss asks for a penalty far above the reference."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20))
    y = rng.integers(0, 2, 200)
    clf = SoftmaxClassifier(random_state=0).fit(X, y)
    assert clf.alpha_ >= 100


def test_auto_alpha_small_classes():
    """Fewer rows in a class than folds: fewer folds, no crash, and a warning naming the class and the
    folds used (it was silent: audit AJ); a class of one row: the documented fallback,
    LogisticRegression()'s penalty (alpha_=1, 2 for two classes)."""
    X, y = load_iris(return_X_y=True)
    keep = np.r_[0:50, 50:53, 100:150]  # class 1 has 3 rows
    with pytest.warns(UserWarning, match="over 3 internal folds, not 5: class 1 has 3 rows"):
        clf = SoftmaxClassifier(random_state=0).fit(X[keep], y[keep])
    assert len(clf.alpha_path_) > 0 and np.all(np.isfinite(clf.alpha_path_loss_))
    single = np.r_[0:50, 50:51, 100:150]
    clf = SoftmaxClassifier(random_state=0).fit(X[single], y[single])
    assert clf.alpha_ == 1.0 and len(clf.alpha_path_) == 0
    tiny = SoftmaxClassifier().fit(np.array([[0.0], [1.0]]), [0, 1])
    assert tiny.alpha_ == 2.0  # audit: it was 1.0, half of LogisticRegression()'s binary penalty


def test_auto_alpha_fallback_warns_naming_the_class():
    """Audit: the fallback for a class of one row (often a mistyped label) was silent, and
    ``softmaxkit fit`` reported it as a penalty chosen by held-out log-loss."""
    X, y = load_iris(return_X_y=True)
    labels = np.asarray(["setosa", "versicolor", "virginica"], dtype=object)[y]
    labels[7] = "setosa."
    with pytest.warns(UserWarning, match=r"alpha='auto' searched no penalty: class 'setosa\.' has 1 row, .*"
                      r"fitted with alpha=1, .*Pass a float alpha.*if a label is mistyped, fix or drop its row"):
        clf = SoftmaxClassifier().fit(X, labels)
    assert clf.alpha_ == 1.0 and len(clf.alpha_path_) == 0
    sw = np.ones(150)
    labels[[60, 61]] = "versicolor."
    sw[61] = 0.0  # a zero-weight row does not count: no fold could hold its class out usefully
    labels[[8, 9]] = "x", "y"
    with pytest.warns(UserWarning, match=r"classes 'setosa\.', 'versicolor\.', 'x', \.\.\. have 1 row with "
                      r"positive weight each"):
        SoftmaxClassifier().fit(X, labels, sample_weight=sw)
    with pytest.warns(UserWarning, match=r"only 1 row has positive weight, .*alpha=2, .*choose it yourself\.$"):
        SoftmaxClassifier().fit(X[:2], np.array([[0.5, 0.5], [1.0, 0.0]]), sample_weight=[1.0, 0.0])


def test_auto_alpha_weights_equal_repetition_with_grouped_folds():
    """sample_weight enters the fold fits and the held-out score: integer
    weights and repeated rows give the same choice and fit when the folds keep
    the copies of a row together (a group-aware cv)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + rng.normal(size=60) > 0).astype(int)
    w = rng.integers(0, 4, size=60)
    w[:4] = [1, 2, 3, 1]  # both classes keep rows of positive weight
    groups = np.arange(60) % 5
    rep = np.repeat(np.arange(60), w)

    def splits(g):
        return [(np.flatnonzero(g != k), np.flatnonzero(g == k)) for k in range(5)]

    kw = dict(dtype="float64", tol=1e-10, max_iter=5000, random_state=0)
    weighted = SoftmaxClassifier(cv=splits(groups), **kw).fit(X, y, sample_weight=w)
    repeated = SoftmaxClassifier(cv=splits(groups[rep]), **kw).fit(X[rep], y[rep])
    np.testing.assert_allclose(weighted.alpha_path_loss_, repeated.alpha_path_loss_, rtol=1e-6)
    assert weighted.alpha_ == pytest.approx(repeated.alpha_, rel=1e-9)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_auto_alpha_zero_weight_rows_are_the_same_as_removed_rows(random_state):
    """The default folds split the positive-weight rows as if the others were absent (audit: the
    stratification counted weight-0 rows, a class's 3 weighted rows fell [1, 0, 2] over the held-out
    parts, and alpha_ differed from dropping the rows: 0.316 against 0.0024)."""
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    w = np.ones(len(y))
    w[np.flatnonzero(y == 2)[3:]] = 0.0  # class 2: 3 rows of weight 1, 47 of weight 0
    keep = w > 0
    weighted = SoftmaxClassifier(random_state=random_state).fit(X, y, sample_weight=w)
    dropped = SoftmaxClassifier(random_state=random_state).fit(X[keep], y[keep])
    assert weighted.alpha_ == pytest.approx(dropped.alpha_, rel=1e-6)
    np.testing.assert_allclose(weighted.alpha_path_loss_, dropped.alpha_path_loss_, rtol=1e-9)
    np.testing.assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), atol=1e-6)


def test_auto_alpha_with_count_targets():
    X, counts = _counts_data(np.random.default_rng(4), n_inputs=40)
    clf = SoftmaxClassifier(random_state=0, count_targets=True).fit(X, counts)
    assert clf.alpha_ > 0 and len(clf.alpha_path_) > 0


@pytest.mark.parametrize("alpha", [1e-4, 0.5])
def test_float_alpha_keeps_the_fit(alpha):
    """A float alpha is fitted as before issue 15: no search, the same objective."""
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(alpha=alpha, cv=2).fit(X, y)  # cv is ignored for a float alpha
    assert clf.alpha_ == alpha and clf.alpha_path_ is None
    np.testing.assert_array_equal(clf.predict_proba(X), SoftmaxClassifier(alpha=alpha).fit(X, y).predict_proba(X))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha="AUTO"), "alpha"),
        (dict(alpha="best"), "alpha"),
        (dict(alpha=None), "alpha"),
        (dict(cv=1), "cv"),
        (dict(cv="5"), "cv"),
        (dict(cv=True), "cv"),
    ],
)
def test_error_bad_alpha_and_cv(params, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        SoftmaxClassifier(**params).fit(X, y)


@pytest.mark.parametrize("alpha", ["auto", 0.25])
def test_save_load_keeps_alpha(tmp_path, alpha):
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(alpha=alpha, random_state=0).fit(X, y)
    loaded = sk.load(clf.save(tmp_path / "m.npz"))
    assert loaded.get_params() == clf.get_params() and loaded.alpha == alpha
    assert loaded.alpha_ == clf.alpha_
    if alpha == "auto":
        np.testing.assert_array_equal(loaded.alpha_path_, clf.alpha_path_)
        np.testing.assert_array_equal(loaded.alpha_path_loss_, clf.alpha_path_loss_)
    else:
        assert loaded.alpha_path_ is None and loaded.alpha_path_loss_ is None
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # A splitter object cannot be written: the file describes it, and the loaded model's cv
    # refuses a refit (test_a_splitter_cv_that_a_file_cannot_hold_is_refused_at_refit).
    from sklearn.model_selection import StratifiedKFold

    from softmaxkit.classifier import UnsavedCV

    split = SoftmaxClassifier(cv=StratifiedKFold(3), random_state=0).fit(X, y)
    assert sk.load(split.save(tmp_path / "s.npz")).cv == UnsavedCV(repr(StratifiedKFold(3)))


# --------------------------------------------------------------------------- the search itself


def test_refine_finds_the_vertex_of_a_parabola():
    from softmaxkit._alpha_search import _refine

    path = [10.0, 10**0.5, 1.0, 10**-0.5, 0.1]
    losses = [(np.log(a) - np.log(2.0)) ** 2 for a in path]
    assert _refine(path, losses) == pytest.approx(2.0)
    assert _refine(path, [5, 4, 3, 2, 1]) == 0.1  # minimum at the end: the grid value
    # The move is capped at half a step.
    assert _refine([10.0, 1.0, 0.1], [1.0, 0.0, 0.0 + 1e-9]) == pytest.approx(10**-0.5, rel=1e-3)


def test_search_keeps_the_reference_unless_clearly_beaten():
    from softmaxkit._alpha_search import search

    folds = [(np.arange(50, 100), np.arange(0, 50)), (np.arange(0, 50), np.arange(50, 100))]
    rng = np.random.default_rng(0)
    noise = rng.normal(size=100)
    grid = (10.0, 1.0, 0.1, 0.01)

    def run(row_losses):
        calls = []

        def fit(train, alpha, start):
            calls.append(alpha)
            return alpha

        def score(alpha, test):
            return row_losses[alpha][test]

        result = search(folds, np.ones(100), fit=fit, score=score, grid=grid, patience=2, reference=1.0)
        return result, calls

    # 0.1 is better on average by 0.01, against row-to-row noise of 1: not significant.
    losses = {10.0: 2 + noise, 1.0: 1 + noise, 0.1: 0.99 + noise + rng.normal(size=100), 0.01: 3 + noise}
    result, calls = run(losses)
    assert result.alpha == 1.0 and len(calls) == 8  # 4 alphas x 2 folds, no early stop before 2 misses
    # A clear gain moves the choice (refined between the neighbours).
    losses[0.1] = 0.5 + noise
    result, _ = run(losses)
    assert 0.1 / 10**0.5 < result.alpha < 1.0
    # The one-standard-error step goes from the best towards the reference only: a best
    # stronger than the reference is kept (refined), even where a yet stronger value is
    # not clearly worse than it (0.02 worse, against paired noise of 1).
    grid = (100.0, 10.0, 1.0, 0.1)
    jitter = rng.normal(size=100)
    jitter -= jitter.mean()
    losses = {100.0: 0.52 + noise + jitter, 10.0: 0.5 + noise, 1.0: 1 + noise, 0.1: 3 + noise}
    result, _ = run(losses)
    assert 10.0 / 10**0.5 <= result.alpha <= 10.0 * 10**0.5


def test_search_starts_inside_the_grid_and_walks_up_only_when_needed():
    """first=k: the values stronger than grid[k] are fitted only when grid[k]
    is the best walked, then upwards from grid[k]'s fits; the path is in grid order."""
    from softmaxkit._alpha_search import search

    folds = [(np.arange(20, 40), np.arange(0, 20)), (np.arange(0, 20), np.arange(20, 40))]
    grid = tuple(10.0 ** np.arange(4.0, -3.0, -1.0))  # 1e4 ... 1e-2

    def run(curve):
        calls = []

        def fit(train, alpha, start):
            calls.append((alpha, start))
            return alpha

        def score(alpha, test):
            return np.full(len(test), curve(np.log10(alpha)))

        return search(folds, np.ones(40), fit=fit, score=score, grid=grid, patience=2, first=2), calls

    # Minimum at 1e1, inside the walked part: nothing stronger than grid[2] = 1e2 is fitted.
    result, calls = run(lambda g: (g - 1) ** 2)
    assert max(alpha for alpha, _ in calls) == 1e2 and calls[0][1] is None
    assert result.alpha == pytest.approx(10.0) and result.path[0] == 1e2
    # Loss falling towards strong penalties: the walk goes up to grid[0], each
    # fold starting from its fit at the value below.
    result, calls = run(lambda g: -g)
    assert [alpha for alpha, _ in calls[-4:]] == [1e3, 1e3, 1e4, 1e4]
    assert [start for _, start in calls[-4:]] == [1e2, 1e2, 1e3, 1e3]
    np.testing.assert_array_equal(result.path, grid[:5])
    assert result.alpha == 1e4


def test_search_handles_infinite_and_nan_losses():
    """A held-out row given probability 0 has infinite loss; a diverged fit NaN.
    Neither may win the choice or break the paired test."""
    from softmaxkit._alpha_search import _argmin, _significantly_better

    ones = np.ones(3)
    assert _significantly_better(np.array([np.inf, 0.0, 0.0]), ones)  # the reference lost a row entirely
    assert not _significantly_better(np.array([np.nan, 0.0, 0.0]), ones)
    assert not _significantly_better(np.array([1.0, -1.0, 0.1]), ones)
    assert _argmin([np.nan, 0.5, 0.2, np.inf]) == 2


def test_default_fit_is_reproducible_without_random_state():
    """alpha="auto" with random_state=None: the internal folds are fixed, so fitting the same data
    twice gives the same alpha_ and the same linear model (they were shuffled at random)."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    first, second = (sk.SoftmaxClassifier().fit(X, y) for _ in range(2))
    assert first.alpha_ == second.alpha_
    np.testing.assert_array_equal(first.coefs_[0], second.coefs_[0])


# --------------------------------------------------------------------------- model files: what load guarantees


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory):
    """A saved (4, 5, 3) tanh-free MLP on iris, and the model itself."""
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(hidden_layer_sizes=(5,), alpha=0.1, max_iter=50, random_state=0).fit(X, y)
    path = clf.save(tmp_path_factory.mktemp("saved") / "mlp.npz")
    return path, clf


def _edited(src, dst, edit):
    """A copy of the model file ``src`` at ``dst`` whose record and arrays ``edit(meta, arrays)`` changed."""
    from softmaxkit import io

    kind, meta, arrays = io.read_state(src)
    edit(meta, arrays)
    return io.save_state(dst, kind=kind, meta=meta, arrays=arrays)


def _set(arr, index, value):
    arr = arr.copy()
    arr[index] = value
    return arr


#: Hand edits (or a future version's records) that the loader must refuse, and what the message names.
EDITS = {
    "unknown activation": (lambda m, a: m["params"].__setitem__("activation", "gelu"), r"activation.*'gelu'"),
    "NaN weight": (lambda m, a: a.__setitem__("coef_1", _set(a["coef_1"], (0, 0), np.nan)), r"coef_1.*non-finite"),
    "inf bias": (lambda m, a: a.__setitem__("intercept_1", _set(a["intercept_1"], 0, np.inf)),
                 r"intercept_1.*non-finite"),
    "duplicate classes": (lambda m, a: m["classes"].__setitem__("values", [0, 0, 1]), r"classes.*distinct"),
    "unsorted classes": (lambda m, a: m["classes"].__setitem__("values", [2, 1, 0]), r"classes.*sorted"),
    "nested classes": (lambda m, a: m["classes"].__setitem__("values", [[0], [1], [2]]), r"classes"),
    "classes that change type": (lambda m, a: m["classes"].__setitem__("values", ["a", 1, 2]), r"classes"),
    "2-D intercept": (lambda m, a: a.__setitem__("intercept_0", a["intercept_0"][:, None]),
                      r"intercept_0 has shape \(5, 1\), expected \(5,\)"),
    "n_features_in disagrees": (lambda m, a: m.__setitem__("n_features_in", 3), r"coef_0 has shape \(4, 5\)"),
    "feature names of wrong length": (lambda m, a: m.__setitem__("feature_names_in", ["a", "b"]),
                                      r"feature_names_in.*2 names for 4 features"),
    "duplicated feature names": (lambda m, a: m.__setitem__("feature_names_in", ["a", "a", "b", "c"]),
                                 r"feature_names_in.*'a'.*more than once"),
    "a stray layer": (lambda m, a: a.__setitem__("coef_9", np.zeros(3)), r"coef_9"),
    "text weights": (lambda m, a: a.__setitem__("coef_0", a["coef_0"].astype(str)), r"coef_0.*dtype"),
    "complex weights": (lambda m, a: a.__setitem__("coef_0", a["coef_0"].astype(complex)), r"coef_0.*dtype"),
    "unknown solver": (lambda m, a: m["params"].__setitem__("solver", "newton"), r"solver"),
    "classes param disagrees": (lambda m, a: m.__setitem__("classes_param", {"values": [5, 6, 7], "object": False}),
                                r"classes_param"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_load_refuses_an_edited_or_unknown_model_file(tmp_path, saved_mlp, case):
    """Audit: these loaded silently (tanh for "gelu", class 1's probability under p_0 for duplicate
    classes) or failed only at predict, blaming X (a NaN weight gave FeatureOverflowError)."""
    edit, match = EDITS[case]
    path = _edited(saved_mlp[0], tmp_path / "edited.npz", edit)
    with pytest.raises(ModelFileError, match=r"edited\.npz: .*" + match):
        sk.load(path)


def test_the_network_math_refuses_an_unknown_activation():
    """``_activate`` treated anything but "relu" as tanh."""
    xp = NumpyEngine(np.float64)
    with pytest.raises(ValueError, match="'gelu'"):
        _mlp._activate(xp, np.ones((2, 2)), "gelu")
    with pytest.raises(ValueError, match="'gelu'"):
        _mlp._activation_grad(np.ones((2, 2)), "gelu")
    coefs, intercepts = [np.ones((2, 3)), np.ones((3, 2))], [np.zeros(3), np.zeros(2)]
    with pytest.raises(ValueError, match="'gelu'"):
        _mlp.predict_logits(coefs, intercepts, "gelu", np.ones((1, 2)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32, bool])
def test_the_dtype_of_the_classes_survives_save_and_load(tmp_path, dtype):
    """Audit: uint8 classes came back int64."""
    X, y = load_iris(return_X_y=True)
    y = (y == 0) if dtype is bool else y.astype(dtype)
    clf = SoftmaxClassifier(alpha=1.0, classes=np.unique(y)).fit(X, y)
    loaded = sk.load(clf.save(tmp_path / "m.npz"))
    assert loaded.classes_.dtype == clf.classes_.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.predict(X).dtype == np.dtype(dtype)
    assert np.asarray(loaded.classes).dtype == np.dtype(dtype)


def test_a_splitter_cv_that_a_file_cannot_hold_is_refused_at_refit(tmp_path):
    """A splitter object is not saved: the loaded model must not refit with the default folds unsaid."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(cv=StratifiedKFold(3, shuffle=True, random_state=1)).fit(X, y)
    loaded = sk.load(clf.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert "StratifiedKFold(n_splits=3" in repr(loaded.cv)
    with pytest.raises(ValueError, match=r"cv=StratifiedKFold\(n_splits=3.*not saved.*set_params\(cv="):
        clone(loaded).fit(X, y)
    clone(loaded).set_params(alpha=1.0).fit(X, y)  # a float alpha uses no folds: nothing is missing
    np.testing.assert_array_equal(
        clone(loaded).set_params(cv=StratifiedKFold(3, shuffle=True, random_state=1)).fit(X, y).predict_proba(X),
        clf.predict_proba(X),
    )


def test_classes_absent_from_y_need_labels_for_log_loss_scoring():
    """With ``classes`` wider than y, scikit-learn's "neg_log_loss" scorer infers the labels from
    y and fails (nan scores): the docstring's make_scorer(log_loss, labels=...) recipe works."""
    from sklearn.metrics import log_loss as sk_log_loss, make_scorer
    from sklearn.model_selection import GridSearchCV

    assert "make_scorer(log_loss" in SoftmaxClassifier.__doc__ and "cross_val_predict" in SoftmaxClassifier.__doc__
    X, y = load_iris(return_X_y=True)
    scorer = make_scorer(sk_log_loss, greater_is_better=False, response_method="predict_proba", labels=[0, 1, 2, 3])
    search = GridSearchCV(SoftmaxClassifier(classes=[0, 1, 2, 3]), {"alpha": [0.1, 1.0]}, scoring=scorer, cv=3)
    assert np.all(np.isfinite(search.fit(X, y).cv_results_["mean_test_score"]))


def test_dataframe_column_names_are_checked_before_and_after_save(tmp_path):
    """Fitted on a DataFrame: reordered columns raise scikit-learn's feature-names error, also after load."""
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = SoftmaxClassifier(alpha=1.0).fit(X, y)
    loaded = sk.load(clf.save(tmp_path / "m.npz"))
    reordered = X[X.columns[::-1]]
    for model in (clf, loaded):
        assert list(model.feature_names_in_) == list(X.columns)
        np.testing.assert_array_equal(model.predict_proba(X), clf.predict_proba(X))
        with pytest.raises(ValueError, match="Feature names must be in the same order as they were in fit"):
            model.predict_proba(reordered)
    assert isinstance(X, pd.DataFrame)


# --------------------------------------------------------------------------- alpha="auto" on a bound of its range


def _noise_3_classes():
    """Labels independent of the features (the auditor's case): the held-out loss is least at the strongest penalty."""
    rng = np.random.RandomState(0)
    rng.randn(400, 2)
    return rng.randn(300, 5), rng.randint(0, 3, 300)


def test_auto_alpha_on_the_strong_end_is_flagged_and_explained(tmp_path):
    """Audit: on data without signal alpha_ was the strongest grid value (alpha_path_[0]) with no word:
    DESIGN.md's "a fitted parameter that stops on a bound is reported as such"."""
    X, y = _noise_3_classes()
    with pytest.warns(UserWarning, match=r"alpha='auto' chose alpha=10000, the strongest penalty searched "
                      r"\(alpha_at_bound_ is True\).*close to the class frequencies.*a sensible answer"):
        clf = SoftmaxClassifier().fit(X, y)
    assert clf.alpha_ == clf.alpha_path_[0] == 1e4 and clf.alpha_at_bound_ is True
    assert sk.load(clf.save(tmp_path / "m.npz")).alpha_at_bound_ is True
    np.testing.assert_allclose(clf.predict_proba(X), np.tile(np.bincount(y) / len(y), (len(y), 1)), atol=0.02)
    # Inside the range, a float alpha, the small-data fallback: no flag.
    Xi, yi = load_iris(return_X_y=True)
    assert SoftmaxClassifier().fit(Xi, yi).alpha_at_bound_ is False
    assert SoftmaxClassifier(alpha=1e4).fit(X, y).alpha_at_bound_ is False


def test_auto_alpha_on_a_flat_weak_end_is_not_flagged(recwarn):
    """Separable classes under L-BFGS's tol: the held-out loss is least at the weakest grid value but flat
    there (a weaker penalty fits the same model), so it is no bound to report. A falling one is
    (test_auto_alpha_mlp_walks_past_the_weak_end_while_the_held_out_loss_falls)."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-3, 1, (30, 1)), rng.normal(3, 1, (30, 1))]
    y = np.r_[np.zeros(30), np.ones(30)]
    clf = SoftmaxClassifier().fit(X, y)
    # The choice lies on the flat end, at 2e-4 or between it and its neighbour: the two losses agree
    # to the last bit on some CPUs (a tie keeps the first and refines towards the other) and differ by
    # ulps on others.
    assert clf.alpha_path_[-1] == 2e-4 <= clf.alpha_ <= clf.alpha_path_[-2] and clf.alpha_at_bound_ is False
    assert clf.alpha_path_loss_[-1] > clf.alpha_path_loss_[-2] * 0.99
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_auto_alpha_mlp_walks_past_the_weak_end_while_the_held_out_loss_falls(recwarn):
    """Audit: an MLP on make_moons stopped at the grid's weakest alpha=0.01 with the held-out loss still
    falling ~9x per decade. The walk now goes on by decades, past the grid, while the loss keeps falling."""
    from sklearn.datasets import make_moons

    from softmaxkit._alpha_search import MLP_ALPHA_GRID

    kw = dict(solver="lbfgs", max_iter=300, random_state=0)
    X, y = make_moons(200, noise=0.05, random_state=0)
    clf = SoftmaxClassifier(hidden_layer_sizes=(10,), **kw).fit(X, y)  # the minimum lies at 1e-3, past the grid
    np.testing.assert_allclose(clf.alpha_path_, [*MLP_ALPHA_GRID, 1e-3, 1e-4])
    assert np.argmin(clf.alpha_path_loss_) == 5 and 1e-3 / 10**0.5 <= clf.alpha_ <= 1e-3 * 10**0.5
    assert clf.alpha_at_bound_ is False and not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_auto_alpha_mlp_still_falling_at_the_floor_is_flagged():
    """Past the grid the walk stops at MLP_ALPHA_FLOOR; a loss still falling there is the weak bound."""
    from sklearn.datasets import make_moons

    from softmaxkit._alpha_search import MLP_ALPHA_FLOOR

    kw = dict(solver="lbfgs", max_iter=300, random_state=0)
    X, y = make_moons(300, noise=0.05, random_state=0)
    with pytest.warns(UserWarning, match=r"alpha=0\.0001, the weakest penalty searched"):
        clf = SoftmaxClassifier(hidden_layer_sizes=(20,), **kw).fit(X, y)  # still falling at the floor
    assert np.all(np.diff(clf.alpha_path_loss_) < 0) and clf.alpha_ == MLP_ALPHA_FLOOR == 1e-4
    assert clf.alpha_at_bound_ is True


def test_search_walks_beyond_the_grid_only_while_the_weakest_value_is_best():
    """``beyond``: values past grid[-1] are fitted only when grid[-1] is the best and still falling, one at a
    time while they fall; the common case (a minimum inside the grid, or a flat end) fits nothing more."""
    from softmaxkit._alpha_search import search

    folds = [(np.arange(20, 40), np.arange(0, 20)), (np.arange(0, 20), np.arange(20, 40))]
    grid = (1e2, 1e1, 1e0, 1e-1)

    def run(curve):
        calls = []

        def fit(train, alpha, start):
            calls.append(alpha)
            return alpha

        def score(alpha, test):
            return np.full(len(test), curve(np.log10(alpha)))

        result = search(folds, np.ones(40), fit=fit, score=score, grid=grid, patience=len(grid), warm=False,
                        beyond=(1e-2, 1e-3, 1e-4))
        return result, calls

    result, calls = run(lambda g: (g - 0.5) ** 2)  # minimum inside: the grid only, no bound
    assert min(calls) == 1e-1 and result.bound is None
    result, calls = run(lambda g: (g + 2) ** 2)  # minimum at 1e-2: one value past it, then stop
    np.testing.assert_allclose(result.path, [1e2, 1e1, 1e0, 1e-1, 1e-2, 1e-3])
    assert result.alpha == pytest.approx(1e-2) and result.bound is None
    result, calls = run(lambda g: 10**g)  # still falling at the floor: the weak bound
    assert result.path[-1] == 1e-4 and result.alpha == 1e-4 and result.bound == "weak"
    result, calls = run(lambda g: 1 + 1e-3 * 10**g)  # least at 1e-1 but flat (0.09% a decade): no walk, no bound
    assert min(calls) == 1e-1 and result.alpha == 1e-1 and result.bound is None
    result, _ = run(lambda g: 10**-g)  # rising towards weak penalties: the strong bound
    assert result.alpha == 1e2 and result.bound == "strong" and len(result.path) == 4


# --------------------------------------------------------------------------- cv given as splits


def test_cv_generator_used_up_or_empty_splits_are_refused_naming_cv():
    """Audit: a generator cv fitted once, then the next fit raised numpy's "need at least one array to
    concatenate"; cv=[] the same; GroupKFold raised scikit-learn's bare "groups should not be None"."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(cv=StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)).fit(X, y)
    used_up = r"cv gave no \(train, test\) splits: .*iterator.*that an earlier fit used up; pass list\("
    with pytest.raises(ValueError, match=used_up):
        clf.fit(X, y)
    with pytest.raises(ValueError, match=r"cv gave no \(train, test\) splits"):
        SoftmaxClassifier(cv=[]).fit(X, y)
    with pytest.raises(ValueError, match=r"cv split 1 has an empty held-out part"):
        SoftmaxClassifier(cv=[(np.arange(75), np.arange(75, 150)), (np.arange(150), np.array([], int))]).fit(X, y)
    with pytest.raises(ValueError, match=r"cv split 0: the training part has dtype bool, not row indices"):
        SoftmaxClassifier(cv=[(np.arange(150) < 75, np.arange(75, 150))]).fit(X, y)
    with pytest.raises(ValueError, match=r"cv split 0: the held-out part has row index 150, outside the 150 rows"):
        SoftmaxClassifier(cv=[(np.arange(75), np.arange(75, 151))]).fit(X, y)
    groups = r"cv=GroupKFold.*needs groups.*cv=list\(GroupKFold\(.*\)\.split\(X, y, groups\)\)"
    with pytest.raises(ValueError, match=groups):
        SoftmaxClassifier(cv=GroupKFold(3)).fit(X, y)
    # Explicit splits as a list serve every fit.
    splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    model = SoftmaxClassifier(cv=splits)
    assert model.fit(X, y).alpha_ == model.fit(X, y).alpha_ == clf.alpha_


# --------------------------------------------------------------------------- coef_ / intercept_ (linear model)


def test_linear_coef_and_intercept_match_logistic_regression():
    """Audit: no coef_ / intercept_, so SelectFromModel and friends failed on the linear model."""
    from sklearn.feature_selection import SelectFromModel

    X, y = load_iris(return_X_y=True)
    C = 2.0
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    clf = SoftmaxClassifier(alpha=1.0 / C, **TIGHT).fit(X, y)
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    np.testing.assert_allclose(clf.coef_, lr.coef_, atol=1e-4)
    np.testing.assert_allclose(clf.intercept_ - clf.intercept_.mean(), lr.intercept_ - lr.intercept_.mean(), atol=1e-4)
    np.testing.assert_allclose(clf.decision_function(X), X @ clf.coef_.T + clf.intercept_, atol=1e-12)
    ours = SelectFromModel(SoftmaxClassifier(alpha=1.0 / C, **TIGHT)).fit(X, y)
    np.testing.assert_array_equal(ours.get_support(), SelectFromModel(lr).fit(X, y).get_support())

    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb = StandardScaler().fit_transform(Xb)[:, :5]
    lr = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(Xb, yb)
    binary = SoftmaxClassifier(alpha=2.0 / 0.5, **TIGHT).fit(Xb, yb)  # two classes: alpha = 2 / C
    assert binary.coef_.shape == (1, 5) and binary.intercept_.shape == (1,)
    np.testing.assert_allclose(binary.coef_, lr.coef_, atol=1e-4)
    np.testing.assert_allclose(binary.intercept_, lr.intercept_, atol=1e-4)
    np.testing.assert_allclose(binary.decision_function(Xb), Xb @ binary.coef_[0] + binary.intercept_[0], atol=1e-12)


def test_coef_is_a_read_only_view_of_the_linear_model_only(tmp_path):
    """Not a parameter, not saved on its own, absent (hasattr False) for an MLP or before fit."""
    from sklearn.base import clone

    X, y = load_iris(return_X_y=True)
    clf = SoftmaxClassifier(alpha=1.0)
    assert not hasattr(clf, "coef_") and not hasattr(clf, "intercept_")
    clf.fit(X, y)
    assert "coef_" not in clf.get_params() and "coef_" not in vars(clf)
    loaded = sk.load(clf.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.coef_, clf.coef_)
    np.testing.assert_array_equal(loaded.intercept_, clf.intercept_)
    assert not hasattr(clone(clf), "coef_")
    with pytest.raises(AttributeError):
        clf.coef_ = np.zeros((3, 4))
    mlp = SoftmaxClassifier(hidden_layer_sizes=(3,), alpha=1.0, max_iter=5, random_state=0).fit(X, y)
    assert not hasattr(mlp, "coef_") and not hasattr(mlp, "intercept_")
    with pytest.raises(AttributeError, match=r"coef_ .*linear model.*coefs_"):
        mlp.coef_


# --------------------------------------------------------------------------- (n, K) y: counts only on request


def _multioutput_iris():
    """Iris with two 2-D ``y`` that scikit-learn reads as several targets: two label columns, and a
    multilabel indicator. Both hold whole numbers with rows not all summing to 1, as counts would."""
    X, y = load_iris(return_X_y=True)
    return X, y, {"multi-output labels": np.c_[y, (y + 1) % 3],
                  "multilabel indicator": np.c_[y == 0, y == 1, y >= 1].astype(int)}


def test_a_2d_y_of_whole_numbers_is_refused_unless_count_targets():
    """Audit: a multi-output label matrix or a multilabel indicator was silently fitted as class counts
    (iris np.c_[y, (y + 1) % 3]: classes_ [0, 1], score 0.797, exit 0), where LogisticRegression refuses
    a 2-D y. Counts are now opt-in (count_targets=True); by default such a y is refused, saying what it
    looks like and how to opt in."""
    X, y, cases = _multioutput_iris()
    for name, Y in cases.items():
        with pytest.raises(ValueError, match=r"separate targets.*count_targets=True") as info:
            SoftmaxClassifier(alpha=1.0).fit(X, Y)
        assert f"shape {Y.shape}" in str(info.value), name
        assert "row 0 sums to" in str(info.value) or "row 50 sums to" in str(info.value), name
    # A model fitted on labels does not score them as counts either.
    clf = SoftmaxClassifier(alpha=1.0).fit(X, y)
    with pytest.raises(ValueError, match=r"separate targets.*set_params\(count_targets=True\)"):
        clf.score(X, cases["multilabel indicator"])
    # Probabilities, one-hot rows included, stay accepted by default: they are one target.
    one_hot = SoftmaxClassifier(alpha=1.0, **TIGHT).fit(X, np.eye(3)[y])
    labelled = SoftmaxClassifier(alpha=1.0, **TIGHT).fit(X, y)
    np.testing.assert_allclose(one_hot.predict_proba(X), labelled.predict_proba(X), atol=1e-6)
    assert one_hot.score(X, np.eye(3)[y]) == pytest.approx(one_hot.score(X, y), rel=1e-12)


def test_count_targets_is_a_saved_validated_parameter(tmp_path):
    """count_targets=True fits counts as before; clone and get_params carry it, fit validates it, the
    model file stores it (files written before it existed load with False), and score follows it."""
    from sklearn.base import clone

    X, counts = _counts_data(np.random.default_rng(5))
    clf = SoftmaxClassifier(alpha=0.1, count_targets=True).fit(X, counts)
    assert clf.get_params()["count_targets"] is True and clone(clf).count_targets is True
    rows = np.repeat(np.arange(len(X)), counts.sum(axis=1))
    labels = np.concatenate([np.repeat(np.arange(3), c) for c in counts])
    assert clf.score(X, counts) == pytest.approx(clf.score(X[rows], labels), rel=1e-12)
    loaded = sk.load(clf.save(tmp_path / "counts.npz"))
    assert loaded.get_params() == clf.get_params()
    assert loaded.score(X, counts) == clf.score(X, counts)
    old = sk.load(_edited(tmp_path / "counts.npz", tmp_path / "old.npz", lambda m, a: m["params"].pop("count_targets")))
    assert old.count_targets is False
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="count_targets=True"):
        old.score(X, counts)
    assert old.set_params(count_targets=True).score(X, counts) == clf.score(X, counts)
    with pytest.raises(ValueError, match=r"count_targets must be True or False, got 'yes'"):
        SoftmaxClassifier(count_targets="yes").fit(X, counts)


def test_sparse_X_is_refused_with_what_to_do():
    """scikit-learn's generic "dense data is required" did not say how to densify in a pipeline."""
    import scipy.sparse as sp

    X, y = load_iris(return_X_y=True)
    for method in ("fit", "predict"):
        clf = SoftmaxClassifier(alpha=1.0) if method == "fit" else SoftmaxClassifier(alpha=1.0).fit(X, y)
        call = (lambda: clf.fit(sp.csr_matrix(X), y)) if method == "fit" else (lambda: clf.predict(sp.csr_matrix(X)))
        with pytest.raises(TypeError, match=r"SoftmaxClassifier needs dense X.*sparse.*X\.toarray\(\).*"
                                            r"FunctionTransformer\(operator\.methodcaller\(.toarray.\), accept_sparse=True\)"):
            call()
