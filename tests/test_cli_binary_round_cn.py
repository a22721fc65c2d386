"""Binary yes/no score files as a clinician's scikit-learn script writes them (audit CN).

Each case gave wrong numbers with exit 0, or a refusal or output that did not match the rest: a plain
header ``True,False`` (positive class first) over True/False labels read by position (accuracy 0.4733
for 0.5267), a single plain column ``0`` or ``False`` holding class 0's probability read as P(class 1)
(accuracy 0.05 for 0.95), a single ``p_False`` column refused, ``prediction`` written ``false`` beside
``p_False``, metrics.json's Brier score without its scale, and -1/+1 labels refused without a way out.
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


def _yes_no(n=400, seed=0, prevalence=0.3):
    """P(False), P(True) of a decent model (columns in scikit-learn's order) and its bool labels."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    z = np.log(prevalence / (1 - prevalence)) + (2 * y - 1) * 1.5 + rng.normal(0, 1, n)
    p1 = 1 / (1 + np.exp(-z))
    return np.column_stack([1 - p1, p1]), y


def _sklearn(probs, y):
    """accuracy and log-loss of P(False), P(True) against bool labels, as scikit-learn scores them."""
    from sklearn.metrics import log_loss

    return float(np.mean((probs[:, 1] > 0.5) == y)), float(log_loss(y, probs[:, 1], labels=[False, True]))


# --------------------------------------------------------------------------- plain headers naming the labels


@pytest.mark.parametrize("header", [["True", "False"], ["true", "false"], ["False", "True"]])
def test_plain_true_false_header_is_matched_to_bool_labels_by_name(capsys, tmp_path, header):
    """``pd.DataFrame(proba, columns=clf.classes_).iloc[:, ::-1]`` (header True,False) was read by position:
    accuracy 0.4733, log-loss 0.7605 for scikit-learn's 0.5267 / 0.6956, exit 0, no warning."""
    probs, y = _yes_no()
    order = [0, 1] if header[0].lower() == "false" else [1, 0]
    pd.DataFrame(probs[:, order], columns=header).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    accuracy, loss = _sklearn(probs, y)
    assert rc == 0 and doc["classes"] == ["False", "True"]
    assert doc["metrics"]["accuracy"] == pytest.approx(accuracy) and doc["metrics"]["log_loss"] == pytest.approx(loss)


def test_plain_text_header_is_matched_to_text_labels_by_name(capsys, tmp_path):
    """``dog,cat`` over labels dog/cat was refused ("not an integer class index"); read by name now."""
    probs, y = _yes_no(seed=1)
    pd.DataFrame(probs[:, ::-1], columns=["yes", "no"]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"y": np.where(y, "yes", "no")}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    accuracy, loss = _sklearn(probs, y)
    assert rc == 0 and doc["classes"] == ["no", "yes"]
    assert doc["metrics"]["accuracy"] == pytest.approx(accuracy) and doc["metrics"]["log_loss"] == pytest.approx(loss)


def test_plain_header_the_labels_do_not_name_is_read_as_before(capsys, tmp_path):
    """Integer labels under a header of names stay column positions, as they were."""
    probs, y = _yes_no(seed=2)
    pd.DataFrame(probs, columns=["neg", "pos"]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"y": y.astype(int)}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0 and doc["classes"] is None
    assert doc["metrics"]["accuracy"] == pytest.approx(_sklearn(probs, y)[0])


def test_calibrate_then_apply_on_a_true_false_header(capsys, tmp_path):
    """The chain: a calibrator fitted on a ``True,False`` header names the classes False, True, and apply
    matches the same header to them by name (it was refused as having no class names)."""
    probs, y = _yes_no(seed=3)
    pd.DataFrame(probs[:, ::-1], columns=["True", "False"]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    rc, _, err = call(capsys, "calibrate", "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv",
                      "--method", "platt", "--out", tmp_path / "c.npz")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", tmp_path / "c.npz", "--probs", tmp_path / "s.csv", "--out", tmp_path / "a.csv")
    assert rc == 0, err
    out = pd.read_csv(tmp_path / "a.csv", dtype={"prediction": str})
    assert list(out.columns) == ["p_False", "p_True", "prediction"]
    # Platt scaling keeps the order: the calibrated P(True) ranks the rows as P(True) does
    from scipy.stats import spearmanr

    assert spearmanr(out["p_True"], probs[:, 1]).statistic > 0.99
    assert set(out["prediction"]) <= {"False", "True"}
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "a.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0 and doc["metrics"]["accuracy"] > 0.7


# --------------------------------------------------------------------------- one plain column named for a class


def test_one_false_column_is_read_as_p_false(capsys, tmp_path):
    """``DataFrame(proba, columns=clf.classes_)[[False]]`` was read as P(True): accuracy 0.05 for 0.95."""
    probs, y = _yes_no(seed=4, prevalence=0.1)
    pd.DataFrame({"False": probs[:, 0]}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    accuracy, loss = _sklearn(probs, y)
    assert rc == 0 and doc["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert doc["metrics"]["log_loss"] == pytest.approx(loss) and "read as P(class 1)" not in err


@pytest.mark.parametrize("name, column", [("p_False", 0), ("p_True", 1)])
def test_one_p_false_or_p_true_column_over_bool_labels(capsys, tmp_path, name, column):
    """A single ``p_False`` was refused: "the other class has no name", though bool labels order them."""
    probs, y = _yes_no(seed=5)
    pd.DataFrame({name: probs[:, column]}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0, err
    assert doc["classes"] == ["False", "True"]
    assert doc["metrics"]["log_loss"] == pytest.approx(_sklearn(probs, y)[1])


def test_one_false_logit_column_is_the_log_odds_of_false(capsys, tmp_path):
    """``--logits`` reads a ``False`` column as the log-odds of False, as ``logit_0`` is class 0's."""
    probs, y = _yes_no(seed=6)
    z_false = np.log(probs[:, 0] / probs[:, 1])
    pd.DataFrame({"False": z_false}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, _ = _evaluate(capsys, "--logits", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0 and doc["metrics"]["log_loss"] == pytest.approx(_sklearn(probs, y)[1], rel=1e-6)


def test_one_column_headed_0_holding_class_0_is_refused_when_the_labels_show_it(capsys, tmp_path):
    """``DataFrame(proba)[[0]]`` read as P(class 1) scored accuracy 0.05 for 0.95, exit 0. The header ``0`` is
    also pandas' over an unnamed column (``pd.Series(proba[:, 1])``), so it is refused with both ways out;
    ``--classes 0,1`` reads it as class 0's, as its name says."""
    probs, y = _yes_no(seed=7, prevalence=0.1)
    pd.DataFrame(probs)[[0]].to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y.astype(int)}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 1 and doc["exit_code"] == 1
    line = error_line(err)
    assert "headed '0'" in line and "--classes 0,1" in line and "p_0" in line
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv", "--classes", "0,1")
    assert rc == 0 and doc["metrics"]["accuracy"] == pytest.approx(_sklearn(probs, y)[0])


def test_one_column_headed_0_holding_class_1_is_read_as_before(capsys, tmp_path):
    """``pd.Series(proba[:, 1]).to_csv()`` heads P(class 1) ``0`` too: still read as P(class 1), warned."""
    probs, y = _yes_no(seed=8, prevalence=0.1)
    pd.Series(probs[:, 1]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y.astype(int)}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, err = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0 and doc["metrics"]["accuracy"] == pytest.approx(_sklearn(probs, y)[0])
    assert "read as P(class 1)" in err and "--classes 0,1" in err


# --------------------------------------------------------------------------- outputs and messages


def test_predict_writes_a_bool_class_as_the_p_columns_name_it(capsys, tmp_path):
    """``prediction`` was written ``false``/``true`` beside ``p_False``/``p_True``."""
    from test_cli_binary_round_r26 import _bool_model_predictions  # fit on a bool target, then predict

    out, _ = _bool_model_predictions(capsys, tmp_path, ".csv")
    lines = out.read_text().splitlines()
    assert "p_False" in lines[0]
    assert {line.rsplit(",", 1)[1].strip('"') for line in lines[1:]} <= {"False", "True"}


def test_metrics_json_says_the_brier_scale(capsys, tmp_path):
    probs, y = _yes_no(seed=10)
    pd.DataFrame(probs, columns=["p_False", "p_True"]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"outcome": y}).to_csv(tmp_path / "y.csv", index=False)
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0
    brier = float(np.mean(np.sum((probs - np.column_stack([~y, y])) ** 2, axis=1)))
    assert doc["metrics"]["brier"] == pytest.approx(brier)  # the value is unchanged: 0-2 scale
    assert "0 to 2" in doc["metrics"]["brier_scale"] and "half" in doc["metrics"]["brier_scale"]


def test_minus_one_plus_one_labels_get_a_classes_hint(capsys, tmp_path):
    probs, y = _yes_no(seed=11)
    pd.DataFrame({"score": probs[:, 1]}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"y": np.where(y, 1, -1)}).to_csv(tmp_path / "y.csv", index=False)
    rc, _, err = call(capsys, "evaluate", "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv")
    assert rc == 1 and "--classes -1,1" in error_line(err)
    rc, doc, _ = _evaluate(capsys, "--probs", tmp_path / "s.csv", "--labels", tmp_path / "y.csv", "--classes", "-1,1")
    assert rc == 0 and doc["metrics"]["log_loss"] == pytest.approx(_sklearn(probs, y)[1])
