"""Reliability diagrams: a Display object in the style of scikit-learn's ``CalibrationDisplay``.

matplotlib is imported only when something is drawn, so ``import
softmaxkit.plot`` stays light. Build a diagram with
:meth:`ReliabilityDiagram.from_predictions` or
:meth:`ReliabilityDiagram.from_estimator`; re-draw it with :meth:`plot`;
embed it with :meth:`to_png_bytes`.
"""

from __future__ import annotations

import io
import math
import numbers
from typing import Any

import numpy as np

from softmaxkit._extras import import_optional
from softmaxkit.metrics import ECEResult, ReliabilityCurve, expected_calibration_error, reliability_curve

__all__ = ["ReliabilityDiagram"]

#: Marks the perfect-calibration diagonal so that it is drawn once per axes.
_DIAGONAL_GID = "softmaxkit-perfect-calibration"
#: Marks each diagram's accuracy bars, so a later diagram on the same axes knows it is not the first.
_ACCURACY_GID = "softmaxkit-accuracy"
#: Marks the ECE boxes, so a later diagram's box goes below the earlier ones instead of on top.
_ECE_GID = "softmaxkit-ece"
#: Marks the histogram panel, so a later diagram on the same axes draws into it instead of adding one.
_HISTOGRAM_GID = "softmaxkit-confidence-histogram"

#: Accuracy-bar colours of the diagrams drawn on one axes, in order: seaborn's "deep"
#: palette without its green and red, which mark the under- and over-confident gaps.
BAR_COLORS = ("#4c72b0", "#dd8452", "#8172b3", "#937860", "#da8bc3", "#64b5cd", "#ccb974", "#8c8c8c")

#: ECE box geometry in points (fontsize 9, line spacing 1.2, the round box's padding 0.3 em)
#: and the gap between stacked boxes: enough to place the next box without a renderer.
_ECE_FONTSIZE = 9
_ECE_LINE_PT = 1.2 * _ECE_FONTSIZE
_ECE_PAD_PT = 0.3 * _ECE_FONTSIZE
_ECE_GAP_PT = 4.0


class ReliabilityDiagram:
    """Reliability diagram: per-bin accuracy against confidence, gaps and a confidence histogram.

    Top panel: one bar per non-empty bin spanning the bin's edges up to its
    accuracy, a gap bar from the accuracy to the bin's mean confidence (red
    hatched where the model is over-confident, green where under-confident),
    and the diagonal of perfect calibration. Bottom panel: how many samples
    each bin holds, with the count written on each bar; with sample weights,
    the summed weight of each bin instead (``ReliabilityCurve.weights``, axis
    "weight"), so integer weights draw what repeating the rows would. Empty bins draw
    nothing (no zero-height bars pretending to be evidence).

    Several diagrams can share one axes to compare models (pass the same
    ``ax``): the first draws filled bars, each later one outlined bars in the
    next of :data:`BAR_COLORS` (or ``color``), its ECE box goes below the
    earlier ones, named after the model, and its counts go into the same
    histogram panel as outlines.

    Parameters
    ----------
    curve : ReliabilityCurve
        Per-bin data (see :func:`softmaxkit.metrics.reliability_curve`).
    ece : ECEResult, optional
        Shown in the legend with its interval and noise floor.
    name : str, optional
        Legend label of the model.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The reliability panel.
    hist_ax_ : matplotlib Axes or None
        The confidence histogram.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.plot import ReliabilityDiagram
    >>> p = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> d = ReliabilityDiagram.from_predictions(np.array([0, 1, 1]), p, n_bins=5)  # doctest: +SKIP
    >>> png = d.to_png_bytes()  # doctest: +SKIP
    """

    def __init__(self, *, curve: ReliabilityCurve, ece: ECEResult | None = None, name: str | None = None) -> None:
        # checked here: plot() failed on curve=None or ece=42 with an AttributeError (audit)
        if not isinstance(curve, ReliabilityCurve):
            raise TypeError(
                "curve must be a ReliabilityCurve (softmaxkit.metrics.reliability_curve(y, probs)), got "
                f"{type(curve).__name__}"
            )
        if ece is not None and not isinstance(ece, ECEResult):
            raise TypeError(
                "ece must be an ECEResult (softmaxkit.metrics.expected_calibration_error(y, probs)) or None, got "
                f"{type(ece).__name__}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        self.curve = curve
        self.ece = ece
        self.name = name

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_predictions(
        cls,
        y: Any,
        probs: Any,
        *,
        n_bins: int = 15,
        binning: str = "uniform",
        class_index: int | None = None,
        sample_weight: Any = None,
        ci: float | None = 0.95,
        name: str | None = None,
        ax: Any = None,
        show_gaps: bool = True,
        show_histogram: bool = True,
        color: Any = None,
        random_state: Any = 0,
    ) -> "ReliabilityDiagram":
        """Compute the curve (and the L1 ECE) from labels and probabilities, then plot.

        Parameters
        ----------
        y : array_like of shape (N,)
            Integer class indices.
        probs : array_like of shape (N, C) or (N,)
        n_bins, binning, sample_weight
            As :func:`softmaxkit.metrics.expected_calibration_error`.
        class_index : int, optional
            None: the top-label view (confidence of the predicted class). An
            int ``k``: the per-class view of class ``k`` against the rest.
        ci : float or None, default 0.95
            Interval shown for the ECE (None: no bootstrap).
        name : str, optional
        ax : matplotlib Axes, optional
            Where to draw; a new figure otherwise.
        show_gaps, show_histogram : bool
        color : matplotlib color, optional
            Of the accuracy bars (and the ECE box's edge); by default
            ``BAR_COLORS[k]`` for the ``k``-th diagram on ``ax`` (from 0).
        random_state : None, int or Generator
            Seeds the ECE's bootstrap.

        Returns
        -------
        ReliabilityDiagram
        """
        curve = reliability_curve(
            y, probs, n_bins=n_bins, binning=binning, class_index=class_index, sample_weight=sample_weight
        )
        ece = None
        if class_index is None:
            ece = expected_calibration_error(
                y, probs, n_bins=n_bins, binning=binning, sample_weight=sample_weight, ci=ci,
                random_state=random_state,
            )
        return cls(curve=curve, ece=ece, name=name).plot(
            ax=ax, show_gaps=show_gaps, show_histogram=show_histogram, color=color
        )

    @classmethod
    def from_estimator(cls, estimator: Any, X: Any, y: Any, *, name: str | None = None, **kwargs: Any) -> "ReliabilityDiagram":
        """Plot a fitted classifier's ``predict_proba(X)`` against ``y``.

        ``y`` holds class labels, the values of ``estimator.classes_`` (as for
        scikit-learn's ``CalibrationDisplay.from_estimator``), which are mapped
        to the columns of ``predict_proba``; not column indices, which would be
        ambiguous whenever the labels are integers other than ``0..C-1`` (a
        label missing from ``classes_`` raises). An estimator without
        ``classes_`` is given ``y`` as column indices. Other keyword arguments
        go to :meth:`from_predictions`.
        """
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"{type(estimator).__name__} has no predict_proba; use from_predictions")
        probs = np.asarray(estimator.predict_proba(X))
        y = np.asarray(y)
        classes = getattr(estimator, "classes_", None)
        if classes is not None:
            lookup = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
            try:
                y = np.fromiter((lookup[v] for v in y.tolist()), dtype=np.int64, count=y.shape[0])
            except KeyError as exc:
                raise ValueError(
                    f"y contains {exc.args[0]!r}, which is not among the estimator's classes_ {list(lookup)}: "
                    "y must hold class labels, not column indices"
                ) from None
        return cls.from_predictions(y, probs, name=name or type(estimator).__name__, **kwargs)

    # ------------------------------------------------------------------ drawing

    def plot(
        self,
        ax: Any = None,
        *,
        show_gaps: bool = True,
        show_histogram: bool = True,
        name: str | None = None,
        color: Any = None,
    ) -> "ReliabilityDiagram":
        """Draw on ``ax`` (a new figure if None); returns ``self``.

        ``color`` is that of the accuracy bars (default: ``BAR_COLORS[k]``
        for the ``k``-th diagram on ``ax``, from 0). On an ``ax`` that already
        holds a diagram, this one joins it (see the class docstring).
        """
        plt = import_optional("matplotlib.pyplot", needed_for="drawing a reliability diagram")
        from matplotlib.colors import to_rgba

        if ax is None:
            fig, ax = plt.subplots(figsize=(5.0, 5.5))
        fig = ax.figure
        c = self.curve
        keep = c.nonempty
        left, right = c.edges[:-1][keep], c.edges[1:][keep]
        width, acc, conf = right - left, c.accuracy[keep], c.mean_confidence[keep]
        label = name or self.name
        what = "accuracy" if c.class_index is None else f"frequency of class {c.class_index}"
        order = _diagrams_on(ax)  # 0 for the first diagram on this axes
        color = BAR_COLORS[order % len(BAR_COLORS)] if color is None else color

        # Drawn once per axes: a second diagram on the same ax (to compare models) reuses it.
        if not any(line.get_gid() == _DIAGONAL_GID for line in ax.get_lines()):
            ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfectly calibrated",
                    gid=_DIAGONAL_GID)
        # Later diagrams are outlined over a faint fill, so the earlier bars show through them.
        style = (dict(color=color, edgecolor="white", linewidth=0.6) if order == 0
                 else dict(facecolor=to_rgba(color, 0.15), edgecolor=color, linewidth=1.5))
        ax.bar(left, acc, width=width, align="edge", label=label or what, gid=_ACCURACY_GID, **style)
        if show_gaps and keep.any():
            over = conf > acc  # over-confident bins
            bottom = np.minimum(acc, conf)
            height = np.abs(conf - acc)
            for mask, gap_color, text in ((over, "#c44e52", "gap (over-confident)"),
                                          (~over, "#55a868", "gap (under-confident)")):
                if mask.any():
                    ax.bar(left[mask], height[mask], bottom=bottom[mask], width=width[mask], align="edge",
                           color=gap_color, alpha=0.35, edgecolor=gap_color, hatch="//", linewidth=0.6, label=text)
            ax.plot(0.5 * (left + right), conf, linestyle="none", marker="_", markersize=8,
                    color="k" if order == 0 else color)
        if self.ece is not None and np.isfinite(self.ece.value):
            _ece_box(ax, self.ece, label=label, color=color)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel(what)
        ax.set_title("Reliability diagram" + ("" if c.class_index is None else f" (class {c.class_index} vs rest)"))
        # One legend entry per label: the gap bars of two diagrams share theirs.
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(list(unique.values()), list(unique), loc="lower right", fontsize=8)

        self.hist_ax_ = None
        hax = _histogram_axes(ax)
        if show_histogram:
            if hax is None:
                hax = _new_histogram_axes(ax, c.class_index)
            # Weights differ from counts only when sample weights were given: then the summed
            # weight is the per-bin number (an integer weight draws as that many repeated rows).
            weighted = not np.array_equal(c.weights, c.counts)
            counts = (c.weights if weighted else c.counts)[keep]
            if order == 0 or len(hax.patches) == 0:
                bars = hax.bar(left, counts, width=width, align="edge", color="0.6", edgecolor="white",
                               linewidth=0.6)
                hax.bar_label(bars, labels=[_bar_text(v) for v in counts], fontsize=7, padding=1)
                hax.set_ylabel("weight" if weighted else "count")
            else:  # outlines in the diagram's colour; a second row of counts would collide with the first
                hax.bar(left, counts, width=width, align="edge", fill=False, edgecolor=color, linewidth=1.2)
            top = max((p.get_height() for p in hax.patches), default=0)
            hax.set_ylim(0, (top if top > 0 else 1) * 1.25)  # weights may all be below 1
            self.hist_ax_ = hax
        elif hax is None:
            ax.set_xlabel("confidence")
        self.ax_, self.figure_ = ax, fig
        return self

    def to_png_bytes(self, *, dpi: int = 100) -> bytes:
        """The figure as PNG bytes (for an HTML report: base64 them into an ``<img>``)."""
        # before drawing; matplotlib's own check ("dpi must be positive") comes from its Agg backend
        problem = f"to_png_bytes: dpi must be a number > 0 (dots per inch), got {dpi!r}"
        if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real):
            raise TypeError(problem)
        if not (math.isfinite(dpi) and dpi > 0):
            raise ValueError(problem)
        if not hasattr(self, "figure_"):
            self.plot()
        buf = io.BytesIO()
        self.figure_.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()


def _bar_text(v: float) -> str:
    """A histogram bar's label: an integer as is, a fractional weight to 3 significant digits."""
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def _diagrams_on(ax: Any) -> int:
    """How many diagrams already have accuracy bars on ``ax``."""
    return sum(1 for cont in ax.containers if cont.patches and cont.patches[0].get_gid() == _ACCURACY_GID)


def _ece_box(ax: Any, ece: ECEResult, *, label: str | None, color: Any) -> None:
    """The ECE text box in the top-left corner, below the boxes of earlier diagrams on ``ax``."""
    text = f"ECE = {ece.value:.4f}"
    if np.isfinite(ece.ci_low):
        text += f" [{ece.ci_low:.4f}, {ece.ci_high:.4f}]"
    if np.isfinite(ece.noise_floor):
        text += f"\nnoise floor = {ece.noise_floor:.4f}"
    if label:
        text = f"{label}: {text}"
    # Offset in points from each earlier box's line count: placing it needs no renderer.
    below = sum(
        (t.get_text().count("\n") + 1) * _ECE_LINE_PT + 2 * _ECE_PAD_PT + _ECE_GAP_PT
        for t in ax.texts
        if t.get_gid() == _ECE_GID
    )
    ax.annotate(text, xy=(0.03, 0.97), xycoords="axes fraction", xytext=(0, -below), textcoords="offset points",
                va="top", ha="left", fontsize=_ECE_FONTSIZE, gid=_ECE_GID,
                bbox=dict(boxstyle="round", facecolor="white", alpha=0.8, edgecolor=color))


def _histogram_axes(ax: Any) -> Any:
    """The histogram panel an earlier diagram attached below ``ax``, or None."""
    shared = ax.get_shared_x_axes()
    for other in ax.figure.axes:
        if other is not ax and other.get_gid() == _HISTOGRAM_GID and shared.joined(ax, other):
            return other
    return None


def _new_histogram_axes(ax: Any, class_index: int | None) -> Any:
    """A count panel below ``ax``, sharing its x axis."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    hax = make_axes_locatable(ax).append_axes("bottom", size="28%", pad=0.1, sharex=ax)
    hax.set_gid(_HISTOGRAM_GID)
    hax.set_xlim(0, 1)
    hax.set_ylabel("count")
    hax.set_xlabel("confidence" if class_index is None else f"predicted probability of class {class_index}")
    ax.tick_params(labelbottom=False)
    return hax
