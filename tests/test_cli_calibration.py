"""The CLI's calibration paths: ``fit --calibrate`` (cross-fitted), isotonic/Platt in
``calibrate``, and a fit that stops on a bound never reported as "better".

Apart from tests/test_cli.py so the two can change independently.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call
from softmaxkit.data import write_columns

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory):
    from sklearn.datasets import load_wine

    raw = load_wine()
    cols = {name: raw.data[:, j] for j, name in enumerate(raw.feature_names)}
    cols["cultivar"] = raw.target
    return write_columns(tmp_path_factory.mktemp("wine") / "wine.csv", cols)


def test_fit_calibrate_cross_fits_on_wine(capsys, wine_csv, tmp_path):
    """The issue: fit --calibrate held out 15 rows, T went to 1e-10 and predict's log-loss to 6e8.

    Now the calibrator is cross-fitted on all training rows and the whole hold-out measures it.
    """
    model = tmp_path / "m.npz"
    rc, out, err = call(capsys, "fit", str(wine_csv), "--target", "cultivar", "--alpha", "1e-4", "--calibrate",
                         "temperature", "--out", str(model), "--report", str(tmp_path / "rep"), "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["n_calibration"] == payload["n_train"] and payload["n_train"] + payload["n_test"] == 178
    assert payload["n_test"] >= 44 and payload["calibration"] == "cross-fitted, 5 folds"
    params = payload["calibrator"]
    assert not params["at_bound"] and 0.1 < params["temperature"] < 100
    held = payload["held_out"]
    assert held["calibrated"]["log_loss"] < 1.0
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "cross-fitted, 5 folds" in page and "T = " in page
    rc, out, err = call(capsys, "predict", str(model), str(wine_csv), "--target", "cultivar", "--calibrator",
                         str(tmp_path / "m.calibrator.npz"), "--out", str(tmp_path / "p.csv"), "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["log_loss"] < 1.0


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_fit_and_calibrate_take_isotonic_and_platt(capsys, wine_csv, tmp_path, method):
    rc, out, err = call(capsys, "fit", str(wine_csv), "--target", "cultivar", "--alpha", "1", "--calibrate", method,
                         "--out", str(tmp_path / "m.npz"), "--no-report", "--json")
    assert rc == 0, err
    assert json.loads(out)["calibrator"]["method"] in ("IsotonicCalibration", "PlattScaling")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 3)) * 2
    y = np.argmax(z + rng.gumbel(size=z.shape) * 2, axis=1)
    write_columns(tmp_path / "z.csv", {f"z{k}": 3 * z[:, k] for k in range(3)})
    write_columns(tmp_path / "y.csv", {"y": y})
    rc, out, err = call(capsys, "calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                         "--method", method, "--holdout", "0.5", "--out", str(tmp_path / "c.npz"), "--json")
    assert rc == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["calibrated"]["brier"] < metrics["uncalibrated"]["brier"]


def test_a_fit_on_its_bound_is_never_called_better():
    """The issue: with T on its bound the report still said the log-loss got 'better'."""
    from softmaxkit.cli._evaluation import verdict

    before = {"n": 15, "ece": 0.05, "ece_ci": [0.0, 0.1], "ece_noise_floor": 0.06, "log_loss": 0.30}
    after = {"n": 15, "ece": 0.01, "ece_ci": [0.0, 0.02], "ece_noise_floor": 0.06, "log_loss": 0.01}
    text, tone = verdict(before, after, change="temperature scaling",
                         params={"temperature": 1e-10, "at_bound": True})
    assert tone == "warn" and "better" not in text
    assert "bound" in text and "T = 1e-10" in text and "not an improvement" in text
    text, tone = verdict(before, after, change="temperature scaling", params={"temperature": 0.5, "at_bound": False})
    assert "(better)" in text


def test_calibrate_says_when_the_temperature_is_on_its_bound(capsys, tmp_path):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 3))
    y = np.argmin(z, axis=1)  # logits that point away from the labels: T runs to its upper bound
    write_columns(tmp_path / "z.csv", {f"z{k}": z[:, k] for k in range(3)})
    write_columns(tmp_path / "y.csv", {"y": y})
    rc, out, err = call(capsys, "calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                         "--out", str(tmp_path / "c.npz"), "--report", str(tmp_path / "rep"))
    assert rc == 0, err
    assert "on its bound" in out and "not an improvement" in out and "(better)" not in out
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "stopped on its bound" in page
