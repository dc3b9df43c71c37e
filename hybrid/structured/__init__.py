"""Pure functions over score tensors: semirings, chain and tree dynamic programs, decoders,
beam search.

Nothing here knows about words, audio or syntax: a CRF, an HMM and a CTC topology are all
scores on a chain or a graph, and span scores live on binary trees of labelled spans. See
`hybrid.structured.chain` and `hybrid.structured.tree` for the tensor contracts.
"""

from ._inputs import ChainConstraints
from .beam import BeamSearchResult, Constraint, beam_search, greedy_search
from .chain import kbest, log_partition, marginals, sequence_score, viterbi
from .determinize import determinize
from .graph import Graph, GraphPath, graph_log_likelihood, graph_posteriors, graph_viterbi
from .nbest import GraphNBest, graph_nbest
from .paths import paths_to_lists
from .tree import (
    cky,
    span_hamming_cost,
    span_indicator,
    tree_hinge,
    tree_log_partition,
    tree_marginals,
    tree_score,
)

__all__ = [
    "BeamSearchResult",
    "ChainConstraints",
    "Constraint",
    "Graph",
    "GraphNBest",
    "GraphPath",
    "beam_search",
    "cky",
    "determinize",
    "graph_log_likelihood",
    "graph_nbest",
    "graph_posteriors",
    "graph_viterbi",
    "greedy_search",
    "kbest",
    "log_partition",
    "marginals",
    "paths_to_lists",
    "sequence_score",
    "span_hamming_cost",
    "span_indicator",
    "tree_hinge",
    "tree_log_partition",
    "tree_marginals",
    "tree_score",
    "viterbi",
]
