"""A sequence-to-sequence parser: a `Seq2Seq` over linearized trees, and its decoders.

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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..files import save_trained
from ..nn.seq2seq import Seq2Seq, Seq2SeqConfig
from ..structured.beam import beam_search
from .constraint import BracketConstraint
from .data import EOS, ParseBatch, ParsingVocabulary, collate
from .linearize import delinearize, well_formed
from .tree import Tree

__all__ = ["MODES", "Parse", "Parser"]

MODES = ("greedy", "beam", "constrained")


@dataclass
class Parse:
    """One decoded sentence.

    Attributes:
        tree: The tree over the sentence's words (repaired if needed; preterminals are the
            given tags, or ``XX``).
        tokens: The decoder's output tokens, without ``<s>`` and ``</s>``.
        well_formed: Whether ``tokens`` was a tree over the words before any repair.
    """

    tree: Tree
    tokens: list[str]
    well_formed: bool


class Parser:
    """A trained `Seq2Seq` with its `ParsingVocabulary`.

    Args:
        model: The encoder-decoder (its ``num_features`` is non-zero when it reads tags).
        vocabulary: Its vocabularies.
        max_ratio: Longest output as a multiple of the sentence length (plus 10 tokens); the
            constrained decoder allows trees of at most that many tokens.
    """

    def __init__(self, model: Seq2Seq, vocabulary: ParsingVocabulary, max_ratio: float = 5.0):
        if isinstance(max_ratio, bool) or not isinstance(max_ratio, int | float) or max_ratio < 1:
            raise ValueError(f"max_ratio must be a number >= 1, got {max_ratio!r}")
        self.model = model
        self.vocabulary = vocabulary
        self.max_ratio = max_ratio
        targets = vocabulary.targets
        self._specials = torch.tensor(
            [targets.index(t) for t in targets.specials if targets.index(t) != vocabulary.eos]
        )

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

    def _start(self, batch: ParseBatch) -> dict[str, Tensor]:
        return self.model.start(**self.model_inputs(batch))

    def _step(self, tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict]:
        """The model's step with the special tokens other than ``</s>`` (padding, ``<s>``,
        ``<unk>``) forbidden, so that no decoder emits them."""
        log_probs, state = self.model.step(tokens, state)
        return log_probs.index_fill(1, self._specials.to(log_probs.device), float("-inf")), state

    def parse(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]] | None = None,
        mode: str = "constrained",
        beam: int = 10,
        batch_size: int = 64,
    ) -> list[Parse]:
        """Parse tokenised ``sentences`` (with their POS ``tags`` if the model reads them).

        Args:
            sentences: Lists of words.
            tags: One POS tag per word, or ``None``.
            mode: One of `MODES`.
            beam: Beam size of ``beam`` and ``constrained``.
            batch_size: Sentences decoded together.

        Raises:
            ValueError: Unknown ``mode``, ``beam < 1``, empty sentences, missing tags.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be a positive integer, got {beam!r}")
        self.model.eval()
        parses: list[Parse] = []
        for first in range(0, len(sentences), batch_size):
            chunk = slice(first, first + batch_size)
            chunk_tags = None if tags is None else tags[chunk]
            parses += self._parse_batch(sentences[chunk], chunk_tags, mode, beam)
        return parses

    @torch.no_grad()
    def _parse_batch(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]] | None,
        mode: str,
        beam: int,
    ) -> list[Parse]:
        batch = self.batch(sentences, tags)
        targets = self.vocabulary.targets
        constraint, max_length = None, (batch.lengths.double() * self.max_ratio + 10).long()
        if mode == "constrained":
            # The same length bound as a tree of at most (max_length - n - 1) / 2 brackets:
            # every hypothesis the constraint allows finishes within it.
            budget = ((max_length - batch.lengths - 1) // 2).clamp_min(1)
            constraint = BracketConstraint(targets.tokens, batch.lengths, EOS, max_brackets=budget)
            max_length = constraint.max_length()
        result = beam_search(
            self._step,
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
            tokens = [t for t in targets.decode(ids) if t != EOS]
            tree = delinearize(tokens, list(sentence), None if tags is None else list(tags[b]))
            parses.append(Parse(tree, tokens, well_formed(tokens, len(sentence))))
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

    def save(self, path: str | Path) -> None:
        """Write config, vocabularies and weights atomically (loads with `Parser.load`)."""
        save_trained(Path(path), self.model, self.vocabulary)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Parser:
        """Read a parser written by `save` (``torch.load(weights_only=True)``).

        Raises:
            ValueError: ``path`` does not exist.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"parser model {path} does not exist")
        saved = torch.load(path, map_location=device, weights_only=True)
        model = Seq2Seq(Seq2SeqConfig(**saved["config"])).to(device)
        model.load_state_dict(saved["model"])
        model.eval()
        return cls(model, ParsingVocabulary.from_dict(saved["vocabulary"]))
