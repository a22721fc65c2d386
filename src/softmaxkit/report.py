"""Reports: ``metrics.json`` plus one self-contained ``report.html`` with its PNG plots.

A report is built from a few plain dataclasses (:class:`Report` holding
:class:`Headline` cards and :class:`Section` s of :class:`Paragraph`,
:class:`Table`, :class:`Figure` and :class:`Note` blocks) and rendered to a
single HTML file: CSS inline, images embedded as base64 ``data:`` URIs, no
scripts and no external assets, so it opens the same from an email attachment,
a CI artifact or a laptop without network. All text is HTML-escaped.

:func:`metrics_table` and :data:`GLOSSARY` are the parts every softmaxkit
report shares: the before/after numbers and what they mean in plain words.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence, Union

# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class Headline:
    """A big number at the top of the page: ``value`` with a ``label`` and a short ``detail``."""

    label: str
    value: str
    detail: str = ""
    tone: str = "neutral"  # "good", "warn" or "neutral": the card's accent colour


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Note:
    """A highlighted callout (a verdict, a caveat)."""

    text: str
    tone: str = "neutral"  # "good", "warn" or "neutral"


@dataclass(frozen=True)
class Cell:
    """A table cell with an optional tone ("good", "warn", "muted", "strong")."""

    text: str
    tone: str = ""


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[Union[str, Cell]]]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG image; ``name`` is also its file name next to the report."""

    name: str
    png: bytes
    title: str
    caption: str = ""


Block = Union[Paragraph, Note, Table, Figure]


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block] = ()
    figures_side_by_side: bool = True


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str = ""
    headlines: Sequence[Headline] = ()
    sections: Sequence[Section] = ()
    footer: str = ""  # rendered as "<footer>, version X.Y.Z."
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# --------------------------------------------------------------------------- shared content

#: Plain-language meaning of every number a softmaxkit report shows.
GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "Logits",
        "The raw scores a classifier produces, one per class. They can be any real number and do not "
        "sum to 1, so on their own they are not probabilities.",
    ),
    (
        "Softmax",
        "Turns logits into probabilities: exp(score) divided by the sum of exp(score) over the classes. "
        "The results are positive and sum to 1. With two classes it is the logistic (sigmoid) function "
        "of the difference of the two scores.",
    ),
    (
        "Log-loss",
        "The average of -log(probability given to the true class). 0 is perfect; a confident wrong "
        "answer is punished hard. Training to minimise it is maximum-likelihood estimation, which is "
        "why the probabilities can mean what they say. Lower is better. The interval in brackets is a "
        "95% confidence interval for the log-loss of all cases like these (a t interval on the log scale "
        "of the mean per-case loss); it is withheld (\"no CI\", with the reason) when a class has too few "
        "cases for it to hold its 95%.",
    ),
    (
        "Brier score",
        "The mean squared difference between the predicted probability vector and the one-hot truth, "
        "summed over classes (0 is perfect, 2 is the worst; twice scikit-learn's brier_score_loss for two "
        "classes). Lower is better. Its interval, on the same 0-2 scale, is built and withheld as the "
        "log-loss's.",
    ),
    (
        "ECE (expected calibration error)",
        "Group predictions by confidence; in each group compare the average confidence with the share "
        "that was right; average the gaps. An ECE of 0.03 means the stated confidence is off by about "
        "3 percentage points on average. The interval is a bootstrap 95% confidence interval for the ECE "
        "of all cases like these (the measured ECE runs high on few cases, so the interval can lie below "
        "it); on too few cases no bootstrap interval holds its 95%, so none is given (\"no CI\", with the "
        "reason under the table). The noise floor is the average ECE that perfectly calibrated "
        "probabilities like these would show on this many cases. It is an average, not a limit: a perfectly "
        "calibrated model lands above its floor often (about 4 times in 10 on the demo's 114 patients), so "
        "an ECE somewhat above the floor is no evidence of miscalibration; only one above nearly all of those "
        "simulated values is: above their 95th percentile, with p, the share of them at least as high, "
        "under 0.05. The interval reaches 0 when the ECE is not above them, but also when its bias "
        "correction goes below 0, so a 0 there alone does not say the model may be calibrated.",
    ),
    (
        "Temperature scaling",
        "Divides all logits by one number T fitted on held-out data. T > 1 softens over-confident "
        "probabilities, T < 1 sharpens timid ones. It never changes which class is predicted, so "
        "accuracy is unchanged.",
    ),
    (
        "Reliability diagram",
        "Bars show the observed accuracy in each confidence bin; the diagonal is perfect calibration. "
        "Bars below the diagonal mean over-confidence, bars above it under-confidence.",
    ),
)


def glossary_section(title: str = "What the numbers mean") -> Section:
    rows = [[Cell(term, "strong"), text] for term, text in GLOSSARY]
    return Section(title, [Table(["Term", "Meaning"], rows)])


def fmt(value: Any, digits: int = 4) -> str:
    """Format a number for a report: ``nan`` for missing, fixed digits otherwise."""
    if value is None:
        return "n/a"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def distinct(value: Any, *others: Any, digits: int = 4) -> list[str]:
    """``value`` and ``others`` as :func:`fmt` writes them, all with ``digits`` decimals or more: as many as it
    takes for ``value`` to print unlike each of ``others`` whose value differs from it.

    For figures printed side by side and compared in words: "0.0375, above its noise floor 0.0375" (0.037496
    and 0.037469, audit BT) and "Log-loss 0.608 ... was 0.608" beside "better" (0.6083 -> 0.6080) read as
    contradictions; they print 0.03750 and 0.03747, and 0.6080 and 0.6083. Values that are equal, missing or
    not finite print as :func:`fmt` prints them and widen nothing.
    """
    def real(v: Any) -> float | None:
        return float(v) if v is not None and not isinstance(v, bool) and math.isfinite(float(v)) else None

    first = real(value)
    rivals = [r for r in map(real, others) if first is not None and r is not None and r != first]
    places = digits
    # 17 decimals tell any two doubles of the sizes printed here apart; the cap only bounds the loop
    while places < 17 and any(f"{first:.{places}f}" == f"{r:.{places}f}" for r in rivals):
        places += 1
    return [fmt(v, places) if real(v) is not None else fmt(v, digits) for v in (value, *others)]


#: The summary keys shown with a 95% interval: ``KEY_ci`` holds ``[low, high]`` or None, and ``KEY_ci_note``
#: says why there is none (None too when none was asked for); :func:`softmaxkit.cli._adapters.summarize`.
CI_KEYS = ("log_loss", "brier", "ece")


def _no_ci(m: Mapping[str, Any], key: str) -> str | None:
    """Why a summary shows no interval for ``key``, short enough for a table cell: ``no CI: 90 rows`` for the
    ECE (too few rows; its ``ece_ci_note`` says why at length), the first clause of the note for a loss
    (``no CI: 3 rows of class 'malignant'``); None where it has one or none was asked for."""
    note = m.get(f"{key}_ci_note")
    if m.get(f"{key}_ci") or not note:
        return None
    if key == "ece":
        return f"no CI: {m['n']} rows" if "n" in m else "no CI"
    return note.split(";")[0]  # the note's first clause names the cause (LossInterval.withheld)


def value_text(m: Mapping[str, Any], key: str) -> str:
    """A metric of a summary with its interval (``key`` one of :data:`CI_KEYS`), for a table cell.

    ``0.0312 [0.0201, 0.0455]`` with ``KEY_ci``; ``0.0312 (no CI: 90 rows)`` where there is none for a reason
    (``KEY_ci_note``, which a table's caption or legend gives whole); ``0.0312`` where none was asked for.
    """
    ci, missing = m.get(f"{key}_ci"), _no_ci(m, key)
    text = fmt(m.get(key))
    if ci:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    elif missing:
        text += f" ({missing})"
    return text


def ece_text(m: Mapping[str, Any]) -> str:
    """:func:`value_text` of the ECE."""
    return value_text(m, "ece")


def ci_text(m: Mapping[str, Any], key: str, *, digits: int = 4) -> str:
    """The interval of a summary's ``key`` alone, for a headline: ``95% CI 0.020-0.046`` (``digits``
    decimals), the short reason where there is none (``no CI: 90 rows``), "" where none was asked for."""
    ci = m.get(f"{key}_ci")
    if ci:
        return f"95% CI {fmt(ci[0], digits)}-{fmt(ci[1], digits)}"
    return _no_ci(m, key) or ""


def ece_ci_text(m: Mapping[str, Any], *, digits: int = 4) -> str:
    """:func:`ci_text` of the ECE."""
    return ci_text(m, "ece", digits=digits)


#: (key, row label, lower is better?) of the rows :func:`metrics_table` shows.
_METRIC_ROWS = (
    ("accuracy", "Accuracy", False),
    ("log_loss", "Log-loss", True),
    ("brier", "Brier score", True),
    ("ece", "ECE [95% CI]", True),
    ("ece_noise_floor", "ECE noise floor", None),
)


def metrics_table(columns: Mapping[str, Mapping[str, Any]], *, caption: str = "",
                  mark: Collection[str] | None = None) -> Table:
    """A metrics comparison table, one column per model, the best value of each row marked.

    Parameters
    ----------
    columns : mapping of str to metrics summary
        Column title -> dict with ``accuracy``, ``log_loss``, ``brier``, ``ece``,
        ``ece_noise_floor`` and the intervals of :data:`CI_KEYS` (``log_loss_ci``,
        ``brier_ci``, ``ece_ci`` and their notes; :func:`value_text`). Missing
        keys show as n/a.
    caption : str
        Shown under the table.
    mark : collection of str, optional
        The keys whose best value is marked (default: all): a caller that knows a
        difference is within the noise leaves its row unmarked, so green never
        claims a winner the verdict does not.
    """
    names = list(columns)
    rows = []
    for key, label, lower_better in _METRIC_ROWS:
        values = [columns[n].get(key) for n in names]
        # +inf of a lower-is-better metric (a log-loss with a true class given probability 0) is its worst value,
        # not a missing one: left out, an isotonic map's inf beside the model's 0.1087 marked neither, under a
        # caption that reads an unmarked row as within the noise (audit BT)
        ranked = [v for v in values if v is not None and (math.isfinite(float(v)) or (
            lower_better and float(v) == math.inf))]
        best = None
        if (lower_better is not None and len(names) > 1 and ranked and min(ranked) != max(ranked)
                and (mark is None or key in mark)):
            best = min(ranked) if lower_better else max(ranked)
        row: list[Union[str, Cell]] = [Cell(label, "strong")]
        for name, value in zip(names, values):
            text = value_text(columns[name], key) if key in CI_KEYS else fmt(value)
            row.append(Cell(text, "good" if best is not None and value == best else ""))
        rows.append(row)
    return Table(["Metric", *names], rows, caption)


# --------------------------------------------------------------------------- rendering

_CSS = """
:root { --ink:#1d2433; --muted:#5b6475; --line:#e3e7ee; --bg:#f6f8fb; --card:#fff;
        --good:#1a7f4b; --good-bg:#e8f6ee; --warn:#a35200; --warn-bg:#fff3e3; --accent:#2f5fd0; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 16px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 32px 28px 48px; }
header.top { background: linear-gradient(120deg, #1f3b82, #2f5fd0); color:#fff; padding: 34px 0 30px; }
header.top .inner { max-width:1080px; margin:0 auto; padding:0 28px; }
header.top h1 { margin:0 0 6px; font-size: 30px; letter-spacing:-0.01em; }
header.top p { margin:0; opacity:.9; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap:14px; margin: -8px 0 26px; }
.card { background:var(--card); border:1px solid var(--line); border-top:4px solid var(--accent);
        border-radius:10px; padding:14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.card.good { border-top-color: var(--good); } .card.warn { border-top-color: var(--warn); }
.card .label { color:var(--muted); font-size:13px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:28px; font-weight:650; margin:2px 0; font-variant-numeric: tabular-nums; }
.card .detail { color:var(--muted); font-size:13.5px; }
section { background:var(--card); border:1px solid var(--line); border-radius:12px; padding: 20px 24px;
          margin: 0 0 20px; }
section h2 { margin: 0 0 12px; font-size: 21px; }
p { margin: 0 0 12px; }
.note { border-left:4px solid var(--accent); background:#eef3ff; padding:10px 14px; border-radius:6px;
        margin:0 0 14px; }
.note.good { border-color: var(--good); background: var(--good-bg); }
.note.warn { border-color: var(--warn); background: var(--warn-bg); }
table { border-collapse: collapse; width:100%; margin: 4px 0 14px; font-size: 15px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background:#f0f3f8; font-weight:600; font-size:13.5px; color:#39425a; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background:#fafbfd; }
td.good { color:var(--good); font-weight:650; } td.warn { color:var(--warn); font-weight:650; }
td.muted { color:var(--muted); } td.strong { font-weight:600; }
caption { caption-side: bottom; text-align:left; color:var(--muted); font-size:13.5px; padding-top:6px; }
.figs { display:grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; }
figure { margin:0 0 8px; } figure img { width:100%; height:auto; border:1px solid var(--line); border-radius:8px; }
figcaption { color:var(--muted); font-size:13.5px; margin-top:4px; }
figcaption b { color: var(--ink); }
footer { color:var(--muted); font-size:13px; text-align:center; margin-top: 24px; }
@media print { body { background:#fff; } section, .card { break-inside: avoid; } }
"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _looks_numeric(text: str) -> bool:
    head = text.strip().split(" ")[0].replace(",", "").replace("%", "")
    try:
        float(head)
    except ValueError:
        return head in ("n/a", "inf", "-inf")
    return True


def _render_table(table: Table) -> str:
    out = ["<table>"]
    if table.caption:
        out.append(f"<caption>{_esc(table.caption)}</caption>")
    # A column is right-aligned when all its body cells are numbers.
    numeric = [
        bool(table.rows) and all(_looks_numeric(_cell(r[j])[0]) for r in table.rows if j < len(r))
        for j in range(len(table.columns))
    ]
    out.append("<thead><tr>")
    out += [f'<th{" class=num" if numeric[j] else ""}>{_esc(c)}</th>' for j, c in enumerate(table.columns)]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        out.append("<tr>")
        for j, cell in enumerate(row):
            text, tone = _cell(cell)
            classes = " ".join(c for c in (tone, "num" if j < len(numeric) and numeric[j] else "") if c)
            out.append(f'<td{f" class={chr(34)}{classes}{chr(34)}" if classes else ""}>{_esc(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _cell(cell: Union[str, Cell]) -> tuple[str, str]:
    return (cell.text, cell.tone) if isinstance(cell, Cell) else (str(cell), "")


def _render_figure(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    caption = f"<b>{_esc(fig.title)}</b>" + (f" {_esc(fig.caption)}" if fig.caption else "")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(fig.title)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _render_section(section: Section) -> str:
    out = [f"<section><h2>{_esc(section.title)}</h2>"]
    figures: list[str] = []

    def flush() -> None:
        if figures:
            out.append(f'<div class="{"figs" if section.figures_side_by_side else ""}">{"".join(figures)}</div>')
            figures.clear()

    for block in section.blocks:
        if isinstance(block, Figure):
            figures.append(_render_figure(block))
            continue
        flush()
        if isinstance(block, Paragraph):
            out.append(f"<p>{_esc(block.text)}</p>")
        elif isinstance(block, Note):
            out.append(f'<div class="note {_esc(block.tone)}">{_esc(block.text)}</div>')
        elif isinstance(block, Table):
            out.append(_render_table(block))
        else:  # pragma: no cover - a programming error, not user input
            raise TypeError(f"unknown report block {type(block).__name__}")
    flush()
    out.append("</section>")
    return "".join(out)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS, embedded PNGs, no scripts)."""
    cards = "".join(
        f'<div class="card {_esc(h.tone)}"><div class="label">{_esc(h.label)}</div>'
        f'<div class="value">{_esc(h.value)}</div><div class="detail">{_esc(h.detail)}</div></div>'
        for h in report.headlines
    )
    subtitle = f"<p>{_esc(report.subtitle)}</p>" if report.subtitle else ""
    from softmaxkit import __version__

    # Every page names the version that made it: numbers are only comparable within one.
    footer = f"<footer>{_esc(report.footer or 'Generated by softmaxkit')}, version {_esc(__version__)}.</footer>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(report.title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><div class="inner"><h1>{_esc(report.title)}</h1>{subtitle}</div></header>'
        f"<main>{f'<div class=cards>{cards}</div>' if cards else ''}"
        + "".join(_render_section(s) for s in report.sections)
        + f"{footer}</main></body></html>\n"
    )


# --------------------------------------------------------------------------- writing


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays, Paths: everything a metrics dict may carry.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to metrics.json")


def _strict_json_value(value: Any) -> Any:
    """JSON has no NaN or Infinity (strict parsers reject the bare tokens).

    An infinity is a result (a log-loss of ``inf``: a true class given
    probability 0), so it is written as the string ``"inf"``/``"-inf"``, which
    ``float()`` reads back. Only NaN, "no value" (not computed, undefined),
    becomes null; an infinite loss must not read as a missing one.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json_value(v) for v in value]
    return value


def metrics_json(metrics: Mapping[str, Any]) -> str:
    """``metrics`` as indented, strict JSON (NumPy values converted; NaN as null, infinities as
    ``"inf"``/``"-inf"``: see :func:`_strict_json_value`)."""
    plain = json.loads(json.dumps(metrics, default=_json_default))
    return json.dumps(_strict_json_value(plain), indent=2, allow_nan=False) + "\n"


#: The files softmaxkit wrote into a report directory, each with its sha256; only those, while unchanged,
#: are ever replaced or removed.
MANIFEST = ".softmaxkit-report.json"

#: Files every report has (figures add ``<name>.png``).
_FIXED_FILES = ("metrics.json", "report.html")


#: The names a report writes (:func:`write_report`); a manifest entry of any other form is ignored.
_REPORT_FILE = re.compile(r"^(metrics\.json|report\.html|[A-Za-z0-9_.-]+\.png|\.softmaxkit-report\.json)$")


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    """sha256 of the file at ``path``; None where it is no readable file (a directory, say)."""
    try:
        return _sha256(path.read_bytes()) if path.is_file() else None
    except OSError:
        return None


def _recorded_files(out: Path) -> dict[str, str | None]:
    """The files :data:`MANIFEST` says softmaxkit wrote in ``out``, each with the sha256 it recorded.

    The manifest is a file anyone can edit, and its names decide what a new report replaces or
    removes: a name such as ``../victim.txt`` was deleted outside the folder (audit), so any
    name with a path, or not of a report file's form, is ignored. A manifest of the versions that
    recorded names only (no ``"sha256"`` record) gives None for each name: its files are owned as
    they were then. In a manifest with digests, a name without one is not softmaxkit's.
    """
    try:
        record = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        names = {str(name) for name in record.get("files", [])}
        digests = record.get("sha256")
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    names = {n for n in names if _REPORT_FILE.match(n) and n not in (".", "..") and not n.startswith("..")}
    if digests is None:
        return dict.fromkeys(names)
    if not isinstance(digests, dict):
        return {}
    return {n: digests[n] for n in names if isinstance(digests.get(n), str)}


def _owned_files(out: Path, names: Sequence[str], *, option: str) -> set[str]:
    """The files in ``out`` that a report writing ``names`` may replace or remove; ValueError naming
    the first that it may not (a report file softmaxkit did not write, or one changed since it did),
    or ``out`` itself when it is no directory.

    Owned are the files :data:`MANIFEST` lists whose contents still have the sha256 recorded when
    they were written. Names alone were not enough: a figure the user had overwritten with their
    own picture was deleted as a stale file of the earlier report, and an edited ``report.html``
    replaced, exit 0 (audit). A digest rather than size and modification time: those survive an
    edit that keeps the size within a coarse clock tick, and copies that keep times (``cp -p``,
    ``rsync -t``, unpacking an archive) carry them to other contents; a report's files are a few
    MB at most, hashed in milliseconds.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out}: exists and is not a directory; choose another report directory")
    if not out.exists():
        return set()
    recorded = _recorded_files(out)
    changed = sorted(n for n, digest in recorded.items()
                     if digest is not None and (out / n).exists() and _file_sha256(out / n) != digest)
    if changed:
        raise ValueError(
            f"{option} {out}: {out / changed[0]} was changed after softmaxkit wrote it (it no longer matches "
            f"{MANIFEST}); refusing to replace or remove it (move it elsewhere to keep it, delete it to let the "
            "report replace it, or choose a new report directory)"
        )
    owned = set(recorded)
    clashes = [n for n in names if (out / n).exists() and n not in owned]
    clashes += sorted(p.name for p in out.glob("reliability_*.png") if p.name not in owned and p.name not in clashes)
    if clashes:
        raise ValueError(
            f"{option} {out}: {out / clashes[0]} was not written by softmaxkit; refusing to overwrite it "
            "(choose a new report directory, or move the file)"
        )
    return owned


def check_report_dir(out_dir: str | os.PathLike, names: Sequence[str] = _FIXED_FILES, *,
                     option: str = "--report") -> Path:
    """Refuse, before any work, a report directory where writing would destroy someone's file.

    A report directory may be new, or one softmaxkit wrote before (its files
    are listed in :data:`MANIFEST`, each with its sha256). A file named like a report file
    (``metrics.json``, ``report.html``, ``reliability_*.png``) that softmaxkit
    did not write, or a file it wrote that was changed since, is never replaced or removed: the
    command fails naming it, and the user picks another directory or moves the file. (Refusing is
    more predictable than writing somewhere the user did not ask for.)
    """
    out = Path(out_dir)
    _owned_files(out, names, option=option)
    return out


def write_report(
    out_dir: str | os.PathLike,
    report: Report,
    *,
    inputs: tuple[str | os.PathLike, ...] = (),
    outputs: Any = None,
    option: str = "--report",
) -> dict[str, Path]:
    """Write ``metrics.json``, each figure as ``<name>.png`` and ``report.html`` into ``out_dir``.

    All files are written or none (:class:`softmaxkit.io.StagedOutputs`).
    With ``outputs`` (a ``StagedOutputs``) the files join that transaction and
    appear when the caller commits it, together with the command's other
    outputs; without, they are committed here. ``inputs`` are never
    overwritten, nor any file softmaxkit did not write (:func:`check_report_dir`; ``option``, the
    command's option that named ``out_dir``, leads its message).
    Files an earlier report listed in :data:`MANIFEST` that this one does not
    write are removed in the same commit; one changed since it was written is
    neither replaced nor removed: the report is refused, naming it.

    Returns
    -------
    dict
        ``{"metrics": path, "report": path, <figure name>: path, ...}``.
    """
    from softmaxkit.io import StagedOutputs

    out = Path(out_dir)
    files = {"metrics": ("metrics.json", metrics_json(report.metrics).encode("utf-8"))}
    for fig in report.figures:
        files[fig.name] = (f"{fig.name}.png", fig.png)
    files["report"] = ("report.html", render_html(report).encode("utf-8"))
    names = [name for name, _ in files.values()]
    owned = _owned_files(out, names, option=option)  # check_report_dir's refusals
    # Files an earlier report wrote here that this one does not (reliability_calibrated.png after a
    # re-fit without --calibrate): removed with the commit, so the folder holds one report, not two.
    stale = sorted(n for n in owned - set(names) - {MANIFEST} if (out / n).is_file())
    # "files" as earlier versions wrote it (they read it still); "sha256" says which contents are ours.
    manifest = json.dumps({"files": sorted(set(names) | {MANIFEST}),
                           "sha256": {name: _sha256(data) for name, data in files.values()}}, indent=1) + "\n"

    own = outputs is None
    staged = StagedOutputs(inputs=inputs) if own else outputs
    try:
        written = {}
        for key, (name, data) in files.items():
            staged.stage(out / name).write_bytes(data)
            written[key] = out / name
        staged.stage(out / MANIFEST).write_text(manifest, encoding="utf-8")
        for name in stale:
            staged.remove(out / name)
        if own:
            staged.commit()
    finally:
        if own and not staged.committed:
            staged.discard()
    return written
