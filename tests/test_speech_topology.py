"""Decoding graphs of word HMMs and grammars against an enumeration of their paths."""

from __future__ import annotations

import math

import pytest
import torch
from speech_oracles import check_graph_against_paths, enumerate_paths

from hybrid.speech.decoder import align
from hybrid.speech.graph import decoding_graph
from hybrid.speech.topology import (
    SILENCE,
    Topology,
    estimate_self_loops,
    isolated_grammar,
    loop_grammar,
    phrase_grammar,
    task_grammar,
    transcript_grammar,
)
from hybrid.structured import graph_viterbi

TOPOLOGY = Topology(("one", "two"), word_states=2, silence_states=1)


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
    check_graph_against_paths(TOPOLOGY, GRAMMARS[name](), frames, seed=frames)


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
