"""N-gram LM: ARPA reading, back-off scoring, and shallow fusion in the CTC beam search.

Oracles: sentence probabilities computed by hand from the numbers of a hand-written ARPA
file; an independent recursive back-off scorer over the same tables; brute-force
enumeration of frame paths (`test_ctc_beam.brute_force`) plus that scorer for the fused
total ``acoustic + lm_weight * LM + insertion_bonus * units``.
"""

from __future__ import annotations

import math

import pytest
import torch
from test_ctc_beam import assert_matches, brute_force, random_log_probs, ranked, words_of

from hybrid.ctc.beam import prefix_beam_search
from hybrid.ctc.lexicon import Lexicon
from hybrid.ctc.lm import NGramLM, lm_scorer, read_arpa
from hybrid.structured import native

LN10 = math.log(10.0)

ARPA = """\
some tool's comment before the data
\\data\\
ngram 1=6
ngram 2=6
ngram 3=3

\\1-grams:
-99\t<s>\t-0.30
-0.70\t</s>
-0.50\ta\t-0.25
-0.60\tb\t-0.20
-0.80\tc\t-0.10
-1.50\t<unk>

\\2-grams:
-0.20\t<s> a\t-0.15
-0.40\ta b\t-0.05
-0.30\tb a
-0.50\ta </s>
-0.35\tb c\t-0.12
-0.45\tc </s>

\\3-grams:
-0.10\t<s> a b
-0.15\ta b c
-0.05\ta b a

\\end\\
"""


def sentence_logprob(lm, tokens):
    """Natural-log probability of ``<s> tokens </s>`` under ``lm``, one query per token."""
    ids = [lm.token_id(token) for token in ["<s>", *tokens, "</s>"]]
    total = 0.0
    for i in range(1, len(ids)):
        context = ([-1] * lm.context_size + ids[:i])[len(ids[:i]) :]
        total += float(lm.score(torch.tensor([context]), torch.tensor([ids[i]]))[0])
    return total


# ---------------------------------------------------------------------------------------------
# ARPA reader against hand computation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "log10_prob"),
    [
        # P(a|<s>) bigram; P(b|<s> a), P(c|a b) trigrams; P(</s>|b c): trigram missing, so
        # backoff(b c) + P(</s>|c) bigram.
        (["a", "b", "c"], -0.20 - 0.10 - 0.15 + (-0.12 - 0.45)),
        # P(c|<s>): backoff(<s>) + P(c); P(a|<s> c): "<s> c" unlisted (backoff 0), "c a"
        # missing: backoff(c) + P(a); P(</s>|c a): "c a" unlisted, bigram "a </s>".
        (["c", "a"], (-0.30 - 0.80) + (-0.10 - 0.50) + (-0.50)),
        # P(a|a b) trigram; P(c|b a): "b a" listed without backoff, "a c" missing:
        # backoff(a) + P(c); P(</s>|a c): bigram "c </s>".
        (["a", "b", "a", "c"], -0.20 - 0.10 - 0.05 + (-0.25 - 0.80) + (-0.45)),
        # P(</s>|a b): backoff(a b) + P(</s>|b) = backoff(a b) + backoff(b) + P(</s>).
        (["a", "b"], -0.20 - 0.10 + (-0.05 - 0.20 - 0.70)),
        # <unk> as a token: P(<unk>|<s>) = backoff(<s>) + P(<unk>); P(</s>|<s> <unk>):
        # "<s> <unk>" and "<unk> </s>" unlisted, unigram </s>.
        (["<unk>"], (-0.30 - 1.50) + (-0.70)),
    ],
)
def test_arpa_sentence_probabilities_equal_hand_computation(tokens, log10_prob):
    lm = read_arpa(ARPA)
    assert lm.order == 3
    assert sentence_logprob(lm, tokens) == pytest.approx(log10_prob * LN10, abs=1e-9)


def test_read_arpa_from_a_path(tmp_path):
    path = tmp_path / "model.arpa"
    path.write_text(ARPA, encoding="utf-8")
    expected = sentence_logprob(read_arpa(ARPA), ["b", "c"])
    assert sentence_logprob(read_arpa(path), ["b", "c"]) == expected
    assert sentence_logprob(read_arpa(str(path)), ["b", "c"]) == expected


def replace_line(number, new):
    lines = ARPA.splitlines()
    lines[number - 1] = new
    return "\n".join(lines) + "\n"


def drop_line(number):
    lines = ARPA.splitlines()
    del lines[number - 1]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (ARPA.replace("\\data\\", "data"), r"ARPA line 28: no \\data\\ header"),
        (replace_line(3, "ngram 1 6"), r"ARPA line 3: expected 'ngram N=count'"),
        (replace_line(4, "ngram 3=6"), "ARPA line 4: expected the count of order 2"),
        (replace_line(9, "-0.70\t</s>\t-0.1\textra"), "ARPA line 9: expected 2 or 3 fields"),
        (replace_line(10, "x\ta\t-0.25"), "ARPA line 10: expected a number, got 'x'"),
        (replace_line(10, "nan\ta"), "ARPA line 10: NaN"),
        (replace_line(17, "-0.40\ta d\t-0.05"), "ARPA line 17: .* not a unigram"),
        (replace_line(18, "-0.30\ta b"), "ARPA line 18: repeated n-gram"),
        (drop_line(13), r"ARPA line 14: section \\1-grams: has 5 entries, the header declares 6"),
        (replace_line(24, "-0.10\t<s> a b\t-0.3"), "ARPA line 24: expected 4 fields"),
        (replace_line(15, "\\3-grams:"), r"ARPA line 15: expected '\\2-grams:'"),
        (ARPA.replace("\\end\\", ""), r"ARPA line 28: file ends before \\end\\"),
        (replace_line(23, "\\end\\"), r"ARPA line 23: \\end\\ before the \\3-grams: section"),
        (replace_line(7, "-0.5\ta"), "ARPA line 7: expected 'ngram N=count'"),
        (drop_line(3).replace("ngram 2=6\nngram 3=3\n", ""), r"ARPA line 4: .* declares no"),
    ],
)
def test_malformed_arpa_raises_with_line_number(text, match):
    with pytest.raises(ValueError, match=match):
        read_arpa(text)


# ---------------------------------------------------------------------------------------------
# back-off scoring against an independent scorer
# ---------------------------------------------------------------------------------------------

# Word model tables (base 10): words "a", "ab", "ba", sentence tokens and <unk>.
WORD_TABLES = [
    {
        ("<s>",): (-99.0, -0.40),
        ("</s>",): (-0.60, 0.0),
        ("<unk>",): (-1.30, 0.0),
        ("a",): (-0.50, -0.20),
        ("ab",): (-0.70, -0.35),
        ("ba",): (-0.90, -0.10),
    },
    {
        ("<s>", "a"): (-0.30, -0.05),
        ("a", "ab"): (-0.25, 0.0),
        ("ab", "</s>"): (-0.20, 0.0),
        ("ba", "a"): (-0.40, 0.0),
        ("<s>", "<unk>"): (-0.80, 0.0),
    },
]

# Character model tables (base 10) over "a", "b", "c".
CHAR_TABLES = [
    {
        ("<s>",): (-99.0, -0.30),
        ("</s>",): (-0.90, 0.0),
        ("a",): (-0.40, -0.25),
        ("b",): (-0.50, -0.15),
        ("c",): (-0.60, -0.05),
    },
    {
        ("<s>", "a"): (-0.25, -0.10),
        ("a", "b"): (-0.35, -0.20),
        ("b", "a"): (-0.20, 0.0),
        ("c", "</s>"): (-0.30, 0.0),
        ("b", "</s>"): (-0.60, -0.05),
    },
    {
        ("<s>", "a", "b"): (-0.10, 0.0),
        ("a", "b", "a"): (-0.15, 0.0),
        ("b", "a", "c"): (-0.45, 0.0),
    },
]


def reference_logprob(tables, history, token):
    """Natural-log ``P(token | history)`` by the ARPA back-off rule, recursively."""
    history = tuple(history)[-(len(tables) - 1) :] if len(tables) > 1 else ()
    gram = (*history, token)
    if gram in tables[len(gram) - 1]:
        return tables[len(gram) - 1][gram][0] * LN10
    backoff = tables[len(history) - 1].get(history, (0.0, 0.0))[1] if history else 0.0
    return backoff * LN10 + reference_logprob(tables, history[1:], token)


def reference_sentence(tables, tokens):
    """Natural-log probability of ``<s> tokens </s>`` by the reference scorer."""
    history, total = ["<s>"], 0.0
    for token in [*tokens, "</s>"]:
        total += reference_logprob(tables, history, token)
        history.append(token)
    return total


@pytest.mark.parametrize("tables", [CHAR_TABLES, WORD_TABLES])
def test_batched_scores_equal_reference_back_off(tables):
    lm = NGramLM(tables, log10=True)
    generator = torch.Generator().manual_seed(0)
    vocab = len(lm.vocab)
    context = torch.randint(vocab, (200, lm.context_size), generator=generator)
    cut = torch.randint(lm.context_size + 1, (200, 1), generator=generator)
    context = context.masked_fill(torch.arange(lm.context_size) < cut, -1)
    next_ids = torch.randint(vocab, (200,), generator=generator)
    scores = lm.score(context, next_ids)
    for row, nxt, score in zip(context.tolist(), next_ids.tolist(), scores.tolist(), strict=True):
        history = [lm.vocab[i] for i in row if i >= 0]
        assert score == pytest.approx(reference_logprob(tables, history, lm.vocab[nxt]), abs=1e-9)
    every = lm.score_all(context)
    assert torch.equal(every.gather(1, next_ids[:, None])[:, 0], scores)


def test_ngram_lm_rejects_bad_tables_and_queries():
    with pytest.raises(ValueError, match="at least the unigram table"):
        NGramLM([])
    with pytest.raises(ValueError, match=r"ngrams\[1\] holds \('a', 'z'\)"):
        NGramLM([{("a",): (-1.0, 0.0)}, {("a", "z"): (-1.0, 0.0)}])
    lm = NGramLM(CHAR_TABLES, log10=True)
    with pytest.raises(ValueError, match=r"context must have shape \(..., order - 1\)"):
        lm.score(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"next_ids must lie in \[0, 5\)"):
        lm.score(torch.zeros(1, 2, dtype=torch.long), torch.tensor([5]))


# ---------------------------------------------------------------------------------------------
# shallow fusion against brute force
# ---------------------------------------------------------------------------------------------

CHAR_SYMBOLS = ["_", "a", "b", "c"]
WORD_SYMBOLS = ["_", "a", "b", " "]


def char_total(labels, acoustic, weight, bonus):
    tokens = [CHAR_SYMBOLS[s] for s in labels]
    return acoustic + weight * reference_sentence(CHAR_TABLES, tokens) + bonus * len(labels)


def word_total(labels, acoustic, weight, bonus):
    known = {gram[0] for gram in WORD_TABLES[0]}
    spelled = ["".join(WORD_SYMBOLS[s] for s in word) for word in words_of(labels, 3)]
    words = [word if word in known else "<unk>" for word in spelled]
    return acoustic + weight * reference_sentence(WORD_TABLES, words) + bonus * len(words)


@pytest.mark.parametrize(
    ("weight", "bonus", "seed"), [(0.7, 0.3, 0), (1.5, -0.5, 1), (0.0, 1.0, 2)]
)
def test_char_lm_fusion_equals_brute_force(weight, bonus, seed):
    log_probs = random_log_probs(torch.Generator().manual_seed(seed), (1, 5, 4))
    scorer = lm_scorer(NGramLM(CHAR_TABLES, log10=True), CHAR_SYMBOLS, "char")
    exact = {
        labels: char_total(labels, acoustic, weight, bonus)
        for labels, acoustic in brute_force(log_probs[0]).items()
    }
    result = prefix_beam_search(
        log_probs, beam=400, nbest=8, lm=scorer, lm_weight=weight, insertion_bonus=bonus
    )
    assert_matches(result, ranked(exact, 8))


@pytest.mark.parametrize(("weight", "bonus", "seed"), [(0.8, 0.4, 3), (2.0, 0.0, 4), (0.5, 2.0, 5)])
def test_word_lm_fusion_equals_brute_force(weight, bonus, seed):
    log_probs = random_log_probs(torch.Generator().manual_seed(seed), (1, 5, 4), scale=2.0)
    scorer = lm_scorer(NGramLM(WORD_TABLES, log10=True), WORD_SYMBOLS, "word", delimiter=" ")
    exact = {
        labels: word_total(labels, acoustic, weight, bonus)
        for labels, acoustic in brute_force(log_probs[0]).items()
    }
    result = prefix_beam_search(
        log_probs, beam=400, nbest=8, lm=scorer, lm_weight=weight, insertion_bonus=bonus
    )
    assert_matches(result, ranked(exact, 8))
    top = max(exact, key=exact.get)
    assert result.acoustic[0, 0] == pytest.approx(brute_force(log_probs[0])[top], abs=1e-6)


def test_fused_batch_with_lengths_equals_each_sequence_alone():
    log_probs = random_log_probs(torch.Generator().manual_seed(6), (3, 7, 4))
    lengths = torch.tensor([7, 4, 6])
    scorer = lm_scorer(NGramLM(WORD_TABLES, log10=True), WORD_SYMBOLS, "word")
    options = {"beam": 10, "nbest": 4, "lm": scorer, "lm_weight": 0.9, "insertion_bonus": 0.2}
    batched = prefix_beam_search(log_probs, lengths, **options)
    for b, length in enumerate(lengths.tolist()):
        alone = prefix_beam_search(log_probs[b : b + 1, :length], **options)
        assert batched.to_lists()[b] == alone.to_lists()[0]
        assert torch.allclose(batched.scores[b], alone.scores[0])


def test_char_scorer_renames_symbols_with_token_map():
    tables = [{**CHAR_TABLES[0], ("<space>",): (-1.0, 0.0)}]
    symbols = ["_", "a", " "]
    scorer = lm_scorer(NGramLM(tables, log10=True), symbols, "char", token_map={" ": "<space>"})
    log_probs = random_log_probs(torch.Generator().manual_seed(7), (1, 4, 3))
    exact = {
        labels: acoustic
        + reference_sentence(tables, ["<space>" if s == 2 else "a" for s in labels])
        for labels, acoustic in brute_force(log_probs[0]).items()
    }
    result = prefix_beam_search(log_probs, beam=64, nbest=5, lm=scorer, lm_weight=1.0)
    assert_matches(result, ranked(exact, 5))


def test_scorer_arguments_are_checked():
    char_lm = NGramLM(CHAR_TABLES, log10=True)
    with pytest.raises(ValueError, match="unit must be 'char' or 'word'"):
        lm_scorer(char_lm, CHAR_SYMBOLS, "phone")
    with pytest.raises(ValueError, match="symbol 'd' .* is not in the lm"):
        lm_scorer(char_lm, [*CHAR_SYMBOLS, "d"], "char")
    with pytest.raises(ValueError, match="lm must have <unk>"):
        lm_scorer(char_lm, CHAR_SYMBOLS, "word", delimiter="c")
    with pytest.raises(ValueError, match="sentence tokens"):
        lm_scorer(NGramLM([{("a",): (-1.0, 0.0)}]), CHAR_SYMBOLS, "char")
    word_lm = NGramLM(WORD_TABLES, log10=True)
    with pytest.raises(ValueError, match="delimiter '_' must not be the blank"):
        lm_scorer(word_lm, WORD_SYMBOLS, "word", delimiter="_")
    log_probs = random_log_probs(torch.Generator().manual_seed(8), (1, 3, 5))
    scorer = lm_scorer(word_lm, WORD_SYMBOLS, "word")
    with pytest.raises(ValueError, match="lm maps 4 CTC symbols, but log_probs has V = 5"):
        prefix_beam_search(log_probs, lm=scorer)
    with pytest.raises(ValueError, match="lm was built with blank 0, the search uses blank 1"):
        prefix_beam_search(log_probs[..., :4], lm=scorer, blank=1)


# ---------------------------------------------------------------------------------------------
# fused CPU search against the tensorized one, where the beam is narrow
# ---------------------------------------------------------------------------------------------


def search_options():
    """Settings where beam pruning, prefix merging, LM states and the lexicon interact."""
    char = lm_scorer(NGramLM(CHAR_TABLES, log10=True), CHAR_SYMBOLS, "char")
    word = lm_scorer(NGramLM(WORD_TABLES, log10=True), WORD_SYMBOLS, "word")
    lexicon = Lexicon(["a", "ab", "ba", "bab"], WORD_SYMBOLS, " ")
    return {
        "plain": {},
        "top-2 pruning": {"prune": 2},
        "threshold pruning": {"prune": -2.0},
        "bonus": {"insertion_bonus": 0.7},
        "char lm": {"lm": char, "lm_weight": 0.8, "insertion_bonus": 0.3},
        "word lm": {"lm": word, "lm_weight": 1.2, "insertion_bonus": 0.5},
        "lexicon": {"lexicon": lexicon},
        "word lm and lexicon": {"lm": word, "lm_weight": 0.6, "lexicon": lexicon, "prune": 3},
    }


@pytest.mark.parametrize("name", list(search_options()))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.compares_engines
def test_fused_search_equals_tensorized_search(name, dtype):
    generator = torch.Generator().manual_seed(12)
    log_probs = random_log_probs(generator, (4, 80, 4), scale=2.0).to(dtype)
    lengths = torch.tensor([80, 41, 1, 67])
    options = {"beam": 6, "nbest": 4, **search_options()[name]}
    assert native.available(log_probs), "the fused kernels did not build"
    fused = prefix_beam_search(log_probs, lengths, **options)
    with native.disabled():
        tensorized = prefix_beam_search(log_probs, lengths, **options)
    assert fused.to_lists() == tensorized.to_lists()
    tolerance = 1e-9 if dtype == torch.float64 else 1e-3
    for got, want in zip(fused[2:], tensorized[2:], strict=True):
        assert torch.allclose(got, want, atol=tolerance, rtol=0), name
