"""The data of a tagging run: the user's files in the field's formats, the benchmark presets,
or the embedded synthetic corpus.

A `TaggingFiles` says where the splits are and how to read them; `load_tagging` reads them
(`hybrid.tagging.corpus`), holds a seeded fraction of train out for the splits not given,
detects the tagging scheme (`detect_scheme`) and checks every tag against it, and records the
files' checksums. The benchmark corpora are `PRESETS`: their paths under the data folder and
their reading options, nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..corpora import HELD_OUT_SEED, checksums, expand_paths, hold_out
from .corpus import (
    Sentence,
    data_root,
    read_conll,
    read_conllu,
    read_jsonl,
    read_slot_folder,
)
from .metrics import iob1_to_bio
from .schemes import SCHEMES, detect_scheme, first_violation, split_tag
from .synthetic import SYNTHETIC_NOTICE, airline_splits

FORMATS = ("conll", "conllu", "jsonl", "slots")
SPLITS = ("train", "valid", "test")
HELD_OUT_FRACTION = 0.1


@dataclass(frozen=True)
class TaggingFiles:
    """Where a tagging corpus is and how to read it.

    Attributes:
        train: Files (or glob patterns) of the training split; a folder in the ``slots``
            format.
        dev: Those of the development split; none: a seeded ``held_out`` fraction of train
            (or the last ``dev_last`` training sentences).
        test: Those of the test split; none: a seeded ``held_out`` fraction of train.
        format: ``"conll"`` (whitespace-separated columns), ``"conllu"`` (Universal
            Dependencies), ``"jsonl"`` (``{"tokens", "tags", "intent"}`` per line) or
            ``"slots"`` (an ATIS/SNIPS folder: ``seq.in``, ``seq.out``, optional ``label``);
            ``None``: from the first training path (a folder: ``slots``; ``.conllu``;
            ``.jsonl`` or ``.json``; else ``conll``).
        word_column, tag_column, feature_column, comment: The columns of a ``conll`` file
            and its comment prefix (`read_conll`).
        tag_field, feature_field: The fields of a ``conllu`` file (`read_conllu`).
        scheme: ``"auto"`` (detected from the training tags), ``"BIO"``, ``"BIOES"``,
            ``"IOB1"``, or ``"none"`` for plain labels (POS tags ...: no chunks).
        dev_last: Take the last ``dev_last`` training sentences as the development split
            when none is given (the CoNLL-2000 convention), instead of a random fraction.
        held_out: The fraction of train held out for each split not given.
    """

    train: Sequence[str | os.PathLike[str]]
    dev: Sequence[str | os.PathLike[str]] = ()
    test: Sequence[str | os.PathLike[str]] = ()
    format: str | None = None
    word_column: int = 0
    tag_column: int = -1
    feature_column: int | None = None
    comment: str | None = None
    tag_field: str = "upos"
    feature_field: str | None = None
    scheme: str = "auto"
    dev_last: int | None = None
    held_out: float = HELD_OUT_FRACTION


@dataclass
class TaggingData:
    """What `load_tagging` read.

    Attributes:
        splits: ``"train"``, ``"valid"`` and ``"test"`` sentences.
        scheme: The tags' scheme (``"BIO"``, ``"BIOES"``, ``"IOB1"``), or ``None`` for plain
            labels.
        notes: What was decided for the user (held-out splits, the scheme detected), to
            print before training.
        files: ``{split: [{"path", "sha256"}]}`` of the files read.
    """

    splits: dict[str, list[Sentence]]
    scheme: str | None
    notes: list[str] = field(default_factory=list)
    files: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _preset_atis(root: Path) -> TaggingFiles:
    folder = root / "atis"
    return TaggingFiles([folder / "train"], [folder / "valid"], [folder / "test"], "slots")


def _preset_conll2000(root: Path) -> TaggingFiles:
    folder = root / "conll2000"
    return TaggingFiles(
        [folder / "train.txt"],
        test=[folder / "test.txt"],
        format="conll",
        feature_column=1,
        dev_last=CONLL_DEV_SENTENCES,
    )


CONLL_DEV_SENTENCES = 1000  # CoNLL-2000 has no development split: the last train sentences

#: The benchmark corpora: their files under the data folder and how to read them.
PRESETS: dict[str, Callable[[Path], TaggingFiles]] = {
    "atis": _preset_atis,
    "conll2000": _preset_conll2000,
}
CORPORA = ("synthetic", *PRESETS)


def preset_files(corpus: str, data: str | os.PathLike[str] | None = None) -> TaggingFiles:
    """The `TaggingFiles` of a benchmark ``corpus`` under the data folder ``data`` (default:
    ``$HYBRID_DATA`` or ``../shared/data``).

    Raises:
        ValueError: an unknown ``corpus``, or no folder for it.
    """
    if corpus not in PRESETS:
        raise ValueError(f"corpus must be one of {sorted(PRESETS)}, got {corpus!r}")
    root = data_root(data)
    folder = None if root is None else Path(root) / corpus
    if folder is None or not folder.is_dir():
        raise ValueError(
            f"no {corpus} data found (looked in {folder}); pass --data with the folder that "
            f"holds '{corpus}/', set HYBRID_DATA, or use --corpus synthetic"
        )
    return PRESETS[corpus](Path(root))


def load_splits(corpus: str, data: str | Path | None = None) -> dict[str, list[Sentence]]:
    """Train/valid/test sentences of a named corpus: ``"synthetic"`` (generated, no
    download) or a preset (`PRESETS`: ``"atis"``, ``"conll2000"``) read with `load_tagging`.

    Raises:
        ValueError: as `preset_files` and `load_tagging`.
    """
    if corpus == "synthetic":  # small enough for the whole comparison in about a minute
        return airline_splits(train=600, valid=200, test=400)
    return load_tagging(preset_files(corpus, data)).splits


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a training path: a folder is ``slots``, ``.conllu`` is ``conllu``,
    ``.jsonl`` / ``.json`` are ``jsonl``, anything else ``conll``."""
    path = Path(path)
    if path.is_dir():
        return "slots"
    suffix = path.suffix.lower()
    if suffix == ".conllu":
        return "conllu"
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    return "conll"


def _paths(patterns: Sequence, what: str, format: str) -> list[Path]:
    """The files (or, in the ``slots`` format, folders) that ``patterns`` name."""
    if format != "slots":
        return expand_paths(patterns, what)
    folders = [Path(os.path.expanduser(str(p))) for p in patterns]
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(
                f"{what}: {str(folder)!r} is not a folder; the slots format reads a folder "
                "holding seq.in, seq.out and optionally label"
            )
    return folders


def _reader(files: TaggingFiles, format: str) -> Callable[[Path], list[Sentence]]:
    if format == "conll":
        return lambda path: read_conll(
            path, files.tag_column, files.feature_column, files.word_column, files.comment
        )
    if format == "conllu":
        return lambda path: read_conllu(path, files.tag_field, files.feature_field)
    if format == "jsonl":
        return read_jsonl
    return read_slot_folder


def load_tagging(files: TaggingFiles) -> TaggingData:
    """Read, split and check a tagging corpus; nothing trains before this returns.

    Raises:
        ValueError: a file a reader refuses (naming the file and line), a sentence without
            tags, a split whose sentences do not all carry intents or features when others
            do, a tag the scheme forbids (naming the file and line of its sentence), an
            unknown format or scheme, or too few training sentences to hold splits out.
    """
    scheme_name = (
        files.scheme if files.scheme in ("auto", "none") else SCHEMES.get(str(files.scheme).upper())
    )
    if scheme_name is None:
        raise ValueError(
            f"scheme must be 'auto', 'none' or one of {sorted(SCHEMES)}, got {files.scheme!r}"
        )
    train_paths = files.train if not isinstance(files.train, str | os.PathLike) else [files.train]
    if not train_paths:
        raise ValueError("--train: expected at least one file")
    format = files.format or detect_format(os.path.expanduser(str(train_paths[0])))
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    read = _reader(files, format)
    given = {"train": train_paths, "valid": files.dev, "test": files.test}
    names = {"train": "--train", "valid": "--dev", "test": "--test"}
    paths = {split: _paths(given[split], names[split], format) for split in SPLITS if given[split]}
    splits = {split: [s for p in found for s in read(p)] for split, found in paths.items()}
    notes = _hold_out(splits, files, ", ".join(map(str, paths["train"])))
    _check_annotations(splits)
    scheme = _scheme(splits, scheme_name, notes)
    return TaggingData(
        {split: splits[split] for split in SPLITS},
        scheme,
        notes,
        {split: checksums(found) for split, found in paths.items()},
    )


def _hold_out(splits: dict[str, list[Sentence]], files: TaggingFiles, train: str) -> list[str]:
    """Fill the development and test splits not given from the training sentences (read
    from ``train``); the notes saying so."""
    notes = []
    for split, option in (("test", "--test"), ("valid", "--dev")):
        if split in splits:
            continue
        sentences = splits["train"]
        if split == "valid" and files.dev_last is not None:
            if len(sentences) <= files.dev_last:
                raise ValueError(
                    f"{train}: {len(sentences)} sentences; expected more than {files.dev_last}: "
                    f"the last {files.dev_last} are the development split, the sentences before "
                    "them the training split"
                )
            last = files.dev_last
            splits["train"], splits[split] = sentences[:-last], sentences[-last:]
            notes.append(f"development split: the last {files.dev_last} training sentences")
            continue
        splits["train"], splits[split] = hold_out(sentences, files.held_out, "--train")
        notes.append(
            f"no {option}: {len(splits[split])} of {len(sentences)} training sentences "
            f"({100 * files.held_out:g}%, seed {HELD_OUT_SEED}) held out as the "
            f"{'development' if split == 'valid' else 'test'} split"
        )
    return notes


def _where(sentence: Sentence, split: str, index: int) -> str:
    return sentence.where or f"{split} sentence {index + 1}"


def _check_annotations(splits: dict[str, list[Sentence]]) -> None:
    """Every sentence has tags; intents and features are on every sentence or on none."""
    everything = [(split, i, s) for split in SPLITS for i, s in enumerate(splits[split])]
    for split, i, sentence in everything:
        if sentence.tags is None:
            raise ValueError(f"{_where(sentence, split, i)}: a sentence without tags")
    for attribute in ("intent", "features"):
        having = [getattr(s, attribute) is not None for _, _, s in everything]
        if any(having) and not all(having):
            split, i, sentence = everything[having.index(not having[0])]
            found = f"no {attribute}" if having[0] else f"a {attribute}"
            first = "has one" if having[0] else "has none"
            raise ValueError(
                f"{_where(sentence, split, i)}: {found}, but the first training sentence "
                f"{first}; expected {attribute} on every sentence or on none"
            )


def _scheme(splits: dict[str, list[Sentence]], name: str, notes: list[str]) -> str | None:
    """The scheme asked for or detected from train, every tag checked against it."""
    if name == "none":
        return None
    if name == "auto":
        detected = detect_scheme([s.tags for s in splits["train"]])
        notes.append(
            "tags: plain labels (no chunks): token accuracy and per-label scores"
            if detected is None
            else f"tags: {detected} chunks, detected from the training tags"
        )
        if detected is None:
            return None
        name = detected
    prefixes = {"BIO": "BI", "IOB1": "BI", "BIOES": "BIES"}[name]
    repaired = 0
    for split in SPLITS:
        for i, sentence in enumerate(splits[split]):
            where = _where(sentence, split, i)
            for tag in sentence.tags:
                try:
                    split_tag(tag, prefixes)
                except ValueError:
                    raise ValueError(
                        f"{where}: tag {tag!r} is not a {name} tag ('O' or "
                        f"{', '.join(p + '-TYPE' for p in prefixes)}); give --scheme none for "
                        "plain labels"
                    ) from None
            if name == "BIO" and first_violation(name, sentence.tags) is not None:
                # an I-X opening a chunk: read as conlleval reads it, B-X
                splits[split][i] = replace(sentence, tags=tuple(iob1_to_bio(sentence.tags)))
                repaired += 1
                continue
            broken = first_violation(name, sentence.tags)
            if broken is not None:
                found = "the end" if broken == len(sentence.tags) else f"token {broken + 1}"
                raise ValueError(
                    f"{where}: the tags {' '.join(sentence.tags)} are not well-formed {name} "
                    f"(at {found}); give the scheme they are written in (--scheme)"
                )
    if repaired:
        notes.append(
            f"{repaired} sentences had an I-X opening a chunk (ill-formed BIO): read as B-X, "
            "as conlleval reads them"
        )
    return name


__all__ = [
    "CORPORA",
    "FORMATS",
    "PRESETS",
    "SYNTHETIC_NOTICE",
    "TaggingData",
    "TaggingFiles",
    "detect_format",
    "load_splits",
    "load_tagging",
    "preset_files",
]
