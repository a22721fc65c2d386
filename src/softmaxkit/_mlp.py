"""The network math of :class:`~softmaxkit.SoftmaxClassifier`, written once for
every engine: a stack of dense layers ending in softmax logits, its forward
pass, manual backpropagation and the L2 penalty.

All parameters live in one flat vector ``theta`` so that L-BFGS (which wants a
vector) and Adam (which updates every entry the same way) share it; each layer's
``W`` and ``b`` are views into it. The layout, layer by layer, is
``[W_1.ravel(), b_1, W_2.ravel(), b_2, ...]`` with ``W_l`` of shape
``(fan_in, fan_out)`` in C order, so ``hidden = x @ W + b`` as in
scikit-learn's ``MLPClassifier.coefs_``.

Every function takes the engine ``xp`` (:mod:`softmaxkit._engine`) and uses
only its methods and the operators NumPy and torch share, which is why one copy
serves both engines. The loss and its gradient with respect to the logits come
from softmaxkit's fused cross-entropy (through ``xp.cross_entropy_and_grad_``).

:func:`read_saved_network` is the one check of a saved network (shapes,
finite weights, known activation, distinct sorted classes, feature names): both
:meth:`SoftmaxClassifier._from_state <softmaxkit.SoftmaxClassifier>` and the
CLI's scikit-learn-free ``predict`` (:func:`softmaxkit.cli._adapters.load_model`)
read a model file through it, so the two refuse the same files alike.
"""

from __future__ import annotations

import functools
import numbers
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

ACTIVATIONS = ("relu", "tanh")


@dataclass(frozen=True)
class Network:
    """Shapes of a dense network; holds no parameters.

    Attributes
    ----------
    layer_sizes : tuple of int
        ``(n_features, *hidden_layer_sizes, n_classes)``; two entries is
        multinomial logistic regression.
    activation : {"relu", "tanh"}
        Hidden-layer nonlinearity (unused without hidden layers).
    """

    layer_sizes: tuple[int, ...]
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise _unknown_activation(self.activation)

    @property
    def n_layers(self) -> int:
        """Number of weight matrices (1 for the linear model)."""
        return len(self.layer_sizes) - 1

    @functools.cached_property
    def _offsets(self) -> list[tuple[int, int, int]]:
        """``(start of W, start of b, end of b)`` of every layer in ``theta``.

        Cached: :meth:`unpack` runs twice per minibatch step.
        """
        out, pos = [], 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            w_end = pos + fan_in * fan_out
            out.append((pos, w_end, w_end + fan_out))
            pos = w_end + fan_out
        return out

    @property
    def n_params(self) -> int:
        return self._offsets[-1][2]

    def unpack(self, theta: Any) -> list[tuple[Any, Any]]:
        """Views ``[(W_1, b_1), ...]`` into a flat NumPy array or torch tensor."""
        layers = []
        for (start, w_end, b_end), fan_in, fan_out in zip(
            self._offsets, self.layer_sizes[:-1], self.layer_sizes[1:]
        ):
            layers.append((theta[start:w_end].reshape(fan_in, fan_out), theta[w_end:b_end]))
        return layers

    def pack(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`unpack` for NumPy arrays (float64)."""
        return np.concatenate([np.concatenate([w.ravel(), b.ravel()]) for w, b in layers]).astype(np.float64)

    def init(self, rng: np.random.RandomState) -> np.ndarray:
        """Initial ``theta`` (float64).

        The linear model starts at 0: the problem is convex, and a fixed start
        makes the fit independent of ``random_state``. An MLP draws every
        ``W_l`` from Glorot & Bengio's (2010) uniform ``+-sqrt(6 / (fan_in +
        fan_out))`` (scikit-learn's choice for relu and tanh) with zero biases.
        """
        theta = np.zeros(self.n_params)
        if self.n_layers == 1:
            return theta
        for w, _ in self.unpack(theta):
            fan_in, fan_out = w.shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            w[...] = rng.uniform(-bound, bound, size=w.shape)
        return theta

    def penalty_weights(self, first_layer_scale: np.ndarray) -> np.ndarray:
        """Per-entry multipliers ``r`` of the penalty ``(alpha / 2) * sum(r * theta**2)``.

        Biases are not penalised (``r = 0``). The first layer's row ``j`` gets
        ``first_layer_scale[j]`` (``1 / s_j**2`` when the features were
        preconditioned, so that the penalty falls on the weights of the raw
        features; see :class:`~softmaxkit.SoftmaxClassifier`), every other
        weight 1.
        """
        r = np.zeros(self.n_params)
        for layer, (w, _) in enumerate(self.unpack(r)):
            w[...] = first_layer_scale[:, None] if layer == 0 else 1.0
        return r


def _unknown_activation(activation: Any) -> ValueError:
    return ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _activate(xp: Any, z: Any, activation: str) -> Any:
    """The activation of ``z``, computed in place (``z`` is overwritten)."""
    if activation == "relu":
        return xp.relu_(z)
    if activation == "tanh":
        return xp.tanh_(z)
    raise _unknown_activation(activation)  # never a silent default: "gelu" is not tanh


def _activation_grad(a: Any, activation: str) -> Any:
    """d activation / d z written in terms of the output ``a`` (saves keeping ``z``)."""
    if activation == "relu":
        return a > 0
    if activation == "tanh":
        return 1 - a * a
    raise _unknown_activation(activation)


def forward(net: Network, xp: Any, theta: Any, X: Any) -> tuple[Any, list[Any]]:
    """Logits ``(N, K)`` and the inputs of every layer (``[X, h_1, ...]``)."""
    return _forward(net, xp, net.unpack(theta), X)


def _forward(net: Network, xp: Any, layers: list[tuple[Any, Any]], X: Any) -> tuple[Any, list[Any]]:
    """:func:`forward` on the layer views of ``theta`` (the caller has them already)."""
    inputs = [X]
    a = X
    for layer, (w, b) in enumerate(layers):
        z = a @ w  # (N, fan_out), a fresh array: the bias and activation go in place
        z += b
        if layer == len(layers) - 1:
            return z, inputs
        a = _activate(xp, z, net.activation)
        inputs.append(a)
    raise AssertionError("unreachable: a network has at least one layer")


class FeatureOverflowError(ValueError):
    """Finite features so large that float64 overflows: at prediction the logits, at fit the variance.

    ``row`` and ``column`` locate the offending feature (at prediction, the one
    that contributes most to the first overflowing row), so callers that know
    the file and the column names can say where it is; ``problem`` is the rest
    of the sentence after the value.
    """

    def __init__(self, row: int, column: int, value: float, *, problem: str | None = None) -> None:
        self.row, self.column, self.value = row, column, value
        self.problem = problem or (
            "is too large: the logits overflow float64 (inf or NaN probabilities); rescale that feature to the "
            "range the model was trained on"
        )
        super().__init__(f"X[{row}, {column}] = {value:g} {self.problem}")


def check_trainable_scale(X: np.ndarray) -> None:
    """Refuse features whose squares overflow float64, naming the first one (row and column).

    Fitting centres and scales each feature by its weighted variance: squares
    above about ``1.8e308 / n`` overflow, the feature's scale becomes inf and
    the fit would silently ignore it (or fail deep inside with an unrelated
    message). Raises :class:`FeatureOverflowError`.
    """
    limit = np.sqrt(np.finfo(np.float64).max / max(X.shape[0], 1))
    if X.size and np.max(np.abs(X)) > limit:  # one reduction; the (n, d) mask only on failure
        too_big = np.abs(X) > limit
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(too_big)), too_big.shape))
        raise FeatureOverflowError(i, j, float(X[i, j]), problem=(
            f"is too large to train on (its square overflows float64 above |x| = {limit:.3g}); rescale the column"))


#: Rows per block of :func:`predict_logits`.
PREDICT_BLOCK_ROWS = 4096


def predict_logits(
    coefs: list[np.ndarray], intercepts: list[np.ndarray], activation: str, X: np.ndarray, *, check_finite: bool = True
) -> np.ndarray:
    """Logits ``(N, K)`` in float64 of a fitted network with raw-coordinate weights.

    The forward pass of :func:`forward`, for prediction: one float64 pass in
    NumPy, then a check that every logit is finite. Finite inputs can still
    overflow (``1e308 * 2`` is inf, and ``inf - inf`` is NaN); softmax of such
    logits is NaN, so instead of a NaN probability with a prediction the
    first such row raises :class:`FeatureOverflowError`, naming the feature
    with the largest ``|x_j| * max_k |W_jk|`` in that row. ``check_finite=False``
    skips that check (the ``alpha="auto"`` search scores non-finite held-out
    losses itself).
    """
    from softmaxkit._engine import NumpyEngine

    X = np.asarray(X, dtype=np.float64)
    net = Network((X.shape[1], *(int(w.shape[1]) for w in coefs)), activation)
    layers = list(zip(coefs, intercepts))
    engine = NumpyEngine(np.float64)
    logits = np.empty((X.shape[0], net.layer_sizes[-1]), dtype=np.float64)
    # Row blocks: OpenBLAS multiplies a tall (N, d) by a narrow (d, K) several times
    # faster in cache-sized blocks (0.35 s vs 1.75 s at 2M x 50 @ 50 x 3), and the hidden
    # activations of a block stay small.
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, X.shape[0], PREDICT_BLOCK_ROWS):
            block, _ = _forward(net, engine, layers, X[start : start + PREDICT_BLOCK_ROWS])
            logits[start : start + PREDICT_BLOCK_ROWS] = block
    if check_finite and X.shape[0] and not np.isfinite(logits).all():
        row = int(np.argmax(~np.isfinite(logits).all(axis=1)))
        with np.errstate(over="ignore"):
            reach = np.abs(X[row]) * np.abs(coefs[0]).max(axis=1)
        column = int(np.argmax(np.nan_to_num(reach, nan=np.inf)))
        raise FeatureOverflowError(row, column, float(X[row, column]))
    return logits


def loss_and_grad(
    net: Network,
    xp: Any,
    theta: Any,
    X: Any,
    target: Any,
    row_scale: Any,
    *,
    penalty: Any,
    alpha: float,
    grad_out: Any = None,
) -> tuple[float, Any]:
    r"""Objective and its gradient with respect to ``theta``, by manual backprop.

    .. math::

        f(\theta) = \sum_i s_i \, \mathrm{CE}(\mathrm{softmax}(z_i), t_i)
                    + \tfrac{\alpha}{2} \sum_j r_j \theta_j^2

    Parameters
    ----------
    net : Network
    xp : engine
    theta : array of shape (n_params,), engine dtype
    X : array of shape (N, n_features)
    target : array of shape (N,) int64 labels or (N, K) probabilities
    row_scale : array of shape (N,), ``xp.scale_dtype``
        ``s_i``: the row's sample weight divided by the total weight, so the
        data term is a weighted mean.
    penalty : array of shape (n_params,)
        ``r`` from :meth:`Network.penalty_weights`.
    alpha : float
        The penalty coefficient already divided by the total weight; 0 leaves
        the penalty out (Adam adds it in its fused update instead).
    grad_out : array of shape (n_params,), engine dtype, optional
        Receives the gradient (every entry is overwritten); a minibatch loop
        passes the same buffer at every step instead of allocating one.

    Returns
    -------
    loss : float
    grad : array of shape (n_params,), engine dtype
        ``grad_out`` when given.
    """
    layers = net.unpack(theta)
    logits, inputs = _forward(net, xp, layers, X)
    # One fused pass: per-row loss and s_i * dCE_i/dlogits, the latter written
    # over the logits (not needed after this point).
    row_loss, delta = xp.cross_entropy_and_grad_(logits, target, row_scale)  # (N,), (N, K)
    loss = xp.dot(row_loss, row_scale)
    grad = xp.zeros(theta.shape) if grad_out is None else grad_out
    grads = net.unpack(grad)
    for layer in range(len(layers) - 1, -1, -1):
        a = inputs[layer]
        gw, gb = grads[layer]
        xp.matmul(a.T, delta, out=gw)  # (fan_in, fan_out), straight into grad
        xp.sum_rows(delta, out=gb)
        if layer:
            delta = delta @ layers[layer][0].T  # (N, fan_in), fresh
            delta *= _activation_grad(a, net.activation)
    if alpha:
        shrink = penalty * theta  # r * theta, (n_params,)
        loss += 0.5 * alpha * xp.dot(shrink, theta)
        shrink *= alpha
        grad += shrink
    return loss, grad


# --------------------------------------------------------------------------- saved networks

#: Kinds of label dtypes a model file may name: bool, integers, floats and text, which JSON holds exactly.
_LABEL_KINDS = "biufU"


def labels_to_json(labels: Any) -> dict[str, Any]:
    """Class labels as JSON: the values (Python scalars), whether the array was ``object``, and
    otherwise its dtype (so that ``uint8`` labels come back ``uint8``, not NumPy's default ``int64``)."""
    labels = np.asarray(labels)
    values = labels.tolist()
    if labels.ndim != 1 or not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise TypeError(f"class labels must be str, int, float or bool to be saved, got {labels.dtype}")
    record: dict[str, Any] = {"values": values, "object": labels.dtype == object}
    if labels.dtype != object:
        record["dtype"] = labels.dtype.str
    return record


def labels_from_json(record: Any, key: str = "classes") -> np.ndarray:
    """The labels :func:`labels_to_json` wrote: a 1-D array that holds exactly the recorded values.

    Raises ValueError (naming ``key``) for anything else: values that are not
    a flat list of str, int, float or bool; a dtype that is not one of those;
    or values that the dtype would change (``["a", 1, 2]`` read as text, 300
    as ``uint8``). Records written before the dtype was saved get NumPy's
    choice for the values, as they did then.
    """
    if not isinstance(record, dict):
        raise ValueError(f"{key} must be a record of label values, got {_shown(record)}")
    values = record["values"]
    if not isinstance(values, list) or not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ValueError(f"{key} must be a flat list of str, int, float or bool labels, got {_shown(values)}")
    if record.get("object"):
        labels = np.empty(len(values), dtype=object)
        labels[:] = values
        return labels
    dtype = record.get("dtype")
    try:
        if dtype is not None and (not isinstance(dtype, str) or np.dtype(dtype).kind not in _LABEL_KINDS):
            raise TypeError
        labels = np.asarray(values, dtype=None if dtype is None else np.dtype(dtype))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key} {_shown(values)} cannot be read as labels of dtype {dtype!r}") from None
    if labels.tolist() != values:
        raise ValueError(f"{key} {_shown(values)} would change when read as {labels.dtype} labels "
                         f"(to {_shown(labels.tolist())})")
    return labels


def check_class_labels(classes: np.ndarray, key: str = "classes") -> np.ndarray:
    """``classes`` as a fitted classifier holds them: 2 or more, distinct and sorted (``np.unique``'s
    order, on which ``predict`` and ``score`` rely); else ValueError naming ``key``."""
    if classes.ndim != 1 or classes.size < 2:
        raise ValueError(f"{key} must hold at least 2 labels, got {_shown(classes.tolist())}")
    try:
        increasing = bool(np.all(classes[:-1] < classes[1:]))
    except TypeError:
        raise ValueError(f"{key} {_shown(classes.tolist())} mixes labels that cannot be ordered") from None
    if not increasing:
        values = classes.tolist()
        problem = "are not distinct" if len(set(values)) < len(values) else "are not sorted"
        raise ValueError(f"{key} {_shown(values)} {problem}: a fitted model's classes are distinct and sorted")
    return classes


@dataclass(frozen=True)
class SavedNetwork:
    """The network of a saved :class:`~softmaxkit.SoftmaxClassifier`, checked by :func:`read_saved_network`.

    ``coefs[l]`` has shape ``(fan_in, fan_out)``, float64, as ``coefs_``.
    """

    classes: np.ndarray
    n_features: int
    feature_names: list[str] | None
    target_name: str | None
    activation: str
    hidden_layer_sizes: tuple[int, ...]
    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]


#: The arrays a saved SoftmaxClassifier holds besides its layers (``coef_i``, ``intercept_i``).
SAVED_CURVES = ("loss_curve", "validation_loss_curve", "alpha_path", "alpha_path_loss")
#: The metadata entries a saved SoftmaxClassifier holds (``params``: its constructor's), as a record of Nones:
#: what the CLI, which reads a model without building the estimator (and importing scikit-learn), checks a
#: file's entries against (:func:`softmaxkit.io.refuse_unknown_meta`), as ``softmaxkit.load`` does with the
#: estimator's own. tests/test_io_known_entries.py keeps it equal to what ``SoftmaxClassifier._get_state`` writes.
SAVED_META: dict[str, Any] = {
    **dict.fromkeys(["alpha", "alpha_at_bound", "best_validation_loss", "classes", "classes_param", "cv_unsaved",
                     "feature_names_in", "n_features_in", "n_iter", "n_layers", "solver", "target_name"]),
    "params": dict.fromkeys(["activation", "alpha", "batch_size", "count_targets", "cv", "device", "dtype",
                             "early_stopping", "hidden_layer_sizes", "learning_rate", "max_iter", "n_iter_no_change",
                             "random_state", "solver", "standardize", "tol", "validation_fraction", "verbose",
                             "weights_are_counts"]),
}


def read_saved_network(meta: Any, arrays: dict[str, np.ndarray]) -> SavedNetwork:
    """Read and check the network of a saved SoftmaxClassifier's ``(meta, arrays)``.

    Refuses, with a ValueError that names the key and its value, any state
    that this version would not compute exactly as the saved model did: an
    unknown activation (a later version's, or a typo), non-finite or
    non-real weights, a weight or bias whose shape does not follow from
    ``n_features_in``, ``hidden_layer_sizes`` and the classes, a layer array
    beyond ``n_layers``, classes that are not 2 or more distinct sorted
    labels (or that their dtype would change), feature names that are not
    one distinct string per feature, a target name that is not a string.
    Raises KeyError for a missing entry.
    """
    if not isinstance(meta, dict) or not isinstance(meta["params"], dict):
        raise ValueError("the state must be a record with a params record")
    params = meta["params"]
    activation = params["activation"]
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"params.activation is {_shown(activation)}, not one of {ACTIVATIONS}")
    hidden = params["hidden_layer_sizes"]
    if not isinstance(hidden, list) or not all(_is_int(h) and h >= 1 for h in hidden):
        raise ValueError(f"params.hidden_layer_sizes must be a list of positive integers, got {_shown(hidden)}")
    classes = check_class_labels(labels_from_json(meta["classes"]))
    n_features, n_layers = meta["n_features_in"], meta["n_layers"]
    if not (_is_int(n_features) and n_features >= 1):
        raise ValueError(f"n_features_in must be a positive integer, got {_shown(n_features)}")
    if not _is_int(n_layers) or n_layers != len(hidden) + 1:
        raise ValueError(f"n_layers is {_shown(n_layers)}, but hidden_layer_sizes {hidden} make {len(hidden) + 1}")
    sizes = (int(n_features), *(int(h) for h in hidden), int(classes.size))
    shapes = {}
    for i in range(n_layers):
        shapes[f"coef_{i}"] = (sizes[i], sizes[i + 1])
        shapes[f"intercept_{i}"] = (sizes[i + 1],)
    stray = sorted(k for k in arrays if re.fullmatch(r"(coef|intercept)_\d+", k) and k not in shapes)
    if stray:
        raise ValueError(f"{stray[0]} is not a layer of a network of n_layers={n_layers}")
    # The CLI reads models here without softmaxkit.load (whose check covers every kind): an array no
    # version saves (mean_, added by hand or by a newer softmaxkit) was ignored (audit AG).
    unknown = sorted(set(arrays) - set(shapes) - set(SAVED_CURVES))
    if unknown:
        raise ValueError(f"unknown array{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}, which "
                         "this softmaxkit does not read (a file of a newer softmaxkit, or an edited one)")
    layers = {}
    for key, shape in shapes.items():
        layer = arrays[key]
        if not isinstance(layer, np.ndarray) or layer.dtype.kind not in "iuf":
            raise ValueError(f"{key} has dtype {getattr(layer, 'dtype', type(layer).__name__)}, not a real number type")
        if layer.shape != shape:
            raise ValueError(f"{key} has shape {layer.shape}, expected {shape} (from n_features_in "
                             f"{sizes[0]}, hidden_layer_sizes {hidden} and {classes.size} classes)")
        layer = np.asarray(layer, dtype=np.float64)
        if not np.all(np.isfinite(layer)):
            raise ValueError(f"{key} holds non-finite values (NaN or inf)")
        layers[key] = layer
    names = meta.get("feature_names_in") or None  # written as None (or [] by older versions) without names
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"feature_names_in must be a list of strings, got {_shown(names)}")
        if len(names) != n_features:
            raise ValueError(f"feature_names_in has {len(names)} names for {n_features} features")
        if len(set(names)) < len(names):
            seen: set[str] = set()
            twice = next(n for n in names if n in seen or seen.add(n))
            raise ValueError(f"feature_names_in names {twice!r} more than once")
    target_name = meta.get("target_name")
    if target_name is not None and not isinstance(target_name, str):
        raise ValueError(f"target_name must be a string or null, got {_shown(target_name)}")
    return SavedNetwork(
        classes=classes, n_features=int(n_features), feature_names=names, target_name=target_name,
        activation=activation, hidden_layer_sizes=tuple(int(h) for h in hidden),
        coefs=[layers[f"coef_{i}"] for i in range(n_layers)],
        intercepts=[layers[f"intercept_{i}"] for i in range(n_layers)],
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _shown(value: Any, limit: int = 80) -> str:
    """``repr`` of a value from a file, cut to ``limit`` characters (a file can hold anything)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
