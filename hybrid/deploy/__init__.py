"""Run exported models without torch: an ONNX file, the JSON file beside it, and onnxruntime.

``hybrid export`` writes a trained system as ``F`` (ONNX or TorchScript) and its description
as ``F.json`` (what it is, its inputs and outputs, its vocabularies and settings). `load`
reads the pair and returns an object with the method of the command that uses that kind of
system, returning the same dictionaries::

    from hybrid import deploy
    tagger = deploy.load("atis-crf.onnx")
    tagger.tag(["show me flights from boston to denver"])
    # [{"words": [...], "tags": ["O", ..., "B-fromloc.city_name", ...], "spans": [...],
    #   "confidence": [...], "intent": "atis_flight", "intent_confidence": 0.99}]

One class per kind, each in its own module: `ExportedTagger` (``tag``, as ``hybrid tag``),
`ExportedRecognizer` (``recognize``, as ``hybrid recognize``), `ExportedParser` (``parse``,
as ``hybrid parse``) and `ExportedReader` (``answer``, as ``hybrid answer``).

Importing this package imports no torch: running an ONNX model takes numpy and onnxruntime
(``pip install onnxruntime``; the ``export`` extra has it), so a service can load it in a
process that never pays for torch's import. A TorchScript file runs with ``torch.jit.load``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import lazy_names

#: Per kind of exported system, the module (of this package) and class that run it.
RUNTIMES = {
    "tagger": (".tagger", "ExportedTagger"),
    "recognizer": (".recognizer", "ExportedRecognizer"),
    "parser": (".parser", "ExportedParser"),
    "reader": (".reader", "ExportedReader"),
}

__getattr__, __dir__ = lazy_names(__name__, {cls: home for home, cls in RUNTIMES.values()})

__all__ = [
    "FORMATS",
    "RUNTIMES",
    "ExportedParser",
    "ExportedReader",
    "ExportedRecognizer",
    "ExportedTagger",
    "describe",
    "is_exported",
    "load",
    "runner",
    "vocabularies",
]

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

#: The formats ``hybrid export`` writes (`hybrid.exporting.FORMATS`, which imports torch).
FORMATS = ("onnx", "torchscript")


def describe(path: str | os.PathLike[str]) -> dict:
    """The description ``path`` + ``.json`` written beside an exported model.

    Raises:
        ValueError: naming the file, when the model or its description is missing or the
            description is not one that ``hybrid export`` writes.
    """
    path = Path(path)
    sidecar = path.with_name(path.name + ".json")
    if not path.is_file():
        raise ValueError(f"{path}: no such exported model")
    if not sidecar.is_file():
        raise ValueError(
            f"{path}: its description {sidecar.name} is missing beside it (hybrid export "
            "writes them together; copy every file it wrote)"
        )
    try:
        description = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{sidecar}: not the JSON description of an exported model ({error})"
        ) from error
    if not isinstance(description, dict):
        raise ValueError(f"{sidecar}: not a description written by hybrid export (not an object)")
    check_keys(path, description, {"kind": str, "format": str, "inputs": list, "outputs": list})
    check_keys(path, description, {"files": list} if "files" in description else {})
    for name in description.get("files", []):
        if not isinstance(name, str) or not path.with_name(name).is_file():
            raise ValueError(
                f"{path}: {name}, written with it by hybrid export, is missing beside it "
                "(copy every file it wrote)"
            )
    names = [*description["inputs"], *description["outputs"]]
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"{sidecar}: inputs and outputs must be lists of names")
    if description["format"] not in FORMATS:
        raise ValueError(
            f"{sidecar}: format must be one of {FORMATS}, got {description['format']!r}"
        )
    return description


def check_keys(path: Path, description: dict, expected: dict[str, type | tuple]) -> None:
    """A ``ValueError`` naming ``path``'s description unless each key of ``expected`` is in
    ``description`` with a value of its type(s)."""
    for key, kind in expected.items():
        if key not in description or not isinstance(description[key], kind):
            raise ValueError(
                f"{path}.json: not a description written by hybrid export ({key!r} missing or "
                "of the wrong type)"
            )


def vocabularies(path: Path, description: dict, names: tuple[str, ...]) -> dict[str, Any]:
    """The vocabularies ``names`` of ``description["vocabulary"]`` (`hybrid.vocabulary.
    Vocabulary`, or ``None`` where the model has none), or a ``ValueError`` naming
    ``path``'s description and the ones it lacks."""
    from ..vocabulary import Vocabulary

    check_keys(path, description, {"vocabulary": dict})
    missing = set(names) - set(description["vocabulary"])
    if missing:
        raise ValueError(f"{path}.json: the vocabulary lacks {sorted(missing)}")
    return {
        name: None if data is None else Vocabulary.from_dict(data)
        for name, data in ((n, description["vocabulary"][n]) for n in names)
    }


def is_exported(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is for this runtime rather than for ``torch.load``: a model with a
    description beside it, or an ``.onnx`` file (whose missing description `load` reports)."""
    path = Path(path)
    return path.suffix == ".onnx" or path.with_name(path.name + ".json").is_file()


def load(path: str | os.PathLike[str], threads: int | None = None, kind: str | None = None):
    """The exported system at ``path``, ready to run (an ONNX model on ``threads`` threads;
    ``None``: onnxruntime's default, every core): an instance of the class of `RUNTIMES`
    for its kind.

    Args:
        path: The exported file, its description ``path`` + ``.json`` beside it.
        threads: Threads of an ONNX model.
        kind: The kind the caller needs (``"tagger"``, say), or ``None`` for any.

    Raises:
        ValueError: those of `describe`; a kind this runtime does not run, or not ``kind``.
    """
    description = describe(path)
    found = description["kind"]
    if found not in RUNTIMES:
        raise ValueError(f"{path}: an exported {found!r}; this runtime runs {sorted(RUNTIMES)}")
    if kind is not None and found != kind:
        raise ValueError(f"{path} is an exported {found}; expected an exported {kind}")
    home, name = RUNTIMES[found]
    return getattr(import_module(home, __name__), name)(Path(path), description, threads)


def runner(path: Path, description: dict, threads: int | None) -> Runner:
    """A function from named input arrays to named output arrays that runs the exported
    model at ``path`` (`describe` gives ``description``); inputs the model does not take are
    ignored.

    Raises:
        ValueError: naming ``path``, when the runtime cannot read it, or ``threads`` is not a
            positive integer.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    inputs, outputs = description["inputs"], description["outputs"]
    if description["format"] == "torchscript":
        try:
            import torch
        except ImportError as error:
            raise ValueError(
                f"{path}: a TorchScript model runs with torch, which does not import here "
                f"({error}); export the model as ONNX to run it without torch"
            ) from error

        try:
            with warnings.catch_warnings():  # TorchScript's deprecation: see docs/deploy.md
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise ValueError(f"{path}: not a TorchScript model ({first_line(error)})") from error

        def run_torchscript(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            with torch.no_grad():
                values = module(*(torch.from_numpy(feed[name]) for name in inputs))
            if len(values) != len(outputs):
                raise ValueError(
                    f"{path}: it returns {len(values)} outputs, its description names "
                    f"{len(outputs)} ({outputs})"
                )
            return {name: value.numpy() for name, value in zip(outputs, values, strict=True)}

        return run_torchscript
    try:
        import onnxruntime
    except ImportError as error:
        raise ValueError(
            f"{path}: running an ONNX model needs onnxruntime (pip install onnxruntime, or "
            "pip install 'hybrid[export]')"
        ) from error
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own types for a file it cannot read
        raise ValueError(f"{path}: not an ONNX model ({first_line(error)})") from error
    wanted = {i.name for i in session.get_inputs()}
    found = [o.name for o in session.get_outputs()]
    if found != outputs:
        raise ValueError(f"{path}: its outputs {found} are not those of its description {outputs}")

    def run_onnx(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = session.run(outputs, {k: v for k, v in feed.items() if k in wanted})
        return dict(zip(outputs, values, strict=True))

    return run_onnx


def first_line(error: Exception) -> str:
    """The first line of ``error``'s message (its type's name if it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
