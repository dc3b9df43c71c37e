"""Vocabularies and tensors of the parsers.

A training example is a normalised tree: its words (and, for the ``words + tags`` input, the
treebank's POS tags) are the source. A sequence-to-sequence parser's target is the tree's
linearization between ``<s>`` and ``</s>``; sources may be reversed, as Vinyals et al. (2015)
did. A chart parser's target is the tree's labelled spans (`hybrid.parsing.spans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..batching import pad_rows
from ..vocabulary import Vocabulary
from .linearize import linearize
from .spans import EMPTY, tree_spans
from .text import encode_sentences
from .tree import Tree

__all__ = [
    "BOS",
    "EOS",
    "LABEL_SPECIALS",
    "ParseBatch",
    "ParsingVocabulary",
    "collate",
    "inputs_of",
]

BOS, EOS = "<s>", "</s>"
#: The first span labels: the empty label 0 (scored 0 by a chart parser) and ``<unk>``.
LABEL_SPECIALS = (EMPTY, "<unk>")
_VOCABULARIES = ("words", "chars", "tags", "targets", "labels")


@dataclass
class ParsingVocabulary:
    """Source words, characters and tags, and target tokens.

    Attributes:
        words: Source words (``<pad>`` 0, ``<unk>`` 1).
        chars: Characters of the source words (``<pad>`` 0, ``<unk>`` 1).
        tags: POS tags (``<pad>`` 0, ``<unk>`` 1).
        targets: Linearized tree tokens (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, ``<unk>`` 3 for
            labels never seen in training, which a decoder never produces).
        labels: Span labels of a chart parser: unary chains such as ``"S VP"`` (`EMPTY` 0,
            ``<unk>`` 1 for chains never seen in training, which a decoder never produces).
        labelled_closing: Whether closing brackets carry their label (``)NP``) or not (``)``).
        reverse: Whether the source is read in reverse order.
    """

    words: Vocabulary
    chars: Vocabulary
    tags: Vocabulary
    targets: Vocabulary
    labels: Vocabulary
    labelled_closing: bool = True
    reverse: bool = False

    @classmethod
    def build(
        cls, trees: Sequence[Tree], labelled_closing: bool = True, reverse: bool = False
    ) -> ParsingVocabulary:
        """Vocabularies of the training ``trees``.

        Raises:
            ValueError: No trees.
        """
        if not trees:
            raise ValueError("trees must not be empty")
        words = [w for tree in trees for w in tree.leaves()]
        tags = [tag for tree in trees for tag, _ in tree.preterminals()]
        targets = [tok for tree in trees for tok in linearize(tree, labelled_closing)]
        labels = [label for tree in trees for *_, label in tree_spans(tree) if label != EMPTY]
        return cls(
            Vocabulary(words),
            Vocabulary(c for w in words for c in w),
            Vocabulary(tags),
            Vocabulary(targets, specials=("<pad>", BOS, EOS, "<unk>")),
            Vocabulary(labels, specials=LABEL_SPECIALS),
            labelled_closing,
            reverse,
        )

    @property
    def bos(self) -> int:
        return self.targets.index(BOS)

    @property
    def eos(self) -> int:
        return self.targets.index(EOS)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint (see `from_dict`)."""
        vocabularies = {k: getattr(self, k).to_dict() for k in _VOCABULARIES}
        return {**vocabularies, "labelled_closing": self.labelled_closing, "reverse": self.reverse}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsingVocabulary:
        """The vocabulary `to_dict` described (without span labels when it was written
        before chart parsers)."""
        data = {"labels": Vocabulary(specials=LABEL_SPECIALS).to_dict()} | data
        return cls(
            *(Vocabulary.from_dict(data[k]) for k in _VOCABULARIES),
            bool(data["labelled_closing"]),
            bool(data["reverse"]),
        )


@dataclass
class ParseBatch:
    """Padded tensors of ``B`` sentences.

    Attributes:
        words: ``(B, S)`` source word indices (in reading order: reversed if the vocabulary
            says so), ``<pad>`` past each length.
        lengths: ``(B,)`` words per sentence.
        chars: ``(B, S, C)`` character indices of each word (at most 20 kept).
        tags: ``(B, S)`` POS tag indices.
        targets: ``(B, T)`` ``<s> tokens </s>`` padded, or ``None`` for sentences without trees.
        spans: ``(B, 2S - 1, 3)`` rows ``[i, j, label]`` of each tree's labelled spans in
            preorder (`hybrid.parsing.spans.tree_spans`; ``-1`` past its ``2n - 1`` rows), in
            the layout of `hybrid.structured.tree`, or ``None`` without trees.
    """

    words: Tensor
    lengths: Tensor
    chars: Tensor
    tags: Tensor
    targets: Tensor | None
    spans: Tensor | None = None

    def to(self, device: torch.device | str) -> ParseBatch:
        moved = {k: None if v is None else v.to(device) for k, v in vars(self).items()}
        return ParseBatch(**moved)


def inputs_of(trees: Sequence[Tree]) -> tuple[list[list[str]], list[list[str]]]:
    """The sentences and POS tags of ``trees``."""
    sentences = [tree.leaves() for tree in trees]
    tags = [[tag for tag, _ in tree.preterminals()] for tree in trees]
    return sentences, tags


def collate(
    vocabulary: ParsingVocabulary,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]] | None = None,
    trees: Sequence[Tree] | None = None,
) -> ParseBatch:
    """Tensors of ``sentences`` (with their ``tags``, and ``trees`` for training): the arrays
    of `hybrid.parsing.text.encode_sentences`, which the exported parser's runtime shares.

    Raises:
        ValueError: No sentences, an empty sentence, or ``tags``/``trees`` that do not match
            the sentences.
    """
    arrays = encode_sentences(
        sentences, tags, vocabulary.words, vocabulary.chars, vocabulary.tags, vocabulary.reverse
    )
    words, lengths, chars, tag_ids = (
        torch.from_numpy(arrays[name]) for name in ("words", "lengths", "chars", "tags")
    )
    width = words.shape[1]
    targets = spans = None
    if trees is not None:
        targets, spans = _targets(vocabulary, sentences, trees), _spans(vocabulary, trees, width)
    return ParseBatch(words, lengths, chars, tag_ids, targets, spans)


def _targets(
    vocabulary: ParsingVocabulary, sentences: Sequence[Sequence[str]], trees: Sequence[Tree]
) -> Tensor:
    """``(B, T)`` target indices ``<s> linearization </s>``, padded."""
    if len(trees) != len(sentences):
        raise ValueError(
            f"trees must have one tree per sentence ({len(sentences)}), got {len(trees)}"
        )
    rows = []
    for sentence, tree in zip(sentences, trees, strict=True):
        if tree.leaves() != list(sentence):
            raise ValueError(
                f"a tree's words differ from its sentence: {' '.join(sentence)[:60]!r}"
            )
        tokens = [BOS, *linearize(tree, vocabulary.labelled_closing), EOS]
        rows.append(vocabulary.targets.encode(tokens))
    return pad_rows(rows, vocabulary.targets.pad_index)


def _spans(vocabulary: ParsingVocabulary, trees: Sequence[Tree], width: int) -> Tensor:
    """``(B, 2 * width - 1, 3)`` rows ``[i, j, label]`` of each tree's spans, ``-1`` padded
    (sentences read in order: a chart parser does not reverse them)."""
    spans = torch.full((len(trees), 2 * width - 1, 3), -1, dtype=torch.long)
    for b, tree in enumerate(trees):
        rows = [(i, j, vocabulary.labels.index(label)) for i, j, label in tree_spans(tree)]
        spans[b, : len(rows)] = torch.tensor(rows)
    return spans
