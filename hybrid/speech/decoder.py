"""Decoding and forced alignment of utterances with frame scores over a topology's pdfs.

Frame scores are per utterance ``(T_i, P)`` log-likelihoods (a GMM's) or scaled
log-likelihoods (a network's posteriors with the priors divided out), ``P`` =
``topology.num_pdfs``. `decode` runs one decoding graph over a batch; `align` builds each
utterance's transcript graph and returns the best pdf per frame (the training targets of a
hybrid model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..structured import Graph, graph_viterbi
from .features import pad_features
from .topology import PhoneTopology, Topology, decoding_graph, transcript_grammar

__all__ = ["align", "decode", "frame_scores", "phone_segments"]


def decode(
    scores: Sequence[Tensor], graph: Graph, batch_size: int = 64, beam: float | None = None
) -> list[tuple[int, ...]]:
    """The word sequence of the best path of each utterance through ``graph``.

    Args:
        scores: Per utterance ``(T_i, P)`` frame scores.
        graph: A decoding graph whose labels are word indices (`decoding_graph`).
        batch_size: Utterances decoded together.
        beam: Optional beam for pruned decoding.
    """
    words: list[tuple[int, ...]] = []
    for begin in range(0, len(scores), batch_size):
        padded, lengths = pad_features(list(scores[begin : begin + batch_size]))
        path = graph_viterbi(padded, graph, lengths, beam=beam)
        for labels, count in zip(path.labels, path.label_lengths, strict=True):
            words.append(tuple(labels[: int(count)].tolist()))
    return words


def align(
    scores: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    topology: Topology | PhoneTopology,
    self_loop: Tensor | None = None,
) -> list[Tensor]:
    """Forced alignment: the best pdf of each frame given each utterance's words.

    Silence may occur before, between and after the words.

    Args:
        scores: Per utterance ``(T_i, P)`` frame scores.
        transcripts: Per utterance the word indices spoken.
        topology: The HMMs of the words (or their phones) and silence.
        self_loop: ``(P,)`` self-loop probabilities (0.5 if ``None``).

    Returns:
        Per utterance ``(T_i,)`` int64 pdf ids.

    Raises:
        ValueError: An utterance too short for its transcript (naming it).
    """
    if len(scores) != len(transcripts):
        raise ValueError(
            f"scores and transcripts differ in length: {len(scores)} vs {len(transcripts)}"
        )
    alignments = []
    for i, (frames, words) in enumerate(zip(scores, transcripts, strict=True)):
        graph = decoding_graph(topology, transcript_grammar(words), self_loop)
        try:
            path = graph_viterbi(frames[None], graph)
        except ValueError as error:
            raise ValueError(
                f"utterance {i} ({len(frames)} frames) cannot be aligned to its "
                f"{len(words)} words: {error}"
            ) from None
        alignments.append(path.emissions[0])
    return alignments


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
    states = pdfs % topology.phone_states
    starts = torch.ones_like(phones, dtype=torch.bool)
    starts[1:] = (phones[1:] != phones[:-1]) | (states[1:] < states[:-1])
    first = starts.nonzero().flatten()
    ends = torch.cat([first[1:], first.new_tensor([len(pdfs)])])
    spoken = phones[first] >= 0
    rows = torch.stack([phones[first], first, ends], 1)[spoken]
    return [tuple(row) for row in rows.tolist()]
