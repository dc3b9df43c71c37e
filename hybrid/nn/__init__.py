"""torch.nn modules that own parameters: encoders, pooling, the chain CRF and SSVM layers,
HMMs and their emission models, memory readers, and decoders to script or export."""

from .chain import LinearChain
from .crf import CRF
from .decoders import CKYDecoder, GraphDecoder, KBestDecoder, MarginalDecoder, ViterbiDecoder
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
    "CKYDecoder",
    "GraphDecoder",
    "KBestDecoder",
    "LinearChain",
    "MarginalDecoder",
    "MemoryNetwork",
    "NeighbourWordLoss",
    "ScaledPosteriors",
    "SequenceClassifier",
    "SequenceEncoder",
    "SequenceReader",
    "StructuredSVM",
    "ViterbiDecoder",
]
