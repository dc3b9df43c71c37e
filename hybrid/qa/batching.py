"""Vocabularies and padded batches of bAbI questions for the readers of `hybrid.nn.memory`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..batching import pad_rows
from ..vocabulary import Vocabulary
from .babi import Question
from .text import encode_questions

__all__ = ["QABatch", "QAVocabulary", "batch_indices", "batches", "collate"]


@dataclass(frozen=True)
class QAVocabulary:
    """The words a reader embeds and the answers it chooses from.

    Attributes:
        words: Story and question words, and every answer as one token (``"n,w"``), so a
            reader whose output layer is tied to its word embeddings can score answers.
        answers: The answers seen in training (``Question.answer_text``), no specials.
    """

    words: Vocabulary
    answers: Vocabulary

    @classmethod
    def build(cls, questions: Sequence[Question]) -> QAVocabulary:
        """Vocabularies of the training ``questions``."""
        if not questions:
            raise ValueError("questions must not be empty")
        words: list[str] = []
        for q in questions:
            words.extend(w for sentence in q.story for w in sentence)
            words.extend(q.question)
            words.append(q.answer_text)
        answers = Vocabulary((q.answer_text for q in questions), specials=())
        return cls(Vocabulary(words), answers)

    @property
    def answer_words(self) -> Tensor:
        """``(A,)`` index in `words` of each answer."""
        return torch.tensor(self.words.encode(self.answers.tokens), dtype=torch.long)

    def answer_index(self, question: Question) -> int:
        """Index of the question's answer, or ``-1`` for an answer never seen in training."""
        text = question.answer_text
        return self.answers.index(text) if text in self.answers else -1

    def to_dict(self) -> dict[str, Any]:
        return {"words": self.words.to_dict(), "answers": self.answers.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAVocabulary:
        return cls(Vocabulary.from_dict(data["words"]), Vocabulary.from_dict(data["answers"]))


@dataclass
class QABatch:
    """A padded batch of ``B`` questions over at most ``M`` remembered statements.

    Attributes:
        memory: ``(B, M, L)`` word indices of the remembered statements, oldest first,
            ``0`` (``<pad>``) past each statement and past each memory.
        memory_lengths: ``(B,)`` number of statements remembered (the most recent ones).
        query: ``(B, Q)`` question word indices, right-padded with ``0``.
        query_lengths: ``(B,)`` question lengths.
        text: ``(B, N)`` the remembered statements' words as one running text.
        text_lengths: ``(B,)`` words in ``text``.
        text_statement: ``(B, N)`` memory slot of each word of ``text``, ``-1`` on padding.
        answers: ``(B,)`` answer indices, ``-1`` for an answer unseen in training.
        supporting: ``(B, S)`` memory slots of the supporting statements, ``-1`` padded
            (also for a supporting statement older than the memory keeps).
    """

    memory: Tensor
    memory_lengths: Tensor
    query: Tensor
    query_lengths: Tensor
    text: Tensor
    text_lengths: Tensor
    text_statement: Tensor
    answers: Tensor
    supporting: Tensor

    def to(self, device: torch.device | str) -> QABatch:
        """The same batch on ``device``."""
        return QABatch(**{k: v.to(device) for k, v in vars(self).items()})

    def __len__(self) -> int:
        return self.memory.shape[0]

    def select(self, index: Tensor) -> QABatch:
        """The questions at ``index`` (a ``(b,)`` index tensor), padding trimmed to them."""
        memory_lengths = self.memory_lengths[index]
        slots = max(1, int(memory_lengths.max()))
        memory = self.memory[index, :slots]
        width = max(1, int((memory != 0).sum(-1).max()))
        query_lengths = self.query_lengths[index]
        text_lengths = self.text_lengths[index]
        words = max(1, int(text_lengths.max()))
        return QABatch(
            memory=memory[..., :width],
            memory_lengths=memory_lengths,
            query=self.query[index, : max(1, int(query_lengths.max()))],
            query_lengths=query_lengths,
            text=self.text[index, :words],
            text_lengths=text_lengths,
            text_statement=self.text_statement[index, :words],
            answers=self.answers[index],
            supporting=self.supporting[index],
        )


def collate(
    questions: Sequence[Question], vocabulary: QAVocabulary, memory_size: int = 50
) -> QABatch:
    """Encode and pad ``questions``, keeping the ``memory_size`` most recent statements
    (`hybrid.qa.text.encode_questions`, which the exported reader's runtime shares), with
    their answers and supporting facts (their slots among the kept statements).

    Raises:
        ValueError: for an empty batch or ``memory_size < 1``.
    """
    arrays = encode_questions(questions, vocabulary.words, memory_size)
    supporting = []
    for q in questions:
        dropped = max(0, len(q.story) - memory_size)
        supporting.append([i - dropped for i in q.supporting if i >= dropped])
    return QABatch(
        **{name: torch.from_numpy(values) for name, values in arrays.items()},
        answers=torch.tensor([vocabulary.answer_index(q) for q in questions]),
        supporting=pad_rows(supporting, -1),
    )


def batch_indices(
    data: QABatch,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    bucket: bool = False,
) -> list[list[int]]:
    """The question indices of each batch of the collated dataset ``data``, in order.

    Consecutive runs of ``batch_size`` questions, after a random permutation of all of them
    (``torch.randperm`` from ``generator``) with ``shuffle``. With ``bucket`` the questions of
    each window of ``16 * batch_size`` are sorted by text length (stably) before they are cut
    into batches, and with ``shuffle`` the batches then come in random order (a second
    ``torch.randperm`` from ``generator``, over the batches): less padding for the readers
    that run over the text.

    Raises:
        ValueError: ``batch_size`` below 1.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    size = len(data)
    order = torch.randperm(size, generator=generator) if shuffle else torch.arange(size)
    if not bucket:
        return [chunk.tolist() for chunk in order.split(batch_size)]
    chunks: list[Tensor] = []
    for part in order.split(16 * batch_size):
        ranked = part[data.text_lengths[part].argsort(stable=True)]
        chunks.extend(ranked.split(batch_size))
    if shuffle:
        chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator)]
    return [chunk.tolist() for chunk in chunks]


def batches(
    data: QABatch,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    bucket: bool = False,
) -> Iterator[QABatch]:
    """The batches of a collated dataset whose questions `batch_indices` gives (same
    arguments).

    Collate a whole split once with `collate`; each batch is then a `QABatch.select` of it,
    trimmed to its own longest memory, statement, question and text.

    Raises:
        ValueError: ``batch_size`` below 1 (when the first batch is asked for).
    """
    chosen = batch_indices(data, batch_size, shuffle=shuffle, generator=generator, bucket=bucket)
    for indices in chosen:
        yield data.select(torch.tensor(indices, dtype=torch.long))
