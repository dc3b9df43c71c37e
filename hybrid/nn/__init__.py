"""torch.nn modules that own parameters: token encoders, the linear-chain CRF and SSVM layers."""

from .chain import LinearChain
from .crf import CRF
from .encoders import CharEncoder, SequenceEncoder
from .ssvm import StructuredSVM

__all__ = ["CRF", "CharEncoder", "LinearChain", "SequenceEncoder", "StructuredSVM"]
