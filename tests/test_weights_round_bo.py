"""Audit BO: what sample_weight means where rows are draws, and the checks of weights and labels.

* The ECE's value counts an integer weight as repeated rows, but its interval, noise floor and test
  treat each row as one draw: counts of repeated rows flipped ``p_calibrated`` 0.005 -> 0.995 without
  a word. The docstring says so and count-like weights draw a warning.
* ``ECEResult.n_samples`` counted rows of weight 0.
* ``PlattScaling`` (and ``CalibratedClassifier(method="platt")``) fitted weights normalised to sum to
  1 silently, its probabilities pulled to 1/2, where the scalings warned.
* Text weights were refused in a NumPy ``'<U'`` array but parsed from an object array.
* Labels -1/1 against two columns were only "out of range".
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmaxkit.calibration import CalibrationWarning, PlattScaling
from softmaxkit.metrics import expected_calibration_error


def _leaves(n: int = 600, seed: int = 0):
    """Rows of a 10-leaf model (confidence per leaf, over-confident), and the same rows collapsed into
    unique (leaf, label) rows with their counts."""
    rng = np.random.default_rng(seed)
    leaf_p = np.linspace(0.05, 0.95, 10)
    leaf = rng.integers(0, 10, size=n)
    y = (rng.uniform(size=n) < 0.5 + 0.8 * (leaf_p[leaf] - 0.5)).astype(int)
    keys, counts = np.unique(np.c_[leaf, y], axis=0, return_counts=True)
    return y, leaf_p[leaf], keys[:, 1], leaf_p[keys[:, 0]], counts


_FAST = dict(n_bootstrap=50, random_state=0)


# --------------------------------------------------------------------------- ECE and count weights


def test_ece_docstring_says_the_interval_treats_rows_as_draws():
    """The docstring called the weights frequency weights that act "exactly like repeating the row"; the
    interval, floor and p-value do not, and it now says so and how to get the repeated data's."""
    doc = expected_calibration_error.__doc__
    section = doc[doc.index("    sample_weight :"): doc.index("    debias :")]
    assert "Frequency weights" not in section
    assert "one" in section and "draw" in section and "np.repeat" in section
    assert "UserWarning" in doc[doc.index("Warns"):]


def test_count_weights_warn_when_an_interval_or_floor_is_computed():
    _, _, y, p, counts = _leaves()
    with pytest.warns(UserWarning, match=r"look like counts of repeated rows.*np\.repeat") as rec:
        r = expected_calibration_error(y, p, sample_weight=counts, **_FAST)
    message = str(rec[0].message)
    assert f"each of the {counts.size} rows" in message and f"not the {int(counts.sum())}" in message
    assert "the interval, the noise floor and p_calibrated" in message
    assert rec[0].filename == __file__  # the user's line, not the library's
    # the numbers are kept: the warning is the change
    assert np.isfinite(r.ci_low) and np.isfinite(r.p_calibrated)
    with pytest.warns(UserWarning, match=r"but the interval treats each of the \d+ rows.*: it describes"):
        expected_calibration_error(y, p, sample_weight=counts, noise_floor=False, **_FAST)
    with pytest.warns(UserWarning, match=r"but the noise floor and p_calibrated treat each.*: they describe"):
        expected_calibration_error(y, p, sample_weight=counts, ci=None, noise_floor=40, random_state=0)


def test_the_warning_advice_gives_the_repeated_rows():
    """Following the message (np.repeat on the rows) gives the full data's value, silently."""
    y_full, p_full, y, p, w = _leaves()
    i = np.repeat(np.arange(len(w)), w.astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repeated = expected_calibration_error(y[i], p[i], **_FAST)
        full = expected_calibration_error(y_full, p_full, **_FAST)
    assert repeated.value == pytest.approx(full.value, abs=1e-12)
    assert repeated.n_samples == len(y_full)


@pytest.mark.parametrize(
    "weights",
    [
        lambda n: np.ones(n),  # unit weights
        lambda n: np.r_[np.zeros(n // 2), np.ones(n - n // 2)],  # 0/1 selection
        lambda n: np.random.default_rng(1).uniform(0.5, 3.0, size=n),  # importance weights
        lambda n: np.full(n, 1.0 / n),  # normalised
    ],
)
def test_weights_that_are_not_counts_do_not_warn(weights):
    _, _, y, p, counts = _leaves()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected_calibration_error(y, p, sample_weight=weights(len(y)), **_FAST)


def test_count_weights_without_interval_or_floor_do_not_warn():
    """The value is what the repeated rows give: nothing to warn about."""
    y_full, p_full, y, p, counts = _leaves()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = expected_calibration_error(y, p, sample_weight=counts, ci=None, noise_floor=False)
    assert r.value == pytest.approx(
        expected_calibration_error(y_full, p_full, ci=None, noise_floor=False).value, abs=1e-12
    )


# --------------------------------------------------------------------------- n_samples


def test_n_samples_counts_rows_of_positive_weight():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, size=200)
    w = np.where(rng.uniform(size=200) < 0.3, 0.0, 1.0)
    r = expected_calibration_error(y, p, sample_weight=w, ci=None, noise_floor=False)
    keep = w > 0
    assert r.n_samples == int(keep.sum()) == int(r.curve.counts.sum())
    assert r.n_samples == expected_calibration_error(y[keep], p[keep], ci=None, noise_floor=False).n_samples
    assert expected_calibration_error(y, p, ci=None, noise_floor=False).n_samples == 200


# --------------------------------------------------------------------------- Platt and light weights


def _platt_rows(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-3 * z))).astype(int)
    return np.c_[np.zeros(n), z], y


def test_platt_warns_on_weights_normalised_to_one():
    x, y = _platt_rows()
    with pytest.warns(CalibrationWarning, match=r"PlattScaling: sample_weight sums to 1 over 400 weighted rows.*"
                      r"Platt's targets") as rec:
        light = PlattScaling().fit(x, y, sample_weight=np.full(400, 1 / 400))
    assert rec[0].filename == __file__
    # the numbers are kept (scikit-learn's "sigmoid" gives the same): pulled toward 1/2
    plain = PlattScaling().fit(x, y)
    assert abs(light.coef_[0]) < abs(plain.coef_[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        PlattScaling().fit(x, y)
        PlattScaling().fit(x, y, sample_weight=np.ones(400))
        PlattScaling().fit(x, y, sample_weight=np.random.default_rng(3).uniform(0.5, 1.5, size=400))


def test_platt_multiclass_warns_once():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(300, 3)) * 2
    y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        PlattScaling().fit(z, y, sample_weight=np.full(300, 1e-3))
    light = [r for r in rec if "sample_weight sums to" in str(r.message)]
    assert len(light) == 1 and issubclass(light[0].category, CalibrationWarning)


def test_calibrated_classifier_platt_warns_on_light_weights():
    pytest.importorskip("sklearn")
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from softmaxkit.calibration import CalibratedClassifier

    x, y = _platt_rows(600, seed=5)
    X = x[:, 1:]
    base = LogisticRegression().fit(X[:200] * 0.3, y[:200])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        CalibratedClassifier(FrozenEstimator(base), method="platt").fit(
            X[200:], y[200:], sample_weight=np.full(400, 1 / 400)
        )
    assert any(issubclass(r.category, CalibrationWarning) and "Platt's targets" in str(r.message) for r in rec)


# --------------------------------------------------------------------------- text weights


def test_text_weights_are_refused_in_every_container():
    from softmaxkit._validation import check_sample_weight
    from softmaxkit.metrics import log_loss

    p = np.array([[0.7, 0.3], [0.4, 0.6]])
    texts = [np.array(["1", "2"]), np.array(["1", "2"], dtype=object), np.array([b"1", b"2"]),
             np.array([1.0, "2"], dtype=object)]
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pass
    else:
        texts += [pd.Series(["1", "2"], dtype="string"), pd.Series(["1", "2"], dtype=object)]
    for w in texts:
        with pytest.raises(TypeError, match=r"sample_weight must be numeric, got text"):
            check_sample_weight(w, 2)
        with pytest.raises(TypeError, match=r"got text"):
            log_loss([0, 1], probs=p, sample_weight=w)
    # an object array of numbers (a pandas object Series) is still read
    np.testing.assert_array_equal(check_sample_weight(np.array([1, 2.5, True], dtype=object), 3), [1.0, 2.5, 1.0])


# --------------------------------------------------------------------------- labels -1/1


def test_minus_one_one_targets_get_a_hint():
    from softmaxkit import cross_entropy

    logits = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"class index -1 .*labels -1/1 .*\(target \+ 1\) // 2"):
        cross_entropy(logits, np.array([-1, 1, 1, -1]))
    with pytest.raises(ValueError, match=r"labels 1\.\.2 look 1-based"):
        cross_entropy(logits, np.array([1, 2, 2, 1]))


def test_label_range_hint_only_where_it_fits():
    from softmaxkit._validation import label_range_hint

    assert "(y + 1) // 2" in label_range_hint(np.array([-1, 1, -1]), 2, "y")
    assert "(y + 1) // 2" in label_range_hint(np.array([-1, -1]), 2, "y")  # one class present
    assert label_range_hint(np.array([-1, 0, 1]), 2, "y") == ""  # 0 too: not the -1/+1 coding
    assert label_range_hint(np.array([-1, 1]), 3, "y") == ""  # three columns: not a binary problem
    assert label_range_hint(np.array([0, 2]), 2, "y") == ""
    assert "look 1-based" in label_range_hint(np.array([1, 3, 2]), 3, "y")
    assert label_range_hint(np.array([], dtype=np.int64), 2, "y") == ""


def test_minus_one_one_labels_get_a_hint_in_metrics_and_calibrators():
    """-1/1 labels in log_loss, the ECE and a calibrator get the (y + 1) // 2 hint (check_labels)."""
    from softmaxkit.calibration import TemperatureScaling
    from softmaxkit.metrics import log_loss

    p = np.array([0.1, 0.8, 0.6, 0.3])
    with pytest.raises(ValueError, match=r"class index -1 .*labels -1/1 .*\(y \+ 1\) // 2"):
        log_loss(np.array([-1, 1, 1, -1]), probs=p)
    with pytest.raises(ValueError, match=r"\(y \+ 1\) // 2"):
        expected_calibration_error(np.array([-1, 1, 1, -1]), p, ci=None, noise_floor=False)
    with pytest.raises(ValueError, match=r"\(y \+ 1\) // 2"):
        TemperatureScaling().fit(np.c_[np.zeros(4), np.array([-2.0, 1.0, 0.5, -1.0])], np.array([-1, 1, 1, -1]))
    # the 1-based hint is unchanged
    with pytest.raises(ValueError, match=r"labels 1\.\.2 look 1-based .*np\.searchsorted\(classes_, y\)"):
        log_loss(np.array([1, 2, 2, 1]), probs=p)
    # -1/0/1 is not the -1/+1 coding: no hint
    with pytest.raises(ValueError) as err:
        log_loss(np.array([-1, 0, 1, 0]), probs=p)
    assert "// 2" not in str(err.value)
