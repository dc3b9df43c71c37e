"""Pronunciation lexicons, phone topologies and n-gram grammars, and the decoding graphs they
compose into, against enumerations of their paths and the language model's own scores."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import networkx as nx
import pytest
import torch
from processes import assert_same
from realdata import real_corpus
from speech_oracles import BIGRAM, check_graph_against_paths, enumerate_paths, graph_paths

from hybrid.ctc.lm import read_arpa
from hybrid.speech.audio import read_wav
from hybrid.speech.decoder import decode_paths, frame_scores, phone_segments, word_spans
from hybrid.speech.features import cmvn, deltas, mfcc
from hybrid.speech.gmm import equal_alignment_start, train_monophones
from hybrid.speech.graph import decoding_graph
from hybrid.speech.lexicon import Lexicon, Pronunciation, cmudict_lexicon, read_lexicon
from hybrid.speech.metrics import error_rate
from hybrid.speech.topology import (
    SILENCE,
    PhoneTopology,
    Topology,
    loop_grammar,
    ngram_data,
    ngram_grammar,
    task_grammar,
    topology_from_dict,
    transcript_grammar,
)

# -- lexicons --------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "lexicon.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cmudict_form_reads_alternates_and_comments(tmp_path):
    path = _write(
        tmp_path,
        ";;; a comment\nread  R EH1 D\nread(2)  R IY1 D\nyes  Y EH1 S # a comment\n"
        "read(3)  R EH1 D\n",
    )
    lexicon = read_lexicon(path)
    assert lexicon.words == ("read", "yes")
    assert [p.phones for p in lexicon.pronunciations("read")] == [
        ("R", "EH1", "D"),
        ("R", "IY1", "D"),
    ]
    assert lexicon.pronunciations("yes") == (Pronunciation(("Y", "EH1", "S")),)
    assert lexicon.phones == ("D", "EH1", "IY1", "R", "S", "Y")
    plain = lexicon.without_stress()
    assert plain.pronunciations("yes")[0].phones == ("Y", "EH", "S")


def test_timit_and_probability_forms(tmp_path):
    timit = read_lexicon(_write(tmp_path, "; comment\na  /ax/\nable  /ey1 b el/\n", "t.txt"))
    assert timit.pronunciations("able")[0].phones == ("ey1", "b", "el")
    probs = read_lexicon(_write(tmp_path, "the 1.0 DH AH\nthe 0.5 DH IY\n", "p.txt"))
    assert [p.log_prob for p in probs.pronunciations("the")] == [0.0, math.log(0.5)]


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("yes Y EH S\nno\n", r"lexicon.txt:2: 'no' has no phones"),
        ("the 1.0 DH AH\nthe DH IY\n", r"lexicon.txt:2: expected 'word probability"),
        ("the 1.5 DH AH\n", r"lexicon.txt:1: the probability 1.5 is not in \(0, 1\]"),
        ("a  /ax/\nable  ey1 b\n", r"lexicon.txt:2: expected 'word  /phone"),
        ("a  /ax/\nb  //\n", r"lexicon.txt:2: expected 'word  /phone"),
        ("yes Y EH S\nno 0.5 N OW\n", r"lexicon.txt:2: expected 'word phone phone"),
        ("yes Y EH S\nno /n ow/\n", r"lexicon.txt:2: expected 'word phone phone"),
        (";;; only comments\n\n", r"lexicon.txt: no entry"),
    ],
)
def test_malformed_lexicons_name_the_file_and_line(tmp_path, text, pattern):
    with pytest.raises(ValueError, match=pattern):
        read_lexicon(_write(tmp_path, text))


def test_a_missing_word_is_named_unless_a_pronunciation_function_is_given():
    lexicon = Lexicon({"yes": [("Y", "EH", "S")]})
    with pytest.raises(ValueError, match="the word 'no' is not in the lexicon"):
        lexicon.pronunciations("no")
    spelled = Lexicon({"yes": [("Y", "EH", "S")]}, pronounce=lambda w: [tuple(w.upper())])
    assert spelled.pronunciations("no")[0].phones == ("N", "O")
    with pytest.raises(ValueError, match="'no' has no pronunciation"):
        Lexicon({"yes": [("Y",)]}, pronounce=lambda w: []).pronunciations("no")
    with pytest.raises(ValueError, match="expected one or more phone symbols"):
        Lexicon({"yes": [("Y", "E H")]})
    with pytest.raises(ValueError, match="log probability 0.5"):
        Lexicon({"yes": [Pronunciation(("Y",), 0.5)]})


def test_cmudict_is_the_default_english_lexicon():
    lexicon = cmudict_lexicon().restricted(["yes", "no", "read"]).without_stress()
    assert [p.phones for p in lexicon.pronunciations("yes")] == [("Y", "EH", "S")]
    assert [p.phones for p in lexicon.pronunciations("no")] == [("N", "OW")]
    assert {p.phones for p in lexicon.pronunciations("read")} == {
        ("R", "EH", "D"),
        ("R", "IY", "D"),
    }


def test_timit_dictionary_reads():
    path = real_corpus("timit_sample") / "timitdic.txt"
    lexicon = read_lexicon(path)
    assert len(lexicon) > 600 and "able" in lexicon
    assert lexicon.pronunciations("able")[0].phones == ("ey1", "b", "el")


# -- phone topologies ------------------------------------------------------------------------

LEXICON = Lexicon(
    {
        "a": [Pronunciation(("x", "y"), math.log(0.75)), Pronunciation(("y",), math.log(0.25))],
        "b": [("y", "x")],
    }
)
PHONES = PhoneTopology(("a", "b"), LEXICON, phone_states=1, silence_states=1)


def test_phone_topology_spells_words_in_shared_phone_states():
    topology = PhoneTopology(("a", "b"), LEXICON, phone_states=2, silence_states=3)
    assert topology.phones == ("x", "y") and topology.num_pdfs == 7
    assert topology.chains(0) == [([0, 1, 2, 3], math.log(0.75)), ([2, 3], math.log(0.25))]
    assert topology.chains(1) == [([2, 3, 0, 1], 0.0)]
    assert topology.chains(SILENCE) == [([4, 5, 6], 0.0)]
    assert topology.pdf_phones().tolist() == [0, 0, 1, 1, -1, -1, -1]
    with pytest.raises(ValueError, match=r"'x y' of 'a' uses the phone 'x', which the models"):
        PhoneTopology(("a",), LEXICON, phones=("y",))
    with pytest.raises(ValueError, match="the word 'c' is not in the lexicon"):
        PhoneTopology(("a", "c"), LEXICON)
    with pytest.raises(ValueError, match="unit must be a word index"):
        topology.chains(2)


# -- n-gram grammars -------------------------------------------------------------------------


def _sentence_log_prob(lm, words):
    """The model's log-probability of a sentence by its own back-off scoring."""
    tokens = ["<s>", *words, "</s>"]
    ids = [lm.token_id(t) for t in tokens]
    total = 0.0
    for i in range(1, len(ids)):
        context = torch.tensor([ids[max(0, i - lm.context_size) : i]])
        context = torch.cat([torch.full((1, lm.context_size - context.shape[1]), -1), context], 1)
        total += float(lm.score(context, torch.tensor([ids[i]])))
    return total


def _grammar_sentences(grammar, max_words):
    """Best weight of each word sequence of at most ``max_words`` words over the grammar's
    junction paths (epsilon edges followed, silence skipped, a path ending where a unit
    ended)."""
    best = {}

    def walk(junction, weight, words, by_unit):
        data = grammar.nodes[junction]
        if by_unit and "final" in data:
            best[words] = max(best.get(words, -math.inf), weight + data["final"])
        for _, target, edge in grammar.out_edges(junction, data=True):
            if edge["unit"] is None:
                walk(target, weight + edge.get("weight", 0.0), words, False)
            elif edge["unit"] != SILENCE and len(words) < max_words:
                walk(target, weight + edge.get("weight", 0.0), (*words, edge["unit"]), True)

    for junction, data in grammar.nodes(data=True):
        if "start" in data:
            walk(junction, data["start"], (), False)
    return best


def test_ngram_grammar_gives_every_sentence_its_model_probability():
    lm = read_arpa(BIGRAM)
    words = ("a", "b", "c")
    grammar = ngram_grammar(lm, words)
    best = _grammar_sentences(grammar, 3)
    sentences = [s for n in range(1, 4) for s in itertools.product(range(3), repeat=n)]
    assert set(best) == set(sentences)
    for sentence in sentences:
        want = _sentence_log_prob(lm, [words[w] for w in sentence])
        assert best[sentence] == pytest.approx(want, abs=1e-9), sentence


def test_ngram_grammar_scales_and_penalises_and_reads_a_unigram_model():
    yesno = read_arpa(
        "\\data\\\nngram 1=4\n\n\\1-grams:\n-1\tNO\n-1\tYES\n-99\t<s>\n-1\t</s>\n\n\\end\\\n"
    )
    grammar = ngram_grammar(yesno, ["YES", "NO"], scale=2.0, word_penalty=-0.5)
    best = _grammar_sentences(grammar, 2)
    step = 2.0 * -math.log(10) - 0.5
    assert best[(0,)] == pytest.approx(step + 2.0 * -math.log(10))
    assert best[(1, 0)] == pytest.approx(2 * step + 2.0 * -math.log(10))


def test_ngram_grammar_errors_are_named_and_a_model_without_an_end_ends_anywhere():
    lm = read_arpa(BIGRAM)
    with pytest.raises(ValueError, match=r"no unigram for the words \['d'\]"):
        ngram_grammar(lm, ["a", "d"])
    trigram = BIGRAM.replace("ngram 2=5", "ngram 2=5\nngram 3=1").replace(
        "\\end\\", "\\3-grams:\n-0.1\tb b a\n\n\\end\\"
    )
    with pytest.raises(ValueError, match=r"lists the 3-gram 'b b a' but not its history 'b b'"):
        ngram_grammar(read_arpa(trigram), ["a", "b", "c"])
    no_end = "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n-0.3\t<s>\n\n\\end\\\n"
    endless = ngram_grammar(read_arpa(no_end), ["a"])  # without </s>, ending costs nothing
    assert _grammar_sentences(endless, 2)[(0, 0)] == pytest.approx(2 * -0.3 * math.log(10))


# -- composed decoding graphs against the HMM definition ----------------------------------


GRAMMARS = {
    "loop": lambda: loop_grammar(2, word_penalty=-0.4),
    "transcript": lambda: transcript_grammar([1, 0]),
    "bigram": lambda: ngram_grammar(read_arpa(BIGRAM.replace("c", "b2")), ["a", "b"]),
}


@pytest.mark.parametrize("name", list(GRAMMARS))
@pytest.mark.parametrize("frames", [3, 5])
@pytest.mark.parametrize("determinize", [False, True], ids=["by-word", "determinized"])
def test_composed_graph_paths_equal_the_definition(name, frames, determinize):
    check_graph_against_paths(PHONES, GRAMMARS[name](), frames, frames, determinize)


def _sums(paths):
    """log-sum-exp of the weights of the paths that read the same pdfs and write the same
    words."""
    grouped = {}
    for pdfs, weight, words in paths:
        grouped.setdefault((tuple(pdfs), words), []).append(weight)
    return {
        key: float(torch.tensor(w, dtype=torch.float64).logsumexp(0)) for key, w in grouped.items()
    }


@pytest.mark.parametrize("name", list(GRAMMARS))
def test_every_graph_path_spells_an_allowed_sentence_with_its_weight(name):
    loops = torch.rand(
        PHONES.num_pdfs, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    loops = loops * 0.8 + 0.1
    grammar = GRAMMARS[name]()
    graph = decoding_graph(PHONES, grammar, loops, determinize=False)
    for frames in (1, 2, 4):
        found = _sums(graph_paths(graph, frames))
        want = _sums(enumerate_paths(grammar, PHONES, loops, frames))
        assert found.keys() == want.keys(), frames
        for key, weight in want.items():
            assert found[key] == pytest.approx(weight, abs=1e-9), key


def test_bad_grammars_are_named():
    loops = torch.full((PHONES.num_pdfs,), 0.5)
    empty = nx.MultiDiGraph()
    empty.add_node(0, start=0.0, final=0.0)
    with pytest.raises(ValueError, match="no final junction reached by a unit"):
        decoding_graph(PHONES, empty, loops)
    cycle = loop_grammar(2)
    cycle.add_node("other")
    cycle.add_edge("loop", "other", unit=None)
    cycle.add_edge("other", "loop", unit=None, weight=-1.0)
    with pytest.raises(ValueError, match="epsilon edges .* form a cycle"):
        decoding_graph(PHONES, cycle, loops)
    no_unit = loop_grammar(2)
    no_unit.add_edge("loop", "loop")
    with pytest.raises(ValueError, match="has no unit"):
        decoding_graph(PHONES, no_unit, loops)
    no_start = loop_grammar(2)
    del no_start.nodes["loop"]["start"]
    for determinize in (False, True):
        with pytest.raises(ValueError, match="grammar has no start junction"):
            decoding_graph(PHONES, no_start, loops, determinize=determinize)


# -- saved topologies, the flat start, real speech --------------------------------------------


def test_topologies_round_trip_through_plain_data():
    for topology in (PHONES, Topology(("one", "two"), word_states=2, silence_states=1)):
        again = topology_from_dict(topology.to_dict())
        assert type(again) is type(topology) and again.num_pdfs == topology.num_pdfs
        for unit in (0, 1, SILENCE):
            assert again.chains(unit) == topology.chains(unit)


def test_words_are_also_looked_up_in_lower_case():
    assert LEXICON.pronunciations("A") == LEXICON.pronunciations("a")
    topology = PhoneTopology(("A", "B"), LEXICON, phone_states=1, silence_states=1)
    assert topology.chains(1) == PHONES.chains(1)


def test_the_flat_start_needs_every_phone_in_the_training_transcripts():
    frames = [torch.randn(30, 4, generator=torch.Generator().manual_seed(0))]
    topology = PhoneTopology(("a", "b"), Lexicon({"a": [("x",)], "b": [("y", "z")]}))
    with pytest.raises(ValueError, match="no training utterance says the phone 'y'"):
        equal_alignment_start(topology, frames, [[0]])
    emissions = equal_alignment_start(topology, frames * 2, [[0], [1, 0]], mixtures=2)
    assert emissions.means.shape == (topology.num_pdfs, 2, 4)
    # A word said in several ways starts from a pronunciation drawn per utterance, so that
    # the phones of every pronunciation get frames (here "y" only in the second).
    either = PhoneTopology(("c",), Lexicon({"c": [("x",), ("y",)]}))
    emissions = equal_alignment_start(either, frames * 8, [[0]] * 8)
    assert emissions.means.shape == (either.num_pdfs, 1, 4)


YESNO_LM = "\\data\\\nngram 1=4\n\n\\1-grams:\n-1\tNO\n-1\tYES\n-99\t<s>\n-1\t</s>\n\n\\end\\\n"


def test_yesno_through_cmudict_phones_and_its_unigram_model_makes_no_error():
    """Kaldi's yesno recipe: train on the first 30 recordings sorted by name, decode the last
    30 with the unigram model of the corpus README; Kaldi's monophone system makes no error."""
    files = sorted((real_corpus("yesno") / "waves_yesno").glob("*.wav"))
    assert len(files) == 60

    def features(path):
        waveform, rate = read_wav(path)
        return cmvn(deltas(mfcc(waveform, rate)))

    utterances = [(features(f), [int(d) for d in f.stem.split("_")]) for f in files]
    train, test = utterances[:30], utterances[30:]
    words = ["NO", "YES"]
    topology = PhoneTopology(words, cmudict_lexicon().without_stress())
    assert topology.phones == ("EH", "N", "OW", "S", "Y")
    emissions, loops, _ = train_monophones(topology, *zip(*train, strict=True), 4, 10)
    graph = decoding_graph(topology, ngram_grammar(read_arpa(YESNO_LM), words), loops)
    decoded = decode_paths(frame_scores(emissions, [f for f, _ in test]), graph)
    counts = error_rate([t for _, t in test], [words for words, _ in decoded])
    assert counts.reference == 240 and counts.errors == 0, counts
    for words, path in decoded:  # each word's phones tile its frames, as its lexicon spells it
        spans = word_spans(path, topology)
        phones = phone_segments(path.pdfs, topology)
        assert len(spans) == len(words) and len(phones) == sum(3 if w else 2 for w in words)
        for word, (first, end) in zip(words, spans, strict=True):
            inside = [p for p in phones if first <= p[1] < end]
            assert [topology.phones[p] for p, _, _ in inside] == (
                ["Y", "EH", "S"] if word else ["N", "OW"]
            )
            bounds = [first] + [b for _, a, b in inside]
            assert [a for _, a, _ in inside] == bounds[:-1] and bounds[-1] == end


def test_min_frames_counts_the_states_of_the_shortest_pronunciations():
    assert PHONES.min_frames([0]) == 1 and PHONES.min_frames([1, 0, 1]) == 5
    topology = PhoneTopology(("a", "b"), LEXICON)  # three states per phone
    assert topology.min_frames([0, 1]) == 3 + 6


def test_an_ngram_model_as_plain_data_gives_the_same_grammar():
    lm = read_arpa(BIGRAM)
    words = ["c", "a", "b"]
    data = ngram_data(lm, words)
    assert [[1], -0.4 * math.log(10), -0.2 * math.log(10)] in data["ngram"]
    rebuilt = task_grammar(data, len(words), word_penalty=-0.5)
    direct = ngram_grammar(lm, words, word_penalty=-0.5)
    assert _grammar_sentences(rebuilt, 3) == pytest.approx(_grammar_sentences(direct, 3))
    only_ab = ngram_data(lm, ["a", "b"])  # the n-grams of c are left out
    assert all("c" not in tokens for tokens, _, _ in only_ab["ngram"])
    assert len(only_ab["ngram"]) == len(data["ngram"]) - 2


def test_utterances_too_short_for_their_phones_are_left_out_with_a_warning():
    from hybrid.speech.systems import _sayable

    topology = PhoneTopology(("a", "b"), LEXICON)  # a: 3 states at least, b: 6
    features = [torch.zeros(n, 2) for n in (3, 5, 6)]
    with pytest.warns(UserWarning, match="1 of 3 training utterances have fewer frames"):
        kept, transcripts = _sayable(topology, features, [[0], [1], [1]], "training")
    assert [len(f) for f in kept] == [3, 6] and transcripts == [[0], [1]]


def _synthetic_digits():
    """Features and one-digit transcripts of a small synthetic spoken-digit corpus."""
    from hybrid.speech.corpus import FeatureConfig, extract, synthetic_recordings

    utterances = synthetic_recordings(speakers=2, takes=4, seed=3)
    return extract(utterances, FeatureConfig()), [u.words for u in utterances]


def test_gmm_stages_resume_from_their_checkpoints_exactly(tmp_path):
    """A stage stopped after some passes and run again (here with the passes raised) ends
    with exactly the model, self-loops and alignments of an uninterrupted run; the triphones'
    tree comes back from the checkpoint."""
    from hybrid.speech.fsdd import DIGITS
    from hybrid.speech.gmm import GMMCheckpoint, train_triphones, train_words
    from hybrid.speech.topology import Topology

    features, words = _synthetic_digits()
    mono = PhoneTopology(DIGITS, cmudict_lexicon().without_stress())

    def same(found, expected):
        for x, y in zip(found, expected, strict=True):
            if isinstance(y, PhoneTopology):
                assert x.to_dict() == y.to_dict()
            else:
                assert_same(
                    x.state_dict() if isinstance(y, torch.nn.Module) else x,
                    y.state_dict() if isinstance(y, torch.nn.Module) else y,
                )

    straight = train_monophones(mono, features, words, 2, 4)
    ckpt = tmp_path / "gmm-mono.ckpt"
    train_monophones(mono, features, words, 2, 2, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=True)["passes"] == 2
    first_run = GMMCheckpoint.spent(ckpt)
    same(train_monophones(mono, features, words, 2, 4, checkpoint=ckpt), straight)
    assert GMMCheckpoint.spent(ckpt) > first_run > 0  # seconds over both runs
    emissions, loops, _ = straight

    tri = (mono, emissions, loops, features, words, 80, 20, 2)
    straight = train_triphones(*tri, 3)
    assert straight[0].tree.num_splits > 0
    ckpt = tmp_path / "gmm-tri.ckpt"
    train_triphones(*tri, 1, checkpoint=ckpt)
    same(train_triphones(*tri, 3, checkpoint=ckpt), straight)

    topology = Topology(DIGITS, word_states=3, silence_states=1)
    straight = train_words(topology, (features, words), features, words, 1, 3, 2)
    ckpt = tmp_path / "gmm.ckpt"
    train_words(topology, (features, words), features, words, 1, 3, 0, checkpoint=ckpt)
    same(
        train_words(topology, (features, words), features, words, 1, 3, 2, checkpoint=ckpt),
        straight,
    )

    with pytest.raises(ValueError, match=r"gmm.ckpt was trained with other settings \(mixtures"):
        train_words(topology, (features, words), features, words, 2, 3, 2, checkpoint=ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(ValueError, match="gmm.ckpt.*truncated"):
        train_words(topology, (features, words), features, words, 1, 3, 2, checkpoint=ckpt)
