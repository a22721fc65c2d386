"""Class-parallel cross-entropy over ``torch.distributed``: each rank holds a
slice of the classes, and the loss is still exactly the full-softmax loss.

When a vocabulary outgrows one device, rank ``r`` of a process group keeps the
classes ``[start_r, start_r + V_r)``: a column slice of the logits, or a row
slice of the output weight matrix. Every rank holds the same rows (tokens) and
the same targets. The softmax over all ``V = sum_r V_r`` classes needs only
per-row numbers from the other ranks, so each forward exchanges two small
``(N, k)`` buffers and never the logits:

1. an all-reduce ``MAX`` of the per-row local maxima (the shift that keeps
   every ``exp`` from overflowing);
2. one packed all-reduce ``SUM`` of every per-row partial sum the loss needs:
   ``sum exp``, the target's shifted logit, the target's class weight, the
   label-smoothing sum and the soft-target sums.

The gradient of the local logits then needs nothing from the other ranks.

This module owns the split of the math into rank-local partial sums and their
combination. Validation reuses :mod:`softmaxkit._validation`; the formulas are
those of :func:`softmaxkit.kernels.reference.cross_entropy_2d`, regrouped so
that every global quantity is a sum over classes.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import torch
import torch.distributed as dist

from softmaxkit import _reduction
from softmaxkit._options import REDUCTIONS, CrossEntropyOptions
from softmaxkit._validation import (
    check_class_weight,
    check_floating,
    check_hard_target,
    check_soft_ignore_index,
    check_soft_target,
    cross_entropy_options,
    is_floating_dtype,
    is_integer_dtype,
)
from softmaxkit.linear import CHUNK_BYTES, check_bias_dtype, chunk_rows
from softmaxkit.torch import _composite
from softmaxkit.torch._cross_entropy import (
    compiling,
    grads_wanted,
    refuse_differentiated_weight,
    target_not_differentiable,
)
from softmaxkit.torch._linear import without_autocast, autocast_inputs, check_loss_dtype, gemm_dtype
from softmaxkit.torch._ops import apply_softcap

__all__ = ["class_parallel_cross_entropy", "class_parallel_linear_cross_entropy"]


#: ``(chunk, V_local)`` arrays alive at once in the linear path (logits, softcap slope,
#: shifted logits, exp / gradient, a product), so that all of them together,
#: not just the logits, stay within :data:`softmaxkit.linear.CHUNK_BYTES`.
_LIVE_CHUNK_ARRAYS = 5


# --------------------------------------------------------------------------- process group


@dataclasses.dataclass(frozen=True)
class _Comm:
    """The process group, this rank's place in it, and the two collectives used.

    Without an initialised default group (and with ``group=None``) the call
    runs as a group of one and issues no collectives at all.
    """

    group: Any
    rank: int
    world: int
    active: bool

    @classmethod
    def of(cls, group: Any) -> _Comm:
        if group is None and not (dist.is_available() and dist.is_initialized()):
            return cls(None, 0, 1, False)
        return cls(group, dist.get_rank(group), dist.get_world_size(group), True)

    def all_reduce(self, buf: torch.Tensor, op: Any) -> torch.Tensor:
        # Looked up on ``dist`` at call time so tests can count the calls.
        if self.active:
            dist.all_reduce(buf, op=op, group=self.group)
        return buf


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where this rank's classes sit among the ``n_classes`` global ones."""

    start: int
    width: int
    n_classes: int
    widest: int  # the widest rank's slice (the linear path's chunk plan)


#: What each rank writes into its own column of the header, a ``(len(_HEADER),
#: world)`` block of the first ``MAX`` all-reduce whose other entries are
#: ``-inf``: the reduction gathers every rank's column at once. Everything that
#: decides which collectives a rank issues, or with what sizes, is here, so a
#: disagreement raises on every rank before any collective that depends on it.
#: The header comes *first* in the buffer, before the row maxima, so that it
#: lines up even when ranks pass different row counts.
_HEADER = (
    "ok",  # 0: this rank's inputs failed its local checks (it raises its own error)
    "rows",
    "targets",  # a fingerprint of the hard targets (0 for soft ones)
    "target_hash",  # a hash of them, which the fingerprint's collisions do not share
    "chunk_size",  # 0: None
    "grad_hidden",
    "soft",
    "class_weight",
    "reduction",
    "ignore_index",
    "label_smoothing",
    "z_loss",
    "softcap",  # 0: None
    "loss_dtype",  # the returned loss's dtype: an index into _LOSS_DTYPES
    "width",
    "class_start",  # -1: None
)
_H = {name: i for i, name in enumerate(_HEADER)}

#: Every dtype a loss can have: the inputs' floating dtypes, and ``loss_dtype``
#: is refused narrower than them (:func:`softmaxkit.torch._linear.check_loss_dtype`).
_LOSS_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

#: Fields that must agree across ranks: what the error calls them, how it
#: prints a value, and why they must agree.
_AGREE = {
    "rows": ("the row count N", int, "every rank must hold the same rows (tokens)"),
    "targets": ("the hard targets (a fingerprint of them)", int,
                "every rank must pass the same class indices"),
    "target_hash": ("the hard targets (a 52-bit hash of them)", int,
                    "every rank must pass the same class indices"),
    "chunk_size": ("chunk_size", lambda v: int(v) or None,
                   "each chunk issues collectives, so every rank must run the same chunks"),
    "grad_hidden": ("whether hidden requires grad (with grad mode on)", bool,
                    "under torch.no_grad()/inference_mode() or with a detached hidden a rank "
                    "skips the grad_hidden all-reduce that the others make"),
    "soft": ("the target kind (True: probabilities)", bool, "every rank must pass the same kind"),
    "class_weight": ("whether weight is given", bool,
                     "pass this rank's slice on every rank, of length 0 for an empty slice"),
    "reduction": ("reduction", lambda v: REDUCTIONS[int(v)], "every rank must pass the same options"),
    "ignore_index": ("ignore_index", int, "every rank must pass the same options"),
    "label_smoothing": ("label_smoothing", float, "every rank must pass the same options"),
    "z_loss": ("z_loss", float, "every rank must pass the same options"),
    "softcap": ("softcap", lambda v: v or None, "every rank must pass the same options"),
    # The resolved dtype, not the option as passed: None and the input dtype give the same
    # loss, while ranks with different input dtypes and no loss_dtype would not.
    "loss_dtype": ("the loss dtype (loss_dtype, or the input dtype where it is None)",
                   lambda v: str(_LOSS_DTYPES[int(v)]),
                   "every rank must return the same loss: pass the same loss_dtype everywhere"),
}


def _target_fingerprint(target: torch.Tensor) -> torch.Tensor:
    """A position-weighted sum of the hard labels, exact in float64.

    int64 arithmetic wraps the same way on every rank; the remainder keeps it
    below 2**52, so one changed label (``d * (i + 1)`` is never a multiple of
    2**52 in practice) or two swapped ones change the value. Being linear, it
    misses changes that cancel (``[0, 6]`` and ``[6, 3]`` both give 15):
    :func:`_target_hash` covers those.
    """
    pos = torch.arange(1, target.numel() + 1, dtype=torch.int64, device=target.device)
    return torch.remainder(torch.sum((target + 1) * pos), 2**52).to(torch.float64)


def _as_int64(c: int) -> int:
    """A 64-bit constant as the int64 of the same bits (torch refuses Python ints >= 2**63)."""
    return c - 2**64 if c >= 2**63 else c


#: splitmix64's increment and finaliser multipliers (Steele et al., 2014), as int64.
_GOLDEN, _MIX1, _MIX2 = (_as_int64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def _target_hash(target: torch.Tensor) -> torch.Tensor:
    """A nonlinear hash of the hard labels and their positions: the low 52 bits
    (exact in float64) of ``sum_i mix(i, t_i) mod 2**64``, on the device.

    ``mix`` is splitmix64's finaliser of ``(i + 1) * golden + t_i + 1``, a
    bijection of 64-bit words, so each (position, label) pair gives its own
    pseudo-random word. Products and sums wrap modulo 2**64 (two's complement),
    and sums modulo 2**64 do not depend on the order of the additions, so every
    rank and device gets the same value for the same targets. Two different
    target vectors still give the same hash with a probability of about
    2**-52 (they also need the same :func:`_target_fingerprint`).
    """

    def lshr(x: torch.Tensor, s: int) -> torch.Tensor:  # ">>" on int64 is arithmetic: mask the sign copies
        return (x >> s) & ((1 << (64 - s)) - 1)

    pos = torch.arange(1, target.numel() + 1, dtype=torch.int64, device=target.device)
    x = pos * _GOLDEN + (target + 1)
    x = (x ^ lshr(x, 30)) * _MIX1
    x = (x ^ lshr(x, 27)) * _MIX2
    x = x ^ lshr(x, 31)
    return (torch.sum(x) & ((1 << 52) - 1)).to(torch.float64)


def _header_column(
    *,
    target: torch.Tensor,
    opts: CrossEntropyOptions,
    has_weight: bool,
    width: int,
    class_start: int | None,
    loss_dtype: torch.dtype,
    chunk_size: int | None = None,
    grad_hidden: bool = False,
) -> torch.Tensor:
    """This rank's column of the header (see :data:`_HEADER`), float64 ``(F,)``.

    ``loss_dtype`` is the returned loss's dtype (the option, or the input dtype).
    """
    soft = target.dtype.is_floating_point
    values = {
        "ok": 1, "rows": target.shape[0], "targets": 0, "target_hash": 0, "chunk_size": chunk_size or 0,
        "grad_hidden": grad_hidden, "soft": soft, "class_weight": has_weight,
        "reduction": REDUCTIONS.index(opts.reduction), "ignore_index": opts.ignore_index,
        "label_smoothing": opts.label_smoothing, "z_loss": opts.z_loss,
        "softcap": opts.softcap or 0, "loss_dtype": _LOSS_DTYPES.index(loss_dtype), "width": width,
        "class_start": -1 if class_start is None else class_start,
    }
    col = torch.tensor([float(values[k]) for k in _HEADER], dtype=torch.float64, device=target.device)
    if not soft:  # on the device: no host sync
        col[_H["targets"]] = _target_fingerprint(target)
        col[_H["target_hash"]] = _target_hash(target)
    return col


def _header_slots(column: torch.Tensor, comm: _Comm) -> torch.Tensor:
    """``(F, world)`` block of ``-inf`` with ``column`` in this rank's place."""
    slots = torch.full((len(_HEADER), comm.world), -math.inf, dtype=torch.float64, device=column.device)
    slots[:, comm.rank] = column
    return slots


def _join_after_local_error(comm: _Comm, block_rows: int, device: Any) -> None:
    """Take part in the first collective with ``ok = 0`` after this rank's own
    inputs failed a check, so that the other ranks raise too instead of waiting
    in a collective this rank will never make. ``block_rows`` is the size of
    the first row block the other ranks send (best effort: it comes from this
    rank's own, possibly wrong, shapes)."""
    if not comm.active:
        return
    column = torch.full((len(_HEADER),), -math.inf, dtype=torch.float64, device=device)
    column[_H["ok"]] = 0.0
    head = _header_slots(column, comm).reshape(-1)
    comm.all_reduce(torch.cat([head, head.new_full((block_rows,), -math.inf)]), dist.ReduceOp.MAX)


def _resolve_layout(slots: torch.Tensor, comm: _Comm, width: int) -> _Layout:
    """Check the all-reduced ``(F, world)`` header and return this rank's layout.

    Every rank sees the same header, so a disagreement raises the same
    ``ValueError`` on all ranks rather than leaving some of them waiting in
    (or, worse, mispairing) the next collective.
    """
    cols = {name: [float(v) for v in slots[i].tolist()] for i, name in enumerate(_HEADER)}
    failed = [r for r, ok in enumerate(cols["ok"]) if ok < 1]
    if failed:
        raise ValueError(
            f"rank(s) {failed} failed the checks of their own inputs (their error says which); "
            "every rank raises here rather than wait in a collective those ranks will not make"
        )
    for name, (what, fmt, why) in _AGREE.items():
        vals = cols[name]
        if len(set(vals)) > 1:
            raise ValueError(
                f"ranks disagree on {what}: {[fmt(v) for v in vals]} (one value per rank, in "
                f"rank order); {why}"
            )
    widths = [int(v) for v in cols["width"]]
    given_starts = [int(v) for v in cols["class_start"]]
    n_classes = sum(widths)
    given = [s >= 0 for s in given_starts]
    if not any(given):  # derived: ranks own consecutive slices in rank order
        starts = [sum(widths[:r]) for r in range(comm.world)]
    elif all(given):
        starts = given_starts
        covered = sorted((s, s + w) for s, w in zip(starts, widths) if w > 0)
        end = 0
        for lo, hi in covered:
            if lo != end:
                raise ValueError(
                    "the class slices (class_start, width) of the ranks must tile "
                    f"[0, {n_classes}) without gaps or overlaps; got starts {starts} "
                    f"and widths {widths}"
                )
            end = hi
    else:
        raise ValueError(
            "class_start must be given on every rank or on none; ranks "
            f"{[r for r, g in enumerate(given) if not g]} passed None"
        )
    return _Layout(start=starts[comm.rank], width=width, n_classes=n_classes, widest=max(widths))


# --------------------------------------------------------------------------- per-row math


@dataclasses.dataclass
class _RowStats:
    """Per-row results of the two collectives, shape ``(n,)`` each.

    ``shift`` is the global row max (0 on rows of all ``-inf``) and
    ``log_s = log(sum_c exp(x'_c - shift))`` (0 where that sum is 0, so that
    ``exp(x' - shift - log_s)`` gives ``p = 0`` rather than NaN there).
    ``coef`` multiplies ``p`` in the gradient; ``y_coef`` is subtracted at the
    target column on the rank that owns it.
    """

    loss: torch.Tensor  # float64, per row, before the reduction
    row_w: torch.Tensor  # float64, the row's weight in the "mean" denominator
    shift: torch.Tensor  # compute dtype
    log_s: torch.Tensor  # compute dtype
    coef: torch.Tensor  # compute dtype
    y_coef: torch.Tensor | None  # compute dtype; hard targets only

    @staticmethod
    def cat(parts: list[_RowStats]) -> _RowStats:
        if len(parts) == 1:
            return parts[0]
        fields = {}
        for f in dataclasses.fields(_RowStats):
            vals = [getattr(p, f.name) for p in parts]
            fields[f.name] = None if vals[0] is None else torch.cat(vals)
        return _RowStats(**fields)

    def rows(self, sl: slice) -> _RowStats:
        return _RowStats(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[sl]
                for f in dataclasses.fields(_RowStats)
            }
        )


def _owned_targets(target: torch.Tensor, opts: CrossEntropyOptions, layout: _Layout):
    """``(active, owned, local_index)`` for hard targets, each ``(n,)``.

    ``owned`` marks the rows whose (non-ignored) target class lives on this
    rank; ``local_index`` is its column here (0 elsewhere, masked by ``owned``).
    """
    active = target != opts.ignore_index
    local = target - layout.start
    owned = active & (local >= 0) & (local < layout.width)
    return active, owned, torch.where(owned, local, torch.zeros_like(local))


def _masked_neg_sum(w: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
    """``sum_c w_c * (-z_c)``, as float64, with ``0 * inf := 0`` where ``w_c = 0``.

    ``-z = shift - x' >= 0``, so this is a sum of non-negative terms and the
    ``-inf`` logits of classes with zero weight contribute nothing.
    """
    if w is None:
        return torch.sum(z, dim=1).neg_().to(torch.float64)
    terms = torch.where(w == 0, torch.zeros((), dtype=z.dtype, device=z.device), w * z)
    return torch.sum(terms, dim=1).neg_().to(torch.float64)


def _forward_rows(
    x: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    opts: CrossEntropyOptions,
    comm: _Comm,
    layout_or_header: _Layout | torch.Tensor,
    all_targets: torch.Tensor | None = None,
):
    """Loss and gradient statistics of a block of rows: exactly two all-reduces.

    Parameters
    ----------
    x : Tensor of shape (n, V_local)
        Local logits after the softcap, in the compute dtype.
    target : Tensor of shape (n,) int64, or (n, V_local) probabilities
    weight : Tensor of shape (V_local,) or None
        This rank's slice of the class weights, compute dtype.
    layout_or_header : _Layout, or this rank's header column on the first call
        On the first call the header (:data:`_HEADER`: widths, starts, row
        counts, options, ...) rides at the front of the ``MAX`` all-reduce,
        which checks that the ranks agree and resolves the layout without a
        separate all-gather.
    all_targets : Tensor of shape (N,), optional
        Every hard label of the call, range-checked once the global class
        count is known (on the first call only).

    Returns
    -------
    stats : _RowStats
    layout : _Layout
    e : Tensor of shape (n, V_local)
        ``exp(x' - shift)``, a fresh buffer the gradient may overwrite.
    """
    n, width = x.shape
    dev, cdtype, f64 = x.device, x.dtype, torch.float64
    soft = target.dtype.is_floating_point
    eps, zeta = opts.label_smoothing, opts.z_loss

    # ---- collective 1: MAX of the row maxima (after the header on the first call)
    resolve = not isinstance(layout_or_header, _Layout)
    n_head = len(_HEADER) * comm.world if resolve else 0
    buf = torch.empty(n_head + n, dtype=f64, device=dev)
    if resolve:
        buf[:n_head] = _header_slots(layout_or_header, comm).reshape(-1)
    buf[n_head:] = x.amax(dim=1) if width else -math.inf
    comm.all_reduce(buf, dist.ReduceOp.MAX)
    layout = (
        _resolve_layout(buf[:n_head].view(len(_HEADER), comm.world), comm, width)
        if resolve
        else layout_or_header
    )
    row_max = buf[n_head:]
    # Rows of all -inf get shift 0: (-inf) - (-inf) would be NaN.
    shift = torch.where(row_max == -math.inf, torch.zeros_like(row_max), row_max).to(cdtype)

    if all_targets is not None and not soft:
        # Needs the global class count, known only now; the header checked that
        # every rank holds the same target, so a bad label raises on all of them.
        shape = tuple(all_targets.shape)
        check_hard_target(all_targets, shape, layout.n_classes, opts.ignore_index)

    # ---- local partial sums, one column each, packed for collective 2
    # z = x' - shift <= 0 is kept only where a sum over classes needs it.
    z = x - shift[:, None] if (soft or eps > 0.0) else None  # (n, V_local)
    e = torch.exp(z) if z is not None else (x - shift[:, None]).exp_()
    # Row sums in the compute dtype: torch's cascade summation keeps float32
    # within a few ulps at 10^5 classes, and a float64 cast would cost a copy.
    cols = [torch.sum(e, dim=1).to(f64)]  # S: sum-exp
    if soft:
        wt = target if weight is None else target * weight  # (n, V_local) w_c t_c
        cols.append(torch.sum(wt, dim=1).to(f64))  # A = sum w_c t_c
        cols.append(_masked_neg_sum(wt, z))  # B = sum w_c t_c (shift - x'_c)
    else:
        active, owned, idx = _owned_targets(target, opts, layout)
        x_y = x.gather(1, idx[:, None])[:, 0] if width else torch.zeros(n, dtype=cdtype, device=dev)
        d_y = shift - x_y
        cols.append(torch.where(owned, d_y, torch.zeros_like(d_y)).to(f64))  # shift - x'_y
        if weight is not None:
            w_y = weight[idx] if width else torch.zeros(n, dtype=cdtype, device=dev)
            cols.append(torch.where(owned, w_y, torch.zeros_like(w_y)).to(f64))  # w_y
    if eps > 0.0:
        cols.append(_masked_neg_sum(weight, z))  # Bs = sum w_c (shift - x'_c)
    tail = []
    if eps > 0.0 and weight is not None:
        tail.append(torch.sum(weight, dtype=f64).reshape(1))  # W = sum_c w_c
    packed = torch.cat([torch.stack(cols, dim=1).reshape(-1)] + tail)

    # ---- collective 2: SUM of everything above, in one call
    comm.all_reduce(packed, dist.ReduceOp.SUM)
    k = len(cols)
    g = packed[: n * k].view(n, k)
    v = float(layout.n_classes)
    w_total = packed[n * k] if tail else torch.tensor(v, dtype=f64, device=dev)

    s = g[:, 0]
    has_mass = s > 0
    log_s = torch.log(s)  # -inf on rows of all -inf
    lse = shift.to(f64) + log_s
    lse_term = torch.where(torch.isfinite(lse), 2.0 * zeta * lse, torch.zeros_like(lse))
    smooth = None
    if eps > 0.0:
        smooth = (eps / v) * (g[:, -1] + w_total * log_s)  # eps/V sum_c w_c (lse - x'_c)

    if soft:
        a, b = g[:, 1], g[:, 2]
        loss = (1.0 - eps) * (b + a * log_s) if eps < 1.0 else torch.zeros_like(s)
        if smooth is not None:
            loss = loss + smooth
        if zeta > 0.0:
            loss = loss + zeta * lse**2
        row_w = torch.ones_like(s)
        coef = (1.0 - eps) * a + (eps / v) * w_total + lse_term
        y_coef = None
    else:
        d_y = g[:, 1]
        w_y = g[:, 2] if weight is not None else torch.ones_like(s)
        w_y = torch.where(active, w_y, torch.zeros_like(w_y))
        # A target on a row of all -inf: -log p_y = +inf, not inf - inf.
        nll = torch.where(has_mass, d_y + log_s, torch.full_like(s, math.inf))
        loss = (1.0 - eps) * w_y * nll if eps < 1.0 else torch.zeros_like(s)
        if smooth is not None:
            loss = loss + smooth
        if zeta > 0.0:
            loss = loss + zeta * w_y * lse**2
        loss = torch.where(active, loss, torch.zeros_like(loss))
        row_w = w_y
        coef = (1.0 - eps) * w_y + (eps / v) * w_total + lse_term * w_y
        y_coef = ((1.0 - eps) * w_y).to(cdtype)

    stats = _RowStats(
        loss=loss,
        row_w=row_w,
        shift=shift,
        log_s=torch.where(has_mass, log_s, torch.zeros_like(log_s)).to(cdtype),
        coef=coef.to(cdtype),
        y_coef=y_coef,
    )
    return stats, layout, e


def _grad_rows(
    x: torch.Tensor,
    slope: torch.Tensor | None,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    opts: CrossEntropyOptions,
    layout: _Layout,
    stats: _RowStats,
    row_scale: torch.Tensor,
    e: torch.Tensor | None = None,
) -> torch.Tensor:
    """``row_scale * d loss / d x`` for a block of rows, from local data only.

    With ``p = exp(x' - shift - log_s)`` (the global softmax restricted to this
    rank's columns), ``V`` global classes and ``eps`` the smoothing::

        hard:  g_j = p_j coef - (1-eps) w_y [j = y] - eps w_j / V
        soft:  g_j = p_j coef - w_j ((1-eps) t_j + eps / V)

    then ``g *= sech(x / cap)^2`` under a softcap (``slope``, from
    :func:`~softmaxkit.torch._ops.apply_softcap`). ``coef`` carries the global sums (see
    :func:`_forward_rows`), so no communication is needed here.
    """
    eps, v = opts.label_smoothing, float(layout.n_classes)
    # Every per-row factor folded into one (n,) vector, so the (n, V_local)
    # buffer is touched once for p * coef and once per correction term.
    rs = row_scale.to(x.dtype)
    g = (x - stats.shift[:, None]).exp_() if e is None else e  # e: forward's buffer
    g *= (torch.exp(-stats.log_s) * stats.coef * rs)[:, None]  # p_j coef, scaled
    if target.dtype.is_floating_point:
        t = target if eps == 0.0 else target * (1.0 - eps) + eps / v
        g.addcmul_(t if weight is None else t * weight, rs[:, None], value=-1.0)
    else:
        active, owned, idx = _owned_targets(target, opts, layout)
        if eps > 0.0:  # g -= eps / V * rs w^T, an outer product added in place
            # new_ones, not ones_like(g[0]): an empty batch has no row 0
            w = g.new_ones(g.shape[1]) if weight is None else weight
            g.addr_(rs, w, alpha=-eps / v)
        if layout.width:
            # (p_y - 1)-style correction in the compute dtype (>= float32).
            y_term = torch.where(owned, -stats.y_coef * rs, torch.zeros_like(rs))
            g.scatter_add_(1, idx[:, None], y_term[:, None])
        if not bool(active.all()):  # ignored rows are exactly 0, even with NaN logits
            g.masked_fill_(~active[:, None], 0.0)
    if slope is not None:
        g *= slope
    return g


def _reduce(stats: _RowStats, reduction: str, batch_shape: tuple[int, ...], dtype):
    """The reduced loss, in ``dtype`` (the loss dtype), and the gradient
    multiplier that goes with it (float64).

    ``"mean"`` divides by the summed row weights (target class weights; 1 per
    soft row). If that is 0 (every target ignored) the loss is 0 with zero
    gradient, where torch gives NaN.
    """
    scale = _reduction.loss_scale(reduction, stats.row_w)  # a device scalar: no host sync
    return _reduction.reduce(stats.loss, reduction, scale, batch_shape).to(dtype), scale


# --------------------------------------------------------------------------- validation


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays; float32, bfloat16 and float16 are computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_class_start(class_start: Any) -> int | None:
    if class_start is None:
        return None
    if not isinstance(class_start, numbers.Integral) or isinstance(class_start, bool):
        raise TypeError(f"class_start must be an int or None, got {class_start!r}")
    if class_start < 0:
        raise ValueError(f"class_start must be >= 0, got {class_start}")
    return int(class_start)


def _prepare(
    local_shape: tuple[int, ...],
    target: Any,
    device: torch.device,
    cdtype: torch.dtype,
    ce_options: dict,
    *,
    op: str,
):
    """Validate everything that needs no other rank; ``op`` names the loss in messages.

    A soft target or class weight that requires grad is refused with the one-device losses'
    ValueError: neither gets a gradient here, and ``.grad`` stayed None with no error (audit CK).

    Returns ``(options, target_rows, weight)``: the options with the weight
    removed, targets as ``(N,)`` int64 or ``(N, V_local)`` compute-dtype
    probabilities, and the local class weights as a compute-dtype tensor.
    Hard labels are range-checked later, once the global class count is known.
    """
    width = local_shape[-1]
    weight = ce_options.pop("weight", None)
    known = {"ignore_index", "reduction", "label_smoothing", "z_loss", "softcap"}
    unknown = set(ce_options) - known
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {sorted(unknown)}")
    opts = cross_entropy_options(n_classes=width, **ce_options)
    refuse_differentiated_weight(weight)
    if _composite.differentiated(target):
        raise target_not_differentiable(op)
    w = check_class_weight(weight, width, name="weight (this rank's slice of the class weights)")
    weight_t = None if w is None else torch.as_tensor(w, dtype=cdtype, device=device)

    if not isinstance(target, torch.Tensor):
        target = torch.as_tensor(target)
    if is_integer_dtype(target.dtype) and target.dtype != torch.bool:
        batch = local_shape[:-1]
        if tuple(target.shape) != tuple(batch):
            raise ValueError(
                "target of class indices must have the logits' shape without the class axis: "
                f"expected {tuple(batch)}, got {tuple(target.shape)}"
            )
        target = target.reshape(-1).to(device=device, dtype=torch.int64)
    elif is_floating_dtype(target.dtype):
        check_soft_target(target, local_shape)
        check_soft_ignore_index(opts.ignore_index)
        if not bool(torch.isfinite(target).all()):
            raise ValueError("target probabilities must be finite")
        target = target.reshape(math.prod(local_shape[:-1]), width).to(device=device, dtype=cdtype)
    else:
        raise TypeError(
            f"target must hold integer class indices or floating probabilities, got {target.dtype}"
        )
    return dataclasses.replace(opts, weight=None), target, weight_t


# --------------------------------------------------------------------------- autograd Functions


def _refuse_double_backward() -> None:
    """The class-parallel gradient is built from saved statistics of every
    rank, not from differentiable ops: raise rather than return a gradient
    whose own derivative would be silently wrong."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "class-parallel cross-entropy does not support double backward (create_graph=True); "
            "its gradient is assembled from all-reduced row statistics. Use "
            "softmaxkit.torch.cross_entropy on gathered logits for higher-order derivatives."
        )


def _refuse_transforms(op: str, *tensors: Any) -> None:
    """Refuse ``torch.func`` transforms and forward-mode AD with a message that says what to do.

    The one-device losses run as composite torch ops there
    (:func:`softmaxkit.torch._composite.transforms_active`); these cannot: each
    call issues collectives across the ranks and reads the all-reduced header
    on the host, neither of which a batched or dual tensor allows. Without this
    check torch raised its internal "must override the setup_context
    staticmethod" error (audit). Checked before any collective, so ranks that
    all run under the transform raise together. Not under ``torch.compile``,
    which these losses pass with graph breaks.
    """
    if not compiling() and _composite.transforms_active(*tensors):
        raise RuntimeError(
            f"{op} does not support torch.func transforms (vmap, grad, jacrev, jvp, ...) or "
            "forward-mode AD: its collectives and the host-side checks of their results cannot run "
            "on batched or dual tensors. Use regular autograd (loss.backward() or "
            "torch.autograd.grad) on every rank; for per-sample gradients or forward-mode AD on one "
            "device, softmaxkit.torch.cross_entropy and linear_cross_entropy run under torch.func"
        )


class _ClassParallelCrossEntropy(torch.autograd.Function):
    """Forward: two all-reduces. Backward: local, from the saved row statistics."""

    @staticmethod
    def forward(ctx, local_logits, target, weight, opts, comm, header, loss_dtype, cdtype):
        batch_shape = tuple(local_logits.shape[:-1])
        width = local_logits.shape[-1]
        # Explicit row count: reshape(-1, 0) is ambiguous for an empty slice.
        x = local_logits.reshape(math.prod(batch_shape), width)
        x = x.to(cdtype)
        x, _ = apply_softcap(x, opts.softcap, want_slope=False)
        stats, layout, _ = _forward_rows(
            x, target, weight, opts, comm, header, all_targets=target
        )
        loss, scale = _reduce(stats, opts.reduction, batch_shape, loss_dtype)
        ctx.save_for_backward(local_logits, target, weight)
        ctx.stats, ctx.opts, ctx.layout, ctx.scale, ctx.cdtype = stats, opts, layout, scale, cdtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        _refuse_double_backward()
        local_logits, target, weight = ctx.saved_tensors
        opts, stats = ctx.opts, ctx.stats
        x = local_logits.reshape(stats.loss.shape[0], local_logits.shape[-1])
        x, slope = apply_softcap(x.to(ctx.cdtype), opts.softcap, want_slope=True)
        # "none": the upstream gradient is per row; "mean"/"sum": a scalar.
        row_scale = (grad_loss.reshape(-1).to(torch.float64) * ctx.scale).expand(x.shape[0])
        g = _grad_rows(x, slope, target, weight, opts, ctx.layout, stats, row_scale)
        return g.reshape(local_logits.shape).to(local_logits.dtype), None, None, None, None, None, None, None


def class_parallel_cross_entropy(
    local_logits: torch.Tensor,
    target: Any,
    *,
    group: Any = None,
    class_start: int | None = None,
    loss_dtype: torch.dtype | None = None,
    **ce_options: Any,
) -> torch.Tensor:
    r"""Cross-entropy over classes split across the ranks of a process group.

    Rank ``r`` holds the logits of the classes ``[start_r, start_r + V_r)``;
    the result equals :func:`softmaxkit.cross_entropy` of the full ``(N, V)``
    logits on every rank, and the gradient of ``local_logits`` is exactly this
    rank's columns of the full gradient.

    Parameters
    ----------
    local_logits : Tensor of shape (..., V_local)
        This rank's class slice of the logits, class axis last. The slices may
        have different widths (even 0) on different ranks. float32 and float64
        are computed in their own precision; float16 and bfloat16 in float32
        and returned in the input dtype, or in float32 under ``torch.autocast``
        for their device, as torch and :func:`softmaxkit.torch.cross_entropy`
        do. Probabilities of a wider dtype than the logits promote the loss's
        dtype and precision, also as there.
    target : Tensor
        Either integer class indices of shape ``(...)`` in *global* class
        numbering, identical on every rank; or probabilities of shape
        ``(..., V_local)``: this rank's columns of the full soft target.
        Soft targets are not differentiated: one that requires grad raises a
        ``ValueError`` (pass ``target.detach()``), as for
        :func:`softmaxkit.torch.linear_cross_entropy`.
    group : ProcessGroup, optional, keyword-only
        Default: the default group. If ``torch.distributed`` is not
        initialised, the call runs as a single rank that holds every class.
    class_start : int, optional, keyword-only
        Global index of this rank's first class. If None on every rank, rank
        ``r`` owns the slice that follows those of ranks ``0..r-1``. Given on
        every rank, the slices may sit in any order but must tile ``[0, V)``.
    loss_dtype : torch.dtype, optional, keyword-only
        The dtype of the returned loss, and so of its upstream gradient: a
        floating dtype at least as wide as the logits', the same on every
        rank. Default: the single-process loss's dtype (the logits', float32
        for 16-bit logits under autocast). ``torch.float32`` for 16-bit logits
        keeps the loss, and a scale such as ``1 / num_items``, from being
        rounded to 16 bits, as ``loss_dtype`` of
        :func:`softmaxkit.torch.linear_cross_entropy` does. The gradient stays
        in the logits' dtype.
    **ce_options
        ``weight``, ``ignore_index``, ``reduction``, ``label_smoothing``,
        ``z_loss``, ``softcap`` as in :func:`softmaxkit.cross_entropy`, with
        one difference: ``weight`` is **this rank's slice** of the class
        weights, shape ``(V_local,)``, like the logits. Each rank thus stores
        only what it owns; the target's weight and ``sum(weight)`` travel in
        the packed all-reduce. Class weights are constants: a ``weight`` that
        requires grad raises a ``ValueError``, as for the one-device losses.

    Returns
    -------
    loss : Tensor
        A scalar for ``"mean"``/``"sum"``, shape ``(...)`` for ``"none"``; the
        same value on every rank, in ``loss_dtype`` (default: as above).

    Raises
    ------
    TypeError, ValueError
        As :func:`softmaxkit.cross_entropy`. A label outside ``[0, V)``,
        slices that do not tile ``[0, V)``, and ranks that disagree on the
        hard targets, the options (``loss_dtype`` included), the target kind
        or whether ``weight`` is given raise the same ``ValueError`` on every
        rank at once (the first all-reduce carries a header of these; the hard
        targets travel as a position-weighted sum, which any one changed label
        changes, and a 52-bit hash, which other differences fail to change with
        a probability of about ``2**-52``). A rank whose own inputs fail a
        local check (the weight slice, a soft-target slice) raises that error
        after joining the first all-reduce, and the other ranks raise a
        ``ValueError`` naming it, rather than wait for it. Different row
        counts ``N`` on different ranks make the first all-reduce's sizes
        differ, which gloo aborts (the header cannot arrive): pass the same
        rows everywhere; :func:`class_parallel_linear_cross_entropy` with the
        default ``chunk_size`` names them.
    RuntimeError
        Under ``torch.func`` transforms (``vmap``, ``grad``, ``jvp``, ...) and
        forward-mode AD, which the one-device losses run as composite ops: the
        collectives cannot run on batched or dual tensors. Use regular autograd.
        Under ``torch.compile`` both class-parallel losses run with graph
        breaks (the header is checked on the host), so not with ``fullgraph=True``.

    Notes
    -----
    With the softcapped logits ``x'``, the global row max ``m``, the global
    sums over all ``V`` classes ``S = sum_c exp(x'_c - m)``, and
    ``log p_c = x'_c - m - log S``, the per-row hard-target loss is::

        (1 - eps) w_y (m - x'_y + log S)
          + eps / V * (sum_c w_c (m - x'_c) + W log S)     # W = sum_c w_c
          + z_loss * w_y * (m + log S)**2

    which is torch's label smoothing (weights included; Megatron-LM's
    vocab-parallel loss used the local class count here, its issue 737) plus
    the PaLM z-loss. Every global quantity is a sum over classes, so each rank
    contributes its columns' partial sums.

    Collectives per forward, **exactly 2 all-reduces and nothing else**:

    1. ``MAX`` of an ``(F * world + N,)`` float64 buffer: a header with
       ``F = 16`` fields per rank, each rank writing its own column (the
       other entries are ``-inf``): its width and class start, row count,
       options and a fingerprint and a hash of the hard targets, which gives every rank
       the global class count and, when ``class_start`` is None, its offset,
       and checks that the ranks agree; then the local row maxima. No
       all-gather is needed.
    2. ``SUM`` of an ``(N * k [+ 1],)`` float64 buffer with ``k`` per-row
       columns: ``S``; for hard targets ``m - x'_y`` (from the rank that owns
       ``y``) and ``w_y`` (with weights); for soft targets ``sum_c w_c t_c``
       and ``sum_c w_c t_c (m - x'_c)``; with smoothing ``sum_c w_c (m - x'_c)``;
       and with weights and smoothing one scalar ``W``. ``k <= 4``.

    The backward pass issues no collective: ``p`` restricted to the local
    columns is ``exp(x' - m - log S)`` from the saved row statistics.

    If the logits come from a replicated ``hidden`` (``local_logits = hidden
    @ local_weight.T``), the gradient of ``hidden`` is a partial sum on each
    rank and must be all-reduced (Megatron's "copy to model-parallel region");
    :func:`class_parallel_linear_cross_entropy` does that for you.

    Rows of all ``-inf`` give ``+inf`` for a non-ignored hard target, and the
    ``"mean"`` of a batch whose targets are all ignored is 0 with zero
    gradient, as in :func:`softmaxkit.cross_entropy`. Tested on the ``gloo``
    backend; ``nccl`` uses the same two calls and is untested here.

    References
    ----------
    Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language
    Models Using Model Parallelism", 2019 (vocab-parallel cross-entropy).
    NVIDIA/Megatron-LM issue 737 (label smoothing with sharded classes).

    Examples
    --------
    Without a process group, one rank holds every class:

    >>> import torch
    >>> from softmaxkit.torch.distributed import class_parallel_cross_entropy
    >>> loss = class_parallel_cross_entropy(torch.tensor([[0.03, 1.92]]), torch.tensor([1]))
    >>> round(float(loss), 4)
    0.1407

    On each of two ranks (``torchrun --nproc-per-node 2``), rank ``r`` holding
    classes ``[4 r, 4 r + 4)`` of 8::

        local = full_logits[:, 4 * rank : 4 * rank + 4].requires_grad_()
        loss = class_parallel_cross_entropy(local, target, label_smoothing=0.1)
        loss.backward()        # local.grad == full_grad[:, 4 * rank : 4 * rank + 4]
    """
    _refuse_transforms("class_parallel_cross_entropy", local_logits, target)
    comm = _Comm.of(group)
    try:
        check_floating(local_logits, "local_logits")
        if local_logits.ndim < 1:
            raise ValueError("local_logits must have at least 1 dimension (the class axis)")
        class_start = _check_class_start(class_start)
        if not isinstance(target, torch.Tensor):
            target = torch.as_tensor(target)
        # The single-process loss's dtype, which it is computed in (at least float32): float32
        # for 16-bit logits under torch.autocast (cross-entropy is on autocast's float32 list),
        # promoted by wider probability targets.
        natural = _composite.loss_dtype(local_logits, target, soft=is_floating_dtype(target.dtype))
        loss_dtype = check_loss_dtype(loss_dtype, local_logits.dtype) or natural
        cdtype = _compute_dtype(natural)
        opts, target_rows, weight = _prepare(
            tuple(local_logits.shape), target, local_logits.device, cdtype, dict(ce_options),
            op="class_parallel_cross_entropy",
        )
    except (TypeError, ValueError):
        shape = tuple(getattr(local_logits, "shape", ()))
        _join_after_local_error(comm, math.prod(shape[:-1]), getattr(local_logits, "device", None))
        raise
    header = _header_column(
        target=target_rows, opts=opts, has_weight=weight is not None,
        width=local_logits.shape[-1], class_start=class_start, loss_dtype=loss_dtype,
    )
    # Autocast off inside: the compute dtype is chosen above, not op by op.
    return without_autocast(_ClassParallelCrossEntropy.apply)(
        local_logits, target_rows, weight, opts, comm, header, loss_dtype, cdtype
    )


# --------------------------------------------------------------------------- linear + CE


def _check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if not isinstance(chunk_size, numbers.Integral) or isinstance(chunk_size, bool):
        raise TypeError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    return int(chunk_size)


def _chunk_plan(
    n_rows: int, width: int, itemsize: int, chunk_size: int | None, comm: _Comm, header: torch.Tensor
) -> tuple[int, _Layout | torch.Tensor]:
    """Token rows per chunk (``chunk_size``, or the single-process memory budget
    for the widest rank's slice), and the layout, or the header still to send.

    Every rank must run the same chunks, since each chunk issues collectives:
    a plan from the local width alone gave ranks of different widths different
    chunk counts and sizes (gloo aborts on the mismatched all-reduce; NCCL may
    hang). With the default ``chunk_size`` the widest slice comes from the
    header, sent alone in a ``MAX`` all-reduce of fixed size: its checks then
    hold even where the ranks' row counts differ. With an explicit
    ``chunk_size`` the header rides the first chunk's row-max all-reduce.
    """
    if chunk_size is not None:
        return chunk_size, header
    slots = comm.all_reduce(_header_slots(header, comm), dist.ReduceOp.MAX)
    layout = _resolve_layout(slots, comm, width)
    return chunk_rows(n_rows, layout.widest, itemsize * _LIVE_CHUNK_ARRAYS, CHUNK_BYTES), layout


def _gemm_operands(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """``tensors`` in the dtype the GEMMs run in (:func:`softmaxkit.torch._linear.gemm_dtype`), as the
    single-process loss runs them: float32 for 16-bit input on a CPU without bf16 GEMMs. A bf16 GEMM
    there rounded the logits to bf16, 1.6e-3 off the single-process loss (tests/test_distributed_loss_dtype
    on an AVX2 CPU), where the single-process loss is within 2e-8 of float64."""
    first = next(t for t in tensors if t is not None)
    dtype = gemm_dtype(first.dtype, first.device)
    return tuple(None if t is None else t.to(dtype) for t in tensors)


def _local_logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, cdtype, cap, *, want_slope):
    """``softcap(h @ w.T + b)`` for one chunk, in the compute dtype, and the softcap's slope."""
    h, w, b = _gemm_operands(h, w, b)
    z = h @ w.t() if b is None else torch.addmm(b, h, w.t())
    return apply_softcap(z.to(cdtype), cap, want_slope=want_slope)


class _LinearPass:
    """One chunked sweep over the tokens; gradients into preallocated buffers.

    ``grad_hidden`` is a partial sum over this rank's classes; the caller
    all-reduces it once after the sweep. ``grad_weight``/``grad_bias`` are
    accumulated in float32 (float64 for float64 input) across chunks.
    """

    def __init__(self, hidden, weight, bias, want):
        n, d = hidden.shape
        width = weight.shape[0]
        self.acc_dtype = _compute_dtype(hidden.dtype)
        dev = hidden.device
        self.gh = torch.zeros(n, d, dtype=self.acc_dtype, device=dev) if want[0] else None
        self.gw = torch.zeros(width, d, dtype=self.acc_dtype, device=dev) if want[1] else None
        self.gb = (
            torch.zeros(width, dtype=self.acc_dtype, device=dev)
            if want[2] and bias is not None
            else None
        )
        self.hidden, self.weight = hidden, weight

    def add(self, rows: slice, g: torch.Tensor) -> None:
        """Accumulate the gradients of the chunk ``rows`` with logits gradient ``g``."""
        # low-precision GEMMs run in the input dtype where it has native GEMMs (AMX, CUDA), else in float32
        h, w = _gemm_operands(self.hidden[rows], self.weight)
        gl = g.to(h.dtype)
        if self.gh is not None:
            self.gh[rows] = gl @ w
        if self.gw is not None:
            if gl.dtype == self.acc_dtype:
                self.gw.addmm_(gl.t(), h)
            else:
                self.gw += (gl.t() @ h).to(self.acc_dtype)
        if self.gb is not None:
            self.gb += g.sum(dim=0, dtype=self.acc_dtype)


class _ClassParallelLinearCrossEntropy(torch.autograd.Function):
    """Chunked ``hidden @ local_weight.T`` + class-parallel CE.

    ``"mean"``/``"sum"``: the gradients are computed in the forward (the
    upstream gradient is a scalar, so backward only scales them).
    ``"none"``: the forward keeps only per-row statistics and the backward
    recomputes each chunk's logits with the per-row upstream gradient, because
    ``grad_weight = sum_i g_i (dl_i/dz_i) h_i^T`` cannot be rescaled per row
    after the sum, and keeping per-row gradients would take ``(N, V_local)``
    memory. That costs one extra GEMM per chunk and no extra collective for the
    statistics (they are the global ones of the forward).
    """

    @staticmethod
    def forward(
        ctx, hidden, weight, bias, target, cweight, opts, comm, layout_or_header, rows, want, loss_dtype
    ):
        n = hidden.shape[0]
        cdtype = _compute_dtype(hidden.dtype)
        eager = opts.reduction != "none" and any(want)
        acc = _LinearPass(hidden, weight, bias, want) if eager else None
        parts = []
        for lo in range(0, max(n, 1), rows):
            sl = slice(lo, min(lo + rows, n))
            x, slope = _local_logits(hidden[sl], weight, bias, cdtype, opts.softcap, want_slope=acc is not None)
            check = target if lo == 0 else None  # labels are range-checked once
            stats, layout_or_header, e = _forward_rows(
                x, target[sl], cweight, opts, comm, layout_or_header, all_targets=check
            )
            parts.append(stats)
            if acc is not None:
                ones = torch.ones(x.shape[0], dtype=cdtype, device=x.device)
                g = _grad_rows(x, slope, target[sl], cweight, opts, layout_or_header, stats, ones, e)
                acc.add(sl, g)
            del x, slope, e
        stats = _RowStats.cat(parts)
        loss, scale = _reduce(stats, opts.reduction, (n,), loss_dtype)
        if acc is not None:
            for buf in (acc.gh, acc.gw, acc.gb):
                if buf is not None and opts.reduction == "mean":  # "sum": the factor is 1
                    buf *= scale.to(buf.dtype)
            if acc.gh is not None:
                comm.all_reduce(acc.gh, dist.ReduceOp.SUM)  # the one grad_hidden all-reduce
            ctx.grads = (acc.gh, acc.gw, acc.gb)
            ctx.save_for_backward()
        else:
            ctx.save_for_backward(hidden, weight, bias, target, cweight)
        ctx.stats, ctx.opts, ctx.layout, ctx.comm = stats, opts, layout_or_header, comm
        ctx.rows, ctx.want, ctx.dtypes = rows, want, (hidden.dtype, weight.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        _refuse_double_backward()
        if ctx.opts.reduction != "none":
            gh, gw, gb = ctx.grads
            # grad_loss comes in the loss dtype (float32 with loss_dtype=torch.float32): the
            # float32 accumulators take a 1 / num_items upstream without a 16-bit rounding.
            s = grad_loss.to(gh.dtype if gh is not None else (gw if gw is not None else gb).dtype)
            grads = [None if t is None else (t * s) for t in (gh, gw, gb)]
        else:
            hidden, weight, bias, target, cweight = ctx.saved_tensors
            acc = _LinearPass(hidden, weight, bias, ctx.want)
            cdtype = _compute_dtype(hidden.dtype)
            row_scale = grad_loss.reshape(-1).to(cdtype)
            n = hidden.shape[0]
            for lo in range(0, n, ctx.rows):
                sl = slice(lo, min(lo + ctx.rows, n))
                x, slope = _local_logits(hidden[sl], weight, bias, cdtype, ctx.opts.softcap, want_slope=True)
                stats = ctx.stats.rows(sl)
                g = _grad_rows(
                    x, slope, target[sl], cweight, ctx.opts, ctx.layout, stats, row_scale[sl]
                )
                acc.add(sl, g)
            if acc.gh is not None:
                ctx.comm.all_reduce(acc.gh, dist.ReduceOp.SUM)  # the one grad_hidden all-reduce
            grads = [acc.gh, acc.gw, acc.gb]
        h_dtype, w_dtype = ctx.dtypes
        out = [
            None if grads[0] is None else grads[0].to(h_dtype),
            None if grads[1] is None else grads[1].to(w_dtype),
            None if grads[2] is None else grads[2].to(w_dtype),
        ]
        return (*out, None, None, None, None, None, None, None, None)


def class_parallel_linear_cross_entropy(
    hidden: torch.Tensor,
    local_weight: torch.Tensor,
    target: Any,
    *,
    local_bias: torch.Tensor | None = None,
    group: Any = None,
    class_start: int | None = None,
    chunk_size: int | None = None,
    loss_dtype: torch.dtype | None = None,
    **ce_options: Any,
) -> torch.Tensor:
    r"""``class_parallel_cross_entropy(hidden @ local_weight.T + local_bias, target)``
    without ever holding the ``(N, V_local)`` logits.

    Parameters
    ----------
    hidden : Tensor of shape (..., D)
        The same on every rank (the output of a replicated trunk). Leading
        dimensions, such as ``(B, T, D)``, are flattened to ``N`` rows, as by
        :func:`softmaxkit.torch.linear_cross_entropy`.
    local_weight : Tensor of shape (V_local, D)
        This rank's rows of the ``(V, D)`` output weight; same dtype as
        ``hidden``, except under ``torch.autocast`` for their device, which
        casts both (and the bias) to its dtype as for ``F.linear``, with a
        float32 loss by default: as :func:`softmaxkit.torch.linear_cross_entropy`.
    target : Tensor of shape (...) int, or (..., V_local) probabilities
        ``hidden``'s leading shape; as :func:`class_parallel_cross_entropy`.
    local_bias : Tensor of shape (V_local,), optional, keyword-only
        In ``local_weight``'s dtype: another raises the ``TypeError`` of
        :func:`softmaxkit.torch.linear_cross_entropy`, and the other ranks a
        ``ValueError`` naming this one.
    group, class_start : keyword-only
        As :func:`class_parallel_cross_entropy`.
    chunk_size : int, optional, keyword-only
        Token rows per chunk, the same on every rank. Default: as many as keep
        one chunk's logits and their temporaries on the widest rank within
        :data:`softmaxkit.linear.CHUNK_BYTES`, the budget of the
        single-process fused loss.
    loss_dtype : torch.dtype, optional, keyword-only
        As :func:`class_parallel_cross_entropy` and
        :func:`softmaxkit.torch.linear_cross_entropy`: the dtype of the
        returned loss and of its upstream gradient, at least as wide as
        ``hidden``'s, the same on every rank; default ``hidden``'s dtype. The
        gradients stay in their inputs' dtypes.
    **ce_options
        As :func:`class_parallel_cross_entropy` (``weight`` is the local slice).

    Returns
    -------
    loss : Tensor
        As :func:`softmaxkit.linear_cross_entropy` of the full weight, on every
        rank: a scalar for ``"mean"``/``"sum"``, ``hidden.shape[:-1]`` for
        ``"none"``; in ``loss_dtype`` (default: ``hidden``'s dtype).

    Raises
    ------
    TypeError, ValueError
        As :func:`class_parallel_cross_entropy`.
    RuntimeError
        Under ``torch.func`` transforms or forward-mode AD, as
        :func:`class_parallel_cross_entropy`.

    Notes
    -----
    Per token chunk of ``c`` rows, each rank computes its ``(c, V_local)``
    logits, runs the two all-reduces of :func:`class_parallel_cross_entropy`
    on them, and (for ``"mean"``/``"sum"``) turns them straight into its
    gradient contributions::

        grad_hidden[chunk] = g @ local_weight          # partial: local classes only
        grad_weight       += g.T @ hidden[chunk]        # float32 accumulator
        grad_bias         += g.sum(0)

    Collectives per call, with ``K = ceil(N / chunk)`` chunks:

    * before: with the default ``chunk_size``, one ``MAX`` all-reduce of the
      fixed-size header of :func:`class_parallel_cross_entropy` (widths for
      the chunk plan, so that every rank runs the same chunks; row counts,
      options, whether ``hidden`` requires grad), which then does not ride
      the first chunk. So ranks that disagree, even on ``N``, raise the same
      ``ValueError`` together; with an explicit ``chunk_size`` the header
      rides the first chunk and different ``N`` are named only where the
      first chunks have the same size (gloo aborts otherwise);
    * forward: ``2 K`` all-reduces of ``O(chunk)`` floats (row max; packed sums),
      plus for ``"mean"``/``"sum"`` **one** ``SUM`` all-reduce of the
      ``(N, D)`` partial ``grad_hidden`` (only if ``hidden`` requires grad);
    * backward: none for ``"mean"``/``"sum"`` (the saved gradients are scaled
      by the upstream scalar); for ``"none"`` the backward recomputes the
      chunks with the per-row upstream gradient and issues the one
      ``grad_hidden`` all-reduce there.

    So ``grad_hidden`` is complete and identical on every rank, and a
    replicated trunk below it stays in sync without further communication.
    Every rank must run the backward (the ``grad_hidden`` all-reduce is
    collective); ranks that disagree on whether ``hidden`` requires grad (one
    under ``torch.no_grad()``, or with a detached ``hidden``) raise in the
    forward. Memory beyond the gradients is one chunk's logits and
    temporaries. Gradients are computed only when grad mode is on and the
    input requires grad; ``"none"`` pays one extra GEMM per chunk in the
    backward. Tested on ``gloo``; ``nccl`` untested here.

    References
    ----------
    Shoeybi et al., 2019 (Megatron-LM); Wijmans et al., "Cut Your Losses in
    Large-Vocabulary Language Models", 2024 (never materialise the logits).
    """
    _refuse_transforms("class_parallel_linear_cross_entropy", hidden, local_weight, local_bias, target)
    comm = _Comm.of(group)
    # As F.cross_entropy(F.linear(...)) and softmaxkit.torch.linear_cross_entropy under
    # torch.autocast: 16-bit GEMM operands (a differentiable cast, so each gradient comes back
    # in its input's dtype) and a float32 loss by default. Outside autocast: unchanged.
    hidden, local_weight, local_bias, loss_dtype = autocast_inputs(hidden, local_weight, local_bias, loss_dtype)
    try:
        chunk_size = _check_chunk_size(chunk_size)
        _check_linear_shapes(hidden, local_weight)
        if hidden.dtype != local_weight.dtype:
            raise TypeError(
                f"hidden and local_weight must have the same dtype, got {hidden.dtype} and "
                f"{local_weight.dtype}"
            )
        if local_bias is not None:
            if tuple(local_bias.shape) != (local_weight.shape[0],):
                raise ValueError(
                    f"local_bias must have shape ({local_weight.shape[0]},), got {tuple(local_bias.shape)}"
                )
            # The single-process rule and TypeError (F.linear refuses it too; a silent cast rounded a wider bias).
            check_bias_dtype(local_bias, local_weight.dtype, name="local_bias", weight_name="local_weight")
        class_start = _check_class_start(class_start)
        loss_dtype = check_loss_dtype(loss_dtype, hidden.dtype) or hidden.dtype
        width = local_weight.shape[0]
        cdtype = _compute_dtype(hidden.dtype)
        batch_shape = tuple(hidden.shape[:-1])
        opts, target_rows, cweight = _prepare(
            (*batch_shape, width), target, hidden.device, cdtype, dict(ce_options),
            op="class_parallel_linear_cross_entropy",
        )
    except (TypeError, ValueError):
        # The other ranks' first collective: the header alone (default chunks),
        # or with the first chunk's row maxima.
        n = math.prod(getattr(hidden, "shape", (0,))[:-1]) if getattr(hidden, "ndim", 0) else 0
        first = min(chunk_size, n) if isinstance(chunk_size, int) and chunk_size > 0 else 0
        _join_after_local_error(comm, first, getattr(hidden, "device", None))
        raise
    # (..., D) -> (N, D) rows, as linear_cross_entropy; the reshape carries grad_hidden back.
    hidden = hidden.reshape(target_rows.shape[0], hidden.shape[-1])
    want = grads_wanted(hidden, local_weight, local_bias)  # none under no_grad / inference_mode
    header = _header_column(
        target=target_rows, opts=opts, has_weight=cweight is not None, width=width,
        class_start=class_start, loss_dtype=loss_dtype, chunk_size=chunk_size, grad_hidden=want[0],
    )
    itemsize = torch.finfo(cdtype).bits // 8
    rows, layout_or_header = _chunk_plan(hidden.shape[0], width, itemsize, chunk_size, comm, header)
    # Autocast off inside (inputs already cast above): the compute dtypes are the pass's own.
    loss = without_autocast(_ClassParallelLinearCrossEntropy.apply)(
        hidden, local_weight, local_bias, target_rows, cweight, opts, comm, layout_or_header, rows,
        want, loss_dtype,
    )
    return loss.reshape(batch_shape) if opts.reduction == "none" else loss


def _check_linear_shapes(hidden: torch.Tensor, local_weight: torch.Tensor) -> None:
    """``hidden`` ``(..., D)`` and ``local_weight`` ``(V_local, D)``, both floating:
    the shapes :func:`softmaxkit.torch.linear_cross_entropy` takes."""
    for name, t in (("hidden", hidden), ("local_weight", local_weight)):
        check_floating(t, name)
    if hidden.ndim < 1:
        raise ValueError("hidden must have shape (..., D), got a scalar")
    if local_weight.ndim != 2:
        raise ValueError(f"local_weight must have shape (V_local, D), got {tuple(local_weight.shape)}")
    if hidden.shape[-1] != local_weight.shape[1]:
        raise ValueError(
            f"hidden (..., D) and local_weight (V_local, D) must share D: got "
            f"{tuple(hidden.shape)} and {tuple(local_weight.shape)}"
        )
