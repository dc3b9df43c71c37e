"""Reading and writing mono PCM WAV files with the standard library's `wave` module."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["read_wav", "write_wav"]

# Sample widths in bytes that PCM WAV files use: 8-bit unsigned, 16/24/32-bit signed.
_PCM_WIDTHS = (1, 2, 3, 4)


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


def read_wav(path: str | os.PathLike[str]) -> tuple[Tensor, int]:
    """Read a mono PCM WAV file.

    Args:
        path: The ``.wav`` file: uncompressed PCM, 8, 16, 24 or 32 bits, one channel.

    Returns:
        ``(waveform, sample_rate)``: the ``(N,)`` float32 samples scaled to [-1, 1)
        (a 16-bit sample ``s`` becomes ``s / 32768``, an 8-bit one ``(s - 128) / 128``) and
        the sample rate in Hz.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming ``path`` when it is not a PCM WAV file (e.g. floating-point or
            compressed samples, or no RIFF header), has more than one channel, has an
            unsupported sample width, or holds fewer samples than its header declares.
    """
    try:
        with wave.open(os.fspath(path), "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            sample_rate = reader.getframerate()
            declared = reader.getnframes()
            data = reader.readframes(declared)
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{path} is not a readable PCM WAV file: {error}") from error
    if channels != 1:
        raise ValueError(f"{path} has {channels} channels; read_wav reads mono files only")
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with wave.open(os.fspath(partial), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(sample_rate)
            writer.writeframes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
