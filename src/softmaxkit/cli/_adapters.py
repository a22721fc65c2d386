"""The one place where the CLI calls the library's models, calibrators, metrics and plots.

Commands talk to these small functions, never to the estimator, calibrator,
metric or plot APIs directly, so a change in one of those APIs is a one-line
fix here. Every function takes and returns plain NumPy arrays and dicts.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from softmaxkit.cli import CLIError

#: Calibration methods by CLI name -> class name in ``softmaxkit.calibration``.
CALIBRATORS = {
    "temperature": "TemperatureScaling",
    "vector": "VectorScaling",
    "matrix": "MatrixScaling",
    "isotonic": "IsotonicCalibration",
    "platt": "PlattScaling",
}

#: Folds of ``fit --calibrate``'s cross-fitting (fewer when a class has fewer training rows).
CROSS_FIT_FOLDS = 5


# --------------------------------------------------------------------------- models


def new_classifier(
    *, hidden: tuple[int, ...], alpha: float, max_iter: int, random_state: int | None, verbose: bool
) -> Any:
    from softmaxkit import SoftmaxClassifier

    return SoftmaxClassifier(
        hidden_layer_sizes=hidden, alpha=alpha, max_iter=max_iter, random_state=random_state, verbose=verbose
    )


def class_logits(model: Any, X: np.ndarray) -> np.ndarray:
    """Logits of shape (n, n_classes), also for two classes.

    scikit-learn's convention gives a binary ``decision_function`` of shape (n,):
    the log-odds ``z = z_1 - z_0``. ``[-z/2, z/2]`` has the same softmax and is
    what the symmetric L2 penalty drives the two output columns to, so it reads
    like the model's own two logits.
    """
    z = np.asarray(model.decision_function(X), dtype=np.float64)
    if z.ndim == 1:
        z = np.column_stack([-z / 2, z / 2])
    return z


def model_classes(model: Any) -> np.ndarray:
    return np.asarray(model.classes_)


def fit_calibrator(method: str, scores: np.ndarray, y: np.ndarray, *, probs: bool = False) -> Any:
    """Fit the ``method`` calibrator on (n, K) logits (or probabilities) and class indices ``y``."""
    import softmaxkit.calibration as calibration

    cls = getattr(calibration, CALIBRATORS[method])
    return cls(input="probs" if probs else "logits").fit(scores, y)


def cross_fit_calibrator(model: Any, method: str, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any, int]:
    """``(model, calibrator, folds)``: the model fitted on all of ``X``, and the ``method`` calibrator
    fitted on its out-of-fold logits (``CalibratedClassifier(..., ensemble=False)``), so every
    training row also serves calibration and no rows are set aside for it."""
    from softmaxkit.calibration import CalibratedClassifier

    _, counts = np.unique(y, return_counts=True)
    folds = int(min(CROSS_FIT_FOLDS, counts.min()))
    if folds < 2:
        raise CLIError("--calibrate cross-fits the calibrator, which needs at least 2 training rows of every class")
    cal = CalibratedClassifier(model, method=method, cv=folds, ensemble=False).fit(X, y)
    pair = cal.calibrated_classifiers_[0]
    return pair.estimator, pair.calibrator, folds


def calibrated_logits(calibrator: Any, logits: np.ndarray) -> np.ndarray:
    """Calibrated logits (n, K) from raw logits; their softmax is the calibrated probabilities.

    A calibrator fitted on probabilities (``calibrate --probs``) is given the
    softmax of the logits, which is what it was fitted on.
    """
    if getattr(calibrator, "input", "logits") == "probs":
        from softmaxkit import softmax

        logits = softmax(logits, axis=-1)
    return np.asarray(calibrator.transform(logits), dtype=np.float64)


def calibrated_from_probs(calibrator: Any, probs: np.ndarray) -> np.ndarray:
    """Calibrated logits (n, K) from probabilities, for a calibrator fitted on probabilities."""
    return np.asarray(calibrator.transform(probs), dtype=np.float64)


def calibrator_params(calibrator: Any) -> dict[str, Any]:
    """The few fitted numbers worth printing (the temperature; sizes of the others)."""
    params: dict[str, Any] = {"method": type(calibrator).__name__}
    if hasattr(calibrator, "temperature_"):
        params["temperature"] = float(calibrator.temperature_)
    # A parameter that stopped on its bound is not a fit to report as an improvement.
    params["at_bound"] = bool(getattr(calibrator, "at_bound_", False))
    if getattr(calibrator, "separable_", False):
        params["separable"] = True
    return params


def load_object(path: str | os.PathLike, *, kinds: tuple[str, ...], option: str) -> Any:
    """Load a saved softmaxkit object, refusing one of the wrong kind with a clear line."""
    from softmaxkit.io import load

    obj = load(path)
    if type(obj).__name__ not in kinds:
        raise CLIError(f"{path}: holds a {type(obj).__name__}, but {option} needs a {' or '.join(kinds)}")
    return obj


# --------------------------------------------------------------------------- metrics and plots


def summarize(
    y: np.ndarray, *, probs: np.ndarray, logits: np.ndarray | None = None, plot_title: str | None = None,
    n_bins: int = 15,
) -> tuple[dict, bytes | None]:
    """Score predictions; returns the metrics summary and, with ``plot_title``, a reliability PNG.

    The summary holds accuracy, log-loss, Brier score and the top-label ECE with
    its bootstrap 95% CI and noise floor. Log-loss comes from the logits when
    given: exact, with no clipping of tiny probabilities. The diagram reuses the
    same ECE result, so the bootstrap runs once.
    """
    from softmaxkit import metrics

    y = np.asarray(y)
    ece = metrics.expected_calibration_error(y, probs, n_bins=n_bins)
    loss = metrics.log_loss(y, logits=logits) if logits is not None else metrics.log_loss(y, probs=probs)
    summary = {
        "n": int(len(y)),
        "accuracy": float(np.mean(np.argmax(probs, axis=1) == y)),
        "log_loss": float(loss),
        "brier": float(metrics.brier_score(y, probs)),
        "ece": float(ece.value),
        "ece_ci": [float(ece.ci_low), float(ece.ci_high)],
        "ece_noise_floor": float(ece.noise_floor),
    }
    png = None if plot_title is None else _reliability_png(y, probs, ece, title=plot_title, n_bins=n_bins)
    return summary, png


def _reliability_png(y: np.ndarray, probs: np.ndarray, ece: Any, *, title: str, n_bins: int) -> bytes:
    """A top-label reliability diagram (with gaps and the count histogram) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display (servers, CI); must precede pyplot
    import matplotlib.pyplot as plt

    from softmaxkit.metrics import reliability_curve
    from softmaxkit.plot import ReliabilityDiagram

    curve = reliability_curve(y, probs, n_bins=n_bins)
    display = ReliabilityDiagram(curve=curve, ece=ece).plot()
    display.ax_.set_title(title, fontsize=11)
    try:
        return display.to_png_bytes(dpi=110)
    finally:
        plt.close(display.figure_)
