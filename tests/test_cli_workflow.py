"""The CLI as a workflow (issue 16): columns by name, commands that chain, all-or-nothing outputs,
values that overflow, and the messages of each failure.

Iris from scikit-learn's bundled data, written as a user would have it: text labels in a
``species`` column, and for prediction the feature columns shuffled.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import ENV, call, error_line, run_cli
import softmaxkit as sk
from softmaxkit.cli import main
from softmaxkit.data import read_columns, write_columns
from softmaxkit.io import read_state

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# The loaded models were fitted with column names; the oracle calls below pass plain arrays.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries that a write left behind."""
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workflow")


@pytest.fixture(scope="module")
def iris(work) -> dict:
    from sklearn.datasets import load_iris

    raw = load_iris()
    species = np.asarray(raw.target_names)[raw.target]
    cols = {name: raw.data[:, j] for j, name in enumerate(FEATURES)}
    train = write_columns(work / "iris.csv", {**cols, "species": species})
    # Shuffled columns, the label first, and an extra id column the model never saw.
    order = ["species", "petal_width", "id", "sepal_length", "petal_length", "sepal_width"]
    shuffled = {**cols, "species": species, "id": np.arange(150)}
    new = write_columns(work / "iris_shuffled.csv", {k: shuffled[k] for k in order})
    labels = write_columns(work / "species.csv", {"species": species})
    return {"train": train, "shuffled": new, "labels": labels, "X": raw.data, "species": species}


@pytest.fixture(scope="module")
def model(work, iris) -> Path:
    out = work / "iris.npz"
    assert main(["fit", str(iris["train"]), "--target", "species", "--out", str(out), "--no-report", "-q"]) == 0
    return out


# --------------------------------------------------------------------------- 1. columns by name


def test_model_file_remembers_feature_and_target_names(model):
    _, meta, _ = read_state(model)
    assert meta["feature_names_in"] == FEATURES and meta["target_name"] == "species"
    loaded = sk.load(model)
    assert list(loaded.feature_names_in_) == FEATURES and loaded.target_name_ == "species"


def test_predict_matches_columns_by_name_in_any_order(capsys, work, iris, model):
    """Reversed/shuffled columns once gave accuracy 0.333 with exit code 0."""
    rc, out, _ = call(capsys, "predict", model, iris["shuffled"], "--out", work / "p_shuffled.csv")
    assert rc == 0
    assert "Ignored columns of" in out and "'species'" in out and "'id'" in out
    probs = np.column_stack([c.to_numpy() for name, c in read_columns(work / "p_shuffled.csv").items()
                             if name.startswith("p_")])
    expected = sk.load(model).predict_proba(iris["X"])
    np.testing.assert_allclose(probs, expected, rtol=1e-12, atol=1e-300)
    rc, out, _ = call(capsys, "evaluate", "--probs", work / "p_shuffled.csv", "--labels", iris["labels"], "--json")
    assert rc == 0 and json.loads(out)["metrics"]["accuracy"] > 0.95


def test_training_file_with_its_label_column_predicts(capsys, work, iris, model):
    """'has 5 feature columns but the model expects 4' although the model knows its target."""
    rc, out, err = call(capsys, "predict", model, iris["train"], "--out", work / "p_train.csv", "--json")
    assert rc == 0, err
    assert json.loads(out)["ignored_columns"] == ["species"]


def test_missing_feature_column_is_named(capsys, work, iris, model):
    cols = {k: v for k, v in read_columns(iris["train"]).items() if k != "petal_length"}
    path = write_columns(work / "no_petal_length.csv", cols)
    rc, _, err = call(capsys, "predict", model, path, "--out", work / "never.csv")
    assert rc == 1
    assert "no_petal_length.csv: no column 'petal_length', which the model was trained on" in error_line(err)
    assert not (work / "never.csv").exists()


def test_file_without_names_is_read_by_position(capsys, work, iris, model):
    np.save(work / "X.npy", iris["X"])
    rc, _, err = call(capsys, "predict", model, work / "X.npy", "--out", work / "p_npy.csv")
    assert rc == 1 and "--by-position" in error_line(err)  # the model has names; the user must vouch for the order
    rc, _, _ = call(capsys, "predict", model, work / "X.npy", "--by-position", "--out", work / "p_npy.csv")
    assert rc == 0
    first = read_columns(work / "p_npy.csv")["p_setosa"].to_numpy()
    np.testing.assert_allclose(first, sk.load(model).predict_proba(iris["X"])[:, 0], rtol=1e-12, atol=1e-300)


# --------------------------------------------------------------------------- 2. commands that chain


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_predict_output_feeds_evaluate_and_calibrate(capsys, work, iris, model, suffix):
    out = work / f"chain{suffix}"
    assert call(capsys, "predict", model, iris["shuffled"], "--out", out)[0] == 0
    rc, text, err = call(capsys, "evaluate", "--probs", out, "--labels", iris["labels"], "--json")
    assert rc == 0, err
    result = json.loads(text)
    assert result["n_classes"] == 3 and result["classes"] == ["setosa", "versicolor", "virginica"]
    # predict copies the input's row ids (the shuffled file's id column) before the scores
    assert result["ignored_columns"] == ["id", "prediction"] and result["metrics"]["accuracy"] > 0.95
    rc, _, err = call(capsys, "calibrate", "--probs", out, "--labels", iris["labels"], "--out",
                      work / f"cal_from_probs{suffix}.npz", "-q")
    assert rc == 0, err


def test_probabilities_passed_as_logits_are_refused(capsys, work, iris, model):
    """The hint 'pass them with --logits' once led to a 4-class, 0.333-accuracy answer with exit code 0."""
    out = work / "p_for_logits.csv"
    assert call(capsys, "predict", model, iris["train"], "--out", out)[0] == 0
    rc, _, err = call(capsys, "evaluate", "--logits", out, "--labels", iris["labels"])
    assert rc == 1 and "p_for_logits.csv: its p_<class> columns hold probabilities" in error_line(err)
    assert "--probs" in err


def test_logits_out_and_classes_option(capsys, work, iris, model):
    probs, logits = work / "p_lo.csv", work / "z_lo.parquet"
    assert call(capsys, "predict", model, iris["train"], "--out", probs, "--logits-out", logits)[0] == 0
    assert list(read_columns(logits)) == ["logit_setosa", "logit_versicolor", "logit_virginica"]
    rc_p, out_p, _ = call(capsys, "evaluate", "--probs", probs, "--labels", iris["labels"], "--json")
    rc_z, out_z, _ = call(capsys, "evaluate", "--logits", logits, "--labels", iris["labels"], "--json")
    assert rc_p == rc_z == 0
    mp, mz = json.loads(out_p)["metrics"], json.loads(out_z)["metrics"]
    assert mp["accuracy"] == mz["accuracy"] and abs(mp["log_loss"] - mz["log_loss"]) < 1e-9
    # A headerless logits file: names come from --classes; without them, text labels are an error.
    np.save(work / "z.npy", np.column_stack([c.to_numpy() for c in read_columns(logits).values()]))
    rc, out, _ = call(capsys, "evaluate", "--logits", work / "z.npy", "--labels", iris["labels"], "--json",
                      "--classes", "setosa,versicolor,virginica")
    assert rc == 0 and json.loads(out)["metrics"]["accuracy"] == mz["accuracy"]
    rc, _, err = call(capsys, "evaluate", "--logits", work / "z.npy", "--labels", iris["labels"])
    assert rc == 1 and "label 'setosa' is not an integer class index" in err and "--classes" in err


def test_calibrate_then_apply_to_new_logits(capsys, work, iris, model):
    logits = work / "z_cal.csv"
    assert call(capsys, "predict", model, iris["train"], "--out", work / "p_cal.csv", "--logits-out", logits)[0] == 0
    cal = work / "vector.npz"
    rc, _, err = call(capsys, "calibrate", "--logits", logits, "--labels", iris["labels"], "--method", "vector",
                      "--out", cal, "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", cal, "--logits", logits, "--out", work / "p_applied.csv")
    assert rc == 0, err
    got = read_columns(work / "p_applied.csv")
    assert list(got) == ["p_setosa", "p_versicolor", "p_virginica", "prediction"]
    z = np.column_stack([c.to_numpy() for c in read_columns(logits).values()])
    expected = sk.load(cal).predict_proba(z)
    np.testing.assert_allclose(np.column_stack([got[f"p_{c}"].to_numpy() for c in
                                                ("setosa", "versicolor", "virginica")]), expected, rtol=1e-12,
                               atol=1e-300)
    # Per-class scales cannot be applied to log-probabilities: refused instead of a wrong answer.
    rc, _, err = call(capsys, "apply", cal, "--probs", work / "p_cal.csv", "--out", work / "never.csv")
    assert rc == 1 and "needs logits (--logits)" in error_line(err) and not (work / "never.csv").exists()


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_one_vs_rest_calibrators_apply_too(capsys, work, iris, model, method):
    """apply and predict --calibrator take every calibrator 'calibrate' writes, not only the scalings."""
    logits = work / "z_ovr.csv"
    assert call(capsys, "predict", model, iris["train"], "--out", work / "p_ovr.csv", "--logits-out", logits)[0] == 0
    cal = work / f"{method}.npz"
    assert call(capsys, "calibrate", "--logits", logits, "--labels", iris["labels"], "--method", method,
                "--out", cal, "-q")[0] == 0
    rc, _, err = call(capsys, "apply", cal, "--logits", logits, "--out", work / f"p_{method}.csv")
    assert rc == 0, err
    got = read_columns(work / f"p_{method}.csv")
    z = np.column_stack([c.to_numpy() for c in read_columns(logits).values()])
    np.testing.assert_allclose(np.column_stack([got[f"p_{c}"].to_numpy() for c in ("setosa", "versicolor", "virginica")]),
                               sk.load(cal).predict_proba(z), rtol=1e-12, atol=1e-15)
    rc, _, err = call(capsys, "predict", model, iris["train"], "--calibrator", cal, "--out", work / f"q_{method}.csv")
    assert rc == 0, err


def test_minus_inf_logits_from_predict_chain_into_every_command(capsys, work, iris, model):
    """Audit: after isotonic calibration predict --logits-out wrote -inf (probability 0), which evaluate,
    calibrate and apply then refused. -inf is a logit; NaN, +inf and rows of all -inf are not."""
    logits = work / "z_iso_in.csv"
    assert call(capsys, "predict", model, iris["train"], "--out", work / "p_iso_in.csv", "--logits-out", logits)[0] == 0
    iso = work / "iso_chain.npz"
    assert call(capsys, "calibrate", "--logits", logits, "--labels", iris["labels"], "--method", "isotonic",
                "--out", iso, "-q")[0] == 0
    probs, z_out = work / "p_iso.csv", work / "z_iso.csv"
    rc, _, err = call(capsys, "predict", model, iris["train"], "--calibrator", iso, "--out", probs,
                      "--logits-out", z_out)
    assert rc == 0, err
    z = np.column_stack([c.to_numpy() for c in read_columns(z_out).values()])
    assert np.isneginf(z).any() and np.isfinite(z.max(axis=1)).all()
    rc_p, out_p, _ = call(capsys, "evaluate", "--probs", probs, "--labels", iris["labels"], "--json")
    rc_z, out_z, err = call(capsys, "evaluate", "--logits", z_out, "--labels", iris["labels"], "--json")
    assert rc_p == rc_z == 0, err
    mp, mz = json.loads(out_p)["metrics"], json.loads(out_z)["metrics"]
    assert mp["accuracy"] == mz["accuracy"] and abs(mp["log_loss"] - mz["log_loss"]) < 1e-12
    temperature = work / "t_after_iso.npz"
    rc, _, err = call(capsys, "calibrate", "--logits", z_out, "--labels", iris["labels"], "--out", temperature, "-q")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", temperature, "--logits", z_out, "--out", work / "p_t_after_iso.csv")
    assert rc == 0, err
    got = read_columns(work / "p_t_after_iso.csv")
    applied = np.column_stack([got[f"p_{c}"].to_numpy() for c in ("setosa", "versicolor", "virginica")])
    np.testing.assert_allclose(applied, sk.load(temperature).predict_proba(z), rtol=1e-12, atol=1e-300)


def test_calibrators_match_score_columns_by_name(capsys, work, iris, model):
    """Audit: a vector calibrator applied to the same logit_<class> columns in another order used the
    wrong class's scale and bias, exit 0 (P(setosa) 0.99916 instead of 0.99999...)."""
    species = ["setosa", "versicolor", "virginica"]
    logits = work / "z_named.csv"
    assert call(capsys, "predict", model, iris["train"], "--out", work / "p_named.csv", "--logits-out", logits)[0] == 0
    cal = work / "vector_named.npz"
    assert call(capsys, "calibrate", "--logits", logits, "--labels", iris["labels"], "--method", "vector",
                "--out", cal, "-q")[0] == 0
    assert sk.load(cal).class_names_ == species
    columns = read_columns(logits)
    shuffled = write_columns(work / "z_shuffled.csv", {f"logit_{c}": columns[f"logit_{c}"].to_numpy()
                                                       for c in ("virginica", "setosa", "versicolor")})
    probs = {}
    for name, path in (("in order", logits), ("shuffled", shuffled)):
        rc, _, err = call(capsys, "apply", cal, "--logits", path, "--out", work / f"p_{name.replace(' ', '_')}.csv")
        assert rc == 0, err
        got = read_columns(work / f"p_{name.replace(' ', '_')}.csv")
        probs[name] = np.column_stack([got[f"p_{c}"].to_numpy() for c in species])
    np.testing.assert_allclose(probs["shuffled"], probs["in order"], rtol=1e-12, atol=1e-300)
    # Columns without names: refused, unless --classes names them (in the file's order).
    z = np.column_stack([columns[f"logit_{c}"].to_numpy() for c in ("virginica", "setosa", "versicolor")])
    np.save(work / "z_plain.npy", z)
    rc, _, err = call(capsys, "apply", cal, "--logits", work / "z_plain.npy", "--out", work / "never.csv")
    assert rc == 1 and not (work / "never.csv").exists()
    assert ("z_plain.npy: its score columns have no class names, so they cannot be matched to the classes "
            "CALIBRATOR") in error_line(err) and "pass --classes" in err
    rc, _, err = call(capsys, "apply", cal, "--logits", work / "z_plain.npy",
                      "--classes", "virginica,setosa,versicolor",
                      "--out", work / "p_plain.csv")
    assert rc == 0, err
    got = read_columns(work / "p_plain.csv")
    np.testing.assert_allclose(np.column_stack([got[f"p_{c}"].to_numpy() for c in species]), probs["in order"],
                               rtol=1e-12, atol=1e-300)
    # A calibrator fitted on other classes is refused by predict, naming both lists.
    other = write_columns(work / "z_other.csv", {f"logit_{c}": columns[f"logit_{s}"].to_numpy()
                                                 for c, s in zip("abc", species)})
    abc = np.array(list("abc"))[np.searchsorted(species, iris["species"])]
    labels_abc = write_columns(work / "y_abc.csv", {"y": abc})
    assert call(capsys, "calibrate", "--logits", other, "--labels", labels_abc, "--method", "vector",
                "--out", work / "vector_abc.npz", "-q")[0] == 0
    rc, _, err = call(capsys, "predict", model, iris["train"], "--calibrator", work / "vector_abc.npz",
                      "--out", work / "never.csv")
    assert rc == 1 and "vector_abc.npz was fitted on the classes a, b, c, but the model" in error_line(err)


def test_apply_takes_one_binary_column_as_evaluate_and_calibrate_do(capsys, tmp_path):
    """Audit: apply refused the one-column log-odds file that calibrate had just been fitted on."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    log_odds = 3 * rng.normal(size=300) + 2 * (y - 0.5)
    write_columns(tmp_path / "z.csv", {"score": log_odds})
    write_columns(tmp_path / "y.csv", {"y": y})
    cal = tmp_path / "t.npz"
    assert call(capsys, "calibrate", "--logits", tmp_path / "z.csv", "--labels", tmp_path / "y.csv",
                "--out", cal, "-q")[0] == 0
    rc, _, err = call(capsys, "apply", cal, "--logits", tmp_path / "z.csv", "--out", tmp_path / "p.csv")
    assert rc == 0, err
    got = read_columns(tmp_path / "p.csv")
    two_columns = np.column_stack([-log_odds / 2, log_odds / 2])  # the same softmax as the log-odds
    np.testing.assert_allclose(got["p_1"].to_numpy(), sk.load(cal).predict_proba(two_columns)[:, 1], rtol=1e-12)


def test_one_named_score_column_scores_the_class_it_names(capsys, tmp_path):
    """Audit: logit_benign (the log-odds of benign) with --classes benign,malignant was read as the
    log-odds of malignant: accuracy 0.035 instead of 0.965, exit 0. The name now decides the class."""
    from sklearn.metrics import log_loss as sklearn_log_loss

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    z_benign = 2.5 * rng.normal(size=400) + 3.0 * (0.5 - y)  # class 0 = benign, 1 = malignant
    names = np.array(["benign", "malignant"])
    write_columns(tmp_path / "y.csv", {"y": names[y]})
    p_benign = 1 / (1 + np.exp(-z_benign))
    expected = sklearn_log_loss(y, np.column_stack([p_benign, 1 - p_benign]))
    files = {"logits": {"logit_benign": z_benign, "logit_malignant": -z_benign},
             "probs": {"p_benign": p_benign, "p_malignant": 1 - p_benign}}
    for option, columns in files.items():
        for name, values in columns.items():
            path = write_columns(tmp_path / f"{name}.csv", {name: values})
            rc, out, err = call(capsys, "evaluate", f"--{option}", path, "--labels", tmp_path / "y.csv",
                                "--classes", "benign,malignant", "--json")
            assert rc == 0, err
            assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-9), (option, name)
    write_columns(tmp_path / "y01.csv", {"y": y})  # integer labels: p_0 is class 0's probability
    for name, values in (("p_0", p_benign), ("p_1", 1 - p_benign)):
        path = write_columns(tmp_path / f"{name}.csv", {name: values})
        rc, out, err = call(capsys, "evaluate", "--probs", path, "--labels", tmp_path / "y01.csv", "--json")
        assert rc == 0, err
        assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-9), name
    # Audit: p_benign over integer labels without --classes was read as P(class 1), benign being 0.
    rc, _, err = call(capsys, "evaluate", "--probs", tmp_path / "p_benign.csv", "--labels", tmp_path / "y01.csv")
    assert rc == 1 and "named for the class 'benign', but the other class has no name" in err
    path = write_columns(tmp_path / "logit_cat.csv", {"logit_cat": z_benign})
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", tmp_path / "y.csv",
                      "--classes", "benign,malignant")
    assert rc == 1 and "named for the class 'cat', which is not one of --classes benign,malignant" in err


def test_integer_labels_against_named_scores_need_the_labels_order(capsys, tmp_path):
    """Audit: scikit-learn's breast-cancer labels (0 = malignant) against p_benign, p_malignant were read
    as column positions (0 = benign): accuracy 0.026, exit 0, no word. A warning with the mapping came
    next; a later audit found the same reading after ``apply`` (which writes the columns sorted) scored
    accuracy 0.0 with exit 0, so which number is which class must now be said: ``--classes`` in the
    labels' order, matched to the columns by name."""
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    path = write_columns(tmp_path / "p.csv", {"p_benign": p[:, 0], "p_malignant": p[:, 1]})
    write_columns(tmp_path / "y.csv", {"y": np.array([0, 1, 0])})
    rc, _, err = call(capsys, "evaluate", "--probs", path, "--labels", tmp_path / "y.csv")
    assert rc == 1 and "--classes" in error_line(err) and "benign" in error_line(err), err
    rc, out, err = call(capsys, "evaluate", "--probs", path, "--labels", tmp_path / "y.csv", "--classes",
                        "malignant,benign", "--json")
    assert rc == 0, err
    # 0 = malignant: rows 1 and 3 give it 0.1 and 0.3, row 2 gives benign 0.2
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(-np.mean(np.log([0.1, 0.2, 0.3])), rel=1e-12)


def test_end_to_end_text_labels_and_shuffled_columns(tmp_path, iris):
    """fit -> predict -> evaluate, and calibrate -> apply, as separate processes on CSV files."""
    r = run_cli("fit", iris["train"], "--target", "species", "--out", tmp_path / "m.npz", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("predict", tmp_path / "m.npz", iris["shuffled"], "--out", tmp_path / "p.csv",
                "--logits-out", tmp_path / "z.csv")
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", "--probs", tmp_path / "p.csv", "--labels", iris["shuffled"], "--label-column",
                "species", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["accuracy"] > 0.95
    r = run_cli("calibrate", "--logits", tmp_path / "z.csv", "--labels", iris["labels"], "--out",
                tmp_path / "t.npz", "--holdout", "0.3", "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("apply", tmp_path / "t.npz", "--logits", tmp_path / "z.csv", "--out", tmp_path / "pc.csv")
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", "--probs", tmp_path / "pc.csv", "--labels", iris["labels"], "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["accuracy"] > 0.95  # temperature keeps the argmax


def test_calibrator_with_other_class_count_names_the_file(capsys, work, iris, model):
    rng = np.random.default_rng(0)
    np.save(work / "z10.npy", rng.normal(size=(200, 10)))
    write_columns(work / "y10.csv", {"y": rng.integers(0, 10, 200)})
    cal = work / "ten.npz"
    assert call(capsys, "calibrate", "--logits", work / "z10.npy", "--labels", work / "y10.csv", "--out", cal,
                "-q")[0] == 0
    rc, _, err = call(capsys, "predict", model, iris["train"], "--calibrator", cal, "--out", work / "never.csv")
    assert rc == 1
    assert f"--calibrator {cal}: the calibrator was fitted on 10 classes, but the model {model} has 3" in err


# --------------------------------------------------------------------------- 3. all or nothing


def test_report_dir_never_overwrites_user_files(capsys, tmp_path, iris):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "metrics.json").write_text("my own numbers")
    rc, _, err = call(capsys, "fit", iris["train"], "--target", "species", "--out", tmp_path / "m.npz",
                      "--report", rep, "--max-iter", "20")
    assert rc == 1 and "was not written by softmaxkit; refusing to overwrite it" in error_line(err)
    assert (rep / "metrics.json").read_text() == "my own numbers"
    assert not (tmp_path / "m.npz").exists() and sorted(os.listdir(rep)) == ["metrics.json"]
    # A directory softmaxkit wrote may be rewritten.
    rep2 = tmp_path / "rep2"
    for _ in range(2):
        rc, _, err = call(capsys, "fit", iris["train"], "--target", "species", "--out", tmp_path / "m2.npz",
                          "--report", rep2, "--max-iter", "20", "-q")
        assert rc == 0, err


def test_report_path_that_is_a_file_writes_nothing(capsys, tmp_path, iris):
    (tmp_path / "taken").write_text("x")
    rc, _, err = call(capsys, "fit", iris["train"], "--target", "species", "--out", tmp_path / "m.npz",
                      "--report", tmp_path / "taken")
    assert rc == 1 and "is not a directory" in error_line(err)
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_full_disk_writes_nothing(tmp_path, iris):
    """ulimit -f: once exit code 1 after the model (and part of the report) were written."""

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # the report's PNGs exceed it

    r = run_cli("fit", iris["train"], "--target", "species", "--out", tmp_path / "m.npz", "--max-iter", "20",
                cwd=tmp_path, preexec_fn=small_files)
    assert r.returncode == 1 and "softmaxkit: error:" in r.stderr and "Traceback" not in r.stderr
    assert os.listdir(tmp_path) == []  # no model, no report directory, no temporaries


def test_sigterm_during_a_write_removes_temporaries(tmp_path, iris, model):
    script = (
        "import os, signal, sys\n"
        "import pyarrow.csv as pcsv\n"
        "real = pcsv.write_csv\n"
        "def write_then_die(*a, **k):\n"
        "    real(*a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # the file is written, not yet renamed\n"
        "pcsv.write_csv = write_then_die\n"
        "from softmaxkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    r = subprocess.run([sys.executable, "-c", script, "predict", str(model), str(iris["train"]), "--target",
                        "species", "--out", str(tmp_path / "p.csv")], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 143 and "softmaxkit: terminated" in r.stderr
    assert os.listdir(tmp_path) == []


def test_unseen_label_at_predict_writes_nothing(capsys, tmp_path, iris, model):
    cols = {k: v.to_numpy(zero_copy_only=False) for k, v in read_columns(iris["train"]).items()}
    cols["species"] = cols["species"].copy()
    cols["species"][7] = "daisy"
    path = write_columns(tmp_path / "new.csv", cols)
    rc, _, err = call(capsys, "predict", model, path, "--target", "species", "--out", tmp_path / "p.csv")
    assert rc == 1 and "row 8 (line 9), column 'species': label 'daisy' was not seen in training" in err
    assert not (tmp_path / "p.csv").exists() and leftovers(tmp_path) == []


def test_outputs_honour_the_umask(capsys, tmp_path, iris, model):
    old = os.umask(0o022)
    try:
        rc, _, _ = call(capsys, "predict", model, iris["train"], "--target", "species", "--out", tmp_path / "p.csv")
        rc2, _, _ = call(capsys, "fit", iris["train"], "--target", "species", "--out", tmp_path / "m.npz",
                         "--max-iter", "20", "-q")
    finally:
        os.umask(old)
    assert rc == rc2 == 0
    for path in (tmp_path / "p.csv", tmp_path / "m.npz", tmp_path / "m-report" / "report.html"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_json_failure_prints_an_error_document(capsys, tmp_path):
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "nope.csv", "--labels", tmp_path / "y.csv",
                        "--json")
    assert rc == 1 and json.loads(out) == {"error": f"{tmp_path / 'nope.csv'}: no such file", "exit_code": 1}


def test_usage_errors_exit_2_before_reading_data(tmp_path):
    missing = tmp_path / "does-not-exist.csv"
    for extra in (["--alpha", "-1"], ["--hidden", "0"], ["--max-iter", "0"]):
        r = run_cli("fit", missing, "--target", "y", "--out", tmp_path / "m.npz", *extra, "--json")
        assert r.returncode == 2, (extra, r.stderr)
        assert "no such file" not in r.stderr and json.loads(r.stdout)["exit_code"] == 2
    assert os.listdir(tmp_path) == []


def test_out_is_a_directory(capsys, tmp_path, iris, model):
    rc, _, err = call(capsys, "predict", model, iris["train"], "--out", tmp_path)
    assert rc == 1 and f"--out {tmp_path} is an existing directory; give a file name" in error_line(err)


def test_unwritable_directory_is_named_before_training(capsys, tmp_path, iris, monkeypatch):
    target = tmp_path / "ro"
    target.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == target else real_access(p, mode))
    fitted = []
    monkeypatch.setattr(sk.SoftmaxClassifier, "fit", lambda self, *a, **k: fitted.append(1))
    rc, _, err = call(capsys, "fit", iris["train"], "--target", "species", "--out", target / "m.npz")
    line = error_line(err)
    assert rc == 1 and f"cannot write in directory {target} (permission denied)" in line and ".tmp" not in line
    assert fitted == []


def test_holdout_that_leaves_nothing_to_fit(capsys, work, iris, model):
    logits = work / "z_hold.csv"
    assert call(capsys, "predict", model, iris["train"], "--out", work / "p_hold.csv", "--logits-out", logits)[0] == 0
    rc, _, err = call(capsys, "calibrate", "--logits", logits, "--labels", iris["labels"], "--out",
                      work / "never.npz", "--holdout", "0.999")
    assert rc == 1 and "--holdout 0.999 of 150 rows leaves 0 rows to fit" in error_line(err)


def test_empty_and_near_duplicate_labels(capsys, tmp_path, iris):
    cols = {k: v.to_numpy(zero_copy_only=False) for k, v in read_columns(iris["train"]).items()}
    labels = cols["species"].astype(object)
    labels[4] = ""
    write_columns(tmp_path / "empty.csv", {**cols, "species": labels})
    rc, _, err = call(capsys, "fit", tmp_path / "empty.csv", "--target", "species", "--out", tmp_path / "m.npz")
    assert rc == 1 and "row 5 (line 6), column 'species': empty label" in error_line(err)
    labels[4] = "Setosa "
    write_columns(tmp_path / "near.csv", {**cols, "species": labels})
    rc, _, err = call(capsys, "fit", tmp_path / "near.csv", "--target", "species", "--out", tmp_path / "m.npz",
                      "--no-report", "--max-iter", "20")
    assert rc == 0
    assert "softmaxkit: warning:" in err and "'Setosa ' and 'setosa' differ only in case or surrounding spaces" in err


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_stray_label_trains_and_says_the_alpha_search_was_skipped(capsys, tmp_path, iris, seed):
    """Audit: one mistyped label (a class of one row) leaves alpha="auto" nothing to hold out; fit
    printed "alpha = auto (chose 1 by held-out log-loss)" and gave no warning. A second audit: with
    --seed 0 the row was held out instead (a quarter of seeds), the class silently left the model and
    the only warning was "1 held-out rows belong to classes with too few rows"."""
    cols = {k: v.to_numpy(zero_copy_only=False) for k, v in read_columns(iris["train"]).items()}
    labels = cols["species"].astype(object)
    labels[7] = "setosa."
    write_columns(tmp_path / "typo.csv", {**cols, "species": labels})
    rc, out, err = call(capsys, "fit", tmp_path / "typo.csv", "--target", "species", "--out", tmp_path / "m.npz",
                        "--seed", seed)
    assert rc == 0
    assert "setosa." in read_state(tmp_path / "m.npz")[1]["classes"]["values"]
    assert "held-out rows belong to classes" not in err
    assert "alpha = 1 (auto search skipped: class 'setosa.' has 1 row)" in out and "chose" not in out
    assert "softmaxkit: warning: SoftmaxClassifier: alpha='auto' searched no penalty: class 'setosa.' has 1 row" in err
    metrics = json.loads((tmp_path / "m-report" / "metrics.json").read_text())
    assert metrics["model"]["alpha_search_skipped"] == "class 'setosa.' has 1 row"
    report = (tmp_path / "m-report" / "report.html").read_text()
    assert "alpha = 1 (auto search skipped: class &#x27;setosa.&#x27; has 1 row)" in report


def test_split_keeps_single_row_classes_in_training_and_stratifies_the_rest():
    from softmaxkit.cli.fit import _split

    y = np.array(["a"] * 40 + ["b"] * 20 + ["typo", "other"])
    for seed in range(20):
        train, held = _split(y, 0.25, seed)
        assert {60, 61} <= set(train) and not {60, 61} & set(held)
        assert sorted([*train, *held]) == list(range(62))
        assert (y[held] == "b").sum() in (5, 6)  # stratified: 16 held out of 40 a and 20 b
    plain = np.repeat(["a", "b", "c"], 10)  # no single rows: the split scikit-learn gives, as before
    from sklearn.model_selection import train_test_split
    expected = train_test_split(np.arange(30), test_size=8, stratify=plain, random_state=3)
    for got, want in zip(_split(plain, 0.25, 3), expected):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- 4. numbers that overflow


def test_huge_feature_at_predict_names_row_and_column(capsys, tmp_path, iris, model):
    cols = {k: v.to_numpy(zero_copy_only=False) for k, v in read_columns(iris["train"]).items()}
    cols["petal_width"] = cols["petal_width"].copy()
    cols["petal_width"][2] = 1e308
    path = write_columns(tmp_path / "huge.csv", cols)
    rc, _, err = call(capsys, "predict", model, path, "--out", tmp_path / "p.csv")
    assert rc == 1
    assert "huge.csv: row 3 (line 4), column 'petal_width': value 1e+308 is too large" in error_line(err)
    assert not (tmp_path / "p.csv").exists()


def test_huge_feature_in_predict_proba():
    from softmaxkit._mlp import FeatureOverflowError

    X = np.random.default_rng(0).normal(size=(60, 3))
    # A weak, fixed penalty: feature 1's weights exceed 1, so -1e308 times them overflows
    # (with alpha="auto" a strong penalty can keep them below 1, and the logits finite).
    clf = sk.SoftmaxClassifier(alpha=1e-4, max_iter=50, random_state=0).fit(X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0))
    assert np.abs(clf.coefs_[0][1]).max() > 1.0
    bad = X[:5].copy()
    bad[3, 1] = -1e308
    with pytest.raises(FeatureOverflowError, match=r"X\[3, 1\] = -1e\+308 is too large"):
        clf.predict_proba(bad)
    # Large but not overflowing: computed, rows sum to 1, no NaN.
    big = X[:5] * 1e300
    p = clf.predict_proba(big)
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)


@pytest.mark.parametrize("alpha", [1.0, "auto"])
def test_huge_feature_in_fit_is_refused_naming_row_and_column(alpha):
    """The estimator itself refuses a feature whose square overflows: with a float alpha the fit
    used to ignore the feature silently (its scale became inf); with "auto" it blamed another row."""
    from softmaxkit._mlp import FeatureOverflowError

    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    X[7, 2] = 1e308
    with pytest.raises(FeatureOverflowError, match=r"X\[7, 2\] = 1e\+308 is too large to train on"):
        sk.SoftmaxClassifier(alpha=alpha).fit(X, y)
    X[7, 2] = 1e150  # large, and its square still fits: trained, finite
    assert np.isfinite(sk.SoftmaxClassifier(alpha=1.0, max_iter=50).fit(X, y).predict_proba(X)).all()


def test_huge_feature_at_fit_names_row_and_column(capsys, tmp_path, iris):
    cols = {k: v.to_numpy(zero_copy_only=False) for k, v in read_columns(iris["train"]).items()}
    cols["sepal_width"] = cols["sepal_width"].copy()
    cols["sepal_width"][10] = 1e308
    path = write_columns(tmp_path / "huge.csv", cols)
    rc, _, err = call(capsys, "fit", path, "--target", "species", "--out", tmp_path / "m.npz")
    assert rc == 1 and "huge.csv: row 11 (line 12), column 'sepal_width': value 1e+308 is too large to train on" in err
    assert "probs must be finite" not in err


# --------------------------------------------------------------------------- 6. streaming scores: same numbers


@pytest.mark.parametrize("given", ["logits", "probs"])
def test_blockwise_scores_equal_the_whole_matrix(monkeypatch, given):
    """The CLI scores large files block by block; every number must equal the one-shot metrics."""
    from softmaxkit import metrics, softmax
    from softmaxkit.cli import _adapters

    rng = np.random.default_rng(1)
    z = rng.normal(size=(1000, 7)) * rng.uniform(0.1, 4, size=(1000, 1))  # confidences down to ~1/7
    y = rng.integers(0, 7, 1000)
    p = softmax(z, axis=-1)
    monkeypatch.setattr(_adapters, "SCORE_BLOCK_ROWS", 97)  # many blocks, a ragged last one
    summary, _ = _adapters.summarize(y, **({"logits": z} if given == "logits" else {"probs": p}))
    ece = metrics.expected_calibration_error(y, p)
    loss = metrics.log_loss(y, logits=z) if given == "logits" else metrics.log_loss(y, probs=p)
    assert summary["accuracy"] == np.mean(np.argmax(p, 1) == y)
    assert summary["log_loss"] == pytest.approx(loss, rel=1e-12)
    assert summary["brier"] == pytest.approx(metrics.brier_score(y, p), rel=1e-12)
    assert summary["ece"] == pytest.approx(ece.value, rel=1e-12, abs=1e-15)
    assert summary["ece_ci"] == pytest.approx([ece.ci_low, ece.ci_high], rel=1e-12, abs=1e-15)
    assert summary["ece_noise_floor"] == pytest.approx(ece.noise_floor, rel=1e-12, abs=1e-15)


def test_large_npy_and_parquet_scores_are_streamed(capsys, tmp_path):
    """A memory-mapped .npy and a Parquet file give the same evaluation as a CSV of the same logits."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3000, 4)).astype(np.float32)
    y = rng.integers(0, 4, 3000)
    np.save(tmp_path / "z.npy", z)
    write_columns(tmp_path / "z.parquet", {f"logit_{c}": z[:, j] for j, c in enumerate("abcd")})
    write_columns(tmp_path / "z.csv", {f"c{j}": z[:, j] for j in range(4)})
    write_columns(tmp_path / "y.csv", {"y": y})
    write_columns(tmp_path / "names.csv", {"y": np.array(list("abcd"))[y]})
    results = []
    for scores, labels in (("z.npy", "y.csv"), ("z.csv", "y.csv"), ("z.parquet", "names.csv")):
        rc, out, err = call(capsys, "evaluate", "--logits", tmp_path / scores, "--labels", tmp_path / labels, "--json")
        assert rc == 0, err
        results.append(json.loads(out)["metrics"])
    keys = ("n", "accuracy", "log_loss", "brier", "ece")
    for other in results[1:]:
        assert [other[k] for k in keys] == pytest.approx([results[0][k] for k in keys], rel=1e-9)


# --------------------------------------------------------------------------- 5. small commands stay small


def test_predict_and_evaluate_import_neither_sklearn_nor_scipy(tmp_path, iris, model):
    """About 3 s of every small command was importing scikit-learn and SciPy."""
    script = (
        "import sys\n"
        "from softmaxkit.cli import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'torch', 'matplotlib'}))\n"
    )
    rng = np.random.default_rng(0)
    np.save(tmp_path / "z.npy", rng.normal(size=(100, 3)))
    write_columns(tmp_path / "y.csv", {"y": rng.integers(0, 3, 100)})
    runs = [
        ["predict", model, iris["train"], "--target", "species", "--out", tmp_path / "p.csv", "-q"],
        ["evaluate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.csv", "-q"],
    ]
    for argv in runs:
        r = subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True,
                           timeout=120, env=ENV)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "[]", (argv[0], r.stdout)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 30 epochs: weights only
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_predict_reads_the_model_file_like_the_estimator(tmp_path, activation):
    """predict reads the saved weights without scikit-learn; its logits must be the estimator's."""
    from softmaxkit.cli._adapters import load_model

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    clf = sk.SoftmaxClassifier(hidden_layer_sizes=(7, 4), activation=activation, max_iter=30, random_state=0)
    clf.fit(X, y).save(tmp_path / "m.npz")
    saved = load_model(str(tmp_path / "m.npz"))
    assert saved.classes.tolist() == ["a", "b", "c"] and saved.n_features == 5
    np.testing.assert_allclose(sk.softmax(saved.logits(X), axis=-1), clf.predict_proba(X), rtol=1e-12, atol=1e-15)


def test_predict_says_when_target_names_a_feature(capsys, iris, model):
    """It said "no column 'petal_width', which the model was trained on" of a column the file has."""
    rc, _, err = call(capsys, "predict", model, iris["shuffled"], "--target", "petal_width", "--out",
                      iris["shuffled"].parent / "never.csv")
    assert rc == 1
    assert "--target 'petal_width' is one of the model's features, not its target" in error_line(err)
    assert "'species'" in err


def test_accuracy_card_warns_at_or_below_the_chance_level(capsys, tmp_path):
    """The "Held-out accuracy" card was green whatever the number (audit: 40% on random 50/50
    labels); it is good only above what always naming the most frequent class scores."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = rng.integers(0, 2, 80)  # labels unrelated to the features
    write_columns(tmp_path / "noise.csv", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
    rc, out, err = call(capsys, "fit", tmp_path / "noise.csv", "--target", "y", "--out", tmp_path / "m.npz")
    assert rc == 0, err
    metrics = json.loads((tmp_path / "m-report" / "metrics.json").read_text())
    held_out = metrics["held_out"]["model"]
    assert held_out["accuracy"] <= held_out["majority_rate"]
    report = (tmp_path / "m-report" / "report.html").read_text()
    assert '<div class="card warn"><div class="label">Held-out accuracy' in report
    assert "no better than always naming the most frequent class" in report
    from softmaxkit.cli._evaluation import accuracy_headline

    assert accuracy_headline({"accuracy": 0.9, "majority_rate": 0.6}, "x").tone == "good"


# --------------------------------------------------------------------------- inputs rewritten mid-command


def _rewrite_during(monkeypatch, module, name, path: Path, new: np.ndarray) -> None:
    """Make ``module.name`` save ``new`` onto ``path`` (as another process would) before it runs."""
    original = getattr(module, name)

    def rewriting(*args, **kwargs):
        np.save(path, new)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, rewriting)


def test_logits_rewritten_mid_calibrate_write_nothing(capsys, monkeypatch, tmp_path):
    """A memory-mapped ``.npy`` is read several times; a rewrite between the reads fails instead of mixing
    two files into one calibrator (before: exit 0, "before" and "after" from different files)."""
    import softmaxkit.calibration as calibration

    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((400, 3)), rng.integers(0, 3, 400)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    _rewrite_during(monkeypatch, calibration.TemperatureScaling, "fit", tmp_path / "logits.npy", 3 * np.vstack([logits, logits]))
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "logits.npy", "--labels", tmp_path / "labels.npy",
                      "--out", tmp_path / "cal.npz", "--report", tmp_path / "report")
    assert rc == 1
    assert "logits.npy changed while softmaxkit was running (its size went from" in error_line(err)
    assert not (tmp_path / "cal.npz").exists() and not (tmp_path / "report").exists()
    assert leftovers(tmp_path) == []


def test_logits_rewritten_mid_evaluate_fail_rather_than_print(capsys, monkeypatch, tmp_path):
    """Same size, new values: the printed figures would come from two files, so the command fails."""
    import softmaxkit.cli._evaluation as evaluation

    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((300, 4)), rng.integers(0, 4, 300)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    os.utime(tmp_path / "logits.npy", ns=(0, 0))  # a rewrite within the clock's resolution still changes mtime
    _rewrite_during(monkeypatch, evaluation, "score", tmp_path / "logits.npy", -logits)
    rc, out, err = call(capsys, "evaluate", "--logits", tmp_path / "logits.npy", "--labels", tmp_path / "labels.npy")
    assert rc == 1
    assert "logits.npy changed while softmaxkit was running (it was modified)" in error_line(err)


def test_unchanged_inputs_pass_the_watch(capsys, tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "logits.npy", rng.standard_normal((200, 3)))
    np.save(tmp_path / "labels.npy", rng.integers(0, 3, 200))
    rc, out, err = call(capsys, "evaluate", "--logits", tmp_path / "logits.npy", "--labels", tmp_path / "labels.npy")
    assert rc == 0, err


# --------------------------------------------------------------------------- .npy outputs lose class names


def test_npy_outputs_of_integer_classes_other_than_0_to_k_are_refused(capsys, tmp_path, iris):
    """Audit: classes 1, 2, 3 written to a .npy read back as columns 0..2; a test file holding only
    labels 1 and 2 then scored accuracy 0.02 for 0.89, exit 0."""
    rank = {"setosa": 1, "versicolor": 2, "virginica": 3}
    cols = {name: iris["X"][:, j] for j, name in enumerate(FEATURES)}
    numbered = write_columns(tmp_path / "numbered.csv",
                             {**cols, "species": np.array([rank[s] for s in iris["species"]])})
    model = tmp_path / "m.npz"
    assert main(["fit", str(numbered), "--target", "species", "--out", str(model), "--no-report", "-q"]) == 0
    for option in ("--out", "--logits-out"):
        outs = {"--out": tmp_path / "p.csv", option: tmp_path / "x.npy"}
        rc, _, err = call(capsys, "predict", model, numbered, *[a for kv in outs.items() for a in kv])
        assert rc == 1
        assert (f"{option} {tmp_path / 'x.npy'}: a .npy keeps no class names, and the model {model}'s classes are "
                "the integers 1, 2, 3") in error_line(err)
        assert not (tmp_path / "x.npy").exists() and not (tmp_path / "p.csv").exists()
    rc, _, err = call(capsys, "predict", model, numbered, "--out", tmp_path / "p.csv", "--logits-out",
                      tmp_path / "logits.csv")
    assert rc == 0, err
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "logits.csv", "--labels", numbered,
                      "--label-column", "species", "--out", tmp_path / "cal.npz")
    assert rc == 0, err
    rc, _, err = call(capsys, "apply", tmp_path / "cal.npz", "--logits", tmp_path / "logits.csv",
                      "--out", tmp_path / "q.npy")
    assert rc == 1 and "a .npy keeps no class names" in error_line(err)
    # classes 0..K-1 read back right from a .npy: allowed
    zero = write_columns(tmp_path / "zero.csv", {**cols, "species": np.array([rank[s] - 1 for s in iris["species"]])})
    assert main(["fit", str(zero), "--target", "species", "--out", str(tmp_path / "z.npz"), "--no-report", "-q"]) == 0
    rc, _, err = call(capsys, "predict", tmp_path / "z.npz", zero, "--out", tmp_path / "z.npy")
    assert rc == 0, err


def test_fit_on_zero_padded_classes_keeps_them_apart_as_parquet_does(tmp_path, capsys):
    """Classes "01", "1", "2" in a CSV trained a two-class model (pyarrow read "01" as 1), exit 0. A Parquet
    string column keeps them apart; in a CSV, where pandas reads "01" and "1" as one number, which is meant
    cannot be told, and fit refuses them (audit CJ F1), naming the spellings."""
    from softmaxkit.data import write_columns

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 300)
    X = rng.normal(size=(300, 2)) + 2.0 * codes[:, None]
    names = np.array(["01", "1", "2"])[codes]
    columns = {"a": X[:, 0], "b": X[:, 1], "label": names}
    data = write_columns(tmp_path / "train.parquet", columns)
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--alpha", "1", "--out", tmp_path / "mparquet.npz")
    assert rc == 0, err
    assert "3 classes" in out
    csv = write_columns(tmp_path / "train.csv", columns)
    rc, out, err = call(capsys, "fit", csv, "--target", "label", "--alpha", "1", "--out", tmp_path / "mcsv.npz")
    assert rc == 1 and "are the number 1 written 2 ways" in err
    rc, out, err = call(capsys, "predict", tmp_path / "mparquet.npz", tmp_path / "train.parquet", "--out", tmp_path / "p.csv")
    assert rc == 0, err
    header = (tmp_path / "p.csv").read_text().splitlines()[0]
    assert "p_01" in header and "p_1" in header and "p_2" in header
