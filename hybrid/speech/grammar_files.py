"""Readers for the small text files that constrain word recognition: a vocabulary
(`read_words`) and a grammar of allowed phrases (`read_phrases`). (Language models in the
ARPA format are read by `hybrid.ctc.lm.read_arpa`, any order, and decoded with
`hybrid.speech.topology.ngram_grammar`.)

Plain Python: each reader returns strings and floats. Every file is UTF-8 text (a byte-order
mark is dropped, CRLF and CR line ends read as LF, surrounding whitespace of a line ignored,
blank lines skipped), and every error is a `ValueError` naming ``file:line`` and what was
expected there, or the file alone when it holds nothing usable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..files import read_lines

__all__ = ["read_phrases", "read_words"]

# Entries of a Kaldi symbol table that are not spoken words: the empty label, sentence
# start and end, and the disambiguation symbols #0, #1, ...
_NOT_WORDS = re.compile(r"<eps>|<s>|</s>|#[0-9]+")
_SYMBOL_ID = re.compile(r"[0-9]+")


def _content_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of the non-blank lines of a UTF-8 file (`read_lines`), the
    text stripped of surrounding whitespace."""
    for number, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if text:
            yield number, text


# -- vocabulary ------------------------------------------------------------------------------


def read_words(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Read a vocabulary: one word per line, or Kaldi's ``words.txt`` symbol table (``word
    id`` per line).

    The form is set by the first non-blank line and holds for the whole file. In the Kaldi
    form the ids are distinct non-negative integers and the words are returned ordered by
    id; in the plain form, in file order. In either form the symbols ``<eps>``, ``<s>``,
    ``</s>`` and the disambiguation symbols ``#0``, ``#1``, ... are dropped, as they are not
    spoken words; every other entry (``<unk>``, ``!SIL``) is kept. ``#`` does not start a
    comment, since ``#0`` is a symbol.

    Returns:
        The words, each once.

    Raises:
        ValueError: naming ``file:line``: a line with more than two fields, an id that is not
            a non-negative integer, a line of the other form than the first, or a word or id
            listed twice (naming the first line too); naming the file when no word is left.
    """
    path = Path(path)
    entries = sorted(_vocabulary_entries(path))
    words = tuple(word for _, word in entries if _NOT_WORDS.fullmatch(word) is None)
    if not words:
        raise ValueError(
            f"{path}: no word; expected one word per line, or 'word id' per line (the file is "
            "empty, blank or lists only <eps>, <s>, </s> and #N symbols)"
        )
    return words


def _vocabulary_entries(path: Path) -> list[tuple[int, str]]:
    """``(order, word)`` per line of a vocabulary file: the order is the id in the Kaldi
    form and the line number in the plain form."""
    entries: list[tuple[int, str]] = []
    word_lines: dict[str, int] = {}
    id_lines: dict[int, int] = {}
    first_width, first_line = 0, 0
    for number, text in _content_lines(path):
        where, fields = f"{path}:{number}", text.split()
        if len(fields) > 2:
            raise ValueError(
                f"{where}: {len(fields)} fields; expected a word, or a word and its id"
            )
        if not first_width:
            first_width, first_line = len(fields), number
        elif len(fields) != first_width:
            raise ValueError(
                f"{where}: {len(fields)} field(s) but line {first_line} has {first_width}; "
                "expected one word per line or 'word id' per line throughout, not both"
            )
        word = fields[0]
        if word in word_lines:
            raise ValueError(
                f"{where}: {word!r} is listed again (first at line {word_lines[word]})"
            )
        word_lines[word] = number
        order = _symbol_id(where, fields[1], id_lines, number) if len(fields) == 2 else number
        entries.append((order, word))
    return entries


def _symbol_id(where: str, text: str, id_lines: dict[int, int], number: int) -> int:
    """The id ``text`` of a symbol table entry on line ``number``, recorded in ``id_lines``
    (id to line)."""
    if _SYMBOL_ID.fullmatch(text) is None:
        raise ValueError(f"{where}: the id {text!r} is not a non-negative integer")
    symbol_id = int(text)
    if symbol_id in id_lines:
        raise ValueError(
            f"{where}: the id {symbol_id} is used again (first at line {id_lines[symbol_id]})"
        )
    id_lines[symbol_id] = number
    return symbol_id


# -- phrases ---------------------------------------------------------------------------------


def read_phrases(path: str | os.PathLike[str]) -> list[tuple[str, ...]]:
    """Read a grammar of allowed phrases: one phrase per line, its words separated by
    whitespace.

    Lines whose first non-blank character is ``#`` are comments. A phrase listed again is
    kept once, where it first appears.

    Returns:
        The distinct phrases, each a tuple of words, in file order.

    Raises:
        ValueError: naming the file when it holds no phrase (empty, blank or comments only),
            or ``file:line`` where the bytes are not UTF-8.
    """
    path = Path(path)
    lines = _content_lines(path)
    phrases = dict.fromkeys(tuple(text.split()) for _, text in lines if not text.startswith("#"))
    if not phrases:
        raise ValueError(
            f"{path}: no phrase; expected one phrase per line, words separated by spaces "
            "(the file is empty, blank or holds only # comments)"
        )
    return list(phrases)
