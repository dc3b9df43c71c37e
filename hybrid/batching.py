"""Batching helpers shared by the recipes: length-bucketed batch order and row padding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["bucketed_batches", "pad_rows"]


def bucketed_batches(
    lengths: Sequence[int], size: int, generator: torch.Generator, pool: int = 50
) -> list[list[int]]:
    """Indices of shuffled batches of ``size`` items of similar length.

    The items are shuffled, sorted by length within pools of ``pool`` batches, cut into
    batches, and the batches shuffled: little padding, random order.

    Raises:
        ValueError: ``size`` or ``pool`` below 1.
    """
    for name, value in (("size", size), ("pool", pool)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = size * pool
    order = [
        i
        for start in range(0, len(order), window)
        for i in sorted(order[start : start + window], key=lambda i: lengths[i])
    ]
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    return [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]


def pad_rows(rows: Sequence[Sequence[int]], value: int = 0) -> Tensor:
    """``(N, W)`` int64: the rows left-aligned, ``value`` after each (``W >= 1``)."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), max(width, 1)), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
