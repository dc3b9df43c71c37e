"""CTC decoding that ``torch.jit.script`` and ``torch.onnx.export`` accept.

`greedy_labels` is the best-path decoding behind `hybrid.ctc.greedy_decode`, and
`prefix_beam_labels` the prefix beam search of `hybrid.ctc.prefix_beam_search` without LM,
lexicon and pruning, both with outputs of a fixed width ``T`` so that their shapes do not
depend on the data; `GreedyCTCDecoder` and `PrefixBeamCTCDecoder` wrap them as modules to
export. Inputs are trusted (see `hybrid.structured.portable`).

The beam search's frame step (`_beam_step`) is made of the functions below that also make the
frame step of the tensorized engine of `hybrid.ctc.beam`, the one that defines the search:
there is one definition of it. The portable search differs from that engine only in keeping
every prefix column (``T + 1``), where the engine cuts them to the longest prefix (a width that
depends on the data), so each frame compares ``K^2`` prefixes of ``T + 1`` labels; and under
``torch.export`` in its log-additions (`_log_add`, `_log_sum`). The step runs as a Python loop
eagerly and under TorchScript, and as a ``scan`` under ``torch.export``: the ONNX model (opset
18, `hybrid.nn.decoders.to_onnx`) holds one ``Scan`` over the frames, with batch and time
dynamic, and gives the same hypotheses in ONNX Runtime.

Two things were needed for that export. The scan body must not assign into a slice of a
tensor (``extend[:, :, blank] = -inf``, as the engine once masked the blank): the exporter's
decomposition step then fails ("Attempting to use FunctionalTensor on its own"). And the
log-additions are written out with a shift under export: the exporter writes
``torch.logaddexp`` as an unshifted ``Log(Exp(a) + Exp(b))``, and ONNX Runtime (1.32) computed
the ``ReduceLogSumExp`` written for ``logsumexp`` inside the ``Scan`` without a shift too; in
float32 both lose precision below about -87 (the denormals) and give ``-inf`` below about
-103, a log-probability that a prefix reaches within about 100 frames, where the hypotheses
then went wrong.
"""

import torch
from torch import Tensor, nn

from ..nn.decoders import export_shapes
from ..structured.portable import _exporting, _logsumexp, pack_left

__all__ = ["GreedyCTCDecoder", "PrefixBeamCTCDecoder", "greedy_labels", "prefix_beam_labels"]


def greedy_labels(log_probs: Tensor, lengths: Tensor, blank: int) -> tuple[Tensor, Tensor, Tensor]:
    """The argmax symbol of each frame, repeats merged and blanks dropped.

    Args:
        log_probs: ``(B, T, V)`` scores (any monotone transform of the posteriors).
        lengths: ``(B,)`` int64 frames per sequence, in ``[1, T]``.
        blank: The blank symbol.

    Returns:
        ``labels`` ``(B, T)`` left-aligned and ``-1`` padded, ``label_lengths`` ``(B,)`` and
        ``starts`` ``(B, T)``: the first frame of each emitted symbol, ``-1`` padded.
    """
    frames = log_probs.argmax(-1)
    steps = torch.arange(frames.shape[1], device=frames.device)
    inside = steps.unsqueeze(0) < lengths.unsqueeze(1)
    changed = torch.cat([torch.ones_like(inside[:, :1]), frames[:, 1:] != frames[:, :-1]], 1)
    new = inside & changed & (frames != blank)
    labels, counts = pack_left(frames, new)
    starts, _ = pack_left(steps.expand_as(frames), new)
    return labels, counts, starts


def _beam_step(
    state: tuple[Tensor, Tensor, Tensor, Tensor], frame: Tensor, inside: Tensor, blank: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One frame ``(B, V)`` of the search: the beam ``state`` (``prefix (B, K, T + 1)``,
    ``length``, ``log_pb``, ``log_pnb`` ``(B, K)``) made of the ``K`` best candidates, in the
    sequences where ``inside (B,)``; unchanged in the others."""
    prefix, length, log_pb, log_pnb = state
    stay_pb, stay_pnb, extend = _candidates(prefix, length, log_pb, log_pnb, frame, blank, None)
    moves = _moves(_choose(_log_add(stay_pb, stay_pnb), extend), frame.shape[1])
    new = _follow(prefix, length, stay_pb, stay_pnb, extend, moves)
    return (
        _where(inside, new[0], prefix),
        _where(inside, new[1], length),
        _where(inside, new[2], log_pb),
        _where(inside, new[3], log_pnb),
    )


@torch.jit.unused
def _beam_scan(
    frames: Tensor, inside: Tensor, state: tuple[Tensor, Tensor, Tensor, Tensor], blank: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from torch._higher_order_ops.scan import scan

    def step(carry: tuple[Tensor, ...], xs: tuple[Tensor, Tensor]) -> tuple[tuple, tuple]:
        return _beam_step(carry, xs[0], xs[1], blank), ()

    return scan(step, state, (frames, inside))[0]


def prefix_beam_labels(
    log_probs: Tensor, lengths: Tensor, beam: int, blank: int, nbest: int
) -> tuple[Tensor, Tensor, Tensor]:
    """CTC prefix beam search without LM and lexicon (`hybrid.ctc.prefix_beam_search`).

    Args:
        log_probs: ``(B, T, V)`` float32 or float64 per-frame log-probabilities.
        lengths: ``(B,)`` int64 frames per sequence, in ``[1, T]``.
        beam: ``K``, prefixes kept per sequence after each frame.
        blank: The blank symbol, in ``[0, V)``.
        nbest: ``N`` in ``[1, K]``, hypotheses returned per sequence.

    Returns:
        The ``N`` best hypotheses of each sequence, best first: ``labels`` ``(B, N, T)``
        left-aligned and ``-1`` padded, ``label_lengths`` ``(B, N)`` and ``scores`` ``(B, N)``,
        the log of the summed probability of the hypothesis' alignments that the search kept.
        A rank past the prefixes that exist has no labels and score ``-inf``. The hypotheses
        of `hybrid.ctc.prefix_beam_search` with the same ``beam``, ``blank`` and ``nbest``
        (whose CPU kernel may break exact ties between candidates differently).
    """
    batch, steps, _ = log_probs.shape
    frames = log_probs.transpose(0, 1)
    inside = torch.arange(steps, device=log_probs.device).unsqueeze(1) < lengths
    state = _empty(batch, beam, steps, log_probs)
    if not torch.jit.is_scripting() and _exporting():
        state = _beam_scan(frames, inside, state, blank)
    else:
        for t in range(steps):
            state = _beam_step(state, frames[t], inside[t], blank)
    prefix, length, log_pb, log_pnb = state
    acoustic = _log_add(log_pb, log_pnb)
    labels, label_lengths, scores, _ = _best(prefix[..., :steps], length, acoustic, acoustic, nbest)
    return labels, label_lengths, scores


# ------------------------------------------------------------- the frame step of the search
# The parts of the prefix search that pruning, LM fusion and the lexicon do not touch, over the
# beam's tensors (see `hybrid.ctc.beam._Beam`), shared by `prefix_beam_labels` and the
# tensorized engine of `hybrid.ctc.beam`: tensor operations only, literal ``float("-inf")``
# and, in the step a ``scan`` runs, no assignment into slices (the start of the beam, built
# before the scan, has one), which TorchScript, ``torch.export`` and a ``scan`` accept.


def _log_add(a: Tensor, b: Tensor) -> Tensor:
    """``torch.logaddexp``; under ``torch.export`` the shifted sum of
    `hybrid.structured.portable` (see the module's docstring)."""
    if torch.jit.is_scripting() or not _exporting():
        return torch.logaddexp(a, b)
    return _logsumexp(torch.stack([a, b]), 0)


def _log_sum(x: Tensor, dim: int) -> Tensor:
    """``logsumexp`` along ``dim``; under ``torch.export`` the shifted sum of
    `hybrid.structured.portable` (see the module's docstring)."""
    if torch.jit.is_scripting() or not _exporting():
        return x.logsumexp(dim)
    return _logsumexp(x, dim)


def _empty(
    batch: int, beam: int, steps: int, like: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``prefix``, ``length``, ``log_pb`` and ``log_pnb`` (see `hybrid.ctc.beam._Beam`) of the
    beam before the first of ``steps`` frames: only the empty prefix, with ``p_b = 1``, in the
    dtype and on the device of ``like``."""
    log_pb = torch.full((batch, beam), float("-inf"), dtype=like.dtype, device=like.device)
    log_pb[:, 0] = 0.0
    prefix = torch.full((batch, beam, steps + 1), -1, dtype=torch.long, device=like.device)
    length = torch.zeros((batch, beam), dtype=torch.long, device=like.device)
    return prefix, length, log_pb, torch.full_like(log_pb, float("-inf"))


def _candidates(
    prefix: Tensor,
    length: Tensor,
    log_pb: Tensor,
    log_pnb: Tensor,
    frame: Tensor,
    blank: int,
    forbidden: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Acoustic log-probabilities of the candidates of one frame.

    Args:
        prefix: ``(B, K, W)`` the beam's label prefixes, ``-1`` padded, with at least the
            columns up to the longest prefix and one of padding.
        length: ``(B, K)`` labels in each prefix.
        log_pb: ``(B, K)`` log-probability of the alignments ending in a blank.
        log_pnb: ``(B, K)`` log-probability of the alignments ending in the last label.
        frame: ``(B, V)`` the frame's log-probabilities.
        blank: The blank symbol.
        forbidden: ``(B, 1 or K, V)`` bool, extensions ruled out by pruning or a lexicon
            (`hybrid.ctc.beam._forbidden`), or None.

    Returns:
        ``stay_pb`` and ``stay_pnb`` ``(B, K)`` of staying on each prefix, and ``extend``
        ``(B, K, V)``, ``log p_nb`` of each prefix extended by each symbol: ``-inf`` for the
        blank, the ``forbidden`` extensions and those folded into the prefix they recreate.
    """
    last = prefix.gather(2, (length - 1).clamp_min(0)[..., None])[..., 0]  # -1: empty prefix
    acoustic = _log_add(log_pb, log_pnb)
    stay_pb = acoustic + frame[:, blank, None]
    stay_pnb = log_pnb + frame.gather(1, last.clamp_min(0))
    symbols = torch.arange(frame.shape[1], device=frame.device)
    # Extending by the last symbol again needs a blank in between: only p_b carries over.
    base = torch.where(symbols == last[..., None], log_pb[..., None], acoustic[..., None])
    extend = (base + frame[:, None, :]).masked_fill(symbols == blank, float("-inf"))
    if forbidden is not None:
        extend = extend.masked_fill(forbidden, float("-inf"))
    alive = acoustic > float("-inf")
    stay_pnb, extend = _merge(prefix, length, last, alive, stay_pnb, extend)
    return stay_pb, stay_pnb, extend


def _merge(
    prefix: Tensor, length: Tensor, last: Tensor, alive: Tensor, stay_pnb: Tensor, extend: Tensor
) -> tuple[Tensor, Tensor]:
    """Add each extension that recreates a prefix in the beam into that prefix's ``p_nb``.

    Prefix ``j`` is the extension of prefix ``k`` by ``j``'s last symbol exactly when ``j``
    without its last symbol equals ``k``; both must hold a hypothesis (``alive (B, K)``).
    ``prefix``, ``length``: as in `_candidates`; ``last (B, K)``: the last labels. Returns the
    updated ``stay_pnb (B, K)`` and ``extend (B, K, V)`` with the folded extensions set to
    ``-inf``.
    """
    last = last.clamp_min(0)
    parent = prefix.scatter(2, (length - 1).clamp_min(0)[..., None], -1)
    child = (parent[:, :, None, :] == prefix[:, None, :, :]).all(-1)
    child &= length[:, :, None] == length[:, None, :] + 1
    child &= alive[:, :, None] & alive[:, None, :]
    beam = child.shape[1]
    folded = extend.gather(2, last[:, None, :].expand(-1, beam, -1)).transpose(1, 2)
    stay_pnb = _log_add(stay_pnb, _log_sum(folded.masked_fill(~child, float("-inf")), 2))
    last_hot = torch.nn.functional.one_hot(last, extend.shape[2]).to(extend.dtype)
    taken = torch.einsum("bjk,bjv->bkv", child.to(extend.dtype), last_hot) > 0
    return stay_pnb, extend.masked_fill(taken, float("-inf"))


def _choose(stay_total: Tensor, extend_total: Tensor) -> Tensor:
    """``(B, K)`` the ``K`` best candidates by total score, ``stay_total (B, K)`` and
    ``extend_total (B, K, V)``: candidate ``i < K`` stays on prefix ``i``, candidate
    ``K + k V + c`` extends prefix ``k`` by symbol ``c``."""
    candidates = torch.cat([stay_total, extend_total.flatten(1)], 1)
    return candidates.topk(stay_total.shape[1], dim=1).indices


def _moves(chosen: Tensor, vocab: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``chosen (B, K)`` candidates (`_choose`) of ``vocab`` symbols as ``(B, K)``
    ``extends`` (bool), ``flat`` (``k V + c`` of an extension, 0 for a stay), ``source``
    (the prefix ``k`` it continues) and ``symbol`` (``c``, ``-1`` for a stay)."""
    beam = chosen.shape[1]
    extends = chosen >= beam
    flat = (chosen - beam).clamp_min(0)
    source = torch.where(extends, flat // vocab, chosen)
    symbol = torch.where(extends, flat % vocab, -1)
    return extends, flat, source, symbol


def _follow(
    prefix: Tensor,
    length: Tensor,
    stay_pb: Tensor,
    stay_pnb: Tensor,
    extend: Tensor,
    moves: tuple[Tensor, Tensor, Tensor, Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``prefix (B, K, T + 1)``, ``length``, ``log_pb`` and ``log_pnb`` of the beam made of
    the chosen candidates (``moves`` from `_moves`; the scores from `_candidates`)."""
    extends, flat, source, symbol = moves
    length = length.gather(1, source)
    # A stay writes -1 over the padding at its length; an extension writes its symbol there.
    prefix = _gather(prefix, source).scatter(2, length[..., None], symbol[..., None])
    log_pb = torch.where(extends, float("-inf"), stay_pb.gather(1, source))
    log_pnb = torch.where(extends, extend.flatten(1).gather(1, flat), stay_pnb.gather(1, source))
    return prefix, length + extends.long(), log_pb, log_pnb


def _best(
    prefix: Tensor, length: Tensor, acoustic: Tensor, total: Tensor, nbest: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``nbest`` prefixes of highest ``total (B, K)``, best first: ``labels (B, N, W)``
    (``prefix``'s width), ``label_lengths``, ``scores`` (their total) and ``acoustic``
    ``(B, N)``; a rank without a hypothesis (total ``-inf``) has no labels."""
    scores, order = total.topk(nbest, dim=1)
    alive = scores > float("-inf")
    label_lengths = torch.where(alive, length.gather(1, order), 0)
    labels = _gather(prefix, order).masked_fill(~alive[..., None], -1)
    acoustic = torch.where(alive, acoustic.gather(1, order), float("-inf"))
    return labels, label_lengths, scores, acoustic


def _gather(values: Tensor, source: Tensor) -> Tensor:
    """``values (B, K, ...)`` re-indexed along dim 1 by ``source (B, K')``."""
    shape = list(source.shape)
    index = source.view(shape + [1] * (values.dim() - 2))
    return values.gather(1, index.expand(shape + list(values.shape[2:])))


def _where(active: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``new (B, ...)`` for the sequences where ``active (B,)``, ``old`` for the others."""
    return torch.where(active.view([-1] + [1] * (new.dim() - 1)), new, old)


def _check_sizes(beam: int, nbest: int | None) -> int:
    """Validate ``beam`` and ``nbest``; return ``nbest`` with ``None`` resolved to ``beam``."""
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be an int >= 1, got {beam!r}")
    nbest = beam if nbest is None else nbest
    if isinstance(nbest, bool) or not isinstance(nbest, int) or not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be an int in [1, beam] = [1, {beam}], got {nbest!r}")
    return nbest


class _CTCDecoder(nn.Module):
    """A CTC decoder module: ``forward(log_probs (B, T, V), lengths (B,))``.

    Args:
        blank: The blank symbol.
    """

    def __init__(self, blank: int = 0):
        super().__init__()
        if not isinstance(blank, int) or isinstance(blank, bool) or blank < 0:
            raise ValueError(f"blank must be a non-negative int, got {blank!r}")
        self.blank = blank

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch and time of ``log_probs``."""
        return export_shapes("log_probs", "lengths")


class GreedyCTCDecoder(_CTCDecoder):
    """Greedy CTC decoding as a module: ``forward(log_probs (B, T, V), lengths (B,))`` gives
    `greedy_labels`' ``(labels, label_lengths, starts)``; scripts and exports to ONNX.

    Args:
        blank: The blank symbol.
    """

    def forward(self, log_probs: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return greedy_labels(log_probs, lengths, self.blank)

    def extra_repr(self) -> str:
        return f"blank={self.blank}"


class PrefixBeamCTCDecoder(_CTCDecoder):
    """CTC prefix beam search as a module: ``forward(log_probs (B, T, V), lengths (B,))``
    gives `prefix_beam_labels`' ``(labels (B, N, T), label_lengths (B, N), scores (B, N))``;
    scripts and exports to ONNX.

    Args:
        beam: ``K >= 1``, prefixes kept per sequence after each frame.
        blank: The blank symbol.
        nbest: ``N`` in ``[1, K]``, hypotheses returned per sequence (``None``: ``K``).
    """

    def __init__(self, beam: int = 10, blank: int = 0, nbest: int | None = 1):
        super().__init__(blank)
        self.nbest = _check_sizes(beam, nbest)
        self.beam = beam

    def forward(self, log_probs: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return prefix_beam_labels(log_probs, lengths, self.beam, self.blank, self.nbest)

    def extra_repr(self) -> str:
        return f"beam={self.beam}, blank={self.blank}, nbest={self.nbest}"
