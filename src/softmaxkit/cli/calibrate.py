"""``softmaxkit calibrate``: fit a calibrator on logits from any framework."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from softmaxkit.cli import _conformal
from softmaxkit.cli._common import (
    add_output_options,
    add_prediction_inputs,
    calibration_name,
    check_extension,
    fraction,
    random_seed,
    recording_warnings,
)

CALIBRATOR_SUFFIXES = (".npz", ".safetensors")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from softmaxkit.cli._adapters import CALIBRATORS

    p = sub.add_parser(
        "calibrate",
        help="fit temperature/vector/matrix scaling, isotonic or Platt calibration on your own network's logits",
        description=(
            "Fit a calibrator on held-out logits (one column per class, from any framework) and their "
            "labels, save it, and report accuracy, log-loss, Brier score and ECE before and after. "
            "Apply it to new scores with 'softmaxkit apply' (or 'predict --calibrator')."
        ),
    )
    add_prediction_inputs(
        p, probs_help="probabilities instead of logits (temperature, vector and matrix scaling calibrate log p, "
        "so a zero probability on a true class cannot be calibrated by them; platt and isotonic fit on p itself)",
    )
    p.add_argument("--method", choices=tuple(CALIBRATORS), default="temperature",
                   help="calibration map (default: %(default)s). Temperature, vector and matrix scaling are fitted "
                   "with a weak prior on T around 1 (prior_scale 0.5, see softmaxkit.calibration.TemperatureScaling) "
                   "that keeps T finite when every row is right and keeps a few rows from moving T by chance, so T "
                   "is close to, not exactly, the maximum-likelihood T")
    p.add_argument("--out", required=True, metavar="CALIBRATOR", help="calibrator file (.npz or .safetensors)")
    p.add_argument("--holdout", type=fraction, metavar="FRACTION",
                   help="measure before/after on this share of rows, not used for fitting; the split is "
                   "stratified on the labels, so every class of 2 or more rows is on both sides "
                   "(default: measure on the fitting rows, which flatters vector and matrix scaling)")
    p.add_argument("--report", metavar="DIR", help="also write metrics.json, diagrams and report.html here")
    p.add_argument("--seed", type=random_seed, default=0, help="random seed of --holdout's split (default: 0)")
    _conformal.add_calibrate_options(p)
    add_output_options(p)
    p.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Usage errors (exit code 2) before any file is read: ``--out``'s extension (it exited 1, while a
    bad option value exits 2), then the ``--conformal`` options (:func:`_conformal.conformal_out`) and
    ``--conformal-out``'s extension."""
    check_extension(args.out, CALIBRATOR_SUFFIXES)
    check_extension(_conformal.conformal_out(args), CALIBRATOR_SUFFIXES, option="--conformal-out")


@recording_warnings  # --json "warnings": every warning said, not only the command's own
def run(args: argparse.Namespace, warned: list[str]) -> int:
    import warnings

    import numpy as np

    from softmaxkit.cli import _adapters
    from softmaxkit.cli._common import (
        Printer,
        check_output,
        check_report,
        holdout_rows,
        progress,
        read_named_predictions,
        require_two_classes,
        say_ignored,
    )
    from softmaxkit.cli._evaluation import (
        chance_legends,
        fit_warnings,
        metrics_by_key,
        paired_accuracy_change,
        paired_loss_change,
        print_comparison,
        score,
        verdict,
    )
    from softmaxkit.data import release_pages
    from softmaxkit.io import StagedOutputs
    from softmaxkit.report import write_report

    say = Printer(args)
    # The output paths are checked before anything is read: a bad --out or --report fails fast.
    inputs = (args.logits or args.probs, args.labels)  # never overwritten by an output
    check_output(args.out, inputs=inputs)
    conformal_path = _conformal.conformal_out(args)
    if conformal_path:
        check_output(conformal_path, inputs=inputs, option="--conformal-out")
    if args.report:
        check_report(args.report, files={"--out": args.out, "--conformal-out": conformal_path})
    # Named columns in sorted class order: the calibrator's class_names_ (and ties) do not follow the file's order.
    pred = read_named_predictions(args)
    source, kind, scores, labels, classes, ignored = pred[:6]
    require_two_classes(labels, where=args.labels, classes=classes)

    fit_rows = eval_rows = np.arange(len(labels))
    if args.holdout:
        fit_rows, eval_rows = holdout_rows(labels, args.holdout, args.seed)
        require_two_classes(labels[fit_rows], where=f"{args.labels} (the rows left to fit after --holdout)",
                            classes=classes)
    unmeasured = _unmeasured_classes(labels, fit_rows, eval_rows, classes=classes)
    _refuse_zero_scores(source, kind, scores, labels, fit_rows, method=args.method, classes=classes)
    y = labels[eval_rows]
    plot = args.report is not None
    where = "held-out" if args.holdout else "fitting"
    what = f" ({len(y)} {where} rows)"
    with progress(say, "calibrate", total=3) as bar:
        # The calibrator reads a memory-mapped file in place (no copy); the scoring below
        # reads it block by block, so the peak stays near the calibrator's own working set.
        fit_scores = scores if args.holdout is None else scores[fit_rows]
        calibrator = _adapters.fit_calibrator(args.method, fit_scores, labels[fit_rows],
                                              probs=args.probs is not None, classes=classes)
        params = _adapters.calibrator_params(calibrator, classes=classes)
        # Platt on p itself has a floor under every class's probability: how often it lifts the fitting rows
        # (fit_warnings says it where that is material; audit BX).
        floors = _adapters.probability_floors(calibrator, fit_scores, classes=classes) if args.probs else []
        if floors:
            params["probability_floors"] = floors
        del fit_scores
        release_pages(scores)
        bar.advance(1, step="scoring before")
        evaluated = scores if args.holdout is None else scores[eval_rows]
        given = {"logits": evaluated} if args.logits else {"probs": evaluated}
        scored = [score(y, key="uncalibrated", name="Before", plot=plot, what=what, classes=classes, **given)]
        bar.advance(1, step="scoring after")
        apply = _adapters.calibrated_logits if args.logits else _adapters.calibrated_from_probs
        scored.append(score(y, key="calibrated", name=f"After {calibration_name(args.method)}", plot=plot, what=what,
                            transform=lambda block: apply(calibrator, block), classes=classes, **given))
        bar.advance(1)
    sets = None
    if conformal_path:  # fitted on the raw scores of the fitting rows: see softmaxkit.cli._conformal
        conformal = _conformal.fit(scores if args.holdout is None else scores[fit_rows], labels[fit_rows],
                                   probs=args.probs is not None, score=args.conformal_score, seed=args.seed,
                                   classes=classes, class_conditional=args.conformal_by_class)
        sets = _conformal.summarize(conformal, y, _conformal.predict_sets(
            conformal, evaluated, args.conformal, probs=args.probs is not None, where=source,
            calibration_rows=not args.holdout),
            args.conformal, classes or list(range(scores.shape[1])), evaluated_on=f"{len(y)} {where} rows" + (
                "" if args.holdout else " (the rows that set the threshold: covered by construction, not a test; "
                "use --holdout)"))
        sets["path"] = conformal_path
    # Without --holdout the rows measured are the fitting rows: a gain there is no evidence (audit: matrix
    # scaling 1.0933 -> 1.0582 "(better)" in-sample, worse with --holdout 0.5), so never the good tone.
    # A map that can give a class probability 0 is never read as better (audit: isotonic read "better" on 30
    # held-out rows, infinite log-loss on fresh ones): the reading says "unsafe" and a warning names the classes.
    # One temperature for every class cannot single out a class the held-out rows lack: such a class
    # withholds no reading by itself if the reading holds without what the map does to those classes'
    # probability (_missing_part; audit BR: 1000 long-tailed classes, never read, for a T that took fresh
    # rows from 0.917 to 0.585). At two classes it is the class rule's, as for a map per class.
    missing = None
    if args.method == "temperature" and args.holdout:
        missing = _missing_part(calibrator, evaluated, y, apply=apply, logits=args.logits is not None,
                                classes=classes)
    shared = missing is not None and scores.shape[1] > 2
    loss_change = paired_loss_change(scored[0], scored[1], in_sample=not args.holdout,
                                     zero_classes=params.get("zero_classes"), each_class=not shared)
    holds = missing is not None and _reading_holds(loss_change, missing["part"])
    if shared and not holds:  # the class rule after all
        loss_change = paired_loss_change(scored[0], scored[1], in_sample=not args.holdout,
                                         zero_classes=params.get("zero_classes"))
    if holds:
        loss_change = {**loss_change, "absent_classes": missing["classes"], "absent_classes_part": missing["part"]}
        unmeasured = {}
    # Each row's predicted class before and after, from the pass that gave the per-row losses: isotonic, Platt,
    # vector and matrix maps can change it (review R20: accuracy 0.9766 -> 0.9532 went unsaid by the verdict).
    accuracy_change = paired_accuracy_change(scored[0], scored[1], in_sample=not args.holdout)
    note = verdict(scored[0].summary, scored[1].summary, change=calibration_name(args.method), params=params,
                   loss_change=loss_change, in_sample=not args.holdout, classes=classes,
                   accuracy_change=accuracy_change)
    if holds:
        note = (f"{note[0]} {_missing_sentence(missing)}", note[1])
    if unmeasured:
        # Every row of a class the map was fitted on went to the fit side (a class of one row): the held-out
        # rows cannot show what the map does to it, and a map pulling its probability toward 0 looks better
        # there (audit: 3 positives of 300, all fitted on, read "better"). Neither better nor worse is read;
        # for temperature scaling only when that pull could decide the reading (above).
        loss_change, note = _not_read(unmeasured, scored, change=calibration_name(args.method),
                                      loss_change=loss_change, accuracy_change=accuracy_change, params=params)
    cautions = fit_warnings(params, change=calibration_name(args.method), n_fit=len(fit_rows),
                            in_sample=not args.holdout, loss_change=loss_change, after=scored[1].summary,
                            n_classes=int(scores.shape[1]))
    if unmeasured:
        cautions.append(_unmeasured_warning(unmeasured, n_held=len(eval_rows)))
    # Its fitting rows had no 0 (refused above), but a new row may, and where the map has no value for log 0
    # apply/predict refuse that row (audit BK: a random forest's votes, 2 zeros in 1,770 new rows, made a
    # saved matrix calibrator unusable; review R13: a vector scale <= 0). Said while the user can still choose
    # another method, by the library's own rule.
    unmappable = _adapters.classes_without_zero_limit(calibrator) if args.probs is not None else []
    if unmappable and args.method == "matrix":  # every class: W mixes their log-probabilities
        cautions.append("matrix scaling: a new row holding a probability of exactly 0 cannot be mapped (apply and "
                        "predict refuse it); if the model can output 0 (a random forest's votes, naive Bayes "
                        "underflow), use --method temperature, platt or isotonic")
    elif unmappable:
        names = [str(classes[j]) if classes else str(j) for j in unmappable]
        which = (f"scale of class {names[0]!r} is" if len(names) == 1 else
                 f"scales of classes {', '.join(map(repr, names))} are")
        cautions.append(f"vector scaling: the fitted {which} not > 0, so a new row holding a probability "
                        "of exactly 0 there cannot be mapped (apply and predict refuse it); if the model can output "
                        "0, use --method temperature, platt or isotonic")
    # Accuracy at or far below chance, as evaluate says it under its table: columns in the other class order
    # read as a large calibration gain once Platt scaling flipped them, without a word (audit BJ).
    # Each side named: two "Accuracy ... is no better than" lines said neither's (audit BX).
    chance = chance_legends(scored[0].summary, scored[1].summary, change=calibration_name(args.method))
    for line in cautions:
        warnings.warn(line, stacklevel=1)
    # "logits"/"probabilities", the spelling evaluate's --json uses (this said "logit"/"probability": audit BJ)
    metrics = {"source": source, "kind": "logits" if args.logits else "probabilities", "labels": args.labels,
               "n_classes": int(scores.shape[1]), "n_fit": int(len(fit_rows)), "n_evaluated": int(len(y)),
               "evaluated_on": where,
               "calibrator": {**params, "path": args.out}, "metrics": metrics_by_key(scored),
               "log_loss_change": loss_change, "accuracy_change": accuracy_change, "verdict": note[0],
               "warnings": cautions,
               "classes": classes, "ignored_columns": list(ignored),
               # which id column paired the labels with the scores' rows (None: by position), for scripts
               "labels_matched_on": pred.matched_on, "scores_matched_on": pred.scores_matched_on,
               "labels_left_out": pred.labels_left_out}
    if sets:
        metrics["conformal"] = sets
        # A level whose measured coverage fell short of it, or a class's coverage (audit BT: class 'Ä' 15 of 22
        # at 90%, in a table row only): said on stderr and in "warnings", as the calibration's cautions (the
        # report's sets section says it too), in the demo's words.
        for line in [*_conformal.coverage_shortfalls(sets), *_conformal.class_shortfalls(sets)]:
            warnings.warn(line, stacklevel=1)
    report = None
    if args.report:
        from softmaxkit.cli._evaluation import comparison_section, loss_card_reading
        from softmaxkit.report import Headline, Report, ci_text, distinct, ece_ci_text, glossary_section

        b, a = scored[0].summary, scored[1].summary
        # decimals enough to tell the two apart, and the verdict's reading of the change, as fit's card says it
        # ("Log-loss 0.608 ... was 0.608" beside a verdict of "better": audit BT)
        after_loss, before_loss = distinct(a["log_loss"], b["log_loss"], digits=3)
        headlines = [Headline("ECE before", f"{b['ece']:.3f}", ece_ci_text(b, digits=3)),
                     Headline("ECE after", f"{a['ece']:.3f}", ece_ci_text(a, digits=3), note[1]),
                     Headline("Log-loss", after_loss, "; ".join(filter(None, [
                         ci_text(a, "log_loss", digits=3), f"was {before_loss}", loss_card_reading(loss_change)])),
                         "warn" if (loss_change or {}).get("reading") in ("worse", "unsafe") else "neutral")]
        if "temperature" in params:
            headlines.append(Headline("Temperature", f"T = {params['temperature']:.3g}",
                                      "stopped on its bound: not a fit" if params["at_bound"]
                                      else "logits are divided by T", "warn" if params["at_bound"] else "neutral"))
        intro = (f"{calibration_name(args.method).capitalize()} fitted on {len(fit_rows)} rows of {source}; measured on "
                 f"{len(y)} {where} rows" + ("." if args.holdout else " (the rows it was fitted on, not a test; "
                                                               "use --holdout).")) + "".join(
                     f" Warning: {line}." for line in cautions) + "".join(f" {line}" for line in chance)
        report = Report(title=f"softmaxkit calibrate: {calibration_name(args.method)}", subtitle=f"{source} + {args.labels}",
                        headlines=headlines,
                        sections=[comparison_section(scored, title="Before and after calibration", intro=intro,
                                                     note=note, loss_change=loss_change,
                                                     accuracy_change=accuracy_change),
                                  *([_conformal.section(sets, n_classes=scores.shape[1])] if sets else []),
                                  glossary_section()],
                        footer="Generated by softmaxkit calibrate", metrics=metrics)
    # The calibrator this run replaces, read before the commit: only a predictor saved with it is removed.
    default = _conformal.default_conformal_path(args.out)
    replaced = _adapters.calibrator_record(args.out, _adapters.saved_digest(args.out, _adapters.state_digest),
                                           predictor=default)
    with StagedOutputs(inputs=inputs) as outputs:  # the calibrator and the report appear together, or neither
        staged = outputs.stage(args.out)
        calibrator.save(staged)
        digest = _adapters.state_digest(staged)
        new_digest = _adapters.calibrator_record(args.out, digest, predictor=default)
        if conformal_path:
            _adapters.remember_classes(conformal, classes)
            # The calibrator's path and digest go into the predictor: this run's pair is known as one later.
            record = _adapters.calibrator_record(args.out, digest, predictor=conformal_path)
            # What it was fitted on, for predict/apply/evaluate to hold new rows' scores against (audit BV).
            fitted_on = _conformal.top_probability_record(scores if args.holdout is None else scores[fit_rows],
                                                          probs=args.probs is not None)
            conformal.save(outputs.stage(conformal_path), extra_meta={_adapters.CALIBRATOR_DIGEST_KEY: record,
                                                                      _conformal.TOP_PROBABILITIES_KEY: fitted_on})
        # Without --conformal, a predictor an earlier run saved with the calibrator replaced here is not
        # this run's: removed with the commit, as fit removes a stale MODEL.calibrator.npz. Only that one:
        # one saved with another calibrator (--conformal-out) or without the record is the user's (audit R).
        stale = None
        fate = None if conformal_path else _adapters.companion_fate(
            default, kinds=("ConformalClassifier",), key=_adapters.CALIBRATOR_DIGEST_KEY, replaced=replaced,
            written=new_digest)
        if fate == "remove":
            stale = default
            outputs.remove(stale)
        elif fate == "foreign":
            warnings.warn(f"{default} was saved by 'calibrate --conformal' with another calibrator than "
                          f"{args.out}; left in place (its sets come from the scores that run was given)",
                          stacklevel=1)
        metrics["removed_stale_conformal"] = stale
        # Every warning is said by now: the fit's cautions (listed even where Python's warning filters hide
        # them), then whatever else was said, in metrics.json as in --json (it kept the cautions alone and
        # lost the reader's, such as "row 369: true class written as probability 0": audit BJ).
        metrics["warnings"] = list(dict.fromkeys([*cautions, *warned]))
        if report is not None:
            metrics["report"] = str(write_report(args.report, report, inputs=inputs, outputs=outputs)["report"])
        outputs.commit()

    say_ignored(say, source, ignored, "not scores")
    extra = f", T = {params['temperature']:.4g}" if "temperature" in params else ""
    extra += " (on its bound: no optimum found)" if params["at_bound"] else ""
    say(f"Fitted {calibration_name(args.method)} on {len(fit_rows)} rows{extra}; saved {args.out}", "")
    if stale is not None:
        say(f"Removed {stale}: a conformal predictor an earlier run saved with the calibrator this run replaced "
            "(use --conformal to fit one on these scores)", "")
    print_comparison(say, scored, heading=f"Metrics on {len(y)} {where} rows:", n_classes=int(scores.shape[1]))
    say(*chance, note[0])
    if sets:
        say("")
        _conformal.print_summary(say, sets)
        say(f"Saved the conformal predictor to {conformal_path} (new scores: 'softmaxkit apply --conformal'; "
            "a softmaxkit model: 'predict --conformal')")
    if args.report:
        say(f"Report: {metrics['report']}")
    say.result(metrics)
    return 0


#: ``log_loss_change["reading"]`` when the held-out rows lack a class the map was fitted on.
MISSING_CLASS = "a class has no held-out row"


def _unmeasured_classes(labels, fit_rows, eval_rows, *, classes) -> dict:  # noqa: ANN001
    """``{class name: rows}`` of the classes the fit rows hold and the held-out rows do not (empty without
    --holdout, where both are the same rows). With :func:`holdout_rows` only a class of one row is such."""
    import numpy as np

    fitted = np.unique(labels[fit_rows])
    missing = fitted[~np.isin(fitted, labels[eval_rows])]
    counts = np.bincount(labels, minlength=int(fitted.max()) + 1)
    return {(classes[int(k)] if classes is not None else int(k)): int(counts[k]) for k in missing}


def _class_list(names: Iterable) -> str:
    """``class 'yes'`` or ``classes 'a' and 'b'``, as the library names classes (:func:`repr` of a name); past
    :data:`~softmaxkit._loss_interval.LISTED_NAMES` classes the first few and a count (audit BR: 220 class
    numbers, twice in one verdict). ``--json`` keeps every name."""
    from softmaxkit._loss_interval import name_list

    names = [repr(k) for k in names]
    if len(names) == 1:
        return f"class {names[0]}"
    return f"classes {name_list(names)}"


def _unmeasured_warning(unmeasured: dict, *, n_held: int) -> str:
    """The warning (stderr and ``--json`` ``"warnings"``) for held-out rows lacking fitted classes."""
    from softmaxkit._loss_interval import LISTED_NAMES, name_list

    each = [f"{k!r} has {n} row{'s' * (n != 1)}" for k, n in unmeasured.items()]
    counts = set(unmeasured.values())
    if len(each) <= LISTED_NAMES:
        rows = ", ".join(each)
    elif len(counts) == 1:  # holdout_rows leaves only classes of one row out of the held-out side
        n = counts.pop()
        rows = f"each has {n} row{'s' * (n != 1)}"
    else:
        rows = name_list(each)
    it = "it" if len(unmeasured) == 1 else "them"
    return (f"--holdout: no held-out row is of {_class_list(unmeasured)} ({rows}, fitted on), so the {n_held} "
            f"held-out rows cannot show what the map does to {it}; the change there is not read as better or "
            f"worse (label more rows of {it}, or measure the calibrator on another labelled file: 'softmaxkit "
            "apply', then 'softmaxkit evaluate')")


def _not_read(unmeasured: dict, scored: list, *, change: str, loss_change: dict | None,
              accuracy_change: dict | None = None, params: dict | None = None) -> tuple[dict | None, tuple]:
    """The log-loss change and the verdict when the held-out rows lack a class the map was fitted on:
    the change's ``reading`` is :data:`MISSING_CLASS` (its interval is kept, for the record) and the
    verdict gives the numbers without reading them, in the warning tone. A fall in accuracy
    (``accuracy_change``, :func:`~softmaxkit.cli._evaluation.paired_accuracy_change`) is said as the verdict
    says it: the rows whose predicted class it turned wrong are wrong whatever class the held-out rows lack."""
    from softmaxkit.cli._evaluation import accuracy_fall

    b, a = scored[0].summary, scored[1].summary
    if loss_change is not None:
        loss_change = {**loss_change, "reading": MISSING_CLASS, "missing_classes": list(unmeasured)}
    them = "that class" if len(unmeasured) == 1 else "those classes"
    text = (f"Not measured: no held-out row is of {_class_list(unmeasured)}, whose rows were all fitted on, so "
            f"these {a['n']} rows cannot tell whether {change} helped (a map that pulls the probability of {them} "
            f"toward 0 scores well on them). ECE {b['ece']:.4f} before and {a['ece']:.4f} after; log-loss "
            f"{b['log_loss']:.4f} before and {a['log_loss']:.4f} after, not read as better or worse."
            f"{accuracy_fall(accuracy_change, params=params)}")
    return loss_change, (text, "warn")


def _missing_part(calibrator, scores, y, *, apply, logits: bool, classes) -> dict | None:  # noqa: ANN001
    """What the probability a map gives the classes with no held-out row adds to the log-loss change, or None
    when every class has a held-out row.

    A row's log-loss is its log-loss among the classes the held-out rows hold, plus ``-log(1 - p_absent)``,
    the price of the probability given to the others; a map that lowers ``p_absent`` gains the difference on
    every held-out row, whatever it does to those classes' own rows. ``{"classes": their names,
    "part": the mean per-row change of that price}`` over the held-out ``scores`` (logits, or probabilities
    when not ``logits``) and their labels ``y``, before and after ``apply(calibrator, block)``, a row block
    at a time.
    """
    import numpy as np

    from softmaxkit.data import iter_row_blocks
    from softmaxkit.functional import logsumexp

    n_classes = scores.shape[1]
    absent = np.flatnonzero(np.bincount(y, minlength=n_classes) == 0)
    if absent.size == 0:
        return None
    present = np.setdiff1d(np.arange(n_classes), absent)

    def price(z):  # -log(1 - p_absent) per row, from logits z
        return logsumexp(z, axis=1) - logsumexp(z[:, present], axis=1)

    total = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for _, block in iter_row_blocks(scores):
            raw = np.asarray(block, dtype=np.float64)
            before = raw if logits else np.log(raw)
            total += float(np.sum(price(np.asarray(apply(calibrator, block), dtype=np.float64)) - price(before)))
    names = [classes[int(k)] if classes is not None else int(k) for k in absent]
    return {"classes": names, "part": total / len(y)}


def _reading_holds(loss_change: dict | None, part: float) -> bool:
    """Whether the better, worse or within-the-noise reading of ``loss_change`` stays as it is once ``part``
    (:func:`_missing_part`) is taken out of its interval: the map's gain or loss on the classes the held-out
    rows hold then reads the same. False for any other reading, and for a part that is not finite."""
    import math

    if loss_change is None or not math.isfinite(part):
        return False
    reading = loss_change["reading"]
    if reading not in ("better", "worse", "within the noise"):
        return False
    lo, hi = (v - part for v in loss_change["ci95"])
    return reading == ("better" if hi < 0 else "worse" if lo > 0 else "within the noise")


def _missing_sentence(missing: dict) -> str:
    """The verdict's sentence when classes have no held-out row and temperature scaling's reading holds."""
    them = "it" if len(missing["classes"]) == 1 else "them"
    return (f"No held-out row is of {_class_list(missing['classes'])}; one temperature, shared by every class, "
            f"cannot single {them} out: the probability it moves onto or off {them} makes {missing['part']:+.4f} of "
            "the mean log-loss change here, too little to alter that reading.")


def _refuse_zero_scores(  # noqa: ANN001 - arrays and an optional class list, as read by read_predictions
    source: str, kind: str, scores, labels, fit_rows, *, method: str, classes
) -> None:
    """Refuse, naming file, row and class, the fitting rows no calibration of ``method`` can take.

    A probability of 0 (a logit of ``-inf``; isotonic maps say 0, and their
    output chained through ``predict --logits-out`` or ``apply``) on a row's
    true class makes the likelihood 0 whatever a map of ``log p`` does. Other
    than temperature scaling, such maps also need every score finite. Platt
    and isotonic on probabilities fit on ``p`` itself, where 0 is a score like
    any other: nothing is refused for them. The library's own errors give 0-based array positions; this one
    speaks in the file's rows. Scanned in row blocks, so a memory-mapped file
    is not copied.
    """
    from pathlib import Path

    import numpy as np

    from softmaxkit.cli import CLIError
    from softmaxkit.data import iter_row_blocks, location

    probability = kind == "probability"
    if probability and method in ("isotonic", "platt"):
        return  # fitted on p itself (as scikit-learn's isotonic and sigmoid): a probability 0 is a score like any
    what = "probability 0" if probability else "logit -inf (probability 0)"

    def name(j: int) -> str:
        return str(classes[j]) if classes is not None else str(j)

    true = np.asarray(scores[fit_rows, labels[fit_rows]])
    dead = true <= 0 if probability else np.isneginf(true)
    if dead.any():
        row = int(fit_rows[int(np.argmax(dead))])
        raise CLIError(location(Path(source), row) + f"its true class {name(int(labels[row]))!r} has {what}, so "
                       "the likelihood is 0 whatever the calibration; fit on the model's own scores (an isotonic "
                       "map's output can hold zeros)" + (", or use --method platt or isotonic, which fit on p "
                       "itself (a random forest's votes hold exact zeros)" if probability else ""))
    if method == "temperature":
        return
    fitting = np.zeros(len(labels), dtype=bool)
    fitting[fit_rows] = True
    for start, block in iter_row_blocks(scores):
        bad = (block <= 0 if probability else np.isneginf(block)) & fitting[start:start + len(block), None]
        if bad.any():
            row, j = (int(v) for v in np.unravel_index(int(np.argmax(bad)), bad.shape))
            raise CLIError(location(Path(source), start + row) + f"class {name(j)!r} has {what}, and {method} "
                           f"calibration needs every score finite (scores that went through an isotonic map "
                           "can hold zeros); use --method temperature, or fit on the model's own scores")
