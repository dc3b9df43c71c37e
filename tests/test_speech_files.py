"""Speech corpora of the user's, by path: Kaldi data directories and manifests read into
utterances (segments, resampling, downmixing, 24-bit and float audio, awkward text), split by
speaker, over any vocabulary; the command line trains from each; the real corpora (FSDD as a
Kaldi directory, Speech Commands, yesno) read as their presets do."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
import torch
from realdata import real_corpus
from wavfiles import FLOAT, write_audio

from hybrid.cli import main
from hybrid.speech.audio import resample
from hybrid.speech.augment import SpecAugment
from hybrid.speech.datasets import SpeechFiles, load_speech
from hybrid.speech.experiment import load_corpus
from hybrid.speech.fsdd import DIGITS, official_split, read_fsdd

# Word of each synthetic digit, non-ASCII on purpose.
WORDS = ("zéro", "один", "二", "trois", "four", "five", "six", "seven", "eight", "nine")

QUANTUM = 2.0**-15  # a 16-bit sample's step


def tone(seconds: float, rate: int, freq: float, gain: float = 0.5) -> torch.Tensor:
    """``(N,)`` a sinusoid."""
    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    return (gain * torch.sin(2 * math.pi * freq * t)).float()


def kaldi_dir(folder, lines: dict[str, list[str]], crlf: bool = False, bom: bool = False):
    """A data directory of the given files' lines."""
    folder.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    for name, rows in lines.items():
        text = end.join(rows) + end
        (folder / name).write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return folder


def held_apart_dir(tmp_path, word: str):
    """A data directory of one recording (a tone) saying ``word``: a test set apart."""
    write_audio(tmp_path / "t.wav", tone(0.3, 8000, 400)[None], 8000)
    lines = {"wav.scp": ["t1 ../t.wav"], "text": [f"t1 {word}"], "utt2spk": ["t1 tester"]}
    return str(kaldi_dir(tmp_path / "test", lines))


def synthetic_dir(tmp_path, takes: int = 2, speakers: int = 3):
    """The synthetic digits as a Kaldi directory (16-bit WAVs), and their utterances."""
    from hybrid.speech.corpus import synthetic_recordings

    utterances = synthetic_recordings(speakers=speakers, takes=takes)
    audio = tmp_path / "audio"
    audio.mkdir()
    for u in utterances:
        write_audio(audio / f"{u.id}.wav", u.waveform[None], u.sample_rate)
    folder = kaldi_dir(
        tmp_path / "data",
        {
            "wav.scp": [f"{u.id} {audio / u.id}.wav" for u in utterances],
            "text": [f"{u.id} {WORDS[u.words[0]]}" for u in utterances],
            "utt2spk": [f"{u.id} {u.speaker}" for u in utterances],
        },
    )
    return folder, utterances


# --- reading -------------------------------------------------------------------------------


def test_kaldi_dir_with_segments_cuts_each_utterance_from_its_recording(tmp_path):
    rate = 8000
    pieces = [tone(0.3, rate, 300), tone(0.5, rate, 500), tone(0.2, rate, 700)]
    write_audio(tmp_path / "rec.wav", torch.cat(pieces)[None], rate)
    starts = [0.0, 0.3, 0.8]
    folder = kaldi_dir(
        tmp_path / "d",
        {
            "wav.scp": ["rec ../rec.wav"],
            "segments": [
                "u1 rec 0.0 0.3",
                "u2 rec 0.3 0.8  ",
                "u3 rec 0.8 -1",
            ],
            "text": ["u1 a", "u2 b", "u3 a b"],
            "utt2spk": ["u1 s", "u2 s", "u3 s"],
        },
        crlf=True,
        bom=True,
    )
    data = load_speech(
        SpeechFiles(train=(str(folder),), test=(held_apart_dir(tmp_path, "a"),), held_out=0)
    )
    assert [u.id for u in data.train] == ["u1", "u2", "u3"]
    assert data.words == ("a", "b")
    assert [u.words for u in data.train] == [(0,), (1,), (0, 1)]
    assert data.grammar == "loop"  # some utterances hold two words
    for u, piece, start in zip(data.train, pieces, starts, strict=True):
        assert u.sample_rate == rate
        assert len(u.waveform) == len(piece)
        assert torch.allclose(u.waveform, piece, atol=QUANTUM), (u.id, start)


def test_stereo_44k_24_bit_and_float_audio_are_read_mono_at_the_common_rate(tmp_path):
    rate = 8000
    left, right = tone(0.4, 44100, 440), tone(0.4, 44100, 880, 0.25)
    write_audio(tmp_path / "stereo.wav", torch.stack([left, right]), 44100, bits=24)
    for name in ("a", "b", "c"):
        write_audio(tmp_path / f"{name}.wav", tone(0.4, rate, 300)[None], rate)
    write_audio(tmp_path / "float.wav", tone(0.4, rate, 600)[None], rate, bits=32, tag=FLOAT)
    names = ["stereo", "a", "b", "c", "float"]
    folder = kaldi_dir(
        tmp_path / "d",
        {
            "wav.scp": [f"{n} ../{n}.wav" for n in names],
            "text": [f"{n} {'yes' if i % 2 else 'no'}" for i, n in enumerate(names)],
            "utt2spk": [f"{n} s{i}" for i, n in enumerate(names)],
        },
    )
    data = load_speech(
        SpeechFiles(train=(str(folder),), test=(held_apart_dir(tmp_path, "yes"),), held_out=0)
    )
    assert data.sample_rate == rate  # the rate of most recordings
    assert all(u.sample_rate == rate for u in data.train)
    stereo = data.train[0]
    expected = resample((left.double() + right.double()) / 2, 44100, rate).float()
    assert torch.allclose(stereo.waveform, expected, atol=1e-5)
    assert torch.allclose(data.train[-1].waveform, tone(0.4, rate, 600))  # float: exact
    notes = " ".join(data.notes)
    assert "resampled 1 recordings from 44100 Hz to 8000 Hz" in notes
    assert "1 recordings had several channels: averaged to one" in notes
    assert data.grammar == "isolated"


def test_a_manifest_gives_the_utterances_of_the_same_kaldi_directory(tmp_path):
    folder, utterances = synthetic_dir(tmp_path)
    rows = ["path\tword\tspeaker"] + [
        f"audio/{u.id}.wav\t{WORDS[u.words[0]]}\t{u.speaker}" for u in utterances
    ]
    manifest = tmp_path / "list.tsv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    common = {"test_speakers": ("spk2",), "held_out": 0}
    from_dir = load_speech(SpeechFiles(train=(str(folder),), **common))
    from_manifest = load_speech(
        SpeechFiles(train=(str(manifest),), transcript_column="word", **common)
    )
    assert from_dir.words == from_manifest.words == WORDS
    for mine, theirs in (
        (from_dir.train, from_manifest.train),
        (from_dir.test, from_manifest.test),
    ):
        assert [u.id.split("/")[-1] for u in mine] == [u.id.split("/")[-1] for u in theirs]
        assert [(u.speaker, u.words) for u in mine] == [(u.speaker, u.words) for u in theirs]
        assert all(torch.equal(a.waveform, b.waveform) for a, b in zip(mine, theirs, strict=True))


def test_manifests_of_two_folders_with_the_same_relative_paths_join(tmp_path):
    """Two corpora laid out alike (``<word>/<take>.wav`` under each) give distinct ids,
    relative to the folder that holds both manifests; the same audio twice is refused."""
    for corpus, gain in (("first", 0.3), ("second", 0.5)):
        for word, freq in (("yes", 300), ("no", 500)):
            (tmp_path / corpus / word).mkdir(parents=True)
            write_audio(tmp_path / corpus / word / "0.wav", tone(0.3, 8000, freq, gain)[None], 8000)
        rows = ["path,transcript,speaker", f"yes/0.wav,yes,{corpus}", f"no/0.wav,no,{corpus}"]
        (tmp_path / corpus / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    sources = (str(tmp_path / "first" / "m.csv"), str(tmp_path / "second" / "m.csv"))
    data = load_speech(SpeechFiles(train=sources, test_speakers=("second",), held_out=0))
    assert [u.id for u in data.train] == ["first/yes/0", "first/no/0"]
    assert [u.id for u in data.test] == ["second/yes/0", "second/no/0"]
    alone = load_speech(SpeechFiles(train=sources[:1], test=sources[1:], held_out=0))
    assert [u.id for u in alone.train] == ["yes/0", "no/0"]  # one manifest: its own folder
    twice = (sources[0], sources[0])
    with pytest.raises(ValueError, match=r"utterance 'yes/0' is listed twice .*m\.csv:2"):
        load_speech(SpeechFiles(train=twice, test=sources[1:], held_out=0))


def test_several_sources_and_glob_patterns_are_joined(tmp_path):
    folder, utterances = synthetic_dir(tmp_path, takes=1)
    lines = {
        n: (folder / n).read_text(encoding="utf-8").splitlines()
        for n in ("wav.scp", "text", "utt2spk")
    }
    for part, speaker in (("a", "spk0"), ("b", "spk1"), ("c", "spk2")):
        kaldi_dir(
            tmp_path / "parts" / part,
            {n: [line for line in rows if speaker in line] for n, rows in lines.items()},
        )
    data = load_speech(
        SpeechFiles(train=(str(tmp_path / "parts" / "[ab]"),), test_speakers=("spk1",), held_out=0)
    )
    assert {u.speaker for u in data.train} == {"spk0"}
    assert len(data.train) + len(data.test) == 20
    with pytest.raises(ValueError, match=r"--train: nothing matches .*parts/z\*"):
        load_speech(SpeechFiles(train=(str(tmp_path / "parts" / "z*"),)))


def test_a_split_not_given_is_held_out_by_speaker(tmp_path):
    folder, utterances = synthetic_dir(tmp_path, takes=1, speakers=12)
    data = load_speech(SpeechFiles(train=(str(folder),), held_out=0.2))
    speakers = [{u.speaker for u in split} for split in (data.train, data.dev, data.test)]
    assert all(speakers), "every split holds some speakers"
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    assert sum(len(s) for s in speakers) == 12
    assert len(data.train) + len(data.dev) + len(data.test) == len(utterances)
    assert any("test: held out" in n for n in data.notes)
    assert any("dev: held out" in n for n in data.notes)
    again = load_speech(SpeechFiles(train=(str(folder),), held_out=0.2))
    assert [u.id for u in again.test] == [u.id for u in data.test]  # seeded


def test_a_recording_in_two_splits_is_refused_naming_both_lines(tmp_path):
    folder, _ = synthetic_dir(tmp_path, takes=1)
    with pytest.raises(ValueError, match=r"data/text:1: the test utterance .* also in train"):
        load_speech(SpeechFiles(train=(str(folder),), test=(str(folder),), held_out=0))


def test_the_checksums_cover_the_files_read_not_those_kaldi_tools_add(tmp_path):
    folder, _ = synthetic_dir(tmp_path, takes=1)
    (folder / "utt2dur").write_text("whatever 1.0\n")
    data = load_speech(SpeechFiles(train=(str(folder),), test_speakers=("spk0",), held_out=0))
    assert sorted(f["path"].rsplit("/", 1)[1] for f in data.files["train"]) == [
        "text",
        "utt2spk",
        "wav.scp",
    ]


def test_test_speakers_are_kept_out_of_training(tmp_path):
    folder, _ = synthetic_dir(tmp_path)
    data = load_speech(SpeechFiles(train=(str(folder),), test_speakers=("spk1",), held_out=0))
    assert {u.speaker for u in data.test} == {"spk1"}
    assert "spk1" not in {u.speaker for u in data.train}
    assert data.dev is None
    with pytest.raises(ValueError, match=r"--test-speakers: no utterance of \['bob'\]"):
        load_speech(SpeechFiles(train=(str(folder),), test_speakers=("bob",)))
    with pytest.raises(ValueError, match="--test and --test-speakers"):
        load_speech(SpeechFiles(train=(str(folder),), test=(str(folder),), test_speakers=("x",)))


def test_a_test_word_without_training_recordings_is_refused_naming_its_line(tmp_path):
    for name in ("x", "y", "z"):
        write_audio(tmp_path / f"{name}.wav", tone(0.3, 8000, 300)[None], 8000)
    train = kaldi_dir(
        tmp_path / "train", {"wav.scp": ["a ../x.wav"], "text": ["a yes"], "utt2spk": ["a s"]}
    )
    test = kaldi_dir(
        tmp_path / "test",
        {
            "wav.scp": ["b ../y.wav", "c ../z.wav"],
            "text": ["b yes", "c maybe"],
            "utt2spk": ["b s", "c s"],
        },
    )
    with pytest.raises(ValueError, match=r"test/text:2: the test word 'maybe' is not in the train"):
        load_speech(SpeechFiles(train=(str(train),), test=(str(test),), held_out=0))


def test_an_unreadable_recording_is_refused_naming_its_transcript_line(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"fLaC" + bytes(100))
    folder = kaldi_dir(
        tmp_path / "d", {"wav.scp": ["a ../bad.wav"], "text": ["a yes"], "utt2spk": ["a s"]}
    )
    with pytest.raises(ValueError, match=r"d/text:1: .*bad.wav.*FLAC"):
        load_speech(
            SpeechFiles(train=(str(folder),), test=(held_apart_dir(tmp_path, "yes"),), held_out=0)
        )


def test_vocabulary_grammar_and_unigram_files(tmp_path):
    folder, _ = synthetic_dir(tmp_path, takes=1)
    words = tmp_path / "words.txt"
    words.write_text("".join(f"{w} {i + 1}\n" for i, w in enumerate(reversed(WORDS))))
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("# allowed\nzéro один\nnine\n", encoding="utf-8")
    common = {"train": (str(folder),), "test_speakers": ("spk0",), "held_out": 0}
    data = load_speech(SpeechFiles(**common, words=str(words), grammar=str(phrases)))
    assert data.words == tuple(reversed(WORDS))
    assert data.grammar == {"phrases": [[9, 8], [0]]}
    arpa = tmp_path / "lm.arpa"
    probs = {w: -1.0 - i / 10 for i, w in enumerate(WORDS)}
    body = "".join(f"{p}\t{w}\n" for w, p in probs.items())
    arpa.write_text(
        f"\\data\\\nngram 1=11\n\n\\1-grams:\n{body}-0.5\t</s>\n\n\\end\\\n", encoding="utf-8"
    )
    data = load_speech(SpeechFiles(**common, lm=str(arpa)))
    unigrams = {tuple(tokens): log_prob for tokens, log_prob, _ in data.grammar["ngram"]}
    expected = {(i,): probs[w] * math.log(10) for i, w in enumerate(data.words)}
    assert unigrams == pytest.approx({**expected, ("</s>",): -0.5 * math.log(10)})
    bigram = arpa.read_text().replace("ngram 1=11", "ngram 1=11\nngram 2=1")
    bigram = bigram.replace("\\end\\", "\\2-grams:\n-0.1\tnine nine\n\n\\end\\")
    arpa.write_text(bigram, encoding="utf-8")  # any order: the bigram is kept
    data = load_speech(SpeechFiles(**common, lm=str(arpa)))
    nine = data.words.index("nine")
    assert [[nine, nine], -0.1 * math.log(10), 0.0] in data.grammar["ngram"]
    arpa.write_text(bigram.replace("-0.1\tnine nine", "-0.1\tnine maybe"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"lm.arpa', line 19: \('nine', 'maybe'\) uses a token"):
        load_speech(SpeechFiles(**common, lm=str(arpa)))
    kaldi = tmp_path / "words-kaldi.txt"  # Kaldi's symbols and a word never said are left out
    symbols = ["<eps>", "<SIL>", *WORDS, "maybe", "#0"]
    kaldi.write_text("".join(f"{w} {i}\n" for i, w in enumerate(symbols)), encoding="utf-8")
    data = load_speech(SpeechFiles(**common, words=str(kaldi)))
    assert data.words == WORDS
    assert any("no training recording of <SIL>, maybe: left out" in n for n in data.notes)
    short = tmp_path / "short.txt"
    short.write_text("\n".join(WORDS[1:]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"text:\d+: the word 'zéro' is not in .*short.txt"):
        load_speech(SpeechFiles(**common, words=str(short)))
    bad = tmp_path / "bad.txt"
    bad.write_text("zéro maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt: the phrase 'zéro maybe' holds \['maybe'\]"):
        load_speech(SpeechFiles(**common, grammar=str(bad)))


# --- the command line trains from each ----------------------------------------------------

TINY = ["--epochs", "1", "--speed-factors", "--quiet", "--systems", "gmm", "dnn", "ctc"]


def test_train_asr_from_a_kaldi_directory_with_segments_stereo_and_24_bit(tmp_path, capsys):
    from hybrid.speech.corpus import synthetic_recordings

    utterances = synthetic_recordings(speakers=3, takes=2)
    audio = tmp_path / "audio"
    audio.mkdir()
    by_speaker: dict[str, list] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    lines = {"wav.scp": [], "segments": [], "text": [], "utt2spk": []}
    for speaker, mine in by_speaker.items():
        # one stereo 24-bit 44.1 kHz recording per speaker, cut by segments
        joined = torch.cat([resample(u.waveform, 8000, 44100) for u in mine])
        write_audio(audio / f"{speaker}.wav", torch.stack([joined, joined]), 44100, bits=24)
        lines["wav.scp"].append(f"{speaker} {audio / speaker}.wav")
        start = 0.0
        for u in mine:
            end = start + len(u.waveform) / 8000
            lines["segments"].append(f"{u.id} {speaker} {start:.6f} {end:.6f}")
            lines["text"].append(f"{u.id} {WORDS[u.words[0]]}")
            lines["utt2spk"].append(f"{u.id} {speaker}")
            start = end
    folder = kaldi_dir(tmp_path / "data" / "train", lines, crlf=True, bom=True)
    runs = tmp_path / "runs"
    code = main(
        ["train-asr", "--train", str(folder), "--test-speakers", "spk2", "--held-out", "0"]
        + ["--sample-rate", "8000", "--runs", str(runs), "--name", "k", "--spec-augment", *TINY]
    )
    assert code == 0
    results = json.loads((runs / "k" / "results.json").read_text())
    assert {r["task"] for r in results["rows"]} == {"isolated"}
    assert {r["system"] for r in results["rows"]} == {"gmm", "dnn", "ctc"}
    assert all(len(r["references"]) == 20 for r in results["rows"])  # spk2's 10 digits x 2 takes
    assert results["settings"]["words"] == list(WORDS)
    assert len(results["data"]["train"]) == 4  # segments, text, utt2spk, wav.scp
    masks = asdict(SpecAugment())  # asked for: on every network
    assert results["settings"]["systems"]["training"]["spec_augment"] == masks
    assert results["settings"]["systems"]["ctc_training"]["spec_augment"] == masks
    model = runs / "k" / "models" / "isolated-dnn-seed0.pt"
    capsys.readouterr()
    assert main(["recognize", "--model", str(model), str(audio / "spk2.wav")]) == 0
    printed = capsys.readouterr()
    assert "spk2.wav: 2 channels averaged to one" in printed.err
    assert printed.out.split("\t")[1].split() != []  # some words of the vocabulary
    assert set(printed.out.split("\t")[1].split()) <= set(WORDS)


def test_train_asr_from_a_manifest_of_word_strings_with_a_unigram_lm(tmp_path, capsys):
    from hybrid.speech.corpus import connected_strings, synthetic_recordings

    strings = connected_strings(synthetic_recordings(speakers=3, takes=2), 24, seed=0)
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = ["path,transcript,speaker"]
    for u in strings:
        write_audio(audio / f"{u.id}.wav", u.waveform[None], u.sample_rate)
        rows.append(f'audio/{u.id}.wav,"{" ".join(WORDS[w] for w in u.words)}",{u.speaker}')
    manifest = tmp_path / "strings.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    arpa = tmp_path / "lm.arpa"
    body = "".join(f"-1\t{w}\n" for w in WORDS)
    arpa.write_text(f"\\data\\\nngram 1=10\n\n\\1-grams:\n{body}\n\\end\\\n", encoding="utf-8")
    runs = tmp_path / "runs"
    args = ["train-asr", "--train", str(manifest), "--held-out", "0.34", "--lm", str(arpa)]
    assert main([*args, "--runs", str(runs), *TINY]) == 0
    out = capsys.readouterr().out
    assert "test: held out" in out and "dev: held out" in out
    results = json.loads((runs / "asr-strings" / "results.json").read_text())
    assert results["settings"]["systems"]["training"]["spec_augment"] is None  # off by default
    assert {r["task"] for r in results["rows"]} == {"continuous"}
    table = (runs / "asr-strings" / "results.md").read_text()
    assert "Continuous: errors by kind" in table
    assert main([*args, "--runs", str(runs), "--tasks", "strings", *TINY]) == 2
    assert "tasks ['strings'] do not fit these recordings" in capsys.readouterr().err


def test_a_missing_source_or_data_folder_is_named(tmp_path):
    from hybrid.speech.datasets import preset_files

    with pytest.raises(ValueError, match=r"--train: no file or folder .*nowhere.*Kaldi data"):
        load_speech(SpeechFiles(train=(str(tmp_path / "nowhere"),)))
    with pytest.raises(ValueError, match="no data folder for speech_commands: give --data"):
        preset_files("speech_commands", None)
    with pytest.raises(ValueError, match=r"no speech_commands/manifest.csv under"):
        preset_files("speech_commands", tmp_path)
    with pytest.raises(ValueError, match=r"corpus must be one of \['speech_commands'\]"):
        preset_files("timit", tmp_path)


def test_train_asr_refuses_file_options_without_files(capsys):
    assert main(["train-asr", "--corpus", "fsdd", "--test-speakers", "x"]) == 2
    assert "--test-speakers: read a corpus by path" in capsys.readouterr().err
    assert main(["train-asr", "--held-out", "0", "--speaker-column", ""]) == 2
    err = capsys.readouterr().err
    assert "--held-out, --speaker-column: read a corpus by path; give --train too" in err


# --- the real corpora ------------------------------------------------------------------------


def test_fsdd_as_a_kaldi_directory_reads_as_its_preset(tmp_path):
    """Identical utterances (ids, speakers, words, samples) in the same order, so every figure
    of the comparison is the preset's (the pipeline is deterministic given its inputs)."""
    root = real_corpus("fsdd").parent
    train, test = official_split(read_fsdd(root / "fsdd"))
    for name, recordings in (("train", train), ("test", test)):
        kaldi_dir(
            tmp_path / name,
            {
                "wav.scp": [f"{r.path.stem} {r.path.resolve()}" for r in recordings],
                "text": [f"{r.path.stem} {DIGITS[r.digit]}" for r in recordings],
                "utt2spk": [f"{r.path.stem} {r.speaker}" for r in recordings],
            },
        )
    given = load_speech(
        SpeechFiles(train=(str(tmp_path / "train"),), test=(str(tmp_path / "test"),), held_out=0)
    )
    preset_train, preset_test, words = load_corpus("fsdd", str(root))
    assert given.words == words and given.dev is None and given.grammar == "isolated"
    for mine, theirs in ((given.train, preset_train), (given.test, preset_test)):
        assert [(u.id, u.speaker, u.words, u.sample_rate) for u in mine] == [
            (u.id, u.speaker, u.words, u.sample_rate) for u in theirs
        ]
        assert all(torch.equal(a.waveform, b.waveform) for a, b in zip(mine, theirs, strict=True))


def test_only_the_speech_commands_preset_trains_longer_with_masks_unless_told():
    from hybrid.speech.experiment import default_settings

    def masks_and_epochs(*args):
        training = default_settings(*args).systems.training
        return training.spec_augment, training.epochs

    assert masks_and_epochs("speech_commands") == (SpecAugment(), 15)
    assert masks_and_epochs("speech_commands", 4, None, False) == (None, 4)
    assert masks_and_epochs("files") == masks_and_epochs("fsdd") == (None, 10)
    assert masks_and_epochs("fsdd", None, None, True) == (SpecAugment(), 10)
    assert default_settings("speech_commands").systems.ctc_training.spec_augment == SpecAugment()


def test_speech_commands_preset_splits_its_speakers_three_ways():
    from hybrid.speech.datasets import PRESETS, preset_files

    root = real_corpus("speech_commands").parent
    data = load_speech(preset_files("speech_commands", root))
    assert PRESETS["speech_commands"].transcript_column == "label"
    assert sorted(data.words) == sorted(
        ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_"]
    )
    splits = [{u.speaker for u in s} for s in (data.train, data.dev, data.test)]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert len(data.train) + len(data.dev) + len(data.test) == 3533
    assert data.sample_rate == 16000 and data.grammar == "isolated"


def test_yesno_recipe_data_reads_as_kaldi_directories_with_its_lm(tmp_path):
    import importlib.util
    from pathlib import Path

    waves = real_corpus("yesno") / "waves_yesno"
    spec = importlib.util.spec_from_file_location(
        "yesno", Path(__file__).parent.parent / "recipes" / "yesno" / "run.py"
    )
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    recipe.prepare(waves, tmp_path)
    names = sorted(p.stem for p in waves.glob("*.wav"))
    data = load_speech(
        SpeechFiles(
            train=(str(tmp_path / "train"),),
            test=(str(tmp_path / "test"),),
            lm=str(tmp_path / "lm.arpa"),
        )
    )
    assert [u.id for u in data.test] == names[30:]
    assert len(data.train) + len(data.dev) == 30
    assert data.words == ("NO", "YES")  # order of first appearance: 0_0_0_0_1_1_1_1 first
    first = data.test[0]
    assert [data.words[w] for w in first.words] == [
        "YES" if d == "1" else "NO" for d in first.id.split("_")
    ]
    unigrams = {tuple(tokens): log_prob for tokens, log_prob, _ in data.grammar["ngram"]}
    assert unigrams == pytest.approx(
        {
            (0,): -math.log(10),
            (1,): -math.log(10),
            ("<s>",): -99 * math.log(10),
            ("</s>",): -math.log(10),
        }
    )
