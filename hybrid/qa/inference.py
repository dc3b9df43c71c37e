"""Answering one question about one story with a saved reader."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .babi import Question, tokenize
from .batching import QAVocabulary, collate
from .model import Reader

__all__ = ["answer", "parse_story"]


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


@torch.no_grad()
def answer(reader: Reader, vocabulary: QAVocabulary, story: Sequence[str], question: str) -> dict:
    """The reader's answer to ``question`` about ``story`` (statements, oldest first).

    Returns:
        ``{"answer", "confidence", "attended"}``: the answer text, its probability, and per
        hop the (statement, weight) it attended to most (empty for the LSTM baseline).
        Only the ``memory_size`` most recent statements are read.

    Raises:
        ValueError: for an empty story or a question without words.
    """
    if not story:
        raise ValueError("story must hold at least one statement")
    words = tokenize(question)
    if not words:
        raise ValueError(f"question has no words: {question!r}")
    placeholder = vocabulary.answers.token(0)
    item = Question(tuple(tokenize(s) for s in story), words, (placeholder,))
    batch = collate([item], vocabulary, reader.config.memory_size)
    reader.eval()
    logits, attention = reader(batch)
    probabilities = logits.softmax(-1)[0]
    best = int(probabilities.argmax())
    kept = list(story)[-reader.config.memory_size :]
    attended = []
    if attention is not None:
        for weights in attention[0]:
            slot = int(weights.argmax())
            attended.append((kept[slot], float(weights[slot])))
    return {
        "answer": vocabulary.answers.token(best),
        "confidence": float(probabilities[best]),
        "attended": attended,
    }
