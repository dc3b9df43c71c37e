"""Word error counts against a brute-force edit distance and against jiwer."""

from __future__ import annotations

import functools
import random

import pytest

from hybrid.speech.metrics import ErrorCounts, error_rate, word_errors


def edit_distance(a: tuple, b: tuple) -> int:
    """Levenshtein distance by plain recursion (the textbook definition)."""

    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


def _pairs(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        ref = tuple(rng.randrange(4) for _ in range(rng.randrange(0, 8)))
        hyp = tuple(rng.randrange(4) for _ in range(rng.randrange(0, 8)))
        yield ref, hyp


def test_counts_are_a_minimum_edit_alignment():
    for ref, hyp in _pairs(400, 0):
        counts = word_errors(ref, hyp)
        assert counts.errors == edit_distance(ref, hyp)
        assert counts.reference == len(ref)
        # hits = ref - S - D = hyp - S - I
        assert len(ref) - counts.substitutions - counts.deletions == (
            len(hyp) - counts.substitutions - counts.insertions
        )


def test_equal_to_jiwer():
    jiwer = pytest.importorskip("jiwer")
    pairs = [(r, h) for r, h in _pairs(300, 1) if r]  # jiwer refuses empty references
    refs = [" ".join(map(str, r)) for r, _ in pairs]
    hyps = [" ".join(map(str, h)) for _, h in pairs]
    expected = jiwer.process_words(refs, hyps)
    ours = error_rate([r for r, _ in pairs], [h for _, h in pairs])
    assert ours.errors == expected.substitutions + expected.deletions + expected.insertions
    assert ours.errors / ours.reference == pytest.approx(expected.wer)
    assert (ours.substitutions, ours.deletions, ours.insertions) == (
        expected.substitutions,
        expected.deletions,
        expected.insertions,
    )


def test_small_cases_and_errors():
    assert word_errors((1, 2, 3), (1, 2, 3)) == ErrorCounts(0, 0, 0, 3)
    assert word_errors((1, 2, 3), ()) == ErrorCounts(0, 3, 0, 3)
    assert word_errors((), (5,)) == ErrorCounts(0, 0, 1, 0)
    assert word_errors((1, 2), (1, 3, 2)) == ErrorCounts(0, 0, 1, 2)
    assert word_errors((1, 2), (3, 4)) == ErrorCounts(2, 0, 0, 2)
    with pytest.raises(ValueError, match="references and hypotheses differ in length"):
        error_rate([(1,)], [])
