"""The CTC loss: a validated, batch-first wrapper over `torch.nn.functional.ctc_loss`.

Conventions (PyTorch's, stated once): ``log_probs`` are log-softmax outputs, batch first
``(B, T, V)`` (raw logits are refused, or normalised here with ``log_softmax=True``);
``blank`` is a symbol of the vocabulary (0 by default) that no target contains; targets are
padded ``(B, S)`` with their lengths. A target of ``L`` symbols with ``r`` adjacent
repeats needs at least ``L + r`` frames (a blank must separate repeats): shorter inputs have
probability zero and an infinite loss. This wrapper refuses them with a `ValueError` unless
``zero_infinity=True``, in which case, as in PyTorch, their loss and gradient are zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .inputs import check_log_probs, check_normalized, check_targets

__all__ = ["ctc_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    lengths: Tensor | None = None,
    target_lengths: Tensor | None = None,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
    log_softmax: bool = False,
) -> Tensor:
    """Negative log-likelihood of the targets summed over all CTC alignments.

    Args:
        log_probs: ``(B, T, V)`` log-probabilities (log-softmax over ``V``), or raw logits
            with ``log_softmax=True``. float16 and bfloat16 are promoted to float32.
        targets: ``(B, S)`` symbols, right padded.
        lengths: ``(B,)`` frames per sequence (``None``: all ``T``).
        target_lengths: ``(B,)`` symbols per target (``None``: count the entries ``>= 0``).
        blank: The blank symbol.
        reduction: ``"mean"`` (PyTorch's: each loss divided by its target length, then
            averaged), ``"sum"`` or ``"none"`` (``(B,)``).
        zero_infinity: Give impossible targets zero loss instead of refusing them.
        log_softmax: Normalise ``log_probs`` over ``V`` first (pass raw logits).

    Returns:
        The loss (a scalar, or ``(B,)`` for ``"none"``), float32 for float16/bfloat16
        ``log_probs`` (the gradient flows back in their dtype), else in their dtype.

    Raises:
        ValueError: Bad shapes or values (see `check_log_probs` and `check_targets`), a
            ``blank`` that is not an int in ``[0, V)``, an unknown ``reduction``, or, without
            ``log_softmax``, a frame within ``lengths`` whose probabilities do not sum to 1
            (logits passed for log-probabilities).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    given_dtype = log_probs.dtype if isinstance(log_probs, Tensor) else None
    log_probs, lengths, blank = check_log_probs(log_probs, lengths, blank)
    if log_softmax:
        log_probs = log_probs.log_softmax(-1)
    check_normalized(log_probs, lengths, given_dtype)
    if zero_infinity:
        targets_checked, target_lengths = _lenient_targets(
            targets, target_lengths, log_probs.shape[-1], blank, lengths
        )
    else:
        targets_checked, target_lengths = check_targets(
            targets, target_lengths, lengths, log_probs.shape[-1], blank
        )
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        targets_checked.clamp_min(0),
        lengths,
        target_lengths,
        blank=blank,
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


def _lenient_targets(targets, target_lengths, vocab, blank, lengths):
    """`check_targets` with frames unlimited: impossible targets are PyTorch's to zero."""
    unlimited = torch.full_like(lengths, torch.iinfo(torch.int64).max)
    return check_targets(targets, target_lengths, unlimited, vocab, blank)
