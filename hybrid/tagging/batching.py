"""From sentences to padded tensors: the vocabularies of a tagging task and its batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .corpus import Sentence, Vocabulary
from .text import encode_sentences, normalise_word


@dataclass
class Batch:
    """A padded batch (right padding; ``lengths`` says where each sentence ends).

    Attributes:
        words: ``(B, T)`` word indices (``0`` = padding).
        chars: ``(B, T, C)`` character indices of each word (``0`` = padding), ``C`` at
            most `hybrid.tagging.text.MAX_WORD_CHARS` (see
            `hybrid.tagging.text.word_characters`).
        lengths: ``(B,)`` sentence lengths.
        features: ``(B, T)`` indices of an extra token column (e.g. POS tags), or ``None``.
        tags: ``(B, T)`` gold tag indices, ``-1`` past each length, or ``None``.
        intents: ``(B,)`` gold intent indices, or ``None``.
    """

    words: Tensor
    chars: Tensor
    lengths: Tensor
    features: Tensor | None = None
    tags: Tensor | None = None
    intents: Tensor | None = None

    def to(self, device) -> Batch:
        """The batch on ``device``."""
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(self).items()}
        return Batch(**moved)


class TaggingVocabulary:
    """Words, characters, extra features, tags and intents of a tagging corpus.

    Built from the training sentences; serialises to plain dictionaries so that a saved
    tagger loads with ``torch.load(weights_only=True)``.

    Args:
        words: Vocabulary of normalised words (with ``<pad>`` and ``<unk>``).
        chars: Vocabulary of characters (with ``<pad>`` and ``<unk>``).
        tags: Tag labels (no specials: an unknown tag is an error).
        features: Vocabulary of the extra token column, or ``None``.
        intents: Intent labels, or ``None``.
    """

    def __init__(
        self,
        words: Vocabulary,
        chars: Vocabulary,
        tags: Vocabulary,
        features: Vocabulary | None = None,
        intents: Vocabulary | None = None,
    ):
        self.words, self.chars, self.tags = words, chars, tags
        self.features, self.intents = features, intents

    @classmethod
    def build(
        cls,
        sentences: Sequence[Sentence],
        min_count: int = 1,
        more_labels: Sequence[Sentence] = (),
    ) -> TaggingVocabulary:
        """Vocabularies of ``sentences`` (words seen fewer than ``min_count`` times are unknown).

        ``more_labels`` adds the tags and intents of further labelled sentences (say, a
        development split that will be trained on later) without adding their words,
        characters or features.
        """
        if not sentences:
            raise ValueError("sentences must not be empty")
        labelled = [*sentences, *more_labels]
        if any(s.tags is None for s in labelled):
            raise ValueError("sentences must all carry tags to build a tagging vocabulary")
        words = Vocabulary(
            (normalise_word(w) for s in sentences for w in s.words), min_count=min_count
        )
        chars = Vocabulary(c for s in sentences for w in s.words for c in w)
        tags = Vocabulary((t for s in labelled for t in s.tags), specials=())
        features = None
        if all(s.features is not None for s in sentences):
            features = Vocabulary(f for s in sentences for f in s.features)
        intents = None
        if all(s.intent is not None for s in labelled):
            intents = Vocabulary((s.intent for s in labelled), specials=())
        return cls(words, chars, tags, features, intents)

    def to_dict(self) -> dict:
        """Plain-data form (for checkpoints)."""
        parts = {
            "words": self.words,
            "chars": self.chars,
            "tags": self.tags,
            "features": self.features,
            "intents": self.intents,
        }
        return {k: (v.to_dict() if v is not None else None) for k, v in parts.items()}

    @classmethod
    def from_dict(cls, data: dict) -> TaggingVocabulary:
        """Inverse of `to_dict`."""
        parts = {k: (Vocabulary.from_dict(v) if v is not None else None) for k, v in data.items()}
        return cls(**parts)

    def batch(self, sentences: Sequence[Sentence], with_labels: bool = True) -> Batch:
        """Pad ``sentences`` into a `Batch`.

        Args:
            sentences: Sentences with at least one word each.
            with_labels: Also encode gold tags and intents (they must be present).

        Returns:
            The batch on CPU; each word's characters as `hybrid.tagging.text.word_characters`
            reads them.
        """
        arrays = encode_sentences(sentences, self.words, self.chars, self.features)
        inputs = {name: torch.from_numpy(array) for name, array in arrays.items()}
        tags = None
        if with_labels:
            tags = torch.full(inputs["words"].shape, -1, dtype=torch.long)
            for b, sentence in enumerate(sentences):
                if sentence.tags is None:
                    raise ValueError("with_labels=True needs sentences with tags")
                tags[b, : len(sentence.words)] = torch.tensor(self.tags.encode(list(sentence.tags)))
        intents = None
        if with_labels and self.intents is not None:
            intents = torch.tensor([self.intents.index(s.intent) for s in sentences])
        return Batch(
            inputs["words"],
            inputs["chars"],
            inputs["lengths"],
            inputs.get("features"),
            tags,
            intents,
        )


def batches(
    sentences: Sequence[Sentence],
    vocabulary: TaggingVocabulary,
    size: int,
    with_labels: bool = True,
) -> Iterator[Batch]:
    """Batches of ``size`` sentences, in order (training draws its own shuffled batches:
    `hybrid.tagging.train.TaggingTask.plan`)."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    for start in range(0, len(sentences), size):
        yield vocabulary.batch(sentences[start : start + size], with_labels)
