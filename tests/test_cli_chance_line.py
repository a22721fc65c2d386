"""`evaluate` and `predict --target` say when accuracy is no better than always naming the most
frequent class (audit: a yes/no model on 3.7% positives printed accuracy 0.9635, exactly the
always-"no" rate, without a word)."""

from __future__ import annotations

import numpy as np

from cli_helpers import call


def _rare_positive_files(tmp_path, *, informative: bool):
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random(n) < 0.04).astype(int)
    # an uninformative model predicts "no" everywhere; an informative one ranks the positives first
    score = np.where(y == 1, 3.0, -3.0) if informative else np.full(n, -3.0) + rng.normal(0, 0.1, n)
    logits = np.column_stack([np.zeros(n), score])
    scores = tmp_path / "logits.csv"
    np.savetxt(scores, logits, delimiter=",", header="logit_no,logit_yes", comments="")
    labels = tmp_path / "labels.csv"
    labels.write_text("y\n" + "\n".join(["yes" if v else "no" for v in y]) + "\n")
    return scores, labels


def test_evaluate_says_accuracy_is_the_majority_rate(capsys, tmp_path):
    scores, labels = _rare_positive_files(tmp_path, informative=False)
    rc, out, err = call(capsys, "evaluate", "--logits", scores, "--labels", labels)
    assert rc == 0, err
    assert "no better than always naming the most frequent class" in out, out


def test_evaluate_is_silent_for_a_model_above_chance(capsys, tmp_path):
    scores, labels = _rare_positive_files(tmp_path, informative=True)
    rc, out, err = call(capsys, "evaluate", "--logits", scores, "--labels", labels)
    assert rc == 0, err
    assert "most frequent class" not in out, out


def test_evaluate_says_nothing_of_a_rare_class_when_every_label_is_one_class(capsys, tmp_path):
    """Every label "no" (majority rate 1): there is no rare class to rank, so the line would mislead."""
    scores, labels = _rare_positive_files(tmp_path, informative=False)
    n = len(labels.read_text().split()) - 1
    labels.write_text("y\n" + "no\n" * n)
    rc, out, err = call(capsys, "evaluate", "--logits", scores, "--labels", labels)
    assert rc == 0, err
    assert "most frequent class" not in out and "rare class" not in out, out
