"""softmaxkit for PyTorch: autograd ops, loss modules and the fused linear head.

Importing this package imports torch (``import softmaxkit`` alone does not).

* :mod:`.functional` -- the public ops on tensors, with autograd;
  ``softmaxkit.softmax(tensor)`` etc. land here;
* :mod:`.nn` -- ``CrossEntropyLoss``, ``LinearCrossEntropyLoss``;
* :mod:`._cross_entropy` / :mod:`._linear` -- the autograd Functions;
* :mod:`._backend` -- the device -> kernel dispatch point (NumPy/numba on
  CPU, torch ops elsewhere; Triton hooks in there);
* :mod:`.distributed` -- the class-parallel loss over ``torch.distributed``.
"""

from __future__ import annotations

from softmaxkit.torch.functional import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_and_grad,
    linear_cross_entropy,
    linear_cross_entropy_and_grad,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
)
from softmaxkit.torch import functional
from softmaxkit.torch.nn import CrossEntropyLoss, LinearCrossEntropyLoss

# The functional API is listed once, in softmaxkit.torch.functional.
__all__ = [*functional.__all__, "CrossEntropyLoss", "LinearCrossEntropyLoss"]
