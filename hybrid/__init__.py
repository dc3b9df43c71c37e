"""hybrid: deep + structured sequence models on PyTorch.

A deep network scores the pieces; a structured model chooses the whole.

The names below load on first use, so that ``import hybrid.deploy`` (which runs exported
models with onnxruntime alone) never imports torch.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_names

__all__ = ["CRF", "ChainConstraints", "StructuredSVM", "allowed_transitions"]
__version__ = "0.1.0"

_HOMES = {
    "CRF": "hybrid.nn",
    "StructuredSVM": "hybrid.nn",
    "ChainConstraints": "hybrid.structured",
    "allowed_transitions": "hybrid.tagging",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)

if TYPE_CHECKING:
    from .nn import CRF, StructuredSVM
    from .structured import ChainConstraints
    from .tagging import allowed_transitions
