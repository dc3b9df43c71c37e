"""Treebank reading, writing, splitting, normalisation and graphs: small trees derived by hand,
then every tree of the real WSJ sample against counts taken from its raw text."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest
from realdata import real_corpus

from hybrid.parsing.tree import Tree
from hybrid.parsing.treebank import (
    basic_category,
    from_networkx,
    normalize,
    ptb_split,
    read_trees,
    to_networkx,
    write_trees,
)

T = Tree.from_string


# --- reading and writing --------------------------------------------------------------------


def test_read_trees_from_text_and_from_paths(tmp_path):
    text = "\n( (S (NN a)) )\n(NP (DT the)\n    (NN dog))  (X (Y z))\n"
    expected = [T("( (S (NN a)))"), T("(NP (DT the) (NN dog))"), T("(X (Y z))")]
    assert read_trees(text) == expected
    path = tmp_path / "small.mrg"
    path.write_text(text, encoding="utf-8")
    assert read_trees(path) == expected
    assert read_trees(str(path)) == expected
    (tmp_path / "empty.mrg").write_text("\n\n", encoding="utf-8")
    assert read_trees(tmp_path / "empty.mrg") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(S (NP (NN a))", r"^text, tree 1 \(line 1\): unbalanced brackets, never closed"),
        ("(S (NN a))\n\n(S\n(NN b)", r"^text, tree 2 \(line 3\): unbalanced brackets"),
        ("(S (NN a)))", r"^text, line 1: unbalanced brackets, '\)' without '\('"),
        (
            "(S (NN a))\n\n(S\n(NN b)) junk (S (NN c))",
            r"^text, line 4: text outside the trees: 'junk'",
        ),
        ("words (S (NN a))", r"^text, line 1: text outside the trees: 'words'"),
        ("(S (NN a))\n(S (NN))", r"^text, tree 2 \(line 2\): node \(NN\) has no children"),
    ],
)
def test_read_trees_rejects_malformed_text(text, message):
    with pytest.raises(ValueError, match=message):
        read_trees(text)


def test_read_trees_names_the_file_tree_and_line(tmp_path):
    path = tmp_path / "wsj_0001.mrg"
    path.write_text("( (S (NN a)) )\n\n( (S (NN b)) )\n( (S\n  (NN)) )\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(path))}, tree 3 \(line 4\): node \(NN\)"
    ):
        read_trees(path)


def test_read_trees_rejects_missing_files_and_other_sources(tmp_path):
    with pytest.raises(ValueError, match=r"source '.*absent\.mrg' is not a file"):
        read_trees(tmp_path / "absent.mrg")
    with pytest.raises(ValueError, match="is not a file"):
        read_trees(str(tmp_path))
    with pytest.raises(ValueError, match="source must be a path or bracketed text, got int"):
        read_trees(3)


def test_write_trees_one_line_each_replacing_the_file(tmp_path):
    path = tmp_path / "new" / "trees.txt"
    trees = [T("(S (NN a))"), T("( (S (NP (DT the)\n (NN dog))) )")]
    write_trees(trees, path)
    assert path.read_text(encoding="utf-8") == "(S (NN a))\n( (S (NP (DT the) (NN dog))))\n"
    assert read_trees(path) == trees
    write_trees(trees[:1], path)
    assert path.read_text(encoding="utf-8") == "(S (NN a))\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["trees.txt"]


def test_trees_that_would_read_back_otherwise_cannot_be_built():
    assert str(Tree("", [T("(S (NN a))")])) == "( (S (NN a)))"
    with pytest.raises(ValueError, match="an unlabelled node cannot start with a word, got 'a'"):
        Tree("", ["a", "b"])  # "( a b)" reads back as "(a b)"


def test_write_trees_refuses_non_trees_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"trees\[1\] must be a Tree, got str"):
        write_trees([T("(S (NN a))"), "(S (NN b))"], path)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["trees.txt"]


# --- the split ------------------------------------------------------------------------------


def write_numbered_files(folder: Path) -> None:
    """wsj_0001.mrg ... wsj_0169.mrg, file n holding one tree over the word ``w<n>``."""
    for number in range(1, 170):
        (folder / f"wsj_{number:04d}.mrg").write_text(f"( (S (NN w{number})) )\n", "utf-8")


def test_ptb_split_takes_files_1_149_150_159_160_169(tmp_path):
    write_numbered_files(tmp_path)
    (tmp_path / "wsj_0170.mrg").write_text("( (S (NN w170)) )\n", "utf-8")
    train, dev, test = ptb_split(tmp_path)
    words = [[tree.leaves()[0] for tree in part] for part in (train, dev, test)]
    assert words == [[f"w{n}" for n in range(a, b)] for a, b in ((1, 150), (150, 160), (160, 170))]


def test_ptb_split_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match=r"root '.*absent' is not a folder"):
        ptb_split(tmp_path / "absent")
    write_numbered_files(tmp_path)
    (tmp_path / "wsj_0001.mrg").unlink()
    (tmp_path / "wsj_0155.mrg").unlink()
    with pytest.raises(ValueError, match=r"lacks 2 WSJ files: wsj_0001\.mrg, wsj_0155\.mrg$"):
        ptb_split(tmp_path)


# --- normalisation by hand ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "category"),
    [
        ("NP-SBJ-1", "NP"),
        ("NP=2", "NP"),
        ("PP-CLR", "PP"),
        ("NP-SBJ=1-3", "NP"),
        ("PP-LOC-CLR", "PP"),
        ("WHNP-260", "WHNP"),
        ("-NONE-", "-NONE-"),
        ("-LRB-", "-LRB-"),
        ("-RRB-", "-RRB-"),
        ("PRP$", "PRP$"),
        ("ADVP|PRT", "ADVP|PRT"),
        ("S", "S"),
        ("", ""),
    ],
)
def test_basic_category(label, category):
    assert basic_category(label) == category


PASSIVE = (
    "( (S (NP-SBJ-1 (DT The) (NN dog)) (VP (VBD was) (VP (VBN seen) (NP (-NONE- *-1)))) (. .)) )"
)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((True, True, True), "(S (NP (DT The) (NN dog)) (VP (VBD was) (VP (VBN seen))) (. .))"),
        (
            (True, False, False),
            "( (S (NP (DT The) (NN dog)) (VP (VBD was) (VP (VBN seen) (NP (-NONE- *-1)))) (. .)))",
        ),
        (
            (False, True, False),
            "( (S (NP-SBJ-1 (DT The) (NN dog)) (VP (VBD was) (VP (VBN seen))) (. .)))",
        ),
        (
            (False, False, True),
            "(S (NP-SBJ-1 (DT The) (NN dog))"
            " (VP (VBD was) (VP (VBN seen) (NP (-NONE- *-1)))) (. .))",
        ),
        ((False, False, False), PASSIVE),
    ],
)
def test_normalize_steps_one_by_one(flags, expected):
    assert normalize(T(PASSIVE), *flags) == T(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # relative clause: empty relative pronoun and its trace
        (
            "(NP (NP (DT the) (NN man)) (SBAR (WHNP-1 (-NONE- 0))"
            " (S (NP-SBJ (PRP I)) (VP (VBD saw) (NP (-NONE- *T*-1))))))",
            "(NP (NP (DT the) (NN man)) (SBAR (S (NP (PRP I)) (VP (VBD saw)))))",
        ),
        # complement clause with an empty complementizer
        (
            "(VP (VBD said) (SBAR (-NONE- 0) (S (NP-SBJ (PRP he)) (VP (VBD left)))))",
            "(VP (VBD said) (SBAR (S (NP (PRP he)) (VP (VBD left)))))",
        ),
        # the removal leaves NP over NP
        ("(NP (NP (DT the) (NN dog)) (SBAR (-NONE- 0)))", "(NP (DT the) (NN dog))"),
        # a chain: NP over NP over NP, each made unary by a removal
        (
            "(S (NP (NP (NP (NNP Bob)) (SBAR (-NONE- 0))) (-NONE- *U*)) (VP (VBD ran)))",
            "(S (NP (NNP Bob)) (VP (VBD ran)))",
        ),
        # an A-over-A unary already in the treebank (wsj_0083) goes too
        ("(NP (NP (DT this) (NN area)))", "(NP (DT this) (NN area))"),
        # ... but not a phrase over a preterminal of the same label
        ("(S (X (X foo)) (VP (VB go)))", "(S (X (X foo)) (VP (VB go)))"),
        # gapping co-indices
        (
            "(S (NP-SBJ=2 (NNP Mary)) (VP=3 (VBD ate) (NP=2 (NNS apples))))",
            "(S (NP (NNP Mary)) (VP (VBD ate) (NP (NNS apples))))",
        ),
        # bracket tags stay whole
        (
            "(NP (NP (NNP Acme)) (PRN (-LRB- -LRB-) (NP-LOC (NNP Ohio)) (-RRB- -RRB-)))",
            "(NP (NP (NNP Acme)) (PRN (-LRB- -LRB-) (NP (NNP Ohio)) (-RRB- -RRB-)))",
        ),
        # roots
        ("(ROOT (S (NN a)))", "(S (NN a))"),
        ("(TOP (S (NN a)))", "(S (NN a))"),
        ("( (ROOT (S (NN a))))", "(S (NN a))"),
        ("( (S (NN a)) (S (NN b)))", "( (S (NN a)) (S (NN b)))"),
    ],
)
def test_normalize_by_hand(raw, expected):
    assert normalize(T(raw)) == T(expected)


def test_normalize_keeps_the_upper_label_of_a_unary_without_stripping():
    raw = T("(NP-SBJ (NP (DT the) (NN dog)) (SBAR (-NONE- 0)))")
    assert normalize(raw, strip_function_tags=False) == T("(NP-SBJ (DT the) (NN dog))")


def test_normalize_returns_none_for_a_tree_of_empty_elements():
    raw = T("( (S (NP-SBJ (-NONE- *)) (VP (-NONE- *?*))) )")
    assert normalize(raw) is None
    assert normalize(raw, remove_empty=False) == T("(S (NP (-NONE- *)) (VP (-NONE- *?*)))")
    with pytest.raises(ValueError, match="tree must be a Tree, got str"):
        normalize("(S (NN a))")


# --- graphs by hand -------------------------------------------------------------------------


def test_to_networkx_numbers_nodes_in_preorder():
    graph = to_networkx(T("(S (NP (DT the) (NN dog)) (VP (VBZ barks)))"))
    assert dict(graph.nodes(data=True)) == {
        0: {"label": "S"},
        1: {"label": "NP"},
        2: {"label": "DT"},
        3: {"word": "the"},
        4: {"label": "NN"},
        5: {"word": "dog"},
        6: {"label": "VP"},
        7: {"label": "VBZ"},
        8: {"word": "barks"},
    }
    assert sorted(graph.edges(data="order")) == [
        (0, 1, 0),
        (0, 6, 1),
        (1, 2, 0),
        (1, 4, 1),
        (2, 3, 0),
        (4, 5, 0),
        (6, 7, 0),
        (7, 8, 0),
    ]


def test_from_networkx_orders_children_by_the_edge_attribute():
    graph = nx.DiGraph()
    graph.add_node("w2", word="b")
    graph.add_node("root", label="S")
    graph.add_node("w1", word="a")
    graph.add_edge("root", "w2", order=1)
    graph.add_edge("root", "w1", order=0)
    assert from_networkx(graph) == Tree("S", ["a", "b"])


def graph_of(nodes: dict, edges: list[tuple], kind=nx.DiGraph) -> nx.Graph:
    graph = kind()
    for node, attributes in nodes.items():
        graph.add_node(node, **attributes)
    for parent, child, *order in edges:
        graph.add_edge(parent, child, **({"order": order[0]} if order else {}))
    return graph


S_A_B = {0: {"label": "S"}, 1: {"word": "a"}, 2: {"word": "b"}}


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (nx.DiGraph(), "graph is empty"),
        (
            graph_of(S_A_B, [(0, 1, 0), (0, 2, 1)], nx.Graph),
            "must be a networkx DiGraph, got Graph",
        ),
        (graph_of(S_A_B, [(0, 1, 0), (0, 2, 1)], nx.MultiDiGraph), "got MultiDiGraph"),
        (graph_of(S_A_B, [(0, 1, 0)]), "graph is not a tree"),
        (graph_of(S_A_B, [(0, 1, 0), (1, 2, 0), (2, 0, 0)]), "graph is not a tree"),
        (graph_of(S_A_B, [(0, 1, 0), (2, 1, 0)]), "graph is not a tree"),
        (graph_of(S_A_B, [(0, 1, 0), (1, 2, 0)]), "word node 1 has children"),
        (graph_of(S_A_B, [(0, 1, 0), (0, 2)]), r"order 0, 1, \.\.\.; got \[0, None\]"),
        (graph_of(S_A_B, [(0, 1, 0), (0, 2, 0)]), r"got \[0, 0\]"),
        (graph_of(S_A_B, [(0, 1, 1), (0, 2, 2)]), r"got \[1, 2\]"),
        (graph_of({0: {"label": "S"}, 1: {}}, [(0, 1, 0)]), "node 1 must have exactly one of"),
        (
            graph_of({0: {"label": "S"}, 1: {"label": "NN", "word": "a"}}, [(0, 1, 0)]),
            "node 1 must have exactly one of",
        ),
        (graph_of({0: {"label": "N P"}, 1: {"word": "a"}}, [(0, 1, 0)]), "label must be a str"),
        (graph_of({0: {"label": "S"}}, []), r"a tree needs at least one child; \(S\) has none"),
    ],
)
def test_from_networkx_rejects_graphs_that_are_not_trees(graph, message):
    with pytest.raises(ValueError, match=message):
        from_networkx(graph)


# --- the real WSJ sample --------------------------------------------------------------------

WSJ_FILES = [f"wsj_{number:04d}.mrg" for number in range(1, 170)]
# A preterminal in the raw text: a bracket holding exactly a tag and a word.
PRETERMINAL = re.compile(r"\(([^\s()]+) ([^\s()]+)\)")
# In one-line brackets: a label (possibly empty) after '(', or a word.
LABEL_OR_WORD = re.compile(r"\(\s*([^\s()]*)|([^\s()]+)")


def count_trees(text: str) -> int:
    """Trees counted without a parser: each WSJ tree starts a line with ``( (`` or ``((``."""
    starts = [line for line in text.splitlines() if line.startswith("(")]
    assert all(line.startswith(("( (", "((")) for line in starts)
    return len(starts)


@pytest.fixture(scope="module")
def wsj() -> dict[str, tuple[str, list[Tree]]]:
    """Every file of the sample: its raw text and its trees."""
    folder = real_corpus("ptb_sample")
    return {
        path.name: (path.read_text(encoding="utf-8"), read_trees(path))
        for path in sorted(folder.glob("wsj_*.mrg"))
    }


@pytest.fixture(scope="module")
def trees(wsj) -> list[Tree]:
    return [tree for _, file_trees in wsj.values() for tree in file_trees]


@pytest.fixture(scope="module")
def normalized(trees) -> list[Tree | None]:
    return [normalize(tree) for tree in trees]


def test_real_files_read_every_tree(wsj):
    assert list(wsj) == WSJ_FILES
    for name, (text, file_trees) in wsj.items():
        assert len(file_trees) == count_trees(text), name
        assert [pair for tree in file_trees for pair in tree.preterminals()] == [
            m.groups() for m in PRETERMINAL.finditer(text)
        ], name
    assert sum(len(file_trees) for _, file_trees in wsj.values()) == 3501


def test_real_ptb_split_follows_the_file_numbers(wsj):
    counts = [count_trees(text) for text, _ in wsj.values()]
    train, dev, test = ptb_split(real_corpus("ptb_sample"))
    assert [len(train), len(dev), len(test)] == [
        sum(counts[:149]),
        sum(counts[149:159]),
        sum(counts[159:]),
    ]
    assert len(train) + len(dev) + len(test) == 3501
    assert train[0] == wsj["wsj_0001.mrg"][1][0] and test[-1] == wsj["wsj_0169.mrg"][1][-1]


def test_real_trees_write_and_read_back(trees, tmp_path):
    path = tmp_path / "wsj.txt"
    write_trees(trees, path)
    assert path.read_text(encoding="utf-8").count("\n") == len(trees)
    assert read_trees(path) == trees
    assert all(Tree.from_string(str(tree)) == tree for tree in trees)


def test_real_normalized_trees_have_no_empty_elements_function_tags_or_root(trees, normalized):
    assert None not in normalized
    dash_labels = set()
    for raw, tree in zip(trees, normalized, strict=True):
        assert tree.label not in ("", "ROOT", "TOP"), str(raw)
        for node in tree.subtrees():
            if node.label.startswith("-"):
                dash_labels.add(node.label)
            else:
                assert "-" not in node.label and "=" not in node.label, str(raw)
            only = node.children[0]
            if len(node.children) == 1 and isinstance(only, Tree) and not only.is_preterminal():
                assert only.label != node.label, str(raw)
        assert tree.preterminals() == [(t, w) for t, w in raw.preterminals() if t != "-NONE-"]
    assert dash_labels == {"-LRB-", "-RRB-"}


def test_real_normalize_is_idempotent_and_its_steps_commute(trees, normalized):
    for raw, tree in zip(trees, normalized, strict=True):
        assert normalize(tree) == tree, str(raw)
        stripped_last = normalize(normalize(raw, strip_function_tags=False), True, False, False)
        assert stripped_last == tree, str(raw)


def test_real_trees_through_networkx(trees):
    for tree in trees:
        graph = to_networkx(tree)
        nodes = [
            ("label", d["label"]) if "label" in d else ("word", d["word"])
            for _, d in sorted(graph.nodes(data=True))
        ]
        expected = [
            ("label", label) if word is None else ("word", word)
            for label, word in (m.groups() for m in LABEL_OR_WORD.finditer(str(tree)))
        ]
        assert nodes == expected, str(tree)
        assert from_networkx(graph) == tree, str(tree)
