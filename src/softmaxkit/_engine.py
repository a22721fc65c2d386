"""Array engines: the few array operations the classifier's math needs, for
NumPy and for torch.

The network math in :mod:`softmaxkit._mlp` and the optimisers in
:mod:`softmaxkit._optim` are written once against an engine object ``xp``.
Everything they need that is spelled differently in NumPy and torch (array
creation, reductions, activations, the fused cross-entropy) lives here;
operators (``@``, ``*``, ``+``, ``.T``, slicing, ``reshape``) are shared by
both libraries and are used directly. That is what keeps one copy of the
math for both engines (issue 6).

Engines
-------
``"cpu"``
    :class:`NumpyEngine`, the default; needs nothing beyond NumPy.
``"cpu:torch"``, ``"cuda"``, ``"cuda:1"``, ...
    :class:`TorchEngine` on that torch device (torch imported on first use).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from softmaxkit import kernels
from softmaxkit._options import CrossEntropyOptions
from softmaxkit.functional import cross_entropy_and_grad

#: The classifier's cross-entropy: plain, per row. Built once (the options
#: object is what the kernels take, already validated).
_PER_ROW = CrossEntropyOptions(reduction="none")


class NumpyEngine:
    """The NumPy engine (``device="cpu"``)."""

    name = "cpu"

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        #: dtype of the per-row loss scales: float64, what the CPU kernels take
        #: (a float32 copy would only be converted back on every call).
        self.scale_dtype = np.dtype(np.float64)
        self._ones_cache: np.ndarray | None = None

    # ---------------------------------------------------------------- data movement
    def host(self, a: Any, dtype: Any = None) -> np.ndarray:
        """``a`` as a C-contiguous NumPy array in ``dtype``; by default floating
        input goes to the engine's dtype and anything else (labels) keeps its own."""
        arr = np.asarray(a)
        if dtype is None:
            dtype = self.dtype if arr.dtype.kind == "f" else arr.dtype
        return np.ascontiguousarray(arr, dtype=dtype)

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        """An engine array (see :meth:`host` for the dtype rule); copy-free where possible."""
        return self.host(a, dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def take(self, a: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Rows ``a[index]`` for a NumPy integer ``index``."""
        return a[index]

    # ---------------------------------------------------------------- math
    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``a @ b``, written into ``out`` if given.

        Transposed views (``a.T``) go to BLAS as a transpose flag, not a copy.
        """
        return np.matmul(a, b, out=out)

    def sum_rows(self, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Column sums, shape (C,): ``ones @ a``, written into ``out`` if given.

        A BLAS matrix-vector product rather than ``a.sum(axis=0)``: NumPy's
        reduction down the rows of a C-ordered array took 14 us on a 200 x 50
        minibatch, the product 4 us (one core, the bias gradients of every step).
        """
        return np.matmul(self._ones(a.shape[0], a.dtype), a, out=out)

    def _ones(self, n: int, dtype: np.dtype) -> np.ndarray:
        """A cached ``np.ones(n, dtype)`` (the minibatch loop asks for the same one every step)."""
        ones = self._ones_cache
        if ones is None or ones.shape[0] != n or ones.dtype != dtype:
            ones = self._ones_cache = np.ones(n, dtype=dtype)
        return ones

    def dot(self, a: np.ndarray, b: np.ndarray) -> float:
        """``sum(a * b)`` of two same-shaped arrays as a Python float (float64 accumulate).

        A ufunc, not BLAS ``dot``: for these short vectors waking BLAS threads
        cost more than the arithmetic (19 ms per call on a busy 2-core machine).
        """
        return float(np.add.reduce(np.multiply(a, b, dtype=np.float64), axis=None))

    # The activations overwrite their argument: the forward pass hands them a
    # fresh pre-activation it never reads again, so no (N, width) temporary
    # is allocated per layer and step.
    def relu_(self, a: np.ndarray) -> np.ndarray:
        """``max(a, 0)``, in place."""
        return np.maximum(a, 0, out=a)

    def tanh_(self, a: np.ndarray) -> np.ndarray:
        """``tanh(a)``, in place."""
        return np.tanh(a, out=a)

    def sqrt(self, a: np.ndarray) -> np.ndarray:
        return np.sqrt(a)

    def cross_entropy_and_grad_(self, logits: Any, target: Any, row_scale: Any) -> tuple[Any, Any]:
        """Per-row loss (N,) and ``row_scale[:, None] * dloss_i/dlogits``, one fused pass.

        The gradient overwrites ``logits`` (returned as the second value).
        ``logits`` must be C-contiguous in the engine dtype, ``target``
        int64 labels or C-contiguous probabilities in that dtype, and
        ``row_scale`` float64: the classifier validated its targets once, at
        fit, so the minibatch loop calls the kernel directly instead of
        :func:`softmaxkit.cross_entropy_and_grad`, whose per-call checks cost
        more than the kernel on a 200 x 50 batch.
        """
        kernel = kernels.select(logits.size)
        row_loss = kernel.cross_entropy_2d(logits, target, _PER_ROW, row_scale=row_scale, grad_out=logits)
        return row_loss, logits


class TorchEngine(NumpyEngine):
    """The torch engine (``device="cpu:torch"`` or a CUDA device).

    Only the operations that torch spells differently are overridden, so the
    two engines cannot drift apart in the shared ones.
    """

    def __init__(self, dtype: np.dtype, device: str) -> None:
        import torch

        super().__init__(dtype)
        self.torch = torch
        self.name = device
        self.device = torch.device("cpu" if device == "cpu:torch" else device)
        self.tdtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
            self.dtype
        ]
        self.scale_dtype = self.dtype

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        torch = self.torch
        if isinstance(a, torch.Tensor):
            return a.to(self.device)
        return torch.as_tensor(self.host(a, dtype), device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy() if isinstance(a, self.torch.Tensor) else np.asarray(a)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.torch.zeros(shape, dtype=self.tdtype, device=self.device)

    def take(self, a: Any, index: np.ndarray) -> Any:
        return a[self.torch.as_tensor(index, device=self.device)]

    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        return self.torch.matmul(a, b, out=out)

    def sum_rows(self, a: Any, out: Any = None) -> Any:
        return self.torch.sum(a, dim=0, out=out)

    def dot(self, a: Any, b: Any) -> float:
        return float(self.torch.dot(a.reshape(-1).double(), b.reshape(-1).double()))

    def relu_(self, a: Any) -> Any:
        return self.torch.relu_(a)

    def tanh_(self, a: Any) -> Any:
        return self.torch.tanh_(a)

    def sqrt(self, a: Any) -> Any:
        return self.torch.sqrt(a)

    def cross_entropy_and_grad_(self, logits: Any, target: Any, row_scale: Any) -> tuple[Any, Any]:
        """As the NumPy engine's, through :func:`softmaxkit.cross_entropy_and_grad`
        (which dispatches tensors to :mod:`softmaxkit.torch`)."""
        return cross_entropy_and_grad(
            logits, target, reduction="none", grad_output=row_scale, grad_out=logits
        )


def make_engine(device: str, dtype: np.dtype) -> NumpyEngine:
    """The engine for ``device`` ("cpu", "cpu:torch", "cuda", "cuda:N").

    Raises
    ------
    ValueError
        Unknown device string.
    ImportError
        A torch device without torch installed.
    RuntimeError
        A CUDA device that torch cannot see.
    """
    if device == "cpu":
        return NumpyEngine(dtype)
    if device == "cpu:torch" or device == "cuda" or str(device).startswith("cuda:"):
        if importlib.util.find_spec("torch") is None:
            raise ImportError(f"device={device!r} needs torch; install softmaxkit[torch] or use device='cpu'")
        engine = TorchEngine(dtype, device)
        if engine.device.type == "cuda" and not engine.torch.cuda.is_available():
            raise RuntimeError(f"device={device!r}: torch reports no CUDA device; use 'cpu' or 'cpu:torch'")
        return engine
    raise ValueError(f"device must be 'cpu', 'cpu:torch', 'cuda' or 'cuda:N', got {device!r}")


__all__ = ["NumpyEngine", "TorchEngine", "make_engine"]
