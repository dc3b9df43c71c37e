"""torch.nn modules that own parameters: encoders, pooling, the chain CRF and SSVM layers,
HMMs and their emission models, memory readers."""

from .chain import LinearChain
from .crf import CRF
from .emissions import CategoricalEmissions, GaussianEmissions, GMMEmissions, ScaledPosteriors
from .encoders import BiRNN, CharEncoder, SequenceEncoder
from .hmm import HMM
from .lm import NeighbourWordLoss
from .memory import AttentiveReader, MemoryNetwork, SequenceReader
from .pooling import AttentionPooling, SequenceClassifier
from .ssvm import StructuredSVM

__all__ = [
    "CRF",
    "HMM",
    "AttentionPooling",
    "AttentiveReader",
    "BiRNN",
    "CategoricalEmissions",
    "CharEncoder",
    "GMMEmissions",
    "GaussianEmissions",
    "LinearChain",
    "MemoryNetwork",
    "NeighbourWordLoss",
    "ScaledPosteriors",
    "SequenceClassifier",
    "SequenceEncoder",
    "SequenceReader",
    "StructuredSVM",
]
