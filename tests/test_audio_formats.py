"""The RIFF WAV reader on files written byte by byte: every uncompressed format it reads,
decoded against values computed here, and every file it refuses, named in the error."""

import re
import struct
import wave

import numpy as np
import pytest
import torch
from wavfiles import (
    EXTENSIBLE,
    FLOAT,
    PCM,
    chunk,
    extensible_fmt,
    fmt,
    pack_24,
    riff,
    wav,
)

from hybrid.speech.audio import read_audio, read_wav


def as_tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.float32))


def refused(path, content: bytes, match: str) -> None:
    """Reading ``content`` from ``path`` raises a ``ValueError`` that matches ``match`` and
    names the file."""
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        read_audio(path)
    assert str(path) in str(error.value)


RNG = np.random.default_rng(0)


# --- what is read --------------------------------------------------------------------------


def test_8_bit_pcm_is_unsigned_around_128(tmp_path):
    raw = np.array([0, 1, 127, 128, 129, 255], dtype=np.uint8)
    path = tmp_path / "u8.wav"
    path.write_bytes(wav(fmt(PCM, 1, 8000, 8), raw.tobytes()))
    waveform, rate = read_audio(path)
    assert rate == 8000 and waveform.dtype == torch.float32
    assert torch.equal(waveform, as_tensor((raw.astype(np.float64) - 128) / 128)[None])


def test_16_bit_pcm_is_divided_by_32768(tmp_path):
    values = np.concatenate([[-32768, -1, 0, 1, 32767], RNG.integers(-32768, 32768, 200)])
    path = tmp_path / "s16.wav"
    path.write_bytes(wav(fmt(PCM, 1, 16000, 16), values.astype("<i2").tobytes()))
    waveform, rate = read_audio(path)
    assert rate == 16000 and waveform.shape == (1, 205)
    assert torch.equal(waveform, as_tensor(values / 32768)[None])


def test_24_bit_pcm_is_scaled_like_a_left_justified_int32(tmp_path):
    values = np.concatenate([[-(2**23), -1, 0, 1, 2**23 - 1], RNG.integers(-(2**23), 2**23, 200)])
    path = tmp_path / "s24.wav"
    path.write_bytes(wav(fmt(PCM, 1, 48000, 24), pack_24(values)))
    waveform, rate = read_audio(path)
    assert rate == 48000
    assert torch.equal(waveform, as_tensor((values * 256) / 2.0**31)[None])
    assert waveform[0, :5].tolist() == [-1.0, -(2.0**-23), 0.0, 2.0**-23, 1 - 2.0**-23]


def test_32_bit_pcm_is_divided_by_2_to_the_31(tmp_path):
    values = np.concatenate([[-(2**31), 2**30, 0, 2**31 - 1], RNG.integers(-(2**31), 2**31, 200)])
    path = tmp_path / "s32.wav"
    path.write_bytes(wav(fmt(PCM, 1, 8000, 32), values.astype("<i4").tobytes()))
    waveform, _ = read_audio(path)
    assert torch.equal(waveform, as_tensor(values / 2.0**31)[None])


@pytest.mark.parametrize("bits", [32, 64])
def test_float_samples_are_kept_as_they_are(tmp_path, bits):
    values = np.concatenate([[0.0, -1.0, 1.0, 1.5, -2.25, 1e-7], RNG.normal(size=100)])
    path = tmp_path / "float.wav"
    path.write_bytes(wav(fmt(FLOAT, 1, 22050, bits), values.astype(f"<f{bits // 8}").tobytes()))
    waveform, rate = read_audio(path)
    assert rate == 22050 and waveform.dtype == torch.float32
    assert torch.equal(waveform, as_tensor(values)[None])


def test_stereo_frames_are_interleaved_left_then_right(tmp_path):
    left = np.arange(-500, 500, dtype=np.int64) * 31
    right = RNG.integers(-32768, 32768, left.size)
    frames = np.stack([left, right], axis=1).ravel()  # L0 R0 L1 R1 ...
    path = tmp_path / "stereo.wav"
    path.write_bytes(wav(fmt(PCM, 2, 44100, 16), frames.astype("<i2").tobytes()))
    waveform, rate = read_audio(path)
    assert rate == 44100 and waveform.shape == (2, 1000) and waveform.is_contiguous()
    assert torch.equal(waveform, as_tensor(np.stack([left, right]) / 32768))
    with pytest.raises(ValueError, match="stereo.wav has 2 channels; .*downmix=True") as error:
        read_wav(path)
    assert str(path) in str(error.value)
    mono, rate = read_wav(path, downmix=True)
    assert rate == 44100 and mono.shape == (1000,) and mono.dtype == torch.float32
    assert torch.equal(mono, as_tensor((left + right) / 2 / 32768))


def test_read_wav_of_a_mono_file_is_its_one_channel(tmp_path):
    values = RNG.integers(-32768, 32768, 50)
    path = tmp_path / "mono.wav"
    path.write_bytes(wav(fmt(PCM, 1, 8000, 16), values.astype("<i2").tobytes()))
    for downmix in (False, True):
        waveform, rate = read_wav(path, downmix=downmix)
        assert rate == 8000 and torch.equal(waveform, as_tensor(values / 32768))


def test_many_channels_and_an_empty_data_chunk(tmp_path):
    values = RNG.integers(-(2**23), 2**23, (7, 6))  # 7 frames of 6 channels
    path = tmp_path / "surround.wav"
    path.write_bytes(wav(fmt(PCM, 6, 48000, 24), pack_24(values.ravel())))
    waveform, _ = read_audio(path)
    assert torch.equal(waveform, as_tensor(values.T * 256 / 2.0**31))
    path.write_bytes(wav(fmt(PCM, 3, 8000, 16), b""))
    waveform, rate = read_audio(path)
    assert waveform.shape == (3, 0) and rate == 8000


def test_extensible_pcm_24_bit(tmp_path):
    values = RNG.integers(-(2**23), 2**23, (100, 2))
    path = tmp_path / "ext24.wav"
    path.write_bytes(wav(extensible_fmt(PCM, 2, 96000, 24), pack_24(values.ravel())))
    waveform, rate = read_audio(path)
    assert rate == 96000 and torch.equal(waveform, as_tensor(values.T / 2.0**23))


def test_extensible_float(tmp_path):
    values = RNG.normal(size=(64, 2)).astype("<f4")
    path = tmp_path / "extfloat.wav"
    path.write_bytes(wav(extensible_fmt(FLOAT, 2, 48000, 32), values.tobytes()))
    waveform, rate = read_audio(path)
    assert rate == 48000 and torch.equal(waveform, torch.from_numpy(values.T.copy()))


def test_unknown_chunks_are_skipped_with_their_pad_byte(tmp_path):
    values = RNG.integers(-32768, 32768, 40)
    data = values.astype("<i2").tobytes()
    listing = chunk(b"LIST", b"INFOINAM" + struct.pack("<I", 6) + b"title\0")
    odd = chunk(b"junk", b"abc")  # 3 bytes and a pad byte
    assert len(odd) == 12
    path = tmp_path / "chunks.wav"
    path.write_bytes(
        riff(
            chunk(b"bext", b"x" * 17),
            chunk(b"fmt ", fmt(PCM, 1, 16000, 16)),
            odd,
            listing,
            chunk(b"fact", struct.pack("<I", 40)),
            chunk(b"data", data),
            chunk(b"LIST", b"INFO"),  # after the data: not read as samples
        )
    )
    waveform, rate = read_audio(path)
    assert rate == 16000 and torch.equal(waveform, as_tensor(values / 32768)[None])


def test_a_file_written_by_the_wave_module(tmp_path):
    path = tmp_path / "wave.wav"
    values = RNG.integers(-32768, 32768, (300, 2))
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(11025)
        writer.writeframes(values.astype("<i2").tobytes())
    with wave.open(str(path), "rb") as reader:
        rate = reader.getframerate()
        frames = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    expected = frames.reshape(-1, reader.getnchannels()).T / 32768
    waveform, read_rate = read_audio(path)
    assert read_rate == rate == 11025 and torch.equal(waveform, as_tensor(expected))


@pytest.mark.parametrize("placeholder", [0xFFFFFFFF, 0x7FFFF000])
def test_a_streaming_writers_data_size_runs_to_the_end_of_the_file(tmp_path, placeholder):
    values = RNG.integers(-32768, 32768, (25, 2))
    data = values.astype("<i2").tobytes()
    path = tmp_path / "stream.wav"
    path.write_bytes(wav(fmt(PCM, 2, 8000, 16), data, size=placeholder))
    waveform, _ = read_audio(path)
    assert torch.equal(waveform, as_tensor(values.T / 32768))
    refused(path, wav(fmt(PCM, 2, 8000, 16), data[:-2], size=placeholder), "is truncated")


# --- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"fLaC\0\0\0\x22" + b"\0" * 40, r"FLAC .*not read; convert it to WAV.*sox in\.flac"),
        (b"OggS\0\x02" + b"\0" * 40, r"Ogg .*compressed audio; convert it to WAV.*ffmpeg -i"),
        (b"ID3\x04\0\0" + b"\0" * 40, r"MP3 .*compressed audio; convert it to WAV"),
        (b"\xff\xfb\x90\x64" + b"\0" * 40, r"MPEG audio frame .*convert it to WAV"),
        (b"RIFX" + wav(fmt(PCM, 1, 8000, 16), b"\0\0")[4:], r"big-endian RIFX .*not supported"),
        (b"RF64" + wav(fmt(PCM, 1, 8000, 16), b"\0\0")[4:], r"RF64 .*not supported"),
        (b"RIFF\0\0\0\0AVI LIST" + b"\0" * 40, "does not start with a RIFF WAVE header"),
    ],
    ids=["flac", "ogg", "id3", "mp3-frame", "rifx", "rf64", "avi"],
)
def test_other_containers_are_refused_with_a_conversion_hint(tmp_path, content, match):
    refused(tmp_path / "song.wav", content, rf"song\.wav is not a readable PCM WAV file: .*{match}")


@pytest.mark.parametrize(
    ("fmt_payload", "match"),
    [
        (fmt(7, 1, 8000, 8), r"format tag is 7 \(mu-law, compressed\); expected PCM \(1\), IEEE"),
        (fmt(6, 1, 8000, 8), r"format tag is 6 \(A-law"),
        (fmt(2, 1, 8000, 4, align=256), r"format tag is 2 \(Microsoft ADPCM"),
        (fmt(0x1234, 1, 8000, 16), r"format tag is 4660; .*or extensible \(65534\)"),
        (extensible_fmt(7, 1, 8000, 8), r"extensible SubFormat is 7 \(mu-law"),
        (extensible_fmt(PCM, 1, 8000, 16)[:-16] + b"\x01" * 16, "SubFormat GUID 0101"),
        (fmt(EXTENSIBLE, 1, 8000, 16), "extensible fmt chunk holds 16 bytes; expected 40"),
        (fmt(PCM, 1, 8000, 16)[:14], "fmt chunk holds 14 bytes; expected 16"),
        (fmt(PCM, 1, 8000, 12, align=2), "BitsPerSample field of its header is 12; expected 8,"),
        (fmt(FLOAT, 1, 8000, 16), "BitsPerSample field of its header is 16; expected 32 or 64"),
        (fmt(PCM, 0, 8000, 16, align=2), "NumChannels field of its header is 0; expected 1"),
        (fmt(PCM, 1, 0, 16), "SampleRate field of its header is 0; expected a positive"),
        (fmt(PCM, 2, 8000, 16, align=2), r"BlockAlign field of its header is 2; expected 4"),
        (fmt(PCM, 1, 8000, 24, align=4), r"BlockAlign field of its header is 4; expected 3"),
    ],
    ids=[
        "mu-law",
        "a-law",
        "adpcm",
        "unknown-tag",
        "extensible-mu-law",
        "foreign-guid",
        "short-extensible",
        "short-fmt",
        "pcm-12-bit",
        "float-16-bit",
        "no-channels",
        "rate-0",
        "block-align-stereo",
        "block-align-24-bit",
    ],
)
def test_a_format_not_read_names_the_header_field(tmp_path, fmt_payload, match):
    content = wav(fmt_payload, b"\0" * 48)
    refused(tmp_path / "odd.wav", content, rf"odd\.wav is not a readable PCM WAV file: .*{match}")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "ends early"),
        (b"RIFF\x24\0\0", "ends early"),
        (wav(fmt(PCM, 1, 8000, 16), b"\0\0")[:30], "ends early"),
        (riff(chunk(b"fmt ", fmt(PCM, 1, 8000, 16)), b"dat"), "ends early"),
        (riff(chunk(b"LIST", b"\0" * 8, size=100)), "ends early"),
        (riff(chunk(b"fmt ", fmt(PCM, 1, 8000, 16))), "no data chunk"),
        (riff(chunk(b"LIST", b"INFO")), "no fmt chunk"),
        (riff(chunk(b"data", b"\0\0"), chunk(b"fmt ", fmt(PCM, 1, 8000, 16))), "before a fmt"),
        (wav(fmt(PCM, 2, 8000, 16), b"\0" * 6), "holds 6 bytes, not a whole number of 4-byte"),
    ],
    ids=[
        "empty",
        "riff-cut",
        "fmt-cut",
        "chunk-header-cut",
        "chunk-past-the-end",
        "no-data",
        "no-fmt",
        "data-first",
        "partial-frame",
    ],
)
def test_a_damaged_file_is_refused(tmp_path, content, match):
    refused(tmp_path / "bad.wav", content, rf"bad\.wav is not a readable PCM WAV file: .*{match}")


def test_truncated_data_counts_the_samples_declared_and_held(tmp_path):
    data = np.arange(100, dtype="<i2").tobytes()
    content = wav(fmt(PCM, 1, 8000, 16), data)[:-20]
    refused(tmp_path / "cut.wav", content, "cut.wav is truncated: .* declares 100 samples, .* 90$")


@pytest.mark.parametrize(
    ("bits", "value", "shown"), [(32, np.nan, "nan"), (64, -np.inf, "-inf"), (64, 1e300, "1e+300")]
)
def test_a_non_finite_float_sample_is_refused(tmp_path, bits, value, shown):
    values = np.zeros((5, 2))
    values[3, 1] = value
    content = wav(fmt(FLOAT, 2, 8000, bits), values.astype(f"<f{bits // 8}").tobytes())
    at = re.escape(f"({shown} at frame 3, channel 1)")
    match = rf"nan\.wav holds a NaN, infinite or out-of-range float sample {at}; expected finite"
    refused(tmp_path / "nan.wav", content, match)


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder; expected a \.wav file") as error:
        read_audio(tmp_path)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "missing.wav", downmix=True)
