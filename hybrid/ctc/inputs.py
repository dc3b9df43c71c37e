"""Validation of CTC inputs: log-probabilities, their lengths, and padded target sequences."""

from __future__ import annotations

import torch
from torch import Tensor

from ..structured._inputs import _has_nan_or_posinf, resolve_lengths

__all__ = ["check_log_probs", "check_targets"]


def check_log_probs(log_probs: Tensor, lengths: Tensor | None, blank: int) -> tuple[Tensor, Tensor]:
    """Validate ``(B, T, V)`` log-probabilities and return them with int64 ``lengths``.

    Raises:
        ValueError: Not a float ``(B, T, V)`` tensor with ``B, T >= 1``, NaN or +inf values,
            ``blank`` outside ``[0, V)``, or lengths out of ``[1, T]``.
    """
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 3 or 0 in log_probs.shape:
        shape = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs)
        raise ValueError(f"log_probs must be a non-empty float tensor (B, T, V), got {shape}")
    if not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be floating point, got {log_probs.dtype}")
    if _has_nan_or_posinf(log_probs):
        raise ValueError("log_probs contains NaN or +inf; log-probabilities must be <= 0 or -inf")
    vocab = log_probs.shape[-1]
    if not 0 <= blank < vocab:
        raise ValueError(f"blank must be a symbol in [0, V) = [0, {vocab}), got {blank}")
    batch, steps, _ = log_probs.shape
    return log_probs, resolve_lengths(lengths, batch, steps, log_probs.device)


def check_targets(
    targets: Tensor,
    target_lengths: Tensor | None,
    lengths: Tensor,
    vocab: int,
    blank: int,
) -> tuple[Tensor, Tensor]:
    """Validate padded targets ``(B, S)`` against frame ``lengths`` ``(B,)``.

    Args:
        targets: Integer symbols, right padded (any value past each target length).
        target_lengths: ``(B,)``; ``None``: padding is ``-1`` and lengths are counted.
        lengths: Frame lengths ``(B,)``.
        vocab: ``V``.
        blank: The blank symbol, which no target may contain.

    Returns:
        ``targets`` as int64 with ``-1`` past each length, and int64 ``target_lengths``.

    Raises:
        ValueError: Wrong shape or dtype, symbols out of range, a blank inside a target, or a
            target longer than its frames allow (each repeated symbol needs a blank between).
    """
    if not isinstance(targets, Tensor) or targets.dim() != 2:
        raise ValueError("targets must be an integer tensor (B, S) of symbols, right padded")
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(f"targets must be an integer tensor, got {targets.dtype}")
    batch, width = targets.shape
    if batch != lengths.shape[0]:
        raise ValueError(f"targets must have B = {lengths.shape[0]} rows, got {batch}")
    targets = targets.long().to(lengths.device)
    if target_lengths is None:
        target_lengths = (targets >= 0).sum(1)
    elif tuple(target_lengths.shape) != (batch,) or target_lengths.is_floating_point():
        raise ValueError(f"target_lengths must be an integer tensor (B,) = ({batch},)")
    target_lengths = target_lengths.long().to(lengths.device)
    if (target_lengths < 0).any() or (target_lengths > width).any():
        raise ValueError(f"target_lengths must lie in [0, S] = [0, {width}]")
    inside = torch.arange(width, device=lengths.device)[None, :] < target_lengths[:, None]
    symbols = targets[inside]
    if ((symbols < 0) | (symbols >= vocab)).any():
        raise ValueError(f"targets must hold symbols in [0, V) = [0, {vocab}) within their lengths")
    if (symbols == blank).any():
        rows = torch.nonzero(((targets == blank) & inside).any(1)).flatten().tolist()
        raise ValueError(f"targets of sequences {rows[:10]} contain the blank symbol {blank}")
    targets = targets.masked_fill(~inside, -1)
    repeats = ((targets[:, 1:] == targets[:, :-1]) & inside[:, 1:]).sum(1)
    needed = target_lengths + repeats
    too_long = torch.nonzero(needed > lengths).flatten().tolist()
    if too_long:
        b = too_long[0]
        raise ValueError(
            f"targets of sequences {too_long[:10]} are longer than their frames allow: sequence "
            f"{b} needs {int(needed[b])} frames ({int(target_lengths[b])} symbols and "
            f"{int(repeats[b])} blanks between repeats), has {int(lengths[b])}"
        )
    return targets, target_lengths
