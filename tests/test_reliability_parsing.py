"""Trees of any depth, and bad input to trees and their linearization as a named ValueError.

Issue 21: trees deeper than Python's recursion limit, non-string tokens, words with brackets
(which the bracket notation cannot hold: refused, never written as a different tree), a bare
``(`` in a decoder vocabulary, and trees pickled in another process. Oracles: the text the
tree was read from, tokens and trees built by construction, and a character-level
definition of a word.
"""

from __future__ import annotations

import pickle
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hybrid.parsing.constraint import BracketConstraint
from hybrid.parsing.evalb import evalb, sentence_scores
from hybrid.parsing.linearize import WORD, delinearize, linearize, well_formed
from hybrid.parsing.tree import Tree
from hybrid.parsing.treebank import from_networkx, normalize, read_trees, to_networkx

# ---------------------------------------------------------------------------------------------
# Case 7: trees deeper than the recursion limit
# ---------------------------------------------------------------------------------------------

DEPTH = max(5000, 2 * sys.getrecursionlimit())


def chain_text(depth: int, word: str = "a") -> str:
    """``(S (S ... (X word) ...))``: ``depth`` phrases over one preterminal."""
    return "(S " * depth + f"(X {word})" + ")" * depth


def chain(depth: int, word: str = "a") -> Tree:
    """The tree of `chain_text`, built bottom up."""
    tree = Tree("X", [word])
    for _ in range(depth):
        tree = Tree("S", [tree])
    return tree


def test_deep_trees_read_print_and_compare():
    text = chain_text(DEPTH)
    tree = Tree.from_string(text)
    assert str(tree) == text
    assert tree == chain(DEPTH)
    assert tree != chain(DEPTH, word="b")
    assert tree.height() == DEPTH + 1
    assert tree.preterminals() == [("X", "a")]
    assert sum(1 for _ in tree.subtrees()) == DEPTH + 1
    assert tree.with_tags(["Y"]) == Tree.from_string(chain_text(DEPTH).replace("(X", "(Y"))
    assert read_trees(f"{text}\n{text}") == [tree, tree]
    assert pickle.loads(pickle.dumps(tree)) == tree


def test_deep_trees_linearize_and_delinearize():
    tree = chain(DEPTH)
    tokens = linearize(tree)
    assert tokens == ["(S"] * DEPTH + [WORD] + [")S"] * DEPTH
    assert well_formed(tokens, 1, max_depth=DEPTH)
    assert delinearize(tokens, ["a"], tags=["X"], max_depth=DEPTH) == tree


# ---------------------------------------------------------------------------------------------
# Case 8: tokens, words and tags that are not strings
# ---------------------------------------------------------------------------------------------

TOKENS = ["(S", "(NP", WORD, ")NP", WORD, ")S"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: delinearize(["(S", None, ")S"], ["a"]), r"tokens\[1\] must be a string"),
        (lambda: delinearize([*TOKENS[:5], 7], ["a", "b"]), r"tokens\[5\] must be a string"),
        (lambda: delinearize(" ".join(TOKENS), ["a", "b"]), "tokens must be a sequence of str"),
        (lambda: delinearize(TOKENS, ["a", 2]), r"words\[1\] must be a string"),
        (lambda: delinearize(TOKENS, "a b"), "words must be a sequence of str"),
        (lambda: delinearize(TOKENS, ["a", "b"], tags=["DT", None]), r"tags\[1\] must be"),
        (lambda: well_formed([*TOKENS[:2], 3], 1), r"tokens\[2\] must be a string"),
    ],
)
def test_non_string_tokens_words_and_tags_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# Case 9: brackets and whitespace in words and labels
# ---------------------------------------------------------------------------------------------


def holdable(text: str) -> bool:
    """Whether the bracket notation can hold ``text`` as a word or label: non-empty, no
    whitespace, no bracket."""
    return bool(text) and not any(c.isspace() or c in "()" for c in text)


PIECES = st.text(alphabet="ab()-LRB \t\u00a0", max_size=4)


@given(words=st.lists(PIECES, min_size=1, max_size=4), labels=st.lists(PIECES, min_size=2))
def test_words_and_labels_round_trip_or_are_refused(words, labels):
    tag, phrase = labels[0], labels[1]
    try:
        tree = Tree(phrase or "S", [Tree(tag or "NN", [word]) for word in words])
    except ValueError as error:
        assert not all(map(holdable, [*words, tag or "NN", phrase or "S"]))
        assert "-LRB-" in str(error)
        return
    assert all(map(holdable, [*words, tag or "NN", phrase or "S"]))
    assert Tree.from_string(str(tree)) == tree


@pytest.mark.parametrize("word", ["(", ")", "f(x)", "a b", ""])
def test_a_word_the_brackets_cannot_hold_is_refused_with_its_position(word):
    with pytest.raises(ValueError, match=r"children\[1\] of \(NP \.\.\.\) .*-LRB- and -RRB-"):
        Tree("NP", [Tree("DT", ["the"]), word])
    with pytest.raises(ValueError, match=r"words\[1\] must be .*-LRB- and -RRB-"):
        delinearize(TOKENS, ["the", word])


def test_a_bare_opening_bracket_in_a_decoder_vocabulary_is_refused():
    with pytest.raises(ValueError, match=r"vocab\[1\] is '\(': an opening token needs a label"):
        BracketConstraint(["</s>", "(", ")", WORD], torch.tensor([1]))


# ---------------------------------------------------------------------------------------------
# Trees pickled by another process (str hashes differ between processes)
# ---------------------------------------------------------------------------------------------


def test_a_tree_pickled_by_another_process_equals_the_same_tree_here():
    text = "(S (NP (DT the) (NN dog)) (VP (VBZ barks)))"
    elsewhere = Tree.from_string(text)
    elsewhere._hash ^= 1  # the hash another process's str hashes gave it
    restored = pickle.loads(pickle.dumps(elsewhere))
    tree = Tree.from_string(text)
    assert restored == tree
    assert restored in {tree}


# ---------------------------------------------------------------------------------------------
# Case 7, continued: normalisation, graphs and EVALB on trees deeper than the recursion limit
# ---------------------------------------------------------------------------------------------


def spine(labels: list[str], bottom: Tree) -> Tree:
    """``bottom`` under one unary phrase per label, ``labels[0]`` outermost."""
    tree = bottom
    for label in reversed(labels):
        tree = Tree(label, [tree])
    return tree


LABELS = ["S-SBJ", "VP=2"] * (DEPTH // 2)  # no two neighbours of one basic category
BASIC = ["S", "VP"] * (DEPTH // 2)
EMPTY_SPINE = spine(["SBAR"] * DEPTH, Tree("-NONE-", ["*T*-1"]))  # only an empty element


def test_deep_trees_normalize():
    noun_phrase = Tree("NP", [Tree("X", ["a"])])
    tagged = spine(LABELS, Tree("NP-1", [Tree("X", ["a"])]))
    assert normalize(tagged, remove_empty=False, collapse_root=False) == spine(BASIC, noun_phrase)
    with_empty = spine(BASIC, Tree("NP", [Tree("X", ["a"]), EMPTY_SPINE]))
    assert normalize(with_empty, collapse_root=False) == spine(BASIC, noun_phrase)
    assert normalize(EMPTY_SPINE) is None
    # Every S over an S is an A-over-A unary: the chain merges into its top node.
    assert normalize(chain(DEPTH)) == Tree("S", [Tree("X", ["a"])])
    rooted = Tree("", [spine(LABELS, Tree("NP", [Tree("X", ["a"]), EMPTY_SPINE]))])
    assert normalize(rooted) == spine(BASIC, noun_phrase)


def test_deep_trees_to_and_from_networkx():
    tree = chain(DEPTH)
    graph = to_networkx(tree)
    # Preorder numbers: the phrases 0 .. DEPTH - 1, the preterminal DEPTH, its word DEPTH + 1.
    assert graph.number_of_nodes() == DEPTH + 2
    assert graph.nodes[0] == {"label": "S"}
    assert graph.nodes[DEPTH] == {"label": "X"} and graph.nodes[DEPTH + 1] == {"word": "a"}
    assert all(graph.has_edge(n, n + 1) for n in range(DEPTH + 1))
    assert from_networkx(graph) == tree
    graph.edges[DEPTH, DEPTH + 1]["order"] = 1
    with pytest.raises(ValueError, match=rf"edges out of node {DEPTH} must have order 0, 1"):
        from_networkx(graph)


def test_deep_trees_evalb():
    words = [Tree("X", ["a"]), Tree(".", ["."])]  # the period is deleted, yet counts in length
    gold = spine(BASIC, Tree("NP", words))
    test = spine(["FRAG", *BASIC[1:]], Tree("NP", words))  # the top bracket mislabelled
    scores = sentence_scores(gold, test)
    assert (scores.status, scores.words, scores.length) == ("ok", 1, 2)
    assert scores.gold_brackets == scores.test_brackets == DEPTH + 1
    assert (scores.matched, scores.crossing, scores.correct_tags) == (DEPTH, 0, 1)
    assert evalb([gold], [gold]).exact_matches == 1
    with pytest.raises(ValueError, match=r"tests\[0\] has the word 'b' beside other children"):
        evalb([gold], [spine(BASIC, Tree("NP", [*words, "b"]))])
