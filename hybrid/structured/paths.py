"""Scores of given tag paths, and their features as counts (for gradients)."""

from __future__ import annotations

import torch
from torch import Tensor


def path_scores(
    emissions: Tensor,
    tags: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    lengths: Tensor,
) -> Tensor:
    """Score of each path (differentiable).

    Args:
        emissions: ``(B, T, K)``.
        tags: ``(B, T)`` int64 tags in ``[0, K)`` (any valid tag past each length).
        transitions: ``(K, K)``, ``-inf`` where forbidden.
        start: ``(K,)``.
        end: ``(K,)``.
        lengths: ``(B,)``.

    Returns:
        ``(B,)``: ``start[y_0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t]
        + end[y_{L-1}]`` (``-inf`` for a path through a forbidden step).
    """
    mask = torch.arange(tags.shape[1], device=tags.device)[None, :] < lengths[:, None]
    batch_index = torch.arange(tags.shape[0], device=tags.device)
    unary = emissions.gather(2, tags[..., None]).squeeze(-1)
    total = torch.where(mask, unary, 0.0).sum(1)
    steps = transitions[tags[:, :-1], tags[:, 1:]]
    total = total + torch.where(mask[:, 1:], steps, 0.0).sum(1)
    return total + start[tags[:, 0]] + end[tags[batch_index, lengths - 1]]


def subtract_path_counts(unary: Tensor, pairs: Tensor, tags: Tensor, lengths: Tensor) -> None:
    """Subtract, in place, the features of the paths ``tags`` from marginals.

    ``unary`` ``(B, T, K)`` loses one at every ``(t, tags[t])`` inside each length and
    ``pairs`` ``(B, K, K)`` one at every used transition: turning the gradient of ``log Z``
    into the gradient of ``log Z - score(tags)``.
    """
    batch, steps, num_tags = unary.shape
    inside = (torch.arange(steps, device=tags.device)[None, :] < lengths[:, None]).to(unary.dtype)
    unary.scatter_add_(2, tags[..., None], -inside[..., None])
    used = tags[:, :-1] * num_tags + tags[:, 1:]
    pairs.view(batch, num_tags * num_tags).scatter_add_(1, used, -inside[:, 1:])


def paths_to_lists(paths: Tensor) -> list:
    """Padded decoder output as Python lists, the ``-1`` padding removed.

    Args:
        paths: ``(B, T)`` from Viterbi or ``(B, k, T)`` from k-best, ``-1`` past each length
            (and for missing k-best ranks).

    Returns:
        ``B`` lists of tags (pytorch-crf's ``decode`` format), or ``B`` lists of ``k`` such
        lists; a missing rank is an empty list.
    """
    if not isinstance(paths, Tensor) or paths.dim() not in (2, 3):
        raise ValueError("paths must be a (B, T) or (B, k, T) tensor")
    rows = paths.tolist()
    if paths.dim() == 2:
        return [[tag for tag in row if tag >= 0] for row in rows]
    return [[[tag for tag in path if tag >= 0] for path in row] for row in rows]
