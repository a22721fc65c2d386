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
    # named as such in prose (it read "isotonic scaling", "platt scaling")
    rc, out, err = call(capsys, "calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                         "--method", method, "--holdout", "0.5", "--out", str(tmp_path / "c2.npz"))
    assert rc == 0, err
    name = {"isotonic": "isotonic calibration", "platt": "Platt scaling"}[method]
    assert name in out and f"{method} scaling" not in out


def test_a_fit_on_its_bound_is_never_called_better():
    """The issue: with T on its bound the report still said the log-loss got 'better'."""
    from softmaxkit.cli._evaluation import verdict

    before = {"n": 15, "ece": 0.05, "ece_ci": [0.0, 0.1], "ece_noise_floor": 0.06, "log_loss": 0.30}
    after = {"n": 15, "ece": 0.01, "ece_ci": [0.0, 0.02], "ece_noise_floor": 0.06, "log_loss": 0.01}
    text, tone = verdict(before, after, change="temperature scaling",
                         params={"temperature": 1e-10, "at_bound": True})
    assert tone == "warn" and "better" not in text
    assert "bound" in text and "T = 1e-10" in text and "not an improvement" in text
    change = {"after_minus_before": -0.29, "ci95": [-0.31, -0.27], "reading": "better"}
    text, tone = verdict(before, after, change="temperature scaling", params={"temperature": 0.5, "at_bound": False},
                         loss_change=change)
    assert "(better" in text


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


def test_zero_scores_are_refused_naming_the_files_row_and_class(capsys, tmp_path):
    """Audit: a -inf logit (an isotonic map's 0) reached the library, whose error gave a 0-based array
    position and no file; a zero on a true class suggested an eps= the command line does not have."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 60)
    z = rng.normal(size=(60, 3)) + 2.0 * np.eye(3)[y]
    z[4, (y[4] + 1) % 3] = -np.inf  # row 5 of the file, not its true class
    names = np.array(["a", "b", "c"])
    path = write_columns(tmp_path / "z.csv", {f"logit_{c}": z[:, j] for j, c in enumerate(names)})
    write_columns(tmp_path / "y.csv", {"y": names[y]})
    for method in ("platt", "vector", "isotonic"):
        rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", tmp_path / "y.csv", "--method", method,
                          "--out", tmp_path / f"{method}.npz")
        assert rc == 1 and f"z.csv: row 5 (line 6): class '{names[(y[4] + 1) % 3]}' has logit -inf" in err, err
        assert f"{method} calibration needs every score finite" in err and "--method temperature" in err
    assert call(capsys, "calibrate", "--logits", path, "--labels", tmp_path / "y.csv", "--out",
                tmp_path / "t.npz", "-q")[0] == 0  # a temperature keeps -inf at -inf
    z[7, y[7]] = -np.inf  # row 8: its true class
    path = write_columns(tmp_path / "z2.csv", {f"logit_{c}": z[:, j] for j, c in enumerate(names)})
    rc, _, err = call(capsys, "calibrate", "--logits", path, "--labels", tmp_path / "y.csv",
                      "--out", tmp_path / "u.npz")
    assert rc == 1 and f"z2.csv: row 8 (line 9): its true class '{names[y[7]]}' has logit -inf" in err, err
    p = np.exp(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))
    path = write_columns(tmp_path / "p.csv", {f"p_{c}": p[:, j] for j, c in enumerate(names)})
    rc, _, err = call(capsys, "calibrate", "--probs", path, "--labels", tmp_path / "y.csv", "--out", tmp_path / "v.npz")
    assert rc == 1 and f"p.csv: row 8 (line 9): its true class '{names[y[7]]}' has probability 0" in err, err
    assert "eps" not in err
    # A model's probabilities can hold exact zeros (a random forest's votes): the calibrators that fit on p take them.
    assert "use --method platt or isotonic" in err, err
    assert "--method platt" not in call(capsys, "calibrate", "--logits", tmp_path / "z2.csv", "--labels",
                                        tmp_path / "y.csv", "--out", tmp_path / "u.npz")[2]  # logits: no such way out


def test_platt_logits_out_chain_back_into_calibrate(capsys, tmp_path):
    """Audit: fit --calibrate platt -> predict --logits-out wrote -inf where p_0 is 1e-24, and calibrate
    refused the file it had just been told was a valid --logits input."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    data = write_columns(tmp_path / "bc.csv", {**{f"f{j}": X[:, j] for j in range(X.shape[1])},
                                               "y": np.array(["malignant", "benign"])[y]})
    assert call(capsys, "fit", data, "--target", "y", "--calibrate", "platt", "--no-report",
                "--out", tmp_path / "m.npz", "-q")[0] == 0
    assert call(capsys, "predict", tmp_path / "m.npz", data, "--target", "y", "--calibrator",
                tmp_path / "m.calibrator.npz", "--out", tmp_path / "p.csv", "--logits-out", tmp_path / "z.csv",
                "-q")[0] == 0
    from softmaxkit.data import read_columns

    logits = read_columns(tmp_path / "z.csv")
    assert all(np.isfinite(np.asarray(v, dtype=float)).all() for v in logits.values())
    for method in ("platt", "temperature"):
        rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "z.csv", "--labels", data, "--label-column",
                          "y", "--method", method, "--out", tmp_path / f"{method}2.npz", "-q")
        assert rc == 0, err


def test_a_change_is_meaningful_only_when_the_intervals_do_not_overlap():
    """The ECE interval is for the population's ECE, so it can lie below its own (upward-biased)
    estimate: an estimate outside the other side's interval no longer means a real change."""
    from softmaxkit.cli._evaluation import verdict

    before = {"ece": 0.060, "ece_noise_floor": 0.02, "log_loss": 0.30, "ece_ci": (0.042, 0.055), "n": 200}
    after = {"ece": 0.040, "ece_noise_floor": 0.02, "log_loss": 0.29, "ece_ci": (0.020, 0.045), "n": 200}
    text, tone = verdict(before, after, change="temperature scaling")
    assert "within the bootstrap uncertainty" in text and tone == "neutral"
    apart = {**after, "ece_ci": (0.020, 0.038)}
    text, tone = verdict(before, apart, change="temperature scaling")
    assert "lowered the calibration error" in text and tone == "good"
