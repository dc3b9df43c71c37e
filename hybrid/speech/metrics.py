"""Word error rate: Levenshtein alignment of word sequences, counted as ``jiwer`` counts.

WER = (substitutions + deletions + insertions) / reference words, summed over the corpus
before dividing (not averaged per utterance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["ErrorCounts", "boundaries_within", "error_rate", "word_errors"]


class ErrorCounts(NamedTuple):
    """Edit operations of a minimum-edit alignment, and the reference length."""

    substitutions: int
    deletions: int
    insertions: int
    reference: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: ErrorCounts) -> ErrorCounts:  # type: ignore[override]
        return ErrorCounts(*(a + b for a, b in zip(self, other, strict=True)))


def word_errors(reference: Sequence, hypothesis: Sequence) -> ErrorCounts:
    """Minimum edit distance between two word sequences, split into its operations.

    Minimal alignments can trade two substitutions for a deletion and an insertion; the split
    here is jiwer's (rapidfuzz's Levenshtein alignment): common prefix and suffix removed,
    then a backtrace from the end that prefers a deletion, then an insertion, then the
    diagonal step. Tested equal to ``jiwer.process_words`` on random pairs.
    """
    start = 0
    while start < min(len(reference), len(hypothesis)) and reference[start] == hypothesis[start]:
        start += 1
    ref, hyp = list(reference[start:]), list(hypothesis[start:])
    while ref and hyp and ref[-1] == hyp[-1]:
        ref.pop()
        hyp.pop()
    n, m = len(ref), len(hyp)
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
                cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]),
            )
    i, j = n, m
    substitutions = deletions = insertions = 0
    while i and j:
        if cost[i][j] - cost[i - 1][j] == 1:
            deletions += 1
            i -= 1
            continue
        j -= 1
        if j and cost[i][j] - cost[i - 1][j] == -1:
            insertions += 1
            continue
        i -= 1
        substitutions += ref[i] != hyp[j]
    return ErrorCounts(substitutions, deletions + i, insertions + j, len(reference))


def error_rate(references: Sequence[Sequence], hypotheses: Sequence[Sequence]) -> ErrorCounts:
    """Corpus totals of `word_errors` (divide ``errors`` by ``reference`` for the WER)."""
    if len(references) != len(hypotheses):
        raise ValueError(
            f"references and hypotheses differ in length: {len(references)} vs {len(hypotheses)}"
        )
    total = ErrorCounts(0, 0, 0, 0)
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        total = total + word_errors(reference, hypothesis)
    return total


def boundaries_within(
    reference: Sequence[tuple[float, float]],
    predicted: Sequence[tuple[float, float]],
    tolerance: float = 0.02,
) -> tuple[int, int]:
    """Forced-alignment accuracy: of the start and end times of each phone (seconds), how
    many predicted ones lie within ``tolerance`` of the reference ones, and how many there
    are (twice the phones). ``reference[i]`` and ``predicted[i]`` are the same phone of the
    transcript.

    Raises:
        ValueError: The two list different numbers of phones.
    """
    if len(reference) != len(predicted):
        raise ValueError(
            f"reference and predicted must list the same phones, got {len(reference)} and "
            f"{len(predicted)}"
        )
    within = sum(
        abs(r - p) <= tolerance
        for ref, pred in zip(reference, predicted, strict=True)
        for r, p in zip(ref, pred, strict=True)
    )
    return within, 2 * len(reference)
