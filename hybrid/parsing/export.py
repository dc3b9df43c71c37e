"""A trained parser as one module that TorchScript and ONNX accept, and the files it exports
to: a sequence-to-sequence parser with its greedy decoding, a chart parser with its CKY.

`PortableParser` decodes as `Parser` does in its ``greedy`` mode (the most likely next token
at every step, until ``</s>`` or the length bound `hybrid.parsing.parser.max_lengths`; greedy
decoding uses no bracket constraint), from padded index tensors to each sentence's output
token ids. `export_parser` writes it as a TorchScript or ONNX file with a JSON file beside it
holding the vocabularies and settings, which is all `hybrid.deploy` needs to parse text
without torch (`hybrid.deploy.parser.ExportedParser`).

The decoding loop runs at most ``T * ceil(max_ratio) + 10`` steps for a batch padded to ``T``
words, at least the longest output `Parser` allows any of its sentences. Each step is
written once (`PortableParser._advance`) and driven by a Python loop eagerly and under
TorchScript (left once every sentence has finished), and by a ``scan`` under
``torch.export`` (every step, finished sentences masked): the ONNX exporter unrolls a
Python loop to the example's length, a ``scan`` keeps batch and time dynamic.

Only greedy decoding is exported: beam search and the constrained decoder (`Parser`'s
default) run with the saved model.

`PortableChartParser` is a chart parser's span scorer followed by `hybrid.nn.CKYDecoder`: the
best tree (its ``cky`` mode, the default); the minimum-Bayes-risk trees (``mbr``) are not
exported.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from ..commands import load_model
from ..exporting import check_format, word_shapes, write_exported
from ..nn.decoders import CKYDecoder
from ..nn.seq2seq import Seq2Seq
from ..structured.portable import _exporting
from .chart import ChartParser
from .data import ParseBatch
from .parser import BaseParser, DecoderStep, Parser, max_lengths

__all__ = [
    "INPUTS",
    "OUTPUTS",
    "PortableChartParser",
    "PortableParser",
    "export_model",
    "export_parser",
]

INPUTS = ("words", "lengths", "chars", "tags")
OUTPUTS = ("tokens", "token_lengths")
#: The vocabularies an exported parser's description holds (a chart parser's also ``labels``).
VOCABULARIES = ("words", "chars", "tags", "targets")


class _Encoder(nn.Module):
    """The decoder's start state (`Seq2Seq.start`) from padded inputs: ``h`` and ``c``
    ``(B, layers, D)``, ``memory`` ``(B, S, D)``, ``mask`` ``(B, S)`` bool and ``pointer``
    ``(B,)``. ``tags`` and ``chars`` are read only by a model that reads them."""

    def __init__(self, parser: Parser):
        super().__init__()
        self.model = parser.model
        self.model_inputs = parser.model_inputs

    def forward(
        self, words: Tensor, lengths: Tensor, chars: Tensor, tags: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        batch = ParseBatch(words, lengths, chars, tags, None)
        state = self.model.start(**self.model_inputs(batch))
        return state["h"], state["c"], state["memory"], state["mask"], state["pointer"]


class _Step(nn.Module):
    """`DecoderStep` over the state's tensors: ``(tokens (N,), h, c, memory, mask,
    pointer)`` -> ``(log_probs (N, V), h, c, pointer)``, the memory and its mask unchanged."""

    def __init__(self, step: DecoderStep):
        super().__init__()
        self.step = step

    def forward(
        self, tokens: Tensor, h: Tensor, c: Tensor, memory: Tensor, mask: Tensor, pointer: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        state = {"h": h, "c": c, "memory": memory, "mask": mask, "pointer": pointer}
        log_probs, state = self.step(tokens, state)
        return log_probs, state["h"], state["c"], state["pointer"]


class PortableParser(nn.Module):
    """``forward(words (B, S), lengths (B,), chars (B, S, C), tags (B, S))`` -> ``[tokens,
    token_lengths]``: ``tokens`` ``(B, L)`` int64, each sentence's greedy output target ids
    (without ``<s>`` and ``</s>``) then ``-1``, with ``L = S * ceil(max_ratio) + 10``, and
    ``token_lengths`` ``(B,)`` their counts: the token ids of `Parser`'s ``greedy`` mode.

    The inputs are those of `hybrid.parsing.data.collate` (`hybrid.parsing.text.
    encode_sentences` without torch): word, character and tag indices in reading order,
    index 0 padding; ``chars`` and ``tags`` are read only by a parser that reads them.

    Args:
        parser: A trained sequence-to-sequence parser; this puts its model in evaluation
            mode (no dropout).

    Raises:
        ValueError: ``parser`` is not a `Parser` (a chart parser, say).
    """

    def __init__(self, parser: Parser):
        super().__init__()
        if not isinstance(parser, Parser):
            raise ValueError(
                f"parser must be a sequence-to-sequence Parser, got {type(parser).__name__}"
            )
        parser.model.eval()
        config = parser.model.config
        self.network = _Encoder(parser)
        self.step = _Step(parser.decoder_step)
        self.max_ratio = float(parser.max_ratio)
        self.steps_per_word = math.ceil(parser.max_ratio)
        self.bos, self.eos = parser.vocabulary.bos, parser.vocabulary.eos
        self.sizes = (config.num_source, config.num_chars, config.num_features)
        self.input_names = list(INPUTS)
        self.output_names = list(OUTPUTS)

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor, tags: Tensor) -> list[Tensor]:
        h, c, memory, mask, pointer = self.network(words, lengths, chars, tags)
        steps = words.shape[1] * self.steps_per_word + 10
        # (steps, B): whether step t is the last a sentence may take
        ends = torch.arange(steps, device=lengths.device).unsqueeze(1) + 1 >= max_lengths(
            lengths, self.max_ratio
        )
        tokens = torch.full_like(lengths, self.bos)
        raw = torch.zeros(lengths.shape, dtype=memory.dtype, device=memory.device)
        done = torch.zeros_like(mask[:, 0])
        if not torch.jit.is_scripting() and _exporting():
            emitted = self._scan(ends, memory, mask, (tokens, raw, done, h, c, pointer))
        else:
            emitted = torch.full(
                (steps, lengths.shape[0]), -1, dtype=torch.long, device=lengths.device
            )
            for t in range(steps):
                tokens, raw, done, h, c, pointer, emitted[t] = self._advance(
                    ends[t], memory, mask, tokens, raw, done, h, c, pointer
                )
                if bool(done.all()):
                    break
        output = emitted.t()
        return [output, (output >= 0).sum(1)]

    def _advance(
        self,
        end: Tensor,
        memory: Tensor,
        mask: Tensor,
        tokens: Tensor,
        raw: Tensor,
        done: Tensor,
        h: Tensor,
        c: Tensor,
        pointer: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """One greedy step of every sentence, as `hybrid.structured.beam_search` takes it
        with a beam of 1: the best next token by running score ``raw`` ``(B,)`` (the sum of
        the chosen tokens' log-probabilities) plus its log-probability; ``</s>``, or the
        last step a sentence may take (``end`` ``(B,)``), finishes it.

        Returns:
            The next ``(tokens, raw, done, h, c, pointer)`` and the token each sentence
            emits ``(B,)``: ``-1`` for ``</s>`` and for a sentence already ``done``.
        """
        log_probs, h, c, pointer = self.step(tokens, h, c, memory, mask, pointer)
        best, token = (raw.unsqueeze(1) + log_probs).max(1)
        stop = token == self.eos
        emitted = torch.where(done | stop, torch.full_like(token, -1), token)
        raw = torch.where(done, raw, best)
        tokens = torch.where(done, torch.full_like(token, self.eos), token)
        return tokens, raw, done | stop | end, h, c, pointer, emitted

    @torch.jit.unused
    def _scan(
        self, ends: Tensor, memory: Tensor, mask: Tensor, carry: tuple[Tensor, ...]
    ) -> Tensor:
        """The tokens ``(steps, B)`` that `_advance` emits over ``ends``, as one ``scan``."""
        from torch._higher_order_ops.scan import scan

        def step(carry: tuple[Tensor, ...], end: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
            *carry, emitted = self._advance(end, memory, mask, *carry)
            return tuple(x.clone(memory_format=torch.contiguous_format) for x in carry), emitted

        with _lstm_as_cells(self.network.model):
            return scan(step, carry, ends)[1]

    def example(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Inputs of two sentences of 3 and 2 words (`_example`)."""
        return _example(*self.sizes)

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch, words and characters."""
        return word_shapes("tags")

    def trace_step(self) -> None:
        """Trace the decoder step (on the state of `example`) for TorchScript, which cannot
        compile `Seq2Seq.step`; `hybrid.exporting.to_torchscript` then traces the encoder
        and scripts the decoding loop around both."""
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # as `to_torchscript` does
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            h, c, memory, mask, pointer = self.network(*self.example())
            tokens = torch.full_like(pointer, self.bos)
            example = (tokens, h, c, memory, mask, pointer)
            self.step = torch.jit.trace(self.step, example, check_trace=False)


def _example(num_words: int, num_chars: int, num_tags: int) -> tuple[Tensor, ...]:
    """Inputs of two sentences of 3 and 2 words of 3 characters and a padding column, for
    tracing a parser over vocabularies of those sizes (zeros for an input of 2 or fewer
    entries: one the model does not read)."""
    generator = torch.Generator().manual_seed(0)

    def indices(size: int, shape: tuple[int, ...]) -> Tensor:
        if size <= 2:
            return torch.zeros(shape, dtype=torch.long)
        return torch.randint(2, size, shape, generator=generator)

    words, tags = indices(num_words, (2, 3)), indices(num_tags, (2, 3))
    chars = indices(num_chars, (2, 3, 4))
    chars[:, :, 3] = 0
    words[1, 2], chars[1, 2], tags[1, 2] = 0, 0, 0
    return words, torch.tensor([3, 2]), chars, tags


class _ChartScores(nn.Module):
    """A chart parser's span scores ``(B, N + 1, N + 1, L)`` for decoding
    (`ChartParser.scores`), from padded inputs."""

    def __init__(self, parser: ChartParser):
        super().__init__()
        self.model = parser.model
        self.parser = parser

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor, tags: Tensor) -> Tensor:
        batch = ParseBatch(words, lengths, chars, tags, None)
        return self.parser.scores(batch, decoding=True)


class PortableChartParser(nn.Module):
    """``forward(words (B, S), lengths (B,), chars (B, S, C), tags (B, S))`` -> ``[spans]``:
    ``(B, 2S - 1, 3)`` rows ``[i, j, label]`` of each sentence's best tree in preorder
    (``-1`` past its ``2n - 1`` spans), the spans of `ChartParser`'s ``cky`` mode; the
    inputs as `PortableParser`'s.

    Args:
        parser: A trained chart parser; this puts its model in evaluation mode.
    """

    input_names = INPUTS
    output_names = ("spans",)

    def __init__(self, parser: ChartParser):
        super().__init__()
        parser.model.eval()
        config = parser.model.config
        self.network = _ChartScores(parser)
        self.decoder = CKYDecoder()
        self.sizes = (config.num_words, config.num_chars, config.num_features)

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor, tags: Tensor) -> list[Tensor]:
        spans, _ = self.decoder(self.network(words, lengths, chars, tags), lengths)
        return [spans]

    def example(self) -> tuple[Tensor, ...]:
        """Inputs of two sentences of 3 and 2 words (`_example`)."""
        return _example(*self.sizes)

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch, words and characters."""
        return word_shapes("tags")


class _LSTMCells(nn.Module):
    """One step of a stacked, unidirectional, batch-first ``nn.LSTM`` in evaluation mode (no
    dropout between layers), as ``torch.lstm_cell`` per layer: ``forward(inputs (B, 1, I),
    (h, c) (layers, B, H))`` -> ``outputs (B, 1, H)`` and the new ``(h, c)``, as the LSTM
    gives them.

    Args:
        weights: The LSTM's ``all_weights``: per layer ``[w_ih, w_hh, b_ih, b_hh]``.
    """

    def __init__(self, weights: list[list[Tensor]]):
        super().__init__()
        self.weights = weights

    def forward(
        self, inputs: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x, hs, cs = inputs[:, 0], [], []
        for layer, weights in enumerate(self.weights):
            h, c = torch.lstm_cell(x, (state[0][layer], state[1][layer]), *weights)
            hs.append(h)
            cs.append(c)
            x = h
        return x.unsqueeze(1), (torch.stack(hs), torch.stack(cs))


@contextmanager
def _lstm_as_cells(model: Seq2Seq) -> Iterator[None]:
    """``model``'s decoder LSTM run as `_LSTMCells` (on the weights as the tracer sees them)
    for the duration: a ``scan`` body cannot hold an ``nn.LSTM`` (``torch.export`` refuses to
    trace into one there, "Attempted to wrap RNN, GRU, or LSTM", and its ``forward`` updates
    its flat weights, a side effect a ``scan`` body may not have)."""
    lstm = model.decoder
    model.decoder = _LSTMCells(lstm.all_weights)
    try:
        yield
    finally:
        model.decoder = lstm


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """``model``'s parameters without gradients for the duration: the ONNX exporter's type
    promotion pass runs a ``scan`` whose body reads parameters that require them through
    ``scan``'s autograd, which fails (torch 2.13: "'SymInt' object has no attribute
    'unsqueeze'")."""
    wanted = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(model.parameters(), wanted, strict=True):
            parameter.requires_grad_(flag)


def export_model(path: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> Path:
    """`export_parser` of the parser saved at ``path`` (`BaseParser.save`: either kind).

    Raises:
        ValueError: naming ``path``, when it holds no parser; those of `export_parser`.
    """
    return export_parser(load_model(BaseParser.load, str(path)), fmt, out)


def export_parser(parser: BaseParser, fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write ``parser`` as ``out`` (``fmt``: ``"onnx"`` or ``"torchscript"``): a
    sequence-to-sequence parser's greedy decoding (`PortableParser`), or a chart parser's
    CKY (`PortableChartParser`); and its description as ``out`` + ``.json``
    (`hybrid.exporting.write_exported`: kind ``"parser"``, the ``decoder`` (``"greedy"`` or
    ``"cky"``), the vocabularies, ``reverse``, ``uses_tags`` and ``max_ratio``); return the
    description's path. The parser's model is left in the mode it was in.

    Raises:
        ValueError: An unknown ``fmt``, or a parser of neither kind.
    """
    check_format(fmt)
    if not isinstance(parser, Parser | ChartParser):
        raise ValueError(f"parser must be a Parser or a ChartParser, got {type(parser).__name__}")
    training = parser.model.training  # the portable modules put it in evaluation mode
    chart = isinstance(parser, ChartParser)
    portable = PortableChartParser(parser) if chart else PortableParser(parser)
    vocabulary = parser.vocabulary
    names = (*VOCABULARIES, "labels") if chart else VOCABULARIES
    description = {
        "kind": "parser",
        "decoder": "cky" if chart else "greedy",
        "max_ratio": None if chart else portable.max_ratio,
        "uses_tags": parser.uses_tags,
        "reverse": vocabulary.reverse,
        "vocabulary": {name: getattr(vocabulary, name).to_dict() for name in names},
    }
    try:
        if fmt == "torchscript" and not chart:
            portable.trace_step()
        with _frozen(parser.model):
            return write_exported(portable, fmt, out, description)
    finally:
        parser.model.train(training)
