"""Adam's epochs over counted rows (noted in the closing notes since audit BW).

Rows that count observations (``sample_weight`` as counts with ``weights_are_counts=True``, count
targets, probabilities times counted weights) stand for that many repeated rows. Adam cut a permutation of
the *rows* into minibatches, so 12 deduplicated rows made an epoch one step where the 999 repeated rows
make five: with the default ``max_iter`` the fit stopped unconverged, 0.12-0.30 off the frequencies the
repeated rows' fit came within 0.003-0.16 of. An epoch now visits the observations, as over the repeated
rows (``softmaxkit._optim._observation_batches``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmaxkit import SoftmaxClassifier, _alpha_search, _mlp, _optim
from softmaxkit import classifier as classifier_module
from softmaxkit._engine import NumpyEngine
from softmaxkit._targets import encode_targets

FREQ = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.34, 0.33, 0.33]])
INPUTS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
COUNTS = np.round(FREQ * 999).astype(int)  # (input, class) counts


def _deduplicated():
    rows, classes = np.nonzero(COUNTS)
    return INPUTS[rows], classes, COUNTS[rows, classes].astype(float)


def _fit(X, y, w=None, **params):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = SoftmaxClassifier(
            **{"solver": "adam", "hidden_layer_sizes": (20,), "alpha": 1e-6, "random_state": 0, **params}
        ).fit(X, y, sample_weight=w)
    return model, [str(r.message) for r in record]


@pytest.mark.parametrize("form", ["weights", "count targets", "probabilities times weights"])
def test_adam_on_counts_fits_the_frequencies_as_the_repeated_rows(form):
    """An MLP fitted by Adam on the 12 deduplicated rows reaches the frequencies as on the 3996 repeated
    rows (0.003 off there), converged. Before: 0.12 off, and adam reached max_iter."""
    X, y, w = _deduplicated()
    if form == "weights":
        model, said = _fit(X, y, w, weights_are_counts=True)
    elif form == "count targets":
        model, said = _fit(INPUTS, COUNTS, count_targets=True)
    else:  # each row's class frequencies, weighted by its count of observations
        model, said = _fit(INPUTS, COUNTS / COUNTS.sum(1, keepdims=True), COUNTS.sum(1), weights_are_counts=True)
    assert not [s for s in said if "max_iter" in s], said
    assert np.abs(model.predict_proba(INPUTS) - FREQ).max() < 0.03


def _problem(X, targets):
    net = _mlp.Network((2, 5, 3), "relu")
    xp = NumpyEngine(np.float64)
    problem = _optim.Problem(
        net, xp, xp.asarray(X), xp.asarray(targets.target), targets.weight, xp.asarray(net.penalty_weights(np.ones(2))), 0.0
    )
    return net, problem


@pytest.mark.parametrize("form", ["weights", "count targets with fractional weights"])
@pytest.mark.parametrize("batch_size", [1, 7, 200, 5000])
def test_an_epoch_of_observation_batches_sums_to_the_full_objective(form, batch_size):
    """Every observation is drawn once per epoch, each batch scaled by its share: the batches' losses,
    weighted by their sizes, add up to the full weighted mean log-loss at a fixed theta (float64 oracle:
    Problem.loss_and_grad), and an epoch is ceil(N / batch_size) steps, as over the repeated rows."""
    if form == "weights":
        X, y, w = _deduplicated()
        targets = encode_targets(y, sample_weight=w, n_samples=len(y))
        cells = _alpha_search.count_cells(targets, weights_are_counts=True)
    else:
        X = INPUTS
        weights = np.array([0.5, 2.0, 1.25, 3.0])
        targets = encode_targets(COUNTS, sample_weight=weights, n_samples=4, counts=True)
        cells = _alpha_search.count_cells(targets)
        assert cells.weight is not None  # each observation weighs its row's sample_weight
    net, problem = _problem(X, targets)
    theta = net.init(np.random.RandomState(1))
    full, _ = problem.loss_and_grad(problem.xp.asarray(theta))
    grad = np.zeros_like(theta)
    total, sizes = 0.0, []
    batches = _optim._observation_batches(problem, cells, np.random.RandomState(2), batch_size)
    for batch in batches:
        total += problem.batch_data_loss_and_grad(theta, batch.rows, batch.scales, grad, labels=batch.labels) * batch.size
        sizes.append(batch.size)
    n_observations = int(COUNTS.sum())
    assert sum(sizes) == n_observations
    assert len(sizes) == -(-n_observations // batch_size)
    np.testing.assert_allclose(total / n_observations, full, rtol=1e-12)


def test_more_observations_than_the_limit_visit_the_rows_and_warn(monkeypatch):
    monkeypatch.setattr(classifier_module, "ADAM_OBSERVATION_LIMIT", 100)
    X, y, w = _deduplicated()
    _, said = _fit(X, y, w, weights_are_counts=True, max_iter=5)
    assert any(f"not the {COUNTS.sum()} observations they count" in s for s in said), said


def test_rows_without_counts_keep_their_row_batches():
    """Guard (passes before by design): unit weights, and weights not said to be counts, visit the rows;
    the fit is bit-identical to the unweighted one."""
    X, y, _ = _deduplicated()
    plain, _ = _fit(X, y, max_iter=20)
    unit, _ = _fit(X, y, np.ones(len(y)), weights_are_counts=True, max_iter=20)
    np.testing.assert_array_equal(plain.predict_proba(INPUTS), unit.predict_proba(INPUTS))


@pytest.mark.parametrize("params", [{"early_stopping": True}, {"alpha": "auto"}])
def test_rows_or_observations_is_decided_once_per_fit(monkeypatch, params):
    """Review R21: decided on each fit's own rows, the folds' and early stopping's training parts (fewer
    observations than the limit) visited observations while the warning (and the refit) said rows."""
    monkeypatch.setattr(classifier_module, "ADAM_OBSERVATION_LIMIT", int(COUNTS.sum()) - 100)
    visits = []
    adam = _optim.adam

    def spy(*args, observations=None, **kwargs):
        visits.append(observations is None)
        return adam(*args, observations=observations, **kwargs)

    monkeypatch.setattr(_optim, "adam", spy)
    X, y, w = _deduplicated()
    _, said = _fit(X, y, w, weights_are_counts=True, max_iter=3, **params)
    assert visits and all(visits), visits  # every fit (the folds', the refit) visits the rows, as the warning says
    assert any("visits the 12 rows once per epoch" in s for s in said)
