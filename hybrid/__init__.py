"""hybrid: deep + structured sequence models on PyTorch.

A deep network scores the pieces; a structured model chooses the whole.

The names below load on first use, so that ``import hybrid.deploy`` (which runs exported
models with onnxruntime alone) never imports torch.
"""

from importlib import import_module

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
    raise AttributeError(f"module 'hybrid' has no attribute {name!r}")
