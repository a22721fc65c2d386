"""Row-wise softmax and log-softmax on the GPU, forward and backward.

Forward, for ``x'`` = ``x / temperature`` and a row of ``C`` classes::

    m = max(x'),  s = sum(exp(x' - m)),  softmax = exp(x' - m) / s,
    log_softmax = (x' - m) - log(s)

Backward, with upstream gradient ``dy`` and the saved output ``y``::

    softmax:      dx = (y * (dy - sum(dy * y))) / temperature
    log_softmax:  dx = (dy - exp(y) * sum(dy)) / temperature

Memory traffic per element (the byte count that sets the speed):

* rows of at most :data:`~._common.MAX_SINGLE_BLOCK` classes (half that in
  the backward, which holds ``y`` and ``dy``): the forward reads ``x`` once
  and writes ``y`` once; the backward reads ``y`` and ``dy`` once and writes
  ``dx`` once. Everything in between lives in registers.
* longer rows: one extra read of the input per pass (the online statistics
  pass, then the writing pass). The writing pass walks the row backwards and
  the first pass asks L2 to keep what it loaded (``evict_last``), so the
  blocks read last, still in L2, are the first ones read again.

Accumulation is float32 for every storage dtype: bf16 has 8 mantissa bits, so
a bf16 running sum over 32k terms would stop growing after a few hundred.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from softmaxkit.kernels.triton._common import (
    last_block_first,
    launch_shape,
    online_update,
    safe_reciprocal,
    safe_shift,
)


@triton.jit
def _softmax_fwd_kernel(
    x_ptr, y_ptr, n_cols, stride_x, stride_y, inv_t,
    LOG: tl.constexpr, BLOCK: tl.constexpr, SINGLE: tl.constexpr,
):
    # int64 before the multiply: row * stride overflows int32 past 2**31 elements.
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    y_row = y_ptr + row * stride_y
    cols = tl.arange(0, BLOCK)
    m = tl.full((), float("-inf"), tl.float32)
    s = tl.full((), 0.0, tl.float32)
    if SINGLE:
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=float("-inf")).to(tl.float32) * inv_t
        m, s = online_update(m, s, x)
    else:
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            xb = tl.load(x_row + start + cols, mask=mask, other=float("-inf"),
                         eviction_policy="evict_last").to(tl.float32)
            m, s = online_update(m, s, xb * inv_t)
    shift = safe_shift(m)
    log_s = tl.log(s)
    inv_s = safe_reciprocal(s)
    if SINGLE:
        _softmax_store(y_row, cols, mask, x, shift, log_s, inv_s, s, LOG)
    else:
        for i in range(0, tl.cdiv(n_cols, BLOCK)):
            start = last_block_first(i, n_cols, BLOCK)
            mask = start + cols < n_cols
            xb = tl.load(x_row + start + cols, mask=mask, other=float("-inf"),
                         eviction_policy="evict_first").to(tl.float32)
            _softmax_store(y_row + start, cols, mask, xb * inv_t, shift, log_s, inv_s, s, LOG)


@triton.jit
def _softmax_store(y_row, cols, mask, x, shift, log_s, inv_s, s, LOG: tl.constexpr):
    if LOG:
        # An all -inf row has s == 0: define -inf instead of (-inf) - (-inf).
        y = tl.where(s == 0.0, float("-inf"), (x - shift) - log_s)
    else:
        y = tl.exp(x - shift) * inv_s
    tl.store(y_row + cols, y.to(y_row.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_bwd_kernel(
    y_ptr, dy_ptr, dx_ptr, n_cols, stride_y, stride_dy, stride_dx, inv_t,
    LOG: tl.constexpr, BLOCK: tl.constexpr, SINGLE: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    y_row = y_ptr + row * stride_y
    dy_row = dy_ptr + row * stride_dy
    dx_row = dx_ptr + row * stride_dx
    cols = tl.arange(0, BLOCK)
    # Pass 1: the row reduction, sum(dy * y) for softmax or sum(dy) for log-softmax.
    if SINGLE:
        mask = cols < n_cols
        y = tl.load(y_row + cols, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_row + cols, mask=mask, other=0.0).to(tl.float32)
        if LOG:
            dot = tl.sum(dy, axis=0)
        else:
            dot = tl.sum(dy * y, axis=0)
    else:
        dot = tl.full((), 0.0, tl.float32)
        for start in range(0, n_cols, BLOCK):
            mask = start + cols < n_cols
            dyb = tl.load(dy_row + start + cols, mask=mask, other=0.0,
                          eviction_policy="evict_last").to(tl.float32)
            if LOG:
                dot += tl.sum(dyb, axis=0)
            else:
                yb = tl.load(y_row + start + cols, mask=mask, other=0.0,
                             eviction_policy="evict_last").to(tl.float32)
                dot += tl.sum(dyb * yb, axis=0)
    # Pass 2: write dx.
    if SINGLE:
        _softmax_bwd_store(dx_row, cols, mask, y, dy, dot, inv_t, LOG)
    else:
        for i in range(0, tl.cdiv(n_cols, BLOCK)):
            start = last_block_first(i, n_cols, BLOCK)
            mask = start + cols < n_cols
            yb = tl.load(y_row + start + cols, mask=mask, other=0.0,
                         eviction_policy="evict_first").to(tl.float32)
            dyb = tl.load(dy_row + start + cols, mask=mask, other=0.0,
                          eviction_policy="evict_first").to(tl.float32)
            _softmax_bwd_store(dx_row + start, cols, mask, yb, dyb, dot, inv_t, LOG)


@triton.jit
def _softmax_bwd_store(dx_row, cols, mask, y, dy, dot, inv_t, LOG: tl.constexpr):
    if LOG:
        dx = dy - tl.exp(y) * dot  # exp(-inf) = 0: masked classes pass dy through
    else:
        dx = y * (dy - dot)
    tl.store(dx_row + cols, (dx * inv_t).to(dx_row.dtype.element_ty), mask=mask)


def softmax_forward(
    x: torch.Tensor,
    *,
    inv_temperature: float = 1.0,
    log: bool = False,
    out: torch.Tensor | None = None,
    block_size: int | None = None,
) -> torch.Tensor:
    """Row-wise (log-)softmax of ``x * inv_temperature``.

    Parameters
    ----------
    x : Tensor of shape (N, C), last axis contiguous
    inv_temperature : float
    log : bool
        Log-softmax instead of softmax.
    out : Tensor of shape (N, C), optional
        Destination (defaults to a new tensor of ``x``'s dtype); may be ``x``.
    block_size : int, optional
        Force the looping path with this block width (tests only).

    Returns
    -------
    Tensor of shape (N, C)
        All ``-inf`` rows give 0 (softmax) or ``-inf`` (log-softmax); NaN or
        ``+inf`` anywhere in a row makes the whole row NaN.

    Notes
    -----
    See the module docstring for the formulas and the bytes moved. The max
    and the sum are float32, the sum formed block by block as a tree (error
    growing with the log of the block, not with ``C``), which keeps row sums
    within 1e-6 of 1 at 262,144 classes.
    """
    n, c = x.shape
    y = torch.empty_like(x) if out is None else out
    if n == 0 or c == 0:
        return y
    block, single, num_warps = launch_shape(c, block_size)
    _softmax_fwd_kernel[(n,)](
        x, y, c, x.stride(0), y.stride(0), float(inv_temperature),
        LOG=log, BLOCK=block, SINGLE=single, num_warps=num_warps,
    )
    return y


def softmax_backward(
    y: torch.Tensor,
    dy: torch.Tensor,
    *,
    inv_temperature: float = 1.0,
    log: bool = False,
    block_size: int | None = None,
) -> torch.Tensor:
    """Gradient of :func:`softmax_forward` from its output ``y`` and upstream ``dy``.

    Parameters
    ----------
    y, dy : Tensor of shape (N, C), last axis contiguous

    Returns
    -------
    dx : Tensor of shape (N, C), in ``dy``'s dtype
    """
    n, c = y.shape
    dx = torch.empty_like(dy)
    if n == 0 or c == 0:
        return dx
    block, single, num_warps = launch_shape(c, block_size, live=2)  # y and dy
    _softmax_bwd_kernel[(n,)](
        y, dy, dx, c, y.stride(0), dy.stride(0), dx.stride(0), float(inv_temperature),
        LOG=log, BLOCK=block, SINGLE=single, num_warps=num_warps,
    )
    return dx
