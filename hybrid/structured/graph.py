"""Sparse decoding graphs: exact Viterbi, beam-pruned Viterbi and the log-sum forward.

A `Graph` is a weighted automaton whose arcs each consume one frame. Arc ``a`` goes from
state ``src[a]`` to ``dst[a]``, reads column ``emission[a]`` of the frame scores, adds
``weight[a]`` and optionally writes the output ``label[a]`` (``-1``: none). A path over
``T`` frames is a chain of ``T`` arcs from a start state to a final state; its score is::

    start[src(a_1)] + sum_t (weight[a_t] + scores[t, emission[a_t]]) + final[dst(a_T)]

This covers HMMs (one state per HMM state, arcs into state ``j`` read ``j``'s emission
column; `Graph.from_chain`), left-to-right and banded topologies, and decoding graphs
composed of many small models, where several states share one emission column.

Graphs are built and inspected as `networkx` graphs (`Graph.from_networkx`,
`Graph.to_networkx`) and compiled once into tensors, arcs sorted by source state. Each
frame relaxes only the arcs that leave the states still alive, so a left-to-right or banded
graph costs ``O(T * arcs)`` rather than ``O(T * states^2)``.

Scores follow the library's contract: ``(B, T, E)`` log-space floats, batch first, right
padded, with ``lengths`` ``(B,)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import networkx as nx
import torch
from torch import Tensor

from . import native, portable
from ._inputs import (
    _check_tensor,
    _has_nan_or_posinf,
    computation_dtype,
    finite_range,
    narrow,
    promoted_dtype,
    resolve_lengths,
)

_NEG_INF = float("-inf")


def _index_tensor(name: str, x: Any, size: int | None = None) -> Tensor:
    x = _check_tensor(name, torch.as_tensor(x))
    if x.dtype == torch.bool or x.is_floating_point() or x.is_complex() or x.dim() != 1:
        raise ValueError(f"{name} must be a 1-D integer tensor, got {x.dtype} {tuple(x.shape)}")
    if size is not None and x.shape[0] != size:
        raise ValueError(f"{name} must have shape (A,) = ({size},), got {tuple(x.shape)}")
    return x.long()


def _weight_tensor(name: str, x: Any, size: int, what: str) -> Tensor:
    x = _check_tensor(name, torch.as_tensor(x))
    if not x.is_floating_point():
        x = x.double()
    if tuple(x.shape) != (size,):
        raise ValueError(f"{name} must have shape {what} = ({size},), got {tuple(x.shape)}")
    if _has_nan_or_posinf(x):
        raise ValueError(f"{name} contains NaN or +inf; weights must be finite or -inf")
    return x


@dataclass(frozen=True, eq=False)
class Graph:
    """A compiled decoding graph (see the module docstring for the path score).

    Attributes:
        src: ``(A,)`` int64 source state of each arc, arcs sorted by source state.
        dst: ``(A,)`` int64 destination state.
        emission: ``(A,)`` int64 column of the frame scores the arc reads.
        weight: ``(A,)`` float log weight (``-inf``: the arc is never taken).
        label: ``(A,)`` int64 output label, ``-1`` for none.
        start: ``(S,)`` float log weight of starting in each state (``-inf``: not a start).
        final: ``(S,)`` float log weight of ending in each state (``-inf``: not final).
        num_emissions: ``E``: frame scores must have at least this many columns.
        out_offsets: ``(S + 1,)`` int64: the arcs leaving state ``s`` are
            ``out_offsets[s]:out_offsets[s + 1]``.
        in_offsets: ``(S + 1,)`` int64: the arcs entering state ``s`` are
            ``in_arcs[in_offsets[s]:in_offsets[s + 1]]``.
        in_arcs: ``(A,)`` int64 arc indices grouped by destination, in arc order.
        names: The networkx node of each state, or ``None`` for states ``0..S-1``.
    """

    src: Tensor
    dst: Tensor
    emission: Tensor
    weight: Tensor
    label: Tensor
    start: Tensor
    final: Tensor
    num_emissions: int
    out_offsets: Tensor
    in_offsets: Tensor
    in_arcs: Tensor
    names: tuple | None = None

    @classmethod
    def build(
        cls,
        src: Any,
        dst: Any,
        emission: Any,
        start: Any,
        final: Any,
        weight: Any = None,
        label: Any = None,
        num_emissions: int | None = None,
        names: tuple | None = None,
    ) -> Graph:
        """Validate arcs and state weights and compile them (arcs sorted by source state).

        Args:
            src: ``(A,)`` integer source state of each arc.
            dst: ``(A,)`` integer destination state of each arc.
            emission: ``(A,)`` integer column of the frame scores each arc reads.
            start: ``(S,)`` log weights of starting in each state (``-inf``: not a start).
            final: ``(S,)`` log weights of ending in each state (``-inf``: not final).
            weight: ``(A,)`` log weights, zeros if ``None``.
            label: ``(A,)`` output labels (``-1``: none), all ``-1`` if ``None``.
            num_emissions: ``E``; default ``max(emission) + 1``.
            names: Optional name of each state.

        Raises:
            ValueError: Empty graph, indices out of range, NaN weights, no start or final
                state, or no final state reachable from a start state.
        """
        if len(src) == 0:
            raise ValueError("the graph is empty: it needs at least one arc")
        src = _index_tensor("src", src)
        arcs = src.shape[0]
        dst = _index_tensor("dst", dst, arcs)
        emission = _index_tensor("emission", emission, arcs)
        start = _check_tensor("start", torch.as_tensor(start))
        if start.dim() != 1 or start.shape[0] == 0:
            raise ValueError(f"start must be a 1-D tensor (S,), got shape {tuple(start.shape)}")
        states = start.shape[0]
        start = _weight_tensor("start", start, states, "(S,)")
        final = _weight_tensor("final", final, states, "(S,)").to(start.dtype)
        weight = _weight_tensor(
            "weight",
            torch.zeros(arcs, dtype=start.dtype) if weight is None else weight,
            arcs,
            "(A,)",
        )
        label = _index_tensor("label", torch.full((arcs,), -1) if label is None else label, arcs)
        for name, x in (("src", src), ("dst", dst)):
            if (x < 0).any() or (x >= states).any():
                raise ValueError(f"{name} must hold states in [0, S) = [0, {states})")
        if (emission < 0).any():
            raise ValueError("emission must hold non-negative column indices")
        if (label < -1).any():
            raise ValueError("label must hold output labels >= 0, or -1 for none")
        needed = int(emission.max()) + 1
        if num_emissions is None:
            num_emissions = needed
        elif num_emissions < needed:
            raise ValueError(
                f"num_emissions must be > every emission index (max {needed - 1}), "
                f"got {num_emissions}"
            )
        if names is not None and len(names) != states:
            raise ValueError(f"names must name the {states} states, got {len(names)}")
        order = torch.sort(src, stable=True).indices
        src, dst, emission, weight, label = (x[order] for x in (src, dst, emission, weight, label))

        def offsets(index: Tensor) -> Tensor:
            counts = torch.bincount(index, minlength=states)
            return torch.cat([counts.new_zeros(1), counts.cumsum(0)])

        in_arcs = torch.sort(dst, stable=True).indices
        graph = cls(
            src,
            dst,
            emission,
            weight,
            label,
            start,
            final,
            int(num_emissions),
            offsets(src),
            offsets(dst),
            in_arcs,
            names,
        )
        graph._require_accepting_path()
        return graph

    @classmethod
    def from_networkx(cls, g: nx.DiGraph, num_emissions: int | None = None) -> Graph:
        """Compile a networkx (multi)digraph.

        Edges need an integer ``emission`` attribute and may have ``weight`` (log, default
        0) and ``label`` (default -1). Nodes may have ``start`` and ``final`` log weights;
        a node without one is not a start (final) state. States are numbered in node order.
        """
        if not isinstance(g, nx.DiGraph):
            raise ValueError(f"g must be a networkx DiGraph or MultiDiGraph, got {type(g)}")
        names = tuple(g.nodes)
        index = {name: i for i, name in enumerate(names)}
        src, dst, emission, weight, label = [], [], [], [], []
        for u, v, data in g.edges(data=True):
            if "emission" not in data:
                raise ValueError(f"edge {u!r} -> {v!r} has no 'emission' attribute")
            src.append(index[u])
            dst.append(index[v])
            emission.append(int(data["emission"]))
            weight.append(float(data.get("weight", 0.0)))
            label.append(int(data.get("label", -1)))
        start = torch.tensor(
            [g.nodes[n].get("start", _NEG_INF) for n in names], dtype=torch.float64
        )
        final = torch.tensor(
            [g.nodes[n].get("final", _NEG_INF) for n in names], dtype=torch.float64
        )
        return cls.build(
            src,
            dst,
            emission,
            start,
            final,
            torch.tensor(weight, dtype=torch.float64),
            label,
            num_emissions,
            names,
        )

    @classmethod
    def from_chain(
        cls, transitions: Tensor, start: Tensor | None = None, end: Tensor | None = None
    ) -> Graph:
        """The graph of a linear chain (an HMM): state ``j`` reads emission column ``j``.

        States ``0..K-1`` are the chain's states and state ``K`` is an initial state with one
        arc to each ``j`` (weight ``start[j]``). Forbidden transitions (``-inf``) get no
        arc, so a banded ``(K, K)`` matrix compiles to a banded graph. Paths of the graph
        and of the chain correspond one to one, with equal scores; the graph's
        destination states are the chain's states.

        Args:
            transitions: ``(K, K)`` log scores ``[from, to]``.
            start: ``(K,)`` log scores of the first state (zeros if ``None``).
            end: ``(K,)`` log scores of the last state (zeros if ``None``).
        """
        transitions = _check_tensor("transitions", transitions)
        if transitions.dim() != 2 or transitions.shape[0] != transitions.shape[1]:
            raise ValueError(f"transitions must be (K, K), got {tuple(transitions.shape)}")
        k = transitions.shape[0]
        start = transitions.new_zeros(k) if start is None else start
        end = transitions.new_zeros(k) if end is None else end
        src, dst = torch.nonzero(transitions > _NEG_INF, as_tuple=True)
        states = torch.arange(k)
        neg = transitions.new_full((1,), _NEG_INF)
        return cls.build(
            torch.cat([torch.full((k,), k), src]),
            torch.cat([states, dst]),
            torch.cat([states, dst]),
            torch.cat([neg.expand(k), transitions.new_zeros(1)]),
            torch.cat([end, neg]),
            weight=torch.cat([start, transitions[src, dst]]),
            num_emissions=k,
        )

    @property
    def num_states(self) -> int:
        """``S``."""
        return self.start.shape[0]

    @property
    def num_arcs(self) -> int:
        """``A``."""
        return self.src.shape[0]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on ``device`` with float weights in ``dtype`` (either may be ``None``)."""
        moved = {}
        for field in fields(self):
            x = getattr(self, field.name)
            if isinstance(x, Tensor):
                moved[field.name] = x.to(device, dtype if x.is_floating_point() else None)
        return replace(self, **moved)

    def to_networkx(self) -> nx.MultiDiGraph:
        """The graph as a `networkx.MultiDiGraph` with the attributes `from_networkx` reads."""
        names = self.names or tuple(range(self.num_states))
        g = nx.MultiDiGraph()
        for i, name in enumerate(names):
            attrs = {}
            for key, value in (("start", self.start[i]), ("final", self.final[i])):
                if value > _NEG_INF:
                    attrs[key] = float(value)
            g.add_node(name, **attrs)
        for a in range(self.num_arcs):
            g.add_edge(
                names[int(self.src[a])],
                names[int(self.dst[a])],
                emission=int(self.emission[a]),
                weight=float(self.weight[a]),
                label=int(self.label[a]),
            )
        return g

    def _require_accepting_path(self) -> None:
        usable = (self.weight > _NEG_INF).tolist()
        dst, offsets = self.dst.tolist(), self.out_offsets.tolist()
        starts = torch.nonzero(self.start > _NEG_INF).flatten().tolist()
        finals = set(torch.nonzero(self.final > _NEG_INF).flatten().tolist())
        if not starts:
            raise ValueError("start has no state with a weight above -inf: no path can begin")
        if not finals:
            raise ValueError("final has no state with a weight above -inf: no path can end")

        def successors(state: int) -> list[int]:
            arcs = range(offsets[state], offsets[state + 1])
            return [dst[a] for a in arcs if usable[a]]

        # a path has at least one arc: one search from all the starts' successors together
        reached = {d for s in starts for d in successors(s)}
        stack = list(reached)
        while stack:
            for d in successors(stack.pop()):
                if d not in reached:
                    reached.add(d)
                    stack.append(d)
        if not reached & finals:
            raise ValueError("no final state can be reached from a start state")


class GraphPath(NamedTuple):
    """The best path of each sequence through a graph.

    Attributes:
        arcs: ``(B, T)`` int64 arc taken at each frame, ``-1`` past each length.
        states: ``(B, T)`` int64 state reached after each frame (``dst`` of the arc).
        emissions: ``(B, T)`` int64 emission column read at each frame (the alignment).
        labels: ``(B, L)`` int64 output labels along the path, ``-1`` padded.
        label_lengths: ``(B,)`` int64 number of output labels.
        scores: ``(B,)`` path scores.
    """

    arcs: Tensor
    states: Tensor
    emissions: Tensor
    labels: Tensor
    label_lengths: Tensor
    scores: Tensor


def _prepare(
    scores: Tensor, graph: Graph, lengths: Tensor | None
) -> tuple[Tensor, Tensor, torch.dtype]:
    """Validate the scores ``(B, T, E)`` and lengths of a graph function.

    Returns:
        The scores in the dtype to compute in, ``(B,)`` int64 lengths, and the dtype of the
        results: the scores' (float32 for float16 and bfloat16). Scores large enough for a
        path's sum to overflow that dtype are computed in float64 (`computation_dtype`).
    """
    scores = _check_tensor("scores", scores)
    if not isinstance(graph, Graph):
        raise ValueError(f"graph must be a hybrid.structured.Graph, got {type(graph).__name__}")
    if scores.dim() != 3 or 0 in scores.shape[:2]:
        raise ValueError(
            f"scores must have shape (B, T, E) with B, T >= 1, got {tuple(scores.shape)}"
        )
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got {scores.dtype}")
    if scores.shape[-1] < graph.num_emissions:
        raise ValueError(
            f"scores must have at least E = {graph.num_emissions} columns (the graph's "
            f"emissions), got shape {tuple(scores.shape)}"
        )
    if graph.src.device != scores.device:
        raise ValueError(f"graph is on {graph.src.device} but scores are on {scores.device}")
    finite = finite_range(scores)
    if finite is None:
        raise ValueError("scores contains NaN or +inf; scores must be finite or -inf")
    dtype = promoted_dtype(scores.dtype)
    batch, steps, _ = scores.shape
    lengths = resolve_lengths(lengths, batch, steps, scores.device)
    weights = {f"graph.{name}": getattr(graph, name) for name in ("weight", "start", "final")}
    ranges = {name: finite_range(x) for name, x in weights.items()}
    per_step = {"scores": finite, "graph.weight": ranges.pop("graph.weight")}
    wide = computation_dtype(dtype, int(lengths.max()), per_step, ranges)
    return scores.to(wide), lengths, dtype


def _require_paths(scores: Tensor, what: str, hint: str = "") -> None:
    missing = torch.nonzero(scores == _NEG_INF).flatten().tolist()
    if missing:
        raise ValueError(
            f"{what}: no path of the given length from a start to a final state for "
            f"sequences {missing[:10]}{' ...' if len(missing) > 10 else ''}{hint}"
        )


def graph_viterbi(
    scores: Tensor, graph: Graph, lengths: Tensor | None = None, beam: float | None = None
) -> GraphPath:
    """The best path of each sequence through ``graph`` (exact, or beam-pruned).

    Args:
        scores: ``(B, T, E)`` frame scores (log-likelihoods or log-posteriors).
        graph: A compiled `Graph` on the same device.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        beam: ``None`` for exact Viterbi; else after each frame the states scoring below the
            frame's best minus ``beam`` are dropped (token passing with a beam, as in
            speech decoders): faster on large graphs, and the result may not be the best.

    Returns:
        A `GraphPath`.

    Raises:
        ValueError: Bad shapes or values, or a sequence with no path (for a pruned search
            the error says to widen the beam).
    """
    scores, lengths, dtype = _prepare(scores, graph, lengths)
    if beam is not None and not beam > 0:
        raise ValueError(f"beam must be a positive number or None, got {beam}")
    with torch.no_grad():
        if native.available(scores, graph.weight):
            arcs, best = native.graph_viterbi(
                scores, lengths, graph, float("inf") if beam is None else float(beam)
            )
        else:
            arcs, best = portable.graph_viterbi(
                scores,
                lengths,
                graph.src,
                graph.dst,
                graph.emission,
                graph.weight,
                graph.start,
                graph.final,
                float("inf") if beam is None else float(beam),
            )
    _require_paths(best, "graph_viterbi", "" if beam is None else "; try a wider beam")
    taken = arcs >= 0
    safe = arcs.clamp(min=0)

    def per_frame(x: Tensor) -> Tensor:
        return torch.where(taken, x[safe], -1)

    frame_labels = per_frame(graph.label)
    labels, label_lengths = portable.pack_left(frame_labels, frame_labels >= 0)
    labels = labels[:, : int(label_lengths.max())]
    best = narrow(best, dtype, "best path score", "scores")
    return GraphPath(
        arcs, per_frame(graph.dst), per_frame(graph.emission), labels, label_lengths, best
    )


def graph_log_likelihood(scores: Tensor, graph: Graph, lengths: Tensor | None = None) -> Tensor:
    """Log of the summed exponentiated scores of all paths (the forward algorithm).

    Differentiable with respect to ``scores`` and the graph's float tensors; the gradient
    with respect to ``scores`` is `graph_posteriors`.

    Args:
        scores: ``(B, T, E)``.
        graph: A compiled `Graph` on the same device.
        lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.

    Returns:
        ``(B,)`` log-likelihoods.

    Raises:
        ValueError: Bad input, or a sequence with no path.
    """
    total, dtype = _forward(scores, graph, lengths)
    return narrow(total, dtype, "log-likelihood", "scores")


def _forward(scores: Tensor, graph: Graph, lengths: Tensor | None) -> tuple[Tensor, torch.dtype]:
    """`graph_log_likelihood` in the dtype it is computed in, and the dtype of the results."""
    scores, lengths, dtype = _prepare(scores, graph, lengths)
    batch = scores.shape[0]
    dst = graph.dst.expand(batch, -1)
    weight = graph.weight.to(scores.dtype)
    alpha = graph.start.to(scores.dtype).expand(batch, -1)
    for t in range(scores.shape[1]):
        cand = alpha[:, graph.src] + weight + scores[:, t, graph.emission]
        with torch.no_grad():
            shift = cand.new_full(alpha.shape, _NEG_INF).scatter_reduce(1, dst, cand, "amax")
            shift = torch.where(shift > _NEG_INF, shift, 0.0)
        mass = torch.zeros_like(alpha).scatter_add(1, dst, torch.exp(cand - shift.gather(1, dst)))
        reached = mass > 0
        summed = torch.where(reached, torch.log(torch.where(reached, mass, 1.0)) + shift, _NEG_INF)
        alpha = torch.where((t < lengths)[:, None], summed, alpha)
    total = torch.logsumexp(alpha + graph.final.to(scores.dtype), -1)
    _require_paths(total.detach(), "graph_log_likelihood")
    return total, dtype


def graph_posteriors(scores: Tensor, graph: Graph, lengths: Tensor | None = None) -> Tensor:
    """Posterior probability of each emission column at each frame, ``(B, T, E)``.

    Entry ``[b, t, e]`` is the total probability of the paths that read column ``e`` at frame
    ``t``; each frame inside a sequence sums to 1, frames past its length are 0 (the state
    occupancies of Baum-Welch when states and columns coincide). They come in the scores'
    dtype, float32 for float16 and bfloat16 scores (promoted for the DP, as everywhere).
    """
    scores = _check_tensor("scores", scores)
    # An integer tensor cannot require a gradient, and _prepare refuses it with a message.
    leaf = scores.detach().to(promoted_dtype(scores.dtype))
    with torch.enable_grad():
        leaf.requires_grad_(leaf.is_floating_point())
        total, _ = _forward(leaf, graph, lengths)
        (grad,) = torch.autograd.grad(total.sum(), leaf)
    return grad
