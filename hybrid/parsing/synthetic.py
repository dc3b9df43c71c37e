"""Trees from a small hand-written probabilistic grammar: the parser's embedded default.

The grammar writes PTB-style trees (phrase labels S, NP, VP, PP, SBAR, ADJP; POS tags as
preterminals; a final period) with the traits that make parsing a structure problem: PP
attachment to a noun or a verb, relative clauses, coordination, adjectives, and recursion
bounded by a depth limit. It is not English data: its scores do not compare with the Penn
Treebank's.
"""

from __future__ import annotations

import random

from .tree import Tree

__all__ = ["SYNTHETIC_NOTICE", "synthetic_trees"]

SYNTHETIC_NOTICE = (
    "Note: the 'synthetic' treebank is generated from a small hand-written grammar, not real "
    "sentences; its scores do not compare with the Penn Treebank's."
)

# Each phrase: alternatives of (weight, children); a child is a phrase or a POS tag.
_RULES: dict[str, list[tuple[float, tuple[str, ...]]]] = {
    "S": [(0.7, ("NP", "VP")), (0.15, ("NP", "VP", "CC", "S")), (0.15, ("PP", ",", "NP", "VP"))],
    "NP": [
        (0.35, ("DT", "NN")),
        (0.15, ("DT", "ADJP", "NN")),
        (0.15, ("NP", "PP")),
        (0.1, ("NP", "SBAR")),
        (0.1, ("NNP",)),
        (0.1, ("PRP",)),
        (0.05, ("NP", "CC", "NP")),
    ],
    "VP": [
        (0.3, ("VBD", "NP")),
        (0.2, ("VBD", "NP", "PP")),
        (0.15, ("VBD",)),
        (0.15, ("VBD", "SBAR")),
        (0.1, ("MD", "VP_BASE")),
        (0.1, ("VBD", "ADJP")),
    ],
    "VP_BASE": [(0.6, ("VB", "NP")), (0.4, ("VB", "PP"))],
    "PP": [(1.0, ("IN", "NP"))],
    "SBAR": [(0.6, ("WDT", "VP")), (0.4, ("IN_THAT", "S"))],
    "ADJP": [(0.7, ("JJ",)), (0.3, ("RB", "JJ"))],
}
# Phrases to use when the depth limit is reached (no recursion).
_LEAF_RULES = {
    "S": ("NP", "VP"),
    "NP": ("DT", "NN"),
    "VP": ("VBD",),
    "VP_BASE": ("VB", "NP"),
    "PP": ("IN", "NP"),
    "SBAR": ("WDT", "VP"),
    "ADJP": ("JJ",),
}
_WORDS = {
    "DT": ["the", "a", "every", "this", "some"],
    "NN": ["dog", "cat", "telescope", "park", "report", "market", "company", "man", "idea"],
    "NNP": ["mary", "john", "paris", "ibm", "monday"],
    "PRP": ["she", "he", "they", "it"],
    "VBD": ["saw", "liked", "bought", "said", "left", "found", "sold", "thought"],
    "VB": ["see", "buy", "sell", "find", "leave"],
    "MD": ["will", "could", "might"],
    "IN": ["with", "in", "on", "near", "from"],
    "IN_THAT": ["that"],
    "WDT": ["which", "that"],
    "JJ": ["big", "old", "happy", "red", "new"],
    "RB": ["very", "quite"],
    "CC": ["and", "but"],
    ",": [","],
}
_LABELS = {"VP_BASE": "VP", "IN_THAT": "IN"}


def _expand(symbol: str, depth: int, rng: random.Random) -> Tree:
    label = _LABELS.get(symbol, symbol)
    if symbol in _WORDS:
        return Tree(label, [rng.choice(_WORDS[symbol])])
    if depth <= 0:
        children = _LEAF_RULES[symbol]
    else:
        weights, options = zip(*_RULES[symbol], strict=True)
        children = rng.choices(options, weights)[0]
    return Tree(label, [_expand(child, depth - 1, rng) for child in children])


def synthetic_trees(count: int, seed: int = 0, max_depth: int = 6) -> list[Tree]:
    """``count`` sentences ``(S ... (. .))`` from the grammar, reproducible from ``seed``.

    Raises:
        ValueError: ``count < 1`` or ``max_depth < 2``.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 2:
        raise ValueError(f"max_depth must be an integer >= 2, got {max_depth!r}")
    rng = random.Random(seed)
    trees = []
    for _ in range(count):
        sentence = _expand("S", max_depth, rng)
        trees.append(Tree("S", [*sentence.children, Tree(".", ["."])]))
    return trees
