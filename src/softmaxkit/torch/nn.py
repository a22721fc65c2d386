"""``torch.nn`` loss modules over :mod:`softmaxkit.torch.functional`.

Modules hold options only (class weights as a buffer, so ``.to(device)``
moves them); every bit of math is in the functional ops.

``torch.jit.script`` is refused with a RuntimeError that says what to use
instead (``torch.compile``, ``torch.export``, ``torch.jit.trace``), also when
a scripted model holds one of these modules. TorchScript compiles Python
source into a program that runs and saves without Python; these losses run
softmaxkit's NumPy/numba kernels, which it can neither compile nor save.
Marking the call ``@torch.jit.ignore`` would script, but only as a call back
into Python that ``torch.jit.save`` then refuses, naming a private function.
The other three record the loss as torch ops (``torch.compile`` as custom
ops), so they train and, traced or exported, save.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from softmaxkit._validation import (
    check_ignore_index,
    check_non_negative,
    check_softcap,
    check_reduction,
    check_unit_interval,
)
from softmaxkit.torch import functional as F


class _OptionsMixin:
    def _set_options(self, weight, ignore_index, reduction, label_smoothing, z_loss, softcap, *, weight_name):
        # Scalar options are checked now (fail at construction); the class
        # weight's length is checked against the logits at call time.
        self.ignore_index = check_ignore_index(ignore_index)
        self.reduction = check_reduction(reduction)
        self.label_smoothing = check_unit_interval(label_smoothing, "label_smoothing")
        self.z_loss = check_non_negative(z_loss, "z_loss")
        self.softcap = check_softcap(softcap)
        self._weight_name = weight_name
        self.register_buffer(weight_name, _class_weight_buffer(weight, weight_name))

    def _options(self) -> dict[str, Any]:
        return dict(
            ignore_index=self.ignore_index, reduction=self.reduction,
            label_smoothing=self.label_smoothing, z_loss=self.z_loss, softcap=self.softcap,
        )

    def __prepare_scriptable__(self):
        """``torch.jit.script``'s hook, called on this module and on those of a model that holds it:
        refuse with what to use instead (see the module docstring), not TorchScript's
        "keyword-arg expansion is not supported" at a line of ``forward`` (audit BP)."""
        raise RuntimeError(
            f"softmaxkit.torch.{type(self).__name__} cannot be compiled by torch.jit.script: it runs "
            "softmaxkit's NumPy/numba kernels, which TorchScript can neither compile nor save. Use "
            "torch.compile, torch.export or torch.jit.trace (each records the loss as torch ops), or keep "
            "the loss outside the scripted module"
        )

    #: Module-specific options shown first by ``repr`` (besides the shared ones of :meth:`_options`).
    _repr_names: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        options = {**{k: getattr(self, k) for k in self._repr_names}, **self._options()}
        parts = [f"{k}={v!r}" for k, v in options.items()]
        weights = getattr(self, self._weight_name, None)
        if weights is not None:  # their own repr would print every weight: say how many
            parts.append(f"{self._weight_name}=<{weights.numel()} class weights>")
        return ", ".join(parts)


def _class_weight_buffer(weight: Any, name: str) -> torch.Tensor | None:
    """The class-weight buffer: a floating tensor (or None), as torch requires.

    A list of ints became an int64 buffer ([1, 1, 1]), and an integer buffer
    truncated a float checkpoint's weights on ``load_state_dict`` ([0.5, 1.0, 2.5]
    loaded as [0, 1, 2], a wrong loss with no error) and is skipped by
    ``.half()``/``.double()`` (audit AZ). torch refuses a non-tensor weight; a
    list or tuple is still accepted here, as numbers in torch's default float
    dtype, and an integer tensor is refused, saying what to pass.
    """
    if weight is None:
        return None
    if isinstance(weight, (list, tuple)):
        return torch.tensor(weight, dtype=torch.get_default_dtype())
    if isinstance(weight, np.ndarray) and weight.dtype.kind == "f":
        return torch.as_tensor(weight)  # accepted before, as a buffer of its dtype (torch refuses arrays)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(
            f"{name} must be a floating tensor (or None), got {type(weight).__name__}: pass "
            f"{name}=torch.tensor({name}, dtype=torch.float32), as torch's losses require"
        )
    if not weight.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor, got dtype {weight.dtype}: pass {name}.float() (an integer "
            "buffer would truncate the float class weights of a loaded checkpoint)"
        )
    return weight


def _refuse_other_spellings(module: str, args: tuple, unknown: dict[str, Any], *, positional: str,
                            weight: str) -> None:
    """Refuse positional options and other libraries' option names with what to pass instead
    (``weight``: the module's name for class weights; see
    :func:`softmaxkit.torch.functional.refuse_other_spellings`)."""
    if args:
        F.refuse_positional_options(module, positional)
    F.refuse_other_spellings(module, unknown, weight=weight)


class CrossEntropyLoss(_OptionsMixin, torch.nn.Module):
    """Cross-entropy loss module: ``CrossEntropyLoss(**options)(logits, target)``.

    Parameters (keyword-only) are those of :func:`softmaxkit.cross_entropy`:
    ``axis``, ``weight``, ``ignore_index``, ``reduction``,
    ``label_smoothing``, ``z_loss``, ``softcap``. ``axis`` must be given for
    logits of 3 or more dimensions, as in
    :func:`softmaxkit.torch.functional.cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> from softmaxkit.torch import CrossEntropyLoss
    >>> loss = CrossEntropyLoss(label_smoothing=0.1)(torch.zeros(2, 3), torch.tensor([0, 2]))
    >>> round(float(loss), 4)
    1.0986
    """

    _repr_names = ("axis",)

    def __init__(
        self, *args: Any, axis: int | None = None, weight: Any = None, ignore_index: int = -100,
        reduction: str = "mean", label_smoothing: float = 0.0, z_loss: float = 0.0, softcap: float | None = None,
        **unknown: Any,
    ) -> None:
        _refuse_other_spellings("CrossEntropyLoss", args, unknown,
                                positional="CrossEntropyLoss(weight=w) for torch's CrossEntropyLoss(w)",
                                weight="weight")
        super().__init__()
        self.axis = axis
        self._set_options(weight, ignore_index, reduction, label_smoothing, z_loss, softcap, weight_name="weight")

    @F.accepts_input
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, axis=self.axis, weight=self.weight, **self._options())


class LinearCrossEntropyLoss(_OptionsMixin, torch.nn.Module):
    """Fused head + loss: ``LinearCrossEntropyLoss(**options)(hidden, weight, target, bias)``.

    Holds no parameters: pass the head's ``weight`` (and ``bias``), e.g.
    ``loss_fn(h, model.lm_head.weight, y)``, so the head stays an ordinary
    ``nn.Linear`` for generation while training never builds the logits.

    Parameters (keyword-only): ``chunk_size`` and ``loss_dtype`` (e.g.
    ``torch.float32`` for a float32 loss from bf16 input) as in
    :func:`softmaxkit.linear_cross_entropy`; ``class_weight`` (class
    weights, torch's ``weight``), ``ignore_index`` (None: -100, torch's default
    here), ``reduction``,
    ``label_smoothing``, ``z_loss``, ``softcap`` as in
    :func:`softmaxkit.cross_entropy`.

    Under ``torch.autocast`` (e.g. bf16 hidden states, a float32 head weight)
    it computes as ``F.cross_entropy(F.linear(hidden, weight, bias), target)``
    there: see :func:`softmaxkit.torch.functional.linear_cross_entropy`.
    """

    _repr_names = ("chunk_size", "loss_dtype")

    def __init__(
        self, *args: Any, chunk_size: int | None = None, class_weight: Any = None, ignore_index: int | None = -100,
        reduction: str = "mean", label_smoothing: float = 0.0, z_loss: float = 0.0,
        softcap: float | None = None, loss_dtype: torch.dtype | None = None, **unknown: Any,
    ) -> None:
        _refuse_other_spellings(
            "LinearCrossEntropyLoss", args, unknown,
            positional="it holds no parameters (torch's nn.LinearCrossEntropyLoss(in, out) owns its Linear); "
            "pass the head's weight to forward: loss_fn(hidden, head.weight, target)", weight="class_weight")
        super().__init__()
        self.chunk_size = chunk_size
        self.loss_dtype = loss_dtype
        if ignore_index is None:  # torch's nn.LinearCrossEntropyLoss default (2.13): None behaves as -100
            ignore_index = -100
        # "class_weight": in this module "weight" is the projection passed to forward
        self._set_options(
            class_weight, ignore_index, reduction, label_smoothing, z_loss, softcap, weight_name="class_weight"
        )

    @F.accepts_input
    def forward(
        self, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        if (isinstance(hidden, torch.nn.Parameter) and not isinstance(weight, torch.nn.Parameter)
                and hidden.shape == weight.shape):
            # Liger Kernel's module takes (weight, hidden, target): with as many rows as classes the
            # shapes fit either way and the loss came out wrong, exit 0 (audit). Only then: otherwise the
            # shape check catches the swap, and a Parameter as hidden (inputs optimised against a frozen
            # head) is legitimate.
            raise TypeError("hidden is a Parameter and weight is not: arguments in Liger Kernel's order "
                            "(weight, hidden, target)? This module takes (hidden, weight, target), as Cut "
                            "Cross-Entropy's does")
        return F.linear_cross_entropy(
            hidden, weight, target, bias=bias, chunk_size=self.chunk_size, loss_dtype=self.loss_dtype,
            class_weight=self.class_weight, **self._options(),
        )
