"""Conformal prediction sets in the CLI: options, fitting, set columns, printed tables and report sections.

The commands call these helpers and hold a few lines each:

* ``calibrate --conformal 0.1[,0.05]`` fits a :class:`~softmaxkit.conformal.ConformalClassifier`
  on the same rows as the calibrator and saves it next to it (``--conformal-out``);
* ``predict --conformal FILE --sets 0.1`` writes each row's set;
* ``evaluate --conformal FILE --sets 0.1`` scores the sets (coverage, sizes);
* ``demo`` shows the held-out cases' sets at 90% and 95%.

The conformal classifier is fitted on the model's own probabilities (the
softmax of the logits as given), not on the calibrated ones: the calibrator is
fitted on the same rows, and scores that depend on those rows would break the
exchangeability the coverage guarantee rests on. A set is a statement about
which classes cannot be ruled out, so it needs no calibrated probabilities to
be valid; for two classes, temperature scaling does not change LAC sets at all
(it keeps the order of ``p``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from softmaxkit.cli import CLIError, UsageError
from softmaxkit.cli._common import parse_number, with_article

SCORES = ("lac", "aps", "raps")
DEFAULT_SCORE = "lac"
#: Levels the demo shows: 90% and 95% sets.
DEMO_ALPHAS = (0.1, 0.05)

EXPLANATION = (
    "A prediction set lists every class the model cannot rule out. Split conformal prediction picks one "
    "threshold from held-out calibration rows so that, for new rows like them, the set contains the true class "
    "for at least 90% of rows (at the 90% level), whatever the model: a guarantee from the data, not a model "
    "assumption. Averaged over calibration draws the coverage lies between the level and the level + 1/(n+1), "
    "n the number of calibration rows (only \">= level\" is shown where calibration scores tie at the threshold, "
    "as with probabilities of exactly 1: coverage can then be well above it); one test set's measured coverage "
    "scatters around that (its 95% interval is "
    "shown). A confident row gets one class; a doubtful one gets several."
)
BY_CLASS_EXPLANATION = (
    "These sets have one threshold per class (Mondrian conformal prediction, calibrate --conformal-by-class), "
    "each picked from the calibration rows of that class alone, so the guarantee holds within every class: at the "
    "90% level the set contains the true class for at least 90% of the rows of each class, a rare one included, "
    "not only of all rows together. The price is larger sets where a class has few calibration rows; a class with "
    "fewer than 1/alpha - 1 of them (9 at 90%, 19 at 95%) has no threshold of its own and is in every set."
)
TWO_CLASS_NOTE = (
    "With two classes, a set holding both means \"we cannot tell\": at this level neither answer can be ruled "
    "out, so the case needs another look (a second test, an expert). An empty set means neither class is "
    "plausible enough to pass the threshold; it is a miss by design, the price of spending the allowed 10% (or "
    "5%) of misses where the model is least sure, and should be read as \"we cannot tell\" too."
)


# --------------------------------------------------------------------------- options


def levels(text: str) -> tuple[float, ...]:
    """argparse type: miss rates ``alpha`` in (0, 1), comma separated (``0.1`` or ``0.1,0.05``)."""
    out = []
    for part in text.split(","):
        try:
            value = parse_number(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected miss rates like 0.1 or 0.1,0.05, got {text!r}") from None
        if not 0.0 < value < 1.0:
            raise argparse.ArgumentTypeError(
                f"a miss rate must be strictly between 0 and 1 (0.1 gives 90% sets), got {part!r}")
        out.append(value)
    tags = [level_tag(a) for a in out]
    repeated = next((t for t in tags if tags.count(t) > 1), None)
    if repeated is not None:  # one set_90 pair would hold only the last of them (audit)
        given = [part.strip() for part, t in zip(text.split(","), tags) if t == repeated]
        raise argparse.ArgumentTypeError(
            f"{text!r} gives the level {repeated}% more than once ({', '.join(given)}); give each level once")
    return tuple(out)


def add_calibrate_options(p: argparse.ArgumentParser) -> None:
    """``calibrate``'s ``--conformal``, ``--conformal-score``, ``--conformal-by-class`` and ``--conformal-out``."""
    g = p.add_argument_group("prediction sets (conformal)")
    g.add_argument("--conformal", type=levels, metavar="ALPHA[,ALPHA]",
                   help="also fit a conformal predictor on the same rows and report its sets' coverage and sizes "
                   "at these miss rates (0.1: sets that hold the true class for >= 90%% of rows)")
    # No argparse default, so that the score given without --conformal can be refused (conformal_out);
    # fit() reads DEFAULT_SCORE then.
    g.add_argument("--conformal-score", choices=SCORES,
                   help="lac: smallest sets; aps/raps: sets that grow where the model is unsure "
                   f"(default: {DEFAULT_SCORE})")
    g.add_argument("--conformal-by-class", action="store_true",
                   help="one threshold per class (Mondrian conformal prediction), from that class's rows: the sets "
                   "hold the true class for >= 90%% of the rows of EACH class, not only of all rows together (a "
                   "rare class is covered too), at the price of larger sets for rare classes; a class needs at "
                   "least 1/ALPHA - 1 calibration rows (9 at 0.1), else it is in every set")
    g.add_argument("--conformal-out", metavar="FILE",
                   help="where to save the conformal predictor (default: next to --out, as NAME.conformal.npz)")


def add_set_options(p: argparse.ArgumentParser, *, what: str) -> None:
    """``--conformal FILE`` and ``--sets ALPHA[,ALPHA]`` for ``predict`` and ``evaluate``."""
    g = p.add_argument_group("prediction sets (conformal)")
    g.add_argument("--conformal", metavar="FILE", help="a conformal predictor saved by 'calibrate --conformal'")
    g.add_argument("--sets", type=levels, metavar="ALPHA[,ALPHA]",
                   help=f"{what} at these miss rates (0.1: sets holding the true class for >= 90%% of rows); "
                   "needs --conformal")


def conformal_out(args: argparse.Namespace) -> str | None:
    """The path ``calibrate`` saves the conformal predictor to, or None without ``--conformal``.

    Also ``calibrate``'s ``check`` hook: a bad combination is a usage error, before any file is read.
    """
    from softmaxkit.io import same_entry

    if not getattr(args, "conformal", None):
        for option in ("conformal_out", "conformal_by_class", "conformal_score"):
            if getattr(args, option, None):
                raise UsageError(f"--{option.replace('_', '-')} needs --conformal ALPHA (the miss rates to report)")
        return None
    if args.conformal_out:
        if same_entry(args.conformal_out, args.out):  # by identity: one folder may be reached by two paths
            raise UsageError(f"--conformal-out {args.conformal_out} is also --out; the calibrator and the conformal "
                           "predictor need two files")
        return args.conformal_out
    return default_conformal_path(args.out)


def default_conformal_path(out: str) -> str:
    """Where ``calibrate --out OUT --conformal`` saves the predictor without ``--conformal-out``:
    ``cal.npz`` -> ``cal.conformal.npz``."""
    path = Path(out)
    return str(path.with_name(f"{path.stem}.conformal{path.suffix}"))


def check_set_options(args: argparse.Namespace) -> None:
    """``--sets`` and ``--conformal`` come together: ``predict``'s and ``evaluate``'s ``check`` hook
    (a usage error, exit code 2, before any file is read)."""
    if bool(args.sets) != bool(args.conformal):
        missing = "--conformal FILE" if args.sets else "--sets ALPHA"
        raise UsageError(f"{'--sets' if args.sets else '--conformal'} needs {missing}")
    out = getattr(args, "out", None)
    if args.sets and out and out.lower().endswith(".npy"):
        # One unnamed matrix would mix probabilities and set flags, and read back as more classes.
        raise UsageError(f"--out {out}: a .npy file holds one unnamed matrix, no room for the set columns; "
                         "use .csv, .parquet, .npz or .safetensors with --sets")


# --------------------------------------------------------------------------- the scores sets are made from

#: Meta entry of a conformal predictor saved by ``calibrate --conformal``: the top-class probabilities of the
#: rows it was fitted on (:func:`top_probability_record`), which :func:`check_scores_like_calibration` holds
#: the scores of new rows against. Files saved before it existed are not checked.
TOP_PROBABILITIES_KEY = "calibration_top_probabilities"
#: At most this many of them are saved, as evenly spaced order statistics: the two-sample test's power comes
#: from the smaller sample, and a record of 1,000 numbers keeps the file small.
_TOP_KEPT = 1000
#: New rows below this count are not tested: too few to tell two distributions apart.
_TEST_MIN_ROWS = 50
#: Kolmogorov-Smirnov p-value below which the new rows' scores are said unlike the calibration rows'. Strict:
#: rows like the calibration rows are flagged 1 time in 10,000, a real mismatch (the audit's, D ~ 0.5 over
#: hundreds of rows) at p far below it.
_UNLIKE_P = 1e-4
#: ... and at or above which the calibrated scores of the new rows are said to match them.
_LIKE_P = 0.01


def top_probabilities(scores: Any, *, probs: bool) -> np.ndarray:
    """Each finite row's largest probability (of logits, the softmax's: ``1 / sum exp(z - max z)``), sorted;
    read in row blocks, so a memory-mapped file is not copied."""
    parts = []
    # blocks of about 32 MiB in float64 whatever the width: 4096 rows of a 32k vocabulary were 1 GB and as
    # much again for the exp, and calibrate --conformal peaked at 1920 MB for 347 MB of work (audit CE)
    rows = max(1, (32 << 20) // (8 * max(1, scores.shape[1])))
    for start in range(0, len(scores), rows):
        block = np.asarray(scores[start:start + rows], dtype=np.float64)
        if probs:
            top = block.max(axis=1)
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                top = 1.0 / np.exp(block - block.max(axis=1, keepdims=True)).sum(axis=1)
        parts.append(top[np.isfinite(top)])
    return np.sort(np.concatenate(parts)) if parts else np.empty(0)


def top_probability_record(scores: Any, *, probs: bool) -> dict:
    """What ``calibrate --conformal`` saves of the scores the predictor is fitted on
    (:data:`TOP_PROBABILITIES_KEY`): their row count ``n`` and their top-class probabilities ``top``, at
    most :data:`_TOP_KEPT` of them, evenly spaced in sorted order."""
    top = top_probabilities(scores, probs=probs)
    kept = top[np.unique(np.round(np.linspace(0, top.size - 1, min(top.size, _TOP_KEPT))).astype(np.int64))]
    return {"n": int(top.size), "top": [float(v) for v in kept]}


def check_scores_like_calibration(path: str, scores: Any, *, probs: bool, where: str,
                                  calibrated_probs: Any = None) -> None:
    """Warn when the rows whose sets are made from ``scores`` are unlike the rows the predictor at ``path`` was
    fitted on, by their top-class probabilities (no label needed): a two-sample Kolmogorov-Smirnov test
    against the saved record (:data:`TOP_PROBABILITIES_KEY`) at p < :data:`_UNLIKE_P`.

    The coverage guarantee holds for rows exchangeable with the calibration rows. The natural chain of a user
    who always passes a calibrator broke it without a word: ``predict --calibrator`` output given to
    ``calibrate --conformal``, then ``predict --calibrator --conformal``, whose sets come from the model's own
    scores: 90% sets covered 0.669, exit 0 (audit BV). Where ``calibrated_probs`` (the new rows' calibrated
    probabilities, which the command has computed already: no second softmax pass)
    match the record (p >= :data:`_LIKE_P`), the warning says that the predictor looks fitted on calibrated
    probabilities. Nothing is said for fewer than :data:`_TEST_MIN_ROWS` rows, or for a predictor saved
    without the record (by the library, or by an earlier version).
    """
    record = _saved_top_probabilities(path)
    if record is None or len(scores) < _TEST_MIN_ROWS:
        return
    import warnings

    saved = np.asarray(record["top"], dtype=np.float64)
    new = top_probabilities(scores, probs=probs)
    if saved.size < 2 or new.size < _TEST_MIN_ROWS:
        return
    raw = _ks(saved, new)
    if raw.pvalue >= _UNLIKE_P:
        return
    found = f"Kolmogorov-Smirnov D = {raw.statistic:.3f}, {_p_words(raw.pvalue)}"
    if calibrated_probs is not None:
        matched = _ks(saved, top_probabilities(calibrated_probs, probs=True))
        if matched.pvalue >= _LIKE_P:
            warnings.warn(
                f"--conformal {path}: the top-class probabilities of its {record['n']} calibration rows are "
                f"distributed as those of the {len(new)} rows of {where} after the calibrator (p = "
                f"{matched.pvalue:.2g}), not as the model's own ({found}): it looks fitted on calibrated "
                "probabilities (predict --calibrator output), while the sets are made from the model's own scores, "
                "so their coverage is not the level's; fit it with calibrate --conformal on scores written without "
                "--calibrator", stacklevel=2)
            return
    warnings.warn(
        f"--conformal {path}: the top-class probabilities of the {len(new)} rows of {where} are distributed unlike "
        f"those of the {record['n']} calibration rows it was fitted on ({found}): the coverage guarantee holds for "
        "rows like those; scores that are calibrated, another model's or of other data give sets of another "
        "coverage", stacklevel=2)


def _ks(a: np.ndarray, b: np.ndarray) -> Any:
    """The two-sample Kolmogorov-Smirnov test, by its asymptotic distribution: scipy's exact method fails
    on tied samples of equal size (a random forest's probabilities) and said so, on correct input, as a
    RuntimeWarning the CLI printed as its own (review R18); the threshold p < 1e-4 needs no exact p."""
    from scipy.stats import ks_2samp

    return ks_2samp(a, b, method="asymp")


def _p_words(p: float) -> str:
    """``p = 3e-07``, or ``p < 1e-12`` below that, where the digits say nothing more (it printed 1e-321)."""
    return "p < 1e-12" if p < 1e-12 else f"p = {p:.1g}"


def _saved_top_probabilities(path: str) -> dict | None:
    """The :data:`TOP_PROBABILITIES_KEY` record of the predictor at ``path``, or None (none, or malformed)."""
    from softmaxkit.io import ModelFileError, read_state

    try:
        record = read_state(path)[1].get(TOP_PROBABILITIES_KEY)
    except ModelFileError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("top"), list) or not isinstance(
            record.get("n"), int):
        return None
    return record


# --------------------------------------------------------------------------- library calls


def fit(scores: np.ndarray, labels: np.ndarray, *, probs: bool, score: str | None, seed: int = 0,
        classes: Any = None, class_conditional: bool = False) -> Any:
    """A conformal classifier fitted on (n, K) logits (or probabilities) and class indices.

    ``classes``: the names of the columns, given to the predictor before the fit, so that its warning on a
    class without calibration rows names it as the file does (and saved with it).
    ``class_conditional``: one threshold per class (``calibrate --conformal-by-class``), saved with it.
    ``score``: ``--conformal-score``, None when not given (:data:`DEFAULT_SCORE`)."""
    from softmaxkit.cli._adapters import remember_classes
    from softmaxkit.conformal import ConformalClassifier

    conformal = ConformalClassifier(score=score or DEFAULT_SCORE, input="probs" if probs else "logits", random_state=seed,
                                    class_conditional=class_conditional)
    remember_classes(conformal, classes)
    return conformal.fit(scores, labels)


def load(path: str, *, n_classes: int | None = None, against: str = "") -> Any:
    """The conformal predictor saved at ``path``; another kind of file, or one fitted on another class
    count than ``n_classes`` (of ``against``, e.g. the model), is refused naming it, before any data is read."""
    from softmaxkit.conformal import ConformalClassifier
    from softmaxkit.io import load as load_saved

    obj = load_saved(path)
    if not isinstance(obj, ConformalClassifier):
        raise CLIError(f"--conformal {path}: holds {with_article(type(obj).__name__)}, not a conformal predictor "
                       "(saved by 'calibrate --conformal')")
    if n_classes is not None and int(obj.n_classes_) != n_classes:
        raise CLIError(f"--conformal {path}: the conformal predictor was fitted on {int(obj.n_classes_)} classes, "
                       f"but {against} has {n_classes}")
    _warn_absent_classes(obj, path)
    return obj


def _warn_absent_classes(conformal: Any, path: str) -> None:
    """Say again, naming ``path``, the warning the fit gave when no calibration row held a class: ``predict``,
    ``apply`` and ``evaluate`` use the saved predictor long after that warning scrolled by (audit BH-F2:
    "guaranteed (mean) 0.900-0.902" over 41 rows of such a class, ``warnings: []``). The library's own text
    (:meth:`~softmaxkit.conformal.ConformalClassifier._warn_absent_classes`), so both say the same."""
    import warnings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        conformal._warn_absent_classes(conformal.class_counts_)
    for w in said:
        warnings.warn(f"--conformal {path}: {w.message}", stacklevel=3)


def absent_classes(conformal: Any, classes: Any) -> list[str]:
    """The names of the classes none of ``conformal``'s calibration rows held (its ``class_counts_`` of 0):
    by the names it was fitted with (``class_names_``), else by ``classes``, the columns in its order."""
    names = _predictor_class_names(conformal, classes)
    return [names[j] for j in np.flatnonzero(np.asarray(conformal.class_counts_) == 0)]


def _predictor_class_names(conformal: Any, classes: Any) -> list[str]:
    """The name of each of ``conformal``'s classes: the names it was fitted with (``class_names_``), else
    ``classes`` (the columns in its order), else the column index."""
    fitted = getattr(conformal, "class_names_", None)
    names = fitted if fitted is not None else classes
    return [str(names[j]) if names is not None and j < len(names) else str(j)
            for j in range(int(conformal.n_classes_))]


def rows_needed(alpha: float) -> int:
    """The fewest calibration rows whose split-conformal threshold at ``alpha`` is finite:
    ``ceil((n + 1)(1 - alpha)) <= n`` holds exactly when ``n >= 1/alpha - 1`` (9 rows at 0.1, 19 at 0.05).

    ``alpha`` is read as the decimal it prints as, as the library reads it
    (:func:`softmaxkit.conformal.min_calibration_rows`), so 0.1 needs 9 rows, not 10."""
    from softmaxkit.conformal import min_calibration_rows

    return min_calibration_rows(alpha)


def thin_classes(conformal: Any, alphas: tuple[float, ...], classes: Any) -> dict[str, list[dict]]:
    """For a class-conditional predictor, the classes with too few calibration rows for a level, by level
    (:func:`level_name`): ``[{"class", "rows", "needed"}]``. Such a class has no finite threshold of its own
    there, so it is in every set of that level. Empty for a marginal predictor (one threshold from all rows)."""
    if not getattr(conformal, "class_conditional", False):
        return {}
    names = _predictor_class_names(conformal, classes)
    counts = np.asarray(conformal.class_counts_)
    out = {}
    for a in alphas:
        needed = rows_needed(a)
        thin = [{"class": names[j], "rows": int(counts[j]), "needed": needed}
                for j in np.flatnonzero(counts < needed)]
        if thin:
            out[level_name(a)] = thin
    return out


def thin_class_lines(thin: dict[str, list[dict]]) -> list[str]:
    """A warning line for each level of :func:`thin_classes`: which classes are in every set, their rows and
    the rows they need. One line per level, not the library's one per class and level (its
    ``ThinClassWarning``, which :class:`PendingSets` holds back for the CLI's). No final period."""
    from softmaxkit._loss_interval import name_list

    out = []
    for name, under in thin.items():
        needed = under[0]["needed"]
        listed = name_list([f"{c['class']!r} ({c['rows']} row{'s' * (c['rows'] != 1)})" for c in under],
                           noun="classes")
        one = len(under) == 1
        which, them, its = (f"class {listed} has", "it", "its") if one else (f"classes {listed} have", "them", "their")
        out.append(f"One threshold per class (--conformal-by-class): at {name} a class needs at least {needed} "
                   f"calibration rows for a threshold of its own, and {which} fewer, so {them} "
                   f"{'is' if one else 'are'} in every {name} set: {its} rows are covered by construction, not by a "
                   f"threshold, and the set of every other row holds {them} too (label more rows of {them}, or use a "
                   "larger miss rate)")
    return out


def warn_thin_classes(conformal: Any, alphas: tuple[float, ...], classes: Any) -> dict[str, list[dict]]:
    """Say :func:`thin_class_lines` as warnings; returns :func:`thin_classes`."""
    import warnings

    thin = thin_classes(conformal, alphas, classes)
    for line in thin_class_lines(thin):
        warnings.warn(line, stacklevel=3)
    return thin


@contextmanager
def _without_library_thin_class_warnings() -> Iterator[None]:
    """A context in which the library's per-class warnings (:class:`~softmaxkit.conformal.ThinClassWarning`,
    one per class and level) are not shown: the CLI says them once per level (:func:`thin_class_lines`)."""
    import warnings

    from softmaxkit.conformal import ThinClassWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ThinClassWarning)
        yield


class PendingSets:
    """The (n, K, A) sets of ``alphas``, made only when used, in the way the use needs.

    :func:`summarize` reads their counts (:meth:`counts`: made block by block, never the
    whole mask: at 200,000 x 1000 the mask and two float64 softmaxes made ``calibrate
    --conformal`` peak at 3.7x the logits file, audit AC); the output columns of
    ``predict``/``apply`` need the sets themselves (:meth:`mask`). Levels in ``written``
    (an (n, K) mask, in ``scores``' column order) were read from a file; the others are
    made from ``scores`` by ``conformal``. ``calibration_rows``: ``scores`` are the rows the
    predictor was fitted on, in order, whose randomised sets reuse the fit's uniforms (see
    :meth:`~softmaxkit.conformal.ConformalClassifier.set_counts`).
    """

    def __init__(self, conformal: Any, scores: np.ndarray, alphas: tuple[float, ...], *, order: Any = None,
                 written: list[np.ndarray | None] | None = None, calibration_rows: bool = False) -> None:
        self.conformal, self.scores, self.alphas, self.order = conformal, scores, alphas, order
        self.calibration_rows = calibration_rows
        self.written = written or [None] * len(alphas)
        self.made = tuple(a for a, w in zip(alphas, self.written) if w is None)

    def _fitted(self) -> np.ndarray:
        """``scores`` in the predictor's class order (a copy only when ``order`` reorders them)."""
        return self.scores if self.order is None else self.scores[:, self.order]

    def mask(self) -> np.ndarray:
        """The (n, K, A) sets, in ``scores``' column order."""
        made = None
        if self.made:
            with _without_library_thin_class_warnings():  # said once per level by warn_thin_classes
                made = self.conformal.predict_sets(self._fitted(), alpha=list(self.made),
                                                   calibration_rows=self.calibration_rows)
            if self.order is not None:
                made = np.take(made, np.argsort(self.order), axis=1)
            if len(self.made) == len(self.alphas):
                return made
        return np.stack([w if w is not None else made[:, :, self.made.index(a)]
                         for a, w in zip(self.alphas, self.written)], axis=2)

    def counts(self, labels: np.ndarray) -> Any:
        """The sets' :class:`~softmaxkit.conformal.SetCounts` for class indices ``labels`` (in ``scores``'
        column order), one level per alpha."""
        from softmaxkit.conformal import SetCounts

        n, k = len(labels), int(self.scores.shape[1])
        covered, sizes = np.empty((n, len(self.alphas)), dtype=bool), np.empty((n, len(self.alphas)), dtype=np.int64)
        if self.made:
            # the predictor's column of each label: class order[j] of the predictor is column j of the file
            fitted_labels = labels if self.order is None else np.argsort(self.order)[labels]
            with _without_library_thin_class_warnings():  # said once per level by warn_thin_classes
                made = self.conformal.set_counts(self._fitted(), fitted_labels, alpha=list(self.made),
                                                 calibration_rows=self.calibration_rows)
        for i, (a, w) in enumerate(zip(self.alphas, self.written)):
            level = (SetCounts.of(labels, w[:, :, None]) if w is not None
                     else made.level(self.made.index(a)))
            covered[:, i], sizes[:, i] = level.covered[:, 0], level.sizes[:, 0]
        return SetCounts(covered, sizes, k)


def predict_sets(
    conformal: Any, scores: np.ndarray, alphas: tuple[float, ...], *, probs: bool, where: str, order: Any = None,
    calibration_rows: bool = False,
) -> PendingSets:
    """The sets of raw logits (or probabilities) at ``alphas``, made when used (:class:`PendingSets`); the
    predictor may have been fitted on either kind.

    ``order`` (from :func:`~softmaxkit.cli._common.class_order`) puts ``scores``' columns in the
    predictor's class order first; the sets come back in ``scores``' column order.
    ``calibration_rows``: ``scores`` are the rows ``conformal`` was fitted on (``calibrate`` without
    ``--holdout``): their sets reuse the fit's uniforms, so they cover at least the level by construction
    (with fresh ones, APS covered 0.892 at 90% where the table said "covered by construction"; audit AI).
    A class-conditional predictor's classes with too few calibration rows for a level are said once per level
    (:func:`warn_thin_classes`).
    """
    _prepare(conformal, scores, probs=probs, where=where)
    warn_thin_classes(conformal, alphas, None)
    return PendingSets(conformal, scores, alphas, order=order, calibration_rows=calibration_rows)


def _prepare(conformal: Any, scores: np.ndarray, *, probs: bool, where: str) -> None:
    """Refuse ``scores`` of another class count than ``conformal``'s, and tell it what kind they are."""
    if scores.shape[1] != conformal.n_classes_:
        raise CLIError(f"{where}: {scores.shape[1]} classes, but the conformal predictor was fitted on "
                       f"{conformal.n_classes_}")
    conformal.set_params(input="probs" if probs else "logits")  # both give the same probabilities


def level_name(alpha: float) -> str:
    """``0.1`` -> ``"90%"``."""
    return f"{level_tag(alpha)}%"


def level_tag(alpha: float) -> str:
    """``0.1`` -> ``"90"``: the level in the set columns' names (``set_90``).

    Exact decimal arithmetic on the shortest text of ``alpha`` ("0.1", "1e-08"), so each
    level has its own tag: six significant digits named 0.1 and 0.1000001 both ``set_90``
    (one pair of columns held the second) and 1e-8 ``set_100`` (audit).
    """
    return f"{(100 * (1 - Decimal(repr(float(alpha))))).normalize():f}"


def written_sets(source: str, ignored: tuple[str, ...], alphas: tuple[float, ...], classes: Any,
                 n_classes: int) -> list[np.ndarray | None]:
    """For each level in ``alphas``, the (n, K) sets that ``predict``/``apply --conformal`` wrote
    into ``source``, or None where it holds no columns for that level.

    ``set_90`` holds the class names joined by "|" ("" for an empty set); numbers-only
    formats hold one 0/1 column ``in_set_90_<class>`` per class (see :func:`columns`).
    Those sets were computed from the model's own scores, whatever ``source``'s
    probabilities are (calibrated ones give different sets), so they are the
    ones to score.
    """
    from pathlib import Path

    from softmaxkit.data import read_columns

    names = [str(c) for c in (classes if classes is not None else range(n_classes))]
    wanted: list[tuple[str, ...] | None] = []
    for a in alphas:
        tag = level_tag(a)
        if f"set_{tag}" in ignored:
            wanted.append((f"set_{tag}",))
        elif all(f"in_set_{tag}_{c}" in ignored for c in names):
            wanted.append(tuple(f"in_set_{tag}_{c}" for c in names))
        else:
            wanted.append(None)
    if not any(wanted):
        return [None] * len(alphas)
    columns = read_columns(Path(source), text_columns=tuple(c for cols in wanted if cols and len(cols) == 1
                                                            for c in cols))
    index = {c: j for j, c in enumerate(names)}
    out: list[np.ndarray | None] = []
    for cols in wanted:
        if cols is None:
            out.append(None)
        elif len(cols) == 1:
            out.append(_parse_set_column(source, cols[0], columns[cols[0]], index))
        else:
            out.append(np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in cols]) != 0)
    return out


def sets_to_score(conformal: Any, source: str, ignored: tuple[str, ...], alphas: tuple[float, ...], classes: Any,
                  scores: np.ndarray, order: Any, *, probs: bool, kind: str,
                  path: str | None = None) -> tuple[PendingSets, str]:
    """``evaluate``'s sets (:class:`PendingSets`, for :func:`summarize`), and a line saying where they came from.

    A level whose set columns ``source`` holds is read from them (:func:`written_sets`):
    predict/apply made them from the model's own scores, while the probabilities beside
    them may be calibrated and would give other sets. Other levels are rebuilt from the
    scores, which is right only if they are like the ones the predictor (saved at ``path``) was fitted on:
    :func:`check_scores_like_calibration` warns where they are not (audit BV: calibrated columns rebuilt
    80% sets that covered 0.931, not nested in the 90% ones).
    """
    written = written_sets(source, ignored, alphas, classes, int(scores.shape[1]))
    if any(w is None for w in written):
        _prepare(conformal, scores, probs=probs, where=source)
        if path is not None:
            check_scores_like_calibration(path, scores, probs=probs, where=source)
    warn_thin_classes(conformal, alphas, classes)  # written sets hold such a class everywhere too
    sets = PendingSets(conformal, scores, alphas, order=order, written=written)
    rebuilt = sets.made
    parts = []
    if len(rebuilt) < len(alphas):
        shown = ", ".join(level_name(a) for a, w in zip(alphas, written) if w is not None)
        parts.append(f"at {shown} the set columns of {source}, as predict/apply wrote them")
    if rebuilt:
        parts.append(f"at {', '.join(map(level_name, rebuilt))} rebuilt from the {kind} of {source}: right only if "
                     "they are the model's own, uncalibrated scores, as the predictor was fitted on (calibrated ones, "
                     "from predict --calibrator or apply, give other sets; write the sets there with --conformal "
                     "--sets)")
    return sets, "; ".join(parts)


def _parse_set_column(source: str, name: str, values: Any, index: dict[str, int]) -> np.ndarray:
    """(n, K) membership from a ``set_90`` column of class names joined by "|".

    Text files are read with the column as text (:func:`written_sets`), so names match
    exactly ("01" is not "1"). A Parquet column that another tool rewrote as numbers still
    reads: 1.0 is the class "1" and a missing value the empty set.
    """
    if hasattr(values, "to_pylist"):
        values = values.to_pylist()
    sets = np.zeros((len(values), len(index)), dtype=bool)
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        for member in filter(None, str(value).split("|")):
            if member not in index:
                raise CLIError(f"{source}: row {row + 1}, column {name!r}: {member!r} is not one of the classes "
                               f"{', '.join(index)}")
            sets[row, index[member]] = True
    return sets


def summarize(conformal: Any, y: np.ndarray, sets: np.ndarray | PendingSets, alphas: tuple[float, ...],
              classes: Any, *, evaluated_on: str) -> dict:
    """metrics.json's ``"conformal"`` record: the predictor and every level's set metrics.

    ``sets``: an (n, K, A) mask, or :class:`PendingSets`, whose counts are made block by block.
    """
    from softmaxkit.conformal import set_metrics

    counts = sets.counts(y) if isinstance(sets, PendingSets) else None
    # guaranteed_range is the predictor's own: no upper end where scores tie at the threshold,
    # each class's rows when class-conditional
    measured = {level_name(a): set_metrics(y, sets[:, :, i] if counts is None else counts.level(i), alpha=a,
                                           conformal=conformal, classes=classes)
                for i, a in enumerate(alphas)}
    names = [str(c) for c in classes]
    class_rows = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(names))
    calibration_rows = dict(zip(names, (int(v) for v in conformal.class_counts_)))
    # the classes whose coverage interval lies wholly below a level (see class_shortfalls), least covered first
    below = {name: [{"class": c, "rows": n, "coverage": v, "coverage_ci": [lo, hi],
                     "ci": class_interval_words(class_rows), "calibration_rows": calibration_rows.get(c)}
                    for c, v, (lo, hi), n in classes_under_level(m, class_rows) if hi < m["target_coverage"]]
             for name, m in measured.items()}
    return {
        "score": conformal.score,
        # one threshold per class (calibrate --conformal-by-class): each class's coverage is guaranteed
        "class_conditional": bool(conformal.class_conditional),
        # ... and the classes with too few calibration rows for a level's own threshold: in every set there
        "classes_too_few_rows": thin_classes(conformal, alphas, classes),
        "n_calibration": int(conformal.n_calibration_),
        "evaluated_on": evaluated_on,
        "levels": measured,
        # the classes no calibration row held, with their rows here: the guarantee says nothing about those
        "classes_without_calibration_rows": {c: int(np.sum(np.asarray(y) == names.index(c))) if c in names else None
                                             for c in absent_classes(conformal, classes)},
        # the levels whose coverage interval lies wholly below the level (see coverage_shortfalls)
        "short_of_level": [name for name, m in measured.items() if m["coverage_ci"][1] < m["target_coverage"]],
        "classes_short_of_level": {name: under for name, under in below.items() if under},
    }


def classes_under_level(m: dict, class_rows: Any) -> list[tuple[str, float, tuple[float, float], int]]:
    """The classes whose rows the sets of one level (``m``, :func:`~softmaxkit.conformal.set_metrics`) cover
    less often than the level ``m["target_coverage"]``: ``(name, coverage, Wilson 95% interval, rows)``, the
    one whose interval reaches least high first. ``class_rows``: each class's measured rows, in the order of
    ``m["coverage_by_class"]``.

    By the interval's upper end, not the point estimate: a class of many rows a little under the level can be
    measurably under while a class of few rows further under is not. The intervals are simultaneous, Bonferroni
    over the classes measured (:func:`class_interval_words`): one 95% interval per class flagged a class of 100
    built alike, all covered as the whole, "measurably below" in 2 of them (review R18), as the class-count note
    corrects too. The demo's card names the first (:meth:`DemoSets.headline`); :func:`class_shortfalls` says
    those wholly below the level.
    """
    from statistics import NormalDist

    from softmaxkit.conformal import _wilson  # the interval of the overall coverage_ci, per class here

    tests = max(1, int(np.count_nonzero(np.asarray(class_rows) > 0)))
    z = NormalDist().inv_cdf(1 - 0.025 / tests)
    under = [(c, v, _wilson(v, int(n), z), int(n)) for (c, v), n in zip(m["coverage_by_class"].items(), class_rows)
             if v is not None and n > 0 and v < m["target_coverage"]]
    return sorted(under, key=lambda t: t[2][1])


def class_interval_words(class_rows: Any) -> str:
    """How :func:`classes_under_level`'s intervals are named: "95% CI", with "Bonferroni over K classes" where
    more than one class is measured."""
    tests = int(np.count_nonzero(np.asarray(class_rows) > 0))
    return "95% CI" if tests <= 1 else f"95% CI, Bonferroni over {tests} classes"


def coverage_shortfalls(summary: dict, *, units: str = "rows") -> list[str]:
    """A sentence for each level whose measured coverage interval lies wholly below the level.

    ``summary`` is :func:`summarize`'s record; ``units`` names its rows ("patients" in the demo).
    The demo's note on empty sets speaks of "the allowed 10% (or 5%) of misses", true on average over
    calibration draws; one draw can miss more (audit, demo seed 33: the 95% sets covered 0.904, Wilson CI
    below 0.95; calibrate --holdout 0.5 --conformal-score aps: 0.826 [0.776, 0.866] at 90%). The demo,
    ``calibrate`` and ``evaluate`` all say it with these words. No final period: a CLI warning line, as
    the calibration's cautions.
    """
    out = []
    for name in summary["short_of_level"]:
        m = summary["levels"][name]
        lo, hi = m["coverage_ci"]
        out.append(f"At {name} the sets held the true class for {100 * m['coverage']:.1f}% of the {m['n']} {units} "
                   f"measured (95% CI {100 * lo:.1f}-{100 * hi:.1f}%), below the {name} level: more misses than the "
                   "level allows. The guarantee (the 'guaranteed (mean)' column) holds on average over calibration "
                   f"draws, for {units} like the calibration {units}: this draw of {summary['n_calibration']} set a "
                   f"threshold that fell short on the {units} measured, or these {units} are unlike them (other data, "
                   "or scores of another kind than the predictor was fitted on, such as calibrated probabilities)")
    return out


def class_shortfalls(summary: dict, *, units: str = "rows") -> list[str]:
    """A sentence for each level at which a class's coverage interval lies wholly below the level
    (``classes_short_of_level`` of :func:`summarize`), naming the least covered class and how many more are.

    The guarantee is for all rows together: a class can be covered measurably less often (audit BT: class 'Ä',
    15 of 22 rows, 95% CI 0.473-0.836 at 90%, shown by ``calibrate --conformal`` only in a table row, while
    ``demo``'s card names such a class). Said as :func:`coverage_shortfalls` says a level's shortfall, by
    ``calibrate``, ``evaluate`` and the report's sets section. No final period: a CLI warning line.
    With one threshold per class (``class_conditional``) the guarantee is each class's, on average over
    calibration draws, so the sentence says that instead: its threshold's draw fell short, or its rows differ.
    """
    from softmaxkit._loss_interval import name_list

    out = []
    for name, under in summary.get("classes_short_of_level", {}).items():
        first, rest = under[0], under[1:]
        lo, hi = first["coverage_ci"]
        more = "" if not rest else (
            f"; so {'is' if len(rest) == 1 else 'are'} {'class' if len(rest) == 1 else 'classes'} "
            f"{name_list(repr(c['class']) for c in rest)}")
        out.append(f"Class {first['class']!r}: the {name} sets held the true class for {100 * first['coverage']:.1f}% "
                   f"of its {first['rows']} {units} ({first.get('ci', '95% CI')} {100 * lo:.1f}-{100 * hi:.1f}%), "
                   "measurably below the "
                   f"{name} level{more}: {_class_guarantee_words(summary, first, units)}")
    return out


def _class_guarantee_words(summary: dict, first: dict, units: str) -> str:
    """What :func:`class_shortfalls` says the guarantee is: for all rows together (one threshold), or for each
    class's rows on average over calibration draws (one threshold per class)."""
    if not summary.get("class_conditional"):
        return f"the guarantee is for all {units} together, not for each class's"
    rows = first.get("calibration_rows")
    drawn = f"the draw of its {rows} calibration {units}" if rows is not None else "its calibration draw"
    return (f"each class's coverage is guaranteed (one threshold per class) on average over calibration draws, for "
            f"{units} like its calibration {units}: {drawn} set a threshold that fell short on the {units} measured, "
            f"or these {units} are unlike them")


# --------------------------------------------------------------------------- outputs


def set_text(row: np.ndarray, classes: Any) -> str:
    """One set in words: a class name, several joined by " | ", "both: cannot tell", or "none" (with
    two classes "none: cannot tell", as the README and the demo's note read an empty set)."""
    names = [str(classes[j]) for j in np.flatnonzero(row)]
    if not names:
        return "none: cannot tell" if len(row) == 2 else "none"
    if len(names) == len(row) == 2:
        return "both: cannot tell"
    if len(names) > 4:
        return f"{len(names)} classes"
    return " | ".join(names)


def columns(sets: np.ndarray | PendingSets, alphas: tuple[float, ...], classes: Any, *,
            text: bool) -> dict[str, np.ndarray]:
    """Output columns: per level, ``set_90`` (class names joined by "|") and ``set_size_90``.

    Numbers-only formats (``text=False``) get ``in_set_90_<class>`` 0/1 columns instead of the names,
    and so do class names holding the separator "|": joined, ``a|b`` would read back as two classes.
    ``sets``: an (n, K, A) mask, or :class:`PendingSets`, made here (the output needs the sets themselves).
    """
    import warnings

    from softmaxkit.conformal import set_labels

    if isinstance(sets, PendingSets):
        sets = sets.mask()

    piped = [str(c) for c in classes if "|" in str(c)]
    if text and piped:
        warnings.warn(f"class {piped[0]!r} holds '|', which separates the classes in set_<level> columns: "
                      "the sets are written as in_set_<level>_<class> 0/1 columns instead")
        text = False
    out: dict[str, np.ndarray] = {}
    for i, a in enumerate(alphas):
        tag = level_tag(a)
        if text:
            # str, not object: an .npz of it loads without pickle
            out[f"set_{tag}"] = np.asarray(set_labels(sets[:, :, i], classes), dtype=str)
        else:
            for j, c in enumerate(classes):
                out[f"in_set_{tag}_{c}"] = sets[:, j, i].astype(np.int8)
        out[f"set_size_{tag}"] = sets[:, :, i].sum(axis=1).astype(np.int64)
    return out


def table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the per-level table (printed and in the report)."""
    cols = ["level", "coverage [95% CI]", "guaranteed (mean)", "mean size", "empty", "1 class", "2+ classes"]
    rows = []
    for name, m in summary["levels"].items():
        lo, hi = m["coverage_ci"]
        g_lo, g_hi = m["guaranteed_range"]
        guaranteed = f">= {g_lo:.3f}" if g_hi is None else f"{g_lo:.3f}-{g_hi:.3f}"  # no upper end: ties
        rows.append([name, f"{m['coverage']:.3f} [{lo:.3f}, {hi:.3f}]", guaranteed,
                     f"{m['mean_size']:.2f}", f"{100 * m['empty']:.1f}%", f"{100 * m['singleton']:.1f}%",
                     f"{100 * m['multiple']:.1f}%"])
    return cols, rows


def print_summary(say: Any, summary: dict) -> None:
    from softmaxkit.cli._common import text_table

    say(f"Prediction sets ({summary['score'].upper()}, {_threshold_words(summary)}; "
        f"measured on {summary['evaluated_on']}):", *text_table(*table(summary)), *absent_class_lines(summary), "")


def _threshold_words(summary: dict) -> str:
    """"threshold from 200 calibration rows", or, class-conditional, "one threshold per class from its own
    calibration rows, 200 in all, so coverage guaranteed for each class"."""
    if summary.get("class_conditional"):
        return (f"one threshold per class from its own calibration rows, {summary['n_calibration']} in all, so "
                "coverage guaranteed for each class")
    return f"threshold from {summary['n_calibration']} calibration rows"


def absent_class_lines(summary: dict) -> list[str]:
    """A line under the sets' table for each measured class that no calibration row held
    (``classes_without_calibration_rows`` of :func:`summarize`): the "guaranteed (mean)" column is not for
    its rows."""
    return [f"Class {name!r} had no calibration row: the guarantee ('guaranteed (mean)') is for rows like the "
            f"calibration rows and says nothing about its {rows} row{'s' * (rows != 1)} here, whose coverage can "
            "be far below the level"
            for name, rows in summary.get("classes_without_calibration_rows", {}).items() if rows]


def section(
    summary: dict, *, n_classes: int, intro: str = "", title: str = "Prediction sets with guaranteed coverage",
    units: str = "rows",
) -> Any:
    """The report section: what a set means, the per-level table, sizes and coverage by size and by class.

    A level whose coverage fell short of it, or at which a class's did (:func:`class_shortfalls`), gets a
    warning after the notes (:func:`coverage_shortfalls`, ``units`` naming the rows).
    """
    from softmaxkit.report import Note, Paragraph, Section, Table

    blocks: list[Any] = [Paragraph(EXPLANATION)]
    if summary.get("class_conditional"):
        blocks.append(Paragraph(BY_CLASS_EXPLANATION))
    if intro:
        blocks.append(Paragraph(intro))
    if n_classes == 2:
        blocks.append(Note(TWO_CLASS_NOTE))
    blocks += [Note(text + ".", "warn") for text in [*coverage_shortfalls(summary, units=units),
                                                     *class_shortfalls(summary, units=units),
                                                     *absent_class_lines(summary),
                                                     *thin_class_lines(summary.get("classes_too_few_rows", {}))]]
    cols, rows = table(summary)
    blocks.append(Table(cols, rows, caption=(
        f"{summary['score'].upper()} sets, {_threshold_words(summary)}, measured on "
        f"{summary['evaluated_on']}. Guaranteed: the range the mean coverage over calibration draws lies in.")))
    names = list(summary["levels"])
    sizes = sorted({int(s) for m in summary["levels"].values() for s in m["size_histogram"]})
    size_rows = []
    for s in sizes:
        row = [str(s) if n_classes != 2 or s != 2 else "2 (cannot tell)"]
        for name in names:
            m = summary["levels"][name]
            count = m["size_histogram"].get(str(s), 0)
            cov = m["coverage_by_size"].get(str(s))
            row += [str(count), "-" if cov is None else f"{cov:.3f}"]
        size_rows.append(row)
    blocks.append(Table(["set size", *[f"{h} {n}" for n in names for h in ("rows at", "coverage at")]], size_rows,
                        caption="Size-stratified coverage: adaptive sets keep coverage near the level in every size; "
                        "a set method that over-covers easy rows and under-covers hard ones shows it here."))
    if n_classes <= 20:
        classes = list(summary["levels"][names[0]]["coverage_by_class"])
        blocks.append(Table(["true class", *[f"coverage at {n}" for n in names]], [
            [c, *("-" if summary["levels"][n]["coverage_by_class"][c] is None
                  else f"{summary['levels'][n]['coverage_by_class'][c]:.3f}" for n in names)] for c in classes
        ], caption="Coverage among the rows of each true class. " + (
            "Each class's coverage is guaranteed on average over calibration draws (one threshold per class); one "
            "draw scatters around it, the more so for a class of few rows." if summary.get("class_conditional") else
            "The guarantee is for all rows together; a class below the level is covered less often than the "
            "others.")))
    return Section(title, blocks)


# --------------------------------------------------------------------------- demo


def _binary_reading(q: float) -> str:
    """What a LAC threshold ``q`` means for two classes (a class is in when ``p >= 1 - q``)."""
    if 1 - q < 0.5:
        return f", so both (we cannot tell) when the larger probability is at most {q:.3f}"
    if 1 - q > 0.5:
        return f", so none when the larger probability is below {1 - q:.3f}"
    return ""


class DemoSets:
    """The demo's 90% and 95% LAC sets: fitted on the calibration rows' raw logits, shown for the test rows."""

    def __init__(self, logits_cal: np.ndarray, y_cal: np.ndarray, logits_test: np.ndarray, y_test: np.ndarray,
                 class_names: list[str], *, seed: int) -> None:
        conformal = fit(logits_cal, y_cal, probs=False, score="lac", seed=seed)
        self.class_names = class_names
        self.class_rows = np.bincount(y_test, minlength=len(class_names))  # test rows of each class, (K,)
        self.sets = conformal.predict_sets(logits_test, alpha=list(DEMO_ALPHAS))  # (n_test, K, 2)
        self.summary = summarize(conformal, y_test, self.sets, DEMO_ALPHAS, class_names,
                                 evaluated_on=f"{len(y_test)} test rows")
        self.thresholds = [float(t) for t in conformal.threshold(list(DEMO_ALPHAS))]

    def for_row(self, row: int) -> dict[str, str]:
        """``{"90%": "benign", "95%": "both: cannot tell"}`` for one test row."""
        return {level_name(a): set_text(self.sets[row, :, i], self.class_names) for i, a in enumerate(DEMO_ALPHAS)}

    def headline(self, units: str) -> Any:
        """A headline card: the 90% sets' measured coverage, with what is guaranteed and this test set's
        interval, how often the model cannot tell, and the least covered class when it is below the level.

        The guarantee holds on average over calibration draws, not for one test set (audit: "88.6% covered
        ... (guaranteed >= 90%)"). The card is green unless the coverage interval, of all rows or of one
        class's rows, lies wholly below the level (audit, seed 0: green beside malignant at 0.884, shown
        only in a lower table); a class's point estimate below the level is named but does not turn it.
        """
        from softmaxkit.report import Headline

        name = level_name(DEMO_ALPHAS[0])
        m = self.summary["levels"][name]
        lo, hi = m["coverage_ci"]
        unsure = 1 - m["singleton"]
        what = "cannot tell or empty" if len(self.class_names) == 2 else "more than one class or empty"
        under = classes_under_level(m, self.class_rows)
        low = under[0][:3] if under else None
        short = hi < m["target_coverage"]
        detail = (f"of {m['n']} test {units} (>= {name} on average over calibration sets; this test set: 95% CI "
                  f"{100 * lo:.1f}-{100 * hi:.1f}%); {100 * unsure:.1f}% {what}")
        if low is not None:
            cls, cov, (c_lo, c_hi) = low
            short = short or c_hi < m["target_coverage"]
            under = "measurably under" if c_hi < m["target_coverage"] else "under"
            detail += (f"; class {cls} {under} {name}: {100 * cov:.1f}% of its {units} covered "
                       f"({class_interval_words(self.class_rows)} {100 * c_lo:.1f}-{100 * c_hi:.1f}%; the guarantee "
                       f"is for all {units} together)")
        return Headline(f"Sets at {name}", f"{100 * m['coverage']:.1f}% covered", detail,
                        "warn" if short else "good")

    def section(self, units: str) -> Any:
        k = len(self.class_names)
        rule = "; ".join(f"at {level_name(a)} a class is in the set when its probability is at least "
                         f"{1 - t:.3f}{_binary_reading(t) if k == 2 else ''}"
                         for a, t in zip(DEMO_ALPHAS, self.thresholds))
        intro = (f"Here the threshold comes from the {self.summary['n_calibration']} calibration {units} (the same "
                 f"ones used for temperature scaling; the sets use the raw model's probabilities, so reusing them "
                 f"keeps the guarantee exact): {rule}. The table of individual {units} above shows each one's sets.")
        return section(self.summary, n_classes=k, intro=intro, units=units,
                       title="Prediction sets: which answers can the model not rule out?")
