"""Scores of every labelled span of a sentence from a BiLSTM: the deep half of a chart parser.

The encoder is the `SequenceEncoder` of the sequence-to-sequence models (words, optional
characters and one extra feature such as a POS tag, a stacked BiLSTM). A span ``[i, j)`` over
the fenceposts ``0..n`` is represented by endpoint differences of the two directions (Stern,
Andreas and Klein, 2017; Kitaev and Klein, 2018):

    r(i, j) = [f_j - f_i ; b_i - b_j]

where ``f_k`` is the forward state after ``k`` words (a learned start vector for ``k = 0``)
and ``b_k`` the backward state before word ``k`` (a learned stop vector for ``k = n``). A
feed-forward layer scores the labels: ``W_2 relu(LayerNorm(W_1 r(i, j) + c)) + d``. As
``W_1 r(i, j) = g_j - g_i`` with ``g_k = W_1 [f_k ; -b_k]``, the first layer costs one
projection per fencepost, not per span. Label 0 is the empty label: its score is fixed at 0,
so that only the other labels are learned (and a tree's score is the sum of its labelled
non-empty spans).

The output is the score layout of `hybrid.structured.tree`: ``(B, N + 1, N + 1, L)``, filled
for ``i < j`` (the other entries are 0, and the tree functions ignore them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..structured._inputs import capturing, resolve_lengths
from .encoders import SequenceEncoder

__all__ = ["OBJECTIVES", "SpanScorer", "SpanScorerConfig"]

#: The training losses the scores serve (decoding is the same for both).
OBJECTIVES = ("crf", "ssvm")


@dataclass(frozen=True)
class SpanScorerConfig:
    """Sizes of a `SpanScorer`.

    Attributes:
        num_words: Word vocabulary size (``pad_index`` and ``unk_index`` included).
        num_labels: Span labels, the empty label 0 included (at least 2).
        num_features: Vocabulary of one extra feature per word (0: none).
        num_chars: Character vocabulary of the words (0: no character encoder).
        word_dim: Word embedding size.
        feature_dim: Feature embedding size.
        char_dim: Character embedding size.
        char_out: Size of the character encoder's word vectors.
        hidden: Encoder units per direction.
        encoder_layers: Stacked BiLSTM layers, 1 to 3.
        span_hidden: Hidden units of the label scorer.
        dropout: Dropout in the encoder and the label scorer, in ``[0, 1)``.
        word_dropout: Training probability that a word is replaced by ``unk_index``.
        objective: The training loss: ``"crf"`` (tree-CRF negative log-likelihood) or
            ``"ssvm"`` (margin-rescaled structured hinge).
        pad_index: Padding entry of every vocabulary.
        unk_index: Unknown-word entry of the word vocabulary.
    """

    num_words: int
    num_labels: int
    num_features: int = 0
    num_chars: int = 0
    word_dim: int = 128
    feature_dim: int = 32
    char_dim: int = 30
    char_out: int = 50
    hidden: int = 256
    encoder_layers: int = 2
    span_hidden: int = 250
    dropout: float = 0.3
    word_dropout: float = 0.0
    objective: str = "crf"
    pad_index: int = 0
    unk_index: int = 1


class SpanScorer(nn.Module):
    """BiLSTM span scores; see the module docstring.

    Example:
        >>> model = SpanScorer(SpanScorerConfig(num_words=50, num_labels=6, hidden=16))
        >>> words, lengths = torch.randint(2, 50, (3, 7)), torch.tensor([7, 5, 2])
        >>> model(words, lengths).shape
        torch.Size([3, 8, 8, 6])
    """

    def __init__(self, config: SpanScorerConfig):
        super().__init__()
        if not isinstance(config.num_labels, int) or config.num_labels < 2:
            raise ValueError(
                f"num_labels must be an integer >= 2 (the empty label and one more), got "
                f"{config.num_labels!r}"
            )
        if config.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {config.objective!r}")
        if not isinstance(config.span_hidden, int) or config.span_hidden < 1:
            raise ValueError(f"span_hidden must be a positive integer, got {config.span_hidden!r}")
        self.config = config
        self.encoder = SequenceEncoder.from_config(config, config.num_words)
        self.start = nn.Parameter(torch.zeros(config.hidden))
        self.stop = nn.Parameter(torch.zeros(config.hidden))
        self.fencepost = nn.Linear(2 * config.hidden, config.span_hidden, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.span_hidden))
        self.norm = nn.LayerNorm(config.span_hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.span_hidden, config.num_labels - 1)

    def forward(
        self,
        source: Tensor,
        lengths: Tensor,
        features: Tensor | None = None,
        chars: Tensor | None = None,
    ) -> Tensor:
        """Score every labelled span.

        Args:
            source: ``(B, N)`` word indices, right padded.
            lengths: ``(B,)`` sentence lengths in ``[1, N]``, or a ``(B, N)`` bool prefix mask.
            features: ``(B, N)`` feature indices (required when ``num_features > 0``).
            chars: ``(B, N, C)`` character indices (required when ``num_chars > 0``).

        Returns:
            ``(B, N + 1, N + 1, L)`` scores: ``[b, i, j, l]`` of span ``[i, j)`` with label
            ``l`` for ``i < j``; 0 for the empty label ``l = 0`` and where ``i >= j``.
        """
        states, _ = self.encoder(source, lengths, chars, features)
        batch, steps, _ = states.shape
        lengths = resolve_lengths(lengths, batch, steps, states.device)
        forward, backward = states.split(self.config.hidden, dim=2)
        forward = torch.cat([self.start.expand(batch, 1, -1), forward], dim=1)
        fence = torch.arange(steps + 1, device=states.device)
        last = fence[None, :, None] == lengths[:, None, None]
        backward = torch.cat([backward, backward.new_zeros(batch, 1, backward.shape[2])], dim=1)
        backward = torch.where(last, self.stop, backward)
        fenceposts = self.fencepost(torch.cat([forward, -backward], dim=2))  # (B, N + 1, H)
        if capturing():
            # a recorded graph cannot list the spans of a symbolic length: score every pair
            # of fenceposts, [b, i, j] = f_j - f_i, and keep i < j (twice the work and memory
            # of the listed spans, so only while recording; a test compares the two)
            pairs = fenceposts.unsqueeze(1) - fenceposts.unsqueeze(2) + self.bias
            labels = self._labels(pairs)  # (B, N + 1, N + 1, L - 1)
            fence = torch.arange(steps + 1, device=states.device)
            spans = (fence.unsqueeze(1) < fence.unsqueeze(0)).unsqueeze(2)
            labels = torch.where(spans, labels, torch.zeros_like(labels))
            return torch.cat([torch.zeros_like(labels[..., :1]), labels], dim=3)
        start, end = torch.triu_indices(steps + 1, steps + 1, 1, device=states.device)
        labels = self._labels(fenceposts[:, end] - fenceposts[:, start] + self.bias)  # (B, P, .)
        scores = labels.new_zeros(batch, steps + 1, steps + 1, self.config.num_labels)
        scores[:, start, end, 1:] = labels
        return scores

    def _labels(self, hidden: Tensor) -> Tensor:
        """The non-empty labels' scores ``(..., L - 1)`` of span vectors ``(..., H)``."""
        return self.output(self.dropout(torch.relu(self.norm(hidden))))
