"""The chain dynamic program in log space, written once and parameterised by a semiring.

A semiring here is its "sum" over the previous state: ``torch.logsumexp`` (log semiring:
partition functions, marginals) or ``torch.amax`` (max-plus / tropical semiring: Viterbi).
The k-max semiring (k-best) lives in `hybrid.structured.decode`, since it also carries a
rank dimension.

`chain_scan` is the exact reference path: it is used for Viterbi and as the
numerically safe fallback of the scaled forward-backward in
`hybrid.structured.forward_backward`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Reduce = Callable[..., Tensor]

LOG: Reduce = torch.logsumexp
"""Log semiring: ``a (+) b = log(exp a + exp b)``."""

MAX: Reduce = torch.amax
"""Max-plus semiring: ``a (+) b = max(a, b)``."""

_LANES = 32  # reductions over a contiguous dimension padded to a multiple of this vectorise


def chain_scan(reduce: Reduce, emissions: Tensor, start: Tensor, transitions: Tensor) -> Tensor:
    """Forward scores of every prefix, for every state.

    ``alpha[t, b, j] = (+)_i (alpha[t-1, b, i] + transitions[i, j]) + emissions[t, b, j]``.

    Args:
        reduce: `LOG` or `MAX`, called as ``reduce(x, dim, out=...)``.
        emissions: ``(T, B, K)`` time-major scores.
        start: ``(K,)`` first-state scores.
        transitions: ``(K, K)`` scores ``[from, to]``.

    Returns:
        ``(T, B, K)`` prefix scores; ``alpha[0] = start + emissions[0]``. Every sequence is
        scanned to ``T``; callers read each one at its own last step.
    """
    steps, batch, num_tags = emissions.shape
    padded = -(-num_tags // _LANES) * _LANES
    neg_inf = float("-inf")
    trans = transitions.new_full((num_tags, padded), neg_inf)
    trans[:, :num_tags] = transitions
    alpha = emissions.new_full((steps, batch, padded), neg_inf)
    alpha[0, :, :num_tags] = start + emissions[0]
    scores = emissions.new_empty(batch, num_tags, padded)
    outputs = alpha.unbind(0)
    sources = alpha[..., :num_tags, None].unbind(0)  # (B, K, 1) views: "from" states
    targets = alpha[..., :num_tags].unbind(0)
    for t, emission in enumerate(emissions.unbind(0)[1:], start=1):
        torch.add(sources[t - 1], trans, out=scores)
        reduce(scores, 1, out=outputs[t])
        targets[t].add_(emission)
    return alpha[..., :num_tags]
