"""CTC prefix beam search, batched, with n-gram shallow fusion and a lexicon.

On CPU the search runs in a fused C++ kernel (`hybrid.structured.native.prefix_beam_search`),
one sequence per thread; this module holds the tensorized engine, which defines the search,
serves CUDA and ``HYBRID_NATIVE=0``, and is tested equal to the kernel. The engine's frame step
is made of the tensor functions of `hybrid.ctc.portable` (`_candidates`, `_choose`, `_moves`,
`_follow`), which `hybrid.ctc.portable.prefix_beam_labels` also runs under TorchScript and
ONNX; this module adds pruning, LM fusion and the lexicon around them.

The search keeps, for every sequence of the batch, a fixed number ``K`` of label prefixes
as tensors and advances all of them one frame at a time (Hannun et al., 2014). A prefix
``y`` has two log-probabilities: ``p_b`` of the alignments of the frames so far that
collapse to ``y`` and end in a blank, and ``p_nb`` of those that end in ``y``'s last symbol.
At each frame, with ``p = p_b + p_nb``:

- staying on ``y``: ``p_b' = p * P(blank)``, ``p_nb' = p_nb * P(last)`` (a repeat without a
  blank in between keeps the prefix);
- extending by ``c``: ``p_nb'(y c) = p * P(c)``, or ``p_b * P(c)`` when ``c`` is the last
  symbol (a repeated symbol needs a blank in between).

Every prefix is extended by every symbol in one tensor op; extensions that recreate a prefix
already in the beam are added into it; the ``K`` best of the stays and extensions by total
score survive. The total score of a prefix is its acoustic log-probability
``log(p_b + p_nb)`` plus ``lm_weight`` times its LM log-probability plus
``insertion_bonus`` times its count of units (symbols, or words for a word-level LM).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor

from ..structured import native
from ..structured._inputs import check_not_meta
from .align import forced_align
from .inputs import check_log_probs
from .lexicon import Lexicon
from .lm import CharScorer, WordScorer
from .portable import (
    _best,
    _candidates,
    _check_sizes,
    _choose,
    _empty,
    _follow,
    _gather,
    _log_add,
    _moves,
    _where,
)

__all__ = ["BeamResult", "prefix_beam_search"]

_NEG_INF = float("-inf")
# Log-probability entries that one forced-alignment call for the timestamps may repeat.
_ALIGN_BUDGET = 1 << 24


class BeamResult(NamedTuple):
    """The n-best hypotheses of each sequence, best first.

    Every sequence has at least one hypothesis (`prefix_beam_search` raises otherwise); rows
    past the hypotheses that survived (fewer than ``N`` possible prefixes, or a lexicon that
    rejects the rest) have no labels and score ``-inf``.

    Attributes:
        labels: ``(B, N, L)`` int64 symbol ids, ``-1`` padded.
        label_lengths: ``(B, N)`` int64.
        scores: ``(B, N)`` total scores: ``acoustic + lm_weight * LM log-prob +
            insertion_bonus * units``.
        acoustic: ``(B, N)`` log of the summed probability of all alignments of the
            hypothesis that the search kept (all of them when nothing was pruned).
        timestamps: ``(B, N, L)`` int64 frame at which each label is first emitted in the
            hypothesis' most likely alignment, ``-1`` padded.
        spans: ``(B, N, L, 2)`` int64 first frame and one past the last frame of each label
            in that alignment, ``-1`` padded (``spans[..., 0]`` is ``timestamps``).
    """

    labels: Tensor
    label_lengths: Tensor
    scores: Tensor
    acoustic: Tensor
    timestamps: Tensor
    spans: Tensor

    def to_lists(self) -> list[list[list[int]]]:
        """The labels as Python lists: ``[b][n]`` is hypothesis ``n`` of sequence ``b``."""
        return [
            [row[:length].tolist() for row, length in zip(rows, lengths, strict=True)]
            for rows, lengths in zip(self.labels, self.label_lengths, strict=True)
        ]

    def word_spans(self, delimiter: int) -> list[list[list[tuple[tuple[int, ...], int, int]]]]:
        """Word timestamps: ``[b][n]`` lists ``(labels, start, stop)`` for each word of
        hypothesis ``n`` of sequence ``b``, the non-empty runs of labels between
        ``delimiter`` symbols, from the first frame of its first label to one past the last
        frame of its last label in the hypothesis' most likely alignment."""
        words = []
        for b, rows in enumerate(self.to_lists()):
            words.append([])
            for n, labels in enumerate(rows):
                spans = self.spans[b, n].tolist()
                found, first = [], 0
                for i, symbol in enumerate([*labels, delimiter]):
                    if symbol == delimiter:
                        if i > first:
                            found.append((tuple(labels[first:i]), spans[first][0], spans[i - 1][1]))
                        first = i + 1
                words[-1].append(found)
        return words


@dataclass(frozen=True)
class _Search:
    """The fixed settings of one search."""

    blank: int
    scorer: CharScorer | WordScorer | None
    lm_weight: float
    insertion_bonus: float
    lexicon: Lexicon | None
    prune: int | float | None


@dataclass
class _Beam:
    """``K`` prefixes per sequence (``B`` sequences, ``T`` frames).

    Attributes:
        prefix: ``(B, K, T + 1)`` int64 label ids, ``-1`` padded (one spare column).
        length: ``(B, K)`` int64 labels in each prefix.
        log_pb: ``(B, K)`` log-probability of the alignments ending in a blank.
        log_pnb: ``(B, K)`` log-probability of the alignments ending in the last label.
        fusion: ``(B, K)`` ``lm_weight * LM log-prob + insertion_bonus * units`` so far.
        lm_state: The LM scorer's state, tensors with leading dims ``(B, K)``.
        node: ``(B, K)`` int64 lexicon trie node of the partial word (0 without a lexicon).

    A slot whose ``log_pb`` and ``log_pnb`` are both ``-inf`` holds no hypothesis.
    """

    prefix: Tensor
    length: Tensor
    log_pb: Tensor
    log_pnb: Tensor
    fusion: Tensor
    lm_state: tuple[Tensor, ...]
    node: Tensor

    @property
    def acoustic(self) -> Tensor:
        """``(B, K)`` ``log(p_b + p_nb)``."""
        return torch.logaddexp(self.log_pb, self.log_pnb)


def prefix_beam_search(
    log_probs: Tensor,
    lengths: Tensor | None = None,
    beam: int = 10,
    blank: int = 0,
    nbest: int | None = None,
    lm: CharScorer | WordScorer | None = None,
    lm_weight: float = 0.0,
    insertion_bonus: float = 0.0,
    lexicon: Lexicon | None = None,
    prune: int | float | None = None,
) -> BeamResult:
    """CTC prefix beam search over a batch, with optional LM fusion and lexicon.

    Args:
        log_probs: ``(B, T, V)`` float per-frame log-probabilities of the ``V`` symbols
            (float16 and bfloat16 are promoted to float32).
        lengths: ``(B,)`` int64 frames per sequence (right padding); ``None``: all ``T``.
        beam: ``K``, prefixes kept per sequence after each frame.
        blank: The blank symbol id, an int in ``[0, V)``.
        nbest: ``N <= K`` hypotheses returned per sequence; ``None``: ``K``.
        lm: A scorer from `hybrid.ctc.lm.lm_scorer` over the same ``V`` symbols and blank.
            A character scorer scores every emitted symbol, a word scorer each completed
            word; both score ``</s>`` at the end.
        lm_weight: Weight of the LM log-probability.
        insertion_bonus: Added per unit: per word with a word-level LM, else per symbol.
        lexicon: Only hypotheses whose words are all in it are kept (`Lexicon`).
        prune: Symbols that may start a new label at a frame: ``None``: all; an ``int`` k:
            the k most likely of the frame; a ``float``: those with log-probability at least
            this (and the frame's most likely). Blanks and repeats are never pruned.

    Returns:
        `BeamResult` with ``N`` hypotheses per sequence, best first, the first of finite score.

    Raises:
        ValueError: ``log_probs`` not a float ``(B, T, V)`` tensor, NaN or +inf values,
            ``lengths`` out of ``[1, T]``, a frame within ``lengths`` whose every symbol is
            ``-inf``, ``blank`` not an int in ``[0, V)``, ``beam < 1``, ``nbest`` out of
            ``[1, beam]``, a non-finite weight, a bad ``prune``, an ``lm`` or ``lexicon``
            built for another vocabulary size or blank, a meta tensor (``log_probs``,
            ``lengths``, or a table of ``lm`` or ``lexicon``), or sequences for which no
            hypothesis of finite score survives (a ``lexicon`` that accepts none of the
            prefixes the beam kept), naming them.
    """
    log_probs, lengths, blank = check_log_probs(log_probs, lengths, blank)
    batch, steps, vocab = log_probs.shape
    nbest = _check_sizes(beam, nbest)
    _check_weights(lm_weight, insertion_bonus, prune)
    _check_lm(lm, vocab, blank)
    _check_lexicon(lexicon, vocab, blank)
    device = log_probs.device
    search = _Search(
        blank,
        None if lm is None else lm.to(device),
        float(lm_weight),
        float(insertion_bonus),
        None if lexicon is None else lexicon.to(device),
        prune,
    )
    if native.available(log_probs):
        labels, label_lengths, scores, acoustic = native.prefix_beam_search(
            log_probs,
            lengths,
            beam,
            nbest,
            blank,
            prune,
            None if lexicon is None else lexicon.kernel_tables(),
            None if lm is None else lm.kernel_tables(),
            search.lm_weight,
            search.insertion_bonus,
        )
        labels = labels[..., : int(label_lengths.max())]
    else:
        state = _start(batch, beam, steps, log_probs, search)
        for t in range(steps):
            advanced = _step(state, log_probs[:, t], search)
            state = _keep_where(t < lengths, advanced, state)
        labels, label_lengths, scores, acoustic = _finish(state, search, nbest)
    _check_survivors(scores)
    spans = _spans(log_probs, lengths, labels, label_lengths, blank)
    return BeamResult(labels, label_lengths, scores, acoustic, spans[..., 0], spans)


def _check_survivors(scores: Tensor) -> None:
    """ValueError naming the sequences whose best hypothesis ``scores[:, 0]`` is ``-inf``."""
    lost = torch.nonzero(scores[:, 0] == _NEG_INF).flatten().tolist()
    if lost:
        raise ValueError(
            f"prefix_beam_search found no hypothesis of finite score for sequences {lost[:10]}: "
            "every prefix the beam kept scores -inf (with a lexicon: it accepts none of them; "
            "a wider beam may find one)"
        )


def _check_weights(lm_weight: float, insertion_bonus: float, prune: int | float | None) -> None:
    """ValueError for non-finite weights or a ``prune`` that is not None, int >= 1 or float."""
    for name, value in (("lm_weight", lm_weight), ("insertion_bonus", insertion_bonus)):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if prune is None or (isinstance(prune, float) and not math.isnan(prune)):
        return
    if isinstance(prune, bool) or not isinstance(prune, int) or prune < 1:
        raise ValueError(
            f"prune must be None, an int k >= 1 (top k) or a float threshold, got {prune!r}"
        )


def _check_lm(lm: CharScorer | WordScorer | None, vocab: int, blank: int) -> None:
    """ValueError unless ``lm`` is None or a scorer for ``vocab`` symbols with ``blank``."""
    if lm is None:
        return
    if not isinstance(lm, CharScorer | WordScorer):
        raise ValueError(f"lm must come from lm_scorer (CharScorer or WordScorer), got {lm!r}")
    for name, table in lm.kernel_tables()._asdict().items():
        if isinstance(table, Tensor):
            check_not_meta(table, f"lm table {name}")
    if lm.num_symbols != vocab:
        raise ValueError(
            f"lm maps {lm.num_symbols} CTC symbols, but log_probs has V = {vocab} symbols"
        )
    if lm.blank != blank:
        raise ValueError(f"lm was built with blank {lm.blank}, the search uses blank {blank}")


def _check_lexicon(lexicon: Lexicon | None, vocab: int, blank: int) -> None:
    """ValueError unless ``lexicon`` is None or spelled in ``vocab`` symbols without ``blank``."""
    if lexicon is None:
        return
    for name in ("transitions", "word_index", "accepting"):
        check_not_meta(getattr(lexicon, name), f"lexicon.{name}")
    if lexicon.num_symbols != vocab:
        raise ValueError(
            f"lexicon is spelled in {lexicon.num_symbols} symbols, but log_probs has V = {vocab}"
        )
    if lexicon.delimiter == blank or bool((lexicon.transitions[:, blank] >= 0).any()):
        raise ValueError(f"lexicon must not use the blank symbol {blank} in words or as delimiter")


def _start(batch: int, beam: int, steps: int, log_probs: Tensor, search: _Search) -> _Beam:
    """The beam before the first frame: only the empty prefix (`_empty`), no fusion score."""
    prefix, length, log_pb, log_pnb = _empty(batch, beam, steps, log_probs)
    no_state = search.scorer is None
    return _Beam(
        prefix=prefix,
        length=length,
        log_pb=log_pb,
        log_pnb=log_pnb,
        fusion=torch.zeros_like(log_pb),
        lm_state=() if no_state else search.scorer.initial_state((batch, beam), log_pb.device),
        node=torch.zeros_like(length),
    )


def _step(state: _Beam, frame: Tensor, search: _Search) -> _Beam:
    """Advance every prefix by one frame ``(B, V)`` and keep the ``K`` best candidates."""
    nodes = _next_nodes(state, search.lexicon)
    width = int(state.length.max()) + 1  # the columns that can differ, and one of padding
    stay_pb, stay_pnb, extend = _candidates(
        state.prefix[..., :width],
        state.length,
        state.log_pb,
        state.log_pnb,
        frame,
        search.blank,
        _forbidden(frame, search.prune, nodes),
    )
    gains = _gains(state, search, frame.shape[1])
    chosen = _choose(
        _log_add(stay_pb, stay_pnb) + state.fusion, extend + state.fusion[..., None] + gains
    )
    return _select(state, chosen, (stay_pb, stay_pnb, extend, gains, nodes), search)


def _next_nodes(state: _Beam, lexicon: Lexicon | None) -> Tensor | None:
    """``(B, K, V)`` lexicon node after appending each symbol (``-1``: forbidden), or None."""
    if lexicon is None:
        return None
    return lexicon.transitions[state.node.clamp_min(0)]


def _forbidden(frame: Tensor, prune: int | float | None, nodes: Tensor | None) -> Tensor | None:
    """``(B, 1 or K, V)`` bool: the extensions that ``prune`` rules out at this frame ``(B, V)``
    or that leave the lexicon (``nodes`` from `_next_nodes`); None: no restriction."""
    forbidden = None if prune is None else _pruned(frame, prune)[:, None, :]
    if nodes is not None:
        forbidden = nodes < 0 if forbidden is None else forbidden | (nodes < 0)
    return forbidden


def _pruned(frame: Tensor, prune: int | float) -> Tensor:
    """``(B, V)`` bool: symbols that may not start a new label at this frame under ``prune``."""
    if isinstance(prune, int):
        top = frame.topk(min(prune, frame.shape[1]), dim=1).indices
        return torch.ones_like(frame, dtype=torch.bool).scatter_(1, top, False)
    best = frame.argmax(1, keepdim=True)
    return (frame < prune).scatter_(1, best, False)


def _gains(state: _Beam, search: _Search, vocab: int) -> Tensor:
    """``(B, K, V)`` fusion score of appending each symbol: weighted LM log-prob and bonus."""
    if search.scorer is None:
        shape = (*state.length.shape, vocab)
        return state.fusion.new_full(shape, search.insertion_bonus)
    return _weigh(*search.scorer.extensions(state.lm_state), search, state.fusion.dtype)


def _weigh(scores: Tensor, counts: Tensor, search: _Search, dtype: torch.dtype) -> Tensor:
    """``lm_weight * scores + insertion_bonus * counts`` in ``dtype``."""
    return (search.lm_weight * scores + search.insertion_bonus * counts).to(dtype)


def _select(state: _Beam, chosen: Tensor, scored: tuple[Tensor, ...], search: _Search) -> _Beam:
    """The beam made of the ``chosen (B, K)`` candidates (`_choose`).

    ``scored`` holds ``stay_pb, stay_pnb (B, K)``, ``extend, gains (B, K, V)`` and the
    lexicon's next nodes ``(B, K, V)`` (or None).
    """
    stay_pb, stay_pnb, extend, gains, nodes = scored
    moves = _moves(chosen, extend.shape[2])
    extends, flat, source, symbol = moves
    prefix, length, log_pb, log_pnb = _follow(
        state.prefix, state.length, stay_pb, stay_pnb, extend, moves
    )
    added = torch.where(extends, gains.flatten(1).gather(1, flat), 0.0)
    lm_state = tuple(_gather(part, source) for part in state.lm_state)
    if search.scorer is not None:
        lm_state = search.scorer.advance(lm_state, symbol)
    node = state.node.gather(1, source)
    if nodes is not None:
        node = torch.where(extends, nodes.flatten(1).gather(1, flat), node)
    return _Beam(
        prefix=prefix,
        length=length,
        log_pb=log_pb,
        log_pnb=log_pnb,
        fusion=state.fusion.gather(1, source) + added,
        lm_state=lm_state,
        node=node,
    )


def _keep_where(active: Tensor, new: _Beam, old: _Beam) -> _Beam:
    """``new`` for the sequences where ``active (B,)``, ``old`` for those already finished."""
    pick = functools.partial(_where, active)
    merged = {}
    for field in fields(_Beam):
        a, b = getattr(new, field.name), getattr(old, field.name)
        merged[field.name] = tuple(map(pick, a, b)) if isinstance(a, tuple) else pick(a, b)
    return _Beam(**merged)


def _finish(state: _Beam, search: _Search, nbest: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """End of utterance: final LM scores, lexicon word ends; the ``N`` best ``labels (B, N,
    L)``, ``label_lengths``, ``scores`` and ``acoustic`` ``(B, N)``."""
    total = state.acoustic + state.fusion
    if search.scorer is not None:
        total = total + _weigh(*search.scorer.final(state.lm_state), search, total.dtype)
    if search.lexicon is not None:
        ends = search.lexicon.accepting[state.node.clamp_min(0)] & (state.node >= 0)
        total = total.masked_fill(~ends, _NEG_INF)
    labels, label_lengths, scores, acoustic = _best(
        state.prefix, state.length, state.acoustic, total, nbest
    )
    return labels[..., : int(label_lengths.max())], label_lengths, scores, acoustic


def _spans(
    log_probs: Tensor, lengths: Tensor, labels: Tensor, label_lengths: Tensor, blank: int
) -> Tensor:
    """``(B, N, L, 2)`` frames of each label in the most likely alignment of its hypothesis.

    Batched forced alignment (`hybrid.ctc.align.forced_align`) of the hypotheses that hold
    labels, all of finite score and so with an alignment of finite score (empty and missing
    hypotheses have no spans), as many per call as keep the repeated log-probabilities
    under ``_ALIGN_BUDGET`` entries.
    """
    batch, nbest, width = labels.shape
    steps, vocab = log_probs.shape[1:]
    spans = torch.full((batch * nbest, width, 2), -1, dtype=torch.long, device=labels.device)
    flat_labels, flat_lengths = labels.reshape(batch * nbest, width), label_lengths.flatten()
    held = torch.nonzero(flat_lengths > 0).flatten()
    chunks = held.split(max(1, _ALIGN_BUDGET // (steps * vocab))) if len(held) else ()
    for rows in chunks:
        sequences = rows // nbest
        alignment = forced_align(
            log_probs[sequences],
            flat_labels[rows],
            lengths[sequences],
            flat_lengths[rows],
            blank,
        )
        spans[rows] = alignment.spans
    return spans.view(batch, nbest, width, 2)
