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


def test_from_estimator_takes_class_labels_only(data):
    """The issue: the docstring also promised column indices; with classes_ = [1, 2, 3]
    indices 1 and 2 were read as labels (the wrong columns) and a 0 was an error."""
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 2))
    labels = np.array([1, 2, 3])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.8).astype(int)]
    clf = LogisticRegression().fit(X, labels)
    columns = np.searchsorted(clf.classes_, labels)
    d = ReliabilityDiagram.from_estimator(clf, X, labels, ci=None)
    expected = reliability_curve(columns, clf.predict_proba(X))
    np.testing.assert_allclose(d.curve.accuracy[d.curve.nonempty], expected.accuracy[expected.nonempty])
    with pytest.raises(ValueError, match="y must hold class labels, not column indices"):
        ReliabilityDiagram.from_estimator(clf, X, columns, ci=None)
    doc = " ".join(ReliabilityDiagram.from_estimator.__doc__.split())
    assert "not column indices" in doc and "may hold" not in doc


def _legend_colors(ax):
    from matplotlib.colors import to_hex

    legend = ax.get_legend()
    return {t.get_text(): to_hex(h.get_facecolor(), keep_alpha=False) for t, h in zip(legend.get_texts(),
            legend.legend_handles) if hasattr(h, "get_facecolor")}  # fmt: skip


def test_two_diagrams_on_one_axes_can_be_told_apart(data):
    """The issue: both diagrams' bars had one hard-coded colour (identical legend swatches, the
    second hiding the first) and both ECE boxes sat at the same spot, unnamed, one on the other."""
    from matplotlib.colors import to_hex

    y, p = data
    sharp = p**2 / (p**2).sum(axis=1, keepdims=True)
    fig, ax = plt.subplots()
    ReliabilityDiagram.from_predictions(y, p, ax=ax, show_histogram=False, ci=None, name="first")
    ReliabilityDiagram.from_predictions(y, sharp, ax=ax, show_histogram=False, ci=None, name="second")
    colors = _legend_colors(ax)
    assert colors["first"] != colors["second"]
    # The second diagram's bars are outlined in its colour over a faint fill: the first shows through.
    (second,) = [cont for cont in ax.containers if cont.get_label() == "second"]
    assert second.patches
    for bar in second.patches:
        assert to_hex(bar.get_edgecolor()) == colors["second"] and bar.get_facecolor()[3] < 0.5
    boxes = [t for t in ax.texts if "ECE" in t.get_text()]
    assert [t.get_text().split(":")[0] for t in boxes] == ["first", "second"]
    fig.canvas.draw()
    first, below = (t.get_bbox_patch().get_window_extent() for t in boxes)
    assert below.y1 < first.y0  # stacked, not overlapping
    # An explicit colour wins.
    third = ReliabilityDiagram.from_predictions(y, p, ax=ax, show_histogram=False, ci=None, name="third",
                                                color="#000000")
    assert _legend_colors(third.ax_)["third"] == "#000000"


def test_diagrams_on_one_axes_share_one_histogram_panel(data):
    """The issue: each diagram drawn on the same axes with show_histogram=True appended
    another count panel."""
    y, p = data
    sharp = p**2 / (p**2).sum(axis=1, keepdims=True)
    fig, ax = plt.subplots()
    a = ReliabilityDiagram.from_predictions(y, p, ax=ax, ci=None, name="first")
    b = ReliabilityDiagram.from_predictions(y, sharp, ax=ax, ci=None, name="second")
    assert len(fig.axes) == 2 and a.hist_ax_ is b.hist_ax_
    hax = b.hist_ax_
    n_a, n_b = int(a.curve.nonempty.sum()), int(b.curve.nonempty.sum())
    assert len(hax.patches) == n_a + n_b
    assert hax.get_ylim()[1] >= max(a.curve.counts.max(), b.curve.counts.max())
    ReliabilityDiagram.from_predictions(y, p, ax=ax, ci=None, show_histogram=False)
    assert len(fig.axes) == 2
