"""Small datasets for the demo and the docs: scikit-learn's bundled ones, and class-rate data.

Nothing here touches the network: ``breast_cancer`` and ``digits`` ship inside
scikit-learn, and :func:`class_rate_data` is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Names accepted by :func:`load_dataset`.
DATASETS = ("breast_cancer", "digits")


@dataclass(frozen=True)
class Dataset:
    """A labelled dataset with the words needed to talk about it.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64
        Class indices into ``class_names``.
    feature_names, class_names : list of str
    title : str
        A human name ("Breast cancer (Wisconsin diagnostic)").
    unit : str
        What one row is, singular ("patient", "image").
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str]
    title: str
    unit: str


def load_dataset(name: str) -> Dataset:
    """Load a bundled scikit-learn dataset by name.

    Parameters
    ----------
    name : {"breast_cancer", "digits"}

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name.
    """
    from sklearn import datasets

    if name == "breast_cancer":
        raw = datasets.load_breast_cancer()
        title, unit = "Breast cancer (Wisconsin diagnostic, 569 patients)", "patient"
    elif name == "digits":
        raw = datasets.load_digits()
        title, unit = "Handwritten digits (8x8 images, 10 classes)", "image"
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return Dataset(
        X=np.asarray(raw.data, dtype=np.float64),
        y=np.asarray(raw.target, dtype=np.int64),
        feature_names=[str(f) for f in raw.feature_names],
        class_names=[str(c) for c in raw.target_names],
        title=title,
        unit=unit,
    )


def class_rate_data(
    rates: np.ndarray, *, repeats: int, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct one-hot inputs, each repeated, with labels drawn at known class rates.

    Input ``i`` is the one-hot vector ``e_i``; each of its ``repeats`` copies gets a
    label drawn from ``rates[i]``. A maximum-likelihood softmax model on this data
    should predict, for ``e_i``, the *empirical* class frequencies of its copies.

    Parameters
    ----------
    rates : ndarray of shape (n_inputs, n_classes)
        Each row a probability vector.
    repeats : int
        Copies of each input.
    random_state : None, int >= 0 or numpy Generator

    Returns
    -------
    X : ndarray of shape (n_inputs * repeats, n_inputs), float64
    y : ndarray of shape (n_inputs * repeats,), int64
    """
    rates = np.asarray(rates, dtype=np.float64)
    if rates.ndim != 2 or not np.all(np.isfinite(rates)) or (rates < 0).any():
        raise ValueError(f"rates must be an (n_inputs, n_classes) array of probability rows, got {rates!r}")
    if rates.shape[0] == 0:  # else np.concatenate's "need at least one array to concatenate", below
        raise ValueError(f"rates must hold at least one row (one input), got shape {rates.shape}")
    sums = rates.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-5):
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"rates row {row} sums to {sums[row]:.10g}, not 1")
    # Renormalised: a row within 1e-5 of 1 (0.333333 x 3) is what the caller meant, and
    # Generator.choice refuses sums off by more than ~1e-8 with its own message.
    rates = rates / sums[:, None]
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    try:  # NumPy's own check, in words that name the argument ("SeedSequence expects int ...")
        if isinstance(random_state, bool):
            raise TypeError("a bool is not a seed")
        rng = np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ValueError(
            f"random_state must be None, a non-negative int or a numpy Generator, got {random_state!r}"
        ) from None
    n_inputs, n_classes = rates.shape
    X = np.repeat(np.eye(n_inputs), repeats, axis=0)
    y = np.concatenate([rng.choice(n_classes, size=repeats, p=row) for row in rates]).astype(np.int64)
    return X, y
