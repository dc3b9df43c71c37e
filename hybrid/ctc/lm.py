"""Back-off n-gram language models for shallow fusion with CTC beam search.

`NGramLM` holds natural-log probabilities and back-off weights of n-grams over a token
alphabet (characters or words) and scores whole batches of (context, next token) queries with
tensor lookups. `read_arpa` reads one from the ARPA format. `lm_scorer` adapts a model to a
CTC vocabulary for `hybrid.ctc.beam.prefix_beam_search`: a character model scores every
emitted symbol (`CharScorer`), a word model scores each word when it is completed by the
delimiter or by the end of the utterance (`WordScorer`).

Back-off rule (ARPA): with ``h`` the history and ``h'`` the history without its oldest token,
``log P(w | h) = logp(h w)`` if the n-gram ``h w`` is listed, else
``backoff(h) + log P(w | h')``, where ``backoff(h)`` is ``0`` for an unlisted ``h``.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..files import read_lines
from ..structured._inputs import check_not_meta
from ..structured.native import PrefixLM
from .inputs import check_blank
from .lexicon import Lexicon

__all__ = ["BOS", "EOS", "UNK", "CharScorer", "NGramLM", "WordScorer", "lm_scorer", "read_arpa"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LN10 = math.log(10.0)

NGramTable = Mapping[tuple[str, ...], tuple[float, float]]


class NGramLM:
    """A back-off n-gram model with natural-log probabilities.

    Tokens are numbered in the order of the unigram table. Each order ``n`` is stored as a
    sorted ``int64`` key per n-gram (its token ids as the digits of a base-``|vocab|``
    number) with its log-probability and back-off weight, so a batch of lookups is one
    ``searchsorted`` per order.

    Attributes:
        vocab: The tokens, by id.
        index: Token string to id.
        order: Highest n-gram order.
    """

    def __init__(self, ngrams: Sequence[NGramTable], log10: bool = False):
        """Build the tables.

        Args:
            ngrams: ``ngrams[n - 1]`` maps each n-gram (a tuple of ``n`` token strings) to
                ``(log-probability, back-off weight)``; use back-off ``0`` where there is none.
                Tokens of higher orders must all be unigrams.
            log10: The numbers are base-10 logarithms (as in ARPA files); they are converted
                to natural logarithms.

        Raises:
            ValueError: No orders, an n-gram of the wrong length, a token that is not a
                unigram, a log-probability that is not finite and ``<= 0``, a back-off weight
                that is not finite, or a vocabulary too large for int64 keys at this order.
        """
        if len(ngrams) == 0:
            raise ValueError("ngrams must hold at least the unigram table")
        self.vocab = tuple(gram[0] for gram in ngrams[0])
        self.index = {token: i for i, token in enumerate(self.vocab)}
        self.order = len(ngrams)
        if len(self.vocab) ** self.order >= 2**62:
            raise ValueError(
                f"vocabulary of {len(self.vocab)} tokens is too large for order {self.order}"
            )
        scale = _LN10 if log10 else 1.0
        tables = [self._table(n + 1, table, scale) for n, table in enumerate(ngrams)]
        self._keys, self._logp, self._backoff = (
            list(column) for column in zip(*tables, strict=True)
        )

    def _table(self, n: int, table: NGramTable, scale: float) -> tuple[Tensor, Tensor, Tensor]:
        """Sorted keys ``(C,)``, log-probabilities ``(C,)`` and back-offs ``(C,)`` of order n."""
        ids = torch.zeros((len(table), n), dtype=torch.long)
        for row, gram in enumerate(table):
            if len(gram) != n or any(token not in self.index for token in gram):
                raise ValueError(f"ngrams[{n - 1}] holds {gram!r}: expected {n} unigram tokens")
            ids[row] = torch.tensor([self.index[token] for token in gram])
        values = torch.tensor(list(table.values()), dtype=torch.float64).reshape(-1, 2)
        logp, backoff = values.unbind(1)
        bad = ~(logp.isfinite() & (logp <= 0) & backoff.isfinite())
        if bad.any():
            gram = list(table)[int(bad.nonzero()[0])]
            raise ValueError(
                f"ngrams[{n - 1}] holds {gram!r} with (log-probability, back-off) "
                f"{table[gram]}: expected a finite log-probability <= 0 and a finite back-off"
            )
        keys, order = self._encode(ids).sort()
        return keys, values[order, 0] * scale, values[order, 1] * scale

    def packed(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All orders in one table: ``offsets (order + 1,)`` (rows ``offsets[n - 1]:offsets[n]``
        hold order ``n``), and the sorted ``keys``, ``logp`` and ``backoff`` of every row."""
        sizes = torch.tensor([0] + [len(keys) for keys in self._keys])
        tables = (torch.cat(column) for column in (self._keys, self._logp, self._backoff))
        return sizes.cumsum(0), *tables

    def ngrams(self, n: int) -> list[tuple[tuple[str, ...], float, float]]:
        """The listed n-grams of order ``n``: ``(tokens, log-probability, back-off)``, natural
        logarithms, in key order."""
        if not 1 <= n <= self.order:
            raise ValueError(f"n must be an order of the model, in [1, {self.order}], got {n}")
        keys, size = self._keys[n - 1].cpu(), len(self.vocab)
        digits = [(keys // size**power) % size for power in range(n - 1, -1, -1)]
        ids = torch.stack(digits, -1).tolist()
        logp, backoff = self._logp[n - 1].tolist(), self._backoff[n - 1].tolist()
        return [
            (tuple(self.vocab[i] for i in gram), lp, bo)
            for gram, lp, bo in zip(ids, logp, backoff, strict=True)
        ]

    @property
    def context_size(self) -> int:
        """Tokens of history the model looks at: ``order - 1``."""
        return self.order - 1

    def token_id(self, token: str) -> int | None:
        """Id of ``token``, or ``None`` if the model does not have it."""
        return self.index.get(token)

    def to(self, device: torch.device | str) -> NGramLM:
        """A copy whose tables live on ``device``."""
        moved = copy.copy(self)
        moved._keys = [keys.to(device) for keys in self._keys]
        moved._logp = [logp.to(device) for logp in self._logp]
        moved._backoff = [backoff.to(device) for backoff in self._backoff]
        return moved

    def score(self, context: Tensor, next_ids: Tensor) -> Tensor:
        """``log P(next | context)`` by the back-off rule, for a batch of queries.

        Args:
            context: ``(..., order - 1)`` int64 token ids, oldest first, left padded with
                ``-1`` where the history is shorter (e.g. ``[-1, <s>]`` at the start of a
                sentence of a trigram model).
            next_ids: ``(...)`` int64 token ids in ``[0, |vocab|)``.

        Returns:
            ``(...)`` float64 natural-log probabilities.

        Raises:
            ValueError: Shapes that do not match, ids out of range, or a meta tensor (the
                query's or the model's tables).
        """
        self._check_query(context, next_ids)
        result = torch.zeros(next_ids.shape, dtype=torch.float64, device=next_ids.device)
        backoff = torch.zeros_like(result)
        done = torch.zeros(next_ids.shape, dtype=torch.bool, device=next_ids.device)
        for size in range(self.context_size, -1, -1):
            history = context[..., self.context_size - size :]
            usable = (history >= 0).all(-1) & ~done
            found, logp, _ = self._lookup(torch.cat([history, next_ids[..., None]], -1))
            hit = usable & found
            result = torch.where(hit, backoff + logp, result)
            done |= hit
            if size > 0:
                listed, _, weight = self._lookup(history)
                backoff = backoff + torch.where(usable & ~hit & listed, weight, 0.0)
        return result

    def score_all(self, context: Tensor) -> Tensor:
        """``log P(w | context)`` of every token: ``(..., order - 1)`` -> ``(..., |vocab|)``."""
        vocab = torch.arange(len(self.vocab), device=context.device)
        expanded = context[..., None, :].expand(*context.shape[:-1], len(self.vocab), -1)
        return self.score(expanded, vocab.expand(expanded.shape[:-1]))

    def _check_query(self, context: Tensor, next_ids: Tensor) -> None:
        """ValueError unless ``context (..., order - 1)`` and ``next_ids (...)`` fit the model."""
        check_not_meta(context, "context")
        check_not_meta(next_ids, "next_ids")
        for n, tables in enumerate(zip(self._keys, self._logp, self._backoff, strict=True), 1):
            for table in tables:
                check_not_meta(table, f"the order-{n} table of the lm")
        if tuple(context.shape) != (*next_ids.shape, self.context_size):
            raise ValueError(
                f"context must have shape (..., order - 1) = {(*next_ids.shape, self.context_size)}"
                f" to match next_ids {tuple(next_ids.shape)}, got {tuple(context.shape)}"
            )
        vocab = len(self.vocab)
        if next_ids.numel() and (next_ids.min() < 0 or next_ids.max() >= vocab):
            raise ValueError(f"next_ids must lie in [0, {vocab})")
        if context.numel() and (context.min() < -1 or context.max() >= vocab):
            raise ValueError(f"context must hold token ids in [0, {vocab}) or -1 padding")

    def _encode(self, grams: Tensor) -> Tensor:
        """Key of each n-gram ``(..., n)`` of token ids: the ids as base-``|vocab|`` digits."""
        keys = torch.zeros(grams.shape[:-1], dtype=torch.long, device=grams.device)
        for position in range(grams.shape[-1]):
            keys = keys * len(self.vocab) + grams[..., position]
        return keys

    def _lookup(self, grams: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Whether each n-gram ``(..., n)`` is listed, and its log-probability and back-off.

        Entries with ids ``< 0`` (padding) come back as not listed.
        """
        n = grams.shape[-1]
        keys = self._keys[n - 1]
        query = self._encode(grams.clamp_min(0))
        if len(keys) == 0:
            missing = torch.zeros(query.shape, dtype=torch.float64, device=query.device)
            return torch.zeros_like(query, dtype=torch.bool), missing, missing
        position = torch.searchsorted(keys, query).clamp_max(len(keys) - 1)
        found = (keys[position] == query) & (grams >= 0).all(-1)
        return found, self._logp[n - 1][position], self._backoff[n - 1][position]


def read_arpa(source: str | os.PathLike) -> NGramLM:
    """Read a back-off n-gram model in the ARPA format.

    The file has a ``\\data\\`` header of ``ngram N=count`` lines, one ``\\N-grams:`` section
    per order with lines ``log10-prob  w1 ... wN  [log10-backoff]`` (no back-off on the
    highest order), and ``\\end\\``. Text before ``\\data\\`` is ignored. The special tokens
    ``<s>``, ``</s>`` and ``<unk>`` are ordinary tokens here. Base-10 logarithms are
    converted to natural logarithms. A log-probability must be finite and ``<= 0`` (SRILM
    writes ``-99`` for the zero probability of ``<s>``); a back-off weight must be finite
    (it may be positive), and a missing one, on an order below the highest, is ``0`` (a
    weight of 1), as the format says.

    Args:
        source: A path (``str`` without a newline, or path-like) to a UTF-8 file (with or
            without a byte-order mark), or the ARPA text itself (``str`` with a newline).

    Raises:
        ValueError: ``source`` neither text nor a readable UTF-8 file (naming the path); or
            a malformed file, naming the file (or ``ARPA`` text) and the line: no
            ``\\data\\`` header, a bad header or n-gram line, a count that differs from the
            header, a log-probability that is not finite and ``<= 0``, a back-off weight that
            is not finite, an unknown token, a repeated n-gram, a missing section or a
            missing ``\\end\\``.
    """
    if isinstance(source, str) and "\n" in source:
        lines, where = source.splitlines(), "ARPA"
    else:
        lines, where = _file_lines(source), f"ARPA file {os.fspath(source)!r},"
    return NGramLM(_ArpaParser(lines, where).parse(), log10=True)


def _file_lines(source: object) -> list[str]:
    """The lines of the UTF-8 file at path ``source`` (`hybrid.files.read_lines`: a
    byte-order mark is dropped)."""
    if not isinstance(source, str | os.PathLike):
        raise ValueError(f"source must be a path or ARPA text, got {type(source).__name__}")
    if not Path(source).is_file():
        raise ValueError(
            f"source {os.fspath(source)!r} is not a file (a str without a newline is a path)"
        )
    try:
        return read_lines(source)
    except (OSError, ValueError) as error:  # ValueError: names the line that is not UTF-8
        raise ValueError(
            f"source {os.fspath(source)!r} is not a readable UTF-8 file: {error}"
        ) from None


class _ArpaParser:
    """Line-by-line ARPA parser that reports the line number of the first error.

    Args:
        lines: The lines of the text.
        where: How errors name the source, before ``line N``: ``ARPA`` for text, ``ARPA
            file '<path>',`` for a file.
    """

    def __init__(self, lines: list[str], where: str):
        self.lines = lines
        self.where = where
        self.counts: dict[int, int] = {}
        self.tables: list[dict[tuple[str, ...], tuple[float, float]]] = []

    def error(self, number: int, message: str) -> ValueError:
        """A ValueError for 1-based line ``number``."""
        return ValueError(f"{self.where} line {number}: {message}")

    def parse(self) -> list[dict[tuple[str, ...], tuple[float, float]]]:
        """The n-gram tables, ``tables[n - 1]`` for order ``n``, base-10 numbers."""
        for number, line in self._content(self._skip_to_data()):
            if line.startswith("\\"):
                return self._sections(number)
            self._header(number, line)
        raise self.error(len(self.lines), "file ends inside the \\data\\ header")

    def _content(self, after: int):
        """``(line number, stripped line)`` of the non-blank lines after line ``after``."""
        for number in range(after + 1, len(self.lines) + 1):
            line = self.lines[number - 1].strip()
            if line:
                yield number, line

    def _skip_to_data(self) -> int:
        """Line number of the ``\\data\\`` line."""
        for number, line in enumerate(self.lines, 1):
            if line.strip() == "\\data\\":
                return number
        raise self.error(len(self.lines), "no \\data\\ header found")

    def _header(self, number: int, line: str) -> None:
        """Record one ``ngram N=count`` line."""
        fields = line.split()
        parts = fields[1].split("=") if len(fields) == 2 and fields[0] == "ngram" else []
        if len(parts) != 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            raise self.error(number, f"expected 'ngram N=count', got {line!r}")
        order, count = int(parts[0]), int(parts[1])
        if order != len(self.counts) + 1:
            raise self.error(number, f"expected the count of order {len(self.counts) + 1}")
        self.counts[order] = count

    def _sections(self, start: int) -> list[dict[tuple[str, ...], tuple[float, float]]]:
        """Parse the sections from line ``start`` (the first section header) to ``\\end\\``."""
        if not self.counts:
            raise self.error(start, "the \\data\\ header declares no n-gram counts")
        order = 0
        for number, line in self._content(start - 1):
            if line.startswith("\\"):
                self._close_section(number, order)
                if line == "\\end\\":
                    return self._finish(number, order)
                order = self._open_section(number, line, order)
            else:
                self._entry(number, line, order)
        raise self.error(len(self.lines), "file ends before \\end\\")

    def _open_section(self, number: int, line: str, previous: int) -> int:
        """Order of the ``\\N-grams:`` header at ``number``, which must follow ``previous``."""
        expected = previous + 1
        if line != f"\\{expected}-grams:":
            raise self.error(number, f"expected '\\{expected}-grams:', got {line!r}")
        if expected not in self.counts:
            raise self.error(number, f"section of order {expected} not declared in \\data\\")
        self.tables.append({})
        return expected

    def _close_section(self, number: int, order: int) -> None:
        """Check that the section of ``order`` (0: none open) holds its declared count."""
        if order and len(self.tables[order - 1]) != self.counts[order]:
            raise self.error(
                number,
                f"section \\{order}-grams: has {len(self.tables[order - 1])} entries, "
                f"the header declares {self.counts[order]}",
            )

    def _finish(self, number: int, order: int) -> list[dict[tuple[str, ...], tuple[float, float]]]:
        """The tables once ``\\end\\`` is reached at ``number`` after section ``order``."""
        if order != len(self.counts):
            raise self.error(number, f"\\end\\ before the \\{order + 1}-grams: section")
        return self.tables

    def _entry(self, number: int, line: str, order: int) -> None:
        """Record one n-gram line of section ``order``."""
        fields = line.split()
        widths = (order + 1,) if order == len(self.counts) else (order + 1, order + 2)
        if len(fields) not in widths:
            raise self.error(
                number, f"expected {' or '.join(map(str, widths))} fields for a {order}-gram"
            )
        logp = self._number(number, fields[0])
        if not (math.isfinite(logp) and logp <= 0):
            raise self.error(
                number, f"a log10 probability must be finite and <= 0, got {fields[0]!r}"
            )
        backoff = self._number(number, fields[order + 1]) if len(fields) == order + 2 else 0.0
        if not math.isfinite(backoff):
            raise self.error(
                number, f"a log10 back-off weight must be finite, got {fields[order + 1]!r}"
            )
        gram = tuple(fields[1 : order + 1])
        if order > 1 and any((token,) not in self.tables[0] for token in gram):
            raise self.error(number, f"{gram!r} uses a token that is not a unigram")
        if gram in self.tables[order - 1]:
            raise self.error(number, f"repeated n-gram {gram!r}")
        self.tables[order - 1][gram] = (logp, backoff)

    def _number(self, number: int, field: str) -> float:
        """``field`` as a float, ValueError (line ``number``) if it is not a number."""
        try:
            value = float(field)
        except ValueError:
            raise self.error(number, f"expected a number, got {field!r}") from None
        if math.isnan(value):
            raise self.error(number, "NaN is not a log-probability")
        return value


def _push(context: Tensor, tokens: Tensor, where: Tensor) -> Tensor:
    """Append ``tokens (...)`` to ``context (..., c)`` (dropping the oldest) where ``where``."""
    if context.shape[-1] == 0:
        return context
    shifted = torch.cat([context[..., 1:], tokens[..., None]], -1)
    return torch.where(where[..., None], shifted, context)


class _Scorer:
    """What `CharScorer` and `WordScorer` share: the model, the vocabulary and the start.

    A scorer's state is a tuple of tensors whose leading dims are the hypotheses' shape
    (``(B, K)`` in the beam search); the beam search gathers them along those dims.
    """

    unit: str

    def __init__(self, lm: NGramLM, symbols: Sequence[str], blank: int):
        missing = [token for token in (BOS, EOS) if lm.token_id(token) is None]
        if missing:
            raise ValueError(f"lm must have the sentence tokens {BOS} and {EOS}; lacks {missing}")
        self.lm = lm
        self.blank = check_blank(blank, len(symbols))
        self.num_symbols = len(symbols)

    def _start(self, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        """``(*shape, order - 1)`` contexts of a sentence start: ``[-1, ..., -1, <s>]``."""
        context = torch.full((*shape, self.lm.context_size), -1, dtype=torch.long, device=device)
        if self.lm.context_size:
            context[..., -1] = self.lm.token_id(BOS)
        return context

    def _end(self, context: Tensor) -> Tensor:
        """``log P(</s> | context)``."""
        eos = torch.full(context.shape[:-1], self.lm.token_id(EOS), device=context.device)
        return self.lm.score(context, eos)

    def _kernel_tables(self, unit: int, **unit_tables) -> PrefixLM:
        """The model as `hybrid.structured.native.PrefixLM` tables for the fused search."""
        lm = self.lm
        offsets, keys, logp, backoff = lm.packed()
        tables = {"unk": 0, "symbol_tokens": None, "word_next": None, "node_words": None}
        tables["delimiter"] = -1
        return PrefixLM(
            unit=unit,
            order=lm.order,
            vocab=len(lm.vocab),
            bos=lm.token_id(BOS),
            eos=lm.token_id(EOS),
            offsets=offsets,
            keys=keys,
            logp=logp,
            backoff=backoff,
            **(tables | unit_tables),
        )

    def to(self, device: torch.device | str) -> _Scorer:
        """A copy whose tables live on ``device``."""
        moved = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, Tensor | NGramLM | Lexicon):
                setattr(moved, name, value.to(device))
        return moved


class CharScorer(_Scorer):
    """Character-level fusion: the LM scores every emitted CTC symbol.

    State: ``(context,)`` with ``context (..., order - 1)`` the LM ids of the last symbols.
    The insertion bonus counts symbols.
    """

    unit = "char"

    def __init__(
        self,
        lm: NGramLM,
        symbols: Sequence[str],
        blank: int = 0,
        token_map: Mapping[str, str] | None = None,
    ):
        """Map the CTC symbols to LM tokens.

        Args:
            lm: A model over characters.
            symbols: ``symbols[i]`` is the string of CTC id ``i`` (blank included).
            blank: The CTC blank id (not mapped).
            token_map: LM token of a symbol where they differ (e.g. ``{" ": "<space>"}``,
                since ARPA tokens cannot hold whitespace); others map to themselves, and
                symbols the LM lacks to ``<unk>``.

        Raises:
            ValueError: No ``<s>``/``</s>`` in ``lm``, ``blank`` out of range, or a symbol
                the LM lacks while it has no ``<unk>``.
        """
        super().__init__(lm, symbols, blank)
        token_map = token_map or {}
        ids = []
        for i, symbol in enumerate(symbols):
            token = token_map.get(symbol, symbol)
            found = lm.token_id(token)
            if found is None:
                found = lm.token_id(UNK)
            if found is None and i != self.blank:
                raise ValueError(f"symbol {symbol!r} (token {token!r}) is not in the lm, no {UNK}")
            ids.append(0 if i == self.blank else found)
        self.tokens = torch.tensor(ids, dtype=torch.long)

    def initial_state(self, shape: tuple[int, ...], device: torch.device | str) -> tuple[Tensor]:
        """The state of empty hypotheses of ``shape``."""
        return (self._start(shape, device),)

    def extensions(self, state: tuple[Tensor]) -> tuple[Tensor, Tensor]:
        """LM log-prob ``(..., V)`` and unit count ``(..., V)`` of appending each symbol."""
        (context,) = state
        scores = self.lm.score_all(context)[..., self.tokens]
        return scores, torch.ones_like(scores)

    def advance(self, state: tuple[Tensor], symbols: Tensor) -> tuple[Tensor]:
        """The state after appending ``symbols (...)``; ``-1`` appends nothing."""
        (context,) = state
        return (_push(context, self.tokens[symbols.clamp_min(0)], symbols >= 0),)

    def final(self, state: tuple[Tensor]) -> tuple[Tensor, Tensor]:
        """LM log-prob and unit count ``(...)`` added at the end of the utterance (``</s>``)."""
        (context,) = state
        scores = self._end(context)
        return scores, torch.zeros_like(scores)

    def kernel_tables(self) -> PrefixLM:
        """The scorer as tables for the fused CPU search."""
        return self._kernel_tables(1, symbol_tokens=self.tokens)


class WordScorer(_Scorer):
    """Word-level fusion: the LM scores a word when it is completed.

    A word is the run of symbols between delimiters; it is completed by the delimiter after
    it or by the end of the utterance. Empty words (leading, trailing or repeated delimiters)
    are not scored. Words are spelled one CTC symbol per character; a word the LM does not
    have scores as ``<unk>``. The insertion bonus counts words.

    State: ``(context, node)``: ``context (..., order - 1)`` LM ids of the last words,
    ``node (...)`` the node of the partial word in the trie of the LM's words (``0``: no
    partial word; ``-1``: a partial word no LM word starts with).
    """

    unit = "word"

    def __init__(self, lm: NGramLM, symbols: Sequence[str], blank: int = 0, delimiter: str = " "):
        """Spell the LM's words in CTC symbols.

        Args:
            lm: A model over words.
            symbols: ``symbols[i]`` is the string of CTC id ``i`` (blank included).
            blank: The CTC blank id.
            delimiter: The word delimiter symbol.

        Raises:
            ValueError: No ``<s>``, ``</s>`` or ``<unk>`` in ``lm``, ``blank`` out of range,
                or a ``delimiter`` that is not a symbol or is the blank.
        """
        super().__init__(lm, symbols, blank)
        if lm.token_id(UNK) is None:
            raise ValueError(f"lm must have {UNK} to score words it does not list")
        if delimiter == symbols[self.blank]:
            raise ValueError(f"delimiter {delimiter!r} must not be the blank symbol")
        spellable = set(symbols) - {delimiter, symbols[self.blank]}
        words = [
            word
            for word in lm.vocab
            if word not in (BOS, EOS, UNK) and set(word) <= spellable and word
        ]
        self.trie = Lexicon(words, symbols, delimiter)
        self.delimiter = self.trie.delimiter
        self.unk = lm.token_id(UNK)
        # word_index -1 (no word ends at the node) picks the appended <unk>.
        word_ids = torch.tensor([lm.token_id(word) for word in words] + [self.unk])
        self.node_words = word_ids[self.trie.word_index]

    def initial_state(
        self, shape: tuple[int, ...], device: torch.device | str
    ) -> tuple[Tensor, Tensor]:
        """The state of empty hypotheses of ``shape``."""
        return self._start(shape, device), torch.zeros(shape, dtype=torch.long, device=device)

    def _word(self, node: Tensor) -> Tensor:
        """LM id of the partial word at trie ``node`` (``<unk>`` where it is no LM word)."""
        return torch.where(node >= 0, self.node_words[node.clamp_min(0)], self.unk)

    def extensions(self, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """LM log-prob ``(..., V)`` and word count ``(..., V)`` of appending each symbol.

        Only the delimiter after a non-empty partial word scores (that word); others add 0.
        """
        context, node = state
        completes = node != 0
        word_score = torch.where(completes, self.lm.score(context, self._word(node)), 0.0)
        scores = word_score.new_zeros((*node.shape, self.num_symbols))
        scores[..., self.delimiter] = word_score
        counts = torch.zeros_like(scores)
        counts[..., self.delimiter] = completes.to(scores.dtype)
        return scores, counts

    def advance(self, state: tuple[Tensor, Tensor], symbols: Tensor) -> tuple[Tensor, Tensor]:
        """The state after appending ``symbols (...)``; ``-1`` appends nothing."""
        context, node = state
        delimits = symbols == self.delimiter
        context = _push(context, self._word(node), delimits & (node != 0))
        inside = torch.where(
            node >= 0, self.trie.transitions[node.clamp_min(0), symbols.clamp_min(0)], -1
        )
        node = torch.where(symbols < 0, node, torch.where(delimits, 0, inside))
        return context, node

    def final(self, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """LM log-prob and word count ``(...)`` at the end: the pending word, then ``</s>``."""
        context, node = state
        pending = node != 0
        word_score = torch.where(pending, self.lm.score(context, self._word(node)), 0.0)
        context = _push(context, self._word(node), pending)
        return word_score + self._end(context), pending.to(word_score.dtype)

    def kernel_tables(self) -> PrefixLM:
        """The scorer as tables for the fused CPU search."""
        return self._kernel_tables(
            2,
            unk=self.unk,
            word_next=self.trie.transitions,
            node_words=self.node_words,
            delimiter=self.delimiter,
        )


def lm_scorer(
    lm: NGramLM,
    symbols: Sequence[str],
    unit: str = "char",
    blank: int = 0,
    delimiter: str = " ",
    token_map: Mapping[str, str] | None = None,
) -> CharScorer | WordScorer:
    """Adapt ``lm`` to a CTC vocabulary for shallow fusion.

    Args:
        lm: The n-gram model.
        symbols: ``symbols[i]`` is the string of CTC id ``i`` (blank included).
        unit: ``"char"``: the LM scores every emitted symbol (`CharScorer`); ``"word"``: the
            LM scores completed words (`WordScorer`).
        blank: The CTC blank id.
        delimiter: Word delimiter symbol (``unit="word"``).
        token_map: Symbol to LM token renames (``unit="char"``).

    Raises:
        ValueError: An unknown ``unit``, or what the scorer's constructor rejects.
    """
    if unit == "char":
        return CharScorer(lm, symbols, blank, token_map)
    if unit == "word":
        return WordScorer(lm, symbols, blank, delimiter)
    raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
