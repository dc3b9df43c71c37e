"""Corpus readers (ATIS, CoNLL column files) and token vocabularies.

Nothing here needs torch: a reader returns `Sentence` records of strings, and a `Vocabulary`
turns strings into the integer indices that models consume.
"""

from __future__ import annotations

import operator
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Sentence", "Vocabulary", "data_root", "read_atis", "read_conll"]

# ``../shared/data`` next to the repository (the folder above the ``hybrid`` package).
_DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _str_tuple(value: Any, name: str, length: int | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"{name} must be a sequence of strings, not a single string {value!r}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(item).__name__}")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have one entry per word ({length}), got {len(items)}")
    return items


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
        words = _str_tuple(self.words, "words")
        object.__setattr__(self, "words", words)
        if self.tags is not None:
            object.__setattr__(self, "tags", _str_tuple(self.tags, "tags", len(words)))
        if self.features is not None:
            object.__setattr__(self, "features", _str_tuple(self.features, "features", len(words)))
        if self.intent is not None and not isinstance(self.intent, str):
            raise ValueError(f"intent must be a string or None, got {type(self.intent).__name__}")

    def __len__(self) -> int:
        return len(self.words)


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file without line ends, trailing blank lines dropped."""
    lines = path.read_text(encoding="utf-8").splitlines()
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
            counts differ, its intent is empty, or the files have different line counts.
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
    lines and repeated or trailing blank lines are skipped. Every token line of the file
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
            than the first token line, or a requested column does not exist.
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

    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
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
                            f"{path}, line {number}: {name}={col} is out of range for "
                            f"{width} columns"
                        )
            elif len(columns) != width:
                raise ValueError(
                    f"{path}, line {number}: expected {width} columns, got {len(columns)}"
                )
            rows.append(columns)
    flush()
    return sentences


def data_root(given: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding the real corpora (``atis/``, ``conll2000/``, ...).

    Args:
        given: An explicit folder; returned as a `Path` when not ``None``.

    Returns:
        ``given``; else the environment variable ``HYBRID_DATA`` when set and non-empty;
        else ``../shared/data`` beside the repository (the folder above the ``hybrid``
        package) when it exists; else ``None``. Only the last one is checked for existence.
    """
    if given is not None:
        return Path(given).expanduser()
    env = os.environ.get("HYBRID_DATA", "")
    if env:
        return Path(env).expanduser()
    return _DEFAULT_DATA if _DEFAULT_DATA.is_dir() else None


_DEFAULT_SPECIALS = ("<pad>", "<unk>")
_AUTO = object()


class Vocabulary:
    """A bijection between tokens and indices ``0 .. len - 1``, specials first.

    Specials take the first indices in the order given (by default ``"<pad>" = 0`` and
    ``"<unk>" = 1``); the other tokens follow by decreasing count, ties in string order, so
    the same tokens always give the same indices.

    Args:
        tokens: The tokens to count (e.g. every word of the training set).
        min_count: Keep tokens seen at least this often (specials are always kept).
        specials: Reserved tokens; ``()`` for a label vocabulary.
        unk: The special that unknown tokens map to. By default ``"<unk>"`` when it is among
            ``specials``, else ``None``: then `index` raises ``ValueError`` for an unknown
            token, which is what a label vocabulary needs.

    Raises:
        ValueError: for non-string tokens, ``min_count < 1``, repeated specials, or an
            ``unk`` that is not one of the ``specials``.

    Example:
        >>> words = Vocabulary(["a", "b", "a"])
        >>> words.encode(["a", "zzz"])
        [2, 1]
        >>> labels = Vocabulary(["O", "B-X", "O"], specials=())
        >>> labels.tokens
        ['O', 'B-X']
    """

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        min_count: int = 1,
        specials: Sequence[str] = _DEFAULT_SPECIALS,
        unk: Any = _AUTO,
    ) -> None:
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
        specials = _str_tuple(specials, "specials")
        if isinstance(tokens, str):
            raise ValueError("tokens must be an iterable of strings, not a single string")
        counts: Counter[str] = Counter()
        for i, token in enumerate(tokens):
            if not isinstance(token, str):
                raise ValueError(f"tokens[{i}] must be a string, got {type(token).__name__}")
            counts[token] += 1
        reserved = set(specials)
        kept = [t for t, c in counts.items() if c >= min_count and t not in reserved]
        kept.sort(key=lambda t: (-counts[t], t))
        if unk is _AUTO:
            unk = "<unk>" if "<unk>" in reserved else None
        self._setup(list(specials) + kept, specials, unk)

    def _setup(self, itos: list[str], specials: tuple[str, ...], unk: str | None) -> None:
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials must be distinct, got {list(specials)}")
        if unk is not None and unk not in specials:
            raise ValueError(f"unk must be one of specials {list(specials)} or None, got {unk!r}")
        self._itos = itos
        self._stoi = {token: i for i, token in enumerate(itos)}
        if len(self._stoi) != len(itos):
            raise ValueError("tokens must be distinct")
        self._specials = specials
        self._unk = unk

    @property
    def tokens(self) -> list[str]:
        """All tokens in index order, specials first (a copy)."""
        return list(self._itos)

    @property
    def specials(self) -> tuple[str, ...]:
        """The reserved tokens, which hold indices ``0 .. len(specials) - 1``."""
        return self._specials

    @property
    def unk_index(self) -> int | None:
        """Index that unknown tokens map to, or ``None`` when unknown tokens are an error."""
        return None if self._unk is None else self._stoi[self._unk]

    @property
    def pad_index(self) -> int | None:
        """Index of ``"<pad>"`` (e.g. for ``nn.Embedding(padding_idx=...)``), or ``None``."""
        return self._stoi.get("<pad>") if "<pad>" in self._specials else None

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self._itos, self._specials, self._unk) == (
            other._itos,
            other._specials,
            other._unk,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, specials={list(self._specials)}, unk={self._unk!r})"

    def index(self, token: str) -> int:
        """Index of ``token``; the ``unk`` index for an unknown token.

        Raises:
            ValueError: naming the token when it is unknown and the vocabulary has no ``unk``.
        """
        i = self._stoi.get(token)
        if i is not None:
            return i
        if self._unk is None:
            raise ValueError(f"token {token!r} is not in the vocabulary (and it has no unk)")
        return self._stoi[self._unk]

    def token(self, index: int) -> str:
        """The token at ``index`` (``0 <= index < len``).

        Raises:
            ValueError: if ``index`` is not an integer in range.
        """
        try:
            i = operator.index(index)
        except TypeError:
            raise ValueError(f"index must be an integer, got {type(index).__name__}") from None
        if not 0 <= i < len(self._itos):
            raise ValueError(f"index must be in [0, {len(self._itos)}), got {i}")
        return self._itos[i]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of ``tokens``, one per token (see `index`)."""
        if isinstance(tokens, str):
            raise ValueError("tokens must be an iterable of strings, not a single string")
        return [self.index(t) for t in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        """Tokens at ``indices`` (Python ints, NumPy ints or 0-d integer tensors)."""
        return [self.token(i) for i in indices]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description: ``{"tokens", "specials", "unk"}``."""
        return {"tokens": list(self._itos), "specials": list(self._specials), "unk": self._unk}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild the exact vocabulary (same indices) that `to_dict` described.

        Raises:
            ValueError: if ``data`` lacks a key, has wrong types, repeats a token, or its
                tokens do not start with its specials.
        """
        if not isinstance(data, dict) or not {"tokens", "specials", "unk"} <= data.keys():
            raise ValueError("data must be a dict with keys 'tokens', 'specials' and 'unk'")
        tokens = _str_tuple(data["tokens"], "data['tokens']")
        specials = _str_tuple(data["specials"], "data['specials']")
        unk = data["unk"]
        if unk is not None and not isinstance(unk, str):
            raise ValueError(f"data['unk'] must be a string or None, got {unk!r}")
        if tokens[: len(specials)] != specials:
            raise ValueError("data['tokens'] must start with data['specials']")
        vocab = cls.__new__(cls)
        vocab._setup(list(tokens), specials, unk)
        return vocab
