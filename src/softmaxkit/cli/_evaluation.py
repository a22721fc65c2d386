"""Score predictions and present the scores: the part demo, fit, calibrate and evaluate share.

A :class:`Scored` is one set of predictions on one labelled set (say "before"
and "after temperature scaling") with its metrics summary and reliability
diagram. The functions below turn a list of them into a printed table, a
report section and a plain-language verdict, so every command tells the story
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from softmaxkit.cli import _adapters
from softmaxkit.cli._common import Printer, brier_legend, text_table


@dataclass(frozen=True)
class Scored:
    """Predictions of one model on one labelled set, scored.

    Attributes
    ----------
    key : str
        Machine name (``"uncalibrated"``); the key in metrics.json and the PNG's file stem.
    name : str
        Human name for tables ("Before", "After temperature scaling (T=1.52)").
    summary : dict
        :func:`softmaxkit.cli._adapters.summarize` output.
    png : bytes or None
        Reliability diagram.
    """

    key: str
    name: str
    summary: dict
    png: bytes | None


def score(
    y: np.ndarray,
    *,
    key: str,
    name: str,
    logits: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    plot: bool = True,
    what: str = "",
    ci: bool = True,
    transform: Any = None,
) -> Scored:
    """Score logits (preferred: exact log-loss) or probabilities against class indices ``y``.

    ``ci=False`` skips the ECE's bootstrap interval and noise floor (a small
    command should not pay for resampling nobody asked for). ``transform``
    maps blocks of the scores to logits first (a calibrator); the scores are
    read block by block (:func:`softmaxkit.cli._adapters.summarize`).
    """
    summary, png = _adapters.summarize(y, probs=probs, logits=logits, transform=transform,
                                       plot_title=f"{name}{what}" if plot else None, ci=ci)
    return Scored(key=key, name=name, summary=summary, png=png)


def verdict(before: dict, after: dict, *, change: str, params: dict | None = None) -> tuple[str, str]:
    """A plain-language reading of a before/after change, and its tone ("good"/"warn"/"neutral").

    Each ECE is read against its own noise floor, the ECE a perfectly calibrated
    model with those confidences would show at this sample size: an ECE under
    its floor is indistinguishable from perfect calibration. A change is read
    as a change only when the two bootstrap intervals do not overlap; within
    them it is called no measurable change, whichever way the estimate moved
    (audit: a rise from 0.0316 to 0.0338 was told as "brought the calibration
    error ... to" and marked good, because the floor after scaling was higher).
    Log-loss, which needs no binning, backs the reading up. ``params`` (from
    :func:`softmaxkit.cli._adapters.calibrator_params`) with ``at_bound`` set
    means the fit stopped on a bound: that is said first, with the
    temperature, and the change is never called better.
    """
    if params and params.get("at_bound"):
        temperature = f" (T = {params['temperature']:.4g})" if "temperature" in params else ""
        return (f"The {change} fit stopped on the bound of its parameter{temperature}: it found no optimum, so "
                f"this is not an improvement. Log-loss {before['log_loss']:.4f} before, {after['log_loss']:.4f} "
                "after. Calibrate on more (or harder) held-out data."), "warn"
    b, a = before["ece"], after["ece"]
    fb, fa = before.get("ece_noise_floor") or 0.0, after.get("ece_noise_floor") or 0.0
    if a <= fa and b <= fb:
        text, tone = (f"Already calibrated: ECE {b:.4f} before and {a:.4f} after {change}, each under its noise "
                      f"floor (what a perfectly calibrated model would show on {after['n']} cases)."), "good"
    elif _overlap(before, after):
        (lo_b, hi_b), (lo_a, hi_a) = before["ece_ci"], after["ece_ci"]
        text, tone = (f"{change.capitalize()} changed the calibration error from {b:.4f} to {a:.4f}, within the "
                      f"bootstrap uncertainty (95% CIs {lo_b:.4f}-{hi_b:.4f} before and {lo_a:.4f}-{hi_a:.4f} after "
                      f"overlap): no measurable change on {after['n']} cases. "
                      f"{_floor_reading(b, fb, a, fa)}"), "neutral"
    elif a < b and a <= fa:
        text, tone = (f"{change.capitalize()} brought the calibration error from {b:.4f} (above its noise floor "
                      f"{fb:.4f}) to {a:.4f}, under its noise floor {fa:.4f}: indistinguishable from perfectly "
                      f"calibrated on {after['n']} cases."), "good"
    elif a < b:
        text, tone = (f"{change.capitalize()} lowered the calibration error from {b:.4f} to {a:.4f} (still above "
                      f"the noise floor {fa:.4f})."), "good"
    else:
        text, tone = f"{change.capitalize()} raised the calibration error from {b:.4f} to {a:.4f}.", "warn"
    lb, la = before["log_loss"], after["log_loss"]
    if la > lb and tone == "good":
        tone = "neutral"
    return f"{text} {_loss_reading(lb, la)}", tone


def _floor_reading(b: float, fb: float, a: float, fa: float) -> str:
    """Where the ECE after a change within the noise lies against its noise floor (not both under theirs)."""
    if a <= fa:
        return f"After it the ECE is under its noise floor {fa:.4f}: indistinguishable from perfectly calibrated."
    if b <= fb:
        return (f"The ECE was under its noise floor {fb:.4f} before and is above its floor {fa:.4f} after, so "
                "some miscalibration may have come in.")
    return f"It stays above its noise floor {fa:.4f}, so some miscalibration may remain."


def _loss_reading(before: float, after: float) -> str:
    """The log-loss sentence. Compared as printed: a change hidden by rounding (0.30001 -> 0.30000) would read
    "from 0.3000 to 0.3000 (better)"."""
    b, a = f"{before:.4f}", f"{after:.4f}"
    if a == b:
        return f"Log-loss stayed at {b}."
    return f"Log-loss went from {b} to {a} ({'better' if after < before else 'worse'})."


def accuracy_headline(summary: dict, caption: str) -> Any:
    """The "Held-out accuracy" headline card, good only above the chance level.

    Chance is ``majority_rate``, what always naming the most frequent class
    scores; at or below it the card warns and says so (audit: 40% on a 50/50
    problem was shown in green).
    """
    from softmaxkit.report import Headline

    acc, chance = summary["accuracy"], summary.get("majority_rate")
    if chance is not None and acc <= chance:
        caption = (f"{caption}; no better than always naming the most frequent class "
                   f"({chance * 100:.1f}%)")
        return Headline("Held-out accuracy", f"{acc * 100:.1f}%", caption, "warn")
    return Headline("Held-out accuracy", f"{acc * 100:.1f}%", caption, "good")


def _overlap(before: dict, after: dict) -> bool:
    """Whether the two ECE intervals overlap. Both are intervals for the population's ECE (bias-corrected,
    so an estimate may lie above its own interval): their overlap, not an estimate inside the other's
    interval, says the change is within the uncertainty."""
    nan = (float("nan"), float("nan"))
    (lo_b, hi_b), (lo_a, hi_a) = before.get("ece_ci") or nan, after.get("ece_ci") or nan
    return bool(lo_b <= hi_a and lo_a <= hi_b)


def print_comparison(printer: Printer, scored: list[Scored], *, heading: str, n_classes: int) -> None:
    """The metrics of each ``Scored`` side by side, as text (and :func:`brier_legend` for two classes)."""
    from softmaxkit.report import ece_text, fmt

    rows = [
        ["accuracy", *(fmt(s.summary["accuracy"]) for s in scored)],
        ["log-loss", *(fmt(s.summary["log_loss"]) for s in scored)],
        ["Brier score", *(fmt(s.summary["brier"]) for s in scored)],
        ["ECE [95% CI]", *(ece_text(s.summary) for s in scored)],
        ["ECE noise floor", *(fmt(s.summary["ece_noise_floor"]) for s in scored)],
    ]
    printer(heading, *text_table(["metric", *(s.name for s in scored)], rows), *brier_legend(n_classes), "")


def comparison_section(scored: list[Scored], *, title: str, intro: str, note: tuple[str, str] | None = None) -> Any:
    """A report section: intro, verdict, the metrics table and one reliability diagram per ``Scored``."""
    from softmaxkit.report import Figure, Note, Paragraph, Section, metrics_table

    blocks: list[Any] = [Paragraph(intro)]
    if note is not None:
        blocks.append(Note(*note))
    blocks.append(
        metrics_table(
            {s.name: s.summary for s in scored},
            caption="Best value per row in green. Brackets: bootstrap 95% confidence interval of the ECE.",
        )
    )
    for s in scored:
        if s.png is not None:
            blocks.append(
                Figure(
                    name=f"reliability_{s.key}",
                    png=s.png,
                    title=f"Reliability: {s.name}.",
                    caption="Bars on the diagonal mean the stated confidence matches how often it is right.",
                )
            )
    return Section(title, blocks)


def metrics_by_key(scored: list[Scored]) -> dict[str, dict]:
    return {s.key: s.summary for s in scored}
