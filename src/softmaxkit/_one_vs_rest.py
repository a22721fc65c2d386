"""One-vs-rest calibrators: isotonic regression and Platt's sigmoid, one map per class.

Each class's score (from logits, its one-vs-rest log-odds ``log(p_k / (1 -
p_k)) = z_k - logsumexp_{j != k} z_j``, for binary problems the margin ``z_1 -
z_0``) is mapped to a probability by its own monotone map fitted against
"is it this class?", and the per-class probabilities are renormalised to sum
to 1, as scikit-learn's ``CalibratedClassifierCV(method="isotonic" |
"sigmoid")`` does (on the raw logits, see the classes' Notes). On a binary
problem there is one map, on the positive class, and ``p_0 = 1 - p_1``.

Re-exported by :mod:`softmaxkit.calibration`; see the classes there.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from softmaxkit._calibration_inputs import (
    _caller_stacklevel,
    absent_classes,
    check_labels,
    check_logits,
    check_probs,
    input_name,
)
from softmaxkit._loss_interval import name_list
from softmaxkit._validation import check_sample_weight
from softmaxkit.calibration import (
    CalibrationWarning,
    NotFittedError,
    ZeroProbabilityWarning,
    _Calibrator,
    _check_nonneg,
    _check_positive_int,
    _warn_if_light_weights,
)

#: Below this many calibration rows (of positive weight) a class's one-vs-rest map is said to rest
#: on too few: each map is fitted on its own class's rows, so with 1-2 of them (audit) its
#: probabilities are those rows' labels, not the class's calibration.
_MIN_CLASS_ROWS = 5


class _OneVsRest(_Calibrator):
    """Scores, fitting one map per group (class; one group when binary), renormalisation."""

    _array_names: tuple[str, ...] = ()

    # ---- scores

    def _scores(self, X: Any, score: str) -> np.ndarray:
        """``(N, G)`` float64 scores: one column per class, or the margin when there are 2 classes.

        From logits, ``score`` (a fitted ``score_``, or :meth:`_fit_score` when fitting) says which:
        the one-vs-rest log-odds, or the raw logits of a calibrator saved before the log-odds."""
        name = input_name(self.input)
        if self.input == "logits":
            if self.eps is not None:
                raise ValueError('eps only applies to input="probs"; logits never need clipping')
            x = check_logits(X, name).astype(np.float64)
            if np.isneginf(x).any():
                i, j = (int(v) for v in np.unravel_index(int(np.argmax(np.isneginf(x))), x.shape))
                raise ValueError(f"{type(self).__name__} needs finite logits; {name} has -inf at position ({i}, {j})")
            if x.shape[1] == 2:
                return x[:, 1:] - x[:, :1]  # the log-odds of class 1, as it is for 2 classes
            return x if score == "raw_logit" else one_vs_rest_log_odds(x)
        p = check_probs(X, name).astype(np.float64)
        if p.shape[1] < 2:
            raise ValueError(f"{name} must have at least 2 classes (columns), got shape {p.shape}")
        return self._prob_scores(p, name)

    def _fit_score(self) -> str:
        """What :meth:`fit` maps, recorded as ``score_``: from logits, the one-vs-rest log-odds."""
        return "log_odds" if self.input == "logits" else self._prob_score()

    def _prob_score(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def _prob_scores(self, p: np.ndarray, name: str) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _n_classes_of(self, scores: np.ndarray) -> int:
        return 2 if scores.shape[1] == 1 else scores.shape[1]

    # ---- fit / predict

    def fit(self, logits: Any, y: Any, sample_weight: Any = None):
        """Fit one map per class on held-out ``logits`` (N, C) (or probabilities) and labels ``y`` (N,)."""
        score = self._fit_score()
        f = self._scores(logits, score)
        n_classes = self._n_classes_of(f)
        labels = check_labels(y, n_classes, f.shape[0], scores=f)
        w = check_sample_weight(sample_weight, f.shape[0])
        if f.shape[0] == 0:
            raise ValueError("cannot fit a calibrator on 0 samples")
        missing = absent_classes(labels, w, n_classes)
        if missing:
            # Its map would learn "never": probability 0 (isotonic) or about 1/(n+2) (Platt) whatever the
            # score, so new rows of that class lose it (audit: accuracy 0.96 -> 0.62, log-loss inf).
            raise ValueError(
                f"{type(self).__name__} fits one map per class, but class {missing[0]} has no row among the "
                f"{f.shape[0]} calibration rows{' (of positive weight)' if np.any(w == 0) else ''}: its map would "
                "learn that the class never occurs, whatever its score. Calibrate on rows that hold every class, or use "
                "TemperatureScaling, which shares one parameter across classes"
            )
        self._warn_few_rows(labels, w, n_classes, f.shape[0])
        # Binary: the positive class only; else each class against the rest.
        hits = (labels == 1)[:, None] if f.shape[1] == 1 else labels[:, None] == np.arange(n_classes)[None, :]
        self._fit_groups(f, hits.astype(np.float64), w)
        self.n_classes_ = int(n_classes)
        self.score_ = score
        return self

    def _warn_few_rows(self, labels: np.ndarray, w: np.ndarray, n_classes: int, n_rows: int) -> None:
        """One :class:`CalibrationWarning` naming the classes with fewer than ``_MIN_CLASS_ROWS`` rows."""
        counts = np.bincount(labels[w > 0], minlength=n_classes)
        few = [(k, int(counts[k])) for k in range(n_classes) if 0 < counts[k] < _MIN_CLASS_ROWS]
        if not few:
            return
        named = ", ".join(f"class {k} has {n} calibration row{'s' * (n != 1)}" for k, n in few)
        k, n = few[0]
        warnings.warn(
            f"{type(self).__name__}: {named} (of positive weight) among the {n_rows} rows. Each class's map is "
            f"fitted on its own rows against the rest, so class {k}'s map rests on {n} row{'s' * (n != 1)}: "
            "its probabilities reflect those rows' scores, not how the class is calibrated. Calibrate on at least "
            f"{_MIN_CLASS_ROWS} rows of every class, or use TemperatureScaling, which shares one parameter across "
            "classes",
            CalibrationWarning,
            stacklevel=3,
        )

    def _fit_groups(self, f: np.ndarray, hits: np.ndarray, w: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _group_probs(self, f: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _fitted_scores(self, logits: Any) -> np.ndarray:
        """:meth:`_scores` of ``logits``, checked against the fitted maps."""
        # Unfitted: the scores a fit would read, so that bad input is named before "not fitted".
        f = self._scores(logits, getattr(self, "score_", None) or self._fit_score())
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        if self._n_classes_of(f) != self.n_classes_:
            raise ValueError(
                f"logits have {self._n_classes_of(f)} classes but the calibrator was fitted on {self.n_classes_}"
            )
        return f

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities (N, C), float64: the per-class maps, renormalised."""
        f = self._fitted_scores(logits)
        if f.shape[1] == 1:
            return self._binary_probs(f)
        q = self._group_probs(f)  # (N, C)
        total = q.sum(axis=1, keepdims=True)
        # Every map says 0 for this row: nothing to renormalise, so say uniform (as scikit-learn).
        p = np.divide(q, total, out=np.full_like(q, 1.0 / q.shape[1]), where=total > 0)
        return np.clip(p, 0.0, 1.0)

    def _binary_probs(self, f: np.ndarray) -> np.ndarray:
        """``[1 - q, q]`` (N, 2) from the one map of the margin ``f`` (N, 1)."""
        q = self._group_probs(f)
        return np.clip(np.concatenate([1.0 - q, q], axis=1), 0.0, 1.0)

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated logits ``log p`` (N, C) (``-inf`` where a map gives probability 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(logits))

    def _apply(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - transform is overridden
        raise NotImplementedError

    # ---- persistence

    def _fitted_before(self, name: str) -> Any:
        if name != "score_":
            return super()._fitted_before(name)
        # Versions before score_ mapped 3 or more classes' logits as they are: such a file keeps
        # doing so (its maps were fitted on those scores). Every other map read what it reads now.
        c = self.n_classes_  # _scalar_names sets it first
        many = isinstance(c, numbers.Integral) and not isinstance(c, bool) and c > 2
        return "raw_logit" if self.input == "logits" and many else self._fit_score()

    @classmethod
    def _from_state(cls, meta, arrays):
        obj = super()._from_state(meta, arrays)
        if obj.score_ == "raw_logit":
            warnings.warn(
                f"this {cls.__name__} was saved by an earlier softmaxkit, whose maps read each of the "
                f"{obj.n_classes_} classes' raw logit, and it keeps reading them so; but logits are defined up to "
                "a constant per row, and its probabilities change with that constant (z and log_softmax(z) give "
                "different ones): give it logits computed exactly as those it was fitted on. Fitted again, it "
                "maps each class's log-odds log(p_k / (1 - p_k)), which no such constant changes",
                CalibrationWarning,
                stacklevel=_caller_stacklevel(),
            )
        return obj

    def _validate_state(self) -> None:
        super()._validate_state()
        allowed = [self._fit_score()]
        if self.input == "logits" and self.n_classes_ > 2:
            allowed.append("raw_logit")  # a file of a version before the log-odds
        if self.score_ not in allowed:
            raise ValueError(f"score_ must be {' or '.join(map(repr, allowed))} for input={self.input!r} and "
                             f"n_classes_={self.n_classes_}, got {self.score_!r}")


def one_vs_rest_log_odds(z: np.ndarray) -> np.ndarray:
    """Each class's one-vs-rest log-odds ``log(p_k / (1 - p_k)) = z_k - logsumexp_{j != k} z_j``, (N, C),
    of finite float64 logits ``z`` (N, C >= 2), ``p = softmax(z)``; the same for ``z + c`` for any row constant.

    Never through ``p``: ``1 - p_k`` is 0 in floating point once ``p_k`` is within 1e-16 of 1, where
    the log-odds are still finite (37, 100, ...). With ``m`` the row's largest logit (column ``a``),
    every other class's rest holds ``m``: ``logsumexp_{j != k} = m + log1p(t - e_k)``, ``e = exp(z - m)``,
    ``t`` the sum of ``e`` off column ``a``, each term accurate next to the 1 of ``m``. The largest
    class's rest is summed from the largest of the others, ``m2``, so it cannot underflow to ``-inf``
    (``z = [800, 0, 0]``: log-odds 800 - log 2).
    """
    rows = np.arange(z.shape[0])
    a = np.argmax(z, axis=1)
    d = z - z[rows, a][:, None]  # <= 0, 0 at a
    d[rows, a] = -np.inf  # out of the others' sums and max
    m2 = d.max(axis=1)
    top = -m2 - np.log(np.exp(d - m2[:, None]).sum(axis=1))  # the largest class's log-odds
    e = np.exp(d)
    t = e.sum(axis=1, keepdims=True)
    # in place: (N, C) logits may be large (the CLI's files)
    np.subtract(t, e, out=e)
    np.maximum(e, 0.0, out=e)  # t - e_k >= 0 but for rounding
    np.log1p(e, out=e)
    out = np.subtract(d, e, out=d)
    out[rows, a] = top
    return out


# --------------------------------------------------------------------------- isotonic


class IsotonicCalibration(_OneVsRest):
    r"""One-vs-rest isotonic regression (Zadrozny & Elkan 2002), renormalised.

    Each class's score is mapped by a non-decreasing step function fitted by
    weighted least squares (pool adjacent violators) to "the label is this
    class", interpolated linearly between its steps and clipped outside the
    fitted range; the per-class probabilities are then divided by their sum.
    This is scikit-learn's ``CalibratedClassifierCV(method="isotonic")``
    calibration on the same scores (see Notes).

    Parameters
    ----------
    input : {"logits", "probs"}, default "logits", keyword-only
        ``"logits"``: the maps act on each class's one-vs-rest log-odds
        ``f_k = log(p_k / (1 - p_k)) = z_k - logsumexp_{j != k} z_j``, ``p =
        softmax(z)`` (with 2 classes: the margin ``z_1 - z_0``, the binary
        ``decision_function``), which a constant added to a row of logits
        does not change. ``"probs"``: on each probability itself (with 2
        classes: on ``p_1``), as scikit-learn does for a model with
        ``predict_proba`` only. ``f_k`` orders rows as ``p_k`` does, so the
        two fit the same steps and differ only in where the linear
        interpolation between them happens.
    eps : None
        Not used (accepted for a uniform interface with ``input="probs"``).

    Attributes
    ----------
    n_classes_ : int
    score_ : {"log_odds", "probability", "raw_logit"}
        What the maps read: the log-odds (``input="logits"``), or ``p``
        (``input="probs"``). ``"raw_logit"``: each logit as it is, which
        calibrators of 3 or more classes saved by versions before the
        log-odds fitted on; loaded, they keep it (with a
        :class:`CalibrationWarning`), and a new ``fit`` reads the log-odds.
    thresholds_ : list of (x, y) ndarray pairs
        Each map's knots (one pair when binary).
    zero_classes_ : ndarray of int
        The classes (column indices, ascending) to which :meth:`predict_proba`
        gives probability exactly 0 on some range of scores: those whose map
        is 0 at its lowest scores (with 2 classes: class 1 where the margin's
        map is 0, class 0 where it is 1). Empty when there are none. Derived
        from the knots, so it is there after :func:`softmaxkit.load` too.

    Warns
    -----
    ZeroProbabilityWarning
        At fit, when ``zero_classes_`` is not empty, naming each class and its
        score range (a :class:`CalibrationWarning`).
    CalibrationWarning
        At fit, when a class has fewer than 5 calibration rows of positive
        weight.

    Notes
    -----
    scikit-learn fits its maps on the raw ``decision_function`` columns,
    which for a softmax model (logits) depend on a constant per row that
    the model leaves free: on the same logits plus a random constant per
    row (3000 x 4, overconfident), its test log-loss was 1.2444 against
    1.0923 uncalibrated and 0.9562 here, the same for any constant. On a
    model's ``log_softmax`` the two fit the same steps (``log p_k`` orders rows
    as ``f_k`` does), interpolated on other scales.

    Isotonic regression needs no parametric form, but it over-fits small
    calibration sets (a step per run of labels) and can produce probabilities
    of exactly 0 or 1: ``transform`` then returns ``-inf`` logits and the
    log-loss of a wrong certain prediction is infinite. A class's map is 0 at
    the lowest scores whenever the calibration rows scoring lowest for it
    are other classes' rows, so some map reaches 0 in nearly every fit (as
    scikit-learn's does on the same rows): in 20 of 20 synthetic 3-class fits at each of 20 to 5000
    calibration rows, giving fresh rows of that class infinite log-loss in
    20 of 20 fits up to 1000 rows and 17 of 20 at 5000. Prefer temperature
    scaling below about 1000 calibration rows (Niculescu-Mizil & Caruana
    2005). Fitting uses :class:`sklearn.isotonic.IsotonicRegression`;
    prediction is ``np.interp`` on the stored knots, the same function.

    References
    ----------
    Zadrozny & Elkan, "Transforming classifier scores into accurate multiclass
    probability estimates", KDD 2002. Niculescu-Mizil & Caruana, "Predicting
    good probabilities with supervised learning", ICML 2005.
    """

    _param_names = ("input", "eps")
    _array_names = ("knots_x_", "knots_y_", "knot_offsets_")
    _scalar_names = ("n_classes_", "score_")

    def _prob_score(self) -> str:
        return "probability"

    def _prob_scores(self, p: np.ndarray, name: str) -> np.ndarray:
        if self.eps is not None:
            raise ValueError("IsotonicCalibration maps probabilities directly; eps does not apply")
        return p[:, 1:] if p.shape[1] == 2 else p

    def _fit_groups(self, f, hits, w):
        from sklearn.isotonic import IsotonicRegression

        xs, ys, offsets = [], [], [0]
        for g in range(f.shape[1]):
            keep = w > 0  # zero weights: scikit-learn drops them too
            iso = IsotonicRegression(out_of_bounds="clip").fit(f[keep, g], hits[keep, g], sample_weight=w[keep])
            xs.append(np.asarray(iso.X_thresholds_, dtype=np.float64))
            ys.append(np.clip(np.asarray(iso.y_thresholds_, dtype=np.float64), 0.0, 1.0))
            offsets.append(offsets[-1] + xs[-1].size)
        self.knots_x_, self.knots_y_ = np.concatenate(xs), np.concatenate(ys)
        self.knot_offsets_ = np.asarray(offsets, dtype=np.int64)
        self._warn_zero_ranges(f, w)

    def _zero_ranges(self) -> list[tuple[int, int, str, float]]:
        """``(class, map, op, bound)`` per class that :meth:`predict_proba` can give exactly 0:
        its probability is 0 where the map's score ``op`` (``"<="`` or ``">="``) ``bound``."""
        if not hasattr(self, "knot_offsets_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        maps = self.thresholds_
        if len(maps) == 1:
            # The margin's map q gives p_1 = q and p_0 = 1 - q: class 0 is 0 where q is 1.
            (kx, ky), ranges = maps[0], []
            if np.any(ky >= 1.0):
                ranges.append((0, 0, ">=", float(kx[ky >= 1.0].min())))
            if np.any(ky <= 0.0):
                ranges.append((1, 0, "<=", float(kx[ky <= 0.0].max())))
            return ranges
        # np.interp of knots >= 0 is 0 only at (or clamped beyond) a knot that is 0; the maps are
        # non-decreasing, so that is every score up to the last such knot. Renormalising keeps it 0
        # whenever another class's map is positive, which its own rows make it somewhere.
        return [(g, g, "<=", float(kx[ky <= 0.0].max())) for g, (kx, ky) in enumerate(maps) if np.any(ky <= 0.0)]

    @property
    def zero_classes_(self) -> np.ndarray:
        return np.array(sorted({k for k, _, _, _ in self._zero_ranges()}), dtype=np.int64)

    def _warn_zero_ranges(self, f: np.ndarray, w: np.ndarray) -> None:
        """One :class:`ZeroProbabilityWarning` naming each class ``predict_proba`` can give 0, and where."""
        ranges = self._zero_ranges()
        if not ranges:
            return
        binary = f.shape[1] == 1
        if self.input == "logits":
            score = "margin z_1 - z_0" if binary else "log-odds"
        else:
            score = "p_1" if binary else "probability"
        # the maps' score, said once (they read it, not the logit; audit CO)
        defined = " (of each class's log-odds log(p_k / (1 - p_k)), p = softmax(logits))" if score == "log-odds" else ""
        fit_rows = w > 0
        parts = []
        for k, g, op, bound in ranges:
            inside = f[:, g] <= bound if op == "<=" else f[:, g] >= bound
            parts.append(f"class {k} at {score} {op} {bound:.4g} ({int(np.sum(inside & fit_rows))} of the "
                         f"{int(np.sum(fit_rows))} calibration rows score there)")
        warnings.warn(
            # the first few and a count (audit BR: all 1000 classes, each with its range, in one warning)
            f"{type(self).__name__}: the isotonic map{defined} gives probability exactly 0 to "
            + name_list(parts, sep="; ", noun="classes") + ". A new row of such a class that scores there has "
            "infinite log-loss (transform gives -inf): the map says so because no calibration row of the class scored there, which is weak evidence that none "
            "ever will. More calibration rows shrink such ranges but seldom remove them; TemperatureScaling or "
            "PlattScaling put no range of scores at probability 0 (zero_classes_ lists these classes)",
            ZeroProbabilityWarning,
            stacklevel=4,
        )

    @property
    def thresholds_(self) -> list[tuple[np.ndarray, np.ndarray]]:
        o = self.knot_offsets_
        return [(self.knots_x_[o[g] : o[g + 1]], self.knots_y_[o[g] : o[g + 1]]) for g in range(o.size - 1)]

    def _group_probs(self, f):
        maps = self.thresholds_
        if len(maps) != f.shape[1]:
            raise ValueError(f"the calibrator holds {len(maps)} maps but got {f.shape[1]} score columns")
        # np.interp clamps outside the knots: scikit-learn's out_of_bounds="clip".
        return np.stack([np.interp(f[:, g], kx, ky) for g, (kx, ky) in enumerate(maps)], axis=1)

    @classmethod
    def _from_state(cls, meta, arrays):
        obj = super()._from_state(meta, arrays)
        obj.knot_offsets_ = obj.knot_offsets_.astype(np.int64)
        return obj

    def _validate_state(self) -> None:
        super()._validate_state()
        o = self.knot_offsets_
        if o.ndim != 1 or o.size < 2 or o[0] != 0 or o[-1] != self.knots_x_.size or np.any(np.diff(o) < 1):
            raise ValueError("knot_offsets_ does not index the stored knots")
        if self.knots_y_.shape != self.knots_x_.shape or np.any((self.knots_y_ < 0) | (self.knots_y_ > 1)):
            raise ValueError("knots_y_ must hold probabilities, one per knot")
        offsets = o.astype(np.int64)
        if any(np.any(np.diff(self.knots_x_[offsets[g]:offsets[g + 1]]) < 0) for g in range(offsets.size - 1)):
            raise ValueError("knots_x_ must be sorted within each map (np.interp reads unsorted knots wrongly)")


# --------------------------------------------------------------------------- Platt

#: What Platt's sigmoid reads from probabilities (``PlattScaling(feature=...)``).
_FEATURES = ("probability", "log_odds")

#: Platt's prior, as :func:`softmaxkit.calibration._warn_if_light_weights` names it (a plural phrase).
_PLATT_PRIORS = ("the pseudo-counts of Platt's targets (the 1 and 2 in (N_+ + 1) / (N_+ + 2) and 1 / (N_- + 2), "
                 "N_+ and N_- the summed weights of the class's rows and the others', which pull every target "
                 "toward 1/2)")


class PlattScaling(_OneVsRest):
    r"""Platt scaling: one sigmoid per class on its score, renormalised.

    ``q_k = sigmoid(a_k f_k + b_k)`` with ``f_k`` the class's one-vs-rest
    log-odds ``log(p_k / (1 - p_k)) = z_k - logsumexp_{j != k} z_j``, ``p =
    softmax(z)``, computed from the logits without clipping, or with
    ``input="probs"`` its probability ``p_k`` (with 2 classes: one sigmoid on
    the margin ``z_1 - z_0``, the log-odds of class 1, or on ``p_1``, and
    ``p_0 = 1 - p_1``), then ``p = q / sum_k q_k``. A constant added to a
    row of logits changes no ``f_k``, and ``a_k = 1, b_k = 0`` gives back
    ``p`` itself. This is scikit-learn's
    ``CalibratedClassifierCV(method="sigmoid")`` on these scores; it reads
    ``decision_function`` when the model has it and else ``predict_proba``
    (see Notes).

    Parameters
    ----------
    input : {"logits", "probs"}, default "logits", keyword-only
        What the scores are; with ``"probs"``, ``feature`` says what each
        sigmoid reads.
    feature : {"probability", "log_odds"}, default "probability", keyword-only
        With ``input="probs"``: ``"probability"`` fits ``sigmoid(a p_k + b)``
        on the probability itself, as scikit-learn does for a model without
        ``decision_function``; ``"log_odds"`` fits it on ``log(p_k / (1 -
        p_k))``, which needs probabilities strictly between 0 and 1 (or
        ``eps``), the map of versions before this option (a file saved by
        them loads with it). On votes (a random forest, k-nearest
        neighbours) and naive Bayes, whose probabilities reach 0 and 1, the
        log-odds of ``eps`` are outliers (1e-12: -27.6 beside -3.9 for 0.02)
        that flatten the slope: wine, random forest, cross-fitted, median
        test log-loss 0.172 against 0.133 uncalibrated and 0.062 on ``p``.
        On sharp, overconfident probabilities the log-odds can be the
        better map (Gaussian naive Bayes on digits: 0.479 against 0.635 on
        ``p``; logistic regression on digits 0.113 against 0.130), though
        :class:`TemperatureScaling` was at least as good as either in 7 of 8
        such cells. Not used with ``input="logits"``, whose sigmoid reads the
        log-odds, those of ``"log_odds"`` without clipping.
    eps : float in (0, 1), optional
        With ``input="probs"``: clip probabilities to ``[eps, 1 - eps]``
        first (needed for ``feature="log_odds"`` when some are exactly 0 or
        1; ``CalibratedClassifier`` passes 1e-12).
    max_iter : int, default 100
        Newton iterations per class.
    tol : float, default 1e-12
        Stop when the Newton decrement (the predicted decrease of the mean
        loss) is below ``tol``.

    Attributes
    ----------
    coef_ : ndarray of shape (G,)
        Slopes ``a_k`` (G = 1 for two classes, else C). scikit-learn's
        ``_SigmoidCalibration`` stores ``-a`` and ``-b`` (``expit(-(a f + b))``).
    intercept_ : ndarray of shape (G,)
    n_classes_ : int
    score_ : {"log_odds", "probability", "raw_logit"}
        What the sigmoids read: the log-odds (``input="logits"``, or
        ``feature="log_odds"``), or ``p``. ``"raw_logit"``: each logit as it
        is, which calibrators of 3 or more classes saved by versions before
        the log-odds fitted on; loaded, they keep it (with a
        :class:`CalibrationWarning`), and a new ``fit`` reads the log-odds.

    Warns
    -----
    CalibrationWarning
        At fit, when a class has fewer than 5 calibration rows of positive
        weight, or when ``sample_weight`` sums to less than a quarter of the
        rows it weighs (weights normalised to sum to 1): Platt's targets add
        their 1 and 2 to summed weights, so light weights pull every
        probability toward 1/2 (as in scikit-learn); weights are frequency
        weights, to be scaled to sum to the number of rows. Also when a
        fitted slope ``a_k`` is below 0 beyond chance (a Wald test at level
        0.001 shared by the maps): the scores rank that class the other way
        and the map reverses the model's ranking to fit them, which is a
        swapped column or class order (binary: a single score column that
        scores class 0), to fix in the input; the fit itself is kept.

    Notes
    -----
    Each map minimises the weighted log-loss against Platt's targets,
    ``(N_+ + 1) / (N_+ + 2)`` for the class's rows and ``1 / (N_- + 2)`` for
    the others (``N_+``, ``N_-`` their weights): his Bayesian prior, which
    keeps the slope finite on separable data. The objective is convex in
    ``(a, b)``; it is solved by Newton's method with a backtracking line
    search, from ``a = 0``, ``b = log((N_+ + 1) / (N_- + 1))``, to machine
    precision (scikit-learn uses L-BFGS to a gradient of 1e-6, so the two
    agree to about 1e-6 in probability).

    scikit-learn fits its sigmoids on the raw ``decision_function`` columns,
    which for a softmax model (logits) depend on a constant per row that
    the model leaves free: on the same logits plus a random constant per
    row (3000 x 4, overconfident), its test log-loss was 1.1436, worse than
    1.0923 uncalibrated, against 0.9308 here, the same for any constant
    (0.9387 for scikit-learn on the model's ``log_softmax``). On 2 classes
    the margin is the log-odds, and the two agree.

    References
    ----------
    Platt, "Probabilistic outputs for support vector machines and comparisons
    to regularized likelihood methods", 1999.
    """

    _param_names = ("input", "eps", "max_iter", "tol", "feature")
    _array_names = ("coef_", "intercept_")
    _scalar_names = ("n_classes_", "score_")
    # Files written before `feature` hold maps fitted on log-odds: they load (and refit) as such.
    _params_added = {"feature": "log_odds"}

    def __init__(self, *, input: str = "logits", eps: float | None = None, max_iter: int = 100, tol: float = 1e-12,
                 feature: str = "probability"):
        super().__init__(input=input, eps=eps)
        self.max_iter = max_iter
        self.tol = tol
        self.feature = feature

    def _prob_score(self) -> str:
        from softmaxkit._calibration_inputs import check_choice

        return "log_odds" if check_choice(self.feature, _FEATURES, "feature") == "log_odds" else "probability"

    def _prob_scores(self, p: np.ndarray, name: str) -> np.ndarray:
        from softmaxkit._calibration_inputs import check_choice, check_eps

        feature = check_choice(self.feature, _FEATURES, "feature")
        if self.eps is not None:
            e = check_eps(self.eps)
            p = np.clip(p, e, 1.0 - e)
        elif feature == "log_odds" and np.any((p <= 0.0) | (p >= 1.0)):
            i, j = (int(v) for v in np.unravel_index(int(np.argmax((p <= 0) | (p >= 1))), p.shape))
            raise ValueError(
                f"PlattScaling(feature='log_odds') needs probabilities strictly between 0 and 1, but {name} has "
                f"{p[i, j]!r} at position ({i}, {j}); pass eps= to clip them, or use feature='probability'"
            )
        q = p[:, 1:] if p.shape[1] == 2 else p
        return q if feature == "probability" else np.log(q) - np.log1p(-q)

    def _validate_state(self) -> None:
        super()._validate_state()
        from softmaxkit._calibration_inputs import check_choice

        check_choice(self.feature, _FEATURES, "feature")

    def _fit_groups(self, f, hits, w):
        max_iter = _check_positive_int(self.max_iter, "max_iter")
        tol = _check_nonneg(self.tol, "tol")
        # Platt's targets add 1 and 2 to summed weights, not row counts: weights normalised to sum to 1
        # pull every target, and so every probability, toward 1/2 (audit: test log-loss 0.32 -> 0.60,
        # as scikit-learn's "sigmoid" gives), where the scalings' priors warned about the same weights.
        _warn_if_light_weights(float(np.sum(w)), int(np.count_nonzero(w > 0)), type(self).__name__,
                               priors=_PLATT_PRIORS)
        if not np.all(w > 0):
            # rows of weight 0 count for nothing: out, so that their scores cannot overflow a product
            # with their zero weight into NaN (review R27: logits of 1e300 there moved the fit by 0.72)
            kept = w > 0
            f, hits, w = f[kept], hits[kept], w[kept]
        fits = [_platt_fit(f[:, g], hits[:, g], w, max_iter=max_iter, tol=tol) for g in range(f.shape[1])]
        self.coef_ = np.array([a for a, _ in fits], dtype=np.float64)
        self.intercept_ = np.array([b for _, b in fits], dtype=np.float64)
        self._warn_reversed(f, hits, w)

    def _warn_reversed(self, f: np.ndarray, hits: np.ndarray, w: np.ndarray) -> None:
        """One :class:`CalibrationWarning` naming the maps whose slope is significantly below 0
        (:func:`_reversed_maps`): such a map reverses the model's ranking of its class, which is a
        swapped column or class order, not miscalibration (audit CN: a weak model's log-odds of class
        0 given as class 1's fitted a = -0.87, and the ECE 0.360 -> 0.071, log-loss 1.087 -> 0.623
        read as a calibration gain)."""
        reversed_maps = _reversed_maps(f, hits, w, self.coef_, self.intercept_)
        if not reversed_maps:
            return
        names = getattr(self, "class_names_", None)
        n_classes = 2 if f.shape[1] == 1 else f.shape[1]

        def named(k: int) -> str:
            return f"class {names[k]!r}" if names is not None and len(names) == n_classes else f"class {k}"

        if f.shape[1] == 1:  # binary: one sigmoid, on class 1's score
            what = (f"the fitted slope is {self.coef_[0]:.4g}, below 0: the scores rank the classes the other way "
                    f"(rows scored higher for {named(1)} hold it less often)")
            swap = (f"a swapped class order: the two columns in the other order, or a single score column that scores "
                    f"{named(0)}, not {named(1)}")
        else:
            many = len(reversed_maps) > 1
            slopes = name_list([f"{named(k)} ({self.coef_[k]:.4g})" for k in reversed_maps], noun="classes")
            what = (f"the fitted slope{'s' * many} of {slopes} {'are' if many else 'is'} below 0: the scores rank "
                    f"{'those classes' if many else 'that class'} the other way (rows scored higher for a class hold "
                    "it less often)")
            swap = "a swapped column or class order: a column holding another class's scores than its place or name says"
        warnings.warn(
            f"{type(self).__name__}: {what}, and the map reverses the model's ranking to fit them. That is usually "
            f"{swap}; fix the input, not the calibrator. A calibration gain this map shows is the swap undone, not "
            "the model calibrated",
            CalibrationWarning,
            stacklevel=_caller_stacklevel(),
        )

    def _group_probs(self, f):
        from softmaxkit.functional import sigmoid

        return np.asarray(sigmoid(self._sigmoid_args(f)), dtype=np.float64)

    def _sigmoid_args(self, f: np.ndarray) -> np.ndarray:
        """``u = a f + b`` per class: ``q = sigmoid(u)``."""
        if f.shape[1] != self.coef_.size:
            raise ValueError(f"the calibrator holds {self.coef_.size} sigmoids but got {f.shape[1]} score columns")
        return f * self.coef_ + self.intercept_

    def _binary_probs(self, f):
        # p_0 = sigmoid(-u), not 1 - sigmoid(u): the subtraction rounds a p_0 below 1e-16 to 0, whose
        # log (predict --logits-out) is -inf where the exact value is, say, 1e-24.
        from softmaxkit.functional import sigmoid

        u = self._sigmoid_args(f)
        return np.asarray(sigmoid(np.concatenate([-u, u], axis=1)), dtype=np.float64)

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated logits ``log p`` (N, C); with 2 classes ``[-softplus(u), -softplus(-u)]``,
        finite for every finite margin."""
        f = self._fitted_scores(logits)
        if f.shape[1] != 1:
            return super().transform(logits)
        u = self._sigmoid_args(f)
        pair = np.concatenate([u, -u], axis=1)  # log sigmoid(-u) = -softplus(u)
        return -(np.maximum(pair, 0.0) + np.log1p(np.exp(-np.abs(pair))))


#: Family-wise level of the test that a Platt slope is below 0 (:func:`_reversed_maps`), shared by the
#: maps (Bonferroni): a model no better than chance has slopes near 0, half of them negative by chance.
_REVERSED_LEVEL = 1e-3


def _reversed_maps(f: np.ndarray, hits: np.ndarray, w: np.ndarray, coef: np.ndarray,
                   intercept: np.ndarray) -> list[int]:
    """The maps (columns of the scores ``f``; ``hits`` (N, G) whether each row is the map's class) whose
    fitted slope is below 0 beyond chance.

    A map's slope ``a`` counts when its Wald statistic ``a / se(a)`` is below the one-sided
    quantile of :data:`_REVERSED_LEVEL` shared by the maps (-3.09 for one map, -4.75 for 1000).
    ``se`` is the larger of the model's, from the inverse Hessian ``H`` of the summed log-loss,
    and the sandwich ``H^-1 B H^-1`` (``B`` the summed outer products of the rows' weighted
    gradients), which holds for weights that are not repetitions: balanced or importance
    weights (scaled to mean 1, as the Notes ask) made the model's ``se`` too small, and the
    warning fired on 15-26% of fits of pure-noise scores (review R27), against 0-2 in 300 now.
    """
    from statistics import NormalDist

    from softmaxkit.functional import sigmoid

    bound = NormalDist().inv_cdf(_REVERSED_LEVEL / f.shape[1])
    found = []
    for g in np.flatnonzero(coef < 0):
        s = np.asarray(sigmoid(coef[g] * f[:, g] + intercept[g]), dtype=np.float64)
        x = np.column_stack([f[:, g], np.ones(len(f))])
        h = x.T @ (x * (w * s * (1.0 - s))[:, None])
        if np.linalg.det(h) <= 0:  # a constant score leaves the slope undetermined: no evidence either way
            continue
        h_inv = np.linalg.inv(h)
        residual = w * (s - hits[:, g])
        b = x.T @ (x * (residual * residual)[:, None])
        variance = max(float(h_inv[0, 0]), float((h_inv @ b @ h_inv)[0, 0]))
        if variance > 0 and coef[g] / math.sqrt(variance) < bound:
            found.append(int(g))
    return found


def _platt_fit(f: np.ndarray, hit: np.ndarray, w: np.ndarray, *, max_iter: int, tol: float) -> tuple[float, float]:
    """``(a, b)`` minimising ``sum_i w_i [softplus(u_i) - t_i u_i]``, ``u = a f + b``, Platt's targets ``t``."""
    from softmaxkit.functional import sigmoid

    n_pos = float(np.dot(w, hit))
    n_neg = float(np.sum(w)) - n_pos
    t = np.where(hit > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    total = float(np.sum(w))
    ws = w / total  # mean scale: the tolerance means the same at any N

    def loss(a: float, b: float) -> float:
        u = a * f + b
        # softplus(u) = max(u, 0) + log1p(exp(-|u|)), exact for any u
        return float(np.dot(ws, np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u))) - t * u))

    a, b = 0.0, math.log((n_pos + 1.0) / (n_neg + 1.0))
    current = loss(a, b)
    for _ in range(max_iter):
        s = np.asarray(sigmoid(a * f + b), dtype=np.float64)
        r = ws * (s - t)
        g = np.array([np.dot(r, f), np.sum(r)])
        v = ws * s * (1.0 - s)
        h = np.array([[np.dot(v, f * f), np.dot(v, f)], [np.dot(v, f), np.sum(v)]])
        h += np.eye(2) * 1e-12 * max(np.trace(h), 1e-300)  # a constant score leaves a undetermined
        step = np.linalg.solve(h, g)
        decrement = float(g @ step)
        if not decrement > tol:  # also stops on NaN
            break
        lr = 1.0
        while lr > 1e-10:
            na, nb = a - lr * step[0], b - lr * step[1]
            new = loss(na, nb)
            if new <= current - 1e-4 * lr * decrement:
                break
            lr *= 0.5
        else:
            break
        a, b, current = na, nb, new
    return a, b
