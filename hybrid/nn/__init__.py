"""torch.nn modules that own parameters: token encoders, pooling, the chain CRF and SSVM layers."""

from .chain import LinearChain
from .crf import CRF
from .encoders import CharEncoder, SequenceEncoder
from .pooling import AttentionPooling, SequenceClassifier
from .ssvm import StructuredSVM

__all__ = [
    "CRF",
    "AttentionPooling",
    "CharEncoder",
    "LinearChain",
    "SequenceClassifier",
    "SequenceEncoder",
    "StructuredSVM",
]
