"""hybrid: deep + structured sequence models on PyTorch.

A deep network scores the pieces; a structured model chooses the whole.

The names below load on first use, so that ``import hybrid.deploy`` (which runs exported
models with onnxruntime alone) never imports torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = ["CRF", "ChainConstraints", "StructuredSVM", "allowed_transitions"]
__version__ = "0.1.0"

_HOMES = {
    "CRF": "hybrid.nn",
    "StructuredSVM": "hybrid.nn",
    "ChainConstraints": "hybrid.structured",
    "allowed_transitions": "hybrid.tagging",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    try:  # a subpackage or module: hybrid.nn, hybrid.structured, ...
        return import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


if TYPE_CHECKING:
    from .nn import CRF, StructuredSVM
    from .structured import ChainConstraints
    from .tagging import allowed_transitions
