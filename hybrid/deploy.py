"""Run exported models without torch: an ONNX file, the JSON file beside it, and onnxruntime.

``hybrid export`` writes a model as ``F`` (ONNX or TorchScript) and its description as
``F.json`` (what it is, its inputs and outputs, its vocabularies). `load` reads the pair and
returns an object with the method of the command that uses that kind of model, returning the
same dictionaries::

    from hybrid import deploy
    tagger = deploy.load("atis-crf.onnx")
    tagger.tag(["show me flights from boston to denver"])
    # [{"words": [...], "tags": ["O", ..., "B-fromloc.city_name", ...], "spans": [...],
    #   "confidence": [...], "intent": "atis_flight", "intent_confidence": 0.99}]

Importing this module imports no torch: running an ONNX model takes numpy and onnxruntime
(``pip install onnxruntime``; the ``export`` extra has it), so a service can load it in a
process that never pays for torch's import. A TorchScript file runs with ``torch.jit.load``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from .batching import WINDOW, map_in_batches
from .tagging.corpus import Sentence
from .tagging.text import (
    TOKEN_BUDGET,
    encode_sentences,
    sentence_from_text,
    tagging_results,
)
from .vocabulary import Vocabulary

__all__ = ["FORMATS", "ExportedTagger", "describe", "is_exported", "load"]

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

#: The formats ``hybrid export`` writes.
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
            "writes both; copy them together)"
        )
    try:
        description = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{sidecar}: not the JSON description of an exported model ({error})"
        ) from error
    if not isinstance(description, dict):
        raise ValueError(f"{sidecar}: not a description written by hybrid export (not an object)")
    expected = {
        "kind": str,
        "format": str,
        "inputs": list,
        "outputs": list,
        "vocabulary": dict,
        "scheme": (str, type(None)),
        "k": (int, type(None)),
    }
    for key, kind in expected.items():
        if key not in description or not isinstance(description[key], kind):
            raise ValueError(
                f"{sidecar}: not a description written by hybrid export ({key!r} missing or "
                "of the wrong type)"
            )
    names = [*description["inputs"], *description["outputs"]]
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"{sidecar}: inputs and outputs must be lists of names")
    if description["format"] not in FORMATS:
        raise ValueError(
            f"{sidecar}: format must be one of {FORMATS}, got {description['format']!r}"
        )
    return description


def is_exported(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has an exported model's description beside it."""
    path = Path(path)
    return path.with_name(path.name + ".json").is_file()


def load(path: str | os.PathLike[str], threads: int | None = None) -> ExportedTagger:
    """The exported model at ``path``, ready to run (an ONNX model on ``threads`` threads;
    ``None``: onnxruntime's default, every core).

    Raises:
        ValueError: those of `describe`, and a kind of model this runtime does not run.
    """
    description = describe(path)
    if description["kind"] != "tagger":
        raise ValueError(f"{path}: an exported {description['kind']}; this runtime runs taggers")
    return ExportedTagger(path, description, threads)


def _runner(path: Path, description: dict, threads: int | None) -> Runner:
    """A function from named input arrays to named output arrays.

    Raises:
        ValueError: naming ``path``, when the runtime cannot read it, or ``threads`` is not a
            positive integer.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    inputs, outputs = description["inputs"], description["outputs"]
    if description["format"] == "torchscript":
        import torch

        try:
            with warnings.catch_warnings():  # TorchScript's deprecation: see docs/deploy.md
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise ValueError(f"{path}: not a TorchScript model ({_first_line(error)})") from error

        def run_torchscript(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            with torch.no_grad():
                values = module(*(torch.from_numpy(feed[name]) for name in inputs))
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
        raise ValueError(f"{path}: not an ONNX model ({_first_line(error)})") from error
    wanted = {i.name for i in session.get_inputs()}
    found = [o.name for o in session.get_outputs()]
    if found != outputs:
        raise ValueError(f"{path}: its outputs {found} are not those of its description {outputs}")

    def run_onnx(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = session.run(outputs, {k: v for k, v in feed.items() if k in wanted})
        return dict(zip(outputs, values, strict=True))

    return run_onnx


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class ExportedTagger:
    """A tagger exported by ``hybrid export``: `tag` returns what ``hybrid tag`` prints.

    Args:
        path: The exported model.
        description: Its description (`describe`).
        threads: Threads of an ONNX model (``None``: onnxruntime's default).
    """

    def __init__(self, path: str | os.PathLike[str], description: dict, threads: int | None = None):
        self.path = Path(path)
        self.description = description
        missing = {"words", "chars", "tags", "features", "intents"} - set(description["vocabulary"])
        if missing:
            raise ValueError(f"{self.path}.json: the vocabulary lacks {sorted(missing)}")
        vocabularies = {
            name: None if data is None else Vocabulary.from_dict(data)
            for name, data in description["vocabulary"].items()
        }
        self.words, self.chars = vocabularies["words"], vocabularies["chars"]
        self.tags, self.features = vocabularies["tags"], vocabularies["features"]
        self.intents = vocabularies["intents"]
        self.scheme = description["scheme"]
        self.k = description.get("k")
        self._run = _runner(self.path, description, threads)

    def tag(self, texts: Iterable[str], k: int | None = None) -> list[dict]:
        """Tag whitespace-tokenised ``texts`` (`tag_stream`, all at once)."""
        return list(self.tag_stream(texts, k))

    def tag_stream(
        self,
        texts: Iterable[str],
        k: int | None = None,
        budget: int = TOKEN_BUDGET,
        window: int = WINDOW,
    ) -> Iterator[dict]:
        """Like `hybrid.tagging.inference.tag_stream`: one dictionary per text, in order,
        read ``window`` at a time and tagged in batches of at most ``budget`` padded words.

        Args:
            texts: One sentence per string (``word/FEATURE`` tokens for a tagger that reads
                features).
            k: The n-best taggings: ``None``, or the ``k`` the model was exported with.

        Raises:
            ValueError: A ``k`` the model was not exported with, and those of
                `hybrid.tagging.text.sentence_from_text` when a bad text is reached.
        """
        if k is not None and k != self.k:
            exported = "without n-best" if self.k is None else f"with k = {self.k}"
            raise ValueError(
                f"{self.path} was exported {exported}; to get {k} best taggings, export it "
                f"again with --k {k}"
            )
        with_features = self.features is not None
        sentences = (sentence_from_text(i, text, with_features) for i, text in enumerate(texts))
        tag = partial(self.tag_batch, nbest=k is not None)
        return map_in_batches(tag, sentences, lambda s: len(s.words), budget, window)

    def tag_batch(self, sentences: list[Sentence], nbest: bool = False) -> list[dict]:
        """The result dictionaries of one batch of sentences (with the exported n-best
        taggings if ``nbest``)."""
        arrays = encode_sentences(sentences, self.words, self.chars, self.features)
        arrays.setdefault("features", np.zeros_like(arrays["words"]))
        outputs = self._run(arrays)
        if not nbest:
            outputs = {k: v for k, v in outputs.items() if k not in ("nbest", "nbest_scores")}
        return tagging_results(sentences, outputs, self.tags, self.intents, self.scheme)
