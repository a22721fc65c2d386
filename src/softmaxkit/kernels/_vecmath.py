"""Scalar math primitives that LLVM vectorises inside numba loops.

numba on these machines has no SVML, so ``math.exp`` in a loop stays a scalar
libm call (about 1.2 GB/s per thread) and a ``v if v > m else m`` max
reduction is not vectorised either. The primitives below are written so that a
plain ``for j in range(n)`` loop over them compiles to AVX2/AVX-512 code:

``vexp(x)``
    ``exp`` for ``x <= 0`` (the only arguments a max-shifted softmax ever
    sees): a branch-free polynomial in both float32 and float64 (within 1
    ulp in float64; ``math.exp`` before, a scalar libm call that made
    float64 rows 3-4x slower than float32 ones).
``vtanh(x)``
    ``tanh`` for any ``x``, vectorisable in float32 (an odd polynomial near
    0, ``exp`` elsewhere; see below); float64 keeps ``math.tanh``.
``nan_max(a, b)``
    ``llvm.maximum``: IEEE 754-2019 ``maximum``, which propagates NaN and
    vectorises as a reduction (``llvm.maxnum`` would drop NaN).
``prefer_wide_vectors()``
    Asks LLVM for 512-bit vectors (zmm) in the calling function, and marks it
    ``alwaysinline`` so every caller runs its own inlined copy (results then do
    not depend on whether a kernel was JIT-compiled or loaded from the cache).
``like(arr, v)``
    ``v`` converted to ``arr``'s dtype, so accumulators and loop constants
    keep the array's precision instead of promoting the loop to float64.
``times(z, it)``
    ``z * it``, or ``z`` itself when ``it`` is None: a softmax without
    temperature compiles without the multiply (one vector instruction of
    about 16 per element in the exp loops).
``prefetch(arr, j)``
    ``llvm.prefetch`` of the cache line holding ``arr[j]`` into L1 (a hint:
    no fault, no effect on results).

Everything here is lazily compiled as part of its numba callers; importing
this module imports numba but compiles nothing. numba's on-disk cache keys a
caller on its own source file, not on this one: after editing this module,
touch ``cpu.py`` (or clear its ``__pycache__/*.nbi``/``*.nbc``).

float32 ``exp`` (Cody & Waite 1980 range reduction, rounding by a shifter)::

    t = fma(x, 1/ln 2, S)               # S = 1.5 * 2**23 + 127: t's low mantissa bits
                                        #   hold k + 127, k = round(x / ln 2)
    k = t - S                           # exact; one strict (never reassociated) subtraction
    r = x - k * ln2_hi - k * ln2_lo     # |r| <= ln(2) / 2; ln2_hi has 8 bits, so k * ln2_hi is exact
    exp(r) ~ 1 + r (1 + r q(r))         # q of degree 4: a degree-6 polynomial, all fma
    exp(x) = exp(r) * 2**k              # 2**k: t's bits shifted left by 23 are (k + 127) << 23

float64 ``exp`` is the same algorithm with ``S = 1.5 * 2**52 + 1023``,
fdlibm's split of ``ln 2`` (``ln2_hi`` ends in 32 zero bits), the shift to
the exponent by 52 bits, and Taylor's coefficients ``1/13!`` ... ``1/2!``
for ``q`` (a degree-13 polynomial: the truncation error ``(ln 2 / 2)**14 /
14!`` is 4e-18 relative, below float64's half ulp). Measured within 1 ulp of
NumPy's ``exp`` over ``[-708.39, 0]`` (the test allows 1), exactly 1 at 0;
results below ``DBL_MIN`` (``x < -708.40``) are flushed to 0.

``q`` is a weighted least-squares (near-minimax) fit of ``(exp(r) - 1 - r) /
r**2`` on ``[-ln 2 / 2, ln 2 / 2]``: polynomial error about 8e-9 relative,
below half an ulp of float32; the result is within 0.9 ulp of ``exp``
measured over ``[-87.3, 0]`` (the test allows 2). Results below ``FLT_MIN``
(``x < -87.34``) are flushed to 0 instead of becoming subnormal; ``-inf``
gives 0 and NaN gives NaN. Arguments above 0 are outside the contract
(``2**k`` is not guarded against overflow).

Why the shifter: it replaces ``floor``, the float-to-int conversion and the
exponent-bias add (about 4 vector instructions out of 20) with one ``fma``
whose bits already are the biased exponent, and needs no clamp of ``x``:
for ``-inf``, NaN or huge arguments ``t``'s bits are garbage, but a bit
reinterpretation is always defined and those lanes are either selected away
(``x < -87.34`` gives 0) or NaN through ``r``. Measured on the build machine
(AVX-512) the exp-and-sum loop went from 1.0 to 0.73 cycles per element.

float32 ``tanh``, with ``a = |x|`` and the sign of ``x`` put back bitwise
(so ``tanh(-0) = -0``)::

    a < 0.625:  tanh(a) ~ a + a**3 P(a**2)       # P of degree 4, Horner with fma
    otherwise:  tanh(a) = (1 - e) / (1 + e),   e = exp(-2a) <= 0.29

``P`` is a near-minimax fit of ``(tanh(a) - a) / a**3`` (Lawson-reweighted
least squares on Chebyshev nodes), relative error about 4e-9; near 0 the
polynomial keeps full relative precision where ``1 - e`` would cancel, and
above the split ``1 - e >= 0.71`` cancels nothing. Both branches are computed
and one is selected, so the loop stays branch-free. Within 2 ulp of ``tanh``
(tested); ``+-inf`` give ``+-1`` and NaN stays NaN.

Fast-math: numba applies a caller's fast-math flags to everything inlined
into it, so ``vexp`` must stay correct under :data:`LOOP_FASTMATH` (which
includes ``reassoc``). The shifter subtraction ``t - S`` is emitted strictly
(:func:`_strict_sub`, see :data:`_STRICT_FLAGS`), so reassociation cannot fold
``fma(x, c, S) - S`` into an unrounded ``x * c``; the reduction and the
polynomial use explicit ``llvm.fma`` calls, so they are fused (and
identical) whatever flags the caller has. No ``nnan``/``ninf`` anywhere:
the comparison that maps ``-inf`` to 0 and keeps NaN must survive.
"""

from __future__ import annotations

import math

import llvmlite.ir as llvm_ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

#: Flags for the callers' loops: reassociation lets LLVM split sums into vector
#: lanes; no ``nnan``/``ninf``, because NaN and -inf have defined meanings here.
LOOP_FASTMATH = frozenset({"contract", "arcp", "nsz", "reassoc"})

_F32 = np.float32
_LOG2E = _F32(1.4426950408889634)
_LN2_HI = _F32(0.693359375)  # 8 significant bits: k * _LN2_HI is exact for |k| < 2**15
_LN2_LO = _F32(-2.12194440e-4)  # ln 2 - _LN2_HI
# 1.5 * 2**23 (adding it rounds to an integer: float32's ulp there is 1) plus
# the exponent bias 127, so t's low mantissa bits are k + 127 directly.
_SHIFTER = _F32(12582912.0 + 127.0)
_EXP_MIN_ARG = _F32(-87.33654)  # log(FLT_MIN): 2**k stays a normal number above it
_ONE = _F32(1.0)
_ZERO = _F32(0.0)
_TANH_SPLIT = _F32(0.625)
_P0, _P1, _P2, _P3, _P4 = (
    _F32(-0.3333328068256378),
    _F32(0.13331441581249237),
    _F32(-0.05373971536755562),
    _F32(0.020639091730117798),
    _F32(-0.005704991985112429),
)
# float64 exp (see the module docstring): q(r) = (exp(r) - 1 - r) / r**2 by Taylor.
_LOG2E_64 = 1.4426950408889634
_LN2_HI_64 = 6.93147180369123816490e-01
_LN2_LO_64 = 1.90821492927058770002e-10
_SHIFTER_64 = 6755399441055744.0 + 1023.0
_EXP_MIN_ARG_64 = -708.3964185322641  # log(DBL_MIN)
_ONE_64 = 1.0
_ZERO_64 = 0.0
_EXP_TAYLOR_64 = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))
_ABS_BITS = np.int32(0x7FFFFFFF)
_SIGN_BIT = np.int32(-0x80000000)
_Q0, _Q1, _Q2, _Q3, _Q4 = (
    _F32(0.49999967217445374),
    _F32(0.16666479408740997),
    _F32(0.04167356714606285),
    _F32(0.008372685872018337),
    _F32(0.0013571209274232388),
)


def _bitcast(from_type, to_type):
    """An intrinsic reinterpreting ``from_type`` bits as ``to_type`` (a no-op in machine code)."""

    @intrinsic
    def bitcast(typingctx, x):
        sig = to_type(from_type)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(to_type))

        return sig, codegen

    return bitcast


_i32_bits_to_f32 = _bitcast(types.int32, types.float32)
_f32_bits_to_i32 = _bitcast(types.float32, types.int32)
_i64_bits_to_f64 = _bitcast(types.int64, types.float64)
_f64_bits_to_i64 = _bitcast(types.float64, types.int64)


#: The one flag the strict operations carry. numba's fast-math pass adds the
#: caller's flags to every float operation that has none, so an operation
#: emitted bare is not strict in a fast-math kernel. ``arcp`` (reciprocal
#: approximation) changes nothing for an add, subtract or multiply and marks
#: the instruction as already decided; without ``reassoc`` or ``contract`` it
#: is never reordered or fused into an fma.
_STRICT_FLAGS = ("arcp",)


def _float_binary(name, doc, emit):
    """An intrinsic of two floats of one type returning ``emit(builder, a, b)``, their LLVM values."""

    @intrinsic
    def binary(typingctx, a, b):
        if not (isinstance(a, types.Float) and a == b):
            return None
        sig = a(a, b)

        def codegen(context, builder, signature, args):
            return emit(builder, args[0], args[1])

        return sig, codegen

    binary.__name__ = binary.__qualname__ = name
    binary.__doc__ = doc
    return binary


def _llvm_maximum(builder, a, b):
    suffix = {"float": "f32", "double": "f64"}[str(a.type)]
    fnty = llvm_ir.FunctionType(a.type, [a.type, a.type])
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, f"llvm.maximum.{suffix}"), [a, b])


# Strictly rounded: once, never fused, never reassociated, whatever the caller's fast-math flags.
_strict_sub = _float_binary("_strict_sub", "``a - b``, strictly rounded.",
                            lambda builder, a, b: builder.fsub(a, b, flags=_STRICT_FLAGS))
#: ``a + b`` and ``a * b`` rounded exactly as written, for sums that two kernels must reproduce
#: bit for bit (the conformal score of a class at fit and at prediction).
strict_add = _float_binary("strict_add", "``a + b``, strictly rounded.",
                           lambda builder, a, b: builder.fadd(a, b, flags=_STRICT_FLAGS))
strict_mul = _float_binary("strict_mul", "``a * b``, strictly rounded.",
                           lambda builder, a, b: builder.fmul(a, b, flags=_STRICT_FLAGS))
nan_max = _float_binary("nan_max", "``max(a, b)`` that returns NaN if either is NaN (``llvm.maximum``).",
                        _llvm_maximum)


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
        _always_inline(builder)
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except Exception:  # pragma: no cover - an llvmlite without set-based attributes
            pass
        return context.get_dummy_value()

    return sig, codegen


def _always_inline(builder) -> None:
    """Mark the function being built ``alwaysinline``.

    LLVM then inlines it into each caller, so no call to a *separately compiled* copy remains.
    numba links a jitted callee into each caller as a linkonce_odr (weak) copy and re-optimises it
    there; under ``reassoc`` that copy's reduction order can differ from the callee's own
    compilation, and the JIT resolves the weak symbol to whichever copy was loaded first. The
    process that compiled the kernels (callees loaded first) and a later one loading the caller
    from the on-disk cache ran different code: row sums differed in the last bit (audit: 79,033 of
    500,000 float32 softmax entries).
    """
    builder.function.attributes.add("alwaysinline")


@intrinsic
def inline_into_callers(typingctx):
    """Mark the calling jitted function ``alwaysinline`` (see :func:`_always_inline`); emits no code.

    For a fast-math helper called from other kernels that does not call
    :func:`prefer_wide_vectors` (which marks it too): its result then does
    not depend on whether the kernels were compiled or loaded from the cache.
    """
    sig = types.none()

    def codegen(context, builder, signature, args):
        _always_inline(builder)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def prefetch(typingctx, arr, j):
    """Hint the CPU to load the cache line of ``arr[j]`` (1-D array) into L1.

    ``llvm.prefetch`` (read, locality 3: ``prefetcht0`` on x86). The address
    is not bounds-checked, but a prefetch never faults.
    """
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(j, types.Integer)):
        return None
    sig = types.none(arr, types.intp)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = llvm_ir.IntType(8).as_pointer()
        i32 = llvm_ir.IntType(32)
        address = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        fnty = llvm_ir.FunctionType(llvm_ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [address, i32(0), i32(3), i32(1)])  # read, keep in L1, data cache
        return context.get_dummy_value()

    return sig, codegen


def _exp_f32(x):
    t = _fma(x, _LOG2E, _SHIFTER)  # round(x / ln 2) + 127 in the low mantissa bits
    kf = _strict_sub(t, _SHIFTER)  # k as a float, exactly
    r = _fma(-kf, _LN2_HI, x)  # exact: k * _LN2_HI fits in float32
    r = _fma(-kf, _LN2_LO, r)
    # Horner all the way down: 1 + r (1 + r q(r)), six fused multiply-adds.
    q = _fma(_fma(_fma(_fma(_Q4, r, _Q3), r, _Q2), r, _Q1), r, _Q0)
    p = _fma(_fma(q, r, _ONE), r, _ONE)
    # (k + 127) << 23 is 2**k; int32 arithmetic drops t's other bits off the top.
    scale = _i32_bits_to_f32(np.int32(_f32_bits_to_i32(t) << 23))
    return _ZERO if x < _EXP_MIN_ARG else p * scale  # flush below FLT_MIN; exp(-inf) = 0


def _exp_f64(x):
    t = _fma(x, _LOG2E_64, _SHIFTER_64)  # round(x / ln 2) + 1023 in the low mantissa bits
    kf = _strict_sub(t, _SHIFTER_64)
    r = _fma(-kf, _LN2_HI_64, x)  # exact: _LN2_HI_64 ends in 32 zero bits
    r = _fma(-kf, _LN2_LO_64, r)
    q = _EXP_TAYLOR_64[0]
    for c in _EXP_TAYLOR_64[1:]:  # unrolled by numba: a tuple of constants
        q = _fma(q, r, c)
    p = _fma(_fma(q, r, _ONE_64), r, _ONE_64)  # 1 + r (1 + r q(r))
    scale = _i64_bits_to_f64(np.int64(_f64_bits_to_i64(t) << 52))
    return _ZERO_64 if x < _EXP_MIN_ARG_64 else p * scale


def vexp(x):
    """``exp(x)`` for ``x <= 0``, vectorisable in float32 (numba-only)."""
    raise NotImplementedError("vexp is only callable from numba-compiled code")


def _by_float_type(f32_impl, f64_impl):
    """An ``@overload`` typing function that picks ``f32_impl`` or ``f64_impl`` by the argument's type."""

    def typer(x):
        if x == types.float32:
            return f32_impl
        if x == types.float64:
            return f64_impl
        return None

    return typer


overload(vexp, jit_options={"fastmath": set(LOOP_FASTMATH)})(_by_float_type(_exp_f32, _exp_f64))


# Helpers shared by two overloads: numba inlines them into each, under the
# same flags the overloads compile with.
_shared = njit(inline="always", fastmath=set(LOOP_FASTMATH), error_model="numpy")


@_shared
def _tanh_and_exp_f32(x):
    """``(tanh(x), exp(-2|x|))``: the second is the far branch's ``e``, which
    :func:`vtanh_sech2` reuses."""
    bits = _f32_bits_to_i32(x)
    a = _i32_bits_to_f32(bits & _ABS_BITS)
    s = a * a
    p = _fma(_fma(_fma(_fma(_P4, s, _P3), s, _P2), s, _P1), s, _P0)
    near_zero = _fma(a * s, p, a)
    e = vexp(_F32(-2.0) * a)  # 0 for a > 43.7 and at inf: tanh = 1
    far = (_ONE - e) / (_ONE + e)
    t = near_zero if a < _TANH_SPLIT else far  # NaN compares false: NaN through e
    return _i32_bits_to_f32(_f32_bits_to_i32(t) | (bits & _SIGN_BIT)), e


def _tanh_f32(x):
    return _tanh_and_exp_f32(x)[0]


def _tanh_f64(x):
    return math.tanh(x)


@_shared
def _sech2_of_exp(e, one, four):
    """``sech(x)^2 = 4 e / (1 + e)^2`` from ``e = exp(-2|x|)`` in ``(0, 1]``: no
    cancellation anywhere, and ``e`` underflowing to 0 gives the right 0."""
    d = one + e
    return four * e / (d * d)


def _tanh_sech2_f32(x):
    t, e = _tanh_and_exp_f32(x)
    return t, _sech2_of_exp(e, _ONE, _F32(4.0))


def _tanh_sech2_f64(x):
    return math.tanh(x), _sech2_of_exp(math.exp(-2.0 * abs(x)), _ONE_64, 4.0)


def vtanh(x):
    """``tanh(x)``, vectorisable in float32 (numba-only)."""
    raise NotImplementedError("vtanh is only callable from numba-compiled code")


# error_model "numpy": a Python-style division checks its divisor for zero and
# may raise, a branch that keeps the loop scalar (here 1 + e >= 1 anyway).
overload(vtanh, jit_options={"fastmath": set(LOOP_FASTMATH), "error_model": "numpy"})(
    _by_float_type(_tanh_f32, _tanh_f64)
)


def vtanh_sech2(x):
    """``(tanh(x), sech(x)^2)``, vectorisable in float32 (numba-only).

    ``sech^2 = 1 - tanh^2`` comes from the ``exp(-2|x|)`` that ``tanh``
    computes anyway, as ``4 e / (1 + e)^2``: accurate to a few ulp also where
    tanh saturates, where ``1 - tanh^2`` cancels to no correct digit.
    """
    raise NotImplementedError("vtanh_sech2 is only callable from numba-compiled code")


overload(vtanh_sech2, jit_options={"fastmath": set(LOOP_FASTMATH), "error_model": "numpy"})(
    _by_float_type(_tanh_sech2_f32, _tanh_sech2_f64)
)


def like(arr, v):
    """``v`` converted to ``arr``'s dtype (numba-only)."""
    raise NotImplementedError("like is only callable from numba-compiled code")


@overload(like)
def _like_overload(arr, v):
    dtype = arr.dtype

    def impl(arr, v):
        return dtype(v)

    return impl


def times(z, it):
    """``z * it``, or ``z`` when ``it`` is None (numba-only; no multiply compiled then)."""
    raise NotImplementedError("times is only callable from numba-compiled code")


@overload(times, jit_options={"fastmath": set(LOOP_FASTMATH)})
def _times_overload(z, it):
    if isinstance(it, types.NoneType):
        return lambda z, it: z
    return lambda z, it: z * it
