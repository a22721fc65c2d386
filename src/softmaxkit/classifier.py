"""SoftmaxClassifier: a scikit-learn estimator whose probabilities are a
maximum-likelihood fit, linear (multinomial logistic regression) or an MLP.

This module is the estimator shell: parameter checks, the data contract,
solver choice, the conversion between raw and preconditioned coordinates, the
prediction methods and persistence. The math lives elsewhere:

* :mod:`softmaxkit._targets`  labels / probabilities / counts -> targets and weights;
* :mod:`softmaxkit._mlp`      forward pass, manual backprop and penalty, once for all engines;
* :mod:`softmaxkit._engine`   the NumPy and torch array engines;
* :mod:`softmaxkit._optim`    L-BFGS, Adam, early stopping;
* :mod:`softmaxkit._progress` the progress bar.
"""

from __future__ import annotations

import copy
import inspect
import numbers
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from softmaxkit import _alpha_search, _mlp, _optim
from softmaxkit._engine import NumpyEngine, make_engine
from softmaxkit._progress import progress
from softmaxkit._targets import Targets, columns_as_classes, encode_targets, soft_targets
from softmaxkit._validation import check_cv_param, check_sample_weight
from softmaxkit.functional import cross_entropy, log_softmax, softmax
from softmaxkit.io import Persistable

__all__ = ["SoftmaxClassifier"]

_SOLVERS = ("auto", "lbfgs", "adam")
#: Most observations that Adam's epochs visit one by one when rows count them (``_adam_by_observations``):
#: the epoch's permutation holds one int64 each (256 MiB here).
ADAM_OBSERVATION_LIMIT = 1 << 25
_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


class SoftmaxClassifier(Persistable, ClassifierMixin, BaseEstimator):
    r"""Softmax classifier trained by maximum likelihood (log-loss), linear or MLP.

    ``hidden_layer_sizes=()`` is multinomial logistic regression; each entry
    adds a dense hidden layer. Whatever the architecture, the output is a
    softmax layer fitted by minimising the (weighted, L2-penalised)
    cross-entropy, so ``predict_proba`` estimates the conditional class
    frequencies: an input seen with class ``a`` 30% of the time and ``b`` 70%
    gets 0.3 / 0.7 at the optimum, which L-BFGS reaches (within 1e-7 at a
    small ``alpha``). Adam stops on a plateau of its noisy minibatch loss
    before it, as scikit-learn's does: a hidden layer of 8 units fitted by
    Adam was 0.15 off these frequencies (0.03-0.04 after 5000 epochs).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=()
        Widths of the hidden layers; ``()`` is the linear model.
    activation : {"relu", "tanh"}, default="relu"
        Hidden-layer nonlinearity.
    alpha : float >= 0 or "auto", default="auto"
        L2 penalty on the weights (not the biases), scaled like
        scikit-learn's ``MLPClassifier``: see Notes for the exact objective
        and how to match ``LogisticRegression(C=...)``. ``"auto"`` chooses it
        by held-out log-loss over internal folds and refits on all rows (see
        Notes, *Choosing alpha*); ``alpha_`` holds the value used. A float is
        used as given.
    standardize : bool, default=False
        Penalise the first layer's weights of the standardised features
        (``x_j / sd_j``, ``sd_j`` the weighted standard deviation of the
        training rows), as ``glmnet``'s ``standardize=TRUE`` does and as
        ``make_pipeline(StandardScaler(), ...)`` amounts to, instead of those
        of the raw features. The fitted coefficients stay in raw-feature
        units either way. With raw features of very different scales one
        ``alpha`` cannot suit them all (median test log-loss over 30 splits,
        ``benchmarks/bench_cli_defaults.py``: breast cancer 0.116 raw against
        0.083 standardised, wine 0.073 against 0.060; iris and digits, whose
        features share a scale, 2% worse); ``softmaxkit fit`` sets it. False
        matches scikit-learn's estimators on the same ``X``. It also decides
        an MLP's solver under ``solver="auto"``: a
        ``make_pipeline(StandardScaler(), SoftmaxClassifier(hidden_layer_sizes=...))``
        has standardised features but ``standardize=False``, so its MLP is
        trained by Adam, and on iris did worse than ``MLPClassifier`` in the
        same pipeline (test log-loss 0.224 against 0.155, mean of 20 splits);
        ``standardize=True`` instead of the scaler fits by L-BFGS (0.103), as
        does ``solver="lbfgs"``.
    cv : None, int, splitter or iterable of (train, test), default=None
        The folds of ``alpha="auto"`` (ignored for a float ``alpha``). None:
        5 folds for the linear model, 3 for an MLP; an int: that many. Folds
        are shuffled with ``random_state`` and stratified by label, and there
        are never more than the smallest class has rows. They split rows, each
        held out with its whole ``sample_weight``, as scikit-learn's splitters
        do; with ``weights_are_counts=True`` they split each row's count between
        them instead, as they would split its repeated copies (see Notes,
        *Equivalences*). A scikit-learn splitter (its ``split(X, y)`` is called) or explicit
        index pairs are used as given, splitting rows:
        ``list(GroupKFold(5).split(X, y, groups))`` keeps related rows (the
        same patient's) in one fold. Do not group identical inputs seen with
        different labels: the folds must split them freely, as the defaults
        do, or a held-out part holds classes of an input that its fold never
        trained on, and ``alpha="auto"`` shrinks the probabilities towards
        the class frequencies (4 one-hot inputs, 2000 rows, grouped by input:
        ``alpha_`` 25.6 and p = 0.052 for a frequency of 0.01, against 1 and
        0.013 with the default folds). A model file cannot
        hold a splitter or splits: a loaded model predicts as saved, but its
        ``cv`` is an :class:`UnsavedCV` that refuses a refit (``alpha="auto"``)
        until ``set_params(cv=...)`` gives the folds again.
    solver : {"auto", "lbfgs", "adam"}, default="auto"
        ``"lbfgs"``: SciPy's L-BFGS-B on all parameters, full batch.
        ``"adam"``: minibatch Adam. ``"auto"``: L-BFGS for the linear model
        (convex: full-batch quasi-Newton reaches the optimum in few passes);
        for MLPs, Adam (scikit-learn's default there: with a small ``alpha``,
        running L-BFGS to convergence drives an MLP to near-zero training loss
        and over-confident test probabilities, while Adam's stop on the
        training-loss plateau acts as a mild regulariser), except with
        ``standardize=True`` and ``alpha="auto"`` on at least
        :data:`~softmaxkit._alpha_search.MLP_LBFGS_MIN_ROWS` (100) rows of
        positive weight (observations, with ``weights_are_counts=True``),
        where L-BFGS fits the chosen penalty to its optimum
        (as ``softmaxkit fit --hidden`` trains). There L-BFGS gave lower test
        log-loss on all four bundled sets (iris 0.087 against 0.21, median of
        20 splits); on raw features it was worse (breast cancer 0.124 against
        0.089, wine 0.108 against 0.075, 8 splits): the penalty acts on
        raw-scale weights, which one ``alpha`` cannot suit when features
        differ in scale by 1000s; and on fewer rows the penalty chosen on
        folds of a few dozen rows is noisy, and L-BFGS fits a too-weak one
        (iris, 21 rows: held-out log-loss up to 4.67 against Adam's 0.51, 15%
        of rows at p(true) < 1e-3). A ``StandardScaler`` in front does not
        count as ``standardize=True``: such a pipeline's MLP runs Adam (see
        ``standardize``). An explicit ``"lbfgs"`` or ``"adam"`` is
        always used as given.
    max_iter : int, default=200
        L-BFGS iterations, or Adam epochs. L-BFGS on the linear model uses
        them for both stages of ``tol``: ``n_iter_ == max_iter`` means the
        fit stopped there, with a ``ConvergenceWarning`` that says which
        stage it cut short.
    tol : float >= 0, default=1e-4
        L-BFGS: stop when every gradient entry of the objective is below
        ``tol`` (scikit-learn's rule, which bounds the predictions' error but can
        leave weights along collinear features 25% off); the linear model with
        ``alpha > 0`` then goes on in the same L-BFGS run, through checkpoints
        each 10x lower in gradient, until two successive checkpoints differ
        in no weight (per feature standard deviation) by more than
        ``tol * max(1, max|weight|)`` (see :func:`softmaxkit._optim.lbfgs`),
        all within ``max_iter``. ``alpha="auto"`` skips it, in its path fits
        and in its refit alike: the penalty is chosen for fits stopped at the
        gradient test (refined, the refit's held-out log-loss over 20 splits
        of bench_defaults was 0.4% worse on digits, and its default fit ran
        into ``max_iter``); refit with ``alpha=model.alpha_`` for coefficients
        within ``tol``. If
        ``max_iter`` ends this refinement, the predictions count as
        converged but a ``ConvergenceWarning`` says the coefficients are not
        shown to be within ``tol`` (raw, unscaled features such as digits' pixels
        can need several hundred iterations); or
        when the relative decrease of the objective per step
        falls below 1.4e-14 (SciPy's ``ftol``, 64 machine epsilons; with relu
        the usual stop, at gradient entries up to about 2e-4). Adam and early stopping: an improvement of the monitored loss
        smaller than ``tol`` counts as none.
    batch_size : int or "auto", default="auto"
        Adam minibatch size; "auto" is ``min(200, n_samples)``. Where rows
        count observations (``weights_are_counts=True`` with whole-number
        weights, count targets), an epoch visits the observations, as over
        the repeated rows, and a batch holds ``batch_size`` of them (at most
        ``ADAM_OBSERVATION_LIMIT`` = 2**25 observations; above it, the rows,
        with a warning). An epoch then costs ``N / batch_size`` steps for
        ``N`` observations, as over the repeated rows: 2,000 rows of 1,000
        counts each converged in 12 epochs and 70 s (over the rows: 2.5 s,
        stopped unconverged at ``max_iter``); ``solver="lbfgs"`` fitted the
        same linear model in 0.9 s.
    learning_rate : float > 0, default=1e-3
        Adam step size.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows with positive
        ``sample_weight`` (stratified for labels), stop when the validation
        log-loss has not improved by ``tol`` for ``n_iter_no_change``
        iterations/epochs, and keep the best parameters. Under either
        solver: scikit-learn's ``MLPClassifier`` ignores ``early_stopping``
        under ``solver="lbfgs"``, so a ported L-BFGS fit stops sooner here
        (audit BW: 25 iterations where it ran 56). Rows of weight 0
        and a class's only row are never held out; when too few rows are
        left to stratify, the held-out rows are drawn at random, leaving
        every class a training row. Counts are split as their repeated rows
        would be, by observation, not by row: with ``count_targets=True``
        each row's class counts, and with ``weights_are_counts=True``
        whole-number weights (some above 1): labels' weights, count targets'
        counts times the weights, and probabilities times the weights where
        those are whole class counts (``y`` the frequencies of ``sample_weight``
        observations). Each row's count is then shared between training and
        validation, the same rules counting observations
        (``validation_fraction`` of them, stratified by class, a class
        observed once kept in training), and a row may be in both parts.
        Held out whole, a deduplicated row took its whole count with it, and
        the network never trained on that (input, class) pair: 4 inputs in
        12 rows of 999 observations gave probabilities up to 0.36 off the
        frequencies under L-BFGS, against 0.04 for the repeated rows (0.63
        given as frequencies with count weights). A ``sample_weight`` that
        counts nothing (fractional, or without ``weights_are_counts``) stays
        a row's weight: count targets' observations each carry it, as label
        rows do. Whole-number weights above 1 that are held out together,
        with their rows or with each count target's observation, raise a
        ``UserWarning``: without ``weights_are_counts``, or with it where
        probabilities times the weights are no whole numbers.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=10
        Patience of early stopping, and of Adam's stop on the training loss.
    classes : array_like, default=None
        The class labels. With label ``y`` they may include classes absent
        from the data; with an (n, K) ``y`` they name its columns (default
        ``0..K-1``), and for a DataFrame ``y`` with column names they must be
        those names (the default: the names, which must be in sorted order,
        the order of ``predict_proba``'s columns). A class absent from ``y`` still gets a column of
        ``predict_proba``, which scikit-learn's tools that take the classes
        from ``y`` do not expect. Score log-loss with
        ``make_scorer(log_loss, response_method="predict_proba",
        greater_is_better=False, labels=classes)``: ``scoring="neg_log_loss"``
        infers the labels from each test fold's ``y`` and gives nan scores
        (``y_true`` has fewer classes than ``y_prob`` columns). And
        ``cross_val_predict(..., method="predict_proba")`` cannot be used: it
        re-encodes ``y`` as ``0..m-1`` for the ``m`` classes it sees and then
        fails (an IndexError on the extra columns, or a label outside
        ``classes``); loop over ``cv.split(X, y)`` and call ``predict_proba``
        on each held-out part instead.
    count_targets : bool, default=False
        Let an (n, K) ``y`` hold whole-number class counts: row ``i`` says
        how often input ``i`` was seen with each class, and fits as that many
        repeated rows (the row is normalised and its total becomes a weight;
        a row of zeros weighs nothing). False refuses a whole-number (n, K)
        ``y`` whose rows do not all sum to 1, because scikit-learn reads that
        matrix as K separate targets (multi-output labels such as
        ``np.c_[y1, y2]``, or a multilabel indicator), which this classifier
        does not fit and which read as counts would give another model
        without a word. Probabilities (every row sums to 1, one-hot rows
        included) are accepted either way. :meth:`score` reads an (n, K)
        ``y`` by the same rule. ``early_stopping`` splits each row's counts
        between training and validation, as it would the repeated rows,
        each observation weighted by the row's ``sample_weight`` (or, with
        ``weights_are_counts=True`` and whole-number weights, the counts
        times the weights split as observations); ``alpha="auto"``'s folds
        split count rows whole.
    weights_are_counts : bool, default=False
        Whether whole-number ``sample_weight`` counts repeated observations
        (deduplicated rows: ``np.unique(..., return_counts=True)``, aggregated
        data) rather than saying how much rows matter. It changes how rows are
        held out, by ``alpha="auto"`` and by ``early_stopping`` (the objective
        is the same either way): with True, the default folds (``cv`` None or
        an int) and early stopping's validation split share each row's count
        between their parts as they would the repeated rows, and the cap on
        the folds, the rare-class rule, the paired test and
        ``solver="auto"``'s row count count observations (see Notes,
        *Equivalences*). Early stopping also counts the weights of
        probability and count targets: count targets' counts times the
        weights, and probabilities times the weights where those are whole
        numbers (frequencies of the counted observations), are shared out
        by observation; the folds split such rows whole either way. With
        False, weights are split with their rows, each held out with its
        whole weight, as scikit-learn does (count targets' observations
        each carry their row's weight): right for importance weights
        (``np.where(y == 1, 5, 1)``), which split as counts would let every
        fold train on the rows it scores. The weights' values cannot tell the
        two apart; ``alpha="auto"`` (with the default folds, labels) and
        ``early_stopping=True`` warn, once per fit, when whole-number weights
        above 1 meet the default False. Weights that are not all whole
        numbers are split as rows either way (count targets' counts still by
        observation, each carrying the weight), and a given ``cv`` splits
        rows as given (its paired test, rare-class rule and solver still
        count the observations with True).
    dtype : {"float32", "float64"} or None, default=None
        Training precision. None: float32 if ``X`` is float32, else float64.
        Predictions are always computed in float64.
    device : str, default="cpu"
        ``"cpu"`` trains with NumPy; ``"cpu:torch"``, ``"cuda"`` or
        ``"cuda:N"`` run the same math on torch (needs ``softmaxkit[torch]``).
        The fitted model is NumPy either way.
    random_state : int, RandomState or None, default=None
        Seeds MLP initialisation, Adam's shuffling, the validation split and
        the folds of ``alpha="auto"``. The linear model starts from zero and
        with L-BFGS needs no randomness; with ``None`` the folds are still
        fixed (seed 0), so a default fit of the same data is reproducible. A
        ``RandomState`` instance fits as the int seed of its state would: the
        search of ``alpha="auto"`` draws from a copy of it, the refit from
        the instance itself.
    verbose : int, default=0
        If positive, show a progress bar (rich, on stderr) with the loss.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (or set by ``softmaxkit fit``
        from a file's header). Saved with the model.
    target_name_ : str or None
        The name of ``y`` when it had one (a pandas Series' ``name``, or the
        target column of ``softmaxkit fit``). Saved with the model, so that
        files holding the label column can be read by name.
    coefs_ : list of ndarray
        ``coefs_[l]`` has shape ``(fan_in, fan_out)``, in raw-feature
        coordinates (the preconditioning folded back in).
    intercepts_ : list of ndarray
    coef_ : ndarray of shape (K, n_features), or (1, n_features) for two classes
        Linear model only (an MLP has no such attribute, as in
        ``MLPClassifier``): ``LogisticRegression``'s layout, for
        ``SelectFromModel`` and other tools that read it. ``coefs_[0].T``,
        or for two classes the log-odds weights ``w_1 - w_0`` (class 1
        against class 0), so that ``decision_function(X) == X @ coef_.T +
        intercept_`` (raveled for two classes). A read-only copy, derived
        from ``coefs_``.
    intercept_ : ndarray of shape (K,), or (1,) for two classes
        Linear model only: ``intercepts_[0]``, or ``b_1 - b_0`` for two classes.
    loss_curve_ : list of float
        The training objective (penalty included) after each iteration/epoch.
    validation_loss_curve_ : list of float or None
        Validation log-loss per iteration/epoch with ``early_stopping``.
    best_validation_loss_ : float or None
    n_iter_ : int
        L-BFGS iterations or Adam epochs run. ``n_iter_ == max_iter`` with a
        ``ConvergenceWarning`` means the fit was cut short there (the message
        says whether the predictions or only the coefficients); without one,
        the last allowed iteration met ``tol``.
    alpha_ : float
        The penalty of the fitted model: ``alpha`` itself, or the one
        ``alpha="auto"`` chose.
    solver_ : {"lbfgs", "adam"}
        The solver that ran (``solver="auto"`` resolved on the training rows;
        see ``solver``).
    alpha_path_ : ndarray of shape (m,) or None
        ``alpha="auto"``: the penalties evaluated, in order (empty when the
        data were too small to hold rows out); None for a float ``alpha``.
    alpha_path_loss_ : ndarray of shape (m,) or None
        The held-out log-loss at each ``alpha_path_`` value (sample-weighted
        mean over the held-out rows of all folds).
    alpha_at_bound_ : bool
        ``alpha="auto"`` chose an end of the range it searched, the
        strongest penalty (``alpha_ == alpha_path_[0]``) or the weakest
        (``alpha_path_[-1]``, with the held-out loss still falling there),
        so the held-out optimum may lie beyond it; a ``UserWarning`` says
        which end and what it means (see Notes, *Choosing alpha*). False for
        a float ``alpha`` and for the small-data fallback. Saved with the model.

    Notes
    -----
    **Objective.** With row weights :math:`s_i` (``sample_weight``, times the
    row total for count targets), :math:`S = \sum_i s_i`, targets :math:`t_i`
    (one-hot or probabilities) and weight matrices :math:`W_l`:

    .. math::

        L(\theta) = \frac{1}{S}\Big[\sum_i s_i\,\mathrm{CE}\big(\mathrm{softmax}(f_\theta(x_i)), t_i\big)
                    + \frac{\alpha}{2}\sum_l \lVert W_l\rVert_F^2\Big].

    With ``standardize=True`` the first layer's term is
    :math:`\lVert \mathrm{diag}(sd)\, W_1\rVert_F^2` (the weights of the
    features divided by their weighted standard deviations ``sd``).
    Because the sum is normalised by :math:`S` and not by the row count,
    repeated rows, integer ``sample_weight`` and count targets give the same
    objective, hence the same fit. Matching scikit-learn (``standardize=False``):

    * ``MLPClassifier(alpha=a, solver="lbfgs")`` with 3 or more classes:
      ``alpha=a`` (the same formula). With 2 classes no single ``alpha``
      matches: scikit-learn's network ends in one logistic unit, this one in
      two softmax columns whose output layer then carries half the penalty
      (as for ``LogisticRegression`` below) while the hidden layers carry all
      of it;
    * ``LogisticRegression(C=c)`` with 3 or more classes: ``alpha=1/c``;
    * ``LogisticRegression(C=c)`` with 2 classes: ``alpha=2/c``. Two softmax
      columns ``w_0, w_1`` replace LR's single ``w = w_1 - w_0``; at the
      optimum ``w_1 = -w_0 = w/2`` and the penalty is
      :math:`\tfrac{\alpha}{2}(\lVert w_0\rVert^2 + \lVert w_1\rVert^2) = \tfrac{\alpha}{4}\lVert w\rVert^2`,
      which is LR's :math:`\lVert w\rVert^2 / (2c)` for :math:`\alpha = 2/c`;
    * ``MLPClassifier(alpha=a, solver="adam", batch_size=B)``: about
      ``alpha=a*n/B``, because scikit-learn divides the penalty by the batch
      weight under Adam; here Adam minimises the same objective as L-BFGS:
      each minibatch scales its rows' weights by ``n / (batch rows * S)``,
      an unbiased estimate of the weighted mean at any batch size, so sample
      weights act as repeated rows in expectation, even at batch size 1.

    **Choosing alpha** (``alpha="auto"``, the default). A fixed small penalty
    makes the maximum-likelihood fit over-confident on held-out data whenever
    the classes are (nearly) separable in the training set (issue 15: the
    old default ``alpha=1e-4`` gave a breast-cancer test log-loss of 0.55
    through the CLI, with probabilities of 1e-43 on misclassified rows).
    ``"auto"`` instead

    1. splits the rows into folds (``cv``; by default 5, stratified, shuffled;
       with ``weights_are_counts=True`` it splits the observations that
       whole-number weights count, see *Equivalences* below);
    2. walks the grid ``alpha = r * 10**4, r * 10**3.5, ..., r * 10**-4`` (17
       values: ``LogisticRegressionCV``'s default range at twice its
       resolution), where ``r`` is the penalty of ``LogisticRegression()``
       (``C=1``: ``r = 2`` for two classes, else 1): down from ``r * 10**2``,
       and up from there to ``r * 10**4`` only if ``r * 10**2`` scores best
       (data with little signal). Each fold's fit starts from its solution
       at the previous ``alpha`` (a warm-started regularisation path: strong
       penalties are cheap, well-conditioned fits, and each step moves the
       solution a little);
    3. scores every ``alpha`` by the sample-weighted log-loss of the held-out
       rows, pooled over folds, and stops the walk once two consecutive
       values fail to improve on the best (and ``r`` has been scored), so the
       weakest penalties, the near-separable and slowest fits, are computed
       only when they help;
    4. keeps ``r`` unless the best value beats it by more than one standard
       error of the paired per-row difference of held-out losses; otherwise
       takes the strongest penalty that the best does not beat by more than
       one such standard error (the one-standard-error rule of Hastie et
       al.: the minimiser of a noisy, flat held-out curve is itself noisy,
       and log-loss punishes too weak a penalty more than too strong a one).
       When that is the best value itself, it is moved to the vertex of the
       parabola through it and its two neighbours in ``log(alpha)`` (at most
       half a step);
    5. refits on all rows with the chosen ``alpha_``, starting from the
       average of the fold solutions at the nearest grid value (as
       ``LogisticRegressionCV`` does): the refit needs fewer iterations, and
       at weak penalties, where the solver's tolerance stops a near-separable
       fit at a point that depends on where it started, it ends near where the
       scored, warm-started fold fits did (measured over 10 splits: mean test
       log-loss 0.0838 -> 0.0800 on wine, 0.1123 -> 0.1120 on digits, others
       unchanged). The refit stops at the gradient test of ``tol``, unrefined
       (see ``tol``), so it is ``SoftmaxClassifier(alpha=alpha_)``'s optimum only
       up to that test: on standardised features within 1e-6 in probability,
       but on raw breast-cancer features (where a gradient entry below ``tol``
       still allows a visible move along the large-scale ones) up to 0.027
       (0.6582 against 0.6850), and a float32 fit 0.029 from the float64 one.
       ``SoftmaxClassifier(alpha=model.alpha_)`` fits the refined optimum. An MLP's refit is a fresh fit, exactly
       ``SoftmaxClassifier(alpha=alpha_)``'s with the same int ``random_state``.

    ``sample_weight`` weights both the fold fits and the held-out score.
    *Weights are repetitions, not relative importances:* the penalty is worth
    ``alpha`` rows of unit weight whatever the weights' total (Objective
    above), so multiplying every weight by ``k`` is ``k``-fold repetition of
    the data: a float ``alpha`` then acts as ``alpha / k`` does on the
    original weights, and ``alpha="auto"``, which searches the same grid,
    picks another penalty (iris with random integer weights 0-3: ``alpha_``
    0.032; the weights times 100, 100 times the observations: 0.0056).
    Weights that only say which rows matter more should be scaled to the
    number of observations they stand for (for example to mean 1) before
    fitting; ``"auto"`` warns when weights that are not all whole numbers sum
    to 10 or more times their rows of positive weight, or a tenth or less
    (``compute_sample_weight("balanced", y)`` and weights of mean 1 sum to
    the rows).
    *Cost:* ``5 m + 1`` fits, ``m`` the grid values walked (5-10 on the
    bundled and synthetic sets of ``benchmarks/bench_defaults.py``), but
    warm-started path fits take a few iterations each: in runs of that
    benchmark (7 data sets of 150-3000 rows, 20 splits) the whole fit took
    0.42-0.99 of ``LogisticRegressionCV(scoring="neg_log_loss")``'s time and
    11-46 times one ``LogisticRegression()`` fit (of 4-15 ms).
    *MLPs* score ``alpha = 10**2 ... 10**-2`` (decade steps, all five
    values, no reference) over 3 folds, every fit from the same fresh
    initialisation (a path warm-started across penalties keeps an MLP's
    over-fit), so ``alpha="auto"`` costs about 11 single fits (in the same
    benchmark 0.6-11.4 s, 5-11 times ``MLPClassifier()``); pass a float
    ``alpha`` to skip it. When ``10**-2`` scores best and the held-out loss
    still falls there (near-separable classes under L-BFGS), the walk goes on
    to ``10**-3`` and ``10**-4`` (``MLPClassifier``'s default) while it keeps
    falling, 3 more fits per value. *Ends of the range:* a choice of the
    strongest or weakest value searched is no optimum found;
    ``alpha_at_bound_`` is set and a ``UserWarning`` says so. The strong end
    (``r * 10**4``; an MLP's ``10**2``) means the features do not help the
    held-out rows: the weights are shrunk almost to 0 and ``predict_proba``
    stays near the class frequencies, a sensible answer on data without
    signal. The weak end (``r * 10**-4``; an MLP's ``10**-4``) counts only
    where the held-out loss still fell by 1% or more over the last step: a
    weaker float ``alpha`` may score better still. The warning says what the
    held-out loss there points to: (nearly) separable classes where it is
    below a tenth of the loss of predicting the class frequencies (their
    entropy), probabilities near 0 and 1 then being expected; otherwise every
    penalty searched was too strong for the data and the probabilities are
    likely under-confident, as with features at a small scale (10 features
    at 1e-5 to 1e-2: held-out 0.957 against 1.099, where
    ``standardize=True`` reached 0.630), whose standard deviations below
    ``sqrt(alpha)`` it names, with ``standardize=True`` as the fix. Where it
    has gone flat (Adam's stop on the training-loss plateau, or L-BFGS's
    ``tol``, limits the fit, not the penalty), a weaker penalty
    fits the same model and nothing is reported. *Small data:* with fewer
    rows in the smallest class than folds, the folds are reduced to that count, and a ``UserWarning``
    names the class, its rows and the folds used; while a class has fewer than 10 rows, a penalty
    weaker than ``r`` must beat it by two standard errors, not one (its few held-out rows make the
    held-out loss noisy, and too weak a penalty gives a rare row p near 0); when a class has a
    single row (or, for probability/count targets, fewer than two rows carry
    weight) nothing can be held out and ``LogisticRegression()``'s penalty
    is used, ``alpha_ = 2`` for two classes and 1 for more
    (``alpha_path_`` is then empty, and a ``UserWarning`` names the class,
    often a mistyped label). *Equivalences:* the equal objectives of
    repeated rows, integer ``sample_weight`` and count targets (below) give
    equal fits for a given ``alpha``. Under ``"auto"`` the folds split rows
    by default, each held out with its whole weight, as scikit-learn's do:
    repeated copies of an input may land in different folds while a weighted
    row cannot, so a count's observations are held out together and the fold
    never trains on that (input, class) pair (4000 rows deduplicated to 22
    with counts chose ``alpha_`` = 1e4 against 1, probabilities up to 0.14
    off). ``weights_are_counts=True`` says that whole-number weights are such
    counts: the default folds (``cv`` None or an int) then share each row's
    count between the held-out parts as shuffled stratified folds would share
    its repeated copies (each class's observations spread evenly, which ones
    go where drawn at random), fold ``k`` training on the rest of the count;
    the cap on the folds by the smallest class, the rare-class rule, the
    paired test's standard error (``sum w`` observations in place of Kish's
    effective size) and ``solver="auto"``'s row count all count observations.
    So counts and repeated rows choose ``alpha_`` from the same distribution
    (the folds themselves are other draws: the choices agree where the
    held-out curve has a clear minimum). It is not the default because the
    values cannot tell counts from integer importance weights, and
    importance weights split as counts let each fold train on the rows it
    scores (``np.where(y == 1, 5, 1)``: weighted test log-loss 0.514, as
    ``LogisticRegressionCV``'s, against 0.584 split as counts); with
    whole-number weights above 1 and the default, ``"auto"`` warns once per
    fit. ``early_stopping`` follows the same rule: with
    ``weights_are_counts=True`` its validation split shares each count
    between training and validation (for probability targets where the
    probabilities times the weights are whole numbers), and without it holds
    whole-number weights out together, with the same warning; count targets'
    own counts it always shares out, each observation carrying its row's
    weight unless the weights count observations. The folds keep row splits
    for fractional weights, and for probability and count targets, whose row
    holds an input's observations of all classes. A given
    ``cv`` splits rows as given (with ``weights_are_counts=True`` its paired
    test, rare-class rule and solver still count the observations).

    **Preconditioning.** ``fit`` trains in the coordinates
    :math:`\tilde x_j = (x_j - \mu_j)/s_j` with :math:`s_j = \sqrt{\mathrm{var}_j + \alpha/S}`
    (weighted moments) and penalises :math:`\tilde W_1/s`, which is the
    raw-coordinate weight. This is an exact reparametrisation, so the optimum
    is unchanged; it only bounds the curvature of every first-layer weight,
    which makes L-BFGS converge in far fewer iterations on unscaled data.
    ``coefs_`` and ``intercepts_`` are in raw coordinates. A constant
    feature, one value on the rows of positive weight or a variance within
    float64 rounding of its mean (StandardScaler's test), keeps
    :math:`s_j = 1` and its raw-weight penalty under either ``standardize``,
    as in a StandardScaler pipeline; the linear model's coefficient on a
    feature of one value is exactly 0.

    **Threads.** With ``device="cpu"``, a fit whose layer products are small
    (Adam's minibatches at the default batch size, L-BFGS on small data; see
    ``softmaxkit._optim.SMALL_PRODUCT_MACS``) runs NumPy's BLAS on one thread:
    a second thread gains little on such products and, on a busy machine,
    stalls every one of them. Larger products use BLAS's usual thread count.

    **Targets.** ``y`` may be labels, an (n, K) matrix of probabilities (rows
    sum to 1) or, with ``count_targets=True``, of whole-number counts (rows
    normalised, the row total becomes a weight); a fractional row that does
    not sum to 1 is an error, and so are counts without ``count_targets``.

    **Dense X only.** A sparse ``X`` is refused with a TypeError: every
    engine multiplies dense arrays. Densify it with ``X.toarray()``, or in a
    pipeline with ``FunctionTransformer(operator.methodcaller("toarray"), accept_sparse=True)``.

    **Binary problems.** ``decision_function`` returns the 1-D log-odds
    ``z_1 - z_0`` (scikit-learn's convention); the K logits of any problem
    are ``predict_log_proba`` up to a per-row constant.

    References
    ----------
    Bishop, "Pattern Recognition and Machine Learning", 2006, sec. 4.3.4 (multiclass logistic regression).
    Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp., 1980.
    Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", 2nd ed., 2009, sec. 7.10 (cross-validation).
    Friedman, Hastie & Tibshirani, "Regularization paths for generalized linear models via coordinate descent",
    J. Stat. Softw. 33(1), 2010 (warm-started paths from the strongest penalty down).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from softmaxkit import SoftmaxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxClassifier(alpha=1.0).fit(X, y)
    >>> clf.predict_proba(X[:1]).round(3).tolist()
    [[0.982, 0.018, 0.0]]
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (),
        activation: str = "relu",
        alpha: float | str = "auto",
        standardize: bool = False,
        cv: Any = None,
        solver: str = "auto",
        max_iter: int = 200,
        tol: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: float = 1e-3,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        classes: Any = None,
        count_targets: bool = False,
        weights_are_counts: bool = False,
        dtype: str | None = None,
        device: str = "cpu",
        random_state: Any = None,
        verbose: int = 0,
        **unknown: Any,
    ) -> None:
        # **unknown is here only to refuse scikit-learn's options that softmaxkit lacks (class_weight,
        # C, n_jobs, MLPClassifier's learning_rate_init, ...: _UNKNOWN_PARAM_ADVICE) with advice instead of
        # Python's bare "unexpected keyword"; the signature shown to scikit-learn and help()
        # omits it (see the end of the class), so it takes the declared parameters only.
        check_unknown_params(unknown, "SoftmaxClassifier()", TypeError)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.standardize = standardize
        self.cv = cv
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.classes = classes
        self.count_targets = count_targets
        self.weights_are_counts = weights_are_counts
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters

    def set_params(self, **params: Any) -> "SoftmaxClassifier":
        """scikit-learn's ``set_params``; ``class_weight``, ``C``, ``n_jobs`` and MLPClassifier's options
        that softmaxkit lacks (``learning_rate_init``, ``warm_start``, ...) are refused with
        advice (ValueError, as scikit-learn refuses any unknown parameter), except
        ``class_weight=None``, ``n_jobs=None`` or 1, and MLPClassifier's ``warm_start=False``,
        ``shuffle=True``, ``beta_1=0.9``, ``beta_2=0.999`` and ``epsilon=1e-8``, which ask for what it
        does anyway (and are not kept)."""
        return super().set_params(**known_params(params, "set_params"))

    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> None:
        """Raise ValueError naming the first invalid parameter (scikit-learn checks at fit)."""

        def real(name: str, low: float, high: float = np.inf, *, open_low=False, open_high=False) -> None:
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
            ok = ok and (value > low if open_low else value >= low)
            ok = ok and (value < high if open_high else value <= high)
            if not ok:
                interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
                raise ValueError(f"{name} must be a real number in {interval}, got {value!r}")

        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        self._hidden_sizes()
        if self.activation not in _mlp.ACTIVATIONS:
            raise ValueError(f"activation must be one of {_mlp.ACTIVATIONS}, got {self.activation!r}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise ValueError(f"standardize must be True or False, got {self.standardize!r}")
        if not self._auto_alpha():
            alpha = self.alpha
            if isinstance(alpha, str) or not (isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)):
                raise ValueError(f"alpha must be 'auto' or a real number >= 0, got {alpha!r}")
            real("alpha", 0.0)
        check_cv_param(self.cv)
        real("tol", 0.0)
        if isinstance(self.learning_rate, str):  # MLPClassifier's schedule names: say what it is instead
            raise ValueError(f"learning_rate must be a real number > 0, got {self.learning_rate!r}: "
                             f"{_LEARNING_RATE_SCHEDULES}")
        real("learning_rate", 0.0, open_low=True)
        real("validation_fraction", 0.0, 1.0, open_low=True, open_high=True)
        integer("max_iter", 1)
        integer("n_iter_no_change", 1)
        if self.batch_size != "auto":
            integer("batch_size", 1)
        if self.dtype is not None:
            try:
                name = np.dtype(self.dtype).name
            except TypeError:
                name = None
            if name not in _DTYPES:
                raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be a bool, got {self.early_stopping!r}")
        self._count_targets()
        self._weights_are_counts()

    def _weights_are_counts(self) -> bool:
        """``weights_are_counts`` as a bool; ValueError naming it otherwise."""
        if not isinstance(self.weights_are_counts, (bool, np.bool_)):
            raise ValueError(f"weights_are_counts must be True or False, got {self.weights_are_counts!r}")
        return bool(self.weights_are_counts)

    def _count_targets(self) -> bool:
        """``count_targets`` as a bool; ValueError naming it otherwise (``score`` checks it too)."""
        if not isinstance(self.count_targets, (bool, np.bool_)):
            raise ValueError(f"count_targets must be True or False, got {self.count_targets!r}")
        return bool(self.count_targets)

    def _compute_dtype(self, X: np.ndarray) -> np.dtype:
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)

    def _resolve_solver(self, n_rows: int | None = None) -> str:
        """The solver that fits ``n_rows`` rows (of positive weight; None: before any data): an explicit
        one as given, else ``"auto"`` resolved as the ``solver`` parameter says."""
        if self.solver != "auto":
            return self.solver
        if not self._hidden_sizes():
            return "lbfgs"
        # L-BFGS to the chosen penalty's optimum only where that penalty can be trusted: chosen on
        # standardised features (one alpha suits them all) and on folds large enough (see MLP_LBFGS_MIN_ROWS).
        enough = n_rows is None or n_rows >= _alpha_search.MLP_LBFGS_MIN_ROWS
        return "lbfgs" if self.standardize and self._auto_alpha() and enough else "adam"

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "SoftmaxClassifier":
        """Fit by minimising the penalised weighted log-loss (see Notes).

        With ``alpha="auto"`` the penalty is first chosen by held-out log-loss
        over the internal folds (see the class Notes), then the model is
        refitted on all rows with it.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Finite real features (NaN or inf raise ValueError).
        y : array_like of shape (n_samples,) or (n_samples, K)
            Class labels, or per-row class probabilities, or class counts
            with ``count_targets=True``.
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative row weights; an integer weight ``k`` is exactly ``k``
            repeated rows in the objective (Adam's minibatch steps estimate
            it without bias, so for Adam it holds in expectation); a row of
            weight 0 is left out of the fit, as if absent (its class stays in
            ``classes_``). With ``alpha="auto"`` or ``early_stopping`` they
            weight the held-out log-loss too, and each row is held out with
            its whole weight unless ``weights_are_counts=True`` makes
            whole-number weights counts whose observations the folds and the
            validation split share out (see ``weights_are_counts``); early
            stopping shares out count targets' counts either way, each
            observation carrying its row's weight.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Invalid parameters, NaN/inf in ``X``, a feature so large that its
            square overflows float64 (:class:`~softmaxkit._mlp.FeatureOverflowError`,
            naming row and column), mismatched lengths, continuous labels, labels outside ``classes``, an (n, K) ``y``
            whose rows are neither probabilities nor counts, or are counts
            (or several targets) without ``count_targets=True``, fewer than two
            classes with positive weight, ``early_stopping`` with no row to
            hold out (every class has a single row of positive weight).
        TypeError
            A sparse ``X`` (see the class Notes, *Dense X only*).
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        _mlp.check_trainable_scale(X)
        targets = encode_targets(
            y, classes=self.classes, sample_weight=sample_weight, n_samples=X.shape[0], counts=self._count_targets()
        )
        cdtype = self._compute_dtype(X)
        xp = make_engine(self.device, cdtype)
        # One solver for the search's path fits and the refit, chosen on all the rows (with
        # weights_are_counts, counts as the repeated rows they stand for, as the search's folds split them).
        solver = self._resolve_solver(
            _alpha_search.sample_count(targets, weights_are_counts=self._weights_are_counts())
        )
        self._warn_weights_held_whole(targets)
        if self._auto_alpha():  # a float alpha is the user's, in the documented units
            _warn_weight_scale(targets)
        by_observations = self._adam_by_observations(targets, solver)
        if self._auto_alpha():
            # Folds and the path's fits draw from their own generator, so that
            # with an int random_state an MLP's refit below is exactly the fit
            # with alpha=alpha_. Without one, the search still uses fixed folds
            # (seed 0): the same data must not give a different alpha_ on every
            # fit (LogisticRegressionCV's folds are fixed too). A RandomState
            # instance is copied for the search, so that the refit draws from it
            # what an int seed's refit draws from its own fresh generator, however
            # many draws the search made (audit BN-4: RandomState(3) and 3 gave
            # MLPs 0.41 apart).
            search_rng = check_random_state(0 if self.random_state is None else self.random_state)
            if search_rng is self.random_state:
                search_rng = copy.deepcopy(search_rng)
            selection = self._search_alpha(
                X, targets, xp, cdtype, search_rng, solver=solver, by_observations=by_observations
            )
            alpha = selection.alpha
            if selection.bound is not None:
                why = self._weak_end_reason(X, targets, selection) if selection.bound == "weak" else ""
                _warn_alpha_at_bound(selection.bound, alpha, why)
        else:
            selection, alpha = None, float(self.alpha)
        rng = check_random_state(self.random_state)
        start = None
        if selection is not None and selection.fold_fits:
            # The linear refit starts from the fold solutions' average, as
            # LogisticRegressionCV's does (see the class Notes).
            net = _mlp.Network((X.shape[1], len(targets.classes)), self.activation)
            start = np.mean([f.theta_raw(net) for f in selection.fold_fits], axis=0)
        fitted = self._train(
            X, targets, alpha, xp=xp, cdtype=cdtype, rng=rng, verbose=bool(self.verbose), start=start, solver=solver,
            by_observations=by_observations,
            # alpha="auto" chose the penalty for fits stopped at the gradient test: its refit stops there too
            coefficients=not self._auto_alpha(),
        )
        if not fitted.converged:
            # An MLP that solver="auto" gave Adam for want of standardize=True (a StandardScaler pipeline
            # leaves it False): say that L-BFGS is there (audit BN-2).
            adam_by_default = solver == "adam" and self.solver == "auto" and not self.standardize
            hint = (
                " solver='auto' trains an MLP by Adam unless standardize=True (a StandardScaler in front does "
                "not set it); standardize=True in place of the scaler (with alpha='auto', on 100 or more rows) "
                "or solver='lbfgs' fits it by L-BFGS to the optimum of the penalised loss."
                if adam_by_default else ""
            )
            warnings.warn(
                f"SoftmaxClassifier: {fitted.solver} reached max_iter={self.max_iter} before converging "
                f"(tol={self.tol}); increase max_iter or tol.{hint}",
                ConvergenceWarning,
                stacklevel=2,
            )
        elif not fitted.coefficients_converged:
            warnings.warn(
                f"SoftmaxClassifier: lbfgs met the gradient test (tol={self.tol}), so the predictions are "
                f"converged, but max_iter={self.max_iter} ended the refinement before the coefficients were "
                f"within tol of the optimum; raise max_iter if you read coef_ (see the tol parameter).",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.classes_ = targets.classes
        self.alpha_ = alpha
        self.solver_ = solver
        self.alpha_path_ = None if selection is None else selection.path
        self.alpha_path_loss_ = None if selection is None else selection.loss
        self.alpha_at_bound_ = selection is not None and selection.bound is not None
        self.coefs_, self.intercepts_ = fitted.coefs, fitted.intercepts
        self.loss_curve_ = fitted.loss_curve
        self.validation_loss_curve_ = fitted.validation_loss_curve
        self.best_validation_loss_ = fitted.best_validation_loss
        self.n_iter_ = fitted.n_iter
        name = getattr(y, "name", None)  # a pandas Series' name: the target column, kept for the CLI
        self.target_name_ = name if isinstance(name, str) else None
        return self

    def _warn_weights_held_whole(self, targets: Targets) -> None:
        """Warn, once per fit however many fits (the search's folds, the refit) split the data, where
        whole-number weights above 1 are held out together (:func:`_warn_weights_split_as_rows`): by
        ``alpha="auto"``'s default folds (labels without ``weights_are_counts``), and by early stopping's
        validation split (:func:`~softmaxkit._alpha_search.weights_held_whole`)."""
        counted = self._weights_are_counts()
        folds = (
            not counted and _alpha_search.whole_number_weights(targets) and self._auto_alpha() and self._default_folds()
        )
        validation = (
            _alpha_search.weights_held_whole(targets, weights_are_counts=counted) if self.early_stopping else None
        )
        if folds or validation is not None:
            _warn_weights_split_as_rows(folds=folds, validation=validation)

    def _weak_end_reason(self, X: np.ndarray, targets: Targets, selection: _alpha_search.AlphaSearch) -> str:
        """What a choice at the weak end (``selection.bound == "weak"``) says about the data, for
        :func:`_warn_alpha_at_bound`: (nearly) separable classes only where the held-out log-loss there is
        below :data:`~softmaxkit._alpha_search.SEPARABLE_SHARE` of :func:`~softmaxkit._alpha_search.prior_log_loss`
        (audit CP: features at 1e-5 to 1e-2 stopped there at 0.957 against 1.099, under-confident, and
        were called separable); then the features on which even this penalty is strong, if any."""
        held, prior = float(selection.loss[-1]), _alpha_search.prior_log_loss(targets)
        losses = f"at {held:.3g} against {prior:.3g} for predicting the class frequencies"
        if held <= _alpha_search.SEPARABLE_SHARE * prior:
            text = (
                f"{losses}, as when the classes are (nearly) separable: a weaker penalty may score better "
                "still, and probabilities near 0 and 1 are to be expected."
            )
        else:
            text = (
                f"{losses}: too high for (nearly) separable classes. Every penalty searched was too strong for "
                "these data, and the probabilities are likely under-confident."
            )
        return f"{text}{self._small_scale_hint(X, targets, selection.alpha)}"

    def _small_scale_hint(self, X: np.ndarray, targets: Targets, alpha: float) -> str:
        """Name the features whose weighted standard deviation is below ``sqrt(alpha)``: on their
        standardised weights ``alpha`` weighs as ``alpha / sd**2 > 1`` would, more than
        ``LogisticRegression()``'s penalty on standardised features, and ``standardize=True`` fixes that.
        Otherwise (or with ``standardize=True``, whose penalty ignores the features' scale) only a smaller
        float alpha. The moment pass runs for this warning only."""
        smaller = " Check alpha_path_loss_, and pass a smaller float alpha."
        if self.standardize:
            return smaller
        # _precondition's weighted standard deviations (a constant feature gets 1)
        sd = _precondition(X, targets.weight, 0.0, np.dtype(np.float64), standardize=True)[2]
        small = np.flatnonzero(sd < np.sqrt(alpha))
        if small.size == 0:
            return smaller
        which = f"All {sd.size} features" if small.size == sd.size else f"{small.size} of the {sd.size} features"
        return (
            f" {which} have standard deviations below sqrt(alpha) = {np.sqrt(alpha):.2g} (the smallest "
            f"{sd.min():.2g}, feature {int(np.argmin(sd))}): on them even this penalty is stronger than alpha=1 "
            "on standardised features. Pass standardize=True (or put a StandardScaler in front), or a smaller "
            "float alpha."
        )

    def _auto_alpha(self) -> bool:
        return isinstance(self.alpha, str) and self.alpha == "auto"

    def _default_folds(self) -> bool:
        """Whether ``alpha="auto"`` makes its own folds (``cv`` None or an int), not given ones."""
        return self.cv is None or isinstance(self.cv, numbers.Integral)

    def _search_alpha(
        self, X: np.ndarray, targets: Targets, xp: NumpyEngine, cdtype: np.dtype, rng: np.random.RandomState,
        *, solver: str, by_observations: bool = False,
    ) -> _alpha_search.AlphaSearch:
        """Choose ``alpha`` by held-out log-loss (:mod:`softmaxkit._alpha_search`); ``solver`` and
        ``by_observations`` (:meth:`_adam_by_observations`) as the refit's."""
        mlp = bool(self._hidden_sizes())
        default_folds = _alpha_search.DEFAULT_FOLDS_MLP if mlp else _alpha_search.DEFAULT_FOLDS
        counted = self._weights_are_counts()
        folds = _alpha_search.make_folds(targets, self.cv, rng, default=default_folds, weights_are_counts=counted)
        if folds is None:
            selection = _alpha_search.fallback(len(targets.classes))
            reason = _alpha_search.why_too_small(targets, weights_are_counts=counted)
            _warn_search_skipped(reason, selection.alpha, labels=targets.labels is not None)
            return selection
        fewer = _alpha_search.why_fewer_folds(
            targets, len(folds), self.cv, default=default_folds, weights_are_counts=counted
        )
        if fewer is not None:
            _warn_fewer_folds(fewer)
        net = _mlp.Network((X.shape[1], *self._hidden_sizes(), len(targets.classes)), self.activation)
        # Every path fit draws its initialisation and minibatches from the same
        # seed: fits differ by their data and alpha only, not by how much
        # randomness earlier fits consumed.
        seed = rng.randint(np.iinfo(np.int32).max)

        def fit(train: tuple[np.ndarray, np.ndarray], alpha: float, start: _Trained | None) -> _Trained:
            rows, weight = train  # a count split weighs a row by its share of the count (see make_folds)
            with warnings.catch_warnings():
                # A path fit that stops at max_iter still scores; only the refit warns.
                warnings.simplefilter("ignore", ConvergenceWarning)
                return self._train(
                    X[rows], replace(targets.subset(rows), weight=weight), alpha, xp=xp, cdtype=cdtype,
                    rng=np.random.RandomState(seed), verbose=False, solver=solver, by_observations=by_observations,
                    start=None if start is None or mlp else start.theta_raw(net),
                    coefficients=False,  # scored by held-out predictions only (see _optim.lbfgs)
                )  # fmt: skip

        def score(fitted: _Trained, test: np.ndarray) -> np.ndarray:
            logits = _mlp.predict_logits(fitted.coefs, fitted.intercepts, self.activation, X[test], check_finite=False)
            return cross_entropy(logits, targets.target[test], reduction="none")

        if mlp:
            grid, patience, reference = _alpha_search.MLP_ALPHA_GRID, len(_alpha_search.MLP_ALPHA_GRID), None
            first, beyond = 0, _alpha_search.MLP_ALPHA_BEYOND
        else:
            reference = _alpha_search.reference_alpha(len(targets.classes))
            grid, patience = tuple(reference * g for g in _alpha_search.ALPHA_GRID), _alpha_search.PATIENCE
            # The linear grid already spans LogisticRegressionCV's range; its weak end is a bound.
            first, beyond = _alpha_search.PATH_START, ()
        return _alpha_search.search(
            folds, targets.weight, fit=fit, score=score, grid=grid, patience=patience, reference=reference,
            warm=not mlp, first=first, beyond=beyond,
            weaker_se=_alpha_search.rare_class_se(targets, weights_are_counts=counted),
            counts=_alpha_search.splits_counts(targets, weights_are_counts=counted),
        )  # fmt: skip

    def _train(
        self,
        X: np.ndarray,
        targets: Targets,
        alpha: float,
        *,
        xp: NumpyEngine,
        cdtype: np.dtype,
        rng: np.random.RandomState,
        verbose: bool,
        solver: str,
        by_observations: bool = False,
        start: np.ndarray | None = None,
        coefficients: bool = True,
    ) -> "_Trained":
        """One fit at a fixed ``alpha``: from ``start`` (flat raw-coordinate
        parameters, for the path's warm starts) or from the usual initialisation.

        ``coefficients``: L-BFGS refines the linear model until its weights,
        not only its gradient, are within ``tol`` (:func:`softmaxkit._optim.lbfgs`);
        False for the fits of ``alpha="auto"``: its path fits, which are only
        scored, and its refit, at the penalty chosen for fits stopped so.
        ``by_observations``: Adam visits the observations these rows count
        (:meth:`_adam_by_observations`, decided once per ``fit``)."""
        # Rows of weight 0 are left out of the optimisation, as if absent: summed in, their exact zeros
        # still changed the rounding of the BLAS products, which an MLP's L-BFGS amplified (audit BW:
        # iris, weights 0..3, probabilities 0.09 apart with and without them). classes_ keep them.
        positive = np.flatnonzero(targets.weight > 0)
        if positive.size == targets.weight.shape[0]:
            positive = None
        else:
            targets = targets.subset(positive)
        train, fit_targets, valid = self._split(targets, rng)

        def rows_of(part: np.ndarray) -> np.ndarray:  # the rows of X of a part of the positive rows
            return part if positive is None else positive[part]

        X_fit = X if valid is None and positive is None else X[rows_of(train)]
        Xs, mean, scale, first_layer = _precondition(
            X_fit, fit_targets.weight, alpha, cdtype, standardize=bool(self.standardize)
        )
        net = _mlp.Network((X.shape[1], *self._hidden_sizes(), len(targets.classes)), self.activation)
        penalty = xp.asarray(net.penalty_weights(first_layer))

        def problem(Xs: np.ndarray, t: Targets, alpha: float) -> _optim.Problem:
            return _optim.Problem(net, xp, xp.asarray(Xs), xp.asarray(t.target), t.weight, penalty, alpha)

        train_problem = problem(Xs, fit_targets, alpha)
        # Early stopping watches the plain validation log-loss, without the penalty.
        valid_problem = None
        if valid is not None:
            valid_rows, valid_targets = valid
            X_valid = _centre(X[rows_of(valid_rows)], mean, cdtype)
            _rescale_(X_valid, scale)
            valid_problem = problem(X_valid, valid_targets, 0.0)
        theta0 = net.init(rng) if start is None else _to_fit_coordinates(net, start, mean, scale)

        with progress(self.max_iter, description=f"SoftmaxClassifier ({solver})", enabled=verbose) as tracker:
            monitor = _optim.Monitor(
                tracker=tracker,
                validation=valid_problem,
                tol=float(self.tol),
                n_iter_no_change=int(self.n_iter_no_change),
                patience_on_train=solver == "adam" and valid_problem is None,
            )
            if solver == "lbfgs":
                result = _optim.lbfgs(
                    train_problem, theta0, max_iter=int(self.max_iter), tol=float(self.tol), monitor=monitor,
                    coefficients=coefficients,
                )  # fmt: skip
            else:
                # the observations of the rows fitted here (a fold's, early stopping's training part)
                observations = (
                    _alpha_search.count_cells(fit_targets, weights_are_counts=self._weights_are_counts())
                    if by_observations else None
                )
                available = X_fit.shape[0] if observations is None else int(np.sum(observations.counts))
                batch = min(200 if self.batch_size == "auto" else int(self.batch_size), available)
                result = _optim.adam(
                    train_problem,
                    theta0,
                    max_iter=int(self.max_iter),
                    batch_size=batch,
                    learning_rate=float(self.learning_rate),
                    rng=rng,
                    monitor=monitor,
                    observations=observations,
                )
        theta = monitor.best_theta if monitor.best_theta is not None else result.theta
        coefs, intercepts = _to_raw_coordinates(net, theta, mean, scale)
        return _Trained(
            coefs=coefs,
            intercepts=intercepts,
            loss_curve=monitor.loss_curve,
            validation_loss_curve=monitor.validation_curve if valid is not None else None,
            best_validation_loss=float(monitor.best) if valid is not None else None,
            n_iter=result.n_iter,
            converged=result.converged,
            solver=solver,
            coefficients_converged=result.coefficients_converged,
        )

    def _adam_by_observations(self, targets: Targets, solver: str) -> bool:
        """Whether Adam's epochs visit the observations that rows count (:func:`_alpha_search.count_cells`:
        whole-number weights with ``weights_are_counts=True``, count targets' counts), as the repeated rows
        would be visited (:func:`softmaxkit._optim._observation_batches`), rather than the rows. Decided once
        per fit, on all its rows, for the search's path fits and the refit alike (review R21: decided per
        fit, the folds' smaller counts visited observations and the refit the rows). Above
        :data:`ADAM_OBSERVATION_LIMIT` observations the rows, with a warning."""
        if solver != "adam":
            return False
        cells = _alpha_search.count_cells(targets, weights_are_counts=self._weights_are_counts())
        if cells is None:
            return False
        n_observations = int(np.sum(cells.counts))
        if n_observations <= ADAM_OBSERVATION_LIMIT:
            return True
        warnings.warn(
            f"SoftmaxClassifier: solver='adam' visits the {targets.weight.shape[0]} rows once per epoch, not "
            f"the {n_observations} observations they count (more than {ADAM_OBSERVATION_LIMIT}), so an epoch "
            "is fewer steps than over the repeated rows; solver='lbfgs' fits all of them at once",
            UserWarning,
            stacklevel=3,  # the caller of fit
        )
        return False

    def _split(
        self, targets: Targets, rng: np.random.RandomState
    ) -> tuple[np.ndarray, Targets, tuple[np.ndarray, Targets] | None]:
        """Early stopping's training rows and their targets, and its validation rows and theirs (None
        without early stopping). Counts (:func:`~softmaxkit._alpha_search.count_cells`: whole-number
        weights with ``weights_are_counts=True``, count targets' counts) share each row's count between
        the parts (:func:`_count_validation_split`), as a split of the repeated rows would; other rows are
        split whole (:func:`_validation_split`)."""
        n = targets.weight.shape[0]
        if not self.early_stopping:
            return np.arange(n), targets, None
        fraction = float(self.validation_fraction)
        cells = _alpha_search.count_cells(targets, weights_are_counts=self._weights_are_counts())
        try:
            if cells is not None:
                return _count_validation_split(targets, cells, fraction, rng)
            train, valid = _validation_split(targets, fraction, rng)
        except ValueError as error:
            # The folds of alpha="auto" fit early-stopped models on parts of the rows,
            # which can be too small where all of them are not.
            hint = " or pass a float alpha (alpha='auto' also fits each internal fold's training rows)"
            raise ValueError(f"{error}{hint if self._auto_alpha() else ''}") from None
        return train, targets.subset(train), (valid, targets.subset(valid))

    # ------------------------------------------------------------------ predict

    @property
    def coef_(self) -> np.ndarray:
        """The linear model's weights in ``LogisticRegression``'s layout (see the class Attributes)."""
        return self._linear_layer("coef_")[0]

    @property
    def intercept_(self) -> np.ndarray:
        """The linear model's intercepts in ``LogisticRegression``'s layout (see the class Attributes)."""
        return self._linear_layer("intercept_")[1]

    def _linear_layer(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(coef_, intercept_)`` of a fitted linear model; AttributeError otherwise, so ``hasattr`` is False.

        Two classes: the log-odds ``z_1 - z_0`` as one row, as ``LogisticRegression`` and
        :meth:`decision_function` give it. Copies: writing to them must not change the model.
        """
        check_is_fitted(self)  # NotFittedError is an AttributeError
        if len(self.coefs_) != 1:
            raise AttributeError(
                f"{name} exists only for the linear model (hidden_layer_sizes=()); this MLP's weights are "
                "coefs_ and intercepts_, one array per layer"
            )
        w, b = self.coefs_[0], self.intercepts_[0]  # (d, K), (K,)
        if w.shape[1] == 2:
            return (w[:, 1] - w[:, 0])[None, :], np.array([b[1] - b[0]])
        return w.T.copy(), b.copy()

    def _network(self) -> _mlp.Network:
        sizes = (self.n_features_in_, *(w.shape[1] for w in self.coefs_))
        return _mlp.Network(tuple(int(s) for s in sizes), self.activation)

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """scikit-learn's ``validate_data`` on a dense ``X``; a sparse one is refused saying how to densify
        it (scikit-learn's own message, "dense data is required", gave no way to do so inside a pipeline)."""
        import scipy.sparse

        if scipy.sparse.issparse(X):
            n, d = X.shape
            # scikit-learn's first sentence is kept: code and tests match on it.
            raise TypeError(
                "Sparse data was passed for X, but dense data is required: SoftmaxClassifier needs dense X, and "
                f"this sparse {type(X).__name__} of shape {X.shape} takes {n * d * 8 / 2**20:.3g} MiB dense in "
                "float64. Convert it with X.toarray(), or in a pipeline put "
                "FunctionTransformer(operator.methodcaller('toarray'), accept_sparse=True) before the classifier"
            )
        return validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))

    def _logits(self, X: Any) -> np.ndarray:
        """Raw logits ``(n, K)`` in float64 (the same forward pass as training)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return _mlp.predict_logits(self.coefs_, self.intercepts_, self.activation, X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: shape (n, K), or for two classes the 1-D log-odds ``z_1 - z_0``.

        Returns
        -------
        ndarray of shape (n_samples,) if binary else (n_samples, K)
        """
        logits = self._logits(X)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``softmax(logits)``, shape (n_samples, K), columns as ``classes_``."""
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log_softmax(logits)``: exact, finite even where ``predict_proba`` underflows to 0."""
        return log_softmax(self._logits(X), axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each row, shape (n_samples,)."""
        logits = self._logits(X)  # first: an unfitted model raises NotFittedError here
        return self.classes_[np.argmax(logits, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``(X, y)``.

        ``y`` may also be the (n, K) probabilities or counts the model can be
        fitted on, counts only with ``count_targets=True`` as in :meth:`fit`
        (``set_params(count_targets=True)`` on a model fitted on labels): the
        score is then ``sum_i w_i Y[i, pred_i] / sum_i w_i sum_k Y[i, k]``,
        the share of the target mass on the predicted class.
        For counts that is the accuracy over the repeated rows they stand for,
        for probabilities the expected accuracy (scikit-learn's ``score``
        refused them with "a mix of continuous-multioutput and multiclass
        targets", although ``fit`` takes them).

        A label of ``y`` that the model was not fitted with (a class absent
        from the training rows or fold) can never be predicted: its rows
        count as wrong, as scikit-learn's ``accuracy_score`` (hence
        ``LogisticRegression.score``) counts them, weighted by
        ``sample_weight``, and a ``UserWarning`` names those labels and their
        rows (it is also what a label-encoding mistake looks like).
        Raising instead gave ``cross_val_score`` a nan for such a fold and
        ``GridSearchCV`` all-nan mean scores, so it silently kept its first
        candidate.

        Warns
        -----
        UserWarning
            ``y`` has labels outside ``classes_``.

        Raises
        ------
        ValueError
            An (n, K) ``y`` that is neither probabilities nor counts, or counts
            (or several targets) without ``count_targets=True``; or labels of
            another type than ``classes_`` (strings for a model fitted on
            integers, or the reverse), as ``LogisticRegression.score`` raises
            (scikit-learn's "Mix of label input types"), without the warning.
        """
        check_is_fitted(self)
        y_arr = np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] > 1:
            # a DataFrame's column names checked as fit checks them (sorted: the positions of classes_)
            return self._soft_target_score(X, columns_as_classes(y, y_arr, self.classes_)[0], sample_weight)
        accuracy = super().score(X, y, sample_weight=sample_weight)
        if y_arr.ndim == 1:  # after scoring: labels that scikit-learn refuses raise, and are never "counted"
            warn_unseen_labels(y_arr, self.classes_, type(self).__name__)
        return accuracy

    def _soft_target_score(self, X: Any, y: np.ndarray, sample_weight: Any) -> float:
        """:meth:`score` for an (n, K) ``y`` of probabilities or counts."""
        if y.shape[1] != len(self.classes_):
            raise ValueError(f"y has {y.shape[1]} columns but the model has {len(self.classes_)} classes")
        opt_in = "set_params(count_targets=True) on this model"
        _, probs, totals = soft_targets(y, self.classes_, counts=self._count_targets(), opt_in=opt_in)
        pred = np.argmax(self._logits(X), axis=1)
        if len(pred) != len(y):
            raise ValueError(f"X and y have different numbers of samples: {len(pred)} and {len(y)}")
        weight = check_sample_weight(sample_weight, len(y), allow_scalar=True) * totals
        return float(np.dot(weight, probs[np.arange(len(y)), pred]) / np.sum(weight))

    # ------------------------------------------------------------------ persistence

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        check_is_fitted(self)
        params = self.get_params()
        classes_param = params.pop("classes")
        random_state = params.pop("random_state")
        params["hidden_layer_sizes"] = list(self._hidden_sizes())
        params["alpha"] = "auto" if self._auto_alpha() else float(self.alpha)
        # A splitter object or explicit splits cannot be written without pickle: the
        # file says what it was, and the loaded model refuses to refit with other folds.
        cv = params.pop("cv")
        params["cv"], cv_unsaved = _cv_record(cv)
        params["dtype"] = None if self.dtype is None else str(np.dtype(self.dtype))
        # Files written before count_targets existed lack it and load with the default, False.
        params["count_targets"] = self._count_targets()
        # Files written before weights_are_counts existed lack it and load with the default, False.
        params["weights_are_counts"] = self._weights_are_counts()
        params["random_state"] = random_state if isinstance(random_state, (int, type(None))) else None
        meta = {
            "params": params,
            "cv_unsaved": cv_unsaved,
            # Labels go in the JSON record: safetensors stores numbers only.
            "classes": _mlp.labels_to_json(self.classes_),
            "classes_param": None if classes_param is None else _mlp.labels_to_json(np.asarray(classes_param)),
            "n_features_in": int(self.n_features_in_),
            "n_iter": int(self.n_iter_),
            "alpha": float(self.alpha_),
            "solver": self.solver_,
            "alpha_at_bound": bool(getattr(self, "alpha_at_bound_", False)),
            "n_layers": len(self.coefs_),
            "best_validation_loss": self.best_validation_loss_,
            "feature_names_in": getattr(self, "feature_names_in_", np.array([])).tolist() or None,
            "target_name": getattr(self, "target_name_", None),
        }
        arrays = {"loss_curve": np.asarray(self.loss_curve_, dtype=np.float64)}
        if self.validation_loss_curve_ is not None:
            arrays["validation_loss_curve"] = np.asarray(self.validation_loss_curve_)
        if self.alpha_path_ is not None:
            arrays["alpha_path"] = np.asarray(self.alpha_path_, dtype=np.float64)
            arrays["alpha_path_loss"] = np.asarray(self.alpha_path_loss_, dtype=np.float64)
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            arrays[f"coef_{i}"] = w
            arrays[f"intercept_{i}"] = b
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SoftmaxClassifier":
        """The model a state of :meth:`_get_state` describes, or ValueError/KeyError/TypeError naming what
        does not fit (:func:`softmaxkit.load` reports it as a :class:`~softmaxkit.io.ModelFileError`)."""
        net = _mlp.read_saved_network(meta, arrays)  # also the CLI's check (cli._adapters.load_model)
        params = dict(meta["params"])
        params["hidden_layer_sizes"] = net.hidden_layer_sizes
        unsaved = meta.get("cv_unsaved")
        if unsaved is not None:
            params["cv"] = UnsavedCV.from_record(unsaved)
        classes_param = meta.get("classes_param")
        if classes_param is not None:
            classes_param = _mlp.labels_from_json(classes_param, "classes_param")
            if not np.array_equal(np.unique(classes_param), net.classes):
                raise ValueError(
                    f"classes_param {classes_param.tolist()} does not give the classes {net.classes.tolist()}"
                )
        model = cls(**params, classes=classes_param)
        model._check_params()  # a parameter this version does not know (solver="newton") fails now, not at refit
        model.classes_ = net.classes
        model.n_features_in_ = net.n_features
        if net.feature_names is not None:
            model.feature_names_in_ = np.asarray(net.feature_names, dtype=object)
        model.target_name_ = net.target_name
        model.coefs_, model.intercepts_ = net.coefs, net.intercepts
        model.loss_curve_ = _saved_vector(arrays, "loss_curve").tolist()
        curve = _saved_vector(arrays, "validation_loss_curve", optional=True)
        model.validation_loss_curve_ = None if curve is None else curve.tolist()
        best = meta.get("best_validation_loss")
        if best is not None and not (isinstance(best, numbers.Real) and not isinstance(best, bool)):
            raise ValueError(f"best_validation_loss must be a number or null, got {best!r}")
        model.best_validation_loss_ = best
        n_iter = meta["n_iter"]
        if not (isinstance(n_iter, numbers.Integral) and not isinstance(n_iter, bool) and n_iter >= 0):
            raise ValueError(f"n_iter must be an integer >= 0, got {n_iter!r}")
        model.n_iter_ = int(n_iter)
        # Files written before alpha="auto" existed hold a float alpha param only.
        alpha = meta.get("alpha", params["alpha"])
        if not (isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and 0 <= alpha < np.inf):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        model.alpha_ = float(alpha)
        # Files written before solver_ existed lack it; "auto" then meant Adam for an MLP, L-BFGS otherwise.
        solver = meta.get("solver", model.solver if model.solver != "auto" else
                          "adam" if model._hidden_sizes() else "lbfgs")
        if solver not in ("lbfgs", "adam"):
            raise ValueError(f"solver must be 'lbfgs' or 'adam', got {solver!r}")
        model.solver_ = solver
        model.alpha_path_ = _saved_vector(arrays, "alpha_path", optional=True)
        model.alpha_path_loss_ = _saved_vector(arrays, "alpha_path_loss", optional=True)
        at_bound = meta.get("alpha_at_bound", False)  # files written before it existed lack it
        if not isinstance(at_bound, bool):
            raise ValueError(f"alpha_at_bound must be true or false, got {at_bound!r}")
        model.alpha_at_bound_ = at_bound
        if (model.alpha_path_ is None) != (model.alpha_path_loss_ is None) or (
            model.alpha_path_ is not None and model.alpha_path_.shape != model.alpha_path_loss_.shape
        ):
            raise ValueError("alpha_path and alpha_path_loss must both be there, of one length, or neither")
        return model


# The declared parameters only: scikit-learn reads parameters from __init__'s signature and
# its checks pass every name there (a "unknown=..." would be refused).
SoftmaxClassifier.__init__.__signature__ = inspect.signature(SoftmaxClassifier.__init__).replace(
    parameters=[
        p for p in inspect.signature(SoftmaxClassifier.__init__).parameters.values() if p.kind != p.VAR_KEYWORD
    ]
)


class UnsavedCV:
    """The ``cv`` of a loaded model that its file could not hold: a splitter object or explicit splits.

    A model file holds no Python objects, so ``StratifiedKFold(3, shuffle=True)``
    or ``GroupKFold(5)`` (with its groups) or a list of ``(train, test)``
    index pairs cannot be written; the file keeps its description instead,
    and the loaded model's ``cv`` is this stand-in. Prediction never uses the
    folds. A refit that would (``alpha="auto"``, a
    :class:`~softmaxkit.calibration.CalibratedClassifier`'s cross-fitting,
    also after ``sklearn.base.clone``) raises ValueError rather than fit with
    other folds than the saved model's: a silent (or merely warned) switch
    to the default 5 folds would give another model from the same call,
    which a scikit-learn user, used to pickle keeping every parameter, would
    not expect. Set the folds again with ``set_params(cv=...)``.
    """

    def __init__(self, description: str) -> None:
        self.description = description

    @classmethod
    def from_record(cls, record: Any) -> "UnsavedCV":
        if not isinstance(record, str):
            raise ValueError(f"cv_unsaved must be a string, got {record!r}")
        return cls(record)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(
            f"cv={self.description} was not saved in the model file (a splitter object or explicit splits "
            "cannot be written without pickle), so this loaded model cannot refit with its folds; set them "
            "again with set_params(cv=...) before fitting"
        )

    split = get_n_splits = _refuse

    def __repr__(self) -> str:
        return f"UnsavedCV({self.description!r})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, UnsavedCV) and other.description == self.description

    def __hash__(self) -> int:
        return hash(self.description)


def _cv_record(cv: Any) -> tuple[int | None, str | None]:
    """``(cv, cv_unsaved)`` for a state: an int or None as it is; anything else described, for
    :class:`UnsavedCV` (a splitter by its repr, explicit splits by their count)."""
    if cv is None or (isinstance(cv, numbers.Integral) and not isinstance(cv, bool)):
        return (None if cv is None else int(cv)), None
    if isinstance(cv, UnsavedCV):
        return None, cv.description
    if hasattr(cv, "split"):
        text = repr(cv)
        return None, text if len(text) <= 200 else text[:197] + "..."
    return None, f"<{len(cv)} explicit (train, test) splits>" if hasattr(cv, "__len__") else "<an iterable of splits>"


def _saved_vector(arrays: dict[str, np.ndarray], key: str, *, optional: bool = False) -> np.ndarray | None:
    """``arrays[key]`` as a 1-D float64 array (None when ``optional`` and absent); ValueError otherwise."""
    if optional and key not in arrays:
        return None
    value = arrays[key]
    if value.ndim != 1 or value.dtype.kind not in "iuf":
        raise ValueError(f"{key} must be a 1-D array of numbers, got shape {value.shape} and dtype {value.dtype}")
    return np.asarray(value, dtype=np.float64)


@dataclass(frozen=True)
class _Trained:
    """One fit at a fixed ``alpha`` (parameters in raw-feature coordinates)."""

    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]
    loss_curve: list[float]
    validation_loss_curve: list[float] | None
    best_validation_loss: float | None
    n_iter: int
    converged: bool
    solver: str
    # False when max_iter ended L-BFGS's coefficient refinement (see _optim.lbfgs).
    coefficients_converged: bool = True

    def theta_raw(self, net: _mlp.Network) -> np.ndarray:
        """The flat float64 parameter vector (raw coordinates)."""
        return net.pack(list(zip(self.coefs, self.intercepts)))


#: What to do instead of scikit-learn's options that softmaxkit's estimators lack.
_UNKNOWN_PARAM_ADVICE = {
    "class_weight": (
        "softmaxkit has no class_weight. Weight rows instead, e.g. fit(X, y, sample_weight="
        "sklearn.utils.class_weight.compute_sample_weight('balanced', y)). Beware that reweighting classes "
        "moves predict_proba away from the true class frequencies (an imbalanced set with 3.45% positives, "
        "balanced: mean predicted probability 0.308); if the probabilities matter, recalibrate them on "
        "unweighted held-out rows or do not reweight"
    ),
    "C": (
        "softmaxkit's penalty is alpha, not C: LogisticRegression(C=c) is SoftmaxClassifier(alpha=1/c) with 3 "
        "or more classes and alpha=2/c with 2 classes (see help(SoftmaxClassifier), Notes); the default "
        "alpha='auto' chooses it on held-out folds"
    ),
    "n_jobs": (
        "softmaxkit has no n_jobs: its folds are fitted one after another in this process (parallel folds are "
        "not implemented, so n_jobs > 1 could not do what it says); large matrix products use NumPy's BLAS "
        "threads, and a CalibratedClassifier's estimator keeps its own n_jobs (RandomForestClassifier(n_jobs=-1)). "
        "n_jobs=None or 1 is accepted: it asks for one process"
    ),
    # MLPClassifier's options (audit BN-3: each was refused without a word of what to use)
    "learning_rate_init": (
        "softmaxkit's Adam step size is learning_rate (MLPClassifier's learning_rate_init, the same default 1e-3): "
        "pass learning_rate=..."
    ),
    "warm_start": (
        "softmaxkit has no warm_start: every fit starts afresh (the linear model from zero, an MLP from "
        "random_state's initialisation); to train longer, refit with a larger max_iter. alpha='auto' "
        "warm-starts its own path of penalties internally"
    ),
    "shuffle": (
        "softmaxkit has no shuffle option: Adam visits the rows in a fresh random order every epoch (seeded by "
        "random_state), as MLPClassifier(shuffle=True) does, and L-BFGS uses every row at each step"
    ),
    "max_fun": (
        "softmaxkit's L-BFGS is bounded by max_iter (its iterations) alone, not by a count of loss "
        "evaluations; see tol for when it stops"
    ),
}
_UNKNOWN_PARAM_ADVICE.update({
    name: (
        "softmaxkit's Adam keeps MLPClassifier's defaults, beta_1=0.9, beta_2=0.999, epsilon=1e-8; only its "
        "step size is a parameter, learning_rate (MLPClassifier's learning_rate_init)"
    )
    for name in ("beta_1", "beta_2", "epsilon")
})
_UNKNOWN_PARAM_ADVICE.update({
    name: (
        f"{name} is an option of MLPClassifier's SGD solver, which softmaxkit lacks: solver is 'lbfgs' or 'adam' "
        "(see help(SoftmaxClassifier)), and Adam's momentum is fixed at beta_1=0.9, MLPClassifier's default"
    )
    for name in ("momentum", "nesterovs_momentum", "power_t")
})

#: Why a string learning_rate (MLPClassifier's schedule names) is refused.
_LEARNING_RATE_SCHEDULES = (
    "softmaxkit's learning_rate is Adam's step size, a number (MLPClassifier's learning_rate_init), and "
    "softmaxkit has no learning-rate schedules: MLPClassifier's 'constant', 'invscaling' and 'adaptive' "
    "belong to its SGD solver, which softmaxkit lacks; Adam runs at this step size, and solver='lbfgs' needs none"
)

#: Values of those options that ask for what softmaxkit does anyway: accepted and ignored (not kept, so
#: get_params, clone and save/load never see them), so code written for scikit-learn (class_weight=None,
#: n_jobs=None in a grid, MLPClassifier's defaults spelt out) runs unchanged. Every fit starts afresh
#: (warm_start=False), Adam draws a fresh row order every epoch (shuffle=True) and runs with
#: softmaxkit._optim.adam's beta1, beta2 and epsilon, which are MLPClassifier's defaults.
_NO_OP_VALUES = {
    "class_weight": (None,),
    "n_jobs": (None, 1),
    "warm_start": (False,),
    "shuffle": (True,),
    "beta_1": (0.9,),
    "beta_2": (0.999,),
    "epsilon": (1e-8,),
}

#: The options of :data:`_UNKNOWN_PARAM_ADVICE` that SoftmaxClassifier's users pass
#: (LogisticRegression's and MLPClassifier's); CalibratedClassifier's (CalibratedClassifierCV's) are only n_jobs.
CLASSIFIER_OPTIONS = tuple(_UNKNOWN_PARAM_ADVICE)
CALIBRATED_OPTIONS = ("n_jobs",)


def _unknown_params_message(names: list[str], where: str, options: tuple[str, ...]) -> str:
    """Why ``names`` are not parameters; for those among ``options``, what to do instead."""
    message = f"{where} got unexpected parameter(s) {', '.join(map(repr, names))}"
    advice = [_UNKNOWN_PARAM_ADVICE[name] for name in names if name in options]
    return message + "".join(f": {text}" if i == 0 else f"; {text}" for i, text in enumerate(advice))


def _is_no_op(name: str, value: Any) -> bool:
    # `is` for None; a flag by a bool (NumPy's too); a number by a number of its kind, by value (n_jobs=1 an
    # integer, beta_1=0.9 any real), never by a bool (True == 1) or an array
    def same(v: Any) -> bool:
        flag = isinstance(value, (bool, np.bool_))
        if v is None or isinstance(v, bool):
            return value is v or (flag and bool(value) is v)
        kind = numbers.Integral if isinstance(v, numbers.Integral) else numbers.Real
        return isinstance(value, kind) and not flag and value == v

    return any(same(v) for v in _NO_OP_VALUES.get(name, ()))


def check_unknown_params(
    unknown: dict[str, Any], where: str, error: type[Exception], *, options: tuple[str, ...] = CLASSIFIER_OPTIONS
) -> None:
    """Raise ``error`` naming the keys of ``unknown`` (parameters an estimator lacks).

    Used by the ``__init__`` of :class:`SoftmaxClassifier` and
    :class:`~softmaxkit.calibration.CalibratedClassifier` (TypeError, as
    Python's) and by ``set_params`` (ValueError, as scikit-learn's). For the
    names in ``options`` (scikit-learn's options that the estimator lacks) the
    message gives :data:`_UNKNOWN_PARAM_ADVICE`, and their values in
    :data:`_NO_OP_VALUES` are accepted and ignored.
    """
    names = sorted(name for name, value in unknown.items() if not (name in options and _is_no_op(name, value)))
    if names:
        raise error(_unknown_params_message(names, where, options))


def known_params(params: dict[str, Any], where: str, *, options: tuple[str, ...] = CLASSIFIER_OPTIONS) -> dict:
    """``set_params``' ``params`` without the names in ``options``, which are refused with advice
    (ValueError) unless a no-op; other names go on to scikit-learn's own check."""
    check_unknown_params({k: v for k, v in params.items() if k in options}, where, ValueError, options=options)
    return {k: v for k, v in params.items() if k not in options}


def warn_unseen_labels(y: np.ndarray, classes: np.ndarray, where: str) -> None:
    """Warn when 1-D labels ``y`` hold values outside ``classes``, which ``score`` counts as wrong.

    Such a row (a class that the training rows or fold lacked) can never be
    predicted; scikit-learn's ``accuracy_score`` counts it as a miss silently,
    but it is also what a label-encoding mistake looks like, so say which.
    """
    unseen = ~np.isin(y, classes)
    if np.any(unseen):

        def head(values: list[Any], k: int = 10) -> list[Any]:  # a few labels, not thousands
            return values if len(values) <= k else values[:k] + ["..."]

        warnings.warn(
            f"{where}.score: {int(unseen.sum())} of {len(y)} rows of y have label(s) "
            f"{head(np.unique(y[unseen]).tolist())} that the model was not fitted with (classes_ "
            f"{head(classes.tolist())}); they count as wrong, as in scikit-learn's "
            "accuracy_score. If the labels are encoded otherwise than the training labels, fix that",
            UserWarning,
            stacklevel=3,  # the caller of score
        )


def _warn_search_skipped(reason: str, alpha: float, *, labels: bool) -> None:
    """Say that ``alpha="auto"`` searched nothing and which penalty it used instead.

    Silent, the fallback looked like a chosen penalty (``softmaxkit fit``
    printed "chose 1 by held-out log-loss"), and its usual cause, one row of
    a class, is often a mistyped label that the user would rather fix.
    """
    hint = "; if a label is mistyped, fix or drop its row" if labels else ""
    warnings.warn(
        f"SoftmaxClassifier: alpha='auto' searched no penalty: {reason}, which no internal fold can both hold "
        f"out and train on; fitted with alpha={alpha:g}, LogisticRegression()'s penalty (alpha_path_ is empty). "
        f"Pass a float alpha to choose it yourself{hint}.",
        UserWarning,
        stacklevel=4,  # the caller of fit (through _search_alpha)
    )


def _warn_weights_split_as_rows(*, folds: bool, validation: str | None) -> None:
    """Say that whole-number weights are held out together, by ``alpha="auto"``'s default folds
    (``folds``) and early stopping's validation split (``validation``: how, as
    :func:`~softmaxkit._alpha_search.weights_held_whole` says), which is right for importance weights but
    not for counts, and how to say they are counts (``weights_are_counts``), or, where they were said to
    be counts that cannot be shared out (``validation="not counts"``), what would share them.

    The values cannot tell the two apart: split as counts, importance weights let every fold train on the
    rows it scored (audit R15); split as rows, counts chose a 1e4 times stronger penalty (audit BM), and
    early stopping never trained on a held-out (input, class) pair (audit BW: probabilities 0.36 off;
    review R17: 0.63 for probabilities with count weights).
    The text holds no numbers, so Python's default filter shows it once per calling line.
    """
    advice = (
        "If the weights count repeated observations (deduplicated rows), pass weights_are_counts=True to split "
        "the observations, as for the repeated rows; if they are importance weights, ignore this."
    )
    # folds (labels without weights_are_counts) come only with validation None or "rows"
    if validation == "not counts":
        who = "early_stopping=True"
        how = (
            "the probabilities in y times the weights are not whole numbers (no class counts to share out), so "
            "its validation split holds out rows, each"
        )
        advice = (
            "If the weights count repeated rows, pass the rows repeated to share them between training and "
            "validation; if they are importance weights, ignore this."
        )
    elif folds and validation == "rows":
        who, how = "alpha='auto' and early_stopping=True", "the folds and the validation split hold out rows, each"
    elif folds:
        who, how = "alpha='auto'", "its folds split rows, each held out"
    elif validation == "counts":
        who, how = "early_stopping=True", "its validation split shares out y's counts, each observation held out"
    else:
        who, how = "early_stopping=True", "its validation split holds out rows, each"
    warnings.warn(
        f"SoftmaxClassifier: {who} got whole-number sample_weight, some above 1; {how} with its whole weight. "
        f"{advice}",
        UserWarning,
        stacklevel=4,  # the caller of fit (through _warn_weights_held_whole)
    )


def _warn_fewer_folds(reason: str) -> None:
    """Say that ``alpha="auto"`` held out over fewer folds than asked, and why (``reason``:
    :func:`~softmaxkit._alpha_search.why_fewer_folds`).

    Each held-out part must contain every class, so the smallest class caps
    the folds; silent, that hid how few of its rows chose the penalty (as
    scikit-learn's ``StratifiedKFold`` warns in the same case).
    """
    warnings.warn(
        f"SoftmaxClassifier: alpha='auto' scored its penalties over {reason}, and every fold must hold "
        f"out and train on each class. The held-out log-loss that "
        f"chooses alpha_ then rests on those few rows, so the choice is noisy; check alpha_path_loss_, "
        f"or pass a float alpha to choose it yourself.",
        UserWarning,
        stacklevel=4,  # the caller of fit (through _search_alpha)
    )


def _warn_alpha_at_bound(bound: str, alpha: float, why: str = "") -> None:
    """Say that ``alpha="auto"`` chose an end of its range (``bound``: "strong" or "weak") and what it means
    (``why``, at the weak end: :meth:`SoftmaxClassifier._weak_end_reason`).

    DESIGN.md: a fitted parameter that stops on a bound is reported as such.
    The strong end is a sound answer on data without signal, so its message
    explains rather than alarms; the weak end asks the user to look.
    """
    if bound == "strong":
        end = "strongest"
        meaning = (
            "the held-out log-loss was least with the weights shrunk almost to 0, so predict_proba stays "
            "close to the class frequencies. Where the features carry little information about the labels "
            "that is a sensible answer, not a failure; pass a float alpha to fit a weaker penalty anyway."
        )
    else:
        end = "weakest"
        meaning = f"the held-out log-loss was still falling at this end of alpha_path_loss_, {why}"
    warnings.warn(
        f"SoftmaxClassifier: alpha='auto' chose alpha={alpha:g}, the {end} penalty searched "
        f"(alpha_at_bound_ is True): {meaning}",
        UserWarning,
        stacklevel=3,  # the caller of fit
    )


def _warn_weight_scale(targets: Targets) -> None:
    """Say that fractional ``sample_weight`` sums to far more or fewer than its rows of positive weight
    (:func:`~softmaxkit._alpha_search.weight_scale`), which shifts every penalty ``alpha="auto"`` searches.

    The penalty counts rows of weight 1 (*weights are repetitions*, class Notes), so weights summing to
    ``k`` times the rows make each ``alpha`` act ``k`` times weaker (audit CP: weights 1 and up to 1000
    kept ``LogisticRegression()``'s penalty where one 100 times stronger was clearly better). The
    whole-number weights of counts sum to their observations, and those of
    :func:`_warn_weights_split_as_rows` are left to it.
    """
    total = _alpha_search.weight_scale(targets)
    if total is None:
        return
    weight = _alpha_search.row_sample_weight(targets)
    n = int(np.count_nonzero(weight > 0))
    ratio = total / n
    effect = f"{ratio:.3g} times weaker" if ratio > 1 else f"{1 / ratio:.3g} times stronger"
    warnings.warn(
        f"SoftmaxClassifier: alpha='auto' got fractional sample_weight summing to {total:.4g} over {n} rows "
        f"of positive weight: the penalty is worth alpha rows of weight 1 (weights are repetitions), so on "
        f"these weights every alpha searched acts {effect} than on {n} rows of weight 1, and alpha_ with it. "
        f"If the weights say which rows matter more, scale them to sum to the rows (sample_weight * {n} / "
        f"sample_weight.sum()); if they count that many observations, ignore this.",
        UserWarning,
        stacklevel=3,  # the caller of fit
    )


def _validation_split(targets: Targets, fraction: float, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Early stopping's training and validation rows (sorted index arrays).

    Only rows with positive weight are held out: the validation loss is their
    weighted mean, so a validation part of weight-0 rows has none (it divided
    by zero) and each held-out weight-0 row made the part smaller. Weight-0
    rows stay in training, where they change nothing (``SoftmaxClassifier._train``
    removes them before it splits). With labels, a class
    with a single positive-weight row keeps it in training: held out, the
    class would be fitted from no row, and a stratified split needs two of
    every class (within ``alpha="auto"``'s folds, a class of two rows has one
    in each training part). The other ``n`` rows give ``ceil(fraction * n)``
    (at most ``n - 1``) to validation, stratified by label as in
    scikit-learn's ``MLPClassifier`` when both parts can hold every class,
    else drawn at random without taking any class's last training row
    (:func:`_holdout_keeping_every_class`); with every row positive and every
    class of two or more rows this is exactly ``train_test_split(...,
    stratify=labels)``.

    Raises
    ------
    ValueError
        Fewer than two rows are left to split (every class has a single
        positive-weight row, or a single row has positive weight).
    """
    from sklearn.model_selection import train_test_split

    positive = targets.weight > 0
    candidates, kept = np.flatnonzero(positive), np.flatnonzero(~positive)
    labels = None
    if targets.labels is not None:
        counts = np.bincount(targets.labels[candidates], minlength=len(targets.classes))
        single = counts[targets.labels[candidates]] == 1
        kept = np.concatenate([kept, candidates[single]])
        candidates, labels = candidates[~single], targets.labels[candidates[~single]]
    n = candidates.shape[0]
    if n < 2:
        what = (
            "every class has a single row with positive sample_weight"
            if labels is not None
            else f"{int(np.sum(positive))} row has positive sample_weight"
        )
        raise ValueError(
            f"early_stopping=True has no rows to hold out for validation: {what}; set early_stopping=False"
        )
    n_valid = min(int(np.ceil(fraction * n)), n - 1)  # scikit-learn's rounding; never every row
    n_classes = 0 if labels is None else len(np.unique(labels))
    if labels is not None and min(n_valid, n - n_valid) < n_classes:
        valid = candidates[_holdout_keeping_every_class(labels, n_valid, rng)]
        train = np.setdiff1d(candidates, valid)
    else:
        train, valid = train_test_split(candidates, test_size=n_valid, random_state=rng, stratify=labels)
    return np.sort(np.concatenate([train, kept])), np.sort(valid)


def _holdout_keeping_every_class(labels: np.ndarray, n_valid: int, rng: np.random.RandomState) -> np.ndarray:
    """Positions of up to ``n_valid`` rows, in a random order, skipping any whose class has one row left.

    For splits too small to stratify (fewer held-out or training rows than
    classes), where ``train_test_split`` refuses: the training part keeps at
    least one row of every class, so every class is still fitted.
    """
    remaining = np.bincount(labels)
    chosen: list[int] = []
    for i in rng.permutation(labels.shape[0]):
        if len(chosen) == n_valid:
            break
        if remaining[labels[i]] > 1:
            remaining[labels[i]] -= 1
            chosen.append(int(i))
    return np.asarray(chosen, dtype=np.int64)


def _count_validation_split(
    targets: Targets, cells: _alpha_search.Cells, fraction: float, rng: np.random.RandomState
) -> tuple[np.ndarray, Targets, tuple[np.ndarray, Targets]]:
    """Early stopping's split of counts: each observation of ``cells``
    (:func:`~softmaxkit._alpha_search.count_cells`) goes to training or validation as it would among the
    repeated rows, so a row may be in both parts, weighted by its observations there (audit BW: held out
    whole, a deduplicated row took its whole count with it, its (input, class) pair was never trained on,
    and the probabilities were up to 0.36 off the frequencies under L-BFGS, 0.04 for the repeated rows).

    :func:`_validation_split`'s rules, counting observations instead of rows: a class observed once
    keeps its observation in training; of the other ``n`` observations ``ceil(fraction * n)`` (at most
    ``n - 1``) are held out, stratified by class (soft targets too, as their repeated rows would be
    labels) when both parts can hold every class, else drawn at random without taking any class's last
    training observation. Which of a class's observations are held out is drawn by
    :func:`~softmaxkit._alpha_search.deal_counts`, as ``alpha="auto"``'s count folds are.

    Returns ``(train_rows, train_targets, (valid_rows, valid_targets))``: each part's rows (sorted,
    those with observations there) and their targets, weighted by those observations (soft targets:
    the row's share of each class, normalised, its total times what one observation weighs, the
    cells' ``weight``).

    Raises
    ------
    ValueError
        Fewer than two observations are left to split (every class is observed once).
    """
    rows, classes, counts = cells.rows, cells.classes, cells.counts
    present = np.unique(classes)
    totals = np.rint(np.bincount(classes, counts.astype(np.float64))[present]).astype(np.int64)
    split = totals >= 2  # a class observed once keeps it in training
    spare = np.where(split, totals - 1, 0)  # what a class can give without losing its last training observation
    n = int(np.sum(totals[split]))
    if n < 2:
        if targets.labels is not None:
            given = "sample_weight counted as repeated rows"
        elif targets.totals is not None:
            given = "counting y's counts"
        else:
            given = "counting y's probabilities times sample_weight"
        raise ValueError(
            f"early_stopping=True has no observations to hold out for validation: every class is observed "
            f"once ({given}); set early_stopping=False"
        )
    n_valid = min(int(np.ceil(fraction * n)), n - 1)  # as _validation_split, in observations
    generator = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
    if min(n_valid, n - n_valid) < int(np.sum(split)):
        valid = generator.multivariate_hypergeometric(spare, min(n_valid, int(np.sum(spare))))
    else:
        # Stratified: each class's share of n_valid, the remainder to the largest fractions (ties at random).
        exact = n_valid * np.where(split, totals, 0) / n
        valid = np.floor(exact).astype(np.int64)
        order = np.lexsort((generator.random(exact.size), valid - exact))
        valid[order[: n_valid - int(np.sum(valid))]] += 1
        valid = np.minimum(valid, spare)
    held = _alpha_search.deal_counts(counts, classes, np.column_stack([valid, totals - valid]), generator)
    train_part, valid_part = (_count_part(targets, cells._replace(counts=held[:, j])) for j in (1, 0))
    return (*train_part, valid_part)


def _count_part(targets: Targets, cells: _alpha_search.Cells) -> tuple[np.ndarray, Targets]:
    """The rows (sorted) with observations among ``cells`` (a part of :func:`_count_validation_split`'s)
    and their targets, weighted by those observations."""
    keep = cells.counts > 0
    if targets.labels is not None:  # one cell per row, of the row's label
        part = cells.rows[keep]
        weight = cells.counts[keep].astype(np.float64)
        return part, Targets(targets.classes, targets.target[part], weight, targets.labels[part])
    part, where = np.unique(cells.rows[keep], return_inverse=True)
    observed = np.zeros((part.size, len(targets.classes)))
    np.add.at(observed, (where, cells.classes[keep]), cells.counts[keep])
    total = observed.sum(axis=1)
    # each observation keeps its row's sample_weight where that does not count observations
    weight = total if cells.weight is None else total * cells.weight[part]
    totals = None if targets.totals is None else total
    return part, Targets(targets.classes, observed / total[:, None], weight, None, totals)


#: Rows per block of the moment passes: a block's float64 copy and squares stay in cache
#: instead of filling an (n, d) temporary (4096 rows took 2.5x as long at 200 columns).
_VARIANCE_BLOCK_ROWS = 1024


def _precondition(
    X: np.ndarray, weight: np.ndarray, alpha: float, dtype: np.dtype, *, standardize: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fitting coordinates ``(X - mu) / s`` (a new array in ``dtype``), the
    feature centres ``mu`` and scales ``s`` (float64), and the first layer's
    penalty multipliers ``r`` in those coordinates (see
    :meth:`softmaxkit._mlp.Network.penalty_weights`).

    ``standardize``: ``s_j`` is the weighted standard deviation and ``r = 1``,
    the penalty on the standardised weights (plain standardisation is then
    well conditioned: the penalty's curvature is ``alpha / S`` for every
    feature). Otherwise ``r = 1 / s_j**2``, the penalty on the raw weights, and
    ``s_j = sqrt(var_j + alpha / S)`` with the weighted variance ``var_j``
    and total weight ``S``. In the coordinates ``(x - mu) / s`` the curvature
    of the objective along a first-layer weight is roughly ``(c var_j +
    alpha / S) / s_j**2`` (``c <= 1/4`` from the softmax), which this choice
    keeps between ``c`` and 1 for every feature: plain standardisation would
    leave the penalty term, ``alpha / (S sigma_j**2)``, unbounded for features
    of small variance. Moments are weighted so that zero and integer weights
    act exactly like removed and repeated rows.

    A constant feature (see :func:`_moments`) gets ``s = 1`` and ``r = 1``
    whatever ``standardize`` says, so its penalty is on the raw weight; an
    exactly constant one is centred on its value, so its column of the fitting
    coordinates is exactly zero and a linear model's coefficient stays exactly 0.

    One (n, d) copy is made, the centred ``X``, scaled in place (a full-size
    temporary of squares and a second centring pass took a tenth of a 100k x
    200 linear fit).
    """
    total = float(np.sum(weight))
    w = weight / total
    mean, one_value = _centre_estimate(X, w)
    Xs = _centre(X, mean, dtype)
    var, constant = _spread(Xs, w, mean, one_value)
    scale = np.sqrt(var if standardize else var + alpha / total)
    scale[constant] = 1.0
    _rescale_(Xs, scale)
    return Xs, mean, scale, (np.ones_like(scale) if standardize else 1.0 / scale**2)


def _centre_estimate(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float64 centre for ``X``'s columns (``w`` sums to 1) and which columns hold one value.

    The weighted mean, accumulated in float64 (float32 ``X`` block by block, without a float64
    copy of it), except that a column holding one value on the rows of positive weight (rows of
    weight 0 are absent) is centred on exactly that value, so that its fitting column is exactly
    0: the mean, a few ulp off, centred a column of 0.1s to a bias that was then "standardised"
    (coefficient 1.4e6, 67 in float32, chosen by ``SelectFromModel``). Any centre gives the same
    optimum; :func:`_spread` corrects the variance for the rest of the mean's error.
    """
    d = X.shape[1]
    positive = w > 0
    everywhere = bool(positive.all())
    mean = w @ X if X.dtype == np.float64 else np.zeros(d)
    high, low = np.full(d, -np.inf), np.full(d, np.inf)
    for rows in _blocks(X.shape[0]):
        block = X[rows]
        if X.dtype != np.float64:
            mean += w[rows] @ block.astype(np.float64)
        present = block if everywhere else block[positive[rows]]
        if present.shape[0]:
            np.maximum(high, present.max(axis=0), out=high)
            np.minimum(low, present.min(axis=0), out=low)
    one_value = high == low
    mean[one_value] = high[one_value]
    return mean, one_value


def _spread(Xs: np.ndarray, w: np.ndarray, centre: np.ndarray, one_value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted variance of the columns of ``Xs = X - centre`` (float64) and which are constant.

    The corrected two-pass algorithm (Chan, Golub and LeVeque), accumulated in float64: ``E[d**2] -
    E[d]**2`` for the deviations ``d`` from the centre, whose error the second term removes.
    Besides the columns of one value, a column is constant when its variance is within the
    rounding error of this computation, StandardScaler's bound ``var <= n eps var + (n eps
    mean)**2`` (``n`` the rows of positive weight, ``eps`` float64's, which scikit-learn uses for
    float32 data too): a column that should be 1.0 but varied by 1e-15, standardised, fitted its
    rounding noise (coefficients +-7e13, probabilities 0.03 off the pipeline's). The bound is
    relative, so a feature measured in 1e-15 units is standardised as StandardScaler does.
    """
    shift = np.zeros(Xs.shape[1])
    squares = np.zeros(Xs.shape[1])
    for rows in _blocks(Xs.shape[0]):
        block = Xs[rows].astype(np.float64, copy=False)
        shift += w[rows] @ block
        squares += w[rows] @ np.square(block)
    var = np.maximum(squares - shift**2, 0.0)
    n = float(np.count_nonzero(w))
    eps = np.finfo(np.float64).eps
    mean = centre + shift
    return var, one_value | (var <= n * eps * var + (n * eps * mean) ** 2)


def _blocks(n: int) -> list[slice]:
    """Row blocks of :data:`_VARIANCE_BLOCK_ROWS` for the moment passes."""
    return [slice(start, start + _VARIANCE_BLOCK_ROWS) for start in range(0, n, _VARIANCE_BLOCK_ROWS)]


def _centre(X: np.ndarray, mean: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``X - mean`` as a new array in ``dtype`` (one pass, no separate cast copy).

    The difference is taken in the wider of ``X``'s and the mean's precision and only the result is
    rounded to ``dtype``: casting float64 ``X`` to float32 first erased a feature whose offset is
    large against its spread (1e6 + 0.01 z: one distinct value in 400, a class-prior model, exit 0).
    NumPy casts the output in buffered blocks, so no float64 copy of ``X`` is made.
    """
    return np.subtract(X, mean, out=np.empty(X.shape, dtype=dtype), casting="same_kind")


def _rescale_(Xs: np.ndarray, scale: np.ndarray) -> None:
    """``Xs /= scale``, in place, as a product by ``1 / scale`` in ``Xs``'s dtype."""
    Xs *= (1.0 / scale).astype(Xs.dtype)


def _to_raw_coordinates(
    net: _mlp.Network, theta: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fold the preconditioning (centre and scale) into the first layer.

    ``((x - mu) / s) @ W + b = x @ (W / s[:, None]) + (b - (mu / s) @ W)``.
    """
    layers = [(np.array(w, dtype=np.float64), np.array(b, dtype=np.float64)) for w, b in net.unpack(theta)]
    w1, b1 = layers[0]
    layers[0] = (w1 / scale[:, None], b1 - (mean / scale) @ w1)
    return [w for w, _ in layers], [b for _, b in layers]


def _to_fit_coordinates(net: _mlp.Network, theta_raw: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_to_raw_coordinates`: raw-coordinate parameters as a
    starting point in the coordinates ``(x - mu) / s`` (a warm start on the path).

    ``x @ W + b = ((x - mu) / s) @ (s[:, None] * W) + (b + mu @ W)``.
    """
    layers = [(np.array(w, dtype=np.float64), np.array(b, dtype=np.float64)) for w, b in net.unpack(theta_raw)]
    w1, b1 = layers[0]
    layers[0] = (w1 * scale[:, None], b1 + mean @ w1)
    return net.pack(layers)
