"""Kernels: the math, with no validation and no policy.

:mod:`softmaxkit.kernels.reference` is the portable NumPy backend. Faster
backends implement the same functions with the same contract (documented at the
top of ``reference.py``); :func:`select` picks one per call, so the public ops
in :mod:`softmaxkit.functional` never change when a kernel is added.
"""

from __future__ import annotations

from types import ModuleType

from softmaxkit.kernels import reference


def select(n_elements: int) -> ModuleType:
    """The kernel module to use for an input of ``n_elements`` logits."""
    return reference
