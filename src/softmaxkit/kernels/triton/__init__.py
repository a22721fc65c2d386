"""Triton GPU kernels: softmax, log-softmax, fused cross-entropy and chunked
linear + cross-entropy.

Importing this package imports :mod:`triton` (and :mod:`torch`); nothing in
``import softmaxkit`` reaches it. :mod:`softmaxkit.torch._triton` is the only
caller: it owns autograd and the reductions, these modules own the math.

Contract (as :mod:`softmaxkit.kernels.reference`, adapted to device tensors):
inputs are already validated; logits are ``(N, C)`` tensors whose last axis is
contiguous (``stride(1) == 1``) in float16, bfloat16, float32 or float64
(everything is computed in float32 registers, float64 included); hard targets
are ``(N,)`` int64, soft targets ``(N, C)`` probabilities. Kernels apply no
reduction and no checks.

Shared habits, each explained where it is used:

* every sum and every exponential is float32, whatever the storage dtype;
* row offsets are ``int64`` (``row * stride`` overflows int32 once
  ``N * C > 2**31``, e.g. 8192 x 262144);
* the online softmax (Milakov & Gimelshein 2018) shifts by a max that is
  replaced by 0 while it is ``-inf``, so a leading all ``-inf`` block never
  computes ``(-inf) - (-inf)``.

Setting ``TRITON_INTERPRET=1`` before this package is imported runs every
kernel on CPU tensors through Triton's interpreter (used by the tests).
"""

from __future__ import annotations

from softmaxkit.kernels.triton.cross_entropy import cross_entropy_rows
from softmaxkit.kernels.triton.linear_cross_entropy import linear_cross_entropy_rows
from softmaxkit.kernels.triton.softmax import softmax_backward, softmax_forward

__all__ = [
    "softmax_forward",
    "softmax_backward",
    "cross_entropy_rows",
    "linear_cross_entropy_rows",
]
