"""WAV files and band-limited resampling.

`read_audio` reads every common uncompressed WAV file with a RIFF chunk parser of its own
(numpy and `struct`; no audio library needed): integer PCM of 8 (unsigned), 16, 24 or 32
bits, IEEE float of 32 or 64 bits, either as a plain format tag or as
WAVE_FORMAT_EXTENSIBLE, with any number of interleaved channels. Compressed audio (FLAC,
Ogg, MP3, or a WAV file of ADPCM, A-law or mu-law samples), big-endian RIFX and RF64 files
are refused with a `ValueError` that names the file and says how to convert it. `read_wav`
reads one channel (or the mean of several), and `write_wav` writes mono 16-bit PCM with the
standard library's `wave` module.
"""

from __future__ import annotations

import math
import os
import struct
import wave
from numbers import Real
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..files import write_atomic

__all__ = ["read_audio", "read_wav", "resample", "write_wav"]

#: Zero crossings of the interpolating sinc on each side of an output sample.
_ZERO_CROSSINGS = 16

# Output samples interpolated at a time: memory stays bounded on long recordings.
_BLOCK_SAMPLES = 4096

# Most (output sample, tap) pairs weighed at a time: memory stays bounded (a few arrays of
# 8 MiB) however many taps a large rate ratio needs (3073 from 768 kHz down to 8 kHz).
_BLOCK_PAIRS = 1 << 20

# Format tags of the samples read, and the BitsPerSample values read for each.
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_BITS = {_PCM: (8, 16, 24, 32), _FLOAT: (32, 64)}
_BITS_EXPECTED = {_PCM: "8, 16, 24 or 32", _FLOAT: "32 or 64 for IEEE float"}

# Other format tags, named in the error that refuses them.
_TAG_NAMES = {
    2: "Microsoft ADPCM",
    6: "A-law",
    7: "mu-law",
    0x11: "IMA ADPCM",
    0x31: "GSM 6.10",
    0x50: "MPEG",
    0x55: "MP3",
}

# A WAVE_FORMAT_EXTENSIBLE SubFormat GUID past its first two bytes (the format tag), for
# every KSDATAFORMAT_SUBTYPE_* that wraps a plain format tag.
_GUID_SUFFIX = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

# Data chunk sizes that writers put in a header when they cannot know the length (a pipe):
# 0xFFFFFFFF (ffmpeg and others) and SoX's 0x7FFFF000. Such a chunk runs to the end of file.
_UNKNOWN_SIZES = (0xFFFFFFFF, 0x7FFFF000)

_CONVERT = "convert it to WAV first, e.g. `sox {0} out.wav` or `ffmpeg -i {0} out.wav`"

# The first bytes of files that are not RIFF WAVE, and what to say about them.
_FOREIGN = (
    (
        b"fLaC",
        "it is FLAC (it starts with 'fLaC'), which is not read; " + _CONVERT.format("in.flac"),
    ),
    (b"OggS", "it is Ogg (it starts with 'OggS'), compressed audio; " + _CONVERT.format("in.ogg")),
    (
        b"ID3",
        "it is MP3 (it starts with an ID3 tag), compressed audio; " + _CONVERT.format("in.mp3"),
    ),
    (b"RIFX", "it is a big-endian RIFX file, which is not supported; expected RIFF"),
    (b"RF64", "it is an RF64 file, which is not supported; expected RIFF"),
)

_EARLY_END = "its RIFF header or a chunk of it ends early (an empty, truncated or corrupt file)"


class _Format(NamedTuple):
    """A WAV file's sample format: ``tag`` is `_PCM` or `_FLOAT` (an extensible file's
    SubFormat), ``width`` the bytes of one sample."""

    tag: int
    channels: int
    rate: int
    width: int


def _unreadable(path: str | os.PathLike[str], reason: str) -> ValueError:
    """The error for a file that is not a WAV file read here, naming it and ``reason``."""
    return ValueError(f"{path} is not a readable PCM WAV file: {reason}")


def _pcm_to_float(data: bytes | memoryview, width: int) -> np.ndarray:
    """Little-endian PCM samples of ``width`` bytes as float64 values in [-1, 1).

    8-bit samples are unsigned with 128 as zero; wider ones are signed. A signed sample is
    placed in the high bytes of an int32 (low bytes zero), so one scale, 2**31, serves
    16, 24 and 32 bits alike.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if width == 1:
        return (raw.astype(np.float64) - 128.0) / 128.0
    aligned = np.zeros((raw.size // width, 4), dtype=np.uint8)
    aligned[:, 4 - width :] = raw.reshape(-1, width)
    return aligned.view("<i4")[:, 0].astype(np.float64) / 2.0**31


def _check_container(path: str | os.PathLike[str], content: bytes) -> None:
    """``ValueError`` naming ``path`` unless ``content`` starts with a RIFF WAVE header."""
    for magic, reason in _FOREIGN:
        if content.startswith(magic):
            raise _unreadable(path, reason)
    if len(content) >= 2 and content[0] == 0xFF and content[1] & 0xE0 == 0xE0:
        raise _unreadable(
            path,
            "it starts with an MPEG audio frame (MP3 or AAC), compressed audio; "
            + _CONVERT.format("in.mp3"),
        )
    if len(content) < 12 and b"RIFF".startswith(content[:4]):
        raise _unreadable(path, _EARLY_END)
    if content[:4] != b"RIFF" or content[8:12] != b"WAVE":
        raise _unreadable(path, "it does not start with a RIFF WAVE header ('RIFF', size, 'WAVE')")


def _find_chunks(path: str | os.PathLike[str], content: bytes) -> tuple[bytes, int, int]:
    """``(fmt payload, declared data size, offset of the data)`` of a RIFF WAVE file.

    Chunks are walked from byte 12 on, each a 4-byte id, a little-endian uint32 size, the
    payload and a pad byte when the size is odd; chunks other than ``fmt `` and ``data``
    (LIST, fact, cue, ...) are skipped. The walk stops at ``data``, which must come after
    ``fmt ``; its size is returned as declared, even past the end of the file.
    """
    fmt = None
    offset = 12
    while offset + 8 <= len(content):
        chunk_id = content[offset : offset + 4]
        (size,) = struct.unpack_from("<I", content, offset + 4)
        start = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise _unreadable(
                    path, "its data chunk comes before a fmt chunk; expected fmt first"
                )
            return fmt, size, start
        if start + size > len(content):
            raise _unreadable(path, _EARLY_END)
        if chunk_id == b"fmt ":
            fmt = content[start : start + size]
        offset = start + size + size % 2
    if offset < len(content):
        raise _unreadable(path, _EARLY_END)
    missing = "fmt" if fmt is None else "data"
    raise _unreadable(path, f"it has no {missing} chunk; expected a fmt chunk, then a data chunk")


def _check_tag(path: str | os.PathLike[str], tag: int, field: str) -> None:
    """``ValueError`` naming ``path``, ``field`` and ``tag`` unless ``tag`` is PCM or float
    (``field`` is ``"format tag"``, which may also be extensible, or ``"extensible
    SubFormat"``)."""
    if tag not in _BITS:
        name = f" ({_TAG_NAMES[tag]}, compressed)" if tag in _TAG_NAMES else ""
        expected = "PCM (1), IEEE float (3) or extensible (65534)"
        if field != "format tag":
            expected = "PCM (1) or IEEE float (3)"
        raise _unreadable(
            path,
            f"its {field} is {tag}{name}; expected {expected}; "
            "convert it to PCM WAV first, e.g. `sox in.wav -e signed-integer out.wav` or "
            "`ffmpeg -i in.wav -c:a pcm_s16le out.wav`",
        )


def _subformat(path: str | os.PathLike[str], fmt: bytes) -> int:
    """The format tag in a WAVE_FORMAT_EXTENSIBLE fmt payload's SubFormat GUID (its first
    two bytes); ``ValueError`` naming ``path`` for a short payload or another GUID."""
    if len(fmt) < 40:
        raise _unreadable(
            path, f"its extensible fmt chunk holds {len(fmt)} bytes; expected 40 or more"
        )
    guid = fmt[24:40]
    if guid[2:] != _GUID_SUFFIX:
        raise _unreadable(
            path,
            f"its extensible SubFormat GUID {guid.hex()} is not a KSDATAFORMAT one; expected "
            "PCM or IEEE float",
        )
    (tag,) = struct.unpack_from("<H", guid)
    _check_tag(path, tag, "extensible SubFormat")
    return tag


def _parse_format(path: str | os.PathLike[str], fmt: bytes) -> _Format:
    """The `_Format` of a fmt chunk's payload; ``ValueError`` naming ``path`` and the header
    field for a format not read, a zero NumChannels or SampleRate, a BitsPerSample the
    format does not have, or a BlockAlign other than NumChannels times the sample bytes."""
    if len(fmt) < 16:
        raise _unreadable(path, f"its fmt chunk holds {len(fmt)} bytes; expected 16 or more")
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE:
        tag = _subformat(path, fmt)
    else:
        _check_tag(path, tag, "format tag")
    if channels == 0:
        raise _unreadable(path, "the NumChannels field of its header is 0; expected 1 or more")
    if rate == 0:
        raise _unreadable(
            path, "the SampleRate field of its header is 0; expected a positive number of Hz"
        )
    if bits not in _BITS[tag]:
        raise _unreadable(
            path, f"the BitsPerSample field of its header is {bits}; expected {_BITS_EXPECTED[tag]}"
        )
    if align != channels * bits // 8:
        raise _unreadable(
            path,
            f"the BlockAlign field of its header is {align}; expected {channels * bits // 8} "
            f"(NumChannels {channels} times {bits // 8} bytes)",
        )
    return _Format(tag, channels, rate, bits // 8)


def _data_bytes(
    path: str | os.PathLike[str], content: bytes, start: int, size: int, block: int, width: int
) -> memoryview:
    """The ``size`` bytes of a data chunk at ``start`` in ``content``, whole frames of
    ``block`` bytes (samples of ``width`` bytes); a placeholder size of a streaming writer
    (`_UNKNOWN_SIZES`) past the end of the file stands for the bytes up to the end.

    Raises:
        ValueError: naming ``path`` when the chunk is not whole frames, or runs past the end
            of the file.
    """
    available = len(content) - start
    if size > available and size in _UNKNOWN_SIZES:
        if available % block:
            raise ValueError(
                f"{path} is truncated: its data chunk runs to the end of the file, whose last "
                f"{available % block} bytes are less than one frame of {block} bytes"
            )
        size = available
    if size % block:
        raise _unreadable(
            path, f"its data chunk holds {size} bytes, not a whole number of {block}-byte frames"
        )
    if size > available:
        raise ValueError(
            f"{path} is truncated: its header declares {size // width} samples, "
            f"the file holds {available // width}"
        )
    return memoryview(content)[start : start + size]


def _decode(path: str | os.PathLike[str], data: memoryview, form: _Format) -> np.ndarray:
    """The samples of ``data``, interleaved as stored: integers scaled to [-1, 1) by
    `_pcm_to_float`, floats as they are; ``ValueError`` naming ``path`` for a float sample
    that is NaN, infinite or beyond float32's range."""
    if form.tag == _PCM:
        return _pcm_to_float(data, form.width)
    samples = np.frombuffer(data, dtype=f"<f{form.width}")
    bad = np.flatnonzero(~(np.abs(samples) <= np.finfo(np.float32).max))
    if bad.size:
        frame, channel = divmod(int(bad[0]), form.channels)
        raise ValueError(
            f"{path} holds a NaN, infinite or out-of-range float sample ({samples[bad[0]]} at "
            f"frame {frame}, channel {channel}); expected finite samples within float32's range"
        )
    return samples


def read_audio(path: str | os.PathLike[str]) -> tuple[Tensor, int]:
    """Read an uncompressed WAV file, every channel of it.

    The RIFF chunks are walked (unknown ones such as LIST, fact, cue or bext skipped) up to
    the ``data`` chunk, which must follow the ``fmt `` chunk. A data chunk whose size is a
    streaming writer's placeholder (0xFFFFFFFF, or SoX's 0x7FFFF000) runs to the end of the
    file.

    Args:
        path: The ``.wav`` file: format tag 1 (integer PCM of 8, 16, 24 or 32 bits), 3 (IEEE
            float of 32 or 64 bits) or 65534 (WAVE_FORMAT_EXTENSIBLE of a PCM or IEEE float
            SubFormat), little-endian, any number of channels.

    Returns:
        ``(waveform, sample_rate)``: the ``(C, N)`` float32 samples of the ``C`` channels
        and the sample rate in Hz (positive). Integer samples are scaled to [-1, 1) (a 16-bit
        sample ``s`` becomes ``s / 32768``, an 8-bit one ``(s - 128) / 128``); float samples
        are kept as they are.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming ``path`` when it is a folder; a compressed file (FLAC, Ogg, MP3,
            or a WAV file of another format tag, such as 2 for ADPCM, 6 for A-law or 7 for
            mu-law), a RIFX or RF64 file, or not a WAV file at all; when its header is cut
            short, lacks a fmt or data chunk, or declares 0 channels, a sample rate of 0, a
            BitsPerSample its format lacks or a BlockAlign other than channels times sample
            bytes; when its data chunk is not whole frames or holds fewer bytes than its size
            declares; or when a float sample is NaN or infinite.
    """
    if Path(path).is_dir():
        raise ValueError(f"{path} is a folder; expected a .wav file")
    content = Path(path).read_bytes()
    _check_container(path, content)
    fmt, size, start = _find_chunks(path, content)
    form = _parse_format(path, fmt)
    data = _data_bytes(path, content, start, size, form.channels * form.width, form.width)
    frames = _decode(path, data, form).reshape(-1, form.channels)
    return torch.from_numpy(np.array(frames.T, dtype=np.float32, order="C")), form.rate


def read_wav(path: str | os.PathLike[str], downmix: bool = False) -> tuple[Tensor, int]:
    """Read a WAV file as one channel.

    Args:
        path: The ``.wav`` file, in any format `read_audio` reads: integer PCM of 8, 16, 24
            or 32 bits, IEEE float of 32 or 64 bits, plain or WAVE_FORMAT_EXTENSIBLE.
        downmix: Whether a file of several channels is read as their mean; if false, such a
            file is refused.

    Returns:
        ``(waveform, sample_rate)``: the ``(N,)`` float32 samples (integers scaled to
        [-1, 1): a 16-bit sample ``s`` becomes ``s / 32768``, an 8-bit one
        ``(s - 128) / 128``; floats as they are) and the sample rate in Hz (positive).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming ``path`` when it has several channels and ``downmix`` is false,
            or for any file `read_audio` refuses (a folder, compressed audio, a damaged or
            truncated file, ...).
    """
    waveform, sample_rate = read_audio(path)
    channels = waveform.shape[0]
    if channels > 1 and not downmix:
        raise ValueError(
            f"{path} has {channels} channels; read_wav reads mono files only "
            "(pass downmix=True to average the channels)"
        )
    return waveform.mean(dim=0), sample_rate


def write_wav(path: str | os.PathLike[str], waveform: Tensor, sample_rate: int) -> None:
    """Write a mono 16-bit PCM WAV file atomically (a temporary file, then a rename).

    Samples are quantised to ``round(x * 32768)``, with 1.0 mapped to 32767, so `read_wav`
    returns every sample within 1/32768 of what was written. Missing parent folders are
    created.

    Args:
        path: The ``.wav`` file to write; an existing file is replaced.
        waveform: ``(N,)`` float samples in [-1, 1], on any device.
        sample_rate: Samples per second, a positive integer.

    Raises:
        ValueError: if ``waveform`` is not a 1-D float tensor of finite values in [-1, 1], or
            ``sample_rate`` is not a positive integer.
    """
    if not isinstance(waveform, Tensor) or waveform.dim() != 1 or not waveform.is_floating_point():
        shape = tuple(waveform.shape) if isinstance(waveform, Tensor) else type(waveform).__name__
        raise ValueError(f"waveform must be a 1-D float tensor (N,), got {shape}")
    if not bool((waveform.abs() <= 1).all()):  # also false for NaN and infinities
        raise ValueError("waveform must hold finite samples in [-1, 1]; scale it first")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    samples = torch.round(waveform.detach().double().cpu() * 32768).clamp(-32768, 32767)
    data = samples.numpy().astype("<i2").tobytes()

    def write(stream) -> None:
        with wave.open(stream, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(sample_rate)
            writer.writeframes(data)

    write_atomic(path, write)


def _check_rate(name: str, rate: object) -> float:
    """``rate`` as a float; ``ValueError`` naming ``name`` unless a positive finite number."""
    if isinstance(rate, bool) or not isinstance(rate, Real) or not 0 < rate < math.inf:
        raise ValueError(f"{name} must be a positive number of Hz, got {rate!r}")
    return float(rate)


def resample(waveform: Tensor, sample_rate: float, new_rate: float) -> Tensor:
    """``waveform``, sampled at ``sample_rate``, sampled at ``new_rate`` instead, by
    band-limited interpolation.

    Output sample ``j`` is the input interpolated at time ``j * sample_rate / new_rate`` (in
    input samples) with a Hann-windowed sinc of 16 zero crossings each side. Its cut-off is
    the lower of the input's and the output's Nyquist frequency, so downsampling first
    removes what would fold back (aliasing) above the new Nyquist frequency. The output is
    computed a block of samples and taps at a time, so memory stays proportional to the
    waveform and the output, whatever the ratio of the rates.

    Args:
        waveform: ``(N,)`` float32 or float64 samples, ``N >= 1``.
        sample_rate: The waveform's rate, a positive number (of Hz, or any unit).
        new_rate: The output's rate, in the same unit.

    Returns:
        ``(1 + floor((N - 1) * new_rate / sample_rate),)`` samples (the span of the input)
        in the input's dtype and device; a copy when the rates are equal.

    Raises:
        ValueError: naming the argument, for a waveform that is not a non-empty 1-D float
            tensor, or a rate that is not a positive finite number.
    """
    if not isinstance(waveform, Tensor) or waveform.dim() != 1 or not waveform.is_floating_point():
        got = tuple(waveform.shape) if isinstance(waveform, Tensor) else type(waveform).__name__
        raise ValueError(f"waveform must be a 1-D float tensor (N,), got {got}")
    if waveform.numel() == 0:
        raise ValueError("waveform must hold at least one sample")
    step = _check_rate("sample_rate", sample_rate) / _check_rate("new_rate", new_rate)
    if step == 1:
        return waveform.clone()
    x = waveform.double()
    count = 1 + math.floor((x.numel() - 1) * new_rate / sample_rate)
    cutoff = min(1.0, 1.0 / step)  # of the input's Nyquist frequency
    blocks = []
    for begin in range(0, count, _BLOCK_SAMPLES):
        output = torch.arange(begin, min(begin + _BLOCK_SAMPLES, count), dtype=torch.float64)
        blocks.append(_interpolate(x, output.to(x.device) * step, cutoff))
    return torch.cat(blocks).to(waveform.dtype)


def _interpolate(x: Tensor, times: Tensor, cutoff: float) -> Tensor:
    """``(n,)`` values of ``x`` ``(N,)`` (float64) at increasing ``times`` ``(n,)`` in
    samples, by a Hann-windowed sinc of cut-off ``cutoff`` (of the Nyquist frequency), 16
    zero crossings of it on each side of a time.

    The taps are weighed ``_BLOCK_PAIRS // n`` at a time, and only those that reach a
    sample of ``x`` for some time (those past both ends of ``x`` weigh nothing)."""
    half_width = math.ceil(_ZERO_CROSSINGS / cutoff)
    first = max(-half_width, -int(times[-1].floor()))
    last = min(half_width, x.numel() - 1 - int(times[0].floor()))
    width = max(1, _BLOCK_PAIRS // times.numel())
    total = torch.zeros_like(times)
    for begin in range(first, last + 1, width):
        taps = torch.arange(begin, min(begin + width, last + 1), device=x.device)
        total += _weigh_taps(x, times, taps, cutoff, half_width)
    return total


def _weigh_taps(x: Tensor, times: Tensor, taps: Tensor, cutoff: float, half_width: int) -> Tensor:
    """``(n,)``: the part of `_interpolate` of ``x`` at ``times`` ``(n,)`` that comes from
    the samples ``floor(times) + taps``, ``taps`` ``(m,)`` within ``[-half_width,
    half_width]``."""
    index = times.floor().long()[:, None] + taps  # (n, m)
    offset = times[:, None] - index  # distance of each tap from the output time
    window = torch.where(
        offset.abs() < half_width,
        0.5 * (1 + torch.cos(math.pi * offset / half_width)),
        torch.zeros((), dtype=torch.float64, device=x.device),
    )
    kernel = cutoff * torch.sinc(cutoff * offset) * window
    inside = (index >= 0) & (index < x.numel())
    samples = x[index.clamp(0, x.numel() - 1)] * inside
    return (samples * kernel).sum(dim=1)
