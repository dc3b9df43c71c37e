"""torch.nn modules that own parameters: the linear-chain CRF and structured SVM layers."""

from .chain import LinearChain
from .crf import CRF
from .ssvm import StructuredSVM

__all__ = ["CRF", "LinearChain", "StructuredSVM"]
