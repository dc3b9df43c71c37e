"""A trie of dictionary words over CTC symbols, tensorized as a transition table.

`Lexicon` spells every word in CTC symbol ids and stores the trie as a dense ``(N, V)`` table
of next nodes, so a batched beam step looks up the successor of every hypothesis under every
symbol with one gather and forbids the ``-1`` entries.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from ..structured.native import PrefixLexicon

__all__ = ["Lexicon"]


class Lexicon:
    """Dictionary words as a trie over CTC symbol ids.

    Node ``0`` is the root: the state between words. A word is spelled by following one edge
    per symbol from the root. The word delimiter leads back to the root from the root itself
    (so delimiters may lead, trail or repeat) and from every node that ends a word; inside an
    unfinished word it is forbidden. An utterance may end at the root or at a word end. So the
    accepted label sequences are exactly those whose delimiter-separated, non-empty pieces
    are all dictionary words.

    Attributes:
        transitions: ``(N, V)`` int64: the node reached from node ``n`` by symbol ``s``, or
            ``-1`` where no dictionary word continues that way. ``N`` trie nodes, ``V`` CTC
            symbols (blank included; its column is all ``-1``).
        word_index: ``(N,)`` int64: index into ``words`` of the word ending at the node, ``-1``
            where no word ends.
        accepting: ``(N,)`` bool: the root and the word ends, where an utterance may stop.
        words: The words, as given.
        delimiter: CTC id of the word delimiter.
    """

    def __init__(self, words: Iterable[Sequence[str]], symbols: Sequence[str], delimiter: str):
        """Build the trie.

        Args:
            words: Dictionary words. Each is iterated for its symbols: a ``str`` spells one
                symbol per character, a sequence of strings one symbol per item (e.g. pieces).
            symbols: The CTC vocabulary: ``symbols[i]`` is the string of symbol id ``i``.
            delimiter: The word delimiter symbol (e.g. ``" "`` or ``"|"``).

        Raises:
            ValueError: ``words`` a single ``str`` (not a list of words), repeated entries in
                ``symbols``, a ``delimiter`` not in ``symbols``, or a word that is neither a
                ``str`` nor a sequence of strings, is empty, contains the delimiter, or uses a
                string that is not a symbol (naming the word).
        """
        if isinstance(words, str):
            raise ValueError(
                f"words must be a list of words, e.g. {words.split()[:2]!r}, "
                f"not one str: {words[:40]!r}"
            )
        index = _symbol_index(symbols)
        if delimiter not in index:
            raise ValueError(f"delimiter {delimiter!r} is not one of the symbols")
        self.words = tuple(words)
        self.delimiter = index[delimiter]
        children: list[dict[int, int]] = [{}]
        ends: dict[int, int] = {}
        for position, word in enumerate(self.words):
            node = 0
            for symbol in _spell(word, position, index, self.delimiter):
                node = children[node].setdefault(symbol, len(children))
                if node == len(children):
                    children.append({})
            ends.setdefault(node, position)
        self.transitions = _table(children, len(symbols))
        self.word_index = torch.full((len(children),), -1, dtype=torch.long)
        self.word_index[list(ends)] = torch.tensor(list(ends.values()), dtype=torch.long)
        self.accepting = self.word_index >= 0
        self.accepting[0] = True
        self.transitions[self.accepting, self.delimiter] = 0

    @property
    def num_nodes(self) -> int:
        """``N``: nodes of the trie, the root included."""
        return self.transitions.shape[0]

    @property
    def num_symbols(self) -> int:
        """``V``: size of the CTC vocabulary the trie is spelled in."""
        return self.transitions.shape[1]

    def kernel_tables(self) -> PrefixLexicon:
        """The trie as tables for the fused CPU search."""
        return PrefixLexicon(self.transitions, self.accepting)

    def to(self, device: torch.device | str) -> Lexicon:
        """A copy whose tables live on ``device``."""
        moved = copy.copy(self)
        moved.transitions = self.transitions.to(device)
        moved.word_index = self.word_index.to(device)
        moved.accepting = self.accepting.to(device)
        return moved


def _symbol_index(symbols: Sequence[str]) -> dict[str, int]:
    """Map each symbol string to its id; ValueError on repeats."""
    index = {symbol: i for i, symbol in enumerate(symbols)}
    if len(index) != len(symbols):
        raise ValueError("symbols must be distinct strings, one per CTC id")
    return index


def _spell(word: Sequence[str], position: int, index: dict[str, int], delimiter: int) -> list[int]:
    """The CTC ids spelling ``word`` (``words[position]``); ValueError naming the word if it
    cannot be spelled."""
    if not isinstance(word, str) and not (
        isinstance(word, Sequence) and all(isinstance(piece, str) for piece in word)
    ):
        raise ValueError(
            f"words[{position}] must be a str or a sequence of symbol strings, got {word!r}"
        )
    if len(word) == 0:
        raise ValueError(f"words[{position}] is empty; words must not be empty")
    missing = [piece for piece in word if piece not in index]
    if missing:
        raise ValueError(f"word {word!r} uses {missing[0]!r}, which is not one of the symbols")
    ids = [index[piece] for piece in word]
    if delimiter in ids:
        raise ValueError(f"word {word!r} contains the delimiter")
    return ids


def _table(children: list[dict[int, int]], vocab: int) -> Tensor:
    """Dense ``(N, V)`` next-node table of the trie edges, ``-1`` where there is none."""
    table = torch.full((len(children), vocab), -1, dtype=torch.long)
    for node, edges in enumerate(children):
        if edges:
            table[node, list(edges)] = torch.tensor(list(edges.values()), dtype=torch.long)
    return table
