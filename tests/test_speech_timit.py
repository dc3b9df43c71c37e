"""TIMIT-layout corpora, the 61-to-39 phone folding, phone segments of alignments and the
boundary measure of forced aligners."""

from __future__ import annotations

import itertools

import pytest
import torch
from realdata import real_corpus

from hybrid.speech.alignment import TASK, boundary_errors, draw
from hybrid.speech.decoder import boundary_time, phone_segments
from hybrid.speech.lexicon import Lexicon
from hybrid.speech.metrics import boundaries_within
from hybrid.speech.timit import (
    FOLD_39,
    PhoneSegment,
    fold,
    phone_sequence,
    read_timit,
    spoken_runs,
)
from hybrid.speech.topology import PhoneTopology

SA1 = "0 3050 h#\n3050 4559 sh\n4559 5723 iy\n5723 6642 hv\n6642 8772 ae\n8772 9190 dcl\n"


def _utterance(root, speaker, name, phn):
    folder = root / speaker
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.phn").write_text(phn)
    (folder / f"{name}.wav").write_bytes(b"")  # the reader does not open the audio


def test_the_fold_has_39_classes_and_drops_the_glottal_stop():
    assert len(FOLD_39) == 61
    assert len({c for c in FOLD_39.values() if c is not None}) == 39
    assert FOLD_39["q"] is None and FOLD_39["ix"] == "ih" and FOLD_39["h#"] == "sil"


def test_read_timit_and_fold(tmp_path):
    _utterance(tmp_path, "dr1-fvmh0", "sa1", SA1)
    _utterance(tmp_path, "dr1-fvmh0", "sx1", "0 100 h#\n100 200 q\n200 300 ix\n300 400 pau\n")
    first, second = read_timit(tmp_path)
    assert (first.id, first.speaker) == ("dr1-fvmh0/sa1", "dr1-fvmh0")
    assert first.phones[1] == PhoneSegment("sh", 3050 / 16000, 4559 / 16000)
    folded = fold(first.phones)
    assert [s.phone for s in folded] == ["sil", "sh", "iy", "hh", "ae", "sil"]
    assert [s.phone for s in phone_sequence(second.phones)] == ["ih"]
    merged = fold(read_timit(tmp_path)[1].phones)  # h# + q dropped: sil, ih, sil
    assert [(s.phone, s.start * 16000, s.end * 16000) for s in merged] == [
        ("sil", 0, 100),
        ("ih", 200, 300),
        ("sil", 300, 400),
    ]


@pytest.mark.parametrize(
    "phn,line,match",
    [
        ("0 100 h#\n100 x sh\n", 2, "expected 'start end phone'"),
        ("0 100 h#\n100 100 sh\n", 2, "not after its start"),
        ("0 100 h#\n100 200 zz\n", 2, "'zz' is not one of TIMIT's 61 phones"),
        ("0 100 h#\n50 200 sh\n", 2, "starts before the previous one ends"),
    ],
)
def test_bad_phone_files_are_named_with_their_line(tmp_path, phn, line, match):
    _utterance(tmp_path, "dr1-a", "u", phn)
    with pytest.raises(ValueError, match=f"u.phn:{line}: .*{match}"):
        read_timit(tmp_path)


def test_an_empty_folder_or_a_missing_wav_is_named(tmp_path):
    with pytest.raises(ValueError, match="no .phn file"):
        read_timit(tmp_path)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "u.phn").write_text("0 1 h#\n")
    with pytest.raises(ValueError, match=r"u.phn: no u.wav beside it"):
        read_timit(tmp_path)


TOPOLOGY = PhoneTopology(("a", "b"), Lexicon({"a": [("a",)], "b": [("b",)]}), phone_states=2)


def test_phone_segments_split_where_a_phone_starts_again():
    sil, a0, a1, b0, b1 = 4, 0, 1, 2, 3
    path = torch.tensor([sil, a0, a1, a1, a0, a1, sil, b0, b1, a0, a1])
    assert phone_segments(path, TOPOLOGY) == [(0, 1, 4), (0, 4, 6), (1, 7, 9), (0, 9, 11)]


def test_boundaries_within_counts_starts_and_ends():
    reference = [(0.10, 0.20), (0.20, 0.35)]
    assert boundaries_within(reference, [(0.11, 0.25), (0.25, 0.36)]) == (2, 4)  # 50 ms off
    assert boundaries_within(reference, [(0.13, 0.2), (0.2, 0.35)], tolerance=0.01) == (3, 4)
    with pytest.raises(ValueError, match="the same phones"):
        boundaries_within(reference, reference[:1])


def test_boundary_errors_of_an_alignment():
    assert boundary_time(0) == 0.0 and boundary_time(3) == pytest.approx(0.0375)
    path = torch.tensor([4, 4, 0, 1, 1, 2, 3, 4])  # a in frames 2-4, b in 5-6
    found = boundary_errors([path], TOPOLOGY, [[(0.0275, 0.0575), (0.0575, 0.12)]])
    assert found["predicted"] == [
        [pytest.approx((0.0275, 0.0575)), pytest.approx((0.0575, 0.0775))]
    ]
    assert (found["within"], found["boundaries"]) == (3, 4)  # b ends 42.5 ms early
    assert found["median_error_ms"] == pytest.approx(0.0, abs=1e-9)


def test_draw_writes_the_table_and_the_picture_from_the_results(tmp_path):
    row = {
        "task": TASK,
        "system": "gmm-mono",
        "split": "test",
        "seconds": 3.0,
        "metrics": {
            "alignment_accuracy": 0.75,
            "boundaries": 4,
            "median_boundary_error_ms": 2.5,
            "phone_error_rate": 0.5,
            "substitutions": 1,
            "deletions": 0,
            "insertions": 0,
            "reference_phones": 2,
        },
        "plot": {
            "utterance": "dr7-x/sa1",
            "spectrogram": torch.rand(12, 40).tolist(),
            "reference": [["a", 0.0275, 0.0575], ["b", 0.0575, 0.12]],
            "predicted": [["a", 0.0275, 0.0575], ["b", 0.0575, 0.0775]],
        },
    }
    tied = {
        "task": TASK,
        "system": "gmm-tri",
        "decoder": "runs between silences",
        "contexts": "word-internal",
        "split": "test",
        "seconds": 5.0,
        "metrics": {"alignment_accuracy": 0.5, "boundaries": 4, "median_boundary_error_ms": -1.0},
    }
    ctc = {  # decoded without an HMM: no alignment
        "task": TASK,
        "system": "ctc",
        "split": "test",
        "seconds": 7.0,
        "metrics": {
            "phone_error_rate": 0.25,
            "substitutions": 0,
            "deletions": 1,
            "insertions": 0,
            "reference_phones": 4,
        },
    }
    draw(tmp_path, {"corpus": "timit_sample", "rows": [row, tied, ctc]})
    table = (tmp_path / "results.md").read_text()
    assert (
        "| gmm-mono | - | phones | test | 75.0% of 4 | +2.5 ms | 50.0% | 1 / 0 / 0 of 2 | 3 |"
        in table
    )
    assert (
        "| gmm-tri | word-internal | runs between silences | test | 50.0% of 4 | -1.0 ms | - | - "
        "| 5 |" in table
    )
    assert "| ctc | - | phones | test | - | - | 25.0% | 0 / 1 / 0 of 4 | 7 |" in table
    assert (tmp_path / "alignment.png").stat().st_size > 0


def test_spoken_runs_are_the_phones_between_silences():
    segments = (
        PhoneSegment("h#", 0.0, 0.1),
        PhoneSegment("sh", 0.1, 0.2),
        PhoneSegment("iy", 0.2, 0.3),
        PhoneSegment("bcl", 0.3, 0.35),  # a closure folds to sil
        PhoneSegment("b", 0.35, 0.4),
        PhoneSegment("q", 0.4, 0.45),  # dropped
        PhoneSegment("ih", 0.45, 0.5),
        PhoneSegment("h#", 0.5, 0.6),
    )
    assert spoken_runs(segments) == [("sh", "iy"), ("b", "ih")]


def test_the_timit_sample_reads_and_folds():
    utterances = read_timit(real_corpus("timit_sample"))
    assert len(utterances) == 160 and len({u.speaker for u in utterances}) == 16
    for u in utterances:
        folded = fold(u.phones)
        assert folded[0].phone == folded[-1].phone == "sil"  # h# at both ends
        spoken = phone_sequence(u.phones)
        assert spoken and all(a.end <= b.start for a, b in itertools.pairwise(spoken))


def test_unheard_words_draw_their_table_and_confusion_and_redraw_dispatches(tmp_path):
    from hybrid.runs import RunFolder
    from hybrid.speech import unheard
    from hybrid.speech.experiment import redraw

    rows = [
        {
            "task": unheard.TASK,
            "system": "gmm-mono",
            "decoder": decoder,
            "seed": None,
            "split": "test",
            "metrics": {"accuracy": accuracy, "clips": 3, "words": words, "chance": 1 / words},
            "epochs": None,
            "seconds": 1.0,
            "environment": {},
            "vocabulary": vocabulary,
            "references": ["dog", "wow", "wow"],
            "hypotheses": hypotheses,
        }
        for decoder, words, accuracy, vocabulary, hypotheses in (
            ("unheard", 2, 2 / 3, ["dog", "wow"], ["wow", "wow", "wow"]),
            ("all", 3, 1 / 3, ["dog", "wow", "yes"], ["yes", "wow", "yes"]),
        )
    ]
    folder = RunFolder(tmp_path, "speech", ("accuracy", True), split="test")
    folder.claim("speech_commands", {"test_words": ["dog", "wow"]})
    folder.add_rows(rows)
    redraw(tmp_path)
    table = (tmp_path / "results.md").read_text()
    assert "| gmm-mono | unheard | 2 | 3 | 66.7% | 50.0% |" in table
    assert "| word | clips | gmm-mono, unheard | gmm-mono, all |" in table
    assert "| wow | 2 | 100.0 | 50.0 |" in table and "| dog | 1 | 0.0 | 0.0 |" in table
    assert (tmp_path / "confusion.png").stat().st_size > 0
