"""Bad input to the CTC toolkit gets a named ValueError; half-precision scores work.

Issue 21: logits passed as log-probabilities, float16/bfloat16 scores, a non-integer blank,
ARPA files with impossible numbers, a broken header or a missing path, a lexicon given one
string, and graph words or targets given as strings or floats instead of symbol ids. Oracles:
PyTorch's ``ctc_loss`` on the same (rounded) values, the ARPA back-off rule computed by hand
(as in `test_ctc_lm`), results with an ordinary ``int`` blank, and graphs from plain int ids.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_ctc_lm import ARPA, CHAR_SYMBOLS, CHAR_TABLES, sentence_logprob

from hybrid.ctc import (
    Lexicon,
    NGramLM,
    ctc_alignment_graph,
    ctc_lexicon_graph,
    ctc_loss,
    ctc_topology,
    forced_align,
    greedy_decode,
    lm_scorer,
    prefix_beam_search,
    read_arpa,
)
from hybrid.structured import native

TARGETS = torch.tensor([[1, 2, 2], [3, 1, -1]])
LENGTHS = torch.tensor([9, 6])
TARGET_LENGTHS = torch.tensor([3, 2])


def logits(vocab: int = 5, scale: float = 3.0) -> torch.Tensor:
    """``(2, 9, vocab)`` float64 raw scores, far from normalised."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 9, vocab, generator=generator, dtype=torch.float64) * scale + 1.0


def torch_ctc(log_probs: torch.Tensor) -> torch.Tensor:
    """PyTorch's per-sequence loss of ``TARGETS`` over batch-first ``log_probs``."""
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        TARGETS.clamp_min(0),
        LENGTHS,
        TARGET_LENGTHS,
        reduction="none",
    )


# ---------------------------------------------------------------------------------------------
# Case 1: logits are not log-probabilities
# ---------------------------------------------------------------------------------------------


def test_ctc_loss_refuses_logits_and_normalises_them_on_request():
    scores = logits()
    with pytest.raises(ValueError, match=r"log_probs must be log-probabilities.*log_softmax"):
        ctc_loss(scores, TARGETS, LENGTHS, reduction="none")
    expected = torch_ctc(scores.log_softmax(-1))
    assert torch.allclose(
        ctc_loss(scores, TARGETS, LENGTHS, reduction="none", log_softmax=True), expected
    )


def test_ctc_loss_checks_normalisation_only_within_lengths():
    log_probs = logits().log_softmax(-1)
    padded = log_probs.clone()
    padded[1, 6:] = 5.0  # garbage past the second sequence's 6 frames
    loss = ctc_loss(padded, TARGETS, LENGTHS, reduction="none")
    assert torch.allclose(loss, torch_ctc(log_probs))
    padded[1, 5, 0] = 5.0  # the last frame inside the length
    with pytest.raises(ValueError, match="sequence 1, frame 5"):
        ctc_loss(padded, TARGETS, LENGTHS)


# ---------------------------------------------------------------------------------------------
# Case 2: float16 and bfloat16 log-probabilities
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_ctc_loss_promotes_half_precision_to_float32(dtype):
    log_probs = logits(vocab=30).log_softmax(-1).to(dtype).requires_grad_()
    loss = ctc_loss(log_probs, TARGETS, LENGTHS, reduction="none")
    assert loss.dtype == torch.float32
    assert torch.allclose(loss, torch_ctc(log_probs.detach().float()))
    loss.sum().backward()
    assert log_probs.grad.dtype == dtype
    assert torch.isfinite(log_probs.grad.float()).all()


# ---------------------------------------------------------------------------------------------
# Case 3: blank must be an int in [0, V)
# ---------------------------------------------------------------------------------------------

CALLS = {
    "ctc_loss": lambda lp, blank: ctc_loss(lp, TARGETS, LENGTHS, blank=blank),
    "greedy_decode": lambda lp, blank: greedy_decode(lp, LENGTHS, blank=blank),
    "prefix_beam_search": lambda lp, blank: prefix_beam_search(lp, LENGTHS, beam=3, blank=blank),
    "forced_align": lambda lp, blank: forced_align(lp, TARGETS, LENGTHS, blank=blank),
    "ctc_topology": lambda lp, blank: ctc_topology(lp.shape[-1], blank=blank),
    "lm_scorer": lambda lp, blank: lm_scorer(
        NGramLM(CHAR_TABLES, log10=True), CHAR_SYMBOLS, blank=blank
    ),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_blank_must_be_an_int_symbol(call):
    log_probs = logits().log_softmax(-1)
    for blank in (1.5, 0.0, True, "0", None, -1, 5):
        with pytest.raises(
            ValueError, match=r"blank must be a symbol in \[0, V\) = \[0, \d\), an int"
        ):
            call(log_probs, blank)
    for blank in (np.int64(0), torch.tensor(0)):  # integers of other types are ints
        call(log_probs, blank)


# ---------------------------------------------------------------------------------------------
# Cases 4 and 5: ARPA numbers, headers and paths
# ---------------------------------------------------------------------------------------------


def arpa_with(number: int, line: str) -> str:
    """`ARPA` with line ``number`` (1-based) replaced by ``line``."""
    lines = ARPA.splitlines()
    lines[number - 1] = line
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("number", "line", "match"),
    [
        (10, "inf\ta\t-0.25", "log10 probability must be finite and <= 0, got 'inf'"),
        (10, "-inf\ta\t-0.25", "log10 probability must be finite and <= 0, got '-inf'"),
        (10, "0.5\ta\t-0.25", "log10 probability must be finite and <= 0, got '0.5'"),
        (17, "0.01\ta b\t-0.05", "log10 probability must be finite and <= 0, got '0.01'"),
        (10, "-0.50\ta\tinf", "log10 back-off weight must be finite, got 'inf'"),
        (10, "-0.50\ta\t-inf", "log10 back-off weight must be finite, got '-inf'"),
    ],
)
def test_read_arpa_refuses_impossible_numbers_naming_file_and_line(tmp_path, number, line, match):
    path = tmp_path / "model.arpa"
    path.write_text(arpa_with(number, line), encoding="utf-8")
    with pytest.raises(
        ValueError, match=rf"ARPA file '{re.escape(str(path))}', line {number}: a {match}"
    ):
        read_arpa(path)


def test_positive_back_off_weights_are_legal():
    # P(c|<s>) backs off: backoff(<s>) + P(c), with backoff(<s>) now +0.30 (log10).
    lm = read_arpa(arpa_with(8, "-99\t<s>\t0.30"))
    expected = ((0.30 - 0.80) + (-0.10 - 0.50) + (-0.50)) * math.log(10.0)
    assert sentence_logprob(lm, ["c", "a"]) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match=r"holds \('a',\) with .* finite log-probability <= 0"):
        NGramLM([{("a",): (math.inf, 0.0)}])


@pytest.mark.parametrize(
    ("text", "number", "match"),
    [
        (ARPA.replace("\\data\\", "data"), 28, r"no \\data\\ header"),
        (arpa_with(3, "ngram 1=7"), 15, r"section \\1-grams: has 6 entries, the header declares 7"),
        (arpa_with(5, "ngram 3=4"), 28, r"section \\3-grams: has 3 entries, the header declares 4"),
        (ARPA.replace("\\end\\", ""), 28, r"file ends before \\end\\"),
    ],
)
def test_broken_arpa_header_names_file_and_line(tmp_path, text, number, match):
    path = tmp_path / "broken.arpa"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ValueError, match=rf"ARPA file '{re.escape(str(path))}', line {number}: {match}"
    ):
        read_arpa(str(path))


def test_read_arpa_names_a_path_it_cannot_read(tmp_path):
    missing = tmp_path / "missing.arpa"
    with pytest.raises(ValueError, match=rf"source '{re.escape(str(missing))}' is not a file"):
        read_arpa(missing)
    with pytest.raises(ValueError, match=rf"source '{re.escape(str(tmp_path))}' is not a file"):
        read_arpa(str(tmp_path))
    latin1 = tmp_path / "latin1.arpa"
    latin1.write_bytes(ARPA.replace("a", "\xe9").encode("latin-1"))
    with pytest.raises(
        ValueError, match=rf"source '{re.escape(str(latin1))}' is not a readable UTF-8 file"
    ):
        read_arpa(latin1)
    with pytest.raises(ValueError, match="source must be a path or ARPA text, got int"):
        read_arpa(3)


def test_read_arpa_skips_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.arpa"
    path.write_text(ARPA.split("\n", 1)[1], encoding="utf-8-sig")  # \data\ on line 1
    assert sentence_logprob(read_arpa(path), ["b", "c"]) == sentence_logprob(
        read_arpa(ARPA), ["b", "c"]
    )


# ---------------------------------------------------------------------------------------------
# Case 6: a lexicon's words
# ---------------------------------------------------------------------------------------------

SYMBOLS = ["_", "h", "e", "l", "o", "w", "r", "d", " "]


def test_lexicon_refuses_one_string_for_its_words():
    with pytest.raises(
        ValueError, match=r"words must be a list of words, e\.g\. \['hello', 'world'\]"
    ):
        Lexicon("hello world", SYMBOLS, " ")
    with pytest.raises(ValueError, match="words must be a list of words"):
        Lexicon("hello", SYMBOLS, " ")
    with pytest.raises(
        ValueError, match=r"words\[1\] must be a str or a sequence of symbol strings"
    ):
        Lexicon(["hello", 5], SYMBOLS, " ")
    assert Lexicon(["hello", "world"], SYMBOLS, " ").words == ("hello", "world")


# ---------------------------------------------------------------------------------------------
# Case 10: graph words and targets given as strings (or floats) instead of symbol ids
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "match"),
    [
        (["hello", "world"], r"words\[0\] must be a sequence of int symbol ids, got str 'hello'"),
        ([[1, 2], "12"], r"words\[1\] must be a sequence of int symbol ids, got str '12'"),
        ([[1, 2], [3, "l"]], r"words\[1\]\[1\] must be an int symbol id, got str 'l'"),
        ([[1, 2.0]], r"words\[0\]\[1\] must be an int symbol id, got float 2\.0"),
        ([[1, True]], r"words\[0\]\[1\] must be an int symbol id, got bool True"),
        ([[1], None], r"words\[1\] must be a sequence of int symbol ids, got NoneType"),
        ("hello", "words must be a list of words, each a sequence of int symbol ids, got str"),
    ],
)
def test_lexicon_graph_names_a_word_that_is_not_symbol_ids(words, match):
    with pytest.raises(ValueError, match=match):
        ctc_lexicon_graph(words, 9)


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("12", r"target must be a sequence of int symbol ids, got str '12'"),
        ([1, 2.5], r"target\[1\] must be an int symbol id, got float 2\.5"),
    ],
)
def test_alignment_graph_names_a_target_that_is_not_symbol_ids(target, match):
    with pytest.raises(ValueError, match=match):
        ctc_alignment_graph(target, 9)


def test_graph_symbol_ids_may_be_integers_of_any_type_but_not_floats():
    plain = ctc_lexicon_graph([[1, 2], [3]], 4)
    for words in ([np.array([1, 2]), (np.int64(3),)], [torch.tensor([1, 2]), torch.tensor([3])]):
        graph = ctc_lexicon_graph(words, 4)
        for field in ("src", "dst", "emission", "label", "weight", "start", "final"):
            assert torch.equal(getattr(graph, field), getattr(plain, field))
    for words in ([np.array([1.0, 2.0]), [3]], [torch.tensor([1.0, 2.0]), [3]]):
        with pytest.raises(ValueError, match=r"words\[0\]\[0\] must be an int symbol id, got"):
            ctc_lexicon_graph(words, 4)


# ---------------------------------------------------------------------------------------------
# Case 11: frames, targets and searches with no finite score (all -inf) raise, on both engines
# (the fused kernels and the eager engines); single -inf symbols (masks) and -inf padding past
# each length stay allowed.
# ---------------------------------------------------------------------------------------------

NEG_INF = float("-inf")


@pytest.fixture(params=["native", "eager"])
def engine(request):
    """Run the test body on the fused kernels, then on the eager engines."""
    if request.param == "native":
        if not native.available(torch.zeros(1)):
            pytest.skip("fused kernels unavailable")
        yield request.param
    else:
        with native.disabled():
            yield request.param


def finite_log_probs(batch: int = 2, steps: int = 9, vocab: int = 5) -> torch.Tensor:
    """``(batch, steps, vocab)`` float64 log-softmax of seeded random scores."""
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(batch, steps, vocab, generator=generator, dtype=torch.float64)
    return scores.log_softmax(-1)


CTC_CALLS = {
    "greedy_decode": lambda lp: greedy_decode(lp, LENGTHS),
    "forced_align": lambda lp: forced_align(lp, TARGETS, LENGTHS, TARGET_LENGTHS),
    "prefix_beam_search": lambda lp: prefix_beam_search(lp, LENGTHS, beam=4),
    "ctc_loss": lambda lp: ctc_loss(lp, TARGETS, LENGTHS, TARGET_LENGTHS, reduction="none"),
}


@pytest.mark.parametrize("call", CTC_CALLS.values(), ids=CTC_CALLS.keys())
def test_a_frame_whose_every_symbol_is_neg_inf_is_refused_within_lengths_only(call, engine):
    masked = finite_log_probs()
    masked[0, :, 3] = NEG_INF  # one symbol masked on every frame, renormalised: distributions
    masked[0] = masked[0].log_softmax(-1)
    masked[1, 6:] = NEG_INF  # padding past the second sequence's 6 frames
    expected = call(masked.masked_fill(masked == NEG_INF, -1e4))
    for got, want in zip(call(masked), expected, strict=True):
        assert torch.equal(got, want)
    masked[1, 2] = NEG_INF
    masked[1, 4] = NEG_INF
    with pytest.raises(
        ValueError,
        match=r"log_probs must give some symbol a finite log-probability on every frame within "
        r"lengths; 2 frame\(s\) have every symbol -inf, first \(sequence, frame\): "
        r"\(1, 2\), \(1, 4\)$",
    ):
        call(masked)


def test_the_refusal_names_the_first_five_empty_frames():
    log_probs = finite_log_probs()
    log_probs[0, 1:] = NEG_INF
    with pytest.raises(ValueError, match=r"8 frame\(s\) .*: \(0, 1\), \(0, 2\), \(0, 3\), "):
        greedy_decode(log_probs)
    with pytest.raises(ValueError, match=r"\(0, 4\), \(0, 5\)$"):
        greedy_decode(log_probs)


def test_forced_align_names_the_targets_with_no_finite_alignment(engine):
    log_probs = finite_log_probs()
    # Sequence 0 can never emit its symbol 2; sequence 1 ([3, 1]) is untouched.
    impossible = log_probs.clone()
    impossible[0, :, 2] = NEG_INF
    with pytest.raises(ValueError, match=r"^targets of sequences \[0\] have no alignment of"):
        forced_align(impossible, TARGETS, LENGTHS, TARGET_LENGTHS)
    # The repeat 2, 2 of sequence 0 needs a blank between its two frames: none is possible.
    no_blank = log_probs.clone()
    no_blank[:, :, 0] = NEG_INF
    with pytest.raises(ValueError, match=r"^targets of sequences \[0\] have no alignment of"):
        forced_align(no_blank, TARGETS, LENGTHS, TARGET_LENGTHS)
    both = impossible.clone()
    both[1, :, 3] = NEG_INF
    with pytest.raises(ValueError, match=r"^targets of sequences \[0, 1\] have no alignment"):
        forced_align(both, TARGETS, LENGTHS, TARGET_LENGTHS)
    # Masks an alignment can avoid are fine: the best one avoids them, at a finite score.
    masked = log_probs.clone()
    masked[0, :4, 2] = NEG_INF
    alignment = forced_align(masked, TARGETS, LENGTHS, TARGET_LENGTHS)
    assert alignment.scores.isfinite().all()
    assert torch.allclose(alignment.frame_scores.sum(1), alignment.scores)


def test_prefix_beam_search_names_the_sequences_where_no_hypothesis_survives(engine):
    symbols = ["_", "a", "b", " "]
    lexicon = Lexicon(["ab"], symbols, " ")
    log_probs = finite_log_probs(batch=3, steps=6, vocab=4)
    # Sequence 1 can only say "a" (not a word): the lexicon rejects every hypothesis.
    log_probs[1, :, [0, 2, 3]] = NEG_INF
    with pytest.raises(
        ValueError,
        match=r"^prefix_beam_search found no hypothesis of finite score for sequences \[1\]: "
        r"every prefix the beam kept scores -inf \(with a lexicon",
    ):
        prefix_beam_search(log_probs, beam=4, lexicon=lexicon)
    # Without the lexicon, "a" survives, with its only alignment's score.
    result = prefix_beam_search(log_probs, beam=4)
    assert result.to_lists()[1][0] == [1]
    assert float(result.scores[1, 0]) == pytest.approx(float(log_probs[1, :, 1].sum()))


def test_prefix_beam_search_spans_only_the_possible_hypotheses(engine):
    log_probs = finite_log_probs(batch=2, steps=2, vocab=2)
    log_probs[0, 0, 0] = NEG_INF  # no blank first: the empty hypothesis is impossible
    result = prefix_beam_search(log_probs, beam=4)
    assert result.to_lists()[0] == [[1], [], [], []]
    assert result.scores[0, 1:].eq(NEG_INF).all()
    assert result.spans[0, 0, 0].tolist() == list(
        forced_align(log_probs[:1], torch.tensor([[1]])).spans[0, 0]
    )
    assert result.spans[0, 1:].eq(-1).all()


# ---------------------------------------------------------------------------------------------
# Meta tensors (found by an independent tester): a meta tensor for any tensor argument of the
# CTC functions, or the tables of a language model or lexicon moved to the meta device, gets
# the chain engine's own named error (one check, one message), not "Tensor.item() cannot be
# called on meta tensors" or "Cannot copy out of meta tensor".
# ---------------------------------------------------------------------------------------------


def meta_error(name: str) -> str:
    """Oracle: the chain engine's error for meta emissions, said of ``name``."""
    from hybrid.structured import log_partition

    with pytest.raises(ValueError) as raised:
        log_partition(torch.zeros(1, 2, 3, device="meta"), torch.zeros(3, 3))
    assert str(raised.value).startswith("emissions is a meta tensor: ")
    return str(raised.value).replace("emissions", name, 1)


def meta(x: torch.Tensor) -> torch.Tensor:
    return x.to("meta")


META_LOG_PROBS = finite_log_probs(vocab=len(CHAR_SYMBOLS))
CHAR_LM = NGramLM(CHAR_TABLES, log10=True)
META_CALLS = {
    "ctc_loss-log_probs": ("log_probs", lambda lp: ctc_loss(meta(lp), TARGETS, LENGTHS)),
    "ctc_loss-targets": ("targets", lambda lp: ctc_loss(lp, meta(TARGETS), LENGTHS)),
    "ctc_loss-lengths": ("lengths", lambda lp: ctc_loss(lp, TARGETS, meta(LENGTHS))),
    "ctc_loss-target_lengths": (
        "target_lengths",
        lambda lp: ctc_loss(lp, TARGETS, LENGTHS, meta(TARGET_LENGTHS), zero_infinity=True),
    ),
    "greedy_decode-log_probs": ("log_probs", lambda lp: greedy_decode(meta(lp), LENGTHS)),
    "greedy_decode-lengths": ("lengths", lambda lp: greedy_decode(lp, meta(LENGTHS))),
    "forced_align-log_probs": ("log_probs", lambda lp: forced_align(meta(lp), TARGETS, LENGTHS)),
    "forced_align-targets": ("targets", lambda lp: forced_align(lp, meta(TARGETS), LENGTHS)),
    "forced_align-lengths": ("lengths", lambda lp: forced_align(lp, TARGETS, meta(LENGTHS))),
    "forced_align-target_lengths": (
        "target_lengths",
        lambda lp: forced_align(lp, TARGETS, LENGTHS, meta(TARGET_LENGTHS)),
    ),
    "prefix_beam_search-log_probs": ("log_probs", lambda lp: prefix_beam_search(meta(lp))),
    "prefix_beam_search-lengths": ("lengths", lambda lp: prefix_beam_search(lp, meta(LENGTHS))),
    "prefix_beam_search-lexicon": (
        "lexicon.transitions",
        lambda lp: prefix_beam_search(lp, lexicon=Lexicon(["ab"], CHAR_SYMBOLS, "c").to("meta")),
    ),
    "prefix_beam_search-lm": (
        "lm table keys",
        lambda lp: prefix_beam_search(
            lp, lm=lm_scorer(CHAR_LM, CHAR_SYMBOLS, "char").to("meta"), lm_weight=0.5
        ),
    ),
    "NGramLM.score-context": (
        "context",
        lambda _: CHAR_LM.score(meta(torch.zeros(2, 1, dtype=torch.long)), torch.zeros(2).long()),
    ),
    "NGramLM.score-tables": (
        "the order-1 table of the lm",
        lambda _: CHAR_LM.to("meta").score(torch.zeros(2, 1).long(), torch.zeros(2).long()),
    ),
    "ctc_alignment_graph-target": (
        "target",
        lambda _: ctc_alignment_graph(meta(torch.tensor([1, 2])), len(CHAR_SYMBOLS)),
    ),
}


@pytest.mark.parametrize(("name", "call"), META_CALLS.values(), ids=META_CALLS.keys())
def test_a_meta_tensor_anywhere_gets_the_chain_engines_named_error(name, call):
    with pytest.raises(ValueError) as raised:
        call(META_LOG_PROBS)
    assert str(raised.value) == meta_error(name)
