"""Pure functions over score tensors: semirings, chain dynamic programs, decoders, beam search.

Nothing here knows about words, audio or trees: a CRF, an HMM and a CTC topology are all
scores on a chain or a graph. See `hybrid.structured.chain` for the tensor contract.
"""

from ._inputs import ChainConstraints
from .beam import BeamSearchResult, Constraint, beam_search, greedy_search
from .chain import kbest, log_partition, marginals, sequence_score, viterbi
from .graph import Graph, GraphPath, graph_log_likelihood, graph_posteriors, graph_viterbi
from .paths import paths_to_lists

__all__ = [
    "BeamSearchResult",
    "ChainConstraints",
    "Constraint",
    "Graph",
    "GraphPath",
    "beam_search",
    "graph_log_likelihood",
    "graph_posteriors",
    "graph_viterbi",
    "greedy_search",
    "kbest",
    "log_partition",
    "marginals",
    "paths_to_lists",
    "sequence_score",
    "viterbi",
]
