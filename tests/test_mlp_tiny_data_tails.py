"""``softmaxkit fit --hidden`` on a few dozen rows: no catastrophically over-confident held-out rows.

The CLI asks for L-BFGS on an MLP whose penalty ``alpha="auto"`` chooses on
standardised features. On iris with 21 training rows (7 per class, seed 11),
the penalty chosen on the internal folds' 14-row training parts was 7e-4, and
L-BFGS fitted it to its optimum: held-out log-loss 4.67, 15 of 129 rows at
p(true) < 1e-6 (the least 1e-32). Adam on the same rows gave 0.43, none.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cli_helpers import call
import softmaxkit as sk
from softmaxkit.data import read_columns, write_columns


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    from sklearn.datasets import load_iris

    raw = load_iris()
    cols = {f"f{j}": raw.data[:, j] for j in range(raw.data.shape[1])}
    cols["species"] = raw.target_names[raw.target]
    return write_columns(tmp_path_factory.mktemp("tiny") / "iris.csv", cols)


def _held_out_p_true(capsys, iris_csv, tmp_path, *extra):
    """fit on 21 of iris's rows (``--holdout 0.86``, seed 11), predict the 129 held out; p(true) of each."""
    from softmaxkit.cli.fit import _split

    model = tmp_path / "m.npz"
    rc, _, err = call(capsys, "fit", iris_csv, "--target", "species", "--hidden", "100", "--holdout", "0.86",
                      "--seed", "11", "--no-report", "--out", model, "-q", *extra)
    assert rc == 0, err
    data = read_columns(iris_csv)
    y = np.asarray(data.pop("species")).astype(str)
    X = pd.DataFrame({name: np.asarray(v, dtype=float) for name, v in data.items()})  # named, as fitted
    train, held = _split(y, 0.86, 11)
    assert len(train) == 21
    fitted = sk.load(model)
    proba = fitted.predict_proba(X.iloc[held])
    return proba[np.arange(len(held)), np.searchsorted(fitted.classes_.astype(str), y[held])]


def test_fit_hidden_on_21_rows_is_not_overconfident(capsys, iris_csv, tmp_path):
    p_true = _held_out_p_true(capsys, iris_csv, tmp_path)
    log_loss = float(-np.mean(np.log(p_true)))
    assert log_loss < 1.0, log_loss
    assert p_true.min() >= 1e-6, (p_true.min(), int(np.sum(p_true < 1e-6)))


def test_the_library_applies_the_same_rule():
    """SoftmaxClassifier(solver="auto", standardize=True) under alpha="auto" on fewer rows than the
    threshold is the Adam fit, and at the threshold the L-BFGS fit: one rule for the library and the CLI."""
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.exceptions import ConvergenceWarning

    from softmaxkit import _alpha_search

    X, y = load_iris(return_X_y=True)
    n = _alpha_search.MLP_LBFGS_MIN_ROWS
    rows = np.random.RandomState(0).permutation(len(y))
    params = dict(hidden_layer_sizes=(3,), alpha="auto", standardize=True, max_iter=30, random_state=0)
    for m, expected in ((n - 1, "adam"), (n, "lbfgs")):
        Xm, ym = X[rows[:m]], y[rows[:m]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 30 iterations: a quick fit, compared exactly
            got = sk.SoftmaxClassifier(**params).fit(Xm, ym).predict_proba(X)
            same = sk.SoftmaxClassifier(solver=expected, **params).fit(Xm, ym).predict_proba(X)
        np.testing.assert_array_equal(got, same, err_msg=f"{m} rows")
    # An explicit solver is used as given; raw features, a fixed penalty or the linear model keep auto's choice.
    mlp = dict(hidden_layer_sizes=(3,), alpha="auto", standardize=True)
    assert sk.SoftmaxClassifier(solver="lbfgs", **mlp)._resolve_solver(2) == "lbfgs"
    assert sk.SoftmaxClassifier(**{**mlp, "standardize": False})._resolve_solver(1000) == "adam"
    assert sk.SoftmaxClassifier(**{**mlp, "alpha": 0.1})._resolve_solver(1000) == "adam"
    assert sk.SoftmaxClassifier(alpha="auto")._resolve_solver(2) == "lbfgs"


def test_a_file_saved_before_solver_existed_records_the_solver_that_ran(tmp_path):
    """Files without the "solver" record (written before solver_ existed): "auto" then meant Adam for an MLP
    (review R4: an old MLP loaded with solver_ "lbfgs"), L-BFGS for the linear model; explicit ones as given."""
    from softmaxkit.io import read_state, save_state

    X = np.random.RandomState(0).normal(size=(150, 3))
    y = (X[:, 0] > 0).astype(int)
    cases = (({"hidden_layer_sizes": (3,), "standardize": True, "alpha": "auto"}, "adam"), ({"alpha": 1.0}, "lbfgs"),
             ({"hidden_layer_sizes": (3,), "solver": "lbfgs", "alpha": 1.0}, "lbfgs"))
    for params, expected in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 5 iterations: a quick fit; only the record is checked
            model = sk.SoftmaxClassifier(max_iter=5, **params).fit(X, y)
        path = model.save(tmp_path / "m.npz")
        kind, meta, arrays = read_state(path)
        del meta["solver"]
        save_state(path, kind=kind, meta=meta, arrays=arrays)
        assert sk.load(path).solver_ == expected, params
