"""Binary score files after audit CN (review R26).

Each case was read wrongly or refused: a correct single ``0`` column of a ``class_weight="balanced"``
model refused as class 0's (its advice swapped it, exit 0), bool predictions written as text into
.parquet/.npz, a ``True,False`` header over 0/1 labels read by position (accuracy 0.045 for 0.955), a
single ``True`` column over 0/1 labels refused, a class named ``margin`` among rounded probabilities
refused, and three rows of one-decimal logits refused as holding a confidence column.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import call, error_line

pytest.importorskip("sklearn")


def _evaluate(capsys, *argv):
    """``evaluate ... --json``: (exit code, the JSON document or None, stderr)."""
    rc, out, err = call(capsys, "evaluate", *argv, "--json")
    return rc, json.loads(out) if out.strip() else None, err


def _balanced():
    """P(class 1) and log-odds of a class_weight='balanced' model on 95/5 data, and the 0/1 labels."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=4000, weights=[0.95], flip_y=0.03, class_sep=0.6, random_state=0)
    clf = LogisticRegression(class_weight="balanced").fit(x[:2000], y[:2000])
    return clf.predict_proba(x[2000:])[:, 1], clf.decision_function(x[2000:]), y[2000:]


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_balanced_weight_column_headed_0_is_read_as_p_class_1(capsys, tmp_path, kind):
    """Accuracy 0.718 below the majority rate 0.942 is normal under balanced weights; the column reads
    far better as P(class 1) (log-loss 0.5615) than swapped (1.30), so it is read so, with the warning."""
    from sklearn.metrics import log_loss

    p1, z, y = _balanced()
    assert np.mean((p1 > 0.5) == y) < 0.8 < max(np.mean(y), 1 - np.mean(y))  # the case: far below majority
    pd.Series(p1 if kind == "probs" else z).to_csv(tmp_path / "s.csv", index=False)
    pd.Series(y, name="y").to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, f"--{kind}", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["metrics"]["log_loss"] == pytest.approx(log_loss(y, p1), rel=1e-6)
    assert "column '0' read as" in err


def test_column_headed_0_holding_class_0_logits_is_still_refused(capsys, tmp_path):
    """``DataFrame(z)[[0]]`` of class 0's log-odds: far below the majority rate and far better swapped."""
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.1).astype(int)
    z1 = -2.0 + 3.0 * y + rng.normal(0, 1, 600)  # log-odds of class 1
    pd.DataFrame({"0": -z1}).to_csv(tmp_path / "s.csv", index=False)
    pd.Series(y, name="y").to_csv(tmp_path / "y.csv", index=False)
    rc, _, err = _evaluate(capsys, "--logits", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 1
    line = error_line(err)
    assert "headed '0'" in line and "log-loss" in line and "--classes 0,1" in line


def test_column_headed_0_of_a_model_fitted_at_another_prevalence_is_read(capsys, tmp_path):
    """Review R28: a model fitted on a 50/50 sample and scored at 5% fits the labels badly both ways, and
    over 3000 rows the swapped log-loss (0.84 against 0.87) was "10^4 times likelier": its P(class 1),
    ranking the rows right (AUC 0.62), was refused as class 0's. The ranking decides now."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(11)
    y_fit, y = (rng.random(400) < 0.5).astype(int), (rng.random(3000) < 0.05).astype(int)
    signal = 0.4 * (np.arange(40) < 2)
    x_fit = rng.standard_normal((400, 40)) + y_fit[:, None] * signal
    x = rng.standard_normal((3000, 40)) + y[:, None] * signal
    p1 = LogisticRegression(max_iter=2000).fit(x_fit, y_fit).predict_proba(x)[:, 1]
    assert roc_auc_score(y, p1) > 0.5 and log_loss(y, 1 - p1) < log_loss(y, p1)  # the case
    pd.Series(p1).to_csv(tmp_path / "s.csv", index=False)
    pd.Series(y, name="y").to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["metrics"]["log_loss"] == pytest.approx(log_loss(y, p1), rel=1e-6)


def _bool_model_predictions(capsys, tmp_path, suffix):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 3))
    train = pd.DataFrame(x, columns=["a", "b", "c"]).assign(outcome=x[:, 0] + rng.normal(0, 0.5, 200) > 0)
    train.to_csv(tmp_path / "train.csv", index=False)
    rc, _, err = call(capsys, "fit", tmp_path / "train.csv", "--target", "outcome", "--out", tmp_path / "m.npz",
                      "--no-report")
    assert rc == 0, err
    out = tmp_path / f"p{suffix}"
    rc, _, err = call(capsys, "predict", tmp_path / "m.npz", tmp_path / "train.csv", "--out", out)
    assert rc == 0, err
    return out, train.outcome.to_numpy()


def test_predict_keeps_bool_predictions_bool_in_parquet(capsys, tmp_path):
    """Written as "True"/"False" there, ``prediction == y`` with bool labels gave 0.0 (was 0.7225)."""
    out, y = _bool_model_predictions(capsys, tmp_path, ".parquet")
    prediction = pd.read_parquet(out).prediction.to_numpy()
    assert prediction.dtype == bool and np.mean(prediction == y) > 0.6


def test_predict_keeps_bool_predictions_bool_in_npz(capsys, tmp_path):
    out, y = _bool_model_predictions(capsys, tmp_path, ".npz")
    with np.load(out) as arrays:
        prediction = arrays["prediction"]
    assert prediction.dtype == bool and np.mean(prediction == y) > 0.6


def _pair(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.75 * (y == 1) + 0.25 * (y == 0) + 0.15 * rng.standard_normal(n), 0.02, 0.98)
    return np.column_stack([1 - p1, p1]), y


@pytest.mark.parametrize("header", [["True", "False"], ["TRUE", "FALSE"], ["False", "True"]])
def test_bool_header_over_integer_labels_is_matched_by_name(capsys, tmp_path, header):
    """0/1 labels are False/True: ``True,False`` was read by position (accuracy 0.045 for 0.955, exit 0)."""
    from sklearn.metrics import log_loss

    probs, y = _pair()
    order = [1, 0] if header[0].lower() == "true" else [0, 1]
    pd.DataFrame(probs[:, order], columns=header).to_csv(tmp_path / "s.csv", index=False)
    pd.Series(y, name="label").to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["metrics"]["log_loss"] == pytest.approx(log_loss(y, probs), rel=1e-9)


@pytest.mark.parametrize("name, column", [("True", 1), ("False", 0), ("p_True", 1), ("p_false", 0)])
def test_single_bool_column_over_integer_labels_is_that_class(capsys, tmp_path, name, column):
    """A single ``True`` column over 0/1 labels was refused ("which number is which class")."""
    from sklearn.metrics import log_loss

    probs, y = _pair(seed=1)
    pd.DataFrame({name: probs[:, column]}).to_csv(tmp_path / "s.csv", index=False)
    pd.Series(y, name="label").to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["metrics"]["log_loss"] == pytest.approx(log_loss(y, probs), rel=1e-9)


def test_class_named_margin_among_rounded_probabilities_is_a_class(capsys, tmp_path):
    """``DataFrame(proba, columns=clf.classes_).to_csv(float_format="%.3f")`` with a class 'margin': its rows
    sum to 1 within the rounding, not within 1e-6, and it was refused as a summary column."""
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, size=(300, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = np.array(["high", "low", "margin"])
    y = names[probs.argmax(axis=1)]
    pd.DataFrame(probs, columns=names).to_csv(tmp_path / "s.csv", index=False, float_format="%.3f")
    pd.Series(y, name="label").to_csv(tmp_path / "y.csv", index=False)
    rounded = pd.read_csv(tmp_path / "s.csv").to_numpy()
    assert np.abs(rounded.sum(axis=1) - 1).max() > 1e-6  # the case: not within 1e-6
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["n_classes"] == 3


def test_three_rows_of_one_decimal_logits_are_not_a_confidence_column(capsys, tmp_path):
    """Column '3' matched the softmax of the others within the rounding on 3 rows by chance."""
    (tmp_path / "s.csv").write_text("0,1,2,3,4\n-0.9,1.7,-0.7,0.8,-1.0\n-0.8,0.3,-0.0,0.3,0.4\n0.0,1.0,-0.6,0.5,-1.0\n")
    pd.Series([1, 4, 1], name="y").to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--logits", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["n_classes"] == 5


def test_a_full_precision_confidence_column_on_three_rows_is_still_refused(capsys, tmp_path):
    """The chance bound keeps the refusal where a match cannot be chance: full-precision values."""
    rng = np.random.default_rng(5)
    z = rng.normal(0, 2, size=(3, 4))
    conf = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).max(axis=1)
    pd.DataFrame(np.column_stack([z, conf]), columns=["a", "b", "c", "d", "e"]).to_csv(tmp_path / "s.csv", index=False)
    pd.Series([0, 1, 2], name="y").to_csv(tmp_path / "y.csv", index=False)
    rc, _, err = _evaluate(capsys, "--logits", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 1 and "largest softmax probability" in error_line(err)
