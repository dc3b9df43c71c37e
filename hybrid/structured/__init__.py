"""Pure functions over score tensors: semirings, chain dynamic programs and decoders.

Nothing here knows about words, audio or trees: a CRF, an HMM and a CTC topology are all
scores on a chain or a graph. See `hybrid.structured.chain` for the tensor contract.
"""

from ._inputs import ChainConstraints
from .chain import kbest, log_partition, marginals, sequence_score, viterbi
from .graph import Graph, GraphPath, graph_log_likelihood, graph_posteriors, graph_viterbi
from .paths import paths_to_lists

__all__ = [
    "ChainConstraints",
    "Graph",
    "GraphPath",
    "graph_log_likelihood",
    "graph_posteriors",
    "graph_viterbi",
    "kbest",
    "log_partition",
    "marginals",
    "paths_to_lists",
    "sequence_score",
    "viterbi",
]
