"""Id columns, one rule everywhere (audit O of 2026-12-07: a clinician's yes/no workflow).

A scores file ``patient_id,score`` (score = log-odds) was read as two logit columns (accuracy 0.65,
log-loss 1786 for sklearn's 0.975 / 0.175; calibrate saved T = 8010 and called it calibrated),
because the score reader knew ids named ``id``/``row_id`` but not ``patient_id``, which the row
matcher calls an id. ``fit`` used ``patient_id`` as a feature without a word (later ids moved a
prediction by up to 1.000). One unnamed probability column with ``--classes yes,no`` was read as
P(no) without a word (accuracy 0.025 for 0.975). Non-numeric, missing and date cells got no hint.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit.data import write_columns

pd = pytest.importorskip("pandas")


def _yes_no(n=200, seed=0):
    """Labels (True for 'yes'), log-odds of 'yes' of a decent model, and shuffled patient ids."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    logodds = np.where(y, 2.0, -2.0) + rng.normal(size=n)
    ids = rng.permutation(np.arange(5000, 5000 + n))
    return y, logodds, ids


def _sklearn_metrics(y, p_yes):
    from sklearn.metrics import accuracy_score, log_loss

    return accuracy_score(y, p_yes > 0.5), log_loss(y, p_yes)


def _evaluate_json(capsys, *args):
    rc, out, err = call(capsys, "evaluate", *map(str, args), "--json")
    assert rc == 0, err
    return json.loads(out), err


# --------------------------------------------------------------------------- 1. ids are never scores


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
@pytest.mark.parametrize("id_name", ["patient_id", "id", "sampleID"])
def test_an_id_beside_one_log_odds_column_is_left_out_and_matches_rows(capsys, tmp_path, id_name, suffix):
    y, logodds, ids = _yes_no()
    scores = write_columns(tmp_path / f"scores{suffix}", {id_name: ids, "score": logodds})
    labels = tmp_path / "labels.csv"
    # the labels in another row order: matched on the id, not by position
    order = np.argsort(ids)
    pd.DataFrame({id_name: ids[order], "outcome": np.where(y, "yes", "no")[order]}).to_csv(labels, index=False)
    acc, loss = _sklearn_metrics(y, 1 / (1 + np.exp(-logodds)))
    got, err = _evaluate_json(capsys, "--logits", scores, "--labels", labels, "--label-column", "outcome",
                              "--classes", "no,yes")
    assert got["metrics"]["accuracy"] == pytest.approx(acc)
    assert got["metrics"]["log_loss"] == pytest.approx(loss, rel=1e-9)
    assert id_name in got["ignored_columns"]
    assert "has no column" not in err  # the false "scores.csv has no column 'patient_id'" warning


def test_calibrate_leaves_the_id_out(capsys, tmp_path):
    y, logodds, ids = _yes_no()
    scores = write_columns(tmp_path / "scores.csv", {"patient_id": ids, "score": logodds})
    labels = write_columns(tmp_path / "labels.csv", {"patient_id": ids, "outcome": np.where(y, "yes", "no")})
    rc, out, err = call(capsys, "calibrate", "--logits", str(scores), "--labels", str(labels), "--label-column",
                        "outcome", "--classes", "no,yes", "--method", "temperature",
                        "--out", str(tmp_path / "cal.npz"), "--json")
    assert rc == 0, err
    temperature = json.loads(out)["calibrator"]["temperature"]
    assert 0.2 < temperature < 5, temperature  # 8010 with the id read as a second logit


def test_an_id_beside_one_probability_column_is_left_out(capsys, tmp_path):
    """The --probs form was refused with "(raw scores? pass them with --logits)", which led to the
    same wrong answer."""
    y, logodds, ids = _yes_no()
    p = 1 / (1 + np.exp(-logodds))
    risk = write_columns(tmp_path / "risk.csv", {"patient_id": ids, "risk": p})
    labels = write_columns(tmp_path / "labels.csv", {"patient_id": ids, "outcome": np.where(y, "yes", "no")})
    acc, loss = _sklearn_metrics(y, p)
    got, _ = _evaluate_json(capsys, "--probs", risk, "--labels", labels, "--label-column", "outcome",
                            "--classes", "no,yes")
    assert got["metrics"]["accuracy"] == pytest.approx(acc)
    assert got["metrics"]["log_loss"] == pytest.approx(loss, rel=1e-9)


def test_text_ids_are_left_out_too(capsys, tmp_path):
    y, logodds, ids = _yes_no()
    text_ids = np.array([f"P{i:05d}" for i in ids])
    scores = write_columns(tmp_path / "scores.csv", {"patient_id": text_ids, "score": logodds})
    labels = write_columns(tmp_path / "labels.csv", {"patient_id": text_ids, "outcome": np.where(y, "yes", "no")})
    got, _ = _evaluate_json(capsys, "--logits", scores, "--labels", labels, "--label-column", "outcome",
                            "--classes", "no,yes")
    assert got["metrics"]["accuracy"] == pytest.approx(_sklearn_metrics(y, 1 / (1 + np.exp(-logodds)))[0])


def test_an_id_named_column_of_fractions_out_of_range_is_not_sent_to_logits(capsys, tmp_path):
    """A column named like an id that holds fractions stays a score column (it may be a class), but a
    range error it causes names it, not --logits."""
    rng = np.random.default_rng(1)
    p = rng.random(50)
    path = write_columns(tmp_path / "p2.csv", {"patient_id": rng.random(50) * 1000, "risk": p})
    labels = write_columns(tmp_path / "y.csv", {"outcome": rng.integers(0, 2, 50)})
    rc, _, err = call(capsys, "evaluate", "--probs", str(path), "--labels", str(labels), "-q")
    line = error_line(err)
    assert rc == 1 and "--logits" not in line and "'patient_id'" in line and "--ignore patient_id" in line, line


# --------------------------------------------------------------------------- 2. fit: ids are not features


def _cohort(tmp_path, id_name):
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    X = d.data.iloc[:, :4]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    frame = pd.concat([pd.DataFrame({id_name: np.arange(1000, 1000 + len(X))}), X], axis=1)
    frame["diagnosis"] = np.where(d.target == 0, "malignant", "benign")
    path = tmp_path / f"cohort_{id_name}.csv"
    frame.iloc[:300].to_csv(path, index=False)
    return path, frame


@pytest.mark.parametrize("id_name", ["patient_id", "id"])
def test_fit_leaves_id_columns_out_of_the_features(capsys, tmp_path, id_name):
    path, frame = _cohort(tmp_path, id_name)
    model = tmp_path / "m.npz"
    rc, out, err = call(capsys, "fit", str(path), "--target", "diagnosis", "--out", str(model), "--no-report",
                        "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["n_features"] == 4 and got["ignored_columns"] == [id_name]
    said = [w for w in got["warnings"] if repr(id_name) in w]
    assert said and "not a feature" in said[0] and "rename" in said[0], got["warnings"]
    # predict on the same patients under later ids gives the same probabilities
    new = frame.iloc[300:].copy()
    later = new.copy()
    later[id_name] += 5000
    new.to_csv(tmp_path / "new.csv", index=False)
    later.to_csv(tmp_path / "later.csv", index=False)
    for name in ("new", "later"):
        rc, _, err = call(capsys, "predict", str(model), str(tmp_path / f"{name}.csv"), "--out",
                          str(tmp_path / f"p_{name}.csv"), "--target", "diagnosis", "-q")
        assert rc == 0, err
    a, b = pd.read_csv(tmp_path / "p_new.csv"), pd.read_csv(tmp_path / "p_later.csv")
    np.testing.assert_allclose(a["p_malignant"], b["p_malignant"], rtol=0, atol=1e-12)


def test_fit_keeps_an_id_named_column_of_fractions_as_a_feature(capsys, tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 2))
    path = write_columns(tmp_path / "d.csv", {"lab_id": X[:, 0], "x": X[:, 1], "y": (X.sum(1) > 0).astype(int)})
    rc, out, err = call(capsys, "fit", str(path), "--target", "y", "--out", str(tmp_path / "m.npz"), "--no-report",
                        "--json")
    assert rc == 0, err
    assert json.loads(out)["n_features"] == 2


# --------------------------------------------------------------------------- 3. one unnamed column's class


def test_one_unnamed_probability_column_says_which_class_it_scores(capsys, tmp_path):
    y, logodds, _ = _yes_no()
    p_yes = 1 / (1 + np.exp(-logodds))
    risk = write_columns(tmp_path / "risk.csv", {"risk": p_yes})
    labels = write_columns(tmp_path / "labels.csv", {"outcome": np.where(y, "yes", "no")})
    base = ["evaluate", "--probs", str(risk), "--labels", str(labels), "--label-column", "outcome"]
    rc, out, err = call(capsys, *base, "--classes", "yes,no")
    assert rc == 0, err
    assert "column 'risk' read as P('no'), the second class of --classes" in err, err
    assert "other class order" in out, out  # accuracy 0.025 where always 'no' scores 0.65
    rc, out, err = call(capsys, *base, "--classes", "no,yes")
    assert rc == 0 and "column 'risk' read as P('yes')" in err and "other class order" not in out


def test_chance_legend_names_a_swap_only_when_significant():
    from softmaxkit.cli._evaluation import chance_legend

    swapped = chance_legend({"n": 200, "accuracy": 0.025, "majority_rate": 0.65})
    assert len(swapped) == 1 and "other class order" in swapped[0]
    noise = chance_legend({"n": 200, "accuracy": 0.60, "majority_rate": 0.65})
    assert len(noise) == 1 and "other class order" not in noise[0]
    few = chance_legend({"n": 10, "accuracy": 0.0, "majority_rate": 0.6})
    assert len(few) == 1 and "other class order" not in few[0]


# --------------------------------------------------------------------------- 4. cell errors with hints


def test_a_text_feature_cell_says_no_categorical_encoding(capsys, tmp_path):
    rng = np.random.default_rng(3)
    path = write_columns(tmp_path / "d.csv", {"age": rng.integers(20, 80, 40), "sex": np.array(["F", "M"] * 20),
                                              "y": np.tile([0, 1], 20)})
    rc, _, err = call(capsys, "fit", str(path), "--target", "y", "--out", str(tmp_path / "m.npz"), "--no-report")
    line = error_line(err)
    assert rc == 1 and "'F'" in line and "column 'sex'" in line and "one-hot" in line and "--ignore sex" in line, line


@pytest.mark.parametrize("cell", ["", "NA", "?"])
def test_a_missing_feature_cell_says_no_imputation(capsys, tmp_path, cell):
    path = tmp_path / "d.csv"
    rows = [f"{i},{i % 2}" for i in range(40)]
    rows[5] = f"{cell},1"
    path.write_text("age,y\n" + "\n".join(rows) + "\n")
    rc, _, err = call(capsys, "fit", str(path), "--target", "y", "--out", str(tmp_path / "m.npz"), "--no-report")
    line = error_line(err)
    assert rc == 1 and "impute" in line, line


def test_a_datetime_cell_is_quoted_as_written(capsys, tmp_path):
    path = tmp_path / "d.csv"
    rows = [f"2020-08-{i % 28 + 1:02d} 10:30:00,{i},{i % 2}" for i in range(40)]
    path.write_text("visit,age,y\n" + "\n".join(rows) + "\n")
    rc, _, err = call(capsys, "fit", str(path), "--target", "y", "--out", str(tmp_path / "m.npz"), "--no-report")
    line = error_line(err)
    assert rc == 1 and "'2020-08-01 10:30:00'" in line, line
