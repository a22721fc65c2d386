"""Fused linear layer + cross-entropy that never materialises the logits.

An LLM head computes ``logits = hidden @ weight.T + bias`` of shape
``(N, V)`` and then the cross-entropy. At N = 8k tokens and V = 256k classes
the float32 logits alone take 8 GiB. This module walks over the tokens in
chunks sized from a memory budget and does everything a chunk needs in one
pass, so only one ``(rows, V)`` chunk buffer ever exists:

1. ``buf = h_c @ W.T (+ b)``                       GEMM 1, (rows, V)
2. the fused CE kernel writes the per-row loss and, *in place into buf*,
   ``g = row_scale * dloss/dlogits``                (no second buffer)
3. ``grad_hidden[c] = g @ W``                      GEMM 2, (rows, D)
4. ``grad_weight += g.T @ h_c`` (float32 or wider)  GEMM 3, (V, D)
5. ``grad_bias += g.sum(0)``

The three GEMMs are the same ones a dense forward + backward runs, so the
floor is the dense GEMM time, and the only memory beyond the gradient
outputs is the chunk buffer.

At a large vocabulary the budget leaves few rows per chunk (104 at
V = 131,072), and GEMMs with so small a dimension run far below peak (every
chunk streams all of ``W`` and ``grad_W``). There, on CPU, the logits come in
**vocabulary tiles** instead (:func:`run_vocab_tiles`): a ``(tokens, V_tile)``
tile for up to :data:`TILE_TOKENS` tokens, all four GEMMs with large
dimensions:

1. per tile, ``h @ W_t.T``; fold the rows' statistics (online log-sum-exp,
   :mod:`softmaxkit.kernels.vocab_tiles`);           GEMM 1
2. the losses; then per tile again ``h @ W_t.T``,   GEMM 1 again (but for
   its gradient in place, ``grad_hidden += g @ W_t``  the last tile, still
   and ``grad_W[t] += g.T @ h``                      in the buffer); GEMMs 2, 3

One GEMM more than the token chunks, but measured at N=2048, D=1024,
V=131,072 (2 threads, GEMMs only): 1.23x the dense 3-GEMM time, against
1.49x for 104-row token chunks (the whole call, interleaved runs: 1.35x
against 1.47x). With more rows per chunk the token chunks
stay ahead: at V=65,536 (208 rows, N=4096) 1.15x against 1.27x for tiles,
at V=32,768 (416 rows) about 1.13x against 1.33x. Hence
:data:`VOCAB_TILES_BELOW_ROWS`.

This module holds the algorithm (the chunk loop, the chunk size, the shape
checks) and the NumPy backend. :mod:`softmaxkit.torch` supplies a torch
backend for the same loop plus the autograd Function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from softmaxkit import _reduction, kernels
from softmaxkit._arrays import compute_dtype, is_torch_tensor
from softmaxkit._dispatch import torch_op
from softmaxkit._options import CrossEntropyOptions, options_by_keyword
from softmaxkit._validation import check_floating, cross_entropy_options, dtype_name, prepare_target

__all__ = [
    "linear_cross_entropy", "linear_cross_entropy_and_grad", "CHUNK_BYTES", "chunk_rows", "plan_pass",
    "plan_upcast_tiles", "plan_native_low_tiles",
]

#: Default memory budget for one chunk of logits (and of anything sized like
#: it, e.g. a low-precision copy), in bytes: 52 MiB is 416 float32 rows at
#: V = 32,768 and 104 at V = 131,072. The chunk GEMMs need the chunk's rows
#: in the hundreds to run near peak: at N=4096, D=1024, V=32768 (2 threads)
#: 32 MiB chunks measured 1.29x the dense 3-GEMM time and 60 MiB 1.11x.
#: The GEMMs alone account for most of that: over 416-row chunks the three
#: of them (no cross-entropy) took 1.05x the dense time (``floor_chunks`` in
#: ``benchmarks/bench_linear_ce.py``). Each chunk's calls stream (and BLAS
#: packs) all of ``W`` again: the two GEMMs that read ``W`` ran at 224-227
#: GFLOPS against 259-264 dense, ``grad_W += g.T @ h_c`` at 248 against 250.
#: 52 MiB keeps the peak extra memory (this one buffer, plus up to ~8 MiB of
#: kernel and BLAS work space seen in measurements) under a 64 MiB goal,
#: against 512 MiB for the dense logits.
CHUNK_BYTES = 52 << 20


#: Token chunks of fewer rows than this switch to vocabulary tiles (CPU,
#: float32/float64): tiles won at 104 rows, token chunks at 208 (measured, see
#: the module docstring); at 128 the chunk GEMMs ran at about 3/4 of the dense
#: rate, as four GEMMs against three do.
VOCAB_TILES_BELOW_ROWS = 128

#: Tokens per vocabulary tile (more tokens are processed in blocks of this
#: many): tiles stay at least ``CHUNK_BYTES / (TILE_TOKENS * 4)`` = 3,328
#: float32 classes wide, and ``grad_hidden += g @ W_t`` rewrites at most
#: ``TILE_TOKENS * D`` floats per tile.
TILE_TOKENS = 4096


@dataclass(frozen=True)
class PassPlan:
    """How one call walks over the logits: token chunks, or vocabulary tiles."""

    vocab_tiles: bool
    rows: int  # tokens per chunk (token chunks) or per token block (tiles)
    tile_classes: int = 0  # classes per vocabulary tile


def plan_pass(
    n_rows: int, n_classes: int, bytes_per_logit: int, *, chunk_size: Any = None, tiles_possible: bool = True,
    upcast_features: int | None = None,
) -> PassPlan:  # fmt: skip
    """Token chunks of :func:`chunk_rows` rows, unless the budget leaves fewer
    than :data:`VOCAB_TILES_BELOW_ROWS` of them for more tokens than one chunk
    holds, and the backend can tile (``tiles_possible``); an explicit
    ``chunk_size`` always means token chunks of that size.

    ``upcast_features`` (``D``) marks 16-bit input whose GEMMs run in
    float32: where the backend can tile and ``N <= V``, that takes the
    tiles of :func:`plan_upcast_tiles` over all tokens.
    """
    if chunk_size is not None:
        return PassPlan(False, _check_chunk_size(chunk_size, n_rows))
    if upcast_features is not None and tiles_possible and n_rows <= n_classes:
        return plan_upcast_tiles(n_rows, n_classes, upcast_features)
    rows = chunk_rows(n_rows, n_classes, bytes_per_logit)
    if not tiles_possible or upcast_features is not None or rows >= VOCAB_TILES_BELOW_ROWS or rows >= n_rows:
        return PassPlan(False, rows)
    tokens = min(n_rows, TILE_TOKENS)
    classes = max(1, min(n_classes, CHUNK_BYTES // (tokens * bytes_per_logit)))
    return PassPlan(True, tokens, classes)


def plan_upcast_tiles(n_rows: int, n_classes: int, n_features: int) -> PassPlan:
    """Vocabulary tiles over one block of all ``n_rows`` tokens, for 16-bit
    inputs whose GEMMs run in float32 (a CPU without bf16 GEMMs).

    Token chunks keep float32 shadows of ``weight`` and of its gradient
    accumulator, ``2 V D`` floats: 256 MiB at V = 32,768, D = 1024 (319 MiB
    measured beyond the outputs, with the chunk) and 1 GiB at V = 131,072
    (1074 MiB measured). With one token block every class's weight gradient
    comes out of a single GEMM, so it is written straight into the 16-bit
    output, and only ``weight``'s rows of the current tile are upcast. The
    float32 shadows left are those of ``hidden`` and its gradient (``2 N D``
    floats); the tiles get the rest of :data:`CHUNK_BYTES` (at least a
    quarter of it), at ``(N + D) * 4`` bytes per class: its logits and its
    upcast weight row, which then holds its gradient row. :func:`plan_pass`
    picks this plan where ``N <= V``, i.e. where these shadows are the
    smaller ones, and no ``chunk_size`` is given.

    The price is the tiles' fourth GEMM. Measured on bfloat16 (2 threads,
    interleaved, times over the float32 3-GEMM floor): at N=4096, D=1024,
    V=32,768 tiles 1.40x against token chunks 1.17x (with 319 MiB of
    shadows); at N=2048, V=131,072 tiles 1.40x against 1.69x (1074 MiB),
    as 104-row token chunks are slow there too. ``chunk_size=`` buys the
    token chunks' speed back where memory allows.
    """
    shadows = 2 * n_rows * n_features * 4
    budget = max(CHUNK_BYTES - shadows, CHUNK_BYTES // 4)
    per_class = (n_rows + n_features) * 4
    return PassPlan(True, max(n_rows, 1), max(1, min(n_classes, budget // per_class)))


def plan_native_low_tiles(
    n_rows: int, n_classes: int, n_features: int, bytes_per_logit: int, *, chunk_size: Any = None
) -> PassPlan | None:  # fmt: skip
    """Vocabulary tiles over one block of all ``n_rows`` tokens for 16-bit
    inputs whose GEMMs run natively in 16 bits (a CPU with AMX-BF16), or None
    where token chunks are the better plan.

    Token chunks at a large vocabulary are thin (70 rows at V = 131,072 with a
    float32 and a bf16 logit each), and CPU torch has no bf16 x bf16 -> float32
    GEMM, so each chunk's weight gradient comes out in bf16 blocks that are
    added to a float32 ``(V, D)`` accumulator: at N=2048, D=256, V=128,256 that
    was 3,780 ``add_`` calls streaming the 128 MiB accumulator 30 times:
    6.89 s per forward + backward against 2.91 s for torch's dense bf16, and
    3.11 s with these tiles (``bench_linear_ce.py --variants dense_bf16,sk_bf16
    --shape 2048,256,128256 --repeats 3``, 2 threads, AMX; later runs on the loaded
    machine: 3.15 s against dense's 3.52 s, and 4.56 s against 3.37 s, so the two are
    about even, at 51-60 MiB against 1444). With one block of all tokens each tile's
    weight gradient is one bf16 GEMM written once into the output, as torch's
    dense backward does (float32 accumulation inside the GEMM, one rounding),
    and the four GEMMs stay large. ``grad_hidden`` gets a float32 accumulator
    (``N * D * 4`` bytes, taken off :data:`CHUNK_BYTES`); each tile adds its
    bf16 ``g @ W_t`` to it. The tiles get the rest of the budget (at least a
    quarter) at ``N * bytes_per_logit`` bytes per class.

    Chosen, as :func:`plan_pass` chooses vocabulary tiles, where no
    ``chunk_size`` is given, token chunks would have fewer than
    :data:`VOCAB_TILES_BELOW_ROWS` rows and more than one chunk, and
    ``N <= V`` (one token block fits).
    """
    if chunk_size is not None:
        return None
    rows = chunk_rows(n_rows, n_classes, bytes_per_logit)
    if rows >= VOCAB_TILES_BELOW_ROWS or rows >= n_rows or n_rows > n_classes:
        return None
    budget = max(CHUNK_BYTES - n_rows * n_features * 4, CHUNK_BYTES // 4)
    return PassPlan(True, n_rows, max(1, min(n_classes, budget // (n_rows * bytes_per_logit))))


def chunk_rows(n_rows: int, n_classes: int, bytes_per_logit: int, budget: int | None = None) -> int:
    """Rows per chunk so that ``rows * n_classes * bytes_per_logit <= budget``.

    ``budget`` defaults to :data:`CHUNK_BYTES` (read at call time, so it can
    be tuned per process). At least 1 row (a single row larger than the
    budget is still processed) and at most ``n_rows``.
    """
    budget = CHUNK_BYTES if budget is None else budget
    rows = budget // max(1, n_classes * bytes_per_logit)
    return int(max(1, min(rows, max(n_rows, 1))))


def check_bias_dtype(bias: Any, weight_dtype: Any, *, name: str = "bias", weight_name: str = "weight") -> None:
    """Refuse a ``bias`` whose dtype is not the weight's, as ``F.linear`` does: a wider bias would
    otherwise widen the logits and the bias gradient silently, a narrower one round the bias."""
    if dtype_name(bias.dtype) != dtype_name(weight_dtype):
        raise TypeError(
            f"{name} must have {weight_name}'s dtype {dtype_name(weight_dtype)}, got {dtype_name(bias.dtype)} "
            f"(cast it: {name}.to({weight_name}.dtype) for tensors, np.asarray({name}, dtype={weight_name}.dtype) "
            "for arrays)"
        )


def check_linear_inputs(hidden: Any, weight: Any, bias: Any, target: Any) -> tuple[int, int, int]:
    """Check the shapes and dtypes of a linear cross-entropy call; return ``(N, D, V)``.

    ``hidden`` is ``(..., D)`` (``N`` = product of the leading dimensions),
    ``weight`` is ``(V, D)``, ``bias`` is ``(V,)`` and ``target`` is either
    integer ``hidden.shape[:-1]`` or floating ``hidden.shape[:-1] + (V,)``.
    Reads only ``.shape`` and ``.dtype``, so it serves NumPy and torch.
    """
    check_floating(hidden, "hidden")
    check_floating(weight, "weight")
    h_shape, w_shape = tuple(hidden.shape), tuple(weight.shape)
    if len(h_shape) < 1:
        raise ValueError("hidden must have shape (..., D), got a scalar")
    if len(w_shape) != 2:
        raise ValueError(f"weight must have shape (V, D), got {w_shape}")
    if w_shape[1] != h_shape[-1]:
        raise ValueError(
            f"weight must have shape (V, {h_shape[-1]}) to match hidden {h_shape}, got {w_shape}"
        )
    if w_shape[0] == 0:
        raise ValueError(f"weight must have at least 1 row (class), got shape {w_shape}")
    if dtype_name(hidden.dtype) != dtype_name(weight.dtype):
        raise TypeError(
            f"hidden and weight must have the same dtype, got {dtype_name(hidden.dtype)} "
            f"and {dtype_name(weight.dtype)}"
        )
    if bias is not None:
        check_floating(bias, "bias")
        if tuple(bias.shape) != (w_shape[0],):
            raise ValueError(f"bias must have shape ({w_shape[0]},), got {tuple(bias.shape)}")
        check_bias_dtype(bias, weight.dtype)
    t_shape = tuple(target.shape)
    if t_shape not in (h_shape[:-1], h_shape[:-1] + (w_shape[0],)):
        raise ValueError(
            f"target must have shape {h_shape[:-1]} (class indices) or "
            f"{h_shape[:-1] + (w_shape[0],)} (probabilities) for hidden {h_shape} and "
            f"weight {w_shape}, got {t_shape} (the order is hidden, weight, target, as in Cut Cross-Entropy; "
            "Liger Kernel's module takes the weight first)"
        )
    n = math.prod(h_shape[:-1])  # math, not NumPy: torch.compile traces this
    return n, h_shape[-1], w_shape[0]


class ChunkOps(Protocol):
    """What the chunk loop needs from a backend (NumPy here, torch in softmaxkit.torch).

    The backend owns the precision policy (GEMM dtype, accumulator dtype) and
    the outputs; the loop owns the order of the steps.
    """

    def logits(self, start: int, stop: int) -> Any:
        """``h[start:stop] @ W.T (+ b)`` in the compute dtype, in the reused buffer."""

    def cross_entropy(self, buf: Any, start: int, stop: int) -> Any:
        """Per-row float64 loss of the chunk; with gradients wanted, also writes
        ``row_scale * dloss/dlogits`` into ``buf``."""

    def accumulate_grads(self, buf: Any, start: int, stop: int) -> None:
        """``grad_hidden[start:stop] = g @ W``, ``grad_W += g.T @ h_c``, ``grad_b += sum(g)``."""


def run_chunks(ops: ChunkOps, n_rows: int, rows_per_chunk: int, *, want_grads: bool) -> list:
    """The one-pass loop: per chunk, logits GEMM, fused CE (+grad in place), grad GEMMs.

    Returns the per-chunk float64 row losses, in order, for the caller to
    concatenate (NumPy arrays or tensors, whatever ``ops`` returns).
    """
    losses = []
    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        buf = ops.logits(start, stop)  # (rows, V), compute dtype
        losses.append(ops.cross_entropy(buf, start, stop))  # buf now holds the gradient
        if want_grads:
            ops.accumulate_grads(buf, start, stop)
    return losses


class TileOps(Protocol):
    """What :func:`run_vocab_tiles` needs from a backend (CPU memory: the tiles
    are NumPy arrays, or NumPy views of tensors, for the numba kernels)."""

    def tile_logits(self, t0: int, t1: int, v0: int, v1: int) -> np.ndarray:
        """``h[t0:t1] @ W[v0:v1].T (+ b[v0:v1])`` in the reused tile buffer, C-contiguous."""

    def accumulate_tile_grads(self, g: np.ndarray, t0: int, t1: int, v0: int, v1: int) -> None:
        """``grad_hidden[t0:t1] += g @ W[v0:v1]``, ``grad_W[v0:v1] += g.T @ h[t0:t1]``,
        ``grad_b[v0:v1] += sum(g)``."""


def run_vocab_tiles(
    ops: TileOps, target: np.ndarray, options: CrossEntropyOptions, row_scale: np.ndarray | None,
    plan: PassPlan, n_rows: int, n_classes: int, *, want_grads: bool, cache: list | None = None,
) -> list[np.ndarray]:  # fmt: skip
    """The two passes over vocabulary tiles (see the module docstring).

    ``target`` holds the class indices ``(N,)`` or probabilities ``(N, V)``
    of all rows, ``row_scale`` the float64 gradient scale per row (with
    gradients). Returns the float64 row losses per token block, in order.
    The gradient accumulators behind ``ops`` must start at zero. With no rows
    (N = 0) there is no token block and ``ops`` is never called, so an output
    a backend writes once per tile rather than adds into must start at zero too.

    ``cache``, a list, receives each token block's finished statistics and
    losses (56 bytes per token); given again filled, the statistics pass is
    skipped. The autograd Function uses it for ``reduction="none"``, whose
    forward computes the loss and whose backward the gradients.
    """
    from softmaxkit.kernels import vocab_tiles

    losses = []
    tiles = [(v0, min(v0 + plan.tile_classes, n_classes)) for v0 in range(0, n_classes, plan.tile_classes)]
    for block, t0 in enumerate(range(0, n_rows, plan.rows)):
        t1 = min(t0 + plan.rows, n_rows)
        block_target = target[t0:t1]
        buf = None
        if cache is not None and block < len(cache):
            state, block_loss = cache[block]
        else:
            state = vocab_tiles.new_state(t1 - t0)
            for v0, v1 in tiles:
                buf = ops.tile_logits(t0, t1, v0, v1)
                vocab_tiles.fold_tile(buf, v0, block_target, options, state, n_classes=n_classes)
            block_loss = vocab_tiles.finish(state, block_target, options, n_classes=n_classes)
            if cache is not None:
                cache.append((state, block_loss))
        losses.append(block_loss)
        if not want_grads:
            continue
        # Backwards over the tiles: the statistics pass left the last tile's
        # logits in the buffer, one GEMM of the second pass saved.
        for v0, v1 in reversed(tiles):
            if buf is None:
                buf = ops.tile_logits(t0, t1, v0, v1)
            vocab_tiles.tile_grad(buf, v0, block_target, options, state, row_scale[t0:t1], n_classes=n_classes)
            ops.accumulate_tile_grads(buf, t0, t1, v0, v1)
            buf = None
    return losses


def vocab_tiles_available() -> bool:
    """Whether the numba kernels behind :func:`run_vocab_tiles` can be imported."""
    return kernels.select(kernels.CPU_MIN_ELEMENTS) is not kernels.reference


# --------------------------------------------------------------------------- NumPy backend


class _NumpyOps:
    """NumPy/BLAS backend: float32 (float64 for float64 input) everywhere.

    NumPy has no fast low-precision GEMM, so float16 input is computed in
    float32; the float32 copy of ``weight`` this takes (``V * D * 4`` bytes)
    is made once, not per chunk.
    """

    def __init__(self, h, w, b, t_rows, options, row_scale, plan, want_grads):
        self.dtype = compute_dtype(h.dtype)
        self.h, self.w = h, w.astype(self.dtype, copy=False)  # (N, D), (V, D)
        self.b = None if b is None else b.astype(self.dtype, copy=False)
        self.t, self.options, self.row_scale = t_rows, options, row_scale
        self.want_grads = want_grads
        v = w.shape[0]
        width = plan.tile_classes if plan.vocab_tiles else v
        self.buffer = np.empty((plan.rows, width), dtype=self.dtype)  # the only logits-sized array
        self.kernel = kernels.select(plan.rows * width)
        if want_grads:
            # tiles add into grad_h (one term per tile); chunks write each row once
            self.grad_h = (np.zeros if plan.vocab_tiles else np.empty)(h.shape, dtype=h.dtype)
            # float32 (or float64) accumulator across chunks; the output itself
            # for float32/float64 weights.
            self.grad_w = np.zeros(w.shape, dtype=self.dtype)
            self.grad_b = None if b is None else np.zeros(v, dtype=np.float64)
        # scipy's BLAS gemm accumulates into grad_w in place (beta=1); NumPy's
        # `grad_w += g.T @ h_c` would allocate a (V, D) temporary per chunk.
        from scipy.linalg import blas

        self._gemm = blas.dgemm if self.dtype == np.float64 else blas.sgemm

    def _h(self, start, stop):
        return self.h[start:stop].astype(self.dtype, copy=False)  # (rows, D)

    def logits(self, start, stop):
        buf = self.buffer[: stop - start]  # leading rows of a C-contiguous array: contiguous
        np.matmul(self._h(start, stop), self.w.T, out=buf)
        if self.b is not None:
            buf += self.b
        return buf

    def cross_entropy(self, buf, start, stop):
        return self.kernel.cross_entropy_2d(
            buf, self.t[start:stop], self.options, row_scale=self.row_scale[start:stop],
            grad_out=buf if self.want_grads else None,
        )

    def accumulate_grads(self, g, start, stop):
        h_c = self._h(start, stop)
        if self.grad_h.dtype == self.dtype:
            np.matmul(g, self.w, out=self.grad_h[start:stop])
        else:
            self.grad_h[start:stop] = g @ self.w
        # Fortran view of the C-ordered (V, D) accumulator is (D, V):
        # grad_w.T (D, V) += h_c.T (D, rows) @ g (rows, V), written in place.
        self._gemm(1.0, h_c.T, g.T, beta=1.0, c=self.grad_w.T, trans_b=1, overwrite_c=1)
        if self.grad_b is not None:
            self.grad_b += g.sum(axis=0, dtype=np.float64)

    def tile_logits(self, t0, t1, v0, v1):
        buf = self.buffer.reshape(-1)[: (t1 - t0) * (v1 - v0)].reshape(t1 - t0, v1 - v0)
        np.matmul(self.h[t0:t1], self.w[v0:v1].T, out=buf)
        if self.b is not None:
            buf += self.b[v0:v1]
        return buf

    def accumulate_tile_grads(self, g, t0, t1, v0, v1):
        h_c = self.h[t0:t1]
        # In place through the Fortran (transposed) views, as accumulate_grads:
        # grad_h[t0:t1].T (D, rows) += W_t.T (D, cols) @ g.T (cols, rows)
        self._gemm(1.0, self.w[v0:v1].T, g.T, beta=1.0, c=self.grad_h[t0:t1].T, overwrite_c=1)
        # grad_w[v0:v1].T (D, cols) += h_c.T (D, rows) @ g (rows, cols)
        self._gemm(1.0, h_c.T, g.T, beta=1.0, c=self.grad_w[v0:v1].T, trans_b=1, overwrite_c=1)
        if self.grad_b is not None:
            self.grad_b[v0:v1] += g.sum(axis=0, dtype=np.float64)


def _prepare_numpy(hidden, weight, bias, target, options):
    """Arrays, validated options and flattened targets for the NumPy path."""
    h = np.asarray(hidden)
    w = np.asarray(weight)
    # A list or tuple has no dtype of its own (np.asarray makes it float64): it takes the weight's; an
    # array or tensor keeps its dtype, so one of another dtype is refused, as F.linear refuses it (reviews R8, R9).
    b = None if bias is None else np.asarray(bias, dtype=w.dtype) if isinstance(bias, (list, tuple)) else np.asarray(bias)
    t = np.asarray(target)
    n, d, v = check_linear_inputs(h, w, b, t)
    opts = cross_entropy_options(n_classes=v, weight_name="class_weight", **options)
    # prepare_target checks the labels against V (message with position) and
    # classifies hard/soft, exactly as sk.cross_entropy does.
    t, soft = prepare_target(t, h.shape[:-1] + (v,), h.ndim - 1, opts.ignore_index)
    cdtype = compute_dtype(h.dtype)
    t_rows = np.ascontiguousarray(t.reshape(n, v), dtype=cdtype) if soft else t.reshape(n).astype(np.int64)
    return h.reshape(n, d), w, b, t_rows, soft, opts


def _check_loss_dtype(loss_dtype: Any, input_dtype: np.dtype) -> np.dtype:
    """``loss_dtype=`` for NumPy input: a floating dtype at least as wide as the input's (None: the input's)."""
    if loss_dtype is None:
        return np.dtype(input_dtype)
    try:
        dt = np.dtype(loss_dtype)
    except TypeError:
        raise TypeError(f"loss_dtype must be a NumPy floating dtype or None, got {loss_dtype!r}") from None
    if dt.kind != "f":
        raise TypeError(f"loss_dtype must be a floating dtype or None, got {dt}")
    if dt.itemsize < np.dtype(input_dtype).itemsize:
        raise ValueError(f"loss_dtype must be at least as wide as the input dtype {np.dtype(input_dtype)}, got {dt}")
    return dt


def _linear_numpy(hidden, weight, bias, target, *, chunk_size, want_grads, grad_output, options, loss_dtype=None):
    h, w, b, t_rows, soft, opts = _prepare_numpy(hidden, weight, bias, target, options)
    out_dtype = _check_loss_dtype(loss_dtype, h.dtype)
    n, v = h.shape[0], w.shape[0]
    batch_shape = np.shape(hidden)[:-1]
    scale = _reduction.loss_scale(opts.reduction, _reduction.row_weights(t_rows, opts, soft))
    row_scale = _reduction.gradient_row_scale(opts.reduction, scale, batch_shape, grad_output)
    cdtype = compute_dtype(h.dtype)
    plan = plan_pass(
        n, v, cdtype.itemsize, chunk_size=chunk_size,
        # float16 input computes in float32: its grad_hidden could not accumulate over tiles
        tiles_possible=h.dtype == cdtype and vocab_tiles_available(),
    )  # fmt: skip
    ops = _NumpyOps(h, w, b, t_rows, opts, row_scale, plan, want_grads)
    if plan.vocab_tiles:
        losses = run_vocab_tiles(ops, t_rows, opts, row_scale, plan, n, v, want_grads=want_grads)
    else:
        losses = run_chunks(ops, n, plan.rows, want_grads=want_grads)
    row_loss = np.concatenate(losses) if n else np.zeros(0)

    dtype = np.asarray(hidden).dtype
    loss = _reduction.reduce(row_loss, opts.reduction, scale, batch_shape)
    loss = loss.astype(out_dtype) if opts.reduction == "none" else out_dtype.type(loss)
    if not want_grads:
        return loss, None, None, None
    grad_h = ops.grad_h.reshape(np.asarray(hidden).shape)
    grad_w = ops.grad_w.astype(dtype, copy=False)
    grad_b = None if ops.grad_b is None else ops.grad_b.astype(dtype)
    return loss, grad_h, grad_w, grad_b


def _check_chunk_size(chunk_size: Any, n_rows: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    return int(max(1, min(chunk_size, max(n_rows, 1))))


# --------------------------------------------------------------------------- public API


@options_by_keyword("linear_cross_entropy(hidden, weight, target, bias=b) for Cut Cross-Entropy's "
                    "linear_cross_entropy(e, c, targets, b); from torch's F.linear_cross_entropy, linear_bias= "
                    "is bias= and weight= is class_weight=")
def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    target: Any,
    *,
    bias: Any = None,
    chunk_size: int | None = None,
    loss_dtype: Any = None,
    **ce_options: Any,
) -> Any:
    r"""Cross-entropy of ``hidden @ weight.T + bias`` without forming the logits.

    Equal to ``cross_entropy(hidden @ weight.T + bias, target, **ce_options)``
    but the ``(N, V)`` logits never exist: tokens are processed in chunks and
    peak extra memory is one chunk.

    Parameters
    ----------
    hidden : array_like or torch.Tensor of shape (..., D)
        Final hidden states; the leading dimensions are the tokens (N in total).
    weight : array_like or torch.Tensor of shape (V, D)
        The output projection (``nn.Linear(D, V).weight``), same dtype as ``hidden``.
    target : array_like or torch.Tensor
        Integer class indices of shape ``hidden.shape[:-1]``, or probabilities
        of shape ``hidden.shape[:-1] + (V,)``.
    bias : array_like or torch.Tensor of shape (V,), optional, keyword-only
        Same dtype as ``weight`` (as ``torch.nn.functional.linear`` requires);
        a list takes the weight's dtype.
    chunk_size : int, optional, keyword-only
        Tokens per chunk. Default: as many as fit :data:`CHUNK_BYTES` (52 MiB)
        of float32 logits, i.e. ``CHUNK_BYTES // (4 * V)``; where that is
        under :data:`VOCAB_TILES_BELOW_ROWS` on CPU, vocabulary tiles of the
        same size instead (see :func:`plan_pass`). Given, always token chunks.
    loss_dtype : dtype, optional, keyword-only
        The returned loss's dtype, a floating dtype at least as wide as
        ``hidden``'s (a ``torch.dtype`` for tensors). Default: ``hidden``'s,
        as ``torch.nn.functional.cross_entropy``. The loss is accumulated in
        float64 and rounded once to this dtype, so ``torch.float32`` for
        16-bit input gives a loss, and an upstream gradient (e.g. the
        Trainer's ``1 / num_items_in_batch``), that are never rounded to
        16 bits; the gradients stay in the inputs' dtypes.
    **ce_options
        ``weight`` is taken by the projection, so class weights are passed as
        ``class_weight``; the others (``ignore_index``, ``reduction``,
        ``label_smoothing``, ``z_loss``, ``softcap``) are those of
        :func:`softmaxkit.cross_entropy`.

    Returns
    -------
    loss : scalar, or array of shape ``hidden.shape[:-1]`` for ``reduction="none"``
        In ``loss_dtype`` (default ``hidden``'s dtype); a torch.Tensor with
        autograd for tensor input.

    Raises
    ------
    TypeError, ValueError
        As :func:`softmaxkit.cross_entropy`, plus mismatched ``hidden`` /
        ``weight`` / ``bias`` shapes or dtypes, and a bad ``chunk_size``.

    Notes
    -----
    Memory: one ``(rows, V)`` (or, with vocabulary tiles, ``(tokens, V_tile)``)
    buffer in the compute dtype (float32, or float64 for float64 input) of
    about :data:`CHUNK_BYTES`, reused for the logits and then, in place, their
    gradient. With gradients (see
    :func:`linear_cross_entropy_and_grad`) the outputs come on top, and for
    float16 input (NumPy) the float32 copy of the weight and the float32
    weight-gradient accumulator (``V * D * 4`` bytes each), because summing
    per-chunk gradients in 16 bits loses the small ones. bfloat16/float16
    tensors on CPU avoid both where ``N <= V`` (:func:`plan_upcast_tiles`).

    Losses are accumulated per row in float64 by the cross-entropy kernel, so
    the loss has the accuracy of :func:`softmaxkit.cross_entropy` on the
    float32 logits.

    References
    ----------
    Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", 2024.
    Hsu et al., "Liger Kernel", 2024 (chunking over tokens).

    Examples
    --------
    >>> import numpy as np, softmaxkit as sk
    >>> h = np.ones((2, 3), np.float32); w = np.eye(4, 3, dtype=np.float32)
    >>> round(float(sk.linear_cross_entropy(h, w, np.array([0, 3]))), 4)
    1.7143
    """
    if is_torch_tensor(hidden):
        return torch_op("linear_cross_entropy")(
            hidden, weight, target, bias=bias, chunk_size=chunk_size, loss_dtype=loss_dtype, **ce_options
        )
    options = _ce_options(ce_options)
    loss, *_ = _linear_numpy(
        hidden, weight, bias, target, chunk_size=chunk_size, want_grads=False, grad_output=None,
        options=options, loss_dtype=loss_dtype,
    )
    return loss


@options_by_keyword("linear_cross_entropy_and_grad(hidden, weight, target, bias=b); name its other options "
                    "too (chunk_size=, grad_output=, class_weight=)")
def linear_cross_entropy_and_grad(
    hidden: Any,
    weight: Any,
    target: Any,
    *,
    bias: Any = None,
    chunk_size: int | None = None,
    grad_output: Any = None,
    loss_dtype: Any = None,
    **ce_options: Any,
) -> tuple[Any, Any, Any, Any]:
    """Loss and the gradients for ``hidden``, ``weight`` and ``bias``, in one pass.

    Arguments as :func:`linear_cross_entropy`, plus:

    grad_output : scalar or array_like of the loss's shape, optional, keyword-only
        Upstream gradient (default 1; for ``"none"`` the gradient of ``loss.sum()``).

    Returns
    -------
    loss : as :func:`linear_cross_entropy`
    grad_hidden : array of ``hidden``'s shape and dtype
    grad_weight : array of shape (V, D) in ``weight``'s dtype
        Accumulated over chunks in float32 (float64 for float64 input).
    grad_bias : array of shape (V,), or None without ``bias``

    Notes
    -----
    Three GEMMs per token chunk (logits, ``g @ W``, ``g.T @ h``), exactly
    those of a dense forward + backward, and one pass of the fused CE kernel;
    with vocabulary tiles the logits GEMM runs twice (statistics, then
    gradient).
    """
    if is_torch_tensor(hidden):
        return torch_op("linear_cross_entropy_and_grad")(
            hidden, weight, target, bias=bias, chunk_size=chunk_size, grad_output=grad_output,
            loss_dtype=loss_dtype, **ce_options,
        )  # fmt: skip
    return _linear_numpy(
        hidden, weight, bias, target, chunk_size=chunk_size, want_grads=True,
        grad_output=grad_output, options=_ce_options(ce_options), loss_dtype=loss_dtype,
    )


_CE_OPTION_NAMES = ("class_weight", "ignore_index", "reduction", "label_smoothing", "z_loss", "softcap")

#: Options of torch's, Liger Kernel's and Cut Cross-Entropy's losses that softmaxkit spells otherwise
#: or has no use for, and what to pass instead (a plain "unexpected option" said neither). The one
#: table for the functional ops (:func:`_ce_options`) and the ``softmaxkit.torch`` loss modules;
#: ``{weight}`` is the caller's name for class weights.
OTHER_SPELLINGS = {
    "size_average": "reduction= ('mean' or 'sum'; torch deprecated size_average)",
    "reduce": "reduction= ('none' for reduce=False; torch deprecated reduce)",
    "ce_weight": "{weight}= (Liger Kernel's ce_weight)",
    "lse_square_scale": "z_loss= (Liger Kernel's lse_square_scale; here the z-term is weighted like each row's NLL)",
    "return_z_loss": "nothing: the z-term is part of the loss; compute z_loss * logsumexp**2 yourself to log it",
    "shift": "nothing, and shift yourself (Cut Cross-Entropy's causal shift): hidden[:, :-1] with target[:, 1:] "
    "for (batch, time) inputs, or softmaxkit.integrations.transformers.causal_lm_loss(hidden, head, labels), "
    "which shifts unshifted labels as transformers' ForCausalLMLoss does",
    "filter_eps": "nothing: the gradient is always exact (Cut Cross-Entropy's filter_eps skips the gradient "
    "blocks whose softmax values all fall below it; there is no such approximation here)",
    "impl": "nothing: the implementation follows the device (numba kernels on CPU, Triton on CUDA where "
    "triton is installed, torch ops elsewhere)",
}


def other_spelling_advice(name: str, *, weight: str = "class_weight") -> str | None:
    """``"pass ..."``: what to give instead of another library's option ``name``, or None.

    ``weight`` is the caller's name for class weights (``class_weight`` where
    ``weight`` is the projection). See :data:`OTHER_SPELLINGS`.
    """
    hint = OTHER_SPELLINGS.get(name)
    return None if hint is None else "pass " + hint.format(weight=weight)


def _ce_options(ce_options: dict) -> dict:
    """Map ``**ce_options`` to :func:`cross_entropy_options` keywords (``class_weight`` -> ``weight``)."""
    unknown = sorted(set(ce_options) - set(_CE_OPTION_NAMES))
    if unknown:
        # the advice first: it is what the caller reads, and the list of valid names is long
        advice = "".join(
            f"{name!r}: {hint}; " for name in unknown if (hint := other_spelling_advice(name)) is not None
        )
        raise TypeError(
            f"unexpected cross-entropy option(s) {unknown}; {advice}valid: {list(_CE_OPTION_NAMES)} "
            "(class weights are passed as class_weight, since weight is the projection; from "
            "torch.nn.functional.linear_cross_entropy, linear_bias= is bias= and weight= is class_weight=)"
        )
    options = dict(ce_options)
    if "class_weight" in options:
        options["weight"] = options.pop("class_weight")
    return options
