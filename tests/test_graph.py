"""The sparse-graph engine against brute force, the chain engine and itself (native vs eager).

Runs once per engine (conftest): the fused CPU kernel and the eager PyTorch path.
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import pytest
import torch

from hybrid.structured import (
    Graph,
    graph_log_likelihood,
    graph_nbest,
    graph_posteriors,
    graph_viterbi,
    log_partition,
    viterbi,
)

NEG_INF = float("-inf")


def random_graph(generator, states, arcs, emissions, labels=3, forbid=0.0) -> Graph:
    """A random graph with multi-arcs, self-loops, labels and some -inf weights."""
    src = torch.randint(0, states, (arcs,), generator=generator)
    dst = torch.randint(0, states, (arcs,), generator=generator)
    weight = torch.randn(arcs, generator=generator, dtype=torch.float64)
    weight[torch.rand(arcs, generator=generator) < forbid] = NEG_INF
    start = torch.randn(states, generator=generator, dtype=torch.float64)
    start[torch.rand(states, generator=generator) < 0.3] = NEG_INF
    start[0] = 0.0
    final = torch.randn(states, generator=generator, dtype=torch.float64)
    final[torch.rand(states, generator=generator) < 0.3] = NEG_INF
    final[dst[0]] = 0.5
    src[0], weight[0] = 0, 0.0  # arc 0 leads from a start state to a final state
    label = torch.randint(-1, labels, (arcs,), generator=generator)
    emission = torch.randint(0, emissions, (arcs,), generator=generator)
    return Graph.build(src, dst, emission, start, final, weight, label, emissions)


def all_paths(graph: Graph, scores: torch.Tensor, length: int):
    """Every arc sequence of ``length`` frames that starts, connects and ends: (arcs, score)."""
    for arcs in itertools.product(range(graph.num_arcs), repeat=length):
        if any(graph.dst[a] != graph.src[b] for a, b in itertools.pairwise(arcs)):
            continue
        score = graph.start[graph.src[arcs[0]]] + graph.final[graph.dst[arcs[-1]]]
        for t, a in enumerate(arcs):
            score = score + graph.weight[a] + scores[t, graph.emission[a]]
        if score > NEG_INF:
            yield arcs, float(score)


@pytest.mark.parametrize("seed", range(8))
def test_against_brute_force(seed, chain_engine):
    generator = torch.Generator().manual_seed(seed)
    graph = random_graph(generator, states=3, arcs=6, emissions=4, forbid=0.15)
    lengths = torch.tensor([4, 1, 3, 2])
    scores = torch.randn(4, 4, 5, generator=generator, dtype=torch.float64)
    scores[1, 0, 2] = NEG_INF  # -inf frame scores are allowed
    path = graph_viterbi(scores, graph, lengths)
    log_z = graph_log_likelihood(scores, graph, lengths)
    occupancy = graph_posteriors(scores, graph, lengths)
    for b, length in enumerate(lengths.tolist()):
        paths = list(all_paths(graph, scores[b], length))
        best_arcs, best = max(paths, key=lambda p: p[1])
        assert path.scores[b].item() == pytest.approx(best, abs=1e-9)
        assert path.arcs[b, :length].tolist() == list(best_arcs)
        assert (path.arcs[b, length:] == -1).all()
        assert path.states[b, :length].tolist() == [int(graph.dst[a]) for a in best_arcs]
        assert path.emissions[b, :length].tolist() == [int(graph.emission[a]) for a in best_arcs]
        expected = [int(graph.label[a]) for a in best_arcs if graph.label[a] >= 0]
        assert path.labels[b, : len(expected)].tolist() == expected
        assert path.label_lengths[b] == len(expected)
        assert (path.labels[b, len(expected) :] == -1).all()
        total = torch.logsumexp(torch.tensor([s for _, s in paths], dtype=torch.float64), 0)
        torch.testing.assert_close(log_z[b], total.to(log_z.dtype))
        expected_occ = torch.zeros(scores.shape[1], scores.shape[2], dtype=torch.float64)
        for arcs, score in paths:
            for t, a in enumerate(arcs):
                expected_occ[t, graph.emission[a]] += math.exp(score - total)
        torch.testing.assert_close(occupancy[b], expected_occ)


@pytest.mark.parametrize("seed", range(8))
def test_nbest_against_brute_force(seed):
    """Each distinct label sequence scored by its best path, the n best in order; fewer
    sequences than n leave -inf entries."""
    generator = torch.Generator().manual_seed(seed)
    graph = random_graph(generator, states=4, arcs=9, emissions=4, forbid=0.1)
    lengths = torch.tensor([4, 1, 3, 2])
    scores = torch.randn(4, 4, 5, generator=generator, dtype=torch.float64)
    n = 6
    found = graph_nbest(scores, graph, n, lengths)
    viterbi_path = graph_viterbi(scores, graph, lengths)
    for b, length in enumerate(lengths.tolist()):
        best = {}
        for arcs, score in all_paths(graph, scores[b], length):
            said = tuple(int(graph.label[a]) for a in arcs if graph.label[a] >= 0)
            best[said] = max(score, best.get(said, NEG_INF))
        ranked = sorted(best.items(), key=lambda item: -item[1])[:n]
        got = [
            (tuple(found.labels[b, i, : found.label_lengths[b, i]].tolist()), found.scores[b, i])
            for i in range(len(ranked))
        ]
        for (_, score), (got_said, got_score) in zip(ranked, got, strict=True):
            assert got_score.item() == pytest.approx(score, abs=1e-9)
            assert best[got_said] == pytest.approx(score, abs=1e-9)  # a tie may swap them
        assert len({g for g, _ in got}) == len(got)
        assert (found.scores[b, len(ranked) :] == NEG_INF).all()
        assert found.scores[b, 0].item() == pytest.approx(viterbi_path.scores[b].item())


def test_nbest_refuses_a_bad_n_and_a_sequence_without_a_path():
    generator = torch.Generator().manual_seed(0)
    graph = random_graph(generator, states=3, arcs=6, emissions=4)
    scores = torch.randn(1, 2, 4, generator=generator)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        graph_nbest(scores, graph, 0)
    blocked = torch.full((1, 2, 4), NEG_INF)
    with pytest.raises(ValueError, match="graph_nbest: no path"):
        graph_nbest(blocked, graph, 2)


@pytest.mark.parametrize("banded", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chain_graph_equals_chain_engine(banded, dtype, chain_engine):
    generator = torch.Generator().manual_seed(1)
    k = 7
    transitions = torch.randn(k, k, generator=generator, dtype=dtype)
    if banded:
        i, j = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
        transitions[(j < i) | (j > i + 1)] = NEG_INF
    start = torch.randn(k, generator=generator, dtype=dtype)
    end = torch.randn(k, generator=generator, dtype=dtype)
    if banded:
        start[1:] = NEG_INF
        end[: k - 1] = NEG_INF
    scores = torch.randn(5, 12, k, generator=generator, dtype=dtype)
    lengths = torch.tensor([12, 9, 7, 12, 10])
    graph = Graph.from_chain(transitions, start, end)
    assert graph.num_arcs == k + int((transitions > NEG_INF).sum())
    path = graph_viterbi(scores, graph, lengths)
    tags, best = viterbi(scores, transitions, start, end, lengths)
    assert torch.equal(path.states, tags)
    torch.testing.assert_close(path.scores, best)
    torch.testing.assert_close(
        graph_log_likelihood(scores, graph, lengths),
        log_partition(scores, transitions, start, end, lengths),
    )


def test_beam_search(chain_engine):
    generator = torch.Generator().manual_seed(3)
    graph = random_graph(generator, states=30, arcs=200, emissions=20)
    scores = 3 * torch.randn(4, 40, 20, generator=generator)
    lengths = torch.tensor([40, 30, 20, 1])
    exact = graph_viterbi(scores, graph, lengths)
    wide = graph_viterbi(scores, graph, lengths, beam=1e4)
    assert torch.equal(wide.arcs, exact.arcs)
    narrow = graph_viterbi(scores, graph, lengths, beam=2.0)
    assert (narrow.scores <= exact.scores + 1e-5).all()
    # The pruned path is a real path and its reported score is its score.
    for b, length in enumerate(lengths.tolist()):
        arcs = narrow.arcs[b, :length]
        assert (graph.dst[arcs[:-1]] == graph.src[arcs[1:]]).all()
        score = (
            graph.start[graph.src[arcs[0]]]
            + graph.final[graph.dst[arcs[-1]]]
            + graph.weight[arcs].sum()
            + scores[b, torch.arange(length), graph.emission[arcs]].sum()
        )
        assert narrow.scores[b].item() == pytest.approx(float(score), abs=1e-4)
    with pytest.raises(ValueError, match="beam must be a positive number"):
        graph_viterbi(scores, graph, lengths, beam=0.0)


def test_narrow_beam_that_loses_every_path_says_so(chain_engine):
    # Two branches: the locally better one dead-ends before the last frame.
    g = nx.MultiDiGraph()
    g.add_node("s", start=0.0)
    g.add_node("trap")
    g.add_node("good")
    g.add_node("end", final=0.0)
    g.add_edge("s", "trap", emission=0)
    g.add_edge("s", "good", emission=1)
    g.add_edge("good", "end", emission=1)
    graph = Graph.from_networkx(g)
    scores = torch.tensor([[[5.0, 0.0], [0.0, 0.0]]])
    assert graph_viterbi(scores, graph).scores.item() == 0.0
    with pytest.raises(ValueError, match="wider beam"):
        graph_viterbi(scores, graph, beam=1.0)


def test_posteriors_are_the_gradient_and_sum_to_one():
    generator = torch.Generator().manual_seed(4)
    graph = random_graph(generator, states=4, arcs=10, emissions=3)
    scores = torch.randn(3, 6, 3, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    occupancy = graph_posteriors(scores, graph, lengths)
    inside = torch.arange(6)[None, :] < lengths[:, None]
    torch.testing.assert_close(occupancy.sum(-1), inside.double())
    leaf = scores.clone().requires_grad_()

    def total(x):
        return graph_log_likelihood(x, graph, lengths).sum()

    torch.autograd.gradcheck(total, (leaf,))
    weights = graph.weight.clone().requires_grad_()
    weighted = Graph.build(
        graph.src, graph.dst, graph.emission, graph.start, graph.final, weights, graph.label
    )
    graph_log_likelihood(scores, weighted, lengths).sum().backward()
    assert torch.isfinite(weights.grad).all()


def test_networkx_round_trip_and_names():
    g = nx.MultiDiGraph()
    g.add_node("a", start=0.0)
    g.add_node("b", final=-0.5)
    g.add_edge("a", "a", emission=0, weight=-0.1)
    g.add_edge("a", "b", emission=1, weight=-2.3, label=7)
    g.add_edge("a", "b", emission=2)
    graph = Graph.from_networkx(g)
    assert graph.names == ("a", "b") and graph.num_arcs == 3 and graph.num_emissions == 3
    back = graph.to_networkx()
    assert sorted(back.edges(data=True), key=str) == sorted(
        [
            ("a", "a", {"emission": 0, "weight": -0.1, "label": -1}),
            ("a", "b", {"emission": 1, "weight": -2.3, "label": 7}),
            ("a", "b", {"emission": 2, "weight": 0.0, "label": -1}),
        ],
        key=str,
    )
    assert dict(back.nodes(data=True)) == {"a": {"start": 0.0}, "b": {"final": -0.5}}
    again = Graph.from_networkx(back)
    for x, y in zip(
        (graph.src, graph.dst, graph.emission, graph.weight, graph.label),
        (again.src, again.dst, again.emission, again.weight, again.label),
        strict=True,
    ):
        assert torch.equal(x, y)


def test_graph_moves_between_dtypes():
    generator = torch.Generator().manual_seed(5)
    graph = random_graph(generator, states=5, arcs=12, emissions=4)
    small = graph.to(dtype=torch.float32)
    assert small.weight.dtype == torch.float32 and small.src.dtype == torch.int64
    scores = torch.randn(2, 5, 4, generator=generator)
    torch.testing.assert_close(
        graph_viterbi(scores, small).scores, graph_viterbi(scores, graph).scores
    )


def _tiny():
    g = nx.MultiDiGraph()
    g.add_node(0, start=0.0)
    g.add_node(1, final=0.0)
    g.add_edge(0, 1, emission=0)
    g.add_edge(1, 1, emission=1)
    return g


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Graph.build([], [], [], [0.0], [0.0]), "graph is empty"),
        (lambda: Graph.build([0], [1], [0], [0.0], [0.0]), r"dst must hold states in \[0, S\)"),
        (lambda: Graph.build([0], [0], [-1], [0.0], [0.0]), "emission must hold non-negative"),
        (lambda: Graph.build([0], [0], [0], [NEG_INF], [0.0]), "start has no state"),
        (lambda: Graph.build([0], [0], [0], [0.0], [NEG_INF]), "final has no state"),
        (lambda: Graph.build([0], [0], [0], [0.0, NEG_INF], [NEG_INF, 0.0]), "no final state"),
        (
            lambda: Graph.build([0], [1], [0], [0.0, NEG_INF], [NEG_INF, 0.0], [NEG_INF]),
            "no final state",
        ),
        (lambda: Graph.build([0], [0], [0], [0.0], [0.0], [math.nan]), "weight contains NaN"),
        (lambda: Graph.build([0], [0], [0], [0.0], [0.0], label=[-2]), "label must hold"),
        (lambda: Graph.build([0], [0], [3], [0.0], [0.0], num_emissions=2), "num_emissions"),
        (lambda: Graph.build([0.5], [0], [0], [0.0], [0.0]), "src must be a 1-D integer"),
        (lambda: Graph.from_networkx(nx.Graph([(0, 1)])), "DiGraph"),
        (
            lambda: Graph.from_networkx(nx.MultiDiGraph([(0, 1)])),
            "edge 0 -> 1 has no 'emission'",
        ),
        (lambda: Graph.from_chain(torch.zeros(2, 3)), r"transitions must be \(K, K\)"),
    ],
)
def test_bad_graphs(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_inputs(chain_engine):
    graph = Graph.from_networkx(_tiny())
    good = torch.zeros(2, 3, 2)
    cases = [
        (torch.zeros(3, 2), r"scores must have shape \(B, T, E\)"),
        (torch.zeros(0, 3, 2), r"scores must have shape \(B, T, E\)"),
        (torch.zeros(2, 3, 1), "at least E = 2 columns"),
        (torch.zeros(2, 3, 2, dtype=torch.long), "floating-point"),
        (torch.full((2, 3, 2), math.nan), "NaN"),
        (torch.full((2, 3, 2), NEG_INF), "no path"),
    ]
    for scores, match in cases:
        for fn in (graph_viterbi, graph_log_likelihood):
            with pytest.raises(ValueError, match=match):
                fn(scores, graph)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\]"):
        graph_viterbi(good, graph, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="graph must be a hybrid.structured.Graph"):
        graph_viterbi(good, "graph")
    # The only final state needs a frame on arc 0 first: 1 frame is possible, 0 arcs is not,
    # and a graph whose final state is reachable only after 2 frames refuses length 1.
    g = _tiny()
    g.add_node(2, final=0.0)
    g.remove_edge(0, 1)
    g.add_edge(0, 3, emission=0)
    g.add_edge(3, 2, emission=0)
    g.add_edge(2, 2, emission=1)
    g.nodes[1].clear()
    two_step = Graph.from_networkx(g)
    with pytest.raises(ValueError, match=r"no path .* for sequences \[1\]"):
        graph_viterbi(good, two_step, torch.tensor([3, 1]))


def test_half_precision_scores_are_promoted():
    graph = Graph.from_networkx(_tiny())
    scores = torch.randn(2, 4, 2)
    path = graph_viterbi(scores.half(), graph)
    assert path.scores.dtype == torch.float32
    assert torch.equal(path.arcs, graph_viterbi(scores.half().float(), graph).arcs)
