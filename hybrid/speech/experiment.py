"""The speech comparison: GMM-HMM vs hybrid DNN-HMM vs hybrid BiLSTM-HMM vs pure RNN vs CTC.

Four tasks, on spoken digits (FSDD, the embedded synthetic corpus) or any corpus of the
user's (`hybrid.speech.datasets`):

- ``isolated``: one word per recording, the split given (FSDD's official one: takes 0-4 of
  every speaker are the test set);
- ``speakers``: isolated words, leave one speaker out (every speaker once; mean and per
  speaker);
- ``strings``: connected strings of 2-6 words cut from one speaker's recordings with random
  silences between them (fixed seed), training strings from the training recordings and test
  strings from the test recordings;
- ``continuous``: recordings of several words each (a user's corpus), the split given,
  decoded with a word loop, a phrase grammar or a unigram language model.

A run folder (`hybrid.runs.RunFolder`) receives ``results.json``: one row per task, system,
seed and split (``split``: ``"official"``, or a fold's held-out speaker), merged after each
split under a lock with what other processes sharing the folder wrote, so that an
interrupted run resumes at the next split (its networks from their checkpoints) and no row
is lost; ``results.md`` and the plots, drawn from ``results.json`` alone (`redraw`); the
systems of the official splits under ``models/`` (for ``hybrid recognize``) and training
checkpoints under ``checkpoints/``. A rerun with other settings is refused, but for more
epochs: the folder then records the change (``changes`` in ``results.json``), and the
systems trained for fewer train on from their checkpoints.

A row (`hybrid.runs`) holds the key ``task``, ``system``, ``decoder`` (``None``: each system
decodes its own way), ``seed`` (the networks' training seed; ``None`` for the GMM-HMM, which
draws nothing from it and is trained once per split) and ``split``; ``metrics``
(``error_rate``: word errors over reference words, ``utterance_error_rate``,
``substitutions``, ``deletions``, ``insertions``, ``reference_words``, ``utterance_errors``
and ``decode_seconds``); ``epochs`` (of each network pass; ``None`` for the GMM-HMM),
``seconds`` (training) and ``environment``; and what the table and plots need: ``history``
(per network pass, `hybrid.training.History.to_dict`), ``references`` and ``hypotheses``
(word indices per test utterance) and ``word_penalty``; on the official splits, the rows of
the GMM-HMM and of the first seed of a run also hold ``alignment`` (GMM-HMM and DNN-HMM:
the forced alignment of the first training utterance with its filterbank spectrogram) and,
for CTC on strings, ``posteriors`` (its log-posteriors on the first test string, their
forced alignment and the spectrogram).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from ..ctc.align import forced_align
from ..files import write_text_atomic
from ..runs import RunFolder, environment, row_key
from ..training import History, resolve_device
from ..training.distributed import is_main
from . import alignment, unheard
from .augment import SpecAugment, speed_perturbed
from .corpus import FeatureConfig, Utterance, connected_strings, extract
from .features import fbank
from .metrics import error_rate
from .plots import plot_alignment, plot_confusion, plot_ctc, plot_errors, plot_training
from .recognizer import Recognizer
from .systems import (
    GMMS,
    NETWORKS,
    PHONE_SYSTEMS,
    SYSTEMS,
    SystemSettings,
    Trained,
    load_lexicon,
    train_systems,
)
from .topology import PhoneTopology, Topology
from .train import AcousticTrainConfig, log_posteriors

__all__ = [
    "NAMES",
    "PRIMARY",
    "SYNTHETIC_NOTICE",
    "TASKS",
    "ExperimentSettings",
    "default_settings",
    "load_corpus",
    "redraw",
    "results_table",
    "run_speech",
]

SYNTHETIC_NOTICE = (
    "NOTE: no --data given, so this runs on a small SYNTHETIC corpus of generated 'spoken "
    "digits' (sums of sinusoids, 3 speakers); its figures say nothing about real speech. "
    "Use --corpus fsdd --data ../shared/data for the Free Spoken Digit Dataset."
)

TASKS = ("isolated", "speakers", "strings", "continuous")

#: How each system is named in tables.
NAMES = {
    "gmm": "GMM-HMM",
    "gmm-mono": "GMM-HMM, phones",
    "gmm-tri": "GMM-HMM, tied triphones",
    "dnn": "hybrid DNN-HMM",
    "dnn-mono": "hybrid DNN-HMM, phones",
    "dnn-tri": "hybrid DNN-HMM, tied triphones",
    "bilstm": "hybrid BiLSTM-HMM",
    "bilstm-mono": "hybrid BiLSTM-HMM, phones",
    "bilstm-tri": "hybrid BiLSTM-HMM, tied triphones",
    "rnn": "pure RNN (BiLSTM)",
    "ctc": "CTC (BiLSTM)",
}


#: What `hybrid report` compares first: the word error rate, lower is better.
PRIMARY = ("error_rate", False)

#: The settings a run folder may be asked for again with a larger value (to train on), and
#: the systems trained with each.
_TRAINED_WITH = {
    "systems.training.epochs": tuple(name for name in NETWORKS if name != "ctc"),
    "systems.ctc_training.epochs": ("ctc",),
}


@dataclass(frozen=True)
class ExperimentSettings:
    """Everything that decides the numbers of a run.

    Attributes:
        features: Front end.
        systems: Model sizes and training.
        train_strings: Connected strings built for training.
        test_strings: Connected strings built for testing.
        dev_strings: Strings built from the training recordings (seed ``string_seed + 2``)
            on which each HMM system's word insertion penalty is chosen.
        string_seed: Seed of the strings (the test strings use ``string_seed + 1``).
        speed_factors: Speed perturbation of the training data: every training utterance
            (recordings and strings, flat start included) is also trained on at each of
            these speeds (`speed_perturbed`); test and development data never are.
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    systems: SystemSettings = field(default_factory=SystemSettings)
    train_strings: int = 1000
    test_strings: int = 300
    dev_strings: int = 100
    string_seed: int = 0
    speed_factors: tuple[float, ...] = ()


@dataclass
class _Split:
    task: str
    name: str
    train: list[Utterance]
    test: list[Utterance]
    isolated: list[Utterance]
    grammar: str | dict
    dev: list[Utterance] | None = None
    select_on_dev: bool = False


def _splits(
    task: str,
    train: list[Utterance],
    test: list[Utterance],
    settings: ExperimentSettings,
    dev: list[Utterance] | None,
    grammar: str | dict,
) -> list[_Split]:
    if task in ("isolated", "continuous"):
        return [_Split(task, "official", train, test, train, grammar, dev, dev is not None)]
    if task == "speakers":
        everyone = train + test
        splits = []
        for speaker in sorted({u.speaker for u in everyone}):
            others = [u for u in everyone if u.speaker != speaker]
            held_out = [u for u in everyone if u.speaker == speaker]
            splits.append(_Split(task, speaker, others, held_out, others, "isolated"))
        return splits
    if task == "strings":
        seed = settings.string_seed
        return [
            _Split(
                task,
                "official",
                connected_strings(train, settings.train_strings, seed),
                connected_strings(test, settings.test_strings, seed + 1),
                train,
                "loop",
                connected_strings(train, settings.dev_strings, seed + 2),
            )
        ]
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def run_speech(
    train: list[Utterance],
    test: list[Utterance],
    run_dir: Path,
    tasks: Sequence[str] | None = None,
    systems: Sequence[str] = SYSTEMS,
    settings: ExperimentSettings | None = None,
    corpus: str = "fsdd",
    words: Sequence[str] = (),
    progress: bool = False,
    folds: Sequence[str] | None = None,
    dev: list[Utterance] | None = None,
    grammar: str | dict = "isolated",
    data: dict[str, list[dict[str, str]]] | None = None,
    seeds: Sequence[int] = (0,),
    device: str | torch.device = "cpu",
    save_every: int = 0,
) -> dict:
    """Run ``tasks`` for ``systems`` with each of ``seeds``, write the run folder, return
    ``results.json``'s content.

    Args:
        train: The training recordings (FSDD's official ones: one digit each).
        test: The test recordings.
        run_dir: The run folder.
        tasks: Which of `TASKS` (default: all that fit the recordings).
        systems: Which of `SYSTEMS`.
        settings: Features, models, training and strings (the ``seed`` of its training
            settings is replaced by each of ``seeds``).
        corpus: Recorded in the results (``"fsdd"``, ``"synthetic"``, a corpus's name).
        words: The vocabulary: ``words[i]`` is the word of index ``i`` in transcripts.
        progress: Show progress bars.
        folds: For the ``speakers`` task, only the folds of these held-out speakers
            (``None``: all), so that separate processes can share the folds of one run folder.
        dev: Development recordings (held-out speakers, say) on which the ``isolated`` and
            ``continuous`` tasks choose every network's epoch and, under a grammar of word
            sequences, the word penalty; ``None``: each network holds out a tenth of its
            training recordings.
        grammar: The recordings' decoding grammar (`hybrid.speech.topology.task_grammar`):
            ``"isolated"`` (one word each: the ``isolated``, ``speakers`` and ``strings``
            tasks), else a word loop, phrases or a unigram model (the ``continuous`` task).
        data: The files read, ``{split: [{"path", "sha256"}]}``: recorded, and a run folder
            made from files of other contents is refused.
        seeds: The networks' training seeds, a row each (a seed draws a network's initial
            weights, its held-out tenth, batch order and dropout). The GMM-HMM draws none:
            it is trained once per split, its row's seed ``None``.
        device: Where the networks train and decode (``"cpu"``, ``"cuda"``, ...); the
            GMM-HMM stays on the CPU.
        save_every: Also checkpoint every network every this many steps within an epoch
            (`hybrid.training.train`), so that a killed run loses less.

    Returns:
        The content of ``results.json``: this call's rows merged with those already in the
        folder (``{}`` on all but the first process under ``torchrun``).

    Raises:
        ValueError: before anything is written: no training or test recording; a task not
            in `TASKS`, or not one of the recordings' (``continuous`` for one-word
            recordings, the others for several); a system not in `SYSTEMS`; no seed, a seed
            twice or a negative one; ``folds`` without the ``speakers`` task, or naming a
            speaker who has no recording in ``train`` or ``test`` (the speakers there
            listed); an unusable ``device``; no ``words``; with ``gmm-mono``, a word the
            lexicon cannot pronounce; a run folder made with other settings.
    """
    settings = settings or ExperimentSettings()
    if not train or not test:
        raise ValueError(f"train and test must hold recordings, got {len(train)} and {len(test)}")
    fitting = ("isolated", "speakers", "strings") if grammar == "isolated" else ("continuous",)
    tasks = fitting if tasks is None else tasks
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"tasks must be among {TASKS}, got {sorted(unknown)}")
    if set(tasks) - set(fitting):
        raise ValueError(
            f"tasks {sorted(set(tasks) - set(fitting))} do not fit these recordings: "
            + ("one word each" if grammar == "isolated" else "several words each")
            + f"; expected some of {list(fitting)}"
        )
    if set(systems) - set(SYSTEMS):
        unknown = sorted(set(systems) - set(SYSTEMS))
        raise ValueError(f"systems must be among {SYSTEMS}, got {unknown}")
    _check_seeds(seeds)
    if folds is not None:
        _check_speakers(folds, tasks, train + test)
    device = resolve_device(device)
    topology = Topology(tuple(words), settings.systems.word_states, settings.systems.silence_states)
    phone_systems = [name for name in systems if name in PHONE_SYSTEMS]
    if phone_systems:  # a word the lexicon cannot pronounce is refused here
        try:
            PhoneTopology(words, load_lexicon(settings.systems))
        except ValueError as error:
            raise ValueError(
                f"{error}. The systems {phone_systems} spell every word in phones: give a "
                "lexicon that has them all (--lexicon FILE), or leave those systems out "
                "(--systems)"
            ) from None
    progress = progress and is_main()
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir, "speech", PRIMARY, split="official")
    recorded = _recorded(settings, words, grammar, {"train": train, "dev": dev, "test": test})
    # a rerun with other settings is refused from here on
    claimed = folder.claim(corpus, recorded, data, may_raise=tuple(_TRAINED_WITH), stale=_stale)
    done = {row_key(row) for row in claimed["rows"]}
    runs = [(name, None) for name in GMMS if name in systems]
    runs += [(name, seed) for seed in seeds for name in NETWORKS if name in systems]
    draw = partial(_draw, run_dir)
    results = None
    for task in tasks:
        for split in _splits(task, train, test, settings, dev, grammar):
            if folds is not None and task == "speakers" and split.name not in folds:
                continue
            missing = [(n, s) for n, s in runs if (task, n, None, s, split.name) not in done]
            if missing:
                rows = _train_split(
                    split,
                    missing,
                    settings,
                    topology,
                    folder,
                    progress,
                    device,
                    save_every,
                    seeds[0],
                )
                results = folder.add_rows(rows, draw)
    if results is None:  # nothing trained: drawn again, with what other processes added
        results = folder.redraw(draw)
    return results if is_main() else {}


def redraw(run_dir: str | Path) -> dict:
    """Draw ``results.md`` and every plot of a speech run folder again from its
    ``results.json`` alone (no corpus is read, nothing trains); returns its content.

    Raises:
        ValueError: naming the file, when ``run_dir`` holds no ``results.json`` of this
            schema, or one of another domain.
    """
    return RunFolder(run_dir, "speech", PRIMARY, split="official").redraw(
        partial(_draw, Path(run_dir))
    )


def _check_seeds(seeds: Sequence[int]) -> None:
    """Refuse no seed, a seed given twice, or one that is not a non-negative integer."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected one or more distinct seeds, got {list(seeds)}")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ValueError(f"seeds must be non-negative integers, got {bad}")


def _recorded(
    settings: ExperimentSettings,
    words: Sequence[str],
    grammar: str | dict,
    parts: dict[str, list[Utterance] | None],
) -> dict:
    """The settings a run folder records and a rerun must match: ``settings`` without the
    training seeds (each row has its own), the vocabulary, the grammar, the recordings'
    sample rate and which utterances each of ``parts`` holds (the SHA-256 of their ids)."""
    recorded = asdict(settings)
    for name in ("training", "ctc_training"):
        del recorded["systems"][name]["seed"]
    recorded |= {
        "words": list(words),
        "grammar": grammar,
        "sample_rate": parts["train"][0].sample_rate,
        "utterances": {name: _digest([u.id for u in part or []]) for name, part in parts.items()},
    }
    return json.loads(json.dumps(recorded))  # as results.json holds it: lists, not tuples


def _stale(row: dict, changes: dict[str, list]) -> bool:
    """Whether ``row``'s system trains on after ``changes`` (raised epochs, `_TRAINED_WITH`):
    the networks trained with them; the GMM-HMM's rows stay."""
    return any(row["system"] in _TRAINED_WITH[name] for name in changes)


def _train_split(
    split: _Split,
    runs: list[tuple[str, int | None]],
    settings: ExperimentSettings,
    topology: Topology,
    folder: RunFolder,
    progress: bool,
    device: torch.device,
    save_every: int,
    drawn_seed: int,
) -> list[dict]:
    """Train the ``(system, seed)`` pairs of ``runs`` on ``split`` and decode its test
    utterances; save the systems of an official split (the first process only); return a
    row for each. On an official split, the rows of the GMM-HMM and of ``drawn_seed`` also
    hold what the plots need (`_plot_data`; the other seeds' would only repeat it)."""
    training = speed_perturbed(split.train, settings.speed_factors)
    features = extract(training, settings.features, progress)
    if split.isolated is split.train:
        isolated, isolated_features = training, features
    else:
        isolated = speed_perturbed(split.isolated, settings.speed_factors)
        isolated_features = extract(isolated, settings.features)
    test_features = extract(split.test, settings.features, progress)
    trained = train_systems(
        topology,
        (features, [u.words for u in training]),
        test_features,
        (isolated_features, [u.words for u in isolated]),
        split.grammar,
        settings.systems,
        runs,
        folder.checkpoints / f"{split.task}-{split.name}",
        progress,
        dev=None
        if split.dev is None
        else (extract(split.dev, settings.features), [u.words for u in split.dev]),
        select_on_dev=split.select_on_dev,
        device=device,
        save_every=save_every,
    )
    rows = []
    for (name, seed), outcome in trained.items():
        row = _row(split, name, seed, outcome, device)
        if split.name == "official":
            if seed in (None, drawn_seed):
                row |= _plot_data(split, name, outcome, test_features[0], device)
            if is_main():
                recordings = {
                    "features": asdict(settings.features),
                    "sample_rate": split.train[0].sample_rate,
                }
                recognizer = Recognizer({**outcome.system, **recordings})
                recognizer.save(folder.models / _model_name(split.task, name, seed))
        rows.append(row)
    return rows


def _model_name(task: str, system: str, seed: int | None) -> str:
    """``<task>-gmm.pt``, or ``<task>-<system>-seed<seed>.pt`` for a network."""
    return f"{task}-{system}.pt" if seed is None else f"{task}-{system}-seed{seed}.pt"


def _row(
    split: _Split, system: str, seed: int | None, trained: Trained, device: torch.device
) -> dict:
    """The row of ``system`` trained with ``seed`` (`hybrid.runs`): its key, metrics, time,
    environment, and the histories, references, hypotheses and word penalty."""
    references = [tuple(u.words) for u in split.test]
    counts = error_rate(references, trained.hypotheses)
    wrong = sum(r != tuple(h) for r, h in zip(references, trained.hypotheses, strict=True))
    return {
        "task": split.task,
        "system": system,
        "decoder": None,
        "seed": seed,
        "split": split.name,
        "metrics": {
            "error_rate": counts.errors / counts.reference,
            "utterance_error_rate": wrong / len(references),
            "substitutions": counts.substitutions,
            "deletions": counts.deletions,
            "insertions": counts.insertions,
            "reference_words": counts.reference,
            "utterance_errors": wrong,
            "decode_seconds": trained.decode_seconds,
        },
        "epochs": len(trained.history[-1]) if trained.history else None,
        "seconds": trained.train_seconds,
        "environment": environment("cpu" if system in GMMS else device),
        "history": [history.to_dict() for history in trained.history],
        "references": [list(r) for r in references],
        "hypotheses": [list(h) for h in trained.hypotheses],
        "word_penalty": trained.system["scales"]["word_penalty"],
    }


def _rounded(values: Tensor, decimals: int) -> list:
    """``values`` as nested lists of numbers rounded to ``decimals`` (what a plot needs,
    at a fraction of the characters in ``results.json``)."""
    scale = 10.0**decimals
    return (values.double() * scale).round().div(scale).tolist()


def _spectrogram(utterance: Utterance, frames: int) -> list:
    """The first ``frames`` frames of ``utterance``'s 40 log mel filterbank energies,
    ``(frames, 40)``, rounded to 0.01."""
    spectrogram = fbank(utterance.waveform, utterance.sample_rate, num_mel_bins=40)
    return _rounded(spectrogram[:frames], 2)


def _plot_data(
    split: _Split, system: str, trained: Trained, first_test: Tensor, device: torch.device
) -> dict:
    """What an official split's plots need of a row: the forced alignment of the first
    training utterance (GMM-HMM and DNN-HMM), or CTC's posteriors on the first test string
    (``first_test``: its features) and their forced alignment."""
    if system in ("gmm", "dnn") and trained.alignments:
        utterance, states = split.train[0], trained.alignments[0]
        return {
            "alignment": {
                "utterance": utterance.id,
                "words": list(utterance.words),
                "states": states.tolist(),
                "spectrogram": _spectrogram(utterance, len(states)),
            }
        }
    if system == "ctc" and split.task == "strings":
        utterance = split.test[0]
        network = Recognizer(trained.system, device).network
        log_probs = log_posteriors(network, [first_test])[0]
        blank = trained.system["model"]["blank"]
        targets = torch.tensor([utterance.words])
        spans = forced_align(log_probs[None], targets, blank=blank).spans[0]
        return {
            "posteriors": {
                "utterance": utterance.id,
                "words": list(utterance.words),
                "blank": blank,
                "log_probs": _rounded(log_probs, 3),
                "spans": spans.tolist(),
                "spectrogram": _spectrogram(utterance, len(log_probs)),
            }
        }
    return {}


def _digest(ids: Sequence[str]) -> str:
    """The SHA-256 of a list of utterance ids: which utterances a split holds, in order."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _check_speakers(
    folds: Sequence[str], tasks: Sequence[str], recordings: list[Utterance]
) -> None:
    """Refuse a choice of ``folds`` (held-out speakers) that would run no fold: without the
    ``speakers`` task among ``tasks``, or a speaker without recordings.

    Raises:
        ValueError: naming ``folds``, and the unknown speakers and those there are.
    """
    if "speakers" not in tasks:
        raise ValueError(
            f"folds (--speakers) chooses folds of the 'speakers' task, which is not among "
            f"the tasks {list(tasks)}; add it, or choose no speakers"
        )
    speakers = sorted({u.speaker for u in recordings})
    unknown = [s for s in folds if s not in speakers]
    if unknown:
        raise ValueError(
            f"folds (--speakers): no recordings of {unknown}; expected some of the "
            f"speakers of the corpus, {speakers}"
        )


def _order(row: dict) -> tuple:
    """Rows in the order of `SYSTEMS`, the GMM-HMM's (seed ``None``) first, then by seed."""
    return SYSTEMS.index(row["system"]), -1 if row["seed"] is None else row["seed"]


def _several_seeds(rows: list[dict], system: str) -> bool:
    """Whether ``rows`` hold ``system`` with more than one seed."""
    return len({r["seed"] for r in rows if r["system"] == system}) > 1


def _draw(run_dir: Path, results: dict) -> None:
    """``results.md`` and the plots of a run folder from its ``results.json`` (``results``):
    ``errors.png``; for each task's official split ``training-<task>.png`` and
    ``alignment-<task>.png``; ``confusion.png`` (isolated words) and ``ctc.png`` (strings).
    A folder of phone alignments against hand labels (`hybrid.speech.alignment`) or of words
    never trained on (`hybrid.speech.unheard`) is drawn by that module's ``draw``.
    """
    tasks = {row["task"] for row in results["rows"]}
    for special in (alignment, unheard):  # alignments against hand labels; unheard words
        if tasks == {special.TASK}:
            special.draw(run_dir, results)
            return
    write_text_atomic(run_dir / "results.md", results_table(results))
    rows = sorted(results["rows"], key=_order)
    if not rows:
        return
    plot_errors(_error_grid(rows), run_dir / "errors.png")
    recorded = results["settings"]
    topology = Topology(
        tuple(recorded["words"]),
        recorded["systems"]["word_states"],
        recorded["systems"]["silence_states"],
    )
    for task in TASKS:
        official = [r for r in rows if (r["task"], r["split"]) == (task, "official")]
        if not official:
            continue
        _draw_training(task, official, run_dir)
        if task == "isolated":
            _draw_confusion(official, topology.words, run_dir)
        aligned = [r for r in official if "alignment" in r]
        aligned.sort(key=lambda r: r["system"] != "dnn")  # the DNN-HMM's, else the GMM-HMM's
        if aligned:
            _draw_alignment(aligned[0]["alignment"], topology, run_dir / f"alignment-{task}.png")
        ctc = [r for r in official if "posteriors" in r]
        if ctc:
            _draw_ctc(ctc[0]["posteriors"], topology.words, run_dir / "ctc.png")


def _draw_training(task: str, official: list[dict], run_dir: Path) -> None:
    """The loss and held-out accuracy of every network pass of ``official`` (rows of one
    task's official split, in `_order`), seeds named where a system has several."""
    histories = {}
    for row in official:
        several = _several_seeds(official, row["system"])
        for number, history in enumerate(row["history"]):
            name = f"{NAMES[row['system']]} pass {number + 1}"
            name += f", seed {row['seed']}" if several else ""
            histories[name] = History.from_dict(history)
    if histories:
        plot_training(histories, f"{task}: training", run_dir / f"training-{task}.png")


def _draw_confusion(official: list[dict], words: Sequence[str], run_dir: Path) -> None:
    """The confusions of the isolated words' best system (the lowest mean error over its
    seeds; ties: the first of `SYSTEMS`), the hypotheses of all its seeds counted."""
    errors: dict[str, list[float]] = {}
    for row in official:
        errors.setdefault(row["system"], []).append(row["metrics"]["error_rate"])
    best = min(errors, key=lambda s: (statistics.mean(errors[s]), SYSTEMS.index(s)))
    chosen = [r for r in official if r["system"] == best]
    title = f"isolated words, {NAMES[best]}"
    if len(chosen) > 1:
        title += f", seeds {', '.join(str(r['seed']) for r in chosen)}"
    plot_confusion(
        [words[0] for r in chosen for words in r["references"]],
        [words[0] for r in chosen for words in r["hypotheses"]],
        words,
        title,
        run_dir / "confusion.png",
    )


def _draw_alignment(alignment: dict, topology: Topology, path: Path) -> None:
    """A row's ``alignment``: a training utterance's states over its spectrogram."""
    spoken = " ".join(topology.words[w] for w in alignment["words"])
    plot_alignment(
        torch.tensor(alignment["spectrogram"]),
        torch.tensor(alignment["states"]),
        topology,
        f"forced alignment of {alignment['utterance']} ({spoken})",
        path,
    )


def _draw_ctc(posteriors: dict, words: Sequence[str], path: Path) -> None:
    """A row's ``posteriors``: CTC's spikes on a test string, over its spectrogram."""
    spoken = " ".join(words[w] for w in posteriors["words"])
    plot_ctc(
        torch.tensor(posteriors["spectrogram"]),
        torch.tensor(posteriors["log_probs"]),
        torch.tensor(posteriors["spans"], dtype=torch.long).reshape(-1, 2),
        words,
        posteriors["blank"],
        f"CTC on {posteriors['utterance']} ({spoken})",
        path,
    )


def _error_grid(rows: list[dict]) -> dict[str, dict[str, float]]:
    """The error rate (%) of each task and system, the mean over its rows."""
    grid: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        grid.setdefault(row["task"], {}).setdefault(NAMES[row["system"]], []).append(
            100 * row["metrics"]["error_rate"]
        )
    return {t: {s: statistics.mean(v) for s, v in by.items()} for t, by in grid.items()}


#: The main table's column of each task, and whether it shows accuracy (else WER).
_COLUMNS = {
    "isolated": ("isolated accuracy", True),
    "speakers": ("speakers accuracy (mean, min-max)", True),
    "strings": ("strings WER", False),
    "continuous": ("WER", False),
}


def _per_seed(rows: list[dict], value) -> list[float]:
    """The mean of ``value(row)`` over each seed's ``rows`` (its splits), seed by seed."""
    by_seed: dict[int | None, list[float]] = {}
    for row in rows:
        by_seed.setdefault(row["seed"], []).append(value(row))
    return [statistics.mean(values) for values in by_seed.values()]


def _spread(values: list[float]) -> str:
    """`` ± `` the standard deviation of ``values`` (in the table's units), or nothing for
    one value."""
    return f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""


def results_table(results: dict) -> str:
    """``results.md``, from ``results.json``'s content: accuracy / WER per task and system
    (the mean over seeds ± their standard deviation where a system has several), the change
    against the GMM-HMM, times, the per-speaker accuracies of the leave-one-speaker-out task
    and the errors by kind of the tasks of word sequences."""
    rows = sorted(results["rows"], key=_order)
    by: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by.setdefault((row["task"], row["system"]), []).append(row)
    systems = [s for s in SYSTEMS if any(k[1] == s for k in by)]
    tasks = [t for t in TASKS if any(k[0] == t for k in by)]
    timed = next((t for t in ("isolated", "continuous", "strings") if t in tasks), None)
    header = [_COLUMNS[t][0] for t in tasks]
    if timed:
        header += [f"train s ({timed})", f"decode ms/utt ({timed})"]
    lines = [
        f"# Speech ({results['corpus']}): GMM-HMM vs hybrid vs pure RNN vs CTC",
        "",
        "Accuracy: words right (%); WER: word error rate (%). In brackets: relative error "
        "change against the GMM-HMM (negative = fewer errors).",
    ]
    seeds = sorted({r["seed"] for r in rows if r["seed"] is not None})
    if len(seeds) > 1:
        lines += [
            "",
            f"Seeds {', '.join(map(str, seeds))}: mean ± standard deviation over the seeds "
            "(the GMM-HMM draws none: one run).",
        ]
    lines += [
        "",
        "| system | " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(header),
    ]

    def error(task: str, system: str) -> float | None:
        found = by.get((task, system))
        return None if not found else statistics.mean(r["metrics"]["error_rate"] for r in found)

    def versus(task: str, system: str) -> str:
        ours, base = error(task, system), error(task, "gmm")
        if system == "gmm" or ours is None or not base:
            return ""
        return f" ({100 * (ours - base) / base:+.0f}%)"

    def cell(task: str, system: str) -> str:
        found = by.get((task, system))
        if not found:
            return "-"
        accuracy = _COLUMNS[task][1]

        def shown(row: dict) -> float:
            rate = row["metrics"]["error_rate"]
            return 100 * (1 - rate) if accuracy else 100 * rate

        spread = _spread(_per_seed(found, shown))
        if task == "speakers":
            speakers: dict[str, list[float]] = {}
            for r in found:
                speakers.setdefault(r["split"], []).append(shown(r))
            means = [statistics.mean(v) for v in speakers.values()]
            extremes = f"{min(means):.1f}-{max(means):.1f}"
            mean = statistics.mean(shown(r) for r in found)
            return f"{mean:.2f}{spread} ({extremes}){versus(task, system)}"
        value = error(task, system)
        return f"{100 * (1 - value) if accuracy else 100 * value:.2f}{spread}{versus(task, system)}"

    for system in systems:
        cells = [NAMES[system]] + [cell(task, system) for task in tasks]
        found = by.get((timed, system))
        if found:
            seconds = statistics.mean(r["seconds"] for r in found)
            decode = statistics.mean(
                1000 * r["metrics"]["decode_seconds"] / len(r["references"]) for r in found
            )
            cells += [f"{seconds:.0f}", f"{decode:.2f}"]
        elif timed:
            cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    speaker_rows = [r for r in rows if r["task"] == "speakers"]
    if speaker_rows:
        speakers = sorted({r["split"] for r in speaker_rows})
        lines += [
            "",
            "Leave one speaker out: accuracy (%) on each held-out speaker"
            + (", the mean over seeds." if len(seeds) > 1 else "."),
            "",
            "| system | " + " | ".join(speakers) + " |",
            "| --- | " + " | ".join("---:" for _ in speakers) + " |",
        ]
        for system in systems:
            accuracy: dict[str, list[float]] = {}
            for r in speaker_rows:
                if r["system"] == system:
                    accuracy.setdefault(r["split"], []).append(
                        100 * (1 - r["metrics"]["error_rate"])
                    )
            if not accuracy:  # not trained on this task
                continue
            lines.append(
                f"| {NAMES[system]} | "
                + " | ".join(
                    f"{statistics.mean(accuracy[s]):.1f}" if s in accuracy else "-"
                    for s in speakers
                )
                + " |"
            )
    for task in ("strings", "continuous"):
        task_rows = [r for r in rows if r["task"] == task]
        if task_rows:
            lines += [
                "",
                f"{task.capitalize()}: errors by kind.",
                "",
                "| system | substitutions | deletions | insertions | words | utterance errors |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for r in task_rows:
                name = NAMES[r["system"]]
                if _several_seeds(task_rows, r["system"]):
                    name += f", seed {r['seed']}"
                m = r["metrics"]
                lines.append(
                    f"| {name} | {m['substitutions']} | {m['deletions']} | "
                    f"{m['insertions']} | {m['reference_words']} | "
                    f"{m['utterance_errors']}/{len(r['references'])} |"
                )
    return "\n".join(lines) + "\n"


#: Corpora whose networks train longer and with `SpecAugment` masks by default (the masks'
#: sizes chosen on Speech Commands' development speakers: see docs/speech.md), and for how
#: many epochs (masked training learns more slowly).
MASKED_EPOCHS = {"speech_commands": 15}


def default_settings(
    corpus: str,
    epochs: int | None = None,
    speed_factors: Sequence[float] | None = None,
    spec_augment: bool | None = None,
    amp: bool = False,
    average: float = 0.0,
) -> ExperimentSettings:
    """The settings of the recipe: full-size on FSDD, with speed perturbation at 0.9 and 1.1;
    small enough on the synthetic corpus that the whole comparison runs in about a minute on
    two cores. A corpus read by path (any other name) takes FSDD's; those of `MASKED_EPOCHS`
    train every network longer and with `SpecAugment` masks. ``epochs`` and
    ``speed_factors`` replace the corpus's defaults, ``spec_augment`` turns the masks on
    or off for any corpus, ``amp`` trains every network in mixed precision, and ``average``
    is the decay of every network's weight average (`hybrid.training.TrainConfig`)."""
    masked = corpus in MASKED_EPOCHS if spec_augment is None else spec_augment
    engine = {"spec_augment": SpecAugment() if masked else None, "amp": amp, "average": average}
    if corpus == "synthetic":
        systems = SystemSettings(
            word_states=4,
            mixtures=2,
            gmm_iterations=5,
            viterbi_iterations=1,
            dnn={"hidden": 128, "layers": 2, "context": 3},
            bilstm={"hidden": 64, "layers": 1},
            rnn={"hidden": 64, "layers": 1},
            training=AcousticTrainConfig(epochs=epochs or 10, batch_size=16, **engine),
            ctc_training=AcousticTrainConfig(epochs=epochs or 25, batch_size=16, lr=3e-3, **engine),
        )
        return ExperimentSettings(
            systems=systems,
            train_strings=120,
            test_strings=40,
            dev_strings=30,
            speed_factors=tuple(speed_factors or ()),
        )
    epochs = epochs or MASKED_EPOCHS.get(corpus, 10)
    return ExperimentSettings(
        systems=SystemSettings(
            training=AcousticTrainConfig(epochs=epochs, **engine),
            ctc_training=AcousticTrainConfig(epochs=epochs, lr=3e-3, **engine),
        ),
        speed_factors=(0.9, 1.1) if speed_factors is None else tuple(speed_factors),
    )


def load_corpus(corpus: str, data: str | None) -> tuple[list[Utterance], list[Utterance], tuple]:
    """The official train and test recordings of ``corpus`` and its word list."""
    from ..files import data_root
    from .corpus import isolated_utterances, synthetic_recordings, synthetic_split
    from .fsdd import DIGITS, official_split, read_fsdd

    if corpus == "synthetic":
        train, test = synthetic_split(synthetic_recordings())
        return train, test, DIGITS
    if corpus != "fsdd":
        raise ValueError(f"corpus must be 'fsdd' or 'synthetic', got {corpus!r}")
    root = data_root(data)
    if root is None or not (root / "fsdd").is_dir():
        raise ValueError(f"no fsdd/ folder under {root} (give --data or set HYBRID_DATA)")
    train, test = official_split(read_fsdd(root / "fsdd"))
    return isolated_utterances(train), isolated_utterances(test), DIGITS
