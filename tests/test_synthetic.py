"""The generated airline corpus: determinism, valid BIO, coverage, ambiguity, splits."""

from __future__ import annotations

from collections import defaultdict

import pytest

from hybrid.tagging.corpus import Sentence
from hybrid.tagging.synthetic import (
    INTENTS,
    SLOT_TYPES,
    SYNTHETIC_NOTICE,
    airline_corpus,
    airline_splits,
)


@pytest.fixture(scope="module")
def corpus() -> list[Sentence]:
    return airline_corpus(2000, seed=0)


def spans(tags: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` of each BIO chunk, end exclusive."""
    chunks: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            chunks.append((i, i + 1, tag[2:]))
        elif tag.startswith("I-"):
            start, _, kind = chunks[-1]
            chunks[-1] = (start, i + 1, kind)
    return chunks


def assert_valid_bio(sentence: Sentence) -> None:
    assert sentence.tags is not None and len(sentence.tags) == len(sentence.words) > 0
    previous = "O"
    for tag in sentence.tags:
        if tag != "O":
            prefix, kind = tag[:2], tag[2:]
            assert prefix in ("B-", "I-") and kind in SLOT_TYPES, sentence
            if prefix == "I-":
                assert previous[2:] == kind, f"{tag} after {previous}: {sentence}"
        previous = tag


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert airline_corpus(200, seed=5) == airline_corpus(200, seed=5)
    assert airline_corpus(200, seed=5) != airline_corpus(200, seed=6)
    assert airline_corpus(50, seed=5) == airline_corpus(200, seed=5)[:50]


def test_sizes_and_records():
    for size in (1, 7, 300):
        sentences = airline_corpus(size, seed=1)
        assert len(sentences) == size
        assert all(isinstance(s, Sentence) and s.features is None for s in sentences)
    assert SYNTHETIC_NOTICE.strip() and "\n" not in SYNTHETIC_NOTICE
    assert "synthetic" in SYNTHETIC_NOTICE.lower()


@pytest.mark.parametrize("size", [0, -3])
def test_size_below_one_is_refused(size):
    with pytest.raises(ValueError, match="size"):
        airline_corpus(size)
    with pytest.raises(ValueError, match="valid"):
        airline_splits(valid=size)


@pytest.mark.parametrize("noise", [-0.1, 1.5])
def test_noise_outside_unit_interval_is_refused(noise):
    with pytest.raises(ValueError, match="noise"):
        airline_corpus(10, noise=noise)


def test_tags_are_valid_bio_with_one_tag_per_word(corpus):
    for sentence in corpus:
        assert_valid_bio(sentence)
        assert all(word and word == word.lower() and " " not in word for word in sentence.words)


def test_every_slot_type_and_intent_appears(corpus):
    seen = {tag[2:] for s in corpus for tag in s.tags if tag != "O"}
    assert seen == set(SLOT_TYPES)
    assert {s.intent for s in corpus} == set(INTENTS)
    assert len(INTENTS) >= 5


def test_multi_word_values_and_adjacent_chunks_of_one_type(corpus):
    chunks = [(s.words[a:b], kind) for s in corpus for a, b, kind in spans(s.tags)]
    multi = {kind for words, kind in chunks if len(words) > 1}
    assert {"fromloc.city_name", "toloc.city_name", "airline_name", "transport_type"} <= multi
    assert (("new", "york"), "fromloc.city_name") in chunks
    adjacent = {
        k1
        for s in corpus
        for (_, end, k1), (start, _, k2) in zip(spans(s.tags), spans(s.tags)[1:], strict=False)
        if end == start and k1 == k2
    }
    assert {"fromloc.city_name", "toloc.city_name", "depart_time.period_of_day"} <= adjacent


def test_same_word_fills_different_slots_by_context(corpus):
    labels: dict[str, set[str]] = defaultdict(set)
    for s in corpus:
        for word, tag in zip(s.words, s.tags, strict=True):
            if tag != "O":
                labels[word].add(tag[2:])
    assert {"fromloc.city_name", "toloc.city_name", "city_name"} <= labels["boston"]
    assert {"fromloc.airport_name", "toloc.airport_name", "airport_name"} <= labels["boston"]
    assert {"toloc.city_name", "toloc.state_name"} <= labels["washington"]
    assert {"depart_date.day_name", "arrive_date.day_name", "return_date.day_name"} <= labels[
        "monday"
    ]
    assert {"depart_date.day_number", "class_type", "flight_mod"} <= labels["first"]
    assert {"depart_time.time", "arrive_time.time"} <= labels["pm"]
    # The lecture example: the verb decides the slot of both the city and the date.
    arrive = [s for s in corpus if s.words[:1] == ("arrive",)]
    leave = [s for s in corpus if s.words[:1] == ("leave",)]
    assert arrive and all(s.tags[1] == "B-toloc.city_name" for s in arrive)
    assert leave and all(s.tags[1] == "B-fromloc.city_name" for s in leave)
    assert all(t[2:].startswith("arrive_date") for s in arrive for t in s.tags if "date" in t)
    assert all(t[2:].startswith("depart_date") for s in leave for t in s.tags if "date" in t)


def test_templates_are_varied(corpus):
    assert len({s.words for s in corpus}) > 0.95 * len(corpus)
    # Slot values replaced by their type leave the template skeleton (fillers included).
    skeletons = {
        tuple(tag[2:] if tag != "O" else word for word, tag in zip(s.words, s.tags, strict=True))
        for s in corpus
    }
    assert len(skeletons) > 500


def test_label_noise_is_off_by_default_and_keeps_words_and_bio():
    clean = airline_corpus(1000, seed=2)
    assert clean == airline_corpus(1000, seed=2, noise=0.0)
    noisy = airline_corpus(1000, seed=2, noise=0.05)
    assert [s.words for s in noisy] == [s.words for s in clean]
    changed = total = 0
    for c, n in zip(clean, noisy, strict=True):
        assert_valid_bio(n)
        assert [(a, b) for a, b, _ in spans(c.tags)] == [(a, b) for a, b, _ in spans(n.tags)]
        total += len(spans(c.tags))
        changed += sum(x != y for x, y in zip(spans(c.tags), spans(n.tags), strict=True))
    assert 0.02 < changed / total < 0.08
    assert 0.02 < sum(c.intent != n.intent for c, n in zip(clean, noisy, strict=True)) / 1000 < 0.1


def test_splits_sizes_seeds_and_overlap():
    splits = airline_splits(train=400, valid=100, test=150, seed=4)
    assert {name: len(s) for name, s in splits.items()} == {"train": 400, "valid": 100, "test": 150}
    assert splits == airline_splits(train=400, valid=100, test=150, seed=4)
    assert splits["train"] != airline_splits(train=400, valid=100, test=150, seed=5)["train"]
    # One seed per split: train is the corpus of seed 3 * 4, valid and test come from 13 and 14.
    assert splits["train"] == airline_corpus(400, seed=12)
    for name, seed in (("valid", 13), ("test", 14)):
        stream = iter(airline_corpus(400, seed=seed))
        assert all(s in stream for s in splits[name])  # an ordered subsequence of its stream
    words = {name: {s.words for s in sentences} for name, sentences in splits.items()}
    assert not words["train"] & words["valid"]
    assert not (words["train"] | words["valid"]) & words["test"]
    # Without the filter the streams would overlap rarely too: the seeds really differ.
    raw_test = {s.words for s in airline_corpus(150, seed=14)}
    overlap = len(raw_test & words["train"]) / len(raw_test)
    assert overlap < 0.5


def test_split_noise_only_touches_train():
    clean = airline_splits(train=300, valid=50, test=50, seed=1)
    noisy = airline_splits(train=300, valid=50, test=50, seed=1, noise=0.1)
    assert noisy["valid"] == clean["valid"] and noisy["test"] == clean["test"]
    assert noisy["train"] != clean["train"]
    assert [s.words for s in noisy["train"]] == [s.words for s in clean["train"]]
