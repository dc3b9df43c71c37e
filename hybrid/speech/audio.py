"""Mono PCM WAV files (read and written with the standard library's `wave` module) and
band-limited resampling."""

from __future__ import annotations

import math
import os
import wave
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..files import write_atomic

__all__ = ["read_wav", "resample", "write_wav"]

# Sample widths in bytes that PCM WAV files use: 8-bit unsigned, 16/24/32-bit signed.
_PCM_WIDTHS = (1, 2, 3, 4)

#: Zero crossings of the interpolating sinc on each side of an output sample.
_ZERO_CROSSINGS = 16

# Output samples interpolated at a time: memory stays bounded on long recordings.
_BLOCK_SAMPLES = 4096

# Most (output sample, tap) pairs weighed at a time: memory stays bounded (a few arrays of
# 8 MiB) however many taps a large rate ratio needs (3073 from 768 kHz down to 8 kHz).
_BLOCK_PAIRS = 1 << 20

# The `wave` module's terse errors about a header field that is zero, in the WAV header's terms.
_WAVE_ERRORS = {
    "bad # of channels": "the NumChannels field of its header is 0; expected 1 (mono)",
    "bad sample width": "the BitsPerSample field of its header is 0; expected 8, 16, 24 or 32",
    "bad frame rate": "the SampleRate field of its header is 0; expected a positive number of Hz",
}


def _pcm_to_float(data: bytes, width: int) -> np.ndarray:
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


def _read_pcm(path: str | os.PathLike[str]) -> tuple[int, int, int, int, bytes]:
    """``(channels, width, sample_rate, declared frames, data bytes)`` of a WAV file."""
    try:
        with wave.open(os.fspath(path), "rb") as reader:
            header = (
                reader.getnchannels(),
                reader.getsampwidth(),
                reader.getframerate(),
                reader.getnframes(),
            )
            return (*header, reader.readframes(header[-1]))
    except wave.Error as error:
        reason = _WAVE_ERRORS.get(str(error), str(error))
        raise ValueError(f"{path} is not a readable PCM WAV file: {reason}") from error
    except (EOFError, RuntimeError) as error:  # wave's own: a header or chunk cut short
        raise ValueError(
            f"{path} is not a readable PCM WAV file: its RIFF header or a chunk of it ends "
            "early (an empty, truncated or corrupt file)"
        ) from error


def read_wav(path: str | os.PathLike[str]) -> tuple[Tensor, int]:
    """Read a mono PCM WAV file.

    Args:
        path: The ``.wav`` file: uncompressed PCM, 8, 16, 24 or 32 bits, one channel.

    Returns:
        ``(waveform, sample_rate)``: the ``(N,)`` float32 samples scaled to [-1, 1)
        (a 16-bit sample ``s`` becomes ``s / 32768``, an 8-bit one ``(s - 128) / 128``) and
        the sample rate in Hz (positive).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming ``path`` when it is a folder or not a PCM WAV file (e.g. empty,
            floating-point or compressed samples, no RIFF header, or a header cut short),
            when its header declares a sample rate of 0 or a channel count other than 1, or
            an unsupported sample width, or when it holds fewer samples than its header
            declares.
    """
    if Path(path).is_dir():
        raise ValueError(f"{path} is a folder; expected a .wav file")
    channels, width, sample_rate, declared, data = _read_pcm(path)
    if channels != 1:
        raise ValueError(f"{path} has {channels} channels; read_wav reads mono files only")
    if sample_rate <= 0:
        raise ValueError(
            f"{path} is not a readable PCM WAV file: the SampleRate field of its header is "
            f"{sample_rate}; expected a positive number of Hz"
        )
    if width not in _PCM_WIDTHS:
        raise ValueError(f"{path} has {8 * width}-bit samples; expected 8, 16, 24 or 32 bits")
    if len(data) != declared * width:
        raise ValueError(
            f"{path} is truncated: its header declares {declared} samples, "
            f"the file holds {len(data) // width}"
        )
    return torch.from_numpy(_pcm_to_float(data, width).astype(np.float32)), sample_rate


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
