"""``softmaxkit evaluate``: score logits or probabilities against labels."""

from __future__ import annotations

import argparse

from softmaxkit.cli import _conformal
from softmaxkit.cli._common import add_output_options, add_prediction_inputs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, log-loss, Brier score and ECE of logits or probabilities",
        description=(
            "Score predictions against labels: accuracy, log-loss (exact from logits), Brier score and "
            "top-label ECE (with --ci or --report also its bootstrap confidence interval and noise floor). "
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
    p.add_argument("--ci", action="store_true",
                   help="bootstrap the ECE's 95%% interval and its noise floor (always done with --report)")
    add_output_options(p)
    p.set_defaults(run=run, check=_conformal.check_set_options)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from softmaxkit.cli._common import (
        Printer,
        brier_legend,
        check_report,
        class_order,
        in_fitted_order,
        progress,
        read_predictions,
        say_ignored,
        text_table,
    )
    from softmaxkit.cli._evaluation import score
    from softmaxkit.io import StagedOutputs
    from softmaxkit.report import ece_text, fmt

    say = Printer(args)
    inputs = (args.logits or args.probs, args.labels, *([args.conformal] if args.conformal else []))
    if args.report:
        check_report(args.report)
    conformal = _conformal.load(args.conformal) if args.conformal else None
    source, _, scores, labels, classes, ignored = read_predictions(args)
    given = {"logits": scores} if args.logits else {"probs": scores}
    ci = bool(args.ci or args.report)
    with progress(say, "scoring", total=None):  # the ECE bootstrap takes a moment at large n
        scored = score(labels, key="predictions", name="Predictions", plot=args.report is not None,
                       what=f" ({len(labels)} rows)", ci=ci, **given)
    s = scored.summary
    metrics = {"source": source, "kind": "logits" if args.logits else "probabilities", "labels": args.labels,
               "n_classes": int(scores.shape[1]), "classes": classes, "ignored_columns": list(ignored), "metrics": s}
    if conformal is not None:
        order = class_order(classes, conformal, source=source, fitted_as=f"--conformal {args.conformal}")
        # The sets predict/apply wrote were made from the model's own scores; the probabilities beside
        # them may be calibrated, and would give other sets (see softmaxkit.cli._conformal).
        written = _conformal.written_sets(source, ignored, args.sets, classes, int(scores.shape[1]))
        rebuilt = [a for a, w in zip(args.sets, written) if w is None]
        sets = np.zeros((scores.shape[0], scores.shape[1], len(args.sets)), dtype=bool)
        if rebuilt:
            made = in_fitted_order(lambda z: _conformal.predict_sets(
                conformal, z, tuple(rebuilt), probs=args.probs is not None, where=source), scores, order)
        for i, (a, w) in enumerate(zip(args.sets, written)):
            sets[:, :, i] = w if w is not None else made[:, :, rebuilt.index(a)]
        parts = []
        if len(rebuilt) < len(args.sets):
            shown = ", ".join(_conformal.level_name(a) for a, w in zip(args.sets, written) if w is not None)
            parts.append(f"at {shown} the set columns of {source}, as predict/apply wrote them")
        if rebuilt:
            parts.append(f"at {', '.join(map(_conformal.level_name, rebuilt))} rebuilt from the {metrics['kind']} of "
                         f"{source}: right only if they are the model's own, uncalibrated scores, as the predictor "
                         "was fitted on (calibrated ones, from predict --calibrator or apply, give other sets; write "
                         "the sets there with --conformal --sets)")
        sets_from = "; ".join(parts)
        metrics["conformal"] = _conformal.summarize(conformal, labels, sets, args.sets,
                                                    classes or list(range(scores.shape[1])),
                                                    evaluated_on=f"{len(labels)} rows")
        metrics["conformal"]["sets_from"] = sets_from
    if args.report:
        from softmaxkit.cli._evaluation import comparison_section
        from softmaxkit.report import Headline, Report, glossary_section, write_report

        headlines = [Headline("Accuracy", f"{s['accuracy'] * 100:.1f}%", f"{s['n']} rows"),
                     Headline("Log-loss", f"{s['log_loss']:.3f}", "lower is better"),
                     Headline("ECE", f"{s['ece']:.3f}", f"95% CI {s['ece_ci'][0]:.3f}-{s['ece_ci'][1]:.3f}; "
                              f"noise floor {s['ece_noise_floor']:.3f}")]
        report = Report(title="softmaxkit evaluate", subtitle=f"{source} against {args.labels}", headlines=headlines,
                        sections=[comparison_section([scored], title="Scores", intro=(
                            f"{s['n']} rows, {scores.shape[1]} classes, scored from "
                            f"{'logits (exact log-loss)' if args.logits else 'probabilities'}.")),
                            *([_conformal.section(metrics["conformal"], n_classes=int(scores.shape[1]))]
                              if conformal is not None else []),
                            glossary_section()],
                        footer="Generated by softmaxkit evaluate", metrics=metrics)
        with StagedOutputs(inputs=inputs) as outputs:
            metrics["report"] = str(write_report(args.report, report, inputs=inputs, outputs=outputs)["report"])
            outputs.commit()
    say_ignored(say, source, ignored, "not scores")
    header = ["accuracy", "log-loss", "Brier", "ECE [95% CI]" if ci else "ECE"] + (["ECE noise floor"] if ci else [])
    row = [fmt(s["accuracy"]), fmt(s["log_loss"]), fmt(s["brier"]), ece_text(s)] + (
        [fmt(s["ece_noise_floor"])] if ci else [])
    say(f"{s['n']} rows, {scores.shape[1]} classes ({metrics['kind']} from {source}):", *text_table(header, [row]),
        *brier_legend(int(scores.shape[1])))
    if conformal is not None:
        say("")
        _conformal.print_summary(say, metrics["conformal"])
        say(f"Sets: {metrics['conformal']['sets_from']}.")
    if args.report:
        say(f"Report: {metrics['report']}")
    say.result(metrics)
    return 0
