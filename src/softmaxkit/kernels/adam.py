"""The Adam step with the L2 penalty folded in, as one compiled pass (numba).

The reference is the array-expression form in
:func:`softmaxkit._optim.adam_update_`, which the torch engine (and NumPy
without numba) runs; a test checks that this kernel gives bit-identical
parameters and moments. Module-level functions, so numba's disk cache
(``cache=True``) finds them again in the next process: functions defined
inside another function are recompiled by every process (about 1 s).

Importing this module imports numba and compiles nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from softmaxkit.kernels._vecmath import inline_into_callers

__all__ = ["fused_adam"]


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _penalty_sum(penalty, theta):
    """``sum(penalty * theta**2)`` accumulated in float64.

    Reassociation lets LLVM split the sum over vector lanes, so it matches
    the array form to rounding only (it feeds the reported objective, not the
    step). Inlined into :func:`fused_adam` (:func:`inline_into_callers`), so
    a compiling and a cache-loading process sum in one order.
    """
    inline_into_callers()
    total = 0.0
    for i in range(theta.shape[0]):
        total += np.float64(penalty[i] * theta[i]) * np.float64(theta[i])
    return total


# error_model="numpy": division by zero gives inf instead of a Python
# exception, whose check would keep the division out of vector registers
# (4x slower). The denominator is at least epsilon anyway.
@njit(cache=True, nogil=True, error_model="numpy")
def fused_adam(theta, grad, m, v, penalty, alpha, lr, beta1, rest1, beta2, rest2, eps):
    r"""One Adam step on ``theta`` in place; returns ``sum(penalty * theta**2)`` before it.

    Parameters
    ----------
    theta, grad, m, v, penalty : ndarray of shape (n_params,), one float dtype
        Parameters, data-term gradient, first and second moments (updated in
        place), and the per-parameter penalty weights ``r``. ``grad`` is read
        only.
    alpha, lr, beta1, rest1, beta2, rest2, eps : scalars of that dtype
        ``rest1 = 1 - beta1`` and ``rest2 = 1 - beta2``, rounded once by the
        caller; ``lr`` includes Adam's bias corrections.

    Notes
    -----
    Per element, strict IEEE (no FMA contraction, the rounding of the array
    expressions)::

        g = grad + alpha * (r * theta)
        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g**2
        theta -= (lr m) / (sqrt(v) + eps)

    References
    ----------
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """
    value = _penalty_sum(penalty, theta)
    for i in range(theta.shape[0]):
        g = grad[i] + alpha * (penalty[i] * theta[i])
        mi = beta1 * m[i] + rest1 * g
        vi = beta2 * v[i] + rest2 * (g * g)
        m[i] = mi
        v[i] = vi
        theta[i] -= (lr * mi) / (math.sqrt(vi) + eps)
    return value
