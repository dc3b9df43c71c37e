"""hybrid: deep + structured sequence models on PyTorch.

A deep network scores the pieces; a structured model chooses the whole.
"""

from .nn import CRF, StructuredSVM
from .structured import ChainConstraints
from .tagging import allowed_transitions

__all__ = ["CRF", "ChainConstraints", "StructuredSVM", "allowed_transitions"]
__version__ = "0.1.0"
