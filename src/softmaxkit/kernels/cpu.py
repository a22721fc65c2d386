"""Multi-threaded numba CPU kernels, bound by memory bandwidth rather than ``exp``.

Same functions, signatures and semantics as :mod:`softmaxkit.kernels.reference`
(read its module docstring for the kernel contract): ``softmax_2d``,
``logsumexp_2d``, ``cross_entropy_2d``, plus the elementwise ``sigmoid`` and
``log_sigmoid`` re-exported from the reference. :func:`softmaxkit.kernels.select`
routes large inputs here; tests compare both backends with the float64 oracle.

Per row, with ``C`` classes (a row of 32,768 float32 is 128 KiB and stays in a
1-2 MiB L2 cache between passes, so DRAM sees each logit read once and each
output written once)::

    pass 1  m = max(x)                  llvm.maximum reduction: NaN/+inf propagate
    pass 2  e = exp(x - m), s = sum(e)  e stored into the output (softmax, CE grad)
    pass 3  out = e / s                 or the CE gradient; log-softmax stores
                                        x - m in pass 2 and subtracts log(s) here

* Rows of at most :data:`NARROW_MAX_CLASSES` classes (tabular heads: 2 to
  a few dozen) take the narrow-row kernels instead: a block of rows at a
  time, the max per row, then one flat ``exp`` loop over the whole block
  into a scratch block, then the sums and outputs per row. Along a row of a
  few classes the loops above never fill a vector.
* Outputs use plain stores, so each output line is also read once before it
  is written (read-for-ownership). Non-temporal stores avoid that read and
  were tried: each row was computed in a per-thread scratch row, then
  streamed out 64-byte-aligned with ``vmovntps``. On the build machine
  (Cascade Lake VM, 2 threads) that was slower: a streaming copy of
  128 MiB took 15.3 ms against 13.4 ms for a plain copy, and softmax at
  256 x 131072 took 27 ms against 20 ms.
* ``exp`` is the vectorised polynomial of :mod:`._vecmath` (no SVML here),
  computed once per element: stored while summing, then scaled. Row loops ask
  LLVM for 512-bit vectors (``prefer_wide_vectors``): about 1.7x the ``exp``
  throughput of LLVM's default 256-bit code on AVX-512 CPUs.
* In place (``out is x``, ``grad_out is x``) runs at full speed: the loops
  that read one buffer and write another are specialised for the exact alias
  (see ``_block``), which LLVM's runtime overlap check would reject.
* Fast-math (``reassoc`` etc., never ``nnan``/``ninf``) is confined to the row
  loops; the per-row scalar arithmetic (``log1p``, loss assembly) is strict
  IEEE, because numba spreads a function's flags over everything inlined
  into it.
* Row sums are accumulated in float32 over chunks of ``_CHUNK`` elements
  (split over the vector lanes, so each float32 partial sum adds only a
  handful of terms) and the chunk sums in float64: float32 row sums stay
  within 1e-6 of 1 at 262,144 classes, at float32 vector speed.
* ``log(s) = log1p(rest + n_max - 1)``, with ``rest`` the terms other than
  the max's exact ``exp(0) = 1``: ``-log p_max`` of a confident row keeps full
  relative precision (as in the reference). Where nothing is stored
  (logsumexp, loss only) or ``z`` is (log-softmax), the exp pass sums ``rest``
  alongside ``s`` (a compare and a masked add per vector). Where the
  exponentials are stored (CE gradient), the exp pass sums ``s`` only and a
  second pass over the cached row sums ``rest`` for confident rows
  (``s < 2``) alone; elsewhere ``log(s)`` is already accurate.
* The CE loss is assembled per row in float64 as ``(m - x_y) + log(s)``.
* A row whose max is ``-inf`` uses the shift 0, never ``(-inf) - (-inf)``.
* Offsets are numba's ``intp`` (int64): ``row * C`` cannot overflow.
* No ``nnan``/``ninf`` fast-math flags: NaN and ``+inf`` rows become NaN, all
  ``-inf`` rows give softmax 0, log-softmax and logsumexp ``-inf``, CE ``+inf``.

Threads: rows are split over numba's thread pool (``prange``). The count is
numba's: ``NUMBA_NUM_THREADS`` at startup (default: all cores), lowered at run
time with ``numba.set_num_threads(k)`` (per calling thread). For one row of
many classes only one thread works. Inputs under :data:`PARALLEL_MIN_ELEMENTS`
logits run on the calling thread alone (see there why). Calling these kernels from several Python
threads at once is safe with numba's ``omp`` or ``tbb`` threading layer; under ``workqueue``, which is
not thread-safe, the calls take turns (:func:`softmaxkit.kernels.run_parallel`).

Compilation is lazy (first call, one specialisation per dtype: float32 and
float64) and cached on disk (``cache=True``, in ``__pycache__`` or numba's
``NUMBA_CACHE_DIR``), so the JIT cost (tens of seconds for all kernels) is
paid once per machine. Importing this module imports numba and compiles
nothing. numba's cache is keyed on this file only: after editing
``_vecmath.py``, touch this file (or delete ``__pycache__/*.nbi``/``*.nbc``);
after editing this file, touch ``vocab_tiles.py``, whose kernels inline the
row functions defined here.

float32 ``exp`` flushes results below ``FLT_MIN`` (arguments under -87.3, i.e.
probabilities under 1.2e-38 relative to the max) to 0. The softcap's
``tanh`` is vectorised too (:func:`._vecmath.vtanh`, within 2 ulp): softcapped
CE with gradient at 1024 x 32768 (2 threads) measured 33 ms, against 409 ms
with the scalar ``math.tanh`` and 19 ms without a softcap.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from softmaxkit._options import CrossEntropyOptions
from softmaxkit.kernels import run_parallel, torch_threads_kept
from softmaxkit.kernels._vecmath import (
    LOOP_FASTMATH,
    like,
    nan_max,
    prefer_wide_vectors,
    prefetch,
    times,
    vexp,
    vtanh,
    vtanh_sech2,
)
from softmaxkit.kernels.reference import log_sigmoid, sigmoid

__all__ = ["softmax_2d", "logsumexp_2d", "cross_entropy_2d", "sigmoid", "log_sigmoid"]

#: Elements summed in the input precision before adding to the float64 total.
#: The loops keep 4 x 16 float32 partial sums, so each adds 16 terms. 1024
#: rather than 512 puts a 1000-class row in one chunk (one horizontal sum and
#: one vector-loop epilogue instead of two): 3-7% faster at 1000 classes.
_CHUNK = 1024

#: A row sum ``s`` below this is "confident" (``p_max > 1/2``): its ``log(s)``
#: needs ``rest`` exactly (see ``_log_sum``). Where the exponentials are stored
#: anyway (the CE gradient), ``rest`` is summed in a second, cached pass for
#: those rows only, instead of a compare and a masked add per element of
#: every row in the exp loop.
_EXACT_REST_BELOW = 2.0

#: Inputs with fewer logits run on the calling thread only. Waking numba's
#: pool costs more than the work there, and on an oversubscribed machine the
#: call waits until the OS schedules the second worker. Measured on the shared
#: 2-core machine, load average ~5, median per call of ``cross_entropy_2d``
#: with gradient: 200x50 float32 54 us on 1 thread vs 7.4 ms on 2; 500x50
#: 121 us vs 4.1 ms; 2x3 9 us vs 7 ms (unloaded, 2 threads win by at most
#: ~2x at 10k elements). Switching the count costs ~7 us per call. (A serial
#: compilation of the row loops, without ``parallel=True``, was tried for
#: these inputs and measured slower: 68 vs 38 us at 200x50.)
PARALLEL_MIN_ELEMENTS = 1 << 15


#: Rows of at most this many bytes prefetch a later row while they compute,
#: the one about this many bytes ahead (see :func:`_prefetch_half`).
_PREFETCH_MAX_ROW_BYTES = 8192


def _run(kernel, n_elements: int, *args) -> None:
    """Call a row-parallel ``kernel``, on the calling thread alone below
    :data:`PARALLEL_MIN_ELEMENTS` (numba's thread count is restored after);
    one call at a time under numba's ``workqueue`` layer (:func:`run_parallel`:
    even a one-thread call of a parallel kernel enters its pool)."""
    with torch_threads_kept():  # numba.get_num_threads() starts numba's pool, which resets torch's count
        threads = numba.get_num_threads()
        if n_elements >= PARALLEL_MIN_ELEMENTS or threads == 1:
            run_parallel(kernel, *args)
            return
        numba.set_num_threads(1)  # per calling thread: other threads keep their count
        try:
            run_parallel(kernel, *args)
        finally:
            numba.set_num_threads(threads)


_FLAGS = set(LOOP_FASTMATH)


def _inner(fn):
    """Loops over one row, with fast-math so LLVM vectorises their sums.

    numba applies a function's fast-math flags to everything inlined into it,
    so these helpers only ever call ``_vecmath`` primitives (which are written
    to stay exact under these flags), never a ``_scalar`` helper.
    """
    return njit(fastmath=_FLAGS, cache=True, nogil=True)(fn)


def _scalar(fn):
    """Per-row scalar arithmetic, strict IEEE (see ``_log_sum``); may call ``_inner``.

    Inlined at numba level into its (strict) callers: a call between
    separately compiled numba functions costs 50-100 cycles (the array
    arguments travel as exploded structs and LLVM does not inline across
    them), which on 1000-class rows was a tenth of the row's time.
    """
    return njit(cache=True, nogil=True, inline="always")(fn)


def _block(fn):
    """A vectorised loop over (part of) one row, inlined at numba level into
    the ``_inner`` function that calls it (same fast-math flags, no call).

    Loops that read ``v`` and write ``dst``, where ``dst`` may be ``v`` (in
    place), also rely on the inlining: two distinct pointers to one buffer
    fail LLVM's runtime overlap check, and the loop falls back to scalar code
    (5x slower). An ``_in_place`` wrapper passes one array as both, so LLVM
    sees the exact alias and vectorises; :func:`_exp_into` picks the wrapper
    by comparing data pointers.
    """
    return njit(fastmath=_FLAGS, cache=True, nogil=True, inline="always")(fn)


def _outer(fn):
    """Row-parallel entry points (one compiled specialisation per dtype).

    Strict IEEE for their own scalar code; the loops they call keep their
    fast-math flags (flags are per instruction), also once inlined here.
    """
    return njit(cache=True, nogil=True, parallel=True)(fn)


# --------------------------------------------------------------------------- row passes


@_scalar
def _prefetch_half(x, i, second):
    """Prefetch the first (or, with ``second``, the other) half of a later row
    of ``x`` into L1: the row about :data:`_PREFETCH_MAX_ROW_BYTES` after row
    ``i`` (2 rows ahead at 1000 float32 classes, 8 at 256). Nothing past the
    last row, or for rows longer than that.

    The hardware prefetcher stops at 4 KiB page boundaries, so a short row
    (1000 float32 is about one page) starts as a cold miss stream, and a
    row's compute and the next rows' memory latency ran one after the other.
    The row loops call this after their max pass and after their exp pass,
    so the lines arrive while the current row computes. Measured at 2
    threads, softmax: 4096 x 1000 1.70 -> 1.44 ms (all lines at once at the
    row start: 1.69 ms; prefetching the output rows too: slower),
    8192 x 2048 8.5 -> 8.0 ms, 16384 x 256 2.7 -> 2.3 ms. Longer rows keep
    the hardware prefetcher busy within their pages and measured slower
    with it (4096 x 4096 8.3 -> 8.4-8.6 ms, 1024 x 32768 16.5 -> 18.0 ms).
    """
    n, c = x.shape
    row_bytes = c * x.itemsize
    if row_bytes > _PREFETCH_MAX_ROW_BYTES:
        return
    ahead = i + max(1, _PREFETCH_MAX_ROW_BYTES // max(row_bytes, 1))
    if ahead >= n:
        return
    row = x[ahead]
    step = 64 // x.itemsize  # elements per cache line
    middle = (c // 2) // step * step
    if second:
        for j in range(middle, c, step):
            prefetch(row, j)
        prefetch(row, c - 1)  # the row need not start on a line boundary
    else:
        for j in range(0, middle, step):
            prefetch(row, j)


@_inner
def _row_max(v):
    prefer_wide_vectors()
    m = like(v, -np.inf)
    for j in range(v.shape[0]):
        m = nan_max(m, v[j])
    return m


@_scalar
def _shift_of(v, m):
    """The max shift, 0 for an all -inf row so ``x - shift`` is never NaN there."""
    return like(v, 0.0) if m == -np.inf else m


@_block
def _exp_sum_block(v, shift):
    prefer_wide_vectors()
    one = like(v, 1.0)
    zero = like(v, 0.0)
    acc = zero
    rest = zero
    for j in range(v.shape[0]):
        e = vexp(v[j] - shift)
        acc += e
        rest += zero if e == one else e
    return acc, rest


@_inner
def _exp_sum(v, shift):
    """``(s, rest)``: ``s = sum(e)`` and ``rest = sum(e[e != 1])`` with ``e = exp(v - shift)``.

    float32 chunk sums, float64 totals (see ``_CHUNK``); ``rest`` leaves out the
    max's exact ``exp(0) = 1`` so :func:`_log_sum` keeps ``log(s)`` exact for
    confident rows.
    """
    n = v.shape[0]
    total = 0.0
    rest = 0.0
    for start in range(0, n, _CHUNK):
        # Slices, so every loop index starts at 0: numba's negative-index
        # wraparound then folds away, and LLVM vectorises (a loop over
        # range(start, stop) on the whole row stays scalar).
        acc, acc_rest = _exp_sum_block(v[start : start + _CHUNK], shift)
        total += acc
        rest += acc_rest
    return total, rest


@_block
def _exp_store_block(v, dst, shift, it, with_rest, store_z):
    prefer_wide_vectors()
    one = like(v, 1.0)
    zero = like(v, 0.0)
    acc = zero
    rest = zero
    for j in range(v.shape[0]):
        z = times(v[j] - shift, it)
        e = vexp(z)
        dst[j] = z if store_z else e  # the flags are loop-invariant: LLVM unswitches
        acc += e
        if with_rest:
            rest += zero if e == one else e
    return acc, rest


@_inner
def _exp_in_place(buf, shift, it, with_rest, store_z):
    total = 0.0
    rest = 0.0
    for start in range(0, buf.shape[0], _CHUNK):
        chunk = buf[start : start + _CHUNK]  # one view passed twice: an exact alias
        acc, acc_rest = _exp_store_block(chunk, chunk, shift, it, with_rest, store_z)
        total += acc
        rest += acc_rest
    return total, rest


@_inner
def _exp_apart(v, dst, shift, it, with_rest, store_z):
    total = 0.0
    rest = 0.0
    for start in range(0, v.shape[0], _CHUNK):
        stop = start + _CHUNK
        acc, acc_rest = _exp_store_block(
            v[start:stop], dst[start:stop], shift, it, with_rest, store_z
        )
        total += acc
        rest += acc_rest
    return total, rest


@_scalar
def _exp_into(v, dst, shift, it, with_rest, store_z):
    """One pass: ``(s, rest)`` as :func:`_exp_sum`, storing ``e`` or ``z`` into ``dst``.

    ``z = (v - shift) * it`` (``it`` None: no multiply) and ``e = exp(z)``;
    ``dst`` receives ``e`` (softmax, CE gradient) or, with ``store_z``, ``z``
    (log-softmax, which then only subtracts ``log(s)``). ``dst`` may be
    ``v``'s memory (in place). ``rest`` is 0 unless ``with_rest``.
    """
    if v.ctypes.data == dst.ctypes.data:
        return _exp_in_place(dst, shift, it, with_rest, store_z)
    return _exp_apart(v, dst, shift, it, with_rest, store_z)


@_block
def _rest_block(e):
    prefer_wide_vectors()
    one = like(e, 1.0)
    zero = like(e, 0.0)
    rest = zero
    for j in range(e.shape[0]):
        rest += zero if e[j] == one else e[j]
    return rest


@_inner
def _rest_of_stored(e):
    """``sum(e[e != 1])`` over a row of stored exponentials (chunked as :func:`_exp_sum`)."""
    rest = 0.0
    for start in range(0, e.shape[0], _CHUNK):
        rest += _rest_block(e[start : start + _CHUNK])
    return rest


@_scalar
def _rest_after_store(s, e):
    """``(s, rest)`` for :func:`_log_sum` of a row whose exponentials ``e`` were
    stored by :func:`_exp_into` without ``with_rest``.

    Only a confident row (``s`` below :data:`_EXACT_REST_BELOW`) needs the
    exact ``rest``; it is summed from ``e`` while the row is still in cache,
    and ``s`` is refined to ``n_max + rest``: the float32 lane that added the
    max's 1 to hundreds of small terms is off by up to ~1e-7 absolute, which
    would leave ``p_y - 1`` of a confident target with only ~1e-4 relative
    precision. Elsewhere ``s - 1`` (exact in float64) makes :func:`_log_sum`
    return ``log(s)``, accurate there: ``log(s) >= log 2`` and ``s`` has a
    relative error near float32's, so ``log(s)`` keeps about 1e-7 relative.
    """
    if s < _EXACT_REST_BELOW:
        rest = _rest_of_stored(e)
        if s > 0.0:  # s == 0 (all -inf) stays 0; NaN never gets here
            s = np.round(s - rest) + rest
        return s, rest
    return s, s - 1.0


@_scalar
def _log_sum(s, rest):
    """``log(s)`` to full relative precision, also for a confident row (``s ~ 1``).

    Every max element contributes exactly ``exp(0) = 1``, so ``s = n_max + rest``
    and ``log(s) = log1p(rest + (n_max - 1))``: ``-log p_max`` keeps its
    relative precision where ``log(1 + tiny)`` would round ``tiny`` away (the
    reference does the same). ``-inf`` for an all -inf row (``s == 0``), NaN
    stays NaN. Strict IEEE: reassociated as ``(rest + n_max) - 1`` it would
    round ``rest`` away again.
    """
    if not s > 0.0:
        return -np.inf if s == 0.0 else s
    n_max = np.round(s - rest)  # an exact small integer: rest is off by < 1e-6
    return math.log1p(rest + (n_max - 1.0))


@_inner
def _scale(dst, a):
    prefer_wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] *= a


@_inner
def _scale_minus_weighted(dst, a, b, w, has_weight):
    """``dst = dst * a - b * w`` (``w`` all ones unless ``has_weight``)."""
    prefer_wide_vectors()
    if has_weight:
        for j in range(dst.shape[0]):
            dst[j] = dst[j] * a - b * w[j]
    else:
        for j in range(dst.shape[0]):
            dst[j] = dst[j] * a - b


@_inner
def _subtract(dst, c):
    prefer_wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] -= c


@_inner
def _neg_shift_dot(v, w, has_weight, shift):
    """``sum_c w_c (shift - v_c)`` in float64; terms with ``w_c == 0`` are 0 even at ``-inf``."""
    prefer_wide_vectors()
    acc = 0.0
    if has_weight:
        zero = like(v, 0.0)
        for j in range(v.shape[0]):
            wj = w[j]
            term = wj * (shift - v[j])
            acc += np.float64(zero if wj == zero else term)
    else:
        for j in range(v.shape[0]):
            acc += np.float64(shift - v[j])
    return acc


@_inner
def _soft_target_sums(v, t, w, has_weight, keep, add, shift):
    """``(sum_c wt_c (shift - v_c), sum_c wt_c)`` with ``wt = w * (keep * t + add)``.

    A zero ``wt_c`` contributes exactly 0, also where ``v_c = -inf``.
    """
    prefer_wide_vectors()
    dot = 0.0
    total = 0.0
    zero = like(v, 0.0)
    for j in range(v.shape[0]):
        wt = keep * t[j] + add
        if has_weight:
            wt = wt * w[j]
        term = wt * (shift - v[j])
        dot += np.float64(zero if wt == zero else term)
        total += np.float64(wt)
    return dot, total


@_inner
def _soft_target_grad(dst, a, b, t, w, has_weight, keep, add):
    """``dst = dst * a - b * w * (keep * t + add)``: ``p * coef - wt``, scaled."""
    prefer_wide_vectors()
    for j in range(dst.shape[0]):
        wt = keep * t[j] + add
        if has_weight:
            wt = wt * w[j]
        dst[j] = dst[j] * a - b * wt


@_inner
def _softcap(v, dst, slope, cap):
    """``dst = cap * tanh(v / cap)`` (Gemma 2), with the vectorised ``tanh``.

    When ``slope`` has the row's length it also receives ``dx'/dx =
    sech(v / cap)**2`` (:func:`._vecmath.vtanh_sech2`), while the raw logits
    are still at hand (the gradient may overwrite them). The textbook
    ``1 - (x' / cap)**2`` cancels where tanh saturates: from a float32 ``x'``
    it keeps no correct digit once ``|v| / cap`` passes about 4.
    """
    prefer_wide_vectors()
    inv = like(v, 1.0) / cap
    if slope.shape[0] == v.shape[0]:
        for j in range(v.shape[0]):
            t, slope[j] = vtanh_sech2(v[j] * inv)
            dst[j] = cap * t
    else:
        for j in range(v.shape[0]):
            dst[j] = cap * vtanh(v[j] * inv)


@_inner
def _softcap_grad(dst, slope):
    """Chain rule through the softcap: ``dst *= dx'/dx`` as :func:`_softcap` wrote it."""
    prefer_wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] *= slope[j]


@_scalar
def _softcap_row(xr, cap, want_slope):
    """``(x', slope)`` of one row: fresh arrays under a softcap (``slope`` empty
    unless ``want_slope``), ``(xr, empty)`` without one."""
    slope = np.empty(xr.shape[0] if cap > 0.0 and want_slope else 0, dtype=xr.dtype)
    if cap > 0.0:
        src = np.empty(xr.shape[0], dtype=xr.dtype)
        _softcap(xr, src, slope, like(xr, cap))
        return src, slope
    return xr, slope


# --------------------------------------------------------------------------- entry points


@_outer
def _softmax_rows(x, out, it, log):
    for i in prange(x.shape[0]):
        xr = x[i]
        orow = out[i]
        shift = _shift_of(xr, _row_max(xr))
        _prefetch_half(x, i, False)
        if log:
            s, rest = _exp_into(xr, orow, shift, it, True, True)  # orow = (x - m) / T
            _prefetch_half(x, i, True)
            if s == 0.0:
                orow[:] = -np.inf  # all -inf row
            else:
                _subtract(orow, like(xr, _log_sum(s, rest)))
        else:
            s, _ = _exp_into(xr, orow, shift, it, False, False)  # orow = exp((x - m) / T)
            _prefetch_half(x, i, True)
            _scale(orow, like(xr, 0.0 if s == 0.0 else 1.0 / s))


@_outer
def _logsumexp_rows(x, res):
    for i in prange(x.shape[0]):
        xr = x[i]
        shift = _shift_of(xr, _row_max(xr))
        _prefetch_half(x, i, False)
        s, rest = _exp_sum(xr, shift)
        _prefetch_half(x, i, True)
        res[i] = np.float64(shift) + _log_sum(s, rest)


@_scalar
def _exp_pass(src, gr, shift, want_grad):
    """``(s, log s)`` of one CE row, ``s = sum(exp(src - shift))``; with
    ``want_grad`` the exponentials are stored into ``gr`` (which may be
    ``src``'s memory), ready to be scaled into the gradient."""
    if want_grad:
        s, _ = _exp_into(src, gr, shift, None, False, False)
        s, rest = _rest_after_store(s, gr)
    else:
        s, rest = _exp_sum(src, shift)
    return s, _log_sum(s, rest)


@_scalar
def _ce_row_grad_scale(s, lse, coef, zeta, weight_of_lse, scale):
    """``scale * d loss / d x'_j`` is ``e_j * a - ...``; returns ``a`` (float64).

    ``a = scale * (coef + 2 zeta w lse) / s``; the z-loss term only on finite
    ``lse`` (an all -inf row has ``p = 0`` and ``1/s := 0``).
    """
    inv_s = 0.0 if s == 0.0 else 1.0 / s
    lse_term = 2.0 * zeta * lse if math.isfinite(lse) else 0.0
    return scale * (coef + lse_term * weight_of_lse) * inv_s


@_scalar
def _hard_row_loss(s, log_s, neg_z_y, smooth, w_y, w_sum, n_classes, eps, zeta, lse):
    """One row's hard-target loss (float64) from its statistics.

    ``s = sum(exp(x' - m))`` and ``log_s`` (see :func:`_log_sum`),
    ``neg_z_y = m - x'_y``, ``smooth = sum_c w_c (m - x'_c)`` (read only with
    label smoothing) and ``lse = m + log s``::

        (1 - eps) w_y (log s + m - x'_y) + eps / C (smooth + w_sum log s) + zeta w_y lse**2

    ``+inf`` for an all ``-inf`` row (``s == 0``).
    """
    if s == 0.0:
        return np.inf  # all -inf row: the target is impossible
    row = (1.0 - eps) * w_y * (log_s + neg_z_y) if eps < 1.0 else 0.0
    if eps > 0.0:
        row += eps / n_classes * (smooth + w_sum * log_s)
    if zeta > 0.0:
        row += zeta * w_y * lse * lse
    return row


@_scalar
def _soft_row_loss(s, log_s, dot, wt_sum, zeta, lse):
    """One row's soft-target loss: ``dot + wt_sum log s + zeta lse**2`` with
    ``dot = sum_c wt_c (m - x'_c)``, ``wt_sum = sum_c wt_c``; ``+inf`` if ``s == 0``."""
    return np.inf if s == 0.0 else dot + wt_sum * log_s + zeta * lse * lse


@_scalar
def _hard_row_grad(gr, src, y, w, has_weight, w_y, w_sum, n_classes, eps, zeta, s, lse, scale, slope):
    """Turn the stored ``e = exp(x' - m)`` in ``gr`` into ``scale * dloss/dx`` (hard target).

    ``gr``, ``src`` and ``w`` (class weights, when ``has_weight``) may cover
    a slice of the classes; ``y`` indexes that slice and is skipped when
    outside it. ``src`` holds the softcapped logits, and ``slope`` their
    ``dx'/dx`` (empty without a softcap), as :func:`_softcap_row` made them.
    """
    coef = (1.0 - eps) * w_y + eps * w_sum / n_classes
    a = like(src, _ce_row_grad_scale(s, lse, coef, zeta, w_y, scale))
    if eps > 0.0:
        _scale_minus_weighted(gr, a, like(src, eps / n_classes * scale), w, has_weight)
    else:
        _scale(gr, a)
    if 0 <= y < gr.shape[0]:
        # (p_y - 1)-style correction in the compute dtype (float32 or wider).
        gr[y] -= like(src, (1.0 - eps) * w_y * scale)
    if slope.shape[0] > 0:
        _softcap_grad(gr, slope)


@_scalar
def _soft_row_grad(gr, src, tr, w, has_weight, keep, add, wt_sum, zeta, s, lse, scale, slope):
    """As :func:`_hard_row_grad` for soft targets ``tr`` (``wt = w (keep t + add)``)."""
    a = like(src, _ce_row_grad_scale(s, lse, wt_sum, zeta, 1.0, scale))
    _soft_target_grad(gr, a, like(src, scale), tr, w, has_weight, keep, add)
    if slope.shape[0] > 0:
        _softcap_grad(gr, slope)


@_outer
def _ce_hard_rows(
    x, target, w, w64, has_weight, w_sum, ignore_index, eps, zeta, cap, row_scale, g, want_grad, loss
):
    n, c = x.shape
    for i in prange(n):
        y = target[i]
        if y == ignore_index:
            loss[i] = 0.0
            if want_grad:
                g[i, :] = 0.0
            continue
        xr = x[i]
        src, slope = _softcap_row(xr, cap, want_grad)  # x' = cap * tanh(x / cap) and dx'/dx
        shift = _shift_of(src, _row_max(src))
        _prefetch_half(x, i, False)
        shift64 = np.float64(shift)
        w_y = w64[y] if has_weight else 1.0
        # Everything that reads the logits happens before the gradient may overwrite them.
        neg_z_y = shift64 - np.float64(src[y])
        smooth = _neg_shift_dot(src, w, has_weight, shift) if eps > 0.0 else 0.0
        # Without want_grad nothing is written and g is a (1, 0) placeholder; g[0] (not src,
        # which may be a read-only input) keeps gr one writable type for numba.
        gr = g[i] if want_grad else g[0]
        s, log_s = _exp_pass(src, gr, shift, want_grad)
        _prefetch_half(x, i, True)
        lse = shift64 + log_s
        loss[i] = _hard_row_loss(s, log_s, neg_z_y, smooth, w_y, w_sum, c, eps, zeta, lse)
        if want_grad:
            _hard_row_grad(gr, src, y, w, has_weight, w_y, w_sum, c, eps, zeta, s, lse, row_scale[i], slope)


@_outer
def _ce_soft_rows(x, target, w, has_weight, eps, zeta, cap, row_scale, g, want_grad, loss):
    n, c = x.shape
    for i in prange(n):
        xr = x[i]
        tr = target[i]
        src, slope = _softcap_row(xr, cap, want_grad)
        shift = _shift_of(src, _row_max(src))
        _prefetch_half(x, i, False)
        _prefetch_half(target, i, False)
        keep = like(src, 1.0 - eps)
        add = like(src, eps / c)
        dot, wt_sum = _soft_target_sums(src, tr, w, has_weight, keep, add, shift)
        # Without want_grad nothing is written and g is a (1, 0) placeholder; g[0] (not src,
        # which may be a read-only input) keeps gr one writable type for numba.
        gr = g[i] if want_grad else g[0]
        s, log_s = _exp_pass(src, gr, shift, want_grad)
        _prefetch_half(x, i, True)
        _prefetch_half(target, i, True)
        lse = np.float64(shift) + log_s
        loss[i] = _soft_row_loss(s, log_s, dot, wt_sum, zeta, lse)
        if want_grad:
            _soft_row_grad(gr, src, tr, w, has_weight, keep, add, wt_sum, zeta, s, lse, row_scale[i], slope)


# --------------------------------------------------------------------------- narrow rows

#: Rows of at most this many classes take the narrow-row kernels (softmax,
#: log-softmax, logsumexp, and CE with hard targets and no softcap). The row
#: loops above vectorise along a row; a row of a few classes never fills a
#: vector (16 float32 lanes, unrolled 4x), so every element took the scalar
#: epilogue and each row paid ~80 ns of loop set-up: CE with gradient cost 30
#: ns per element at 3 classes and 13 at 10 (float64, before the float64
#: ``vexp``). The narrow kernels vectorise across the rows of a block
#: instead. At 32 classes the row loops were faster again (the narrow
#: kernels took 1.05-1.8x their time, 1 thread);
#: ``benchmarks/bench_narrow_rows.py`` prints both, with torch and scipy.
NARROW_MAX_CLASSES = 16

#: Rows per block of the narrow kernels (their unit of parallel work: at 16
#: float64 classes a block's scratch is 16 KiB).
_NARROW_BLOCK_ROWS = 128


@_block
def _exp_shifted_block(v, scratch, it):
    prefer_wide_vectors()
    for k in range(v.shape[0]):
        scratch[k] = vexp(times(v[k] - scratch[k], it))


@_inner
def _exp_shifted(v, scratch, it):
    """``scratch = exp((v - scratch) * it)`` over a flat block (``scratch`` holds each element's shift)."""
    _exp_shifted_block(v, scratch, it)


@_scalar
def _narrow_exp(x, block, it):
    """``(start, stop, scratch, shift)`` of row block ``block`` of ``x`` (N, C):
    its rows ``start:stop``, each row's max shift (``shift``, float64, one per
    row) and ``exp((x - shift) * it)`` (``scratch``, flat, ``(stop - start) *
    C`` elements of ``x``'s dtype).

    The max and the broadcast of the shift are scalar loops per row; the
    ``exp``, the bulk of the work, is one vectorised loop over the block.
    ``x`` is only read.
    """
    n, c = x.shape
    start = block * _NARROW_BLOCK_ROWS
    stop = min(n, start + _NARROW_BLOCK_ROWS)
    scratch = np.empty((stop - start) * c, dtype=x.dtype)
    shift = np.empty(stop - start)
    for r in range(stop - start):
        xr = x[start + r]
        m = like(xr, -np.inf)
        for j in range(c):
            m = nan_max(m, xr[j])
        m = _shift_of(xr, m)
        shift[r] = m
        for j in range(c):
            scratch[r * c + j] = m
    _exp_shifted(x[start:stop].reshape(-1), scratch, it)
    return start, stop, scratch, shift


@_scalar
def _short_row_sums(e):
    """``(s, rest)`` of one short row of exponentials, in float64 (see :func:`_log_sum`)."""
    s = 0.0
    rest = 0.0
    for j in range(e.shape[0]):
        ej = np.float64(e[j])
        s += ej
        rest += 0.0 if ej == 1.0 else ej
    return s, rest


@_scalar
def _narrow_blocks(n):
    """Blocks of :data:`_NARROW_BLOCK_ROWS` rows covering ``n`` rows."""
    return (n + _NARROW_BLOCK_ROWS - 1) // _NARROW_BLOCK_ROWS


@_outer
def _softmax_narrow_rows(x, out, it, log):
    """:func:`_softmax_rows` for rows of few classes (``out`` may be ``x``)."""
    n, c = x.shape
    for b in prange(_narrow_blocks(n)):
        start, stop, scratch, shift = _narrow_exp(x, b, it)
        for r in range(stop - start):
            e = scratch[r * c : (r + 1) * c]
            s, rest = _short_row_sums(e)
            xr = x[start + r]
            orow = out[start + r]
            if log:
                log_s = _log_sum(s, rest)
                m = like(xr, shift[r])
                for j in range(c):  # element by element, so out may be x
                    orow[j] = like(xr, -np.inf) if s == 0.0 else times(xr[j] - m, it) - like(xr, log_s)
            else:
                inv = like(xr, 0.0 if s == 0.0 else 1.0 / s)
                for j in range(c):
                    orow[j] = e[j] * inv


@_outer
def _logsumexp_narrow_rows(x, res):
    """:func:`_logsumexp_rows` for rows of few classes."""
    n, c = x.shape
    for b in prange(_narrow_blocks(n)):
        start, stop, scratch, shift = _narrow_exp(x, b, None)
        for r in range(stop - start):
            s, rest = _short_row_sums(scratch[r * c : (r + 1) * c])
            res[start + r] = shift[r] + _log_sum(s, rest)


@_outer
def _ce_hard_narrow_rows(x, target, w, w64, has_weight, w_sum, ignore_index, eps, zeta, row_scale, g, want_grad, loss):
    """:func:`_ce_hard_rows` without a softcap, for rows of few classes.

    The exponentials go to a per-block scratch, so the gradient (which may
    be ``x`` itself) is written row by row after that row's logits are read.
    Same arithmetic and special values as the wide rows, except that the
    row sums are accumulated in float64 throughout.
    """
    n, c = x.shape
    no_slope = np.empty(0, dtype=x.dtype)  # no softcap here
    for b in prange(_narrow_blocks(n)):
        start, stop, scratch, shift = _narrow_exp(x, b, None)
        for r in range(stop - start):
            i = start + r
            y = target[i]
            if y == ignore_index:
                loss[i] = 0.0
                if want_grad:
                    g[i, :] = 0.0
                continue
            xr = x[i]
            m = shift[r]
            neg_z_y = m - np.float64(xr[y])
            smooth = _neg_shift_dot(xr, w, has_weight, like(xr, m)) if eps > 0.0 else 0.0
            e = scratch[r * c : (r + 1) * c]
            s, rest = _short_row_sums(e)
            log_s = _log_sum(s, rest)
            lse = m + log_s
            w_y = w64[y] if has_weight else 1.0
            loss[i] = _hard_row_loss(s, log_s, neg_z_y, smooth, w_y, w_sum, c, eps, zeta, lse)
            if want_grad:
                gr = g[i]
                for j in range(c):
                    gr[j] = e[j]
                _hard_row_grad(gr, gr, y, w, has_weight, w_y, w_sum, c, eps, zeta, s, lse, row_scale[i], no_slope)


# --------------------------------------------------------------------------- public kernels


def softmax_2d(
    x: np.ndarray, out: np.ndarray, *, inv_temperature: float = 1.0, log: bool = False
) -> np.ndarray:
    """Row-wise (log-)softmax of ``x * inv_temperature`` written into ``out``.

    Parameters
    ----------
    x : ndarray of shape (N, C), float32 or float64, C-contiguous
    out : ndarray like ``x``
        May be ``x`` itself (in-place).
    inv_temperature : float > 0
    log : bool
        Log-softmax instead of softmax.

    Returns
    -------
    out : ndarray of shape (N, C)

    Notes
    -----
    ``softmax = e / s`` with ``e = exp((x - m) / T)`` computed once and
    ``s = sum(e)``; ``log_softmax = (x - m) / T - log(s)``. Rows of all ``-inf``
    give 0 (softmax) or ``-inf`` (log-softmax); NaN or ``+inf`` make the row NaN.
    """
    # None compiles the exp loops without the temperature multiply.
    it = None if inv_temperature == 1.0 else x.dtype.type(inv_temperature)
    rows = _softmax_narrow_rows if x.shape[1] <= NARROW_MAX_CLASSES else _softmax_rows
    _run(rows, x.size, x, out, it, bool(log))
    return out


def logsumexp_2d(x: np.ndarray) -> np.ndarray:
    """Row-wise ``m + log(sum(exp(x - m)))`` in float64, shape ``(N,)``.

    ``-inf`` for a row of all ``-inf``, NaN for a row with NaN or ``+inf``.
    """
    res = np.empty(x.shape[0], dtype=np.float64)
    rows = _logsumexp_narrow_rows if x.shape[1] <= NARROW_MAX_CLASSES else _logsumexp_rows
    _run(rows, x.size, x, res)
    return res


def option_scalars(options: CrossEntropyOptions) -> tuple[float, float, float]:
    """``(label_smoothing, z_loss, softcap)`` as floats, the softcap 0 when off."""
    cap = 0.0 if options.softcap is None else float(options.softcap)
    return float(options.label_smoothing), float(options.z_loss), cap


def class_weights(options: CrossEntropyOptions, dtype, n_classes: int):
    """``(has_weight, w64, w, w_sum)``: the class weights in float64 and in
    ``dtype``, and their float64 sum (``n_classes`` without weights, when both
    arrays are a placeholder ``[1]``)."""
    if options.weight is None:
        return False, np.ones(1), np.ones(1, dtype=dtype), float(n_classes)
    w64 = np.ascontiguousarray(options.weight, dtype=np.float64)
    return True, w64, w64.astype(dtype), float(np.sum(w64))


def cross_entropy_2d(
    x: np.ndarray,
    target: np.ndarray,
    options: CrossEntropyOptions,
    *,
    row_scale: np.ndarray | None = None,
    grad_out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-row cross-entropy and, with ``grad_out``, its gradient: one pass per row.

    Parameters, returns and formulas exactly as
    :func:`softmaxkit.kernels.reference.cross_entropy_2d`; ``grad_out`` may be
    ``x`` itself (the logits are then overwritten by the gradient, row by row,
    after each row's loss terms are read).

    Notes
    -----
    Hard targets, per row: ``max``; the smoothing sum ``sum_c w_c (m - x'_c)``
    only with label smoothing; ``e = exp(x' - m)`` stored into ``grad_out``
    while summing; then ``grad = e * a - b * w`` and ``grad[y] -= (1 - eps) w_y``,
    all scaled by ``row_scale``. Soft targets add one pass for
    ``sum_c w_c t'_c (m - x'_c)`` and ``sum_c w_c t'_c``.
    """
    n, c = x.shape
    dtype = x.dtype
    eps, zeta, cap = option_scalars(options)
    has_weight, w64, w, w_sum = class_weights(options, dtype, c)
    want_grad = grad_out is not None
    g = grad_out if want_grad else np.empty((1, 0), dtype=dtype)  # see _ce_hard_rows
    scale = (
        np.ascontiguousarray(row_scale, dtype=np.float64) if want_grad else np.empty(0)
    )
    loss = np.empty(n, dtype=np.float64)
    if target.ndim == 2:
        t = np.ascontiguousarray(target, dtype=dtype)
        _run(_ce_soft_rows, x.size, x, t, w, has_weight, eps, zeta, cap, scale, g, want_grad, loss)
    else:
        t = np.ascontiguousarray(target, dtype=np.int64)
        ignore = int(options.ignore_index)
        if c <= NARROW_MAX_CLASSES and cap == 0.0:
            _run(
                _ce_hard_narrow_rows, x.size,
                x, t, w, w64, has_weight, w_sum, ignore, eps, zeta, scale, g, want_grad, loss,
            )  # fmt: skip
        else:
            _run(
                _ce_hard_rows, x.size,
                x, t, w, w64, has_weight, w_sum, ignore, eps, zeta, cap, scale, g, want_grad, loss,
            )  # fmt: skip
    return loss
