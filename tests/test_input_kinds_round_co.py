"""Scores of the wrong kind (audit CO): each gave a silent wrong answer or a hint that led to one.

F2. A derived column (``confidence``, ``max_prob``, ...) beside bare-header logits or probabilities was
    read as one more class (log-loss 1.7284 for 1.1195, exit 0), by name or unnamed (its values are the
    row max of the others, or of their softmax).
F3. Probabilities written with 3 decimals (rows at 1.001) given as ``--logits``: no warning.
F4. Per-class sigmoid outputs given as ``--probs`` were sent to ``--logits`` ("raw scores?"), and the
    library said "logits?" of them and of rounded probabilities (F6).
F5. The library took probabilities and percentages as logits without a word (TemperatureScaling T=0.41).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit import metrics
from softmaxkit import _calibration_inputs
from softmaxkit.calibration import TemperatureScaling
from softmaxkit.data import write_columns
from softmaxkit.functional import softmax


@pytest.fixture(scope="module")
def model():
    """Logits of a 4-class model on 300 rows, its probabilities and the labels."""
    rng = np.random.default_rng(7)
    y = np.arange(300) % 4
    z = rng.normal(0, 1.5, (300, 4))
    z[np.arange(300), y] += 1.5
    return z, np.asarray(softmax(z, axis=-1), dtype=np.float64), y


def _files(tmp_path, scores, y, extra=None, header=None):
    header = header or [str(j) for j in range(scores.shape[1])]
    columns = {name: scores[:, j] for j, name in enumerate(header)}
    if extra is not None:
        columns.update(extra)
    return (write_columns(tmp_path / "s.csv", columns), write_columns(tmp_path / "y.csv", {"label": y}))


def _warnings(err):
    return [line for line in err.splitlines() if line.startswith("softmaxkit: warning:")]


# --------------------------------------------------------------------------- F2: derived columns


@pytest.mark.parametrize("name", ["confidence", "max_prob", "prob", "score", "entropy", "Max Prob", "margin"])
@pytest.mark.parametrize("option", ["--logits", "--probs"])
def test_a_column_named_as_a_summary_beside_bare_scores_is_refused(capsys, tmp_path, model, name, option):
    z, p, y = model
    scores = z if option == "--logits" else p
    s, labels = _files(tmp_path, scores, y, {name: p.max(axis=1)})
    rc, out, err = call(capsys, "evaluate", option, s, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and repr(name) in line and f"--ignore {name}" in line and "raw scores" not in line


@pytest.mark.parametrize("option", ["--logits", "--probs"])
@pytest.mark.parametrize("of", ["logits", "probs"])
def test_an_unnamed_column_holding_the_top_probability_is_refused(capsys, tmp_path, model, of, option):
    """Whatever its name, a column equal to the row max of the others (probabilities) or of their softmax
    (logits), written with 4 decimals as the rest; "raw scores? pass them with --logits" no more."""
    z, p, y = model
    scores = np.round(z if of == "logits" else p, 4)
    s, labels = _files(tmp_path, scores, y, {"v": np.round(p.max(axis=1), 4)}, header=list("abcd"))
    rc, _, err = call(capsys, "evaluate", option, s, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and "column 'v'" in line and "largest" in line and "--ignore v" in line
    assert "raw scores" not in line


def test_a_npy_matrix_with_a_confidence_column_is_refused(capsys, tmp_path, model):
    z, p, y = model
    np.save(tmp_path / "z.npy", np.column_stack([z, p.max(axis=1)]))
    labels = write_columns(tmp_path / "y.csv", {"label": y})
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "z.npy", "--labels", labels)
    assert rc == 1 and "column '4'" in error_line(err) and "--ignore 4" in error_line(err)


def test_a_probability_column_that_completes_the_rows_stays_a_class(capsys, tmp_path, model):
    """Guards: a class named ``score`` whose probabilities complete the rows, one tied at the top on every
    row, a class kept by --classes, and logits with a reference class of zeros are all scored."""
    z, p, y = model
    s, labels = _files(tmp_path, p, y, header=["a", "b", "c", "score"])
    assert call(capsys, "evaluate", "--probs", s, "--labels", labels)[0] == 0
    tied = np.random.default_rng(2).random((len(y), 4))
    tied[:, 3] = tied[:, :3].max(axis=1)  # class 3 ties at the top on every row: the others' row max
    tied /= tied.sum(axis=1, keepdims=True)
    s, labels = _files(tmp_path, tied, y)
    assert call(capsys, "evaluate", "--probs", s, "--labels", labels)[0] == 0
    s, labels = _files(tmp_path, z, y, {"confidence": p.max(axis=1)}, header=list("abcd"))
    assert call(capsys, "evaluate", "--logits", s, "--labels", labels, "--classes", "a,b,c,d,confidence")[0] == 0
    s, labels = _files(tmp_path, z - z[:, :1], y)
    assert call(capsys, "evaluate", "--logits", s, "--labels", labels)[0] == 0


def test_probabilities_failing_only_by_an_extra_column_say_which(capsys, tmp_path, model):
    """A column in [0, 1] that is no summary of the others (a flag) but without which every row sums to 1:
    named, not sent to --logits (which read it as one more class)."""
    _, p, y = model
    flag = np.random.default_rng(1).random(len(y))
    s, labels = _files(tmp_path, np.round(p, 3), y, {"flag": np.round(flag, 3)}, header=list("abcd"))
    rc, _, err = call(capsys, "evaluate", "--probs", s, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and "without column 'flag'" in line and "--ignore flag" in line and "raw scores" not in line


# --------------------------------------------------------------------------- F3: rounded probabilities as logits


def test_rounded_probabilities_given_as_logits_warn(capsys, tmp_path, model):
    _, p, y = model
    rounded = np.round(p, 3)
    assert np.abs(rounded.sum(1) - 1).max() > 1e-3  # past the strict tolerance, within 4 x 0.0005
    s, labels = _files(tmp_path, rounded, y)
    rc, _, err = call(capsys, "evaluate", "--logits", s, "--labels", labels)
    assert rc == 0
    assert len([w for w in _warnings(err) if "look like probabilities" in w]) == 1, err


# --------------------------------------------------------------------------- F4: per-class sigmoid outputs


def test_sigmoid_outputs_are_named_as_such_on_both_options(capsys, tmp_path, model):
    z, _, y = model
    sig = 1 / (1 + np.exp(-z))
    s, labels = _files(tmp_path, sig, y)
    rc, _, err = call(capsys, "evaluate", "--probs", s, "--labels", labels)
    line = error_line(err)
    assert rc == 1 and "sigmoid" in line and "raw scores" not in line
    rc, _, err = call(capsys, "evaluate", "--logits", s, "--labels", labels)
    assert rc == 0 and any("sigmoid" in w for w in _warnings(err)), err


def test_check_probs_hints_fit_what_the_values_look_like(model):
    z, p, y = model
    with pytest.raises(ValueError, match=r"3 decimals.*divide each row by its sum") as info:
        metrics.log_loss(y, probs=np.round(p, 3))
    assert "logits?" not in str(info.value)
    with pytest.raises(ValueError, match=r"sigmoid") as info:
        metrics.brier_score(y, 1 / (1 + np.exp(-z)))
    assert "logits?" not in str(info.value)
    with pytest.raises(ValueError, match=r"logits\? pass them as logits"):
        metrics.expected_calibration_error(y, z)
    with pytest.raises(ValueError, match=r"percentages\? divide them by 100"):
        metrics.expected_calibration_error(y, 100 * p)


# --------------------------------------------------------------------------- F5: the library's one check


def test_probabilities_and_percentages_given_as_logits_warn_in_the_library(model):
    z, p, y = model
    with pytest.warns(_calibration_inputs.InputKindWarning, match="look like probabilities"):
        TemperatureScaling().fit(p, y)
    with pytest.warns(_calibration_inputs.InputKindWarning, match="look like percentages"):
        metrics.log_loss(y, logits=100 * p)
    with pytest.warns(_calibration_inputs.InputKindWarning, match="look like probabilities"):
        metrics.log_loss(y, logits=np.round(p, 3))  # within the rounding of 3 decimals


def test_genuine_logits_get_no_warning(model):
    """Logits, log-probabilities, logits in [0, 1] whose rows do not sum to 1, and one row [0.3, 0.7]
    (summing to 1 by chance once) get no warning: the range alone is no evidence."""
    z, p, y = model
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", _calibration_inputs.InputKindWarning)
        TemperatureScaling().fit(z, y)
        metrics.log_loss(y, logits=np.log(p))
        metrics.log_loss(y, logits=rng.random((300, 4)))
        metrics.log_loss([1], logits=[[0.3, 0.7]])
        TemperatureScaling(input="probs").fit(p, y)


def test_the_command_line_warns_once(capsys, tmp_path, model):
    """The library's check is silenced where the command's own (naming the file) has run."""
    _, p, y = model
    s, labels = _files(tmp_path, p, y)
    rc, _, err = call(capsys, "calibrate", "--method", "temperature", "--logits", s, "--labels", labels,
                      "--out", tmp_path / "t.npz")
    assert rc == 0
    said = [w for w in _warnings(err) if "look like probabilities" in w]
    assert len(said) == 1 and "s.csv" in said[0], err
