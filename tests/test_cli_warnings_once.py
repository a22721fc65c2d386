"""One warning per fact: the library's warning about a map with as many parameters as rows has its own class
(ManyParametersWarning), so the CLI, which says it with the figures it shows, silences that one alone and never
by matching its text; ``fit --calibrate`` said it twice (the library's line and fit_warnings')."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_helpers import call

WARN = "softmaxkit: warning: "


def test_matrix_scaling_warns_with_its_own_class():
    from softmaxkit.calibration import CalibrationWarning, ManyParametersWarning, MatrixScaling

    assert issubclass(ManyParametersWarning, CalibrationWarning)  # filters on CalibrationWarning still catch it
    rng = np.random.default_rng(0)
    y = np.arange(30) % 5
    z = rng.normal(size=(30, 5))
    with pytest.warns(ManyParametersWarning, match=r"30 parameters \(C\^2 \+ C, C = 5\) fitted on 30"):
        MatrixScaling().fit(z, y)


def _ten_class_csv(path, *, rows_per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), rows_per_class)
    x = rng.normal(size=(len(y), 3)) + 0.7 * y[:, None] % 3
    lines = ["a,b,c,label"] + [f"{r[0]:.6f},{r[1]:.6f},{r[2]:.6f},k{c}" for r, c in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_calibrate_matrix_says_the_parameter_count_once(capsys, tmp_path):
    """75 training rows of 10 classes cross-fit a matrix map of 110 parameters: fit_warnings says so with
    what it means for the held-out figures; the library's own line said it again."""
    data = _ten_class_csv(tmp_path / "d.csv", rows_per_class=10, seed=1)
    rc, out, err = call(capsys, "fit", data, "--target", "label", "--calibrate", "matrix", "--out",
                        tmp_path / "m.npz", "--json")
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "parameters" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(WARN + "matrix scaling: fitted 110 parameters on 75 rows")
    assert "MatrixScaling" not in err
    assert json.loads(out)["warnings"][0].startswith("matrix scaling: fitted 110 parameters")


def test_fit_warnings_gives_the_fits_labels_caution_for_in_sample_figures_only():
    from softmaxkit.cli._evaluation import fit_warnings

    params = {"n_parameters": 420}
    after = {"accuracy": 1.0, "log_loss": 0.0712}
    said = fit_warnings(params, change="matrix scaling", n_fit=100, in_sample=True, after=after, n_classes=20)
    assert said == ["matrix scaling: fitted 420 parameters on 100 rows, as many as the rows or more, so it can fit "
                    "these rows' labels: the accuracy 1.0000 and log-loss 0.0712 measured after it on them say "
                    "nothing about new rows; use --holdout, or a map with fewer parameters (temperature scaling: 1; "
                    "vector scaling: 40)"]
    held = fit_warnings(params, change="matrix scaling", n_fit=100, in_sample=False, after=after, n_classes=20)
    assert len(held) == 1 and "may have fitted those rows' noise" in held[0]
    # 420 parameters on 500 rows: fewer than 10 rows each, but more rows than parameters: "optimistic"
    more = fit_warnings(params, change="matrix scaling", n_fit=500, in_sample=True, after=after, n_classes=20)
    assert len(more) == 1 and "figures measured on those rows are optimistic" in more[0]


def test_the_folds_zero_class_warning_lists_a_few_classes_and_a_count():
    """Noted last round: at 1000 classes the merged warning printed every common zero class index."""
    from types import SimpleNamespace

    from softmaxkit._calibrated_classifier import _warn_once_for_the_folds
    from softmaxkit.calibration import ZeroProbabilityWarning

    folds = [SimpleNamespace(zero_classes_=np.arange(400)), SimpleNamespace(zero_classes_=np.arange(0, 600, 2))]
    with pytest.warns(ZeroProbabilityWarning) as said:
        _warn_once_for_the_folds([], folds, "isotonic")
    text = str(said[0].message)
    assert "class index(es) 0, 2, 4" in text and "and 190 more classes" in text
    assert "398" not in text
