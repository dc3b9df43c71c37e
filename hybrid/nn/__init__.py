"""torch.nn modules that own parameters: encoders, pooling, the chain CRF and SSVM layers,
memory readers."""

from .chain import LinearChain
from .crf import CRF
from .encoders import BiRNN, CharEncoder, SequenceEncoder
from .lm import NeighbourWordLoss
from .memory import AttentiveReader, MemoryNetwork, SequenceReader
from .pooling import AttentionPooling, SequenceClassifier
from .ssvm import StructuredSVM

__all__ = [
    "CRF",
    "AttentionPooling",
    "AttentiveReader",
    "BiRNN",
    "CharEncoder",
    "LinearChain",
    "MemoryNetwork",
    "NeighbourWordLoss",
    "SequenceClassifier",
    "SequenceEncoder",
    "SequenceReader",
    "StructuredSVM",
]
