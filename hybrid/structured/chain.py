"""Public linear-chain functions: partition, marginals, Viterbi, k-best, path scores.

All functions take batch-first log-space scores and share one contract:

* ``emissions``: ``(B, T, K)`` float scores of tag ``k`` at step ``t``.
* ``transitions``: ``(K, K)`` scores indexed ``[from, to]``.
* ``start``, ``end``: optional ``(K,)`` scores of the first and last tag (``None``: zeros).
* ``lengths``: optional ``(B,)`` integer lengths in ``[1, T]``, or a ``(B, T)`` boolean
  mask that is True on a prefix of each row; ``None`` means every sequence has length ``T``.
* ``constraints``: optional :class:`ChainConstraints` (or a bare ``(K, K)`` bool tensor) of
  allowed transitions, first and last tags.

The score of a path ``y`` of length ``L`` is
``start[y_0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_{L-1}]``.
``-inf`` scores (and forbidden steps) give a path exactly zero probability. A batch item
for which no path is allowed raises ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._inputs import Chain, ChainConstraints, check_tags, prepare_chain
from .decode import best_paths, kbest_paths
from .forward_backward import LogPartition, partition

__all__ = [
    "ChainConstraints",
    "kbest",
    "log_partition",
    "marginals",
    "sequence_score",
    "viterbi",
]


def _require_paths(scores: Tensor, what: str) -> None:
    dead = torch.isneginf(scores) if scores.dim() == 1 else torch.isneginf(scores[:, 0])
    if dead.any():
        items = dead.nonzero().flatten().tolist()
        raise ValueError(
            f"no valid path for batch items {items[:10]} in {what}: the constraints and -inf "
            "scores (emissions, transitions, start, end) forbid every tag sequence"
        )


def _time_major(chain: Chain) -> Tensor:
    return chain.emissions.transpose(0, 1)


def log_partition(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor | None = None,
    end: Tensor | None = None,
    lengths: Tensor | None = None,
    constraints: ChainConstraints | Tensor | None = None,
) -> Tensor:
    """Log of the sum of ``exp(score)`` over all tag paths (the forward algorithm).

    Differentiable: the gradient comes from an explicit forward-backward pass, so that it
    equals the marginals (emissions) and summed pairwise marginals (transitions).

    Args:
        emissions: ``(B, T, K)``.
        transitions: ``(K, K)``, ``[from, to]``.
        start: ``(K,)`` or ``None``.
        end: ``(K,)`` or ``None``.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        constraints: Allowed transitions/start/end, or ``None``.

    Returns:
        ``(B,)`` log-partition of each sequence.
    """
    chain = prepare_chain(emissions, transitions, start, end, lengths, constraints)
    return chain_log_partition(chain)


def chain_log_partition(chain: Chain) -> Tensor:
    """Differentiable ``(B,)`` log-partition of a prepared chain."""
    log_z = LogPartition.apply(
        chain.emissions, chain.transitions, chain.start, chain.end, chain.lengths
    )
    _require_paths(log_z.detach(), "log_partition")
    return log_z


def marginals(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor | None = None,
    end: Tensor | None = None,
    lengths: Tensor | None = None,
    constraints: ChainConstraints | Tensor | None = None,
    pairwise: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Posterior marginals of the tags under the chain's Gibbs distribution.

    Args:
        emissions: ``(B, T, K)``.
        transitions: ``(K, K)``.
        start: ``(K,)`` or ``None``.
        end: ``(K,)`` or ``None``.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        constraints: Allowed transitions/start/end, or ``None``.
        pairwise: Also return the pairwise marginals.

    Returns:
        ``(B, T, K)`` with ``P(y_t = k)``: rows sum to 1 inside each length, zeros past it.
        With ``pairwise=True``, a tuple of that and ``(B, T-1, K, K)`` with
        ``P(y_t = i, y_{t+1} = j)`` (zeros past each length).
    """
    chain = prepare_chain(emissions, transitions, start, end, lengths, constraints)
    with torch.no_grad():
        log_z, unary, pairs = partition(
            chain.emissions,
            chain.transitions,
            chain.start,
            chain.end,
            chain.lengths,
            posteriors=True,
            pair="full" if pairwise else "rows",
        )
    _require_paths(log_z, "marginals")
    unary = chain.pad_time(unary, 1, 0.0)
    if not pairwise:
        return unary
    return unary, chain.pad_time(pairs, 1, 0.0)


def viterbi(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor | None = None,
    end: Tensor | None = None,
    lengths: Tensor | None = None,
    constraints: ChainConstraints | Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The highest-scoring tag path of each sequence (exact, batched).

    Args:
        emissions: ``(B, T, K)``.
        transitions: ``(K, K)``.
        start: ``(K,)`` or ``None``.
        end: ``(K,)`` or ``None``.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        constraints: Allowed transitions/start/end, or ``None``.

    Returns:
        ``paths`` ``(B, T)`` int64, ``-1`` past each length, and ``scores`` ``(B,)``.
    """
    chain = prepare_chain(emissions, transitions, start, end, lengths, constraints)
    with torch.no_grad():
        paths, scores = best_paths(
            chain.emissions, chain.transitions, chain.start, chain.end, chain.lengths
        )
    _require_paths(scores, "viterbi")
    return chain.pad_time(paths, 1, -1), scores


def kbest(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor | None = None,
    end: Tensor | None = None,
    lengths: Tensor | None = None,
    constraints: ChainConstraints | Tensor | None = None,
    *,
    k: int,
) -> tuple[Tensor, Tensor]:
    """The ``k`` highest-scoring distinct tag paths of each sequence (exact, batched).

    Args:
        emissions: ``(B, T, K)``.
        transitions: ``(K, K)``.
        start: ``(K,)`` or ``None``.
        end: ``(K,)`` or ``None``.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        constraints: Allowed transitions/start/end, or ``None``.
        k: Number of paths, ``>= 1``.

    Returns:
        ``paths`` ``(B, k, T)`` int64 (``-1`` past each length) and ``scores`` ``(B, k)``,
        non-increasing. If a sequence has fewer than ``k`` allowed paths, the missing ranks
        have score ``-inf`` and a path of ``-1``.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    chain = prepare_chain(emissions, transitions, start, end, lengths, constraints)
    with torch.no_grad():
        paths, scores = kbest_paths(
            _time_major(chain), chain.transitions, chain.start, chain.end, chain.lengths, k
        )
    _require_paths(scores, "kbest")
    return chain.pad_time(paths.permute(1, 2, 0), 2, -1), scores


def sequence_score(
    emissions: Tensor,
    tags: Tensor,
    transitions: Tensor,
    start: Tensor | None = None,
    end: Tensor | None = None,
    lengths: Tensor | None = None,
    constraints: ChainConstraints | Tensor | None = None,
) -> Tensor:
    """Score of given tag paths (differentiable).

    Args:
        emissions: ``(B, T, K)``.
        tags: ``(B, T)`` integer tags; values past each length are ignored.
        transitions: ``(K, K)``.
        start: ``(K,)`` or ``None``.
        end: ``(K,)`` or ``None``.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        constraints: Allowed transitions/start/end; a path using a forbidden step scores
            ``-inf``.

    Returns:
        ``(B,)`` path scores.
    """
    chain = prepare_chain(emissions, transitions, start, end, lengths, constraints)
    return chain_path_score(chain, check_tags(tags, chain))


def chain_path_score(chain: Chain, tags: Tensor) -> Tensor:
    """Score of ``tags`` ``(B, T')`` (validated, zero past each length) on a prepared chain."""
    mask = chain.mask
    batch_index = torch.arange(tags.shape[0], device=tags.device)
    unary = chain.emissions.gather(2, tags[..., None]).squeeze(-1)
    total = torch.where(mask, unary, 0.0).sum(1)
    steps = chain.transitions[tags[:, :-1], tags[:, 1:]]
    total = total + torch.where(mask[:, 1:], steps, 0.0).sum(1)
    last = tags[batch_index, chain.lengths - 1]
    return total + chain.start[tags[:, 0]] + chain.end[last]
