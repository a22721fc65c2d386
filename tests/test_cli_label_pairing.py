"""How ``evaluate`` and ``calibrate`` pair a labels file with the scores (audit of 2026-12-07, /tmp/auditA).

1. ``predict`` copies ``id`` into the scores; a labels file with the same ids shuffled in a column
   named ``ID`` (``Id``, ``patient_id``) was paired by position with a warning only: accuracy 0.375
   and log-loss 6.64 for 1.000 / 0.0263 joined, ``calibrate`` T = 33.1 for 0.573 (exit 0). ``ID`` is
   joined on; ``patient_id``, another name, is refused (never joined: see test_cli_pairing_policy.py).
2. ``evaluate --json`` had no ``"warnings"`` key, so pipelines never saw a warning.
3. Unnamed score columns (``.npy``, header ``0,1,2``) with labels 1..K (UCI style) in a subset
   without label K: every class shifted by one (accuracy 0.031 for 0.9385, exit 0).
4. A one-class calibration file said "every label is 1" for the class ``barolo``.
5. Probabilities rounded to 3 decimals (a row at 0.999) were refused as "raw scores?".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line

pd = pytest.importorskip("pandas")

N = 60
CLASSES = np.array(["bird", "cat", "dog"])


def _problem(seed: int = 0):
    """Labels ``y`` (indices, every class 20 times), probabilities right on every row (0.8 on the
    true class), and ids 1000.. in a random order."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(3), N // 3))
    probs = np.full((N, 3), 0.1)
    probs[np.arange(N), y] = 0.8
    return y, probs, 1000 + rng.permutation(N)


@pytest.fixture()
def files(tmp_path):
    """``probs.csv`` (``id``, ``p_<class>``, as ``predict`` writes it) and ``logits.csv`` (``id``,
    ``logit_<class>``) for :func:`_problem`."""
    y, probs, ids = _problem()
    frame = pd.DataFrame({"id": ids, **{f"p_{c}": probs[:, j] for j, c in enumerate(CLASSES)}})
    frame.to_csv(tmp_path / "probs.csv", index=False)
    logits = np.log(probs) * 3.0  # over-confident: T near 3 when paired right
    pd.DataFrame({"id": ids, **{f"logit_{c}": logits[:, j] for j, c in enumerate(CLASSES)}}).to_csv(
        tmp_path / "logits.csv", index=False)
    return {"dir": tmp_path, "y": y, "ids": ids, "probs": tmp_path / "probs.csv", "logits": tmp_path / "logits.csv"}


def _labels(files, name, *, order=None, extra=0):
    """A labels file with the ids in column ``name`` and ``animal``, rows in ``order`` (default:
    shuffled), plus ``extra`` rows of ids the scores do not have."""
    rows = np.random.default_rng(3).permutation(N) if order is None else order
    frame = pd.DataFrame({name: files["ids"][rows], "animal": CLASSES[files["y"][rows]]})
    if extra:
        frame = pd.concat([frame, pd.DataFrame({name: 9000 + np.arange(extra), "animal": ["cat"] * extra})])
    path = files["dir"] / f"labels_{name.strip() or 'blank'}.csv"
    frame.to_csv(path, index=False)
    return path


def _evaluate(capsys, files, labels, *extra):
    rc, out, err = call(capsys, "evaluate", "--probs", files["probs"], "--labels", labels, "--label-column",
                        "animal", *extra, "--json")
    assert rc == 0, err
    return json.loads(out), err


# --------------------------------------------------------------------------- 1. id columns named differently


@pytest.mark.parametrize("name", ["ID", "Id", " id "])
def test_an_id_column_differing_in_case_or_spaces_joins_the_rows(capsys, files, name):
    got, err = _evaluate(capsys, files, _labels(files, name))
    assert got["metrics"]["accuracy"] == 1.0  # by position: about 1/3
    assert got["labels_matched_on"] == name and got["scores_matched_on"] == "id"


def test_differently_named_columns_of_the_same_unique_ids_in_another_order_are_refused(capsys, files):
    """Not joined: two names holding the same ids may be a coincidence (a ``batch_id`` that is a
    permutation of the scores' ids, audit I); the user renames one column to join on it."""
    labels = _labels(files, "patient_id")
    rc, _, err = call(capsys, "evaluate", "--probs", files["probs"], "--labels", labels, "--label-column",
                      "animal", "--json")
    line = error_line(err)
    assert rc == 1
    assert str(labels) in line and str(files["probs"]) in line
    assert "'patient_id'" in line and "'id'" in line and "different orders" in line and "rename" in line


def test_differently_named_ids_that_cannot_be_joined_in_another_order_are_refused(capsys, files):
    """The labels hold more ids than the scores (a superset), shuffled: neither a join on a shared
    name nor the row order pairs them."""
    labels = _labels(files, "sample_id", extra=5)
    rc, _, err = call(capsys, "evaluate", "--probs", files["probs"], "--labels", labels, "--label-column", "animal")
    line = error_line(err)
    assert rc == 1
    assert str(labels) in line and str(files["probs"]) in line
    assert "'sample_id'" in line and "'id'" in line and "rename" in line


def test_differently_named_ids_in_the_same_row_order_pair_by_position(capsys, files):
    got, err = _evaluate(capsys, files, _labels(files, "patient_id", order=np.arange(N)))
    assert got["metrics"]["accuracy"] == 1.0 and got["labels_matched_on"] is None
    assert "warning" not in err and got["warnings"] == []


def test_unrelated_ids_are_still_paired_by_position_with_a_warning(capsys, files):
    """A repeated patient id that shares no id with the scores' ``id``: nothing to join on or refuse."""
    frame = pd.DataFrame({"patient_id": np.arange(N) // 3, "animal": CLASSES[files["y"]]})
    frame.to_csv(files["dir"] / "visits.csv", index=False)
    got, err = _evaluate(capsys, files, files["dir"] / "visits.csv")
    assert got["metrics"]["accuracy"] == 1.0 and got["labels_matched_on"] is None
    # 2. the warning on stderr is also in the JSON document
    assert [w for w in got["warnings"] if "'patient_id'" in w and "position" in w]
    assert "softmaxkit: warning:" in err


def test_calibrate_joins_on_an_id_column_differing_in_case(capsys, files):
    args = ("--logits", files["logits"], "--label-column", "animal", "--json")
    ordered = files["dir"] / "ordered.csv"
    pd.DataFrame({"id": files["ids"], "animal": CLASSES[files["y"]]}).to_csv(ordered, index=False)
    rc, out, err = call(capsys, "calibrate", "--labels", ordered, "--out", files["dir"] / "c0.npz", *args)
    assert rc == 0, err
    expected = json.loads(out)["calibrator"]["temperature"]
    rc, out, err = call(capsys, "calibrate", "--labels", _labels(files, "ID"), "--out", files["dir"] / "c1.npz", *args)
    assert rc == 0, err
    got = json.loads(out)
    assert got["labels_matched_on"] == "ID" and got["scores_matched_on"] == "id"
    assert got["calibrator"]["temperature"] == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------- 2. evaluate --json "warnings"


def test_evaluate_json_has_an_empty_warnings_list_when_nothing_was_said(capsys, files):
    ordered = files["dir"] / "ordered.csv"
    pd.DataFrame({"id": files["ids"], "animal": CLASSES[files["y"]]}).to_csv(ordered, index=False)
    got, err = _evaluate(capsys, files, ordered)
    assert got["warnings"] == [] and "warning" not in err


# --------------------------------------------------------------------------- 3. labels 1..K over unnamed columns


@pytest.fixture()
def one_based(tmp_path):
    """Probabilities of a good 3-class model (classes 1, 2, 3) over rows of classes 1 and 2 only, as a
    ``.npy`` and a CSV with pandas' header ``0,1,2``, and the labels 1/2."""
    rng = np.random.default_rng(5)
    y = rng.integers(1, 3, 80)  # 1 or 2, never 3: the top label is never out of range
    probs = rng.dirichlet(np.ones(3), 80) * 0.3
    probs[np.arange(80), y - 1] += 0.7
    np.save(tmp_path / "p.npy", probs)
    pd.DataFrame(probs).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"label": y}).to_csv(tmp_path / "lab.csv", index=False)
    return {"dir": tmp_path, "y": y, "probs": probs, "labels": tmp_path / "lab.csv"}


@pytest.mark.parametrize("scores", ["p.npy", "p.csv"])
def test_one_based_labels_over_unnamed_columns_are_refused(capsys, one_based, scores):
    rc, _, err = call(capsys, "evaluate", "--probs", one_based["dir"] / scores, "--labels", one_based["labels"])
    line = error_line(err)
    assert rc == 1 and str(one_based["labels"]) in line
    assert "--classes 1,2,3" in line and "--classes 0,1,2" in line
    as_is = float(np.mean(one_based["probs"].argmax(1) == one_based["y"]))
    shifted = float(np.mean(one_based["probs"].argmax(1) == one_based["y"] - 1))
    assert f"{as_is:.1%}" in line and f"{shifted:.1%}" in line


def test_the_classes_option_reads_them_either_way(capsys, one_based):
    args = ("evaluate", "--probs", one_based["dir"] / "p.npy", "--labels", one_based["labels"], "--json")
    rc, out, err = call(capsys, *args, "--classes", "1,2,3")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == pytest.approx(
        np.mean(one_based["probs"].argmax(1) == one_based["y"] - 1))
    rc, out, err = call(capsys, *args, "--classes", "0,1,2")  # labels as indices, as asked: no refusal
    assert rc == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == pytest.approx(
        np.mean(one_based["probs"].argmax(1) == one_based["y"]))


def test_calibrate_refuses_one_based_labels_over_unnamed_logits(capsys, one_based):
    np.save(one_based["dir"] / "z.npy", np.log(one_based["probs"]))
    rc, _, err = call(capsys, "calibrate", "--logits", one_based["dir"] / "z.npy", "--labels", one_based["labels"],
                      "--out", one_based["dir"] / "c.npz")
    assert rc == 1 and "--classes 1,2,3" in error_line(err)


def test_zero_based_labels_without_class_0_are_not_refused(capsys, one_based):
    """Labels 1 and 2 that are indices, scored by a model right about them: no sign of a shift."""
    probs = np.roll(one_based["probs"], 1, axis=1)  # the top column is now the label itself
    np.save(one_based["dir"] / "right.npy", probs)
    rc, out, err = call(capsys, "evaluate", "--probs", one_based["dir"] / "right.npy", "--labels",
                        one_based["labels"], "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == one_based["y"]))


# --------------------------------------------------------------------------- 4. a one-class file names its class


def test_one_class_calibration_file_names_the_class(capsys, files):
    one = files["dir"] / "one.csv"
    pd.DataFrame({"id": files["ids"], "animal": ["cat"] * N}).to_csv(one, index=False)
    rc, _, err = call(capsys, "calibrate", "--logits", files["logits"], "--labels", one, "--label-column", "animal",
                      "--out", files["dir"] / "c.npz")
    line = error_line(err)
    assert rc == 1 and "'cat'" in line and "every label is 1" not in line


# --------------------------------------------------------------------------- 5. probabilities rounded to d decimals


@pytest.fixture()
def rounded(tmp_path):
    """Softmax probabilities of 3 classes rounded to 3 decimals (``float_format="%.3f"``): rows sum to
    0.999..1.001, and the labels."""
    rng = np.random.default_rng(8)
    z = rng.normal(size=(200, 3)) * 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    frame = pd.DataFrame({f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)})
    frame.to_csv(tmp_path / "r3.csv", index=False, float_format="%.3f")
    pd.DataFrame({"animal": CLASSES[y]}).to_csv(tmp_path / "lab.csv", index=False)
    stored = pd.read_csv(tmp_path / "r3.csv").to_numpy()
    assert np.abs(stored.sum(1) - 1).max() > 1e-4  # the rule the CLI held them to
    return {"dir": tmp_path, "y": y, "stored": stored, "probs": tmp_path / "r3.csv", "labels": tmp_path / "lab.csv"}


def test_rounded_probabilities_are_renormalised_with_a_warning(capsys, rounded):
    rc, out, err = call(capsys, "evaluate", "--probs", rounded["probs"], "--labels", rounded["labels"], "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert [w for w in got["warnings"] if "3 decimals" in w] and "3 decimals" in err
    normalised = rounded["stored"] / rounded["stored"].sum(1, keepdims=True)
    expected = -np.mean(np.log(normalised[np.arange(len(rounded["y"])), rounded["y"]]))
    assert got["metrics"]["log_loss"] == pytest.approx(expected, rel=1e-9)
    rc, out, err = call(capsys, "calibrate", "--probs", rounded["probs"], "--labels", rounded["labels"],
                        "--out", rounded["dir"] / "c.npz", "--json")
    assert rc == 0, err


def test_a_row_off_by_more_than_rounding_is_still_refused(capsys, rounded):
    stored = rounded["stored"].copy()
    stored[7] = [0.5, 0.3, 0.19]  # 0.99: three 3-decimal values are off by at most 0.0015
    pd.DataFrame(stored, columns=[f"p_{c}" for c in CLASSES]).to_csv(rounded["dir"] / "bad.csv", index=False,
                                                                      float_format="%.3f")
    rc, _, err = call(capsys, "evaluate", "--probs", rounded["dir"] / "bad.csv", "--labels", rounded["labels"])
    line = error_line(err)
    assert rc == 1 and "row 8" in line and "0.99" in line


def test_rounding_coarser_than_the_library_accepts_is_refused_saying_so(capsys, rounded):
    """One decimal over 3 classes: rows at 0.9 (thirds); no longer "raw scores?"."""
    stored = np.round(rounded["stored"], 1)
    stored[0] = [0.3, 0.3, 0.3]
    pd.DataFrame(stored, columns=[f"p_{c}" for c in CLASSES]).to_csv(rounded["dir"] / "r1.csv", index=False)
    rc, _, err = call(capsys, "evaluate", "--probs", rounded["dir"] / "r1.csv", "--labels", rounded["labels"])
    line = error_line(err)
    assert rc == 1 and "1 decimal" in line and "write more digits" in line and "raw scores" not in line
