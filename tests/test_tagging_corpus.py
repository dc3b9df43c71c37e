"""Corpus readers and vocabularies: small files written here, then the real corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from realdata import real_corpus

from hybrid import files
from hybrid.tagging.corpus import Sentence, Vocabulary, data_root, read_atis, read_conll
from hybrid.tagging.metrics import extract_spans


def write_atis(folder: Path, split: str, seq_in: str, seq_out: str, label: str) -> Path:
    base = folder / split
    base.mkdir(parents=True)
    (base / "seq.in").write_text(seq_in, encoding="utf-8")
    (base / "seq.out").write_text(seq_out, encoding="utf-8")
    (base / "label").write_text(label, encoding="utf-8")
    return folder


# --- Sentence -------------------------------------------------------------------------------


def test_sentence_stores_tuples_and_checks_lengths():
    s = Sentence(["a", "b"], ["B-X", "I-X"], "intent", ["DT", "NN"])
    assert s.words == ("a", "b") and s.tags == ("B-X", "I-X") and s.features == ("DT", "NN")
    assert len(s) == 2 and hash(s) == hash(
        Sentence(("a", "b"), ("B-X", "I-X"), "intent", s.features)
    )
    with pytest.raises(ValueError, match="tags"):
        Sentence(("a", "b"), ("O",))
    with pytest.raises(ValueError, match="features"):
        Sentence(("a",), None, None, ("DT", "NN"))
    with pytest.raises(ValueError, match="words"):
        Sentence("ab")
    with pytest.raises(ValueError, match=r"words\[1\]"):
        Sentence(("a", 3))
    with pytest.raises(ValueError, match="intent"):
        Sentence(("a",), intent=5)


# --- ATIS -----------------------------------------------------------------------------------


def test_read_atis_small(tmp_path):
    folder = write_atis(
        tmp_path,
        "train",
        "i want to fly to boston\nshow fares\n\n",
        "O O O O O B-toloc.city_name\nO O\n",
        "atis_flight\natis_flight#atis_airfare\n",
    )
    sentences = read_atis(folder, "train")
    assert sentences == [
        Sentence(
            ("i", "want", "to", "fly", "to", "boston"),
            ("O", "O", "O", "O", "O", "B-toloc.city_name"),
            "atis_flight",
        ),
        Sentence(("show", "fares"), ("O", "O"), "atis_flight#atis_airfare"),
    ]
    assert sentences[0].features is None


def test_read_atis_token_tag_mismatch_names_file_and_line(tmp_path):
    folder = write_atis(tmp_path, "test", "a b\nc d e\n", "O O\nO O\n", "x\ny\n")
    with pytest.raises(ValueError, match=r"seq\.out, line 2: 2 tags for 3 tokens"):
        read_atis(folder, "test")


def test_read_atis_line_count_mismatch(tmp_path):
    folder = write_atis(tmp_path, "valid", "a\nb\n", "O\nO\n", "x\n")
    with pytest.raises(ValueError, match="different line counts") as info:
        read_atis(folder, "valid")
    assert "label: 1" in str(info.value) and "seq.in: 2" in str(info.value)


def test_read_atis_empty_utterance_and_intent(tmp_path):
    folder = write_atis(tmp_path, "a", "a\n\nb\n", "O\n\nO\n", "x\ny\nz\n")
    with pytest.raises(ValueError, match=r"seq\.in, line 2: empty utterance"):
        read_atis(folder, "a")
    folder = write_atis(tmp_path, "b", "a\nb\nc\n", "O\nO\nO\n", "x\n \nz\n")
    with pytest.raises(ValueError, match=r"label, line 2: empty intent"):
        read_atis(folder, "b")


def test_read_atis_missing_files_and_bad_split(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "seq.in").write_text("a\n")
    with pytest.raises(FileNotFoundError, match="seq.out"):
        read_atis(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        read_atis(tmp_path, "")


# --- CoNLL ----------------------------------------------------------------------------------

CONLL = """-DOCSTART- -X- O

He PRP B-NP
reckons VBZ B-VP
the DT B-NP
deficit NN I-NP


.\t.\tO

"""


def test_read_conll_small(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(CONLL, encoding="utf-8")
    sentences = read_conll(path, feature_column=1)
    assert sentences == [
        Sentence(
            ("He", "reckons", "the", "deficit"),
            ("B-NP", "B-VP", "B-NP", "I-NP"),
            None,
            ("PRP", "VBZ", "DT", "NN"),
        ),
        Sentence((".",), ("O",), None, (".",)),
    ]
    assert [s.tags for s in read_conll(path, tag_column=1)] == [
        ("PRP", "VBZ", "DT", "NN"),
        (".",),
    ]
    untagged = read_conll(path, tag_column=None)
    assert untagged[0].tags is None and untagged[0].features is None


def test_read_conll_last_sentence_without_blank_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a DT B-NP\n\nb NN B-NP\nc NN I-NP", encoding="utf-8")
    assert [s.words for s in read_conll(path)] == [("a",), ("b", "c")]
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.txt: no sentence"):  # issue 21: named, not []
        read_conll(path)


def test_read_conll_malformed(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a DT B-NP\nb NN\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2: expected 3 columns, got 2"):
        read_conll(path)
    path.write_text("a DT B-NP\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tag_column=3 is out of range"):
        read_conll(path, tag_column=3)
    with pytest.raises(ValueError, match=r"feature_column=-4 is out of range"):
        read_conll(path, feature_column=-4)
    with pytest.raises(ValueError, match="tag_column"):
        read_conll(path, tag_column="2")
    with pytest.raises(ValueError, match="feature_column"):
        read_conll(path, feature_column=True)


# --- data_root ------------------------------------------------------------------------------


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "given") == tmp_path / "given"
    assert data_root() == tmp_path / "env"
    monkeypatch.setenv("HYBRID_DATA", "")
    monkeypatch.setattr(files, "_DEFAULT_DATA", tmp_path)
    assert data_root() == tmp_path
    monkeypatch.delenv("HYBRID_DATA")
    monkeypatch.setattr(files, "_DEFAULT_DATA", tmp_path / "missing")
    assert data_root() is None


def test_default_data_root_is_beside_the_repository():
    repository = Path(__file__).resolve().parents[1]
    if Path(files.__file__).resolve().parents[1] != repository:
        pytest.skip("hybrid is installed (a wheel), not imported from this checkout")
    assert files._DEFAULT_DATA == repository.parent / "shared" / "data"


# --- Vocabulary -----------------------------------------------------------------------------


def test_vocabulary_order_specials_and_unknowns():
    vocab = Vocabulary(["b", "a", "c", "a", "b", "d", "<unk>"], min_count=1)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "c", "d"]  # count, then string order
    assert vocab.pad_index == 0 and vocab.unk_index == 1 and len(vocab) == 6
    assert vocab.index("a") == 2 and vocab.index("never") == 1
    assert "c" in vocab and "never" not in vocab
    assert vocab.encode(["d", "zzz", "a"]) == [5, 1, 2]
    assert vocab.decode([5, 1, 2]) == ["d", "<unk>", "a"]
    assert vocab.decode(torch.tensor([2, 3])) == ["a", "b"]
    frequent = Vocabulary(["b", "a", "c", "a", "b", "d"], min_count=2)
    assert frequent.tokens == ["<pad>", "<unk>", "a", "b"]
    tokens = vocab.tokens
    tokens.append("x")
    assert "x" not in vocab


def test_label_vocabulary_refuses_unknown_labels():
    labels = Vocabulary(["O", "B-X", "O", "I-X"], specials=())
    assert labels.tokens == ["O", "B-X", "I-X"]
    assert labels.unk_index is None and labels.pad_index is None
    assert labels.encode(["I-X", "O"]) == [2, 0]
    with pytest.raises(ValueError, match="'B-Y'"):
        labels.encode(["O", "B-Y"])


def test_vocabulary_round_trips_through_json():
    vocab = Vocabulary("the cat saw the dog".split(), specials=("<pad>", "<unk>", "<bos>"))
    data = json.loads(json.dumps(vocab.to_dict()))
    again = Vocabulary.from_dict(data)
    assert again == vocab and again.tokens == vocab.tokens and again.specials == vocab.specials
    assert again.encode(["the", "bird"]) == vocab.encode(["the", "bird"])
    labels = Vocabulary(["O", "B-X"], specials=())
    assert Vocabulary.from_dict(json.loads(json.dumps(labels.to_dict()))) == labels
    assert labels != vocab


def test_vocabulary_rejects_bad_input():
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary(["a"], min_count=0)
    with pytest.raises(ValueError, match=r"tokens\[1\]"):
        Vocabulary(["a", 1])
    with pytest.raises(ValueError, match="tokens"):
        Vocabulary("abc")
    with pytest.raises(ValueError, match="specials must be distinct"):
        Vocabulary(["a"], specials=("<pad>", "<pad>"))
    with pytest.raises(ValueError, match="unk"):
        Vocabulary(["a"], specials=("<pad>",), unk="<unk>")
    vocab = Vocabulary(["a"])
    with pytest.raises(ValueError, match="index"):
        vocab.decode([3])
    with pytest.raises(ValueError, match="index"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="index"):
        vocab.decode(["a"])
    with pytest.raises(ValueError, match="data"):
        Vocabulary.from_dict({"tokens": ["a"]})
    with pytest.raises(ValueError, match="start with"):
        Vocabulary.from_dict({"tokens": ["a", "<pad>"], "specials": ["<pad>"], "unk": None})
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary.from_dict({"tokens": ["a", "a"], "specials": [], "unk": None})
    with pytest.raises(ValueError, match="unk"):
        Vocabulary.from_dict({"tokens": ["a"], "specials": [], "unk": "a"})


# --- the real corpora -----------------------------------------------------------------------


@pytest.mark.parametrize(("split", "size"), [("train", 4478), ("valid", 500), ("test", 893)])
def test_real_atis_sizes(split, size):
    sentences = read_atis(real_corpus("atis"), split)
    assert len(sentences) == size
    for s in sentences:
        assert s.tags is not None and len(s.tags) == len(s.words) > 0
        assert s.intent and s.intent.startswith("atis_")
        extract_spans(s.tags, "BIO")  # every tag is a BIO tag
    assert sum(bool(extract_spans(s.tags)) for s in sentences) > 0.9 * size


@pytest.mark.parametrize(
    ("split", "size", "tokens"), [("train", 8936, 211727), ("test", 2012, 47377)]
)
def test_real_conll2000_sizes(split, size, tokens):
    sentences = read_conll(real_corpus("conll2000") / f"{split}.txt", feature_column=1)
    assert len(sentences) == size
    assert sum(len(s) for s in sentences) == tokens  # the counts its README gives
    for s in sentences:
        extract_spans(s.tags, "BIO")
    if split == "train":
        first = sentences[0]
        assert (first.words[0], first.features[0], first.tags[0]) == ("Confidence", "NN", "B-NP")


def test_real_atis_vocabularies():
    train = read_atis(real_corpus("atis"), "train")
    words = Vocabulary(w for s in train for w in s.words)
    slots = Vocabulary((t for s in train for t in s.tags), specials=())
    assert words.pad_index == 0 and words.unk_index == 1 and "boston" in words
    assert "O" in slots and slots.index("O") == 0  # the most frequent tag
    again = Vocabulary.from_dict(json.loads(json.dumps(words.to_dict())))
    assert again == words
