"""Decoding graphs of word HMMs and grammars against an enumeration of their paths."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hybrid.speech.decoder import align
from hybrid.speech.topology import (
    SILENCE,
    Topology,
    decoding_graph,
    estimate_self_loops,
    isolated_grammar,
    loop_grammar,
    phrase_grammar,
    task_grammar,
    transcript_grammar,
)
from hybrid.structured import graph_log_likelihood, graph_viterbi

TOPOLOGY = Topology(("one", "two"), word_states=2, silence_states=1)


def _durations(states: int, frames: int):
    """Every way to give each of ``states`` states at least one of at most ``frames`` frames."""
    for total in range(states, frames + 1):
        for cuts in itertools.combinations(range(1, total), states - 1):
            bounds = (0, *cuts, total)
            yield [b - a for a, b in itertools.pairwise(bounds)]


def enumerate_paths(grammar, topology, loops, frames):
    """Every path of ``frames`` frames through the grammar's units, from the HMM definition:
    (pdf per frame, transition log weight, words). Independent of the graph compiler."""
    log_stay = torch.log(loops).tolist()
    log_leave = torch.log1p(-loops).tolist()

    def walk(junction, left, weight, pdfs, words, first):
        data = grammar.nodes[junction]
        if left == 0:
            if "final" in data and not first:
                yield pdfs, weight + data["final"], words
            return
        for _, target, edge in grammar.out_edges(junction, data=True):
            unit_pdfs = topology.pdfs(edge["unit"])
            entry = edge.get("weight", 0.0) + (data["start"] if first else 0.0)
            for durations in _durations(len(unit_pdfs), left):
                inside = sum(
                    (d - 1) * log_stay[p] for p, d in zip(unit_pdfs, durations, strict=True)
                )
                steps = sum(log_leave[p] for p in unit_pdfs[:-1])
                spent = [p for p, d in zip(unit_pdfs, durations, strict=True) for _ in range(d)]
                said = words if edge["unit"] == SILENCE else (*words, edge["unit"])
                yield from walk(
                    target,
                    left - sum(durations),
                    weight + entry + inside + steps + log_leave[unit_pdfs[-1]],
                    pdfs + spent,
                    said,
                    False,
                )

    starts = [j for j, d in grammar.nodes(data=True) if "start" in d]
    for junction in starts:
        yield from walk(junction, frames, 0.0, [], (), True)


GRAMMARS = {
    "transcript": lambda: transcript_grammar([1, 0]),
    "isolated": lambda: isolated_grammar(2),
    "loop": lambda: loop_grammar(2, word_penalty=-0.7),
    "unigram": lambda: loop_grammar(2, word_penalty=-0.2, log_probs=[-0.5, -1.2], end=-0.9),
    "phrases": lambda: phrase_grammar([[1, 0], [0], [1, 1]], word_penalty=-0.3),
}


@pytest.mark.parametrize("name", list(GRAMMARS))
@pytest.mark.parametrize("frames", [4, 6])
def test_graph_paths_equal_the_hmm_definition(name, frames):
    generator = torch.Generator().manual_seed(frames)
    loops = torch.rand(TOPOLOGY.num_pdfs, generator=generator, dtype=torch.float64) * 0.8 + 0.1
    grammar = GRAMMARS[name]()
    graph = decoding_graph(TOPOLOGY, grammar, loops)
    scores = torch.randn(1, frames, TOPOLOGY.num_pdfs, generator=generator, dtype=torch.float64)
    paths = [
        (weight + sum(float(scores[0, t, p]) for t, p in enumerate(pdfs)), pdfs, words)
        for pdfs, weight, words in enumerate_paths(grammar, TOPOLOGY, loops, frames)
    ]
    assert paths, "the oracle found no path"
    total = torch.logsumexp(torch.tensor([p[0] for p in paths], dtype=torch.float64), 0)
    torch.testing.assert_close(graph_log_likelihood(scores, graph)[0], total)
    best = max(paths, key=lambda p: p[0])
    found = graph_viterbi(scores, graph)
    assert found.scores[0].item() == pytest.approx(best[0], abs=1e-9)
    assert found.emissions[0].tolist() == best[1]
    assert tuple(found.labels[0, : found.label_lengths[0]].tolist()) == best[2]


def test_every_transcript_path_says_the_transcript_and_isolated_says_one_word():
    loops = torch.full((TOPOLOGY.num_pdfs,), 0.5)
    words = [1, 1, 0]
    for _, _, said in enumerate_paths(transcript_grammar(words), TOPOLOGY, loops, 8):
        assert said == tuple(words)
    scores = torch.randn(5, 12, TOPOLOGY.num_pdfs)
    path = graph_viterbi(scores, decoding_graph(TOPOLOGY, isolated_grammar(2), loops))
    assert (path.label_lengths == 1).all()


def test_align_follows_the_transcript():
    generator = torch.Generator().manual_seed(3)
    scores = [torch.randn(t, TOPOLOGY.num_pdfs, generator=generator) for t in (9, 14)]
    transcripts = [[0], [1, 0]]
    alignments = align(scores, transcripts, TOPOLOGY)
    for alignment, words, frames in zip(alignments, transcripts, scores, strict=True):
        assert alignment.shape == (len(frames),)
        word_of = TOPOLOGY.pdf_words()[alignment]
        spoken = [
            int(w) for i, w in enumerate(word_of) if w >= 0 and (i == 0 or w != word_of[i - 1])
        ]
        assert spoken == words
    with pytest.raises(ValueError, match="utterance 0 .3 frames. cannot be aligned to its 2 words"):
        align([torch.zeros(3, TOPOLOGY.num_pdfs)], [[0, 1]], TOPOLOGY)


def test_estimate_self_loops_counts_visits():
    alignments = [torch.tensor([0, 0, 0, 1, 1, 4]), torch.tensor([0, 1, 1, 1, 4, 4])]
    loops = estimate_self_loops(alignments, TOPOLOGY.num_pdfs, floor=0.0, ceiling=1.0)
    # pdf 0: 4 frames in 2 visits; pdf 1: 5 frames, 2 visits; pdf 4: 3 frames, 2 visits.
    expected = torch.tensor([1 - 2 / 4, 1 - 2 / 5, 0.5, 0.5, 1 - 2 / 3])
    torch.testing.assert_close(loops, expected)
    assert estimate_self_loops(alignments, TOPOLOGY.num_pdfs).max() <= 0.95


def test_topology_numbering_and_errors():
    topology = Topology(("a", "b", "c"), word_states=3, silence_states=2)
    assert topology.num_pdfs == 11
    assert topology.pdfs(1) == [3, 4, 5] and topology.pdfs(SILENCE) == [9, 10]
    assert topology.pdf_words().tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1]
    with pytest.raises(ValueError, match="unit must be a word index"):
        topology.pdfs(3)
    with pytest.raises(ValueError, match="word_states must be >= 1"):
        Topology(("a",), word_states=0)
    with pytest.raises(ValueError, match="words must hold at least one word"):
        transcript_grammar([])
    with pytest.raises(ValueError, match="self_loop must hold probabilities"):
        decoding_graph(topology, isolated_grammar(3), torch.full((11,), 1.0))
    with pytest.raises(ValueError, match=r"self_loop must have shape \(11,\)"):
        decoding_graph(topology, isolated_grammar(3), torch.full((4,), 0.5))


def test_word_penalty_adds_per_word():
    loops = torch.full((TOPOLOGY.num_pdfs,), 0.5)
    scores = torch.randn(1, 10, TOPOLOGY.num_pdfs, dtype=torch.float64)
    plain = graph_viterbi(scores, decoding_graph(TOPOLOGY, loop_grammar(2), loops))
    huge = graph_viterbi(scores, decoding_graph(TOPOLOGY, loop_grammar(2, -1e3), loops))
    assert huge.label_lengths[0] == 0  # silence only: no word is worth 1000
    assert plain.scores[0] >= huge.scores[0] - 1e-9
    assert math.isfinite(float(huge.scores[0]))


def test_a_phrase_grammar_says_only_its_phrases():
    loops = torch.full((TOPOLOGY.num_pdfs,), 0.5)
    phrases = {(1, 0), (0,), (1, 1)}
    said = {w for _, _, w in enumerate_paths(phrase_grammar(sorted(phrases)), TOPOLOGY, loops, 7)}
    assert said == phrases  # 7 frames fit each phrase, with or without silence


def test_task_grammar_builds_each_form_and_refuses_others():
    unigram = {"unigram": [-0.5, -1.2], "end": -0.9}
    for grammar, expected in (
        ("isolated", isolated_grammar(2)),
        ("loop", loop_grammar(2, -0.4)),
        ({"phrases": [[1, 0]]}, phrase_grammar([[1, 0]], -0.4)),
        (unigram, loop_grammar(2, -0.4, [-0.5, -1.2], -0.9)),
    ):
        built = task_grammar(grammar, 2, -0.4)
        assert sorted(map(repr, built.edges(data=True))) == sorted(
            map(repr, expected.edges(data=True))
        )
        assert dict(built.nodes(data=True)) == dict(expected.nodes(data=True))
    for bad in ("strings", {"phrases": [[0]], "x": 1}, {"unigram": [0.0]}):
        with pytest.raises(ValueError, match="grammar must be"):
            task_grammar(bad, 2)
    with pytest.raises(ValueError, match="log_probs must hold one log-probability per word"):
        loop_grammar(2, log_probs=[-1.0])
    with pytest.raises(ValueError, match="phrases must hold at least one phrase"):
        phrase_grammar([[0], []])
