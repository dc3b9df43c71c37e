"""Corpus readers for tagging: the ATIS/SNIPS layout, CoNLL column files, CoNLL-U and JSON
lines.

Nothing here needs torch: a reader returns `Sentence` records of strings, and a `Vocabulary`
(re-exported from `hybrid.vocabulary`) turns strings into the indices models consume.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..files import data_root, read_lines
from ..vocabulary import Vocabulary, str_tuple

__all__ = [
    "Sentence",
    "Vocabulary",
    "data_root",
    "read_atis",
    "read_conll",
    "read_conllu",
    "read_jsonl",
    "read_slot_folder",
]


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
        where: Where the sentence was read (``"train.txt, line 12"``), for error messages;
            not compared.

    Raises:
        ValueError: if ``tags`` or ``features`` do not have one string per word.
    """

    words: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    intent: str | None = None
    features: tuple[str, ...] | None = None
    where: str | None = field(default=None, compare=False, repr=False)

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

    The split folder ``folder/split`` holds three aligned files with one utterance per line
    (`read_slot_folder`), the intents' ``label`` file included.

    Args:
        folder: The ATIS folder, containing ``train``, ``valid`` and ``test``.
        split: Name of the split sub-folder, e.g. ``"train"``.

    Returns:
        One `Sentence` per utterance, with ``words``, ``tags`` and ``intent`` set.

    Raises:
        FileNotFoundError: if one of the three files is missing.
        ValueError: as `read_slot_folder`.
    """
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string such as 'train', got {split!r}")
    base = Path(folder) / split
    missing = [str(base / n) for n in ("seq.in", "seq.out", "label") if not (base / n).is_file()]
    if missing:
        raise FileNotFoundError(f"ATIS split {split!r} lacks {', '.join(missing)}")
    return read_slot_folder(base)


def read_slot_folder(folder: str | os.PathLike[str]) -> list[Sentence]:
    """Read a slot-filling folder in the ATIS/SNIPS layout (Goo et al. 2018).

    The folder holds aligned files with one utterance per line: ``seq.in`` (space-separated
    tokens), ``seq.out`` (one slot tag per token) and, optionally, ``label`` (the intent).

    Returns:
        One `Sentence` per utterance, with ``words`` and ``tags`` set, and ``intent`` when
        the folder has a ``label`` file.

    Raises:
        FileNotFoundError: ``seq.in`` or ``seq.out`` is missing.
        ValueError: naming the file and line when an utterance is empty, its token and tag
            counts differ, its intent is empty, the files have different line counts, or a
            file is not UTF-8 text (a byte-order mark is allowed); naming ``seq.in`` when the
            folder holds no utterance (empty or blank files).
    """
    base = Path(folder)
    names = ["seq.in", "seq.out"] + (["label"] if (base / "label").is_file() else [])
    paths = {name: base / name for name in names}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{base}: no {', '.join(missing)}; expected seq.in and seq.out (and optionally "
            "label) with one utterance per line"
        )
    lines = {name: _read_lines(path) for name, path in paths.items()}
    counts = {name: len(v) for name, v in lines.items()}
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{paths[n]}: {c}" for n, c in counts.items())
        raise ValueError(f"{base}: the files have different line counts ({detail})")
    if not lines["seq.in"]:
        raise ValueError(
            f"{paths['seq.in']}: no utterance; expected one utterance per line (the file is "
            "empty or blank)"
        )
    sentences = []
    labels = lines.get("label", [None] * counts["seq.in"])
    rows = zip(lines["seq.in"], lines["seq.out"], labels, strict=True)
    for number, (text, tag_text, label) in enumerate(rows, start=1):
        words, tags = text.split(), tag_text.split()
        if not words:
            raise ValueError(f"{paths['seq.in']}, line {number}: empty utterance")
        if len(tags) != len(words):
            raise ValueError(
                f"{paths['seq.out']}, line {number}: {len(tags)} tags for {len(words)} tokens "
                f"in {paths['seq.in']}"
            )
        intent = None if label is None else label.strip()
        if intent == "":
            raise ValueError(f"{paths['label']}, line {number}: empty intent")
        where = f"{paths['seq.in']}, line {number}"
        sentences.append(Sentence(tuple(words), tuple(tags), intent, where=where))
    return sentences


def _check_column(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name} must be an integer column index or None, got {value!r}")


def read_conll(
    path: str | os.PathLike[str],
    tag_column: int | None = -1,
    feature_column: int | None = None,
    word_column: int = 0,
    comment: str | None = None,
) -> list[Sentence]:
    """Read a whitespace-separated column file such as CoNLL-2000 (``word POS chunk``) or
    CoNLL-2003 (``word POS chunk NER``).

    One token per line, a blank line between sentences. ``-DOCSTART-`` lines and repeated
    or trailing blank lines are skipped. The file is UTF-8 text (a byte-order mark is
    dropped; CRLF line ends are read as LF). Every token line of the file must have the same
    number of columns.

    Args:
        path: The file.
        tag_column: Column of the tags (negative counts from the end; default: the last),
            or ``None`` for no tags.
        feature_column: Column stored as `Sentence.features` (e.g. ``1`` for the POS tags of
            CoNLL-2000), or ``None``.
        word_column: Column of the words (default: the first).
        comment: Lines starting with this text are comments and skipped (e.g. ``"#"``);
            ``None`` (the default) for none, as ``#`` is a word of CoNLL-2000.

    Returns:
        One `Sentence` per sentence, in file order.

    Raises:
        ValueError: naming the file and line when a line has a different number of columns
            than the first token line, a requested column does not exist, or the bytes are
            not UTF-8; naming the file when it holds no sentence (empty, or blank lines and
            ``-DOCSTART-`` only).
    """
    _check_column(word_column, "word_column")
    _check_column(tag_column, "tag_column")
    _check_column(feature_column, "feature_column")
    if word_column is None:
        raise ValueError("word_column must be an integer column index, got None")
    if comment is not None and (not isinstance(comment, str) or not comment):
        raise ValueError(f"comment must be a non-empty string or None, got {comment!r}")
    path = Path(path)
    sentences: list[Sentence] = []
    rows: list[list[str]] = []
    first_line = 0
    width: int | None = None
    columns_asked = (
        ("word_column", word_column),
        ("tag_column", tag_column),
        ("feature_column", feature_column),
    )

    def flush() -> None:
        if rows:
            words = tuple(r[word_column] for r in rows)
            tags = None if tag_column is None else tuple(r[tag_column] for r in rows)
            feats = None if feature_column is None else tuple(r[feature_column] for r in rows)
            sentences.append(Sentence(words, tags, None, feats, where=f"{path}, line {first_line}"))
            rows.clear()

    for number, line in enumerate(read_lines(path), start=1):
        if comment is not None and line.startswith(comment):
            continue
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            flush()
            continue
        if width is None:
            width = len(columns)
            for name, col in columns_asked:
                if col is not None and not -width <= col < width:
                    raise ValueError(
                        f"{path}, line {number}: {name}={col} is out of range for {width} columns"
                    )
        elif len(columns) != width:
            raise ValueError(f"{path}, line {number}: expected {width} columns, got {len(columns)}")
        if not rows:
            first_line = number
        rows.append(columns)
    flush()
    if not sentences:
        raise ValueError(
            f"{path}: no sentence; expected one token per line and a blank line between "
            "sentences (the file is empty, or holds only blank lines and -DOCSTART-)"
        )
    return sentences


# The ten fields of a CoNLL-U word line (https://universaldependencies.org/format.html).
CONLLU_FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")


def _conllu_field(spec: str, name: str) -> tuple[int, str | None]:
    """``(column, MISC key or None)`` of a field named ``upos``, ``xpos`` ... or
    ``misc:KEY`` (the value of ``KEY=value`` in the MISC column)."""
    if not isinstance(spec, str):
        raise ValueError(f"{name} must be a CoNLL-U field name, got {spec!r}")
    field_name, _, key = spec.partition(":")
    field_name = field_name.lower()
    if field_name == "misc" and key:
        return CONLLU_FIELDS.index("misc"), key
    if field_name in CONLLU_FIELDS and not key and field_name not in ("id", "misc"):
        return CONLLU_FIELDS.index(field_name), None
    raise ValueError(
        f"{name} must be one of {', '.join(CONLLU_FIELDS[1:-1])} or misc:KEY (e.g. misc:NE), "
        f"got {spec!r}"
    )


def read_conllu(
    path: str | os.PathLike[str],
    tag_field: str | None = "upos",
    feature_field: str | None = None,
) -> list[Sentence]:
    """Read a CoNLL-U file (Universal Dependencies): one word per line in ten tab-separated
    fields, a blank line after each sentence, ``#`` comment lines before it.

    Multi-word token lines (ID ``3-4``: ``del`` over ``de`` + ``el``) and empty nodes (ID
    ``5.1``) are skipped: the words are the syntactic words, as for UPOS tagging. A word
    form may contain spaces. The file is UTF-8 (a byte-order mark is dropped; CRLF read as LF).

    Args:
        path: The file.
        tag_field: The field of the tags: ``"upos"`` (default), ``"xpos"``, another field
            such as ``"deprel"``, or ``"misc:KEY"`` for the value of ``KEY=value`` in MISC
            (e.g. ``"misc:NE"`` for named-entity tags kept there); ``None`` for no tags.
        feature_field: A field stored as `Sentence.features`, or ``None``.

    Returns:
        One `Sentence` per sentence, in file order.

    Raises:
        ValueError: naming the file and line: a word line without ten tab-separated fields,
            an ID that is not an integer, a range or a decimal, a word without the MISC
            key asked for, or an empty field; naming the file when it holds no sentence.
    """
    fields = {
        name: None if spec is None else _conllu_field(spec, name)
        for name, spec in (("tag_field", tag_field), ("feature_field", feature_field))
    }
    path = Path(path)
    sentences: list[Sentence] = []
    rows: list[tuple[str, str | None, str | None]] = []
    first_line = [0]

    def value(columns: list[str], spec: tuple[int, str | None] | None, where: str) -> str | None:
        if spec is None:
            return None
        column, key = spec
        if key is None:
            return columns[column]
        for item in columns[column].split("|"):
            name, sep, found = item.partition("=")
            if sep and name == key:
                return found
        raise ValueError(f"{where}: no {key}=... in the MISC field {columns[column]!r}")

    def flush() -> None:
        if rows:
            words, tags, feats = zip(*rows, strict=True)
            sentences.append(
                Sentence(
                    words,
                    None if tag_field is None else tags,
                    None,
                    None if feature_field is None else feats,
                    where=f"{path}, line {first_line[0]}",
                )
            )
            rows.clear()

    for number, line in enumerate(read_lines(path), start=1):
        where = f"{path}, line {number}"
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != len(CONLLU_FIELDS):
            raise ValueError(
                f"{where}: expected 10 tab-separated fields (ID FORM LEMMA UPOS XPOS FEATS HEAD "
                f"DEPREL DEPS MISC), got {len(columns)}"
            )
        word_id = columns[0]
        if "-" in word_id or "." in word_id:  # a multi-word token or an empty node
            continue
        if not word_id.isdigit():
            raise ValueError(f"{where}: the ID {word_id!r} is not a word index")
        tag = value(columns, fields["tag_field"], where)
        feature = value(columns, fields["feature_field"], where)
        if not columns[1] or tag == "" or feature == "":
            raise ValueError(f"{where}: an empty field where a word, tag or feature is read")
        if not rows:
            first_line[0] = number
        rows.append((columns[1], tag, feature))
    flush()
    if not sentences:
        raise ValueError(
            f"{path}: no sentence; expected CoNLL-U word lines (10 tab-separated fields), a "
            "blank line after each sentence"
        )
    return sentences


def read_jsonl(path: str | os.PathLike[str]) -> list[Sentence]:
    """Read JSON lines: one object per line, ``{"tokens": [...], "tags": [...]}`` with an
    optional ``"intent"`` (a string) and optional ``"features"`` (one string per token).

    Blank lines are skipped. The file is UTF-8 (a byte-order mark is dropped).

    Returns:
        One `Sentence` per line, in file order.

    Raises:
        ValueError: naming the file and line: a line that is not a JSON object, a missing
            or empty ``tokens`` list, ``tags`` or ``features`` of another length, a value of
            the wrong type, or an unknown key; naming the file when it holds no sentence.
    """
    path = Path(path)
    known = {"tokens", "tags", "intent", "features"}
    sentences = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        unknown = sorted(record.keys() - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; expected {sorted(known)}")
        tokens = record.get("tokens")
        if not isinstance(tokens, list) or not tokens:
            raise ValueError(f'{where}: expected "tokens", a non-empty list of strings')
        try:
            sentences.append(
                Sentence(
                    tokens,
                    record.get("tags"),
                    record.get("intent"),
                    record.get("features"),
                    where=where,
                )
            )
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    if not sentences:
        raise ValueError(f'{path}: no sentence; expected one {{"tokens": [...], ...}} per line')
    return sentences
