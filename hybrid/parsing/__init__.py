"""Parsing as sequence-to-sequence: constituency trees, the Penn Treebank reader, tree
linearization, EVALB scoring, the bracket constraint for decoding, and the parser."""

from .constraint import BracketConstraint
from .evalb import COLLINS, EvalbResult, Params, evalb, sentence_scores
from .linearize import delinearize, linearize, well_formed
from .parser import MODES, Parse, Parser
from .tree import Tree
from .treebank import from_networkx, normalize, ptb_split, read_trees, to_networkx, write_trees

__all__ = [
    "COLLINS",
    "MODES",
    "BracketConstraint",
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
    "to_networkx",
    "well_formed",
    "write_trees",
]
