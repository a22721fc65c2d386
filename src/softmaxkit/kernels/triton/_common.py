"""Pieces every Triton kernel here shares: launch shapes, the online-softmax
update with its ``-inf`` guard, and a ``tanh`` that also runs in the interpreter.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

#: Rows up to this many classes (divided by the number of per-class arrays a
#: kernel keeps live) are held in registers whole: one read of the logits
#: instead of two. 32768 fp32 values over 32 warps are 32 registers per
#: thread; ptxas (sm_90, Triton 3.7) fits one such array in the 64 registers
#: a 1024-thread program may use without spilling, but not two or three.
MAX_SINGLE_BLOCK = 32768

#: Block width of the looping path for longer rows. With 16 warps that is 16
#: values per thread per array (about 50-100 registers), so two programs share
#: an SM and keep 2 x 16-32 KiB of loads in flight: per SM, what HBM's
#: bandwidth-latency product asks for (about 3.35 TB/s x 1 us / 132 SMs).
LOOP_BLOCK = 8192


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def launch_shape(n_cols: int, block_size: int | None = None, *, live: int = 1) -> tuple[int, bool, int]:
    """``(BLOCK, SINGLE, num_warps)`` for rows of ``n_cols`` classes.

    ``SINGLE`` means one block covers the row, so each element is read from
    device memory once and kept in registers; that is allowed up to
    ``MAX_SINGLE_BLOCK // live`` classes, ``live`` being how many per-class
    arrays the kernel holds at once (logits, targets, tanh, ...). Past that,
    the looping path reads the row twice. ``block_size`` forces the looping
    path with that block (the tests use tiny blocks so that a few dozen
    classes exercise every branch of the online update).
    """
    if block_size is not None:
        block = triton.next_power_of_2(block_size)
        single = block >= n_cols
    elif n_cols <= MAX_SINGLE_BLOCK // live:
        block, single = max(16, triton.next_power_of_2(n_cols)), True
    else:
        block, single = LOOP_BLOCK, False
    # 512 classes per warp (16 per thread): enough independent loads per
    # thread without the register pressure that would halve occupancy.
    num_warps = min(32, max(4, block // 512))
    return block, single, num_warps


@triton.jit
def last_block_first(i, n_cols, BLOCK: tl.constexpr):
    """Start column of the ``i``-th block counted from the end of the row.

    The second pass of the looping kernels walks the row backwards: the
    blocks the first pass read last are the likeliest still to be in L2.
    """
    return (tl.cdiv(n_cols, BLOCK) - 1 - i) * BLOCK


@triton.jit
def safe_shift(m):
    """The shift used for ``exp(x - shift)``: the running max, or 0 while it is
    ``-inf``, so an all ``-inf`` block gives ``exp(-inf) = 0`` and never NaN."""
    return tl.where(m == float("-inf"), 0.0, m)


@triton.jit
def online_update(m, s, x):
    """One step of the online softmax (Milakov & Gimelshein 2018).

    ``s`` is ``sum(exp(x_seen - safe_shift(m)))``; returns ``(m', s')`` after
    the block ``x`` (float32, masked lanes ``-inf``). ``+inf`` or NaN in ``x``
    makes ``s`` NaN, which is the decided behaviour (the row becomes NaN).
    """
    m_new = tl.maximum(m, tl.max(x, axis=0))
    shift_old = safe_shift(m)
    shift_new = safe_shift(m_new)
    s = s * tl.exp(shift_old - shift_new) + tl.sum(tl.exp(x - shift_new), axis=0)
    return m_new, s


@triton.jit
def safe_reciprocal(s):
    """``1/s`` with 0 for an empty (all ``-inf``) row; NaN stays NaN."""
    return tl.where(s == 0.0, 0.0, 1.0 / s)


@triton.jit
def tanh(u):
    """``tanh`` in float32 from ``exp`` alone (libdevice is absent in the interpreter).

    ``(1 - e) / (1 + e)`` with ``e = exp(-2|u|)`` cannot overflow but cancels
    for small ``|u|``; there the odd Taylor series to ``u**13`` is used, whose
    truncation error at ``|u| = 0.3`` is below 1e-10 relative.
    """
    a = tl.abs(u)
    e = tl.exp(-2.0 * a)
    big = (1.0 - e) / (1.0 + e)
    big = tl.where(u < 0, -big, big)
    u2 = u * u
    # Horner form of u * (1 - u^2/3 + 2u^4/15 - 17u^6/315 + 62u^8/2835
    #                     - 1382u^10/155925 + 21844u^12/6081075)
    p = 21844.0 / 6081075.0
    p = p * u2 - 1382.0 / 155925.0
    p = p * u2 + 62.0 / 2835.0
    p = p * u2 - 17.0 / 315.0
    p = p * u2 + 2.0 / 15.0
    p = p * u2 - 1.0 / 3.0
    p = p * u2 + 1.0
    small = u * p
    return tl.where(a < 0.3, small, big)


@triton.jit
def sech_squared(u):
    """``sech(u)^2 = 1 - tanh(u)^2``, the softcap's slope, as ``4 e / (1 + e)^2``
    with ``e = exp(-2|u|)``: accurate where tanh saturates, where ``1 - tanh^2``
    in float32 cancels to no correct digit (past ``|u|`` of about 4)."""
    e = tl.exp(-2.0 * tl.abs(u))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))
