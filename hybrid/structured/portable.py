"""Exact decoders that ``torch.jit.script`` and ``torch.onnx.export`` accept.

The public decoders (`hybrid.structured.viterbi`, `kbest`, `marginals`, `graph_viterbi`)
validate their inputs in Python and run fused C++ kernels, neither of which a TorchScript
module or an ONNX graph can hold. The functions here are the same dynamic programs written
with tensor operations only, for models that leave Python: they give the same paths and the
same scores (tests compare them with the public decoders), and they trust their inputs, which
come from a model's own layers. Batch and time stay dynamic in both formats. `graph_viterbi`
is also the eager engine behind `hybrid.structured.graph_viterbi` (CUDA, no kernels).
`cky` is `hybrid.structured.cky`'s best tree, one span width at a time.

Each recurrence is one step function over a carry, driven by a loop in eager mode and under
TorchScript, and by ``scan`` (an ONNX ``Scan``) under ``torch.export``, whose Python loops
would otherwise be unrolled to the example's length. Every scan runs over all ``T`` steps,
so it is never empty.

Shapes follow the package contract: batch-first ``emissions`` ``(B, T, K)``, ``lengths``
``(B,)`` int64 in ``[1, T]``, ``transitions`` ``(K, K)`` indexed ``[from, to]``, ``start`` and
``end`` ``(K,)``, with forbidden steps already ``-inf`` (see `fold_constraints`).
"""

import torch
from torch import Tensor

from ._inputs import ChainConstraints, apply_constraints, exporting

__all__ = [
    "chain_kbest",
    "chain_log_partition",
    "cky",
    "chain_marginals",
    "chain_viterbi",
    "fold_constraints",
    "graph_viterbi",
    "pack_left",
]


def fold_constraints(
    transitions: Tensor,
    start: Tensor | None = None,
    end: Tensor | None = None,
    constraints: ChainConstraints | Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Detached ``transitions``, ``start`` and ``end`` with forbidden entries set to ``-inf``
    (``None`` start or end: zeros), ready to be a decoder's buffers."""
    zeros = transitions.new_zeros(transitions.shape[0])
    return tuple(  # type: ignore[return-value]
        x.detach().clone()
        for x in apply_constraints(
            transitions,
            zeros if start is None else start,
            zeros if end is None else end,
            constraints,
        )
    )


@torch.jit.unused
def _exporting() -> bool:
    return exporting()


def _logsumexp(x: Tensor, dim: int) -> Tensor:
    """``logsumexp`` that gives ``-inf`` (not NaN) where every term is ``-inf``, in every
    runtime."""
    peak = x.amax(dim)
    safe = torch.where(torch.isinf(peak), torch.zeros_like(peak), peak)
    return torch.log(torch.exp(x - safe.unsqueeze(dim)).sum(dim)) + safe


def _time_major(emissions: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(T, B, K)`` emissions, ``(T, B)`` "inside the sequence" and ``(T, B)`` "first step"."""
    steps = torch.arange(emissions.shape[1], device=emissions.device).unsqueeze(1)
    inside = steps < lengths
    return emissions.transpose(0, 1), inside, (steps == 0).expand_as(inside)


# --------------------------------------------------------------------------- k-max semiring
def _kmax_step(
    ranked: Tensor,
    emission: Tensor,
    inside: Tensor,
    first: Tensor,
    transitions: Tensor,
    start: Tensor,
    stay: Tensor,
) -> tuple[Tensor, Tensor]:
    """One step of list Viterbi.

    ``ranked`` ``(B, k, K)`` holds the ``k`` best prefix scores ending in each state. Returns
    the next ``ranked`` and the pointers ``(B, k, K)``: the ``rank * K + state`` each kept
    prefix came from (``stay``, the identity, past each length; at the first step they are
    never followed).
    """
    batch, k, num_tags = ranked.shape
    candidates = (ranked.unsqueeze(3) + transitions).reshape(batch, k * num_tags, num_tags)
    if k == 1:  # Viterbi: a max is several times faster than a top-k
        best, pointers = candidates.max(1, keepdim=True)
    else:
        best, pointers = candidates.topk(k, dim=1)
    best = torch.where(first.view(-1, 1, 1), start, best) + emission.unsqueeze(1)
    inside = inside.view(-1, 1, 1)
    return torch.where(inside, best, ranked), torch.where(inside, pointers, stay)


def _trace_step(code: Tensor, pointers: Tensor) -> tuple[Tensor, Tensor]:
    """Follow ``(B, k)`` codes ``rank * K + state`` one step back; emit their states."""
    num_tags = pointers.shape[2]
    previous = pointers.reshape(pointers.shape[0], -1).gather(1, code)
    return previous, code % num_tags


@torch.jit.unused
def _kmax_scan(
    emissions: Tensor,
    inside: Tensor,
    first: Tensor,
    ranked: Tensor,
    transitions: Tensor,
    start: Tensor,
    stay: Tensor,
) -> tuple[Tensor, Tensor]:
    from torch._higher_order_ops.scan import scan

    def step(carry: Tensor, xs: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        ranked, pointers = _kmax_step(carry, xs[0], xs[1], xs[2], transitions, start, stay)
        return ranked.clone(), pointers

    return scan(step, ranked, (emissions, inside, first))


@torch.jit.unused
def _trace_scan(code: Tensor, pointers: Tensor) -> Tensor:
    from torch._higher_order_ops.scan import scan

    def step(carry: Tensor, pointers: Tensor) -> tuple[Tensor, Tensor]:
        previous, state = _trace_step(carry, pointers)
        return previous, state.clone()

    return scan(step, code, pointers, reverse=True)[1]


def chain_kbest(
    emissions: Tensor,
    lengths: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    k: int,
) -> tuple[Tensor, Tensor]:
    """The ``k`` best distinct paths of each sequence (list Viterbi, k-max semiring).

    Returns:
        ``paths`` ``(B, k, T)`` int64 and ``scores`` ``(B, k)``, non-increasing; ``-1`` past
        each length, and a path of ``-1`` with score ``-inf`` for a missing rank. Equal to
        `hybrid.structured.kbest`.
    """
    batch, steps, num_tags = emissions.shape
    emissions, inside, first = _time_major(emissions, lengths)
    device = emissions.device
    ranks = torch.arange(k, device=device).view(1, k, 1)
    stay = (ranks * num_tags + torch.arange(num_tags, device=device)).expand(batch, k, num_tags)
    # rank 0 starts with `start`; the other ranks have no prefix yet
    start = torch.cat([start.unsqueeze(0), start.new_full((k - 1, num_tags), float("-inf"))])
    ranked = emissions.new_full((batch, k, num_tags), float("-inf"))
    if not torch.jit.is_scripting() and _exporting():
        ranked, pointers = _kmax_scan(emissions, inside, first, ranked, transitions, start, stay)
    else:
        pointers = torch.empty((steps, batch, k, num_tags), dtype=torch.long, device=device)
        for t in range(steps):
            ranked, pointers[t] = _kmax_step(
                ranked, emissions[t], inside[t], first[t], transitions, start, stay
            )
    scores, code = (ranked + end).reshape(batch, k * num_tags).topk(k, dim=1)
    if not torch.jit.is_scripting() and _exporting():
        states = _trace_scan(code, pointers)
    else:
        states = torch.empty((steps, batch, k), dtype=torch.long, device=device)
        for t in range(steps - 1, -1, -1):
            code, states[t] = _trace_step(code, pointers[t])
    paths = states.permute(1, 2, 0)
    keep = inside.t().unsqueeze(1) & ~torch.isneginf(scores).unsqueeze(2)
    return torch.where(keep, paths, torch.full_like(paths, -1)), scores


def chain_viterbi(
    emissions: Tensor, lengths: Tensor, transitions: Tensor, start: Tensor, end: Tensor
) -> tuple[Tensor, Tensor]:
    """The best path of each sequence: ``paths`` ``(B, T)`` int64, ``-1`` past each length,
    and ``scores`` ``(B,)``. Equal to `hybrid.structured.viterbi`."""
    paths, scores = chain_kbest(emissions, lengths, transitions, start, end, 1)
    return paths[:, 0], scores[:, 0]


# ------------------------------------------------------------------------------ log semiring
def _log_step(
    carry: Tensor,
    emission: Tensor,
    inside: Tensor,
    first: Tensor,
    weights: Tensor,
    peak: Tensor,
    initial: Tensor,
) -> Tensor:
    """``carry[j] = logsumexp_i(carry[i] + transitions[i, j]) + emission[j]``, or
    ``initial + emission`` at a sequence's first step; unchanged outside the sequence.

    The sum is a matrix product in linear space, shifted by each row's largest ``carry`` and
    by ``peak``, the largest transition (``weights = exp(transitions - peak)``): a prefix
    that scores more than the dtype's exponent range (745 nats in float64) below the best
    one into the same state counts as impossible."""
    top = carry.amax(1, keepdim=True)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    moved = torch.log(torch.exp(carry - top) @ weights) + top + peak
    new = torch.where(first.unsqueeze(1), initial, moved) + emission
    return torch.where(inside.unsqueeze(1), new, carry)


@torch.jit.unused
def _log_scan(
    emissions: Tensor,
    inside: Tensor,
    first: Tensor,
    carry: Tensor,
    weights: Tensor,
    peak: Tensor,
    initial: Tensor,
    reverse: bool,
) -> Tensor:
    from torch._higher_order_ops.scan import scan

    def step(carry: Tensor, xs: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        carry = _log_step(carry, xs[0], xs[1], xs[2], weights, peak, initial)
        return carry, carry.clone()

    return scan(step, carry, (emissions, inside, first), reverse=reverse)[1]


def _log_sweep(
    emissions: Tensor,
    inside: Tensor,
    first: Tensor,
    transitions: Tensor,
    initial: Tensor,
    reverse: bool,
) -> Tensor:
    """Every step's carry of `_log_step` over time-major inputs, ``(T, B, K)``."""
    carry = torch.zeros_like(emissions[0])
    peak = transitions.amax((0, 1))
    peak = torch.where(torch.isinf(peak), torch.zeros_like(peak), peak)
    weights = torch.exp(transitions - peak)
    if not torch.jit.is_scripting() and _exporting():
        return _log_scan(emissions, inside, first, carry, weights, peak, initial, reverse)
    sweep = torch.empty_like(emissions)
    steps = emissions.shape[0]
    for i in range(steps):
        t = steps - 1 - i if reverse else i
        carry = _log_step(carry, emissions[t], inside[t], first[t], weights, peak, initial)
        sweep[t] = carry
    return sweep


def _forward(
    emissions: Tensor,
    lengths: Tensor,
    inside: Tensor,
    first: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
) -> tuple[Tensor, Tensor]:
    """The forward sweep ``alpha`` ``(T, B, K)`` over time-major inputs and the
    log-partition ``(B,)``."""
    alpha = _log_sweep(emissions, inside, first, transitions, start, False)
    index = (lengths - 1).view(1, -1, 1).expand(1, alpha.shape[1], alpha.shape[2])
    return alpha, _logsumexp(alpha.gather(0, index)[0] + end, 1)


def chain_log_partition(
    emissions: Tensor, lengths: Tensor, transitions: Tensor, start: Tensor, end: Tensor
) -> Tensor:
    """The log-partition ``(B,)`` of `chain_marginals` (summed in float64, returned in the
    emissions' dtype; ``-inf`` for a sequence with no allowed path), from the forward sweep
    alone."""
    dtype = emissions.dtype
    emissions, inside, first = _time_major(emissions.double(), lengths)
    _, log_partition = _forward(
        emissions, lengths, inside, first, transitions.double(), start.double(), end.double()
    )
    return log_partition.to(dtype)


def chain_marginals(
    emissions: Tensor, lengths: Tensor, transitions: Tensor, start: Tensor, end: Tensor
) -> tuple[Tensor, Tensor]:
    """Posterior marginals and log-partition (forward-backward), in float64 whatever the
    inputs' dtype, returned in the emissions' dtype.

    The backward pass runs the forward recurrence on the transposed transitions from each
    sequence's last step, carrying ``beta_t + emissions_t``. A prefix or suffix more than
    745 nats below the best one into the same state counts as impossible (see `_log_step`):
    float32 would drop those under 100 nats.

    Returns:
        ``marginals`` ``(B, T, K)`` (rows sum to 1 inside each length, 0 past it) and
        ``log_partition`` ``(B,)``. Equal to `hybrid.structured.marginals` and
        `hybrid.structured.log_partition`, except that a sequence with no allowed path gets
        zero marginals and a log-partition of ``-inf`` where those raise ``ValueError``.
    """
    dtype = emissions.dtype
    emissions, transitions = emissions.double(), transitions.double()
    start, end = start.double(), end.double()
    steps = emissions.shape[1]
    emissions, inside, first = _time_major(emissions, lengths)
    alpha, log_partition = _forward(emissions, lengths, inside, first, transitions, start, end)
    last = torch.arange(steps, device=emissions.device).unsqueeze(1) == lengths - 1
    ahead = _log_sweep(emissions, inside, last, transitions.t(), end, True)  # beta + emission
    # no path through (t, k): its prefix or its suffix is impossible (this also avoids
    # -inf - -inf where an emission is -inf, and covers sequences with no path at all)
    through = inside.unsqueeze(2) & ~torch.isneginf(alpha) & ~torch.isneginf(ahead)
    posterior = torch.exp(alpha + ahead - emissions - log_partition.view(1, -1, 1))
    posterior = torch.where(through, posterior, torch.zeros_like(posterior))
    return posterior.transpose(0, 1).to(dtype), log_partition.to(dtype)


# ----------------------------------------------------------------------------------- graphs
def _prune(alpha: Tensor, beam: float) -> Tensor:
    """``alpha`` with the states scoring below each row's best minus ``beam`` set to ``-inf``
    (``beam = inf``: none)."""
    return alpha.masked_fill(alpha < alpha.amax(1, keepdim=True) - beam, float("-inf"))


def _graph_step(
    alpha: Tensor,
    frame: Tensor,
    inside: Tensor,
    src: Tensor,
    dst: Tensor,
    emission: Tensor,
    weight: Tensor,
    beam: float,
) -> tuple[Tensor, Tensor]:
    """One frame of Viterbi over arcs: the next ``alpha`` ``(B, S)`` (pruned to ``beam``)
    and, per state, the lowest-numbered best incoming arc (int32, ``A`` where none)."""
    num_arcs = src.shape[0]
    arcs = torch.arange(num_arcs, dtype=torch.int32, device=alpha.device)
    arcs = arcs.expand(alpha.shape[0], num_arcs)
    targets = dst.expand(alpha.shape[0], num_arcs)
    candidates = alpha.index_select(1, src) + weight + frame.index_select(1, emission)
    best = torch.full_like(alpha, float("-inf")).scatter_reduce(1, targets, candidates, "amax")
    winner = (candidates == best.gather(1, targets)) & (candidates > float("-inf"))
    first = torch.where(winner, arcs, torch.full_like(arcs, num_arcs))
    back = torch.full(alpha.shape, num_arcs, dtype=torch.int32, device=alpha.device)
    back = back.scatter_reduce(1, targets, first, "amin")
    return torch.where(inside.unsqueeze(1), _prune(best, beam), alpha), back


def _graph_trace_step(
    state: Tensor, back: Tensor, inside: Tensor, src: Tensor
) -> tuple[Tensor, Tensor]:
    """Follow each sequence's state one frame back; emit the arc taken (``-1`` outside)."""
    arc = back.gather(1, state.unsqueeze(1)).squeeze(1).long().clamp(max=src.shape[0] - 1)
    previous = torch.where(inside, src.index_select(0, arc), state)
    return previous, torch.where(inside, arc, torch.full_like(arc, -1))


@torch.jit.unused
def _graph_scan(
    scores: Tensor, inside: Tensor, alpha: Tensor, src: Tensor, dst: Tensor, emission: Tensor,
    weight: Tensor, beam: float,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    from torch._higher_order_ops.scan import scan

    def step(carry: Tensor, xs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        alpha, back = _graph_step(carry, xs[0], xs[1], src, dst, emission, weight, beam)
        return alpha.clone(), back

    return scan(step, alpha, (scores, inside))


@torch.jit.unused
def _graph_trace_scan(state: Tensor, back: Tensor, inside: Tensor, src: Tensor) -> Tensor:
    from torch._higher_order_ops.scan import scan

    def step(carry: Tensor, xs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        previous, arc = _graph_trace_step(carry, xs[0], xs[1], src)
        return previous.clone(), arc

    return scan(step, state, (back, inside), reverse=True)[1]


def graph_viterbi(
    scores: Tensor,
    lengths: Tensor,
    src: Tensor,
    dst: Tensor,
    emission: Tensor,
    weight: Tensor,
    start: Tensor,
    final: Tensor,
    beam: float = float("inf"),
) -> tuple[Tensor, Tensor]:
    """Viterbi over a compiled graph's arcs (the fields of `hybrid.structured.Graph`): the
    eager engine of `hybrid.structured.graph_viterbi`, and its exportable form.

    Args:
        scores: ``(B, T, E)`` frame scores.
        lengths: ``(B,)`` frames per sequence.
        src: ``(A,)`` int64 source state of each arc.
        dst: ``(A,)`` int64 destination state of each arc.
        emission: ``(A,)`` int64 column of ``scores`` each arc reads.
        weight: ``(A,)`` arc log weights.
        start: ``(S,)`` log weights of starting in each state.
        final: ``(S,)`` log weights of ending in each state.
        beam: After each frame, drop the states scoring below the best minus ``beam``
            (``inf``: exact Viterbi).

    Returns:
        ``arcs`` ``(B, T)`` int64, the arc taken at each frame (``-1`` past each length and
        for a sequence with no path), and the best scores ``(B,)`` (``-inf``: no path).
    """
    batch, steps, _ = scores.shape
    scores = scores.transpose(0, 1)
    inside = torch.arange(steps, device=scores.device).unsqueeze(1) < lengths
    alpha = _prune(start.to(scores.dtype).expand(batch, start.shape[0]).contiguous(), beam)
    weight = weight.to(scores.dtype)
    if not torch.jit.is_scripting() and _exporting():
        alpha, back = _graph_scan(scores, inside, alpha, src, dst, emission, weight, beam)
    else:
        back = torch.empty((steps, batch, start.shape[0]), dtype=torch.int32, device=scores.device)
        for t in range(steps):
            alpha, back[t] = _graph_step(
                alpha, scores[t], inside[t], src, dst, emission, weight, beam
            )
    best, state = (alpha + final.to(scores.dtype)).max(1)
    inside = inside & (best > float("-inf"))
    if not torch.jit.is_scripting() and _exporting():
        arcs = _graph_trace_scan(state, back, inside, src)
    else:
        arcs = torch.empty((steps, batch), dtype=torch.long, device=scores.device)
        for t in range(steps - 1, -1, -1):
            state, arcs[t] = _graph_trace_step(state, back[t], inside[t], src)
    return arcs.t(), best


def pack_left(values: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Left-align the kept entries of each row.

    Args:
        values: ``(B, T)`` int64.
        keep: ``(B, T)`` bool.

    Returns:
        ``(B, T)`` with each row's kept values first, in order, then ``-1``; and the counts
        ``(B,)``. The width stays ``T`` so that it does not depend on the data.
    """
    batch, steps = values.shape
    position = keep.long().cumsum(1) - 1
    slot = torch.where(keep, position, torch.full_like(position, steps))
    packed = torch.full((batch, steps + 1), -1, dtype=values.dtype, device=values.device)
    return packed.scatter(1, slot, values)[:, :steps], keep.sum(1)


# ------------------------------------------------------------------------------ trees (CKY)
def _cky_step(best: Tensor, width: Tensor, own: Tensor) -> tuple[Tensor, Tensor]:
    """Fill the best scores of the spans of one ``width``.

    ``best`` ``(N, B, S)`` holds at row ``w - 1``, position ``i``, the best score of a tree
    over the span ``[i, i + w)`` (``-inf`` where not filled); ``own`` ``(B, S)`` the best
    label score of each span of this width by its start. Returns the next ``best`` and the
    left width of each span's best split ``(B, S)`` (ties: the leftmost; 0 for single
    words). Every other size comes from ``best``'s shape, so that an exported scan sees one
    set of sizes.
    """
    size = best.shape[2]
    splits = torch.arange(1, best.shape[0] + 1, device=best.device)  # left widths k
    starts = torch.arange(size, device=best.device)
    valid = (splits < width).view(-1, 1, 1)
    right_rows = (width - splits - 1).clamp(min=0)  # the right child [i + k, i + width)
    right_starts = (starts.unsqueeze(0) + splits.unsqueeze(1)).clamp(max=size - 1)  # (N, S)
    right = best.index_select(0, right_rows)
    right = right.gather(2, right_starts.unsqueeze(1).expand(-1, best.shape[1], -1))
    # row k - 1 of best is the left child [i, i + k)
    pairs = torch.where(valid, best + right, torch.full_like(best, float("-inf")))
    split_score, split = pairs.max(0)
    single = width == 1
    split_score = torch.where(single, torch.zeros_like(split_score), split_score)
    row = (splits == width).view(-1, 1, 1)
    best = torch.where(row, (own + split_score).unsqueeze(0), best)
    return best, torch.where(single, torch.zeros_like(split), split + 1)


def _cky_pop(
    stack: Tensor, top: Tensor, splits: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Pop each sequence's top span ``[i, j)`` off ``stack`` ``(B, 2N, 2)`` (``top``: its
    height ``(B,)``), push its children (right, then left, so that the left comes next) and
    emit ``[i, j, label]`` (``-1`` rows for an empty stack). ``splits`` and ``labels``
    ``(N, B, S)``: each span's left width and label, by width."""
    batch, depth, _ = stack.shape
    live = top > 0
    index = (top - 1).clamp(min=0)
    span = stack.gather(1, index.view(-1, 1, 1).expand(-1, 1, 2)).squeeze(1)  # (B, 2)
    start, end = span[:, 0], span[:, 1]
    row = (end - start - 1).clamp(min=0)
    rows = torch.arange(batch, device=stack.device)
    label = labels[row, rows, start]
    middle = start + splits[row, rows, start]
    parent = live & (end - start > 1)
    children = torch.stack(
        [torch.stack([middle, end], 1), torch.stack([start, middle], 1)], 1
    )  # (B, 2, 2): right, then left
    slots = torch.arange(depth, device=stack.device).unsqueeze(0)
    stack = torch.where(
        (parent.unsqueeze(1) & (slots == index.unsqueeze(1))).unsqueeze(2),
        children[:, 0].unsqueeze(1),
        stack,
    )
    stack = torch.where(
        (parent.unsqueeze(1) & (slots == index.unsqueeze(1) + 1)).unsqueeze(2),
        children[:, 1].unsqueeze(1),
        stack,
    )
    top = torch.where(parent, top + 1, torch.where(live, top - 1, top))
    emitted = torch.stack([start, end, label], 1)
    emitted = torch.where(live.unsqueeze(1), emitted, torch.full_like(emitted, -1))
    return stack, top, emitted


@torch.jit.unused
def _cky_scan(best: Tensor, widths: Tensor, labelled: Tensor) -> tuple[Tensor, Tensor]:
    from torch._higher_order_ops.scan import scan

    def step(carry: Tensor, xs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        best, split = _cky_step(carry, xs[0], xs[1])
        return best.clone(), split

    return scan(step, best, (widths, labelled))


@torch.jit.unused
def _cky_trace_scan(
    stack: Tensor, top: Tensor, steps: Tensor, splits: Tensor, labels: Tensor
) -> Tensor:
    from torch._higher_order_ops.scan import scan

    def step(carry: tuple[Tensor, Tensor], _: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        stack, top, emitted = _cky_pop(carry[0], carry[1], splits, labels)
        return (stack.clone(), top.clone()), emitted

    return scan(step, (stack, top), steps)[1]


def cky(scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """The best labelled binary tree of each sequence, as `hybrid.structured.cky`.

    Args:
        scores: ``(B, N + 1, N + 1, L)`` span scores, ``scores[b, i, j, label]`` for the span
            of words ``[i, j)``.
        lengths: ``(B,)`` int64 words per sequence, in ``[1, N]``.

    Returns:
        ``spans`` ``(B, 2N - 1, 3)`` int64 rows ``[i, j, label]`` in preorder (by start, then
        by decreasing end; ``-1`` past each sequence's ``2n - 1`` spans, and for a sequence
        with no tree), and the best scores ``(B,)`` (``-inf``: no tree). Ties keep the
        smallest label and the leftmost split.
    """
    batch, size = scores.shape[0], scores.shape[1]
    words = size - 1
    device = scores.device
    label_score, label = scores.max(-1)  # (B, S, S)
    starts = torch.arange(size, device=device)
    widths = torch.arange(1, words + 1, device=device)
    ends = (starts.unsqueeze(0) + widths.unsqueeze(1)).clamp(max=words)  # (N, S)
    rows = ends.unsqueeze(1).expand(-1, batch, -1)  # spans [i, i + w) by width
    inside = (starts.unsqueeze(0) + widths.unsqueeze(1) <= words).unsqueeze(1)
    by_width = label_score.unsqueeze(0).expand(words, -1, -1, -1)
    labelled = by_width.gather(3, rows.unsqueeze(3)).squeeze(3)  # (N, B, S)
    labelled = torch.where(inside, labelled, torch.full_like(labelled, float("-inf")))
    labels = label.unsqueeze(0).expand(words, -1, -1, -1)
    labels = labels.gather(3, rows.unsqueeze(3)).squeeze(3)
    best = torch.full((words, batch, size), float("-inf"), dtype=scores.dtype, device=device)
    if not torch.jit.is_scripting() and _exporting():
        best, splits = _cky_scan(best, widths, labelled)
    else:
        splits = torch.zeros((words, batch, size), dtype=torch.long, device=device)
        for w in range(words):
            best, splits[w] = _cky_step(best, widths[w], labelled[w])
    batch_index = torch.arange(batch, device=device)
    total = best[lengths - 1, batch_index, torch.zeros_like(lengths)]
    found = total > float("-inf")
    stack = torch.zeros((batch, 2 * words, 2), dtype=torch.long, device=device)
    stack = torch.where(
        (torch.arange(2, device=device) == 1).view(1, 1, 2)
        & (torch.arange(2 * words, device=device) == 0).view(1, -1, 1),
        lengths.view(-1, 1, 1),
        stack,
    )
    top = found.long()
    steps = torch.arange(2 * words - 1, device=device)
    if not torch.jit.is_scripting() and _exporting():
        spans = _cky_trace_scan(stack, top, steps, splits, labels)
    else:
        spans = torch.empty((2 * words - 1, batch, 3), dtype=torch.long, device=device)
        for t in range(2 * words - 1):
            stack, top, spans[t] = _cky_pop(stack, top, splits, labels)
    return spans.transpose(0, 1), total
