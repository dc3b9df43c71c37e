"""Writing a trained system as a TorchScript or ONNX file with its description beside it.

Every domain exports the same way: it wraps its trained system in a *portable* module, an
``nn.Module`` whose ``forward`` takes and returns padded tensors only and which has

- ``network``: the submodule holding the trained network, traced for TorchScript (its loops
  run over layers, not over the data),
- ``input_names`` and ``output_names``: the names of ``forward``'s arguments and results,
- ``example()``: example inputs (batch and every dynamic axis at least 2), and
- ``dynamic_shapes()``: ``{input name: {axis: torch.export.Dim}}`` for ``torch.onnx.export``;

and `write_exported` writes it as ``F`` (``"onnx"`` or ``"torchscript"``) with ``F.json``:
the description `hybrid.deploy` reads (``kind``, ``format``, ``inputs``, ``outputs`` and
what the domain adds: vocabularies, label maps, settings).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .deploy import FORMATS
from .files import write_atomic, write_json_atomic
from .nn.decoders import to_onnx

__all__ = [
    "FORMATS",
    "check_format",
    "to_torchscript",
    "word_shapes",
    "write_exported",
    "write_module",
]


def check_format(fmt: str) -> None:
    """A ``ValueError`` unless ``fmt`` is one of `FORMATS`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")


def word_shapes(features: str) -> dict[str, dict[int, object]]:
    """``dynamic_shapes`` for ``torch.onnx.export`` of a model over padded words: ``words``
    ``(B, T)``, ``lengths`` ``(B,)``, ``chars`` ``(B, T, C)`` and ``features`` ``(B, T)``
    (named ``features``: a tagger's ``"features"``, a parser's ``"tags"``), with batch,
    words and characters dynamic."""
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    width = torch.export.Dim("characters")
    return {
        "words": {0: batch, 1: time},
        "lengths": {0: batch},
        "chars": {0: batch, 1: time, 2: width},
        features: {0: batch, 1: time},
    }


def to_torchscript(portable: nn.Module) -> torch.jit.ScriptModule:
    """``portable`` as TorchScript: its ``network`` traced on ``portable.example()``, the
    rest (the decoders, whose loops run over time) scripted. TorchScript's deprecation
    warnings are silenced: docs/deploy.md says what they mean."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the shape checks, traced
        portable.network = torch.jit.trace(portable.network, portable.example(), check_trace=False)
        return torch.jit.script(portable)


def write_module(portable: nn.Module, fmt: str, out: str | os.PathLike[str]) -> None:
    """Write ``portable`` as ``out`` in ``fmt``, atomically (``portable``'s network is traced
    for TorchScript).

    Raises:
        ValueError: An unknown ``fmt``.
    """
    check_format(fmt)
    if fmt == "onnx":
        data = to_onnx(
            portable,
            portable.example(),
            portable.dynamic_shapes(),
            list(portable.output_names),
            list(portable.input_names),
        )
        write_atomic(Path(out), lambda stream: stream.write(data))
    else:
        scripted = to_torchscript(portable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            write_atomic(Path(out), lambda stream: torch.jit.save(scripted, stream))


def write_exported(
    portable: nn.Module,
    fmt: str,
    out: str | os.PathLike[str],
    description: dict,
    companions: dict[str, nn.Module] | None = None,
) -> Path:
    """Write ``portable`` as ``out`` in ``fmt`` (`write_module`), each of ``companions``
    (other graphs of the same system) as the file of ``out``'s folder it is keyed by, then
    ``description`` (with ``format``, ``hybrid``, ``inputs``, ``outputs`` and ``files``, the
    companions' names, added) as ``out`` + ``.json``, each atomically and the description
    last, so that an export that fails leaves no description; return its path.

    Raises:
        ValueError: An unknown ``fmt``.
    """
    check_format(fmt)
    out = Path(out)
    companions = companions or {}
    description = {
        **description,
        "format": fmt,
        "hybrid": __version__,
        "inputs": list(portable.input_names),
        "outputs": list(portable.output_names),
        "files": list(companions),
    }
    write_module(portable, fmt, out)
    for name, module in companions.items():
        write_module(module, fmt, out.with_name(name))
    sidecar = out.with_name(out.name + ".json")
    write_json_atomic(sidecar, description)
    return sidecar
