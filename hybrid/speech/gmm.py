"""The generative systems: GMM-HMMs per word or per phone from a flat start, then Viterbi
training.

`flat_start` trains one left-to-right GMM-HMM (`hybrid.nn.HMM` with `hybrid.nn.GMMEmissions`,
Baum-Welch) per word on that word's training recordings (a recording of ``n`` words is cut
into its ``n`` runs of speech), and one for silence on the edge frames of every recording
(FSDD's recordings are trimmed, so their edges are the closest thing to silence they hold)
and the frames between the words, each started Kaldi's way from equal segments, and merges them
into one `GMMEmissions` over all pdfs of a `Topology`. (hmmlearn's ``GMMHMM``, tried first,
let variances collapse to zero and returned NaN on three of the ten FSDD digits; our
emissions floor the variances.) `viterbi_training` then alternates forced alignment of the task's
own training utterances (strings included) with re-estimating every pdf's mixture and
self-loop probability from the frames aligned to it. Over phones (a `PhoneTopology`),
`equal_alignment_start` is Kaldi's monophone flat start from equal segments of each word's
phone states, and `train_monophones` follows it with Viterbi training; `train_triphones`
grows a phonetic decision tree on the monophone alignments and trains its tied triphone
states the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..nn import HMM, GMMEmissions
from .decoder import align, forced_alignment, frame_scores, phones_in_context
from .features import pad_features
from .topology import SILENCE, PhoneTopology, Topology, estimate_self_loops
from .tree import context_statistics, grow_tree, phonetic_questions

__all__ = [
    "equal_alignment_start",
    "flat_start",
    "train_monophones",
    "train_triphones",
    "viterbi_training",
]

_EDGE_FRAMES = 3
_CLUSTER_ITERATIONS = 10


def _initial_emissions(
    sequences: list[Tensor], states: int, mixtures: int, generator: torch.Generator
) -> GMMEmissions:
    """Kaldi's flat start: cut every sequence into ``states`` equal segments, each state's
    mixture started from its segments' frames (`_mixtures_from`)."""
    segments: list[list[Tensor]] = [[] for _ in range(states)]
    for sequence in sequences:
        for state, part in enumerate(_equal_parts(sequence, states)):
            segments[state].append(part)
    return _mixtures_from([torch.cat(parts) for parts in segments], mixtures, generator)


def _equal_parts(frames: Tensor, count: int) -> list[Tensor]:
    """``frames`` cut into ``count`` consecutive parts of equal length (rounded)."""
    bounds = torch.linspace(0, len(frames), count + 1).round().long().tolist()
    return [frames[begin:end] for begin, end in zip(bounds[:-1], bounds[1:], strict=True)]


def _mixtures_from(frames: list[Tensor], mixtures: int, generator: torch.Generator) -> GMMEmissions:
    """One mixture per entry of ``frames`` (``(N_k, D)`` each, N_k >= 1), float64: means at
    randomly drawn frames, every component's variance that of all the frames (floored at
    1e-3: a state given one frame starts from the floor), equal weights."""
    means, covars = [], []
    for given in frames:
        given = given.double()
        chosen = torch.randint(len(given), (mixtures,), generator=generator)
        means.append(given[chosen])
        spread = given.var(0) if len(given) > 1 else torch.zeros_like(given[0])
        covars.append(spread.clamp_min(1e-3).expand(mixtures, -1))
    weights = torch.full((len(frames), mixtures), 1.0 / mixtures, dtype=torch.float64)
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


def _speech_frames(frames: Tensor) -> Tensor:
    """``(T,)`` bool: which frames are speech, by two-means clustering of the first feature
    (the log energy of MFCCs, the lowest band of filterbanks), the silence centre started at
    the edge frames' and the speech centre at the loudest frame, then a majority vote over
    5 frames."""
    energy = frames[:, 0]
    silence = torch.cat([energy[:_EDGE_FRAMES], energy[-_EDGE_FRAMES:]]).mean()
    loud = energy.max()
    for _ in range(_CLUSTER_ITERATIONS):
        speech = (energy - loud).abs() < (energy - silence).abs()
        if speech.all() or not speech.any():
            return speech
        silence, loud = energy[~speech].mean(), energy[speech].mean()
    votes = torch.nn.functional.pad(speech.float()[None, None], (2, 2), mode="replicate")
    return votes.unfold(-1, 5, 1)[0, 0].mean(-1) > 0.5


def _word_segments(frames: Tensor, count: int) -> tuple[list[Tensor], list[Tensor]]:
    """A recording of ``count`` words cut into its words' frames and the silences between.

    One word: the whole recording, no silence. Several: the runs of speech frames
    (`_speech_frames`), the two closest merged until there are ``count``, each a word, and
    the frames between them silence; with fewer runs than words, the span from the first
    speech frame to the last cut into ``count`` equal parts (Kaldi's equal alignment).
    """
    if count == 1:
        return [frames], []
    speech = _speech_frames(frames).tolist()
    runs = [[i, i + 1] for i, s in enumerate(speech) if s and (i == 0 or not speech[i - 1])]
    for run in runs:
        while run[1] < len(speech) and speech[run[1]]:
            run[1] += 1
    while len(runs) > count:
        gap = min(range(len(runs) - 1), key=lambda i: runs[i + 1][0] - runs[i][1])
        runs[gap : gap + 2] = [[runs[gap][0], runs[gap + 1][1]]]
    if len(runs) < count:
        first, last = (runs[0][0], runs[-1][1]) if runs else (0, len(frames))
        bounds = torch.linspace(first, last, count + 1).round().long().tolist()
        runs = [[bounds[i], bounds[i + 1]] for i in range(count)]
    cuts = [0] + [b for run in runs for b in run] + [len(frames)]
    parts = [frames[begin:end] for begin, end in runs]
    gaps = [frames[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2)]
    return parts, [gap for gap in gaps if len(gap)]


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
        words: Per recording its words; a recording of ``n > 1`` words is cut into its
            runs of speech, run ``i`` taken as a recording of word ``i`` and the frames
            between as silence (`_word_segments`; Viterbi training then moves the
            boundaries).
        mixtures: Gaussians per state.
        iterations: Baum-Welch iterations of each model.
        seed: Seeds the choice of initial mixture means.
        progress: Show a progress bar over the models.

    Returns:
        ``GMMEmissions`` over ``topology.num_pdfs`` pdfs (float32) and ``(P,)`` self-loops.
    """
    by_word: dict[int, list[Tensor]] = {}
    silences = [f[:_EDGE_FRAMES] for f in features] + [f[-_EDGE_FRAMES:] for f in features]
    for frames, spoken in zip(features, words, strict=True):
        parts, gaps = _word_segments(frames, len(spoken))
        silences += gaps
        for part, word in zip(parts, spoken, strict=True):
            by_word.setdefault(int(word), []).append(part)
    missing = [topology.words[w] for w in range(len(topology.words)) if w not in by_word]
    if missing:
        raise ValueError(f"features hold no recording of the words {missing}")
    units = [(w, topology.word_states, by_word[w]) for w in range(len(topology.words))]
    units.append((SILENCE, topology.silence_states, silences))
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


def equal_alignment_start(
    topology: PhoneTopology,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    mixtures: int = 1,
    seed: int = 0,
) -> GMMEmissions:
    """The monophone flat start: GMM emissions for every pdf of a phone topology from equal
    alignments.

    Each utterance is cut into its words and the silences between them as `flat_start` cuts
    them (`_word_segments`: runs of speech found by energy), and its edge frames are taken
    as silence too; each word's frames are cut into equal segments over the states of its
    pronunciation, one drawn at random where it has several (Kaldi's equal alignment takes a
    random path of the utterance's graph), each silence's over the silence states
    (a piece shorter than its states is left out). Every pdf's mixture starts from the
    frames of all its segments (`_mixtures_from`); `viterbi_training` then moves the
    boundaries.

    Args:
        topology: The phone and silence HMMs and the lexicon.
        features: Per utterance ``(T_i, D)``.
        transcripts: Per utterance its word indices (at least one).
        mixtures: Gaussians per pdf.
        seed: Seeds the choice of pronunciations and of initial means.

    Raises:
        ValueError: A pdf that no utterance reaches (naming its phone): the training
            transcripts must cover every phone of the topology.
    """
    by_pdf: list[list[Tensor]] = [[] for _ in range(topology.num_pdfs)]
    silence = topology.phone_pdfs(SILENCE)
    choices = torch.Generator().manual_seed(seed)

    def said(word: int) -> list[int]:
        """The states of one of the word's pronunciations, drawn at random if it has more."""
        chains = topology.chains(word)
        pick = int(torch.randint(len(chains), (1,), generator=choices)) if len(chains) > 1 else 0
        return chains[pick][0]

    for frames, words in zip(features, transcripts, strict=True):
        parts, gaps = _word_segments(frames, len(words))
        pieces = [(said(int(w)), part) for w, part in zip(words, parts, strict=True)]
        edges = [frames[:_EDGE_FRAMES], frames[-_EDGE_FRAMES:]]
        pieces += [(silence, gap) for gap in [*gaps, *edges]]
        for states, piece in pieces:
            if len(piece) < len(states):
                continue
            for state, part in zip(states, _equal_parts(piece, len(states)), strict=True):
                by_pdf[state].append(part)
    unseen = [pdf for pdf, parts in enumerate(by_pdf) if not parts]
    if unseen:
        phone = int(topology.pdf_phones()[unseen[0]])
        name = "silence" if phone < 0 else f"the phone {topology.phones[phone]!r}"
        raise ValueError(
            f"no training utterance says {name} (pdf {unseen[0]}); the training transcripts "
            "must cover every phone of the topology"
        )
    generator = torch.Generator().manual_seed(seed)
    return _mixtures_from([torch.cat(parts) for parts in by_pdf], mixtures, generator)


def train_monophones(
    topology: PhoneTopology,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    mixtures: int = 4,
    iterations: int = 10,
    progress: bool = False,
) -> tuple[GMMEmissions, Tensor, list[Tensor]]:
    """The monophone GMM-HMM: `equal_alignment_start`, then ``iterations`` passes of
    `viterbi_training` from self-loop probabilities of 0.5.

    Returns:
        The emissions, the ``(P,)`` self-loop probabilities and the final alignments.
    """
    emissions = equal_alignment_start(topology, features, transcripts, mixtures)
    loops = torch.full((topology.num_pdfs,), 0.5)
    alignments, loops = viterbi_training(
        emissions, loops, topology, features, transcripts, iterations, progress
    )
    return emissions, loops, alignments


def train_triphones(
    monophones: PhoneTopology,
    emissions: GMMEmissions,
    self_loop: Tensor,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    max_leaves: int,
    min_count: float = 50.0,
    mixtures: int = 4,
    iterations: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> tuple[PhoneTopology, GMMEmissions, Tensor, list[Tensor]]:
    """The context-dependent GMM-HMM: word-internal triphones whose states a phonetic
    decision tree ties, from a monophone system (Kaldi's ``train_deltas.sh``).

    The monophone model aligns the training utterances; the frames of each triphone state
    (`hybrid.speech.decoder.phones_in_context`) are the statistics the tree is grown on
    (`hybrid.speech.tree.grow_tree`, questions `phonetic_questions`); each tied state's
    mixture starts from the frames the monophone alignment gives it, silence's from silence's,
    and ``iterations`` passes of `viterbi_training` follow.

    Args:
        monophones: The context-independent topology (a tree without splits).
        emissions: Its trained GMMs; ``self_loop`` its ``(P,)`` self-loop probabilities.
        features: Per utterance ``(T_i, D)``; ``transcripts`` its word indices.
        max_leaves: The most tied states; ``min_count``: fewest frames per tied state.
        mixtures: Gaussians per tied state.
        seed: Seeds the choice of initial means.

    Returns:
        The triphone topology, its emissions, its ``(P,)`` self-loop probabilities and the
        final alignments.
    """
    scores = frame_scores(emissions, features)
    alignments = forced_alignment(scores, transcripts, monophones, self_loop)
    said = [phones_in_context(a, monophones) for a in alignments]
    states = [monophones.pdf_states()[a.pdfs] for a in alignments]
    statistics = context_statistics(features, said, states)
    questions = phonetic_questions(monophones.phones)
    tree = grow_tree(
        statistics, monophones.phones, monophones.phone_states, questions, max_leaves, min_count
    )
    triphones = PhoneTopology(
        monophones.words,
        monophones.lexicon,
        monophones.phones,
        monophones.phone_states,
        monophones.silence_states,
        tree,
    )
    targets = []
    for alignment, phones, state in zip(alignments, said, states, strict=True):
        pdfs = alignment.pdfs + (tree.num_leaves - monophones.tree.num_leaves)  # silence's
        for phone, left, right, first, end in phones:
            chain = [tree.pdf(phone, s, left, right) for s in range(monophones.phone_states)]
            pdfs[first:end] = torch.tensor(chain)[state[first:end]]
        targets.append(pdfs)
    targets = torch.cat(targets)
    order = torch.argsort(targets, stable=True)
    counts = torch.bincount(targets, minlength=triphones.num_pdfs).tolist()
    by_pdf = torch.split(torch.cat(list(features))[order], counts)
    generator = torch.Generator().manual_seed(seed)
    tied = _mixtures_from(list(by_pdf), mixtures, generator)
    loops = torch.full((triphones.num_pdfs,), 0.5)
    alignments, loops = viterbi_training(
        tied, loops, triphones, features, transcripts, iterations, progress
    )
    return triphones, tied, loops, alignments


def viterbi_training(
    emissions: GMMEmissions,
    self_loop: Tensor,
    topology: Topology | PhoneTopology,
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
        emissions.reestimate_aligned(frames, torch.cat(alignments))
    alignments = align(frame_scores(emissions, features), transcripts, topology, self_loop)
    return alignments, self_loop
