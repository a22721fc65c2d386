"""``softmaxkit explain``: what softmax does to a handful of logits."""

from __future__ import annotations

import argparse
import math

from softmaxkit.cli._common import Printer, add_output_options, finite_float, positive_float


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="show softmax probabilities for a few logits",
        description=(
            "Print the softmax probabilities and log-probabilities of the given logits, "
            "their sums, and the logistic form when there are two classes."
        ),
    )
    # Bad values are usage errors (exit code 2, like every command's): the types refuse them while parsing.
    p.add_argument("logits", nargs="+", type=finite_float, metavar="LOGIT", help="raw scores, one per class")
    p.add_argument("--labels", help="comma-separated class names (default: 0,1,...)")
    p.add_argument("--temperature", type=positive_float, default=1.0, metavar="T",
                   help="divide the logits by T (a finite number > 0) first")
    add_output_options(p)
    p.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Usage errors (exit code 2) the types cannot see alone: one class name per logit."""
    from softmaxkit.cli import UsageError

    if args.labels and len(args.labels.split(",")) != len(args.logits):
        raise UsageError(f"--labels names {len(args.labels.split(','))} classes but {len(args.logits)} logits "
                         "were given")


def explain(logits: list[float], labels: list[str], temperature: float) -> dict:
    """The numbers ``explain`` prints, as a dict (also its ``--json`` output)."""
    import numpy as np

    from softmaxkit import log_softmax, softmax

    x = np.asarray(logits, dtype=np.float64)
    probs = softmax(x, temperature=temperature)
    log_probs = log_softmax(x, temperature=temperature)
    result = {
        "labels": labels,
        "logits": x.tolist(),
        "temperature": temperature,
        "logit_sum": float(np.sum(x)),
        "probabilities": probs.tolist(),
        "probability_sum": float(np.sum(probs)),
        "log_probabilities": log_probs.tolist(),
    }
    if len(x) == 2:
        # softmax([a, b])[1] == sigmoid((b - a) / T): softmax generalises the logistic function.
        with np.errstate(over="ignore"):  # 1e308 - (-1e308): z is inf, and sigmoid(z) is 1 all the same
            z = (x[1] - x[0]) / temperature
        result["logistic"] = {"z": float(z), "sigmoid_z": float(probs[1])}
    return result


def run(args: argparse.Namespace) -> int:
    labels = args.labels.split(",") if args.labels else [str(i) for i in range(len(args.logits))]
    res = explain(args.logits, labels, args.temperature)
    say = Printer(args)
    say.result(res)
    width = max(len(s) for s in labels + ["class"])
    t = f" / T={args.temperature:g}" if args.temperature != 1.0 else ""
    say(
        f"logits {res['logits']} sum to {res['logit_sum']:.4g}: not a probability distribution.",
        f"softmax(x{t}) = exp(x{t}) / sum(exp(x{t})):\n",
        f"  {'class':<{width}}  {'logit':>9}  {'probability':>11}  {'log-prob':>9}",
    )
    for name, z, p, lp in zip(labels, res["logits"], res["probabilities"], res["log_probabilities"]):
        say(f"  {name:<{width}}  {_number(z)}  {p:>11.4f}  {_number(lp)}")
    say(f"  {'sum':<{width}}  {_number(res['logit_sum'])}  {res['probability_sum']:>11.4f}")
    if "logistic" in res:
        lg = res["logistic"]
        say(
            f"\nTwo classes: softmax is the logistic function. "
            f"P({labels[1]}) = sigmoid({labels[1]} - {labels[0]}{t}) = sigmoid({lg['z']:.4f}) = {lg['sigmoid_z']:.4f}"
        )
    return 0


def _number(value: float) -> str:
    """A logit in the table's 9 characters: fixed point, or exponent form when it would not fit."""
    return f"{value:>9.4f}" if abs(value) < 1e4 or not math.isfinite(value) else f"{value:>9.3g}"
