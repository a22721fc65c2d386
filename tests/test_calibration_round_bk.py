"""Audit round BK: zero probabilities on new rows for vector/matrix scaling (BK-3), and ``score`` with
labels of another type than ``classes_`` (BL-F3c)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cli_helpers import call, error_line
from sklearn.linear_model import LogisticRegression

from softmaxkit import SoftmaxClassifier
from softmaxkit.calibration import (
    CalibratedClassifier,
    CalibrationWarning,
    MatrixScaling,
    VectorScaling,
    ZeroProbabilityWarning,
)


def _votes(rng, n: int, k: int = 3, *, zeros: bool) -> tuple[np.ndarray, np.ndarray]:
    """Vote fractions of a 20-tree forest (``zeros``: some rows give a class no vote) and labels drawn from them."""
    votes = rng.integers(1, 20, size=(n, k)).astype(float)
    if zeros:
        votes[::5, 0] = 0.0
    p = votes / votes.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p, y


def _fitted(cls, rng):
    """``cls(input="probs")`` fitted on 200 rows that hold no zero (as the audit's 30 forest rows)."""
    p, y = _votes(rng, 200, zeros=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return cls(input="probs").fit(p, y)


# --------------------------------------------------------------------------- BK-3: vector scaling


def test_vector_scaling_keeps_a_new_zero_probability_at_zero():
    """A probability of 0 on a new row stays 0 under a positive scale (the limit of ``a log p + b``),
    with the ZeroProbabilityWarning of temperature scaling; it raised "pass eps=" (audit BK-3)."""
    rng = np.random.default_rng(0)
    vs = _fitted(VectorScaling, rng)
    assert np.all(vs.coef_ > 0)
    p, _ = _votes(rng, 50, zeros=True)
    with pytest.warns(ZeroProbabilityWarning, match=r"VectorScaling\(input='probs', eps=None\): 10 of the 50 rows"):
        out = vs.predict_proba(p)
    assert np.all(out[p == 0] == 0.0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # the limit: a probability of 1e-300 instead of 0 gives the same row (its class ~0)
    tiny = np.where(p == 0, 1e-300, p)
    np.testing.assert_allclose(out, vs.predict_proba(tiny), atol=1e-12)


def test_vector_scaling_refuses_a_zero_under_a_nonpositive_scale_without_warning_first():
    """A scale <= 0 has no limit at log 0: a ValueError names the class and its scale, and no
    ZeroProbabilityWarning ("keep p = 0") comes before it."""
    rng = np.random.default_rng(1)
    vs = _fitted(VectorScaling, rng)
    vs.coef_[0] = -0.5
    p, _ = _votes(rng, 50, zeros=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroProbabilityWarning)
        with pytest.raises(ValueError, match=r"row 0, class 0, 0-based, of probs\): the fitted scale of class 0 is "
                           r"-0\.5, not > 0.*--method temperature, platt or isotonic"):
            vs.transform(p)
    vs.coef_[0] = 1.0
    vs.coef_[2] = 0.0  # a class with no zero in p: its scale does not matter
    with pytest.warns(ZeroProbabilityWarning):
        assert np.all(vs.predict_proba(p)[p == 0] == 0.0)


# --------------------------------------------------------------------------- BK-3: matrix scaling, fits


def test_matrix_scaling_refuses_a_new_zero_with_advice_for_python_and_the_cli():
    """Matrix scaling mixes log p across classes, so a 0 has no limit: the error names the row and class,
    says why, and what works both in Python (eps=, other calibrators) and on the command line, which has no
    eps (it said only "pass eps= to clip probabilities")."""
    rng = np.random.default_rng(2)
    ms = _fitted(MatrixScaling, rng)
    p, _ = _votes(rng, 50, zeros=True)
    p[:5, 0] = np.maximum(p[:5, 0], 0.01)
    p[:5] /= p[:5].sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroProbabilityWarning)
        with pytest.raises(ValueError) as info:
            ms.predict_proba(p)
    message = str(info.value)
    assert "MatrixScaling(input='probs') cannot map a probability of exactly 0 (row 5, class 0, 0-based, of probs)" \
        in message
    assert "mixes the classes' logits" in message
    assert "eps=" in message and "TemperatureScaling(input='probs')" in message
    assert "on the command line, calibrate with --method temperature, platt or isotonic" in message


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling])
def test_affine_fit_on_a_zero_probability_says_what_works(cls):
    """The fit cannot take log 0 (its gradient in a scale): the error says where and what works in Python
    and on the command line, not only "pass eps=" (not a CLI option)."""
    rng = np.random.default_rng(3)
    p, y = _votes(rng, 50, zeros=True)
    y[::5] = 1  # no zero on a true class: that is the other error
    with pytest.raises(ValueError, match=rf"{cls.__name__}\(input='probs'\) cannot be fitted on a probability of "
                       r"exactly 0 \(row 0, class 0, 0-based, of probs\).*eps=.*--method temperature, platt or "
                       "isotonic"):
        cls(input="probs").fit(p, y)


def _calibrated_on_votes(capsys, tmp_path, *, method: str, seed: int):
    """``calibrate --probs --method METHOD`` on 60 rows of forest votes without a 0 (``cal.csv``), beside
    ``new.csv``: 20 new rows, every 5th holding a 0. Returns the calibrator's path."""
    rng = np.random.default_rng(seed)
    p_cal, y_cal = _votes(rng, 60, zeros=False)
    p_new, _ = _votes(rng, 20, zeros=True)
    header = "p_0,p_1,p_2"
    np.savetxt(tmp_path / "cal.csv", p_cal, delimiter=",", header=header, comments="", fmt="%.6g")
    np.savetxt(tmp_path / "labels.csv", y_cal, fmt="%d", header="label", comments="")
    np.savetxt(tmp_path / "new.csv", p_new, delimiter=",", header=header, comments="", fmt="%.6g")
    model = tmp_path / f"{method}.npz"
    rc, _, err = call(capsys, "calibrate", "--probs", tmp_path / "cal.csv", "--labels", tmp_path / "labels.csv",
                      "--method", method, "--out", model)
    assert rc == 0, err
    return model


def test_cli_apply_of_a_vector_calibrator_to_votes_with_a_zero(tmp_path, capsys):
    """Audit BK-3 end to end: `calibrate --method vector` on forest votes without a 0, then `apply` to
    new votes with one: exit 0 with the zero-probability warning (was exit 1, "pass eps=", which
    `apply` has no option for); the row keeps p = 0 there."""
    model = _calibrated_on_votes(capsys, tmp_path, method="vector", seed=4)
    out = tmp_path / "out.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZeroProbabilityWarning)  # the CLI prints it; not an error here
        rc, _, err = call(capsys, "apply", model, "--probs", tmp_path / "new.csv", "--out", out)
    assert rc == 0, err
    written = np.loadtxt(out, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    assert np.all(written[::5, 0] == 0.0)
    np.testing.assert_allclose(written.sum(axis=1), 1.0, atol=1e-5)


def test_cli_apply_of_a_matrix_calibrator_to_votes_with_a_zero_names_the_methods(tmp_path, capsys):
    """The matrix scaling refusal on the command line names --method temperature, platt or isotonic."""
    model = _calibrated_on_votes(capsys, tmp_path, method="matrix", seed=5)
    rc, _, err = call(capsys, "apply", model, "--probs", tmp_path / "new.csv", "--out", tmp_path / "out.csv")
    assert rc == 1
    assert "--method temperature, platt or isotonic" in error_line(err)


# --------------------------------------------------------------------------- BL-F3c: score's label types


def _binary(n: int = 120):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("make", [lambda: SoftmaxClassifier(), lambda: CalibratedClassifier(LogisticRegression())],
                         ids=["SoftmaxClassifier", "CalibratedClassifier"])
@pytest.mark.parametrize("relabel", [lambda y: np.where(y == 1, "b", "a"), lambda y: y.astype(str), lambda y: y + 0.5],
                         ids=["letters", "digit-strings", "continuous"])
def test_score_raises_as_logistic_regression_without_a_warning_first(make, relabel):
    """Labels scikit-learn refuses (strings for a model fitted on integers, continuous values) raise its
    ValueError, as LogisticRegression.score does; the "count as wrong" warning came first (BL-F3c)."""
    X, y = _binary()
    y_bad = relabel(y)
    with pytest.raises(ValueError) as expected:
        LogisticRegression().fit(X, y).score(X, y_bad)
    model = make().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(ValueError) as got:
            model.score(X, y_bad)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("make", [lambda: SoftmaxClassifier(), lambda: CalibratedClassifier(LogisticRegression())],
                         ids=["SoftmaxClassifier", "CalibratedClassifier"])
def test_score_still_warns_for_labels_it_counts_as_wrong(make):
    """Guard (passes before by design): labels of the right type that the model lacks count as wrong, as in
    LogisticRegression.score, and the warning names them."""
    X, y = _binary()
    model = make().fit(X, y)
    expected = LogisticRegression().fit(X, y).score(X, y + 5)
    with pytest.warns(UserWarning, match=r"score: 120 of 120 rows of y have label\(s\) \[5, 6\].*count as wrong"):
        assert model.score(X, y + 5) == expected == 0.0
