"""Decoding graphs of grammars over word or phone HMMs, against an enumeration of their paths
from the HMM definition (independent of the graph compiler)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hybrid.speech.graph import decoding_graph
from hybrid.speech.topology import SILENCE
from hybrid.speech.tree import WORD_EDGE
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
    junction. With cross-word contexts, a word's pdfs are its pronunciation's phones in the
    context of the last phone of the word said before it and the first of the word said
    after (`WORD_EDGE` beside silence and the ends), known once the path is complete."""
    log_stay = torch.log(loops).tolist()
    log_leave = torch.log1p(-loops).tolist()

    def walk(junction, left, weight, said, by_unit):
        data = grammar.nodes[junction]
        if left == 0:
            if "final" in data and by_unit:
                yield said, weight + data["final"]
            return
        for _, target, edge in grammar.out_edges(junction, data=True):
            if edge["unit"] is None:
                step = edge.get("weight", 0.0)
                yield from walk(target, left, weight + step, said, False)
                continue
            for c, (chain, chain_weight) in enumerate(topology.chains(edge["unit"])):
                for spans in durations(len(chain), left):
                    added = edge.get("weight", 0.0) + chain_weight
                    segment = (edge["unit"], c, spans)
                    yield from walk(
                        target, left - sum(spans), weight + added, [*said, segment], True
                    )

    for junction, data in grammar.nodes(data=True):
        if "start" in data:
            for said, weight in walk(junction, frames, data["start"], [], False):
                pdfs, words = [], tuple(u for u, _, _ in said if u != SILENCE)
                for chain, (_, _, spans) in zip(_chains(topology, said), said, strict=True):
                    pairs = list(zip(chain, spans, strict=True))
                    weight += sum((d - 1) * log_stay[p] + log_leave[p] for p, d in pairs)
                    pdfs += [p for p, d in pairs for _ in range(d)]
                yield pdfs, weight, words


def _chains(topology, said):
    """The pdfs of each ``(unit, pronunciation, spans)`` of a path, in order."""

    def phones(k):
        unit, c, _ = said[k]
        return topology.lexicon.pronunciations(topology.words[unit])[c].phones

    def beside(k, end):
        inside = 0 <= k < len(said) and said[k][0] != SILENCE
        return phones(k)[end] if inside else WORD_EDGE

    chains = []
    for k, (unit, c, _) in enumerate(said):
        if unit == SILENCE or not getattr(topology, "cross_word", False):
            chains.append(topology.chains(unit)[c][0])
        else:
            chains.append(topology.phone_chain(phones(k), beside(k - 1, -1), beside(k + 1, 0)))
    return chains


def check_graph_against_paths(
    topology, grammar, frames: int, seed: int, determinize: bool = False
) -> None:
    """The compiled graph's log-sum over paths and its best path (score, words) on random
    frame scores equal the enumeration's, with random self-loops.

    A determinized graph keeps, of the paths it merges, only the best: there, every pair of
    a frame sequence of pdfs and a word sequence has the best weight of the enumeration's
    paths that say it, and no other pair has a path."""
    generator = torch.Generator().manual_seed(seed)
    loops = torch.rand(topology.num_pdfs, generator=generator, dtype=torch.float64) * 0.8 + 0.1
    graph = decoding_graph(topology, grammar, loops, determinize=determinize)
    scores = torch.randn(1, frames, topology.num_pdfs, generator=generator, dtype=torch.float64)
    enumerated = list(enumerate_paths(grammar, topology, loops, frames))
    paths = [
        (weight + sum(float(scores[0, t, p]) for t, p in enumerate(pdfs)), pdfs, words)
        for pdfs, weight, words in enumerated
    ]
    assert paths, "the oracle found no path"
    if determinize:
        expected: dict[tuple, float] = {}
        for pdfs, weight, words in enumerated:
            key = (tuple(pdfs), words)
            expected[key] = max(expected.get(key, -math.inf), weight)
        found = best_weights(graph, frames)
        assert found.keys() == expected.keys()
        for key, weight in expected.items():
            assert found[key] == pytest.approx(weight, abs=1e-9), key
    else:
        total = torch.logsumexp(torch.tensor([p[0] for p in paths], dtype=torch.float64), 0)
        torch.testing.assert_close(graph_log_likelihood(scores, graph)[0], total)
    best = max(paths, key=lambda p: p[0])
    found = graph_viterbi(scores, graph)
    assert found.scores[0].item() == pytest.approx(best[0], abs=1e-9)
    assert found.emissions[0].tolist() == best[1]
    assert tuple(found.labels[0, : found.label_lengths[0]].tolist()) == best[2]


def assert_same_word_starts(found, expected) -> None:
    """Two `Alignment` of the same pdfs mark the same word starts, but where a start slides
    over frames that all read one pdf, the last state of the word before and the first of
    the word begun alike: those placements score the same, and either is a best path."""
    assert found.pdfs.tolist() == expected.pdfs.tolist()
    pdfs = found.pdfs.tolist()
    ours = found.word_starts.nonzero().flatten().tolist()
    theirs = expected.word_starts.nonzero().flatten().tolist()
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs, strict=True):
        low, high = sorted((a, b))
        assert low == high or len(set(pdfs[max(low - 1, 0) : high + 1])) == 1, (ours, theirs)


def graph_paths(graph, frames: int):
    """Every path of ``frames`` arcs through a compiled graph, found by walking its arcs:
    ``(pdfs, log weight, labels)``."""
    src, dst = graph.src.tolist(), graph.dst.tolist()
    emission, weight, label = graph.emission.tolist(), graph.weight.tolist(), graph.label.tolist()
    offsets, final = graph.out_offsets.tolist(), graph.final.tolist()

    def walk(state, weight_so_far, pdfs, labels):
        if len(pdfs) == frames:
            if final[state] > -math.inf:
                yield tuple(pdfs), weight_so_far + final[state], labels
            return
        for a in range(offsets[state], offsets[state + 1]):
            assert src[a] == state
            written = (*labels, label[a]) if label[a] >= 0 else labels
            yield from walk(dst[a], weight_so_far + weight[a], [*pdfs, emission[a]], written)

    for state, start in enumerate(graph.start.tolist()):
        if start > -math.inf:
            yield from walk(state, start, [], ())


def best_weights(graph, frames: int) -> dict[tuple, float]:
    """``(pdf per frame, labels) -> best weight`` over `graph_paths`."""
    best: dict[tuple, float] = {}
    for pdfs, weight, labels in graph_paths(graph, frames):
        best[pdfs, labels] = max(best.get((pdfs, labels), -math.inf), weight)
    return best


# A back-off bigram in which every listed bigram beats backing off to its unigram, so that
# the best path of each word sequence is its model probability.
BIGRAM = """\\data\\
ngram 1=5
ngram 2=5

\\1-grams:
-0.8\t</s>
-99\t<s>\t-0.3
-0.4\ta\t-0.2
-0.6\tb\t-0.25
-1.2\tc\t-0.1

\\2-grams:
-0.1\t<s> a
-0.2\ta b
-0.3\tb </s>
-0.15\tb a
-0.05\tc </s>

\\end\\
"""
