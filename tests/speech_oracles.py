"""Decoding graphs of grammars over word or phone HMMs, against an enumeration of their paths
from the HMM definition (independent of the graph compiler)."""

from __future__ import annotations

import itertools

import pytest
import torch

from hybrid.speech.topology import SILENCE, decoding_graph
from hybrid.structured import graph_log_likelihood, graph_viterbi


def durations(states: int, frames: int):
    """Every way to give each of ``states`` states at least one of at most ``frames`` frames."""
    for total in range(states, frames + 1):
        for cuts in itertools.combinations(range(1, total), states - 1):
            bounds = (0, *cuts, total)
            yield [b - a for a, b in itertools.pairwise(bounds)]


def enumerate_paths(grammar, topology, loops, frames):
    """Every path of ``frames`` frames through the grammar's units: (pdf per frame, log
    weight, words), each chain of a unit (`topology.chains`: a pronunciation) and each path of
    epsilon edges (unit ``None``) its own path; a path ends where a unit ends at a final
    junction."""
    log_stay = torch.log(loops).tolist()
    log_leave = torch.log1p(-loops).tolist()

    def walk(junction, left, weight, pdfs, words, by_unit):
        data = grammar.nodes[junction]
        if left == 0:
            if "final" in data and by_unit:
                yield pdfs, weight + data["final"], words
            return
        for _, target, edge in grammar.out_edges(junction, data=True):
            if edge["unit"] is None:
                step = edge.get("weight", 0.0)
                yield from walk(target, left, weight + step, pdfs, words, False)
                continue
            said = words if edge["unit"] == SILENCE else (*words, edge["unit"])
            for chain, chain_weight in topology.chains(edge["unit"]):
                for spans in durations(len(chain), left):
                    pairs = list(zip(chain, spans, strict=True))
                    inside = sum((d - 1) * log_stay[p] for p, d in pairs)
                    steps = sum(log_leave[p] for p in chain)
                    spent = [p for p, d in pairs for _ in range(d)]
                    added = edge.get("weight", 0.0) + chain_weight + inside + steps
                    yield from walk(
                        target, left - sum(spans), weight + added, pdfs + spent, said, True
                    )

    for junction, data in grammar.nodes(data=True):
        if "start" in data:
            yield from walk(junction, frames, data["start"], [], (), False)


def check_graph_against_paths(topology, grammar, frames: int, seed: int) -> None:
    """The compiled graph's log-sum over paths and its best path (score, words) on random
    frame scores equal the enumeration's, with random self-loops."""
    generator = torch.Generator().manual_seed(seed)
    loops = torch.rand(topology.num_pdfs, generator=generator, dtype=torch.float64) * 0.8 + 0.1
    graph = decoding_graph(topology, grammar, loops)
    scores = torch.randn(1, frames, topology.num_pdfs, generator=generator, dtype=torch.float64)
    paths = [
        (weight + sum(float(scores[0, t, p]) for t, p in enumerate(pdfs)), pdfs, words)
        for pdfs, weight, words in enumerate_paths(grammar, topology, loops, frames)
    ]
    assert paths, "the oracle found no path"
    total = torch.logsumexp(torch.tensor([p[0] for p in paths], dtype=torch.float64), 0)
    torch.testing.assert_close(graph_log_likelihood(scores, graph)[0], total)
    best = max(paths, key=lambda p: p[0])
    found = graph_viterbi(scores, graph)
    assert found.scores[0].item() == pytest.approx(best[0], abs=1e-9)
    assert found.emissions[0].tolist() == best[1]
    assert tuple(found.labels[0, : found.label_lengths[0]].tolist()) == best[2]
