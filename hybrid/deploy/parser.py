"""`ExportedParser`: a parser exported by ``hybrid export`` (a sequence-to-sequence parser
with its greedy decoding, or a chart parser with its CKY), run without torch."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..batching import WINDOW, map_in_batches
from ..parsing.text import (
    WORD_BUDGET,
    chart_parse,
    decoded_parse,
    encode_sentences,
    words_and_tags,
)
from . import check_keys, runner, vocabularies

__all__ = ["ExportedParser"]


class ExportedParser:
    """A parser exported by ``hybrid export``: `parse` returns the trees ``hybrid parse``
    prints with the one decoder exported, `decoder`: ``"greedy"`` for a
    sequence-to-sequence parser (``--decoder greedy``), ``"cky"`` for a chart parser.

    Args:
        path: The exported model.
        description: Its description (`describe`).
        threads: Threads of an ONNX model (``None``: onnxruntime's default).
    """

    def __init__(self, path: str | os.PathLike[str], description: dict, threads: int | None = None):
        self.path = Path(path)
        self.description = description
        check_keys(self.path, description, {"uses_tags": bool, "reverse": bool, "decoder": str})
        #: The decoder exported: ``"greedy"`` or ``"cky"``.
        self.decoder = description["decoder"]
        if self.decoder not in ("greedy", "cky"):
            raise ValueError(
                f"{self.path}.json: decoder {self.decoder!r}; this runtime runs the greedy "
                "decoding and the CKY that hybrid export writes"
            )
        names = (
            "words",
            "chars",
            "tags",
            "targets",
            *(("labels",) if self.decoder == "cky" else ()),
        )
        found = vocabularies(self.path, description, names)
        self.words, self.chars = found["words"], found["chars"]
        self.tags, self.targets = found["tags"], found["targets"]
        self.labels = found.get("labels")
        if self.decoder == "cky" and self.labels is None:
            raise ValueError(f"{self.path}.json: a chart parser's description needs its labels")
        self.uses_tags = description["uses_tags"]
        self.reverse = description["reverse"]
        self._run = runner(self.path, description, threads)

    def parse(self, sentences: Iterable[str]) -> list[str]:
        """Parse whitespace-tokenised ``sentences`` (`parse_stream`, all at once)."""
        return list(self.parse_stream(sentences))

    def parse_stream(
        self, sentences: Iterable[str], budget: int = WORD_BUDGET, window: int = WINDOW
    ) -> Iterator[str]:
        """The bracketed tree of each of ``sentences``, in order, read ``window`` at a time and
        decoded in batches of at most ``budget`` padded words (a longer sentence alone), as
        `hybrid.parsing.parser.BaseParser.parse_stream` does with the exported `decoder`.

        Args:
            sentences: One tokenised sentence per string (``word/TAG`` tokens for a parser
                that reads POS tags).

        Raises:
            ValueError: ``sentences`` given as one string (at once); naming
                ``sentences[i]`` when a sentence without words, or a token without its tag,
                is reached.
        """
        if isinstance(sentences, str):
            raise ValueError("sentences must be an iterable of strings, one per sentence")
        named = ((f"sentences[{i}]", text) for i, text in enumerate(sentences))
        return self.parse_named(named, budget, window)

    def parse_named(
        self,
        texts: Iterable[tuple[str, str]],
        budget: int = WORD_BUDGET,
        window: int = WINDOW,
    ) -> Iterator[str]:
        """`parse_stream` of ``(where, text)`` pairs, whose errors name ``where`` (``hybrid
        parse``: the argument or the line)."""
        items = (words_and_tags(where, text, self.uses_tags) for where, text in texts)
        return map_in_batches(self.parse_batch, items, lambda item: len(item[0]), budget, window)

    def parse_batch(self, items: list[tuple[list[str], list[str]]]) -> list[str]:
        """The bracketed trees of one batch of ``(words, tags)`` pairs (``tags`` empty for a
        parser that reads none)."""
        sentences = [words for words, _ in items]
        tags = [row for _, row in items] if self.uses_tags else None
        arrays = encode_sentences(sentences, tags, self.words, self.chars, self.tags, self.reverse)
        outputs = self._run(arrays)
        row_tags = [None if tags is None else tags[b] for b in range(len(sentences))]
        if self.decoder == "cky":
            labels = self.labels.tokens
            spans = outputs["spans"]
            parses = (
                chart_parse(spans[b, : 2 * len(s) - 1].tolist(), labels, s, row_tags[b])
                for b, s in enumerate(sentences)
            )
        else:
            tokens, counts = outputs["tokens"], outputs["token_lengths"]
            parses = (
                decoded_parse(tokens[b, : counts[b]].tolist(), self.targets, s, row_tags[b])
                for b, s in enumerate(sentences)
            )
        return [str(parse.tree) for parse in parses]
