"""The generative system: GMM-HMMs per word from a flat start, then Viterbi training.

`flat_start` trains one left-to-right GMM-HMM (`hybrid.nn.HMM` with `hybrid.nn.GMMEmissions`,
Baum-Welch) per word on that word's isolated training recordings, and one for silence on the
edge frames of every recording (the recordings are trimmed, so their edges are the closest
thing to silence they hold), each started Kaldi's way from equal segments, and merges them
into one `GMMEmissions` over all pdfs of a `Topology`. (hmmlearn's ``GMMHMM``, tried first,
let variances collapse to zero and returned NaN on three of the ten FSDD digits; our
emissions floor the variances.) `viterbi_training` then alternates forced alignment of the task's
own training utterances (strings included) with re-estimating every pdf's mixture and
self-loop probability from the frames aligned to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..nn import HMM, GMMEmissions
from .decoder import align, frame_scores
from .features import pad_features
from .topology import SILENCE, Topology, estimate_self_loops

__all__ = ["flat_start", "viterbi_training"]

_EDGE_FRAMES = 3


def _initial_emissions(
    sequences: list[Tensor], states: int, mixtures: int, generator: torch.Generator
) -> GMMEmissions:
    """Kaldi's flat start: cut every sequence into ``states`` equal segments; each state's
    mixture starts from its segments' variance (floored at 1e-3: a state given one frame in
    all starts from the floor), with means at randomly drawn frames."""
    segments: list[list[Tensor]] = [[] for _ in range(states)]
    for sequence in sequences:
        bounds = torch.linspace(0, len(sequence), states + 1).round().long().tolist()
        for i in range(states):
            segments[i].append(sequence[bounds[i] : bounds[i + 1]])
    means, covars = [], []
    for parts in segments:
        frames = torch.cat(parts).double()
        chosen = torch.randint(len(frames), (mixtures,), generator=generator)
        means.append(frames[chosen])
        spread = frames.var(0) if len(frames) > 1 else torch.zeros_like(frames[0])
        covars.append(spread.clamp_min(1e-3).expand(mixtures, -1))
    weights = torch.full((states, mixtures), 1.0 / mixtures, dtype=torch.float64)
    return GMMEmissions(weights, torch.stack(means), torch.stack(covars))


def _train_unit(
    sequences: list[Tensor], states: int, mixtures: int, iterations: int, seed: int
) -> HMM:
    """A left-to-right GMM-HMM trained with Baum-Welch from a flat start (float64)."""
    usable = [s for s in sequences if len(s) >= states]
    if not usable:
        raise ValueError(f"no training sequence has the {states} frames a {states}-state HMM needs")
    generator = torch.Generator().manual_seed(seed)
    model = HMM.left_to_right(_initial_emissions(usable, states, mixtures, generator))
    padded, lengths = pad_features([s.double() for s in usable])
    model.fit(padded, lengths, iterations=iterations)
    return model


def flat_start(
    topology: Topology,
    features: Sequence[Tensor],
    words: Sequence[Sequence[int]],
    mixtures: int = 4,
    iterations: int = 20,
    seed: int = 0,
    progress: bool = False,
) -> tuple[GMMEmissions, Tensor]:
    """GMM emissions for every pdf and self-loop probabilities from isolated recordings.

    Args:
        topology: Word and silence HMM sizes.
        features: Per recording ``(T_i, D)``.
        words: Per recording its single word (recordings of several words are skipped).
        mixtures: Gaussians per state.
        iterations: Baum-Welch iterations of each model.
        seed: Seeds the choice of initial mixture means.
        progress: Show a progress bar over the models.

    Returns:
        ``GMMEmissions`` over ``topology.num_pdfs`` pdfs (float32) and ``(P,)`` self-loops.
    """
    by_word: dict[int, list[Tensor]] = {}
    for frames, spoken in zip(features, words, strict=True):
        if len(spoken) == 1:
            by_word.setdefault(int(spoken[0]), []).append(frames)
    missing = sorted(set(range(len(topology.words))) - set(by_word))
    if missing:
        raise ValueError(f"features hold no isolated recording of words {missing}")
    edges = [f[:_EDGE_FRAMES] for f in features] + [f[-_EDGE_FRAMES:] for f in features]
    units = [(w, topology.word_states, by_word[w]) for w in range(len(topology.words))]
    units.append((SILENCE, topology.silence_states, edges))
    weights, means, covars = [], [], []
    loops = torch.empty(topology.num_pdfs)
    for unit, states, sequences in tqdm(units, desc="gmm-hmm", disable=not progress):
        model = _train_unit(sequences, states, mixtures, iterations, seed)
        emissions = model.emissions
        weights.append(emissions.log_weights.exp())
        means.append(emissions.means)
        covars.append(emissions.covars)
        loops[topology.pdfs(unit)] = torch.diagonal(model.log_transitions.exp()).float()
    emissions = GMMEmissions(
        torch.cat(weights).float(), torch.cat(means).float(), torch.cat(covars).float()
    )
    return emissions, loops.clamp(0.05, 0.95)


def viterbi_training(
    emissions: GMMEmissions,
    self_loop: Tensor,
    topology: Topology,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    iterations: int = 3,
    progress: bool = False,
) -> tuple[list[Tensor], Tensor]:
    """Realign and re-estimate ``iterations`` times, updating ``emissions`` in place.

    Returns:
        The final alignments (per utterance ``(T_i,)`` pdf ids, computed with the updated
        model) and the updated ``(P,)`` self-loop probabilities.
    """
    frames = torch.cat(list(features))
    for _ in tqdm(range(iterations), desc="viterbi training", disable=not progress):
        alignments = align(frame_scores(emissions, features), transcripts, topology, self_loop)
        self_loop = estimate_self_loops(alignments, topology.num_pdfs)
        occupancy = torch.nn.functional.one_hot(torch.cat(alignments), topology.num_pdfs)
        emissions.reestimate(frames, occupancy.to(frames.dtype))
    alignments = align(frame_scores(emissions, features), transcripts, topology, self_loop)
    return alignments, self_loop
