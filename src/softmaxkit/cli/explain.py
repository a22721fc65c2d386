"""``softmaxkit explain``: what softmax does to a handful of logits."""

from __future__ import annotations

import argparse
import math

from softmaxkit.cli._common import Printer, add_output_options, finite_float, positive_float, recording_warnings
from softmaxkit.cli.demo import _small  # 4 decimals, or 2 significant digits for tiny values, as the demo


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
    """Usage errors (exit code 2) the types cannot see alone: one distinct, non-empty class name per logit.

    Repeated names made lines such as ``P(a) = sigmoid(a - a)`` that name no class.
    """
    from softmaxkit.cli import UsageError

    if not args.labels:
        return
    names = args.labels.split(",")
    if len(names) != len(args.logits):
        raise UsageError(f"--labels names {len(names)} classes but {len(args.logits)} logits were given")
    if "" in names:
        raise UsageError(f"--labels has an empty class name (name {names.index('') + 1} of {args.labels!r})")
    repeated = list(dict.fromkeys(n for i, n in enumerate(names) if n in names[:i]))
    if repeated:
        listed = ", ".join(repr(n) for n in repeated)
        raise UsageError(f"--labels names {'class' if len(repeated) == 1 else 'classes'} {listed} more than once: "
                         "each class needs its own name")


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
        "logit_sum": _float_sum(x),
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


@recording_warnings  # --json "warnings": every warning said, as the other commands list them
def run(args: argparse.Namespace, warned: list[str]) -> int:
    import warnings

    labels = args.labels.split(",") if args.labels else [str(i) for i in range(len(args.logits))]
    res = explain(args.logits, labels, args.temperature)
    if not math.isfinite(res["logit_sum"]):  # finite logits whose sum float64 cannot hold
        warnings.warn(f"the logits sum to {_exact_sum(res['logits'])}, beyond float64's range (about "
                      f"+-1.8e+308), so logit_sum shows as {res['logit_sum']}; the probabilities are exact all the "
                      "same (softmax subtracts the largest logit first)", stacklevel=1)
    say = Printer(args)
    say.result({**res, "warnings": warned})
    width = max(len(s) for s in labels + ["class"])
    # "x / T=2" inside a formula reads as x / T, then "=2"; T is named in the formula and given after it.
    t, t_value = (" / T", f", T = {args.temperature:g}") if args.temperature != 1.0 else ("", "")
    say(
        _sum_line(res),
        f"softmax(x{t}) = exp(x{t}) / sum(exp(x{t})){t_value}:\n",
        f"  {'class':<{width}}  {'logit':>9}  {'probability':>11}  {'log-prob':>9}",
    )
    for name, z, p, lp in zip(labels, res["logits"], res["probabilities"], res["log_probabilities"]):
        say(f"  {name:<{width}}  {_number(z)}  {_small(p):>11}  {_log_prob(lp)}")
    say(f"  {'sum':<{width}}  {_number(res['logit_sum'])}  {res['probability_sum']:>11.4f}")
    if "logistic" in res:
        lg = res["logistic"]
        # The logits' values, not the class names, go into the difference: with the default names
        # "sigmoid(1 - 0) = sigmoid(1.8900)" read as arithmetic that does not hold.
        a, b = (_operand(v) for v in res["logits"])
        symbolic = f"x[{labels[1]}] - x[{labels[0]}]"
        numeric = f"{b} - {a}"
        if t:
            symbolic, numeric = f"({symbolic}) / T", f"({numeric}) / {args.temperature:g}"
        say(
            "\nTwo classes: softmax is the logistic function.",
            f"P({labels[1]}) = sigmoid({symbolic}) = sigmoid({numeric}) = sigmoid({lg['z']:.4f}) "
            f"= {_small(lg['sigmoid_z'])}",
        )
    return 0


def _fraction_sum(values) -> "Fraction":  # noqa: ANN001 - finite floats
    """The exact sum of ``values`` as a fraction: every float is a fraction, and their sum is one too (a
    decimal sum rounds to its context's 28 digits: ``1e300 + 3 - 1e300`` came out -2e+272, review R14)."""
    from fractions import Fraction

    return sum((Fraction(float(v)) for v in values), Fraction(0))


def _float_sum(x) -> float:  # noqa: ANN001 - a float64 array
    """The exact sum of ``x`` rounded once to float64: inf only when the sum itself is beyond float64's range
    (``1e308 + 1e308``), not when a partial sum is (``1e308 + 1e308 - 1e308`` is 1e308: NumPy's sum gave
    inf, review R12), and without NumPy's raw "overflow encountered in reduce" (audit BJ)."""
    total = _fraction_sum(x)
    try:
        return float(total)
    except OverflowError:  # beyond float64's range: inf of its sign, as float64 arithmetic gives
        return math.inf if total > 0 else -math.inf


def _exact_sum(values: list[float]) -> str:
    """The sum of ``values`` (finite floats) to 4 significant digits, beyond float64's range too: ``1e308 +
    1e308`` is ``2e+308``, where float64 says inf."""
    from decimal import Decimal, localcontext

    total = _fraction_sum(values)
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 4, 10**6, -(10**6)
        # numerator and denominator are exact integers; one division rounds to the 4 digits shown
        return f"{(Decimal(total.numerator) / Decimal(total.denominator)).normalize():g}"


def _sum_line(res: dict) -> str:
    """The first line: what the logits' sum says, without calling values that form a distribution none.

    Logits that sum to 1 and lie in [0, 1] look like probabilities; softmax still reads them as scores
    (``[0.3, 0.7]`` becomes ``[0.4013, 0.5987]``), which is the point worth making. ``math.isclose``:
    ``0.1 + 0.2 + 0.7`` is 0.9999999999999999.
    """
    logits, total = res["logits"], res["logit_sum"]
    if math.isclose(total, 1.0, rel_tol=1e-9):
        if all(0.0 <= v <= 1.0 for v in logits):
            probs = ", ".join(f"{p:.4f}" for p in res["probabilities"])
            return f"logits {logits} sum to 1, but softmax treats them as scores, not probabilities: [{probs}]."
        return f"logits {logits} sum to 1 but are not all in [0, 1]: not a probability distribution."
    shown = f"{total:.4g}" if math.isfinite(total) else f"{_exact_sum(logits)} (beyond float64: {total})"
    if shown == "1":  # 1.0000001 is not 1: "sum to 1: not a probability distribution" would contradict itself
        shown = f"{total:.12g}"  # enough digits to differ from 1 beyond isclose's 1e-9, no float noise
    return f"logits {logits} sum to {shown}: not a probability distribution."


def _operand(value: float) -> str:
    """A logit inside ``a - b``: short (``%g``), a negative one in parentheses (``2 - (-1)``, not ``2 - -1``)."""
    return f"({value:g})" if value < 0 else f"{value:g}"


def _log_prob(value: float) -> str:
    """A log-probability in the table's 9 characters: as :func:`_number`, except that one within 1e-3 of 0 (a
    near-certain class) gets 2 significant digits, as the demo shows tiny losses (audit: -4.2e-18 as -0.0000)."""
    return f"{'-' + _small(-value) if -1e-3 < value < 0 else _number(value):>9}"


def _number(value: float) -> str:
    """A logit in the table's 9 characters: fixed point, or exponent form when it would not fit."""
    return f"{value:>9.4f}" if abs(value) < 1e4 or not math.isfinite(value) else f"{value:>9.3g}"
