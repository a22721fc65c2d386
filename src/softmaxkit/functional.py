"""The public ops: validate, put the class axis last, call a kernel, reduce.

Each op accepts a NumPy array (or anything ``np.asarray`` takes) and returns
NumPy, or a ``torch.Tensor`` and returns torch with autograd (delegated to
:mod:`softmaxkit.torch.functional`, imported only when a tensor arrives).
No math lives here: it is in :mod:`softmaxkit.kernels`.

Semantics shared by every op (decided in DESIGN.md):

* float16 input is computed in float32 and returned as float16; float32 and
  float64 are computed in their own precision with float64 row accumulators;
* a row of all ``-inf`` has softmax 0, log-softmax ``-inf`` and logsumexp
  ``-inf``, never NaN;
* NaN propagates, and so does ``+inf``: the row becomes NaN (as in JAX);
* options are keyword-only: one given by position, as torch takes some
  (``F.cross_entropy(x, y, w)``), raises a TypeError naming the keyword
  (:func:`softmaxkit._options.options_by_keyword`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softmaxkit import _reduction, kernels
from softmaxkit._arrays import (
    as_float_array,
    clipped_to_float64,
    compute_dtype,
    from_rows,
    is_torch_tensor,
    past_float64,
    shifted_wide_rows,
    to_compute_dtype,
    to_rows,
)
from softmaxkit._dispatch import torch_op
from softmaxkit._options import options_by_keyword
from softmaxkit._validation import (
    as_numpy,
    check_broadcasts_to,
    check_grad_out_dtype,
    check_floating,
    check_floating_dtype,
    check_reduction,
    check_temperature,
    cross_entropy_options,
    is_floating_dtype,
    is_integer_dtype,
    normalize_axis,
    prepare_target,
)

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "log_sigmoid",
    "cross_entropy",
    "cross_entropy_and_grad",
    "binary_cross_entropy_with_logits",
]


# --------------------------------------------------------------------------- softmax family


def _softmax_impl(x: Any, axis: int, temperature: float, out: Any, *, log: bool, dtype: Any = None) -> np.ndarray:
    given = as_numpy(x, "x")  # masked entries refused, byte order made native (see as_numpy)
    if dtype is not None:
        check_floating_dtype(dtype, "dtype")  # before the cast, which would make it x's fault
    # dtype= casts into a private copy, which the kernel then overwrites; a dtype x already has needs no copy
    cast = dtype is not None and given.dtype != np.dtype(dtype)
    x = as_float_array(given.astype(dtype) if cast else given, "x")
    axis = normalize_axis(axis, x.ndim, allow_scalar=True, of="x")
    inv_t = 1.0 / check_temperature(temperature, dtype=compute_dtype(x.dtype))
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != x.shape:
            raise ValueError(
                f"out must be a NumPy array of shape {x.shape}, got "
                f"{getattr(out, 'shape', type(out).__name__)}"
            )
        check_floating(out, "out")
        # grad_out's rule: a narrower buffer rounded the result silently (float32 x, float16 out; audit)
        check_grad_out_dtype(out, x, name="out", of="the result's")
        _check_writeable(out, "out")
    if x.ndim == 0 or x.size == 0:
        if x.ndim == 0:
            # One class: exactly the 1-element row's result (1 / log 0 when finite, 0 / -inf for -inf,
            # NaN for NaN or +inf). ``x * 0 + 1`` gave NaN with a RuntimeWarning for -inf (audit).
            result = _softmax_impl(x.reshape(1), 0, temperature, None, log=log).reshape(())
        else:  # nothing to normalise
            result = np.empty(x.shape, dtype=x.dtype)
        if out is None:
            return result
        out[...] = result
        return out
    rows, wide = to_compute_dtype(x, axis)
    if wide:
        result = _softmax_beyond_float64(x, axis, inv_t, log=log)
        if out is None:
            return result
        out[...] = result
        return out
    direct = None if out is None else _rows_view(out, axis, rows.dtype)
    if direct is not None and _overlaps_partly(direct, rows):
        rows = rows.copy()
    if direct is not None:
        res = direct
    elif cast:  # the private copy: work in place, saving a second (n, C) array
        res = rows
    else:
        res = np.empty_like(rows)
    if rows.size:
        kernels.select(rows.size).softmax_2d(rows, res, inv_temperature=inv_t, log=log)
    if direct is not None:
        return out  # the kernel wrote straight into out
    result = from_rows(res, x.shape, axis, x.dtype)
    if out is None:
        return result
    out[...] = result
    return out


def _softmax_beyond_float64(x: np.ndarray, axis: int, inv_t: float, *, log: bool) -> np.ndarray:
    """(Log-)softmax of a ``longdouble`` ``x`` holding finite values past float64's range.

    Each row is shifted by its max in ``x``'s dtype first (:func:`shifted_wide_rows`), which changes
    neither result, so the float64 kernel sees ``x - max <= 0``. A gap past float64's range is
    ``-inf`` there: its probability is 0 as in any format, but its log-probability is the finite
    ``(x - max) / T - log(s)``, formed in ``x``'s dtype from the kernel's ``-log(s)`` (the value at
    the row's max): ``log_softmax([1e400, 0])`` is ``[0, -1e400]``, as scipy's.
    """
    z64, z, _ = shifted_wide_rows(to_rows(x, axis))  # (N, C)
    res = np.empty_like(z64)
    kernels.select(z64.size).softmax_2d(z64, res, inv_temperature=inv_t, log=log)
    res = res.astype(x.dtype)
    if log:
        lost = np.isfinite(z) & (z64 == -np.inf)  # finite gaps float64 cannot hold
        rows, cols = np.nonzero(lost)
        neg_log_s = res[rows, np.argmax(z64[rows], axis=1)]  # z = 0 at the max: 0 / T - log(s)
        res[rows, cols] = z[rows, cols] * x.dtype.type(inv_t) + neg_log_s
    return from_rows(res, x.shape, axis, x.dtype)


def _overlaps_partly(out: np.ndarray, x: np.ndarray) -> bool:
    """Whether ``out`` shares memory with ``x`` other than as the very same array.

    The kernels work in place (``out`` is ``x``: each row is read before it is
    written), but an ``out`` shifted by a row overwrote logits before they
    were read: 399 of 400 softmax rows wrong (audit). Such inputs are copied
    first, as NumPy's ufuncs do.
    """
    if not _shares_memory(out, x):
        return False
    same = (out.__array_interface__["data"][0] == x.__array_interface__["data"][0]
            and out.strides == x.strides and out.shape == x.shape)
    return not same


#: Bound on the work of NumPy's exact overlap test (candidate solutions it may try); past it the
#: overlap counts as possible. Strided views of one buffer (side-by-side column blocks) take a few.
_OVERLAP_MAX_WORK = 1 << 12


def _shares_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` have an element in common: exact, unless that is too costly to decide.

    ``np.may_share_memory`` only compares address ranges, so logits and soft targets stored side by
    side in one ``(N, 2C)`` buffer counted as overlapping and ``grad_out=logits`` was refused (audit).
    The exact test runs only when the ranges meet; if it gives up (``max_work``), the answer is True,
    as before.
    """
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=_OVERLAP_MAX_WORK))
    except np.exceptions.TooHardError:
        return True


def _rows_view(arr: np.ndarray, axis: int, dtype: np.dtype) -> np.ndarray | None:
    """``arr`` as an ``(N, C)`` view a kernel can write into, or None if it needs a copy.

    True when the class axis is last, ``arr`` is C-contiguous, writeable and
    already in the compute ``dtype``: then ``out=`` / ``grad_out=`` cost no
    extra pass over memory.
    """
    if arr.ndim == 0 or axis != arr.ndim - 1 or arr.dtype != dtype:
        return None
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        return None
    return arr.reshape(-1, arr.shape[-1])


@options_by_keyword("softmax(x, axis, dtype=d) for torch.softmax(x, dim, d); temperature= and out= by name too "
                    "(F.softmax's third argument, _stacklevel, has no counterpart: leave it out)")
def softmax(x: Any, axis: int = -1, *, temperature: float = 1.0, dtype: Any = None, out: Any = None) -> Any:
    r"""Softmax along ``axis``: ``p_i = exp(x_i / T) / sum_j exp(x_j / T)``.

    Softmax generalises the logistic function: ``softmax([0, z])[1] == sigmoid(z)``.

    Parameters
    ----------
    x : array_like or torch.Tensor of shape (..., C, ...)
        Logits, floating dtype.
    axis : int, default -1
        The class axis.
    temperature : float > 0, keyword-only
        Divides the logits first. ``T > 1`` softens, ``T < 1`` sharpens; the
        argmax never changes.
    dtype : dtype, keyword-only, optional
        ``x`` is cast to it first (torch's ``dtype=``); the result has it.
    out : ndarray, keyword-only, optional
        Receives the result: ``x``'s shape and the result's dtype (``x``'s, or
        ``dtype``), as ``grad_out=`` of :func:`cross_entropy_and_grad`. For
        tensors it behaves as torch's ``out=`` (same dtype; another shape is
        resized).

    Returns
    -------
    ndarray or torch.Tensor
        Same shape and dtype as ``x``; every row sums to 1.

    Raises
    ------
    TypeError
        Integer or non-numeric ``x``, a non-floating ``dtype``, ``out`` of
        another dtype than the result.
    ValueError
        ``axis`` out of range, ``temperature <= 0``, ``out`` of the wrong shape.

    Notes
    -----
    A 0-dim ``x`` is a single class (result 1); an empty ``x`` gives an
    empty result, as in torch.

    Computed as ``exp(x - max) / sum(exp(x - max))`` with the sum in float64,
    so nothing overflows and row sums stay within 1e-6 of 1 in float32 even at
    262,144 classes. A row of all ``-inf`` gives zeros; NaN or ``+inf`` in a
    row makes that row NaN. ``longdouble`` computes in float64; a row holding
    finite values past float64's range is shifted by its max in ``longdouble``
    first, so it gets scipy's answer, not NaN.

    Examples
    --------
    >>> import softmaxkit as sk
    >>> sk.softmax([0.03, 1.92]).round(3)
    array([0.131, 0.869])
    """
    if is_torch_tensor(x):
        return torch_op("softmax")(x, axis, temperature=temperature, dtype=dtype, out=out)
    return _softmax_impl(x, axis, temperature, out, log=False, dtype=dtype)


@options_by_keyword("log_softmax(x, axis, dtype=d) for torch.log_softmax(x, dim, d); temperature= and out= by name "
                    "too (F.log_softmax's third argument, _stacklevel, has no counterpart: leave it out)")
def log_softmax(x: Any, axis: int = -1, *, temperature: float = 1.0, dtype: Any = None, out: Any = None) -> Any:
    r"""Log-softmax along ``axis``: ``x_i / T - logsumexp(x / T)``.

    Parameters and returns as :func:`softmax`.

    Notes
    -----
    Computed as ``(x - max) - log(sum(exp(x - max)))``: no ``log(softmax(x))``
    round trip, so very negative log-probabilities stay exact instead of
    becoming ``-inf``. A row of all ``-inf`` gives ``-inf``.

    Examples
    --------
    >>> import softmaxkit as sk
    >>> sk.log_softmax([0.0, 0.0]).round(4)
    array([-0.6931, -0.6931])
    """
    if is_torch_tensor(x):
        return torch_op("log_softmax")(x, axis, temperature=temperature, dtype=dtype, out=out)
    return _softmax_impl(x, axis, temperature, out, log=True, dtype=dtype)


@options_by_keyword("logsumexp(x, axis, keepdims=True) for torch.logsumexp(x, dim, True) (scipy's third "
                    "argument, the weights b, has no counterpart)")
def logsumexp(x: Any, axis: int = -1, *, keepdims: bool = False) -> Any:
    r"""``log(sum(exp(x)))`` along ``axis``, without overflow.

    Returns
    -------
    ndarray or torch.Tensor
        ``x``'s shape without ``axis`` (kept with size 1 if ``keepdims``), in
        ``x``'s dtype. ``-inf`` for a row of all ``-inf`` (and for an empty
        class axis), NaN for a row with NaN or ``+inf``.

    Examples
    --------
    >>> import softmaxkit as sk
    >>> float(sk.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    if is_torch_tensor(x):
        return torch_op("logsumexp")(x, axis, keepdims=keepdims)
    x = as_float_array(x, "x")
    axis = normalize_axis(axis, x.ndim, allow_scalar=True, of="x")
    if x.ndim == 0:  # a single class: its own logsumexp, as in torch
        return x.copy()
    rows, wide = to_compute_dtype(x, axis)
    if wide:  # longdouble past float64's range: max + logsumexp(x - max), the sum in x's dtype
        rows, _, shift = shifted_wide_rows(to_rows(x, axis))
    if rows.shape[1] == 0:
        res = np.full(rows.shape[0], -np.inf)
    else:
        res = kernels.select(rows.size).logsumexp_2d(rows) if rows.size else np.empty(0)
    if wide:
        res = shift + res
    res = res.astype(x.dtype).reshape(tuple(s for i, s in enumerate(x.shape) if i != axis))
    return np.expand_dims(res, axis) if keepdims else res


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))``, elementwise and overflow-free.

    Examples
    --------
    >>> import softmaxkit as sk
    >>> sk.sigmoid([0.0, 1000.0, -1000.0])
    array([0.5, 1. , 0. ])
    """
    if is_torch_tensor(x):
        return torch_op("sigmoid")(x)
    x = as_float_array(x, "x")
    return kernels.reference.sigmoid(_elementwise_input(x)).astype(x.dtype)


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, exact for large ``|x|``.

    Examples
    --------
    >>> import softmaxkit as sk
    >>> sk.log_sigmoid([-1000.0])
    array([-1000.])
    """
    if is_torch_tensor(x):
        return torch_op("log_sigmoid")(x)
    x = as_float_array(x, "x")
    return kernels.reference.log_sigmoid(_elementwise_input(x)).astype(x.dtype)


def _elementwise_input(x: np.ndarray) -> np.ndarray:
    """``x`` in the dtype the elementwise NumPy ops compute it in: :func:`compute_dtype`, or ``x``'s
    own ``longdouble`` where it holds values past float64's range (``log_sigmoid(-1e400)`` is -1e400;
    the cast made it ``-inf``, and binary cross-entropy NaN). Not a copy when ``x`` is one already
    (the ops do not write into it)."""
    xc, wide = to_compute_dtype(x)
    return x if wide else xc


# --------------------------------------------------------------------------- cross-entropy


def _cross_entropy_numpy(
    logits: Any,
    target: Any,
    *,
    axis: int,
    want_grad: bool,
    grad_output: Any = None,
    grad_out: Any = None,
    **options: Any,
):
    logits = as_float_array(logits, "logits")
    axis = normalize_axis(axis, logits.ndim)
    n_classes = logits.shape[axis]
    if n_classes == 0:
        raise ValueError(f"logits must have at least 1 class along axis {axis}, got shape {logits.shape}")
    opts = cross_entropy_options(n_classes=n_classes, **options)
    t, soft = prepare_target(target, logits.shape, axis, opts.ignore_index)

    cdtype = compute_dtype(logits.dtype)
    t_rows = to_rows(t, axis, cdtype) if soft else t.reshape(-1).astype(np.int64, copy=False)
    x, wide = to_compute_dtype(logits, axis)  # (N, C)
    if wide:
        x = _loss_rows_beyond_float64(logits, axis, t_rows, soft, opts)
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    scale = _reduction.loss_scale(opts.reduction, _reduction.row_weights(t_rows, opts, soft))
    row_scale = _reduction.gradient_row_scale(opts.reduction, scale, batch_shape, grad_output) if want_grad else None
    direct = None
    if grad_out is not None:
        _check_grad_out(grad_out, logits, target)
        direct = _rows_view(grad_out, axis, cdtype)
        if direct is not None and _overlaps_partly(direct, x):
            x = x.copy()
    grad = (np.empty_like(x) if direct is None else direct) if want_grad else None
    kernel = kernels.select(x.size)
    row_loss = (
        kernel.cross_entropy_2d(x, t_rows, opts, row_scale=row_scale, grad_out=grad)
        if x.shape[0]
        else np.zeros(0)
    )

    loss = _reduction.reduce(row_loss, opts.reduction, scale, batch_shape)
    loss = loss.astype(logits.dtype) if opts.reduction == "none" else logits.dtype.type(loss)
    if not want_grad:
        return loss, None
    if direct is not None:
        return loss, grad_out  # the kernel wrote straight into grad_out
    grad = from_rows(grad, logits.shape, axis, logits.dtype)
    if grad_out is None:
        return loss, grad
    grad_out[...] = grad
    return loss, grad_out


def _loss_rows_beyond_float64(
    logits: np.ndarray, axis: int, t_rows: np.ndarray, soft: bool, opts: Any
) -> np.ndarray:
    """float64 ``(N, C)`` rows for the loss kernels from ``longdouble`` logits past float64's range.

    The loss and its gradient do not change when a row is shifted by its max (:func:`shifted_wide_rows`),
    except through ``z_loss`` (``lse**2``) and the softcap. A gap to the max past float64's range is
    ``-inf`` there, which is right for the gradient (``p = 0``) but not for a loss term that reads
    it (``-log p`` of a target class about 1e400): such a loss cannot be formed in float64, the compute
    dtype, and is refused, naming the logit. Under a softcap, ``cap * tanh(x / cap)`` is the same for
    ``x`` clipped to float64's range (:func:`clipped_to_float64`), so nothing is shifted.
    """
    rows = to_rows(logits, axis)  # (N, C), logits' dtype
    if opts.softcap is not None:
        return clipped_to_float64(rows)
    # str() in the messages: format() of a longdouble goes through float and printed 1e400 as "inf"
    if opts.z_loss > 0.0:
        position = _logit_position(int(np.argmax(past_float64(rows).reshape(-1))), logits.shape, axis)
        raise ValueError(
            f"logits hold {logits[position]!s} at position {position}, past float64's range (the compute "
            f"dtype): z_loss needs logsumexp(logits)**2, which float64 cannot hold; set z_loss=0"
        )
    z64, z, _ = shifted_wide_rows(rows)
    bad = np.isfinite(z) & (z64 == -np.inf)  # (N, C) finite gaps float64 cannot hold
    if bad.any():
        bad &= _classes_the_loss_reads(t_rows, soft, opts, z.shape)
    if bad.any():
        flat = int(np.argmax(bad.reshape(-1)))
        gap = -z.reshape(-1)[flat]
        position = _logit_position(flat, logits.shape, axis)
        raise ValueError(
            f"logits hold {logits[position]!s} at position {position}, {gap!s} below its row's max, past "
            f"float64's range (the compute dtype), and the loss reads it (a term of about {gap!s}): it cannot "
            f"be computed (scipy.special.log_softmax gives the log-probability in longdouble)"
        )
    return z64


def _classes_the_loss_reads(t_rows: np.ndarray, soft: bool, opts: Any, shape: tuple[int, int]) -> np.ndarray:
    """``(N, C)`` mask of the logits whose log-probability enters the loss (not only its gradient)."""
    eps = opts.label_smoothing
    if soft:  # the kernels skip a class whose smoothed, weighted target is 0
        wt = (1.0 - eps) * t_rows + eps / shape[1]
        return (wt if opts.weight is None else wt * opts.weight) != 0
    active = t_rows != opts.ignore_index
    read = np.zeros(shape, dtype=bool)
    if eps > 0.0:  # the smoothing term reads every class of the row
        read[active] = True
    rows = np.flatnonzero(active)
    read[rows, t_rows[rows]] = True
    return read


def _logit_position(flat_row_index: int, shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """The index into the logits of element ``flat_row_index`` of their :func:`to_rows` layout."""
    moved = tuple(s for k, s in enumerate(shape) if k != axis) + (shape[axis],)
    index = [int(k) for k in np.unravel_index(flat_row_index, moved)]
    index.insert(axis, index.pop())
    return tuple(index)


def _check_grad_out(grad_out: Any, logits: np.ndarray, target: Any) -> None:
    if not isinstance(grad_out, np.ndarray) or grad_out.shape != logits.shape:
        raise ValueError(
            f"grad_out must be a NumPy array of shape {logits.shape}, got "
            f"{getattr(grad_out, 'shape', type(grad_out).__name__)}"
        )
    check_grad_out_dtype(grad_out, logits)
    if isinstance(target, np.ndarray) and _shares_memory(grad_out, target):
        # Each row of the logits is read before its gradient is written, but a soft target is read
        # along with it, block by block: written over, it gave a wrong gradient (audit).
        raise ValueError("grad_out shares memory with target; it may overwrite the logits only")
    _check_writeable(grad_out, "grad_out")


def _check_writeable(arr: np.ndarray, name: str) -> None:
    """``out=`` / ``grad_out=`` are written; say so before computing (inputs may be read-only)."""
    if not arr.flags.writeable:
        raise ValueError(f"{name} is read-only (e.g. np.load(mmap_mode='r')); pass a writeable array or None")


@options_by_keyword("cross_entropy(logits, target, weight=w) for torch's F.cross_entropy(input, target, w); "
                    "name its other options too (ignore_index=, reduction=, label_smoothing=)")
def cross_entropy(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
) -> Any:
    r"""Cross-entropy (log-loss) between softmax(logits) and a target.

    Minimising it is maximum-likelihood estimation of a categorical model.

    Parameters
    ----------
    logits : array_like or torch.Tensor of shape (..., C, ...)
        Floating logits; the class axis is ``axis``.
    target : array_like or torch.Tensor
        Either integer class indices with the logits' shape without ``axis``,
        or floating probabilities (soft labels, normalised counts) with the
        logits' shape. As in torch, probability rows need not sum to 1 nor
        be non-negative: the loss is ``-sum_c w_c t_c log p_c`` for any
        finite ``t``.
    axis : int, default -1, keyword-only
    weight : array_like of shape (C,), optional
        Class weights (torch's ``weight``); finite, of any sign, as torch
        accepts them.
    ignore_index : int, default -100
        Hard targets with this value contribute neither loss nor gradient.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides by the summed target weights (the number of
        non-ignored rows without ``weight``), as torch; for soft targets by the
        number of rows.
    label_smoothing : float in [0, 1]
        torch's formula: ``(1 - eps) * nll + eps / C * sum_c w_c * (-log p_c)``.
    z_loss : float >= 0
        Adds ``z_loss * lse**2`` per row (PaLM), weighted like the row's NLL
        term so that ``"mean"`` is still ``sum(none) / sum(weights)``.
    softcap : float > 0, optional
        Replaces logits by ``softcap * tanh(logits / softcap)`` first (Gemma 2).

    Returns
    -------
    loss : scalar or ndarray (torch.Tensor for tensor input)
        In the logits' dtype; shape of the target's batch for ``"none"``.

    Raises
    ------
    TypeError
        Integer logits, a target that is neither integer nor floating.
    ValueError
        A label out of range (the message gives the first bad value and its
        position), a non-finite or mis-shaped weight, smoothing outside [0, 1],
        ``ignore_index >= 0`` with probability targets (as torch),
        an unknown reduction, a target of the wrong shape.

    Notes
    -----
    Per row the loss is assembled in float64 as ``(max - x_y) + log(sum
    exp(x - max))``, with ``x - max`` and its ``exp`` in the compute dtype
    (float32 for float32 input): within 1e-6 relative of float64, except for
    a confident row (``p_y > 1/2``), whose loss is about the sum of the other
    probabilities and carries float32's rounding of each ``x_j - max``: within
    ``1e-6 + 1.2e-7 * (max - x_j)`` relative (terms under float32's smallest
    normal number, gaps past 87, are lost), and ``3e-7 * softcap`` under a
    softcap. ``longdouble`` logits past float64's range are shifted by each
    row's max first; a loss term that still needs such a gap (about 1e400)
    raises ``ValueError``, as does ``z_loss`` there.
    Deliberate differences from ``torch.nn.functional.cross_entropy``:

    * if every target is ignored (or the batch is empty), ``"mean"`` gives
      0.0 with zero gradient instead of NaN;
    * a soft target of 0 on a class whose logit is ``-inf`` contributes 0,
      not NaN;
    * a non-ignored target on a row of all ``-inf`` gives ``+inf``;
    * the class axis is ``axis``, the last by default, where torch's is dim 1
      (:func:`softmaxkit.torch.cross_entropy` has no default from 3
      dimensions on, so a torch caller cannot get the wrong one silently).

    References
    ----------
    Chowdhery et al., "PaLM", 2022 (z-loss). Gemma Team, "Gemma 2", 2024 (softcap).

    Examples
    --------
    >>> import numpy as np, softmaxkit as sk
    >>> round(float(sk.cross_entropy(np.array([[0.03, 1.92]]), np.array([1]))), 4)
    0.1407
    """
    options = dict(
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
    )
    if is_torch_tensor(logits):
        return torch_op("cross_entropy")(logits, target, axis=axis, **options)
    loss, _ = _cross_entropy_numpy(logits, target, axis=axis, want_grad=False, **options)
    return loss


@options_by_keyword("cross_entropy_and_grad(logits, target, weight=w); name its other options too "
                    "(ignore_index=, reduction=, grad_output=, grad_out=)")
def cross_entropy_and_grad(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    grad_output: Any = None,
    grad_out: Any = None,
) -> tuple[Any, Any]:
    """Loss and its gradient with respect to the logits, in one pass.

    Options as :func:`cross_entropy`, plus:

    grad_output : scalar or array_like, optional
        The upstream gradient: a scalar for ``"mean"``/``"sum"``, an array of
        the loss's shape for ``"none"``. Default 1 (for ``"none"``: the
        gradient of ``loss.sum()``).
    grad_out : ndarray of the logits' shape and dtype, optional
        Receives the gradient, which is then returned. It may be ``logits``
        itself: the gradient then overwrites the logits (each row is read
        before it is overwritten), so no second ``(N, C)`` buffer is needed.
        Written without an extra copy when the class axis is last and the
        array is C-contiguous float32 or float64.

    Returns
    -------
    loss : as :func:`cross_entropy`
    grad_logits : ndarray of the logits' shape and dtype
        ``grad_output * d loss / d logits`` (the ``grad_out`` array if given).

    Notes
    -----
    For hard targets without options the gradient row is ``(p - onehot(y)) *
    scale``; the ``p_y - 1`` term is formed in float32 or wider, never in the
    input's low precision. In float32 it is within about 4e-7 of float64 in
    absolute terms (times ``scale``), so it cancels for a confident row: no
    correct digit once ``1 - p_y`` is under 6e-8, as in torch. The other
    entries keep float32's relative precision (within 1.1e-5 of float64 under
    a softcap at ``|x| / softcap`` up to 12) while float32 holds them as
    normal numbers.
    """
    options = dict(
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
    )
    if is_torch_tensor(logits):
        return torch_op("cross_entropy_and_grad")(
            logits, target, axis=axis, grad_output=grad_output, grad_out=grad_out, **options
        )
    return _cross_entropy_numpy(
        logits,
        target,
        axis=axis,
        want_grad=True,
        grad_output=grad_output,
        grad_out=grad_out,
        **options,
    )


@options_by_keyword("binary_cross_entropy_with_logits(logits, target, weight=w) for torch's "
                    "F.binary_cross_entropy_with_logits(input, target, w); name its other options too "
                    "(reduction=, pos_weight=)")
def binary_cross_entropy_with_logits(
    logits: Any,
    target: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Any:
    r"""Binary cross-entropy on logits, elementwise (torch's formula).

    ``loss = -w * [pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))]``,
    computed as ``w * [(1 - y) * x - (1 + (pos_weight - 1) * y) * log_sigmoid(x)]``
    so no ``log(0)`` appears for large ``|x|``.

    Parameters
    ----------
    logits : array_like of shape (...)
    target : array_like of the same shape, values in [0, 1]
    weight : array_like broadcastable to ``logits``, optional
        Finite; any sign (negative values are accepted, as in torch).
    pos_weight : array_like broadcastable to the last axis, optional
        Finite; any sign, as ``weight``.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over all elements.

    Examples
    --------
    >>> import softmaxkit as sk
    >>> round(float(sk.binary_cross_entropy_with_logits([1.89], [1.0])), 4)
    0.1407
    """
    if is_torch_tensor(logits):
        return torch_op("binary_cross_entropy_with_logits")(
            logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction
        )
    x = as_float_array(logits, "logits")
    reduction = check_reduction(reduction)
    y = as_numpy(target, "target")
    if y.shape != x.shape:
        raise ValueError(f"target must have the logits' shape {x.shape}, got {y.shape}")
    if not (is_floating_dtype(y.dtype) or is_integer_dtype(y.dtype)):
        raise TypeError(f"target must be numeric, got dtype {y.dtype}")
    xc = _elementwise_input(x)
    cdtype = xc.dtype
    yc = y.astype(cdtype)
    with np.errstate(invalid="ignore", over="ignore"):
        log_p = kernels.reference.log_sigmoid(xc)
        if pos_weight is None:
            coef = np.ones((), cdtype)
        else:
            pw = _broadcast_weight(pos_weight, x.shape, "pos_weight", cdtype)  # torch: (C,), (N, 1), ...
            coef = 1 + (pw - 1) * yc
        loss = (1 - yc) * xc - coef * log_p
    if weight is not None:
        loss = loss * _broadcast_weight(weight, x.shape, "weight", cdtype)
    if reduction == "none":
        return loss.astype(x.dtype)
    total = np.sum(loss, dtype=np.float64)
    if reduction == "mean":
        total = total / loss.size if loss.size else 0.0
    return x.dtype.type(total)


def _broadcast_weight(w: Any, shape: tuple[int, ...], name: str, dtype: np.dtype) -> np.ndarray:
    arr = as_numpy(w, name).astype(dtype, copy=False)
    check_broadcasts_to(arr.shape, shape, name)
    # negative weights are accepted, as torch does (the loss stays finite); inf/NaN are refused
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr)].flat[0]}")
    return arr
