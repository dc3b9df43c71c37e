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
states the same way. `train_words`, `train_monophones` and `train_triphones` are the three
stages; each keeps its state after its start and after every pass in a `GMMCheckpoint`,
from which a killed stage resumes exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..files import save_atomic
from ..nn import HMM, GMMEmissions
from ..saved import check_same_setup, load_saved, stamp
from .decoder import align, forced_alignment, frame_scores, phones_in_context
from .features import pad_features
from .topology import SILENCE, PhoneTopology, Topology, estimate_self_loops, topology_from_dict
from .tree import context_statistics, grow_tree, phonetic_questions

__all__ = [
    "GMMCheckpoint",
    "equal_alignment_start",
    "flat_start",
    "train_monophones",
    "train_triphones",
    "train_words",
    "viterbi_training",
]

_EDGE_FRAMES = 3
_CLUSTER_ITERATIONS = 10


class GMMCheckpoint:
    """Where one stage of GMM-HMM training (whole words, monophones, triphones) keeps its
    state, and the settings it must be resumed with.

    The state is saved atomically after the stage's start (flat start; the triphones' tree
    and first mixtures) and after every pass of `viterbi_training`: the topology, the
    emissions, the self-loop probabilities, the passes done and the seconds spent on them
    over every run. The stage run again with the same checkpoint skips its start and
    continues after its last saved pass; as the passes draw nothing at random, it ends with
    exactly the model of an uninterrupted run.

    Args:
        path: The checkpoint file.
        settings: The stage's settings as plain data (recorded; a resume with others is
            refused, naming them, but ``iterations`` may be raised).
    """

    def __init__(self, path: Path, settings: dict) -> None:
        self.path, self.settings = Path(path), settings
        self._began, self._before = time.perf_counter(), 0.0

    @staticmethod
    def spent(path: Path | None) -> float:
        """The seconds that runs before this one spent on the stage checkpointed at ``path``
        (by its last save; 0 without a checkpoint), to add to this run's time."""
        if path is None or not Path(path).exists():
            return 0.0
        return float(load_saved(path, "gmm checkpoint")["seconds"])

    def resume(
        self, start: Callable[[], tuple[Topology | PhoneTopology, GMMEmissions, Tensor]]
    ) -> tuple[Topology | PhoneTopology, GMMEmissions, Tensor, int]:
        """``(topology, emissions, self_loop, passes done)``: the saved state if the file
        exists, else ``start()``'s, saved first with 0 passes.

        Raises:
            ValueError: naming the file, when it is not a GMM-HMM checkpoint (truncated, or
                another file: delete it to start the stage again) or was made with other
                settings.
        """
        self._began = time.perf_counter()
        if not self.path.exists():
            topology, emissions, self_loop = start()
            self.save(topology, emissions, self_loop, 0)
            return topology, emissions, self_loop, 0
        saved = load_saved(self.path, "gmm checkpoint")
        check_same_setup(self.path, saved["settings"], self.settings, may_raise=("iterations",))
        weights = saved["emissions"]
        emissions = GMMEmissions(weights["log_weights"].exp(), weights["means"], weights["covars"])
        emissions.load_state_dict(weights)  # the log weights exactly
        self._before = float(saved["seconds"])
        return topology_from_dict(saved["topology"]), emissions, saved["self_loop"], saved["passes"]

    def save(
        self,
        topology: Topology | PhoneTopology,
        emissions: GMMEmissions,
        self_loop: Tensor,
        passes: int,
    ) -> None:
        """Keep the state after ``passes`` passes of Viterbi training."""
        state = {
            **stamp("gmm checkpoint"),
            "settings": self.settings,
            "topology": topology.to_dict(),
            "emissions": {k: v.detach().clone() for k, v in emissions.state_dict().items()},
            "self_loop": self_loop,
            "passes": passes,
            "seconds": self._before + time.perf_counter() - self._began,
        }
        save_atomic(state, self.path)


def _stage(
    start: Callable[[], tuple[Topology | PhoneTopology, GMMEmissions, Tensor]],
    settings: dict,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    progress: bool,
    checkpoint: Path | None,
) -> tuple[Topology | PhoneTopology, GMMEmissions, Tensor, list[Tensor]]:
    """One stage of GMM-HMM training: ``start()`` (or the state its ``checkpoint`` kept,
    `GMMCheckpoint`), then the passes of `viterbi_training` left of
    ``settings["iterations"]``. Returns the topology, the emissions, the self-loop
    probabilities and the final alignments."""
    stage = None if checkpoint is None else GMMCheckpoint(checkpoint, settings)
    topology, emissions, loops, done = (*start(), 0) if stage is None else stage.resume(start)
    alignments, loops = viterbi_training(
        emissions,
        loops,
        topology,
        features,
        transcripts,
        settings["iterations"],
        progress,
        stage,
        done,
    )
    return topology, emissions, loops, alignments


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


def train_words(
    topology: Topology,
    isolated: tuple[Sequence[Tensor], Sequence[Sequence[int]]],
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    mixtures: int = 4,
    flat_iterations: int = 20,
    iterations: int = 3,
    progress: bool = False,
    checkpoint: Path | None = None,
) -> tuple[GMMEmissions, Tensor, list[Tensor]]:
    """The whole-word GMM-HMM: `flat_start` on the ``isolated`` recordings (features and
    their words; ``flat_iterations`` Baum-Welch iterations per model), then ``iterations``
    passes of `viterbi_training` on ``features`` and ``transcripts``.

    Args:
        checkpoint: Where to keep the stage's state (`GMMCheckpoint`), or ``None``.

    Returns:
        The emissions, the ``(P,)`` self-loop probabilities and the final alignments.
    """

    def start() -> tuple[Topology, GMMEmissions, Tensor]:
        return topology, *flat_start(topology, *isolated, mixtures, flat_iterations, 0, progress)

    settings = {
        "stage": "words",
        "topology": topology.to_dict(),
        "mixtures": mixtures,
        "flat_iterations": flat_iterations,
        "iterations": iterations,
    }
    _, emissions, loops, alignments = _stage(
        start, settings, features, transcripts, progress, checkpoint
    )
    return emissions, loops, alignments


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
    checkpoint: Path | None = None,
) -> tuple[GMMEmissions, Tensor, list[Tensor]]:
    """The monophone GMM-HMM: `equal_alignment_start`, then ``iterations`` passes of
    `viterbi_training` from self-loop probabilities of 0.5.

    Args:
        checkpoint: Where to keep the stage's state (`GMMCheckpoint`), or ``None``.

    Returns:
        The emissions, the ``(P,)`` self-loop probabilities and the final alignments.
    """

    def start() -> tuple[PhoneTopology, GMMEmissions, Tensor]:
        emissions = equal_alignment_start(topology, features, transcripts, mixtures)
        return topology, emissions, torch.full((topology.num_pdfs,), 0.5)

    settings = {
        "stage": "monophones",
        "topology": topology.to_dict(),
        "mixtures": mixtures,
        "iterations": iterations,
    }
    _, emissions, loops, alignments = _stage(
        start, settings, features, transcripts, progress, checkpoint
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
    checkpoint: Path | None = None,
    cross_word: bool = True,
) -> tuple[PhoneTopology, GMMEmissions, Tensor, list[Tensor]]:
    """The context-dependent GMM-HMM: triphones whose states a phonetic decision tree ties,
    from a monophone system (Kaldi's ``train_deltas.sh``), with contexts across words (or,
    without ``cross_word``, inside them).

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
        checkpoint: Where to keep the stage's state, the tree included (`GMMCheckpoint`),
            or ``None``.
        cross_word: Contexts across words (the first phone of a word in the context of the
            word before's last phone, ...); else word-internal.

    Returns:
        The triphone topology, its emissions, its ``(P,)`` self-loop probabilities and the
        final alignments.
    """
    settings = {
        "stage": "triphones",
        "monophones": monophones.to_dict(),
        "max_leaves": max_leaves,
        "min_count": min_count,
        "mixtures": mixtures,
        "iterations": iterations,
        "seed": seed,
        "cross_word": cross_word,
    }

    def start() -> tuple[PhoneTopology, GMMEmissions, Tensor]:
        return _tied_start(monophones, emissions, self_loop, features, transcripts, settings)

    return _stage(start, settings, features, transcripts, progress, checkpoint)


def _tied_start(
    monophones: PhoneTopology,
    emissions: GMMEmissions,
    self_loop: Tensor,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    settings: dict,
) -> tuple[PhoneTopology, GMMEmissions, Tensor]:
    """`train_triphones`' start: the monophone alignments, the tree grown on their
    statistics, the tied states' mixtures from the frames the alignments give them, and
    self-loop probabilities of 0.5."""
    scores = frame_scores(emissions, features)
    alignments = forced_alignment(scores, transcripts, monophones, self_loop)
    said = [phones_in_context(a, monophones, settings["cross_word"]) for a in alignments]
    states = [monophones.pdf_states()[a.pdfs] for a in alignments]
    statistics = context_statistics(features, said, states)
    questions = phonetic_questions(monophones.phones)
    tree = grow_tree(
        statistics,
        monophones.phones,
        monophones.phone_states,
        questions,
        settings["max_leaves"],
        settings["min_count"],
    )
    triphones = PhoneTopology(
        monophones.words,
        monophones.lexicon,
        monophones.phones,
        monophones.phone_states,
        monophones.silence_states,
        tree,
        settings["cross_word"],
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
    generator = torch.Generator().manual_seed(settings["seed"])
    tied = _mixtures_from(list(by_pdf), settings["mixtures"], generator)
    return triphones, tied, torch.full((triphones.num_pdfs,), 0.5)


def viterbi_training(
    emissions: GMMEmissions,
    self_loop: Tensor,
    topology: Topology | PhoneTopology,
    features: Sequence[Tensor],
    transcripts: Sequence[Sequence[int]],
    iterations: int = 3,
    progress: bool = False,
    checkpoint: GMMCheckpoint | None = None,
    done: int = 0,
) -> tuple[list[Tensor], Tensor]:
    """Realign and re-estimate ``iterations`` times, updating ``emissions`` in place.

    Args:
        checkpoint: Where the state is saved after every pass (`GMMCheckpoint`), or ``None``.
        done: Passes already made (a resumed stage): ``iterations - done`` are left.

    Returns:
        The final alignments (per utterance ``(T_i,)`` pdf ids, computed with the updated
        model) and the updated ``(P,)`` self-loop probabilities.
    """
    frames = torch.cat(list(features))
    passes = tqdm(
        range(done, iterations),
        desc="viterbi training",
        disable=not progress,
        initial=done,
        total=iterations,
    )
    for n in passes:
        alignments = align(frame_scores(emissions, features), transcripts, topology, self_loop)
        self_loop = estimate_self_loops(alignments, topology.num_pdfs)
        emissions.reestimate_aligned(frames, torch.cat(alignments))
        if checkpoint is not None:
            checkpoint.save(topology, emissions, self_loop, n + 1)
    alignments = align(frame_scores(emissions, features), transcripts, topology, self_loop)
    return alignments, self_loop
