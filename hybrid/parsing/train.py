"""Training a parser: its task for the training engine (`hybrid.training`), selection by
development F1.

Every epoch trains on shuffled, length-bucketed batches of trees. A step minimises the
parser's own loss (`BaseParser.summed_loss`) summed over the batch and divided by its units:
per target token the cross-entropy of each next token of a sequence-to-sequence parser, per
sentence the tree-CRF or structured hinge loss of a chart parser. After each epoch the
development trees are parsed with the parser's quickest decoder (greedy; CKY) and scored
with EVALB; the weights of the epoch with the best development F1 are kept. Checkpoints,
exact resume, the random states, clipping and data parallelism are the engine's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..batching import bucketed_batches
from ..training import History, Task, TrainConfig
from ..training import train as run_training
from .data import inputs_of
from .evalb import evalb
from .parser import BaseParser, Parse
from .tree import Tree

__all__ = ["ParserTrainConfig", "ParsingTask", "dev_scores", "fit", "gold_tagged", "inputs_of"]


@dataclass(frozen=True)
class ParserTrainConfig(TrainConfig):
    """Optimisation settings of a parser (`hybrid.training.TrainConfig`), 40 epochs by
    default.

    Attributes:
        label_smoothing: Of the token cross-entropy, in [0, 1) (sequence-to-sequence parsers
            only: a chart parser needs 0).
    """

    epochs: int = 40
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing!r}")


def gold_tagged(parses: Sequence[Parse], tags: Sequence[Sequence[str]]) -> list[Tree]:
    """The parsed trees with the gold POS tags on their preterminals, for EVALB: it deletes
    punctuation by each tree's own tags, and a parser's ``XX`` would keep it."""
    return [parse.tree.with_tags(gold) for parse, gold in zip(parses, tags, strict=True)]


@torch.no_grad()
def dev_scores(
    parser: BaseParser, trees: Sequence[Tree], batch_size: int = 64
) -> tuple[float, float]:
    """Development loss and EVALB F1 (a fraction) of ``trees``: the parser's loss without
    label smoothing per unit (target token; sentence of a chart parser), as the training
    loss is, and the F1 of the parses of its quickest decoder."""
    parser.model.eval()
    total, units = 0.0, 0
    for i in range(0, len(trees), batch_size):
        batch_total, batch_units = parser.summed_loss(trees[i : i + batch_size])
        total, units = total + float(batch_total), units + batch_units
    sentences, tags = inputs_of(trees)
    parses = parser.parse(sentences, tags if parser.uses_tags else None, mode=parser.modes[0])
    result = evalb(list(trees), gold_tagged(parses, tags))
    return total / units, result.f1


class ParsingTask(Task):
    """Training a parser (`hybrid.training.Task`): length-bucketed batches of trees, the
    parser's loss summed over target tokens (a sequence-to-sequence parser) or sentences
    (a chart parser), development loss and EVALB F1 (`dev_scores`), the best F1 kept."""

    kind = "parser checkpoint"

    def __init__(
        self,
        parser: BaseParser,
        train: Sequence[Tree],
        dev: Sequence[Tree],
        config: ParserTrainConfig,
    ) -> None:
        self.parser, self.model, self.config = parser, parser.model, config
        self.train, self.dev = train, dev
        self.lengths = [len(tree.leaves()) for tree in train]

    def plan(self, generator: torch.Generator) -> list[list[int]]:
        return bucketed_batches(self.lengths, self.config.batch_size, generator)

    def loss(self, batch: Sequence[int], generator: torch.Generator) -> tuple[Tensor, float]:
        trees = [self.train[i] for i in batch]
        return self.parser.summed_loss(trees, self.config.label_smoothing)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        scored = self.parser
        if model is not self.parser.model:  # the weights' moving average
            scored = copy.copy(self.parser)
            scored.model = model
        dev_loss, dev_f1 = dev_scores(scored, self.dev)
        return {"dev_loss": dev_loss, "dev_f1": dev_f1}

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (metrics["dev_f1"],)

    def describe(self) -> str:
        return self.parser.kind


def fit(
    parser: BaseParser,
    train: Sequence[Tree],
    dev: Sequence[Tree],
    config: ParserTrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    save_every: int = 0,
) -> History:
    """Train ``parser.model`` on ``train`` (`hybrid.training.train` over a `ParsingTask`) and
    keep its best epoch by development F1.

    Args:
        parser: The parser to train (its model's device is the training device).
        train: Normalised training trees.
        dev: Normalised development trees.
        config: Optimisation settings.
        checkpoint: Where to keep the resumable state, or ``None``.
        progress: Show a progress bar over each epoch's batches.
        log: Where one line per epoch (and the resume) goes.
        save_every: Also checkpoint every this many steps within an epoch (0: after each
            epoch only), from which a killed run resumes exactly.

    Returns:
        The `hybrid.training.History` of the run (epochs before a resume included): per
        epoch ``loss`` (per target token of a sequence-to-sequence parser, per sentence of a
        chart parser), ``lr``, ``seconds``, ``dev_loss`` and ``dev_f1`` (`dev_scores`).

    Raises:
        ValueError: naming ``checkpoint``, when it is not a parser checkpoint (truncated, or
            another file) or was made with other settings than the model's and ``config``
            (other than ``epochs``); ``config.label_smoothing`` other than 0 for a chart
            parser.
    """
    task = ParsingTask(parser, train, dev, config)
    return run_training(task, checkpoint, progress=progress, log=log, save_every=save_every)
