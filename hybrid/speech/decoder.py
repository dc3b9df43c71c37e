"""Decoding and forced alignment of utterances with frame scores over a topology's pdfs.

Frame scores are per utterance ``(T_i, P)`` log-likelihoods (a GMM's) or scaled
log-likelihoods (a network's posteriors with the priors divided out), ``P`` =
``topology.num_pdfs``. `decode` runs one decoding graph over a batch (`decode_paths` also
returns each best path); `forced_alignment` builds each utterance's transcript graph and
returns its best path, `align` the best pdf per frame (the training targets of a hybrid
model). A path (`Alignment`) gives its words' frames (`word_spans`), its phones' frames
(`phone_segments`) and, with their neighbours in the word, the context-dependent phones a
decision tree is grown on (`phones_in_context`); `boundary_time` turns a frame boundary into
seconds.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ..structured import Graph, GraphPath, graph_viterbi
from .features import pad_features
from .graph import DecodingGraph, decoding_graph
from .topology import SILENCE, PhoneTopology, Topology, transcript_grammar
from .tree import WORD_EDGE, word_contexts

__all__ = [
    "FRAME_SHIFT",
    "Alignment",
    "align",
    "boundary_time",
    "decode",
    "decode_paths",
    "forced_alignment",
    "frame_scores",
    "label_sequences",
    "phone_segments",
    "phones_in_context",
    "word_spans",
]

#: Seconds between the starts of consecutive frames (every feature type: 25 ms windows every
#: 10 ms).
FRAME_SHIFT = 0.010
_FIRST_BOUNDARY = 0.0075


class Alignment(NamedTuple):
    """One utterance's best path through a decoding graph (a forced alignment or a
    decoding).

    Attributes:
        pdfs: ``(T,)`` int64 the pdf of each frame.
        word_starts: ``(T,)`` bool: a word begins at the frame.
    """

    pdfs: Tensor
    word_starts: Tensor


def decode(
    scores: Sequence[Tensor], graph: Graph, batch_size: int = 64, beam: float | None = None
) -> list[tuple[int, ...]]:
    """The word sequence of the best path of each utterance through ``graph``.

    Args:
        scores: Per utterance ``(T_i, P)`` frame scores.
        graph: A decoding graph whose labels are word indices (`decoding_graph`).
        batch_size: Utterances decoded together.
        beam: Optional beam for pruned decoding. Where it leaves an utterance no path
            that can end (cross-word copies waiting for a next word, say), that utterance is
            searched again exactly (`decode_paths`).
    """
    return [words for words, _ in decode_paths(scores, graph, batch_size, beam)]


def decode_paths(
    scores: Sequence[Tensor], graph: Graph, batch_size: int = 64, beam: float | None = None
) -> list[tuple[tuple[int, ...], Alignment]]:
    """`decode` with the best path of each utterance: ``(words, alignment)``, the alignment's
    ``word_starts`` marking where each of ``words`` begins (`word_spans`).

    With a ``beam``, a batch in which the beam left some utterance no path that can end is
    decoded again one utterance at a time, and such an utterance searched exactly.

    Raises:
        ValueError: ``beam`` is not a positive number, or an utterance has no path through
            the graph at all (with a beam, naming it ``scores[i]``; without, the engine's
            error counts within the batch).
    """
    if beam is not None and not beam > 0:
        raise ValueError(f"beam must be a positive number or None, got {beam}")
    decoded = []
    for begin in range(0, len(scores), batch_size):
        chunk = list(scores[begin : begin + batch_size])
        try:
            decoded += _best_paths(chunk, graph, beam)
        except ValueError:
            if beam is None:
                raise
            for i, one in enumerate(chunk):  # alone, the others keep their beam
                try:
                    decoded += _best_paths([one], graph, beam)
                except ValueError:  # the beam lost every path that can end
                    try:
                        decoded += _best_paths([one], graph, None)
                    except ValueError as error:
                        raise ValueError(f"scores[{begin + i}]: {error}") from None
    return decoded


def _best_paths(
    chunk: list[Tensor], graph: Graph, beam: float | None
) -> list[tuple[tuple[int, ...], Alignment]]:
    """The words and `Alignment` of the best path of each of ``chunk``, searched together."""
    padded, lengths = pad_features(chunk)
    path = graph_viterbi(padded, graph, lengths, beam=beam)
    words = label_sequences(path.labels, path.label_lengths)
    return list(zip(words, _alignments(path, graph, lengths), strict=True))


def label_sequences(labels: Tensor, counts: Tensor) -> list[tuple[int, ...]]:
    """Padded label rows ``(B, L)`` with their counts ``(B,)`` as tuples."""
    return [tuple(row[:n].tolist()) for row, n in zip(labels, counts.tolist(), strict=True)]


def _alignments(path: GraphPath, graph: Graph, lengths: Tensor) -> list[Alignment]:
    """Each row of a batch's best paths as an `Alignment` of its own length: a word starts
    where the path enters the first state of a word (`DecodingGraph.word_begins`) from
    another state or through an arc that writes a word; in a plain `Graph`, where it takes
    an arc that writes a label."""
    arcs = path.arcs.clamp_min(0)
    writes = graph.label[arcs] >= 0
    starts = writes
    if isinstance(graph, DecodingGraph) and graph.word_begins is not None:
        states = graph.dst[arcs]
        entered = torch.ones_like(writes)
        entered[:, 1:] = states[:, 1:] != states[:, :-1]
        starts = graph.word_begins[states] & (entered | writes)
    return [
        Alignment(path.emissions[b, :frames], starts[b, :frames])
        for b, frames in enumerate(lengths.tolist())
    ]


def forced_alignment(
    scores: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    topology: Topology | PhoneTopology,
    self_loop: Tensor | None = None,
    batch_size: int = 64,
) -> list[Alignment]:
    """Forced alignment: the best path of each utterance given its words, silence allowed
    before, between and after them. The utterances of one transcript share its graph and are
    aligned ``batch_size`` at a time.

    Args:
        scores: Per utterance ``(T_i, P)`` frame scores.
        transcripts: Per utterance the word indices spoken.
        topology: The HMMs of the words (or their phones) and silence.
        self_loop: ``(P,)`` self-loop probabilities (0.5 if ``None``).

    Raises:
        ValueError: ``scores`` and ``transcripts`` of different lengths, or an utterance too
            short for its transcript (naming it).
    """
    if len(scores) != len(transcripts):
        raise ValueError(
            f"scores and transcripts differ in length: {len(scores)} vs {len(transcripts)}"
        )
    by_transcript: dict[tuple[int, ...], list[int]] = {}
    for i, words in enumerate(transcripts):
        by_transcript.setdefault(tuple(int(w) for w in words), []).append(i)
    alignments: list[Alignment | None] = [None] * len(scores)
    for words, indices in by_transcript.items():
        # a transcript's words share no prefixes worth determinizing
        graph = decoding_graph(topology, transcript_grammar(words), self_loop, determinize=False)
        for begin in range(0, len(indices), batch_size):
            batch = indices[begin : begin + batch_size]
            padded, lengths = pad_features([scores[i] for i in batch])
            try:
                path = graph_viterbi(padded, graph, lengths)
            except ValueError:
                short = next(i for i in batch if _unalignable(scores[i], graph))
                raise ValueError(
                    f"utterance {short} ({len(scores[short])} frames) cannot be aligned to its "
                    f"{len(words)} words: no path of its length through them"
                ) from None
            for i, alignment in zip(batch, _alignments(path, graph, lengths), strict=True):
                alignments[i] = alignment
    return alignments


def _unalignable(scores: Tensor, graph: Graph) -> bool:
    """Whether one utterance's ``(T, P)`` scores have no path through ``graph``."""
    try:
        graph_viterbi(scores[None], graph)
    except ValueError:
        return True
    return False


def align(
    scores: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    topology: Topology | PhoneTopology,
    self_loop: Tensor | None = None,
) -> list[Tensor]:
    """The pdfs of `forced_alignment`: per utterance ``(T_i,)`` int64, the best pdf of each
    frame given its words (the training targets of a hybrid model)."""
    return [a.pdfs for a in forced_alignment(scores, transcripts, topology, self_loop)]


def frame_scores(
    emissions: torch.nn.Module, features: Sequence[Tensor], batch_size: int = 64
) -> list[Tensor]:
    """Per utterance ``(T_i, P)`` scores of an emission module (a GMM's log-likelihoods, say)
    over features ``(T_i, D)``, computed in padded batches."""
    out: list[Tensor] = []
    with torch.no_grad():
        for begin in range(0, len(features), batch_size):
            chunk = list(features[begin : begin + batch_size])
            padded, _ = pad_features(chunk)
            scores = emissions(padded)
            out += [scores[b, : len(f)] for b, f in enumerate(chunk)]
    return out


def boundary_time(frame: int) -> float:
    """The time (s) of the boundary before ``frame``: 0 before the first frame, else halfway
    between the centres of frames ``frame - 1`` and ``frame`` (25 ms windows every 10 ms)."""
    return frame * FRAME_SHIFT + _FIRST_BOUNDARY if frame else 0.0


def word_spans(alignment: Alignment, topology: Topology | PhoneTopology) -> list[tuple[int, int]]:
    """``(first frame, end frame)`` of each word of an alignment, in order: a word starts at
    a marked frame and ends before the next word or the first silence frame after it."""
    silence = torch.zeros(topology.num_pdfs, dtype=torch.bool)
    silence[topology.chains(SILENCE)[0][0]] = True
    breaks = (alignment.word_starts | silence[alignment.pdfs]).nonzero().flatten().tolist()
    breaks.append(len(alignment.pdfs))
    starts = alignment.word_starts.nonzero().flatten().tolist()
    return [(first, breaks[bisect.bisect_right(breaks, first)]) for first in starts]


def phone_segments(pdfs: Tensor, topology: PhoneTopology) -> list[tuple[int, int, int]]:
    """The phones of a frame alignment: ``(phone index, first frame, end frame)`` for each
    phone HMM passed through, in order, silence left out.

    A phone starts where the alignment enters another phone's pdfs, or goes back to an
    earlier state of the same phone (its HMMs are left to right: the same phone again).

    Args:
        pdfs: ``(T,)`` pdf ids (`align`).
        topology: The phone HMMs the pdfs belong to.
    """
    phones = topology.pdf_phones()[pdfs]
    states = topology.pdf_states()[pdfs]
    starts = torch.ones_like(phones, dtype=torch.bool)
    starts[1:] = (phones[1:] != phones[:-1]) | (states[1:] <= states[:-1]) & (pdfs[1:] != pdfs[:-1])
    first = starts.nonzero().flatten()
    ends = torch.cat([first[1:], first.new_tensor([len(pdfs)])])
    spoken = phones[first] >= 0
    rows = torch.stack([phones[first], first, ends], 1)[spoken]
    return [tuple(row) for row in rows.tolist()]


def phones_in_context(
    alignment: Alignment, topology: PhoneTopology, cross_word: bool = False
) -> list[tuple[str, str, str, int, int]]:
    """The phones of a forced alignment with their neighbours: ``(phone, left, right, first
    frame, end frame)``, silence left out.

    Word-internal (default), the neighbours are those in the phone's word
    (`hybrid.speech.tree.word_contexts`: `WORD_EDGE` at the word's edges); with
    ``cross_word``, the phones aligned just before and after it, whichever word they belong
    to, and `WORD_EDGE` next to silence or the utterance's edges."""
    segments = phone_segments(alignment.pdfs, topology)
    names = [topology.phones[phone] for phone, _, _ in segments]
    if cross_word:
        said = []
        for k, (_, first, end) in enumerate(segments):
            joined = k > 0 and segments[k - 1][2] == first
            left = names[k - 1] if joined else WORD_EDGE
            joined = k + 1 < len(segments) and segments[k + 1][1] == end
            right = names[k + 1] if joined else WORD_EDGE
            said.append((names[k], left, right, first, end))
        return said
    word_of = alignment.word_starts.cumsum(0).tolist()
    said = []
    # the segments come in order, so each word's are consecutive
    for _, group in itertools.groupby(range(len(segments)), lambda k: word_of[segments[k][1]]):
        inside = list(group)
        contexts = word_contexts([names[k] for k in inside])
        for k, (left, right) in zip(inside, contexts, strict=True):
            said.append((names[k], left, right, segments[k][1], segments[k][2]))
    return said
