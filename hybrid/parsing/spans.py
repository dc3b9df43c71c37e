"""Trees as the labelled spans of a binary tree: what a chart parser scores and CKY returns.

A tree over ``n`` words becomes ``2n - 1`` spans ``(i, j, label)`` over the fenceposts
``0..n`` (``0 <= i < j <= n``), one for each node of a binary tree:

- unary chains collapse into one joint label, top first, joined by a space: the span of
  ``(S (VP (VBD came) (ADVP ...)))`` carries ``"S VP"``;
- the span of a word carries the chain of phrases above its preterminal (``"NP"`` for
  ``(NP (NNP John))``), or `EMPTY` when its preterminal sits under a branching phrase;
- a phrase of ``k > 2`` children is binarized to the right: the spans from its second,
  third, ... child to its end carry `EMPTY`, the label of no phrase.

POS tags are not span labels: `spans_tree` takes them as an argument (or writes ``XX``).
The round trip ``spans_tree(tree_spans(tree), words, tags)`` gives ``tree`` back for every
tree whose words all sit under preterminals (a word directly under a phrase comes back
under a preterminal of its own). A chart parser whose scores give `EMPTY` the score 0 gives
every binarization of an n-ary tree the same score, so the choice of the right one loses
nothing. Both functions walk with explicit stacks, so trees of any depth work.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from .linearize import WORD
from .tree import Tree

__all__ = ["EMPTY", "spans_tree", "tree_spans"]

#: The label of a span that is no phrase. No tree label holds a bracket, so no chain of
#: labels reads ``()``.
EMPTY = "()"

_JOIN = " "  # between the labels of a unary chain; no tree label holds whitespace


def tree_spans(tree: Tree) -> list[tuple[int, int, str]]:
    """The labelled spans of ``tree``, binarized, in preorder (by start, then by decreasing
    end), as the module docstring says.

    Raises:
        ValueError: ``tree`` is not a `Tree`.
    """
    if not isinstance(tree, Tree):
        raise ValueError(f"tree must be a Tree, got {type(tree).__name__}")
    nodes = list(tree.subtrees())
    words: dict[int, int] = {}  # id(node) -> number of words below it
    for node in reversed(nodes):  # children before their parents
        words[id(node)] = sum(1 if isinstance(c, str) else words[id(c)] for c in node.children)
    spans: list[tuple[int, int, str]] = []
    stack: list[tuple[Tree | str, int]] = [(tree, 0)]  # (node, its first word)
    while stack:
        node, start = stack.pop()
        if isinstance(node, str):  # a word directly under a phrase
            spans.append((start, start + 1, EMPTY))
            continue
        chain = []
        while len(node.children) == 1 and not node.is_preterminal():
            chain.append(node.label)
            node = node.children[0]
        if node.is_preterminal():
            spans.append((start, start + 1, _JOIN.join(chain) if chain else EMPTY))
            continue
        chain.append(node.label)
        end = start + words[id(node)]
        spans.append((start, end, _JOIN.join(chain)))
        starts = [start]
        for child in node.children[:-1]:
            starts.append(starts[-1] + (1 if isinstance(child, str) else words[id(child)]))
        spans.extend((first, end, EMPTY) for first in starts[1:-1])
        stack.extend(zip(reversed(node.children), reversed(starts), strict=True))
    return sorted(spans, key=lambda span: (span[0], -span[1]))


def spans_tree(
    spans: Sequence[tuple[int, int, str]],
    words: Sequence[str],
    tags: Sequence[str] | None = None,
) -> Tree:
    """The tree of the labelled spans of a binary tree over ``words`` (inverse of `tree_spans`).

    `EMPTY` spans dissolve into their parents; a joint label ``"S VP"`` becomes the unary
    chain ``(S (VP ...))``; every word goes under a preterminal labelled by ``tags`` (``XX``
    without them).

    Args:
        spans: ``2n - 1`` triples ``(i, j, label)`` forming a binary tree over ``[0, n)``,
            in any order.
        words: The ``n`` words.
        tags: One POS tag per word, or ``None``.

    Raises:
        ValueError: ``spans`` that are not a binary tree over the words, an `EMPTY` label on
            the span of all words of a sentence of two or more, or ``tags`` of another
            length than ``words``.
    """
    words = list(words)
    if not words:
        raise ValueError("words must hold at least one word")
    tags = [WORD] * len(words) if tags is None else list(tags)
    if len(tags) != len(words):
        raise ValueError(f"tags must have one tag per word ({len(words)}), got {len(tags)}")
    ordered = sorted(map(_span, spans), key=_preorder)
    if len(ordered) != 2 * len(words) - 1 or not ordered or ordered[0][:2] != (0, len(words)):
        raise ValueError(
            f"spans must be the {2 * len(words) - 1} spans of a binary tree over "
            f"{len(words)} words, the first [0, {len(words)}), got {len(ordered)}"
        )
    if len(words) > 1 and ordered[0][2] == EMPTY:
        raise ValueError(f"the span of all {len(words)} words needs a label, got {EMPTY!r}")
    # an open span: [start, end, next word it expects, label, trees so far, spans in it]
    stack: list[list] = []
    built: list[Tree] = []
    for i, j, label in ordered:
        while stack and stack[-1][2] == stack[-1][1]:
            _close(stack, built)
        if stack:
            first, end, expected = stack[-1][:3]
            if i != expected or j > end or j - i == end - first:
                raise ValueError(f"spans must nest as a binary tree; [{i}, {j}) does not fit")
            stack[-1][2] = j
            stack[-1][5] += 1
        elif built:
            raise ValueError(f"spans must form one binary tree; [{i}, {j}) lies outside it")
        if j - i == 1:
            leaf = _chain(label, [Tree(tags[i], [words[i]])])
            (stack[-1][4] if stack else built).extend(leaf)
        else:
            stack.append([i, j, i, label, [], 0])
    while stack:
        _close(stack, built)
    return built[0]


def _span(span: tuple[int, int, str]) -> tuple[int, int, str]:
    """``span`` with integer fenceposts (``int``, NumPy or 0-d tensor integers).

    Raises:
        ValueError: Not a triple, or a fencepost that is not an integer (``1.9``, ``True``).
    """
    try:
        i, j, label = span
        if isinstance(i, bool) or isinstance(j, bool):
            raise TypeError
        return operator.index(i), operator.index(j), label
    except (TypeError, ValueError):
        raise ValueError(f"spans must be (i, j, label) triples of integers, got {span!r}") from None


def _preorder(span: tuple[int, int, str]) -> tuple[int, int]:
    return span[0], -span[1]


def _close(stack: list[list], built: list[Tree]) -> None:
    """Finish the innermost open span: its children go to its parent (or to ``built``)."""
    first, end, reached, label, children, count = stack.pop()
    if reached != end or count != 2:
        raise ValueError(f"spans must nest as a binary tree; [{first}, {end}) is not split in two")
    (stack[-1][4] if stack else built).extend(_chain(label, children))


def _chain(label: str, children: list[Tree]) -> list[Tree]:
    """``children`` under the unary chain ``label`` (top first), or as they are for
    `EMPTY`."""
    if label == EMPTY:
        return children
    for name in reversed(label.split(_JOIN)):
        children = [Tree(name, children)]
    return children
