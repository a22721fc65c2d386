"""The one reduction rule of cross-entropy, for NumPy arrays and torch tensors.

Every path (the NumPy ops in :mod:`softmaxkit.functional`, the chunked
:mod:`softmaxkit.linear`, the torch autograd Functions, the Triton path and
the class-parallel loss) reduces per-row losses and scales gradients with the
functions here, so ``"mean"`` means one thing everywhere:

* each row carries a weight: ``weight[y]`` for a class index ``y`` (1 without
  class weights), 0 for an ignored row, 1 for a row of probabilities (torch
  divides a soft-target mean by the number of rows);
* ``"mean"`` multiplies the summed loss by ``1 / sum(row weights)``, and the
  gradient of every row by the same factor; if the sum is exactly 0 (every
  target ignored, an empty batch) the factor is 0: loss 0 and gradient 0
  where torch gives NaN (a documented difference). Negative class weights
  are allowed (torch allows them), so the test is ``!= 0``, not ``> 0``;
* ``"sum"`` uses the factor 1; ``"none"`` keeps the rows.

The factor stays an array of the input's library and device (a 0-d NumPy
array, a 0-d tensor): on a GPU nothing here synchronises with the host.
Written once against the few operations NumPy and torch share (``where``,
indexing, ``sum``), so this module imports neither torch nor the torch layer.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from softmaxkit._options import CrossEntropyOptions


def _torch_of(a: Any):
    """The torch module if ``a`` is a tensor (without importing torch), else None."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(a, torch.Tensor) else None


def _float64(a: Any) -> Any:
    torch = _torch_of(a)
    return a.to(torch.float64) if torch is not None else np.asarray(a, dtype=np.float64)


def _where(cond: Any, a: Any, b: Any) -> Any:
    torch = _torch_of(cond)
    return torch.where(cond, a, b) if torch is not None else np.where(cond, a, b)


def row_weights(target_rows: Any, options: CrossEntropyOptions, soft: bool, weight: Any = None) -> Any:
    """Each row's weight in the ``"mean"`` denominator, shape (N,), float64.

    Parameters
    ----------
    target_rows : array or tensor of shape (N,) int64, or (N, C) probabilities
    options : CrossEntropyOptions
        ``ignore_index`` and, unless ``weight`` is given, ``weight``.
    soft : bool
        True for probability targets: every row weighs 1.
    weight : array or tensor of shape (C,), optional
        The class weights in ``target_rows``' library and device (defaults to
        ``options.weight``, a NumPy array, for NumPy targets).
    """
    torch = _torch_of(target_rows)
    n = target_rows.shape[0]
    if soft:
        if torch is not None:
            return torch.ones(n, dtype=torch.float64, device=target_rows.device)
        return np.ones(n)
    active = target_rows != options.ignore_index
    w = options.weight if weight is None else weight
    if w is None:
        return _float64(active)
    if torch is not None and not isinstance(w, torch.Tensor):
        w = torch.as_tensor(w, dtype=torch.float64, device=target_rows.device)
    return _where(active, _float64(w[_where(active, target_rows, 0)]), 0.0)


def loss_scale(reduction: str, row_w: Any) -> Any:
    """The factor on the summed loss (and on each row's gradient): 0-d, float64.

    ``"mean"``: ``1 / sum(row_w)``, or 0 when that sum is 0; ``"sum"`` and
    ``"none"``: 1.
    """
    if reduction != "mean":
        torch = _torch_of(row_w)
        if torch is not None:
            return torch.ones((), dtype=torch.float64, device=row_w.device)
        return np.float64(1.0)
    denom = row_w.sum()
    nonzero = denom != 0
    return _where(nonzero, 1.0 / _where(nonzero, denom, 1.0), 0.0)


def reduce(row_loss: Any, reduction: str, scale: Any, batch_shape: tuple[int, ...]) -> Any:
    """Apply ``reduction`` to per-row losses (N,) with the :func:`loss_scale` factor.

    ``"none"`` reshapes to ``batch_shape``; ``"mean"`` and ``"sum"`` give
    ``sum(row_loss) * scale`` as a 0-d array or tensor.
    """
    if reduction == "none":
        return row_loss.reshape(batch_shape)
    return row_loss.sum() * scale


def gradient_row_scale(reduction: str, scale: Any, loss_shape: tuple[int, ...], grad_output: Any = None) -> Any:
    """Per-row gradient multipliers (N,), float64: ``grad_output * dloss/drow``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
    scale : 0-d array or tensor
        The :func:`loss_scale` factor.
    loss_shape : tuple of int
        The shape of the ``"none"`` loss: the logits' shape without the class
        axis (``N = prod(loss_shape)`` rows, in C order).
    grad_output : scalar, array_like or tensor, optional
        The upstream gradient: a scalar (shape ``()``) for ``"mean"``/``"sum"``
        (times :func:`loss_scale`), an array of shape ``loss_shape`` for
        ``"none"``. Default 1.

    Returns
    -------
    array or tensor of shape (N,), float64
        Tensors stay on their device (a scalar's multipliers are a stride-0
        ``expand``, no copy); NumPy and Python numbers become NumPy, or a
        tensor on ``scale``'s device when ``scale`` is one.

    Raises
    ------
    TypeError
        ``grad_output`` is not real numbers (strings, objects, complex).
    ValueError
        ``grad_output``'s shape is not the loss's (its shape alone is checked,
        not just its size: a ``(5, 4)`` upstream for a ``(4, 5)`` loss has the
        right size, and reshaping it would pair values with the wrong rows).
    """
    n_rows = math.prod(loss_shape)
    torch = _torch_of(scale)
    if grad_output is not None:
        grad_output = _checked_upstream(grad_output, reduction, tuple(loss_shape), torch)
    if torch is None:
        if grad_output is None:
            return np.full(n_rows, float(scale) if reduction != "none" else 1.0)
        if reduction == "none":
            return grad_output.astype(np.float64, copy=False).reshape(n_rows)
        return np.full(n_rows, float(grad_output) * float(scale))
    if grad_output is None:
        if reduction == "none":
            return torch.ones(n_rows, dtype=torch.float64, device=scale.device)
        return scale.expand(n_rows)
    if isinstance(grad_output, torch.Tensor):
        g = grad_output.to(device=scale.device, dtype=torch.float64)
    else:  # float64 straight from Python/NumPy (torch.as_tensor(0.7) would round to float32)
        g = torch.as_tensor(grad_output.astype(np.float64, copy=False), device=scale.device)
    if reduction == "none":
        return g.reshape(n_rows)
    return (g * scale).expand(n_rows)


def _checked_upstream(grad_output: Any, reduction: str, loss_shape: tuple[int, ...], torch: Any) -> Any:
    """``grad_output`` as a NumPy array (a tensor stays one), checked to be real numbers of the loss's shape."""
    if torch is not None and isinstance(grad_output, torch.Tensor):
        if grad_output.is_complex():
            raise TypeError(f"grad_output must be real numbers, got a tensor of dtype {grad_output.dtype}")
        g, shape = grad_output, tuple(grad_output.shape)
    else:
        try:
            g = np.asarray(grad_output)
        except (ValueError, TypeError) as e:  # ragged nesting, an unconvertible object
            raise ValueError(
                f"grad_output must be a number or an array of numbers; it could not be read: {e}"
            ) from None
        if g.dtype.kind not in "biuf":
            raise TypeError(
                f"grad_output must be real numbers, got {type(grad_output).__name__} of dtype {g.dtype}"
            )
        shape = g.shape
    want = loss_shape if reduction == "none" else ()
    if shape != want:
        if reduction != "none":
            raise ValueError(
                f"grad_output must be a scalar (shape ()) for reduction={reduction!r}, whose loss is one number; "
                f"got shape {shape}"
            )
        n_got, n_want = math.prod(shape), math.prod(want)
        why = (
            f"the same {n_got} values in another shape would pair them with the wrong rows"
            if n_got == n_want
            else f"{n_got} values for {n_want} losses"
        )
        raise ValueError(
            f"grad_output must have the loss's shape {want} for reduction='none', got shape {shape}: {why}"
        )
    return g
