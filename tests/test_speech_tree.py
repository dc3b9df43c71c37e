"""Phonetic decision trees and the tied triphone topology: statistics against direct
grouping, every split against a brute-force search over questions with Gaussians fitted to
the frames themselves, and the composed graphs of triphones against their paths."""

from __future__ import annotations

import math

import networkx as nx
import pytest
import torch
from realdata import real_corpus
from speech_oracles import BIGRAM, assert_same_word_starts, check_graph_against_paths

from hybrid.ctc.lm import read_arpa
from hybrid.speech.corpus import FeatureConfig, extract, isolated_utterances
from hybrid.speech.decoder import (
    Alignment,
    decode,
    decode_paths,
    frame_scores,
    phones_in_context,
    word_spans,
)
from hybrid.speech.fsdd import DIGITS, read_fsdd
from hybrid.speech.gmm import train_monophones, train_triphones
from hybrid.speech.graph import decoding_graph
from hybrid.speech.lexicon import Lexicon, Pronunciation, cmudict_lexicon
from hybrid.speech.topology import (
    SILENCE,
    PhoneTopology,
    Topology,
    isolated_grammar,
    loop_grammar,
    ngram_grammar,
    phrase_grammar,
    topology_from_dict,
    transcript_grammar,
)
from hybrid.speech.tree import (
    WORD_EDGE,
    ContextStatistics,
    PhoneticTree,
    context_statistics,
    grow_tree,
    phonetic_questions,
    word_contexts,
)
from hybrid.structured import Graph, graph_viterbi

PHONES = ("AA", "IY", "M", "N", "S")
CONTEXTS = (*PHONES, WORD_EDGE)


def test_questions_are_phonetic_classes_then_single_phones_then_the_word_edge():
    questions = phonetic_questions(["aa", "iy", "m", "n", "s"])
    by_name = {q.name: q.phones for q in questions}
    assert by_name["nasal"] == {"m", "n"}  # matched without regard to case
    assert by_name["vowel"] == {"aa", "iy"}
    assert by_name["word-edge"] == {WORD_EDGE}
    sets = [q.phones for q in questions]
    assert len(sets) == len(set(sets)), "a class that restricts to an earlier one's phones"
    assert all(frozenset([p]) in sets for p in ["aa", "iy", "m", "n", "s"])
    custom = phonetic_questions(["p", "q"], {"stops": ["p", "q", "x"], "empty": ["z"]})
    assert [q.name for q in custom] == ["stops", "is-p", "is-q", "word-edge"]


def test_word_contexts_are_the_neighbours_inside_the_word():
    assert word_contexts(["S", "IH", "K"]) == [
        (WORD_EDGE, "IH"),
        ("S", "K"),
        ("IH", WORD_EDGE),
    ]
    assert word_contexts(["OW"]) == [(WORD_EDGE, WORD_EDGE)]


def _synthetic(seed: int, utterances: int = 40):
    """Frames whose mean depends on the phone state and on whether the right neighbour is a
    nasal, as ``(features, phones in context, states)`` for `context_statistics`."""
    generator = torch.Generator().manual_seed(seed)
    features, said, states = [], [], []
    for _ in range(utterances):
        frames, phones, state, t = [], [], [], 0
        for _ in range(int(torch.randint(2, 6, (1,), generator=generator))):
            phone = PHONES[int(torch.randint(len(PHONES), (1,), generator=generator))]
            left, right = (
                CONTEXTS[int(i)] for i in torch.randint(len(CONTEXTS), (2,), generator=generator)
            )
            length = int(torch.randint(2, 7, (1,), generator=generator))
            shift = 3.0 if right in ("M", "N") else 0.0
            mean = PHONES.index(phone) + shift
            frames.append(mean + torch.randn(length, 2, generator=generator, dtype=torch.float64))
            phones.append((phone, left, right, t, t + length))
            state += [0] * (length // 2) + [1] * (length - length // 2)
            t += length
        features.append(torch.cat(frames))
        said.append(phones)
        states.append(torch.tensor(state))
    return features, said, states


def _frames_by_key(features, said, states):
    grouped = {}
    for x, phones, state in zip(features, said, states, strict=True):
        for phone, left, right, first, end in phones:
            for t in range(first, end):
                grouped.setdefault((phone, int(state[t]), left, right), []).append(x[t])
    return {key: torch.stack(rows) for key, rows in grouped.items()}


def test_context_statistics_equal_direct_grouping():
    features, said, states = _synthetic(0)
    statistics = context_statistics(features, said, states)
    grouped = _frames_by_key(features, said, states)
    assert set(statistics.keys) == set(grouped)
    for k, key in enumerate(statistics.keys):
        torch.testing.assert_close(
            statistics.counts[k], torch.tensor(len(grouped[key]), dtype=torch.float64)
        )
        torch.testing.assert_close(statistics.sums[k], grouped[key].sum(0))
        torch.testing.assert_close(statistics.squares[k], (grouped[key] ** 2).sum(0))


def _gaussian_log_likelihood(frames: torch.Tensor, floor: float) -> float:
    """The frames' log-likelihood under the diagonal Gaussian fitted to them."""
    variance = frames.var(0, unbiased=False).clamp_min(floor)
    normal = torch.distributions.Normal(frames.mean(0), variance.sqrt())
    return float(normal.log_prob(frames).sum())


def _brute_force_best(grouped, keys, questions, min_count, floor, ceiling=math.inf):
    """Over every side and question, the split of ``keys`` with the largest gain up to
    ``ceiling``, computed from the frames themselves: ``(gain, set of keys answering yes)``."""
    whole = _gaussian_log_likelihood(torch.cat([grouped[k] for k in keys]), floor)
    best = None
    for side in (2, 3):
        for question in questions:
            yes = [k for k in keys if k[side] in question.phones]
            no = [k for k in keys if k[side] not in question.phones]
            if not yes or not no:
                continue
            yes_frames = torch.cat([grouped[k] for k in yes])
            no_frames = torch.cat([grouped[k] for k in no])
            if len(yes_frames) < min_count or len(no_frames) < min_count:
                continue
            gain = (
                _gaussian_log_likelihood(yes_frames, floor)
                + _gaussian_log_likelihood(no_frames, floor)
                - whole
            )
            if gain <= ceiling and (best is None or gain > best[0]):
                best = (gain, frozenset(yes))
    return best


def _keys_under(tree: PhoneticTree, node: dict, keys) -> dict:
    """Which of ``keys`` reach each leaf below ``node`` (by the tree's own answers)."""
    leaves = {}
    for key in keys:
        at = node
        while "pdf" not in at:
            asked = key[2] if at["side"] == "left" else key[3]
            at = at["yes"] if asked in at["phones"] else at["no"]
        leaves.setdefault(at["pdf"], set()).add(key)
    return leaves


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_split_is_the_best_question_by_brute_force(seed):
    features, said, states = _synthetic(seed)
    statistics = context_statistics(features, said, states)
    grouped = _frames_by_key(features, said, states)
    questions = phonetic_questions(PHONES)
    tree = grow_tree(statistics, PHONES, 2, questions, max_leaves=40, min_count=8)
    assert tree.num_splits > 0
    for root_index, root in enumerate(tree.roots):
        phone, state = PHONES[root_index // 2], root_index % 2
        keys = [k for k in grouped if k[0] == phone and k[1] == state]
        stack = [(root, keys, math.inf)]
        while stack:
            node, here, ceiling = stack.pop()
            if "pdf" in node:
                continue
            gain, yes = _brute_force_best(grouped, here, questions, 8, 1e-3, ceiling)
            assert node["gain"] == pytest.approx(gain, rel=1e-6, abs=1e-6)
            side = 2 if node["side"] == "left" else 3
            chosen = {k for k in here if k[side] in node["phones"]}
            assert node["count"] == sum(len(grouped[k]) for k in here)
            if chosen != yes:  # another question with the same gain
                assert node["gain"] == pytest.approx(gain, rel=1e-9)
            stack += [
                (node["yes"], sorted(chosen), node["gain"]),
                (node["no"], sorted(set(here) - chosen), node["gain"]),
            ]


def test_the_tree_finds_the_context_that_shifts_the_frames_and_respects_its_limits():
    features, said, states = _synthetic(3, utterances=80)
    statistics = context_statistics(features, said, states)
    grouped = _frames_by_key(features, said, states)
    questions = phonetic_questions(PHONES)
    names = {frozenset(q.phones): q.name for q in questions}
    tree = grow_tree(statistics, PHONES, 2, questions, max_leaves=10 + 5, min_count=20)
    assert tree.num_leaves == 15  # the limit: 10 roots and 5 splits
    tops = [root for root in tree.roots if "pdf" not in root]
    assert tops and all(t["side"] == "right" and t["question"] == "nasal" for t in tops)
    for node, _ in tree.splits():  # every question is a phonetic class, by name
        assert names[frozenset(node["phones"])] == node["question"]
    for r, root in enumerate(tree.roots):
        keys = [k for k in grouped if (PHONES.index(k[0]), k[1]) == divmod(r, 2)]
        for leaf_keys in _keys_under(tree, root, keys).values():
            assert sum(len(grouped[k]) for k in leaf_keys) >= 20
    unlimited = grow_tree(statistics, PHONES, 2, questions, max_leaves=1000, min_count=20)
    assert 15 < unlimited.num_leaves < 1000  # stopped by the counts and gains alone
    assert all(node["gain"] > 0 for node, _ in unlimited.splits())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gains_fall_down_every_path_and_the_leaf_limit_is_a_gain_threshold(seed):
    """Trees fitting noise (no gain threshold, few frames per leaf) are where greedy splitting
    alone lets a subset's split gain more than its parent's; the ceiling keeps every path's
    gains non-increasing, so the queue splits in non-increasing order of gain and a tree cut
    at m splits is the tree grown down to the gain of its m-th split."""
    features, said, states = _synthetic(seed, utterances=60)
    statistics = context_statistics(features, said, states)
    questions = phonetic_questions(PHONES)
    roots = len(PHONES) * 2
    full = grow_tree(statistics, PHONES, 2, questions, max_leaves=1000, min_count=2)
    assert full.num_splits > 40
    for node, parent in full.splits():
        if parent is not None:
            assert node["gain"] <= parent["gain"], (node["question"], parent["question"])
    gains = sorted((node["gain"] for node, _ in full.splits()), reverse=True)
    for m in (5, 20, full.num_splits // 2):
        assert gains[m - 1] > gains[m]  # no tie at the cut
        cut = grow_tree(statistics, PHONES, 2, questions, max_leaves=roots + m, min_count=2)
        threshold = grow_tree(
            statistics, PHONES, 2, questions, max_leaves=1000, min_count=2, min_gain=gains[m]
        )
        assert cut.num_splits == m
        assert cut.to_dict() == threshold.to_dict()


def test_monophone_tree_numbers_phone_states_and_answers_any_context():
    tree = PhoneticTree.monophones(("x", "y"), 3)
    assert tree.num_leaves == 6 and tree.num_splits == 0
    assert [tree.pdf("y", s, "x", WORD_EDGE) for s in range(3)] == [3, 4, 5]
    again = PhoneticTree.from_dict(tree.to_dict())
    assert again.to_dict() == tree.to_dict()


def test_tree_errors_are_named():
    statistics = ContextStatistics(
        [("Q", 0, WORD_EDGE, WORD_EDGE)],
        torch.ones(1, dtype=torch.float64),
        torch.zeros(1, 2, dtype=torch.float64),
        torch.zeros(1, 2, dtype=torch.float64),
    )
    questions = phonetic_questions(["x"])
    with pytest.raises(ValueError, match="max_leaves must be at least the 2 phone states"):
        grow_tree(statistics, ["x"], 2, questions, max_leaves=1)
    with pytest.raises(ValueError, match="statistics name the state 0 of 'Q'"):
        grow_tree(statistics, ["x"], 2, questions, max_leaves=4)
    with pytest.raises(ValueError, match="questions must hold at least one question"):
        grow_tree(statistics, ["x"], 2, [], max_leaves=4)
    with pytest.raises(ValueError, match="roots must hold 4 trees"):
        PhoneticTree(["x", "y"], 2, [{}])


# -- tied triphones in topologies and graphs -------------------------------------------------

LEXICON = Lexicon(
    {
        "a": [Pronunciation(("x", "y"), math.log(0.75)), Pronunciation(("y",), math.log(0.25))],
        "b": [("y", "x")],
    }
)


def _split(side: str, phones, yes: dict, no: dict) -> dict:
    return {
        "side": side,
        "question": "q",
        "phones": list(phones),
        "gain": 1.0,
        "count": 1.0,
        "yes": yes,
        "no": no,
    }


# x: right neighbour y? -> pdf 0, else 1. y: at the word's start? then right neighbour x?
# -> 2, else 3; inside the word -> 4. Silence is pdf 5.
TREE = PhoneticTree(
    ("x", "y"),
    1,
    [
        _split("right", ["y"], {}, {}),
        _split("left", [WORD_EDGE], _split("right", ["x"], {}, {}), {}),
    ],
)
TRIPHONES = PhoneTopology(("a", "b"), LEXICON, phone_states=1, silence_states=1, tree=TREE)


def test_triphone_topology_spells_each_phone_in_its_word_context():
    assert TRIPHONES.num_pdfs == 6 and TRIPHONES.tree.num_splits == 3
    # a = x(#, y) y(x, #) or y(#, #); b = y(#, x) x(y, #)
    assert TRIPHONES.chains(0) == [([0, 4], math.log(0.75)), ([3], math.log(0.25))]
    assert TRIPHONES.chains(1) == [([2, 1], 0.0)]
    assert TRIPHONES.chains(SILENCE) == [([5], 0.0)]
    assert TRIPHONES.pdf_phones().tolist() == [0, 0, 1, 1, 1, -1]
    assert TRIPHONES.phone_pdfs("y") == [2, 3, 4]
    again = topology_from_dict(TRIPHONES.to_dict())
    assert [again.chains(u) for u in (0, 1, SILENCE)] == [
        TRIPHONES.chains(u) for u in (0, 1, SILENCE)
    ]
    with pytest.raises(ValueError, match="tree: expected roots for the 2 states"):
        PhoneTopology(("a", "b"), LEXICON, phone_states=2, tree=TREE)


CROSS_WORD = PhoneTopology(
    ("a", "b"), LEXICON, phone_states=1, silence_states=1, tree=TREE, cross_word=True
)


def test_cross_word_triphones_read_the_neighbouring_words_phones():
    # b = y x after a said as "x y": y's left neighbour is a's y, not the word's edge
    assert CROSS_WORD.phone_chain(("y", "x"), "y", WORD_EDGE) == [4, 1]
    assert CROSS_WORD.phone_chain(("y", "x")) == TRIPHONES.chains(1)[0][0] == [2, 1]
    # a said as "y" before b: its right neighbour is b's y
    assert CROSS_WORD.phone_chain(("y",), WORD_EDGE, "x") == [2]
    assert CROSS_WORD.chains(0) == TRIPHONES.chains(0)  # alone: the edges on both sides
    assert topology_from_dict(CROSS_WORD.to_dict()).cross_word
    assert not topology_from_dict(TRIPHONES.to_dict()).cross_word


def _grammar(name: str):
    if name == "loop":
        return loop_grammar(2, word_penalty=-0.3)
    if name == "transcript":
        return transcript_grammar([1, 0])
    if name == "phrases":
        return phrase_grammar([[0, 1], [1], [1, 1, 0]], word_penalty=0.2)
    if name == "isolated":
        return isolated_grammar(2)
    return ngram_grammar(read_arpa(BIGRAM), ["a", "b"])  # back-off (epsilon) edges


@pytest.mark.parametrize("grammar", ["loop", "transcript", "phrases", "isolated", "ngram"])
@pytest.mark.parametrize("frames", [3, 5])
@pytest.mark.parametrize("topology", ["word-internal", "cross-word"])
@pytest.mark.parametrize("determinize", [False, True], ids=["by-word", "determinized"])
def test_triphone_graph_paths_equal_the_definition(grammar, frames, topology, determinize):
    """Every path of the compiled graph (H∘C∘L∘G) against the enumeration of every
    sentence's pronunciations and durations, each word's pdfs read off its context there;
    built by word, or through det(L∘G), where a's pronunciation "y" begins b's "y x"."""
    chosen = TRIPHONES if topology == "word-internal" else CROSS_WORD
    check_graph_against_paths(chosen, _grammar(grammar), frames, frames, determinize)


# Words that share first phones with other weights (a and c begin with x; b, d and a's "y"
# with y), homophones (b and d) and a pronunciation that begins another (a's "y", b's "y x").
SHARING = Lexicon(
    {
        "a": [Pronunciation(("x", "y"), math.log(0.75)), Pronunciation(("y",), math.log(0.25))],
        "b": [("y", "x")],
        "c": [("x", "x", "y")],
        "d": [("y", "x")],
    }
)


def _sharing_grammar(name: str):
    if name == "loop":
        return loop_grammar(4, -0.3, [math.log(p) for p in (0.4, 0.3, 0.2, 0.1)], end=-0.7)
    if name == "phrases":
        return phrase_grammar([[0, 1], [2, 3], [0, 3, 2], [3]], word_penalty=0.2)
    # an epsilon edge into a junction whose final weight beats the one it leaves: a path
    # must not end through it (nor through the back-off chain 1 -> 2 -> 0)
    g = nx.MultiDiGraph()
    g.add_node(0, start=0.0, final=-3.0)
    g.add_node(1, final=-2.0)
    g.add_node(2)
    g.add_edge(0, 1, unit=0, weight=-0.1)
    g.add_edge(0, 1, unit=2, weight=-0.4)
    g.add_edge(1, 1, unit=SILENCE)
    g.add_edge(1, 2, unit=None, weight=-0.5)
    g.add_edge(2, 0, unit=None, weight=-0.2)
    g.add_edge(2, 1, unit=3, weight=-0.3)
    g.add_edge(1, 0, unit=1, weight=-0.6)
    g.add_node(3, final=-0.5)  # a also ends here, worse on the way and better at the end
    g.add_edge(0, 3, unit=0, weight=-1.0)
    return g


@pytest.mark.parametrize("grammar", ["loop", "phrases", "epsilon"])
@pytest.mark.parametrize("frames", [4, 5])
@pytest.mark.parametrize("cross_word", [False, True], ids=["word-internal", "cross-word"])
def test_determinized_graph_paths_equal_the_definition(grammar, frames, cross_word):
    """det(L∘G) with words that share first phones under other weights, homophones, a
    pronunciation that begins another and epsilon edges: every frame sequence and word
    sequence keeps the best weight of the sentences that say it, and no other has a path."""
    topology = PhoneTopology(
        ("a", "b", "c", "d"), SHARING, None, 1, 1, tree=TREE, cross_word=cross_word
    )
    check_graph_against_paths(topology, _sharing_grammar(grammar), frames, frames, True)


@pytest.mark.parametrize("cross_word", [False, True], ids=["word-internal", "cross-word"])
def test_determinized_paths_say_where_words_begin(cross_word):
    """The determinized graph writes a word on its last phone, yet its best paths give the
    same words, pdfs and word starts as the graph built by word (the first frame of each
    word, a one-phone word that follows itself included; a start may slide only over frames
    of one pdf, where the two placements score the same)."""
    topology = PhoneTopology(
        ("a", "b", "c", "d"), SHARING, None, 1, 1, tree=TREE, cross_word=cross_word
    )
    # word probabilities under which no two word sequences with the same phones tie, and a
    # bonus per word that makes "y y y" three words
    grammar = loop_grammar(4, 4.0, [math.log(p) for p in (0.5, 0.3, 0.15, 0.05)])
    by_word = decoding_graph(topology, grammar, determinize=False)
    shared = decoding_graph(topology, grammar, determinize=True)
    generator = torch.Generator().manual_seed(0)
    scores = [torch.randn(n, topology.num_pdfs, generator=generator) * 3 for n in range(1, 40)]
    said = topology.phone_pdfs("y")  # a said "y", three times over
    scores.append(torch.full((3, topology.num_pdfs), -9.0).index_fill_(1, torch.tensor(said), 0))
    expected, found = decode_paths(scores, by_word), decode_paths(scores, shared)
    assert [w for w, _ in found] == [w for w, _ in expected]
    assert found[-1][0] == (0, 0, 0) and found[-1][1].word_starts.tolist() == [True] * 3
    for (_, want), (_, got) in zip(expected, found, strict=True):
        assert_same_word_starts(got, want)


def test_determinized_words_share_their_first_phones():
    """In a loop, words share the phones they begin with up to their last phone, which
    carries the word: a and c share their x, b and d their y; a said "y" is a y of its own,
    its first phone being its last."""
    topology = PhoneTopology(("a", "b", "c", "d"), SHARING, None, 1, 1)  # monophones
    by_word = decoding_graph(topology, loop_grammar(4), determinize=False)
    shared = decoding_graph(topology, loop_grammar(4))  # determinized: phones
    # by word: a's two chains (2 + 1 states), b 2, c 3, d 2, silence, the start
    assert by_word.num_states == 3 + 2 + 3 + 2 + 1 + 1
    # the prefix tree, a phone a state: x -> {y (a), x -> y (c)}, y (a alone), y -> {x (b),
    # x (d)}: 8; silence; the start
    assert shared.num_states == 8 + 1 + 1
    with pytest.raises(ValueError, match="determinize needs a PhoneTopology"):
        decoding_graph(Topology(("a",)), loop_grammar(1), determinize=True)


def test_a_grammar_that_cannot_be_determinized_is_named():
    """Two epsilon edges into loops over the same word with other weights: the subsets of
    L∘G never repeat; an epsilon cycle is named by the grammar's own junctions."""
    topology = PhoneTopology(("a", "b", "c", "d"), SHARING, None, 1, 1)
    g = nx.MultiDiGraph()
    g.add_node("j", start=0.0)
    for loop, weight in (("one", -1.0), ("two", -2.0)):
        g.add_node(loop, final=0.0)
        g.add_edge("j", loop, unit=None)
        g.add_edge(loop, loop, unit=1, weight=weight)
    with pytest.raises(ValueError, match="grammar: L∘G cannot be determinized: .*max_states"):
        decoding_graph(topology, g)
    assert decoding_graph(topology, g, determinize=False).num_states > 0
    g.add_edge("two", "j", unit=None)
    with pytest.raises(ValueError, match="form a cycle through 'j'"):
        decoding_graph(topology, g)


def test_cross_word_copies_are_only_those_the_grammar_needs():
    """A word is copied for the pairs of neighbours it can have: alone between silences, the
    edges only; in a loop, every last phone before it and every first phone after it, the
    left neighbours that give it the same pdfs sharing one copy."""
    isolated = decoding_graph(CROSS_WORD, isolated_grammar(2), determinize=False)
    internal = decoding_graph(TRIPHONES, isolated_grammar(2), determinize=False)
    assert isolated.num_states == internal.num_states
    loop = decoding_graph(CROSS_WORD, loop_grammar(2), determinize=False)
    # 3 chains (a: x y, a: y, b: y x), each before {#, x, y} and after {#, x, y}: 9 pairs of
    # neighbours, the left ones with the same pdfs sharing a copy; silence once; the start
    beside = (WORD_EDGE, "x", "y")
    copies = [
        {(tuple(CROSS_WORD.phone_chain(p, left, r)), r) for left in beside for r in beside}
        for p in [("x", "y"), ("y",), ("y", "x")]
    ]
    # x y reads pdfs 0 4 whatever its neighbours: one copy per right one; y alone, and the y
    # of y x, read one pdf after the edge and another after x or y: two per right one
    assert [len(c) for c in copies] == [3, 6, 6]
    assert loop.num_states == 3 * 2 + 6 * 1 + 6 * 2 + 1 + 1
    by_word = decoding_graph(TRIPHONES, loop_grammar(2), determinize=False)
    assert by_word.num_states == 2 + 1 + 2 + 1 + 1


def test_phones_in_context_reads_words_and_neighbours_off_an_alignment():
    # silence, then b = y(#, x) x(y, #) over pdfs 2, 2, 1, then a = x(#, y) y(x, #): 0, 4, 4
    pdfs = torch.tensor([5, 2, 2, 1, 0, 4, 4, 5])
    starts = torch.tensor([0, 1, 0, 0, 1, 0, 0, 0], dtype=torch.bool)
    said = phones_in_context(Alignment(pdfs, starts), TRIPHONES)
    assert said == [
        ("y", WORD_EDGE, "x", 1, 3),
        ("x", "y", WORD_EDGE, 3, 4),
        ("x", WORD_EDGE, "y", 4, 5),
        ("y", "x", WORD_EDGE, 5, 7),
    ]
    # across words: b's x is followed by a's x, and silence gives the edges
    assert phones_in_context(Alignment(pdfs, starts), TRIPHONES, cross_word=True) == [
        ("y", WORD_EDGE, "x", 1, 3),
        ("x", "y", "x", 3, 4),
        ("x", "x", "y", 4, 5),
        ("y", "x", WORD_EDGE, 5, 7),
    ]


def test_a_beam_that_loses_every_ending_path_falls_back_to_exact_search():
    """Two words: 0 reads the likelier column but can never end, 1 ends after two frames or
    more. A beam of 5 keeps only word 0 and so no path that ends: that utterance is searched
    again exactly. An utterance with no path at all, and a beam that is not positive, are
    named."""
    g = nx.MultiDiGraph()
    g.add_node("start", start=0.0)
    g.add_node("ends", final=0.0)
    g.add_edge("start", "open", emission=0, label=0)
    g.add_edge("open", "open", emission=0)
    g.add_edge("start", "middle", emission=1, label=1)
    g.add_edge("middle", "ends", emission=1)
    g.add_edge("ends", "ends", emission=1)
    graph = Graph.from_networkx(g)
    scores = [torch.tensor([[0.0, -20.0]] * 4), torch.tensor([[-20.0, 0.0]] * 3)]
    with pytest.raises(ValueError, match="try a wider beam"):
        graph_viterbi(scores[0][None], graph, beam=5.0)
    pruned, exact = decode_paths(scores, graph, beam=5.0), decode_paths(scores, graph)
    assert [w for w, _ in pruned] == [w for w, _ in exact] == [(1,), (1,)]
    assert pruned[0][1].pdfs.tolist() == exact[0][1].pdfs.tolist() == [1] * 4
    with pytest.raises(ValueError, match=r"scores\[2\]: graph_viterbi: no path"):
        decode_paths([*scores, torch.zeros(1, 2)], graph, beam=5.0)
    for beam in (0.0, -5.0, math.nan):
        with pytest.raises(ValueError, match="beam must be a positive number"):
            decode_paths(scores, graph, beam=beam)


def test_word_spans_end_at_the_next_word_or_silence():
    pdfs = torch.tensor([5, 2, 2, 1, 0, 4, 4, 5])
    starts = torch.tensor([0, 1, 0, 0, 1, 0, 0, 0], dtype=torch.bool)
    assert word_spans(Alignment(pdfs, starts), TRIPHONES) == [(1, 4), (4, 7)]
    starts = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    assert word_spans(Alignment(torch.tensor([0, 4, 2, 1]), starts), TRIPHONES) == [(0, 2), (2, 4)]


def test_a_tree_grown_on_real_digits_asks_phonetic_classes_with_gains_falling_down_it():
    """Monophones, then tied word-internal triphones, on two FSDD speakers' takes 5-24; their
    takes 0-4 decoded as isolated digits."""
    recordings = [r for r in read_fsdd(real_corpus("fsdd")) if r.speaker in ("george", "lucas")]
    train = isolated_utterances([r for r in recordings if 5 <= r.take < 25])
    test = isolated_utterances([r for r in recordings if r.take < 5])
    config = FeatureConfig()
    features, words = extract(train, config), [u.words for u in train]
    mono = PhoneTopology(DIGITS, cmudict_lexicon().without_stress())
    emissions, loops, _ = train_monophones(mono, features, words, 2, 5)
    tri, tied, tied_loops, _ = train_triphones(
        mono, emissions, loops, features, words, 200, 50, 2, 5
    )
    tree = tri.tree
    assert 10 < tree.num_splits and tree.num_leaves <= 200
    names = {frozenset(q.phones): q.name for q in phonetic_questions(mono.phones)}
    for node, parent in tree.splits():
        assert names[frozenset(node["phones"])] == node["question"]
        assert node["count"] >= 2 * 50
        if parent is not None:
            assert node["gain"] <= parent["gain"], (node["question"], parent["question"])
    graph = decoding_graph(tri, isolated_grammar(10), tied_loops)
    scores = frame_scores(tied, extract(test, config))
    hypotheses = decode(scores, graph)
    accuracy = sum(h == u.words for h, u in zip(hypotheses, test, strict=True)) / len(test)
    assert len(test) == 100 and accuracy >= 0.95
    # through a digit loop, the determinized graph and the graph by word find the same words,
    # states and word starts on real speech
    loop = loop_grammar(10, -5.0)
    found = decode_paths(scores, decoding_graph(tri, loop, tied_loops))
    expected = decode_paths(scores, decoding_graph(tri, loop, tied_loops, determinize=False))
    assert sum(len(words) != 1 for words, _ in expected) > 0  # the loop does split some
    for (words, path), (want_words, want) in zip(found, expected, strict=True):
        assert words == want_words
        assert_same_word_starts(path, want)
