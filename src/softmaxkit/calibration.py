"""Post-hoc calibrators: temperature, vector and matrix scaling of logits.

Each one learns a map ``z -> z'`` on held-out logits by minimising the
(weighted) negative log-likelihood, and keeps the softmax output layer: the
calibrated probabilities are ``softmax(z')``.

=====================  =====================  ===========  ======================
calibrator             map                    parameters   fit
=====================  =====================  ===========  ======================
TemperatureScaling     ``z' = beta z``        1            1-D grid, then Halley
VectorScaling          ``z' = a * z + b``     2C           L-BFGS from the temperature fit
MatrixScaling          ``z' = z W^T + b``     C^2 + C      L-BFGS with ODIR, same start
IsotonicCalibration    one step map per class  knots       pool adjacent violators
PlattScaling           one sigmoid per class  2C           Newton per class
=====================  =====================  ===========  ======================

All three scalings share a prior on the temperature (``prior_scale``: near
``T = 1`` a log-normal of sd 0.5, with heavy tails) that keeps their fit
finite on a calibration set where every prediction is right and keeps a few
rows from moving a well-calibrated model by chance, yet barely holds back a
temperature far from 1 that the rows support. Temperature scaling keeps
every argmax (so accuracy is unchanged); the others may change predictions.
The last two are one-vs-rest maps renormalised to sum to 1, as scikit-learn's
``CalibratedClassifierCV`` (``"isotonic"``, ``"sigmoid"``), whose results they
match on the same scores; from logits they read each class's log-odds
``log(p_k / (1 - p_k))``, which a constant added to a row does not change, where
scikit-learn reads the raw columns. :class:`CalibratedClassifier` cross-fits any of them around a
scikit-learn classifier, so no rows are set aside for calibration.

All take ``fit(logits, y, sample_weight=None)``, ``transform(logits)`` (the
calibrated logits) and ``predict_proba(logits)``, and save/load without pickle
(``.save(path)``, :func:`softmaxkit.load`). With ``input="probs"`` the first
argument of every method holds probabilities instead, and ``log p`` is used as
the logits (see the class docstrings for the limits). ``sample_weight`` holds
frequency weights, as in scikit-learn's ``LogisticRegression``: an integer
weight ``k`` counts as ``k`` copies of the row (a row of weight 0 counts for
nothing: the scalings fit as without it, a ``-inf`` logit in it included; Platt
and isotonic refuse ``-inf`` logits in any row, as when mapping), and their total is the evidence
the priors are weighed against, so scaling every weight is not neutral (weights
summing to 1 make the calibration set count as one row). Normalised importance
weights should be scaled to sum to the number of rows.

SciPy is imported only when a vector or matrix scaling is fitted, and
scikit-learn only by the isotonic fit and :class:`CalibratedClassifier`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from softmaxkit._arrays import compute_dtype
from softmaxkit._calibration_inputs import (
    OneBasedLabelsWarning,
    _caller_stacklevel,
    absent_classes,
    check_eps,
    check_labels,
    check_logits,
    compute_blocks,
    input_name,
    log_probs,
)
from softmaxkit._loss_interval import name_list
from softmaxkit._validation import check_sample_weight
from softmaxkit.io import Persistable

__all__ = [
    "TemperatureScaling",
    "VectorScaling",
    "MatrixScaling",
    "IsotonicCalibration",
    "PlattScaling",
    "CalibratedClassifier",
    "CalibrationWarning",
    "ZeroProbabilityWarning",
    "SeparableWarning",
    "ManyParametersWarning",
]

#: Calibration method name (``CalibratedClassifier(method=)``, the CLI's ``--method``/``--calibrate``)
#: -> the class in this module that implements it.
METHODS = {
    "temperature": "TemperatureScaling",
    "vector": "VectorScaling",
    "matrix": "MatrixScaling",
    "isotonic": "IsotonicCalibration",
    "platt": "PlattScaling",
}

class CalibrationWarning(UserWarning):
    """The fit hit a bound or did not converge; the result is usable but read the message."""


class ZeroProbabilityWarning(CalibrationWarning):
    """A fitted map gives some class probability exactly 0 over a range of scores (isotonic): a
    new row of that class there has infinite log-loss. ``zero_classes_`` lists those classes.
    Also at predict time, when probabilities given with ``input="probs"`` and no ``eps`` hold an
    exact 0, which a map that scales ``log p`` keeps at 0 (temperature scaling, and vector scaling
    where the class's fitted scale is > 0)."""


class SeparableWarning(CalibrationWarning):
    """Every calibration row's true class has the largest logit: the likelihood has no maximum, so
    a prior (or the bound of ``beta``) set the temperature, not the rows. ``separable_`` is True."""


class ManyParametersWarning(CalibrationWarning):
    """A map with as many fitted parameters as calibration rows or more (matrix scaling: ``C^2 + C``):
    it can fit those rows' labels, so figures measured on them say nothing about new rows. Its own
    class so that a caller that says this itself (the CLI, with the figures) can silence this one alone."""


class NotFittedError(ValueError, AttributeError):
    """A calibrator was used before ``fit``."""


# --------------------------------------------------------------------------- shared plumbing


class _Calibrator(Persistable):
    """Input handling, ``predict_proba`` and persistence shared by the calibrators."""

    _param_names: tuple[str, ...] = ("input", "eps")
    _array_names: tuple[str, ...] = ()
    _scalar_names: tuple[str, ...] = ("n_classes_",)
    #: Parameters added after the first file format -> the value that means "as before" for a
    #: file that lacks them (loading, and refitting, an old file gives the old fit).
    _params_added: dict[str, Any] = {}

    def __init__(self, *, input: str = "logits", eps: float | None = None) -> None:
        self.input = input
        self.eps = eps

    # ---- inputs

    def _logits(self, X: Any) -> np.ndarray:
        """Validated (N, C) logits (``log p`` for ``input="probs"``)."""
        x, _ = self._logits_and_max(X)
        return x

    def _logits_and_max(self, X: Any, *, widen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Validated (N, C) logits and their (finite, float64) row maxima (``widen``: see
        :func:`~softmaxkit._calibration_inputs.check_logits`)."""
        name = input_name(self.input)
        if self.input == "probs":
            x, row_max = check_logits(log_probs(X, eps=self.eps, name=name), name, return_row_max=True, widen=widen)
        else:
            if self.eps is not None:
                raise ValueError('eps only applies to input="probs"; logits never need clipping')
            x, row_max = check_logits(X, name, return_row_max=True, widen=widen)
        return x, row_max

    def _check_neg_inf(self, x: np.ndarray, *, fitting: bool, weight: np.ndarray | None = None) -> None:
        """Refuse the ``-inf`` entries of logits ``x`` (``log 0`` for ``input="probs"``) that this
        calibrator cannot fit on (``fitting``, in the rows of positive ``weight``) or map. Temperature
        scaling takes them all (a class of probability 0 stays 0); the affine scalings override this."""

    def _classes_without_zero_limit(self) -> np.ndarray:
        """The classes (column indices) where the fitted map has no value for a new ``-inf`` logit
        (``log 0``), so :meth:`transform` refuses such a row: none here, a class keeping probability 0
        (temperature scaling; Platt and isotonic fit on ``p`` itself); overridden by the affine
        scalings. One answer for the refusal and for the command line's caution at fit time."""
        return np.empty(0, dtype=np.intp)

    def _fit_inputs(self, X: Any, y: Any, sample_weight: Any, *, widen: bool = True):
        """``(logits, row_max, labels, weights)``, validated (``widen=False``: the logits in their own dtype,
        for a fit that widens them a row block at a time)."""
        x, row_max = self._logits_and_max(X, widen=widen)
        labels = check_labels(y, x.shape[1], x.shape[0], scores=x, scores_name=input_name(self.input))
        w = check_sample_weight(sample_weight, x.shape[0])
        if x.shape[0] == 0:
            raise ValueError("cannot fit a calibrator on 0 samples")
        self._check_neg_inf(x, fitting=True, weight=w)  # a row of weight 0 counts for nothing, its -inf included
        true = x[np.arange(x.shape[0]), labels]
        dead = np.isneginf(true) & (w > 0)
        if dead.any():
            i = int(np.argmax(dead))
            # eps clips probabilities only; logits are refused with it (audit CO F7: the advice did not work)
            advice = ("Pass eps= to clip probabilities" if self.input == "probs" else
                      "Leave the row out, replace -inf by a finite floor, or pass softmax(logits) with "
                      "input='probs' and eps= (e.g. 1e-12) to clip the probabilities")
            raise ValueError(
                f"row {i} gives probability 0 to its true class {int(labels[i])}"
                f"{'' if self.input == 'probs' else ' (its logit is -inf)'}: the likelihood is 0 "
                f"for every calibration. {advice}."
            )
        return x, row_max, labels, w

    def _check_fitted(self, x: np.ndarray) -> None:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        if x.shape[1] != self.n_classes_:
            raise ValueError(f"logits have {x.shape[1]} classes but the calibrator was fitted on {self.n_classes_}")

    # ---- outputs

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated logits, shape (N, C), float64 (the input's float32 or float64 for temperature and vector
        scaling).

        With ``input="probs"`` pass probabilities; the result is still logits. A probability of
        exactly 0 (without ``eps``) stays 0, with a :class:`ZeroProbabilityWarning`, where the map
        has that limit (all but matrix scaling, and vector scaling with a scale <= 0 for its class,
        which raise ValueError).
        """
        x = self._logits(logits)
        self._check_fitted(x)
        self._check_neg_inf(x, fitting=False)  # before the warning: never warn about rows then refused
        self._warn_zero_inputs(x)
        return self._apply(x)

    def _warn_zero_inputs(self, x: np.ndarray) -> None:
        """One :class:`ZeroProbabilityWarning` when probabilities given without ``eps`` hold an exact 0
        (``x`` their log): ``log 0 = -inf`` scaled is still ``-inf``, so the row keeps p = 0 there, and
        a new row of that class has infinite log-loss (audit: breast cancer, random forest votes,
        test log-loss inf against 0.3593 with eps=1e-12)."""
        # min, not isneginf(x).any(): no (N, C) temporary on the usual path (as _logits_and_max)
        if self.input != "probs" or self.eps is not None or not x.size or not np.isneginf(x.min()):
            return
        zero = np.isneginf(x)
        rows = np.flatnonzero(zero.any(axis=1))
        i = int(rows[0])
        j = int(np.argmax(zero[i]))
        warnings.warn(
            f"{type(self).__name__}(input='probs', eps=None): {rows.size} of the {x.shape[0]} rows hold a "
            f"probability of exactly 0 (first: row {i}, class {j}, 0-based), and those rows keep p = 0 there "
            "whatever the calibration (log 0 = -inf): a row whose true class it is has infinite log-loss. In "
            "Python, pass eps= (e.g. 1e-12, as CalibratedClassifier does) to clip probabilities before the log; "
            "on the command line, calibrate with --method platt or isotonic, which fit on p itself",
            ZeroProbabilityWarning,
            stacklevel=_caller_stacklevel(),
        )

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities ``softmax(transform(logits))``, shape (N, C)."""
        from softmaxkit.functional import softmax

        return softmax(self.transform(logits), axis=-1)

    def fit_transform(self, logits: Any, y: Any, sample_weight: Any = None) -> np.ndarray:
        return self.fit(logits, y, sample_weight=sample_weight).transform(logits)

    def _apply(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ---- persistence

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params: Any) -> "_Calibrator":
        """Set parameters by name, as scikit-learn's ``set_params``; returns ``self``.

        ``get_params`` is what scikit-learn's ``CalibratedClassifier(...).get_params(deep=True)`` lists as
        ``method__*``, so ``GridSearchCV`` over ``method__prior_scale`` calls this (audit CH: it was
        missing, an AttributeError inside scikit-learn). As in scikit-learn, values are checked at ``fit``
        and a fitted calibrator keeps its fit until refitted.

        Raises
        ------
        ValueError
            A name that is not one of the calibrator's parameters (the message lists them).
        """
        unknown = [name for name in params if name not in self._param_names]
        if unknown:
            raise ValueError(
                f"Invalid parameter {unknown[0]!r} for estimator {self!r}. "
                f"Valid parameters are: {sorted(self._param_names)!r}."
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"cannot save an unfitted {type(self).__name__}")
        try:
            # what load checks, checked before writing: set_params after fit can make the parameters
            # invalid, and the file would then be refused as corrupted (review R21)
            self._validate_state()
        except ValueError as exc:
            raise ValueError(f"cannot save this {type(self).__name__}: {exc} (parameters set after fitting? "
                             "fit again)") from None
        meta = {"params": self.get_params()}
        meta["fitted"] = {k: _jsonable(getattr(self, k)) for k in self._scalar_names}
        arrays = {k: np.asarray(getattr(self, k)) for k in self._array_names}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        # JSON has no tuples: restore them (beta_bounds) so get_params() round-trips. Parameters
        # added after a file was written take the value that reproduces its old fit.
        params = {**cls._params_added, **meta["params"]}
        obj = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        fitted = meta["fitted"]
        if not isinstance(fitted, dict):
            raise ValueError(f"fitted must be a record, got {type(fitted).__name__}")
        for k in cls._scalar_names:
            # Files written before a fitted scalar existed load with the value that reproduces their fit.
            setattr(obj, k, fitted[k] if k in fitted else obj._fitted_before(k))
        for k in cls._array_names:
            value = arrays[k]
            if value.dtype.kind not in "iuf":
                raise ValueError(f"{k} has dtype {value.dtype}, not a real number type")
            setattr(obj, k, np.asarray(value, dtype=np.float64))
        obj._validate_state()
        return obj

    def _fitted_before(self, name: str) -> Any:
        """The fitted scalar ``name`` of a file written before it was saved (the scalars before it in
        ``_scalar_names`` are set); KeyError for one that every file holds."""
        if name in _NEW_FLAGS:
            return False  # their neutral value
        raise KeyError(name)

    def _validate_state(self) -> None:
        """Check a loaded state (ValueError naming the entry): the parameters, ``n_classes_`` and
        the other fitted scalars, and every fitted array finite, of the shape :meth:`_state_shapes`
        gives for ``n_classes_``. Subclasses add their own checks after this one."""
        input_name(self.input)  # a known input
        if self.eps is not None:
            check_eps(self.eps)
        c = self.n_classes_
        if not isinstance(c, numbers.Integral) or isinstance(c, bool) or c < 2:
            raise ValueError(f"n_classes_ must be an integer >= 2, got {c!r}")
        for k in self._scalar_names:
            value = getattr(self, k)
            if k.endswith("_iter_") and not (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                                            and value >= 0):
                raise ValueError(f"{k} must be an integer >= 0, got {value!r}")
            if k in _FLAGS and not isinstance(value, bool):
                raise ValueError(f"{k} must be true or false, got {value!r}")
            if k == "nll_" and not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
                raise ValueError(f"{k} must be a number, got {value!r}")
        shapes = self._state_shapes(int(c))
        for k in self._array_names:
            value = getattr(self, k)
            expected = shapes.get(k, (None,))
            if value.ndim != len(expected) or any(e is not None and e != n for e, n in zip(expected, value.shape)):
                shown = ", ".join("n" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "")
                raise ValueError(f"{k} has shape {value.shape}, expected ({shown}) for n_classes_={c}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{k} holds non-finite values")

    def _state_shapes(self, c: int) -> dict[str, tuple[int | None, ...]]:
        """Shapes of the fitted arrays for ``c`` classes (None: any length); arrays not named are 1-D.

        This default is the one-vs-rest maps' (:class:`PlattScaling`, :class:`IsotonicCalibration`,
        in :mod:`softmaxkit._one_vs_rest`): one map per class, or one of the margin for 2 classes.
        """
        maps = 1 if c == 2 else c
        return {"coef_": (maps,), "intercept_": (maps,), "knot_offsets_": (maps + 1,)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names)
        return f"{type(self).__name__}({args})"


#: Fitted flags added after the first file format; older files lack them.
_NEW_FLAGS = ("at_bound_", "separable_")
#: Every fitted flag (true or false in a state).
_FLAGS = ("converged_", *_NEW_FLAGS)


def _first_neg_inf(x: np.ndarray) -> tuple[int, int]:
    """``(row, column)`` of the first ``-inf`` of the 2-D ``x``, in row order (``x`` must hold one)."""
    i, j = np.unravel_index(int(np.argmax(np.isneginf(x))), x.shape)
    return int(i), int(j)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    return v


def _check_positive_int(v: Any, name: str) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    return int(v)


def _check_prior_scale(v: Any) -> float:
    """``1 / prior_scale**2``, the prior's weight (0.0 for ``prior_scale=None``: no prior)."""
    if v is None:
        return 0.0
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not (0.0 < float(v) < math.inf):
        raise ValueError(f"prior_scale must be a finite float > 0 or None (no prior), got {v!r}")
    return 1.0 / float(v) ** 2


#: Degrees of freedom of the Student-t prior on ``log beta`` (1 would be Cauchy). Heavy tails: a
#: temperature the rows strongly support costs a few nats however far from 1 it lies.
_PRIOR_DOF = 4.0


def _log_prior(beta: float, lam: float) -> tuple[float, float, float, float]:
    """The prior's negative log-density (up to a constant) and its first three derivatives in ``beta``.

    A Student-t prior with :data:`_PRIOR_DOF` degrees of freedom ``nu`` on ``u = log beta``
    (so symmetric in ``log T``), scaled so that its curvature at ``T = 1`` is ``lam = 1 /
    s^2``: ``(nu + 1) / 2 * log(1 + u^2 / ((nu + 1) s^2))``, which is ``u^2 / (2 s^2)`` (a
    log-normal prior of sd ``s`` on ``T``) near ``T = 1`` but grows only as ``(nu + 1) log
    |u|`` far from it. The Gamma prior ``lam (beta - 1 - log beta)`` of the previous version
    was convex in ``beta`` but grew linearly in ``beta``: about 140 nats at ``T = 0.024``, more
    than hundreds of rows of an under-confident model could outweigh (digits, a logistic
    regression with ``C=1e-4``, 30 rows: unseen log-loss 1.80 for the likelihood's 0.56), and
    any prior convex in ``beta`` grows at least linearly. This one is not convex, so
    :class:`TemperatureScaling` searches a grid for the global minimum (see its Notes).
    """
    if not lam:
        return 0.0, 0.0, 0.0, 0.0
    k = 0.5 * (_PRIOR_DOF + 1.0)
    c = lam / (_PRIOR_DOF + 1.0)
    u = math.log(beta)
    cu2 = c * u * u
    q = 1.0 + cu2
    # derivatives in u, then the chain rule to beta = exp(u)
    g1 = 2.0 * k * c * u / q
    g2 = 2.0 * k * c * (1.0 - cu2) / (q * q)
    g3 = -4.0 * k * c * c * u * (3.0 - cu2) / (q * q * q)
    return k * math.log(q), g1 / beta, (g2 - g1) / beta**2, (g3 - 3.0 * g2 + 2.0 * g1) / beta**3


#: Total sample weight below this share of the weighted rows draws a warning: the priors count
#: it as that many rows (weights normalised to sum to 1 made 200 rows count as one: T 1.33 for 4.39).
_LIGHT_WEIGHT_SHARE = 0.25


#: The priors of the temperature, vector and matrix scalings, as :func:`_warn_if_light_weights` names them.
_SCALING_PRIORS = "the priors (prior_scale, identity_reg, pseudo_count)"


def _warn_if_light_weights(total: float, rows: int, who: str, *, priors: str = _SCALING_PRIORS) -> None:
    """Warn when ``sample_weight`` sums to far fewer than the ``rows`` it weighs: the priors are
    weighed against that total, so they would decide a fit that the rows could. ``priors``: what
    they are, a plural noun phrase. The warning names the caller's caller outside softmaxkit (a
    calibrator's ``fit`` reaches here directly or through a helper)."""
    if rows and total < _LIGHT_WEIGHT_SHARE * rows:
        warnings.warn(
            f"{who}: sample_weight sums to {total:.4g} over {rows} weighted rows, and {priors} are weighed "
            f"against that total as against {total:.4g} rows, so they dominate the fit; scale sample_weight to "
            "sum to the number of rows (frequency weights)",
            CalibrationWarning,
            stacklevel=_caller_stacklevel(),
        )


def _warn_absent_classes(who: str, labels: np.ndarray, w: np.ndarray, n_classes: int, *, one: str,
                         several: str, names: Any = None) -> None:
    """One :class:`CalibrationWarning` naming every class that no calibration row (of positive weight)
    holds, with the row count, then what that means for the map: ``one`` when one class is missing
    ("its scale and bias are set by the priors alone"), ``several`` otherwise ("their scales ...").

    ``names``: the class of each column (a calibrator's ``class_names_``, which the CLI sets before the
    fit), so the classes are named as the user's file names them ('cat'), not by their column index
    (audit AI: "classes 0, 1 and 4" were positions in a sorted list of names the user never saw)."""
    missing = absent_classes(labels, w, n_classes)
    if not missing:
        return
    if names is not None and len(names) == n_classes:
        shown = [repr(str(names[j])) for j in missing]
    else:
        shown = [str(j) for j in missing]
    # the first few and a count (audit BR: 254 class numbers in one warning at 1000 classes)
    which = f"class {shown[0]} has" if len(shown) == 1 else f"classes {name_list(shown)} have"
    weight = " (of positive weight)" if np.any(w == 0) else ""
    warnings.warn(f"{who}: {which} no row among the {len(labels)} calibration rows{weight}; "
                  f"{one if len(missing) == 1 else several}", CalibrationWarning, stacklevel=3)


def _check_nonneg(v: Any, name: str) -> float:
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not (0.0 <= float(v) < math.inf):
        raise ValueError(f"{name} must be a finite float >= 0, got {v!r}")
    return float(v)


# --------------------------------------------------------------------------- temperature


#: Rows used for the warm start on large inputs (a cheap, close first guess).
_WARM_START_ROWS = 4096


class TemperatureScaling(_Calibrator):
    r"""Temperature scaling (Guo et al. 2017): ``p = softmax(beta * z)``, ``beta = 1 / T``.

    Parameters
    ----------
    input : {"logits", "probs"}, default "logits", keyword-only
        What ``fit``/``transform``/``predict_proba`` receive. ``"probs"`` uses
        ``log p`` as the logits: exact for a model's own probabilities, but a
        probability of exactly 0 (underflow in, e.g., GaussianNB or a random
        forest's vote fraction) becomes ``-inf`` and stays 0 after scaling, and a
        0 on a true class makes the likelihood 0 whatever the temperature
        (``fit`` raises unless ``eps`` is given). Prefer real log-probabilities
        (``predict_log_proba``) or logits (``decision_function``) when the model
        has them.
    eps : float in (0, 1), optional, keyword-only
        With ``input="probs"``: clip probabilities to ``>= eps`` before the log.
    prior_scale : float > 0 or None, default 0.5, keyword-only
        Spread ``s`` of the prior on the temperature (see Notes): near
        ``T = 1`` (the model as it is) a log-normal prior of sd ``s`` on
        ``T``, with heavy tails (a Student-t on ``log T``); added to the
        weighted NLL *sum*, so it decides ``T`` on a few rows and fades as
        the calibration set grows. It keeps the fit finite on a separable
        set. ``None``: no prior (with
        ``pseudo_count=0``, the plain maximum-likelihood fit of scikit-learn's
        ``method="temperature"``, which has no finite optimum on a separable
        set).
    pseudo_count : float >= 0, default 0, keyword-only
        Strength ``a`` of an optional second prior, the soft targets of
        earlier versions (default ``0.5`` there): each row's target puts
        ``(W + a) / (W + 2a)`` on its label and ``a / (W + 2a)`` on its
        runner-up class (the largest other logit), ``W`` being the total
        weight of the rows whose logits are not all equal (Krichevsky-Trofimov
        for ``0.5``). It smooths every row, not only separable sets, so it
        softens a well-calibrated model fitted on a few rows (wine, 10 rows
        of a logistic regression: unseen log-loss 0.054 -> 0.113); kept for
        saved files and comparisons.
    beta_bounds : (float, float), default (1e-10, 1e10), keyword-only
        The search interval for ``beta``. With a prior the optimum is finite
        above whenever some row's logits are not all equal, so only logits
        on a huge scale or that carry no information about the labels (the
        optimum at ``beta -> 0``), or no prior on a separable set, reach a
        bound; then ``beta`` stops there, ``at_bound_`` is True and a
        :class:`CalibrationWarning` says so. The interval is wide because some
        models' log-probabilities are on huge scales (GaussianNB on digits
        needs ``beta`` near 1e-8).
    tol : float, default 1e-7
        Stop when a step changes ``beta`` by less than ``tol * beta``.
    max_iter : int, default 50

    Attributes
    ----------
    beta_ : float
        Fitted inverse temperature.
    temperature_ : float
        ``1 / beta_``.
    n_classes_ : int
    n_iter_ : int
        Passes over the full data.
    converged_ : bool
    nll_ : float
        Weighted mean NLL of the calibration set at ``beta_`` (plain labels,
        without the prior's smoothing: comparable with
        :func:`softmaxkit.metrics.log_loss`).
    at_bound_ : bool
        The likelihood is maximised on one of ``beta_bounds``: ``beta_``
        stopped there or, with ``prior_scale``, on the lower bound's side only
        the prior keeps it above (the logits carry no information about the
        labels). The fit did not find an optimum of the likelihood, so the
        result is not an improvement to report; ``converged_`` is False.
    separable_ : bool
        Every (weighted) row's label has the largest logit: the likelihood
        alone keeps rising as ``T -> 0``, and the prior (``prior_scale``,
        ``pseudo_count``) alone stops it. Calibrate on more or harder held-out data.

    Notes
    -----
    *The prior.* A calibration set on which every prediction is right (easy
    on a small one) has no maximum-likelihood temperature: the likelihood
    keeps rising as ``T -> 0``, and the "calibrated" model turns every
    probability into 0 or 1 (wine with a 15-row calibration set: held-out
    log-loss 5e8 instead of 0.08). And on a few rows the maximum-likelihood
    ``T`` of a well-calibrated model is mostly noise (10 rows: often 0.5 or
    2). So the fit minimises ``sum_i w_i nll_i(beta) + P(log beta)``,
    ``P(u) = (nu + 1) / 2 log(1 + u^2 / ((nu + 1) s^2))``, ``s =
    prior_scale``, ``nu = 4``: a Student-t prior on ``log T``, which is
    ``(log T)^2 / (2 s^2)`` near ``T = 1`` (a log-normal prior of sd ``s``)
    but costs only about ``(nu + 1) log |log T|`` far from it (6 nats at
    ``T = 0.025``, 14 at ``T = 1e-8``), so a temperature the rows strongly
    support is barely held back. The Gamma prior on ``beta`` of the previous
    version kept the objective convex but grew linearly in ``beta`` (140
    nats at ``T = 0.024``) and held under-confident models back (digits,
    ``LogisticRegression(C=1e-4)``, 30 rows: unseen log-loss 1.80 where the
    likelihood's ``T`` gives 0.56; now 0.56). On a separable set the tails
    let ``T`` fall further below 1 than that prior did, and a
    :class:`CalibrationWarning` says that the prior alone set it; ``nu = 4``
    trades the two (a Cauchy, ``nu = 1``, sharpened selected separable sets
    twice as much). It weighs as much as a few rows, so ``T`` is the
    maximum-likelihood one on large sets. Measured on scikit-learn's small
    data sets with well-, under- and over-confident models:
    ``benchmarks/bench_calibration_prior.py``.
    ``pseudo_count`` adds those soft targets: row ``i`` targets ``t_i = (1 -
    e) onehot(y_i) + e onehot(r_i)``, ``e = a / (W + 2a)``, ``r_i`` the class
    with the largest logit other than ``y_i`` (Platt's 1999 treatment of
    separable data, extended to the softmax).
    Rows whose logits are all equal carry no information and are ignored
    (all-equal logits everywhere: ``beta = 1`` and no warning).

    A class that no calibration row holds is not refused: the other rows'
    log-loss is the log-loss among the classes present plus a reward for
    pushing the absent ones' probability toward 0, which can decide ``T``
    (300 rows, all of one class of two: ``T = 0.33``) or barely move it
    (1000 classes, 254 absent: ``T = 2.001`` for a true 2). ``fit`` warns
    (:class:`CalibrationWarning`) when the rows hold one class alone, or when
    the temperature of the softmax over the classes present alone (one
    Newton step from the fit) differs from the fitted one by 5% or more.

    *The fit.* With ``d_ij = z_ij - max_j z_ij``, ``s_i = sum_j t_ij d_ij`` and
    ``Z_i(beta) = sum_j exp(beta d_ij)`` the objective is ``NLL(beta) = sum_i
    w_i [log Z_i(beta) - beta s_i] / W``. Its derivatives are cumulants of
    ``d`` under ``p = softmax(beta z)``: ``NLL' = mean(E_p[d] - s)``, ``NLL''
    = mean(Var_p[d]) >= 0`` and
    ``NLL''' = mean(kappa3_p[d])``. So the NLL is convex in ``beta`` (in ``T``
    and in ``log beta`` it is not) and all three come from one pass over the
    logits (:func:`softmaxkit.kernels.calibration.temperature_moments`).
    With the prior the objective ``F`` is not convex and can have two minima
    (a local one near ``T = 1``, the global one at a far temperature the
    rows support). Every minimum lies between ``beta = 1`` and the
    likelihood's own optimum ``beta_ml`` (outside, the NLL's slope and the
    prior's have the same sign), so the fit finds ``beta_ml``, evaluates
    ``F`` on a log-spaced grid over ``[1, beta_ml]`` (steps of ``min(0.25,
    s / 2)`` in ``log beta``, at most 48 points) and finds the root of
    ``F'`` by Halley's method (cubic convergence) inside the bracket of the
    best grid point; on more than 8192 rows the first steps run on a
    4096-row subsample. Without the prior, Halley runs on the whole
    interval from a subsample's fit. It stops when a step, or the error
    estimate ``|F''' / (2 F'')| step^2`` left after it, is below ``tol *
    beta``, so a large input typically costs two passes (a small one also
    pays for its grid: ``n_iter_`` counts both). scikit-learn's
    ``method="temperature"`` minimises over ``log beta`` in [-10, 10] with
    Brent's method and needs tens of loss evaluations.

    Infinite logits: ``-inf`` entries are classes of probability 0 and stay 0
    (they get no share of the prior's mass); ``+inf`` and NaN are rejected.

    References
    ----------
    Guo, Pleiss, Sun & Weinberger, "On calibration of modern neural networks",
    ICML 2017. Platt, "Probabilistic outputs for support vector machines",
    1999 (section 2.2, the targets ``(N+ + 1) / (N+ + 2)``). Krichevsky &
    Trofimov, "The performance of universal encoding", IEEE Trans. Inf.
    Theory 27(2), 1981.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.calibration import TemperatureScaling
    >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> ts = TemperatureScaling().fit(z, np.array([0, 1, 1, 0]))
    >>> round(ts.temperature_, 3) > 1  # half wrong at 98% confidence: soften
    True
    """

    _param_names = ("input", "eps", "prior_scale", "pseudo_count", "beta_bounds", "tol", "max_iter")
    _scalar_names = ("n_classes_", "beta_", "n_iter_", "converged_", "nll_", "at_bound_", "separable_")
    # Files written before prior_scale existed were fitted without it (and with their pseudo_count).
    _params_added = {"prior_scale": None}

    def __init__(
        self,
        *,
        input: str = "logits",
        eps: float | None = None,
        prior_scale: float | None = 0.5,
        pseudo_count: float = 0.0,
        beta_bounds: tuple[float, float] = (1e-10, 1e10),
        tol: float = 1e-7,
        max_iter: int = 50,
    ) -> None:
        super().__init__(input=input, eps=eps)
        self.prior_scale = prior_scale
        self.pseudo_count = pseudo_count
        self.beta_bounds = beta_bounds
        self.tol = tol
        self.max_iter = max_iter

    @property
    def temperature_(self) -> float:
        return 1.0 / self.beta_

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return x * x.dtype.type(self.beta_)

    def _validate_state(self) -> None:
        super()._validate_state()
        beta = self.beta_
        if not (isinstance(beta, numbers.Real) and not isinstance(beta, bool) and math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta_ must be finite and > 0, got {beta!r}")
        lo, hi = self._bounds()
        # fit never leaves [lo, hi] but for beta = 1 (the model as it is, when no row's logits differ).
        # A hand-edited beta_ = 1e308 loaded and `apply` wrote 328 of 400 rows as NaN, exit 0 (audit).
        if not (lo <= beta <= hi or beta == 1.0):
            raise ValueError(f"beta_ = {beta!r} lies outside beta_bounds {self.beta_bounds!r}, "
                             "where fit keeps it (the file was edited or damaged)")

    def fit(self, logits: Any, y: Any, sample_weight: Any = None) -> "TemperatureScaling":
        """Fit ``beta`` on held-out ``logits`` (N, C) and labels ``y`` (N,); returns ``self``.

        Parameters
        ----------
        logits : array_like of shape (N, C)
            Held-out logits (probabilities with ``input="probs"``).
        y : array_like of shape (N,)
            Integer class indices.
        sample_weight : array_like of shape (N,), optional
            Frequency weights (>= 0; see the module docstring): their total
            ``W`` is weighed against the priors (``prior_scale``,
            ``pseudo_count``), so scale normalised weights to
            sum to the number of rows.

        Returns
        -------
        self
        """
        lo, hi = self._bounds()
        tol = _check_nonneg(self.tol, "tol")
        max_iter = _check_positive_int(self.max_iter, "max_iter")
        a = _check_nonneg(self.pseudo_count, "pseudo_count")
        lam = _check_prior_scale(self.prior_scale)
        # Not widened: float16 logits (an LLM's vocabulary) reach the kernels a block at a time
        # (_temperature_moments), so the fit holds no float32 copy of the whole matrix.
        x, row_max, labels, w = self._fit_inputs(logits, y, sample_weight, widen=False)
        n = x.shape[0]
        # The prior is added to the NLL sum over all rows; f() works with means, so it is
        # divided by the whole set's weight, also for the warm start's subsample.
        per_weight = 1.0 / float(np.sum(w))
        d_true = x[np.arange(n), labels].astype(np.float64) - row_max  # <= 0
        # A row of weight 0 counts for nothing, but its true class may be -inf (refused where the weight
        # is positive), and 0 * -inf is NaN in the weighted sums below (helper FO: beta = 1 returned).
        d_true[w == 0] = 0.0
        runner_up, row_min = _runner_up_and_min(x, labels)
        informative = (w > 0) & (row_min != row_max)  # rows with all-equal logits say nothing about beta
        evidence = float(np.sum(w[informative]))
        if lam or a:
            _warn_if_light_weights(evidence, int(np.count_nonzero(informative)), type(self).__name__)
        has_other = runner_up >= 0
        # in float64, as d_true: x is not widened here (a longdouble x would make a longdouble d_other)
        d_other = np.where(has_other, x[np.arange(n), np.maximum(runner_up, 0)].astype(np.float64) - row_max, 0.0)
        separable = bool(informative.any() and np.all(d_true[informative] >= 0.0))
        smoothing = a / (evidence + 2.0 * a) if a else 0.0
        target = _smoothed_target_logit(d_true, d_other, has_other, smoothing=smoothing)

        def objective(sel: slice | np.ndarray | None, *, prior: bool = True):
            xs, ms, ws, ts, ds = (
                (x, row_max, w, target, d_true) if sel is None else (x[sel], row_max[sel], w[sel], target[sel], d_true[sel])
            )
            total = float(np.sum(ws))
            wt = float(np.dot(ws, ts))
            wd = float(np.dot(ws, ds))
            lam_f = lam if prior else 0.0

            def f(beta: float) -> tuple[float, float, float, float]:
                # (plain NLL, then the penalised objective's first three derivatives)
                s = _temperature_moments(xs, ms, ws, beta)
                _, p1, p2, p3 = (per_weight * v for v in _log_prior(beta, lam_f))
                nll = (s[0] - beta * wd) / total
                # The plain NLL's Taylor terms at the last point evaluated, for nll_ at the accepted step.
                last[:] = [beta, nll, (s[1] - wd) / total, s[2] / total, s[3] / total]
                return nll, (s[1] - wt) / total + p1, s[2] / total + p2, s[3] / total + p3

            def value(beta: float) -> float:
                # the penalised objective itself (soft targets and prior), for the grid search
                s = _temperature_moments(xs, ms, ws, beta)
                return (s[0] - beta * wt) / total + per_weight * _log_prior(beta, lam_f)[0]

            f.value = value
            return f

        last: list[float] = []
        self.n_classes_ = int(x.shape[1])
        self.at_bound_ = False
        self.separable_ = separable
        if not informative.any():
            # Every row's logits are all equal: the likelihood is flat in beta. Keep the model as it is.
            self.beta_, self.n_iter_, self.converged_ = 1.0, 0, True
            self.nll_ = objective(None)(1.0)[0]
            return self
        if self.separable_ and a == 0.0 and lam == 0.0:
            # Every row's true class is (tied for) the argmax: NLL decreases for ever.
            self.beta_, self.n_iter_, self.converged_, self.at_bound_ = hi, 0, False, True
            self.nll_ = objective(None)(hi)[0]
            warnings.warn(
                f"the calibration set is separable (every true class has the largest logit), so the "
                f"likelihood has no maximum; beta stops at its upper bound {hi:g} (temperature {1 / hi:g}). "
                "Calibrate on more (or harder) held-out data, or keep a prior (prior_scale).",
                SeparableWarning,
                stacklevel=2,
            )
            self._warn_if_absent_classes_move_t(x, row_max, labels, w, lam)
            return self

        sub = None
        if n > 2 * _WARM_START_ROWS:
            # Evenly spaced rows: deterministic, and a close start for the full solve.
            sub = np.linspace(0, n - 1, _WARM_START_ROWS).astype(np.int64)
            if not informative[sub].any():
                sub = None
        if lam:
            beta, n_iter, converged, f_val = self._fit_map(objective, sub, informative, d_true, a, lo, hi,
                                                           tol=tol, max_iter=max_iter)
        else:
            beta0 = 1.0
            if sub is not None and (a > 0 or np.any(d_true[sub][informative[sub]] < 0.0)):
                beta0, _, _, _ = _halley(objective(sub), 1.0, lo, hi, tol=1e-4, max_iter=max_iter)
            beta, n_iter, converged, f_val = _halley(objective(None), beta0, lo, hi, tol=tol, max_iter=max_iter)
        # Halley accepts its last step without evaluating there: carry the NLL to it (the step is
        # below 1% of beta, so the cubic's error is far below rounding).
        step = beta - last[0]
        if abs(step) <= 1e-2 * beta:
            f_val = last[1] + step * (last[2] + step * (last[3] / 2 + step * last[4] / 6))
        self.beta_, self.n_iter_, self.converged_, self.nll_ = float(beta), n_iter, converged, float(f_val)
        at_bound = beta >= hi * (1 - 1e-6) or beta <= lo * (1 + 1e-6)
        if at_bound:
            beta = hi if beta >= hi * (1 - 1e-6) else lo  # snap: the optimum is beyond the bound
            self.beta_, self.nll_, self.converged_ = beta, float(objective(None)(beta)[0]), False
            self.at_bound_ = True
            warnings.warn(
                f"the likelihood is maximised at the bound beta={beta:g} of beta_bounds={self.beta_bounds}: "
                + (
                    "the logits are on a huge scale or carry almost no information about the labels"
                    if beta <= lo * (1 + 1e-6)
                    else "the calibration set is nearly separable"
                ),
                CalibrationWarning,
                stacklevel=2,
            )
        elif lam and beta < 1.0 and objective(None, prior=False)(lo)[1] >= 0.0:
            # Not an optimum of the likelihood, so not an improvement to report (and not a
            # temperature for _anchor_beta to anchor a map on): flagged as the bound was.
            self.at_bound_, self.converged_ = True, False
            # The likelihood alone still rises down to the lower bound (NLL' >= 0 there): the
            # logits point away from the labels or carry nothing; only the prior keeps beta > 0.
            warnings.warn(
                f"the likelihood is maximised at the bound beta={lo:g} of beta_bounds={self.beta_bounds}: the logits "
                f"carry no information about the labels (or point away from them); the prior alone sets "
                f"temperature {1 / beta:g}",
                CalibrationWarning,
                stacklevel=2,
            )
        elif not converged:
            warnings.warn(
                f"temperature fit did not converge in {max_iter} iterations (beta={beta:g})",
                CalibrationWarning,
                stacklevel=2,
            )
        elif self.separable_ and lam:
            # The likelihood alone would send T -> 0; the prior's tails let T follow it some way
            # (unseen rows the model gets wrong then cost more), so say what set T. (Not for
            # pseudo_count alone: files of earlier versions refit as they did, silently.)
            warnings.warn(
                f"the calibration set is separable (every one of its {int(np.count_nonzero(informative))} rows has "
                f"its true class ranked first), so the likelihood has no maximum and the prior (prior_scale) alone "
                f"holds the temperature at {1 / self.beta_:.4g}"
                + (": it sharpens the model (T < 1)" if self.beta_ > 1.01 else "")
                + ". Calibrate on more (or harder) held-out data.",
                SeparableWarning,
                stacklevel=2,
            )
        self._warn_if_absent_classes_move_t(x, row_max, labels, w, lam)
        return self

    def _warn_if_absent_classes_move_t(self, x: np.ndarray, row_max: np.ndarray, labels: np.ndarray,
                                       w: np.ndarray, lam: float) -> None:
        """Warn, after the fit, of classes no calibration row holds when their absence moves ``T``.

        One shared parameter can be fitted without a class (so no refusal, as for vector and matrix
        scaling), and the log-loss of the other classes' rows is the log-loss restricted to the classes
        present plus a reward for pushing the absent ones' probability toward 0. That reward decided
        ``T`` on 300 rows all of one class of two (audit G: T = 0.33, the prevalence then under-stated
        3x), but hardly moves it at 1000 classes with 254 absent (audit BR: T = 2.001 for a true 2, and
        2.006 from the classes present alone; new rows gave the absent classes 1.04% of their probability
        for 0.94% observed). Said when the rows hold one class alone, or when the
        temperature of the classes present alone (:func:`_present_classes_beta`) differs by
        :data:`_ABSENT_CLASS_PULL` or more. Dropping the rows of chosen classes from data drawn from a
        calibrated model (audit BR's follow-up, 5 seeds) moved ``log T`` by 0.14-0.36 at two or three
        classes with one dropped, and by under 0.03 at 10-100 classes with up to a quarter dropped, but
        by 0.27 at 10 classes when the dropped one held 30% of the rows; the estimate fell within 0.06 of
        the shift throughout.
        """
        missing = absent_classes(labels, w, x.shape[1])
        if not missing:
            return
        t = 1.0 / self.beta_
        if len(missing) == x.shape[1] - 1:
            what = "that reward and the prior" if lam else "that reward"
            why = f"the rows hold one class alone, so {what} alone set T = {t:.4g}"
        else:
            beta = _present_classes_beta(x, row_max, w, missing, self.beta_, lam)
            if beta is not None and abs(math.log(beta / self.beta_)) < math.log1p(_ABSENT_CLASS_PULL):
                return
            alone = ("cannot be estimated from them" if beta is None else f"would be about {1.0 / beta:.4g}")
            why = f"here T = {t:.4g}, where the classes present alone {alone}"
        _warn_absent_classes(
            type(self).__name__, labels, w, x.shape[1],
            one="the temperature is fitted to the other classes' rows alone, which reward pushing that class's "
            f"probability toward 0: {why} (calibrate on rows that hold every class)",
            several="the temperature is fitted to the other classes' rows alone, which reward pushing those "
            f"classes' probabilities toward 0: {why} (calibrate on rows that hold every class)",
            names=getattr(self, "class_names_", None))

    def _fit_map(self, objective, sub, informative, d_true, a, lo, hi, *, tol, max_iter):
        """The global minimum of the penalised objective ``F = NLL + prior``: ``_halley``'s tuple.

        The prior is not convex, so ``F`` can have several minima (a nearly uninformative set
        whose likelihood slopes gently towards a far temperature keeps a local one near ``T =
        1``). All of them lie between ``beta = 1`` and the likelihood's own optimum ``beta_ml``:
        outside that interval ``NLL'`` (convex NLL) and the prior's slope have the same sign.
        So: ``beta_ml`` (Halley on the likelihood alone; the upper bound on a separable set), a
        log-spaced grid on ``[1, beta_ml]`` (:func:`_log_grid`), then Halley on all rows inside
        the bracket of the best grid point. On large inputs the first two, and a first Halley,
        run on the warm-start subsample ``sub``; should the full solve end on an edge of that
        bracket (the subsample misled it), the search is repeated on all rows. The count
        returned is of passes over all rows.
        """
        search = objective(sub)
        rows = informative if sub is None else informative[sub]
        dt = d_true if sub is None else d_true[sub]
        passes = 0
        if a == 0.0 and np.all(dt[rows] >= 0.0):
            beta_ml = hi  # separable: the likelihood rises for ever
        else:
            beta_ml, it, _, _ = _halley(objective(sub, prior=False), 1.0, lo, hi, tol=1e-4, max_iter=max_iter)
            passes += it if sub is None else 0
        s = math.sqrt(1.0 / _check_prior_scale(self.prior_scale))
        grid = _log_grid(min(1.0, beta_ml), max(1.0, beta_ml), step=min(0.25, 0.5 * s))
        best = int(np.argmin([search.value(b) for b in grid]))
        passes += grid.size if sub is None else 0
        b_lo = float(grid[best - 1]) if best > 0 else lo
        b_hi = float(grid[best + 1]) if best < grid.size - 1 else hi
        start = float(grid[best])
        if sub is not None:
            start, _, _, _ = _halley(search, start, b_lo, b_hi, tol=1e-4, max_iter=max_iter)
        beta, it, converged, f_val = _halley(objective(None), start, b_lo, b_hi, tol=tol, max_iter=max_iter)
        passes += it
        pinned = (b_lo > lo and beta <= b_lo * (1 + 1e-5)) or (b_hi < hi and beta >= b_hi * (1 - 1e-5))
        if pinned and sub is not None:
            beta, it, converged, f_val = self._fit_map(objective, None, informative, d_true, a, lo, hi, tol=tol,
                                                       max_iter=max_iter)
            passes += it
        return beta, passes, converged, f_val

    def _bounds(self) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in self.beta_bounds)
        except (TypeError, ValueError):
            raise ValueError(f"beta_bounds must be a pair (low, high), got {self.beta_bounds!r}") from None
        if not (0.0 < lo < hi < math.inf):
            raise ValueError(f"beta_bounds must satisfy 0 < low < high < inf, got {self.beta_bounds!r}")
        return lo, hi


def _temperature_moments(x: np.ndarray, row_max: np.ndarray, w: np.ndarray, beta: float) -> np.ndarray:
    """:func:`softmaxkit.kernels.calibration.temperature_moments` of logits in any float dtype: one call
    on float32/float64 logits, else one per :func:`compute_blocks` block (float16 widened a block at a
    time; the per-row terms are the whole array's, their sums add in another order)."""
    from softmaxkit.kernels import fork_safe
    from softmaxkit.kernels.calibration import temperature_moments

    kernel = fork_safe(temperature_moments, n_elements=x.size)
    if x.dtype == compute_dtype(x.dtype):
        return kernel(x, row_max, w, beta)  # no widening needed: one call, the sums in the kernel's order
    total = np.zeros(4)
    for start, block in compute_blocks(x):
        stop = start + len(block)
        total += kernel(block, row_max[start:stop], w[start:stop], beta)
    return total


#: How far (as a ratio) the temperature of the classes present alone may lie from the fitted one before
#: :class:`TemperatureScaling` says that absent classes moved it (see its ``_warn_if_absent_classes_move_t``).
_ABSENT_CLASS_PULL = 0.05


def _present_classes_beta(x: np.ndarray, row_max: np.ndarray, w: np.ndarray, missing: list[int], beta: float,
                          lam: float) -> float | None:
    """The ``beta`` that the softmax over the classes present alone would fit, one Newton step from the fitted
    ``beta`` (None when that step leaves ``beta > 0``, or the classes present carry no information on it).

    The fitted ``beta`` zeroes the penalised log-loss's gradient; the restricted log-loss's gradient differs by
    ``sum_i w_i (E_present[x_i] - E[x_i])`` (the reward for pushing the ``missing`` classes toward 0), its
    curvature is the weighted variance of ``x`` under the restricted softmax (plus the prior's, where it is
    convex). Read a :func:`compute_blocks` block at a time: the restricted columns are a copy of one block.
    """
    present = np.setdiff1d(np.arange(x.shape[1]), missing)
    full = _temperature_moments(x, row_max, w, beta)
    gradient, curvature = -float(full[1]), 0.0
    for start, block in compute_blocks(x):
        stop = start + len(block)
        kept = block[:, present]
        weights = w[start:stop]
        # rows of weight 0 may have no finite present logit; the moments skip them
        kept_max = np.where(weights > 0, np.max(kept, axis=1), row_max[start:stop]).astype(np.float64)
        moments = _temperature_moments(kept, kept_max, weights, beta)
        gradient += float(moments[1]) + float(weights @ (kept_max - row_max[start:stop]))
        curvature += float(moments[2])
    curvature += max(_log_prior(beta, lam)[2], 0.0)
    if not curvature > 0.0:
        return None
    step = beta - gradient / curvature
    return step if step > 0.0 else None


def _runner_up_and_min(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`softmaxkit.kernels.calibration.runner_up_and_min` of logits in any float dtype, a
    :func:`compute_blocks` block at a time (rows are independent: the whole array's result)."""
    from softmaxkit.kernels import fork_safe
    from softmaxkit.kernels.calibration import runner_up_and_min

    kernel = fork_safe(runner_up_and_min, n_elements=x.size)
    runner_up, row_min = np.empty(len(x), dtype=np.int64), np.empty(len(x))
    for start, block in compute_blocks(x):
        stop = start + len(block)
        runner_up[start:stop], row_min[start:stop] = kernel(block, labels[start:stop])
    return runner_up, row_min


def _halley(f, beta: float, lo: float, hi: float, *, tol: float, max_iter: int):
    """Root of the increasing ``NLL'`` on [lo, hi] by safeguarded Halley steps.

    ``f(beta) -> (nll, g, h, t)`` with ``g = NLL'``, ``h = NLL''``, ``t = NLL'''``.
    Each evaluation shrinks the bracket (``g > 0``: the root is below); a step
    that leaves the bracket is replaced by bisection (geometric while the
    bracket spans more than a factor 4, so ``beta`` can travel decades).
    Returns ``(beta, n_evaluations, converged, nll(beta_last_evaluated))``.
    """
    beta = min(max(beta, lo), hi)
    nll = math.nan
    for it in range(1, max_iter + 1):
        nll, g, h, t = f(beta)
        if g > 0:
            hi = beta
        elif g < 0:
            lo = beta
        else:
            return beta, it, True, nll
        new, err = math.nan, math.inf
        if h > 0:
            newton = g / h
            denom = 1.0 - 0.5 * newton * t / h
            # Halley's correction only while it is a mild one; else plain Newton.
            step = newton / denom if 0.5 < denom < 2.0 else newton
            new = beta - step
            # Near the root the error left after a Newton step is about
            # |t / (2 h)| step^2 (less after Halley's): once that is below tol,
            # accept the step instead of paying a pass over the data to confirm it.
            if abs(step) <= 1e-2 * beta:
                err = abs(0.5 * t / h) * step * step
        if not (lo < new < hi):
            new, err = (math.sqrt(lo * hi) if hi > 4 * lo else 0.5 * (lo + hi)), math.inf
        if abs(new - beta) <= tol * beta or err <= tol * beta:
            return new, it, True, nll
        beta = new
    return beta, max_iter, False, nll


def _log_grid(a: float, b: float, *, step: float, max_points: int = 48) -> np.ndarray:
    """Points from ``a`` to ``b`` (both included, ``0 < a <= b``) evenly spaced in ``log``, ``step``
    apart or, on a wide interval (a separable set's ``[1, 1e10]``), ``max_points`` of them."""
    span = math.log(b) - math.log(a)
    m = min(max_points, max(2, math.ceil(span / step) + 1)) if span > 0 else 1
    return np.exp(np.linspace(math.log(a), math.log(b), m))


def _smoothed_target_logit(
    d_true: np.ndarray, d_other: np.ndarray, has_other: np.ndarray, *, smoothing: float
) -> np.ndarray:
    """``s_i = (1 - e) d_{i,y_i} + e d_{i,r_i}``, shape (N,): the target-weighted ``d`` of
    :func:`_smoothed_targets`' targets, ``d = z - max z`` (``d_other`` holds ``d_{i,r_i}``).

    A row with no other finite class (``has_other`` False) keeps its hard target.
    """
    e = np.where(has_other, smoothing, 0.0)
    return (1.0 - e) * d_true + e * d_other


def _smoothed_targets(
    labels: np.ndarray, runner_up: np.ndarray, n_classes: int, smoothing: float, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Soft targets (N, C): ``1 - smoothing`` on each label, ``smoothing`` on its runner-up class.

    ``out``, float64 zeros of shape (N, C), receives them instead of a new array (only the
    label and runner-up entries are written: :class:`_AffineBlocks` clears just those after use).
    """
    n = labels.shape[0]
    t = np.zeros((n, n_classes)) if out is None else out
    t[np.arange(n), labels] = 1.0
    has_other = runner_up >= 0
    rows = np.flatnonzero(has_other)
    t[rows, labels[rows]] -= smoothing
    t[rows, runner_up[rows]] += smoothing
    return t


# --------------------------------------------------------------------------- vector / matrix


class _AffineScaling(_Calibrator):
    """``z' = z A^T + b`` fitted by L-BFGS on the penalised NLL, from the temperature fit.

    Both subclasses share the temperature's priors (``prior_scale``, and the soft
    targets of ``pseudo_count``) and a Gaussian prior pulling the per-class scales
    (the diagonal of ``A``, relative to the anchor ``beta``) towards 1 and, for
    vector scaling, the biases towards 0: ``identity_reg / (2 prior_scale^2) *
    sum (a_j / beta - 1)^2 (+ b_j^2)`` (``identity_reg / 2`` without
    ``prior_scale``) added to the *total* log-loss, so its pull fades as ``1 / W``
    like any prior. At the temperature's strength (4 rows' weight, not 1),
    vector scaling on 10 rows went from a median unseen log-loss ratio of 1.13
    (soft targets) to 0.98 (``benchmarks/bench_calibration_prior.py``).
    ``beta`` is the temperature fit, or 1 (the logits as they are) when that
    fit stops on one of its bounds (see :func:`_anchor_beta`).
    """

    _param_names = ("input", "eps", "prior_scale", "pseudo_count", "identity_reg", "max_iter", "tol")
    _params_added = {"prior_scale": None}  # as TemperatureScaling
    _array_names = ("coef_", "intercept_")
    _scalar_names = ("n_classes_", "n_iter_", "converged_", "nll_", "at_bound_")
    #: Whether the identity prior also pulls the biases to 0 (matrix scaling has ODIR for that).
    _prior_on_intercept = True

    def __init__(
        self,
        *,
        input: str = "logits",
        eps: float | None = None,
        prior_scale: float | None = 0.5,
        pseudo_count: float = 0.0,
        identity_reg: float = 1.0,
        max_iter: int = 500,
        tol: float = 1e-8,
    ):
        super().__init__(input=input, eps=eps)
        self.prior_scale = prior_scale
        self.pseudo_count = pseudo_count
        self.identity_reg = identity_reg
        self.max_iter = max_iter
        self.tol = tol

    def _diagonal(self, coef: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ---- -inf inputs (a probability of exactly 0 with input="probs")

    def _check_neg_inf(self, x: np.ndarray, *, fitting: bool, weight: np.ndarray | None = None) -> None:
        """Refuse ``-inf`` in the logits of a fit's rows of positive ``weight`` (``log 0`` times a scale
        being fitted has no finite gradient; :meth:`fit` leaves the rows of weight 0 out), and where the
        fitted map has no limit for it (:meth:`_refuse_unmappable_neg_inf`).

        The fitting rows need not hold a 0 that new rows hold (audit BK-3: 30 rows of a random forest's
        votes without one, then 2 of 1,770 new rows with one, refused with advice the CLI cannot follow).
        """
        # min, not isneginf(x).any(): no (N, C) temporary on the usual path (NaN and +inf are already refused)
        if not x.size or not np.isneginf(x.min()):
            return
        if fitting:
            counted = x if weight is None else np.where((weight > 0)[:, None], x, 0.0)
            if np.isneginf(counted.min()):
                i, j = _first_neg_inf(counted)
                raise self._neg_inf_error(i, j, "the fit cannot scale {value} (its gradient is not finite)",
                                          fitting=True)
            return
        self._refuse_unmappable_neg_inf(x)

    def _refuse_unmappable_neg_inf(self, x: np.ndarray) -> None:  # pragma: no cover
        """Raise :meth:`_neg_inf_error` for the first ``-inf`` of ``x`` that the fitted map cannot take."""
        raise NotImplementedError

    def _neg_inf_error(self, i: int, j: int, reason: str, *, fitting: bool = False) -> ValueError:
        """The error for the ``-inf`` at row ``i``, class ``j`` of the input (``fitting``: of a fit's):
        where it is, ``reason`` (its ``{value}`` is ``log 0 = -inf`` or ``-inf``), and what works, in
        Python and on the command line (which has no ``eps``)."""
        name = input_name(self.input)
        if self.input == "probs":
            where = f"a probability of exactly 0 (row {i}, class {j}, 0-based, of {name})"
            value = "log 0 = -inf"
            fix = ("In Python, fit with eps= (e.g. 1e-12) to clip probabilities before the log, or use "
                   "TemperatureScaling(input='probs') (which keeps a 0 at 0), or PlattScaling(input='probs') or "
                   "IsotonicCalibration(input='probs') (which fit on p itself); on the command line, calibrate "
                   "with --method temperature, platt or isotonic")
        else:
            where = f"a logit of -inf (row {i}, class {j}, 0-based, of {name})"
            value = "-inf"
            fix = "Replace -inf by a finite floor, or use TemperatureScaling (which keeps it at probability 0)"
        verb = "cannot be fitted on" if fitting else "cannot map"
        return ValueError(f"{type(self).__name__}(input={self.input!r}) {verb} {where}: {reason.format(value=value)}. "
                          f"{fix}")

    def _identity_prior(self, coef: np.ndarray, b: np.ndarray, c: int, per_weight: float):
        """Value and gradient (in the parameter vector's layout) of the identity prior, mean scale."""
        lam = _check_nonneg(self.identity_reg, "identity_reg") * per_weight
        dev = self._diagonal(coef) - 1.0
        value = 0.5 * lam * float(dev @ dev)
        if coef.ndim == 1:
            g_coef = lam * dev
        else:
            g_coef = np.zeros_like(coef)
            g_coef[np.diag_indices(c)] = lam * dev
        g_b = np.zeros_like(b)
        if self._prior_on_intercept:
            value += 0.5 * lam * float(b @ b)
            g_b = lam * b
        return value, np.concatenate([g_coef.ravel(), g_b])

    # subclasses: parameter vector <-> (A, b), the gradient map and the penalty
    def _unpack(self, theta: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _init(self, beta: float, c: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _add_grad(self, x: np.ndarray, g_z: np.ndarray, g_coef: np.ndarray, g_b: np.ndarray) -> None:  # pragma: no cover
        """Add one row block's share of the data term's gradient (``g_z = dL/dz'`` on rows ``x``)."""
        raise NotImplementedError

    def _penalty(self, coef: np.ndarray, b: np.ndarray, c: int) -> tuple[float, np.ndarray]:
        return 0.0, None

    def _warn_parameter_count(self, rows: int, c: int, *, weighted: bool, flat: bool) -> None:
        """Warn when the map is flexible enough to fit the labels of its ``rows`` calibration rows (those of
        positive weight, when ``weighted``, whose logits are not all equal, when ``flat``): matrix scaling
        overrides this."""

    def _linear(
        self, x: np.ndarray, coef: np.ndarray, b: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:  # pragma: no cover
        """``z'`` for rows ``x`` (float64; vector scaling's ``transform`` passes float32 rows too, with ``coef`` and
        ``b`` in their dtype), written into ``out`` (``x``'s shape and dtype) when given."""
        raise NotImplementedError

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return self._linear(x.astype(np.float64), self.coef_, self.intercept_)

    def fit(self, logits: Any, y: Any, sample_weight: Any = None):
        """Fit on held-out ``logits`` (N, C) and labels ``y`` (N,); returns ``self``.

        Parameters
        ----------
        logits : array_like of shape (N, C)
            Held-out logits (probabilities with ``input="probs"``).
        y : array_like of shape (N,)
            Integer class indices.
        sample_weight : array_like of shape (N,), optional
            Frequency weights (>= 0; see the module docstring): their total
            ``W`` is weighed against the priors (``prior_scale``,
            ``identity_reg``, ``pseudo_count``), so scale normalised weights so that they
            sum to the number of rows.

        Returns
        -------
        self
        """
        from scipy.optimize import minimize

        from softmaxkit._blas_threads import blas_libraries, one_thread
        from softmaxkit.kernels import fork_safe
        from softmaxkit.kernels.calibration import runner_up_and_min

        max_iter = _check_positive_int(self.max_iter, "max_iter")
        tol = _check_nonneg(self.tol, "tol")
        a = _check_nonneg(self.pseudo_count, "pseudo_count")
        lam = _check_prior_scale(self.prior_scale)
        identity_reg = _check_nonneg(self.identity_reg, "identity_reg")
        x, row_max, labels, w = self._fit_inputs(logits, y, sample_weight)
        if x.size and np.isneginf(x.min()):
            # Only rows of weight 0 hold -inf (_check_neg_inf): they count for nothing, and -inf times their
            # weight 0 is NaN in the loss and its gradient, so the fit is the fit without them (helper FO).
            keep = w > 0
            x, row_max, labels, w = x[keep], row_max[keep], labels[keep], w[keep]
        c = x.shape[1]
        _warn_absent_classes(type(self).__name__, labels, w, c,
                             one="its scale and bias are set by the priors alone (prior_scale, identity_reg)",
                             several="their scales and biases are set by the priors alone (prior_scale, identity_reg)",
                             names=getattr(self, "class_names_", None))
        total = float(np.sum(w))
        if lam or a or identity_reg:
            _warn_if_light_weights(total, int(np.count_nonzero(w > 0)), type(self).__name__)
        row_scale = w / total  # gradient of the weighted mean
        runner_up, row_min = fork_safe(runner_up_and_min, n_elements=x.size)(x, labels)
        # rows whose logits are all equal: a map of the logits cannot tell them apart, only its biases move them
        self._warn_parameter_count(int(np.count_nonzero((w > 0) & (row_min != row_max))), c,
                                   weighted=bool(np.any(w == 0)), flat=bool(np.any(row_min == row_max)))
        smoothing = a / (total + 2.0 * a)  # the temperature's prior, as soft targets built block by block

        # Start from the temperature fit (same prior), and optimise on temperature-scaled
        # logits (coef relative to beta): step 0 is temperature scaling, and L-BFGS sees a
        # well-scaled problem even when the logits are on a scale of 1e8. The temperature
        # fit needs float64 logits (float32 ones round its sums differently); the copy of
        # float32 input is dropped once it is done.
        x64 = x.astype(np.float64, copy=False)
        beta = _anchor_beta(x64, labels, w, a, self.prior_scale)
        owned = x64 is not x
        if owned:  # our own copy (float32 input): scale it once, not each block at every evaluation
            x64 *= beta
        blocks = _AffineBlocks(self, x64, 1.0 if owned else beta, labels, runner_up, smoothing)
        del x64

        # The identity prior is as strong as the temperature's (1 / prior_scale^2 rows per unit
        # of identity_reg): at one row's weight, 10 rows of a calibrated model fitted 2C scales
        # and biases to noise (benchmarks/bench_calibration_prior.py).
        identity_weight = lam if lam else 1.0

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            coef, b = self._unpack(theta, c)
            loss, grad = blocks.loss_and_grad(coef, b, row_scale)
            pen, pen_grad = self._penalty(coef, b, c)
            if pen_grad is not None:
                grad = grad + pen_grad
            prior, prior_grad = self._identity_prior(coef, b, c, identity_weight / total)
            return loss + pen + prior, grad + prior_grad

        # BLAS on one thread (NumPy's and SciPy's): the cross-entropy kernel's numba threads do
        # the heavy work, and BLAS threads woken between its calls fought them for the cores.
        # Measured on the shared 2-core machine (load ~7), 10k x 100 matrix scaling: 16.6 s with
        # BLAS threads, 2.2 s without; the products are the same up to rounding (1e-14).
        with one_thread(blas_libraries()):
            res = minimize(
                fun, self._init(1.0, c), jac=True, method="L-BFGS-B",
                options={"maxiter": max_iter, "gtol": tol, "ftol": tol * 1e-2},
            )
            coef, b = self._unpack(res.x, c)
            # Only the soft targets, or the identity prior around a finite anchor, stop a map
            # that ranks every label first from steepening (without prior_scale the anchor
            # may be 1 after a bound, and the flag keeps its meaning of earlier versions).
            unbounded = a == 0.0 and (lam == 0.0 or identity_reg == 0.0)
            self.nll_, ranks_first = blocks.plain_nll(coef, b, row_scale, w, check_ranks=unbounded)
        self.coef_, self.intercept_ = beta * np.array(coef, dtype=np.float64), np.array(b, dtype=np.float64)
        # With hard targets, a map that ranks every true class first is beaten by any steeper
        # copy of itself: the likelihood has no maximum, and the scales stop only where a
        # prior or L-BFGS's vanishing gradient halts them (temperature scaling's upper bound).
        self.at_bound_ = unbounded and ranks_first
        self.n_classes_, self.n_iter_ = c, int(res.nit)
        self.converged_ = bool(res.success) and not self.at_bound_
        if self.at_bound_:
            warnings.warn(
                f"{type(self).__name__} puts every true class strictly first on the calibration set and "
                "has no prior on its scales (prior_scale=None or identity_reg=0, pseudo_count=0), so the likelihood "
                "has no maximum: the scales stop where the optimiser (or a penalty) halts them, not at an optimum. "
                "Calibrate on more (or harder) held-out data, or keep prior_scale and identity_reg > 0.",
                CalibrationWarning,
                stacklevel=2,
            )
        elif not res.success:
            warnings.warn(f"{type(self).__name__} fit did not converge: {res.message}", CalibrationWarning, stacklevel=2)
        return self


#: Logits per row block when :class:`_AffineBlocks` evaluates the vector and matrix
#: scalings' objective: 2M float64 values, 16 MiB for each of its buffers (three for float64 logits; two
#: for float32 ones, whose float64 copy the fit owns and scales in place).
_BLOCK_ELEMENTS = 1 << 21


class _AffineBlocks:
    """The data term of an affine scaling's objective, evaluated in row blocks.

    Every evaluation reuses float64 buffers of one block (the soft targets,
    and ``z'``, which the cross-entropy overwrites with its gradient; the
    scaled logits too when ``x`` is the caller's array), so a fit holds one
    ``(N, C)`` float64 array beyond the caller's logits (the copy of float32
    logits) plus buffers of ``min(N, _BLOCK_ELEMENTS // C)`` rows, which span
    every row of a small input (matrix scaling at 10k x 100 measured 3.62
    float64 copies, vector scaling at 10k x 1000 1.84:
    ``benchmarks/bench_calibrate_memory.py``). It held four (the logits, the targets, ``z'`` and its
    gradient): 3.1 GB for a 400 MB float32 file. Rows are independent, so a
    block's rows get the values the whole array would; only the sums over
    rows add in another order (rounding only).

    Parameters
    ----------
    scaling : _AffineScaling
        Supplies ``_linear`` and ``_add_grad``.
    x : ndarray of shape (N, C), float64
        The logits (read, never written).
    beta : float
        The rows are ``beta * x`` (1.0: ``x`` is already scaled).
    labels, runner_up : ndarray of shape (N,)
        Class indices, and each row's runner-up class (-1: none).
    smoothing : float
        The prior's mass on the runner-up (:func:`_smoothed_targets`).
    """

    def __init__(self, scaling: "_AffineScaling", x: np.ndarray, beta: float, labels: np.ndarray,
                 runner_up: np.ndarray, smoothing: float) -> None:
        n, c = x.shape
        self.scaling, self.x, self.beta = scaling, x, beta
        self.labels, self.runner_up, self.smoothing = labels, runner_up, smoothing
        self.rows = max(1, min(n, _BLOCK_ELEMENTS // c))
        self._z = np.empty((self.rows, c))
        self._targets = np.zeros((self.rows, c))  # zero except while a block's targets are in it
        self._scaled = None if beta == 1.0 else np.empty((self.rows, c))

    def _blocks(self):
        """``(rows, scaled logits, z' buffer)`` for each row block."""
        n = self.x.shape[0]
        for start in range(0, n, self.rows):
            rows = slice(start, min(start + self.rows, n))
            m = rows.stop - start
            if self._scaled is None:
                scaled = self.x[rows]
            else:
                scaled = np.multiply(self.x[rows], self.beta, out=self._scaled[:m])
            yield rows, scaled, self._z[:m]

    def loss_and_grad(self, coef: np.ndarray, b: np.ndarray, row_scale: np.ndarray) -> tuple[float, np.ndarray]:
        """The weighted mean smoothed NLL at ``(coef, b)`` and its gradient (the parameter vector's layout)."""
        from softmaxkit.functional import cross_entropy_and_grad

        loss = 0.0
        g_coef, g_b = np.zeros(coef.shape), np.zeros(b.shape)
        for rows, scaled, z in self._blocks():
            self.scaling._linear(scaled, coef, b, out=z)
            m = z.shape[0]
            labels, runner_up = self.labels[rows], self.runner_up[rows]
            targets = _smoothed_targets(labels, runner_up, z.shape[1], self.smoothing, out=self._targets[:m])
            # grad_out=z: the gradient overwrites z' row by row, no second buffer.
            loss_rows, g_z = cross_entropy_and_grad(z, targets, reduction="none", grad_output=row_scale[rows],
                                                    grad_out=z)
            # Clear only what _smoothed_targets wrote: a fill of the block costs as much as the linear map.
            targets[np.arange(m), labels] = 0.0
            other = np.flatnonzero(runner_up >= 0)
            targets[other, runner_up[other]] = 0.0
            loss += float(np.dot(row_scale[rows], loss_rows))
            self.scaling._add_grad(scaled, g_z, g_coef, g_b)
        return loss, np.concatenate([g_coef.ravel(), g_b])

    def plain_nll(self, coef: np.ndarray, b: np.ndarray, row_scale: np.ndarray, w: np.ndarray, *,
                  check_ranks: bool) -> tuple[float, bool]:
        """The weighted mean NLL with hard labels at ``(coef, b)``, and (with ``check_ranks``)
        whether every row of positive weight ranks its label strictly first
        (:func:`_ranks_every_label_first`; False when no row has positive weight)."""
        from softmaxkit.functional import cross_entropy

        nll, weighted, first = 0.0, False, True
        for rows, scaled, z in self._blocks():
            self.scaling._linear(scaled, coef, b, out=z)
            labels = self.labels[rows]
            plain = np.asarray(cross_entropy(z, labels, reduction="none"), dtype=np.float64)
            nll += float(np.dot(row_scale[rows], plain))
            if check_ranks and first and np.any(w[rows] > 0):
                weighted = True
                first = _ranks_every_label_first(z, labels, w[rows])
        return nll, check_ranks and weighted and first


def _anchor_beta(x: np.ndarray, labels: np.ndarray, w: np.ndarray, pseudo_count: float,
                 prior_scale: float | None) -> float:
    """The temperature the affine scalings start from and shrink towards: the temperature fit,
    or 1 when its likelihood is maximised on a bound (``at_bound_``; with a prior, ``beta``
    is then a small value set by the prior alone, which says nothing).

    A bound says only that the optimum lies beyond it: at ``beta = 1e-10`` (logits that
    point away from the labels, or carry nothing) the scaled logits are ~0, so L-BFGS
    starts where the gradient is below its tolerance and returns uniform probabilities,
    and the identity prior ``(a / beta - 1)^2`` would charge ``1e20`` for the slope of -1
    that vector scaling can fit; at ``1e10`` (a separable set without prior) the scales
    start at 1e10. The logits as they are (``beta = 1``) are the neutral anchor, as for
    all-equal logits in :class:`TemperatureScaling`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # the affine fit reports its own outcome
        warnings.simplefilter("ignore", OneBasedLabelsWarning)  # and has warned on its labels already
        ts = TemperatureScaling(pseudo_count=pseudo_count, prior_scale=prior_scale).fit(x, labels, sample_weight=w)
    return 1.0 if ts.at_bound_ else float(ts.beta_)


def _ranks_every_label_first(z: np.ndarray, labels: np.ndarray, w: np.ndarray) -> bool:
    """Whether every row of positive weight has its label's logit strictly above all others.

    Strictly: rows tied at the top (all-equal logits) gain nothing from a steeper map.
    """
    rows = np.flatnonzero(w > 0)
    if rows.size == 0:
        return False
    zr = z[rows]
    idx = np.arange(rows.size)
    true = zr[idx, labels[rows]]
    zr[idx, labels[rows]] = -np.inf  # zr is a copy (fancy indexing): z is untouched
    return bool(np.all(true > zr.max(axis=1)))


class VectorScaling(_AffineScaling):
    r"""Vector scaling (Guo et al. 2017): ``z' = a * z + b``, one scale and one bias per class.

    Parameters
    ----------
    input : {"logits", "probs"}, keyword-only
        As :class:`TemperatureScaling`. The fit needs probabilities > 0 (its
        gradient in a scale is not finite at ``log 0 = -inf``): pass ``eps`` if
        one is 0. On new rows a probability of 0 stays 0, with a
        :class:`ZeroProbabilityWarning`, as in temperature scaling, where its
        class's fitted scale is > 0; a scale <= 0 leaves no limit there, and
        ``transform`` raises ValueError.
    eps : float in (0, 1), optional
    prior_scale : float > 0 or None, default 0.5
        The prior of :class:`TemperatureScaling` on ``beta``, the temperature
        the scales start from and are pulled towards; it also scales the
        identity prior (below) by ``1 / prior_scale^2``.
    pseudo_count : float >= 0, default 0
        The soft targets of :class:`TemperatureScaling` (default 0.5 in
        earlier versions).
    identity_reg : float >= 0, default 1.0
        Gaussian prior pulling ``a / beta`` towards 1 and ``b`` towards 0
        (``beta`` the temperature fit, or 1 when it stops on a bound; see
        Notes), added to the total log-loss: ``identity_reg / (2
        prior_scale^2) * sum_j [(a_j / beta - 1)^2 + b_j^2]``. It weighs as
        much as 4 rows, so it only matters when a few rows leave ``2C``
        parameters undetermined.
    max_iter : int, default 500
        L-BFGS iterations.
    tol : float, default 1e-8
        Gradient tolerance of L-BFGS.

    Attributes
    ----------
    coef_ : ndarray of shape (C,)
        The scales ``a``.
    intercept_ : ndarray of shape (C,)
        The biases ``b``.
    n_classes_, n_iter_, converged_, nll_
    at_bound_ : bool
        No prior holds the scales (``pseudo_count=0`` and ``prior_scale=None``
        or ``identity_reg=0``) and the fitted map puts every (weighted) row's true
        class strictly first: the likelihood has no maximum (a steeper map
        always fits better), as for :class:`TemperatureScaling` on its upper
        bound, so the scales are not an optimum and the result is not an
        improvement to report. ``converged_`` is then False and a
        :class:`CalibrationWarning` says so.

    Notes
    -----
    Minimises the weighted mean NLL with exact gradients from
    :func:`softmaxkit.cross_entropy_and_grad` (``dL/da = sum_i G_i * z_i``,
    ``dL/db = sum_i G_i`` with ``G = dL/dz'``), starting at ``a = beta``, ``b =
    0`` from a temperature fit (L-BFGS works on ``a / beta``, so huge logit
    scales do not hurt its conditioning). The objective is convex in ``(a, b)``
    (an affine map inside the log-loss). Unlike temperature scaling it can
    change the argmax, and a scale can be negative: logits that point away
    from the labels get ``a < 0``.

    When the temperature fit stops on one of its ``beta_bounds`` (logits
    with no positive link to the labels put it at ``1e-10``, a separable set
    without a prior at ``1e10``), ``beta`` is 1 instead, for the start
    and the identity prior alike: measured against ``beta = 1e-10``, the
    prior would charge ``1e20 / W`` for ``a = -1`` and return uniform
    probabilities (and against ``1e10``, 0/1 ones).
    """

    def _state_shapes(self, c):
        return {"coef_": (c,), "intercept_": (c,)}

    def _refuse_unmappable_neg_inf(self, x):
        # a * -inf + b is -inf for a > 0: the class keeps probability 0, as in TemperatureScaling
        # (ZeroProbabilityWarning). For a < 0 it would be +inf (and NaN for a = 0 or two such classes).
        zero = np.isneginf(x)
        columns = np.intersect1d(np.flatnonzero(zero.any(axis=0)), self._classes_without_zero_limit())
        if columns.size:
            j = int(columns[0])
            raise self._neg_inf_error(
                int(np.argmax(zero[:, j])), j,
                f"the fitted scale of class {j} is {self.coef_[j]:.4g}, not > 0, so {{value}} has no calibrated "
                "value there (a positive scale keeps the class at probability 0)")

    def _classes_without_zero_limit(self):
        return np.flatnonzero(~(self.coef_ > 0))  # a scale <= 0 (or NaN): no limit at -inf

    def _unpack(self, theta, c):
        return theta[:c], theta[c:]

    def _diagonal(self, coef):
        return coef

    def _init(self, beta, c):
        return np.concatenate([np.full(c, beta), np.zeros(c)])

    def _linear(self, x, coef, b, out=None):
        z = np.multiply(x, coef, out=out)  # (N, C)
        z += b
        return z

    def _add_grad(self, x, g_z, g_coef, g_b):
        g_coef += np.einsum("ij,ij->j", g_z, x)
        g_b += g_z.sum(axis=0)

    def _apply(self, x):
        # Element-wise, as temperature scaling: float32 logits stay float32 (no float64 copy of the input;
        # the scales and biases rounded to float32 move a logit by an ulp or two). Matrix scaling sums C
        # products per logit and keeps float64.
        return self._linear(x, self.coef_.astype(x.dtype, copy=False), self.intercept_.astype(x.dtype, copy=False))


class MatrixScaling(_AffineScaling):
    r"""Matrix scaling with ODIR regularisation (Kull et al. 2019): ``z' = z W^T + b``.

    Parameters
    ----------
    input : {"logits", "probs"}, keyword-only
        As :class:`TemperatureScaling`, but probabilities need ``eps`` if any is
        0, in the fit and on new rows alike: ``W`` mixes ``log p`` across
        classes, where ``log 0 = -inf`` has no limit, so ``transform`` raises
        ValueError (a random forest's votes hold zeros that the calibration rows
        may lack: use ``eps``, or temperature, Platt or isotonic calibration).
    eps : float in (0, 1), optional
    prior_scale : float > 0 or None, default 0.5
        As :class:`VectorScaling`.
    pseudo_count : float >= 0, default 0
        As :class:`VectorScaling`.
    identity_reg : float >= 0, default 1.0
        Gaussian prior pulling the diagonal ``W_jj / beta`` towards 1 (``beta``
        as in :class:`VectorScaling`), added to the total log-loss
        (``identity_reg / (2 prior_scale^2) * sum_j (W_jj / beta - 1)^2``;
        ODIR below shrinks the rest).
    off_diagonal_reg : float >= 0, default 1.0
        ``lambda`` of ODIR: penalises ``lambda / (C (C - 1)) * sum_{i != j} W_ij^2``
        (``W`` relative to the temperature fit, see Notes).
    intercept_reg : float >= 0, default 1.0
        ``mu`` of ODIR: penalises ``mu / C * sum_j b_j^2``. Kull et al. tune both
        by cross-validation; the default is a safe middle: on digits (674
        calibration rows, 10 classes) test NLL was best near 1-10 and
        over-fitted badly at 0.01 (random forest: 1.21 vs 0.19 at 1.0).
    max_iter : int, default 500
    tol : float, default 1e-8

    Attributes
    ----------
    coef_ : ndarray of shape (C, C)
        ``W``.
    intercept_ : ndarray of shape (C,)
    n_classes_, n_iter_, converged_, nll_
    at_bound_ : bool
        As :class:`VectorScaling`.

    Notes
    -----
    ``C^2 + C`` parameters over-fit a small calibration set (``fit`` warns,
    :class:`ManyParametersWarning`, when they are as many as its rows or more:
    at 100 classes and 2,000 rows the map ranked every calibration row's
    label first, and took new rows' accuracy from 0.68 to 0.37); ODIR
    (Off-Diagonal and Intercept Regularisation) shrinks the off-diagonal
    entries and the biases but leaves the diagonal free, so the fit can fall
    back to vector (and temperature) scaling. The objective (NLL plus the
    penalty) is convex; L-BFGS starts from ``W = beta I``, ``b = 0`` of a
    temperature fit and works on ``W / beta``, to which the penalty applies,
    so ``lambda`` means the same whatever the logits' scale. As for
    :class:`VectorScaling`, ``beta = 1`` when the temperature fit stops on a
    bound, so ``W`` can still, for instance, undo logits whose columns are in
    another order than the labels. Each iteration costs two (N, C) x (C, C)
    products.

    References
    ----------
    Kull, Perello-Nieto, Kängsepp, Silva Filho, Song & Flach, "Beyond
    temperature scaling: obtaining well-calibrated multiclass probabilities
    with Dirichlet calibration", NeurIPS 2019.
    """

    _param_names = (
        "input", "eps", "prior_scale", "pseudo_count", "identity_reg", "off_diagonal_reg", "intercept_reg",
        "max_iter", "tol",
    )

    def __init__(
        self,
        *,
        input: str = "logits",
        eps: float | None = None,
        prior_scale: float | None = 0.5,
        pseudo_count: float = 0.0,
        identity_reg: float = 1.0,
        off_diagonal_reg: float = 1.0,
        intercept_reg: float = 1.0,
        max_iter: int = 500,
        tol: float = 1e-8,
    ):
        super().__init__(
            input=input, eps=eps, prior_scale=prior_scale, pseudo_count=pseudo_count, identity_reg=identity_reg,
            max_iter=max_iter, tol=tol,
        )
        self.off_diagonal_reg = off_diagonal_reg
        self.intercept_reg = intercept_reg

    _prior_on_intercept = False  # ODIR's intercept_reg already shrinks the biases

    def _state_shapes(self, c):
        return {"coef_": (c, c), "intercept_": (c,)}

    def _classes_without_zero_limit(self):
        return np.arange(self.n_classes_)  # W mixes every class's log p

    def _refuse_unmappable_neg_inf(self, x):
        i, j = _first_neg_inf(x)
        raise self._neg_inf_error(
            i, j, "matrix scaling mixes the classes' logits (z' = z W^T + b), where {value} has no limit")

    def _unpack(self, theta, c):
        return theta[: c * c].reshape(c, c), theta[c * c :]

    def _diagonal(self, coef):
        return np.diag(coef)

    def _init(self, beta, c):
        return np.concatenate([(beta * np.eye(c)).ravel(), np.zeros(c)])

    def _linear(self, x, coef, b, out=None):
        z = np.matmul(x, coef.T, out=out)  # (N, C) @ (C, C)
        z += b
        return z

    def _add_grad(self, x, g_z, g_coef, g_b):
        g_coef += g_z.T @ x
        g_b += g_z.sum(axis=0)

    def _warn_parameter_count(self, rows, c, *, weighted, flat):
        # ODIR's weight per entry, off_diagonal_reg / (C (C - 1)), fades with C: 10,100 parameters on 2,000
        # rows of 100 classes scored accuracy 0.659 -> 1.000 and log-loss 3.05 -> 0.07 on those rows, and
        # 0.684 -> 0.370 and 2.83 -> 3.65 on new ones (audit BR).
        n_parameters = c * c + c
        if 0 < rows <= n_parameters:
            which = [what for what, said in (("of positive weight", weighted), ("whose logits differ", flat)) if said]
            warnings.warn(
                f"{type(self).__name__}: {n_parameters} parameters (C^2 + C, C = {c}) fitted on {rows} calibration "
                f"rows{' (' + ', '.join(which) + ')' if which else ''}, as many as the rows or more: "
                "the map can fit these rows' labels, so its accuracy and log-loss on them say nothing about new "
                "rows. Measure it on held-out rows, or use VectorScaling (2C parameters) or TemperatureScaling (1)",
                ManyParametersWarning,
                stacklevel=3,
            )

    def _penalty(self, coef, b, c):
        lam = _check_nonneg(self.off_diagonal_reg, "off_diagonal_reg")
        mu = _check_nonneg(self.intercept_reg, "intercept_reg")
        off = coef - np.diag(np.diag(coef))
        lam_c = lam / (c * (c - 1)) if c > 1 else 0.0
        mu_c = mu / c
        value = lam_c * float(np.sum(off * off)) + mu_c * float(b @ b)
        return value, np.concatenate([(2.0 * lam_c * off).ravel(), 2.0 * mu_c * b])


# --------------------------------------------------------------------------- the rest of the family

# These subclass _Calibrator or import scikit-learn, so they live in their own modules,
# loaded on first use (PEP 562): those modules import this one, never the reverse.
_LAZY = {
    "IsotonicCalibration": "softmaxkit._one_vs_rest",
    "PlattScaling": "softmaxkit._one_vs_rest",
    "CalibratedClassifier": "softmaxkit._calibrated_classifier",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'softmaxkit.calibration' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
