"""softmaxkit.plot.ReliabilityDiagram (matplotlib's Agg backend)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from softmaxkit.metrics import reliability_curve  # noqa: E402
from softmaxkit.plot import ReliabilityDiagram  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data(rng):
    z = rng.standard_normal((800, 4)) * 3
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.where(rng.random(800) < 0.7, p.argmax(axis=1), rng.integers(0, 4, 800))
    return y, p


def _bar_count(ax):
    return len(ax.patches)


def test_top_label_diagram(data):
    y, p = data
    d = ReliabilityDiagram.from_predictions(y, p, n_bins=10, name="model", ci=None)
    assert d.curve.class_index is None
    assert d.figure_ is d.ax_.figure
    assert d.ece is not None and np.isfinite(d.ece.value)
    nonempty = int(d.curve.nonempty.sum())
    # Accuracy bars + gap bars (one per non-empty bin) and nothing for empty bins.
    assert _bar_count(d.ax_) == 2 * nonempty
    assert _bar_count(d.hist_ax_) == nonempty
    labels = [t.get_text() for t in d.hist_ax_.texts]
    assert labels == [str(c) for c in d.curve.counts[d.curve.nonempty]]
    assert "ECE" in " ".join(t.get_text() for t in d.ax_.texts)
    legend = [t.get_text() for t in d.ax_.get_legend().get_texts()]
    assert "model" in legend and "perfectly calibrated" in legend


def test_empty_bins_draw_nothing():
    p1 = np.array([0.95, 0.92, 0.55, 0.6])
    y = np.array([1, 1, 0, 1])
    d = ReliabilityDiagram.from_predictions(y, p1, n_bins=10, ci=None, show_gaps=False)
    # [0.5, 0.6) holds 0.55, [0.6, 0.7) holds 0.6 itself, [0.9, 1] holds 0.92 and 0.95; 7 bins are empty
    assert d.curve.nonempty.sum() == 3
    assert _bar_count(d.ax_) == 3 and _bar_count(d.hist_ax_) == 3
    heights = sorted(b.get_height() for b in d.hist_ax_.patches)
    assert heights == [1, 1, 2]


def test_per_class_view(data):
    y, p = data
    d = ReliabilityDiagram.from_predictions(y, p, class_index=2, n_bins=8)
    assert d.curve.class_index == 2
    assert "class 2" in d.ax_.get_title()
    expected = reliability_curve(y, p, class_index=2, n_bins=8)
    np.testing.assert_array_equal(d.curve.counts, expected.counts)


def test_plot_on_given_axes_and_png(data):
    y, p = data
    fig, ax = plt.subplots()
    d = ReliabilityDiagram.from_predictions(y, p, ax=ax, show_histogram=False, ci=None)
    assert d.ax_ is ax and d.hist_ax_ is None and d.figure_ is fig
    png = d.to_png_bytes(dpi=50)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


def test_replot_from_curve(data):
    y, p = data
    d = ReliabilityDiagram(curve=reliability_curve(y, p, binning="quantile"), name="q")
    assert d.to_png_bytes().startswith(PNG_MAGIC)  # plots on first use


def test_from_estimator_maps_class_labels(data):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    labels = np.array(["cat", "dog", "eel"])[np.argmax(X + rng.standard_normal((300, 3)), axis=1)]
    clf = LogisticRegression().fit(X, labels)
    d = ReliabilityDiagram.from_estimator(clf, X, labels, ci=None)
    assert d.name == "LogisticRegression"
    assert d.curve.counts.sum() == 300
    with pytest.raises(ValueError, match="'fox'"):
        ReliabilityDiagram.from_estimator(clf, X[:2], np.array(["cat", "fox"]))
    with pytest.raises(TypeError, match="predict_proba"):
        ReliabilityDiagram.from_estimator(object(), X, labels)


def test_import_does_not_load_matplotlib():
    code = "import sys, softmaxkit.plot; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_two_diagrams_on_one_axes_share_the_diagonal_and_legend_entries(data):
    """The issue: a second diagram on the same ax added a second diagonal and legend entry."""
    y, p = data
    fig, ax = plt.subplots()
    ReliabilityDiagram.from_predictions(y, p, ax=ax, show_histogram=False, ci=None, name="first")
    sharp = p**2 / (p**2).sum(axis=1, keepdims=True)
    ReliabilityDiagram.from_predictions(y, sharp, ax=ax, show_histogram=False, ci=None, name="second")
    diagonals = [line for line in ax.get_lines() if list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == [0, 1]]
    assert len(diagonals) == 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend.count("perfectly calibrated") == 1
    assert "first" in legend and "second" in legend
    assert len(legend) == len(set(legend))
