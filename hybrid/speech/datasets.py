"""Speech corpora given by path: Kaldi data directories and CSV/TSV manifests, read into
utterances over a vocabulary, split by speaker, at one sample rate.

`SpeechFiles` names what to read (each split a Kaldi data directory or a manifest, see
`hybrid.speech.datadir`; optional vocabulary, phrase grammar and n-gram language model
files); `load_speech` reads it into `SpeechData`: the train, development and test
`Utterance` lists with their words as indices into one vocabulary, the sample rate, the
decoding grammar, what was done to the audio (``notes``) and the checksums of the files read.

A split not given is held out of the training data by speaker (no speaker in two splits):
the test speakers named, or else a seeded share of the speakers; with one speaker, a share
of the utterances. Audio at another rate than the corpus's is resampled, audio of several
channels averaged to one, and the run says how many recordings were.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import Tensor

from ..corpora import HELD_OUT_SEED, checksums, expand_paths, hold_out
from ..ctc.lm import BOS, EOS, read_arpa
from .audio import read_audio, resample
from .corpus import Utterance
from .datadir import Entry, read_kaldi_dir, read_manifest
from .grammar_files import read_phrases, read_words
from .topology import ngram_data, ngram_grammar

__all__ = ["PRESETS", "SpeechData", "SpeechFiles", "load_speech", "preset_files", "read_entries"]

#: A segment may end this many seconds past its recording (Kaldi's ``extract-segments``
#: ``--max-overshoot``); the end is then the recording's.
MAX_OVERSHOOT = 0.5

#: The shortest audio features can be computed from: one 25 ms frame.
_MIN_SECONDS = 0.025


@dataclass(frozen=True)
class SpeechFiles:
    """What a speech corpus of the user's is read from.

    Attributes:
        train: Kaldi data directories or CSV/TSV manifests (one or several, joined).
        dev: Development data of the same kinds; ``None``: held out of ``train``.
        test: Test data; ``None``: held out of ``train`` (``test_speakers``, or a share).
        path_column: Manifest column of the audio paths.
        transcript_column: Manifest column of the transcripts.
        speaker_column: Manifest column of the speakers (``None``: none; each utterance is
            its own speaker).
        test_speakers: Without ``test``: the speakers whose utterances are the test set.
        held_out: Share of the speakers held out for a split not given (of the utterances,
            with one speaker); ``0``: no development set (each network then chooses its
            epoch on a tenth of its training utterances), and a test set not given is held
            out at 0.1.
        sample_rate: Rate (Hz) every recording is resampled to; ``None``: the rate of most
            training recordings.
        words: A vocabulary file (`read_words`: one word per line, or Kaldi's
            ``words.txt``) fixing the order of the words; ``None``: their order of first
            appearance in the training transcripts.
        grammar: A file of allowed phrases (`read_phrases`) to decode with.
        lm: An ARPA back-off n-gram language model of any order (`hybrid.ctc.lm.read_arpa`)
            to decode with (`hybrid.speech.topology.ngram_grammar`).
    """

    train: tuple[str, ...]
    dev: tuple[str, ...] | None = None
    test: tuple[str, ...] | None = None
    path_column: str = "path"
    transcript_column: str = "transcript"
    speaker_column: str | None = "speaker"
    test_speakers: tuple[str, ...] = ()
    held_out: float = 0.1
    sample_rate: int | None = None
    words: str | None = None
    grammar: str | None = None
    lm: str | None = None


@dataclass
class SpeechData:
    """A speech corpus read by `load_speech`.

    Attributes:
        train: Training utterances.
        dev: Development utterances, or ``None``.
        test: Test utterances.
        words: The vocabulary; an utterance's ``words`` index it.
        sample_rate: The rate of every utterance (Hz).
        grammar: The decoding grammar as plain data (`hybrid.speech.topology.task_grammar`):
            ``"isolated"`` when every utterance is one word, else ``"loop"``, or the phrases
            or n-gram model given.
        notes: What was done to the data, one sentence each (held-out splits, resampling,
            downmixing, speakers shared between splits).
        files: ``{split: [{"path", "sha256"}]}`` of the listing files read (``wav.scp``,
            ``text``, ``utt2spk``, ``segments``, a manifest; ``decoding``: the vocabulary,
            grammar and LM files); the audio files are not hashed, their list is.
    """

    train: list[Utterance]
    dev: list[Utterance] | None
    test: list[Utterance]
    words: tuple[str, ...]
    sample_rate: int
    grammar: str | dict
    notes: list[str] = field(default_factory=list)
    files: dict[str, list[dict[str, str]]] = field(default_factory=dict)


#: The benchmark corpora read by path (``--corpus NAME``): their files, under the data folder,
#: and how to read them.
PRESETS: dict[str, SpeechFiles] = {
    # Speech Commands v0.02 (part of the official test set): 10 command words and
    # "_unknown_" (other words) in the label column; a speaker-independent split.
    "speech_commands": SpeechFiles(
        train=("speech_commands/manifest.csv",), transcript_column="label"
    ),
}


def preset_files(name: str, root: Path | None) -> SpeechFiles:
    """The `SpeechFiles` of the preset ``name`` under the data folder ``root``.

    Raises:
        ValueError: for an unknown preset, or naming the folder the preset's files are not in.
    """
    if name not in PRESETS:
        raise ValueError(f"corpus must be one of {sorted(PRESETS)}, got {name!r}")
    preset = PRESETS[name]
    if root is None:
        raise ValueError(f"no data folder for {name}: give --data or set HYBRID_DATA")
    paths = tuple(str(Path(root) / p) for p in preset.train)
    if not all(Path(p).exists() for p in paths):
        raise ValueError(f"no {preset.train[0]} under {root} (give --data or set HYBRID_DATA)")
    return replace(preset, train=paths)


def read_entries(
    paths: Sequence[str], files: SpeechFiles, what: str
) -> tuple[list[Entry], list[Path]]:
    """The entries of each Kaldi data directory (a folder) or manifest (a file) in ``paths``
    (glob patterns welcome), joined in order, and the files read that list them (to be
    checksummed). Manifests' utterance ids are relative to the folder that holds them all
    (one manifest: its own folder).

    Raises:
        ValueError: naming ``what`` for a path that does not exist; the readers' errors
            (file and line) otherwise; an utterance id given twice.
    """
    try:
        sources = expand_paths(paths, what, folders=True)
    except ValueError as error:
        raise ValueError(
            f"{error}; expected a Kaldi data directory (wav.scp, text, utt2spk) or a CSV/TSV "
            "manifest"
        ) from None
    manifests = [path.parent.absolute() for path in sources if not path.is_dir()]
    # ids relative to the manifests' common folder: the same relative path in two is two ids
    root = os.path.commonpath(manifests) if manifests else None
    entries: list[Entry] = []
    for path in sources:
        if path.is_dir():
            entries += read_kaldi_dir(path)
        else:
            entries += read_manifest(
                path, files.path_column, files.transcript_column, files.speaker_column, root
            )
    seen: dict[str, Entry] = {}
    for entry in entries:
        if entry.id in seen:
            raise ValueError(
                f"{what}: utterance {entry.id!r} is listed twice ({seen[entry.id].where} and "
                f"{entry.where}); utterance ids must be unique"
            )
        seen[entry.id] = entry
    return entries, [listing for path in sources for listing in _listing_files(path)]


def _first(items: Sequence[str], count: int = 10) -> str:
    """The first ``count`` of ``items``, comma-separated, with ``...`` when there are more."""
    return ", ".join(items[:count]) + (", ..." if len(items) > count else "")


def _speaker_split(
    entries: list[Entry], share: float, what: str, notes: list[str]
) -> tuple[list[Entry], list[Entry]]:
    """``entries`` less a held-out ``share`` of their speakers (seeded), and those held out;
    with one speaker, a share of the utterances. The choice goes to ``notes``."""
    speakers = sorted({e.speaker for e in entries})
    if len(speakers) == 1:
        kept, held = hold_out(entries, share, what)
        notes.append(
            f"{what}: one speaker only, so {len(held)} of {len(entries)} utterances were held "
            f"out (seed {HELD_OUT_SEED}); this split is not speaker-independent"
        )
        return kept, held
    _, chosen = hold_out(speakers, share, what)
    held_speakers = set(chosen)
    held = [e for e in entries if e.speaker in held_speakers]
    notes.append(
        f"{what}: held out {len(held)} utterances of {len(chosen)} of {len(speakers)} speakers "
        f"(seed {HELD_OUT_SEED}): {_first(sorted(chosen), 8)}"
    )
    return [e for e in entries if e.speaker not in held_speakers], held


def _named_speakers(
    entries: list[Entry], speakers: Sequence[str], notes: list[str]
) -> tuple[list[Entry], list[Entry]]:
    """``entries`` less the utterances of ``speakers``, and those (the test set)."""
    known = sorted({e.speaker for e in entries})
    unknown = [s for s in speakers if s not in known]
    if unknown:
        raise ValueError(
            f"--test-speakers: no utterance of {unknown} in the training data; its "
            f"speakers are {_first(known)}"
        )
    chosen = set(speakers)
    test = [e for e in entries if e.speaker in chosen]
    notes.append(f"test: the {len(test)} utterances of the speakers {', '.join(speakers)}")
    return [e for e in entries if e.speaker not in chosen], test


def _vocabulary(
    files: SpeechFiles, splits: dict[str, list[Entry]], notes: list[str]
) -> tuple[str, ...]:
    """The words: the training words in order of first appearance, or in the order of
    ``files.words`` (whose words no training transcript says, such as Kaldi's ``<SIL>`` or
    ``<UNK>``, are left out, and ``notes`` says which).

    Raises:
        ValueError: naming the transcript's file and line, for a word that is not in the
            vocabulary file or (in development and test) has no training recording.
    """
    training = list(dict.fromkeys(w for e in splits["train"] for w in e.words))
    heard = set(training)
    words = training
    if files.words is not None:
        listed = read_words(files.words)
        words = [w for w in listed if w in heard]
        unheard = [w for w in listed if w not in heard]
        if unheard:
            notes.append(f"{files.words}: no training recording of {_first(unheard)}: left out")
    known = set(words)
    for split, entries in splits.items():
        for entry in entries:
            for word in entry.words:
                if word in known:
                    continue
                if split == "train":
                    raise ValueError(
                        f"{entry.where}: the word {word!r} is not in {files.words}; add it "
                        "to the vocabulary file"
                    )
                raise ValueError(
                    f"{entry.where}: the {split} word {word!r} is not in the training "
                    "transcripts; every word needs training recordings of it"
                )
    return tuple(words)


def _no_overlap(splits: dict[str, list[Entry]]) -> None:
    """Refuse an utterance (the same audio, or the same segment of it) in two splits.

    Raises:
        ValueError: naming both transcript lines.
    """
    seen: dict[tuple, tuple[str, Entry]] = {}
    for split, entries in splits.items():
        for entry in entries:
            key = (entry.path.resolve(), entry.start, entry.end)
            if key in seen and seen[key][0] != split:
                first_split, first = seen[key]
                raise ValueError(
                    f"{entry.where}: the {split} utterance {entry.id!r} is also in "
                    f"{first_split} ({first.where}); a recording must be in one split only"
                )
            seen.setdefault(key, (split, entry))


def _grammar(
    files: SpeechFiles, words: tuple[str, ...], single: bool, notes: list[str]
) -> str | dict:
    """The decoding grammar: the phrases or the n-gram model given, else ``"isolated"``
    (every utterance one word) or ``"loop"``."""
    if files.grammar is not None and files.lm is not None:
        raise ValueError("--grammar and --lm both constrain decoding: give one of them")
    index = {w: i for i, w in enumerate(words)}
    if files.grammar is not None:
        phrases = read_phrases(files.grammar)
        for phrase in phrases:
            unknown = [w for w in phrase if w not in index]
            if unknown:
                raise ValueError(
                    f"{files.grammar}: the phrase {' '.join(phrase)!r} holds {unknown}, not "
                    f"words of the vocabulary ({_first(words)})"
                )
        return {"phrases": [[index[w] for w in phrase] for phrase in phrases]}
    if files.lm is not None:
        model = read_arpa(files.lm)
        missing = [w for w in words if model.token_id(w) is None]
        if missing:
            raise ValueError(
                f"{files.lm}: no probability for the words {missing}; the model must list "
                "every word of the vocabulary"
            )
        ignored = sorted(set(model.vocab) - set(words) - {BOS, EOS})
        if ignored:
            notes.append(
                f"{files.lm}: words not in the vocabulary, ignored with their n-grams: {ignored}"
            )
        grammar = ngram_data(model, words)
        ngram_grammar(model, words)  # refuses a missing back-off or </s> now, naming them
        return grammar
    return "isolated" if single else "loop"


class _AudioReader:
    """Reads the entries' audio, mono, at its own rate (a recording cut into segments is
    read once), then at one rate; counts what it changed."""

    def __init__(self) -> None:
        self.resampled: Counter[int] = Counter()
        self.downmixed = 0
        self._last: tuple[Path, Tensor, int] | None = None

    def read(self, entry: Entry) -> tuple[Tensor, int]:
        """``(waveform (N,), rate)`` of the entry's audio (its segment)."""
        if self._last is None or self._last[0] != entry.path:
            try:
                samples, rate = read_audio(entry.path)
            except ValueError as error:
                raise ValueError(f"{entry.where}: {error}") from None
            if samples.shape[0] > 1:
                self.downmixed += 1
            self._last = (entry.path, samples.mean(0), rate)
        _, waveform, rate = self._last
        return _segment(waveform, rate, entry), rate

    def at(self, waveform: Tensor, rate: int, sample_rate: int) -> Tensor:
        """``waveform`` resampled from ``rate`` to ``sample_rate`` (counted)."""
        if rate == sample_rate:
            return waveform
        self.resampled[rate] += 1
        return resample(waveform, rate, sample_rate)

    def notes(self, sample_rate: int) -> list[str]:
        out = [
            f"resampled {count} recordings from {rate} Hz to {sample_rate} Hz"
            for rate, count in sorted(self.resampled.items())
        ]
        if self.downmixed:
            out.append(f"{self.downmixed} recordings had several channels: averaged to one (mono)")
        return out


def _segment(waveform: Tensor, rate: int, entry: Entry) -> Tensor:
    """The part of a recording ``(N,)`` at ``rate`` that ``entry`` names (all of it without
    segment times), at least one 25 ms frame long.

    Raises:
        ValueError: naming the entry's line, for a segment starting past the recording's end,
            ending more than `MAX_OVERSHOOT` seconds past it, or shorter than a frame.
    """
    duration = len(waveform) / rate
    start = entry.start or 0.0
    end = duration if entry.end is None else entry.end
    if start >= duration or end > duration + MAX_OVERSHOOT:
        raise ValueError(
            f"{entry.where}: the segment {start:g}-{end:g} s lies outside {entry.path} "
            f"({duration:.3f} s long)"
        )
    piece = waveform[round(start * rate) : round(min(end, duration) * rate)]
    if len(piece) < _MIN_SECONDS * rate:
        raise ValueError(
            f"{entry.where}: {entry.path} is {len(piece) / rate:.3f} s long; expected at least "
            f"one 25 ms frame of audio"
        )
    return piece


#: The files of a Kaldi data directory that `read_kaldi_dir` reads.
_KALDI_FILES = ("wav.scp", "text", "utt2spk", "segments")


def _listing_files(path: Path) -> list[Path]:
    """The files that list the utterances: a manifest, or the files of a data directory that
    are read (not the ``utt2dur`` or ``feats.scp`` Kaldi's tools may add)."""
    if not path.is_dir():
        return [path]
    return [path / name for name in _KALDI_FILES if (path / name).is_file()]


def _most_common(rates: Sequence[int]) -> int:
    """The rate of most recordings (ties: the highest)."""
    counts = Counter(rates)
    return max(counts, key=lambda r: (counts[r], r))


def load_speech(files: SpeechFiles, progress: bool = False) -> SpeechData:
    """Read ``files`` into utterances, split by speaker where a split is not given.

    Every listing is read and checked before any audio is, and every audio file before
    training: an error names the file and line (a transcript, a ``wav.scp`` entry) and what
    was expected.

    Args:
        files: What to read.
        progress: Show a progress bar over the recordings.

    Raises:
        ValueError: naming the option, file or line: an unreadable listing or audio file; a
            word of a development or test transcript with no training recording; test
            speakers beside ``test``, or unknown; too few speakers or utterances to hold
            some out; a grammar or language model over other words.
    """
    from tqdm.auto import tqdm

    if files.test is not None and files.test_speakers:
        raise ValueError("--test and --test-speakers both name the test set: give one of them")
    notes: list[str] = []
    listings: dict[str, list[Path]] = {}  # split -> the files read that list its utterances
    train, listings["train"] = read_entries(files.train, files, "--train")
    if files.test is not None:
        test, listings["test"] = read_entries(files.test, files, "--test")
    elif files.test_speakers:
        train, test = _named_speakers(train, files.test_speakers, notes)
    else:
        train, test = _speaker_split(train, files.held_out or 0.1, "test", notes)
    dev = None
    if files.dev is not None:
        dev, listings["dev"] = read_entries(files.dev, files, "--dev")
    elif files.held_out:
        train, dev = _speaker_split(train, files.held_out, "dev", notes)
    splits = {"train": train, **({"dev": dev} if dev is not None else {}), "test": test}
    _no_overlap(splits)
    words = _vocabulary(files, splits, notes)
    shared = {e.speaker for e in train} & {e.speaker for e in test}
    if shared:
        are = "speaker is" if len(shared) == 1 else "speakers are"
        notes.append(
            f"{len(shared)} {are} in both train and test: scores are not speaker-independent"
        )
    single = all(len(e.words) == 1 for entries in splits.values() for e in entries)
    grammar = _grammar(files, words, single, notes)
    reader = _AudioReader()
    index = {w: i for i, w in enumerate(words)}
    total = sum(len(entries) for entries in splits.values())
    with tqdm(total=total, desc="audio", disable=not progress) as bar:
        audio = {}
        for split, entries in splits.items():
            audio[split] = []
            for entry in entries:
                audio[split].append(reader.read(entry))
                bar.update()
    sample_rate = files.sample_rate or _most_common([rate for _, rate in audio["train"]])
    utterances = {
        split: [
            Utterance(
                entry.id,
                entry.speaker,
                tuple(index[w] for w in entry.words),
                reader.at(waveform, rate, sample_rate),
                sample_rate,
            )
            for entry, (waveform, rate) in zip(entries, audio[split], strict=True)
        ]
        for split, entries in splits.items()
    }
    extra = [p for p in (files.words, files.grammar, files.lm) if p is not None]
    return SpeechData(
        utterances["train"],
        utterances.get("dev"),
        utterances["test"],
        words,
        sample_rate,
        grammar,
        notes + reader.notes(sample_rate),
        {
            **{split: checksums(paths) for split, paths in listings.items()},
            **({"decoding": checksums(extra)} if extra else {}),
        },
    )
