"""Fused linear + cross-entropy for tensors: the torch backend of the chunk
loop in :mod:`softmaxkit.linear`, and its autograd Function.

Precision policy (per input dtype):

=========  ===============  ===========  ================================
input      GEMMs            CE kernel    weight/bias gradient accumulator
=========  ===============  ===========  ================================
float64    float64          float64      float64 (the output itself)
float32    float32          float32      float32 (the output itself)
bfloat16   bf16 if native,  float32      float32, cast to bf16 at the end
float16    else float32     float32      float32, cast at the end
=========  ===============  ===========  ================================

"Native" means CUDA, or a CPU with AMX-BF16 / AVX512-BF16 (read from
``/proc/cpuinfo``; :data:`NATIVE_BF16_GEMM` overrides). Without them torch
runs bf16 GEMMs by emulation, several times slower than float32, so the
GEMMs run in float32 on upcast operands. Where ``N <= V`` that pass runs over
vocabulary tiles (:func:`softmaxkit.linear.plan_upcast_tiles`): only one
tile of the weight is upcast at a time and each tile's weight gradient is
written once, straight into the 16-bit output, so the float32 shadows are
those of ``hidden`` and its gradient (``2 N D`` floats) rather than those of
the weight and its gradient (``2 V D``). Elsewhere (``N > V``, or an explicit
``chunk_size``) token chunks upcast the weight once and accumulate its
gradient in float32.

With native bf16 GEMMs, thin token chunks (a large vocabulary) give way to
vocabulary tiles over all tokens (:func:`softmaxkit.linear.plan_native_low_tiles`):
bf16 GEMMs, each tile's weight gradient one GEMM written once into the bf16
output, ``grad_hidden`` summed over tiles in float32.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import torch

from softmaxkit import _reduction
from softmaxkit._validation import cross_entropy_options, prepare_target, target_kind
from softmaxkit.linear import (
    PassPlan,
    _ce_options,
    check_linear_inputs,
    plan_native_low_tiles,
    plan_pass,
    run_chunks,
    run_vocab_tiles,
    vocab_tiles_available,
)
from softmaxkit.torch import _backend, _composite, _custom_ops
from softmaxkit.torch._cross_entropy import (
    Problem,
    class_weight_tensor,
    compiling,
    grads_wanted,
    kernel_options,
    refuse_jit_trace,
    target_not_differentiable,
)
from softmaxkit.torch._tensors import LOW_PRECISION, compute_dtype

#: None: detect; True/False: force bf16 GEMMs for bfloat16 input on CPU on/off.
NATIVE_BF16_GEMM: bool | None = None

#: Rows of the weight gradient updated per low-precision GEMM (keeps its
#: 16-bit temporary, ``_WGRAD_BLOCK * D`` elements, in L2; CPU torch has no
#: bf16 x bf16 -> float32 GEMM to accumulate into float32 directly).
_WGRAD_BLOCK = 1024


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16_gemm() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def gemm_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype the three GEMMs run in for ``dtype`` input on ``device``."""
    if dtype in (torch.float32, torch.float64):
        return dtype
    if device.type != "cpu":
        return dtype
    native = _cpu_has_bf16_gemm() if NATIVE_BF16_GEMM is None else NATIVE_BF16_GEMM
    return dtype if (dtype == torch.bfloat16 and native) else torch.float32


@dataclass(frozen=True)
class LinearProblem:
    """A validated linear cross-entropy call."""

    problem: Problem  # options and target kind (axis is the last one)
    n_rows: int
    plan: PassPlan | None  # token chunks or vocabulary tiles (CPU, float32/float64); None while traced
    chunk_size: int | None = None  # as given (the custom op re-plans from it)
    loss_dtype: torch.dtype | None = None  # the returned loss's dtype; None: hidden's


def check_loss_dtype(loss_dtype: Any, input_dtype: torch.dtype) -> torch.dtype | None:
    """Validate ``loss_dtype=``: None (the input dtype) or a floating torch dtype
    at least as wide as ``input_dtype`` (the option exists to avoid rounding)."""
    if loss_dtype is None:
        return None
    if not isinstance(loss_dtype, torch.dtype) or not loss_dtype.is_floating_point:
        raise TypeError(f"loss_dtype must be a floating-point torch.dtype or None, got {loss_dtype!r}")
    if loss_dtype.itemsize < input_dtype.itemsize or (
        loss_dtype.itemsize == input_dtype.itemsize and loss_dtype != input_dtype
    ):
        raise ValueError(
            f"loss_dtype must be at least as wide as the input dtype {input_dtype}, got {loss_dtype}"
        )
    return loss_dtype


def _autocast_active(device_type: str) -> bool:
    # is_autocast_enabled raises for device types autocast does not know (e.g. "meta")
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def autocast_inputs(hidden, weight, bias, loss_dtype):
    """``(hidden, weight, bias, loss_dtype)`` as ``torch.autocast`` would hand them on.

    Under an active autocast for ``hidden``'s device the fused loss stands for
    ``F.cross_entropy(F.linear(hidden, weight, bias), target)``. ``F.linear`` is
    on autocast's lower-precision list: every floating input except float64 is
    cast to the autocast dtype, by a differentiable cast, so each gradient
    comes back in its own input's dtype (float32 for a float32 head weight
    beside bf16 hidden states). ``cross_entropy`` is on its float32 list: 16-bit
    logits give a float32 loss, the default ``loss_dtype`` then (one given is
    kept). Outside autocast the inputs are returned as they are (a dtype
    mismatch is refused by the checks that follow).
    """
    if not (isinstance(hidden, torch.Tensor) and _autocast_active(hidden.device.type)):
        return hidden, weight, bias, loss_dtype
    dtype = torch.get_autocast_dtype(hidden.device.type)

    def cast(x):
        eligible = isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64
        return x.to(dtype) if eligible else x

    hidden, weight, bias = cast(hidden), cast(weight), cast(bias)
    if loss_dtype is None and hidden.dtype in LOW_PRECISION:
        loss_dtype = torch.float32
    return hidden, weight, bias, loss_dtype


def without_autocast(fn):
    """Run ``fn(hidden, ...)`` with autocast off for ``hidden``'s device.

    The pass's ops choose their own dtypes (:func:`gemm_dtype`, float32
    kernels); an enclosing autocast would run the float32 GEMMs of 16-bit
    input in 16 bits. Inputs arrive already cast (:func:`autocast_inputs`).
    """

    @functools.wraps(fn)
    def wrapper(hidden, *args, **kwargs):
        device_type = hidden.device.type
        active = _autocast_active(device_type)
        with torch.autocast(device_type, enabled=False) if active else contextlib.nullcontext():
            return fn(hidden, *args, **kwargs)

    return wrapper


class _TorchOps:
    """The torch backend of :func:`softmaxkit.linear.run_chunks`.

    Owns one ``(rows, V)`` compute-dtype buffer (plus, for native 16-bit
    GEMMs, one 16-bit buffer of the same shape) and the gradient outputs;
    with vocabulary tiles, one ``(rows, V_tile)`` buffer instead (also the
    backend of :func:`softmaxkit.linear.run_vocab_tiles`).
    """

    def __init__(self, h, w, b, t_rows, problem, scale, plan, needs):
        self.cdtype = compute_dtype(h.dtype)
        self.gdtype = gemm_dtype(h.dtype, h.device)
        self.t, self.options, self.scale = t_rows, problem.options, scale
        self.b = None if b is None else b.to(self.cdtype)
        v = w.shape[0]
        rows, width = plan.rows, (plan.tile_classes if plan.vocab_tiles else v)
        self.buf = torch.empty(rows, width, dtype=self.cdtype, device=h.device)  # reused every chunk
        self.low = None
        if self.gdtype != self.cdtype:
            self.low = torch.empty(rows, width, dtype=self.gdtype, device=h.device)
        need_h, need_w, need_b = needs
        self.want_grads = any(needs)
        # 16-bit input over vocabulary tiles (plan_upcast_tiles): float32 shadows
        # of hidden and its gradient; weight rows upcast one tile at a time.
        upcast_tiles = plan.vocab_tiles and h.dtype != self.gdtype
        # 16-bit input over vocabulary tiles with native 16-bit GEMMs (plan_native_low_tiles):
        # one token block; grad_hidden accumulates in float32, grad_weight is written once per tile.
        self.native_tiles = plan.vocab_tiles and self.low is not None
        self.h = h.to(self.gdtype) if upcast_tiles else h
        self.w = w if (upcast_tiles or w.dtype == self.gdtype) else w.to(self.gdtype)  # (V, D)
        self._w_tile = torch.empty(width, w.shape[1], dtype=self.gdtype, device=h.device) if upcast_tiles else None
        self._w_tile_classes = None  # (v0, v1) held by _w_tile
        # (N, D); vocabulary tiles add into it (one term per tile)
        self.grad_h = None
        if need_h:
            self.grad_h = (
                torch.zeros(h.shape, dtype=self.cdtype, device=h.device) if self.native_tiles
                else torch.zeros_like(self.h) if plan.vocab_tiles
                else torch.empty_like(h)
            )  # fmt: skip
        # Accumulated in the compute dtype (float32/float64) across chunks; with
        # 16-bit tiles each tile's rows come out of one GEMM, written once into
        # the 16-bit output (through the float32 weight tile, no longer needed then).
        # Written once by the one token block, that is: with no rows (N = 0) there
        # is no block and nothing writes it, so it starts at zero then (the gradient
        # of an empty batch), never as uninitialised memory.
        self.grad_w = None
        if need_w and not (upcast_tiles or self.native_tiles):
            self.grad_w = torch.zeros(w.shape, dtype=self.cdtype, device=h.device)
        elif need_w:
            self.grad_w = torch.empty_like(w) if h.shape[0] > 0 else torch.zeros_like(w)
        self.grad_b = (
            torch.zeros(v, dtype=torch.float64, device=h.device) if (need_b and b is not None) else None
        )
        self._h_c = None

    def logits(self, start, stop):
        h_c = self.h[start:stop]
        self._h_c = h_c if h_c.dtype == self.gdtype else h_c.to(self.gdtype)  # (rows, D)
        out = self.buf[: stop - start]
        if self.low is None:
            if self.b is None:
                torch.mm(self._h_c, self.w.T, out=out)
            else:
                torch.addmm(self.b, self._h_c, self.w.T, out=out)
            return out
        low = self.low[: stop - start]
        torch.mm(self._h_c, self.w.T, out=low)
        out.copy_(low)
        if self.b is not None:
            out += self.b
        return out

    def cross_entropy(self, buf, start, stop):
        return _backend.cross_entropy_2d(
            buf, self.t[start:stop], self.options,
            row_scale=None if self.scale is None else self.scale[start:stop],
            grad_out=buf if self.want_grads else None,
        )

    def accumulate_grads(self, g, start, stop):
        h_c = self._h_c
        g_g = g
        if self.low is not None:
            # p_y - 1 was formed in float32 by the kernel; only now round to 16 bits.
            g_g = self.low[: stop - start].copy_(g)
        if self.grad_h is not None:
            dst = self.grad_h[start:stop]
            if dst.dtype == g_g.dtype:
                torch.mm(g_g, self.w, out=dst)
            else:
                dst.copy_(torch.mm(g_g, self.w))  # (rows, D) temporary
        if self.grad_w is not None:
            if g_g.dtype == self.grad_w.dtype:
                self.grad_w.addmm_(g_g.T, h_c)  # (V, D) += (V, rows) @ (rows, D)
            else:
                for v0 in range(0, self.grad_w.shape[0], _WGRAD_BLOCK):
                    blk = slice(v0, v0 + _WGRAD_BLOCK)
                    self.grad_w[blk] += torch.mm(g_g[:, blk].T, h_c)
        if self.grad_b is not None:
            self.grad_b += g.sum(dim=0, dtype=torch.float64)

    def _accumulate_native_tile_grads(self, g, t0, t1, v0, v1):
        """bf16 GEMMs on the tile's gradient, rounded to bf16 once (as torch's dense backward)."""
        g16 = self.low.view(-1)[: g.numel()].view(g.shape).copy_(g)  # the spent bf16 logits tile
        if self.grad_h is not None:
            self.grad_h[t0:t1] += torch.mm(g16, self.w[v0:v1])  # (rows, D) bf16 term, float32 sum
        if self.grad_w is not None:  # one token block (the plan): the tile's whole gradient, once
            torch.mm(g16.T, self.h[t0:t1], out=self.grad_w[v0:v1])
        if self.grad_b is not None:
            self.grad_b[v0:v1] += g.sum(dim=0, dtype=torch.float64)

    def _weight_rows(self, v0, v1):
        """``W[v0:v1]`` in the GEMM dtype: upcast into the reused tile for 16-bit input."""
        if self._w_tile is None:
            return self.w[v0:v1]
        if self._w_tile_classes != (v0, v1):
            self._w_tile[: v1 - v0].copy_(self.w[v0:v1])
            self._w_tile_classes = (v0, v1)
        return self._w_tile[: v1 - v0]

    def tile_logits(self, t0, t1, v0, v1):
        out = self.buf.view(-1)[: (t1 - t0) * (v1 - v0)].view(t1 - t0, v1 - v0)
        if self.native_tiles:  # bf16 GEMM, then float32 logits for the kernels (as the token chunks)
            low = self.low.view(-1)[: out.numel()].view(out.shape)
            torch.mm(self.h[t0:t1], self.w[v0:v1].T, out=low)
            out.copy_(low)
            if self.b is not None:
                out += self.b[v0:v1]
            return out.numpy()
        h_c, w_t = self.h[t0:t1], self._weight_rows(v0, v1)
        if self.b is None:
            torch.mm(h_c, w_t.T, out=out)
        else:
            torch.addmm(self.b[v0:v1], h_c, w_t.T, out=out)
        return out.numpy()  # CPU only: the numba tile kernels work on this view

    def accumulate_tile_grads(self, g, t0, t1, v0, v1):
        g = torch.from_numpy(g)  # the same memory as the tile buffer
        if self.native_tiles:
            self._accumulate_native_tile_grads(g, t0, t1, v0, v1)
            return
        w_t = self._weight_rows(v0, v1)
        if self.grad_h is not None:
            self.grad_h[t0:t1].addmm_(g, w_t)
        if self.grad_w is not None and self._w_tile is None:
            self.grad_w[v0:v1].addmm_(g.T, self.h[t0:t1])
        elif self.grad_w is not None:  # one token block: the tile's whole gradient, in the spent weight tile
            self._w_tile_classes = None
            self.grad_w[v0:v1].copy_(torch.mm(g.T, self.h[t0:t1], out=w_t))
        if self.grad_b is not None:
            self.grad_b[v0:v1] += g.sum(dim=0, dtype=torch.float64)


def _plan(n, v, hidden, chunk_size) -> PassPlan:
    """The pass (token chunks or vocabulary tiles) for ``n`` rows of ``hidden``'s dtype and device, ``v`` classes."""
    cdtype = compute_dtype(hidden.dtype)
    gdtype = gemm_dtype(hidden.dtype, hidden.device)
    per_logit = cdtype.itemsize + (gdtype.itemsize if gdtype != cdtype else 0)
    on_cpu_with_tiles = hidden.device.type == "cpu" and vocab_tiles_available()
    if on_cpu_with_tiles and gdtype == hidden.dtype != cdtype:  # native bf16 GEMMs (AMX)
        plan = plan_native_low_tiles(n, v, hidden.shape[-1], per_logit, chunk_size=chunk_size)
        if plan is not None:
            return plan
    # Vocabulary tiles need the numba kernels (CPU) and float32/float64 GEMMs (or the plan above).
    tiles_possible = on_cpu_with_tiles and gdtype == cdtype
    return plan_pass(
        n, v, per_logit, chunk_size=chunk_size, tiles_possible=tiles_possible,
        upcast_features=hidden.shape[-1] if hidden.dtype != gdtype else None,  # 16-bit, float32 GEMMs
    )  # fmt: skip


def prepare(
    hidden, weight, bias, target, chunk_size, ce_options, *, check_values: bool | None = None, loss_dtype=None
):
    """Validate a call; return ``(problem, flattened targets on hidden's device, class weight or None)``.

    ``check_values`` as in :func:`softmaxkit.torch._cross_entropy.problem_for`;
    ``loss_dtype`` as in :func:`linear_cross_entropy`.
    """
    t = target if isinstance(target, torch.Tensor) else torch.as_tensor(target)
    if t.requires_grad:
        # silently returning no gradient would be wrong; say so instead
        raise target_not_differentiable("linear_cross_entropy")
    n, _, v = check_linear_inputs(hidden, weight, bias, t)
    loss_dtype = check_loss_dtype(loss_dtype, hidden.dtype)
    options = _ce_options(ce_options)
    if "ignore_index" in options and options["ignore_index"] is None:
        options["ignore_index"] = -100  # torch's F.linear_cross_entropy default (2.13): None behaves as -100
    class_weight = options.pop("weight", None)
    opts = cross_entropy_options(n_classes=v, **options)
    if check_values is None:
        check_values = not compiling() and not _composite.needs_composite(hidden, weight, bias)
    cweight = class_weight_tensor(class_weight, v, hidden.device, check_values=check_values, name="class_weight")
    batch = tuple(hidden.shape[:-1])
    if check_values:
        _, soft = prepare_target(t, batch + (v,), len(batch), opts.ignore_index)
    else:
        soft = target_kind(t, batch + (v,), len(batch), opts.ignore_index)
    # Traced: the custom op plans at run time (planning loads the numba kernels, which Dynamo must not trace).
    plan = None if compiling() else _plan(n, v, hidden, chunk_size)
    t = t.to(hidden.device)
    t_rows = t.reshape(n, v).to(compute_dtype(hidden.dtype)).contiguous() if soft else t.reshape(n).to(torch.int64)
    return LinearProblem(Problem(-1, opts, soft), n, plan, chunk_size, loss_dtype), t_rows, cweight


@without_autocast
def run_rows(hidden, weight, bias, t_rows, options, class_weight, *, soft, row_scale, needs, chunk_size,
             plan=None, tile_cache=None):  # fmt: skip
    """Unreduced pass over ``(N, D)`` ``hidden``: ``(row_loss, grad_h, grad_w, grad_b)``.

    Gradients (None where not needed) carry ``row_scale`` (float64 ``(N,)``).
    The body of the ``softmaxkit::linear_cross_entropy_rows`` custom op.
    """
    h = hidden.detach().contiguous()  # (N, D)
    w = weight.detach().contiguous()
    b = None if bias is None else bias.detach()
    n = h.shape[0]
    if plan is None:
        plan = _plan(n, w.shape[0], h, chunk_size)
    opts = kernel_options(options, class_weight, h.device)
    want = any(needs)
    ops = _TorchOps(h, w, b, t_rows, Problem(-1, opts, soft), row_scale, plan, needs)
    if plan.vocab_tiles:
        losses = run_vocab_tiles(
            ops, t_rows.numpy(), opts, row_scale.numpy() if want else None, plan,
            n, w.shape[0], want_grads=want, cache=tile_cache,
        )  # fmt: skip
        losses = [torch.from_numpy(part) for part in losses]
    else:
        losses = run_chunks(ops, n, plan.rows, want_grads=want)
    row_loss = torch.cat(losses).to(h.device) if losses else torch.zeros(0, dtype=torch.float64, device=h.device)
    grad_h = None if ops.grad_h is None else ops.grad_h.to(hidden.dtype)
    grad_w = None if ops.grad_w is None else ops.grad_w.to(weight.dtype)
    grad_b = None if ops.grad_b is None else ops.grad_b.to(bias.dtype)
    return row_loss, grad_h, grad_w, grad_b


def run(hidden, weight, bias, t_rows, lp: LinearProblem, cweight=None, *, needs, grad_output=None, tile_cache=None):
    """One pass: ``(loss, grad_hidden, grad_weight, grad_bias)``; grads None where not needed.

    Gradients include ``grad_output`` (scalar, or per row for ``"none"``).
    ``tile_cache``: see :func:`softmaxkit.linear.run_vocab_tiles` (vocabulary tiles only).
    Under ``torch.compile`` the pass is the custom op (no tile cache).
    """
    opts, soft = lp.problem.options, lp.problem.soft
    h = hidden.reshape(lp.n_rows, hidden.shape[-1])
    scale = _reduction.loss_scale(opts.reduction, _reduction.row_weights(t_rows, opts, soft, weight=cweight))
    loss_shape = tuple(hidden.shape[:-1])
    rs = _reduction.gradient_row_scale(opts.reduction, scale, loss_shape, grad_output) if any(needs) else None
    if compiling():
        row_loss, gh, gw, gb = _custom_ops.linear_cross_entropy_rows(
            h, weight, bias, t_rows, cweight, opts.ignore_index, opts.label_smoothing, opts.z_loss,
            opts.softcap, rs, needs[0], needs[1], needs[2], lp.chunk_size, True,
        )  # fmt: skip
        gh, gw, gb = (g if need else None for g, need in zip((gh, gw, gb), needs))
    else:
        row_loss, gh, gw, gb = run_rows(
            h, weight, bias, t_rows, opts, cweight, soft=soft, row_scale=rs, needs=needs,
            chunk_size=lp.chunk_size, plan=lp.plan, tile_cache=tile_cache,
        )  # fmt: skip
    # float64 row losses reduced, then rounded once to the loss dtype
    loss = _reduction.reduce(row_loss, opts.reduction, scale, tuple(hidden.shape[:-1])).to(lp.loss_dtype or hidden.dtype)
    gh = None if gh is None else gh.reshape(hidden.shape)
    return loss, gh, gw, gb


class LinearCrossEntropyFunction(torch.autograd.Function):
    """Autograd for the chunked linear cross-entropy.

    Where the gradients are computed, and why:

    * ``"mean"`` and ``"sum"``: in the **forward**, in the same pass as the
      loss (3 GEMMs in total, the dense floor). The upstream gradient is a
      scalar, and every gradient is linear in it, so backward multiplies the
      saved gradients in place. Recomputing in backward would cost a fourth
      GEMM (the logits again).
    * ``"none"``: in the **backward**, recomputed with the real per-row
      upstream gradient as the row scale (forward: 1 GEMM for the loss;
      backward: 3 GEMMs). ``grad_weight = sum_i u_i g_i^T h_i`` mixes rows,
      so gradients made in the forward with ``u = 1`` cannot be rescaled to
      an arbitrary ``u`` afterwards (this is where peers go wrong). 4 GEMMs
      total is the price of being exact, and the forward keeps no gradients
      alive in the meantime. With vocabulary tiles the statistics pass adds
      a GEMM to "mean"/"sum" (4 in all); for "none" the forward's statistics
      pass is kept (56 bytes per token) and the backward skips it: 4 GEMMs too.

    Under ``torch.no_grad()`` / ``torch.inference_mode()`` :func:`linear_cross_entropy`
    does not apply the Function: the loss pass alone runs (1 GEMM), as on detached inputs.

    A second backward over the same graph (``retain_graph=True``) recomputes,
    because the first one handed its tensors out. Under ``create_graph=True``
    the backward differentiates :func:`softmaxkit.torch._composite.linear_cross_entropy`
    instead, which builds the ``(N, V)`` logits: exact second derivatives,
    at the dense path's memory. Under ``torch.compile`` a double backward
    raises AOTAutograd's error instead (:func:`._custom_ops.tied_upstream`).
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, t_rows, cweight, lp):
        needs = tuple(ctx.needs_input_grad[:3])
        needs = (needs[0], needs[1], needs[2] and bias is not None)
        eager = lp.problem.options.reduction != "none" and any(needs)
        traced = compiling()
        ctx.tile_cache = [] if (not traced and lp.plan.vocab_tiles and not eager) else None
        loss, *grads = run(
            hidden, weight, bias, t_rows, lp, cweight, needs=needs if eager else (False,) * 3,
            tile_cache=ctx.tile_cache,
        )  # fmt: skip
        ctx.lp, ctx.needs, ctx.eager = lp, needs, eager
        if traced:  # tensors must go through save_for_backward to be traced
            ctx.grads = None
            ctx.save_for_backward(hidden, weight, bias, t_rows, cweight, *(grads if eager else (None,) * 3))
        else:
            ctx.grads = grads if eager else None
            ctx.save_for_backward(hidden, weight, bias, t_rows, cweight)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        hidden, weight, bias, t_rows, cweight, *saved = ctx.saved_tensors
        batched = not compiling() and _composite.batched_upstream(grad_output)
        grads, ctx.grads = (list(saved) if (saved and ctx.eager) else ctx.grads), None
        # create_graph=True: a differentiable gradient. Under vmap (a batched backward) too where the
        # gradients must be recomputed with the upstream ("none", a second backward): the kernels
        # cannot take a batched row scale (audit CK)
        if (torch.is_grad_enabled() and not compiling()) or (batched and grads is None):
            grads = _differentiable_backward(ctx, hidden, weight, bias, t_rows, cweight, grad_output)
            return (*grads, None, None, None)
        in_place = not saved
        if batched:  # out of place: see _composite.batched_upstream
            grads = [None if g is None else _scaled(g, grad_output) for g in grads]
        elif grads is None:  # "none", or a second backward: one pass with the true upstream
            _, *grads = run(
                hidden, weight, bias, t_rows, ctx.lp, cweight, needs=ctx.needs, grad_output=grad_output,
                tile_cache=ctx.tile_cache,
            )  # fmt: skip
        # grad_output stays in its own dtype (float32 with loss_dtype=torch.float32): a 0-dim
        # operand does not promote, so the scale itself is not rounded to 16 bits (a systematic
        # error). The 16-bit gradients saved by the forward were rounded at scale 1, though, so an
        # upstream other than 1 (loss / n_items) rounds them a second time: about 1.2x the error of
        # a single rounding (unlike cross_entropy, whose float32 gradient waits for the scale; here
        # the weight gradient is written into 16 bits tile by tile, which keeps its float32 shadow
        # of V x D out of memory).
        elif not in_place:  # traced: each gradient tied to its input (see _custom_ops.tied_upstream)
            inputs = (hidden, weight, bias)
            grads = [None if g is None else _scaled(g, grad_output, of=x) for g, x in zip(grads, inputs)]
        elif not (grad_output.device.type == "cpu" and float(grad_output) == 1.0):
            grads = [None if g is None else _scaled(g, grad_output, out=g) for g in grads]
        return grads[0], grads[1], grads[2], None, None, None


def _scaled(g, grad_output, *, out=None, of=None):
    """``g * grad_output`` in ``g``'s dtype, the scalar kept at its own precision (see backward):
    into ``out``, or, traced, out of place with the scalar tied to the input ``of``
    (:func:`._custom_ops.tied_upstream`)."""
    if of is not None:
        grad_output = _custom_ops.tied_upstream(grad_output, of)
    scale = grad_output if grad_output.dtype.itemsize >= 4 else grad_output.float()
    return torch.mul(g, scale, out=out) if out is not None else (g * scale).to(g.dtype)


@without_autocast
def _composite_loss(hidden, weight, bias, t_rows, lp, cweight):
    """The loss in differentiable torch ops (:func:`._composite.linear_cross_entropy`), rows flattened."""
    return _composite.linear_cross_entropy(
        hidden.reshape(lp.n_rows, hidden.shape[-1]), weight, bias, t_rows, lp.problem.options,
        soft=lp.problem.soft, class_weight=cweight, loss_dtype=lp.loss_dtype,
    )  # fmt: skip


def _differentiable_backward(ctx, hidden, weight, bias, t_rows, cweight, grad_output):
    problem = ctx.lp.problem
    tensors = (hidden, weight, bias)
    inputs = [t for t, need in zip(tensors, ctx.needs) if need]
    with torch.enable_grad():
        loss = _composite_loss(hidden, weight, bias, t_rows, ctx.lp, cweight)
        if problem.options.reduction == "none":
            grad_output = grad_output.reshape(-1)
        grads = iter(torch.autograd.grad(loss, inputs, grad_output, create_graph=True, allow_unused=True))
    return tuple(next(grads) if need else None for need in ctx.needs)


def linear_cross_entropy(hidden, weight, target, *, bias=None, chunk_size=None, loss_dtype=None, **ce_options):
    """Autograd entry point; see :func:`softmaxkit.linear_cross_entropy`.

    ``loss_dtype`` (a floating torch dtype at least as wide as ``hidden``'s,
    default ``hidden.dtype``) is the dtype of the returned loss, so that of
    the upstream gradient too: ``torch.float32`` for 16-bit input keeps the
    loss and a scale such as ``1 / num_items`` from being rounded to 16 bits.

    Under ``torch.autocast`` it computes as ``F.cross_entropy(F.linear(...))``
    does there (see :func:`autocast_inputs`): 16-bit GEMM operands, a float32
    loss, each gradient in its own input's dtype.

    Under ``torch.func`` transforms, forward-mode AD, ``torch.export``,
    ``torch.jit.trace``, on meta tensors and on tensor subclasses (DTensor,
    ``FakeTensorMode``) it runs as composite torch ops (:mod:`._composite`,
    which builds the logits).
    """
    hidden, weight, bias, loss_dtype = autocast_inputs(hidden, weight, bias, loss_dtype)
    # export, transforms, jit tracing, meta tensors, subclasses: composite torch ops (see _composite.needs_composite)
    transformed = _composite.needs_composite(hidden, weight, bias, target)
    lp, t_rows, cweight = prepare(
        hidden, weight, bias, target, chunk_size, ce_options, check_values=not (transformed or compiling()),
        loss_dtype=loss_dtype,
    )  # fmt: skip
    if transformed:
        loss = _composite_loss(hidden, weight, bias, t_rows, lp, cweight)
        return loss.reshape(hidden.shape[:-1]) if lp.problem.options.reduction == "none" else loss
    if not any(grads_wanted(hidden, weight, bias)):
        # no_grad / inference_mode: the loss pass alone (1 GEMM), outside the Function, whose
        # forward would make the "mean"/"sum" gradients eagerly (ctx.needs_input_grad ignores grad mode)
        return run(hidden, weight, bias, t_rows, lp, cweight, needs=(False, False, False))[0]
    return LinearCrossEntropyFunction.apply(hidden, weight, bias, t_rows, cweight, lp)


def linear_cross_entropy_and_grad(
    hidden, weight, target, *, bias=None, chunk_size=None, grad_output: Any = None, loss_dtype=None, **ce_options
):
    """No-graph entry point; see :func:`softmaxkit.linear_cross_entropy_and_grad`.

    Under ``torch.autocast`` as :func:`linear_cross_entropy`: the gradients
    come back in the dtypes of the inputs as given.
    """
    refuse_jit_trace("linear_cross_entropy_and_grad")
    dtypes = [getattr(x, "dtype", None) for x in (hidden, weight, bias)]  # before autocast's casts
    hidden, weight, bias, loss_dtype = autocast_inputs(hidden, weight, bias, loss_dtype)
    lp, t_rows, cweight = prepare(hidden, weight, bias, target, chunk_size, ce_options, loss_dtype=loss_dtype)
    with torch.no_grad():
        loss, *grads = run(
            hidden, weight, bias, t_rows, lp, cweight, needs=(True, True, bias is not None), grad_output=grad_output
        )
        return loss, *(None if g is None else g.to(dtype) for g, dtype in zip(grads, dtypes))
