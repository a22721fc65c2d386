"""softmaxkit.report: metrics.json and the self-contained report.html."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from softmaxkit.report import (
    Cell,
    Figure,
    Headline,
    Note,
    Paragraph,
    Report,
    Section,
    Table,
    glossary_section,
    metrics_json,
    metrics_table,
    render_html,
    write_report,
)

#: Debian's package installs /usr/bin/chromium; the test is skipped without it.
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)

BEFORE = {"n": 100, "accuracy": 0.9, "log_loss": 0.40, "brier": 0.15, "ece": 0.08, "ece_ci": [0.05, 0.11],
          "ece_noise_floor": 0.02}
AFTER = {**BEFORE, "log_loss": 0.30, "brier": 0.14, "ece": 0.03, "ece_ci": [0.01, 0.05]}


def tiny_png(title: str = "x") -> bytes:
    """A real PNG from matplotlib (kept independent of softmaxkit.plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    ax.set_title(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    return buf.getvalue()


def sample_report() -> Report:
    return Report(
        title="Can these probabilities be trusted?",
        subtitle="a <test> & more",
        headlines=[Headline("Accuracy", "90.0%", "on 100 rows", "good")],
        sections=[
            Section("Overview", [Paragraph("Plain words <b>escaped</b>."), Note("Better.", "good")]),
            Section("Before and after", [metrics_table({"Before": BEFORE, "After": AFTER}),
                                         Figure("reliability_before", tiny_png("before"), "Before"),
                                         Figure("reliability_after", tiny_png("after"), "After")]),
            glossary_section(),
        ],
        footer="made by a test",
        metrics={"test": {"before": BEFORE, "after": AFTER}, "np": np.float32(0.5), "arr": np.arange(3),
                 "bad": float("nan")},
    )


def test_html_is_self_contained_with_sections_and_images():
    page = render_html(sample_report())
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for title in ("Overview", "Before and after", "What the numbers mean"):
        assert f"<h2>{title}</h2>" in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    # No scripts and nothing fetched from elsewhere: it must open offline, from an attachment.
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page


def test_text_is_escaped():
    page = render_html(sample_report())
    assert "a &lt;test&gt; &amp; more" in page and "<b>escaped</b>" not in page


def test_metrics_table_marks_the_best_value():
    table = metrics_table({"Before": BEFORE, "After": AFTER})
    rows = {r[0].text: r[1:] for r in table.rows}
    assert rows["Log-loss"][1].tone == "good" and rows["Log-loss"][0].tone == ""
    assert rows["ECE [95% CI]"][1].text == "0.0300 [0.0100, 0.0500]"
    assert all(c.tone == "" for c in rows["Accuracy"])  # a tie marks nothing


def test_metrics_json_is_strict_json():
    text = metrics_json({"a": np.float64(1.5), "b": np.arange(2), "c": float("inf"), "d": [float("nan")],
                         "e": -np.inf})
    # Audit: an infinite log-loss was written as null, the same as "not computed".
    assert json.loads(text) == {"a": 1.5, "b": [0, 1], "c": "inf", "d": [None], "e": "-inf"}
    assert "NaN" not in text and "Infinity" not in text
    assert float(json.loads(text)["c"]) == np.inf


def test_write_report_files(tmp_path):
    written = write_report(tmp_path / "rep", sample_report())
    assert set(written) == {"metrics", "report", "reliability_before", "reliability_after"}
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["np"] == 0.5
    assert (tmp_path / "rep" / "reliability_after.png").read_bytes().startswith(b"\x89PNG")
    assert not list((tmp_path / "rep").glob(".*tmp*"))  # atomic writes leave no temporaries


def test_write_report_refuses_a_file_as_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        write_report(tmp_path / "f", sample_report())


def test_table_alignment_and_tones():
    page = render_html(Report("t", sections=[Section("s", [Table(["name", "value"], [["a", Cell("1.5", "good")]])])]))
    assert '<td class="good num">1.5</td>' in page and "<td>a</td>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package 'chromium')")
def test_report_renders_in_headless_chromium(tmp_path):
    written = write_report(tmp_path / "rep", sample_report())
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           f"--screenshot={shot}", "--window-size=1200,2400", written["report"].resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.read_bytes().startswith(b"\x89PNG")
    # A blank page compresses to a few KB; a rendered report with tables and plots does not.
    assert shot.stat().st_size > 20_000


def test_report_never_overwrites_files_it_did_not_write(tmp_path):
    from softmaxkit.report import MANIFEST, check_report_dir

    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "notes.txt").write_text("unrelated")
    write_report(rep, sample_report())  # no clash: written beside the user's file
    write_report(rep, sample_report())  # its own files: rewritten
    assert "metrics.json" in json.loads((rep / MANIFEST).read_text())["files"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.html").write_text("mine")
    with pytest.raises(ValueError, match=r"report\.html was not written by softmaxkit; refusing to overwrite it"):
        write_report(other, sample_report())
    assert (other / "report.html").read_text() == "mine" and sorted(os.listdir(other)) == ["report.html"]
    with pytest.raises(ValueError, match="not written by softmaxkit"):
        check_report_dir(other)


def test_a_rewritten_report_drops_the_figures_it_no_longer_has(tmp_path):
    """A re-fit without --calibrate left reliability_calibrated.png from the earlier report next to a
    report.html that no longer showed it (audit): the folder held parts of two reports."""
    from softmaxkit.report import MANIFEST

    rep = tmp_path / "rep"
    (tmp_path / "rep").mkdir()
    (rep / "notes.txt").write_text("the user's")
    write_report(rep, sample_report())
    smaller = sample_report()
    smaller.sections[1].blocks.pop()  # the "after" figure
    write_report(rep, smaller)
    assert not (rep / "reliability_after.png").exists()
    assert (rep / "reliability_before.png").exists() and (rep / "notes.txt").read_text() == "the user's"
    assert "reliability_after.png" not in json.loads((rep / MANIFEST).read_text())["files"]


def test_manifest_names_outside_the_folder_are_never_removed(tmp_path):
    """The manifest decides what a new report removes; an edited entry ../victim.txt was deleted (audit)."""
    from softmaxkit.report import MANIFEST

    rep = tmp_path / "rep"
    write_report(rep, sample_report())
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (rep / "notes.png").write_text("the user's")
    record = json.loads((rep / MANIFEST).read_text())
    record["files"] += ["../victim.txt", str(victim), "sub/x.png"]
    (rep / MANIFEST).write_text(json.dumps(record))
    write_report(rep, sample_report())
    assert victim.read_text() == "keep me" and (rep / "notes.png").read_text() == "the user's"
