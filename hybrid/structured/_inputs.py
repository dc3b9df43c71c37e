"""Validation and normalisation of linear-chain inputs (the tensor contract, in one place).

Every public function of `hybrid.structured` passes its arguments through
`prepare_chain` once. Bad input raises a ``ValueError`` that names the argument and the
shape or range it expected; nothing is broadcast or clipped silently.

Scores so large that a path's sum could overflow their dtype (float32 scores near ``1e38``)
are computed in float64 (`computation_dtype`); a result that does not fit the caller's dtype
raises (`narrow`) instead of turning into ``inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

_NEG_INF = float("-inf")
_HEADROOM = 16.0  # path-score bound kept this far below the dtype's largest finite value


class ChainConstraints(NamedTuple):
    """Which transitions, first states and last states a path may use (``True`` = allowed).

    Attributes:
        transitions: Bool tensor ``(K, K)`` indexed ``[from, to]``.
        start: Optional bool tensor ``(K,)``: states a path may start in (``None``: all).
        end: Optional bool tensor ``(K,)``: states a path may end in (``None``: all).

    A forbidden step contributes ``-inf`` to a path's score, so the path gets exactly zero
    probability in the partition function and the marginals and is never decoded.
    """

    transitions: Tensor
    start: Tensor | None = None
    end: Tensor | None = None


@dataclass
class Chain:
    """A validated linear-chain problem, trimmed to the longest sequence.

    Attributes:
        emissions: ``(B, T', K)`` float scores; positions past each length are zero.
        transitions: ``(K, K)`` scores ``[from, to]``, ``-inf`` where forbidden.
        start: ``(K,)`` scores of the first state, ``-inf`` where forbidden.
        end: ``(K,)`` scores of the last state, ``-inf`` where forbidden.
        lengths: ``(B,)`` int64 lengths, ``1 <= lengths <= T'``.
        total_length: ``T`` of the caller's emissions, used to pad outputs back.
        dtype: dtype of the results: the inputs' promoted dtype (float32 for float16 and
            bfloat16). The score tensors above may be wider (float64), see
            `computation_dtype`; `narrow` brings results back.
    """

    emissions: Tensor
    transitions: Tensor
    start: Tensor
    end: Tensor
    lengths: Tensor
    total_length: int
    dtype: torch.dtype

    @property
    def ragged(self) -> bool:
        """Whether some sequence is shorter than ``T'`` (else every mask is all True)."""
        return bool((self.lengths < self.emissions.shape[1]).any())

    @property
    def mask(self) -> Tensor:
        """``(B, T')`` bool: True inside each sequence."""
        return length_mask(self.lengths, self.emissions.shape[1])

    def pad_time(self, x: Tensor, dim: int, value: float) -> Tensor:
        """Append the ``T - T'`` trimmed steps to ``x`` along ``dim``, filled with ``value``."""
        missing = self.total_length - self.emissions.shape[1]
        if missing == 0:
            return x
        shape = list(x.shape)
        shape[dim] = missing
        return torch.cat([x, x.new_full(shape, value)], dim=dim)

    def narrow(self, x: Tensor, what: str) -> Tensor:
        """``x`` (``(B, ...)``, computed from this chain) in the result dtype; see `narrow`."""
        return narrow(x, self.dtype, what)


def length_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(B, steps)`` bool: True at ``t < lengths[b]`` (inside each right-padded sequence)."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def exporting() -> bool:
    """Whether ``torch.export`` (and so ``torch.onnx.export``) is recording a graph: loops
    over time are written as ``scan`` then, which the export keeps dynamic."""
    return torch.compiler.is_exporting()


def capturing() -> bool:
    """Whether ``torch.jit.trace`` or ``torch.export`` is recording a graph.

    Checks that read tensor values (ranges, prefix masks) are skipped then: a recorded graph
    cannot branch on values. An exported model trusts its inputs: `hybrid.deploy` builds
    them from the model's own vocabularies, so every index is in range. Shapes, dtypes and
    devices are still checked.
    """
    return torch.jit.is_tracing() or exporting()


def check_not_meta(x: Tensor, name: str) -> Tensor:
    """``x``; a ``ValueError`` naming ``name`` if it is a meta tensor (a shape without values,
    on which any check of its values, and any copy of it, fails)."""
    if x.is_meta:
        raise ValueError(
            f"{name} is a meta tensor: meta tensors carry no data; expected a tensor with "
            "values on a real device (cpu, cuda)"
        )
    return x


def _check_tensor(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return check_not_meta(x, name)


def promoted_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a dynamic program over scores of ``dtype`` returns: float32 for float16 and
    bfloat16 (too coarse for sums over a sequence), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def finite_range(x: Tensor) -> tuple[float, float] | None:
    """``(min(0, lowest), max(0, highest))`` over the finite entries of ``x``, or ``None`` if
    ``x`` holds a NaN or ``+inf``: one reduction (two when ``x`` holds ``-inf``, a legal
    score, whose finite entries are then measured alone)."""
    low, high = torch.stack(torch.aminmax(x.detach())).tolist()
    if math.isnan(low) or high == math.inf:  # aminmax propagates NaN to both
        return None
    if low == -math.inf:
        low, high = torch.stack(torch.aminmax(x.detach().nan_to_num(neginf=0.0))).tolist()
    return min(low, 0.0), max(high, 0.0)


def computation_dtype(
    dtype: torch.dtype,
    steps: int,
    per_step: dict[str, tuple[float, float]],
    once: dict[str, tuple[float, float]],
) -> torch.dtype:
    """The dtype in which a dynamic program over scores in these ranges cannot overflow.

    A path of ``steps`` steps takes one entry of each ``per_step`` tensor per step (emissions,
    transitions) and one entry of each ``once`` tensor (start, end weights), so its score lies
    within ``steps * sum(per_step) + sum(once)`` (range by range). The result is ``dtype``
    when that stays well inside its range, else float64. In float64, sums below its range
    are tolerated: they round to ``-inf``, a path of no probability, as with scores masked by
    ``torch.finfo(torch.float64).min``.

    Args:
        dtype: The inputs' (promoted) floating dtype.
        steps: The longest path, in steps.
        per_step: Argument name -> `finite_range` of a tensor a path reads every step.
        once: Argument name -> `finite_range` of a tensor a path reads once.

    Raises:
        ValueError: Positive path scores could overflow even float64; names the argument
            with the largest scores.
    """

    def bound(side: int) -> float:
        total = steps * sum(r[side] for r in per_step.values())
        return abs(total + sum(r[side] for r in once.values()))

    lowest, highest = bound(0), bound(1)
    if max(lowest, highest) <= torch.finfo(dtype).max / _HEADROOM:
        return dtype
    limit = torch.finfo(torch.float64).max / _HEADROOM
    if highest <= limit:
        return torch.float64
    ranges = {**per_step, **once}
    name = max(ranges, key=lambda key: ranges[key][1])
    raise ValueError(
        f"{name}: scores up to {ranges[name][1]:.3g} make a path of {steps} steps overflow even "
        f"float64; expected path scores below {limit:.3g}"
    )


def narrow(x: Tensor, dtype: torch.dtype, what: str, scores: str = "emissions") -> Tensor:
    """``x`` ``(B, ...)`` cast to the result ``dtype`` (differentiably), checked for overflow.

    Raises:
        ValueError: A finite value of ``x`` (the ``what`` of a batch item, e.g. its
            log-partition) is beyond the range of ``dtype``: the argument ``scores`` holds
            values too large in magnitude for that dtype.
    """
    if x.dtype == dtype:
        return x
    narrowed = x.to(dtype)
    overflow = torch.isinf(narrowed.detach()) & torch.isfinite(x.detach())
    if overflow.any():
        items = overflow.reshape(overflow.shape[0], -1).any(1).nonzero().flatten().tolist()
        worst = float(x.detach()[overflow].abs().max())
        raise ValueError(
            f"{scores}: the {what} of batch items {items[:10]} reaches {worst:.3g}, beyond the "
            f"range of {dtype} (largest {torch.finfo(dtype).max:.3g}); expected scores small "
            "enough for their dtype: scale them down, or pass float64 scores"
        )
    return narrowed


def _check_scores(name: str, x: Tensor, shape: tuple[int, ...], described: str) -> float:
    """Check shape, dtype and values of a score tensor; return its `finite_range`."""
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {described} = {shape}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    finite = finite_range(x)
    if finite is None:
        raise ValueError(f"{name} contains NaN or +inf; scores must be finite or -inf")
    return finite


def _has_nan_or_posinf(x: Tensor) -> bool:
    """True if ``x`` holds a NaN or +inf (one reduction in the common all-finite case)."""
    if torch.isfinite(x.detach().sum()):
        return False
    return bool((torch.isnan(x) | torch.isposinf(x)).any())


def resolve_lengths(lengths: Tensor | None, batch: int, steps: int, device) -> Tensor:
    """Turn ``lengths`` (``(B,)`` integers or a ``(B, T)`` boolean prefix mask) into int64 lengths.

    Args:
        lengths: ``None`` (every sequence has length ``T``), an integer tensor ``(B,)`` with
            ``1 <= lengths <= T``, or a boolean mask ``(B, T)`` that is ``True`` on a prefix of
            each row (right padding only).
        batch: ``B``.
        steps: ``T``.
        device: Device the result must live on.

    Returns:
        ``(B,)`` int64 tensor.
    """
    if lengths is None:
        return torch.full((batch,), steps, dtype=torch.long, device=device)
    lengths = _check_tensor("lengths", lengths)
    if lengths.device != torch.device(device):
        raise ValueError(f"lengths is on {lengths.device} but emissions are on {device}")
    if lengths.dtype == torch.bool:
        if tuple(lengths.shape) != (batch, steps):
            raise ValueError(
                f"lengths given as a mask must have shape (B, T) = {(batch, steps)}, "
                f"got {tuple(lengths.shape)}"
            )
        counts = lengths.sum(1)
        prefix = torch.arange(steps, device=device)[None, :] < counts[:, None]
        if not capturing() and not torch.equal(prefix, lengths):
            raise ValueError(
                "lengths given as a mask must be True on a prefix of each row (right padding); "
                "holes and left padding are not supported"
            )
        lengths = counts
    elif lengths.is_floating_point() or lengths.is_complex():
        raise ValueError(
            f"lengths must be an integer tensor (B,) or a bool mask, got {lengths.dtype}"
        )
    elif tuple(lengths.shape) != (batch,):
        raise ValueError(f"lengths must have shape (B,) = ({batch},), got {tuple(lengths.shape)}")
    lengths = lengths.long()
    if not capturing() and ((lengths < 1).any() or (lengths > steps).any()):
        raise ValueError(
            f"lengths must lie in [1, T] = [1, {steps}], got min {int(lengths.min())} "
            f"and max {int(lengths.max())}"
        )
    return lengths


def _constraint_mask(
    name: str, mask: Tensor | None, shape: tuple[int, ...], device
) -> Tensor | None:
    if mask is None:
        return None
    mask = _check_tensor(name, mask)
    if mask.dtype != torch.bool or tuple(mask.shape) != shape:
        raise ValueError(
            f"{name} must be a bool tensor of shape {shape}, got {mask.dtype} {tuple(mask.shape)}"
        )
    return mask.to(device)


def apply_constraints(
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    constraints: ChainConstraints | Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Set forbidden transitions, start and end states to ``-inf`` (differentiably).

    Args:
        transitions: ``(K, K)`` scores.
        start: ``(K,)`` scores.
        end: ``(K,)`` scores.
        constraints: `ChainConstraints`, a bare ``(K, K)`` bool tensor, or ``None``.

    Returns:
        The three score tensors with ``-inf`` where forbidden.
    """
    if constraints is None:
        return transitions, start, end
    if isinstance(constraints, Tensor):
        constraints = ChainConstraints(constraints)
    if not isinstance(constraints, ChainConstraints):
        raise ValueError(
            "constraints must be a ChainConstraints or a (K, K) bool tensor, "
            f"got {type(constraints).__name__}"
        )
    num_tags = transitions.shape[0]
    device = transitions.device
    allowed = _constraint_mask(
        "constraints.transitions", constraints.transitions, (num_tags, num_tags), device
    )
    allowed_start = _constraint_mask("constraints.start", constraints.start, (num_tags,), device)
    allowed_end = _constraint_mask("constraints.end", constraints.end, (num_tags,), device)
    transitions = transitions.masked_fill(~allowed, _NEG_INF)
    if allowed_start is not None:
        start = start.masked_fill(~allowed_start, _NEG_INF)
    if allowed_end is not None:
        end = end.masked_fill(~allowed_end, _NEG_INF)
    return transitions, start, end


def prepare_chain(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor | None,
    end: Tensor | None,
    lengths: Tensor | None,
    constraints: ChainConstraints | Tensor | None,
) -> Chain:
    """Validate the inputs of a chain function and bring them into the internal form.

    Args:
        emissions: ``(B, T, K)`` float scores (float16/bfloat16 are promoted to float32).
        transitions: ``(K, K)`` scores ``[from, to]``.
        start: ``(K,)`` first-state scores or ``None`` (zeros).
        end: ``(K,)`` last-state scores or ``None`` (zeros).
        lengths: ``(B,)`` integer lengths, a ``(B, T)`` boolean prefix mask, or ``None``.
        constraints: Allowed transitions/start/end, see `ChainConstraints`.

    Returns:
        A `Chain` with emissions trimmed to the longest sequence and zeroed past
        each length, and forbidden scores set to ``-inf``.
    """
    emissions = _check_tensor("emissions", emissions)
    if emissions.dim() != 3:
        raise ValueError(f"emissions must have shape (B, T, K), got {tuple(emissions.shape)}")
    batch, steps, num_tags = emissions.shape
    if batch == 0 or steps == 0 or num_tags == 0:
        raise ValueError(
            "emissions must have B, T, K >= 1 (empty batch or sequence), "
            f"got {tuple(emissions.shape)}"
        )
    if not emissions.is_floating_point():
        raise ValueError(f"emissions must be a floating-point tensor, got {emissions.dtype}")
    device = emissions.device
    transitions = _check_tensor("transitions", transitions)
    if transitions.dim() != 2 or transitions.shape[0] != transitions.shape[1]:
        raise ValueError(f"transitions must be square (K, K), got {tuple(transitions.shape)}")
    ranges = {
        "transitions": _check_scores("transitions", transitions, (num_tags, num_tags), "(K, K)")
    }
    scores = [transitions]
    for name, x in (("start", start), ("end", end)):
        if x is not None:
            ranges[name] = _check_scores(name, _check_tensor(name, x), (num_tags,), "(K,)")
            scores.append(x)
    for name, x in zip(("transitions", "start", "end"), scores, strict=False):
        if x.device != device:
            raise ValueError(f"{name} is on {x.device} but emissions are on {device}")

    lengths = resolve_lengths(lengths, batch, steps, device)
    dtype = emissions.dtype
    for x in scores:
        dtype = torch.promote_types(dtype, x.dtype)
    dtype = promoted_dtype(dtype)

    longest = int(lengths.max())
    emissions = emissions[:, :longest]
    if longest > int(lengths.min()):
        emissions = emissions.masked_fill(~length_mask(lengths, longest)[..., None], 0.0)
    ranges["emissions"] = finite_range(emissions)
    if ranges["emissions"] is None:
        b, t = (
            int(i) for i in (torch.isnan(emissions) | torch.isposinf(emissions)).nonzero()[0][:2]
        )
        raise ValueError(
            f"emissions contain NaN or +inf inside the lengths (first at batch {b}, step {t}); "
            "scores must be finite or -inf"
        )
    per_step = {name: ranges.pop(name) for name in ("emissions", "transitions")}
    wide = computation_dtype(dtype, longest, per_step, ranges)
    zeros = emissions.new_zeros(num_tags, dtype=wide)
    transitions, start, end = apply_constraints(
        transitions.to(wide),
        zeros if start is None else start.to(wide),
        zeros if end is None else end.to(wide),
        constraints,
    )
    return Chain(emissions.to(wide), transitions, start, end, lengths, steps, dtype)


def check_tags(tags: Tensor, chain: Chain) -> Tensor:
    """Validate gold tags ``(B, T)`` against a prepared chain; return them trimmed to ``T'``.

    Values past each length are ignored (padding such as ``-1`` is fine); inside the lengths
    they must lie in ``[0, K)``.
    """
    tags = _check_tensor("tags", tags)
    batch, longest, num_tags = chain.emissions.shape
    if tuple(tags.shape) != (batch, chain.total_length):
        raise ValueError(
            f"tags must have shape (B, T) = {(batch, chain.total_length)}, got {tuple(tags.shape)}"
        )
    if tags.dtype.is_floating_point or tags.dtype == torch.bool:
        raise ValueError(f"tags must be an integer tensor, got {tags.dtype}")
    if tags.device != chain.emissions.device:
        raise ValueError(f"tags is on {tags.device} but emissions are on {chain.emissions.device}")
    tags = tags[:, :longest].long()
    if chain.ragged:
        tags = tags.masked_fill(~chain.mask, 0)
    low, high = torch.aminmax(tags)
    if low < 0 or high >= num_tags:
        raise ValueError(f"tags must lie in [0, K) = [0, {num_tags}) inside the lengths")
    return tags.contiguous()
