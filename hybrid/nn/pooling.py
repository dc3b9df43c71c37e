"""Many-to-one readouts of a sequence of states: attention pooling and a classifier over it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..structured._inputs import resolve_lengths


class AttentionPooling(nn.Module):
    """Additive self-attention over a padded sequence: ``sum_t a_t h_t``.

    ``a = softmax_t(v^T tanh(W h_t))`` over the first ``lengths[b]`` positions of each
    sequence (Bahdanau-style scoring, as in attention-based intent detection); padding gets
    exactly zero weight.

    Args:
        dim: Size ``D`` of each state.
        attention_dim: Size of the scoring layer (default ``dim``).
    """

    def __init__(self, dim: int, attention_dim: int | None = None):
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        attention_dim = attention_dim or dim
        self.project = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, states: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Pool ``states``.

        Args:
            states: ``(B, T, D)``.
            lengths: ``(B,)`` integers in ``[1, T]``, or a ``(B, T)`` bool prefix mask.

        Returns:
            ``pooled`` ``(B, D)`` and the attention ``weights`` ``(B, T)`` (rows sum to 1).
        """
        if states.dim() != 3:
            raise ValueError(f"states must have shape (B, T, D), got {tuple(states.shape)}")
        batch, steps, _ = states.shape
        lengths = resolve_lengths(lengths, batch, steps, states.device)
        inside = torch.arange(steps, device=states.device)[None] < lengths[:, None]
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)
        weights = scores.masked_fill(~inside, float("-inf")).softmax(-1)
        return torch.einsum("bt,btd->bd", weights, states), weights


class SequenceClassifier(nn.Module):
    """Class scores of a whole sequence from its states (an utterance's intent, say).

    The input is the encoder's ``summary`` (its last states) concatenated with an
    `AttentionPooling` of all states, so that a decisive word anywhere in the sequence
    ("what **meals** are served ...") reaches the decision in one step; a hidden ``tanh``
    layer with dropout maps it to ``num_classes`` logits.

    Args:
        dim: Size ``D`` of each state and of the summary.
        num_classes: Number of classes.
        dropout: Dropout before the output layer.
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.pooling = AttentionPooling(dim)
        self.hidden = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(dim, num_classes)

    def forward(self, states: Tensor, summary: Tensor, lengths: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` from ``states`` ``(B, T, D)`` and ``summary`` ``(B, D)``."""
        pooled, _ = self.pooling(states, lengths)
        hidden = torch.tanh(self.hidden(torch.cat([summary, pooled], dim=-1)))
        return self.output(self.dropout(hidden))
