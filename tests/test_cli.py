"""The command line: every command through ``main([...])`` and the console script, and every bad input.

Kept fast: the small breast-cancer data, few iterations, and one demo run per
entry point shared by the tests that inspect its outputs.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import call, error_line, run_cli
import softmaxkit as sk
from softmaxkit.cli import COMMANDS, main
from softmaxkit.data import read_columns, write_columns

class _Evil:
    """Unpickling this creates ``path``: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# --------------------------------------------------------------------------- shared data


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def bc_csv(work) -> Path:
    """Breast-cancer features with a text target column, as a user would have it."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    cols = {name.replace(" ", "_"): raw.data[:, j] for j, name in enumerate(raw.feature_names)}
    cols["diagnosis"] = np.where(raw.target == 1, "benign", "malignant")
    return write_columns(work / "bc.csv", cols)


@pytest.fixture(scope="module")
def bc_features(work, bc_csv) -> Path:
    """The first 40 rows without the label, as Parquet."""
    cols = {k: v.to_numpy(zero_copy_only=False)[:40] for k, v in read_columns(bc_csv).items() if k != "diagnosis"}
    return write_columns(work / "bc_x.parquet", cols)


@pytest.fixture(scope="module")
def fitted(work, bc_csv) -> dict:
    """One ``fit --calibrate temperature`` run shared by the predict tests."""
    model = work / "model.npz"
    rc = main(["fit", str(bc_csv), "--target", "diagnosis", "--max-iter", "50", "--calibrate", "temperature",
               "--out", str(model), "--quiet"])
    assert rc == 0
    return {"model": model, "calibrator": work / "model.calibrator.npz", "report": work / "model-report"}


@pytest.fixture(scope="module")
def scores(work) -> dict:
    """Over-confident 3-class logits and their labels, as a framework would export them."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) * 3
    logits[np.arange(300), y] += 2.0
    np.save(work / "logits.npy", logits)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    write_columns(work / "probs.csv", {f"p{j}": probs[:, j] for j in range(3)})
    write_columns(work / "labels.csv", {"label": y})
    return {"logits": work / "logits.npy", "probs": work / "probs.csv", "labels": work / "labels.csv"}


# --------------------------------------------------------------------------- help and usage


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: softmaxkit " + command in capsys.readouterr().out


def test_console_script_help_lists_every_command():
    res = run_cli("--help")
    assert res.returncode == 0
    for command in COMMANDS:
        assert command in res.stdout


def test_help_imports_nothing_heavy():
    """``softmaxkit --help`` stays instant: building the parser imports no heavy dependency."""
    probe = ("import sys, json; from softmaxkit.cli import build_parser; build_parser(); "
             "print(json.dumps([m for m in ('torch', 'numba', 'sklearn', 'matplotlib', 'scipy', 'pyarrow', 'rich') "
             "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_json_and_quiet(command):
    """The README promises ``--help``, ``--json`` and ``--quiet`` on every command."""
    from softmaxkit.cli import _subparsers, build_parser

    sub = next(p for p in _subparsers(build_parser()) if p.prog.endswith(f" {command}"))
    options = {flag for action in sub._actions for flag in action.option_strings}
    assert {"--help", "--json", "--quiet", "-q"} <= options


def test_explain_quiet_prints_nothing(capsys):
    assert main(["explain", "0.03", "1.92", "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "data.csv"])  # --target and --out missing
    assert exc.value.code == 2
    assert "required" in capsys.readouterr().err


def test_predict_ci_without_target_is_a_usage_error(capsys, tmp_path):
    """Audit CR: ``predict --ci`` without ``--target`` exited 0 and computed nothing (its help says "with
    --target"), where ``--sets`` without ``--conformal`` is refused."""
    with pytest.raises(SystemExit) as exc:
        main(["predict", "m.npz", "d.csv", "--out", str(tmp_path / "p.csv"), "--ci"])
    assert exc.value.code == 2
    assert "--ci needs --target COL" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, option",
    [
        # (--dir: a regression fails at once rather than running the checkout's benchmarks)
        (["bench", "--timeout", "1_0", "--dir", "no-such-benchmarks"], "--timeout"),
        (["fit", "d.csv", "--target", "y", "--out", "m.npz", "--holdout", "0_5"], "--holdout"),
        (["fit", "d.csv", "--target", "y", "--out", "m.npz", "--max-iter", "1_000"], "--max-iter"),
        (["fit", "d.csv", "--target", "y", "--out", "m.npz", "--hidden", "64,3_2"], "--hidden"),
        (["demo", "--seed", "1_0"], "--seed"),
        (["fit", "d.csv", "--target", "y", "--out", "m.npz", "--seed", "1_0"], "--seed"),
        (["fit", "d.csv", "--target", "y", "--out", "m.npz", "--alpha", "0_5"], "--alpha"),
        (["calibrate", "--logits", "l.npy", "--labels", "y.npy", "--out", "c.npz", "--seed", "1_0"], "--seed"),
        (["evaluate", "--logits", "l.npy", "--labels", "y.npy", "--conformal", "c.npz", "--sets", "0_1"], "--sets"),
    ],
)
def test_numbers_with_underscores_are_usage_errors(capsys, argv, option):
    """Python's int()/float() read 1_000 as 1000 but also 0_5 as 5 (a --holdout of 0.5 meant): the shared
    option types refuse '_' rather than guess (audit: accepted silently)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "write numbers without '_'" in err


def test_number_types_still_accept_plain_numbers():
    from softmaxkit.cli._common import finite_float, fraction, hidden_sizes, integer, positive_float, positive_int

    assert positive_int(" 1000 ") == 1000 and integer("-3") == -3 and hidden_sizes("64,32") == (64, 32)
    assert fraction("0.5") == 0.5 and positive_float("1e-3") == 1e-3 and finite_float("-1e308") == -1e308


@pytest.mark.parametrize(
    "word, expected",
    [
        ("IsotonicCalibration", "an IsotonicCalibration"),  # audit: "a IsotonicCalibration"
        ("ArrayLike", "an ArrayLike"),
        ("TemperatureScaling", "a TemperatureScaling"),
        ("PlattScaling", "a PlattScaling"),
        ("OneVsRestClassifier", "a OneVsRestClassifier"),
        ("UserWarning", "a UserWarning"),
        ("MLPClassifier", "an MLPClassifier"),
        ("SVC", "an SVC"),
        ("F32", "an F32"),
        ("BF16", "a BF16"),
        ("X", "an X"),
        ("object", "an object"),
    ],
)
def test_with_article(word, expected):
    from softmaxkit.cli._common import with_article

    assert with_article(word) == expected


# --------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo_dir(work) -> Path:
    """The demo run once through the installed console script, with its default options."""
    res = run_cli("demo", cwd=work)
    assert res.returncode == 0, res.stderr
    (work / "demo_stdout.txt").write_text(res.stdout)
    return work / "softmaxkit-demo"


def test_demo_prints_cases_metrics_and_recovery(demo_dir):
    out = (demo_dir.parent / "demo_stdout.txt").read_text()
    assert "Breast cancer" in out and "log-loss" in out
    assert "P(malignant)" in out and "P(benign)" in out
    assert "Before (raw softmax)" in out and "After temperature scaling" in out
    assert "ECE [95% CI]" in out and "Frequency recovery" in out
    assert "report.html" in out


def test_demo_outputs(demo_dir):
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    for case in metrics["cases"]:
        assert abs(case["probability_sum"] - 1.0) < 1e-12
        assert abs(sum(case["probabilities"]) - 1.0) < 1e-12
        true = ["malignant", "benign"].index(case["truth"])
        assert case["log_loss"] == pytest.approx(-np.log(case["probabilities"][true]), rel=1e-6, abs=1e-9)
    before, after = metrics["test"]["uncalibrated"], metrics["test"]["temperature_scaled"]
    assert before["accuracy"] == after["accuracy"] > 0.85  # temperature scaling keeps the argmax
    assert before["ece_ci"][0] <= before["ece"] <= before["ece_ci"][1]
    assert metrics["temperature"] > 0
    assert metrics["frequency_recovery"]["max_abs_error"] < 5e-3
    for name in ("report.html", "metrics.json", "reliability_uncalibrated.png", "reliability_temperature_scaled.png"):
        assert (demo_dir / name).stat().st_size > 0


def test_demo_report_sections_and_embedded_images(demo_dir):
    page = (demo_dir / "report.html").read_text()
    for heading in ("What this page shows", "Individual test patients", "before and after temperature scaling",
                    "Frequency recovery", "What the numbers mean", "How this was made"):
        assert heading in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 2
    assert "<script" not in page and "https://" not in page


@pytest.mark.slow
def test_demo_json_digits(capsys, tmp_path):
    rc, out, err = call(capsys, "demo", "--dataset", "digits", "--out", str(tmp_path / "d"), "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["dataset"] == "digits" and len(metrics["classes"]) == 10
    assert metrics["frequency_recovery"]["n_classes"] == 3
    assert (tmp_path / "d" / "report.html").exists()


# --------------------------------------------------------------------------- fit / predict


def test_fit_writes_model_calibrator_and_report(fitted):
    assert fitted["model"].exists() and fitted["calibrator"].exists()
    metrics = json.loads((fitted["report"] / "metrics.json").read_text())
    assert metrics["classes"] == ["benign", "malignant"]
    assert set(metrics["held_out"]) == {"model", "calibrated"}
    assert "Held-out performance" in (fitted["report"] / "report.html").read_text()


def test_fit_json_through_console_script(work, bc_csv):
    data = np.column_stack([np.asarray(c, dtype=float) for c in list(read_columns(bc_csv).values())[:5]])
    data = np.column_stack([data, np.asarray(read_columns(bc_csv)["diagnosis"]) == "benign"])
    np.save(work / "numeric.npy", data)
    res = run_cli("fit", str(work / "numeric.npy"), "--target", "-1", "--hidden", "8", "--max-iter", "20",
                  "--no-report", "--out", str(work / "mlp.safetensors"), "--json")
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["model"]["hidden_layer_sizes"] == [8] and payload["n_features"] == 5
    assert payload["classes"] == [0, 1]
    assert (work / "mlp.safetensors").exists() and "report" not in payload


def test_fit_ignore_leaves_id_columns_out(capsys, tmp_path):
    """An id column is not a feature: it is left out, with a warning naming it (a text id was an error, a
    numeric one a silent feature); --ignore says so outright; a pandas row index (unnamed first column) is
    left out without being asked."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=40) > 0, "yes", "no")
    data = write_columns(tmp_path / "d.csv", {"": np.arange(40), "id": np.array([f"P{i}" for i in range(40)]),
                                              "a": X[:, 0], "b": X[:, 1], "y": y})
    rc, out, err = call(capsys, "fit", data, "--target", "y", "--out", tmp_path / "m.npz", "--no-report", "--json")
    assert rc == 0 and "'id'" in err and "left out of the features" in err, err
    assert json.loads(out)["n_features"] == 2
    rc, out, err = call(capsys, "fit", data, "--target", "y", "--ignore", "id", "--out", tmp_path / "m.npz",
                        "--no-report", "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["n_features"] == 2 and payload["ignored_columns"] == ["", "id"]
    rc, _, err = call(capsys, "fit", data, "--target", "y", "--ignore", "id,nope", "--out", tmp_path / "m.npz")
    assert rc == 1 and "no column 'nope' for --ignore" in error_line(err)


def test_fit_penalises_standardised_features_unless_told(capsys, bc_csv, tmp_path):
    """Files hold raw features; a scikit-learn user would put a StandardScaler in front. On breast cancer the
    raw-feature penalty gave held-out log-loss 0.0866 against 0.0765 (seed 0). fit standardises, the saved
    model is the library's SoftmaxClassifier(standardize=True) on the training rows, and reads raw features."""
    from softmaxkit.cli.fit import _split

    data = read_columns(bc_csv)
    y = np.asarray(data.pop("diagnosis"))
    X = np.column_stack([np.asarray(v, dtype=float) for v in data.values()])
    train, _ = _split(y, 0.25, 0)
    for extra, standardize in (((), True), (("--no-standardize",), False)):
        out = tmp_path / f"m{standardize}.npz"
        rc, text, err = call(capsys, "fit", bc_csv, "--target", "diagnosis", "--no-report", "--out", out, "--json",
                             *extra)
        assert rc == 0, err
        assert json.loads(text)["model"]["standardize"] is standardize
        saved = sk.load(out)
        assert saved.get_params()["standardize"] is standardize
        expected = sk.SoftmaxClassifier(standardize=standardize, random_state=0).fit(X[train], y[train])
        np.testing.assert_allclose(saved.predict_proba(X), expected.predict_proba(X), rtol=0, atol=1e-12)


def test_fit_trains_a_tuned_mlp_to_its_optimum(capsys, bc_csv, tmp_path):
    """An MLP whose penalty fit chooses (on standardised features) is trained by L-BFGS; a fixed --alpha keeps
    the library's Adam, whose plateau stop regularises a small penalty as in MLPClassifier."""
    for extra, solver in (((), "lbfgs"), (("--alpha", "0.01"), "adam"), (("--no-standardize",), "adam")):
        out = tmp_path / f"mlp_{solver}_{len(extra)}.npz"
        rc, _, err = call(capsys, "fit", bc_csv, "--target", "diagnosis", "--hidden", "4", "--max-iter", "20",
                          "--no-report", "--out", out, "-q", *extra)
        assert rc == 0, err
        assert sk.load(out).solver_ == solver, extra


def test_a_warning_of_every_fold_prints_once(capsys, bc_csv, tmp_path):
    """fit --calibrate trains the model and 5 calibration folds; their shared warning is one line, not 6."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as after library code reset Python's once-per-place memory
        rc, _, err = call(capsys, "fit", str(bc_csv), "--target", "diagnosis", "--hidden", "4", "--max-iter", "2",
                          "--alpha", "1", "--calibrate", "temperature", "--no-report", "--out", str(tmp_path / "m.npz"))
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert sum("adam reached max_iter=2 " in line for line in lines) == 1, err


def test_text_labels_in_a_safetensors_model(capsys, bc_csv, tmp_path):
    """The class names live in the file's JSON record, so .safetensors keeps text labels as .npz does."""
    for suffix in (".npz", ".safetensors"):
        model = str(tmp_path / f"m{suffix}")
        rc, _, err = call(capsys, "fit", str(bc_csv), "--target", "diagnosis", "--no-report", "--out", model, "-q")
        assert rc == 0, err
        rc, _, err = call(capsys, "predict", model, str(bc_csv), "--target", "diagnosis",
                          "--out", str(tmp_path / f"p{suffix}.csv"), "-q")
        assert rc == 0, err
    by_npz, by_safetensors = (read_columns(tmp_path / f"p{s}.csv") for s in (".npz", ".safetensors"))
    assert list(by_safetensors) == list(by_npz) == ["p_benign", "p_malignant", "prediction"]
    np.testing.assert_array_equal(by_safetensors["prediction"], by_npz["prediction"])
    np.testing.assert_array_equal(by_safetensors["p_benign"], by_npz["p_benign"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_predict_formats(capsys, fitted, bc_features, tmp_path, suffix):
    out = tmp_path / f"probs{suffix}"
    rc, stdout, err = call(capsys, "predict", str(fitted["model"]), str(bc_features), "--out", str(out))
    assert rc == 0, err
    cols = read_columns(out)
    assert list(cols) == ["p_benign", "p_malignant", "prediction"]
    p = np.column_stack([np.asarray(cols["p_benign"]), np.asarray(cols["p_malignant"])]).astype(float)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert "Wrote 40 rows x 2 class probabilities" in stdout


def test_predict_npy_has_probabilities_only(capsys, fitted, bc_features, tmp_path):
    rc, _, err = call(capsys, "predict", str(fitted["model"]), str(bc_features), "--out", str(tmp_path / "p.npy"))
    assert rc == 0, err
    assert np.load(tmp_path / "p.npy").shape == (40, 2)


def test_predict_with_calibrator_and_target_scores(capsys, fitted, bc_csv, tmp_path):
    rc, out, err = call(capsys, "predict", str(fitted["model"]), str(bc_csv), "--target", "diagnosis",
                        "--calibrator", str(fitted["calibrator"]), "--out", str(tmp_path / "p.csv"), "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["calibrated"] and payload["rows"] == 569 and payload["metrics"]["accuracy"] > 0.85


def test_predict_through_console_script(fitted, bc_features, tmp_path):
    res = run_cli("predict", str(fitted["model"]), str(bc_features), "--out", str(tmp_path / "p.csv"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and (tmp_path / "p.csv").exists()


# --------------------------------------------------------------------------- calibrate / evaluate


@pytest.mark.parametrize("method", ["temperature", "vector", "matrix"])
def test_calibrate_methods(capsys, scores, tmp_path, method):
    rc, out, err = call(capsys, "calibrate", "--logits", str(scores["logits"]), "--labels", str(scores["labels"]),
                        "--method", method, "--out", str(tmp_path / "cal.npz"), "--holdout", "0.3", "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["evaluated_on"] == "held-out" and payload["n_evaluated"] == 90
    before, after = payload["metrics"]["uncalibrated"], payload["metrics"]["calibrated"]
    assert after["log_loss"] < before["log_loss"]  # these logits are badly over-confident
    assert (tmp_path / "cal.npz").exists()


def test_calibrate_report_through_console_script(scores, tmp_path):
    res = run_cli("calibrate", "--logits", str(scores["logits"]), "--labels", str(scores["labels"]),
                  "--out", str(tmp_path / "t.npz"), "--report", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    assert "T = " in res.stdout and "After temperature scaling" in res.stdout
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Before and after calibration" in page and page.count("data:image/png;base64,") == 2


def test_evaluate_logits_and_probs_agree(capsys, scores):
    labels = str(scores["labels"])
    rc, out, err = call(capsys, "evaluate", "--logits", str(scores["logits"]), "--labels", labels, "--json")
    assert rc == 0, err
    from_logits = json.loads(out)["metrics"]
    rc, out, err = call(capsys, "evaluate", "--probs", str(scores["probs"]), "--labels", labels, "--json")
    assert rc == 0, err
    from_probs = json.loads(out)["metrics"]
    assert from_probs["log_loss"] == pytest.approx(from_logits["log_loss"], rel=1e-9)
    assert from_probs["ece"] == pytest.approx(from_logits["ece"], rel=1e-9)


def test_evaluate_report_through_console_script(scores, tmp_path):
    res = run_cli("evaluate", "--logits", str(scores["logits"]), "--labels", str(scores["labels"]),
                  "--report", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    assert "ECE [95% CI]" in res.stdout
    assert (tmp_path / "rep" / "reliability_predictions.png").exists()


# --------------------------------------------------------------------------- bench


def _bench_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_ops.py").write_text(
        "import sys\nprint('op      ours   torch  ratio')\nprint('softmax 1.0    2.0    2.0x', '--quick' in sys.argv)\n"
    )
    (folder / "bench_calibration.py").write_text("raise SystemExit(3)\n")
    return folder


def test_bench_runs_scripts_and_skips_missing(capsys, tmp_path):
    folder = _bench_dir(tmp_path)
    rc, out, err = call(capsys, "bench", "--quick", "--dir", str(folder), "--only", "ops", "--only", "linear_ce")
    assert rc == 0, err
    assert "softmax 1.0    2.0    2.0x True" in out
    assert "bench_linear_ce.py: skipped, not found" in out


def test_bench_runs_a_script_named_twice_once(capsys, tmp_path):
    """``--only`` names are de-duplicated, spelling aside (audit: ``--only ops --only ops`` ran it twice)."""
    folder = _bench_dir(tmp_path)
    rc, out, err = call(capsys, "bench", "--dir", str(folder), "--only", "ops", "--only", "calibration",
                        "--only", "bench_ops.py", "--json")
    assert rc == 1  # bench_calibration.py exits 3
    assert [r["script"] for r in json.loads(out)["results"]] == ["bench_ops.py", "bench_calibration.py"]


def test_bench_reports_a_failing_script(capsys, tmp_path):
    folder = _bench_dir(tmp_path)
    rc, out, err = call(capsys, "bench", "--dir", str(folder), "--json")
    assert rc == 1
    payload = json.loads(out)
    codes = {r["script"]: r.get("returncode") for r in payload["results"]}
    assert codes["bench_ops.py"] == 0 and codes["bench_calibration.py"] == 3
    assert "bench_calibration.py" in error_line(err)


def test_bench_dir_relative_to_the_working_directory(capsys, tmp_path, monkeypatch):
    """A relative --dir names the folder from where the command runs, not from the checkout each script
    runs in (audit: ``--dir fakebench/benchmarks`` ran ``fakebench/fakebench/benchmarks/bench_ops.py``)."""
    (tmp_path / "checkout").mkdir()
    _bench_dir(tmp_path / "checkout")
    monkeypatch.chdir(tmp_path)
    rc, out, err = call(capsys, "bench", "--dir", "checkout/benchmarks", "--only", "ops")
    assert rc == 0, out + err
    assert "softmax 1.0    2.0    2.0x False" in out


def test_bench_timeout_stops_a_silent_script(capsys, tmp_path):
    """--timeout is wall-clock time: a script that prints nothing is stopped too (audit: it ran on)."""
    import time

    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_ops.py").write_text("print('started', flush=True)\nimport time\ntime.sleep(60)\n")
    start = time.perf_counter()
    rc, out, err = call(capsys, "bench", "--dir", str(folder), "--only", "ops", "--timeout", "1", "--json")
    assert time.perf_counter() - start < 30
    assert rc == 1
    (record,) = json.loads(out)["results"]
    assert record["timed_out"] and record["returncode"] is None and record["output"] == "started\n"
    assert "bench_ops.py (timed out after 1 s)" in error_line(err)


def test_bench_script_whose_child_keeps_the_pipe_open_is_not_a_timeout(capsys, tmp_path):
    """A script that exits 0 while a process it started still holds stdout (audit: read as "timed out")."""
    import time

    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_ops.py").write_text(
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('done', flush=True)\n"
    )
    start = time.perf_counter()
    rc, out, err = call(capsys, "bench", "--dir", str(folder), "--only", "ops", "--timeout", "30", "--json")
    assert time.perf_counter() - start < 20
    assert rc == 0, err
    (record,) = json.loads(out)["results"]
    assert record["returncode"] == 0 and not record["timed_out"] and record["output"] == "done\n"


def test_bench_that_ran_nothing_fails(capsys, tmp_path):
    """Every script skipped (a wrong --dir) is not a success (audit: exit 0)."""
    (tmp_path / "empty").mkdir()
    rc, out, err = call(capsys, "bench", "--dir", str(tmp_path / "empty"))
    assert rc == 1
    assert "skipped, not found" in out
    assert "no benchmark ran" in error_line(err) and "--dir" in error_line(err)
    rc, _, err = call(capsys, "bench", "--dir", str(_bench_dir(tmp_path)), "--only", "linear_ce", "-q")
    assert rc == 1 and "holds none of bench_linear_ce.py" in error_line(err)


def test_bench_runs_every_script_in_the_checkout():
    """``softmaxkit bench`` runs them all: no benchmark script is left out of its list."""
    from softmaxkit.cli.bench import SCRIPTS, default_dir

    on_disk = sorted(path.name for path in default_dir().glob("bench_*.py"))
    assert on_disk and sorted(SCRIPTS) == on_disk


def test_bench_console_script(tmp_path):
    res = run_cli("bench", "--dir", str(_bench_dir(tmp_path)), "--only", "bench_ops.py")
    assert res.returncode == 0 and "ratio" in res.stdout


# ------------------------------------------------------------------ bad input: one line naming file, row, column


def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_missing_data_file(capsys, tmp_path):
    rc, _, err = call(capsys, "fit", str(tmp_path / "nope.csv"), "--target", "y", "--out", str(tmp_path / "m.npz"))
    assert rc == 1 and "nope.csv: no such file" in error_line(err)


def test_missing_target_column(capsys, bc_csv, tmp_path):
    rc, _, err = call(capsys, "fit", str(bc_csv), "--target", "label", "--out", str(tmp_path / "m.npz"))
    assert rc == 1 and re.search(r"bc\.csv: no column 'label' for --target \(columns: 'mean_radius'", error_line(err))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a,b,y\n1,2,0\n3,oops,1\n", r"d\.csv: row 2 \(line 3\), column 'b': non-numeric value 'oops'"),
        ("a,b,y\n1,2,0\n3,inf,1\n", r"d\.csv: row 2 \(line 3\), column 'b': non-finite value inf"),
        ("a,b,y\n1,2,0\nnan,4,1\n", r"d\.csv: row 2 \(line 3\), column 'a': missing value"),
        ("a,b,y\n1,2,0\n3,4,0\n5,6,0\n7,8,0\n", r"d\.csv: column 'y': every label is 0; at least 2 classes"),
        ("", r"d\.csv: the file is empty"),
        ("a,b,y\n", r"d\.csv: the file has no data rows"),
    ],
    ids=["non-numeric", "non-finite", "missing", "single-class", "empty", "header-only"],
)
def test_bad_training_data(capsys, tmp_path, text, expected):
    data = _csv(tmp_path / "d.csv", text)
    rc, _, err = call(capsys, "fit", data, "--target", "y", "--out", str(tmp_path / "m.npz"))
    assert rc == 1 and re.search(expected, error_line(err))
    assert not (tmp_path / "m.npz").exists()


def test_logits_and_labels_of_different_lengths(capsys, scores, tmp_path):
    write_columns(tmp_path / "short.csv", {"label": np.array([0, 1, 2])})
    for command in (["evaluate"], ["calibrate", "--out", str(tmp_path / "c.npz")]):
        rc, _, err = call(capsys, *command, "--logits", str(scores["logits"]), "--labels", str(tmp_path / "short.csv"))
        assert rc == 1
        assert "logits.npy has 300 rows but" in error_line(err) and "short.csv has 3" in err


def test_labels_without_header_one_row_short_say_why(capsys, scores, tmp_path):
    # A header-less labels file starting with 0 reads as pandas' unnamed column '0': one row short.
    labels = np.load(scores["logits"]).argmax(1)
    labels[0] = 0
    (tmp_path / "y.csv").write_text("".join(f"{v}\n" for v in labels))
    rc, _, err = call(capsys, "evaluate", "--logits", str(scores["logits"]), "--labels", str(tmp_path / "y.csv"))
    assert rc == 1
    assert "y.csv has 299" in error_line(err) and "if it has no header line, its first row was read" in err


def test_binary_brier_is_named_and_infinite_log_loss_is_not_null(capsys, tmp_path):
    """Audit: the CLI's binary Brier was twice scikit-learn's without saying so, and --json wrote an
    infinite log-loss as null, the value of "not computed"."""
    from sklearn.metrics import brier_score_loss

    p1 = np.array([0.9, 0.2, 0.6, 0.0])
    y = np.array([1, 0, 0, 1])  # the last row: the true class has probability 0
    write_columns(tmp_path / "p.csv", {"p_0": 1 - p1, "p_1": p1})
    write_columns(tmp_path / "y.csv", {"y": y})
    rc, out, _ = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv")
    assert rc == 0 and "twice scikit-learn's binary brier_score_loss" in out
    rc, out, _ = call(capsys, "evaluate", "--probs", tmp_path / "p.csv", "--labels", tmp_path / "y.csv", "--json")
    metrics = json.loads(out)["metrics"]
    assert metrics["log_loss"] == "inf" and float(metrics["log_loss"]) == np.inf
    assert metrics["brier"] == pytest.approx(2 * brier_score_loss(y, p1), rel=1e-12)


def test_label_out_of_range_of_the_logits(capsys, scores, tmp_path):
    write_columns(tmp_path / "y.csv", {"label": np.r_[np.zeros(299, int), 5]})
    rc, _, err = call(capsys, "evaluate", "--logits", str(scores["logits"]), "--labels", str(tmp_path / "y.csv"))
    assert rc == 1
    expected = r"y\.csv: row 300 \(line 301\), column 'label': label 5 is not a class of the 3-class"
    assert re.search(expected, error_line(err))


def test_label_not_seen_in_training(capsys, fitted, bc_csv, tmp_path):
    cols = {k: v.to_numpy(zero_copy_only=False)[:5] for k, v in read_columns(bc_csv).items()}
    cols["diagnosis"] = np.array(["benign", "benign", "unknown", "malignant", "benign"])
    data = write_columns(tmp_path / "new.csv", cols)
    rc, _, err = call(capsys, "predict", str(fitted["model"]), str(data), "--target", "diagnosis",
                      "--out", str(tmp_path / "p.csv"))
    assert rc == 1
    assert re.search(r"new\.csv: row 3 \(line 4\), column 'diagnosis': label 'unknown' was not seen in training",
                     error_line(err))


def test_single_class_labels_for_calibration(capsys, scores, tmp_path):
    write_columns(tmp_path / "y.csv", {"label": np.ones(300, int)})
    rc, _, err = call(capsys, "calibrate", "--logits", str(scores["logits"]), "--labels", str(tmp_path / "y.csv"),
                      "--out", str(tmp_path / "c.npz"))
    assert rc == 1 and "y.csv: every label is 1; at least 2 classes" in error_line(err)


def test_probabilities_that_do_not_sum_to_one(capsys, scores, tmp_path):
    write_columns(tmp_path / "p.csv", {"a": np.array([0.5, 0.2]), "b": np.array([0.5, 0.3])})
    write_columns(tmp_path / "y.csv", {"label": np.array([0, 1])})
    rc, _, err = call(capsys, "evaluate", "--probs", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "y.csv"))
    assert rc == 1 and "p.csv: row 2: probabilities sum to 0.5, not 1" in error_line(err)


def _model_on_npy(capsys, tmp_path, X, y):
    np.save(tmp_path / "train.npy", np.column_stack([X, y]))
    rc, _, err = call(capsys, "fit", tmp_path / "train.npy", "--target", "-1", "--alpha", "1",
                      "--out", tmp_path / "m.npz", "--quiet")
    assert rc == 0, err
    return tmp_path / "m.npz"


def test_names_on_one_side_only_need_by_position(capsys, tmp_path):
    """Audit: a model fitted on a .npy read a named CSV by position; reversed columns flipped a prediction."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2)) * [1.0, 3.0]
    y = (X[:, 0] > 0).astype(int)  # only column 0 matters
    model = _model_on_npy(capsys, tmp_path, X, y)
    reversed_csv = write_columns(tmp_path / "new.csv", {"b": X[:, 1], "a": X[:, 0]})
    rc, _, err = call(capsys, "predict", model, reversed_csv, "--out", tmp_path / "p.csv")
    assert rc == 1 and not (tmp_path / "p.csv").exists()
    assert re.search(r"new\.csv: its first line \('b', 'a'\) is read as column names, but the model .*m\.npz records "
                     r"no column names \(it was fitted on a file without them.*if that line is data, add a header line; "
                     r"else pass --by-position", error_line(err))
    # The user vouches for the order: file order it is, and the JSON result says so.
    rc, out, err = call(capsys, "predict", model, reversed_csv, "--by-position", "--out", tmp_path / "p.csv", "--json")
    assert rc == 0, err
    assert json.loads(out)["columns_by_position"] is True
    assert json.loads(out)["classes"] == [0, 1]  # integer classes stay integers (they were "0", "1")
    # npy model, npy data: positional on both sides, nothing to vouch for.
    np.save(tmp_path / "x.npy", X)
    rc, out, err = call(capsys, "predict", model, tmp_path / "x.npy", "--out", tmp_path / "q.csv", "--json")
    assert rc == 0, err
    assert json.loads(out)["columns_by_position"] is True
    assert (read_columns(tmp_path / "q.csv")["prediction"].to_numpy() == y).mean() > 0.95


def test_named_model_refuses_unnamed_data_unless_by_position(capsys, fitted, bc_csv, tmp_path):
    columns = read_columns(bc_csv)
    X = np.column_stack([c.to_numpy() for name, c in columns.items() if name != "diagnosis"])[:40]
    np.save(tmp_path / "x.npy", X)
    rc, _, err = call(capsys, "predict", fitted["model"], tmp_path / "x.npy", "--out", tmp_path / "p.csv")
    assert rc == 1
    assert re.search(r"x\.npy: has no column names, so its columns cannot be matched to the ones the model .* was "
                     r"fitted on \('mean_radius', 'mean_texture', .*\); pass --by-position", error_line(err))
    rc, out, _ = call(capsys, "predict", fitted["model"], tmp_path / "x.npy", "--by-position",
                      "--out", tmp_path / "p.csv", "--json")
    assert rc == 0 and json.loads(out)["columns_by_position"] is True
    rc, out, _ = call(capsys, "predict", fitted["model"], bc_csv, "--target", "diagnosis",
                      "--out", tmp_path / "named.csv", "--json")
    assert rc == 0 and json.loads(out)["columns_by_position"] is False
    by_name = read_columns(tmp_path / "named.csv")["p_benign"].to_numpy()[:40]
    np.testing.assert_allclose(read_columns(tmp_path / "p.csv")["p_benign"].to_numpy(), by_name, rtol=1e-12)


def test_wrong_number_of_features_without_names(capsys, fitted, bc_csv, tmp_path):
    """A file without column names (.npy) is read by position, so its width must match."""
    X = np.column_stack([c.to_numpy() for c in list(read_columns(bc_csv).values())[:30]] + [np.zeros(569)])
    np.save(tmp_path / "x.npy", X)
    rc, _, err = call(capsys, "predict", str(fitted["model"]), str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.csv"))
    assert rc == 1
    assert "x.npy: has 31 feature columns but the model expects 30" in error_line(err) and "--target COL" in err


def test_corrupted_model_file(capsys, fitted, bc_features, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(fitted["model"].read_bytes()[:200])
    rc, _, err = call(capsys, "predict", str(broken), str(bc_features), "--out", str(tmp_path / "p.csv"))
    assert rc == 1 and "broken.npz: corrupted or not a softmaxkit model" in error_line(err)


@pytest.mark.parametrize("layout", ["pickled-metadata", "pickled-array", "raw-pickle"])
def test_crafted_model_file_is_refused_without_running_code(capsys, bc_features, tmp_path, layout):
    marker = tmp_path / "code-ran"
    evil = np.array([_Evil(str(marker))], dtype=object)
    model = tmp_path / "crafted.npz"
    if layout == "pickled-metadata":
        np.savez(model, __softmaxkit_metadata__=evil)
    elif layout == "pickled-array":
        record = json.dumps({"kind": "SoftmaxClassifier", "format_version": 1, "meta": {}}).encode()
        np.savez(model, coef_0=evil, __softmaxkit_metadata__=np.frombuffer(record, dtype=np.uint8))
    else:
        model.write_bytes(pickle.dumps(_Evil(str(marker))))
    rc, _, err = call(capsys, "predict", str(model), str(bc_features), "--out", str(tmp_path / "p.csv"))
    assert rc == 1
    line = error_line(err)
    assert "crafted.npz" in line and ("refused" in line or "corrupted or not a softmaxkit model" in line)
    assert not marker.exists()


def test_wrong_kind_of_model_file(capsys, fitted, bc_features, tmp_path):
    rc, _, err = call(capsys, "predict", str(fitted["calibrator"]), str(bc_features), "--out", str(tmp_path / "p.csv"))
    assert rc == 1 and "holds a TemperatureScaling, but MODEL needs a SoftmaxClassifier" in error_line(err)


def test_input_is_never_overwritten(capsys, fitted, bc_features):
    before = bc_features.read_bytes()
    rc, _, err = call(capsys, "predict", str(fitted["model"]), str(bc_features), "--out", str(bc_features))
    assert rc == 1 and "refusing to overwrite" in error_line(err)
    assert bc_features.read_bytes() == before


def test_bad_output_extension(capsys, bc_csv, tmp_path):
    # a bad option value: a usage error (exit code 2), as README says (it exited 1)
    with pytest.raises(SystemExit) as exit_info:
        call(capsys, "fit", str(bc_csv), "--target", "diagnosis", "--out", str(tmp_path / "m.pkl"))
    assert exit_info.value.code == 2 and "unsupported extension '.pkl'" in capsys.readouterr().err


def test_errors_through_console_script(tmp_path):
    res = run_cli("evaluate", "--logits", str(tmp_path / "missing.npy"), "--labels", str(tmp_path / "y.csv"))
    assert res.returncode == 1
    assert res.stderr.strip() == f"softmaxkit: error: {tmp_path / 'missing.npy'}: no such file"


def test_missing_optional_dependency_is_one_line(capsys, scores, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    rc, _, err = call(capsys, "evaluate", "--logits", str(scores["logits"]), "--labels", str(scores["labels"]),
                      "--report", str(tmp_path / "rep"))
    assert rc == 1
    assert "needs matplotlib, which is not installed: pip install 'softmaxkit[plot]'" in error_line(err)


def test_quiet_prints_nothing(capsys, scores):
    rc, out, err = call(capsys, "evaluate", "--logits", str(scores["logits"]), "--labels", str(scores["labels"]), "-q")
    assert rc == 0 and out == ""


# --------------------------------------------------------------------------- the plain-language verdict


def _summary(ece, lo, hi, floor, loss, n=100):
    return {"n": n, "ece": ece, "ece_ci": [lo, hi], "ece_noise_floor": floor, "log_loss": loss}


@pytest.mark.parametrize(
    "before, after, start, tone",
    [
        (_summary(0.01, 0.0, 0.02, 0.02, 0.30), _summary(0.01, 0.0, 0.02, 0.02, 0.29), "No miscalibration detected", "neutral"),
        (_summary(0.10, 0.08, 0.12, 0.02, 0.50), _summary(0.01, 0.0, 0.03, 0.02, 0.30), "Temperature scaling brought",
         "good"),
        (_summary(0.05, 0.03, 0.07, 0.02, 0.30), _summary(0.049, 0.03, 0.07, 0.02, 0.29),
         "Temperature scaling changed the calibration error from 0.0500 to 0.0490, within", "neutral"),
        (_summary(0.20, 0.17, 0.23, 0.02, 0.90), _summary(0.08, 0.06, 0.10, 0.02, 0.40), "Temperature scaling lowered",
         "good"),
        (_summary(0.05, 0.04, 0.06, 0.02, 0.30), _summary(0.15, 0.13, 0.17, 0.02, 0.60), "Temperature scaling raised",
         "warn"),
    ],
)
def test_verdict_readings(before, after, start, tone):
    from softmaxkit.cli._evaluation import verdict

    text, got = verdict(before, after, change="temperature scaling")
    assert text.startswith(start) and got == tone
    assert "Log-loss went from" in text


def test_verdict_never_calls_a_rise_within_the_noise_an_improvement():
    """The breast-cancer demo's numbers: the ECE rose, 0.0316 -> 0.0338, within overlapping intervals; the
    higher noise floor after scaling put it under its floor (audit: "brought the calibration error from
    0.0316 ... to 0.0338 ... indistinguishable from perfectly calibrated", tone good)."""
    from softmaxkit.cli._evaluation import verdict

    before = _summary(0.0316, 0.0086, 0.0623, 0.0216, 0.0927, n=114)
    after = _summary(0.0338, 0.0, 0.0560, 0.0358, 0.0810, n=114)
    text, tone = verdict(before, after, change="temperature scaling")
    assert text.startswith("Temperature scaling changed the calibration error from 0.0316 to 0.0338, within the "
                           "bootstrap uncertainty")
    assert "no measurable change" in text and "brought" not in text and tone == "neutral"
    assert "under its noise floor 0.0358" in text and "Log-loss went from 0.0927 to 0.0810" in text
    assert "(better" not in text  # no paired interval given: the point change is not read (tests/test_cli_verdicts.py)


@pytest.mark.parametrize(
    "before, after, reading",
    [
        # Within the noise, both above their floors, whichever way the estimate moved.
        (_summary(0.05, 0.03, 0.07, 0.02, 0.30), _summary(0.06, 0.04, 0.08, 0.02, 0.29),
         "It stays above its noise floor 0.0200"),
        # Under the floor before, above it after: not "stays".
        (_summary(0.03, 0.01, 0.05, 0.035, 0.30), _summary(0.04, 0.02, 0.06, 0.02, 0.29),
         "under its noise floor 0.0350 before and is above its floor 0.0200 after"),
    ],
)
def test_verdict_within_the_noise_reads_each_floor(before, after, reading):
    from softmaxkit.cli._evaluation import verdict

    text, tone = verdict(before, after, change="temperature scaling")
    assert "no measurable change" in text and reading in text and tone == "neutral"
    assert "stays" not in text or "It stays" in reading


def test_verdict_log_loss_equal_as_printed():
    """A log-loss change hidden by the 4 printed decimals is not called better or worse."""
    from softmaxkit.cli._evaluation import verdict

    text, _ = verdict(_summary(0.01, 0.0, 0.02, 0.02, 0.300001), _summary(0.01, 0.0, 0.02, 0.02, 0.300000),
                      change="temperature scaling")
    assert text.endswith("Log-loss stayed at 0.3000.")


def test_single_column_binary_scores(capsys, tmp_path):
    rng = np.random.default_rng(1)
    z = rng.normal(size=200) * 2
    y = (rng.random(200) < 1 / (1 + np.exp(-z))).astype(int)
    write_columns(tmp_path / "z.csv", {"log_odds": z})
    write_columns(tmp_path / "p.csv", {"p1": 1 / (1 + np.exp(-z))})
    write_columns(tmp_path / "y.csv", {"label": y})
    rc, out, err = call(capsys, "evaluate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                        "--json")
    assert rc == 0, err
    from_logits = json.loads(out)["metrics"]
    rc, out, err = call(capsys, "evaluate", "--probs", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "y.csv"),
                        "--json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["log_loss"] == pytest.approx(from_logits["log_loss"], rel=1e-9)
    rc, _, err = call(capsys, "calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                      "--out", str(tmp_path / "t.npz"), "-q")
    assert rc == 0, err


def test_calibrate_from_probabilities(capsys, scores, fitted, bc_csv, tmp_path):
    rc, out, err = call(capsys, "calibrate", "--probs", str(scores["probs"]), "--labels", str(scores["labels"]),
                        "--out", str(tmp_path / "cal.npz"), "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["kind"] == "probabilities"
    assert payload["metrics"]["calibrated"]["log_loss"] < payload["metrics"]["uncalibrated"]["log_loss"]
    # A calibrator fitted on probabilities also serves predict, which feeds it the model's softmax.
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.05, 0.95, 200)
    write_columns(tmp_path / "p.csv", {"p1": p1})
    write_columns(tmp_path / "y.csv", {"label": (rng.random(200) < p1).astype(int)})
    rc, _, err = call(capsys, "calibrate", "--probs", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "y.csv"),
                      "--out", str(tmp_path / "bin.npz"), "-q")
    assert rc == 0, err
    rc, out, err = call(capsys, "predict", str(fitted["model"]), str(bc_csv), "--target", "diagnosis",
                        "--calibrator", str(tmp_path / "bin.npz"), "--out", str(tmp_path / "out.csv"), "--json")
    assert rc == 0, err
    assert json.loads(out)["calibrated"]


# --------------------------------------------------------------------------- fit --alpha (issue 15)


def test_fit_alpha_follows_the_estimator_default():
    from softmaxkit import SoftmaxClassifier
    from softmaxkit.cli import build_parser

    args = build_parser().parse_args(["fit", "d.csv", "--target", "y", "--out", "m.npz"])
    assert args.alpha == SoftmaxClassifier().alpha == "auto"
    for text, value in [("auto", "auto"), ("AUTO", "auto"), ("0.5", 0.5), ("0", 0.0), ("1e-4", 1e-4)]:
        assert build_parser().parse_args(["fit", "d.csv", "--target", "y", "--out", "m.npz", "--alpha", text]).alpha == value


@pytest.mark.parametrize("text", ["best", "-1", "nan", "inf", ""])
def test_fit_bad_alpha_is_a_usage_error(capsys, text):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "d.csv", "--target", "y", "--out", "m.npz", "--alpha", text])
    assert exc.value.code == 2
    assert "--alpha" in capsys.readouterr().err


def test_fit_reports_the_chosen_alpha(capsys, tmp_path):
    """--alpha auto (the default) is recorded with the penalty it chose, in the output and metrics.json."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    write_columns(tmp_path / "iris.csv", {**{f"f{j}": X[:, j] for j in range(4)}, "species": y})
    rc, out, err = call(capsys, "fit", str(tmp_path / "iris.csv"), "--target", "species", "--out",
                        str(tmp_path / "m.npz"), "--json")
    assert rc == 0, err
    model = json.loads(out)["model"]
    assert model["alpha"] == "auto"
    import softmaxkit as sk

    assert model["alpha_chosen"] == sk.load(tmp_path / "m.npz").alpha_ > 0
    assert "alpha = auto (chose" in (tmp_path / "m-report" / "report.html").read_text()


def test_bench_collects_goals_met(capsys, tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_ops.py").write_text("print('goals met: 1/2')\nprint('goals met: 2/3')\n")
    (folder / "bench_defaults.py").write_text("print('goals met: 4/4')\n")
    (folder / "bench_cli.py").write_text("print('no goals here')\n")
    rc, out, err = call(capsys, "bench", "--dir", str(folder), "--only", "ops", "--only", "defaults",
                        "--only", "cli", "--json")
    assert rc == 0, err  # a goal not met is a result, not a failure
    payload = json.loads(out)
    goals = {r["script"]: r["goals"] for r in payload["results"]}
    assert goals == {"bench_ops.py": {"met": 2, "total": 3}, "bench_defaults.py": {"met": 4, "total": 4},
                     "bench_cli.py": None}
    assert payload["goals_all_met"] is False
    rc, out, err = call(capsys, "bench", "--dir", str(folder), "--only", "ops")
    assert rc == 0 and "bench_ops.py: ok in" in out and "goals met 2/3" in out
    assert "goals met: bench_ops.py 2/3 (not all met)" in out


def test_bench_goals_are_not_all_met_when_a_script_failed(capsys, tmp_path):
    """A script that crashed after a goals line (or before its own) must not leave goals_all_met true."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_ops.py").write_text("print('goals met: 2/2')\n")
    (folder / "bench_defaults.py").write_text("raise SystemExit(3)\n")
    rc, out, _ = call(capsys, "bench", "--dir", str(folder), "--only", "ops", "--only", "defaults", "--json")
    assert rc == 1 and json.loads(out)["goals_all_met"] is False
