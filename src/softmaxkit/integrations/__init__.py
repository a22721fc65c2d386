"""Integrations with other libraries; each submodule imports its library on first use.

* :mod:`softmaxkit.integrations.transformers` -- ``apply(model)`` gives a
  Hugging Face causal LM the fused linear + cross-entropy loss.

Importing this package imports nothing heavy: ``softmaxkit.integrations.transformers``
is loaded (and ``torch`` / ``transformers`` with it) only when it is named.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("transformers",)

__all__ = list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    # PEP 562: `softmaxkit.integrations.transformers` works after `import softmaxkit`.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
