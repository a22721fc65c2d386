"""``softmaxkit evaluate``: score logits or probabilities against labels."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from softmaxkit.cli import _conformal
from softmaxkit.cli._common import add_output_options, add_prediction_inputs, recording_warnings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, log-loss, Brier score and ECE of logits or probabilities",
        description=(
            "Score predictions against labels: accuracy, log-loss (exact from logits), Brier score and "
            "top-label ECE (with --ci or --report also their 95% confidence intervals, and the ECE's noise floor). "
            "The output of 'predict' is a valid --probs file: its p_<class> columns are the probabilities and "
            "name the classes, so the labels may be class names."
        ),
    )
    add_prediction_inputs(
        p, probs_help="probabilities, one column per class, rows summing to 1 (or one column: P(class 1), or "
        "of the class its name gives, p_<class>); "
        "predict's output (p_<class> columns) works as it is",
    )
    p.add_argument("--report", metavar="DIR", help="also write metrics.json, a reliability diagram and report.html")
    _conformal.add_set_options(p, what="also score the prediction sets (coverage, sizes)")
    p.add_argument("--by-position", action="store_true",
                   help="apply a --conformal predictor fitted on unnamed columns to named ones in the order they "
                   "come, or one fitted on classes 0..K-1 to unnamed columns without the warning that they are "
                   "taken in its class order")
    p.add_argument("--ci", action="store_true",
                   help="95%% intervals of the log-loss and Brier score, and the ECE's by bootstrap with its noise "
                   "floor (always done with --report)")
    add_output_options(p)
    p.set_defaults(run=run, check=_conformal.check_set_options)


@recording_warnings  # --json "warnings": every warning said, not only the command's own
def run(args: argparse.Namespace, warned: list[str]) -> int:
    from softmaxkit.cli._common import (
        Printer,
        brier_legend,
        check_report,
        class_order,
        progress,
        read_named_predictions,
        say_ignored,
        text_table,
    )
    from softmaxkit.cli._evaluation import (
        chance_legend,
        ci_legend,
        count_legend,
        ece_test_legend,
        metrics_lines,
        one_column_legends,
        score,
    )
    from softmaxkit.io import StagedOutputs
    from softmaxkit.report import ece_text, fmt

    say = Printer(args)
    inputs = (args.logits or args.probs, args.labels, *([args.conformal] if args.conformal else []))
    if args.report:
        check_report(args.report)
    conformal = _conformal.load(args.conformal) if args.conformal else None
    # Columns in the predictor's (else sorted) class order: ties must not follow the file's column order.
    pred = read_named_predictions(args, fitted=conformal, by_position=args.by_position)
    source, scores, labels, classes, ignored = pred.source, pred.scores, pred.labels, pred.classes, pred.ignored
    given = {"logits": scores} if args.logits else {"probs": scores}
    ci = bool(args.ci or args.report)
    with progress(say, "scoring", total=None):  # the ECE bootstrap takes a moment at large n
        scored = score(labels, key="predictions", name="Predictions", plot=args.report is not None,
                       what=f" ({len(labels)} rows)", ci=ci, classes=classes, **given)
    s = scored.summary
    metrics = {"source": source, "kind": "logits" if args.logits else "probabilities", "labels": args.labels,
               "n_classes": int(scores.shape[1]), "classes": classes, "ignored_columns": list(ignored),
               # which id column paired the labels with the scores' rows (None: by position), for scripts
               "labels_matched_on": pred.matched_on, "scores_matched_on": pred.scores_matched_on,
               "labels_left_out": pred.labels_left_out, "metrics": s,
               "warnings": warned}  # the list grows until printed: warnings said after this line are in it
    one_class = one_class_note(labels, classes, where=args.labels)
    if one_class:  # on stderr and in "warnings"; the report's note says it too
        warnings.warn(one_class, stacklevel=1)
    if conformal is not None:
        order = class_order(classes, conformal, source=source, fitted_as=f"--conformal {args.conformal}",
                            by_position=args.by_position, columns=pred.columns)
        sets, sets_from = _conformal.sets_to_score(conformal, source, ignored, args.sets, classes, scores, order,
                                                   probs=args.probs is not None, kind=metrics["kind"],
                                                   path=args.conformal)
        metrics["conformal"] = _conformal.summarize(conformal, labels, sets, args.sets,
                                                    classes or list(range(scores.shape[1])),
                                                    evaluated_on=f"{len(labels)} rows")
        metrics["conformal"]["sets_from"] = sets_from
        # A level whose measured coverage fell short of it, or a class's: on stderr (also under --json), as
        # calibrate says it.
        for line in [*_conformal.coverage_shortfalls(metrics["conformal"]),
                     *_conformal.class_shortfalls(metrics["conformal"])]:
            warnings.warn(line, stacklevel=1)
    if args.report:
        from softmaxkit.cli._evaluation import comparison_section
        from softmaxkit.report import Headline, Report, ci_text, ece_ci_text, glossary_section, write_report

        headlines = [Headline("Accuracy", f"{s['accuracy'] * 100:.1f}%", f"{s['n']} rows"),
                     Headline("Log-loss", f"{s['log_loss']:.3f}", "; ".join(
                         filter(None, [ci_text(s, "log_loss", digits=3), "lower is better"]))),
                     Headline("ECE", f"{s['ece']:.3f}", f"{ece_ci_text(s, digits=3)}; "
                              f"noise floor {s['ece_noise_floor']:.3f}")]
        # What the terminal says under its table about accuracy at chance and a class's count, the report
        # says too (audit: the count finding was printed but left out of report.html; fit's page has it).
        # (rows lost and a crowded ECE bin: the table's caption, comparison_section)
        legends = [*chance_legend(s), *count_legend(s, classes, probs=args.probs is not None),
                   *ece_test_legend(s, classes), *([f"{one_class[0].upper()}{one_class[1:]}."] if one_class else [])]
        note = (" ".join(legends), "warn") if legends else None
        report = Report(title="softmaxkit evaluate", subtitle=f"{source} against {args.labels}", headlines=headlines,
                        sections=[comparison_section([scored], title="Scores", intro=(
                            f"{s['n']} rows, {scores.shape[1]} classes, scored from "
                            f"{'logits (exact log-loss)' if args.logits else 'probabilities'}."), note=note),
                            *([_conformal.section(metrics["conformal"], n_classes=int(scores.shape[1]))]
                              if conformal is not None else []),
                            glossary_section()],
                        footer="Generated by softmaxkit evaluate", metrics=metrics)
        with StagedOutputs(inputs=inputs) as outputs:
            metrics["report"] = str(write_report(args.report, report, inputs=inputs, outputs=outputs)["report"])
            outputs.commit()
    say_ignored(say, source, ignored, "not scores")
    # With --ci a metric a row: three intervals in one row ran past 100 characters.
    table = metrics_lines({"value": s}) if ci else text_table(
        ["accuracy", "log-loss", "Brier", "ECE"], [[fmt(s["accuracy"]), fmt(s["log_loss"]), fmt(s["brier"]),
                                                    ece_text(s)]])
    say(f"{s['n']} rows, {scores.shape[1]} classes ({metrics['kind']} from {source}):", *table,
        *brier_legend(int(scores.shape[1])), *ci_legend([s]),
        *one_column_legends(s, classes, probs=args.probs is not None))
    if conformal is not None:
        say("")
        _conformal.print_summary(say, metrics["conformal"])
        say(f"Sets: {metrics['conformal']['sets_from']}.")
    if args.report:
        say(f"Report: {metrics['report']}")
    say.result(metrics)
    return 0


def one_class_note(labels: Any, classes: list | None, *, where: str) -> str | None:
    """The warning for labels that all hold one class, or None. The numbers are right, but they measure
    that class's rows alone: no row of another class shows whether the model tells the classes apart
    (audit AJ: 500 labels all 0 printed accuracy, log-loss and ECE without a word)."""
    import numpy as np

    present = np.unique(labels)
    if len(labels) == 0 or len(present) != 1:
        return None
    j = int(present[0])
    name = repr(str(classes[j])) if classes is not None and j < len(classes) else str(j)
    return (f"every label in {where} is class {name} ({len(labels)} rows): the metrics measure that class's rows "
            "only, and whether the model tells the classes apart (discrimination) cannot be judged without rows "
            "of another class")
