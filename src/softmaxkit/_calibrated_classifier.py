"""CalibratedClassifier: a classifier and a calibrator cross-fitted on its out-of-fold scores.

Re-exported by :mod:`softmaxkit.calibration`. Imports scikit-learn, so it loads
on first use of ``softmaxkit.calibration.CalibratedClassifier``.
"""

from __future__ import annotations

import inspect
import numbers
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, get_tags, indexable
from sklearn.utils._indexing import _safe_indexing
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, _routing_enabled, process_routing
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_method_params,
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
    column_or_1d,
)

from softmaxkit._alpha_search import is_iterator, require_splits
from softmaxkit._validation import check_cv_param
from softmaxkit._loss_interval import name_list
from softmaxkit.calibration import METHODS
from softmaxkit.io import Persistable


#: scikit-learn removed ``cv="prefit"``; what replaces it here (see the ``estimator`` parameter).
_PREFIT_HINT = (
    ": cv='prefit' was removed (as in scikit-learn); to calibrate an already fitted classifier without "
    "refitting it, pass estimator=FrozenEstimator(fitted) (from sklearn.frozen import FrozenEstimator) and "
    "leave cv alone"
)

#: Probabilities from ``predict_proba`` are clipped here before a log (scikit-learn adds
#: 1e-12 for its temperature method); isotonic maps the probabilities themselves.
PROBA_EPS = 1e-12


@dataclass
class CalibratedPair:
    """One fitted classifier and the calibrator fitted on its held-out scores.

    Attributes
    ----------
    estimator : fitted classifier
    calibrator : fitted softmaxkit calibrator
    response : {"decision_function", "predict_proba"}
        Which output of ``estimator`` the calibrator reads.
    """

    estimator: Any
    calibrator: Any
    response: str

    def predict_proba(self, X: Any, classes: np.ndarray) -> np.ndarray:
        return self.calibrator.predict_proba(_scores(self.estimator, X, self.response, classes))


class CalibratedClassifier(Persistable, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    r"""A classifier whose probabilities are calibrated by cross-fitting, so no data is wasted.

    Like scikit-learn's ``CalibratedClassifierCV``, with softmaxkit's
    calibrators: every row serves both to train the classifier and, out of
    fold, to fit the calibrator, instead of a small hold-out doing the latter.

    Parameters
    ----------
    estimator : classifier, default None
        Any scikit-learn classifier with ``decision_function`` (preferred: its
        scores are logits) or ``predict_proba``. None: a
        :class:`~softmaxkit.SoftmaxClassifier` with default parameters. A
        ``sklearn.frozen.FrozenEstimator`` around a fitted classifier is never
        refitted: by default (``ensemble="auto"`` or ``False``) one calibrator
        is fitted on all of ``fit``'s rows (what scikit-learn's removed
        ``cv="prefit"`` did; ``cv`` is then unused); with ``ensemble=True``
        the ``cv`` folds split the calibration rows, one pair per fold, as in
        ``CalibratedClassifierCV`` (see ``ensemble``).
    method : {"temperature", "vector", "matrix", "isotonic", "platt"} or calibrator, default "temperature"
        The calibrator: :class:`TemperatureScaling`, :class:`VectorScaling`,
        :class:`MatrixScaling`, :class:`IsotonicCalibration` or
        :class:`PlattScaling` (scikit-learn's "sigmoid"), with default
        settings; or an unfitted instance of one, whose settings are used
        (each fit fits new copies; the instance itself stays unfitted), e.g.
        ``TemperatureScaling(prior_scale=None)``, which is scikit-learn's
        temperature method (no prior; with ``calibrate_on="own_fold"`` when
        ``ensemble=True``, its probabilities to 1e-6 or better on the same
        folds for ``decision_function`` logits and for ``predict_proba``
        without out-of-fold probabilities below about 1e-10). Smaller
        probabilities are read differently: scikit-learn takes
        ``log(p + 1e-12)``, this ``log(max(p, 1e-12))``; the two agree at
        ``p = 0`` and differ by up to ``log 2`` near ``p = 1e-12`` and by
        0.01 at ``p = 1e-10``. For very sharp ``predict_proba`` that moves
        the fit (Gaussian naive Bayes on the standardised breast-cancer set,
        ``cv=StratifiedKFold(3)``, ``ensemble=False``: 445 out-of-fold
        probabilities in (0, 1e-10), T = 6.9767 against scikit-learn's 6.9653,
        probabilities up to 1.74e-3 apart).
        The instance's ``input`` is set by the scores read (see Notes), and
        its ``eps``, when None, to 1e-12 for probabilities (not isotonic).
        An instance is treated as its method name (isotonic: per fold by
        default) and is saved with its settings.
    cv : int, cross-validation generator or iterable, default 5
        Folds. An int ``k`` >= 2 (None: 5) means shuffled stratified folds,
        ``StratifiedKFold(k, shuffle=True, random_state=s)``, ``s`` the
        estimator's int ``random_state`` (its own parameter, not a pipeline
        step's), else 0, so a refit makes the same folds; each class needs at
        least ``k`` rows. scikit-learn's ``CalibratedClassifierCV`` does not
        shuffle: on rows sorted by input, as ``np.repeat`` lays out counts,
        each of its folds holds out whole inputs that the fold's classifier
        never saw, and the calibrator learns to flatten every prediction
        (4 one-hot inputs, 2000 sorted rows: a class frequency of 0.01
        calibrated to 0.135, against 0.013 shuffled). For its folds, pass
        ``cv=StratifiedKFold(k)`` to both. A splitter or an iterable of
        ``(train, test)`` pairs is used as given. No ``"prefit"``: wrap a
        fitted classifier in ``FrozenEstimator`` (see ``estimator``).
    ensemble : bool or "auto", default "auto"
        ``True``: one (classifier, calibrator) pair per fold, the classifier
        trained on the other folds and the calibrator on this fold's scores;
        ``predict_proba`` averages the pairs' calibrated probabilities.
        ``False``: one calibrator fitted on the out-of-fold scores of all rows
        (each row scored by the fold model that did not see it), and one
        classifier refitted on all rows; a
        single pair, cheaper to predict with (``softmaxkit fit --calibrate``
        uses this). ``"auto"``: ``False`` for a ``FrozenEstimator``, else
        ``True`` (scikit-learn 1.9's default). A ``FrozenEstimator`` with
        ``ensemble=True`` follows ``CalibratedClassifierCV`` too: every pair
        holds the frozen estimator and its calibrator is fitted on the pair's
        fold (``calibrate_on="own_fold"``, the default for isotonic; the
        average of the per-fold maps is smoother than one map), or, with
        ``"all_folds"``, on all rows, which makes it the single calibrator
        of ``ensemble=False``.
    calibrate_on : {"auto", "all_folds", "own_fold"}, default "auto"
        With ``ensemble=True``, what each pair's calibrator is fitted on.
        ``"all_folds"``: the out-of-fold scores of every row, each scored by
        the pair that did not train on it; one calibrator, shared by all
        pairs. ``"own_fold"``: only the pair's own held-out fold, as
        ``CalibratedClassifierCV(ensemble=True)`` does (use it for
        scikit-learn parity; with ``method="temperature"`` it is not enough:
        the default :class:`TemperatureScaling` has a prior on ``T``,
        ``prior_scale=0.5``, that scikit-learn's temperature method lacks;
        pass ``method=TemperatureScaling(prior_scale=None)``
        for scikit-learn's fit, 3e-9 apart there, binary included, whose
        margin mapping differs only in the temperature's units, see Notes;
        except on a separable fold, where neither has a maximum: ours stops
        at its bound with a ``SeparableWarning``, scikit-learn where its
        solver stops, e.g. beta 1e10 against 45.6 on raw wine, 0.078 apart).
        ``"auto"``: ``"own_fold"`` for
        ``method="isotonic"``, ``"all_folds"`` for the parametric maps. See
        Notes for why.

    Attributes
    ----------
    classes_ : ndarray of shape (C,)
    calibrated_classifiers_ : list of CalibratedPair
        One per fold (``ensemble=True``), else one.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when the estimator has it (``X`` had string column names); kept by ``save``.

    Notes
    -----
    Scores: ``decision_function`` if the estimator has it (a binary
    ``(N,)`` margin ``f`` becomes the logits ``[-f/2, f/2]``, whose softmax
    is the estimator's own ``sigmoid(f)``; scikit-learn's temperature method
    uses ``[-f, f]``, whose softmax at T = 1 is not the model's), else the
    probabilities of ``predict_proba`` (``input="probs"``, clipped at 1e-12
    for the methods that take their log). A one-vs-one ``decision_function``
    (``SVC(decision_function_shape="ovo")`` with 3 or more classes) gives
    ``C(C-1)/2`` pairwise margins, not class scores: ``predict_proba`` is
    read instead, and without it ``fit`` raises, asking for
    ``decision_function_shape="ovr"``.

    ``method="platt"`` on probabilities fits each class's sigmoid on ``p``
    itself, as scikit-learn's "sigmoid" does (its probabilities to 1e-6 on
    the same folds, random forest, naive Bayes and k-nearest neighbours).
    Before ``PlattScaling(feature=...)`` it read the log-odds of ``p``
    clipped at 1e-12, where a vote of 0 is an outlier (-27.6) that
    flattens the slope: a random forest on wine scored median test log-loss
    0.172, against 0.133 uncalibrated and 0.062 now. The log-odds
    (``method=PlattScaling(feature="log_odds")``) can be the better map for
    sharp, overconfident probabilities (Gaussian naive Bayes, logistic
    regression on digits; see :class:`PlattScaling`); for those,
    "temperature" is usually better than either.

    On ``decision_function`` scores of 3 or more classes, ``"isotonic"``
    and ``"platt"`` map each class's one-vs-rest log-odds ``z_k -
    logsumexp_{j != k} z_j`` (see :class:`PlattScaling`); scikit-learn maps
    each raw column, which for a softmax model depends on a constant per row
    that the model leaves free. Median test log-loss over 5 stratified 70/30
    splits, standardised inputs, ``cv=StratifiedKFold(5)``,
    ``calibrate_on="own_fold"``, against
    scikit-learn's on the same folds (the numbers of versions before): Platt
    0.171 against 0.275 for logistic regression on digits, 0.206 against
    0.265 for ``LinearSVC``, 0.281 against 0.301 for ``RidgeClassifier``
    (whose columns are not logits either): Platt was lower in 8 of 8 splits
    in almost every cell of a second run (review R27: 8 splits, iris, wine,
    digits and two synthetic sets). Isotonic is clearly lower on logistic
    regression (0.264 against 0.339 on digits) and on iris and wine, but on
    the scores of ``LinearSVC`` and ``RidgeClassifier`` it is a wash: the
    first run gave 0.212 against 0.270 and 0.346 against 0.362 on digits,
    the second 0.305 against 0.293 and 0.447 against 0.407, a few rows at
    probability 0 deciding it. With 2 classes both read the margin, the
    log-odds of class 1.

    *Why one shared calibrator* (``calibrate_on="auto"``). The fold
    classifiers are fits of one estimator on mostly the same rows, so their
    out-of-fold scores are draws of one score distribution; a calibrator
    fitted on all ``N`` of them has ``cv`` times the data of one fitted on its
    own fold. Measured (``benchmarks/bench_calibration.py --only-shared``:
    median test log-loss over 10 stratified 75/25 splits of iris, wine,
    breast cancer and digits, for ``LogisticRegression`` with ``C=1`` and
    ``C=1e4`` and ``SoftmaxClassifier``, 5 folds, the same folds and fold
    models for both; all/own is the shared map's median over the per-fold
    maps' in each of the 12 data-set/model cells), with the prior on ``T``
    (``prior_scale=0.5``, a Student-t on ``log T``): shared Platt maps
    scored 0.49-0.85 of the per-fold loss (median 0.73) and were at most
    the per-fold loss in 120 of 120 splits; shared temperature, vector and
    matrix maps tie with per-fold ones: median all/own 1.003, 1.000 and
    1.001 (ranges 0.85-1.15, 0.82-1.03 and 0.84-1.07), at most the per-fold
    loss in 58, 71 and 65 of 120 splits. They stay shared by default (a
    tie either way; not re-decided for scikit-learn parity). Isotonic maps tie too (median 0.990, range
    0.81-1.11 over the 9 cells with finite medians, 75 of 120 splits, a
    split where both losses are infinite counted): both give some true
    class probability 0 (infinite loss in 30 per-fold and 31 shared splits
    of the 120, 22 and 21 of them on digits, where every median is
    infinite). Before the prior (per-row soft targets,
    ``pseudo_count=0.5``, which went wrong on small separable folds) the
    shared temperature, vector, matrix and Platt maps had scored 0.49-0.99
    of the per-fold loss in 47 of 48 cells; that gain, except Platt's, went
    with that prior.

    Cost: ``cv + 1`` fits of the estimator with ``ensemble=False``, ``cv``
    with ``ensemble=True`` (and ``cv`` calibrated predictions per call); none
    for a ``FrozenEstimator``, whose ``ensemble=True`` still predicts
    ``cv`` times per call.

    Persistence: ``save`` / :func:`softmaxkit.load` (no pickle) work when the
    estimator is a :class:`~softmaxkit.SoftmaxClassifier` (or a frozen one);
    other estimators cannot be stored without pickle, and ``save`` says so.
    Loading checks every pair against the model (classes, the calibrator's
    class count, method and input) and keeps ``feature_names_in_``, the
    classes' dtype and ``estimator=None``. A ``cv`` splitter (or explicit
    splits) cannot be written: the loaded model predicts as saved, but its
    ``cv`` is a :class:`~softmaxkit.classifier.UnsavedCV` that makes a refit,
    also of ``clone(model)``, raise until ``set_params(cv=...)`` gives the
    folds again, rather than cross-fit on other folds than the saved model's.

    References
    ----------
    scikit-learn's ``sklearn.calibration.CalibratedClassifierCV``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from softmaxkit.calibration import CalibratedClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = CalibratedClassifier(method="temperature", cv=3).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        method: str = "temperature",
        cv: Any = 5,
        ensemble: Any = "auto",
        calibrate_on: str = "auto",
        **unknown: Any,
    ):
        # **unknown is here only to refuse n_jobs (CalibratedClassifierCV has it) with the reason
        # instead of Python's bare "unexpected keyword"; the signature shown to scikit-learn and
        # help() omits it (see the end of the class).
        from softmaxkit.classifier import CALIBRATED_OPTIONS, check_unknown_params

        check_unknown_params(unknown, "CalibratedClassifier()", TypeError, options=CALIBRATED_OPTIONS)
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.ensemble = ensemble
        self.calibrate_on = calibrate_on

    def set_params(self, **params: Any) -> "CalibratedClassifier":
        """scikit-learn's ``set_params``; ``n_jobs`` is refused with the reason (ValueError, as
        scikit-learn refuses any unknown parameter), except ``n_jobs=None`` or 1: one process."""
        from softmaxkit.classifier import CALIBRATED_OPTIONS, known_params

        return super().set_params(**known_params(params, "set_params", options=CALIBRATED_OPTIONS))

    def _get_estimator(self) -> Any:
        if self.estimator is None:
            from softmaxkit.classifier import SoftmaxClassifier

            # As CalibratedClassifierCV's default LinearSVC: under metadata routing the default
            # estimator asks for the weights, which it would be given without routing.
            default = SoftmaxClassifier()
            return default.set_fit_request(sample_weight=True) if _routing_enabled() else default
        return self.estimator

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **fit_params: Any) -> "CalibratedClassifier":
        """Fit the classifier(s) and calibrator(s).

        Parameters
        ----------
        X : array-like of shape (N, d)
            Passed to the estimator as it is (a pipeline may take text or a DataFrame).
        y : array-like of shape (N,)
        sample_weight : array-like of shape (N,), default None
            Always used by the calibrator(s). The estimator gets them as in
            ``CalibratedClassifierCV``: with metadata routing disabled, when
            its ``fit`` takes ``sample_weight`` (else a warning says the
            calibrator alone uses them); with
            ``sklearn.set_config(enable_metadata_routing=True)``, when the
            estimator requested them (``set_fit_request(sample_weight=True)``,
            also inside a pipeline); passing weights that it left unrequested
            raises scikit-learn's ``UnsetMetadataPassedError``.
        **fit_params : dict
            Other metadata for the estimator's ``fit`` (every row's value is
            cut to the fold's rows), or, under metadata routing, for the
            ``cv`` splitter that requested them (``groups``).

        Returns
        -------
        self : CalibratedClassifier
        """
        isotonic = _is_isotonic(_calibrator_template(self.method))  # also validates method
        if self.ensemble not in (True, False, "auto"):
            raise ValueError(f"ensemble must be True, False or 'auto', got {self.ensemble!r}")
        if self.calibrate_on not in ("auto", "all_folds", "own_fold"):
            raise ValueError(f"calibrate_on must be 'auto', 'all_folds' or 'own_fold', got {self.calibrate_on!r}")
        # SoftmaxClassifier's check and words, before scikit-learn's (KFold: "n_splits=1") deep in the folds
        check_cv_param(self.cv, hint=_PREFIT_HINT if isinstance(self.cv, str) and self.cv == "prefit" else "")
        shared = self.calibrate_on == "all_folds" or (self.calibrate_on == "auto" and not isotonic)
        check_classification_targets(y)
        # A column vector (n, 1) becomes (n,) with scikit-learn's DataConversionWarning: y[train]
        # needs 1-D labels (the out-of-fold scoring failed with a bare IndexError).
        y = column_or_1d(y, warn=True)
        X, y = indexable(X, y)  # X and y of one length, or scikit-learn's error naming both
        # X itself is the estimator's to validate (a pipeline may take text or a DataFrame);
        # only its row count matters here, and 0 rows would fail later as an IndexError.
        n_samples = _num_samples(X)
        if n_samples == 0:
            raise ValueError(
                f"X has 0 samples (shape={getattr(X, 'shape', (0,))}) while a minimum of 1 is required: "
                "there is nothing to fit"
            )
        if sample_weight is not None:
            # One weight per row of X (scikit-learn's check and message, naming both lengths): a
            # longer array was silently cut to the first n weights, a shorter one an IndexError.
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        y = np.asarray(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            # scikit-learn's words (check_fit2d_1sample looks for "one class"), as LogisticRegression says it
            only = self.classes_[0].item() if isinstance(self.classes_[0], np.generic) else self.classes_[0]
            raise ValueError(
                "CalibratedClassifier needs samples of at least 2 classes in the data, but the data contains "
                f"only one class: {only!r}"
            )
        y_idx = encoder.transform(y)
        estimator = self._get_estimator()
        frozen = isinstance(estimator, FrozenEstimator)
        ensemble = (not frozen) if self.ensemble == "auto" else bool(self.ensemble)
        response = _response_method(estimator, self.classes_.size)
        routed = self._route_fit_params(estimator, sample_weight, fit_params)

        if frozen and not ensemble:
            scores = _scores(estimator, X, response, self.classes_, where="the frozen estimator", advice="given")
            pairs = [CalibratedPair(estimator, self._calibrator(response).fit(scores, y_idx, sample_weight), response)]
        else:
            folds = self._folds(y)
            used_up = is_iterator(self.cv)  # before check_cv reads it
            cv = self._splitter(estimator, y)
            # A frozen estimator's fit ignores its arguments: no metadata to pass it.
            fit_kw = {} if frozen else routed.estimator.fit
            advice = "given" if frozen else "fold"
            # ensemble=False needs the out-of-fold scores that cross_val_predict gives; they are
            # computed here, by the loop that ensemble=True needs anyway, because
            # cross_val_predict would route the already-routed metadata a second time: a request
            # under another name (set_fit_request(sample_weight="w")) then fails, and groups for
            # the splitter are dropped (CalibratedClassifierCV(ensemble=False) has both faults).
            fitted, held_out, fold_scores = [], [], []
            for i, (train, test) in enumerate(cv.split(X, y, **routed.splitter.split)):
                # Frozen: every pair holds the estimator itself, and the folds only split the
                # calibration rows (CalibratedClassifierCV's clone of it is the same object).
                est = estimator if frozen else clone(estimator).fit(
                    _safe_indexing(X, train), y[train], **_check_method_params(X, params=fit_kw, indices=train)
                )  # fmt: skip
                where = "the frozen estimator" if frozen else _fold_name(i, folds)
                fold_scores.append(
                    _scores(est, _safe_indexing(X, test), response, self.classes_, where=where, advice=advice)
                )
                held_out.append(test)
                if ensemble:  # ensemble=False keeps only the scores, not cv fitted estimators
                    fitted.append(est)
            # A generator that an earlier fit used up gives no split: say so, as SoftmaxClassifier
            # does (it failed in np.concatenate or as an IndexError below)
            require_splits(len(held_out), used_up=used_up)
            if ensemble:
                sw = (lambda rows: None) if sample_weight is None else (lambda rows: sample_weight[rows])
                if shared:
                    rows = np.concatenate(held_out)
                    calibrator = self._calibrator(response).fit(np.concatenate(fold_scores), y_idx[rows], sw(rows))
                    calibrators = [calibrator] * len(fitted)
                else:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        calibrators = [
                            self._fit_fold_calibrator(response, scores, y_idx[test], sw(test), fold=i,
                                                      folds=len(fitted))
                            for i, (scores, test) in enumerate(zip(fold_scores, held_out))
                        ]
                    _warn_once_for_the_folds(caught, calibrators, self.method)
                pairs = [CalibratedPair(est, cal, response) for est, cal in zip(fitted, calibrators)]
            else:
                rows = np.concatenate(held_out)
                if rows.size != n_samples or np.any(np.sort(rows) != np.arange(n_samples)):
                    raise ValueError(
                        f"ensemble=False needs cv folds whose test sets hold out every row exactly once (a "
                        f"partition, as cross_val_predict does), but cv={self.cv!r} does not; use KFold-like "
                        "folds or ensemble=True"
                    )
                scores = np.empty((n_samples, self.classes_.size))
                scores[rows] = np.concatenate(fold_scores)
                calibrator = self._calibrator(response).fit(scores, y_idx, sample_weight)
                est = clone(estimator).fit(X, y, **fit_kw)
                _check_classes(est, self.classes_, "the estimator refitted on all rows")
                pairs = [CalibratedPair(est, calibrator, response)]
        self.calibrated_classifiers_ = pairs
        first = pairs[0].estimator
        # A refit forgets the previous fit's input metadata (names from a DataFrame, then a numpy refit).
        for stale in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(stale, None)
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        return self

    def _route_fit_params(self, estimator: Any, sample_weight: np.ndarray | None, fit_params: dict[str, Any]) -> Any:
        """The metadata for the estimator's ``fit`` (``.estimator.fit``) and the splitter's
        ``split`` (``.splitter.split``), as ``CalibratedClassifierCV`` routes them."""
        if _routing_enabled():
            # The estimator gets what it requested (a pipeline routes on to its steps); the
            # weights themselves are always the calibrator's (self's request, in the router).
            weights = {} if sample_weight is None else {"sample_weight": sample_weight}
            return process_routing(self, "fit", **weights, **fit_params)
        # A frozen estimator's fit ignores the weights: nothing to warn about.
        weights = {} if isinstance(estimator, FrozenEstimator) else _fit_kwargs(estimator, sample_weight)
        return Bunch(estimator=Bunch(fit={**fit_params, **weights}), splitter=Bunch(split={}))

    def get_metadata_routing(self) -> MetadataRouter:
        """The metadata routing of this object, as ``CalibratedClassifierCV``'s.

        ``fit``'s ``sample_weight`` is consumed by the calibrator(s) and routed
        to the estimator's ``fit`` when it requests them; other metadata go to
        the estimator's ``fit`` or the ``cv`` splitter's ``split``, by their
        requests. Used only with ``sklearn.set_config(enable_metadata_routing=True)``.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
        """
        return (
            MetadataRouter(owner=self)
            .add_self_request(self)
            .add(estimator=self._get_estimator(), method_mapping=MethodMapping().add(caller="fit", callee="fit"))
            .add(splitter=self.cv, method_mapping=MethodMapping().add(caller="fit", callee="split"))
        )

    def _folds(self, y: np.ndarray) -> int | None:
        """The number of folds; like scikit-learn, refuse a class with fewer rows than folds."""
        n = self.cv if isinstance(self.cv, numbers.Integral) else getattr(self.cv, "n_splits", None)
        if self.cv is None:
            n = 5
        if n:
            labels, counts = np.unique(y, return_counts=True)
            if counts.min() < n:
                raise ValueError(
                    f"cv={n} folds need at least {n} rows of every class, but class {labels[np.argmin(counts)].item()!r} "
                    f"has {counts.min()}; use fewer folds"
                )
        return n

    def _splitter(self, estimator: Any, y: np.ndarray) -> Any:
        """``cv`` as a splitter: for an int (None: 5) shuffled stratified folds seeded by the estimator's
        int ``random_state``, else 0 (see the ``cv`` parameter); otherwise scikit-learn's ``check_cv``."""
        if self.cv is not None and not isinstance(self.cv, numbers.Integral):
            return check_cv(self.cv, y, classifier=True)
        params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
        seed = params.get("random_state")
        seed = int(seed) if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) else 0
        return StratifiedKFold(5 if self.cv is None else int(self.cv), shuffle=True, random_state=seed)

    def _calibrator(self, response: str) -> Any:
        """A new unfitted calibrator: ``method``'s class and settings, with the ``input`` that
        ``response``'s scores are (and for probabilities ``eps``: the given one, else
        :data:`PROBA_EPS` for the methods that take a log)."""
        template = _calibrator_template(self.method)
        params = template.get_params()
        if response == "decision_function":
            params.update(input="logits", eps=None)
        else:
            eps = params["eps"]
            params.update(input="probs", eps=eps if eps is not None or _is_isotonic(template) else PROBA_EPS)
        # As sklearn.base.clone does (the calibrators take their get_params() as keywords), so
        # the given instance is a template that is never fitted itself.
        return type(template)(**params)

    def _fit_fold_calibrator(self, response: str, scores: np.ndarray, y_idx: np.ndarray, weights: Any, *,
                             fold: int, folds: int) -> Any:
        """One fold's calibrator (``ensemble=True``); its errors name the fold."""
        try:
            return self._calibrator(response).fit(scores, y_idx, weights)
        except ValueError as exc:
            raise ValueError(f"the held-out rows of fold {fold + 1} of {folds}: {exc}; with ensemble=True each "
                             "fold's held-out rows fit a calibrator of their own, so use stratified folds (an int "
                             "cv)") from None

    def __sklearn_tags__(self) -> Any:
        # Sparse X goes to the estimator untouched (indexing by fold keeps it
        # sparse), so it works exactly when the estimator takes it: the tag is the
        # estimator's, as in CalibratedClassifierCV.
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = get_tags(self._get_estimator()).input_tags.sparse
        return tags

    # ---------------------------------------------------------------- prediction

    @property
    def zero_classes_(self) -> np.ndarray:
        """Indices (into ``classes_``) of the classes that every pair's calibrator can give
        probability exactly 0 (isotonic maps, see :class:`IsotonicCalibration`), so that their
        average can too; empty for the other methods."""
        check_is_fitted(self, "calibrated_classifiers_")
        return _common_zero_classes(pair.calibrator for pair in self.calibrated_classifiers_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities (N, C): the mean over the (classifier, calibrator) pairs."""
        check_is_fitted(self)
        total = None
        for pair in self.calibrated_classifiers_:
            p = pair.predict_proba(X, self.classes_)
            total = p if total is None else total + p
        return total / len(self.calibrated_classifiers_)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest calibrated probability (may differ from the estimator's own)."""
        check_is_fitted(self)  # before reading classes_: NotFittedError, not AttributeError
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of :meth:`predict` on ``(X, y)``, weighted by ``sample_weight``.

        As :meth:`SoftmaxClassifier.score <softmaxkit.SoftmaxClassifier.score>`: a
        label outside ``classes_`` counts as wrong (as in scikit-learn's
        ``accuracy_score``), and a ``UserWarning`` names those labels and their rows;
        labels of another type than ``classes_`` raise scikit-learn's ValueError, without it.

        Warns
        -----
        UserWarning
            ``y`` has labels outside ``classes_``.
        """
        from softmaxkit.classifier import warn_unseen_labels

        check_is_fitted(self)
        accuracy = super().score(X, y, sample_weight=sample_weight)
        y_arr = np.asarray(y)
        if y_arr.ndim == 1:  # after scoring, as SoftmaxClassifier.score: never warn before scikit-learn refuses y
            warn_unseen_labels(y_arr, self.classes_, type(self).__name__)
        return accuracy

    # ---------------------------------------------------------------- persistence

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from softmaxkit._mlp import labels_to_json
        from softmaxkit.classifier import SoftmaxClassifier, _cv_record

        check_is_fitted(self)
        cv, cv_unsaved = _cv_record(self.cv)  # a splitter is described (UnsavedCV), not lost
        meta: dict[str, Any] = {
            "params": {"method": _method_record(self.method), "ensemble": self.ensemble,
                       "calibrate_on": self.calibrate_on, "cv": cv, "cv_unsaved": cv_unsaved,
                       "estimator_default": self.estimator is None},
            "classes": labels_to_json(self.classes_),
            "pairs": [],
        }
        arrays: dict[str, np.ndarray] = {}
        for i, pair in enumerate(self.calibrated_classifiers_):
            est = pair.estimator
            frozen = isinstance(est, FrozenEstimator)
            inner = est.estimator if frozen else est
            if not isinstance(inner, SoftmaxClassifier):
                raise TypeError(
                    f"a CalibratedClassifier around a {type(inner).__name__} cannot be saved without pickle; "
                    "only SoftmaxClassifier estimators can (or save the calibrator alone)"
                )
            est_meta, est_arrays = inner._get_state()
            cal_meta, cal_arrays = pair.calibrator._get_state()
            meta["pairs"].append({"frozen": frozen, "response": pair.response, "estimator": est_meta,
                                  "calibrator_kind": type(pair.calibrator).__name__, "calibrator": cal_meta})
            arrays.update({f"pair{i}/estimator/{k}": v for k, v in est_arrays.items()})
            arrays.update({f"pair{i}/calibrator/{k}": v for k, v in cal_arrays.items()})
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "CalibratedClassifier":
        """The model a state of :meth:`_get_state` describes, checked as a whole: its parameters, and
        every pair's classifier and calibrator against each other and the model (classes, the
        calibrator's class count, method and input, the response read, the features)."""
        from softmaxkit._mlp import check_class_labels, labels_from_json
        from softmaxkit.classifier import UnsavedCV

        params = meta["params"]
        method, ensemble = params["method"], params["ensemble"]
        calibrate_on = params.get("calibrate_on", "own_fold")  # files before calibrate_on were fitted per fold
        method = _method_from_record(method)
        if not (isinstance(ensemble, bool) or ensemble == "auto"):
            raise ValueError(f"params.ensemble is {ensemble!r}, not true, false or 'auto'")
        if calibrate_on not in ("auto", "all_folds", "own_fold"):
            raise ValueError(f"params.calibrate_on is {calibrate_on!r}, not 'auto', 'all_folds' or 'own_fold'")
        cv = params["cv"]
        if cv is not None and not (isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv >= 2):
            raise ValueError(f"params.cv is {cv!r}, not null or an integer >= 2")
        if params.get("cv_unsaved") is not None:
            cv = UnsavedCV.from_record(params["cv_unsaved"])
        default_estimator = params.get("estimator_default", False)
        if not isinstance(default_estimator, bool):
            raise ValueError(f"params.estimator_default must be true or false, got {default_estimator!r}")
        classes = check_class_labels(labels_from_json(meta["classes"]))
        records = meta["pairs"]
        if not isinstance(records, list) or not records:
            raise ValueError("no (classifier, calibrator) pairs")
        pairs = [_pair_from_state(i, record, arrays, method) for i, record in enumerate(records)]
        frozen = isinstance(pairs[0].estimator, FrozenEstimator)
        first = pairs[0].estimator
        for i, pair in enumerate(pairs):
            _check_pair(i, pair, classes, first, frozen)
        one_pair = not ((not frozen) if ensemble == "auto" else ensemble)
        if one_pair and len(pairs) != 1:
            raise ValueError(f"ensemble={ensemble!r} fits one (classifier, calibrator) pair, but the file holds "
                             f"{len(pairs)} pairs")
        estimator = None if default_estimator else (first if frozen else clone(first))
        obj = cls(estimator, method=method, cv=cv, ensemble=ensemble, calibrate_on=calibrate_on)
        obj.classes_ = classes
        obj.calibrated_classifiers_ = pairs
        obj.n_features_in_ = first.n_features_in_
        names = getattr(first, "feature_names_in_", None)
        if names is not None:
            obj.feature_names_in_ = names
        return obj


# The declared parameters only, as for SoftmaxClassifier: scikit-learn reads parameters from
# __init__'s signature and its checks pass every name there.
CalibratedClassifier.__init__.__signature__ = inspect.signature(CalibratedClassifier.__init__).replace(
    parameters=[
        p for p in inspect.signature(CalibratedClassifier.__init__).parameters.values() if p.kind != p.VAR_KEYWORD
    ]
)


def _method_record(method: Any) -> Any:
    """``method`` as JSON: a name as it is; a calibrator instance as its class name and settings."""
    import softmaxkit.calibration as calibration

    if isinstance(method, str):
        return method
    kind = type(method).__name__
    if kind not in METHODS.values() or getattr(calibration, kind) is not type(method):
        raise TypeError(f"method={method!r} cannot be saved: only softmaxkit's own calibrator classes can")
    return {"calibrator": kind, "params": method.get_params()}


def _method_from_record(record: Any) -> Any:
    """The ``method`` that :func:`_method_record` wrote (ValueError naming the entry)."""
    import softmaxkit.calibration as calibration

    if isinstance(record, str):
        if record not in METHODS:
            raise ValueError(f"params.method is {record!r}, not one of {tuple(METHODS)}")
        return record
    if not (isinstance(record, dict) and record.get("calibrator") in METHODS.values()
            and isinstance(record.get("params"), dict)):
        raise ValueError(f"params.method is {record!r}, not a method name or a record of a calibrator's "
                         f"class ({', '.join(METHODS.values())}) and params")
    cls = getattr(calibration, record["calibrator"])
    # As the calibrators' own _from_state: JSON has no tuples (beta_bounds), and settings added since
    # the record was written take the value that keeps its old fit (no prior_scale -> None).
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in {**cls._params_added, **record["params"]}.items()}
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"params.method.params: {exc}") from None


def _pair_from_state(i: int, record: Any, arrays: dict[str, np.ndarray], method: Any) -> CalibratedPair:
    """Pair ``i`` of a saved CalibratedClassifier; errors inside it name the pair."""
    import softmaxkit.calibration as calibration
    from softmaxkit.classifier import SoftmaxClassifier
    from softmaxkit.io import STATE_ERRORS, state_error_detail

    if not isinstance(record, dict):
        raise ValueError(f"pair {i} must be a record, got {type(record).__name__}")
    kind, response, frozen = record["calibrator_kind"], record["response"], record["frozen"]
    expected = type(_calibrator_template(method)).__name__
    if kind != expected:
        raise ValueError(f"pair {i} holds a {kind!r} calibrator, but method={method!r} fits {expected}")
    if response not in ("decision_function", "predict_proba"):
        raise ValueError(f"pair {i}: unknown response method {response!r}")
    if not isinstance(frozen, bool):
        raise ValueError(f"pair {i}: frozen must be true or false, got {frozen!r}")

    def part(name: str) -> dict[str, np.ndarray]:
        prefix = f"pair{i}/{name}/"
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    try:
        est = SoftmaxClassifier._from_state(record["estimator"], part("estimator"))
    except STATE_ERRORS as exc:
        raise ValueError(f"pair {i} classifier: {state_error_detail(exc)}") from None
    try:
        cal = getattr(calibration, kind)._from_state(record["calibrator"], part("calibrator"))
    except STATE_ERRORS as exc:
        raise ValueError(f"pair {i} calibrator: {state_error_detail(exc)}") from None
    return CalibratedPair(FrozenEstimator(est) if frozen else est, cal, response)


def _check_pair(i: int, pair: CalibratedPair, classes: np.ndarray, first: Any, frozen: bool) -> None:
    """A loaded pair agrees with the model: its classifier's classes and features, the response read
    and the calibrator's class count and input (logits from decision_function, else probabilities)."""
    est, cal = pair.estimator, pair.calibrator
    if isinstance(est, FrozenEstimator) != frozen:
        raise ValueError(f"pair {i}: some pairs hold a frozen classifier and some do not")
    if not np.array_equal(est.classes_, classes):
        raise ValueError(f"pair {i}: its classifier has classes {est.classes_.tolist()}, the model "
                         f"{classes.tolist()}")
    if est.n_features_in_ != first.n_features_in_ or not np.array_equal(
        getattr(est, "feature_names_in_", []), getattr(first, "feature_names_in_", [])
    ):
        raise ValueError(f"pair {i}: its classifier takes other features than pair 0's")
    if cal.n_classes_ != classes.size:
        raise ValueError(f"pair {i}: its calibrator has n_classes_={cal.n_classes_}, the model {classes.size} classes")
    expected = _response_method(est, classes.size)
    if pair.response != expected:
        raise ValueError(f"pair {i}: response {pair.response!r}, but its classifier is calibrated on {expected!r}")
    wanted = "logits" if pair.response == "decision_function" else "probs"
    if cal.input != wanted:
        raise ValueError(f"pair {i}: its calibrator reads input={cal.input!r}, but {pair.response} gives {wanted}")


# --------------------------------------------------------------------------- scores


def _response_method(estimator: Any, n_classes: int) -> str:
    """The output of ``estimator`` that the calibrator reads: ``decision_function`` (class scores)
    unless it gives one-vs-one margins, else ``predict_proba``.

    ``decision_function_shape="ovo"`` (SVC, NuSVC) gives ``C(C-1)/2`` pairwise margins, not one
    score per class; at ``C = 3`` that is as many columns as classes, and they were calibrated as
    class logits (uniform probabilities, accuracy 0.27 on wine). Binary ovo is the one margin.
    """
    ovo = n_classes > 2 and _decision_function_shape(estimator) == "ovo"
    if hasattr(estimator, "decision_function") and not ovo:
        return "decision_function"
    if hasattr(estimator, "predict_proba"):
        return "predict_proba"
    if ovo:
        scorer = searched = _scoring_estimator(estimator)
        while getattr(searched, "estimator", None) is not None and not hasattr(searched, "decision_function_shape"):
            searched = _scoring_estimator(searched.estimator)  # the estimator a search searches over
        who = (f"{type(searched).__name__}(decision_function_shape='ovo')"
               if getattr(searched, "decision_function_shape", None) == "ovo"
               # the ovo estimator is one a search may pick (its grid), not the one it was given
               else f"{type(scorer).__name__}, which may pick an estimator with decision_function_shape='ovo',")
        raise ValueError(
            f"{who}.decision_function gives {n_classes * (n_classes - 1) // 2} "
            f"pairwise one-vs-one margins for {n_classes} classes, not one score per class, and it has no "
            f"predict_proba: set decision_function_shape='ovr' (SVC's default) to calibrate its class scores "
            "(or probability=True, deprecated in scikit-learn 1.9, to calibrate predict_proba)"
        )
    raise TypeError(f"{type(estimator).__name__} has neither decision_function nor predict_proba: nothing to calibrate")


def _scoring_estimator(estimator: Any) -> Any:
    """The estimator whose ``decision_function`` gives the scores, inside the wrappers that pass
    their inner estimator's on (nested too): FrozenEstimator, Pipeline (its final step) and a frozen
    hyper-parameter search (its ``best_estimator_``). A search that is not frozen is returned itself:
    it is cloned and refitted for each fold, and each fold's search may pick another candidate of its
    grid (:func:`_candidate_shapes`). Meta-estimators that make their own class scores from their
    estimators' (OneVsRestClassifier) are final themselves."""
    from sklearn.model_selection._search import BaseSearchCV

    frozen = False
    while True:
        if isinstance(estimator, FrozenEstimator):
            estimator, frozen = estimator.estimator, True
        elif isinstance(estimator, Pipeline) and estimator.steps:
            estimator = estimator.steps[-1][1]
        elif isinstance(estimator, BaseSearchCV) and frozen and getattr(estimator, "best_estimator_", None) is not None:
            estimator = estimator.best_estimator_
        else:
            return estimator


def _decision_function_shape(estimator: Any) -> Any:
    """The ``decision_function_shape`` parameter of the estimator that computes the scores (None when
    it has none; see :func:`_scoring_estimator`), ``"ovo"`` when one a search may pick has ``"ovo"``.

    Looking inside FrozenEstimator and Pipeline only, ``GridSearchCV(Pipeline(SVC(
    decision_function_shape="ovo")))`` had its pairwise margins calibrated as class logits (audit:
    log-loss 1.0986, accuracy 0.222 on wine, exit 0).
    """
    from sklearn.model_selection._search import BaseSearchCV

    scorer = _scoring_estimator(estimator)
    if isinstance(scorer, BaseSearchCV):
        shapes = _candidate_shapes(scorer)
        return "ovo" if "ovo" in shapes else shapes[0]
    get_params = getattr(scorer, "get_params", None)
    params = get_params(deep=False) if callable(get_params) and not isinstance(scorer, type) else {}
    return params.get("decision_function_shape", getattr(scorer, "decision_function_shape", None))


def _candidate_shapes(search: Any) -> list[Any]:
    """The ``decision_function_shape`` of every candidate a hyper-parameter search may pick.

    Only the grid entries that set ``*decision_function_shape`` or put in an estimator (a pipeline
    step) are combined; others (``C``, ``gamma``) cannot change which estimator computes the scores or
    its shape. A shape drawn from a distribution, or an ``"ovo"`` entry whose target another entry
    replaces, counts as ``"ovo"``: which shape a fold's search picks is unknown.
    """
    import itertools
    from collections.abc import Mapping

    def is_shape(key: str) -> bool:
        return key.rsplit("__", 1)[-1] == "decision_function_shape"

    base = search.estimator
    grid = getattr(search, "param_grid", getattr(search, "param_distributions", None))
    if grid is None:  # a search space of another form (not scikit-learn's): its estimator alone
        return [_decision_function_shape(base)]
    shapes = []
    for entry in [grid] if isinstance(grid, Mapping) else list(grid):
        options = {}
        for key, values in entry.items():
            if not isinstance(values, (list, tuple, np.ndarray)):  # a distribution to sample from
                if is_shape(key):
                    return ["ovo"]
                continue
            if is_shape(key) or any(hasattr(v, "get_params") for v in values):
                options[key] = list(values)
        for combination in itertools.product(*options.values()):
            params = dict(zip(options, combination))
            try:
                candidate = clone(base).set_params(**params)
            except (ValueError, TypeError):
                if any(is_shape(k) and isinstance(v, str) and v == "ovo" for k, v in params.items()):
                    return ["ovo"]
                continue
            shapes.append(_decision_function_shape(candidate))
    return shapes or [_decision_function_shape(base)]


def _is_isotonic(calibrator: Any) -> bool:
    """Isotonic maps read probabilities themselves (no eps) and are fitted per fold by default."""
    from softmaxkit.calibration import IsotonicCalibration

    return isinstance(calibrator, IsotonicCalibration)


def _calibrator_template(method: Any) -> Any:
    """The unfitted calibrator that ``method`` names (a new one) or is (itself); ValueError else."""
    import softmaxkit.calibration as calibration

    if isinstance(method, calibration._Calibrator):
        if hasattr(method, "n_classes_"):
            name = type(method).__name__
            raise ValueError(
                f"method is a fitted {name}; pass an unfitted calibrator (each fit fits copies of it, with "
                f"its settings), e.g. {name}(**calibrator.get_params())"
            )
        return method
    if isinstance(method, str) and method in METHODS:
        return getattr(calibration, METHODS[method])()
    hint = ""
    if isinstance(method, str) and method == "sigmoid":
        hint = "; scikit-learn's 'sigmoid' is 'platt' here"
    elif isinstance(method, type) and issubclass(method, calibration._Calibrator):
        hint = f"; pass an instance, {method.__name__}(), not the class"
    raise ValueError(
        f"method must be one of {tuple(METHODS)} or an unfitted calibrator instance (such as "
        f"TemperatureScaling(prior_scale=None)), got {method!r}{hint}"
    )


def _fit_kwargs(estimator: Any, sample_weight: np.ndarray | None) -> dict[str, np.ndarray]:
    if sample_weight is None:
        return {}
    if "sample_weight" in inspect.signature(estimator.fit).parameters:
        return {"sample_weight": sample_weight}
    warnings.warn(
        f"{type(estimator).__name__}.fit does not take sample_weight: the weights are used by the calibrator only",
        UserWarning,
        stacklevel=4,  # the caller of CalibratedClassifier.fit
    )
    return {}


#: What to do when a fitted estimator's classes and y's differ, by where the estimator came from.
_CLASS_ADVICE = {
    "fold": "every training fold must hold every class: use stratified folds (an int cv) or fewer folds",
    "given": "the calibration rows must hold every class the estimator predicts",
}


def _fold_name(i: int, folds: int | None) -> str:
    """``"fold 2 of 3"`` for the fold at index ``i``, or ``"split 2"`` when ``cv`` does not say how
    many it gives (an iterable of splits)."""
    return f"fold {i + 1} of {folds}" if folds else f"split {i + 1}"


def _check_classes(estimator: Any, classes: np.ndarray, where: str, *, advice: str = "fold") -> np.ndarray:
    """The estimator's ``classes_`` (``classes`` where it has none), refused unless they are ``classes`` in
    some order: a model whose ``classes_`` are not sorted (a user's wrapper, a frozen third-party model) has
    its columns put in ``classes``' order by :func:`_as_class_scores` (audit CD: it was refused, with advice
    on folds that did not apply; scikit-learn reorders 3 classes and fails on 2)."""
    got = np.asarray(getattr(estimator, "classes_", classes))
    same_set = got.shape == classes.shape and set(got.tolist()) == set(classes.tolist())
    if not same_set:
        unseen = [c for c in classes.tolist() if c not in set(got.tolist())]
        absent = [c for c in got.tolist() if c not in set(classes.tolist())]
        problems = ([f"never saw y's class(es) {unseen}"] if unseen else []) + (
            [f"predicts class(es) {absent} that y has no row of"] if absent else [])
        # y's classes are all of y's, so a class the estimator adds comes from the estimator
        # itself (SoftmaxClassifier(classes=...), a frozen model), and no choice of folds helps.
        advice_text = ("the estimator names classes that y has no row of (given by its classes= or "
                       "fitted elsewhere): drop them from its classes, or add rows of them to y"
                       ) if absent and advice == "fold" else _CLASS_ADVICE[advice]
        raise ValueError(
            f"{where} (classes {got.tolist()}) {' and '.join(problems) or 'orders its classes otherwise'} "
            f"(y has {classes.tolist()}); {advice_text}"
        )
    return got


def _scores(
    estimator: Any, X: Any, response: str, classes: np.ndarray, where: str = "the estimator", advice: str = "fold"
) -> np.ndarray:
    est_classes = _check_classes(estimator, classes, where, advice=advice)
    return _as_class_scores(getattr(estimator, response)(X), response, est_classes, classes)


def _as_class_scores(raw: Any, response: str, est_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N, C) logits or probabilities, columns in ``classes``' order, from a ``decision_function`` /
    ``predict_proba`` output whose columns follow ``est_classes`` (the same classes, in any order); a binary
    margin scores ``est_classes[1]``, so it is negated where that is ``classes[0]``."""
    s = np.asarray(raw, dtype=np.float64)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        if response == "predict_proba" or classes.size != 2:
            raise ValueError(f"{response} returned shape {s.shape} for {classes.size} classes")
        f = s.reshape(-1) if est_classes[1] == classes[1] else -s.reshape(-1)
        return np.column_stack([-f / 2, f / 2])  # softmax = sigmoid(f): the model's own probability
    if s.shape[1] != classes.size:
        raise ValueError(f"{response} returned {s.shape[1]} columns for {classes.size} classes")
    if np.any(est_classes != classes):
        position = {c: j for j, c in enumerate(est_classes.tolist())}
        s = s[:, [position[c] for c in classes.tolist()]]
    return s


def _common_zero_classes(calibrators: Any) -> np.ndarray:
    """The class indices in every calibrator's ``zero_classes_`` (none for a calibrator without it)."""
    common: set[int] | None = None
    for calibrator in calibrators:
        zero = getattr(calibrator, "zero_classes_", None)
        classes = set() if zero is None else set(np.asarray(zero).tolist())
        common = classes if common is None else common & classes
    return np.array(sorted(common or ()), dtype=np.int64)


#: A number in a warning's text (``0.2004``, ``114``, ``1e-05``): left out when per-fold warnings are merged.
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _warn_once_for_the_folds(caught: list[Any], calibrators: list[Any], method: str) -> None:
    """Re-issue the warnings of the per-fold calibrator fits once each, not once per fold.

    A fold's :class:`ZeroProbabilityWarning` is about that fold's map only; the average of the
    pairs gives 0 only where every map does, so one warning names the classes common to all
    (:attr:`CalibratedClassifier.zero_classes_`). Other warnings are re-issued once per text with
    its numbers left out: a fold's warning that holds the fold's own numbers (the light-weight
    warning's sum of its weights and rows) came once per fold (audit R15). The first fold's text is
    shown, saying how many more folds warned alike with their own numbers.
    """
    from softmaxkit.calibration import ZeroProbabilityWarning

    merged: dict[tuple[type, str], list[str]] = {}  # (category, text without numbers) -> each fold's text
    for record in caught:
        if issubclass(record.category, ZeroProbabilityWarning):
            continue
        text = str(record.message)
        merged.setdefault((record.category, _NUMBER.sub("#", text)), []).append(text)
    for (category, _), texts in merged.items():
        others = len(texts) - 1 if len(set(texts)) > 1 else 0  # one text as before: no word of the folds
        alike = f" (and alike in {others} more fold{'s' if others > 1 else ''}, with their own numbers)"
        # stacklevel 3: the caller of CalibratedClassifier.fit, which calls this function
        warnings.warn(texts[0] + (alike if others else ""), category, stacklevel=3)
    common = _common_zero_classes(calibrators)
    if common.size:
        warnings.warn(
            f"CalibratedClassifier(method={method!r}): every fold's map gives probability exactly 0 to class "
            f"index(es) {name_list(common.tolist(), noun='classes')} over some scores, so their average does too: a new row of such a class "
            "scoring there has infinite log-loss. More rows per fold shrink those ranges; 'temperature' or "
            "'platt' put no range at probability 0 (zero_classes_ lists these classes)",
            ZeroProbabilityWarning,
            stacklevel=3,  # the caller of CalibratedClassifier.fit
        )
