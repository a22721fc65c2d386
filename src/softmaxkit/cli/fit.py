"""``softmaxkit fit``: train a SoftmaxClassifier on a data file, save it and a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from softmaxkit.cli._common import (
    add_ignore_option,
    add_output_options,
    calibration_name,
    check_extension,
    fraction,
    hidden_sizes,
    parse_number,
    positive_int,
    random_seed,
    recording_warnings,
)

MODEL_SUFFIXES = (".npz", ".safetensors")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from softmaxkit._alpha_search import MLP_LBFGS_MIN_ROWS
    from softmaxkit.cli._adapters import CALIBRATORS

    p = sub.add_parser(
        "fit",
        help="train a classifier on a CSV/Parquet/npy/npz/safetensors file",
        description=(
            "Train a SoftmaxClassifier by maximum likelihood (log-loss) on DATA, holding out part of it "
            "to measure the model. Every column but the target, row ids, a saved row index, --ignore's and "
            "--sample-weight's is a feature. With --calibrate, a calibrator is cross-fitted on the training "
            "rows' out-of-fold logits (5 folds), so no rows are set aside for it. Saves the model (.npz or "
            ".safetensors, never pickle) and a report directory with metrics.json, reliability diagrams "
            "and report.html."
        ),
    )
    p.add_argument("data", metavar="DATA", help="training data: .csv, .tsv, .parquet, .npy, .npz or .safetensors")
    p.add_argument("--target", required=True, metavar="COL", help="label column: a name, or a position such as -1")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz or .safetensors)")
    add_ignore_option(p, what="features")
    p.add_argument("--sample-weight", metavar="COL",
                   help="column of row counts: a name, or a position such as -1. Each row counts in training "
                   "as that many observations (the counts of aggregated data: a row with count 350 as 350 rows), "
                   "and --alpha auto's internal folds split a row's observations between them, as they would the "
                   "repeated rows; values: finite numbers >= 0 (whole numbers are counts; others are split with "
                   "their rows). Not a feature, so predict does not need it. The holdout split is over rows (a row "
                   "is held out whole) and the held-out metrics count each row once; with --calibrate the "
                   "calibrator's fit is weighted too. For importance weights (how much a row matters, not how "
                   "many observations it is), fit SoftmaxClassifier in Python, whose weights_are_counts=False "
                   "holds each row out whole")
    p.add_argument("--hidden", type=hidden_sizes, default=(), metavar="SIZES",
                   help="hidden layer sizes, e.g. 128,64 (default: none, i.e. multinomial logistic regression); "
                   "with --alpha auto on standardised features (the default) and at least "
                   f"{MLP_LBFGS_MIN_ROWS} training rows the network is trained by L-BFGS, else (fewer rows, "
                   "a number for --alpha, or --no-standardize) by Adam: on a few dozen rows the penalty chosen "
                   "on internal folds is noisy, and L-BFGS fits a too-weak one to over-confident probabilities")
    p.add_argument("--alpha", type=alpha_value, default="auto",
                   help="L2 regularisation strength: a number >= 0, or 'auto' to choose it by held-out log-loss "
                   "on internal folds of the training rows (default: %(default)s)")
    p.add_argument("--no-standardize", action="store_true",
                   help="penalise the weights of the raw features, as scikit-learn's estimators do on the same "
                   "file (default: of the standardised features, as after a StandardScaler; the saved weights "
                   "apply to raw features either way)")
    p.add_argument("--max-iter", type=positive_int, default=200, help="training iterations (default: %(default)s)")
    p.add_argument("--calibrate", choices=tuple(CALIBRATORS),
                   help="also fit this calibrator, cross-fitted on the training rows (5 folds)")
    p.add_argument("--holdout", type=fraction, default=0.25, metavar="FRACTION",
                   help="share of rows held out from training to measure the model (default: %(default)s)")
    p.add_argument("--report", metavar="DIR", help="report directory (default: MODEL's name + '-report')")
    p.add_argument("--no-report", action="store_true", help="write no report")
    p.add_argument("--seed", type=random_seed, default=0, help="random seed of the split and the model (default: 0)")
    add_output_options(p)
    p.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Usage errors (exit code 2) before any file is read: ``--out``'s extension, then the estimator's own
    parameter checks."""
    from softmaxkit.cli import UsageError
    from softmaxkit.cli._adapters import check_classifier_params

    check_extension(args.out, MODEL_SUFFIXES)  # the calibrator's file (calibrator_path) takes the same one
    options = {"hidden_layer_sizes": "--hidden", "alpha": "--alpha", "max_iter": "--max-iter"}
    try:
        check_classifier_params(hidden_layer_sizes=args.hidden, alpha=args.alpha, max_iter=args.max_iter)
    except (TypeError, ValueError) as exc:
        option = next((opt for name, opt in options.items() if name in str(exc)), None)
        raise UsageError(f"{option}: {exc}" if option else str(exc)) from None


def alpha_value(text: str) -> float | str:
    """``--alpha``: ``auto`` (SoftmaxClassifier's default) or a finite number >= 0."""
    import math

    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = parse_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text!r}")
    return value


def calibrator_path(model_path: str) -> Path:
    """Where ``fit --calibrate`` puts the calibrator: ``model.npz`` -> ``model.calibrator.npz``."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.calibrator{path.suffix}")


def _split(y, holdout: float, seed: int):
    """Training and held-out row indices: :func:`softmaxkit.cli._common.stratified_holdout`, the split
    ``calibrate --holdout`` makes too (a class's only row always trains; the rest split stratified, every
    class of 2 or more rows on both sides)."""
    from softmaxkit.cli._common import stratified_holdout

    return stratified_holdout(y, holdout, seed)


@recording_warnings  # --json "warnings": every warning said, not only the command's own
def run(args: argparse.Namespace, warned: list[str]) -> int:
    import sys
    import warnings

    import numpy as np

    from softmaxkit.cli import CLIError, _adapters
    from softmaxkit.cli._common import (
        Printer,
        check_output,
        check_report,
        encode_labels,
        ignored_columns,
        progress,
        require_two_classes,
        say_ignored,
    )
    from softmaxkit.cli._evaluation import (
        fit_warnings,
        metrics_by_key,
        paired_accuracy_change,
        paired_loss_change,
        print_comparison,
        score,
        verdict,
    )
    from softmaxkit.data import read_features, row_id_columns
    from softmaxkit.io import StagedOutputs

    say = Printer(args)
    # Every output is checked before the data is read and the model trained.
    check_output(args.out, inputs=(args.data,))
    cal_out = calibrator_path(args.out) if args.calibrate else None
    if cal_out is not None:
        check_output(str(cal_out), inputs=(args.data,), option="calibrator file")
    report_dir = None
    if not args.no_report:
        report_dir = args.report or str(Path(args.out).with_name(Path(args.out).stem + "-report"))
        check_report(report_dir, option="--report" if args.report else "report directory",
                     files={"--out": args.out, "the calibrator file": cal_out})
    start = time.perf_counter()

    # Row ids (patient_id, id: named like one, holding whole numbers or text) are left out, as predict and
    # evaluate read them: as a feature, patient_id let later ids move a prediction by up to 1.000 (audit).
    data = read_features(args.data, target=args.target, ignore=ignored_columns(args), ids=True,
                         weight=args.sample_weight)
    if data.ids:
        names = ", ".join(map(repr, data.ids))
        several = len(data.ids) > 1
        warnings.warn(f"{args.data}: column{'s' if several else ''} {names} left out of the features as "
                      f"{'row ids' if several else 'a row id'} (named like one, holding whole numbers or text): an "
                      "id is not a feature, and as one "
                      "it lets the model learn the row order, so that new rows with later ids get other "
                      "predictions; to keep one as a feature, rename it so that its name is not an id's (not "
                      "'id', no '_id' or 'ID' ending)", stacklevel=1)
    for name in row_id_columns(data.feature_names, data.X):
        # Maybe a real feature, so not refused; as a row number it lets the model learn the row order.
        warnings.warn(f"{args.data}: feature column {name!r} looks like a row id (named like one, or "
                      "holding the row numbers in order); if it is not a feature, pass --ignore "
                      f"{name}", stacklevel=1)
    if data.weight_name is None:
        _warn_weight_named_features(args.data, data)
    _check_trainable_scale(args.data, data)
    require_two_classes(data.y, where=f"{args.data}: column {data.target_name!r}")
    if len(data.y) < 4:
        raise CLIError(f"{args.data}: only {len(data.y)} rows; need at least 4 to train and hold out")
    train, held = _split(data.y, args.holdout, args.seed)
    if len(np.unique(data.y[train])) < 2:
        raise CLIError(f"{args.data}: the training split has a single class; use more data or a smaller --holdout")

    show_bar = not say.quiet and sys.stderr.isatty()  # the model's own training bar
    model = _adapters.new_classifier(
        hidden=args.hidden, alpha=args.alpha, max_iter=args.max_iter, random_state=args.seed, verbose=show_bar,
        standardize=not args.no_standardize,
        weights_are_counts=data.weights is not None,  # --sample-weight is counts (its help)
    )
    t0 = time.perf_counter()
    calibrator = None
    weights = None if data.weights is None else data.weights[train]
    if weights is not None and not np.any(weights > 0):
        raise CLIError(f"{args.data}: every training row has weight 0 in column {data.weight_name!r}; use "
                       "another --seed or --holdout, or give more rows a weight")
    if args.calibrate:
        # Out-of-fold logits of the training rows fit the calibrator; the model is refitted on all of them.
        model, calibrator, folds = _adapters.cross_fit_calibrator(model, args.calibrate, data.X[train], data.y[train],
                                                                  sample_weight=weights)
        _adapters.remember_classes(calibrator, _adapters.model_classes(model))
    else:
        model.fit(data.X[train], data.y[train], sample_weight=weights)
    fit_seconds = time.perf_counter() - t0
    classes = _adapters.model_classes(model)

    # A class with a single row cannot be on both sides of the split; held-out rows of a class the
    # model never saw cannot be scored, so leave them out of the scores and say so.
    seen = np.isin(data.y[held], classes)
    if not seen.all():
        warnings.warn(f"{args.data}: {int((~seen).sum())} held-out rows belong to classes with too few rows to "
                      "train on; they are left out of the held-out scores")
        held = held[seen]
    if data.weights is not None:
        _warn_counts_held_out(args.data, data, held)
    y_held_idx = encode_labels(data.y[held], classes, path=args.data, column=data.target_name, rows=held)
    test_rows = np.arange(len(held))
    logits = _adapters.class_logits(model, data.X[held])
    what = f" ({len(test_rows)} held-out rows)"
    plot = not args.no_report
    with progress(say, "scoring", total=None):
        y_test = y_held_idx[test_rows]
        names = [str(c) for c in classes]
        scored = [score(y_test, key="model", name="Model", logits=logits[test_rows], plot=plot, what=what,
                        classes=names)]
        params = {}
        if calibrator is not None:
            params = _adapters.calibrator_params(calibrator, classes=classes)
            cal_logits = _adapters.calibrated_logits(calibrator, logits[test_rows])
            scored.append(score(y_test, key="calibrated", name=f"With {calibration_name(args.calibrate)}",
                                logits=cal_logits, plot=plot, what=what, classes=names))

    # Names go in last: scikit-learn warns when a model fitted with names meets plain arrays.
    _adapters.remember_columns(model, data.feature_names if data.named else None,
                               data.target_name if data.named else None)

    # the paired interval that decides whether the calibrator's log-loss change is read as better or worse
    # ("unsafe" when the map can give a class probability 0: calibrate's reading, from the same code)
    loss_change = paired_loss_change(scored[0], scored[-1], zero_classes=params.get("zero_classes")) \
        if len(scored) > 1 else None
    # each held-out row's predicted class with and without the calibrator: a map other than temperature scaling
    # can change it, and a fall in accuracy is said (review R20)
    accuracy_change = paired_accuracy_change(scored[0], scored[-1]) if len(scored) > 1 else None
    note = (verdict(scored[0].summary, scored[-1].summary, change=calibration_name(args.calibrate), params=params,
                    loss_change=loss_change, classes=names, accuracy_change=accuracy_change)
            if len(scored) > 1 else None)
    metrics = {
        "data": str(args.data),
        "target": data.target_name,
        "classes": [c.item() if hasattr(c, "item") else c for c in classes],
        "n_features": int(data.X.shape[1]),
        "n_train": int(len(train)),
        "n_calibration": int(len(train)) if args.calibrate else 0,
        "calibration": f"cross-fitted, {folds} folds" if args.calibrate else None,
        "n_test": int(len(test_rows)),
        "model": {"hidden_layer_sizes": list(args.hidden), "alpha": args.alpha, "alpha_chosen": float(model.alpha_),
                  "alpha_search_skipped": _search_skipped(args.alpha, model, data.y[train],
                                                          None if data.weights is None else data.weights[train]),
                  "standardize": not args.no_standardize, "solver": model.solver_,
                  "max_iter": args.max_iter,
                  "fit_seconds": fit_seconds, "path": str(args.out)},
        "calibrator": ({**params, "path": str(cal_out)} if cal_out else None),
        "held_out": metrics_by_key(scored),
        "log_loss_change": loss_change,
        "accuracy_change": accuracy_change,
        "warnings": (fit_warnings(params, change=calibration_name(args.calibrate), n_fit=len(train), in_sample=False,
                                  loss_change=loss_change)
                     if calibrator is not None else []),
        "ignored_columns": list(data.ignored),
        "sample_weight": data.weight_name,
        # what the terminal says under the table, for scripts (calibrate and demo record theirs too)
        "verdict": note[0] if note is not None else None,
    }
    for line in metrics["warnings"]:  # the calibrator's, as calibrate says them (stderr, also under --json)
        warnings.warn(line, stacklevel=1)
    written = {}
    # The model this fit replaces, read before the commit: only a calibrator made for it is removed.
    replaced = _adapters.saved_digest(args.out, _adapters.model_file_digest)
    with StagedOutputs(inputs=(args.data,)) as outputs:  # model, calibrator and report: all or none
        staged_model = outputs.stage(args.out)
        model.save(staged_model)
        new_digest = _adapters.model_file_digest(staged_model)
        if cal_out is not None:
            # The model's digest goes into its calibrator: predict refuses it with any other model.
            _adapters.save_calibrator(calibrator, outputs.stage(cal_out), model_digest=new_digest)
        # A calibrator an earlier fit wrote next to MODEL for the model replaced here is removed with the
        # commit (left there, predict --calibrator applied it to this one: audit log-loss 0.396 for 0.265).
        # Only that one: a calibrator from 'calibrate' (no digest) or made for another model is the user's
        # (audit R: a fit to a new path deleted one, exit 0).
        stale = None
        companion = str(calibrator_path(args.out))
        fate = None if cal_out is not None else _adapters.companion_fate(
            companion, kinds=tuple(_adapters.CALIBRATORS.values()), key=_adapters.MODEL_DIGEST_KEY,
            replaced=replaced, written=new_digest)
        if fate == "remove":
            stale = companion
            outputs.remove(stale)
        elif fate == "foreign":
            warnings.warn(f"{companion} was fitted by 'fit --calibrate' for another model than {args.out}; left in "
                          f"place, but predict refuses it with this model (use --calibrate to fit one for it)",
                          stacklevel=1)
        metrics["removed_stale_calibrator"] = stale
        # Every warning is said by now, so metrics.json lists what stderr and --json do (it missed the
        # reader's and the library's: audit BJ, 2 warnings on --json, none in metrics.json).
        metrics["warnings"] = list(dict.fromkeys([*metrics["warnings"], *warned]))
        if report_dir is not None:
            written = _write_report(report_dir, args, data, metrics, scored, note=note, inputs=(args.data,),
                                    outputs=outputs)
            metrics["report"] = str(written["report"])
        outputs.commit()
    metrics["seconds"] = time.perf_counter() - start

    say_ignored(say, args.data, data.ignored, "left out of the features")
    say(
        f"Trained {_architecture_text(metrics['model'])} on {len(train)} rows x {data.X.shape[1]} features, "
        f"{len(classes)} classes "
        f"({fit_seconds:.2f} s, alpha = {_alpha_text(args.alpha, metrics['model'])}); saved {args.out}",
    )
    if data.weights is not None:
        say(f"  rows weighted by column {data.weight_name!r} in training ({_weight_text(data.weights[train])} in "
            "all); the held-out metrics count each row once")
    if cal_out is not None:
        temperature = f", T = {params['temperature']:.4g}" if "temperature" in params else ""
        bound = " (on its bound: no optimum found)" if params.get("at_bound") else ""
        # Advice to use the calibrator only when the held-out rows did not measure it worse (audit: "use it
        # with ... --calibrator" printed over a log-loss read worse, 0.0303 -> 0.0433).
        advice = (f"  measured worse on the held-out rows: keep the raw model (predict {args.out} without "
                  "--calibrator)" if loss_change and loss_change["reading"] == "worse" else
                  f"  use it with: softmaxkit predict {args.out} DATA --calibrator {cal_out} --out PROBS")
        if loss_change and loss_change["reading"] != "worse" and (accuracy_change or {}).get("reading") == "worse":
            # its probabilities may still serve; its class predictions measured less accurate (the verdict's advice)
            advice += f" for probabilities; class predictions from predict {args.out} without --calibrator"
        say(f"Fitted {args.calibrate} calibration on the out-of-fold logits of {len(train)} training rows "
            f"({folds} folds){temperature}{bound}; saved {cal_out}", advice)
    if stale is not None:
        say(f"Removed {stale}: a calibrator an earlier fit saved for the model this fit replaced "
            "(use --calibrate to fit one for this model)")
    say("")
    print_comparison(say, scored, heading=f"Held-out metrics ({len(test_rows)} rows):", n_classes=len(classes))
    if note is not None:
        say(note[0], "")
    if written:
        say(f"Report: {written['report']}")
    say.result(metrics)
    return 0


def _warn_weight_named_features(path: str, data) -> None:  # noqa: ANN001
    """Warn of each feature column named as row weights or counts are (``count``, ``n``, ``weight``:
    :func:`softmaxkit.data.is_weight_name`) that could be them (no negative value), when ``--sample-weight``
    names none.

    Aggregated data (one row per input and class, with its count) was fitted with the count as a feature,
    without a word (audit BM): each row then counted once, and the model learnt from the counts.
    """
    import warnings

    import numpy as np

    from softmaxkit.data import is_weight_name

    for j, name in enumerate(data.feature_names):
        if is_weight_name(name) and len(data.X) and np.min(data.X[:, j]) >= 0:
            warnings.warn(f"{path}: column {name!r} is named as row weights or counts are, and is used as a "
                          "feature; if each row stands for that many observations, pass --sample-weight "
                          f"{name}; if it is no feature, pass --ignore {name}", stacklevel=1)


def _warn_counts_held_out(path: str, data, held) -> None:  # noqa: ANN001
    """Warn when held-out rows of whole-number weights above 1 stand for several observations each: the split
    is over rows, so all the observations of such a row are held out together (a cell of aggregated data,
    an input with a class and its count: the model never trains on that pair), and the held-out metrics
    count the row once.

    Aggregated data of 12 rows (4 inputs x 3 classes) held out 3 of its cells: the model was measured on
    rows it could not have learnt, each counting as one observation where it stood for hundreds."""
    import warnings

    import numpy as np

    weights = data.weights[held]
    if not (np.all(data.weights == np.round(data.weights)) and np.any(weights > 1)):
        return
    warnings.warn(f"{path}: the {len(held)} held-out rows stand for {weights.sum():.0f} observations (column "
                  f"{data.weight_name!r}), each row held out with all of its observations (with aggregated data, "
                  "the model never trains on that row's input with its class) and counted once in the held-out "
                  "metrics; for a split over the observations, write one row per observation (pandas: "
                  f"df.loc[df.index.repeat(df[{data.weight_name!r}])]) and fit without --sample-weight",
                  stacklevel=1)


def _weight_text(weights) -> str:  # noqa: ANN001
    """``350 observations`` for whole-number weights, else ``weight 12.5``: the training rows' total."""
    import numpy as np

    total = float(np.sum(weights))
    return f"{total:.0f} observations" if np.all(weights == np.round(weights)) else f"weight {total:.6g}"


def _check_trainable_scale(path: str, data) -> None:  # noqa: ANN001
    """The estimator's own check (:func:`softmaxkit._mlp.check_trainable_scale`), before training,
    with the file, line and column name in the message."""
    from softmaxkit._mlp import FeatureOverflowError, check_trainable_scale
    from softmaxkit.data import DataFileError, location

    try:
        check_trainable_scale(data.X)
    except FeatureOverflowError as exc:
        raise DataFileError(location(Path(path), exc.row, data.feature_names[exc.column])
                            + f"value {exc.value:g} {exc.problem}") from None


def _architecture_text(model: dict) -> str:
    """What was trained, in the summary line: the hidden layers and the solver (audit BW: the line never
    said, and ``--hidden "$H"`` with an empty variable trained a linear model without a word)."""
    hidden = model["hidden_layer_sizes"]
    if not hidden:
        return f"multinomial logistic regression (solver {model['solver']})"
    return f"a network with hidden layers {','.join(map(str, hidden))} (solver {model['solver']})"


def _alpha_text(given: float | str, model: dict) -> str:
    """``auto (chose 0.0942 by held-out log-loss)``, ``1 (auto search skipped: class 'x' has 1 row)``
    or the number given; ``model`` is the metrics' record of the model."""
    if given != "auto":
        return f"{given:g}"
    if model["alpha_search_skipped"]:
        return f"{model['alpha_chosen']:g} (auto search skipped: {model['alpha_search_skipped']})"
    return f"auto (chose {model['alpha_chosen']:.3g} by held-out log-loss)"


def _search_skipped(given: float | str, model, y_train, weights=None) -> str | None:  # noqa: ANN001
    """Why ``--alpha auto`` searched nothing (the model's ``alpha_path_`` is empty), in the words of
    the library's warning; None when it searched or ``--alpha`` was a number. ``weights``: the training
    rows' ``--sample-weight``, counts whose observations the library's folds count (the model's
    ``weights_are_counts``, :func:`softmaxkit.cli._adapters.new_classifier`)."""
    from softmaxkit._alpha_search import why_too_small
    from softmaxkit._targets import encode_targets

    path = getattr(model, "alpha_path_", None)
    if given != "auto" or path is None or len(path) > 0:
        return None
    return why_too_small(encode_targets(y_train, sample_weight=weights, n_samples=len(y_train)),
                         weights_are_counts=bool(getattr(model, "weights_are_counts", False)))


def _headlines(scored: list, *, calibration: str | None, loss_change: dict | None, note: tuple | None) -> list:
    """The report's cards: the model's own held-out figures, then, with ``--calibrate``, the calibrated
    ones under labels that name the calibrator, read as the verdict reads them.

    The model is what ``fit`` saves and what the verdict says to keep when the calibrator made it worse: the
    cards showed the rejected calibrator's log-loss (inf) and ECE unlabelled, the model's 0.2397 nowhere
    (audit BJ).
    """
    from softmaxkit.cli._evaluation import accuracy_headline, loss_card_reading
    from softmaxkit.report import Headline, ci_text, distinct, ece_ci_text

    model = scored[0].summary
    cards = [
        accuracy_headline(model, f"{model['n']} rows not used for training"
                          + ("; the model without its calibrator" if calibration else "")),
        Headline("Log-loss", f"{model['log_loss']:.3f}", "; ".join(
            filter(None, [ci_text(model, "log_loss", digits=3), "lower is better"]))),
        Headline("ECE", f"{model['ece']:.3f}", ece_ci_text(model, digits=3)),
    ]
    if calibration is None:
        return cards
    calibrated, tone = scored[-1].summary, note[1] if note is not None else "neutral"
    reading = (loss_change or {}).get("reading")
    if reading in ("worse", "unsafe"):
        tone = "warn"  # a calibrator the verdict rejects is never shown in a neutral or good tone
    # decimals enough to tell the two apart: "0.608 ... the model alone: 0.608" beside "better" (audit BT)
    with_it, alone = distinct(calibrated["log_loss"], model["log_loss"], digits=3)
    cards += [
        Headline(f"Log-loss with {calibration}", with_it, "; ".join(filter(None, [
            ci_text(calibrated, "log_loss", digits=3), f"the model alone: {alone}",
            loss_card_reading(loss_change)])), tone),
        Headline(f"ECE with {calibration}", f"{calibrated['ece']:.3f}", "; ".join(filter(None, [
            ece_ci_text(calibrated, digits=3), f"the model alone: {model['ece']:.3f}"])), tone),
    ]
    return cards


def _write_report(report_dir, args, data, metrics, scored, *, note, inputs, outputs):
    from softmaxkit.cli._evaluation import comparison_section
    from softmaxkit.report import Paragraph, Report, Section, glossary_section, write_report

    headlines = _headlines(scored, calibration=calibration_name(args.calibrate) if args.calibrate else None,
                           loss_change=metrics["log_loss_change"], note=note)
    params = metrics["calibrator"] or {}
    hidden = ",".join(map(str, args.hidden)) or "none (multinomial logistic regression)"
    sections = [
        Section("Training", [Paragraph(
            f"Trained on {metrics['n_train']} rows of {args.data} ({metrics['n_features']} features, target column "
            f"{data.target_name!r}, classes {', '.join(map(str, metrics['classes']))}"
            + (f", rows weighted by column {data.weight_name!r}" if data.weight_name is not None else "")
            + f"); hidden layers: {hidden}; "
            f"alpha = {_alpha_text(args.alpha, metrics['model'])}. "
            f"{metrics['n_test']} held-out rows measure the model"
            + (f"; the {args.calibrate} calibrator was {metrics['calibration']} on the training rows' out-of-fold "
               "logits" + (f" (T = {params['temperature']:.4g})" if "temperature" in params else "")
               + (", and stopped on its bound: not an improvement." if params.get("at_bound") else ".")
               if args.calibrate else ".")
        )]),
        comparison_section(scored, title="Held-out performance", intro=(
            "Measured on rows the model never trained on. Log-loss and Brier score reward honest probabilities; "
            "ECE measures the gap between stated confidence and observed accuracy."), note=note,
            loss_change=metrics["log_loss_change"], accuracy_change=metrics["accuracy_change"]),
        glossary_section(),
    ]
    report = Report(title=f"softmaxkit fit: {Path(args.out).name}", subtitle=f"trained on {args.data}",
                    headlines=headlines, sections=sections, footer="Generated by softmaxkit fit", metrics=metrics)
    return write_report(report_dir, report, inputs=inputs, outputs=outputs)
