"""Answering questions about stories with a saved reader, one story or a stream of them.

The story reading and the answers' dictionaries are those of `hybrid.qa.text`, which an
exported reader (`hybrid.deploy.reader`) shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial

import torch
from torch import Tensor

from ..batching import WINDOW, map_in_batches
from .batching import QABatch, QAVocabulary
from .model import Reader
from .text import (
    OUTPUTS,
    WORD_BUDGET,
    Item,
    answer_results,
    encode_questions,
    memory_positions,
    parse_story,
    read_stories,
    story_question,
)

__all__ = [
    "WORD_BUDGET",
    "answer",
    "answer_stories",
    "parse_story",
    "question_batch",
    "read_stories",
    "reader_outputs",
]


def answer(reader: Reader, vocabulary: QAVocabulary, story: Sequence[str], question: str) -> dict:
    """The reader's answer to ``question`` about ``story`` (statements, oldest first).

    Returns:
        ``{"answer", "confidence", "attended"}``: the answer text, its probability, and per
        hop the (statement, weight) it attended to most (empty for the LSTM baseline).
        Only the ``memory_size`` most recent statements are read.

    Raises:
        ValueError: for an empty story, a question without words, or a story whose
                most recent statements (those the reader reads) hold no words.
    """
    return next(answer_stories(reader, vocabulary, [(story, question)]))


def answer_stories(
    reader: Reader,
    vocabulary: QAVocabulary,
    stories: Iterable[tuple[Sequence[str], str]],
    budget: int = WORD_BUDGET,
    window: int = WINDOW,
) -> Iterator[dict]:
    """`answer` for each ``(story, question)`` of ``stories``, lazily, in batches of bounded
    size: read ``window`` at a time, sorted by size and batched so that no batch pads its
    memory beyond ``budget`` positions (stories times ``memory_size`` slots times the widest
    statement or question; a larger story alone), the answers in the order of ``stories``
    (see `hybrid.batching.map_in_batches`).

    Raises:
        ValueError: naming ``stories[i]`` for a story `answer` refuses;
            ``budget`` or ``window`` below 1.
    """
    memory_size = reader.config.memory_size
    items = (
        story_question(i, story, question, reader.config.memory_size)
        for i, (story, question) in enumerate(stories)
    )
    reader.eval()
    run = partial(_answer_batch, reader, vocabulary)
    return map_in_batches(run, items, partial(memory_positions, memory_size), budget, window)


def question_batch(
    memory: Tensor,
    memory_lengths: Tensor,
    query: Tensor,
    query_lengths: Tensor,
    text: Tensor,
    text_lengths: Tensor,
    text_statement: Tensor,
) -> QABatch:
    """The `QABatch` of questions to answer from their encoded tensors (the arrays of
    `hybrid.qa.text.encode_questions`): answers unknown (``-1``), no supporting facts."""
    batch = memory.shape[0]
    return QABatch(
        memory=memory,
        memory_lengths=memory_lengths,
        query=query,
        query_lengths=query_lengths,
        text=text,
        text_lengths=text_lengths,
        text_statement=text_statement,
        answers=memory_lengths.new_full((batch,), -1),
        supporting=memory_lengths.new_full((batch, 0), -1),
    )


def reader_outputs(reader: Reader, batch: QABatch) -> tuple[Tensor, Tensor, Tensor]:
    """``answer`` ``(B,)`` (the most probable answer's index), its ``confidence`` ``(B,)`` (its
    probability) and the ``attention`` ``(B, K, M)`` of each of the reader's ``K`` hops over
    the ``M`` memory slots (``K = 0`` for the LSTM baseline, which has none)."""
    logits, attention = reader(batch)
    confidence, best = logits.softmax(-1).max(-1)
    if attention is None:
        attention = logits.new_zeros(logits.shape[0], 0, batch.memory.shape[1])
    return best, confidence, attention


@torch.no_grad()
def _answer_batch(reader: Reader, vocabulary: QAVocabulary, items: list[Item]) -> list[dict]:
    """The answers of one batch of stories (see `answer`)."""
    memory_size = reader.config.memory_size
    arrays = encode_questions([question for _, question in items], vocabulary.words, memory_size)
    batch = question_batch(**{name: torch.from_numpy(array) for name, array in arrays.items()})
    outputs = dict(zip(OUTPUTS, reader_outputs(reader, batch), strict=True))
    return answer_results(items, outputs, vocabulary.answers, memory_size)
