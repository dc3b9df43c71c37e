"""HMM topologies for words and silence, grammars over them, and their decoding graphs.

Each word has a left-to-right HMM of ``word_states`` states and silence one of
``silence_states``; every state owns one emission column (a *pdf*, in Kaldi's words), numbered
word by word with silence last. A state stays with probability ``self_loop[pdf]`` and moves on
otherwise.

A grammar is a small `networkx.MultiDiGraph` over junctions whose edges carry units (a word
index, or `SILENCE`) and log weights; junctions may carry ``start`` and ``final`` weights.
`decoding_graph` expands every grammar edge into a copy of its unit's HMM and joins the
copies at the junctions into one `hybrid.structured.Graph` whose arcs read pdf columns and
write the word index when a word is entered. Four grammars cover the recipes:
`isolated_grammar` (one word, optional silence around it), `loop_grammar` (any word sequence
with optional silence, each word weighed by a penalty and optionally a unigram language
model), `phrase_grammar` (one of a list of allowed phrases) and `transcript_grammar` (a known
word sequence with optional silence between words, for forced alignment). `task_grammar`
builds the decoding grammar a saved system names in plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import torch
from torch import Tensor

from ..structured import Graph

__all__ = [
    "SILENCE",
    "Topology",
    "decoding_graph",
    "estimate_self_loops",
    "isolated_grammar",
    "loop_grammar",
    "phrase_grammar",
    "task_grammar",
    "transcript_grammar",
]

#: The unit of a grammar edge that stands for silence (words are integers).
SILENCE = "<sil>"


@dataclass(frozen=True)
class Topology:
    """Whole-word left-to-right HMMs plus a silence HMM.

    Attributes:
        words: The vocabulary, word ``i`` being ``words[i]``.
        word_states: States per word HMM.
        silence_states: States of the silence HMM.
    """

    words: tuple[str, ...]
    word_states: int = 8
    silence_states: int = 3

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("words must name at least one word")
        for name in ("word_states", "silence_states"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def num_pdfs(self) -> int:
        """Number of emission columns: all word states, then the silence states."""
        return len(self.words) * self.word_states + self.silence_states

    def pdfs(self, unit: int | str) -> list[int]:
        """The emission columns of ``unit`` (a word index or `SILENCE`), in HMM order."""
        if unit == SILENCE:
            first = len(self.words) * self.word_states
            return list(range(first, first + self.silence_states))
        if not isinstance(unit, int) or not 0 <= unit < len(self.words):
            raise ValueError(f"unit must be a word index in [0, {len(self.words)}) or SILENCE")
        return list(range(unit * self.word_states, (unit + 1) * self.word_states))

    def pdf_words(self) -> Tensor:
        """``(num_pdfs,)`` int64: the word each pdf belongs to, ``-1`` for silence."""
        words = torch.arange(len(self.words)).repeat_interleave(self.word_states)
        return torch.cat([words, torch.full((self.silence_states,), -1)])


def isolated_grammar(num_words: int) -> nx.MultiDiGraph:
    """Exactly one word, with optional silence before and after it."""
    g = nx.MultiDiGraph()
    g.add_node("before", start=0.0)
    g.add_node("after", final=0.0)
    g.add_edge("before", "before", unit=SILENCE)
    for word in range(num_words):
        g.add_edge("before", "after", unit=word)
    g.add_edge("after", "after", unit=SILENCE)
    return g


def loop_grammar(
    num_words: int,
    word_penalty: float = 0.0,
    log_probs: Sequence[float] | None = None,
    end: float = 0.0,
) -> nx.MultiDiGraph:
    """Any sequence of words and silences (a word loop).

    Each word adds ``word_penalty`` and, with a unigram language model, its log-probability
    ``log_probs[w]``; ending adds ``end`` (the model's log-probability of the sentence end).
    """
    if log_probs is not None and len(log_probs) != num_words:
        raise ValueError(
            f"log_probs must hold one log-probability per word ({num_words}), got {len(log_probs)}"
        )
    g = nx.MultiDiGraph()
    g.add_node("loop", start=0.0, final=float(end))
    g.add_edge("loop", "loop", unit=SILENCE)
    for word in range(num_words):
        weight = word_penalty + (0.0 if log_probs is None else float(log_probs[word]))
        g.add_edge("loop", "loop", unit=word, weight=weight)
    return g


def phrase_grammar(phrases: Sequence[Sequence[int]], word_penalty: float = 0.0) -> nx.MultiDiGraph:
    """Exactly one of ``phrases`` (each a sequence of word indices), with optional silence
    before, between and after its words; each word adds ``word_penalty``."""
    if not phrases or any(len(phrase) == 0 for phrase in phrases):
        raise ValueError("phrases must hold at least one phrase, each of at least one word")
    g = nx.MultiDiGraph()
    g.add_node("start", start=0.0)
    g.add_edge("start", "start", unit=SILENCE)
    for p, phrase in enumerate(phrases):
        junction = "start"
        for i, word in enumerate(phrase):
            following = (p, i + 1)
            g.add_edge(junction, following, unit=int(word), weight=word_penalty)
            g.add_edge(following, following, unit=SILENCE)
            junction = following
        g.nodes[junction]["final"] = 0.0
    return g


def task_grammar(grammar: str | dict, num_words: int, word_penalty: float = 0.0) -> nx.MultiDiGraph:
    """The decoding grammar that ``grammar``, plain data, names.

    Args:
        grammar: ``"isolated"`` (one word), ``"loop"`` (any word sequence),
            ``{"phrases": [[w, ...], ...]}`` (one of these word sequences) or
            ``{"unigram": [ln P(w) per word], "end": ln P(</s>)}`` (a word loop weighed by a
            unigram language model).
        num_words: Size of the vocabulary.
        word_penalty: Log weight added per word (not by ``"isolated"``).

    Raises:
        ValueError: for a grammar of none of these forms.
    """
    if grammar == "isolated":
        return isolated_grammar(num_words)
    if grammar == "loop":
        return loop_grammar(num_words, word_penalty)
    if isinstance(grammar, dict) and set(grammar) == {"phrases"}:
        return phrase_grammar(grammar["phrases"], word_penalty)
    if isinstance(grammar, dict) and set(grammar) == {"unigram", "end"}:
        return loop_grammar(num_words, word_penalty, grammar["unigram"], grammar["end"])
    raise ValueError(
        "grammar must be 'isolated', 'loop', {'phrases': [...]} or {'unigram': [...], 'end': x}, "
        f"got {grammar!r}"
    )


def transcript_grammar(words: Sequence[int]) -> nx.MultiDiGraph:
    """The words of a transcript in order, with optional silence before, between and after."""
    if len(words) == 0:
        raise ValueError("words must hold at least one word to align")
    g = nx.MultiDiGraph()
    g.add_node(0, start=0.0)
    for i, word in enumerate(words):
        g.add_edge(i, i, unit=SILENCE)
        g.add_edge(i, i + 1, unit=int(word))
    g.add_edge(len(words), len(words), unit=SILENCE)
    g.nodes[len(words)]["final"] = 0.0
    return g


def estimate_self_loops(
    alignments: Sequence[Tensor], num_pdfs: int, floor: float = 0.05, ceiling: float = 0.95
) -> Tensor:
    """Each pdf's self-loop probability from frame alignments: 1 - visits / frames.

    A *visit* is a maximal run of frames on one pdf. Pdfs never seen get 0.5; estimates are
    clipped to ``[floor, ceiling]`` so that no transition becomes impossible.

    Args:
        alignments: 1-D integer tensors of pdf ids, one per utterance.
        num_pdfs: Number of pdfs.
    """
    frames = torch.zeros(num_pdfs)
    visits = torch.zeros(num_pdfs)
    for path in alignments:
        path = path[path >= 0]
        if path.numel() == 0:
            continue
        frames += torch.bincount(path, minlength=num_pdfs)[:num_pdfs]
        starts = torch.ones_like(path, dtype=torch.bool)
        starts[1:] = path[1:] != path[:-1]
        visits += torch.bincount(path[starts], minlength=num_pdfs)[:num_pdfs]
    seen = frames > 0
    loops = torch.full((num_pdfs,), 0.5)
    loops[seen] = 1 - visits[seen] / frames[seen]
    return loops.clamp(floor, ceiling)


def decoding_graph(
    topology: Topology, grammar: nx.MultiDiGraph, self_loop: Tensor | None = None
) -> Graph:
    """Expand ``grammar`` with the HMMs of ``topology`` into a compiled decoding graph.

    Every grammar edge gets its own copy of its unit's states. Arcs read the pdf of the state
    they enter; entering a word writes its index as the output label. A path starts at the
    grammar's start junctions and ends on leaving the last state of a unit into a final
    junction (the leaving probability counts).

    Args:
        topology: The word and silence HMMs.
        grammar: Junctions with ``start``/``final`` weights; edges with ``unit`` and an
            optional log ``weight``.
        self_loop: ``(num_pdfs,)`` self-loop probabilities in ``(0, 1)`` (default 0.5 each).
    """
    if self_loop is None:
        self_loop = torch.full((topology.num_pdfs,), 0.5)
    if tuple(self_loop.shape) != (topology.num_pdfs,):
        raise ValueError(f"self_loop must have shape ({topology.num_pdfs},)")
    if not ((self_loop > 0) & (self_loop < 1)).all():
        raise ValueError("self_loop must hold probabilities strictly between 0 and 1")
    stay = torch.log(self_loop).tolist()
    leave = torch.log1p(-self_loop).tolist()
    g = nx.MultiDiGraph()
    g.add_node("start", start=0.0)
    copies = []  # per grammar edge: (source junction, target junction, unit, weight, pdfs)
    for e, (source, target, data) in enumerate(grammar.edges(data=True)):
        unit, pdfs = data["unit"], topology.pdfs(data["unit"])
        copies.append((source, target, unit, float(data.get("weight", 0.0)), pdfs))
        for i, pdf in enumerate(pdfs):
            g.add_edge((e, i), (e, i), emission=pdf, weight=stay[pdf])
            if i + 1 < len(pdfs):
                g.add_edge((e, i), (e, i + 1), emission=pdfs[i + 1], weight=leave[pdf])

    def enter(e: int) -> dict:
        _, _, unit, weight, pdfs = copies[e]
        return {"emission": pdfs[0], "weight": weight, "label": -1 if unit == SILENCE else unit}

    for j, data in grammar.nodes(data=True):
        into = [e for e, c in enumerate(copies) if c[1] == j]
        out = [e for e, c in enumerate(copies) if c[0] == j]
        if "start" in data:
            for e in out:
                arc = enter(e)
                g.add_edge("start", (e, 0), **{**arc, "weight": arc["weight"] + data["start"]})
        for e_in in into:
            last = (e_in, len(copies[e_in][4]) - 1)
            exit_weight = leave[copies[e_in][4][-1]]
            for e_out in out:
                arc = enter(e_out)
                g.add_edge(last, (e_out, 0), **{**arc, "weight": arc["weight"] + exit_weight})
            if "final" in data:
                g.nodes[last]["final"] = exit_weight + data["final"]
    if not any("final" in d for _, d in g.nodes(data=True)):
        raise ValueError("grammar has no final junction reached by a unit")
    return Graph.from_networkx(g, num_emissions=topology.num_pdfs)
