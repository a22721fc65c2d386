"""Review audit R1 of this session's commits (repros in the audit's repro_*.py).

1. True/False labels against named classes were read as column positions: ``p_spam,p_ham`` with
   True = spam read True as 'ham' (accuracy 0.2250, log-loss 1.3265 for 0.7750 / 0.5059, exit 0).
   Against classes -1,1 or 1,2 the error named "label 0", a label the file does not hold.
2. A class named like an id (``ID``, Idaho) holding whole-number logits was left out as a row id
   without a word that named a way to keep it (accuracy 0.583 for 0.797 with ``--classes ID,NY``);
   the 3-class labels' error did not name the dropped column.
3. ``scores,preds`` in a CSV or Parquet file read as 2-class logits (accuracy 0.2425 for 0.78, exit 0).
4. float16 Parquet probabilities were scored in float64 (ECE 0.0989437, 0.0991649 from .npy/.npz).
5. A paired log-loss change whose interval was clipped at both ends printed the range of the per-row
   changes as a "paired bootstrap 95% CI".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit.data import write_columns

pd = pytest.importorskip("pandas")


def _evaluate_json(capsys, *args):
    rc, out, err = call(capsys, "evaluate", *map(str, args), "--json")
    assert rc == 0, err
    return json.loads(out), err


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("softmaxkit: warning:")]


# --------------------------------------------------------------------------- 1. True/False labels


def _spam(tmp_path, n=200, seed=0):
    """P(spam) of a decent model and labels True for spam; the first row is not spam (False)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    y = rng.random(n) < p
    y[0] = False
    labels = write_columns(tmp_path / "lab_bool.csv", {"lab": y})
    return p, y, labels


def test_bool_labels_against_named_classes_are_refused_not_read_as_positions(capsys, tmp_path):
    p, _, labels = _spam(tmp_path)
    probs = write_columns(tmp_path / "p.csv", {"p_spam": p, "p_ham": 1 - p})
    rc, _, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "-q")
    line = error_line(err)
    assert rc == 1 and "label False is not a class (spam, ham)" in line and "--classes" in line, line


@pytest.mark.parametrize("names", [("-1", "1"), ("1", "2")])
def test_bool_labels_against_other_numbers_name_the_label_as_written(capsys, tmp_path, names):
    p, _, labels = _spam(tmp_path)
    probs = write_columns(tmp_path / "p.csv", {f"p_{names[0]}": 1 - p, f"p_{names[1]}": p})
    rc, _, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "-q")
    line = error_line(err)
    assert rc == 1 and "label False is not a class" in line and "label 0" not in line, line


@pytest.mark.parametrize("names", [("0", "1"), ("1", "0"), ("False", "True"), ("True", "False")])
def test_bool_labels_against_classes_0_1_or_false_true_match_by_name(capsys, tmp_path, names):
    p, y, labels = _spam(tmp_path)
    # each column holds its class's probability, True (1) being spam
    columns = {f"p_{name}": (p if name in ("1", "True") else 1 - p) for name in names}
    probs = write_columns(tmp_path / "p.csv", columns)
    got, _ = _evaluate_json(capsys, "--probs", probs, "--labels", labels)
    from sklearn.metrics import log_loss

    assert got["metrics"]["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)


# --------------------------------------------------------------------------- 2. a class named like an id


def _votes(tmp_path, k):
    """Whole-number logits (>= 0, some > 1) of classes ID, NY[, CA] and labels drawn from them."""
    rng = np.random.default_rng(1)
    n = 300
    z = np.round(rng.normal(size=(n, k)) * 2 + 3).clip(0)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    names = ["ID", "NY", "CA"][:k]
    scores = write_columns(tmp_path / f"votes{k}.csv", {name: z[:, j] for j, name in enumerate(names)})
    labels = write_columns(tmp_path / f"y{k}.csv", {"y": y})
    return scores, labels


def test_an_id_named_column_left_out_of_scores_says_how_to_keep_it(capsys, tmp_path):
    scores, labels = _votes(tmp_path, 2)
    got, err = _evaluate_json(capsys, "--logits", scores, "--labels", labels)
    assert got["ignored_columns"] == ["ID"]
    said = [w for w in _warnings(err) if "'ID'" in w]
    assert said and "row id" in said[0] and "--classes" in said[0], err
    kept, _ = _evaluate_json(capsys, "--logits", scores, "--labels", labels, "--classes", "ID,NY")
    assert kept["n_classes"] == 2 and kept["ignored_columns"] == []


def test_labels_beyond_the_columns_left_name_the_dropped_id(capsys, tmp_path):
    scores, labels = _votes(tmp_path, 3)
    rc, _, err = call(capsys, "evaluate", "--logits", scores, "--labels", labels, "-q")
    line = error_line(err)
    assert rc == 1 and "'ID'" in line and "--classes" in line, line


def test_a_patient_id_beside_one_score_is_still_left_out(capsys, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    logodds = np.where(y, 2.0, -2.0) + rng.normal(size=200)
    scores = write_columns(tmp_path / "s.csv", {"patient_id": rng.permutation(np.arange(5000, 5200)),
                                                "score": logodds})
    labels = write_columns(tmp_path / "y.csv", {"y": y.astype(int)})
    got, _ = _evaluate_json(capsys, "--logits", scores, "--labels", labels)
    assert got["n_classes"] == 2 and got["ignored_columns"] == ["patient_id"]
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean((logodds > 0) == y))


# --------------------------------------------------------------------------- 3. scores beside predictions


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_scores_beside_a_prediction_column_are_refused(capsys, tmp_path, suffix):
    """A ``preds`` column beside the scores warned; it is now refused by its name (a label or prediction
    column beside plain scores was read as one more class: accuracy 0.9438 for 0.9551, audit)."""
    rng = np.random.default_rng(0)
    s = rng.normal(size=400) * 2
    y = (rng.random(400) < 1 / (1 + np.exp(-s))).astype(int)
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    path = write_columns(tmp_path / f"sp{suffix}", {"scores": s, "preds": (s > 0).astype(float)})
    rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "-q")
    assert rc == 1 and "'preds'" in error_line(err) and "--ignore preds" in error_line(err), err
    got, _ = _evaluate_json(capsys, "--logits", path, "--labels", labels, "--ignore", "preds")
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean((s > 0) == y))


def test_per_class_scores_and_a_reference_logit_do_not_warn(capsys, tmp_path):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(90, 3))
    y = np.repeat(np.arange(3), 30)
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    for name, columns in (("real", {"cat": z[:, 0], "dog": z[:, 1], "bird": z[:, 2]}),
                          ("reference", {"base": np.zeros(90), "dog": z[:, 1], "bird": z[:, 2]})):
        path = write_columns(tmp_path / f"{name}.csv", columns)
        rc, _, err = call(capsys, "evaluate", "--logits", path, "--labels", labels, "-q")
        assert rc == 0 and not _warnings(err), err


# --------------------------------------------------------------------------- 4. float16 Parquet


def test_float16_parquet_is_scored_in_float16_as_npy(capsys, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from softmaxkit.data import stored_float_dtype

    rng = np.random.default_rng(3)
    z = rng.normal(size=(600, 5)) * 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p16 = p.astype(np.float16)
    y = (rng.random(600)[:, None] > np.cumsum(p, 1)).sum(1).clip(0, 4)
    labels = write_columns(tmp_path / "y.csv", {"y": y})
    np.save(tmp_path / "p.npy", p16)
    pq.write_table(pa.table({f"p_{k}": pa.array(p16[:, k]) for k in range(5)}), tmp_path / "p.parquet")
    assert stored_float_dtype(tmp_path / "p.parquet", [f"p_{k}" for k in range(5)]) == "float16"
    from_npy, _ = _evaluate_json(capsys, "--probs", tmp_path / "p.npy", "--labels", labels)
    from_parquet, _ = _evaluate_json(capsys, "--probs", tmp_path / "p.parquet", "--labels", labels)
    assert from_parquet["metrics"]["ece"] == from_npy["metrics"]["ece"]
    assert from_parquet["metrics"]["log_loss"] == from_npy["metrics"]["log_loss"]


# --------------------------------------------------------------------------- 5. clipped paired interval


def _every_row_better(n=36, seed=0):
    rng = np.random.default_rng(seed)
    before = rng.exponential(0.5, n) + 3.5
    d = -np.abs(rng.normal(0, 0.01, n))
    d[:2] = -3.0
    return before, before + d


def test_a_change_clipped_at_both_ends_is_no_bootstrap_ci():
    from softmaxkit.cli._evaluation import Scored, paired_loss_change, verdict

    before, after = _every_row_better()
    d = after - before
    change = paired_loss_change(Scored(key="k", name="n", summary={}, png=None, row_loss=before),
                                Scored(key="k", name="n", summary={}, png=None, row_loss=after))
    assert change["reading"] == "better"
    assert change["row_change_range"] == [float(d.min()), float(d.max())] and change["carried_by"] == 2
    summary = {"ece": 0.05, "ece_noise_floor": 0.06, "ece_ci": [0.0, 0.1], "n": 1000, "accuracy": 0.9,
               "majority_rate": 0.5, "class_count_test": None}
    text, _ = verdict({**summary, "log_loss": float(before.mean())}, {**summary, "log_loss": float(after.mean())},
                      change="temperature scaling", loss_change=change)
    loss = text.split("Log-loss", 1)[1]
    assert "95% CI" not in loss and "every row's loss fell" in loss, text
    assert f"[{d.min():+.4f}, {d.max():+.2g}]" in loss and "-0.0000" not in loss, text  # the least fall is 4e-05
