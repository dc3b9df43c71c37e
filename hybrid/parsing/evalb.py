"""Labelled bracket scoring as EVALB (Sekine & Collins, 1997) computes it, by default with the
parameters of its COLLINS.prm, the standard for constituency parsing on the Penn Treebank.

Each tree is read the way ``evalb`` reads a line:

* Words. A preterminal whose tag is one of `Params.delete_labels` (compared exactly) is
  removed with its word, in each tree according to *that tree's own* tags: with COLLINS.prm
  the punctuation tags (comma, colon, opening and closing quotes, period) and the empty
  elements ``-NONE-``. A test tree that tags a comma ``NN`` keeps that word, and the sentence
  becomes a length mismatch (EVALB does not look at the gold tags for this).
* Brackets. Every other node is a bracket ``(label, start, end)`` over the positions of the
  words kept (``end`` exclusive). Its label is cut at the first ``-`` or ``=``: ``NP-SBJ-1``
  and ``NP=2`` become ``NP`` (as EVALB does, even at the first character: ``-X-`` becomes
  ``""``; tags are never cut). A bracket over no kept word is dropped (so empty elements
  vanish with every phrase above only them), and so is one whose cut label equals a delete
  label (``TOP``; equal labels count as equal here too); its children stay. The root counts
  like any node: the PTB's unlabelled outer bracket ``( (S ...) )`` is a bracket labelled
  ``""``, as in EVALB; relabel it ``TOP`` or remove it for it not to count.
* Two labels are equal when identical or a pair of `Params.equal_labels` (either order, not
  transitive; COLLINS.prm: ``ADVP`` = ``PRT``); `Params.labeled` ``False`` ignores labels when
  matching. Two words are equal when identical or a pair of `Params.equal_words`.

Then, for each pair of trees:

1. The sentence is *skipped* when the test tree keeps no word, an *error* when the two trees
   keep different numbers of words (length mismatch) or unequal words at some position (word
   mismatch). Such a sentence counts in the number of sentences and in no other total.
2. Matching: each gold bracket, in preorder, takes the first test bracket, in preorder, not
   yet taken with the same span and an equal label. When the equal labels form equivalence
   classes (as in COLLINS.prm) this counts the multiset intersection: ``n`` gold and ``m``
   test copies of a bracket match ``min(n, m)`` times.
3. Crossing: a test bracket crosses when some gold bracket overlaps it without nesting
   (``g.start < t.start < g.end < t.end`` or ``t.start < g.start < t.end < g.end``).
4. Tags: the tags of the kept words, position by position (equal labels apply).
5. Length, which decides the ``len <= 40`` figures: the gold tree's words whose tag is not one
   of `Params.delete_labels_for_length` (COLLINS.prm: ``-NONE-``), so punctuation counts.

The corpus figures are EVALB's summary over the valid (neither error nor skipped) sentences:
recall = matched / gold brackets, precision = matched / test brackets, F1 = 2PR / (P + R),
exact match = sentences with gold = test = matched brackets (tags aside), crossing, tagging
accuracy = correct tags / words. They are fractions where EVALB prints percentages, and 0 where
the denominator is 0 (EVALB prints ``nan`` for F1 when P + R = 0). Not reproduced: EVALB stops
after ``MAX_ERROR`` errors (here every sentence is scored), its ``QUOTE_LABEL`` repair (not in
COLLINS.prm), and its fixed limits (200 words, 200 brackets, 5000 characters a line).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .tree import Tree

__all__ = [
    "COLLINS",
    "EvalbResult",
    "Params",
    "SentenceScores",
    "Status",
    "evalb",
    "sentence_scores",
]

# A sentence scored, or EVALB's error (status 1: length or word mismatch) or skip (status 2).
Status = Literal["ok", "error", "skip"]
_ANNOTATION = re.compile(r"[-=]")


@dataclass(frozen=True)
class Params:
    """EVALB's parameter file; the defaults are those of COLLINS.prm.

    Attributes:
        labeled: ``LABELED 1``: a match needs equal labels; ``False`` compares spans only.
        delete_labels: ``DELETE_LABEL``: a preterminal with such a tag is removed with its
            word; a bracket whose label (cut at ``-``/``=``) equals one is dropped.
        delete_labels_for_length: ``DELETE_LABEL_FOR_LENGTH``: tags whose words do not count
            in a sentence's length.
        equal_labels: ``EQ_LABEL`` pairs of labels (and tags) taken as equal.
        equal_words: ``EQ_WORD`` pairs of words taken as equal.

    Raises:
        ValueError: naming the attribute: ``labeled`` not a bool, a label set that is a
            single ``str`` or holds a non-``str``, or a pair that is not two ``str``.
    """

    labeled: bool = True
    delete_labels: frozenset[str] = frozenset({"TOP", "-NONE-", ",", ":", "``", "''", "."})
    delete_labels_for_length: frozenset[str] = frozenset({"-NONE-"})
    equal_labels: frozenset[tuple[str, str]] = frozenset({("ADVP", "PRT")})
    equal_words: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.labeled, bool):
            raise ValueError(f"labeled must be a bool, got {self.labeled!r}")
        for name in ("delete_labels", "delete_labels_for_length"):
            object.__setattr__(self, name, _labels(getattr(self, name), name))
        for name in ("equal_labels", "equal_words"):
            object.__setattr__(self, name, _pairs(getattr(self, name), name))


def _labels(values: Iterable[str], name: str) -> frozenset[str]:
    """``values`` as a frozenset of ``str``; ValueError naming ``name`` otherwise."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a collection of str, got {values!r}")
    values = frozenset(values)
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"{name} must hold only str, got {sorted(map(repr, values))}")
    return values


def _pairs(values: Iterable[Sequence[str]], name: str) -> frozenset[tuple[str, str]]:
    """``values`` as a frozenset of ``(str, str)``; ValueError naming ``name`` otherwise."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a collection of pairs of str, got {values!r}")
    pairs = set()
    for pair in values:
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(s, str) for s in pair):
            raise ValueError(f"{name} must hold pairs of str, got {pair!r}")
        pairs.add((pair[0], pair[1]))
    return frozenset(pairs)


COLLINS = Params()


class _BracketRates:
    """Precision, recall and F1 of anything with ``matched``, ``test_brackets`` and
    ``gold_brackets`` counts (one sentence or a corpus)."""

    matched: int
    gold_brackets: int
    test_brackets: int

    @property
    def precision(self) -> float:
        """Bracketing precision: matched over test brackets; 0 without test brackets."""
        return _ratio(self.matched, self.test_brackets)

    @property
    def recall(self) -> float:
        """Bracketing recall: matched over gold brackets; 0 without gold brackets."""
        return _ratio(self.matched, self.gold_brackets)

    @property
    def f1(self) -> float:
        """Bracketing F-measure: harmonic mean of precision and recall; 0 when both are 0."""
        return _f1(self.precision, self.recall)


@dataclass(frozen=True)
class SentenceScores(_BracketRates):
    """One sentence as EVALB scores it (one line of its table).

    Attributes:
        status: ``"ok"``; ``"error"`` (length or word mismatch) or ``"skip"`` (the test tree
            keeps no word), both with every count 0 (EVALB's status 1 and 2).
        message: Why the sentence is an error or skipped; ``""`` when ``"ok"``.
        length: The gold tree's words not deleted for length (EVALB's "Len."), whatever the
            status.
        words: The words scored, punctuation and empty elements removed (EVALB's "Words").
        matched: Matched brackets.
        gold_brackets: Brackets of the gold tree.
        test_brackets: Brackets of the test tree.
        crossing: Test brackets crossing a gold bracket.
        correct_tags: Words whose test tag equals the gold one.
    """

    status: Status
    message: str
    length: int
    words: int = 0
    matched: int = 0
    gold_brackets: int = 0
    test_brackets: int = 0
    crossing: int = 0
    correct_tags: int = 0

    @property
    def exact_match(self) -> bool:
        """Valid, and gold, test and matched brackets all equal (EVALB's complete match)."""
        return self.status == "ok" and self.gold_brackets == self.test_brackets == self.matched

    @property
    def tagging_accuracy(self) -> float:
        """Correct tags over words; 0 without words."""
        return _ratio(self.correct_tags, self.words)


@dataclass(frozen=True)
class EvalbResult(_BracketRates):
    """EVALB's summary of a corpus, or of its sentences up to some length.

    Attributes:
        sentences: Sentences counted (EVALB's "Number of sentence").
        errors: Positions (in the input) of the error sentences (length or word mismatch).
        skipped: Positions of the skipped sentences (the test tree keeps no word).
        matched: Matched brackets over the valid sentences; likewise the other counts.
        gold_brackets: Gold brackets.
        test_brackets: Test brackets.
        exact_matches: Sentences whose brackets match exactly.
        crossing: Test brackets crossing a gold bracket.
        no_crossing_sentences: Sentences without a crossing bracket.
        two_or_less_crossing_sentences: Sentences with at most two crossing brackets.
        words: Words scored.
        correct_tags: Words tagged as in the gold tree.
    """

    sentences: int
    errors: tuple[int, ...]
    skipped: tuple[int, ...]
    matched: int
    gold_brackets: int
    test_brackets: int
    exact_matches: int
    crossing: int
    no_crossing_sentences: int
    two_or_less_crossing_sentences: int
    words: int
    correct_tags: int

    @property
    def valid_sentences(self) -> int:
        """Sentences neither error nor skipped."""
        return self.sentences - len(self.errors) - len(self.skipped)

    @property
    def exact_match(self) -> float:
        """Complete match: fraction of the valid sentences matched exactly."""
        return _ratio(self.exact_matches, self.valid_sentences)

    @property
    def average_crossing(self) -> float:
        """Crossing brackets per valid sentence."""
        return _ratio(self.crossing, self.valid_sentences)

    @property
    def no_crossing(self) -> float:
        """Fraction of the valid sentences without a crossing bracket."""
        return _ratio(self.no_crossing_sentences, self.valid_sentences)

    @property
    def two_or_less_crossing(self) -> float:
        """Fraction of the valid sentences with at most two crossing brackets."""
        return _ratio(self.two_or_less_crossing_sentences, self.valid_sentences)

    @property
    def tagging_accuracy(self) -> float:
        """Correct tags over words."""
        return _ratio(self.correct_tags, self.words)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


# -- reading a tree the way EVALB reads a line ----------------------------------------------


@dataclass
class _Reading:
    """What EVALB keeps of a tree: words, tags, brackets (preorder) and the length."""

    words: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    brackets: list[tuple[str, int, int]] = field(default_factory=list)
    length: int = 0


def _read(tree: object, params: Params, name: str) -> _Reading:
    """``tree`` read as EVALB reads it; ValueError naming ``name`` for a bad tree."""
    if not isinstance(tree, Tree):
        raise ValueError(f"{name} must be a Tree, got {type(tree).__name__}")
    reading = _Reading()
    _collect(tree, params, name, reading)
    reading.brackets = [
        (label, start, end)
        for label, start, end in reading.brackets
        if start < end and not _deleted(label, params)
    ]
    return reading


def _collect(tree: Tree, params: Params, name: str, reading: _Reading) -> None:
    """Add ``tree``'s words, tags and brackets (label cut, spans over kept words).

    The walk keeps an explicit stack, so trees of any depth work: a phrase's bracket takes its
    place in preorder when the phrase is entered, and its end once its children are read.
    """
    stack: list[Tree | int] = [tree]  # nodes to read, and brackets (by position) to close
    while stack:
        node = stack.pop()
        if isinstance(node, int):
            label, start, _ = reading.brackets[node]
            reading.brackets[node] = (label, start, len(reading.words))
        elif node.is_preterminal():
            _collect_word(node, params, reading)
        else:
            _check_no_word(node, name)
            stack.append(len(reading.brackets))
            reading.brackets.append((_category(node.label), len(reading.words), -1))
            stack.extend(reversed(node.children))


def _collect_word(preterminal: Tree, params: Params, reading: _Reading) -> None:
    """Count ``preterminal``'s word in the length, and keep it and its tag unless deleted."""
    tag, word = preterminal.label, preterminal.children[0]
    reading.length += tag not in params.delete_labels_for_length
    if tag not in params.delete_labels:
        reading.words.append(word)
        reading.tags.append(tag)


def _check_no_word(phrase: Tree, name: str) -> None:
    """ValueError naming ``name`` if a word sits among ``phrase``'s children."""
    for child in phrase.children:
        if isinstance(child, str):
            raise ValueError(
                f"{name} has the word {child!r} beside other children of ({phrase.label} ...); "
                "EVALB reads a word only under a preterminal, (TAG word)"
            )


def _category(label: str) -> str:
    """``label`` up to its first ``-`` or ``=`` (EVALB's ``modify_label``)."""
    return _ANNOTATION.split(label, maxsplit=1)[0]


def _deleted(label: str, params: Params) -> bool:
    return any(_equal(label, deleted, params.equal_labels) for deleted in params.delete_labels)


def _equal(a: str, b: str, pairs: Collection[tuple[str, str]]) -> bool:
    return a == b or (a, b) in pairs or (b, a) in pairs


# -- scoring --------------------------------------------------------------------------------


def sentence_scores(gold: Tree, test: Tree, params: Params = COLLINS) -> SentenceScores:
    """Score one test tree against its gold tree as EVALB does (see the module docstring).

    Args:
        gold: The gold tree; every word under a preterminal ``(TAG word)``.
        test: The tree to score, over the same words.
        params: EVALB's parameters; COLLINS.prm by default.

    Returns:
        The sentence's counts; an error or skipped sentence has status ``"error"``/``"skip"``,
        a ``message`` and counts 0 (never an exception).

    Raises:
        ValueError: naming the argument: ``gold`` or ``test`` not a `Tree` or with a word
            beside other children, ``params`` not a `Params`.
    """
    _check_params(params)
    return _score(gold, test, params, "gold", "test")


def evalb(
    golds: Sequence[Tree],
    tests: Sequence[Tree],
    params: Params = COLLINS,
    *,
    max_length: int | None = None,
) -> EvalbResult:
    """EVALB's summary of a test corpus against its gold corpus.

    Args:
        golds: The gold trees.
        tests: The trees to score, one for each gold tree, in the same order.
        params: EVALB's parameters; COLLINS.prm by default.
        max_length: Count only the sentences whose gold length (see `SentenceScores.length`)
            is at most this (EVALB's "len<=40" section for 40); ``None`` counts all ("All").

    Returns:
        The summary; error and skipped sentences are listed by position and excluded from
        every figure but the number of sentences.

    Raises:
        ValueError: naming the argument: ``golds``/``tests`` not sequences of `Tree`
            (``golds[i]`` named), of different lengths, a tree with a word beside other
            children, ``params`` not a `Params`, ``max_length`` not a non-negative int.
    """
    golds, tests = _trees(golds, "golds"), _trees(tests, "tests")
    if len(golds) != len(tests):
        raise ValueError(
            f"golds and tests must have as many trees, got {len(golds)} and {len(tests)}"
        )
    _check_params(params)
    if max_length is not None and (
        not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 0
    ):
        raise ValueError(f"max_length must be None or an int >= 0, got {max_length!r}")
    scores = {
        i: _score(gold, test, params, f"golds[{i}]", f"tests[{i}]")
        for i, (gold, test) in enumerate(zip(golds, tests, strict=True))
    }
    return _summary(
        {i: s for i, s in scores.items() if max_length is None or s.length <= max_length}
    )


def _trees(trees: Sequence[Tree], name: str) -> list[Tree]:
    if isinstance(trees, (str, Tree)) or not isinstance(trees, Iterable):
        raise ValueError(f"{name} must be a sequence of Trees, got {type(trees).__name__}")
    return list(trees)


def _check_params(params: Params) -> None:
    if not isinstance(params, Params):
        raise ValueError(f"params must be a Params, got {type(params).__name__}")


def _score(
    gold: Tree, test: Tree, params: Params, gold_name: str, test_name: str
) -> SentenceScores:
    """`sentence_scores`, naming the trees ``gold_name`` and ``test_name`` in errors."""
    g, t = _read(gold, params, gold_name), _read(test, params, test_name)
    problem = _mismatch(g, t, params)
    if problem is not None:
        return SentenceScores(problem[0], problem[1], g.length)
    return SentenceScores(
        status="ok",
        message="",
        length=g.length,
        words=len(g.words),
        matched=_matched(g.brackets, t.brackets, params),
        gold_brackets=len(g.brackets),
        test_brackets=len(t.brackets),
        crossing=_crossing(g.brackets, t.brackets),
        correct_tags=sum(
            _equal(a, b, params.equal_labels) for a, b in zip(g.tags, t.tags, strict=True)
        ),
    )


def _mismatch(gold: _Reading, test: _Reading, params: Params) -> tuple[Status, str] | None:
    """Why EVALB would skip the sentence or count it an error; ``None`` if it scores it."""
    if not test.words:
        return "skip", "the test tree keeps no word"
    if len(gold.words) != len(test.words):
        return "error", f"length mismatch: {len(gold.words)} gold, {len(test.words)} test words"
    for i, (a, b) in enumerate(zip(gold.words, test.words, strict=True)):
        if not _equal(a, b, params.equal_words):
            return "error", f"word mismatch at word {i}: {a!r} gold, {b!r} test"
    return None


def _matched(
    gold: list[tuple[str, int, int]], test: list[tuple[str, int, int]], params: Params
) -> int:
    """Gold brackets (preorder) each taking the first free test bracket of their span and an
    equal label (preorder)."""
    free: defaultdict[tuple[int, int], list[str]] = defaultdict(list)
    for label, start, end in test:
        free[start, end].append(label)
    matched = 0
    for label, start, end in gold:
        labels = free[start, end]
        for j, other in enumerate(labels):
            if not params.labeled or _equal(label, other, params.equal_labels):
                del labels[j]
                matched += 1
                break
    return matched


def _crossing(gold: list[tuple[str, int, int]], test: list[tuple[str, int, int]]) -> int:
    """Test brackets that overlap some gold bracket without nesting in or around it."""
    spans = {(start, end) for _, start, end in gold}
    return sum(
        any(g0 < t0 < g1 < t1 or t0 < g0 < t1 < g1 for g0, g1 in spans) for _, t0, t1 in test
    )


def _summary(scores: dict[int, SentenceScores]) -> EvalbResult:
    """EVALB's totals over ``scores`` (by input position)."""
    valid = [s for s in scores.values() if s.status == "ok"]
    return EvalbResult(
        sentences=len(scores),
        errors=tuple(i for i, s in scores.items() if s.status == "error"),
        skipped=tuple(i for i, s in scores.items() if s.status == "skip"),
        matched=sum(s.matched for s in valid),
        gold_brackets=sum(s.gold_brackets for s in valid),
        test_brackets=sum(s.test_brackets for s in valid),
        exact_matches=sum(s.exact_match for s in valid),
        crossing=sum(s.crossing for s in valid),
        no_crossing_sentences=sum(s.crossing == 0 for s in valid),
        two_or_less_crossing_sentences=sum(s.crossing <= 2 for s in valid),
        words=sum(s.words for s in valid),
        correct_tags=sum(s.correct_tags for s in valid),
    )
