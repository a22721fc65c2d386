"""``softmaxkit predict``: class probabilities for a data file from a saved model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from softmaxkit.cli import _conformal
from softmaxkit.cli._common import add_output_options, check_table_outputs, recording_warnings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="write class probabilities for a data file",
        description=(
            "Apply a saved model (and optionally a calibrator) to DATA and write one probability column "
            "per class (p_<class>) plus the predicted class (prediction). Feature columns are matched by "
            "name to the ones the model was trained on, in any order; other columns (the target, ids) are "
            "ignored and listed. DATA's row id columns (named like id, sample_id or patient_id, or a saved "
            "pandas index) are copied to PROBS first, so that 'evaluate' and 'calibrate' match a labels file "
            "with the same id column to the rows by id (not in .npy, nor text ids in .safetensors). When the "
            "model or DATA has no column names (.npy), the order of the columns cannot be checked, so this "
            "is refused unless --by-position says they are in training order; "
            "a model fitted on a .npy reads another .npy by position. The output format "
            "follows PROBS's extension: .csv, .tsv, .parquet, .npz, .safetensors or .npy (.npy and "
            ".safetensors hold numbers only, so text class names are left out there). The output is a valid "
            "--probs input of 'evaluate' and 'calibrate'."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by 'softmaxkit fit' (.npz or .safetensors)")
    p.add_argument("data", metavar="DATA", help="features: .csv, .tsv, .parquet, .npy, .npz or .safetensors")
    p.add_argument("--out", required=True, metavar="PROBS", help="output file; never one of the inputs")
    p.add_argument("--logits-out", metavar="FILE",
                   help="also write the logits (logit_<class> columns; calibrated with --calibrator), "
                   "a valid --logits input of 'evaluate', 'calibrate' and 'apply'")
    p.add_argument("--calibrator", metavar="FILE", help="a calibrator saved by 'fit --calibrate' or 'calibrate'")
    p.add_argument("--target", metavar="COL",
                   help="label column in DATA: left out of the features, and used to score the predictions")
    p.add_argument("--by-position", action="store_true",
                   help="take DATA's feature columns in file order, where names cannot be matched: the model "
                   "was fitted on a file without column names and DATA has them, or the reverse")
    _conformal.add_set_options(p, what="also write each row's prediction set (set_90: the class names, set_size_90)")
    p.add_argument("--ci", action="store_true",
                   help="with --target: 95%% intervals of the log-loss, Brier score and ECE (the ECE's by bootstrap)")
    add_output_options(p)
    p.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Usage errors (exit code 2) before any file is read: the extensions of ``--out`` and ``--logits-out``
    (they exited 1), then ``--sets`` with ``--conformal`` (:func:`_conformal.check_set_options`), and ``--ci``
    with ``--target`` (it was accepted and did nothing)."""
    from softmaxkit.cli import UsageError

    check_table_outputs(args)
    _conformal.check_set_options(args)
    if getattr(args, "ci", False) and not args.target:  # apply shares this check and has no --ci
        raise UsageError("--ci needs --target COL (the labels the intervals are computed from)")


@recording_warnings  # --json "warnings": every warning said, as evaluate and calibrate list them
def run(args: argparse.Namespace, warned: list[str]) -> int:
    import warnings

    from softmaxkit import softmax
    from softmaxkit.cli import CLIError, _adapters
    from softmaxkit.cli._common import (
        Printer,
        brier_legend,
        check_npy_keeps_classes,
        check_output,
        class_order,
        encode_labels,
        in_fitted_order,
        logit_columns,
        progress,
        read_row_ids,
        refuse_non_finite,
        warn_zero_probabilities,
        row_ids_text,
        say_ids_left_out,
        say_ignored,
        score_columns,
        text_table,
        with_row_ids,
    )
    from softmaxkit.cli._evaluation import ci_legend, metrics_lines, one_column_legends, score
    from softmaxkit.cli.evaluate import one_class_note
    from softmaxkit.data import read_features, write_columns
    from softmaxkit.io import StagedOutputs, same_entry
    from softmaxkit.report import ece_text, fmt

    say = Printer(args)
    inputs = tuple(p for p in (args.model, args.data, args.calibrator, args.conformal) if p)
    # Everything that can be checked without the data is checked first.
    check_output(args.out, inputs=inputs)
    if args.logits_out:
        check_output(args.logits_out, inputs=inputs, option="--logits-out")
        if same_entry(args.logits_out, args.out):  # by identity: one folder may be reached by two paths
            raise ValueError("--logits-out and --out name the same file")
    model = _adapters.load_model(args.model)
    classes = model.classes
    for option, path in (("--out", args.out), ("--logits-out", args.logits_out)):
        check_npy_keeps_classes(classes, path, option=option, source=f"the model {args.model}")
    text_ok = not args.out.lower().endswith((".npy", ".safetensors"))  # numbers only there
    calibrator = None
    if args.calibrator:
        calibrator = _adapters.load_calibrator(args.calibrator, n_classes=len(classes),
                                               against=f"the model {args.model}")
        fitted_for = _adapters.calibrator_model_digest(args.calibrator)
        if fitted_for is not None and fitted_for != model.digest:
            # A calibrator of an earlier fit of the same MODEL path (audit: log-loss 0.396 for 0.265, exit 0).
            raise CLIError(f"--calibrator {args.calibrator} was fitted by 'fit --calibrate' for another model than "
                           f"{args.model} (model digest {fitted_for}, this model {model.digest}); refit with "
                           "'fit --calibrate', or fit a calibrator on this model's logits with 'calibrate'")
    conformal = _conformal.load(args.conformal, n_classes=len(classes), against=f"the model {args.model}") \
        if args.conformal else None
    # Calibrators and conformal predictors fitted on named columns apply per class by name.
    names = [str(c) for c in classes.tolist()]
    # Those fitted without names (on a .npy) apply in the model's class order, the order in which
    # `predict --logits-out` writes the columns they were fitted on.
    cal_order = None if calibrator is None else class_order(
        names, calibrator, source=f"the model {args.model}", fitted_as=f"--calibrator {args.calibrator}",
        by_position=True)
    sets_order = None if conformal is None else class_order(
        names, conformal, source=f"the model {args.model}", fitted_as=f"--conformal {args.conformal}",
        by_position=True)

    if args.target is not None and model.feature_names is not None and args.target in model.feature_names:
        # Read on, it would be "no column X, which the model was trained on" for a column the file has.
        raise CLIError(f"--target {args.target!r} is one of the model's features, not its target"
                       + (f" (the model was trained to predict {model.target_name!r})"
                          if getattr(model, "target_name", None) else ""))
    # Only a model without names takes a file's columns by position (--by-position): no name is matched there,
    # so a first line of data read as the header would be lost unseen (audit BQ); elsewhere names are matched.
    data = read_features(args.data, target=args.target, n_features=model.n_features,
                         feature_names=model.feature_names,
                         positional=model.feature_names is None and args.by_position)
    by_position = _check_column_matching(model, data, args)
    row_ids = read_row_ids(args.data, data.ignored, n_rows=len(data.X))
    y = None
    if data.y is not None:  # labels are checked before anything is written
        y = encode_labels(data.y, classes, path=args.data, column=data.target_name)

    with progress(say, "predicting", total=None):
        logits = _feature_logits(model, data, args.data)
        # sets come from the model's own logits, as the conformal predictor was fitted (see cli/_conformal.py)
        sets = None
        if conformal is not None:
            sets = _conformal.predict_sets(conformal, logits, args.sets, probs=False, where=args.model,
                                           order=sets_order)
        raw = logits
        if calibrator is not None:
            logits = in_fitted_order(lambda z: _adapters.calibrated_logits(calibrator, z), logits, cal_order)
        probs = softmax(logits, axis=-1)
        if conformal is not None:  # the probabilities made above serve the check: no second softmax pass
            _conformal.check_scores_like_calibration(
                args.conformal, probs if calibrator is None else raw, probs=calibrator is None, where=args.data,
                calibrated_probs=None if calibrator is None else probs)
    refuse_non_finite(probs, out=args.out, source=args.data)
    warn_zero_probabilities(probs, names, out=args.out, source=args.data,
                            isotonic=type(calibrator).__name__ == "IsotonicCalibration")

    columns = score_columns(probs, classes, out=args.out)
    if sets is not None:
        mask = sets.mask()  # made once: written, and checked against the prediction
        columns.update(_conformal.columns(mask, args.sets, classes, text=text_ok))
        by_class = bool(getattr(conformal, "class_conditional", False))
        if calibrator is not None or by_class:  # per-class thresholds can leave out even the raw prediction
            warn_sets_without_prediction(mask, probs, args.sets, scores="the model's own logits", by_class=by_class,
                                         reorders=reorders_classes(calibrator))
    columns, kept_ids, left_ids = with_row_ids(row_ids, columns, args.out)
    logit_table, logit_left = None, []
    if args.logits_out:
        logit_table, _, logit_left = with_row_ids(row_ids, logit_columns(logits, classes), args.logits_out)
    with StagedOutputs(inputs=inputs, options={args.out: "--out", args.logits_out: "--logits-out"}) as outputs:
        write_columns(args.out, columns, outputs=outputs)
        if logit_table is not None:
            write_columns(args.logits_out, logit_table, outputs=outputs)
        summary = None
        if y is not None:
            summary = score(y, key="predictions", name="predictions", logits=logits, plot=False, ci=args.ci,
                            classes=names).summary
        outputs.commit()

    where = f"column {data.target_name!r} of {args.data}"
    one_class = None if y is None else one_class_note(y, names, where=where)
    if one_class:  # on stderr and in "warnings", as evaluate says it of the same labels
        warnings.warn(one_class, stacklevel=1)
    result: dict = {"out": args.out, "rows": int(len(probs)), "classes": classes.tolist(),
                    "calibrated": calibrator is not None, "ignored_columns": list(data.ignored),
                    "columns_by_position": by_position, "row_id_columns": kept_ids,
                    "warnings": warned}  # the list grows until printed: warnings said after this line are in it
    if args.logits_out:
        result["logits_out"] = args.logits_out
    say_ignored(say, args.data, data.ignored, "not features of the model")
    say(f"Wrote {len(probs)} rows x {len(classes)} class probabilities"
        + (" and the predicted class" if "prediction" in columns else "") + f" to {args.out}"
        + row_ids_text(kept_ids))
    say_ids_left_out(say, left_ids, args.data, args.out)
    if args.logits_out:
        say(f"Wrote the logits to {args.logits_out}")
        say_ids_left_out(say, logit_left, args.data, args.logits_out)
    say(*npy_column_order(names, args.out, args.logits_out))
    if summary is not None:
        result["metrics"] = summary
        if sets is not None:
            result["conformal"] = _conformal.summarize(conformal, y, sets, args.sets, [str(c) for c in classes],
                                                       evaluated_on=f"{len(y)} rows of {args.data}")
        say("", f"Against column {data.target_name!r}:",
            # with --ci a metric a row, as evaluate prints it: three intervals in one row ran past 100 characters
            *(metrics_lines({"value": summary}) if args.ci else text_table(
                ["accuracy", "log-loss", "Brier", "ECE"],
                [[fmt(summary["accuracy"]), fmt(summary["log_loss"]), fmt(summary["brier"]), ece_text(summary)]])),
            *brier_legend(len(classes)), *ci_legend([summary]),
            *one_column_legends(summary, names))  # evaluate's lines, for the same figures
        if sets is not None:
            _conformal.print_summary(say, result["conformal"])
    say.result(result)
    return 0


def _check_column_matching(model, data, args: argparse.Namespace) -> bool:  # noqa: ANN001
    """Whether DATA's features are taken by position; refuse where names exist on one side only.

    Names on both sides are matched (in any order). Where only one side has
    them, a reordered file would give wrong probabilities with no error (the
    audit reversed two columns and flipped a prediction), so the user must
    say ``--by-position``. A model fitted without names reading a file
    without names is positional on both sides, as the user's arrays are.
    """
    from softmaxkit.data import DataFileError, shown_names

    model_named, data_named = model.feature_names is not None, data.named
    if model_named == data_named:
        return not model_named
    if args.by_position:
        return True
    if data_named:
        raise DataFileError(
            f"{args.data}: its first line ({shown_names(data.feature_names, 4)}) is read as column names, but the "
            f"model {args.model} records no column names (it was fitted on a file without them, or saved by an "
            "older softmaxkit that did not record them), so their order cannot be checked; if that line is data, "
            "add a header line; else pass --by-position if the columns are in the training order, or refit the "
            "model on a file with a header"
        )
    raise DataFileError(
        f"{args.data}: has no column names, so its columns cannot be matched to the ones the model "
        f"{args.model} was fitted on ({shown_names(model.feature_names, 4)}); pass --by-position if they are in "
        "that order, or give a file with named columns"
    )


def _feature_logits(model, data, path: str):  # noqa: ANN001, ANN202
    """The model's logits; an overflowing feature is reported with its file, row and column name."""
    from softmaxkit._mlp import FeatureOverflowError
    from softmaxkit.data import DataFileError, location

    try:
        return model.logits(data.X)
    except FeatureOverflowError as exc:
        from pathlib import Path

        raise DataFileError(
            location(Path(path), exc.row, data.feature_names[exc.column])
            + f"value {exc.value:g} is too large for this model: the logits overflow float64; rescale the feature "
            "to the range it was trained on"
        ) from None


def npy_column_order(classes: Any, *paths: str | None) -> list[str]:
    """A line per ``.npy`` among ``paths`` (``None`` skipped) naming the class of each of its columns, in
    order: a ``.npy`` keeps no names, and only ``--json`` listed them (audit BJ: a user who guessed
    ``--classes`` for the file scored accuracy 0.3864 for 1.0). ``classes``: the columns' classes, in order."""
    order = ", ".join(str(c) for c in classes)
    return [f"{path}: columns in class order: {order}" for path in paths
            if path and Path(path).suffix.lower() == ".npy"]


def reorders_classes(calibrator: Any) -> bool:
    """Whether ``calibrator`` can change a row's most probable class: every map but temperature scaling (one
    positive scale of a row's logits keeps their order); no calibrator cannot."""
    return calibrator is not None and type(calibrator).__name__ != "TemperatureScaling"


def warn_sets_without_prediction(mask: Any, probs: Any, alphas: tuple[float, ...], *, scores: str,
                                 by_class: bool = False, reorders: bool = True) -> None:
    """Warn, per level, when written sets leave out the written prediction (the most probable class of
    ``probs``, calibrated probabilities) although they hold a class, naming the causes that can apply.

    By design: the sets come from the uncalibrated ``scores``, on which the conformal predictor was fitted and
    its coverage guarantee holds, so a calibrator that ``reorders`` a row's classes (:func:`reorders_classes`)
    can put its prediction outside its set (audit BJ: p_d6 = 0.553, prediction d6, set_90 = d1, said nowhere).
    With one threshold per class (``by_class``, ``--conformal-by-class``) a set can leave out even the raw most
    probable class, where its score misses that class's own threshold; that is said, and calibration is
    blamed only where it can change the prediction (review R24: temperature scaling, which never does, was
    named as the cause). ``mask``: the (n, K, A) sets.
    """
    import warnings

    import numpy as np

    causes = []
    if by_class:
        causes.append("the sets have one threshold per class (--conformal-by-class), so a row's most probable "
                      "class is left out of its set where its score misses that class's own threshold")
    if reorders or not by_class:
        causes.append(f"the prediction and p_ columns are the calibrated probabilities, while the sets come from "
                      f"{scores}, on which the conformal predictor was fitted and for which its coverage guarantee "
                      "holds")
    predicted = np.argmax(probs, axis=1)
    held = mask[np.arange(len(predicted)), predicted, :]  # (n, A): whether each set holds the prediction
    for i, alpha in enumerate(alphas):
        left_out = np.flatnonzero(~held[:, i] & mask[:, :, i].any(axis=1))
        if len(left_out):
            tag = _conformal.level_tag(alpha)
            warnings.warn(f"set_{tag} leaves out the prediction in {len(left_out)} of {len(predicted)} rows (the "
                          f"first: row {left_out[0] + 1}): {'; and '.join(causes)}; such a row is uncertain between "
                          "its prediction and the classes of its set", stacklevel=2)
