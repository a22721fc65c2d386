"""softmaxkit: the softmax output layer done right.

Logits are not probabilities; softmax makes them so, and log-loss (maximum
likelihood) makes them mean something. This package is the public surface:
every name below is re-exported from a private module. Heavy parts
(scikit-learn, the numba kernels, torch, matplotlib) load on first use, so
``import softmaxkit`` imports NumPy and nothing else.
"""

from __future__ import annotations

import importlib
from typing import Any

from softmaxkit.functional import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_and_grad,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
)

__version__ = "0.1.0"

# name -> module that defines it; imported on first attribute access (PEP 562).
_LAZY = {
    "linear_cross_entropy": "softmaxkit.linear",
    "linear_cross_entropy_and_grad": "softmaxkit.linear",
    "SoftmaxClassifier": "softmaxkit.classifier",
    "load": "softmaxkit.io",
}
_LAZY_MODULES = ("calibration", "conformal", "metrics", "plot", "io", "kernels", "classifier", "torch", "integrations")

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "log_sigmoid",
    "cross_entropy",
    "cross_entropy_and_grad",
    "binary_cross_entropy_with_logits",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
    "SoftmaxClassifier",
    "load",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return importlib.import_module(f"softmaxkit.{name}")
    raise AttributeError(f"module 'softmaxkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LAZY_MODULES))
