"""Fused linear + cross-entropy on the GPU, chunked over tokens.

For ``hidden`` (N, D), ``weight`` (V, D) and optional ``bias`` (V,), the loss
is ``cross_entropy(hidden @ weight.T + bias, target)``. The (N, V) logits never
exist: tokens are processed ``chunk`` rows at a time:

1. ``Z = hidden[i:j] @ weight.T (+ bias)``: one cuBLAS GEMM into a reused
   (chunk, V) buffer in the input dtype (cuBLAS accumulates in float32 and
   rounds once, exactly as a dense ``F.linear`` would);
2. the fused cross-entropy kernel (:mod:`.cross_entropy`) reads ``Z`` and
   overwrites it *in place* with ``G = row_scale * dloss/dZ``. The buffer is
   ours, so this cannot corrupt anything autograd saved (a bug seen in peers
   that write into the caller's logits);
3. ``grad_hidden[i:j] = G @ weight`` and ``grad_weight += G.T @ hidden[i:j]``,
   the latter accumulated in float32 across chunks (bf16 accumulation over
   many chunks would lose the small contributions); ``grad_bias += sum(G)``.

GEMM work is the 3-GEMM floor (``6 N V D`` flops); extra memory is the chunk
buffer plus the float32 ``grad_weight`` accumulator. The chunk is picked from a
byte budget, not a constant: with V = 256k in bf16, a 1 GiB budget gives 2048
tokens, so the float32 accumulator is read and written only ``N / 2048`` times.

Reference: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language
Models", 2024 (which tiles further and never stores a chunk; chunking is the
simpler design and keeps the GEMMs in cuBLAS).
"""

from __future__ import annotations

import torch

from softmaxkit._options import CrossEntropyOptions
from softmaxkit.kernels.triton.cross_entropy import cross_entropy_rows

#: Default byte budget for the (chunk, V) logits buffer.
CHUNK_BUDGET_BYTES = 1 << 30


def chunk_rows(n_rows: int, n_classes: int, itemsize: int, budget_bytes: int = CHUNK_BUDGET_BYTES) -> int:
    """Tokens per chunk so that the (chunk, V) buffer fits ``budget_bytes``.

    Rounded down to a multiple of 128 (GEMM tile friendly) when that is
    possible, at least 1, at most ``n_rows``.
    """
    rows = max(1, budget_bytes // max(1, n_classes * itemsize))
    if rows >= 128:
        rows -= rows % 128
    return max(1, min(rows, n_rows))


#: Whether ``torch.addmm(..., out_dtype=float32)`` worked on this device
#: (None until first tried); the benchmark prints it.
FP32_ADDMM: bool | None = None


def _accumulate_f32(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``acc += a @ b`` with ``acc`` float32 and ``a``, ``b`` possibly narrower.

    On CUDA, ``torch.addmm(..., out_dtype=float32)`` lets cuBLAS read bf16
    operands and accumulate straight into the float32 buffer (no temporary).
    Where that is missing (CPU, older torch), the chunk's product is formed in
    the operands' dtype (cuBLAS/oneDNN accumulate it in float32 and round
    once) and added into float32: one rounding per chunk, never a running
    bf16 sum, and a temporary of ``acc``'s shape in the narrow dtype.
    """
    global FP32_ADDMM
    if a.dtype == acc.dtype:
        acc.addmm_(a, b)
        return
    if acc.is_cuda and FP32_ADDMM is not False:
        try:
            torch.addmm(acc, a, b, out_dtype=acc.dtype, out=acc)
            FP32_ADDMM = True
            return
        except (RuntimeError, TypeError):
            FP32_ADDMM = False
    acc.add_(a @ b)


def linear_cross_entropy_rows(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    options: CrossEntropyOptions,
    *,
    bias: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    row_scale: torch.Tensor | None = None,
    chunk_size: int | None = None,
):
    """Per-row loss and, with ``row_scale``, all gradients, chunked over tokens.

    Parameters
    ----------
    hidden : Tensor of shape (N, D)
    weight : Tensor of shape (V, D)
    target : Tensor of shape (N,) int64 or (N, V) probabilities
    options : CrossEntropyOptions
    bias : Tensor of shape (V,), optional
    class_weight : Tensor of shape (V,), optional
        Device copy of ``options.weight``.
    row_scale : Tensor of shape (N,) or one element, float32, optional
        If given, gradients of ``sum_i row_scale[i] * loss_i`` are returned.
    chunk_size : int, optional
        Tokens per chunk; by default from :data:`CHUNK_BUDGET_BYTES`.

    Returns
    -------
    loss : Tensor of shape (N,), float32
    grad_hidden : Tensor of shape (N, D) in ``hidden``'s dtype, or None
    grad_weight : Tensor of shape (V, D), float32, or None
    grad_bias : Tensor of shape (V,), float32, or None
    """
    n, _ = hidden.shape
    v = weight.shape[0]
    want_grad = row_scale is not None
    chunk = chunk_size or chunk_rows(n, v, hidden.element_size())
    loss = torch.empty(n, dtype=torch.float32, device=hidden.device)
    grad_hidden = torch.empty_like(hidden) if want_grad else None
    grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_grad else None
    grad_bias = (
        torch.zeros(v, dtype=torch.float32, device=weight.device)
        if want_grad and bias is not None
        else None
    )
    scale = row_scale.reshape(-1) if want_grad else None
    buf = torch.empty((min(chunk, n), v), dtype=hidden.dtype, device=hidden.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        h = hidden[start:stop]  # (c, D)
        z = buf[: stop - start]  # (c, V)
        if bias is None:
            torch.mm(h, weight.t(), out=z)
        else:
            torch.addmm(bias, h, weight.t(), out=z)
        t = target[start:stop]
        if not want_grad:
            loss[start:stop] = cross_entropy_rows(z, t, options, weight=class_weight)
            continue
        s = scale if scale.numel() == 1 else scale[start:stop]
        # In place: z becomes G = scale * dloss/dz (the buffer is private).
        loss[start:stop] = cross_entropy_rows(
            z, t, options, weight=class_weight, row_scale=s, grad_out=z
        )
        torch.mm(z, weight, out=grad_hidden[start:stop])
        _accumulate_f32(grad_weight, z.t(), h)
        if grad_bias is not None:
            grad_bias += z.sum(dim=0, dtype=torch.float32)
    return loss, grad_hidden, grad_weight, grad_bias
