"""CTC as topologies of the graph engine (`hybrid.structured.Graph`).

Every arc reads one frame's symbol (its emission column is the symbol) and writes an output
label when a new symbol, or a new word, starts. Three graphs:

- `ctc_topology`: all symbol sequences. State ``s`` means "the last frame read ``s``"; reading
  a symbol other than the last one (and not the blank) writes it. Its best path is the
  best-path (greedy) decoding; its output labels are the collapsed frame labels.
- `ctc_alignment_graph`: the ``2 L + 1``-state lattice of one target; its log-likelihood is
  ``-ctc_loss`` and its best path is the forced alignment.
- `ctc_lexicon_graph`: a loop over dictionary words spelled in CTC symbols, with optional
  blanks between words; labels are word indices, so graph decoding under it only produces
  dictionary words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx
import torch

from ..structured import Graph
from .inputs import check_blank, check_symbol_ids

__all__ = ["ctc_alignment_graph", "ctc_lexicon_graph", "ctc_topology"]


def _check_vocab(vocab: int, blank: object) -> int:
    """``blank`` as an int; ValueError unless ``vocab`` is an int >= 2 and holds ``blank``."""
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
        raise ValueError(f"vocab must hold the blank and at least one symbol, got {vocab!r}")
    return check_blank(blank, vocab)


def ctc_topology(vocab: int, blank: int = 0) -> Graph:
    """The CTC topology over ``vocab`` symbols: ``V`` states, ``V^2`` arcs, labels = symbols."""
    blank = _check_vocab(vocab, blank)
    last, read = torch.meshgrid(torch.arange(vocab), torch.arange(vocab), indexing="ij")
    last, read = last.flatten(), read.flatten()
    label = torch.where((read == blank) | (read == last), -1, read)
    start = torch.full((vocab,), float("-inf"), dtype=torch.float64)
    start[blank] = 0.0  # before the first frame nothing was read: like after a blank
    return Graph.build(
        last,
        read,
        read,
        start,
        torch.zeros(vocab, dtype=torch.float64),
        label=label,
        num_emissions=vocab,
    )


def ctc_alignment_graph(target: Sequence[int], vocab: int, blank: int = 0) -> Graph:
    """The alignment lattice of one ``target`` (``L`` symbols, no blank).

    States ``0..2L`` (even: blanks, odd: symbol ``i = s // 2``) plus a start state; entering a
    symbol state from another state writes that symbol.

    Raises:
        ValueError: ``vocab`` not an int >= 2; ``blank`` not an int in ``[0, vocab)``;
            ``target`` a ``str`` or holding something that is not an int symbol id (naming
            ``target[i]``); or a symbol outside ``[0, vocab)`` or the blank.
    """
    blank = _check_vocab(vocab, blank)
    target = check_symbol_ids(target, "target")
    if any(not 0 <= x < vocab or x == blank for x in target):
        raise ValueError(f"target must hold non-blank symbols in [0, {vocab})")
    extended = [blank]
    for symbol in target:
        extended += [symbol, blank]
    g = nx.MultiDiGraph()
    g.add_node("start", start=0.0)
    for s, symbol in enumerate(extended):
        g.add_node(s)
        writes = -1 if symbol == blank else symbol
        g.add_edge(s, s, emission=symbol)
        if s < 2:
            g.add_edge("start", s, emission=symbol, label=writes)
        if s >= 1:
            g.add_edge(s - 1, s, emission=symbol, label=writes)
        if s >= 2 and symbol != blank and symbol != extended[s - 2]:
            g.add_edge(s - 2, s, emission=symbol, label=writes)
    last = len(extended) - 1
    g.nodes[last]["final"] = 0.0
    if target:
        g.nodes[last - 1]["final"] = 0.0
    return Graph.from_networkx(g, num_emissions=vocab)


def ctc_lexicon_graph(
    words: Sequence[Sequence[int]], vocab: int, blank: int = 0, word_penalty: float = 0.0
) -> Graph:
    """Any sequence of dictionary ``words`` (each a sequence of non-blank symbols).

    Between words there may be blanks (required when a word starts with the symbol the
    previous one ended with); within a word, blanks may separate symbols and must separate
    repeated ones. Entering word ``w`` writes ``w`` and adds ``word_penalty``.

    Raises:
        ValueError: ``vocab`` not an int >= 2; ``blank`` not an int in ``[0, vocab)``;
            ``words`` a ``str`` or empty; a word given as a ``str`` (spell it in symbol ids
            first) or holding something that is not an int symbol id (naming
            ``words[w][i]``); or an empty word, or one with a symbol outside ``[0, vocab)``
            or the blank.
    """
    blank = _check_vocab(vocab, blank)
    if isinstance(words, str) or not isinstance(words, Iterable):
        raise ValueError(
            f"words must be a list of words, each a sequence of int symbol ids, "
            f"got {type(words).__name__}"
        )
    spelled = [check_symbol_ids(word, f"words[{w}]") for w, word in enumerate(words)]
    if not spelled:
        raise ValueError("words must hold at least one word")
    for w, word in enumerate(spelled):
        if not word or any(not 0 <= x < vocab or x == blank for x in word):
            raise ValueError(f"word {w} must be a non-empty sequence of non-blank symbols")
    g = nx.MultiDiGraph()
    g.add_node("between", start=0.0, final=0.0)
    g.add_edge("between", "between", emission=blank)
    for w, word in enumerate(spelled):
        for i, symbol in enumerate(word):
            g.add_edge((w, i), (w, i), emission=symbol)
            if i + 1 < len(word):
                g.add_edge((w, i), (w, i, "blank"), emission=blank)
                g.add_edge((w, i, "blank"), (w, i, "blank"), emission=blank)
                g.add_edge((w, i, "blank"), (w, i + 1), emission=word[i + 1])
                if word[i + 1] != symbol:
                    g.add_edge((w, i), (w, i + 1), emission=word[i + 1])
        end = (w, len(word) - 1)
        g.nodes[end]["final"] = 0.0
        g.add_edge(end, "between", emission=blank)
        g.add_edge("between", (w, 0), emission=word[0], label=w, weight=word_penalty)
    for v, previous in enumerate(spelled):
        for w, word in enumerate(spelled):
            if word[0] != previous[-1]:
                g.add_edge(
                    (v, len(previous) - 1), (w, 0), emission=word[0], label=w, weight=word_penalty
                )
    return Graph.from_networkx(g, num_emissions=vocab)
