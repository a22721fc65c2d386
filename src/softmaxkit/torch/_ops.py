"""The cross-entropy kernel contract written in torch ops, for any device.

Same functions, signatures and formulas as :mod:`softmaxkit.kernels.reference`
(read its ``cross_entropy_2d`` Notes for the math), but on tensors, so a CUDA
tensor never leaves its device. It is the CUDA fallback until Triton kernels
exist (see :mod:`softmaxkit.torch._backend`), and on CPU the tests run it
against the NumPy kernels to keep the two in step.

Stability habits, as in the NumPy kernels: rows are shifted by their max,
with 0 as the shift of an all ``-inf`` row; row sums and the loss are
accumulated in float64; ``p_y - 1`` is formed in the compute dtype (never in
a 16-bit input dtype).
"""

from __future__ import annotations

import torch

from softmaxkit._options import CrossEntropyOptions


def class_weight(options: CrossEntropyOptions, device: torch.device, dtype=torch.float64):
    """``options.weight`` (float64 NumPy) as a tensor on ``device``, or None."""
    if options.weight is None:
        return None
    return torch.as_tensor(options.weight, dtype=dtype, device=device)


def apply_softcap(x: torch.Tensor, cap: float | None, *, want_slope: bool):
    """``cap * tanh(x / cap)`` (Gemma 2) and, if ``want_slope``, ``dx'/dx = sech(x / cap)^2``.

    The slope is ``1 / cosh(x / cap)^2`` from the raw logits, not ``1 - tanh^2``:
    the latter cancels where tanh saturates (in float32 it has no correct digit
    past ``|x| / cap`` of about 4). ``cosh^2`` overflowing to ``inf`` gives the
    right 0 for ``|x| / cap`` past about 44.
    """
    if cap is None:
        return x, None
    u = x / cap
    slope = torch.cosh(u).square_().reciprocal_() if want_slope else None
    return u.tanh_().mul_(cap), slope


def row_weights(target: torch.Tensor, options: CrossEntropyOptions, soft: bool) -> torch.Tensor:
    """Each row's weight in the ``"mean"`` denominator, (N,) float64.

    Same rule as :func:`softmaxkit.functional.row_weights`: ``weight[y]`` (1
    without weights) and 0 for ignored rows; 1 per row for soft targets.
    """
    if soft:
        return torch.ones(target.shape[0], dtype=torch.float64, device=target.device)
    active = target != options.ignore_index
    w = class_weight(options, target.device)
    if w is None:
        return active.to(torch.float64)
    return torch.where(active, w[torch.where(active, target, 0)], 0.0)


def cross_entropy_2d(
    x: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    row_scale: torch.Tensor | None = None,
    grad_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row loss (N,) float64 and, into ``grad_out`` (may alias ``x``),
    ``row_scale[:, None] * dloss/dx``. The kernel contract, in torch ops."""
    n, c = x.shape
    dtype = x.dtype
    eps, zeta, cap = options.label_smoothing, options.z_loss, options.softcap
    w = class_weight(options, x.device)  # (C,) float64 or None
    w_x = None if w is None else w.to(dtype)
    w_sum = float(c) if w is None else float(w.sum())
    soft = target.ndim == 2

    xc, slope = apply_softcap(x, cap, want_slope=grad_out is not None)
    m = xc.amax(dim=1, keepdim=True)
    m = torch.where(m == -torch.inf, torch.zeros((), dtype=dtype, device=x.device), m)
    z = xc - m  # (N, C); NaN rows stay NaN
    e = torch.exp(z)
    s = e.sum(dim=1, dtype=torch.float64)  # (N,)
    log_s = torch.log(s)  # -inf on all -inf rows
    lse = m[:, 0].to(torch.float64) + log_s
    dead = s == 0  # all -inf rows

    if soft:
        t = target if eps == 0.0 else (1.0 - eps) * target + eps / c
        wt = t if w_x is None else t * w_x  # (N, C): w_c t'_c
        terms = torch.where(wt == 0, 0.0, wt.to(torch.float64) * (-z).to(torch.float64))
        wt_sum = wt.sum(dim=1, dtype=torch.float64)
        log_s_safe = torch.where(dead, 0.0, log_s)
        row_loss = terms.sum(dim=1) + wt_sum * log_s_safe + zeta * torch.where(dead, 0.0, lse) ** 2
        # A row of all -inf with some target mass has no finite likelihood.
        row_loss = torch.where(dead & (wt_sum > 0), torch.inf, row_loss)
    else:
        active = target != options.ignore_index
        y = torch.where(active, target, 0)
        w_y = active.to(torch.float64) if w is None else torch.where(active, w[y], 0.0)
        z_y = z.gather(1, y[:, None])[:, 0].to(torch.float64)
        row_loss = (1.0 - eps) * w_y * (log_s - z_y) if eps < 1.0 else torch.zeros_like(w_y)
        if eps > 0.0:
            wz = -z if w_x is None else torch.where(w_x == 0, 0.0, w_x * (-z))
            smooth = wz.sum(dim=1, dtype=torch.float64) + w_sum * log_s
            row_loss = row_loss + (eps / c) * smooth
        if zeta > 0.0:
            row_loss = row_loss + zeta * w_y * lse**2
        row_loss = torch.where(dead & (w_y > 0), torch.inf, row_loss)
        row_loss = torch.where(active, row_loss, 0.0)

    if grad_out is None:
        return row_loss
    inv_s = torch.where(dead, 0.0, 1.0 / torch.where(dead, 1.0, s))
    p = e * inv_s.to(dtype)[:, None]  # (N, C)
    lse_term = torch.where(torch.isfinite(lse), 2.0 * zeta * lse, 0.0)
    if soft:
        g = p * (wt_sum + lse_term).to(dtype)[:, None] - wt
    else:
        coef = (1.0 - eps) * w_y + eps * w_sum / c + lse_term * w_y
        g = p * coef.to(dtype)[:, None]
        if eps > 0.0:
            g = g - (eps / c) * (1.0 if w_x is None else w_x)
        rows = torch.arange(n, device=x.device)
        g[rows, y] -= ((1.0 - eps) * w_y).to(dtype)
        g = torch.where(active[:, None], g, 0.0)
    if cap is not None:
        g = g * slope
    if row_scale is not None:
        g = g * torch.as_tensor(row_scale, device=x.device).to(dtype)[:, None]
    grad_out.copy_(g)
    return row_loss
