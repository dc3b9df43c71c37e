"""Readers for the small text files that constrain word recognition: a vocabulary
(`read_words`), a grammar of allowed phrases (`read_phrases`) and a unigram language model
in the ARPA format (`read_arpa_unigram`).

Plain Python: each reader returns strings and floats. Every file is UTF-8 text (a byte-order
mark is dropped, CRLF and CR line ends read as LF, surrounding whitespace of a line ignored,
blank lines skipped), and every error is a `ValueError` naming ``file:line`` and what was
expected there, or the file alone when it holds nothing usable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..files import read_lines

__all__ = ["UnigramLM", "read_arpa_unigram", "read_phrases", "read_words"]

# Entries of a Kaldi symbol table that are not spoken words: the empty label, sentence
# start and end, and the disambiguation symbols #0, #1, ...
_NOT_WORDS = re.compile(r"<eps>|<s>|</s>|#[0-9]+")
_SYMBOL_ID = re.compile(r"[0-9]+")
# ARPA lines: ``ngram K=N`` in the \data\ section, and the ``\K-grams:`` section headers.
_NGRAM_COUNT = re.compile(r"ngram\s+([1-9][0-9]*)\s*=\s*([0-9]+)")
_SECTION = re.compile(r"\\([1-9][0-9]*)-grams:")


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


# -- ARPA unigram model ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnigramLM:
    """A unigram language model: natural-log probabilities.

    Attributes:
        log_probs: ``ln P(w)`` per word; ``<s>`` and ``</s>`` are not included, ``<unk>``
            is when the model lists it.
        end: ``ln P(</s>)``, the probability of ending the sentence; ``0.0`` if the model
            lists no ``</s>``.
    """

    log_probs: dict[str, float]
    end: float


def read_arpa_unigram(path: str | os.PathLike[str]) -> UnigramLM:
    """Read a unigram language model in the ARPA format (as written by SRILM's
    ``ngram-count -order 1``).

    The layout: any text before the ``\\data\\`` line, which is followed by ``ngram 1=N``;
    then ``\\1-grams:`` with ``N`` lines ``log10prob word [backoff]`` (tab- or
    space-separated; the backoff weight, meaningless without higher orders, is checked to be
    a number and ignored); then ``\\end\\``, after which nothing is read. The base-10
    logarithms become natural ones. ``<s>`` is dropped (its probability, often ``-99``, is a
    placeholder: a sentence always starts), ``</s>`` becomes `UnigramLM.end`, and ``<unk>``
    is an ordinary word, present only when the model lists it.

    Raises:
        ValueError: naming ``file:line``: no ``\\data\\`` line; an ``ngram K=N`` with
            ``K > 1`` or a ``\\K-grams:`` section (only unigram models are read); a line
            that is not in the layout; an ``ngram 1=N`` that differs from the number of
            ``\\1-grams:`` lines (naming both); a log10 probability that is not a number or
            is above 0; a word listed twice (naming the first line too); no ``\\end\\``;
            no word besides ``<s>`` and ``</s>``.
    """
    path = Path(path)
    lines = _content_lines(path)
    data_line = _skip_to_data(path, lines)
    count, count_line, section_line = _unigram_count(path, lines, data_line)
    entries = _unigram_entries(path, lines, section_line)
    if len(entries) != count:
        raise ValueError(
            f"{path}:{count_line}: \\data\\ says ngram 1={count} but the \\1-grams: section "
            f"(line {section_line}) has {len(entries)} entries; expected the same number"
        )
    log_probs = {
        word: p * math.log(10) for word, p in entries.items() if word not in ("<s>", "</s>")
    }
    if not log_probs:
        raise ValueError(f"{path}:{section_line}: \\1-grams: lists no word besides <s> and </s>")
    return UnigramLM(log_probs, entries.get("</s>", 0.0) * math.log(10))


def _skip_to_data(path: Path, lines: Iterator[tuple[int, str]]) -> int:
    """Read ``lines`` up to and with the ``\\data\\`` line; its line number."""
    last = 0
    for number, text in lines:
        if text == "\\data\\":
            return number
        last = number
    where = f"{path}:{last}" if last else str(path)  # the file alone when it is empty
    raise ValueError(
        f"{where}: the file ends without a \\data\\ line; expected an ARPA "
        "language model (\\data\\, 'ngram 1=N', \\1-grams: with 'log10prob word [backoff]' "
        "lines, \\end\\)"
    )


def _higher_order(where: str, order: int) -> ValueError:
    return ValueError(
        f"{where}: a model of order {order}; only unigram models are read (build one of order "
        "1, e.g. with SRILM's 'ngram-count -order 1'): a higher order needs a decoding graph "
        "with its histories, which this library does not build"
    )


def _unigram_count(
    path: Path, lines: Iterator[tuple[int, str]], data_line: int
) -> tuple[int, int, int]:
    """Read the ``\\data\\`` section (after its line ``data_line``) up to and with the
    ``\\1-grams:`` line: the unigram count ``N`` of ``ngram 1=N``, its line and the line of
    ``\\1-grams:``."""
    count, count_line, last = 0, 0, data_line
    for last, text in lines:
        where = f"{path}:{last}"
        ngram, section = _NGRAM_COUNT.fullmatch(text), _SECTION.fullmatch(text)
        header = ngram or section
        if header and int(header[1]) > 1:
            raise _higher_order(where, int(header[1]))
        if section:
            if not count_line:
                raise ValueError(f"{where}: \\1-grams: before 'ngram 1=N' in the \\data\\ section")
            return count, count_line, last
        if ngram is None:
            raise ValueError(
                f"{where}: expected 'ngram 1=N' or \\1-grams: in the \\data\\ section, got {text!r}"
            )
        if count_line:
            raise ValueError(f"{where}: 'ngram 1=N' again (first at line {count_line})")
        count, count_line = int(ngram[2]), last
    raise ValueError(f"{path}:{last}: the file ends in the \\data\\ section; expected \\1-grams:")


def _unigram_entries(
    path: Path, lines: Iterator[tuple[int, str]], section_line: int
) -> dict[str, float]:
    """Read the ``\\1-grams:`` section up to and with ``\\end\\``: log10 probability per
    word, in file order."""
    entries: dict[str, float] = {}
    entry_lines: dict[str, int] = {}
    last = section_line
    for last, text in lines:
        where = f"{path}:{last}"
        if text == "\\end\\":
            return entries
        section = _SECTION.fullmatch(text)
        if section:
            raise _higher_order(where, int(section[1]))
        word, log10_prob = _unigram(where, text)
        if word in entries:
            raise ValueError(
                f"{where}: {word!r} is listed again (first at line {entry_lines[word]})"
            )
        entries[word], entry_lines[word] = log10_prob, last
    raise ValueError(
        f"{path}:{last}: the file ends without \\end\\; expected \\end\\ after \\1-grams:"
    )


def _unigram(where: str, text: str) -> tuple[str, float]:
    """``(word, log10 probability)`` of a ``log10prob word [backoff]`` line."""
    fields = text.split()
    if len(fields) not in (2, 3):
        raise ValueError(f"{where}: expected 'log10prob word [backoff]', got {text!r}")
    log10_prob = _number(fields[0])
    if log10_prob is None or log10_prob > 0:
        raise ValueError(f"{where}: the log10 probability {fields[0]!r} is not a number <= 0")
    if len(fields) == 3 and _number(fields[2]) is None:
        raise ValueError(f"{where}: the backoff weight {fields[2]!r} is not a number")
    return fields[1], log10_prob


def _number(text: str) -> float | None:
    """``text`` as a float, or ``None`` when it is not a number (NaN included)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value
