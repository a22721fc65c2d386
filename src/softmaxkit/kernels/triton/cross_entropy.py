"""Cross-entropy forward and backward in one kernel, every option of the contract.

One program per row. Pass 1 streams the row once and keeps four float32
scalars (online softmax, Milakov & Gimelshein 2018):

* ``m``: the running max of ``x'`` (``x'`` = softcapped logits);
* ``s = sum_c exp(x'_c - shift)``, ``shift`` = ``m``, or 0 while ``m = -inf``;
* ``A = sum_c q_c (shift - x'_c)`` and ``Q = sum_c q_c``, where ``q`` is the
  part of the target spread over all classes: ``q_c = eps w_c / C`` for a hard
  target with label smoothing ``eps``, ``q_c = w_c t'_c`` for a soft target
  (``t' = (1 - eps) t + eps / C``). When ``m`` grows by ``d``, ``A`` grows by
  ``d * Q``. Every term of ``A`` is ``>= 0``, so it never cancels; the textbook
  ``Q * lse - sum q x'`` loses all digits on rows of large, nearly equal logits.

With ``lse = shift + log(s)``, ``a = (1 - eps) w_y`` (0 for soft targets) and
``zeta`` the z-loss coefficient, the loss of a row is::

    loss = a (shift - x'_y + log s) + A + Q log s + zeta w lse^2

(``w = w_y`` for hard targets, 1 for soft ones), which equals
:func:`softmaxkit.kernels.reference.cross_entropy_2d`. Pass 2 (fused: the
same launch) writes the gradient, with ``p = exp(x' - shift) / s``::

    dloss/dx'_j = p_j (a + Q + 2 zeta w lse) - q_j - a [j = y]
    dloss/dx_j  = dloss/dx'_j sech(x_j / cap)^2              (softcap only)

times the caller's per-row scale (``1/sum(w_y)`` for "mean", the upstream
gradient for "none"). ``p_y - 1`` is formed in float32 registers and rounded
once on the store: in bf16, ``p_y`` near 1 would round to 1 and the true-class
gradient to 0.

Memory traffic per element: rows that fit in registers (32768 classes for the
plain loss; half that with label smoothing or soft targets, a third with a
softcap as well: see :func:`~._common.launch_shape`) read the logits once
and write the gradient once (the row stays in registers between the passes);
longer rows read the logits twice, the second time backwards so that the
blocks read last in pass 1 (kept with ``evict_last``) come from L2. Soft targets add one read (two when
looping). Ignored rows load nothing (their loads are masked off) and write
zeros.

Edge cases follow the reference: an all ``-inf`` row has ``s = 0`` and loss
``+inf``; a target mass of 0 on a ``-inf`` logit contributes 0 (``q_c = 0``
terms are dropped before the multiply); NaN or ``+inf`` makes the row NaN.

References: Milakov & Gimelshein, "Online normalizer calculation for softmax",
2018; Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models",
2024 (fusing the loss and its gradient so logits are read as few times as
possible).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from softmaxkit._options import CrossEntropyOptions
from softmaxkit.kernels.triton._common import (
    last_block_first,
    launch_shape,
    online_update,
    safe_reciprocal,
    safe_shift,
    sech_squared,
    tanh,
)


@triton.jit
def _load_block(
    x_row, t_row, w_ptr, offs, mask, eps_over_c, one_minus_eps, cap,
    SOFT: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_SMOOTH: tl.constexpr,
    HAS_CAP: tl.constexpr, EVICT: tl.constexpr,
):
    """``(x', q, slope)`` for one block: softcapped logits (masked lanes ``-inf``),
    the spread target mass ``q`` (masked lanes 0) and ``dx'/dx = sech(x / cap)^2``.
    ``EVICT`` is the L2 hint for the logits and soft targets."""
    x = tl.load(x_row + offs, mask=mask, other=float("-inf"), eviction_policy=EVICT).to(tl.float32)
    slope = x  # placeholder when there is no softcap (never used then)
    if HAS_CAP:
        u = x / cap
        slope = sech_squared(u)
        x = tl.where(mask, cap * tanh(u), float("-inf"))
    if SOFT:
        q = tl.load(t_row + offs, mask=mask, other=0.0, eviction_policy=EVICT).to(tl.float32)
        if HAS_SMOOTH:
            q = one_minus_eps * q + eps_over_c
        if HAS_WEIGHT:
            q = q * tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    else:
        if HAS_WEIGHT:
            q = eps_over_c * tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        else:
            q = tl.full(x.shape, 0.0, tl.float32) + eps_over_c
    q = tl.where(mask, q, 0.0)
    return x, q, slope


@triton.jit
def _update_spread(m_old, m_new, A, Q, x, q):
    """Add a block to ``A = sum q (shift - x')`` and ``Q = sum q`` after the
    max moved from ``m_old`` to ``m_new`` (see the module docstring)."""
    d = safe_shift(m_new) - safe_shift(m_old)
    A = A + tl.where(Q == 0.0, 0.0, d * Q)
    terms = tl.where(q == 0.0, 0.0, q * (safe_shift(m_new) - x))
    return A + tl.sum(terms, axis=0), Q + tl.sum(q, axis=0)


@triton.jit
def _store_grad(
    g_row, offs, mask, x, q, slope, shift, inv_s, coef, a, y, scale,
    HAS_CAP: tl.constexpr, SOFT: tl.constexpr, NEED_Q: tl.constexpr,
):
    p = tl.exp(x - shift) * inv_s
    g = p * coef
    if NEED_Q:
        g = g - q
    if not SOFT:
        g = g - tl.where(offs == y, a, 0.0)  # the (p_y - 1) term, in float32
    if HAS_CAP:
        g = g * slope
    tl.store(g_row + offs, (g * scale).to(g_row.dtype.element_ty), mask=mask)


@triton.jit
def _cross_entropy_kernel(
    x_ptr, stride_x, t_ptr, stride_t, w_ptr, g_ptr, stride_g, loss_ptr,
    scale_ptr, stride_scale,
    n_cols, ignore_index, eps, zeta, cap,
    SOFT: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_SMOOTH: tl.constexpr,
    HAS_ZLOSS: tl.constexpr, HAS_CAP: tl.constexpr, WRITE_GRAD: tl.constexpr,
    NEED_Q: tl.constexpr, BLOCK: tl.constexpr, SINGLE: tl.constexpr,
):
    # NEED_Q = SOFT or HAS_SMOOTH: the spread-target accumulators are needed.
    row = tl.program_id(0).to(tl.int64)  # int64 offsets: row * C can pass 2**31
    x_row = x_ptr + row * stride_x
    t_row = t_ptr + row * stride_t
    cols = tl.arange(0, BLOCK)
    eps_over_c = eps / n_cols
    one_minus_eps = 1.0 - eps

    if SOFT:
        active = n_cols > 0  # always true; soft rows are never ignored
        y = 0
        a = 0.0
        w_z = 1.0
    else:
        y = tl.load(t_ptr + row).to(tl.int64)
        active = y != ignore_index
        y = tl.where(active, y, 0)
        if HAS_WEIGHT:
            w_y = tl.load(w_ptr + y).to(tl.float32)
        else:
            w_y = 1.0
        w_y = tl.where(active, w_y, 0.0)
        a = one_minus_eps * w_y
        w_z = w_y

    # ---- pass 1: online max, sum of exp, spread-target accumulators.
    # Ignored rows mask every load off: no memory traffic for padding tokens.
    m = tl.full((), float("-inf"), tl.float32)
    s = tl.full((), 0.0, tl.float32)
    A = tl.full((), 0.0, tl.float32)
    Q = tl.full((), 0.0, tl.float32)
    if SINGLE:
        mask = (cols < n_cols) & active
        x, q, slope = _load_block(x_row, t_row, w_ptr, cols, mask, eps_over_c, one_minus_eps,
                                  cap, SOFT, HAS_WEIGHT, HAS_SMOOTH, HAS_CAP, "")
        m_new, s = online_update(m, s, x)
        if NEED_Q:
            A, Q = _update_spread(m, m_new, A, Q, x, q)
        m = m_new
    else:
        for start in range(0, n_cols, BLOCK):
            offs = start + cols
            mask = (offs < n_cols) & active
            xb, qb, thb = _load_block(x_row, t_row, w_ptr, offs, mask, eps_over_c,
                                      one_minus_eps, cap, SOFT, HAS_WEIGHT, HAS_SMOOTH, HAS_CAP,
                                      "evict_last")
            m_new, s = online_update(m, s, xb)
            if NEED_Q:
                A, Q = _update_spread(m, m_new, A, Q, xb, qb)
            m = m_new

    shift = safe_shift(m)
    log_s = tl.log(s)
    lse = shift + log_s
    loss = A + Q * log_s
    if not SOFT:
        x_y = tl.load(x_row + y, mask=active, other=0.0).to(tl.float32)
        if HAS_CAP:
            x_y = cap * tanh(x_y / cap)
        # a == 0 (eps = 1 or a zero class weight) must not turn 0 * inf into NaN.
        loss += tl.where(a == 0.0, 0.0, a * ((shift - x_y) + log_s))
    if HAS_ZLOSS:
        loss += zeta * w_z * lse * lse
    loss = tl.where(s == 0.0, float("inf"), loss)  # all -inf row: impossible target
    loss = tl.where(active, loss, 0.0)
    tl.store(loss_ptr + row, loss)

    # ---- pass 2: the gradient, fused into the same launch.
    if WRITE_GRAD:
        g_row = g_ptr + row * stride_g
        scale = tl.load(scale_ptr + row * stride_scale).to(tl.float32)
        scale = tl.where(active, scale, 0.0)
        coef = a + Q
        if HAS_ZLOSS:
            # lse is -inf on an all -inf row, where p = 0 anyway: drop the term.
            coef += tl.where(s == 0.0, 0.0, 2.0 * zeta * w_z * lse)
        inv_s = safe_reciprocal(s)
        if SINGLE:
            mask = cols < n_cols
            _store_grad(g_row, cols, mask, x, q, slope, shift, inv_s, coef, a, y,
                        scale, HAS_CAP, SOFT, NEED_Q)
        else:
            # Backwards: the blocks pass 1 read last are still in L2.
            for i in range(0, tl.cdiv(n_cols, BLOCK)):
                offs = last_block_first(i, n_cols, BLOCK) + cols
                mask = (offs < n_cols) & active
                xb, qb, thb = _load_block(x_row, t_row, w_ptr, offs, mask, eps_over_c,
                                          one_minus_eps, cap, SOFT, HAS_WEIGHT, HAS_SMOOTH,
                                          HAS_CAP, "evict_first")
                _store_grad(g_row, offs, offs < n_cols, xb, qb, thb, shift, inv_s, coef, a,
                            y, scale, HAS_CAP, SOFT, NEED_Q)


def cross_entropy_rows(
    x: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    weight: torch.Tensor | None = None,
    row_scale: torch.Tensor | None = None,
    grad_out: torch.Tensor | None = None,
    block_size: int | None = None,
) -> torch.Tensor:
    """Per-row cross-entropy and, optionally, its gradient, in one launch.

    Parameters
    ----------
    x : Tensor of shape (N, C), last axis contiguous
        Logits in any float dtype; computed in float32.
    target : Tensor of shape (N,) int64, or (N, C) float probabilities
    options : CrossEntropyOptions
        ``ignore_index``, ``label_smoothing``, ``z_loss`` and ``softcap`` are
        read; ``weight`` and ``reduction`` are not (see ``weight``).
    weight : Tensor of shape (C,), optional
        Class weights on ``x``'s device (the device copy of ``options.weight``).
    row_scale : Tensor of shape (N,) or a single element, float32, optional
        Gradient multiplier per row (a one-element tensor is broadcast, with
        no host synchronisation). Required with ``grad_out``.
    grad_out : Tensor of shape (N, C), optional
        Receives ``row_scale[i] * dloss_i/dx_i``; may be ``x`` itself (the
        row is fully read before it is written, within one program).
    block_size : int, optional
        Force the looping path with this block width (tests only).

    Returns
    -------
    loss : Tensor of shape (N,), float32
        As :func:`softmaxkit.kernels.reference.cross_entropy_2d`: torch's
        ``reduction="none"`` loss plus ``z_loss * w_y * lse**2``; 0 on ignored rows.

    Notes
    -----
    One program per row; the formulas are in this module's docstring. Bytes
    per logit: one read and one gradient write when the row fits in
    registers, one more read otherwise. Sums, ``exp`` and ``p_y - 1`` are
    float32 whatever the storage dtype (a bf16 sum stalls after a few hundred
    terms, and a bf16 ``p_y - 1`` is 0 once ``p_y > 0.998``). Row offsets are
    int64. The online softmax replaces a ``-inf`` running max by 0, so a row
    (or leading block) of ``-inf`` gives ``exp(-inf) = 0``, never NaN.
    """
    n, c = x.shape
    loss = torch.empty(n, dtype=torch.float32, device=x.device)
    if n == 0:
        return loss
    soft = target.dim() == 2
    write_grad = grad_out is not None
    if write_grad:
        scale = row_scale.reshape(-1)
        stride_scale = 0 if scale.numel() == 1 else scale.stride(0)
    else:
        scale, stride_scale = loss, 0  # never read
    eps = float(options.label_smoothing)
    # Per-class arrays held across the two passes: logits, spread target, tanh.
    live = 1 + (soft or eps > 0.0) + (options.softcap is not None)
    block, single, num_warps = launch_shape(c, block_size, live=live)
    _cross_entropy_kernel[(n,)](
        x, x.stride(0), target, target.stride(0) if soft else 0,
        weight if weight is not None else x,
        grad_out if write_grad else x, grad_out.stride(0) if write_grad else 0,
        loss, scale, stride_scale,
        c, int(options.ignore_index), eps, float(options.z_loss),
        float(options.softcap) if options.softcap is not None else 1.0,
        SOFT=soft, HAS_WEIGHT=weight is not None, HAS_SMOOTH=eps > 0.0,
        HAS_ZLOSS=options.z_loss > 0.0, HAS_CAP=options.softcap is not None,
        WRITE_GRAD=write_grad, NEED_Q=soft or eps > 0.0, BLOCK=block, SINGLE=single,
        num_warps=num_warps,
    )
    return loss
