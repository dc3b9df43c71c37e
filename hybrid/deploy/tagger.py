"""`ExportedTagger`: a tagger exported by ``hybrid export``, run without torch."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from ..batching import WINDOW, map_in_batches
from ..tagging.corpus import Sentence
from ..tagging.text import TOKEN_BUDGET, encode_sentences, sentence_from_text, tagging_results
from . import check_keys, runner, vocabularies

__all__ = ["ExportedTagger"]


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
        check_keys(self.path, description, {"scheme": (str, type(None)), "k": (int, type(None))})
        found = vocabularies(
            self.path, description, ("words", "chars", "tags", "features", "intents")
        )
        self.words, self.chars = found["words"], found["chars"]
        self.tags, self.features = found["tags"], found["features"]
        self.intents = found["intents"]
        self.scheme = description["scheme"]
        self.k = description["k"]
        self._run = runner(self.path, description, threads)

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
