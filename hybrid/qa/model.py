"""A question-answering reader: one of the `hybrid.nn.memory` models behind one interface."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn.memory import TYING, AttentiveReader, MemoryNetwork, SequenceReader
from ..saved import load_trained, save_trained
from ..structured._inputs import capturing
from .batching import QABatch, QAVocabulary

__all__ = ["KINDS", "Reader", "ReaderConfig"]

#: ``memory``: end-to-end memory network; ``attentive``: attentive reader; ``lstm``: baseline.
KINDS = ("memory", "attentive", "lstm")


@dataclass
class ReaderConfig:
    """Architecture of a `Reader` (plain data: saved with the model).

    Attributes:
        kind: One of `KINDS`.
        dim: Word embedding size (the memory network's ``d``).
        hidden: LSTM units (per direction for the attentive reader).
        hops: Memory-network hops ``K``.
        memory_size: Most recent statements kept (the paper's 50).
        tying: Memory-network weight tying, ``"adjacent"`` or ``"layerwise"``.
        position: Memory-network position encoding (else bag of words).
        sentence_size: Longest sentence the position encoding is laid out for; 0 until
            set from the training data (`hybrid.qa.experiment.run_qa` sets it).
        temporal: Memory-network temporal encoding.
        noise: Memory-network share of random empty memories in training.
        attend_empty: Memory-network hops may attend to the empty slots up to
            ``memory_size`` (score 0, reading nothing), as in the paper's code.
        dropout: Dropout of the LSTM readers.
    """

    kind: str = "memory"
    dim: int = 20
    hidden: int = 64
    hops: int = 3
    memory_size: int = 50
    tying: str = "adjacent"
    position: bool = True
    sentence_size: int = 0
    temporal: bool = True
    noise: float = 0.1
    attend_empty: bool = True
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.tying not in TYING:
            raise ValueError(f"tying must be one of {TYING}, got {self.tying!r}")


class Reader(nn.Module):
    """Answers `QABatch` questions with the model ``config.kind`` names.

    Saved with `save` and read back with `load` (see `hybrid.saved`).

    Args:
        config: The architecture.
        vocabulary: Words and answers (fixes the embedding and output sizes), kept as
            ``vocabulary`` to turn stories into batches and predictions into answers.
    """

    def __init__(self, config: ReaderConfig, vocabulary: QAVocabulary):
        super().__init__()
        self.config = config
        self.vocabulary = vocabulary
        words, answers = len(vocabulary.words), len(vocabulary.answers)
        if config.kind == "memory":
            self.model: nn.Module = MemoryNetwork(
                words,
                vocabulary.answer_words,
                dim=config.dim,
                hops=config.hops,
                memory_size=config.memory_size,
                tying=config.tying,
                position=config.position,
                sentence_size=config.sentence_size or None,
                temporal=config.temporal,
                noise=config.noise,
                attend_empty=config.attend_empty,
            )
        elif config.kind == "attentive":
            self.model = AttentiveReader(words, answers, config.dim, config.hidden, config.dropout)
        else:
            self.model = SequenceReader(words, answers, config.dim, config.hidden, config.dropout)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the architecture, the vocabularies and CPU weights as plain data, atomically,
        stamped ``"reader"`` (`hybrid.saved.save_trained`); read back with `load`."""
        save_trained(path, self, self.vocabulary, "reader")

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Reader:
        """Read a reader written by `save` (``torch.load(weights_only=True)``) onto ``device``,
        in evaluation mode, with its vocabularies as ``vocabulary``.

        Raises:
            ValueError: naming ``path``, when it is missing, not a saved reader (truncated,
                another format, or another kind of model or a checkpoint: see
                `hybrid.saved.load_saved`).
        """

        def build(saved: dict) -> Reader:
            return cls(ReaderConfig(**saved["config"]), QAVocabulary.from_dict(saved["vocabulary"]))

        return load_trained(path, "reader", build, device)

    def forward(self, batch: QABatch) -> tuple[Tensor, Tensor | None]:
        """Answer logits ``(B, A)`` and attention over memory slots ``(B, hops, M)``.

        The attentive reader's word attention is summed per statement (one "hop"); the
        LSTM baseline has no attention (``None``).
        """
        if self.config.kind == "memory":
            return self.model(batch.memory, batch.memory_lengths, batch.query)
        if not capturing() and int(batch.text_lengths.min()) < 1:
            raise ValueError("every question needs at least one story statement to read")
        logits, words = self.model(batch.text, batch.text_lengths, batch.query, batch.query_lengths)
        if words is None:
            return logits, None
        slots = batch.memory.shape[1]
        statements = torch.zeros(words.shape[0], slots, dtype=words.dtype, device=words.device)
        owner = batch.text_statement.clamp(min=0)
        statements.scatter_add_(1, owner, words * (batch.text_statement >= 0))
        return logits, statements[:, None]
