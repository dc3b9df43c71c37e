"""EVALB scoring: hand counts, edge cases, a brute-force reference, and the original C EVALB.

The C oracle is ``evalb.c`` (Sekine & Collins; the 2006 version with David Ellis' fixes) as
shipped in the ``allennlp`` wheel on PyPI, compiled here with the system C compiler. allennlp
cannot be a dev dependency (it pins torch < 1.13), so its tests skip unless the source is found:
set ``HYBRID_EVALB_C`` to an ``evalb.c`` or install the wheel's files alone with
``pip install --no-deps allennlp==2.10.1``. The brute-force reference (COLLINS.prm only) runs
everywhere.
"""

from __future__ import annotations

import importlib.metadata
import os
import random
import re
import shutil
import subprocess
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from realdata import real_corpus

from hybrid.parsing.evalb import COLLINS, Params, SentenceScores, evalb, sentence_scores
from hybrid.parsing.tree import Tree

T = Tree.from_string


# --- hand-computed examples -------------------------------------------------------------------

# Words "The cat sat on the mat" (the period is deleted, but counts in the length, 7).
# Gold S(0,6) NP(0,2) VP(2,6) PP(3,6) NP(4,6); test has VP(2,3) instead of VP(2,6).
CAT_GOLD = "(S (NP (DT The) (NN cat)) (VP (VBD sat) (PP (IN on) (NP (DT the) (NN mat)))) (. .))"
CAT_TEST = "(S (NP (DT The) (NN cat)) (VP (VBD sat)) (PP (IN on) (NP (DT the) (NN mat))) (. .))"
# Gold: the unlabelled root ""(0,4), S, VP(0,4), PRT(1,2), NP(2,4); NP-SBJ is over a trace only.
# Test: S, VP, ADVP (= PRT), NP; its period sits inside VP, which changes nothing.
LOOK_GOLD = "( (S (NP-SBJ (-NONE- *)) (VP (VB Look) (PRT (RP up)) (NP (DT the) (NN word))) (. .)) )"
LOOK_TEST = "(S (VP (VB Look) (ADVP (RP up)) (NP (DT the) (NN word)) (. .)))"
# Gold S(0,4) NP(0,1) NP(0,1) VP(1,4) NP(2,4); test S(0,4) NP(0,1) X(1,3), X crossing NP(2,4);
# one NP(0,1) matches; the test tags c JJ.
ABCD_GOLD = "(S (NP (NP (NN a))) (VP (VB b) (NP (NN c) (NN d))))"
ABCD_TEST = "(S (NP (NN a)) (X (VB b) (JJ c)) (NN d))"
LENGTH_ERROR = ("(S (NN x) (NN y))", "(S (NN x))")
SKIP = ("(S (NN z) (. .))", "(S (, z) (. .))")


HAND_PAIRS = [
    (CAT_GOLD, CAT_TEST),
    (LOOK_GOLD, LOOK_TEST),
    (ABCD_GOLD, ABCD_TEST),
    LENGTH_ERROR,
    SKIP,
]


def counts(scores: SentenceScores) -> tuple:
    """What EVALB prints for a sentence: (status, length, words, matched, gold brackets, test
    brackets, crossing, correct tags)."""
    return (
        scores.status,
        scores.length,
        scores.words,
        scores.matched,
        scores.gold_brackets,
        scores.test_brackets,
        scores.crossing,
        scores.correct_tags,
    )


def test_hand_computed_sentences():
    cat = sentence_scores(T(CAT_GOLD), T(CAT_TEST))
    assert counts(cat) == ("ok", 7, 6, 4, 5, 5, 0, 6)
    assert (cat.precision, cat.recall, cat.exact_match) == (0.8, 0.8, False)
    assert cat.f1 == pytest.approx(0.8)
    look = sentence_scores(T(LOOK_GOLD), T(LOOK_TEST))
    assert counts(look) == ("ok", 5, 4, 4, 5, 4, 0, 4)
    assert (look.precision, look.recall, look.f1) == (1.0, 0.8, pytest.approx(16 / 18))
    abcd = sentence_scores(T(ABCD_GOLD), T(ABCD_TEST))
    assert counts(abcd) == ("ok", 4, 4, 2, 5, 3, 1, 3)
    assert (abcd.precision, abcd.recall, abcd.tagging_accuracy) == (2 / 3, 0.4, 0.75)
    assert sentence_scores(T(CAT_GOLD), T(CAT_GOLD)).exact_match


def test_hand_computed_corpus():
    golds, tests = [T(g) for g, _ in HAND_PAIRS], [T(t) for _, t in HAND_PAIRS]
    result = evalb(golds, tests)
    assert (result.sentences, result.errors, result.skipped) == (5, (3,), (4,))
    assert result.valid_sentences == 3
    assert (result.matched, result.gold_brackets, result.test_brackets) == (10, 15, 12)
    assert (result.recall, result.precision) == (10 / 15, 10 / 12)
    assert result.f1 == pytest.approx(2 * 10 / (15 + 12))
    assert (result.exact_matches, result.exact_match) == (0, 0.0)
    assert (result.crossing, result.average_crossing) == (1, 1 / 3)
    assert (result.no_crossing, result.two_or_less_crossing) == (2 / 3, 1.0)
    assert (result.words, result.correct_tags, result.tagging_accuracy) == (14, 13, 13 / 14)
    short = evalb(golds, tests, max_length=5)  # drops CAT (7 words with its period)
    assert (short.sentences, short.errors, short.skipped) == (4, (3,), (4,))
    assert (short.matched, short.gold_brackets, short.test_brackets) == (6, 10, 7)


def test_parameters_other_than_collins():
    gold, test = (
        T("(S (NP (DT the) (NN dog)) (VP (VBZ barks)))"),
        T("(S (X (DT The) (NN dog)) (VBZ barks))"),
    )
    assert sentence_scores(gold, test).status == "error"  # "the" / "The"
    same_words = Params(equal_words={("The", "the")})
    assert sentence_scores(gold, test, same_words).matched == 1  # S only
    spans_only = Params(labeled=False, equal_words={("the", "The")})
    assert sentence_scores(gold, test, spans_only).matched == 2  # S and NP/X
    # Equal labels are not transitive; each gold bracket (preorder) takes the first equal test
    # bracket of its span (preorder): A takes B, then B takes C; B first would leave A nothing.
    chain = Params(equal_labels={("A", "B"), ("B", "C")})
    assert sentence_scores(T("(A (B (N x) (N y)))"), T("(B (C (N x) (N y)))"), chain).matched == 2
    assert sentence_scores(T("(B (A (N x) (N y)))"), T("(B (C (N x) (N y)))"), chain).matched == 1
    # A bracket is deleted when its label equals a delete label, equal labels included.
    deleting = Params(delete_labels={"SINV"}, equal_labels={("SINV", "SQ")})
    assert (
        sentence_scores(T("(SQ (N x) (N y))"), T("(SQ (N x) (N y))"), deleting).gold_brackets == 0
    )


# --- edge cases: (gold, test, counts) ----------------------------------------------------------

EDGES = [
    # punctuation moved into a phrase, to its edges or out of it changes no span
    ("(S (NP (DT the) (NN dog)) (VP (VBZ barks)) (. .))",
     "(S (NP (DT the) (NN dog)) (VP (VBZ barks) (. .)))", ("ok", 4, 3, 3, 3, 3, 0, 3)),
    ("(S (NP (NNP Mr.) (NNP Smith) (, ,)) (VP (VBD left)) (. .))",
     "(S (, ,) (NP (NNP Mr.) (NNP Smith)) (VP (VBD left) (. .)))", ("ok", 5, 3, 3, 3, 3, 0, 3)),
    ("(S (`` ``) (NP (PRP We)) (VP (VBD won)) ('' '') (: ;))",
     "(S (`` ``) (NP (PRP We)) (VP (VBD won) ('' '') (: ;)))", ("ok", 5, 2, 3, 3, 3, 0, 2)),
    # ADVP = PRT as phrase labels; tags are compared as written
    ("(S (VP (VB Look) (PRT (RP up))))", "(S (VP (VB Look) (ADVP (RP up))))",
     ("ok", 2, 2, 3, 3, 3, 0, 2)),
    ("(S (VP (VB Look) (ADVP (RB up))))", "(S (VP (VB Look) (PRT (RP up))))",
     ("ok", 2, 2, 3, 3, 3, 0, 1)),
    # empty elements vanish with every phrase over them only; they do not count in the length
    ("(S (NP-SBJ (-NONE- *-1)) (VP (VBD reported) (SBAR (-NONE- 0) (S (-NONE- *T*-2)))) (. .))",
     "(S (VP (VBD reported)) (. .))", ("ok", 2, 1, 2, 2, 2, 0, 1)),
    ("(S (NP (NN a)) (VP (VB b)))",
     "(S (NP (-NONE- *)) (NP (NN a)) (VP (VB b) (NP (-NONE- *T*))))", ("ok", 2, 2, 3, 3, 3, 0, 2)),
    # function tags and co-indices are cut; "-X-" is cut to "" as EVALB does; "|" is kept
    ("(S (NP-SBJ-1 (PRP He)) (VP=2 (VBD ran)) (ADVP-TMP (RB today)))",
     "(S (NP (PRP He)) (VP (VBD ran)) (ADVP (RB today)))", ("ok", 3, 3, 4, 4, 4, 0, 3)),
    ("(S (-X- (NN a)) (ADVP|PRT (RB b)))", "(S ( (NN a)) (ADVP (RB b)))",
     ("ok", 2, 2, 2, 3, 3, 0, 2)),
    # TOP is deleted; the PTB's unlabelled root is a bracket labelled ""
    ("(TOP (S (NP (NN a)) (VP (VB b))))", "(S (NP (NN a)) (VP (VB b)))",
     ("ok", 2, 2, 3, 3, 3, 0, 2)),
    ("( (S (NP (NN a)) (VP (VB b))) )", "(S (NP (NN a)) (VP (VB b)))", ("ok", 2, 2, 3, 4, 3, 0, 2)),
    # unary chains: n gold and m test copies of a bracket match min(n, m) times
    ("(S (NP (NP (NN a))) (VP (VB b)))", "(S (NP (NN a)) (VP (VP (VP (VB b)))))",
     ("ok", 2, 2, 3, 4, 5, 0, 2)),
    # a delete label on a phrase drops the bracket and keeps its words
    ("(S (. (NN a) (NN b)) (VP (VB c)))", "(S (NP (NN a) (NN b)) (VP (VB c)))",
     ("ok", 3, 3, 2, 2, 3, 0, 3)),
    ("(S (NN dog))", "(NN dog)", ("ok", 1, 1, 0, 1, 0, 0, 1)),
    ("(S (NP (DT a) (NN b)) (VP (VB c) (NP (NN d))))", "(S (DT a) (X (NN b) (VB c)) (NP (NN d)))",
     ("ok", 4, 4, 2, 4, 3, 1, 4)),
    # errors: a word missing, punctuation tagged otherwise in the test, a different word
    ("(S (NP (NN a)) (VP (VB b)))", "(S (NP (NN a)))", ("error", 2, 0, 0, 0, 0, 0, 0)),
    ("(S (NP (NN a)) (, ,) (VP (VB b)))", "(S (NP (NN a)) (NN ,) (VP (VB b)))",
     ("error", 3, 0, 0, 0, 0, 0, 0)),
    ("(S (NP (NN a)) (VP (VB b)))", "(S (NP (NN a)) (VP (VB c)))", ("error", 2, 0, 0, 0, 0, 0, 0)),
    ("(S (-NONE- *))", "(S (NN a))", ("error", 0, 0, 0, 0, 0, 0, 0)),
    # skipped: the test tree keeps no word
    ("(S (NP (NN a)) (. .))", "(S (, a) (. .))", ("skip", 2, 0, 0, 0, 0, 0, 0)),
    ("(S (. .))", "(S (. .))", ("skip", 1, 0, 0, 0, 0, 0, 0)),
]  # fmt: skip


@pytest.mark.parametrize("gold, test, expected", EDGES)
def test_edge_cases(gold, test, expected):
    scores = sentence_scores(T(gold), T(test))
    assert counts(scores) == expected
    assert (scores.message == "") == (expected[0] == "ok")
    assert counts(brute_force(T(gold), T(test))) == expected


def test_error_messages():
    assert "length mismatch" in sentence_scores(*map(T, LENGTH_ERROR)).message
    word = sentence_scores(T("(S (NN a) (NN b))"), T("(S (NN a) (NN c))"))
    assert "word mismatch at word 1" in word.message
    assert "no word" in sentence_scores(*map(T, SKIP)).message


# --- bad input ----------------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    tree = T(CAT_GOLD)
    with pytest.raises(ValueError, match="golds and tests"):
        evalb([tree, tree], [tree])
    with pytest.raises(ValueError, match=r"tests\[1\] must be a Tree"):
        evalb([tree, tree], [tree, CAT_GOLD])
    with pytest.raises(ValueError, match="golds must be a sequence"):
        evalb(tree, [tree])
    with pytest.raises(ValueError, match="tests must be a sequence"):
        evalb([tree], CAT_GOLD)
    with pytest.raises(ValueError, match="gold must be a Tree"):
        sentence_scores(CAT_GOLD, tree)
    with pytest.raises(ValueError, match="params"):
        sentence_scores(tree, tree, {"labeled": True})
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_length"):
            evalb([tree], [tree], max_length=bad)
    mixed = T("(S (NP (DT the) dog) (VBZ barks))")
    with pytest.raises(ValueError, match=r"golds\[0\] has the word 'dog'"):
        evalb([mixed], [tree])


def test_bad_params_name_the_attribute():
    with pytest.raises(ValueError, match="labeled"):
        Params(labeled=1)
    with pytest.raises(ValueError, match="delete_labels must be a collection"):
        Params(delete_labels="TOP")
    with pytest.raises(ValueError, match="delete_labels_for_length must hold only str"):
        Params(delete_labels_for_length={"-NONE-", 3})
    with pytest.raises(ValueError, match="equal_labels must hold pairs"):
        Params(equal_labels=[("ADVP", "PRT", "X")])
    with pytest.raises(ValueError, match="equal_words must hold pairs"):
        Params(equal_words=["ab"])
    assert Params(delete_labels=["TOP"], equal_labels=[["A", "B"]]).equal_labels == {("A", "B")}
    assert COLLINS == Params()


# --- real trees and perturbed parses ----------------------------------------------------------

PHRASE_LABELS = [""] + "NP VP S SBAR PP ADVP PRT ADJP NP-SBJ VP=2 S-TPC-1 TOP -X- ADVP|PRT".split()
PHRASE_LABELS += [".", "-NONE-", "SQ", "SINV"]
TAGS = ["NN", "NNS", "VB", "DT", "RP", "RB", "JJ", "IN", ",", "-NONE-"]
PUNCTUATION = {",", ":", "``", "''", "."}


def read_mrg(path: Path) -> list[Tree]:
    """The trees of a .mrg file, split at the balanced top-level brackets."""
    text, trees, depth, start = path.read_text(), [], 0, 0
    for match in re.finditer(r"[()]", text):
        if match.group() == "(":
            start = match.start() if depth == 0 else start
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                trees.append(T(text[start : match.end()]))
    return trees


@pytest.fixture(scope="module")
def ptb_golds() -> list[Tree]:
    """Gold trees from ptb_sample/wsj_01*.mrg small enough for EVALB's fixed buffers."""
    files = sorted(real_corpus("ptb_sample").glob("wsj_01*.mrg"))
    trees = [tree for path in files for tree in read_mrg(path)]
    fits = [t for t in trees if len(str(t)) < 3000 and sum(1 for _ in t.subtrees()) < 150]
    return fits[::3][:260]


# A mutable node is [label, word] (a preterminal) or [label, [nodes]] (a phrase).


def mutable(tree: Tree) -> list:
    if tree.is_preterminal():
        return [tree.label, tree.children[0]]
    return [tree.label, [mutable(child) for child in tree.children]]


def frozen(node: list) -> Tree | None:
    """The Tree of ``node``; phrases left without children disappear."""
    label, body = node
    if isinstance(body, str):
        return Tree(label, [body])
    children = [child for child in map(frozen, body) if child is not None]
    return Tree(label, children) if children else None


def slots(node: list) -> list[tuple[list, int]]:
    """``(siblings, index)`` of every node below ``node``, preorder."""
    found = []
    if isinstance(node[1], list):
        for i, child in enumerate(node[1]):
            found.append((node[1], i))
            found += slots(child)
    return found


def phrases(node: list) -> list[list]:
    return [node] + [s[i] for s, i in slots(node) if isinstance(s[i][1], list)]


def preterminal_slots(node: list) -> list[tuple[list, int]]:
    return [(s, i) for s, i in slots(node) if isinstance(s[i][1], str)]


def relabel(root, rng):
    rng.choice(phrases(root))[0] = rng.choice(PHRASE_LABELS)


def retag(root, rng):
    siblings, i = rng.choice(preterminal_slots(root))
    siblings[i][0] = rng.choice(TAGS)


def drop_bracket(root, rng):
    inner = [(s, i) for s, i in slots(root) if isinstance(s[i][1], list)]
    if inner:
        siblings, i = rng.choice(inner)
        siblings[i : i + 1] = siblings[i][1]


def add_bracket(root, rng):
    wide = [p for p in phrases(root) if len(p[1]) >= 2]
    if wide:
        group(rng.choice(wide)[1], rng)


def group(children: list, rng: random.Random) -> None:
    """Put a random run of ``children`` (if any) under a new phrase."""
    if not children:
        return
    i = rng.randrange(len(children))
    j = rng.randrange(i + 1, len(children) + 1)
    children[i:j] = [[rng.choice(PHRASE_LABELS), children[i:j]]]


def unary_chain(root, rng):
    siblings, i = rng.choice(slots(root))
    label = rng.choice([siblings[i][0], rng.choice(PHRASE_LABELS)])
    for _ in range(rng.randint(1, 3)):
        siblings[i] = [label, [siblings[i]]]


def flatten(root, rng):
    flat_children(rng.choice(phrases(root)))


def flat_children(phrase: list) -> None:
    """Replace the phrases under ``phrase`` by their children."""
    phrase[1] = [g for c in phrase[1] for g in (c[1] if isinstance(c[1], list) else [c])]


def rebracket(root, rng):
    """Flatten a phrase, then group a random run of its new children: brackets that cross."""
    parents = [p for p in phrases(root) if any(isinstance(c[1], list) for c in p[1])]
    if parents:
        phrase = rng.choice(parents)
        flat_children(phrase)
        group(phrase[1], rng)


def shift_boundary(root, rng):
    """Move the last child of a phrase into the phrase after it (an attachment error)."""
    pairs = [
        (left, right)
        for p in phrases(root)
        for left, right in pairwise(p[1])
        if isinstance(left[1], list) and len(left[1]) >= 2 and isinstance(right[1], list)
    ]
    if pairs:
        left, right = rng.choice(pairs)
        right[1].insert(0, left[1].pop())


def move_punctuation(root, rng):
    marks = [(s, i) for s, i in preterminal_slots(root) if s[i][0] in PUNCTUATION]
    if marks:
        siblings, i = rng.choice(marks)
        mark = siblings.pop(i)
        target = rng.choice(phrases(root))[1]
        target.insert(rng.choice([0, len(target)]), mark)


def drop_word(root, rng):
    siblings, i = rng.choice(preterminal_slots(root))
    del siblings[i]


def change_word(root, rng):
    siblings, i = rng.choice(preterminal_slots(root))
    siblings[i][1] = siblings[i][1].swapcase()


def strip_empty_elements(root):
    for siblings, i in reversed(preterminal_slots(root)):
        if siblings[i][0] == "-NONE-":
            del siblings[i]


# Each edit with its weight.
EDITS = {relabel: 3, retag: 2, drop_bracket: 3, add_bracket: 3, unary_chain: 2, rebracket: 1}
EDITS |= {shift_boundary: 3, flatten: 1, move_punctuation: 2, drop_word: 1, change_word: 1}


def perturbed(tree: Tree, rng: random.Random) -> Tree:
    """A parse of ``tree``'s words (mostly): a random few edits, most without empty elements."""
    root = mutable(tree)
    if rng.random() < 0.8:
        strip_empty_elements(root)
    for _ in range(rng.randint(0, 5)):
        if isinstance(root[1], list) and preterminal_slots(root):
            rng.choices(list(EDITS), weights=list(EDITS.values()))[0](root, rng)
    return frozen(root) or tree


@pytest.fixture(scope="module")
def ptb_pairs(ptb_golds) -> tuple[list[Tree], list[Tree]]:
    """Each gold tree twice, against two random parses; some roots relabelled TOP."""
    rng = random.Random(2015)
    golds = [g if rng.random() < 0.7 else Tree("TOP", g.children) for g in ptb_golds for _ in "ab"]
    return golds, [perturbed(gold, rng) for gold in golds]


def test_identical_trees_score_perfectly(ptb_golds):
    result = evalb(ptb_golds, ptb_golds)
    assert (result.errors, result.skipped) == ((), ())
    assert result.precision == result.recall == result.f1 == result.exact_match == 1.0
    assert result.tagging_accuracy == 1.0 and result.crossing == 0


def test_perturbed_pairs_cover_every_case(ptb_pairs):
    scores = [sentence_scores(g, t) for g, t in zip(*ptb_pairs, strict=True)]
    statuses = Counter(s.status for s in scores)
    assert statuses["ok"] > 300 and statuses["error"] > 20
    assert sum(s.exact_match for s in scores) > 20 and sum(s.crossing > 0 for s in scores) > 20
    assert min(s.length for s in scores) <= 40 < max(s.length for s in scores)


# --- brute-force reference (COLLINS.prm only) -------------------------------------------------

BF_DELETE = {"TOP", "-NONE-", ",", ":", "``", "''", "."}


def bf_pruned(tree: Tree) -> Tree | None:
    """``tree`` without deleted preterminals and the phrases left empty."""
    if tree.is_preterminal():
        return None if tree.label in BF_DELETE else tree
    children = [child for child in map(bf_pruned, tree.children) if child is not None]
    return Tree(tree.label, children) if children else None


def bf_brackets(tree: Tree | None) -> Counter:
    """Multiset of (category, set of word positions) of the phrases of a pruned tree."""
    if tree is None:
        return Counter()
    found, position = Counter(), iter(range(10**6))

    def visit(node: Tree) -> frozenset[int]:
        if node.is_preterminal():
            return frozenset([next(position)])
        cover = frozenset().union(*(visit(child) for child in node.children))
        category = re.match(r"[^-=]*", node.label).group()
        if category not in BF_DELETE:
            found[{"PRT": "ADVP"}.get(category, category), cover] += 1
        return cover

    visit(tree)
    return found


def brute_force(gold: Tree, test: Tree) -> SentenceScores:
    """EVALB's README rules with COLLINS.prm, done the slow way."""
    length = sum(tag != "-NONE-" for tag, _ in gold.preterminals())
    g, t = bf_pruned(gold), bf_pruned(test)
    g_tagged, t_tagged = (tree.preterminals() if tree else [] for tree in (g, t))
    if not t_tagged:
        return SentenceScores("skip", "", length)
    if [w for _, w in g_tagged] != [w for _, w in t_tagged]:
        return SentenceScores("error", "", length)
    gb, tb = bf_brackets(g), bf_brackets(t)
    crossing = sum(
        n
        for (_, cover), n in tb.items()
        if any(cover & other and not cover <= other and not other <= cover for _, other in gb)
    )
    return SentenceScores(
        "ok",
        "",
        length,
        len(g_tagged),
        (gb & tb).total(),
        gb.total(),
        tb.total(),
        crossing,
        sum(a == b for (a, _), (b, _) in zip(g_tagged, t_tagged, strict=True)),
    )


def test_same_as_brute_force_on_real_trees(ptb_pairs):
    golds, tests = ptb_pairs
    ours = [sentence_scores(g, t) for g, t in zip(golds, tests, strict=True)]
    for i, (gold, test) in enumerate(zip(golds, tests, strict=True)):
        assert counts(ours[i]) == counts(brute_force(gold, test)), (str(gold), str(test))
    for max_length in (None, 40):
        result = evalb(golds, tests, max_length=max_length)
        kept = [s for s in ours if max_length is None or s.length <= max_length]
        valid = [s for s in kept if s.status == "ok"]
        assert result.sentences == len(kept) and result.valid_sentences == len(valid)
        assert result.matched == sum(s.matched for s in valid)
        assert result.gold_brackets == sum(s.gold_brackets for s in valid)
        assert result.test_brackets == sum(s.test_brackets for s in valid)
        assert result.exact_matches == sum(s.exact_match for s in valid)


# --- the original C EVALB -------------------------------------------------------------------

STATUS = {"ok": 0, "error": 1, "skip": 2}
OTHER_PARAMS = [
    Params(labeled=False),
    Params(
        delete_labels={"TOP", "-NONE-", ",", ".", "SINV"},
        delete_labels_for_length={"-NONE-", ","},
        equal_labels={("ADVP", "PRT"), ("S", "SBAR"), ("SBAR", "VP"), ("SINV", "SQ")},
        equal_words={("the", "THE"), ("The", "tHE"), ("a", "A")},
    ),
]


def evalb_source() -> Path | None:
    """``evalb.c``: ``$HYBRID_EVALB_C``, else the one in an installed allennlp wheel."""
    if os.environ.get("HYBRID_EVALB_C"):
        return Path(os.environ["HYBRID_EVALB_C"])
    try:
        wheel = importlib.metadata.distribution("allennlp")
    except importlib.metadata.PackageNotFoundError:
        return None
    source = Path(str(wheel.locate_file("allennlp/tools/EVALB/evalb.c")))
    return source if source.is_file() else None


@pytest.fixture(scope="module")
def c_evalb(tmp_path_factory) -> Path:
    """The C EVALB, compiled from its source."""
    source = evalb_source()
    if source is None:
        pytest.skip(
            "the C EVALB oracle needs evalb.c: set HYBRID_EVALB_C, or "
            "`pip install --no-deps allennlp==2.10.1` (its wheel ships EVALB's source)"
        )
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the EVALB oracle")
    binary = tmp_path_factory.mktemp("evalb") / "evalb"
    command = [compiler, "-std=gnu89", "-w", "-O1", "-o", str(binary), str(source)]
    subprocess.run(command, check=True, capture_output=True)
    return binary


def parameter_file(params: Params, cutoff: int) -> str:
    lines = [f"LABELED {int(params.labeled)}", f"CUTOFF_LEN {cutoff}", "MAX_ERROR 1000000"]
    lines += [f"DELETE_LABEL {label}" for label in sorted(params.delete_labels)]
    lines += [
        f"DELETE_LABEL_FOR_LENGTH {label}" for label in sorted(params.delete_labels_for_length)
    ]
    lines += [f"EQ_LABEL {a} {b}" for a, b in sorted(params.equal_labels)]
    lines += [f"EQ_WORD {a} {b}" for a, b in sorted(params.equal_words)]
    return "\n".join(lines) + "\n"


def run_c_evalb(binary, folder, golds, tests, params, cutoff) -> tuple[list[tuple], dict]:
    """EVALB's per-sentence integers and its two summaries (name -> value as printed)."""
    for name, trees in (("gold", golds), ("test", tests)):
        (folder / name).write_text("".join(f"{tree}\n" for tree in trees))
    (folder / "prm").write_text(parameter_file(params, cutoff))
    files = [str(folder / name) for name in ("prm", "gold", "test")]
    command = [str(binary), "-e", "1000000", "-p", *files]
    lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
    bars = [i for i, line in enumerate(lines) if line.startswith("=====")]
    rows = [
        tuple(int(v) for v in (f[1], f[2], f[5], f[6], f[7], f[8], f[9], f[10]))
        for f in (line.split() for line in lines[bars[0] + 1 : bars[1]])
    ]
    summaries, section = {}, None
    for line in lines[bars[1] :]:
        if line.startswith("-- "):
            section = summaries.setdefault(line.strip("- "), {})
        elif section is not None and "=" in line:
            name, value = line.split("=")
            section[" ".join(name.split())] = value.strip()
    return rows, summaries


def assert_same_summary(printed: dict[str, str], result) -> None:
    counts_ = {
        "Number of sentence": result.sentences,
        "Number of Error sentence": len(result.errors),
        "Number of Skip sentence": len(result.skipped),
        "Number of Valid sentence": result.valid_sentences,
    }
    for name, count in counts_.items():
        assert int(printed[name]) == count, name
    rates = {
        "Bracketing Recall": 100 * result.recall,
        "Bracketing Precision": 100 * result.precision,
        "Bracketing FMeasure": 100 * result.f1,
        "Complete match": 100 * result.exact_match,
        "Average crossing": result.average_crossing,
        "No crossing": 100 * result.no_crossing,
        "2 or less crossing": 100 * result.two_or_less_crossing,
        "Tagging accuracy": 100 * result.tagging_accuracy,
    }
    for name, rate in rates.items():
        if "nan" in printed[name]:  # EVALB's F-measure when P + R = 0
            assert rate == 0, name
        else:
            assert abs(float(printed[name]) - rate) <= 0.005 + 1e-9, name


def assert_same_as_c(binary, folder, golds, tests, params, cutoff) -> None:
    rows, summaries = run_c_evalb(binary, folder, golds, tests, params, cutoff)
    assert len(rows) == len(golds)
    for row, gold, test in zip(rows, golds, tests, strict=True):
        s = sentence_scores(gold, test, params)
        ours = (
            s.length,
            STATUS[s.status],
            s.matched,
            s.gold_brackets,
            s.test_brackets,
            s.crossing,
            s.words,
            s.correct_tags,
        )
        assert ours == row, (str(gold), str(test))
    assert_same_summary(summaries["All"], evalb(golds, tests, params))
    assert_same_summary(summaries[f"len<={cutoff}"], evalb(golds, tests, params, max_length=cutoff))


def test_same_as_c_evalb_on_real_trees(c_evalb, tmp_path, ptb_pairs):
    assert_same_as_c(c_evalb, tmp_path, *ptb_pairs, COLLINS, 40)


def test_same_as_c_evalb_on_edge_cases(c_evalb, tmp_path):
    pairs = [edge[:2] for edge in EDGES] + HAND_PAIRS
    golds, tests = [T(g) for g, _ in pairs], [T(t) for _, t in pairs]
    assert_same_as_c(c_evalb, tmp_path, golds, tests, COLLINS, 3)


@pytest.mark.parametrize("params", OTHER_PARAMS, ids=["unlabeled", "custom"])
def test_same_as_c_evalb_with_other_parameters(c_evalb, tmp_path, ptb_pairs, params):
    rng = random.Random(1997)
    golds, tests = ptb_pairs
    parses = [perturbed(test, rng) for test in tests[:200]]
    assert_same_as_c(c_evalb, tmp_path, golds[:200], parses, params, 20)
