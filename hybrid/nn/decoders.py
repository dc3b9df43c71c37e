"""Decoders as modules that ``torch.jit.script`` and ``torch.onnx.export`` accept.

Each holds a snapshot of its scores as buffers (the transitions of a trained chain layer with
its constraints folded in as ``-inf``, or a compiled graph) and decodes with the functions of
`hybrid.structured.portable`: the same paths and scores as the public decoders, with batch
and time left dynamic when exported. Inputs are trusted: they come from the model in front.

    decoder = ViterbiDecoder.from_chain(crf)          # or ViterbiDecoder(transitions, ...)
    torch.jit.script(decoder)
    torch.onnx.export(decoder, (emissions, lengths), "viterbi.onnx",
                      dynamic_shapes=decoder.dynamic_shapes())
"""

import torch
from torch import Tensor, nn

from ..structured import ChainConstraints, Graph
from ..structured import portable as dp
from .chain import LinearChain

__all__ = [
    "CKYDecoder",
    "GraphDecoder",
    "KBestDecoder",
    "MarginalDecoder",
    "ViterbiDecoder",
    "export_shapes",
    "to_onnx",
]


def to_onnx(
    module: nn.Module,
    example: tuple[Tensor, ...],
    dynamic_shapes: dict[str, dict[int, object]],
    output_names: list[str] | None = None,
    input_names: list[str] | None = None,
) -> bytes:
    """``module`` as an ONNX model (the current exporter, opset 18), its inputs named
    ``input_names`` (default: ``forward``'s arguments, in order), the dimensions of
    ``dynamic_shapes`` (keyed by ``forward``'s argument names) left dynamic. The exporter's
    warnings and the notes it logs are silenced."""
    import inspect
    import logging
    import warnings

    # the exporter and the ONNX IR log notes (an empty attribute's type, say) as warnings
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                example,
                dynamo=True,
                opset_version=18,
                input_names=input_names or list(inspect.signature(module.forward).parameters),
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    return program.model_proto.SerializeToString()


def export_shapes(scores: str, lengths: str) -> dict[str, dict[int, object]]:
    """``dynamic_shapes`` for ``torch.onnx.export`` of a decoder ``forward(scores, lengths)``:
    batch and time of ``scores`` ``(B, T, ...)``, batch of ``lengths``. The example inputs
    must have ``B >= 2`` and ``T >= 2``, or the exporter fixes that size."""
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    return {scores: {0: batch, 1: time}, lengths: {0: batch}}


class _ChainScores(nn.Module):
    """Transition, start and end scores of a chain, forbidden entries ``-inf``."""

    def __init__(
        self,
        transitions: Tensor,
        start: Tensor | None = None,
        end: Tensor | None = None,
        constraints: ChainConstraints | Tensor | None = None,
    ):
        super().__init__()
        if not isinstance(transitions, Tensor) or transitions.dim() != 2:
            raise ValueError(f"transitions must be a (K, K) tensor, got {transitions!r}")
        transitions, start, end = dp.fold_constraints(transitions, start, end, constraints)
        self.register_buffer("transitions", transitions)
        self.register_buffer("start", start)
        self.register_buffer("end", end)

    @classmethod
    def from_chain(cls, layer: LinearChain, **options):
        """A decoder over ``layer``'s current scores and constraints (a CRF or SSVM layer)."""
        return cls(*layer._potentials(), **options)

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch and time of ``emissions``."""
        return export_shapes("emissions", "lengths")


class ViterbiDecoder(_ChainScores):
    """``forward(emissions (B, T, K), lengths (B,))``: the best path ``(B, T)`` (``-1`` past
    each length) and its score ``(B,)``, as `hybrid.structured.viterbi`."""

    def forward(self, emissions: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return dp.chain_viterbi(emissions, lengths, self.transitions, self.start, self.end)


class KBestDecoder(_ChainScores):
    """``forward(emissions (B, T, K), lengths (B,))``: the ``k`` best paths ``(B, k, T)`` and
    their scores ``(B, k)``, as `hybrid.structured.kbest`.

    Args:
        k: Number of paths, ``>= 1``; the other arguments as `ViterbiDecoder`.
    """

    def __init__(self, transitions, start=None, end=None, constraints=None, *, k: int):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        super().__init__(transitions, start, end, constraints)
        self.k = k

    def forward(self, emissions: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return dp.chain_kbest(emissions, lengths, self.transitions, self.start, self.end, self.k)

    def extra_repr(self) -> str:
        return f"k={self.k}"


class MarginalDecoder(_ChainScores):
    """``forward(emissions (B, T, K), lengths (B,))``: the posterior marginals ``(B, T, K)``
    (per-token confidence) and the log-partition ``(B,)``, as `hybrid.structured.marginals`
    and `hybrid.structured.log_partition`, summed in float64 (see
    `hybrid.structured.portable.chain_marginals`)."""

    def forward(self, emissions: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return dp.chain_marginals(emissions, lengths, self.transitions, self.start, self.end)


class GraphDecoder(nn.Module):
    """Exact Viterbi over a compiled `Graph`, as `hybrid.structured.graph_viterbi` without a
    beam.

    ``forward(scores (B, T, E), lengths (B,))`` returns ``arcs`` ``(B, T)`` (the arc taken at
    each frame, ``-1`` past each length), the output ``labels`` along the path ``(B, T)``
    (left-aligned, ``-1`` padded), ``label_lengths`` ``(B,)`` and the path ``scores``
    ``(B,)``; a sequence with no path has score ``-inf``, no arcs and no labels.
    """

    def __init__(self, graph: Graph):
        super().__init__()
        if not isinstance(graph, Graph):
            raise ValueError(f"graph must be a compiled hybrid.structured.Graph, got {graph!r}")
        for name in ("src", "dst", "emission", "weight", "label", "start", "final"):
            self.register_buffer(name, getattr(graph, name).detach().clone())

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        arcs, best = dp.graph_viterbi(
            scores,
            lengths,
            self.src,
            self.dst,
            self.emission,
            self.weight,
            self.start,
            self.final,
        )
        frame_labels = self.label.index_select(0, arcs.clamp(min=0).flatten()).view_as(arcs)
        frame_labels = torch.where(arcs >= 0, frame_labels, torch.full_like(arcs, -1))
        labels, label_lengths = dp.pack_left(frame_labels, frame_labels >= 0)
        return arcs, labels, label_lengths, best

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch and time of ``scores``."""
        return export_shapes("scores", "lengths")


class CKYDecoder(nn.Module):
    """The best labelled binary tree of each sequence, as `hybrid.structured.cky`.

    ``forward(scores (B, N + 1, N + 1, L), lengths (B,))`` returns ``spans``
    ``(B, 2N - 1, 3)`` (rows ``[i, j, label]`` in preorder, ``-1`` past each sequence's
    ``2n - 1`` spans) and the tree ``scores`` ``(B,)``, computed in the scores' dtype; a
    sequence with no tree (every tree holds a span whose labels are all ``-inf``) has score
    ``-inf`` and no spans.
    """

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return dp.cky(scores, lengths)

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch, words and labels of ``scores``
        (the example must have ``B >= 2``, ``N >= 2`` and ``L >= 2``)."""
        batch, size = torch.export.Dim("batch"), torch.export.Dim("size", min=2)
        labels = torch.export.Dim("labels")
        return {"scores": {0: batch, 1: size, 2: size, 3: labels}, "lengths": {0: batch}}
