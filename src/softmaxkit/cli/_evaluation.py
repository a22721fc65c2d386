"""Score predictions and present the scores: the part demo, fit, calibrate and evaluate share.

A :class:`Scored` is one set of predictions on one labelled set (say "before"
and "after temperature scaling") with its metrics summary and reliability
diagram. The functions below turn a list of them into a printed table, a
report section and a plain-language verdict, so every command tells the story
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from softmaxkit._loss_interval import MIN_CLASS_ROWS, WITHHELD_HEAD, name_list, withheld_reason
from softmaxkit.cli import _adapters
from softmaxkit.cli._common import Printer, brier_legend, text_table


@dataclass(frozen=True)
class Scored:
    """Predictions of one model on one labelled set, scored.

    Attributes
    ----------
    key : str
        Machine name (``"uncalibrated"``); the key in metrics.json and the PNG's file stem.
    name : str
        Human name for tables ("Before", "After temperature scaling (T=1.52)").
    summary : dict
        :func:`softmaxkit.cli._adapters.summarize` output.
    png : bytes or None
        Reliability diagram.
    row_loss : ndarray, callable or None
        Each row's log-loss, ``-log p(true class)`` (``inf`` for a probability 0), or a function that
        computes them (:func:`score` passes one, so a command that never compares pays no second pass
        over the scores): what :func:`paired_loss_change` resamples. Not part of metrics.json.
    row_hit : ndarray of bool, callable or None
        Whether each row's predicted class (its largest probability) is its true class, or a function that
        computes them: what :func:`paired_accuracy_change` pairs. :func:`score`'s come from the same pass
        over the scores as its ``row_loss``. Not part of metrics.json.
    row_tie : ndarray of int (or bool), callable or None
        For each row whose true class shares its largest probability with other classes, how many classes share
        it (the prediction is then the first of them, so whether it is right depends on the column order), else
        0; likewise. A row whose largest probability is shared by wrong classes only is wrong whichever comes
        first: not tied. A bool array says tied or not, each tie read as one of two classes.
    """

    key: str
    name: str
    summary: dict
    png: bytes | None
    row_loss: np.ndarray | Callable[[], np.ndarray] | None = field(default=None, compare=False, repr=False)
    row_hit: np.ndarray | Callable[[], np.ndarray] | None = field(default=None, compare=False, repr=False)
    row_tie: np.ndarray | Callable[[], np.ndarray] | None = field(default=None, compare=False, repr=False)

    def _computed(self, name: str) -> np.ndarray | None:
        """The per-row field ``name``, computed (once) on first use where it is a function."""
        value = getattr(self, name)
        if callable(value):
            value = value()
            object.__setattr__(self, name, value)
        return value

    def row_losses(self) -> np.ndarray | None:
        """The per-row log-losses."""
        return self._computed("row_loss")

    def row_hits(self) -> np.ndarray | None:
        """Whether each row's predicted class is right."""
        return self._computed("row_hit")

    def row_ties(self) -> np.ndarray | None:
        """How many classes tie with each row's true class at its largest probability (0: no tie)."""
        ties = self._computed("row_tie")
        return None if ties is None else np.where(ties, 2, 0) if np.asarray(ties).dtype == bool else ties


def score(
    y: np.ndarray,
    *,
    key: str,
    name: str,
    logits: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    plot: bool = True,
    what: str = "",
    ci: bool = True,
    transform: Any = None,
    classes: Any = None,
) -> Scored:
    """Score logits (preferred: exact log-loss) or probabilities against class indices ``y``.

    ``ci=False`` skips the ECE's bootstrap interval and noise floor (a small
    command should not pay for resampling nobody asked for). ``transform``
    maps blocks of the scores to logits first (a calibrator); the scores are
    read block by block (:func:`softmaxkit.cli._adapters.summarize`).
    ``classes``: the class names in column order, where the command knows
    them: metrics.json's ``class_counts`` and ``class_count_test`` then give
    each class's ``name`` beside its index ``class``, as the text names it.
    """
    import functools

    summary, png = _adapters.summarize(y, probs=probs, logits=logits, transform=transform,
                                       plot_title=f"{name}{what}" if plot else None, ci=ci, classes=classes)
    summary = _with_brier_scale(summary, n_classes=(logits if logits is not None else probs).shape[1])
    # one pass for both, on the first use of either: a comparison needs the losses and the hits together
    outcomes = functools.cache(functools.partial(_row_outcomes, y, logits=logits, probs=probs, transform=transform))
    return Scored(key=key, name=name, summary=summary, png=png,
                  row_loss=lambda: outcomes()[0], row_hit=lambda: outcomes()[1], row_tie=lambda: outcomes()[2])


def _with_brier_scale(summary: dict, *, n_classes: int) -> dict:
    """``summary`` with ``"brier_scale"`` after ``"brier"``: the scale the JSON's Brier score is on, which
    the text says under its table (:func:`softmaxkit.cli._common.brier_legend`) and metrics.json did not
    (audit CN: a script comparing it with scikit-learn's ``brier_score_loss`` is off by 2x)."""
    scale = "sum over classes, 0 to 2"
    if n_classes == 2:
        scale += "; scikit-learn's binary brier_score_loss is half of it"
    scaled: dict = {}
    for key, value in summary.items():
        scaled[key] = value
        if key == "brier":
            scaled["brier_scale"] = scale
    return scaled


def _row_losses(y: np.ndarray, *, logits: Any, probs: Any, transform: Any) -> np.ndarray:
    """``-log p(true class)`` of every row (:func:`_row_outcomes`)."""
    return _row_outcomes(y, logits=logits, probs=probs, transform=transform)[0]


def _row_outcomes(
    y: np.ndarray, *, logits: Any, probs: Any, transform: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``-log p(true class)`` of every row, and whether its predicted class is its true class, read block by
    block as :func:`_adapters.summarize` reads them: the loss exact from logits (a ``-inf`` logit on the truth
    gives ``inf``), unclipped from probabilities; the prediction the largest log-probability (or probability),
    the first of equals, as the summary's accuracy takes it (a tie that only rounding makes or breaks aside);
    and how many classes tie with the true class at that largest value (0 where it ties none), the rows whose
    outcome the column order decides (review R24: a row tied between two wrong classes is wrong either way, and
    was left out of the accuracy test as a tie).
    The argmax reads the block the loss already holds: no second pass, and one more array of ``n`` ints."""
    from softmaxkit import log_softmax
    from softmaxkit.data import iter_row_blocks

    y = np.asarray(y).astype(np.int64)
    scores = logits if logits is not None else probs
    out = np.empty(len(y))
    hit = np.empty(len(y), dtype=bool)
    tied = np.empty(len(y), dtype=np.int32)
    for start, block in iter_row_blocks(scores, _adapters.score_block_rows(_adapters._n_columns(scores))):
        rows = slice(start, start + len(block))
        block = np.array(block, dtype=np.float64)
        as_logits = logits is not None
        if transform is not None:
            block, as_logits = np.asarray(transform(block), dtype=np.float64), True
        if block.ndim == 1:  # one column: the positive class's probability (or log-odds)
            block = np.column_stack([np.zeros_like(block), block]) if as_logits else np.column_stack([1 - block, block])
        picked = np.arange(len(block)), y[rows]
        if as_logits:
            block = log_softmax(block, axis=-1)
            out[rows] = -block[picked]
        else:
            with np.errstate(divide="ignore"):
                out[rows] = -np.log(block[picked])
        hit[rows] = np.argmax(block, axis=1) == y[rows]
        at_top = block == block.max(axis=1, keepdims=True)
        tie_size = np.count_nonzero(at_top, axis=1)
        tied[rows] = np.where((tie_size > 1) & at_top[picked], tie_size, 0)
    return out, hit, tied


#: Resamples of :func:`paired_loss_change`, and the seed that makes its interval the same on every run.
LOSS_RESAMPLES = 2000
LOSS_SEED = 0
#: Up to this many rows the bootstrap resamples the rows themselves; above it, the counts of lost rows
#: exactly and the finite rows' mean by its normal limit (the same interval at a fixed cost).
_EXACT_BOOTSTRAP_ROWS = 10_000
#: Fewer paired rows than this read "too few rows to tell". On a handful of rows no bootstrap interval of a
#: mean holds its level (on 1 row it is a point; audit: one held-out row, ci95 [1.57e-06, 1.57e-06], read
#: "worse"). Simulated log-loss changes (400 data sets each; 3 or 10 classes, tempered by 0.5 or 2, and a
#: null with the two swapped per row): the plain percentile interval held the true mean in 0.73-0.94 of
#: data sets at 10-20 rows and read an exact null better or worse in 6-12%; the symmetric bootstrap-t now
#: used holds it in 0.91-0.96 from 10 rows except for skewed changes (a sharpened 3-class model on
#: Dirichlet(0.3) probabilities: 0.82-0.86 at 10-20 rows, 0.92 at 30, 0.95 at 50).
MIN_PAIRED_ROWS = 30
#: The reading of a change measured on fewer than :data:`MIN_PAIRED_ROWS` rows.
TOO_FEW = "too few rows to tell"
#: The reading of a change that a few rows carry (:func:`_carried_by_few`), 0 within the range of the per-row
#: changes: no interval of its mean is measured.
NOT_MEASURABLE = "not measurable"
#: ``carried_by`` of :func:`paired_loss_change`: the fewest rows that hold this share of the total ``|change|``.
_CARRIED_SHARE = 0.9
#: Each resample's SD is floored at this share of the rows' SD in :func:`_symmetric_t_interval`. Not the
#: whole SD: that caps every ``|t*|`` at the unstudentized ``|mean* - mean| / se`` and loses what
#: studentizing buys (sharpened 3-class model at 30 rows: coverage 0.915 -> 0.780, an exact null read
#: better/worse in 10% of data sets for 1.5%). Not half either: an exact null where 97% of rows worsen a
#: little and 3% improve a lot (temperature softening an accurate, over-confident model; n = 100) read
#: worse in 12.9% of data sets at 0.5, 5.3% without a floor, 5.8% at 0.1 (review R7; 0.05: 5.8%, 0.25:
#: 6.0%). At a tenth, a resample that misses the one row holding the spread still no longer counts as
#: hundreds of standard errors away (audit AJ: 149 rows at -8 and one at +4.77 read "not measurable", or
#: "within the noise" with [-8.02, +1.90]; now better).
_SD_FLOOR = 0.1


def paired_loss_change(before: Scored, after: Scored, *, in_sample: bool = False, zero_classes: list | None = None,
                       each_class: bool = True, resamples: int = LOSS_RESAMPLES,
                       seed: int = LOSS_SEED) -> dict | None:
    """The mean per-row log-loss change (after - before) on the same rows, with a paired bootstrap 95% CI.

    Paired: each resample draws rows and takes both losses of the drawn rows, so the row-to-row spread
    that before and after share cancels (it is most of the spread). With every change finite the interval
    is the symmetric bootstrap-t (:func:`_symmetric_t_interval`; measured coverage at
    :data:`MIN_PAIRED_ROWS`). A row lost entirely (``inf``) makes a resample's mean infinite; a row lost
    both before and after is no change; with such rows the ends are the percentile order statistics of the
    resamples' means (no interpolation across an infinity), and a resample with rows lost on both sides
    has no mean and counts against the interval (as ``-inf`` for its lower end, ``+inf`` for its upper).
    Above :data:`_EXACT_BOOTSTRAP_ROWS` rows the means come from :func:`_count_bootstrap` (the normal limit,
    where studentizing changes nothing). Rows lost on one side only make the reading that side's: "worse"
    when after loses a row before kept. Fixed ``seed``: the same rows give the same interval. None when
    either side has no per-row losses.

    The ``reading`` is what a script may act on, so it says only what the rows support:

    - ``"better"``, ``"worse"``, ``"within the noise"``: measured on rows the map was not fitted on.
    - ``in_sample`` (the rows are the map's fitting rows): ``"lower"`` or ``"higher"`` instead of better or
      worse, since a gain there is no evidence (audit: matrix scaling 1.0385 -> 0.8162 in-sample, 1.0279 ->
      1.2507 on fresh rows, read "better" in metrics.json).
    - ``"not measurable"`` (:data:`NOT_MEASURABLE`): so few rows carry the change (``carried_by``, the
      fewest rows holding 90% of the total ``|change|``) that over 5% of resamples draw none of them
      (:func:`_carried_by_few`), or the bootstrap-t interval would reach beyond both ends of the range of
      the per-row changes, where every resampled mean lies; and 0 is inside that range. No interval of its
      mean is measured (audit: 2 of 36 rows, "[-2.6095, +2.5931], contains 0" for changes in [-0.354,
      +0.057]). ``ci95`` is then that range (the ends are always clipped to it), as is
      ``row_change_range``. (Every row moved one way: the range excludes 0 and reads better or worse, as
      every resampled mean does; ``row_change_range`` and ``carried_by`` are given then too, since
      ``ci95``, that range, is no bootstrap interval: review audit R1, 36 rows all better, 2 by -3.0,
      printed the range as a "paired bootstrap 95% CI".) Many rows carrying the change and one rare row
      against it is measured (audit AJ: 135 of 150 rows carry it, one row at +4.77 against 149 at -8 read
      "not measurable"; now better).
    - Fewer than :data:`MIN_PAIRED_ROWS` rows: ``"too few rows to tell"`` (:data:`TOO_FEW`), unless a row
      is lost on one side only (a probability 0 on a true class is evidence however few the rows).
    - A class too rare on these rows for a log-loss interval (:func:`_rare_class_reason`: two classes, fewer
      than :data:`~softmaxkit._loss_interval.MIN_CLASS_ROWS` rows of one; more classes, no row of one):
      ``"not measurable"`` too, with ``withheld`` saying why and ``ci95`` NaN, unless a row is lost on one
      side only. The change is then mostly that class's few rows (audit BK-1: 1 positive of 30 read
      "worse" for a map that helped on 3,500 fresh rows). ``each_class=False`` drops this rule, for a caller
      that weighs a class without rows itself (``calibrate``, for temperature scaling at more than two
      classes, whose one parameter cannot single a class out: audit BR, 1000 long-tailed classes, never read).
    - ``zero_classes`` (``calibrator_params``' list, not empty): ``"unsafe"`` unless measured worse. The map
      gives probability 0 to those classes for some scores, so a new row of one of them scoring there has
      infinite log-loss however few such rows the measured set happened to hold (audit: isotonic, 1.1861 ->
      0.5372 on 30 held-out rows, read "better"; infinite on 4000 fresh rows).

    The dict also says ``in_sample`` and, when given, ``zero_classes``.
    """
    b, a = before.row_losses(), after.row_losses()
    if b is None or a is None or len(b) != len(a):
        return None
    b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        d = a - b
    d[np.isinf(a) & np.isinf(b) & (a == b)] = 0.0  # lost on both sides: no change on that row
    n = len(d)
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore"):
        point = float(np.mean(d))  # NaN when rows were lost on both sides (written as null in metrics.json)
    whole_range = False  # percentile ends are resampled means: they never leave the range of d
    if n > _EXACT_BOOTSTRAP_ROWS:
        lo, hi = _percentile_ends(_count_bootstrap(d, resamples, rng))
    elif np.isfinite(d).all():
        lo, hi, whole_range = _symmetric_t_interval(d, *_row_bootstrap(d, resamples, rng))
    else:
        # An infinite row makes every standard error infinite: the percentile ends of the means still
        # say which way the lost rows point (their reading is set below, whatever the interval).
        lo, hi = _percentile_ends(_row_bootstrap(d, resamples, rng)[0])
    carried_by = _rows_carrying(d) if np.isfinite(d).all() else None
    if carried_by is not None and _carried_by_few(carried_by, n):
        # No bootstrap interval of a mean that a few rows carry: the range of the per-row changes instead,
        # which holds every resampled mean (read better or worse only when every row moved that way).
        lo, hi, whole_range = float(np.min(d)), float(np.max(d)), True
    reading = "better" if hi < 0 else "worse" if lo > 0 else "within the noise"
    if whole_range and reading == "within the noise":
        # A few rows carry the change, or the studentized interval held every mean the rows can have and more
        # (its resampled standard errors failed): 0 inside it is no measured "within the noise". (Past one
        # end only is the symmetric form on skewed changes, 30% of 30-row data sets of the sharpened 3-class
        # model of tests/test_interval_coverage.py: clipped, and read as usual.)
        reading = NOT_MEASURABLE
    lost_after, lost_before = bool(np.isposinf(d).any()), bool(np.isneginf(d).any())
    withheld = None
    if lost_after != lost_before:
        # A row given probability 0 on one side only shows that side's expected loss is infinite,
        # however few such rows a resample draws (audit: one such row of 500 read "within the noise").
        reading = "worse" if lost_after else "better"
        lost = {"rows_lost": int(np.isposinf(d).sum() if lost_after else np.isneginf(d).sum())}
    else:
        lost = {}
        if n < MIN_PAIRED_ROWS:
            reading = TOO_FEW
        elif each_class:
            withheld = _rare_class_reason(before.summary)
    if withheld is not None:
        # The rule that withholds each side's log-loss interval withholds the change's too: the change is
        # mostly the rare class's few rows, which a resample draws 0, 1 or 2 times (audit BK-1: 1 positive
        # of 30 held-out rows read "worse", [+0.0066, +0.0443], for a map that took 3,500 fresh rows from
        # 0.1438 to 0.0884; at 100 rows such intervals held the true change in 40-48% of data sets).
        reading, lo, hi, whole_range = NOT_MEASURABLE, float("nan"), float("nan"), False
    if in_sample:
        reading = _IN_SAMPLE_READING.get(reading, reading)
    if zero_classes and reading != "worse":
        reading = "unsafe"
    out = {"after_minus_before": point, "ci95": [lo, hi], "reading": reading, "in_sample": bool(in_sample),
           "n": int(n), "method": _METHOD, "resamples": int(resamples),
           "seed": int(seed), **lost, **({"withheld": withheld} if withheld else {})}
    if whole_range:
        out["row_change_range"] = [float(np.min(d)), float(np.max(d))]
        out["carried_by"] = carried_by
    if zero_classes:
        out["zero_classes"] = list(zero_classes)
    return out


#: What a better or worse log-loss is called when measured on the rows the map was fitted on.
_IN_SAMPLE_READING = {"better": "lower", "worse": "higher"}


def _rare_class_reason(summary: dict) -> str | None:
    """Why no interval of a log-loss change is measured on the rows ``summary`` scored, or None: a class too
    rare by the rule of :func:`softmaxkit._loss_interval.withheld_reason` (two classes: each needs
    :data:`MIN_CLASS_ROWS` rows; more: each needs one), by the rows' class counts (``class_counts``),
    worded without its ``"no interval: "`` head. None for a summary without class counts.

    The change on new rows then turns on how the map moves that class's rows, which these rows hardly
    hold: 1 positive of 30 held-out rows read "worse" for a map that took 3,500 fresh rows from 0.1438 to
    0.0884 (audit BK-1). Letting 5 misranked rows of any class lift the rule (review R12, whose 4
    positives of 400 with 24 misranked read a correct "better") brought the wrong calls back: a model
    over-predicting a 1% class, its misranked rows mostly of the common class, read "worse: keep the raw
    model" in 8 of 12 calls for a temperature map that helped on 100,000 fresh rows (review R14).
    """
    counts = summary.get("class_counts")
    if not counts:
        return None
    reason = withheld_reason([c["observed"] for c in counts], min_class_rows=MIN_CLASS_ROWS,
                             class_names=[c["name"] for c in counts], absent_caveat=False)
    if reason is None:
        return None
    return (f"{reason.removeprefix(WITHHELD_HEAD)}: the change on new rows turns on how the map moves that "
            "class's rows, too few here to measure it")


#: ``method`` of :func:`paired_loss_change`'s dict.
_METHOD = "paired bootstrap of the per-row log-loss change (symmetric bootstrap-t)"


def _row_bootstrap(d: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard deviations (``ddof=1``) of ``d`` over ``resamples`` resamples of its rows."""
    n = len(d)
    chunk = max(1, 2_000_000 // n)
    means, sds = [], []
    with np.errstate(invalid="ignore"):
        for done in range(0, resamples, chunk):
            drawn = d[rng.integers(0, n, size=(min(chunk, resamples - done), n))]
            means.append(drawn.mean(axis=1))
            sds.append(drawn.std(axis=1, ddof=1) if n > 1 else np.zeros(len(drawn)))
    return np.concatenate(means), np.concatenate(sds)


def _percentile_ends(means: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% order statistics of bootstrap ``means``; a NaN mean (rows lost on both sides)
    counts against the interval: as ``-inf`` for its lower end, ``+inf`` for its upper."""
    lo = float(np.quantile(np.where(np.isnan(means), -np.inf, means), 0.025, method="lower"))
    hi = float(np.quantile(np.where(np.isnan(means), np.inf, means), 0.975, method="higher"))
    return lo, hi


def _symmetric_t_interval(d: np.ndarray, means: np.ndarray, sds: np.ndarray) -> tuple[float, float, bool]:
    """The symmetric bootstrap-t 95% interval of the mean of finite ``d`` (Hall 1988), from the resamples'
    ``means`` and ``sds``: ``mean(d) +- q se`` with ``se = sd(d) / sqrt(n)`` and ``q`` the 95% quantile of
    ``|mean* - mean(d)| / se*`` over the resamples, with its ends clipped to ``[min(d), max(d)]``; and
    whether both were (the interval held that whole range).

    Studentizing carries the spread of the skewed, heavy-tailed per-row changes into the width, which the
    percentile interval missed on few rows (coverage 0.73-0.91 at 10-20 rows); the symmetric form kept an
    exact null's false better/worse readings near 2% where the two-sided (equal-tailed) bootstrap-t read
    8-12%. Each resample's ``sd*`` is floored at :data:`_SD_FLOOR` of ``sd(d)``, so a resample that missed
    the rare rows holding the spread is not hundreds of standard errors away (audit AJ: 149 rows at -8 and
    one at +4.77; 37% of resamples miss that row). A resample whose rows are all equal (``se* = 0``, only
    where every row is: the floor is 0 then) counts as infinitely far unless its mean is ``mean(d)``.

    Every resampled mean lies in ``[min(d), max(d)]``, so an end beyond it is no bootstrap evidence: ``q``
    has blown up on resamples that miss the few rows carrying the change, whose ``se*`` is near 0 (audit:
    2 of 36 rows held nearly all of it, ``q`` = 260 where the normal's is 1.96, and the interval
    [-2.61, +2.59] for changes in [-0.354, +0.057]). The ends are clipped there; an interval past both
    ends says nothing a mean of these rows could not, which the reading says. On ordinary changes it lies
    inside the range and is unchanged (past both ends in none of 200 data sets of 30, 50 or 200 rows of
    the coverage tests' designs; past one end, from symmetry over skewed changes, in up to 30% at 30 rows,
    where clipping that end changes neither the coverage of the true mean nor the reading).
    """
    n = len(d)
    centre = float(np.mean(d))
    sd = float(np.std(d, ddof=1)) if n > 1 else 0.0
    se = sd / np.sqrt(n)
    dev = np.abs(means - centre)
    # Floored at _SD_FLOOR of the rows' SD: a resample that missed the rare rows holding the spread has an SD
    # near 0 and a |t*| in the hundreds, which decided q when over 5% of resamples missed them (audit AJ).
    se_star = np.maximum(sds, _SD_FLOOR * sd) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se_star > 0, dev / np.where(se_star > 0, se_star, 1.0), np.where(dev > 0, np.inf, 0.0))
    q = float(np.quantile(t, 0.95, method="higher"))
    half = q * se if se > 0 else 0.0  # every row the same change: the interval is that change
    low, high = float(np.min(d)), float(np.max(d))
    lo, hi = centre - half, centre + half
    return max(lo, low), min(hi, high), bool(lo < low and hi > high)


def _carried_by_few(carried_by: int, n: int) -> bool:
    """Whether ``carried_by`` of ``n`` rows are too few for a bootstrap interval of the mean: a resample draws
    none of them with probability ``(1 - carried_by/n)^n`` (about ``exp(-carried_by)``), and above 5%, the
    share an interval may miss, the resamples cannot tell the mean (2 rows of 36: 13%; 3 of 36: 4.4%)."""
    return (1.0 - carried_by / n) ** n > 0.05


def _rows_carrying(d: np.ndarray) -> int:
    """The fewest rows of finite ``d`` whose ``|d|`` holds :data:`_CARRIED_SHARE` of ``sum |d|``."""
    size = np.sort(np.abs(d))[::-1]
    return int(np.searchsorted(np.cumsum(size), _CARRIED_SHARE * size.sum()) + 1)


def _count_bootstrap(d: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of ``d`` at a cost independent of its length: how many rows lost after (``+inf``)
    and before (``-inf``) a resample draws, exactly (multinomial counts), and the mean of the finite rows
    it draws by its normal limit (the rows are many here)."""
    n = len(d)
    pos, neg = np.isposinf(d), np.isneginf(d)
    finite = d[~(pos | neg)]
    counts = rng.multinomial(n, [pos.sum() / n, neg.sum() / n, len(finite) / n], size=resamples)
    m = counts[:, 2].astype(np.float64)
    if len(finite):
        mu, sd = float(finite.mean()), float(finite.std())
        sums = m * mu + np.sqrt(m) * sd * rng.standard_normal(resamples)
    else:
        sums = np.zeros(resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / n
    means = np.where(counts[:, 0] > 0, np.inf, means)
    means = np.where(counts[:, 1] > 0, np.where(counts[:, 0] > 0, np.nan, -np.inf), means)
    return means


#: The level of :func:`paired_accuracy_change`'s test: a p-value under it reads the accuracy change as measured.
ACCURACY_TEST_LEVEL = 0.05
#: ``test`` of :func:`paired_accuracy_change`'s dict.
_ACCURACY_TEST = "exact McNemar: two-sided binomial test of the rows turned wrong among the discordant rows, at 1/2"
#: What a better or worse accuracy is called when measured on the rows the map was fitted on.
_IN_SAMPLE_ACCURACY = {"better": "higher", "worse": "lower"}


def paired_accuracy_change(before: Scored, after: Scored, *, in_sample: bool = False) -> dict | None:
    """The accuracy before and after a change on the same rows, with the exact McNemar test of the difference.

    Only the discordant rows tell the two apart: ``turned_wrong`` (the predicted class right before and wrong
    after) and ``turned_right``. With no change in accuracy each such row is either with probability 1/2, so
    ``p_value`` is the two-sided binomial test of ``turned_wrong`` among them (:func:`scipy.stats.binomtest`;
    exact at any count, so no fewest rows; 1 without discordant rows). A map that is not one increasing function
    of every score of a row can change its predicted class: isotonic and Platt maps (one per class, then
    renormalised; at two classes they move the 0.5 threshold), vector and matrix scaling; temperature scaling
    never does (review R20: isotonic calibration took accuracy from 0.9766 to 0.9532 on held-out rows, and the
    verdict was silent).

    ``reading``: ``"worse"`` (it fell, p < :data:`ACCURACY_TEST_LEVEL`), ``"better"`` (it rose so), ``"within
    the noise"``, or ``"unchanged"`` (no row's predicted class turned right or wrong); on the map's fitting rows
    (``in_sample``) ``"lower"`` and ``"higher"`` in place of worse and better, as :func:`paired_loss_change`
    reads a change there. Also ``before``, ``after`` (the accuracies of these per-row predictions), ``n``,
    ``test`` and ``in_sample``. None when either side has no per-row predictions (``row_hit``) or they differ in
    length, or there are no rows. A row whose true class ties another for the largest probability on either side
    (``row_tie``) is right or wrong by which tied class comes first: such rows whose outcome changed are
    ``tied_changes``, left out of ``turned_wrong``, ``turned_right`` and the test (the accuracies count them, as
    the table does).

    The reading never goes against the accuracies it sits beside: where the test reads the untied rows one way
    and the accuracy moved the other way or not at all (the tied rows decide it), ``ties_decide`` is true and
    the reading is ``"within the noise"`` (review R24: 0.6497 -> 0.8280, 42 tied rows turned right and 14 untied
    rows wrong, read "worse" at p = 1.2e-4). Verdict, table mark and ``fit``'s advice all follow the reading.
    """
    b, a = before.row_hits(), after.row_hits()
    if b is None or a is None or len(b) != len(a) or len(b) == 0:
        return None
    b, a = np.asarray(b, dtype=bool), np.asarray(a, dtype=bool)
    # A row whose top probabilities tie (on either side) is right or wrong by which tied class comes first:
    # an isotonic map makes such ties by design, and 5 of 13 rows "turned wrong" were ties (review R22).
    # They are counted and left out of the test.
    ties = [x.row_ties() for x in (before, after)]
    if any(t is None for t in ties):
        ties = [np.zeros(len(b), dtype=np.int32)] * 2
    tied = (np.asarray(ties[0]) > 1) | (np.asarray(ties[1]) > 1)
    tied_changes = int(np.count_nonzero(tied & (b != a)))
    turned_wrong, turned_right = int(np.count_nonzero(b & ~a & ~tied)), int(np.count_nonzero(a & ~b & ~tied))
    discordant = turned_wrong + turned_right
    p = 1.0
    if discordant:
        from scipy.stats import binomtest  # imported by the fits already; not at all without a discordant row

        p = float(binomtest(turned_wrong, discordant, 0.5).pvalue)
    reading = ("unchanged" if not discordant and not tied_changes else "within the noise"
               if not discordant or p >= ACCURACY_TEST_LEVEL else "worse" if turned_wrong > turned_right else "better")
    # The accuracy's own direction, each tied row counted at its chance of being right, one in the classes it
    # ties (review R25: counted by the first tied class, swapping two columns turned "worse" into "no change").
    at_chance = [_hits_at_chance(hits, t) for hits, t in ((b, ties[0]), (a, ties[1]))]
    change_at_chance = float(np.sum(at_chance[1] - at_chance[0]))
    moved = 0 if abs(change_at_chance) < 1e-9 else int(np.sign(change_at_chance))
    ties_decide = reading in ("worse", "better") and moved != (-1 if reading == "worse" else 1)
    if ties_decide:
        reading = "within the noise"
    if in_sample:
        reading = _IN_SAMPLE_ACCURACY.get(reading, reading)
    return {"before": float(b.mean()), "after": float(a.mean()), "turned_wrong": turned_wrong,
            "turned_right": turned_right, "tied_changes": tied_changes, "n": int(len(b)), "p_value": p,
            "test": _ACCURACY_TEST,
            "reading": reading, "ties_decide": bool(ties_decide), "in_sample": bool(in_sample),
            "ties_at_chance": {"before": float(np.mean(at_chance[0])), "after": float(np.mean(at_chance[1]))}}


def _hits_at_chance(hits: np.ndarray, tie_sizes: np.ndarray) -> np.ndarray:
    """Each row's chance of being right: its hit, or one in the classes its true class ties with (``tie_sizes``
    of :meth:`Scored.row_ties`), which no column order decides."""
    sizes = np.asarray(tie_sizes)
    return np.where(sizes > 1, 1.0 / np.maximum(sizes, 1), hits.astype(np.float64))


def accuracy_fall(change: dict | None, *, params: dict | None, raw_kept: bool = False) -> str:
    """The verdict's sentence (leading " ") where the accuracy of :func:`paired_accuracy_change` fell, "" where it
    did not: the two accuracies, the rows whose predicted class turned wrong and right, and the exact McNemar
    ``p``; measured (p under :data:`ACCURACY_TEST_LEVEL`), what to do: keep the raw model's class predictions, or
    use temperature scaling (named unless it is the map itself, ``params["method"]``); ``raw_kept``, where the text
    already says to keep the raw model (a log-loss measured worse), only the latter. Within the noise, said. On the
    map's fitting rows said so, as the log-loss sentence says it: a fall measured there is one "even on the rows it
    was fitted on", which fresh rows are not expected to undo (the map had these rows' labels; review R20's
    breast-cancer fall was on held-out rows).

    Where the tied rows decide the accuracy against the untied rows' test (``ties_decide``), rise or fall, the
    sentence says the untied rows point the other way and that no change is measured (review R24: "Accuracy
    fell ...: 0 rows' predicted class turned wrong and 10 turned right (exact McNemar p = 0.002 ...), within the
    noise"). Directions read with the tied rows at their chance of being right (``ties_at_chance``); a fall
    measured where the first tied class hid it (the accuracies equal that way) is said with both (review R25:
    swapping two columns turned "worse" into no sentence)."""
    measured = bool(change) and change["reading"] in ("worse", "lower")
    if not change or (change["after"] >= change["before"] and not change.get("ties_decide") and not measured):
        return ""
    wrong, right, ties = change["turned_wrong"], change["turned_right"], change.get("tied_changes", 0)
    on = (" even on the rows it was fitted on" if measured else " on these rows") if change["in_sample"] else ""
    tie_rows = f"{ties} row{'s' * (ties != 1)} whose top probabilities tie"
    rows = f"{wrong} row's" if wrong == 1 else f"{wrong} rows'"
    counts = f"{rows} predicted class turned wrong and {right} turned right"
    b, a = f"{change['before']:.4f}", f"{change['after']:.4f}"
    chance = change.get("ties_at_chance") or {"before": change["before"], "after": change["after"]}
    cb, ca = f"{chance['before']:.4f}", f"{chance['after']:.4f}"
    # each tied row at its chance of being right (one in the classes it ties), which no column order decides
    at_chance = f"each of the {tie_rows} counted at its chance of being right, one in the classes it ties"
    if change.get("ties_decide"):
        moved, untied = ((f"stays at {cb}", "changed") if chance["after"] == chance["before"] else
                         (f"{'rises' if chance['after'] > chance['before'] else 'falls'} from {cb} to {ca}",
                          "point the other way"))
        return (f" With {at_chance}, accuracy {moved}{on} ({b} to {a} counted by the first tied class), but the "
                f"rows without a tie {untied}: {counts} (exact McNemar p = {_p_digits(change['p_value'])}). The "
                "tied rows decide the accuracy: no change in it is measured.")
    if not wrong and not right:  # only ties moved (review R23: "0 rows' ... turned wrong and 0 turned right")
        return (f" Accuracy fell from {b} to {a}{on} only by {tie_rows}, counted by the first tied class: no change "
                "is measured.")
    if change["after"] >= change["before"]:
        # fell only with the tied rows at chance: counted by the first tied class they hid it (review R25)
        fell, tie_words = f"fell from {cb} to {ca}{on} with {at_chance} ({b} to {a} counted by the first tied class)", ""
    else:
        fell = f"fell from {b} to {a}{on}"
        tie_words = (f"; {ties} more row{'s' * (ties != 1)} changed only by a tie between top probabilities, left "
                     "out" if ties else "")
    text = f" Accuracy {fell}: {counts} (exact McNemar p = {_p_digits(change['p_value'])}{tie_words})"
    if not measured:
        return f"{text}, within the noise."
    other_map = (params or {}).get("method") != "TemperatureScaling"
    if raw_kept:
        return f"{text}; temperature scaling {_KEEPS_CLASS}." if other_map else f"{text}."
    instead = f", or use temperature scaling, which {_KEEPS_CLASS}" if other_map else ""
    return (f"{text}. Keep the raw model's class predictions (use the calibrated probabilities as probabilities)"
            f"{instead}.")


#: What temperature scaling does to a row's predicted class (one positive scale of every logit keeps their order).
_KEEPS_CLASS = "never changes a row's predicted class"


def verdict(before: dict, after: dict, *, change: str, params: dict | None = None,
            loss_change: dict | None = None, in_sample: bool = False,
            classes: list | None = None, accuracy_change: dict | None = None) -> tuple[str, str]:
    """A plain-language reading of a before/after change, and its tone ("good"/"warn"/"neutral").

    Each ECE is read against the ECEs a perfectly calibrated model with those
    confidences shows at this sample size (:func:`_noise_words`): within them
    (at most ``ece_noise_threshold``, their 95th percentile) it is
    indistinguishable from perfect calibration, and only beyond it is some
    miscalibration inferred. The noise floor, their mean, is given but is no
    test: a perfectly calibrated model lands above it about 4 times in 10
    (audit: "above the noise floor, so some miscalibration may remain" for the
    demo's ECE 0.0299, which 24.5% of perfectly calibrated data sets reach). A change is read
    as a change only when the two bootstrap intervals do not overlap; within
    them it is called no measurable change, whichever way the estimate moved
    (audit: a rise from 0.0316 to 0.0338 was told as "brought the calibration
    error ... to" and marked good, because the floor after scaling was higher).
    Without intervals (``ece_ci`` None: fewer than ``MIN_ECE_CI_ROWS`` rows, see
    :func:`softmaxkit.cli._adapters.summarize`) only each side's reading is given:
    a fall from beyond the noise to within it is told as such, any other move is
    given with "no bootstrap interval" and not called lowered or raised (audit:
    [0, 1] in their place read "within the bootstrap uncertainty ... no
    measurable change" over a fall from 0.38 to 0.10, under its floor 0.12).
    Log-loss, which needs no binning, backs the reading up: ``loss_change``
    (:func:`paired_loss_change`) calls it better or worse only when the paired
    interval of the per-row change excludes 0, else within the noise, with the
    interval (audit: 0.0927 -> 0.0810 was called better with a paired CI of
    [-0.047, +0.014]); without it the change is given and not read. ``params``
    (from :func:`softmaxkit.cli._adapters.calibrator_params`) with ``at_bound``
    set means the fit stopped on a bound: that is said first, with the
    temperature, and the change is never called better. ``in_sample``: the
    rows measured are the rows the map was fitted on, so a gain there is no
    evidence; the tone is never good and the text says so, and the ECE after
    the map is given but not tested (:func:`_in_sample_ece_reading`). Both
    ECEs within the noise, with no measured log-loss change, read "No
    miscalibration detected on N rows" with the ECEs the test would have
    flagged (:func:`_detectable`), in the neutral tone: a test that fails to
    reject is no finding of calibration (it read "Already calibrated"). ``params`` with
    ``zero_classes``: the map gives probability 0 to those classes for some
    scores, so a new row of one of them can have infinite log-loss; the
    log-loss is read as unsafe (never better, whatever these rows show) and
    the tone is a warning. A log-loss measured worse (``loss_change`` reading ``"worse"``, or ``"higher"`` on
    the fitting rows) leads the text, "made it worse: keep the raw model", in the warning tone, whatever the
    ECE did (audit: "Already calibrated: ECE 0.0072 before and 0.1179 after ..." over a log-loss read worse,
    [+0.0779, +0.2143]). A change measured on too few rows (reading :data:`TOO_FEW`) is not read at all.

    An ECE within the noise is never read as calibrated when a class's predicted count is off
    (``class_count_test`` of :func:`softmaxkit.cli._adapters.summarize` rejects): the top-label ECE is
    dominated by the confident rows and cannot see a rare class's probabilities being too high or low on
    average (audit: "Already calibrated" with 32.3 positives predicted for 20 observed, p = 0.007). The
    text names the class (by ``classes``, its names in column order, when given) and its counts, the tone
    is a warning, and calibration is left to the log-loss change. When the same class was off before the
    change too, it is "still off after" the change, which "did not fix it" (audit: "After it the predicted
    count ... is off" read as if calibrating had caused it). Beside an ECE its own test flags, the clause says
    that test finds miscalibration too, not that the ECE cannot see it (:func:`_count_miss`).

    Where more than :data:`CROWDED_BIN_SHARE` of a side's rows share one ECE bin, a sentence says so and gives
    both sides' equal-mass ECE with its test (:func:`_crowded_sentence`; the after side untested ``in_sample``),
    and a good tone turns neutral where the after side's equal-mass test rejects (audit BX: a risk order
    reversed among the 90% of rows in [14/15, 1] read "within what a perfectly calibrated model shows").

    An ECE read against its noise floor or threshold prints with as many decimals as it takes to differ from
    them (:func:`_ece_figures`), and a p-value at the least the test can give as ``p <= 0.005``
    (:func:`_p_text`).

    ``accuracy_change`` (:func:`paired_accuracy_change`) where the accuracy fell: a sentence gives both
    accuracies, the rows whose predicted class turned wrong and right and the exact McNemar ``p``
    (:func:`accuracy_fall`), after the log-loss's; within the noise where ``p`` is at least
    :data:`ACCURACY_TEST_LEVEL`, and on the map's fitting rows said to be theirs. Measured worse (review R20:
    0.9766 -> 0.9532 on held-out rows, with a verdict on the ECE and log-loss alone), or lower even on the map's
    fitting rows (``"lower"``, as a log-loss higher there is read), it leads, after a log-loss measured worse, in the
    warning tone, and says to keep the raw model's class predictions or use temperature scaling, which never
    changes a row's predicted class (after "keep the raw model", only the latter). Exact at any row count, it is
    said beside a log-loss change on too few rows and a fit on its bound too. Where the tied rows decide the
    accuracy against the untied rows (``ties_decide``), rise or fall, the sentence says so, last, and the reading
    ("within the noise") leaves the tone alone.
    """
    accuracy = accuracy_fall(accuracy_change, params=params)  # the branches that return early
    accuracy_worse = (accuracy_change or {}).get("reading") in ("worse", "lower")
    if params and params.get("at_bound"):
        temperature = f" (T = {params['temperature']:.4g})" if "temperature" in params else ""
        return (f"The {change} fit stopped on the bound of its parameter{temperature}: it found no optimum, so "
                f"this is not an improvement. Log-loss {before['log_loss']:.4f} before, {after['log_loss']:.4f} "
                f"after. {_bound_advice(before, params)}{accuracy}{_in_sample_caveat(in_sample)}"), "warn"
    reading = loss_change["reading"] if loss_change else None
    if reading == TOO_FEW:
        n = loss_change["n"]
        return (f"Too few rows to tell: {change} was measured on {n} row{'' if n == 1 else 's'}, fewer than the "
                f"{MIN_PAIRED_ROWS} a bootstrap interval needs, so no gain or loss is read. ECE {before['ece']:.4f} "
                f"before and {after['ece']:.4f} after; log-loss {before['log_loss']:.4f} before and "
                f"{after['log_loss']:.4f} after.{accuracy}{_in_sample_caveat(in_sample)}"), \
            "warn" if accuracy_worse else "neutral"
    b, a = before["ece"], after["ece"]
    # as printed: widened where 4 decimals would show an ECE equal to the floor or threshold it is read against
    bt, at = _ece_figures(before)[0], _ece_figures(after)[0]
    calm_b, calm_a = _within_noise(before), _within_noise(after)  # within what perfect calibration shows
    measured_worse = reading in ("worse", "higher")
    # A class whose predicted count is off after the change (else before it, for "already calibrated"):
    # an ECE within the noise must then not be read as calibrated. Off before too, for the same class: the
    # change left it so, and the clause says "still" (audit: "After it ... is off" read as its doing).
    still = _count_miss(before, classes, when="before") is not None and (
        before["class_count_test"]["class"] == (after.get("class_count_test") or {}).get("class"))
    # the after side's ECE is not tested on the map's fitting rows (_in_sample_ece_reading): nothing said of it
    miss_after = _count_miss(after, classes, when="still" if still else "after", change=change,
                             ece="untested" if in_sample else "read")
    miss = miss_after or (_count_miss(before, classes, when="before") if calm_a and calm_b else None)
    if in_sample:
        # The after side's test asks whether rows the map was fitted on look calibrated to it, which they do
        # whatever it does to new rows (audit BK-4: matrix scaling, 110 parameters on 30 rows, read
        # "indistinguishable from perfectly calibrated" and wrecked the model on test rows): not read.
        calm_a = False  # so a class whose count is off after it is still said, below
        text, tone = _in_sample_ece_reading(before, after, change=change,
                                            miss=None if miss_after else _count_miss(before, classes, when="before")), \
            "neutral"
    elif calm_a and calm_b and miss:
        # off after: a warning; off only before (the map corrected the count): not calibrated before, no alarm
        text, tone = (f"ECE {bt} before and {at} after {change}, each within what a perfectly calibrated "
                      f"model would show ({_position(before)} before; {_position(after)} after), but {miss}"), \
            "warn" if miss_after else "neutral"
    elif calm_a and calm_b:
        # never over a measured change of the log-loss: worse, or better (the map did something the top-label
        # ECE cannot see; "Already calibrated" beside "better: CI [-0.0303, -0.0106]" contradicted itself)
        if measured_worse or reading in ("better", "lower"):
            text, tone = (f"ECE {bt} before and {at} after {change}, each within what a perfectly "
                          f"calibrated model would show on {after['n']} cases ({_position(before)} before; "
                          f"{_position(after)} after)."), "good"
        else:
            # A test that fails to reject is no finding of calibration: say what these rows could have shown
            # (audit BK-2: "Already calibrated" at p = 0.055 on 30 rows of SVC scores whose raw ECE on test
            # rows was 0.21 and whose calibrator halved the log-loss).
            # not where the equal-mass ECE of a side crowded into one bin finds some (_crowded_sentence says it)
            seen = any(_top_label_only(x) for x in (before, after))
            head = "The top-label ECE detects no miscalibration" if seen else "No miscalibration detected"
            text, tone = (f"{head} on {after['n']} rows: ECE {bt} before and {at} after "
                          f"{change}, each within what a perfectly calibrated model would show ({_position(before)} "
                          f"before; {_position(after)} after){_detectable(before, after)}."), "neutral"
    elif _overlap(before, after):
        (lo_b, hi_b), (lo_a, hi_a) = before["ece_ci"], after["ece_ci"]
        text, tone = (f"{change.capitalize()} changed the calibration error from {bt} to {at}, within the "
                      f"bootstrap uncertainty (95% CIs {lo_b:.4f}-{hi_b:.4f} before and {lo_a:.4f}-{hi_a:.4f} after "
                      f"overlap): no measurable change on {after['n']} cases. "
                      f"{_floor_reading(before, after, miss=miss_after)}"), "warn" if miss_after else "neutral"
    elif a < b and calm_a and miss_after:
        text, tone = (f"{change.capitalize()} brought the calibration error from {bt} to {at}, "
                      f"{_noise_words(after)}, but {miss_after}"), "warn"
    elif a < b and calm_a:
        by = " by the top-label ECE" if _top_label_only(after) else ""  # (_crowded_sentence gives the rest)
        text, tone = (f"{change.capitalize()} brought the calibration error from {bt} ({_noise_words(before)}) "
                      f"to {at}, {_noise_words(after)}: indistinguishable from perfectly calibrated{by} on "
                      f"{after['n']} cases."), "good"
    elif before.get("ece_ci") is None or after.get("ece_ci") is None:
        # no interval to place the change in (too few rows): only each side is read (_floor_reading), as for overlap
        text, tone = (f"{change.capitalize()} changed the calibration error from {bt} to {at}, with no "
                      f"bootstrap interval of the ECE on {after['n']} rows to tell whether that change is "
                      f"measurable. {_floor_reading(before, after, miss=miss_after)}"), \
            "warn" if miss_after else "neutral"
    elif a < b:
        text, tone = (f"{change.capitalize()} lowered the calibration error from {bt} to {at} "
                      f"({_noise_words(after)}).{_interval_reaches_zero(after, side=' after')}"), "good"
    else:
        text, tone = f"{change.capitalize()} raised the calibration error from {bt} to {at}.", "warn"
    if miss_after and not calm_a:  # the branches above said it only beside an ECE within the noise
        clause = f"{miss_after[0].upper()}{miss_after[1:]}" if still else f"After it {miss_after}"
        text, tone = f"{text} {clause}", "warn"
    # Most rows in one bin: the ECE read above cannot see inside it; the equal-mass ECE can (audit BX: "within
    # what a perfectly calibrated model shows" for a risk order reversed among 90% of the rows).
    text += _crowded_sentence(before, after, in_sample=in_sample)
    if tone == "good" and _crowded(after) and not in_sample and _equal_mass_rejects(after):
        tone = "neutral"
    lb, la = before["log_loss"], after["log_loss"]
    worse = la > lb or (loss_change is not None and loss_change["reading"] in ("worse", "higher"))
    if tone == "good" and (worse or in_sample):
        tone = "neutral"
    zero = (params or {}).get("zero_classes")
    if zero:
        tone = "warn"
    loss = _loss_reading(lb, la, loss_change, in_sample=in_sample, zero_classes=zero)
    accuracy = accuracy_fall(accuracy_change, params=params, raw_kept=measured_worse)
    if accuracy_worse:
        # First too (after a log-loss measured worse): read after the ECE's and log-loss's good news, a measured
        # fall in accuracy went unseen (review R20)
        # (joined so that no sentence left empty leaves a space before the text; review R24)
        text, tone, accuracy = " ".join(filter(None, (accuracy.strip(), text))), "warn", ""
    if measured_worse:
        # First, so nothing read before it sounds like a reason to keep the calibrator.
        lead = (f"{change.capitalize()} made it worse: keep the raw model." if reading == "worse" else
                f"{change.capitalize()} raised the log-loss even on the rows it was fitted on: keep the raw model.")
        text, tone = f"{lead} {text}", "warn"
    return f"{text} {loss}{accuracy}{_in_sample_caveat(in_sample)}", tone


def held_out_outcome(before: dict, after: dict, loss_change: dict | None) -> str:
    """Whether a change measurably helped: ``"gain"``, ``"worse"`` or ``"none"`` (no measurable change).

    Worse: the log-loss's paired interval lies above 0, or the ECE rose with non-overlapping intervals.
    Gain (and not worse): the log-loss's interval lies below 0, or the ECE fell, from beyond what a
    perfectly calibrated model shows (:func:`_miscalibrated`; above its noise floor, a mean, is no evidence
    of that), with non-overlapping intervals. Without ECE intervals (``ece_ci`` None, fewer than
    ``MIN_ECE_CI_ROWS`` rows) the ECE is not read as a measured change: the log-loss alone decides (its
    paired interval needs only :data:`MIN_PAIRED_ROWS` rows); the noise floor is a reading of each side,
    not a test of the change.
    """
    reading = loss_change["reading"] if loss_change else None
    if reading == TOO_FEW:
        return "none"
    apart = before.get("ece_ci") is not None and after.get("ece_ci") is not None and not _overlap(before, after)
    b, a = before["ece"], after["ece"]
    if reading == "worse" or (apart and a > b):
        return "worse"
    if reading == "better" or (apart and a < b and _miscalibrated(before)):
        return "gain"
    return "none"


def _bound_advice(before: dict, params: dict) -> str:
    """What to do about a fit on its bound. The temperature on its upper bound (the logits scaled to 0)
    with accuracy at or below chance: the logits point away from the labels, or say nothing about them;
    more data would not help (audit). Otherwise (T -> 0: every calibration row right) more, or harder,
    held-out data would."""
    acc, chance = before.get("accuracy"), before.get("majority_rate")
    if params.get("temperature", 0.0) > 1 and acc is not None and chance is not None and acc <= chance:
        return (f"The raw accuracy, {acc * 100:.1f}%, is no better than always naming the most frequent class "
                f"({chance * 100:.1f}%): the logits look reversed or carry no information about the labels. "
                "Check how the columns line up with the classes, and the model, before calibrating.")
    return "Calibrate on more (or harder) held-out data."


def zero_class_consequence(zero_classes: list) -> str:
    """What a map that gives ``zero_classes`` probability 0 means for new rows (a clause, lower case)."""
    # the first few and a count (audit BR: all 1000 class numbers, in the verdict and again in a warning)
    names = name_list(f"'{c}'" if isinstance(c, str) else str(c) for c in zero_classes)
    which = "class" if len(zero_classes) == 1 else "classes"
    return (f"the calibrated map gives probability exactly 0 to {which} {names} for some scores, so a new row "
            f"of such a class scoring there has infinite log-loss")


#: Below this many rows per fitted parameter, figures measured on the fitting rows are called optimistic.
ROWS_PER_PARAMETER = 10


def fit_warnings(params: dict, *, change: str, n_fit: int, in_sample: bool,
                 loss_change: dict | None = None, after: dict | None = None,
                 n_classes: int | None = None) -> list[str]:
    """One-line warnings about a fitted calibrator, for the commands to raise (stderr) and record (JSON).

    ``params``: :func:`softmaxkit.cli._adapters.calibrator_params`; ``change``: the map's name
    ("isotonic calibration"); ``n_fit``: its fitting rows; ``in_sample``: the figures shown are measured on
    them. Each starts with ``change``. Said: classes the map can give probability 0 (``zero_classes``); a temperature set by the prior
    alone because every fitting row was ranked right (``separable``; audit: T = 29.5 on 30 such rows took
    fresh log-loss from 0.000 to 0.019); and in-sample figures from a fit with fewer than
    :data:`ROWS_PER_PARAMETER` rows per parameter (audit: matrix scaling, 110 parameters on 200 rows); under a
    holdout too, since a few held-out rows can miss what that costs (audit: vector scaling, 20 parameters, read
    "better" on 15 held-out rows while unseen rows got worse). In-sample figures of a map with as many
    parameters as fitting rows or more get the stronger caution of :func:`_fits_labels_caution` instead, first,
    naming ``after``'s accuracy and log-loss (the figures shown after the map) and the maps with fewer
    parameters at ``n_classes``. A two-class Platt map on the probability itself whose floor raises a class's
    probability more than twofold on at least :data:`FLOOR_SHARE` of the fitting rows (``probability_floors``),
    in one line (:func:`_floor_caution`). With ``loss_change``
    (:func:`paired_loss_change`) read ``"worse"`` (or ``"higher"`` on the fitting rows): keep the raw model.
    """
    out = []
    n_params = params.get("n_parameters", 0)
    fits_labels = in_sample and 0 < n_fit <= n_params
    if fits_labels:
        out.append(_fits_labels_caution(after or {}, change=change, n_params=n_params, n_fit=n_fit,
                                        n_classes=n_classes))
    if params.get("zero_classes"):
        out.append(f"{change}: {zero_class_consequence(params['zero_classes'])} (temperature scaling never gives 0)")
    floors = params.get("probability_floors", ())
    if any(f["raised_twofold"] >= FLOOR_SHARE for f in floors):
        out.append(_floor_caution(floors, change=change, n_fit=n_fit))
    if params.get("separable") and "temperature" in params:
        t = params["temperature"]
        effect = ("it softens the model (T > 1)" if t > 1 else
                  "it sharpens the model (T < 1)" if t < 1 else "it leaves the model as it is")
        out.append(f"{change}: every one of the {n_fit} calibration rows is ranked right (its true class has the largest "
                   f"logit), so T = {t:.4g} is set by the prior alone: {effect}, and calibrating may not help; "
                   "calibrate on more (or harder) rows")
    if n_fit < ROWS_PER_PARAMETER * n_params and not fits_labels:
        fewer = " or a map with fewer parameters (temperature scaling has 1)" if n_params > 1 else ""
        why = ("figures measured on those rows are optimistic; use --holdout" if in_sample else
               f"it may have fitted those rows' noise, and a few held-out rows can miss that; use more rows{fewer}")
        out.append(f"{change}: fitted {n_params} parameter{'s' if n_params != 1 else ''} on {n_fit} rows (fewer than {ROWS_PER_PARAMETER} rows "
                   f"per parameter): {why}")
    reading = (loss_change or {}).get("reading")
    if reading in ("worse", "higher"):
        where = f"the {loss_change['n']} held-out rows" if reading == "worse" else "the rows it was fitted on"
        out.append(f"{change}: made the log-loss measurably worse on {where} ({_loss_evidence(loss_change)}): "
                   "keep the raw model")
    return out


#: The share of fitting rows whose probability of a class a Platt map on ``p`` raises more than twofold by its
#: floor (``probability_floors`` of :func:`softmaxkit.cli._adapters.probability_floors`) from which
#: :func:`fit_warnings` says so. Under it the floor touches only stray rows; the audit's well-calibrated
#: 2.5%-positive model had 32% of its rows under 0.005, raised to 0.0135 on average (audit BX).
FLOOR_SHARE = 0.05


def _floor_caution(floors: list[dict], *, change: str, n_fit: int) -> str:
    """The one caution for a two-class Platt map on the probability itself whose floor under a class (``floors``:
    ``probability_floors``) raises that class's probability more than twofold on a material share of the
    ``n_fit`` fitting rows, naming each such class: the sigmoid of ``a p + b`` cannot go under ``sigmoid(b)``
    (``a > 0``), whatever the model's small probabilities say; on their log-odds (``--logits``) it can, unless a
    fitting row gives a class exactly 0 (``rows_at_zero``), whose log-odds --logits refuses (review R19: a
    random forest's probabilities), where only temperature scaling and isotonic calibration are advised."""
    said = []
    for floor in (f for f in floors if f["raised_twofold"] >= FLOOR_SHARE):
        name = repr(floor["class"]) if isinstance(floor["class"], str) else floor["class"]
        said.append(f"class {name} less than {floor['floor']:.3g}, which raises that class's probability more than "
                    f"twofold on {floor['raised_twofold']:.0%} of the {n_fit} fitting rows" if not said else
                    f"nor class {name} less than {floor['floor']:.3g} ({floor['raised_twofold']:.0%} of them)")
    zero = sum(f.get("rows_at_zero", 0) for f in floors)
    # a row at exactly 0 for one class is at exactly 1 for the other: each counted once
    advice = (f"use --method temperature or isotonic (--logits cannot take the log-odds of the {zero} fitting "
              f"row{'' if zero == 1 else 's'} at probability exactly 0 or 1)" if zero else
              "pass log-odds with --logits instead (log(p/(1-p)) in place of a single column of P(class 1), or "
              "log p in every class's column), on which Platt fits as scikit-learn's sigmoid does on a decision "
              "function, with no floor; or use --method temperature or isotonic")
    return (f"{change}: fitted on the probability itself, sigmoid(a p + b), it never gives {'; '.join(said)}; if "
            f"the model's small probabilities are right, {advice}")


def _fits_labels_caution(after: dict, *, change: str, n_params: int, n_fit: int, n_classes: int | None) -> str:
    """The caution for a map with as many fitted parameters as fitting rows or more, its figures measured on
    those rows (audit BR: matrix scaling, 10,100 parameters on 2,000 rows of 100 classes, read accuracy
    0.6590 -> 1.0000 and log-loss 3.05 -> 0.07 there, under "figures measured on those rows are optimistic";
    on new rows it took accuracy from 0.684 to 0.370 and log-loss from 2.83 to 3.65)."""
    figures = [f"{name} {after[key]:.4f}" for key, name in (("accuracy", "accuracy"), ("log_loss", "log-loss"))
               if after.get(key) is not None]
    counts = [("temperature scaling", 1)] + ([("vector scaling", 2 * n_classes)] if n_classes else [])
    fewer = [f"{name}: {k}" for name, k in counts if k < n_params and name != change]
    instead = f", or a map with fewer parameters ({'; '.join(fewer)})" if fewer else ""
    return (f"{change}: fitted {n_params} parameters on {n_fit} rows, as many as the rows or more, so it can fit "
            f"these rows' labels: the {' and '.join(figures) or 'figures'} measured after it on them say nothing "
            f"about new rows; use --holdout{instead}")


def _loss_evidence(change: dict) -> str:
    """Why a paired change is read as it is: its rows lost on one side, a class too rare for an interval
    (``withheld``), the range of its per-row changes where the interval held all of it (``row_change_range``:
    no bootstrap interval, so not called one), else its interval."""
    if "rows_lost" in change:
        return f"{change['rows_lost']} of {change['n']} rows get probability 0 on their true class on one side only"
    if "withheld" in change:
        return f"not measurable: {change['withheld']}"
    if "row_change_range" in change:
        low, high = change["row_change_range"]
        moved = ("every row's loss fell, " if high < 0 else "every row's loss rose, " if low > 0 else "")
        # 2 significant figures where 4 decimals round a change to -0.0000 (every row fell, the least by 4e-05)
        low, high = (f"{x:+.4f}" if x == 0 or abs(x) >= 5e-5 else f"{x:+.2g}" for x in (low, high))
        return (f"{moved}the per-row changes lying in [{low}, {high}] with {change['carried_by']} of "
                f"{change['n']} rows carrying {_CARRIED_SHARE:.0%} of them, too few rows for a bootstrap interval "
                "of the mean")
    lo, hi = change["ci95"]
    return f"paired bootstrap 95% CI of the mean per-row change [{lo:+.4f}, {hi:+.4f}]"


def _detectable(before: dict, after: dict) -> str:
    """The clause (leading "; ") saying which ECEs the test of perfect calibration would have flagged on these
    rows (``ece_noise_threshold`` of each side), so that a test that did not reject is not read as evidence of
    calibration; "" where a side has no test."""
    if before.get("ece_noise_threshold") is None or after.get("ece_noise_threshold") is None:
        return ""
    lb, la = _ece_figures(before)[2], _ece_figures(after)[2]  # the decimals the ECEs beside them print with
    return (f"; on these rows the test flags only an ECE above {lb} before and {la} after, so a smaller "
            "miscalibration can go unseen")


def _in_sample_ece_reading(before: dict, after: dict, *, change: str, miss: str | None) -> str:
    """The ECE sentences of a verdict measured on the rows the map was fitted on: the before side read against
    what a perfectly calibrated model shows (:func:`_noise_words`), with what the test could have flagged where
    it did not reject; the after side given and not tested, since a map fitted on these rows fits their noise
    too. ``miss`` (:func:`_count_miss` of the before side, or None) follows."""
    if _miscalibrated(before):
        found = "miscalibrated"
    else:
        limit = before.get("ece_noise_threshold")
        # said where _noise_words does not already give the threshold (an ECE under its floor)
        under_floor = before["ece"] <= (before.get("ece_noise_floor") or 0.0)
        # the top-label ECE's finding alone where the equal-mass ECE, said later, rejects (_top_label_only)
        head = ("the top-label ECE detects no miscalibration" if _top_label_only(before)
                else "no miscalibration detected")
        found = f"{head} on {before['n']} rows" + (
            f", where the test flags only an ECE above {_ece_figures(before)[2]}" if limit is not None and under_floor
            else "")
    text = (f"Before {change} the ECE is {_ece_figures(before)[0]}, {_noise_words(before)}: {found}."
            f"{_interval_reaches_zero(before)} After it the ECE is {after['ece']:.4f}, not tested: a map fits the "
            "noise of the rows it was fitted on, so its ECE there says nothing about new rows.")
    return f"{text} {miss[0].upper()}{miss[1:]}" if miss else text


def _in_sample_caveat(in_sample: bool) -> str:
    return (" These numbers are measured on the rows it was fitted on, not a test; use --holdout."
            if in_sample else "")


def _floor_reading(before: dict, after: dict, *, miss: str | None = None) -> str:
    """Where the ECE after a change within the noise lies among perfectly calibrated models' ECEs (not both
    within them: :func:`_within_noise`). Miscalibration is inferred only where the test rejects
    (:func:`_miscalibrated`): above the noise floor, a mean, a perfectly calibrated model lands about 4 times
    in 10. ``miss`` (:func:`_count_miss` of the after side): a class's count is off, so within the noise is
    not calibrated. A before side the test rejects is said first when the after side is within the noise."""
    words = _noise_words(after)
    # a before side the test rejected is said, or "no measurable change ... indistinguishable from perfectly
    # calibrated" hid it (audit BJ-7: before 0.0590, p = 0.020, on 224 held-out rows)
    was = (f"Before it the ECE was {_noise_words(before)}: miscalibrated.{_interval_reaches_zero(before)} "
           if _miscalibrated(before) else "")
    if _within_noise(after) and miss:
        return f"{was}After it the ECE is {words}, but {miss}"
    if _within_noise(after):
        by = " by the top-label ECE" if _top_label_only(after) else ""  # (_crowded_sentence gives the rest)
        return f"{was}After it the ECE is {words}: indistinguishable from perfectly calibrated{by}."
    came = ", so some miscalibration may have come in." if _miscalibrated(after) else "."
    if _within_noise(before):
        return (f"The ECE was {_noise_words(before)} before and is {_noise_words(after, floor='floor')} after{came}"
                f"{_interval_reaches_zero(after, side=' after')}")
    remains = ", so some miscalibration may remain." if _miscalibrated(after) else "."
    return f"It stays {words}{remains}{_interval_reaches_zero(after, side=' after')}"


def _equal_mass_rejects(summary: dict) -> bool:
    """Whether the equal-mass ECE's test of perfect calibration rejects (``ece_quantile`` above its threshold)."""
    limit = summary.get("ece_quantile_noise_threshold")
    return limit is not None and summary.get("ece_quantile", 0.0) > limit


def _within_noise(summary: dict) -> bool:
    """Whether the summary's ECE is within what a perfectly calibrated model with its confidences shows on its
    rows: at most ``ece_noise_threshold``, the 95th percentile of the simulated ECEs
    (:func:`softmaxkit.cli._adapters.summarize`). A summary without one (made before the test, or by hand)
    counts only an ECE at most its noise floor, which lies under that percentile."""
    limit = summary.get("ece_noise_threshold")
    return summary["ece"] <= (limit if limit is not None else summary.get("ece_noise_floor") or 0.0)


def _miscalibrated(summary: dict) -> bool:
    """Whether the test of perfect calibration rejects at 5%: the ECE above ``ece_noise_threshold``. Never
    without one: an ECE above its noise floor alone is no evidence of miscalibration."""
    limit = summary.get("ece_noise_threshold")
    return limit is not None and summary["ece"] > limit


def _ece_figures(summary: dict) -> tuple[str, str, str]:
    """The summary's ECE, noise floor and threshold as the text prints them: 4 decimals, or as many more as the
    ECE needs to print unlike the floor and the threshold it is read against (:func:`softmaxkit.report.distinct`;
    audit BT: "0.0375, above its noise floor 0.0375" for 0.037496 and 0.037469). A missing floor is 0, a
    missing threshold "n/a"."""
    from softmaxkit.report import distinct

    ece, low, limit = distinct(summary["ece"], summary.get("ece_noise_floor") or 0.0,
                               summary.get("ece_noise_threshold"))
    return ece, low, limit


def _p_text(p: float) -> str:
    """``p = 0.34``; ``p <= 0.005`` for the least p the test can give. The Monte Carlo p-value is
    ``(1 + #{worlds >= ECE}) / (1 + S)`` over ``S`` = :data:`softmaxkit.metrics.DEFAULT_NOISE_SIMS` simulated
    worlds (:func:`softmaxkit._ece.calibration_test`): 1/201 says no world reached the ECE, not that the p-value
    is 0.005 (audit BT: "p = 0.005" beside an ECE three times its threshold)."""
    from softmaxkit.metrics import DEFAULT_NOISE_SIMS

    least = 1.0 / (1 + DEFAULT_NOISE_SIMS)
    return f"p <= {least:.2g}" if p <= least * (1 + 1e-9) else f"p = {_p_digits(p)}"


def _p_digits(p: float) -> str:
    """``p`` to 2 significant digits, 3 where 2 would round a p under 0.05 up to the 0.05 the readings test
    against (review R20: 10/201 = 0.0498 printed "p = 0.05: miscalibrated", beside "p = 0.055 ... within")."""
    text = f"{p:.2g}"
    return f"{p:.3g}" if p < 0.05 and float(text) >= 0.05 else text


def _position(summary: dict) -> str:
    """The summary's ECE against its noise floor, with the test's ``p`` where measured and above it: "under its
    noise floor 0.0200", "above its noise floor 0.0200, p = 0.34" (the share of perfectly calibrated data sets
    as high; :func:`_p_text`). The floor has the decimals of :func:`_ece_figures`."""
    ece, p = summary["ece"], summary.get("ece_p_calibrated")
    low = summary.get("ece_noise_floor") or 0.0
    low_text = _ece_figures(summary)[1]
    if ece <= low:
        return f"under its noise floor {low_text}"
    return f"above its noise floor {low_text}" + (f", {_p_text(p)}" if p is not None else "")


def _noise_words(summary: dict, *, floor: str = "noise floor") -> str:
    """Where the summary's ECE lies among perfectly calibrated models' ECEs, as a clause: "under its noise
    floor 0.0200"; "above its noise floor 0.0200 but within what a perfectly calibrated model shows (p =
    0.25; its threshold 0.0350)"; "above its noise floor 0.0200 and the 0.0350 that perfectly calibrated models stay under 95% of
    the time, p = 0.004"; or "above its noise floor 0.0200" where no test was run. ``p`` is
    ``ece_p_calibrated``, where measured (:func:`_p_text`); ``floor``: the noun for the noise floor. The floor and
    threshold have the decimals of :func:`_ece_figures`, as the ECE printed beside them should."""
    ece, low, limit = summary["ece"], summary.get("ece_noise_floor") or 0.0, summary.get("ece_noise_threshold")
    p = summary.get("ece_p_calibrated")
    _, low_text, limit_text = _ece_figures(summary)
    if ece <= low:
        return f"under its {floor} {low_text}"
    above = f"above its {floor} {low_text}"
    if limit is None:
        return above
    if ece <= limit:
        # its own threshold too: each side has one (its confidences set the noise), and the demo's "the 0.0299
        # that perfectly calibrated models stay under" before, beside an after ECE of 0.0299 "within" (whose
        # threshold is 0.0380), read as a contradiction (review R12)
        shown = (f" ({_p_text(p)}; its threshold {limit_text})" if p is not None
                 else f" (its threshold {limit_text})")
        return f"{above} but within what a perfectly calibrated model shows{shown}"
    from softmaxkit._ece import TEST_LEVEL  # the level of ece_noise_threshold (metrics' calibration_test)

    return (f"{above} and the {limit_text} that perfectly calibrated models stay under {TEST_LEVEL:.0%} of the time"
            + (f", {_p_text(p)}" if p is not None else ""))


def _interval_reaches_zero(summary: dict, *, side: str = "") -> str:
    """The sentence (leading " ") for a side the test rejects while its ECE interval starts at 0, "" otherwise;
    said after the sentence that reads the side (:func:`_noise_words`), ``side`` (" before", " after") naming
    it where that sentence reads both.

    The two answer different questions and do not contradict: the test compares the ECE with those of
    perfectly calibrated models at these confidences; the interval bounds the true ECE and is debiased
    downwards, so it errs wide at small ECEs and reaches 0 (audit BQ: the breast-cancer demo read
    "p = 0.02: miscalibrated" beside a 95% CI of [0.0000, 0.0573], and a reader could not tell which to
    believe). A sentence of its own: as a clause inside the side's words it ran into what followed them
    ("... is the sharper check after, so some miscalibration may have come in", review R16)."""
    interval = summary.get("ece_ci")
    if not _miscalibrated(summary) or not interval or interval[0] > 0.0:
        return ""
    return (f" Its 95% CI{side} reaches 0 because the interval is built wide at small ECEs, while the test, against "
            "perfectly calibrated models at the same confidences, is the sharper check.")


#: How :func:`_count_miss` ends in a verdict, where a before/after change is read.
_JUDGE_BY_LOG_LOSS = "judge the calibration by the log-loss change"


def _count_miss(summary: dict, classes: list | None, *, when: str, advice: str = _JUDGE_BY_LOG_LOSS,
                change: str = "it", ece: str = "read") -> str | None:
    """The clause (lower case, ending in a full stop) saying that a class's predicted count is off in
    ``summary`` (its ``class_count_test`` rejected), or None. ``classes``: names in column order; else
    the class is named by its index. ``when``: "before" or "after", said when that is the side off, or
    "still": off after ``change`` (its name) as it was before, so the clause says ``change`` did not fix
    it rather than read as if it caused it; ``advice``: what to do about it, the clause's end.

    The clause says the top-label ECE, dominated by the confident rows, cannot see the miss only where the
    ECE's test does not reject (:func:`_miscalibrated`): beside an ECE that test flags it was false (audit BT:
    ECE 0.0300 over its threshold 0.0139, p at its least). There ``ece`` says how the clause speaks of it:
    ``"read"``, where the text around it reads the ECE (a verdict), says the ECE's test finds miscalibration
    too; ``"shown"``, where nothing else does (the line under ``evaluate``'s table), gives that test's words
    (:func:`_noise_words`); ``"untested"``, an ECE the text leaves untested (on a map's fitting rows), nothing.
    """
    test = summary.get("class_count_test")
    if not test or not test["rejected"]:
        return None
    j = test["class"]
    name = f"class '{classes[j]}'" if classes is not None and j < len(classes) else f"class {j}"
    e, o = test["expected"], test["observed"]
    direction = "too high" if e > o else "too low"
    tests = test["tests"]
    bonferroni = "" if tests == 1 else f", Bonferroni over {tests} classes"
    side = {"before": "is off before it",
            "still": f"is still off after {change}, as it was before ({change} did not fix it)"}.get(when, "is off")
    seen = ", which the top-label ECE, dominated by the confident rows, cannot see"
    if _miscalibrated(summary):
        seen = {"read": "; the ECE's test finds miscalibration too",
                "shown": f"; the top-label ECE finds miscalibration too ({_ece_figures(summary)[0]}, "
                         f"{_noise_words(summary)})"}.get(ece, "")
    return (f"the predicted count of {name} {side}: {e:.1f} expected, {o} observed (p = {_p_digits(test['p_adjusted'])}"
            f"{bonferroni}), so its probabilities are {direction} on average{seen}; {advice}.")


def _loss_reading(before: float, after: float, change: dict | None = None, *, in_sample: bool = False,
                  zero_classes: list | None = None) -> str:
    """The log-loss sentence. Better or worse only when the paired interval of the per-row change
    (``change``, :func:`paired_loss_change`) excludes 0; within it, the change is within the noise and
    the interval is given. Without ``change`` the numbers are given and not read. On the fitting rows
    (``in_sample``) a change is lower or higher "on these rows", not better or worse. Equal as printed
    (0.30001 -> 0.30000) reads "stayed at" unless the interval excludes 0. With ``zero_classes`` (the map
    can give those classes probability 0) only a measured worse stands; anything else reads unsafe. A
    change a few rows carry (:data:`NOT_MEASURABLE`) is said to be that, with the range of the per-row
    changes instead of an interval; so is one every row moved the same way, whose interval held that whole
    range (:func:`_loss_evidence`)."""
    b, a = f"{before:.4f}", f"{after:.4f}"
    reading = change["reading"] if change else None
    zero = zero_class_consequence(zero_classes) if zero_classes else None
    if zero and reading != "worse":
        ci = "" if change is None else f" ({_loss_evidence(change)})"
        # the interval's own reading, as the other maps' sentences give it (review R20: an isotonic CI of
        # [-0.0344, +0.0623] was given without a word that it holds 0)
        lo, hi = (change or {}).get("ci95") or (np.nan, np.nan)
        plain = change is not None and not in_sample and not ({"rows_lost", "withheld", "row_change_range"} & set(change))
        noise = ", within the noise" if plain and lo <= 0.0 <= hi else ""
        return (f"Log-loss went from {b} to {a} on these rows{ci}{noise}, but {zero}: unsafe, since the log-loss on "
                "new rows can be infinite whatever it did here.")
    consequence = f" {zero[0].upper()}{zero[1:]}." if zero else ""
    if change and "rows_lost" in change:
        # The reading rests on rows given probability 0 on one side only, not on the interval (which
        # then reaches an infinity and may hold 0): say that evidence (audit: "worse: ... CI [-0.2812, +inf]").
        side = ("after", "before") if reading in ("worse", "higher") else ("before", "after")
        return (f"Log-loss went from {b} to {a} ({reading}: {change['rows_lost']} of {change['n']} rows get "
                f"probability 0 on their true class {side[0]}, none {side[1]}).{consequence}")
    if zero:  # measured worse
        return f"Log-loss went from {b} to {a} (worse: {_loss_evidence(change)}).{consequence}"
    if reading == NOT_MEASURABLE and "withheld" in change:
        return f"Log-loss went from {b} to {a}, {_loss_evidence(change)}."
    if reading == NOT_MEASURABLE:
        low, high = change["row_change_range"]
        # Two ways here (paired_loss_change): few carrying rows, or a bootstrap-t interval past both ends of
        # the range; "too few" only for the first (135 of 150 rows were once called too few).
        why = (f"{change['carried_by']} of {change['n']} rows carry {_CARRIED_SHARE:.0%} of the per-row change, "
               "too few for a bootstrap interval of its mean" if _carried_by_few(change["carried_by"], change["n"])
               else "its bootstrap interval would reach beyond both ends of the per-row changes")
        return (f"Log-loss went from {b} to {a}, not measurable: {why}; the per-row changes lie in "
                f"[{low:+.4f}, {high:+.4f}], which holds every mean of them and 0.")
    if a == b and reading in (None, "within the noise"):
        return f"Log-loss stayed at {b}."
    if change is None:
        return f"Log-loss went from {b} to {a} (no paired interval, so not read as better or worse)."
    lo, hi = change["ci95"]
    if reading == "within the noise":
        return (f"Log-loss went from {b} to {a}, within the noise: the paired bootstrap 95% CI of the mean "
                f"per-row change, [{lo:+.4f}, {hi:+.4f}], contains 0.")
    if in_sample:
        word = _IN_SAMPLE_READING.get(reading, reading)
        return f"Log-loss went from {b} to {a} ({word} on these rows; {_loss_evidence(change)})."
    return f"Log-loss went from {b} to {a} ({reading}: {_loss_evidence(change)})."


def chance_legend(summary: dict, *, side: str = "") -> list[str]:
    """The line under a metrics table whose accuracy is no better than always naming the most frequent
    class (``majority_rate``); empty otherwise. A yes/no model on 3.7% positives printed accuracy 0.9635,
    what always answering "no" scores, without a word (audit). Labels all of one class (``majority_rate``
    1) have no rare class to rank: no line. ``side`` follows the accuracy where a table has several columns
    (" before", " after Platt scaling"): calibrate printed two such lines and said neither's (audit BX)."""
    acc, chance = summary.get("accuracy"), summary.get("majority_rate")
    if acc is None or chance is None or acc > chance or chance >= 1:
        return []
    if _far_below_chance(acc, chance, summary.get("n")):
        return [f"Accuracy {acc:.4f}{side} is far below always naming the most frequent class ({chance:.4f}), more "
                f"than chance explains (one-sided binomial p < {_SWAPPED_P:g}): the scores may be in the other class "
                "order (score columns or --classes swapped, or one column read as the other class's)."]
    return [f"Accuracy {acc:.4f}{side} is no better than always naming the most frequent class ({chance:.4f}): "
            "judge the model by its log-loss and Brier score, or by how it ranks the rare class."]


def chance_legends(before: dict, after: dict, *, change: str) -> list[str]:
    """:func:`chance_legend` of a before/after table: one line naming both sides where they read alike, else
    each side's, named."""
    if chance_legend(before) == chance_legend(after):
        return chance_legend(before, side=f" before and after {change}")
    return [*chance_legend(before, side=" before"), *chance_legend(after, side=f" after {change}")]


#: The one-sided p-value under which an accuracy below the majority rate is read as scores in another
#: class order (:func:`chance_legend`), and the fewest rows that may say so.
_SWAPPED_P, _SWAPPED_MIN_ROWS = 1e-4, 20


def _far_below_chance(accuracy: float, chance: float, n: int | None) -> bool:
    """Whether ``accuracy`` on ``n`` rows is below ``chance`` (the majority rate) by more than noise: the
    one-sided binomial p-value of so few hits at rate ``chance`` under :data:`_SWAPPED_P`, on at least
    :data:`_SWAPPED_MIN_ROWS` rows. ``--classes yes,no`` over P(yes) scored 0.025 where always 'no'
    scores 0.65, and the line said only "no better than chance" (audit).

    The p-value is bounded by Chernoff's ``exp(-n KL(accuracy || chance))``, which is never below it: the
    line is said only when the exact p-value is smaller still, in O(1) and without SciPy, which
    ``evaluate`` does not import (a large part of a small command's time).
    """
    import math

    if n is None or n < _SWAPPED_MIN_ROWS or not 0 < chance < 1 or accuracy >= chance:
        return False
    kl = (accuracy * math.log(accuracy / chance) if accuracy > 0 else 0.0) \
        + (1 - accuracy) * math.log((1 - accuracy) / (1 - chance))
    return -n * kl < math.log(_SWAPPED_P)


#: What :func:`count_legend` advises for a class's count that is off, on logits and on probabilities. Temperature
#: scaling, calibrate's default, has no intercept: on fresh rows of a model with the odds x3 it left the mean
#: P(yes) at 0.0345 where Platt scaling gave 0.0253, for 0.0255 observed (audit BX). Platt scaling on the
#: probabilities themselves has a floor under every class (:func:`_floor_caution`; review R19): not advised there.
_COUNT_ADVICE = {
    False: ("a calibrator fitted on held-out rows that can shift a class's probabilities up or down (softmaxkit "
            "calibrate --method platt, or vector; temperature scaling, the default, cannot) may fix it"),
    True: ("a calibrator fitted on held-out rows that can shift a class's probabilities up or down (softmaxkit "
           "calibrate --method vector on logits, or isotonic; temperature scaling, the default, cannot) may fix it"),
}


def count_legend(summary: dict, classes: list | None, *, probs: bool = False) -> list[str]:
    """The line under a metrics table (``evaluate``) when a class's predicted count is off its observed
    count (:func:`softmaxkit.cli._adapters.class_count_test`); empty otherwise. The verdicts of
    ``calibrate``/``fit``/``demo`` say it; ``evaluate`` has no verdict and recorded it in JSON only. It advises
    a calibrator that can move a class's level (:data:`_COUNT_ADVICE`; ``probs``: the scores summarised are
    probabilities, where Platt scaling has a floor), except under :func:`chance_legend`'s line on scores in the
    other class order, which no calibrator should be fitted over."""
    swapped = _far_below_chance(summary.get("accuracy", 1.0), summary.get("majority_rate", 0.0), summary.get("n"))
    advice = "check the class order first (above)" if swapped else _COUNT_ADVICE[bool(probs)]
    clause = _count_miss(summary, classes, when="after", ece="shown",  # nothing else there reads the ECE's test
                         advice=advice)
    return [] if clause is None else [clause[0].upper() + clause[1:]]


def ece_test_legend(summary: dict, classes: list | None) -> list[str]:
    """The line under a one-column metrics table (``evaluate``) when the ECE's test of perfect calibration
    rejects, where :func:`count_legend` does not already say so (audit BX: ``evaluate --ci`` showed ECE 0.0300
    over its threshold 0.0139 and said nothing); empty otherwise, and without ``--ci`` (no test is run)."""
    if not _miscalibrated(summary) or _count_miss(summary, classes, when="after") is not None:
        return []
    return [f"ECE {_ece_figures(summary)[0]} is {_noise_words(summary)}: miscalibrated."
            f"{_interval_reaches_zero(summary)}"]


#: Past this share of the measured rows in one of the ECE's equal-width bins, the text says that the ECE cannot
#: see differences within that bin and gives the equal-mass ECE beside it (:func:`crowded_legend`).
CROWDED_BIN_SHARE = 0.5

#: ... and only with at least this many rows in that bin: "67% of the rows" of a 3-row file is 2 rows, among
#: which there is nothing for the ECE to miss (review R19).
CROWDED_BIN_MIN_ROWS = 30


def _crowded(summary: dict) -> bool:
    """Whether more than :data:`CROWDED_BIN_SHARE` of the summary's rows, and at least
    :data:`CROWDED_BIN_MIN_ROWS`, share one bin of its ECE (its ``largest_bin_share`` of ``n``): the ECE weighs
    that bin's mean confidence against its accuracy and nothing inside it (audit BX: a risk order reversed among
    the 90% of rows under P(yes) = 1/15, AUC 0.50, read ECE 0.0073, as the true probabilities did)."""
    share = summary.get("largest_bin_share")
    return (share is not None and share > CROWDED_BIN_SHARE
            and round(share * summary.get("n", 0)) >= CROWDED_BIN_MIN_ROWS)


def _top_label_only(summary: dict) -> bool:
    """Whether the summary's rows crowd into one ECE bin (:func:`_crowded`) and its equal-mass ECE's test rejects
    there: a reading of the top-label ECE within the noise is then that ECE's alone, said as such (review R19:
    "no miscalibration detected" opened a verdict whose later sentence read "p = 0.01: miscalibrated")."""
    return _crowded(summary) and _equal_mass_rejects(summary)


def _share_text(share: float) -> str:
    """A share as a whole percentage, never rounded to 100% when some rows are left."""
    return ">99%" if 0.99 < share < 1 else f"{share:.0%}"


def _bin_text(summary: dict) -> str:
    low, high = summary["largest_bin"]
    return f"[{low:.3g}, {high:.3g}]"


def _equal_mass_words(summary: dict, *, tested: bool = True, side: str = "", short: bool = False) -> str:
    """The summary's equal-mass ECE (``ece_quantile``) with its test where run: "0.0256 (above the 0.0105 that
    perfectly calibrated models stay under 95% of the time, p <= 0.005: miscalibrated)", "0.0070 (within what a
    perfectly calibrated model shows, p = 0.14)", or the value alone; ``short`` (a verdict, under a table that
    gives the threshold): "0.0256 (p <= 0.005: miscalibrated)". ``side`` (" before") follows the value;
    ``tested=False``: "not tested" (on a map's fitting rows, as :func:`_in_sample_ece_reading` leaves the ECE)."""
    from softmaxkit._ece import TEST_LEVEL
    from softmaxkit.report import distinct

    value, limit, p = (summary.get(f"ece_quantile{k}") for k in ("", "_noise_threshold", "_p_calibrated"))
    if not tested:
        return f"{value:.4f}{side} (not tested: measured on the rows the map was fitted on)"
    if limit is None or p is None:
        return f"{value:.4f}{side}"
    value_text, limit_text = distinct(value, limit)
    if _equal_mass_rejects(summary):
        return f"{value_text}{side} ({_p_text(p)}: miscalibrated)" if short else (
            f"{value_text}{side} (above the {limit_text} that perfectly calibrated models stay under "
            f"{TEST_LEVEL:.0%} of the time, {_p_text(p)}: miscalibrated)")
    return f"{value_text}{side} ({_p_text(p)}: within what a perfectly calibrated model shows)" if short else (
        f"{value_text}{side} (within what a perfectly calibrated model shows, {_p_text(p)})")


def one_column_legends(summary: dict, classes: Any, *, probs: bool = False) -> list[str]:
    """The lines under a one-column metrics table (``evaluate``, ``predict --target``), after the Brier and
    interval legends: rows with probability 0 on their true class, accuracy at chance, a class's count off,
    the ECE test's rejection and a crowded bin. ``probs``: the scores are probabilities (the count advice)."""
    return [*lost_legend({"": summary}), *chance_legend(summary), *count_legend(summary, classes, probs=probs),
            *ece_test_legend(summary, classes), *crowded_legend({"": summary})]


def crowded_legend(columns: dict[str, dict]) -> list[str]:
    """The line under a metrics table for each column (name: summary; "" for a table of one) whose rows crowd
    into one ECE bin (:func:`_crowded`): its share and bin, that the ECE cannot see differences within that bin
    (it does see the bin's average gap), and the equal-mass ECE beside it (:func:`_equal_mass_words`); empty
    where no column's do. A before/after table leaves it to the verdict under it (:func:`_crowded_sentence`)."""
    lines = []
    for name, s in columns.items():
        if _crowded(s):
            text = (f"{_share_text(s['largest_bin_share'])} of the rows fall in one confidence bin {_bin_text(s)}: "
                    "the ECE cannot see differences within that bin; the equal-mass ECE (bins of equal row counts) "
                    f"is {_equal_mass_words(s)}.")
            lines.append(f"{name}: {text}" if name else text)
    return lines


def _crowded_sentence(before: dict, after: dict, *, in_sample: bool) -> str:
    """The verdict's sentence (leading " ") where either side's rows crowd into one ECE bin (:func:`_crowded`):
    which share and bin, and the equal-mass ECE of both sides, the after side untested on the map's fitting rows;
    "" otherwise."""
    sides = [(w, s) for w, s in (("before", before), ("after", after)) if _crowded(s)]
    if not sides:
        return ""
    one_bin = len({_bin_text(s) for _, s in sides}) == 1
    if one_bin:
        shares = " and ".join(f"{_share_text(s['largest_bin_share'])}{' of the rows' if i == 0 else ''} {w}"
                              for i, (w, s) in enumerate(sides))
        where = f"{shares} fall in one confidence bin {_bin_text(sides[0][1])}"
    else:
        where = " and ".join(f"{_share_text(s['largest_bin_share'])}{' of the rows' if i == 0 else ''} {w} "
                             f"{'fall in one confidence bin' if i == 0 else 'in'} {_bin_text(s)}"
                             for i, (w, s) in enumerate(sides))
    return (f" {where}: the ECE cannot see differences within {'that bin' if one_bin else 'those bins'}. The "
            f"equal-mass ECE (bins of equal row "
            f"counts) is {_equal_mass_words(before, side=' before', short=True)} and "
            f"{_equal_mass_words(after, side=' after', tested=not in_sample, short=True)}.")


def lost_legend(columns: dict[str, dict]) -> list[str]:
    """The line under a metrics table for each column (name: summary; "" for a table of one) with rows whose
    true class has probability 0 (``rows_lost``), in the words of a paired change's reading: its log-loss is
    infinite, which "inf [inf, inf]" alone did not explain (audit BX)."""
    lines = []
    for name, s in columns.items():
        lost = s.get("rows_lost")
        if lost:
            said = f"{lost} of {s['n']} rows get probability 0 on their true class"
            lines.append(f"{name}: log-loss inf, as {said}." if name else f"Log-loss inf: {said}.")
    return lines


#: A card's words for a calibrated log-loss's reading (``log_loss_change["reading"]``) where its own would
#: mislead there: "worse" is the verdict's "keep the raw model", "unsafe" no interval's reading.
_CARD_READINGS = {"worse": "measured worse: keep the raw model",
                  "unsafe": "unsafe: it can give a class probability 0"}


def loss_card_reading(loss_change: dict | None) -> str | None:
    """How a log-loss card (``fit --calibrate``'s, ``calibrate``'s) reads the change beside its two figures, as
    the verdict reads it (:func:`paired_loss_change`): "change: better", "measured worse: keep the raw model";
    None without a change."""
    reading = (loss_change or {}).get("reading")
    return _CARD_READINGS.get(reading, f"change: {reading}") if reading else None


def accuracy_headline(summary: dict, caption: str) -> Any:
    """The "Held-out accuracy" headline card, good only above the chance level.

    Chance is ``majority_rate``, what always naming the most frequent class
    scores; at or below it the card warns and says so (audit: 40% on a 50/50
    problem was shown in green).
    """
    from softmaxkit.report import Headline

    acc, chance = summary["accuracy"], summary.get("majority_rate")
    if chance is not None and acc <= chance:
        caption = (f"{caption}; no better than always naming the most frequent class "
                   f"({chance * 100:.1f}%)")
        return Headline("Held-out accuracy", f"{acc * 100:.1f}%", caption, "warn")
    return Headline("Held-out accuracy", f"{acc * 100:.1f}%", caption, "good")


def _overlap(before: dict, after: dict) -> bool:
    """Whether the two ECE intervals overlap. Both are intervals for the population's ECE (bias-corrected,
    so an estimate may lie above its own interval): their overlap, not an estimate inside the other's
    interval, says the change is within the uncertainty."""
    nan = (float("nan"), float("nan"))
    (lo_b, hi_b), (lo_a, hi_a) = before.get("ece_ci") or nan, after.get("ece_ci") or nan
    return bool(lo_b <= hi_a and lo_a <= hi_b)


def print_comparison(printer: Printer, scored: list[Scored], *, heading: str, n_classes: int) -> None:
    """The metrics of each ``Scored`` side by side, as text (and :func:`brier_legend` for two classes), with the
    lines on intervals withheld, rows lost (:func:`lost_legend`) and, for a table of one, crowded ECE bins
    (:func:`crowded_legend`): under a before/after table the verdict says it once for both sides, the after side
    untested on a map's fitting rows (review R19: a line per side, then the verdict again, and the table's
    line tested the in-sample after side that the verdict left untested)."""
    columns = {s.name: s.summary for s in scored}
    printer(heading, *metrics_lines(columns), *brier_legend(n_classes), *ci_legend(columns.values()),
            *lost_legend(columns), *(crowded_legend(columns) if len(scored) == 1 else ()), "")


def metrics_lines(columns: dict[str, dict]) -> list[str]:
    """A text table of summaries with intervals (``ci``), one column per name: accuracy, log-loss, Brier score
    and ECE, each with its 95% interval or "(no CI: ...)" (:func:`softmaxkit.report.value_text`; the reasons
    go under the table, :func:`ci_legend`), and the ECE's noise floor. A metric a row, as three intervals in
    one row run past 100 characters."""
    from softmaxkit.report import fmt, value_text

    summaries = list(columns.values())
    rows = [
        ["accuracy", *(fmt(s["accuracy"]) for s in summaries)],
        ["log-loss [95% CI]", *(value_text(s, "log_loss") for s in summaries)],
        ["Brier score [95% CI]", *(value_text(s, "brier") for s in summaries)],
        ["ECE [95% CI]", *(value_text(s, "ece") for s in summaries)],
        ["ECE noise floor", *(fmt(s.get("ece_noise_floor")) for s in summaries)],
    ]
    return text_table(*_left_aligned(["metric", *columns], rows))


def _left_aligned(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """``header`` and ``rows`` with every cell padded to its column's width, so that ``text_table`` (which
    right-aligns a column of numbers) leaves them left-aligned: "0.4120 [0.3710, 0.4580]" and "0.9000" then
    start, not end, in one place, and the values line up on their decimal point."""
    widths = [max(len(str(r[j])) for r in [header, *rows]) for j in range(len(header))]
    pad = lambda row: [str(c).ljust(w) for c, w in zip(row, widths)]  # noqa: E731
    return pad(header), [pad(r) for r in rows]


#: How :func:`ci_legend` names the metrics whose interval a note withholds.
_CI_NAMES = {"log_loss": "log-loss", "brier": "Brier score"}


def ci_legend(summaries: Any) -> list[str]:
    """The lines under a table that shows a metric with "(no CI: ...)": why, each reason once. The ECE's
    ``ece_ci_note`` as it is; a loss's (``log_loss_ci_note``, ``brier_ci_note``) after the names of the
    metrics it withholds ("log-loss and Brier score: no CI: 3 rows of class 'malignant'; at least 5
    needed")."""
    summaries = list(summaries)
    named: dict[str, list[str]] = {}  # note -> the metrics it withholds, in table order
    for s in summaries:
        for key, name in _CI_NAMES.items():
            note = s.get(f"{key}_ci_note")
            if note and name not in named.setdefault(note, []):
                named[note].append(name)
    ece = [s["ece_ci_note"] for s in summaries if s.get("ece_ci_note")]
    return list(dict.fromkeys([*(f"{' and '.join(names)}: {note}" for note, names in named.items()), *ece]))


#: The name ``evaluate`` and ``predict`` import (:func:`ci_legend` gives every interval's reason, not the ECE's
#: only).
ece_ci_legend = ci_legend


def comparison_section(scored: list[Scored], *, title: str, intro: str, note: tuple[str, str] | None = None,
                       loss_change: dict | None = None, accuracy_change: dict | None = None) -> Any:
    """A report section: intro, verdict, the metrics table and one reliability diagram per ``Scored``.

    With two columns (before, after) a row's better value is marked green only where the change is measured,
    as the verdict reads it (audit: the lower log-loss and ECE were green beside "within the noise"): the
    log-loss and Brier score when ``loss_change`` (:func:`paired_loss_change`) reads better or worse on
    held-out rows, the ECE when the two intervals do not overlap, accuracy when ``accuracy_change``
    (:func:`paired_accuracy_change`) reads better or worse (it was marked whenever it differed, beside a
    caption promising measured changes only).
    """
    from softmaxkit.report import Figure, Note, Paragraph, Section, metrics_table

    blocks: list[Any] = [Paragraph(intro)]
    if note is not None:
        blocks.append(Note(*note))
    mark = None  # several columns: every row's best is marked
    # one column has no best to mark: no caption promising green (audit BT, evaluate --report)
    caption = "Best value per row in green." if len(scored) > 1 else ""
    if len(scored) == 2:
        measured = loss_change is not None and loss_change["reading"] in ("better", "worse")
        apart = all(s.summary.get("ece_ci") for s in scored) and not _overlap(scored[0].summary, scored[1].summary)
        accurate = accuracy_change is not None and accuracy_change["reading"] in ("better", "worse")
        mark = {*(("accuracy",) if accurate else ()), *(("log_loss", "brier") if measured else ()),
                *(("ece",) if apart else ())}
        caption = ("The better value in green where the change is measured (log-loss and Brier score: the paired "
                   "interval of the log-loss change excludes 0 on held-out rows; ECE: the intervals do not "
                   "overlap; accuracy: the exact McNemar test, p < 0.05, on held-out rows); within the noise, "
                   "none.")
    why = "".join(f" {line[0].upper()}{line[1:]}." for line in ci_legend(s.summary for s in scored))
    columns = {s.name if len(scored) > 1 else "": s.summary for s in scored}
    # a crowded bin: the verdict of a before/after page says it (print_comparison)
    why += "".join(f" {line}" for line in [*lost_legend(columns),
                                           *(crowded_legend(columns) if len(scored) == 1 else ())])
    brackets = _brackets([s.summary for s in scored])
    blocks.append(
        metrics_table(
            {s.name: s.summary for s in scored},
            caption=f"{caption}{brackets}{why}".strip(),
            mark=mark,
        )
    )
    for s in scored:
        if s.png is not None:
            blocks.append(
                Figure(
                    name=f"reliability_{s.key}",
                    png=s.png,
                    title=f"Reliability: {s.name}.",
                    caption="Bars on the diagonal mean the stated confidence matches how often it is right.",
                )
            )
    return Section(title, blocks)


def _brackets(summaries: list[dict]) -> str:
    """The caption's sentence on the intervals in brackets, naming how each shown one is made ("" for none)."""
    how = [*(["log-loss and Brier score: a t interval of the mean per-row loss on the log scale"]
             if any(s.get("log_loss_ci") or s.get("brier_ci") for s in summaries) else []),
           *(["ECE: bootstrap"] if any(s.get("ece_ci") for s in summaries) else [])]
    return f" Brackets: 95% confidence intervals ({'; '.join(how)})." if how else ""


def metrics_by_key(scored: list[Scored]) -> dict[str, dict]:
    return {s.key: s.summary for s in scored}
