"""`ExportedReader`: a reader exported by ``hybrid export``, run without torch."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path

from ..batching import WINDOW, map_in_batches
from ..qa.text import (
    WORD_BUDGET,
    Item,
    answer_results,
    encode_questions,
    memory_positions,
    story_question,
)
from . import check_keys, runner, vocabularies

__all__ = ["ExportedReader"]


class ExportedReader:
    """A reader exported by ``hybrid export``: `answer` and `answer_stories` return what
    `hybrid.qa.inference.answer` and `hybrid.qa.inference.answer_stories` return (and
    ``hybrid answer`` prints).

    Args:
        path: The exported model.
        description: Its description (`describe`).
        threads: Threads of an ONNX model (``None``: onnxruntime's default).

    Raises:
        ValueError: naming ``path``'s description, when it lacks the memory size or the
            vocabularies; those of `runner`.
    """

    def __init__(self, path: str | os.PathLike[str], description: dict, threads: int | None = None):
        self.path = Path(path)
        self.description = description
        check_keys(self.path, description, {"memory_size": int})
        found = vocabularies(self.path, description, ("words", "answers"))
        self.words, self.answers = found["words"], found["answers"]
        self.memory_size = description["memory_size"]
        self._run = runner(self.path, description, threads)

    def answer(self, story: Sequence[str], question: str) -> dict:
        """The answer to ``question`` about ``story`` (statements, oldest first):
        ``{"answer", "confidence", "attended"}`` (see `hybrid.qa.inference.answer`).

        Raises:
            ValueError: for an empty story, a question without words, or a story whose
                most recent statements (those the reader reads) hold no words.
        """
        return next(self.answer_stories([(story, question)]))

    def answer_stories(
        self,
        stories: Iterable[tuple[Sequence[str], str]],
        budget: int = WORD_BUDGET,
        window: int = WINDOW,
    ) -> Iterator[dict]:
        """`answer` for each ``(story, question)`` of ``stories``, lazily, in order, in
        batches of at most ``budget`` padded memory positions read ``window`` stories at a
        time (as `hybrid.qa.inference.answer_stories` batches them).

        Raises:
            ValueError: naming ``stories[i]`` for a story `answer` refuses
                (when it is reached); ``budget`` or ``window`` below 1.
        """
        items = (
            story_question(i, story, question, self.memory_size)
            for i, (story, question) in enumerate(stories)
        )
        positions = partial(memory_positions, self.memory_size)
        return map_in_batches(self.answer_batch, items, positions, budget, window)

    def answer_batch(self, items: list[Item]) -> list[dict]:
        """The answers of one batch of `hybrid.qa.text.story_question` items."""
        questions = [question for _, question in items]
        outputs = self._run(encode_questions(questions, self.words, self.memory_size))
        return answer_results(items, outputs, self.answers, self.memory_size)
