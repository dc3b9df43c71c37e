"""CTC decoding that ``torch.jit.script`` and ``torch.onnx.export`` accept.

`greedy_labels` is the best-path decoding behind `hybrid.ctc.greedy_decode`, with outputs of
a fixed width ``T`` so that their shapes do not depend on the data; `GreedyCTCDecoder` wraps
it as a module to export. Inputs are trusted (see `hybrid.structured.portable`).
"""

import torch
from torch import Tensor, nn

from ..nn.decoders import export_shapes
from ..structured.portable import pack_left

__all__ = ["GreedyCTCDecoder", "greedy_labels"]


def greedy_labels(log_probs: Tensor, lengths: Tensor, blank: int) -> tuple[Tensor, Tensor, Tensor]:
    """The argmax symbol of each frame, repeats merged and blanks dropped.

    Args:
        log_probs: ``(B, T, V)`` scores (any monotone transform of the posteriors).
        lengths: ``(B,)`` int64 frames per sequence, in ``[1, T]``.
        blank: The blank symbol.

    Returns:
        ``labels`` ``(B, T)`` left-aligned and ``-1`` padded, ``label_lengths`` ``(B,)`` and
        ``starts`` ``(B, T)``: the first frame of each emitted symbol, ``-1`` padded.
    """
    frames = log_probs.argmax(-1)
    steps = torch.arange(frames.shape[1], device=frames.device)
    inside = steps.unsqueeze(0) < lengths.unsqueeze(1)
    changed = torch.cat([torch.ones_like(inside[:, :1]), frames[:, 1:] != frames[:, :-1]], 1)
    new = inside & changed & (frames != blank)
    labels, counts = pack_left(frames, new)
    starts, _ = pack_left(steps.expand_as(frames), new)
    return labels, counts, starts


class GreedyCTCDecoder(nn.Module):
    """Greedy CTC decoding as a module: ``forward(log_probs (B, T, V), lengths (B,))`` gives
    `greedy_labels`' ``(labels, label_lengths, starts)``; scripts and exports to ONNX.

    Args:
        blank: The blank symbol.
    """

    def __init__(self, blank: int = 0):
        super().__init__()
        if not isinstance(blank, int) or isinstance(blank, bool) or blank < 0:
            raise ValueError(f"blank must be a non-negative int, got {blank!r}")
        self.blank = blank

    def forward(self, log_probs: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return greedy_labels(log_probs, lengths, self.blank)

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch and time of ``log_probs``."""
        return export_shapes("log_probs", "lengths")

    def extra_repr(self) -> str:
        return f"blank={self.blank}"
