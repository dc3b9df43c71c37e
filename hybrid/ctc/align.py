"""Greedy decoding and batched forced alignment for CTC.

`greedy_decode` takes the most likely symbol of every frame and collapses the path (repeats
merged, blanks dropped). `forced_align` finds, for every sequence of a batch at once, the most
likely CTC alignment of its known target: Viterbi over the usual lattice of ``2 L + 1``
states (a blank before, between and after the ``L`` target symbols; a state may stay, step
to the next, or skip a blank between two different symbols). It gives the same alignment as
``torchaudio.functional.forced_align``, which takes one sequence at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..structured import native
from .inputs import check_log_probs, check_targets
from .portable import greedy_labels

__all__ = ["CTCAlignment", "forced_align", "greedy_decode"]

_NEG_INF = float("-inf")


def greedy_decode(
    log_probs: Tensor, lengths: Tensor | None = None, blank: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Best-path decoding: the argmax symbol of each frame, collapsed.

    Args:
        log_probs: ``(B, T, V)``.
        lengths: ``(B,)`` frames per sequence, ``(B, T)`` bool prefix mask, or ``None``.
        blank: The blank symbol, an int in ``[0, V)``.

    Returns:
        ``labels`` ``(B, L)`` (``-1`` padded), ``label_lengths`` ``(B,)`` and ``starts``
        ``(B, L)``: the first frame of each emitted symbol (``-1`` padded).

    Raises:
        ValueError: Bad ``log_probs`` or ``lengths``, or a ``blank`` that is not an int in
            ``[0, V)``.
    """
    log_probs, lengths, blank = check_log_probs(log_probs, lengths, blank)
    labels, counts, starts = greedy_labels(log_probs, lengths, blank)
    width = int(counts.max())
    return labels[:, :width], counts, starts[:, :width]


class CTCAlignment(NamedTuple):
    """The best alignment of each sequence to its target.

    Attributes:
        labels: ``(B, T)`` symbol of each frame (blank included), ``-1`` past each length.
        states: ``(B, T)`` lattice state of each frame: ``2 i + 1`` is target symbol ``i``,
            even states are blanks; ``-1`` past each length.
        frame_scores: ``(B, T)`` log-probability of each frame's symbol, 0 past each length.
        scores: ``(B,)`` log-probability of the whole alignment.
        spans: ``(B, L, 2)`` first frame and one past the last frame of each target symbol,
            ``-1`` padded.
    """

    labels: Tensor
    states: Tensor
    frame_scores: Tensor
    scores: Tensor
    spans: Tensor


def forced_align(
    log_probs: Tensor,
    targets: Tensor,
    lengths: Tensor | None = None,
    target_lengths: Tensor | None = None,
    blank: int = 0,
) -> CTCAlignment:
    """The most likely CTC alignment of every sequence to its target (batched Viterbi).

    Args:
        log_probs: ``(B, T, V)`` log-probabilities.
        targets: ``(B, S)`` symbols, right padded.
        lengths: ``(B,)`` frames per sequence (``None``: all ``T``).
        target_lengths: ``(B,)`` (``None``: count the entries ``>= 0``).
        blank: The blank symbol, an int in ``[0, V)``.

    Returns:
        `CTCAlignment`; its scores are float32 for float16/bfloat16 ``log_probs``.

    Raises:
        ValueError: Bad shapes or values (a frame within ``lengths`` whose every symbol is
            ``-inf`` among them), a ``blank`` that is not an int in ``[0, V)``, a blank inside
            a target, a target longer than its frames allow, or targets with no alignment of
            finite score (every alignment meets a ``-inf`` log-probability, e.g. a target
            symbol that is ``-inf`` on every frame it could take), naming their sequences.
    """
    log_probs, lengths, blank = check_log_probs(log_probs, lengths, blank)
    targets, target_lengths = check_targets(
        targets, target_lengths, lengths, log_probs.shape[-1], blank
    )
    batch, steps, _ = log_probs.shape
    width = 2 * targets.shape[1] + 1
    extended = torch.full((batch, width), blank, dtype=torch.long, device=log_probs.device)
    extended[:, 1::2] = targets.clamp_min(0)
    if native.available(log_probs):
        states, scores = native.ctc_align(
            log_probs, lengths, targets.clamp_min(0), target_lengths, blank
        )
    else:
        emit = log_probs.gather(2, extended[:, None, :].expand(batch, steps, width))
        states, scores = _viterbi(emit, extended, lengths, target_lengths, blank)
    _check_alignable(scores)
    inside = states >= 0
    labels = torch.where(inside, extended.gather(1, states.clamp_min(0)), -1)
    frame_scores = log_probs.gather(2, labels.clamp_min(0)[..., None])[..., 0]
    frame_scores = torch.where(inside, frame_scores, 0.0)
    return CTCAlignment(labels, states, frame_scores, scores, _spans(states, targets.shape[1]))


def _check_alignable(scores: Tensor) -> None:
    """ValueError naming the sequences whose best alignment ``scores (B,)`` is ``-inf``."""
    impossible = torch.nonzero(scores == _NEG_INF).flatten().tolist()
    if impossible:
        raise ValueError(
            f"targets of sequences {impossible[:10]} have no alignment of finite score: every "
            "CTC path of the target meets a -inf log-probability in log_probs (a target "
            "symbol, or a blank needed between repeats, that is -inf where it must be emitted)"
        )


def _viterbi(
    emit: Tensor, extended: Tensor, lengths: Tensor, target_lengths: Tensor, blank: int
) -> tuple[Tensor, Tensor]:
    """Eager Viterbi over the lattices: ``states (B, T)`` (``-1`` past each length), ``scores``.

    ``emit (B, T, 2 S + 1)`` holds each frame's log-probability of each lattice state's
    symbol, ``extended (B, 2 S + 1)`` the symbols. Ties prefer staying, then stepping, and the
    final blank.
    """
    batch, steps, width = emit.shape
    device = emit.device
    state = torch.arange(width, device=device)
    valid = state[None, :] < (2 * target_lengths + 1)[:, None]
    # A state may skip the blank before it when it holds a symbol unlike the one two back.
    skip = torch.zeros_like(valid)
    skip[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    emit = emit.masked_fill(~valid[:, None, :], _NEG_INF)
    alpha = torch.full((batch, width), _NEG_INF, dtype=emit.dtype, device=device)
    alpha[:, :2] = emit[:, 0, :2]
    alpha[:, 1] = torch.where(target_lengths > 0, alpha[:, 1], _NEG_INF)
    back = torch.zeros(steps, batch, width, dtype=torch.uint8, device=device)
    for t in range(1, steps):
        stay = alpha
        step = torch.nn.functional.pad(alpha, (1, 0), value=_NEG_INF)[:, :-1]
        jump = torch.nn.functional.pad(alpha, (2, 0), value=_NEG_INF)[:, :-2]
        jump = jump.masked_fill(~skip, _NEG_INF)
        best, move = torch.stack([stay, step, jump]).max(0)
        live = (t < lengths)[:, None]
        alpha = torch.where(live, best + emit[:, t], alpha)
        back[t] = torch.where(live, move, 0).to(torch.uint8)
    rows = torch.arange(batch, device=device)
    last = 2 * target_lengths
    ends = torch.stack([alpha[rows, last], alpha[rows, (last - 1).clamp_min(0)]], 1)
    ends[:, 1] = torch.where(target_lengths > 0, ends[:, 1], _NEG_INF)
    scores, which = ends.max(1)
    current = last - which
    states = torch.full((batch, steps), -1, dtype=torch.long, device=device)
    for t in range(steps - 1, -1, -1):
        inside = t < lengths
        states[:, t] = torch.where(inside, current, -1)
        current = torch.where(inside, current - back[t, rows, current].long(), current)
    return states, scores


def _spans(states: Tensor, width: int) -> Tensor:
    """``(B, L, 2)`` first frame and one past the last frame of each odd (symbol) state."""
    batch, steps = states.shape
    spans = torch.full((batch, width, 2), -1, dtype=torch.long, device=states.device)
    symbol = (states >= 0) & (states % 2 == 1)
    rows, frames = torch.nonzero(symbol, as_tuple=True)
    index = states[rows, frames] // 2
    start = torch.full((batch * width,), steps, dtype=torch.long, device=states.device)
    start = start.scatter_reduce(0, rows * width + index, frames, "amin")
    stop = torch.full((batch * width,), -1, dtype=torch.long, device=states.device)
    stop = stop.scatter_reduce(0, rows * width + index, frames + 1, "amax")
    seen = stop >= 0
    spans[..., 0] = torch.where(seen, start, -1).view(batch, width)
    spans[..., 1] = torch.where(seen, stop, -1).view(batch, width)
    return spans
