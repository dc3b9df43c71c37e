"""Constituency parsing: trees, the Penn Treebank reader, tree linearization and labelled
spans, EVALB scoring, the bracket constraint for decoding, the sequence-to-sequence parser and
the chart parser."""

from .chart import ChartParser
from .constraint import BracketConstraint
from .evalb import COLLINS, EvalbResult, Params, evalb, sentence_scores
from .linearize import delinearize, linearize, well_formed
from .parser import MODES, BaseParser, Parse, Parser
from .spans import EMPTY, spans_tree, tree_spans
from .tree import Tree
from .treebank import from_networkx, normalize, ptb_split, read_trees, to_networkx, write_trees

__all__ = [
    "COLLINS",
    "EMPTY",
    "MODES",
    "BaseParser",
    "BracketConstraint",
    "ChartParser",
    "EvalbResult",
    "Params",
    "Parse",
    "Parser",
    "Tree",
    "delinearize",
    "evalb",
    "from_networkx",
    "linearize",
    "normalize",
    "ptb_split",
    "read_trees",
    "sentence_scores",
    "spans_tree",
    "to_networkx",
    "tree_spans",
    "well_formed",
    "write_trees",
]
