"""Constituency parsing: trees, the Penn Treebank reader, tree linearization and labelled
spans, EVALB scoring, the bracket constraint for decoding, the sequence-to-sequence parser and
the chart parser.

The names below load on first use: trees, linearization, spans, EVALB, the treebank reader
and `hybrid.parsing.text` (what an exported parser shares with a trained one) import no torch.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names

_HOMES = {
    "ChartParser": ".chart",
    "BracketConstraint": ".constraint",
    "COLLINS": ".evalb",
    "EvalbResult": ".evalb",
    "Params": ".evalb",
    "evalb": ".evalb",
    "sentence_scores": ".evalb",
    "delinearize": ".linearize",
    "linearize": ".linearize",
    "well_formed": ".linearize",
    "MODES": ".parser",
    "BaseParser": ".parser",
    "Parser": ".parser",
    "EMPTY": ".spans",
    "spans_tree": ".spans",
    "tree_spans": ".spans",
    "Parse": ".text",
    "Tree": ".tree",
    "from_networkx": ".treebank",
    "normalize": ".treebank",
    "ptb_split": ".treebank",
    "read_trees": ".treebank",
    "to_networkx": ".treebank",
    "write_trees": ".treebank",
}
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

__getattr__, __dir__ = lazy_names(__name__, _HOMES)

if TYPE_CHECKING:
    from .chart import ChartParser
    from .constraint import BracketConstraint
    from .evalb import COLLINS, EvalbResult, Params, evalb, sentence_scores
    from .linearize import delinearize, linearize, well_formed
    from .parser import MODES, BaseParser, Parser
    from .spans import EMPTY, spans_tree, tree_spans
    from .text import Parse
    from .tree import Tree
    from .treebank import from_networkx, normalize, ptb_split, read_trees, to_networkx, write_trees
