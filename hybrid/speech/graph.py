"""Decoding graphs: a topology's HMMs composed with a grammar (H∘C∘L∘G) into one compiled
`hybrid.structured.Graph` for the exact and beam-pruned Viterbi searches.

Arcs read the pdf of the HMM state they enter and write a word's index once per word; a
`DecodingGraph` also marks the states where words begin, so that a path gives each word its
frames wherever its index is written. `decoding_graph` builds it in one of two ways that
share one expansion:

- **By word** (whole-word HMMs; ``determinize=False``): every grammar edge gets its own
  copy of each chain of its unit's states, joined to the next units at the junctions. The
  index is written on entering the word.
- **Determinized** (the default for phone topologies): the lexicon and the grammar are
  first composed into an acceptor over phones (L∘G) in which a back-off edge reads the
  disambiguation symbol ``#0`` and each word's last phone carries the word (a disambiguator
  of its own, so that homophones and pronunciations that begin others stay apart, as
  Kaldi's ``#1``, ``#2``, ... keep them), and that acceptor is determinized in the (max, +)
  semiring (`hybrid.structured.determinize`). The words leaving a junction then share the
  phones they begin with up to their last phone, which carries the word (a prefix tree of
  the lexicon per grammar state, the words' last phones its leaves), and the grammar's
  weights move towards its root (the best weight of the words below each phone: a
  language-model look-ahead for the beam search). Its phones, each expanded with its HMM in
  its context, make the graph; ``#0`` becomes an epsilon edge again. A word's index is
  written where its last phone begins.

The two graphs give every frame sequence and word sequence the same best score (tested), so
Viterbi decoding, forced alignment and N-best lists agree; their log-sums over paths differ,
since determinization keeps only the best of the paths it merges (a forward-backward over
all paths wants the graph by word).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import networkx as nx
import torch
from torch import Tensor

from ..structured import Graph, determinize
from .topology import SILENCE, PhoneTopology, Topology
from .tree import WORD_EDGE

__all__ = ["BACKOFF", "DecodingGraph", "decoding_graph"]

#: The disambiguation symbol that a back-off (epsilon) edge of a grammar reads in L∘G.
BACKOFF = "#0"


@dataclass(frozen=True, eq=False)
class DecodingGraph(Graph):
    """A `Graph` whose paths say where each word begins.

    Attributes:
        word_begins: ``(S,)`` bool: the first state of a word's chain of HMM states. A path
            begins a word at a frame whose arc enters such a state from another state, or
            writes a word (a one-state word that follows itself).
    """

    word_begins: Tensor | None = None


class _Phone(NamedTuple):
    """A symbol of L∘G: a phone of a word's pronunciation, whether it begins the word and,
    on the word's last phone, the word (``-1`` on the others)."""

    phone: str
    first: bool
    word: int

    @property
    def last(self) -> bool:
        return self.word >= 0


class _Spelling(NamedTuple):
    """One way to say the unit of an edge: ``pdfs`` with ``log_weight``; ``phones`` whose pdfs
    depend on the neighbours on the ``open`` sides (``None``: the pdfs are fixed)."""

    phones: tuple[str, ...] | None
    pdfs: list[int]
    log_weight: float
    open_left: bool
    open_right: bool


def decoding_graph(
    topology: Topology | PhoneTopology,
    grammar: nx.MultiDiGraph,
    self_loop: Tensor | None = None,
    determinize: bool | None = None,
) -> DecodingGraph:
    """Compose ``grammar`` with the HMMs of ``topology`` into a compiled decoding graph.

    By word, every grammar edge gets its own copy of each chain of its unit's states
    (``topology.chains``: one HMM per word and for silence with `Topology`, one chain of phone
    HMMs per pronunciation with `PhoneTopology`). Determinized (the default for a
    `PhoneTopology`), L∘G is determinized first and its phones are the units (see the module
    docstring). Arcs read the pdf of the state they enter. A path starts at the grammar's
    start junctions and ends on leaving the last state of a unit into a final junction (the
    leaving probability counts).

    With cross-word triphones (a `PhoneTopology` with ``cross_word`` and a grown tree: the
    context layer C of H∘C∘L∘G), a unit is copied for the pairs of neighbours it can have:
    the last phone of each unit that may come before it and the first phone of each unit
    that may come after it (`hybrid.speech.tree.WORD_EDGE` beside silence and at the
    grammar's start and end). Its first and last phones read the pdfs of that pair; the copy
    is entered only from units ending in its left neighbour and leads only into units
    starting with its right one. Left neighbours that the tree gives the same pdfs share a
    copy (their futures are the same), so the graph grows with the tied states, not with
    every pair of phones. Word-internal triphones read the neighbours inside the word, the
    determinized graph's phones from the phones beside them in the prefix tree.

    An edge whose ``unit`` is ``None`` is an epsilon edge: it joins two junctions without a
    unit, adding its weight (the back-off arcs of an n-gram grammar, `ngram_grammar`). The
    units leaving a junction are also reached through every path of epsilon edges from it,
    each path its own arc; a path ends only at a junction that has a final weight itself
    (epsilon edges are not followed to end).

    Args:
        topology: The HMMs of the units.
        grammar: Junctions with ``start``/``final`` weights; edges with ``unit`` (a word
            index, `SILENCE` or ``None``) and an optional log ``weight``.
        self_loop: ``(num_pdfs,)`` self-loop probabilities in ``(0, 1)`` (default 0.5 each).
        determinize: Determinize L∘G first (a `PhoneTopology` only); ``None``: for a
            `PhoneTopology`, not for whole-word HMMs.

    Raises:
        ValueError: A self-loop outside ``(0, 1)`` or of the wrong shape, a unit the topology
            lacks, no start junction, epsilon edges that form a cycle, a grammar that no unit
            leads to a final junction (an empty grammar), ``determinize`` with whole-word
            HMMs, or an L∘G that cannot be determinized (epsilon edges into paths that read
            the same words forever with other weights).
    """
    if self_loop is None:
        self_loop = torch.full((topology.num_pdfs,), 0.5)
    if tuple(self_loop.shape) != (topology.num_pdfs,):
        raise ValueError(f"self_loop must have shape ({topology.num_pdfs},)")
    if not ((self_loop > 0) & (self_loop < 1)).all():
        raise ValueError("self_loop must hold probabilities strictly between 0 and 1")
    for u, v, data in grammar.edges(data=True):
        if "unit" not in data:
            raise ValueError(f"grammar: the edge {u!r} -> {v!r} has no unit (None for epsilon)")
    if not any("start" in data for _, data in grammar.nodes(data=True)):
        raise ValueError("grammar has no start junction (a node with a 'start' weight)")
    if determinize is None:
        determinize = isinstance(topology, PhoneTopology)
    if determinize:
        if not isinstance(topology, PhoneTopology):
            raise ValueError(
                "determinize needs a PhoneTopology: whole-word HMMs have no phones to share"
            )
        for junction in grammar.nodes:
            _epsilon_paths(grammar, junction)  # names an epsilon cycle by the grammar's junctions
        grammar = _determinized(topology, grammar)
    return _expand(topology, grammar, self_loop)


def _expand(
    topology: Topology | PhoneTopology, grammar: nx.MultiDiGraph, self_loop: Tensor
) -> DecodingGraph:
    """The compiled graph of ``grammar``'s units (words, or `_Phone` symbols) expanded with
    their HMMs in context."""
    stay = torch.log(self_loop).tolist()
    leave = torch.log1p(-self_loop).tolist()
    g = _Arcs()
    edges = [(u, v, d) for u, v, d in grammar.edges(data=True) if d["unit"] is not None]
    contexts = isinstance(topology, PhoneTopology) and topology.tree.num_splits > 0
    pause = WORD_EDGE if contexts and topology.cross_word else None  # beside silence, the ends
    spelled = [_spellings(topology, data["unit"], contexts) for _, _, data in edges]

    def first(e: int, c: int) -> str | None:
        phones = spelled[e][c].phones
        return pause if phones is None else phones[0]

    def last(e: int, c: int) -> str | None:
        phones = spelled[e][c].phones
        return pause if phones is None else phones[-1]

    closure = {j: _epsilon_paths(grammar, j) for j in grammar.nodes}
    leaving = {j: [] for j in grammar.nodes}
    for e, (u, _, _) in enumerate(edges):
        leaving[u].append(e)
    # The phones a unit leaving each junction may follow, and those a unit ending at each
    # junction may precede: the copies of a unit with contexts.
    arriving = {j: {pause} if "start" in data else set() for j, data in grammar.nodes(data=True)}
    for e, (_, v, _) in enumerate(edges):
        arriving[v] |= {last(e, c) for c in range(len(spelled[e]))}
    after = {j: set() for j in grammar.nodes}
    for j in grammar.nodes:
        for reached, _ in closure[j]:
            after[reached] |= arriving[j]
    before = {
        j: {first(e, c) for r, _ in closure[j] for e in leaving[r] for c in range(len(spelled[e]))}
        | ({pause} if "final" in data else set())
        for j, data in grammar.nodes(data=True)
    }
    # A copy is named by its pdfs and its right neighbour (None: closed), which fix its
    # future: the left neighbours whose pdfs agree share it (each path still enters it from
    # one place).
    copies = {}  # (edge, chain, pdfs, right) -> pdfs of that copy
    entries = {}  # (edge, chain) -> {left (None: closed): [(first arc's attributes, copy)]}
    begins = set()  # the first states of words
    for e, (u, v, data) in enumerate(edges):
        unit, weight = data["unit"], float(data.get("weight", 0.0))
        if isinstance(unit, _Phone):  # the word is written on its last phone
            label, begins_word = unit.word, unit.first
        else:
            label, begins_word = (-1, False) if unit == SILENCE else (unit, True)
        for c, said in enumerate(spelled[e]):
            lefts = sorted(after[u], key=str) if said.open_left else [None]
            rights = sorted(before[v], key=str) if said.open_right else [None]
            for left in lefts:
                for right in rights:
                    chain = said.pdfs
                    if said.phones is not None:
                        chain = topology.phone_chain(
                            said.phones, left or WORD_EDGE, right or WORD_EDGE
                        )
                    copy = (e, c, tuple(chain), right)
                    arc = (chain[0], weight + said.log_weight, label)
                    entries.setdefault((e, c), {}).setdefault(left, []).append((arc, copy))
                    if copy in copies:
                        continue
                    copies[copy] = chain
                    if begins_word:
                        begins.add((*copy, 0))
                    for i, pdf in enumerate(chain):
                        g.add((*copy, i), (*copy, i), pdf, stay[pdf])
                        if i + 1 < len(chain):
                            g.add((*copy, i), (*copy, i + 1), chain[i + 1], leave[pdf])

    def enter(source, junction, weight: float, said: str | None, next_phone: str | None) -> None:
        """Arcs from ``source`` (whose last phone is ``said``, committed to a unit starting
        with ``next_phone`` unless it is ``None``) into every unit reached from
        ``junction`` that fits."""
        for reached, through in closure[junction]:
            for e in leaving[reached]:
                for c in range(len(spelled[e])):
                    if next_phone is not None and next_phone != first(e, c):
                        continue
                    by_left = entries.get((e, c), {})  # one closed copy, or by left phone
                    for (pdf, arc_weight, label), copy in by_left.get(None, by_left.get(said, [])):
                        g.add(source, (*copy, 0), pdf, arc_weight + weight + through, label)

    for j, data in grammar.nodes(data=True):
        if "start" in data:
            enter("start", j, data["start"], pause, None)
    for copy, pdfs in copies.items():
        (e, c, _, right), junction = copy, edges[copy[0]][1]
        end = (*copy, len(pdfs) - 1)
        enter(end, junction, leave[pdfs[-1]], last(e, c), right)
        if "final" in grammar.nodes[junction] and right in (None, pause):
            g.final[g.state(end)] = leave[pdfs[-1]] + grammar.nodes[junction]["final"]
    if not g.final:
        raise ValueError("grammar has no final junction reached by a unit")
    return g.compile(topology.num_pdfs, begins)


class _Arcs:
    """The arcs of a decoding graph as they are made, between states named by any hashable
    (numbered in the order they first appear, ``"start"`` first), compiled in the order a
    `networkx.MultiDiGraph` would list them (by source, then by the first arc to each
    destination), so that equal graphs break the search's ties alike."""

    def __init__(self) -> None:
        self.index: dict = {"start": 0}
        self.arcs: list[tuple[int, int, int, float, int]] = []
        self.pairs: dict[tuple[int, int], int] = {}
        self.final: dict[int, float] = {}

    def state(self, name) -> int:
        return self.index.setdefault(name, len(self.index))

    def add(self, source, target, pdf: int, weight: float, label: int = -1) -> None:
        u, v = self.state(source), self.state(target)
        self.pairs.setdefault((u, v), len(self.pairs))
        self.arcs.append((u, v, pdf, weight, label))

    def compile(self, num_pdfs: int, begins: set) -> DecodingGraph:
        """The `DecodingGraph`, starting at ``"start"``, whose words begin at the states
        named in ``begins``."""
        order = sorted(range(len(self.arcs)), key=lambda a: self.pairs[self.arcs[a][:2]])
        src, dst, pdfs, weights, labels = zip(*(self.arcs[a] for a in order), strict=True)
        states = len(self.index)
        start = torch.full((states,), -math.inf, dtype=torch.float64)
        start[0] = 0.0
        final = torch.full((states,), -math.inf, dtype=torch.float64)
        final[list(self.final)] = torch.tensor(list(self.final.values()), dtype=torch.float64)
        names = tuple(self.index)
        graph = DecodingGraph.build(
            src,
            dst,
            pdfs,
            start,
            final,
            torch.tensor(weights, dtype=torch.float64),
            labels,
            num_pdfs,
            names,
        )
        return replace(graph, word_begins=torch.tensor([name in begins for name in names]))


def _spellings(
    topology: Topology | PhoneTopology, unit: int | str | _Phone, contexts: bool
) -> list[_Spelling]:
    """The ways to say ``unit``. With ``contexts`` (a grown tree), a word's or a phone's pdfs
    depend on its neighbours: across words (``cross_word``) or, word-internal, on the
    neighbours inside the word (a phone of L∘G is open on the sides its word goes on)."""
    if isinstance(unit, _Phone):
        if not contexts:
            return [_Spelling(None, topology.phone_chain((unit.phone,)), 0.0, False, False)]
        cross = topology.cross_word
        return [_Spelling((unit.phone,), [], 0.0, cross or not unit.first, cross or not unit.last)]
    chains = topology.chains(unit)
    if not contexts or not topology.cross_word or unit == SILENCE:
        return [_Spelling(None, pdfs, log_weight, False, False) for pdfs, log_weight in chains]
    pronunciations = topology.lexicon.pronunciations(topology.words[unit])
    return [
        _Spelling(pron.phones, pdfs, log_weight, True, True)
        for pron, (pdfs, log_weight) in zip(pronunciations, chains, strict=True)
    ]


def _epsilon_paths(grammar: nx.MultiDiGraph, junction) -> list[tuple[object, float]]:
    """``(junction reached, summed weight)`` for ``junction`` itself (weight 0) and for every
    path of epsilon edges (``unit`` None) from it, each path once.

    Raises:
        ValueError: The epsilon edges from ``junction`` form a cycle.
    """
    found, stack = [], [(junction, 0.0, (junction,))]
    while stack:
        node, weight, path = stack.pop()
        found.append((node, weight))
        for _, target, data in grammar.out_edges(node, data=True):
            if data["unit"] is None:
                if target in path:
                    raise ValueError(
                        f"grammar: the epsilon edges (unit None) form a cycle through "
                        f"{target!r}; expected them to lead from longer histories to shorter"
                    )
                stack.append((target, weight + float(data.get("weight", 0.0)), (*path, target)))
    return found


def _determinized(topology: PhoneTopology, grammar: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """det(L∘G) as a grammar over `_Phone` units, `SILENCE` and epsilon edges (the
    back-offs)."""
    lexicon_grammar = _lexicon_grammar(topology, grammar)
    limit = 10 * lexicon_grammar.number_of_nodes() + 1000
    try:
        det = determinize(lexicon_grammar, max_states=limit)
    except ValueError as error:
        raise ValueError(f"grammar: L∘G cannot be determinized: {error}") from None
    units = nx.MultiDiGraph()
    units.add_nodes_from(det.nodes(data=True))
    for u, v, data in det.edges(data=True):
        unit = None if data["symbol"] == BACKOFF else data["symbol"]  # a phone, or SILENCE
        units.add_edge(u, v, unit=unit, weight=data["weight"])
    return units


def _lexicon_grammar(topology: PhoneTopology, grammar: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """L∘G: each word edge of ``grammar`` spelled in `_Phone` symbols, once per pronunciation
    (its log probability and the edge's weight on the first phone), silence as the symbol
    `SILENCE` and each epsilon edge as `BACKOFF`. A junction reached through a back-off has a
    copy that is not final, as a path does not end through an epsilon edge."""
    lexicon_grammar = nx.MultiDiGraph()
    for j, data in grammar.nodes(data=True):
        ends = {key: float(data[key]) for key in ("start", "final") if key in data}
        lexicon_grammar.add_node(("at", j), **ends)
    backed_off = {v for _, v, data in grammar.edges(data=True) if data["unit"] is None}
    for e, (u, v, data) in enumerate(grammar.edges(data=True)):
        unit, weight = data["unit"], float(data.get("weight", 0.0))
        sources = [("at", u)] + ([("backed off", u)] if u in backed_off else [])
        if unit is None or unit == SILENCE:
            symbol, target = (BACKOFF, ("backed off", v)) if unit is None else (SILENCE, ("at", v))
            for source in sources:
                lexicon_grammar.add_edge(source, target, symbol=symbol, weight=weight)
            continue
        if not isinstance(unit, int) or not 0 <= unit < len(topology.words):
            topology.chains(unit)  # names the unit the topology lacks
        for c, pron in enumerate(topology.lexicon.pronunciations(topology.words[unit])):
            n = len(pron.phones)
            nodes = [None, *(("in", e, c, k) for k in range(1, n)), ("at", v)]
            for k, phone in enumerate(pron.phones):
                symbol = _Phone(phone, k == 0, unit if k == n - 1 else -1)
                if k == 0:  # the word's first phone from each source, then its chain once
                    for source in sources:
                        lexicon_grammar.add_edge(
                            source, nodes[1], symbol=symbol, weight=weight + pron.log_prob
                        )
                else:
                    lexicon_grammar.add_edge(nodes[k], nodes[k + 1], symbol=symbol)
    return lexicon_grammar
