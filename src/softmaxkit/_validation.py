"""Input checks with precise messages.

Every public entry point validates here, before any kernel runs, so a bad input
fails with a ``ValueError`` or ``TypeError`` that names the argument, what was
expected and what arrived, and never with a traceback from deep inside NumPy.
The checks are array-library agnostic where they can be (they read ``.shape``
and ``.dtype``) so the torch path reuses them.
"""

from __future__ import annotations

import functools
import numbers
import operator
import sys
from typing import Any

import numpy as np

from softmaxkit._options import REDUCTIONS, CrossEntropyOptions

#: Floating dtypes accepted for logits (torch's names map onto these by ``str``).
_FLOAT_KINDS = "f"

#: The accepted floating dtypes, as messages list them.
_FLOAT_LIST = "float16, bfloat16, float32, float64 or longdouble"


def dtype_name(dtype: Any) -> str:
    """A short dtype name that reads the same for NumPy and torch dtypes."""
    return str(dtype).replace("torch.", "")


#: The floating dtypes the library computes with, by :func:`dtype_name`: float16, bfloat16, float32,
#: float64 and NumPy's ``longdouble`` (float96 or float128, computed in float64). A prefix test on
#: "float" also let ml_dtypes'/torch's float8, float6 and float4 through, whose results came back
#: rounded to 8 bits or fewer (a float4 loss of 3 for 2.574, audit).
SUPPORTED_FLOAT_NAMES = frozenset(
    {"float16", "bfloat16", "float32", "float64", np.dtype(np.longdouble).name, "half", "double"}
)


#: The NumPy built-in floats of :data:`SUPPORTED_FLOAT_NAMES`; not ``dtype.kind == "f"``, which
#: ml_dtypes' float8_e5m2 also has.
_NUMPY_FLOATS = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64, np.longdouble))


def is_floating_dtype(dtype: Any) -> bool:
    """True for the supported floating dtypes (:data:`SUPPORTED_FLOAT_NAMES`) in NumPy or torch."""
    return dtype_name(dtype) in SUPPORTED_FLOAT_NAMES


def is_integer_dtype(dtype: Any) -> bool:
    name = dtype_name(dtype)
    return name.startswith(("int", "uint", "long", "short")) or name == "bool"


def check_floating(x: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating dtype."""
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype in _NUMPY_FLOATS:
        return  # the common NumPy case, without parsing the dtype's name
    if isinstance(dtype, np.dtype) and not dtype.isnative and dtype.newbyteorder("=") in _NUMPY_FLOATS:
        # inputs reach here converted (as_numpy); an out= buffer cannot be: the kernels write native order
        native = dtype.newbyteorder("=").name
        raise TypeError(
            f"{name} has non-native byte order ({dtype.str}); it must be a native {native} array "
            f"({name}.astype(np.{native}) for an input, np.empty(shape, np.{native}) for an out= buffer)"
        )
    if dtype is None or not is_floating_dtype(dtype):
        got = dtype_name(dtype) if dtype is not None else type(x).__name__
        hint = ""
        if dtype is not None and (got.startswith("float") or is_integer_dtype(dtype)):
            # float8/float6/float4 are too narrow to compute in; integers are refused, not promoted
            # (scipy promotes them to float64; a torch user gets an error there too)
            cast = f"{name}.float()" if type(x).__module__.startswith("torch") else f"{name}.astype(np.float32)"
            what = "is not supported" if got.startswith("float") else "holds integers"
            hint = f"; {got} {what}, cast it to float32 first ({cast})"
        raise TypeError(f"{name} must have a floating dtype ({_FLOAT_LIST}), got {got}{hint}")


def check_floating_dtype(dtype: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``dtype`` (an argument such as ``dtype=``, not an array's) is floating.

    ``softmax(x, dtype=int)`` cast ``x`` first and then blamed ``x`` for the integer dtype (audit).
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in _NUMPY_FLOATS:
        got = resolved.name if resolved is not None else repr(dtype)
        raise TypeError(f"{name} must be a floating dtype ({_FLOAT_LIST}), got {got}")


def check_grad_out_dtype(
    grad_out: Any, logits: Any, *, wider: Any = None, name: str = "grad_out", of: str = "the logits'"
) -> None:
    """Raise ``TypeError`` unless an output buffer has its input's dtype (NumPy or torch).

    The rule for every NumPy ``out=`` / ``grad_out=`` buffer: the result is written in the input's
    dtype; copying it into another one cast silently: an int64 buffer received all zeros and a float16
    one a rounded gradient, and a float16 ``out=`` rounded a float32 softmax (audit; torch's ``out=``
    refuses it too). ``wider``: a function ``(logits dtype, buffer dtype) -> bool`` saying the buffer's
    floating dtype holds every value of the logits' exactly, which is then accepted too (the torch op
    copies into it: bf16 logits into a float32 master-gradient buffer lose nothing; the NumPy kernels
    write the buffer directly). ``name`` and ``of`` name the buffer and the input in the message.
    """
    if grad_out.dtype == logits.dtype or (wider is not None and wider(logits.dtype, grad_out.dtype)):
        return
    also = " or a wider floating dtype" if wider is not None else ""
    raise TypeError(
        f"{name} must have {of} dtype {dtype_name(logits.dtype)}{also}, got {dtype_name(grad_out.dtype)}"
    )


def check_cv_param(cv: Any, *, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``cv`` is None, an int >= 2, a splitter or an iterable of splits.

    The estimators' common check, made before any fold is cut (scikit-learn's own, ``KFold``'s
    "n_splits=1", names neither ``cv`` nor the estimator); ``hint`` ends the message.
    """
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        ok = cv >= 2
    else:
        ok = (cv is None or hasattr(cv, "split") or hasattr(cv, "__iter__")) and not isinstance(cv, (str, bool))
    if not ok:
        raise ValueError(
            f"cv must be None, an int >= 2, a splitter or an iterable of splits, got {cv!r}{hint}"
        )


def normalize_axis(
    axis: Any, ndim: int, name: str = "axis", *, allow_scalar: bool = False, of: str = "logits"
) -> int:
    """Return ``axis`` as a non-negative int, with a clear error when out of range.

    With ``allow_scalar`` a 0-dim input takes ``axis`` in {-1, 0} (as torch's
    softmax does: a scalar is one class) and the result is 0. ``of`` names the
    array argument in the message (``x`` for softmax, ``logits`` for the losses).
    """
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        hint = ""
        if axis is None or isinstance(axis, tuple):
            # scipy.special's softmax/log_softmax/logsumexp default to axis=None: all elements as one set
            hint = (f"; {name}=None (scipy.special's default: all elements at once) and tuples are not supported: "
                    f"pass {name}=-1 for each row's classes, or x.ravel() for all elements")
        raise TypeError(f"{name} must be an int, got {axis!r}{hint}")
    if ndim == 0:
        if allow_scalar and axis in (-1, 0):
            return 0
        if allow_scalar:
            raise ValueError(f"{name}={axis} is out of range for a 0-dim input (valid: -1 or 0)")
        raise ValueError(f"{of} must have at least 1 dimension (the class axis), got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for {of} with {ndim} dimension(s)")
    return int(axis) % ndim


def check_reduction(reduction: Any) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_unit_interval(value: Any, name: str) -> float:
    """A float in [0, 1] (label smoothing)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a float in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_non_negative(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a non-negative float, got {value!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite value >= 0, got {value!r}")
    return value


def check_positive_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive float or None, got {value!r}") from None
    if not value > 0.0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite value > 0 or None, got {value!r}")
    return value


#: float32's largest value: the softcap is computed in the logits' compute dtype (float32 for
#: float32 and 16-bit logits), where a larger cap is inf and ``inf * tanh(x / inf)`` is NaN.
_LARGEST_SOFTCAP = float(np.finfo(np.float32).max)


def check_softcap(value: Any) -> float | None:
    """``softcap``: None or a finite value in ``(0, 3.4e38]`` (float32's largest).

    A cap past float32's range would give NaN losses on float32 logits, and
    changes no representable float32 logit anyway.
    """
    value = check_positive_or_none(value, "softcap")
    if value is not None and value > _LARGEST_SOFTCAP:
        raise ValueError(
            f"softcap must be at most {_LARGEST_SOFTCAP:.4g} (float32's largest value; the cap is computed in "
            f"the logits' dtype), got {value!r}; a cap that large changes no float32 logit: pass softcap=None"
        )
    return value


def check_broadcasts_to(arg_shape: tuple[int, ...], shape: tuple[int, ...], name: str) -> None:
    """Refuse ``name`` unless its shape broadcasts *to* ``shape`` (the result keeps ``shape``).

    Broadcasting *with* ``shape`` is not enough: a ``(2, 4, 3)`` weight on
    ``(4, 3)`` logits made a ``(2, 4, 3)`` loss and halved the mean (audit),
    where torch refuses the in-place broadcast.
    """
    arg_shape, shape = tuple(arg_shape), tuple(shape)
    try:
        ok = np.broadcast_shapes(arg_shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {arg_shape} cannot broadcast to {shape} (the logits' shape)")


def check_temperature(temperature: Any, *, dtype: Any = None) -> float:
    """Return ``temperature`` as a float, refusing non-positive, infinite and too small values.

    Parameters
    ----------
    temperature : float
        The softmax temperature ``T``; the logits are scaled by ``1 / T``.
    dtype : NumPy or torch dtype, optional, keyword-only
        The compute dtype (float32 or float64). When given, ``T`` must keep ``1 / T`` finite in it:
        a larger ``1 / T`` (float32 ``T=1e-39``) overflowed to inf and turned finite logits into
        NaN rows (audit).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``temperature`` is not a number.
    ValueError
        ``temperature`` is not finite and > 0, or ``1 / temperature`` overflows ``dtype``.
    """
    # float() also reads "2" and True (as 2.0 and 1.0): a config string or a flag passed by mistake
    if isinstance(temperature, (str, bytes, bool, np.bool_)):
        raise TypeError(f"temperature must be a positive float, got {temperature!r}")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a positive float, got {temperature!r}") from None
    if not temperature > 0.0 or temperature == float("inf"):
        raise ValueError(f"temperature must be a finite value > 0, got {temperature!r}")
    if dtype is not None:
        if type(dtype).__module__.startswith("torch"):  # bfloat16 has no NumPy dtype: torch's finfo
            import torch

            name, largest = dtype_name(dtype), float(torch.finfo(dtype).max)
        else:  # a NumPy dtype or scalar type (np.float32)
            name = np.dtype(dtype).name
            largest = float(np.finfo(np.dtype(dtype)).max)
        # 1 / temperature can overflow float64 itself (T = 1e-310): compare T * max with 1 instead
        if temperature * largest < 1.0:
            smallest = 1.0 / largest
            if smallest * largest < 1.0:  # float64's 1/max is subnormal, rounded below the bound
                smallest = float(np.nextafter(smallest, 1.0))
            raise ValueError(
                f"temperature={temperature!r} is too small: 1/temperature overflows {name}, the compute "
                f"dtype; the smallest allowed is {smallest!r}"
            )
    return temperature


def check_class_weight(weight: Any, n_classes: int, name: str = "weight") -> np.ndarray | None:
    """Validate class weights: shape (C,), finite.

    Negative weights are accepted, as torch accepts them (its own tests draw
    class weights from ``randn``). Returns a float64 NumPy copy (or None);
    callers cast to their compute dtype.
    """
    if weight is None:
        return None
    w = to_numpy(weight, name)
    if w.ndim != 1 or w.shape[0] != n_classes:
        raise ValueError(
            f"{name} must have shape ({n_classes},) (one entry per class), got {tuple(w.shape)}"
        )
    if not (w.dtype.kind in "fiu"):
        raise TypeError(f"{name} must be numeric, got dtype {w.dtype}")
    w = w.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name} must be finite; {name}[{i}] = {float(w[i])!r}")
    return w


def refuse_masked(x: Any, name: str | None) -> None:
    """``ValueError`` if ``x`` is a NumPy masked array with a masked entry.

    ``np.asarray`` drops the mask and keeps the values under it, so a masked weight, label or score
    was used as if unmasked (audit: log-loss 1.968 with a masked ``sample_weight``, where scikit-learn
    drops the masked rows and gives 1.289). Refused rather than honoured: every entry point would have
    to carry the mask to its reductions, and scipy and scikit-learn do not agree on what it means for
    logits and probabilities (they ignore it there). A masked array with no masked entry is its data.
    """
    # A masked array exists only once numpy.ma is imported: asking np.ma would import it (7 ms) on every
    # process's first call, the CLI's small commands included.
    ma = sys.modules.get("numpy.ma")
    if ma is None or not isinstance(x, ma.MaskedArray) or not ma.is_masked(x):
        return
    arg = name or "An input"
    mask = ma.getmaskarray(x)
    n = int(np.count_nonzero(mask))
    first = _position(int(np.argmax(mask.reshape(-1))), mask.shape)
    var = name or "x"
    rows = (f"{var}.filled(0) gives the masked rows weight 0" if name == "sample_weight"
            else f"{var}.filled(value) fills them, or keep the rows and give them sample_weight 0")
    raise ValueError(
        f"{arg} is a masked array with {n} masked entr{'y' if n == 1 else 'ies'} (the first at {first}); "
        f"softmaxkit does not honour masks (NumPy's conversion would read the values under them): "
        f"pass {var}.compressed() (and drop the same rows of the other arguments), or {rows}"
    )


def as_numpy(x: Any, name: str | None = None) -> np.ndarray:
    """``np.asarray(x)`` for an input that is not a torch tensor, where NumPy's reading is not the value.

    The one conversion every NumPy entry point shares (through :func:`to_numpy` and
    :func:`softmaxkit._arrays.as_float_array`): a masked array with a masked entry is refused
    (:func:`refuse_masked`, naming ``name``), and a non-native byte order (``'>f8'`` from a FITS
    file or ``np.load``) is converted to the native one, which the kernels and the dtype checks
    expect (scipy and scikit-learn compute on it; it was refused as "not a floating dtype").
    """
    refuse_masked(x, name)
    arr = np.asarray(x)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def to_numpy(x: Any, name: str | None = None) -> np.ndarray:
    """A NumPy view of ``x`` (array, list, or CPU torch tensor) for validation.

    ``name``: the argument's name, for the message refusing a masked array (:func:`as_numpy`).
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu()
        if dtype_name(x.dtype) == "bfloat16":
            x = x.float()
        return x.numpy()
    return as_numpy(x, name)


def check_sample_weight(sample_weight: Any, n_rows: int, *, allow_scalar: bool = False) -> np.ndarray:
    """Per-row weights as a float64 ``(n_rows,)`` array; ones if ``sample_weight`` is None.

    The one check every entry point shares (metrics, calibrators, the classifier): numeric,
    finite, non-negative, a positive sum that does not overflow (each weight finite, a sum
    of inf makes every weighted mean NaN).

    Parameters
    ----------
    sample_weight : array-like of shape (n_rows,), torch tensor, scalar, or None
    n_rows : int
    allow_scalar : bool, default=False, keyword-only
        Broadcast a scalar to every row, as scikit-learn's estimators do.
    """
    if sample_weight is None:
        return np.ones(n_rows)
    w = to_numpy(sample_weight, "sample_weight")
    if w.dtype.kind in "USO":
        _refuse_text_weights(w)
    if w.dtype == object:
        # a pandas object Series of numbers, as scikit-learn accepts it (text was refused above)
        try:
            w = w.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if w.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if allow_scalar and w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.shape != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"sample_weight must be finite and non-negative; sample_weight[{i}] = {float(w[i])!r}")
    total = np.sum(w)
    if n_rows and not total > 0:
        raise ValueError("sample_weight sums to 0 (every weight is zero): at least one must be positive")
    if not np.isfinite(total):
        raise ValueError(f"sample_weight sums to {total} (overflow): scale the weights down; only their ratios count")
    return w


def _refuse_text_weights(w: np.ndarray) -> None:
    """``TypeError`` naming the first text weight of ``w`` (a ``'<U'``/``'S'`` array, or an object array
    holding a ``str`` or ``bytes``); an object array of numbers passes.

    ``astype(float64)`` parses numeric text, so an object or pandas ``string`` Series of ``"2"`` was
    read as the weight 2 where the same values in a NumPy ``'<U'`` array were refused.
    """
    flat = w.reshape(-1)
    if w.dtype == object:
        i = next((i for i, v in enumerate(flat) if isinstance(v, (str, bytes))), None)
        if i is None:
            return
    elif flat.size:
        i = 0
    else:
        return
    text = flat[i : i + 1].tolist()[0]  # a Python str or bytes: its repr without NumPy's np.str_(...)
    raise TypeError(
        f"sample_weight must be numeric, got text ({text!r} at position [{i}], dtype {w.dtype}); weights read "
        "as text (a CSV column) must be converted first, e.g. np.asarray(sample_weight, dtype=float)"
    )


def label_range_hint(values: np.ndarray, n_classes: int, name: str) -> str:
    """What out-of-range class indices ``values`` most likely are, as a ``"; ..."`` tail for the message
    naming one of them, or ``""``.

    Labels 1..K reaching K (``n_classes``) are 1-based class values, not column indices; labels -1/1
    against two columns are a binary problem's -1/+1 coding (an SVM's, libsvm files'), whose -1 was
    only said to be out of range (audit).
    """
    if not values.size:
        return ""
    lo, hi = values.min(), values.max()
    if lo == 1 and hi == n_classes and n_classes > 1:
        return (f"; labels 1..{n_classes} look 1-based (class values, not column indices): subtract 1, or map "
                f"them with np.searchsorted(classes_, {name})")
    if n_classes == 2 and lo == -1 and np.all((values == -1) | (values == 1)):
        return (f"; labels -1/1 look like a binary problem's -1/+1 coding (not column indices): map them to "
                f"0/1 with ({name} + 1) // 2")
    return ""


def _position(flat_index: int, shape: tuple[int, ...]) -> str:
    if len(shape) <= 1:
        return f"[{flat_index}]"
    return str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


def check_hard_target(
    target: Any, expected_shape: tuple[int, ...], n_classes: int, ignore_index: int
) -> None:
    """Check integer class targets: shape and range.

    The message names the first offending value and its position in ``target``.
    """
    shape = tuple(target.shape)
    if shape != tuple(expected_shape):
        raise ValueError(
            "target of class indices must have the logits' shape without the class axis: "
            f"expected {tuple(expected_shape)}, got {shape}"
        )
    t = to_numpy(target, "target").reshape(-1)
    if t.size == 0:
        return
    # Two reductions settle the usual all-valid case; the element-wise scan
    # below (five passes and temporaries) runs only to find the culprit, or
    # when ignored targets put values outside 0..C-1.
    if t.min() >= 0 and t.max() < n_classes:
        return
    bad = (t < 0) | (t >= n_classes)
    if ignore_index is not None:
        bad &= t != ignore_index
    if bad.any():
        i = int(np.argmax(bad))
        counted = t if ignore_index is None else t[t != ignore_index]
        raise ValueError(
            f"target contains class index {int(t[i])} at position {_position(i, shape)}, "
            f"but logits have {n_classes} classes (valid: 0..{n_classes - 1}"
            f"{f' or ignore_index={ignore_index}' if ignore_index is not None else ''})"
            f"{label_range_hint(counted, n_classes, 'target')}"
        )


def check_soft_target(target: Any, logits_shape: tuple[int, ...]) -> None:
    """Check probability targets: the logits' shape.

    Values are not required to be a distribution: torch computes
    ``-sum_c w_c t_c log p_c`` for any real ``t`` (negative entries and rows
    that do not sum to 1 included), and so do we.
    """
    shape = tuple(target.shape)
    if shape != tuple(logits_shape):
        # a 1-D float target is almost always class indices read as floats (a CSV column, np.zeros(n))
        hint = (
            "; a 1-D floating target: class indices must be integers (y.astype(int))"
            if len(shape) == 1 and len(logits_shape) >= 2 else ""
        )
        raise ValueError(
            "target of probabilities must have the same shape as logits: "
            f"expected {tuple(logits_shape)}, got {shape}{hint}"
        )


def check_soft_ignore_index(ignore_index: int) -> None:
    """torch's rule: probability targets take no ``ignore_index`` (a negative
    one, such as the default -100, can never match a class and is accepted)."""
    if ignore_index >= 0:
        raise ValueError(
            f"ignore_index={ignore_index} is not supported with probability (floating) targets; "
            "leave it at its default -100 (torch raises here too)"
        )


def target_kind(target: Any, logits_shape: tuple[int, ...], axis: int, ignore_index: int) -> bool:
    """Check ``target``'s dtype and shape (not its values); True for probabilities.

    Reads only ``.dtype`` and ``.shape``, so it runs on tensors that have no
    values yet (``torch.compile``'s fake tensors, ``vmap``'s batched ones).
    """
    dtype = target.dtype
    if is_integer_dtype(dtype) and dtype_name(dtype) != "bool":
        batch_shape = tuple(s for i, s in enumerate(logits_shape) if i != axis)
        if tuple(target.shape) != batch_shape:
            raise ValueError(
                "target of class indices must have the logits' shape without the class axis: "
                f"expected {batch_shape}, got {tuple(target.shape)}"
            )
        return False
    if is_floating_dtype(dtype):
        check_soft_target(target, logits_shape)
        check_soft_ignore_index(ignore_index)
        return True
    raise TypeError(
        f"target must hold integer class indices or floating probabilities, got dtype {dtype_name(dtype)}"
    )


def prepare_target(target: Any, logits_shape: tuple[int, ...], axis: int, ignore_index: int):
    """Validate ``target`` against the logits and classify it as hard or soft.

    Returns ``(target_array, is_soft)`` with ``target_array`` a NumPy array
    (a view for CPU tensors). Integer targets must have the logits' shape
    without ``axis`` and hold class indices in ``0..C-1`` (or
    ``ignore_index``); floating targets the logits' shape and finite values,
    with ``ignore_index < 0``.
    """
    t = to_numpy(target, "target")
    # dtype.kind, not is_integer_dtype / is_floating_dtype: ``t`` is NumPy
    # here, and those parse the dtype's name on every call.
    if t.dtype.kind in "iu":
        batch_shape = tuple(s for i, s in enumerate(logits_shape) if i != axis)
        check_hard_target(t, batch_shape, logits_shape[axis], ignore_index)
        return t, False
    if t.dtype.kind == "f":
        check_soft_target(t, logits_shape)
        check_soft_ignore_index(ignore_index)
        if not np.all(np.isfinite(t)):
            bad = int(np.argmax(~np.isfinite(t).reshape(-1)))
            raise ValueError(
                f"target probabilities must be finite; found {t.reshape(-1)[bad]!r} "
                f"at flat position {bad}"
            )
        return t, True
    raise TypeError(
        "target must hold integer class indices or floating probabilities, "
        f"got dtype {t.dtype}"
    )


def check_ignore_index(ignore_index: Any) -> int:
    """``ignore_index`` as an int: whatever Python takes as an index (``operator.index``) but a bool.

    That is torch's rule: a Python or NumPy integer, a 0-dim integer array, and an integer tensor of one
    element of any shape (``torch.tensor(1)``, ``torch.tensor([1])``), which a ported call may pass; they
    were refused with a TypeError (audits CM, R25). bool, floating and multi-element values are refused.
    """
    # array-library agnostic: a bool tensor's dtype name is "bool"
    is_bool = isinstance(ignore_index, (bool, np.bool_)) or dtype_name(getattr(ignore_index, "dtype", "")) == "bool"
    try:
        index = None if is_bool else operator.index(ignore_index)
    except TypeError:
        index = None
    if index is None:
        raise TypeError(f"ignore_index must be an int or a one-element integer tensor, got {ignore_index!r}")
    return int(index)


def cross_entropy_options(
    *,
    n_classes: int,
    weight: Any = None,
    ignore_index: Any = -100,
    reduction: Any = "mean",
    label_smoothing: Any = 0.0,
    z_loss: Any = 0.0,
    softcap: Any = None,
    weight_name: str = "weight",
) -> CrossEntropyOptions:
    """Validate the scalar options and class weights into a :class:`CrossEntropyOptions`.

    ``weight_name`` names the class weights in messages (``class_weight`` in
    the linear losses, where ``weight`` is the projection).
    """
    if (
        weight is None
        and softcap is None
        and type(label_smoothing) is float
        and label_smoothing == 0.0
        and type(z_loss) is float
        and z_loss == 0.0
        and type(ignore_index) is int
        and type(reduction) is str
        and not _tracing()
    ):
        # The common call (defaults, or only ignore_index / reduction set):
        # the bundle is immutable, so it is validated and built once.
        return _plain_options(ignore_index, reduction)
    return CrossEntropyOptions(
        weight=check_class_weight(weight, n_classes, weight_name),
        ignore_index=check_ignore_index(ignore_index),
        reduction=check_reduction(reduction),
        label_smoothing=check_unit_interval(label_smoothing, "label_smoothing"),
        z_loss=check_non_negative(z_loss, "z_loss"),
        softcap=check_softcap(softcap),
    )


def _tracing() -> bool:
    """True while torch.compile traces (it would bypass the cache below, with a warning)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


@functools.lru_cache(maxsize=64)
def _plain_options(ignore_index: int, reduction: str) -> CrossEntropyOptions:
    """The options with every other field at its default (cached; errors are not)."""
    return CrossEntropyOptions(ignore_index=ignore_index, reduction=check_reduction(reduction))
