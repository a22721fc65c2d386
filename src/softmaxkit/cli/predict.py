"""``softmaxkit predict``: class probabilities for a data file from a saved model."""

from __future__ import annotations

import argparse

from softmaxkit.cli import _conformal
from softmaxkit.cli._common import add_output_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="write class probabilities for a data file",
        description=(
            "Apply a saved model (and optionally a calibrator) to DATA and write one probability column "
            "per class (p_<class>) plus the predicted class (prediction). The output format follows "
            "PROBS's extension: .csv, .tsv, .parquet, .npz, .safetensors or .npy (.npy and "
            ".safetensors hold numbers only, so text class names are left out there)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by 'softmaxkit fit' (.npz or .safetensors)")
    p.add_argument("data", metavar="DATA", help="features: .csv, .tsv, .parquet, .npy, .npz or .safetensors")
    p.add_argument("--out", required=True, metavar="PROBS", help="output file; never one of the inputs")
    p.add_argument("--calibrator", metavar="FILE", help="a calibrator saved by 'fit --calibrate' or 'calibrate'")
    p.add_argument("--target", metavar="COL",
                   help="label column in DATA: left out of the features, and used to score the predictions")
    _conformal.add_set_options(p, what="also write each row's prediction set (set_90: the class names, set_size_90)")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from softmaxkit import softmax
    from softmaxkit.cli import _adapters
    from softmaxkit.cli._common import Printer, check_output, encode_labels, progress, text_table
    from softmaxkit.cli._evaluation import score
    from softmaxkit.data import SUFFIXES, read_features, write_columns
    from softmaxkit.report import ece_text, fmt

    say = Printer(args)
    inputs = tuple(p for p in (args.model, args.data, args.calibrator, args.conformal) if p)
    check_output(args.out, inputs=inputs, suffixes=SUFFIXES)
    _conformal.check_set_options(args)
    model = _adapters.load_object(args.model, kinds=("SoftmaxClassifier",), option="MODEL")
    calibrator = None
    if args.calibrator:
        calibrator = _adapters.load_object(args.calibrator, kinds=tuple(_adapters.CALIBRATORS.values()),
                                           option="--calibrator")
    data = read_features(args.data, target=args.target, n_features=int(model.n_features_in_))
    classes = _adapters.model_classes(model)
    conformal = _conformal.load(args.conformal) if args.conformal else None
    with progress(say, "predicting", total=None):
        logits = _adapters.class_logits(model, data.X)
        # sets come from the model's own logits, as the conformal predictor was fitted (see cli/_conformal.py)
        sets = None if conformal is None else _conformal.predict_sets(conformal, logits, args.sets, probs=False,
                                                                      where=args.model)
        if calibrator is not None:
            logits = _adapters.calibrated_logits(calibrator, logits)
        probs = softmax(logits, axis=-1)

    columns: dict[str, np.ndarray] = {f"p_{c}": probs[:, j] for j, c in enumerate(classes)}
    predicted = classes[np.argmax(probs, axis=1)]
    text_classes = predicted.dtype.kind not in "biuf"
    if not (text_classes and args.out.lower().endswith((".npy", ".safetensors"))):
        columns["prediction"] = predicted
    if sets is not None:
        columns.update(_conformal.columns(sets, args.sets, classes, text=not args.out.lower().endswith(
            (".npy", ".safetensors"))))
    write_columns(args.out, columns, inputs=inputs)

    result: dict = {"out": args.out, "rows": int(len(probs)), "classes": [str(c) for c in classes],
                    "calibrated": calibrator is not None}
    say(f"Wrote {len(probs)} rows x {len(classes)} class probabilities"
        + (" and the predicted class" if "prediction" in columns else "") + f" to {args.out}")
    if data.y is not None:
        y = encode_labels(data.y, classes, path=args.data, column=data.target_name)
        summary = score(y, key="predictions", name="predictions", logits=logits, plot=False).summary
        result["metrics"] = summary
        if sets is not None:
            result["conformal"] = _conformal.summarize(conformal, y, sets, args.sets, [str(c) for c in classes],
                                                       evaluated_on=f"{len(y)} rows of {args.data}")
        say("", f"Against column {data.target_name!r}:",
            *text_table(["accuracy", "log-loss", "Brier", "ECE [95% CI]"],
                        [[fmt(summary["accuracy"]), fmt(summary["log_loss"]), fmt(summary["brier"]),
                          ece_text(summary)]]))
        if sets is not None:
            _conformal.print_summary(say, result["conformal"])
    say.result(result)
    return 0
