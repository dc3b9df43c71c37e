"""Constituency trees: a label over an ordered list of children, subtrees or words.

`Tree` is immutable and compares by structure. A preterminal is a tree whose only child is a
word (``(NN dog)``); words are plain ``str`` leaves. Trees read and write the one-line
bracket notation of the Penn Treebank: ``(S (NP (DT the) (NN dog)) (VP (VBZ barks)))``.

Words and labels hold no whitespace and no brackets, so that the notation reads back as the
same tree; as in the Penn Treebank, a bracket in the text is the word ``-LRB-`` (``(``) or
``-RRB-`` (``)``), and a `Tree` refuses a literal one. Every method walks the tree with an
explicit stack, so trees of any depth work, whatever Python's recursion limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

__all__ = ["Tree", "is_word"]

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_WORD = re.compile(r"[^\s()]+")


def is_word(word: object) -> bool:
    """Whether ``word`` can be a leaf of a `Tree`: a non-empty ``str`` without whitespace or
    brackets."""
    return isinstance(word, str) and _WORD.fullmatch(word) is not None


class Tree:
    """A labelled node over children that are subtrees or words.

    Attributes:
        label: The node's label (``"NP-SBJ"``, ``"NN"``, ``""`` for the PTB's unlabelled
            outer root).
        children: The subtrees and words, left to right.
    """

    __slots__ = ("label", "children", "_hash", "_height")

    def __init__(self, label: str, children: Sequence[Tree | str]):
        """Build a node.

        Raises:
            ValueError: ``label`` not a str (or containing whitespace or brackets), no
                children, a child that is neither a `Tree` nor a non-empty word without
                whitespace or brackets (write ``-LRB-`` and ``-RRB-`` for brackets), or an
                empty label before a word (``( a b)`` would read back as ``(a b)``).
        """
        if not isinstance(label, str) or (label and _WORD.fullmatch(label) is None):
            raise ValueError(
                f"label must be a str without whitespace or brackets (write -LRB- and -RRB- "
                f"for brackets), got {label!r}"
            )
        children = tuple(children)
        if not children:
            raise ValueError(f"a tree needs at least one child; ({label}) has none")
        for position, child in enumerate(children):
            if not isinstance(child, Tree) and not is_word(child):
                raise ValueError(
                    f"children[{position}] of ({label} ...) must be a Tree or a non-empty str "
                    f"without whitespace or brackets (write -LRB- and -RRB- for brackets), "
                    f"got {child!r}"
                )
        if not label and isinstance(children[0], str):
            raise ValueError(f"an unlabelled node cannot start with a word, got {children[0]!r}")
        self.label = label
        self.children = children
        self._hash = hash((label, children))
        self._height = 1 + max((c._height for c in children if isinstance(c, Tree)), default=0)

    def __reduce__(self) -> tuple[Callable[[str], Tree], tuple[str]]:
        """Pickle as the brackets, read back by `from_string`: the hash is recomputed where
        the tree is loaded (``str`` hashes differ between processes), and trees of any depth
        pickle (pickle itself recurses into nested objects)."""
        return type(self).from_string, (str(self),)

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
        stack: list[tuple[str, Tree | str]] = [("", self)]
        while stack:
            label, node = stack.pop()
            if isinstance(node, str):
                found.append((label, node))
            else:
                stack.extend((node.label, child) for child in reversed(node.children))
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
        """This tree with the preterminals relabelled from ``tags``, built bottom up."""
        built: list[Tree] = []  # the finished subtrees, in postorder
        for node in self._postorder():
            if node.is_preterminal():
                built.append(Tree(next(tags), node.children))
                continue
            if any(isinstance(child, str) for child in node.children):
                raise ValueError(
                    f"a word sits directly under ({node.label}); it has no tag to replace"
                )
            children = built[-len(node.children) :]
            del built[-len(node.children) :]
            built.append(Tree(node.label, children))
        return built[0]

    def _postorder(self) -> Iterator[Tree]:
        """This node and every node below it, each after its children, left to right."""
        stack: list[tuple[Tree, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded or node.is_preterminal():
                yield node
                continue
            stack.append((node, True))
            stack.extend(
                (child, False) for child in reversed(node.children) if isinstance(child, Tree)
            )

    def subtrees(self) -> Iterator[Tree]:
        """This node and every node below it, in preorder."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(child for child in reversed(node.children) if isinstance(child, Tree))

    def height(self) -> int:
        """1 for a preterminal, else one more than the highest child."""
        return self._height

    # -- brackets --------------------------------------------------------------------------

    def __str__(self) -> str:
        """One-line PTB brackets: ``(S (NP (DT the) (NN dog)) (VP (VBZ barks)))``."""
        pieces: list[str] = []
        stack: list[Tree | str] = [self]  # subtrees to write, and text to copy
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                pieces.append(item)
                continue
            pieces.append("(" + item.label)
            stack.append(")")
            for child in reversed(item.children):
                stack += [child, " "]
        return "".join(pieces)

    @classmethod
    def from_string(cls, text: str) -> Tree:
        """Read one bracketed tree (any whitespace, labels may be empty: ``( (S ...) )``).

        Raises:
            ValueError: ``text`` not a str, unbalanced brackets, text outside the tree, a node
                without children, or more than one tree.
        """
        if not isinstance(text, str):
            raise ValueError(f"text must be a str of brackets, got {type(text).__name__}")
        tokens = _TOKEN.findall(text)
        shown = repr(text.strip()[:60])
        if not tokens or tokens[0] != "(":
            raise ValueError(f"a tree must start with '(': {shown}")
        open_nodes: list[tuple[str, list[Tree | str]]] = []  # label and children so far
        at = 0
        while at < len(tokens):
            token = tokens[at]
            at += 1
            if token == "(":
                label = ""
                if at < len(tokens) and tokens[at] not in "()":
                    label, at = tokens[at], at + 1
                open_nodes.append((label, []))
            elif token != ")":
                open_nodes[-1][1].append(token)
            else:
                label, children = open_nodes.pop()
                if not children:
                    raise ValueError(f"node ({label}) has no children in {shown}")
                tree = cls(label, children)
                if not open_nodes:
                    break
                open_nodes[-1][1].append(tree)
        if open_nodes:
            raise ValueError(f"unbalanced brackets: a '(' is never closed in {shown}")
        if at != len(tokens):
            raise ValueError(f"text after the end of the tree: {' '.join(tokens[at:])[:60]!r}")
        return tree

    # -- value semantics -------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        pairs = [(self, other)]
        while pairs:
            a, b = pairs.pop()
            if a is b:
                continue
            if a._hash != b._hash or a.label != b.label or len(a.children) != len(b.children):
                return False
            for x, y in zip(a.children, b.children, strict=True):
                if isinstance(x, Tree) and isinstance(y, Tree):
                    pairs.append((x, y))
                elif x != y:
                    return False
        return True

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Tree.from_string({str(self)!r})"
