"""Solvers for :class:`~softmaxkit.SoftmaxClassifier`: full-batch L-BFGS and
minibatch Adam over the flat parameter vector, plus the monitor that records
the loss curve, runs early stopping and drives the progress bar.

Both solvers minimise the same objective (:class:`Problem`), the weighted
mean log-loss plus ``alpha / (2 * total_weight) * ||W||**2``; Adam samples the
data term by minibatch and keeps the penalty at its full-data scale, so the
two solvers agree on what the optimum is. (scikit-learn's ``MLPClassifier``
instead divides the penalty by the batch size under ``adam``, which makes its
effective regularisation ``n / batch_size`` times stronger than under
``lbfgs``.) Each minibatch's data term is an unbiased estimate of the full
weighted mean (:func:`_epoch_row_scales`): dividing a batch by its own weight
sum instead would be a ratio estimator, biased towards the unweighted fit
when batches are small (at batch size 1 it ignores the weights entirely).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from softmaxkit import _mlp
from softmaxkit._blas_threads import blas_libraries, one_thread, scipy_blas_libraries
from softmaxkit._engine import NumpyEngine
from softmaxkit._progress import ProgressTracker


@dataclass(frozen=True)
class Problem:
    """Data bound to the objective; :meth:`loss_and_grad` evaluates it on all
    rows, :meth:`batch_data_loss_and_grad` the data term on a minibatch.

    Attributes
    ----------
    net : _mlp.Network
    xp : engine
    X : engine array of shape (n, d)
    target : engine array of shape (n,) int64 or (n, K)
    weight : ndarray of shape (n,) float64
        Row weights (host copy: batches are drawn on the host).
    penalty : engine array of shape (n_params,)
    alpha : float
        The user's ``alpha``; divided by the total weight here.
    total_weight : float
        ``S = sum(weight)``, derived.
    """

    net: _mlp.Network
    xp: Any
    X: Any
    target: Any
    weight: np.ndarray
    penalty: Any
    alpha: float
    total_weight: float = field(init=False)
    _row_scale: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        total = float(np.sum(self.weight))
        object.__setattr__(self, "total_weight", total)
        row_scale = self.xp.asarray(self.weight / total, dtype=self.xp.scale_dtype)
        object.__setattr__(self, "_row_scale", row_scale)

    def loss_and_grad(self, theta: Any) -> tuple[float, Any]:
        """Objective and gradient on all rows."""
        return _mlp.loss_and_grad(
            self.net,
            self.xp,
            theta,
            self.X,
            self.target,
            self._row_scale,
            penalty=self.penalty,
            alpha=self.alpha / self.total_weight,
        )

    def batch_data_loss_and_grad(
        self, theta: Any, rows: np.ndarray, row_scale: Any, grad_out: Any, *, labels: np.ndarray | None = None
    ) -> float:
        """The minibatch ``rows``' estimate of the data term (no penalty), its
        gradient written into ``grad_out``.

        ``row_scale`` is ``weight[rows] * n / (len(rows) * total_weight)`` in
        ``xp.scale_dtype`` (see :func:`_epoch_row_scales`), so that over a
        uniformly drawn batch the value and gradient are unbiased estimates of
        the full weighted mean log-loss and its gradient. The penalty is left
        to the caller: Adam adds it in the same pass as its moment updates
        (:func:`adam_update_`). ``labels`` (int64, one per entry of ``rows``)
        replace the rows' own targets: a batch of observations
        (:func:`_observation_batches`) scores each drawn (row, class) pair.
        """
        xp = self.xp
        X = xp.take(self.X, rows)
        target = xp.take(self.target, rows) if labels is None else xp.asarray(labels)
        loss, _ = _mlp.loss_and_grad(
            self.net, xp, theta, X, target, row_scale, penalty=self.penalty, alpha=0.0, grad_out=grad_out
        )
        return loss


class Monitor:
    """Called once per iteration (L-BFGS) or epoch (Adam) with the parameters
    and the training loss; returns True when the solver should stop.

    Records ``loss_curve``; with a ``validation`` problem (built with
    ``alpha=0``: its value is the validation log-loss), also its curve, and stops after
    ``n_iter_no_change`` evaluations without an improvement of at least
    ``tol``, keeping the best parameters seen. ``patience_on_train`` applies
    the same rule to the training loss (Adam without early stopping, as
    scikit-learn's ``MLPClassifier``).
    """

    def __init__(
        self,
        *,
        tracker: ProgressTracker,
        validation: Problem | None,
        tol: float,
        n_iter_no_change: int,
        patience_on_train: bool,
    ) -> None:
        self.tracker = tracker
        self.validation = validation
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.patience_on_train = patience_on_train
        self.loss_curve: list[float] = []
        self.validation_curve: list[float] = []
        self.best = np.inf
        self.best_theta: np.ndarray | None = None
        self.stalled = 0
        self.stopped_early = False

    def __call__(self, theta: Any, loss: float) -> bool:
        self.loss_curve.append(float(loss))
        stats = {"loss": float(loss)}
        score = float(loss) if self.patience_on_train else None
        if self.validation is not None:
            score = self.validation.loss_and_grad(theta)[0]
            self.validation_curve.append(score)
            stats["val_loss"] = score
        self.tracker.advance(**stats)
        if score is None:
            return False
        if score < self.best - self.tol:
            self.stalled = 0
        else:
            self.stalled += 1
        if score < self.best:
            self.best = score
            if self.validation is not None:
                self.best_theta = np.array(self.validation.xp.to_numpy(theta), dtype=np.float64)
        self.stopped_early = self.stalled >= self.n_iter_no_change
        return self.stopped_early


@dataclass
class Result:
    theta: np.ndarray  # float64, final (or best-validation) parameters
    n_iter: int
    converged: bool
    # False when max_iter ended the coefficient refinement of :func:`lbfgs` before the
    # weights were shown to be within tol of the optimum (the gradient test was met).
    coefficients_converged: bool = True


def _scipy_blas_single_thread() -> Any:
    """Limit SciPy's own BLAS (not NumPy's, which runs our matrix products) to one thread.

    L-BFGS-B's internal updates are BLAS calls on vectors of ``n_params``
    entries; waking a second thread for each costs more than the work, and on
    a busy machine it made a 569 x 30 fit 6x slower (2.8 s instead of 0.5 s).
    NumPy's BLAS is a separate library, so the objective keeps all threads.
    """
    return one_thread(scipy_blas_libraries())


#: A fit whose widest layer product has fewer multiply-adds per evaluation
#: than this runs NumPy's BLAS on one thread (see :func:`_small_products_single_thread`).
SMALL_PRODUCT_MACS = 1 << 23


def _small_products_single_thread(problem: Problem, rows_per_evaluation: int) -> Any:
    """Run NumPy's BLAS on one thread while fitting, if every product is small.

    A minibatch product such as 200 x 200 @ 200 x 100 (4M multiply-adds, about
    0.1 ms on one core) gains little from a second thread, and on a shared,
    busy machine each product waits for the OS to schedule the second BLAS
    thread. Measured on the 2-core machine at load average ~4 (make_classification
    5000 x 200, 50 classes, MLP(100), Adam, batch 200, float32): 23.7 ms per
    step with 2 BLAS threads, 0.96 ms with 1 (scikit-learn's MLPClassifier:
    23.7 and 1.39 ms). Only the NumPy engine is limited: torch manages its
    own threads.
    """
    if type(problem.xp) is not NumpyEngine:
        return contextlib.nullcontext()
    sizes = problem.net.layer_sizes
    widest = max(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if rows_per_evaluation * widest >= SMALL_PRODUCT_MACS:
        return contextlib.nullcontext()
    return one_thread(blas_libraries())


class _CoefficientWatch:
    """Decides, from the iterates of one L-BFGS run, when the linear model's
    weights are within ``tol`` of the optimum (see :func:`lbfgs`, Stopping).

    :meth:`record` sees every evaluation (the objective's gradient at the
    accepted iterate is the last one recorded when SciPy's callback runs);
    :meth:`done` is asked at each accepted iterate.
    """

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.level = tol  # the next checkpoint: the largest gradient entry at or below this
        self.anchor: np.ndarray | None = None  # the iterate at the previous checkpoint
        self.gradient_met = False  # an iterate met scikit-learn's test, max|grad| <= tol
        self.within_tol = False
        self._x: np.ndarray | None = None
        self._grad_max = np.inf

    def record(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self._x = np.array(theta, dtype=np.float64)  # SciPy updates its x in place
        self._grad_max = float(np.max(np.abs(grad), initial=0.0))

    def done(self, theta: np.ndarray, fun: Any) -> bool:
        if self._x is None or not np.array_equal(self._x, theta):
            # Not the last point evaluated (never seen with SciPy's L-BFGS-B, whose
            # line search ends on the point it accepts): evaluate it.
            self.record(theta, fun(theta)[1])
        if self._grad_max > self.level:
            return False
        self.gradient_met = True
        theta = self._x
        if self.anchor is not None:
            moved = float(np.max(np.abs(theta - self.anchor), initial=0.0))
            if moved <= self.tol * max(1.0, float(np.max(np.abs(theta), initial=0.0))):
                self.within_tol = True
                return True
        # 10 times below the gradient actually reached, which may already be far below level.
        self.anchor, self.level = theta, self._grad_max / 10
        return False


def lbfgs(
    problem: Problem, theta0: np.ndarray, *, max_iter: int, tol: float, monitor: Monitor, coefficients: bool = True
) -> Result:
    """Minimise with SciPy's L-BFGS-B over the flat parameters, full batch.

    SciPy works in float64; each evaluation casts ``theta`` to the engine's
    dtype, so a float32 fit runs its matrix products in float32 while the
    quasi-Newton updates stay in float64.

    Stopping. Without refinement the run stops when the largest gradient
    entry of the mean objective is below ``tol`` (``gtol = tol``, as
    scikit-learn's lbfgs solvers). That bounds the objective's excess, hence
    the predictions, but not the parameters: along a direction the data
    hardly constrain (collinear features, a rare class) the curvature is only
    the penalty's, ``alpha / S``, and a gradient entry of ``tol`` leaves the
    weights up to ``tol * S / alpha`` off (a make_classification set with
    redundant features, ``alpha=2``, ``S = 2900``: coefficients 25% off the
    optimum, although probabilities agreed within 8e-4).

    With ``coefficients`` (the default; only for the linear model with
    ``alpha > 0``, whose optimum is unique, and ``tol > 0``) the same run
    goes on past that point, keeping its curvature memory, through
    checkpoints: the first iterate whose largest gradient entry is at most
    ``tol`` (scikit-learn's test), then each first iterate whose largest
    gradient entry is 10 times below the previous checkpoint's. It stops at
    the first checkpoint that moved no parameter by more than ``tol * max(1,
    max|theta|)`` from the previous one (in the fitting coordinates, where a
    weight is an effect per standard deviation of its feature). Near the
    optimum the distance to it is proportional to the gradient along each
    curvature direction, so a checkpoint is about 10 times closer than the one
    before and the move between them estimates the earlier one's error: an
    estimate, not a bound (the last checkpoints of iris at ``alpha=1e-4`` and
    digits at 16: within 5%; early ones, where the flattest direction still
    lags, fall short up to 2x: iris' first 0.39 for 0.65, digits at 1e-4 0.30
    for 0.59). The point returned is then about ``tol / 10`` from the optimum
    relative to the weights' scale (measured: 4e-8 to 9e-6 at ``tol=1e-4``),
    whatever the weights' total, the row count or the two-column
    parametrisation of a binary problem. (Restarting
    L-BFGS at each checkpoint instead discards its curvature memory: 172
    instead of 91 iterations for iris at ``alpha=1e-4``.) The fits of
    ``alpha="auto"``, its path (scored by held-out predictions) and its refit
    (at the penalty chosen for fits stopped that way), pass
    ``coefficients=False``.

    The refinement shares ``max_iter`` with the first phase. Cut short by it
    after the gradient test was met, the fit still counts as ``converged``
    (scikit-learn's criterion: the predictions are as close as its lbfgs
    solvers leave them) but ``coefficients_converged`` is False: the weights
    returned are the last iterate's, closer to the optimum than the first
    checkpoint's but not shown to be within ``tol``. A run ended by SciPy's
    ``ftol`` or by a line search stalled on rounding noise is as close as the
    compute dtype resolves and counts as both.
    """
    from scipy.optimize import minimize

    xp = problem.xp
    refine = coefficients and problem.alpha > 0 and problem.net.n_layers == 1 and tol > 0
    watch = _CoefficientWatch(tol) if refine else None

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = problem.loss_and_grad(xp.asarray(theta))
        grad = np.asarray(xp.to_numpy(grad), dtype=np.float64)
        if watch is not None:
            watch.record(theta, grad)
        return loss, grad

    def callback(intermediate_result: Any) -> None:
        if monitor(xp.asarray(intermediate_result.x), intermediate_result.fun):
            raise StopIteration
        if watch is not None and watch.done(intermediate_result.x, fun):
            raise StopIteration  # SciPy >= 1.11 ends the run and returns this iterate

    # scikit-learn's ftol. A float32 fit has noisier loss values, but its line
    # search simply fails (status 2, reported as converged) once the noise
    # dominates, which happens later and closer to the optimum than any
    # float32-sized ftol would stop it.
    ftol = 64 * np.finfo(np.float64).eps
    n_rows = problem.weight.shape[0]
    # Refining, the gradient test is the watch's: SciPy's own would end the run at it.
    gtol = 0.0 if refine else tol
    with _scipy_blas_single_thread(), _small_products_single_thread(problem, n_rows):
        res = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            callback=callback,
            options={"maxiter": max_iter, "gtol": gtol, "ftol": ftol, "maxcor": 20, "maxls": 50},
        )
    # A stop by the callback (early stopping, the watch) reads as status 1 or 2 in SciPy.
    stopped = monitor.stopped_early or (watch is not None and watch.within_tol)
    # status 1: iteration limit; 2: line search stalled on rounding noise: not a failure.
    hit_max_iter = res.status == 1 and not stopped
    converged = not hit_max_iter or (watch is not None and watch.gradient_met)
    coefficients_converged = not (hit_max_iter and watch is not None)
    return Result(np.asarray(res.x, dtype=np.float64), int(res.nit), bool(converged), coefficients_converged)


def adam_update_(
    xp: Any,
    theta: Any,
    grad: Any,
    m: Any,
    v: Any,
    *,
    penalty: Any,
    alpha: float,
    lr: float,
    beta1: float,
    beta2: float,
    epsilon: float,
) -> float:
    r"""One Adam step on ``theta`` in place, after adding the L2 penalty's gradient.

    With ``g = grad + alpha * r * theta`` (``r`` the ``penalty`` weights):
    ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
    ``theta -= lr * m / (sqrt(v) + epsilon)``. ``lr`` includes the bias
    corrections. ``m`` and ``v`` are updated; ``grad`` is scratch (its
    contents afterwards are unspecified).

    Returns
    -------
    float
        ``sum(r * theta**2)`` at the ``theta`` the gradient was taken at (float64
        accumulation), for the objective's value.

    Notes
    -----
    The penalty is folded in here rather than in :func:`softmaxkit._mlp.loss_and_grad`
    because all of it is elementwise over ``theta``: on the NumPy engine one
    compiled pass (:func:`_fused_adam_kernel`) reads each parameter once for the
    penalty, its gradient, both moments and the step, where the array
    expressions below take a dozen passes and temporaries over the
    ``n_params`` vector, as long as a 200-row minibatch's loss kernel. The
    array expressions are the reference, and what the torch engine runs (and
    the NumPy engine without numba).
    """
    kernel = _fused_adam_kernel() if type(xp) is NumpyEngine else None
    if kernel is not None:
        cast = theta.dtype.type
        # Scalars in the parameters' dtype: float32 parameters update in float32.
        return kernel(
            theta, grad, m, v, penalty, cast(alpha), cast(lr),
            cast(beta1), cast(1 - beta1), cast(beta2), cast(1 - beta2), cast(epsilon),
        )  # fmt: skip
    shrink = penalty * theta  # r * theta
    value = xp.dot(shrink, theta)
    shrink *= alpha
    grad += shrink
    # In place: new arrays for every term cost as much as the arithmetic.
    v *= beta2
    v += (1 - beta2) * (grad * grad)
    m *= beta1
    grad *= 1 - beta1
    m += grad
    denom = xp.sqrt(v)
    denom += epsilon
    update = lr * m  # (lr * m) / denom: the rounding order of the textbook form
    update /= denom
    theta -= update
    return value


@functools.lru_cache(maxsize=1)
def _fused_adam_kernel() -> Any:
    """The compiled form of :func:`adam_update_` for NumPy arrays
    (:func:`softmaxkit.kernels.adam.fused_adam`); None without numba."""
    try:
        from softmaxkit.kernels.adam import fused_adam
    except ImportError:  # numba missing or broken: the array expressions serve
        return None
    return fused_adam


def adam(
    problem: Problem,
    theta0: np.ndarray,
    *,
    max_iter: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.RandomState,
    monitor: Monitor,
    observations: Any = None,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> Result:
    """Minibatch Adam (Kingma & Ba, 2015) for ``max_iter`` epochs.

    Each epoch visits the rows in a fresh permutation drawn from ``rng``
    (:func:`_row_batches`), or, given ``observations``, the observations that
    counted rows stand for (:func:`_observation_batches`), as the repeated rows
    would be visited. Every step's gradient is an unbiased estimate of the full
    objective's (the minibatch's estimate of the data term plus the whole
    penalty), including the last, smaller batch and a batch whose rows all
    have weight 0 (its step is the penalty's alone). The monitor sees the mean
    minibatch objective of the epoch, each batch counted by its share of the
    rows (which, for a fixed ``theta``, is exactly the full objective), and
    decides when to stop.

    Parameters
    ----------
    observations : softmaxkit._alpha_search.Cells, optional
        The (row, class) cells of ``problem``'s rows, their whole-number counts
        and what one observation weighs (:func:`softmaxkit._alpha_search.count_cells`).
    """
    xp = problem.xp
    # Updated in place (theta, the moments, and one gradient buffer reused at
    # every step), so theta starts as a copy that may not alias theta0.
    theta = xp.zeros(theta0.shape)
    theta += xp.asarray(theta0)
    m = xp.zeros(theta.shape)
    v = xp.zeros(theta.shape)
    grad = xp.zeros(theta.shape)
    alpha = problem.alpha / problem.total_weight
    step = 0
    epoch = 0
    with _small_products_single_thread(problem, batch_size):
        for epoch in range(1, max_iter + 1):
            if observations is None:
                batches = _row_batches(problem, rng, batch_size)
            else:
                batches = _observation_batches(problem, observations, rng, batch_size)
            total, seen = 0.0, 0.0
            for batch in batches:
                loss = problem.batch_data_loss_and_grad(theta, batch.rows, batch.scales, grad, labels=batch.labels)
                step += 1
                # A Python float (math, not NumPy): a NumPy float64 scalar would promote
                # float32 parameters to float64 in the array expressions.
                lr = learning_rate * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                weighted_sq = adam_update_(
                    xp, theta, grad, m, v, penalty=problem.penalty, alpha=alpha,
                    lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon,
                )  # fmt: skip
                total += (loss + 0.5 * alpha * weighted_sq) * batch.size  # the penalised objective
                seen += batch.size
            if monitor(theta, total / seen):
                break
    converged = epoch < max_iter or monitor.stopped_early
    return Result(np.asarray(xp.to_numpy(theta), dtype=np.float64), epoch, converged)


@dataclass(frozen=True)
class _Batch:
    """One Adam step's draw: the rows of ``X`` to score (an int64 array), their
    scales (engine array, ``xp.scale_dtype``), the classes that replace their
    targets (int64, or None for the rows' own), and how many rows or
    observations the batch drew (a float: its share of the epoch)."""

    rows: np.ndarray
    scales: Any
    labels: np.ndarray | None
    size: float


def _row_batches(problem: Problem, rng: np.random.RandomState, batch_size: int) -> Any:
    """One epoch's minibatches of rows (:class:`_Batch`): a fresh permutation
    cut into ``batch_size`` rows, scaled by :func:`_epoch_row_scales`."""
    order = rng.permutation(problem.weight.shape[0])
    scales, batch_rows = _epoch_row_scales(problem, order, batch_size)
    for batch, rows_in_batch in enumerate(batch_rows):
        start = batch * batch_size
        yield _Batch(order[start : start + batch_size], scales[start : start + batch_size], None, rows_in_batch)


def _observation_batches(problem: Problem, observations: Any, rng: np.random.RandomState, batch_size: int) -> Any:
    """One epoch's minibatches of the observations that counted rows stand for
    (:class:`_Batch`), as minibatches of the repeated rows would draw them.

    Notes
    -----
    A deduplicated row of count ``c`` stands for ``c`` repeated rows. Cutting a
    permutation of the rows into batches would make an epoch one step when
    there are fewer rows than ``batch_size`` (four inputs with 999 observations
    each as 12 rows: Adam stopped at ``max_iter`` epochs, 0.12-0.30 off the
    frequencies that the repeated rows' fit came within 0.003-0.16 of). Here
    the ``N`` observations are permuted and cut into batches of ``batch_size``
    observations, each batch a draw without replacement, as among the
    repeated rows; a cell drawn ``k`` times in a batch of ``m_b`` observations
    is scored once with scale ``k * w * N / (m_b * S)``, where ``w`` is what one
    of its observations weighs and ``S`` the total weight: the unbiased
    estimate of :func:`_epoch_row_scales`, and with counts (``w = 1``,
    ``S = N``) the batch's mean over its observations, as the repeated rows'.
    The permutation holds one int64 per observation; the repeated rows would
    hold a row of ``X`` each.
    """
    counts = observations.counts
    n_observations = int(np.sum(counts))
    drawn = rng.permutation(np.repeat(np.arange(counts.shape[0]), counts))
    per_observation = n_observations / problem.total_weight
    for start in range(0, n_observations, batch_size):
        cells, times = np.unique(drawn[start : start + batch_size], return_counts=True)
        rows = observations.rows[cells]
        size = float(min(batch_size, n_observations - start))
        scales = times * (per_observation / size)
        if observations.weight is not None:
            scales = scales * observations.weight[rows]
        scales = problem.xp.asarray(scales, dtype=problem.xp.scale_dtype)
        yield _Batch(rows, scales, observations.classes[cells], size)


def _epoch_row_scales(problem: Problem, order: np.ndarray, batch_size: int) -> tuple[Any, list[float]]:
    """Row scales for every minibatch of one epoch, at once.

    Returns an engine array whose slice ``[b * batch_size : (b + 1) *
    batch_size]`` holds ``weight * n / (m_b * S)`` for batch ``b``'s ``m_b``
    rows (``n`` rows and total weight ``S`` in all), and the list of the
    ``m_b`` (as floats). One vectorised pass per epoch instead of a few small
    NumPy calls per step.

    Notes
    -----
    A batch is a uniform draw of ``m_b`` of the ``n`` rows, so each row is in
    it with probability ``m_b / n`` and ``sum_(i in b) w_i l_i * n / (m_b S)``
    has expectation ``sum_i w_i l_i / S``: every step, the last smaller batch
    included, estimates the full weighted mean without bias, and sample
    weights act as repetitions in expectation. The former scale,
    ``w_i / sum_(j in b) w_j``, was a ratio estimator: at batch size 1 every
    row counted 1 whatever its weight (weighting one of two equal classes
    3:1 gave ``P = 0.50`` instead of the weighted maximum likelihood's
    0.75). With equal weights both are ``1 / m_b``; with unit weights
    (``S = n``, exact) bit for bit.
    """
    n = order.shape[0]
    w = problem.weight[order]
    starts = np.arange(0, n, batch_size)
    batch_rows = np.diff(np.append(starts, n)).astype(np.float64)
    # m_b * S / n, in that order: with unit weights m_b * n / n is exactly m_b,
    # so unweighted fits divide by the same numbers as before.
    per_row = np.repeat(batch_rows * problem.total_weight / n, batch_rows.astype(np.int64))
    scales = w / per_row
    return problem.xp.asarray(scales, dtype=problem.xp.scale_dtype), batch_rows.tolist()
