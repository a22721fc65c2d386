"""The confidence interval of a mean per-row loss (Brier score, log-loss), and when to withhold it.

:func:`softmaxkit.metrics.loss_interval` validates its inputs and computes the per-row losses; this
module turns them into an interval. It works from three running moments (count, mean, sum of
squared deviations) and the per-class row counts, so a caller that reads its scores a block of rows
at a time (the command line's ``summarize``) can add the blocks up with :class:`RowMoments` and never
hold every row's loss. NumPy only; SciPy (the Student-t quantile) is imported inside
:func:`log_t_interval`, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORES = ("log_loss", "brier")

#: Rows the rarest class of a two-class problem needs before an interval is given (see
#: :func:`softmaxkit.metrics.loss_interval`, Notes, for the coverage measured with and without it).
MIN_CLASS_ROWS = 5


@dataclass(frozen=True)
class LossInterval:
    """A mean per-row loss with its confidence interval, or the reason there is none.

    Attributes
    ----------
    score : {"log_loss", "brier"}
    value : float
        The mean per-row loss: what :func:`softmaxkit.metrics.log_loss` or
        :func:`softmaxkit.metrics.brier_score` returns for the same rows.
    low, high : float
        The interval at ``level``; NaN when ``withheld``. ``inf`` and ``inf``
        when a row's log-loss is infinite.
    level : float
    n : int
        Rows scored.
    withheld : str or None
        None when the interval is given, else why not, as a sentence that can
        be printed as it is (``"no interval: 3 rows of class 'malignant'; at
        least 5 needed"``). Its first clause, up to the first ``;``, names the
        cause on its own (the command line's table cells show it).
    """

    score: str
    value: float
    low: float
    high: float
    level: float
    n: int
    withheld: str | None = None

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class RowMoments:
    """Count, mean and sum of squared deviations of per-row losses, mergeable across row blocks.

    ``n_inf`` counts rows whose loss is ``+inf`` (a true class with probability 0); ``mean`` and
    ``m2`` are over the other rows. ``a + b`` merges two blocks exactly as if their rows were one
    array (Chan, Golub & LeVeque 1979), which a running sum of squares minus the squared sum would
    not: it cancels catastrophically when the losses sit far from 0 with a small spread.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    n_inf: int = 0

    @classmethod
    def of(cls, rows: np.ndarray) -> RowMoments:
        """Moments of one block of per-row losses (float64 (N,), no NaN)."""
        finite = rows[np.isfinite(rows)]
        n_inf = int(rows.size - finite.size)
        if finite.size == 0:
            return cls(0, 0.0, 0.0, n_inf)
        mean = float(np.mean(finite))
        return cls(int(finite.size), mean, float(np.sum((finite - mean) ** 2)), n_inf)

    def __add__(self, other: RowMoments) -> RowMoments:
        n = self.n + other.n
        if n == 0:
            return RowMoments(0, 0.0, 0.0, self.n_inf + other.n_inf)
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return RowMoments(n, mean, m2, self.n_inf + other.n_inf)


#: How every ``withheld`` reason begins; callers that print their own head (the CLI's "no CI: ")
#: take it off with ``str.removeprefix``.
WITHHELD_HEAD = "no interval: "


def check_level(level: Any, *, name: str = "level", optional: bool = False) -> float | None:
    """A confidence level in (0, 1) as a float; None passes through when ``optional``."""
    if optional and level is None:
        return None
    if not isinstance(level, numbers.Real) or isinstance(level, bool) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"{name} must be a confidence level in (0, 1){' or None' if optional else ''}, got {level!r}")
    return float(level)


def check_min_class_rows(min_class_rows: Any) -> int:
    if not isinstance(min_class_rows, numbers.Integral) or isinstance(min_class_rows, bool) or min_class_rows < 0:
        raise ValueError(f"min_class_rows must be an int >= 0 (0 turns the rule off), got {min_class_rows!r}")
    return int(min_class_rows)


def check_class_names(class_names: Any, n_classes: int) -> list[str] | None:
    if class_names is None:
        return None
    # any iterable of names (a list, an array, a pandas Index) but one string, whose letters are not names
    if isinstance(class_names, str | bytes) or not isinstance(class_names, Iterable):
        raise TypeError(f"class_names must be a sequence of {n_classes} names, got {type(class_names).__name__}")
    names = [str(name) for name in class_names]
    if len(names) != n_classes:
        raise ValueError(f"class_names must name the {n_classes} classes (columns), got {len(names)} names")
    return names


def log_t_interval(mean: float, sd: float, n: int, level: float) -> tuple[float, float]:
    """``[m exp(-t se / m), m exp(t se / m)]``, ``se = sd / sqrt(n)``, ``t`` the Student-t quantile with
    ``n - 1`` degrees of freedom: the t interval of ``log(mean)`` by the delta method
    (``se(log m) = se / m``), mapped back. Needs ``mean > 0``, ``sd > 0`` and ``n >= 2``."""
    # lazy: see the module docstring; scipy.special, not scipy.stats (the same quantile; importing
    # scipy.stats added about 50 MB to the CLI's peak memory, review audit R10)
    from scipy.special import stdtrit

    q = float(stdtrit(n - 1, 0.5 + level / 2.0))
    half = q * sd / math.sqrt(n) / mean
    return mean * math.exp(-half), mean * math.exp(half)


#: Names a sentence lists before it counts the rest (:func:`name_list`): at 1000 classes the lists ran to
#: 1000 class numbers, 6 KB, printed twice (audit BR).
LISTED_NAMES = 10


def name_list(names: Iterable[Any], *, limit: int = LISTED_NAMES, sep: str = ", ", noun: str = "") -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``; past ``limit`` names, the first ``limit`` and a count:
    ``"0, 1, ..., 9 and 990 more"`` (``noun``: ``"... and 990 more classes"``). The names as given
    (callers quote them, e.g. with :func:`repr`). Clauses joined by another ``sep`` (``"; "``) take no
    ``and`` between them, only before the count (``"...; and 990 more classes"``). Printed text only: a
    ``--json`` list or an attribute keeps every name."""
    names = [str(name) for name in names]
    last = " and " if sep == ", " else f"{sep}and "
    if len(names) > limit:
        return f"{sep.join(names[:limit])}{last}{len(names) - limit} more" + (f" {noun}" if noun else "")
    if len(names) <= 1 or sep != ", ":
        return sep.join(names)
    return f"{sep.join(names[:-1])}{last}{names[-1]}"


def _class_label(k: int, names: list[str] | None) -> str:
    return f"class {names[k]!r}" if names is not None else f"class {k}"


def _rows(count: int) -> str:
    return "no row" if count == 0 else ("1 row" if count == 1 else f"{count} rows")


def withheld_reason(class_counts: np.ndarray, *, min_class_rows: int, class_names: list[str] | None,
                    absent_caveat: bool = True) -> str | None:
    """Why the interval is withheld for these per-class row counts, or None.

    Two classes: each needs ``min_class_rows`` rows. More classes: each needs one row (a class of
    1-4 rows does not withhold; see :func:`softmaxkit.metrics.loss_interval`, Notes, for why).
    ``min_class_rows=0`` turns the rule off. ``absent_caveat``: say, of a class with no row, that the
    score understates the loss (true of a mean loss, not of a change between two).
    """
    if min_class_rows == 0:
        return None
    counts = np.asarray(class_counts, dtype=np.int64)
    need = min_class_rows if counts.size == 2 else 1
    short = np.flatnonzero(counts < need)
    if short.size == 0:
        return None
    k = int(short[np.argmin(counts[short])])  # the rarest short class speaks for them all
    others = f" (and {short.size - 1} more classes short of it)" if short.size > 1 else ""
    text = f"{WITHHELD_HEAD}{_rows(int(counts[k]))} of {_class_label(k, class_names)}{others}; at least {need} needed"
    if counts[k] == 0 and absent_caveat:
        text += ("; the score leaves that class's losses out, so it understates the loss of data that "
                 "holds the class")
    return text


def interval_from_moments(
    moments: RowMoments,
    class_counts: np.ndarray,
    *,
    score: str,
    level: float,
    min_class_rows: int = MIN_CLASS_ROWS,
    class_names: list[str] | None = None,
) -> LossInterval:
    """The :class:`LossInterval` of losses summarised by ``moments`` whose labels counted
    ``class_counts`` (one per class, zeros included), after the checks of
    :func:`softmaxkit.metrics.loss_interval` (which see for the rules)."""
    n = moments.n + moments.n_inf
    if n == 0:
        raise ValueError("a loss interval needs at least one row")
    nan = float("nan")
    if moments.n_inf:
        # A row that happened with probability 0 under the model: the population loss is infinite
        # (the event has positive probability), so [inf, inf] is exact, not a failure to estimate.
        return LossInterval(score, math.inf, math.inf, math.inf, level, n)
    value = moments.mean
    reason = withheld_reason(class_counts, min_class_rows=min_class_rows, class_names=class_names)
    if reason is None and n < 2:
        reason = f"{WITHHELD_HEAD}1 row; at least 2 needed"
    if reason is None and not (moments.m2 > 0 and value > 0):
        # Every row scored alike (e.g. a uniform forecast, or every row certain and right): the
        # sample shows no spread, and [m, m] would claim a certainty that n rows cannot give.
        reason = (f"{WITHHELD_HEAD}every row has the same loss ({value:.6g}); the rows show no spread "
                  "to build one from")
    if reason is not None:
        return LossInterval(score, value, nan, nan, level, n, reason)
    low, high = log_t_interval(value, math.sqrt(moments.m2 / (n - 1)), n, level)
    return LossInterval(score, value, low, high, level, n)
