"""CTC prefix beam search against brute-force enumeration of frame paths, and pyctcdecode.

The oracle enumerates every frame path of a tiny input, collapses it (repeats merged, blanks
dropped) and sums path probabilities per label sequence: with a beam wide enough to hold
every prefix, the search must return exactly the best of those sequences and their
log-probabilities.
"""

from __future__ import annotations

import itertools
import logging
import math

import pytest
import torch

import hybrid.ctc.beam as beam_module
from hybrid.ctc.beam import prefix_beam_search
from hybrid.ctc.lexicon import Lexicon

NEG_INF = float("-inf")
TOL = 1e-6
# Symbols of the lexicon tests: blank, two letters, the word delimiter.
WORD_SYMBOLS = ["_", "a", "b", " "]


# ---------------------------------------------------------------------------------------------
# oracles
# ---------------------------------------------------------------------------------------------


def collapse(path, blank=0):
    """Label sequence of a frame path: repeats merged, blanks dropped."""
    labels = []
    previous = None
    for symbol in path:
        if symbol != previous and symbol != blank:
            labels.append(symbol)
        previous = symbol
    return tuple(labels)


def starts_allowed(path, allowed, blank=0):
    """Whether every label of ``path`` starts at a frame where ``allowed[t][symbol]``."""
    return all(
        allowed[t][s] for t, s in enumerate(path) if s != blank and (t == 0 or path[t - 1] != s)
    )


def brute_force(log_probs, blank=0, allowed=None):
    """``{labels: log P(labels)}`` over all frame paths of ``log_probs (T, V)``.

    ``allowed (T, V)``: only paths whose every label starts at an allowed (frame, symbol).
    """
    steps, vocab = log_probs.shape
    table = log_probs.tolist()
    sums: dict[tuple[int, ...], list[float]] = {}
    for path in itertools.product(range(vocab), repeat=steps):
        if allowed is not None and not starts_allowed(path, allowed, blank):
            continue
        score = sum(table[t][s] for t, s in enumerate(path))
        sums.setdefault(collapse(path, blank), []).append(score)
    return {labels: math.log(sum(math.exp(s) for s in scores)) for labels, scores in sums.items()}


def best_path_spans(log_probs, labels, blank=0):
    """``[start, stop)`` frames of each label in the most likely frame path collapsing to
    ``labels``."""
    steps, vocab = log_probs.shape
    table = log_probs.tolist()
    best, best_path = NEG_INF, None
    for path in itertools.product(range(vocab), repeat=steps):
        if collapse(path, blank) == tuple(labels):
            score = sum(table[t][s] for t, s in enumerate(path))
            if score > best:
                best, best_path = score, path
    spans = []
    for t, s in enumerate(best_path):
        if s == blank:
            continue
        if t > 0 and best_path[t - 1] == s:
            spans[-1][1] = t + 1
        else:
            spans.append([t, t + 1])
    return spans


def ranked(scores, count):
    """The ``count`` best ``(labels, score)`` of a ``{labels: score}`` dict."""
    return sorted(scores.items(), key=lambda item: -item[1])[:count]


def greedy(log_probs, blank=0):
    """Best-path decoding of ``(T, V)``: argmax of each frame, collapsed."""
    return list(collapse(log_probs.argmax(-1).tolist(), blank))


def words_of(labels, delimiter):
    """The non-empty delimiter-separated pieces of ``labels``, as tuples."""
    pieces, current = [], []
    for symbol in list(labels) + [delimiter]:
        if symbol == delimiter:
            if current:
                pieces.append(tuple(current))
            current = []
        else:
            current.append(symbol)
    return pieces


def random_log_probs(generator, shape, scale=1.5):
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).log_softmax(-1)


def peaked_log_probs(generator, shape, boost):
    """Random logits with one random symbol per frame raised by ``boost``."""
    logits = torch.randn(*shape, generator=generator, dtype=torch.float64)
    top = torch.randint(shape[-1], shape[:-1], generator=generator)
    logits.scatter_add_(-1, top[..., None], torch.full((*shape[:-1], 1), boost).double())
    return logits.log_softmax(-1)


def hypotheses(result, b=0):
    """``[(labels, score, acoustic)]`` of the live hypotheses of sequence ``b``."""
    return [
        (tuple(labels), float(score), float(acoustic))
        for labels, score, acoustic in zip(
            result.to_lists()[b], result.scores[b], result.acoustic[b], strict=True
        )
        if score > NEG_INF
    ]


def assert_same(got, want):
    """Two ``hypotheses`` lists agree: same labels in order, scores within ``TOL``."""
    assert [labels for labels, _, _ in got] == [labels for labels, _, _ in want]
    flat = [value for _, score, acoustic in got for value in (score, acoustic)]
    assert flat == pytest.approx([v for _, score, ac in want for v in (score, ac)], abs=TOL)


def assert_matches(result, expected, b=0):
    """The live hypotheses of ``result[b]`` are ``expected`` ``[(labels, score)]``, in order."""
    got = hypotheses(result, b)[: len(expected)]
    assert [labels for labels, _, _ in got] == [labels for labels, _ in expected]
    for (_, score, _), (_, want) in zip(got, expected, strict=True):
        assert score == pytest.approx(want, abs=TOL)


# ---------------------------------------------------------------------------------------------
# exact search against brute force
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "vocab", "blank", "seed"), [(4, 4, 0, 0), (5, 4, 2, 1), (5, 3, 0, 2)]
)
def test_wide_beam_equals_brute_force(steps, vocab, blank, seed):
    log_probs = random_log_probs(torch.Generator().manual_seed(seed), (1, steps, vocab))
    result = prefix_beam_search(log_probs, beam=400, blank=blank, nbest=10)
    expected = ranked(brute_force(log_probs[0], blank), 10)
    assert_matches(result, expected)
    assert torch.allclose(result.scores, result.acoustic)


def test_every_sequence_is_found_with_its_probability():
    log_probs = random_log_probs(torch.Generator().manual_seed(3), (1, 4, 3))
    exact = brute_force(log_probs[0])
    result = prefix_beam_search(log_probs, beam=64)
    found = {labels: score for labels, score, _ in hypotheses(result)}
    assert found.keys() == exact.keys()
    for labels, score in exact.items():
        assert found[labels] == pytest.approx(score, abs=TOL)


def test_batch_with_lengths_equals_each_sequence_alone():
    generator = torch.Generator().manual_seed(4)
    log_probs = random_log_probs(generator, (3, 6, 4))
    lengths = torch.tensor([6, 3, 5])
    batched = prefix_beam_search(log_probs, lengths, beam=12, nbest=5)
    for b, length in enumerate(lengths.tolist()):
        alone = prefix_beam_search(log_probs[b : b + 1, :length], beam=12, nbest=5)
        assert_same(hypotheses(batched, b), hypotheses(alone))
        width = alone.labels.shape[2]
        assert torch.equal(batched.timestamps[b, :, :width], alone.timestamps[0])
        assert (batched.timestamps[b, :, width:] == -1).all()


def test_padding_of_hypotheses_past_the_possible_prefixes():
    log_probs = random_log_probs(torch.Generator().manual_seed(5), (1, 3, 2))
    result = prefix_beam_search(log_probs, beam=6)  # only (), (1,) and (1, 1) exist
    assert result.labels.shape == (1, 6, 2)
    assert torch.isinf(result.scores[0, 3:]).all() and torch.isinf(result.acoustic[0, 3:]).all()
    assert (result.label_lengths[0, 3:] == 0).all() and (result.labels[0, 3:] == -1).all()
    assert (result.timestamps[0, 3:] == -1).all()


@pytest.mark.parametrize("ranks_per_alignment", [None, 2])
def test_label_and_word_spans_come_from_the_best_alignment(ranks_per_alignment, monkeypatch):
    log_probs = random_log_probs(torch.Generator().manual_seed(6), (1, 5, 3))
    if ranks_per_alignment is not None:
        monkeypatch.setattr(beam_module, "_ALIGN_BUDGET", ranks_per_alignment * log_probs.numel())
    result = prefix_beam_search(log_probs, beam=400, nbest=6)
    delimiter = 2
    for n, labels in enumerate(result.to_lists()[0]):
        spans = best_path_spans(log_probs[0], labels)
        assert result.spans[0, n, : len(labels)].tolist() == spans
        assert result.timestamps[0, n, : len(labels)].tolist() == [start for start, _ in spans]
        positions = [i if symbol != delimiter else -1 for i, symbol in enumerate(labels)]
        words = [
            (tuple(labels[i] for i in run), spans[run[0]][0], spans[run[-1]][1])
            for run in words_of(positions, -1)
        ]
        assert result.word_spans(delimiter)[0][n] == words


def test_only_blanks_give_the_empty_hypothesis_in_every_row():
    log_probs = torch.full((3, 6, 4), -30.0, dtype=torch.float64)
    log_probs[..., 0] = 0.0  # the blank, certainly, at every frame of every row
    result = prefix_beam_search(log_probs, torch.tensor([6, 4, 1]), beam=3, blank=0, nbest=1)
    assert result.label_lengths[:, 0].tolist() == [0, 0, 0]
    assert (result.spans == -1).all()


def test_beam_of_one_on_peaked_input_is_greedy_decoding():
    generator = torch.Generator().manual_seed(7)
    log_probs = peaked_log_probs(generator, (4, 30, 6), boost=8.0)
    result = prefix_beam_search(log_probs, beam=1)
    for b in range(4):
        assert result.to_lists()[b][0] == greedy(log_probs[b])


def test_pruned_search_equals_brute_force_over_allowed_label_starts():
    log_probs = random_log_probs(torch.Generator().manual_seed(8), (1, 5, 4))
    threshold = -1.5
    best = log_probs[0].argmax(-1, keepdim=True)
    allowed = (log_probs[0] >= threshold).scatter(1, best, True).tolist()
    result = prefix_beam_search(log_probs, beam=400, nbest=8, prune=threshold)
    assert_matches(result, ranked(brute_force(log_probs[0], allowed=allowed), 8))
    top2 = log_probs[0].topk(2, -1).indices
    allowed = torch.zeros_like(log_probs[0], dtype=torch.bool).scatter(1, top2, True).tolist()
    result = prefix_beam_search(log_probs, beam=400, nbest=8, prune=2)
    assert_matches(result, ranked(brute_force(log_probs[0], allowed=allowed), 8))


def test_pruning_that_keeps_everything_changes_nothing():
    log_probs = random_log_probs(torch.Generator().manual_seed(9), (2, 8, 5))
    plain = prefix_beam_search(log_probs, beam=6)
    for prune in (5, NEG_INF):
        assert_same(
            hypotheses(prefix_beam_search(log_probs, beam=6, prune=prune)), hypotheses(plain)
        )


def test_insertion_bonus_without_lm_counts_symbols():
    log_probs = random_log_probs(torch.Generator().manual_seed(10), (1, 5, 3))
    bonus = 0.8
    exact = {k: v + bonus * len(k) for k, v in brute_force(log_probs[0]).items()}
    result = prefix_beam_search(log_probs, beam=400, nbest=6, insertion_bonus=bonus)
    assert_matches(result, ranked(exact, 6))


def test_float32_input_matches_float64():
    log_probs = random_log_probs(torch.Generator().manual_seed(11), (2, 10, 5))
    single = prefix_beam_search(log_probs.float(), beam=5, nbest=3)
    double = prefix_beam_search(log_probs, beam=5, nbest=3)
    assert single.to_lists() == double.to_lists()
    assert torch.allclose(single.scores.double(), double.scores, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# lexicon
# ---------------------------------------------------------------------------------------------


def test_lexicon_table_accepts_exactly_sequences_of_words():
    words = ["a", "ab", "ba", "bab"]
    lexicon = Lexicon(words, WORD_SYMBOLS, " ")
    dictionary = {tuple(WORD_SYMBOLS.index(c) for c in word) for word in words}
    for size in range(6):
        for labels in itertools.product([1, 2, 3], repeat=size):
            node = 0
            for symbol in labels:
                node = int(lexicon.transitions[node, symbol]) if node >= 0 else -1
            accepted = node >= 0 and bool(lexicon.accepting[node])
            assert accepted == all(word in dictionary for word in words_of(labels, 3))
    assert (lexicon.transitions[:, 0] == -1).all()


def constrained(log_probs, words, delimiter=3):
    """Brute force restricted to label sequences made of dictionary ``words``."""
    return {
        labels: score
        for labels, score in brute_force(log_probs).items()
        if all(word in words for word in words_of(labels, delimiter))
    }


@pytest.mark.parametrize("extra", [(), ("ba",)])
def test_lexicon_search_equals_constrained_brute_force(extra):
    generator = torch.Generator().manual_seed(12)
    log_probs = random_log_probs(generator, (1, 5, 4), scale=2.0)
    exact = brute_force(log_probs[0])
    best = max(exact, key=exact.get)
    best_words = words_of(best, 3)
    assert best_words, "the seed should give a best sequence with words"
    words = {*best_words, *(tuple(WORD_SYMBOLS.index(c) for c in w) for w in extra)}
    spelled = ["".join(WORD_SYMBOLS[s] for s in word) for word in words]
    lexicon = Lexicon(spelled, WORD_SYMBOLS, " ")
    result = prefix_beam_search(log_probs, beam=400, nbest=10, lexicon=lexicon)
    expected = ranked(constrained(log_probs[0], words), 10)
    assert len(hypotheses(result)) == len(expected)
    assert_matches(result, expected)


def test_every_hypothesis_is_made_of_dictionary_words():
    generator = torch.Generator().manual_seed(13)
    log_probs = random_log_probs(generator, (3, 20, 4), scale=2.0)
    spelled = ["ab", "b", "aab"]
    lexicon = Lexicon(spelled, WORD_SYMBOLS, " ")
    words = {tuple(WORD_SYMBOLS.index(c) for c in word) for word in spelled}
    result = prefix_beam_search(log_probs, beam=8, lexicon=lexicon)
    for b in range(3):
        found = hypotheses(result, b)
        assert found
        for labels, _, _ in found:
            assert all(word in words for word in words_of(labels, 3))


@pytest.mark.parametrize(
    ("words", "delimiter", "match"),
    [
        (["ab"], "|", "delimiter '|' is not one of the symbols"),
        (["ax"], " ", "word 'ax' uses 'x'"),
        (["a b"], " ", "contains the delimiter"),
        ([""], " ", "must not be empty"),
    ],
)
def test_lexicon_rejects_bad_words(words, delimiter, match):
    with pytest.raises(ValueError, match=match):
        Lexicon(words, WORD_SYMBOLS, delimiter)


def test_lexicon_rejects_repeated_symbols():
    with pytest.raises(ValueError, match="symbols must be distinct"):
        Lexicon(["a"], ["_", "a", "a", " "], " ")


# ---------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------


def good_log_probs():
    return random_log_probs(torch.Generator().manual_seed(14), (2, 4, 4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beam": 0}, "beam must be an int >= 1"),
        ({"beam": 2.5}, "beam must be an int >= 1"),
        ({"beam": 3, "nbest": 4}, r"nbest must be an int in \[1, beam\]"),
        ({"blank": 4}, r"blank must be a symbol in \[0, V\)"),
        ({"lengths": torch.tensor([4, 5])}, r"lengths must lie in \[1, T\]"),
        ({"lengths": torch.tensor([4])}, r"lengths must have shape \(B,\)"),
        ({"lm_weight": float("nan")}, "lm_weight must be a finite number"),
        ({"insertion_bonus": float("inf")}, "insertion_bonus must be a finite number"),
        ({"prune": 0}, "prune must be None, an int k >= 1"),
        ({"prune": True}, "prune must be None, an int k >= 1"),
        ({"lm": "not a scorer"}, "lm must come from lm_scorer"),
        ({"lexicon": Lexicon(["ab"], ["_", "a", "b", "c", " "], " ")}, "lexicon is spelled in 5"),
        ({"lexicon": Lexicon(["ab"], WORD_SYMBOLS, " "), "blank": 3}, "must not use the blank"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prefix_beam_search(good_log_probs(), **kwargs)


@pytest.mark.parametrize(
    ("log_probs", "match"),
    [
        (torch.zeros(4, 4), r"log_probs must be a non-empty float tensor \(B, T, V\)"),
        (torch.zeros(1, 4, 4, dtype=torch.long), "log_probs must be floating point"),
        (torch.full((1, 4, 4), float("nan")), "log_probs contains NaN"),
    ],
)
def test_bad_log_probs_raise(log_probs, match):
    with pytest.raises(ValueError, match=match):
        prefix_beam_search(log_probs)


# ---------------------------------------------------------------------------------------------
# peer library
# ---------------------------------------------------------------------------------------------


def pyctcdecode_decoder(labels):
    pyctcdecode = pytest.importorskip("pyctcdecode", reason="pyctcdecode is not installed")
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    return pyctcdecode.build_ctcdecoder(labels)


def pyctcdecode_top(decoder, log_probs, beam):
    """pyctcdecode's best ``(text, acoustic score)`` with its own pruning switched off."""
    text, _, _, score, _ = decoder.decode_beams(
        log_probs.numpy(), beam_width=beam, beam_prune_logp=-1e9, token_min_logp=-1e9
    )[0]
    return text, score


def test_top_hypothesis_equals_pyctcdecode_on_peaked_input():
    # pyctcdecode's blank is the empty label; no space symbol, so its text is the labels.
    labels = ["", *"abcdefghi"]
    decoder = pyctcdecode_decoder(labels)
    generator = torch.Generator().manual_seed(15)
    log_probs = peaked_log_probs(generator, (8, 50, 10), boost=5.0)
    result = prefix_beam_search(log_probs, beam=20, nbest=1)
    for b, (ours,) in enumerate(result.to_lists()):
        text, _ = pyctcdecode_top(decoder, log_probs[b], beam=20)
        assert "".join(labels[i] for i in ours) == text


def test_scores_equal_pyctcdecode_when_both_beams_hold_everything():
    # pyctcdecode keeps a prefix ending in a blank and one ending in its last symbol as two
    # beam entries, so the two searches prune differently; unpruned, they are both exact.
    labels = ["", "a", "b", "c"]
    decoder = pyctcdecode_decoder(labels)
    log_probs = random_log_probs(torch.Generator().manual_seed(16), (4, 5, 4))
    result = prefix_beam_search(log_probs, beam=400, nbest=1)
    for b, (ours,) in enumerate(result.to_lists()):
        text, score = pyctcdecode_top(decoder, log_probs[b], beam=1000)
        assert "".join(labels[i] for i in ours) == text
        assert float(result.acoustic[b, 0]) == pytest.approx(score, abs=TOL)
