"""Between stories and a reader's arrays, without torch: what a trained reader and an exported
one (`hybrid.deploy`) share.

`parse_story` and `read_stories` read plain-text stories, `story_question` checks and
tokenises one, `encode_questions` pads a batch of them into the index arrays a reader reads
(NumPy; `hybrid.qa.inference` wraps them as a `hybrid.qa.batching.QABatch`) and
`answer_results` turns a batch of outputs into the dictionaries ``hybrid answer`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..vocabulary import Vocabulary
from .babi import Question, tokenize

__all__ = [
    "INPUTS",
    "OUTPUTS",
    "WORD_BUDGET",
    "answer_results",
    "encode_questions",
    "memory_positions",
    "parse_story",
    "read_stories",
    "story_question",
]

#: Most padded memory positions (stories times memory slots times words) read together.
WORD_BUDGET = 32768

#: The arrays of `encode_questions`, in the order a reader's exported module takes them.
INPUTS = (
    "memory",
    "memory_lengths",
    "query",
    "query_lengths",
    "text",
    "text_lengths",
    "text_statement",
)

#: The outputs `answer_results` reads: the answer's index, its probability and the attention.
OUTPUTS = ("answer", "confidence", "attention")

#: A story's statements and its question (with a placeholder answer), as `story_question`
#: makes them.
Item = tuple[list[str], Question]


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


def story_question(index: int, story: Sequence[str], question: str, memory_size: int) -> Item:
    """The statements of ``stories[index]`` and its `Question` (a placeholder answer), for a
    reader that reads the ``memory_size`` most recent statements.

    Raises:
        ValueError: naming ``stories[index]``, for an empty story, a question without words,
            or a story whose ``memory_size`` most recent statements hold no words.
    """
    if not story:
        raise ValueError(f"stories[{index}]: the story must hold at least one statement")
    words = tokenize(question)
    if not words:
        raise ValueError(f"stories[{index}]: the question has no words: {question!r}")
    statements = list(story)
    sentences = tuple(tokenize(s) for s in statements)
    if not any(sentences[-memory_size:]):
        raise ValueError(
            f"stories[{index}]: its {min(memory_size, len(sentences))} most recent statements "
            "hold no words to read"
        )
    return statements, Question(sentences, words, ("?",))


def memory_positions(memory_size: int, item: Item) -> int:
    """Positions a story can take in a padded batch: ``memory_size`` slots as wide as its
    widest statement or question (a bound on the memory, text and question arrays)."""
    question = item[1]
    kept = question.story[-memory_size:]
    return memory_size * max(len(question.question), *(len(s) for s in kept))


def encode_questions(
    questions: Sequence[Question], words: Vocabulary, memory_size: int
) -> dict[str, np.ndarray]:
    """Pad ``questions`` into the int64 arrays of a `hybrid.qa.batching.QABatch` (less its
    answers and supporting facts), keeping the ``memory_size`` most recent statements:
    ``memory`` ``(B, M, L)`` (oldest first), ``memory_lengths`` ``(B,)``, ``query`` ``(B, Q)``,
    ``query_lengths`` ``(B,)``, ``text`` ``(B, N)`` (the kept statements as one running text),
    ``text_lengths`` ``(B,)`` and ``text_statement`` ``(B, N)`` (the memory slot of each word
    of ``text``, ``-1`` on padding); index 0 pads, and every padded axis is at least 1 long.

    Raises:
        ValueError: No questions, or ``memory_size`` not a positive integer.
    """
    if not questions:
        raise ValueError("questions must not be empty")
    if isinstance(memory_size, bool) or not isinstance(memory_size, int) or memory_size < 1:
        raise ValueError(f"memory_size must be a positive integer, got {memory_size!r}")
    kept = [[words.encode(s) for s in q.story[-memory_size:]] for q in questions]
    queries = [words.encode(q.question) for q in questions]
    texts = [[i for sentence in statements for i in sentence] for statements in kept]
    batch = len(questions)
    slots = max([1, *(len(statements) for statements in kept)])
    width = max([1, *(len(sentence) for statements in kept for sentence in statements)])
    arrays = {
        "memory": np.zeros((batch, slots, width), dtype=np.int64),
        "memory_lengths": np.array([len(s) for s in kept], dtype=np.int64),
        "query": _pad(queries, 0),
        "query_lengths": np.array([len(q) for q in queries], dtype=np.int64),
        "text": _pad(texts, 0),
        "text_lengths": np.array([len(t) for t in texts], dtype=np.int64),
        "text_statement": _pad(
            [[slot for slot, s in enumerate(statements) for _ in s] for statements in kept], -1
        ),
    }
    for b, statements in enumerate(kept):
        for slot, sentence in enumerate(statements):
            arrays["memory"][b, slot, : len(sentence)] = sentence
    return arrays


def _pad(rows: Sequence[Sequence[int]], value: int) -> np.ndarray:
    """``(N, W)`` int64: the rows left-aligned, ``value`` after each (``W >= 1``)."""
    out = np.full((len(rows), max([1, *(len(r) for r in rows)])), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def answer_results(
    items: Sequence[Item], outputs: Mapping[str, Any], answers: Vocabulary, memory_size: int
) -> list[dict]:
    """One dictionary per story of ``items`` from a batch of reader outputs (tensors or
    arrays, named as in `OUTPUTS`: ``answer`` ``(B,)``, ``confidence`` ``(B,)``,
    ``attention`` ``(B, K, M)``; see `hybrid.qa.inference.reader_outputs`).

    Returns:
        ``{"answer", "confidence", "attended"}`` per story: the answer text, its
        probability, and per hop the (statement, weight) attended to most among the
        ``memory_size`` most recent statements (empty for a reader without attention).
    """
    results = []
    for b, (statements, _) in enumerate(items):
        kept = statements[-memory_size:]
        attended = []
        for weights in outputs["attention"][b].tolist():
            weights = weights[: len(kept)]
            slot = weights.index(max(weights))
            attended.append((kept[slot], weights[slot]))
        results.append(
            {
                "answer": answers.token(int(outputs["answer"][b])),
                "confidence": float(outputs["confidence"][b]),
                "attended": attended,
            }
        )
    return results
