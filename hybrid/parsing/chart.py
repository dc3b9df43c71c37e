"""A span-based chart parser: BiLSTM span scores, an exact dynamic program over trees.

The structured counterpart of the sequence-to-sequence parsers (Stern, Andreas and Klein,
2017; Kitaev and Klein, 2018). A `SpanScorer` on the same encoder scores every span ``[i, j)``
of a sentence with every label of `ParsingVocabulary.labels` (unary chains collapsed into
joint labels, `EMPTY` for a span that is no phrase, scored 0); a tree's score is the sum of
the scores of its labelled spans (`hybrid.parsing.spans`). Two decoders, both exact and
batched, return a tree over exactly the input words, with no repair:

- ``cky``: the highest-scoring tree (`hybrid.structured.tree.cky`);
- ``mbr`` (tree CRF only): the minimum-Bayes-risk tree of Goodman (1996), the tree that
  maximises the sum over its phrases of ``P(span, label) - 1/2``, the labelled-span
  posteriors of the scores' Gibbs distribution (`hybrid.structured.tree.tree_marginals`), by
  CKY over those sums: the expected number of correct phrases minus half the number of
  phrases, a proxy for F1. It matters for the CRF: its distribution over binary trees counts
  an n-ary tree once per binarization, so the highest-scoring binary tree leans to trees with
  few binarizations, that is, to more phrases than the posteriors support.

Training minimises, per sentence, either

- ``crf``: the tree-CRF negative log-likelihood ``log Z - score(gold)``, ``log Z`` summing over
  all labelled binary trees by the inside algorithm. As `EMPTY` scores 0, every binarization
  of the gold tree has the gold score, so this is the likelihood of the n-ary gold tree up to
  a constant (the log of its number of binarizations), with the same gradient; or
- ``ssvm``: the margin-rescaled structured hinge ``max_y [score(y) + cost(y)] - score(gold)``
  with the labelled-span Hamming cost of Kitaev and Klein: a span costs 1 unless it carries
  its gold label (`EMPTY` for the spans that are no gold phrase), so that the cost does not
  depend on the binarization either.

In both, the span of all words of a sentence of two or more must carry a label (its `EMPTY`
score is ``-inf``), and the parser never outputs ``<unk>``, the label of chains it never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..nn.span_scorer import SpanScorer, SpanScorerConfig
from ..structured.tree import cky, tree_hinge, tree_log_partition, tree_marginals, tree_score
from .data import ParseBatch, ParsingVocabulary, inputs_of
from .parser import BaseParser, Parse
from .text import chart_parse
from .tree import Tree

__all__ = ["CHART_MODES", "ChartParser"]

CHART_MODES = ("cky", "mbr")

_NEG_INF = float("-inf")


class ChartParser(BaseParser):
    """A trained `SpanScorer` with its `ParsingVocabulary`; see the module docstring.

    Args:
        model: The span scorer (its ``num_features`` is non-zero when it reads tags; its
            ``num_labels`` is the vocabulary's number of span labels).
        vocabulary: Its vocabularies (read left to right: ``reverse`` must be False).

    Raises:
        ValueError: A reversed vocabulary, or a model of another number of labels.
    """

    default_mode = "cky"
    kind = "chart parser"
    config_class = SpanScorerConfig
    model_class = SpanScorer

    def __init__(self, model: SpanScorer, vocabulary: ParsingVocabulary):
        if vocabulary.reverse:
            raise ValueError("a chart parser reads sentences left to right: reverse must be False")
        if model.config.num_labels != len(vocabulary.labels):
            raise ValueError(
                f"the model scores {model.config.num_labels} labels but the vocabulary has "
                f"{len(vocabulary.labels)} span labels"
            )
        super().__init__(model, vocabulary)
        self._unknown = vocabulary.labels.index("<unk>")

    @property
    def modes(self) -> tuple[str, ...]:
        """``("cky", "mbr")`` for a tree CRF, ``("cky",)`` for a structured SVM: an SVM's scores
        are margins, not log-probabilities, and their Gibbs posteriors mean nothing (measured:
        on the PTB sample ``mbr`` gives an SVM 33 F1 where ``cky`` gives 87)."""
        return CHART_MODES if self.model.config.objective == "crf" else CHART_MODES[:1]

    def scores(self, batch: ParseBatch, decoding: bool = False) -> Tensor:
        """``(B, N + 1, N + 1, L)`` span scores of ``batch``, with `EMPTY` forbidden on the
        span of all words of sentences of two or more, and (``decoding``) ``<unk>``
        everywhere."""
        scores = self.model(**self.model_inputs(batch))
        forbidden = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        whole = torch.arange(scores.shape[0], device=scores.device)
        forbidden[whole, 0, batch.lengths, 0] = batch.lengths > 1
        if decoding:
            forbidden[..., self._unknown] = True
        return scores.masked_fill(forbidden, _NEG_INF)

    def summed_loss(
        self, trees: Sequence[Tree], label_smoothing: float = 0.0
    ) -> tuple[Tensor, int]:
        """``(total, units)``: the model's objective (``crf``: the tree-CRF negative
        log-likelihood; ``ssvm``: the structured hinge) summed over ``trees``, and the number
        of trees.

        Raises:
            ValueError: ``label_smoothing`` other than 0 (it smooths token losses only).
        """
        if label_smoothing:
            raise ValueError(
                f"label_smoothing applies to the token loss of seq2seq parsers; a chart "
                f"parser needs 0, got {label_smoothing!r}"
            )
        batch = self.batch(*inputs_of(trees), trees)
        scores = self.scores(batch)
        if self.model.config.objective == "crf":
            loss = tree_log_partition(scores, batch.lengths) - tree_score(
                scores, batch.spans, batch.lengths
            )
        else:
            loss = tree_hinge(scores, batch.spans, batch.lengths, cost=_cost(batch, scores))
        return loss.sum(), len(trees)

    @torch.no_grad()
    def _parse_batch(
        self, items: list[tuple[Sequence[str], Sequence[str] | None]], mode: str, beam: int
    ) -> list[Parse]:
        """The ``cky`` or ``mbr`` parses of one batch of ``(sentence, tags or None)`` pairs
        (``beam`` is unused: both searches are exact)."""
        sentences = [sentence for sentence, _ in items]
        tags = None if items[0][1] is None else [row for _, row in items]
        batch = self.batch(sentences, tags)
        scores = self.scores(batch, decoding=True)
        if mode == "mbr":
            gains = tree_marginals(scores, batch.lengths) - 0.5
            gains[..., 0] = 0.0  # an EMPTY span is no phrase: neither gain nor risk
            scores = gains.masked_fill(torch.isneginf(scores), _NEG_INF)
        rows, _ = cky(scores, batch.lengths)
        labels = self.vocabulary.labels.tokens
        return [
            chart_parse(rows[b, : 2 * len(sentence) - 1].tolist(), labels, sentence, row_tags)
            for b, (sentence, row_tags) in enumerate(items)
        ]


def _cost(batch: ParseBatch, scores: Tensor) -> Tensor:
    """The labelled-span Hamming cost of Kitaev and Klein: ``(B, N + 1, N + 1, L)``, 0 for the
    gold label of every span (`EMPTY` for spans that are no gold phrase), 1 for the others."""
    gold = torch.zeros(scores.shape[:3], dtype=torch.long, device=scores.device)
    used = batch.spans[..., 0] >= 0
    item, row = used.nonzero(as_tuple=True)
    start, end, label = batch.spans[item, row].unbind(-1)
    gold[item, start, end] = label
    cost = torch.ones_like(scores)
    return cost.scatter(3, gold[..., None], 0.0)
