"""Shared parameters, scoring and decoding of the linear-chain layers (CRF, structured SVM)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..structured import ChainConstraints, kbest, marginals, viterbi
from ..structured._inputs import Chain, check_tags, prepare_chain
from ..structured.paths import path_scores

REDUCTIONS = ("mean", "sum", "none", "token_mean")


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is one of `REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def reduce_loss(loss: Tensor, lengths: Tensor, reduction: str) -> Tensor:
    """Reduce per-sequence losses ``(B,)``.

    Args:
        loss: ``(B,)`` per-sequence losses.
        lengths: ``(B,)`` sequence lengths (for ``"token_mean"``).
        reduction: ``"mean"`` (over sequences), ``"sum"``, ``"none"`` or ``"token_mean"``
            (sum divided by the number of tokens), as in pytorch-crf.
    """
    check_reduction(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss.sum() / lengths.sum()


class LinearChain(nn.Module):
    """Transition scores of a linear chain over ``num_tags`` tags, with optional constraints.

    Parameters use pytorch-crf's names: ``transitions`` ``(K, K)`` indexed ``[from, to]``,
    ``start_transitions`` ``(K,)`` and ``end_transitions`` ``(K,)``, initialised uniformly in
    ``[-0.1, 0.1]``. Constraints are kept as buffers (saved in the ``state_dict``).

    Args:
        num_tags: Number of tags ``K``.
        constraints: `ChainConstraints` or a ``(K, K)`` bool tensor
            of allowed transitions, e.g. from `allowed_transitions`.
    """

    def __init__(self, num_tags: int, constraints: ChainConstraints | Tensor | None = None):
        super().__init__()
        if not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive integer, got {num_tags!r}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        if isinstance(constraints, Tensor):
            constraints = ChainConstraints(constraints)
        full = torch.ones(num_tags, dtype=torch.bool)
        if constraints is None:
            constraints = ChainConstraints(torch.ones(num_tags, num_tags, dtype=torch.bool))
        self._check_constraints(constraints)
        self.register_buffer("allowed_transitions", constraints.transitions.clone())
        start = full if constraints.start is None else constraints.start
        end = full if constraints.end is None else constraints.end
        self.register_buffer("allowed_start", start.clone())
        self.register_buffer("allowed_end", end.clone())

    def _check_constraints(self, constraints: ChainConstraints) -> None:
        shapes = {
            "transitions": (self.num_tags, self.num_tags),
            "start": (self.num_tags,),
            "end": (self.num_tags,),
        }
        for name, shape in shapes.items():
            mask = getattr(constraints, name)
            if mask is None:
                continue
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != shape:
                raise ValueError(f"constraints.{name} must be a bool tensor of shape {shape}")

    @property
    def constraints(self) -> ChainConstraints:
        """The allowed transitions, start and end tags."""
        return ChainConstraints(self.allowed_transitions, self.allowed_start, self.allowed_end)

    def _potentials(self) -> tuple[Tensor, Tensor, Tensor, ChainConstraints]:
        return self.transitions, self.start_transitions, self.end_transitions, self.constraints

    def _check_num_tags(self, emissions: Tensor) -> None:
        if (
            isinstance(emissions, Tensor)
            and emissions.dim() == 3
            and (emissions.shape[-1] != self.num_tags)
        ):
            raise ValueError(
                f"emissions must have shape (B, T, K) with K = num_tags = {self.num_tags}, "
                f"got {tuple(emissions.shape)}"
            )

    def _prepare(self, emissions: Tensor, lengths: Tensor | None) -> Chain:
        self._check_num_tags(emissions)
        transitions, start, end, constraints = self._potentials()
        return prepare_chain(emissions, transitions, start, end, lengths, constraints)

    def score(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Score of the given tag paths, ``(B,)`` (``-inf`` if a path breaks a constraint).

        Args:
            emissions: ``(B, T, K)``.
            tags: ``(B, T)`` integer tags; values past each length are ignored.
            lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        """
        chain = self._prepare(emissions, lengths)
        tags = check_tags(tags, chain)
        scores = path_scores(
            chain.emissions, tags, chain.transitions, chain.start, chain.end, chain.lengths
        )
        return chain.narrow(scores, "path score")

    def decode(
        self, emissions: Tensor, lengths: Tensor | None = None, k: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Best path (``k=None``) or the ``k`` best distinct paths of each sequence.

        Args:
            emissions: ``(B, T, K)``.
            lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
            k: Number of paths; ``None`` for the single best.

        Returns:
            ``paths`` ``(B, T)`` and ``scores`` ``(B,)``; with ``k``: ``(B, k, T)`` and
            ``(B, k)``. Paths are ``-1`` past each length.
        """
        self._check_num_tags(emissions)
        transitions, start, end, constraints = self._potentials()
        if k is None:
            return viterbi(emissions, transitions, start, end, lengths, constraints)
        return kbest(emissions, transitions, start, end, lengths, constraints, k=k)

    def marginals(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, T, K)`` posterior ``P(y_t = k)`` of the Gibbs distribution of the chain's scores.

        Rows sum to 1 inside each length and are 0 past it. For a CRF these are its
        probabilities; for a structured SVM they are a confidence read off the same scores.
        """
        self._check_num_tags(emissions)
        transitions, start, end, constraints = self._potentials()
        return marginals(emissions, transitions, start, end, lengths, constraints)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"
