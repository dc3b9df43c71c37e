"""torch.nn modules that own parameters: token encoders, pooling, the chain CRF and SSVM layers."""

from .chain import LinearChain
from .crf import CRF
from .encoders import BiRNN, CharEncoder, SequenceEncoder
from .lm import NeighbourWordLoss
from .pooling import AttentionPooling, SequenceClassifier
from .ssvm import StructuredSVM

__all__ = [
    "CRF",
    "AttentionPooling",
    "BiRNN",
    "CharEncoder",
    "LinearChain",
    "NeighbourWordLoss",
    "SequenceClassifier",
    "SequenceEncoder",
    "StructuredSVM",
]
