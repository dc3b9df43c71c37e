"""Batching helpers shared by the recipes: length-bucketed batch order, row padding, and
inference over a stream in batches of bounded padded size."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # torch loads where a function needs it: `map_in_batches` runs without it
    import torch
    from torch import Tensor

__all__ = ["WINDOW", "budget_batches", "bucketed_batches", "map_in_batches", "pad_rows"]

#: Items that `map_in_batches` reads, sorts and batches together.
WINDOW = 1000

Item = TypeVar("Item")
Result = TypeVar("Result")


def bucketed_batches(
    lengths: Sequence[int], size: int, generator: torch.Generator, pool: int = 50
) -> list[list[int]]:
    """Indices of shuffled batches of ``size`` items of similar length.

    The items are shuffled, sorted by length within pools of ``pool`` batches, cut into
    batches, and the batches shuffled: little padding, random order.

    Raises:
        ValueError: ``size`` or ``pool`` below 1.
    """
    import torch

    for name, value in (("size", size), ("pool", pool)):
        _check_positive(name, value)
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
    import torch

    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), max(width, 1)), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def budget_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of batches of items of similar length whose padded size stays within ``budget``.

    The items are sorted by length (stably) and cut greedily: a batch grows while its number
    of items times its longest length is at most ``budget``, so an item longer than
    ``budget`` forms a batch of its own. A length below 1 counts as 1.

    Raises:
        ValueError: ``budget`` below 1.
    """
    _check_positive("budget", budget)
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        longest = max(1, lengths[i])  # ascending order: the batch's longest so far
        if batches and (len(batches[-1]) + 1) * longest <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def map_in_batches(
    run: Callable[[list[Item]], Sequence[Result]],
    items: Iterable[Item],
    length: Callable[[Item], int],
    budget: int,
    window: int = WINDOW,
) -> Iterator[Result]:
    """``run`` over ``items`` in batches of bounded padded size; the results lazily, in order.

    Reads ``window`` items at a time, cuts them into `budget_batches` by ``length``, calls
    ``run`` on each batch and yields the window's results in the items' order as soon as the
    window is done. At most one window of items and results is held, and no batch pads to
    more than ``budget`` positions unless a single item is longer.

    Args:
        run: Maps a list of items to as many results, in the same order.
        items: Any iterable (a file, a generator): read one window ahead of the results.
        length: The positions an item takes in a padded batch (words, frames).
        budget: Most positions (items times longest length) one batch pads to.
        window: Items sorted and batched together.

    Raises:
        ValueError: ``budget`` or ``window`` below 1 (at once), or ``run`` returning another
            number of results than it was given items.
    """
    _check_positive("budget", budget)
    _check_positive("window", window)
    return _map_windows(run, iter(items), length, budget, window)


def _map_windows(
    run: Callable[[list[Item]], Sequence[Result]],
    items: Iterator[Item],
    length: Callable[[Item], int],
    budget: int,
    window: int,
) -> Iterator[Result]:
    while chunk := list(islice(items, window)):
        results: list = [None] * len(chunk)
        for batch in budget_batches([length(item) for item in chunk], budget):
            outputs = run([chunk[i] for i in batch])
            if len(outputs) != len(batch):
                raise ValueError(
                    f"run must return one result per item: got {len(outputs)} for {len(batch)}"
                )
            for i, output in zip(batch, outputs, strict=True):
                results[i] = output
        yield from results


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
