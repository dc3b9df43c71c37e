"""Dynamic programs over binary trees of labelled spans: partition, marginals, best tree, hinge.

A sequence of ``n`` positions has fenceposts ``0..n``. A binary tree over it is a set of
``2n - 1`` spans ``[i, j)`` (``0 <= i < j <= n``) that nest (no two of them cross), among them
the whole span ``[0, n)`` and every single position ``[i, i + 1)``; each of its spans carries
one label ``l`` in ``[0, L)``. All functions share one contract:

* ``scores``: ``(B, N + 1, N + 1, L)`` float scores; ``scores[b, i, j, l]`` scores span
  ``[i, j)`` with label ``l``. The score of a labelled tree is the sum of its ``2n - 1``
  entries.
* ``lengths``: optional ``(B,)`` integer lengths in ``[1, N]``, or a ``(B, N)`` boolean mask
  that is True on a prefix of each row; ``None`` means every sequence has ``N`` positions.

Entries that no tree of the sequence can use (``j <= i``, or ``j > lengths[b]``) are ignored,
whatever they hold (NaN included). Inside the used spans, NaN and ``+inf`` are refused and
``-inf`` forbids a labelled span; a sequence whose every tree is forbidden raises
``ValueError``. The partition sums ``exp(score)`` over all binary trees and all labellings, so
for each span the labels are log-sum-exp'd first (for the best tree, max'd first).

The dynamic programs run one span width at a time, for all start positions and sequences at
once, with the split points as a tensor dimension (the eager engine, used on CUDA), or in the
fused CPU kernels of `hybrid.structured.native` (``tree_kernels.cpp``). Results have the
inputs' promoted dtype (float32 for float16 and bfloat16 scores); scores large enough to
overflow it along a tree are computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as nnf
from torch import Tensor

from . import native
from ._inputs import (
    _check_tensor,
    computation_dtype,
    finite_range,
    length_mask,
    narrow,
    promoted_dtype,
    resolve_lengths,
)

__all__ = [
    "cky",
    "span_hamming_cost",
    "span_indicator",
    "tree_hinge",
    "tree_log_partition",
    "tree_marginals",
    "tree_score",
]

_NEG_INF = float("-inf")


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


@dataclass
class SpanScores:
    """A validated tree problem.

    Attributes:
        scores: ``(B, S, S, L)`` scores in the computation dtype, ``S = N + 1``. Entries outside
            the used spans are finite or ``-inf`` (NaN and ``+inf`` there were replaced by 0)
            once the values are checked.
        lengths: ``(B,)`` int64 lengths in ``[1, N]``.
        dtype: dtype of the results: the inputs' promoted dtype (`scores` may be wider).
        checked: Whether the values are checked; if not, the fused kernels check them as they
            read them (`prepare_spans` with ``defer``) and `confirm` judges what they saw.
    """

    scores: Tensor
    lengths: Tensor
    dtype: torch.dtype
    checked: bool = True

    def narrow(self, x: Tensor, what: str) -> Tensor:
        """``x`` ``(B, ...)`` in the result dtype, refusing values beyond its range."""
        return narrow(x, self.dtype, what, scores="scores")

    def confirm(self, extremes: Tensor) -> bool:
        """Whether results computed on these unchecked scores stand, from the ``(B, 2)``
        extremes the kernels saw of the used scores (see `hybrid.structured.native.tree_inside`).
        False where the scores need the careful check: NaN or ``+inf`` inside the used spans
        (which it refuses, naming the first), or trees that could overflow the dtype (which
        it computes in float64).
        """
        rows = extremes.tolist()
        lows, highs = [row[0] for row in rows], [row[1] for row in rows]
        if any(math.isnan(low) for low in lows) or math.inf in highs:
            return False
        steps = 2 * int(self.lengths.max()) - 1
        finite = (min(*lows, 0.0), max(*highs, 0.0))  # a row of -inf scores: +inf, -inf
        return _fits(self.dtype, steps, finite)


def _used_spans(lengths: Tensor, size: int) -> Tensor:
    """``(B, S, S)`` bool: True on the spans ``[i, j)`` with ``i < j <= lengths[b]``."""
    positions = torch.arange(size, device=lengths.device)
    ordered = positions[:, None] < positions[None, :]
    return ordered[None] & (positions[None, None, :] <= lengths[:, None, None])


def prepare_spans(scores: Tensor, lengths: Tensor | None, defer: bool = False) -> SpanScores:
    """Validate the inputs of a tree function and bring them into the internal form.

    Args:
        scores: ``(B, N + 1, N + 1, L)`` float scores (float16/bfloat16 promoted to float32).
        lengths: ``(B,)`` integers in ``[1, N]``, a ``(B, N)`` bool prefix mask, or ``None``.
        defer: Leave the check of the values (NaN, ``+inf``, the range of the dtype) to the
            fused kernels where they run on ``scores`` as they are: the problem is then
            unchecked (see `SpanScores.confirm`), which saves a pass over the scores.

    Raises:
        ValueError: A wrong shape, dtype or device, lengths out of range, or NaN or ``+inf``
            inside the used spans; the message names the argument.
    """
    scores = _check_tensor("scores", scores)
    shape = tuple(scores.shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[1] < 2 or 0 in shape:
        raise ValueError(
            f"scores must have shape (B, N + 1, N + 1, L) with B, N, L >= 1, got {shape}"
        )
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got {scores.dtype}")
    if isinstance(lengths, Tensor) and lengths.device != scores.device:
        raise ValueError(f"lengths is on {lengths.device} but scores are on {scores.device}")
    lengths = resolve_lengths(lengths, shape[0], shape[1] - 1, scores.device)
    dtype = promoted_dtype(scores.dtype)
    if defer and scores.dtype == dtype and _engine(scores) is _NATIVE:
        return SpanScores(scores, lengths, dtype, checked=False)
    steps = 2 * int(lengths.max()) - 1  # spans in the largest tree
    scores, used = _used_scores(scores, lengths, dtype, steps)
    wide = computation_dtype(dtype, steps, {"scores": used}, {})
    return SpanScores(scores.to(wide), lengths, dtype)


def _checked_run(scores: Tensor, lengths: Tensor | None, run: Callable) -> tuple[SpanScores, Any]:
    """``run(problem, extremes)`` on the problem of ``scores`` and ``lengths``, and the problem.

    Where the fused kernels run, first on the unchecked problem with a ``(B, 2)`` buffer for
    the extremes they see (``run`` passes it to them), then, unless `SpanScores.confirm`
    accepts those, again on the checked problem, with ``extremes`` None.
    """
    problem = prepare_spans(scores, lengths, defer=True)
    if not problem.checked:
        extremes = problem.scores.new_empty(problem.lengths.shape[0], 2)
        result = run(problem, extremes)
        if problem.confirm(extremes):
            return problem, result
        problem = prepare_spans(scores, lengths)
    return problem, run(problem, None)


def _used_scores(
    scores: Tensor, lengths: Tensor, dtype: torch.dtype, steps: int
) -> tuple[Tensor, tuple[float, float]]:
    """``scores`` and the `finite_range` of its used spans.

    One reduction when the whole tensor is free of NaN and ``+inf`` and small enough for
    ``dtype``; otherwise the unused entries are set to 0 (a copy) and measured again.
    """
    everywhere = finite_range(scores)
    if everywhere is not None and _fits(dtype, steps, everywhere):
        return scores, everywhere
    masked = scores.masked_fill(~_used_spans(lengths, scores.shape[1])[..., None], 0.0)
    used = finite_range(masked)
    if used is None:
        b, i, j, label = (torch.isnan(masked) | torch.isposinf(masked)).nonzero()[0].tolist()
        raise ValueError(
            f"scores contain NaN or +inf inside the used spans (first at batch {b}, span "
            f"[{i}, {j}), label {label}); scores must be finite or -inf"
        )
    return masked, used


def _fits(dtype: torch.dtype, steps: int, finite: tuple[float, float]) -> bool:
    """Whether trees of ``steps`` spans with scores in ``finite`` stay inside ``dtype``."""
    try:
        return computation_dtype(dtype, steps, {"scores": finite}, {}) == dtype
    except ValueError:
        return False


def _require_trees(values: Tensor, what: str) -> None:
    """Raise if a sequence has no allowed tree (its ``(B,)`` log-partition or best score is
    ``-inf``)."""
    dead = torch.isneginf(values)
    if dead.any():
        items = dead.nonzero().flatten().tolist()
        raise ValueError(
            f"no valid tree for batch items {items[:10]} in {what}: their -inf scores forbid "
            "every labelled binary tree"
        )


class SpanIndex(NamedTuple):
    """The labelled spans of a batch of trees as flat index tensors ``(R,)``, sorted by batch
    item, then in preorder (by start, then by decreasing end)."""

    batch: Tensor
    start: Tensor
    end: Tensor
    label: Tensor


def check_spans(name: str, spans: Tensor, lengths: Tensor, size: int, labels: int) -> SpanIndex:
    """Validate a batch of labelled binary trees and return the index of their spans.

    Args:
        name: The argument's name, for the messages.
        spans: ``(B, 2N - 1, 3)`` integer rows ``[i, j, label]``; the first ``2 n - 1`` rows of
            each sequence (any order) are its tree, the rows past them are ignored.
        lengths: ``(B,)`` validated lengths ``n``.
        size: ``S = N + 1``.
        labels: ``L``.

    Raises:
        ValueError: A wrong shape, dtype or device, a row that is no labelled span of its
            sequence, or rows that do not form a binary tree (names the batch item).
    """
    spans = _check_tensor(name, spans)
    batch, rows = lengths.shape[0], 2 * size - 3
    if tuple(spans.shape) != (batch, rows, 3):
        raise ValueError(
            f"{name} must have shape (B, 2N - 1, 3) = {(batch, rows, 3)}, got {tuple(spans.shape)}"
        )
    if spans.dtype.is_floating_point or spans.dtype == torch.bool or spans.is_complex():
        raise ValueError(f"{name} must be an integer tensor, got {spans.dtype}")
    if spans.device != lengths.device:
        raise ValueError(f"{name} is on {spans.device} but scores are on {lengths.device}")
    counts = 2 * lengths - 1
    used = torch.arange(rows, device=lengths.device)[None, :] < counts[:, None]
    spans = torch.where(used[..., None], spans.long(), -1)
    item, row = used.nonzero(as_tuple=True)
    start, end, label = spans[item, row].unbind(-1)
    bad = (start < 0) | (end <= start) | (end > lengths[item]) | (label < 0) | (label >= labels)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise ValueError(
            f"{name}: row {int(row[first])} of batch item {int(item[first])} is "
            f"{spans[item[first], row[first]].tolist()}, not a labelled span [i, j, label] with "
            f"0 <= i < j <= length = {int(lengths[item[first]])} and 0 <= label < L = {labels}"
        )
    _check_binary(name, spans, SpanIndex(item, start, end, label), lengths, size)
    order = torch.argsort((item * size + start) * size + (size - 1 - end))
    return SpanIndex(item[order], start[order], end[order], label[order])


def _check_binary(name: str, spans: Tensor, index: SpanIndex, lengths: Tensor, size: int) -> None:
    """Raise unless the spans of each sequence form a binary tree over ``[0, n)``.

    Distinct spans that pairwise nest, among them ``[0, n)`` and every ``[i, i + 1)``, and
    ``2n - 1`` of them, are a binary tree: every span then splits into at least two children
    that cover it, and ``n`` leaves leave room for ``n - 1`` such splits only.
    """
    batch = lengths.shape[0]
    counts = lengths.new_zeros(batch, size, size)
    counts.index_put_(index[:3], torch.ones_like(index.start), accumulate=True)
    items = torch.arange(batch, device=lengths.device)
    single = length_mask(lengths, size - 1)
    start, end = spans[..., 0], spans[..., 1]  # (B, R), -1 on the ignored rows
    unused = start < 0
    crossing = (
        (start[:, :, None] < start[:, None, :])
        & (start[:, None, :] < end[:, :, None])
        & (end[:, :, None] < end[:, None, :])
        & ~unused[:, :, None]
        & ~unused[:, None, :]
    )
    problems = [
        ((counts > 1).flatten(1).any(1), "a span appears twice"),
        (counts[items, 0, lengths] == 0, "the whole span [0, n) is missing"),
        (((counts.diagonal(1, 1, 2) == 0) & single).any(1), "a single-position span is missing"),
        (crossing.flatten(1).any(1), "two spans cross"),
    ]
    for failed, reason in problems:
        if failed.any():
            b = int(failed.nonzero()[0])
            raise ValueError(
                f"{name} of batch item {b} do not form a binary tree over [0, "
                f"{int(lengths[b])}): {reason}"
            )


# ---------------------------------------------------------------------------------------------
# eager engine: one span width at a time
# ---------------------------------------------------------------------------------------------

# A reduction over the split points (last dimension): (inner scores, what the backward needs).
Reduce = Callable[[Tensor], tuple[Tensor, Tensor]]


def _trim(x: Tensor, lengths: Tensor) -> Tensor:
    """The ``(B, S', S', ...)`` view of ``x`` up to the longest sequence's fenceposts."""
    size = int(lengths.max()) + 1
    return x[:, :size, :size]


def _pad(x: Tensor, size: int) -> Tensor:
    """``x`` ``(B, S', S', L)`` padded back to ``(B, S, S, L)`` with zeros."""
    missing = size - x.shape[1]
    return nnf.pad(x, (0, 0, 0, missing, 0, missing)) if missing else x


def _log_sum_exp_shares(x: Tensor) -> tuple[Tensor, Tensor]:
    """``logsumexp`` over the last dimension and each entry's share ``exp(x - lse)`` (0 where
    every entry is ``-inf``)."""
    peak = x.amax(-1, keepdim=True).nan_to_num(neginf=0.0)
    weights = torch.exp(x - peak)
    total = weights.sum(-1, keepdim=True)
    return (peak + total.log()).squeeze(-1), weights / total.clamp_min(1.0)  # total 0 or >= 1


def _max_split(x: Tensor) -> tuple[Tensor, Tensor]:
    """Max over the last dimension and its first argmax."""
    return x.max(-1)


def _inside_chart(span: Tensor, lengths: Tensor, reduce: Reduce) -> tuple[Tensor, list[Tensor]]:
    """Inside pass over span scores, one width at a time.

    Args:
        span: ``(B, S, S)`` span scores ``[i, j]`` (labels already reduced).
        lengths: ``(B,)``.
        reduce: Log-sum-exp or max over the split points, see `Reduce`.

    Returns:
        The inside score of ``[0, n)`` of each sequence ``(B,)``, and for each width
        ``w = 2 .. S - 1`` what ``reduce`` kept, ``(B, S - w, w - 1)``: entry ``[b, i, v]``
        belongs to the split of ``[i, i + w)`` at ``i + v + 1``.

    The chart is kept twice: ``by_start[b, i, w]`` and ``by_end[b, j, N - w]`` both hold span
    ``[i, j)`` of width ``w``, so that the left children ``[i, k)`` and the right children
    ``[k, j)`` of every span of a width are strided views with the split point last.
    """
    batch, size, _ = span.shape
    last = size - 1
    by_start = span.new_full((batch, size, size), _NEG_INF)
    by_end = span.new_full((batch, size, size), _NEG_INF)
    single = span.diagonal(1, 1, 2)
    by_start[:, :last, 1] = single
    by_end[:, 1:, last - 1] = single
    kept = []
    for w in range(2, size):
        pairs = by_start[:, : size - w, 1:w] + by_end[:, w:, last - w + 1 : last]
        inner, keep = reduce(pairs)
        kept.append(keep)
        value = span.diagonal(w, 1, 2) + inner
        by_start[:, : size - w, w] = value
        by_end[:, w:, last - w] = value
    return by_start[:, 0].gather(1, lengths[:, None]).squeeze(1), kept


def _outside_chart(shares: list[Tensor], lengths: Tensor, weight: Tensor, size: int) -> Tensor:
    """Outside pass in marginal form: ``weight[b]`` times each span's marginal ``(B, S, S)``.

    Widest first, every span passes its marginal to its children in proportion to ``shares``
    (from `_inside_chart` with `_log_sum_exp_shares`): the share of each split in its inner
    score. This is the outside algorithm with each outside score already multiplied by its
    inside score and divided by the partition.
    """
    batch, last = weight.shape[0], size - 1
    by_start = weight.new_zeros(batch, size, size)
    by_end = weight.new_zeros(batch, size, size)
    by_start[torch.arange(batch, device=weight.device), 0, lengths] = weight
    mu = weight.new_zeros(batch, size, size)
    for w in range(size - 1, 1, -1):
        flow = by_start[:, : size - w, w] + by_end[:, w:, last - w]
        mu.diagonal(w, 1, 2).copy_(flow)
        parts = flow[..., None] * shares[w - 2]
        by_start[:, : size - w, 1:w] += parts
        by_end[:, w:, last - w + 1 : last] += parts
    mu.diagonal(1, 1, 2).copy_(by_start[:, :last, 1] + by_end[:, 1:, last - 1])
    return mu


def _eager_inside(
    scores: Tensor, lengths: Tensor, extremes: None = None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``log Z`` ``(B,)`` and the state `_eager_outside` needs: the span scores (labels
    log-sum-exp'd) and the split shares of every width. (``extremes``: the eager engine runs
    on checked problems only, see `prepare_spans`.)"""
    _no_extremes(extremes)
    span = torch.logsumexp(_trim(scores, lengths), -1)
    log_z, shares = _inside_chart(span, lengths, _log_sum_exp_shares)
    return log_z, (span, *shares)


def _eager_outside(scores: Tensor, lengths: Tensor, state: tuple, weight: Tensor) -> Tensor:
    """``weight[b]`` times the labelled-span marginals ``(B, S, S, L)``, zero where unused."""
    span, *shares = state
    mu = _outside_chart(shares, lengths, weight, span.shape[1])
    labels = torch.exp(_trim(scores, lengths) - span.nan_to_num(neginf=0.0)[..., None])
    return _pad(mu[..., None] * labels, scores.shape[1])


def _best_tree_spans(splits: list[Tensor], lengths: Tensor, size: int) -> Tensor:
    """``(B, S, S)`` bool: the spans of the best trees, top-down from the argmax splits of
    `_inside_chart` with `_max_split` (one width at a time)."""
    batch = lengths.shape[0]
    counts = lengths.new_zeros(batch, size * size)
    counts[torch.arange(batch, device=lengths.device), lengths] = 1  # [0, n) at 0 * S + n
    for w in range(size - 1, 1, -1):
        chosen = counts.view(batch, size, size).diagonal(w, 1, 2).clone()  # (B, S - w)
        start = torch.arange(size - w, device=lengths.device)
        split = start + splits[w - 2] + 1
        counts.scatter_add_(1, start * size + split, chosen)
        counts.scatter_add_(1, split * size + start + w, chosen)
    return counts.view(batch, size, size) > 0


def _spans_to_rows(in_tree: Tensor, label: Tensor, lengths: Tensor, rows: int) -> Tensor:
    """Trees ``(B, S, S)`` bool with their labels ``(B, S, S)`` as rows ``(B, rows, 3)``
    ``[i, j, label]`` in preorder (by start, then by decreasing end), ``-1`` past each tree."""
    batch, size, _ = in_tree.shape
    item, start, end_flipped = in_tree.flip(2).nonzero(as_tuple=True)
    end = size - 1 - end_flipped
    counts = 2 * lengths - 1
    rank = torch.arange(item.shape[0], device=item.device) - (counts.cumsum(0) - counts)[item]
    out = lengths.new_full((batch, rows, 3), -1)
    out[item, rank] = torch.stack([start, end, label[item, start, end]], -1)
    return out


def _eager_best(scores: Tensor, lengths: Tensor, extremes: None = None) -> tuple[Tensor, Tensor]:
    """Best trees as rows ``(B, 2N - 1, 3)`` and their scores ``(B,)`` (eager CKY; for
    ``extremes`` see `_eager_inside`)."""
    _no_extremes(extremes)
    trimmed = _trim(scores, lengths)
    span, label = trimmed.max(-1)
    best, splits = _inside_chart(span, lengths, _max_split)
    in_tree = _best_tree_spans(splits, lengths, span.shape[1])
    return _spans_to_rows(in_tree, label, lengths, 2 * scores.shape[1] - 3), best


def _no_extremes(extremes: None) -> None:
    if extremes is not None:
        raise ValueError("extremes: only the fused kernels check the scores as they read them")


class _Engine(NamedTuple):
    """The three passes of one engine, on validated ``(B, S, S, L)`` scores and lengths
    (``inside`` and ``best`` also take the optional ``(B, 2)`` extremes buffer of
    `hybrid.structured.native.tree_inside`)."""

    inside: Callable[[Tensor, Tensor, Tensor | None], tuple[Tensor, tuple]]
    outside: Callable[[Tensor, Tensor, tuple, Tensor], Tensor]
    best: Callable[[Tensor, Tensor, Tensor | None], tuple[Tensor, Tensor]]


_EAGER = _Engine(_eager_inside, _eager_outside, _eager_best)
_NATIVE = _Engine(native.tree_inside, native.tree_outside, native.tree_cky)


def _engine(scores: Tensor) -> _Engine:
    """The fused kernels where they run (CPU float32/float64), else the eager engine."""
    return _NATIVE if native.available(scores) else _EAGER


class _TreeLogPartition(torch.autograd.Function):
    """``log Z`` ``(B,)`` of validated scores ``(B, S, S, L)`` and lengths ``(B,)``.

    The backward pass is an explicit outside pass: the gradient with respect to the scores is
    the labelled-span marginals times the incoming gradient (first order only).
    """

    @staticmethod
    def forward(ctx, scores, lengths, extremes):
        engine = _engine(scores)
        log_z, state = engine.inside(scores, lengths, extremes)
        ctx.engine = engine
        ctx.save_for_backward(scores, lengths, *state)
        return log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        scores, lengths, *state = ctx.saved_tensors
        weight = grad_output.to(scores.dtype)
        return ctx.engine.outside(scores, lengths, tuple(state), weight), None, None


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------


def tree_log_partition(scores: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Log of the sum of ``exp(score)`` over all labelled binary trees (the inside algorithm).

    Differentiable: the gradient comes from an explicit outside pass, so that it equals the
    labelled-span marginals (`tree_marginals`).

    Args:
        scores: ``(B, N + 1, N + 1, L)``; ``scores[b, i, j, l]`` scores span ``[i, j)`` with
            label ``l``.
        lengths: ``(B,)`` integers in ``[1, N]``, ``(B, N)`` bool prefix mask, or ``None``.

    Returns:
        ``(B,)`` log-partition of each sequence.
    """
    problem, log_z = _checked_run(
        scores, lengths, lambda p, extremes: _TreeLogPartition.apply(p.scores, p.lengths, extremes)
    )
    _require_trees(log_z.detach(), "tree_log_partition")
    return problem.narrow(log_z, "log-partition")


def tree_marginals(scores: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Posterior probability of every labelled span under the trees' Gibbs distribution.

    Args:
        scores: ``(B, N + 1, N + 1, L)``.
        lengths: ``(B,)`` integers, ``(B, N)`` bool prefix mask, or ``None``.

    Returns:
        ``(B, N + 1, N + 1, L)``: ``P(span [i, j) with label l is in the tree)``, zero on the
        unused entries; each sequence's entries sum to ``2n - 1``.
    """
    problem, (log_z, marginals) = _checked_run(scores, lengths, _marginals)
    _require_trees(log_z, "tree_marginals")
    return marginals.to(problem.dtype)


@torch.no_grad()
def _marginals(problem: SpanScores, extremes: Tensor | None) -> tuple[Tensor, Tensor]:
    """The log-partition ``(B,)`` and the labelled-span marginals of ``problem``."""
    x, lengths = problem.scores, problem.lengths
    engine = _engine(x)
    log_z, state = engine.inside(x, lengths, extremes)
    return log_z, engine.outside(x, lengths, state, x.new_ones(x.shape[0]))


def cky(scores: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The highest-scoring labelled binary tree of each sequence (exact, batched).

    Args:
        scores: ``(B, N + 1, N + 1, L)``.
        lengths: ``(B,)`` integers, ``(B, N)`` bool prefix mask, or ``None``.

    Returns:
        ``spans`` ``(B, 2N - 1, 3)`` int64 rows ``[i, j, label]`` in preorder (sorted by
        start, then by decreasing end; ``-1`` past each sequence's ``2n - 1`` spans), and
        ``scores`` ``(B,)``. Ties keep the smallest label and the leftmost split.
    """
    problem, (spans, best) = _checked_run(scores, lengths, _best)
    _require_trees(best, "cky")
    return spans, problem.narrow(best, "best tree score")


@torch.no_grad()
def _best(problem: SpanScores, extremes: Tensor | None) -> tuple[Tensor, Tensor]:
    """The best trees of ``problem`` as rows ``(B, 2N - 1, 3)`` and their scores ``(B,)``."""
    return _engine(problem.scores).best(problem.scores, problem.lengths, extremes)


def _sum_spans(scores: Tensor, index: SpanIndex) -> Tensor:
    """``(B,)`` sums of ``scores[b, i, j, label]`` over the spans of ``index`` (in its order,
    so that equal trees give bitwise equal sums)."""
    values = scores[index.batch, index.start, index.end, index.label]
    return scores.new_zeros(scores.shape[0]).index_add(0, index.batch, values)


def tree_score(scores: Tensor, spans: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Score of given labelled trees (differentiable), e.g. gold ones.

    Args:
        scores: ``(B, N + 1, N + 1, L)``.
        spans: ``(B, 2N - 1, 3)`` integer rows ``[i, j, label]`` as `cky` returns them: the
            first ``2n - 1`` rows of each sequence (in any order) must form a binary tree over
            ``[0, n)``; the rows past them are ignored.
        lengths: ``(B,)`` integers, ``(B, N)`` bool prefix mask, or ``None``.

    Returns:
        ``(B,)`` tree scores (``-inf`` for a tree with a forbidden labelled span).
    """
    problem = prepare_spans(scores, lengths)
    _, size, _, labels = problem.scores.shape
    index = check_spans("spans", spans, problem.lengths, size, labels)
    return problem.narrow(_sum_spans(problem.scores, index), "tree score")


def _frame(shape: tuple[int, ...], lengths: Tensor | None, device) -> tuple[int, int, Tensor]:
    """``(S, L, lengths)`` of a score shape ``(B, N + 1, N + 1, L)`` given without scores."""
    shape = tuple(shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[1] < 2 or 0 in shape:
        raise ValueError(f"shape must be (B, N + 1, N + 1, L) with B, N, L >= 1, got {shape}")
    if isinstance(lengths, Tensor) and lengths.device != torch.device(device):
        raise ValueError(f"lengths is on {lengths.device} but spans are on {device}")
    return shape[1], shape[3], resolve_lengths(lengths, shape[0], shape[1] - 1, device)


def _indicator(index: SpanIndex, shape: tuple[int, ...], dtype: torch.dtype, device) -> Tensor:
    """``shape`` ``(B, S, S, L)``: 1 on the labelled spans of ``index``, else 0."""
    out = torch.zeros(shape, dtype=dtype, device=device)
    out[tuple(index)] = 1.0
    return out


def span_indicator(spans: Tensor, shape: tuple[int, ...], lengths: Tensor | None = None) -> Tensor:
    """Labelled trees as a 0/1 tensor over the score layout.

    Args:
        spans: ``(B, 2N - 1, 3)`` rows ``[i, j, label]`` (see `tree_score`).
        shape: The scores' shape ``(B, N + 1, N + 1, L)``.
        lengths: ``(B,)`` integers, ``(B, N)`` bool prefix mask, or ``None``.

    Returns:
        ``(B, N + 1, N + 1, L)`` in the default float dtype on ``spans``' device: 1 on the
        labelled spans of each tree, else 0. ``(scores * indicator).sum((1, 2, 3))`` is
        `tree_score`.
    """
    device = _check_tensor("spans", spans).device
    size, labels, lengths = _frame(shape, lengths, device)
    index = check_spans("spans", spans, lengths, size, labels)
    return _indicator(index, tuple(shape), torch.get_default_dtype(), device)


def span_hamming_cost(
    spans: Tensor, shape: tuple[int, ...], lengths: Tensor | None = None
) -> Tensor:
    """The labelled-span Hamming cost of every labelled span against given (gold) trees.

    Adding it to the scores makes the score of every tree ``y`` ``score(y) + cost(y)``, where
    ``cost(y)`` is the number of labelled spans of ``y`` that are not in the gold tree, so
    that `cky` on ``scores + cost`` is the cost-augmented decoder of the margin-rescaled
    structured hinge (see `tree_hinge`, which does this for you).

    Args:
        spans: ``(B, 2N - 1, 3)`` gold rows ``[i, j, label]`` (see `tree_score`).
        shape: The scores' shape ``(B, N + 1, N + 1, L)``.
        lengths: ``(B,)`` integers, ``(B, N)`` bool prefix mask, or ``None``.

    Returns:
        ``(B, N + 1, N + 1, L)`` in the default float dtype: 1 on every used labelled span
        not in the gold tree, 0 on the gold tree's and on the unused entries.
    """
    device = _check_tensor("spans", spans).device
    size, labels, lengths = _frame(shape, lengths, device)
    index = check_spans("spans", spans, lengths, size, labels)
    return _hamming(index, lengths, tuple(shape), torch.get_default_dtype())


def _hamming(index: SpanIndex, lengths: Tensor, shape: tuple, dtype: torch.dtype) -> Tensor:
    """1 on the used labelled spans outside the trees of ``index``, else 0."""
    used = _used_spans(lengths, shape[1])[..., None].expand(shape)
    cost = used.to(dtype)
    cost[tuple(index)] = 0.0
    return cost


def tree_hinge(
    scores: Tensor, spans: Tensor, lengths: Tensor | None = None, cost: Tensor | None = None
) -> Tensor:
    """Margin-rescaled structured hinge ``max_y [score(y) + cost(y)] - score(gold)``, ``>= 0``.

    ``cost(y)`` is by default the labelled-span Hamming cost (`span_hamming_cost`): the number
    of labelled spans of ``y`` not in the gold tree; or the sum over the labelled spans of
    ``y`` of a given ``cost``, 0 on the gold tree's. The maximum is found exactly by CKY on
    ``scores + cost``; the loss is differentiable, its subgradient being the indicator of the
    cost-augmented best tree minus that of the gold tree.

    Args:
        scores: ``(B, N + 1, N + 1, L)``.
        spans: ``(B, 2N - 1, 3)`` gold rows ``[i, j, label]`` (see `tree_score`).
        lengths: ``(B,)`` integers, ``(B, N)`` bool prefix mask, or ``None``.
        cost: ``(B, N + 1, N + 1, L)`` non-negative finite cost of every labelled span (on
            the used spans), 0 on each gold tree's labelled spans; ``None`` for the Hamming
            cost. Not differentiated.

    Returns:
        ``(B,)``: 0 for a sequence exactly when its gold tree beats every other tree by at
        least that tree's cost.

    Raises:
        ValueError: Besides bad input, a gold tree that uses a ``-inf`` (forbidden) span, or
            a ``cost`` of another shape, negative or not finite on a used span, or not 0 on
            the gold tree.
    """
    problem = prepare_spans(scores, lengths)
    x, lengths = problem.scores, problem.lengths
    gold = check_spans("spans", spans, lengths, x.shape[1], x.shape[3])
    gold_score = _sum_spans(x, gold)
    forbidden = torch.isneginf(gold_score.detach())
    if forbidden.any():
        items = forbidden.nonzero().flatten().tolist()
        raise ValueError(
            f"spans of batch items {items[:10]} use a labelled span whose score is -inf (forbidden)"
        )
    if cost is None:
        augmented = x + _hamming(gold, lengths, tuple(x.shape), x.dtype)
    else:
        augmented = x + _check_cost(cost, gold, lengths, x)
    with torch.no_grad():
        rows, _ = _engine(x).best(augmented, lengths)
    predicted = _rows_index(rows, lengths)
    # The gold tree is a candidate too: its augmented score is its own, summed in the same
    # order, so the difference is exactly 0 when it wins; clamping only removes rounding.
    loss = (_sum_spans(augmented, predicted) - gold_score).clamp_min(0.0)
    return problem.narrow(loss, "structured hinge loss")


def _check_cost(cost: Tensor, gold: SpanIndex, lengths: Tensor, scores: Tensor) -> Tensor:
    """``cost`` in the dtype of ``scores``, 0 on the unused entries, checked as `tree_hinge`
    says."""
    cost = _check_tensor("cost", cost)
    if tuple(cost.shape) != tuple(scores.shape) or not cost.is_floating_point():
        raise ValueError(
            f"cost must be a floating-point tensor of the scores' shape {tuple(scores.shape)}, "
            f"got {cost.dtype} {tuple(cost.shape)}"
        )
    if cost.device != scores.device:
        raise ValueError(f"cost is on {cost.device} but scores are on {scores.device}")
    used = _used_spans(lengths, scores.shape[1])[..., None].expand(scores.shape)
    cost = cost.detach().to(scores.dtype).masked_fill(~used, 0.0)
    if not bool(torch.isfinite(cost).all()) or bool((cost < 0).any()):
        raise ValueError("cost must be finite and >= 0 on every used labelled span")
    on_gold = _sum_spans(cost, gold) != 0
    if on_gold.any():
        items = on_gold.nonzero().flatten().tolist()
        raise ValueError(f"cost must be 0 on the gold tree's spans; not so for items {items[:10]}")
    return cost


def _rows_index(rows: Tensor, lengths: Tensor) -> SpanIndex:
    """The `SpanIndex` of trees in preorder rows ``(B, 2N - 1, 3)`` (as `cky` returns)."""
    used = torch.arange(rows.shape[1], device=rows.device)[None, :] < (2 * lengths - 1)[:, None]
    item, row = used.nonzero(as_tuple=True)
    return SpanIndex(item, *rows[item, row].unbind(-1))
