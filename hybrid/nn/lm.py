"""An auxiliary language-modelling loss for a bidirectional encoder (Rei, 2017).

Each left-to-right state predicts the next word and each right-to-left state the previous
word, so the encoder learns from every word of the training text, tagged or not, and rare
words get representations shaped by their contexts. Only single-layer encoders qualify: a
second bidirectional layer mixes both directions, so its left-to-right half has already
read the word it would predict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..structured._inputs import resolve_lengths


class NeighbourWordLoss(nn.Module):
    """Cross-entropy of the next word (left-to-right half) and previous word (right-to-left).

    Args:
        hidden: Units per direction ``H``; states have ``2 H`` features, left-to-right first.
        num_words: Predicted vocabulary size ``V``: word indices ``>= V`` count as ``unk_index``
            (pass a vocabulary sorted by frequency to keep the ``V`` most frequent words).
        unk_index: Index that stands for every word outside the first ``V``.
    """

    def __init__(self, hidden: int, num_words: int, unk_index: int):
        super().__init__()
        for name, value in (("hidden", hidden), ("num_words", num_words)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= unk_index < num_words:
            raise ValueError(f"unk_index must lie in [0, num_words), got {unk_index!r}")
        self.hidden, self.num_words, self.unk_index = hidden, num_words, unk_index
        self.next_word = nn.Linear(hidden, num_words)
        self.previous_word = nn.Linear(hidden, num_words)

    def forward(self, states: Tensor, words: Tensor, lengths: Tensor) -> Tensor:
        """Summed cross-entropy of both directions, divided by the batch size.

        Args:
            states: ``(B, T, 2 H)`` encoder states.
            words: ``(B, T)`` word indices of the same tokens.
            lengths: ``(B,)`` lengths, or a ``(B, T)`` bool prefix mask.
        """
        batch, steps = words.shape
        if (
            states.dim() != 3
            or states.shape[:2] != words.shape
            or states.shape[2] != 2 * self.hidden
        ):
            raise ValueError(
                f"states must have shape (B, T, {2 * self.hidden}) with (B, T) = "
                f"{tuple(words.shape)}, got {tuple(states.shape)}"
            )
        lengths = resolve_lengths(lengths, batch, steps, words.device)
        targets = torch.where(words < self.num_words, words, self.unk_index)
        inside = torch.arange(steps, device=words.device)[None] < lengths[:, None]
        has_next = inside[:, 1:]  # position t < length - 1 has a next word
        ahead = self.next_word(states[:, :-1, : self.hidden])
        behind = self.previous_word(states[:, 1:, self.hidden :])
        loss = F.cross_entropy(ahead[has_next], targets[:, 1:][has_next], reduction="sum")
        loss = loss + F.cross_entropy(behind[has_next], targets[:, :-1][has_next], reduction="sum")
        return loss / batch
