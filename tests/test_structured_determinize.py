"""Weighted determinization against the enumeration of every path: each string keeps the
best score of the input's paths that spell it, and each state has one edge per symbol."""

from __future__ import annotations

import math
import random

import networkx as nx
import pytest

from hybrid.structured import determinize


def best_by_string(g: nx.MultiDiGraph, longest: int) -> dict[tuple, float]:
    """``string -> best score`` over every path of at most ``longest`` edges that starts at
    a start node and ends at a final one, strings whose best is ``-inf`` left out."""
    best: dict[tuple, float] = {}

    def walk(node, score, spelled):
        final = g.nodes[node].get("final")
        if final is not None:
            best[spelled] = max(best.get(spelled, -math.inf), score + final)
        if len(spelled) < longest:
            for _, target, data in g.out_edges(node, data=True):
                walk(target, score + data.get("weight", 0.0), (*spelled, data["symbol"]))

    for node, data in g.nodes(data=True):
        if "start" in data:
            walk(node, data["start"], ())
    return {string: score for string, score in best.items() if score > -math.inf}


def random_acceptor(seed: int, cyclic: bool) -> nx.MultiDiGraph:
    """A random acceptor over a, b, c: edges forward, some of weight ``-inf``, some final
    weights ``-inf`` (and, if ``cyclic``, a self-loop of one weight on every node, so that it
    stays determinizable)."""
    rng = random.Random(seed)
    g = nx.MultiDiGraph()
    n = rng.randint(3, 7)
    for node in range(n):
        g.add_node(node)
        if rng.random() < 0.4:
            g.nodes[node]["final"] = rng.uniform(-2, 0) if rng.random() < 0.8 else -math.inf
    g.nodes[0]["start"] = 0.0
    if rng.random() < 0.5:
        g.nodes[1]["start"] = -0.5
    g.nodes[n - 1]["final"] = 0.0
    for _ in range(rng.randint(n, 3 * n)):
        u = rng.randrange(n - 1)
        v = rng.randrange(u + 1, n)
        weight = rng.uniform(-3, 0) if rng.random() < 0.9 else -math.inf
        g.add_edge(u, v, symbol=rng.choice("abc"), weight=weight)
    if cyclic:
        for node in range(n):
            g.add_edge(node, node, symbol="z", weight=-0.25)
    return g


@pytest.mark.parametrize("cyclic", [False, True], ids=["acyclic", "cyclic"])
@pytest.mark.parametrize("seed", range(12))
def test_every_string_keeps_its_best_score_and_each_state_one_edge_per_symbol(seed, cyclic):
    g = random_acceptor(seed, cyclic)
    det = determinize(g)
    longest = 7
    expected, found = best_by_string(g, longest), best_by_string(det, longest)
    assert found.keys() == expected.keys()
    for string, score in expected.items():
        assert found[string] == pytest.approx(score, abs=1e-9), string
    assert [n for n, d in det.nodes(data=True) if "start" in d] == [0]
    for state in det.nodes:
        symbols = [d["symbol"] for _, _, d in det.out_edges(state, data=True)]
        assert len(symbols) == len(set(symbols))


def test_merged_paths_pay_their_best_weight_first():
    """Two paths over "a b" part after "a": the edge for "a" carries the better of their
    weights, and the worse pays the rest after they part."""
    g = nx.MultiDiGraph()
    g.add_node(0, start=0.0)
    g.add_node(3, final=0.0)
    g.add_edge(0, 1, symbol="a", weight=-1.0)
    g.add_edge(0, 2, symbol="a", weight=-4.0)
    g.add_edge(1, 3, symbol="b", weight=0.0)
    g.add_edge(2, 3, symbol="c", weight=0.0)
    det = determinize(g)
    weights = {d["symbol"]: d["weight"] for _, _, d in det.edges(data=True)}
    assert weights == {"a": -1.0, "b": 0.0, "c": -3.0}


def test_an_acceptor_without_the_twins_property_is_refused():
    """Two ways to read "a" forever with different weights on their cycles: the subsets
    never repeat."""
    g = nx.MultiDiGraph()
    g.add_node(0, start=0.0)
    g.add_node(1, final=0.0)
    g.add_node(2, final=0.0)
    g.add_edge(0, 1, symbol="a")
    g.add_edge(0, 2, symbol="a")
    g.add_edge(1, 1, symbol="a", weight=-1.0)
    g.add_edge(2, 2, symbol="a", weight=-2.0)
    with pytest.raises(ValueError, match="max_states=50 states: the acceptor is not"):
        determinize(g, max_states=50)


def test_bad_acceptors_are_named():
    g = nx.MultiDiGraph()
    g.add_node(0, start=0.0, final=0.0)
    g.add_edge(0, 0, weight=1.0)
    with pytest.raises(ValueError, match="the edge 0 -> 0 has no symbol"):
        determinize(g)
    h = nx.MultiDiGraph()
    h.add_node(0, start=-math.inf, final=0.0)
    h.add_edge(0, 0, symbol="a")
    with pytest.raises(ValueError, match="no start node"):
        determinize(h)
