"""WAV files written byte by byte for the tests: RIFF chunks, fmt payloads of every format
the reader takes, and a writer of any channel count and sample width."""

import struct

import numpy as np
import torch

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
GUID_SUFFIX = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def chunk(chunk_id: bytes, payload: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk: id, little-endian size (``len(payload)`` unless given), payload, and a
    pad byte when the payload's length is odd."""
    declared = len(payload) if size is None else size
    return chunk_id + struct.pack("<I", declared) + payload + b"\0" * (len(payload) % 2)


def riff(*chunks: bytes) -> bytes:
    """A RIFF WAVE file of the given chunks."""
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(tag: int, channels: int, rate: int, bits: int, align: int | None = None) -> bytes:
    """A 16-byte fmt payload; BlockAlign ``channels * bits / 8`` unless given."""
    align = channels * bits // 8 if align is None else align
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def extensible_fmt(sub_tag: int, channels: int, rate: int, bits: int) -> bytes:
    """A 40-byte WAVE_FORMAT_EXTENSIBLE fmt payload whose SubFormat GUID wraps ``sub_tag``."""
    mask = (1 << channels) - 1
    extension = struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", sub_tag) + GUID_SUFFIX
    return fmt(EXTENSIBLE, channels, rate, bits) + extension


def wav(fmt_payload: bytes, data: bytes, size: int | None = None) -> bytes:
    """A WAV file of a fmt chunk and a data chunk (of declared ``size`` when given)."""
    return riff(chunk(b"fmt ", fmt_payload), chunk(b"data", data, size))


def pack_24(values: np.ndarray) -> bytes:
    """Signed integers in [-2**23, 2**23) as 3-byte little-endian samples."""
    return values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def write_audio(path, samples: torch.Tensor, rate: int, bits: int = 16, tag: int = PCM):
    """Write ``samples`` ``(C, N)`` in [-1, 1) as a WAV file of ``C`` interleaved channels:
    signed PCM of ``bits`` (16, 24 or 32; a sample ``x`` stored as ``round(x * 2**(bits-1))``)
    or, with ``tag=FLOAT``, IEEE float of ``bits`` (32 or 64). Returns ``path``."""
    frames = samples.double().T.numpy()  # (N, C): interleaved
    if tag == FLOAT:
        data = frames.astype("<f4" if bits == 32 else "<f8").tobytes()
    else:
        scale = 2 ** (bits - 1)
        values = np.clip(np.round(frames * scale), -scale, scale - 1).astype(np.int64).ravel()
        data = pack_24(values) if bits == 24 else values.astype(f"<i{bits // 8}").tobytes()
    path.write_bytes(wav(fmt(tag, samples.shape[0], rate, bits), data))
    return path
