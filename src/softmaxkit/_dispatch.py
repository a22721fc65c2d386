"""The registry that routes a public op to the library of its input.

:mod:`softmaxkit.functional` and :mod:`softmaxkit.linear` compute on NumPy
arrays themselves; for a ``torch.Tensor`` they ask :func:`torch_op` for the
op of the same name. The torch layer (:mod:`softmaxkit.torch.functional`)
registers its namespace here when it is imported, so the dependency points
downward only: the NumPy layer names the torch layer's module once, as a
string (:data:`PLUGINS`), and never imports from it, and the torch layer
imports the NumPy layer's validation and reduction rule
(:mod:`softmaxkit._validation`, :mod:`softmaxkit._reduction`), not
:mod:`softmaxkit.functional`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

#: Array library -> the module that registers its implementation when imported.
PLUGINS = {"torch": "softmaxkit.torch.functional"}

_REGISTRY: dict[str, Any] = {}


def register(library: str, namespace: Any) -> None:
    """Make ``namespace`` (a module or object with the public op names) serve ``library``'s arrays."""
    _REGISTRY[library] = namespace


def torch_op(name: str) -> Callable[..., Any]:
    """The torch implementation of public op ``name`` (loads the torch layer on first use)."""
    namespace = _REGISTRY.get("torch")
    if namespace is None:
        if _torch_is_compiling():
            # Dynamo cannot trace an import: under fullgraph=True the user would get
            # "Attempted to call function marked as skipped" (importlib), with no hint.
            raise RuntimeError(
                f"softmaxkit.{name} was first called on a tensor inside torch.compile, which "
                "cannot import softmaxkit's torch layer: `import softmaxkit.torch` before compiling"
            )
        importlib.import_module(PLUGINS["torch"])  # registers itself
        namespace = _REGISTRY["torch"]
    return getattr(namespace, name)


def _torch_is_compiling() -> bool:
    """Whether torch.compile (Dynamo) is tracing this call; torch is imported by now."""
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.compiler.is_compiling())
