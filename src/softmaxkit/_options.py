"""The option bundle shared by every cross-entropy path, and the rule that options go by keyword.

Every backend (the NumPy reference, the numba CPU kernels, torch, Triton, the
chunked linear + cross-entropy, the class-parallel loss) receives one frozen
:class:`CrossEntropyOptions` instead of a long positional list, so an option
added here reaches all of them through one name.

The public ops take their options by keyword only; one given by position, as
torch takes some (``F.cross_entropy(input, target, weight)``), is refused with
the call to write instead (:func:`options_by_keyword`). Torch-free, for the
NumPy API (:mod:`softmaxkit.functional`) and the torch layer alike.
"""

from __future__ import annotations

import functools
import inspect
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


def refuse_positional_options(op: str, advice: str) -> None:
    """Raise the TypeError for options given by position to ``op``, which takes them by keyword only.

    ``advice`` is the call to write instead, e.g. ``"CrossEntropyLoss(weight=w) for torch's
    CrossEntropyLoss(w)"``. One message for the functional ops (:func:`options_by_keyword`)
    and the loss modules (:mod:`softmaxkit.torch.nn`).
    """
    raise TypeError(f"{op} takes keyword options only: {advice}")


def options_by_keyword(advice: str):
    """Refuse more positional arguments than ``fn`` takes with :func:`refuse_positional_options`'s ``advice``.

    torch takes some options by position (``F.cross_entropy(input, target, weight)``,
    ``torch.softmax(x, dim, dtype)``); softmaxkit takes them by keyword only, so a ported call
    got Python's "takes 2 positional arguments but 3 were given", which names no option (audits
    BP, BN). In :mod:`softmaxkit.torch.functional` it is applied under ``accepts_input``; the
    signature shown (``inspect.signature``, ``help``) stays ``fn``'s own.
    """

    def decorate(fn):
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        n_positional = sum(p.kind in kinds for p in inspect.signature(fn).parameters.values())

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if len(args) > n_positional:
                refuse_positional_options(fn.__name__, advice)
            return fn(*args, **kwargs)

        return wrapper

    return decorate
