"""A trained reader as one module that TorchScript and ONNX accept, and the files it exports to.

`PortableReader` runs a `Reader` (memory network, attentive reader or LSTM baseline) on the
padded index tensors of `hybrid.qa.text.encode_questions` and returns what
`hybrid.qa.inference.reader_outputs` returns: each question's answer, its probability and
the attention of each hop over the memory. `export_reader` writes it as a TorchScript or ONNX
file with a JSON file beside it holding the vocabularies and the memory size, which is all
`hybrid.deploy` needs to answer questions without torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ..commands import load_model
from ..exporting import check_format, write_exported
from .babi import Question
from .inference import question_batch, reader_outputs
from .model import Reader
from .text import INPUTS, OUTPUTS, encode_questions


class _ReaderOutputs(nn.Module):
    """`hybrid.qa.inference.reader_outputs` of a reader, from the tensors of a batch."""

    def __init__(self, reader: Reader):
        super().__init__()
        self.reader = reader

    def forward(
        self,
        memory: Tensor,
        memory_lengths: Tensor,
        query: Tensor,
        query_lengths: Tensor,
        text: Tensor,
        text_lengths: Tensor,
        text_statement: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        batch = question_batch(
            memory, memory_lengths, query, query_lengths, text, text_lengths, text_statement
        )
        return reader_outputs(self.reader, batch)


class PortableReader(nn.Module):
    """``forward(memory (B, M, L), memory_lengths (B,), query (B, Q), query_lengths (B,),
    text (B, N), text_lengths (B,), text_statement (B, N))`` -> ``[answer (B,),
    confidence (B,), attention (B, K, M)]``: the most probable answer's index, its
    probability, and each hop's weights over the memory slots (``K = 0`` for the LSTM
    baseline), as `hybrid.qa.inference.reader_outputs` gives them for the same inputs (the
    arrays of `hybrid.qa.text.encode_questions`). The memory network reads ``memory``,
    ``memory_lengths`` and ``query``; the LSTM readers the question and the running text
    (and the attentive reader ``M`` from ``memory``'s shape).

    Args:
        reader: A trained reader; this puts it in evaluation mode (no dropout, no noise).

    Raises:
        ValueError: A reader whose memory holds a single statement (``memory_size`` 1):
            its memory axis cannot be left dynamic.
    """

    def __init__(self, reader: Reader):
        super().__init__()
        if reader.config.memory_size < 2:
            raise ValueError(
                f"reader: memory_size must be at least 2 to export, got {reader.config.memory_size}"
            )
        reader.eval()
        self.network = _ReaderOutputs(reader)
        self.input_names = list(INPUTS)
        self.output_names = list(OUTPUTS)

    def forward(
        self,
        memory: Tensor,
        memory_lengths: Tensor,
        query: Tensor,
        query_lengths: Tensor,
        text: Tensor,
        text_lengths: Tensor,
        text_statement: Tensor,
    ) -> list[Tensor]:
        answer, confidence, attention = self.network(
            memory, memory_lengths, query, query_lengths, text, text_lengths, text_statement
        )
        return [answer, confidence, attention]

    def example(self) -> tuple[Tensor, ...]:
        """The inputs of two stories, of 2 statements (3 and 2 words) and of 1, with questions
        of 3 and 2 words, for tracing: every dynamic axis is 2 or more long."""
        vocabulary = self.network.reader.vocabulary
        a, b, c = vocabulary.words.tokens[-3:]
        questions = [
            Question(((a, b, c), (c, a)), (a, b, c), ("?",)),
            Question(((b, c, a),), (c, b), ("?",)),
        ]
        arrays = encode_questions(
            questions, vocabulary.words, self.network.reader.config.memory_size
        )
        return tuple(torch.from_numpy(arrays[name]) for name in self.input_names)

    def dynamic_shapes(self) -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: stories, memory slots (at most the
        reader's ``memory_size``), words per statement, question and running-text words."""
        dim = torch.export.Dim
        batch, words = dim("batch"), dim("words")
        slots = dim("slots", max=self.network.reader.config.memory_size)
        question, text = dim("question"), dim("text")
        return {
            "memory": {0: batch, 1: slots, 2: words},
            "memory_lengths": {0: batch},
            "query": {0: batch, 1: question},
            "query_lengths": {0: batch},
            "text": {0: batch, 1: text},
            "text_lengths": {0: batch},
            "text_statement": {0: batch, 1: text},
        }


def export_model(path: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> Path:
    """`export_reader` of the reader saved at ``path`` (`Reader.save`)."""
    return export_reader(load_model(Reader.load, str(path)), fmt, out)


def export_reader(reader: Reader, fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write ``reader`` as ``out`` (``fmt``: ``"onnx"`` or ``"torchscript"``) and its
    description as ``out`` + ``.json`` (`hybrid.exporting.write_exported`): kind
    ``"reader"``, the reader's ``model`` kind, its ``memory_size`` and its ``vocabulary``
    (words and answers); return the description's path.

    Raises:
        ValueError: An unknown ``fmt``.
    """
    check_format(fmt)
    description = {
        "kind": "reader",
        "model": reader.config.kind,
        "memory_size": reader.config.memory_size,
        "vocabulary": reader.vocabulary.to_dict(),
    }
    return write_exported(PortableReader(reader), fmt, out, description)
