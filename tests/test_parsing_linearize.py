"""Linearization: round trips on random trees, well-formedness against an independent parser,
and each repair rule of `delinearize` on hand-derived cases."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybrid.parsing.linearize import delinearize, linearize, well_formed
from hybrid.parsing.tree import Tree

LABELS = ["S", "NP", "VP", "PP"]
TAGS = ["DT", "NN", "VBZ", "IN"]


@st.composite
def trees(draw, depth=3):
    """Random trees whose words all sit under preterminals (as normalised PTB trees)."""
    counter = iter(range(10_000))

    def build(level):
        if level == 0 or draw(st.booleans()):
            return Tree(draw(st.sampled_from(TAGS)), [f"w{next(counter)}"])
        children = [build(level - 1) for _ in range(draw(st.integers(1, 3)))]
        return Tree(draw(st.sampled_from(LABELS)), children)

    children = [build(depth - 1) for _ in range(draw(st.integers(1, 3)))]
    return Tree(draw(st.sampled_from(LABELS)), children)


def parses(tokens, num_words):
    """Independent check: a recursive descent parser of one bracketed tree."""

    def phrase(at):
        if at >= len(tokens) or not tokens[at].startswith("(") or len(tokens[at]) < 2:
            return None
        label, at, words, content = tokens[at][1:], at + 1, 0, False
        while at < len(tokens) and tokens[at] != ")" and not tokens[at].startswith(")"):
            if tokens[at] == "XX":
                at, words, content = at + 1, words + 1, True
                continue
            inner = phrase(at)
            if inner is None:
                return None
            at, words, content = inner[0], words + inner[1], True
        if at >= len(tokens) or not content or tokens[at] not in (")", ")" + label):
            return None
        return at + 1, words

    result = phrase(0)
    return result is not None and result == (len(tokens), num_words)


@given(trees(), st.booleans())
def test_round_trip_of_random_trees(tree, labelled):
    tokens = linearize(tree, labelled_closing=labelled)
    words, tags = tree.leaves(), [tag for tag, _ in tree.preterminals()]
    assert well_formed(tokens, len(words))
    assert delinearize(tokens, words, tags) == tree
    assert tokens.count("XX") == len(words)


def test_linearize_example():
    tree = Tree.from_string("(S (NP (DT the) (NN dog)) (VP (VBZ barks)))")
    assert linearize(tree) == "(S (NP XX XX )NP (VP XX )VP )S".split()
    assert linearize(tree, labelled_closing=False) == "(S (NP XX XX ) (VP XX ) )".split()


def test_well_formed_equals_an_independent_parser_on_every_short_sequence():
    vocabulary = ["(S", "(NP", ")S", ")NP", ")", "XX"]
    for length in range(1, 7):
        for tokens in itertools.product(vocabulary, repeat=length):
            for num_words in (1, 2):
                assert well_formed(tokens, num_words) == parses(tokens, num_words), tokens


@given(st.lists(st.sampled_from(["(S", "(NP", ")S", ")NP", ")", "XX", "</s>"]), max_size=12))
def test_delinearize_always_gives_a_tree_over_the_words(tokens):
    words = ["a", "b", "c"]
    tree = delinearize(tokens, words)
    assert tree.leaves() == words
    if well_formed(tokens, len(words)):  # nothing to repair: the same tree comes back
        unlabelled = [")" if t.startswith(")") else t for t in tokens]
        assert linearize(tree, labelled_closing=False) == unlabelled


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        # 1. specials skipped
        ("<s> (S XX XX )S </s>", "(S (XX a) (XX b))"),
        # 2. a stray closing bracket is dropped; a mislabelled one closes the innermost phrase
        (")NP (S (NP XX )VP XX )S", "(S (NP (XX a)) (XX b))"),
        # 3. an XX beyond the words is dropped, and an empty phrase with it
        ("(S (NP XX XX )NP (VP XX )VP )S", "(S (NP (XX a) (XX b)))"),
        # 4. missing words go to the root; open phrases are closed
        ("(S (NP XX", "(S (NP (XX a)) (XX b))"),
        # 5. several top-level pieces get one root
        ("(NP XX )NP (VP XX )VP", "(S (NP (XX a)) (VP (XX b)))"),
        ("XX XX", "(S (XX a) (XX b))"),
        ("", "(S (XX a) (XX b))"),
    ],
)
def test_repairs(tokens, expected):
    assert str(delinearize(tokens.split(), ["a", "b"])) == expected


def test_brackets_beyond_the_depth_limit_are_dropped_with_their_closings():
    tokens = "(S (NP (NP (NP XX )NP XX )NP )NP (VP XX )VP )S".split()
    tree = delinearize(tokens, ["a", "b", "c"], max_depth=2)
    assert str(tree) == "(S (NP (XX a) (XX b)) (VP (XX c)))"
    deep = ["(S"] * 5000 + ["XX"] + [")S"] * 5000
    assert delinearize(deep, ["a"]).height() == 51  # 50 phrases over the preterminal
    assert not well_formed(deep, 1)  # it needed repair
    assert well_formed(deep[4950:5051], 1) and not well_formed(deep[4949:5052], 1)


def test_bad_input():
    with pytest.raises(ValueError, match="tags must have one tag per word"):
        delinearize(["XX"], ["a"], ["DT", "NN"])
    with pytest.raises(ValueError, match="words must hold at least one word"):
        delinearize(["(S", ")S"], [])
    with pytest.raises(ValueError, match="empty label"):
        linearize(Tree("", [Tree("S", [Tree("NN", ["a"])])]))
    with pytest.raises(ValueError, match="max_depth must be a positive integer"):
        delinearize(["XX"], ["a"], max_depth=0)
    with pytest.raises(ValueError, match="tree must be a Tree"):
        linearize("(S (NN a))")


def test_round_trip_of_every_normalised_treebank_tree():
    from realdata import real_corpus

    from hybrid.parsing.treebank import normalize, ptb_split

    trees = [normalize(t) for split in ptb_split(real_corpus("ptb_sample")) for t in split]
    assert len(trees) == 3501 and all(t is not None for t in trees)
    for tree in trees:
        words, tags = tree.leaves(), [tag for tag, _ in tree.preterminals()]
        for labelled in (True, False):
            tokens = linearize(tree, labelled_closing=labelled)
            assert well_formed(tokens, len(words))
            assert delinearize(tokens, words, tags) == tree
