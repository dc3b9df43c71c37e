"""Phonetic decision trees and the tied triphone topology: statistics against direct
grouping, every split against a brute-force search over questions with Gaussians fitted to
the frames themselves, and the composed graphs of triphones against their paths."""

from __future__ import annotations

import math

import pytest
import torch
from realdata import real_corpus
from speech_oracles import BIGRAM, check_graph_against_paths

from hybrid.ctc.lm import read_arpa
from hybrid.speech.corpus import FeatureConfig, extract, isolated_utterances
from hybrid.speech.decoder import Alignment, decode, frame_scores, phones_in_context, word_spans
from hybrid.speech.fsdd import DIGITS, read_fsdd
from hybrid.speech.gmm import train_monophones, train_triphones
from hybrid.speech.lexicon import Lexicon, Pronunciation, cmudict_lexicon
from hybrid.speech.topology import (
    SILENCE,
    PhoneTopology,
    decoding_graph,
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
def test_triphone_graph_paths_equal_the_definition(grammar, frames, topology):
    """Every path of the compiled graph (H∘C∘L∘G) against the enumeration of every
    sentence's pronunciations and durations, each word's pdfs read off its context there."""
    chosen = TRIPHONES if topology == "word-internal" else CROSS_WORD
    check_graph_against_paths(chosen, _grammar(grammar), frames, seed=frames)


def test_cross_word_copies_are_only_those_the_grammar_needs():
    """A word is copied for the pairs of neighbours it can have: alone between silences, the
    edges only; in a loop, every last phone before it and every first phone after it, the
    left neighbours that give it the same pdfs sharing one copy."""
    isolated = decoding_graph(CROSS_WORD, isolated_grammar(2))
    internal = decoding_graph(TRIPHONES, isolated_grammar(2))
    assert isolated.num_states == internal.num_states
    loop = decoding_graph(CROSS_WORD, loop_grammar(2))
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
    assert decoding_graph(TRIPHONES, loop_grammar(2)).num_states == 2 + 1 + 2 + 1 + 1


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
    hypotheses = decode(frame_scores(tied, extract(test, config)), graph)
    accuracy = sum(h == u.words for h, u in zip(hypotheses, test, strict=True)) / len(test)
    assert len(test) == 100 and accuracy >= 0.95
