"""Weighted determinization of acceptors in the (max, +) semiring of log weights.

An acceptor is a `networkx.MultiDiGraph` whose edges read a hashable ``symbol`` and add a log
``weight`` (default 0), with optional ``start`` and ``final`` log weights on its nodes. A
path spells the symbols of its edges and scores ``start + sum of weights + final``.
`determinize` returns an acceptor with one start state and at most one edge per state and
symbol that gives every string the best score of the paths spelling it in the input: the
subset construction of Mohri (1997), each state a set of input states with the weight each
still owes (its residual), each edge the best weight of the edges it merges. Merged paths
therefore pay the best of their weights as early as the shared prefix (weight pushing), which
is what lets a beam search compare them before they part.

An acceptor with cycles is determinizable when paths that spell the same string through
cycles of the same string gain the same weight on them (the twins property); otherwise the
subsets never repeat, and `determinize` stops at ``max_states`` with an error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import networkx as nx

__all__ = ["determinize"]

_NEG_INF = float("-inf")
#: Residuals are compared to this many decimal places when subsets are matched.
_PLACES = 9


def determinize(g: nx.MultiDiGraph, max_states: int = 1_000_000) -> nx.MultiDiGraph:
    """The deterministic acceptor of ``g`` in the (max, +) semiring (see the module
    docstring).

    Args:
        g: Edges with a ``symbol`` (hashable, not ``None``: there is no epsilon) and an
            optional log ``weight``; nodes with optional ``start`` / ``final`` log weights.
        max_states: The most states the result may have.

    Returns:
        An acceptor over states ``0, 1, ...`` (``0`` the start, with the best start weight),
        edges with ``symbol`` and ``weight``, ``final`` on the states that hold an input
        final state. Edges of weight ``-inf`` are left out. Symbols leave each state in the
        order the input's edges first offer them.

    Raises:
        ValueError: An edge without a symbol, no start node, or more than ``max_states``
            states (``g`` is not determinizable, or is larger than allowed).
    """
    nodes = list(g.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    leaving: list[list[tuple[Hashable, int, float]]] = [[] for _ in nodes]
    for u, v, data in g.edges(data=True):
        if data.get("symbol") is None:
            raise ValueError(f"the edge {u!r} -> {v!r} has no symbol (epsilon edges are not read)")
        leaving[index[u]].append((data["symbol"], index[v], float(data.get("weight", 0.0))))
    final = [float(g.nodes[n].get("final", _NEG_INF)) for n in nodes]
    starts = {index[n]: float(d["start"]) for n, d in g.nodes(data=True) if "start" in d}
    starts = {s: w for s, w in starts.items() if w > _NEG_INF}
    if not starts:
        raise ValueError("the acceptor has no start node (a 'start' weight above -inf)")

    out = nx.MultiDiGraph()
    found: dict[tuple, int] = {}
    queue: deque[tuple[int, dict[int, float]]] = deque()

    def state(weights: dict[int, float]) -> tuple[int, float]:
        """The result state of the input states' ``weights`` and the best of them."""
        best = max(weights.values())
        residuals = {s: w - best for s, w in weights.items()}
        key = tuple(sorted((s, round(r, _PLACES)) for s, r in residuals.items()))
        if key not in found:
            if len(found) == max_states:
                raise ValueError(
                    f"determinization passed max_states={max_states} states: the acceptor is "
                    "not determinizable (paths that spell the same string through cycles "
                    "gain different weights on them) or is larger than allowed"
                )
            found[key] = len(found)
            ending = max(r + final[s] for s, r in residuals.items())
            out.add_node(found[key], **({"final": ending} if ending > _NEG_INF else {}))
            queue.append((found[key], residuals))
        return found[key], best

    first, best = state(starts)
    out.nodes[first]["start"] = best
    while queue:
        source, residuals = queue.popleft()
        reached: dict[Hashable, dict[int, float]] = {}
        for s, r in residuals.items():
            for symbol, target, weight in leaving[s]:
                if weight == _NEG_INF:
                    continue
                by_target = reached.setdefault(symbol, {})
                by_target[target] = max(by_target.get(target, _NEG_INF), r + weight)
        for symbol, weights in reached.items():
            target, weight = state(weights)
            out.add_edge(source, target, symbol=symbol, weight=weight)
    return out
