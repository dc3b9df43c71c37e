"""Penn Treebank files: reading and writing `Tree`s, the WSJ split, normalisation, graphs.

A treebank file (``.mrg``) holds bracketed trees one after another, each possibly over several
lines; the WSJ wraps every sentence in an unlabelled outer bracket: ``( (S ...) )``.
`normalize` turns such a gold tree into what a constituency parser predicts and EVALB scores:
basic categories without function tags, no empty elements, no outer root. Trees are walked
with an explicit stack, so trees of any depth work, whatever Python's recursion limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import networkx as nx

from ..files import read_text, write_text_atomic
from .tree import Tree

__all__ = [
    "basic_category",
    "from_networkx",
    "normalize",
    "ptb_split",
    "read_trees",
    "to_networkx",
    "write_trees",
]

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
# A function tag or co-index: everything from the first '-' or '=' after the first character.
_ANNOTATION = re.compile(r"(?<=.)[-=].*", re.DOTALL)
_EMPTY = "-NONE-"
_ROOTS = ("", "ROOT", "TOP")
# WSJ file numbers of the split this project uses: train, dev, test.
_SPLIT = (range(1, 150), range(150, 160), range(160, 170))
# A node of a tree walked by `_bottom_up`, and what is built from it.
_Node = TypeVar("_Node")
_Built = TypeVar("_Built")


# -- reading and writing -------------------------------------------------------------------


def read_trees(source: str | os.PathLike[str]) -> list[Tree]:
    """Read every bracketed tree of a treebank file, or of the text itself.

    Args:
        source: A path (any `os.PathLike`, or a ``str`` without ``"("``) to a UTF-8 file
            such as ``wsj_0001.mrg``; a ``str`` containing ``"("`` is the bracketed text.
            Trees follow one another, each over any number of lines.

    Returns:
        The trees in the order written (an empty list for a file without trees).

    Raises:
        ValueError: ``source`` is neither text nor an existing file; naming the file and the
            line, bytes that are not UTF-8 (a byte-order mark is dropped); or, naming the
            file (or ``text``), the line and the tree's position (1-based): unbalanced
            brackets, text outside the trees, or a malformed tree (such as a node without
            children).
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "(" not in source):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"source {str(source)!r} is not a file (a str without '(' is a path)")
        return _parse_trees(read_text(path), str(path))
    if isinstance(source, str):
        return _parse_trees(source, "text")
    raise ValueError(f"source must be a path or bracketed text, got {type(source).__name__}")


def _parse_trees(text: str, name: str) -> list[Tree]:
    """The trees of ``text`` (from ``name``), each read by `Tree.from_string`."""
    trees = []
    for position, (start, end, line) in enumerate(_tree_spans(text, name), start=1):
        try:
            trees.append(Tree.from_string(text[start:end]))
        except ValueError as error:
            raise ValueError(f"{name}, tree {position} (line {line}): {error}") from error
    return trees


def _tree_spans(text: str, name: str) -> Iterator[tuple[int, int, int]]:
    """``(start, end, line)`` of each top-level bracketed span of ``text``, ``line`` 1-based.

    Raises:
        ValueError: A ``)`` or a word outside every bracket, or a ``(`` never closed.
    """
    depth, count, line, counted = 0, 0, 1, 0
    start = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if depth == 0:
            line += text.count("\n", counted, match.start())
            counted = match.start()
        if token == "(":
            if depth == 0:
                start, count = match.start(), count + 1
            depth += 1
        elif depth == 0 and token == ")":
            raise ValueError(f"{name}, line {line}: unbalanced brackets, ')' without '('")
        elif depth == 0:
            raise ValueError(f"{name}, line {line}: text outside the trees: {token[:40]!r}")
        elif token == ")":
            depth -= 1
            if depth == 0:
                yield start, match.end(), line
    if depth:
        raise ValueError(f"{name}, tree {count} (line {line}): unbalanced brackets, never closed")


def write_trees(trees: Iterable[Tree], path: str | os.PathLike[str]) -> None:
    """Write ``trees`` to ``path``, one tree per line in one-line PTB brackets.

    The file appears whole or not at all (`hybrid.files.write_text_atomic`): the lines go to
    a temporary file of its own in the same folder (created when missing), which then
    replaces ``path``.

    Raises:
        ValueError: ``trees[i]`` is not a `Tree` (nothing is written).
    """
    lines = []
    for i, tree in enumerate(trees):
        if not isinstance(tree, Tree):
            raise ValueError(f"trees[{i}] must be a Tree, got {type(tree).__name__}")
        lines.append(f"{tree}\n")
    write_text_atomic(path, "".join(lines))


def ptb_split(root: str | os.PathLike[str]) -> tuple[list[Tree], list[Tree], list[Tree]]:
    """The project's train/dev/test split of the WSJ sample, as read by `read_trees`.

    ``root`` is a flat folder holding ``wsj_0001.mrg`` ... ``wsj_0169.mrg``; train is files
    0001-0149, dev 0150-0159, test 0160-0169, trees in file order. Other files are ignored.

    Raises:
        ValueError: ``root`` is not a folder, or lacks some of the 169 files (naming them).
    """
    folder = Path(root)
    if not folder.is_dir():
        raise ValueError(f"root {str(root)!r} is not a folder")
    groups = [[folder / f"wsj_{number:04d}.mrg" for number in numbers] for numbers in _SPLIT]
    missing = [path.name for group in groups for path in group if not path.is_file()]
    if missing:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise ValueError(f"root {str(root)!r} lacks {len(missing)} WSJ files: {shown}")
    train, dev, test = ([tree for path in group for tree in read_trees(path)] for group in groups)
    return train, dev, test


# -- normalisation -------------------------------------------------------------------------


def basic_category(label: str) -> str:
    """``label`` without function tags and co-indices: ``NP-SBJ-1``, ``NP=2``, ``NP-SBJ=1-3``
    -> ``NP``; ``PP-LOC-CLR`` -> ``PP``.

    Everything from the first ``-`` or ``=`` after the first character goes. Labels starting
    with ``-`` (``-NONE-``, ``-LRB-``, ``-RRB-``) are kept whole; so are other annotations
    (``ADVP|PRT`` stays).
    """
    return label if label.startswith("-") else _ANNOTATION.sub("", label)


def normalize(
    tree: Tree,
    strip_function_tags: bool = True,
    remove_empty: bool = True,
    collapse_root: bool = True,
) -> Tree | None:
    """A treebank tree as a parser sees it; the steps run in the order of the arguments.

    Args:
        tree: A tree as read from a treebank file.
        strip_function_tags: Replace every label by its `basic_category`.
        remove_empty: Remove the empty elements: every node labelled ``-NONE-``, then every
            phrase left without children, then every A-over-A unary, a phrase whose only
            child is a phrase (not a preterminal) of the same basic category, whether the
            removal made it or the treebank had it. The upper node's label stays and the
            lower node's children move up, so ``(NP (NP (DT the) (NN dog)) (SBAR (-NONE- 0)))``
            becomes ``(NP (DT the) (NN dog))``, and ``(NP-SBJ (NP ...))`` keeps ``NP-SBJ``.
        collapse_root: While the root is labelled ``""`` (the WSJ's outer bracket), ``ROOT``
            or ``TOP`` and has a single child that is a tree, replace it by that child.

    Returns:
        The new tree (``tree`` is left as it is); ``None`` when ``remove_empty`` leaves
        nothing, the whole tree being empty elements. Words and tags other than ``-NONE-``
        are kept, in order.

    Raises:
        ValueError: ``tree`` is not a `Tree`.
    """
    if not isinstance(tree, Tree):
        raise ValueError(f"tree must be a Tree, got {type(tree).__name__}")
    result: Tree | None = _basic_categories(tree) if strip_function_tags else tree
    if remove_empty:
        result = _without_empty(result)
    if collapse_root and result is not None:
        result = _without_root(result)
    return result


def _bottom_up(
    root: _Node,
    children: Callable[[_Node], Sequence[_Node]],
    build: Callable[[_Node, list[_Built]], _Built],
) -> _Built:
    """What ``build(node, built)`` gives for ``root``, where ``built`` holds what it gave for
    each of ``children(node)``, left to right.

    A postorder walk with an explicit stack, so that trees of any depth work whatever Python's
    recursion limit: ``children`` is called once per node, in preorder, and ``build`` once per
    node, in postorder.
    """
    done: list[_Built] = []  # what `build` gave for the finished nodes, in postorder
    stack: list[tuple[_Node, int | None]] = [(root, None)]  # (node, None: to expand; or count)
    while stack:
        node, count = stack.pop()
        if count is None:
            below = children(node)
            stack.append((node, len(below)))
            stack.extend((child, None) for child in reversed(below))
            continue
        first = len(done) - count
        built = build(node, done[first:])
        del done[first:]
        done.append(built)
    return done[0]


def _tree_children(node: Tree | str) -> Sequence[Tree | str]:
    """The children of a tree node; none for a word."""
    return () if isinstance(node, str) else node.children


def _basic_categories(tree: Tree) -> Tree:
    """``tree`` with every label replaced by its `basic_category`."""
    return _bottom_up(tree, _tree_children, _with_basic_category)


def _with_basic_category(node: Tree | str, children: list[Tree | str]) -> Tree | str:
    """A word as it is; a tree node over ``children``, labelled its `basic_category`."""
    return node if isinstance(node, str) else Tree(basic_category(node.label), children)


def _without_empty(tree: Tree) -> Tree | None:
    """``tree`` without ``-NONE-`` nodes, childless phrases and A-over-A unaries; ``None``
    if nothing is left."""
    return _bottom_up(tree, _children_unless_empty, _kept_node)


def _children_unless_empty(node: Tree | str) -> Sequence[Tree | str]:
    """The children of a tree node; none for a word or a ``-NONE-`` node (dropped whole)."""
    return () if isinstance(node, str) or node.label == _EMPTY else node.children


def _kept_node(node: Tree | str, children: list[Tree | str | None]) -> Tree | str | None:
    """A word as it is; ``None`` for a ``-NONE-`` node or one left without children; else
    ``node`` over the ``children`` kept, an A-over-A unary merged into its upper node."""
    if isinstance(node, str):
        return node
    kept = [child for child in children if child is not None]
    if node.label == _EMPTY or not kept:
        return None
    if len(kept) == 1 and _is_phrase(kept[0]) and _same_category(node, kept[0]):
        return Tree(node.label, kept[0].children)
    return Tree(node.label, kept)


def _is_phrase(node: Tree | str) -> bool:
    """Whether ``node`` is a tree above the preterminals."""
    return isinstance(node, Tree) and not node.is_preterminal()


def _same_category(tree: Tree, other: Tree) -> bool:
    """Whether the two labels have the same `basic_category`."""
    return basic_category(tree.label) == basic_category(other.label)


def _without_root(tree: Tree) -> Tree:
    """``tree`` without its unary ``""``/``ROOT``/``TOP`` nodes at the top."""
    while tree.label in _ROOTS and len(tree.children) == 1 and isinstance(tree.children[0], Tree):
        tree = tree.children[0]
    return tree


# -- graphs --------------------------------------------------------------------------------


def to_networkx(tree: Tree) -> nx.DiGraph:
    """``tree`` as a directed graph, edges from parent to child.

    Nodes are numbered ``0, 1, ...`` in preorder, words included (``0`` is the root). A tree
    node has the attribute ``label`` (phrase label or tag); a word is a leaf node of its own
    with the attribute ``word``. Each edge has the attribute ``order``: the child's position
    ``0, 1, ...`` among its parent's children. `from_networkx` is the inverse.

    Raises:
        ValueError: ``tree`` is not a `Tree`.
    """
    if not isinstance(tree, Tree):
        raise ValueError(f"tree must be a Tree, got {type(tree).__name__}")
    graph = nx.DiGraph()
    stack: list[tuple[Tree | str, int | None, int]] = [(tree, None, 0)]  # node, parent, order
    while stack:
        node, parent, order = stack.pop()
        number = graph.number_of_nodes()
        if isinstance(node, str):
            graph.add_node(number, word=node)
        else:
            graph.add_node(number, label=node.label)
            below = node.children
            stack.extend((below[i], number, i) for i in reversed(range(len(below))))
        if parent is not None:
            graph.add_edge(parent, number, order=order)
    return graph


def from_networkx(graph: nx.DiGraph) -> Tree:
    """The `Tree` that `to_networkx` made ``graph`` from.

    Any hashable node names are accepted. ``graph`` must be a rooted tree (an arborescence)
    whose nodes each have exactly one of ``label`` (a tree node, with children) and ``word``
    (a leaf), and whose edges out of a node have the ``order`` values ``0, 1, ..., k-1``.

    Raises:
        ValueError: ``graph`` is not a `networkx.DiGraph` (multigraphs neither), is empty, is
            not a rooted tree, or a node or edge breaks the rules above (naming it); or a
            label or word that `Tree` refuses.
    """
    if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
        raise ValueError(f"graph must be a networkx DiGraph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise ValueError("graph is empty; a tree needs a root")
    if not nx.is_arborescence(graph):
        raise ValueError(
            "graph is not a tree: it needs one root and one parent for every other node"
        )
    root = next(node for node, degree in graph.in_degree() if degree == 0)
    return _bottom_up(
        root,
        lambda node: _graph_children(graph, node),
        lambda node, children: _graph_node(graph, node, children),
    )


def _graph_children(graph: nx.DiGraph, node: Hashable) -> list[Hashable]:
    """The children of ``node`` in order, after checking its attributes: none for a word."""
    attributes = graph.nodes[node]
    if ("label" in attributes) == ("word" in attributes):
        raise ValueError(f"node {node!r} must have exactly one of the attributes label and word")
    if "word" in attributes:
        if graph.out_degree(node):
            raise ValueError(f"word node {node!r} has children")
        return []
    return _ordered(graph, node)


def _graph_node(graph: nx.DiGraph, node: Hashable, children: list[Tree | str]) -> Tree | str:
    """The word of a word node, or the tree of a label node over its ``children``."""
    attributes = graph.nodes[node]
    return attributes["word"] if "word" in attributes else Tree(attributes["label"], children)


def _ordered(graph: nx.DiGraph, node: Hashable) -> list[Hashable]:
    """The children of ``node`` by their edges' ``order``, checked to be ``0, ..., k-1``."""
    edges = graph.succ[node]
    by_order = {edge.get("order"): child for child, edge in edges.items()}
    if len(by_order) != len(edges) or set(by_order) != set(range(len(edges))):
        orders = [edge.get("order") for edge in edges.values()]
        raise ValueError(f"edges out of node {node!r} must have order 0, 1, ...; got {orders}")
    return [by_order[order] for order in range(len(edges))]
