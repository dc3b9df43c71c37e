"""Penn Treebank files: reading and writing `Tree`s, the WSJ split, normalisation, graphs.

A treebank file (``.mrg``) holds bracketed trees one after another, each possibly over several
lines; the WSJ wraps every sentence in an unlabelled outer bracket: ``( (S ...) )``.
`normalize` turns such a gold tree into what a constituency parser predicts and EVALB scores:
basic categories without function tags, no empty elements, no outer root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path

import networkx as nx

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
        ValueError: ``source`` is neither text nor an existing file; or, naming the file (or
            ``text``), the line and the tree's position (1-based): unbalanced brackets, text
            outside the trees, or a malformed tree (such as a node without children).
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "(" not in source):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"source {str(source)!r} is not a file (a str without '(' is a path)")
        return _parse_trees(path.read_text(encoding="utf-8"), str(path))
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

    The file appears whole or not at all: the lines go to ``path`` + ``.partial`` in the
    same folder (created when missing), which then replaces ``path`` (`os.replace`).

    Raises:
        ValueError: ``trees[i]`` is not a `Tree` (nothing is written).
    """
    lines = []
    for i, tree in enumerate(trees):
        if not isinstance(tree, Tree):
            raise ValueError(f"trees[{i}] must be a Tree, got {type(tree).__name__}")
        lines.append(f"{tree}\n")
    _write_atomic(Path(path), "".join(lines))


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path.partial`` beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


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


def _basic_categories(tree: Tree) -> Tree:
    """``tree`` with every label replaced by its `basic_category`."""
    children = [
        child if isinstance(child, str) else _basic_categories(child) for child in tree.children
    ]
    return Tree(basic_category(tree.label), children)


def _without_empty(tree: Tree) -> Tree | None:
    """``tree`` without ``-NONE-`` nodes, childless phrases and A-over-A unaries; ``None``
    if nothing is left."""
    if tree.label == _EMPTY:
        return None
    children = [
        child if isinstance(child, str) else _without_empty(child) for child in tree.children
    ]
    kept = [child for child in children if child is not None]
    if not kept:
        return None
    if len(kept) == 1 and _is_phrase(kept[0]) and _same_category(tree, kept[0]):
        return Tree(tree.label, kept[0].children)
    return Tree(tree.label, kept)


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
    _add_subtree(graph, tree)
    return graph


def _add_subtree(graph: nx.DiGraph, node: Tree | str) -> int:
    """Add ``node`` and everything below it to ``graph`` in preorder; ``node``'s number."""
    number = graph.number_of_nodes()
    if isinstance(node, str):
        graph.add_node(number, word=node)
        return number
    graph.add_node(number, label=node.label)
    for order, child in enumerate(node.children):
        graph.add_edge(number, _add_subtree(graph, child), order=order)
    return number


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
    return _build(graph, root)


def _build(graph: nx.DiGraph, node: Hashable) -> Tree | str:
    """The tree (or word) below ``node``."""
    attributes = graph.nodes[node]
    if ("label" in attributes) == ("word" in attributes):
        raise ValueError(f"node {node!r} must have exactly one of the attributes label and word")
    if "word" in attributes:
        if graph.out_degree(node):
            raise ValueError(f"word node {node!r} has children")
        return attributes["word"]
    return Tree(attributes["label"], [_build(graph, child) for child in _ordered(graph, node)])


def _ordered(graph: nx.DiGraph, node: Hashable) -> list[Hashable]:
    """The children of ``node`` by their edges' ``order``, checked to be ``0, ..., k-1``."""
    edges = graph.succ[node]
    by_order = {edge.get("order"): child for child, edge in edges.items()}
    if len(by_order) != len(edges) or set(by_order) != set(range(len(edges))):
        orders = [edge.get("order") for edge in edges.values()]
        raise ValueError(f"edges out of node {node!r} must have order 0, 1, ...; got {orders}")
    return [by_order[order] for order in range(len(edges))]
