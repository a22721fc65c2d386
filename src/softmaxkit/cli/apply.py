"""``softmaxkit apply``: apply a saved calibrator to new logits or probabilities.

A separate command rather than an option of ``predict``: ``predict`` needs a
softmaxkit model and features, while a calibrator fitted by ``calibrate``
usually belongs to someone else's network, whose logits are all there is.
"""

from __future__ import annotations

import argparse
from typing import Any

from softmaxkit.cli import _conformal
from softmaxkit.cli._common import (
    add_ignore_option,
    add_output_options,
    class_names,
    recording_warnings,
    with_article,
)
from softmaxkit.cli.predict import check  # predict's usage checks: --out/--logits-out extensions, --sets


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "apply",
        help="apply a saved calibrator to new logits or probabilities",
        description=(
            "Apply a calibrator saved by 'calibrate' or 'fit --calibrate' to new logits (or probabilities) "
            "and write the calibrated probabilities: one p_<class> column per class plus the predicted class "
            "(prediction), the same layout as 'predict', so the output feeds 'evaluate' directly. Class names "
            "come from logit_<class>/p_<class> columns, or --classes; otherwise classes are numbered 0..K-1. "
            "A calibrator fitted on named columns matches them by name, in any order (its parameters are "
            "per class), writes them in its own class order (a .npy, which keeps no names, in the input's column "
            "order), and refuses a file whose columns it cannot name. "
            "With --conformal and --sets it also writes each row's prediction set, from the scores as given (as "
            "'calibrate --conformal' fitted it). The scores file's row id columns (named like id, sample_id or "
            "patient_id, or a saved pandas index) are copied to PROBS first, as 'predict' does, so that 'evaluate' "
            "and 'calibrate' match a labels file with the same id column to the rows by id (not in .npy, nor text "
            "ids in .safetensors)."
        ),
    )
    p.add_argument("calibrator", metavar="CALIBRATOR", help="a calibrator file (.npz or .safetensors)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--logits", metavar="FILE", help="logits, one column per class (e.g. predict --logits-out)")
    source.add_argument("--probs", metavar="FILE",
                        help="probabilities, one column per class (for a calibrator fitted on probabilities, "
                        "or temperature scaling, which gives the same result from log-probabilities)")
    p.add_argument("--out", required=True, metavar="PROBS", help="calibrated probabilities to write")
    p.add_argument("--logits-out", metavar="FILE", help="also write the calibrated logits (logit_<class> columns)")
    p.add_argument("--classes", type=class_names, metavar="A,B,...",
                   help="the class names: score columns named by class (p_<class>, logit_<class>, or a header of "
                   "these names) are matched to them by name, other columns take them in order (split on commas, "
                   "spaces around each name dropped; for names with commas, name the columns p_<class> or "
                   "logit_<class> instead; names that start with '-', such as -1,0,1, are read as such)")
    add_ignore_option(p, what="scores")
    p.add_argument("--by-position", action="store_true",
                   help="apply a CALIBRATOR (or --conformal predictor) fitted on unnamed columns to named ones "
                        "in the order they come, or one fitted on classes 0..K-1 to unnamed columns (a .npy) "
                        "without the warning that they are taken in its class order")
    _conformal.add_set_options(p, what="also write each row's prediction set (set_90: the class names, set_size_90)")
    add_output_options(p)
    p.set_defaults(run=run, check=check)


@recording_warnings  # --json "warnings": every warning said, as evaluate and calibrate list them
def run(args: argparse.Namespace, warned: list[str]) -> int:
    from pathlib import Path

    import numpy as np

    from softmaxkit import softmax
    from softmaxkit.cli import CLIError, _adapters
    from softmaxkit.cli._common import (
        Printer,
        check_npy_keeps_classes,
        check_output,
        class_order,
        ignored_columns,
        in_canonical_order,
        logit_columns,
        read_row_ids,
        read_score_file,
        refuse_non_finite,
        warn_zero_probabilities,
        row_ids_text,
        say_ids_left_out,
        say_ignored,
        score_columns,
        with_row_ids,
    )
    from softmaxkit.cli.predict import npy_column_order, reorders_classes, warn_sets_without_prediction
    from softmaxkit.data import write_columns
    from softmaxkit.io import StagedOutputs, same_entry

    say = Printer(args)
    source = args.logits or args.probs
    inputs = tuple(p for p in (args.calibrator, source, args.conformal) if p)
    check_output(args.out, inputs=inputs)
    if args.logits_out:
        check_output(args.logits_out, inputs=inputs, option="--logits-out")
        if same_entry(args.logits_out, args.out):  # by identity: one folder may be reached by two paths
            raise CLIError("--logits-out and --out name the same file")
    calibrator = _adapters.load_calibrator(args.calibrator, option="CALIBRATOR")
    fitted_on = getattr(calibrator, "input", "logits")
    if args.probs and fitted_on == "logits" and not _reads_log_probs(calibrator):
        # log p differs from the logits by a per-row constant: invisible to a temperature and to maps of
        # the log-odds, not to per-class scales (vector/matrix scaling), which would return wrong probabilities.
        raise CLIError(f"CALIBRATOR {args.calibrator}: {with_article(type(calibrator).__name__)} fitted on logits needs "
                       "logits (--logits); probabilities would give different, wrong results")

    fitted_classes = getattr(calibrator, "n_classes_", None)
    conformal = _conformal.load(args.conformal, n_classes=None if fitted_classes is None else int(fitted_classes),
                                against=f"CALIBRATOR {args.calibrator}") if args.conformal else None

    kind = "logit" if args.logits else "probability"
    # A plain header naming the calibrator's classes (True,False) names the columns (audit CN: refused)
    read = read_score_file(source, kind=kind, given_classes=args.classes, ignore=ignored_columns(args),
                           fitted_classes=getattr(calibrator, "class_names_", None))
    scores = read.scores
    # The scores file's row ids go to the output as predict's do: without them, labels in another row
    # order were paired by position (audit: accuracy 0.3583 for 0.5667, exit 0).
    row_ids = read_row_ids(source, read.ignored, n_rows=len(scores))
    n_classes = scores.shape[1] if fitted_classes is None else int(fitted_classes)
    if scores.shape[1] != n_classes:
        raise CLIError(f"CALIBRATOR {args.calibrator}: the calibrator was fitted on {n_classes} classes, but "
                       f"{source} has {scores.shape[1]} score columns")
    # Per-class parameters apply by class name: the file's columns may come in any order (refused here
    # when the classes cannot be matched). They are taken, and written, in the calibrator's class order
    # (else sorted): argmax breaks a tie to the first column, so the prediction column followed the input's
    # order (audit: 6 of 100 rows after isotonic calibration).
    class_order(read.classes, calibrator, source=source, fitted_as=f"CALIBRATOR {args.calibrator}",
                by_position=args.by_position, columns=read.columns)
    scores, classes, order = in_canonical_order(scores, read.classes, calibrator, by_position=args.by_position)
    names = np.asarray(classes) if classes is not None else np.arange(n_classes)

    def as_written(path: str) -> Any:
        """The columns (of ``names``' order) that ``path`` gets, in the order it gets them. A ``.npy`` keeps
        no class names: it is read back with the input's --classes, so it gets the input's column order
        (in the one class order, dog,cat,bird came back as bird,cat,dog: accuracy 0.30 for 0.74, exit 0).
        It holds no prediction column, and its readers put the columns in the one order themselves."""
        if order is None or Path(path).suffix.lower() != ".npy":
            return slice(None)
        return np.argsort(order)

    for option, path in (("--out", args.out), ("--logits-out", args.logits_out)):
        if path:
            check_npy_keeps_classes(names[as_written(path)], path, option=option, source=source)

    def calibrate(s: np.ndarray) -> np.ndarray:
        if args.logits:
            return _adapters.calibrated_logits(calibrator, s)
        if fitted_on == "probs":
            return _adapters.calibrated_from_probs(calibrator, s)
        if reorders_classes(calibrator):  # a map of each class's log-odds, which p = 0 puts at -inf
            _refuse_zero_probabilities(s, names, calibrator, args.calibrator, source)
        with np.errstate(divide="ignore"):  # log-probabilities: the logits up to a per-row constant
            return _adapters.calibrated_logits(calibrator, np.log(np.asarray(s, dtype=np.float64)))

    logits = calibrate(scores)
    probs = softmax(logits, axis=-1)
    refuse_non_finite(probs, out=args.out, source=source)
    warn_zero_probabilities(probs, [str(c) for c in names], out=args.out, source=source,
                            isotonic=type(calibrator).__name__ == "IsotonicCalibration")

    text_ok = not args.out.lower().endswith((".npy", ".safetensors"))
    written = as_written(args.out)
    columns = score_columns(probs[:, written], names[written], out=args.out)
    if conformal is not None:
        # From the scores as given, not the calibrated ones: the predictor was fitted on raw scores
        # (see softmaxkit.cli._conformal).
        sets_order = class_order(classes, conformal, source=source, fitted_as=f"--conformal {args.conformal}",
                                 by_position=args.by_position)
        sets = _conformal.predict_sets(conformal, scores, args.sets, probs=args.probs is not None, where=source,
                                       order=sets_order).mask()  # made once: written, and checked below
        _conformal.check_scores_like_calibration(args.conformal, scores, probs=args.probs is not None,
                                                 where=source, calibrated_probs=probs)
        columns.update(_conformal.columns(sets, args.sets, names, text=text_ok))
        given = "logits" if args.logits else "probabilities"
        warn_sets_without_prediction(sets, probs, args.sets, scores=f"the {given} of {source} as given",
                                     by_class=bool(getattr(conformal, "class_conditional", False)),
                                     reorders=reorders_classes(calibrator))
    columns, kept_ids, left_ids = with_row_ids(row_ids, columns, args.out)
    logit_table, logit_left = None, []
    if args.logits_out:
        kept = as_written(args.logits_out)
        logit_table, _, logit_left = with_row_ids(row_ids, logit_columns(logits[:, kept], names[kept]),
                                                  args.logits_out)
    with StagedOutputs(inputs=inputs, options={args.out: "--out", args.logits_out: "--logits-out"}) as outputs:
        write_columns(args.out, columns, outputs=outputs)
        if logit_table is not None:
            write_columns(args.logits_out, logit_table, outputs=outputs)
        outputs.commit()

    say_ignored(say, source, read.ignored, "not scores")
    say(f"Calibrated {len(probs)} rows x {n_classes} classes with {args.calibrator}; wrote {args.out}"
        + (f" (with the prediction sets at {', '.join(map(_conformal.level_name, args.sets))})" if conformal else "")
        + (f" and {args.logits_out}" if args.logits_out else "") + row_ids_text(kept_ids))
    say_ids_left_out(say, left_ids, source, args.out)
    say_ids_left_out(say, logit_left, source, args.logits_out)
    for path in (args.out, args.logits_out):
        if path:
            say(*npy_column_order(names[as_written(path)], path))
    say.result({"out": args.out, "logits_out": args.logits_out, "rows": int(len(probs)),
                "classes": names[written].tolist(), "calibrator": str(args.calibrator),
                "conformal": args.conformal, "sets": list(args.sets or []),
                "ignored_columns": list(read.ignored), "row_id_columns": kept_ids, "warnings": warned})
    return 0


def _reads_log_probs(calibrator: Any) -> bool:
    """Whether a calibrator fitted on logits maps ``log p`` as it maps the logits: ``log p`` differs from
    them by a constant per row, which a temperature keeps out of the softmax and which no class's log-odds
    hold (Platt and isotonic maps, but those saved before they read the log-odds: ``score_ == "raw_logit"``)."""
    name = type(calibrator).__name__
    one_vs_rest = name in ("PlattScaling", "IsotonicCalibration") and getattr(calibrator, "score_", None) == "log_odds"
    return name == "TemperatureScaling" or one_vs_rest


def _refuse_zero_probabilities(probs: Any, names: Any, calibrator: Any, path: str, source: str) -> None:
    """CLIError at the first probability of exactly 0: its log-odds are -inf, which the Platt and isotonic
    maps of logits take nowhere (the library's error named "logits" and a position, not the file's row)."""
    from pathlib import Path

    import numpy as np

    from softmaxkit.cli import CLIError
    from softmaxkit.data import location

    zero = np.asarray(probs) <= 0
    if zero.any():
        row, j = (int(v) for v in np.unravel_index(int(np.argmax(zero)), zero.shape))
        raise CLIError(location(Path(source), row) + f"class {str(names[j])!r} has probability 0, whose log-odds are "
                       f"-inf: CALIBRATOR {path} ({type(calibrator).__name__}, fitted on logits) maps finite "
                       "log-odds only; pass the model's logits (--logits)")
