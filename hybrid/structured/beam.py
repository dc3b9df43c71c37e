"""Batched beam search over a step function, with optional tensorized constraints.

A *step function* scores the next token of many hypotheses at once::

    step(tokens: LongTensor (B*K,), state) -> (log_probs: Tensor (B*K, V), new_state)

``tokens`` holds the last token of every hypothesis (``bos`` at the first step). ``state`` is
any pytree (a tensor, or tuples, lists, NamedTuples and dicts of them; other leaves pass
through untouched) whose tensors have leading dimension ``B*K``: hypothesis ``k`` of sequence
``b`` is row ``b*K + k``. After each step the search reorders ``new_state`` along dim 0 with
``index_select`` so that every row again belongs to the hypothesis it extends. The caller
gives the initial state with leading dimension ``B``; the search repeats each row ``K`` times.

The search (as in fairseq and GNMT):

- All ``B*K`` hypotheses advance in one step call; per sequence, the ``2K`` best of the
  ``K*V`` one-token extensions are taken by raw score (sum of log-probs) in one stable sort
  (ties: the lowest slot, then the smallest token, as an argmax takes them).
- An extension by ``eos`` that ranks among the ``K`` best finishes: it joins the sequence's
  pool of ``nbest`` finished hypotheses if its *normalised* score beats the pool's worst.
  The ``K`` best extensions by other tokens form the next live beam, so the beam stays full.
  With ``beam=1`` this is greedy decoding: ``eos`` finishes exactly when it is the argmax.
- ``bos`` is never generated (unless ``bos == eos``); a ``Constraint`` removes more tokens;
  ``eos`` is not allowed before ``min_length`` tokens. Removed tokens score ``-inf``.
- Length normalisation is plain: ``score = log_prob / length ** length_penalty``, where
  ``length`` counts the generated tokens including ``eos`` (not ``bos``). ``length_penalty=0``
  ranks by the raw sum of log-probs.
- Early stopping is exact: a sequence stops once its pool holds ``nbest`` finished
  hypotheses and none of its live hypotheses can still reach a better normalised score. As
  log-probs are ``<= 0`` (the search checks it), a live hypothesis with raw score ``s`` can
  at best finish with raw score ``s`` at some length ``l`` in
  ``[max(t + 1, min_length + 1), max_length]``, so its normalised score is at most
  ``max(s / l_lo ** alpha, s / l_hi ** alpha)`` (``s / l ** alpha`` is monotone in ``l``).
- At ``max_length`` (per sequence) the search stops. If fewer than ``nbest`` hypotheses have
  finished, the best live hypotheses fill the remaining slots, *unfinished*: no ``eos``,
  ``finished=False``, normalised over their own length. No ``eos`` is forced, so an
  unfinished hypothesis is a prefix the constraint allowed, not a sequence it accepted.

With a beam at least as large as the number of candidate extensions at every step (prefixes
times vocabulary), nothing is pruned and the search returns the exact n-best.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

from ._inputs import _check_tensor

__all__ = ["BeamSearchResult", "Constraint", "StepFunction", "beam_search", "greedy_search"]

_NEG_INF = float("-inf")

StepFunction = Callable[[Tensor, Any], tuple[Tensor, Any]]


class Constraint(Protocol):
    """Which tokens a hypothesis may emit next, as a batched automaton over tensors.

    The constraint state (*cstate*) is a pytree like the step state: its tensors have one row
    per hypothesis and the search reorders them the same way. Every method handles all rows
    in tensor ops. Acceptance is expressed through `allowed`: ``eos`` is allowed exactly in
    the states where a hypothesis may end.
    """

    def start(self, batch_size: int, device: torch.device) -> Any:
        """The initial cstate, leading dimension ``batch_size`` (one row per sequence)."""
        ...

    def allowed(self, cstate: Any) -> Tensor:
        """``(N, V)`` bool: the tokens that each of the ``N`` rows may emit next."""
        ...

    def advance(self, cstate: Any, tokens: Tensor) -> Any:
        """The cstate after each row emits ``tokens`` ``(N,)`` int64.

        A token is one that `allowed` permitted, or ``eos`` for rows that hold no live
        hypothesis (their result is ignored, but must not raise).
        """
        ...


class BeamSearchResult(NamedTuple):
    """The n-best hypotheses of each sequence, best first.

    Finished hypotheses rank before unfinished ones (see the module notes on
    ``max_length``); each group is ordered by normalised score. Slots past the hypotheses
    found have no tokens, length 0, scores ``-inf`` and ``finished=False``.

    Attributes:
        tokens: ``(B, N, L)`` int64 generated tokens (no ``bos``; ``eos`` last when
            finished), ``-1`` padded; ``L`` is the longest returned length.
        lengths: ``(B, N)`` int64 token counts, ``eos`` included.
        scores: ``(B, N)`` normalised scores, ``log_probs / lengths ** length_penalty``.
        log_probs: ``(B, N)`` raw sums of the tokens' log-probs.
        finished: ``(B, N)`` bool, whether the hypothesis ended with ``eos``.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    log_probs: Tensor
    finished: Tensor

    def to_lists(self) -> list[list[list[int]]]:
        """The tokens as lists: ``[b][n]`` is hypothesis ``n`` of sequence ``b``."""
        return [
            [row[:length].tolist() for row, length in zip(rows, lengths, strict=True)]
            for rows, lengths in zip(self.tokens, self.lengths, strict=True)
        ]


# -- pytrees -------------------------------------------------------------------------------


def _tree_map(fn: Callable[[Tensor], Tensor], tree: Any) -> Any:
    """``tree`` with ``fn`` applied to every tensor leaf (containers rebuilt, rest kept)."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_tree_map(fn, item) for item in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_map(fn, item) for item in tree)
    if isinstance(tree, dict):
        return {key: _tree_map(fn, value) for key, value in tree.items()}
    return tree


def _check_rows(tree: Any, rows: int, name: str) -> None:
    """Raise unless every tensor leaf of ``tree`` holds data and has leading dimension ``rows``."""

    def check(leaf: Tensor) -> Tensor:
        _check_tensor(name, leaf)
        if leaf.dim() == 0 or leaf.shape[0] != rows:
            raise ValueError(
                f"{name}: every tensor must have leading dimension {rows}, "
                f"got shape {tuple(leaf.shape)}"
            )
        return leaf

    _tree_map(check, tree)


def _first_device(tree: Any) -> torch.device:
    """The device of the first tensor leaf of ``tree`` (CPU when there is none)."""
    found: list[torch.device] = []

    def note(leaf: Tensor) -> Tensor:
        found.append(leaf.device)
        return leaf

    _tree_map(note, tree)
    return found[0] if found else torch.device("cpu")


def _expand(tree: Any, batch_size: int, beam: int, name: str) -> Any:
    """``tree`` with leading dimension ``batch_size`` repeated to ``batch_size * beam``."""
    _check_rows(tree, batch_size, name)
    return _tree_map(lambda leaf: leaf.repeat_interleave(beam, dim=0), tree)


def _reorder(tree: Any, rows: Tensor) -> Any:
    """``tree`` with every tensor leaf's rows taken at ``rows``."""
    return _tree_map(lambda leaf: leaf.index_select(0, rows), tree)


# -- hypotheses ----------------------------------------------------------------------------


@dataclass
class _Hyps:
    """``M`` hypotheses per sequence, their tokens kept as backpointers into the search.

    A hypothesis' tokens before ``eos`` end at position ``lengths - 1 - finished`` in live
    beam slot ``slot``; `_Backpointers.trace` recovers them.

    Attributes:
        raw: ``(B, M)`` sums of log-probs, ``-inf`` for an empty slot.
        lengths: ``(B, M)`` int64 tokens, ``eos`` included.
        finished: ``(B, M)`` bool, whether it ends with ``eos``.
        slot: ``(B, M)`` int64 live beam slot of its last token before ``eos``.
    """

    raw: Tensor
    lengths: Tensor
    finished: Tensor
    slot: Tensor

    @classmethod
    def empty(cls, batch_size: int, size: int, device: torch.device) -> _Hyps:
        """``size`` empty slots per sequence."""
        zeros = torch.zeros(batch_size, size, dtype=torch.long, device=device)
        return cls(
            raw=torch.full((batch_size, size), _NEG_INF, device=device),
            lengths=zeros,
            finished=zeros.bool(),
            slot=zeros,
        )

    def scores(self, alpha: float) -> Tensor:
        """``(B, M)`` normalised scores ``raw / lengths ** alpha``."""
        if alpha == 0.0:
            return self.raw
        return self.raw / self.lengths.clamp(min=1).to(self.raw.dtype) ** alpha

    def cat(self, other: _Hyps) -> _Hyps:
        """Both sets of hypotheses side by side (``M`` is the sum)."""
        pairs = zip(self.fields(), other.fields(), strict=True)
        return _Hyps(*(torch.cat(pair, 1) for pair in pairs))

    def take(self, index: Tensor) -> _Hyps:
        """The hypotheses at ``index`` ``(B, M')`` of each sequence."""
        return _Hyps(*(field.gather(1, index) for field in self.fields()))

    def fields(self) -> tuple[Tensor, ...]:
        """The four tensors, in field order."""
        return self.raw, self.lengths, self.finished, self.slot

    def best(self, size: int, alpha: float) -> _Hyps:
        """The ``size`` best: finished before unfinished before empty, then by score.

        Two stable sorts (score, then group) keep ties in their current order, so earlier
        hypotheses win ties and the result is deterministic.
        """
        by_score = self.scores(alpha).sort(dim=1, descending=True, stable=True).indices
        ranked = self.take(by_score)
        group = torch.where(ranked.finished, 0, 1) + (ranked.raw == _NEG_INF).long() * 2
        return ranked.take(group.sort(dim=1, stable=True).indices[:, :size])


@dataclass
class _Backpointers:
    """What the live beam chose at every step.

    Attributes:
        token: ``(T, B, K)`` int64 token of live slot ``k`` after step ``t``.
        parent: ``(T, B, K)`` int64 slot it extends (of the beam after step ``t - 1``).
    """

    token: Tensor
    parent: Tensor

    def trace(self, hyps: _Hyps, eos: int) -> Tensor:
        """``(B, M, L)`` int64 tokens of ``hyps``, ``-1`` padded, ``L`` the longest length."""
        width = int(hyps.lengths.max())
        tokens = hyps.slot.new_full((*hyps.slot.shape, width), -1)
        last = hyps.lengths - 1 - hyps.finished.long()
        slot = hyps.slot
        for at in range(width - 1, -1, -1):
            on = at <= last
            tokens[:, :, at] = torch.where(on, self.token[at].gather(1, slot), -1)
            slot = torch.where(on, self.parent[at].gather(1, slot), slot)
        ends = hyps.finished[..., None] & (
            torch.arange(width, device=tokens.device) == (hyps.lengths - 1)[..., None]
        )
        return tokens.masked_fill(ends, eos)


def _result(hyps: _Hyps, pointers: _Backpointers, alpha: float, eos: int) -> BeamSearchResult:
    """``hyps`` as a `BeamSearchResult`, empty slots blanked."""
    empty = hyps.raw == _NEG_INF
    hyps.lengths = hyps.lengths.masked_fill(empty, 0)
    hyps.finished = hyps.finished & ~empty
    return BeamSearchResult(
        tokens=pointers.trace(hyps, eos),
        lengths=hyps.lengths,
        scores=hyps.scores(alpha),
        log_probs=hyps.raw,
        finished=hyps.finished,
    )


# -- validation ----------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    """Whether ``value`` is a Python int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_arguments(
    batch_size: Any,
    beam: Any,
    nbest: Any,
    bos: Any,
    eos: Any,
    length_penalty: Any,
    min_length: Any,
    constraint: Any,
) -> None:
    """Raise a ``ValueError`` naming the first bad scalar argument."""
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not _is_int(beam) or beam < 1:
        raise ValueError(f"beam must be an int >= 1, got {beam!r}")
    if not _is_int(nbest) or not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be an int in [1, beam={beam}], got {nbest!r}")
    for name, token in (("bos", bos), ("eos", eos)):
        if not _is_int(token) or token < 0:
            raise ValueError(f"{name} must be a token id (an int >= 0), got {token!r}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)):
        raise ValueError(f"length_penalty must be a float, got {length_penalty!r}")
    if not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be finite, got {length_penalty!r}")
    if not _is_int(min_length) or min_length < 0:
        raise ValueError(f"min_length must be an int >= 0, got {min_length!r}")
    methods = ("start", "allowed", "advance")
    if constraint is not None and not all(callable(getattr(constraint, m, None)) for m in methods):
        raise ValueError("constraint must have start, allowed and advance methods")


def _max_lengths(max_length: Any, batch_size: int, min_length: int, device: torch.device) -> Tensor:
    """``max_length`` (an int or a ``(B,)`` tensor) as a ``(B,)`` int64 tensor, checked."""
    if _is_int(max_length):
        limits = torch.full((batch_size,), max_length, dtype=torch.long, device=device)
    elif isinstance(max_length, Tensor) and not max_length.is_floating_point():
        _check_tensor("max_length", max_length)
        if max_length.shape != (batch_size,) or max_length.dtype == torch.bool:
            raise ValueError(
                f"max_length must be an int or an integer tensor of shape ({batch_size},), "
                f"got {max_length.dtype} of shape {tuple(max_length.shape)}"
            )
        limits = max_length.to(device=device, dtype=torch.long)
    else:
        raise ValueError(f"max_length must be an int or a (B,) integer tensor, got {max_length!r}")
    if bool((limits <= min_length).any()):
        raise ValueError(
            f"max_length must exceed min_length={min_length} (room for eos), "
            f"got minimum {int(limits.min())}"
        )
    return limits


def _check_log_probs(
    log_probs: Any, rows: int, vocab: int | None, at: int, device: torch.device
) -> None:
    """Raise unless the step returned a floating ``(rows, V)`` tensor (``V`` fixed) on
    the search's ``device``."""
    if not isinstance(log_probs, Tensor) or not log_probs.is_floating_point():
        raise ValueError(f"step must return floating log_probs, got {type(log_probs).__name__}")
    _check_tensor("the log_probs returned by step", log_probs)
    if log_probs.device != device:
        raise ValueError(
            f"step must return log_probs on {device} (the device of the state's first "
            "tensor; cpu if it has none), "
            f"got them on {log_probs.device} at step {at}"
        )
    wanted = f"({rows}, {vocab if vocab is not None else 'V'})"
    if log_probs.dim() != 2 or log_probs.shape[0] != rows or log_probs.shape[1] < 1:
        raise ValueError(
            f"step must return log_probs of shape {wanted} at step {at}, "
            f"got {tuple(log_probs.shape)}"
        )
    if vocab is not None and log_probs.shape[1] != vocab:
        raise ValueError(
            f"step must return log_probs of shape {wanted} at step {at} (the vocabulary size "
            f"of step 0), got {tuple(log_probs.shape)}"
        )


def _live_log_probs(log_probs: Tensor, alive: Tensor, at: int) -> Tensor:
    """``log_probs`` as ``(B, K, V)``, at least float32, checked on the live rows.

    Raises:
        ValueError: a NaN or positive log-prob for a live hypothesis (``alive`` ``(B, K)``).
    """
    log_probs = log_probs.reshape(*alive.shape, -1)
    log_probs = log_probs.to(torch.promote_types(log_probs.dtype, torch.float32))
    bad = alive[..., None] & (log_probs.isnan() | (log_probs > 0))
    if bool(bad.any()):
        if bool((bad & log_probs.isnan()).any()):
            raise ValueError(f"step returned NaN log_probs for a live hypothesis at step {at}")
        raise ValueError(
            f"step returned log_probs > 0 at step {at} (max {float(log_probs[bad].max()):.4g}); "
            "they must be log-probabilities, <= 0, for early stopping to be exact"
        )
    return log_probs


# -- the search ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """The fixed settings of one search."""

    beam: int
    nbest: int
    bos: int
    eos: int
    alpha: float
    min_length: int
    limits: Tensor  # (B,) int64 max_length


def _allowed(
    constraint: Constraint | None, cstate: Any, alive: Tensor, vocab: int, at: int, rules: _Rules
) -> Tensor:
    """``(B, K, V)`` bool: the tokens each hypothesis may emit now (none for dead ones).

    Raises:
        ValueError: ``constraint.allowed`` returned a wrong tensor, or left a live
            hypothesis (``alive`` ``(B, K)``) no token.
    """
    shape = (*alive.shape, vocab)
    if constraint is None:
        allowed = torch.ones(shape, dtype=torch.bool, device=alive.device)
    else:
        allowed = constraint.allowed(cstate)
        rows = alive.numel()
        if not isinstance(allowed, Tensor) or allowed.dtype != torch.bool:
            raise ValueError("constraint.allowed must return a bool tensor")
        if allowed.shape != (rows, vocab):
            raise ValueError(
                f"constraint.allowed must return shape ({rows}, {vocab}), "
                f"got {tuple(allowed.shape)}"
            )
        allowed = allowed.view(shape).clone()
    if rules.bos != rules.eos:
        allowed[..., rules.bos] = False
    eos_ok = at >= rules.min_length
    if not eos_ok:
        allowed[..., rules.eos] = False
    if bool((alive & ~allowed.any(-1)).any()):
        raise ValueError(
            f"the constraint left no token for a live hypothesis at step {at} "
            f"(with eos {'allowed' if eos_ok else 'forbidden by min_length'})"
        )
    return allowed & alive[..., None]


def _extensions(raw: Tensor, log_probs: Tensor, allowed: Tensor) -> tuple[Tensor, ...]:
    """The ``2K`` best one-token extensions of each sequence's live hypotheses, best first.

    Args:
        raw: ``(B, K)`` raw scores of the live beam.
        log_probs, allowed: ``(B, K, V)``.

    Returns:
        ``(raw, parent, token)``, each ``(B, 2K)`` (fewer when ``K * V < 2K``): raw score
        (``-inf`` for a disallowed one), slot of the extended hypothesis, and the token.
    """
    batch_size, beam, vocab = log_probs.shape
    extended = torch.where(allowed, raw[..., None] + log_probs, _NEG_INF)
    # a stable sort, not a top-k, so that ties keep the lowest index (the first slot, then
    # the smallest token), as an argmax does: the same choice on every device and in export
    raw, index = extended.view(batch_size, -1).sort(dim=1, descending=True, stable=True)
    keep = min(2 * beam, beam * vocab)
    return raw[:, :keep], index[:, :keep] // vocab, index[:, :keep] % vocab


def _ended(raw: Tensor, parent: Tensor, token: Tensor, at: int, rules: _Rules) -> _Hyps:
    """The hypotheses that finish at step ``at``: ``eos`` extensions among the ``K`` best
    (``raw``, ``parent``, ``token`` from `_extensions`); other slots empty."""
    beam = rules.beam
    ends = (token[:, :beam] == rules.eos) & (raw[:, :beam] > _NEG_INF)
    return _Hyps(
        raw=torch.where(ends, raw[:, :beam], _NEG_INF),
        lengths=torch.full_like(parent[:, :beam], at + 1),
        finished=ends,
        slot=parent[:, :beam],
    )


def _survivors(
    live: Tensor, raw: Tensor, parent: Tensor, token: Tensor, active: Tensor, rules: _Rules
) -> tuple[Tensor, Tensor, Tensor]:
    """The next live beam: the ``K`` best extensions by tokens other than ``eos``.

    Sequences that are no longer ``active`` ``(B,)`` keep their beam ``live`` ``(B, K)``.

    Returns:
        ``(raw, parent, token)``, each ``(B, K)``: raw scores of the new beam, the slot each
        came from, and the token to feed next (``eos`` for slots without a live hypothesis).
    """
    eos = rules.eos
    pick = (token == eos).long().sort(dim=1, stable=True).indices[:, : rules.beam]
    token = token.gather(1, pick)
    still = active[:, None]
    raw = torch.where(still, torch.where(token == eos, _NEG_INF, raw.gather(1, pick)), live)
    keep = torch.arange(rules.beam, device=raw.device).expand_as(raw)
    parent = torch.where(still, parent.gather(1, pick), keep)
    return raw, parent, torch.where(still & (raw > _NEG_INF), token, eos)


def _stopped(live: Tensor, pool: _Hyps, done: int, rules: _Rules) -> Tensor:
    """``(B,)`` bool: sequences whose search is over after ``done`` tokens.

    Over when ``max_length`` is reached, when no live hypothesis (raw scores ``live``
    ``(B, K)``) is left, or when the pool is full and its worst finished hypothesis is at
    least the best score any live one can reach.
    """
    best = live.max(1).values
    low = float(max(done + 1, rules.min_length + 1)) ** rules.alpha
    high = rules.limits.to(best.dtype) ** rules.alpha
    reachable = torch.maximum(best / low, best / high)
    worst = pool.scores(rules.alpha)[:, -1]
    beaten = pool.finished[:, -1] & (worst >= reachable)
    return (rules.limits <= done) | (best == _NEG_INF) | beaten


def beam_search(
    step: StepFunction,
    state: Any,
    batch_size: int,
    beam: int,
    max_length: int | Tensor,
    bos: int,
    eos: int,
    nbest: int | None = None,
    length_penalty: float = 0.0,
    constraint: Constraint | None = None,
    min_length: int = 0,
) -> BeamSearchResult:
    """The ``nbest`` best token sequences of each of ``batch_size`` sequences.

    See the module notes for the search, its normalisation, early stopping and what happens
    at ``max_length``.

    Args:
        step: ``step(tokens (B*K,), state) -> (log_probs (B*K, V), new_state)``; log-probs
            must be ``<= 0``; rows of hypotheses that are not live get ``eos`` and their
            outputs are ignored.
        state: Pytree of tensors with leading dimension ``B`` (repeated ``K`` times here).
        batch_size: ``B``.
        beam: ``K``, live hypotheses kept per sequence.
        max_length: Most tokens generated per sequence, ``eos`` included: an int or a
            ``(B,)`` integer tensor.
        bos: Token fed at the first step; never generated unless equal to ``eos``.
        eos: Token that finishes a hypothesis.
        nbest: Hypotheses returned per sequence, in ``[1, beam]``; ``None``: ``beam``.
        length_penalty: ``alpha`` in ``score = log_prob / length ** alpha``; 0: raw sums.
        constraint: Optional `Constraint` restricting the next token of every hypothesis.
        min_length: ``eos`` is allowed only after at least this many tokens.

    Returns:
        A `BeamSearchResult` with ``N = nbest``, tensors on the device of ``state``'s
        first tensor (CPU when it has none).

    Raises:
        ValueError: a bad argument (a meta tensor among them), a step returning a wrong
            shape or device, NaN or positive log-probs for a live hypothesis, a constraint
            that leaves a live hypothesis no token, or a sequence left with no hypothesis at
            all (every token it could take scored ``-inf``).
    """
    nbest = beam if nbest is None else nbest
    _check_arguments(batch_size, beam, nbest, bos, eos, length_penalty, min_length, constraint)
    device = _first_device(state)
    state = _expand(state, batch_size, beam, "state")
    limits = _max_lengths(max_length, batch_size, min_length, device)
    rules = _Rules(beam, nbest, bos, eos, float(length_penalty), min_length, limits)
    total = int(limits.max())
    cstate = None
    if constraint is not None:
        cstate = _expand(constraint.start(batch_size, device), batch_size, beam, "cstate")

    rows = batch_size * beam
    live = torch.full((batch_size, beam), _NEG_INF, device=device)
    live[:, 0] = 0.0
    length = torch.zeros(batch_size, dtype=torch.long, device=device)
    pool = _Hyps.empty(batch_size, nbest, device)
    pointers = _Backpointers(
        token=torch.full((total, batch_size, beam), eos, dtype=torch.long, device=device),
        parent=torch.zeros(total, batch_size, beam, dtype=torch.long, device=device),
    )
    active = torch.ones(batch_size, dtype=torch.bool, device=device)
    tokens = torch.full((rows,), bos, dtype=torch.long, device=device)
    offsets = torch.arange(batch_size, device=device)[:, None] * beam
    vocab = None
    for at in range(total):
        log_probs, state = step(tokens, state)
        _check_log_probs(log_probs, rows, vocab, at, device)
        vocab = log_probs.shape[1]
        if at == 0 and max(bos, eos) >= vocab:
            raise ValueError(f"bos={bos} and eos={eos} must be < the vocabulary size {vocab}")
        _check_rows(state, rows, "the state returned by step")
        alive = active[:, None] & (live > _NEG_INF)
        log_probs = _live_log_probs(log_probs, alive, at)
        allowed = _allowed(constraint, cstate, alive, vocab, at, rules)
        raw, parent, token = _extensions(live, log_probs, allowed)
        pool = pool.cat(_ended(raw, parent, token, at, rules)).best(nbest, rules.alpha)
        live, parent, token = _survivors(live, raw, parent, token, active, rules)
        pointers.token[at], pointers.parent[at] = token, parent
        length = torch.where(active, at + 1, length)

        tokens = token.flatten()
        order = (parent + offsets).flatten()
        state = _reorder(state, order)
        if constraint is not None:
            cstate = constraint.advance(_reorder(cstate, order), tokens)
        active &= ~_stopped(live, pool, at + 1, rules)
        if not bool(active.any()):
            break
    unfinished = _Hyps(
        raw=live,
        lengths=length[:, None].expand(-1, beam),
        finished=torch.zeros_like(alive),
        slot=torch.arange(beam, device=device).expand(batch_size, -1),
    )
    best = pool.cat(unfinished).best(nbest, rules.alpha)
    _require_hypotheses(best.raw[:, 0])
    return _result(best, pointers, rules.alpha, eos)


def _require_hypotheses(best: Tensor) -> None:
    """Raise if a sequence's best hypothesis (raw score ``best`` ``(B,)``) is ``-inf``: the
    step gave ``-inf`` to every token its hypotheses could take, so none is left."""
    dead = torch.isneginf(best)
    if bool(dead.any()):
        items = dead.nonzero().flatten().tolist()
        raise ValueError(
            f"no hypothesis left for sequences {items[:10]}: the step gave -inf log_probs to "
            "every token that the constraint and min_length allowed (no path)"
        )


def greedy_search(
    step: StepFunction,
    state: Any,
    batch_size: int,
    max_length: int | Tensor,
    bos: int,
    eos: int,
    constraint: Constraint | None = None,
    min_length: int = 0,
) -> BeamSearchResult:
    """The argmax token at every step, until ``eos`` (beam search with ``beam=1``, ``N = 1``).

    See `beam_search` for the arguments and the result.
    """
    return beam_search(
        step,
        state,
        batch_size,
        beam=1,
        max_length=max_length,
        bos=bos,
        eos=eos,
        nbest=1,
        constraint=constraint,
        min_length=min_length,
    )
