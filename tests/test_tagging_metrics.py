"""Strict span metrics against seqeval's strict mode, and the BIO <-> BIOES rewrites."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from realdata import real_corpus
from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import IOB2, IOBES, Tokens

from hybrid.tagging.corpus import read_atis
from hybrid.tagging.metrics import bio_to_bioes, bioes_to_bio, extract_spans, span_scores

# Types that could confuse a parser: "B" and "O" as type names, a "-" inside a type.
TYPES = ("A", "B", "O", "x-y", "fromloc.city_name")
SEQEVAL_SCHEME = {"BIO": IOB2, "BIOES": IOBES}
PREFIXES = {"BIO": "BI", "BIOES": "BIES"}


def alphabet(scheme):
    return ["O"] + [f"{p}-{t}" for p in PREFIXES[scheme] for t in TYPES]


# --- the oracle -----------------------------------------------------------------------------


def seqeval_spans(tags, scheme):
    entities = Tokens(list(tags), SEQEVAL_SCHEME[scheme]).entities
    return [(e.tag, e.start, e.end) for e in entities]


def assert_same_as_seqeval(gold, predicted, scheme):
    """span_scores equals seqeval's strict classification report, overall and per label."""
    gold = [list(s) for s in gold]
    predicted = [list(s) for s in predicted]
    ours = span_scores(gold, predicted, scheme)
    for sentence in gold + predicted:
        assert extract_spans(sentence, scheme) == seqeval_spans(sentence, scheme), sentence
    if any(len(s) for s in gold):
        assert ours["token_accuracy"] == accuracy_score(gold, predicted)
    if not ours["per_label"]:  # seqeval's report cannot average over zero labels
        assert all(not seqeval_spans(s, scheme) for s in gold + predicted)
        assert (ours["precision"], ours["recall"], ours["f1"], ours["support"]) == (0, 0, 0, 0)
        return
    report = classification_report(
        gold,
        predicted,
        mode="strict",
        scheme=SEQEVAL_SCHEME[scheme],
        output_dict=True,
        zero_division=0,
    )
    micro = report.pop("micro avg")
    report.pop("macro avg")
    report.pop("weighted avg")
    assert (ours["precision"], ours["recall"], ours["f1"], ours["support"]) == (
        micro["precision"],
        micro["recall"],
        micro["f1-score"],
        micro["support"],
    )
    assert list(ours["per_label"]) == list(report)
    for label, row in report.items():
        mine = ours["per_label"][label]
        assert (mine["precision"], mine["recall"], mine["f1"], mine["support"]) == (
            row["precision"],
            row["recall"],
            row["f1-score"],
            row["support"],
        ), label


# --- random tag sequences, well-formed and not ----------------------------------------------


def well_formed(rng, scheme, length):
    tags = []
    while len(tags) < length:
        if rng.random() < 0.4:
            tags.append("O")
            continue
        kind = rng.choice(TYPES)
        size = min(rng.randint(1, 4), length - len(tags))
        if scheme == "BIO":
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
        elif size == 1:
            tags.append(f"S-{kind}")
        else:
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (size - 2) + [f"E-{kind}"]
    return tags


def perturb(rng, scheme, tags, rate):
    """Replace tags at random, by a random label or by the same type with another prefix."""
    out = list(tags)
    for i, tag in enumerate(out):
        if rng.random() < rate:
            if tag != "O" and rng.random() < 0.5:
                out[i] = f"{rng.choice(PREFIXES[scheme])}-{tag[2:]}"
            else:
                out[i] = rng.choice(alphabet(scheme))
    return out


def random_corpus(rng, scheme):
    gold, predicted = [], []
    for _ in range(rng.randint(1, 6)):
        length = rng.randint(0, 12)
        if rng.random() < 0.3:
            g = [rng.choice(alphabet(scheme)) for _ in range(length)]  # mostly ill-formed
        else:
            g = perturb(rng, scheme, well_formed(rng, scheme, length), rng.choice([0, 0.1, 0.3]))
        gold.append(g)
        predicted.append(perturb(rng, scheme, g, rng.choice([0.0, 0.1, 0.3, 0.7])))
    return gold, predicted


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_equals_seqeval_strict_on_random_tags(scheme):
    rng = random.Random(1234 if scheme == "BIO" else 4321)
    for _ in range(400):
        gold, predicted = random_corpus(rng, scheme)
        assert_same_as_seqeval(gold, predicted, scheme)


@given(
    st.sampled_from(["BIO", "BIOES"]).flatmap(
        lambda scheme: st.tuples(
            st.just(scheme), st.lists(st.sampled_from(alphabet(scheme)), max_size=14)
        )
    )
)
def test_spans_equal_seqeval_entities(case):
    scheme, tags = case
    assert extract_spans(tags, scheme) == seqeval_spans(tags, scheme)


# --- strict semantics, spelled out ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "tags", "spans"),
    [
        ("BIO", ["O", "I-A", "I-A", "O"], []),  # I-X after O opens nothing
        ("BIO", ["I-A"], []),  # nor at the start
        ("BIO", ["B-A", "I-A", "I-B", "I-B"], [("A", 0, 2)]),  # nor after another type
        ("BIO", ["B-A", "B-A", "I-A"], [("A", 0, 1), ("A", 1, 3)]),
        ("BIO", ["B-A", "I-A"], [("A", 0, 2)]),  # a chunk may end the sentence
        ("BIOES", ["B-A", "I-A", "E-A", "S-A"], [("A", 0, 3), ("A", 3, 4)]),
        ("BIOES", ["B-A", "I-A", "O"], []),  # unclosed
        ("BIOES", ["B-A", "I-A"], []),  # unclosed at the end
        ("BIOES", ["B-A", "I-A", "S-A"], [("A", 2, 3)]),  # the scan resumes at S-A
        ("BIOES", ["B-A", "I-A", "B-A", "E-A"], [("A", 2, 4)]),
        ("BIOES", ["B-A", "E-B"], []),  # type change
        ("BIOES", ["B-A", "E-A", "E-A", "I-A", "E-A"], [("A", 0, 2)]),  # fragments after E
        ("BIOES", ["O", "I-A", "E-A", "S-B"], [("B", 3, 4)]),
    ],
)
def test_strict_semantics(scheme, tags, spans):
    assert extract_spans(tags, scheme) == spans == seqeval_spans(tags, scheme)


def test_scores_by_hand():
    gold = [["B-A", "I-A", "O", "B-B"], ["O", "B-A"]]
    predicted = [["B-A", "I-A", "O", "I-B"], ["B-A", "B-A"]]
    scores = span_scores(gold, predicted)
    assert (scores["precision"], scores["recall"], scores["support"]) == (2 / 3, 2 / 3, 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["token_accuracy"] == 4 / 6
    assert list(scores["per_label"]) == ["A", "B"]
    a, b = scores["per_label"]["A"], scores["per_label"]["B"]
    assert (a["precision"], a["recall"], a["support"]) == (2 / 3, 1.0, 2)
    assert a["f1"] == pytest.approx(0.8)
    assert b == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert span_scores(gold, gold)["f1"] == 1.0
    assert span_scores([], [])["per_label"] == {}


def test_zero_over_zero_is_zero():
    scores = span_scores([["O", "I-A"], []], [["O", "O"], []])
    assert scores == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "token_accuracy": 0.5,
        "per_label": {},
    }
    assert span_scores([[]], [[]])["token_accuracy"] == 0.0


def test_scheme_aliases():
    tags = ["B-A", "E-A", "S-B"]
    assert extract_spans(tags, "iobes") == extract_spans(tags, "BIOES")
    assert extract_spans(["B-A"], "IOB2") == extract_spans(["B-A"], "bio") == [("A", 0, 1)]
    assert span_scores([tags], [tags], scheme="IOBES")["f1"] == 1.0


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["BILOU", "IOE2", "IOB3", ""])
def test_unknown_scheme(scheme):
    with pytest.raises(ValueError, match="scheme"):
        extract_spans(["O"], scheme)
    with pytest.raises(ValueError, match="scheme"):
        span_scores([["O"]], [["O"]], scheme)


@pytest.mark.parametrize(
    ("scheme", "bad"),
    [
        ("BIO", "E-A"),
        ("BIO", "S-A"),
        ("BIO", "X-A"),
        ("BIO", "B-"),
        ("BIO", "B"),
        ("BIO", "BA"),
        ("BIO", "Other"),
        ("BIO", ""),
        ("BIOES", "U-A"),
        ("BIOES", "L-A"),
        ("BIOES", "o"),
    ],
)
def test_tags_outside_the_scheme(scheme, bad):
    tags = ["O", bad, "O"]
    with pytest.raises(ValueError, match=r"tags\[1\]"):
        extract_spans(tags, scheme)
    with pytest.raises(ValueError, match=r"predicted\[0\]\[1\]"):
        span_scores([["O"] * 3], [tags], scheme)
    with pytest.raises(ValueError, match=r"gold\[0\]\[1\]"):
        span_scores([tags], [["O"] * 3], scheme)
    convert = bio_to_bioes if scheme == "BIO" else bioes_to_bio
    with pytest.raises(ValueError, match=r"tags\[1\]"):
        convert(tags)


def test_non_string_input():
    with pytest.raises(ValueError, match="tags"):
        extract_spans("B-A")
    with pytest.raises(ValueError, match=r"tags\[0\]"):
        extract_spans([1])
    with pytest.raises(ValueError, match="gold"):
        span_scores("O", "O")


def test_length_mismatch():
    with pytest.raises(ValueError, match="number of sentences, got 2 and 1"):
        span_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match=r"gold\[1\] and predicted\[1\].*got 2 and 1"):
        span_scores([["O"], ["O", "O"]], [["O"], ["O"]])


# --- BIO <-> BIOES --------------------------------------------------------------------------

bio_tags = st.lists(st.sampled_from(alphabet("BIO")), max_size=16)


@st.composite
def well_formed_bioes(draw):
    tags = []
    for part in draw(st.lists(st.tuples(st.sampled_from((None,) + TYPES), st.integers(1, 4)))):
        kind, size = part
        if kind is None:
            tags += ["O"] * size
        elif size == 1:
            tags.append(f"S-{kind}")
        else:
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (size - 2) + [f"E-{kind}"]
    return tags


def test_conversion_examples():
    bio = ["B-A", "I-A", "I-A", "O", "B-B", "B-B", "I-B", "O", "I-A"]
    bioes = ["B-A", "I-A", "E-A", "O", "S-B", "B-B", "E-B", "O", "E-A"]
    assert bio_to_bioes(bio) == bioes
    assert bioes_to_bio(bioes) == bio
    assert bio_to_bioes([]) == bioes_to_bio([]) == []


@given(bio_tags)
def test_bio_round_trip_and_spans_for_any_bio(tags):
    bioes = bio_to_bioes(tags)
    assert bioes_to_bio(bioes) == tags
    assert extract_spans(bioes, "BIOES") == extract_spans(tags, "BIO")


@given(well_formed_bioes())
def test_bioes_round_trip_when_well_formed(tags):
    bio = bioes_to_bio(tags)
    assert bio_to_bioes(bio) == tags
    assert extract_spans(bio, "BIO") == extract_spans(tags, "BIOES")
    assert sum(end - start for _, start, end in extract_spans(tags, "BIOES")) == sum(
        t != "O" for t in tags
    )


# --- the real ATIS test set -----------------------------------------------------------------


def test_real_atis_test_set_against_seqeval():
    gold = [list(s.tags) for s in read_atis(real_corpus("atis"), "test")]
    labels = sorted({t for s in gold for t in s})
    rng = random.Random(7)
    predicted = []
    for sentence in gold:
        out = list(sentence)
        for i, tag in enumerate(out):
            u = rng.random()
            if u < 0.04:
                out[i] = rng.choice(labels)  # another label, often an orphan I-X
            elif u < 0.08 and tag != "O":
                out[i] = ("I" if tag[0] == "B" else "B") + tag[1:]  # wrong boundary
            elif u < 0.10:
                out[i] = "O"
        predicted.append(out)
    assert_same_as_seqeval(gold, predicted, "BIO")
    scores = span_scores(gold, predicted)
    assert 0.5 < scores["f1"] < 0.95  # the perturbation hurts, but not everything
    assert span_scores(gold, gold)["f1"] == 1.0
    gold_bioes = [bio_to_bioes(s) for s in gold]
    predicted_bioes = [bio_to_bioes(s) for s in predicted]
    assert [bioes_to_bio(s) for s in gold_bioes] == gold
    assert_same_as_seqeval(gold_bioes, predicted_bioes, "BIOES")
    bioes_scores = span_scores(gold_bioes, predicted_bioes, "BIOES")
    del bioes_scores["token_accuracy"], scores["token_accuracy"]  # tags differ, spans do not
    assert bioes_scores == scores


def test_confusion_matrix_rows_are_shares_of_all_gold_tokens():
    """A gold tag whose tokens mostly went to a tag outside the shown ones keeps a small
    diagonal: rows are shares of every token of the gold tag, not of the shown columns."""
    from hybrid.tagging.plots import confusion_matrix

    counts = {
        "O": {"O": 90, "B-a": 10},
        "B-a": {"B-a": 4, "B-rare": 6, "O": 2},
        "B-rare": {"B-rare": 1},
    }
    shown, matrix = confusion_matrix(counts, top=2)
    assert shown == ["O", "B-a"]
    assert matrix[1].tolist() == [2 / 12, 4 / 12]  # 6 of 12 went to B-rare, not shown
    assert matrix[0].tolist() == [0.9, 0.1]
