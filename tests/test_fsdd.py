"""WAV reading and writing, and the Free Spoken Digit Dataset reader: small files written
here, then the real corpus."""

from __future__ import annotations

import math
import wave
from collections import Counter
from pathlib import Path

import pytest
import torch
from realdata import real_corpus

from hybrid.speech import (
    DIGITS,
    Recording,
    fbank,
    mfcc,
    official_split,
    read_fsdd,
    read_wav,
    speaker_split,
    write_wav,
)


def write_pcm(path: Path, samples: list[int], width: int, channels: int = 1) -> Path:
    """A PCM WAV file of integer samples, encoded here byte by byte (8-bit: unsigned)."""
    data = b"".join(
        (s + 128).to_bytes(1, "little") if width == 1 else s.to_bytes(width, "little", signed=True)
        for s in samples
    )
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(16000)
        writer.writeframes(data)
    return path


# --- read_wav / write_wav -------------------------------------------------------------------


def test_write_then_read_round_trips_within_one_16_bit_step(tmp_path):
    t = torch.arange(8000, dtype=torch.float64) / 8000
    waveform = 0.8 * torch.sin(2 * math.pi * 220 * t) + 0.1 * torch.randn(8000, dtype=torch.float64)
    waveform = waveform.clamp(-1, 1)
    waveform[:3] = torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)
    path = tmp_path / "sub" / "tone.wav"
    write_wav(path, waveform, 8000)
    read, sample_rate = read_wav(path)
    assert sample_rate == 8000 and read.dtype == torch.float32 and read.shape == (8000,)
    assert float((read.double() - waveform).abs().max()) <= 1 / 32768
    assert read[:3].tolist() == [-1.0, 32767 / 32768, 0.0]
    assert [p.name for p in path.parent.iterdir()] == ["tone.wav"]  # no partial file left


def test_write_wav_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, torch.zeros(10), 8000)
    write_wav(path, torch.full((5,), 0.5), 16000)
    read, sample_rate = read_wav(path)
    assert sample_rate == 16000 and read.tolist() == [0.5] * 5


@pytest.mark.parametrize(
    "width, samples, expected",
    [
        (1, [-128, 0, 127], [-1.0, 0.0, 127 / 128]),
        (2, [-32768, 0, 1, 32767], [-1.0, 0.0, 2.0**-15, 32767 / 32768]),
        (3, [-(2**23), -1, 0, 2**23 - 1], [-1.0, -(2.0**-23), 0.0, (2**23 - 1) / 2**23]),
        (4, [-(2**31), 2**30, 0, 2**31 - 1], [-1.0, 0.5, 0.0, (2**31 - 1) / 2**31]),
    ],
    ids=["8-bit", "16-bit", "24-bit", "32-bit"],
)
def test_read_wav_scales_every_pcm_width(tmp_path, width, samples, expected):
    waveform, sample_rate = read_wav(write_pcm(tmp_path / "x.wav", samples, width))
    assert sample_rate == 16000 and waveform.dtype == torch.float32
    torch.testing.assert_close(waveform, torch.tensor(expected, dtype=torch.float32))


def test_read_wav_refuses_stereo_garbage_compressed_and_truncated_files(tmp_path):
    stereo = write_pcm(tmp_path / "stereo.wav", [1, 2, 3, 4], 2, channels=2)
    with pytest.raises(ValueError, match="stereo.wav has 2 channels"):
        read_wav(stereo)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not a RIFF file at all" * 4)
    with pytest.raises(ValueError, match="garbage.wav is not a readable PCM WAV"):
        read_wav(garbage)
    compressed = write_pcm(tmp_path / "mulaw.wav", [0, 0], 4)
    header = bytearray(compressed.read_bytes())
    header[20:22] = (7).to_bytes(2, "little")  # format tag 7: mu-law, compressed
    compressed.write_bytes(bytes(header))
    with pytest.raises(ValueError, match=r"mulaw.wav is not a readable PCM WAV.*7 \(mu-law"):
        read_wav(compressed)
    truncated = write_pcm(tmp_path / "cut.wav", list(range(100)), 2)
    truncated.write_bytes(truncated.read_bytes()[:-20])
    with pytest.raises(ValueError, match="cut.wav is truncated: .* 100 samples, .* 90"):
        read_wav(truncated)
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "missing.wav")


@pytest.mark.parametrize(
    "waveform, sample_rate, message",
    [
        (torch.zeros(2, 5), 8000, r"waveform .*\(2, 5\)"),
        (torch.zeros(5, dtype=torch.int16), 8000, "waveform"),
        (torch.tensor([0.0, 1.5]), 8000, r"\[-1, 1\]"),
        (torch.tensor([0.0, math.nan]), 8000, r"\[-1, 1\]"),
        (torch.zeros(5), 0, "sample_rate"),
        (torch.zeros(5), 8000.0, "sample_rate"),
    ],
)
def test_write_wav_refuses_bad_input(tmp_path, waveform, sample_rate, message):
    with pytest.raises(ValueError, match=message):
        write_wav(tmp_path / "x.wav", waveform, sample_rate)
    assert not list(tmp_path.iterdir())


# --- the FSDD reader on small folders -------------------------------------------------------


def fake_corpus(root: Path, names: list[str]) -> Path:
    (root / "recordings").mkdir(parents=True)
    for name in names:
        (root / "recordings" / name).write_bytes(b"")
    return root


def test_read_fsdd_parses_names_and_sorts_by_speaker_digit_take(tmp_path):
    names = ["3_bob_10.wav", "3_bob_9.wav", "0_bob_2.wav", "1_alice_0.wav", "README.txt"]
    recordings = read_fsdd(fake_corpus(tmp_path, names))
    folder = tmp_path / "recordings"
    assert recordings == [
        Recording(folder / "1_alice_0.wav", 1, "alice", 0),
        Recording(folder / "0_bob_2.wav", 0, "bob", 2),
        Recording(folder / "3_bob_9.wav", 3, "bob", 9),
        Recording(folder / "3_bob_10.wav", 3, "bob", 10),
    ]
    assert DIGITS[3] == "three" and len(DIGITS) == 10


@pytest.mark.parametrize("bad", ["12_bob_1.wav", "3-bob-1.wav", "3_bob.wav", "x_bob_1.wav"])
def test_read_fsdd_refuses_an_unparsable_name(tmp_path, bad):
    with pytest.raises(ValueError, match=bad):
        read_fsdd(fake_corpus(tmp_path, ["1_bob_1.wav", bad]))


def test_read_fsdd_refuses_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="nowhere/recordings is not a folder"):
        read_fsdd(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="holds no .wav file"):
        read_fsdd(fake_corpus(tmp_path, []))


def test_splits_on_a_small_list():
    recordings = [
        Recording(Path(f"{d}_{s}_{t}.wav"), d, s, t)
        for s in ("ann", "bo")
        for d in range(2)
        for t in (0, 4, 5, 49)
    ]
    train, test = official_split(recordings)
    assert [r.take for r in test] == [0, 4] * 4 and [r.take for r in train] == [5, 49] * 4
    train, test = speaker_split(recordings, "bo")
    assert {r.speaker for r in train} == {"ann"} and {r.speaker for r in test} == {"bo"}
    assert len(train) == len(test) == 8
    with pytest.raises(ValueError, match=r"test_speaker must be one of \['ann', 'bo'\]"):
        speaker_split(recordings, "cy")


# --- the real corpus ------------------------------------------------------------------------

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "yweweler")


@pytest.fixture(scope="module")
def fsdd() -> list[Recording]:
    return read_fsdd(real_corpus("fsdd"))


def test_real_fsdd_has_every_take_of_every_digit_per_speaker(fsdd):
    assert len(fsdd) == 2500
    assert Counter(r.speaker for r in fsdd) == {s: 500 for s in SPEAKERS}
    assert Counter((r.speaker, r.digit) for r in fsdd) == {
        (s, d): 50 for s in SPEAKERS for d in range(10)
    }
    assert {r.take for r in fsdd} == set(range(50))
    assert fsdd == sorted(fsdd, key=lambda r: (r.speaker, r.digit, r.take))


def test_real_fsdd_splits(fsdd):
    train, test = official_split(fsdd)
    assert (len(train), len(test)) == (2250, 250)
    assert all(r.take < 5 for r in test) and all(r.take >= 5 for r in train)
    assert Counter((r.speaker, r.digit) for r in test) == {
        (s, d): 5 for s in SPEAKERS for d in range(10)
    }
    train, test = speaker_split(fsdd, "lucas")
    assert (len(train), len(test)) == (2000, 500)
    assert {r.speaker for r in test} == {"lucas"} and "lucas" not in {r.speaker for r in train}


def test_real_fsdd_recording_reads_and_gives_finite_features(fsdd):
    recording = next(r for r in fsdd if (r.digit, r.speaker, r.take) == (7, "jackson", 32))
    waveform, sample_rate = read_wav(recording.path)
    assert sample_rate == 8000 and waveform.dim() == 1
    assert 0.1 * sample_rate < waveform.shape[0] < 2 * sample_rate  # a spoken digit
    assert float(waveform.abs().max()) < 1 and float(waveform.std()) > 1e-3
    features = fbank(waveform, sample_rate)
    assert features.shape == (1 + (waveform.shape[0] - 200) // 80, 23)
    assert torch.isfinite(features).all() and torch.isfinite(mfcc(waveform, sample_rate)).all()
