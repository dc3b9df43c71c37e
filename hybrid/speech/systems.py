"""The speech systems of one train/test split, from a flat start to hybrid decoding.

`train_systems` runs, on one split:

1. GMM-HMM: flat start per word, Viterbi training on the split's own training utterances
   (`train_words`); its alignments are the first frame targets.
   Beside it, the monophone GMM-HMM: context-independent phone HMMs spelled into words by a
   pronunciation lexicon (`hybrid.speech.topology.PhoneTopology`; CMUdict by default), from
   Kaldi's equal-alignment flat start (`equal_alignment_start`) and Viterbi training; then
   the tied-triphone GMM-HMM (``gmm-tri``): cross-word triphones whose states a phonetic
   decision tree grown on the monophone alignments ties (`train_triphones`), realigned and
   re-estimated. The hybrid DNN-HMM and BiLSTM-HMM on phone states (``dnn-mono``,
   ``bilstm-mono``) and on tied states (``dnn-tri``, ``bilstm-tri``) are trained on those
   systems' alignments as the whole-word ones are on the GMM-HMM's. Each GMM-HMM keeps its
   state in the work folder after every pass (`hybrid.speech.gmm.GMMCheckpoint`), so a
   killed run resumes every stage, as the engine resumes the networks.
2. Hybrid DNN-HMM and hybrid BiLSTM-HMM: a network trained on the pdf alignments, its
   posteriors divided by the state priors (`hybrid.nn.ScaledPosteriors`), realignment of the
   training data with the hybrid model, a second network trained on the new alignments.
3. The pure-RNN baseline on the same features: a BiLSTM utterance classifier for isolated
   words, or a BiLSTM frame classifier over words and silence whose frame labels are collapsed
   (repeats merged, silence dropped) for strings.
4. CTC: a BiLSTM over the words and a blank trained with the CTC loss on the transcripts
   alone; isolated words are decoded exactly (the word whose one-symbol target is most
   likely, summed over alignments), strings by prefix beam search (beam 10, no LM).

Every HMM system is decoded on the test utterances with the same grammar (one word, a word
loop, a list of phrases or a unigram word loop; the pure RNN and CTC decode without one), and
each returns its hypotheses with training and decoding times.
"""

from __future__ import annotations

import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from ..nn import ScaledPosteriors
from ..training import History
from ..training.randomness import derived_seed
from .acoustic import AcousticConfig, build
from .decoder import align, decode
from .gmm import GMMCheckpoint, train_monophones, train_triphones, train_words
from .graph import decoding_graph
from .lexicon import Lexicon, cmudict_lexicon, read_lexicon
from .metrics import error_rate
from .recognizer import Recognizer, system_dict
from .topology import PhoneTopology, Topology, task_grammar
from .train import AcousticTrainConfig, fit_acoustic

__all__ = [
    "GMMS",
    "HMM_SYSTEMS",
    "PHONE_SYSTEMS",
    "NETWORKS",
    "PENALTIES",
    "SYSTEMS",
    "TRIPHONE_SYSTEMS",
    "SystemSettings",
    "Trained",
    "load_lexicon",
    "train_systems",
]

SYSTEMS = (
    "gmm",
    "gmm-mono",
    "gmm-tri",
    "dnn",
    "dnn-mono",
    "dnn-tri",
    "bilstm",
    "bilstm-mono",
    "bilstm-tri",
    "rnn",
    "ctc",
)

#: The GMM-HMMs (whole words, monophones, tied triphones): they draw nothing from a
#: training seed.
GMMS = ("gmm", "gmm-mono", "gmm-tri")

#: The systems that train networks, and so take a seed.
NETWORKS = ("dnn", "dnn-mono", "dnn-tri", "bilstm", "bilstm-mono", "bilstm-tri", "rnn", "ctc")

#: The systems decoded with an HMM decoding graph (their word penalty is tuned).
HMM_SYSTEMS = GMMS + ("dnn", "dnn-mono", "dnn-tri", "bilstm", "bilstm-mono", "bilstm-tri")

#: The systems over phone HMMs: they need the monophone GMM-HMM's alignments.
PHONE_SYSTEMS = ("gmm-mono", "dnn-mono", "bilstm-mono", "gmm-tri", "dnn-tri", "bilstm-tri")

#: The systems over tied triphone states: they need the triphone GMM-HMM's alignments.
TRIPHONE_SYSTEMS = ("gmm-tri", "dnn-tri", "bilstm-tri")

#: Word insertion penalties (log weights per word) tried on the development strings.
PENALTIES = (0.0, -2.0, -5.0, -10.0, -20.0, -40.0, -80.0)


@dataclass(frozen=True)
class SystemSettings:
    """Model sizes and training of every system.

    Attributes:
        word_states: HMM states per word.
        silence_states: HMM states of silence.
        mixtures: Gaussians per GMM state.
        gmm_iterations: Baum-Welch iterations of the flat start.
        viterbi_iterations: Realign-and-reestimate passes of the GMM-HMM.
        dnn: Sizes of the DNN (its ``input_dim``/``num_outputs`` are set per split).
        bilstm: Sizes of the frame BiLSTM.
        rnn: Sizes of the pure-RNN baseline.
        ctc: Sizes of the BiLSTM trained with CTC.
        training: Optimisation of the networks.
        ctc_training: Optimisation of the CTC network (CTC sits on a plateau, emitting
            only blanks, for many more steps than cross-entropy; a higher learning rate and
            more epochs get it off).
        realign: Realign with the first hybrid model and train a second one.
        acoustic_scale: Weight of scaled log-likelihoods against the graph's log-probabilities.
        prior_scale: Exponent of the state priors divided out.
        word_penalty: Log weight added per word in the digit loop.
        lexicon: The monophone system's pronunciations: ``"cmudict"`` (the ``cmudict``
            package) or the path of a lexicon file (`hybrid.speech.lexicon.read_lexicon`).
        stress: Keep the lexicon's stress marks (``EH1``, ``EH0``: a phone each); by default
            they are dropped, as in the usual 39-phone English set.
        phone_states: States per phone HMM.
        phone_iterations: Realign-and-reestimate passes of the monophone GMM-HMM after its
            flat start, and of the triphone GMM-HMM after its tree.
        tree_leaves: The most tied states of the triphone systems' phonetic decision tree.
        tree_min_count: Fewest training frames of a tied state.
    """

    word_states: int = 8
    silence_states: int = 3
    mixtures: int = 4
    gmm_iterations: int = 10
    viterbi_iterations: int = 2
    dnn: dict = field(
        default_factory=lambda: {"hidden": 256, "layers": 3, "context": 2, "dropout": 0.3}
    )
    bilstm: dict = field(default_factory=lambda: {"hidden": 128, "layers": 2})
    rnn: dict = field(default_factory=lambda: {"hidden": 128, "layers": 2})
    ctc: dict = field(default_factory=lambda: {"hidden": 128, "layers": 2})
    training: AcousticTrainConfig = AcousticTrainConfig()
    ctc_training: AcousticTrainConfig = AcousticTrainConfig(epochs=30, lr=3e-3)
    realign: bool = True
    acoustic_scale: float = 1.0
    prior_scale: float = 1.0
    word_penalty: float = 0.0
    lexicon: str = "cmudict"
    stress: bool = False
    phone_states: int = 3
    phone_iterations: int = 10
    tree_leaves: int = 200
    tree_min_count: float = 50.0


def load_lexicon(settings: SystemSettings) -> Lexicon:
    """The pronunciation lexicon the settings name (without stress marks unless asked)."""
    lexicon = cmudict_lexicon() if settings.lexicon == "cmudict" else read_lexicon(settings.lexicon)
    return lexicon if settings.stress else lexicon.without_stress()


@dataclass
class Trained:
    """One system's outcome on a split.

    Attributes:
        hypotheses: Per test utterance the decoded word indices.
        train_seconds: Training time (all passes).
        decode_seconds: Time to score and decode the test utterances.
        history: Per network pass, its training history (`hybrid.training.History`).
        system: The trained system as plain data (`hybrid.speech.recognizer.system_dict`).
        alignments: Training alignments the system ends with (HMM systems).
    """

    hypotheses: list[tuple[int, ...]]
    train_seconds: float
    decode_seconds: float
    history: list[History] = field(default_factory=list)
    system: dict = field(default_factory=dict)
    alignments: list[Tensor] | None = None


def _timed(fn: Callable):
    begin = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - begin


def train_systems(
    topology: Topology,
    train: tuple[Sequence[Tensor], Sequence[Sequence[int]]],
    test: Sequence[Tensor],
    isolated: tuple[Sequence[Tensor], Sequence[Sequence[int]]],
    grammar: str,
    settings: SystemSettings,
    runs: Sequence[tuple[str, int | None]] | None = None,
    work: Path | None = None,
    progress: bool = False,
    dev: tuple[Sequence[Tensor], Sequence[Sequence[int]]] | None = None,
    select_on_dev: bool = False,
    device: str | torch.device = "cpu",
    save_every: int = 0,
) -> dict[tuple[str, int | None], Trained]:
    """Train the systems of ``runs`` on one split and decode its test utterances.

    Args:
        topology: Word and silence HMMs.
        train: Training features ``(T_i, D)`` and their transcripts.
        test: Test features.
        isolated: Isolated-word recordings (features, one-word transcripts) for the flat start
            (the training recordings themselves for isolated tasks; the recordings the
            training strings were cut from for strings).
        grammar: The decoding grammar as plain data (`hybrid.speech.topology.task_grammar`):
            ``"isolated"`` (one word), ``"loop"`` (any word sequence), phrases, or a unigram
            word loop.
        settings: Sizes and training.
        runs: Which systems to train, with which seed: ``("gmm", None)`` (the GMM-HMM draws
            nothing from a training seed: its one draw, the initial mixture means, has a seed
            of its own) and ``(network, seed)`` for the systems of `NETWORKS`, whose seed
            replaces the ``seed`` of the training settings and draws the initial weights
            (default: every system, the networks with seed 0). The GMM-HMM is trained in
            any case, once: its alignments are the targets of every network.
        work: Folder for training checkpoints (resume), or ``None``.
        progress: Show progress bars.
        dev: Development features and transcripts: with a grammar of word sequences, each
            HMM system's word insertion penalty is the one of `PENALTIES` with the lowest
            error on them.
        select_on_dev: Also choose every network's epoch on ``dev`` (held-out speakers, say;
            its targets are its alignments with the model of the pass), instead of on a tenth
            of the training utterances.
        device: Where the networks train and score frames (the GMM-HMM and the searches
            stay on the CPU); the systems returned hold their weights on the CPU.
        save_every: Also checkpoint every network every this many steps within an epoch.

    Returns:
        ``{(system, seed): outcome}`` for each pair of ``runs``, in that order.
    """
    runs = list(runs) if runs is not None else [("gmm", None)] + [(n, 0) for n in NETWORKS]
    unknown = {name for name, _ in runs} - set(SYSTEMS)
    if unknown:
        raise ValueError(f"systems must be among {SYSTEMS}, got {sorted(unknown)}")
    unseeded = [(n, s) for n, s in runs if (s is None) != (n in GMMS)]
    if unseeded:
        raise ValueError(
            f"runs: expected (name, None) for the GMM-HMMs {GMMS} and a seed for each "
            f"network, got {unseeded}"
        )
    task_grammar(grammar, len(topology.words))  # refuses an unknown form
    if select_on_dev and dev is None:
        raise ValueError("select_on_dev needs dev, the development features and transcripts")
    split = _Training(
        topology,
        list(train[0]),
        list(train[1]),
        grammar,
        {
            "acoustic_scale": settings.acoustic_scale,
            "prior_scale": settings.prior_scale,
            "word_penalty": settings.word_penalty,
        },
        settings,
        work,
        progress,
        torch.device(device),
        save_every,
        (list(dev[0]), list(dev[1])) if select_on_dev else None,
    )
    begin = time.perf_counter() - GMMCheckpoint.spent(split.checkpoint("gmm"))
    emissions, loops, alignments = train_words(
        topology,
        isolated,
        split.features,
        split.transcripts,
        settings.mixtures,
        settings.gmm_iterations,
        settings.viterbi_iterations,
        progress,
        split.checkpoint("gmm"),
    )
    gmm = split.system("gmm", {"emissions": emissions.state_dict(), "self_loop": loops})
    trained = {
        ("gmm", None): Trained(
            [], time.perf_counter() - begin, 0.0, system=gmm, alignments=alignments
        )
    }
    states = {"": (trained["gmm", None], split)}  # the GMM-HMM of each kind of state
    if any(name in PHONE_SYSTEMS for name, _ in runs):
        mono, phones = _monophones(split)
        trained["gmm-mono", None], states["mono"] = mono, (mono, phones)
        if any(name in TRIPHONE_SYSTEMS for name, _ in runs):
            tri, triphones = _triphones(mono, phones)
            trained["gmm-tri", None], states["tri"] = tri, (tri, triphones)
    targets = {
        kind: (gmm.alignments, on.dev_alignments(Recognizer(gmm.system)))
        for kind, (gmm, on) in states.items()
    }
    for name, seed in runs:
        kind, _, state = name.partition("-")
        if kind in ("dnn", "bilstm"):
            gmm, on = states[state]
            loops = gmm.system["model"]["self_loop"]
            on_states = replace(on, seed=seed)
            trained[name, seed] = _hybrid(kind, on_states, *targets[state], loops, name)
        elif name == "rnn":
            trained[name, seed] = _pure_rnn(replace(split, seed=seed), *targets[""])
        elif name == "ctc":
            trained[name, seed] = _ctc(replace(split, seed=seed))
    outcomes = {run: trained[run] for run in runs}
    for (name, _), outcome in outcomes.items():
        recognizer = split.recognizer(outcome.system)
        if grammar != "isolated" and dev is not None and name in HMM_SYSTEMS:
            penalty = _tune_penalty(recognizer, *dev)
            outcome.system["scales"]["word_penalty"] = penalty
            recognizer = split.recognizer(outcome.system)
        decode = partial(recognizer.decode, list(test))
        outcome.hypotheses, outcome.decode_seconds = _timed(decode)
    return outcomes


def _monophones(split: _Training) -> tuple[Trained, _Training]:
    """The monophone GMM-HMM: phone HMMs over the settings' lexicon, Kaldi's equal-alignment
    flat start (initial means drawn with seed 0), then realignment and re-estimation; and the
    split as the systems on its phone states see it (its topology, the utterances it
    aligned).

    A training or development utterance with fewer frames than the states of its words (a
    long word in a short recording, sped up) has no alignment: it is left out, with a warning
    that counts them, as Kaldi's aligner leaves out the utterances it cannot align."""
    settings = split.settings
    begin = time.perf_counter() - GMMCheckpoint.spent(split.checkpoint("gmm-mono"))
    phones = PhoneTopology(
        split.topology.words,
        load_lexicon(settings),
        phone_states=settings.phone_states,
        silence_states=settings.silence_states,
    )
    features, transcripts = _sayable(phones, split.features, split.transcripts, "training")
    dev = None if split.dev is None else _sayable(phones, *split.dev, "development")
    emissions, loops, alignments = train_monophones(
        phones,
        features,
        transcripts,
        settings.mixtures,
        settings.phone_iterations,
        progress=split.progress,
        checkpoint=split.checkpoint("gmm-mono"),
    )
    on_phones = replace(split, topology=phones, features=features, transcripts=transcripts, dev=dev)
    model = {"emissions": emissions.state_dict(), "self_loop": loops}
    system = on_phones.system("gmm", model)
    trained = Trained([], time.perf_counter() - begin, 0.0, system=system, alignments=alignments)
    return trained, on_phones


def _triphones(mono: Trained, phones: _Training) -> tuple[Trained, _Training]:
    """The triphone GMM-HMM (`train_triphones`) from the monophone one: cross-word
    triphones tied by a phonetic decision tree of at most ``settings.tree_leaves`` leaves,
    then realignment and re-estimation; and the split as the systems on its tied states see
    it."""
    settings = phones.settings
    begin = time.perf_counter() - GMMCheckpoint.spent(phones.checkpoint("gmm-tri"))
    topology, tied, loops, alignments = train_triphones(
        phones.topology,
        Recognizer(mono.system).scorer,
        mono.system["model"]["self_loop"],
        phones.features,
        phones.transcripts,
        settings.tree_leaves,
        settings.tree_min_count,
        settings.mixtures,
        settings.phone_iterations,
        progress=phones.progress,
        checkpoint=phones.checkpoint("gmm-tri"),
    )
    on_tied = replace(phones, topology=topology)
    system = on_tied.system("gmm", {"emissions": tied.state_dict(), "self_loop": loops})
    trained = Trained([], time.perf_counter() - begin, 0.0, system=system, alignments=alignments)
    return trained, on_tied


def _sayable(
    phones: PhoneTopology, features: list[Tensor], transcripts: list, what: str
) -> tuple[list[Tensor], list]:
    """The utterances with at least as many frames as the phone states of their words."""
    pairs = list(zip(features, transcripts, strict=True))
    usable = [(f, t) for f, t in pairs if len(f) >= phones.min_frames(t)]
    if len(usable) < len(pairs):
        warnings.warn(
            f"phone systems: {len(pairs) - len(usable)} of {len(pairs)} {what} utterances have "
            "fewer frames than the phone states of their words and are left out",
            stacklevel=3,
        )
    return [f for f, _ in usable], [t for _, t in usable]


@dataclass
class _Training:
    """What every system of one split is trained from; ``seed`` is the networks' (see
    `train_systems`)."""

    topology: Topology
    features: list[Tensor]
    transcripts: list[Sequence[int]]
    grammar: str | dict
    scales: dict
    settings: SystemSettings
    work: Path | None
    progress: bool
    device: torch.device
    save_every: int
    dev: tuple[list[Tensor], list[Sequence[int]]] | None = None
    seed: int | None = None

    def system(
        self, kind: str, model: dict, topology: Topology | PhoneTopology | None = None
    ) -> dict:
        """A system of ``kind`` (`system_dict`) over ``topology`` (default the split's)."""
        return system_dict(kind, topology or self.topology, self.grammar, self.scales, model)

    def checkpoint(self, name: str) -> Path | None:
        """Where the GMM-HMM ``name`` keeps its training state (`hybrid.speech.gmm.
        GMMCheckpoint`): ``<work>/<name>.ckpt``, or ``None`` without a work folder."""
        return None if self.work is None else self.work / f"{name}.ckpt"

    def recognizer(self, system: dict) -> Recognizer:
        """``system`` ready to decode, its network on the training device."""
        return Recognizer(system, self.device)

    def dev_alignments(self, recognizer: Recognizer) -> list[Tensor] | None:
        """The development utterances' forced alignments with an HMM system (``None``
        without a development set to choose epochs on)."""
        if self.dev is None:
            return None
        scores = recognizer.scaled_scores(self.dev[0])
        return align(scores, self.dev[1], self.topology, recognizer.system["model"]["self_loop"])

    def fit(
        self,
        kind: str,
        sizes: dict,
        outputs: int,
        targets,
        name: str,
        dev_targets=None,
        training: AcousticTrainConfig | None = None,
        **options,
    ) -> tuple[nn.Module, History]:
        """A new network of ``kind`` trained on ``targets`` (with ``training``, default the
        settings', its seed replaced by ``seed``, and ``options`` for `fit_acoustic`), its
        epoch chosen on the development utterances' ``dev_targets`` if there are; returns it,
        on the CPU, and its history.

        Its initial weights are drawn from ``seed`` and ``name`` alone (not from torch's
        global random state, which the systems trained before it have moved), so a network
        starts from the same weights whichever systems the process trained before it; its
        checkpoint is ``<work>/<name>-seed<seed>.ckpt``."""
        config = AcousticConfig(
            kind=kind, input_dim=self.features[0].shape[1], num_outputs=outputs, **sizes
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(self.seed, zlib.crc32(name.encode())))
            model = build(config).to(self.device)
        checkpoint = None if self.work is None else self.work / f"{name}-seed{self.seed}.ckpt"
        history = fit_acoustic(
            model,
            self.features,
            targets,
            replace(training or self.settings.training, seed=self.seed),
            checkpoint,
            self.progress,
            valid=None if dev_targets is None else (self.dev[0], dev_targets),
            save_every=self.save_every,
            **options,
        )
        return model.cpu(), history


def _tune_penalty(recognizer: Recognizer, features, transcripts) -> float:
    """The word penalty of `PENALTIES` with the fewest word errors on the development set
    (ties: the smallest penalty)."""
    topology = recognizer.topology
    scores = recognizer.scaled_scores(list(features))
    loops = recognizer.system["model"]["self_loop"]
    best = None
    for penalty in PENALTIES:
        grammar = task_grammar(recognizer.grammar, len(topology.words), penalty)
        graph = decoding_graph(topology, grammar, loops)
        errors = error_rate(transcripts, decode(scores, graph)).errors
        if best is None or errors < best[0]:
            best = (errors, penalty)
    return best[1]


def _hybrid(
    kind: str,
    split: _Training,
    alignments: list[Tensor],
    dev_alignments: list[Tensor] | None,
    loops: Tensor,
    name: str | None = None,
) -> Trained:
    """Train a network of ``kind`` on the alignments over ``split.topology``'s pdfs; if
    ``settings.realign``, realign with it and train again (the development utterances too,
    when epochs are chosen on them). ``name`` (default ``kind``) names its checkpoints."""
    name = name or kind
    sizes = split.settings.dnn if kind == "dnn" else split.settings.bilstm
    passes = 2 if split.settings.realign else 1
    histories = []
    begin = time.perf_counter()
    for number in range(passes):
        model, history = split.fit(
            kind,
            sizes,
            split.topology.num_pdfs,
            alignments,
            f"{name}-pass{number + 1}",
            dev_alignments,
        )
        histories.append(history)
        priors = ScaledPosteriors.from_alignments(torch.cat(alignments), split.topology.num_pdfs)
        system = split.system(
            kind,
            {
                "config": asdict(model.config),
                "weights": model.state_dict(),
                "log_priors": priors.log_priors,
                "self_loop": loops,
            },
        )
        if number + 1 < passes:
            recognizer = split.recognizer(system)
            scores = recognizer.scaled_scores(split.features)
            alignments = align(scores, split.transcripts, split.topology, loops)
            dev_alignments = split.dev_alignments(recognizer)
    return Trained([], time.perf_counter() - begin, 0.0, histories, system, alignments)


def _pure_rnn(
    split: _Training, alignments: list[Tensor], dev_alignments: list[Tensor] | None
) -> Trained:
    """An utterance classifier (isolated words), or a frame classifier over the words and
    silence (class ``num_words``) trained on the GMM alignments mapped to words."""
    num_words = len(split.topology.words)
    begin = time.perf_counter()
    if split.grammar == "isolated":
        targets = torch.tensor([words[0] for words in split.transcripts])
        dev = None if split.dev is None else torch.tensor([words[0] for words in split.dev[1]])
        model, history = split.fit("classifier", split.settings.rnn, num_words, targets, "rnn", dev)
    else:
        word_of = split.topology.pdf_words()
        word_of = word_of.masked_fill(word_of < 0, num_words)
        targets = [word_of[a] for a in alignments]
        dev = None if dev_alignments is None else [word_of[a] for a in dev_alignments]
        model, history = split.fit("bilstm", split.settings.rnn, num_words + 1, targets, "rnn", dev)
    system = split.system("rnn", {"config": asdict(model.config), "weights": model.state_dict()})
    return Trained([], time.perf_counter() - begin, 0.0, [history], system)


def _ctc(split: _Training) -> Trained:
    """A BiLSTM over the words and a blank (symbol ``num_words``) trained with CTC on the
    transcripts alone: no alignment, no HMM."""
    blank = len(split.topology.words)
    begin = time.perf_counter()
    targets = [torch.tensor(words, dtype=torch.long) for words in split.transcripts]
    dev = None
    if split.dev is not None:
        dev = [torch.tensor(words, dtype=torch.long) for words in split.dev[1]]
    model, history = split.fit(
        "bilstm",
        split.settings.ctc,
        blank + 1,
        targets,
        "ctc",
        dev,
        split.settings.ctc_training,
        ctc_blank=blank,
    )
    system = split.system(
        "ctc", {"config": asdict(model.config), "weights": model.state_dict(), "blank": blank}
    )
    return Trained([], time.perf_counter() - begin, 0.0, [history], system)
