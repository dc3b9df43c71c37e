"""Corpus readers for tagging: the ATIS/SNIPS layout and CoNLL column files.

Nothing here needs torch: a reader returns `Sentence` records of strings, and a `Vocabulary`
(re-exported from `hybrid.vocabulary`) turns strings into the indices models consume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..files import data_root, read_lines
from ..vocabulary import Vocabulary, str_tuple

__all__ = ["Sentence", "Vocabulary", "data_root", "read_atis", "read_conll"]


@dataclass(frozen=True)
class Sentence:
    """One tokenised sentence (or utterance) with its optional annotations.

    Sequences given as lists are stored as tuples, so a `Sentence` is hashable.

    Attributes:
        words: The ``L`` tokens.
        tags: ``L`` chunk/slot tags as written in the file (e.g. BIO), or ``None``.
        intent: Utterance label (ATIS), e.g. ``"atis_flight"`` or
            ``"atis_flight#atis_airfare"`` for a multi-intent utterance, or ``None``.
        features: ``L`` values of an extra token column (e.g. the POS tags of
            CoNLL-2000), or ``None``.

    Raises:
        ValueError: if ``tags`` or ``features`` do not have one string per word.
    """

    words: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    intent: str | None = None
    features: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        words = str_tuple(self.words, "words")
        object.__setattr__(self, "words", words)
        if self.tags is not None:
            object.__setattr__(self, "tags", str_tuple(self.tags, "tags", len(words)))
        if self.features is not None:
            object.__setattr__(self, "features", str_tuple(self.features, "features", len(words)))
        if self.intent is not None and not isinstance(self.intent, str):
            raise ValueError(f"intent must be a string or None, got {type(self.intent).__name__}")

    def __len__(self) -> int:
        return len(self.words)


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (`hybrid.files.read_lines`: no byte-order mark) without
    line ends, trailing blank lines dropped."""
    lines = read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_atis(folder: str | os.PathLike[str], split: str) -> list[Sentence]:
    """Read one split of the ATIS slot-filling corpus (Goo et al. 2018 layout).

    The split folder ``folder/split`` holds three aligned files with one utterance per line:
    ``seq.in`` (space-separated tokens), ``seq.out`` (one BIO slot tag per token) and
    ``label`` (the intent).

    Args:
        folder: The ATIS folder, containing ``train``, ``valid`` and ``test``.
        split: Name of the split sub-folder, e.g. ``"train"``.

    Returns:
        One `Sentence` per utterance, with ``words``, ``tags`` and ``intent`` set.

    Raises:
        FileNotFoundError: if one of the three files is missing.
        ValueError: naming the file and line when an utterance is empty, its token and tag
            counts differ, its intent is empty, the files have different line counts, or a
            file is not UTF-8 text (a byte-order mark is allowed); naming ``seq.in`` when the
            split holds no utterance (empty or blank files).
    """
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string such as 'train', got {split!r}")
    base = Path(folder) / split
    paths = {name: base / name for name in ("seq.in", "seq.out", "label")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"ATIS split {split!r} lacks {', '.join(missing)}")
    lines = {name: _read_lines(path) for name, path in paths.items()}
    counts = {name: len(v) for name, v in lines.items()}
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{paths[n]}: {c}" for n, c in counts.items())
        raise ValueError(f"ATIS files of split {split!r} have different line counts ({detail})")
    if not lines["seq.in"]:
        raise ValueError(
            f"{paths['seq.in']}: no utterance; expected one utterance per line (the file is "
            "empty or blank)"
        )
    sentences = []
    rows = zip(lines["seq.in"], lines["seq.out"], lines["label"], strict=True)
    for number, (text, tag_text, label) in enumerate(rows, start=1):
        words, tags, intent = text.split(), tag_text.split(), label.strip()
        if not words:
            raise ValueError(f"{paths['seq.in']}, line {number}: empty utterance")
        if len(tags) != len(words):
            raise ValueError(
                f"{paths['seq.out']}, line {number}: {len(tags)} tags for {len(words)} tokens "
                f"in {paths['seq.in']}"
            )
        if not intent:
            raise ValueError(f"{paths['label']}, line {number}: empty intent")
        sentences.append(Sentence(tuple(words), tuple(tags), intent))
    return sentences


def _check_column(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name} must be an integer column index or None, got {value!r}")


def read_conll(
    path: str | os.PathLike[str],
    tag_column: int | None = -1,
    feature_column: int | None = None,
) -> list[Sentence]:
    """Read a whitespace-separated column file such as CoNLL-2000 (``word POS chunk``).

    One token per line, words in column 0, a blank line between sentences. ``-DOCSTART-``
    lines and repeated or trailing blank lines are skipped. The file is UTF-8 text (a
    byte-order mark is dropped). Every token line of the file
    must have the same number of columns.

    Args:
        path: The file.
        tag_column: Column of the tags (negative counts from the end; default: the last),
            or ``None`` for no tags.
        feature_column: Column stored as `Sentence.features` (e.g. ``1`` for the POS tags of
            CoNLL-2000), or ``None``.

    Returns:
        One `Sentence` per sentence, in file order.

    Raises:
        ValueError: naming the file and line when a line has a different number of columns
            than the first token line, a requested column does not exist, or the bytes are
            not UTF-8; naming the file when it holds no sentence (empty, or blank lines and
            ``-DOCSTART-`` only).
    """
    _check_column(tag_column, "tag_column")
    _check_column(feature_column, "feature_column")
    path = Path(path)
    sentences: list[Sentence] = []
    rows: list[list[str]] = []
    width: int | None = None

    def flush() -> None:
        if rows:
            words = tuple(r[0] for r in rows)
            tags = None if tag_column is None else tuple(r[tag_column] for r in rows)
            feats = None if feature_column is None else tuple(r[feature_column] for r in rows)
            sentences.append(Sentence(words, tags, None, feats))
            rows.clear()

    for number, line in enumerate(read_lines(path), start=1):
        columns = line.split()
        if not columns:
            flush()
            continue
        if columns[0] == "-DOCSTART-":
            flush()
            continue
        if width is None:
            width = len(columns)
            for name, col in (("tag_column", tag_column), ("feature_column", feature_column)):
                if col is not None and not -width <= col < width:
                    raise ValueError(
                        f"{path}, line {number}: {name}={col} is out of range for {width} columns"
                    )
        elif len(columns) != width:
            raise ValueError(f"{path}, line {number}: expected {width} columns, got {len(columns)}")
        rows.append(columns)
    flush()
    if not sentences:
        raise ValueError(
            f"{path}: no sentence; expected one token per line and a blank line between "
            "sentences (the file is empty, or holds only blank lines and -DOCSTART-)"
        )
    return sentences
