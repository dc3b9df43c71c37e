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

A run folder receives ``results.json`` (every task, split and system, rewritten atomically
after each split so an interrupted run resumes at the next split, and merged under a lock
with what is on disk, so that separate processes can run different tasks into one folder
and lose no rows; `hybrid.files.update_json`), ``results.md``, the
systems of the official splits under ``models/`` (for ``hybrid recognize``), training
checkpoints under ``checkpoints/`` and PNG plots. A rerun with other settings is refused, but
for more epochs: the folder then records the change (``changes`` in ``results.json``), and
the systems trained for fewer train on from their checkpoints.
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

from ..ctc.align import forced_align
from ..files import file_lock, read_json, update_json, write_text_atomic
from ..saved import check_same_setup, record_changes
from ..training import History
from .augment import SpecAugment, speed_perturbed
from .corpus import FeatureConfig, Utterance, connected_strings, extract
from .features import fbank
from .metrics import error_rate
from .plots import plot_alignment, plot_confusion, plot_ctc, plot_errors, plot_training
from .recognizer import Recognizer, save_system
from .systems import SYSTEMS, SystemSettings, Trained, train_systems
from .topology import Topology
from .train import AcousticTrainConfig, log_posteriors

__all__ = [
    "NAMES",
    "SYNTHETIC_NOTICE",
    "TASKS",
    "ExperimentSettings",
    "default_settings",
    "load_corpus",
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
    "dnn": "hybrid DNN-HMM",
    "bilstm": "hybrid BiLSTM-HMM",
    "rnn": "pure RNN (BiLSTM)",
    "ctc": "CTC (BiLSTM)",
}


#: The settings a run folder may be asked for again with a larger value (to train on), and
#: the systems trained with each.
_TRAINED_WITH = {
    "systems.training.epochs": ("dnn", "bilstm", "rnn"),
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


def _score(split: _Split, system: str, trained: Trained) -> dict:
    references = [u.words for u in split.test]
    counts = error_rate(references, trained.hypotheses)
    wrong = sum(r != h for r, h in zip(references, trained.hypotheses, strict=True))
    return {
        "task": split.task,
        "split": split.name,
        "system": system,
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "reference_words": counts.reference,
        "error_rate": counts.errors / counts.reference,
        "utterance_errors": wrong,
        "utterances": len(references),
        "train_seconds": trained.train_seconds,
        "decode_seconds": trained.decode_seconds,
        "word_penalty": trained.system["scales"]["word_penalty"],
        "history": [history.to_dict() for history in trained.history],
        "hypotheses": [list(h) for h in trained.hypotheses],
    }


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
) -> dict:
    """Run ``tasks`` for ``systems``, write the run folder, return ``results.json``'s content.

    Args:
        train: The training recordings (FSDD's official ones: one digit each).
        test: The test recordings.
        run_dir: The run folder.
        tasks: Which of `TASKS` (default: all that fit the recordings).
        systems: Which of `SYSTEMS`.
        settings: Features, models, training and strings.
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
        data: The files read, ``{split: [{"path", "sha256"}]}``: their checksums are
            recorded, and a run folder made from files of other contents is refused.

    Raises:
        ValueError: before anything is written: a task not in `TASKS`, or not one of the
            recordings' (``continuous`` for one-word recordings, the others for several);
            ``folds`` without
            the ``speakers`` task, or naming a speaker who has no recording in ``train`` or
            ``test`` (the speakers there listed); a run folder made with other settings.
    """
    settings = settings or ExperimentSettings()
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
    if folds is not None:
        _check_speakers(folds, tasks, train + test)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.json"
    requested = {"corpus": corpus, **asdict(settings)}
    if data:  # the files, and what was read from them: words, grammar, rate, each split
        requested["data"] = {split: [f["sha256"] for f in files] for split, files in data.items()}
        requested["words"] = list(words)
        requested["grammar"] = grammar
        requested["sample_rate"] = train[0].sample_rate
        requested["utterances"] = {
            name: _digest([u.id for u in part])
            for name, part in (("train", train), ("dev", dev or []), ("test", test))
        }
    requested = json.loads(json.dumps(requested))

    # a rerun with other settings is refused from here on
    rows = update_json(path, partial(_claim, path, requested))["rows"]
    topology = Topology(tuple(words), settings.systems.word_states, settings.systems.silence_states)
    for task in tasks:
        for split in _splits(task, train, test, settings, dev, grammar):
            if folds is not None and task == "speakers" and split.name not in folds:
                continue
            done = {r["system"] for r in rows if (r["task"], r["split"]) == (task, split.name)}
            missing = [s for s in systems if s not in done]
            if not missing:
                continue
            work = run_dir / "checkpoints" / f"{task}-{split.name}"
            training = speed_perturbed(split.train, settings.speed_factors)
            features = extract(training, settings.features, progress)
            if split.isolated is split.train:
                isolated, isolated_features = training, features
            else:
                isolated = speed_perturbed(split.isolated, settings.speed_factors)
                isolated_features = extract(isolated, settings.features)
            trained = train_systems(
                topology,
                (features, [u.words for u in training]),
                extract(split.test, settings.features, progress),
                (isolated_features, [u.words for u in isolated]),
                split.grammar,
                settings.systems,
                missing,
                work,
                progress,
                dev=None
                if split.dev is None
                else (extract(split.dev, settings.features), [u.words for u in split.dev]),
                select_on_dev=split.select_on_dev,
            )
            fresh = [_score(split, name, outcome) for name, outcome in trained.items()]
            if split.name == "official":
                for name, outcome in trained.items():
                    save_system(
                        run_dir / "models" / f"{task}-{name}.pt",
                        outcome.system,
                        settings.features,
                        split.train[0].sample_rate,
                    )
            rows = update_json(path, partial(_add_rows, fresh))["rows"]
            if split.name == "official":
                _plot_split(split, trained, rows, topology, run_dir)
    with file_lock(path):  # with the rows other processes added
        results = read_json(path)
        write_text_atomic(run_dir / "results.md", results_table(results, corpus))
        plot_errors(_error_grid(results), run_dir / "errors.png")
    model = run_dir / "models" / "strings-ctc.pt"
    if "strings" in tasks and model.exists():
        strings = connected_strings(test, settings.test_strings, settings.string_seed + 1)
        _plot_ctc(Recognizer.load(model), strings, settings.features, run_dir / "ctc.png")
    return results


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


def _claim(path: Path, requested: dict, saved: dict) -> dict:
    """``saved``, the ``results.json`` at ``path``, taken over by a run of the ``requested``
    settings. Other settings are refused, but for more epochs (`_TRAINED_WITH`): the change
    is recorded, and the rows of the systems trained for fewer are dropped."""
    changes = check_same_setup(
        path, saved.get("settings"), requested, may_raise=tuple(_TRAINED_WITH)
    )
    stale = {system for setting in changes for system in _TRAINED_WITH[setting]}
    rows = [r for r in saved.get("rows", []) if r["system"] not in stale]
    return record_changes(saved | {"settings": requested, "rows": rows}, changes)


def _add_rows(fresh: list[dict], saved: dict) -> dict:
    """``saved`` (a ``results.json``) with the ``fresh`` rows, replacing those of the same
    task, split and system."""
    replaced = {(row["task"], row["split"], row["system"]) for row in fresh}
    kept = [r for r in saved["rows"] if (r["task"], r["split"], r["system"]) not in replaced]
    return saved | {"rows": kept + fresh}


def _plot_ctc(recognizer: Recognizer, strings: list[Utterance], features, path: Path) -> None:
    """The saved CTC system's posteriors on the first test string and its forced alignment
    (normalised with its speaker's test strings, as in the test set)."""
    utterance = strings[0]
    frames = extract([s for s in strings if s.speaker == utterance.speaker], features)[:1]
    log_probs = log_posteriors(recognizer.network, frames)[0]
    blank = recognizer.system["model"]["blank"]
    alignment = forced_align(log_probs[None], torch.tensor([utterance.words]), blank=blank)
    spectrogram = fbank(utterance.waveform, utterance.sample_rate, num_mel_bins=40)
    spoken = " ".join(recognizer.topology.words[w] for w in utterance.words)
    plot_ctc(
        spectrogram[: len(log_probs)],
        log_probs,
        alignment.spans[0],
        recognizer.topology.words,
        blank,
        f"CTC on {utterance.id} ({spoken})",
        path,
    )


def _plot_split(
    split: _Split, trained: dict[str, Trained], rows: list[dict], topology: Topology, run_dir: Path
):
    """The split's plots: the training curves and (isolated words) the confusions of the
    best system from ``rows``, which hold what other processes sharing the run folder added;
    a forced alignment from ``trained``, this process's systems."""
    mine = [r for r in rows if (r["task"], r["split"]) == (split.task, split.name)]
    mine.sort(key=lambda r: SYSTEMS.index(r["system"]))
    histories = {
        f"{NAMES[r['system']]} pass {i + 1}": _read_history(history)
        for r in mine
        for i, history in enumerate(r["history"])
    }
    if histories:
        plot_training(histories, f"{split.task}: training", run_dir / f"training-{split.task}.png")
    if split.task == "isolated" and mine:
        best = min(mine, key=lambda r: r["error_rate"])  # ties: the first of SYSTEMS
        plot_confusion(
            [u.words[0] for u in split.test],
            [h[0] for h in best["hypotheses"]],
            topology.words,
            f"isolated words, {NAMES[best['system']]}",
            run_dir / "confusion.png",
        )
    aligned = next((v for v in (trained.get("dnn"), trained.get("gmm")) if v is not None), None)
    if aligned is not None and aligned.alignments:
        utterance = split.train[0]
        spectrogram = fbank(utterance.waveform, utterance.sample_rate, num_mel_bins=40)
        alignment = aligned.alignments[0]
        words = " ".join(topology.words[w] for w in utterance.words)
        plot_alignment(
            spectrogram[: len(alignment)],
            alignment,
            topology,
            f"forced alignment of {utterance.id} ({words})",
            run_dir / f"alignment-{split.task}.png",
        )


def _read_history(recorded: dict | list[dict]) -> History:
    """A network pass's training history as a row of ``results.json`` holds it:
    `hybrid.training.History.to_dict`, or, in rows written before, one dict per epoch
    (``epoch``, ``loss``, ``valid_accuracy``, ``valid_loss``, ``seconds``)."""
    if isinstance(recorded, dict):
        return History.from_dict(recorded)
    names = ("loss", "valid_accuracy", "valid_loss", "seconds")
    return History({k: [e[k] for e in recorded] for k in names if all(k in e for e in recorded)})


def _error_grid(results: dict) -> dict[str, dict[str, float]]:
    grid: dict[str, dict[str, list[float]]] = {}
    for row in results["rows"]:
        grid.setdefault(row["task"], {}).setdefault(NAMES[row["system"]], []).append(
            100 * row["error_rate"]
        )
    return {t: {s: statistics.mean(v) for s, v in by.items()} for t, by in grid.items()}


#: The main table's column of each task, and whether it shows accuracy (else WER).
_COLUMNS = {
    "isolated": ("isolated accuracy", True),
    "speakers": ("speakers accuracy (mean, min-max)", True),
    "strings": ("strings WER", False),
    "continuous": ("WER", False),
}


def results_table(results: dict, corpus: str) -> str:
    """``results.md``: accuracy / WER per task and system, the change against the GMM-HMM,
    times, the per-speaker accuracies of the leave-one-speaker-out task and the errors by
    kind of the tasks of word sequences."""
    rows = results["rows"]
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
        f"# Speech ({corpus}): GMM-HMM vs hybrid vs pure RNN vs CTC",
        "",
        "Accuracy: words right (%); WER: word error rate (%). In brackets: relative error "
        "change against the GMM-HMM (negative = fewer errors).",
        "",
        "| system | " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(header),
    ]

    def error(task: str, system: str) -> float | None:
        found = by.get((task, system))
        return None if not found else statistics.mean(r["error_rate"] for r in found)

    def versus(task: str, system: str) -> str:
        ours, base = error(task, system), error(task, "gmm")
        if system == "gmm" or ours is None or not base:
            return ""
        return f" ({100 * (ours - base) / base:+.0f}%)"

    def cell(task: str, system: str) -> str:
        found = by.get((task, system))
        if not found:
            return ""
        if task == "speakers":
            accuracies = [100 * (1 - r["error_rate"]) for r in found]
            spread = f"{min(accuracies):.1f}-{max(accuracies):.1f}"
            return f"{statistics.mean(accuracies):.2f} ({spread}){versus(task, system)}"
        value = error(task, system)
        shown = 100 * (1 - value) if _COLUMNS[task][1] else 100 * value
        return f"{shown:.2f}{versus(task, system)}"

    for system in systems:
        cells = [NAMES[system]] + [cell(task, system) for task in tasks]
        found = by.get((timed, system))
        if found:
            r = found[0]
            cells += [
                f"{r['train_seconds']:.0f}",
                f"{1000 * r['decode_seconds'] / r['utterances']:.2f}",
            ]
        elif timed:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    speaker_rows = [r for r in rows if r["task"] == "speakers"]
    if speaker_rows:
        speakers = sorted({r["split"] for r in speaker_rows})
        lines += [
            "",
            "Leave one speaker out: accuracy (%) on each held-out speaker.",
            "",
            "| system | " + " | ".join(speakers) + " |",
            "| --- | " + " | ".join("---:" for _ in speakers) + " |",
        ]
        for system in systems:
            acc = {
                r["split"]: 100 * (1 - r["error_rate"])
                for r in speaker_rows
                if r["system"] == system
            }
            lines.append(
                f"| {NAMES[system]} | "
                + " | ".join(f"{acc[s]:.1f}" if s in acc else "" for s in speakers)
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
                lines.append(
                    f"| {NAMES[r['system']]} | {r['substitutions']} | {r['deletions']} | "
                    f"{r['insertions']} | {r['reference_words']} | "
                    f"{r['utterance_errors']}/{r['utterances']} |"
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
) -> ExperimentSettings:
    """The settings of the recipe: full-size on FSDD, with speed perturbation at 0.9 and 1.1;
    small enough on the synthetic corpus that the whole comparison runs in about a minute on
    two cores. A corpus read by path (any other name) takes FSDD's; those of `MASKED_EPOCHS`
    train every network longer and with `SpecAugment` masks. ``epochs`` and
    ``speed_factors`` replace the corpus's defaults, and ``spec_augment`` turns the masks on
    or off for any corpus."""
    masked = corpus in MASKED_EPOCHS if spec_augment is None else spec_augment
    masks = SpecAugment() if masked else None
    if corpus == "synthetic":
        systems = SystemSettings(
            word_states=4,
            mixtures=2,
            gmm_iterations=5,
            viterbi_iterations=1,
            dnn={"hidden": 128, "layers": 2, "context": 3},
            bilstm={"hidden": 64, "layers": 1},
            rnn={"hidden": 64, "layers": 1},
            training=AcousticTrainConfig(epochs=epochs or 10, batch_size=16, spec_augment=masks),
            ctc_training=AcousticTrainConfig(
                epochs=epochs or 25, batch_size=16, lr=3e-3, spec_augment=masks
            ),
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
            training=AcousticTrainConfig(epochs=epochs, spec_augment=masks),
            ctc_training=AcousticTrainConfig(epochs=epochs, lr=3e-3, spec_augment=masks),
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
