"""HMM topologies for words, phones and silence, and grammars over words.

`Topology`: each word has a left-to-right HMM of ``word_states`` states and silence one of
``silence_states``; every state owns one emission column (a *pdf*, in Kaldi's words), numbered
word by word with silence last. `PhoneTopology`: each phone has such an HMM instead, and a
pronunciation lexicon spells every word as the chain of its phones' HMMs (one chain per
pronunciation), so that words share the pdfs of their phones; a phonetic decision tree may
tie the states of the phones in their contexts (triphones), inside words or across them. A
state stays with probability ``self_loop[pdf]`` and moves on otherwise.

A grammar is a small `networkx.MultiDiGraph` over junctions whose edges carry units (a word
index, `SILENCE`, or ``None`` for an epsilon edge) and log weights; junctions may carry
``start`` and ``final`` weights (`hybrid.speech.graph.decoding_graph` composes a topology
with one into a decoding graph). Five grammars cover the recipes: `isolated_grammar` (one
word, optional silence around it), `loop_grammar` (any word sequence with optional silence,
each word weighed by a penalty and optionally a unigram language model), `phrase_grammar`
(one of a list of allowed phrases), `ngram_grammar` (a back-off n-gram model of any order,
with epsilon back-off edges) and `transcript_grammar` (a known word sequence with optional
silence between words, for forced alignment). `task_grammar` builds the decoding grammar a
saved system names in plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import networkx as nx
import torch
from torch import Tensor

from ..ctc.lm import BOS, EOS, NGramLM
from .lexicon import Lexicon, Pronunciation
from .tree import WORD_EDGE, PhoneticTree, word_contexts

__all__ = [
    "SILENCE",
    "PhoneTopology",
    "Topology",
    "estimate_self_loops",
    "isolated_grammar",
    "loop_grammar",
    "ngram_data",
    "ngram_grammar",
    "phrase_grammar",
    "task_grammar",
    "topology_from_dict",
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

    def chains(self, unit: int | str) -> list[tuple[list[int], float]]:
        """The ways to say ``unit`` (a word index or `SILENCE`) as ``(pdfs, log weight)``:
        here its one HMM."""
        return [(self.pdfs(unit), 0.0)]

    def to_dict(self) -> dict:
        """The topology as plain data (`topology_from_dict` reads it back)."""
        return asdict(self)

    def pdf_words(self) -> Tensor:
        """``(num_pdfs,)`` int64: the word each pdf belongs to, ``-1`` for silence."""
        words = torch.arange(len(self.words)).repeat_interleave(self.word_states)
        return torch.cat([words, torch.full((self.silence_states,), -1)])


class PhoneTopology:
    """Phone HMMs and a silence HMM, with the lexicon that spells each word in phones: a
    word's HMM is the chain of its phones' HMMs, one chain per pronunciation, so that words
    share the states of their phones and a word never heard in training is recognised from
    its pronunciation.

    Every phone has a left-to-right HMM of ``phone_states`` states and silence one of
    ``silence_states``. Which pdf a phone state reads is the ``tree``'s answer for its
    neighbours (`hybrid.speech.tree.PhoneticTree`): without a tree (one without splits),
    each state of each phone owns one pdf, numbered phone by phone in the order of
    ``phones`` (context-independent phones); a grown tree ties the states of triphones,
    word-internal or, with ``cross_word``, across words: the first phone of a word then
    depends on the last phone of the word before it and the last on the first phone of the
    word after (`hybrid.speech.tree.WORD_EDGE` next to silence or the utterance's edge), and
    `hybrid.speech.graph.decoding_graph` keeps a copy of each phone per pair of neighbours
    it can have (the context layer of H∘C∘L∘G). Silence's pdfs come last.

    Args:
        words: The vocabulary: grammar units are word indices, word ``i`` being ``words[i]``.
        lexicon: The pronunciations of the words (`hybrid.speech.lexicon.Lexicon`).
        phones: The phones the models have, in pdf order (default: those of the words'
            pronunciations, sorted).
        phone_states: States per phone HMM.
        silence_states: States of the silence HMM.
        tree: The phonetic decision tree of the phone states (default: none, monophones).
        cross_word: Whether the tree's contexts cross words (default: word-internal).

    Raises:
        ValueError: No words, a word the lexicon cannot pronounce, a pronunciation with a
            phone outside ``phones`` (naming the word and the phone), repeated phones, fewer
            than one state, or a tree over other phones or states.
    """

    def __init__(
        self,
        words: Sequence[str],
        lexicon: Lexicon,
        phones: Sequence[str] | None = None,
        phone_states: int = 3,
        silence_states: int = 3,
        tree: PhoneticTree | None = None,
        cross_word: bool = False,
    ):
        if not words:
            raise ValueError("words must name at least one word")
        for name, value in (("phone_states", phone_states), ("silence_states", silence_states)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.words = tuple(words)
        self.lexicon = lexicon.restricted(self.words)
        self.phones = tuple(self.lexicon.phones if phones is None else phones)
        if len(set(self.phones)) != len(self.phones):
            raise ValueError(f"phones must be distinct, got {self.phones}")
        self.phone_states, self.silence_states = phone_states, silence_states
        self.cross_word = bool(cross_word)
        self.tree = PhoneticTree.monophones(self.phones, phone_states) if tree is None else tree
        if self.tree.phones != self.phones or self.tree.states != phone_states:
            raise ValueError(
                f"tree: expected roots for the {phone_states} states of the phones "
                f"{' '.join(self.phones)}, got {self.tree.states} states of "
                f"{' '.join(self.tree.phones)}"
            )
        self._phone_index = {phone: i for i, phone in enumerate(self.phones)}
        for word in self.words:
            for pron in self.lexicon.pronunciations(word):
                missing = [p for p in pron.phones if p not in self._phone_index]
                if missing:
                    raise ValueError(
                        f"the pronunciation {' '.join(pron.phones)!r} of {word!r} uses the "
                        f"phone {missing[0]!r}, which the models lack (phones: "
                        f"{' '.join(self.phones)})"
                    )

    @property
    def num_pdfs(self) -> int:
        """Number of emission columns: the tree's tied states, then the silence states."""
        return self.tree.num_leaves + self.silence_states

    def phone_pdfs(self, phone: str | int) -> list[int]:
        """The pdfs of ``phone`` (a symbol or its index in ``phones``) in every context, by
        state, or those of `SILENCE` in HMM order."""
        if phone == SILENCE:
            first = self.tree.num_leaves
            return list(range(first, first + self.silence_states))
        index = self._phone_index.get(phone, phone) if isinstance(phone, str) else phone
        if not isinstance(index, int) or not 0 <= index < len(self.phones):
            raise ValueError(
                f"phone must be one of {self.phones}, an index or SILENCE, got {phone!r}"
            )
        return (self.pdf_phones() == index).nonzero().flatten().tolist()

    def phone_chain(
        self, phones: Sequence[str], left: str = WORD_EDGE, right: str = WORD_EDGE
    ) -> list[int]:
        """The pdfs of a word said as ``phones``: each phone's states in the context of its
        neighbours, ``left`` and ``right`` beyond the word's edges (the neighbouring words'
        phones, with cross-word contexts)."""
        contexts = word_contexts(phones, left, right)
        return [
            self.tree.pdf(phone, state, left, right)
            for phone, (left, right) in zip(phones, contexts, strict=True)
            for state in range(self.phone_states)
        ]

    def chains(self, unit: int | str) -> list[tuple[list[int], float]]:
        """The ways to say ``unit`` (a word index or `SILENCE`) as ``(pdfs, log weight)``:
        one chain of phone HMMs per pronunciation (`phone_chain`), weighed by its log
        probability."""
        if unit == SILENCE:
            return [(self.phone_pdfs(SILENCE), 0.0)]
        if not isinstance(unit, int) or not 0 <= unit < len(self.words):
            raise ValueError(f"unit must be a word index in [0, {len(self.words)}) or SILENCE")
        return [
            (self.phone_chain(pron.phones), pron.log_prob)
            for pron in self.lexicon.pronunciations(self.words[unit])
        ]

    def to_dict(self) -> dict:
        """The topology as plain data, with the pronunciations of its words
        (`topology_from_dict` reads it back)."""
        return {
            "kind": "phones",
            "words": list(self.words),
            "phones": list(self.phones),
            "phone_states": self.phone_states,
            "silence_states": self.silence_states,
            "tree": self.tree.to_dict(),
            "cross_word": self.cross_word,
            "lexicon": {
                word: [[list(p.phones), p.log_prob] for p in self.lexicon.pronunciations(word)]
                for word in self.words
            },
        }

    def min_frames(self, words: Sequence[int]) -> int:
        """The fewest frames in which ``words`` (word indices) can be said: the states of
        each word's shortest pronunciation."""
        return sum(min(len(pdfs) for pdfs, _ in self.chains(int(w))) for w in words)

    def pdf_phones(self) -> Tensor:
        """``(num_pdfs,)`` int64: the index in ``phones`` of each pdf's phone, ``-1`` for
        silence."""
        phones = self.tree.leaf_roots() // self.phone_states
        return torch.cat([phones, torch.full((self.silence_states,), -1)])

    def pdf_states(self) -> Tensor:
        """``(num_pdfs,)`` int64: the state of its phone's HMM (or of silence's) each pdf
        belongs to."""
        states = self.tree.leaf_roots() % self.phone_states
        return torch.cat([states, torch.arange(self.silence_states)])


def topology_from_dict(data: dict) -> Topology | PhoneTopology:
    """The topology that ``to_dict`` wrote: a `PhoneTopology` (``"kind": "phones"``), else
    whole-word HMMs (a `Topology`)."""
    if data.get("kind") == "phones":
        lexicon = Lexicon(
            {
                word: [Pronunciation(tuple(phones), log_prob) for phones, log_prob in prons]
                for word, prons in data["lexicon"].items()
            },
            source="saved lexicon",
        )
        tree = PhoneticTree.from_dict(data["tree"]) if "tree" in data else None
        return PhoneTopology(
            data["words"],
            lexicon,
            data["phones"],
            data["phone_states"],
            data["silence_states"],
            tree,
            data.get("cross_word", False),
        )
    return Topology(**{**data, "words": tuple(data["words"])})


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
            ``{"phrases": [[w, ...], ...]}`` (one of these word sequences),
            ``{"ngram": [[tokens, ln P, ln backoff], ...]}`` (a back-off n-gram model over the
            word indices, `ngram_data`) or ``{"unigram": [ln P(w) per word], "end": ln
            P(</s>)}`` (a word loop weighed by a unigram model, as systems saved before the
            n-gram form have it).
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
    if isinstance(grammar, dict) and set(grammar) == {"ngram"}:
        tables: list[dict] = []
        for tokens, log_prob, backoff in grammar["ngram"]:
            tables += [{} for _ in range(len(tokens) - len(tables))]
            tables[len(tokens) - 1][tuple(str(t) for t in tokens)] = (log_prob, backoff)
        names = [str(w) for w in range(num_words)]
        return ngram_grammar(NGramLM(tables), names, word_penalty=word_penalty)
    if isinstance(grammar, dict) and set(grammar) == {"unigram", "end"}:
        return loop_grammar(num_words, word_penalty, grammar["unigram"], grammar["end"])
    raise ValueError(
        "grammar must be 'isolated', 'loop', {'phrases': [...]}, {'ngram': [...]} or "
        f"{{'unigram': [...], 'end': x}}, got {grammar!r}"
    )


def ngram_data(lm: NGramLM, words: Sequence[str]) -> dict:
    """``lm`` over the vocabulary ``words`` as the plain data of `task_grammar`:
    ``{"ngram": [[tokens, ln P, ln backoff], ...]}``, each token the index of a word in
    ``words`` or ``<s>`` / ``</s>``; the n-grams that hold any other token are left out."""
    index = {word: i for i, word in enumerate(words)} | {BOS: BOS, EOS: EOS}
    rows = []
    for n in range(1, lm.order + 1):
        for gram, log_prob, backoff in lm.ngrams(n):
            if all(token in index for token in gram):
                rows.append([[index[token] for token in gram], log_prob, backoff])
    return {"ngram": rows}


def ngram_grammar(
    lm: NGramLM,
    words: Sequence[str],
    scale: float = 1.0,
    word_penalty: float = 0.0,
    silence: bool = True,
) -> nx.MultiDiGraph:
    """A back-off n-gram language model as a grammar over ``words`` (Kaldi's G).

    One junction per history the model lists (up to ``order - 1`` tokens; the empty history
    holds the unigrams); each listed n-gram ``h w`` of a word is an edge from ``h`` to the
    longest listed history that ends ``h w``, weighed by its log-probability; each history
    ``h`` has an epsilon edge (unit ``None``) to ``h`` without its oldest token, weighed by
    its back-off weight, and the final weight ``log P(</s> | h)`` by the back-off rule (0
    everywhere for a model without ``</s>``: a sentence may then end anywhere). A
    path starts at the history ``<s>`` (the empty history of a unigram model). So every word
    sequence gets its model log-probability on the path that takes listed n-grams where they
    exist (the back-off edges also offer other paths, as in Kaldi's G). Tokens outside
    ``words`` (``<unk>`` unless listed there) are left out, with the n-grams that hold them.

    Args:
        lm: The model (`hybrid.ctc.lm.read_arpa` reads one from an ARPA file).
        words: The vocabulary: edge units are indices into it.
        scale: Multiplies every log-probability and back-off weight (the language model
            weight).
        word_penalty: Log weight added per word.
        silence: Allow silence between words, before and after (a silence loop on every
            junction).

    Raises:
        ValueError: A word the model has no unigram for, or an n-gram whose history the
            model does not list (a missing back-off), each named.
    """
    if not words:
        raise ValueError("words must name at least one word")
    unigrams = {gram for gram, _, _ in lm.ngrams(1)}
    missing = [word for word in words if (word,) not in unigrams]
    if missing:
        raise ValueError(f"the language model has no unigram for the words {missing[:10]}")
    index = {word: i for i, word in enumerate(words)}

    def known(tokens: tuple[str, ...]) -> bool:
        return all(token in index or token == BOS for token in tokens)

    histories = {(): 0.0}
    for n in range(1, lm.order):
        histories |= {g: bo for g, _, bo in lm.ngrams(n) if g[-1] != EOS and known(g)}

    def after(gram: tuple[str, ...]) -> tuple[str, ...]:
        """The longest listed history that ends ``gram``."""
        state = gram[len(gram) - lm.context_size :] if lm.context_size else ()
        while state not in histories:
            state = state[1:]
        return state

    def listed(history: tuple[str, ...], what: str) -> None:
        if history not in histories:
            raise ValueError(
                f"the language model lists the {what} but not its history "
                f"{' '.join(history)!r} (a missing back-off: an ARPA model must list the "
                "history of every n-gram)"
            )

    g = nx.MultiDiGraph()
    g.add_nodes_from(histories)
    for history, backoff in histories.items():
        if history:
            listed(history[1:], f"{len(history)}-gram {' '.join(history)!r}")
            g.add_edge(history, history[1:], unit=None, weight=scale * backoff)
        if silence:
            g.add_edge(history, history, unit=SILENCE)
    for n in range(1, lm.order + 1):
        for gram, log_prob, _ in lm.ngrams(n):
            if gram[-1] in index and known(gram[:-1]):
                listed(gram[:-1], f"{n}-gram {' '.join(gram)!r}")
                weight = scale * log_prob + word_penalty
                g.add_edge(gram[:-1], after(gram), unit=index[gram[-1]], weight=weight)
    if lm.token_id(EOS) is None:
        ends = [0.0] * len(histories)
    else:
        contexts = torch.tensor(
            [[-1] * (lm.context_size - len(h)) + [lm.token_id(t) for t in h] for h in histories]
        ).reshape(len(histories), lm.context_size)
        ends = lm.score(contexts, torch.full((len(histories),), lm.token_id(EOS))).tolist()
    for history, end in zip(histories, ends, strict=True):
        g.nodes[history]["final"] = scale * end
    g.nodes[after((BOS,)) if lm.token_id(BOS) is not None else ()]["start"] = 0.0
    return g


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
