"""Review 5: ``apply``'s unnamed outputs in the input's column order; one-vs-one SVCs inside searches.

* ``apply`` takes and writes the columns in one class order (the calibrator's, else sorted) so that
  ``argmax`` ties do not follow the file's column order. A ``.npy`` keeps no class names, so its
  columns were silently written as ``bird, cat, dog`` for input columns ``--classes dog,cat,bird``:
  read back with the same ``--classes``, accuracy 0.3033 and log-loss 2.2741 (the raw logits: 0.73),
  exit 0. ``--logits-out x.npy`` too. Outputs that name their columns keep the one order.
* ``CalibratedClassifier`` looked for ``decision_function_shape="ovo"`` only inside
  ``FrozenEstimator`` and ``Pipeline``: around ``GridSearchCV(Pipeline(SVC(ovo)))`` the 3 pairwise
  margins of wine were calibrated as class logits (log-loss 1.0986, accuracy 0.222, no error).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import call, error_line
from softmaxkit.data import read_columns

pytest.importorskip("sklearn")

INPUT = ["dog", "cat", "bird"]  # the .npy's column order: not sorted


# --------------------------------------------------------------------------- apply: .npy outputs


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Logits in a .npy whose columns are dog, cat, bird; text labels; a vector calibrator fitted on them."""
    work = tmp_path_factory.mktemp("review5_apply")
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=(n, 3)) * 2
    y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    np.save(work / "z.npy", z)
    (work / "y.csv").write_text("y\n" + "\n".join(np.array(INPUT)[y]) + "\n")
    cal = work / "cal.npz"
    assert call_main(["calibrate", "--logits", work / "z.npy", "--classes", ",".join(INPUT), "--labels",
                      work / "y.csv", "--method", "vector", "--out", cal, "-q"]) == 0
    return {"work": work, "z": work / "z.npy", "labels": work / "y.csv", "cal": cal, "y": y}


def call_main(argv):
    from softmaxkit.cli import main

    return main([str(a) for a in argv])


def _apply(capsys, chain, out, logits_out):
    rc, _, err = call(capsys, "apply", chain["cal"], "--logits", chain["z"], "--classes", ",".join(INPUT),
                      "--out", out, "--logits-out", logits_out, "-q")
    assert rc == 0, err


def test_npy_outputs_keep_the_input_column_order(chain, capsys):
    """out.npy and --logits-out .npy hold the same numbers as the named .csv outputs, in the input's
    column order (dog, cat, bird), which is the only order a reader of the unnamed matrix can know."""
    w = chain["work"]
    _apply(capsys, chain, w / "p.npy", w / "z_out.npy")
    _apply(capsys, chain, w / "p.csv", w / "z_out.csv")
    named_p, named_z = read_columns(w / "p.csv"), read_columns(w / "z_out.csv")
    np.testing.assert_allclose(np.load(w / "p.npy"), np.column_stack([named_p[f"p_{c}"] for c in INPUT]))
    np.testing.assert_allclose(np.load(w / "z_out.npy"), np.column_stack([named_z[f"logit_{c}"] for c in INPUT]))


def test_npy_output_reads_back_with_the_same_classes(chain, capsys):
    """The repro's chain: evaluate --probs out.npy --classes dog,cat,bird scores as the named output
    does (0.3033 / 2.2741 before, where the raw logits give 0.73)."""
    w = chain["work"]
    _apply(capsys, chain, w / "p2.npy", w / "z2.npy")
    _apply(capsys, chain, w / "p2.csv", w / "z2.csv")

    def metrics(*source):
        rc, out, err = call(capsys, "evaluate", *source, "--labels", chain["labels"], "--json")
        assert rc == 0, err
        return json.loads(out)["metrics"]

    named = metrics("--probs", w / "p2.csv")
    unnamed = metrics("--probs", w / "p2.npy", "--classes", ",".join(INPUT))
    assert named["accuracy"] > 0.7
    assert unnamed["accuracy"] == pytest.approx(named["accuracy"])
    assert unnamed["log_loss"] == pytest.approx(named["log_loss"])
    logits = metrics("--logits", w / "z2.npy", "--classes", ",".join(INPUT))
    assert logits["log_loss"] == pytest.approx(named["log_loss"])


@pytest.mark.parametrize("suffix", [".csv", ".safetensors", ".npz"])
def test_named_outputs_keep_the_one_class_order(chain, capsys, suffix):
    """Outputs that keep the class names (p_<class> columns; .safetensors without the text prediction
    column) are written in the calibrator's class order, as the tie rule wants."""
    w = chain["work"]
    _apply(capsys, chain, w / f"p3{suffix}", w / f"z3{suffix}")
    names = [c for c in read_columns(w / f"p3{suffix}") if c.startswith("p_")]
    assert names == ["p_bird", "p_cat", "p_dog"]
    assert [c for c in read_columns(w / f"z3{suffix}")] == ["logit_bird", "logit_cat", "logit_dog"]


def test_npy_output_of_integer_classes_out_of_order_is_refused(tmp_path, capsys):
    """--classes 2,0,1 on an unnamed input: its .npy output in that order would be read back as classes
    0, 1, 2 (and in sorted order, against the same --classes, as the wrong ones): refused, naming --out."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(60, 3))
    np.save(tmp_path / "z.npy", z)
    (tmp_path / "y.csv").write_text("y\n" + "\n".join(map(str, rng.integers(0, 3, 60))) + "\n")
    cal = tmp_path / "cal.npz"
    assert call_main(["calibrate", "--logits", tmp_path / "z.npy", "--classes", "2,0,1", "--labels",
                      tmp_path / "y.csv", "--method", "vector", "--out", cal, "-q"]) == 0
    capsys.readouterr()
    rc, _, err = call(capsys, "apply", cal, "--logits", tmp_path / "z.npy", "--classes", "2,0,1",
                      "--out", tmp_path / "p.npy")
    assert rc != 0
    assert "--out" in error_line(err) and "keeps no class names" in err
    assert not (tmp_path / "p.npy").exists()


# --------------------------------------------------------------------------- one-vs-one inside searches


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    return train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)


def _ovo_pipe(**svc):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(decision_function_shape="ovo", random_state=0, **svc))


def _search(kind, estimator, grid):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, RandomizedSearchCV

    if kind == "grid":
        return GridSearchCV(estimator, grid, cv=3)
    if kind == "random":
        return RandomizedSearchCV(estimator, grid, n_iter=1, cv=3, random_state=0)
    return HalvingGridSearchCV(estimator, grid, cv=3, min_resources=30)


@pytest.mark.parametrize("kind", ["grid", "random", "halving"])
def test_search_over_ovo_svc_is_refused(wine, kind):
    """The audit's silent 1.0986 / 0.222: a search around an ovo SVC without predict_proba is refused
    as the bare SVC is, cross-fitted or frozen after fitting."""
    from sklearn.frozen import FrozenEstimator

    from softmaxkit.calibration import CalibratedClassifier

    Xtr, _, ytr, _ = wine
    search = _search(kind, _ovo_pipe(), {"svc__C": [1.0]})
    with pytest.raises(ValueError, match=r"SVC\(decision_function_shape='ovo'\).*3 pairwise"):
        CalibratedClassifier(search, cv=3, ensemble=False).fit(Xtr, ytr)
    frozen = FrozenEstimator(_search(kind, _ovo_pipe(), {"svc__C": [1.0]}).fit(Xtr, ytr))
    with pytest.raises(ValueError, match=r"3 pairwise"):
        CalibratedClassifier(frozen, ensemble=False).fit(Xtr, ytr)


@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
def test_search_over_ovo_svc_with_proba_reads_predict_proba(wine):
    from sklearn.model_selection import GridSearchCV

    from softmaxkit.calibration import CalibratedClassifier

    Xtr, Xte, ytr, yte = wine
    search = GridSearchCV(_ovo_pipe(probability=True), {"svc__C": [1.0]}, cv=3)
    cal = CalibratedClassifier(search, cv=3, ensemble=False).fit(Xtr, ytr)
    assert cal.calibrated_classifiers_[0].response == "predict_proba"
    assert np.mean(cal.predict(Xte) == yte) > 0.9


@pytest.mark.parametrize("grid", [
    {"decision_function_shape": ["ovr", "ovo"]},
    [{"C": [1.0]}, {"decision_function_shape": ["ovo"]}],
    "step",
])
def test_unfitted_search_that_may_pick_ovo_is_treated_as_ovo(wine, grid):
    """An unfitted search whose grid can give an ovo SVC (its parameter, or a whole step) cannot be
    read as class scores: each fold's search may pick it."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    from softmaxkit._calibrated_classifier import _response_method

    if grid == "step":
        search = GridSearchCV(make_pipeline(StandardScaler(), LinearSVC()),
                              {"linearsvc": [LinearSVC(), SVC(decision_function_shape="ovo")]})
    else:
        search = GridSearchCV(SVC(), grid)
    with pytest.raises(ValueError, match="pairwise"):
        _response_method(search, 3)


def test_no_false_ovo(wine):
    """Not ovo: a search whose grid only sets ovr over an ovr SVC; a frozen search that picked ovr;
    and meta-estimators that compute their own class scores from ovo SVCs (one-vs-rest)."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    from softmaxkit._calibrated_classifier import _response_method

    Xtr, _, ytr, _ = wine
    assert _response_method(GridSearchCV(SVC(), {"decision_function_shape": ["ovr"], "C": [1, 2]}), 3) \
        == "decision_function"
    assert _response_method(GridSearchCV(SVC(decision_function_shape="ovo"),
                                         {"decision_function_shape": ["ovr"]}), 3) == "decision_function"
    picked = GridSearchCV(SVC(decision_function_shape="ovo"), {"decision_function_shape": ["ovr"]}, cv=3)
    assert _response_method(FrozenEstimator(picked.fit(Xtr, ytr)), 3) == "decision_function"
    assert _response_method(OneVsRestClassifier(SVC(decision_function_shape="ovo")), 3) == "decision_function"
    assert _response_method(GridSearchCV(OneVsRestClassifier(SVC(decision_function_shape="ovo")),
                                         {"estimator__C": [1.0]}), 3) == "decision_function"


def test_frozen_search_is_read_by_the_candidate_it_picked(wine):
    """ovr and ovo SVCs predict alike, so the search picks the first, ovr: frozen, that fitted pick
    computes the scores (class scores); cross-fitted, each fold's search may pick either (refused)."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    from softmaxkit._calibrated_classifier import _response_method

    Xtr, _, ytr, _ = wine
    search = GridSearchCV(SVC(), {"decision_function_shape": ["ovr", "ovo"]}, cv=3).fit(Xtr, ytr)
    assert search.best_params_ == {"decision_function_shape": "ovr"}
    assert _response_method(FrozenEstimator(search), 3) == "decision_function"
    with pytest.raises(ValueError, match="GridSearchCV, which may pick an estimator with decision_function_shape"):
        _response_method(search, 3)
