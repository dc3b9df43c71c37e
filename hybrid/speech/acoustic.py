"""Neural acoustic models: frame scorers for hybrid HMM systems and a whole-utterance classifier.

All models take right-padded features ``(B, T, D)`` with ``lengths`` ``(B,)`` and normalise
them with the training set's mean and standard deviation, kept as buffers (`set_normaliser`),
so a saved model needs nothing else at recognition time.

- `FrameDNN`: a feed-forward network over spliced frames (``context`` frames each side,
  edges repeated as Kaldi's ``splice-feats`` does) -> ``(B, T, C)`` logits.
- `FrameBiLSTM`: a bidirectional LSTM over the utterance -> ``(B, T, C)`` logits.
- `UtteranceClassifier`: a bidirectional LSTM with attention pooling -> ``(B, C)`` logits,
  the pure-RNN baseline for isolated words.

For the hybrid systems ``C`` is the number of HMM states (pdfs) and the log-softmax of the
logits are the state posteriors that `hybrid.nn.ScaledPosteriors` turns into scaled
likelihoods; the pure-RNN frame classifier uses the same `FrameBiLSTM` with words as classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn import BiRNN, SequenceClassifier

__all__ = ["KINDS", "AcousticConfig", "FrameBiLSTM", "FrameDNN", "UtteranceClassifier", "build"]

KINDS = ("dnn", "bilstm", "classifier")


@dataclass(frozen=True)
class AcousticConfig:
    """Architecture of an acoustic model.

    Attributes:
        kind: ``"dnn"``, ``"bilstm"`` or ``"classifier"``.
        input_dim: Feature size ``D``.
        num_outputs: Output classes ``C`` (pdfs, or words).
        hidden: Units per layer (per direction for the LSTMs).
        layers: Hidden layers (DNN) or stacked bidirectional layers (LSTMs).
        context: Frames spliced on each side (DNN only).
        dropout: Dropout between layers.
    """

    kind: str
    input_dim: int
    num_outputs: int
    hidden: int = 256
    layers: int = 2
    context: int = 5
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("input_dim", "num_outputs", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")


class _Normalised(nn.Module):
    """Holds the feature mean and standard deviation; subclasses call `normalise`."""

    def __init__(self, config: AcousticConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.input_dim))
        self.register_buffer("std", torch.ones(config.input_dim))

    def set_normaliser(self, features: list[Tensor]) -> None:
        """Mean and standard deviation over all frames of ``features`` (each ``(T_i, D)``)."""
        frames = torch.cat(features).double()
        self.mean.copy_(frames.mean(0))
        self.std.copy_(frames.std(0).clamp_min(1e-5))

    def normalise(self, features: Tensor, lengths: Tensor) -> Tensor:
        if features.dim() != 3 or features.shape[-1] != self.config.input_dim:
            raise ValueError(
                f"features must be (B, T, D = {self.config.input_dim}), got {tuple(features.shape)}"
            )
        if lengths.shape != (features.shape[0],):
            raise ValueError(f"lengths must be (B,) = ({features.shape[0]},)")
        return (features - self.mean) / self.std


def splice_batch(features: Tensor, lengths: Tensor, context: int) -> Tensor:
    """``(B, T, D)`` -> ``(B, T, (2 context + 1) D)``: each frame with ``context`` neighbours
    on each side, the first and last frame of each sequence repeated past its ends."""
    if context == 0:
        return features
    steps = features.shape[1]
    offsets = torch.arange(-context, context + 1, device=features.device)
    index = torch.arange(steps, device=features.device)[:, None] + offsets  # (T, W)
    last = (lengths - 1).clamp_min(0)[:, None, None]
    index = torch.minimum(index.clamp_min(0)[None], last)  # (B, T, W)
    batch = torch.arange(features.shape[0], device=features.device)[:, None, None]
    return features[batch, index].flatten(2)


class FrameDNN(_Normalised):
    """Feed-forward frame scorer over spliced features: ``(B, T, D)`` -> ``(B, T, C)``."""

    def __init__(self, config: AcousticConfig) -> None:
        super().__init__(config)
        layers: list[nn.Module] = []
        size = config.input_dim * (2 * config.context + 1)
        for _ in range(config.layers):
            layers += [nn.Linear(size, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            size = config.hidden
        layers.append(nn.Linear(size, config.num_outputs))
        self.network = nn.Sequential(*layers)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        x = splice_batch(self.normalise(features, lengths), lengths, self.config.context)
        return self.network(x)


class FrameBiLSTM(_Normalised):
    """Bidirectional LSTM frame scorer: ``(B, T, D)`` -> ``(B, T, C)``."""

    def __init__(self, config: AcousticConfig) -> None:
        super().__init__(config)
        self.rnn = BiRNN(config.input_dim, config.hidden, config.layers, "lstm", config.dropout)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden, config.num_outputs)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        states = self.rnn(self.normalise(features, lengths), lengths)
        return self.output(self.dropout(states))


class UtteranceClassifier(_Normalised):
    """Bidirectional LSTM with attention pooling: ``(B, T, D)`` -> ``(B, C)`` logits."""

    def __init__(self, config: AcousticConfig) -> None:
        super().__init__(config)
        self.rnn = BiRNN(config.input_dim, config.hidden, config.layers, "lstm", config.dropout)
        self.classifier = SequenceClassifier(2 * config.hidden, config.num_outputs, config.dropout)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        states = self.rnn(self.normalise(features, lengths), lengths)
        return self.classifier(states, BiRNN.end_states(states, lengths), lengths)


def build(config: AcousticConfig) -> FrameDNN | FrameBiLSTM | UtteranceClassifier:
    """The model ``config`` describes."""
    return {"dnn": FrameDNN, "bilstm": FrameBiLSTM, "classifier": UtteranceClassifier}[config.kind](
        config
    )
