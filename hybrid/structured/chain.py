"""Public linear-chain functions: partition, marginals, Viterbi, k-best, path scores.

All functions take batch-first log-space scores and share one contract:

* ``emissions``: ``(B, T, K)`` float scores of tag ``k`` at step ``t``.
* ``transitions``: ``(K, K)`` scores indexed ``[from, to]``.
* ``start``, ``end``: optional ``(K,)`` scores of the first and last tag (``None``: zeros).
* ``lengths``: optional ``(B,)`` integer lengths in ``[1, T]``, or a ``(B, T)`` boolean
  mask that is True on a prefix of each row; ``None`` means every sequence has length ``T``.
* ``constraints``: optional `ChainConstraints` (or a bare ``(K, K)`` bool tensor) of
  allowed transitions, first and last tags.

The score of a path ``y`` of length ``L`` is
``start[y_0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_{L-1}]``.
``-inf`` scores (and forbidden steps) give a path exactly zero probability. A batch item
for which no path is allowed raises ``ValueError``. Results have the inputs' promoted dtype
(float32 for float16 and bfloat16 scores); scores large enough to overflow it along a path
are computed in float64, and a result beyond its range raises ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._inputs import Chain, ChainConstraints, check_tags, prepare_chain
from .decode import best_paths, kbest_paths
from .forward_backward import LogPartition, partition
from .paths import path_scores

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


def chain_log_partition(chain: Chain, tags: Tensor | None = None) -> Tensor:
    """Differentiable ``(B,)`` log-partition of a prepared chain, or with validated ``tags``
    ``(B, T')`` the negative log-likelihood ``log Z - score(tags)``, in ``chain.dtype``.

    The negative log-likelihood is non-negative up to rounding, not clamped: where it is 0 in
    exact arithmetic (``tags`` on the best path), ``|nll|`` is below the dtype's eps times the
    magnitude of the path scores."""
    result = LogPartition.apply(
        chain.emissions, chain.transitions, chain.start, chain.end, chain.lengths, tags
    )
    value = result.detach()
    # -inf: no path at all; NaN (-inf - -inf): no path either; +inf: the gold path is forbidden
    # (the chain's dtype leaves room for every finite path score, so +inf is no overflow).
    _require_paths(torch.where(torch.isnan(value), float("-inf"), value), "log_partition")
    if tags is None:
        return chain.narrow(result, "log-partition")
    reject_forbidden(torch.isposinf(value))
    return chain.narrow(result, "negative log-likelihood")


def reject_forbidden(forbidden: Tensor) -> None:
    """Raise if a gold path breaks the constraints (``forbidden``: ``(B,)`` bool)."""
    if forbidden.any():
        items = forbidden.nonzero().flatten().tolist()
        raise ValueError(
            f"tags of batch items {items[:10]} violate the constraints: they use a forbidden "
            "transition, start or end tag (or a -inf score)"
        )


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
    unary = chain.pad_time(unary, 1, 0.0).to(chain.dtype)
    if not pairwise:
        return unary
    return unary, chain.pad_time(pairs, 1, 0.0).to(chain.dtype)


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
    return chain.pad_time(paths, 1, -1), chain.narrow(scores, "best path score")


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
            chain.emissions.transpose(0, 1),
            chain.transitions,
            chain.start,
            chain.end,
            chain.lengths,
            k,
        )
    _require_paths(scores, "kbest")
    return chain.pad_time(paths.permute(1, 2, 0), 2, -1), chain.narrow(scores, "k-best scores")


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
    tags = check_tags(tags, chain)
    scores = path_scores(
        chain.emissions, tags, chain.transitions, chain.start, chain.end, chain.lengths
    )
    return chain.narrow(scores, "path score")
