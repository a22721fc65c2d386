"""The option bundle shared by every cross-entropy path.

Every backend (the NumPy reference, the numba CPU kernels, torch, Triton, the
chunked linear + cross-entropy, the class-parallel loss) receives one frozen
:class:`CrossEntropyOptions` instead of a long positional list, so an option
added here reaches all of them through one name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class CrossEntropyOptions:
    """Validated cross-entropy options (see :func:`softmaxkit.cross_entropy`).

    Attributes
    ----------
    weight : ndarray of shape (C,) or None
        Finite class weights (any sign, as torch), already converted to the compute dtype.
    ignore_index : int
        Hard targets equal to this value contribute no loss and no gradient.
    reduction : {"mean", "sum", "none"}
    label_smoothing : float in [0, 1]
    z_loss : float >= 0
        Coefficient of the ``lse**2`` auxiliary term (PaLM).
    softcap : float > 0 or None
        Logits pass through ``softcap * tanh(logits / softcap)`` first (Gemma 2).
    """

    weight: Any = None
    ignore_index: int = -100
    reduction: str = "mean"
    label_smoothing: float = 0.0
    z_loss: float = 0.0
    softcap: float | None = None

    @property
    def has_smoothing(self) -> bool:
        return self.label_smoothing > 0.0
