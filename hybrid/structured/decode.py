"""Exact decoders for linear chains: Viterbi (max-plus) and k-best (k-max semiring).

Tensors in this module are time-major: ``(T, B, K)``. Backtraces run over all sequences at
once; a sequence whose length ends before step ``t`` simply keeps its state there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import native
from .semiring import MAX, chain_scan


def best_paths(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """Viterbi on batch-major ``emissions`` ``(B, T, K)``: fused CPU kernel where available.

    Returns:
        ``paths`` ``(B, T)`` with ``-1`` past each length and ``scores`` ``(B,)``.
    """
    if native.available(emissions, transitions):
        return native.viterbi(emissions, transitions, start, end, lengths)
    paths, scores = viterbi_paths(emissions.transpose(0, 1), transitions, start, end, lengths)
    return paths.t(), scores


def viterbi_paths(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """Best path per sequence.

    The forward pass keeps only the max-plus scores (``amax`` without indices is several
    times faster than ``max`` with them); the backtrace recovers the argmax of the one
    chosen state per step, which reproduces the forward sums bit for bit.

    Args:
        emissions: ``(T, B, K)`` scores.
        transitions: ``(K, K)`` scores ``[from, to]`` (``-inf`` = forbidden).
        start: ``(K,)``.
        end: ``(K,)``.
        lengths: ``(B,)``.

    Returns:
        ``paths`` ``(T, B)`` int64 with ``-1`` past each length, and ``scores`` ``(B,)``
        (``-inf`` where no path is allowed).
    """
    steps, batch, _ = emissions.shape
    batch_index = torch.arange(batch, device=lengths.device)
    alpha = chain_scan(MAX, emissions, start, transitions)
    scores, state = (alpha[lengths - 1, batch_index] + end).max(-1)

    paths = torch.full((steps, batch), -1, dtype=torch.long, device=emissions.device)
    paths[lengths - 1, batch_index] = state
    incoming = transitions.t().contiguous()  # row j: scores of every i -> j
    shortest = int(lengths.min())
    alphas, rows = alpha.unbind(0), paths.unbind(0)
    for t in range(steps - 1, 0, -1):
        candidates = torch.add(alphas[t - 1], incoming.index_select(0, state))
        if t < shortest:
            state = torch.argmax(candidates, -1, out=rows[t - 1])
        else:  # some sequences have ended before t: they keep their state
            active = t < lengths
            state = torch.where(active, candidates.argmax(-1), state)
            torch.where(active, state, rows[t - 1], out=rows[t - 1])
    return paths, scores


def kbest_paths(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor, k: int
) -> tuple[Tensor, Tensor]:
    """The ``k`` best distinct paths per sequence (list Viterbi over the k-max semiring).

    Each cell ``(t, j)`` keeps the ``k`` best partial paths ending in state ``j``, ranked;
    a partial path is identified by its predecessor ``(rank, state)``, so the ``k`` kept
    paths are distinct by construction.

    Args:
        emissions: ``(T, B, K)`` scores.
        transitions: ``(K, K)``.
        start: ``(K,)``.
        end: ``(K,)``.
        lengths: ``(B,)``.
        k: Number of paths, ``>= 1``.

    Returns:
        ``paths`` ``(T, B, k)`` (``-1`` past each length, and everywhere for a rank with no
        valid path) and ``scores`` ``(B, k)``, non-increasing, ``-inf`` for missing ranks.
    """
    steps, batch, num_tags = emissions.shape
    neg_inf = float("-inf")
    batch_index = torch.arange(batch, device=lengths.device)
    ranked = emissions.new_full((steps, batch, k, num_tags), neg_inf)
    ranked[0, :, 0] = start + emissions[0]
    pointers = torch.zeros(steps, batch, k, num_tags, dtype=torch.long, device=emissions.device)
    for t in range(1, steps):
        candidates = ranked[t - 1, :, :, :, None] + transitions  # (B, k, K_from, K_to)
        best, pointers[t] = candidates.reshape(batch, k * num_tags, num_tags).topk(k, dim=1)
        ranked[t] = best + emissions[t, :, None, :]

    final = (ranked[lengths - 1, batch_index] + end).reshape(batch, k * num_tags)
    scores, code = final.topk(k, dim=1)  # (B, k): code = rank * K + state
    rank, state = code // num_tags, code % num_tags

    paths = torch.full((steps, batch, k), -1, dtype=torch.long, device=emissions.device)
    paths[lengths - 1, batch_index] = state
    for t in range(steps - 1, 0, -1):
        code = pointers[t, batch_index[:, None], rank, state]
        active = (t < lengths)[:, None]
        rank = torch.where(active, code // num_tags, rank)
        state = torch.where(active, code % num_tags, state)
        paths[t - 1] = torch.where(active, state, paths[t - 1])
    paths = paths.masked_fill(torch.isneginf(scores)[None], -1)
    return paths, scores
