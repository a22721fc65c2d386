"""Scalar math primitives that LLVM vectorises inside numba loops.

numba on these machines has no SVML, so ``math.exp`` in a loop stays a scalar
libm call (about 1.2 GB/s per thread) and a ``v if v > m else m`` max
reduction is not vectorised either. The primitives below are written so that a
plain ``for j in range(n)`` loop over them compiles to AVX2/AVX-512 code:

``vexp(x)``
    ``exp`` for ``x <= 0`` (the only arguments a max-shifted softmax ever
    sees). float32 uses a branch-free polynomial; float64 keeps ``math.exp``
    (accuracy first; the speed goals are float32).
``nan_max(a, b)``
    ``llvm.maximum``: IEEE 754-2019 ``maximum``, which propagates NaN and
    vectorises as a reduction (``llvm.maxnum`` would drop NaN).
``prefer_wide_vectors()``
    Asks LLVM for 512-bit vectors (zmm) in the calling function.
``like(arr, v)``
    ``v`` converted to ``arr``'s dtype, so accumulators and loop constants
    keep the array's precision instead of promoting the loop to float64.

Everything here is lazily compiled as part of its numba callers; importing
this module imports numba but compiles nothing. numba's on-disk cache keys a
caller on its own source file, not on this one: after editing this module,
touch ``cpu.py`` (or clear its ``__pycache__/*.nbi``/``*.nbc``).

float32 ``exp`` (Cody & Waite 1980 range reduction)::

    k = floor(x / ln 2 + 1/2)           # nearest integer
    r = x - k * ln2_hi - k * ln2_lo     # |r| <= ln(2) / 2; ln2_hi has 8 bits, so k * ln2_hi is exact
    exp(r) ~ 1 + r (1 + r q(r))         # q of degree 4: a degree-6 polynomial
    exp(x) = exp(r) * 2**k              # 2**k built from the exponent bits: (k + 127) << 23

``q`` is a weighted least-squares (near-minimax) fit of ``(exp(r) - 1 - r) /
r**2`` on ``[-ln 2 / 2, ln 2 / 2]``: polynomial error about 8e-9 relative,
below half an ulp of float32; the result is within 0.9 ulp of ``exp``
measured over ``[-87.3, 0]`` (the test allows 2). Results below ``FLT_MIN`` (``x < -87.34``) are flushed to 0 instead
of becoming subnormal; ``-inf`` gives 0 and NaN gives NaN. Arguments above 0
are outside the contract (``2**k`` is not guarded against overflow).

Fast-math: numba applies a caller's fast-math flags to everything inlined into
it, so ``vexp`` must stay correct under :data:`LOOP_FASTMATH` (which includes
``reassoc``). It therefore rounds with ``floor`` (an intrinsic that
reassociation cannot fold away, unlike the ``(x + 1.5 * 2**23) - 1.5 * 2**23``
trick), reduces with explicit ``llvm.fma`` calls (which it cannot merge into a
single, less exact ``x - k * ln2``) and converts to int only after clamping, so NaN never reaches the
float-to-int conversion. No ``nnan``/``ninf`` anywhere: the comparisons that
map ``-inf`` to 0 and keep NaN must survive.
"""

from __future__ import annotations

import math

import llvmlite.ir as llvm_ir
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

#: Flags for the callers' loops: reassociation lets LLVM split sums into vector
#: lanes; no ``nnan``/``ninf``, because NaN and -inf have defined meanings here.
LOOP_FASTMATH = frozenset({"contract", "arcp", "nsz", "reassoc"})

_F32 = np.float32
_LOG2E = _F32(1.4426950408889634)
_LN2_HI = _F32(0.693359375)  # 8 significant bits: k * _LN2_HI is exact for |k| < 2**15
_LN2_LO = _F32(-2.12194440e-4)  # ln 2 - _LN2_HI
_HALF = _F32(0.5)
_EXP_MIN_ARG = _F32(-87.33654)  # log(FLT_MIN): 2**k stays a normal number above it
_ONE = _F32(1.0)
_ZERO = _F32(0.0)
_Q0, _Q1, _Q2, _Q3, _Q4 = (
    _F32(0.49999967217445374),
    _F32(0.16666479408740997),
    _F32(0.04167356714606285),
    _F32(0.008372685872018337),
    _F32(0.0013571209274232388),
)


@intrinsic
def _i32_bits_to_f32(typingctx, x):
    """Reinterpret int32 bits as float32 (a no-op in machine code)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return sig, codegen


@intrinsic
def nan_max(typingctx, a, b):
    """``max(a, b)`` that returns NaN if either is NaN (``llvm.maximum``)."""
    if not (isinstance(a, types.Float) and a == b):
        return None
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        lty = context.get_value_type(a)
        fnty = llvm_ir.FunctionType(lty, [lty, lty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.maximum.f{a.bitwidth}")
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma``), never re-associated."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        lty = context.get_value_type(a)
        fnty = llvm_ir.FunctionType(lty, [lty, lty, lty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.f{a.bitwidth}")
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def prefer_wide_vectors(typingctx):
    """Let LLVM vectorise the calling function with 512-bit vectors; emits no code.

    LLVM tunes AVX-512 CPUs for 256-bit vectors by default (the first AVX-512
    chips lowered their clock for 512-bit code). For these ``exp``-bound loops
    512 bits measured about 1.7x faster on the build machine (Xeon, AVX-512),
    so each row loop sets the function attribute ``"prefer-vector-width"="512"``.
    A CPU without AVX-512 ignores it. llvmlite only knows a fixed list of
    attributes, hence the direct ``set.add``; if that ever fails, the loop
    simply keeps LLVM's default width.
    """
    sig = types.none()

    def codegen(context, builder, signature, args):
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except Exception:  # pragma: no cover - an llvmlite without set-based attributes
            pass
        return context.get_dummy_value()

    return sig, codegen


def _exp_f32(x):
    # NaN compares false: xs = _EXP_MIN_ARG for NaN and -inf, so k is always a
    # small finite integer, while r (from x itself) carries NaN into the result.
    xs = x if x >= _EXP_MIN_ARG else _EXP_MIN_ARG
    kf = np.floor(xs * _LOG2E + _HALF)  # float32 (math.floor would return an int)
    # Two fused steps: with reassoc, x - k*hi - k*lo could fold into x - k*(hi + lo).
    r = _fma(-kf, _LN2_HI, x)  # exact: k * _LN2_HI fits in float32
    r = _fma(-kf, _LN2_LO, r)
    # Horner all the way down: 1 + r (1 + r q(r)), six multiply-adds.
    q = (((_Q4 * r + _Q3) * r + _Q2) * r + _Q1) * r + _Q0
    p = (q * r + _ONE) * r + _ONE
    scale = _i32_bits_to_f32((np.int32(kf) + np.int32(127)) << 23)  # 2**k, k in [-126, 0]
    return _ZERO if x < _EXP_MIN_ARG else p * scale  # flush below FLT_MIN; exp(-inf) = 0


def _exp_f64(x):
    return math.exp(x)


def vexp(x):
    """``exp(x)`` for ``x <= 0``, vectorisable in float32 (numba-only)."""
    raise NotImplementedError("vexp is only callable from numba-compiled code")


@overload(vexp, jit_options={"fastmath": set(LOOP_FASTMATH)})
def _vexp_overload(x):
    if x == types.float32:
        return _exp_f32
    if x == types.float64:
        return _exp_f64
    return None


def like(arr, v):
    """``v`` converted to ``arr``'s dtype (numba-only)."""
    raise NotImplementedError("like is only callable from numba-compiled code")


@overload(like)
def _like_overload(arr, v):
    dtype = arr.dtype

    def impl(arr, v):
        return dtype(v)

    return impl
