"""How ``evaluate`` and ``calibrate`` pair labels with scores, and which scores they take (audit of
2026-12-08, /tmp/auditI).

A. Id columns named differently in the two files (``batch_id`` beside ``id``) are never joined on: a
   unique ``batch_id`` that happened to be a permutation of the scores' ``id``, in a labels file in
   the scores' row order, was joined on (accuracy 0.5439 for 0.9649, exit 0); one sharing 140 of 228
   ids was refused where pairing by position was right.
B. Scores with ``id`` a permutation of 0..n-1 (saved from a shuffled loader) beside labels with
   ``sample_id`` = 0..n-1 in dataset order were paired by position without a word (accuracy 0.6283
   for 0.9480): a column that counts the rows was skipped on either side.
C. 0-based binary labels of one class only (positives) over a model biased low were refused as
   "1-based" (p = 3e-15): one class present cannot tell the two readings apart.
D. Probabilities rounded to 2 decimals were accepted (log-loss "inf", exit 0); at 3 decimals a true
   class written as 0.000 gives an infinite log-loss, which now draws a warning naming the row.

Audit of 2026-12-07 (/tmp/auditJ):

E. Shuffled labels whose ``sample_id`` holds 149 of the scores' 150 ``id`` values were paired by position
   with only the generic warning (accuracy 0.5533 for 0.9133, exit 0): 90% or more of the scores' ids
   among the labels' in another row order is refused; below that, the warning states the overlap.
F. 3-class probabilities rounded to 2 decimals with no true class written as 0 were refused (log-loss
   0.6844 for 0.6841 exact); a binary file at 2 decimals whose rows sum to exactly 1 (no renormalisation)
   and whose true class is 0.00 on one row gave log-loss inf without a word.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line

pd = pytest.importorskip("pandas")

N = 60
CLASSES = np.array(["bird", "cat", "dog"])


@pytest.fixture()
def scores(tmp_path):
    """``probs.csv`` as ``predict`` writes it (``id`` 500.. shuffled, ``p_<class>``), right on every row
    (0.8 on the true class), and its labels ``y`` in the scores' row order."""
    rng = np.random.default_rng(11)
    y = rng.permutation(np.repeat(np.arange(3), N // 3))
    probs = np.full((N, 3), 0.1)
    probs[np.arange(N), y] = 0.8
    ids = 500 + rng.permutation(N)
    pd.DataFrame({"id": ids, **{f"p_{c}": probs[:, j] for j, c in enumerate(CLASSES)}}).to_csv(
        tmp_path / "probs.csv", index=False)
    return {"dir": tmp_path, "y": y, "ids": ids, "probs": tmp_path / "probs.csv"}


def _write(scores, name, frame):
    path = scores["dir"] / name
    frame.to_csv(path, index=False)
    return path


def _evaluate(capsys, probs, labels, column="animal"):
    return call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--label-column", column, "--json")


# --------------------------------------------------------------------------- A. never joined on another name


def test_a_unique_id_of_another_name_holding_the_same_ids_in_another_order_is_refused(capsys, scores):
    """The labels are in the scores' row order; their ``batch_id`` is another permutation of the
    scores' ids. Joining on it scored the wrong rows; position may be right: neither is guessed."""
    batch = np.random.default_rng(4).permutation(scores["ids"])
    labels = _write(scores, "labels.csv", pd.DataFrame({"animal": CLASSES[scores["y"]], "batch_id": batch}))
    rc, _, err = _evaluate(capsys, scores["probs"], labels)
    line = error_line(err)
    assert rc == 1
    assert str(labels) in line and str(scores["probs"]) in line
    assert "'batch_id'" in line and "'id'" in line
    assert "different orders" in line and "rename" in line and "row order" in line


def test_an_id_of_another_name_sharing_some_ids_pairs_by_position_with_a_warning(capsys, scores):
    """``site_id`` shares 40 of the 60 ids: other ids, not the scores' rows in another order."""
    site = np.r_[np.random.default_rng(4).permutation(scores["ids"])[:40], 9000 + np.arange(20)]
    labels = _write(scores, "labels.csv", pd.DataFrame({"animal": CLASSES[scores["y"]], "site_id": site}))
    rc, out, err = _evaluate(capsys, scores["probs"], labels)
    assert rc == 0, err
    got = json.loads(out)
    assert got["metrics"]["accuracy"] == 1.0 and got["labels_matched_on"] is None
    said = [w for w in got["warnings"] if "'site_id'" in w and "position" in w]
    assert said and "shares 40 of 60 ids" in said[0] and "'id'" in said[0]


def _other_name_sharing(scores, shared, *, shuffled):
    """``labels.csv`` whose ``sample_id`` holds ``shared`` of the scores' 60 ids (the others new ones),
    in the scores' row order or shuffled (``shuffled``), with the true label of each row."""
    ids = scores["ids"].copy()
    ids[shared:] = 9000 + np.arange(N - shared)
    order = np.random.default_rng(5).permutation(N) if shuffled else np.arange(N)
    return _write(scores, "labels.csv", pd.DataFrame({"sample_id": ids[order],
                                                      "animal": CLASSES[scores["y"][order]]}))


@pytest.mark.parametrize("shared", [59, 54])
def test_e_shuffled_labels_whose_other_id_holds_most_of_the_scores_ids_are_refused(capsys, scores, shared):
    """59 (or 54, 90%) of the 60 ids in another row order: the same rows, shuffled; by position accuracy
    was 0.5533 for 0.9133 (audit)."""
    labels = _other_name_sharing(scores, shared, shuffled=True)
    rc, _, err = _evaluate(capsys, scores["probs"], labels)
    line = error_line(err)
    assert rc == 1
    assert str(labels) in line and str(scores["probs"]) in line and "'sample_id'" in line and "'id'" in line
    assert f"{shared} of the 60 ids" in line and "different orders" in line
    assert "rename" in line and "row order" in line


def test_e_an_other_id_sharing_under_90_percent_pairs_by_position_saying_the_overlap(capsys, scores):
    """53 of 60 (88%): taken as other ids, as a coincidental ``site_id`` is; the warning says how many."""
    labels = _other_name_sharing(scores, 53, shuffled=True)
    rc, out, err = _evaluate(capsys, scores["probs"], labels)
    assert rc == 0, err
    got = json.loads(out)
    assert got["labels_matched_on"] is None
    said = [w for w in got["warnings"] if "'sample_id'" in w and "position" in w]
    assert said and "shares 53 of 60 ids" in said[0] and "'id'" in said[0]


def test_e_an_other_id_sharing_most_ids_in_the_scores_order_pairs_by_position(capsys, scores):
    """59 of 60 ids, each shared one on the scores' row: the order is the same; position is right."""
    labels = _other_name_sharing(scores, 59, shuffled=False)
    rc, out, err = _evaluate(capsys, scores["probs"], labels)
    assert rc == 0, err
    got = json.loads(out)
    assert got["metrics"]["accuracy"] == 1.0
    assert [w for w in got["warnings"] if "'sample_id'" in w and "shares 59 of 60 ids" in w]


# --------------------------------------------------------------------------- B. ids that count the rows


@pytest.mark.parametrize("shuffled", ["scores", "labels"])
def test_ids_that_count_the_rows_on_one_side_and_are_shuffled_on_the_other_are_refused(capsys, tmp_path,
                                                                                       shuffled):
    """Scores saved from a shuffled loader with their dataset index ``id`` (a permutation of 0..n-1),
    labels in dataset order with ``sample_id`` = 0..n-1 (or the other way round)."""
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(3), N // 3))
    probs = np.full((N, 3), 0.1)
    probs[np.arange(N), y] = 0.8
    perm = rng.permutation(N)
    order = perm if shuffled == "scores" else np.arange(N)
    pd.DataFrame({"id": order, **{f"p_{c}": probs[order, j] for j, c in enumerate(CLASSES)}}).to_csv(
        tmp_path / "p.csv", index=False)
    rows = np.arange(N) if shuffled == "scores" else perm
    pd.DataFrame({"sample_id": rows, "animal": CLASSES[y[rows]]}).to_csv(tmp_path / "l.csv", index=False)
    rc, _, err = _evaluate(capsys, tmp_path / "p.csv", tmp_path / "l.csv")
    line = error_line(err)
    assert rc == 1
    assert "'sample_id'" in line and "'id'" in line and "different orders" in line


def test_ids_that_count_the_rows_in_both_files_pair_by_position_silently(capsys, tmp_path):
    y = np.repeat(np.arange(3), N // 3)
    probs = np.full((N, 3), 0.1)
    probs[np.arange(N), y] = 0.8
    pd.DataFrame({"id": np.arange(N), **{f"p_{c}": probs[:, j] for j, c in enumerate(CLASSES)}}).to_csv(
        tmp_path / "p.csv", index=False)
    pd.DataFrame({"sample_id": np.arange(N), "animal": CLASSES[y]}).to_csv(tmp_path / "l.csv", index=False)
    rc, out, err = _evaluate(capsys, tmp_path / "p.csv", tmp_path / "l.csv")
    assert rc == 0, err
    got = json.loads(out)
    assert got["metrics"]["accuracy"] == 1.0 and got["warnings"] == []


# --------------------------------------------------------------------------- C. one class present


def test_zero_based_labels_of_one_class_over_a_model_biased_low_are_not_refused(capsys, tmp_path):
    """Positives only (every label 1) of a binary model whose p(1) is biased low: the top column is
    0 (label - 1) on most rows, as it would be for 1-based labels; one class cannot tell them apart."""
    rng = np.random.default_rng(2)
    z = np.c_[np.zeros(120), rng.normal(-1.0, 1.0, 120)]  # class 1 on top on about 1 row in 6
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", np.ones(120, dtype=np.int64))
    rc, out, err = call(capsys, "evaluate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy", "--json")
    assert rc == 0, err
    p1 = 1 / (1 + np.exp(-z[:, 1]))
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(-np.mean(np.log(p1)), rel=1e-9)


# --------------------------------------------------------------------------- D. rounded probabilities


def _softmax_rows():
    """Probabilities of 200 rows over 3 classes (softmax of random logits) and labels drawn from them."""
    rng = np.random.default_rng(8)
    z = rng.normal(size=(200, 3)) * 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return p, y


def _rounded_file(tmp_path, p, y, decimals):
    """``r.csv`` holding ``p`` written with ``decimals`` decimals and ``lab.csv`` the labels ``y``."""
    pd.DataFrame(p, columns=[f"p_{c}" for c in CLASSES[:p.shape[1]]]).to_csv(
        tmp_path / "r.csv", index=False, float_format=f"%.{decimals}f")
    pd.DataFrame({"animal": CLASSES[y]}).to_csv(tmp_path / "lab.csv", index=False)
    return tmp_path / "r.csv", tmp_path / "lab.csv"


def test_f_probabilities_rounded_to_two_decimals_are_renormalised_with_a_warning(capsys, tmp_path):
    """2 decimals over 3 classes (rows within 0.015 of 1, inside bfloat16's 0.0156), no true class written
    as 0: accepted as rounding, as 3 decimals are (it was refused, audit)."""
    p, y = _softmax_rows()
    true = p[np.arange(len(y)), y]
    p[true < 0.01] = np.eye(3)[y[true < 0.01]] * 0.97 + 0.01  # no true class near 0
    assert (np.round(p, 2)[np.arange(len(y)), y] > 0).all() and np.abs(np.round(p, 2).sum(1) - 1).max() > 1e-4
    probs, labels = _rounded_file(tmp_path, p, y, 2)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--json")
    assert rc == 0, err
    got = json.loads(out)
    stored = np.round(p, 2) / np.round(p, 2).sum(1, keepdims=True)
    assert got["metrics"]["log_loss"] == pytest.approx(-np.mean(np.log(stored[np.arange(len(y)), y])), rel=1e-9)
    assert [w for w in got["warnings"] if "2 decimals" in w and "divided by its sum" in w]
    assert not [w for w in got["warnings"] if "infinite" in w]


def test_f_two_decimals_with_a_true_class_written_as_zero_draw_the_warning_naming_the_row(capsys, tmp_path):
    p, y = _softmax_rows()
    p[4] = [0.996, 0.002, 0.002]  # written 1.00, 0.00, 0.00
    y[4] = 2
    probs, labels = _rounded_file(tmp_path, p, y, 2)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--json")
    assert rc == 0, err
    said = [w for w in json.loads(out)["warnings"] if "row 5" in w and "infinite" in w]
    assert said and "2 decimals" in said[0] and "'dog'" in said[0] and str(probs) in said[0]


def test_f_a_binary_file_summing_to_one_with_a_true_class_written_as_zero_draws_the_warning(capsys, tmp_path):
    """Two columns at 2 decimals sum to exactly 1, so nothing is renormalised; the warning came only then."""
    rng = np.random.default_rng(1)
    p1 = 1 / (1 + np.exp(-2.5 * rng.normal(size=200)))
    y = (rng.random(200) < p1).astype(int)
    p1[9], y[9] = 0.003, 1  # written 1.00, 0.00
    p = np.round(np.c_[1 - p1, p1], 2)
    assert (p.sum(1) == 1).all()
    probs, labels = _rounded_file(tmp_path, p, y, 2)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--json")
    assert rc == 0, err
    got = json.loads(out)
    said = [w for w in got["warnings"] if "row 10" in w and "infinite" in w]
    assert said and "2 decimals" in said[0] and "'cat'" in said[0]
    assert not [w for w in got["warnings"] if "divided by its sum" in w]


def test_f_hard_zero_one_predictions_draw_no_rounding_warning(capsys, tmp_path):
    """0/1 probabilities (a hard classifier) whose true class is 0 on a row: the model said 0, no rounding."""
    p, y = _softmax_rows()
    hard = np.eye(3)[np.argmax(p, axis=1)]
    assert (hard[np.arange(len(y)), y] == 0).any()
    probs, labels = _rounded_file(tmp_path, hard, y, 1)
    rc, out, err = call(capsys, "evaluate", "--probs", probs, "--labels", labels, "--json")
    assert rc == 0, err
    assert not [w for w in json.loads(out)["warnings"] if "decimal" in w]


def test_a_true_class_rounded_to_zero_draws_a_warning_naming_the_row(capsys, tmp_path):
    p, y = _softmax_rows()
    p[6] = [0.9996, 0.0002, 0.0002]  # written 1.000, 0.000, 0.000
    y[6] = 1
    stored = np.round(p, 3)
    assert np.abs(stored.sum(1) - 1).max() > 1e-4  # read as a rounded file
    pd.DataFrame(stored, columns=[f"p_{c}" for c in CLASSES]).to_csv(tmp_path / "r3.csv", index=False,
                                                                      float_format="%.3f")
    pd.DataFrame({"animal": CLASSES[y]}).to_csv(tmp_path / "lab.csv", index=False)
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "r3.csv", "--labels", tmp_path / "lab.csv",
                        "--json")
    assert rc == 0, err
    said = [w for w in json.loads(out)["warnings"] if "row 7" in w and "infinite" in w]
    assert said and "3 decimals" in said[0] and "write more digits" in said[0]
    assert str(tmp_path / "r3.csv") in said[0]
