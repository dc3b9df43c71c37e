"""Validation of CTC inputs: log-probabilities, their lengths, and padded target sequences."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

import torch
from torch import Tensor

from ..structured._inputs import (
    _has_nan_or_posinf,
    check_not_meta,
    length_mask,
    resolve_lengths,
)

__all__ = [
    "check_blank",
    "check_log_probs",
    "check_normalized",
    "check_symbol_ids",
    "check_targets",
]

# Slack of `check_normalized` in float32/float64 (rows of a log-softmax sum to 1 to ~1e-6).
_NORMALIZED_TOLERANCE = 1e-3
# Frames that `check_log_probs` names when it refuses frames whose every symbol is -inf.
_FRAMES_SHOWN = 5


def check_blank(blank: object, vocab: int) -> int:
    """``blank`` as a Python int, checked to be a symbol of a ``vocab``-symbol alphabet.

    Any integer (``int``, a NumPy integer, a one-element integer tensor) is accepted; floats
    and bools are not.

    Raises:
        ValueError: ``blank`` is not an integer in ``[0, vocab)``.
    """
    index = _as_int(blank)
    if index is None or not 0 <= index < vocab:
        raise ValueError(f"blank must be a symbol in [0, V) = [0, {vocab}), an int; got {blank!r}")
    return index


def check_symbol_ids(symbols: object, name: str) -> list[int]:
    """``symbols``, a sequence of CTC symbol ids, as a list of Python ints (range unchecked).

    Any integer (``int``, a NumPy integer, an element of an integer tensor) is an id; a
    ``str`` (a word spelled in characters), a float or a bool is not.

    Raises:
        ValueError: Naming ``name``: ``symbols`` is a ``str``, not iterable, or a meta
            tensor; or naming ``name[i]``: an item that is not an integer.
    """
    if isinstance(symbols, str) or not isinstance(symbols, Iterable):
        raise ValueError(f"{name} must be a sequence of int symbol ids, got {_shown(symbols)}")
    if isinstance(symbols, Tensor):
        check_not_meta(symbols, name)
    ids = []
    for position, symbol in enumerate(symbols):
        index = _as_int(symbol)
        if index is None:
            raise ValueError(f"{name}[{position}] must be an int symbol id, got {_shown(symbol)}")
        ids.append(index)
    return ids


def _as_int(value: object) -> int | None:
    """``value`` as a Python int if it is an integer (not a bool), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _shown(value: object) -> str:
    """``value`` for an error message: its type and its start, with a hint for a ``str``."""
    shown = f"{type(value).__name__} {repr(value)[:40]}"
    if isinstance(value, str):
        shown += " (map each character to its symbol id first)"
    return shown


def check_log_probs(
    log_probs: Tensor, lengths: Tensor | None, blank: object
) -> tuple[Tensor, Tensor, int]:
    """Validate ``(B, T, V)`` log-probabilities; return them with int64 ``lengths`` and the
    ``blank`` as an int.

    float16 and bfloat16 ``log_probs`` come back promoted to float32 (the dynamic programs
    run in float32 at least); other float dtypes as they are.

    A frame within ``lengths`` whose ``V`` entries are all ``-inf`` gives no symbol any
    probability: it is not a distribution over the symbols, and no labelling of the sequence
    has a finite score, so it is refused (single symbols may be ``-inf``: masked).

    Raises:
        ValueError: Not a float ``(B, T, V)`` tensor with ``B, T >= 1``, a meta tensor (for
            ``lengths`` too), NaN or +inf values, ``blank`` not an int in ``[0, V)``, lengths
            out of ``[1, T]``, or a frame within ``lengths`` whose every symbol is ``-inf``
            (naming the sequence and the frame).
    """
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 3 or 0 in log_probs.shape:
        shape = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs)
        raise ValueError(f"log_probs must be a non-empty float tensor (B, T, V), got {shape}")
    check_not_meta(log_probs, "log_probs")
    if not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be floating point, got {log_probs.dtype}")
    if log_probs.dtype in (torch.float16, torch.bfloat16):
        log_probs = log_probs.float()
    if _has_nan_or_posinf(log_probs):
        raise ValueError("log_probs contains NaN or +inf; log-probabilities must be <= 0 or -inf")
    blank = check_blank(blank, log_probs.shape[-1])
    batch, steps, _ = log_probs.shape
    lengths = resolve_lengths(lengths, batch, steps, log_probs.device)
    _check_no_empty_frame(log_probs, lengths)
    return log_probs, lengths, blank


def _check_no_empty_frame(log_probs: Tensor, lengths: Tensor) -> None:
    """ValueError naming the first frames ``t < lengths[b]`` of ``log_probs (B, T, V)``
    whose every symbol is ``-inf``."""
    inside = length_mask(lengths, log_probs.shape[1])
    empty = inside & (log_probs.detach().amax(-1) == -math.inf)
    if bool(empty.any()):
        shown = ", ".join(f"({b}, {t})" for b, t in empty.nonzero()[:_FRAMES_SHOWN].tolist())
        raise ValueError(
            f"log_probs must give some symbol a finite log-probability on every frame within "
            f"lengths; {int(empty.sum())} frame(s) have every symbol -inf, first (sequence, "
            f"frame): {shown}"
        )


def check_normalized(log_probs: Tensor, lengths: Tensor, dtype: torch.dtype) -> None:
    """ValueError unless every frame within ``lengths`` is a log-probability distribution.

    A frame ``log_probs[b, t]`` (``t < lengths[b]``) is one when ``logsumexp`` over its
    ``V`` entries is 0, within ``1e-3``, plus, for scores that came as ``dtype`` float16 or
    bfloat16, ``2 log(V) eps``: rounding each entry ``x`` to that dtype moves it by up to
    ``|x| eps / 2``, which moves the logsumexp by at most the entropy (``<= log V``) times
    ``eps / 2``.

    Args:
        log_probs: ``(B, T, V)`` float32 or float64 scores.
        lengths: ``(B,)`` int64 frames per sequence.
        dtype: The dtype the caller gave ``log_probs`` in.
    """
    vocab = log_probs.shape[-1]
    tolerance = _NORMALIZED_TOLERANCE
    if dtype in (torch.float16, torch.bfloat16):
        tolerance += 2 * math.log(vocab) * torch.finfo(dtype).eps
    totals = log_probs.detach().logsumexp(-1)
    inside = length_mask(lengths, log_probs.shape[1])
    off = inside & ~(totals.abs() <= tolerance)
    if bool(off.any()):
        b, t = (int(i) for i in off.nonzero()[0])
        raise ValueError(
            "log_probs must be log-probabilities over V (each frame's logsumexp is 0 within "
            f"{tolerance:.3g}); sequence {b}, frame {t} has logsumexp {float(totals[b, t]):.4g}. "
            "Pass log_probs.log_softmax(-1), or log_softmax=True for raw logits"
        )


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
        ValueError: Wrong shape or dtype, a meta tensor, symbols out of range, a blank inside
            a target, or a target longer than its frames allow (each repeated symbol needs a
            blank between).
    """
    if not isinstance(targets, Tensor) or targets.dim() != 2:
        raise ValueError("targets must be an integer tensor (B, S) of symbols, right padded")
    check_not_meta(targets, "targets")
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(f"targets must be an integer tensor, got {targets.dtype}")
    batch, width = targets.shape
    if batch != lengths.shape[0]:
        raise ValueError(f"targets must have B = {lengths.shape[0]} rows, got {batch}")
    targets = targets.long().to(lengths.device)
    if target_lengths is None:
        target_lengths = (targets >= 0).sum(1)
    elif (
        not isinstance(target_lengths, Tensor)
        or tuple(target_lengths.shape) != (batch,)
        or target_lengths.is_floating_point()
    ):
        raise ValueError(f"target_lengths must be an integer tensor (B,) = ({batch},)")
    target_lengths = check_not_meta(target_lengths, "target_lengths").long().to(lengths.device)
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
