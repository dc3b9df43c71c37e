"""Brute-force references for dynamic programs over binary trees of labelled spans.

Every binary tree of a (tiny) sequence and every labelling of its spans, enumerated: the
quantities `hybrid.structured.tree` computes with dynamic programs (partition, best tree,
marginals, costs). It only depends on torch, never on the library under test.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def binary_trees(i: int, j: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Every binary tree over ``[i, j)`` as its spans in preorder."""
    if j - i == 1:
        return (((i, j),),)
    return tuple(
        ((i, j), *left, *right)
        for k in range(i + 1, j)
        for left in binary_trees(i, k)
        for right in binary_trees(k, j)
    )


@functools.cache
def labellings(spans: int, labels: int) -> torch.Tensor:
    """``(labels ** spans, spans)``: every assignment of a label to each span."""
    grids = torch.meshgrid(*[torch.arange(labels)] * spans, indexing="ij")
    return torch.stack([g.flatten() for g in grids], 1)


class Enumeration:
    """Every labelled binary tree of one sequence of length ``n`` and its score."""

    def __init__(self, scores: torch.Tensor, n: int):
        self.n, self.labels = n, scores.shape[-1]
        self.trees = binary_trees(0, n)
        self.labelling = labellings(2 * n - 1, self.labels)  # (K, 2n - 1)
        rows = torch.arange(2 * n - 1)
        totals = []
        for tree in self.trees:
            ij = torch.tensor(tree)
            per_span = scores[ij[:, 0], ij[:, 1]]  # (2n - 1, L)
            totals.append(per_span[rows, self.labelling].sum(1))
        self.scores = torch.stack(totals)  # (trees, labellings)

    def rows(self, t: int, k: int) -> torch.Tensor:
        """The labelled tree ``(t, k)`` as rows ``[i, j, label]`` in preorder."""
        ij = torch.tensor(self.trees[t])
        return torch.cat([ij, self.labelling[k][:, None]], 1)

    def log_partition(self) -> torch.Tensor:
        return torch.logsumexp(self.scores.flatten(), 0)

    def best(self, cost: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Best score (plus ``cost`` ``(trees, labellings)``) and its rows."""
        total = self.scores if cost is None else self.scores + cost
        flat = int(total.flatten().argmax())
        t, k = divmod(flat, total.shape[1])
        return total.flatten()[flat], self.rows(t, k)

    def marginals(self, size: int) -> torch.Tensor:
        """``(size, size, L)`` labelled-span marginals."""
        probs = torch.softmax(self.scores.flatten(), 0).view_as(self.scores)
        out = torch.zeros(size, size, self.labels, dtype=self.scores.dtype)
        for t, tree in enumerate(self.trees):
            for r, (i, j) in enumerate(tree):
                out[i, j].index_add_(0, self.labelling[:, r], probs[t])
        return out

    def hamming(self, gold: torch.Tensor) -> torch.Tensor:
        """``(trees, labellings)``: labelled spans of each structure not in ``gold`` rows."""
        gold_set = {tuple(r) for r in gold.tolist()}
        cost = []
        for tree in self.trees:
            inside = torch.tensor(
                [[(i, j, label) in gold_set for label in range(self.labels)] for i, j in tree]
            )  # (2n - 1, L)
            hits = inside[torch.arange(len(tree)), self.labelling].sum(1)
            cost.append(len(tree) - hits)
        return torch.stack(cost).to(self.scores.dtype)
