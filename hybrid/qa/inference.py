"""Answering questions about stories with a saved reader, one story or a stream of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial

import torch

from ..batching import WINDOW, map_in_batches
from .babi import Question, tokenize
from .batching import QAVocabulary, collate
from .model import Reader

__all__ = ["answer", "answer_stories", "parse_story", "read_stories"]

#: Most padded memory positions (stories times memory slots times words) read together.
WORD_BUDGET = 32768


def parse_story(text: str) -> tuple[list[str], str]:
    """Statements and question of a plain-text story: one statement per line, the question
    on the last line. Leading bAbI line IDs (``"3 Mary went ..."``) and anything after a tab
    on the question line (a bAbI answer) are dropped.

    Raises:
        ValueError: when there is no statement before the question.
    """
    lines = []
    for line in text.splitlines():
        line = line.split("\t")[0].strip()
        head, _, rest = line.partition(" ")
        if head.isdigit() and rest:
            line = rest.strip()
        if line:
            lines.append(line)
    if len(lines) < 2:
        raise ValueError("the story needs at least one statement line before the question line")
    return lines[:-1], lines[-1]


def read_stories(lines: Iterable[str]) -> Iterator[tuple[list[str], str]]:
    """The ``(statements, question)`` of each story in ``lines`` (a file, standard input),
    lazily: stories are separated by blank lines, each read by `parse_story`.

    Raises:
        ValueError: naming the lines of a story without a statement before its question.
    """
    block: list[str] = []
    first = 1
    for number, line in enumerate(lines, start=1):
        if line.strip():
            block.append(line)
            continue
        if block:
            yield _parse_block(block, first)
        block, first = [], number + 1
    if block:
        yield _parse_block(block, first)


def _parse_block(block: list[str], first: int) -> tuple[list[str], str]:
    """`parse_story` of the lines ``first, first + 1, ...`` of the input, named on error."""
    try:
        return parse_story("\n".join(block))
    except ValueError as error:
        last = first + len(block) - 1
        where = f"line {first}" if first == last else f"lines {first}-{last}"
        raise ValueError(f"{where}: {error}") from None


def answer(reader: Reader, vocabulary: QAVocabulary, story: Sequence[str], question: str) -> dict:
    """The reader's answer to ``question`` about ``story`` (statements, oldest first).

    Returns:
        ``{"answer", "confidence", "attended"}``: the answer text, its probability, and per
        hop the (statement, weight) it attended to most (empty for the LSTM baseline).
        Only the ``memory_size`` most recent statements are read.

    Raises:
        ValueError: for an empty story or a question without words.
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
        ValueError: naming ``stories[i]`` for an empty story or a question without words;
            ``budget`` or ``window`` below 1.
    """
    memory_size = reader.config.memory_size
    items = (_question(i, story, question) for i, (story, question) in enumerate(stories))
    reader.eval()
    run = partial(_answer_batch, reader, vocabulary)
    return map_in_batches(run, items, partial(_memory_positions, memory_size), budget, window)


def _question(index: int, story: Sequence[str], question: str) -> tuple[list[str], Question]:
    """The statements of ``stories[index]`` and its `Question` (a placeholder answer)."""
    if not story:
        raise ValueError(f"stories[{index}]: the story must hold at least one statement")
    words = tokenize(question)
    if not words:
        raise ValueError(f"stories[{index}]: the question has no words: {question!r}")
    statements = list(story)
    return statements, Question(tuple(tokenize(s) for s in statements), words, ("?",))


def _memory_positions(memory_size: int, item: tuple[list[str], Question]) -> int:
    """Positions a story can take in a padded batch: ``memory_size`` slots as wide as its
    widest statement or question (a bound on the memory, text and question tensors)."""
    question = item[1]
    kept = question.story[-memory_size:]
    return memory_size * max(len(question.question), *(len(s) for s in kept))


@torch.no_grad()
def _answer_batch(
    reader: Reader, vocabulary: QAVocabulary, items: list[tuple[list[str], Question]]
) -> list[dict]:
    """The answers of one batch of stories (see `answer`)."""
    memory_size = reader.config.memory_size
    batch = collate([question for _, question in items], vocabulary, memory_size)
    logits, attention = reader(batch)
    probabilities = logits.softmax(-1)
    best = probabilities.argmax(-1)
    results = []
    for b, (statements, _) in enumerate(items):
        kept = statements[-memory_size:]
        attended = []
        if attention is not None:
            for weights in attention[b]:
                slot = int(weights.argmax())
                attended.append((kept[slot], float(weights[slot])))
        results.append(
            {
                "answer": vocabulary.answers.token(int(best[b])),
                "confidence": float(probabilities[b, best[b]]),
                "attended": attended,
            }
        )
    return results
