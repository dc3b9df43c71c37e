"""Constituency trees: a label over an ordered list of children, subtrees or words.

`Tree` is immutable and compares by structure. A preterminal is a tree whose only child is a
word (``(NN dog)``); words are plain ``str`` leaves. Trees read and write the one-line
bracket notation of the Penn Treebank: ``(S (NP (DT the) (NN dog)) (VP (VBZ barks)))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

__all__ = ["Tree"]

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_WORD = re.compile(r"[^\s()]+")


class Tree:
    """A labelled node over children that are subtrees or words.

    Attributes:
        label: The node's label (``"NP-SBJ"``, ``"NN"``, ``""`` for the PTB's unlabelled
            outer root).
        children: The subtrees and words, left to right.
    """

    __slots__ = ("label", "children", "_hash")

    def __init__(self, label: str, children: Sequence[Tree | str]):
        """Build a node.

        Raises:
            ValueError: ``label`` not a str (or containing whitespace or brackets), no
                children, a child that is neither a `Tree` nor a non-empty word without
                whitespace or brackets, or an empty label before a word (``( a b)`` would read
                back as ``(a b)``).
        """
        if not isinstance(label, str) or (label and _WORD.fullmatch(label) is None):
            raise ValueError(f"label must be a str without spaces or brackets, got {label!r}")
        children = tuple(children)
        if not children:
            raise ValueError(f"a tree needs at least one child; ({label}) has none")
        for child in children:
            if isinstance(child, Tree):
                continue
            if not isinstance(child, str) or _WORD.fullmatch(child) is None:
                raise ValueError(f"children must be Trees or words, got {child!r} under {label}")
        if not label and isinstance(children[0], str):
            raise ValueError(f"an unlabelled node cannot start with a word, got {children[0]!r}")
        self.label = label
        self.children = children
        self._hash = hash((label, children))

    # -- structure -------------------------------------------------------------------------

    def is_preterminal(self) -> bool:
        """Whether this node is a tag over one word."""
        return len(self.children) == 1 and isinstance(self.children[0], str)

    def leaves(self) -> list[str]:
        """The words, left to right."""
        return [word for _, word in self.preterminals()]

    def preterminals(self) -> list[tuple[str, str]]:
        """``(tag, word)`` of every word, left to right (a word directly under a phrase has
        that phrase's label as its tag)."""
        found = []
        for child in self.children:
            if isinstance(child, Tree):
                found += child.preterminals()
            else:
                found.append((self.label, child))
        return found

    def with_tags(self, tags: Sequence[str]) -> Tree:
        """This tree with its preterminals relabelled ``tags``, left to right (e.g. gold POS
        tags on a parser's ``XX`` preterminals, as EVALB deletes punctuation by tag).

        Raises:
            ValueError: Not one tag per word, or a word directly under a phrase.
        """
        tags = list(tags)
        if len(tags) != len(self.leaves()):
            raise ValueError(
                f"tags must have one tag per word ({len(self.leaves())}), got {len(tags)}"
            )
        return self._retag(iter(tags))

    def _retag(self, tags: Iterator[str]) -> Tree:
        if self.is_preterminal():
            return Tree(next(tags), self.children)
        if any(isinstance(child, str) for child in self.children):
            raise ValueError(f"a word sits directly under ({self.label}); it has no tag to replace")
        return Tree(self.label, [child._retag(tags) for child in self.children])

    def subtrees(self) -> Iterator[Tree]:
        """This node and every node below it, in preorder."""
        yield self
        for child in self.children:
            if isinstance(child, Tree):
                yield from child.subtrees()

    def height(self) -> int:
        """1 for a preterminal, else one more than the highest child."""
        return 1 + max((c.height() for c in self.children if isinstance(c, Tree)), default=0)

    # -- brackets --------------------------------------------------------------------------

    def __str__(self) -> str:
        """One-line PTB brackets: ``(S (NP (DT the) (NN dog)) (VP (VBZ barks)))``."""
        inside = " ".join(str(child) for child in self.children)
        return f"({self.label} {inside})" if self.label else f"( {inside})"

    @classmethod
    def from_string(cls, text: str) -> Tree:
        """Read one bracketed tree (any whitespace, labels may be empty: ``( (S ...) )``).

        Raises:
            ValueError: Unbalanced brackets, text outside the tree, a node without children,
                or more than one tree.
        """
        tokens = _TOKEN.findall(text)
        tree, end = cls._read(tokens, 0, text)
        if end != len(tokens):
            raise ValueError(f"text after the end of the tree: {' '.join(tokens[end:])[:60]!r}")
        return tree

    @classmethod
    def _read(cls, tokens: list[str], at: int, text: str) -> tuple[Tree, int]:
        """The tree starting at ``tokens[at]`` (an opening bracket) and the index after it."""
        if at >= len(tokens) or tokens[at] != "(":
            raise ValueError(f"a tree must start with '(': {text.strip()[:60]!r}")
        at += 1
        label = ""
        if at < len(tokens) and tokens[at] not in "()":
            label, at = tokens[at], at + 1
        children: list[Tree | str] = []
        while at < len(tokens) and tokens[at] != ")":
            if tokens[at] == "(":
                child, at = cls._read(tokens, at, text)
                children.append(child)
            else:
                children.append(tokens[at])
                at += 1
        if at >= len(tokens):
            raise ValueError(f"unbalanced brackets: a '(' is never closed in {text.strip()[:60]!r}")
        if not children:
            raise ValueError(f"node ({label}) has no children in {text.strip()[:60]!r}")
        return cls(label, children), at + 1

    # -- value semantics -------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return self._hash == other._hash and (self.label, self.children) == (
            other.label,
            other.children,
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Tree.from_string({str(self)!r})"
