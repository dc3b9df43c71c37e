"""What every parser shares (`BaseParser`), and the sequence-to-sequence parser: a `Seq2Seq`
over linearized trees, and its decoders.

Three ways to decode, all batched:

- ``greedy``: the most likely next token at every step;
- ``beam``: beam search over the model's token distributions;
- ``constrained``: beam search under `BracketConstraint`, which only lets through prefixes
  of well-formed trees over exactly the sentence's number of words, so every output is a
  tree without repair.

Outputs that are not trees (greedy and beam may produce them) are repaired by
`hybrid.parsing.linearize.delinearize`; each `Parse` says whether it needed repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from itertools import repeat, zip_longest
from pathlib import Path

import torch
from torch import Tensor, nn

from ..batching import WINDOW, map_in_batches
from ..nn.seq2seq import Seq2Seq, Seq2SeqConfig
from ..saved import KIND_KEY, load_saved, save_trained
from ..structured.beam import beam_search
from .constraint import BracketConstraint
from .data import EOS, ParseBatch, ParsingVocabulary, collate, inputs_of
from .text import WORD_BUDGET, Parse, decoded_parse
from .tree import Tree

__all__ = ["MODES", "BaseParser", "DecoderStep", "Parse", "Parser", "max_lengths"]

MODES = ("greedy", "beam", "constrained")


class BaseParser:
    """What every parser shares: a trained model with its `ParsingVocabulary`, batching,
    streaming, its training loss, and saving.

    A subclass sets `modes` (its decoders, the quickest first: training scores the
    development trees with it), `default_mode`, `kind` (its saved-file kind) and
    `config_class`/`model_class`, and implements `summed_loss` and `_parse_batch`.
    `BaseParser.load` reads any saved parser back as its own class.
    """

    modes: tuple[str, ...] = ()
    default_mode: str = ""
    kind: str = ""
    config_class: type
    model_class: type
    _kinds: dict[str, type[BaseParser]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in vars(cls):  # a subclass that keeps its parent's kind loads as the parent
            BaseParser._kinds[cls.kind] = cls

    def __init__(self, model: torch.nn.Module, vocabulary: ParsingVocabulary):
        self.model = model
        self.vocabulary = vocabulary

    @property
    def uses_tags(self) -> bool:
        """Whether the model reads POS tags beside the words (then `parse` needs them)."""
        return self.model.config.num_features > 0

    def batch(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]] | None = None,
        trees: Sequence[Tree] | None = None,
    ) -> ParseBatch:
        """The tensors of ``sentences`` on the model's device.

        Raises:
            ValueError: The model reads tags and none are given.
        """
        if self.uses_tags and tags is None:
            raise ValueError("tags are required: this parser reads words and POS tags")
        device = next(self.model.parameters()).device
        return collate(self.vocabulary, sentences, tags, trees).to(device)

    def model_inputs(self, batch: ParseBatch) -> dict[str, Tensor | None]:
        """The model's source arguments: ``source``, ``lengths``, ``features`` (the tags, or
        ``None``) and ``chars`` (or ``None``)."""
        return {
            "source": batch.words,
            "lengths": batch.lengths,
            "features": batch.tags if self.uses_tags else None,
            "chars": batch.chars if self.model.config.num_chars else None,
        }

    def summed_loss(
        self, trees: Sequence[Tree], label_smoothing: float = 0.0
    ) -> tuple[Tensor, int]:
        """``(total, units)``: the training loss of ``trees`` summed over its units (a
        differentiable scalar) and how many units it sums over (target tokens of a
        sequence-to-sequence parser, sentences of a chart parser). Summed rather than
        averaged, so that the loss of a batch split into parts is the sum of the parts'."""
        raise NotImplementedError

    def loss(self, trees: Sequence[Tree], label_smoothing: float = 0.0) -> Tensor:
        """The training loss of ``trees``, a mean over its units: `summed_loss`'s total over
        its units (differentiable)."""
        total, units = self.summed_loss(trees, label_smoothing)
        return total / units

    def parse(
        self,
        sentences: Iterable[Sequence[str]],
        tags: Iterable[Sequence[str]] | None = None,
        mode: str | None = None,
        beam: int = 10,
        budget: int = WORD_BUDGET,
    ) -> list[Parse]:
        """Parse tokenised ``sentences`` (with their POS ``tags`` if the model reads them).

        Args:
            sentences: Lists of words.
            tags: One POS tag per word, or ``None``.
            mode: One of the parser's `modes`; ``None`` for its `default_mode`.
            beam: Beam size of beam-search decoders (unused by exact ones).
            budget: Most padded word positions decoded together (see `parse_stream`).

        Raises:
            ValueError: Unknown ``mode``, ``beam < 1``, empty sentences, missing tags.
        """
        return list(self.parse_stream(sentences, tags, mode, beam, budget))

    def parse_stream(
        self,
        sentences: Iterable[Sequence[str]],
        tags: Iterable[Sequence[str]] | None = None,
        mode: str | None = None,
        beam: int = 10,
        budget: int = WORD_BUDGET,
        window: int = WINDOW,
    ) -> Iterator[Parse]:
        """`parse`, lazily: the sentences (any iterable, a file say) are read ``window`` at a
        time, sorted by length and decoded in batches of at most ``budget`` padded words (a
        longer sentence alone); the parses come in the order of ``sentences`` as each window
        is done (see `hybrid.batching.map_in_batches`).

        Raises:
            ValueError: Unknown ``mode``, ``beam < 1`` or missing tags (at once); empty
                sentences, or ``tags`` of another count than ``sentences`` (when reached).
        """
        mode = self.default_mode if mode is None else mode
        if mode not in self.modes:
            raise ValueError(f"mode must be one of {self.modes} for a {self.kind}, got {mode!r}")
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be a positive integer, got {beam!r}")
        if self.uses_tags and tags is None:
            raise ValueError("tags are required: this parser reads words and POS tags")
        self.model.eval()
        run = partial(self._parse_batch, mode=mode, beam=beam)
        items = _with_tags(sentences, tags)
        return map_in_batches(run, items, lambda item: len(item[0]), budget, window)

    def _parse_batch(
        self, items: list[tuple[Sequence[str], Sequence[str] | None]], mode: str, beam: int
    ) -> list[Parse]:
        """The parses of one batch of ``(sentence, tags or None)`` pairs."""
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write config, vocabularies and weights atomically (loads with `load`)."""
        save_trained(Path(path), self.model, self.vocabulary, self.kind)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> BaseParser:
        """Read a parser written by `save` (``torch.load(weights_only=True)``): of this class,
        or of whichever class wrote it when called as ``BaseParser.load``.

        Raises:
            ValueError: naming ``path``, when it is missing, not a saved parser (truncated,
                another format, or another kind of model or a checkpoint: see
                `hybrid.saved.load_saved`).
        """
        from . import chart  # noqa: F401  (defines, and so registers, the chart parser's kind)

        kinds = tuple(BaseParser._kinds) if cls is BaseParser else (cls.kind,)
        saved = load_saved(path, kinds, map_location=device)
        found = BaseParser._kinds[saved[KIND_KEY]]
        model = found.model_class(found.config_class(**saved["config"])).to(device)
        model.load_state_dict(saved["model"])
        model.eval()
        return found(model, ParsingVocabulary.from_dict(saved["vocabulary"]))


def max_lengths(lengths: Tensor, max_ratio: float) -> Tensor:
    """``(B,)`` int64: the most tokens (``</s>`` included) decoded for sentences of
    ``lengths`` ``(B,)`` words, ``floor(length * max_ratio + 10)``."""
    return (lengths.double() * max_ratio + 10).long()


class DecoderStep(nn.Module):
    """A `Seq2Seq`'s decoder step (`Seq2Seq.step`) with the special target tokens other than
    ``</s>`` (padding, ``<s>``, ``<unk>``) forbidden, so that no decoder emits them.

    ``forward(tokens (N,), state)`` -> the log-probabilities ``(N, V)`` of the next token,
    ``-inf`` at those specials, and the new state.

    Args:
        model: The encoder-decoder (held, not copied).
        vocabulary: Its vocabularies.
    """

    def __init__(self, model: Seq2Seq, vocabulary: ParsingVocabulary):
        super().__init__()
        self.model = model
        targets = vocabulary.targets
        specials = [targets.index(t) for t in targets.specials if t != EOS]
        self.register_buffer("forbidden", torch.tensor(specials), persistent=False)

    def forward(self, tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict]:
        log_probs, state = self.model.step(tokens, state)
        return log_probs.index_fill(1, self.forbidden.to(log_probs.device), float("-inf")), state


class Parser(BaseParser):
    """A trained `Seq2Seq` with its `ParsingVocabulary`.

    Args:
        model: The encoder-decoder (its ``num_features`` is non-zero when it reads tags).
        vocabulary: Its vocabularies.
        max_ratio: Longest output as a multiple of the sentence length (plus 10 tokens); the
            constrained decoder allows trees of at most that many tokens.
    """

    modes = MODES
    default_mode = "constrained"
    kind = "parser"
    config_class = Seq2SeqConfig
    model_class = Seq2Seq

    def __init__(self, model: Seq2Seq, vocabulary: ParsingVocabulary, max_ratio: float = 5.0):
        if isinstance(max_ratio, bool) or not isinstance(max_ratio, int | float) or max_ratio < 1:
            raise ValueError(f"max_ratio must be a number >= 1, got {max_ratio!r}")
        super().__init__(model, vocabulary)
        self.max_ratio = max_ratio

    @property
    def decoder_step(self) -> DecoderStep:
        """The `DecoderStep` of the parser's current model, which every decoder calls (and
        `hybrid.parsing.export.PortableParser` too): made on each use, so that a copy of the
        parser given another model (a weight average, say) decodes with that model."""
        return DecoderStep(self.model, self.vocabulary)

    def summed_loss(
        self, trees: Sequence[Tree], label_smoothing: float = 0.0
    ) -> tuple[Tensor, int]:
        """``(total, units)``: the token cross-entropy (with ``label_smoothing``) of the
        linearizations of ``trees`` by teacher forcing, summed over every target token
        (each tree's tokens and its ``</s>``), and the number of those tokens."""
        batch = self.batch(*inputs_of(trees), trees)
        logits, _ = self.model(target_in=batch.targets[:, :-1], **self.model_inputs(batch))
        gold, pad = batch.targets[:, 1:], self.vocabulary.targets.pad_index
        total = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2),
            gold,
            ignore_index=pad,
            label_smoothing=label_smoothing,
            reduction="sum",
        )
        return total, int((gold != pad).sum())

    def _start(self, batch: ParseBatch) -> dict[str, Tensor]:
        return self.model.start(**self.model_inputs(batch))

    @torch.no_grad()
    def _parse_batch(
        self,
        items: list[tuple[Sequence[str], Sequence[str] | None]],
        mode: str,
        beam: int,
    ) -> list[Parse]:
        """The parses of one batch of ``(sentence, tags or None)`` pairs."""
        sentences = [sentence for sentence, _ in items]
        tags = None if items[0][1] is None else [row for _, row in items]
        batch = self.batch(sentences, tags)
        targets = self.vocabulary.targets
        constraint, max_length = None, max_lengths(batch.lengths, self.max_ratio)
        if mode == "constrained":
            # The same length bound as a tree of at most (max_length - n - 1) / 2 brackets:
            # every hypothesis the constraint allows finishes within it.
            budget = ((max_length - batch.lengths - 1) // 2).clamp_min(1)
            constraint = BracketConstraint(targets.tokens, batch.lengths, EOS, max_brackets=budget)
            max_length = constraint.max_length()
        result = beam_search(
            self.decoder_step,
            self._start(batch),
            batch_size=len(sentences),
            beam=1 if mode == "greedy" else beam,
            max_length=max_length,
            bos=self.vocabulary.bos,
            eos=self.vocabulary.eos,
            nbest=1,
            constraint=constraint,
        )
        parses = []
        for b, sentence in enumerate(sentences):
            ids = result.tokens[b, 0, : result.lengths[b, 0]].tolist()
            ids = [i for i in ids if i != self.vocabulary.eos]
            parses.append(decoded_parse(ids, targets, sentence, None if tags is None else tags[b]))
        return parses

    @torch.no_grad()
    def attention(
        self, sentence: Sequence[str], tokens: Sequence[str], tags: Sequence[str] | None = None
    ) -> Tensor | None:
        """``(T, S)`` attention weights of each output token (``tokens`` then ``</s>``) over
        the sentence's words, by teacher forcing; ``None`` without attention. The columns
        follow the encoder's reading order: the sentence reversed when the vocabulary reads
        it backwards."""
        self.model.eval()
        batch = self.batch([sentence], None if tags is None else [tags])
        vocabulary = self.vocabulary
        ids = torch.tensor([[vocabulary.bos, *vocabulary.targets.encode(tokens)]])
        _, weights = self.model(target_in=ids.to(batch.words.device), **self.model_inputs(batch))
        return None if weights is None else weights[0].cpu()


def _with_tags(
    sentences: Iterable[Sequence[str]], tags: Iterable[Sequence[str]] | None
) -> Iterator[tuple[Sequence[str], Sequence[str] | None]]:
    """``(sentence, tags)`` pairs (``tags`` ``None`` throughout without tags), lazily.

    Raises:
        ValueError: naming ``sentences[i]`` without words, or ``tags[i]`` without one tag per
            word; ``sentences`` and ``tags`` of different counts.
    """
    missing = object()
    pairs = (
        zip(sentences, repeat(None))
        if tags is None
        else zip_longest(sentences, tags, fillvalue=missing)
    )
    for i, (sentence, row) in enumerate(pairs):
        if sentence is missing or row is missing:
            shorter = "tags" if row is missing else "sentences"
            raise ValueError(f"tags: expected one row per sentence, {shorter} ended after {i}")
        if len(sentence) == 0:
            raise ValueError(f"sentences[{i}]: expected at least one word, got none")
        if row is not None and len(row) != len(sentence):
            raise ValueError(
                f"tags[{i}]: expected one tag per word ({len(sentence)}), got {len(row)}"
            )
        yield sentence, row
