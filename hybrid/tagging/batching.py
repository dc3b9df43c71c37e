"""From sentences to padded tensors: the vocabularies of a tagging task and its batches."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .corpus import Sentence, Vocabulary

_DIGITS = re.compile(r"\d")

#: Most characters of a word the character encoder reads: a longer word (a URL, a run of
#: characters without spaces) is read as its first and last ``MAX_WORD_CHARS // 2``, its
#: prefix and suffix, in training and tagging alike. This bounds a batch's character tensor
#: to ``MAX_WORD_CHARS`` characters per padded word, whatever the input. Every word of ATIS
#: and CoNLL-2000 is read whole (their longest have 16 and 54 characters).
MAX_WORD_CHARS = 64


def word_characters(word: str) -> str:
    """The characters of ``word`` the character encoder reads: all of them, or for a word
    longer than `MAX_WORD_CHARS` its first and last ``MAX_WORD_CHARS // 2``."""
    if len(word) <= MAX_WORD_CHARS:
        return word
    half = MAX_WORD_CHARS // 2
    return word[:half] + word[-half:]


def normalise_word(word: str) -> str:
    """Word-embedding key of a token: lower case, every digit mapped to ``0``.

    Case and digits stay visible to the character encoder, which reads the raw token.
    """
    return _DIGITS.sub("0", word.lower())


@dataclass
class Batch:
    """A padded batch (right padding; ``lengths`` says where each sentence ends).

    Attributes:
        words: ``(B, T)`` word indices (``0`` = padding).
        chars: ``(B, T, C)`` character indices of each word (``0`` = padding), ``C`` at
            most `MAX_WORD_CHARS` (see `word_characters`).
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
            The batch on CPU; each word's characters as `word_characters` reads them.
        """
        if not sentences or any(len(s.words) == 0 for s in sentences):
            raise ValueError("sentences must be non-empty and have at least one word each")
        batch, longest = len(sentences), max(len(s.words) for s in sentences)
        spelled = [[word_characters(w) for w in s.words] for s in sentences]
        widest = max(len(w) for words in spelled for w in words)
        words = torch.zeros(batch, longest, dtype=torch.long)
        chars = torch.zeros(batch, longest, widest, dtype=torch.long)
        lengths = torch.tensor([len(s.words) for s in sentences])
        features = torch.zeros(batch, longest, dtype=torch.long) if self.features else None
        tags = torch.full((batch, longest), -1, dtype=torch.long) if with_labels else None
        for b, sentence in enumerate(sentences):
            n = len(sentence.words)
            words[b, :n] = torch.tensor(
                self.words.encode([normalise_word(w) for w in sentence.words])
            )
            for t, word in enumerate(spelled[b]):
                chars[b, t, : len(word)] = torch.tensor(self.chars.encode(list(word)))
            if features is not None:
                if sentence.features is None:
                    raise ValueError("this vocabulary needs sentences with features")
                features[b, :n] = torch.tensor(self.features.encode(list(sentence.features)))
            if tags is not None:
                if sentence.tags is None:
                    raise ValueError("with_labels=True needs sentences with tags")
                tags[b, :n] = torch.tensor(self.tags.encode(list(sentence.tags)))
        intents = None
        if with_labels and self.intents is not None:
            intents = torch.tensor([self.intents.index(s.intent) for s in sentences])
        return Batch(words, chars, lengths, features, tags, intents)


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
