"""Structured SVM (margin-rescaled hinge) and structured perceptron losses for linear chains."""

from __future__ import annotations

import torch
from torch import Tensor

from ..structured._inputs import check_tags
from ..structured.chain import reject_forbidden
from ..structured.decode import best_paths
from ..structured.paths import path_scores
from .chain import LinearChain, check_reduction, reduce_loss


class StructuredSVM(LinearChain):
    """A linear chain trained with the structured hinge loss.

    Margin rescaling as in Taskar et al. (2003) and Tsochantaridis et al. (2005).

    Same parameters, scores and decoding as `CRF`; only the loss differs:
    ``max_y [score(y) + cost(gold, y)] - score(gold)``, found exactly by cost-augmented
    Viterbi. Its subgradient is the feature difference between the cost-augmented best path
    and the gold path.

    Args:
        num_tags: Number of tags ``K``.
        constraints: Allowed transitions/start/end tags.
    """

    def forward(
        self,
        emissions: Tensor,
        tags: Tensor,
        lengths: Tensor | None = None,
        cost: str | Tensor = "hamming",
        reduction: str = "mean",
    ) -> Tensor:
        """Same as `loss`."""
        return self.loss(emissions, tags, lengths, cost, reduction)

    def loss(
        self,
        emissions: Tensor,
        tags: Tensor,
        lengths: Tensor | None = None,
        cost: str | Tensor = "hamming",
        reduction: str = "mean",
    ) -> Tensor:
        """Margin-rescaled structured hinge loss, ``>= 0``.

        Args:
            emissions: ``(B, T, K)`` scores.
            tags: ``(B, T)`` gold tags; values past each length are ignored.
            lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
            cost: ``"hamming"`` (one per wrong tag), ``"zero"`` (the structured perceptron),
                or a ``(K, K)`` tensor ``cost[gold_tag, predicted_tag]`` with a zero diagonal
                and non-negative entries.
            reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"token_mean"``.

        Returns:
            The reduced loss; 0 for a sequence exactly when its gold path beats every other
            path by at least that path's cost.

        The emissions are taken relative to the gold tag's at each step (which changes no
        path's rank), so that the loss is a sum of small differences: the scores it shares
        with the gold path cancel exactly, and a cost of 1 is not rounded away next to
        emissions of ``1e9`` in float32.
        """
        check_reduction(reduction)  # before any work
        chain = self._prepare(emissions, lengths)
        gold_tags = check_tags(tags, chain)
        potentials = (chain.transitions, chain.start, chain.end, chain.lengths)
        gold = path_scores(chain.emissions, gold_tags, *potentials)
        reject_forbidden(torch.isneginf(gold.detach()))
        relative = chain.emissions - chain.emissions.gather(2, gold_tags[..., None])
        costs = self._cost_matrix(cost, chain.emissions)
        augmented = relative + torch.where(chain.mask[..., None], costs[gold_tags], 0.0)
        with torch.no_grad():
            predicted, _ = best_paths(augmented, *potentials)
        loss = path_scores(augmented, predicted.clamp_min(0), *potentials) - path_scores(
            relative, gold_tags, *potentials
        )
        # The gold path is a candidate of the max too, with augmented score exactly its own.
        loss = loss.clamp_min(0.0)
        return reduce_loss(chain.narrow(loss, "structured hinge loss"), chain.lengths, reduction)

    def perceptron_loss(
        self,
        emissions: Tensor,
        tags: Tensor,
        lengths: Tensor | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        """Structured perceptron loss ``max_y score(y) - score(gold)`` (`loss`, zero cost)."""
        return self.loss(emissions, tags, lengths, cost="zero", reduction=reduction)

    def _cost_matrix(self, cost: str | Tensor, like: Tensor) -> Tensor:
        num_tags = self.num_tags
        if isinstance(cost, str):
            if cost == "hamming":
                return 1.0 - torch.eye(num_tags, dtype=like.dtype, device=like.device)
            if cost == "zero":
                return like.new_zeros(num_tags, num_tags)
            raise ValueError(f"cost must be 'hamming', 'zero' or a (K, K) tensor, got {cost!r}")
        if not isinstance(cost, Tensor) or cost.shape != (num_tags, num_tags):
            raise ValueError(f"cost must be a (K, K) = ({num_tags}, {num_tags}) tensor")
        if not torch.isfinite(cost).all() or (cost < 0).any() or cost.diagonal().ne(0).any():
            raise ValueError("cost must be finite, non-negative, with a zero diagonal")
        return cost.to(like.device, like.dtype)
