"""The ``n`` best label sequences of a graph: exact sentence-dependent N-best (Schwartz and
Chow, 1990).

Many paths write the same labels (a word said with other durations); the N-best list ranks
label sequences, each by its best path. Token passing keeps, in every state after every
frame, the ``n`` best distinct label histories that reach it, each with the score of its
best partial path. This is exact: a sequence in the true top ``n`` whose history were dropped
at some state would have ``n`` distinct histories above it there, and each, completed as it
is completed, would be a distinct sequence that beats it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .graph import Graph, _prepare, _require_paths

__all__ = ["GraphNBest", "graph_nbest"]


class GraphNBest(NamedTuple):
    """The ``n`` best label sequences of each sequence through a graph, best first.

    Attributes:
        labels: ``(B, N, L)`` int64 labels, ``-1`` padded.
        label_lengths: ``(B, N)`` int64 number of labels (0 for a missing entry).
        scores: ``(B, N)`` the score of each sequence's best path (``-inf`` where the graph
            has fewer than ``N`` sequences of that length).
    """

    labels: Tensor
    label_lengths: Tensor
    scores: Tensor


def graph_nbest(scores: Tensor, graph: Graph, n: int, lengths: Tensor | None = None) -> GraphNBest:
    """The ``n`` best distinct label sequences of each sequence through ``graph``.

    Args:
        scores: ``(B, T, E)`` frame scores.
        graph: A compiled `Graph` on the same device.
        n: How many sequences per row (``n = 1`` gives `graph_viterbi`'s labels and score).
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.

    Raises:
        ValueError: ``n`` below 1, bad shapes or values, or a sequence with no path.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    scores, lengths, dtype = _prepare(scores, graph, lengths)
    rows = _nbest(scores.detach().cpu().double(), lengths.cpu(), graph, n)
    best = torch.tensor([r[0][1] if r else -torch.inf for r in rows], dtype=torch.float64)
    _require_paths(best, "graph_nbest")
    width = max(1, max(len(labels) for r in rows for labels, _ in r))
    labels = torch.full((len(rows), n, width), -1, dtype=torch.long)
    counts = torch.zeros(len(rows), n, dtype=torch.long)
    totals = torch.full((len(rows), n), -torch.inf, dtype=torch.float64)
    for b, row in enumerate(rows):
        for i, (said, score) in enumerate(row):
            labels[b, i, : len(said)] = torch.tensor(said, dtype=torch.long)
            counts[b, i], totals[b, i] = len(said), score
    device = scores.device
    return GraphNBest(labels.to(device), counts.to(device), totals.to(device=device, dtype=dtype))


def _nbest(
    scores: Tensor, lengths: Tensor, graph: Graph, n: int
) -> list[list[tuple[tuple[int, ...], float]]]:
    """Token passing over ``(B, T, E)`` float64 scores on the CPU, every row at once: each
    token a row, a state, a history (an index into ``histories``, shared by all rows) and a
    score; a row's tokens stop at its length."""
    num_states = graph.num_states
    dst, emission, label = graph.dst.cpu(), graph.emission.cpu(), graph.label.cpu()
    weight, out_offsets = graph.weight.cpu().double(), graph.out_offsets.cpu()
    histories: list[tuple[int, ...]] = [()]
    extended: dict[tuple[int, int], int] = {}
    start = graph.start.cpu().double()
    first_states = torch.isfinite(start).nonzero().flatten()
    row = torch.arange(len(scores)).repeat_interleave(len(first_states))
    state = first_states.repeat(len(scores))
    history, score = torch.zeros_like(state), start[state]
    ended = []  # (row, state, history, score) of the rows that end at each frame
    for frame in range(scores.shape[1]):
        stop = lengths[row] == frame
        ended.append((row[stop], state[stop], history[stop], score[stop]))
        row, state, history, score = row[~stop], state[~stop], history[~stop], score[~stop]
        degree = out_offsets[state + 1] - out_offsets[state]
        token = torch.arange(len(state)).repeat_interleave(degree)
        before = (degree.cumsum(0) - degree).repeat_interleave(degree)
        arc = out_offsets[state].repeat_interleave(degree) + torch.arange(len(token)) - before
        value = score[token] + weight[arc] + scores[row[token], frame, emission[arc]]
        keep = torch.isfinite(value)
        arc, token, value = arc[keep], token[keep], value[keep]
        said = history[token]
        writes = (label[arc] >= 0).nonzero().flatten()
        if len(writes):
            grown = []
            for key in zip(said[writes].tolist(), label[arc[writes]].tolist(), strict=True):
                if key not in extended:
                    extended[key] = len(histories)
                    histories.append((*histories[key[0]], key[1]))
                grown.append(extended[key])
            said = said.index_put((writes,), torch.tensor(grown, dtype=said.dtype))
        group, history, score = _top(row[token] * num_states + dst[arc], said, value, n)
        row, state = group // num_states, group % num_states
    ended.append((row, state, history, score))
    final = graph.final.cpu().double()
    best: list[dict[int, float]] = [{} for _ in range(len(scores))]
    for rows, states, said, total in ended:
        total = total + final[states]
        for b, h, value in zip(rows.tolist(), said.tolist(), total.tolist(), strict=True):
            if value > best[b].get(h, -torch.inf):
                best[b][h] = value
    ranked = [sorted(found.items(), key=lambda item: -item[1])[:n] for found in best]
    return [[(histories[h], v) for h, v in r if v > -torch.inf] for r in ranked]


def _top(group: Tensor, history: Tensor, score: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per group (a row's state), its ``n`` best distinct histories: tokens of the same group
    and history merged (the best score kept), then the ``n`` highest of each group."""
    if len(group) == 0:
        return group, history, score
    span = int(history.max()) + 1
    unique, inverse = torch.unique(group * span + history, return_inverse=True)
    merged = torch.full((len(unique),), -torch.inf, dtype=score.dtype)
    merged.scatter_reduce_(0, inverse, score, reduce="amax")
    group, history = unique // span, unique % span
    order = torch.argsort(merged, descending=True, stable=True)
    order = order[torch.argsort(group[order], stable=True)]
    group, history, merged = group[order], history[order], merged[order]
    starts = torch.ones_like(group, dtype=torch.bool)
    starts[1:] = group[1:] != group[:-1]
    sizes = torch.diff(torch.cat([starts.nonzero().flatten(), torch.tensor([len(group)])]))
    rank = torch.arange(len(group)) - starts.nonzero().flatten().repeat_interleave(sizes)
    keep = rank < n
    return group[keep], history[keep], merged[keep]
