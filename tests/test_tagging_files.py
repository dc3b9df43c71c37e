"""The user's own tagging data: readers of every format, scheme detection and IOB1 / plain-label
scores against their oracles, held-out splits, checksums, and training from each format
through the command line."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from realdata import real_corpus
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from hybrid.cli import main
from hybrid.tagging.corpus import read_conll, read_conllu, read_jsonl, read_slot_folder
from hybrid.tagging.datasets import TaggingFiles, detect_format, load_tagging, preset_files
from hybrid.tagging.metrics import extract_spans, iob1_to_bio, label_scores, span_scores
from hybrid.tagging.schemes import allowed_transitions, detect_scheme, first_violation

TYPES = ("A", "B", "x-y")
IOB1_TAGS = ["O"] + [f"{p}-{t}" for p in "BI" for t in TYPES]


def write(path, text, bom=False, crlf=False):
    """Write ``text`` as UTF-8, optionally with a byte-order mark and CRLF line ends."""
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


# --- IOB1 chunks and plain-label scores against their oracles -----------------------------


@given(st.lists(st.sampled_from(IOB1_TAGS), max_size=12))
def test_iob1_chunks_are_conllevals(tags):
    """conlleval's chunk rules (seqeval's default mode) read IOB1 natively: same chunks."""
    expected = [(label, start, end + 1) for label, start, end in get_entities(tags)]
    assert sorted(extract_spans(tags, "IOB1")) == sorted(expected)
    assert extract_spans(iob1_to_bio(tags), "BIO") == extract_spans(tags, "IOB1")


@given(st.lists(st.lists(st.sampled_from(IOB1_TAGS), min_size=2, max_size=2), max_size=6))
def test_iob1_span_scores_are_those_of_the_bio_rewrite(pairs):
    gold, predicted = [p[:1] for p in pairs], [p[1:] for p in pairs]
    ours = span_scores(gold, predicted, "IOB1")
    rewritten = span_scores(
        [iob1_to_bio(g) for g in gold], [iob1_to_bio(p) for p in predicted], "BIO"
    )
    for key in ("precision", "recall", "f1", "support", "per_label"):
        assert ours[key] == rewritten[key]


def test_iob1_rewrite_examples():
    assert iob1_to_bio(["I-A", "I-A", "B-A", "O", "I-B", "I-A"]) == [
        "B-A",
        "I-A",
        "B-A",
        "O",
        "B-B",
        "B-A",
    ]
    with pytest.raises(ValueError, match=r"tags\[1\]"):
        iob1_to_bio(["O", "E-A"])


@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("NVDX"), st.sampled_from("NVDX")), min_size=1),
        min_size=1,
        max_size=6,
    )
)
def test_label_scores_match_sklearn(pairs):
    gold = [[g for g, _ in sentence] for sentence in pairs]
    predicted = [[p for _, p in sentence] for sentence in pairs]
    ours = label_scores(gold, predicted)
    flat_gold = [t for s in gold for t in s]
    flat_predicted = [t for s in predicted for t in s]
    assert ours["token_accuracy"] == pytest.approx(accuracy_score(flat_gold, flat_predicted))
    assert ours["f1"] == pytest.approx(ours["token_accuracy"])
    labels = sorted(set(flat_gold) | set(flat_predicted))
    assert list(ours["per_label"]) == labels
    precision, recall, f1, support = precision_recall_fscore_support(
        flat_gold, flat_predicted, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        entry = ours["per_label"][label]
        assert entry["precision"] == pytest.approx(precision[i])
        assert entry["recall"] == pytest.approx(recall[i])
        assert entry["f1"] == pytest.approx(f1[i])
        assert entry["support"] == support[i]


def test_label_scores_errors():
    with pytest.raises(ValueError, match="same length"):
        label_scores([["N", "V"]], [["N"]])
    with pytest.raises(ValueError, match="same number of sentences"):
        label_scores([["N"]], [])
    with pytest.raises(ValueError, match=r"predicted\[0\]\[0\] must be a string"):
        label_scores([["N"]], [[3]])


# --- scheme detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequences", "expected"),
    [
        ([["B-A", "I-A", "O", "B-B"]], "BIO"),
        ([["I-A", "I-A", "B-A", "O", "I-B"]], "IOB1"),
        ([["S-A", "O", "B-B", "E-B"]], "BIOES"),
        ([["O", "O"]], "BIO"),  # reads the same in BIO and IOB1
        ([["NN", "VBZ", "DT"]], None),
        ([["B-A", "NN"]], None),  # one plain label makes them all plain
        ([["I-A", "O"], ["O", "B-A"]], "BIO"),  # a B- opening a chunk is not IOB1
    ],
)
def test_detect_scheme(sequences, expected):
    assert detect_scheme(sequences) == expected


@given(st.lists(st.lists(st.sampled_from(IOB1_TAGS), max_size=8), min_size=1))
def test_detected_chunk_scheme_reads_every_tag(sequences):
    """Whatever is detected from chunk tags, every tag is one of its tags, and IOB1 is only
    detected where its reading differs from BIO's."""
    if not any(sequences):
        return
    scheme = detect_scheme(sequences)
    assert scheme in ("BIO", "IOB1")
    for tags in sequences:
        extract_spans(tags, scheme)  # raises on a tag outside the scheme
    if scheme == "IOB1":
        assert any(extract_spans(t, "IOB1") != extract_spans(t, "BIO") for t in sequences)


# --- readers --------------------------------------------------------------------------------


def test_conll_awkward_file(tmp_path):
    """CRLF line ends, a byte-order mark, comments, -DOCSTART-, a chosen word column,
    non-ASCII words and trailing blank lines."""
    text = (
        "# a comment\n-DOCSTART- -X- O\n\n"
        "1 Zoë NNP B-PER\n2 lives VBZ O\n3 in IN O\n4 Zürich NNP B-LOC\n\n\n"
        "# another\n1 Él PRP O\n\n  \n\n"
    )
    path = write(tmp_path / "a.conll", text, bom=True, crlf=True)
    sentences = read_conll(path, feature_column=2, word_column=1, comment="#")
    assert [s.words for s in sentences] == [("Zoë", "lives", "in", "Zürich"), ("Él",)]
    assert sentences[0].tags == ("B-PER", "O", "O", "B-LOC")
    assert sentences[0].features == ("NNP", "VBZ", "IN", "NNP")
    assert sentences[1].where == f"{path}, line 11"
    with pytest.raises(ValueError, match=r"a\.conll, line 4: expected 3 columns, got 4"):
        read_conll(path, word_column=1)  # the comment is a token line without comment="#"


def test_conll_bad_columns(tmp_path):
    path = write(tmp_path / "b.txt", "a NN B-NP\nb VB\n")
    with pytest.raises(ValueError, match=r"b\.txt, line 2: expected 3 columns, got 2"):
        read_conll(path)
    with pytest.raises(ValueError, match=r"line 1: word_column=5 is out of range"):
        read_conll(write(tmp_path / "c.txt", "a NN B-NP\n"), word_column=5)


CONLLU = (
    "# sent_id = 1\n# text = Del gato.\n"
    "1-2\tDel\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "1\tDe\tde\tADP\tSP\t_\t3\tcase\t_\tNE=O\n"
    "2\tel\tel\tDET\tDA\t_\t3\tdet\t_\tNE=O\n"
    "3\tgato grande\tgato\tNOUN\tNC\t_\t0\troot\t_\tNE=B-ANI|SpaceAfter=No\n"
    "3.1\tes\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "4\t.\t.\tPUNCT\tFp\t_\t3\tpunct\t_\tNE=O\n"
    "\n"
)


def test_conllu_multiword_tokens_empty_nodes_and_fields(tmp_path):
    path = write(tmp_path / "d.conllu", CONLLU * 2, bom=True, crlf=True)
    sentences = read_conllu(path)
    assert len(sentences) == 2
    assert sentences[0].words == ("De", "el", "gato grande", ".")
    assert sentences[0].tags == ("ADP", "DET", "NOUN", "PUNCT")
    assert sentences[1].where == f"{path}, line 13"
    by_misc = read_conllu(path, tag_field="misc:NE", feature_field="xpos")
    assert by_misc[0].tags == ("O", "O", "B-ANI", "O")
    assert by_misc[0].features == ("SP", "DA", "NC", "Fp")


def test_conllu_errors_name_the_line(tmp_path):
    path = write(tmp_path / "e.conllu", CONLLU.replace("2\tel\tel\tDET", "2\tel\tel DET"))
    with pytest.raises(ValueError, match=r"e\.conllu, line 5: expected 10 tab-separated"):
        read_conllu(path)
    path = write(tmp_path / "f.conllu", CONLLU.replace("NE=O\n3", "SpaceAfter=No\n3"))
    with pytest.raises(ValueError, match=r"line 5: no NE=\.\.\. in the MISC field"):
        read_conllu(path, tag_field="misc:NE")
    with pytest.raises(ValueError, match="tag_field must be one of"):
        read_conllu(path, tag_field="pos")


def test_jsonl_reader(tmp_path):
    lines = [
        {"tokens": ["flights", "to", "Málaga"], "tags": ["O", "O", "B-city"], "intent": "flight"},
        {"tokens": ["fares"], "tags": ["O"], "intent": "airfare"},
    ]
    text = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n"
    sentences = read_jsonl(write(tmp_path / "g.jsonl", text, bom=True, crlf=True))
    assert [s.intent for s in sentences] == ["flight", "airfare"]
    assert sentences[0].words[2] == "Málaga"
    bad = {
        '{"tokens": ["a"], "tags": ["O", "O"]}': "line 2: tags must have one entry per word",
        '["a"]': "line 2: expected a JSON object",
        '{"tokens": ["a"], "tag": ["O"]}': r"line 2: unknown keys \['tag'\]",
        '{"tokens": []}': 'line 2: expected "tokens"',
        "{tokens": "line 2: not JSON",
    }
    for line, message in bad.items():
        path = write(tmp_path / "h.jsonl", json.dumps(lines[1]) + "\n" + line + "\n")
        with pytest.raises(ValueError, match=message):
            read_jsonl(path)


def test_slot_folder_without_intents(tmp_path):
    write(tmp_path / "seq.in", "show flights to boston\nfares\n", crlf=True)
    write(tmp_path / "seq.out", "O O O B-toloc.city_name\nO\n", bom=True)
    sentences = read_slot_folder(tmp_path)
    assert [s.intent for s in sentences] == [None, None]
    assert sentences[0].tags[-1] == "B-toloc.city_name"
    write(tmp_path / "seq.out", "O O O\nO\n")
    with pytest.raises(ValueError, match=r"seq\.out, line 1: 3 tags for 4 tokens"):
        read_slot_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="expected seq.in and seq.out"):
        read_slot_folder(tmp_path / "missing")


# --- loading: formats, held-out splits, schemes, checksums ---------------------------------


def conll_corpus(path, sentences=30, seed=0, scheme="IOB1"):
    """A small column file of ``sentences`` random sentences in ``scheme``."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(sentences):
        tags = [rng.choice(["O", "I-PER", "I-LOC"]) for _ in range(rng.randint(2, 6))]
        if scheme == "BIO":
            tags = iob1_to_bio(tags)
        words = [rng.choice(["Ana", "vit", "à", "Lyon", "et", "Óscar"]) for _ in tags]
        blocks.append("\n".join(f"{w} X {t}" for w, t in zip(words, tags, strict=True)))
    return write(path, "\n\n".join(blocks) + "\n")


def test_held_out_splits_are_seeded_disjoint_and_said(tmp_path):
    path = conll_corpus(tmp_path / "train.txt", 40)
    data = load_tagging(TaggingFiles([path]))
    again = load_tagging(TaggingFiles([str(path)]))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 32, "valid": 4, "test": 4}
    assert data.splits == again.splits
    assert data.scheme == "IOB1"
    assert any("no --test: 4 of 40" in note for note in data.notes)
    assert any("no --dev: 4 of 36" in note for note in data.notes)
    everything = read_conll(path)
    kept = [*data.splits["train"], *data.splits["valid"], *data.splits["test"]]
    assert sorted(map(repr, kept)) == sorted(map(repr, everything))
    assert data.files["train"][0]["path"] == str(path)
    assert len(data.files["train"][0]["sha256"]) == 64
    last = load_tagging(TaggingFiles([path], test=[path], dev_last=5))
    assert last.splits["valid"] == everything[-5:]


def test_globs_and_format_detection(tmp_path):
    for i in range(3):
        conll_corpus(tmp_path / f"part{i}.conll", 5, seed=i, scheme="BIO")
    data = load_tagging(TaggingFiles([str(tmp_path / "part*.conll")], held_out=0.2))
    assert sum(len(v) for v in data.splits.values()) == 15
    assert [f["path"] for f in data.files["train"]] == [
        str(tmp_path / f"part{i}.conll") for i in range(3)
    ]
    assert data.scheme == "BIO"
    assert detect_format(tmp_path) == "slots"
    assert detect_format("x.CONLLU") == "conllu"
    assert detect_format("x.json") == "jsonl"
    with pytest.raises(ValueError, match=r"--dev: no file matches"):
        load_tagging(TaggingFiles([tmp_path / "part0.conll"], dev=[str(tmp_path / "n*.conll")]))


def test_a_tag_outside_the_scheme_names_its_file_and_line(tmp_path):
    train = conll_corpus(tmp_path / "train.txt", 10, scheme="BIO")
    dev = write(tmp_path / "dev.txt", "a X O\n\nb X O\nc X E-PER\n")
    with pytest.raises(ValueError, match=r"dev\.txt, line 3: tag 'E-PER' is not a BIO tag"):
        load_tagging(TaggingFiles([train], [dev], [train]))
    with pytest.raises(ValueError, match=r"train\.txt, line \d+: the tags .* well-formed BIOES"):
        load_tagging(TaggingFiles([train], [train], [train], scheme="BIOES"))
    plain = load_tagging(TaggingFiles([train], [dev], [train], scheme="none"))
    assert plain.scheme is None


def test_ill_formed_bio_is_read_as_conlleval_reads_it(tmp_path):
    path = write(tmp_path / "t.txt", "a X B-A\nb X O\n\nc X O\nd X I-A\ne X I-A\n")
    data = load_tagging(TaggingFiles([path], [path], [path]))
    assert data.scheme == "BIO"
    assert data.splits["test"][1].tags == ("O", "B-A", "I-A")
    assert data.splits["test"][1].where == f"{path}, line 4"
    assert any("3 sentences had an I-X opening a chunk" in note for note in data.notes)


@given(st.lists(st.sampled_from(["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B"]), max_size=6))
def test_first_violation_agrees_with_the_constraints(tags):
    names = ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B"]
    for scheme in ("BIO", "IOB1", "BIOES"):
        usable = [
            t for t in names if t[0] in {"BIO": "OBI", "IOB1": "OBI", "BIOES": "OBIES"}[scheme]
        ]
        if any(t not in usable for t in tags):
            continue
        allowed = allowed_transitions(scheme, usable)
        index = [usable.index(t) for t in tags]
        ok = not tags or (
            bool(allowed.start[index[0]])
            and all(bool(allowed.transitions[a, b]) for a, b in itertools.pairwise(index))
            and bool(allowed.end[index[-1]])
        )
        assert (first_violation(scheme, tags) is None) == ok


def test_intents_on_every_sentence_or_none(tmp_path):
    lines = [{"tokens": ["a"], "tags": ["O"], "intent": "x"}] * 3
    lines.append({"tokens": ["b"], "tags": ["O"]})
    path = write(tmp_path / "i.jsonl", "\n".join(json.dumps(x) for x in lines))
    with pytest.raises(ValueError, match=r"i\.jsonl, line 4: no intent, but the first"):
        load_tagging(TaggingFiles([path], [path], [path]))
    untagged = write(tmp_path / "j.jsonl", '{"tokens": ["a"]}\n')
    with pytest.raises(ValueError, match=r"j\.jsonl, line 1: a sentence without tags"):
        load_tagging(TaggingFiles([untagged], [untagged], [untagged]))


# --- through the command line: every format trains --------------------------------------

TINY = ["--epochs", "1", "--seeds", "0", "--heads", "crf", "--hidden", "8", "--word-dim", "8"]


def train_command(tmp_path, name, *data_options):
    """Train a tiny CRF tagger through ``hybrid train-tagger``; its results.json."""
    runs = tmp_path / "runs"
    argv = ["train-tagger", *data_options, *TINY, "--runs", str(runs), "--name", name, "--quiet"]
    assert main(argv) == 0
    return json.loads((runs / name / "results.json").read_text())


def scored_row(results):
    """The one test row of ``results`` (a results.json of one head and seed)."""
    (row,) = [r for r in results["rows"] if r["split"] == "test"]
    return row


def test_every_format_trains_from_the_command_line(tmp_path, capsys):
    conll = conll_corpus(tmp_path / "c.iob1", 30)
    results = train_command(tmp_path, "conll", "--train", str(conll), "--scheme", "IOB1")
    assert results["settings"]["tagger"]["scheme"] == "IOB1"
    assert results["data"]["train"][0]["path"] == str(conll)

    conllu = write(tmp_path / "u.conllu", CONLLU * 15, crlf=True)
    results = train_command(tmp_path, "ud", "--train", str(conllu), "--feature-field", "xpos")
    assert results["settings"]["tagger"]["scheme"] is None  # UPOS: plain labels
    assert "f1" in scored_row(results)["metrics"]
    assert "span F1" not in (tmp_path / "runs" / "ud" / "results.md").read_text()

    records = [
        {"tokens": ["to", "Lyon"], "tags": ["O", "B-city"], "intent": "flight"},
        {"tokens": ["fares", "to", "Óbidos"], "tags": ["O", "O", "B-city"], "intent": "fare"},
    ] * 10
    jsonl = write(tmp_path / "s.jsonl", "\n".join(json.dumps(r) for r in records), bom=True)
    results = train_command(tmp_path, "jsonl", "--train", str(jsonl), "--test", str(jsonl))
    assert "intent_accuracy" in scored_row(results)["metrics"]
    assert results["settings"]["sizes"] == {"train": 18, "valid": 2, "test": 20}

    folder = tmp_path / "snips" / "train"
    folder.mkdir(parents=True)
    write(folder / "seq.in", "play jazz\nplay some rock\n" * 10, crlf=True)
    write(folder / "seq.out", "O B-genre\nO O B-genre\n" * 10)
    results = train_command(tmp_path, "slots", "--train", str(folder), "--format", "slots")
    assert results["settings"]["tagger"]["scheme"] == "BIO"
    out = capsys.readouterr().out
    assert "held out as the development split" in out


def test_command_line_data_errors_stop_before_training(tmp_path, capsys):
    runs = tmp_path / "runs"
    bad = write(tmp_path / "bad.txt", "a X O\nb X\n")
    assert main(["train-tagger", "--train", str(bad), "--runs", str(runs), "--quiet"]) == 2
    assert "bad.txt, line 2: expected 3 columns" in capsys.readouterr().err
    good = conll_corpus(tmp_path / "good.txt")
    assert main(["train-tagger", "--corpus", "atis", "--train", str(good)]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert not runs.exists()


# --- the real corpora given by path equal their presets ------------------------------------


def test_conll2000_by_path_gives_the_presets_figures(tmp_path):
    folder = real_corpus("conll2000")
    preset = load_tagging(preset_files("conll2000", folder.parent))
    by_path = load_tagging(
        TaggingFiles(
            [folder / "train.txt"],
            test=[folder / "test.txt"],
            format="conll",
            feature_column=1,
            dev_last=1000,
        )
    )
    assert by_path.splits == preset.splits
    assert by_path.files == preset.files
    # the same settings both ways (a preset's defaults are its own: here all are given)
    small = ["--limit", "150", "--lm-weight", "0", "--lm-words", "2000", "--batch-size", "16"]
    common = ["--runs", str(tmp_path), "--quiet", *TINY, *small, "--lr", "0.01"]
    preset_options = ["--corpus", "conll2000", "--data", str(folder.parent)]
    assert main(["train-tagger", *preset_options, "--name", "a", *common]) == 0
    path_options = [
        "--format", "conll", "--train", str(folder / "train.txt"), "--test",
        str(folder / "test.txt"), "--feature-column", "1", "--dev-last", "1000",
    ]  # fmt: skip
    assert main(["train-tagger", *path_options, "--name", "b", *common]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    scores = ("split", "metrics", "per_label")
    assert [{k: r[k] for k in scores} for r in a["rows"]] == [
        {k: r[k] for k in scores} for r in b["rows"]
    ]
    assert {r["split"] for r in a["rows"]} == {"test", "dev"}
    assert a["data"] == b["data"]
